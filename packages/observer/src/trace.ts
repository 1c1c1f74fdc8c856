import { ForgeError, canonicalJson, concatBytes, systemClock, toHex, trustLevelName, utf8 } from '@forgeone/common';
import type { Clock, TrustLevelName } from '@forgeone/common';
import { createCryptoProvider } from '@forgeone/crypto';
import type { CryptoProvider, SigningKey } from '@forgeone/crypto';
import type { Store } from '@forgeone/store';
import { z } from 'zod';
import { ChainVerifier, ChainWriter, REASON, hasLoneSurrogate, splitLines, trustedKeyMap } from './chain.js';
import type { ChainSpec, Line, TrustedKeys, VerifiedCheckpoint } from './chain.js';
import type { VerifyIssue } from './codes.js';
import { CALL_VERDICTS, CallLineSchema, MAX_RECORD_STRING, callLineText, scanCallLine, recordFromLine, wellFormed } from './record.js';
import type { CallLine, TraceCallRecord } from './record.js';
import { MAX_RED_FLAGS, SummaryAccumulator, integrityMilli } from './summary.js';
import type { AnomalyFlag, RedFlag } from './summary.js';

/** The execution DNA format name; also the domain of its hashes and signatures. */
export const DNA_FORMAT = 'forgeone.dna/v2';

/** Trace ids: 1–120 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit (they name a store log `trace/<id>`). */
export const TRACE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$/;

/** Default records per block. */
export const DEFAULT_BLOCK_SIZE = 256;

/** Longest line the verifier accepts, in UTF-16 units. */
export const MAX_LINE_LENGTH = 32 * 1024 * 1024;

const name = z.string().min(1).max(256);
const natural = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** Longest guest input a trace header keeps (UTF-16 units). */
export const MAX_INVOCATION_INPUT = 65536;

/** Schema of the header line of a trace. */
export const TraceHeaderSchema = z.strictObject({
  t: z.literal('header'),
  format: z.literal(DNA_FORMAT),
  traceId: z.string().regex(TRACE_ID),
  containerId: name,
  identity: z.strictObject({
    subject: name,
    tenant: name,
    roles: z.array(name),
    trustLevel: z.enum(['Compromised', 'Untrusted', 'Limited', 'Verified', 'Trusted', 'Root']),
    trustScore: z.number().int().min(0).max(1000),
  }),
  package: z.strictObject({ name, version: name, hash: z.string().max(256) }),
  policy: z.strictObject({ name, version: natural }),
  kernelKeyId: hex64,
  startTime: natural,
  blockSize: z.number().int().min(1).max(1_000_000),
  checkpointEvery: z.number().int().min(0).max(1_000_000),
  invocation: z.strictObject({ export: name, input: z.string().max(MAX_INVOCATION_INPUT) }).optional(),
  restoredFrom: z
    .strictObject({ snapshot: hex64, traceId: z.string().regex(TRACE_ID), containerId: name, seq: natural, blockHash: hex64.optional() })
    .optional(),
});

/** The header of a trace, as stored (line 1 of the export). */
export type TraceHeader = z.infer<typeof TraceHeaderSchema>;

const recordString = z.string().min(1).max(MAX_RECORD_STRING);
const RedFlagSchema = z.strictObject({ seq: natural, syscall: recordString, verdict: z.enum(CALL_VERDICTS), rule: recordString.nullable() });
const FlagSchema = z.strictObject({
  name: z.string().min(1).max(128),
  severity: z.enum(['low', 'medium', 'high']),
  detail: z.string().max(4096).optional(),
  seq: natural.optional(),
});

