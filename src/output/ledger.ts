/**
 * Text and CSV of the ledger's reports: SI units for people (kB = 10^3, GB = 10^9), exact
 * integers in CSV (and JSON, through toJson). Every report states its period's exact
 * boundaries and the gaps and events inside it. Pure.
 */
import type { HistoryPoint, P95, Report, Totals } from '../ledger/query.js';
import type { Quota, QuotaEvent } from '../ledger/quota.js';
import { iso, isoIn } from '../ledger/periods.js';
import { renderCsv, renderTable, toJson } from './format.js';

const SI = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB'];

/** 1234567n -> "1.23 MB" (SI, three significant digits, exact below 1000). */
export function siBytes(v: bigint): string {
  if (v < 1000n) return `${v} B`;
  let u = 0;
  let d = 1n;
  while (v >= d * 1000n && u < SI.length - 1) {
    d *= 1000n;
    u++;
  }
  const hundredths = (v * 100n + d / 2n) / d;
  return `${hundredths / 100n}.${String(hundredths % 100n).padStart(2, '0')} ${SI[u]}`;
}

export function siBits(bps: number | null): string {
  if (bps === null) return '-';
  const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
  let u = 0;
  let x = bps;
  while (x >= 1000 && u < units.length - 1) {
    x /= 1000;
    u++;
  }
  return `${x.toFixed(u === 0 ? 0 : 2)} ${units[u]}`;
}

const when = (t: number, tz: string) => (tz === 'UTC' ? iso(t) : `${isoIn(t, tz)} (${iso(t)})`);

function p95Text(p: P95): string {
  const ex = p.excluded.length === 0 ? 'none' : p.excluded.map((e) => `${iso(e.from)}..${iso(e.to)} ${e.why}`).join(', ');
  return `95th percentile (5-minute buckets, nearest rank ceil(0.95 n) = ${p.rank} of ${p.samples} samples, ${p.buckets} buckets): in ${siBits(p.inBps)}, out ${siBits(p.outBps)}, max(in,out) ${siBits(p.maxBps)}; excluded: ${ex}`;
}

const TOTAL_HEADERS = ['IN', 'OUT', 'TCP IN', 'TCP OUT', 'UDP IN', 'UDP OUT', 'OTHER IN', 'OTHER OUT', 'CONN IN', 'CONN OUT'];

function cells(t: Totals, f: (v: bigint) => string): string[] {
  const b = t.bytes;
  return [b.total.in, b.total.out, b.tcp.in, b.tcp.out, b.udp.in, b.udp.out, b.other.in, b.other.out, t.connections.total.in, t.connections.total.out]
    .map((v, i) => (i >= 8 ? v.toString() : f(v)));
}

export function renderReportText(r: Report): string {
  const out: string[] = [];
  out.push(r.kind === 'period'
    ? `period ${r.label} (billing day ${r.billingDay}, ${r.tz}): ${when(r.from, r.tz)} to ${when(r.to, r.tz)}, end exclusive`
    : `from ${when(r.from, r.tz)} to ${when(r.to, r.tz)}, end exclusive`);
  const c = r.coverage;
  out.push(c.first === null ? 'collected: no collection in this period' : `collected: ${iso(c.first)} to ${iso(c.last!)}`);
  if (c.events.length === 0) out.push('gaps and events: none');
  else {
    out.push('gaps and events:');
    for (const e of c.events) out.push(`  ${e.table}: ${e.from === null ? '(first reading)' : iso(e.from)} .. ${iso(e.to)}: ${e.flags.join(', ')}`);
  }
  if (r.groups.length > 0) {
    out.push('');
    out.push(renderTable({
      headers: ['GROUP', 'PERIOD', ...TOTAL_HEADERS],
      align: ['left', 'left', ...TOTAL_HEADERS.map(() => 'right' as const)],
      rows: r.groups.map((g) => [g.group, `${iso(g.from)}..${iso(g.to)}${g.closed ? ' closed' : ''}`, ...cells(g.totals, siBytes)]),
    }).trimEnd());
    for (const g of r.groups) if (g.p95) out.push(`${g.group}: ${p95Text(g.p95)}`);
  }
  out.push('');
  if (r.hosts.length === 0) out.push('hosts: none with traffic');
  else {
    out.push(renderTable({
      headers: ['HOST', ...(r.hosts.some((h) => h.group) ? ['GROUP'] : []), ...TOTAL_HEADERS],
      align: ['left', ...(r.hosts.some((h) => h.group) ? ['left' as const] : []), ...TOTAL_HEADERS.map(() => 'right' as const)],
      rows: r.hosts.map((h) => [h.host, ...(r.hosts.some((x) => x.group) ? [h.group ?? ''] : []), ...cells(h.totals, siBytes)]),
      footer: [`total (${r.hostCount} ${r.hostCount === 1 ? 'host' : 'hosts'})`, ...(r.hosts.some((h) => h.group) ? [''] : []), ...cells(r.totals, siBytes)],
    }).trimEnd());
    for (const h of r.hosts) if (h.p95) out.push(`${h.host}: ${p95Text(h.p95)}`);
  }
  return `${out.join('\n')}\n`;
}

