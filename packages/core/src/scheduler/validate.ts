/**
 * Input validation for the scheduler.
 *
 * @packageDocumentation
 */
import { ForgeError, TrustLevel, formatFieldPath, fail, ok, type Result } from '@forgeone/common';
import { z } from 'zod';
import { PRIORITY_CLASSES, type Workload, type WorkloadSpec } from './types.js';

/**
 * The first issue of a zod error as a field path and message.
 * @param error - a zod error
 * @param root - the name of the validated value, prefixed to the path
 * @returns the field (e.g. `workload.resources.memoryMb`) and message
 */
export function firstIssue(error: z.ZodError, root: string): { field: string; message: string } {
  const issue = error.issues[0];
  const path: PropertyKey[] = [root, ...(issue?.path ?? [])];
  // An unknown key is reported at its parent; name the key itself.
  if (issue?.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  return { field: formatFieldPath(path), message: issue?.message ?? 'invalid' };
}

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, '1-128 of A-Z a-z 0-9 . _ : / - starting alphanumeric');
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Validates {@link WorkloadSpec}s. */
export const WorkloadSpecSchema = z.strictObject({
  id: Name,
  priority: z.enum(PRIORITY_CLASSES),
  trust: z.number().int().min(TrustLevel.Compromised).max(TrustLevel.Root),
  resources: z.strictObject({ memoryMb: Count, cpuSlots: Count }),
  constraints: z
    .strictObject({
      location: Name.optional(),
      labels: z.record(Name, z.string().max(256)).optional(),
      affinity: z.array(Name).max(64).optional(),
      antiAffinity: z.array(Name).max(64).optional(),
    })
    .optional(),
  group: Name.optional(),
  submittedAt: Count.optional(),
});

/**
 * Validate a workload spec and fill its defaults.
 * @param spec - the input
 * @param now - the submission time to use when the spec has none
 * @returns the frozen workload, or `INVALID_ARGUMENT` naming the bad field
 */
export function parseWorkload(spec: WorkloadSpec, now: number): Result<Workload> {
  const parsed = WorkloadSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error, 'workload');
    return fail('INVALID_ARGUMENT', `${field}: ${message}`, { field });
  }
  const s = parsed.data;
  const c = s.constraints ?? {};
  const constraints = Object.freeze({
    ...(c.location === undefined ? {} : { location: c.location }),
    labels: Object.freeze({ ...(c.labels ?? {}) }),
    affinity: Object.freeze([...new Set(c.affinity ?? [])]),
    antiAffinity: Object.freeze([...new Set(c.antiAffinity ?? [])]),
  });
  const workload: Workload = Object.freeze({
    id: s.id,
    priority: s.priority,
    trust: s.trust as TrustLevel,
    resources: Object.freeze({ memoryMb: s.resources.memoryMb, cpuSlots: s.resources.cpuSlots }),
    constraints,
    ...(s.group === undefined ? {} : { group: s.group }),
    submittedAt: s.submittedAt ?? now,
  });
  return ok(workload);
}

/**
 * Throw for a non-finite or negative time.
 * @param field - the option's name
 * @param value - the value
 * @returns the value
 * @throws ForgeError `INVALID_ARGUMENT`
 */
export function checkTime(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ForgeError('INVALID_ARGUMENT', `${field}: must be a non-negative number of ms, got ${String(value)}`, { details: { field } });
  }
  return value;
}
