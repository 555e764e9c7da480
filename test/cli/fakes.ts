/**
 * Fakes for the in-process CLI tests: temporary /proc, /sys, /lib/modules, /usr/src and package
 * root; a fake addon that records its calls; a fake runner for iptables, make, depmod, dkms...
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { NativeBinding, NativeSysError } from '../../native/binding.js';
import { BindingUnavailableError } from '../../src/system/binding.js';
import type { Deps, KeyInput, RunOptions, RunResult } from '../../src/core/deps.js';
import { readTableFile } from '../../src/proc/tables.js';
import { writeFileAtomic } from '../../src/real-deps.js';
import { run } from '../../src/program.js';

/** A minimal ELF64 little-endian file with a .modinfo section holding `fields`. */
export function fakeKo(fields: Record<string, string | string[]>): Buffer {
  const strings: string[] = [];
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) strings.push(`${k}=${x}`);
  const modinfo = Buffer.from(strings.map((s) => `${s}\0`).join(''), 'latin1');
  const shstrtab = Buffer.from('\0.modinfo\0.shstrtab\0', 'latin1');
  const modinfoOff = 64;
  const shstrOff = modinfoOff + modinfo.length;
  const shoff = Math.ceil((shstrOff + shstrtab.length) / 8) * 8;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = 2; // ELFCLASS64
  buf[5] = 1; // little-endian
  buf[6] = 1;
  buf.writeUInt16LE(1, 0x10); // ET_REL
  buf.writeUInt16LE(62, 0x12); // x86-64
  buf.writeBigUInt64LE(BigInt(shoff), 0x28);
  buf.writeUInt16LE(64, 0x34);
  buf.writeUInt16LE(64, 0x3a);
  buf.writeUInt16LE(3, 0x3c);
  buf.writeUInt16LE(2, 0x3e);
  modinfo.copy(buf, modinfoOff);
  shstrtab.copy(buf, shstrOff);
  const sh = (i: number, name: number, type: number, off: number, size: number) => {
    const o = shoff + i * 64;
    buf.writeUInt32LE(name, o);
    buf.writeUInt32LE(type, o + 4);
    buf.writeBigUInt64LE(BigInt(off), o + 0x18);
    buf.writeBigUInt64LE(BigInt(size), o + 0x20);
  };
  sh(1, 1, 1, modinfoOff, modinfo.length); // .modinfo, PROGBITS
  sh(2, 10, 3, shstrOff, shstrtab.length); // .shstrtab, STRTAB
  return buf;
}

export const RELEASE = '6.1.0-56-amd64';

export interface Call {
  cmd: string;
  args: string[];
  xtablesLibdir: string | undefined;
}

export type Handler = (args: string[], opts: RunOptions) => Partial<RunResult> | undefined;

function sysError(code: string, errno: number, syscall: NativeSysError['syscall'], path: string): NativeSysError {
  const e = new Error(`${code}: failed, ${syscall} '${path}'`) as NativeSysError;
  e.code = code;
  e.errno = -errno;
  e.syscall = syscall;
  e.path = path;
  return e;
}

export interface FakeBinding extends NativeBinding {
  calls: Array<{ fn: string; args: unknown[] }>;
  /** errno name to fail the next loadModule of a path ending in the key with */
  loadFailures: Map<string, { code: string; errno: number }>;
  unloadFailure?: { code: string; errno: number } | undefined;
}

