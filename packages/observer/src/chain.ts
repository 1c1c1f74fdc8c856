// The chain format shared by execution traces and the audit log (docs/dna.md): a header, entries sealed in
// blocks (each block hash chained to the previous one, the first to the header), signed checkpoints, and
// for traces a final summary. This module holds the hashing, the writer core and the streaming verifier.
import { hash as nodeHash } from 'node:crypto';
import { ForgeError, canonicalJson, canonicalJsonBytes, concatBytes, decodeUtf8Strict, fromHex, toHex, utf8 } from '@forgeone/common';
import type { AppendLog } from '@forgeone/store';
import type { CryptoProvider, PublicKeyInfo, SigningKey } from '@forgeone/crypto';
import { keyIdOf } from '@forgeone/crypto';
import { z } from 'zod';
import type { VerifyCode, VerifyIssue } from './codes.js';

/** Keys trusted to sign checkpoints: public keys, or a map from key id to public key (e.g. `roleKeys(trustRoot, 'kernel')`). */
export type TrustedKeys = readonly PublicKeyInfo[] | readonly Uint8Array[] | ReadonlyMap<string, Uint8Array>;

/**
 * Normalise trusted keys to a map from key id (recomputed from the key) to public key.
 * @param crypto - hash provider
 * @param keys - the keys
 * @returns key id → public key
 */
export function trustedKeyMap(crypto: CryptoProvider, keys: TrustedKeys): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const list: Uint8Array[] = [];
  if (keys instanceof Map) for (const v of (keys as ReadonlyMap<string, Uint8Array>).values()) list.push(v);
  else for (const k of keys as readonly (PublicKeyInfo | Uint8Array)[]) list.push(k instanceof Uint8Array ? k : k.publicKey);
  for (const pk of list) {
    if (pk instanceof Uint8Array && pk.length === 32) out.set(keyIdOf(crypto, pk), pk);
  }
  return out;
}

const HEX32 = /^[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{128}$/;
/** Reasons are short lowercase words; `start` and `stop` are written by the format itself. */
export const REASON = /^[a-z][a-z0-9-]{0,63}$/;
const hash = z.string().regex(HEX32);
const natural = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Schema of a seal line. */
export const SealLineSchema = z.strictObject({
  t: z.literal('seal'),
  block: natural,
  first: natural,
  count: natural,
  prev: hash,
  hash,
  digests: z.array(z.string().regex(/^[0-9a-f]{16}$/)),
});

/** A parsed seal line. */
export type SealLine = z.infer<typeof SealLineSchema>;

/** Schema of a checkpoint line. */
export const CheckpointLineSchema = z.strictObject({
  t: z.literal('checkpoint'),
  id: z.string().min(1).max(256),
  block: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER),
  hash,
  records: natural,
  reason: z.string().regex(REASON),
  summary: hash.optional(),
  keyId: hash,
  sig: z.string().regex(HEX64),
});

/** A parsed checkpoint line. */
export type CheckpointLine = z.infer<typeof CheckpointLineSchema>;

/** The fields every header carries (besides its kind-specific ones). */
export interface HeaderBase {
  /** Records per block. */
  readonly blockSize: number;
  /** A checkpoint every this many blocks (0: only at explicit checkpoints and stop). */
  readonly checkpointEvery: number;
  /** Key id of the kernel key that signs the start checkpoint. */
  readonly kernelKeyId: string;
}

/** What distinguishes one chain format from another (traces, the audit log). */
export interface ChainSpec<H extends HeaderBase, E extends { readonly seq: number }, S> {
  /** Format name, e.g. `forgeone.dna/v2`; also the domain of every hash and signature. */
  readonly format: string;
  /** The `t` of entry lines. */
  readonly entryType: string;
  /** Schema of the header line. */
  readonly headerSchema: z.ZodType<H>;
  /** Schema of entry lines. */
  readonly entrySchema: z.ZodType<E>;
  /** Schema of the summary line, or null when the format has none (the audit log never stops). */
  readonly summarySchema: z.ZodType<S> | null;
  /** The chain id in the header. */
  idOf(header: H): string;
  /**
   * The sequence number of the first entry (default 0): a trace of a container restored from a snapshot
   * continues the numbering where the snapshot stood.
   */
  firstSeq?(header: H): number;
  /** Whether every checkpoint must be signed by the header's kernel key (traces), or any trusted key (audit). */
  readonly sameKey: boolean;
  /**
   * Optional fast path for entry lines: given a line's text, the entry when the text is exactly the
   * canonical form of an entry that satisfies `entrySchema`; null to take the slow path (which must then
   * find the problem). It must never accept what the slow path refuses. Not used on text that holds lone
   * surrogates (see {@link ChainVerifier.fast}).
   */
  readonly scanEntry?: (text: string) => E | null;
}

