/**
 * xttraffic as a library: read and parse the xt_traffic tables, build rules, load the module.
 *
 *   import { readTable, parseTraffic } from 'xttraffic';
 *   const rows = await readTable('lan');                  // TrafficRow[] (bigint counters)
 *   const rows2 = parseTraffic(fs.readFileSync('/proc/net/xt_traffic/lan', 'latin1'));
 */
export {
  parseTraffic,
  parseIpConn,
  parsePortConn,
  parseInfo,
  isIPv4,
  ipToNumber,
  numberToIp,
  maskToPrefix,
  TRAFFIC_HEADER,
  IPCONN_HEADER,
  PORTCONN_HEADER,
  U64_MAX,
  type InOut,
  type TrafficRow,
  type IpConnRow,
  type PortConnRow,
  type ConnCounters,
  type TableInfo,
  type TableOptions,
  type ParseOptions,
} from './lib/parse.js';
export {
  readTable,
  readRaw,
  readInfo,
  listTables,
  rowsOf,
  rowsFromColumns,
  fsReader,
  nativeReader,
  defaultReader,
  procDirFromEnv,
  type ReadTableOptions,
  type RawTable,
  type RowOf,
  type TableReader,
} from './lib/tables.js';
export {
  XtError,
  UsageError,
  RuntimeError,
  VersionError,
  ResourceError,
  ParseError,
  type ExitCode,
  type XtErrorJson,
  type ProcKind,
} from './lib/errors.js';
export { checkTableName, tableNameProblem, tableFile, DEFAULT_PROC_DIR, type TableKind } from './lib/names.js';
export { matchFromOptions, matchArgs, ruleArgs, parseNet, parseSave, deleteArgs, type TrafficMatch, type RuleOptions, type SavedRule } from './lib/rule.js';
export { loadBinding, tryLoadBinding, bindingCandidates, BindingUnavailableError, type BindingAttempt } from './lib/binding.js';
export { readModinfo, type ModInfo } from './lib/modinfo.js';
export { totalsOf, selectRows, sortKeys } from './lib/report.js';
export { toJson, humanBytes, humanCount } from './lib/format.js';
export { makeProgram, run } from './program.js';
export type { Deps } from './lib/deps.js';
