import { execFileSync } from 'node:child_process';
import { readFile, rename, rm, symlink, unlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NobleCryptoProvider, SigningKey } from '@forgeone/crypto';
import { createMemoryStore } from '@forgeone/store';
import { createAuditLog } from '@forgeone/observer';
import {
  assertActionAllowed,
  assertWorkloadsAllowed,
  bootAuditEvent,
  createBoot,
  createGolden,
  isActionAllowed,
  poisonDigest,
  replayEventLog,
  verifyQuote,
  type BootAuditEvent,
  type BootOptions,
  type GoldenDocument,
  type MeasurementInput,
} from '../../src/index.js';
import { DAY, codeOf, errorOf, makeInstall, type Install } from './helpers.js';

let inst: Install;

beforeEach(async () => {
  inst = await makeInstall();
});
afterEach(async () => {
  await inst.cleanup();
});

async function bootWith(extra: Partial<BootOptions> = {}, inputs?: MeasurementInput[]) {
  return createBoot({
    crypto: inst.crypto,
    trustRootPath: inst.trustRootPath,
    kernelKey: inst.keys.kernel,
    clock: inst.clock,
    inputs: inputs ?? (await inst.inputs()),
    ...extra,
  });
}

async function goldenNow(): Promise<GoldenDocument> {
  const m = await (await bootWith()).measure();
  expect(m.trustRoot.ok).toBe(true);
  expect(m.events.every((e) => !e.poisoned)).toBe(true);
  return createGolden(m.events, [inst.keys.boot[0]!]);
}

/** Every measured input and one file that, changed, changes it. */
async function targets(): Promise<{ name: string; path: string }[]> {
  const out = [{ name: 'trust-root', path: inst.trustRootPath }];
  for (const i of await inst.inputs()) {
    if (!('path' in i.source)) throw new Error('test inputs are paths');
    out.push({ name: i.name, path: i.name === 'policy' ? join(inst.policyDir, 'rules', 'default.policy') : i.source.path });
  }
  return out;
}

function flipMiddleByte(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  const i = Math.floor(copy.length / 2);
  copy[i] = copy[i]! ^ 0x01;
  return copy;
}

