import { ForgeError } from '@forgeone/common';
import { limitMemoryDetailed } from '../binary/index.js';
import { sha3Hex, transpileComponent } from '../component/loader.js';
import { memoryLimitHook, type PreparedComponentModules } from '../component/runner.js';

/** A module compiled from bytes rewritten with a memory limit. */
export interface LimitedCompiledModule {
  /** The compiled module (can be posted to workers without recompiling). */
  readonly module: WebAssembly.Module;
  /** The page limit written into it. */
  readonly limitPages: number;
}

/** Counters of a {@link ModuleCache}. */
export interface ModuleCacheStats {
  /** Lookups answered from the cache. */
  readonly hits: number;
  /** Lookups that compiled. */
  readonly misses: number;
  /** Modules held. */
  readonly size: number;
}

/**
 * Rewrite the memory limit into a core module and compile it.
 * @param bytes - a core module
 * @param limitPages - the memory limit in pages
 * @returns the compiled module
 * @throws ForgeError `WASM_INVALID`, `SANDBOX_MEMORY_EXCEEDED`, as `limitMemory`
 */
export async function compileLimited(bytes: Uint8Array, limitPages: number): Promise<LimitedCompiledModule> {
  const limited = limitMemoryDetailed(bytes, limitPages);
  try {
    return { module: await WebAssembly.compile(limited.bytes as Uint8Array<ArrayBuffer>), limitPages };
  } catch (cause) {
    throw new ForgeError('WASM_INVALID', `not a valid WebAssembly module: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * The one mechanism behind {@link ModuleCache} and {@link ComponentModuleCache}: results of an async build
 * keyed by the SHA3-256 of the bytes and the page limit, least recently used dropped beyond `max`, failures
 * not cached, ready results readable without waiting.
 */
class LimitKeyedCache<T> {
  readonly #max: number;
  readonly #entries = new Map<string, Promise<T>>();
  readonly #ready = new Map<string, T>();
  readonly #hashes = new WeakMap<Uint8Array, string>();
  #hits = 0;
  #misses = 0;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new ForgeError('INVALID_ARGUMENT', 'maxEntries must be a positive integer');
    this.#max = maxEntries;
  }

  #key(bytes: Uint8Array, limitPages: number): string {
    // The same array is usually started many times: hash it once (the caller must not mutate it).
    let hash = this.#hashes.get(bytes);
    if (hash === undefined) {
      hash = sha3Hex(bytes);
      this.#hashes.set(bytes, hash);
    }
    return `${hash}:${limitPages}`;
  }

  peek(bytes: Uint8Array, limitPages: number): T | undefined {
    const key = this.#key(bytes, limitPages);
    const hit = this.#ready.get(key);
    if (hit !== undefined) {
      this.#hits++;
      this.#touch(key);
    }
    return hit;
  }

  get(bytes: Uint8Array, limitPages: number, build: () => Promise<T>): Promise<T> {
    const key = this.#key(bytes, limitPages);
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      this.#hits++;
      this.#touch(key);
      return existing;
    }
    this.#misses++;
    const p = build();
    this.#entries.set(key, p);
    p.then(
      (entry) => {
        if (this.#entries.get(key) === p) this.#ready.set(key, entry);
      },
      () => {
        if (this.#entries.get(key) === p) this.#entries.delete(key);
      },
    );
    this.#evict();
    return p;
  }

  get stats(): ModuleCacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#entries.size };
  }

  clear(): void {
    this.#entries.clear();
    this.#ready.clear();
  }

  #touch(key: string): void {
    const p = this.#entries.get(key);
    if (p === undefined) return;
    this.#entries.delete(key);
    this.#entries.set(key, p);
  }

  #evict(): void {
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) return;
      this.#entries.delete(oldest.value);
      this.#ready.delete(oldest.value);
    }
  }
}

/**
 * An in-memory cache of compiled core modules keyed by the SHA3-256 of their bytes and the memory limit
 * written into them. Compiled `WebAssembly.Module`s are posted to sandbox workers as they are (V8 shares
 * the compiled code), so a warm start skips both the rewrite and the compilation. Least recently used
 * entries are dropped beyond `maxEntries`. Failed compilations are not cached.
 */
export class ModuleCache {
  readonly #cache: LimitKeyedCache<LimitedCompiledModule>;

  /** @param maxEntries - modules kept; default 64 */
  constructor(maxEntries = 64) {
    this.#cache = new LimitKeyedCache(maxEntries);
  }

  /**
   * The compiled module when it is ready, without waiting.
   * @param bytes - the module's bytes
   * @param limitPages - the memory limit in pages
   * @returns the module, or undefined when it is not (yet) compiled
   */
  peek(bytes: Uint8Array, limitPages: number): LimitedCompiledModule | undefined {
    return this.#cache.peek(bytes, limitPages);
  }

  /**
   * Rewrite the memory limit into the bytes and compile them, or return the cached result.
   * @param bytes - a core module
   * @param limitPages - the memory limit in pages
   * @returns the compiled module
   * @throws ForgeError `WASM_INVALID`, `SANDBOX_MEMORY_EXCEEDED` (a minimum above the limit), as `limitMemory`
   */
  get(bytes: Uint8Array, limitPages: number): Promise<LimitedCompiledModule> {
    return this.#cache.get(bytes, limitPages, () => compileLimited(bytes, limitPages));
  }

  /** Hit and miss counters. */
  get stats(): ModuleCacheStats {
    return this.#cache.stats;
  }

  /** Drop every module. */
  clear(): void {
    this.#cache.clear();
  }
}

/** A component prepared by the kernel: its core modules limited and compiled, and what it imports and exports. */
export interface PreparedComponent extends PreparedComponentModules {
  /** SHA3-256 of the component bytes, lowercase hex. */
  readonly hash: string;
  /** The interfaces it imports (unversioned, e.g. `wasi:cli/stdin`). */
  readonly imports: readonly string[];
  /** Its exports: name and kind (`function` for a world-level function, `instance` for an interface). */
  readonly exports: readonly (readonly [string, 'function' | 'instance'])[];
}

/**
 * Transpile a component (jco, through the transpile cache of `transpileComponent`) and compile its core
 * modules with a memory limit written in (`memoryLimitHook`), for `ComponentRunnerData.compiled`.
 * @param bytes - the component
 * @param limitPages - the memory limit in pages
 * @param cacheDir - the on-disk transpile cache (the worker loads the generated bindings from it)
 * @returns the prepared component
 * @throws ForgeError `WASM_INVALID`, `WASM_TRANSPILE_FAILED`, `SANDBOX_MEMORY_EXCEEDED` (a core module's
 *   minimum above the limit), `LIMIT_EXCEEDED`, `IO_ERROR`, as `transpileComponent`
 */
export async function prepareComponent(bytes: Uint8Array, limitPages: number, cacheDir?: string): Promise<PreparedComponent> {
  const loaded = await transpileComponent(bytes, { prepareCoreModule: memoryLimitHook(limitPages), ...(cacheDir === undefined ? {} : { cacheDir }) });
  return { hash: loaded.hash, limitPages, modules: loaded.coreModules, imports: loaded.imports, exports: loaded.exports };
}

/**
 * An in-memory cache of prepared components ({@link prepareComponent}) keyed by the SHA3-256 of their bytes
 * and the memory limit written into their core modules, like {@link ModuleCache} for core modules: a warm
 * start posts the compiled modules to the worker, which neither transpiles nor compiles. Least recently
 * used entries are dropped beyond `maxEntries`; failures are not cached. The transpile cache directory is
 * not part of the key: hosts sharing one cache should share one directory too (a worker that does not find
 * the generated bindings on disk transpiles again).
 */
export class ComponentModuleCache {
  readonly #cache: LimitKeyedCache<PreparedComponent>;

  /** @param maxEntries - components kept; default 16 (a componentize-js guest holds tens of MiB of compiled code) */
  constructor(maxEntries = 16) {
    this.#cache = new LimitKeyedCache(maxEntries);
  }

  /**
   * The prepared component when it is ready, without waiting.
   * @param bytes - the component's bytes
   * @param limitPages - the memory limit in pages
   * @returns the prepared component, or undefined when it is not (yet) prepared
   */
  peek(bytes: Uint8Array, limitPages: number): PreparedComponent | undefined {
    return this.#cache.peek(bytes, limitPages);
  }

  /**
   * Prepare a component, or return the cached result.
   * @param bytes - the component
   * @param limitPages - the memory limit in pages
   * @param cacheDir - the on-disk transpile cache
   * @returns the prepared component
   * @throws ForgeError as {@link prepareComponent}
   */
  get(bytes: Uint8Array, limitPages: number, cacheDir?: string): Promise<PreparedComponent> {
    return this.#cache.get(bytes, limitPages, () => prepareComponent(bytes, limitPages, cacheDir));
  }

  /** Hit and miss counters. */
  get stats(): ModuleCacheStats {
    return this.#cache.stats;
  }

  /** Drop every component (the transpile caches, in memory and on disk, are untouched). */
  clear(): void {
    this.#cache.clear();
  }
}
