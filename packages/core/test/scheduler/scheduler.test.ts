import { TrustLevel, createManualClock } from '@forgeone/common';
import { describe, expect, it } from 'vitest';
import {
  createDefaultPolicy,
  createLocalNode,
  createScheduler,
  type Scheduler,
  type SchedulerPolicy,
  type TickResult,
  type WorkloadSpec,
} from '../../src/index.js';
import { AGING, T0, node, spec } from './helpers.js';

function submitAll(s: Scheduler, specs: WorkloadSpec[]): void {
  for (const w of specs) {
    const r = s.submit(w);
    if (!r.ok) throw r.error;
  }
}
const ids = (r: TickResult): string[] => r.admitted.map((a) => a.workload.id);
const where = (s: Scheduler, id: string): string | undefined => {
  const st = s.status(id);
  return st?.state === 'running' ? st.node : st?.state;
};

describe('nodes and submissions', () => {
  it('validates node options, naming the field', () => {
    expect(() => createLocalNode({ capacity: { memoryMb: -1, cpuSlots: 1, maxInstances: 1 } })).toThrow(/node\.capacity\.memoryMb/);
    expect(() => createLocalNode({ id: '', capacity: { memoryMb: 1, cpuSlots: 1, maxInstances: 1 } })).toThrow(/node\.id/);
    expect(() => createLocalNode({ capacity: { memoryMb: 1, cpuSlots: 1.5, maxInstances: 1 } })).toThrow(/node\.capacity\.cpuSlots/);
    expect(() => createScheduler({ nodes: [node('a'), node('a')] })).toThrow(/already exists/);
  });

  it('refuses malformed, duplicate, compromised and unschedulable workloads with a code', () => {
    const s = createScheduler({ nodes: [node('n1', { memoryMb: 512 }, { location: 'eu', labels: { gpu: 'no' } })], agingMs: AGING });
    const codeOf = (w: WorkloadSpec): [string, unknown] | 'ok' => {
      const r = s.submit(w);
      return r.ok ? 'ok' : [r.error.code, r.error.details?.field];
    };
    expect(codeOf(spec('a', { resources: { memoryMb: -5, cpuSlots: 1 } }))).toEqual(['INVALID_ARGUMENT', 'workload.resources.memoryMb']);
    expect(codeOf(spec('a', { priority: 'urgent' as never }))).toEqual(['INVALID_ARGUMENT', 'workload.priority']);
    expect(codeOf(spec('a', { trust: 9 as never }))).toEqual(['INVALID_ARGUMENT', 'workload.trust']);
    expect(codeOf({ ...spec('a'), extra: 1 } as WorkloadSpec)).toEqual(['INVALID_ARGUMENT', 'workload.extra']);
    expect(codeOf(spec('a', { constraints: { affinity: ['ok', ''] } }))).toEqual(['INVALID_ARGUMENT', 'workload.constraints.affinity[1]']);
    expect(codeOf(spec('evil', { trust: TrustLevel.Compromised }))).toEqual(['IDENTITY_COMPROMISED', undefined]);
    expect(codeOf(spec('big', { resources: { memoryMb: 513, cpuSlots: 1 } }))).toEqual(['SCHEDULER_UNSCHEDULABLE', undefined]);
    expect(codeOf(spec('us', { constraints: { location: 'us' } }))).toEqual(['SCHEDULER_UNSCHEDULABLE', undefined]);
    expect(codeOf(spec('gpu', { constraints: { labels: { gpu: 'yes' } } }))).toEqual(['SCHEDULER_UNSCHEDULABLE', undefined]);
    expect(codeOf(spec('a'))).toBe('ok');
    expect(codeOf(spec('a'))).toEqual(['ALREADY_EXISTS', undefined]);
    expect(s.queue(T0).map((q) => q.workload.id)).toEqual(['a']);
  });
});

