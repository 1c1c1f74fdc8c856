import { KNOWN_SYSCALLS, SyscallTable, createIdentity, createManualClock, trustVector } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, createTrustRoot, signTrustRoot } from '@forgeone/crypto';
import { createAuditLog } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { createPolicyEngine, parsePolicy } from '@forgeone/trust';
import type { PolicyEngine } from '@forgeone/trust';
import { describe, expect, it } from 'vitest';
import { TIGHTENING_LADDER, applyTightening, buildHeatmap, currentRung, planTightening, revertTightening } from '../src/index.js';
import type { DiagnosticsAuditEvent, Heatmap } from '../src/index.js';
import { attackRun, normalRun } from './synth.js';

const provider = new NodeCryptoProvider();
const root = SigningKey.generate(provider);
const trustRoot = signTrustRoot(
  provider,
  createTrustRoot(provider, { expires: '2099-01-01T00:00:00Z', roles: { root: { keys: [root.toPublic()], threshold: 1 }, packages: { keys: [root.toPublic()], threshold: 1 } } }),
  root,
);
const POLICY = parsePolicy({
  apiVersion: 'forgeone.policy/v1',
  name: 'plugins',
  version: 3,
  defaultAction: 'deny',
  root: 'base',
  nodes: {
    base: {
      rules: [
        { id: 'fetch', action: 'allow', syscalls: ['forgeone:http/fetch'], args: { host: { in: ['example.com', 'www.example.com', 'api.example.com', 'docs.example.com'] } } },
        { id: 'rest', action: 'allow', syscalls: ['forgeone:log/write', 'wasi:clocks/*', 'wasi:random/*'] },
      ],
    },
  },
}).policy;

function engine(): PolicyEngine {
  return createPolicyEngine({ provider, trustRoot, initial: POLICY, clock: createManualClock() });
}

/** A heatmap where the rogue fetcher's fetches are hot and the honest fetcher's are not. */
function heat(seed: number): Heatmap {
  const records = attackRun('fetcher', 'net', seed);
  const metadata = records.find((r) => r.args.host === '169.254.169.254')!;
  return buildHeatmap([
    { subject: 'plugin:fetcher', containerId: `ctr-ok-${seed}`, records: normalRun('fetcher', 3) },
    { subject: 'plugin:rogue', containerId: `ctr-rogue-${seed}`, records, flags: [{ name: 'metadata-address', severity: 'high', seq: metadata.seq }] },
  ]);
}

