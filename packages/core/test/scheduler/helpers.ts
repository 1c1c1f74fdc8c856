import { TrustLevel } from '@forgeone/common';
import type { NodeCapacity, SchedulerNode, WorkloadSpec } from '../../src/index.js';
import { createLocalNode } from '../../src/index.js';

export const T0 = Date.UTC(2026, 0, 1);
export const AGING = 1000;

export function node(id: string, capacity: Partial<NodeCapacity> = {}, extra: { location?: string; labels?: Record<string, string> } = {}): SchedulerNode {
  return createLocalNode({ id, capacity: { memoryMb: 1024, cpuSlots: 4, maxInstances: 10, ...capacity }, ...extra });
}

export function spec(id: string, over: Partial<WorkloadSpec> = {}): WorkloadSpec {
  return { id, priority: 'normal', trust: TrustLevel.Verified, resources: { memoryMb: 100, cpuSlots: 1 }, submittedAt: T0, ...over };
}
