/**
 * Property tests of the scheduler against a reference written independently here:
 * (1) safety: after every tick no node is over capacity, every running workload's location, labels and
 *     anti-affinity hold, every admission satisfied affinity at the moment it was made, preemption only
 *     hit strictly lower, non-critical workloads, and nothing compromised runs;
 * (2) order: if L is admitted on node N in a tick, every workload H ahead of L in the queue order at that
 *     tick (effective class, then effective trust, then submission time, then submission order) that is still
 *     waiting after the tick could never have used N (N fails H's location, labels or total capacity);
 * (3) liveness: when every running workload finishes after a bounded number of ticks, every accepted
 *     workload (not compromised, fits on some empty node) runs to completion within a bound.
 */
import type { TrustLevel } from '@forgeone/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLocalNode, createScheduler, type PriorityClass, type SchedulerEvent, type WorkloadSpec } from '../../src/index.js';

const T0 = Date.UTC(2026, 0, 1);
const AGING = 1000;
const CLASSES: PriorityClass[] = ['background', 'low', 'normal', 'high', 'critical'];
const RANK: Record<PriorityClass, number> = { background: 0, low: 1, normal: 2, high: 3, critical: 4 };
const GROUPS = ['a', 'b', 'c'];

interface NodeDesc {
  id: string;
  location: string;
  labels: Record<string, string>;
  capacity: { memoryMb: number; cpuSlots: number; maxInstances: number };
}
interface W {
  id: string;
  priority: PriorityClass;
  trust: number;
  memoryMb: number;
  cpuSlots: number;
  location?: string;
  labels: Record<string, string>;
  group?: string;
  affinity: string[];
  antiAffinity: string[];
}

// --- reference semantics ------------------------------------------------------------------------------
const refStatic = (w: W, n: NodeDesc): boolean =>
  (w.location === undefined || w.location === n.location) &&
  Object.entries(w.labels).every(([k, v]) => n.labels[k] === v) &&
  n.capacity.maxInstances >= 1 &&
  w.memoryMb <= n.capacity.memoryMb &&
  w.cpuSlots <= n.capacity.cpuSlots;
const names = (w: W, e: string): boolean => w.id === e || w.group === e;
const refConflict = (a: W, b: W): boolean => a.id !== b.id && (a.antiAffinity.some((e) => names(b, e)) || b.antiAffinity.some((e) => names(a, e)));
const refAffinity = (w: W, node: string, running: ReadonlyMap<string, { w: W; node: string }>): boolean =>
  w.affinity.every((e) => {
    const m = [...running.values()].filter((r) => r.w.id !== w.id && names(r.w, e));
    return m.length === 0 || m.some((r) => r.node === node);
  });
const intervals = (submittedAt: number, now: number): number => Math.floor(Math.max(0, now - submittedAt) / AGING);
const refPriority = (w: W, submittedAt: number, now: number): number => Math.min(4, RANK[w.priority] + intervals(submittedAt, now));
const refTrust = (w: W, trust: number, submittedAt: number, now: number): number =>
  Math.min(5, trust + Math.max(0, RANK[w.priority] + intervals(submittedAt, now) - 4));

function toSpec(w: W, submittedAt: number): WorkloadSpec {
  return {
    id: w.id,
    priority: w.priority,
    trust: w.trust as TrustLevel,
    resources: { memoryMb: w.memoryMb, cpuSlots: w.cpuSlots },
    constraints: { ...(w.location === undefined ? {} : { location: w.location }), labels: w.labels, affinity: w.affinity, antiAffinity: w.antiAffinity },
    ...(w.group === undefined ? {} : { group: w.group }),
    submittedAt,
  };
}

