/**
 * The scheduler contract.
 *
 * @packageDocumentation
 */
import type { Clock, Result, TrustLevel } from '@forgeone/common';
import type { SchedulerPolicy } from './policy.js';
import type { SchedulerNode } from './SchedulerNode.js';
import type { QueueEntry, SchedulerSnapshot, TickResult, Workload, WorkloadSpec, WorkloadState } from './types.js';

/**
 * Admits queued workloads onto nodes at each {@link Scheduler.tick}.
 *
 * Rules that always hold, whatever the policy:
 * - **capacity**: on every node the running workloads' memory and CPU slots sum to at most its capacity,
 *   and their number to at most `maxInstances`;
 * - **constraints**: location and labels always match; anti-affinity (symmetric) always holds; affinity
 *   holds at placement;
 * - **trust**: a compromised workload (trust 0) is refused at submit and removed (queued or running) when
 *   its trust drops to 0;
 * - **order and reservation** (the head-of-line rule): a tick walks the queue in policy order. A workload
 *   that cannot be placed, even by preemption, is *blocked* and reserves every node it could ever use
 *   (location, labels and total capacity match). Workloads behind it are placed only on unreserved nodes,
 *   may preempt only there, and a workload a blocked one must be co-located with (affinity) is held. So no
 *   workload is ever placed where a workload ahead of it could have gone: nothing lower overtakes a
 *   waiting higher one, at the price of leaving a reserved node's free space idle;
 * - **preemption**: a workload that does not fit may evict, on one unreserved node, the smallest set of
 *   running workloads whose priority at admission is strictly lower than its effective priority and whose
 *   class is lower than its class (never a `critical` one): aging orders the queue, it does not let a
 *   workload evict its own class, which would have aged as much and evict back; victims go back to the
 *   queue with their original submission time;
 * - **aging**: with the default policy, waiting raises the effective priority up to `critical` and then the
 *   effective trust up to `Root`, so every admissible workload reaches the head of the queue in bounded time.
 */
export interface Scheduler {
  /** The policy in use. */
  readonly policy: SchedulerPolicy;
  /**
   * Queue a workload. Expected refusals are returned, not thrown.
   * @param spec - the workload
   * @returns the validated workload, or a ForgeError: `INVALID_ARGUMENT` (naming the field), `ALREADY_EXISTS`
   *   (id queued or running), `IDENTITY_COMPROMISED` (trust 0), `SCHEDULER_UNSCHEDULABLE` (no node matches its
   *   location and labels with enough total capacity)
   */
  submit(spec: WorkloadSpec): Result<Workload>;
  /**
   * A workload finished (its resources are freed) or is withdrawn from the queue.
   * @param workloadId - its id
   * @returns whether it was running or queued
   */
  release(workloadId: string): boolean;
  /**
   * Change a workload's trust level. At 0 (compromised) it is removed at once, queued or running, and
   * reported in the next tick's `rejected` with `IDENTITY_COMPROMISED`.
   * @param workloadId - its id
   * @param trust - the new level, 0-5
   * @returns whether the workload was known
   * @throws ForgeError `INVALID_ARGUMENT` for a level outside 0-5
   */
  setTrust(workloadId: string, trust: TrustLevel): boolean;
  /**
   * Make decisions: reject, preempt, admit.
   * @param now - the time to judge at (default the clock)
   * @returns the decisions, in order
   * @throws ForgeError `INVALID_ARGUMENT` for a negative or non-finite time
   */
  tick(now?: number): TickResult;
  /**
   * Queued workloads in the order the next tick at `now` would consider them.
   * @param now - the time (default the clock)
   * @returns the queue
   */
  queue(now?: number): readonly QueueEntry[];
  /**
   * Nodes, usage, running and queued workloads.
   * @param now - the time (default the clock)
   * @returns a snapshot (plain data)
   */
  snapshot(now?: number): SchedulerSnapshot;
  /**
   * Where a workload is.
   * @param workloadId - its id
   * @returns queued or running (with node), or undefined when unknown, finished or rejected
   */
  status(workloadId: string): WorkloadState | undefined;
  /**
   * Add a node (federation adds remote ones).
   * @param node - the node
   * @throws ForgeError `ALREADY_EXISTS` for a taken id, `INVALID_ARGUMENT` for a malformed node
   */
  addNode(node: SchedulerNode): void;
  /**
   * Remove a node; what ran on it goes back to the queue (keeping submission times).
   * @param nodeId - its id
   * @returns the workloads requeued
   * @throws ForgeError `NOT_FOUND` for an unknown node
   */
  removeNode(nodeId: string): readonly Workload[];
  /**
   * The nodes, in the order they were added.
   * @returns the nodes
   */
  nodes(): readonly SchedulerNode[];
}

/** Options of {@link createScheduler}. */
export interface SchedulerOptions {
  /** The nodes to start with (default none; add with {@link Scheduler.addNode}). */
  readonly nodes?: readonly SchedulerNode[];
  /** The ranking policy (default {@link createDefaultPolicy} with `agingMs`). */
  readonly policy?: SchedulerPolicy;
  /** The time source for submissions and ticks without a time (default the system clock). */
  readonly clock?: Clock;
  /** The aging interval of the default policy, ms (ignored when `policy` is given). */
  readonly agingMs?: number;
}
