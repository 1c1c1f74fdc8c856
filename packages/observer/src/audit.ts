import { ForgeError, canonicalJson, concatBytes, fromHex, systemClock, toHex, utf8 } from '@forgeone/common';
import type { CanonicalValue, Clock } from '@forgeone/common';
import { createCryptoProvider } from '@forgeone/crypto';
import type { CryptoProvider, SigningKey } from '@forgeone/crypto';
import type { Store } from '@forgeone/store';
import { z } from 'zod';
import { CheckpointLineSchema, ChainVerifier, ChainWriter, Domains, SealLineSchema, blockHash, checkpointMessage, recordHash, splitLines, stateFromVerifier, trustedKeyMap } from './chain.js';
import type { ChainSpec, TrustedKeys, VerifiedCheckpoint } from './chain.js';
import type { VerifyIssue } from './codes.js';

/** The audit log format name; also the domain of its hashes and signatures. */
export const AUDIT_FORMAT = 'forgeone.audit/v2';

/** The evidence bundle format name. */
export const AUDIT_EVIDENCE_FORMAT = 'forgeone.audit-evidence/v2';

/** The kinds of kernel events the audit log records. */
export const AUDIT_KINDS = Object.freeze([
  'boot',
  'package.accepted',
  'package.refused',
  'container.launched',
  'container.stopped',
  'container.paused',
  'container.resumed',
  'policy.changed',
  'quarantine',
  'release',
  'termination',
  'config.changed',
  'api.action',
  'selftest',
] as const);

/** A kind of kernel event. */
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** Largest canonical `details` of one event, in bytes. */
export const MAX_AUDIT_DETAILS_BYTES = 64 * 1024;

const name = z.string().min(1).max(256);
const natural = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Schema of the audit log header line. */
export const AuditHeaderSchema = z.strictObject({
  t: z.literal('header'),
  format: z.literal(AUDIT_FORMAT),
  logId: name,
  kernelKeyId: z.string().regex(/^[0-9a-f]{64}$/),
  startTime: natural,
  blockSize: z.literal(1),
  checkpointEvery: z.literal(1),
});

/** The audit log header, as stored. */
export type AuditHeader = z.infer<typeof AuditHeaderSchema>;

/** Schema of an audit event line. */
export const AuditEventLineSchema = z.strictObject({
  t: z.literal('event'),
  seq: natural,
  kind: z.enum(AUDIT_KINDS),
  subject: name,
  actor: name,
  time: natural,
  details: z.record(z.string(), z.unknown()),
});

type AuditEventLine = z.infer<typeof AuditEventLineSchema>;

/** An event to record. */
export interface AuditEventInput {
  /** What happened. */
  readonly kind: AuditKind;
  /** What it concerns: a container, package, policy... (1–256 characters). */
  readonly subject: string;
  /** Who did it: `kernel`, `user:alice`, an API client (1–256 characters). */
  readonly actor: string;
  /** When, ms since the epoch (integer); default: the clock's now. */
  readonly time?: number;
  /** Structured details: canonical JSON data (integers only, plain objects), at most 64 KiB. */
  readonly details?: Readonly<Record<string, CanonicalValue>>;
}

