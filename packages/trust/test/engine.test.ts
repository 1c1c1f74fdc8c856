import { describe, expect, it } from 'vitest';
import { createManualClock } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, createTrustRoot, signTrustRoot } from '@forgeone/crypto';
import { createPolicyEngine, isAllowed, isFlagged, parsePolicy, shouldQuarantine, signPolicyBundle, type Policy } from '../src/index.js';
import { NOW, POLICY_YAML, alice, ctx, mallory, table } from './fixtures.js';

const provider = new NodeCryptoProvider();
const rootKey = SigningKey.generate(provider);
const policyKeys = [SigningKey.generate(provider), SigningKey.generate(provider), SigningKey.generate(provider)];
const stranger = SigningKey.generate(provider);
const trustRoot = signTrustRoot(
  provider,
  createTrustRoot(provider, {
    expires: '2030-01-01T00:00:00Z',
    roles: {
      root: { keys: [rootKey.toPublic()], threshold: 1 },
      packages: { keys: [rootKey.toPublic()], threshold: 1 },
      policy: { keys: policyKeys.map((k) => k.toPublic()), threshold: 2 },
    },
  }),
  rootKey,
);

const v1 = parsePolicy(POLICY_YAML).policy;
function withVersion(p: Policy, version: number, stdout: 'allow' | 'deny'): Policy {
  const copy = structuredClone(p) as Policy & { version: number };
  copy.version = version;
  (copy.nodes.base!.rules[0] as { action: string }).action = stdout;
  return copy;
}
function signed(p: unknown, keys: SigningKey[]) {
  let out = signPolicyBundle({ policy: p }, keys[0]!);
  for (const k of keys.slice(1)) out = signPolicyBundle(out, k);
  return out;
}

