/**
 * API tokens: EdDSA (Ed25519) JSON Web Tokens, signed with a ForgeOne {@link SigningKey} through `jose`, with a
 * role, a subject, an expiry and an id.
 *
 * @packageDocumentation
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { errors as joseErrors, SignJWT, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { ForgeError, newId, systemClock, type Clock } from '@forgeone/common';
import { roleKeys, type PublicKeyInfo, type SigningKey, type TrustRootDocument } from '@forgeone/crypto';
import { isApiRole, type ApiRole } from './roles.js';

/** The `iss` claim of ForgeOne API tokens. */
export const TOKEN_ISSUER = 'forgeone';
/** The `aud` claim of ForgeOne API tokens. */
export const TOKEN_AUDIENCE = 'forgeone-api';
/** The longest lifetime a token may be issued for: 90 days. */
export const MAX_TOKEN_TTL_SECONDS = 90 * 24 * 3600;
/** The trust root role whose keys sign API tokens, when the server takes its keys from a trust root. */
export const API_TOKEN_ROLE = 'api';

/** What a verified token says. */
export interface TokenClaims {
  /** Who calls (`sub`). */
  readonly subject: string;
  /** The caller's role. */
  readonly role: ApiRole;
  /** The token's id (`jti`): rate limits count per token id. */
  readonly tokenId: string;
  /** Issued at, seconds since the epoch. */
  readonly issuedAt: number;
  /** Expires at, seconds since the epoch. */
  readonly expiresAt: number;
  /** Id of the key that signed it. */
  readonly keyId: string;
}

/** Options of {@link issueToken}. */
export interface IssueTokenOptions {
  /** The issuing key (its public half must be among the server's token keys). */
  readonly key: SigningKey;
  /** The role the token grants. */
  readonly role: ApiRole;
  /** Who the token is for, e.g. `user:alice` (1–256 characters). */
  readonly subject: string;
  /** Lifetime in seconds, 1 to {@link MAX_TOKEN_TTL_SECONDS}. */
  readonly ttlSeconds: number;
  /** Time source (default the system clock). */
  readonly clock?: Clock;
  /** Token id; default a new `tok_` id. */
  readonly tokenId?: string;
}

const SUBJECT = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * The Node key object of an Ed25519 public key (for `jose`).
 * @param publicKey - 32 raw bytes
 * @returns the key object
 * @throws ForgeError `CRYPTO_INVALID_KEY` for a key of the wrong length
 */
