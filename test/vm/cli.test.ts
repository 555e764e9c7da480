import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unloadModuleWhenFree } from '../lib/module.js';
import { ok, runCli, type CliResult } from '../lib/cli.js';
import { RoutedTopo } from '../lib/topo.js';

// The xttraffic CLI end to end, as root in the VM: `load` through the addon (finit_module),
// `rule add` on router R of RoutedTopo, real packets of known sizes between the namespaces,
// `read --clear --json` equal to what was sent, a second read all zero, `unload` refused while
// the rule exists and done after `rule del`. Then the same with --backend legacy.
// The CLI runs as its own process (node dist/cli.js) inside R's namespace, without
// XTABLES_LIBDIR in its environment: it has to find the checkout's libxt itself.

const { H1, H2, X } = RoutedTopo;

const cli = (args: string[], ns?: string): Promise<CliResult> => runCli(args, ns);

const zero = { in: 0, out: 0 };
const io = (i: number, o: number) => ({ in: i, out: o });

/** Sends what the expectations below count: pings of known sizes and one UDP datagram. */
async function sendKnownTraffic(topo: RoutedTopo): Promise<void> {
  // H1 -> X: 4 echo requests + 4 replies of 100 + 8 + 20 = 128 bytes each (X is outside the net)
  await topo.h1.run('ping', ['-q', '-c', '4', '-i', '0.2', '-s', '100', '-W', '2', X]);
  // H1 -> H2, both inside: 3 + 3 packets of 56 + 8 + 20 = 84 bytes, counted for both hosts
  await topo.h1.run('ping', ['-q', '-c', '3', '-i', '0.2', '-s', '56', '-W', '2', H2]);
  // H1 -> X: one UDP datagram of 5 bytes payload: 5 + 8 + 20 = 33 bytes (X drops it silently)
  await topo.h1.run('bash', ['-c', `printf hello > /dev/udp/${X}/9`]);
}

// What R's raw PREROUTING sees of that traffic, per host of 10.1.0.0/16.
const H1_TRAFFIC = { ip: H1, total: io(4 * 128 + 3 * 84, 4 * 128 + 3 * 84 + 33), tcp: zero, udp: io(0, 33), other: io(4 * 128 + 3 * 84, 4 * 128 + 3 * 84) };
const H2_TRAFFIC = { ip: H2, total: io(3 * 84, 3 * 84), tcp: zero, udp: zero, other: io(3 * 84, 3 * 84) };

