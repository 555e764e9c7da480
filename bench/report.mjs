#!/usr/bin/env node
// bench/report.mjs DIR [OUTDIR]: turns the raw TSV files of one `npm run bench` into tables on
// stdout and, with OUTDIR, OUTDIR/<base>.md and <base>.json, base = latest (complete run),
// quick (BENCH_QUICK=1) or partial (a part skipped or failed). DIR holds:
//   meta.tsv                    host side (bench/bench.sh): date, mode, seconds per part
//   icount/meta.tsv             guest: kernel, iptables, count, ...
//   icount/results.tsv          contender sources sent usec pps ns_per_pkt
//   icount/reads.tsv            key rows cpu_s guest_s host_wall_s status description
//   icount/extra.tsv            key value unit note (memory)
//   wall/meta.tsv, wall/wall.tsv  contender sources sent usec pps ns_per_pkt round
//   native.tsv                  step addon_ms fs_ms note (bench/native-read.mjs)
//   ledger.tsv                  step value unit note (bench/ledger.mjs)
// Pure functions are exported for test/unit/bench-report.test.ts.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const tsv = (text) => text.split('\n').filter((l) => l.trim()).map((l) => l.split('\t'));
const num = (s) => (s === undefined || s === '' ? null : Number(s));
const round1 = (x) => Math.round(x * 10) / 10;

export function parseMeta(text) {
  return Object.fromEntries(tsv(text).map(([k, ...v]) => [k, v.join('\t')]));
}

/**
 * rows: {contender, sources, sent, usec, pps, nsPerPacket[, round][, load]}; load (column 8):
 * 'ipv4-dst' or 'ipv6-dst' (bench/run.sh's measure_dst), absent = IPv4 by source
 */
export function parseResults(text) {
  return tsv(text).map(([contender, sources, sent, usec, pps, ns, round, load]) => ({
    contender, sources: Number(sources), sent: Number(sent), usec: Number(usec), pps: Number(pps),
    nsPerPacket: Number(ns), ...(round !== undefined && round !== '' ? { round: Number(round) } : {}),
    ...(load ? { load } : {}),
  }));
}

/** What packet counters cost: packets=1 minus packets=0 (--traffic), per load and sources. */
export function packetsCost(rows) {
  return rows.filter((r) => r.contender === 'xt_traffic --traffic, packets=1').map((r) => {
    const b = rows.find((x) => x.contender === 'xt_traffic --traffic' && x.sources === r.sources && x.load === r.load);
    return { load: r.load ?? 'ipv4-src', sources: r.sources, packets0: b?.added ?? null, packets1: r.added,
      cost: b && r.added !== null && b.added !== null ? round1(r.added - b.added) : null };
  });
}

export const LOADS = {
  'ipv4-dst': 'IPv4 by destination',
  'ipv6-dst': 'IPv6 by destination',
};

export function parseExtra(text) {
  return tsv(text).map(([key, value, unit, note]) => ({ key, value: Number(value), unit: unit ?? '', note: note ?? '' }));
}

/** reading steps: {key, rows, cpu, guest, wall, status, reader} (seconds) */
export function parseReads(text) {
  return tsv(text).map(([key, rows, cpu, guest, wall, status, reader]) => ({
    key, rows: Number(rows), cpu: num(cpu), guest: num(guest), wall: num(wall), status: status ?? '', reader: reader ?? key,
  }));
}

/** native read steps: {step, addonMs, fsMs, note} */
export function parseNative(text) {
  return tsv(text).map(([step, a, f, note]) => ({ step, addonMs: num(a), fsMs: num(f), note: note ?? '' }));
}

/** ledger figures: {key, value, unit, note} (bench/ledger.mjs) */
export function parseLedger(text) {
  return parseExtra(text);
}