export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== 32) throw new ForgeError('CRYPTO_INVALID_KEY', `an Ed25519 public key is 32 bytes, got ${publicKey.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64url(publicKey) }, format: 'jwk' });
}

function privateKeyObject(key: SigningKey): KeyObject {
  const secret = key.exportSecret();
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64url(key.publicKey), d: base64url(secret) }, format: 'jwk' });
  } finally {
    secret.fill(0);
  }
}

/**
 * Issue an API token: an EdDSA JWT with `sub`, `role`, `iat`, `exp`, `jti`, `iss` = `forgeone`,
 * `aud` = `forgeone-api`, and the signing key's id as `kid`.
 * @example
 * ```ts
 * const token = await issueToken({ key, role: 'operator', subject: 'user:alice', ttlSeconds: 3600 });
 * ```
 * @param options - key, role, subject, lifetime
 * @returns the compact JWT
 * @throws ForgeError `INVALID_ARGUMENT` for an unknown role, a malformed subject or a lifetime out of range
 */
export async function issueToken(options: IssueTokenOptions): Promise<string> {
  if (!isApiRole(options.role)) throw new ForgeError('INVALID_ARGUMENT', `role: expected one of admin, operator, auditor, reader, got ${JSON.stringify(options.role)}`, { details: { field: 'role' } });
  if (typeof options.subject !== 'string' || !SUBJECT.test(options.subject)) {
    throw new ForgeError('INVALID_ARGUMENT', 'subject: 1 to 256 printable ASCII characters, not starting with a space', { details: { field: 'subject' } });
  }
  const ttl = options.ttlSeconds;
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw new ForgeError('INVALID_ARGUMENT', `ttlSeconds: a whole number from 1 to ${MAX_TOKEN_TTL_SECONDS}, got ${String(ttl)}`, { details: { field: 'ttlSeconds' } });
  }
  const now = Math.floor((options.clock ?? systemClock).now() / 1000);
  return new SignJWT({ role: options.role })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: options.key.keyId })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(options.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .setJti(options.tokenId ?? newId('tok'))
    .sign(privateKeyObject(options.key));
}

/** Options of {@link createTokenVerifier}. */
export interface TokenVerifierOptions {
  /** The keys trusted to issue tokens. */
  readonly keys: readonly PublicKeyInfo[];
  /** Time source (default the system clock). */
  readonly clock?: Clock;
  /** Clock skew accepted on `exp` and `iat`, seconds (default 30). */
  readonly clockToleranceSeconds?: number;
  /** Verified tokens remembered so the next request with the same token skips the signature check (default 1024; 0 for none). */
  readonly cacheSize?: number;
}

/** Checks bearer tokens. */
export interface TokenVerifier {
  /** Ids of the trusted keys. */
  readonly keyIds: readonly string[];
  /**
   * Verify a token: signature by a trusted key, algorithm EdDSA, issuer, audience, expiry, and the claims.
   * @param token - the compact JWT
   * @returns its claims
   * @throws ForgeError `AUTH_EXPIRED` (expired, or issued in the future), `AUTH_INVALID` (anything else)
   */
  verify(token: string): Promise<TokenClaims>;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{2,4096}\.[A-Za-z0-9_-]{2,4096}\.[A-Za-z0-9_-]{2,1024}$/;

/**
 * Create a token verifier over a set of trusted keys.
 * @param options - keys, clock, tolerance, cache size
 * @returns the verifier
 * @throws ForgeError `INVALID_ARGUMENT` when no key is given
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  if (options.keys.length === 0) throw new ForgeError('INVALID_ARGUMENT', 'a token verifier needs at least one trusted key', { details: { field: 'keys' } });
  const keys = new Map<string, KeyObject>();
  for (const k of options.keys) keys.set(k.keyId, ed25519PublicKeyObject(k.publicKey));
  const clock = options.clock ?? systemClock;
  const tolerance = options.clockToleranceSeconds ?? 30;
  const cacheSize = options.cacheSize ?? 1024;
  const cache = new Map<string, TokenClaims>();

  const verify = async (token: string): Promise<TokenClaims> => {
    const nowMs = clock.now();
    const hit = cache.get(token);
    if (hit !== undefined) {
      if (hit.expiresAt + tolerance > nowMs / 1000) return hit;
      cache.delete(token);
      throw new ForgeError('AUTH_EXPIRED', `the token expired at ${new Date(hit.expiresAt * 1000).toISOString()}`);
    }
    if (!TOKEN_SHAPE.test(token)) throw new ForgeError('AUTH_INVALID', 'the bearer token is not a compact JWT');
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      kid = typeof header.kid === 'string' ? header.kid : undefined;
      if (header.alg !== 'EdDSA') throw new ForgeError('AUTH_INVALID', `the token's algorithm ${JSON.stringify(header.alg)} is not EdDSA`);
    } catch (e) {
      if (e instanceof ForgeError) throw e;
      throw new ForgeError('AUTH_INVALID', 'the token header cannot be decoded');
    }
    const key = kid === undefined ? undefined : keys.get(kid);
    if (key === undefined) throw new ForgeError('AUTH_INVALID', 'the token is not signed by a trusted key', { details: { keyId: kid ?? null } });
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['EdDSA'],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        clockTolerance: tolerance,
        currentDate: new Date(nowMs),
      }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw new ForgeError('AUTH_EXPIRED', 'the token has expired');
      if (e instanceof joseErrors.JWTClaimValidationFailed && (e.claim === 'nbf' || e.claim === 'iat')) throw new ForgeError('AUTH_EXPIRED', `the token is not valid yet (${e.claim})`);
      if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw new ForgeError('AUTH_INVALID', 'the token signature does not verify');
      if (e instanceof joseErrors.JOSEError) throw new ForgeError('AUTH_INVALID', `the token is invalid: ${e.code}`);
      throw new ForgeError('AUTH_INVALID', 'the token is invalid');
    }
    const { sub, role, exp, iat, jti } = payload as JWTPayload & { role?: unknown };
    if (!isApiRole(role)) throw new ForgeError('AUTH_INVALID', 'the token carries no known role');
    if (typeof sub !== 'string' || !SUBJECT.test(sub) || typeof jti !== 'string' || jti.length === 0 || jti.length > 128) throw new ForgeError('AUTH_INVALID', 'the token claims sub or jti are malformed');
    if (iat! > nowMs / 1000 + tolerance) throw new ForgeError('AUTH_EXPIRED', 'the token is issued in the future');
    if (exp! - iat! > MAX_TOKEN_TTL_SECONDS) throw new ForgeError('AUTH_INVALID', `the token lives longer than ${MAX_TOKEN_TTL_SECONDS} seconds`);
    const claims: TokenClaims = Object.freeze({ subject: sub, role, tokenId: jti, issuedAt: iat!, expiresAt: exp!, keyId: kid! });
    if (cacheSize > 0) {
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
      cache.set(token, claims);
    }
    return claims;
  };
  return { keyIds: [...keys.keys()], verify };
}

/**
 * The token keys a trust root names: the unrevoked keys of its `api` role.
 * @param trustRoot - a verified trust root
 * @param role - the role (default `api`)
 * @returns the keys
 * @throws ForgeError `TRUST_ROLE_UNKNOWN` when the trust root has no such role
 */
export function tokenKeysFromTrustRoot(trustRoot: TrustRootDocument, role: string = API_TOKEN_ROLE): PublicKeyInfo[] {
  return [...roleKeys(trustRoot.signed, role)].map(([keyId, publicKey]) => ({ keyId, publicKey }));
}
