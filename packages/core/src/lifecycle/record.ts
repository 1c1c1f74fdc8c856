/**
 * The container record and the pure functions that move it: {@link transition}, {@link restartRecord},
 * {@link accountUsage}. No I/O here; the registry persists what these return.
 *
 * @packageDocumentation
 */
import { ForgeError, isErrorCode, formatFieldPath, type ErrorCode, type TrustLevel } from '@forgeone/common';
import { z } from 'zod';
import {
  CONTAINER_STATUSES,
  CONTAINER_TRANSITIONS,
  RESTART_POLICIES,
  canTransition,
  restartAllowed,
  type ContainerStatus,
  type RestartPolicy,
} from './status.js';

/** Why a container changed state. `failed` always carries one with a code; `quarantined` always carries one. */
export interface StatusReason {
  /** A stable error code when the move is a failure (e.g. `KERNEL_RESTART`, `WASM_TRAP`). */
  readonly code?: ErrorCode;
  /** What happened, for people (at most 1024 characters; never secrets). */
  readonly message: string;
}

/** One move in a container's history. */
export interface TransitionEntry {
  /** The state left; absent for the first entry (the launch). */
  readonly from?: ContainerStatus;
  /** The state entered. */
  readonly to: ContainerStatus;
  /** When, in ms since the epoch. */
  readonly at: number;
  /** Why, when a reason was given. */
  readonly reason?: StatusReason;
}

/** What a container has used, accumulated over its whole life (restarts included). */
export interface ContainerResources {
  /** CPU time, in milliseconds. */
  readonly cpuMs: number;
  /** The highest memory use seen, in bytes. */
  readonly memoryBytesPeak: number;
  /** Host calls made. */
  readonly calls: number;
  /** Host calls the policy denied. */
  readonly denials: number;
}

/** The identity a container runs as, as recorded (the full identity lives with the kernel). */
export interface ContainerIdentity {
  /** The acting subject. */
  readonly subject: string;
  /** Its tenant. */
  readonly tenant: string;
  /** Its trust level at launch. */
  readonly trustLevel: TrustLevel;
}

/** The policy a container runs under. */
export interface PolicyRef {
  /** The policy's name. */
  readonly name: string;
  /** Its version (a positive integer). */
  readonly version: number;
}

/** Everything the kernel keeps about one container. Records are frozen; every change makes a new one. */
export interface ContainerRecord {
  /** `ctr_` + ULID. */
  readonly id: string;
  /** A readable name, unique among containers that are not terminal. */
  readonly name: string;
  /** The package's name from its manifest. */
  readonly packageName: string;
  /** The package's version. */
  readonly packageVersion: string;
  /** The package's digest (SHA3-256 of its signed manifest, hex). */
  readonly packageHash: string;
  /** Who it runs as. */
  readonly identity: ContainerIdentity;
  /** The policy it runs under. */
  readonly policy: PolicyRef;
  /** What happens when it ends or the kernel restarts. */
  readonly restartPolicy: RestartPolicy;
  /** Its current state. */
  readonly status: ContainerStatus;
  /** Why it entered its current state, when a reason was given. */
  readonly reason?: StatusReason;
  /** When it was launched, ms since the epoch. */
  readonly createdAt: number;
  /** When it last changed, ms since the epoch. */
  readonly updatedAt: number;
  /** While `stopping`: when the grace period ends and the kernel may terminate it. */
  readonly stopDeadline?: number;
  /** How many times it has been created again by its restart policy. */
  readonly restarts: number;
  /** Resources used. */
  readonly resources: ContainerResources;
  /** How many moves it has made in total (the history keeps only the latest). */
  readonly transitions: number;
  /** The latest moves, oldest first, at most the registry's `maxHistory`. */
  readonly history: readonly TransitionEntry[];
}

