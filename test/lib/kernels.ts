/** Kernel series the VM suites run on: XTT_TEST_KERNELS="6.1 6.12" by default. */
export function testKernels(): string[] {
  return (process.env.XTT_TEST_KERNELS ?? '6.1 6.12').split(/[\s,]+/).filter(Boolean);
}
