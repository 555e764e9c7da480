import { describe, expect, it } from 'vitest';
import { VersionError } from '../../src/core/errors.js';
import { readModinfo } from '../../src/system/modinfo.js';
import { moduleNameOf, parseModulesDep } from '../../src/system/module.js';
import { fakeKo } from '../cli/fakes.js';

describe('modinfo', () => {
  it('reads .modinfo of an ELF64 module: depends, vermagic release, repeated keys', () => {
    const i = readModinfo(fakeKo({ version: '0.1.0', parmtype: ['a:uint', 'b:int'], depends: 'x_tables,nf_conntrack', vermagic: '6.1.0-56-amd64 SMP preempt mod_unload modversions ' }));
    expect(i.version).toBe('0.1.0');
    expect(i.release).toBe('6.1.0-56-amd64');
    expect(i.depends).toEqual(['x_tables', 'nf_conntrack']);
    expect(i.fields.get('parmtype')).toEqual(['a:uint', 'b:int']);
    expect(readModinfo(fakeKo({ depends: '' })).depends).toEqual([]);
  });

  it('rejects what is not an uncompressed ELF64 module with a version error', () => {
    const cases: [Buffer, string][] = [
      [Buffer.from('hello world, this is not an ELF file at all; it is long enough to have a header'), 'no ELF header'],
      [Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100)]), 'xz-compressed'],
      [Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100)]), 'zstd-compressed'],
    ];
    for (const [b, what] of cases) {
      expect(() => readModinfo(b)).toThrow(VersionError);
      expect(() => readModinfo(b)).toThrow(`not a loadable kernel module: ${what}`);
    }
    const truncated = fakeKo({ a: 'b' }).subarray(0, 100);
    expect(() => readModinfo(truncated)).toThrow('section table out of bounds');
  });

  it('modules.dep and module names', () => {
    const m = parseModulesDep('kernel/net/netfilter/xt_recent.ko.xz: kernel/net/netfilter/x_tables.ko.xz\nkernel/drivers/foo-bar.ko:\n');
    expect(m.get('xt_recent')).toEqual({ path: 'kernel/net/netfilter/xt_recent.ko.xz', deps: ['kernel/net/netfilter/x_tables.ko.xz'] });
    expect(m.get('foo_bar')!.deps).toEqual([]);
    expect(moduleNameOf('updates/dkms/xt_traffic.ko.zst')).toBe('xt_traffic');
  });
});