// --- generators ---------------------------------------------------------------------------------------
const labelsArb = fc.record({ gpu: fc.constantFrom('yes', 'no'), arch: fc.constantFrom('x86', 'arm') }, { requiredKeys: [] });
const nodesArb = fc
  .array(
    fc.record({
      location: fc.constantFrom('eu', 'us'),
      labels: labelsArb,
      capacity: fc.record({ memoryMb: fc.integer({ min: 0, max: 8 }).map((m) => m * 100), cpuSlots: fc.integer({ min: 0, max: 4 }), maxInstances: fc.integer({ min: 0, max: 4 }) }),
    }),
    { minLength: 1, maxLength: 3 },
  )
  .map((ns) => ns.map((n, i): NodeDesc => ({ id: `n${i}`, ...n, labels: { ...n.labels } })));

function workloadsArb(max: number, compromisedWeight: number): fc.Arbitrary<W[]> {
  const ref = fc.constantFrom(...GROUPS, ...Array.from({ length: max }, (_, i) => `w${i}`));
  const sometimes = <T>(arb: fc.Arbitrary<T>, none: T): fc.Arbitrary<T> => fc.oneof({ arbitrary: fc.constant(none), weight: 3 }, { arbitrary: arb, weight: 1 });
  return fc
    .array(
      fc.record({
        priority: fc.constantFrom(...CLASSES),
        trust: fc.oneof({ arbitrary: fc.constant(0), weight: compromisedWeight }, { arbitrary: fc.integer({ min: 1, max: 5 }), weight: 10 }),
        memoryMb: fc.integer({ min: 0, max: 6 }).map((m) => m * 100),
        cpuSlots: fc.integer({ min: 0, max: 3 }),
        location: sometimes<string | undefined>(fc.constantFrom('eu', 'us'), undefined),
        labels: sometimes<Record<string, string>>(labelsArb, {}),
        group: fc.option(fc.constantFrom(...GROUPS), { nil: undefined }),
        affinity: sometimes(fc.uniqueArray(ref, { minLength: 1, maxLength: 2 }), [] as string[]),
        antiAffinity: sometimes(fc.uniqueArray(ref, { minLength: 1, maxLength: 2 }), [] as string[]),
      }),
      { minLength: Math.min(4, max), maxLength: max, size: 'large' },
    )
    .map((ws) =>
      ws.map((w, i): W => {
        const { location, group, ...rest } = w;
        return { ...rest, id: `w${i}`, labels: { ...w.labels }, ...(location === undefined ? {} : { location }), ...(group === undefined ? {} : { group }) };
      }),
    );
}

type Op = { kind: 'submit'; i: number } | { kind: 'release'; i: number } | { kind: 'tick'; dt: number } | { kind: 'trust'; i: number; level: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('submit' as const), i: fc.nat(20) }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant('release' as const), i: fc.nat(20) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 2 * AGING }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('trust' as const), i: fc.nat(20), level: fc.integer({ min: 0, max: 5 }) }), weight: 1 },
);

function build(nodes: NodeDesc[]) {
  return createScheduler({ nodes: nodes.map((n) => createLocalNode(n)), agingMs: AGING });
}

