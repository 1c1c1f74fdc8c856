import { randomFillSync } from 'node:crypto';
import { ForgeError } from '@forgeone/common';
import { canonicalPath } from '../gate/canonical.js';
import { CONTROL_IN_CALL, CONTROL_STATE, ContainerState, type Gate } from '../gate/gate.js';
import { ConfinedFs, createFileStat, type PathGuard, type Preopen } from '../fs/confined.js';
import { Clockid, Errno, Eventtype, Fdflags, Filetype, Layout, Oflags, Rights, Subclockflags } from '../fs/constants.js';

/** Rights whose presence makes an open a write (wasi-libc asks for them only with O_WRONLY / O_RDWR). */
const WRITE_RIGHTS = BigInt(Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE);

/**
 * How each preview1 function crosses the gate (syscall names from `KNOWN_SYSCALLS`):
 *
 * | preview1 function                                   | syscall                                   | refused → |
 * |-----------------------------------------------------|-------------------------------------------|-----------|
 * | args_get, args_sizes_get                            | wasi:cli/args                             | EACCES    |
 * | environ_get, environ_sizes_get                      | wasi:cli/env                              | EACCES    |
 * | clock_res_get, clock_time_get (REALTIME / bad id)   | wasi:clocks/wall-clock                    | EACCES    |
 * | clock_res_get, clock_time_get (MONOTONIC, CPUTIME)  | wasi:clocks/monotonic-clock               | EACCES    |
 * | fd_read on stdin                                    | wasi:cli/stdin                            | EACCES    |
 * | fd_write on stdout / stderr                         | wasi:cli/stdout / wasi:cli/stderr         | EACCES    |
 * | fd_read, fd_pread on files (and bad fds)            | wasi:filesystem/read                      | EACCES    |
 * | fd_write, fd_pwrite on files (and bad fds)          | wasi:filesystem/write                     | EACCES    |
 * | fd_fdstat_get, fd_filestat_get on stdio             | wasi:cli/terminal                         | EACCES    |
 * | fd_fdstat_get, fd_filestat_get, fd_seek, fd_tell, path_filestat_get | wasi:filesystem/stat      | EACCES    |
 * | fd_close, fd_renumber, fd_fdstat_set_flags, fd_fdstat_set_rights, path_open | wasi:filesystem/open | EACCES |
 * | fd_advise                                           | wasi:filesystem/advise                    | EACCES    |
 * | fd_allocate, fd_filestat_set_size                   | wasi:filesystem/set-size                  | EACCES    |
 * | fd_filestat_set_times, path_filestat_set_times      | wasi:filesystem/set-times                 | EACCES    |
 * | fd_sync, fd_datasync                                | wasi:filesystem/sync                      | EACCES    |
 * | fd_prestat_get, fd_prestat_dir_name                 | wasi:filesystem/preopens                  | EBADF (the preopen is hidden) |
 * | fd_readdir                                          | wasi:filesystem/readdir                   | EACCES    |
 * | path_create_directory                               | wasi:filesystem/create-directory          | EACCES    |
 * | path_link (both paths, two crossings)               | wasi:filesystem/link                      | EACCES    |
 * | path_readlink                                       | wasi:filesystem/readlink                  | EACCES    |
 * | path_remove_directory                               | wasi:filesystem/remove-directory          | EACCES    |
 * | path_rename (both paths, two crossings)             | wasi:filesystem/rename                    | EACCES    |
 * | path_symlink                                        | wasi:filesystem/symlink                   | EACCES    |
 * | path_unlink_file                                    | wasi:filesystem/remove-file               | EACCES    |
 * | poll_oneoff (clock subscriptions only)              | wasi:clocks/subscribe                     | EACCES    |
 * | poll_oneoff (any fd subscription)                   | wasi:io/poll                              | EACCES    |
 * | proc_exit                                           | wasi:cli/exit                             | exits anyway (recorded as refused) |
 * | proc_raise                                          | wasi:cli/raise                            | EACCES    |
 * | sched_yield                                         | wasi:cli/sched-yield                      | EACCES    |
 * | random_get                                          | wasi:random/random                        | EACCES    |
 * | sock_accept / sock_recv / sock_send / sock_shutdown | wasi:sockets/tcp-accept / tcp-receive / tcp-send / tcp-connect | ENOTCAPABLE |
 *
 * Path calls cross the gate after the path is resolved inside its preopen: `args.path` is the canonical
 * guest path the call really acts on (symlinks inside the preopen followed), `args.detail` holds the
 * lexical path when it differs. When resolution fails first, the call crosses with the lexical path.
 * `path_rename` and `path_link` always cross twice (source, then destination; each resolved, or lexical
 * when its resolution failed), so a move out of the preopen is decided on its destination too; the first
 * crossing records 0 (its path was allowed), the second the call's result.
 */
export const PREVIEW1_SYSCALLS = Object.freeze({
  args: 'wasi:cli/args',
  env: 'wasi:cli/env',
  exit: 'wasi:cli/exit',
  stdin: 'wasi:cli/stdin',
  stdout: 'wasi:cli/stdout',
  stderr: 'wasi:cli/stderr',
  terminal: 'wasi:cli/terminal',
  yield: 'wasi:cli/sched-yield',
  raise: 'wasi:cli/raise',
  wall: 'wasi:clocks/wall-clock',
  mono: 'wasi:clocks/monotonic-clock',
  subscribe: 'wasi:clocks/subscribe',
  poll: 'wasi:io/poll',
  random: 'wasi:random/random',
  preopens: 'wasi:filesystem/preopens',
  open: 'wasi:filesystem/open',
  read: 'wasi:filesystem/read',
  write: 'wasi:filesystem/write',
  stat: 'wasi:filesystem/stat',
  readdir: 'wasi:filesystem/readdir',
  mkdir: 'wasi:filesystem/create-directory',
  unlink: 'wasi:filesystem/remove-file',
  rmdir: 'wasi:filesystem/remove-directory',
  rename: 'wasi:filesystem/rename',
  link: 'wasi:filesystem/link',
  symlink: 'wasi:filesystem/symlink',
  readlink: 'wasi:filesystem/readlink',
  setSize: 'wasi:filesystem/set-size',
  setTimes: 'wasi:filesystem/set-times',
  sync: 'wasi:filesystem/sync',
  advise: 'wasi:filesystem/advise',
  accept: 'wasi:sockets/tcp-accept',
  recv: 'wasi:sockets/tcp-receive',
  send: 'wasi:sockets/tcp-send',
  shutdown: 'wasi:sockets/tcp-connect',
} as const);

/** Where a guest's stdin comes from: all bytes at once, text, or a pull function. */
export type StdinSource = Uint8Array | string | ((max: number) => Uint8Array | null);

/**
 * A zero-copy output sink: `write` sees the written bytes in place in guest memory, once per iovec (a
 * `fd_write` of several buffers makes several calls), and must not keep the view: the guest owns that
 * memory and reuses it after the call returns (copy what you keep, e.g. `memory.slice(offset, offset + length)`).
 */
export interface Preview1OutputStream {
  /**
   * Consume bytes written by the guest.
   * @param memory - the guest's whole memory (valid only during this call)
   * @param offset - where the bytes start in `memory`
   * @param length - how many bytes (at least 1)
   */
  write(memory: Uint8Array, offset: number, length: number): void;
}

/** Where stdout or stderr goes: a function receiving a fresh copy of each write, or a zero-copy stream. */
export type Preview1Output = ((bytes: Uint8Array) => void) | Preview1OutputStream;

