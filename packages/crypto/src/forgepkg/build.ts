import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ForgeError, systemClock, toHex, type Clock } from '@forgeone/common';
import type { CryptoProvider } from '../CryptoProvider.js';
import type { SigningKey } from '../keys.js';
import { zodIssuePath } from '../zod-util.js';
import { DEFAULT_PACKAGE_LIMITS, encodePackage, packageSigningBytes, parsePackage, type PackageLimits } from './format.js';
import { ManifestSchema, ManifestTemplateSchema, type Manifest, type ManifestTemplate } from './manifest.js';
import { checkPackagePath, pathCollisionKey } from './paths.js';

/** The name of the manifest template in a package directory. */
export const MANIFEST_TEMPLATE_FILE = 'forgepkg.json';

/** Input for {@link buildPackage}. */
export interface BuildPackageInput {
  /** The author's manifest fields. */
  readonly template: ManifestTemplate;
  /** Content by file name. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/** Options for {@link buildPackage}. */
export interface BuildPackageOptions {
  /** Build time source (for `created`). Default the system clock. */
  readonly clock?: Clock;
  /** Called after each file is hashed, for progress displays. */
  readonly onProgress?: (done: number, total: number, name: string) => void;
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * Build an unsigned `.forgepkg`: hash every file, fill in the manifest, validate it, encode it.
 * @param provider - hashes the content
 * @param input - template and files
 * @param options - clock, progress
 * @returns the package bytes and its manifest
 * @throws ForgeError `PKG_MANIFEST_INVALID` naming the field, `PKG_INVALID_PATH`, `PKG_DUPLICATE_ENTRY`
 * @example
 * ```ts
 * const { bytes } = buildPackage(provider, { template: { name: 'hello', version: '1.0.0', entry: 'hello.wasm' }, files });
 * ```
 */
export function buildPackage(provider: CryptoProvider, input: BuildPackageInput, options: BuildPackageOptions = {}): { bytes: Uint8Array; manifest: Manifest } {
  const t = ManifestTemplateSchema.safeParse(input.template);
  if (!t.success) {
    const issue = t.error.issues[0]!;
    throw new ForgeError('PKG_MANIFEST_INVALID', `${MANIFEST_TEMPLATE_FILE} field ${zodIssuePath(issue.path)}: ${issue.message}`, { details: { path: zodIssuePath(issue.path) } });
  }
  const template = t.data;
  const now = (options.clock ?? systemClock).now();
  const files: Record<string, { sha3_256: string; size: number }> = {};
  const seen = new Set<string>();
  const names = [...input.files.keys()].sort();
  names.forEach((name, i) => {
    const problem = checkPackagePath(name);
    if (problem !== undefined) throw new ForgeError('PKG_INVALID_PATH', `${JSON.stringify(name)}: ${problem}`, { details: { name } });
    if (seen.has(pathCollisionKey(name))) throw new ForgeError('PKG_DUPLICATE_ENTRY', `${name} collides with another file name`, { details: { name } });
    seen.add(pathCollisionKey(name));
    const content = input.files.get(name)!;
    files[name] = { sha3_256: toHex(provider.sha3_256(content)), size: content.length };
    options.onProgress?.(i + 1, names.length, name);
  });
  const manifestInput = {
    schema: 1,
    name: template.name,
    version: template.version,
    description: template.description ?? '',
    author: template.author ?? '',
    created: isoSeconds(now),
    expires: template.expires ?? isoSeconds(now + (template.validDays ?? 365) * 86_400_000),
    entry: template.entry,
    files,
    capabilities: template.capabilities ?? [],
    dependencies: template.dependencies ?? {},
    metadata: template.metadata ?? {},
  };
  const m = ManifestSchema.safeParse(manifestInput);
  if (!m.success) {
    const issue = m.error.issues[0]!;
    throw new ForgeError('PKG_MANIFEST_INVALID', `manifest field ${zodIssuePath(issue.path)}: ${issue.message}`, { details: { path: zodIssuePath(issue.path) } });
  }
  return { bytes: encodePackage({ manifest: m.data, files: input.files, signatures: [] }), manifest: m.data };
}

/**
 * Add one signature to a package (replacing an earlier signature by the same key, so signing twice never
 * produces a repeated entry). The package must parse; signatures already present are kept as they are.
 * @param bytes - the package
 * @param key - the signing key
 * @param limits - parsing limits
 * @returns the new package bytes
 * @throws ForgeError the parse failure of a malformed package
 */
export function signPackage(bytes: Uint8Array, key: SigningKey, limits: PackageLimits = DEFAULT_PACKAGE_LIMITS): Uint8Array {
  const parsed = parsePackage(bytes, limits);
  if (!parsed.ok) throw parsed.error;
  const { manifest, files, signatures, manifestBytes } = parsed.value;
  const signature = key.sign(packageSigningBytes(manifestBytes));
  return encodePackage({ manifest, files, signatures: [...signatures.filter((s) => s.keyId !== key.keyId), { keyId: key.keyId, signature }] });
}

/**
 * Read a package directory: `forgepkg.json` (the manifest template) and every regular file below it.
 * Symbolic links and special files are refused, not followed.
 * @param dir - the directory
 * @param limits - limits on count and size
 * @returns the template and the files, ready for {@link buildPackage}
 * @throws ForgeError `NOT_FOUND`, `PKG_MANIFEST_INVALID`, `PKG_INVALID_PATH`, `PKG_LIMIT_EXCEEDED`, `IO_ERROR`
 */
export async function readPackageDirectory(dir: string, limits: PackageLimits = DEFAULT_PACKAGE_LIMITS): Promise<BuildPackageInput> {
  let templateText: string;
  try {
    templateText = await readFile(join(dir, MANIFEST_TEMPLATE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ForgeError('NOT_FOUND', `${join(dir, MANIFEST_TEMPLATE_FILE)} does not exist`);
    throw new ForgeError('IO_ERROR', `cannot read ${join(dir, MANIFEST_TEMPLATE_FILE)}: ${(e as Error).message}`, { cause: e });
  }
  let template: ManifestTemplate;
  try {
    template = JSON.parse(templateText) as ManifestTemplate;
  } catch (e) {
    throw new ForgeError('PKG_MANIFEST_INVALID', `${MANIFEST_TEMPLATE_FILE} is not JSON: ${(e as Error).message}`);
  }
  const include = Array.isArray(template.include) ? template.include.map((p) => p.replace(/\/+$/, '')) : undefined;
  const included = (name: string): boolean => include === undefined || include.some((p) => name === p || name.startsWith(`${p}/`));
  const files = new Map<string, Uint8Array>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const entry of (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(d, entry.name);
      const name = relative(dir, full).split(sep).join('/');
      if (name === MANIFEST_TEMPLATE_FILE) continue;
      const st = await lstat(full);
      if (st.isSymbolicLink()) throw new ForgeError('PKG_INVALID_PATH', `${name} is a symbolic link; packages hold regular files only`, { details: { name } });
      if (st.isDirectory()) {
        await walk(full);
        continue;
      }
      if (!st.isFile()) throw new ForgeError('PKG_INVALID_PATH', `${name} is not a regular file`, { details: { name } });
      if (!included(name)) continue;
      if (files.size + 1 > limits.maxFiles) throw new ForgeError('PKG_LIMIT_EXCEEDED', `more than ${limits.maxFiles} files`);
      if (st.size > limits.maxFileBytes) throw new ForgeError('PKG_LIMIT_EXCEEDED', `${name} is larger than ${limits.maxFileBytes} bytes`);
      total += st.size;
      if (total > limits.maxPackageBytes) throw new ForgeError('PKG_LIMIT_EXCEEDED', `content is larger than ${limits.maxPackageBytes} bytes`);
      files.set(name, new Uint8Array(await readFile(full)));
    }
  };
  await walk(dir);
  for (const p of include ?? []) {
    if (![...files.keys()].some((n) => n === p || n.startsWith(`${p}/`))) {
      throw new ForgeError('NOT_FOUND', `${MANIFEST_TEMPLATE_FILE} includes ${p}, which is not in ${dir}`, { details: { path: 'include' } });
    }
  }
  return { template, files };
}
