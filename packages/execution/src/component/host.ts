import { ForgeError, isForgeError, type ErrorCode } from '@forgeone/common';
import { CONTROL_STATE, ContainerState, type Gate } from '../gate/gate.js';

/**
 * Thrown by a host function to make jco lower the `err` case of the function's `result` (jco takes the
 * error value from an own `payload` property). Functions without a `result` never throw this: they trap
 * with a `ForgeError`.
 */
export class HostResultError extends Error {
  /** The value of the `err` case: `host-error { code, message }`, a WASI error-code string, a stream error, ... */
  readonly payload: unknown;

  /** @param payload - the error case's value */
  constructor(payload: unknown) {
    super('host call failed');
    this.name = 'HostResultError';
    this.payload = payload;
  }
}

/** `host-error` of `forgeone:host/types`. */
export interface HostErrorPayload {
  /** Stable ForgeOne error code. */
  readonly code: string;
  /** What happened. */
  readonly message: string;
}

/**
 * The guest asked to stop (`wasi:cli/exit`). Not a failure of the host: `runComponent` turns it into an
 * outcome with the exit code.
 */
export class ComponentExit extends Error {
  /** 0 for `exit(ok)`, 1 for `exit(err)`, or the code of `exit-with-code`. */
  readonly exitCode: number;

  /** @param exitCode - the guest's exit code */
  constructor(exitCode: number) {
    super(`the guest exited with code ${exitCode}`);
    this.name = 'ComponentExit';
    this.exitCode = exitCode;
  }
}

/** Result codes written to the gate's record for component host calls. */
export const RESULT_OK = 0;
/** The host function failed after the gate allowed it (the error variant was returned). */
export const RESULT_FAILED = 1;
/** The call was refused (by the gate, or by a static grant). */
export const RESULT_REFUSED = -1;

/**
 * The per-container context every adapter function shares: the gate and interned syscall ids. Built once
 * per `buildComponentImports`; nothing here allocates per call except what the interface itself returns.
 */
export class HostContext {
  /** The container's gate. */
  readonly gate: Gate;
  readonly #ids = new Map<string, number>();

  /** The gate when it replays a recorded run (it has a `recorded` property), else null. */
  readonly #replay: { readonly recorded: Uint8Array | null } | null;

  /** @param gate - the container's gate */
  constructor(gate: Gate) {
    this.gate = gate;
    this.#replay = 'recorded' in gate ? (gate as unknown as { readonly recorded: Uint8Array | null }) : null;
  }

  /** Whether the gate replays a recorded run (host functions then answer from {@link HostContext.recorded}). */
  get replaying(): boolean {
    return this.#replay !== null;
  }

  /**
   * During a replay, the result bytes the original run recorded for the call just entered; null otherwise.
   * @returns the recorded bytes, or null
   */
  recorded(): Uint8Array | null {
    return this.#replay === null ? null : this.#replay.recorded;
  }

