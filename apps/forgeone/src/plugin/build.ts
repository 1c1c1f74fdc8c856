import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative, sep } from 'node:path';
import { ForgeError, decodeUtf8Strict, isForgeError } from '@forgeone/common';
import { DEFAULT_PACKAGE_LIMITS, buildPackage, signPackage, type CryptoProvider, type Manifest, type SigningKey } from '@forgeone/crypto';
import { componentizeSource, type ComponentizeResult } from './componentize.js';
import { PluginErrorCodes } from './errors.js';
import {
  PLUGIN_COMPONENT_FILE,
  PLUGIN_MANIFEST_FILE,
  capabilitiesJson,
  capabilityStrings,
  parsePluginManifest,
  undeclaredImports,
  type PluginManifest,
} from './manifest.js';
import { DEFAULT_WORLD, FORGEONE_WIT } from './wit.js';

/** Largest plugin manifest or entry module read. */
const MAX_SOURCE_BYTES = 16 * 1024 * 1024;

/** Options for {@link buildPlugin}. */
export interface BuildPluginOptions {
  /** The plugin directory (absolute). */
  readonly dir: string;
  /** Hashes and signs. */
  readonly provider: CryptoProvider;
  /** Keys to sign the package with, in order (none: unsigned). */
  readonly keys?: readonly SigningKey[];
  /** The CLI's version, recorded in the package metadata. */
  readonly sdkVersion: string;
  /** Kill the componentizer after this long (default 10 minutes). */
  readonly timeoutMs?: number;
  /** Progress text, e.g. `componentizing src/index.js (4 s)`. */
  readonly onProgress?: (text: string) => void;
}

/** A built plugin package. */
export interface BuiltPlugin {
  /** The `.forgepkg` bytes (signed by every key given). */
  readonly bytes: Uint8Array;
  /** Its manifest. */
  readonly manifest: Manifest;
  /** The plugin manifest it was built from, with defaults filled in. */
  readonly plugin: PluginManifest;
  /** The component's imports and exports. */
  readonly component: Pick<ComponentizeResult, 'imports' | 'exports' | 'componentizeVersion'> & { readonly size: number };
  /** The key ids that signed it, in order. */
  readonly signers: readonly string[];
}

async function readText(path: string, shown: string, missing: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    const st = await lstat(path);
    if (!st.isFile()) throw new ForgeError('IO_ERROR', `${shown} is not a regular file`);
    if (st.size > MAX_SOURCE_BYTES) throw new ForgeError('LIMIT_EXCEEDED', `${shown} is ${st.size} bytes, the limit is ${MAX_SOURCE_BYTES}`);
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    if (isForgeError(e)) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ForgeError(PluginErrorCodes.missing, `${shown} does not exist${missing}`, { cause: e });
    throw new ForgeError('IO_ERROR', `cannot read ${shown}: ${(e as Error).message}`, { cause: e });
  }
  const text = decodeUtf8Strict(bytes);
  if (text === undefined) throw new ForgeError(PluginErrorCodes.manifestInvalid, `${shown} is not valid UTF-8`);
  return text;
}

/**
 * Read a plugin directory's manifest.
 * @param dir - the plugin directory (absolute)
 * @returns the validated manifest
 * @throws ForgeError `NOT_FOUND` (no directory or no manifest), `CONFIG_INVALID` naming the field
 */
export async function readPluginManifest(dir: string): Promise<PluginManifest> {
  try {
    if (!(await lstat(dir)).isDirectory()) throw new ForgeError(PluginErrorCodes.missing, `${dir} is not a directory`);
  } catch (e) {
    if (isForgeError(e)) throw e;
    throw new ForgeError(PluginErrorCodes.missing, `plugin directory ${dir} does not exist`, { cause: e });
  }
  const text = await readText(join(dir, PLUGIN_MANIFEST_FILE), PLUGIN_MANIFEST_FILE, ` in ${dir} (create a plugin with \`forgeone plugin new\`)`);
  return parsePluginManifest(text);
}

