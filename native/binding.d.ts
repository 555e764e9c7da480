// Private typing of the .node exports (build/Release/xttraffic.node). Loaded through
// src/lib/binding.ts only; the public API is src/index.ts.

/** Node-style system error: message "EPERM: operation not permitted, finit_module '/x.ko'". */
export interface NativeSysError extends Error {
  /** errno name, e.g. "EPERM", "EEXIST", "EWOULDBLOCK" (shown as "EAGAIN" on Linux). */
  code: string;
  /** Negative errno, as in Node's fs errors (-1 for EPERM). */
  errno: number;
  syscall: 'open' | 'read' | 'finit_module' | 'delete_module';
  /** The file, or the module name for delete_module. */
  path?: string;
}

export type NativeTableKind = 'traffic' | 'ipconn' | 'portconn';

/** A table parsed by the native strict parser: one entry per row in `keys`, `countersPerRow`
 * counters per row in /proc column order (total_in, total_out, tcp_in, ...). */
export interface NativeColumns {
  rows: number;
  countersPerRow: 8 | 10;
  /** IPv4 as a host-order number, or the port. Strictly ascending. */
  keys: Uint32Array;
  counters: BigUint64Array;
  /** Exact sum of each counter column over all rows (may exceed 2^64). */
  sums: bigint[];
}

export interface NativeReadOptions {
  /** Open O_RDWR: read and clear in one atomic snapshot. */
  clear?: boolean;
  /** Fail with EFBIG beyond this many bytes (0 or absent: no limit). */
  maxBytes?: number;
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
  /** delete_module(2) with O_NONBLOCK (EWOULDBLOCK/EAGAIN while in use); force adds O_TRUNC. */
  unloadModule(name: string, force?: boolean): Promise<void>;
  /** Whole file in one open and a geometric buffer, in a worker thread. */
  readFile(path: string, options?: NativeReadOptions): Promise<Buffer>;
  /** readFile plus, in the same worker, the strict columnar parse; `columns` is undefined when
   * the text is not exactly in the kernel's format (parse `text` with src/lib/parse.ts then). */
  readTable(path: string, kind: NativeTableKind, options?: NativeReadOptions): Promise<{ text: Buffer; columns: NativeColumns | undefined }>;
  /** The strict columnar parser alone (synchronous). */
  parseColumns(text: Uint8Array, kind: NativeTableKind): NativeColumns | undefined;
  /** The widest cell of each column (key, then each counter) over the rows (all, or `order`). */
  cellWidths(kind: NativeTableKind, keys: Uint32Array, counters: BigUint64Array, order?: Uint32Array): number[];
  /** `read` output rows from columns, between prefix and suffix, in one Buffer (synchronous).
   * See src/lib/format-rows.ts (RowFormatter) for the styles; throws TypeError/RangeError on
   * bad arguments (an `order` index out of range, widths narrower than a cell). */
  formatRows(
    kind: NativeTableKind,
    keys: Uint32Array,
    counters: BigUint64Array,
    style: 'json' | 'csv' | 'table',
    options?: { order?: Uint32Array | undefined; widths?: number[] | undefined; prefix?: string | undefined; suffix?: string | undefined },
  ): Buffer;
}