/** The ledger's targets (issue 11), from bench/ledger.mjs's figures (host wall/CPU ms, load beside). */
export function ledgerTargets(ledger) {
  const t = [];
  // only a run of a whole /16 is measured against them (BENCH_LEDGER_HOSTS may make it smaller)
  const v = (k) => {
    const f = ledger.find((a) => a.key === k);
    return f && /\b65536 (active )?hosts\b/.test(f.note) ? f.value : null; // "65536 active hosts ..." or "report ..., 65536 hosts"
  };
  const add = (target, limit, value, ok) => t.push({ target, limit, value, met: value === null ? null : ok(value) });
  add('ledger: one collection of 65,536 active hosts, wall ms (host; see the load in the note)', '<= 1000', v('ledger_ingest_wall'), (x) => x <= 1000);
  add('ledger: one collection of 65,536 active hosts, CPU ms', '<= 500', v('ledger_ingest_cpu'), (x) => x <= 500);
  add('ledger: report of a month for 65,536 hosts, wall ms', '< 2000', v('ledger_report_month'), (x) => x < 2000);
  return t;
}

/**
 * Adds `added` = ns/packet(config) - ns/packet(no rule, same load and sources; else the
 * nearest sources of that load).
 */
export function withAdded(rows) {
  return rows.map((r) => {
    if (r.contender === 'no rule') return { ...r, added: 0 };
    const base = rows.filter((x) => x.contender === 'no rule' && x.load === r.load);
    const b = base.find((x) => x.sources === r.sources) ??
      [...base].sort((x, y) => Math.abs(x.sources - r.sources) - Math.abs(y.sources - r.sources))[0];
    return { ...r, added: b ? round1(r.nsPerPacket - b.nsPerPacket) : null };
  });
}

export function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Wall-clock rounds -> one row per contender (first-seen order): median pps, min and max pps,
 * spread = (max - min) / median pps in %, median ns/packet, and added ns/packet = the median
 * over rounds of ns(config) - ns(no rule, same round and sources).
 */
export function wallSummary(rows) {
  const keys = [];
  for (const r of rows) if (!keys.some(([c, n]) => c === r.contender && n === r.sources)) keys.push([r.contender, r.sources]);
  const base = (round, n) => rows.find((x) => x.contender === 'no rule' && x.sources === n && x.round === round);
  return keys.map(([contender, sources]) => {
    const rs = rows.filter((r) => r.contender === contender && r.sources === sources);
    const pps = rs.map((r) => r.pps);
    const med = median(pps);
    const added = contender === 'no rule' ? [0]
      : rs.map((r) => base(r.round, sources)).every(Boolean)
        ? rs.map((r) => r.nsPerPacket - base(r.round, sources).nsPerPacket) : [];
    return {
      contender, sources, rounds: rs.length, packets: rs[0]?.sent ?? null,
      medianPps: Math.round(med), minPps: Math.min(...pps), maxPps: Math.max(...pps),
      spreadPct: med ? round1(((Math.max(...pps) - Math.min(...pps)) / med) * 100) : null,
      medianNs: round1(median(rs.map((r) => r.nsPerPacket))),
      addedNs: added.length ? round1(median(added)) : null,
    };
  });
}

const find = (rows, c, n, load) => rows.find((r) => r.contender === c && r.sources === n && r.load === load);

/**
 * IPv6 against IPv4, xt_traffic --traffic, per number of sources: added instructions of the
 * IPv6 rows over their IPv4 by-destination twins (the same load: random destinations), and
 * over the IPv4 by-source row of the main table.
 */
export function ipv6Ratios(rows) {
  const out = [];
  const r2 = (a, b) => (a !== null && b ? Math.round((a / b) * 100) / 100 : null);
  // the floor of a rule with a match that returns at once (measured at 256 for each load)
  const floor = (load) => find(rows, 'rule with a trivial match (-m mark)', 256, load)?.added ?? null;
  const own = (a, f) => (a !== null && f !== null ? round1(a - f) : null);
  for (const v6 of rows.filter((r) => r.load === 'ipv6-dst' && r.contender === 'xt_traffic --traffic')) {
    const v4d = find(rows, 'xt_traffic --traffic', v6.sources, 'ipv4-dst')?.added ?? null;
    const v4s = find(rows, 'xt_traffic --traffic', v6.sources, undefined)?.added ?? null;
    const o6 = own(v6.added, floor('ipv6-dst'));
    const o4 = own(v4d, floor('ipv4-dst'));
    out.push({ sources: v6.sources, ipv6: v6.added, ipv4Dst: v4d, ipv4Src: v4s, ratioDst: r2(v6.added, v4d), ratioSrc: r2(v6.added, v4s),
      ...(o6 !== null && o4 !== null ? { ipv6Own: o6, ipv4Own: o4, ratioOwn: r2(o6, o4) } : {}) });
  }
  return out;
}

