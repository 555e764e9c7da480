// The current libxt_traffic.so against a module that only knows match revision 0 (issue 13:
// "revision 0 stays byte-for-byte"): the module of 3a75507, the last kernel/ commit before
// 7220b9b added revision 1 (IPv4 and IPv6, --hostprefix). iptables asks the kernel which
// revisions of "traffic" it has and takes the highest one libxt registers too (0 here), so
// an IPv4 rule that fits revision 0 must add, count exactly, print and save as it does with
// revision 1 (hostprefix 32 prints nothing), and what needs revision 1 (--hostprefix, IPv6)
// must be refused; `xttraffic rule add` says that the loaded module predates it.
//
// The old module is built from git history by scripts/lib/prefix-module.sh (the mechanism of
// scripts/fail-without-fix.sh: git archive of kernel/ at the revision into .cache/prefix/REV,
// never over .cache/build/). Build it on the host first (~7 s, then cached: make finds
// nothing to do in ~4 s):  bash scripts/lib/prefix-module.sh 3a75507 6.1.0-57-amd64
// If it is missing in the guest the suite builds it there (slow under TCG); XTT_REV0_KO
// names another .ko. The suite is skipped, with the reason, only when it cannot be built.
// It unloads whatever xt_traffic is loaded first and the old one at the end.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../lib/cli.js';
import { moduleLoaded, unloadModuleWhenFree } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { expectedConns, expectedTraffic, Oracle, parseNet, type PairCount, type SentConn } from '../lib/oracle.js';
import { parseIpConn, parsePortConn, parseTraffic } from '../lib/proc-oracle.js';
import { REPO, run, sh } from '../lib/sh.js';
import { PKT, RoutedTopo, tcpServe } from '../lib/topo.js';

const REV0 = process.env.XTT_REV0_REV ?? '3a75507';
const REL = sh('uname', ['-r']).trim();

/** The revision-0 module's path, or why there is none. */
function rev0Module(): { ko?: string; reason?: string } {
  if (process.env.XTT_REV0_KO) {
    return existsSync(process.env.XTT_REV0_KO) ? { ko: process.env.XTT_REV0_KO } : { reason: `XTT_REV0_KO=${process.env.XTT_REV0_KO} does not exist` };
  }
  const cached = `${REPO}/.cache/prefix/${REV0}/build/${REL}/xt_traffic.ko`;
  if (existsSync(cached)) return { ko: cached };
  const r = spawnSync('bash', [`${REPO}/scripts/lib/prefix-module.sh`, REV0, REL], { encoding: 'utf8', cwd: REPO });
  const ko = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status === 0 && existsSync(ko)) return { ko };
  return { reason: `the revision-0 module (${REV0}) cannot be built for ${REL}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | ')}` };
}

const MOD = rev0Module();
if (MOD.reason) console.warn(`rev0.test.ts skipped: ${MOD.reason}`);

const { H1, H2, X } = RoutedTopo;
const NET = parseNet(RoutedTopo.NET);
const RULE = ['--traffic', '--ipconn', '--portconn', '--netbase', '10.1.0.0', '--netmask', '255.255.0.0', '--name', 'R0'];
// a second rule (another net: counts nothing here) for the options revision 0 has besides
const RSN = ['--traffic', '--netbase', '193.11.176.0', '--netmask', '255.255.240.0', '--name', 'RSN', '--hashsize', '64', '--clearonread', '!', '--nointernal'];
// what revision 1's libxt prints and saves for the same rules (host prefix 32 adds nothing)
const LIST_ROWS = [
  'traffic R0 10.1.0.0/16 traffic,portconn,ipconn',
  'traffic RSN 193.11.176.0/20 traffic hashsize 64 clearonread onlyinternal',
];
const SAVE_LINES = [
  '-A PREROUTING -m traffic --traffic --portconn --ipconn --netbase 10.1.0.0 --netmask 255.255.0.0 --name R0',
  '-A PREROUTING -m traffic --traffic --netbase 193.11.176.0 --netmask 255.255.240.0 --name RSN --hashsize 64 --clearonread ! --nointernal',
];
const PREDATES = 'the loaded xt_traffic predates IPv6 and --hostprefix (match revision 1)';

