import { describe, expect, it } from 'vitest';
import type { Deps, RunResult } from '../../src/core/deps.js';
import {
  BLOCK_SET, BLOCK_SET6, block, blockRule, ensureBlockRules, ensurePlan, listBlocked, parseSetHeader, parseSetSave, removeBlockRules, removePlan, unblock,
} from '../../src/system/block.js';

// The quota block against a small fake of ipset and iptables that keeps state the way the
// real tools do (messages and exit codes as ipset v7.17 and iptables v1.8.9 print them), so
// idempotence is checked on what a first call left behind.

interface FakeSys {
  set: { type: string; header: string } | undefined;
  members: Map<string, number>;
  /** The IPv6 set xttraffic-block6 (the same fields as set and members). */
  set6?: { type: string; header: string } | undefined;
  members6?: Map<string, number>;
  /** FORWARD rules per iptables command, as argument strings after `-A FORWARD`. */
  forward: Map<string, string[]>;
  calls: string[];
  fail?: (cmd: string, args: string[]) => Partial<RunResult> | undefined;
}

function fakeDeps(sys: FakeSys): Deps {
  const run = async (cmd: string, args: readonly string[]): Promise<RunResult> => {
    const a = [...args];
    sys.calls.push(`${cmd} ${a.join(' ')}`);
    const forced = sys.fail?.(cmd, a);
    if (forced) return { code: 1, stdout: '', stderr: '', ...forced };
    const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
    const err = (code: number, stderr: string): RunResult => ({ code, stdout: '', stderr });
    if (cmd === 'ipset') {
      const noSet = err(1, 'ipset v7.17: The set with the given name does not exist\n');
      const name = a[0] === 'list' ? a[2] : a[1];
      if (name === BLOCK_SET6) return ipset6(sys, a, ok, err, noSet);
      if (name !== BLOCK_SET) return noSet;
      const refs = [...sys.forward.values()].flat().filter((r) => r.includes(`--match-set ${BLOCK_SET} `)).length;
      switch (a[0]) {
        case 'list':
          if (!sys.set) return noSet;
          return ok(`Name: ${BLOCK_SET}\nType: ${sys.set.type}\nRevision: 6\nHeader: ${sys.set.header}\nSize in memory: 216\nReferences: ${refs}\nNumber of entries: ${sys.members.size}\n`);
        case 'create':
          if (sys.set) return err(1, 'ipset v7.17: Set cannot be created: set with the same name already exists\n');
          sys.set = { type: a[2]!, header: 'family inet hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval 0x1d2c3b4a' };
          return ok();
        case 'test':
          if (!sys.set) return noSet;
          return sys.members.has(a[2]!) ? err(0, `${a[2]} is in set ${BLOCK_SET}.\n`) : err(1, `ipset v7.17: ${a[2]} is NOT in set ${BLOCK_SET}.\n`);
        case 'add':
          if (!sys.set) return noSet;
          if (sys.members.has(a[2]!)) return err(1, "ipset v7.17: Element cannot be added to the set: it's already added\n");
          sys.members.set(a[2]!, a[3] === 'timeout' ? Number(a[4]) : 0);
          return ok();
        case 'del':
          if (!sys.set) return noSet;
          if (!sys.members.delete(a[2]!)) return err(1, "ipset v7.17: Element cannot be deleted from the set: it's not added\n");
          return ok();
        case 'save':
          if (!sys.set) return noSet;
          return ok(`create ${BLOCK_SET} ${sys.set.type} ${sys.set.header}\n${[...sys.members].map(([ip, t]) => `add ${BLOCK_SET} ${ip} timeout ${t}\n`).join('')}`);
        case 'destroy':
          if (!sys.set) return noSet;
          if (refs > 0) return err(1, 'ipset v7.17: Set cannot be destroyed: it is in use by a kernel component\n');
          sys.set = undefined;
          sys.members.clear();
          return ok();
      }
      return err(1, 'unexpected ipset call');
    }
    if (cmd.startsWith('iptables') || cmd.startsWith('ip6tables')) {
      const chain = sys.forward.get(cmd) ?? [];
      sys.forward.set(cmd, chain);
      const op = a[2]!;
      const rule = (op === '-I' ? a.slice(5) : a.slice(4)).join(' ');
      const v6 = cmd.startsWith('ip6tables');
      // ip6tables refuses a set of the other family, as the kernel does (set family mismatch)
      if (v6 !== rule.includes(`--match-set ${BLOCK_SET6} `)) return err(2, `${cmd} v1.8.9: The protocol family of set ${v6 ? BLOCK_SET : BLOCK_SET6} is ${v6 ? 'inet' : 'inet6'}, which is not applicable.\n`);
      if (rule.includes('--match-set') && !(v6 ? sys.set6 : sys.set)) return err(2, `${cmd} v1.8.9 (nf_tables): Set ${v6 ? BLOCK_SET6 : BLOCK_SET} doesn't exist.\n`);
      if (op === '-C') return chain.includes(rule) ? ok() : err(1, 'iptables: Bad rule (does a matching rule exist in that chain?).\n');
      if (op === '-I') {
        chain.unshift(rule);
        return ok();
      }
      if (op === '-D') {
        const i = chain.indexOf(rule);
        if (i < 0) return err(1, 'iptables: Bad rule (does a matching rule exist in that chain?).\n');
        chain.splice(i, 1);
        return ok();
      }
    }
    return { code: 127, stdout: '', stderr: `${cmd}: not found`, notFound: true };
  };
  // XTABLES_LIBDIR set: iptables runs with the environment as is (no checkout lookup).
  return { run, env: { XTABLES_LIBDIR: '/x' }, paths: { root: '/nonexistent' } } as unknown as Deps;
}

