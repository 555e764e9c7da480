// vitest runs the tests without type-checking them: this makes `npm test` fail on a type error
// anywhere in src/ or test/ (tsconfig.test.json), as `npm run build` does for src/ alone.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';

it('src/ and test/ type-check (tsc -p tsconfig.test.json --noEmit)', () => {
  const root = resolve(__dirname, '../..');
  const r = spawnSync(process.execPath, [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.test.json', '--noEmit'], { cwd: root, encoding: 'utf8' });
  expect(`${r.stdout}${r.stderr}`).toBe('');
  expect(r.status).toBe(0);
}, 180_000);
