import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelLog } from '../lib/dmesg.js';
import { loadModule, modulePath, unloadModuleWhenFree } from '../lib/module.js';
import { Netns, veth } from '../lib/netns.js';
import { run, sh } from '../lib/sh.js';

// Issue 12, defects 2 and 4: module parameters are checked (a bad value is refused at
// load, naming it); with iptables-nft a table's last rule deleted and re-added with other
// options is not refused because the old rule's destroy is still pending (nft_compat destroys
// a deleted rule's match after the commit, from a work item that waits for an RCU grace
// period first; it also flushes that work before it checks a new match, so neither test
// below failed on 29fb222^: docs/defect-tests.md, "the nft re-add race").

const PREFIX = 'xt_traffic: ';

describe('module parameters are validated', () => {
  afterAll(() => loadModule());

  it.each([
    ['max_entries=0', 'max_entries="0" refused: a number in 1..16777216'],
    ['max_entries=16777217', 'max_entries="16777217" refused: a number in 1..16777216'],
    ['max_entries=lots', 'max_entries="lots" refused: a number in 1..16777216'],
    ['flow_timeout=0', 'flow_timeout="0" refused: a number in 1..86400'],
    ['flow_timeout=86401', 'flow_timeout="86401" refused: a number in 1..86400'],
    ['proc_perms=0777', 'proc_perms="0777" refused: a mode of 0777 at most, without execute bits'],
    ['proc_perms=01600', 'proc_perms="01600" refused: a mode of 0777 at most, without execute bits'],
  ])('insmod %s is refused with one line naming it', async (param, line) => {
    await unloadModuleWhenFree();
    const log = new KernelLog();
    const r = run('insmod', [modulePath(), param]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Invalid (argument|parameters)/);
    const [name, value] = param.split('=') as [string, string];
    // ours, then the kernel's own line of parse_args()
    expect(log.linesStarting(PREFIX).filter((l) => l.includes(name))).toEqual([PREFIX + line, `${PREFIX}\`${value}' invalid for parameter \`${name}'`]);
    expect(run('lsmod').stdout).not.toMatch(/^xt_traffic /m);
  });

  it('a bad value written at run time is refused too; a good one is taken', async () => {
    await unloadModuleWhenFree();
    sh('insmod', [modulePath(), 'max_entries=4096', 'flow_timeout=60', 'proc_perms=0640']);
    const p = '/sys/module/xt_traffic/parameters';
    expect(readFileSync(`${p}/max_entries`, 'utf8')).toBe('4096\n');
    expect(readFileSync(`${p}/flow_timeout`, 'utf8')).toBe('60\n');
    expect(() => writeFileSync(`${p}/max_entries`, '0')).toThrow(/EINVAL/);
    expect(() => writeFileSync(`${p}/flow_timeout`, '-1')).toThrow(/EINVAL/);
    expect(readFileSync(`${p}/max_entries`, 'utf8')).toBe('4096\n');
    writeFileSync(`${p}/max_entries`, '8192');
    expect(readFileSync(`${p}/max_entries`, 'utf8')).toBe('8192\n');
    await unloadModuleWhenFree();
  });
});

describe('iptables-nft: the last rule deleted and re-added with other options', () => {
  let ns: Netns;

  beforeAll(() => {
    loadModule();
    ns = new Netns('ed');
  });

  afterAll(() => ns?.delete());

  it('is accepted 20 times in a row (the old table goes first), and the log stays quiet', () => {
    const log = new KernelLog();
    const rule = (extra: string[]) => ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', ...extra, '--netbase', '10.5.0.0', '--netmask', '255.255.0.0', '--name', 'R'];
    const failures: string[] = [];
    for (let i = 0; i < 20; i++) {
      const extra = i % 2 ? ['--ipconn'] : [];
      const add = run('ip', ['netns', 'exec', ns.name, 'iptables', ...rule(extra)]);
      if (add.status !== 0) failures.push(`round ${i}: ${add.stderr.trim()}`);
      const info = ns.cat('/proc/net/xt_traffic/R_info');
      expect(info).toContain(i % 2 ? 'options: traffic ipconn\n' : 'options: traffic\n');
      sh('ip', ['netns', 'exec', ns.name, 'iptables', '-t', 'raw', '-F', 'PREROUTING']);
    }
    expect(failures).toEqual([]);
    expect(log.linesStarting(PREFIX)).toEqual([]);
  }, 300_000);
});