/** Schema of the summary line of a trace. */
export const TraceSummarySchema = z.strictObject({
  t: z.literal('summary'),
  blocks: natural,
  records: natural,
  allowed: natural,
  audits: natural,
  denials: natural,
  quarantines: natural,
  suspended: natural,
  terminated: natural,
  integrity: z.number().int().min(0).max(1000),
  redFlags: z.array(RedFlagSchema).max(MAX_RED_FLAGS),
  redFlagsOmitted: natural,
  flags: z.array(FlagSchema).max(1024),
  endTime: natural,
  exitCode: z.number().int().min(-(2 ** 31)).max(2 ** 32).nullable(),
  outcome: z.string().regex(REASON).nullable(),
});

/** The final summary of a trace: counts, integrity (thousandths, see `INTEGRITY_PENALTIES`), red flags, anomaly flags. */
export type TraceSummary = z.infer<typeof TraceSummarySchema>;

/** The identity a trace header records; an `IdentityContext` from `@forgeone/common` fits. */
export interface TraceIdentityInput {
  /** The acting subject. */
  readonly subject: string;
  /** Its tenant. */
  readonly tenant: string;
  /** Its roles. */
  readonly roles: readonly string[];
  /** Its trust: level (0–5) and score in [0, 1] (stored in thousandths). */
  readonly trust: { readonly level: number; readonly score: number };
}

/** What the caller supplies for a trace header. */
export interface TraceHeaderInit {
  /** The trace id (see {@link TRACE_ID}); unique per store. */
  readonly traceId: string;
  /** The container that ran. */
  readonly containerId: string;
  /** Who ran it. */
  readonly identity: TraceIdentityInput;
  /** What ran. */
  readonly package: { readonly name: string; readonly version: string; readonly hash: string };
  /** Which policy governed it. */
  readonly policy: { readonly name: string; readonly version: number };
  /** Start time, ms since the epoch; default: the clock's now. */
  readonly startTime?: number;
  /**
   * How the kernel called the guest (the export and its input), so a replay needs nothing but the trace and
   * the package. Omit it when the input must not be kept (a replay then has to be given it).
   */
  readonly invocation?: { readonly export: string; readonly input: string };
  /**
   * The snapshot a restored container started from: the SHA3-256 (hex) of the snapshot file, the trace
   * and container it was taken of, and its position. The trace's records start at `seq` (the calls below it
   * are in the trace the snapshot names).
   */
  readonly restoredFrom?: { readonly snapshot: string; readonly traceId: string; readonly containerId: string; readonly seq: number; readonly blockHash?: string };
}

/** What the caller adds to the summary at stop. */
export interface TraceStopInput {
  /** End time, ms since the epoch; default: the clock's now. */
  readonly endTime?: number;
  /** The guest's exit code, if it exited. */
  readonly exitCode?: number;
  /** How the run ended: a short lowercase word, e.g. `exited`, `trapped`, `timeout`, `quarantined`, `terminated`. */
  readonly outcome?: string;
  /** Anomalies raised during the run. */
  readonly flags?: readonly AnomalyFlag[];
}

/** A checkpoint as written. */
export interface TraceCheckpointInfo {
  /** The trace id. */
  readonly id: string;
  /** The last block it covers (-1: none). */
  readonly block: number;
  /** That block's hash (the header hash for -1), hex. */
  readonly hash: string;
  /** Records covered. */
  readonly records: number;
  /** Why. */
  readonly reason: string;
  /** The signing key. */
  readonly keyId: string;
}

/** Options of {@link createTraceWriter}. */
export interface TraceWriterOptions {
  /** Where the trace is kept: one append-only log `trace/<traceId>`. */
  readonly store: Store;
  /** Hashes. */
  readonly crypto: CryptoProvider;
  /** The kernel key that signs checkpoints. */
  readonly signingKey: SigningKey;
  /** The header fields. */
  readonly header: TraceHeaderInit;
  /** Records per block (default 256). */
  readonly blockSize?: number;
  /** A signed checkpoint every this many blocks (default 0: only at explicit checkpoints and stop). */
  readonly checkpointEvery?: number;
  /** Clock for default start and end times. */
  readonly clock?: Clock;
}

