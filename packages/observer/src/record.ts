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
const LONE_ONE = /\p{Cs}/u;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Replace lone surrogates by U+FFFD, as record lines store strings.
 * @param s - a string
 * @returns a well-formed string
 */
export function wellFormed(s: string): string {
  return LONE_ONE.test(s) ? s.replace(LONE_SURROGATE, '\uFFFD') : s;
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
 * The reference form: the writer uses {@link callLineText}, which is property-tested to give exactly
 * `canonicalJson` of this object (with `block` set).
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

const VERDICT_SET: ReadonlySet<string> = new Set(CALL_VERDICTS);
const ARG_ERROR = 'args must be an object';

function argStr(value: unknown, field: string, seq: number): string {
  if (typeof value !== 'string' || value.length > MAX_RECORD_STRING) return q(str(value, field, seq));
  return LONE_ONE.test(value) ? q(wellFormed(value)) : q(value);
}

function uint(value: unknown, field: string, seq: number): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  return int(value, field, seq, 0);
}

/**
 * Validate a record and write its canonical line in one pass (no intermediate object): the same text as
 * `canonicalJson` of {@link recordLineObject} with `block` set (property-tested), and the same errors.
 * This runs once per recorded call.
 * @param r - the record
 * @param block - the index of the block it falls in
 * @returns the line
 * @throws ForgeError `INVALID_ARGUMENT` naming the record and field when a field is malformed
 */
