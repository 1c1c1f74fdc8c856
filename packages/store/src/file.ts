import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ForgeError, isForgeError, utf8 } from '@forgeone/common';
import type { AppendBatchResult, AppendLog, AppendResult, KvMap, LogEntry, LogRecordInput, Store, StoreLimits } from './Store.js';
import { crc32 } from './crc32.js';
import {
  FRAME_HEADER_BYTES,
  corrupt,
  encodeFrames,
  encodeHeader,
  ioError,
  readExact,
  scanFile,
  u32,
  writeFully,
} from './frames.js';
import type { FileHeader } from './frames.js';
import { acquireLock, isAlive } from './lock.js';
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

/** What {@link FileStoreOptions.onRecover} is told when opening a file cut off a torn tail. */
export interface RecoveryEvent {
  /** `log` or `kv`. */
  readonly kind: 'log' | 'kv';
  /** The log's or namespace's name. */
  readonly name: string;
  /** The file's path. */
  readonly file: string;
  /** Where the torn frame started: the file's new length. */
  readonly offset: number;
  /** How many bytes were cut off. */
  readonly droppedBytes: number;
  /** What was wrong with the torn frame. */
  readonly reason: string;
}

/** Options of {@link createFileStore}. */
export interface FileStoreOptions {
  /** The store's directory; created when missing. One process at a time may open it. */
  readonly dir: string;
  /** Largest log record in bytes (default 16 MiB, at most 256 MiB). */
  readonly maxRecordBytes?: number;
  /** Largest value in bytes (default 1 MiB, at most 256 MiB). */
  readonly maxValueBytes?: number;
  /**
   * A namespace's file is compacted when its garbage (overwritten and deleted entries) reaches this many
   * bytes and also exceeds its live data (default 1 MiB).
   */
  readonly compactMinGarbageBytes?: number;
  /**
   * Called when opening a log or namespace cut off a torn tail: the last, unacknowledged write of a process
   * or machine that died mid-write. Nothing acknowledged is lost; this is for operators' logs.
   */
  readonly onRecover?: (event: RecoveryEvent) => void;
}

/** The most bytes one group commit writes (a single larger record is still written alone). */
const GROUP_BYTES = 4 * 1024 * 1024;

// --- durable directory operations -----------------------------------------------------------------

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Windows cannot open or sync a directory; its renames are durable by other means.
    if (process.platform !== 'win32') throw ioError('sync directory', dir, e);
  } finally {
    await fh?.close();
  }
}

