import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { REPO, runAsync } from '../lib/sh.js';

// The PROMISC patch series (patches/) against the exact Debian bookworm sources:
// scripts/check-patches.sh downloads and prepares them once under .cache/patches-src/
// (a cold run takes a few minutes; later runs about 20 s), applies each series and compiles
// every .c file it touches. Its stdout is one fact a line; this checks the exact list.

const KERNEL = 'linux-6.1';
const IPTABLES = 'iptables-1.8.9';

const EXPECTED_PATCHES: Record<string, string[]> = {
  [KERNEL]: [
    '0001-ipv4-let-netfilter-see-PACKET_OTHERHOST-packets-in-P.patch',
    '0002-ipv4-never-track-promiscuous-mode-packets-in-conntra.patch',
  ],
  [IPTABLES]: [
    '0001-iptables-legacy-raw-table-PROMISC-chain-for-mirror-p.patch',
    '0002-doc-iptables-describe-the-raw-table-PROMISC-chain.patch',
  ],
};

const EXPECTED_COMPILED: Record<string, string[]> = {
  [KERNEL]: ['net/ipv4/ip_input.c', 'net/ipv4/sysctl_net_ipv4.c'],
  [IPTABLES]: ['iptables/iptables.c'],
};

function series(name: string): string[] {
  return readFileSync(`${REPO}/patches/${name}/series`, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

// The .c files a series touches, from the patches' "+++ b/" lines.
function touchedC(name: string): string[] {
  const files = new Set<string>();
  for (const p of series(name)) {
    for (const m of readFileSync(`${REPO}/patches/${name}/${p}`, 'utf8').matchAll(/^\+\+\+ b\/(\S+)/gm)) {
      if (m[1]!.endsWith('.c')) files.add(m[1]!);
    }
  }
  return [...files];
}

function facts(out: string, kind: string, name: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith(`${kind} ${name} `))
    .map((l) => l.slice(kind.length + name.length + 2));
}

it('the series files list exactly the expected patches, and touch exactly the expected .c files', () => {
  for (const name of [KERNEL, IPTABLES]) {
    expect(series(name)).toEqual(EXPECTED_PATCHES[name]);
    expect(touchedC(name)).toEqual(EXPECTED_COMPILED[name]);
  }
});

it('every patch is in git format-patch form with a commit message and a Signed-off-by', () => {
  for (const name of [KERNEL, IPTABLES]) {
    for (const p of series(name)) {
      const text = readFileSync(`${REPO}/patches/${name}/${p}`, 'utf8');
      expect(text, p).toMatch(/^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n/);
      expect(text, p).toMatch(/^Subject: \[PATCH \d+\/\d+\] \S/m);
      const body = text.slice(text.indexOf('\n\n') + 2, text.indexOf('\n---\n'));
      expect(body.split('\n').filter((l) => l.trim() !== '').length, p).toBeGreaterThan(3);
      expect(body, p).toMatch(/^Signed-off-by: .+ <.+>$/m);
    }
  }
});

it('check-patches.sh applies each series to the Debian sources and compiles every touched file', async () => {
  // async: a cold run takes minutes, and a blocked worker starves vitest's RPC
  const r = await runAsync('bash', [`${REPO}/scripts/check-patches.sh`], { cwd: REPO });
  const out = r.stdout;
  expect(r.status, `${out}\n${r.stderr}`).toBe(0);

  expect(facts(out, 'SOURCE', KERNEL)).toEqual([expect.stringMatching(/^linux-source-6\.1=6\.1\.\d+-\S+$/)]);
  expect(facts(out, 'SOURCE', IPTABLES)).toEqual([expect.stringMatching(/^iptables=1\.8\.9-\S+$/)]);

  expect(facts(out, 'CHECKPATCH', KERNEL)).toEqual(EXPECTED_PATCHES[KERNEL]);
  for (const name of [KERNEL, IPTABLES]) {
    expect(facts(out, 'APPLIED', name)).toEqual(EXPECTED_PATCHES[name]);
    expect(facts(out, 'COMPILED', name)).toEqual(EXPECTED_COMPILED[name]);
  }
  // The patched iptables-legacy really creates raw PROMISC and its PREROUTING rules (in a
  // throwaway netns), unless this machine has no root/netns/ip_tables to try it.
  expect(facts(out, 'SMOKE', IPTABLES).length + facts(out, 'SMOKE-SKIPPED', IPTABLES).length).toBe(1);

  const lines = out.trimEnd().split('\n');
  expect(lines.at(-1)).toMatch(/^OK \d+s$/);
  expect(lines.filter((l) => !/^(SOURCE|CHECKPATCH|APPLIED|COMPILED|SMOKE|SMOKE-SKIPPED|OK) /.test(l))).toEqual([]);
}, 20 * 60_000);
