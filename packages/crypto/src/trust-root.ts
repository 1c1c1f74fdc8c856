import { z } from 'zod';
import { ForgeError, canonicalJson, concatBytes, fromHex, toHex, utf8 } from '@forgeone/common';
import type { CryptoProvider } from './CryptoProvider.js';
import { publicKeyInfo, type PublicKeyInfo, type SigningKey } from './keys.js';
import { countSignatures, type QuorumOutcome, type SignatureEntry } from './quorum.js';
import { zodIssuePath } from './zod-util.js';

/** Domain-separation prefix of the bytes a trust root's signatures cover. */
export const TRUST_ROOT_SIGNING_PREFIX = 'forgeone/trust-root/v1\0';

const KeyId = z.string().regex(/^[0-9a-f]{64}$/, 'a key id is 64 lowercase hex characters');
const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes of lowercase hex');
const Hex64 = z.string().regex(/^[0-9a-f]{128}$/, '64 bytes of lowercase hex');
const RoleName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'a role name is lowercase letters, digits and -');
const Timestamp = z.iso.datetime({ offset: false, precision: 0 });

/** A role in a trust root: the keys that act for it and how many must sign. */
export const TrustRoleSchema = z.strictObject({
  keyIds: z.array(KeyId).min(1).max(64),
  threshold: z.number().int().min(1).max(64),
});

/** The signed part of a trust root, as zod validates it. */
export const TrustRootSignedSchema = z.strictObject({
  type: z.literal('forgeone.trust-root'),
  specVersion: z.literal(1),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  expires: Timestamp,
  keys: z.record(KeyId, z.strictObject({ keyType: z.literal('ed25519'), publicKey: Hex32 })),
  roles: z.record(RoleName, TrustRoleSchema),
  revoked: z.array(KeyId).max(1024),
});

/** A whole trust root document: the signed body and detached signatures over it. */
export const TrustRootSchema = z.strictObject({
  signed: TrustRootSignedSchema,
  signatures: z.array(z.strictObject({ keyId: KeyId, signature: Hex64 })).max(64),
});

/** A role: the keys that act for it and how many of them must sign. */
export type TrustRole = z.infer<typeof TrustRoleSchema>;
/** The signed body of a trust root. */
export type TrustRootSigned = z.infer<typeof TrustRootSignedSchema>;
/** A trust root document. */
export type TrustRootDocument = z.infer<typeof TrustRootSchema>;

/** Roles every trust root must define. */
export const REQUIRED_ROLES = ['root', 'packages'] as const;

/**
 * Parse and structurally check a trust root (JSON text or an already-parsed value): schema, key ids equal
 * to the hash of their keys, acceptable keys, roles that name known keys, thresholds that can be met,
 * and the required roles `root` and `packages`. Signatures are not checked here: see {@link verifyTrustRoot}.
 * @param provider - hash provider
 * @param input - JSON text or value
 * @returns the document
 * @throws ForgeError `TRUST_ROOT_INVALID` naming the offending field
 */
export function parseTrustRoot(provider: CryptoProvider, input: unknown): TrustRootDocument {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input) as unknown;
    } catch (e) {
      throw new ForgeError('TRUST_ROOT_INVALID', `trust root is not valid JSON: ${(e as Error).message}`);
    }
  }
  const parsed = TrustRootSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = zodIssuePath(issue.path);
    throw new ForgeError('TRUST_ROOT_INVALID', `trust root field ${path}: ${issue.message}`, { details: { path } });
  }
  const doc = parsed.data;
  const { keys, roles } = doc.signed;
  for (const [keyId, key] of Object.entries(keys)) {
    let info: PublicKeyInfo;
    try {
      info = publicKeyInfo(provider, fromHex(key.publicKey));
    } catch {
      throw new ForgeError('TRUST_ROOT_INVALID', `trust root field signed.keys.${keyId}: unusable Ed25519 public key`, { details: { path: `signed.keys.${keyId}` } });
    }
    if (info.keyId !== keyId) {
      throw new ForgeError('TRUST_ROOT_INVALID', `trust root field signed.keys.${keyId}: key id is not the SHA3-256 of the key`, { details: { path: `signed.keys.${keyId}` } });
    }
  }
  for (const required of REQUIRED_ROLES) {
    if (roles[required] === undefined) {
      throw new ForgeError('TRUST_ROOT_INVALID', `trust root field signed.roles.${required}: required role is missing`, { details: { path: `signed.roles.${required}` } });
    }
  }
  for (const [name, role] of Object.entries(roles)) {
    const path = `signed.roles.${name}`;
    if (new Set(role.keyIds).size !== role.keyIds.length) {
      throw new ForgeError('TRUST_ROOT_INVALID', `trust root field ${path}.keyIds: duplicate key id`, { details: { path: `${path}.keyIds` } });
    }
    for (const id of role.keyIds) {
      if (keys[id] === undefined) throw new ForgeError('TRUST_ROOT_INVALID', `trust root field ${path}.keyIds: unknown key ${id}`, { details: { path: `${path}.keyIds` } });
    }
    const usable = role.keyIds.filter((id) => !doc.signed.revoked.includes(id)).length;
    if (role.threshold > usable) {
      throw new ForgeError('TRUST_ROOT_INVALID', `trust root field ${path}.threshold: ${role.threshold} exceeds the ${usable} unrevoked keys of the role`, { details: { path: `${path}.threshold` } });
    }
  }
  return doc;
}

