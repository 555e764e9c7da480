/**
 * xttraffic as a library: read and parse the xt_traffic tables, build rules, load the module.
 *
 *   import { readTable, parseTable } from 'xttraffic';
 *   const rows = await readTable('lan');                  // TrafficRow[] (bigint counters)
 *   const cols = parseTable('traffic', fs.readFileSync('/proc/net/xt_traffic/lan', 'latin1'));
 */
export {
  parseTable,
  parseInfo,
  rowsFromColumns,
  rowFromColumns,
  TRAFFIC_HEADER,
  IPCONN_HEADER,
  PORTCONN_HEADER,
  U64_MAX,
  type Columns,
  type InOut,
  type TrafficRow,
  type IpConnRow,
  type PortConnRow,
  type ConnCounters,
  type RowOf,
  type AnyRow,
  type TableInfo,
  type TableOptions,
} from './proc/parse.js';
export { isIPv4, ipToNumber, numberToIp, maskToPrefix } from './core/ip.js';
export {
  readTable,
  readColumns,
  readInfo,
  listTables,
  procLocation,
  procDirFromEnv,
  type ReadTableOptions,
  type ProcLocation,
} from './proc/tables.js';
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
} from './core/errors.js';
export { checkTableName, tableNameProblem, tableFile, DEFAULT_PROC_DIR, type TableKind } from './proc/names.js';
export { matchFromOptions, matchArgs, ruleArgs, parseNet, parseSave, deleteArgs, type TrafficMatch, type RuleOptions, type SavedRule } from './system/rule.js';
export { loadBinding, tryLoadBinding, bindingCandidates, BindingUnavailableError, type BindingAttempt } from './system/binding.js';
export { readModinfo, type ModInfo } from './system/modinfo.js';
export { selectOrder, totalsOfColumns, sortKeys } from './output/report.js';
export { toJson, humanBytes, humanCount } from './output/format.js';
export { makeProgram, run } from './program.js';
export { realDeps } from './real-deps.js';
export type { Deps } from './core/deps.js';
