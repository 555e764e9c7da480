/**
 * The one loader of the N-API addon. It tries each candidate path in order and remembers why
 * each failed, so "the addon is missing" always says where it looked.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BindingAttempt } from '../core/deps.js';
import type { NativeBinding } from '../../native/binding.js';
import { VersionError } from '../core/errors.js';

export type { NativeBinding, NativeSysError } from '../../native/binding.js';
export type { BindingAttempt } from '../core/deps.js';

/** The addon ABI this code was written against (XTT_BINDING_ABI in native/addon.cc). */
export const BINDING_ABI = 2;

/** Package root: src/system/ and dist/system/ are both two levels down. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface BindingLoad {
  binding: NativeBinding | undefined;
  path: string | undefined;
  tried: BindingAttempt[];
}

/** Where the addon may be, in order: $XTT_BINDING, then node-gyp's Release and Debug outputs. */
export function bindingCandidates(env: NodeJS.ProcessEnv = process.env, root = PACKAGE_ROOT): string[] {
  const c: string[] = [];
  if (env['XTT_BINDING']) c.push(resolve(env['XTT_BINDING']));
  c.push(join(root, 'build', 'Release', 'xttraffic.node'), join(root, 'build', 'Debug', 'xttraffic.node'));
  return c;
}

/** Tries every candidate; never throws. */
export function tryLoadBinding(candidates: string[] = bindingCandidates()): BindingLoad {
  const require = createRequire(import.meta.url);
  const tried: BindingAttempt[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      tried.push({ path, error: 'not found' });
      continue;
    }
    try {
      const b = require(path) as NativeBinding;
      if (b.abi !== BINDING_ABI) {
        tried.push({ path, error: `addon ABI ${String(b.abi)}, this xttraffic needs ${BINDING_ABI}: rebuild it` });
        continue;
      }
      return { binding: b, path, tried };
    } catch (e) {
      tried.push({ path, error: e instanceof Error ? e.message.split('\n')[0]! : String(e) });
    }
  }
  return { binding: undefined, path: undefined, tried };
}

/** The addon is missing or unusable: exit 3, with every path tried. */
export class BindingUnavailableError extends VersionError {
  override name = 'BindingUnavailableError';
  readonly tried: BindingAttempt[];
  constructor(tried: BindingAttempt[], what = 'this command') {
    super(
      'ENOBINDING',
      `${what} needs the xttraffic native addon, which could not be loaded:\n` +
        tried.map((t) => `  ${t.path}: ${t.error}`).join('\n'),
      { hint: 'build it with `xttraffic build` or `npm run build:native` (needs g++, make and python3: apt install build-essential python3)' },
    );
    this.tried = tried;
  }
}

let cached: BindingLoad | undefined;

/** The addon, loaded once; throws BindingUnavailableError listing every path tried. */
export function loadBinding(): NativeBinding {
  cached ??= tryLoadBinding();
  if (!cached.binding) throw new BindingUnavailableError(cached.tried);
  return cached.binding;
}

/** Like loadBinding() but returns the attempts instead of throwing. */
export function bindingStatus(): BindingLoad {
  cached ??= tryLoadBinding();
  return cached;
}