/** The hash domains of a format. */
export class Domains {
  readonly header: Uint8Array;
  readonly block: Uint8Array;
  readonly record: Uint8Array;
  readonly summary: Uint8Array;
  readonly checkpoint: Uint8Array;
  /** The record domain as text (it is ASCII), prefixed to a line before hashing it. */
  readonly recordPrefix: string;
  /** @param format - the format name */
  constructor(format: string) {
    this.recordPrefix = `${format}:record\0`;
    this.header = utf8(`${format}:header\0`);
    this.block = utf8(`${format}:block\0`);
    this.record = utf8(`${format}:record\0`);
    this.summary = utf8(`${format}:summary\0`);
    this.checkpoint = utf8(`${format}:checkpoint\0`);
  }
}

/** The signed part of a checkpoint. */
export interface CheckpointPayload {
  readonly id: string;
  readonly block: number;
  readonly hash: string;
  readonly records: number;
  readonly reason: string;
  readonly summary?: string;
}

/**
 * The bytes a checkpoint signature covers: the domain, then the canonical payload.
 * @param domains - the format's domains
 * @param p - the payload
 * @returns the message
 */
export function checkpointMessage(domains: Domains, p: CheckpointPayload): Uint8Array {
  const payload: Record<string, unknown> = { id: p.id, block: p.block, hash: p.hash, records: p.records, reason: p.reason };
  if (p.summary !== undefined) payload.summary = p.summary;
  return concatBytes(domains.checkpoint, canonicalJsonBytes(payload));
}

/**
 * The record hash of a line: SHA3-256( record domain ‖ UTF-8 line bytes ), hex. One native one-shot call
 * per record, the line handed over as text (node encodes it): this runs once per recorded call, on the
 * writer and on the verifier. Node's `crypto.hash` computes the same SHA3-256 as every `CryptoProvider`;
 * where it is missing the provider is used.
 * @param crypto - fallback provider
 * @param domains - the format's domains
 * @param line - the line, well-formed text
 * @returns 64 hex digits
 */
export function recordHash(crypto: CryptoProvider, domains: Domains, line: string): string {
  if (FAST_HASH) return nodeHash('sha3-256', domains.recordPrefix + line, 'hex');
  return toHex(crypto.sha3_256(utf8(domains.recordPrefix + line)));
}

const FAST_HASH = typeof nodeHash === 'function';

/**
 * The hash of a block: SHA3-256( block domain ‖ previous hash ‖ H_0 ‖ … ‖ H_{n-1} ), the H_i the 32-byte
 * record hashes of its records, in order.
 * @param crypto - hashes
 * @param domains - the format's domains
 * @param prev - the previous block hash (or the header hash)
 * @param hashes - the record hashes, hex
 * @returns the block hash
 */
export function blockHash(crypto: CryptoProvider, domains: Domains, prev: Uint8Array, hashes: readonly string[]): Uint8Array {
  const h = crypto.createSha3_256().update(domains.block).update(prev);
  if (hashes.length > 0) h.update(Buffer.from(hashes.join(''), 'hex'));
  return h.digest();
}

/** A block being filled: the record hashes (hex) of its records, and where they stand. */
export class OpenBlock {
  /** Full record hashes, hex. */
  readonly hashes: string[] = [];
  /** Line numbers of its records (verifier only). */
  readonly lineNos: number[] = [];
  /** First sequence number. */
  first = -1;
  /** @param prev - the previous block hash */
  constructor(readonly prev: Uint8Array) {}
  /** @returns records in the block */
  get length(): number {
    return this.hashes.length;
  }
}

/**
 * The seal line of a block, built directly (it carries one digest per record).
 * @param block - index
 * @param first - first sequence number
 * @param prev - previous hash, hex
 * @param hash - block hash, hex
 * @param hashes - the record hashes, hex (each digest is its first 16 digits)
 * @returns the canonical seal line
 */