const CSV_HEADERS = ['kind', 'name', 'group', 'from', 'to', 'bytes_in', 'bytes_out', 'tcp_in', 'tcp_out', 'udp_in', 'udp_out', 'other_in', 'other_out',
  'conn_in', 'conn_out', 'conn_tcp_in', 'conn_tcp_out', 'conn_udp_in', 'conn_udp_out', 'conn_icmp_in', 'conn_icmp_out', 'conn_other_in', 'conn_other_out'];

function csvCells(t: Totals): string[] {
  const b = t.bytes;
  const c = t.connections;
  return [b.total.in, b.total.out, b.tcp.in, b.tcp.out, b.udp.in, b.udp.out, b.other.in, b.other.out,
    c.total.in, c.total.out, c.tcp.in, c.tcp.out, c.udp.in, c.udp.out, c.icmp.in, c.icmp.out, c.other.in, c.other.out].map(String);
}

export function renderReportCsv(r: Report): string {
  const rows: string[][] = [];
  for (const g of r.groups) rows.push(['group', g.group, g.group, iso(g.from), iso(g.to), ...csvCells(g.totals)]);
  for (const h of r.hosts) rows.push(['host', h.host, h.group ?? '', iso(r.from), iso(r.to), ...csvCells(h.totals)]);
  return renderCsv(CSV_HEADERS, rows);
}

export function renderHistoryText(h: { kind: string; name: string; tz: string; points: HistoryPoint[] }): string {
  if (h.points.length === 0) return `${h.kind} ${h.name}: no data\n`;
  return renderTable({
    headers: ['FROM', 'TO', ...TOTAL_HEADERS],
    align: ['left', 'left', ...TOTAL_HEADERS.map(() => 'right' as const)],
    rows: h.points.map((p) => [isoIn(p.from, h.tz), isoIn(p.to, h.tz), ...cells(p.totals, siBytes)]),
  });
}

export function renderHistoryCsv(h: { points: HistoryPoint[] }): string {
  return renderCsv(['from', 'to', ...CSV_HEADERS.slice(5)], h.points.map((p) => [iso(p.from), iso(p.to), ...csvCells(p.totals)]));
}

/** One quota event as a log line of the collector. */
export function quotaEventLine(ev: QuotaEvent, done: string): string {
  const q = ev.quota;
  const what = ev.event === 'warn' ? 'at 80 % of its quota' : ev.event === 'over' ? 'over its quota' : ev.why === 'raised' ? 'quota raised above its use' : 'billing period ended';
  return `quota ${q.kind} ${q.target}: ${what} (${q.dir} ${siBytes(ev.used)} of ${siBytes(ev.limit)}, period from ${iso(ev.period.start)}): ${done}`;
}