/** ipset on the IPv6 set: as for the IPv4 one, hash:net family inet6. */
function ipset6(sys: FakeSys, a: string[], ok: (s?: string) => RunResult, err: (c: number, s: string) => RunResult, noSet: RunResult): RunResult {
  const m = (sys.members6 ??= new Map());
  const refs = [...sys.forward.values()].flat().filter((r) => r.includes(`--match-set ${BLOCK_SET6} `)).length;
  switch (a[0]) {
    case 'list':
      if (!sys.set6) return noSet;
      return ok(`Name: ${BLOCK_SET6}\nType: ${sys.set6.type}\nRevision: 7\nHeader: ${sys.set6.header}\nSize in memory: 1216\nReferences: ${refs}\nNumber of entries: ${m.size}\n`);
    case 'create':
      if (sys.set6) return err(1, 'ipset v7.17: Set cannot be created: set with the same name already exists\n');
      sys.set6 = { type: a[2]!, header: `family ${a[4]} hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval 0x5a5a5a5a` };
      return ok();
    case 'test':
      if (!sys.set6) return noSet;
      return m.has(a[2]!) ? err(0, `${a[2]} is in set ${BLOCK_SET6}.\n`) : err(1, `ipset v7.17: ${a[2]} is NOT in set ${BLOCK_SET6}.\n`);
    case 'add':
      if (!sys.set6) return noSet;
      if (m.has(a[2]!)) return err(1, "ipset v7.17: Element cannot be added to the set: it's already added\n");
      m.set(a[2]!, a[3] === 'timeout' ? Number(a[4]) : 0);
      return ok();
    case 'del':
      if (!sys.set6) return noSet;
      if (!m.delete(a[2]!)) return err(1, "ipset v7.17: Element cannot be deleted from the set: it's not added\n");
      return ok();
    case 'save':
      if (!sys.set6) return noSet;
      return ok(`create ${BLOCK_SET6} ${sys.set6.type} ${sys.set6.header}\n${[...m].map(([ip, t]) => `add ${BLOCK_SET6} ${ip} timeout ${t}\n`).join('')}`);
    case 'destroy':
      if (!sys.set6) return noSet;
      if (refs > 0) return err(1, 'ipset v7.17: Set cannot be destroyed: it is in use by a kernel component\n');
      sys.set6 = undefined;
      m.clear();
      return ok();
  }
  return err(1, 'unexpected ipset call');
}

