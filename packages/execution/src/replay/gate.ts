import { ForgeError, isErrorCode, type ErrorCode, type SyscallTable } from '@forgeone/common';
import type { Decision } from '@forgeone/trust';
import { Gate, type CallArgsView } from '../gate/gate.js';

/** One recorded call as a replay needs it: a trace record (`TraceCallRecord` of `@forgeone/observer`) fits. */
export interface ReplayRecord {
  /** Sequence number in the container, from 0. */
  readonly seq: number;
  /** Syscall name. */
  readonly syscall: string;
  /** The canonical arguments the decision saw; only those the call carried. */
  readonly args: { readonly path?: string; readonly host?: string; readonly port?: number; readonly size?: number; readonly detail?: string };
  /** The recorded verdict (`allow`, `audit`, `deny`, `quarantine`, `suspended`, `terminated`). */
  readonly verdict: string;
  /** The deciding rule, or null. */
  readonly rule: string | null;
  /** Whether the call was performed. */
  readonly allowed: boolean;
  /** The result code. */
  readonly result: number;
  /** The result bytes the original run recorded, or null. */
  readonly resultBytes: Uint8Array | null;
}

/** A call as the replay saw it or expected it. */
export interface ReplayCallView {
  /** Syscall name. */
  readonly syscall: string;
  /** Canonical arguments (only those present). */
  readonly args: ReplayRecord['args'];
  /** Result code, when the difference is in the result. */
  readonly result?: number;
}

/** Why a replay stopped matching its record. */
export type DivergenceKind =
  /** The guest made a different call than the record's next one. */
  | 'syscall'
  /** Same call, different canonical arguments. */
  | 'arguments'
  /** Same call and arguments, but the host's result (computed from the recorded answer) differs. */
  | 'result'
  /** The guest made a call after the last recorded one. */
  | 'extra-call'
  /** The guest finished while recorded calls remained. */
  | 'missing-call'
  /** The record cannot be answered (its result bytes were dropped, or are malformed). */
  | 'unanswerable';

/** The first point where a replay differed from its record. */
export interface ReplayDivergence {
  /** Sequence number of the record where the runs part (the next record's, for `extra-call`). */
  readonly seq: number;
  /** What differed. */
  readonly kind: DivergenceKind;
  /** The recorded call, or null (`extra-call`). */
  readonly expected: ReplayCallView | null;
  /** The call the replay made, or null (`missing-call`). */
  readonly got: ReplayCallView | null;
  /** One sentence for people. */
  readonly message: string;
}

const neverDecides = {
  mode: 'enforce' as const,
  decide(): Decision {
    throw new ForgeError('INTERNAL', 'a replay gate never decides: the record does');
  },
};

const POLICY_VERDICTS: ReadonlySet<string> = new Set(['allow', 'audit', 'deny', 'quarantine']);
const decoder = new TextDecoder();

const LONE_SURROGATE = /\p{Cs}/gu;

// Records store strings as UTF-8, so a lone surrogate comes back as U+FFFD; compare in that form.
function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

function present(a: Readonly<CallArgsView>): ReplayRecord['args'] {
  const out: { path?: string; host?: string; port?: number; size?: number; detail?: string } = {};
  if (a.path !== undefined) out.path = wellFormed(a.path);
  if (a.host !== undefined) out.host = wellFormed(a.host);
  if (a.port !== undefined) out.port = a.port;
  if (a.size !== undefined) out.size = a.size;
  if (a.detail !== undefined) out.detail = wellFormed(a.detail);
  return out;
}

