/**
 * The default {@link Scheduler}.
 *
 * @packageDocumentation
 */
import { ForgeError, TrustLevel, fail, ok, systemClock, type TrustLevel as TrustLevelValue } from '@forgeone/common';
import { affinitySatisfied, antiAffinityConflict, matchesEntry, staticallyEligible } from './constraints.js';
import { createDefaultPolicy, type SchedulerPolicy } from './policy.js';
import type { Scheduler, SchedulerOptions } from './Scheduler.js';
import type { SchedulerNode } from './SchedulerNode.js';
import {
  MAX_PRIORITY_RANK,
  PRIORITY_RANK,
  type Admission,
  type NodeView,
  type Preemption,
  type QueueEntry,
  type Rejection,
  type RunningEntry,
  type SchedulerEvent,
  type SchedulerSnapshot,
  type Workload,
  type WorkloadSpec,
  type WorkloadState,
} from './types.js';
import { checkTime, parseWorkload } from './validate.js';

interface Queued {
  workload: Workload;
  /** Submission order, kept across preemptions: the final tie-break. */
  readonly seq: number;
}

interface Running {
  workload: Workload;
  readonly seq: number;
  readonly node: string;
  readonly admittedAt: number;
  readonly priority: number;
}

interface NodeState {
  readonly node: SchedulerNode;
  memoryMb: number;
  cpuSlots: number;
  /** Ids running here, in placement order. */
  readonly ids: Set<string>;
}

/** Above this many optional victims on one node, the victim set is found greedily instead of exactly. */
const EXACT_VICTIM_SEARCH_LIMIT = 12;

function checkNode(node: SchedulerNode): void {
  const ok =
    typeof node === 'object' &&
    node !== null &&
    typeof node.id === 'string' &&
    node.id.length > 0 &&
    typeof node.location === 'string' &&
    typeof node.labels === 'object' &&
    node.labels !== null &&
    typeof node.capacity === 'object' &&
    node.capacity !== null &&
    [node.capacity.memoryMb, node.capacity.cpuSlots, node.capacity.maxInstances].every((n) => Number.isSafeInteger(n) && n >= 0) &&
    typeof node.place === 'function' &&
    typeof node.evict === 'function' &&
    typeof node.running === 'function';
  if (!ok) throw new ForgeError('INVALID_ARGUMENT', 'node: must be a SchedulerNode { id, location, labels, capacity, running, place, evict }', { details: { field: 'node' } });
}

function* combinations<T>(items: readonly T[], k: number): Generator<T[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  if (k > items.length) return;
  for (;;) {
    yield idx.map((i) => items[i]!);
    let i = k - 1;
    while (i >= 0 && idx[i] === items.length - k + i) i--;
    if (i < 0) return;
    idx[i]!++;
    for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1]! + 1;
  }
}