/** Writes one trace. Calls apply in the order they are made; each resolves once its lines are durable. */
export interface TraceWriter {
  /** The trace id. */
  readonly traceId: string;
  /** The sequence number of the next record: records accepted so far (plus the header's `restoredFrom.seq`). */
  readonly records: number;
  /** Blocks sealed so far. */
  readonly blocks: number;
  /**
   * Append call records (sealing blocks as they fill). The batch is validated whole first.
   * @param records - records with consecutive sequence numbers continuing the trace
   * @returns once the records (and any seals and checkpoints they caused) are durable
   * @throws ForgeError `INVALID_ARGUMENT` for a malformed record or a sequence gap (nothing is written),
   *   or when the trace is stopped; `IO_ERROR` when the store fails (the writer then refuses further calls)
   */
  append(records: readonly TraceCallRecord[]): Promise<void>;
  /**
   * Seal the open block (even when empty) and write a signed checkpoint, e.g. at quarantine.
   * @param reason - a short lowercase word (`quarantine`, `release`, ...); not `start` or `stop`
   * @returns the checkpoint, once durable
   * @throws ForgeError `INVALID_ARGUMENT` for a bad reason or a stopped trace, `IO_ERROR` as {@link TraceWriter.append}
   */
  checkpoint(reason: string): Promise<TraceCheckpointInfo>;
  /**
   * Seal the open block, write the summary and the signed stop checkpoint. The trace accepts nothing after.
   * @param input - end time, exit code, outcome and anomaly flags
   * @returns the summary, once durable
   * @throws ForgeError `INVALID_ARGUMENT` for malformed input or a stopped trace, `IO_ERROR` as {@link TraceWriter.append}
   */
  stop(input?: TraceStopInput): Promise<TraceSummary>;
}

/** The trace format description the chain verifier works from. */
export const TRACE_SPEC: ChainSpec<TraceHeader, CallLine, TraceSummary> = {
  format: DNA_FORMAT,
  entryType: 'call',
  headerSchema: TraceHeaderSchema,
  entrySchema: CallLineSchema,
  summarySchema: TraceSummarySchema,
  idOf: (h) => h.traceId,
  firstSeq: (h) => h.restoredFrom?.seq ?? 0,
  sameKey: true,
  scanEntry: scanCallLine,
};

function checkInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ForgeError('INVALID_ARGUMENT', `${field} must be an integer in [${min}, ${max}]`, { details: { field } });
  }
  return value;
}

/**
 * The store log name of a trace.
 * @param traceId - the trace id
 * @returns `trace/<traceId>`
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed id
 */
export function traceLogName(traceId: string): string {
  if (typeof traceId !== 'string' || !TRACE_ID.test(traceId)) throw new ForgeError('INVALID_ARGUMENT', `invalid trace id ${JSON.stringify(traceId)}`, { details: { field: 'traceId' } });
  return `trace/${traceId}`;
}

function buildHeader(init: TraceHeaderInit, keyId: string, blockSize: number, checkpointEvery: number, clock: Clock): TraceHeader {
  let level: TrustLevelName;
  try {
    level = trustLevelName(init.identity.trust.level as 0);
  } catch (e) {
    throw new ForgeError('INVALID_ARGUMENT', 'header.identity.trust.level is not a trust level', { cause: e, details: { field: 'identity.trust.level' } });
  }
  const score = init.identity.trust.score;
  if (typeof score !== 'number' || !(score >= 0 && score <= 1)) throw new ForgeError('INVALID_ARGUMENT', 'header.identity.trust.score must be in [0, 1]', { details: { field: 'identity.trust.score' } });
  const candidate = {
    t: 'header',
    format: DNA_FORMAT,
    traceId: init.traceId,
    containerId: init.containerId,
    identity: { subject: init.identity.subject, tenant: init.identity.tenant, roles: [...init.identity.roles], trustLevel: level, trustScore: Math.round(score * 1000) },
    package: { name: init.package?.name, version: init.package?.version, hash: init.package?.hash },
    policy: { name: init.policy?.name, version: init.policy?.version },
    kernelKeyId: keyId,
    startTime: Math.floor(init.startTime ?? clock.now()),
    blockSize,
    checkpointEvery,
    ...(init.invocation === undefined ? {} : { invocation: { export: init.invocation.export, input: wellFormed(String(init.invocation.input)) } }),
    ...(init.restoredFrom === undefined ? {} : { restoredFrom: { ...init.restoredFrom } }),
  };
  const parsed = TraceHeaderSchema.safeParse(candidate);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ForgeError('INVALID_ARGUMENT', `invalid trace header field ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`, { details: { field: i?.path.join('.') } });
  }
  return parsed.data;
}

