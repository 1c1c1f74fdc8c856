import { ForgeError } from '@forgeone/common';
import { z } from 'zod';

/** The verdicts a call record can carry (the gate's `VERDICTS`). */
export const CALL_VERDICTS = Object.freeze(['allow', 'audit', 'deny', 'quarantine', 'suspended', 'terminated'] as const);

/** A call verdict. */
export type CallVerdict = (typeof CALL_VERDICTS)[number];

/** The canonical arguments of a call; only those it carried. */
export interface CallArgs {
  /** Canonical absolute guest path. */
  readonly path?: string;
  /** Canonical host name. */
  readonly host?: string;
  /** Port number. */
  readonly port?: number;
  /** A size in bytes. */
  readonly size?: number;
  /** Free-form detail (descriptor, key...). */
  readonly detail?: string;
}

/**
 * One host call of a guest, as the gate's recorder hands it over (the shape of the execution layer's
 * `CallRecord`; the observer defines its own so it does not depend on the execution layer).
 */
export interface TraceCallRecord {
  /** Sequence number in the container, from 0, consecutive. */
  readonly seq: number;
  /** Syscall name, e.g. `wasi:filesystem/read`. */
  readonly syscall: string;
  /** Canonical arguments. */
  readonly args: CallArgs;
  /** The recorded verdict. */
  readonly verdict: CallVerdict;
  /** The deciding rule (`node/rule`), or null. */
  readonly rule: string | null;
  /** Whether the call was performed. */
  readonly allowed: boolean;
  /** 0 for success, an errno or error-variant number otherwise, -1 when refused. */
  readonly result: number;
  /** Start, ms since the epoch (stored to the microsecond). */
  readonly start: number;
  /** Duration in ms (stored to the microsecond). */
  readonly duration: number;
  /** Result bytes of a call whose result cannot be recomputed, or null. */
  readonly resultBytes: Uint8Array | null;
}

/** Longest string field of a record (syscall, rule, path, host, detail), in UTF-16 units. */
export const MAX_RECORD_STRING = 4096;

const LONE_SURROGATE = /\p{Cs}/gu;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

function str(value: unknown, field: string, seq: number, allowEmpty = true): string {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0) || value.length > MAX_RECORD_STRING) {
    throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: ${field} must be a string of at most ${MAX_RECORD_STRING} characters`, { details: { seq, field } });
  }
  return wellFormed(value);
}

function int(value: unknown, field: string, seq: number, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: ${field} must be an integer >= ${min}`, { details: { seq, field } });
  }
  return value;
}

function micros(value: unknown, field: string, seq: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: ${field} must be a finite number >= 0`, { details: { seq, field } });
  }
  const us = Math.round(value * 1000);
  if (!Number.isSafeInteger(us)) throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: ${field} is out of range`, { details: { seq, field } });
  return us;
}

/**
 * Encode bytes as standard base64 (with padding).
 * @param bytes - the bytes
 * @returns base64 text
 */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Decode strict standard base64 (padding required, no white space).
 * @param text - base64 text
 * @returns the bytes, or undefined when the text is not strict base64
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/**
 * The canonical line object of a call record: times in integer microseconds, result bytes in base64,
 * every field present (`rule` and `resultBytes` may be null), only the arguments the call carried.
 * @param r - the record
 * @returns a plain object whose canonical JSON is the record's line
 * @throws ForgeError `INVALID_ARGUMENT` naming the record and field when a field is malformed
 */
