/** `xttraffic mirror enable|disable|status`: a monitor interface on a mirror (SPAN) port. */
import type { Command } from 'commander';
import type { Deps, RunResult } from '../core/deps.js';
import { ResourceError, RuntimeError, UsageError, type XtError } from '../core/errors.js';
import { renderTable } from '../output/format.js';
import {
  CHAIN, EGRESS_PREF, FILTERS, IPV6_KEYS, disablePlan, enablePlan, forwardingKey, hasClsact, ipv6Key, ipv6Silent, parseEgress, parseFilters, parseIpv6Conf,
  parseLink, parseLinkLocal, parseRawSave, validIfname,
  type Counters, type FilterStats, type Ipv6Conf, type Observed, type Previous, type Step,
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
  if (r.notFound) return new ResourceError('ENOTOOL', `${cmd} not found`, { hint: 'install iproute2 (ip, tc) and procps (sysctl)' });
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

async function rawSave(deps: Deps, backend: Backend | undefined): Promise<string> {
  const cmd = iptablesSaveCmd(backend);
  const args = ['-c', '-t', 'raw'];
  const r = await runIptables(deps, cmd, args);
  if (r.code !== 0) throw iptablesError(deps, cmd, args, r, 'list');
  return r.stdout;
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

async function observe(deps: Deps, iface: string, save: string): Promise<Observation> {
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
  return {
    iface, link, forwarding, clsact, filters: filterStats.map((f) => f.pref), filterStats, egress: egressStats !== undefined, egressStats,
    ipv6, linkLocal, raw: parseRawSave(save),
  };
}

async function runSteps(deps: Deps, steps: Step[], iface: string, verb: string): Promise<void> {
  for (const [i, s] of steps.entries()) {
    const r = s.cmd.startsWith('iptables') ? await runIptables(deps, s.cmd, s.args) : await deps.run(s.cmd, s.args);
    if (r.code === 0 && !r.notFound) continue;
    const err = s.cmd.startsWith('iptables') && !r.notFound ? iptablesError(deps, s.cmd, s.args, r, 'chain') : toolError(s.cmd, s.args, r);
    const done = steps.slice(0, i).map((x) => x.what);
    throw Object.assign(err, {
      hint: `${err.hint ? `${err.hint}; ` : ''}${verb} ${iface} stopped at "${s.what}"${done.length ? ` after: ${done.join(', ')}` : ''}` +
        (verb === 'enable' && done.length ? `; \`xttraffic mirror disable ${iface}\` undoes it` : ''),
    });
  }
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
  /** Whether the port is silent, and what it tried to send and sent. */
  silence: {
    /** Egress guard present, IPv6 settings at their silent values (or no IPv6), no link-local address. */
    silent: boolean;
    ipv6: Ipv6Conf | null;
    linkLocal: string[];
    guard: boolean;
    /** Frames the port tried to send: dropped by the egress guard. */
    triedToSend: Counters;
    /** Frames that left the port (its tx counters). */
    sent: Counters;
  };
}

const zero = () => ({ packets: 0n, bytes: 0n });

function statusOf(o: Observation): MirrorStatus {
  const m = o.raw.mirrors.get(o.iface);
  const byKind: Record<string, bigint> = {};
  for (const f of o.filterStats) byKind[f.kind] = f.packets;
  return {
    iface: o.iface,
    enabled: m !== undefined,
    promisc: o.link.promisc,
    arp: o.link.arp,
    forwarding: o.forwarding,
    previous: m?.previous,
    filters: { present: o.filterStats.length, expected: FILTERS.length, frames: o.filterStats.reduce((a, f) => a + f.packets, 0n), byKind },
    toChain: m?.jumpCounters ?? zero(),
    dropped: m?.dropCounters ?? zero(),
    silence: {
      silent: o.egress && (o.ipv6 === null || ipv6Silent(o.ipv6)) && o.linkLocal.length === 0,
      ipv6: o.ipv6,
      linkLocal: o.linkLocal,
      guard: o.egress,
      triedToSend: o.egressStats ?? zero(),
      sent: o.link.tx,
    },
  };
}

function renderMirrorStatus(list: MirrorStatus[], rules: ReturnType<typeof parseSave>): string {
  const lines: string[] = [];
  if (list.length === 0) lines.push('mirror: not enabled on any interface');
  for (const s of list) {
    lines.push(`${s.iface}: ${s.enabled ? 'enabled' : 'not enabled'} (promisc ${s.promisc ? 'on' : 'off'}, arp ${s.arp ? 'on' : 'off'}, forwarding ${s.forwarding}, tc filters ${s.filters.present}/${s.filters.expected})`);
    const k = s.filters.byKind;
    lines.push(`  frames seen:  ${s.filters.frames} (ipv4 ${k['ipv4'] ?? 0n}, 802.1Q ${k['vlan'] ?? 0n}, QinQ ${k['qinq'] ?? 0n}, 802.1Q+802.1Q ${k['vlan-vlan'] ?? 0n}, other ${k['other'] ?? 0n})`);
    lines.push(`  to ${CHAIN}:   ${s.toChain.packets} packets, ${s.toChain.bytes} bytes`);
    lines.push(`  dropped:      ${s.dropped.packets} packets, ${s.dropped.bytes} bytes`);
    const q = s.silence;
    const v6 = q.ipv6 === null ? 'no IPv6' : `IPv6 ${IPV6_KEYS.map((k) => `${k} ${q.ipv6![k]}`).join(', ')}`;
    lines.push(`  silence:      ${q.silent ? 'silent' : 'NOT silent'} (egress guard ${q.guard ? `${EGRESS_PREF}` : 'absent'}, ${v6}, link-local ${q.linkLocal.length ? q.linkLocal.join(' ') : 'none'})`);
    lines.push(`  tried to send: ${q.triedToSend.packets} frames, ${q.triedToSend.bytes} bytes (dropped by the egress guard)`);
    lines.push(`  sent:         ${q.sent.packets} frames, ${q.sent.bytes} bytes`);
  }
  if (rules.length === 0) {
    lines.push(`traffic rules in ${CHAIN}: none (add one: xttraffic rule add --table raw --chain ${CHAIN} ...)`);
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
    .description(`promiscuous mode, no ARP, no forwarding, tc ingress filters, raw PREROUTING -i IF -j ${CHAIN} then DROP; ` +
      `a silent port: tc egress guard (drop), IPv6 on but with no address, RA, SLAAC, DAD or router solicitation`)
    .argument('<iface>', 'the interface on the mirror port')
    .option('--backend <nft|legacy>', 'iptables-nft or iptables-legacy instead of `iptables`')
    .addHelpText('after', examples(['sudo xttraffic mirror enable eth1', 'sudo xttraffic mirror enable eth1 --backend legacy --json']))
    .action(async (iface: string, _o: MirrorOptions, cmd: Command) => {
      const o = optsOf<MirrorOptions>(cmd);
      checkIface(iface);
      const backend = checkBackend(o.backend);
      const obs = await observe(deps, iface, await rawSave(deps, backend));
      const { steps, previous } = enablePlan(obs, iptablesCmd(backend));
      await runSteps(deps, steps, iface, 'enable');
      emit(deps, o.json, { mirror: { iface, enabled: true, changed: steps.length > 0, previous, steps: steps.map(stepJson) } }, () =>
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
      const obs = await observe(deps, iface, await rawSave(deps, backend));
      const plan = disablePlan(obs, iptablesCmd(backend));
      if (!plan) {
        emit(deps, o.json, { mirror: { iface, enabled: false, changed: false, steps: [] } }, () => `mirror not enabled on ${iface}: nothing changed\n`);
        return;
      }
      await runSteps(deps, plan.steps, iface, 'disable');
      emit(deps, o.json, { mirror: { iface, enabled: false, changed: true, previous: plan.previous, keptChain: plan.keptChain, steps: plan.steps.map(stepJson) } }, () =>
        `mirror disabled on ${iface}:\n${plan.steps.map((s) => `  ${s.what}\n`).join('')}` +
        (plan.keptChain ? `kept chain ${CHAIN}: it still has rules (xttraffic rule list --table raw)\n` : ''));
    });

  mirror
    .command('status')
    .description(`per interface: enabled, promiscuous, frames seen by the tc filters, packets through ${CHAIN}, silence (IPv6 settings, ` +
      `frames the port tried to send and sent); and the traffic rules in ${CHAIN}`)
    .argument('[iface...]', 'interfaces (default: every one with the mirror enabled)')
    .option('--backend <nft|legacy>', 'iptables-nft-save or iptables-legacy-save instead of `iptables-save`')
    .addHelpText('after', examples(['sudo xttraffic mirror status', 'sudo xttraffic mirror status eth1 --json']))
    .action(async (ifaces: string[], _o: MirrorOptions, cmd: Command) => {
      const o = optsOf<MirrorOptions>(cmd);
      ifaces.forEach(checkIface);
      const backend = checkBackend(o.backend);
      const save = await rawSave(deps, backend);
      const names = ifaces.length > 0 ? ifaces : [...parseRawSave(save).mirrors.keys()];
      const list: MirrorStatus[] = [];
      for (const n of names) list.push(statusOf(await observe(deps, n, save)));
      const rules = parseSave(save.replace(/^\[\d+:\d+\] /gm, '')).filter((r) => r.table === 'raw' && r.chain === CHAIN);
      emit(deps, o.json, { mirrors: list, rules: rules.map((r) => ({ ...r.match, net: netString(r.match), rule: r.line })) }, () => renderMirrorStatus(list, rules));
    });
}