function sameArgs(recorded: ReplayRecord['args'], got: ReplayRecord['args']): boolean {
  return recorded.path === got.path && recorded.host === got.host && recorded.port === got.port && recorded.size === got.size && recorded.detail === got.detail;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(c: ReplayCallView): string {
  const parts = Object.entries(c.args).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${c.syscall}(${parts.join(', ')})${c.result === undefined ? '' : ` → ${c.result}`}`;
}

/**
 * The gate of a replay (the architecture's "replay swaps step 3"): instead of deciding, it checks that each
 * call the guest makes has the name and canonical arguments of the next recorded call, answers with the
 * recorded verdict (and, through {@link ReplayGate.recorded}, the recorded result bytes the host functions
 * return instead of performing), and stops the guest at the first divergence, which it keeps in
 * {@link ReplayGate.divergence}. Host functions that read the outside world (clocks, random, kv, fetch,
 * stdin, identity, the filesystem) answer from the record; those that act on it (log, kv set, stdout, file
 * writes) act on the replay's own sinks, or on nothing.
 *
 * @example
 * ```ts
 * const gate = new ReplayGate(parseTrace(text).records, new SyscallTable(KNOWN_SYSCALLS));
 * const imports = buildComponentImports({ gate, ...replayHost(gate) });
 * ```
 */
export class ReplayGate extends Gate {
  /** The first divergence, or null while the replay matches its record. */
  divergence: ReplayDivergence | null = null;
  readonly #records: readonly ReplayRecord[];
  #pos = 0;
  #current: ReplayRecord | null = null;
  #denied = 0;

  /**
   * @param records - the recorded calls, in sequence order
   * @param syscalls - the syscall table (names are compared, so any table works)
   * @param control - the container's control array; a private one when omitted
   */
  constructor(records: readonly ReplayRecord[], syscalls: SyscallTable, control?: Int32Array) {
    super({ syscalls, policy: neverDecides, ...(control === undefined ? {} : { control }) });
    this.#records = records;
  }

  /**
   * During a call that succeeded in the original run, the result bytes it recorded (null when it recorded
   * none, or the call failed or was refused).
   */
  get recorded(): Uint8Array | null {
    const rec = this.#current;
    return rec === null || !rec.allowed || rec.result !== 0 ? null : rec.resultBytes;
  }

  /**
   * During a call whose host service failed in the original run, the failure it recorded (`{ code,
   * message }`), else null.
   */
  get recordedFailure(): { readonly code: ErrorCode; readonly message: string } | null {
    const rec = this.#current;
    if (rec === null || !rec.allowed || rec.result === 0 || rec.resultBytes === null) return null;
    try {
      const v = JSON.parse(decoder.decode(rec.resultBytes)) as { code?: unknown; message?: unknown };
      if (typeof v.code === 'string' && isErrorCode(v.code) && typeof v.message === 'string') return { code: v.code, message: v.message };
    } catch {
      // not a recorded failure
    }
    return null;
  }

  /** The record of the call in progress, or null between calls. */
  get current(): ReplayRecord | null {
    return this.#current;
  }

  /**
   * The next record the guest has not entered yet (the one after the call in progress, if any). The replay
   * filesystem reads the path the original run resolved from it.
   * @returns the record, or null after the last one
   */
  peek(): ReplayRecord | null {
    return this.#records[this.#current === null ? this.#pos : this.#pos + 1] ?? null;
  }

  /** Calls matched so far. */
  override get sequence(): number {
    return this.#pos;
  }

  /** Calls refused so far (as recorded). */
  override get denied(): number {
    return this.#denied;
  }

  /** Recorded calls the guest has not made (yet). */
  get remaining(): number {
    return this.#records.length - this.#pos;
  }

  /**
   * Match the call against the next record; answer with its verdict.
   * @param syscallId - the call's interned id
   * @returns whether the original run performed the call
   * @throws ForgeError `REPLAY_DIVERGED` (a trap for the guest) at the first divergence
   */
  override enter(syscallId: number): boolean {
    if (this.divergence !== null) throw this.#error();
    const got: ReplayCallView = { syscall: this.syscalls.name(syscallId), args: present(this.args) };
    const rec = this.#records[this.#pos];
    if (rec === undefined) return this.#diverge({ seq: this.#pos, kind: 'extra-call', expected: null, got, message: `the replay made a call the record does not hold: ${describe(got)}` });
    const expected: ReplayCallView = { syscall: rec.syscall, args: rec.args };
    if (rec.syscall !== got.syscall) return this.#diverge({ seq: rec.seq, kind: 'syscall', expected, got, message: `record ${rec.seq}: expected ${describe(expected)}, got ${describe(got)}` });
    if (!sameArgs(rec.args, got.args)) return this.#diverge({ seq: rec.seq, kind: 'arguments', expected, got, message: `record ${rec.seq}: expected ${describe(expected)}, got ${describe(got)}` });
    this.#current = rec;
    if (rec.allowed) {
      this.refusal = null;
      this.decision = POLICY_VERDICTS.has(rec.verdict) ? { verdict: rec.verdict as Decision['verdict'], rule: rec.rule, reason: 'replayed from the record', rateLimited: false, code: null } : null;
      return true;
    }
    const code = this.#refusalCode(rec);
    this.refusal = code;
    this.decision = POLICY_VERDICTS.has(rec.verdict) ? { verdict: rec.verdict as Decision['verdict'], rule: rec.rule, reason: 'replayed from the record', rateLimited: code === 'POLICY_RATE_LIMITED', code } : null;
    this.#denied++;
    return false;
  }

  /**
   * Close the call: its result must be the recorded one.
   * @param result - the host's result code
   * @param resultBytes - the host's result bytes (compared with the record's when both exist)
   * @throws ForgeError `REPLAY_DIVERGED` when the result differs
   */
  override exit(result: number, resultBytes?: Uint8Array): void {
    const rec = this.#current;
    const a = this.args;
    a.path = undefined;
    a.host = undefined;
    a.port = undefined;
    a.size = undefined;
    a.detail = undefined;
    if (rec === null) return; // exit after a divergence was raised in enter
    this.#current = null;
    this.#pos++;
    const differs = rec.result !== result || (rec.allowed && resultBytes !== undefined && rec.resultBytes !== null && !sameBytes(rec.resultBytes, resultBytes));
    if (differs) {
      // The arguments matched on enter; only the result differs.
      const got: ReplayCallView = { syscall: rec.syscall, args: rec.args, result };
      const expected: ReplayCallView = { syscall: rec.syscall, args: rec.args, result: rec.result };
      this.#diverge({ seq: rec.seq, kind: 'result', expected, got, message: `record ${rec.seq}: ${rec.syscall} gave a different result in the replay (expected ${rec.result}, got ${result}${rec.result === result ? ', different bytes' : ''})` });
    }
  }

  /**
   * Mark the record of the call in progress as one the replay cannot answer, and stop the guest.
   * @param why - what is missing
   * @returns never
   * @throws ForgeError `REPLAY_DIVERGED`
   */
  unanswerable(why: string): never {
    const rec = this.#current;
    const seq = rec?.seq ?? this.#pos;
    this.#current = null;
    return this.#diverge({ seq, kind: 'unanswerable', expected: rec === null ? null : { syscall: rec.syscall, args: rec.args }, got: null, message: `record ${seq}: ${why}` });
  }

  /**
   * After the guest finished: a divergence when recorded calls remain.
   * @returns the divergence, or null when the replay matched every record
   */
  finish(): ReplayDivergence | null {
    if (this.divergence !== null) return this.divergence;
    const rec = this.#records[this.#pos];
    if (rec !== undefined) {
      const expected: ReplayCallView = { syscall: rec.syscall, args: rec.args };
      this.divergence = { seq: rec.seq, kind: 'missing-call', expected, got: null, message: `record ${rec.seq}: the replay ended before ${describe(expected)} (${this.remaining} recorded calls not made)` };
    }
    return this.divergence;
  }

  #refusalCode(rec: ReplayRecord): ErrorCode {
    if (rec.resultBytes !== null && rec.resultBytes.length > 0 && rec.resultBytes.length <= 64) {
      const text = decoder.decode(rec.resultBytes);
      if (isErrorCode(text)) return text;
    }
    if (rec.verdict === 'terminated') return 'CONTAINER_TERMINATED';
    if (rec.verdict === 'suspended' || rec.verdict === 'quarantine') return 'CONTAINER_QUARANTINED';
    return 'POLICY_DENIED';
  }

  #diverge(d: ReplayDivergence): never {
    this.divergence = d;
    throw this.#error();
  }

  #error(): ForgeError {
    const d = this.divergence!;
    return new ForgeError('REPLAY_DIVERGED', d.message, { details: { seq: d.seq, kind: d.kind } });
  }
}