/**
 * The bytes a trust root's signatures cover: the prefix `forgeone/trust-root/v1\0` and the canonical JSON of `signed`.
 * @param signed - the signed body
 * @returns the message to sign or verify
 */
export function trustRootSigningBytes(signed: TrustRootSigned): Uint8Array {
  return concatBytes(utf8(TRUST_ROOT_SIGNING_PREFIX), utf8(canonicalJson(signed)));
}

/**
 * The unrevoked keys a role trusts.
 * @param signed - the trust root body
 * @param role - the role name
 * @returns key id → public key
 * @throws ForgeError `TRUST_ROLE_UNKNOWN` when the root has no such role
 */
export function roleKeys(signed: TrustRootSigned, role: string): Map<string, Uint8Array> {
  const r = signed.roles[role];
  if (r === undefined) throw new ForgeError('TRUST_ROLE_UNKNOWN', `trust root v${signed.version} has no role "${role}"`);
  const out = new Map<string, Uint8Array>();
  for (const id of r.keyIds) {
    if (!signed.revoked.includes(id)) out.set(id, fromHex(signed.keys[id]!.publicKey));
  }
  return out;
}

/**
 * Add (or replace) one key's signature on a trust root. The key must belong to the document's root role
 * or, for rotation, to the previous root's root role; the caller decides which keys sign.
 * @param provider - the provider
 * @param doc - the document
 * @param key - the signing key
 * @returns a new document with the signature
 */
export function signTrustRoot(provider: CryptoProvider, doc: TrustRootDocument, key: SigningKey): TrustRootDocument {
  void provider;
  const signature = toHex(key.sign(trustRootSigningBytes(doc.signed)));
  const others = doc.signatures.filter((s) => s.keyId !== key.keyId);
  return { signed: doc.signed, signatures: [...others, { keyId: key.keyId, signature }].sort((a, b) => (a.keyId < b.keyId ? -1 : 1)) };
}

function entries(doc: TrustRootDocument): SignatureEntry[] {
  return doc.signatures.map((s) => ({ keyId: s.keyId, signature: fromHex(s.signature) }));
}

function revokedUnion(...roots: TrustRootSigned[]): Set<string> {
  return new Set(roots.flatMap((r) => r.revoked));
}

/** Options for {@link verifyTrustRoot}. */
export interface VerifyTrustRootOptions {
  /** The time to judge expiry against (ms since the epoch), taken once by the caller. */
  readonly now: number;
  /** The currently trusted root; when given, `doc` must be its successor. */
  readonly previous?: TrustRootDocument;
  /** Skip the expiry check (intermediate roots of an update chain, as in TUF). */
  readonly ignoreExpiry?: boolean;
}

/** What {@link verifyTrustRoot} established. */
export interface TrustRootVerification {
  /** Keys of the document's own root role that signed. */
  readonly signers: readonly string[];
  /** Keys of the previous root role that signed (rotation only). */
  readonly previousSigners: readonly string[];
}

