/**
 * The red zone: the registry of quarantined containers, their lifecycle, the maximum quarantine time,
 * and the analysis report of what a container did before it was quarantined.
 *
 * Operator actions here are not on the hot path: invalid actions throw {@link ForgeError} instead of
 * returning a `Result`. The gate never calls into this module per call; it reads the shared-memory flag
 * that {@link RedzoneOptions.onFlagChange} lets the execution layer maintain.
 *
 * @packageDocumentation
 */
import { ForgeError, newId, systemClock, type Clock } from '@forgeone/common';
import type { Verdict } from './schema.js';

/**
 * The state of a quarantine record. `released` and `terminated` are final.
 *
 * Allowed transitions: active→analyzing, active→remediating, analyzing→remediating, analyzing→active,
 * remediating→active, and any non-final state → released or terminated.
 *
 * @example
 * ```ts
 * const open: QuarantineState[] = ['active', 'analyzing', 'remediating'];
 * ```
 */
export type QuarantineState = 'active' | 'analyzing' | 'remediating' | 'released' | 'terminated';

/**
 * Who performs an action on a quarantine record, and an optional note for the audit log.
 *
 * @example
 * ```ts
 * const action: QuarantineAction = { actor: 'user:alice', note: 'false positive, policy fixed' };
 * ```
 */
export interface QuarantineAction {
  /** Who acts: an operator, a service, or `redzone` for the red zone's own actions. Non-empty. */
  readonly actor: string;
  /** Free text kept in the record's history and the event. */
  readonly note?: string | undefined;
}

/**
 * What {@link Redzone.quarantine} needs besides the container id.
 *
 * @example
 * ```ts
 * const input: QuarantineInput = { reason: 'policy base/no-etc quarantined the call', actor: 'gate', traceId: 'trc_01J…' };
 * ```
 */
export interface QuarantineInput extends QuarantineAction {
  /** Why the container is quarantined, for people. Non-empty. */
  readonly reason: string;
  /** The id of the container's execution trace, when there is one. */
  readonly traceId?: string | undefined;
}

/**
 * One entry of a record's history. The first entry has `from: null` (the quarantine itself).
 *
 * @example
 * ```ts
 * const first: QuarantineTransition = { from: null, to: 'active', actor: 'gate', at: 1767225600000 };
 * ```
 */
export interface QuarantineTransition {
  /** The state before, or null for the entry that created the record. */
  readonly from: QuarantineState | null;
  /** The state after. */
  readonly to: QuarantineState;
  /** Who made the change. */
  readonly actor: string;
  /** When, ms since the epoch (from the injected clock). */
  readonly at: number;
  /** The actor's note, when given. */
  readonly note?: string;
}

/**
 * A frozen snapshot of one quarantine record. Snapshots never change: a later change of the record
 * produces a new snapshot.
 *
 * @example
 * ```ts
 * const rec: QuarantineRecord = redzone.quarantine('ctr_01J…', { reason: 'exfiltration attempt', actor: 'gate' });
 * if (rec.state === 'active') console.warn(rec.history.length);
 * ```
 */
export interface QuarantineRecord {
  /** The record id, `qrn_…`. */
  readonly id: string;
  /** The quarantined container. */
  readonly containerId: string;
  /** Why the container was quarantined. */
  readonly reason: string;
  /** When the container was quarantined, ms since the epoch. */
  readonly quarantinedAt: number;
  /** The id of the container's execution trace, when known. */
  readonly traceId?: string;
  /** The current state. */
  readonly state: QuarantineState;
  /** When the state last changed, ms since the epoch. */
  readonly updatedAt: number;
  /** Every transition, oldest first, starting with the quarantine itself. */
  readonly history: readonly QuarantineTransition[];
}

/**
 * The kind of a red-zone event: `quarantined` for a new record, `released` and `terminated` for the final
 * states, `state-changed` for every other transition.
 *
 * @example
 * ```ts
 * const final: QuarantineEventKind[] = ['released', 'terminated'];
 * ```
 */
export type QuarantineEventKind = 'quarantined' | 'state-changed' | 'released' | 'terminated';