/** Options of {@link createPreview1Host}. */
export interface Preview1Options {
  /** The container's gate; every call crosses it. */
  readonly gate: Gate;
  /** The guest's argv (argv[0] is the program name as the guest sees it). Default none. */
  readonly args?: readonly string[];
  /** The guest's environment. Default none. */
  readonly env?: Readonly<Record<string, string>>;
  /** Directories the guest gets, as descriptors 3, 4, ... Default none. */
  readonly preopens?: readonly Preopen[];
  /** Standard input. Default empty. A pull function returns up to `max` bytes, or null/empty at the end. */
  readonly stdin?: StdinSource;
  /**
   * Receives each write to stdout: a function gets a fresh copy it may keep; a {@link Preview1OutputStream}
   * gets the bytes in place in guest memory, without a copy. Default: discarded (nothing is copied).
   */
  readonly stdout?: Preview1Output;
  /** Receives each write to stderr, as `stdout` does. Default: discarded. */
  readonly stderr?: Preview1Output;
  /**
   * Most bytes stdout and stderr together may take. A write that does not fit is cut to what fits; once
   * nothing fits, writes fail with `ENOSPC` (errno 51) and {@link Preview1Host.outputLimitHit} is set.
   * Default 16 MiB.
   */
  readonly maxOutputBytes?: number;
  /** Most descriptors open at once in the filesystem (preopens included); more fail with `EMFILE`. Default 128. */
  readonly maxOpenFiles?: number;
  /** Most entries scanned when a directory is renamed into another directory (the `ConfinedFs` option of that name); default 10000, beyond → `EXDEV`. */
  readonly maxRenameScan?: number;
  /** Fills a buffer with random bytes. Default `crypto.randomFillSync`. */
  readonly random?: (buf: Uint8Array) => void;
  /** Clocks in ns. Defaults: the host's wall clock and `performance.now()`. */
  readonly clocks?: {
    /** Wall clock, ns since the epoch. */
    readonly realtime?: () => bigint;
    /** Monotonic clock, ns from an arbitrary origin. */
    readonly monotonic?: () => bigint;
  };
}

/** Thrown through the guest's stack by `proc_exit`; {@link runPreview1} turns it into the exit code. */
export class Preview1Exit extends Error {
  /** The exit code the guest gave. */
  readonly code: number;
  /** @param code - the exit code */
  constructor(code: number) {
    super(`guest exited with code ${code}`);
    this.name = 'Preview1Exit';
    this.code = code;
  }
}

/** The functions of `wasi_snapshot_preview1` a host provides. */
export type Preview1Functions = Record<string, (...args: never[]) => number | undefined>;

/** A WASI preview1 host for one guest instance. */
export interface Preview1Host {
  /** The import object to instantiate the guest with. */
  readonly imports: { readonly wasi_snapshot_preview1: Preview1Functions };
  /** The confined filesystem holding the guest's descriptors 3 and up. */
  readonly fs: ConfinedFs;
  /**
   * Give the host the guest's memory (before the guest runs).
   * @param memory - the guest's exported memory
   */
  bindMemory(memory: WebAssembly.Memory): void;
  /**
   * Bind to an instance: takes its exported `memory`.
   * @param instance - the instantiated guest
   */
  bind(instance: WebAssembly.Instance): void;
  /** Bytes written to stdout and stderr so far. */
  readonly outputBytes: number;
  /** Whether a write was cut or refused by `maxOutputBytes`. */
  readonly outputLimitHit: boolean;
  /** Close every descriptor. */
  dispose(): void;
}

type SyscallIds = { readonly [K in keyof typeof PREVIEW1_SYSCALLS]: number };

const MAX_IOVS = 1024;
const MAX_PATH = 4096;
const TWO32 = 4294967296;
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const CLOSED = -1;
const EMPTY = new Uint8Array(0);
const STDIO_BASE = Rights.FD_READ | Rights.FD_WRITE | Rights.POLL_FD_READWRITE | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_FILESTAT_GET;

function encodeList(items: readonly string[], what: string): { count: number; offsets: Uint32Array; bytes: Uint8Array } {
  const enc = new TextEncoder();
  const parts = items.map((s) => {
    if (s.includes('\0')) throw new ForgeError('INVALID_ARGUMENT', `${what} may not contain a NUL byte`);
    return enc.encode(s);
  });
  const total = parts.reduce((n, p) => n + p.length + 1, 0);
  const bytes = new Uint8Array(total);
  const offsets = new Uint32Array(parts.length);
  let at = 0;
  parts.forEach((p, i) => {
    offsets[i] = at;
    bytes.set(p, at);
    at += p.length + 1;
  });
  return { count: parts.length, offsets, bytes };
}

/**
 * Create ForgeOne's WASI preview1 host: the whole `wasi_snapshot_preview1` API (46 functions) over a
 * {@link ConfinedFs}, every call crossing the gate (table: {@link PREVIEW1_SYSCALLS}). The default sandbox
 * gives nothing: no preopens, args, env or network; stdin empty; output discarded.
 *
 * Each function copies and validates its arguments out of guest memory first (an out-of-bounds pointer
 * is `EFAULT`, never a host exception), crosses the gate, then performs. Unexpected host failures become
 * `EIO`; only `proc_exit` unwinds the guest (with {@link Preview1Exit}).
 *
 * @param options - gate, args, env, preopens, stdio, limits, clocks, random source
 * @returns the host; instantiate the guest with `host.imports`, then `host.bind(instance)`
 * @throws ForgeError `INVALID_ARGUMENT` for malformed args/env, `IO_ERROR` for an unusable preopen
 */
export function createPreview1Host(options: Preview1Options): Preview1Host {
  return new HostImpl(options);
}

class HostImpl implements Preview1Host {
  readonly imports: { readonly wasi_snapshot_preview1: Preview1Functions };
  readonly fs: ConfinedFs;
  outputBytes = 0;
  outputLimitHit = false;

  readonly #gate: Gate;
  readonly #ids: SyscallIds;
  readonly #args: ReturnType<typeof encodeList>;
  readonly #env: ReturnType<typeof encodeList>;
  readonly #stdout: Preview1Output | undefined;
  readonly #stderr: Preview1Output | undefined;
  readonly #stdinPull: ((max: number) => Uint8Array | null) | undefined;
  #stdinBuf: Uint8Array;
  #stdinPos = 0;
  readonly #maxOut: number;
  readonly #random: ((buf: Uint8Array) => void) | undefined;
  readonly #realtime: (() => bigint) | undefined;
  readonly #monotonic: (() => bigint) | undefined;
  readonly #stdio = new Int8Array([STDIN, STDOUT, STDERR]);
  readonly #stdioFlags = new Uint16Array(3);
  readonly #iov = new Uint32Array(MAX_IOVS * 2);
  #iovCount = 0;
  #iovTotal = 0;
  readonly #u64 = new Uint8Array(8);
  readonly #u64View = new DataView(this.#u64.buffer);
  readonly #dirent = new Uint8Array(Layout.DIRENT);
  readonly #direntView = new DataView(this.#dirent.buffer);
  #scratch = new Uint8Array(4096);
  readonly #stat = createFileStat();
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  readonly #encoder = new TextEncoder();
  #memory: WebAssembly.Memory | null = null;
  #shared = false;
  readonly #origin = performance.timeOrigin;
  #buffer: ArrayBufferLike | null = null;
  #u8 = new Uint8Array(0);
  #dv = new DataView(new ArrayBuffer(0));
  // path guard state
  #guardId = -1;
  #guardLexical: (string | undefined)[] = [undefined, undefined];
  #guardCrossed = 0;
  #guardRefused = false;
  readonly #guard: PathGuard;
  #sleeper: Int32Array | null = null;

