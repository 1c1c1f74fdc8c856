import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForgeError, createManualClock, systemClock } from '@forgeone/common';
import { NobleCryptoProvider, NodeCryptoProvider, SigningKey, createTrustRoot, signTrustRoot } from '@forgeone/crypto';
import type { CryptoProvider } from '@forgeone/crypto';
import { createAuditLog } from '@forgeone/observer';
import { createFileStore, createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import {
  SelfTestFailure,
  builtinSelfTests,
  clockSelfTests,
  createSelfTestRegistry,
  cryptoSelfTests,
  policySelfTests,
  sandboxSelfTests,
  storeSelfTests,
  trustRootSelfTests,
} from '../src/index.js';
import type { SelfTest, SelfTestReport } from '../src/index.js';

const node = new NodeCryptoProvider();
const noble = new NobleCryptoProvider();
const pass = (name: string, dependsOn: string[] = [], log?: string[]): SelfTest => ({
  name,
  description: `test ${name}`,
  dependsOn,
  run() {
    log?.push(name);
  },
});
const statuses = (r: SelfTestReport) => Object.fromEntries(r.results.map((x) => [x.name, x.status]));

describe('self-test registry', () => {
  it('runs in dependency order, whatever the registration order', async () => {
    const log: string[] = [];
    const reg = createSelfTestRegistry();
    reg.registerAll([pass('c', ['b', 'a'], log), pass('a', [], log), pass('b', ['a'], log), pass('d', [], log)]);
    const report = await reg.runAll();
    expect(log).toEqual(['a', 'b', 'c', 'd']);
    expect(report.results.map((r) => r.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(report.counts).toEqual({ passed: 4, failed: 0, skipped: 0, error: 0 });
    expect(report.degraded).toBe(false);
    expect(reg.last).toBe(report);
    expect(reg.names).toEqual(['c', 'a', 'b', 'd']);
  });

  it('refuses cycles (naming them), duplicates and malformed tests', () => {
    const reg = createSelfTestRegistry();
    reg.register(pass('a', ['c']));
    reg.register(pass('b', ['a']));
    expect(() => reg.register(pass('c', ['b']))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'dependsOn', cycle: ['c', 'b', 'a', 'c'] } }));
    expect(() => reg.register(pass('x', ['x']))).toThrow(/depends on itself/);
    expect(() => reg.register(pass('a'))).toThrow(expect.objectContaining({ code: 'ALREADY_EXISTS' }));
    expect(() => reg.register({ ...pass('Bad Name') })).toThrow(expect.objectContaining({ details: { field: 'name' } }));
    expect(() => reg.register({ ...pass('ok'), description: '' })).toThrow(expect.objectContaining({ details: { field: 'description' } }));
    expect(() => reg.register({ ...pass('ok'), run: undefined as never })).toThrow(expect.objectContaining({ details: { field: 'run' } }));
    expect(() => reg.register({ ...pass('ok'), timeoutMs: 0 })).toThrow(expect.objectContaining({ details: { field: 'timeoutMs' } }));
  });

  it('tells failed from error, skips dependents, reports unknown dependencies, and times out', async () => {
    let aborted = false;
    const reg = createSelfTestRegistry({ timeoutMs: 50 });
    reg.registerAll([
      { name: 'fails', description: 'check fails', run: (ctx) => ctx.check(1 + 1 === 3, 'arithmetic is broken') },
      { name: 'throws', description: 'throws a ForgeError', run: () => Promise.reject(new ForgeError('IO_ERROR', 'disk gone')) },
      { name: 'failure-class', description: 'throws SelfTestFailure', run: () => Promise.reject(new SelfTestFailure('no')) },
      pass('after-fail', ['fails']),
      pass('after-after', ['after-fail']),
      pass('orphan', ['never-registered']),
      { name: 'skips', description: 'skips itself', run: () => ({ status: 'skipped', message: 'nothing to test here' }) },
      {
        name: 'hangs',
        description: 'never finishes',
        timeoutMs: 30,
        run: (ctx) =>
          new Promise<void>((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              aborted = true;
              resolve();
            });
          }),
      },
    ]);
    const report = await reg.runAll();
    expect(statuses(report)).toEqual({
      fails: 'failed',
      throws: 'error',
      'failure-class': 'failed',
      'after-fail': 'skipped',
      'after-after': 'skipped',
      orphan: 'error',
      skips: 'skipped',
      hangs: 'error',
    });
    const by = Object.fromEntries(report.results.map((r) => [r.name, r]));
    expect(by.fails).toMatchObject({ message: 'arithmetic is broken', code: null });
    expect(by.throws).toMatchObject({ message: 'disk gone', code: 'IO_ERROR' });
    expect(by['after-fail']!.message).toBe('skipped: fails failed');
    expect(by['after-after']!.message).toBe('skipped: after-fail skipped');
    expect(by.orphan).toMatchObject({ message: 'depends on never-registered, which is not registered', code: 'NOT_FOUND' });
    expect(by.skips!.message).toBe('nothing to test here');
    expect(by.hangs).toMatchObject({ message: 'did not finish within 30 ms', code: 'SELFTEST_FAILED' });
    expect(aborted).toBe(true);
    expect(report.degraded).toBe(true);
    expect(reg.degraded).toBe(true);
    expect(report.counts).toEqual({ passed: 0, failed: 2, skipped: 3, error: 3 });
  });

  it('measures durations with the injected clock and runs only what is asked (with its dependencies)', async () => {
    const clock = createManualClock(Date.UTC(2026, 5, 1));
    const reg = createSelfTestRegistry({ clock });
    reg.registerAll([
      { name: 'slow', description: 'takes 250 ms of the manual clock', run: () => clock.advance(250) },
      { name: 'fast', description: 'takes nothing', dependsOn: ['slow'], run: () => undefined },
      pass('other'),
    ]);
    const report = await reg.runAll({ only: ['fast'] });
    expect(report.results.map((r) => [r.name, r.durationMs])).toEqual([
      ['slow', 250],
      ['fast', 0],
    ]);
    expect(report.startedAt).toBe(Date.UTC(2026, 5, 1));
    expect(report.durationMs).toBe(250);
    await expect(reg.runAll({ only: ['missing'] })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('sends each run to the audit log as one signed selftest event, and calls onDegraded', async () => {
    const store = createMemoryStore();
    const audit = await createAuditLog({ store, crypto: node, signingKey: SigningKey.generate(node) });
    const degraded: SelfTestReport[] = [];
    const reg = createSelfTestRegistry({ audit: (e) => audit.append(e), onDegraded: (r) => degraded.push(r) });
    reg.registerAll([pass('ok'), { name: 'bad', description: 'fails', run: (ctx) => ctx.check(false, 'nope') }]);
    const report = await reg.runAll();
    expect(report.audited).toBe(true);
    const [event] = await audit.query({ kind: 'selftest' });
    expect(event).toMatchObject({ subject: 'kernel', actor: 'diagnostics:selftest', details: { degraded: true, passed: 1, failed: 1, results: [{ name: 'ok', status: 'passed' }, { name: 'bad', status: 'failed', message: 'nope' }] } });
    expect((await audit.verify()).ok).toBe(true);
    expect(degraded).toEqual([report]);
    // A failing sink does not fail the run; the report says it was not audited.
    const broken = createSelfTestRegistry({ audit: () => Promise.reject(new Error('log full')) });
    broken.register(pass('ok'));
    expect((await broken.runAll()).audited).toBe(false);
  });
});

describe('built-in self-tests', () => {
  it('crypto known answers pass on both providers and the two agree', async () => {
    const reg = createSelfTestRegistry();
    reg.registerAll(builtinSelfTests({ providers: [node, noble], policy: false }));
    const report = await reg.runAll();
    expect(statuses(report)).toEqual({
      'crypto.node.sha3-256': 'passed',
      'crypto.node.ed25519': 'passed',
      'crypto.node.random': 'passed',
      'crypto.noble.sha3-256': 'passed',
      'crypto.noble.ed25519': 'passed',
      'crypto.noble.random': 'passed',
      'crypto.agreement.node.noble': 'passed',
    });
  });

  it('a broken provider fails its known answers, and what depends on them is skipped', async () => {
    const broken: CryptoProvider = Object.assign(Object.create(node) as CryptoProvider, {
      name: 'Broken Provider!',
      sha3_256: (d: Uint8Array) => node.sha3_256(d).map((b, i) => (i === 0 ? b ^ 1 : b)),
      sign: (sk: Uint8Array, m: Uint8Array) => node.sign(sk, new Uint8Array([...m, 0])),
    });
    const reg = createSelfTestRegistry();
    reg.registerAll(builtinSelfTests({ providers: [node, broken], policy: false }));
    const report = await reg.runAll();
    expect(statuses(report)).toMatchObject({
      'crypto.broken-provider.sha3-256': 'failed',
      'crypto.broken-provider.ed25519': 'failed',
      'crypto.broken-provider.random': 'skipped',
      'crypto.agreement.node.broken-provider': 'skipped',
      'crypto.node.ed25519': 'passed',
    });
    expect(report.results.find((r) => r.name === 'crypto.broken-provider.sha3-256')!.message).toMatch(/^SHA3-256\(""\) = [0-9a-f]{64}, expected a7ffc6f8/);
    expect(report.results.find((r) => r.name === 'crypto.broken-provider.ed25519')!.message).toBe('RFC 8032 7.1 TEST 1: wrong signature');
    expect(report.degraded).toBe(true);
  });

  it('policy canaries and tightening checks pass', async () => {
    const reg = createSelfTestRegistry();
    reg.registerAll(policySelfTests());
    expect(statuses(await reg.runAll())).toEqual({ 'policy.compile': 'passed', 'policy.canaries': 'passed', 'policy.tightening': 'passed' });
  });

  it('store: write-read on a live store; durability across close and reopen of a file store', async () => {
    const live = createSelfTestRegistry();
    live.registerAll(storeSelfTests({ store: createMemoryStore() }, node));
    const r1 = await live.runAll();
    expect(statuses(r1)).toEqual({ 'store.write-read': 'passed', 'store.durability': 'skipped' });
    expect(r1.results[1]!.message).toBe('no way to reopen the store was given');
    const dir = await mkdtemp(join(tmpdir(), 'forgeone-selftest-'));
    try {
      const reg = createSelfTestRegistry();
      reg.registerAll(storeSelfTests({ open: () => createFileStore({ dir }) }));
      expect(statuses(await reg.runAll())).toEqual({ 'store.write-read': 'passed', 'store.durability': 'passed' });
      // A store that forgets what it was told on reopen fails durability.
      const forgetful = createSelfTestRegistry();
      forgetful.registerAll(storeSelfTests({ open: async () => createMemoryStore() }));
      const r = await forgetful.runAll();
      expect(statuses(r)['store.durability']).toBe('failed');
      expect(r.results[1]!.message).toMatch(/was lost across close and reopen/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(() => storeSelfTests({})).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('clock: plausible wall time, monotonic never back, agreement with a reference', async () => {
    const run = async (tests: SelfTest[]) => {
      const reg = createSelfTestRegistry();
      reg.registerAll(tests);
      return (await reg.runAll()).results[0]!;
    };
    expect((await run(clockSelfTests(systemClock))).status).toBe('passed');
    expect((await run(clockSelfTests(createManualClock(Date.UTC(2026, 0, 1)), { reference: createManualClock(Date.UTC(2026, 0, 1, 0, 1)) }))).status).toBe('passed');
    const skewed = await run(clockSelfTests(createManualClock(Date.UTC(2026, 0, 1)), { reference: systemClock, maxSkewMs: 1000, earliest: 0 }));
    expect(skewed.status === 'failed' && skewed.message).toMatch(/ms off the reference/);
    const past = await run(clockSelfTests(createManualClock(Date.UTC(1999, 0, 1))));
    expect(past).toMatchObject({ status: 'failed', message: expect.stringContaining('1999-01-01T00:00:00.000Z, outside') });
    let mono = 10n;
    const backwards = { now: () => Date.UTC(2026, 0, 1), monotonicNs: () => (mono -= 1n) };
    expect((await run(clockSelfTests(backwards))).message).toMatch(/the monotonic clock went back/);
  });

  it('trust root: valid, expired, missing role, tampered', async () => {
    const root = SigningKey.generate(node);
    const make = (expires: string, extra: Record<string, { keys: ReturnType<SigningKey['toPublic']>[]; threshold: number }> = {}) =>
      signTrustRoot(node, createTrustRoot(node, { expires, roles: { root: { keys: [root.toPublic()], threshold: 1 }, packages: { keys: [root.toPublic()], threshold: 1 }, ...extra } }), root);
    const clock = createManualClock(Date.UTC(2026, 0, 1));
    const run = async (doc: unknown, requiredRoles: string[] = []) => {
      const reg = createSelfTestRegistry();
      reg.registerAll(trustRootSelfTests(doc, noble, { clock, requiredRoles }));
      return (await reg.runAll()).results[0]!;
    };
    const good = make('2026-03-02T00:00:00Z', { kernel: { keys: [root.toPublic()], threshold: 1 } });
    expect(await run(good, ['kernel'])).toMatchObject({ status: 'passed', message: 'v1, signed by 1 root key(s), expires 2026-03-02T00:00:00Z (in 60 day(s))' });
    expect(await run(JSON.stringify(good))).toMatchObject({ status: 'passed' });
    expect(await run(make('2025-12-31T00:00:00Z'))).toMatchObject({ status: 'failed', message: expect.stringMatching(/^TRUST_ROOT_EXPIRED: /) });
    expect(await run(make('2027-01-01T00:00:00Z'), ['policy'])).toMatchObject({ status: 'failed', message: 'the trust root has no policy role' });
    const tampered = { ...good, signed: { ...good.signed, version: 2 } };
    expect(await run(tampered)).toMatchObject({ status: 'failed', message: expect.stringMatching(/^TRUST_ROOT_SIGNATURE: /) });
    expect(await run('{')).toMatchObject({ status: 'failed', message: expect.stringMatching(/^TRUST_ROOT_INVALID: /) });
  });

  it('sandbox: the injected canary decides', async () => {
    const reg = createSelfTestRegistry();
    reg.registerAll([
      ...sandboxSelfTests(async () => undefined),
      ...sandboxSelfTests(() => Promise.reject(new ForgeError('SANDBOX_TIMEOUT', 'the spinning module ran to the end')), { name: 'sandbox.spin' }),
    ]);
    const report = await reg.runAll();
    expect(statuses(report)).toEqual({ 'sandbox.canaries': 'passed', 'sandbox.spin': 'failed' });
    expect(report.results[1]!.message).toBe('containment did not hold: SANDBOX_TIMEOUT: the spinning module ran to the end');
    expect(() => sandboxSelfTests(undefined as never)).toThrow(/canary/);
  });

  it('every built-in test names itself and describes what it checks', () => {
    const all = builtinSelfTests({ providers: [node, noble], store: { store: createMemoryStore() }, clock: systemClock, trustRoot: {}, sandboxCanary: async () => undefined });
    expect(all.map((t) => t.name)).toEqual([
      'crypto.node.sha3-256',
      'crypto.node.ed25519',
      'crypto.node.random',
      'crypto.noble.sha3-256',
      'crypto.noble.ed25519',
      'crypto.noble.random',
      'crypto.agreement.node.noble',
      'policy.compile',
      'policy.canaries',
      'policy.tightening',
      'store.write-read',
      'store.durability',
      'clock.sanity',
      'trust-root.valid',
      'sandbox.canaries',
    ]);
    for (const t of all) expect(t.description.length).toBeGreaterThan(20);
    expect(cryptoSelfTests(node)).toHaveLength(3);
    expect(() => builtinSelfTests({ trustRoot: {} })).toThrow(/needs a crypto provider/);
  });
});