/**
 * What the red zone reports for every state change, through {@link RedzoneOptions.onEvent}. Frozen.
 *
 * @example
 * ```ts
 * const events: QuarantineEvent[] = [];
 * const redzone = createRedzone({ onEvent: (e) => events.push(e) });
 * ```
 */
export interface QuarantineEvent {
  /** What happened. */
  readonly kind: QuarantineEventKind;
  /** The record after the change. */
  readonly record: QuarantineRecord;
  /** The state before, or null for `quarantined`. */
  readonly from: QuarantineState | null;
  /** The state after. */
  readonly to: QuarantineState;
  /** Who made the change. */
  readonly actor: string;
  /** When, ms since the epoch. */
  readonly at: number;
  /** The actor's note, when given. */
  readonly note?: string;
}

/**
 * One call of a quarantined container as the execution trace will provide it for analysis.
 *
 * @example
 * ```ts
 * const call: QuarantineCallRecord = {
 *   seq: 7, time: 1767225600000, syscall: 'wasi:filesystem/open-at', verdict: 'deny',
 *   rule: 'base/no-etc', reason: 'no access to /etc', flags: ['sensitive-path'],
 * };
 * ```
 */
export interface QuarantineCallRecord {
  /** Position of the call in the container's trace. */
  seq: number;
  /** When the call was decided, ms since the epoch. */
  time: number;
  /** The syscall name. */
  syscall: string;
  /** The policy's verdict. */
  verdict: Verdict;
  /** The deciding rule as `node/rule`, or null when the default action decided. */
  rule: string | null;
  /** The decision's reason text. */
  reason: string;
  /** Flags raised on the call (anomaly detectors, audit rules), when any. */
  flags?: readonly string[];
}

/**
 * A refused call in a {@link QuarantineReport}: what was denied and why.
 *
 * @example
 * ```ts
 * const d: QuarantineDenial = { seq: 3, time: 1767225600000, syscall: 'wasi:sockets/connect', verdict: 'deny', rule: 'net/no-egress', reason: 'no network' };
 * ```
 */
export interface QuarantineDenial {
  /** Position of the call in the trace. */
  readonly seq: number;
  /** When the call was decided. */
  readonly time: number;
  /** The syscall. */
  readonly syscall: string;
  /** `deny` or `quarantine` (a quarantine verdict refuses the call too, docs/policy.md §5.1). */
  readonly verdict: Verdict;
  /** The deciding rule, or null when the default action decided. */
  readonly rule: string | null;
  /** Why. */
  readonly reason: string;
}

/**
 * How often one syscall was called, in a {@link QuarantineReport}.
 *
 * @example
 * ```ts
 * const c: QuarantineSyscallCount = { syscall: 'wasi:filesystem/read', count: 12 };
 * ```
 */
export interface QuarantineSyscallCount {
  /** The syscall. */
  readonly syscall: string;
  /** Calls to it. */
  readonly count: number;
}

/**
 * How many calls raised one flag, in a {@link QuarantineReport}.
 *
 * @example
 * ```ts
 * const f: QuarantineFlagCount = { flag: 'burst', count: 2 };
 * ```
 */
export interface QuarantineFlagCount {
  /** The flag. */
  readonly flag: string;
  /** Calls that raised it (a flag listed twice on one call counts once). */
  readonly count: number;
}

/**
 * What a quarantined container did before it was quarantined. Frozen.
 *
 * @example
 * ```ts
 * const report: QuarantineReport = redzone.analyze(rec.id, calls);
 * console.warn(report.summary);
 * ```
 */
