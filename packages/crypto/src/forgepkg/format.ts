import { ForgeError, canonicalJson, concatBytes, decodeUtf8Strict, fail, ok, toHex, utf8, type Result } from '@forgeone/common';
import { ManifestSchema, type Manifest } from './manifest.js';
import { checkPackagePath, pathCollisionKey } from './paths.js';
import { zodIssuePath } from '../zod-util.js';
import type { SignatureEntry } from '../quorum.js';

/** The 8 bytes every `.forgepkg` starts with: ASCII `FORGEPKG`. */
export const FORGEPKG_MAGIC = Uint8Array.from([0x46, 0x4f, 0x52, 0x47, 0x45, 0x50, 0x4b, 0x47]);
/** The format version this library reads and writes. */
export const FORGEPKG_FORMAT_VERSION = 1;
/** Domain-separation prefix of the bytes package signatures cover. */
export const FORGEPKG_SIGNING_PREFIX = 'forgeone/forgepkg/v1\0';

/** Size and count limits applied while parsing; anything larger is refused before it is read. */
export interface PackageLimits {
  /** Whole file. Default 256 MiB. */
  readonly maxPackageBytes: number;
  /** Manifest bytes. Default 1 MiB. */
  readonly maxManifestBytes: number;
  /** Number of content files. Default 4096. */
  readonly maxFiles: number;
  /** One content file. Default 128 MiB. */
  readonly maxFileBytes: number;
  /** Number of signature entries. Default 64. */
  readonly maxSignatures: number;
}

/** The default {@link PackageLimits}. */
export const DEFAULT_PACKAGE_LIMITS: PackageLimits = Object.freeze({
  maxPackageBytes: 256 * 1024 * 1024,
  maxManifestBytes: 1024 * 1024,
  maxFiles: 4096,
  maxFileBytes: 128 * 1024 * 1024,
  maxSignatures: 64,
});

/** A structurally valid package: its manifest, content and signatures, not yet verified. */
export interface ParsedPackage {
  /** The validated manifest. */
  readonly manifest: Manifest;
  /** The canonical manifest bytes exactly as stored (what signatures cover, after the prefix). */
  readonly manifestBytes: Uint8Array;
  /** Content files in manifest order (views into the package bytes, not copies). */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Signature entries in file order (repeats kept: the verifier decides how they count). */
  readonly signatures: readonly SignatureEntry[];
}

class Reader {
  private off = 0;
  constructor(private readonly buf: Uint8Array) {}
  get remaining(): number {
    return this.buf.length - this.off;
  }
  get offset(): number {
    return this.off;
  }
  need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new ForgeError('PKG_TRUNCATED', `package ends inside ${what}: ${n} bytes declared, ${this.remaining} left`, { details: { offset: this.off, declared: n } });
    }
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
    this.off += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = ((this.buf[this.off]! << 24) >>> 0) + ((this.buf[this.off + 1]! << 16) | (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!);
    this.off += 4;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
}

function limit(what: string, value: number, max: number): ForgeError {
  return new ForgeError('PKG_LIMIT_EXCEEDED', `${what} is ${value}, the limit is ${max}`, { details: { what, value, limit: max } });
}

/**
 * Decode and validate a manifest from its stored bytes: strict UTF-8, JSON, schema, canonical form.
 * @param bytes - the manifest bytes
 * @returns the manifest
 * @throws ForgeError `PKG_INVALID_UTF8`, `PKG_MANIFEST_INVALID` (naming the field) or `PKG_MANIFEST_NOT_CANONICAL`
 */
export function decodeManifest(bytes: Uint8Array): Manifest {
  const text = decodeUtf8Strict(bytes);
  if (text === undefined) throw new ForgeError('PKG_INVALID_UTF8', 'manifest is not valid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ForgeError('PKG_MANIFEST_INVALID', `manifest is not JSON: ${(e as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = zodIssuePath(issue.path);
    throw new ForgeError('PKG_MANIFEST_INVALID', `manifest field ${path}: ${issue.message}`, { details: { path } });
  }
  // Re-encode: only the canonical form is accepted, so one manifest has exactly one byte string to sign.
  if (canonicalJson(value) !== text) throw new ForgeError('PKG_MANIFEST_NOT_CANONICAL', 'manifest bytes are not canonical JSON');
  return parsed.data;
}