function summaryChecker(acc: SummaryAccumulator, blocks: () => number): (s: TraceSummary) => string | null {
  return (s) => {
    if (s.blocks !== blocks()) return `summary says ${s.blocks} blocks, ${blocks()} are sealed`;
    const c = acc.counts();
    for (const k of ['records', 'allowed', 'audits', 'denials', 'quarantines', 'suspended', 'terminated'] as const) {
      if (s[k] !== c[k]) return `summary says ${k} = ${s[k]}, the records give ${c[k]}`;
    }
    if (canonicalJson(s.redFlags) !== canonicalJson(acc.redFlags) || s.redFlagsOmitted !== acc.redFlagsOmitted) return 'the red flags do not match the records';
    const expected = integrityMilli(c, s.flags, s.outcome === 'terminated' || c.terminated > 0);
    if (s.integrity !== expected) return `summary says integrity ${s.integrity}, the records and flags give ${expected}`;
    return null;
  };
}

/**
 * Start a trace: write its header and signed start checkpoint to a new store log `trace/<traceId>`.
 * @param options - store, crypto, signing key, header, block size, checkpoint interval
 * @returns the writer, once the header is durable
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed header or option, `ALREADY_EXISTS` when the trace
 *   already has records, `IO_ERROR` when the store fails
 * @example
 * ```ts
 * const w = await createTraceWriter({ store, crypto, signingKey, header });
 * await w.append(records);
 * await w.stop({ outcome: 'exited', exitCode: 0 });
 * ```
 */