/** `quota list` as a table. */
export function renderQuotasText(rows: Array<{ quota: Quota; used: bigint; periodStart: number | null; blocked: string[] }>): string {
  if (rows.length === 0) return 'no quotas\n';
  return renderTable({
    headers: ['TARGET', 'KIND', 'LIMIT', 'DIR', 'PER', 'ACTION', 'USED', 'PERIOD FROM', 'BLOCKED'],
    align: ['left', 'left', 'right', 'left', 'left', 'left', 'right', 'left', 'left'],
    rows: rows.map((r) => [r.quota.target, r.quota.kind, siBytes(r.quota.limit), r.quota.dir, r.quota.per, r.quota.action === 'exec' ? `exec ${r.quota.cmd}` : r.quota.action,
      siBytes(r.used), r.periodStart === null ? '' : iso(r.periodStart), r.blocked.join(' ')]),
  });
}

// ---------------------------------------------------------------------------------------------
// `report --json` of many hosts: the same text as toJson(), the host lines written directly
// (toJson's generic walk costs ~20 µs a host: 1.5 s for a /16)

const pads: string[] = [];
const P = (d: number) => (pads[d] ??= `\n${' '.repeat(2 * d)}`);
const io = (x: { in: bigint; out: bigint }, d: number) => `{${P(d + 1)}"in": ${x.in},${P(d + 1)}"out": ${x.out}${P(d)}}`;

function totalsJson(t: Totals, d: number): string {
  const b = t.bytes;
  const c = t.connections;
  const e = d + 2;
  return `{${P(d + 1)}"bytes": {${P(e)}"tcp": ${io(b.tcp, e)},${P(e)}"udp": ${io(b.udp, e)},${P(e)}"other": ${io(b.other, e)},${P(e)}"total": ${io(b.total, e)}${P(d + 1)}},`
    + `${P(d + 1)}"connections": {${P(e)}"tcp": ${io(c.tcp, e)},${P(e)}"udp": ${io(c.udp, e)},${P(e)}"icmp": ${io(c.icmp, e)},${P(e)}"other": ${io(c.other, e)},${P(e)}"total": ${io(c.total, e)}${P(d + 1)}}${P(d)}}`;
}

/** One host of a report at depth `d` (as toJson writes it); undefined: not the plain shape. */
function hostJson(h: Record<string, unknown>, d: number): string | undefined {
  const keys = Object.keys(h);
  const plain = keys[0] === 'host' && (keys.length === 3 ? keys[1] === 'group' && keys[2] === 'totals' : keys.length === 2 && keys[1] === 'totals');
  if (!plain) return undefined;
  const g = h['group'];
  return `{${P(d + 1)}"host": ${JSON.stringify(h['host'])},${g !== undefined ? `${P(d + 1)}"group": ${JSON.stringify(g)},` : ''}${P(d + 1)}"totals": ${totalsJson(h['totals'] as Totals, d + 1)}${P(d)}}`;
}

/**
 * toJson(doc) of a report document whose `hosts` member is an array: the same text, in
 * pieces of about 2,000 hosts (a /16 is ~55 MB of JSON: no one string of it).
 */
export function* reportJsonChunks(doc: { hosts: Array<Record<string, unknown>> } & Record<string, unknown>): Generator<string> {
  const MARK = '\u0000hosts\u0000';
  const head = toJson({ ...doc, hosts: MARK });
  const at = head.indexOf(JSON.stringify(MARK));
  yield head.slice(0, at);
  const hosts = doc.hosts;
  if (hosts.length === 0) yield '[]';
  else {
    let part: string[] = ['['];
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      part.push(`${i > 0 ? ',' : ''}${P(2)}${hostJson(h, 2) ?? toJson(h).replace(/\n/g, P(2))}`);
      if (part.length >= 2048) {
        yield part.join('');
        part = [];
      }
    }
    part.push(P(1), ']');
    yield part.join('');
  }
  yield head.slice(at + JSON.stringify(MARK).length);
}

export function reportJson(doc: { hosts: Array<Record<string, unknown>> } & Record<string, unknown>): string {
  return [...reportJsonChunks(doc)].join('');
}
