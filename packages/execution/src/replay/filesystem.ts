// The filesystem of a replay: descriptors and their answers come from the record, never from a host
// directory. Also the result encodings `wasi:filesystem` calls record (component/filesystem.ts) so that a
// replay can answer them: what a call returns and cannot be recomputed from the guest's arguments.
import { canonicalPath } from '../gate/canonical.js';
import type { DirEntry, FileStat, FsDescriptor, PathGuard } from '../fs/confined.js';
import { ALL_RIGHTS, DIR_RIGHTS, Errno, Filetype, WRITE_RIGHTS } from '../fs/constants.js';
import type { ReplayRecord } from './gate.js';

/** Bytes of a recorded `wasi:filesystem/stat` result ({@link encodeStat}). */
export const STAT_RESULT_BYTES = 64;
/** Bytes of a recorded open result ({@link encodeOpened}). */
export const OPEN_RESULT_BYTES = 8;
/** Bytes of a recorded short-write count ({@link encodeCount}). */
export const COUNT_RESULT_BYTES = 4;

/** The result code a stream records when its source or sink failed, or at end of stream (`RESULT_FAILED`). */
const STREAM_FAILED = 1;

/**
 * Write a file's metadata as a `wasi:filesystem/stat` records it: eight u64 little-endian (dev, ino,
 * filetype, nlink, size, atim, mtim, ctim). Allocation-free.
 * @param st - the metadata
 * @param out - at least {@link STAT_RESULT_BYTES} bytes
 * @returns the first {@link STAT_RESULT_BYTES} bytes of `out`
 */
export function encodeStat(st: FileStat, out: Uint8Array): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, STAT_RESULT_BYTES);
  v.setBigUint64(0, BigInt.asUintN(64, st.dev), true);
  v.setBigUint64(8, BigInt.asUintN(64, st.ino), true);
  v.setBigUint64(16, BigInt(st.filetype), true);
  v.setBigUint64(24, BigInt.asUintN(64, st.nlink), true);
  v.setBigUint64(32, BigInt.asUintN(64, st.size), true);
  v.setBigUint64(40, BigInt.asUintN(64, st.atim), true);
  v.setBigUint64(48, BigInt.asUintN(64, st.mtim), true);
  v.setBigUint64(56, BigInt.asUintN(64, st.ctim), true);
  return out.length === STAT_RESULT_BYTES ? out : out.subarray(0, STAT_RESULT_BYTES);
}

/**
 * Read metadata recorded by {@link encodeStat}.
 * @param bytes - the recorded bytes
 * @param out - filled in
 * @returns false when the bytes are not a recorded stat
 */
export function decodeStat(bytes: Uint8Array, out: FileStat): boolean {
  if (bytes.length !== STAT_RESULT_BYTES) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  out.dev = v.getBigUint64(0, true);
  out.ino = v.getBigUint64(8, true);
  out.filetype = Number(v.getBigUint64(16, true) & 0xffn);
  out.nlink = v.getBigUint64(24, true);
  out.size = v.getBigUint64(32, true);
  out.atim = v.getBigUint64(40, true);
  out.mtim = v.getBigUint64(48, true);
  out.ctim = v.getBigUint64(56, true);
  return true;
}

/**
 * What an open records: the new descriptor's WASI filetype (u32) and rights (u32), little-endian. The
 * descriptor's guest path is the open's recorded path.
 * @param d - the opened descriptor
 * @param out - at least {@link OPEN_RESULT_BYTES} bytes
 * @returns the first {@link OPEN_RESULT_BYTES} bytes of `out`
 */
export function encodeOpened(d: Pick<FsDescriptor, 'filetype' | 'rightsBase'>, out: Uint8Array): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, OPEN_RESULT_BYTES);
  v.setUint32(0, d.filetype >>> 0, true);
  v.setUint32(4, d.rightsBase >>> 0, true);
  return out.length === OPEN_RESULT_BYTES ? out : out.subarray(0, OPEN_RESULT_BYTES);
}

/**
 * What a short write records: the bytes written (u32 little-endian). A write of the whole buffer records
 * nothing (the count is the argument's size).
 * @param n - bytes written
 * @param out - at least {@link COUNT_RESULT_BYTES} bytes
 * @returns the first {@link COUNT_RESULT_BYTES} bytes of `out`
 */
export function encodeCount(n: number, out: Uint8Array): Uint8Array {
  new DataView(out.buffer, out.byteOffset, COUNT_RESULT_BYTES).setUint32(0, n >>> 0, true);
  return out.length === COUNT_RESULT_BYTES ? out : out.subarray(0, COUNT_RESULT_BYTES);
}