/** Parsed rows as plain objects keyed by IP/port, with the given counter fields. */
const rows = (list: object[], key: string, fields: string[]) =>
  Object.fromEntries(
    list.map((row) => {
      const r = row as Record<string, unknown>;
      return [String(r[key]), Object.fromEntries(fields.map((f) => [f, r[f]]))];
    }),
  );

describe.skipIf(!MOD.ko)(`libxt_traffic.so with the revision-0 module of ${REV0}`, () => {
  beforeAll(async () => {
    await unloadModuleWhenFree();
    const ko = MOD.ko!;
    for (const dep of sh('modinfo', ['-F', 'depends', ko]).trim().split(',').filter(Boolean)) sh('modprobe', [dep]);
    sh('insmod', [ko]);
    // the module loaded is the old one, not HEAD's
    expect(readFileSync('/sys/module/xt_traffic/srcversion', 'utf8').trim()).toBe(sh('modinfo', ['-F', 'srcversion', ko]).trim());
  });

  afterAll(async () => {
    if (moduleLoaded()) await unloadModuleWhenFree();
  });

  describe.each(['iptables', 'iptables-legacy'])('through %s', (ipt) => {
    const ipt6 = ipt.replace('iptables', 'ip6tables');
    const backend = ipt === 'iptables' ? 'nft' : 'legacy';
    let topo: RoutedTopo;
    let pairs: PairCount[];
    const conns: SentConn[] = [];

    beforeAll(async () => {
      topo = await RoutedTopo.create(ipt);
      const { r, h1, x } = topo;
      await r.run(ipt, ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', ...RULE]);
      await r.run(ipt, ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', ...RSN]);
      const oracle = new Oracle(r, ipt);
      await oracle.install(RoutedTopo.sources(), RoutedTopo.dests());

      // ICMP: one ping process is one flow; replies belong to it
      await h1.run('ping', ['-c', '3', '-s', '56', '-i', '0.2', '-W', '2', X]);
      conns.push({ src: H1, dst: X, proto: 'icmp', port: 0, count: 1 });
      await x.run('ping', ['-c', '2', '-s', '200', '-i', '0.2', '-W', '2', H2]);
      conns.push({ src: X, dst: H2, proto: 'icmp', port: 0, count: 1 });
      // one TCP connection H1 -> X:8080 carrying 20,000 bytes
      const srv = await tcpServe(x, 8080);
      await h1.run('python3', [PKT, 'tcpsend', X, '8080', '20000']);
      expect(await srv.done).toBe(20000);
      conns.push({ src: H1, dst: X, proto: 'tcp', port: 8080, count: 1 });
      pairs = await oracle.read();
    }, 300_000);

    afterAll(() => topo?.destroy());

    it('the oracle saw what was sent (pings computed from their sizes)', () => {
      const get = (s: string, d: string) => pairs.find((p) => p.src === s && p.dst === d)!;
      expect(get(H1, X).other).toBe(3n * (56n + 8n + 20n)); // 3 echo requests
      expect(get(X, H1).other).toBe(3n * (56n + 8n + 20n)); // 3 replies
      expect(get(X, H2).other).toBe(2n * (200n + 8n + 20n));
      expect(get(H2, X).other).toBe(2n * (200n + 8n + 20n));
      expect(get(H1, X).tcp).toBeGreaterThan(20000n);
      expect(get(X, H1).tcp).toBeGreaterThan(0n);
      for (const p of pairs) expect(p.udp).toBe(0n);
    });

    it('traffic rows equal the oracle (H1: 252 B of ICMP each way; H2: 456)', () => {
      const got = rows(parseTraffic(topo.r.cat('/proc/net/xt_traffic/R0')) , 'ip', ['total', 'tcp', 'udp', 'other']);
      const want = expectedTraffic(pairs, NET, 'all');
      expect(got).toEqual(want);
      expect(Object.keys(got)).toEqual([H1, H2]);
      expect(got[H2]).toEqual({ total: { in: 456n, out: 456n }, tcp: { in: 0n, out: 0n }, udp: { in: 0n, out: 0n }, other: { in: 456n, out: 456n } });
    });

    it('connections per IP and per port equal what was started (H1: 1 ICMP + 1 TCP, H2: 1 ICMP)', () => {
      const want = expectedConns(conns, NET, 'all');
      expect(rows(parseIpConn(topo.r.cat('/proc/net/xt_traffic/R0_ipconn')) , 'ip', ['total', 'tcp', 'udp', 'icmp', 'other'])).toEqual(want.ip);
      expect(rows(parsePortConn(topo.r.cat('/proc/net/xt_traffic/R0_portconn')) , 'port', ['total', 'tcp', 'udp', 'icmp', 'other'])).toEqual(want.port);
      expect(want.ip[H1]!.total.out).toBe(2n);
      expect(want.ip[H2]!.total.in).toBe(1n);
    });

    it("NAME_info is the old module's (no hostprefix line)", () => {
      const info = topo.r.cat('/proc/net/xt_traffic/R0_info').split('\n');
      expect(info.slice(0, 5)).toEqual(['name: R0', 'family: ipv4', 'netbase: 10.1.0.0', 'netmask: 255.255.0.0', 'options: traffic portconn ipconn']);
      expect(info.filter((l) => l.startsWith('hostprefix'))).toEqual([]);
      expect(info).toContain('traffic_entries: 2');
      expect(info).toContain('ipconn_entries: 2');
    });

    it('iptables -L and iptables-save print the rules as with revision 1; save | restore round-trips', async () => {
      const list = await topo.r.run(ipt, ['-t', 'raw', '-L', 'PREROUTING', '-n']);
      const got = list.split('\n').filter((l) => / traffic /.test(l)).map((l) => l.replace(/^.*?(traffic \S+ \S+\/)/, '$1').trim());
      expect(got).toEqual(LIST_ROWS);
      const save = (ns: Netns) => ns.exec(`${ipt}-save`, ['-t', 'raw']).split('\n').filter((l) => l.includes('-m traffic'));
      expect(save(topo.r)).toEqual(SAVE_LINES);
      const fresh = new Netns('rz');
      try {
        await fresh.run(`${ipt}-restore`, [], { input: topo.r.exec(`${ipt}-save`, ['-t', 'raw']).split('\n').filter((l) => !/ORACLE|-[sd] /.test(l)).join('\n') + '\n' });
        expect(save(fresh)).toEqual(SAVE_LINES);
      } finally {
        fresh.delete();
      }
    });

    it(`${ipt} refuses --hostprefix (revision 0 has no such option) and adds nothing`, () => {
      const r = run('ip', ['netns', 'exec', topo.r.name, ipt, '-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '10.2.0.0', '--netmask', '16', '--hostprefix', '24', '--name', 'HP']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('unknown option "--hostprefix"');
      expect(topo.r.exec(`${ipt}-save`, ['-t', 'raw'])).not.toContain('HP');
    });

    it(`${ipt6} refuses an IPv6 rule (the kernel has no IPv6 revision) and adds nothing`, () => {
      const r = run('ip', ['netns', 'exec', topo.r.name, ipt6, '-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '2001:db8::', '--netmask', '48', '--name', 'V6']);
      console.log(`${ipt6} with the revision-0 module: exit ${r.status}: ${r.stderr.trim()}`);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/Extension traffic is not supported, missing kernel module\?|Couldn't load match `traffic'/);
      expect(run('ip', ['netns', 'exec', topo.r.name, `${ipt6}-save`, '-t', 'raw']).stdout).not.toContain('-m traffic');
    });

    it('xttraffic rule add: --hostprefix and an IPv6 net are refused naming the old module', async () => {
      for (const net of [['--net', '10.2.0.0/16', '--hostprefix', '24'], ['--net', '2001:db8::/48']]) {
        const r = await runCli(['rule', 'add', '--backend', backend, '--name', 'HP', ...net, '--traffic', '--table', 'raw', '--chain', 'PREROUTING'], topo.r.name);
        console.log(`xttraffic rule add ${net.join(' ')} (${backend}): exit ${r.code}: ${r.stderr.trim()}`);
        expect(r.code, `${net.join(' ')}: ${r.stderr}`).not.toBe(0);
        expect(r.stderr).toContain(PREDATES);
      }
      expect(topo.r.exec(`${ipt}-save`, ['-t', 'raw'])).not.toContain('HP');
    });
  });
});