describe('admission by resources', () => {
  it('admits while memory, cpu slots and instances last, and release frees them', () => {
    const s = createScheduler({ nodes: [node('n1', { memoryMb: 300, cpuSlots: 2, maxInstances: 3 })], agingMs: AGING });
    submitAll(s, [
      spec('m1', { resources: { memoryMb: 200, cpuSlots: 0 } }),
      spec('m2', { resources: { memoryMb: 200, cpuSlots: 0 } }), // memory: waits
    ]);
    expect(ids(s.tick(T0))).toEqual(['m1']);
    expect(s.release('m1')).toBe(true);
    expect(ids(s.tick(T0))).toEqual(['m2']);
    s.release('m2');
    submitAll(s, [spec('c1', { resources: { memoryMb: 0, cpuSlots: 2 } }), spec('c2', { resources: { memoryMb: 0, cpuSlots: 1 } })]);
    expect(ids(s.tick(T0))).toEqual(['c1']); // cpu: c2 waits
    s.release('c1');
    expect(ids(s.tick(T0))).toEqual(['c2']);
    s.release('c2');
    submitAll(s, ['i1', 'i2', 'i3', 'i4'].map((id) => spec(id, { resources: { memoryMb: 0, cpuSlots: 0 } })));
    expect(ids(s.tick(T0))).toEqual(['i1', 'i2', 'i3']); // instances
    expect(s.snapshot(T0).nodes[0]?.used).toEqual({ memoryMb: 0, cpuSlots: 0, instances: 3 });
    expect(s.release('nope')).toBe(false);
    expect(s.release('i4')).toBe(true); // withdrawn from the queue
    expect(s.queue(T0)).toEqual([]);
  });
});

describe('ordering', () => {
  const oneSlot = () => createScheduler({ nodes: [node('n1', { maxInstances: 1 })], agingMs: AGING });

  it('runs higher classes first, then higher trust, then earlier submissions', () => {
    const s = oneSlot();
    submitAll(s, [
      spec('bg', { priority: 'background', submittedAt: T0 - 10 }),
      spec('normal-early', { priority: 'normal', trust: TrustLevel.Limited, submittedAt: T0 - 5 }),
      spec('normal-trusted', { priority: 'normal', trust: TrustLevel.Trusted, submittedAt: T0 }),
      spec('normal-late', { priority: 'normal', trust: TrustLevel.Limited, submittedAt: T0 }),
      spec('high', { priority: 'high', trust: TrustLevel.Untrusted, submittedAt: T0 }),
      spec('crit', { priority: 'critical', submittedAt: T0 }),
    ]);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [a] = s.tick(T0).admitted;
      order.push(a!.workload.id);
      s.release(a!.workload.id);
    }
    expect(order).toEqual(['crit', 'high', 'normal-trusted', 'normal-early', 'normal-late', 'bg']);
  });

  it('ages a waiting workload one class per interval, up to critical', () => {
    const s = oneSlot();
    submitAll(s, [spec('blocker', { priority: 'critical' })]);
    s.tick(T0);
    submitAll(s, [spec('old', { priority: 'background', submittedAt: T0 })]);
    expect(s.queue(T0)[0]?.priority).toBe(0);
    expect(s.queue(T0 + AGING - 1)[0]?.priority).toBe(0);
    expect(s.queue(T0 + AGING)[0]?.priority).toBe(1);
    expect(s.queue(T0 + 3 * AGING)[0]?.priority).toBe(3);
    expect(s.queue(T0 + 100 * AGING)[0]?.priority).toBe(4);
    // after 3 intervals the background one outranks a fresh normal one
    submitAll(s, [spec('fresh', { priority: 'normal', submittedAt: T0 + 3 * AGING })]);
    expect(s.queue(T0 + 3 * AGING).map((q) => q.workload.id)).toEqual(['old', 'fresh']);
    s.release('blocker');
    expect(ids(s.tick(T0 + 3 * AGING))).toEqual(['old']);
  });

  it('lets a long-waiting low-trust workload pass fresh high-trust critical ones (trust aging)', () => {
    const policy = createDefaultPolicy({ agingMs: AGING });
    const low = { ...spec('low', { priority: 'critical', trust: TrustLevel.Untrusted }), submittedAt: T0, constraints: { labels: {}, affinity: [], antiAffinity: [] } } as const;
    expect(policy.effectiveTrust(low, T0)).toBe(1);
    expect(policy.effectiveTrust(low, T0 + 2 * AGING)).toBe(3);
    expect(policy.effectiveTrust(low, T0 + 10 * AGING)).toBe(5);
    const s = oneSlot();
    submitAll(s, [spec('blocker', { priority: 'critical' })]);
    s.tick(T0);
    submitAll(s, [spec('low', { priority: 'critical', trust: TrustLevel.Untrusted, submittedAt: T0 })]);
    submitAll(s, [spec('root', { priority: 'critical', trust: TrustLevel.Root, submittedAt: T0 + 3 * AGING })]);
    expect(s.queue(T0 + 3 * AGING).map((q) => q.workload.id)).toEqual(['root', 'low']);
    expect(s.queue(T0 + 4 * AGING).map((q) => q.workload.id)).toEqual(['low', 'root']); // equal trust now, earlier first
  });

  it('uses a plugged-in policy for order and node choice', () => {
    const byId: SchedulerPolicy = {
      name: 'by-id',
      effectivePriority: () => 2,
      compare: (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      scoreNode: (_w, n) => (n.id === 'n2' ? 1 : 0),
    };
    const s = createScheduler({ nodes: [node('n1', { maxInstances: 1 }), node('n2', { maxInstances: 1 })], policy: byId });
    submitAll(s, [spec('z', { priority: 'critical' }), spec('b'), spec('a')]);
    const r = s.tick(T0);
    expect(r.admitted.map((a) => [a.workload.id, a.node])).toEqual([
      ['a', 'n2'],
      ['b', 'n1'],
    ]);
    expect(s.policy.name).toBe('by-id');
  });
});

