/** `xttraffic rule add|del|list`: -m traffic rules through iptables and ip6tables (argument arrays only). */
import type { Command } from 'commander';
import type { Deps, RunResult } from '../core/deps.js';
import { ResourceError, RuntimeError, UsageError, VersionError, type XtError } from '../core/errors.js';
import { renderTable } from '../output/format.js';
import { moduleState } from '../system/module.js';
import { checkTableName } from '../proc/names.js';
import { deleteArgs, matchFromOptions, netString, optionWords, parseSave, ruleArgs, type Family, type RuleOptions, type SavedRule } from '../system/rule.js';
import { checkBackend, iptablesCmd, iptablesEnv, iptablesError, iptablesSaveCmd, runIptables, type Backend } from '../system/xtables.js';
import { emit, examples, optsOf } from '../cmdline/options.js';
import { collectFirst } from '../ledger/collector.js';
import { dbPathFromEnv } from '../ledger/db.js';
import { countersLocation } from '../proc/counters.js';

/** Makes the ledger (XTT_DB or the default), when there is one, collect now; says so on stderr. */
async function collectBefore(deps: Deps, why: string): Promise<void> {
  const r = await collectFirst({
    dbPath: dbPathFromEnv(deps.env), loc: countersLocation(deps.env), why,
    signal: (pid) => process.kill(pid, 'SIGUSR1'), sleep: (ms) => deps.sleep(ms), now: () => deps.now(),
  });
  if (r.how === 'collector') deps.stderr.write(`xttraffic: the collector (pid ${r.pid}) collected before ${why} (${r.ms} ms)\n`);
  if (r.how === 'once') deps.stderr.write(`xttraffic: collected into ${dbPathFromEnv(deps.env)} before ${why} (no collector running)\n`);
}

interface AddOptions extends RuleOptions {
  table: string;
  chain: string;
  createChain?: boolean;
  insert?: boolean;
  backend?: string;
}

interface DelOptions {
  name: string;
  table?: string;
  chain?: string;
  backend?: string;
}

interface ListOptions {
  table?: string;
  name?: string;
  backend?: string;
}


async function iptables(deps: Deps, backend: Backend | undefined, family: Family, args: string[], op: 'add' | 'del' | 'list' | 'chain'): Promise<RunResult> {
  const cmd = iptablesCmd(backend, family);
  const r = await runIptables(deps, cmd, args);
  if (r.code !== 0) throw iptablesError(deps, cmd, args, r, op);
  return r;
}

/**
 * `iptables -C`: exit 0 = the rule exists; exit 1 with "Bad rule (does a matching rule exist in
 * that chain?)" = it does not; anything else (no chain, no extension, not root) = the real error.
 */
async function ruleExists(deps: Deps, backend: Backend | undefined, family: Family, checkArgs: string[]): Promise<boolean> {
  const cmd = iptablesCmd(backend, family);
  const r = await runIptables(deps, cmd, checkArgs);
  if (r.code === 0) return true;
  // iptables and ip6tables alike ("ip6tables: Bad rule (...)")
  if (r.code === 1 && /Bad rule \(does a matching rule exist in that chain\?\)/.test(r.stderr)) return false;
  throw iptablesError(deps, cmd, checkArgs, r, 'add');
}

/**
 * The -m traffic rules of iptables-save, then of ip6tables-save. A system without ip6tables
 * (not installed) has no IPv6 rules; any other failure of either is an error.
 */
export async function listRules(deps: Deps, o: ListOptions): Promise<SavedRule[]> {
  const backend = checkBackend(o.backend);
  const args = o.table ? ['-t', o.table] : [];
  const out: SavedRule[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const cmd = iptablesSaveCmd(backend, family);
    const r = family === 'ipv6' ? await deps.run(cmd, args, { env: await iptablesEnv(deps) }) : await runIptables(deps, cmd, args);
    if (r.notFound) continue;
    if (r.code !== 0) throw iptablesError(deps, cmd, args, r, 'list');
    out.push(...parseSave(r.stdout, family).filter((x) => o.name === undefined || x.match.name === o.name));
  }
  return out;
}