export function sealLineText(block: number, first: number, prev: string, hash: string, hashes: readonly string[]): string {
  let digests = '';
  for (let i = 0; i < hashes.length; i++) digests += `${i === 0 ? '' : ','}"${hashes[i]!.slice(0, 16)}"`;
  return `{"block":${block},"count":${hashes.length},"digests":[${digests}],"first":${first},"hash":"${hash}","prev":"${prev}","t":"seal"}`;
}

const DIGEST = /^[0-9a-f]{16}$/;
const HEX_64 = /^[0-9a-f]{64}$/;

/**
 * Fast check of a parsed seal line: returns it when `text` is exactly its canonical form and every field
 * is valid (what `SealLineSchema` and `canonicalJson` would accept), null otherwise (the caller then takes
 * the slow path, which names the problem).
 * @param v - the parsed line
 * @param text - the line
 * @returns the seal, or null
 */
export function sealFromParsed(v: unknown, text: string): SealLine | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Record<string, unknown>;
  const { block, count, first, prev, hash, digests } = s;
  if (!isNatural(block) || !isNatural(count) || !isNatural(first) || typeof prev !== 'string' || typeof hash !== 'string' || !Array.isArray(digests)) return null;
  if (!HEX_64.test(prev) || !HEX_64.test(hash) || s.t !== 'seal') return null;
  let d = '';
  for (let i = 0; i < digests.length; i++) {
    const x: unknown = digests[i];
    if (typeof x !== 'string' || !DIGEST.test(x)) return null;
    d += `${i === 0 ? '' : ','}"${x}"`;
  }
  const canonical = `{"block":${block},"count":${count},"digests":[${d}],"first":${first},"hash":"${hash}","prev":"${prev}","t":"seal"}`;
  return canonical === text ? (v as SealLine) : null;
}

function isNatural(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && !Object.is(x, -0);
}

/** Where the chain stands after a line. */
type LastKind = 'none' | 'header' | 'entry' | 'seal' | 'checkpoint' | 'summary' | 'stop';

/** A checkpoint that verified, as reported. */
export interface VerifiedCheckpoint {
  /** Its line. */
  readonly line: number;
  /** Why it was written. */
  readonly reason: string;
  /** The last block it covers (-1: none). */
  readonly block: number;
  /** Records covered. */
  readonly records: number;
  /** The signing key id. */
  readonly keyId: string;
}

/**
 * Streaming verifier of one chain: feed it lines in order ({@link ChainVerifier.push}), then
 * {@link ChainVerifier.end}. It stops at the first problem and names its line. With `keys === null`
 * signatures are not checked (structure and hashes are): used to reopen a log the writer itself wrote.
 */
export class ChainVerifier<H extends HeaderBase, E extends { readonly seq: number }, S> {
  readonly domains: Domains;
  header: H | null = null;
  headerHash: Uint8Array | null = null;
  prev: Uint8Array = new Uint8Array(32);
  block = 0;
  nextSeq = 0;
  sealedRecords = 0;
  lines = 0;
  last: LastKind = 'none';
  lastSeal: { block: number; count: number; demanding: boolean } | null = null;
  summaryLine = 0;
  summaryHash: string | null = null;
  summary: S | null = null;
  readonly checkpoints: VerifiedCheckpoint[] = [];
  issue: VerifyIssue | null = null;
  open: OpenBlock | null = null;
  /** Whether the entry fast path may be used: false when the input (text) holds a lone surrogate. */
  fast = true;

  /**
   * @param spec - the format
   * @param crypto - hashes and signature verification
   * @param keys - trusted keys (key id → public key), or null to skip signature checks
   * @param hooks - called with each entry as it is accepted, and to check the summary
   */
  constructor(
    readonly spec: ChainSpec<H, E, S>,
    readonly crypto: CryptoProvider,
    readonly keys: ReadonlyMap<string, Uint8Array> | null,
    readonly hooks: { readonly onEntry?: (entry: E, line: number) => void; readonly checkSummary?: (summary: S) => string | null } = {},
  ) {
    this.domains = new Domains(spec.format);
  }