function quorumError(kind: 'own' | 'previous', version: number, q: QuorumOutcome): ForgeError {
  const code = kind === 'own' ? 'TRUST_ROOT_SIGNATURE' : 'TRUST_ROOT_ROTATION';
  const whose = kind === 'own' ? `its own root keys` : `the root keys of version ${version - 1}`;
  return new ForgeError(code, `trust root v${version}: ${q.valid.length} of ${whose} signed validly, ${q.threshold} required`, {
    details: { signers: q.valid, threshold: q.threshold, rejected: q.rejected },
  });
}

/**
 * Verify a trust root. Without `previous` it is an anchor: it must be signed by a threshold of its own root
 * role. With `previous` it is an update: its version must be exactly one higher, and it must be signed by a
 * threshold of the previous root role and a threshold of its own. A key revoked in either version never counts.
 * @param provider - the provider
 * @param doc - a parsed document ({@link parseTrustRoot})
 * @param options - the time, and the previous root for an update
 * @returns who signed
 * @throws ForgeError `TRUST_ROOT_ROLLBACK`, `TRUST_ROOT_VERSION`, `TRUST_ROOT_ROTATION`, `TRUST_ROOT_SIGNATURE`, `TRUST_ROOT_EXPIRED`
 */
export function verifyTrustRoot(provider: CryptoProvider, doc: TrustRootDocument, options: VerifyTrustRootOptions): TrustRootVerification {
  const { signed } = doc;
  const message = trustRootSigningBytes(signed);
  let previousSigners: readonly string[] = [];
  const prev = options.previous?.signed;
  const revoked = prev === undefined ? revokedUnion(signed) : revokedUnion(signed, prev);
  if (prev !== undefined) {
    if (signed.version <= prev.version) {
      throw new ForgeError('TRUST_ROOT_ROLLBACK', `trust root v${signed.version} is not newer than the trusted v${prev.version}`, {
        details: { offered: signed.version, current: prev.version },
      });
    }
    if (signed.version !== prev.version + 1) {
      throw new ForgeError('TRUST_ROOT_VERSION', `trust root v${signed.version} does not follow v${prev.version}; apply v${prev.version + 1} first`, {
        details: { offered: signed.version, current: prev.version },
      });
    }
    const q = countSignatures(provider, roleKeys(prev, 'root'), revoked, prev.roles.root!.threshold, message, entries(doc));
    if (!q.met) throw quorumError('previous', signed.version, q);
    previousSigners = q.valid;
  }
  const own = countSignatures(provider, roleKeys(signed, 'root'), revoked, signed.roles.root!.threshold, message, entries(doc));
  if (!own.met) throw quorumError('own', signed.version, own);
  if (!(options.ignoreExpiry ?? false) && Date.parse(signed.expires) <= options.now) {
    throw new ForgeError('TRUST_ROOT_EXPIRED', `trust root v${signed.version} expired at ${signed.expires}`, { details: { expires: signed.expires } });
  }
  return { signers: own.valid, previousSigners };
}

/**
 * Walk a chain of updates from the trusted root: each must verify against the one before it; only the last
 * is checked for expiry (as TUF does). Versions never go back.
 * @param provider - the provider
 * @param trusted - the currently trusted root
 * @param updates - successors in order
 * @param now - one time for the whole walk
 * @returns the newest trusted root
 * @throws ForgeError as {@link verifyTrustRoot}
 */
export function updateTrustRoot(provider: CryptoProvider, trusted: TrustRootDocument, updates: readonly TrustRootDocument[], now: number): TrustRootDocument {
  let current = trusted;
  updates.forEach((next, i) => {
    verifyTrustRoot(provider, next, { now, previous: current, ignoreExpiry: i < updates.length - 1 });
    current = next;
  });
  return current;
}

/** Input for {@link createTrustRoot}. */
export interface TrustRootInit {
  /** Version, default 1. */
  readonly version?: number;
  /** Expiry (ISO 8601 UTC, whole seconds). */
  readonly expires: string;
  /** Roles: the public keys of each and the threshold. Must include `root` and `packages`. */
  readonly roles: Readonly<Record<string, { readonly keys: readonly PublicKeyInfo[]; readonly threshold: number }>>;
}

/**
 * Build an unsigned trust root body (then sign it with {@link signTrustRoot}).
 * @param provider - the provider
 * @param init - roles, thresholds, expiry
 * @returns an unsigned document
 * @throws ForgeError `TRUST_ROOT_INVALID` when the result would not parse
 */
