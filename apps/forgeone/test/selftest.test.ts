import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeCryptoProvider, SigningKey, createTrustRoot, signTrustRoot } from '@forgeone/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIn, tempDir } from './helpers.js';

const provider = new NodeCryptoProvider();

describe('forgeone selftest', () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    const root = SigningKey.generate(provider);
    const doc = (expires: string) =>
      signTrustRoot(provider, createTrustRoot(provider, { expires, roles: { root: { keys: [root.toPublic()], threshold: 1 }, packages: { keys: [root.toPublic()], threshold: 1 }, kernel: { keys: [root.toPublic()], threshold: 1 } } }), root);
    await writeFile(join(dir, 'trust-root.json'), JSON.stringify(doc('2099-01-01T00:00:00Z')));
    await writeFile(join(dir, 'expired.json'), JSON.stringify(doc('2020-01-01T00:00:00Z')));
  });
  afterAll(async () => cleanup());

  it('runs the built-in tests and prints a table; exit 0 when all pass', async () => {
    const r = await runIn(dir, ['selftest']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^STATUS\s+TEST\s+TIME\s+MESSAGE$/m);
    for (const name of ['crypto.node.sha3-256', 'crypto.noble.ed25519', 'crypto.agreement.node.noble', 'policy.canaries', 'policy.tightening', 'store.write-read', 'store.durability', 'clock.sanity']) {
      expect(r.stdout).toMatch(new RegExp(`^PASSED\\s+${name.replace(/\./g, '\\.')}\\s`, 'm'));
    }
    expect(r.stdout).toMatch(/^13 passed, 0 failed, 0 skipped, 0 error\(s\) in .*: healthy$/m);
    expect(r.stderr).toBe('');
  });

  it('--json, --trust-root with required roles, --only', async () => {
    const j = await runIn(dir, ['selftest', '--trust-root', 'trust-root.json', '--require-role', 'kernel', '--json']);
    expect(j.code).toBe(0);
    const doc = j.json() as { ok: boolean; degraded: boolean; counts: Record<string, number>; results: { name: string; status: string; message: string; durationMs: number }[] };
    expect(doc).toMatchObject({ ok: true, code: null, degraded: false, counts: { passed: 14, failed: 0, skipped: 0, error: 0 } });
    const tr = doc.results.find((x) => x.name === 'trust-root.valid')!;
    expect(tr).toMatchObject({ status: 'passed', message: expect.stringContaining('expires 2099-01-01T00:00:00Z') });
    expect(doc.results.every((x) => typeof x.durationMs === 'number')).toBe(true);
    const only = (await runIn(dir, ['selftest', '--only', 'policy.canaries', '--json'])).json() as typeof doc;
    expect(only.results.map((x) => x.name)).toEqual(['policy.compile', 'policy.canaries']);
  });

  it('exit 1 with SELFTEST_FAILED when a test fails: an expired trust root, or a missing role', async () => {
    const r = await runIn(dir, ['selftest', '--trust-root', 'expired.json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAILED\s+trust-root\.valid\s+.*TRUST_ROOT_EXPIRED: /m);
    expect(r.stdout).toMatch(/: DEGRADED$/m);
    expect(r.stderr).toBe('error SELFTEST_FAILED: 1 self-test(s) did not pass: trust-root.valid\n');
    const j = await runIn(dir, ['selftest', '--trust-root', 'trust-root.json', '--require-role', 'policy', '--json']);
    expect(j.code).toBe(1);
    expect(j.json()).toMatchObject({ ok: false, code: 'SELFTEST_FAILED', degraded: true, counts: { failed: 1 } });
  });

  it('refuses an unknown test name and a missing trust root file with a code', async () => {
    expect((await runIn(dir, ['selftest', '--only', 'nope', '--json'])).json()).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    const missing = await runIn(dir, ['selftest', '--trust-root', 'missing.json', '--json']);
    expect(missing.code).toBe(1);
    expect(missing.json()).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });
});