export function recordLineObject(r: TraceCallRecord): Record<string, unknown> {
  if (typeof r !== 'object' || r === null) throw new ForgeError('INVALID_ARGUMENT', 'a call record must be an object');
  const seq = int(r.seq, 'seq', -1, 0);
  const a = r.args ?? {};
  if (typeof a !== 'object') throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: args must be an object`, { details: { seq, field: 'args' } });
  const args: Record<string, unknown> = {};
  if (a.path !== undefined) args.path = str(a.path, 'args.path', seq);
  if (a.host !== undefined) args.host = str(a.host, 'args.host', seq);
  if (a.port !== undefined) args.port = int(a.port, 'args.port', seq, 0);
  if (a.size !== undefined) args.size = int(a.size, 'args.size', seq, 0);
  if (a.detail !== undefined) args.detail = str(a.detail, 'args.detail', seq);
  if (!(CALL_VERDICTS as readonly string[]).includes(r.verdict)) {
    throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: unknown verdict ${JSON.stringify(r.verdict)}`, { details: { seq, field: 'verdict' } });
  }
  if (typeof r.allowed !== 'boolean') throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: allowed must be a boolean`, { details: { seq, field: 'allowed' } });
  if (r.resultBytes !== null && !(r.resultBytes instanceof Uint8Array)) {
    throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: resultBytes must be a Uint8Array or null`, { details: { seq, field: 'resultBytes' } });
  }
  return {
    t: 'call',
    seq,
    syscall: str(r.syscall, 'syscall', seq, false),
    args,
    verdict: r.verdict,
    rule: r.rule === null ? null : str(r.rule, 'rule', seq, false),
    allowed: r.allowed,
    result: int(r.result, 'result', seq, Number.MIN_SAFE_INTEGER),
    startUs: micros(r.start, 'start', seq),
    durationUs: micros(r.duration, 'duration', seq),
    resultBytes: r.resultBytes === null ? null : toBase64(r.resultBytes),
  };
}

const shortString = z.string().min(1).max(MAX_RECORD_STRING);
const safeInt = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const natural = safeInt.min(0);

/** Schema of a call record line. */
export const CallLineSchema = z.strictObject({
  t: z.literal('call'),
  seq: natural,
  block: natural,
  syscall: shortString,
  args: z.strictObject({
    path: z.string().max(MAX_RECORD_STRING).optional(),
    host: z.string().max(MAX_RECORD_STRING).optional(),
    port: natural.optional(),
    size: natural.optional(),
    detail: z.string().max(MAX_RECORD_STRING).optional(),
  }),
  verdict: z.enum(CALL_VERDICTS),
  rule: shortString.nullable(),
  allowed: z.boolean(),
  result: safeInt,
  startUs: natural,
  durationUs: natural,
  resultBytes: z
    .string()
    .refine((s) => fromBase64(s) !== undefined, 'not strict base64')
    .nullable(),
});

/** A parsed call record line. */
export type CallLine = z.infer<typeof CallLineSchema>;

/**
 * Turn a parsed call line back into a record.
 * @param line - a validated line
 * @returns the record (times in ms)
 */
export function recordFromLine(line: CallLine): TraceCallRecord {
  const args: { path?: string; host?: string; port?: number; size?: number; detail?: string } = {};
  if (line.args.path !== undefined) args.path = line.args.path;
  if (line.args.host !== undefined) args.host = line.args.host;
  if (line.args.port !== undefined) args.port = line.args.port;
  if (line.args.size !== undefined) args.size = line.args.size;
  if (line.args.detail !== undefined) args.detail = line.args.detail;
  return {
    seq: line.seq,
    syscall: line.syscall,
    args,
    verdict: line.verdict,
    rule: line.rule,
    allowed: line.allowed,
    result: line.result,
    start: line.startUs / 1000,
    duration: line.durationUs / 1000,
    resultBytes: line.resultBytes === null ? null : (fromBase64(line.resultBytes) ?? null),
  };
}

const q = JSON.stringify;

/**
 * The canonical JSON of a record line object from {@link recordLineObject} with its `block` set: the same
 * text `canonicalJson` gives (keys in sorted order), built directly because this runs once per recorded call.
 * @param o - the line object
 * @returns its canonical JSON
 */
export function recordLineText(o: Record<string, unknown>): string {
  const a = o.args as CallArgs;
  let args = '';
  if (a.detail !== undefined) args += `"detail":${q(a.detail)}`;
  if (a.host !== undefined) args += `${args === '' ? '' : ','}"host":${q(a.host)}`;
  if (a.path !== undefined) args += `${args === '' ? '' : ','}"path":${q(a.path)}`;
  if (a.port !== undefined) args += `${args === '' ? '' : ','}"port":${a.port}`;
  if (a.size !== undefined) args += `${args === '' ? '' : ','}"size":${a.size}`;
  const rule = o.rule === null ? 'null' : q(o.rule);
  const bytes = o.resultBytes === null ? 'null' : q(o.resultBytes);
  return (
    `{"allowed":${String(o.allowed)},"args":{${args}},"block":${String(o.block)},"durationUs":${String(o.durationUs)},"result":${String(o.result)},` +
    `"resultBytes":${bytes},"rule":${rule},"seq":${String(o.seq)},"startUs":${String(o.startUs)},"syscall":${q(o.syscall)},"t":"call","verdict":${q(o.verdict)}}`
  );
}
