import { z } from 'zod';
import { ForgeError, canonicalJson, concatBytes, formatFieldPath, fromHex, toHex, utf8 } from '@forgeone/common';
import { countSignatures, roleKeys } from '@forgeone/crypto';
import type { CryptoProvider, QuorumOutcome, SigningKey, TrustRootDocument } from '@forgeone/crypto';
import { MeasurementNameSchema, type MeasurementEvent } from './measure.js';

/** Domain-separation prefix of the bytes a golden document's signatures cover. */
export const GOLDEN_SIGNING_PREFIX = 'forgeone/golden/v1\0';

/** The trust root role that signs golden measurements; {@link GOLDEN_FALLBACK_ROLE} when the root has none. */
export const GOLDEN_ROLE = 'boot';

/**
 * The role used when the trust root defines no `boot` role: `root`. The root keys already decide which keys
 * the kernel trusts at all, so letting them vouch for the kernel's own measurements grants nothing new; a
 * deployment that wants separate, online-capable boot keys adds a `boot` role, and from then on root keys
 * alone no longer count for golden values.
 */
export const GOLDEN_FALLBACK_ROLE = 'root';

const HEX32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes of lowercase hex');

/** Schema of the signed body of a golden document. */
export const GoldenSignedSchema = z.strictObject({
  type: z.literal('forgeone.golden'),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  measurements: z.record(MeasurementNameSchema, HEX32),
});

/** Schema of a golden document: the signed body and detached signatures over it. */
export const GoldenSchema = z.strictObject({
  signed: GoldenSignedSchema,
  signatures: z.array(z.strictObject({ keyId: HEX32, signature: z.string().regex(/^[0-9a-f]{128}$/, '64 bytes of lowercase hex') })).max(64),
});

/** The signed body of a golden document: input name → expected digest (hex SHA3-256). */
export type GoldenSigned = z.infer<typeof GoldenSignedSchema>;
/** A golden measurements document. */
export type GoldenDocument = z.infer<typeof GoldenSchema>;

/** What {@link verifyGolden} established. */
export interface GoldenVerification {
  /** The verified document. */
  readonly doc: GoldenDocument;
  /** The role whose keys counted: `boot`, or `root` when the trust root has no `boot` role. */
  readonly role: string;
  /** Distinct keys of that role whose signature verified. */
  readonly signers: readonly string[];
  /** The role's threshold. */
  readonly threshold: number;
}

/** Options of {@link createGolden}. */
export interface CreateGoldenOptions {
  /** Document version (default 1); raise it with every new set of golden values. */
  readonly version?: number;
}

/**
 * The bytes a golden document's signatures cover: `forgeone/golden/v1\0` and the canonical JSON of `signed`.
 * @param signed - the signed body
 * @returns the message
 */
export function goldenSigningBytes(signed: GoldenSigned): Uint8Array {
  return concatBytes(utf8(GOLDEN_SIGNING_PREFIX), utf8(canonicalJson(signed)));
}

/**
 * Parse a golden document (JSON text or a value) against its schema.
 * @param input - JSON text or value
 * @returns the document
 * @throws ForgeError `BOOT_GOLDEN_INVALID` naming the offending field
 */
export function parseGolden(input: unknown): GoldenDocument {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input) as unknown;
    } catch (e) {
      throw new ForgeError('BOOT_GOLDEN_INVALID', `golden measurements are not valid JSON: ${(e as Error).message}`);
    }
  }
  const parsed = GoldenSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = formatFieldPath(issue.path);
    throw new ForgeError('BOOT_GOLDEN_INVALID', `golden measurements field ${path}: ${issue.message}`, { details: { path } });
  }
  return parsed.data;
}

/**
 * Add (or replace) one key's signature on a golden document.
 * @param doc - the document
 * @param key - a key of the trust root's `boot` role (or `root` when there is none)
 * @returns a new document with the signature, signatures sorted by key id
 */
export function signGolden(doc: GoldenDocument, key: SigningKey): GoldenDocument {
  const signature = toHex(key.sign(goldenSigningBytes(doc.signed)));
  const others = doc.signatures.filter((s) => s.keyId !== key.keyId);
  return { signed: doc.signed, signatures: [...others, { keyId: key.keyId, signature }].sort((a, b) => (a.keyId < b.keyId ? -1 : 1)) };
}

/**
 * Record a known-good measurement as golden values, signed by the given keys.
 * @param events - the event log of a trusted boot (see `Boot.measure`)
 * @param keys - signing keys (each signs once)
 * @param options - the document version
 * @returns the signed document
 * @throws ForgeError `BOOT_GOLDEN_INVALID` when an event is poisoned (there is no good value to record) or two events share a name
 */
export function createGolden(events: readonly MeasurementEvent[], keys: readonly SigningKey[], options: CreateGoldenOptions = {}): GoldenDocument {
  const measurements: Record<string, string> = {};
  for (const e of events) {
    if (e.poisoned) throw new ForgeError('BOOT_GOLDEN_INVALID', `input "${e.name}" could not be measured (${e.error ?? 'poisoned'}); it has no golden value`, { details: { name: e.name } });
    if (Object.hasOwn(measurements, e.name)) throw new ForgeError('BOOT_GOLDEN_INVALID', `input "${e.name}" is measured twice`, { details: { name: e.name } });
    measurements[e.name] = e.digest;
  }
  let doc = parseGolden({ signed: { type: 'forgeone.golden', version: options.version ?? 1, measurements }, signatures: [] });
  for (const k of keys) doc = signGolden(doc, k);
  return doc;
}

function goldenRole(trustRoot: TrustRootDocument): string {
  return trustRoot.signed.roles[GOLDEN_ROLE] !== undefined ? GOLDEN_ROLE : GOLDEN_FALLBACK_ROLE;
}

/**
 * Verify a golden document against a trust root the caller has already verified: at least the role's
 * threshold of distinct, unrevoked keys of the `boot` role (or `root` when the root has no `boot` role) must
 * have signed its canonical bytes. Keys of other roles never count.
 * @param doc - the document (value or JSON text; parsed here)
 * @param trustRoot - the verified trust root
 * @param crypto - verifies signatures
 * @returns the document, the role and who signed
 * @throws ForgeError `BOOT_GOLDEN_INVALID` for a malformed document or when the threshold is not met (details: role, signers, threshold, rejected)
 */
export function verifyGolden(doc: unknown, trustRoot: TrustRootDocument, crypto: CryptoProvider): GoldenVerification {
  const parsed = parseGolden(doc);
  const role = goldenRole(trustRoot);
  const threshold = trustRoot.signed.roles[role]!.threshold;
  const q: QuorumOutcome = countSignatures(
    crypto,
    roleKeys(trustRoot.signed, role),
    new Set(trustRoot.signed.revoked),
    threshold,
    goldenSigningBytes(parsed.signed),
    parsed.signatures.map((s) => ({ keyId: s.keyId, signature: fromHex(s.signature) })),
  );
  if (!q.met) {
    throw new ForgeError('BOOT_GOLDEN_INVALID', `golden measurements v${parsed.signed.version}: ${q.valid.length} of the "${role}" role's keys signed validly, ${threshold} required`, {
      details: { role, signers: q.valid, threshold, rejected: q.rejected },
    });
  }
  return { doc: parsed, role, signers: q.valid, threshold };
}
