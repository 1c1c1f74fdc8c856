import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ForgeError, isForgeError } from '@forgeone/common';

/**
 * The import object of a component in jco's instantiation mode: one object per imported interface,
 * keyed by the unversioned interface name (`'wasi:cli/stdout'`, `'forgeone:host/kv'`), holding its
 * functions (camelCase) and resource classes (PascalCase).
 */
export type ComponentImports = Record<string, Record<string, unknown>>;

/** The exports of an instantiated component as jco lifts them (`run`, or an object per exported interface). */
export type ComponentExports = Record<string, unknown>;

/** The `instantiate` function jco generates in synchronous instantiation mode. */
type JcoInstantiate = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: ComponentImports,
  instantiateCore?: (module: WebAssembly.Module, imports?: WebAssembly.Imports) => WebAssembly.Instance,
) => ComponentExports;

/** A component ready to instantiate: transpiled by jco, its core modules compiled. */
export interface LoadedComponent {
  /** SHA3-256 of the component bytes, lowercase hex. */
  readonly hash: string;
  /**
   * The interfaces the component imports, as keys of the import object (`'wasi:io/streams'`,
   * `'forgeone:host/log'`), unversioned.
   */
  readonly imports: readonly string[];
  /** The component's exports: name and kind (`function` for a world-level function, `instance` for an interface). */
  readonly exports: readonly (readonly [string, 'function' | 'instance'])[];
  /** The compiled core modules by the file name jco gave them (can be posted to a worker). */
  readonly coreModules: ReadonlyMap<string, WebAssembly.Module>;
  /**
   * Instantiate synchronously with the given imports (see `buildComponentImports`).
   * @param imports - one object per key of {@link LoadedComponent.imports}
   * @param hooks - observe the core instances as they are created (the sandbox reads their memory size and
   *   the memory-limit instrumentation from them)
   * @returns the lifted exports
   * @throws whatever the guest's start-up throws (a trap, a refused host call); `runComponent` maps these
   */
  instantiate(imports: ComponentImports, hooks?: InstantiateHooks): ComponentExports;
}

/** Hooks of {@link LoadedComponent.instantiate}. */
export interface InstantiateHooks {
  /**
   * Called with each core instance of the component, in creation order, as soon as it exists.
   * @param instance - the core instance
   */
  readonly onCoreInstance?: (instance: WebAssembly.Instance) => void;
}

/** Options of {@link transpileComponent}. */
export interface TranspileOptions {
  /**
   * Directory for the on-disk cache: `<cacheDir>/<hash>/` holds the generated JS, the core `.wasm` files and
   * a manifest with the SHA3-256 of each file, checked before anything is loaded. No disk cache when omitted.
   */
  readonly cacheDir?: string;
  /**
   * Rewrites each core module before it is compiled (the sandbox writes memory limits into it here). The
   * result must be a valid core module.
   */
  readonly prepareCoreModule?: (name: string, bytes: Uint8Array) => Uint8Array;
  /**
   * Core modules already compiled (and prepared) elsewhere, by jco's file name — e.g. by the kernel, then
   * posted to a sandbox worker, so the worker neither rewrites nor compiles them. Used instead of
   * `prepareCoreModule`; the names must be exactly the component's core modules (`WASM_LINK_ERROR` otherwise).
   */
  readonly compiled?: ReadonlyMap<string, WebAssembly.Module>;
  /** The in-memory cache to use; the process-wide {@link defaultComponentCache} when omitted. */
  readonly cache?: ComponentCache;
  /** Largest component accepted, in bytes; default 256 MiB. */
  readonly maxBytes?: number;
}

/** What the cache holds for one component: jco's output, before compilation. */
interface Transpiled {
  readonly hash: string;
  readonly instantiate: JcoInstantiate;
  readonly imports: readonly string[];
  readonly exports: readonly (readonly [string, 'function' | 'instance'])[];
  readonly core: ReadonlyMap<string, Uint8Array>;
}

/** Counters of a {@link ComponentCache}, for tests and metrics. */
export interface ComponentCacheStats {
  /** Loads answered from memory. */
  memoryHits: number;
  /** Loads answered from the disk cache (after a manifest check). */
  diskHits: number;
  /** Loads that ran jco's transpiler. */
  transpiles: number;
  /** Disk entries ignored because a file did not match its manifest hash. */
  diskRejected: number;
}

const NO_HOOK = {};
const MANIFEST = 'manifest.json';
// 2: transpiled with jco's hybrid import bindings (see runJco).
const CACHE_FORMAT = 'forgeone-component-cache/2';
const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/**
 * The in-memory half of the component cache: transpiled output by component hash, and compiled core
 * modules by hash and `prepareCoreModule` hook (so a sandbox with memory limits never receives modules
 * compiled without them).
 */
