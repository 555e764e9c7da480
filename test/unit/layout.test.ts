import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';

// Issue 12, defect 4: "per-packet fields share a cache line with the entry count and the first
// stripe locks". Every packet reads a map's configuration (table, kind, ncounters, bits,
// direct, nbuckets, hkey, buckets...), a table's net and maps, a flow cache's size and seed;
// every insert writes the map's entry count and takes a stripe lock, every new flow takes a
// flow stripe lock. On one cache line, each insert on one CPU evicts the line every other
// CPU's packets read (false sharing). This test reads the structures' layout from the DWARF of
// the built module (pahole) and asserts, by role, so that fields added later are covered:
//   - struct xtt_map: every member before `count` is read by packets, `count` and every member
//     after it (inserts, locks[]) is written by inserts;
//   - struct xt_traffic_table: every member before `list` is read by packets, `list` and every
//     member after it is configuration or state written outside the packet path (the table
//     list, refcnt, the overflow counter, reclaim serials, read log...);
//   - struct xtt_flows: every member before `locks` is read by packets (size, seed), `locks`
//     and the sets after it are written;
// and that the two groups share no cache line of a structure aligned to the cache line (the
// structures are kzalloc'd/kvzalloc'd: kmalloc caches of power-of-two sizes align their
// objects to the size, so offsets from the start are offsets from a line boundary).
//
// The module: XTT_LAYOUT_KO names a .ko (scripts/fail-without-fix.sh: the pre-fix module,
// where this must fail); otherwise the stock 6.1 kernel's build, .cache/build/RELEASE/
// xt_traffic.ko, brought up to date by scripts/build.sh first (a no-op make when it is).
// Debian's kernels build modules with CONFIG_DEBUG_INFO, so the .ko carries DWARF.

const REPO = new URL('../..', import.meta.url).pathname;

interface Member {
  name: string;
  offset: number;
  size: number;
}
interface Layout {
  members: Member[];
  size: number;
  align: number;
}

function kernelConfig(): { ko: string; line: number } {
  const given = process.env.XTT_LAYOUT_KO;
  const out = execFileSync(
    'bash',
    [
      '-c',
      'set -e; ROOT=$PWD; . scripts/lib/kernels.sh; rel=$(kernel_cached_release 6.1) || { echo "no 6.1 kernel in the cache: run npm run setup" >&2; exit 4; }; echo "$rel"; echo "$XTT_CACHE"; echo "$(kernel_headers "$rel")"',
    ],
    { cwd: REPO, encoding: 'utf8' },
  ).trim().split('\n');
  const [rel, cache, kdir] = out as [string, string, string];
  const config = readFileSync(`${kdir}/.config`, 'utf8');
  const shift = /^CONFIG_X86_L1_CACHE_SHIFT=(\d+)$/m.exec(config);
  if (!shift) throw new Error(`no CONFIG_X86_L1_CACHE_SHIFT in ${kdir}/.config`);
  if (given) return { ko: given, line: 1 << Number(shift[1]) };
  execFileSync('bash', ['scripts/build.sh', '--kernel', rel, '--no-node'], { cwd: REPO, stdio: 'inherit' });
  return { ko: `${cache}/build/${rel}/xt_traffic.ko`, line: 1 << Number(shift[1]) };
}

/** The top-level members of struct NAME, from pahole's DWARF reading of the .ko. */
function parsePahole(text: string): Map<string, Layout> {
  const out = new Map<string, Layout>();
  let cur: { name: string; l: Layout } | null = null;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\/\*\s*---.*?---\s*\*\//, '');
    if (!cur) {
      const m = /^struct (\w+) \{/.exec(line);
      if (m) {
        cur = { name: m[1]!, l: { members: [], size: 0, align: 1 } };
        depth = 1;
      }
      continue;
    }
    const opens = (line.match(/\{/g) ?? []).length;
    const closes = (line.match(/\}/g) ?? []).length;
    depth += opens - closes;
    if (depth === 0) {
      const a = /^\}\s*__attribute__\(\(__aligned__\((\d+)\)\)\)/.exec(line);
      if (a) cur.l.align = Number(a[1]);
      out.set(cur.name, cur.l);
      cur = null;
      continue;
    }
    const size = /\/\*\s*size:\s*(\d+),/.exec(line);
    if (size && depth === 1) cur.l.size = Number(size[1]);
    // a member of this struct (not of a nested one): `type name[..] attrs; /* off size */`
    const m = /(\w+)(?:\[[^\]]*\])*(?:\s+__attribute__\(\(.*?\)\))?;\s*\/\*\s*(\d+)(?::\d+)?\s+(\d+)\s*\*\/\s*$/.exec(line);
    if (m && depth === 1 && opens === 0) cur.l.members.push({ name: m[1]!, offset: Number(m[2]), size: Number(m[3]) });
  }
  return out;
}

let ko = '';
let LINE = 64;
const STRUCTS = ['xtt_map', 'xt_traffic_table', 'xtt_flows'];

