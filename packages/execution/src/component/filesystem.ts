import { ForgeError } from '@forgeone/common';
import { canonicalPath } from '../gate/canonical.js';
import { ConfinedFs, createFileStat, type FileStat, type PathGuard } from '../fs/confined.js';
import { ALL_RIGHTS, Errno, Fstflags, Rights, WRITE_RIGHTS } from '../fs/constants.js';
import {
  COUNT_RESULT_BYTES,
  OPEN_RESULT_BYTES,
  ReplayFs,
  STAT_RESULT_BYTES,
  encodeCount,
  encodeEntries,
  encodeOpened,
  encodeStat,
  type ReplayFsGate,
} from '../replay/filesystem.js';
import { HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, type HostContext } from './host.js';
import { InputStream, IoError, MAX_READ, OutputStream, gateDrop } from './io.js';

/** `wasi:filesystem/types.error-code` for each WASI errno; anything else is `io`. */
const ERROR_CODES: Readonly<Record<number, string>> = {
  [Errno.ACCES]: 'access',
  [Errno.AGAIN]: 'would-block',
  [Errno.ALREADY]: 'already',
  [Errno.BADF]: 'bad-descriptor',
  [Errno.BUSY]: 'busy',
  [Errno.DEADLK]: 'deadlock',
  [Errno.DQUOT]: 'quota',
  [Errno.EXIST]: 'exist',
  [Errno.FBIG]: 'file-too-large',
  [Errno.ILSEQ]: 'illegal-byte-sequence',
  [Errno.INPROGRESS]: 'in-progress',
  [Errno.INTR]: 'interrupted',
  [Errno.INVAL]: 'invalid',
  [Errno.IO]: 'io',
  [Errno.ISDIR]: 'is-directory',
  [Errno.LOOP]: 'loop',
  [Errno.MLINK]: 'too-many-links',
  [Errno.MSGSIZE]: 'message-size',
  [Errno.NAMETOOLONG]: 'name-too-long',
  [Errno.NODEV]: 'no-device',
  [Errno.NOENT]: 'no-entry',
  [Errno.NOLCK]: 'no-lock',
  [Errno.NOMEM]: 'insufficient-memory',
  [Errno.MFILE]: 'insufficient-memory',
  [Errno.NOSPC]: 'insufficient-space',
  [Errno.NOTDIR]: 'not-directory',
  [Errno.NOTEMPTY]: 'not-empty',
  [Errno.NOTRECOVERABLE]: 'not-recoverable',
  [Errno.NOTSUP]: 'unsupported',
  [Errno.NOSYS]: 'unsupported',
  [Errno.NOTTY]: 'no-tty',
  [Errno.NXIO]: 'no-such-device',
  [Errno.OVERFLOW]: 'overflow',
  [Errno.PERM]: 'not-permitted',
  [Errno.NOTCAPABLE]: 'not-permitted',
  [Errno.PIPE]: 'pipe',
  [Errno.ROFS]: 'read-only',
  [Errno.SPIPE]: 'invalid-seek',
  [Errno.TXTBSY]: 'text-file-busy',
  [Errno.XDEV]: 'cross-device',
};

/**
 * The `wasi:filesystem` error code of a WASI errno.
 * @param errno - a positive WASI errno
 * @returns the error code name
 */
export function filesystemErrorOf(errno: number): string {
  return ERROR_CODES[errno] ?? 'io';
}

const TYPES = ['unknown', 'block-device', 'character-device', 'directory', 'regular-file', 'socket', 'socket', 'symbolic-link'];
const DISPOSE = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('dispose');
/** The result bytes of `is-same-object` (recorded: a replay answers from them). */
const SAME = new Uint8Array([1]);
const NOT_SAME = new Uint8Array([0]);
const READ_RIGHTS = Rights.FD_READ | Rights.FD_READDIR;
const MUTATE_DIR = Rights.PATH_CREATE_DIRECTORY | Rights.PATH_CREATE_FILE | Rights.PATH_REMOVE_DIRECTORY | Rights.PATH_UNLINK_FILE;

