// The N-API addon (finit_module/delete_module only) against the TypeScript side: constants
// from the uapi header and the errors' shape.
// The addon is built by `npm run build:native` (scripts/build.sh runs it); set
// XTT_NO_NATIVE=1 to skip this file on a machine without a compiler.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindingCandidates, tryLoadBinding } from '../../src/system/binding.js';
import * as names from '../../src/proc/names.js';

const load = tryLoadBinding();
const skip = process.env['XTT_NO_NATIVE'] === '1';
const dir = mkdtempSync(join(tmpdir(), 'xtt-native-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(skip)('native addon', () => {
  it('loads (else: run npm run build:native)', () => {
    expect(load.tried.filter((t) => t.error !== 'not found')).toEqual([]);
    expect(load.binding, `tried: ${JSON.stringify(load.tried)}`).toBeDefined();
    expect(bindingCandidates({})).toEqual([expect.stringMatching(/build\/Release\/xttraffic\.node$/), expect.stringMatching(/build\/Debug\/xttraffic\.node$/)]);
  });

  const b = load.binding!;

  it("exports the uapi header's constants, equal to the TypeScript copies", () => {
    expect(b.constants).toEqual({
      NAME_LEN: names.XT_TRAFFIC_NAME_LEN,
      HASHSIZE_MAX: names.XT_TRAFFIC_HASHSIZE_MAX,
      SUFFIX_IPCONN: names.XT_TRAFFIC_SUFFIX_IPCONN,
      SUFFIX_PORTCONN: names.XT_TRAFFIC_SUFFIX_PORTCONN,
      SUFFIX_INFO: names.XT_TRAFFIC_SUFFIX_INFO,
      PROC_DIR: names.XT_TRAFFIC_PROC_DIR,
      TRAFFIC: names.XT_TRAFFIC_TRAFFIC,
      PORTCONN: names.XT_TRAFFIC_PORTCONN,
      IPCONN: names.XT_TRAFFIC_IPCONN,
      CLEARONREAD: names.XT_TRAFFIC_CLEARONREAD,
      NOINTERNAL: names.XT_TRAFFIC_NOINTERNAL,
      ONLYINTERNAL: names.XT_TRAFFIC_ONLYINTERNAL,
    });
  });

  it('errors look like Node fs errors: code, negative errno, syscall, path', async () => {
    const err = await b.loadModule(join(dir, 'nope.ko'), '').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: join(dir, 'nope.ko'), message: `ENOENT: no such file or directory, open '${join(dir, 'nope.ko')}'` });
    const um = await b.unloadModule('xt_traffic_not_a_module').catch((e: unknown) => e);
    expect(um).toMatchObject({ syscall: 'delete_module', path: 'xt_traffic_not_a_module' });
    expect(['ENOENT', 'EPERM', 'ENOSYS']).toContain((um as { code: string }).code);
    expect(() => b.loadModule(42 as unknown as string, '')).toThrow('path must be a string');
    expect(() => b.loadModule('a\0b', '')).toThrow('path must not contain NUL');
    expect(() => b.unloadModule(undefined as unknown as string)).toThrow('name must be a string');
  });

});