/** Create `path` holding `content` so that it either exists complete and durable or not at all. */
async function createFileAtomically(path: string, dir: string, content: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await writeFully(fh, content, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}

/**
 * A file name for a log or namespace name: letters `a-z`, digits, `.` and `-` stay; anything else
 * (upper case, `_`, `/`) becomes `_` and two hex digits, so names that differ only in case get different
 * files on case-insensitive file systems and the directory stays flat. Long results use a hash instead;
 * the exact name is in the file's header either way.
 */
function fileNameFor(name: string): string {
  let out = '';
  for (const ch of name) out += /[a-z0-9.-]/.test(ch) ? ch : `_${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
  return out.length <= 200 ? out : `~${createHash('sha256').update(name).digest('hex')}`;
}

// --- group commit -----------------------------------------------------------------------------------

/** One unit of work for a {@link GroupWriter} (internal; exported for tests). */
export interface Job {
  /** Called in submission order while a group is built: the payloads to write (possibly none). */
  prepare(): Uint8Array[];
  /** Called in submission order once the group is durable, with the file offset of each of its frames. */
  done(offsets: number[]): void;
  /** Called when the job cannot be done. */
  fail(error: unknown): void;
}

/**
 * Serialises the writes to one file. Jobs queue up while a write is in flight; the next write takes all of
 * them (up to {@link GROUP_BYTES}) as one buffer, one `write` and one `fdatasync`: concurrent appends share
 * a sync (group commit) and never interleave. After a failed write or sync the file's state is unknown
 * (a failed fsync may even have dropped dirty pages), so the writer refuses everything after it; reopening
 * the store rescans the file.
 */
export class GroupWriter {
  fh: FileHandle;
  /** The end of the durable data; the next write goes here. */
  end: number;
  readonly #file: string;
  readonly #afterGroup: (ok: boolean) => Promise<void>;
  readonly #queue: Job[] = [];
  #running: Promise<void> = Promise.resolve();
  #active = false;
  #broken: ForgeError | undefined;

  constructor(fh: FileHandle, end: number, file: string, afterGroup: (ok: boolean) => Promise<void> = async () => undefined) {
    this.fh = fh;
    this.end = end;
    this.#file = file;
    this.#afterGroup = afterGroup;
  }

  submit(job: Job): void {
    if (this.#broken !== undefined) {
      job.fail(this.#broken);
      return;
    }
    this.#queue.push(job);
    if (!this.#active) {
      this.#active = true;
      this.#running = this.#drain();
    }
  }

  /** Resolves when nothing is queued or in flight. */
  async idle(): Promise<void> {
    while (this.#active) await this.#running;
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (this.#queue.length === 0 || this.#broken !== undefined) {
        // Cleared in the same turn as the queue is found empty, so a job submitted later starts a new drain.
        this.#active = false;
        return;
      }
      const group: { job: Job; payloads: Uint8Array[] }[] = [];
      let bytes = 0;
      while (this.#queue.length > 0 && (group.length === 0 || bytes < GROUP_BYTES)) {
        const job = this.#queue.shift()!;
        let payloads: Uint8Array[];
        try {
          payloads = job.prepare();
        } catch (e) {
          job.fail(e);
          continue;
        }
        for (const p of payloads) bytes += FRAME_HEADER_BYTES + p.length;
        group.push({ job, payloads });
      }
      const start = this.end;
      try {
        if (bytes > 0) {
          const buffer = encodeFrames(group.flatMap((g) => g.payloads));
          await writeFully(this.fh, buffer, start);
          await this.fh.datasync();
          this.end = start + buffer.length;
        }
      } catch (e) {
        this.#broken = new ForgeError('IO_ERROR', `writing ${this.#file} failed; no further writes are accepted until the store is reopened: ${(e as Error).message}`, {
          cause: e,
          details: { file: this.#file },
        });
        for (const g of group) g.job.fail(this.#broken);
        for (const job of this.#queue.splice(0)) job.fail(this.#broken);
        await this.#afterGroup(false).catch(() => undefined);
        continue;
      }
      let o = start;
      for (const { job, payloads } of group) {
        const offsets = payloads.map((p) => {
          const at = o;
          o += FRAME_HEADER_BYTES + p.length;
          return at;
        });
        job.done(offsets);
      }
      try {
        await this.#afterGroup(true);
      } catch (e) {
        this.#broken = isForgeError(e) ? e : ioError('maintaining', this.#file, e);
        for (const job of this.#queue.splice(0)) job.fail(this.#broken);
      }
    }
  }
}

// --- logs -------------------------------------------------------------------------------------------

class FileLog implements AppendLog {
  readonly name: string;
  readonly #store: FileStore;
  readonly #file: string;
  readonly #writer: GroupWriter;
  /** Start offset of each durable record; `#end` closes the last one. */
  #offsets: Float64Array;
  #count: number;
  #end: number;

  constructor(store: FileStore, name: string, file: string, fh: FileHandle, offsets: Float64Array, count: number, end: number) {
    this.#store = store;
    this.name = name;
    this.#file = file;
    this.#offsets = offsets;
    this.#count = count;
    this.#end = end;
    this.#writer = new GroupWriter(fh, end, file);
  }

  static async open(store: FileStore, name: string, dir: string): Promise<FileLog> {
    const file = join(dir, `${fileNameFor(name)}.log`);
    const fh = await openOrCreate(file, dir, { format: 'forgeone-store', kind: 'log', version: 1, name });
    try {
      let offsets: Float64Array = new Float64Array(1024);
      let count = 0;
      const { end } = await scanAndRepair(store, fh, file, 'log', name, (offset) => {
        if (count === offsets.length) offsets = grow(offsets);
        offsets[count++] = offset;
      });
      return new FileLog(store, name, file, fh, offsets, count, end);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get length(): number {
    return this.#count;
  }

  /** Closes the file once every queued write is done. */
  async close(): Promise<void> {
    await this.#writer.idle();
    await this.#writer.fh.close();
  }

  #submit(payloads: Uint8Array[]): Promise<number> {
    return new Promise<number>((resolvePromise, reject) => {
      this.#writer.submit({
        prepare: () => payloads,
        done: (offsets) => {
          const first = this.#count;
          for (let i = 0; i < offsets.length; i++) {
            if (this.#count === this.#offsets.length) this.#offsets = grow(this.#offsets);
            this.#offsets[this.#count++] = offsets[i]!;
          }
          const last = payloads.length - 1;
          if (last >= 0) this.#end = offsets[last]! + FRAME_HEADER_BYTES + payloads[last]!.length;
          resolvePromise(first);
        },
        fail: reject,
      });
    });
  }

  async append(record: LogRecordInput): Promise<AppendResult> {
    this.#store.assertOpen();
    const bytes = toRecordBytes(record, this.#store.limits);
    return { seq: await this.#store.track(this.#submit([bytes])) };
  }

  async appendBatch(records: readonly LogRecordInput[]): Promise<AppendBatchResult> {
    this.#store.assertOpen();
    const batch = toRecordBatch(records, this.#store.limits);
    return { firstSeq: await this.#store.track(this.#submit(batch)), count: batch.length };
  }

  async read(fromSeq: number = 0, limit: number = Infinity): Promise<LogEntry[]> {
    this.#store.assertOpen();
    const from = checkCount('fromSeq', fromSeq);
    const n = checkCount('limit', limit, true);
    const to = Math.min(this.#count, from + n);
    if (from >= to) return [];
    return this.#store.track(this.#readRange(from, to));
  }

  async tail(n: number): Promise<LogEntry[]> {
    this.#store.assertOpen();
    const count = checkCount('n', n, true);
    return this.read(Math.max(0, this.#count - count));
  }

  async #readRange(from: number, to: number): Promise<LogEntry[]> {
    const start = this.#offsets[from]!;
    const stop = to < this.#count ? this.#offsets[to]! : this.#end;
    let bytes: Uint8Array;
    try {
      bytes = await readExact(this.#writer.fh, this.#file, start, stop - start);
    } catch (e) {
      throw isForgeError(e) ? e : ioError('reading', this.#file, e);
    }
    const out: LogEntry[] = [];
    let p = 0;
    for (let seq = from; seq < to; seq++) {
      const len = u32(bytes, p);
      const body = p + FRAME_HEADER_BYTES;
      if ((len ^ u32(bytes, p + 4)) >>> 0 !== 0xffffffff || body + len > bytes.length) {
        throw corrupt(this.#file, start + p, `damaged frame header of record ${seq}`);
      }
      const data = bytes.slice(body, body + len);
      if (crc32(data) !== u32(bytes, p + 8)) throw corrupt(this.#file, start + p, `checksum mismatch in record ${seq}`);
      out.push({ seq, data });
      p = body + len;
    }
    return out;
  }
}

function grow(a: Float64Array): Float64Array {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

async function openOrCreate(file: string, dir: string, header: FileHeader): Promise<FileHandle> {
  try {
    return await open(file, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('opening', file, e);
  }
  try {
    await createFileAtomically(file, dir, encodeHeader(header));
    return await open(file, 'r+');
  } catch (e) {
    throw isForgeError(e) ? e : ioError('creating', file, e);
  }
}

/** Scan a file; cut off a torn tail (durably) and report it. */
async function scanAndRepair(
  store: FileStore,
  fh: FileHandle,
  file: string,
  kind: 'log' | 'kv',
  name: string,
  onFrame: (offset: number, payload: Uint8Array) => void,
): Promise<{ end: number }> {
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (e) {
    throw ioError('reading', file, e);
  }
  let result;
  try {
    result = await scanFile(fh, file, size, { kind, name }, onFrame);
  } catch (e) {
    throw isForgeError(e) ? e : ioError('reading', file, e);
  }
  if (result.torn !== undefined) {
    try {
      await fh.truncate(result.torn.offset);
      await fh.sync();
    } catch (e) {
      throw ioError('truncating the torn tail of', file, e);
    }
    store.recovered({ kind, name, file, offset: result.torn.offset, droppedBytes: size - result.torn.offset, reason: result.torn.reason });
  }
  return { end: result.end };
}

// --- key-value namespaces -----------------------------------------------------------------------------

const OP_SET = 1;
const OP_DELETE = 2;

/** `[u8 op][u16 key length][key][value]`. */
function encodeOp(op: number, key: Uint8Array, value?: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 + key.length + (value?.length ?? 0));
  out[0] = op;
  out[1] = key.length & 0xff;
  out[2] = key.length >>> 8;
  out.set(key, 3);
  if (value !== undefined) out.set(value, 3 + key.length);
  return out;
}

interface Entry {
  readonly value: Uint8Array;
  /** The size of the frame that set it, so overwriting it can be counted as garbage. */
  readonly frameBytes: number;
}

class FileKv implements KvMap {
  readonly namespace: string;
  readonly #store: FileStore;
  readonly #file: string;
  readonly #dir: string;
  readonly #map: Map<string, Entry>;
  readonly #writer: GroupWriter;
  readonly #headerBytes: number;
  /** Changes of the group being written, so a `delete` queued behind a `set` sees it. */
  readonly #staged = new Map<string, Uint8Array | null>();
  #liveBytes: number;

  constructor(store: FileStore, namespace: string, file: string, dir: string, fh: FileHandle, map: Map<string, Entry>, headerBytes: number, end: number) {
    this.#store = store;
    this.namespace = namespace;
    this.#file = file;
    this.#dir = dir;
    this.#map = map;
    this.#headerBytes = headerBytes;
    let live = 0;
    for (const e of map.values()) live += e.frameBytes;
    this.#liveBytes = live;
    this.#writer = new GroupWriter(fh, end, file, (ok) => this.#afterGroup(ok));
  }

  static async open(store: FileStore, namespace: string, dir: string): Promise<FileKv> {
    const file = join(dir, `${fileNameFor(namespace)}.kv`);
    const fh = await openOrCreate(file, dir, { format: 'forgeone-store', kind: 'kv', version: 1, name: namespace });
    try {
      const map = new Map<string, Entry>();
      let headerBytes = -1;
      const decoder = new TextDecoder('utf-8', { fatal: true });
      const { end } = await scanAndRepair(store, fh, file, 'kv', namespace, (offset, payload) => {
        if (headerBytes < 0) headerBytes = offset;
        const op = payload[0];
        const klen = payload.length >= 3 ? payload[1]! | (payload[2]! << 8) : -1;
        if ((op !== OP_SET && op !== OP_DELETE) || klen < 1 || 3 + klen > payload.length || (op === OP_DELETE && 3 + klen !== payload.length)) {
          throw corrupt(file, offset, 'malformed key-value operation');
        }
        let key: string;
        try {
          key = decoder.decode(payload.subarray(3, 3 + klen));
        } catch {
          throw corrupt(file, offset, 'key is not UTF-8');
        }
        if (op === OP_SET) map.set(key, { value: payload.slice(3 + klen), frameBytes: FRAME_HEADER_BYTES + payload.length });
        else map.delete(key);
      });
      return new FileKv(store, namespace, file, dir, fh, map, headerBytes < 0 ? end : headerBytes, end);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.#writer.idle();
    await this.#writer.fh.close();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#store.assertOpen();
    checkKey(key);
    return this.#map.get(key)?.value.slice();
  }

  async list(prefix?: string): Promise<string[]> {
    this.#store.assertOpen();
    return sortedKeys(this.#map.keys(), checkPrefix(prefix));
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    this.#store.assertOpen();
    const k = checkKey(key);
    const v = checkValue(value, this.#store.limits);
    const payload = encodeOp(OP_SET, k, v);
    await this.#store.track(
      new Promise<void>((resolvePromise, reject) => {
        this.#writer.submit({
          prepare: () => {
            this.#staged.set(key, v);
            return [payload];
          },
          done: () => {
            const old = this.#map.get(key);
            if (old !== undefined) this.#liveBytes -= old.frameBytes;
            const frameBytes = FRAME_HEADER_BYTES + payload.length;
            this.#map.set(key, { value: v, frameBytes });
            this.#liveBytes += frameBytes;
            resolvePromise();
          },
          fail: reject,
        });
      }),
    );
  }

  async delete(key: string): Promise<boolean> {
    this.#store.assertOpen();
    const k = checkKey(key);
    return this.#store.track(
      new Promise<boolean>((resolvePromise, reject) => {
        let existed = false;
        this.#writer.submit({
          // Whether the key exists is decided in queue order, against the changes queued before this one.
          prepare: () => {
            const staged = this.#staged.get(key);
            existed = staged === undefined ? this.#map.has(key) : staged !== null;
            if (!existed) return [];
            this.#staged.set(key, null);
            return [encodeOp(OP_DELETE, k)];
          },
          done: () => {
            const old = this.#map.get(key);
            if (existed && old !== undefined) {
              this.#liveBytes -= old.frameBytes;
              this.#map.delete(key);
            }
            resolvePromise(existed);
          },
          fail: reject,
        });
      }),
    );
  }

  async #afterGroup(ok: boolean): Promise<void> {
    this.#staged.clear();
    if (!ok) return;
    const garbage = this.#writer.end - this.#headerBytes - this.#liveBytes;
    if (garbage >= this.#store.compactMinGarbageBytes && garbage > this.#liveBytes) await this.#compact();
  }

  /**
   * Rewrite the file with one `set` per live key: write a new file, sync it, rename it over the old one,
   * sync the directory. A crash at any point leaves either the old file or the new one, both complete.
   */
  async #compact(): Promise<void> {
    const tmp = `${this.#file}.tmp`;
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, 'w');
      const header = encodeHeader({ format: 'forgeone-store', kind: 'kv', version: 1, name: this.namespace });
      await writeFully(fh, header, 0);
      let pos = header.length;
      let chunk: Uint8Array[] = [];
      let chunkBytes = 0;
      const flush = async (): Promise<void> => {
        const buf = encodeFrames(chunk);
        await writeFully(fh!, buf, pos);
        pos += buf.length;
        chunk = [];
        chunkBytes = 0;
      };
      for (const [key, entry] of this.#map) {
        const payload = encodeOp(OP_SET, utf8(key), entry.value);
        chunk.push(payload);
        chunkBytes += payload.length;
        if (chunkBytes >= GROUP_BYTES) await flush();
      }
      if (chunk.length > 0) await flush();
      await fh.datasync();
      await fh.close();
      fh = undefined;
      await rename(tmp, this.#file);
      await fsyncDir(this.#dir);
      const fresh = await open(this.#file, 'r+');
      const old = this.#writer.fh;
      this.#writer.fh = fresh;
      this.#writer.end = pos;
      await old.close();
    } catch (e) {
      await fh?.close().catch(() => undefined);
      throw isForgeError(e) ? e : ioError('compacting', this.#file, e);
    }
  }
}

// --- the store ----------------------------------------------------------------------------------------

class FileStore implements Store {
  readonly limits: StoreLimits;
  readonly compactMinGarbageBytes: number;
  readonly #logDir: string;
  readonly #kvDir: string;
  readonly #release: () => Promise<void>;
  readonly #onRecover: ((event: RecoveryEvent) => void) | undefined;
  readonly #logs = new Map<string, Promise<FileLog>>();
  readonly #kvs = new Map<string, Promise<FileKv>>();
  readonly #inflight = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(dir: string, limits: StoreLimits, compactMinGarbageBytes: number, release: () => Promise<void>, onRecover: ((event: RecoveryEvent) => void) | undefined) {
    this.limits = limits;
    this.compactMinGarbageBytes = compactMinGarbageBytes;
    this.#logDir = join(dir, 'logs');
    this.#kvDir = join(dir, 'kv');
    this.#release = release;
    this.#onRecover = onRecover;
  }

  assertOpen(): void {
    if (this.#closed) throw closedError('the store');
  }

  /** Keep `close` waiting for an operation that has started. */
  track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    const forget = (): void => {
      this.#inflight.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  recovered(event: RecoveryEvent): void {
    this.#onRecover?.(event);
  }

  async log(name: string): Promise<AppendLog> {
    this.assertOpen();
    const n = checkName(name, 'log');
    return this.#openOnce(this.#logs, n, () => FileLog.open(this, n, this.#logDir));
  }

  async kv(namespace: string): Promise<KvMap> {
    this.assertOpen();
    const n = checkName(namespace, 'namespace');
    return this.#openOnce(this.#kvs, n, () => FileKv.open(this, n, this.#kvDir));
  }

  #openOnce<T>(cache: Map<string, Promise<T>>, name: string, opener: () => Promise<T>): Promise<T> {
    let p = cache.get(name);
    if (p === undefined) {
      p = this.track(opener());
      cache.set(name, p);
      // A failed open is not cached: the caller may fix the cause and try again.
      p.catch(() => cache.delete(name));
    }
    return p;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inflight]);
      const opened = await Promise.allSettled([...this.#logs.values(), ...this.#kvs.values()]);
      const errors: unknown[] = [];
      for (const r of opened) {
        if (r.status === 'fulfilled') await r.value.close().catch((e: unknown) => errors.push(e));
      }
      await this.#release().catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw ioError('closing', 'the store', errors[0]);
    })();
    return this.#closing;
  }
}

async function removeLeftovers(dir: string, match: (name: string) => boolean): Promise<void> {
  for (const name of await readdir(dir)) if (match(name)) await unlink(join(dir, name)).catch(() => undefined);
}

/**
 * Open (or create) the embedded, durable store in a directory: no server and no native module, only files.
 *
 * Each log is one file of checksummed frames, each key-value namespace a file of set/delete operations
 * replayed into memory on open and compacted when mostly garbage. `append`, `appendBatch`, `set` and
 * `delete` resolve only after `fdatasync`; concurrent calls share one write and one sync (group commit).
 * Opening a file repairs a torn tail left by a crash mid-write; damage anywhere else is `STATE_CORRUPT`.
 * Only one process may have a directory open: a lock file holds its pid, and a lock left by a dead process
 * is taken over.
 *
 * @param options - the directory, size limits, compaction threshold, recovery hook
 * @returns the open store; close it with {@link Store.close}
 * @throws ForgeError `IO_ERROR` "store is locked by pid N" when another live process has it open, or when
 *   the directory cannot be created; `INVALID_ARGUMENT` for bad options
 * @example
 * ```ts
 * const store = await createFileStore({ dir: '/var/lib/forgeone/store' });
 * const audit = await store.log('audit');
 * const { seq } = await audit.append('policy bundle 7 activated'); // durable now
 * const state = await store.kv('containers');
 * await state.set('ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H', new TextEncoder().encode('running'));
 * await store.close();
 * ```
 */
export async function createFileStore(options: FileStoreOptions): Promise<Store> {
  if (typeof options !== 'object' || options === null || typeof options.dir !== 'string' || options.dir === '') {
    throw new ForgeError('INVALID_ARGUMENT', 'createFileStore needs { dir }');
  }
  const limits = resolveLimits(options);
  const compact = options.compactMinGarbageBytes ?? 1024 * 1024;
  if (!Number.isSafeInteger(compact) || compact < 0) {
    throw new ForgeError('INVALID_ARGUMENT', `compactMinGarbageBytes must be a non-negative integer, got ${String(compact)}`);
  }
  if (options.onRecover !== undefined && typeof options.onRecover !== 'function') {
    throw new ForgeError('INVALID_ARGUMENT', 'onRecover must be a function');
  }
  const dir = resolve(options.dir);
  try {
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined) await fsyncDir(resolve(created, '..'));
  } catch (e) {
    throw isForgeError(e) ? e : ioError('creating', dir, e);
  }
  let release: () => Promise<void>;
  try {
    release = await acquireLock(dir);
  } catch (e) {
    throw isForgeError(e) ? e : ioError('locking', dir, e);
  }
  try {
    for (const sub of ['logs', 'kv']) {
      const path = join(dir, sub);
      if ((await mkdir(path, { recursive: true })) !== undefined) await fsyncDir(dir);
      // Files a crash left half-made (new files and compactions are written as *.tmp, then renamed).
      await removeLeftovers(path, (n) => n.endsWith('.tmp'));
    }
    // Temporary lock files of processes that died while taking the lock (their pid is in the name).
    await removeLeftovers(dir, (n) => {
      const m = /^LOCK\.(?:stale\.)?(\d+)\.[0-9a-f]+\.tmp$/.exec(n);
      return m !== null && !isAlive(Number(m[1]));
    });
  } catch (e) {
    await release().catch(() => undefined);
    throw isForgeError(e) ? e : ioError('preparing', dir, e);
  }
  return new FileStore(dir, limits, compact, release, options.onRecover);
}
