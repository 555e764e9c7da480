import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { deleteArgs, makeNet, matchArgs, matchFromArgs, matchFromOptions, parseMask, parseNet, parseSave, ruleArgs, tokenize } from '../../src/system/rule.js';

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('no UsageError');
}

describe('nets', () => {
  it('parses CIDR with a prefix or a dotted mask', () => {
    expect(parseNet('193.11.176.0/20')).toEqual({ family: 'ipv4', netbase: '193.11.176.0', netmask: '255.255.240.0', prefix: 20 });
    expect(parseNet('193.11.176.0/255.255.240.0')).toEqual({ family: 'ipv4', netbase: '193.11.176.0', netmask: '255.255.240.0', prefix: 20 });
    expect(parseNet('10.1.2.3/32')).toEqual({ family: 'ipv4', netbase: '10.1.2.3', netmask: '255.255.255.255', prefix: 32 });
    expect(parseNet('128.0.0.0/1')).toEqual({ family: 'ipv4', netbase: '128.0.0.0', netmask: '128.0.0.0', prefix: 1 });
  });

  it('rejects unaligned bases (suggesting the aligned one), /0, bad masks and addresses', () => {
    const e = usage(() => parseNet('193.11.185.17/20'));
    expect(e.message).toBe('193.11.185.17/20 is not aligned to its mask (host bits are set)');
    expect(e.hint).toBe('did you mean 193.11.176.0/20?');
    expect(usage(() => parseNet('10.0.0.0/0')).message).toBe('netmask /0: the prefix length of an IPv4 net must be 1..32 (a /0 "net" would be every address)');
    expect(usage(() => parseNet('10.0.0.0/33')).message).toBe('netmask /33: the prefix length of an IPv4 net must be 1..32');
    expect(usage(() => parseNet('10.0.0.0/0.0.0.0')).message).toBe('netmask 0.0.0.0 would make every address part of the net');
    expect(usage(() => parseNet('10.0.0.0')).message).toBe('--net 10.0.0.0: expected ADDRESS/PREFIX, e.g. 193.11.176.0/20 or 2001:db8::/48');
    expect(usage(() => makeNet('10.0.0.256', '8')).message).toBe('netbase "10.0.0.256" is neither a dotted-quad IPv4 address nor an IPv6 address');
    expect(usage(() => parseMask('255.255.0.255')).message).toBe('netmask 255.255.0.255 is not contiguous');
    expect(usage(() => parseMask('abc')).message).toBe('netmask "abc" is neither a prefix length nor a dotted quad');
  });
});

describe('rule building', () => {
  it('defaults to --traffic; builds the argument array in libxt save order', () => {
    const m = matchFromOptions({ name: 'lan', net: '192.168.0.0/16' });
    expect(m).toEqual({ name: 'lan', family: 'ipv4', netbase: '192.168.0.0', netmask: '255.255.0.0', prefix: 16, hostprefix: 32, traffic: true, ipconn: false, portconn: false, hashsize: undefined, clearonread: false, internal: 'all' });
    expect(ruleArgs('-A', { table: 'filter', chain: 'FORWARD' }, m)).toEqual(['-t', 'filter', '-A', 'FORWARD', '-m', 'traffic', '--traffic', '--netbase', '192.168.0.0', '--netmask', '255.255.0.0', '--name', 'lan']);
    const all = matchFromOptions({ name: 'RSN', netbase: '193.11.176.0', netmask: '20', traffic: true, ipconn: true, portconn: true, hashsize: '4096', clearonread: true, onlyinternal: true });
    expect(matchArgs(all)).toEqual(['-m', 'traffic', '--traffic', '--portconn', '--ipconn', '--netbase', '193.11.176.0', '--netmask', '255.255.240.0', '--name', 'RSN', '--hashsize', '4096', '--clearonread', '!', '--nointernal']);
    expect(matchArgs(matchFromOptions({ name: 'x', net: '10.0.0.0/8', ipconn: true, nointernal: true }))).toEqual(['-m', 'traffic', '--ipconn', '--netbase', '10.0.0.0', '--netmask', '255.0.0.0', '--name', 'x', '--nointernal']);
  });

  it('checks names and hashsize like the kernel does', () => {
    expect(usage(() => matchFromOptions({ name: 'a'.repeat(32), net: '10.0.0.0/8' })).message).toBe(`table name "${'a'.repeat(32)}" is longer than 31 characters`);
    expect(matchFromOptions({ name: 'a'.repeat(31), net: '10.0.0.0/8' }).name).toHaveLength(31);
    for (const n of ['.', '..', 'a/b', 'a b', 'x_portconn', 'x_info', '']) usage(() => matchFromOptions({ name: n, net: '10.0.0.0/8' }));
    expect(matchFromOptions({ name: 'a-b.c_d', net: '10.0.0.0/8', hashsize: '4194304' }).hashsize).toBe(4194304);
    for (const h of ['0', '4194305', '-1', '1e3', 'x']) usage(() => matchFromOptions({ name: 'x', net: '10.0.0.0/8', hashsize: h }));
  });
});

