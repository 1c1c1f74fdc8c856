import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { ForgeError, canonicalJson, concatBytes, fromHex, isForgeError, toHex, utf8 } from '@forgeone/common';
import { countSignatures, roleKeys, type CryptoProvider, type SigningKey, type TrustRootDocument } from '@forgeone/crypto';
import { configInvalid, configIssues, parseConfig, parseJsonText } from './parse.js';
import type { KernelConfig, KernelConfigInput } from './schema.js';

/** Domain-separation prefix of the bytes a config document's signatures cover. */
export const CONFIG_SIGNING_PREFIX = 'forgeone/config/v1\0';

/** The trust root role whose keys sign configs. */
export const CONFIG_ROLE = 'config';

const HEX_SIGNATURE = /^[0-9a-f]{128}$/;

let tmpCounter = 0;

/** The signed body of a config document. */
export const SignedConfigBodySchema = z.strictObject({
  type: z.literal('forgeone.config', { error: "expected 'forgeone.config'" }),
  version: z
    .number({ error: 'expected a positive integer' })
    .int({ error: 'expected a positive integer' })
    .min(1, { error: 'expected a positive integer' })
    .max(Number.MAX_SAFE_INTEGER, { error: 'expected a safe integer' }),
  config: z.unknown(),
});

/**
 * A signed config file: the body and detached Ed25519 signatures over
 * `forgeone/config/v1\0 ‖ canonical JSON of signed`, by keys of the trust root's `config` role.
 * Signature entries are only checked for shape here; a malformed signature simply does not count.
 */
export const SignedConfigDocumentSchema = z.strictObject({
  signed: SignedConfigBodySchema,
  signatures: z
    .array(z.strictObject({ keyId: z.string().max(128, { error: 'expected a key id' }), signature: z.string().max(256, { error: 'expected a hex signature' }) }), {
      error: 'expected a list of { keyId, signature }',
    })
    .max(64, { error: 'at most 64 signatures' }),
});

/** The signed body of a config document. */
export interface SignedConfigBody {
  /** Always `forgeone.config`. */
  readonly type: 'forgeone.config';
  /** Equal to `config.version`; repeated so a rollback can be told without parsing the config. */
  readonly version: number;
  /** The config (as {@link signConfig} writes it: every default spelled out). */
  readonly config: unknown;
}

/** A signed config document, as stored in a config file. */
export interface SignedConfigDocument {
  /** What the signatures cover. */
  readonly signed: SignedConfigBody;
  /** Detached signatures: key id and 64-byte Ed25519 signature, both lowercase hex. */
  readonly signatures: readonly { readonly keyId: string; readonly signature: string }[];
}

/**
 * The bytes a config document's signatures cover.
 * @param signed - the signed body
 * @returns `forgeone/config/v1\0` followed by the canonical JSON of `signed`
 * @throws ForgeError `INVALID_ARGUMENT` when the body is not canonical JSON (e.g. holds a fraction)
 */
export function configSigningBytes(signed: SignedConfigBody): Uint8Array {
  return concatBytes(utf8(CONFIG_SIGNING_PREFIX), utf8(canonicalJson(signed)));
}

function sortSignatures<T extends { readonly keyId: string }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
}

/**
 * Add (or replace) one key's signature on a config document, so keys held by different people can sign in turn.
 * @param doc - the document
 * @param key - a key of the trust root's `config` role
 * @returns a new document with the signature
 * @throws ForgeError `INVALID_ARGUMENT` when the body is not canonical JSON
 */
export function addConfigSignature(doc: SignedConfigDocument, key: SigningKey): SignedConfigDocument {
  const signature = toHex(key.sign(configSigningBytes(doc.signed)));
  const others = doc.signatures.filter((s) => s.keyId !== key.keyId);
  return { signed: doc.signed, signatures: sortSignatures([...others, { keyId: key.keyId, signature }]) };
}

/**
 * Validate a config and sign it. The signed body holds the parsed config with every default spelled out,
 * so what was signed does not depend on the defaults of the release that reads it.
 * @param config - a config (defaults are applied first)
 * @param keys - keys of the trust root's `config` role; each signs once (none gives an unsigned document)
 * @returns the signed document
 * @throws ForgeError `CONFIG_INVALID` naming every bad field
 * @example
 * ```ts
 * const doc = signConfig({ version: 2, boot: { allowDegraded: true } }, [configKey]);
 * ```
 */
export function signConfig(config: KernelConfigInput | KernelConfig, keys: readonly SigningKey[]): SignedConfigDocument {
  const parsed = parseConfig(config);
  let doc: SignedConfigDocument = { signed: { type: 'forgeone.config', version: parsed.version, config: parsed }, signatures: [] };
  for (const key of keys) doc = addConfigSignature(doc, key);
  return doc;
}

/** Options for {@link verifyConfig}. */
export interface VerifyConfigOptions {
  /** Verifies signatures. */
  readonly crypto: CryptoProvider;
  /** The version in force: the document's version must be strictly higher (rollback protection). */
  readonly after?: number;
  /** What is being read, for messages (e.g. the file path). Default `config document`. */
  readonly what?: string;
}