describe('trust', () => {
  it('removes a workload whose identity becomes compromised, queued or running, and reports it', () => {
    const s = createScheduler({ nodes: [node('n1', { maxInstances: 1 })], agingMs: AGING });
    submitAll(s, [spec('r'), spec('q')]);
    s.tick(T0);
    expect(s.setTrust('r', TrustLevel.Compromised)).toBe(true);
    expect(s.setTrust('q', TrustLevel.Compromised)).toBe(true);
    expect(s.setTrust('gone', TrustLevel.Trusted)).toBe(false);
    expect(() => s.setTrust('r', 7 as never)).toThrow(/trust/);
    expect(s.status('r')).toBeUndefined();
    const r = s.tick(T0);
    expect(r.rejected.map((x) => [x.workload.id, x.code, x.node])).toEqual([
      ['r', 'IDENTITY_COMPROMISED', 'n1'],
      ['q', 'IDENTITY_COMPROMISED', undefined],
    ]);
    expect(r.admitted).toEqual([]);
    expect(s.snapshot(T0).nodes[0]?.running).toEqual([]);
  });

  it('reorders by a changed trust level', () => {
    const s = createScheduler({ nodes: [node('n1', { maxInstances: 1 })], agingMs: AGING });
    submitAll(s, [spec('a', { trust: TrustLevel.Trusted }), spec('b', { trust: TrustLevel.Limited })]);
    s.setTrust('b', TrustLevel.Root);
    expect(ids(s.tick(T0))).toEqual(['b']);
  });
});