describe('iptables-nft-restore: the last rule deleted and re-added with other options in two batches of one process', () => {
  // xtables-restore sends one netlink batch per COMMIT: the add's batch follows the delete's
  // commit at once, in the same process (two iptables processes, the test above, take
  // ~0.6-1.1 s under TCG). The delete names the rule, so the extension is loaded before the
  // first COMMIT; the input is a file. This passed on 29fb222^ too (0 of 20 refused in the
  // probe, scripts/nft-readd-race.sh): nft_compat itself flushes the pending destroy work
  // (nft_compat_wait_for_destructors()) before it checks a new match, and every nfnetlink
  // socket's release flushes it too; a guard of the re-add and its exact counts.
  const NET = ['--netbase', '10.5.0.0', '--netmask', '255.255.0.0', '--name', 'R'];
  const rule = (ipconn: boolean) => ['-m', 'traffic', '--traffic', ...(ipconn ? ['--ipconn'] : []), ...NET];
  const HOST = '10.5.0.1'; // in the net, in ns; the pinger 10.6.0.2 is outside it
  const PINGS = 3; // per round, 56 data bytes: 56 + 8 (ICMP) + 20 (IP) = 84 bytes each
  let ns: Netns;
  let peer: Netns;
  let input: string;

  beforeAll(() => {
    loadModule();
    ns = new Netns('er');
    peer = new Netns('ep');
    input = `/tmp/${ns.name}.rules`;
    veth(ns, HOST, peer, '10.6.0.2', { prefix: 8 });
    ns.exec('iptables-nft', ['-t', 'raw', '-A', 'PREROUTING', ...rule(false)]);
  });

  afterAll(() => {
    ns?.delete();
    peer?.delete();
    rmSync(input, { force: true });
  });

  it('10 rounds: every re-add is accepted, the new table has the new options and counts the next pings exactly', async () => {
    const log = new KernelLog();
    const got: string[] = [];
    const want: string[] = [];
    const bytes = PINGS * 84;
    let ipconn = false; // the options of the rule now
    for (let i = 0; i < 10; i++) {
      const next: boolean = !ipconn;
      writeFileSync(input, ['*raw', `-D PREROUTING ${rule(ipconn).join(' ')}`, 'COMMIT', '*raw', `-A PREROUTING ${rule(next).join(' ')}`, 'COMMIT', ''].join('\n'));
      want.push(`round ${i}: status 0, options: traffic${next ? ' ipconn' : ''}\nIP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n${HOST}\t${bytes}\t0\t0\t0\t0\t0\t${bytes}\t0\n`);
      const r = run('ip', ['netns', 'exec', ns.name, 'iptables-nft-restore', '--noflush', input]);
      if (r.status !== 0) {
        got.push(`round ${i}: status ${r.status}: ${r.stderr.trim()}`);
        // the delete's batch was committed: the rule with the old options goes back
        ns.exec('iptables-nft', ['-t', 'raw', '-A', 'PREROUTING', ...rule(ipconn)]);
        continue;
      }
      ipconn = next;
      await peer.run('ping', ['-c', String(PINGS), '-i', '0.2', '-W', '2', HOST]);
      const options = ns.cat('/proc/net/xt_traffic/R_info').split('\n').find((l) => l.startsWith('options:'));
      got.push(`round ${i}: status 0, ${options}\n${ns.cat('/proc/net/xt_traffic/R')}`);
    }
    expect(got).toEqual(want);
    expect(log.linesStarting(PREFIX)).toEqual([]);
  }, 300_000);
});