describe('iptables-save', () => {
  it('tokenizes quotes and escapes', () => {
    expect(tokenize('-A X -m comment --comment "a \\"b\\" c" -j ACCEPT')).toEqual(['-A', 'X', '-m', 'comment', '--comment', 'a "b" c', '-j', 'ACCEPT']);
    expect(tokenize('  -A   X  ')).toEqual(['-A', 'X']);
  });

  it('reads the traffic match back, stopping at the next match or target', () => {
    expect(matchFromArgs(['-s', '1.2.3.4', '-m', 'traffic', '--ipconn', '--netbase', '10.0.0.0', '--netmask', '8', '--name', 'x', '!', '--nointernal', '-m', 'comment', '--comment', '--name'])).toEqual({
      name: 'x', family: 'ipv4', netbase: '10.0.0.0', netmask: '255.0.0.0', prefix: 8, hostprefix: 32, traffic: false, ipconn: true, portconn: false, hashsize: undefined, clearonread: false, internal: 'only',
    });
    expect(matchFromArgs(['-m', 'tcp', '--dport', '22'])).toBeUndefined();
    // a rule built by us parses back to the same match
    const m = matchFromOptions({ name: 'RSN', net: '193.11.176.0/20', traffic: true, portconn: true, hashsize: '64', nointernal: true });
    expect(matchFromArgs(matchArgs(m))).toEqual(m);
  });

  it('finds the rules per table and deletes them with their saved arguments', () => {
    const rules = parseSave('*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name a -j DROP\n-A PREROUTING -j ACCEPT\nCOMMIT\n*mangle\n-A FORWARD -m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name b\nCOMMIT\n');
    expect(rules.map((r) => [r.table, r.chain, r.match.name])).toEqual([['raw', 'PREROUTING', 'a'], ['mangle', 'FORWARD', 'b']]);
    expect(deleteArgs(rules[0]!)).toEqual(['-t', 'raw', '-D', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '10.0.0.0', '--netmask', '255.0.0.0', '--name', 'a', '-j', 'DROP']);
  });
});