  #fail(code: VerifyCode, message: string, line: number, extra: { seq?: number; block?: number } = {}): VerifyIssue {
    this.issue = { code, message: `line ${line}: ${message}`, line, ...extra };
    return this.issue;
  }

  /**
   * Consume the next line.
   * @param text - the line, without its newline (or undefined when its bytes are not UTF-8)
   * @returns the problem found, or null
   */
  push(text: string | undefined): VerifyIssue | null {
    if (this.issue !== null) return this.issue;
    const n = ++this.lines;
    if (text === undefined) return this.#fail('MALFORMED_LINE', 'not valid UTF-8', n);
    // Fast paths: entries and seals in canonical form (almost every line) skip the generic canonical
    // serialiser and the schemas (entries even the JSON parser); anything they do not accept takes the
    // slow path below, which names the problem.
    const fastOk = n > 1 && this.last !== 'stop';
    if (fastOk && this.fast && this.spec.scanEntry !== undefined) {
      const e = this.spec.scanEntry(text);
      if (e !== null) return this.#acceptEntry(e, text, n);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.#fail(n === 1 ? 'HEADER_MISSING' : 'MALFORMED_LINE', 'not JSON', n);
    }
    if (fastOk) {
      const seal = sealFromParsed(value, text);
      if (seal !== null) return this.#acceptSeal(seal, n);
    }
    let canonical: string;
    try {
      canonical = canonicalJson(value);
    } catch {
      return this.#fail('MALFORMED_LINE', 'not canonical JSON data (non-integer number or bad string)', n);
    }
    if (canonical !== text) return this.#fail('NOT_CANONICAL', 'not in canonical JSON form', n);
    const t = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { t?: unknown }).t : undefined;
    if (this.last === 'stop') return this.#fail('TRAILING_DATA', 'data after the stop checkpoint', n);
    if (n === 1) {
      if (t !== 'header') return this.#fail('HEADER_MISSING', `the first line must be a ${this.spec.format} header`, n);
      return this.#header(value, text, n);
    }
    switch (t) {
      case 'header':
        return this.#fail('UNEXPECTED_LINE', 'a second header', n);
      case this.spec.entryType:
        return this.#entry(value, text, n);
      case 'seal':
        return this.#seal(value, n);
      case 'checkpoint':
        return this.#checkpoint(value, n);
      case 'summary':
        if (this.spec.summarySchema !== null) return this.#summary(value, utf8(text), n);
        return this.#fail('MALFORMED_LINE', 'this format has no summary lines', n);
      default:
        return this.#fail('MALFORMED_LINE', `unknown line type ${JSON.stringify(t)}`, n);
    }
  }

  #header(value: unknown, text: string, n: number): VerifyIssue | null {
    const parsed = this.spec.headerSchema.safeParse(value);
    if (!parsed.success) return this.#fail('HEADER_MISSING', `malformed header: ${parsed.error.issues[0]?.message ?? 'invalid'}`, n);
    if (parsed.data.blockSize < 1) return this.#fail('HEADER_MISSING', 'block size must be at least 1', n);
    this.header = parsed.data;
    this.nextSeq = this.spec.firstSeq?.(parsed.data) ?? 0;
    this.headerHash = this.crypto.sha3_256(concatBytes(this.domains.header, utf8(text)));
    this.prev = this.headerHash;
    this.last = 'header';
    return null;
  }

  #entry(value: unknown, text: string, n: number): VerifyIssue | null {
    const parsed = this.spec.entrySchema.safeParse(value);
    if (!parsed.success) return this.#fail('MALFORMED_LINE', `malformed ${this.spec.entryType} record: ${issuePath(parsed.error)}`, n);
    return this.#acceptEntry(parsed.data, text, n);
  }

  #acceptEntry(e: E, text: string, n: number): VerifyIssue | null {
    if (this.last === 'header') return this.#fail('CHECKPOINT_MISSING', 'the start checkpoint must follow the header', n, { seq: e.seq });
    if (this.last === 'summary') return this.#fail('CHECKPOINT_MISSING', 'the stop checkpoint must follow the summary', n, { seq: e.seq });
    if (this.last === 'seal' && this.lastSeal?.demanding === true) {
      return this.#fail('CHECKPOINT_MISSING', `block ${this.lastSeal.block} must be followed by a checkpoint`, n, { seq: e.seq });
    }
    const open = (this.open ??= new OpenBlock(this.prev));
    if (open.length >= this.header!.blockSize) return this.#fail('SEAL_MISSING', `block ${this.block} is full but not sealed`, n, { seq: e.seq, block: this.block });
    if (e.seq !== this.nextSeq) {
      const what =
        e.seq < this.nextSeq
          ? `record ${e.seq} appears again or out of order (expected ${this.nextSeq})`
          : `records ${this.nextSeq}${e.seq - 1 > this.nextSeq ? `-${e.seq - 1}` : ''} missing, or record ${e.seq} out of order`;
      return this.#fail('RECORD_SEQUENCE', what, n, { seq: e.seq, block: this.block });
    }
    const inBlock = (e as { readonly block?: unknown }).block;
    if (inBlock !== undefined && inBlock !== this.block) {
      return this.#fail('RECORD_SEQUENCE', `record ${e.seq} belongs to block ${String(inBlock)}, but block ${this.block} is open`, n, { seq: e.seq, block: this.block });
    }
    if (open.first < 0) open.first = e.seq;
    open.hashes.push(recordHash(this.crypto, this.domains, text));
    open.lineNos.push(n);
    this.nextSeq++;
    this.last = 'entry';
    this.hooks.onEntry?.(e, n);
    return null;
  }

  #seal(value: unknown, n: number): VerifyIssue | null {
    const parsed = SealLineSchema.safeParse(value);
    if (!parsed.success) return this.#fail('MALFORMED_LINE', `malformed seal: ${issuePath(parsed.error)}`, n);
    return this.#acceptSeal(parsed.data, n);
  }

  #acceptSeal(s: SealLine, n: number): VerifyIssue | null {
    if (this.last === 'header') return this.#fail('CHECKPOINT_MISSING', 'the start checkpoint must follow the header', n, { block: s.block });
    if (this.last === 'summary') return this.#fail('CHECKPOINT_MISSING', 'the stop checkpoint must follow the summary', n, { block: s.block });
    if (this.last === 'seal' && this.lastSeal?.demanding === true) {
      return this.#fail('CHECKPOINT_MISSING', `block ${this.lastSeal.block} must be followed by a checkpoint`, n, { block: s.block });
    }
    if (s.block !== this.block) return this.#fail('BLOCK_SEQUENCE', `seal of block ${s.block} where block ${this.block} was expected`, n, { block: s.block });
    const open = this.open ?? new OpenBlock(this.prev);
    const have = open.length;
    const first = have > 0 ? open.first : this.nextSeq;
    if (s.count > have && s.first === first) {
      return this.#fail('RECORD_MISSING', `block ${s.block} was sealed over ${s.count} records, ${have} are present`, n, { block: s.block, seq: first + have });
    }
    if (s.first !== first || s.count !== have || s.digests.length !== have) {
      return this.#fail('SEAL_ALTERED', `seal of block ${s.block} does not describe its records (first ${first}, count ${have})`, n, { block: s.block });
    }
    const computed = blockHash(this.crypto, this.domains, this.prev, open.hashes);
    if (toHex(computed) !== s.hash) {
      for (let i = 0; i < have; i++) {
        if (!open.hashes[i]!.startsWith(s.digests[i]!)) {
          return this.#fail('RECORD_ALTERED', `record ${first + i} differs from the one sealed in block ${s.block}`, open.lineNos[i]!, { seq: first + i, block: s.block });
        }
      }
      return this.#fail('SEAL_ALTERED', `the hash of block ${s.block} does not match its records`, n, { block: s.block });
    }
    if (s.prev !== toHex(this.prev)) return this.#fail('SEAL_ALTERED', `seal of block ${s.block} names the wrong previous hash`, n, { block: s.block });
    for (let i = 0; i < have; i++) {
      if (!open.hashes[i]!.startsWith(s.digests[i]!)) return this.#fail('SEAL_ALTERED', `record digest ${i} of block ${s.block} was altered`, n, { block: s.block });
    }
    const every = this.header!.checkpointEvery;
    this.lastSeal = { block: s.block, count: have, demanding: have < this.header!.blockSize || (every > 0 && (s.block + 1) % every === 0) };
    this.prev = computed;
    this.block++;
    this.sealedRecords += have;
    this.open = null;
    this.last = 'seal';
    return null;
  }

  #checkpoint(value: unknown, n: number): VerifyIssue | null {
    const parsed = CheckpointLineSchema.safeParse(value);
    if (!parsed.success) return this.#fail('MALFORMED_LINE', `malformed checkpoint: ${issuePath(parsed.error)}`, n);
    const c = parsed.data;
    const header = this.header!;
    // Position first: which kind of checkpoint may stand here.
    if (this.last === 'header') {
      if (c.reason !== 'start') return this.#fail('CHECKPOINT_MISSING', 'the start checkpoint must follow the header', n);
    } else if (this.last === 'summary') {
      if (c.reason !== 'stop') return this.#fail('CHECKPOINT_MISSING', 'the stop checkpoint must follow the summary', n);
    } else if (this.last === 'entry') {
      return this.#fail('SEAL_MISSING', `records of block ${this.block} are not sealed before this checkpoint`, n, { block: this.block });
    } else if (this.last !== 'seal') {
      return this.#fail('UNEXPECTED_LINE', 'a checkpoint must follow a seal', n);
    } else if (c.reason === 'start' || c.reason === 'stop') {
      return this.#fail('UNEXPECTED_LINE', `a ${c.reason} checkpoint cannot stand here`, n);
    } else if (this.lastSeal?.demanding !== true) {
      // Checkpoints follow the seal made for them, or a full block at the checkpoint interval.
      return this.#fail('SEAL_MISSING', `a checkpoint after block ${this.block - 1} without the seal made for it`, n, { block: this.block });
    }
    // Authenticity.
    if (this.keys !== null) {
      const pk = this.keys.get(c.keyId);
      if (pk === undefined) return this.#fail('CHECKPOINT_KEY_UNTRUSTED', `checkpoint signed by untrusted key ${c.keyId}`, n);
      const payload: CheckpointPayload = { id: c.id, block: c.block, hash: c.hash, records: c.records, reason: c.reason, ...(c.summary === undefined ? {} : { summary: c.summary }) };
      if (!this.crypto.verify(fromHex(c.sig), checkpointMessage(this.domains, payload), pk)) {
        return this.#fail('CHECKPOINT_SIGNATURE_INVALID', `checkpoint signature does not verify under key ${c.keyId}`, n);
      }
    }
    // Place in the chain.
    if (c.reason === 'start') {
      if (c.id !== this.spec.idOf(header) || c.hash !== toHex(this.headerHash!) || c.block !== -1 || c.records !== 0) {
        return this.#fail('HEADER_ALTERED', 'the header differs from the one the start checkpoint signed', 1);
      }
      if (c.keyId !== header.kernelKeyId) return this.#fail('CHECKPOINT_KEY_UNTRUSTED', `start checkpoint signed by ${c.keyId}, the header names ${header.kernelKeyId}`, n);
    } else {
      if (this.spec.sameKey && c.keyId !== header.kernelKeyId) {
        return this.#fail('CHECKPOINT_KEY_UNTRUSTED', `checkpoint signed by ${c.keyId}, the header names ${header.kernelKeyId}`, n);
      }
      if (c.reason === 'stop') {
        if (c.summary === undefined || c.summary !== this.summaryHash) {
          // The checkpoint is authentic (or signatures are not checked): the summary is what changed.
          return this.#fail('SUMMARY_ALTERED', 'the summary differs from the one the stop checkpoint signed', this.summaryLine);
        }
      } else if (c.summary !== undefined) {
        return this.#fail('CHECKPOINT_MISPLACED', 'only the stop checkpoint signs a summary', n);
      }
      const lastBlock = this.block - 1;
      if (c.id !== this.spec.idOf(header) || c.block !== lastBlock || c.hash !== toHex(this.prev) || c.records !== this.sealedRecords) {
        return this.#fail('CHECKPOINT_MISPLACED', `checkpoint signs block ${c.block} (${c.records} records) but stands after block ${lastBlock} (${this.sealedRecords} records)`, n, {
          block: c.block,
        });
      }
    }
    this.checkpoints.push({ line: n, reason: c.reason, block: c.block, records: c.records, keyId: c.keyId });
    this.last = c.reason === 'stop' ? 'stop' : 'checkpoint';
    return null;
  }

  #summary(value: unknown, bytes: Uint8Array, n: number): VerifyIssue | null {
    const parsed = this.spec.summarySchema!.safeParse(value);
    if (!parsed.success) return this.#fail('MALFORMED_LINE', `malformed summary: ${issuePath(parsed.error)}`, n);
    if (this.last === 'entry') return this.#fail('SEAL_MISSING', `records of block ${this.block} are not sealed before the summary`, n, { block: this.block });
    if (this.last !== 'seal') return this.#fail('UNEXPECTED_LINE', 'the summary must follow a seal', n);
    // Stop seals the open block, which is never full (full blocks are sealed as they fill).
    if (this.lastSeal!.count >= this.header!.blockSize) return this.#fail('SEAL_MISSING', 'the final block is not sealed before the summary', n, { block: this.block });
    const mismatch = this.hooks.checkSummary?.(parsed.data) ?? null;
    if (mismatch !== null) return this.#fail('SUMMARY_MISMATCH', mismatch, n);
    this.summary = parsed.data;
    this.summaryLine = n;
    this.summaryHash = toHex(this.crypto.sha3_256(concatBytes(this.domains.summary, bytes)));
    this.last = 'summary';
    return null;
  }

  /**
   * Finish after the last line.
   * @param allowIncomplete - accept a chain that ends before its final checkpoint (a trace still running)
   * @returns the problem found, or null
   */
  end(allowIncomplete = false): VerifyIssue | null {
    if (this.issue !== null) return this.issue;
    const n = this.lines + 1;
    if (this.lines === 0) return this.#fail('HEADER_MISSING', 'empty input', 1);
    if (this.last === 'header') return this.#fail('CHECKPOINT_MISSING', 'the start checkpoint is missing', n);
    if (allowIncomplete) return null;
    if (this.spec.summarySchema !== null) {
      if (this.last !== 'stop') return this.#fail('INCOMPLETE', 'the trace ends before its stop checkpoint', n);
    } else if (this.last !== 'checkpoint') {
      return this.#fail('INCOMPLETE', 'the log ends with entries no checkpoint signs', n);
    }
    return null;
  }
}