  /**
   * Intern a syscall name (setup time only).
   * @param name - a syscall name
   * @returns its id
   */
  id(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.gate.syscalls.intern(name);
      this.#ids.set(name, id);
    }
    return id;
  }

  /**
   * Sleep the guest's thread for up to `ms`, waking early when the kernel terminates (or releases) the
   * container: a guest waiting on a clock never outlives its termination.
   * @param ms - milliseconds
   * @throws ForgeError `CONTAINER_TERMINATED` (a trap) when the container was terminated meanwhile
   */
  sleep(ms: number): void {
    const control = this.gate.control;
    if (ms > 0 && Atomics.load(control, CONTROL_STATE) === ContainerState.Running) Atomics.wait(control, CONTROL_STATE, ContainerState.Running, ms);
    if (Atomics.load(control, CONTROL_STATE) === ContainerState.Terminated) throw new ForgeError('CONTAINER_TERMINATED', 'the container was terminated while the guest waited');
  }

  /**
   * The code of the last refusal, as a string for `host-error`.
   * @returns the gate's refusal code, `POLICY_DENIED` when the gate gave none
   */
  refusalCode(): ErrorCode {
    return this.gate.refusal ?? 'POLICY_DENIED';
  }

  /**
   * A ForgeError for the call the gate just refused.
   * @param id - the syscall id
   * @returns the error (to throw as a trap)
   */
  refusalError(id: number): ForgeError {
    const code = this.refusalCode();
    const rule = this.gate.decision?.rule ?? null;
    const name = this.gate.syscalls.name(id);
    return new ForgeError(code, `${name} refused (${code}${rule === null ? '' : `, rule ${rule}`})`, { details: { syscall: name, rule } });
  }

  /**
   * Enter the gate for a call whose interface has no error case: on refusal, record and trap.
   * @param id - the syscall id (arguments already in `gate.args`)
   * @throws ForgeError with the refusal code when refused
   */
  enterOrTrap(id: number): void {
    const gate = this.gate;
    if (!gate.enter(id)) {
      const err = this.refusalError(id);
      gate.exit(RESULT_REFUSED, refusalBytes(err.code));
      throw err;
    }
  }

  /**
   * Enter the gate for a `forgeone:host` call: on refusal, record and return `host-error` to the guest.
   * @param id - the syscall id (arguments already in `gate.args`)
   * @throws HostResultError carrying `host-error { code, message }` when refused
   */
  enterOrHostError(id: number): void {
    const gate = this.gate;
    if (!gate.enter(id)) {
      const code = this.refusalCode();
      const rule = gate.decision?.rule ?? null;
      const message = `${gate.syscalls.name(id)} refused by the ${code === 'POLICY_DENIED' || code === 'POLICY_RATE_LIMITED' ? 'policy' : 'kernel'}${rule === null ? '' : ` (rule ${rule})`}`;
      gate.exit(RESULT_REFUSED, refusalBytes(code));
      throw new HostResultError({ code, message } satisfies HostErrorPayload);
    }
  }

  /**
   * Enter the gate for a WASI call with an error case: on refusal, record and return `errorCase`.
   * @param id - the syscall id (arguments already in `gate.args`)
   * @param errorCase - the interface's value for "not allowed" (`'access'`, `'access-denied'`, ...)
   * @throws HostResultError carrying `errorCase` when refused
   */
  enterOrWasiError(id: number, errorCase: unknown): void {
    const gate = this.gate;
    if (!gate.enter(id)) {
      gate.exit(RESULT_REFUSED, refusalBytes(this.refusalCode()));
      throw new HostResultError(errorCase);
    }
  }

  /**
   * After the gate allowed a `forgeone:host` call, the host service failed: record and return `host-error`.
   * @param cause - what the service threw
   * @throws HostResultError always
   */
  serviceFailed(cause: unknown): never {
    const code: ErrorCode = isForgeError(cause) ? cause.code : 'IO_ERROR';
    const message = isForgeError(cause) ? cause.message : 'the host service failed';
    // The failure is recorded (JSON `{code, message}`) so a replay fails the guest's call the same way.
    this.gate.exit(RESULT_FAILED, failureBytes(code, message));
    throw new HostResultError({ code, message } satisfies HostErrorPayload);
  }
}

/**
 * During a replay, the JSON value the original run recorded for the call just entered.
 * @param ctx - the host context
 * @returns the parsed value, or undefined when not replaying (or nothing was recorded)
 */
export function recordedJson<T>(ctx: HostContext): T | undefined {
  const bytes = ctx.recorded();
  if (bytes === null) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    throw new ForgeError('REPLAY_DIVERGED', 'the recorded result of this call is not the JSON the host writes');
  }
}

/**
 * The result bytes recorded for a host service failure: JSON `{ code, message }`.
 * @param code - the error code the guest gets
 * @param message - the message the guest gets
 * @returns the bytes
 */
export function failureBytes(code: string, message: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ code, message }));
}

const refusals = new Map<string, Uint8Array>();

/**
 * The result bytes recorded for a refused call: its error code in UTF-8 (one shared array per code), so a
 * replay gives the guest the same code the original run gave it (`POLICY_DENIED` and `POLICY_RATE_LIMITED`
 * carry the same verdict).
 * @param code - the refusal's error code
 * @returns the code's bytes (do not modify)
 */
export function refusalBytes(code: string): Uint8Array {
  let bytes = refusals.get(code);
  if (bytes === undefined) {
    bytes = new TextEncoder().encode(code);
    refusals.set(code, bytes);
  }
  return bytes;
}

/**
 * Byte length of a string in UTF-8 without encoding it.
 * @param s - the string
 * @returns its UTF-8 length
 */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * Convert a jco member name to WIT's kebab case (`getStdout` → `get-stdout`).
 * @param name - camelCase name
 * @returns kebab-case name
 */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/^-/, '');
}
