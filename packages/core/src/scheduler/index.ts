/**
 * The scheduler: priority classes with aging, admission by resources, trust ordering, placement
 * constraints, reservation for blocked workloads and preemption, over an abstract set of nodes.
 *
 * @packageDocumentation
 */
export { PRIORITY_CLASSES, PRIORITY_RANK, MAX_PRIORITY_RANK } from './types.js';
export type {
  PriorityClass,
  Workload,
  WorkloadSpec,
  WorkloadResources,
  WorkloadConstraints,
  NodeCapacity,
  NodeUsage,
  NodeView,
  Admission,
  Preemption,
  Rejection,
  SchedulerEvent,
  TickResult,
  QueueEntry,
  RunningEntry,
  SchedulerSnapshot,
  WorkloadState,
} from './types.js';
export { createLocalNode, NodeOptionsSchema } from './SchedulerNode.js';
export type { SchedulerNode, LocalNodeOptions } from './SchedulerNode.js';
export { createDefaultPolicy, DEFAULT_AGING_MS } from './policy.js';
export type { SchedulerPolicy, DefaultSchedulerPolicy, DefaultPolicyOptions } from './policy.js';
export { matchesEntry, staticallyEligible, antiAffinityConflict, affinitySatisfied } from './constraints.js';
export type { NodeTraits } from './constraints.js';
export { WorkloadSpecSchema, parseWorkload } from './validate.js';
export type { Scheduler, SchedulerOptions } from './Scheduler.js';
export { createScheduler } from './createScheduler.js';