function newSys(): FakeSys {
  return { set: undefined, members: new Map(), forward: new Map(), calls: [] };
}

const SRC = '-m set --match-set xttraffic-block src -m comment --comment xttraffic block src -j DROP';
const DST = '-m set --match-set xttraffic-block dst -m comment --comment xttraffic block dst -j DROP';

describe('plans', () => {
  it('ensure: the set, then dst and src inserted at the top (src first in the chain); nothing when all there', () => {
    expect(ensurePlan({ set: undefined, rules: { src: false, dst: false } }, 'iptables-legacy').map((s) => `${s.cmd} ${s.args.join(' ')}`)).toEqual([
      'ipset create xttraffic-block hash:ip family inet timeout 0',
      `iptables-legacy -t filter -I FORWARD 1 ${DST}`,
      `iptables-legacy -t filter -I FORWARD 1 ${SRC}`,
    ]);
    const set = { type: 'hash:ip', family: 'inet', timeout: true, references: 2 };
    expect(ensurePlan({ set, rules: { src: true, dst: false } }, 'iptables').map((s) => s.args.join(' '))).toEqual([`-t filter -I FORWARD 1 ${DST}`]);
    expect(ensurePlan({ set, rules: { src: true, dst: true } }, 'iptables')).toEqual([]);
    expect(removePlan({ set, rules: { src: true, dst: true } }, 'iptables').map((s) => `${s.cmd} ${s.args.join(' ')}`)).toEqual([
      `iptables -t filter -D FORWARD ${SRC}`,
      `iptables -t filter -D FORWARD ${DST}`,
      'ipset destroy xttraffic-block',
    ]);
    expect(removePlan({ set: undefined, rules: { src: false, dst: false } }, 'iptables')).toEqual([]);
    expect(blockRule('src')[8]).toBe('xttraffic block src'); // one argument, spaces included
  });

  it('parses ipset list -t and ipset save', () => {
    expect(parseSetHeader('Name: xttraffic-block\nType: hash:ip\nRevision: 6\nHeader: family inet hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval 0x5\nReferences: 2\n'))
      .toEqual({ type: 'hash:ip', family: 'inet', timeout: true, references: 2 });
    expect(parseSetHeader('Type: hash:net\nHeader: family inet6 hashsize 1024 maxelem 65536\nReferences: 0\n'))
      .toEqual({ type: 'hash:net', family: 'inet6', timeout: false, references: 0 });
    expect(parseSetSave('create xttraffic-block hash:ip family inet timeout 0\nadd xttraffic-block 10.0.0.20 timeout 0\nadd xttraffic-block 10.0.0.3 timeout 3599\nadd other 1.1.1.1\n'))
      .toEqual([{ ip: '10.0.0.3', timeout: 3599 }, { ip: '10.0.0.20', timeout: 0 }]);
  });
});