describe('xttraffic CLI in the VM (iptables, nft backend)', () => {
  let topo: RoutedTopo;
  let r: string;

  beforeAll(async () => {
    // other suites of this run may have left the module loaded (with no rule): this one
    // tests loading it, so start from an unloaded module
    await unloadModuleWhenFree();
    topo = await RoutedTopo.create('iptables');
    r = topo.r.name;
  });
  afterAll(() => topo?.destroy());

  it('load: through finit_module, x_tables first; a second load says it is loaded', async () => {
    expect(existsSync('/sys/module/xt_traffic')).toBe(false);
    const res = ok(await cli(['load', '--json']));
    const j = JSON.parse(res.stdout) as { loaded: boolean; release: string; steps: Array<{ module: string; via: string }> };
    expect(j.loaded).toBe(true);
    expect(j.release).toBe(process.env['XTT_KERNEL_RELEASE']);
    expect(j.steps.map((s) => s.module)).toEqual(['x_tables', 'xt_traffic']);
    expect(j.steps[1]!.via).toBe('finit_module');
    expect(existsSync('/sys/module/xt_traffic')).toBe(true);
    const again = await cli(['load']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^xttraffic: xt_traffic is already loaded \(version \d+\.\d+\.\d+\)\n/);
  });

  it('rule add, then status shows the table', async () => {
    const add = ok(await cli(['rule', 'add', '--name', 'cli', '--net', '10.1.0.0/16', '--traffic', '--ipconn', '--portconn', '--table', 'raw', '--chain', 'PREROUTING', '--json'], r));
    expect(JSON.parse(add.stdout)).toMatchObject({ added: { table: 'raw', chain: 'PREROUTING', name: 'cli', net: '10.1.0.0/16' } });
    const st = JSON.parse(ok(await cli(['status', '--json'], r)).stdout) as {
      module: { loaded: boolean; refcnt: number };
      extension: { found: boolean };
      tables: Array<{ name: string; info: { netbase: string; prefixLength: number; rules: number; options: Record<string, boolean> } }>;
    };
    expect(st.module.loaded).toBe(true);
    expect(st.module.refcnt).toBe(1);
    expect(st.extension.found).toBe(true);
    expect(st.tables.map((t) => t.name)).toEqual(['cli']);
    expect(st.tables[0]!.info).toMatchObject({ netbase: '10.1.0.0', prefixLength: 16, rules: 1 });
    expect(st.tables[0]!.info.options).toMatchObject({ traffic: true, ipconn: true, portconn: true, clearonread: false });
    const list = JSON.parse(ok(await cli(['rule', 'list', '--json'], r)).stdout) as { rules: Array<{ table: string; chain: string; name: string; net: string }> };
    expect(list.rules.map((x) => [x.table, x.chain, x.name, x.net])).toEqual([['raw', 'PREROUTING', 'cli', '10.1.0.0/16']]);
  });

  it('read --clear --json equals what was sent; a second read is all zero', async () => {
    await sendKnownTraffic(topo);
    const first = JSON.parse(ok(await cli(['read', 'cli', '--clear', '--json'], r)).stdout) as { cleared: boolean; count: number; rows: unknown[]; totals: unknown };
    expect(first.cleared).toBe(true);
    expect(first.rows).toEqual([H1_TRAFFIC, H2_TRAFFIC]);
    expect(first.totals).toEqual({
      total: io(H1_TRAFFIC.total.in + H2_TRAFFIC.total.in, H1_TRAFFIC.total.out + H2_TRAFFIC.total.out),
      tcp: zero,
      udp: io(0, 33),
      other: io(H1_TRAFFIC.other.in + H2_TRAFFIC.other.in, H1_TRAFFIC.other.out + H2_TRAFFIC.other.out),
    });
    const second = JSON.parse(ok(await cli(['read', 'cli', '--json'], r)).stdout) as { count: number; rows: unknown[]; totals: Record<string, unknown> };
    expect(second.count).toBe(0);
    expect(second.rows).toEqual([]);
    expect(second.totals).toEqual({ total: zero, tcp: zero, udp: zero, other: zero });
  });

  it('connections per IP and per port (not cleared by the traffic read)', async () => {
    const ip = JSON.parse(ok(await cli(['read', 'cli', '--conn', 'ip', '--json'], r)).stdout) as { rows: unknown[] };
    expect(ip.rows).toEqual([
      { ip: H1, total: io(0, 3), tcp: zero, udp: io(0, 1), icmp: io(0, 2), other: zero },
      { ip: H2, total: io(1, 0), tcp: zero, udp: zero, icmp: io(1, 0), other: zero },
    ]);
    const port = JSON.parse(ok(await cli(['read', 'cli', '--conn', 'port', '--json'], r)).stdout) as { rows: unknown[] };
    expect(port.rows).toEqual([
      { port: 0, total: io(1, 2), tcp: zero, udp: zero, icmp: io(1, 2), other: zero },
      { port: 9, total: io(0, 1), tcp: zero, udp: io(0, 1), icmp: zero, other: zero },
    ]);
  });

  it('unload is refused while the rule exists, and works after rule del', async () => {
    const refused = await cli(['unload']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^xttraffic: xt_traffic is in use by 1 rule\n/);
    expect(existsSync('/sys/module/xt_traffic')).toBe(true);
    const del = JSON.parse(ok(await cli(['rule', 'del', '--name', 'cli', '--json'], r)).stdout) as { deleted: Array<{ name: string }> };
    expect(del.deleted.map((d) => d.name)).toEqual(['cli']);
    ok(await cli(['unload']));
    expect(existsSync('/sys/module/xt_traffic')).toBe(false);
    const gone = await cli(['read', 'cli', '--json'], r);
    expect(gone.code).toBe(4);
    expect((JSON.parse(gone.stderr) as { error: { code: string } }).error.code).toBe('ENOMODULE');
  });
});

describe('xttraffic CLI in the VM (--backend legacy)', () => {
  let topo: RoutedTopo;
  let r: string;

  beforeAll(async () => {
    topo = await RoutedTopo.create('iptables-legacy');
    r = topo.r.name;
    ok(await cli(['load', '--param', 'max_entries=1000']));
  });
  afterAll(() => topo?.destroy());

  it('add, count exactly, read --clear, delete, unload', async () => {
    expect((await cli(['load'])).code).toBe(1);
    ok(await cli(['rule', 'add', '--backend', 'legacy', '--name', 'leg', '--net', '10.1.0.0/16', '--table', 'raw', '--chain', 'PREROUTING'], r));
    await sendKnownTraffic(topo);
    const first = JSON.parse(ok(await cli(['read', 'leg', '--clear', '--json'], r)).stdout) as { rows: unknown[] };
    expect(first.rows).toEqual([H1_TRAFFIC, H2_TRAFFIC]);
    const info = JSON.parse(ok(await cli(['status', '--json'], r)).stdout) as { tables: Array<{ info: { maxEntries: number } }> };
    expect(info.tables[0]!.info.maxEntries).toBe(1000);
    expect(JSON.parse(ok(await cli(['read', 'leg', '--json'], r)).stdout)).toMatchObject({ count: 0, rows: [] });
    expect((await cli(['unload'])).code).toBe(4);
    ok(await cli(['rule', 'del', '--backend', 'legacy', '--name', 'leg'], r));
    ok(await cli(['unload']));
    expect(existsSync('/sys/module/xt_traffic')).toBe(false);
  });
});