export async function createTraceWriter(options: TraceWriterOptions): Promise<TraceWriter> {
  const { store, crypto, signingKey } = options;
  const blockSize = checkInt(options.blockSize ?? DEFAULT_BLOCK_SIZE, 'blockSize', 1, 1_000_000);
  const checkpointEvery = checkInt(options.checkpointEvery ?? 0, 'checkpointEvery', 0, 1_000_000);
  const clock = options.clock ?? systemClock;
  const header = buildHeader(options.header, signingKey.keyId, blockSize, checkpointEvery, clock);
  const log = await store.log(traceLogName(header.traceId));
  if (log.length !== 0) throw new ForgeError('ALREADY_EXISTS', `trace ${header.traceId} already exists`, { details: { traceId: header.traceId } });
  const headerLine = canonicalJson(header);
  const verifierDomains = new ChainVerifier(TRACE_SPEC, crypto, null).domains;
  const headerHash = crypto.sha3_256(concatBytes(verifierDomains.header, utf8(headerLine)));
  const w = new ChainWriter(DNA_FORMAT, header.traceId, header, log, crypto, signingKey, { prev: headerHash, block: 0, nextSeq: header.restoredFrom?.seq ?? 0, sealedRecords: 0, open: null });
  const acc = new SummaryAccumulator();
  const first = [headerLine];
  w.checkpoint('start', undefined, first);
  await w.commit(first);

  return {
    traceId: header.traceId,
    get records() {
      return w.state.nextSeq;
    },
    get blocks() {
      return w.state.block;
    },
    append(records) {
      try {
        w.check('append');
        if (!Array.isArray(records)) throw new ForgeError('INVALID_ARGUMENT', 'records must be an array');
        // Validate and serialise the whole batch first: a bad record writes nothing. The block a record
        // falls in is part of its line, so a record moved across a seal is caught where it stands.
        const n = records.length;
        const texts = new Array<string>(n);
        let seq = w.state.nextSeq;
        let block = w.state.block;
        let fill = w.openCount;
        for (let i = 0; i < n; i++) {
          const r = records[i]!;
          const text = callLineText(r, block);
          if (r.seq !== seq) throw new ForgeError('INVALID_ARGUMENT', `record ${String(r.seq)} out of sequence: expected ${seq}`, { details: { seq: r.seq, expected: seq } });
          texts[i] = text;
          seq++;
          if (++fill === blockSize) {
            fill = 0;
            block++;
          }
        }
        let room = 0;
        for (let i = 0; i < n; i++) room += texts[i]!.length;
        const bytes = { buf: Buffer.allocUnsafe(room * 3 + n * w.domains.record.length), off: 0 };
        const out: Line[] = [];
        for (let i = 0; i < n; i++) {
          const r = records[i]!;
          w.entry(texts[i]!, r.seq, out, bytes);
          acc.add(r);
        }
        return w.commit(out);
      } catch (e) {
        return Promise.reject(e);
      }
    },
    async checkpoint(reason) {
      w.check('checkpoint');
      if (typeof reason !== 'string' || !REASON.test(reason) || reason === 'start' || reason === 'stop') {
        throw new ForgeError('INVALID_ARGUMENT', `invalid checkpoint reason ${JSON.stringify(reason)}`, { details: { field: 'reason' } });
      }
      const out: string[] = [];
      w.seal(out);
      const info = w.checkpoint(reason, undefined, out);
      await w.commit(out);
      return info;
    },
    async stop(input = {}) {
      w.check('stop');
      const c = acc.counts();
      const flags = (input.flags ?? []).map((f) => ({ ...f }));
      const outcome = input.outcome ?? null;
      const candidate = {
        t: 'summary' as const,
        blocks: w.state.block + 1,
        ...c,
        integrity: integrityMilli(c, flags, outcome === 'terminated' || c.terminated > 0),
        redFlags: acc.redFlags.map((r): RedFlag => ({ ...r })),
        redFlagsOmitted: acc.redFlagsOmitted,
        flags,
        endTime: Math.floor(input.endTime ?? clock.now()),
        exitCode: input.exitCode ?? null,
        outcome,
      };
      const parsed = TraceSummarySchema.safeParse(candidate);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        throw new ForgeError('INVALID_ARGUMENT', `invalid stop input ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`, { details: { field: i?.path.join('.') } });
      }
      const out: string[] = [];
      w.seal(out);
      const summary = { ...parsed.data, blocks: w.state.block };
      const summaryLine = canonicalJson(summary);
      out.push(summaryLine);
      const summaryHash = toHex(crypto.sha3_256(concatBytes(w.domains.summary, utf8(summaryLine))));
      w.checkpoint('stop', summaryHash, out);
      w.close();
      await w.commit(out);
      return summary;
    },
  };
}

/** A trace read back: header, records, checkpoints, summary. */
export interface Trace {
  /** The header. */
  readonly header: TraceHeader;
  /** The call records, in order. */
  readonly records: readonly TraceCallRecord[];
  /** The checkpoints (not signature-checked by {@link parseTrace}; see {@link verifyTrace}). */
  readonly checkpoints: readonly VerifiedCheckpoint[];
  /** The summary, or null when the trace was not stopped. */
  readonly summary: TraceSummary | null;
  /** Sealed blocks. */
  readonly blocks: number;
  /** Whether the trace ends with its stop checkpoint. */
  readonly complete: boolean;
}