describe('constraints', () => {
  it('matches location and labels', () => {
    const s = createScheduler({
      nodes: [node('eu-cpu', {}, { location: 'eu', labels: { arch: 'x86' } }), node('us-gpu', {}, { location: 'us', labels: { arch: 'x86', gpu: 'a100' } })],
      agingMs: AGING,
    });
    submitAll(s, [spec('gpu', { constraints: { labels: { gpu: 'a100' } } }), spec('eu', { constraints: { location: 'eu' } }), spec('x86', { constraints: { labels: { arch: 'x86' } } })]);
    s.tick(T0);
    expect(where(s, 'gpu')).toBe('us-gpu');
    expect(where(s, 'eu')).toBe('eu-cpu');
    expect(['eu-cpu', 'us-gpu']).toContain(where(s, 'x86'));
  });

  it('co-locates with affinity targets and keeps anti-affinity apart (both ways)', () => {
    const s = createScheduler({ nodes: [node('n1'), node('n2'), node('n3')], agingMs: AGING });
    submitAll(s, [spec('db', { group: 'db', constraints: { antiAffinity: ['db'] } })]);
    s.tick(T0);
    const dbNode = where(s, 'db');
    submitAll(s, [
      spec('cache', { constraints: { affinity: ['db'] } }),
      spec('db-2', { group: 'db', constraints: { antiAffinity: ['db'] } }),
      spec('db-3', { group: 'db', constraints: { antiAffinity: ['db'] } }),
      spec('noisy', { constraints: { antiAffinity: ['db'] } }),
    ]);
    s.tick(T0);
    expect(where(s, 'cache')).toBe(dbNode);
    const dbNodes = ['db', 'db-2', 'db-3'].map((id) => where(s, id));
    expect(new Set(dbNodes).size).toBe(3); // spread over all three nodes
    // every node holds a db now, so the anti-affine workload cannot run anywhere
    expect(where(s, 'noisy')).toBe('queued');
    s.release('db-3');
    s.tick(T0);
    expect(where(s, 'noisy')).toBe(dbNodes[2]); // the node db-3 left
    // symmetric: a db replica now refuses the node where 'noisy' runs
    submitAll(s, [spec('db-4', { group: 'db' })]);
    s.tick(T0);
    expect(where(s, 'db-4')).not.toBe(where(s, 'noisy'));
  });

  it('places freely when no affinity target runs', () => {
    const s = createScheduler({ nodes: [node('n1')], agingMs: AGING });
    submitAll(s, [spec('cache', { constraints: { affinity: ['db'] } })]);
    expect(ids(s.tick(T0))).toEqual(['cache']);
  });
});

describe('preemption', () => {
  it('evicts the smallest set of strictly lower-priority workloads, which go back to the queue', () => {
    const s = createScheduler({ nodes: [node('n1', { memoryMb: 1000, cpuSlots: 100, maxInstances: 10 })], agingMs: 1e9 });
    submitAll(s, [
      spec('small-1', { priority: 'low', resources: { memoryMb: 200, cpuSlots: 0 } }),
      spec('small-2', { priority: 'low', resources: { memoryMb: 200, cpuSlots: 0 } }),
      spec('big', { priority: 'low', resources: { memoryMb: 500, cpuSlots: 0 } }),
      spec('normal', { priority: 'normal', resources: { memoryMb: 100, cpuSlots: 0 } }),
    ]);
    s.tick(T0);
    submitAll(s, [spec('urgent', { priority: 'high', resources: { memoryMb: 400, cpuSlots: 0 }, submittedAt: T0 + 1 })]);
    const r = s.tick(T0 + 1);
    expect(r.preempted.map((p) => [p.workload.id, p.by])).toEqual([['big', 'urgent']]); // one victim, not two
    expect(ids(r)).toEqual(['urgent']);
    expect(r.events.map((e) => e.kind)).toEqual(['preempt', 'admit']);
    const back = s.status('big');
    expect(back?.state).toBe('queued');
    expect(back?.workload.submittedAt).toBe(T0); // keeps its age
    expect(s.snapshot(T0 + 1).nodes[0]?.used.memoryMb).toBe(900); // 200 + 200 + 100 + 400
  });

  it('never preempts equal priority or critical workloads', () => {
    const s = createScheduler({ nodes: [node('n1', { maxInstances: 1 })], agingMs: 1e9 });
    submitAll(s, [spec('a', { priority: 'high' })]);
    s.tick(T0);
    submitAll(s, [spec('b', { priority: 'high' })]);
    expect(s.tick(T0).preempted).toEqual([]);
    s.release('a');
    s.release('b');
    submitAll(s, [spec('crit', { priority: 'critical' })]);
    s.tick(T0);
    submitAll(s, [spec('crit-2', { priority: 'critical', trust: TrustLevel.Root })]);
    expect(s.tick(T0).preempted).toEqual([]);
  });

  it('judges a running workload by its priority at admission, so an aged one is not thrashed', () => {
    const s = createScheduler({ nodes: [node('n1', { maxInstances: 1 })], agingMs: AGING });
    submitAll(s, [spec('blocker', { priority: 'critical' }), spec('old', { priority: 'background', submittedAt: T0 })]);
    s.tick(T0);
    s.release('blocker');
    const r1 = s.tick(T0 + 4 * AGING);
    expect(r1.admitted.map((a) => [a.workload.id, a.priority])).toEqual([['old', 4]]);
    submitAll(s, [spec('high', { priority: 'high', submittedAt: T0 + 4 * AGING })]);
    expect(s.tick(T0 + 4 * AGING).preempted).toEqual([]); // 'old' runs at critical now
  });

  it('aging orders the queue but never lets a workload evict one of its own class', () => {
    const s = createScheduler({ nodes: [node('n1', { maxInstances: 1 })], agingMs: AGING });
    submitAll(s, [spec('first', { priority: 'normal', submittedAt: T0 })]);
    s.tick(T0);
    submitAll(s, [spec('second', { priority: 'normal', submittedAt: T0 })]);
    // 'second' has aged to critical, but 'first' is of its class: it waits for 'first' to leave.
    expect(s.tick(T0 + 10 * AGING).preempted).toEqual([]);
    expect(where(s, 'first')).toBe('n1');
    // A fresh higher-class workload queues behind the aged one (which holds the node it waits for), and the
    // aged one is admitted as soon as 'first' leaves.
    submitAll(s, [spec('urgent', { priority: 'high', submittedAt: T0 + 10 * AGING })]);
    expect(s.tick(T0 + 10 * AGING).preempted).toEqual([]);
    s.release('first');
    expect(ids(s.tick(T0 + 10 * AGING + 1))).toEqual(['second']);
  });

  it('evicts anti-affine lower-priority workloads when that is what blocks', () => {
    const s = createScheduler({ nodes: [node('n1')], agingMs: 1e9 });
    submitAll(s, [spec('noisy', { priority: 'low', group: 'noisy' }), spec('other', { priority: 'low' })]);
    s.tick(T0);
    submitAll(s, [spec('quiet', { priority: 'high', constraints: { antiAffinity: ['noisy'] } })]);
    const r = s.tick(T0);
    expect(r.preempted.map((p) => p.workload.id)).toEqual(['noisy']);
    expect(ids(r)).toEqual(['quiet']);
  });
});

