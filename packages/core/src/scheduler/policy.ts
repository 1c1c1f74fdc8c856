/**
 * Scheduling policies: how the queue is ordered and which node a workload prefers.
 *
 * @packageDocumentation
 */
import { ForgeError, TrustLevel } from '@forgeone/common';
import { MAX_PRIORITY_RANK, PRIORITY_RANK, type NodeView, type Workload } from './types.js';

/**
 * Decides order and preference. The scheduler keeps the rules that must always hold (capacity, constraints,
 * no compromised identity, reservation for blocked workloads, preemption only of strictly lower priority);
 * a policy only ranks.
 */
export interface SchedulerPolicy {
  /** A name for logs and snapshots. */
  readonly name: string;
  /**
   * The effective priority of a queued workload: its class rank (0 = background … 4 = critical), possibly
   * raised by waiting. It must not decrease as `now` grows and is clamped to 0-4 by the scheduler.
   * @param workload - the workload
   * @param now - the time, ms since the epoch
   * @returns a rank 0-4
   */
  effectivePriority(workload: Workload, now: number): number;
  /**
   * Queue order. Ties left at 0 are broken by submission order.
   * @param a - one workload
   * @param b - another
   * @param now - the time, ms since the epoch
   * @returns negative when `a` goes first, positive when `b` does, 0 for a tie
   */
  compare(a: Workload, b: Workload, now: number): number;
  /**
   * How much a workload prefers a node it can be placed on. Higher wins; ties go to the node added first.
   * @param workload - the workload
   * @param node - a node that can take it now
   * @returns a finite score
   */
  scoreNode(workload: Workload, node: NodeView): number;
}

/** The default policy, with its aging arithmetic exposed for explanations and tests. */
export interface DefaultSchedulerPolicy extends SchedulerPolicy {
  /** One aging interval, ms. */
  readonly agingMs: number;
  /**
   * The trust level a workload is ordered by: its own, raised one level per aging interval it has waited
   * beyond reaching `critical`, at most `Root`. This keeps a low-trust workload from waiting forever behind
   * a stream of high-trust critical ones.
   * @param workload - the workload
   * @param now - the time, ms since the epoch
   * @returns a trust level 0-5
   */
  effectiveTrust(workload: Workload, now: number): number;
}

/** Options of {@link createDefaultPolicy}. */
export interface DefaultPolicyOptions {
  /** Waiting this long raises a workload one priority class (default 30 000 ms). */
  readonly agingMs?: number;
}

/** The default aging interval, ms. */
export const DEFAULT_AGING_MS = 30_000;

/**
 * The default policy:
 * - effective priority = class rank + one per `agingMs` waited, at most `critical`;
 * - order: effective priority (higher first), then effective trust (higher first; see
 *   {@link DefaultSchedulerPolicy.effectiveTrust}), then submission time (earlier first);
 * - node preference: best fit (the node left with the least free memory and CPU, relative to its size).
 * @param options - the aging interval
 * @returns the policy
 * @throws ForgeError `INVALID_ARGUMENT` when `agingMs` is not a positive integer
 * @example
 * ```ts
 * const policy = createDefaultPolicy({ agingMs: 10_000 });
 * ```
 */
export function createDefaultPolicy(options: DefaultPolicyOptions = {}): DefaultSchedulerPolicy {
  const agingMs = options.agingMs ?? DEFAULT_AGING_MS;
  if (!Number.isSafeInteger(agingMs) || agingMs < 1) {
    throw new ForgeError('INVALID_ARGUMENT', `agingMs: must be a positive integer of ms, got ${String(options.agingMs)}`, { details: { field: 'agingMs' } });
  }
  const intervals = (w: Workload, now: number): number => Math.floor(Math.max(0, now - w.submittedAt) / agingMs);
  const effectivePriority = (w: Workload, now: number): number => Math.min(MAX_PRIORITY_RANK, PRIORITY_RANK[w.priority] + intervals(w, now));
  const effectiveTrust = (w: Workload, now: number): number => {
    const beyond = Math.max(0, PRIORITY_RANK[w.priority] + intervals(w, now) - MAX_PRIORITY_RANK);
    return Math.min(TrustLevel.Root, w.trust + beyond);
  };
  return Object.freeze({
    name: 'default',
    agingMs,
    effectivePriority,
    effectiveTrust,
    compare(a: Workload, b: Workload, now: number): number {
      return (
        effectivePriority(b, now) - effectivePriority(a, now) ||
        effectiveTrust(b, now) - effectiveTrust(a, now) ||
        a.submittedAt - b.submittedAt
      );
    },
    scoreNode(w: Workload, node: NodeView): number {
      const memLeft = node.capacity.memoryMb - node.used.memoryMb - w.resources.memoryMb;
      const cpuLeft = node.capacity.cpuSlots - node.used.cpuSlots - w.resources.cpuSlots;
      return -(memLeft / Math.max(1, node.capacity.memoryMb) + cpuLeft / Math.max(1, node.capacity.cpuSlots));
    },
  });
}