function issuePath(error: z.ZodError): string {
  const i = error.issues[0];
  if (i === undefined) return 'invalid';
  return `${i.path.length === 0 ? '' : `${i.path.join('.')}: `}${i.message}`;
}

/**
 * Split an exported chain into lines: UTF-8 text or bytes, one line per `\n`, the last newline optional.
 * Bytes are decoded strictly per line (a line that is not UTF-8 yields undefined).
 * @param input - the export
 * @returns the lines
 */
export function splitLines(input: string | Uint8Array): (string | undefined)[] {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    const whole = decodeUtf8Strict(input);
    if (whole === undefined) return splitBytes(input);
    text = whole;
  }
  const parts = text.split('\n');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Split bytes that are not all UTF-8, decoding line by line (a bad line yields undefined). */
function splitBytes(input: Uint8Array): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  let start = 0;
  for (let i = 0; i <= input.length; i++) {
    if (i === input.length || input[i] === 0x0a) {
      if (i === input.length && start === i) break;
      out.push(decodeUtf8Strict(input.subarray(start, i)));
      start = i + 1;
    }
  }
  return out;
}

/**
 * Whether an input text holds a lone surrogate (UTF-8 bytes never do: they are decoded strictly).
 * @param input - the export
 * @returns true for a string with a lone surrogate
 */
