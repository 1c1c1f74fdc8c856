/**
 * Container states and the one table of moves between them.
 *
 * @packageDocumentation
 */

/** Every container state, in the order a healthy container usually passes through them. */
export const CONTAINER_STATUSES = ['creating', 'running', 'paused', 'quarantined', 'stopping', 'stopped', 'failed'] as const;

/**
 * Where a container is in its life:
 * - `creating`: accepted, its sandbox is being built;
 * - `running`: its guest may make calls;
 * - `paused`: suspended by request; resumes where it was;
 * - `quarantined`: suspended because it is suspected; its evidence is kept;
 * - `stopping`: asked to stop, inside its grace period;
 * - `stopped`: ended normally (terminal);
 * - `failed`: ended with an error, always with a reason (terminal).
 */
export type ContainerStatus = (typeof CONTAINER_STATUSES)[number];

/** How a container is treated when it ends on its own or the kernel restarts under it. */
export const RESTART_POLICIES = ['never', 'on-failure', 'always'] as const;

/**
 * - `never`: a failed container stays failed;
 * - `on-failure`: a failed container (including one cut off by a kernel restart) is created again;
 * - `always`: like `on-failure`, and a container that stopped on its own is created again too.
 */
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/**
 * The allowed moves: `CONTAINER_TRANSITIONS[from]` lists every state `from` may go to. The terminal states
 * `stopped` and `failed` list none; leaving them is the separate restart edge (to `creating`), which only
 * {@link restartAllowed} permits.
 */
export const CONTAINER_TRANSITIONS: Readonly<Record<ContainerStatus, readonly ContainerStatus[]>> = Object.freeze({
  creating: Object.freeze(['running', 'quarantined', 'stopping', 'stopped', 'failed'] as const),
  running: Object.freeze(['paused', 'quarantined', 'stopping', 'stopped', 'failed'] as const),
  paused: Object.freeze(['running', 'quarantined', 'stopping', 'failed'] as const),
  quarantined: Object.freeze(['running', 'paused', 'stopping', 'failed'] as const),
  stopping: Object.freeze(['stopped', 'failed'] as const),
  stopped: Object.freeze([] as const),
  failed: Object.freeze([] as const),
});

/** States a container never leaves except through a restart. */
export const TERMINAL_STATUSES: readonly ContainerStatus[] = Object.freeze(['stopped', 'failed'] as const);

/**
 * Whether a state is a string naming a container state.
 * @param value - a candidate
 * @returns true for one of {@link CONTAINER_STATUSES}
 */
export function isContainerStatus(value: unknown): value is ContainerStatus {
  return typeof value === 'string' && (CONTAINER_STATUSES as readonly string[]).includes(value);
}

/**
 * Whether a state is terminal (`stopped` or `failed`).
 * @param status - a state
 * @returns true when nothing but a restart leaves it
 */
export function isTerminalStatus(status: ContainerStatus): boolean {
  return status === 'stopped' || status === 'failed';
}

/**
 * Whether the transition table allows a move (the restart edge is not in the table: see {@link restartAllowed}).
 * @param from - the current state
 * @param to - the wanted state
 * @returns true when `to` is listed for `from`
 */
export function canTransition(from: ContainerStatus, to: ContainerStatus): boolean {
  return CONTAINER_TRANSITIONS[from].includes(to);
}

/**
 * Whether a restart policy lets a container in `status` be created again.
 * @param policy - the container's restart policy
 * @param status - its current state
 * @returns true for `failed` under `on-failure`/`always`, and `stopped` under `always`
 */
export function restartAllowed(policy: RestartPolicy, status: ContainerStatus): boolean {
  if (status === 'failed') return policy !== 'never';
  if (status === 'stopped') return policy === 'always';
  return false;
}