export class Fake {
  readonly dir: string;
  readonly procNet: string;
  readonly sysModule: string;
  readonly libModules: string;
  readonly usrSrc: string;
  readonly root: string;
  readonly xtlibdir: string;
  stdout = '';
  stderr = '';
  uid = 0;
  release = RELEASE;
  tty = false;
  bindingMissing = false;
  /** Every table file read: [path, clear]. */
  reads: Array<[string, boolean]> = [];
  calls: Call[] = [];
  handlers = new Map<string, Handler>();
  binding: FakeBinding;
  clock = 1_000_000;
  sleeps: number[] = [];
  signalHandlers = new Map<string, Set<() => void>>();
  stdin: KeyInput & { raw: boolean[]; listeners: Set<(c: Buffer | string) => void>; isTTY: boolean };
  /** stdout takes this many bytes, then fails with this errno code (EPIPE, ENOSPC). */
  stdoutFailure: { after: number; code: string } | undefined;
  /** writeFileAtomic of a path ending in the key fails with this errno code (ENOSPC, EACCES). */
  fileFailures = new Map<string, string>();
  /** Runs before each sleep resolves (to change tables between watch samples). */
  onSleep: ((n: number) => void) | undefined;
  /** The terminal's size (stdout.columns, stdout.rows); resize() changes it and emits 'resize'. */
  columns = 100;
  rows = 30;
  resizeListeners = new Set<() => void>();

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'xtt-cli-'));
    this.procNet = join(this.dir, 'proc/net/xt_traffic');
    this.sysModule = join(this.dir, 'sys/module');
    this.libModules = join(this.dir, 'lib/modules');
    this.usrSrc = join(this.dir, 'usr/src');
    this.root = join(this.dir, 'pkg');
    this.xtlibdir = join(this.dir, 'usr/lib/xtables');
    for (const d of [this.sysModule, this.libModules, this.usrSrc, this.root, this.xtlibdir]) mkdirSync(d, { recursive: true });
    this.binding = this.makeBinding();
    const listeners = new Set<(c: Buffer | string) => void>();
    const raw: boolean[] = [];
    this.stdin = {
      isTTY: false,
      raw,
      listeners,
      setRawMode: (r: boolean) => raw.push(r),
      on: (_e: 'data', l: (c: Buffer | string) => void) => listeners.add(l),
      removeListener: (_e: 'data', l: (c: Buffer | string) => void) => listeners.delete(l),
      resume: () => undefined,
      pause: () => undefined,
    };
    // Defaults: every tool exists and succeeds quietly.
    this.handlers.set('pkg-config', (args) => (args[0] === '--variable=xtlibdir' ? { stdout: `${this.xtlibdir}\n` } : {}));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  write(path: string, content: string | Buffer): string {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    return path;
  }

  /** A table file under the fake /proc/net/xt_traffic. */
  table(file: string, content: string): void {
    this.write(join(this.procNet, file), content);
  }

  /** The module as loaded in the fake /sys. */
  loaded(name: string, o: { version?: string; refcnt?: number } = {}): void {
    const d = join(this.sysModule, name);
    mkdirSync(d, { recursive: true });
    if (o.version) writeFileSync(join(d, 'version'), `${o.version}\n`);
    writeFileSync(join(d, 'refcnt'), `${o.refcnt ?? 0}\n`);
  }

  private makeBinding(): FakeBinding {
    const calls: FakeBinding['calls'] = [];
    const loadFailures = new Map<string, { code: string; errno: number }>();
    const self = this;
    const b: FakeBinding = {
      abi: 2,
      constants: {} as NativeBinding['constants'],
      calls,
      loadFailures,
      unloadFailure: undefined,
      async loadModule(path: string, params: string) {
        calls.push({ fn: 'loadModule', args: [path, params] });
        for (const [suffix, f] of loadFailures) if (path.endsWith(suffix)) throw sysError(f.code, f.errno, 'finit_module', path);
        const name = basename(path).replace(/\.ko$/, '');
        self.loaded(name, { version: name === 'xt_traffic' ? '0.1.0' : undefined });
      },
      async unloadModule(name: string) {
        calls.push({ fn: 'unloadModule', args: [name] });
        if (b.unloadFailure) throw sysError(b.unloadFailure.code, b.unloadFailure.errno, 'delete_module', name);
        rmSync(join(self.sysModule, name), { recursive: true, force: true });
      },
    };
    return b;
  }

  /** The terminal is now `columns` x `rows`: stdout says so and emits 'resize'. */
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    for (const l of this.resizeListeners) l();
  }

  deps(): Deps {
    const out = (which: 'stdout' | 'stderr') => ({
      write: (s: string | Uint8Array) => {
        this[which] += typeof s === 'string' ? s : Buffer.from(s).toString('utf8');
        return true;
      },
      get isTTY() {
        return self.tty;
      },
      get columns() {
        return self.columns;
      },
      get rows() {
        return self.rows;
      },
      on: (_e: 'resize', l: () => void) => self.resizeListeners.add(l),
      removeListener: (_e: 'resize', l: () => void) => self.resizeListeners.delete(l),
    });
    const self = this;
    return {
      stdout: out('stdout'),
      stderr: out('stderr'),
      stdin: this.stdin,
      env: { PATH: '/usr/bin', TMPDIR: join(this.dir, 'tmp') },
      run: async (cmd, args, opts = {}) => {
        this.calls.push({ cmd, args: [...args], xtablesLibdir: opts.env?.['XTABLES_LIBDIR'] });
        const h = this.handlers.get(basename(cmd));
        const r = h ? h([...args], opts) : {};
        if (r === undefined) return { code: 127, stdout: '', stderr: `${cmd}: not found`, notFound: true };
        return { code: 0, stdout: '', stderr: '', ...r };
      },
      binding: () => {
        if (this.bindingMissing) throw new BindingUnavailableError([{ path: '/pkg/build/Release/xttraffic.node', error: 'not found' }]);
        return this.binding;
      },
      bindingStatus: () => (this.bindingMissing
        ? { tried: [{ path: '/pkg/build/Release/xttraffic.node', error: 'not found' }] }
        : { path: '/pkg/build/Release/xttraffic.node', tried: [] }),
      readProcFile: async (path, clear) => {
        this.reads.push([path, clear]);
        const text = await readTableFile(path, clear);
        // like the kernel: a read-write open (or any read of a --clearonread table) snapshots and
        // zeroes; rows that are all zero vanish
        const info = path.endsWith('_info') ? '' : (() => { try { return readFileSync(`${path.replace(/_(ip|port)conn$/, '')}_info`, 'utf8'); } catch { return ''; } })();
        if ((clear || /^options: .*\bclearonread\b/m.test(info)) && !path.endsWith('_info')) writeFileSync(path, `${text.split('\n')[0]!}\n`);
        return text;
      },
      getuid: () => this.uid,
      writeAll: async (data) => {
        const fail = this.stdoutFailure;
        const n = fail ? Math.min(fail.after, data.length) : data.length;
        this.stdout += Buffer.from(data.subarray(0, n)).toString('utf8');
        if (!fail || n === data.length) return { written: n };
        return { written: n, error: Object.assign(new Error(`${fail.code}: write failed`), { code: fail.code, syscall: 'write' }) };
      },
      writeFileAtomic: async (path, data) => {
        for (const [suffix, code] of this.fileFailures) {
          if (path.endsWith(suffix)) throw Object.assign(new Error(`${code}: failed, open '${path}.tmp-4242'`), { code, syscall: 'open', path: `${path}.tmp-4242` });
        }
        await writeFileAtomic(path, data);
      },
      hostname: () => 'router1',
      pid: 4242,
      kernelRelease: () => this.release,
      paths: {
        proc: { dir: this.procNet, fromEnv: false },
        etc: join(this.dir, 'etc'),
        systemdUnits: join(this.dir, 'etc/systemd/system'),
        sysModule: this.sysModule,
        libModules: this.libModules,
        usrSrc: this.usrSrc,
        root: this.root,
        xtlibdirs: [this.xtlibdir],
      },
      now: () => this.clock,
      sleep: async (ms) => {
        this.sleeps.push(ms);
        this.clock += ms;
        this.onSleep?.(this.sleeps.length);
      },
      onSignal: (sig, f) => {
        const set = this.signalHandlers.get(sig) ?? new Set();
        set.add(f);
        this.signalHandlers.set(sig, set);
        return () => set.delete(f);
      },
    };
  }

  /** Runs the CLI in-process; returns the exit code (stdout/stderr accumulate on this). */
  async run(...argv: string[]): Promise<number> {
    this.stdout = '';
    this.stderr = '';
    return run(argv, this.deps());
  }

  json(): unknown {
    return JSON.parse(this.stdout);
  }

  errorJson(): { error: Record<string, unknown> } {
    return JSON.parse(this.stderr) as { error: Record<string, unknown> };
  }

  runsOf(cmd: string): string[][] {
    return this.calls.filter((c) => basename(c.cmd) === cmd).map((c) => c.args);
  }
}
