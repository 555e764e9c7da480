import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { REPO, XTABLES_LIBDIR } from '../lib/sh.js';
import { link, PKT } from '../lib/topo.js';

// Lossless read-and-clear: UDP traffic runs while readers loop over the files in
// 1-byte and 64-byte chunks, two at once, clearing on every read (--clearonread, or
// an O_RDWR open of a table without it). The sum of everything they read plus one
// final read must equal what an iptables rule on the same hook counted.

const READER = `${REPO}/test/lib/reader.py`;
const A = '10.7.0.1';
const B = '10.7.0.2';

interface ReaderResult {
  reads: number;
  in: number;
  out: number;
}

function startReader(ns: Netns, file: string, chunk: number, mode: 'r' | 'rw', stop: string): Promise<ReaderResult> {
  const p = spawn('ip', ['netns', 'exec', ns.name, 'python3', READER, file, String(chunk), mode, stop]);
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as ReaderResult) : reject(new Error(`reader ${file}: ${err}`)))),
  );
}

describe.each(['iptables', 'iptables-legacy'])('lossless clear with %s', (ipt) => {
  let a: Netns;
  let b: Netns;

  beforeAll(async () => {
    loadModule();
    a = new Netns('ca');
    b = new Netns('cb');
    await link(a, (d) => [`addr add ${A}/24 dev ${d}`], b, (d) => [`addr add ${B}/24 dev ${d}`]);
    await b.run(`${ipt}-restore`, [], {
      input: [
        '*raw',
        // C counts B only (a /32 net), clearing on every read; R is read with O_RDWR
        `-A PREROUTING -m traffic --traffic --netbase ${B} --netmask 32 --clearonread --name C`,
        `-A PREROUTING -m traffic --traffic --netbase ${B} --netmask 32 --name R`,
        `-A PREROUTING -s ${A} -d ${B}`,
        'COMMIT',
        '*filter',
        '-A INPUT -p udp -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
    });
  }, 300_000);

  afterAll(() => {
    a?.delete();
    b?.delete();
  });

  async function oracleBytes(): Promise<number> {
    const out = await b.run(ipt, ['-t', 'raw', '-L', 'PREROUTING', '-n', '-v', '-x']);
    const row = out.split('\n').find((l) => l.includes(A) && l.includes(B));
    return Number(row!.trim().split(/\s+/)[1]);
  }

  it('readers racing with traffic, 1-byte and 64-byte chunks, two at once: nothing lost or doubled', async () => {
    const stop = `/tmp/stop-${b.name}`;
    const readers = [
      startReader(b, '/proc/net/xt_traffic/C', 1, 'r', stop),
      startReader(b, '/proc/net/xt_traffic/C', 64, 'r', stop),
      startReader(b, '/proc/net/xt_traffic/R', 64, 'rw', stop),
      startReader(b, '/proc/net/xt_traffic/R', 1, 'rw', stop),
    ];
    const sent = Number((await a.run('python3', [PKT, 'udpblast', B, '9999', '200', '8'])).trim());
    await b.run('touch', [stop]);
    const [c1, c64, r64, r1] = await Promise.all(readers);
    // one final read of each after the readers stopped (they may have raced the last packets)
    const finalC = await startReader(b, '/proc/net/xt_traffic/C', 4096, 'r', stop);
    const finalR = await startReader(b, '/proc/net/xt_traffic/R', 4096, 'rw', stop);
    const oracle = await oracleBytes();

    expect(sent).toBeGreaterThan(100);
    expect(oracle).toBe(sent * (200 + 8 + 20));
    // the readers really interleaved with the traffic
    for (const r of [c1!, c64!, r64!, r1!]) expect(r.reads).toBeGreaterThan(2);
    expect(c1!.in + c64!.in + finalC.in).toBe(oracle);
    expect(r64!.in + r1!.in + finalR.in).toBe(oracle);
    // B only receives here; nothing counted out
    expect(c1!.out + c64!.out + finalC.out + r64!.out + r1!.out + finalR.out).toBe(0);
  });

  it('a read in 1-byte chunks returns exactly the bytes of a bulk read', async () => {
    await a.run('python3', [PKT, 'udp', B, '9998', '300', '3']);
    await a.run('ping', ['-c', '2', '-s', '20', '-i', '0.2', B]);
    // R without clear on O_RDONLY: the same snapshot content twice
    const bulk = await b.run('python3', ['-c', `import os;fd=os.open('/proc/net/xt_traffic/R',os.O_RDONLY);print(os.read(fd,1<<20).decode(),end='')`]);
    const bytewise = await b.run('python3', [
      '-c',
      `import os,sys\nfd=os.open('/proc/net/xt_traffic/R',os.O_RDONLY)\nout=b''\nwhile True:\n  c=os.read(fd,1)\n  if not c: break\n  out+=c\nsys.stdout.write(out.decode())`,
    ]);
    expect(bytewise).toBe(bulk);
    expect(bulk).toBe(`IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n${B}\t${3 * 328 + 2 * 48}\t0\t0\t0\t${3 * 328}\t0\t${2 * 48}\t0\n`);
  });

  it('a clearing read cannot seek back (what it cleared and holds would be lost): ESPIPE, and the rows arrive', async () => {
    await b.run('sh', ['-c', 'echo clear > /proc/net/xt_traffic/R']);
    await a.run('python3', [PKT, 'udp', B, '9997', '100', '2']);
    // O_RDWR: read 20 bytes (the walk has taken and cleared the row), then try to rewind
    const out = await b.run('python3', [
      '-c',
      [
        'import os,errno,json',
        "fd=os.open('/proc/net/xt_traffic/R', os.O_RDWR)",
        'head=os.read(fd, 20)',
        'tell=os.lseek(fd, 0, os.SEEK_CUR)',
        'r={}',
        'for how in (os.SEEK_SET, os.SEEK_END):',
        '  try:',
        '    os.lseek(fd, 0, how); r[how]=0',
        '  except OSError as e:',
        '    r[how]=e.errno',
        'rest=b""',
        'while True:',
        '  c=os.read(fd, 4096)',
        '  if not c: break',
        '  rest+=c',
        "print(json.dumps({'tell': tell, 'seek': r, 'text': (head+rest).decode()}))",
      ].join('\n'),
    ]);
    const r = JSON.parse(out) as { tell: number; seek: Record<string, number>; text: string };
    expect(r.tell).toBe(20);
    expect(r.seek).toEqual({ '0': 29, '2': 29 }); // ESPIPE
    expect(r.text).toBe(`IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n${B}\t${2 * 128}\t0\t0\t0\t${2 * 128}\t0\t0\t0\n`);
    expect(await b.cat('/proc/net/xt_traffic/R')).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n');
  });

  it('`echo clear >` zeroes a table; an O_RDONLY read of a table without --clearonread does not', async () => {
    const before = await b.cat('/proc/net/xt_traffic/R');
    expect(await b.cat('/proc/net/xt_traffic/R')).toBe(before);
    await b.run('sh', ['-c', 'echo clear > /proc/net/xt_traffic/R']);
    expect(await b.cat('/proc/net/xt_traffic/R')).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n');
    const bad = await b.run('python3', [
      '-c',
      `import os\ntry:\n  os.write(os.open('/proc/net/xt_traffic/R', os.O_WRONLY), b'reset\\n')\nexcept OSError as e:\n  print(e.errno, e.strerror)`,
    ]);
    expect(bad.trim()).toBe('22 Invalid argument');
  });
});