describe('ensureBlockRules / removeBlockRules', () => {
  for (const backend of [undefined, 'nft', 'legacy'] as const) {
    const ipt = backend ? `iptables-${backend}` : 'iptables';
    it(`${ipt}: creates the set and both rules once; a second call runs no change; remove undoes it, a second remove is a no-op`, async () => {
      const sys = newSys();
      const deps = fakeDeps(sys);
      const first = await ensureBlockRules(deps, backend);
      expect(first.changed).toBe(true);
      expect(sys.calls).toEqual([
        'ipset list -t xttraffic-block',
        'ipset create xttraffic-block hash:ip family inet timeout 0',
        `${ipt} -t filter -I FORWARD 1 ${DST}`,
        `${ipt} -t filter -I FORWARD 1 ${SRC}`,
      ]);
      expect(sys.forward.get(ipt)).toEqual([SRC, DST]);
      sys.calls = [];
      expect(await ensureBlockRules(deps, backend)).toEqual({ changed: false, steps: [] });
      expect(sys.calls).toEqual(['ipset list -t xttraffic-block', `${ipt} -t filter -C FORWARD ${SRC}`, `${ipt} -t filter -C FORWARD ${DST}`]);
      expect(sys.forward.get(ipt)).toEqual([SRC, DST]);

      sys.calls = [];
      const removed = await removeBlockRules(deps, backend);
      expect(removed.changed).toBe(true);
      expect(removed.keptSet).toBeUndefined();
      expect(sys.calls.slice(3)).toEqual([`${ipt} -t filter -D FORWARD ${SRC}`, `${ipt} -t filter -D FORWARD ${DST}`, 'ipset destroy xttraffic-block']);
      expect(sys.forward.get(ipt)).toEqual([]);
      expect(sys.set).toBeUndefined();
      sys.calls = [];
      expect(await removeBlockRules(deps, backend)).toEqual({ changed: false, steps: [] });
      expect(sys.calls).toEqual(['ipset list -t xttraffic-block']);
    });
  }

  it('rules of both backends: removing one keeps the set (still referenced) and says why', async () => {
    const sys = newSys();
    const deps = fakeDeps(sys);
    await ensureBlockRules(deps, 'nft');
    const legacy = await ensureBlockRules(deps, 'legacy');
    expect(legacy.steps.map((s) => s.cmd)).toEqual(['iptables-legacy', 'iptables-legacy']); // the set is shared: not created twice
    const r = await removeBlockRules(deps, 'legacy');
    expect(r.changed).toBe(true);
    expect(r.keptSet).toBe('ipset xttraffic-block is still referenced by other rules (the other iptables backend?)');
    expect(sys.set).toBeDefined();
    expect(sys.forward.get('iptables-nft')).toEqual([SRC, DST]);
  });

  it('a set of our name with another type is refused, naming it, and nothing is changed', async () => {
    const sys = newSys();
    sys.set = { type: 'hash:net', header: 'family inet hashsize 1024 maxelem 65536' };
    await expect(ensureBlockRules(fakeDeps(sys))).rejects.toMatchObject({
      code: 'EIPSET', exitCode: 4, message: 'ipset xttraffic-block exists with type hash:net family inet, not hash:ip family inet',
    });
    expect(sys.calls.filter((c) => / -I | create /.test(c))).toEqual([]);
  });

  it('iptables and ipset errors carry the tool\'s own text', async () => {
    const sys = newSys();
    sys.fail = (cmd, a) => (cmd === 'iptables' && a[2] === '-I' ? { code: 4, stderr: 'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n' } : undefined);
    await expect(ensureBlockRules(fakeDeps(sys))).rejects.toMatchObject({
      code: 'EPERM', exitCode: 4, message: `iptables -t filter -I FORWARD 1 ${DST}: iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)`,
    });
    const s2 = newSys();
    s2.fail = (cmd, a) => (cmd === 'ipset' && a[0] === 'create' ? { code: 1, stderr: 'ipset v7.17: Kernel error received: set type not supported\n' } : undefined);
    await expect(ensureBlockRules(fakeDeps(s2))).rejects.toMatchObject({
      code: 'EIPSET', exitCode: 4, message: 'ipset create xttraffic-block hash:ip family inet timeout 0: ipset v7.17: Kernel error received: set type not supported',
    });
    const s3 = newSys();
    s3.fail = (cmd) => (cmd === 'ipset' ? { code: 127, notFound: true, stderr: 'spawn ipset ENOENT' } : undefined);
    await expect(ensureBlockRules(fakeDeps(s3))).rejects.toMatchObject({ code: 'ENOTOOL', message: 'ipset not found', hint: 'install it: apt install ipset' });
  });
});