function layouts(): Map<string, Layout> {
  if (!existsSync(ko)) throw new Error(`no module at ${ko}`);
  let text: string;
  try {
    text = execFileSync('pahole', ['-F', 'dwarf', '-C', STRUCTS.join(','), ko], { encoding: 'utf8' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('pahole not found: `npm run setup` installs it (Debian package pahole)');
    throw e;
  }
  const l = parsePahole(text);
  for (const s of STRUCTS) if (!l.get(s)?.members.length) throw new Error(`pahole found no struct ${s} in the DWARF of ${ko} (built without debug info?)`);
  return l;
}

/** Lines [first, last] a member occupies (a flexible array: the line it starts on). */
function lines(m: Member): [number, number] {
  return [Math.floor(m.offset / LINE), Math.floor((m.offset + Math.max(m.size, 1) - 1) / LINE)];
}

/**
 * The members before `boundary` and those named in `mustRead` (read by every packet), and the
 * others (written); every name of `mustRead` must come before `boundary` (misplaced: those
 * that do not), and no line may hold members of both groups.
 * Returns the shared lines as "line N: read a, b / written c, d" (empty: none).
 */
function shared(l: Layout, boundary: string, mustRead: string[]): { misplaced: string[]; sharing: string[] } {
  const at = l.members.findIndex((m) => m.name === boundary);
  expect(at, `member ${boundary} in ${l.members.map((m) => m.name).join(', ')}`).toBeGreaterThan(0);
  // the named ones count as read wherever they are (a misplaced one shows as sharing too)
  const isRead = (m: Member, i: number) => i < at || mustRead.includes(m.name);
  const read = l.members.filter(isRead);
  const written = l.members.filter((m, i) => !isRead(m, i));
  const misplaced = mustRead.filter((n) => l.members.findIndex((m) => m.name === n) >= at);
  const sharing: string[] = [];
  const readLines = new Map<number, string[]>();
  for (const m of read) {
    const [a, b] = lines(m);
    for (let i = a; i <= b; i++) readLines.set(i, [...(readLines.get(i) ?? []), m.name]);
  }
  const seen = new Map<number, string[]>();
  for (const m of written) {
    const [a, b] = lines(m);
    for (let i = a; i <= b; i++) if (readLines.has(i)) seen.set(i, [...(seen.get(i) ?? []), m.name]);
  }
  for (const [i, w] of seen) sharing.push(`line ${i}: read ${readLines.get(i)!.join(', ')} / written ${w.join(', ')}`);
  return { misplaced, sharing };
}

describe('pahole output', () => {
  it('parses pahole: nested struct members are not top-level members', () => {
    const p = parsePahole(
      'struct s {\n\tint a; /* 0 4 */\n\tstruct {\n\t\tu64 n; /* 8 8 */\n\t} log[2]; /* 8 16 */\n\t/* --- cacheline 1 boundary (64 bytes) --- */\n\tint b __attribute__((__aligned__(64))); /* 64 4 */\n\n\t/* size: 128, cachelines: 2, members: 3 */\n} __attribute__((__aligned__(64)));\n',
    );
    expect(p.get('s')).toEqual({
      members: [
        { name: 'a', offset: 0, size: 4 },
        { name: 'log', offset: 8, size: 16 },
        { name: 'b', offset: 64, size: 4 },
      ],
      size: 128,
      align: 64,
    });
  });
});

describe(`cache lines of the per-packet fields (${process.env.XTT_LAYOUT_KO ?? 'HEAD'}: DWARF via pahole)`, () => {
  let l: Map<string, Layout>;
  beforeAll(() => {
    ({ ko, line: LINE } = kernelConfig());
    l = layouts();
  }, 600_000);

  it(`struct xtt_map: what packets read shares no cache line with the entry count and the stripe locks`, () => {
    const m = l.get('xtt_map')!;
    const r = shared(m, 'count', ['table', 'kind', 'ncounters', 'bits', 'direct', 'nbuckets', 'buckets']);
    expect(r.sharing.join('; '), 'lines holding fields of both').toBe('');
    expect(r.misplaced, 'fields packets read placed after count').toEqual([]);
    expect(m.members.some((x) => x.name === 'locks'), 'locks[] after count').toBe(true);
    expect(m.align).toBeGreaterThanOrEqual(LINE);
  });

  it(`struct xt_traffic_table: what packets read shares no cache line with configuration and state`, () => {
    const t = l.get('xt_traffic_table')!;
    const r = shared(t, 'list', ['base', 'mask', 'sides', 'fast', 'map', 'flows']);
    expect(r.sharing.join('; '), 'lines holding fields of both').toBe('');
    expect(r.misplaced, 'fields packets read placed after list').toEqual([]);
    const after = t.members.slice(t.members.findIndex((x) => x.name === 'list')).map((x) => x.name);
    expect(after).toEqual(expect.arrayContaining(['refcnt', 'overflow', 'clear_mutex']));
    expect(t.align).toBeGreaterThanOrEqual(LINE);
  });

  it(`struct xtt_flows: the flow cache's size and seed share no cache line with its stripe locks`, () => {
    const f = l.get('xtt_flows')!;
    const r = shared(f, 'locks', ['nsets', 'bits', 'seed']);
    expect(r.sharing.join('; '), 'lines holding fields of both').toBe('');
    expect(r.misplaced, 'fields packets read placed after locks').toEqual([]);
    expect(f.align).toBeGreaterThanOrEqual(LINE);
  });
});