describe('policy bundles', () => {
  it('installs only with a threshold of the policy role and a higher version', () => {
    const engine = createPolicyEngine({ provider, trustRoot, initial: v1 });
    const v2 = withVersion(v1, 2, 'deny');
    const one = engine.install(signed(v2, [policyKeys[0]!]));
    expect(!one.ok && one.error.code).toBe('POLICY_BUNDLE_SIGNATURE');
    const foreign = engine.install(signed(v2, [policyKeys[0]!, stranger]));
    expect(!foreign.ok && foreign.error.code).toBe('POLICY_BUNDLE_SIGNATURE');
    const dup = signed(v2, [policyKeys[0]!]);
    const twice = engine.install({ policy: dup.policy, signatures: [dup.signatures[0]!, dup.signatures[0]!] });
    expect(!twice.ok && twice.error.code).toBe('POLICY_BUNDLE_SIGNATURE');
    const tampered = signed(v2, policyKeys.slice(0, 2));
    const edited = engine.install({ ...tampered, policy: { ...(tampered.policy as object), defaultAction: 'allow' } });
    expect(!edited.ok && edited.error.code).toBe('POLICY_BUNDLE_SIGNATURE');
    const same = engine.install(signed(withVersion(v1, 1, 'deny'), policyKeys.slice(0, 2)));
    expect(!same.ok && same.error.code).toBe('POLICY_VERSION');
    const good = engine.install(signed(v2, policyKeys.slice(0, 2)), 'ops:alice');
    expect(good.ok && good.value.version).toBe(2);
    const malformed = engine.install(signed({ ...v2, version: 3, defaultAction: 'maybe' }, policyKeys.slice(0, 2)));
    expect(!malformed.ok && malformed.error.code).toBe('POLICY_INVALID');
    expect(engine.version).toEqual({ version: 2, revision: 1 });
  });

  it('swaps atomically under interleaved decisions: every decision is entirely v(n) or v(n+1), never a mix', async () => {
    const engine = createPolicyEngine({ provider, trustRoot, initial: withVersion(v1, 1, 'allow') });
    const t = table();
    const live = engine.attach({ identity: alice, syscalls: t });
    const stdout = t.id('wasi:cli/stdout');
    const seen: { version: number; verdict: string }[] = [];
    let stop = false;
    const decider = (async () => {
      while (!stop) {
        for (let i = 0; i < 200; i++) {
          const program = live.program;
          const d = program.decide(stdout, ctx());
          seen.push({ version: program.policy.version, verdict: d.verdict });
          // Through the live handle as the gate calls it:
          const v = live.decide(stdout, ctx());
          expect(['allow', 'deny']).toContain(v.verdict);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let v = 2; v <= 40; v++) {
      await new Promise((r) => setImmediate(r));
      const r = engine.install(signed(withVersion(v1, v, v % 2 === 0 ? 'deny' : 'allow'), policyKeys.slice(1, 3)));
      expect(r.ok).toBe(true);
    }
    stop = true;
    await decider;
    expect(new Set(seen.map((s) => s.version)).size).toBeGreaterThan(5);
    for (const s of seen) expect(s.verdict).toBe(s.version % 2 === 0 ? 'deny' : 'allow');
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.version).toBeGreaterThanOrEqual(seen[i - 1]!.version);
  });
});

describe('tightening', () => {
  it('adds a stricter step for identity × syscall, is explainable, never loosens, and reverts', () => {
    const clock = createManualClock(NOW);
    const engine = createPolicyEngine({ provider, trustRoot, initial: v1, clock });
    const changes: string[] = [];
    engine.onChange((c) => changes.push(`${c.kind}:${c.version}.${c.revision}:${c.actor}`));
    const t = table();
    const a = engine.attach({ identity: alice, syscalls: t });
    const m = engine.attach({ identity: mallory, syscalls: t });
    const stdout = t.id('wasi:cli/stdout');
    const stdin = t.id('wasi:cli/stdin');
    expect(m.decide(stdout, ctx()).verdict).toBe('allow');

    const audit = engine.tighten({ syscalls: ['wasi:cli/stdout'], identity: { subjects: ['plugin:rogue'] }, action: 'audit', reason: 'hot cell', actor: 'diagnostics' });
    expect(m.decide(stdout, ctx())).toMatchObject({ verdict: 'audit', rule: `tightening/${audit.id}` });
    expect(a.decide(stdout, ctx()).verdict).toBe('allow');
    // An audit tightening on a syscall the policy denies does not let it through.
    engine.tighten({ syscalls: ['wasi:cli/stdin'], action: 'audit', reason: 'watch', actor: 'diagnostics' });
    expect(m.decide(stdin, ctx()).verdict).toBe('deny');

    const deny = engine.tighten({ syscalls: ['wasi:cli/*'], identity: { subjects: ['plugin:rogue'] }, action: 'deny', reason: 'still hot', actor: 'diagnostics' });
    expect(m.decide(stdout, ctx())).toMatchObject({ verdict: 'deny', rule: `tightening/${deny.id}` });
    expect(m.explain(stdout, ctx()).text).toMatch(/tightening/);
    engine.revert(deny.id, 'ops:bob');
    expect(m.decide(stdout, ctx()).verdict).toBe('audit');
    expect(() => engine.revert('nope', 'x')).toThrow(/no tightening/);
    expect(changes).toEqual(['tightened:1.1:diagnostics', 'tightened:1.2:diagnostics', 'tightened:1.3:diagnostics', 'reverted:1.4:ops:bob']);
  });

  it('keeps rate-limit buckets across a swap', () => {
    const engine = createPolicyEngine({ provider, trustRoot, initial: v1 });
    const t = table();
    const live = engine.attach({ identity: alice, syscalls: t });
    const kv = t.id('forgeone:kv/get');
    expect(live.decide(kv, ctx()).verdict).toBe('allow');
    expect(live.decide(kv, ctx()).verdict).toBe('allow');
    engine.tighten({ syscalls: ['wasi:cli/env'], action: 'deny', reason: 'x', actor: 'y' });
    expect(live.decide(kv, ctx()).verdict).toBe('deny');
  });
});

describe('modes', () => {
  it('enforce refuses, audit and permissive let everything through but keep the verdict', () => {
    const t = table();
    const engine = createPolicyEngine({ provider, trustRoot, initial: v1 });
    const m = engine.attach({ identity: mallory, syscalls: t }, 'enforce');
    const q = m.decide(t.id('wasi:sockets/tcp-connect'), ctx());
    const d = m.decide(t.id('wasi:cli/stdin'), ctx());
    const ok = m.decide(t.id('wasi:cli/stdout'), ctx());
    expect([isAllowed(q, 'enforce'), shouldQuarantine(q, 'enforce'), isFlagged(q, 'enforce')]).toEqual([false, true, true]);
    expect([isAllowed(d, 'enforce'), shouldQuarantine(d, 'enforce')]).toEqual([false, false]);
    expect([isAllowed(q, 'audit'), shouldQuarantine(q, 'audit'), isFlagged(q, 'audit')]).toEqual([true, false, true]);
    expect([isAllowed(d, 'permissive'), isFlagged(d, 'permissive')]).toEqual([true, true]);
    expect([isAllowed(ok, 'enforce'), isFlagged(ok, 'enforce')]).toEqual([true, false]);
    m.setMode('audit');
    expect(m.mode).toBe('audit');
  });
});
