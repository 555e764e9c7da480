// The N-API addon against the TypeScript side: constants from the uapi header, the strict
// columnar parser against parse.ts, the one-pass reader and the errors' shape.
// The addon is built by `npm run build:native` (scripts/build.sh runs it); set
// XTT_NO_NATIVE=1 to skip this file on a machine without a compiler.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindingCandidates, tryLoadBinding } from '../../src/lib/binding.js';
import * as names from '../../src/lib/names.js';
import { IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_HEADER, parseIpConn, parsePortConn, parseTraffic } from '../../src/lib/parse.js';
import { rowsFromColumns } from '../../src/lib/tables.js';

const load = tryLoadBinding();
const skip = process.env['XTT_NO_NATIVE'] === '1';
const dir = mkdtempSync(join(tmpdir(), 'xtt-native-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(skip)('native addon', () => {
  it('loads (else: run npm run build:native)', () => {
    expect(load.tried.filter((t) => t.error !== 'not found')).toEqual([]);
    expect(load.binding, `tried: ${JSON.stringify(load.tried)}`).toBeDefined();
    expect(bindingCandidates({})).toEqual([expect.stringMatching(/build\/Release\/xttraffic\.node$/), expect.stringMatching(/build\/Debug\/xttraffic\.node$/)]);
  });

  const b = load.binding!;

  it("exports the uapi header's constants, equal to the TypeScript copies", () => {
    expect(b.constants).toEqual({
      NAME_LEN: names.XT_TRAFFIC_NAME_LEN,
      HASHSIZE_MAX: names.XT_TRAFFIC_HASHSIZE_MAX,
      SUFFIX_IPCONN: names.XT_TRAFFIC_SUFFIX_IPCONN,
      SUFFIX_PORTCONN: names.XT_TRAFFIC_SUFFIX_PORTCONN,
      SUFFIX_INFO: names.XT_TRAFFIC_SUFFIX_INFO,
      PROC_DIR: names.XT_TRAFFIC_PROC_DIR,
      TRAFFIC: names.XT_TRAFFIC_TRAFFIC,
      PORTCONN: names.XT_TRAFFIC_PORTCONN,
      IPCONN: names.XT_TRAFFIC_IPCONN,
      CLEARONREAD: names.XT_TRAFFIC_CLEARONREAD,
      NOINTERNAL: names.XT_TRAFFIC_NOINTERNAL,
      ONLYINTERNAL: names.XT_TRAFFIC_ONLYINTERNAL,
    });
  });

  const row = (...f: (string | number | bigint)[]) => `${f.join('\t')}\n`;

  it('parses the kernel format into columns equal to the TypeScript parser, u64 exact', () => {
    const t = `${TRAFFIC_HEADER}\n` + row('0.0.0.0', 0, 0, 0, 0, 0, 0, 0, 0) + row('10.0.0.1', '18446744073709551615', 2, 3, 4, 5, 6, 7, 8) + row('255.255.255.255', 9007199254740993n, 0, 0, 0, 0, 0, 0, 1);
    const cols = b.parseColumns(Buffer.from(t), 'traffic')!;
    expect(cols.rows).toBe(3);
    expect(cols.countersPerRow).toBe(8);
    expect([...cols.keys]).toEqual([0, 0x0a000001, 0xffffffff]);
    expect(cols.counters[8]).toBe(18446744073709551615n);
    expect(cols.counters[16]).toBe(9007199254740993n);
    expect(rowsFromColumns('traffic', cols)).toEqual(parseTraffic(t));
    const ic = `${IPCONN_HEADER}\n` + row('172.20.0.1', 0, 615, 0, 1, 0, 0, 0, 614, 0, 0) + row('172.20.0.2', 615, 3, 1, 1, 0, 2, 614, 0, 0, 0);
    expect(rowsFromColumns('ipconn', b.parseColumns(Buffer.from(ic), 'ipconn')!)).toEqual(parseIpConn(ic));
    const pc = `${PORTCONN_HEADER}\n` + row(0, 313, 313, 0, 0, 0, 0, 313, 313, 0, 0) + row(65535, 1, 2, 1, 2, 0, 0, 0, 0, 0, 0);
    expect(rowsFromColumns('portconn', b.parseColumns(Buffer.from(pc), 'portconn')!)).toEqual(parsePortConn(pc));
    expect(b.parseColumns(Buffer.from(`${TRAFFIC_HEADER}\n`), 'traffic')!.rows).toBe(0);
  });

  it('declines anything but the exact format (the TypeScript parser then decides)', () => {
    const ok = row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7, 8);
    const bad = [
      '', // no header
      `${TRAFFIC_HEADER}\n${ok.slice(0, -1)}`, // truncated: no final newline
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7)}`, // 7 counters
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7, 8, 9)}`, // 9 counters
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 'x', 5, 6, 7, 8)}`, // not a number
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', '18446744073709551616', 2, 3, 4, 5, 6, 7, 8)}`, // 2^64
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', '01', 2, 3, 4, 5, 6, 7, 8)}`, // leading zero
      `${TRAFFIC_HEADER}\n${row('10.0.0.01', 1, 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.256', 1, 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0', 1, 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${ok}${ok}`, // duplicate
      `${TRAFFIC_HEADER}\n${row('10.0.0.2', 1, 2, 3, 4, 5, 6, 7, 8)}${ok}`, // descending
      `${TRAFFIC_HEADER}\n${ok.replaceAll('\t', ' ')}`, // spaces
      `${TRAFFIC_HEADER}\n${ok}\n`, // empty line
      `${IPCONN_HEADER}\n${ok}`, // wrong header
    ];
    for (const t of bad) expect(b.parseColumns(Buffer.from(t), 'traffic'), JSON.stringify(t)).toBeUndefined();
    expect(b.parseColumns(Buffer.from(`${PORTCONN_HEADER}\n${row(65536, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)}`), 'portconn')).toBeUndefined();
    expect(() => b.parseColumns(Buffer.from(''), 'bogus' as 'traffic')).toThrow(TypeError);
  });

  it('agrees with the TypeScript parser on a large random table', () => {
    const parts = [`${TRAFFIC_HEADER}\n`];
    let ip = 0x0a000000;
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    for (let i = 0; i < 20000; i++) {
      ip += 1 + (rnd() % 7);
      const v = Array.from({ length: 8 }, () => (rnd() % 3 === 0 ? BigInt(rnd() % 1000) : (BigInt(rnd()) << 33n) + BigInt(rnd())).toString());
      parts.push(row(`${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`, ...v));
    }
    const t = parts.join('');
    expect(rowsFromColumns('traffic', b.parseColumns(Buffer.from(t), 'traffic')!)).toEqual(parseTraffic(t));
  });

  it('readFile reads a whole file in one pass, large or small, and honours maxBytes', async () => {
    const small = join(dir, 'small');
    writeFileSync(small, 'abc');
    expect((await b.readFile(small)).toString()).toBe('abc');
    const big = join(dir, 'big');
    const data = Buffer.alloc(5 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
    writeFileSync(big, data);
    expect((await b.readFile(big)).equals(data)).toBe(true);
    await expect(b.readFile(big, { maxBytes: 1 << 20 })).rejects.toMatchObject({ code: 'EFBIG', syscall: 'read', path: big });
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect((await b.readFile(empty)).length).toBe(0);
  });

  it('readTable opens read-write with clear (and fails where it may not write)', async () => {
    const p = join(dir, 'tbl');
    const t = `${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7, 8)}`;
    writeFileSync(p, t);
    const r = await b.readTable(p, 'traffic', { clear: true });
    expect(r.text.toString()).toBe(t);
    expect(r.columns!.rows).toBe(1);
    expect(readFileSync(p, 'utf8')).toBe(t); // a plain file is not cleared, but it was opened O_RDWR:
    // a read-only sysctl: readable, but not openable for writing, even by root
    await expect(b.readTable('/proc/sys/kernel/osrelease', 'traffic', { clear: true })).rejects.toMatchObject({ code: 'EACCES', syscall: 'open' });
    const ro = await b.readTable('/proc/sys/kernel/osrelease', 'traffic');
    expect(ro.columns).toBeUndefined();
    expect(ro.text.toString()).toMatch(/^\d+\.\d+/);
  });

  it('errors look like Node fs errors: code, negative errno, syscall, path', async () => {
    const err = await b.readFile(join(dir, 'nope')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: join(dir, 'nope'), message: `ENOENT: no such file or directory, open '${join(dir, 'nope')}'` });
    await expect(b.loadModule(join(dir, 'nope.ko'), '')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
    const um = await b.unloadModule('xt_traffic_not_a_module').catch((e: unknown) => e);
    expect(um).toMatchObject({ syscall: 'delete_module', path: 'xt_traffic_not_a_module' });
    expect(['ENOENT', 'EPERM', 'ENOSYS']).toContain((um as { code: string }).code);
    expect(() => b.readFile(42 as unknown as string)).toThrow('path must be a string');
    expect(() => b.readFile('a\0b')).toThrow('path must not contain NUL');
  });

  it('keeps the event loop free while reading', async () => {
    const big = join(dir, 'big2');
    writeFileSync(big, Buffer.alloc(64 * 1024 * 1024, 0x41));
    let ticks = 0;
    const iv = setInterval(() => ticks++, 0);
    const buf = await b.readFile(big);
    clearInterval(iv);
    expect(buf.length).toBe(64 * 1024 * 1024);
    expect(ticks).toBeGreaterThan(0);
  });
});