/** The IPv4 by-destination twin of an IPv6 contender (ipset: the IPv4 rows' own hash:ip, on dst). */
export const IPV4_TWIN = { 'ipset hash:net inet6 counters': 'ipset hash:ip counters' };

/**
 * Every IPv6 contender against its IPv4 twin measured the same way (by destination, same
 * number of hosts / 64s, each over its own load's no-rule baseline): the report's ratio column.
 */
export function ipv6Twins(rows) {
  const r2 = (a, b) => (a !== null && a !== undefined && b ? Math.round((a / b) * 100) / 100 : null);
  return rows.filter((r) => r.load === 'ipv6-dst' && r.contender !== 'no rule').map((v6) => {
    const twin = IPV4_TWIN[v6.contender] ?? v6.contender;
    const v4 = find(rows, twin, v6.sources, 'ipv4-dst')?.added ?? null;
    return { contender: v6.contender, ipv4Contender: twin, sources: v6.sources, ipv6: v6.added, ipv4: v4, ratio: r2(v6.added, v4) };
  });
}

/** The issue's targets, each {target, limit, value, met} (value null = not measured). */
export function targets(rows, extra, reads = [], stepTimeout = null) {
  const t = [];
  const x = (n) => find(rows, 'xt_traffic --traffic', n)?.added ?? null;
  const full = (n) => find(rows, 'xt_traffic --traffic --ipconn --portconn', n)?.added ?? null;
  const worst = (f) => {
    const v = [256, 4096, 65536].map(f).filter((a) => a !== null);
    return v.length ? Math.max(...v) : null;
  };
  const add = (target, limit, value, ok) => t.push({ target, limit, value, met: value === null ? null : ok(value) });
  add('xt_traffic --traffic added instructions/packet (worst of 256/4,096/65,536)', '<= 185', worst(x), (v) => v <= 185);
  const g = x(256) && x(65536) !== null ? Math.round((x(65536) / x(256)) * 100) / 100 : null;
  add('xt_traffic --traffic growth 256 -> 65,536 sources', '<= 1.2x', g, (v) => v <= 1.2);
  add('xt_traffic --traffic --ipconn --portconn added instructions/packet (worst)', '<= 280', worst(full), (v) => v <= 280);
  const chain = find(rows, 'per-IP chain, 4096 rules', 4096)?.added ?? null;
  const r = chain !== null && x(4096) ? Math.round(chain / x(4096)) : null;
  add('per-IP chain of 4,096 hosts / xt_traffic --traffic (4,096 sources)', '>= 300x', r, (v) => v >= 300);
  const rd = (k) => reads.find((a) => a.key === k && a.status === 'ok')?.cpu ?? null;
  const rx = rd('read_xtt_65536');
  const ra = rd('read_iptaccount_65536');
  add('xttraffic read --json 65,536 rows vs iptaccount -l (guest CPU s)', '<= iptaccount',
    rx !== null && ra !== null ? `${rx} vs ${ra}` : null, () => rx <= ra);
  const big = reads.find((a) => a.key === 'read_xtt_1048576');
  add('xttraffic read --json 1,048,576 rows (guest CPU s; host wall s)',
    stepTimeout ? `completes within ${stepTimeout} s` : 'completes',
    big ? (big.status === 'ok' ? `${big.cpu} CPU; ${big.wall} wall` : `${big.status} after ${big.wall} s wall`) : null,
    () => big.status === 'ok');
  const e = (k) => extra.find((a) => a.key === k)?.value ?? null;
  // entries: the module's kmem_cache since issue 12 (kmalloc-64 before)
  const m = e('mem_entry_per_host') ?? e('mem_kmalloc64_per_host');
  const mb = e('mem_buckets_per_host');
  add('memory per tracked host (entries + bucket array), bytes', '<= 128',
    m !== null ? round1(m + (mb ?? 0)) : null, (v) => v <= 128);
  const v6 = ipv6Ratios(rows).map((a) => a.ratioDst).filter((a) => a !== null);
  add('IPv6 / IPv4 xt_traffic --traffic added instructions/packet (by destination; worst of 256/65,536)', '<= 1.3x',
    v6.length ? Math.max(...v6) : null, (v) => v <= 1.3);
  return t;
}

