#!/usr/bin/env node
// bench/merge.mjs PART1 PART2 OUT: the raw folders of a split run (BENCH_SPLIT=1, then
// BENCH_SPLIT=2 bash bench/bench.sh: two VM holds instead of one) merged into one folder in
// bench/report.mjs's layout. Part 1 has the icount VM's IPv4 by-source rows, reads and memory,
// the wall-clock VM, native read and ledger; part 2 the icount VM's IPv6 and IPv4
// by-destination rows. The merged run is "full" when part 1 says mode part1 and part 2 mode
// part2 (neither failed nor skipped anything); otherwise "partial". Pure functions are
// exported for test/unit/bench-merge.test.ts.
import { readFileSync, writeFileSync, mkdirSync, existsSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const tsv = (text) => text.split('\n').filter((l) => l.trim()).map((l) => l.split('\t'));
const meta = (text) => new Map(tsv(text).map(([k, ...v]) => [k, v.join('\t')]));
const metaText = (m) => [...m].map(([k, v]) => `${k}\t${v}\n`).join('');
const list = (s) => (s ? s.split(',').filter(Boolean) : []);

/** The host meta.tsv of the merged run from both parts' (Maps in, Map out). */
export function mergeHostMeta(m1, m2) {
  const out = new Map();
  out.set('date', m1.get('date') ?? '');
  if (m1.has('host')) out.set('host', m1.get('host'));
  if (m1.has('commit')) out.set('commit', m1.get('commit'));
  // each part's VM, the host steps (part 1 only), the total of both holds
  const n = (m, k) => Number(m.get(k) ?? 0);
  if (m1.has('seconds_icount_vm')) out.set('seconds_icount_vm_part1', m1.get('seconds_icount_vm'));
  for (const k of ['seconds_wall_vm', 'seconds_native', 'seconds_ledger']) if (m1.has(k)) out.set(k, m1.get(k));
  if (m2.has('seconds_icount_vm')) out.set('seconds_icount_vm_part2', m2.get('seconds_icount_vm'));
  if (m1.has('seconds_total')) out.set('seconds_total_part1', m1.get('seconds_total'));
  if (m2.has('seconds_total')) out.set('seconds_total_part2', m2.get('seconds_total'));
  out.set('seconds_total', String(n(m1, 'seconds_total') + n(m2, 'seconds_total')));
  if (m1.has('vms_beside_wall')) out.set('vms_beside_wall', m1.get('vms_beside_wall'));
  // two parts of one run start within 3 hours of each other (else one is an older run's)
  const t = (m) => Date.parse(m.get('started') ?? m.get('date') ?? '');
  const apart = Math.abs(t(m1) - t(m2)) > 3 * 3600e3 || Number.isNaN(t(m1) - t(m2));
  const ok = m1.get('mode') === 'part1' && m2.get('mode') === 'part2' && !apart;
  out.set('mode', ok ? 'full' : 'partial');
  const failed = [...list(m1.get('failed')).map((f) => `${f} (part 1)`), ...list(m2.get('failed')).map((f) => `${f} (part 2)`)];
  if (apart) failed.push(`parts not of one run (started ${m1.get('started') ?? '?'} and ${m2.get('started') ?? '?'})`);
  const skipped = [...new Set([...list(m1.get('skipped')), ...list(m2.get('skipped'))])];
  if (!ok && !failed.length && !skipped.length) failed.push(`parts not 1 and 2 (modes ${m1.get('mode')}, ${m2.get('mode')})`);
  out.set('failed', failed.join(','));
  out.set('skipped', skipped.join(','));
  const c1 = m1.get('commit') ?? '?';
  const c2 = m2.get('commit') ?? '?';
  out.set('note', `a split run in two VM holds: part 1 (IPv4 by source, reads, memory, wall clock, native read, ledger) from ${m1.get('date')}, ` +
    `part 2 (IPv6 and IPv4 by destination) from ${m2.get('started') ?? 'after it'}` +
    (c1 === c2 ? `; both at ${c1}` : `; NOT the same code: part 1 at ${c1}, part 2 at ${c2}`));
  return out;
}

/** The icount guest's meta.tsv: part 1's, with part 2's section times and both passes' seconds. */
export function mergeIcountMeta(i1, i2) {
  const out = new Map(i1);
  for (const [k, v] of i2) if (k.startsWith('seconds_')) out.set(k, v);
  if (i1.has('seconds') || i2.has('seconds')) out.set('seconds', String(Number(i1.get('seconds') ?? 0) + Number(i2.get('seconds') ?? 0)));
  // the same kernel in both VMs, or the report says which is which
  if (i2.get('kernel') && i2.get('kernel') !== i1.get('kernel')) out.set('kernel', `${i1.get('kernel')} (part 1), ${i2.get('kernel')} (part 2)`);
  return out;
}

function main() {
  const [p1, p2, out] = process.argv.slice(2);
  if (!p1 || !p2 || !out) {
    process.stderr.write('usage: node bench/merge.mjs PART1 PART2 OUT\n');
    process.exit(2);
  }
  const rd = (d, f) => { try { return readFileSync(join(d, f), 'utf8'); } catch { return ''; } };
  mkdirSync(join(out, 'icount'), { recursive: true });
  const host = mergeHostMeta(meta(rd(p1, 'meta.tsv')), meta(rd(p2, 'meta.tsv')));
  writeFileSync(join(out, 'meta.tsv'), metaText(host));
  writeFileSync(join(out, 'icount/meta.tsv'), metaText(mergeIcountMeta(meta(rd(p1, 'icount/meta.tsv')), meta(rd(p2, 'icount/meta.tsv')))));
  // rows: part 1's then part 2's (the report keeps their order: by source, then by destination)
  for (const f of ['results.tsv', 'reads.tsv', 'extra.tsv']) {
    const a = rd(p1, `icount/${f}`);
    const b = rd(p2, `icount/${f}`);
    writeFileSync(join(out, 'icount', f), a + (a && !a.endsWith('\n') ? '\n' : '') + b);
  }
  for (const f of ['wall/meta.tsv', 'wall/wall.tsv', 'native.tsv', 'ledger.tsv']) {
    if (!existsSync(join(p1, f))) continue;
    mkdirSync(join(out, f.includes('/') ? f.split('/')[0] : ''), { recursive: true });
    copyFileSync(join(p1, f), join(out, f));
  }
  process.stdout.write(`bench: merged ${p1} and ${p2} into ${out} (mode ${host.get('mode')})\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