describe('block / unblock / listBlocked', () => {
  it('adds a host once, removes it once, lists in address order; each second call is a no-op', async () => {
    const sys = newSys();
    const deps = fakeDeps(sys);
    await ensureBlockRules(deps);
    sys.calls = [];
    expect(await block(deps, '10.0.0.20')).toEqual({ ip: '10.0.0.20', changed: true });
    expect(sys.calls).toEqual(['ipset list -t xttraffic-block', 'ipset test xttraffic-block 10.0.0.20', 'ipset add xttraffic-block 10.0.0.20']);
    sys.calls = [];
    expect(await block(deps, '10.0.0.20')).toEqual({ ip: '10.0.0.20', changed: false });
    expect(sys.calls).toEqual(['ipset list -t xttraffic-block', 'ipset test xttraffic-block 10.0.0.20']);
    expect(await block(deps, '10.0.0.3', { timeoutSeconds: 3600 })).toEqual({ ip: '10.0.0.3', changed: true });
    expect(sys.calls.at(-1)).toBe('ipset add xttraffic-block 10.0.0.3 timeout 3600');
    expect(await listBlocked(deps)).toEqual([{ ip: '10.0.0.3', timeout: 3600 }, { ip: '10.0.0.20', timeout: 0 }]);
    expect(await unblock(deps, '10.0.0.20')).toEqual({ ip: '10.0.0.20', changed: true });
    expect(await unblock(deps, '10.0.0.20')).toEqual({ ip: '10.0.0.20', changed: false });
    expect([...sys.members.keys()]).toEqual(['10.0.0.3']);
    expect(sys.calls.filter((c) => c.startsWith('ipset del'))).toEqual(['ipset del xttraffic-block 10.0.0.20']);
  });

  it('a host added by someone else between test and add counts as unchanged', async () => {
    const sys = newSys();
    const deps = fakeDeps(sys);
    await ensureBlockRules(deps);
    // `ipset test` answered before another process added it: the add then says "already added"
    sys.fail = (cmd, a) => (cmd === 'ipset' && a[0] === 'test' ? { code: 1, stderr: `ipset v7.17: ${a[2]} is NOT in set ${BLOCK_SET}.\n` } : undefined);
    sys.members.set('10.0.0.9', 0);
    expect(await block(deps, '10.0.0.9')).toEqual({ ip: '10.0.0.9', changed: false });
  });

  it('without the set: block fails clearly, unblock and list change nothing', async () => {
    const sys = newSys();
    const deps = fakeDeps(sys);
    await expect(block(deps, '10.0.0.1')).rejects.toMatchObject({ code: 'ENOBLOCKSET', message: 'ipset xttraffic-block does not exist' });
    expect(await unblock(deps, '10.0.0.1')).toEqual({ ip: '10.0.0.1', changed: false });
    expect(await listBlocked(deps)).toEqual([]);
    expect(sys.calls.every((c) => c === 'ipset list -t xttraffic-block')).toBe(true);
  });

  it('bad addresses are usage errors naming the value, before any command runs', async () => {
    const sys = newSys();
    const deps = fakeDeps(sys);
    for (const bad of ['10.0.0.256', '010.0.0.1', '', '10.0.0.1 ']) {
      await expect(block(deps, bad)).rejects.toMatchObject({ code: 'EUSAGE', exitCode: 2, message: `bad IPv4 address ${JSON.stringify(bad)}` });
      await expect(unblock(deps, bad)).rejects.toMatchObject({ code: 'EUSAGE', message: `bad IPv4 address ${JSON.stringify(bad)}` });
    }
    for (const bad of ['fe80::1/0', 'fe80::g', '2001:db8::/129', '2001:db8::/064', 'fe80::1%eth0']) {
      await expect(block(deps, bad)).rejects.toMatchObject({ code: 'EUSAGE', exitCode: 2, message: `bad IPv6 host ${JSON.stringify(bad)}` });
    }
    await expect(block(deps, '2001:db8::1/64')).rejects.toMatchObject({ code: 'EUSAGE', message: 'bad IPv6 host "2001:db8::1/64": host bits are set (the prefix is 2001:db8::/64)' });
    await expect(unblock(deps, '10.0.0.0/24')).rejects.toMatchObject({ code: 'EUSAGE', message: 'cannot block "10.0.0.0/24": an IPv4 host prefix (a table with --hostprefix below 32) has no block set yet' });
    await ensureBlockRules(deps);
    await expect(block(deps, '10.0.0.1', { timeoutSeconds: -1 })).rejects.toMatchObject({ code: 'EUSAGE', message: 'timeout -1: must be 0..2147483 seconds' });
    expect(sys.calls.filter((c) => /ipset (test|add|del)/.test(c))).toEqual([]);
  });
});