const fmt = (n) => (n === null || n === undefined ? 'n/a' : typeof n === 'number' ? n.toLocaleString('en-US') : String(n));
// a ratio cell: 'n/a' when a side was not measured (never 'n/ax')
const ratio = (n) => (n === null || n === undefined ? 'n/a' : `${fmt(n)}x`);

export function method(meta) {
  const ic = meta.icount === '1';
  return (ic ? 'qemu TCG -icount shift=0,sleep=off -smp 1 (1 guest ns = 1 guest instruction: ns/packet is instructions/packet; counts, not times: no cache misses)'
    : 'qemu TCG wall clock (NOT icount: ns/packet are noisy times, ±20%)') +
    `; pktgen xmit_mode netif_receive on a dummy device, UDP, IP length 100, random sources over N hosts of 10.50.0.0/16, ${meta.count} packets per measured pass after a warm-up pass (one packet per host); raw PREROUTING ends in DROP; added = 1e9/pps(config) - 1e9/pps(no rule, same sources)`;
}

export function ipv6Method(count) {
  return 'as above, but the load varies destinations, because pktgen cannot vary an IPv6 source: in its source ' +
    '(net/core/pktgen.c of Debian\'s linux-source-6.1, 6.1.192) `src6` sets one fixed source, no command sets the ' +
    'min_in6_saddr/max_in6_saddr it declares, and only the destination varies ("Only random destinations yet": ' +
    'each 32-bit word = (random | dst6_min) & dst6_max). So the IPv6 rows count by destination, and the sets are keyed ' +
    'on the destination accordingly (the issue names an nft set on ip6 saddr: the same set code on the other address). ' +
    'IPv6: UDP, IPv6 length 100 (40 + 60), from 2001:db8:ffff::2 to 2001:db8:0:X::1 for N random /64s X of the monitored 2001:db8::/48 ' +
    '(ip6tables-legacy -m traffic, revision 1, default --hostprefix 64; ipset hash:net family inet6 counters, its N /64 members filled by one ipset restore, --match-set s6 dst; ' +
    'nft dynamic set keyed on ip6 daddr with counters, filled by the warm-up), warm-up 20 x N random packets (10 x N at 65,536); ' +
    'IPv4 by destination, the IPv6 rows\' twins for the IPv6 / IPv4 ratio: from 10.60.0.2 to N hosts of 10.50.0.0/16, the same xt_traffic rule as by source, ' +
    'ipset hash:ip counters with --match-set s dst, nft set keyed on ip daddr; warm-up one packet per host; ' +
    `${count ?? '?'} packets per measured pass; each load has its own no-rule baseline`;
}

export function wallMethod(meta) {
  const ic = meta.icount === '1';
  return (ic ? 'quick mode: ran inside the icount VM to check the pipeline (instruction counts, NOT wall clock)'
    : 'wall clock under qemu TCG (no icount), -smp 1: noisy and host-dependent (other load on the host shows up), but sees what counts cannot (cache misses, memory traffic)') +
    `; ${meta.wall_rounds} rounds, each measuring every contender once in turn (interleaved; even rounds in reverse order), ${meta.wall_count} packets per pass over ${meta.wall_sources} sources after a warm-up pass; median pps, spread = (max - min) / median pps; added ns/packet = median over rounds of ns/packet(config) - ns/packet(no rule, same round)`;
}

