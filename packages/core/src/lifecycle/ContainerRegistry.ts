/**
 * The contract between the kernel and the container state it keeps. The kernel runs the wasm; the
 * registry remembers, durably, what state every container is in and why. Implementations are swappable:
 * the default is {@link createContainerRegistry} over any `Store`.
 *
 * @packageDocumentation
 */
import type { Clock, IdentityContext } from '@forgeone/common';
import type { Store } from '@forgeone/store';
import type { ContainerRecord, PolicyRef, ResourceUsage, StatusReason } from './record.js';
import type { ContainerStatus, RestartPolicy } from './status.js';

/**
 * The parts of a verified package the registry records. A `VerifiedPackage` from `@forgeone/crypto`
 * fits as is; the registry does not verify, the kernel does before it launches.
 */
export interface LaunchPackage {
  /** The manifest's name and version. */
  readonly manifest: { readonly name: string; readonly version: string };
  /** SHA3-256 of the signed manifest bytes, 64 lowercase hex digits. */
  readonly digest: string;
}

/** What {@link ContainerRegistry.launch} needs. */
export interface LaunchInput {
  /** The verified package to run. */
  readonly package: LaunchPackage;
  /** Who it runs as. A compromised identity is refused. */
  readonly identity: IdentityContext;
  /** The policy it runs under. */
  readonly policy: PolicyRef;
  /** A readable name, 1-63 of `A-Z a-z 0-9 . _ -` starting alphanumeric; default derived from the package name. */
  readonly name?: string;
  /** Default `never`. */
  readonly restartPolicy?: RestartPolicy;
  /** A `ctr_` id to use (default a new one); for kernels that allocate ids themselves. */
  readonly id?: string;
}

/** Options of {@link ContainerRegistry.stop}. */
export interface StopOptions {
  /** How long the guest may take to finish before the kernel terminates it, ms (default 0). */
  readonly graceMs?: number;
  /** Why it is being stopped. */
  readonly reason?: StatusReason;
}

/** Which records {@link ContainerRegistry.list} returns. */
export interface ContainerFilter {
  /** Only these states. */
  readonly status?: ContainerStatus | readonly ContainerStatus[];
  /** Only containers of this tenant. */
  readonly tenant?: string;
}

/** A stored record that could not be read back; it is left in the store untouched, as evidence. */
export interface CorruptRecord {
  /** Its key in the namespace. */
  readonly key: string;
  /** The `STATE_CORRUPT` message naming the bad field. */
  readonly message: string;
}

/** What {@link ContainerRegistry.recover} did. */
export interface RecoveryReport {
  /** Containers that were active and are now `failed` with reason `KERNEL_RESTART`. */
  readonly failed: readonly ContainerRecord[];
  /** Containers whose restart policy brings them back: now `creating`; the kernel must start them. */
  readonly toRestart: readonly ContainerRecord[];
  /** Containers that stay quarantined (their evidence is kept). */
  readonly quarantined: readonly ContainerRecord[];
  /** Stored records that could not be read. */
  readonly corrupt: readonly CorruptRecord[];
}

/**
 * Durable container state. Every change is validated against the transition table and is durable in the
 * store before its promise resolves; changes apply one at a time in call order, so concurrent callers never
 * lose an update. Reads ({@link ContainerRegistry.get}, {@link ContainerRegistry.list}) are synchronous and
 * see only durable state.
 *
 * Errors: `NOT_FOUND` for an unknown id, `CONTAINER_INVALID_TRANSITION` for a move the table refuses,
 * `INVALID_ARGUMENT` naming the bad field, `IDENTITY_COMPROMISED` at launch, `ALREADY_EXISTS` for a taken
 * id or name, and the store's `IO_ERROR`/`LIMIT_EXCEEDED`.
 */