export interface QuarantineReport {
  /** The record, after the analysis moved it (an `active` record is now `analyzing`). */
  readonly record: QuarantineRecord;
  /** When the report was made, ms since the epoch. */
  readonly generatedAt: number;
  /** The calls at or before the quarantine time, sorted by `seq`. */
  readonly calls: readonly QuarantineCallRecord[];
  /** Calls given to the analysis but made after the quarantine time, left out of the report. */
  readonly callsAfterQuarantine: number;
  /** Calls per syscall, most frequent first, ties by name. */
  readonly bySyscall: readonly QuarantineSyscallCount[];
  /** Calls per verdict (every verdict present, zero when unused). */
  readonly byVerdict: Readonly<Record<Verdict, number>>;
  /** The refused calls (`deny` and `quarantine` verdicts) in `seq` order. */
  readonly denied: readonly QuarantineDenial[];
  /** The first refused call, or null when none was refused. */
  readonly firstDenial: QuarantineDenial | null;
  /** Every flag raised, with how many calls raised it, most frequent first, ties by name. */
  readonly flags: readonly QuarantineFlagCount[];
  /** A short plain-text paragraph for people. */
  readonly summary: string;
}

/**
 * Which records {@link Redzone.list} returns. Absent fields do not filter.
 *
 * @example
 * ```ts
 * const filter: QuarantineFilter = { state: 'active', containerId: 'ctr_01J…' };
 * ```
 */
export interface QuarantineFilter {
  /** Only records in this state. */
  readonly state?: QuarantineState | undefined;
  /** Only records of this container. */
  readonly containerId?: string | undefined;
}

/**
 * Options of {@link createRedzone}.
 *
 * @example
 * ```ts
 * const options: RedzoneOptions = { maxQuarantineMs: 3_600_000, sweepIntervalMs: 60_000, onEvent: (e) => audit.append(e) };
 * ```
 */
export interface RedzoneOptions {
  /** The source of time (default the system clock). Every timestamp and age comes from it. */
  readonly clock?: Clock | undefined;
  /** How long a record may stay non-final before {@link Redzone.sweep} terminates it (default 24 h). */
  readonly maxQuarantineMs?: number | undefined;
  /** When given, run {@link Redzone.sweep} every this many ms on an unref'd timer until {@link Redzone.close}. */
  readonly sweepIntervalMs?: number | undefined;
  /**
   * Called for every state change, after the change is applied (the audit log subscribes here).
   * @param event - the frozen event
   */
  readonly onEvent?: ((event: QuarantineEvent) => void) | undefined;
  /**
   * Called when a container becomes quarantined (`true`) and when its record is released or terminated
   * (`false`), so the execution layer can flip the gate's shared-memory flag. Called before `onEvent`.
   * @param containerId - the container
   * @param quarantined - whether the container is now quarantined
   */
  readonly onFlagChange?: ((containerId: string, quarantined: boolean) => void) | undefined;
  /**
   * Called with errors of the timer-driven sweep, which has no caller to throw to (default `console.error`).
   * @param error - the error, a ForgeError `INTERNAL` wrapping a listener failure
   */
  readonly onError?: ((error: unknown) => void) | undefined;
}

/**
 * The quarantine registry.
 *
 * Listener failures: a change is applied, and every listener called, before any listener error is
 * reported; the action then throws ForgeError `INTERNAL` with the listener's error as `cause`.
 *
 * @example
 * ```ts
 * const redzone = createRedzone({ clock, onFlagChange: (id, q) => gate.setQuarantined(id, q) });
 * const rec = redzone.quarantine('ctr_01J…', { reason: 'policy quarantine', actor: 'gate' });
 * redzone.release(rec.id, { actor: 'user:alice', note: 'reviewed' });
 * ```
 */