export function hasLoneSurrogate(input: string | Uint8Array): boolean {
  return typeof input === 'string' && /\p{Cs}/u.test(input);
}

/** A line for the store: text, or its UTF-8 bytes. */
export type Line = string | Uint8Array;

/** A batch buffer lines are encoded into (see {@link ChainWriter.entry}). */
export interface LineBytes {
  /** The buffer. */
  readonly buf: Buffer;
  /** The next free byte. */
  off: number;
}

/** The mutable state of a chain being written. */
export interface WriterState {
  prev: Uint8Array;
  block: number;
  nextSeq: number;
  sealedRecords: number;
  open: OpenBlock | null;
}

/**
 * The writing half: turns entries into lines (sealing blocks and signing checkpoints as the format
 * requires) and appends them to the store, one `appendBatch` per call so each call is one durable step.
 */
export class ChainWriter<H extends HeaderBase> {
  readonly domains: Domains;
  #failed: unknown = null;
  #closed = false;

  /**
   * @param format - the format name
   * @param id - the chain id
   * @param header - the header
   * @param log - the store log
   * @param crypto - hashes
   * @param key - the kernel signing key
   * @param state - where the chain stands
   */
  constructor(
    format: string,
    readonly id: string,
    readonly header: H,
    readonly log: AppendLog,
    readonly crypto: CryptoProvider,
    readonly key: SigningKey,
    readonly state: WriterState,
  ) {
    this.domains = new Domains(format);
  }