describe('head-of-line reservation', () => {
  it('keeps lower workloads off the nodes a blocked higher one can use, and lets them use the others', () => {
    const s = createScheduler({
      nodes: [node('gpu', { memoryMb: 1000 }, { labels: { gpu: 'yes' } }), node('cpu', { memoryMb: 1000 })],
      agingMs: 1e9,
    });
    submitAll(s, [
      spec('run-1', { priority: 'high', resources: { memoryMb: 600, cpuSlots: 0 }, constraints: { labels: { gpu: 'yes' } } }),
      spec('run-2', { priority: 'high', resources: { memoryMb: 600, cpuSlots: 0 } }),
    ]);
    s.tick(T0);
    expect([where(s, 'run-1'), where(s, 'run-2')]).toEqual(['gpu', 'cpu']);
    // wants 600 MiB anywhere: both nodes have 400 free, and high cannot preempt high
    submitAll(s, [spec('wide', { priority: 'high', resources: { memoryMb: 600, cpuSlots: 0 } })]);
    // only fits the gpu node; 'wide' could use both, so both are reserved
    submitAll(s, [spec('small', { priority: 'normal', resources: { memoryMb: 100, cpuSlots: 0 } })]);
    let r = s.tick(T0);
    expect(ids(r)).toEqual([]);
    // a workload only the gpu node can take would still wait there: 'wide' could use it too
    s.release('run-2');
    r = s.tick(T0);
    expect(ids(r)).toEqual(['wide', 'small']);
    expect(where(s, 'wide')).toBe('cpu');
    expect(where(s, 'small')).toBe('gpu'); // best fit left the cpu node full
  });

  it('backfills a node the blocked workload can never use', () => {
    const s = createScheduler({ nodes: [node('eu', { memoryMb: 500 }, { location: 'eu' }), node('us', { memoryMb: 500 }, { location: 'us' })], agingMs: 1e9 });
    submitAll(s, [spec('eu-run', { priority: 'high', resources: { memoryMb: 400, cpuSlots: 0 }, constraints: { location: 'eu' } })]);
    s.tick(T0);
    submitAll(s, [
      spec('eu-wait', { priority: 'high', resources: { memoryMb: 400, cpuSlots: 0 }, constraints: { location: 'eu' } }),
      spec('anywhere', { priority: 'low', resources: { memoryMb: 50, cpuSlots: 0 } }),
    ]);
    const r = s.tick(T0);
    expect(ids(r)).toEqual(['anywhere']);
    expect(where(s, 'anywhere')).toBe('us');
    expect(where(s, 'eu-wait')).toBe('queued');
  });

  it('holds a workload a blocked one must be co-located with', () => {
    const s = createScheduler({ nodes: [node('a', { memoryMb: 500 }, { labels: { zone: 'a' } }), node('b', { memoryMb: 500 }, { labels: { zone: 'b' } })], agingMs: 1e9 });
    submitAll(s, [spec('fill', { priority: 'critical', resources: { memoryMb: 500, cpuSlots: 0 }, constraints: { labels: { zone: 'a' } } })]);
    s.tick(T0);
    submitAll(s, [
      spec('app', { priority: 'high', resources: { memoryMb: 100, cpuSlots: 0 }, constraints: { labels: { zone: 'a' }, affinity: ['cache'] } }),
      spec('cache-1', { priority: 'low', group: 'cache', resources: { memoryMb: 10, cpuSlots: 0 } }),
    ]);
    let r = s.tick(T0);
    // cache-1 could go to node b, but then app (zone a only) could never be with a cache
    expect(ids(r)).toEqual([]);
    s.release('fill');
    r = s.tick(T0);
    expect(ids(r)).toEqual(['app', 'cache-1']);
    expect(where(s, 'cache-1')).toBe('a');
  });
});