export interface Redzone {
  /**
   * Quarantine a container. Idempotent: when the container already has a non-final record, that record
   * is returned unchanged and nothing is emitted.
   * @param containerId - the container
   * @param input - reason, actor, optional trace id and note
   * @returns the new (or existing) record
   * @throws ForgeError `INVALID_ARGUMENT` for an empty container id, reason or actor
   */
  quarantine(containerId: string, input: QuarantineInput): QuarantineRecord;
  /**
   * Move a record to another state (see {@link QuarantineState} for the allowed transitions).
   * @param id - the record id
   * @param to - the target state
   * @param action - who acts, and a note
   * @returns the record after the change
   * @throws ForgeError `NOT_FOUND` for an unknown id, `QUARANTINE_STATE` for a transition that is not
   * allowed, `INVALID_ARGUMENT` for an unknown state or empty actor
   */
  transition(id: string, to: QuarantineState, action: QuarantineAction): QuarantineRecord;
  /**
   * Release a record (final): the container is no longer quarantined.
   * @param id - the record id
   * @param action - who releases it, and a note
   * @returns the released record
   * @throws ForgeError `NOT_FOUND` for an unknown id, `QUARANTINE_STATE` when the record is already final
   */
  release(id: string, action: QuarantineAction): QuarantineRecord;
  /**
   * Terminate a record (final): the container is to be stopped.
   * @param id - the record id
   * @param action - who terminates it, and a note
   * @returns the terminated record
   * @throws ForgeError `NOT_FOUND` for an unknown id, `QUARANTINE_STATE` when the record is already final
   */
  terminate(id: string, action: QuarantineAction): QuarantineRecord;
  /**
   * Analyse what the container did before it was quarantined. An `active` record moves to `analyzing`;
   * records in other states (including final ones, for post-mortems) are reported on without a change.
   * @param id - the record id
   * @param calls - the container's calls from its execution trace, in any order
   * @param action - who analyses (default actor `redzone`)
   * @returns the frozen report
   * @throws ForgeError `NOT_FOUND` for an unknown id, `INVALID_ARGUMENT` when `calls` is not an array
   */
  analyze(id: string, calls: readonly QuarantineCallRecord[], action?: QuarantineAction): QuarantineReport;
  /**
   * Terminate every non-final record quarantined more than `maxQuarantineMs` ago, as actor `redzone`
   * with the note `max quarantine time exceeded`.
   * @returns the terminated records
   * @throws ForgeError `INTERNAL` when a listener failed (every record is still terminated)
   */
  sweep(): readonly QuarantineRecord[];
  /**
   * Whether the container has a non-final record. O(1).
   * @param containerId - the container
   * @returns true while the container is quarantined
   */
  isQuarantined(containerId: string): boolean;
  /**
   * One record.
   * @param id - the record id
   * @returns the record's current snapshot
   * @throws ForgeError `NOT_FOUND` for an unknown id
   */
  get(id: string): QuarantineRecord;
  /**
   * Records in quarantine order, optionally filtered.
   * @param filter - state and/or container
   * @returns the matching records
   * @throws ForgeError `INVALID_ARGUMENT` for an unknown state in the filter
   */
  list(filter?: QuarantineFilter): readonly QuarantineRecord[];
  /** Stop the sweep timer, if any. Idempotent; the registry stays usable. */
  close(): void;
}

const STATES: readonly QuarantineState[] = ['active', 'analyzing', 'remediating', 'released', 'terminated'];

const NEXT: Readonly<Record<QuarantineState, readonly QuarantineState[]>> = {
  active: ['analyzing', 'remediating', 'released', 'terminated'],
  analyzing: ['remediating', 'active', 'released', 'terminated'],
  remediating: ['active', 'released', 'terminated'],
  released: [],
  terminated: [],
};

const DAY_MS = 24 * 60 * 60 * 1000;
const SELF = 'redzone';
const SWEEP_NOTE = 'max quarantine time exceeded';

interface Entry {
  readonly id: string;
  readonly containerId: string;
  readonly reason: string;
  readonly quarantinedAt: number;
  readonly traceId: string | undefined;
  state: QuarantineState;
  updatedAt: number;
  readonly history: QuarantineTransition[];
  snapshot: QuarantineRecord;
}

const isFinal = (s: QuarantineState): boolean => s === 'released' || s === 'terminated';
const isState = (s: unknown): s is QuarantineState => typeof s === 'string' && (STATES as readonly string[]).includes(s);

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ForgeError('INVALID_ARGUMENT', `${what} must be a non-empty string`);
  return value;
}

function requirePositive(value: number | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ForgeError('INVALID_ARGUMENT', `${what} must be a positive finite number of ms`, { details: { [what]: value } });
  }
  return value;
}

function checkAction(action: QuarantineAction | undefined): { actor: string; note: string | undefined } {
  if (typeof action !== 'object' || action === null) throw new ForgeError('INVALID_ARGUMENT', 'an action needs an actor');
  const actor = requireText(action.actor, 'actor');
  if (action.note !== undefined && typeof action.note !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'note must be a string');
  return { actor, note: action.note };
}