interface Plan {
  readonly state: NodeState;
  readonly victims: readonly Running[];
  readonly key: readonly number[];
  readonly score: number;
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Create a scheduler over some nodes. See {@link Scheduler} for the rules it keeps.
 * @param options - nodes, policy, clock, aging interval
 * @returns the scheduler
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed node or aging interval, `ALREADY_EXISTS` for two nodes with one id
 * @example
 * ```ts
 * const scheduler = createScheduler({ nodes: [createLocalNode({ capacity: { memoryMb: 1024, cpuSlots: 2, maxInstances: 8 } })] });
 * scheduler.submit({ id: 'job-1', priority: 'normal', trust: TrustLevel.Verified, resources: { memoryMb: 256, cpuSlots: 1 } });
 * const { admitted } = scheduler.tick();
 * ```
 */
export function createScheduler(options: SchedulerOptions = {}): Scheduler {
  const clock = options.clock ?? systemClock;
  const policy: SchedulerPolicy = options.policy ?? createDefaultPolicy(options.agingMs === undefined ? {} : { agingMs: options.agingMs });
  const nodes = new Map<string, NodeState>();
  const queued = new Map<string, Queued>();
  const running = new Map<string, Running>();
  let pending: SchedulerEvent[] = [];
  let nextSeq = 0;

  const effective = (w: Workload, now: number): number => {
    const p = policy.effectivePriority(w, now);
    return Number.isFinite(p) ? Math.max(0, Math.min(MAX_PRIORITY_RANK, p)) : 0;
  };
  const order = (now: number) => (a: Queued, b: Queued): number => policy.compare(a.workload, b.workload, now) || a.seq - b.seq;

  function view(s: NodeState): NodeView {
    return {
      id: s.node.id,
      location: s.node.location,
      labels: s.node.labels,
      capacity: s.node.capacity,
      used: { memoryMb: s.memoryMb, cpuSlots: s.cpuSlots, instances: s.ids.size },
    };
  }

  function fitsAfter(w: Workload, s: NodeState, freedMem: number, freedCpu: number, freedCount: number): boolean {
    const c = s.node.capacity;
    return (
      s.memoryMb - freedMem + w.resources.memoryMb <= c.memoryMb &&
      s.cpuSlots - freedCpu + w.resources.cpuSlots <= c.cpuSlots &&
      s.ids.size - freedCount + 1 <= c.maxInstances
    );
  }

  function runningOn(s: NodeState): Running[] {
    return [...s.ids].map((id) => running.get(id)!);
  }

  function runningPairs(excluded: ReadonlySet<string>): { workload: Workload; node: string }[] {
    const out: { workload: Workload; node: string }[] = [];
    for (const r of running.values()) if (!excluded.has(r.workload.id)) out.push({ workload: r.workload, node: r.node });
    return out;
  }

  function unplace(r: Running): void {
    const s = nodes.get(r.node);
    running.delete(r.workload.id);
    if (s === undefined) return;
    s.memoryMb -= r.workload.resources.memoryMb;
    s.cpuSlots -= r.workload.resources.cpuSlots;
    s.ids.delete(r.workload.id);
    s.node.evict(r.workload.id);
  }

  function place(q: Queued, s: NodeState, now: number, priority: number): Admission {
    const w = q.workload;
    queued.delete(w.id);
    running.set(w.id, { workload: w, seq: q.seq, node: s.node.id, admittedAt: now, priority });
    s.memoryMb += w.resources.memoryMb;
    s.cpuSlots += w.resources.cpuSlots;
    s.ids.add(w.id);
    s.node.place(w);
    return { workload: w, node: s.node.id, priority };
  }

  /** The best node to place `w` on without evicting anything, among `candidates`. */
  function directPlacement(w: Workload, candidates: readonly NodeState[]): NodeState | undefined {
    let best: NodeState | undefined;
    let bestScore = -Infinity;
    const all = runningPairs(new Set());
    for (const s of candidates) {
      if (!fitsAfter(w, s, 0, 0, 0)) continue;
      if (runningOn(s).some((r) => antiAffinityConflict(w, r.workload))) continue;
      if (!affinitySatisfied(w, s.node.id, all)) continue;
      const score = policy.scoreNode(w, view(s));
      if (best === undefined || score > bestScore) {
        best = s;
        bestScore = score;
      }
    }
    return best;
  }

  /** The smallest set of strictly-lower-priority workloads on one node whose eviction lets `w` in. */
  function preemptionPlan(w: Workload, priority: number, candidates: readonly NodeState[]): Plan | undefined {
    let best: Plan | undefined;
    for (const s of candidates) {
      const here = runningOn(s);
      // Aging orders the queue; it does not let a workload evict one of its own class (or higher): a
      // preempted workload keeps its submission time, so it would have aged as much and evict back.
      const evictable = (r: Running): boolean =>
        r.priority < priority && PRIORITY_RANK[r.workload.priority] < PRIORITY_RANK[w.priority] && r.priority < MAX_PRIORITY_RANK && r.workload.priority !== 'critical';
      const forced = here.filter((r) => antiAffinityConflict(w, r.workload));
      if (forced.some((r) => !evictable(r))) continue;
      const optional = here
        .filter((r) => evictable(r) && !forced.includes(r))
        // lowest priority first, then the most recently admitted (least work lost), then largest
        .sort((a, b) => a.priority - b.priority || b.admittedAt - a.admittedAt || b.seq - a.seq);
      const works = (victims: readonly Running[]): boolean => {
        let mem = 0;
        let cpu = 0;
        for (const v of victims) {
          mem += v.workload.resources.memoryMb;
          cpu += v.workload.resources.cpuSlots;
        }
        if (!fitsAfter(w, s, mem, cpu, victims.length)) return false;
        return affinitySatisfied(w, s.node.id, runningPairs(new Set(victims.map((v) => v.workload.id))));
      };
      const keyOf = (victims: readonly Running[]): number[] => [
        victims.length,
        Math.max(-1, ...victims.map((v) => v.priority)),
        victims.reduce((n, v) => n + v.priority, 0),
      ];
      let found: Running[] | undefined;
      if (optional.length <= EXACT_VICTIM_SEARCH_LIMIT) {
        for (let k = 0; k <= optional.length && found === undefined; k++) {
          let bestKey: number[] | undefined;
          for (const extra of combinations(optional, k)) {
            const victims = [...forced, ...extra];
            if (!works(victims)) continue;
            const key = keyOf(victims);
            if (bestKey === undefined || compareKeys(key, bestKey) < 0) {
              bestKey = key;
              found = victims;
            }
          }
        }
      } else {
        // Greedy: take victims in preference order until it fits, then drop any that are not needed.
        const victims = [...forced];
        for (const r of optional) {
          if (works(victims)) break;
          victims.push(r);
        }
        if (works(victims)) {
          for (let i = victims.length - 1; i >= forced.length; i--) {
            const without = victims.filter((_, j) => j !== i);
            if (works(without)) victims.splice(i, 1);
          }
          found = victims;
        }
      }
      if (found === undefined || found.length === 0) continue;
      const key = keyOf(found);
      const score = policy.scoreNode(w, view(s));
      if (best === undefined || compareKeys(key, best.key) < 0 || (compareKeys(key, best.key) === 0 && score > best.score)) {
        best = { state: s, victims: found, key, score };
      }
    }
    return best;
  }

  function sortedQueue(now: number): Queued[] {
    return [...queued.values()].sort(order(now));
  }

  const scheduler: Scheduler = {
    policy,

    submit(spec: WorkloadSpec) {
      const parsed = parseWorkload(spec, clock.now());
      if (!parsed.ok) return parsed;
      const w = parsed.value;
      if (queued.has(w.id) || running.has(w.id)) return fail('ALREADY_EXISTS', `workload ${w.id} is already ${queued.has(w.id) ? 'queued' : 'running'}`, { id: w.id });
      if (w.trust === TrustLevel.Compromised) {
        return fail('IDENTITY_COMPROMISED', `workload ${w.id} runs as a compromised identity; it never runs`, { id: w.id });
      }
      if (![...nodes.values()].some((s) => staticallyEligible(w, s.node))) {
        return fail('SCHEDULER_UNSCHEDULABLE', `no node matches workload ${w.id}: location, labels or total capacity`, {
          id: w.id,
          resources: w.resources,
          location: w.constraints.location,
          labels: w.constraints.labels,
        });
      }
      queued.set(w.id, { workload: w, seq: nextSeq++ });
      return ok(w);
    },

    release(workloadId) {
      const r = running.get(workloadId);
      if (r !== undefined) {
        unplace(r);
        return true;
      }
      return queued.delete(workloadId);
    },

    setTrust(workloadId, trust) {
      if (!Number.isInteger(trust) || trust < TrustLevel.Compromised || trust > TrustLevel.Root) {
        throw new ForgeError('INVALID_ARGUMENT', `trust: must be a trust level 0-5, got ${String(trust)}`, { details: { field: 'trust' } });
      }
      const q = queued.get(workloadId);
      const r = running.get(workloadId);
      const entry = q ?? r;
      if (entry === undefined) return false;
      const updated: Workload = Object.freeze({ ...entry.workload, trust: trust as TrustLevelValue });
      entry.workload = updated;
      if (trust !== TrustLevel.Compromised) return true;
      const message = `workload ${workloadId} now runs as a compromised identity`;
      if (r !== undefined) {
        unplace(r);
        pending.push({ kind: 'reject', workload: updated, code: 'IDENTITY_COMPROMISED', message, node: r.node });
      } else {
        queued.delete(workloadId);
        pending.push({ kind: 'reject', workload: updated, code: 'IDENTITY_COMPROMISED', message });
      }
      return true;
    },

    tick(nowArg) {
      const now = checkTime('now', nowArg ?? clock.now());
      const events: SchedulerEvent[] = pending;
      pending = [];
      const nodeList = [...nodes.values()];
      const reserved = new Set<string>();
      const blocked: Workload[] = [];
      for (const q of sortedQueue(now)) {
        const w = q.workload;
        const eligible = nodeList.filter((s) => staticallyEligible(w, s.node));
        if (eligible.length === 0) {
          queued.delete(w.id);
          events.push({ kind: 'reject', workload: w, code: 'SCHEDULER_UNSCHEDULABLE', message: `no node matches workload ${w.id} any more` });
          continue;
        }
        const block = (): void => {
          blocked.push(w);
          for (const s of eligible) reserved.add(s.node.id);
        };
        // A workload a blocked one must be co-located with waits with it (else it could pull the blocked
        // one's affinity onto a node that one cannot use).
        if (blocked.some((b) => b.constraints.affinity.some((e) => matchesEntry(e, w)))) {
          block();
          continue;
        }
        const candidates = eligible.filter((s) => !reserved.has(s.node.id));
        const priority = effective(w, now);
        const direct = directPlacement(w, candidates);
        if (direct !== undefined) {
          events.push({ kind: 'admit', ...place(q, direct, now, priority) });
          continue;
        }
        const plan = preemptionPlan(w, priority, candidates);
        if (plan === undefined) {
          block();
          continue;
        }
        for (const v of plan.victims) {
          unplace(v);
          queued.set(v.workload.id, { workload: v.workload, seq: v.seq });
          events.push({ kind: 'preempt', workload: v.workload, node: v.node, by: w.id });
        }
        events.push({ kind: 'admit', ...place(q, plan.state, now, priority) });
      }
      const admitted: Admission[] = [];
      const preempted: Preemption[] = [];
      const rejected: Rejection[] = [];
      for (const e of events) {
        if (e.kind === 'admit') admitted.push({ workload: e.workload, node: e.node, priority: e.priority });
        else if (e.kind === 'preempt') preempted.push({ workload: e.workload, node: e.node, by: e.by });
        else rejected.push(e.node === undefined ? { workload: e.workload, code: e.code, message: e.message } : { workload: e.workload, code: e.code, message: e.message, node: e.node });
      }
      return { at: now, admitted, preempted, rejected, events };
    },

    queue(nowArg) {
      const now = checkTime('now', nowArg ?? clock.now());
      return sortedQueue(now).map(
        (q): QueueEntry => ({ workload: q.workload, priority: effective(q.workload, now), waitedMs: Math.max(0, now - q.workload.submittedAt) }),
      );
    },

    snapshot(nowArg): SchedulerSnapshot {
      const now = checkTime('now', nowArg ?? clock.now());
      return {
        at: now,
        nodes: [...nodes.values()].map((s) => ({ ...view(s), running: [...s.ids] })),
        running: [...running.values()]
          .sort((a, b) => a.admittedAt - b.admittedAt)
          .map((r): RunningEntry => ({ workload: r.workload, node: r.node, admittedAt: r.admittedAt, priority: r.priority })),
        queue: scheduler.queue(now),
      };
    },

    status(workloadId): WorkloadState | undefined {
      const q = queued.get(workloadId);
      if (q !== undefined) return { state: 'queued', workload: q.workload };
      const r = running.get(workloadId);
      if (r !== undefined) return { state: 'running', workload: r.workload, node: r.node, priority: r.priority };
      return undefined;
    },

    addNode(node) {
      checkNode(node);
      if (nodes.has(node.id)) throw new ForgeError('ALREADY_EXISTS', `node ${node.id} already exists`, { details: { node: node.id } });
      nodes.set(node.id, { node, memoryMb: 0, cpuSlots: 0, ids: new Set() });
    },

    removeNode(nodeId) {
      const s = nodes.get(nodeId);
      if (s === undefined) throw new ForgeError('NOT_FOUND', `no node ${String(nodeId)}`, { details: { node: nodeId } });
      const requeued: Workload[] = [];
      for (const r of runningOn(s)) {
        unplace(r);
        queued.set(r.workload.id, { workload: r.workload, seq: r.seq });
        requeued.push(r.workload);
      }
      nodes.delete(nodeId);
      return requeued;
    },

    nodes() {
      return [...nodes.values()].map((s) => s.node);
    },
  };

  for (const node of options.nodes ?? []) scheduler.addNode(node);
  return scheduler;
}
