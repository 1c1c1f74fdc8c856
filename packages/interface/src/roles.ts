/**
 * The roles an API token carries and what each may do.
 *
 * @packageDocumentation
 */

/** Every role, from the most to the least powerful. */
export const API_ROLES = ['admin', 'operator', 'auditor', 'reader'] as const;

/**
 * A role:
 * - `admin`: everything, including replacing the policy;
 * - `operator`: runs workloads: uploads packages, launches, pauses, stops, releases and terminates containers;
 *   reads traces and the red zone;
 * - `auditor`: reads everything that is evidence: the audit log, traces, the red zone, policy explanations;
 * - `reader`: reads the state: boot, packages, containers, the policy, metrics, the event stream.
 */
export type ApiRole = (typeof API_ROLES)[number];

/** Who may call a route: a list of roles, or `public` (no token: only health). */
export type RouteAccess = readonly ApiRole[] | 'public';

/** Every role: routes that only read the state. */
export const READ: readonly ApiRole[] = API_ROLES;
/** Routes that read evidence and the red zone (traces, quarantine records, explanations). */
export const INSPECT: readonly ApiRole[] = ['admin', 'operator', 'auditor'];
/** Routes that run or change workloads. */
export const OPERATE: readonly ApiRole[] = ['admin', 'operator'];
/** Routes that read the audit log. */
export const AUDIT: readonly ApiRole[] = ['admin', 'auditor'];
/** Routes only an administrator may call. */
export const ADMIN: readonly ApiRole[] = ['admin'];

/**
 * Whether a string names a role.
 * @param value - a candidate
 * @returns true for `admin`, `operator`, `auditor` or `reader`
 */
export function isApiRole(value: unknown): value is ApiRole {
  return typeof value === 'string' && (API_ROLES as readonly string[]).includes(value);
}

/**
 * Whether a role may call a route.
 * @param access - the route's access list
 * @param role - the caller's role
 * @returns true when allowed
 */
export function roleAllows(access: RouteAccess, role: ApiRole): boolean {
  return access === 'public' || access.includes(role);
}
