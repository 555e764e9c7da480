#!/usr/bin/env node
// bench/report.mjs DIR [OUTDIR]: turns bench/run.sh's TSV files (DIR/meta.tsv, results.tsv,
// extra.tsv) into a table on stdout and, with OUTDIR, OUTDIR/latest.md and latest.json.
// Pure functions are exported for test/unit/bench-report.test.ts.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const tsv = (text) => text.split('\n').filter((l) => l.trim()).map((l) => l.split('\t'));

export function parseMeta(text) {
  return Object.fromEntries(tsv(text).map(([k, ...v]) => [k, v.join('\t')]));
}

/** rows: {contender, sources, sent, usec, pps, nsPerPacket} */
export function parseResults(text) {
  return tsv(text).map(([contender, sources, sent, usec, pps, ns]) => ({
    contender, sources: Number(sources), sent: Number(sent), usec: Number(usec), pps: Number(pps),
    nsPerPacket: Number(ns),
  }));
}

export function parseExtra(text) {
  return tsv(text).map(([key, value, unit, note]) => ({ key, value: Number(value), unit: unit ?? '', note: note ?? '' }));
}

/** Adds `added` = ns/packet(config) - ns/packet(no rule, same sources; else the nearest). */
export function withAdded(rows) {
  const base = rows.filter((r) => r.contender === 'no rule');
  return rows.map((r) => {
    if (r.contender === 'no rule') return { ...r, added: 0 };
    const b = base.find((x) => x.sources === r.sources) ??
      [...base].sort((x, y) => Math.abs(x.sources - r.sources) - Math.abs(y.sources - r.sources))[0];
    return { ...r, added: b ? Math.round((r.nsPerPacket - b.nsPerPacket) * 10) / 10 : null };
  });
}

const find = (rows, c, n) => rows.find((r) => r.contender === c && r.sources === n);

/** The targets, each {target, limit, value, met} (value null = not measured). */
export function targets(rows, extra) {
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
  const e = (k) => extra.find((a) => a.key === k)?.value ?? null;
  const rx = e('read_xtt_65536');
  const ra = e('read_iptaccount_65536');
  add('xttraffic read --json 65,536 rows vs iptaccount -l (guest CPU s)', '<= iptaccount',
    rx !== null && ra !== null ? `${rx} vs ${ra}` : null, () => rx <= ra);
  const m = e('mem_kmalloc64_per_host');
  const mb = e('mem_buckets_per_host');
  add('memory per tracked host (kmalloc-64 entries + bucket array), bytes', '<= 128',
    m !== null ? Math.round((m + (mb ?? 0)) * 10) / 10 : null, (v) => v <= 128);
  return t;
}

const fmt = (n) => (n === null || n === undefined ? 'n/a' : typeof n === 'number' ? n.toLocaleString('en-US') : String(n));

export function markdown(meta, rows, extra) {
  const L = [];
  L.push(`# xttraffic benchmark (${meta.mode ?? 'full'})`, '');
  L.push(`- date: ${meta.date}`, `- kernel: ${meta.kernel}`, `- iptables: ${meta.iptables}`);
  L.push(`- method: ${method(meta)}`, '');
  L.push('| contender | sources | packets | pps | ns/packet | added instructions/packet |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    L.push(`| ${r.contender} | ${fmt(r.sources)} | ${fmt(r.sent)} | ${fmt(r.pps)} | ${fmt(r.nsPerPacket)} | ${fmt(r.added)} |`);
  }
  if (extra.length) {
    L.push('', '| figure | value | unit | note |', '| --- | ---: | --- | --- |');
    for (const e of extra) L.push(`| ${e.key} | ${fmt(e.value)} | ${e.unit} | ${e.note} |`);
  }
  if (meta.mode === 'full') {
    L.push('', '| target | limit | measured | met |', '| --- | --- | ---: | --- |');
    for (const t of targets(rows, extra)) L.push(`| ${t.target} | ${t.limit} | ${fmt(t.value)} | ${t.met === null ? 'not measured' : t.met ? 'yes' : 'NO'} |`);
  }
  return L.join('\n') + '\n';
}

export function method(meta) {
  const ic = meta.icount === '1';
  return (ic ? 'qemu TCG -icount shift=0,sleep=off -smp 1 (1 guest ns = 1 guest instruction: ns/packet is instructions/packet; counts, not times: no cache misses)'
    : 'qemu TCG wall clock (NOT icount: ns/packet are noisy times, ±20%)') +
    `; pktgen xmit_mode netif_receive on a dummy device, UDP, IP length 100, random sources over N hosts of 10.50.0.0/16, ${meta.count} packets per measured pass after a warm-up pass (one packet per host); raw PREROUTING ends in DROP; added = 1e9/pps(config) - 1e9/pps(no rule, same sources)`;
}

export function report(meta, rows, extra) {
  const r = withAdded(rows);
  return {
    date: meta.date, kernel: meta.kernel, mode: meta.mode, iptables: meta.iptables, method: method(meta),
    results: r, figures: extra, targets: meta.mode === 'full' ? targets(r, extra) : [],
  };
}

function main() {
  const [dir, out] = process.argv.slice(2);
  const rd = (f) => { try { return readFileSync(join(dir, f), 'utf8'); } catch { return ''; } };
  const meta = parseMeta(rd('meta.tsv'));
  const rep = report(meta, parseResults(rd('results.tsv')), parseExtra(rd('extra.tsv')));
  const md = markdown(meta, rep.results, rep.figures);
  process.stdout.write('\n' + md);
  if (out) {
    mkdirSync(out, { recursive: true });
    const base = meta.mode === 'quick' ? 'quick' : meta.mode === 'read' ? 'latest-read' : 'latest';
    writeFileSync(join(out, `${base}.md`), md);
    writeFileSync(join(out, `${base}.json`), JSON.stringify(rep, null, 2) + '\n');
    process.stdout.write(`\nbench: wrote ${join(out, base)}.md and .json\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