/** Every regular file under `dir`, by `/`-separated path relative to `root`; symbolic links are refused. */
async function collect(root: string, dir: string, out: Map<string, Uint8Array>, budget: { files: number; bytes: number }): Promise<void> {
  const st = await lstat(dir).catch((e: unknown) => {
    throw new ForgeError(PluginErrorCodes.missing, `${relative(root, dir)} does not exist`, { cause: e });
  });
  if (st.isSymbolicLink()) throw new ForgeError('PKG_INVALID_PATH', `${relative(root, dir)} is a symbolic link; plugins pack regular files only`);
  if (st.isFile()) {
    budget.files += 1;
    budget.bytes += st.size;
    if (budget.files > DEFAULT_PACKAGE_LIMITS.maxFiles || budget.bytes > DEFAULT_PACKAGE_LIMITS.maxPackageBytes) throw new ForgeError('PKG_LIMIT_EXCEEDED', `the files to pack exceed the package limits`);
    out.set(relative(root, dir).split(sep).join('/'), new Uint8Array(await readFile(dir)));
    return;
  }
  if (!st.isDirectory()) throw new ForgeError('PKG_INVALID_PATH', `${relative(root, dir)} is not a regular file or directory`);
  for (const name of (await readdir(dir)).sort()) await collect(root, join(dir, name), out, budget);
}

/** Copy a WIT directory of the plugin (regular files and directories only) into `target`. */
async function copyWit(from: string, target: string): Promise<void> {
  const files = new Map<string, Uint8Array>();
  await collect(from, from, files, { files: 0, bytes: 0 });
  for (const [name, bytes] of files) {
    await mkdir(join(target, ...name.split('/').slice(0, -1)), { recursive: true });
    await writeFile(join(target, ...name.split('/')), bytes);
  }
}

/**
 * `forgeone:host/log` → `forgeone:host/log@0.1.0` in import specifiers (`from '…'`, `import '…'`, `import('…')`),
 * so plugins may leave out the version of the one package they can target.
 */
