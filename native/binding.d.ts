// Private typing of the .node exports (build/Release/xttraffic.node). Loaded through
// src/system/binding.ts only; the public API is src/index.ts.

/** Node-style system error: message "EPERM: operation not permitted, finit_module '/x.ko'". */
export interface NativeSysError extends Error {
  /** errno name, e.g. "EPERM", "EEXIST", "EWOULDBLOCK" (shown as "EAGAIN" on Linux). */
  code: string;
  /** Negative errno, as in Node's fs errors (-1 for EPERM). */
  errno: number;
  syscall: 'open' | 'finit_module' | 'delete_module';
  /** The file, or the module name for delete_module. */
  path?: string;
}

export interface NativeBinding {
  /** Bumped when these exports change incompatibly. */
  readonly abi: number;
  /** The uapi header's constants (kernel/include/uapi/linux/netfilter/xt_traffic.h). */
  readonly constants: {
    NAME_LEN: number;
    HASHSIZE_MAX: number;
    SUFFIX_IPCONN: string;
    SUFFIX_PORTCONN: string;
    SUFFIX_INFO: string;
    PROC_DIR: string;
    TRAFFIC: number;
    PORTCONN: number;
    IPCONN: number;
    CLEARONREAD: number;
    NOINTERNAL: number;
    ONLYINTERNAL: number;
  };
  /** finit_module(2) of the file at path, in a worker thread. */
  loadModule(path: string, params: string, flags?: number): Promise<void>;
  /** delete_module(2) with O_NONBLOCK (EWOULDBLOCK/EAGAIN while in use). */
  unloadModule(name: string): Promise<void>;
}
