import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { createIdentity, type IdentityContext, type SyscallTable } from '@forgeone/common';
import { compilePolicy, type CallContext, type CompiledPolicy, type Decision, type EnforcementMode, type Policy, type Tightening } from '@forgeone/trust';
import { CONTROL_POLICY_EPOCH, CONTROL_STATE, ContainerState, Gate, type GateOptions, type GatePolicy } from '../gate/index.js';
import type { GuestClock } from './clock.js';
import type { PolicyUpdate, SandboxPolicy } from './types.js';

/** A policy update as posted to the worker: the update and the epoch it belongs to. */
export interface PolicyMessage {
  /** The epoch the main thread stored in `CONTROL_POLICY_EPOCH` after posting. */
  readonly epoch: number;
  /** The change. */
  readonly update: PolicyUpdate;
}

const DENY_ALL: Decision = Object.freeze({
  verdict: 'deny',
  rule: null,
  reason: 'the container has no valid policy: every call is denied',
  rateLimited: false,
  code: 'POLICY_DENIED',
});

/**
 * Worker side of a container's policy: compiled in the worker, replaced at the next decision after the main
 * thread posts an update and bumps `CONTROL_POLICY_EPOCH` (one Atomics.load per call otherwise). Fails
 * closed: no policy, or an update that does not compile, denies every call.
 */
export class LivePolicy implements GatePolicy {
  mode: EnforcementMode;
  readonly #control: Int32Array;
  readonly #port: MessagePort | undefined;
  readonly #syscalls: SyscallTable;
  readonly #identity: IdentityContext | undefined;
  readonly #listeners = new Set<(update: PolicyUpdate) => void>();
  #document: Policy | undefined;
  #tightenings: readonly Tightening[];
  #program: CompiledPolicy | null = null;
  #epoch: number;
  /** Why the policy fails closed, when it does. */
  error: unknown = undefined;

  /**
   * @param initial - the container's starting policy, or undefined for deny-all
   * @param syscalls - the container's syscall table
   * @param control - the control array
   * @param port - where updates arrive
   */
  constructor(initial: SandboxPolicy | undefined, syscalls: SyscallTable, control: Int32Array, port: MessagePort | undefined) {
    this.#syscalls = syscalls;
    this.#control = control;
    this.#port = port;
    this.#epoch = Atomics.load(control, CONTROL_POLICY_EPOCH);
    this.mode = initial?.mode ?? 'enforce';
    this.#document = initial?.document;
    this.#tightenings = initial?.tightenings ?? [];
    let identity: IdentityContext | undefined;
    try {
      identity = initial === undefined ? undefined : createIdentity(initial.identity);
    } catch (e) {
      this.error = e;
    }
    this.#identity = identity;
    this.#compile(undefined);
  }

  #compile(previous: CompiledPolicy | null | undefined): void {
    if (this.#document === undefined || this.#identity === undefined) {
      this.#program = null;
      return;
    }
    try {
      const buckets = previous?.exportBuckets();
      this.#program = compilePolicy(this.#document, { identity: this.#identity, syscalls: this.#syscalls }, buckets === undefined ? { tightenings: this.#tightenings } : { buckets, tightenings: this.#tightenings });
      this.error = undefined;
    } catch (e) {
      this.#program = null;
      this.error = e;
    }
  }

  /**
   * Decide a call with the newest policy.
   * @param syscallId - interned id
   * @param ctx - the call context
   * @returns the decision
   */
  decide(syscallId: number, ctx: CallContext): Decision {
    if (Atomics.load(this.#control, CONTROL_POLICY_EPOCH) !== this.#epoch) this.poll();
    const program = this.#program;
    return program === null ? DENY_ALL : program.decide(syscallId, ctx);
  }

  /**
   * Apply every update posted so far.
   * @returns true when at least one update was applied
   */
  poll(): boolean {
    const port = this.#port;
    if (port === undefined) return false;
    let applied = false;
    for (;;) {
      const m = receiveMessageOnPort(port);
      if (m === undefined) break;
      const { epoch, update } = m.message as PolicyMessage;
      const previous = this.#program;
      if (update.mode !== undefined) this.mode = update.mode;
      if (update.tightenings !== undefined) this.#tightenings = update.tightenings;
      if (update.document !== undefined) this.#document = update.document;
      if (update.document !== undefined || update.tightenings !== undefined) this.#compile(previous);
      this.#epoch = epoch;
      applied = true;
      for (const l of this.#listeners) l(update);
    }
    return applied;
  }

  /**
   * Listen for applied updates.
   * @param cb - receives each update
   * @returns removes the listener
   */
  onUpdate(cb: (update: PolicyUpdate) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }
}

/**
 * A gate that pauses the guest clock for the length of every host call, so CPU budgets count guest time
 * only. Same hot path as {@link Gate} plus two clock marks and one state load (no allocation). When the
 * container is quarantined it calls `onHold` first — before the call blocks, and after a call whose
 * decision quarantined the container — so the kernel gets the records up to the quarantine.
 *
 * Known gap: the flag is read here and again inside {@link Gate.enter}; when the kernel sets it in the few
 * instructions between the two reads, the call blocks without `onHold` (its records are flushed at release
 * or lost at termination). Closing it needs a hook inside `Gate.enter`'s wait loop.
 */
export class MeteredGate extends Gate {
  readonly #clock: GuestClock;
  readonly #onHold: (() => void) | undefined;

  /**
   * @param options - the gate's options
   * @param clock - the container's guest clock
   * @param onHold - called when a call leaves the container quarantined (e.g. to flush records); pass the same
   *   function as `options.onHold` for calls that find it quarantined
   */
  constructor(options: GateOptions, clock: GuestClock, onHold?: () => void) {
    super(options);
    this.#clock = clock;
    this.#onHold = onHold;
  }

  /**
   * Pause the guest clock, then {@link Gate.enter}.
   * @param syscallId - interned id
   * @returns whether the call may be performed
   */
  override enter(syscallId: number): boolean {
    this.#clock.pause();
    try {
      // A call that finds the container quarantined flushes through the gate's own `onHold` before it waits.
      return super.enter(syscallId);
    } catch (e) {
      this.#clock.resume();
      throw e;
    }
  }

  /**
   * {@link Gate.exit}, then resume the guest clock.
   * @param result - the result code
   * @param resultBytes - bytes that cannot be recomputed
   */
  override exit(result: number, resultBytes?: Uint8Array): void {
    try {
      super.exit(result, resultBytes);
      if (this.#onHold !== undefined && Atomics.load(this.control, CONTROL_STATE) === ContainerState.Quarantined) this.#onHold();
    } finally {
      this.#clock.resume();
    }
  }
}