describe('tightening', () => {
  it('climbs audit → (delay skipped) → deny → quarantine, one rung per hot run, audited and enforced', async () => {
    const e = engine();
    const store = createMemoryStore();
    const clock = createManualClock(Date.UTC(2026, 3, 1));
    const audit = await createAuditLog({ store, crypto: provider, signingKey: SigningKey.generate(provider), clock });
    const events: DiagnosticsAuditEvent[] = [];
    const sink = async (ev: DiagnosticsAuditEvent) => {
      events.push(ev);
      return audit.append(ev);
    };
    const syscalls = new SyscallTable(KNOWN_SYSCALLS);
    const rogue = e.attach({ identity: createIdentity({ subject: 'plugin:rogue', trust: trustVector('Verified') }), syscalls });
    const honest = e.attach({ identity: createIdentity({ subject: 'plugin:fetcher', trust: trustVector('Verified') }), syscalls });
    const FETCH = syscalls.id('forgeone:http/fetch');
    const ctx = { now: clock.now(), calls: 0, rate: 0, denied: 0, anomaly: 0, host: 'example.com', port: 443 };
    expect(rogue.decide(FETCH, ctx).verdict).toBe('allow');

    const seen: string[] = [];
    for (let run = 0; run < 4; run++) {
      const plan = planTightening(heat(run), { current: e.tightenings });
      if (run === 3) {
        expect(plan.steps).toEqual([]);
        expect(plan.notes).toEqual([expect.stringContaining('plugin:rogue × forgeone:http/fetch: heat 1.00, already at quarantine: the top of the ladder')]);
        break;
      }
      expect(plan.steps).toHaveLength(1);
      const step = plan.steps[0]!;
      expect(step).toMatchObject({ subject: 'plugin:rogue', syscall: 'forgeone:http/fetch', score: 1 });
      const applied = await applyTightening(e, step, { audit: sink, clock });
      seen.push(`${step.from ?? 'none'}→${step.action}${step.skipped.length > 0 ? ` (skipped ${step.skipped.map((s) => s.rung).join(',')})` : ''}`);
      expect(applied.version).toEqual({ version: 3, revision: run + 1 });
      expect(currentRung(e.tightenings, 'plugin:rogue', 'forgeone:http/fetch')).toBe(step.action);
    }
    expect(seen).toEqual(['none→audit', 'audit→deny (skipped delay)', 'deny→quarantine']);
    // Enforced on the rogue identity only, and explainable: the deciding rule is the tightening, its reason ours.
    const d = rogue.decide(FETCH, ctx);
    expect(d.verdict).toBe('quarantine');
    expect(d.rule).toBe(`tightening/${e.tightenings[2]!.id}`);
    expect(d.reason).toContain('diagnostics: plugin:rogue × forgeone:http/fetch heat 1.00 ≥ 0.5');
    expect(d.reason).toContain('step deny → quarantine');
    expect(honest.decide(FETCH, ctx).verdict).toBe('allow');
    // Every step is in the audit log, signed.
    const logged = await audit.query({ kind: 'policy.changed' });
    expect(logged.map((x) => x.details.action)).toEqual(['audit', 'deny', 'quarantine']);
    expect(logged[1]!.details).toMatchObject({ change: 'tightened', from: 'audit', skipped: ['delay'], identity: 'plugin:rogue', syscall: 'forgeone:http/fetch', scoreMilli: 1000, revision: 2 });
    expect((await audit.verify()).ok).toBe(true);

    // Revert the top step: the cell goes one rung down, and that is audited too.
    const top = e.tightenings[2]!;
    const v = await revertTightening(e, top.id, { audit: sink, clock, reason: 'false alarm' });
    expect(v).toEqual({ version: 3, revision: 4 });
    expect(currentRung(e.tightenings, 'plugin:rogue', 'forgeone:http/fetch')).toBe('deny');
    expect(rogue.decide(FETCH, ctx).verdict).toBe('deny');
    expect(events.at(-1)).toMatchObject({ kind: 'policy.changed', subject: 'plugins', actor: 'diagnostics:tightening', details: { change: 'reverted', tighteningId: top.id, action: 'quarantine', reason: 'false alarm' } });
    // The next hot run climbs again from deny.
    expect(planTightening(heat(9), { current: e.tightenings }).steps[0]!.action).toBe('quarantine');
    await expect(revertTightening(e, 'nope', {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('leaves cold cells alone, notes flags that name no call, honours thresholds', () => {
    const h = buildHeatmap([
      { subject: 'plugin:a', containerId: 'c1', records: normalRun('hello', 1), flags: [{ name: 'odd', severity: 'high' }] },
      { subject: 'plugin:b', containerId: 'c2', records: attackRun('hello', 'wasi-fs', 1) },
    ]);
    const plan = planTightening(h);
    expect(plan.steps.map((s) => `${s.subject} ${s.syscall} ${s.action}`)).toEqual(['plugin:b wasi:filesystem/open audit']);
    expect(plan.notes).toEqual(['plugin:a: heat 1.00 from flags that name no call; no syscall to tighten']);
    // Two refused opens: heat 0.5; one refused read: 0.33 — a higher threshold keeps neither.
    expect(planTightening(h, { thresholds: { hot: 0.3 } }).steps.map((s) => s.syscall)).toEqual(['wasi:filesystem/open', 'wasi:filesystem/read']);
    expect(planTightening(h, { thresholds: { hot: 0.9 } }).steps).toEqual([]);
    expect(planTightening(h, { thresholds: { minCalls: 5 } }).steps).toEqual([]);
    expect(() => planTightening(h, { thresholds: { hot: 0 } })).toThrow(expect.objectContaining({ details: { field: 'thresholds.hot' } }));
    expect(() => planTightening({} as Heatmap)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'heatmap' } }));
  });

  it('plans delay when the engine supports it, and the ladder is the documented one', async () => {
    expect(TIGHTENING_LADDER).toEqual(['audit', 'delay', 'deny', 'quarantine']);
    const h = heat(1);
    const e = engine();
    await applyTightening(e, planTightening(h).steps[0]!);
    const withDelay = planTightening(h, { current: e.tightenings, supported: ['audit', 'delay', 'deny', 'quarantine'] });
    expect(withDelay.steps[0]).toMatchObject({ from: 'audit', action: 'delay', skipped: [] });
    // This engine has no delay action: applying such a step is refused with a clear error, nothing changes.
    await expect(applyTightening(e, withDelay.steps[0]!)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('refused the tightening of plugin:rogue × forgeone:http/fetch') });
    expect(e.tightenings).toHaveLength(1);
  });
});