export function callLineText(r: TraceCallRecord, block: number): string {
  if (typeof r !== 'object' || r === null) throw new ForgeError('INVALID_ARGUMENT', 'a call record must be an object');
  const seq = r.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) int(seq, 'seq', -1, 0);
  const a = r.args ?? {};
  if (typeof a !== 'object') throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: ${ARG_ERROR}`, { details: { seq, field: 'args' } });
  let args = '';
  if (a.detail !== undefined) args = `"detail":${argStr(a.detail, 'args.detail', seq)}`;
  if (a.host !== undefined) args += `${args === '' ? '' : ','}"host":${argStr(a.host, 'args.host', seq)}`;
  if (a.path !== undefined) args += `${args === '' ? '' : ','}"path":${argStr(a.path, 'args.path', seq)}`;
  if (a.port !== undefined) args += `${args === '' ? '' : ','}"port":${uint(a.port, 'args.port', seq)}`;
  if (a.size !== undefined) args += `${args === '' ? '' : ','}"size":${uint(a.size, 'args.size', seq)}`;
  const verdict = r.verdict;
  if (!VERDICT_SET.has(verdict)) throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: unknown verdict ${JSON.stringify(verdict)}`, { details: { seq, field: 'verdict' } });
  if (typeof r.allowed !== 'boolean') throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: allowed must be a boolean`, { details: { seq, field: 'allowed' } });
  const rb = r.resultBytes;
  if (rb !== null && !(rb instanceof Uint8Array)) {
    throw new ForgeError('INVALID_ARGUMENT', `record ${seq}: resultBytes must be a Uint8Array or null`, { details: { seq, field: 'resultBytes' } });
  }
  const syscall = r.syscall;
  const sys = typeof syscall === 'string' && syscall.length > 0 && syscall.length <= MAX_RECORD_STRING && !LONE_ONE.test(syscall) ? q(syscall) : q(str(syscall, 'syscall', seq, false));
  const rule = r.rule === null ? 'null' : typeof r.rule === 'string' && r.rule.length > 0 && r.rule.length <= MAX_RECORD_STRING && !LONE_ONE.test(r.rule) ? q(r.rule) : q(str(r.rule, 'rule', seq, false));
  const result = typeof r.result === 'number' && Number.isSafeInteger(r.result) ? r.result : int(r.result, 'result', seq, Number.MIN_SAFE_INTEGER);
  const startUs = micros(r.start, 'start', seq);
  const durationUs = micros(r.duration, 'duration', seq);
  const bytes = rb === null ? 'null' : `"${Buffer.from(rb.buffer, rb.byteOffset, rb.byteLength).toString('base64')}"`;
  return (
    `{"allowed":${r.allowed ? 'true' : 'false'},"args":{${args}},"block":${block},"durationUs":${durationUs},"result":${result},` +
    `"resultBytes":${bytes},"rule":${rule},"seq":${seq},"startUs":${startUs},"syscall":${sys},"t":"call","verdict":"${verdict}"}`
  );
}

/** A character a fast-scanned line must not hold: a backslash (escapes) or a control character. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const SLOW_CHARS = /[\u0000-\u001f\\]/;

/**
 * A scanner over one canonical call line: reads the fields in their canonical order straight from the
 * text, with no JSON parse and no intermediate object. Every method returns a failure marker rather than
 * throwing; any failure sends the line to the slow path.
 */
class Scan {
  pos = 0;
  ok = true;
  constructor(readonly s: string) {}

  lit(l: string): boolean {
    if (this.s.startsWith(l, this.pos)) {
      this.pos += l.length;
      return true;
    }
    return (this.ok = false);
  }

  /** An integer in canonical form (`0`, `-?[1-9][0-9]*`), safe; NaN on failure. */
  int(signed: boolean): number {
    const s = this.s;
    let p = this.pos;
    let neg = false;
    if (signed && s.charCodeAt(p) === 45) {
      neg = true;
      p++;
    }
    const start = p;
    let v = 0;
    for (let c = s.charCodeAt(p); c >= 48 && c <= 57; c = s.charCodeAt(++p)) v = v * 10 + (c - 48);
    const digits = p - start;
    if (digits === 0 || (digits > 1 && s.charCodeAt(start) === 48) || (neg && v === 0) || digits > 16 || !Number.isSafeInteger(v)) {
      this.ok = false;
      return NaN;
    }
    this.pos = p;
    return neg ? -v : v;
  }

  /** A string's contents (the line holds no backslash or control character, so they are its value). */
  str(min: number): string {
    const s = this.s;
    if (s.charCodeAt(this.pos) !== 34) {
      this.ok = false;
      return '';
    }
    const end = s.indexOf('"', this.pos + 1);
    const len = end - this.pos - 1;
    if (end < 0 || len < min || len > MAX_RECORD_STRING) {
      this.ok = false;
      return '';
    }
    const v = s.slice(this.pos + 1, end);
    this.pos = end + 1;
    return v;
  }

  /** `null`, or a string. */
  strOrNull(min: number): string | null {
    if (this.s.startsWith('null', this.pos)) {
      this.pos += 4;
      return null;
    }
    return this.str(min);
  }
}

/**
 * The verifier's fast path for a call line: reads it when it is exactly the canonical form of a valid call
 * line (what `canonicalJson` and {@link CallLineSchema} accept), else returns null and the caller takes
 * the slow path, which names the problem. Lines holding a backslash or a control character always take
 * the slow path; the caller must not use this on text that may hold lone surrogates (strict UTF-8 input never does).
 * @param text - the line
 * @returns the call line, or null
 */
export function scanCallLine(text: string): CallLine | null {
  if (!text.startsWith('{"allowed":') || SLOW_CHARS.test(text)) return null;
  const c = new Scan(text);
  c.pos = 11;
  let allowed: boolean;
  if (text.startsWith('true', 11)) {
    allowed = true;
    c.pos = 15;
  } else if (text.startsWith('false', 11)) {
    allowed = false;
    c.pos = 16;
  } else return null;
  if (!c.lit(',"args":{')) return null;
  const args: { path?: string; host?: string; port?: number; size?: number; detail?: string } = {};
  let first = true;
  const key = (k: string): boolean => {
    if (text.startsWith(first ? k : `,${k}`, c.pos)) {
      c.pos += k.length + (first ? 0 : 1);
      first = false;
      return true;
    }
    return false;
  };
  if (key('"detail":')) args.detail = c.str(0);
  if (key('"host":')) args.host = c.str(0);
  if (key('"path":')) args.path = c.str(0);
  if (key('"port":')) args.port = c.int(false);
  if (key('"size":')) args.size = c.int(false);
  c.lit('},"block":');
  const block = c.int(false);
  c.lit(',"durationUs":');
  const durationUs = c.int(false);
  c.lit(',"result":');
  const result = c.int(true);
  c.lit(',"resultBytes":');
  const resultBytes = c.ok ? c.strOrNull(0) : null;
  if (resultBytes !== null && (resultBytes.length % 4 !== 0 || !BASE64.test(resultBytes))) return null;
  c.lit(',"rule":');
  const rule = c.ok ? c.strOrNull(1) : null;
  c.lit(',"seq":');
  const seq = c.int(false);
  c.lit(',"startUs":');
  const startUs = c.int(false);
  c.lit(',"syscall":');
  const syscall = c.ok ? c.str(1) : '';
  c.lit(',"t":"call","verdict":');
  const verdict = c.ok ? c.str(1) : '';
  if (!c.ok || c.pos !== text.length - 1 || text.charCodeAt(c.pos) !== 125 || !VERDICT_SET.has(verdict)) return null;
  return { t: 'call', seq, block, syscall, args, verdict: verdict as CallVerdict, rule, allowed, result, startUs, durationUs, resultBytes };
}