/** Usage to add with {@link accountUsage}; every field is optional and non-negative. */
export interface ResourceUsage {
  /** CPU time to add, ms. */
  readonly cpuMs?: number;
  /** Current memory use, bytes: raises the peak when higher. */
  readonly memoryBytes?: number;
  /** Calls to add (an integer). */
  readonly calls?: number;
  /** Denials to add (an integer). */
  readonly denials?: number;
}

/** Options of {@link transition} and {@link restartRecord}. */
export interface TransitionOptions {
  /** The time of the move, ms since the epoch. */
  readonly at: number;
  /** Why; required for `failed` (with a code) and `quarantined`. */
  readonly reason?: StatusReason;
  /** How many history entries to keep (default {@link DEFAULT_MAX_HISTORY}). */
  readonly maxHistory?: number;
  /** For a move to `stopping`: the grace period in ms (default 0: terminate at once when not stopped). */
  readonly graceMs?: number;
}

/** History entries a record keeps unless told otherwise. */
export const DEFAULT_MAX_HISTORY = 32;

const MAX_REASON_CHARS = 1024;

function invalid(field: string, message: string): ForgeError {
  return new ForgeError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

function checkTime(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(field, `must be a non-negative integer of ms, got ${String(value)}`);
  return value;
}

function checkReason(reason: StatusReason | undefined): StatusReason | undefined {
  if (reason === undefined) return undefined;
  if (typeof reason !== 'object' || reason === null) throw invalid('reason', 'must be an object { code?, message }');
  if (typeof reason.message !== 'string' || reason.message.length === 0 || reason.message.length > MAX_REASON_CHARS) {
    throw invalid('reason.message', `must be a string of 1-${MAX_REASON_CHARS} characters`);
  }
  if (reason.code !== undefined && (typeof reason.code !== 'string' || !isErrorCode(reason.code))) {
    throw invalid('reason.code', `unknown error code ${JSON.stringify(reason.code)}`);
  }
  return Object.freeze(reason.code === undefined ? { message: reason.message } : { code: reason.code, message: reason.message });
}

function appendHistory(history: readonly TransitionEntry[], entry: TransitionEntry, max: number): readonly TransitionEntry[] {
  const next = [...history, Object.freeze(entry)];
  return Object.freeze(next.length > max ? next.slice(next.length - max) : next);
}

function checkMaxHistory(value: number | undefined): number {
  const max = value ?? DEFAULT_MAX_HISTORY;
  if (!Number.isSafeInteger(max) || max < 1) throw invalid('maxHistory', `must be a positive integer, got ${String(value)}`);
  return max;
}

/**
 * Move a record to another state, as the transition table allows.
 * @param record - the current record
 * @param to - the wanted state
 * @param options - time, reason, history bound, grace period for `stopping`
 * @returns a new frozen record in state `to`, with the move appended to its history
 * @throws ForgeError `CONTAINER_INVALID_TRANSITION` when the table does not allow `record.status → to`
 *   (details `from`, `to`, `allowed`); `INVALID_ARGUMENT` for a missing or malformed reason (naming the field),
 *   a bad time or grace period
 * @example
 * ```ts
 * const running = transition(record, 'running', { at: Date.now() });
 * ```
 */
export function transition(record: ContainerRecord, to: ContainerStatus, options: TransitionOptions): ContainerRecord {
  const at = checkTime('at', options.at);
  const maxHistory = checkMaxHistory(options.maxHistory);
  if (!canTransition(record.status, to)) {
    throw new ForgeError('CONTAINER_INVALID_TRANSITION', `container ${record.id} cannot go from ${record.status} to ${String(to)}`, {
      details: { id: record.id, from: record.status, to, allowed: CONTAINER_TRANSITIONS[record.status] },
    });
  }
  const reason = checkReason(options.reason);
  if (to === 'failed' && reason?.code === undefined) throw invalid('reason.code', 'a move to failed needs a reason with an error code');
  if (to === 'quarantined' && reason === undefined) throw invalid('reason', 'a move to quarantined needs a reason');
  let stopDeadline: number | undefined;
  if (to === 'stopping') {
    const grace = options.graceMs ?? 0;
    if (!Number.isSafeInteger(grace) || grace < 0) throw invalid('graceMs', `must be a non-negative integer of ms, got ${String(options.graceMs)}`);
    stopDeadline = at + grace;
  }
  const entry: TransitionEntry = reason === undefined ? { from: record.status, to, at } : { from: record.status, to, at, reason };
  return freezeRecord({
    ...withoutTransient(record),
    status: to,
    ...(reason === undefined ? {} : { reason }),
    ...(stopDeadline === undefined ? {} : { stopDeadline }),
    updatedAt: at,
    transitions: record.transitions + 1,
    history: appendHistory(record.history, entry, maxHistory),
  });
}

/**
 * Create a terminal container again (the restart edge: `failed`/`stopped` → `creating`), as its restart policy allows.
 * @param record - a record in a terminal state
 * @param options - time, reason, history bound
 * @returns a new frozen record in `creating` with `restarts` raised by one; accumulated resources are kept
 * @throws ForgeError `CONTAINER_INVALID_TRANSITION` when the state is not terminal or the restart policy does not allow it;
 *   `INVALID_ARGUMENT` for a malformed reason or time
 */
export function restartRecord(record: ContainerRecord, options: TransitionOptions): ContainerRecord {
  const at = checkTime('at', options.at);
  const maxHistory = checkMaxHistory(options.maxHistory);
  if (!restartAllowed(record.restartPolicy, record.status)) {
    throw new ForgeError(
      'CONTAINER_INVALID_TRANSITION',
      `container ${record.id} in ${record.status} with restart policy ${record.restartPolicy} cannot be restarted`,
      { details: { id: record.id, from: record.status, to: 'creating', restartPolicy: record.restartPolicy } },
    );
  }
  const reason = checkReason(options.reason);
  const entry: TransitionEntry = reason === undefined ? { from: record.status, to: 'creating', at } : { from: record.status, to: 'creating', at, reason };
  return freezeRecord({
    ...withoutTransient(record),
    status: 'creating',
    ...(reason === undefined ? {} : { reason }),
    updatedAt: at,
    restarts: record.restarts + 1,
    transitions: record.transitions + 1,
    history: appendHistory(record.history, entry, maxHistory),
  });
}

function checkUsage(field: string, value: number | undefined, integer: boolean): number {
  if (value === undefined) return 0;
  const okNumber = typeof value === 'number' && Number.isFinite(value) && value >= 0 && (!integer || Number.isSafeInteger(value));
  if (!okNumber) throw invalid(`usage.${field}`, `must be a non-negative ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  return value;
}

/**
 * Add usage to a record: CPU time, calls and denials accumulate; memory keeps the peak.
 * @param record - the current record
 * @param usage - what was used since the last report
 * @param at - the time of the report, ms since the epoch
 * @returns a new frozen record
 * @throws ForgeError `INVALID_ARGUMENT` naming the field for a negative, non-finite or (calls, denials, memory) non-integer value
 */
export function accountUsage(record: ContainerRecord, usage: ResourceUsage, at: number): ContainerRecord {
  checkTime('at', at);
  if (typeof usage !== 'object' || usage === null) throw invalid('usage', 'must be an object');
  const cpuMs = checkUsage('cpuMs', usage.cpuMs, false);
  const memoryBytes = checkUsage('memoryBytes', usage.memoryBytes, true);
  const calls = checkUsage('calls', usage.calls, true);
  const denials = checkUsage('denials', usage.denials, true);
  const r = record.resources;
  return freezeRecord({
    ...record,
    updatedAt: Math.max(record.updatedAt, at),
    resources: {
      cpuMs: r.cpuMs + cpuMs,
      memoryBytesPeak: Math.max(r.memoryBytesPeak, memoryBytes),
      calls: r.calls + calls,
      denials: r.denials + denials,
    },
  });
}

function withoutTransient(record: ContainerRecord): Omit<ContainerRecord, 'reason' | 'stopDeadline'> {
  const { reason: _reason, stopDeadline: _deadline, ...rest } = record;
  return rest;
}

/**
 * Freeze a record and everything in it.
 * @param record - a record
 * @returns the same data, frozen
 */
export function freezeRecord(record: ContainerRecord): ContainerRecord {
  Object.freeze(record.identity);
  Object.freeze(record.policy);
  Object.freeze(record.resources);
  if (record.reason !== undefined) Object.freeze(record.reason);
  for (const h of record.history) {
    if (h.reason !== undefined) Object.freeze(h.reason);
    Object.freeze(h);
  }
  Object.freeze(record.history);
  return Object.freeze(record);
}

// --- persistence --------------------------------------------------------------------------------------

const StatusSchema = z.enum(CONTAINER_STATUSES);
const Time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const ReasonSchema = z.strictObject({
  code: z
    .string()
    .refine((c) => isErrorCode(c), 'unknown error code')
    .optional(),
  message: z.string().min(1).max(MAX_REASON_CHARS),
});

const PersistedRecordSchema = z.strictObject({
  v: z.literal(1),
  id: z.string().min(1).max(64),
  name: z.string().min(1).max(255),
  packageName: z.string().min(1).max(214),
  packageVersion: z.string().min(1).max(256),
  packageHash: z.string().regex(/^[0-9a-f]{64}$/),
  identity: z.strictObject({ subject: z.string().min(1).max(255), tenant: z.string().min(1).max(255), trustLevel: z.number().int().min(0).max(5) }),
  policy: z.strictObject({ name: z.string().min(1).max(255), version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
  restartPolicy: z.enum(RESTART_POLICIES),
  status: StatusSchema,
  reason: ReasonSchema.optional(),
  createdAt: Time,
  updatedAt: Time,
  stopDeadline: Time.optional(),
  restarts: Count,
  resources: z.strictObject({ cpuMs: z.number().finite().min(0), memoryBytesPeak: Count, calls: Count, denials: Count }),
  transitions: Count,
  history: z.array(z.strictObject({ from: StatusSchema.optional(), to: StatusSchema, at: Time, reason: ReasonSchema.optional() })).max(100_000),
});

/**
 * Encode a record as the bytes the registry stores (UTF-8 JSON with a format version).
 * @param record - a record
 * @returns its bytes
 */
export function encodeRecord(record: ContainerRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, ...record }));
}

/**
 * Decode stored bytes into a record, checking every field.
 * @param bytes - bytes written by {@link encodeRecord}
 * @param key - the store key, for the error message
 * @returns the frozen record
 * @throws ForgeError `STATE_CORRUPT` naming the key and the first bad field
 */
export function decodeRecord(bytes: Uint8Array, key: string): ContainerRecord {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new ForgeError('STATE_CORRUPT', `container record ${key} is not valid UTF-8 JSON`, { cause: e, details: { key } });
  }
  const parsed = PersistedRecordSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path: PropertyKey[] = [...(issue?.path ?? [])];
    if (issue?.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
    const field = formatFieldPath(path);
    throw new ForgeError('STATE_CORRUPT', `container record ${key}: ${field}: ${issue?.message ?? 'invalid'}`, { details: { key, field } });
  }
  const { v: _v, ...rest } = parsed.data;
  if (rest.id !== key) throw new ForgeError('STATE_CORRUPT', `container record ${key} holds id ${rest.id}`, { details: { key, field: 'id' } });
  return freezeRecord(stripUndefined(rest) as ContainerRecord);
}

function stripUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map(stripUndefined) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = stripUndefined(v);
    return out as T;
  }
  return value;
}

/**
 * Whether a status needs the kernel's attention after a restart (it was active when the kernel stopped).
 * @param status - a state
 * @returns true for `creating`, `running`, `paused` and `stopping`
 */
export function wasActive(status: ContainerStatus): boolean {
  return status === 'creating' || status === 'running' || status === 'paused' || status === 'stopping';
}