export interface ContainerRegistry {
  /** Records found in the store at open that could not be read (they are skipped, never deleted). */
  readonly corrupt: readonly CorruptRecord[];
  /**
   * Record a new container in `creating`.
   * @param input - package, identity, policy, name, restart policy
   * @returns the new record
   * @throws ForgeError `IDENTITY_COMPROMISED`, `ALREADY_EXISTS`, `INVALID_ARGUMENT`
   */
  launch(input: LaunchInput): Promise<ContainerRecord>;
  /**
   * One record.
   * @param id - the container id
   * @returns the record, or undefined
   */
  get(id: string): ContainerRecord | undefined;
  /**
   * Records, oldest first (by launch time; launch order within one millisecond).
   * @param filter - states and tenant to keep
   * @returns the matching records
   */
  list(filter?: ContainerFilter): readonly ContainerRecord[];
  /**
   * Move a container to any state the transition table allows.
   * @param id - the container id
   * @param to - the wanted state
   * @param reason - why (required for `failed` with a code, and for `quarantined`)
   * @returns the new record
   * @throws ForgeError `NOT_FOUND`, `CONTAINER_INVALID_TRANSITION`, `INVALID_ARGUMENT`
   */
  transition(id: string, to: ContainerStatus, reason?: StatusReason): Promise<ContainerRecord>;
  /**
   * `creating` → `running`, once the sandbox is built (from any other state it is refused; use `resume`).
   * @param id - the container id
   * @returns the new record
   * @throws ForgeError as {@link ContainerRegistry.transition}
   */
  start(id: string): Promise<ContainerRecord>;
  /**
   * `running` → `paused`.
   * @param id - the container id
   * @param reason - why
   * @returns the new record
   * @throws ForgeError as {@link ContainerRegistry.transition}
   */
  pause(id: string, reason?: StatusReason): Promise<ContainerRecord>;
  /**
   * `paused` or `quarantined` → `running`.
   * @param id - the container id
   * @param reason - why (e.g. who lifted the quarantine)
   * @returns the new record
   * @throws ForgeError as {@link ContainerRegistry.transition}
   */
  resume(id: string, reason?: StatusReason): Promise<ContainerRecord>;
  /**
   * Suspend a suspected container, keeping its state as evidence.
   * @param id - the container id
   * @param reason - why (required)
   * @returns the new record
   * @throws ForgeError as {@link ContainerRegistry.transition}
   */
  quarantine(id: string, reason: StatusReason): Promise<ContainerRecord>;
  /**
   * Ask a container to stop: → `stopping` with `stopDeadline = now + graceMs`. The kernel calls
   * {@link ContainerRegistry.markStopped} when the guest has ended, and terminates the ones
   * {@link ContainerRegistry.overdueStops} lists.
   * @param id - the container id
   * @param options - grace period and reason
   * @returns the new record
   * @throws ForgeError as {@link ContainerRegistry.transition}
   */
  stop(id: string, options?: StopOptions): Promise<ContainerRecord>;
  /**
   * → `stopped`: the guest ended (after a stop request, on its own, or before it ever ran).
   * @param id - the container id
   * @param reason - e.g. `{ message: 'terminated after grace period' }`
   * @returns the new record
   * @throws ForgeError as {@link ContainerRegistry.transition}
   */
  markStopped(id: string, reason?: StatusReason): Promise<ContainerRecord>;
  /**
   * → `failed` with a reason.
   * @param id - the container id
   * @param reason - the failure, with an error code (e.g. `WASM_TRAP`)
   * @returns the new record
   * @throws ForgeError as {@link ContainerRegistry.transition}
   */
  fail(id: string, reason: StatusReason & { readonly code: NonNullable<StatusReason['code']> }): Promise<ContainerRecord>;
  /**
   * The restart edge: `failed` (policy `on-failure`/`always`) or `stopped` (policy `always`) → `creating`.
   * @param id - the container id
   * @param reason - why
   * @returns the new record
   * @throws ForgeError `NOT_FOUND`, `CONTAINER_INVALID_TRANSITION` when the policy does not allow it
   */
  restart(id: string, reason?: StatusReason): Promise<ContainerRecord>;
  /**
   * Add resource usage: CPU, calls and denials accumulate, memory keeps its peak. Allowed in every state
   * (a last report may arrive after the container ended).
   * @param id - the container id
   * @param usage - usage since the last report
   * @returns the new record
   * @throws ForgeError `NOT_FOUND`, `INVALID_ARGUMENT` naming the bad field
   */
  account(id: string, usage: ResourceUsage): Promise<ContainerRecord>;
  /**
   * Containers in `stopping` whose grace period has ended.
   * @param now - the time to judge at (default the registry's clock)
   * @returns those records, oldest first
   */
  overdueStops(now?: number): readonly ContainerRecord[];
  /**
   * After a kernel restart: every container that was `creating`, `running` or `paused` becomes `failed`
   * with reason `KERNEL_RESTART`, then, when its restart policy is `on-failure` or `always`, `creating` again
   * (listed in `toRestart`). A container that was `stopping` becomes `failed` and is never restarted (it was
   * being stopped on request). `quarantined` containers stay quarantined. Call it once, right after opening;
   * later calls return the same report and change nothing.
   * @returns what was done
   * @throws ForgeError the store's `IO_ERROR`
   */
  recover(): Promise<RecoveryReport>;
  /**
   * Delete the record of a terminal container from the store.
   * @param id - the container id
   * @returns whether it existed
   * @throws ForgeError `CONTAINER_INVALID_TRANSITION` when the container is not terminal
   */
  remove(id: string): Promise<boolean>;
}

/** Options of {@link createContainerRegistry}. */
export interface ContainerRegistryOptions {
  /** Where records live (one key per container in a kv namespace). */
  readonly store: Store;
  /** The time source (default the system clock). */
  readonly clock?: Clock;
  /** The kv namespace (default `containers`). */
  readonly namespace?: string;
  /** History entries kept per record (default 32). */
  readonly maxHistory?: number;
}