  constructor(o: Preview1Options) {
    this.#gate = o.gate;
    const ids: Record<string, number> = {};
    for (const [k, name] of Object.entries(PREVIEW1_SYSCALLS)) ids[k] = o.gate.syscalls.intern(name);
    this.#ids = ids as SyscallIds;
    this.#args = encodeList(o.args ?? [], 'args');
    const env = Object.entries(o.env ?? {}).map(([k, v]) => {
      if (k === '' || k.includes('=')) throw new ForgeError('INVALID_ARGUMENT', `bad environment variable name ${JSON.stringify(k)}`);
      return `${k}=${v}`;
    });
    this.#env = encodeList(env, 'env');
    this.#stdout = o.stdout;
    this.#stderr = o.stderr;
    const stdin = o.stdin;
    if (typeof stdin === 'function') {
      this.#stdinPull = stdin;
      this.#stdinBuf = new Uint8Array(0);
    } else {
      this.#stdinPull = undefined;
      this.#stdinBuf = typeof stdin === 'string' ? this.#encoder.encode(stdin) : (stdin ?? new Uint8Array(0));
    }
    this.#maxOut = o.maxOutputBytes ?? 16 * 1024 * 1024;
    this.#random = o.random;
    this.#realtime = o.clocks?.realtime;
    this.#monotonic = o.clocks?.monotonic;
    this.fs = new ConfinedFs({
      preopens: o.preopens ?? [],
      ...(o.maxOpenFiles === undefined ? {} : { maxOpenFiles: o.maxOpenFiles }),
      ...(o.maxRenameScan === undefined ? {} : { maxRenameScan: o.maxRenameScan }),
    });
    this.#guard = (guest, index) => {
      const g = this.#gate;
      if (index === 1) g.exit(0);
      g.args.path = guest;
      const lexical = this.#guardLexical[index];
      if (lexical !== undefined && lexical !== guest) g.args.detail = lexical;
      this.#guardCrossed++;
      if (g.enter(this.#guardId)) return true;
      this.#guardRefused = true;
      return false;
    };
    this.imports = { wasi_snapshot_preview1: this.#functions() };
  }

  bindMemory(memory: WebAssembly.Memory): void {
    this.#memory = memory;
    this.#buffer = null;
    this.#shared = memory.buffer instanceof SharedArrayBuffer;
    this.#u8 = new Uint8Array(0);
    this.#mem();
  }

  bind(instance: WebAssembly.Instance): void {
    const m = instance.exports['memory'];
    if (m instanceof WebAssembly.Memory) this.bindMemory(m);
  }

  dispose(): void {
    this.fs.dispose();
  }

  // ---------- memory ----------

  /**
   * Refresh the views after memory growth; false when no memory is bound. Growing a non-shared memory
   * detaches its old buffer (our view's length drops to 0), so a non-empty view is current without reading
   * `memory.buffer` (a getter call on every host call); a shared memory's buffer is compared each time.
   */
  #mem(): boolean {
    if (this.#u8.length !== 0 && !this.#shared) return true;
    const m = this.#memory;
    if (m === null) return false;
    const b = m.buffer;
    if (b !== this.#buffer) {
      this.#buffer = b;
      this.#u8 = new Uint8Array(b);
      this.#dv = new DataView(b);
    }
    return true;
  }

  #inBounds(ptr: number, len: number): boolean {
    return ptr + len <= this.#u8.length;
  }

  /** Copy the iovec list out of guest memory; 0 or an errno. */
  #readIovs(ptr: number, n: number): number {
    if (n > MAX_IOVS) return Errno.INVAL;
    if (!this.#inBounds(ptr, n * 8)) return Errno.FAULT;
    const dv = this.#dv;
    const iov = this.#iov;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const p = dv.getUint32(ptr + i * 8, true);
      const l = dv.getUint32(ptr + i * 8 + 4, true);
      if (!this.#inBounds(p, l)) return Errno.FAULT;
      iov[i * 2] = p;
      iov[i * 2 + 1] = l;
      total += l;
    }
    if (total > 0x7fffffff) return Errno.INVAL;
    this.#iovCount = n;
    this.#iovTotal = total;
    return 0;
  }

  /** A fresh copy of the first `take` bytes of the iovecs read last: one slice when the first buffer holds them. */
  #copyOut(take: number): Uint8Array {
    const iov = this.#iov;
    const p0 = iov[0]!;
    if (iov[1]! >= take) return this.#u8.slice(p0, p0 + take);
    const bytes = new Uint8Array(take);
    for (let i = 0, at = 0; i < this.#iovCount && at < take; i++) {
      const p = iov[i * 2]!;
      const l = Math.min(iov[i * 2 + 1]!, take - at);
      bytes.set(this.#u8.subarray(p, p + l), at);
      at += l;
    }
    return bytes;
  }

  #scratchOf(n: number): Uint8Array {
    if (this.#scratch.length < n) this.#scratch = new Uint8Array(Math.max(n, this.#scratch.length * 2));
    return this.#scratch;
  }

  /** Decode a guest path; a string or an errno number. */
  #path(ptr: number, len: number): string | number {
    if (!this.#inBounds(ptr, len)) return Errno.FAULT;
    if (len > MAX_PATH) return Errno.NAMETOOLONG;
    try {
      const s = this.#decoder.decode(this.#u8.slice(ptr, ptr + len));
      return s.includes('\0') ? Errno.INVAL : s;
    } catch {
      return Errno.ILSEQ;
    }
  }

  #setU64(ptr: number, v: number): void {
    const n = Math.floor(v);
    this.#dv.setUint32(ptr, n >>> 0, true);
    this.#dv.setUint32(ptr + 4, Math.floor(n / TWO32) >>> 0, true);
  }

  // ---------- gate ----------

