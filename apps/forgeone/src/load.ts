import { ForgeError, decodeUtf8Strict, isForgeError } from '@forgeone/common';
import { loadPublicKey, loadSigningKey, parseTrustRoot, type PublicKeyInfo, type SigningKey, type TrustRootDocument } from '@forgeone/crypto';
import type { Context } from './context.js';
import { readFileLimited } from './files.js';

/** Largest trust root file read. */
const MAX_TRUST_ROOT_BYTES = 1024 * 1024;

/**
 * Prefix an error's message with the file it concerns, keeping its code and details.
 * @param shown - the path as typed
 * @param e - anything thrown
 * @returns the error to throw
 */
export function inFile(shown: string, e: unknown): unknown {
  if (!isForgeError(e) || e.message.includes(shown)) return e;
  return new ForgeError(e.code, `${shown}: ${e.message}`, e.details === undefined ? { cause: e } : { cause: e, details: e.details });
}

/**
 * Read and structurally check a trust root file (signatures are checked by the caller).
 * @param ctx - the context
 * @param shown - the path as typed
 * @returns the document
 * @throws ForgeError `NOT_FOUND`, `IO_ERROR` or `TRUST_ROOT_INVALID`
 */
export async function readTrustRoot(ctx: Context, shown: string): Promise<TrustRootDocument> {
  const bytes = await readFileLimited(ctx.path(shown), shown, { maxBytes: MAX_TRUST_ROOT_BYTES, limitCode: 'TRUST_ROOT_INVALID' });
  const text = decodeUtf8Strict(bytes);
  if (text === undefined) throw new ForgeError('TRUST_ROOT_INVALID', `${shown}: trust root is not valid UTF-8`);
  try {
    return parseTrustRoot(ctx.provider, text);
  } catch (e) {
    throw inFile(shown, e);
  }
}

/**
 * Load private key files (permissions checked: 0600 or stricter).
 * @param ctx - the context
 * @param files - the paths as typed
 * @returns the keys, in order
 */
export async function loadSigningKeys(ctx: Context, files: readonly string[]): Promise<SigningKey[]> {
  const keys: SigningKey[] = [];
  for (const f of files) keys.push(await loadSigningKey(ctx.provider, ctx.path(f)).catch((e: unknown) => Promise.reject(inFile(f, e))));
  return keys;
}

/**
 * Load public key files (a private key file also works: only its public half is used).
 * @param ctx - the context
 * @param files - the paths as typed
 * @returns the keys, in order
 */
export async function loadPublicKeys(ctx: Context, files: readonly string[]): Promise<PublicKeyInfo[]> {
  const keys: PublicKeyInfo[] = [];
  for (const f of files) keys.push(await loadPublicKey(ctx.provider, ctx.path(f)).catch((e: unknown) => Promise.reject(inFile(f, e))));
  return keys;
}
