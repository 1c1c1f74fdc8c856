import { ForgeError, decodeUtf8Strict, utf8 } from '@forgeone/common';
import type { KvMap, Store } from '@forgeone/store';
import { z } from 'zod';
import { checkBaselineKey } from './types.js';
import type { BaselineKey } from './types.js';

/** The format name of a stored baseline. */
export const BASELINE_FORMAT = 'forgeone.baseline/v1';

/** Default key-value namespace of {@link createStoreBaselines}. */
export const DEFAULT_BASELINE_NAMESPACE = 'diagnostics/baselines';

/** Detector names: lowercase letters, digits and dashes, 1-64 characters, starting with a letter. */
export const DETECTOR_NAME = /^[a-z][a-z0-9-]{0,63}$/;

/** One stored baseline, as listed by {@link BaselineStore.list}. */
export interface BaselineEntry extends BaselineKey {
  /** The detector it belongs to. */
  readonly detector: string;
}

/**
 * Where detectors keep what they learned: one JSON document per detector and package version. The data is
 * the detector's own; the store only frames it (format, detector, key) and checks the frame on the way back.
 */
export interface BaselineStore {
  /**
   * Read a baseline.
   * @param detector - the detector name
   * @param key - the package
   * @returns the detector's data, or undefined when nothing was learned yet
   * @throws ForgeError `STATE_CORRUPT` when the stored document is damaged or belongs to another key
   */
  get(detector: string, key: BaselineKey): Promise<unknown>;
  /**
   * Write a baseline (replacing the previous one).
   * @param detector - the detector name
   * @param key - the package
   * @param data - JSON data
   * @returns once durable
   * @throws ForgeError `INVALID_ARGUMENT` for a bad name or key, `LIMIT_EXCEEDED` when the store refuses its size
   */
  put(detector: string, key: BaselineKey, data: unknown): Promise<void>;
  /**
   * Forget a baseline.
   * @param detector - the detector name
   * @param key - the package
   * @returns whether there was one
   */
  delete(detector: string, key: BaselineKey): Promise<boolean>;
  /**
   * The stored baselines.
   * @param detector - only this detector's (default: all)
   * @returns detector and package of each, sorted
   */
  list(detector?: string): Promise<BaselineEntry[]>;
}

const FrameSchema = z.strictObject({
  format: z.literal(BASELINE_FORMAT),
  detector: z.string().regex(DETECTOR_NAME),
  packageName: z.string().min(1),
  packageVersion: z.string().min(1),
  data: z.unknown(),
});

function checkDetector(detector: string): string {
  if (typeof detector !== 'string' || !DETECTOR_NAME.test(detector)) {
    throw new ForgeError('INVALID_ARGUMENT', `invalid detector name ${JSON.stringify(detector)}: 1-64 of a-z 0-9 -, starting with a letter`, { details: { field: 'detector' } });
  }
  return detector;
}

function kvKey(detector: string, key: BaselineKey): string {
  checkBaselineKey(key);
  return `${checkDetector(detector)}/${encodeURIComponent(key.packageName)}/${encodeURIComponent(key.packageVersion)}`;
}

/**
 * Baselines in a key-value namespace of a `Store` (the kernel's store, so they survive restarts).
 * @param store - the store
 * @param options - the namespace (default `diagnostics/baselines`)
 * @returns the baseline store
 * @example
 * ```ts
 * const baselines = createStoreBaselines(createMemoryStore());
 * const sequence = createSequenceDetector({ baselines });
 * ```
 */