describe('IPv6 nets and host prefixes', () => {
  it('parseNet takes IPv6 in any text form, returns it in RFC 5952 form with the mask', () => {
    expect(parseNet('2001:0DB8:0000::/48')).toEqual({ family: 'ipv6', netbase: '2001:db8::', netmask: 'ffff:ffff:ffff::', prefix: 48 });
    expect(parseNet('2001:db8::/ffff:ffff:ffff:ff00::')).toEqual({ family: 'ipv6', netbase: '2001:db8::', netmask: 'ffff:ffff:ffff:ff00::', prefix: 56 });
    expect(parseNet('2001:db8::1/128')).toEqual({ family: 'ipv6', netbase: '2001:db8::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', prefix: 128 });
    expect(parseNet('8000::/1').netmask).toBe('8000::');
    expect(parseMask('48', 'ipv6')).toEqual({ netmask: 'ffff:ffff:ffff::', prefix: 48 });
  });

  it('builds ip6tables arguments (mask as a length, --hostprefix always) that parse back to the same match', () => {
    const m = matchFromOptions({ name: 'v6', net: '2001:db8::/48', hostprefix: '56', ipconn: true, nointernal: true });
    expect(m).toEqual({
      name: 'v6', family: 'ipv6', netbase: '2001:db8::', netmask: 'ffff:ffff:ffff::', prefix: 48, hostprefix: 56,
      traffic: false, ipconn: true, portconn: false, hashsize: undefined, clearonread: false, internal: 'no',
    });
    const a = matchArgs(m);
    expect(a).toEqual(['-m', 'traffic', '--ipconn', '--netbase', '2001:db8::', '--netmask', '48', '--hostprefix', '56', '--name', 'v6', '--nointernal']);
    expect(matchFromArgs(a)).toEqual(m);
    expect(matchFromOptions({ name: 'd', net: '2001:db8::/48' }).hostprefix).toBe(64);
    expect(matchFromOptions({ name: 'd', net: '2001:db8::/96', hostprefix: '128' }).hostprefix).toBe(128);
    const v4 = matchFromOptions({ name: 'w', net: '10.0.0.0/8', hostprefix: '24' });
    expect(matchArgs(v4)).toEqual(['-m', 'traffic', '--traffic', '--netbase', '10.0.0.0', '--netmask', '255.0.0.0', '--hostprefix', '24', '--name', 'w']);
    expect(matchFromArgs(matchArgs(v4))).toEqual(v4);
  });

  it('parseSave(text, "ipv6") marks the rules IPv6; a rule it cannot read is skipped', () => {
    const rules = parseSave('*raw\n-A P -m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 56 --name V6\n-A P -m traffic --traffic --netbase 2001:db8::1 --netmask 48 --name bad\nCOMMIT\n', 'ipv6');
    expect(rules.map((r) => [r.family, r.match.family, r.match.name, r.match.hostprefix])).toEqual([['ipv6', 'ipv6', 'V6', 56]]);
  });

  it('refuses what the kernel would, naming the value', () => {
    expect(usage(() => matchFromOptions({ name: 'x', net: '2001:db8::/48', hostprefix: '47' })).message).toBe('--hostprefix 47 is shorter than the net 2001:db8::/48: a host prefix lies inside the net');
    expect(usage(() => matchFromOptions({ name: 'x', net: '2001:db8::/48', hostprefix: '129' })).message).toBe('--hostprefix 129 is longer than an IPv6 address (128 bits)');
    expect(usage(() => matchFromOptions({ name: 'x', net: '10.0.0.0/8', hostprefix: '33' })).message).toBe('--hostprefix 33 is longer than an IPv4 address (32 bits)');
    expect(usage(() => matchFromOptions({ name: 'x', net: '10.0.0.0/8', hostprefix: '7' })).message).toBe('--hostprefix 7 is shorter than the net 10.0.0.0/8: a host prefix lies inside the net');
    expect(usage(() => parseNet('2001:db8::c000/113')).message).toBe('2001:db8::c000/113 is not aligned to its mask (host bits are set)');
    expect(usage(() => parseNet('2001:db8::c000/113')).hint).toBe('did you mean 2001:db8::8000/113?');
    expect(usage(() => parseNet('::/0')).message).toBe('netmask /0: the prefix length of an IPv6 net must be 1..128 (a /0 "net" would be every address)');
    expect(usage(() => makeNet('2001:db8::', '255.255.0.0')).message).toBe('netmask 255.255.0.0 is an IPv4 mask, the net is IPv6');
    expect(usage(() => makeNet('10.0.0.0', 'ff00::')).message).toBe('netmask ff00:: is an IPv6 mask, the net is IPv4');
    expect(usage(() => makeNet('10.0.0.0', '33')).message).toBe('netmask /33: the prefix length of an IPv4 net must be 1..32');
  });
});
