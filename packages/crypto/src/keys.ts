import * as ed from '@noble/ed25519';
import { chmod, lstat, open, readFile, stat } from 'node:fs/promises';
import { inspect } from 'node:util';
import { ForgeError, bytesEqual, fromHex, toHex } from '@forgeone/common';
import type { CryptoProvider, Signer } from './CryptoProvider.js';
import { isAcceptablePointEncoding } from './ed25519-rule.js';

function isTorsionFree(publicKey: Uint8Array): boolean {
  try {
    return ed.Point.fromBytes(publicKey, false).isTorsionFree();
  } catch {
    return false;
  }
}

const PRIVATE_KIND = 'forgeone.ed25519.private-key';
const PUBLIC_KIND = 'forgeone.ed25519.public-key';

/**
 * A key id: lowercase hex SHA3-256 of the 32-byte public key.
 * @param provider - hash provider
 * @param publicKey - 32-byte Ed25519 public key
 * @returns 64 hex characters
 */
export function keyIdOf(provider: CryptoProvider, publicKey: Uint8Array): string {
  return toHex(provider.sha3_256(publicKey));
}

/** A public key with its id. */
export interface PublicKeyInfo {
  /** SHA3-256 of the public key, hex. */
  readonly keyId: string;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/**
 * An Ed25519 signing key. The secret never leaves this object except through {@link SigningKey.exportSecret}
 * (used only to write key files); printing, logging or JSON-serialising the key shows only its id.
 */
export class SigningKey implements PublicKeyInfo {
  /** SHA3-256 of the public key, hex. */
  readonly keyId: string;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  readonly #secret: Uint8Array;
  readonly #signer: Signer;

  /**
   * @param provider - the provider that signs
   * @param secretKey - 32-byte seed (copied)
   * @throws ForgeError `CRYPTO_INVALID_KEY` for a wrong length
   */
  constructor(provider: CryptoProvider, secretKey: Uint8Array) {
    if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) throw new ForgeError('CRYPTO_INVALID_KEY', 'Ed25519 secret key must be 32 bytes');
    this.#secret = Uint8Array.from(secretKey);
    this.#signer = provider.createSigner(this.#secret);
    this.publicKey = provider.ed25519PublicKey(this.#secret);
    this.keyId = keyIdOf(provider, this.publicKey);
  }

  /**
   * Generate a fresh key.
   * @param provider - the provider
   * @returns a new signing key
   */
  static generate(provider: CryptoProvider): SigningKey {
    const pair = provider.generateEd25519();
    const key = new SigningKey(provider, pair.secretKey);
    pair.secretKey.fill(0);
    return key;
  }

  /**
   * Sign a message.
   * @param message - the bytes
   * @returns a 64-byte Ed25519 signature
   */
  sign(message: Uint8Array): Uint8Array {
    return this.#signer.sign(message);
  }