export function createStoreBaselines(store: Store, options: { readonly namespace?: string } = {}): BaselineStore {
  const namespace = options.namespace ?? DEFAULT_BASELINE_NAMESPACE;
  let kv: Promise<KvMap> | undefined;
  const open = (): Promise<KvMap> => {
    kv ??= store.kv(namespace).catch((e: unknown) => {
      kv = undefined;
      throw e;
    });
    return kv;
  };
  return {
    async get(detector, key) {
      const k = kvKey(detector, key);
      const bytes = await (await open()).get(k);
      if (bytes === undefined) return undefined;
      const text = decodeUtf8Strict(bytes);
      let value: unknown;
      try {
        value = JSON.parse(text ?? '');
      } catch {
        throw new ForgeError('STATE_CORRUPT', `baseline ${k} is not JSON`, { details: { key: k } });
      }
      const frame = FrameSchema.safeParse(value);
      if (!frame.success || frame.data.detector !== detector || frame.data.packageName !== key.packageName || frame.data.packageVersion !== key.packageVersion) {
        throw new ForgeError('STATE_CORRUPT', `baseline ${k} is damaged or belongs to another package`, { details: { key: k } });
      }
      return frame.data.data;
    },
    async put(detector, key, data) {
      const k = kvKey(detector, key);
      const doc = { format: BASELINE_FORMAT, detector, packageName: key.packageName, packageVersion: key.packageVersion, data };
      await (await open()).set(k, utf8(JSON.stringify(doc)));
    },
    async delete(detector, key) {
      return (await open()).delete(kvKey(detector, key));
    },
    async list(detector) {
      const prefix = detector === undefined ? '' : `${checkDetector(detector)}/`;
      const out: BaselineEntry[] = [];
      for (const k of await (await open()).list(prefix)) {
        const parts = k.split('/');
        if (parts.length !== 3) continue;
        try {
          out.push({ detector: parts[0]!, packageName: decodeURIComponent(parts[1]!), packageVersion: decodeURIComponent(parts[2]!) });
        } catch {
          // A key this module did not write: not a baseline.
        }
      }
      return out;
    },
  };
}

/**
 * Load a detector's baseline through a schema.
 * @param baselines - the baseline store
 * @param detector - the detector name
 * @param key - the package
 * @param schema - the detector's schema of its data
 * @returns the data, or undefined
 * @throws ForgeError `STATE_CORRUPT` when the data does not match the schema
 */
export async function loadBaseline<T>(baselines: BaselineStore, detector: string, key: BaselineKey, schema: z.ZodType<T>): Promise<T | undefined> {
  const raw = await baselines.get(detector, key);
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ForgeError('STATE_CORRUPT', `the ${detector} baseline of ${key.packageName}@${key.packageVersion} is damaged: ${parsed.error.issues[0]?.message ?? 'invalid'}`, {
      details: { detector, packageName: key.packageName, packageVersion: key.packageVersion },
    });
  }
  return parsed.data;
}

/**
 * Serialise read-modify-write cycles per key (learning twice at once must not lose a run), and cache baselines
 * between runs. One per detector instance.
 */
export class BaselineCache<T> {
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #cache = new Map<string, T | undefined>();

  /**
   * @param baselines - where baselines live
   * @param detector - the detector name
   * @param schema - the data schema
   */
  constructor(
    private readonly baselines: BaselineStore,
    private readonly detector: string,
    private readonly schema: z.ZodType<T>,
  ) {
    checkDetector(detector);
    if (typeof baselines !== 'object' || baselines === null || typeof baselines.get !== 'function' || typeof baselines.put !== 'function') {
      throw new ForgeError('INVALID_ARGUMENT', `the ${detector} detector needs a baseline store ({ baselines: createStoreBaselines(store) })`, { details: { field: 'baselines' } });
    }
  }

  /**
   * The baseline of a package (cached).
   * @param key - the package
   * @returns the data or undefined
   */
  async get(key: BaselineKey): Promise<T | undefined> {
    const k = kvKey(this.detector, key);
    await this.#locks.get(k);
    if (this.#cache.has(k)) return this.#cache.get(k);
    const value = await loadBaseline(this.baselines, this.detector, key, this.schema);
    this.#cache.set(k, value);
    return value;
  }

  /**
   * Update a baseline under the key's lock.
   * @param key - the package
   * @param fn - from the old data (or undefined) to the new
   * @returns once stored
   */
  update(key: BaselineKey, fn: (old: T | undefined) => T): Promise<void> {
    const k = kvKey(this.detector, key);
    const previous = this.#locks.get(k) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        this.#cache.delete(k);
        const old = await loadBaseline(this.baselines, this.detector, key, this.schema);
        const value = fn(old);
        await this.baselines.put(this.detector, key, value);
        this.#cache.set(k, value);
      });
    const tail = next.catch(() => undefined);
    this.#locks.set(k, tail);
    void tail.then(() => {
      if (this.#locks.get(k) === tail) this.#locks.delete(k);
    });
    return next;
  }
}