/** The whole report from the parsed inputs: what latest.json holds. */
export function report({ meta = {}, icountMeta = {}, results = [], reads = [], extra = [], wallMeta = {}, wall = [], native = [], ledger = [] }) {
  const r = withAdded(results);
  const mode = meta.mode ?? (icountMeta.quick === '1' ? 'quick' : 'full');
  const secs = (m, prefix = '') => Object.entries(m).filter(([k]) => k.startsWith('seconds_')).map(([k, v]) => [prefix + k.slice(8), Number(v)]);
  // the host's parts, then the icount guest's sections (bench/run.sh, host wall clock)
  const seconds = Object.fromEntries([...secs(meta), ...secs(icountMeta, 'icount_')]);
  const stepTimeout = icountMeta.step_timeout ? Number(icountMeta.step_timeout) : null;
  const rep = {
    date: meta.date ?? icountMeta.date, kernel: icountMeta.kernel ?? wallMeta.kernel, mode,
    iptables: icountMeta.iptables ?? wallMeta.iptables, host: meta.host, seconds,
    ...(meta.vms_beside_wall ? { vmsBesideWall: meta.vms_beside_wall } : {}),
    ...(meta.commit ? { commit: meta.commit } : {}), // HEAD when the run started (+ uncommitted changes?)
    ...(meta.note ? { note: meta.note } : {}), // e.g. a run assembled from pieces
    failed: meta.failed ? meta.failed.split(',') : [], skipped: meta.skipped ? meta.skipped.split(',') : [],
    method: method(icountMeta), results: r, count: icountMeta.count ? Number(icountMeta.count) : null,
    ipv6: ipv6Ratios(r), ipv6Twins: ipv6Twins(r), packetsCost: packetsCost(r),
    reads, readMethod: `guest CPU seconds (user+sys) of each reader under icount (steady); host wall seconds of the step (noisy); each step killed after ${stepTimeout ?? '?'} s of host wall clock`,
    figures: extra,
    wall: wall.length ? { method: wallMethod(wallMeta), results: wallSummary(wall), rounds: wall } : null,
    native: native.length ? { method: native.some((x) => x.addonMs !== null)
      ? 'host wall ms, best of 3: a table file in the kernel\'s format read through the addon and through node fs + the TypeScript parser (bench/native-read.mjs)'
      : 'host wall ms, best of 3: a table file in the kernel\'s format (a regular file: one read() returns it all, unlike /proc) read through node fs + the TypeScript parser, the one reader (bench/native-read.mjs)', steps: native } : null,
    ledger: ledger.length ? { method: 'host, bench/ledger.mjs: one collection (read + parse + deltas + 5-minute rollup + commit; median of 10) and the fold of a closed 5-minute bucket into hour/day/period (its own transaction after the commit, once per 5 minutes): wall and CPU ms; report --period --json as a new process (median of 3); file growth per active host per day of 5-minute collections. A shared machine: the load average is in each note', figures: ledger } : null,
    targets: mode === 'full' ? [...targets(r, extra, reads, stepTimeout), ...(ledger.length ? ledgerTargets(ledger) : [])] : [],
  };
  return rep;
}