  /**
   * A copy of the 32-byte seed, for writing a key file. Wipe it after use.
   * @returns the seed
   */
  exportSecret(): Uint8Array {
    return Uint8Array.from(this.#secret);
  }

  /** @returns the public half */
  toPublic(): PublicKeyInfo {
    return { keyId: this.keyId, publicKey: this.publicKey };
  }

  /** @returns a redacted form: the secret is never serialised */
  toJSON(): { keyId: string; secret: '[redacted]' } {
    return { keyId: this.keyId, secret: '[redacted]' };
  }

  /** @returns a redacted form for `console.log` and `util.inspect` */
  [inspect.custom](): string {
    return `SigningKey { keyId: '${this.keyId}', secret: [redacted] }`;
  }

  /** @returns a redacted form */
  toString(): string {
    return `SigningKey(${this.keyId})`;
  }
}

/**
 * Check that a public key may be trusted (canonical, on the curve, in the prime-order subgroup: neither small
 * nor mixed order, as every honestly generated key is) and build its info. Trust roots admit keys only through
 * this check, so a key with a torsion component can never count in a quorum.
 * @param provider - hash provider
 * @param publicKey - 32 bytes
 * @returns the key with its id
 * @throws ForgeError `CRYPTO_INVALID_KEY` when the key is unusable
 */
export function publicKeyInfo(provider: CryptoProvider, publicKey: Uint8Array): PublicKeyInfo {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32 || !isAcceptablePointEncoding(publicKey) || !isTorsionFree(publicKey)) {
    throw new ForgeError('CRYPTO_INVALID_KEY', 'not an acceptable Ed25519 public key (wrong length, non-canonical, small or mixed order)');
  }
  return { keyId: keyIdOf(provider, publicKey), publicKey: Uint8Array.from(publicKey) };
}

function parseJsonFile(text: string, path: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ForgeError('KEY_FILE_INVALID', `${path}: not a ForgeOne key file (invalid JSON)`);
}

function hexField(doc: Record<string, unknown>, field: string, len: number, path: string): Uint8Array {
  const v = doc[field];
  try {
    if (typeof v !== 'string') throw new Error();
    return fromHex(v, len);
  } catch {
    throw new ForgeError('KEY_FILE_INVALID', `${path}: field "${field}" must be ${len} bytes of hex`, { details: { field } });
  }
}

async function writeExclusive(path: string, data: string, mode: number, overwrite: boolean): Promise<void> {
  let handle;
  try {
    handle = await open(path, overwrite ? 'w' : 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ForgeError('KEY_FILE_EXISTS', `${path} already exists; refusing to overwrite it`);
    throw new ForgeError('IO_ERROR', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    // The mode given to open() is filtered by the umask and ignored for existing files: set it explicitly.
    await handle.chmod(mode);
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Options for {@link saveSigningKey}. */
export interface SaveKeyOptions {
  /** Replace existing files. Default false: an existing file is an error. */
  readonly overwrite?: boolean;
}

/**
 * Write a private key file (mode 0600) and its public key file `<path>.pub` (mode 0644).
 * @param key - the key
 * @param path - private key file path
 * @param options - overwrite
 * @returns the public key file path
 * @throws ForgeError `KEY_FILE_EXISTS` or `IO_ERROR`
 * @example
 * ```ts
 * const key = SigningKey.generate(provider);
 * await saveSigningKey(key, 'release.key'); // also writes release.key.pub
 * ```
 */
export async function saveSigningKey(key: SigningKey, path: string, options: SaveKeyOptions = {}): Promise<string> {
  const pubPath = `${path}.pub`;
  if (!(options.overwrite ?? false)) {
    for (const p of [path, pubPath]) {
      if (await exists(p)) throw new ForgeError('KEY_FILE_EXISTS', `${p} already exists; refusing to overwrite it`);
    }
  }
  const secret = key.exportSecret();
  const body = `${JSON.stringify({ kind: PRIVATE_KIND, version: 1, keyId: key.keyId, publicKey: toHex(key.publicKey), secretKey: toHex(secret) }, null, 2)}\n`;
  secret.fill(0);
  await writeExclusive(path, body, 0o600, options.overwrite ?? false);
  await savePublicKey(key, pubPath, options);
  return pubPath;
}

/**
 * Write a public key file.
 * @param key - the public key
 * @param path - where
 * @param options - overwrite
 * @throws ForgeError `KEY_FILE_EXISTS` or `IO_ERROR`
 */
export async function savePublicKey(key: PublicKeyInfo, path: string, options: SaveKeyOptions = {}): Promise<void> {
  const body = `${JSON.stringify({ kind: PUBLIC_KIND, version: 1, keyId: key.keyId, publicKey: toHex(key.publicKey) }, null, 2)}\n`;
  await writeExclusive(path, body, 0o644, options.overwrite ?? false);
  await chmod(path, 0o644);
}

/** Options for {@link loadSigningKey}. */
export interface LoadKeyOptions {
  /** Accept a private key file readable by group or others. Default false (like ssh). */
  readonly allowInsecurePermissions?: boolean;
}

/**
 * Load a private key file, checking its permissions (0600 or stricter), its fields and that the stored
 * public key and id match the secret.
 * @param provider - the provider the key will sign with
 * @param path - the file
 * @param options - permission override
 * @returns the signing key
 * @throws ForgeError `KEY_FILE_PERMISSIONS`, `KEY_FILE_INVALID`, `NOT_FOUND` or `IO_ERROR`
 */
export async function loadSigningKey(provider: CryptoProvider, path: string, options: LoadKeyOptions = {}): Promise<SigningKey> {
  const text = await readKeyText(path);
  if (process.platform !== 'win32' && !(options.allowInsecurePermissions ?? false)) {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) {
      throw new ForgeError('KEY_FILE_PERMISSIONS', `${path} is accessible by other users (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`);
    }
  }
  const doc = parseJsonFile(text, path);
  if (doc.kind !== PRIVATE_KIND) throw new ForgeError('KEY_FILE_INVALID', `${path}: not a ForgeOne private key file`);
  const secret = hexField(doc, 'secretKey', 32, path);
  const key = new SigningKey(provider, secret);
  secret.fill(0);
  if (doc.publicKey !== undefined && !bytesEqual(hexField(doc, 'publicKey', 32, path), key.publicKey)) {
    throw new ForgeError('KEY_FILE_INVALID', `${path}: stored public key does not match the secret key`);
  }
  if (doc.keyId !== undefined && doc.keyId !== key.keyId) throw new ForgeError('KEY_FILE_INVALID', `${path}: stored key id does not match`);
  return key;
}

/**
 * Load a public key file (or a private key file, taking only its public half).
 * @param provider - hash provider
 * @param path - the file
 * @returns the public key with its id
 * @throws ForgeError `KEY_FILE_INVALID`, `CRYPTO_INVALID_KEY`, `NOT_FOUND` or `IO_ERROR`
 */
export async function loadPublicKey(provider: CryptoProvider, path: string): Promise<PublicKeyInfo> {
  const doc = parseJsonFile(await readKeyText(path), path);
  if (doc.kind !== PUBLIC_KIND && doc.kind !== PRIVATE_KIND) throw new ForgeError('KEY_FILE_INVALID', `${path}: not a ForgeOne key file`);
  const info = publicKeyInfo(provider, hexField(doc, 'publicKey', 32, path));
  if (doc.keyId !== undefined && doc.keyId !== info.keyId) throw new ForgeError('KEY_FILE_INVALID', `${path}: stored key id does not match the public key`);
  return info;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function readKeyText(path: string): Promise<string> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > 64 * 1024) throw new ForgeError('KEY_FILE_INVALID', `${path}: not a key file`);
    return await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof ForgeError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ForgeError('NOT_FOUND', `${path} does not exist`);
    throw new ForgeError('IO_ERROR', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}