/** What {@link verifyConfig} established. */
export interface VerifiedConfig {
  /** The config, defaults applied. */
  readonly config: KernelConfig;
  /** Its version. */
  readonly version: number;
  /** Distinct `config`-role keys whose signatures verified. */
  readonly signers: readonly string[];
  /** The threshold of the `config` role. */
  readonly threshold: number;
}

function summarise(rejected: readonly { readonly reason: string }[]): string {
  if (rejected.length === 0) return '';
  const counts = new Map<string, number>();
  for (const r of rejected) counts.set(r.reason, (counts.get(r.reason) ?? 0) + 1);
  return ` (not counted: ${[...counts].map(([reason, n]) => `${n} ${reason}`).join(', ')})`;
}

/**
 * Verify a signed config document against the trust root's `config` role and parse its config. Checks, in
 * order: the document's shape, that the root has a `config` role, a threshold of distinct unrevoked role
 * keys signed validly (one key counts once however often it signs), the config itself, that `signed.version`
 * equals the config's version, and (with `after`) that the version is strictly higher than the one in force.
 * @param doc - the document: JSON text or a parsed value
 * @param trustRoot - a verified trust root
 * @param options - the crypto provider, the version in force, a name for messages
 * @returns the config, its version and signers
 * @throws ForgeError `CONFIG_INVALID` (naming the field), `CONFIG_SIGNATURE_INVALID` (also when the root
 *   has no `config` role), `CONFIG_ROLLBACK`
 * @example
 * ```ts
 * const { config } = verifyConfig(await readFile('config.json', 'utf8'), trustRoot, { crypto });
 * ```
 */
export function verifyConfig(doc: unknown, trustRoot: TrustRootDocument, options: VerifyConfigOptions): VerifiedConfig {
  const what = options.what ?? 'config document';
  const value = typeof doc === 'string' ? parseJsonText(doc, what) : doc;
  const shape = SignedConfigDocumentSchema.safeParse(value);
  if (!shape.success) throw configInvalid(configIssues(shape.error.issues, value), what);
  const { signed, signatures } = shape.data;
  const body: SignedConfigBody = { type: signed.type, version: signed.version, config: signed.config };

  const role = trustRoot.signed.roles[CONFIG_ROLE];
  if (role === undefined) {
    throw new ForgeError('CONFIG_SIGNATURE_INVALID', `trust root v${trustRoot.signed.version} has no "${CONFIG_ROLE}" role, so it trusts no config; add the role and its keys to the trust root`, {
      details: { reason: 'no-config-role', trustRootVersion: trustRoot.signed.version },
    });
  }
  let message: Uint8Array;
  try {
    message = configSigningBytes(body);
  } catch (e) {
    if (isForgeError(e)) throw configInvalid([{ path: 'signed', message: `not canonical JSON: ${e.message}` }], what);
    throw e;
  }
  const entries = signatures.map((s) => ({ keyId: s.keyId, signature: HEX_SIGNATURE.test(s.signature) ? fromHex(s.signature) : new Uint8Array(0) }));
  const q = countSignatures(options.crypto, roleKeys(trustRoot.signed, CONFIG_ROLE), new Set(trustRoot.signed.revoked), role.threshold, message, entries);
  if (!q.met) {
    throw new ForgeError('CONFIG_SIGNATURE_INVALID', `${what} v${signed.version}: ${q.valid.length} distinct valid signature(s) by the config role, ${q.threshold} required${summarise(q.rejected)}`, {
      details: { version: signed.version, signers: q.valid, threshold: q.threshold, rejected: q.rejected },
    });
  }

  const config = parseConfig(signed.config, { pathPrefix: ['signed', 'config'], what });
  if (config.version !== signed.version) {
    throw configInvalid([{ path: 'signed.version', message: `${signed.version} does not match signed.config.version (${config.version})` }], what);
  }
  if (options.after !== undefined && signed.version <= options.after) {
    throw new ForgeError('CONFIG_ROLLBACK', `${what} v${signed.version} is not newer than the config in force (v${options.after})`, {
      details: { offered: signed.version, current: options.after },
    });
  }
  return { config, version: signed.version, signers: q.valid, threshold: q.threshold };
}

/**
 * Sign a config and write it to a file atomically (temporary file, fsync, rename, fsync the directory), so a
 * watcher never reads half a file. The file holds no secrets, only environment variable names.
 * @param path - the config file
 * @param config - the config (validated, defaults applied)
 * @param keys - keys of the trust root's `config` role
 * @returns the document written
 * @throws ForgeError `CONFIG_INVALID` for a bad config, `IO_ERROR` when the file cannot be written
 * @example
 * ```ts
 * await writeSignedConfig('/etc/forgeone/config.json', { version: 3 }, [configKey]);
 * ```
 */
export async function writeSignedConfig(path: string, config: KernelConfigInput | KernelConfig, keys: readonly SigningKey[]): Promise<SignedConfigDocument> {
  const doc = signConfig(config, keys);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++tmpCounter}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(`${JSON.stringify(doc, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new ForgeError('IO_ERROR', `cannot write config ${path}: ${(e as Error).message}`, { cause: e });
  }
  return doc;
}