export function createTrustRoot(provider: CryptoProvider, init: TrustRootInit): TrustRootDocument {
  const keys: Record<string, { keyType: 'ed25519'; publicKey: string }> = {};
  const roles: Record<string, TrustRole> = {};
  for (const [name, role] of Object.entries(init.roles)) {
    for (const k of role.keys) keys[k.keyId] = { keyType: 'ed25519', publicKey: toHex(k.publicKey) };
    roles[name] = { keyIds: [...new Set(role.keys.map((k) => k.keyId))].sort(), threshold: role.threshold };
  }
  const doc: TrustRootDocument = {
    signed: { type: 'forgeone.trust-root', specVersion: 1, version: init.version ?? 1, expires: init.expires, keys, roles, revoked: [] },
    signatures: [],
  };
  return parseTrustRoot(provider, doc);
}

/** A change to a trust root, producing the next version. */
export type TrustRootChange =
  | { readonly kind: 'add-key'; readonly role: string; readonly key: PublicKeyInfo; readonly threshold?: number }
  | { readonly kind: 'revoke-key'; readonly keyId: string }
  | { readonly kind: 'rotate'; readonly role: string; readonly keys: readonly PublicKeyInfo[]; readonly threshold: number }
  | { readonly kind: 'set-expiry'; readonly expires: string };

/**
 * Derive the unsigned next version of a trust root with one change applied. Sign the result with a threshold
 * of the current root keys and a threshold of its own root keys.
 * @param provider - the provider
 * @param current - the trusted root
 * @param change - what to change
 * @returns version N+1, unsigned
 * @throws ForgeError `TRUST_ROOT_INVALID` when the change leaves a role unable to meet its threshold
 */
export function nextTrustRoot(provider: CryptoProvider, current: TrustRootDocument, change: TrustRootChange): TrustRootDocument {
  const s = structuredClone(current.signed);
  s.version += 1;
  switch (change.kind) {
    case 'add-key': {
      if (s.revoked.includes(change.key.keyId)) throw new ForgeError('TRUST_ROOT_INVALID', `key ${change.key.keyId} is revoked and can never be trusted again`);
      s.keys[change.key.keyId] = { keyType: 'ed25519', publicKey: toHex(change.key.publicKey) };
      const role = s.roles[change.role] ?? { keyIds: [], threshold: change.threshold ?? 1 };
      role.keyIds = [...new Set([...role.keyIds, change.key.keyId])].sort();
      if (change.threshold !== undefined) role.threshold = change.threshold;
      s.roles[change.role] = role;
      break;
    }
    case 'revoke-key': {
      if (s.keys[change.keyId] === undefined) throw new ForgeError('NOT_FOUND', `trust root v${current.signed.version} has no key ${change.keyId}`);
      if (!s.revoked.includes(change.keyId)) s.revoked = [...s.revoked, change.keyId].sort();
      for (const role of Object.values(s.roles)) role.keyIds = role.keyIds.filter((id) => id !== change.keyId);
      for (const [name, role] of Object.entries(s.roles)) {
        if (role.keyIds.length === 0) throw new ForgeError('TRUST_ROOT_INVALID', `revoking ${change.keyId} would leave role "${name}" without keys; add a replacement first`);
      }
      break;
    }
    case 'rotate': {
      for (const k of change.keys) {
        if (s.revoked.includes(k.keyId)) throw new ForgeError('TRUST_ROOT_INVALID', `key ${k.keyId} is revoked and can never be trusted again`);
        s.keys[k.keyId] = { keyType: 'ed25519', publicKey: toHex(k.publicKey) };
      }
      s.roles[change.role] = { keyIds: [...new Set(change.keys.map((k) => k.keyId))].sort(), threshold: change.threshold };
      break;
    }
    case 'set-expiry':
      s.expires = change.expires;
      break;
  }
  // Drop keys no role uses any more (revoked ones stay listed so they are never re-added silently).
  const used = new Set(Object.values(s.roles).flatMap((r) => r.keyIds));
  for (const id of Object.keys(s.keys)) if (!used.has(id) && !s.revoked.includes(id)) delete s.keys[id];
  return parseTrustRoot(provider, { signed: s, signatures: [] });
}