/** Options of {@link verifyTrace}. */
export interface VerifyTraceOptions {
  /** Keys trusted to sign checkpoints (the kernel keys). */
  readonly trustedKeys: TrustedKeys;
  /** Hashes and signature checks; default the `node` provider. */
  readonly crypto?: CryptoProvider;
  /** Accept a trace that ends before its stop checkpoint (still running, or the kernel crashed). Default false. */
  readonly allowIncomplete?: boolean;
}

/** The outcome of {@link verifyTrace}. */
export interface TraceVerification {
  /** Whether the trace verified. */
  readonly ok: boolean;
  /** The first problem and where it is, or null. */
  readonly issue: VerifyIssue | null;
  /** The header's trace id, when the header parsed. */
  readonly traceId: string | null;
  /** The header, when it parsed. */
  readonly header: TraceHeader | null;
  /** Records read before the end or the problem. */
  readonly records: number;
  /** Blocks sealed and verified. */
  readonly blocks: number;
  /** Checkpoints verified. */
  readonly checkpoints: readonly VerifiedCheckpoint[];
  /** Key ids that signed the verified checkpoints. */
  readonly signers: readonly string[];
  /** Whether the trace ends with its stop checkpoint. */
  readonly complete: boolean;
  /** The summary, when verified. */
  readonly summary: TraceSummary | null;
}

function runTrace(
  input: string | Uint8Array,
  crypto: CryptoProvider,
  keys: ReadonlyMap<string, Uint8Array> | null,
  allowIncomplete: boolean,
  records: TraceCallRecord[] | null,
): ChainVerifier<TraceHeader, CallLine, TraceSummary> {
  const acc = new SummaryAccumulator();
  const v: ChainVerifier<TraceHeader, CallLine, TraceSummary> = new ChainVerifier(TRACE_SPEC, crypto, keys, {
    onEntry: (e) => {
      acc.add(e);
      records?.push(recordFromLine(e));
    },
    checkSummary: summaryChecker(acc, () => v.block),
  });
  v.fast = !hasLoneSurrogate(input);
  for (const line of splitLines(input)) {
    if (line !== undefined && line.length > MAX_LINE_LENGTH) {
      v.issue = { code: 'TOO_LARGE', message: `line ${v.lines + 1}: longer than ${MAX_LINE_LENGTH} characters`, line: v.lines + 1 };
      break;
    }
    if (v.push(line) !== null) break;
  }
  v.end(allowIncomplete);
  return v;
}

/**
 * Verify an exported trace offline (no kernel, no store): the header against the signed start checkpoint,
 * every record against its block's seal, every seal against the chain, every checkpoint's signature against
 * the trusted keys and its place in the chain, the summary against the records and the stop checkpoint.
 * It stops at the first problem and says where: a stable code ({@link VerifyCodes}), the line, and the
 * record sequence number or block index when there is one. Never throws on bad input.
 * @param exported - the export ({@link exportTrace}), as text or UTF-8 bytes
 * @param options - trusted keys, crypto provider, whether an unfinished trace is acceptable
 * @returns the verification
 * @example
 * ```ts
 * const v = verifyTrace(text, { trustedKeys: [kernelKey.toPublic()] });
 * if (!v.ok) console.error(v.issue?.code, v.issue?.line, v.issue?.message);
 * ```
 */
export function verifyTrace(exported: string | Uint8Array, options: VerifyTraceOptions): TraceVerification {
  const crypto = options.crypto ?? createCryptoProvider('node');
  const v = runTrace(exported, crypto, trustedKeyMap(crypto, options.trustedKeys ?? []), options.allowIncomplete ?? false, null);
  const ok = v.issue === null;
  return {
    ok,
    issue: v.issue,
    traceId: v.header?.traceId ?? null,
    header: v.header,
    records: v.nextSeq - (v.header?.restoredFrom?.seq ?? 0),
    blocks: v.block,
    checkpoints: [...v.checkpoints],
    signers: [...new Set(v.checkpoints.map((c) => c.keyId))].sort(),
    complete: ok && v.last === 'stop',
    summary: ok ? v.summary : null,
  };
}