function snapshotOf(e: Omit<Entry, 'snapshot'>): QuarantineRecord {
  return Object.freeze({
    id: e.id,
    containerId: e.containerId,
    reason: e.reason,
    quarantinedAt: e.quarantinedAt,
    ...(e.traceId === undefined ? {} : { traceId: e.traceId }),
    state: e.state,
    updatedAt: e.updatedAt,
    history: Object.freeze([...e.history]),
  });
}

function byCountThenName<T extends { readonly count: number }>(name: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => b.count - a.count || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);
}

const iso = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

function describeDenial(d: QuarantineDenial): string {
  const by = d.rule === null ? 'the default action' : `rule ${d.rule}`;
  return `call #${d.seq} (${d.syscall}) got ${d.verdict} from ${by}: ${d.reason}`;
}

function buildReport(record: QuarantineRecord, calls: readonly QuarantineCallRecord[], now: number): QuarantineReport {
  const kept: QuarantineCallRecord[] = [];
  let after = 0;
  for (const c of calls) {
    if (c.time <= record.quarantinedAt) {
      kept.push(
        Object.freeze({
          seq: c.seq,
          time: c.time,
          syscall: c.syscall,
          verdict: c.verdict,
          rule: c.rule,
          reason: c.reason,
          ...(c.flags === undefined ? {} : { flags: Object.freeze([...c.flags]) }),
        }),
      );
    } else {
      after++;
    }
  }
  kept.sort((a, b) => a.seq - b.seq);

  const syscalls = new Map<string, number>();
  const flags = new Map<string, number>();
  const byVerdict: Record<Verdict, number> = { allow: 0, audit: 0, deny: 0, quarantine: 0 };
  const denied: QuarantineDenial[] = [];
  for (const c of kept) {
    syscalls.set(c.syscall, (syscalls.get(c.syscall) ?? 0) + 1);
    if (Object.hasOwn(byVerdict, c.verdict)) byVerdict[c.verdict]++;
    if (c.verdict === 'deny' || c.verdict === 'quarantine') {
      denied.push(Object.freeze({ seq: c.seq, time: c.time, syscall: c.syscall, verdict: c.verdict, rule: c.rule, reason: c.reason }));
    }
    for (const f of new Set(c.flags ?? [])) flags.set(f, (flags.get(f) ?? 0) + 1);
  }
  const bySyscall = [...syscalls].map(([syscall, count]) => Object.freeze({ syscall, count })).sort(byCountThenName((x) => x.syscall));
  const flagCounts = [...flags].map(([flag, count]) => Object.freeze({ flag, count })).sort(byCountThenName((x) => x.flag));
  const firstDenial = denied[0] ?? null;

  const parts: string[] = [
    `Container ${record.containerId} was quarantined at ${iso(record.quarantinedAt)} (${record.reason}); record ${record.id} is ${record.state}.`,
  ];
  if (kept.length === 0) {
    parts.push('No calls were recorded before the quarantine.');
  } else {
    const verdicts = (['allow', 'audit', 'deny', 'quarantine'] as const)
      .filter((v) => byVerdict[v] > 0)
      .map((v) => `${byVerdict[v]} ${v}`)
      .join(', ');
    parts.push(`Before that it made ${plural(kept.length, 'call')} to ${plural(bySyscall.length, 'syscall')} (${verdicts}).`);
    if (firstDenial === null) {
      parts.push('No call was refused.');
    } else {
      const rules = new Map<string, number>();
      for (const d of denied) rules.set(d.rule ?? 'default action', (rules.get(d.rule ?? 'default action') ?? 0) + 1);
      const ruleText = [...rules].map(([r, n]) => `${r} (${n})`).join(', ');
      parts.push(`${plural(denied.length, 'call was', 'calls were')} refused (${ruleText}); the first: ${describeDenial(firstDenial)}.`);
    }
    if (flagCounts.length > 0) parts.push(`Flags raised: ${flagCounts.map((f) => `${f.flag} (${f.count})`).join(', ')}.`);
  }
  if (after > 0) parts.push(`${plural(after, 'later call')} left out.`);
  if (record.traceId !== undefined) parts.push(`Full trace: ${record.traceId}.`);

  return Object.freeze({
    record,
    generatedAt: now,
    calls: Object.freeze(kept),
    callsAfterQuarantine: after,
    bySyscall: Object.freeze(bySyscall),
    byVerdict: Object.freeze(byVerdict),
    denied: Object.freeze(denied),
    firstDenial,
    flags: Object.freeze(flagCounts),
    summary: parts.join(' '),
  });
}

