/**
 * The `.modinfo` section of a kernel module file (what `modinfo` prints), read from the ELF
 * bytes. Pure: takes a Buffer. Only uncompressed ELF64 little-endian modules (x86-64, what
 * `make` builds); compressed ones (.ko.xz, .ko.zst) are loaded through modprobe instead.
 */
import { VersionError } from '../core/errors.js';

export interface ModInfo {
  /** Every key=value in file order; keys that repeat (alias, parm, ...) have several values. */
  fields: Map<string, string[]>;
  name: string | undefined;
  version: string | undefined;
  /** e.g. "6.1.0-56-amd64 SMP preempt mod_unload modversions " */
  vermagic: string | undefined;
  /** The kernel release the module was built for (first word of vermagic). */
  release: string | undefined;
  /** Modules that must be loaded first (depends=), possibly empty. */
  depends: string[];
}

function bad(what: string): never {
  throw new VersionError('EBADMODULE', `not a loadable kernel module: ${what}`, {
    hint: 'rebuild it with `xttraffic build`',
  });
}

/** Parses the NUL-separated key=value strings of a .modinfo section. */
export function parseModinfoStrings(section: Buffer): ModInfo {
  const fields = new Map<string, string[]>();
  for (const s of section.toString('latin1').split('\0')) {
    if (s === '') continue;
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const k = s.slice(0, eq);
    const v = s.slice(eq + 1);
    const list = fields.get(k);
    if (list) list.push(v);
    else fields.set(k, [v]);
  }
  const one = (k: string) => fields.get(k)?.[0];
  const vermagic = one('vermagic');
  const dep = one('depends');
  return {
    fields,
    name: one('name'),
    version: one('version'),
    vermagic,
    release: vermagic?.trim().split(/\s+/)[0],
    depends: dep ? dep.split(',').filter((d) => d !== '') : [],
  };
}

/** Finds and parses the .modinfo section of an ELF64 little-endian module file. */
export function readModinfo(elf: Buffer): ModInfo {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) {
    if (elf.length >= 6 && elf.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) bad('xz-compressed');
    if (elf.length >= 4 && elf.readUInt32LE(0) === 0xfd2fb528) bad('zstd-compressed');
    bad('no ELF header');
  }
  if (elf[4] !== 2 || elf[5] !== 1) bad('not ELF64 little-endian');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) bad('section table out of bounds');
  const sh = (i: number) => {
    const o = shoff + i * shentsize;
    return { name: elf.readUInt32LE(o), offset: Number(elf.readBigUInt64LE(o + 0x18)), size: Number(elf.readBigUInt64LE(o + 0x20)) };
  };
  const strtab = sh(shstrndx);
  if (strtab.offset + strtab.size > elf.length) bad('section names out of bounds');
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    const n0 = strtab.offset + s.name;
    const n1 = elf.indexOf(0, n0);
    if (n1 < 0) continue;
    if (elf.toString('latin1', n0, n1) === '.modinfo') {
      if (s.offset + s.size > elf.length) bad('.modinfo out of bounds');
      return parseModinfoStrings(elf.subarray(s.offset, s.offset + s.size));
    }
  }
  bad('no .modinfo section');
}
