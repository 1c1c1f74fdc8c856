/**
 * Placement constraints as plain functions, shared by the scheduler and anything that must judge a
 * placement the same way (federation, explanations).
 *
 * @packageDocumentation
 */
import type { NodeCapacity, Workload } from './types.js';

/** The parts of a node the static checks read. */
export interface NodeTraits {
  /** Its location. */
  readonly location: string;
  /** Its labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** What it offers in total. */
  readonly capacity: NodeCapacity;
}

/**
 * Whether an affinity or anti-affinity entry names a workload (by id or by group).
 * @param entry - the entry
 * @param workload - the workload
 * @returns true when `entry` is the workload's id or group
 */
export function matchesEntry(entry: string, workload: Workload): boolean {
  return workload.id === entry || (workload.group !== undefined && workload.group === entry);
}

/**
 * Whether a node could ever hold a workload: location and labels match and the workload fits in the
 * node's total capacity (it would fit were the node empty).
 * @param workload - the workload
 * @param node - the node
 * @returns true when the node is eligible
 */
export function staticallyEligible(workload: Workload, node: NodeTraits): boolean {
  const c = workload.constraints;
  if (c.location !== undefined && c.location !== node.location) return false;
  for (const [k, v] of Object.entries(c.labels)) if (!Object.hasOwn(node.labels, k) || node.labels[k] !== v) return false;
  return (
    node.capacity.maxInstances >= 1 &&
    workload.resources.memoryMb <= node.capacity.memoryMb &&
    workload.resources.cpuSlots <= node.capacity.cpuSlots
  );
}

/**
 * Whether two workloads may not share a node: either one's anti-affinity names the other.
 * @param a - one workload
 * @param b - another
 * @returns true when they conflict
 */
export function antiAffinityConflict(a: Workload, b: Workload): boolean {
  if (a.id === b.id) return false;
  return a.constraints.antiAffinity.some((e) => matchesEntry(e, b)) || b.constraints.antiAffinity.some((e) => matchesEntry(e, a));
}

/**
 * Whether placing a workload on a node satisfies its affinity: for each entry, when some other running
 * workload matches it, one matching workload runs on that node.
 * @param workload - the workload to place
 * @param nodeId - the candidate node
 * @param running - every running workload with its node
 * @returns true when every entry is satisfied
 */
export function affinitySatisfied(workload: Workload, nodeId: string, running: Iterable<{ readonly workload: Workload; readonly node: string }>): boolean {
  const entries = workload.constraints.affinity;
  if (entries.length === 0) return true;
  const list = [...running];
  for (const e of entries) {
    let any = false;
    let here = false;
    for (const r of list) {
      if (r.workload.id === workload.id || !matchesEntry(e, r.workload)) continue;
      any = true;
      if (r.node === nodeId) {
        here = true;
        break;
      }
    }
    if (any && !here) return false;
  }
  return true;
}
