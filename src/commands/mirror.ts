/** `xttraffic mirror enable|disable|status`: a monitor interface on a mirror (SPAN) port. */
import type { Command } from 'commander';
import type { Deps, RunResult } from '../core/deps.js';
import { ResourceError, RuntimeError, UsageError, type XtError } from '../core/errors.js';
import { renderTable } from '../output/format.js';
import {
  CHAIN, EGRESS_PREF, FILTERS, IPV6_KEYS, disablePlan, enablePlan, forwardingKey, hasClsact, ipv6Key, ipv6Silent, nftTable, parseEgress, parseFilters, parseIpv6Conf,
  parseLink, parseLinkLocal, parseNftGuard, parseRawSave, validIfname,
  type Counters, type FilterStats, type Ipv6Conf, type NftGuard, type Observed, type Previous, type Step,
} from '../system/mirror.js';
import { netString, optionWords, parseSave } from '../system/rule.js';
import { checkBackend, iptablesCmd, iptablesError, iptablesSaveCmd, runIptables, type Backend } from '../system/xtables.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

interface MirrorOptions {
  backend?: string;
}

function toolError(cmd: string, args: readonly string[], r: RunResult): XtError {
  const msg = (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').filter((l) => l !== '').pop()!;
  const what = `${cmd} ${args.join(' ')}: ${msg}`;
  if (r.notFound) return new ResourceError('ENOTOOL', `${cmd} not found`, { hint: cmd === 'nft' ? 'install nftables' : 'install iproute2 (ip, tc) and procps (sysctl)' });
  if (/Permission denied|must be root|Operation not permitted/i.test(msg)) return new ResourceError('EPERM', what, { hint: 'run it as root (sudo)' });
  return new RuntimeError('EMIRROR', what);
}

async function tool(deps: Deps, cmd: string, args: string[]): Promise<string> {
  const r = await deps.run(cmd, args);
  if (r.code !== 0 || r.notFound) throw toolError(cmd, args, r);
  return r.stdout;
}

function checkIface(iface: string): string {
  if (!validIfname(iface)) throw new UsageError(`bad interface name ${JSON.stringify(iface)}`, { hint: '1 to 15 characters of [A-Za-z0-9_.@-]' });
  return iface;
}

async function rawSave(deps: Deps, backend: Backend | undefined, family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<string> {
  const cmd = iptablesSaveCmd(backend, family);
  const args = ['-c', '-t', 'raw'];
  const r = await runIptables(deps, cmd, args);
  if (r.code !== 0) throw iptablesError(deps, cmd, args, r, 'list');
  return r.stdout;
}

/**
 * The nft egress guard of `iface`: `nft -j list table netdev xttraffic_mirror_IF`; nft not
 * installed is not an error (the tc guard is there; enable and status say so).
 */
async function nftGuard(deps: Deps, iface: string): Promise<NftGuard> {
  const none: NftGuard = { available: true, table: false, guard: false, dropped: { packets: 0n, bytes: 0n } };
  const args = ['-j', 'list', 'table', 'netdev', nftTable(iface)];
  const r = await deps.run('nft', args);
  if (r.notFound) return { ...none, available: false };
  if (r.code !== 0 && /No such file or directory|does not exist/i.test(r.stderr)) return none;
  if (r.code !== 0) throw toolError('nft', args, r);
  try {
    return parseNftGuard(r.stdout, iface);
  } catch (e) {
    throw new RuntimeError('EMIRROR', `nft ${args.join(' ')}: unexpected output: ${(e as Error).message}`);
  }
}

/** Everything enable/disable/status need to know about one interface. */
type Observation = Observed & { filterStats: FilterStats[]; egressStats: Counters | undefined };

/** net/ipv6/conf/IF/*; null when the kernel has no IPv6 for IF (no such directory). */
async function ipv6Conf(deps: Deps, iface: string): Promise<Ipv6Conf | null> {
  const args = ['-n', ...IPV6_KEYS.map((k) => ipv6Key(iface, k))];
  const r = await deps.run('sysctl', args);
  if (r.code !== 0 && !r.notFound && /cannot stat .*No such file/.test(r.stderr)) return null;
  if (r.code !== 0 || r.notFound) throw toolError('sysctl', args, r);
  try {
    return parseIpv6Conf(r.stdout);
  } catch (e) {
    throw new RuntimeError('EMIRROR', (e as Error).message);
  }
}

async function observe(deps: Deps, iface: string, save: string, save6: () => Promise<string>): Promise<Observation> {
  const l = await deps.run('ip', ['-s', '-j', 'link', 'show', 'dev', iface]);
  if (l.notFound) throw toolError('ip', [], l);
  if (l.code !== 0) throw new ResourceError('ENODEV', `no interface ${iface} in this network namespace`, { hint: '`ip link` lists them' });
  const link = parseLink(l.stdout);
  const forwarding = (await tool(deps, 'sysctl', ['-n', forwardingKey(iface)])).trim();
  const ipv6 = await ipv6Conf(deps, iface);
  const linkLocal = ipv6 ? parseLinkLocal(await tool(deps, 'ip', ['-j', '-6', 'addr', 'show', 'dev', iface, 'scope', 'link'])) : [];
  const clsact = hasClsact(await tool(deps, 'tc', ['-j', 'qdisc', 'show', 'dev', iface]));
  const filterStats = clsact ? parseFilters(await tool(deps, 'tc', ['-s', '-j', 'filter', 'show', 'dev', iface, 'ingress'])) : [];
  const egressStats = clsact ? parseEgress(await tool(deps, 'tc', ['-s', '-j', 'filter', 'show', 'dev', iface, 'egress'])) : undefined;
  const nft = await nftGuard(deps, iface);
  return {
    iface, link, forwarding, clsact, filters: filterStats.map((f) => f.pref), filterStats, egress: egressStats !== undefined, egressStats,
    ipv6, linkLocal, raw: parseRawSave(save), raw6: ipv6 ? parseRawSave(await save6()) : undefined, nft,
  };
}

/** Runs the steps in order; returns the warnings of optional steps that failed. */
async function runSteps(deps: Deps, steps: Step[], iface: string, verb: string): Promise<string[]> {
  const warnings: string[] = [];
  const xt = (cmd: string) => /^ip6?tables/.test(cmd);
  for (const [i, s] of steps.entries()) {
    const r = xt(s.cmd) ? await runIptables(deps, s.cmd, s.args) : await deps.run(s.cmd, s.args);
    if (r.code === 0 && !r.notFound) continue;
    if (s.optional) {
      const msg = (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').filter((l) => l !== '').join(' ');
      warnings.push(`${s.optional} (${s.cmd}: ${r.notFound ? 'not found' : msg})`);
      continue;
    }
    const err = xt(s.cmd) && !r.notFound ? iptablesError(deps, s.cmd, s.args, r, 'chain') : toolError(s.cmd, s.args, r);
    const done = steps.slice(0, i).map((x) => x.what);
    throw Object.assign(err, {
      hint: `${err.hint ? `${err.hint}; ` : ''}${verb} ${iface} stopped at "${s.what}"${done.length ? ` after: ${done.join(', ')}` : ''}` +
        (verb === 'enable' && done.length ? `; \`xttraffic mirror disable ${iface}\` undoes it` : ''),
    });
  }
  return warnings;
}

function stepJson(s: Step) {
  return { what: s.what, cmd: s.cmd, args: s.args };
}

export interface MirrorStatus {
  iface: string;
  enabled: boolean;
  promisc: boolean;
  arp: boolean;
  forwarding: string;
  previous?: Previous | undefined;
  filters: { present: number; expected: number; frames: bigint; byKind: Record<string, bigint> };
  toChain: { packets: bigint; bytes: bigint };
  dropped: { packets: bigint; bytes: bigint };
  /** ip6tables' side (its own PROMISC jump and drop rule); null when IF has no IPv6. */
  ip6tables: { enabled: boolean; toChain: Counters; dropped: Counters } | null;
  /** Whether the port is silent, and what it tried to send and sent. */
  silence: {
    /**
     * tc egress guard present, the nft egress guard present (when nft is installed), IPv6
     * settings at their silent values (or no IPv6), no link-local address.
     */
    silent: boolean;
    ipv6: Ipv6Conf | null;
    linkLocal: string[];
    /** The tc egress guard is present. */
    guard: boolean;
    /** The nft netdev egress guard: its table, whether it works, or nft not installed. */
    nft: { table: string; state: 'present' | 'absent' | 'broken' | 'nft not installed'; dropped: Counters };
    /** Frames the port tried to send: dropped by the egress guards (nft's and tc's). */
    triedToSend: Counters;
    /** Frames that left the port (its tx counters). */
    sent: Counters;
  };
}

const zero = () => ({ packets: 0n, bytes: 0n });

function statusOf(o: Observation): MirrorStatus {
  const m = o.raw.mirrors.get(o.iface);
  const m6 = o.raw6?.mirrors.get(o.iface);
  const byKind: Record<string, bigint> = {};
  for (const f of o.filterStats) byKind[f.kind] = f.packets;
  const nftState = !o.nft.available ? 'nft not installed' : !o.nft.table ? 'absent' : o.nft.guard ? 'present' : 'broken';
  const tc = o.egressStats ?? zero();
  return {
    iface: o.iface,
    enabled: m !== undefined || m6 !== undefined,
    promisc: o.link.promisc,
    arp: o.link.arp,
    forwarding: o.forwarding,
    previous: m?.previous,
    filters: { present: o.filterStats.length, expected: FILTERS.length, frames: o.filterStats.reduce((a, f) => a + f.packets, 0n), byKind },
    toChain: m?.jumpCounters ?? zero(),
    dropped: m?.dropCounters ?? zero(),
    ip6tables: o.raw6 ? { enabled: m6 !== undefined, toChain: m6?.jumpCounters ?? zero(), dropped: m6?.dropCounters ?? zero() } : null,
    silence: {
      silent: o.egress && (nftState === 'present' || nftState === 'nft not installed') && (o.ipv6 === null || ipv6Silent(o.ipv6)) && o.linkLocal.length === 0,
      ipv6: o.ipv6,
      linkLocal: o.linkLocal,
      guard: o.egress,
      nft: { table: `netdev ${nftTable(o.iface)}`, state: nftState, dropped: o.nft.dropped },
      triedToSend: { packets: tc.packets + o.nft.dropped.packets, bytes: tc.bytes + o.nft.dropped.bytes },
      sent: o.link.tx,
    },
  };
}

const NFT_HELP: Record<MirrorStatus['silence']['nft']['state'], string> = {
  present: 'present',
  absent: 'ABSENT (`xttraffic mirror enable` adds it)',
  broken: 'BROKEN (no egress chain with a drop rule: `nft delete table` it and enable again)',
  'nft not installed': 'not installed: frames sent with PACKET_QDISC_BYPASS would leave (install nftables, enable again)',
};

function renderMirrorStatus(list: MirrorStatus[], rules: ReturnType<typeof parseSave>): string {
  const lines: string[] = [];
  if (list.length === 0) lines.push('mirror: not enabled on any interface');
  for (const s of list) {
    lines.push(`${s.iface}: ${s.enabled ? 'enabled' : 'not enabled'} (promisc ${s.promisc ? 'on' : 'off'}, arp ${s.arp ? 'on' : 'off'}, forwarding ${s.forwarding}, tc filters ${s.filters.present}/${s.filters.expected})`);
    const k = s.filters.byKind;
    lines.push(`  frames seen:  ${s.filters.frames} (ipv4 ${k['ipv4'] ?? 0n}, 802.1Q ${k['vlan'] ?? 0n}, QinQ ${k['qinq'] ?? 0n}, 802.1Q+802.1Q ${k['vlan-vlan'] ?? 0n}; ` +
      `ipv6 ${k['ipv6'] ?? 0n}, 802.1Q ${k['vlan6'] ?? 0n}, QinQ ${k['qinq6'] ?? 0n}, 802.1Q+802.1Q ${k['vlan-vlan6'] ?? 0n}; other ${k['other'] ?? 0n})`);
    lines.push(`  to ${CHAIN}:   IPv4 ${s.toChain.packets} packets, ${s.toChain.bytes} bytes; ` +
      (s.ip6tables === null ? 'IPv6: none (no IPv6 on the interface)' : s.ip6tables.enabled ? `IPv6 ${s.ip6tables.toChain.packets} packets, ${s.ip6tables.toChain.bytes} bytes` : 'IPv6 NOT set up (enable again)'));
    lines.push(`  dropped:      IPv4 ${s.dropped.packets} packets, ${s.dropped.bytes} bytes` +
      (s.ip6tables?.enabled ? `; IPv6 ${s.ip6tables.dropped.packets} packets, ${s.ip6tables.dropped.bytes} bytes` : ''));
    const q = s.silence;
    const v6 = q.ipv6 === null ? 'no IPv6' : `IPv6 ${IPV6_KEYS.map((k) => `${k} ${q.ipv6![k]}`).join(', ')}`;
    lines.push(`  silence:      ${q.silent ? 'silent' : 'NOT silent'} (tc egress guard ${q.guard ? `${EGRESS_PREF}` : 'absent'}, ${v6}, link-local ${q.linkLocal.length ? q.linkLocal.join(' ') : 'none'})`);
    lines.push(`  nft guard:    ${q.nft.table} ${NFT_HELP[q.nft.state]}`);
    const tcDrop = q.triedToSend.packets - q.nft.dropped.packets;
    lines.push(`  tried to send: ${q.triedToSend.packets} frames, ${q.triedToSend.bytes} bytes (dropped: nft ${q.nft.dropped.packets}, tc ${tcDrop})`);
    lines.push(`  sent:         ${q.sent.packets} frames, ${q.sent.bytes} bytes`);
  }
  if (rules.length === 0) {
    lines.push(`traffic rules in ${CHAIN}: none (add one: xttraffic rule add --table raw --chain ${CHAIN} ...; an IPv6 --net runs ip6tables)`);
    return `${lines.join('\n')}\n`;
  }
  lines.push(`traffic rules in ${CHAIN}:`);
  const table = renderTable({
    headers: ['NAME', 'NET', 'OPTIONS'],
    rows: rules.map((r) => [r.match.name, netString(r.match), optionWords(r.match)]),
    align: ['left', 'left', 'left'],
  });
  return `${lines.join('\n')}\n${table.replace(/^(?=.)/gm, '  ')}`;
}

export function registerMirror(program: Command, deps: Deps): void {
  const mirror = program
    .command('mirror')
    .description(`count mirrored (SPAN) traffic: promiscuous interface, frames to raw PREROUTING, chain ${CHAIN}, then dropped`)
    .addHelpText('after', examples([
      'sudo xttraffic mirror enable eth1',
      `sudo xttraffic rule add --name span --net 193.11.176.0/20 --traffic --ipconn --table raw --chain ${CHAIN}`,
      'sudo xttraffic mirror status',
      'sudo xttraffic mirror disable eth1',
    ]));

  mirror
    .command('enable')
    .description(`promiscuous mode, no ARP, no forwarding, tc ingress filters (IPv4 and IPv6, untagged, 802.1Q, QinQ), ` +
      `raw PREROUTING -i IF -j ${CHAIN} then DROP in iptables and ip6tables; a silent port: nft netdev egress guard ` +
      `(table netdev xttraffic_mirror_IF, drop; without nft: a warning, and frames sent with PACKET_QDISC_BYPASS could leave) ` +
      `and tc egress guard (drop), IPv6 on but with no address, RA, SLAAC, DAD or router solicitation`)
    .argument('<iface>', 'the interface on the mirror port')
    .option('--backend <nft|legacy>', 'iptables-nft or iptables-legacy instead of `iptables`')
    .addHelpText('after', examples(['sudo xttraffic mirror enable eth1', 'sudo xttraffic mirror enable eth1 --backend legacy --json']))
    .action(async (iface: string, _o: MirrorOptions, cmd: Command) => {
      const o = optsOf<MirrorOptions>(cmd);
      checkIface(iface);
      const backend = checkBackend(o.backend);
      const obs = await observe(deps, iface, await rawSave(deps, backend), () => rawSave(deps, backend, 'ipv6'));
      const { steps, previous, notes } = enablePlan(obs, iptablesCmd(backend), iptablesCmd(backend, 'ipv6'));
      const warnings = [...notes, ...await runSteps(deps, steps, iface, 'enable')];
      for (const w of warnings) deps.stderr.write(`xttraffic: warning: ${w}\n`);
      emit(deps, o.json, { mirror: { iface, enabled: true, changed: steps.length > 0, previous, steps: steps.map(stepJson), warnings } }, () =>
        steps.length === 0
          ? `mirror already enabled on ${iface}: nothing changed\n`
          : `mirror enabled on ${iface}:\n${steps.map((s) => `  ${s.what}\n`).join('')}count it: xttraffic rule add --table raw --chain ${CHAIN} --name NAME --net CIDR ...\n`);
    });

  mirror
    .command('disable')
    .description('restore exactly what enable changed on the interface')
    .argument('<iface>', 'the interface on the mirror port')
    .option('--backend <nft|legacy>', 'iptables-nft or iptables-legacy instead of `iptables`')
    .addHelpText('after', examples(['sudo xttraffic mirror disable eth1']))
    .action(async (iface: string, _o: MirrorOptions, cmd: Command) => {
      const o = optsOf<MirrorOptions>(cmd);
      checkIface(iface);
      const backend = checkBackend(o.backend);
      const obs = await observe(deps, iface, await rawSave(deps, backend), () => rawSave(deps, backend, 'ipv6'));
      const plan = disablePlan(obs, iptablesCmd(backend), iptablesCmd(backend, 'ipv6'));
      if (!plan) {
        emit(deps, o.json, { mirror: { iface, enabled: false, changed: false, steps: [] } }, () => `mirror not enabled on ${iface}: nothing changed\n`);
        return;
      }
      await runSteps(deps, plan.steps, iface, 'disable');
      emit(deps, o.json, { mirror: { iface, enabled: false, changed: true, previous: plan.previous, keptChain: plan.keptChain, keptChain6: plan.keptChain6, steps: plan.steps.map(stepJson) } }, () =>
        `mirror disabled on ${iface}:\n${plan.steps.map((s) => `  ${s.what}\n`).join('')}` +
        (plan.keptChain ? `kept chain ${CHAIN}: it still has rules (xttraffic rule list --table raw)\n` : '') +
        (plan.keptChain6 ? `kept ip6tables' chain ${CHAIN}: it still has rules (xttraffic rule list --table raw)\n` : ''));
    });

  mirror
    .command('status')
    .description(`per interface: enabled, promiscuous, frames seen by the tc filters, packets through ${CHAIN} (iptables and ip6tables), ` +
      `silence (IPv6 settings, the nft and tc egress guards, frames the port tried to send and sent); and the traffic rules in ${CHAIN}`)
    .argument('[iface...]', 'interfaces (default: every one with the mirror enabled)')
    .option('--backend <nft|legacy>', 'iptables-nft-save or iptables-legacy-save instead of `iptables-save`')
    .addHelpText('after', examples(['sudo xttraffic mirror status', 'sudo xttraffic mirror status eth1 --json']))
    .action(async (ifaces: string[], _o: MirrorOptions, cmd: Command) => {
      const o = optsOf<MirrorOptions>(cmd);
      ifaces.forEach(checkIface);
      const backend = checkBackend(o.backend);
      const save = await rawSave(deps, backend);
      // ip6tables-save only when needed (an interface with IPv6), once
      let save6: Promise<string> | undefined;
      const get6 = () => (save6 ??= rawSave(deps, backend, 'ipv6'));
      const names = ifaces.length > 0 ? ifaces : [...parseRawSave(save).mirrors.keys()];
      const list: MirrorStatus[] = [];
      for (const n of names) list.push(statusOf(await observe(deps, n, save, get6)));
      if (ifaces.length === 0 && save6 === undefined) {
        // no IPv4 mirror: an ip6tables-only one (its IPv4 rules deleted by hand) is still shown
        // (quietly: a kernel without IPv6 has no ip6tables raw table to list)
        const r6 = await runIptables(deps, iptablesSaveCmd(backend, 'ipv6'), ['-c', '-t', 'raw']).catch(() => undefined);
        if (r6 && r6.code === 0) save6 = Promise.resolve(r6.stdout);
      }
      const only6 = save6 ? [...parseRawSave(await save6).mirrors.keys()].filter((n) => ifaces.length === 0 && !names.includes(n)) : [];
      for (const n of only6) list.push(statusOf(await observe(deps, n, save, get6)));
      const unc = (t: string) => t.replace(/^\[\d+:\d+\] /gm, '');
      const rules = [...parseSave(unc(save)), ...(save6 ? parseSave(unc(await save6), 'ipv6') : [])].filter((r) => r.table === 'raw' && r.chain === CHAIN);
      emit(deps, o.json, { mirrors: list, rules: rules.map((r) => ({ ...r.match, net: netString(r.match), rule: r.line })) }, () => renderMirrorStatus(list, rules));
    });
}