describe('measured boot of a real install tree', () => {
  it('an untouched install verifies, boots normally, and its quote replays', async () => {
    const golden = await goldenNow();
    const r = await (await bootWith({ golden })).boot();
    expect(r.trustRoot.ok).toBe(true);
    expect(r.golden).toMatchObject({ status: 'verified', role: 'boot', version: 1 });
    expect(r.verdict).toBe('verified');
    expect(r.mode).toBe('normal');
    expect(r.differing).toEqual([]);
    expect(r.unexpected).toEqual([]);
    expect(r.events[0]!.name).toBe('trust-root');
    expect(r.events.map((e) => e.name)).toContain('kernel:@forgeone/core/dist/boot/measure.js');
    expect(replayEventLog(r.events, inst.crypto)).toBe(r.quote.pcr);
    expect(r.quote.pcr).toBe(r.pcr);
    expect(verifyQuote(r.quote, r.events, inst.keys.kernel.toPublic(), inst.crypto).pcr).toBe(r.pcr);
    expect(() => assertWorkloadsAllowed(r)).not.toThrow();
  });

  it('the portable provider measures the same install to the same value', async () => {
    const golden = await goldenNow();
    const node = await (await bootWith({ golden })).boot();
    const noble = await (await bootWith({ golden, crypto: new NobleCryptoProvider() })).boot();
    expect(noble.pcr).toBe(node.pcr);
    expect(noble.verdict).toBe('verified');
  });

  it('changing one byte of each measured input in turn is compromised naming exactly that input', async () => {
    const golden = await goldenNow();
    const list = await targets();
    // trust root, 2 package.json, 4 dist files, config, policy, 2 packages.
    expect(list).toHaveLength(11);
    for (const t of list) {
      const original = new Uint8Array(await readFile(t.path));
      await writeFile(t.path, flipMiddleByte(original));
      try {
        const r = await (await bootWith({ golden })).boot();
        expect(r.verdict, t.name).toBe('compromised');
        expect(r.mode, t.name).toBe('recovery');
        expect(r.differing.map((d) => d.name), t.name).toEqual([t.name]);
        expect(r.unexpected, t.name).toEqual([]);
        if (t.name === 'trust-root') {
          expect(r.differing[0]!.reason).toBe('unverified');
          expect(r.trustRoot.ok).toBe(false);
          expect(r.golden.status).toBe('unchecked');
        } else {
          expect(r.differing[0]).toMatchObject({ reason: 'mismatch', expected: golden.signed.measurements[t.name] });
        }
        expect(codeOf(() => assertWorkloadsAllowed(r)), t.name).toBe('BOOT_RECOVERY_MODE');
      } finally {
        await writeFile(t.path, original);
      }
    }
    // Everything restored: verified again.
    expect((await (await bootWith({ golden })).boot()).verdict).toBe('verified');
  });

  it('deleting each measured input in turn is compromised naming exactly that input, and no event is skipped', async () => {
    const golden = await goldenNow();
    const baseline = (await (await bootWith({ golden })).boot()).events.length;
    const list = (await targets()).map((t) => (t.name === 'policy' ? { name: t.name, path: inst.policyDir } : t));
    for (const [i, t] of list.entries()) {
      const aside = join(inst.dir, `aside-${i}`);
      await rename(t.path, aside);
      try {
        const r = await (await bootWith({ golden })).boot();
        expect(r.verdict, t.name).toBe('compromised');
        expect(r.differing.map((d) => d.name), t.name).toEqual([t.name]);
        expect(r.unexpected, t.name).toEqual([]);
        const d = r.differing[0]!;
        if (t.name.startsWith('kernel:') && t.name.includes('/dist/')) {
          // kernelInputs no longer lists the file: its golden value has no measurement.
          expect(d, t.name).toMatchObject({ actual: 'missing', reason: 'missing' });
          expect(r.events.length).toBe(baseline - 1);
        } else {
          expect(d.actual, t.name).toBe('poison');
          expect(r.events.length, t.name).toBe(baseline);
          const ev = r.events.find((e) => e.name === t.name)!;
          expect(ev.poisoned).toBe(true);
          expect(ev.digest).toBe(poisonDigest(inst.crypto, t.name));
          expect(ev.error).toMatch(/ENOENT|NOT_FOUND|no such file/);
        }
      } finally {
        await rename(aside, t.path);
      }
    }
  });

  it('a file added to a kernel dist is unexpected and compromises the boot', async () => {
    const golden = await goldenNow();
    const extra = join(inst.kernelDirs['@forgeone/core']!, 'dist', 'evil.js');
    await writeFile(extra, 'globalThis.x = 1;\n');
    const r = await (await bootWith({ golden })).boot();
    expect(r.verdict).toBe('compromised');
    expect(r.differing).toEqual([]);
    expect(r.unexpected).toEqual(['kernel:@forgeone/core/dist/evil.js']);
    expect(r.mode).toBe('recovery');
  });

  it('a re-pointed symlink inside the policy bundle changes the policy measurement', async () => {
    const golden = await goldenNow();
    const link = join(inst.policyDir, 'current');
    await unlink(link);
    await symlink('bundle.json', link);
    const r = await (await bootWith({ golden })).boot();
    expect(r.differing.map((d) => d.name)).toEqual(['policy']);
  });

  it('without golden values the verdict is unknown and the kernel runs, unless golden values are required', async () => {
    const r = await (await bootWith()).boot();
    expect(r.verdict).toBe('unknown');
    expect(r.golden.status).toBe('absent');
    expect(r.mode).toBe('normal');
    expect(replayEventLog(r.events, inst.crypto)).toBe(r.quote.pcr);
    const strict = await (await bootWith({ requireGolden: true })).boot();
    expect(strict.verdict).toBe('unknown');
    expect(strict.mode).toBe('recovery');
  });

  it('an input that cannot be read is poisoned, named and compromises even without golden values', async () => {
    // A FIFO cannot be measured (reading it could block forever); it is poisoned, not skipped.
    const fifo = join(inst.policyDir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const inputs = await inst.inputs();
    const r = await (await bootWith({}, inputs)).boot();
    expect(r.events.length).toBe(inputs.length + 1);
    const ev = r.events.find((e) => e.name === 'policy')!;
    expect(ev.poisoned).toBe(true);
    expect(ev.error).toMatch(/pipe: not a regular file/);
    expect(r.verdict).toBe('compromised');
    expect(r.differing).toEqual([{ name: 'policy', expected: null, actual: 'poison', reason: 'poison', error: ev.error }]);
    expect(r.mode).toBe('recovery');
    expect(replayEventLog(r.events, inst.crypto)).toBe(r.pcr);
  });

  it.skipIf(process.getuid?.() === 0)('a file without read permission is poisoned', async () => {
    const golden = await goldenNow();
    await chmod(inst.configPath, 0o000);
    try {
      const r = await (await bootWith({ golden })).boot();
      expect(r.differing).toMatchObject([{ name: 'config', actual: 'poison' }]);
      expect(r.events.find((e) => e.name === 'config')!.error).toMatch(/EACCES/);
    } finally {
      await chmod(inst.configPath, 0o644);
    }
  });

  it('an expired trust root is compromised, names trust-root, and boots into recovery', async () => {
    const golden = await goldenNow();
    inst.clock.advance(366 * DAY);
    const r = await (await bootWith({ golden, allowDegraded: true })).boot();
    expect(r.trustRoot).toMatchObject({ ok: false, code: 'TRUST_ROOT_EXPIRED' });
    expect(r.verdict).toBe('compromised');
    expect(r.differing).toMatchObject([{ name: 'trust-root', reason: 'unverified' }]);
    // The expired root cannot vouch for the config that asks for degraded operation.
    expect(r.mode).toBe('recovery');
    expect(r.reasons.join('\n')).toMatch(/degraded operation refused: the trust root did not verify/);
    expect(r.trustRootDocument).toBeNull();
  });

  it('a trust root given in memory is measured as its canonical JSON and verified', async () => {
    const inputs = await inst.inputs();
    const inMemory = (trustRoot: unknown, golden?: GoldenDocument) =>
      createBoot({ crypto: inst.crypto, kernelKey: inst.keys.kernel, clock: inst.clock, inputs, trustRoot, ...(golden === undefined ? {} : { golden }) });
    const m = await inMemory(inst.trustRoot).measure();
    expect(m.trustRoot.ok).toBe(true);
    expect(m.trustRootDocument).toEqual(inst.trustRoot);
    const golden = createGolden(m.events, [inst.keys.boot[0]!]);
    expect((await inMemory(JSON.parse(JSON.stringify(inst.trustRoot)) as unknown, golden).boot()).verdict).toBe('verified');
    expect((await inMemory({ ...inst.trustRoot, signatures: [] }, golden).boot()).differing.map((d) => d.name)).toEqual(['trust-root']);
  });

  it('golden values not signed by the boot role compromise the boot and are named', async () => {
    const m = await (await bootWith()).measure();
    const forged = createGolden(m.events, [SigningKey.generate(inst.crypto)]);
    const r = await (await bootWith({ golden: forged })).boot();
    expect(r.golden).toMatchObject({ status: 'invalid', code: 'BOOT_GOLDEN_INVALID' });
    expect(r.verdict).toBe('compromised');
    expect(r.differing.map((d) => d.name)).toEqual(['golden']);
    expect(r.mode).toBe('recovery');
  });

  it('a configured golden file that is missing is compromised, not unknown', async () => {
    const r = await (await bootWith({ goldenPath: join(inst.dir, 'etc', 'golden.json') })).boot();
    expect(r.golden).toMatchObject({ status: 'invalid', code: 'NOT_FOUND' });
    expect(r.verdict).toBe('compromised');
    expect(r.differing).toMatchObject([{ name: 'golden', actual: 'missing', reason: 'unverified' }]);
  });

  it('golden values from a file verify', async () => {
    const golden = await goldenNow();
    const goldenPath = join(inst.dir, 'etc', 'golden.json');
    await writeFile(goldenPath, JSON.stringify(golden));
    const r = await (await bootWith({ goldenPath })).boot();
    expect(r.verdict).toBe('verified');
  });
});

describe('recovery and degraded modes', () => {
  it('compromised boots into recovery: workloads refused, diagnostics and recovery open', async () => {
    const golden = await goldenNow();
    await writeFile(inst.packagePaths['package:hello@0.1.0']!, 'not a package');
    const r = await (await bootWith({ golden })).boot();
    expect(r.mode).toBe('recovery');
    const e = errorOf(() => assertWorkloadsAllowed(r));
    expect(e.code).toBe('BOOT_RECOVERY_MODE');
    expect(e.details).toMatchObject({ mode: 'recovery', verdict: 'compromised', differing: ['package:hello@0.1.0'] });
    expect(e.message).toMatch(/package:hello@0\.1\.0/);
    expect(isActionAllowed(r, 'diagnostics')).toBe(true);
    expect(isActionAllowed(r, 'recovery')).toBe(true);
    expect(() => assertActionAllowed(r, 'recovery')).not.toThrow();
    expect(isActionAllowed(r, 'workload')).toBe(false);
  });

  it('with allowDegraded from an intact config, a compromised boot runs degraded', async () => {
    const golden = await goldenNow();
    await writeFile(inst.packagePaths['package:world@0.2.0']!, 'tampered');
    const r = await (await bootWith({ golden, allowDegraded: true })).boot();
    expect(r.verdict).toBe('compromised');
    expect(r.mode).toBe('degraded');
    expect(() => assertWorkloadsAllowed(r)).not.toThrow();
  });

  it('allowDegraded is not honoured when the config itself is one of the changed inputs', async () => {
    const golden = await goldenNow();
    await writeFile(inst.configPath, JSON.stringify({ allowDegraded: true, listen: '0.0.0.0:7070' }));
    const r = await (await bootWith({ golden, allowDegraded: true })).boot();
    expect(r.differing.map((d) => d.name)).toEqual(['config']);
    expect(r.mode).toBe('recovery');
    expect(r.reasons.join('\n')).toMatch(/degraded operation refused: the config input "config" is itself one of the differing inputs/);
  });
});

describe('audit', () => {
  it('the audit sink receives the boot result and its quote', async () => {
    const golden = await goldenNow();
    const seen: BootAuditEvent[] = [];
    const r = await (await bootWith({ golden, audit: async (e) => void seen.push(e) })).boot();
    expect(r.audited).toBe(true);
    expect(seen).toHaveLength(1);
    const ev = seen[0]!;
    expect(ev).toMatchObject({ kind: 'boot', subject: 'kernel', actor: 'kernel', time: r.time });
    expect(ev.details).toMatchObject({ verdict: 'verified', mode: 'normal', pcr: r.pcr, eventCount: r.events.length });
    expect(ev.details.quote).toEqual(r.quote);
    expect(ev.details.events).toEqual(JSON.parse(JSON.stringify(r.events)));
  });

  it('the boot event goes into a real signed audit log and verifies there', async () => {
    const store = createMemoryStore();
    const log = await createAuditLog({ store, crypto: inst.crypto, signingKey: inst.keys.kernel, clock: inst.clock });
    const golden = await goldenNow();
    await writeFile(inst.configPath, '{}');
    const r = await (await bootWith({ golden, audit: (e) => log.append(e) })).boot();
    expect(r.audited).toBe(true);
    const [entry] = await log.query({ kind: 'boot' });
    expect(entry?.details).toMatchObject({ verdict: 'compromised', mode: 'recovery', differing: [{ name: 'config', reason: 'mismatch' }] });
    expect((await log.verify()).ok).toBe(true);
    // The quote stored in the audit log still verifies against the stored event log.
    const stored = entry!.details as { quote: unknown; events: never };
    expect(verifyQuote(stored.quote, stored.events, inst.keys.kernel.publicKey, inst.crypto).pcr).toBe(r.pcr);
  });

  it('a boot that cannot be audited runs in recovery', async () => {
    const golden = await goldenNow();
    const r = await (
      await bootWith({
        golden,
        audit: async () => {
          throw new Error('disk full');
        },
      })
    ).boot();
    expect(r.verdict).toBe('verified');
    expect(r.audited).toBe(false);
    expect(r.mode).toBe('recovery');
    expect(r.reasons.join('\n')).toMatch(/could not be audited.*disk full/);
  });

  it('an event log too large for one audit event is left out, and the quote still binds it', async () => {
    const inputs: MeasurementInput[] = Array.from({ length: 600 }, (_, i) => ({ name: `package:p${i}@1.0.0`, kind: 'package', source: { bytes: new Uint8Array([i & 0xff]) } }));
    const r = await (await bootWith({}, inputs)).boot();
    const ev = bootAuditEvent(r);
    expect(ev.details.events).toBeUndefined();
    expect(ev.details.eventsOmitted).toBe(601);
    expect((ev.details.quote as { eventsDigest: string }).eventsDigest).toBe(r.quote.eventsDigest);
  });
});

describe('options', () => {
  it('refuses unusable options naming the field', async () => {
    const inputs = await inst.inputs();
    const base = { crypto: inst.crypto, kernelKey: inst.keys.kernel, inputs };
    expect(errorOf(() => createBoot(base as BootOptions)).details).toMatchObject({ field: 'trustRootPath' });
    expect(codeOf(() => createBoot({ ...base, trustRootPath: 'a', trustRoot: {} }))).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => createBoot({ ...base, trustRootPath: 'a', inputs: [{ name: 'trust-root', kind: 'other', source: { bytes: new Uint8Array() } }] })).details).toMatchObject({
      field: 'inputs[0].name',
    });
    expect(errorOf(() => createBoot({ ...base, trustRootPath: 'a', kernelKey: undefined as never })).details).toMatchObject({ field: 'kernelKey' });
  });

  it('a duplicated input name is refused', async () => {
    const inputs: MeasurementInput[] = [
      { name: 'config', kind: 'config', source: { path: inst.configPath } },
      { name: 'config', kind: 'config', source: { path: inst.configPath } },
    ];
    const inputsFn = async () => bootWith({}, inputs);
    await expect(inputsFn()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'inputs[1].name' } });
  });

  it('a missing trust root file poisons trust-root, never skips it', async () => {
    await rm(inst.trustRootPath);
    const r = await (await bootWith()).boot();
    expect(r.events[0]).toMatchObject({ name: 'trust-root', poisoned: true, digest: poisonDigest(inst.crypto, 'trust-root') });
    expect(r.trustRoot).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    expect(r.differing.map((d) => d.name)).toEqual(['trust-root']);
    expect(r.mode).toBe('recovery');
  });
});