/** `wasi:clocks/wall-clock.datetime`. */
export interface Datetime {
  /** Seconds since the epoch. */
  seconds: bigint;
  /** Nanoseconds within the second. */
  nanoseconds: number;
}
/** `wasi:filesystem/types.new-timestamp`. */
export type NewTimestamp = { tag: 'no-change' } | { tag: 'now' } | { tag: 'timestamp'; val: Datetime };
/** `wasi:filesystem/types.descriptor-flags`. */
export interface DescriptorFlags {
  /** May read. */
  read?: boolean;
  /** May write. */
  write?: boolean;
  /** Synchronous file integrity. */
  fileIntegritySync?: boolean;
  /** Synchronous data integrity. */
  dataIntegritySync?: boolean;
  /** Requested write synchronisation. */
  requestedWriteSync?: boolean;
  /** May change the directory's entries. */
  mutateDirectory?: boolean;
}

function datetime(ns: bigint): Datetime {
  return { seconds: ns / 1_000_000_000n, nanoseconds: Number(ns % 1_000_000_000n) };
}

function stamp(t: NewTimestamp, set: number, now: number): [bigint, number] {
  if (t.tag === 'now') return [0n, now];
  if (t.tag === 'timestamp') return [t.val.seconds * 1_000_000_000n + BigInt(t.val.nanoseconds), set];
  return [0n, 0];
}

/**
 * What the descriptors call: the confined layer (`ConfinedFs`), or in a replay the record (`ReplayFs`).
 */
type FsBackend = Pick<
  ConfinedFs,
  | 'descriptor'
  | 'close'
  | 'dispose'
  | 'pread'
  | 'pwrite'
  | 'stat'
  | 'statAt'
  | 'readdir'
  | 'truncate'
  | 'utimes'
  | 'utimesAt'
  | 'sync'
  | 'advise'
  | 'open'
  | 'mkdir'
  | 'rmdir'
  | 'unlink'
  | 'readlink'
  | 'symlink'
  | 'rename'
  | 'link'
>;

/** The shared state of one container's filesystem: the confined layer, syscall ids, the path guard. */
class FsHost {
  readonly fs: FsBackend;
  readonly ctx: HostContext;
  readonly ids: Readonly<Record<string, number>>;
  readonly stat: FileStat = createFileStat();
  readonly now: () => bigint;
  readonly guard: PathGuard;
  #guardId = -1;
  #lexical: (string | undefined)[] = [undefined, undefined];
  #crossed = 0;
  #refused = false;
  // Result bytes of calls a replay cannot recompute (stat, open, short writes), reused: the recorder copies.
  readonly #statBytes = new Uint8Array(STAT_RESULT_BYTES);
  readonly #openBytes = new Uint8Array(OPEN_RESULT_BYTES);
  readonly #countBytes = new Uint8Array(COUNT_RESULT_BYTES);