describe('nodes come and go', () => {
  it('requeues what ran on a removed node and rejects what no node can hold any more', () => {
    const clock = createManualClock(T0);
    const s = createScheduler({ nodes: [node('n1', {}, { labels: { ssd: 'yes' } }), node('n2')], clock, agingMs: AGING });
    submitAll(s, [spec('ssd', { constraints: { labels: { ssd: 'yes' } } }), spec('any', { constraints: { antiAffinity: ['ssd'] } })]);
    s.tick();
    expect(where(s, 'ssd')).toBe('n1');
    expect(where(s, 'any')).toBe('n2');
    expect(s.removeNode('n2').map((w) => w.id)).toEqual(['any']);
    expect(() => s.removeNode('n2')).toThrow(/no node/);
    s.addNode(node('n3'));
    let r = s.tick();
    expect(r.admitted.map((a) => [a.workload.id, a.node])).toEqual([['any', 'n3']]);
    s.removeNode('n1');
    r = s.tick();
    expect(r.rejected.map((x) => [x.workload.id, x.code])).toEqual([['ssd', 'SCHEDULER_UNSCHEDULABLE']]);
    expect(s.nodes().map((n) => n.id)).toEqual(['n3']);
    expect(s.nodes()[0]?.running()).toEqual(['any']);
  });
});

describe('snapshot', () => {
  it('describes nodes, running and queued workloads as plain data', () => {
    const s = createScheduler({ nodes: [node('n1', { maxInstances: 1 })], agingMs: AGING });
    submitAll(s, [spec('a', { submittedAt: T0 }), spec('b', { submittedAt: T0 })]);
    s.tick(T0 + 10);
    const snap = s.snapshot(T0 + 2500);
    expect(snap.at).toBe(T0 + 2500);
    expect(snap.nodes).toEqual([
      { id: 'n1', location: 'local', labels: {}, capacity: { memoryMb: 1024, cpuSlots: 4, maxInstances: 1 }, used: { memoryMb: 100, cpuSlots: 1, instances: 1 }, running: ['a'] },
    ]);
    expect(snap.running.map((r) => [r.workload.id, r.node, r.admittedAt, r.priority])).toEqual([['a', 'n1', T0 + 10, 2]]);
    expect(snap.queue.map((q) => [q.workload.id, q.priority, q.waitedMs])).toEqual([['b', 4, 2500]]);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });

  it('refuses a bad tick time', () => {
    const s = createScheduler({ agingMs: AGING });
    expect(() => s.tick(Number.NaN)).toThrow(/now/);
    expect(() => createDefaultPolicy({ agingMs: 0 })).toThrow(/agingMs/);
  });
});