function ruleJson(r: SavedRule) {
  return { table: r.table, chain: r.chain, ...r.match, net: netString(r.match), rule: r.line };
}

function addMatchOptions(c: Command): Command {
  return c
    .requiredOption('--name <name>', 'table name: /proc/net/xt_traffic/NAME')
    .option('--net <cidr>', 'the monitored net, e.g. 193.11.176.0/20 or 2001:db8::/48 (IPv6: ip6tables)')
    .option('--netbase <addr>', 'base address of the net (with --netmask)')
    .option('--netmask <mask>', 'netmask, dotted or a prefix length')
    .option('--hostprefix <n>', 'count per prefix of this length inside the net (default: per address for IPv4, per /64 for IPv6)')
    .option('--traffic', 'count bytes per IP (the default if no counting option is given)')
    .option('--ipconn', 'count connections per IP')
    .option('--portconn', 'count connections per port')
    .option('--hashsize <n>', 'hash buckets (default: derived from the net size)')
    .option('--clearonread', 'every read of the table clears what it returns')
    .option('--nointernal', 'do not count traffic between two hosts of the net')
    .option('--onlyinternal', 'count only traffic between two hosts of the net (! --nointernal)');
}

export function registerRule(program: Command, deps: Deps): void {
  const rule = program
    .command('rule')
    .description('add, delete and list -m traffic rules')
    .addHelpText('after', examples([
      'sudo xttraffic rule add --name lan --net 192.168.0.0/16 --traffic --ipconn --portconn',
      'sudo xttraffic rule add --name lan6 --net 2001:db8::/48 --hostprefix 56',
      'sudo xttraffic rule add --name mirror --net 193.11.176.0/20 --nointernal --table raw --chain PROMISC --create-chain',
      'sudo xttraffic rule list',
      'sudo xttraffic rule del --name lan',
    ]));

  addMatchOptions(rule.command('add').description('append a -m traffic rule (iptables -A; ip6tables -A for an IPv6 net)'))
    .option('--table <table>', 'iptables table', 'filter')
    .option('--chain <chain>', 'chain to add the rule to', 'FORWARD')
    .option('--create-chain', 'create the chain (iptables -N) if it does not exist')
    .option('--insert', 'insert at the top of the chain (iptables -I) instead of appending')
    .option('--backend <nft|legacy>', 'iptables-nft or iptables-legacy (ip6tables-nft, ip6tables-legacy) instead of `iptables`')
    .addHelpText('after', examples([
      'sudo xttraffic rule add --name lan --net 192.168.0.0/16',
      'sudo xttraffic rule add --name wan24 --net 10.0.0.0/8 --hostprefix 24          # per /24',
      'sudo xttraffic rule add --name v6 --net 2001:db8::/48 --hostprefix 56 --ipconn  # ip6tables, per /56',
      'sudo xttraffic rule add --name rsn --netbase 193.11.176.0 --netmask 255.255.240.0 --traffic --ipconn --nointernal',
      'sudo xttraffic rule add --name wan --net 10.0.0.0/8 --table mangle --chain PREROUTING --backend legacy',
    ]))
    .action(async (_o: AddOptions, cmd: Command) => {
      const o = optsOf<AddOptions>(cmd);
      const backend = checkBackend(o.backend);
      const match = matchFromOptions(o);
      const fam = match.family;
      const tool = iptablesCmd(backend, fam);
      let created = false;
      if (o.createChain) {
        const cmdName = tool;
        const args = ['-t', o.table, '-N', o.chain];
        const r = await runIptables(deps, cmdName, args);
        if (r.code === 0) created = true;
        else if (!/exists/i.test(r.stderr)) throw iptablesError(deps, cmdName, args, r, 'chain');
      }
      const args = ruleArgs(o.insert ? '-I' : '-A', { table: o.table, chain: o.chain }, match);
      // The same rule twice would count every byte twice: ask iptables -C first.
      const checkArgs = [...args];
      checkArgs[2] = '-C';
      if (await ruleExists(deps, backend, fam, checkArgs)) {
        emit(deps, o.json, { added: false, exists: true, rule: { table: o.table, chain: o.chain, createdChain: created, ...match, net: netString(match), args: checkArgs } }, () =>
          `${created ? `created chain ${o.chain} in table ${o.table}\n` : ''}exists: ${tool} ${checkArgs.join(' ')} found the same rule; nothing added\n`);
        return;
      }
      await iptables(deps, backend, fam, args, 'add');
      emit(deps, o.json, { added: { table: o.table, chain: o.chain, createdChain: created, ...match, net: netString(match), args }, exists: false }, () =>
        `${created ? `created chain ${o.chain} in table ${o.table}\n` : ''}added: ${tool} ${args.join(' ')}\n`);
    });

  rule
    .command('del')
    .description('delete every -m traffic rule with this --name (optionally only in one table or chain)')
    .requiredOption('--name <name>', 'table name of the rules to delete')
    .option('--table <table>', 'only in this iptables table')
    .option('--chain <chain>', 'only in this chain')
    .option('--backend <nft|legacy>', 'iptables-nft or iptables-legacy instead of `iptables`')
    .addHelpText('after', examples(['sudo xttraffic rule del --name lan', 'sudo xttraffic rule del --name lan --table raw --chain PROMISC']))
    .action(async (_o: DelOptions, cmd: Command) => {
      const o = optsOf<DelOptions>(cmd);
      checkTableName(o.name);
      const backend = checkBackend(o.backend);
      const rules = (await listRules(deps, { name: o.name, table: o.table, backend: o.backend })).filter((r) => o.chain === undefined || r.chain === o.chain);
      if (rules.length === 0) {
        throw new ResourceError('ENORULE', `no -m traffic rule with --name ${o.name}${o.table ? ` in table ${o.table}` : ''}${o.chain ? `, chain ${o.chain}` : ''}`, {
          hint: '`xttraffic rule list` shows the rules',
        });
      }
      // the ledger takes the table's counts before its last rule (and so the table) goes away
      await collectBefore(deps, `rule del --name ${o.name}`);
      for (const r of rules) await iptables(deps, backend, r.family, deleteArgs(r), 'del');
      emit(deps, o.json, { deleted: rules.map(ruleJson) }, () => rules.map((r) => `deleted: ${r.family === 'ipv6' ? 'ip6tables ' : ''}${r.table} ${r.line}\n`).join(''));
    });

  rule
    .command('list')
    .description('show the -m traffic rules (from iptables-save and ip6tables-save)')
    .option('--table <table>', 'only this iptables table')
    .option('--name <name>', 'only rules with this --name')
    .option('--backend <nft|legacy>', 'iptables-nft-save or iptables-legacy-save instead of `iptables-save`')
    .addHelpText('after', examples(['sudo xttraffic rule list', 'sudo xttraffic rule list --backend legacy --json']))
    .action(async (_o: ListOptions, cmd: Command) => {
      const o = optsOf<ListOptions>(cmd);
      const rules = await listRules(deps, o);
      emit(deps, o.json, { rules: rules.map(ruleJson) }, () => {
        if (rules.length === 0) return 'no -m traffic rules\n';
        return renderTable({
          headers: ['TABLE', 'CHAIN', 'NAME', 'NET', 'OPTIONS'],
          rows: rules.map((r) => [r.table, r.chain, r.match.name, netString(r.match), optionWords(r.match)]),
          align: ['left', 'left', 'left', 'left', 'left'],
        });
      });
    });
}