  constructor(ctx: HostContext, fs: FsBackend, now: () => bigint) {
    this.ctx = ctx;
    this.fs = fs;
    this.now = now;
    const ids: Record<string, number> = {};
    for (const op of ['open', 'read', 'write', 'stat', 'readdir', 'create-directory', 'remove-file', 'remove-directory', 'rename', 'link', 'symlink', 'readlink', 'set-size', 'set-times', 'sync', 'advise']) {
      ids[op] = ctx.id(`wasi:filesystem/${op}`);
    }
    this.ids = ids;
    // Crosses the gate on the path the operation really acts on (symlinks inside the preopen followed);
    // for two-path operations (rename, link) the first crossing is closed before the second is opened.
    this.guard = (guest, index) => {
      const g = ctx.gate;
      if (index === 1 && this.#crossed > 0) g.exit(RESULT_OK);
      g.args.path = guest;
      const lexical = this.#lexical[index];
      if (lexical !== undefined && lexical !== guest) g.args.detail = lexical;
      this.#crossed++;
      if (g.enter(this.#guardId)) return true;
      this.#refused = true;
      return false;
    };
  }

  /** Gate a descriptor operation (no path argument): `access` when refused. */
  enter(op: string, path: string, size?: number): void {
    const g = this.ctx.gate;
    g.args.path = path;
    if (size !== undefined) g.args.size = size;
    this.ctx.enterOrWasiError(this.ids[op]!, 'access');
  }

  /** @returns {@link FsHost.stat} as the record keeps it (valid until the next call) */
  statBytes(): Uint8Array {
    return encodeStat(this.stat, this.#statBytes);
  }

  /** @returns the type and rights of a descriptor just opened, as the record keeps them, or undefined */
  openedBytes(fd: number): Uint8Array | undefined {
    const d = this.fs.descriptor(fd);
    return d === undefined ? undefined : encodeOpened(d, this.#openBytes);
  }

  /** @returns the result bytes of a write of `n` of `len` bytes: none for a whole write, the count for a short one */
  writtenBytes(n: number, len: number): Uint8Array | undefined {
    return n < 0 || n === len ? undefined : encodeCount(n, this.#countBytes);
  }

  /** Finish a gated operation: record, and throw the error code for a negated errno. */
  done(r: number, bytes?: Uint8Array): void {
    if (r < 0) {
      this.ctx.gate.exit(-r);
      throw new HostResultError(filesystemErrorOf(-r));
    }
    this.ctx.gate.exit(RESULT_OK, bytes);
  }

  /**
   * Run a path operation of the confined layer with the gate crossed on the resolved path(s); `bytes` gives
   * the result bytes recorded when it succeeds.
   */
  pathOp<T>(op: string, base: string, lexical0: unknown, lexical1: unknown, run: () => T, bytes?: (result: T) => Uint8Array | undefined): T {
    if (typeof lexical0 !== 'string' || (lexical1 !== undefined && typeof lexical1 !== 'string')) throw new HostResultError('invalid');
    let l0: string;
    let l1: string | undefined;
    try {
      l0 = canonicalPath(lexical0, base);
      l1 = lexical1 === undefined ? undefined : canonicalPath(lexical1 as string, base);
    } catch {
      throw new HostResultError('invalid');
    }
    const id = this.ids[op]!;
    this.#guardId = id;
    this.#lexical[0] = l0;
    this.#lexical[1] = l1;
    this.#crossed = 0;
    this.#refused = false;
    const result = run();
    const r = typeof result === 'number' ? result : 0;
    const g = this.ctx.gate;
    if (this.#crossed === 0) {
      // The walk failed before the path resolved (no such directory, a symlink out of the preopen): the
      // attempt is still decided and recorded, on the path the guest wrote.
      g.args.path = l0;
      if (!g.enter(id)) {
        g.exit(RESULT_REFUSED);
        throw new HostResultError('access');
      }
      g.exit(r < 0 ? -r : RESULT_FAILED);
      throw new HostResultError(r < 0 ? filesystemErrorOf(-r) : 'io');
    }
    if (this.#refused) {
      g.exit(RESULT_REFUSED);
      throw new HostResultError('access');
    }
    if (r < 0) {
      g.exit(-r);
      throw new HostResultError(filesystemErrorOf(-r));
    }
    g.exit(RESULT_OK, bytes?.(result));
    return result;
  }
}

/**
 * `wasi:filesystem/types.descriptor` over the confined filesystem layer (`src/fs/`): every method crosses
 * the gate under its catalogue syscall (`wasi:filesystem/open`, `read`, `write`, `stat`, ...) with the
 * canonical guest path — for path methods, the path as resolved inside the preopen — and returns `access`
 * when refused; the confined layer refuses anything that would leave the preopen.
 */
export class Descriptor {
  /** Canonical guest path of this descriptor. */
  readonly guestPath: string;
  /** Descriptor number in the confined layer. */
  readonly fd: number;
  readonly #h: FsHost;
  readonly #preopen: boolean;

  /**
   * @param host - the filesystem host (internal)
   * @param fd - descriptor number in the confined layer
   * @param preopen - whether this is a preopen (never closed by the guest)
   */
  constructor(host: unknown, fd: number, preopen: boolean) {
    this.#h = host as FsHost;
    this.fd = fd;
    this.#preopen = preopen;
    this.guestPath = this.#h.fs.descriptor(fd)?.guestPath ?? '/';
  }

  /**
   * Dropped by the guest: crosses the gate as `wasi:io/drop` (`descriptor`, with its path), then closes it
   * in the confined layer (preopens stay open) — refused or not: a refusal never keeps a descriptor open.
   */
  [DISPOSE](): void {
    try {
      gateDrop(this.#h.ctx, 'descriptor', this.guestPath);
    } finally {
      if (!this.#preopen) this.#h.fs.close(this.fd);
    }
  }

  /**
   * Hand out a stream: crosses the gate under `op` (`read` or `write`) with the path and `detail` = the
   * function (`access` when refused), then checks the descriptor's rights (recorded as failed when
   * missing).
   */
  #handout(op: string, fn: string, right: number): void {
    const h = this.#h;
    h.ctx.gate.args.detail = fn;
    h.enter(op, this.guestPath);
    const d = h.fs.descriptor(this.fd);
    if (d === undefined) h.done(-Errno.BADF);
    if ((d!.rightsBase & right) === 0) {
      h.ctx.gate.exit(RESULT_FAILED);
      throw new HostResultError(right === Rights.FD_WRITE ? 'read-only' : 'not-permitted');
    }
    h.ctx.gate.exit(RESULT_OK);
  }

  /**
   * Implements `read-via-stream`.
   * @param offset - where to start
   * @returns a stream reading from `offset`; handing it out crosses the gate as `wasi:filesystem/read`
   *   (`detail` `read-via-stream`), and so does each read
   */
  readViaStream(offset: bigint): InputStream {
    const h = this.#h;
    this.#handout('read', 'read-via-stream', Rights.FD_READ);
    let pos = Number(offset);
    const buf = new Uint8Array(MAX_READ);
    return new InputStream(h.ctx, h.ids['read']!, (max) => {
      const n = h.fs.pread(this.fd, buf, 0, Math.min(max, buf.length), pos);
      if (n < 0) throw new IoError('IO_ERROR', `read failed (${filesystemErrorOf(-n)})`, filesystemErrorOf(-n));
      if (n === 0 && max > 0) return null;
      pos += n;
      return buf.slice(0, n);
    }, h.now, undefined, this.guestPath);
  }

  /**
   * Implements `write-via-stream`.
   * @param offset - where to start
   * @returns a stream writing from `offset`; handing it out crosses the gate as `wasi:filesystem/write`
   *   (`detail` `write-via-stream`), and so does each write
   */
  writeViaStream(offset: bigint): OutputStream {
    const h = this.#h;
    this.#handout('write', 'write-via-stream', Rights.FD_WRITE);
    let pos = Number(offset);
    return new OutputStream(h.ctx, h.ids['write']!, (bytes) => {
      const n = h.fs.pwrite(this.fd, bytes, 0, bytes.length, pos);
      if (n < 0) throw new IoError('IO_ERROR', `write failed (${filesystemErrorOf(-n)})`, filesystemErrorOf(-n));
      pos += n;
    }, h.now, undefined, this.guestPath);
  }

  /**
   * Implements `append-via-stream`.
   * @returns a stream appending to the file; handing it out crosses the gate as `wasi:filesystem/write`
   *   (`detail` `append-via-stream`), and so does each write
   */
  appendViaStream(): OutputStream {
    const h = this.#h;
    this.#handout('write', 'append-via-stream', Rights.FD_WRITE);
    return new OutputStream(h.ctx, h.ids['write']!, (bytes) => {
      const st = createFileStat();
      const s = h.fs.stat(this.fd, st);
      const n = s < 0 ? s : h.fs.pwrite(this.fd, bytes, 0, bytes.length, Number(st.size));
      if (n < 0) throw new IoError('IO_ERROR', `append failed (${filesystemErrorOf(-n)})`, filesystemErrorOf(-n));
    }, h.now, undefined, this.guestPath);
  }

  /**
   * Implements `advise`.
   * @param offset - start
   * @param length - length
   * @param advice - the advice
   */
  advise(offset: bigint, length: bigint, advice: string): void {
    const index = ['normal', 'sequential', 'random', 'will-need', 'dont-need', 'no-reuse'].indexOf(advice);
    this.#h.enter('advise', this.guestPath);
    this.#h.done(this.#h.fs.advise(this.fd, Number(offset), Number(length), index < 0 ? 0 : index));
  }

  /** Flush data to storage. */
  syncData(): void {
    this.#h.enter('sync', this.guestPath);
    this.#h.done(this.#h.fs.sync(this.fd, true));
  }

  /** Flush data and metadata to storage. */
  sync(): void {
    this.#h.enter('sync', this.guestPath);
    this.#h.done(this.#h.fs.sync(this.fd, false));
  }

  /** @returns the descriptor's flags, from its rights */
  getFlags(): DescriptorFlags {
    this.#h.enter('stat', this.guestPath);
    const d = this.#h.fs.descriptor(this.fd);
    this.#h.done(d === undefined ? -Errno.BADF : 0);
    const r = d!.rightsBase;
    return { read: (r & READ_RIGHTS) !== 0, write: (r & Rights.FD_WRITE) !== 0, mutateDirectory: (r & MUTATE_DIR) !== 0 };
  }

  /** @returns the descriptor's type */
  getType(): string {
    this.#h.enter('stat', this.guestPath);
    const d = this.#h.fs.descriptor(this.fd);
    this.#h.done(d === undefined ? -Errno.BADF : 0);
    return TYPES[d!.filetype] ?? 'unknown';
  }

  /**
   * Implements `set-size`.
   * @param size - new size
   */
  setSize(size: bigint): void {
    this.#h.enter('set-size', this.guestPath, Number(size));
    this.#h.done(this.#h.fs.truncate(this.fd, Number(size)));
  }

  /**
   * Implements `set-times`.
   * @param atime - new access time
   * @param mtime - new modification time
   */
  setTimes(atime: NewTimestamp, mtime: NewTimestamp): void {
    const [a, af] = stamp(atime, Fstflags.ATIM, Fstflags.ATIM_NOW);
    const [m, mf] = stamp(mtime, Fstflags.MTIM, Fstflags.MTIM_NOW);
    this.#h.enter('set-times', this.guestPath);
    this.#h.done(this.#h.fs.utimes(this.fd, a, m, af | mf));
  }

  /**
   * Implements `read`.
   * @param length - most bytes
   * @param offset - file offset
   * @returns the bytes and whether the end of the file was reached
   */
  read(length: bigint, offset: bigint): [Uint8Array, boolean] {
    const len = length > BigInt(MAX_READ) ? MAX_READ : Number(length);
    this.#h.enter('read', this.guestPath, len);
    const buf = new Uint8Array(len);
    const n = this.#h.fs.pread(this.fd, buf, 0, len, Number(offset));
    const bytes = n < 0 ? buf : buf.subarray(0, n);
    this.#h.done(n, n < 0 ? undefined : bytes);
    return [bytes, n < len];
  }

  /**
   * Implements `write`.
   * @param buffer - bytes
   * @param offset - file offset
   * @returns bytes written
   */
  write(buffer: Uint8Array, offset: bigint): bigint {
    const h = this.#h;
    h.enter('write', this.guestPath, buffer.length);
    const n = h.fs.pwrite(this.fd, buffer, 0, buffer.length, Number(offset));
    h.done(n, h.writtenBytes(n, buffer.length));
    return BigInt(n);
  }

  /** @returns the directory's entries (without `.` and `..`) */
  readDirectory(): DirectoryEntryStream {
    this.#h.enter('readdir', this.guestPath);
    const list = this.#h.fs.readdir(this.fd, 0n);
    if (typeof list === 'number') {
      this.#h.done(list < 0 ? list : -Errno.IO);
      throw new HostResultError('io');
    }
    const dec = new TextDecoder();
    const listed = list.map((e) => ({ type: e.type, name: dec.decode(e.name) })).filter((e) => e.name !== '.' && e.name !== '..');
    // The entries go to the record (a replay lists them without the directory).
    this.#h.done(0, encodeEntries(listed));
    return new DirectoryEntryStream(
      listed.map((e) => ({ type: TYPES[e.type] ?? 'unknown', name: e.name })),
      this.#h.ctx,
      this.guestPath,
    );
  }

  /**
   * Implements `create-directory-at`.
   * @param path - directory to create
   */
  createDirectoryAt(path: string): void {
    this.#h.pathOp('create-directory', this.guestPath, path, undefined, () => this.#h.fs.mkdir(this.fd, path, this.#h.guard));
  }

  /** @returns this descriptor's metadata */
  stat(): Record<string, unknown> {
    const h = this.#h;
    h.enter('stat', this.guestPath);
    const r = h.fs.stat(this.fd, h.stat);
    h.done(r, r < 0 ? undefined : h.statBytes());
    return statOf(h.stat);
  }

  /**
   * Implements `stat-at`.
   * @param flags - `symlink-follow`
   * @param path - path
   * @returns its metadata
   */
  statAt(flags: { symlinkFollow?: boolean }, path: string): Record<string, unknown> {
    const h = this.#h;
    h.pathOp('stat', this.guestPath, path, undefined, () => h.fs.statAt(this.fd, path, flags.symlinkFollow === true, h.stat, h.guard), () => h.statBytes());
    return statOf(h.stat);
  }

  /**
   * Implements `set-times-at`.
   * @param flags - `symlink-follow`
   * @param path - path
   * @param atime - access time
   * @param mtime - modification time
   */
  setTimesAt(flags: { symlinkFollow?: boolean }, path: string, atime: NewTimestamp, mtime: NewTimestamp): void {
    const [a, af] = stamp(atime, Fstflags.ATIM, Fstflags.ATIM_NOW);
    const [m, mf] = stamp(mtime, Fstflags.MTIM, Fstflags.MTIM_NOW);
    const h = this.#h;
    h.pathOp('set-times', this.guestPath, path, undefined, () => h.fs.utimesAt(this.fd, path, flags.symlinkFollow === true, a, m, af | mf, h.guard));
  }

  /**
   * Implements `link-at`.
   * @param oldFlags - `symlink-follow`
   * @param oldPath - existing path
   * @param newDescriptor - directory of the new link
   * @param newPath - new path
   */
  linkAt(oldFlags: { symlinkFollow?: boolean }, oldPath: string, newDescriptor: Descriptor, newPath: string): void {
    const h = this.#h;
    h.pathOp('link', this.guestPath, oldPath, typeof newPath === 'string' ? canonicalPath(newPath, newDescriptor.guestPath) : newPath, () =>
      h.fs.link(this.fd, oldFlags.symlinkFollow === true ? 1 : 0, oldPath, newDescriptor.fd, newPath, h.guard),
    );
  }

  /**
   * Implements `open-at`.
   * @param pathFlags - `symlink-follow`
   * @param path - path
   * @param openFlags - create, directory, exclusive, truncate
   * @param flags - read, write, mutate-directory, sync flags
   * @returns the opened descriptor
   */
  openAt(pathFlags: { symlinkFollow?: boolean }, path: string, openFlags: { create?: boolean; directory?: boolean; exclusive?: boolean; truncate?: boolean }, flags: DescriptorFlags): Descriptor {
    const h = this.#h;
    let rights = ALL_RIGHTS;
    if (flags.read !== true) rights &= ~READ_RIGHTS;
    if (flags.write !== true && flags.mutateDirectory !== true) rights &= ~WRITE_RIGHTS;
    if (flags.write !== true) rights &= ~Rights.FD_WRITE;
    const oflags = (openFlags.create === true ? 1 : 0) | (openFlags.directory === true ? 2 : 0) | (openFlags.exclusive === true ? 4 : 0) | (openFlags.truncate === true ? 8 : 0);
    const fdflags = (flags.dataIntegritySync === true ? 2 : 0) | (flags.fileIntegritySync === true ? 16 : 0);
    // An open that can change the file (create, truncate, write access) is decided as a write on the path, so a
    // policy that allows only `open` and `read` cannot let a guest create or empty files.
    const writes = openFlags.create === true || openFlags.truncate === true || flags.write === true;
    const fd = h.pathOp(
      writes ? 'write' : 'open',
      this.guestPath,
      path,
      undefined,
      () => h.fs.open(this.fd, path, pathFlags.symlinkFollow === true ? 1 : 0, oflags, rights, ALL_RIGHTS, fdflags, h.guard),
      (opened) => h.openedBytes(opened),
    );
    return new Descriptor(h, fd, false);
  }

  /**
   * Implements `readlink-at`.
   * @param path - a symlink
   * @returns its target
   */
  readlinkAt(path: string): string {
    const h = this.#h;
    let target: Uint8Array | number = 0;
    h.pathOp(
      'readlink',
      this.guestPath,
      path,
      undefined,
      () => {
        target = h.fs.readlink(this.fd, path, h.guard);
        return typeof target === 'number' ? target : 0;
      },
      () => (typeof target === 'number' ? undefined : target),
    );
    return new TextDecoder().decode(target as unknown as Uint8Array);
  }

  /**
   * Implements `remove-directory-at`.
   * @param path - directory to remove
   */
  removeDirectoryAt(path: string): void {
    this.#h.pathOp('remove-directory', this.guestPath, path, undefined, () => this.#h.fs.rmdir(this.fd, path, this.#h.guard));
  }

  /**
   * Implements `rename-at`.
   * @param oldPath - existing path
   * @param newDescriptor - directory of the new name
   * @param newPath - new path
   */
  renameAt(oldPath: string, newDescriptor: Descriptor, newPath: string): void {
    const h = this.#h;
    h.pathOp('rename', this.guestPath, oldPath, typeof newPath === 'string' ? canonicalPath(newPath, newDescriptor.guestPath) : newPath, () =>
      h.fs.rename(this.fd, oldPath, newDescriptor.fd, newPath, h.guard),
    );
  }

  /**
   * Implements `symlink-at`.
   * @param oldPath - the link's target (stored as written)
   * @param newPath - where the link is created
   */
  symlinkAt(oldPath: string, newPath: string): void {
    const h = this.#h;
    h.pathOp('symlink', this.guestPath, newPath, undefined, () => h.fs.symlink(oldPath, this.fd, newPath, h.guard));
  }

  /**
   * Implements `unlink-file-at`.
   * @param path - file to remove
   */
  unlinkFileAt(path: string): void {
    this.#h.pathOp('remove-file', this.guestPath, path, undefined, () => this.#h.fs.unlink(this.fd, path, this.#h.guard));
  }

  /**
   * Implements `is-same-object`: crosses the gate once as `wasi:filesystem/stat` with this descriptor's path
   * and the other's as `detail`; the answer is recorded (one byte) and a replay answers from it. It has no
   * error case: refused, it traps with the refusal code; a descriptor that cannot be read is not the same.
   * @param other - another descriptor
   * @returns whether both refer to the same file
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  isSameObject(other: Descriptor): boolean {
    const h = this.#h;
    const g = h.ctx.gate;
    const otherPath = other instanceof Descriptor ? other.guestPath : undefined;
    g.args.path = this.guestPath;
    g.args.detail = otherPath;
    h.ctx.enterOrTrap(h.ids['stat']!);
    if (h.ctx.replaying) {
      const rec = h.ctx.recorded();
      const same = rec !== null && rec.length === 1 && rec[0] === 1;
      g.exit(rec === null ? RESULT_FAILED : RESULT_OK, rec === null ? undefined : same ? SAME : NOT_SAME);
      return same;
    }
    let same = other === this;
    if (!same && otherPath !== undefined) {
      const r = h.fs.stat(this.fd, h.stat);
      if (r < 0) {
        g.exit(RESULT_FAILED);
        return false;
      }
      const a = hashOf(h.stat);
      const r2 = h.fs.stat(other.fd, h.stat);
      if (r2 < 0) {
        g.exit(RESULT_FAILED);
        return false;
      }
      const b = hashOf(h.stat);
      same = a.lower === b.lower && a.upper === b.upper;
    }
    g.exit(RESULT_OK, same ? SAME : NOT_SAME);
    return same;
  }

  /** @returns a hash of the file's identity and modification time */
  metadataHash(): { lower: bigint; upper: bigint } {
    const h = this.#h;
    h.enter('stat', this.guestPath);
    const r = h.fs.stat(this.fd, h.stat);
    h.done(r, r < 0 ? undefined : h.statBytes());
    return hashOf(h.stat);
  }

  /**
   * Implements `metadata-hash-at`.
   * @param flags - `symlink-follow`
   * @param path - path
   * @returns a hash of that file's identity and modification time
   */
  metadataHashAt(flags: { symlinkFollow?: boolean }, path: string): { lower: bigint; upper: bigint } {
    const h = this.#h;
    h.pathOp('stat', this.guestPath, path, undefined, () => h.fs.statAt(this.fd, path, flags.symlinkFollow === true, h.stat, h.guard), () => h.statBytes());
    return hashOf(h.stat);
  }
}

function statOf(st: FileStat): Record<string, unknown> {
  return {
    type: TYPES[st.filetype] ?? 'unknown',
    linkCount: st.nlink,
    size: st.size,
    dataAccessTimestamp: datetime(st.atim),
    dataModificationTimestamp: datetime(st.mtim),
    statusChangeTimestamp: datetime(st.ctim),
  };
}

function hashOf(st: FileStat): { lower: bigint; upper: bigint } {
  const mask = (1n << 64n) - 1n;
  return { lower: (st.ino ^ st.mtim) & mask, upper: st.dev & mask };
}

/**
 * `wasi:filesystem/types.directory-entry-stream`: a snapshot of a directory's entries (listed, decided and
 * recorded as a whole by `read-directory`; `read-directory-entry` hands them out). Handed to a guest (built
 * with a host context), its drop crosses the gate as `wasi:io/drop` (`directory-entry-stream`, with the
 * directory's path) and lets go of the entries left, refused or not.
 */
export class DirectoryEntryStream {
  readonly #entries: { type: string; name: string }[];
  readonly #ctx: HostContext | undefined;
  readonly #path: string | undefined;

  /**
   * @param entries - the snapshot
   * @param ctx - the host context whose gate the guest's drop crosses (none: not gated)
   * @param path - canonical guest path of the directory
   */
  constructor(entries: { type: string; name: string }[], ctx?: HostContext, path?: string) {
    this.#entries = entries;
    this.#ctx = ctx;
    this.#path = path;
    this.#id = ctx === undefined ? -1 : ctx.id('wasi:filesystem/readdir');
  }

  readonly #id: number;

  /**
   * Implements `read-directory-entry`: crosses the gate as `wasi:filesystem/readdir` (the directory's path,
   * `detail` = `read-directory-entry`); the entries themselves were recorded by `read-directory`.
   * @returns the next entry, or undefined at the end
   * @throws HostResultError `access` when the gate refuses
   */
  readDirectoryEntry(): { type: string; name: string } | undefined {
    const ctx = this.#ctx;
    if (ctx !== undefined) {
      ctx.gate.args.path = this.#path;
      ctx.gate.args.detail = 'read-directory-entry';
      ctx.enterOrWasiError(this.#id, 'access');
      ctx.gate.exit(RESULT_OK);
    }
    return this.#entries.shift();
  }

  /** The guest dropped the stream: crosses the gate as `wasi:io/drop`; the entries left are let go. */
  [DISPOSE](): void {
    try {
      if (this.#ctx !== undefined) gateDrop(this.#ctx, 'directory-entry-stream', this.#path);
    } finally {
      this.#entries.length = 0;
    }
  }
}

/** What {@link createComponentFilesystem} returns. */
export interface ComponentFilesystem {
  /** The preopen descriptors, in the order of the grants. */
  readonly preopens: Descriptor[];
  /** Close every host descriptor (when the container ends). */
  readonly dispose: () => void;
}

/**
 * The confined filesystem of one container and its preopen descriptors. When the context replays a recorded
 * run, the descriptors answer from the record instead (`ReplayFs`): no host directory is opened or touched,
 * only the preopens' guest paths are used.
 * @param ctx - host context
 * @param preopens - granted directories
 * @param now - monotonic clock for stream pollables
 * @returns the preopen descriptors, and `dispose` to close every host descriptor with the container
 * @throws ForgeError `IO_ERROR` when a preopen's host directory cannot be opened, `INVALID_ARGUMENT` for a
 *   relative guest path, `REPLAY_UNSUPPORTED` when the context replays with a gate that cannot answer
 *   filesystem calls
 */
export function createComponentFilesystem(
  ctx: HostContext,
  preopens: readonly { guestPath: string; hostPath: string; readOnly?: boolean }[],
  now: () => bigint,
): ComponentFilesystem {
  const fs: FsBackend = ctx.replaying ? replayFs(ctx, preopens) : new ConfinedFs({ preopens, firstFd: 0 });
  const host = new FsHost(ctx, fs, now);
  const out: Descriptor[] = [];
  for (let i = 0; i < preopens.length; i++) out.push(new Descriptor(host, i, true));
  return { dispose: () => fs.dispose(), preopens: out };
}

function replayFs(ctx: HostContext, preopens: readonly { guestPath: string; readOnly?: boolean }[]): ReplayFs {
  const gate = ctx.gate as unknown as Partial<ReplayFsGate>;
  if (typeof gate.peek !== 'function' || typeof gate.unanswerable !== 'function' || !('current' in gate)) {
    throw new ForgeError('REPLAY_UNSUPPORTED', 'this replay gate cannot answer filesystem calls (it needs current, peek and unanswerable)');
  }
  for (const p of preopens) {
    if (typeof p.guestPath !== 'string' || !p.guestPath.startsWith('/')) throw new ForgeError('INVALID_ARGUMENT', `preopen guest path must be absolute: ${JSON.stringify(p.guestPath)}`);
  }
  return new ReplayFs(gate as ReplayFsGate, preopens);
}
