// The kernel without plugins (those run in tooling/e2e): boot, refusals, the inline gate, replacements.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGolden } from '@forgeone/core';
import { NobleCryptoProvider, NodeCryptoProvider, SigningKey, createTrustRoot, signTrustRoot, type TrustRootDocument } from '@forgeone/crypto';
import { verifyAuditExport } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_KERNEL_POLICY, createKernel, init, secureSyscall, shutdown } from '../src/index.js';

const crypto = new NodeCryptoProvider();
const root = SigningKey.generate(crypto);
const trustRoot: TrustRootDocument = signTrustRoot(crypto, createTrustRoot(crypto, { expires: '2030-01-01T00:00:00Z', roles: { root: { keys: [root.toPublic()], threshold: 1 }, packages: { keys: [root.toPublic()], threshold: 1 } } }), root);
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'forgeone-kernel-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('createKernel', () => {
  it('boots unknown without golden values, verified with them, compromised naming a changed input', async () => {
    const home = join(tmp, 'boot');
    const a = await createKernel({ trustRoot, home });
    expect([a.boot.verdict, a.boot.mode]).toEqual(['unknown', 'normal']);
    expect(a.boot.events.some((e) => e.name.startsWith('kernel:@forgeone/execution/'))).toBe(true);
    writeFileSync(join(home, 'golden.json'), JSON.stringify(createGolden(a.boot.events, [root])));
    await a.shutdown();
    const b = await createKernel({ trustRoot, home });
    expect(b.boot.verdict).toBe('verified');
    await b.shutdown();
    const c = await createKernel({ trustRoot, home, config: { sandbox: { poolSize: 3 } } });
    expect([c.boot.verdict, c.boot.mode, c.boot.differing.map((d) => d.name)]).toEqual(['compromised', 'recovery', ['config']]);
    await expect(c.launch({ package: new Uint8Array(8) })).rejects.toMatchObject({ code: 'BOOT_RECOVERY_MODE' });
    // The boot went to the audit log, which verifies offline.
    const boots = await c.audit.query({ kind: 'boot' });
    expect(boots.at(-1)?.details).toMatchObject({ verdict: 'compromised' });
    expect(verifyAuditExport(await c.audit.exportEvidence({ kind: 'boot' }), { trustedKeys: [c.kernelKey] }).ok).toBe(true);
    await c.shutdown();
  });

  it('refuses an unsigned package (audited) and gates inline calls on canonical arguments', async () => {
    const kernel = await createKernel({ trustRoot, store: createMemoryStore(), crypto: new NobleCryptoProvider(), boot: { measureKernel: false } });
    try {
      await expect(kernel.launch({ package: new Uint8Array([1, 2, 3]) })).rejects.toMatchObject({ code: expect.stringMatching(/^PKG_/) });
      expect((await kernel.audit.query({ kind: 'package.refused' })).length).toBe(1);
      let performed = 0;
      const ok = await kernel.secureSyscall('app:x', 'forgeone:log/write', { detail: 'info', size: 3 }, () => ++performed);
      expect(ok).toMatchObject({ allowed: true, value: 1, rule: 'base/basics' });
      // `/data/../etc/shadow` is canonicalised to /etc/shadow before matching: the quarantine rule decides.
      const escaped = await kernel.secureSyscall('app:x', 'wasi:filesystem/open', { path: '/data/../etc/shadow' }, () => ++performed);
      expect(escaped).toMatchObject({ allowed: false, verdict: 'quarantine', rule: 'base/system-paths' });
      // app:x is now held: its next call is refused before any decision.
      expect(await kernel.secureSyscall('app:x', 'forgeone:log/write', { detail: 'info', size: 3 }, () => ++performed)).toMatchObject({ allowed: false, verdict: 'suspended', code: 'CONTAINER_QUARANTINED' });
      const meta = await kernel.secureSyscall('app:z', 'forgeone:http/fetch', { host: 'METADATA.google.internal', port: 80 }, () => ++performed);
      expect(meta).toMatchObject({ allowed: false, verdict: 'quarantine', rule: 'base/metadata' });
      expect(performed).toBe(1);
    } finally {
      await kernel.shutdown();
    }
  });

  it('takes its policy as an option, and the prelude boots one kernel', async () => {
    const strict = DEFAULT_KERNEL_POLICY.replace('name: forgeone-kernel-default', 'name: strict').replace(/ {6}- \{ id: basics.*\n/, '');
    await init({ trustRoot, store: createMemoryStore(), policy: strict, boot: { measureKernel: false } });
    try {
      expect(await secureSyscall('app:y', 'forgeone:log/write', { detail: 'info', size: 1 })).toMatchObject({ allowed: false, verdict: 'deny', code: 'POLICY_DENIED' });
    } finally {
      await shutdown();
    }
  });
});

describe('a signed config file', () => {
  it('is measured, loaded, and reloaded live only with a valid signature and a higher version, every decision audited', async () => {
    const { writeSignedConfig } = await import('@forgeone/config');
    const configKey = SigningKey.generate(crypto);
    const withConfig = signTrustRoot(
      crypto,
      createTrustRoot(crypto, { expires: '2030-01-01T00:00:00Z', roles: { root: { keys: [root.toPublic()], threshold: 1 }, packages: { keys: [root.toPublic()], threshold: 1 }, config: { keys: [configKey.toPublic()], threshold: 1 } } }),
      root,
    );
    const dir = mkdtempSync(join(tmp, 'config-'));
    const file = join(dir, 'config.json');
    await writeSignedConfig(file, { version: 1, sandbox: { poolSize: 1 } }, [configKey]);
    const kernel = await createKernel({ trustRoot: withConfig, configFile: file, store: createMemoryStore(), boot: { measureKernel: false } });
    try {
      expect(kernel.config.version).toBe(1);
      expect(kernel.boot.events.find((e) => e.name === 'config')?.poisoned).toBe(false);
      const decisions = async (): Promise<unknown[]> => (await kernel.audit.query({ kind: 'config.changed' })).map((e) => e.details);
      await writeSignedConfig(file, { version: 2, sandbox: { poolSize: 1 } }, [configKey]);
      await expect.poll(() => kernel.config.version, { timeout: 20_000 }).toBe(2);
      // An older version, validly signed: refused, version 2 stays in force.
      await writeSignedConfig(file, { version: 1, sandbox: { poolSize: 1 } }, [configKey]);
      await expect.poll(async () => (await decisions()).length, { timeout: 20_000 }).toBe(3);
      expect(kernel.config.version).toBe(2);
      expect(await decisions()).toEqual([
        expect.objectContaining({ decision: 'accepted', version: 1 }),
        expect.objectContaining({ decision: 'accepted', version: 2 }),
        expect.objectContaining({ decision: 'rejected', code: 'CONFIG_ROLLBACK' }),
      ]);
    } finally {
      await kernel.shutdown();
    }
  });
});