export function markdown(rep) {
  const L = [];
  L.push(`# xttraffic benchmark (${rep.mode})`, '');
  L.push(`- date: ${rep.date}`, `- kernel: ${rep.kernel}`, `- iptables: ${rep.iptables}`);
  if (rep.host) L.push(`- host: ${rep.host}`);
  if (rep.commit) L.push(`- commit: ${rep.commit}`);
  if (rep.vmsBesideWall) L.push(`- other VMs on the host during the wall-clock pass: ${rep.vmsBesideWall}`);
  if (rep.note) L.push(`- note: ${rep.note}`);
  const s = rep.seconds ?? {};
  if (Object.keys(s).length) L.push(`- took: ${Object.entries(s).map(([k, v]) => `${k.replace(/_/g, ' ')} ${v} s`).join(', ')}`);
  if (rep.failed?.length) L.push(`- FAILED: ${rep.failed.join(', ')}`);
  if (rep.skipped?.length) L.push(`- skipped: ${rep.skipped.join(', ')}`);
  if (rep.results.length) {
    L.push('', '## Packet cost: added guest instructions per packet (icount)', '', `Method: ${rep.method}`, '');
    L.push('| contender | sources | packets | pps | ns/packet | added instructions/packet |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rep.results.filter((x) => !x.load)) {
      L.push(`| ${r.contender} | ${fmt(r.sources)} | ${fmt(r.sent)} | ${fmt(r.pps)} | ${fmt(r.nsPerPacket)} | ${fmt(r.added)} |`);
    }
    const dst = rep.results.filter((x) => x.load);
    if (dst.length) {
      L.push('', '## Packet cost, IPv6 (icount)', '', `Method: ${ipv6Method(rep.count)}`, '');
      L.push('| load | contender | sources | packets | pps | ns/packet | added instructions/packet |');
      L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
      for (const r of dst) {
        L.push(`| ${LOADS[r.load] ?? r.load} | ${r.contender} | ${fmt(r.sources)} | ${fmt(r.sent)} | ${fmt(r.pps)} | ${fmt(r.nsPerPacket)} | ${fmt(r.added)} |`);
      }
    }
    if (rep.ipv6Twins?.length) {
      L.push('', 'IPv6 against IPv4, every contender, both by destination (added instructions/packet; the IPv4 twin measured in the same run the same way):', '');
      L.push('| contender | /64s (IPv6) = hosts (IPv4) | IPv6 | IPv4 by destination | IPv6 / IPv4 |', '| --- | ---: | ---: | ---: | ---: |');
      for (const a of rep.ipv6Twins) {
        const name = a.ipv4Contender === a.contender ? a.contender : `${a.contender} (IPv4: ${a.ipv4Contender})`;
        L.push(`| ${name} | ${fmt(a.sources)} | ${fmt(a.ipv6)} | ${fmt(a.ipv4)} | ${a.ratio === null ? 'n/a' : `${fmt(a.ratio)}x`} |`);
      }
    }
    if (rep.packetsCost?.length) {
      L.push('', 'Packet counters (module parameter packets=1, /proc/net/xt_traffic_packets/NAME) against packets=0, `--traffic` (added instructions/packet):', '');
      L.push('| load | sources | packets=0 | packets=1 | cost of packet counters |', '| --- | ---: | ---: | ---: | ---: |');
      for (const a of rep.packetsCost) L.push(`| ${LOADS[a.load] ?? 'IPv4 by source'} | ${fmt(a.sources)} | ${fmt(a.packets0)} | ${fmt(a.packets1)} | ${fmt(a.cost)} |`);
    }
    if (rep.ipv6?.length) {
      L.push('', 'xt_traffic `--traffic`, IPv6 against IPv4 (added instructions/packet):', '');
      L.push('| sources | IPv6 (/64s, by destination) | IPv4 by destination | IPv6 / IPv4 | IPv4 by source | IPv6 / IPv4 by source |');
      L.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
      for (const a of rep.ipv6) {
        L.push(`| ${fmt(a.sources)} | ${fmt(a.ipv6)} | ${fmt(a.ipv4Dst)} | ${ratio(a.ratioDst)} | ${fmt(a.ipv4Src)} | ${ratio(a.ratioSrc)} |`);
      }
      if (rep.ipv6.some((a) => a.ratioOwn !== undefined)) {
        L.push('', 'The same without the floor of any match (a rule with `-m mark` matching everything, 256 destinations, per family): what the match itself adds:', '');
        L.push('| sources | IPv6 | IPv4 by destination | IPv6 / IPv4 |', '| ---: | ---: | ---: | ---: |');
        for (const a of rep.ipv6) L.push(`| ${fmt(a.sources)} | ${fmt(a.ipv6Own)} | ${fmt(a.ipv4Own)} | ${ratio(a.ratioOwn)} |`);
      }
    }
  }
  if (rep.wall) {
    L.push('', '## Packet cost: wall clock under TCG (second view; noisy)', '', `Method: ${rep.wall.method}`, '');
    L.push('| contender | sources | rounds | median pps | min - max pps | spread % | median ns/packet | added ns/packet |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const w of rep.wall.results) {
      L.push(`| ${w.contender} | ${fmt(w.sources)} | ${w.rounds} | ${fmt(w.medianPps)} | ${fmt(w.minPps)} - ${fmt(w.maxPps)} | ${fmt(w.spreadPct)} | ${fmt(w.medianNs)} | ${fmt(w.addedNs)} |`);
    }
  }
  if (rep.reads?.length) {
    L.push('', '## Reading', '', `Method: ${rep.readMethod}`, '');
    L.push('| reader | rows | guest CPU s | host wall s | status | key |', '| --- | ---: | ---: | ---: | --- | --- |');
    for (const r of rep.reads) L.push(`| ${r.reader} | ${fmt(r.rows)} | ${fmt(r.cpu)} | ${fmt(r.wall)} | ${r.status} | ${r.key} |`);
  }
  if (rep.figures?.length) {
    L.push('', '## Memory', '', '| figure | value | unit | note |', '| --- | ---: | --- | --- |');
    for (const e of rep.figures) L.push(`| ${e.key} | ${fmt(e.value)} | ${e.unit} | ${e.note} |`);
  }
  if (rep.native) {
    const rows = rep.native.steps.find((x) => x.step === 'table_rows');
    L.push('', `## Native read on the host${rows ? ` (${fmt(rows.addonMs ?? rows.fsMs)} rows)` : ''}`, '', `Method: ${rep.native.method}`, '');
    const addon = rep.native.steps.some((x) => x.step !== 'table_rows' && x.addonMs !== null);
    L.push(addon ? '| step | addon ms | fs + TypeScript parser ms |' : '| step | fs + TypeScript parser ms |', addon ? '| --- | ---: | ---: |' : '| --- | ---: |');
    for (const x of rep.native.steps) {
      if (x.step !== 'table_rows') L.push(addon ? `| ${x.note || x.step} | ${fmt(x.addonMs)} | ${fmt(x.fsMs)} |` : `| ${x.note || x.step} | ${fmt(x.fsMs)} |`);
    }
  }
  if (rep.ledger) {
    L.push('', '## Ledger on the host', '', `Method: ${rep.ledger.method}`, '', '| figure | value | unit | note |', '| --- | ---: | --- | --- |');
    for (const e of rep.ledger.figures) L.push(`| ${e.key} | ${fmt(e.value)} | ${e.unit} | ${e.note} |`);
  }
  if (rep.targets?.length) {
    L.push('', '## Targets', '', '| target | limit | measured | met |', '| --- | --- | ---: | --- |');
    for (const t of rep.targets) L.push(`| ${t.target} | ${t.limit} | ${fmt(t.value)} | ${t.met === null ? 'not measured' : t.met ? 'yes' : 'NO'} |`);
  }
  return L.join('\n') + '\n';
}