function listenerFailure(errors: readonly unknown[]): ForgeError {
  const first = errors[0];
  const message = first instanceof Error ? first.message : String(first);
  return new ForgeError('INTERNAL', `a red-zone listener failed after the change was applied: ${message}`, {
    cause: errors.length === 1 ? first : new AggregateError(errors, 'red-zone listeners failed'),
    details: { failures: errors.length },
  });
}

/**
 * Create the default, in-memory red zone.
 *
 * @param options - clock, maximum quarantine time, sweep interval and listeners
 * @returns a red zone; call {@link Redzone.close} when a sweep interval was given
 * @throws ForgeError `INVALID_ARGUMENT` when `maxQuarantineMs` or `sweepIntervalMs` is not a positive finite number
 * @example
 * ```ts
 * const redzone = createRedzone({
 *   clock: createManualClock(),
 *   maxQuarantineMs: 60 * 60 * 1000,
 *   onFlagChange: (containerId, quarantined) => flags.set(containerId, quarantined),
 *   onEvent: (event) => auditLog.append(event),
 * });
 * const rec = redzone.quarantine('ctr_01J…', { reason: 'policy quarantine', actor: 'gate', traceId: 'trc_01J…' });
 * const report = redzone.analyze(rec.id, calls);
 * redzone.terminate(rec.id, { actor: 'user:alice', note: report.summary });
 * ```
 */
