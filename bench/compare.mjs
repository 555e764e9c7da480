#!/usr/bin/env node
// bench/compare.mjs OLD.json NEW.json: the per-packet figures of two `npm run bench` reports
// (bench/results/latest.json of two commits) side by side, as Markdown. For the committed
// results: node bench/compare.mjs <(git show REV:bench/results/latest.json) bench/results/latest.json
// icount rows are matched by contender, sources and load; "moved" flags a change of more than
// 2 instructions/packet (icount repeats to a few instructions) and 5%. Reading and memory too.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const fmt = (n) => (n === null || n === undefined ? 'n/a' : typeof n === 'number' ? n.toLocaleString('en-US') : String(n));
const r1 = (x) => Math.round(x * 10) / 10;
const key = (r) => `${r.load ?? ''}|${r.contender}|${r.sources}`;

/** [{contender, sources, load, old, new, delta, pct, moved}] over the union of both reports' icount rows (new order first). */
export function compareIcount(oldRep, newRep) {
  const old = new Map((oldRep.results ?? []).map((r) => [key(r), r]));
  const seen = new Set();
  const out = [];
  const row = (o, n) => {
    const a = o?.added ?? null;
    const b = n?.added ?? null;
    const delta = a !== null && b !== null ? r1(b - a) : null;
    const pct = delta !== null && a ? r1((delta / a) * 100) : null;
    const r = n ?? o;
    out.push({ contender: r.contender, sources: r.sources, load: r.load, old: a, new: b, delta, pct,
      moved: delta !== null && Math.abs(delta) > 2 && pct !== null && Math.abs(pct) > 5 });
  };
  for (const n of newRep.results ?? []) { seen.add(key(n)); row(old.get(key(n)), n); }
  for (const o of oldRep.results ?? []) if (!seen.has(key(o))) row(o, null);
  return out;
}

export function compareReads(oldRep, newRep) {
  const old = new Map((oldRep.reads ?? []).map((r) => [r.key, r]));
  return (newRep.reads ?? []).map((n) => {
    const o = old.get(n.key);
    return { reader: n.reader, rows: n.rows, old: o?.cpu ?? null, new: n.cpu,
      pct: o?.cpu && n.cpu !== null ? r1(((n.cpu - o.cpu) / o.cpu) * 100) : null };
  });
}

export function markdown(oldRep, newRep) {
  const L = [];
  L.push(`Per-packet figures, added guest instructions/packet (icount): ${oldRep.date} (${oldRep.kernel}) against ${newRep.date} (${newRep.kernel})`, '');
  L.push('| load | contender | sources | old | new | change | % | moved |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const c of compareIcount(oldRep, newRep)) {
    const load = c.load === 'ipv6-dst' ? 'IPv6 by destination' : c.load === 'ipv4-dst' ? 'IPv4 by destination' : 'IPv4 by source';
    L.push(`| ${load} | ${c.contender} | ${fmt(c.sources)} | ${fmt(c.old)} | ${fmt(c.new)} | ${c.delta === null ? '' : (c.delta > 0 ? '+' : '') + fmt(c.delta)} | ${c.pct === null ? '' : (c.pct > 0 ? '+' : '') + c.pct} | ${c.moved ? 'yes' : ''} |`);
  }
  L.push('', 'Reading (guest CPU s):', '', '| reader | rows | old | new | % |', '| --- | ---: | ---: | ---: | ---: |');
  for (const c of compareReads(oldRep, newRep)) L.push(`| ${c.reader} | ${fmt(c.rows)} | ${fmt(c.old)} | ${fmt(c.new)} | ${c.pct === null ? '' : (c.pct > 0 ? '+' : '') + c.pct} |`);
  return L.join('\n') + '\n';
}

function main() {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) {
    process.stderr.write('usage: node bench/compare.mjs OLD.json NEW.json\n');
    process.exit(2);
  }
  const rd = (f) => JSON.parse(readFileSync(f, 'utf8'));
  process.stdout.write(markdown(rd(a), rd(b)));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
