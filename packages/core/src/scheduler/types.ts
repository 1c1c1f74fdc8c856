/**
 * Scheduler vocabulary: priority classes, workloads, constraints, capacities and tick decisions.
 *
 * @packageDocumentation
 */
import type { ErrorCode, TrustLevel } from '@forgeone/common';

/** Priority classes, lowest first. */
export const PRIORITY_CLASSES = ['background', 'low', 'normal', 'high', 'critical'] as const;

/** A priority class. `critical` is never preempted. */
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** The rank of each class: `background` 0 … `critical` 4. Effective priorities use the same scale. */
export const PRIORITY_RANK: Readonly<Record<PriorityClass, number>> = Object.freeze({
  background: 0,
  low: 1,
  normal: 2,
  high: 3,
  critical: 4,
});

/** The highest rank (`critical`). */
export const MAX_PRIORITY_RANK = 4;

/** What a workload needs from a node. */
export interface WorkloadResources {
  /** Memory, MiB (a non-negative integer). */
  readonly memoryMb: number;
  /** CPU slots (a non-negative integer). */
  readonly cpuSlots: number;
}

/**
 * Where a workload may run. An entry of `affinity`/`antiAffinity` names a workload id or a group
 * (see {@link Workload.group}).
 */
export interface WorkloadConstraints {
  /** The node's location must equal this. */
  readonly location?: string;
  /** Every label must be present on the node with the same value. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * For each entry: when any workload matching it is running at placement time, this workload goes to a
   * node where one of them runs. Checked at placement only (a later move of the target does not evict).
   */
  readonly affinity?: readonly string[];
  /**
   * Never on the same node as a running workload matching an entry. Symmetric: a workload is also kept away
   * from nodes running workloads whose anti-affinity names it. Holds at all times.
   */
  readonly antiAffinity?: readonly string[];
}

/** A workload as given to {@link Scheduler.submit}. */
export interface WorkloadSpec {
  /** A unique id, 1-128 of `A-Z a-z 0-9 . _ : / -`. */
  readonly id: string;
  /** Its priority class. */
  readonly priority: PriorityClass;
  /** The trust level of its identity, 0-5; 0 (`Compromised`) is refused. */
  readonly trust: TrustLevel;
  /** What it needs. */
  readonly resources: WorkloadResources;
  /** Where it may run. */
  readonly constraints?: WorkloadConstraints;
  /** A group name other workloads' affinity and anti-affinity can name (e.g. `web`). */
  readonly group?: string;
  /** When it was submitted, ms since the epoch (default the scheduler's clock); aging counts from here. */
  readonly submittedAt?: number;
}

/** A validated, frozen workload. */
export interface Workload {
  /** Its id. */
  readonly id: string;
  /** Its priority class. */
  readonly priority: PriorityClass;
  /** The trust level of its identity. */
  readonly trust: TrustLevel;
  /** What it needs. */
  readonly resources: WorkloadResources;
  /** Where it may run (absent lists are empty). */
  readonly constraints: {
    readonly location?: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly affinity: readonly string[];
    readonly antiAffinity: readonly string[];
  };
  /** Its group, when it has one. */
  readonly group?: string;
  /** When it was submitted, ms since the epoch. */
  readonly submittedAt: number;
}

/** What a node offers. */
export interface NodeCapacity {
  /** Memory, MiB. */
  readonly memoryMb: number;
  /** CPU slots. */
  readonly cpuSlots: number;
  /** The most workloads it runs at once. */
  readonly maxInstances: number;
}

/** What is in use on a node. */
export interface NodeUsage {
  /** Memory in use, MiB. */
  readonly memoryMb: number;
  /** CPU slots in use. */
  readonly cpuSlots: number;
  /** Workloads running. */
  readonly instances: number;
}

/** A node as policies and snapshots see it. */
export interface NodeView {
  /** Its id. */
  readonly id: string;
  /** Its location. */
  readonly location: string;
  /** Its labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** What it offers. */
  readonly capacity: NodeCapacity;
  /** What is in use. */
  readonly used: NodeUsage;
}

/** A workload placed by a tick. */
export interface Admission {
  /** The workload. */
  readonly workload: Workload;
  /** The node it goes to. */
  readonly node: string;
  /** Its effective priority when admitted (it keeps it while it runs, for preemption). */
  readonly priority: number;
}

/** A running workload evicted to make room; it is back in the queue (keeping its submission time). */
export interface Preemption {
  /** The evicted workload. */
  readonly workload: Workload;
  /** The node it was evicted from. */
  readonly node: string;
  /** The id of the workload it made room for. */
  readonly by: string;
}

/** A workload taken out of the queue for good, or stopped while running. */
export interface Rejection {
  /** The workload. */
  readonly workload: Workload;
  /** Why: `IDENTITY_COMPROMISED` or `SCHEDULER_UNSCHEDULABLE`. */
  readonly code: ErrorCode;
  /** Why, for people. */
  readonly message: string;
  /** When it was running: the node it was removed from. */
  readonly node?: string;
}

/** One decision of a tick, in the order it was made. */
export type SchedulerEvent =
  | ({ readonly kind: 'reject' } & Rejection)
  | ({ readonly kind: 'preempt' } & Preemption)
  | ({ readonly kind: 'admit' } & Admission);

/** What a tick decided. */
export interface TickResult {
  /** The time the tick judged at. */
  readonly at: number;
  /** Workloads placed, in order. */
  readonly admitted: readonly Admission[];
  /** Workloads evicted for higher-priority ones. */
  readonly preempted: readonly Preemption[];
  /**
   * Workloads removed for good since the last tick: compromised (queued or running) or no longer
   * placeable on any node.
   */
  readonly rejected: readonly Rejection[];
  /** Every decision above, in the order made (rejections first, then preemptions before the admission they serve). */
  readonly events: readonly SchedulerEvent[];
}

/** A queued workload as {@link Scheduler.queue} reports it. */
export interface QueueEntry {
  /** The workload. */
  readonly workload: Workload;
  /** Its effective priority now (class rank raised by aging, at most `critical`). */
  readonly priority: number;
  /** How long it has waited, ms. */
  readonly waitedMs: number;
}

/** A running workload as {@link Scheduler.snapshot} reports it. */
export interface RunningEntry {
  /** The workload. */
  readonly workload: Workload;
  /** Its node. */
  readonly node: string;
  /** When it was admitted. */
  readonly admittedAt: number;
  /** Its effective priority at admission. */
  readonly priority: number;
}

/** The scheduler's whole state at one time. */
export interface SchedulerSnapshot {
  /** The time it describes. */
  readonly at: number;
  /** Every node with its usage. */
  readonly nodes: readonly (NodeView & { readonly running: readonly string[] })[];
  /** Running workloads, by admission order. */
  readonly running: readonly RunningEntry[];
  /** Queued workloads, in the order a tick would consider them. */
  readonly queue: readonly QueueEntry[];
}

/** Where a workload is. */
export type WorkloadState =
  | { readonly state: 'queued'; readonly workload: Workload }
  | { readonly state: 'running'; readonly workload: Workload; readonly node: string; readonly priority: number };