const SRC6 = '-m set --match-set xttraffic-block6 src -m comment --comment xttraffic block6 src -j DROP';
const DST6 = '-m set --match-set xttraffic-block6 dst -m comment --comment xttraffic block6 dst -j DROP';

describe('IPv6 host prefixes: ipset xttraffic-block6 (hash:net family inet6) and ip6tables DROP rules', () => {
  it('plans name the set, the type and ip6tables', () => {
    expect(ensurePlan({ set: undefined, rules: { src: false, dst: false } }, 'ip6tables-nft', 'ipv6').map((s) => `${s.cmd} ${s.args.join(' ')} | ${s.what}`)).toEqual([
      'ipset create xttraffic-block6 hash:net family inet6 timeout 0 | create ipset xttraffic-block6 (hash:net, family inet6, timeout 0)',
      `ip6tables-nft -t filter -I FORWARD 1 ${DST6} | drop forwarded packets whose destination is in xttraffic-block6`,
      `ip6tables-nft -t filter -I FORWARD 1 ${SRC6} | drop forwarded packets whose source is in xttraffic-block6`,
    ]);
    const set = { type: 'hash:net', family: 'inet6', timeout: true, references: 2 };
    expect(removePlan({ set, rules: { src: true, dst: true } }, 'ip6tables', 'ipv6').map((s) => `${s.cmd} ${s.args.join(' ')}`)).toEqual([
      `ip6tables -t filter -D FORWARD ${SRC6}`, `ip6tables -t filter -D FORWARD ${DST6}`, 'ipset destroy xttraffic-block6',
    ]);
    expect(parseSetSave('create xttraffic-block6 hash:net family inet6\nadd xttraffic-block6 2001:db8:0:10::/64 timeout 0\nadd xttraffic-block6 2001:db8:0:9::/64 timeout 5\nadd xttraffic-block6 2001:db8::1 timeout 0\nadd xttraffic-block 10.0.0.1\n', 'ipv6'))
      .toEqual([{ ip: '2001:db8::1', timeout: 0 }, { ip: '2001:db8:0:9::/64', timeout: 5 }, { ip: '2001:db8:0:10::/64', timeout: 0 }]);
  });

  for (const backend of [undefined, 'nft', 'legacy'] as const) {
    const ipt6 = backend ? `ip6tables-${backend}` : 'ip6tables';
    it(`${ipt6}: ensure beside the IPv4 set and rules, idempotent; remove of one family leaves the other`, async () => {
      const sys = newSys();
      const deps = fakeDeps(sys);
      await ensureBlockRules(deps, backend);
      const first = await ensureBlockRules(deps, backend, 'ipv6');
      expect(first.changed).toBe(true);
      expect(first.steps.map((s) => s.cmd)).toEqual(['ipset', ipt6, ipt6]);
      expect(sys.set6!.type).toBe('hash:net');
      expect(sys.set6!.header).toMatch(/^family inet6 /);
      expect(sys.forward.get(ipt6)).toEqual([SRC6, DST6]);
      expect(sys.forward.get(backend ? `iptables-${backend}` : 'iptables')).toEqual([SRC, DST]);
      sys.calls = [];
      expect(await ensureBlockRules(deps, backend, 'ipv6')).toEqual({ changed: false, steps: [] });
      expect(sys.calls).toEqual(['ipset list -t xttraffic-block6', `${ipt6} -t filter -C FORWARD ${SRC6}`, `${ipt6} -t filter -C FORWARD ${DST6}`]);
      const removed = await removeBlockRules(deps, backend, 'ipv6');
      expect(removed.steps.map((s) => `${s.cmd} ${s.args[0] === '-t' ? s.args[2] : s.args[0]}`)).toEqual([`${ipt6} -D`, `${ipt6} -D`, 'ipset destroy']);
      expect([sys.set6, sys.forward.get(ipt6)]).toEqual([undefined, []]);
      expect(sys.set).toBeDefined();
      expect(await removeBlockRules(deps, backend, 'ipv6')).toEqual({ changed: false, steps: [] });
    });
  }

  it('block of an IPv6 prefix creates the IPv6 set and rules the first time (an IPv4-only router never runs ip6tables); once; unblock once; list', async () => {
    const sys = newSys();
    const deps = fakeDeps(sys);
    await ensureBlockRules(deps);
    expect(await block(deps, '10.0.0.7')).toEqual({ ip: '10.0.0.7', changed: true });
    expect(sys.calls.some((c) => c.startsWith('ip6tables') || c.includes(BLOCK_SET6))).toBe(false);
    sys.calls = [];
    expect(await block(deps, '2001:db8:0:9::/64')).toEqual({ ip: '2001:db8:0:9::/64', changed: true });
    expect(sys.calls).toEqual([
      'ipset list -t xttraffic-block6', 'ipset list -t xttraffic-block6',
      'ipset create xttraffic-block6 hash:net family inet6 timeout 0',
      `ip6tables -t filter -I FORWARD 1 ${DST6}`, `ip6tables -t filter -I FORWARD 1 ${SRC6}`,
      'ipset list -t xttraffic-block6', 'ipset test xttraffic-block6 2001:db8:0:9::/64', 'ipset add xttraffic-block6 2001:db8:0:9::/64',
    ]);
    sys.calls = [];
    expect(await block(deps, '2001:db8:0:9::/64')).toEqual({ ip: '2001:db8:0:9::/64', changed: false });
    expect(sys.calls).toEqual(['ipset list -t xttraffic-block6', 'ipset test xttraffic-block6 2001:db8:0:9::/64']);
    // an address (a table per /128) is its own entry, in RFC 5952 form
    expect(await block(deps, '2001:DB8::0:1', { timeoutSeconds: 60 })).toEqual({ ip: '2001:db8::1', changed: true });
    expect(await listBlocked(deps, 'ipv6')).toEqual([{ ip: '2001:db8::1', timeout: 60 }, { ip: '2001:db8:0:9::/64', timeout: 0 }]);
    expect(await listBlocked(deps)).toEqual([{ ip: '10.0.0.7', timeout: 0 }]);
    expect(await unblock(deps, '2001:db8:0:9::/64')).toEqual({ ip: '2001:db8:0:9::/64', changed: true });
    expect(await unblock(deps, '2001:db8:0:9::/64')).toEqual({ ip: '2001:db8:0:9::/64', changed: false });
    expect([...sys.members6!.keys()]).toEqual(['2001:db8::1']);
    expect([...sys.members.keys()]).toEqual(['10.0.0.7']);
  });

  it('unblock without the IPv6 set changes nothing and creates nothing; a set of another type is refused naming it', async () => {
    const sys = newSys();
    const deps = fakeDeps(sys);
    expect(await unblock(deps, '2001:db8::/64')).toEqual({ ip: '2001:db8::/64', changed: false });
    expect(sys.calls).toEqual(['ipset list -t xttraffic-block6']);
    sys.set6 = { type: 'hash:ip', header: 'family inet6 hashsize 1024 maxelem 65536' };
    await expect(ensureBlockRules(deps, undefined, 'ipv6')).rejects.toMatchObject({
      code: 'EIPSET', message: 'ipset xttraffic-block6 exists with type hash:ip family inet6, not hash:net family inet6', hint: 'the quota block needs its own set: rename or destroy that one (ipset destroy xttraffic-block6)',
    });
  });
});
