/**
 * Typed errors of xttraffic. Every error carries a stable `code`, the process exit code the
 * CLI uses for it (iptables' convention) and, where there is one, a hint saying what to do.
 *
 * Exit codes: 0 ok, 1 runtime, 2 usage, 3 version/ABI, 4 resource/permission.
 */

export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
export const EXIT_VERSION = 3;
export const EXIT_RESOURCE = 4;

export type ExitCode = 0 | 1 | 2 | 3 | 4;

export interface XtErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Of an underlying system call failure (negative, as in Node's errors). */
  errno?: number;
  syscall?: string;
  path?: string;
}

/** JSON shape of an error, as printed with `--json`: `{"error": XtErrorJson}`. */
export interface XtErrorJson {
  code: string;
  message: string;
  exitCode: ExitCode;
  hint?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  line?: number;
}

export class XtError extends Error {
  override name = 'XtError';
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly path: string | undefined;

  constructor(code: string, exitCode: ExitCode, message: string, opts: XtErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.exitCode = exitCode;
    this.hint = opts.hint;
    this.errno = opts.errno;
    this.syscall = opts.syscall;
    this.path = opts.path;
  }

  toJSON(): XtErrorJson {
    const j: XtErrorJson = { code: this.code, message: this.message, exitCode: this.exitCode };
    if (this.hint !== undefined) j.hint = this.hint;
    if (this.errno !== undefined) j.errno = this.errno;
    if (this.syscall !== undefined) j.syscall = this.syscall;
    if (this.path !== undefined) j.path = this.path;
    return j;
  }
}

/** Bad command line: exit 2. */
export class UsageError extends XtError {
  override name = 'UsageError';
  constructor(message: string, opts: XtErrorOptions = {}) {
    super('EUSAGE', EXIT_USAGE, message, opts);
  }
}

/** Something failed at run time (a command, a read): exit 1. */
export class RuntimeError extends XtError {
  override name = 'RuntimeError';
  constructor(code: string, message: string, opts: XtErrorOptions = {}) {
    super(code, EXIT_RUNTIME, message, opts);
  }
}

/** Version or ABI mismatch (module built for another kernel, unexpected /proc format, addon
 * missing or built for another node): exit 3. */
export class VersionError extends XtError {
  override name = 'VersionError';
  constructor(code: string, message: string, opts: XtErrorOptions = {}) {
    super(code, EXIT_VERSION, message, opts);
  }
}

/** Missing resource or permission (not root, no such table, module in use, tool missing): exit 4. */
export class ResourceError extends XtError {
  override name = 'ResourceError';
  constructor(code: string, message: string, opts: XtErrorOptions = {}) {
    super(code, EXIT_RESOURCE, message, opts);
  }
}

export type ProcKind = 'traffic' | 'ipconn' | 'portconn' | 'info' | 'counters';

/** A line as it is, control and non-ASCII bytes escaped (a CRLF shows as `\r`), at most 200 bytes. */
export function escapeLine(text: string): string {
  const cut = text.length > 200 ? text.slice(0, 200) : text;
  let out = '';
  for (let i = 0; i < cut.length; i++) {
    const c = cut.charCodeAt(i);
    if (c === 9) out += '\\t';
    else if (c === 13) out += '\\r';
    else if (c === 92) out += '\\\\';
    else if (c === 34) out += '\\"';
    else if (c < 32 || c >= 127) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += cut[i];
  }
  return text.length > 200 ? `${out}...` : out;
}

export interface ParseSource {
  /** The file the text came from. */
  path?: string | undefined;
  /** Why that file: overrides the default hint (e.g. it came from $XTT_PROC_DIR). */
  hint?: string | undefined;
}

/**
 * /proc text that does not have the documented format. The kernel's format is a contract, so
 * this is a version/ABI problem (exit 3). `line` is 1-based; for a missing line it is the line
 * where it was expected. The message names the file, the line and shows the line escaped.
 */
export class ParseError extends XtError {
  override name = 'ParseError';
  readonly kind: ProcKind;
  readonly line: number;
  /** The offending line, escaped (see escapeLine), when there is one. */
  readonly text: string | undefined;

  constructor(kind: ProcKind, line: number, what: string, text?: string, source: ParseSource = {}) {
    const shown = text === undefined ? undefined : escapeLine(text);
    const where = source.path ?? `${kind} file`;
    super('EPARSE', EXIT_VERSION, `${where}: line ${line}: ${what}${shown === undefined ? '' : ` (the line: "${shown}")`}`, {
      hint: source.hint ?? 'the file does not have the format of this xttraffic version\'s xt_traffic module: is the loaded module (cat /sys/module/xt_traffic/version) the same version as xttraffic --version?',
      ...(source.path === undefined ? {} : { path: source.path }),
    });
    this.kind = kind;
    this.line = line;
    this.text = shown;
  }

  override toJSON(): XtErrorJson {
    return { ...super.toJSON(), line: this.line };
  }
}

/** Wraps anything thrown into an XtError (unknown errors are runtime errors, exit 1). */
export function toXtError(err: unknown): XtError {
  if (err instanceof XtError) return err;
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; errno?: unknown; syscall?: unknown; path?: unknown };
    const opts: XtErrorOptions = { cause: err };
    if (typeof e.errno === 'number') opts.errno = e.errno;
    if (typeof e.syscall === 'string') opts.syscall = e.syscall;
    if (typeof e.path === 'string') opts.path = e.path;
    const code = typeof e.code === 'string' ? e.code : 'EUNKNOWN';
    return new RuntimeError(code, err.message, opts);
  }
  return new RuntimeError('EUNKNOWN', String(err));
}
