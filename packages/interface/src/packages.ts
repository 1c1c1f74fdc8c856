/**
 * Where the API keeps uploaded packages: an interface, and a default over the kernel's store.
 *
 * @packageDocumentation
 */
import { ForgeError, concatBytes, decodeUtf8Strict, utf8 } from '@forgeone/common';
import type { Store } from '@forgeone/store';

/** An uploaded package, verified when it was uploaded. */
export interface PackageInfo {
  /** The manifest's name. */
  readonly name: string;
  /** The manifest's version. */
  readonly version: string;
  /** SHA3-256 of the signed manifest (hex): the id a launch names. */
  readonly digest: string;
  /** Bytes of the `.forgepkg`. */
  readonly size: number;
  /** Ids of the trusted keys whose signatures counted. */
  readonly signers: readonly string[];
  /** Signatures the trust root required. */
  readonly threshold: number;
  /** When it was uploaded (ms). */
  readonly uploadedAt: number;
  /** Who uploaded it (`api:<subject>`). */
  readonly uploadedBy: string;
}

/** Keeps uploaded packages by digest. */
export interface PackageStore {
  /**
   * Keep a package (verified by the caller). Keeping a digest again keeps the first copy and its info.
   * @param bytes - the `.forgepkg`
   * @param info - what it is
   * @returns the info kept
   */
  put(bytes: Uint8Array, info: PackageInfo): Promise<PackageInfo>;
  /**
   * The bytes of a package.
   * @param digest - its digest
   * @returns the bytes, or undefined
   */
  get(digest: string): Promise<Uint8Array | undefined>;
  /**
   * The info of a package.
   * @param digest - its digest
   * @returns the info, or undefined
   */
  info(digest: string): Promise<PackageInfo | undefined>;
  /**
   * Every package kept, by upload time.
   * @returns their info
   */
  list(): Promise<PackageInfo[]>;
}

/** Options of {@link createStorePackageStore}. */
export interface StorePackageStoreOptions {
  /** The store (the kernel's). */
  readonly store: Store;
  /** Namespace and log prefix (default `api/packages`). */
  readonly prefix?: string;
  /** Bytes per stored chunk (default the smaller of 1 MiB and the store's record limit). */
  readonly chunkBytes?: number;
}

interface Stored extends PackageInfo {
  readonly firstSeq: number;
  readonly chunks: number;
}

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * A package store over a `Store` of `@forgeone/store`: each package's bytes in its own append-only log, in chunks; the
 * index (digest → info) in a kv namespace. Durable when the store is; survives kernel restarts.
 * @param options - the store, prefix, chunk size
 * @returns the package store
 */
export async function createStorePackageStore(options: StorePackageStoreOptions): Promise<PackageStore> {
  const { store } = options;
  const prefix = options.prefix ?? 'api/packages';
  const chunk = options.chunkBytes ?? Math.min(1 << 20, store.limits.maxRecordBytes);
  const index = await store.kv(prefix);
  const cache = new Map<string, Stored>();
  for (const key of await index.list()) {
    const text = decodeUtf8Strict((await index.get(key)) ?? new Uint8Array(0));
    try {
      const value = JSON.parse(text ?? '') as Stored;
      if (value.digest === key) cache.set(key, value);
    } catch {
      // a damaged index entry is skipped (the bytes stay in their log)
    }
  }
  const strip = (s: Stored): PackageInfo => {
    const { firstSeq: _f, chunks: _c, ...info } = s;
    return info;
  };
  let queue: Promise<unknown> = Promise.resolve();
  return {
    put(bytes, info) {
      if (!DIGEST.test(info.digest)) return Promise.reject(new ForgeError('INVALID_ARGUMENT', 'a package digest is 64 lowercase hex digits'));
      // One put at a time: two uploads of the same package keep one copy.
      const run = queue.then(async () => {
        const existing = cache.get(info.digest);
        if (existing !== undefined) return strip(existing);
        const log = await store.log(`${prefix}/${info.digest}`);
        const parts: Uint8Array[] = [];
        for (let at = 0; at < bytes.length; at += chunk) parts.push(bytes.subarray(at, Math.min(bytes.length, at + chunk)));
        if (parts.length === 0) parts.push(new Uint8Array(0));
        // Chunks of an earlier, interrupted upload may precede these: the index names where this copy starts.
        const { firstSeq } = await log.appendBatch(parts);
        const stored: Stored = { ...info, signers: [...info.signers], firstSeq, chunks: parts.length };
        await index.set(info.digest, utf8(JSON.stringify(stored)));
        cache.set(info.digest, stored);
        return strip(stored);
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async get(digest) {
      const s = cache.get(digest);
      if (s === undefined) return undefined;
      const log = await store.log(`${prefix}/${digest}`);
      const entries = await log.read(s.firstSeq, s.chunks);
      if (entries.length !== s.chunks) throw new ForgeError('STATE_CORRUPT', `package ${digest}: ${entries.length} of ${s.chunks} chunks found`);
      return entries.length === 1 ? entries[0]!.data : concatBytes(...entries.map((e) => e.data));
    },
    async info(digest) {
      const s = cache.get(digest);
      return s === undefined ? undefined : strip(s);
    },
    async list() {
      return [...cache.values()].sort((a, b) => a.uploadedAt - b.uploadedAt || a.digest.localeCompare(b.digest)).map(strip);
    },
  };
}