/**
 * Parse an exported trace: structure and hashes are checked, signatures are not (use {@link verifyTrace}
 * for that). A trace that was not stopped parses (`complete: false`).
 * @param exported - the export, as text or UTF-8 bytes
 * @param crypto - hashes; default the `node` provider
 * @returns the trace
 * @throws ForgeError `STATE_CORRUPT` naming the line, with the verification issue in `details`
 */
export function parseTrace(exported: string | Uint8Array, crypto: CryptoProvider = createCryptoProvider('node')): Trace {
  const records: TraceCallRecord[] = [];
  const v = runTrace(exported, crypto, null, true, records);
  if (v.issue !== null || v.header === null) {
    const issue = v.issue ?? { code: 'HEADER_MISSING', message: 'no header', line: 1 };
    throw new ForgeError('STATE_CORRUPT', `trace is damaged: ${issue.message}`, { details: { ...issue } });
  }
  return { header: v.header, records, checkpoints: [...v.checkpoints], summary: v.summary, blocks: v.block, complete: v.last === 'stop' };
}

/**
 * Export a stored trace as one file: JSON lines (header, records, seals, checkpoints, summary), each the
 * exact canonical bytes the store holds, one per line, ending with a newline. Line `n` is store record `n - 1`.
 * @param store - the store
 * @param traceId - the trace
 * @returns the export
 * @throws ForgeError `NOT_FOUND` when the trace has no records, `STATE_CORRUPT` / `IO_ERROR` from the store
 */
export async function exportTrace(store: Store, traceId: string): Promise<string> {
  const log = await store.log(traceLogName(traceId));
  if (log.length === 0) throw new ForgeError('NOT_FOUND', `trace ${traceId} does not exist`, { details: { traceId } });
  const entries = await log.read(0);
  const decoder = new TextDecoder();
  let out = '';
  for (const e of entries) out += `${decoder.decode(e.data)}\n`;
  return out;
}

/** A stored trace, opened by id. */
export interface TraceHandle {
  /** The trace id. */
  readonly traceId: string;
  /**
   * Export it ({@link exportTrace}).
   * @returns the export
   */
  export(): Promise<string>;
  /**
   * Read it ({@link parseTrace}).
   * @returns the trace
   */
  read(): Promise<Trace>;
  /**
   * Verify it ({@link verifyTrace}).
   * @param options - trusted keys and options
   * @returns the verification
   */
  verify(options: VerifyTraceOptions): Promise<TraceVerification>;
}

/**
 * Open a stored trace.
 * @param store - the store
 * @param traceId - the trace
 * @param crypto - hashes; default the `node` provider
 * @returns a handle
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed id, `NOT_FOUND` when the trace has no records
 */
export async function openTrace(store: Store, traceId: string, crypto: CryptoProvider = createCryptoProvider('node')): Promise<TraceHandle> {
  const log = await store.log(traceLogName(traceId));
  if (log.length === 0) throw new ForgeError('NOT_FOUND', `trace ${traceId} does not exist`, { details: { traceId } });
  return {
    traceId,
    export: () => exportTrace(store, traceId),
    read: async () => parseTrace(await exportTrace(store, traceId), crypto),
    verify: async (options) => verifyTrace(await exportTrace(store, traceId), { crypto, ...options }),
  };
}

/**
 * Read a stored trace (structure and hashes checked, signatures not).
 * @param store - the store
 * @param traceId - the trace
 * @param crypto - hashes; default the `node` provider
 * @returns the trace
 * @throws ForgeError `NOT_FOUND`, `STATE_CORRUPT`, `IO_ERROR`
 */
export async function readTrace(store: Store, traceId: string, crypto?: CryptoProvider): Promise<Trace> {
  return (await openTrace(store, traceId, crypto)).read();
}