/**
 * What a directory listing records: JSON `[[filetype, name], ...]` (names as the guest sees them, without
 * `.` and `..`), in the order listed.
 * @param entries - WASI filetypes and names
 * @returns the bytes
 */
export function encodeEntries(entries: readonly { readonly type: number; readonly name: string }[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(entries.map((e) => [e.type, e.name])));
}

/**
 * Read a listing recorded by {@link encodeEntries}.
 * @param bytes - the recorded bytes
 * @returns the entries, or null when the bytes are not a recorded listing
 */
export function decodeEntries(bytes: Uint8Array): { type: number; name: string }[] | null {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  const out: { type: number; name: string }[] = [];
  for (const e of v as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2 || !Number.isInteger(e[0]) || typeof e[1] !== 'string') return null;
    out.push({ type: e[0] as number, name: e[1] as string });
  }
  return out;
}

/** What the replay filesystem needs of the replay gate (`ReplayGate` fits). */
export interface ReplayFsGate {
  /** The record of the call in progress, or null between calls. */
  readonly current: ReplayRecord | null;
  /**
   * The next record the guest has not entered yet.
   * @returns the record, or null after the last one
   */
  peek(): ReplayRecord | null;
  /**
   * Stop the replay: the record cannot answer the call in progress.
   * @param why - what is missing
   * @returns never
   */
  unanswerable(why: string): never;
}

/** A directory the original run was granted, as the replay needs it: its guest path (the host path is never used). */
export interface ReplayPreopen {
  /** The absolute guest path. */
  readonly guestPath: string;
  /** Whether it was granted read-only. */
  readonly readOnly?: boolean;
}

class ReplayEntry implements FsDescriptor {
  readonly rightsInheriting: number;
  readonly fdflags = 0;
  constructor(
    readonly filetype: number,
    readonly guestPath: string,
    readonly rightsBase: number,
    readonly preopen: string | undefined,
  ) {
    this.rightsInheriting = rightsBase;
  }
}

const encoder = new TextEncoder();

/**
 * The filesystem of a replay, in the shape of the confined layer (`ConfinedFs`) the `wasi:filesystem`
 * descriptors call: every operation answers from the record of the call in progress and touches no host
 * directory. Descriptors are replay-side objects: a preopen has the guest path it was granted, an opened
 * file the path, type and rights its open recorded.
 *
 * Path operations cross the gate on the path the original run resolved (symlinks inside the preopen
 * followed), taken from the next record when its lexical path (its `detail`, or its path when that equals
 * the lexical one) is the one the guest asks for now; otherwise on the guest's own path, and the replay
 * gate reports the divergence (`arguments`, or `syscall` for another call).
 */
export class ReplayFs {
  readonly #gate: ReplayFsGate;
  readonly #entries: (ReplayEntry | undefined)[] = [];

  /**
   * @param gate - the replay gate
   * @param preopens - the directories the original run was granted, in order (descriptors 0, 1, ...)
   */
  constructor(gate: ReplayFsGate, preopens: readonly ReplayPreopen[]) {
    this.#gate = gate;
    for (const p of preopens) {
      const guestPath = canonicalPath(p.guestPath);
      const rights = p.readOnly === true ? ALL_RIGHTS & ~WRITE_RIGHTS : ALL_RIGHTS;
      this.#entries.push(new ReplayEntry(Filetype.DIRECTORY, guestPath, rights & DIR_RIGHTS, guestPath));
    }
  }

  /**
   * A replay-side descriptor.
   * @param fd - its number
   * @returns the descriptor, or undefined when it is not open
   */
  descriptor(fd: number): FsDescriptor | undefined {
    return this.#entries[fd];
  }

  /**
   * Forget a descriptor the guest dropped.
   * @param fd - its number
   * @returns 0
   */
  close(fd: number): number {
    if (this.#entries[fd]?.preopen === undefined) this.#entries[fd] = undefined;
    return 0;
  }

  /** Nothing to release: no host descriptor was opened. */
  dispose(): void {
    this.#entries.length = 0;
  }

  // The record of the call in progress (the caller entered the gate and it allowed the call).
  #current(what: string): ReplayRecord {
    const rec = this.#gate.current;
    return rec ?? this.#gate.unanswerable(`no record is in progress to answer ${what}`);
  }

