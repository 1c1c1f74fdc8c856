import type { AppendBatchResult, AppendLog, AppendResult, KvMap, LogEntry, LogRecordInput, Store, StoreLimits } from './Store.js';
import {
  checkCount,
  checkKey,
  checkName,
  checkPrefix,
  checkValue,
  closedError,
  resolveLimits,
  sortedKeys,
  toRecordBatch,
  toRecordBytes,
} from './validate.js';

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Largest log record in bytes (default 16 MiB, at most 256 MiB). */
  readonly maxRecordBytes?: number;
  /** Largest value in bytes (default 1 MiB, at most 256 MiB). */
  readonly maxValueBytes?: number;
}

class MemoryLog implements AppendLog {
  readonly #records: Uint8Array[] = [];
  readonly #owner: MemoryStore;
  readonly name: string;

  constructor(owner: MemoryStore, name: string) {
    this.#owner = owner;
    this.name = name;
  }

  get length(): number {
    return this.#records.length;
  }

  async append(record: LogRecordInput): Promise<AppendResult> {
    this.#owner.assertOpen();
    const bytes = toRecordBytes(record, this.#owner.limits);
    return { seq: this.#records.push(bytes) - 1 };
  }

  async appendBatch(records: readonly LogRecordInput[]): Promise<AppendBatchResult> {
    this.#owner.assertOpen();
    const batch = toRecordBatch(records, this.#owner.limits);
    const firstSeq = this.#records.length;
    for (const r of batch) this.#records.push(r);
    return { firstSeq, count: batch.length };
  }

  async read(fromSeq: number = 0, limit: number = Infinity): Promise<LogEntry[]> {
    this.#owner.assertOpen();
    const from = checkCount('fromSeq', fromSeq);
    const n = checkCount('limit', limit, true);
    const to = Math.min(this.#records.length, from + n);
    const out: LogEntry[] = [];
    for (let seq = from; seq < to; seq++) out.push({ seq, data: this.#records[seq]!.slice() });
    return out;
  }

  async tail(n: number): Promise<LogEntry[]> {
    this.#owner.assertOpen();
    const count = checkCount('n', n, true);
    return this.read(Math.max(0, this.#records.length - count));
  }
}

class MemoryKv implements KvMap {
  readonly #map = new Map<string, Uint8Array>();
  readonly #owner: MemoryStore;
  readonly namespace: string;

  constructor(owner: MemoryStore, namespace: string) {
    this.#owner = owner;
    this.namespace = namespace;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#owner.assertOpen();
    checkKey(key);
    return this.#map.get(key)?.slice();
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    this.#owner.assertOpen();
    checkKey(key);
    this.#map.set(key, checkValue(value, this.#owner.limits));
  }

  async delete(key: string): Promise<boolean> {
    this.#owner.assertOpen();
    checkKey(key);
    return this.#map.delete(key);
  }

  async list(prefix?: string): Promise<string[]> {
    this.#owner.assertOpen();
    return sortedKeys(this.#map.keys(), checkPrefix(prefix));
  }
}

class MemoryStore implements Store {
  readonly limits: StoreLimits;
  readonly #logs = new Map<string, MemoryLog>();
  readonly #kvs = new Map<string, MemoryKv>();
  #closed = false;

  constructor(limits: StoreLimits) {
    this.limits = limits;
  }

  assertOpen(): void {
    if (this.#closed) throw closedError('the store');
  }

  async log(name: string): Promise<AppendLog> {
    this.assertOpen();
    const n = checkName(name, 'log');
    let log = this.#logs.get(n);
    if (log === undefined) this.#logs.set(n, (log = new MemoryLog(this, n)));
    return log;
  }

  async kv(namespace: string): Promise<KvMap> {
    this.assertOpen();
    const n = checkName(namespace, 'namespace');
    let kv = this.#kvs.get(n);
    if (kv === undefined) this.#kvs.set(n, (kv = new MemoryKv(this, n)));
    return kv;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/**
 * Create a store that keeps everything in memory, for tests and for kernels that need no persistence.
 * It enforces the same names, limits, ordering and copying rules as {@link createFileStore}; nothing
 * survives {@link Store.close}.
 * @param options - size limits
 * @returns an empty store
 * @throws ForgeError `INVALID_ARGUMENT` for a limit that is not an integer from 1 to 256 MiB
 * @example
 * ```ts
 * const store = createMemoryStore();
 * const audit = await store.log('audit');
 * await audit.append('container ctr_1 started');
 * console.log(audit.length); // 1
 * ```
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  return new MemoryStore(resolveLimits(options));
}