export class ComponentCache {
  /** Counters since creation. */
  readonly stats: ComponentCacheStats = { memoryHits: 0, diskHits: 0, transpiles: 0, diskRejected: 0 };

  constructor() {
    stores.set(this, { transpiled: new Map(), compiled: new WeakMap() });
  }

  /** Forget everything held in memory (the disk cache is untouched). */
  clear(): void {
    const store = stores.get(this)!;
    store.transpiled.clear();
    store.compiled = new WeakMap();
  }

  /** How many components are held in memory. */
  get size(): number {
    return stores.get(this)!.transpiled.size;
  }
}

interface CacheStore {
  readonly transpiled: Map<string, Promise<Transpiled>>;
  compiled: WeakMap<object, Map<string, Promise<ReadonlyMap<string, WebAssembly.Module>>>>;
}

const stores = new WeakMap<ComponentCache, CacheStore>();

function cachedTranspile(cache: ComponentCache, hash: string, load: () => Promise<Transpiled>): Promise<Transpiled> {
  const store = stores.get(cache)!;
  const hit = store.transpiled.get(hash);
  if (hit !== undefined) {
    cache.stats.memoryHits++;
    return hit;
  }
  const p = load();
  store.transpiled.set(hash, p);
  p.catch(() => store.transpiled.delete(hash));
  return p;
}

function cachedCompile(cache: ComponentCache, hash: string, hook: object, compile: () => Promise<ReadonlyMap<string, WebAssembly.Module>>): Promise<ReadonlyMap<string, WebAssembly.Module>> {
  const store = stores.get(cache)!;
  let byHash = store.compiled.get(hook);
  if (byHash === undefined) {
    byHash = new Map();
    store.compiled.set(hook, byHash);
  }
  const hit = byHash.get(hash);
  if (hit !== undefined) return hit;
  const p = compile();
  byHash.set(hash, p);
  p.catch(() => byHash.delete(hash));
  return p;
}

/** The process-wide cache {@link transpileComponent} uses when no `cache` option is given. */
export const defaultComponentCache = new ComponentCache();

/**
 * SHA3-256 of some bytes, lowercase hex.
 * @param bytes - the bytes
 * @returns the digest
 */
export function sha3Hex(bytes: Uint8Array): string {
  return createHash('sha3-256').update(bytes).digest('hex');
}

/**
 * Check the preamble of a component binary.
 * @param bytes - candidate component bytes
 * @param maxBytes - size limit
 * @throws ForgeError `WASM_INVALID` when the bytes are not a WebAssembly binary or are a core module,
 *   `LIMIT_EXCEEDED` when too large
 */
function checkPreamble(bytes: Uint8Array, maxBytes: number): void {
  if (!(bytes instanceof Uint8Array)) throw new ForgeError('WASM_INVALID', 'component bytes must be a Uint8Array');
  if (bytes.length > maxBytes) throw new ForgeError('LIMIT_EXCEEDED', `component is ${bytes.length} bytes, more than the limit of ${maxBytes}`, { details: { size: bytes.length, limit: maxBytes } });
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new ForgeError('WASM_INVALID', 'not a WebAssembly binary (bad magic)');
  }
  // Core modules have version 1 and layer 0; components have layer 1 (bytes 6..7 = 01 00).
  if (bytes[6] !== 0x01 || bytes[7] !== 0x00) {
    throw new ForgeError('WASM_INVALID', 'a core WebAssembly module, not a component (run it as a WASI preview1 module instead)');
  }
}

/**
 * Load a WebAssembly component for the host: transpile it with jco (synchronous instantiation mode, no WASI
 * shim: the kernel supplies every import), compile its core modules, and cache both. The cache key is the
 * SHA3-256 of the bytes: a second load of the same bytes neither transpiles nor (for the same
 * `prepareCoreModule` hook) compiles again; with `cacheDir` a later process loads the generated files from
 * disk after checking each against the manifest.
 *
 * @example
 * ```ts
 * const loaded = await transpileComponent(bytes, { cacheDir: '/var/cache/forgeone/components' });
 * const imports = buildComponentImports({ gate, services: createMemoryServices() });
 * const out = runComponent(loaded, imports, { input: 'hi' });
 * ```
 * @param bytes - the component binary
 * @param options - disk cache, core-module hook, memory cache, size limit
 * @returns the loaded component
 * @throws ForgeError `WASM_INVALID` (not a component), `WASM_TRANSPILE_FAILED` (jco refused it, or a core
 *   module failed to compile), `LIMIT_EXCEEDED` (too large), `IO_ERROR` (the cache directory is unusable)
 */