/**
 * Parse a `.forgepkg` file. Every length is checked against the bytes that remain and against `limits`
 * before anything is read, so hostile input fails fast with a specific code and never throws anything but
 * a `ForgeError` inside the result.
 * @param bytes - the whole file
 * @param limits - size and count limits
 * @returns the parsed package, or the first problem found
 */
export function parsePackage(bytes: Uint8Array, limits: PackageLimits = DEFAULT_PACKAGE_LIMITS): Result<ParsedPackage> {
  try {
    return ok(parseOrThrow(bytes, limits));
  } catch (e) {
    if (e instanceof ForgeError) return { ok: false, error: e };
    return fail('PKG_MALFORMED', `package could not be parsed: ${(e as Error).message}`);
  }
}

function parseOrThrow(bytes: Uint8Array, limits: PackageLimits): ParsedPackage {
  if (!(bytes instanceof Uint8Array)) throw new ForgeError('INVALID_ARGUMENT', 'package must be a Uint8Array');
  if (bytes.length > limits.maxPackageBytes) throw limit('package size', bytes.length, limits.maxPackageBytes);
  for (let i = 0; i < FORGEPKG_MAGIC.length; i++) {
    if (i >= bytes.length) throw new ForgeError('PKG_TRUNCATED', `package is ${bytes.length} bytes, shorter than its header`);
    if (bytes[i] !== FORGEPKG_MAGIC[i]) throw new ForgeError('PKG_BAD_MAGIC', 'not a .forgepkg file (wrong magic bytes)');
  }
  const r = new Reader(bytes);
  r.bytes(8, 'magic');
  const version = r.u16('format version');
  if (version !== FORGEPKG_FORMAT_VERSION) throw new ForgeError('PKG_UNSUPPORTED_VERSION', `format version ${version} is not supported (this reader knows ${FORGEPKG_FORMAT_VERSION})`);
  const flags = r.u16('flags');
  if (flags !== 0) throw new ForgeError('PKG_MALFORMED', `reserved flags are set (0x${flags.toString(16)})`);

  const manifestLength = r.u32('manifest length');
  if (manifestLength > limits.maxManifestBytes) throw limit('manifest size', manifestLength, limits.maxManifestBytes);
  const manifestBytes = r.bytes(manifestLength, 'the manifest');
  const manifest = decodeManifest(manifestBytes);

  const fileCount = r.u32('file count');
  if (fileCount > limits.maxFiles) throw limit('file count', fileCount, limits.maxFiles);
  // Content is stored in the order of the names sorted by UTF-16 code units (the canonical JSON key order).
  const expected = Object.keys(manifest.files).sort();
  if (fileCount !== expected.length) {
    throw new ForgeError('PKG_CONTENT_MISMATCH', `package holds ${fileCount} files, its manifest lists ${expected.length}`);
  }
  const files = new Map<string, Uint8Array>();
  const seen = new Set<string>();
  for (let i = 0; i < fileCount; i++) {
    const nameLength = r.u16('file name length');
    const name = decodeUtf8Strict(r.bytes(nameLength, 'a file name'));
    if (name === undefined) throw new ForgeError('PKG_INVALID_UTF8', `file name ${i} is not valid UTF-8`);
    const problem = checkPackagePath(name);
    if (problem !== undefined) throw new ForgeError('PKG_INVALID_PATH', `${JSON.stringify(name)}: ${problem}`, { details: { name } });
    const key = pathCollisionKey(name);
    if (seen.has(key)) throw new ForgeError('PKG_DUPLICATE_ENTRY', `${JSON.stringify(name)} appears twice (names are compared case-insensitively)`, { details: { name } });
    seen.add(key);
    if (name !== expected[i]) {
      throw new ForgeError('PKG_CONTENT_MISMATCH', `file ${i} is ${JSON.stringify(name)}, the manifest lists ${JSON.stringify(expected[i] ?? null)} there`, { details: { name } });
    }
    const size = r.u32('file size');
    if (size > limits.maxFileBytes) throw limit(`size of ${name}`, size, limits.maxFileBytes);
    if (size !== manifest.files[name]!.size) {
      throw new ForgeError('PKG_CONTENT_MISMATCH', `${name} is ${size} bytes, the manifest says ${manifest.files[name]!.size}`, { details: { name } });
    }
    files.set(name, r.bytes(size, `the content of ${name}`));
  }

  const sigCount = r.u16('signature count');
  if (sigCount > limits.maxSignatures) throw limit('signature count', sigCount, limits.maxSignatures);
  r.need(sigCount * 96, 'the signatures');
  const signatures: SignatureEntry[] = [];
  for (let i = 0; i < sigCount; i++) {
    const keyId = toHex(r.bytes(32, 'a signer key id'));
    signatures.push({ keyId, signature: r.bytes(64, 'a signature') });
  }
  if (r.remaining !== 0) throw new ForgeError('PKG_MALFORMED', `${r.remaining} unexpected bytes after the signatures`, { details: { offset: r.offset } });
  return { manifest, manifestBytes, files, signatures };
}

