// The tree shows its layers (docs/design.md, "Userspace layers"): every import in src/ goes
// only downward, commands never import commands, and no file imports itself through a circle.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../../src');

/** What each folder may import besides itself. */
const ALLOWED: Record<string, string[]> = {
  core: [],
  proc: ['core'],
  system: ['core', 'proc'],
  ledger: ['core', 'proc'],
  output: ['core', 'proc', 'ledger'],
  serve: ['core', 'proc', 'ledger', 'output'],
  cmdline: ['core', 'proc', 'output'],
  commands: ['core', 'proc', 'system', 'ledger', 'output', 'serve', 'cmdline'],
  '.': ['core', 'proc', 'system', 'ledger', 'output', 'serve', 'cmdline', 'commands'],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Relative imports of a file (static and dynamic), resolved to .ts paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)\.js'/g)) {
    const target = resolve(dirname(file), `${m[1]}.ts`);
    if (target.startsWith(SRC)) out.push(target);
  }
  return out;
}

const folderOf = (f: string) => {
  const r = relative(SRC, f).split('/');
  return r.length === 1 ? '.' : r[0]!;
};

describe('src/ layers', () => {
  const all = files(SRC);
  const graph = new Map(all.map((f) => [f, importsOf(f)]));

  it('knows every folder', () => {
    expect([...new Set(all.map(folderOf))].filter((d) => !(d in ALLOWED))).toEqual([]);
  });

  it('imports only go downward; commands never import commands', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const from = folderOf(f);
      for (const d of deps) {
        const to = folderOf(d);
        const ok = to === from ? from !== 'commands' : ALLOWED[from]!.includes(to);
        if (!ok) bad.push(`${relative(SRC, f)} -> ${relative(SRC, d)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import circle', () => {
    const state = new Map<string, 1 | 2>();
    const circles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 2) return;
      if (state.get(f) === 1) {
        circles.push([...path.slice(path.indexOf(f)), f].map((x) => relative(SRC, x)).join(' -> '));
        return;
      }
      state.set(f, 1);
      for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
      state.set(f, 2);
    };
    for (const f of all) visit(f, []);
    expect(circles).toEqual([]);
  });
});