  /** Cross the gate. Returns -1 to proceed (call #exit after), else the errno to return (already exited). */
  #cross(id: number, err: number, refused: number): number {
    const g = this.#gate;
    if (!g.enter(id)) {
      g.exit(-1);
      return refused;
    }
    if (err !== 0) {
      g.exit(err);
      return err;
    }
    return -1;
  }

  #done(r: number, bytes?: Uint8Array): number {
    this.#gate.exit(r, bytes);
    return r;
  }

  /** Run a ConfinedFs path operation with the gate crossed on the resolved path(s). */
  #pathOp(id: number, lexical0: string | undefined, lexical1: string | undefined, err: number, op: () => number): number {
    if (err !== 0) {
      this.#gate.args.path = lexical0;
      return this.#cross(id, err, Errno.ACCES);
    }
    this.#guardId = id;
    this.#guardLexical[0] = lexical0;
    this.#guardLexical[1] = lexical1;
    this.#guardCrossed = 0;
    this.#guardRefused = false;
    const r = op();
    if (this.#guardCrossed === 0) {
      this.#gate.args.path = lexical0;
      const c = this.#cross(id, r < 0 ? -r : 0, Errno.ACCES);
      if (c >= 0) return c;
      return this.#done(0); // unreachable: an op never succeeds without crossing its guard
    }
    if (this.#guardRefused) {
      this.#gate.exit(-1);
      return Errno.ACCES;
    }
    const result = r < 0 ? -r : 0;
    this.#gate.exit(result);
    return result;
  }

  #lexical(fd: number, path: string | number): string | undefined {
    const d = this.fs.descriptor(fd);
    if (d === undefined || typeof path !== 'string') return undefined;
    try {
      return canonicalPath(path, d.guestPath);
    } catch {
      return undefined;
    }
  }

  #detailFd(fd: number): void {
    this.#gate.args.detail = `fd=${fd}`;
  }

  // ---------- the functions ----------

  #functions(): Preview1Functions {
    const f: Record<string, (...a: never[]) => number | undefined> = {
      args_get: (argv: number, buf: number) => this.#listGet(this.#ids.args, this.#args, argv >>> 0, buf >>> 0),
      args_sizes_get: (c: number, s: number) => this.#listSizes(this.#ids.args, this.#args, c >>> 0, s >>> 0),
      environ_get: (envp: number, buf: number) => this.#listGet(this.#ids.env, this.#env, envp >>> 0, buf >>> 0),
      environ_sizes_get: (c: number, s: number) => this.#listSizes(this.#ids.env, this.#env, c >>> 0, s >>> 0),
      clock_res_get: (id: number, ptr: number) => this.#clock(id >>> 0, ptr >>> 0, true),
      fd_advise: (fd: number, offset: bigint, len: bigint, advice: number) =>
        this.#fdSimple(fd, this.#ids.advise, () => this.fs.advise(fd, Number(offset), Number(len), advice), Errno.SPIPE),
      fd_allocate: (fd: number, offset: bigint, len: bigint) =>
        this.#fdSimple(fd, this.#ids.setSize, () => this.fs.allocate(fd, Number(offset), Number(len)), Errno.BADF),
      fd_close: (fd: number) => this.#close(fd),
      fd_datasync: (fd: number) => this.#fdSimple(fd, this.#ids.sync, () => this.fs.sync(fd, true), Errno.INVAL),
      fd_fdstat_get: (fd: number, ptr: number) => this.#fdstat(fd, ptr >>> 0),
      fd_fdstat_set_flags: (fd: number, flags: number) => this.#setFlags(fd, flags),
      fd_fdstat_set_rights: (fd: number, base: bigint, inh: bigint) =>
        this.#fdSimple(fd, this.#ids.open, () => this.#setRights(fd, base, inh), Errno.NOTCAPABLE),
      fd_filestat_get: (fd: number, ptr: number) => this.#filestat(fd, ptr >>> 0),
      fd_filestat_set_size: (fd: number, size: bigint) =>
        this.#fdSimple(fd, this.#ids.setSize, () => (size > BigInt(Number.MAX_SAFE_INTEGER) ? -Errno.FBIG : this.fs.truncate(fd, Number(size))), Errno.BADF),
      fd_filestat_set_times: (fd: number, atim: bigint, mtim: bigint, fst: number) =>
        this.#fdSimple(fd, this.#ids.setTimes, () => this.fs.utimes(fd, atim, mtim, fst), Errno.BADF),
      fd_prestat_get: (fd: number, ptr: number) => this.#prestat(fd, ptr >>> 0, -1, 0),
      fd_prestat_dir_name: (fd: number, ptr: number, len: number) => this.#prestat(fd, -1, ptr >>> 0, len >>> 0),
      fd_readdir: (fd: number, buf: number, len: number, cookie: bigint, out: number) => this.#readdir(fd, buf >>> 0, len >>> 0, cookie, out >>> 0),
      fd_renumber: (from: number, to: number) => this.#renumber(from, to),
      fd_seek: (fd: number, offset: bigint, whence: number, out: number) => this.#seek(fd, offset, whence, out >>> 0),
      fd_sync: (fd: number) => this.#fdSimple(fd, this.#ids.sync, () => this.fs.sync(fd, false), Errno.INVAL),
      fd_tell: (fd: number, out: number) => this.#seek(fd, 0n, 1, out >>> 0),
      path_create_directory: (fd: number, p: number, l: number) => this.#pathSimple(this.#ids.mkdir, fd, p, l, (path, g) => this.fs.mkdir(fd, path, g)),
      path_filestat_get: (fd: number, flags: number, p: number, l: number, buf: number) => this.#pathStat(fd, flags, p >>> 0, l >>> 0, buf >>> 0),
      path_filestat_set_times: (fd: number, flags: number, p: number, l: number, atim: bigint, mtim: bigint, fst: number) =>
        this.#pathSimple(this.#ids.setTimes, fd, p, l, (path, g) => this.fs.utimesAt(fd, path, (flags & 1) !== 0, atim, mtim, fst, g)),
      path_link: (ofd: number, oflags: number, op: number, ol: number, nfd: number, np: number, nl: number) =>
        this.#pathTwo(this.#ids.link, ofd, op, ol, nfd, np, nl, (a, b, g) => this.fs.link(ofd, oflags, a, nfd, b, g)),
      path_open: (fd: number, dirflags: number, p: number, l: number, oflags: number, base: bigint, inh: bigint, fdflags: number, out: number) =>
        this.#open(fd, dirflags, p >>> 0, l >>> 0, oflags, base, inh, fdflags, out >>> 0),
      path_readlink: (fd: number, p: number, l: number, buf: number, len: number, out: number) => this.#readlink(fd, p >>> 0, l >>> 0, buf >>> 0, len >>> 0, out >>> 0),
      path_remove_directory: (fd: number, p: number, l: number) => this.#pathSimple(this.#ids.rmdir, fd, p, l, (path, g) => this.fs.rmdir(fd, path, g)),
      path_rename: (ofd: number, op: number, ol: number, nfd: number, np: number, nl: number) =>
        this.#pathTwo(this.#ids.rename, ofd, op, ol, nfd, np, nl, (a, b, g) => this.fs.rename(ofd, a, nfd, b, g)),
      path_symlink: (tp: number, tl: number, fd: number, p: number, l: number) => this.#symlink(tp >>> 0, tl >>> 0, fd, p >>> 0, l >>> 0),
      path_unlink_file: (fd: number, p: number, l: number) => this.#pathSimple(this.#ids.unlink, fd, p, l, (path, g) => this.fs.unlink(fd, path, g)),
      poll_oneoff: (inp: number, out: number, n: number, nout: number) => this.#poll(inp >>> 0, out >>> 0, n >>> 0, nout >>> 0),
      proc_exit: (code: number) => this.#exit(code >>> 0),
      proc_raise: (sig: number) => {
        this.#gate.args.detail = `signal=${sig}`;
        const c = this.#cross(this.#ids.raise, 0, Errno.ACCES);
        return c >= 0 ? c : this.#done(Errno.NOSYS);
      },
      sched_yield: () => {
        const c = this.#cross(this.#ids.yield, 0, Errno.ACCES);
        return c >= 0 ? c : this.#done(0);
      },
      sock_accept: (fd: number, _flags: number, out: number) => this.#sock(this.#ids.accept, fd, this.#mem() && this.#inBounds(out >>> 0, 4) ? 0 : Errno.FAULT),
      sock_recv: (fd: number, ri: number, rl: number, _fl: number, o1: number, o2: number) =>
        this.#sock(this.#ids.recv, fd, this.#mem() && this.#inBounds(o1 >>> 0, 4) && this.#inBounds(o2 >>> 0, 2) ? this.#readIovs(ri >>> 0, rl >>> 0) : Errno.FAULT),
      sock_send: (fd: number, si: number, sl: number, _fl: number, o: number) =>
        this.#sock(this.#ids.send, fd, this.#mem() && this.#inBounds(o >>> 0, 4) ? this.#readIovs(si >>> 0, sl >>> 0) : Errno.FAULT),
      sock_shutdown: (fd: number, how: number) => this.#sock(this.#ids.shutdown, fd, how < 1 || how > 3 ? Errno.INVAL : 0),
    };
    for (const name of Object.keys(f)) f[name] = this.#shield(f[name]!);
    // The hot calls carry their own try/catch: a call site inside a shared shield closure sees every
    // import of its arity (megamorphic, never inlined); these stay monomorphic.
    const hot = {
      clock_time_get: (id: number, _precision: bigint, ptr: number): number => {
        try {
          return this.#clock(id >>> 0, ptr >>> 0, false);
        } catch (e) {
          return this.#fault(e);
        }
      },
      fd_read: (fd: number, iovs: number, n: number, out: number): number => {
        try {
          return this.#read(fd, iovs >>> 0, n >>> 0, null, out >>> 0);
        } catch (e) {
          return this.#fault(e);
        }
      },
      fd_write: (fd: number, iovs: number, n: number, out: number): number => {
        try {
          return this.#write(fd, iovs >>> 0, n >>> 0, null, out >>> 0);
        } catch (e) {
          return this.#fault(e);
        }
      },
      fd_pread: (fd: number, iovs: number, n: number, offset: bigint, out: number): number => {
        try {
          return this.#read(fd, iovs >>> 0, n >>> 0, offset, out >>> 0);
        } catch (e) {
          return this.#fault(e);
        }
      },
      fd_pwrite: (fd: number, iovs: number, n: number, offset: bigint, out: number): number => {
        try {
          return this.#write(fd, iovs >>> 0, n >>> 0, offset, out >>> 0);
        } catch (e) {
          return this.#fault(e);
        }
      },
      random_get: (buf: number, len: number): number => {
        try {
          return this.#randomGet(buf >>> 0, len >>> 0);
        } catch (e) {
          return this.#fault(e);
        }
      },
    };
    return { ...f, ...hot } as Preview1Functions;
  }

  /** An unexpected host exception becomes EIO (closing the gate's call); proc_exit passes through. */
  #fault(e: unknown): number {
    if (e instanceof Preview1Exit) throw e;
    const g = this.#gate;
    if (g.control[CONTROL_IN_CALL] !== -1) g.exit(Errno.IO);
    return Errno.IO;
  }

  /** Wrap an import so that an unexpected host exception becomes EIO (see `#fault`). */
  #shield(fn: (...a: never[]) => number | undefined): (...a: never[]) => number | undefined {
    const fault = (e: unknown): number => this.#fault(e);
    const call = fn as (...a: unknown[]) => number | undefined;
    switch (fn.length) {
      case 0:
        return () => {
          try {
            return call();
          } catch (e) {
            return fault(e);
          }
        };
      case 1:
        return ((a: unknown) => {
          try {
            return call(a);
          } catch (e) {
            return fault(e);
          }
        }) as never;
      case 2:
        return ((a: unknown, b: unknown) => {
          try {
            return call(a, b);
          } catch (e) {
            return fault(e);
          }
        }) as never;
      case 3:
        return ((a: unknown, b: unknown, c: unknown) => {
          try {
            return call(a, b, c);
          } catch (e) {
            return fault(e);
          }
        }) as never;
      case 4:
        return ((a: unknown, b: unknown, c: unknown, d: unknown) => {
          try {
            return call(a, b, c, d);
          } catch (e) {
            return fault(e);
          }
        }) as never;
      default:
        return ((...a: unknown[]) => {
          try {
            return call(...a);
          } catch (e) {
            return fault(e);
          }
        }) as never;
    }
  }

  #listSizes(id: number, list: ReturnType<typeof encodeList>, countPtr: number, sizePtr: number): number {
    const err = !this.#mem() || !this.#inBounds(countPtr, 4) || !this.#inBounds(sizePtr, 4) ? Errno.FAULT : 0;
    const c = this.#cross(id, err, Errno.ACCES);
    if (c >= 0) return c;
    this.#dv.setUint32(countPtr, list.count, true);
    this.#dv.setUint32(sizePtr, list.bytes.length, true);
    return this.#done(0);
  }

  #listGet(id: number, list: ReturnType<typeof encodeList>, ptrs: number, buf: number): number {
    const err = !this.#mem() || !this.#inBounds(ptrs, list.count * 4) || !this.#inBounds(buf, list.bytes.length) ? Errno.FAULT : 0;
    this.#gate.args.size = list.bytes.length;
    const c = this.#cross(id, err, Errno.ACCES);
    if (c >= 0) return c;
    for (let i = 0; i < list.count; i++) this.#dv.setUint32(ptrs + i * 4, buf + list.offsets[i]!, true);
    this.#u8.set(list.bytes, buf);
    return this.#done(0);
  }

  /** Current time of a clock in ns (a float number: exact to the µs for the wall clock). */
  #now(id: number): number {
    if (id === Clockid.REALTIME) {
      if (this.#realtime !== undefined) return Number(this.#realtime());
      return (this.#origin + performance.now()) * 1e6;
    }
    if (id === Clockid.MONOTONIC) {
      if (this.#monotonic !== undefined) return Number(this.#monotonic());
      return performance.now() * 1e6;
    }
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  }

  #clock(id: number, ptr: number, res: boolean): number {
    let err = !this.#mem() || !this.#inBounds(ptr, 8) ? Errno.FAULT : 0;
    if (id > Clockid.THREAD_CPUTIME_ID) {
      err = Errno.INVAL;
      this.#gate.args.detail = `clock=${id}`;
    }
    const c = this.#cross(id === Clockid.REALTIME || err === Errno.INVAL ? this.#ids.wall : this.#ids.mono, err, Errno.ACCES);
    if (c >= 0) return c;
    const n = res ? 1000 : Math.floor(this.#now(id));
    const lo = n >>> 0;
    const hi = Math.floor(n / TWO32) >>> 0;
    const dv = this.#dv;
    dv.setUint32(ptr, lo, true);
    dv.setUint32(ptr + 4, hi, true);
    if (res) return this.#done(0);
    // The value cannot be recomputed: the record gets it from a reused 8-byte buffer (no allocation).
    const v = this.#u64View;
    v.setUint32(0, lo, true);
    v.setUint32(4, hi, true);
    return this.#done(0, this.#u64);
  }

  #randomGet(buf: number, len: number): number {
    const err = !this.#mem() || !this.#inBounds(buf, len) ? Errno.FAULT : 0;
    this.#gate.args.size = len;
    const c = this.#cross(this.#ids.random, err, Errno.ACCES);
    if (c >= 0) return c;
    const view = this.#u8.subarray(buf, buf + len);
    if (this.#random !== undefined) this.#random(view);
    else randomFillSync(view);
    return this.#done(0, view);
  }

  #exit(code: number): never {
    try {
      this.#gate.args.detail = `code=${code}`;
      if (this.#gate.enter(this.#ids.exit)) this.#gate.exit(0);
      else this.#gate.exit(-1);
    } catch {
      // a failing recorder must not keep the guest alive: proc_exit never returns
    }
    throw new Preview1Exit(code);
  }

  #stdioKind(fd: number): number {
    return fd >= 0 && fd < 3 ? this.#stdio[fd]! : CLOSED;
  }

  #write(fd: number, iovs: number, n: number, offset: bigint | null, outPtr: number): number {
    let err = !this.#mem() || !this.#inBounds(outPtr, 4) ? Errno.FAULT : this.#readIovs(iovs, n);
    const kind = this.#stdioKind(fd);
    const g = this.#gate;
    g.args.size = err === 0 ? this.#iovTotal : undefined;
    if (kind === STDOUT || kind === STDERR) {
      if (err === 0 && offset !== null) err = Errno.SPIPE;
      const c = this.#cross(kind === STDOUT ? this.#ids.stdout : this.#ids.stderr, err, Errno.ACCES);
      if (c >= 0) return c;
      const room = this.#maxOut - this.outputBytes;
      const total = this.#iovTotal;
      if (total > 0 && room <= 0) {
        this.outputLimitHit = true;
        return this.#done(Errno.NOSPC);
      }
      const take = Math.min(total, room);
      if (take < total) this.outputLimitHit = true;
      this.outputBytes += take;
      const sink = kind === STDOUT ? this.#stdout : this.#stderr;
      if (sink !== undefined && take > 0) {
        const iov = this.#iov;
        const n = this.#iovCount;
        if (typeof sink === 'function') sink(this.#copyOut(take));
        else {
          // Zero copy: the stream sees guest memory in place, one call per buffer.
          const u8 = this.#u8;
          for (let i = 0, at = 0; i < n && at < take; i++) {
            const l = Math.min(iov[i * 2 + 1]!, take - at);
            if (l > 0) sink.write(u8, iov[i * 2]!, l);
            at += l;
          }
        }
        // A sink that re-entered the guest could have grown its memory: refresh the views.
        this.#mem();
      }
      this.#dv.setUint32(outPtr, take, true);
      return this.#done(0);
    }
    const d = this.fs.descriptor(fd);
    if (d === undefined) {
      if (err === 0) err = Errno.BADF;
      this.#detailFd(fd);
    } else g.args.path = d.guestPath;
    if (err === 0 && offset !== null && offset > BigInt(Number.MAX_SAFE_INTEGER)) err = Errno.INVAL;
    const c = this.#cross(this.#ids.write, err, Errno.ACCES);
    if (c >= 0) return c;
    let pos = offset === null ? -1 : Number(offset);
    let done = 0;
    let r = 0;
    for (let i = 0; i < this.#iovCount; i++) {
      const p = this.#iov[i * 2]!;
      const l = this.#iov[i * 2 + 1]!;
      if (l === 0) continue;
      r = pos < 0 ? this.fs.write(fd, this.#u8, p, l) : this.fs.pwrite(fd, this.#u8, p, l, pos);
      if (r < 0) break;
      done += r;
      if (pos >= 0) pos += r;
      if (r < l) break;
    }
    if (r < 0 && done === 0) return this.#done(-r);
    this.#dv.setUint32(outPtr, done, true);
    return this.#done(0);
  }

  #read(fd: number, iovs: number, n: number, offset: bigint | null, outPtr: number): number {
    let err = !this.#mem() || !this.#inBounds(outPtr, 4) ? Errno.FAULT : this.#readIovs(iovs, n);
    const kind = this.#stdioKind(fd);
    const g = this.#gate;
    g.args.size = err === 0 ? this.#iovTotal : undefined;
    if (kind === STDIN) {
      if (err === 0 && offset !== null) err = Errno.SPIPE;
      const c = this.#cross(this.#ids.stdin, err, Errno.ACCES);
      if (c >= 0) return c;
      const got = this.#stdinTake(this.#iovTotal);
      let at = 0;
      for (let i = 0; i < this.#iovCount && at < got.length; i++) {
        const p = this.#iov[i * 2]!;
        const l = Math.min(this.#iov[i * 2 + 1]!, got.length - at);
        this.#u8.set(got.subarray(at, at + l), p);
        at += l;
      }
      this.#dv.setUint32(outPtr, got.length, true);
      return this.#done(0, got);
    }
    const d = kind === CLOSED ? this.fs.descriptor(fd) : undefined;
    if (d === undefined) {
      if (err === 0) err = Errno.BADF;
      this.#detailFd(fd);
    } else g.args.path = d.guestPath;
    if (err === 0 && offset !== null && offset > BigInt(Number.MAX_SAFE_INTEGER)) err = Errno.INVAL;
    const c = this.#cross(this.#ids.read, err, Errno.ACCES);
    if (c >= 0) return c;
    let pos = offset === null ? -1 : Number(offset);
    let done = 0;
    let r = 0;
    let firstPtr = 0;
    for (let i = 0; i < this.#iovCount; i++) {
      const p = this.#iov[i * 2]!;
      const l = this.#iov[i * 2 + 1]!;
      if (l === 0) continue;
      if (done === 0) firstPtr = p;
      r = pos < 0 ? this.fs.read(fd, this.#u8, p, l) : this.fs.pread(fd, this.#u8, p, l, pos);
      if (r < 0) break;
      done += r;
      if (pos >= 0) pos += r;
      if (r < l) break;
    }
    if (r < 0 && done === 0) return this.#done(-r);
    this.#dv.setUint32(outPtr, done, true);
    // The bytes read cannot be recomputed: hand them to the record (one view, or gathered into scratch).
    let bytes: Uint8Array;
    if (done <= (this.#iov[1] ?? 0) || this.#iovCount === 1) bytes = this.#u8.subarray(firstPtr, firstPtr + done);
    else {
      bytes = this.#scratchOf(done).subarray(0, done);
      let at = 0;
      for (let i = 0; i < this.#iovCount && at < done; i++) {
        const p = this.#iov[i * 2]!;
        const l = Math.min(this.#iov[i * 2 + 1]!, done - at);
        bytes.set(this.#u8.subarray(p, p + l), at);
        at += l;
      }
    }
    return this.#done(0, bytes);
  }

  #stdinTake(max: number): Uint8Array {
    if (max === 0) return EMPTY;
    if (this.#stdinPos >= this.#stdinBuf.length && this.#stdinPull !== undefined) {
      const next = this.#stdinPull(max);
      this.#stdinBuf = next ?? new Uint8Array(0);
      this.#stdinPos = 0;
    }
    const end = Math.min(this.#stdinBuf.length, this.#stdinPos + max);
    const out = this.#stdinBuf.slice(this.#stdinPos, end);
    this.#stdinPos = end;
    return out;
  }

  /** fd calls on a descriptor of the filesystem; `stdioErr` for stdio descriptors. */
  #fdSimple(fd: number, id: number, op: () => number, stdioErr: number): number {
    const kind = this.#stdioKind(fd);
    const d = this.fs.descriptor(fd);
    let err = 0;
    if (kind !== CLOSED) err = stdioErr;
    else if (d === undefined) err = Errno.BADF;
    if (d === undefined) this.#detailFd(fd);
    else this.#gate.args.path = d.guestPath;
    const c = this.#cross(id, err, Errno.ACCES);
    if (c >= 0) return c;
    const r = op();
    return this.#done(r < 0 ? -r : 0);
  }

  #setRights(fd: number, base: bigint, inh: bigint): number {
    if (base > 0xffffffffn || inh > 0xffffffffn) {
      // Bits above 31 name no right; asking for them is asking for more than the descriptor holds.
      const d = this.fs.descriptor(fd);
      if (d === undefined) return -Errno.BADF;
      if ((base >> 32n) !== 0n || (inh >> 32n) !== 0n) return -Errno.NOTCAPABLE;
    }
    return this.fs.setRights(fd, Number(base), Number(inh));
  }

  #close(fd: number): number {
    const kind = this.#stdioKind(fd);
    const d = this.fs.descriptor(fd);
    this.#gate.args.detail = `close fd=${fd}`;
    if (d !== undefined) this.#gate.args.path = d.guestPath;
    const c = this.#cross(this.#ids.open, kind === CLOSED && d === undefined ? Errno.BADF : 0, Errno.ACCES);
    if (c >= 0) return c;
    if (kind !== CLOSED) {
      this.#stdio[fd] = CLOSED;
      return this.#done(0);
    }
    const r = this.fs.close(fd);
    return this.#done(r < 0 ? -r : 0);
  }

  #renumber(from: number, to: number): number {
    const a = this.#stdioKind(from);
    const b = this.#stdioKind(to);
    const fa = this.fs.descriptor(from);
    const fb = this.fs.descriptor(to);
    let err = 0;
    if ((a === CLOSED && fa === undefined) || (b === CLOSED && fb === undefined)) err = Errno.BADF;
    else if ((a === CLOSED) !== (b === CLOSED)) err = Errno.NOTSUP; // stdio and files live in different tables
    this.#gate.args.detail = `renumber ${from}->${to}`;
    if (fa !== undefined) this.#gate.args.path = fa.guestPath;
    const c = this.#cross(this.#ids.open, err, Errno.ACCES);
    if (c >= 0) return c;
    if (a !== CLOSED) {
      if (from !== to) {
        this.#stdio[to] = a;
        this.#stdio[from] = CLOSED;
        this.#stdioFlags[to] = this.#stdioFlags[from]!;
      }
      return this.#done(0);
    }
    const r = this.fs.renumber(from, to);
    return this.#done(r < 0 ? -r : 0);
  }

  #fdstat(fd: number, ptr: number): number {
    const kind = this.#stdioKind(fd);
    const d = this.fs.descriptor(fd);
    let err = !this.#mem() || !this.#inBounds(ptr, Layout.FDSTAT) ? Errno.FAULT : 0;
    if (err === 0 && kind === CLOSED && d === undefined) err = Errno.BADF;
    if (d !== undefined) this.#gate.args.path = d.guestPath;
    else this.#detailFd(fd);
    const c = this.#cross(kind !== CLOSED ? this.#ids.terminal : this.#ids.stat, err, Errno.ACCES);
    if (c >= 0) return c;
    const dv = this.#dv;
    this.#u8.fill(0, ptr, ptr + Layout.FDSTAT);
    if (kind !== CLOSED) {
      dv.setUint8(ptr, Filetype.CHARACTER_DEVICE);
      dv.setUint16(ptr + 2, this.#stdioFlags[fd]!, true);
      const rights = STDIO_BASE & (kind === STDIN ? ~Rights.FD_WRITE : ~Rights.FD_READ);
      dv.setUint32(ptr + 8, rights, true);
    } else if (d !== undefined) {
      dv.setUint8(ptr, d.filetype);
      dv.setUint16(ptr + 2, d.fdflags, true);
      dv.setUint32(ptr + 8, d.rightsBase >>> 0, true);
      dv.setUint32(ptr + 16, d.rightsInheriting >>> 0, true);
    }
    return this.#done(0);
  }

  #setFlags(fd: number, flags: number): number {
    const kind = this.#stdioKind(fd);
    if (kind !== CLOSED) {
      this.#detailFd(fd);
      const c = this.#cross(this.#ids.open, flags < 0 || flags > 31 ? Errno.INVAL : 0, Errno.ACCES);
      if (c >= 0) return c;
      this.#stdioFlags[fd] = flags;
      return this.#done(0);
    }
    return this.#fdSimple(fd, this.#ids.open, () => this.fs.setFlags(fd, flags), Errno.INVAL);
  }

  #filestat(fd: number, ptr: number): number {
    const kind = this.#stdioKind(fd);
    const d = this.fs.descriptor(fd);
    let err = !this.#mem() || !this.#inBounds(ptr, Layout.FILESTAT) ? Errno.FAULT : 0;
    if (err === 0 && kind === CLOSED && d === undefined) err = Errno.BADF;
    if (d !== undefined) this.#gate.args.path = d.guestPath;
    else this.#detailFd(fd);
    const c = this.#cross(kind !== CLOSED ? this.#ids.terminal : this.#ids.stat, err, Errno.ACCES);
    if (c >= 0) return c;
    if (kind !== CLOSED) {
      this.#u8.fill(0, ptr, ptr + Layout.FILESTAT);
      this.#dv.setUint8(ptr + 16, Filetype.CHARACTER_DEVICE);
      return this.#done(0);
    }
    const r = this.fs.stat(fd, this.#stat);
    if (r < 0) return this.#done(-r);
    this.#writeStat(ptr);
    return this.#done(0);
  }

  #writeStat(ptr: number): void {
    const s = this.#stat;
    const dv = this.#dv;
    this.#u8.fill(0, ptr, ptr + Layout.FILESTAT);
    dv.setBigUint64(ptr, s.dev, true);
    dv.setBigUint64(ptr + 8, s.ino, true);
    dv.setUint8(ptr + 16, s.filetype);
    dv.setBigUint64(ptr + 24, s.nlink, true);
    dv.setBigUint64(ptr + 32, s.size, true);
    dv.setBigUint64(ptr + 40, s.atim, true);
    dv.setBigUint64(ptr + 48, s.mtim, true);
    dv.setBigUint64(ptr + 56, s.ctim, true);
  }

  #seek(fd: number, offset: bigint, whence: number, outPtr: number): number {
    const kind = this.#stdioKind(fd);
    const d = this.fs.descriptor(fd);
    let err = !this.#mem() || !this.#inBounds(outPtr, 8) ? Errno.FAULT : 0;
    if (err === 0) {
      if (kind !== CLOSED) err = Errno.SPIPE;
      else if (d === undefined) err = Errno.BADF;
      else if (whence < 0 || whence > 2) err = Errno.INVAL;
      else if (offset > BigInt(Number.MAX_SAFE_INTEGER) || offset < -BigInt(Number.MAX_SAFE_INTEGER)) err = Errno.INVAL;
    }
    if (d !== undefined) this.#gate.args.path = d.guestPath;
    else this.#detailFd(fd);
    const c = this.#cross(this.#ids.stat, err, Errno.ACCES);
    if (c >= 0) return c;
    const r = this.fs.seek(fd, Number(offset), whence);
    if (r < 0) return this.#done(-r);
    this.#setU64(outPtr, r);
    return this.#done(0);
  }

  #prestat(fd: number, statPtr: number, namePtr: number, nameLen: number): number {
    const d = this.fs.descriptor(fd);
    const pre = d?.preopen;
    let err = this.#mem() ? 0 : Errno.FAULT;
    if (err === 0 && statPtr >= 0 && !this.#inBounds(statPtr, Layout.PRESTAT)) err = Errno.FAULT;
    if (err === 0 && namePtr >= 0 && !this.#inBounds(namePtr, nameLen)) err = Errno.FAULT;
    if (err === 0 && pre === undefined) err = Errno.BADF;
    const name = pre === undefined ? new Uint8Array(0) : this.#encoder.encode(pre);
    if (err === 0 && namePtr >= 0 && nameLen < name.length) err = Errno.NAMETOOLONG;
    if (pre !== undefined) this.#gate.args.path = pre;
    else this.#detailFd(fd);
    const c = this.#cross(this.#ids.preopens, err, Errno.BADF);
    if (c >= 0) return c;
    if (statPtr >= 0) {
      this.#u8.fill(0, statPtr, statPtr + Layout.PRESTAT);
      this.#dv.setUint32(statPtr + 4, name.length, true);
    } else this.#u8.set(name, namePtr);
    return this.#done(0);
  }

  #readdir(fd: number, buf: number, len: number, cookie: bigint, outPtr: number): number {
    const d = this.fs.descriptor(fd);
    let err = !this.#mem() || !this.#inBounds(buf, len) || !this.#inBounds(outPtr, 4) ? Errno.FAULT : 0;
    if (err === 0 && d === undefined) err = this.#stdioKind(fd) !== CLOSED ? Errno.NOTDIR : Errno.BADF;
    if (d !== undefined) this.#gate.args.path = d.guestPath;
    else this.#detailFd(fd);
    const c = this.#cross(this.#ids.readdir, err, Errno.ACCES);
    if (c >= 0) return c;
    const list = this.fs.readdir(fd, cookie);
    if (typeof list === 'number') return this.#done(-list);
    const rec = this.#dirent;
    const dv = this.#direntView;
    let at = 0;
    for (let i = cookie > BigInt(list.length) ? list.length : Number(cookie); i < list.length && at < len; i++) {
      const e = list[i]!;
      rec.fill(0);
      dv.setBigUint64(0, BigInt(i + 1), true);
      dv.setBigUint64(8, e.ino, true);
      dv.setUint32(16, e.name.length, true);
      dv.setUint8(20, e.type);
      const h = Math.min(Layout.DIRENT, len - at);
      this.#u8.set(rec.subarray(0, h), buf + at);
      at += h;
      const nl = Math.min(e.name.length, len - at);
      if (nl > 0) this.#u8.set(e.name.subarray(0, nl), buf + at);
      at += nl;
    }
    this.#dv.setUint32(outPtr, at, true);
    return this.#done(0, this.#u8.subarray(buf, buf + at));
  }

  #pathSimple(id: number, fd: number, ptr: number, len: number, op: (path: string, guard: PathGuard) => number): number {
    const path = this.#mem() ? this.#path(ptr >>> 0, len >>> 0) : Errno.FAULT;
    const lexical = this.#lexical(fd, path);
    if (lexical === undefined) this.#detailFd(fd);
    return this.#pathOp(id, lexical, undefined, typeof path === 'number' ? path : 0, () => op(path as string, this.#guard));
  }

  #pathTwo(id: number, ofd: number, op: number, ol: number, nfd: number, np: number, nl: number, fn: (a: string, b: string, g: PathGuard) => number): number {
    const mem = this.#mem();
    const a = mem ? this.#path(op >>> 0, ol >>> 0) : Errno.FAULT;
    const b = mem ? this.#path(np >>> 0, nl >>> 0) : Errno.FAULT;
    const la = this.#lexical(ofd, a);
    const lb = this.#lexical(nfd, b);
    if (la === undefined) this.#detailFd(ofd);
    else if (lb !== undefined) this.#gate.args.detail = `to ${lb}`;
    const err = typeof a === 'number' ? a : typeof b === 'number' ? b : 0;
    return this.#pathOp(id, la, lb, err, () => fn(a as string, b as string, this.#guard));
  }

  #pathStat(fd: number, flags: number, ptr: number, len: number, buf: number): number {
    const mem = this.#mem();
    const path = mem ? this.#path(ptr, len) : Errno.FAULT;
    let err = typeof path === 'number' ? path : 0;
    if (err === 0 && !this.#inBounds(buf, Layout.FILESTAT)) err = Errno.FAULT;
    const lexical = this.#lexical(fd, path);
    if (lexical === undefined) this.#detailFd(fd);
    const r = this.#pathOp(this.#ids.stat, lexical, undefined, err, () => this.fs.statAt(fd, path as string, (flags & 1) !== 0, this.#stat, this.#guard));
    if (r === 0) this.#writeStat(buf);
    return r;
  }

  #open(fd: number, dirflags: number, ptr: number, len: number, oflags: number, base: bigint, inh: bigint, fdflags: number, out: number): number {
    const mem = this.#mem();
    const path = mem ? this.#path(ptr, len) : Errno.FAULT;
    let err = typeof path === 'number' ? path : 0;
    if (err === 0 && !this.#inBounds(out, 4)) err = Errno.FAULT;
    if (err === 0 && (oflags & ~15) !== 0) err = Errno.INVAL;
    const lexical = this.#lexical(fd, path);
    if (lexical === undefined) this.#detailFd(fd);
    let opened = -1;
    // An open that can change the file (create, truncate, or write/resize/append rights) is decided as a write
    // on the path: a policy allowing only `open` and `read` must not let a guest create or empty files.
    const writes = (oflags & (Oflags.CREAT | Oflags.TRUNC)) !== 0 || (fdflags & Fdflags.APPEND) !== 0 || (base & WRITE_RIGHTS) !== 0n;
    const r = this.#pathOp(writes ? this.#ids.write : this.#ids.open, lexical, undefined, err, () => {
      const rb = Number(base & 0xffffffffn);
      const ri = Number(inh & 0xffffffffn);
      const res = this.fs.open(fd, path as string, dirflags, oflags, rb, ri, fdflags, this.#guard);
      if (res >= 0) opened = res;
      return res < 0 ? res : 0;
    });
    if (r === 0) this.#dv.setUint32(out, opened, true);
    return r;
  }

  #readlink(fd: number, ptr: number, len: number, buf: number, bufLen: number, out: number): number {
    const mem = this.#mem();
    const path = mem ? this.#path(ptr, len) : Errno.FAULT;
    let err = typeof path === 'number' ? path : 0;
    if (err === 0 && (!this.#inBounds(buf, bufLen) || !this.#inBounds(out, 4))) err = Errno.FAULT;
    const lexical = this.#lexical(fd, path);
    if (lexical === undefined) this.#detailFd(fd);
    let target: Uint8Array | null = null;
    const r = this.#pathOp(this.#ids.readlink, lexical, undefined, err, () => {
      const res = this.fs.readlink(fd, path as string, this.#guard);
      if (typeof res === 'number') return res;
      target = res;
      return 0;
    });
    if (r === 0 && target !== null) {
      const t: Uint8Array = target;
      const n = Math.min(t.length, bufLen);
      this.#u8.set(t.subarray(0, n), buf);
      this.#dv.setUint32(out, n, true);
    }
    return r;
  }

  #symlink(tp: number, tl: number, fd: number, ptr: number, len: number): number {
    const mem = this.#mem();
    const target = mem ? this.#path(tp, tl) : Errno.FAULT;
    const path = mem ? this.#path(ptr, len) : Errno.FAULT;
    const lexical = this.#lexical(fd, path);
    if (lexical === undefined) this.#detailFd(fd);
    else if (typeof target === 'string') this.#gate.args.detail = `-> ${target}`;
    const err = typeof target === 'number' ? target : typeof path === 'number' ? path : 0;
    return this.#pathOp(this.#ids.symlink, lexical, undefined, err, () => this.fs.symlink(target as string, fd, path as string, this.#guard));
  }

  #sock(id: number, fd: number, err: number): number {
    const e = err !== 0 ? err : this.#stdioKind(fd) !== CLOSED || this.fs.descriptor(fd) !== undefined ? Errno.NOTSOCK : Errno.BADF;
    this.#detailFd(fd);
    const c = this.#cross(id, e, Errno.NOTCAPABLE);
    return c >= 0 ? c : this.#done(0);
  }

  #poll(inp: number, out: number, n: number, noutPtr: number): number {
    let err = !this.#mem() || !this.#inBounds(inp, n * Layout.SUBSCRIPTION) || !this.#inBounds(out, n * Layout.EVENT) || !this.#inBounds(noutPtr, 4) ? Errno.FAULT : 0;
    if (err === 0 && n === 0) err = Errno.INVAL;
    const dv = this.#dv;
    // Copy the subscriptions out first.
    const subs: { userdata: bigint; tag: number; clock: number; timeout: bigint; abs: boolean; fd: number }[] = [];
    let fdSubs = false;
    if (err === 0) {
      for (let i = 0; i < n; i++) {
        const p = inp + i * Layout.SUBSCRIPTION;
        const tag = dv.getUint8(p + 8);
        subs.push({
          userdata: dv.getBigUint64(p, true),
          tag,
          clock: dv.getUint32(p + 16, true),
          timeout: dv.getBigUint64(p + 24, true),
          abs: (dv.getUint16(p + 40, true) & Subclockflags.ABSTIME) !== 0,
          fd: dv.getUint32(p + 16, true),
        });
        if (tag !== Eventtype.CLOCK) fdSubs = true;
      }
    }
    this.#gate.args.size = n;
    const c = this.#cross(fdSubs ? this.#ids.poll : this.#ids.subscribe, err, Errno.ACCES);
    if (c >= 0) return c;
    // Events: fd subscriptions are ready at once (regular files, stdio); bad ones report their errno.
    const events: { userdata: bigint; error: number; type: number; nbytes: number }[] = [];
    for (const s of subs) {
      if (s.tag === Eventtype.CLOCK) continue;
      let error = 0;
      let nbytes = 0;
      if (s.tag !== Eventtype.FD_READ && s.tag !== Eventtype.FD_WRITE) error = Errno.INVAL;
      else {
        const kind = this.#stdioKind(s.fd);
        const d = this.fs.descriptor(s.fd);
        if (kind === STDIN) {
          if (s.tag === Eventtype.FD_READ) nbytes = Math.max(0, this.#stdinBuf.length - this.#stdinPos);
          else error = Errno.BADF;
        } else if (kind === STDOUT || kind === STDERR) {
          if (s.tag === Eventtype.FD_WRITE) nbytes = Math.max(0, this.#maxOut - this.outputBytes);
          else error = Errno.BADF;
        } else if (d === undefined || d.filetype === Filetype.DIRECTORY) error = Errno.BADF;
        else if ((d.rightsBase & Rights.POLL_FD_READWRITE) === 0) error = Errno.NOTCAPABLE;
        else if (s.tag === Eventtype.FD_READ && this.fs.stat(s.fd, this.#stat) === 0) {
          const pos = this.fs.tell(s.fd);
          nbytes = Math.max(0, Number(this.#stat.size) - (pos < 0 ? 0 : pos));
        }
      }
      events.push({ userdata: s.userdata, error, type: s.tag, nbytes });
    }
    // Clocks: wait (interruptibly: termination wakes the wait) until the earliest deadline unless an fd is ready.
    let wait = Infinity;
    const deadlines: number[] = [];
    for (const s of subs) {
      if (s.tag !== Eventtype.CLOCK) {
        deadlines.push(NaN);
        continue;
      }
      if (s.clock > Clockid.THREAD_CPUTIME_ID) {
        events.push({ userdata: s.userdata, error: Errno.INVAL, type: Eventtype.CLOCK, nbytes: 0 });
        deadlines.push(NaN);
        continue;
      }
      const now = this.#now(s.clock);
      const t = Number(s.timeout);
      const remaining = s.abs ? t - now : t;
      deadlines.push(remaining);
      wait = Math.min(wait, remaining);
    }
    if (events.length === 0 && wait > 0 && Number.isFinite(wait)) this.#sleep(wait / 1e6);
    if (events.length === 0 || wait <= 0) {
      subs.forEach((s, i) => {
        const dl = deadlines[i]!;
        if (s.tag === Eventtype.CLOCK && !Number.isNaN(dl) && dl <= wait) events.push({ userdata: s.userdata, error: 0, type: Eventtype.CLOCK, nbytes: 0 });
      });
    }
    this.#mem(); // the views may be stale only if memory grew, which cannot happen here; kept for safety
    const odv = this.#dv;
    events.forEach((e, i) => {
      const p = out + i * Layout.EVENT;
      this.#u8.fill(0, p, p + Layout.EVENT);
      odv.setBigUint64(p, e.userdata, true);
      odv.setUint16(p + 8, e.error, true);
      odv.setUint8(p + 10, e.type);
      this.#setU64(p + 16, e.nbytes);
    });
    odv.setUint32(noutPtr, events.length, true);
    return this.#done(0, this.#u8.subarray(out, out + events.length * Layout.EVENT));
  }

  #sleep(ms: number): void {
    const control = this.#gate.control;
    const end = performance.now() + ms;
    if (control.buffer instanceof SharedArrayBuffer) {
      let left = ms;
      while (left > 0) {
        if (Atomics.wait(control, CONTROL_STATE, ContainerState.Running, left) === 'not-equal') return;
        if (Atomics.load(control, CONTROL_STATE) !== ContainerState.Running) return;
        left = end - performance.now();
      }
      return;
    }
    this.#sleeper ??= new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(this.#sleeper, 0, 0, ms);
  }
}