function versionHostImports(source: string): string {
  return source.replace(/(\bfrom\s*|\bimport\s*\(?\s*)(['"])forgeone:host\/([a-z][a-z0-9-]*)\2/g, '$1$2forgeone:host/$3@0.1.0$2');
}

/**
 * Build a plugin directory into a `.forgepkg`: validate `forgeone.plugin.json`, componentize the entry module
 * against the world (the ForgeOne WIT is embedded in the CLI), check that the component imports nothing the
 * manifest does not request, pack the component (`plugin.wasm`, the entry), the manifest, the source and the
 * README, and sign the package with each key. The requested capabilities go into the package manifest twice:
 * as capability strings (`forgeone:kv/get`, `forgeone:http/fetch:api.example.com:443`, ...) and, in full, as
 * canonical JSON in `metadata["forgeone.capabilities"]`.
 * @param options - directory, provider, keys, version, progress
 * @returns the package bytes and what went into them
 * @throws ForgeError `NOT_FOUND`, `CONFIG_INVALID`, `WASM_TRANSPILE_FAILED`, `WASM_LINK_ERROR`, `WASM_EXPORT_MISSING`,
 * `SANDBOX_TIMEOUT`, `PKG_MANIFEST_INVALID` (e.g. a version that is not semver), `PKG_INVALID_PATH`
 */
export async function buildPlugin(options: BuildPluginOptions): Promise<BuiltPlugin> {
  const { dir } = options;
  const plugin = await readPluginManifest(dir);
  const source = await readText(join(dir, ...plugin.entry.split('/')), plugin.entry, ` (the entry of ${PLUGIN_MANIFEST_FILE})`);
  const work = await mkdtemp(join(tmpdir(), 'forgeone-wit-'));
  let result: ComponentizeResult;
  try {
    let witPath: string;
    if (plugin.wit === undefined) {
      witPath = join(work, 'forgeone.wit');
      await writeFile(witPath, FORGEONE_WIT);
    } else {
      witPath = join(work, 'wit');
      await copyWit(join(dir, ...plugin.wit.split('/')), witPath);
      await mkdir(join(witPath, 'deps', 'forgeone-host'), { recursive: true });
      await writeFile(join(witPath, 'deps', 'forgeone-host', 'forgeone.wit'), FORGEONE_WIT);
    }
    const shownName = basename(plugin.entry).replace(/\.mjs$/, '.js');
    options.onProgress?.(`componentizing ${plugin.entry}`);
    result = await componentizeSource({
      source: versionHostImports(source),
      sourceName: shownName,
      witPath,
      world: plugin.world === DEFAULT_WORLD && plugin.wit === undefined ? 'plugin' : plugin.world,
      features: plugin.engineFeatures,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      onTick: (ms) => options.onProgress?.(`componentizing ${plugin.entry} (${Math.floor(ms / 1000)} s)`),
    });
  } catch (e) {
    if (isForgeError(e) && e.code !== PluginErrorCodes.missing && !e.message.includes(plugin.entry)) {
      throw new ForgeError(e.code, `${plugin.entry}: ${e.message}`, e.details === undefined ? { cause: e } : { cause: e, details: e.details });
    }
    throw e;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  if (!result.exports.includes('run')) {
    throw new ForgeError(PluginErrorCodes.exportMissing, `the component does not export run (exports: ${result.exports.join(', ') || 'none'})`, { details: { exports: result.exports } });
  }
  const undeclared = undeclaredImports(result.imports, plugin);
  if (undeclared.length > 0) {
    throw new ForgeError(PluginErrorCodes.importNotAllowed, `the component imports ${undeclared.join(', ')}, which ${PLUGIN_MANIFEST_FILE} does not request (add the capability or the engine feature)`, {
      details: { undeclared, imports: result.imports },
    });
  }

  options.onProgress?.('packing');
  const files = new Map<string, Uint8Array>();
  const budget = { files: 0, bytes: 0 };
  const manifestText = await readFile(join(dir, PLUGIN_MANIFEST_FILE));
  files.set(PLUGIN_MANIFEST_FILE, new Uint8Array(manifestText));
  files.set(plugin.entry, new TextEncoder().encode(source));
  const include = [...plugin.include.map((p) => p.replace(/\/+$/, ''))];
  if (!include.includes('README.md') && (await lstat(join(dir, 'README.md')).then((s) => s.isFile(), () => false))) include.push('README.md');
  for (const p of include) await collect(dir, join(dir, ...p.split('/')), files, budget);
  if (files.has(PLUGIN_COMPONENT_FILE)) throw new ForgeError(PluginErrorCodes.manifestInvalid, `${PLUGIN_MANIFEST_FILE} field include: ${PLUGIN_COMPONENT_FILE} is the name of the built component`, { details: { path: 'include' } });
  files.set(PLUGIN_COMPONENT_FILE, result.component);

  const { bytes: unsigned, manifest } = buildPackage(options.provider, {
    template: {
      name: plugin.name,
      version: plugin.version,
      description: plugin.description,
      author: plugin.author,
      entry: PLUGIN_COMPONENT_FILE,
      capabilities: capabilityStrings(plugin),
      validDays: plugin.validDays,
      metadata: {
        'forgeone.kind': 'plugin',
        'forgeone.world': plugin.world,
        'forgeone.source': plugin.entry,
        'forgeone.capabilities': capabilitiesJson(plugin.capabilities),
        'forgeone.engine-features': plugin.engineFeatures.join(','),
        'forgeone.imports': result.imports.join(','),
        'forgeone.exports': result.exports.join(','),
        'forgeone.built-by': `@forgeone/cli@${options.sdkVersion} componentize-js@${result.componentizeVersion}`,
      },
    },
    files,
  });
  let bytes = unsigned;
  for (const key of options.keys ?? []) bytes = signPackage(bytes, key);
  return {
    bytes,
    manifest,
    plugin,
    component: { imports: result.imports, exports: result.exports, componentizeVersion: result.componentizeVersion, size: result.component.length },
    signers: (options.keys ?? []).map((k) => k.keyId),
  };
}
