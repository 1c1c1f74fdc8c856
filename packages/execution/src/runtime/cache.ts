import { createHash } from 'node:crypto';
import { ForgeError } from '@forgeone/common';
import { limitMemoryDetailed } from '../binary/index.js';

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
 * An in-memory cache of compiled core modules keyed by the SHA-256 of their bytes and the memory limit
 * written into them. Compiled `WebAssembly.Module`s are posted to sandbox workers as they are (V8 shares
 * the compiled code), so a warm start skips both the rewrite and the compilation. Least recently used
 * entries are dropped beyond `maxEntries`. Failed compilations are not cached.
 */
export class ModuleCache {
  readonly #max: number;
  readonly #entries = new Map<string, Promise<LimitedCompiledModule>>();
  readonly #ready = new Map<string, LimitedCompiledModule>();
  readonly #hashes = new WeakMap<Uint8Array, string>();
  #hits = 0;
  #misses = 0;

  /** @param maxEntries - modules kept; default 64 */
  constructor(maxEntries = 64) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new ForgeError('INVALID_ARGUMENT', 'maxEntries must be a positive integer');
    this.#max = maxEntries;
  }

  #key(bytes: Uint8Array, limitPages: number): string {
    // The same array is usually started many times: hash it once (the caller must not mutate it).
    let hash = this.#hashes.get(bytes);
    if (hash === undefined) {
      hash = createHash('sha256').update(bytes).digest('hex');
      this.#hashes.set(bytes, hash);
    }
    return `${hash}:${limitPages}`;
  }

  /**
   * The compiled module when it is ready, without waiting.
   * @param bytes - the module's bytes
   * @param limitPages - the memory limit in pages
   * @returns the module, or undefined when it is not (yet) compiled
   */
  peek(bytes: Uint8Array, limitPages: number): LimitedCompiledModule | undefined {
    const key = this.#key(bytes, limitPages);
    const hit = this.#ready.get(key);
    if (hit !== undefined) {
      this.#hits++;
      this.#touch(key);
    }
    return hit;
  }

  /**
   * Rewrite the memory limit into the bytes and compile them, or return the cached result.
   * @param bytes - a core module
   * @param limitPages - the memory limit in pages
   * @returns the compiled module
   * @throws ForgeError `WASM_INVALID`, `SANDBOX_MEMORY_EXCEEDED` (a minimum above the limit), as `limitMemory`
   */
  get(bytes: Uint8Array, limitPages: number): Promise<LimitedCompiledModule> {
    const key = this.#key(bytes, limitPages);
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      this.#hits++;
      this.#touch(key);
      return existing;
    }
    this.#misses++;
    const p = compileLimited(bytes, limitPages);
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

  /** Hit and miss counters. */
  get stats(): ModuleCacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#entries.size };
  }

  /** Drop every module. */
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