export async function transpileComponent(bytes: Uint8Array, options: TranspileOptions = {}): Promise<LoadedComponent> {
  checkPreamble(bytes, options.maxBytes ?? DEFAULT_MAX_BYTES);
  const cache = options.cache ?? defaultComponentCache;
  const hash = sha3Hex(bytes);
  const copy = bytes.slice();
  const transpiled = await cachedTranspile(cache, hash, () => loadTranspiled(copy, hash, options.cacheDir, cache.stats));
  const hook = options.prepareCoreModule;
  let modules: ReadonlyMap<string, WebAssembly.Module>;
  if (options.compiled !== undefined) {
    modules = options.compiled;
    const want = [...transpiled.core.keys()].sort();
    const have = [...modules.keys()].sort();
    if (want.join('\0') !== have.join('\0') || ![...modules.values()].every((m) => m instanceof WebAssembly.Module)) {
      throw new ForgeError('WASM_LINK_ERROR', `the compiled core modules given (${have.join(', ')}) are not the component's (${want.join(', ')})`);
    }
  } else {
    modules = await cachedCompile(cache, hash, hook ?? NO_HOOK, () => compileCore(transpiled.core, hook));
  }
  return {
    hash,
    imports: transpiled.imports,
    exports: transpiled.exports,
    coreModules: modules,
    instantiate(imports: ComponentImports, hooks?: InstantiateHooks): ComponentExports {
      const getCoreModule = (name: string): WebAssembly.Module => {
        const m = modules.get(name);
        if (m === undefined) throw new ForgeError('WASM_LINK_ERROR', `the component asked for an unknown core module ${JSON.stringify(name)}`);
        return m;
      };
      const observe = hooks?.onCoreInstance;
      if (observe === undefined) return transpiled.instantiate(getCoreModule, imports);
      return transpiled.instantiate(getCoreModule, imports, (module, importObject) => {
        const instance = new WebAssembly.Instance(module, importObject);
        observe(instance);
        return instance;
      });
    },
  };
}

async function compileCore(core: ReadonlyMap<string, Uint8Array>, hook: ((name: string, bytes: Uint8Array) => Uint8Array) | undefined): Promise<ReadonlyMap<string, WebAssembly.Module>> {
  const out = new Map<string, WebAssembly.Module>();
  for (const [name, original] of core) {
    let bytes = original;
    if (hook !== undefined) {
      try {
        bytes = hook(name, original);
      } catch (cause) {
        if (isForgeError(cause)) throw cause;
        throw new ForgeError('WASM_TRANSPILE_FAILED', `prepareCoreModule failed for ${name}`, { cause });
      }
    }
    try {
      out.set(name, await WebAssembly.compile(bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice()));
    } catch (cause) {
      throw new ForgeError('WASM_TRANSPILE_FAILED', `core module ${name} does not compile: ${(cause as Error).message}`, { cause, details: { module: name } });
    }
  }
  return out;
}