/** A recorded event. */
export interface AuditEntry {
  /** Its position in the log, from 0. */
  readonly seq: number;
  /** What happened. */
  readonly kind: AuditKind;
  /** What it concerns. */
  readonly subject: string;
  /** Who did it. */
  readonly actor: string;
  /** When, ms since the epoch. */
  readonly time: number;
  /** Structured details. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** A filter over audit events; every given field must match. */
export interface AuditFilter {
  /** Events at or after this time (ms). */
  readonly from?: number | undefined;
  /** Events before this time (ms). */
  readonly to?: number | undefined;
  /** One kind or several. */
  readonly kind?: AuditKind | readonly AuditKind[] | undefined;
  /** Exactly this subject. */
  readonly subject?: string | undefined;
}

/** The outcome of verifying a whole audit log. */
export interface AuditVerification {
  /** Whether it verified. */
  readonly ok: boolean;
  /** The first problem and its line, or null. */
  readonly issue: VerifyIssue | null;
  /** The log id from the header. */
  readonly logId: string | null;
  /** Events verified. */
  readonly events: number;
  /** Checkpoints verified. */
  readonly checkpoints: number;
  /** Key ids that signed them. */
  readonly signers: readonly string[];
}

/** Schema of an evidence bundle (see {@link AuditLog.exportEvidence}). */
export const AuditEvidenceSchema = z.strictObject({
  format: z.literal(AUDIT_EVIDENCE_FORMAT),
  logId: name,
  filter: z.strictObject({
    from: natural.optional(),
    to: natural.optional(),
    kind: z.array(z.enum(AUDIT_KINDS)).optional(),
    subject: name.optional(),
  }),
  header: z.string(),
  start: z.string(),
  head: z.string(),
  items: z.array(z.strictObject({ event: z.string(), seal: z.string(), checkpoint: z.string() })),
});

/**
 * Evidence for a set of audit events, checkable offline: the header and its signed start checkpoint, each
 * selected event with its seal and signed checkpoint, and the latest signed checkpoint (the log's length
 * when exported).
 */
export type AuditEvidence = z.infer<typeof AuditEvidenceSchema>;

/** A problem found in an evidence bundle. */
export interface EvidenceIssue {
  /** The stable code. */
  readonly code: VerifyIssue['code'];
  /** What is wrong. */
  readonly message: string;
  /** The index of the item concerned in `items`, or null for the header, start or head. */
  readonly item: number | null;
  /** The event sequence number, when known. */
  readonly seq?: number;
}

/** The outcome of {@link verifyAuditExport}. */
export interface AuditEvidenceVerification {
  /** Whether every part verified. */
  readonly ok: boolean;
  /** The first problem, or null. */
  readonly issue: EvidenceIssue | null;
  /** The log id. */
  readonly logId: string | null;
  /** The verified events (empty when not ok). */
  readonly events: readonly AuditEntry[];
  /** Events in the log when the evidence was exported (from the signed head). */
  readonly logLength: number;
  /** Key ids whose signatures verified. */
  readonly signers: readonly string[];
}

/** The audit log. */
export interface AuditLog {
  /** The log id (its store log name). */
  readonly logId: string;
  /** Events recorded. */
  readonly length: number;
  /**
   * Record an event: it is sealed in its own block and signed.
   * @param event - the event
   * @returns the entry, once durable
   * @throws ForgeError `INVALID_ARGUMENT` for a malformed event, `LIMIT_EXCEEDED` for oversized details,
   *   `IO_ERROR` when the store fails (the log then refuses further appends until reopened)
   */
  append(event: AuditEventInput): Promise<AuditEntry>;
  /**
   * Events matching a filter, oldest first.
   * @param filter - the filter (default: all)
   * @returns the events
   */
  query(filter?: AuditFilter): Promise<AuditEntry[]>;
  /**
   * Verify the whole stored log.
   * @param options - trusted keys (default: this log's signing key)
   * @returns the verification
   */
  verify(options?: { readonly trustedKeys?: TrustedKeys }): Promise<AuditVerification>;
  /**
   * The whole log as JSON lines (for {@link verifyAuditLog}).
   * @returns the export
   */
  exportLog(): Promise<string>;
  /**
   * Evidence for the events matching a filter (for {@link verifyAuditExport}).
   * @param filter - the filter
   * @returns the bundle
   */
  exportEvidence(filter?: AuditFilter): Promise<AuditEvidence>;
}

/** Options of {@link createAuditLog}. */
export interface AuditLogOptions {
  /** Where the log is kept. */
  readonly store: Store;
  /** Hashes. */
  readonly crypto: CryptoProvider;
  /** The kernel key that signs. */
  readonly signingKey: SigningKey;
  /** The store log name (default `audit`). */
  readonly name?: string;
  /** Clock for default times. */
  readonly clock?: Clock;
}

/** The audit format description the chain verifier works from. */
export const AUDIT_SPEC: ChainSpec<AuditHeader, AuditEventLine, never> = {
  format: AUDIT_FORMAT,
  entryType: 'event',
  headerSchema: AuditHeaderSchema,
  entrySchema: AuditEventLineSchema,
  summarySchema: null,
  idOf: (h) => h.logId,
  sameKey: false,
};

function toEntry(e: AuditEventLine): AuditEntry {
  return { seq: e.seq, kind: e.kind, subject: e.subject, actor: e.actor, time: e.time, details: e.details };
}

function normaliseFilter(filter: AuditFilter): AuditEvidence['filter'] {
  const out: { from?: number; to?: number; kind?: AuditKind[]; subject?: string } = {};
  if (filter.from !== undefined) out.from = filter.from;
  if (filter.to !== undefined) out.to = filter.to;
  if (filter.kind !== undefined) out.kind = typeof filter.kind === 'string' ? [filter.kind] : [...filter.kind];
  if (filter.subject !== undefined) out.subject = filter.subject;
  const parsed = AuditEvidenceSchema.shape.filter.safeParse(out);
  if (!parsed.success) throw new ForgeError('INVALID_ARGUMENT', `invalid audit filter: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/**
 * Whether an event matches a filter.
 * @param e - the event
 * @param f - the filter
 * @returns true when every given field matches
 */
export function matchesAuditFilter(e: Pick<AuditEntry, 'time' | 'kind' | 'subject'>, f: AuditFilter): boolean {
  if (f.from !== undefined && e.time < f.from) return false;
  if (f.to !== undefined && e.time >= f.to) return false;
  if (f.kind !== undefined && !(typeof f.kind === 'string' ? [f.kind] : f.kind).includes(e.kind)) return false;
  if (f.subject !== undefined && e.subject !== f.subject) return false;
  return true;
}

function eventLineObject(event: AuditEventInput, seq: number, clock: Clock): AuditEventLine {
  if (typeof event !== 'object' || event === null) throw new ForgeError('INVALID_ARGUMENT', 'an audit event must be an object');
  const details = event.details ?? {};
  let detailsJson: string;
  try {
    detailsJson = canonicalJson(details);
  } catch (e) {
    throw new ForgeError('INVALID_ARGUMENT', `audit event details are not canonical JSON data: ${(e as Error).message}`, { cause: e, details: { field: 'details' } });
  }
  if (typeof details !== 'object' || Array.isArray(details) || details === null) throw new ForgeError('INVALID_ARGUMENT', 'audit event details must be an object', { details: { field: 'details' } });
  if (utf8(detailsJson).length > MAX_AUDIT_DETAILS_BYTES) {
    throw new ForgeError('LIMIT_EXCEEDED', `audit event details exceed ${MAX_AUDIT_DETAILS_BYTES} bytes`, { details: { limit: MAX_AUDIT_DETAILS_BYTES } });
  }
  const candidate = { t: 'event', seq, kind: event.kind, subject: event.subject, actor: event.actor, time: event.time ?? Math.floor(clock.now()), details: JSON.parse(detailsJson) as unknown };
  const parsed = AuditEventLineSchema.safeParse(candidate);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ForgeError('INVALID_ARGUMENT', `invalid audit event field ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`, { details: { field: i?.path.join('.') } });
  }
  return parsed.data;
}

/**
 * Open (or create) the audit log: a chained, signed, append-only log of kernel events in one store log.
 * Every event is sealed in its own block and signed, so each is durable and provable once `append`
 * resolves. Reopening checks the stored chain (structure and hashes) and completes an event a crash left
 * unsigned with a `recovery` checkpoint.
 * @param options - store, crypto, signing key, log name, clock
 * @returns the log
 * @throws ForgeError `STATE_CORRUPT` when the stored chain is damaged, `INVALID_ARGUMENT` for a bad name, `IO_ERROR`
 * @example
 * ```ts
 * const audit = await createAuditLog({ store, crypto, signingKey });
 * await audit.append({ kind: 'boot', subject: 'kernel', actor: 'kernel' });
 * ```
 */
export async function createAuditLog(options: AuditLogOptions): Promise<AuditLog> {
  const { store, crypto, signingKey } = options;
  const logId = options.name ?? 'audit';
  const clock = options.clock ?? systemClock;
  const log = await store.log(logId);
  const events: AuditEntry[] = [];
  let writer: ChainWriter<AuditHeader>;
  if (log.length === 0) {
    const header: AuditHeader = { t: 'header', format: AUDIT_FORMAT, logId, kernelKeyId: signingKey.keyId, startTime: Math.floor(clock.now()), blockSize: 1, checkpointEvery: 1 };
    const headerLine = canonicalJson(header);
    const headerHash = crypto.sha3_256(concatBytes(new Domains(AUDIT_FORMAT).header, utf8(headerLine)));
    writer = new ChainWriter(AUDIT_FORMAT, logId, header, log, crypto, signingKey, { prev: headerHash, block: 0, nextSeq: 0, sealedRecords: 0, open: null });
    const out = [headerLine];
    writer.checkpoint('start', undefined, out);
    await writer.commit(out);
  } else {
    const v = new ChainVerifier(AUDIT_SPEC, crypto, null, { onEntry: (e) => events.push(toEntry(e)) });
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (const entry of await log.read(0)) {
      let text: string | undefined;
      try {
        text = decoder.decode(entry.data);
      } catch {
        text = undefined;
      }
      if (v.push(text) !== null) break;
    }
    const issue = v.end(true);
    if (issue !== null || v.header === null) {
      throw new ForgeError('STATE_CORRUPT', `audit log ${logId} is damaged: ${issue?.message ?? 'no header'}`, { details: { ...(issue ?? {}) } });
    }
    if (v.header.logId !== logId) throw new ForgeError('STATE_CORRUPT', `audit log ${logId} holds the header of log ${v.header.logId}`);
    writer = new ChainWriter(AUDIT_FORMAT, logId, v.header, log, crypto, signingKey, stateFromVerifier(v));
    // A crash between an event and its checkpoint: seal and sign what is there.
    if (v.open !== null || v.last === 'seal') {
      const out: string[] = [];
      if (v.open !== null) writer.seal(out);
      writer.checkpoint('recovery', undefined, out);
      await writer.commit(out);
    }
  }

  const keys = (trusted: TrustedKeys | undefined): Map<string, Uint8Array> => trustedKeyMap(crypto, trusted ?? [signingKey.publicKey]);

  return {
    logId,
    get length() {
      return writer.state.nextSeq;
    },
    append(event) {
      try {
        writer.check('append');
        const line = eventLineObject(event, writer.state.nextSeq, clock);
        const out: string[] = [];
        writer.entry(canonicalJson(line), line.seq, out);
        const entry = toEntry(line);
        const done = writer.commit(out).then(() => {
          events.push(entry);
          return entry;
        });
        return done;
      } catch (e) {
        return Promise.reject(e);
      }
    },
    async query(filter = {}) {
      normaliseFilter(filter);
      return events.filter((e) => matchesAuditFilter(e, filter));
    },
    async verify(opts = {}) {
      return verifyAuditLog(await exportLines(), { trustedKeys: keys(opts.trustedKeys), crypto });
    },
    exportLog: exportLines,
    async exportEvidence(filter = {}) {
      const f = normaliseFilter(filter);
      const lines = splitLines(await exportLines()) as string[];
      const items: AuditEvidence['items'] = [];
      let head = lines[1] ?? '';
      for (let i = 2; i < lines.length; i++) {
        const line = lines[i]!;
        let value: { t?: unknown };
        try {
          value = JSON.parse(line) as { t?: unknown };
        } catch (e) {
          throw new ForgeError('STATE_CORRUPT', `audit log ${logId}: line ${i + 1} is not JSON`, { cause: e, details: { line: i + 1 } });
        }
        if (value.t === 'checkpoint') head = line;
        if (value.t !== 'event') continue;
        const e = AuditEventLineSchema.safeParse(value);
        if (!e.success || !matchesAuditFilter(e.data, filter)) continue;
        const seal = lines[i + 1];
        const checkpoint = lines[i + 2];
        if (seal === undefined || checkpoint === undefined) continue;
        items.push({ event: line, seal, checkpoint });
      }
      return { format: AUDIT_EVIDENCE_FORMAT, logId, filter: f, header: lines[0] ?? '', start: lines[1] ?? '', head, items };
    },
  };

  async function exportLines(): Promise<string> {
    const decoder = new TextDecoder();
    let out = '';
    for (const e of await log.read(0)) out += `${decoder.decode(e.data)}\n`;
    return out;
  }
}

/**
 * Verify a whole exported audit log offline: the same checks as {@link verifyTrace} (header, every event
 * against its seal, the chain, every checkpoint's signature and place), and that the last event is signed.
 * @param exported - the export ({@link AuditLog.exportLog})
 * @param options - trusted keys and crypto provider (default `node`)
 * @returns the verification; never throws on bad input
 */
export function verifyAuditLog(exported: string | Uint8Array, options: { readonly trustedKeys: TrustedKeys; readonly crypto?: CryptoProvider }): AuditVerification {
  const crypto = options.crypto ?? createCryptoProvider('node');
  const v = new ChainVerifier(AUDIT_SPEC, crypto, trustedKeyMap(crypto, options.trustedKeys ?? []));
  for (const line of splitLines(exported)) if (v.push(line) !== null) break;
  v.end(false);
  return {
    ok: v.issue === null,
    issue: v.issue,
    logId: v.header?.logId ?? null,
    events: v.nextSeq,
    checkpoints: v.checkpoints.length,
    signers: [...new Set(v.checkpoints.map((c: VerifiedCheckpoint) => c.keyId))].sort(),
  };
}

/**
 * Verify an evidence bundle offline: the header against its signed start checkpoint; for each item, the
 * event's bytes against its seal (hash over the previous hash and the event), the seal against a signed
 * checkpoint, consecutive items against each other's hashes, and the event against the bundle's filter; the
 * head checkpoint's signature. Proves each listed event is authentic, unaltered and at its position; it
 * cannot prove that no other event matches the filter (the log length at export time is reported).
 * @param bundle - the bundle, or its JSON text
 * @param options - trusted keys and crypto provider (default `node`)
 * @returns the verification; never throws on bad input
 */
export function verifyAuditExport(bundle: AuditEvidence | string, options: { readonly trustedKeys: TrustedKeys; readonly crypto?: CryptoProvider }): AuditEvidenceVerification {
  const crypto = options.crypto ?? createCryptoProvider('node');
  const keys = trustedKeyMap(crypto, options.trustedKeys ?? []);
  const domains = new Domains(AUDIT_FORMAT);
  const signers = new Set<string>();
  const fail = (code: VerifyIssue['code'], message: string, item: number | null, seq?: number, logId: string | null = null): AuditEvidenceVerification => ({
    ok: false,
    issue: { code, message, item, ...(seq === undefined ? {} : { seq }) },
    logId,
    events: [],
    logLength: 0,
    signers: [],
  });
  let raw: unknown = bundle;
  if (typeof bundle === 'string') {
    try {
      raw = JSON.parse(bundle);
    } catch {
      return fail('MALFORMED_LINE', 'the bundle is not JSON', null);
    }
  }
  const parsed = AuditEvidenceSchema.safeParse(raw);
  if (!parsed.success) return fail('MALFORMED_LINE', `not an audit evidence bundle: ${parsed.error.issues[0]?.message ?? 'invalid'}`, null);
  const b = parsed.data;

  const parseLine = <T>(text: string, schema: z.ZodType<T>): T | null => {
    try {
      const value = JSON.parse(text) as unknown;
      if (canonicalJson(value) !== text) return null;
      const r = schema.safeParse(value);
      return r.success ? r.data : null;
    } catch {
      return null;
    }
  };
  const checkSig = (c: z.infer<typeof CheckpointLineSchema>): string | null => {
    const pk = keys.get(c.keyId);
    if (pk === undefined) return 'CHECKPOINT_KEY_UNTRUSTED';
    const payload = { id: c.id, block: c.block, hash: c.hash, records: c.records, reason: c.reason, ...(c.summary === undefined ? {} : { summary: c.summary }) };
    if (!crypto.verify(fromHex(c.sig), checkpointMessage(domains, payload), pk)) return 'CHECKPOINT_SIGNATURE_INVALID';
    signers.add(c.keyId);
    return null;
  };

  const header = parseLine(b.header, AuditHeaderSchema);
  if (header === null || header.logId !== b.logId) return fail('HEADER_MISSING', 'the header is malformed or names another log', null);
  const headerHash = toHex(crypto.sha3_256(concatBytes(domains.header, utf8(b.header))));
  const start = parseLine(b.start, CheckpointLineSchema);
  if (start === null || start.reason !== 'start') return fail('CHECKPOINT_MISSING', 'the start checkpoint is malformed', null, undefined, b.logId);
  const s0 = checkSig(start);
  if (s0 !== null) return fail(s0 as VerifyIssue['code'], 'the start checkpoint does not verify', null, undefined, b.logId);
  if (start.hash !== headerHash || start.id !== b.logId || start.block !== -1 || start.keyId !== header.kernelKeyId) {
    return fail('HEADER_ALTERED', 'the header differs from the one the start checkpoint signed', null, undefined, b.logId);
  }
  const head = parseLine(b.head, CheckpointLineSchema);
  if (head === null || head.id !== b.logId) return fail('MALFORMED_LINE', 'the head checkpoint is malformed', null, undefined, b.logId);
  const sh = checkSig(head);
  if (sh !== null) return fail(sh as VerifyIssue['code'], 'the head checkpoint does not verify', null, undefined, b.logId);

  const events: AuditEntry[] = [];
  let previous: { seq: number; hash: string } | null = null;
  for (let i = 0; i < b.items.length; i++) {
    const it = b.items[i]!;
    const e = parseLine(it.event, AuditEventLineSchema);
    if (e === null) return fail('MALFORMED_LINE', `item ${i}: the event is malformed or not canonical`, i, undefined, b.logId);
    const seal = parseLine(it.seal, SealLineSchema);
    if (seal === null || seal.count !== 1 || seal.first !== e.seq || seal.digests.length !== 1) return fail('SEAL_ALTERED', `item ${i}: the seal does not describe event ${e.seq}`, i, e.seq, b.logId);
    const recHash = recordHash(crypto, domains, it.event);
    const computed = toHex(blockHash(crypto, domains, fromHex(seal.prev), [recHash]));
    const digest = recHash.slice(0, 16);
    if (computed !== seal.hash) {
      return digest !== seal.digests[0]
        ? fail('RECORD_ALTERED', `item ${i}: event ${e.seq} differs from the one sealed`, i, e.seq, b.logId)
        : fail('SEAL_ALTERED', `item ${i}: the seal's hash does not match event ${e.seq}`, i, e.seq, b.logId);
    }
    if (digest !== seal.digests[0]) return fail('SEAL_ALTERED', `item ${i}: the seal's digest was altered`, i, e.seq, b.logId);
    const c = parseLine(it.checkpoint, CheckpointLineSchema);
    if (c === null) return fail('MALFORMED_LINE', `item ${i}: the checkpoint is malformed`, i, e.seq, b.logId);
    const sc = checkSig(c);
    if (sc !== null) return fail(sc as VerifyIssue['code'], `item ${i}: the checkpoint of event ${e.seq} does not verify`, i, e.seq, b.logId);
    if (c.id !== b.logId || c.block !== seal.block || c.hash !== seal.hash || c.records !== e.seq + 1) {
      return fail('CHECKPOINT_MISPLACED', `item ${i}: the checkpoint does not sign event ${e.seq}'s block`, i, e.seq, b.logId);
    }
    if (seal.block === 0 && seal.prev !== headerHash) return fail('SEAL_ALTERED', `item ${i}: the first block does not chain to the header`, i, e.seq, b.logId);
    if (previous !== null) {
      if (e.seq <= previous.seq) return fail('RECORD_SEQUENCE', `item ${i}: event ${e.seq} does not follow event ${previous.seq}`, i, e.seq, b.logId);
      if (e.seq === previous.seq + 1 && seal.prev !== previous.hash) return fail('SEAL_ALTERED', `item ${i}: event ${e.seq} does not chain to event ${previous.seq}`, i, e.seq, b.logId);
    }
    if (e.seq + 1 > head.records) return fail('CHECKPOINT_MISPLACED', `item ${i}: event ${e.seq} is past the head checkpoint`, i, e.seq, b.logId);
    if (!matchesAuditFilter(e, b.filter)) return fail('UNEXPECTED_LINE', `item ${i}: event ${e.seq} does not match the bundle's filter`, i, e.seq, b.logId);
    previous = { seq: e.seq, hash: seal.hash };
    events.push(toEntry(e));
  }
  return { ok: true, issue: null, logId: b.logId, events, logLength: head.records, signers: [...signers].sort() };
}