export function createRedzone(options: RedzoneOptions = {}): Redzone {
  const clock = options.clock ?? systemClock;
  const maxQuarantineMs = requirePositive(options.maxQuarantineMs, 'maxQuarantineMs', DAY_MS);
  const sweepIntervalMs = options.sweepIntervalMs === undefined ? undefined : requirePositive(options.sweepIntervalMs, 'sweepIntervalMs', 0);
  const { onEvent, onFlagChange } = options;
  const onError = options.onError ?? ((error: unknown) => console.error('redzone: sweep failed', error));

  const records = new Map<string, Entry>();
  /** Container id → its non-final record: the quarantined set. */
  const open = new Map<string, Entry>();

  function entry(id: string): Entry {
    const e = typeof id === 'string' ? records.get(id) : undefined;
    if (e === undefined) throw new ForgeError('NOT_FOUND', `no quarantine record ${String(id)}`, { details: { id } });
    return e;
  }

  /** Call each listener; collect, never propagate, their errors so every listener runs. */
  function notify(event: QuarantineEvent, flag: boolean | undefined, errors: unknown[]): void {
    if (flag !== undefined && onFlagChange !== undefined) {
      try {
        onFlagChange(event.record.containerId, flag);
      } catch (error) {
        errors.push(error);
      }
    }
    if (onEvent !== undefined) {
      try {
        onEvent(event);
      } catch (error) {
        errors.push(error);
      }
    }
  }

  function event(kind: QuarantineEventKind, record: QuarantineRecord, t: QuarantineTransition): QuarantineEvent {
    return Object.freeze({
      kind,
      record,
      from: t.from,
      to: t.to,
      actor: t.actor,
      at: t.at,
      ...(t.note === undefined ? {} : { note: t.note }),
    });
  }

  /** Apply one checked transition, then notify; listener errors go to `errors`. */
  function move(e: Entry, to: QuarantineState, actor: string, note: string | undefined, errors: unknown[]): QuarantineRecord {
    const from = e.state;
    if (!NEXT[from].includes(to)) {
      throw new ForgeError('QUARANTINE_STATE', `quarantine ${e.id} cannot go from ${from} to ${to}`, { details: { id: e.id, from, to } });
    }
    const at = clock.now();
    const t: QuarantineTransition = Object.freeze({ from, to, actor, at, ...(note === undefined ? {} : { note }) });
    e.state = to;
    e.updatedAt = at;
    e.history.push(t);
    e.snapshot = snapshotOf(e);
    const final = isFinal(to);
    if (final) open.delete(e.containerId);
    const kind: QuarantineEventKind = to === 'released' ? 'released' : to === 'terminated' ? 'terminated' : 'state-changed';
    notify(event(kind, e.snapshot, t), final ? false : undefined, errors);
    return e.snapshot;
  }

  function act(id: string, to: QuarantineState, action: QuarantineAction): QuarantineRecord {
    if (!isState(to)) throw new ForgeError('INVALID_ARGUMENT', `unknown quarantine state: ${String(to)}`);
    const { actor, note } = checkAction(action);
    const e = entry(id);
    const errors: unknown[] = [];
    const rec = move(e, to, actor, note, errors);
    if (errors.length > 0) throw listenerFailure(errors);
    return rec;
  }

  function sweep(): readonly QuarantineRecord[] {
    const now = clock.now();
    const expired = [...open.values()].filter((e) => now - e.quarantinedAt > maxQuarantineMs);
    const errors: unknown[] = [];
    const done = expired.map((e) => move(e, 'terminated', SELF, SWEEP_NOTE, errors));
    if (errors.length > 0) throw listenerFailure(errors);
    return Object.freeze(done);
  }

  let timer: ReturnType<typeof setInterval> | undefined;
  if (sweepIntervalMs !== undefined) {
    timer = setInterval(() => {
      try {
        sweep();
      } catch (error) {
        onError(error);
      }
    }, sweepIntervalMs);
    timer.unref();
  }

  return {
    quarantine(containerId, input) {
      requireText(containerId, 'containerId');
      if (typeof input !== 'object' || input === null) throw new ForgeError('INVALID_ARGUMENT', 'quarantine needs a reason and an actor');
      const reason = requireText(input.reason, 'reason');
      const { actor, note } = checkAction(input);
      if (input.traceId !== undefined) requireText(input.traceId, 'traceId');
      const existing = open.get(containerId);
      if (existing !== undefined) return existing.snapshot;

      const at = clock.now();
      const t: QuarantineTransition = Object.freeze({ from: null, to: 'active', actor, at, ...(note === undefined ? {} : { note }) });
      const fields = { id: newId('qrn', at), containerId, reason, quarantinedAt: at, traceId: input.traceId, state: 'active' as const, updatedAt: at, history: [t] };
      const e: Entry = { ...fields, snapshot: snapshotOf(fields) };
      records.set(e.id, e);
      open.set(containerId, e);
      const errors: unknown[] = [];
      notify(event('quarantined', e.snapshot, t), true, errors);
      if (errors.length > 0) throw listenerFailure(errors);
      return e.snapshot;
    },
    transition: act,
    release: (id, action) => act(id, 'released', action),
    terminate: (id, action) => act(id, 'terminated', action),
    analyze(id, calls, action = { actor: SELF }) {
      const e = entry(id);
      if (!Array.isArray(calls)) throw new ForgeError('INVALID_ARGUMENT', 'calls must be an array of call records');
      const { actor, note } = checkAction(action);
      const errors: unknown[] = [];
      const record = e.state === 'active' ? move(e, 'analyzing', actor, note, errors) : e.snapshot;
      const report = buildReport(record, calls, clock.now());
      if (errors.length > 0) throw listenerFailure(errors);
      return report;
    },
    sweep,
    isQuarantined: (containerId) => open.has(containerId),
    get: (id) => entry(id).snapshot,
    list(filter = {}) {
      const { state, containerId } = filter;
      if (state !== undefined && !isState(state)) throw new ForgeError('INVALID_ARGUMENT', `unknown quarantine state: ${String(state)}`);
      const out: QuarantineRecord[] = [];
      for (const e of records.values()) {
        if ((state === undefined || e.state === state) && (containerId === undefined || e.containerId === containerId)) out.push(e.snapshot);
      }
      return Object.freeze(out);
    },
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
