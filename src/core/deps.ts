/**
 * Everything the commands touch outside the process, injected through makeProgram(deps) so the
 * CLI tests run in-process with a fake binding, fake runners and temporary directories.
 */
import type { NativeBinding } from '../../native/binding.js';

export interface Out {
  /** Text, or bytes (`read` writes its whole output as one buffer). */
  write(s: string | Uint8Array): unknown;
  isTTY?: boolean | undefined;
  /** A terminal's size, current at every read (a tty.WriteStream updates it on SIGWINCH). */
  columns?: number | undefined;
  rows?: number | undefined;
  /** A terminal's 'resize' event (`watch` redraws at once at the new size). */
  on?(event: 'resize', listener: () => void): unknown;
  removeListener?(event: 'resize', listener: () => void): unknown;
}

/** What a whole write did: `written` of the bytes reached the file; `error` stopped the rest. */
export interface WriteResult {
  written: number;
  error?: NodeJS.ErrnoException | undefined;
}

/** What `watch` needs of stdin (a tty.ReadStream on a terminal). */
export interface KeyInput {
  isTTY?: boolean | undefined;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  removeListener(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Copy the command's output to this stream as it comes (progress on a TTY). */
  tee?: Out;
}

export interface RunResult {
  /** Exit status; 127 when the command was not found (then `notFound` is set). */
  code: number;
  stdout: string;
  stderr: string;
  notFound?: boolean;
}

/** Runs a program with an argument array (never through a shell). */
export type Runner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

/** Where the table files are: /proc/net/xt_traffic, or a folder named by $XTT_PROC_DIR. */
export interface ProcLocation {
  dir: string;
  /** The folder came from $XTT_PROC_DIR (errors then name it, not the module). */
  fromEnv: boolean;
}

/** Where the addon was looked for, and why each place failed. */
export interface BindingAttempt {
  path: string;
  error: string;
}

export interface Paths {
  /** /proc/net/xt_traffic, or the folder $XTT_PROC_DIR names */
  proc: ProcLocation;
  /** /sys/module */
  sysModule: string;
  /** /lib/modules */
  libModules: string;
  /** /usr/src (DKMS sources) */
  usrSrc: string;
  /** The xttraffic package (or checkout) root. */
  root: string;
  /** Where to look for the xtables directory when pkg-config cannot say. */
  xtlibdirs: string[];
  /** /etc: modules-load.d/, modprobe.d/ and xttraffic/ (boot persistence). */
  etc: string;
  /** Where `install --persist` puts the systemd units: /etc/systemd/system. */
  systemdUnits: string;
}

export interface Deps {
  stdout: Out;
  stderr: Out;
  stdin: KeyInput;
  env: NodeJS.ProcessEnv;
  run: Runner;
  /** The addon; throws BindingUnavailableError (listing every path tried) when it is missing. */
  binding(): NativeBinding;
  /** Where the addon was loaded from, or every path tried and why it failed. */
  bindingStatus(): { path?: string | undefined; tried: BindingAttempt[] };
  /** Reads a whole table file; `clear` opens it read-write (read and clear in one snapshot). */
  readProcFile(path: string, clear: boolean): Promise<string>;
  getuid(): number;
  /**
   * Writes all of `data` to the standard output and says how many bytes the OS took and what
   * stopped it (EPIPE, ENOSPC...): `read --clear` must know whether cleared counters reached
   * their reader. Never throws.
   */
  writeAll(data: Uint8Array): Promise<WriteResult>;
  /** Writes PATH.tmp-PID, fsyncs it, renames it over PATH, fsyncs the directory; throws the errno error. */
  writeFileAtomic(path: string, data: Uint8Array): Promise<void>;
  /** The host name (recorded in `read --json`). */
  hostname(): string;
  pid: number;
  /** `uname -r` */
  kernelRelease(): string;
  paths: Paths;
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Subscribes to a signal (SIGUSR1: the collector's "collect now"); returns the unsubscribe function. */
  onSignal(sig: 'SIGINT' | 'SIGTERM' | 'SIGUSR1', f: () => void): () => void;
}