  /** Whether the chain is closed (stopped) or broken by a failed write. */
  get usable(): boolean {
    return this.#failed === null && !this.#closed;
  }

  /**
   * Throw unless the writer can write.
   * @param what - the operation, for the message
   */
  check(what: string): void {
    if (this.#failed !== null) throw new ForgeError('IO_ERROR', `${this.id}: cannot ${what}: an earlier write failed`, { cause: this.#failed });
    if (this.#closed) throw new ForgeError('INVALID_ARGUMENT', `${this.id}: cannot ${what}: the chain is stopped`);
  }

  /** Mark the chain stopped. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Lines for one entry; seals the block when it fills (and adds an interval checkpoint when due).
   * @param text - the entry's canonical line (with its seq, and the block it falls in)
   * @param seq - its sequence number
   * @param out - lines to append to
   * @param bytes - a buffer with room for the record domain and the line's UTF-8 (3 bytes per UTF-16 unit):
   *   the line is encoded there once, for its hash and for the store
   */
  entry(text: string, seq: number, out: Line[], bytes?: LineBytes): void {
    const s = this.state;
    const open = (s.open ??= new OpenBlock(s.prev));
    if (open.first < 0) open.first = seq;
    if (bytes !== undefined && FAST_HASH) {
      // Encode once: [record domain][line] in the batch buffer; hash it all, store the line part.
      const { buf } = bytes;
      const start = bytes.off;
      const prefix = this.domains.record;
      buf.set(prefix, start);
      const end = start + prefix.length + buf.write(text, start + prefix.length, 'utf8');
      open.hashes.push(nodeHash('sha3-256', buf.subarray(start, end), 'hex'));
      out.push(buf.subarray(start + prefix.length, end));
      bytes.off = end;
    } else {
      open.hashes.push(recordHash(this.crypto, this.domains, text));
      out.push(text);
    }
    s.nextSeq++;
    if (open.hashes.length >= this.header.blockSize) {
      const block = this.seal(out);
      const every = this.header.checkpointEvery;
      if (every > 0 && (block + 1) % every === 0) this.checkpoint('interval', undefined, out);
    }
  }

  /** @returns records in the open block */
  get openCount(): number {
    return this.state.open?.length ?? 0;
  }

  /**
   * Seal the open block (possibly empty).
   * @param out - lines to append to
   * @returns the block index sealed
   */
  seal(out: Line[]): number {
    const s = this.state;
    const open = s.open ?? new OpenBlock(s.prev);
    const h = blockHash(this.crypto, this.domains, s.prev, open.hashes);
    const block = s.block;
    out.push(sealLineText(block, open.length > 0 ? open.first : s.nextSeq, toHex(s.prev), toHex(h), open.hashes));
    s.sealedRecords += open.length;
    s.prev = h;
    s.block++;
    s.open = null;
    return block;
  }

  /**
   * A signed checkpoint over the last sealed block.
   * @param reason - why
   * @param summary - the summary hash (stop only)
   * @param out - lines to append to
   * @returns the checkpoint's payload and key id
   */
  checkpoint(reason: string, summary: string | undefined, out: Line[]): CheckpointPayload & { keyId: string } {
    const s = this.state;
    const payload: CheckpointPayload = { id: this.id, block: s.block - 1, hash: toHex(s.prev), records: s.sealedRecords, reason, ...(summary === undefined ? {} : { summary }) };
    const sig = toHex(this.key.sign(checkpointMessage(this.domains, payload)));
    out.push(canonicalJson({ t: 'checkpoint', ...payload, keyId: this.key.keyId, sig }));
    return { ...payload, keyId: this.key.keyId };
  }

  /**
   * Append lines as one durable batch. A failure leaves the writer broken (`IO_ERROR` from then on).
   * @param lines - the lines
   * @returns once durable
   */
  async commit(lines: readonly Line[]): Promise<void> {
    if (lines.length === 0) return;
    try {
      await this.log.appendBatch(lines);
    } catch (e) {
      this.#failed ??= e;
      throw e;
    }
  }
}

/**
 * The writer state a verifier ended in, to continue a chain after a restart.
 * @param v - a verifier that consumed the whole chain without a problem
 * @returns the state
 */
export function stateFromVerifier<H extends HeaderBase, E extends { readonly seq: number }, S>(v: ChainVerifier<H, E, S>): WriterState {
  return { prev: v.prev, block: v.block, nextSeq: v.nextSeq, sealedRecords: v.sealedRecords, open: v.open };
}
