#!/usr/bin/env node
// bench/readme-rows.mjs NEW.json [OLD.json]: the README's Benchmarks rows from a report
// (bench/results/latest.json): IPv4 by source (added guest instructions/packet per number of
// sources), IPv6 by destination beside its IPv4 twin with the IPv6 / IPv4 column, the reads
// (guest CPU s). With OLD.json, each figure is followed by the old one and the figures that
// got worse (more than 2 instructions and 5%, or 10% of CPU time) are listed at the end.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const fmt = (n) => (n === null || n === undefined ? 'n/a' : typeof n === 'number' ? n.toLocaleString('en-US') : String(n));
const find = (rep, c, n, load) => (rep?.results ?? []).find((r) => r.contender === c && r.sources === n && r.load === load);
const r1 = (x) => Math.round(x * 10) / 10;

/** worse: per-packet figure up by > 2 instructions and > 5% (icount repeats to a few instructions) */
export const worsePacket = (a, b) => a !== null && b !== null && a !== undefined && b !== undefined && b - a > 2 && (b - a) / Math.abs(a || 1) > 0.05;
/** worse: a reader's guest CPU time up by > 10% and > 0.02 s */
export const worseRead = (a, b) => a !== null && b !== null && a !== undefined && b !== undefined && b - a > 0.02 && (b - a) / a > 0.1;

export function rows(rep, old) {
  const L = [];
  const worse = [];
  const cell = (n, o, what, isWorse) => {
    if (n === undefined || n === null) return 'n/a';
    if (!old) return fmt(n);
    if (o !== null && o !== undefined && isWorse(o, n)) worse.push(`${what}: ${fmt(o)} -> ${fmt(n)}`);
    return o === null || o === undefined ? `${fmt(n)} (new)` : `${fmt(n)} (${fmt(o)})`;
  };
  const sizes = [256, 4096, 65536];
  const v4 = [...new Set((rep.results ?? []).filter((r) => !r.load && r.contender !== 'no rule').map((r) => r.contender))];
  L.push(`IPv4 by source: added guest instructions per packet (icount)${old ? `; in brackets the run of ${old.date}` : ''}:`, '');
  L.push(`| contender | ${sizes.map((n) => `${fmt(n)} sources`).join(' | ')} |`, `| --- | ${sizes.map(() => '---:').join(' | ')} |`);
  for (const c of v4) {
    L.push(`| ${c} | ${sizes.map((n) => {
      const a = find(rep, c, n, undefined);
      return a ? cell(a.added, find(old, c, n, undefined)?.added, `IPv4 ${c}, ${fmt(n)} sources`, worsePacket) : '';
    }).join(' | ')} |`);
  }
  const twins = rep.ipv6Twins ?? [];
  if (twins.length) {
    L.push('', 'IPv6 by destination (/64s of a /48) beside IPv4 by destination (hosts of a /16), added guest instructions per packet, same run, same load shape:', '');
    L.push('| contender | /64s = hosts | IPv6 | IPv4 by destination | IPv6 / IPv4 |', '| --- | ---: | ---: | ---: | ---: |');
    for (const t of twins) {
      const name = t.ipv4Contender === t.contender ? t.contender : `${t.contender} (IPv4: ${t.ipv4Contender})`;
      const o6 = find(old, t.contender, t.sources, 'ipv6-dst')?.added;
      const o4 = find(old, t.ipv4Contender, t.sources, 'ipv4-dst')?.added;
      L.push(`| ${name} | ${fmt(t.sources)} | ${cell(t.ipv6, o6, `IPv6 ${t.contender}, ${fmt(t.sources)} /64s`, worsePacket)} | ` +
        `${cell(t.ipv4, o4, `IPv4 by destination ${t.ipv4Contender}, ${fmt(t.sources)} hosts`, worsePacket)} | ${t.ratio === null ? 'n/a' : `${fmt(t.ratio)}x`} |`);
    }
  }
  if (rep.reads?.length) {
    L.push('', 'Reading: the reader\'s guest CPU seconds (icount)', '', '| reader | rows | guest CPU s |', '| --- | ---: | ---: |');
    for (const r of rep.reads) {
      const o = (old?.reads ?? []).find((x) => x.key === r.key)?.cpu;
      L.push(`| ${r.reader} | ${fmt(r.rows)} | ${r.status === 'ok' ? cell(r.cpu, o, `read: ${r.reader}`, worseRead) : r.status} |`);
    }
  }
  return { markdown: L.join('\n') + '\n', worse };
}

function main() {
  const [a, b] = process.argv.slice(2);
  if (!a) {
    process.stderr.write('usage: node bench/readme-rows.mjs NEW.json [OLD.json]\n');
    process.exit(2);
  }
  const rd = (f) => JSON.parse(readFileSync(f, 'utf8'));
  const old = b ? rd(b) : null; // read once: b may be a pipe (<(git show ...))
  const { markdown, worse } = rows(rd(a), old);
  process.stdout.write(markdown);
  if (old) process.stdout.write(`\nWorse than ${old.date}: ${worse.length ? '\n' + worse.map((w) => `- ${w}`).join('\n') : 'none'}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