/** Reads DIR (see the header) into report()'s input. */
export function load(dir) {
  const rd = (f) => { try { return readFileSync(join(dir, f), 'utf8'); } catch { return ''; } };
  return {
    meta: parseMeta(rd('meta.tsv')), icountMeta: parseMeta(rd('icount/meta.tsv')),
    results: parseResults(rd('icount/results.tsv')), reads: parseReads(rd('icount/reads.tsv')),
    extra: parseExtra(rd('icount/extra.tsv')), wallMeta: parseMeta(rd('wall/meta.tsv')),
    wall: parseResults(rd('wall/wall.tsv')), native: parseNative(rd('native.tsv')), ledger: parseLedger(rd('ledger.tsv')),
  };
}

export function baseName(mode) {
  return mode === 'quick' ? 'quick' : mode === 'full' ? 'latest' : 'partial';
}

function main() {
  const [dir, out] = process.argv.slice(2);
  const rep = report(load(dir));
  const md = markdown(rep);
  process.stdout.write('\n' + md);
  if (out) {
    mkdirSync(out, { recursive: true });
    const base = baseName(rep.mode);
    writeFileSync(join(out, `${base}.md`), md);
    writeFileSync(join(out, `${base}.json`), JSON.stringify(rep, null, 2) + '\n');
    process.stdout.write(`\nbench: wrote ${join(out, base)}.md and .json\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