async function loadTranspiled(bytes: Uint8Array, hash: string, cacheDir: string | undefined, stats: ComponentCacheStats): Promise<Transpiled> {
  if (cacheDir !== undefined) {
    const fromDisk = await readDiskEntry(join(cacheDir, hash), hash, stats);
    if (fromDisk !== null) {
      stats.diskHits++;
      return fromDisk;
    }
  }
  const { files, imports, exports } = await runJco(bytes);
  stats.transpiles++;
  const jsName = [...files.keys()].find((n) => n.endsWith('.js'));
  if (jsName === undefined) throw new ForgeError('WASM_TRANSPILE_FAILED', 'jco produced no JavaScript');
  const core = new Map<string, Uint8Array>();
  for (const [name, data] of files) if (name.endsWith('.wasm')) core.set(name, data);
  const meta: Manifest = { format: CACHE_FORMAT, hash, js: jsName, imports, exports, files: {} };
  for (const [name, data] of files) if (name === jsName || name.endsWith('.wasm')) meta.files[name] = sha3Hex(data);
  const js = files.get(jsName)!;
  let instantiate: JcoInstantiate;
  if (cacheDir !== undefined) {
    const dir = await writeDiskEntry(cacheDir, hash, files, meta);
    instantiate = await importInstantiate(join(dir, jsName), hash);
  } else {
    instantiate = await importInstantiate(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`, hash);
  }
  return { hash, instantiate, imports, exports, core };
}

interface Manifest {
  format: string;
  hash: string;
  js: string;
  imports: string[];
  exports: [string, 'function' | 'instance'][];
  files: Record<string, string>;
}

interface JcoOutput {
  files: Map<string, Uint8Array>;
  imports: string[];
  exports: [string, 'function' | 'instance'][];
}

type JcoTranspile = (component: Uint8Array, opts: Record<string, unknown>) => Promise<{ files: Record<string, Uint8Array>; imports: string[]; exports: [string, 'function' | 'instance'][] }>;

let jcoTranspile: Promise<JcoTranspile> | undefined;

async function runJco(bytes: Uint8Array): Promise<JcoOutput> {
  jcoTranspile ??= import('@bytecodealliance/jco').then((m) => (m as unknown as { transpile: JcoTranspile }).transpile);
  const transpile = await jcoTranspile;
  let out: Awaited<ReturnType<JcoTranspile>>;
  try {
    out = await transpile(bytes, {
      name: 'component',
      instantiation: 'sync',
      typescript: false,
      // Every core module is a separate file: nothing is inlined as base64 into the JS.
      base64Cutoff: 0,
      nodejsCompat: false,
      tracing: false,
      // Hybrid: an import whose function carries Symbol.for('cabiLower') is linked at the core level (the
      // host reads arguments from guest memory itself; see component/lower.ts); every other import goes
      // through jco's generated JS trampoline.
      importBindings: 'hybrid',
    });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    // jco reports a malformed binary as a parse error; anything else is a transpile failure.
    const invalid = /invalid|unexpected|malformed|magic|parse|section|out of bounds|end of/i.test(message);
    throw new ForgeError(invalid ? 'WASM_INVALID' : 'WASM_TRANSPILE_FAILED', `jco could not transpile the component: ${firstLine(message)}`, { cause });
  }
  const files = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(out.files)) {
    if (name.includes('/') || name.includes('\\') || name.startsWith('.')) throw new ForgeError('WASM_TRANSPILE_FAILED', `jco produced an unexpected file name ${JSON.stringify(name)}`);
    files.set(name, data);
  }
  return { files, imports: out.imports.map(unversioned), exports: out.exports };
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).slice(0, 500);
}

/**
 * Drop a `@version` suffix from an interface name.
 * @param name - `'wasi:cli/stdout@0.2.3'` or `'wasi:cli/stdout'`
 * @returns `'wasi:cli/stdout'`
 */
export function unversioned(name: string): string {
  const at = name.indexOf('@');
  return at < 0 ? name : name.slice(0, at);
}

async function importInstantiate(specifier: string, hash: string): Promise<JcoInstantiate> {
  const url = specifier.startsWith('data:') ? specifier : pathToFileURL(specifier).href;
  let mod: { instantiate?: unknown };
  try {
    mod = (await import(/* @vite-ignore */ url)) as { instantiate?: unknown };
  } catch (cause) {
    throw new ForgeError('WASM_TRANSPILE_FAILED', `the generated bindings of component ${hash.slice(0, 12)} do not load`, { cause });
  }
  if (typeof mod.instantiate !== 'function') throw new ForgeError('WASM_TRANSPILE_FAILED', 'the generated bindings export no instantiate function');
  return mod.instantiate as JcoInstantiate;
}

async function readDiskEntry(dir: string, hash: string, stats: ComponentCacheStats): Promise<Transpiled | null> {
  let meta: Manifest;
  try {
    meta = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return null;
  }
  if (meta.format !== CACHE_FORMAT || meta.hash !== hash || typeof meta.js !== 'string' || typeof meta.files !== 'object' || meta.files === null) {
    stats.diskRejected++;
    return null;
  }
  const core = new Map<string, Uint8Array>();
  try {
    for (const [name, digest] of Object.entries(meta.files)) {
      if (name.includes('/') || name.includes('\\') || name.startsWith('.')) throw new Error('bad name');
      const data = new Uint8Array(await readFile(join(dir, name)));
      if (sha3Hex(data) !== digest) throw new Error(`hash mismatch for ${name}`);
      if (name.endsWith('.wasm')) core.set(name, data);
    }
    if (meta.files[meta.js] === undefined) throw new Error('js file not in manifest');
  } catch {
    stats.diskRejected++;
    return null;
  }
  // The JS file was just checked against the manifest; the window between the check and the import is the
  // cache directory's own permissions to protect (it must be writable by the kernel only).
  const instantiate = await importInstantiate(join(dir, meta.js), hash);
  return { hash, instantiate, imports: meta.imports, exports: meta.exports, core };
}

async function writeDiskEntry(cacheDir: string, hash: string, files: ReadonlyMap<string, Uint8Array>, meta: Manifest): Promise<string> {
  const final = join(cacheDir, hash);
  const tmp = join(cacheDir, `.${hash}.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    for (const name of Object.keys(meta.files)) await writeFile(join(tmp, name), files.get(name)!, { mode: 0o600 });
    await writeFile(join(tmp, MANIFEST), JSON.stringify(meta), { mode: 0o600 });
    try {
      await rename(tmp, final);
    } catch {
      // Another loader won the race (or a stale entry failed its manifest check): replace it.
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final).catch(() => undefined);
    }
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw new ForgeError('IO_ERROR', `cannot write the component cache under ${cacheDir}`, { cause });
  }
  await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  return final;
}