  // The recorded outcome as the confined layer returns it: 0, or a negated errno.
  #result(what: string): number {
    const r = this.#current(what).result;
    return r === 0 ? 0 : -Math.abs(r);
  }

  /**
   * `pread` answered with the recorded bytes; a stream's recorded failure reads as the end of the file.
   * @param _fd - descriptor
   * @param buf - destination
   * @param off - offset in `buf`
   * @param len - most bytes
   * @returns bytes read, or a negated errno
   */
  pread(_fd: number, buf: Uint8Array, off: number, len: number): number {
    const rec = this.#current('a read');
    if (rec.result === STREAM_FAILED) return 0;
    if (rec.result !== 0) return -Math.abs(rec.result);
    const bytes = rec.resultBytes;
    if (bytes === null) return this.#gate.unanswerable('the record holds no bytes for this read');
    if (bytes.length > len || off + bytes.length > buf.length) return this.#gate.unanswerable(`the record holds ${bytes.length} bytes, the guest asked for at most ${len}`);
    buf.set(bytes, off);
    return bytes.length;
  }

  /**
   * `pwrite` answered from the record: the whole buffer, or the recorded short count.
   * @param _fd - descriptor
   * @param _buf - the bytes (not written anywhere)
   * @param _off - offset in `buf`
   * @param len - bytes to write
   * @returns bytes written, or a negated errno
   */
  pwrite(_fd: number, _buf: Uint8Array, _off: number, len: number): number {
    const rec = this.#current('a write');
    if (rec.result === STREAM_FAILED) return -Errno.IO;
    if (rec.result !== 0) return -Math.abs(rec.result);
    const b = rec.resultBytes;
    if (b !== null && b.length === COUNT_RESULT_BYTES) return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
    return len;
  }

  /**
   * `fstat` answered with the recorded metadata (an append's position lookup inside a write gets zeros: the
   * replay writes nowhere).
   * @param _fd - descriptor
   * @param out - filled in
   * @returns 0, or a negated errno
   */
  stat(_fd: number, out: FileStat): number {
    const rec = this.#current('a stat');
    if (rec.syscall !== 'wasi:filesystem/stat') {
      out.dev = out.ino = out.nlink = out.size = out.atim = out.mtim = out.ctim = 0n;
      out.filetype = 0;
      return 0;
    }
    return this.#statFrom(rec, out);
  }

  #statFrom(rec: ReplayRecord, out: FileStat): number {
    if (rec.result !== 0) return -Math.abs(rec.result);
    if (rec.resultBytes === null || !decodeStat(rec.resultBytes, out)) return this.#gate.unanswerable('the record holds no file metadata for this stat');
    return 0;
  }

  /**
   * A directory listing answered from the record.
   * @returns the entries, or a negated errno
   */
  readdir(): readonly DirEntry[] | number {
    const rec = this.#current('a directory listing');
    if (rec.result !== 0) return -Math.abs(rec.result);
    const entries = rec.resultBytes === null ? null : decodeEntries(rec.resultBytes);
    if (entries === null) return this.#gate.unanswerable('the record holds no directory entries for this listing');
    return entries.map((e) => ({ name: encoder.encode(e.name), ino: 0n, type: e.type }));
  }

  /** @returns the recorded outcome of `set-size` */
  truncate(): number {
    return this.#result('set-size');
  }

  /** @returns the recorded outcome of `set-times` */
  utimes(): number {
    return this.#result('set-times');
  }

  /** @returns the recorded outcome of `sync` */
  sync(): number {
    return this.#result('sync');
  }

  /** @returns the recorded outcome of `advise` */
  advise(): number {
    return this.#result('advise');
  }

  // Cross the gate for one path of an operation: on the path the original run resolved when the next
  // record is this lexical path, else on the lexical path itself (and the gate reports the divergence).
  #cross(dirfd: number, path: string, index: number, guard: PathGuard | undefined): ReplayRecord | number {
    if (guard === undefined) return this.#gate.unanswerable('a replayed path operation needs its guard');
    const dir = this.#entries[dirfd];
    let lexical: string;
    try {
      lexical = canonicalPath(path, dir?.guestPath ?? '/');
    } catch {
      lexical = path;
    }
    const next = this.#gate.peek();
    const recorded = next === null ? undefined : (next.args.detail ?? next.args.path);
    const resolved = next !== null && next.args.path !== undefined && recorded === lexical ? next.args.path : lexical;
    if (!guard(resolved, index)) return -Errno.ACCES;
    return this.#current('a path operation');
  }

  #one(dirfd: number, path: string, guard: PathGuard | undefined, ok?: (rec: ReplayRecord) => number): number {
    const rec = this.#cross(dirfd, path, 0, guard);
    if (typeof rec === 'number') return rec;
    if (rec.result !== 0) return -Math.abs(rec.result);
    return ok === undefined ? 0 : ok(rec);
  }

  #two(da: number, pa: string, db: number, pb: string, guard: PathGuard | undefined): number {
    const first = this.#cross(da, pa, 0, guard);
    if (typeof first === 'number') return first;
    // The original run closed the first crossing with success only when it went on to the second path.
    if (first.result !== 0) return -Math.abs(first.result);
    const second = this.#cross(db, pb, 1, guard);
    if (typeof second === 'number') return second;
    return second.result === 0 ? 0 : -Math.abs(second.result);
  }

  /**
   * `path_open` answered from the record: a new replay-side descriptor with the recorded path, type and rights.
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param _lookupflags - unused (the record holds the resolution)
   * @param _oflags - unused
   * @param _rightsBase - unused (the record holds the rights)
   * @param _rightsInheriting - unused
   * @param _fdflags - unused
   * @param guard - the gate crossing
   * @returns the new descriptor number, or a negated errno
   */
  open(dirfd: number, path: string, _lookupflags: number, _oflags: number, _rightsBase: number, _rightsInheriting: number, _fdflags: number, guard?: PathGuard): number {
    return this.#one(dirfd, path, guard, (rec) => {
      const b = rec.resultBytes;
      if (b === null || b.length !== OPEN_RESULT_BYTES || rec.args.path === undefined) return this.#gate.unanswerable('the record holds no descriptor for this open');
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      this.#entries.push(new ReplayEntry(v.getUint32(0, true), rec.args.path, v.getUint32(4, true), undefined));
      return this.#entries.length - 1;
    });
  }

  /**
   * `path_filestat_get` answered with the recorded metadata.
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param _follow - unused
   * @param out - filled in
   * @param guard - the gate crossing
   * @returns 0, or a negated errno
   */
  statAt(dirfd: number, path: string, _follow: boolean, out: FileStat, guard?: PathGuard): number {
    return this.#one(dirfd, path, guard, (rec) => this.#statFrom(rec, out));
  }

  /**
   * `path_readlink` answered with the recorded target.
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param guard - the gate crossing
   * @returns the target's bytes, or a negated errno
   */
  readlink(dirfd: number, path: string, guard?: PathGuard): Uint8Array | number {
    let target: Uint8Array | null = null;
    const r = this.#one(dirfd, path, guard, (rec) => {
      target = rec.resultBytes;
      return target === null ? this.#gate.unanswerable('the record holds no link target for this readlink') : 0;
    });
    return target ?? r;
  }

  /**
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param guard - the gate crossing
   * @returns the recorded outcome
   */
  mkdir(dirfd: number, path: string, guard?: PathGuard): number {
    return this.#one(dirfd, path, guard);
  }

  /**
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param guard - the gate crossing
   * @returns the recorded outcome
   */
  rmdir(dirfd: number, path: string, guard?: PathGuard): number {
    return this.#one(dirfd, path, guard);
  }

  /**
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param guard - the gate crossing
   * @returns the recorded outcome
   */
  unlink(dirfd: number, path: string, guard?: PathGuard): number {
    return this.#one(dirfd, path, guard);
  }

  /**
   * @param _target - the link's text (not recorded, not checked)
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param guard - the gate crossing
   * @returns the recorded outcome
   */
  symlink(_target: string, dirfd: number, path: string, guard?: PathGuard): number {
    return this.#one(dirfd, path, guard);
  }

  /**
   * @param dirfd - directory descriptor
   * @param path - the guest's path
   * @param _follow - unused
   * @param _atim - unused
   * @param _mtim - unused
   * @param _fstflags - unused
   * @param guard - the gate crossing
   * @returns the recorded outcome
   */
  utimesAt(dirfd: number, path: string, _follow: boolean, _atim: bigint, _mtim: bigint, _fstflags: number, guard?: PathGuard): number {
    return this.#one(dirfd, path, guard);
  }

  /**
   * @param oldDirfd - directory of the old name
   * @param oldPath - old name
   * @param newDirfd - directory of the new name
   * @param newPath - new name
   * @param guard - the gate crossing (both paths)
   * @returns the recorded outcome
   */
  rename(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, guard?: PathGuard): number {
    return this.#two(oldDirfd, oldPath, newDirfd, newPath, guard);
  }

  /**
   * @param oldDirfd - directory of the existing name
   * @param _oldFlags - unused
   * @param oldPath - existing name
   * @param newDirfd - directory of the new link
   * @param newPath - new link
   * @param guard - the gate crossing (both paths)
   * @returns the recorded outcome
   */
  link(oldDirfd: number, _oldFlags: number, oldPath: string, newDirfd: number, newPath: string, guard?: PathGuard): number {
    return this.#two(oldDirfd, oldPath, newDirfd, newPath, guard);
  }
}
