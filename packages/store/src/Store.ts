/**
 * The storage contract of the kernel: append-only logs (execution traces, the audit log) and key-value
 * namespaces (container state, per-container data). Implementations: {@link createFileStore} (embedded,
 * durable), {@link createMemoryStore} (tests). Every implementation passes the contract suite of
 * `@forgeone/store/testing`.
 *
 * Errors are `ForgeError`s from `@forgeone/common`: `INVALID_ARGUMENT` (malformed name, key, record or
 * range), `LIMIT_EXCEEDED` (record, key or value too large), `IO_ERROR` (a file operation failed, the
 * store is locked by another process, or it is closed), `STATE_CORRUPT` (a persisted file is damaged).
 *
 * @packageDocumentation
 */
/** A record as given to {@link AppendLog.append}: bytes, or a string stored as its UTF-8 encoding. */
export type LogRecordInput = Uint8Array | string;

/** One record read back from an {@link AppendLog}. */
export interface LogEntry {
  /** Its sequence number: 0 for the first record of the log, then consecutive. */
  readonly seq: number;
  /** Its bytes (a copy: changing them changes nothing stored). */
  readonly data: Uint8Array;
}

/** The outcome of {@link AppendLog.append}. */
export interface AppendResult {
  /** The sequence number given to the record. */
  readonly seq: number;
}

/** The outcome of {@link AppendLog.appendBatch}. */
export interface AppendBatchResult {
  /** The sequence number of the first record of the batch (the log's length before it when the batch is empty). */
  readonly firstSeq: number;
  /** How many records were appended; they hold `firstSeq` … `firstSeq + count - 1`. */
  readonly count: number;
}

/**
 * An append-only log of byte records, numbered from 0. Appends are applied in the order they are called,
 * concurrent ones included, and never interleave. A returned promise resolves only once its records are
 * durable (for a persistent store: written and synced), and readers only ever see such records.
 */
export interface AppendLog {
  /** The log's name, as given to {@link Store.log}. */
  readonly name: string;
  /** How many records are durable; also the sequence number the next record will get. */
  readonly length: number;
  /**
   * Append one record.
   * @param record - bytes, or a string (stored as UTF-8)
   * @returns its sequence number, once the record is durable
   * @throws ForgeError `INVALID_ARGUMENT` for a record that is neither bytes nor a well-formed string,
   *   `LIMIT_EXCEEDED` over {@link StoreLimits.maxRecordBytes}, `IO_ERROR` when the write fails or the store is closed
   */
  append(record: LogRecordInput): Promise<AppendResult>;
  /**
   * Append many records at once, with one sync for all of them (group commit). The batch is validated
   * whole before anything is written: one bad record rejects the batch and appends nothing.
   * @param records - the records, in order
   * @returns the first sequence number and the count, once every record is durable
   * @throws ForgeError as {@link AppendLog.append}
   */
  appendBatch(records: readonly LogRecordInput[]): Promise<AppendBatchResult>;
  /**
   * Read durable records in order.
   * @param fromSeq - the first sequence number to return (default 0); past the end gives an empty array
   * @param limit - the most records to return (default: all)
   * @returns the records with `seq >= fromSeq`, at most `limit` of them
   * @throws ForgeError `INVALID_ARGUMENT` when `fromSeq` or `limit` is not a non-negative integer,
   *   `STATE_CORRUPT` when stored bytes no longer match their checksum, `IO_ERROR` when closed
   */
  read(fromSeq?: number, limit?: number): Promise<LogEntry[]>;
  /**
   * The last records of the log, oldest first.
   * @param n - how many (all of them when the log is shorter)
   * @returns up to `n` records
   * @throws ForgeError as {@link AppendLog.read}
   */
  tail(n: number): Promise<LogEntry[]>;
}

/**
 * A map from string keys to byte values. Operations apply in the order they are called; `set` and
 * `delete` resolve once the change is durable, and `get`/`list` see only durable changes.
 */
export interface KvMap {
  /** The namespace's name, as given to {@link Store.kv}. */
  readonly namespace: string;
  /**
   * Read a value.
   * @param key - the key
   * @returns a copy of the value, or undefined when the key is absent
   * @throws ForgeError `INVALID_ARGUMENT` / `LIMIT_EXCEEDED` for a malformed or oversized key, `IO_ERROR` when closed
   */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Set a value (the bytes are copied).
   * @param key - a non-empty string of at most {@link StoreLimits.maxKeyBytes} UTF-8 bytes
   * @param value - at most {@link StoreLimits.maxValueBytes} bytes; may be empty
   * @returns once the change is durable
   * @throws ForgeError `INVALID_ARGUMENT` for a malformed key or a value that is not a `Uint8Array`,
   *   `LIMIT_EXCEEDED` for an oversized key or value, `IO_ERROR` when the write fails or the store is closed
   */
  set(key: string, value: Uint8Array): Promise<void>;
  /**
   * Delete a key.
   * @param key - the key
   * @returns whether the key existed, once the deletion is durable
   * @throws ForgeError as {@link KvMap.set}
   */
  delete(key: string): Promise<boolean>;
  /**
   * The keys, sorted ascending (JavaScript string order).
   * @param prefix - only keys starting with it (default: all)
   * @returns the matching keys
   * @throws ForgeError `INVALID_ARGUMENT` for a prefix that is not a string, `IO_ERROR` when closed
   */
  list(prefix?: string): Promise<string[]>;
}

/** The size limits a store enforces. */
export interface StoreLimits {
  /** Largest log record, in bytes. */
  readonly maxRecordBytes: number;
  /** Largest key, in UTF-8 bytes (1024). */
  readonly maxKeyBytes: number;
  /** Largest value, in bytes. */
  readonly maxValueBytes: number;
}

/**
 * Logs and key-value namespaces, each opened by name.
 *
 * Names of logs and namespaces: 1 to 128 characters from `A-Z a-z 0-9 _ . / -`, starting with a letter
 * or digit, `/` separating non-empty segments, no `.` or `..` segment — e.g. `audit`,
 * `trace/ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H`. Logs and namespaces live apart: a log and a namespace may share a name.
 *
 * @see {@link createFileStore}, {@link createMemoryStore}
 */
export interface Store {
  /** The limits this store enforces. */
  readonly limits: StoreLimits;
  /**
   * Open (or create) a log. Opening the same name again gives the same log.
   * @param name - the log's name
   * @returns the log, ready to use
   * @throws ForgeError `INVALID_ARGUMENT` for a malformed name, `STATE_CORRUPT` when its file is damaged
   *   (other than a torn tail, which is repaired), `IO_ERROR` when a file operation fails or the store is closed
   */
  log(name: string): Promise<AppendLog>;
  /**
   * Open (or create) a key-value namespace. Opening the same name again gives the same map.
   * @param namespace - the namespace's name
   * @returns the map, ready to use
   * @throws ForgeError as {@link Store.log}
   */
  kv(namespace: string): Promise<KvMap>;
  /**
   * Finish pending writes, release files and the directory lock. Further calls on the store, its logs and
   * maps reject with `IO_ERROR`. Closing twice is harmless.
   * @returns once everything is closed
   */
  close(): Promise<void>;
}
