/**
 * A place workloads run. One local node today; federation adds nodes that stand for other kernels.
 *
 * @packageDocumentation
 */
import { ForgeError } from '@forgeone/common';
import { z } from 'zod';
import { firstIssue } from './validate.js';
import type { NodeCapacity, Workload } from './types.js';

/**
 * A node the scheduler places workloads on. The scheduler is the authority on what runs where: it checks
 * capacity and constraints, then tells the node with {@link SchedulerNode.place} / {@link SchedulerNode.evict}.
 * A remote node forwards these to its kernel. Neither may throw.
 */
export interface SchedulerNode {
  /** A unique id. */
  readonly id: string;
  /** Where it is (a region, a rack): matched against {@link WorkloadConstraints.location}. */
  readonly location: string;
  /** Hardware and other labels (e.g. `{ gpu: 'a100', arch: 'x86_64' }`). */
  readonly labels: Readonly<Record<string, string>>;
  /** What it offers. */
  readonly capacity: NodeCapacity;
  /**
   * The ids of the workloads placed here, in placement order.
   * @returns the ids
   */
  running(): readonly string[];
  /**
   * A workload was placed here.
   * @param workload - the workload
   */
  place(workload: Workload): void;
  /**
   * A workload left (finished, preempted or compromised).
   * @param workloadId - its id
   */
  evict(workloadId: string): void;
}

/** Options of {@link createLocalNode}. */
export interface LocalNodeOptions {
  /** Default `local`. */
  readonly id?: string;
  /** Default `local`. */
  readonly location?: string;
  /** Default none. */
  readonly labels?: Readonly<Record<string, string>>;
  /** What it offers. */
  readonly capacity: NodeCapacity;
}

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, '1-128 of A-Z a-z 0-9 . _ : / - starting alphanumeric');
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Validates node descriptions: exported so remote node factories check the same rules. */
export const NodeOptionsSchema = z.strictObject({
  id: Name.optional(),
  location: Name.optional(),
  labels: z.record(Name, z.string().max(256)).optional(),
  capacity: z.strictObject({ memoryMb: Count, cpuSlots: Count, maxInstances: Count }),
});

/**
 * A node standing for this kernel: it only keeps the ids of what runs on it.
 * @param options - id, location, labels, capacity
 * @returns the node
 * @throws ForgeError `INVALID_ARGUMENT` naming the bad field (capacities are non-negative integers)
 * @example
 * ```ts
 * const node = createLocalNode({ capacity: { memoryMb: 4096, cpuSlots: 4, maxInstances: 16 } });
 * ```
 */
export function createLocalNode(options: LocalNodeOptions): SchedulerNode {
  const parsed = NodeOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error, 'node');
    throw new ForgeError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
  }
  const o = parsed.data;
  const placed = new Set<string>();
  return Object.freeze({
    id: o.id ?? 'local',
    location: o.location ?? 'local',
    labels: Object.freeze({ ...(o.labels ?? {}) }),
    capacity: Object.freeze({ ...o.capacity }),
    running: () => [...placed],
    place: (w: Workload) => {
      placed.add(w.id);
    },
    evict: (id: string) => {
      placed.delete(id);
    },
  });
}
