import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../src/core/errors.js';
import { listCounterTables, parseCounters, readCounters } from '../../src/proc/counters.js';

const DOC = 'xt_traffic_counters 1\nname: RSN\ngeneration: 5f0c2a9e13b7d4c1\noptions: traffic portconn ipconn nointernal\nnetbase: 193.11.176.0\nnetmask: 255.255.240.0\noverflow: 0\n'
  + '[traffic]\n193.11.176.5\t420\t1448\t0\t0\t0\t1028\t420\t420\n[ipconn]\n193.11.176.5\t1\t2\t0\t0\t0\t1\t1\t1\t0\t0\n[portconn]\n53\t0\t1\t0\t0\t0\t1\t0\t0\t0\t0\n[end]\n';

function err(text: string): ParseError {
  try {
    parseCounters(text, { path: '/x/RSN' });
  } catch (e) {
    return e as ParseError;
  }
  throw new Error('no error');
}

describe('counters file', () => {
  it('parses the example of docs/design.md exactly', () => {
    const r = parseCounters(DOC);
    expect(r.name).toBe('RSN');
    expect(r.generation).toBe('5f0c2a9e13b7d4c1');
    expect(r.prefixLength).toBe(20);
    expect(r.traffic!.rows).toBe(1);
    expect(r.traffic!.keys[0]).toBe((193 * 2 ** 24) + (11 << 16) + (176 << 8) + 5);
    expect([...r.traffic!.counters]).toEqual([420n, 1448n, 0n, 0n, 0n, 1028n, 420n, 420n]);
    expect([...r.ipconn!.counters]).toEqual([1n, 2n, 0n, 0n, 0n, 1n, 1n, 1n, 0n, 0n]);
    expect(r.portconn!.keys[0]).toBe(53);
  });

  it('takes u64 values up to 2^64-1 exactly, refuses 2^64', () => {
    const max = '18446744073709551615';
    const t = DOC.replace('193.11.176.5\t420\t', `193.11.176.5\t${max}\t`);
    expect(parseCounters(t).traffic!.counters[0]).toBe((1n << 64n) - 1n);
    expect(parseCounters(DOC.replace('\t420\t1448', '\t9007199254740993\t1448')).traffic!.counters[0]).toBe(9007199254740993n);
    const e = err(DOC.replace('193.11.176.5\t420\t', '193.11.176.5\t18446744073709551616\t'));
    expect(e.message).toBe('/x/RSN: line 9: counter 1: 18446744073709551616 is beyond 2^64-1 (18446744073709551615) (the line: "193.11.176.5\\t18446744073709551616\\t1448\\t0\\t0\\t0\\t1028\\t420\\t420")');
  });

  it('a read without [end] is incomplete; errors name the file and line', () => {
    expect(err(DOC.replace('[end]\n', '')).message).toBe('/x/RSN: line 14: incomplete: no "[end]" line (the read was cut short)');
    expect(err(DOC.slice(0, -3)).message).toMatch(/^\/x\/RSN: line 14: truncated: the last line has no terminating newline/);
    expect(err(DOC.replace('generation: 5f0c2a9e13b7d4c1', 'generation: 5F0C')).message).toMatch(/^\/x\/RSN: line 3: generation: expected 16 lowercase hex digits/);
    expect(err(DOC.replace('xt_traffic_counters 1', 'xt_traffic_counters 3')).message).toMatch(/line 1: unsupported revision/);
    expect(err(DOC.replace('[ipconn]\n193.11.176.5', '[ipconn]\n193.11.176.5\t1\t2\t0\t0\t0\t1\t1\t1\t0\t0\n193.11.176.5')).message).toMatch(/^\/x\/RSN: line 12: IP 193.11.176.5: the key appears twice in \[ipconn\]/);
    expect(err(DOC.replace('[end]\n', '[end]\nx\n')).message).toMatch(/line 15: text after "\[end\]"/);
    expect(err(DOC.replace('\t1028\t', '\t01028\t')).message).toMatch(/line 9: counter 6: not an unsigned decimal number/);
    expect(err(DOC.replace('[portconn]', '[traffic]')).message).toMatch(/line 12: section \[traffic\] out of order or repeated/);
    expect(err(DOC.replace('options: traffic portconn ipconn', 'options: traffic ipconn')).message).toMatch(/line 12: section \[portconn\] but the options line does not list portconn/);
    expect(err(DOC.replace('\t420\t420\n', '\t420\n')).message).toMatch(/line 9: expected a key and 8 counters separated by one tab/);
  });

  it('reads and lists the directory of $XTT_COUNTERS_DIR', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xtt-ctr-'));
    try {
      writeFileSync(join(dir, 'RSN'), DOC);
      writeFileSync(join(dir, 'other'), DOC);
      writeFileSync(join(dir, 'x_info'), 'ignored');
      mkdirSync(join(dir, 'fifo-dir'));
      expect(await listCounterTables({ dir, fromEnv: true })).toEqual(['RSN', 'fifo-dir', 'other']);
      expect((await readCounters('RSN', { dir, fromEnv: true })).traffic!.rows).toBe(1);
      await expect(readCounters('other', { dir, fromEnv: true })).rejects.toThrow(`name: "RSN" but the file is ${join(dir, 'other')}`);
      await expect(readCounters('nope', { dir, fromEnv: true })).rejects.toThrow(`no table "nope" (${join(dir, 'nope')} does not exist)`);
      await expect(readCounters('fifo-dir', { dir, fromEnv: true })).rejects.toThrow('is a directory');
      await expect(listCounterTables({ dir: join(dir, 'missing'), fromEnv: true })).rejects.toThrow(`XTT_COUNTERS_DIR=${join(dir, 'missing')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