describe('scheduler properties', () => {
  it('(1) safety and (2) order hold after every tick', () => {
    fc.assert(
      fc.property(nodesArb, workloadsArb(12, 1), fc.array(opArb, { minLength: 20, maxLength: 100, size: 'large' }), (nodes, pool, ops) => {
        const s = build(nodes);
        const byNode = new Map(nodes.map((n) => [n.id, n]));
        const trust = new Map<string, number>();
        const seq = new Map<string, number>();
        const submittedAt = new Map<string, number>();
        let nextSeq = 0;
        let now = T0;

        for (const op of ops) {
          if (op.kind === 'submit') {
            const w = pool[op.i % pool.length]!;
            const known = s.status(w.id) !== undefined;
            const r = s.submit(toSpec(w, now));
            const expectedOk = w.trust !== 0 && nodes.some((n) => refStatic(w, n)) && !known;
            expect(r.ok).toBe(expectedOk);
            if (r.ok) {
              seq.set(w.id, nextSeq++);
              submittedAt.set(w.id, now);
              trust.set(w.id, w.trust);
            } else {
              expect(r.error.code).toBe(known ? 'ALREADY_EXISTS' : w.trust === 0 ? 'IDENTITY_COMPROMISED' : 'SCHEDULER_UNSCHEDULABLE');
            }
            continue;
          }
          if (op.kind === 'release') {
            s.release(pool[op.i % pool.length]!.id);
            continue;
          }
          if (op.kind === 'trust') {
            const id = pool[op.i % pool.length]!.id;
            if (s.setTrust(id, op.level as TrustLevel)) trust.set(id, op.level);
            continue;
          }

          now += op.dt;
          const before = s.snapshot(now);
          const wOf = (id: string): W => pool.find((p) => p.id === id)!;
          // reference queue order at this tick
          const key = (id: string): number[] => {
            const w = wOf(id);
            const at = submittedAt.get(id)!;
            return [-refPriority(w, at, now), -refTrust(w, trust.get(id)!, at, now), at, seq.get(id)!];
          };
          const cmp = (a: string, b: string): number => {
            const ka = key(a);
            const kb = key(b);
            for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
            return 0;
          };
          const order = before.queue.map((q) => q.workload.id).sort(cmp);
          expect(before.queue.map((q) => q.workload.id)).toEqual(order); // the scheduler's own order agrees

          const model = new Map(before.running.map((r) => [r.workload.id, { w: wOf(r.workload.id), node: r.node, priority: r.priority }]));
          const result = s.tick(now);
          const preemptedFor = new Map<string, number[]>();
          for (const e of result.events as SchedulerEvent[]) {
            if (e.kind === 'reject') {
              expect(model.has(e.workload.id)).toBe(false); // running compromised ones were removed at once
              continue;
            }
            if (e.kind === 'preempt') {
              const victim = model.get(e.workload.id)!;
              expect(victim.node).toBe(e.node);
              expect(victim.w.priority).not.toBe('critical');
              preemptedFor.set(e.by, [...(preemptedFor.get(e.by) ?? []), victim.priority]);
              model.delete(e.workload.id);
              continue;
            }
            const w = wOf(e.workload.id);
            expect(e.priority).toBe(refPriority(w, submittedAt.get(w.id)!, now));
            for (const p of preemptedFor.get(w.id) ?? []) expect(p).toBeLessThan(e.priority);
            expect(refAffinity(w, e.node, model), `affinity of ${w.id} on ${e.node}`).toBe(true);
            model.set(w.id, { w, node: e.node, priority: e.priority });
          }

          // (1) safety over the whole state after the tick
          const after = s.snapshot(now);
          expect(new Set(after.running.map((r) => r.workload.id))).toEqual(new Set(model.keys()));
          for (const n of nodes) {
            const here = after.running.filter((r) => r.node === n.id).map((r) => wOf(r.workload.id));
            expect(here.reduce((m, w) => m + w.memoryMb, 0)).toBeLessThanOrEqual(n.capacity.memoryMb);
            expect(here.reduce((m, w) => m + w.cpuSlots, 0)).toBeLessThanOrEqual(n.capacity.cpuSlots);
            expect(here.length).toBeLessThanOrEqual(n.capacity.maxInstances);
            for (const w of here) {
              expect(refStatic(w, n)).toBe(true);
              expect(trust.get(w.id)).not.toBe(0);
              for (const o of here) expect(refConflict(w, o), `${w.id} and ${o.id} on ${n.id}`).toBe(false);
            }
          }

          // (2) nothing was placed where a waiting workload ahead of it could have gone
          const stillQueued = new Set(after.queue.map((q) => q.workload.id));
          for (const a of result.admitted) {
            const pos = order.indexOf(a.workload.id);
            expect(pos).toBeGreaterThanOrEqual(0);
            for (const h of order.slice(0, pos)) {
              if (!stillQueued.has(h)) continue;
              expect(refStatic(wOf(h), byNode.get(a.node)!), `${a.workload.id} took ${a.node} ahead of waiting ${h}`).toBe(false);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('(3) every accepted workload eventually runs to completion', () => {
    fc.assert(
      fc.property(
        nodesArb,
        workloadsArb(12, 1),
        fc.array(fc.record({ duration: fc.integer({ min: 1, max: 3 }), arrival: fc.integer({ min: 0, max: 5 }) }), { minLength: 12, maxLength: 12 }),
        (nodes, pool, timing) => {
          const s = build(nodes);
          const accepted = new Set<string>();
          const done = new Set<string>();
          const ran = new Map<string, number>();
          const bound = 6 + 2 * 10 + 5 * pool.length; // arrivals + aging to (critical, Root) + one slot each
          let now = T0;
          for (let tick = 0; tick <= bound; tick++) {
            pool.forEach((w, i) => {
              if (timing[i]!.arrival !== tick) return;
              const r = s.submit(toSpec(w, now));
              expect(r.ok).toBe(w.trust !== 0 && nodes.some((n) => refStatic(w, n)));
              if (r.ok) accepted.add(w.id);
            });
            const result = s.tick(now);
            for (const p of result.preempted) ran.delete(p.workload.id);
            for (const a of result.admitted) ran.set(a.workload.id, 0);
            for (const [id, t] of [...ran]) {
              const idx = Number(id.slice(1));
              if (t + 1 >= timing[idx]!.duration) {
                expect(s.release(id)).toBe(true);
                ran.delete(id);
                done.add(id);
              } else ran.set(id, t + 1);
            }
            now += AGING / 2;
            if (tick >= 5 && done.size === accepted.size) break;
          }
          expect([...accepted].filter((id) => !done.has(id))).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
  it('(3b) aging: a workload is admitted within a fixed bound even under an endless stream of higher-priority, higher-trust arrivals', () => {
    fc.assert(
      fc.property(
        nodesArb,
        workloadsArb(8, 0),
        fc.constantFrom(...CLASSES),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 8, maxLength: 8 }),
        (nodes, streamPool, priority, trustLevel, durations) => {
          const s = build(nodes);
          const victim: W = { ...streamPool[0]!, id: 'victim', priority, trust: trustLevel, group: 'victim', affinity: [], antiAffinity: [] };
          fc.pre(nodes.some((n) => refStatic(victim, n)));
          expect(s.submit(toSpec(victim, T0)).ok).toBe(true);
          const stream = streamPool.map((w) => ({ ...w, priority: 'critical' as const, trust: 5, affinity: [], antiAffinity: [] }));
          const ran = new Map<string, { t: number; d: number }>();
          // 9 aging intervals bring the victim to (critical, Root), where it is first in the queue for good;
          // then whatever runs on its nodes finishes within 3 ticks. Ticks are half an interval apart.
          const bound = 2 * 9 + 4;
          let now = T0;
          let admittedAt: number | undefined;
          for (let tick = 0; tick <= bound && admittedAt === undefined; tick++) {
            // every tick, fresh critical Root-trust work arrives (only what some node can hold)
            stream.forEach((w, i) => {
              if (nodes.some((n) => refStatic(w, n))) expect(s.submit(toSpec({ ...w, id: `s${tick}-${i}` }, now)).ok).toBe(true);
            });
            const result = s.tick(now);
            for (const p of result.preempted) ran.delete(p.workload.id);
            for (const a of result.admitted) {
              if (a.workload.id === 'victim') admittedAt = tick;
              else ran.set(a.workload.id, { t: 0, d: durations[Number(a.workload.id.split('-')[1])]! });
            }
            for (const [id, r] of [...ran]) {
              if (r.t + 1 >= r.d) {
                s.release(id);
                ran.delete(id);
              } else ran.set(id, { t: r.t + 1, d: r.d });
            }
            now += AGING / 2;
          }
          expect(admittedAt, 'victim never admitted').toBeDefined();
        },
      ),
      { numRuns: 200 },
    );
  });
});
