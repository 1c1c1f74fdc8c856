import { z } from 'zod';
import { ForgeError, canonicalJson, concatBytes, formatFieldPath, fromHex, isForgeError, toHex, utf8 } from '@forgeone/common';
import { keyIdOf } from '@forgeone/crypto';
import type { CryptoProvider, PublicKeyInfo, SigningKey } from '@forgeone/crypto';
import { eventLogDigest, replayEventLog, type MeasurementEvent } from './measure.js';

/** Domain-separation prefix of the bytes a boot quote's signature covers. */
export const QUOTE_SIGNING_PREFIX = 'forgeone/boot-quote/v1\0';

const HEX32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes of lowercase hex');

/** Schema of a boot quote. */
export const BootQuoteSchema = z.strictObject({
  pcr: HEX32,
  eventsDigest: HEX32,
  time: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: z.string().min(1).max(256).optional(),
  keyId: HEX32,
  signature: z.string().regex(/^[0-9a-f]{128}$/, '64 bytes of lowercase hex'),
});

/**
 * A boot quote: the final measurement value and the digest of the event log that produced it, signed by the
 * kernel key, so anyone holding the kernel's public key and the event log can check what the kernel measured.
 */
export type BootQuote = z.infer<typeof BootQuoteSchema>;

/** The part of a quote that is signed. */
export type QuoteBody = Omit<BootQuote, 'signature'>;

/** What a verified quote vouches for. */
export interface VerifiedQuote {
  /** The chain value the events replay to. */
  readonly pcr: string;
  /** The kernel key that signed. */
  readonly keyId: string;
  /** When the quote was made (ms since the epoch). */
  readonly time: number;
}

/**
 * The bytes a quote's signature covers: `forgeone/boot-quote/v1\0` and the canonical JSON of the body
 * (`pcr`, `eventsDigest`, `time`, `keyId`, and `nonce` when present).
 * @param body - the quote without its signature
 * @returns the message
 */
export function quoteSigningBytes(body: QuoteBody): Uint8Array {
  return concatBytes(utf8(QUOTE_SIGNING_PREFIX), utf8(canonicalJson(body)));
}

/**
 * Quote an event log: replay it, digest it and sign both with the kernel key.
 * @param events - the event log
 * @param kernelKey - the kernel's signing key
 * @param crypto - hashes
 * @param time - when (ms since the epoch, integer)
 * @param nonce - a verifier's challenge, for a fresh quote (optional)
 * @returns the quote
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed event log
 */
export function createQuote(events: readonly MeasurementEvent[], kernelKey: SigningKey, crypto: CryptoProvider, time: number, nonce?: string): BootQuote {
  const body: QuoteBody = {
    pcr: replayEventLog(events, crypto),
    eventsDigest: eventLogDigest(events, crypto),
    time: Math.floor(time),
    keyId: kernelKey.keyId,
    ...(nonce === undefined ? {} : { nonce }),
  };
  const parsed = BootQuoteSchema.omit({ signature: true }).safeParse(body);
  if (!parsed.success) throw new ForgeError('INVALID_ARGUMENT', `quote field ${formatFieldPath(parsed.error.issues[0]!.path)}: ${parsed.error.issues[0]!.message}`);
  return { ...body, signature: toHex(kernelKey.sign(quoteSigningBytes(body))) };
}

function invalid(reason: string, message: string, extra: Record<string, unknown> = {}): ForgeError {
  return new ForgeError('BOOT_QUOTE_INVALID', `boot quote: ${message}`, { details: { reason, ...extra } });
}

/**
 * Verify a boot quote against an event log: the quote's form, that `publicKey` is the key it names, the
 * signature over its body, that replaying the events gives the quoted value, and that the events are exactly
 * the ones quoted (names included). A changed, reordered, added or removed event fails.
 * @param quote - the quote (from outside: checked against its schema)
 * @param events - the event log offered with it
 * @param publicKey - the kernel's public key (bytes, or key info)
 * @param crypto - hashes and signature verification
 * @returns the verified value, key and time
 * @throws ForgeError `BOOT_QUOTE_INVALID` with `details.reason`: `malformed`, `key`, `signature`, `events` (the log is malformed), `pcr` or `events-digest`
 */
export function verifyQuote(quote: unknown, events: readonly MeasurementEvent[], publicKey: Uint8Array | PublicKeyInfo, crypto: CryptoProvider): VerifiedQuote {
  const parsed = BootQuoteSchema.safeParse(quote);
  if (!parsed.success) {
    const path = formatFieldPath(parsed.error.issues[0]!.path);
    throw invalid('malformed', `field ${path}: ${parsed.error.issues[0]!.message}`, { path });
  }
  const q = parsed.data;
  const key = publicKey instanceof Uint8Array ? publicKey : publicKey.publicKey;
  if (!(key instanceof Uint8Array) || key.length !== 32 || keyIdOf(crypto, key) !== q.keyId) {
    throw invalid('key', `signed by key ${q.keyId}, not by the key offered`);
  }
  const { signature, ...body } = q;
  if (!crypto.verify(fromHex(signature), quoteSigningBytes(body), key)) throw invalid('signature', 'the signature does not verify');
  let pcr: string;
  let digest: string;
  try {
    pcr = replayEventLog(events, crypto);
    digest = eventLogDigest(events, crypto);
  } catch (e) {
    throw invalid('events', `the event log is malformed: ${isForgeError(e) ? e.message : String(e)}`, isForgeError(e) && e.details !== undefined ? { field: e.details.field } : {});
  }
  if (pcr !== q.pcr) throw invalid('pcr', `the event log replays to ${pcr}, the quote says ${q.pcr}`, { replayed: pcr, quoted: q.pcr });
  if (digest !== q.eventsDigest) throw invalid('events-digest', 'the event log is not the one quoted (names or kinds differ)');
  return { pcr: q.pcr, keyId: q.keyId, time: q.time };
}