function u16(n: number): Uint8Array {
  return Uint8Array.from([(n >>> 8) & 0xff, n & 0xff]);
}
function u32(n: number): Uint8Array {
  return Uint8Array.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** The parts {@link encodePackage} writes. */
export interface PackageParts {
  /** The manifest (written in canonical form). */
  readonly manifest: Manifest;
  /** Content by file name; written in the manifest's (sorted) order. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Signature entries, written as given (the encoder does not deduplicate). */
  readonly signatures: readonly SignatureEntry[];
}

/**
 * Write a `.forgepkg` file. Low level: it does not hash or sign; see `buildPackage` and `signPackage`.
 * @param parts - manifest, content, signatures
 * @returns the file bytes
 * @throws ForgeError `PKG_CONTENT_MISMATCH` when a listed file is missing, `PKG_LIMIT_EXCEEDED` for too many signatures
 */
export function encodePackage(parts: PackageParts): Uint8Array {
  const manifestBytes = utf8(canonicalJson(parts.manifest));
  const names = Object.keys(parts.manifest.files).sort();
  const chunks: Uint8Array[] = [FORGEPKG_MAGIC, u16(FORGEPKG_FORMAT_VERSION), u16(0), u32(manifestBytes.length), manifestBytes, u32(names.length)];
  for (const name of names) {
    const content = parts.files.get(name);
    if (content === undefined) throw new ForgeError('PKG_CONTENT_MISMATCH', `manifest lists ${name} but no content was given`);
    const nameBytes = utf8(name);
    chunks.push(u16(nameBytes.length), nameBytes, u32(content.length), content);
  }
  if (parts.signatures.length > 0xffff) throw limit('signature count', parts.signatures.length, 0xffff);
  chunks.push(u16(parts.signatures.length));
  for (const s of parts.signatures) {
    if (!/^[0-9a-f]{64}$/.test(s.keyId) || s.signature.length !== 64) throw new ForgeError('CRYPTO_INVALID_SIGNATURE_ENCODING', 'a signature entry is malformed');
    const raw = new Uint8Array(32);
    for (let i = 0; i < 32; i++) raw[i] = parseInt(s.keyId.slice(i * 2, i * 2 + 2), 16);
    chunks.push(raw, s.signature);
  }
  return concatBytes(...chunks);
}

/**
 * The bytes a package signature covers: `forgeone/forgepkg/v1\0` followed by the canonical manifest bytes.
 * The manifest holds the SHA3-256 of every content file, so the signature covers the content too.
 * @param manifestBytes - canonical manifest bytes
 * @returns the message to sign or verify
 */
export function packageSigningBytes(manifestBytes: Uint8Array): Uint8Array {
  return concatBytes(utf8(FORGEPKG_SIGNING_PREFIX), manifestBytes);
}

