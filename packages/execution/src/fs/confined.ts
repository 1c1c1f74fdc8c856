import {
  closeSync,
  constants as C,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  futimesSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type BigIntStats,
  type Dirent,
} from 'node:fs';
import { ForgeError } from '@forgeone/common';
import { canonicalPath } from '../gate/canonical.js';
import {
  ADVICE_MAX,
  ALL_RIGHTS,
  DIR_RIGHTS,
  Errno,
  FILE_RIGHTS,
  Fdflags,
  Filetype,
  Fstflags,
  Lookupflags,
  Oflags,
  Rights,
  WRITE_RIGHTS,
  Whence,
  errnoOf,
} from './constants.js';

/** A host directory made visible to the guest under a guest path. */
export interface Preopen {
  /** Where the guest sees it, an absolute guest path such as `/data`. */
  readonly guestPath: string;
  /** The host directory. */
  readonly hostPath: string;
  /** Refuse every change under it (no write, create, remove, rename, link, symlink, truncate, set-times). */
  readonly readOnly?: boolean;
}

/** Options of {@link ConfinedFs}. */
export interface ConfinedFsOptions {
  /** The directories the guest gets; none by default (nothing to open). */
  readonly preopens?: readonly Preopen[];
  /** Most descriptors open at once, preopens included; further opens fail with `EMFILE`. Default 128. */
  readonly maxOpenFiles?: number;
  /** The first descriptor number this layer hands out (the preview1 host keeps 0–2 for stdio). Default 3. */
  readonly firstFd?: number;
  /**
   * Most entries examined when a directory is renamed into another directory (the scan for symlinks whose
   * target would change meaning, see {@link ConfinedFs.rename}); a larger tree is refused with `EXDEV`,
   * which tells programs to copy instead. Default 10000.
   */
  readonly maxRenameScan?: number;
}

/**
 * Authorises one path operation once the path is resolved, before anything changes. The preview1 host
 * crosses the gate here, so the policy sees where the call really lands (symlinks inside the preopen
 * followed), not only what the guest wrote. Rename and link call it for both paths, in order (the second
 * only when the first was allowed), also when a path fails to resolve: that path is then passed as the
 * canonical lexical path the guest wrote, and the resolution errno is returned once both were allowed.
 * @param guestPath - the canonical absolute guest path the operation acts on
 * @param index - 0 for the (first) path, 1 for the second path of rename and link
 * @returns true to proceed; false refuses the operation with `-EACCES`
 */
export type PathGuard = (guestPath: string, index: number) => boolean;

/** The metadata of a file, in WASI `filestat` terms (times in ns since the epoch). */
export interface FileStat {
  /** Device id. */
  dev: bigint;
  /** Inode number. */
  ino: bigint;
  /** WASI filetype ({@link Filetype}). */
  filetype: number;
  /** Hard-link count. */
  nlink: bigint;
  /** Size in bytes. */
  size: bigint;
  /** Last access, ns. */
  atim: bigint;
  /** Last modification, ns. */
  mtim: bigint;
  /** Last status change, ns. */
  ctim: bigint;
}

/**
 * @returns a zeroed {@link FileStat} to pass to the stat methods (reuse it)
 */
export function createFileStat(): FileStat {
  return { dev: 0n, ino: 0n, filetype: 0, nlink: 0n, size: 0n, atim: 0n, mtim: 0n, ctim: 0n };
}

/** One directory entry of a {@link ConfinedFs.readdir} snapshot. */
export interface DirEntry {
  /** The name's bytes as stored on the host. */
  readonly name: Uint8Array;
  /** Inode number. */
  readonly ino: bigint;
  /** WASI filetype. */
  readonly type: number;
}

/** What the host may know of an open descriptor. */
export interface FsDescriptor {
  /** WASI filetype of the descriptor. */
  readonly filetype: number;
  /** Canonical guest path it was opened as (after symlinks inside the preopen were followed). */
  readonly guestPath: string;
  /** Rights of the descriptor. */
  readonly rightsBase: number;
  /** Rights descriptors opened from it may get. */
  readonly rightsInheriting: number;
  /** WASI fdflags. */
  readonly fdflags: number;
  /** The preopen's guest path when this descriptor is a preopen, else undefined. */
  readonly preopen: string | undefined;
}

interface Root {
  readonly guestPath: string;
  readonly hostReal: string;
  readonly readOnly: boolean;
}

class Entry implements FsDescriptor {
  pos = 0;
  dirents: DirEntry[] | null = null;
  constructor(
    public hostFd: number,
    public readonly filetype: number,
    public readonly root: Root,
    public readonly guestPath: string,
    public rightsBase: number,
    public rightsInheriting: number,
    public fdflags: number,
    public readonly preopen: string | undefined,
    public readonly seekable: boolean,
  ) {}
}

interface Walk {
  /** Host fds opened by the walk (closed by #release). */
  readonly owned: number[];
  /** The directory the final name is in. */
  readonly top: number;
  /** The final name, or null when the path names the directory `top` itself. */
  readonly name: string | null;
  /** Canonical guest path of the target. */
  readonly guest: string;
  /** Whether the path ended in `/` or `/.` (the target must be a directory). */
  readonly mustDir: boolean;
}

const O_PATH = 0o10000000;
const PROC_FD = '/proc/self/fd/';
const MAX_SYMLINKS = 40;
const WANT_WRITE = Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_DATASYNC;
const WANT_READ = Rights.FD_READ | Rights.FD_READDIR;

/**
 * The creation rule for guest symlinks: the target is relative, has no `..` component and names at least one
 * entry (not only `.`). Through real directories and other such links it leads strictly below its own
 * directory wherever it is, so renaming or linking it, or moving a directory that holds it, can never make
 * it point out of its new place's subtree (docs/wasi.md, "Symlinks and moves").
 * @param target - the link's contents
 * @returns true when the target is position-independent and downward
 */
export function isDownwardTarget(target: string): boolean {
  if (target === '' || target.startsWith('/')) return false;
  let names = 0;
  for (const part of target.split('/')) {
    if (part === '..') return false;
    if (part !== '' && part !== '.') names++;
  }
  return names > 0;
}

/**
 * Whether a relative symlink target, read from a directory `level` levels below a directory D (0: the link
 * is directly in D), climbs above D lexically: moving D (or, at level 0, moving the link out of D) would
 * change where it points. Absolute targets do not depend on where the link is (and are never followed).
 * @param target - the link's contents
 * @param level - depth of the link's directory below D
 * @returns true when some prefix of the target leads above D
 */
export function climbsAbove(target: string, level: number): boolean {
  if (target.startsWith('/')) return false;
  let depth = level;
  for (const part of target.split('/')) {
    if (part === '..') {
      if (--depth < 0) return true;
    } else if (part !== '' && part !== '.') depth++;
  }
  return false;
}

function filetypeOf(st: BigIntStats): number {
  if (st.isFile()) return Filetype.REGULAR_FILE;
  if (st.isDirectory()) return Filetype.DIRECTORY;
  if (st.isSymbolicLink()) return Filetype.SYMBOLIC_LINK;
  if (st.isCharacterDevice()) return Filetype.CHARACTER_DEVICE;
  if (st.isBlockDevice()) return Filetype.BLOCK_DEVICE;
  if (st.isSocket()) return Filetype.SOCKET_STREAM;
  return Filetype.UNKNOWN;
}

function fillStat(out: FileStat, st: BigIntStats): void {
  out.dev = st.dev;
  out.ino = st.ino;
  out.filetype = filetypeOf(st);
  out.nlink = st.nlink;
  out.size = st.size;
  out.atim = st.atimeNs;
  out.mtim = st.mtimeNs;
  out.ctim = st.ctimeNs;
}

function splitPath(path: string): string[] {
  const out: string[] = [];
  for (const p of path.split('/')) if (p !== '' && p !== '.') out.push(p);
  return out;
}

function endsAsDir(path: string): boolean {
  return path.endsWith('/') || path.endsWith('/.') || path === '.';
}

/**
 * A confined filesystem: the guest's view of its preopened directories, with a descriptor table and
 * errno-returning operations shared by the WASI preview1 host and the WASI 0.2 host.
 *
 * Confinement is done here, not by the kernel's path walk: every path is taken component by component
 * from an open directory descriptor (through `/proc/self/fd/N/name`, so no host path string is ever
 * re-resolved), `..` pops back to a directory already held (or opens the parent and checks it is still
 * inside the preopen), and every symlink is read and spliced in by this code: absolute targets and
 * targets leading above the preopen root are refused with `ENOTCAPABLE`. The final component is opened
 * with `O_NOFOLLOW`, and the opened descriptor's real path (`/proc/self/fd/N`) must lie inside the
 * preopen's real root, else it is closed and the call refused — no window between check and use.
 * Linux only (`/proc` is required).
 *
 * Every method returns a non-negative result (0, a descriptor, a byte count, an offset) or a negated
 * WASI errno ({@link Errno}); none throws for guest input.
 */
export class ConfinedFs {
  readonly #entries: (Entry | undefined)[] = [];
  readonly #roots: Root[] = [];
  readonly #max: number;
  readonly #first: number;
  readonly #maxScan: number;
  #count = 0;

  /**
   * Open the preopens (each gets the next descriptor from `firstFd` on).
   * @param options - preopens, descriptor limit, first descriptor number
   * @throws ForgeError `IO_ERROR` when a preopen's host directory cannot be opened, `INVALID_ARGUMENT`
   *   for a relative guest path, `SANDBOX_LIMIT_EXCEEDED` when the preopens exceed `maxOpenFiles`
   */
  constructor(options: ConfinedFsOptions = {}) {
    this.#max = options.maxOpenFiles ?? 128;
    this.#first = options.firstFd ?? 3;
    this.#maxScan = options.maxRenameScan ?? 10_000;
    if (!Number.isInteger(this.#max) || this.#max < 0) throw new ForgeError('INVALID_ARGUMENT', 'maxOpenFiles must be a non-negative integer');
    if (!Number.isInteger(this.#maxScan) || this.#maxScan < 0) throw new ForgeError('INVALID_ARGUMENT', 'maxRenameScan must be a non-negative integer');
    const preopens = options.preopens ?? [];
    if (preopens.length > this.#max) {
      throw new ForgeError('SANDBOX_LIMIT_EXCEEDED', `${preopens.length} preopens exceed maxOpenFiles ${this.#max}`);
    }
    for (const p of preopens) {
      if (!p.guestPath.startsWith('/')) throw new ForgeError('INVALID_ARGUMENT', `preopen guest path must be absolute: ${JSON.stringify(p.guestPath)}`);
      let fd: number;
      let real: string;
      try {
        real = realpathSync(p.hostPath);
        fd = openSync(real, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      } catch (cause) {
        this.dispose();
        throw new ForgeError('IO_ERROR', `cannot open preopen ${JSON.stringify(p.hostPath)}`, { cause, details: { hostPath: p.hostPath } });
      }
      const root: Root = { guestPath: canonicalPath(p.guestPath), hostReal: real, readOnly: p.readOnly === true };
      this.#roots.push(root);
      const rights = root.readOnly ? ALL_RIGHTS & ~WRITE_RIGHTS : ALL_RIGHTS;
      this.#add(new Entry(fd, Filetype.DIRECTORY, root, root.guestPath, rights & DIR_RIGHTS, rights, 0, root.guestPath, false));
    }
  }

  /** Descriptors open now, preopens included. */
  get openCount(): number {
    return this.#count;
  }

  /**
   * What the host may know of a descriptor.
   * @param fd - a descriptor number
   * @returns the descriptor, or undefined when it is not open
   */
  descriptor(fd: number): FsDescriptor | undefined {
    return this.#entries[fd];
  }

  /**
   * Open a file or directory relative to a directory descriptor (WASI `path_open`).
   * @param dirfd - an open directory descriptor with `PATH_OPEN`
   * @param path - a relative guest path
   * @param lookupflags - `SYMLINK_FOLLOW` to follow a final symlink (inside the preopen only)
   * @param oflags - CREAT, DIRECTORY, EXCL, TRUNC
   * @param rightsBase - rights asked for; read/write access follows from them
   * @param rightsInheriting - rights descriptors opened from the new one may get
   * @param fdflags - APPEND, DSYNC, NONBLOCK, RSYNC, SYNC
   * @param guard - authorises the resolved path
   * @returns the new descriptor, or a negated errno
   */
  open(
    dirfd: number,
    path: string,
    lookupflags: number,
    oflags: number,
    rightsBase: number,
    rightsInheriting: number,
    fdflags: number,
    guard?: PathGuard,
  ): number {
    const dir = this.#entries[dirfd];
    if (dir === undefined) return -Errno.BADF;
    if (dir.filetype !== Filetype.DIRECTORY) return -Errno.NOTDIR;
    if ((dir.rightsBase & Rights.PATH_OPEN) === 0) return -Errno.NOTCAPABLE;
    if ((oflags & Oflags.CREAT) !== 0 && (dir.rightsBase & Rights.PATH_CREATE_FILE) === 0) return -Errno.NOTCAPABLE;
    if ((oflags & Oflags.TRUNC) !== 0 && (dir.rightsBase & Rights.PATH_FILESTAT_SET_SIZE) === 0) return -Errno.NOTCAPABLE;
    if ((oflags & Oflags.DIRECTORY) !== 0 && (oflags & (Oflags.CREAT | Oflags.TRUNC)) !== 0) return -Errno.INVAL;
    // A directory is never opened for writing: asking for O_DIRECTORY with write rights opens it read-only.
    const wantWrite = (rightsBase & WANT_WRITE) !== 0 && (oflags & Oflags.DIRECTORY) === 0;
    const wantRead = (rightsBase & WANT_READ) !== 0;
    if (wantWrite && (dir.rightsInheriting & Rights.FD_WRITE) === 0) return -Errno.NOTCAPABLE;
    if ((fdflags & (Fdflags.DSYNC | Fdflags.RSYNC | Fdflags.SYNC)) !== 0 && (rightsBase & (Rights.FD_SYNC | Rights.FD_DATASYNC)) === 0) {
      return -Errno.NOTCAPABLE;
    }
    const walk = this.#walk(dir, path, (lookupflags & Lookupflags.SYMLINK_FOLLOW) !== 0);
    if (typeof walk === 'number') return walk;
    try {
      if (guard !== undefined && !guard(walk.guest, 0)) return -Errno.ACCES;
      if (this.#count >= this.#max) return -Errno.MFILE;
      let flags = C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY;
      flags |= wantWrite ? (wantRead ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
      if ((oflags & Oflags.CREAT) !== 0) flags |= C.O_CREAT;
      if ((oflags & Oflags.EXCL) !== 0) flags |= C.O_EXCL;
      if ((oflags & Oflags.TRUNC) !== 0) flags |= C.O_TRUNC;
      if ((oflags & Oflags.DIRECTORY) !== 0 || walk.mustDir) flags |= C.O_DIRECTORY;
      if ((fdflags & Fdflags.DSYNC) !== 0) flags |= C.O_DSYNC;
      if ((fdflags & (Fdflags.SYNC | Fdflags.RSYNC)) !== 0) flags |= C.O_SYNC;
      let target: string;
      if (walk.name === null) {
        if ((oflags & (Oflags.CREAT | Oflags.EXCL)) === (Oflags.CREAT | Oflags.EXCL)) return -Errno.EXIST;
        if (wantWrite) return -Errno.ISDIR;
        target = `${PROC_FD}${walk.top}`;
        flags &= ~(C.O_NOFOLLOW | C.O_CREAT | C.O_TRUNC); // the magic link must be followed; it is the verified walk result
      } else {
        target = `${PROC_FD}${walk.top}/${walk.name}`;
      }
      let fd: number;
      try {
        fd = openSync(target, flags, 0o666);
      } catch (e) {
        return -errnoOf(e);
      }
      let st: BigIntStats;
      try {
        if (!this.#inside(fd, dir.root)) {
          closeSync(fd);
          return -Errno.NOTCAPABLE;
        }
        st = fstatSync(fd, { bigint: true });
      } catch (e) {
        closeSync(fd);
        return -errnoOf(e);
      }
      const type = filetypeOf(st);
      const isDir = type === Filetype.DIRECTORY;
      const base = rightsBase & dir.rightsInheriting & (isDir ? DIR_RIGHTS : FILE_RIGHTS);
      const inheriting = rightsInheriting & dir.rightsInheriting;
      const seekable = type === Filetype.REGULAR_FILE || type === Filetype.BLOCK_DEVICE;
      const flagsKept = fdflags & (Fdflags.APPEND | Fdflags.NONBLOCK | Fdflags.DSYNC | Fdflags.RSYNC | Fdflags.SYNC);
      return this.#add(new Entry(fd, type, dir.root, walk.guest, base, inheriting, flagsKept, undefined, seekable));
    } finally {
      this.#release(walk);
    }
  }

  /**
   * Read at the descriptor's offset, advancing it.
   * @param fd - a file descriptor with `FD_READ`
   * @param buf - destination
   * @param off - offset in `buf`
   * @param len - most bytes to read
   * @returns bytes read (0 at end of file), or a negated errno
   */
  read(fd: number, buf: Uint8Array, off: number, len: number): number {
    const e = this.#entries[fd];
    if (e === undefined || e.filetype === Filetype.DIRECTORY || (e.rightsBase & Rights.FD_READ) === 0) return -Errno.BADF;
    try {
      const n = readSync(e.hostFd, buf, off, len, e.seekable ? e.pos : null);
      e.pos += n;
      return n;
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Read at an offset without moving the descriptor's offset.
   * @param fd - a file descriptor with `FD_READ` and `FD_SEEK`
   * @param buf - destination
   * @param off - offset in `buf`
   * @param len - most bytes to read
   * @param position - file offset
   * @returns bytes read, or a negated errno
   */
  pread(fd: number, buf: Uint8Array, off: number, len: number, position: number): number {
    const e = this.#entries[fd];
    if (e === undefined || e.filetype === Filetype.DIRECTORY || (e.rightsBase & Rights.FD_READ) === 0) return -Errno.BADF;
    if (!e.seekable) return -Errno.SPIPE;
    if ((e.rightsBase & Rights.FD_SEEK) === 0) return -Errno.NOTCAPABLE;
    try {
      return readSync(e.hostFd, buf, off, len, position);
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Write at the descriptor's offset (at the end when it has `APPEND`), advancing it.
   * @param fd - a file descriptor with `FD_WRITE`
   * @param buf - source
   * @param off - offset in `buf`
   * @param len - bytes to write
   * @returns bytes written, or a negated errno
   */
  write(fd: number, buf: Uint8Array, off: number, len: number): number {
    const e = this.#entries[fd];
    if (e === undefined || e.filetype === Filetype.DIRECTORY || (e.rightsBase & Rights.FD_WRITE) === 0) return -Errno.BADF;
    try {
      if ((e.fdflags & Fdflags.APPEND) !== 0 && e.seekable) e.pos = fstatSync(e.hostFd).size;
      const n = writeSync(e.hostFd, buf, off, len, e.seekable ? e.pos : null);
      e.pos += n;
      return n;
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Write at an offset without moving the descriptor's offset (also for `APPEND` descriptors).
   * @param fd - a file descriptor with `FD_WRITE` and `FD_SEEK`
   * @param buf - source
   * @param off - offset in `buf`
   * @param len - bytes to write
   * @param position - file offset
   * @returns bytes written, or a negated errno
   */
  pwrite(fd: number, buf: Uint8Array, off: number, len: number, position: number): number {
    const e = this.#entries[fd];
    if (e === undefined || e.filetype === Filetype.DIRECTORY || (e.rightsBase & Rights.FD_WRITE) === 0) return -Errno.BADF;
    if (!e.seekable) return -Errno.SPIPE;
    if ((e.rightsBase & Rights.FD_SEEK) === 0) return -Errno.NOTCAPABLE;
    try {
      return writeSync(e.hostFd, buf, off, len, position);
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Move the descriptor's offset.
   * @param fd - a file descriptor with `FD_SEEK` (or `FD_TELL` for a zero move from the current offset)
   * @param offset - signed distance
   * @param whence - {@link Whence}
   * @returns the new offset, or a negated errno (`EINVAL` for a negative result or bad whence)
   */
  seek(fd: number, offset: number, whence: number): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if (e.filetype === Filetype.DIRECTORY) return -Errno.BADF;
    if (!e.seekable) return -Errno.SPIPE;
    const tellOnly = offset === 0 && whence === Whence.CUR;
    if ((e.rightsBase & (tellOnly ? Rights.FD_TELL | Rights.FD_SEEK : Rights.FD_SEEK)) === 0) return -Errno.NOTCAPABLE;
    let base: number;
    if (whence === Whence.SET) base = 0;
    else if (whence === Whence.CUR) base = e.pos;
    else if (whence === Whence.END) {
      try {
        base = fstatSync(e.hostFd).size;
      } catch (err) {
        return -errnoOf(err);
      }
    } else return -Errno.INVAL;
    const next = base + offset;
    if (next < 0 || !Number.isSafeInteger(next)) return -Errno.INVAL;
    e.pos = next;
    return next;
  }

  /**
   * The descriptor's offset.
   * @param fd - a file descriptor with `FD_TELL`
   * @returns the offset, or a negated errno
   */
  tell(fd: number): number {
    const e = this.#entries[fd];
    if (e === undefined || e.filetype === Filetype.DIRECTORY) return -Errno.BADF;
    if (!e.seekable) return -Errno.SPIPE;
    if ((e.rightsBase & Rights.FD_TELL) === 0) return -Errno.NOTCAPABLE;
    return e.pos;
  }

  /**
   * Metadata of an open descriptor.
   * @param fd - a descriptor with `FD_FILESTAT_GET`
   * @param out - filled on success
   * @returns 0, or a negated errno
   */
  stat(fd: number, out: FileStat): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if ((e.rightsBase & Rights.FD_FILESTAT_GET) === 0) return -Errno.NOTCAPABLE;
    try {
      fillStat(out, fstatSync(e.hostFd, { bigint: true }));
      return 0;
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Metadata of a path (WASI `path_filestat_get`).
   * @param dirfd - directory descriptor with `PATH_FILESTAT_GET`
   * @param path - relative guest path
   * @param follow - follow a final symlink (inside the preopen only)
   * @param out - filled on success
   * @param guard - authorises the resolved path
   * @returns 0, or a negated errno
   */
  statAt(dirfd: number, path: string, follow: boolean, out: FileStat, guard?: PathGuard): number {
    return this.#at(dirfd, path, follow, Rights.PATH_FILESTAT_GET, guard, (w) => {
      fillStat(out, lstatSync(w.name === null ? `${PROC_FD}${w.top}/.` : `${PROC_FD}${w.top}/${w.name}`, { bigint: true }));
      if (w.mustDir && out.filetype !== Filetype.DIRECTORY) return -Errno.NOTDIR;
      return 0;
    });
  }

  /**
   * A snapshot of a directory's entries, `.` and `..` first; cookie `n` is the index of the next entry
   * (`d_next`), stable until the next read from cookie 0.
   * @param fd - a directory descriptor with `FD_READDIR`
   * @param cookie - 0 to take a new snapshot, else a `d_next` from an earlier entry
   * @returns the snapshot (read it from index `cookie`), or a negated errno
   */
  readdir(fd: number, cookie: bigint): readonly DirEntry[] | number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if (e.filetype !== Filetype.DIRECTORY) return -Errno.NOTDIR;
    if ((e.rightsBase & Rights.FD_READDIR) === 0) return -Errno.NOTCAPABLE;
    if (cookie === 0n || e.dirents === null) {
      try {
        const dirPath = `${PROC_FD}${e.hostFd}`;
        const list: DirEntry[] = [
          { name: new Uint8Array([0x2e]), ino: fstatSync(e.hostFd, { bigint: true }).ino, type: Filetype.DIRECTORY },
          { name: new Uint8Array([0x2e, 0x2e]), ino: lstatSync(`${dirPath}/..`, { bigint: true }).ino, type: Filetype.DIRECTORY },
        ];
        const prefix = Buffer.from(`${dirPath}/`);
        for (const d of readdirSync(dirPath, { withFileTypes: true, encoding: 'buffer' })) {
          let st: BigIntStats;
          try {
            st = lstatSync(Buffer.concat([prefix, d.name]), { bigint: true });
          } catch {
            continue; // removed meanwhile
          }
          list.push({ name: new Uint8Array(d.name), ino: st.ino, type: filetypeOf(st) });
        }
        e.dirents = list;
      } catch (err) {
        return -errnoOf(err);
      }
    }
    return e.dirents;
  }

  /**
   * Create a directory (WASI `path_create_directory`).
   * @param dirfd - directory descriptor with `PATH_CREATE_DIRECTORY`
   * @param path - relative guest path
   * @param guard - authorises the resolved path
   * @returns 0, or a negated errno
   */
  mkdir(dirfd: number, path: string, guard?: PathGuard): number {
    return this.#at(dirfd, path, false, Rights.PATH_CREATE_DIRECTORY, guard, (w) => {
      if (w.name === null) return -Errno.EXIST;
      mkdirSync(`${PROC_FD}${w.top}/${w.name}`, 0o777);
      return 0;
    });
  }

  /**
   * Remove an empty directory (WASI `path_remove_directory`).
   * @param dirfd - directory descriptor with `PATH_REMOVE_DIRECTORY`
   * @param path - relative guest path
   * @param guard - authorises the resolved path
   * @returns 0, or a negated errno (`ENOTEMPTY`, `ENOTDIR`, ...)
   */
  rmdir(dirfd: number, path: string, guard?: PathGuard): number {
    return this.#at(dirfd, path, false, Rights.PATH_REMOVE_DIRECTORY, guard, (w) => {
      if (w.name === null) return -Errno.INVAL;
      rmdirSync(`${PROC_FD}${w.top}/${w.name}`);
      return 0;
    });
  }

  /**
   * Remove a file or symlink (WASI `path_unlink_file`).
   * @param dirfd - directory descriptor with `PATH_UNLINK_FILE`
   * @param path - relative guest path
   * @param guard - authorises the resolved path
   * @returns 0, or a negated errno (`EISDIR` for a directory)
   */
  unlink(dirfd: number, path: string, guard?: PathGuard): number {
    return this.#at(dirfd, path, false, Rights.PATH_UNLINK_FILE, guard, (w) => {
      if (w.name === null) return -Errno.ISDIR;
      const p = `${PROC_FD}${w.top}/${w.name}`;
      if (w.mustDir) return lstatSync(p).isDirectory() ? -Errno.ISDIR : -Errno.NOTDIR;
      unlinkSync(p);
      return 0;
    });
  }

  /**
   * Read a symlink's target (WASI `path_readlink`).
   * @param dirfd - directory descriptor with `PATH_READLINK`
   * @param path - relative guest path
   * @param guard - authorises the resolved path
   * @returns the target's bytes, or a negated errno (`EINVAL` when not a symlink)
   */
  readlink(dirfd: number, path: string, guard?: PathGuard): Uint8Array | number {
    let out: Uint8Array | null = null;
    const r = this.#at(dirfd, path, false, Rights.PATH_READLINK, guard, (w) => {
      if (w.name === null) return -Errno.INVAL;
      out = readlinkSync(`${PROC_FD}${w.top}/${w.name}`, { encoding: 'buffer' });
      return 0;
    });
    return r < 0 || out === null ? r : out;
  }

  /**
   * Create a symlink (WASI `path_symlink`). The target must be relative, without any `..` component, and
   * name at least one entry ({@link isDownwardTarget}), else `ENOTCAPABLE`: such a link leads below its own
   * directory wherever it is later moved, so no rename, link or directory move can turn it into a way out.
   * @param target - the link's contents
   * @param dirfd - directory descriptor with `PATH_SYMLINK`
   * @param path - relative guest path of the new link
   * @param guard - authorises the resolved path
   * @returns 0, or a negated errno
   */
  symlink(target: string, dirfd: number, path: string, guard?: PathGuard): number {
    if (target === '') return -Errno.NOENT;
    if (target.includes('\0')) return -Errno.INVAL;
    const downward = isDownwardTarget(target);
    return this.#at(dirfd, path, false, Rights.PATH_SYMLINK, guard, (w) => {
      if (w.name === null) return -Errno.EXIST;
      if (!downward) return -Errno.NOTCAPABLE;
      symlinkSync(target, `${PROC_FD}${w.top}/${w.name}`);
      return 0;
    });
  }

  /**
   * Rename a file or directory (WASI `path_rename`); both paths are authorised (guard index 0 and 1), also
   * when one of them fails to resolve, so an attempt to move something out is decided on both paths.
   *
   * A move into another directory must not change where a symlink points ({@link climbsAbove}): a symlink
   * whose target climbs above its directory stays in it (`ENOTCAPABLE`), and a directory is moved only after
   * a scan of its subtree (at most `maxRenameScan` entries, else `EXDEV`) finds no symlink climbing above it
   * (`ENOTCAPABLE`). Guest-made links never climb ({@link isDownwardTarget}); this pins links the host
   * placed. Renames within one directory change no link's meaning and are not scanned.
   * @param oldDirfd - directory descriptor with `PATH_RENAME_SOURCE`
   * @param oldPath - relative guest path
   * @param newDirfd - directory descriptor with `PATH_RENAME_TARGET`
   * @param newPath - relative guest path
   * @param guard - authorises the resolved paths
   * @returns 0, or a negated errno
   */
  rename(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, guard?: PathGuard): number {
    return this.#two(oldDirfd, oldPath, false, Rights.PATH_RENAME_SOURCE, newDirfd, newPath, Rights.PATH_RENAME_TARGET, guard, (a, b) => {
      if (a.name === null || b.name === null) return -Errno.INVAL;
      const from = `${PROC_FD}${a.top}/${a.name}`;
      const st = lstatSync(from);
      if ((a.mustDir || b.mustDir) && !st.isDirectory()) return -Errno.NOTDIR;
      if (!sameDir(a.top, b.top)) {
        const pinned = st.isSymbolicLink() ? (climbsAbove(readlinkSync(from), 0) ? Errno.NOTCAPABLE : 0) : st.isDirectory() ? this.#scanMoved(from) : 0;
        if (pinned !== 0) return -pinned;
      }
      renameSync(from, `${PROC_FD}${b.top}/${b.name}`);
      return 0;
    });
  }

  /**
   * Create a hard link (WASI `path_link`); both paths are authorised (guard index 0 and 1). Without
   * `SYMLINK_FOLLOW` a symlink is linked itself; one whose target climbs above its directory
   * ({@link climbsAbove}) may only be linked within that directory (`ENOTCAPABLE`), as for rename.
   * @param oldDirfd - directory descriptor with `PATH_LINK_SOURCE`
   * @param oldFlags - `SYMLINK_FOLLOW` to link the symlink's target instead of the symlink
   * @param oldPath - relative guest path of the existing file
   * @param newDirfd - directory descriptor with `PATH_LINK_TARGET`
   * @param newPath - relative guest path of the new link
   * @param guard - authorises the resolved paths
   * @returns 0, or a negated errno
   */
  link(oldDirfd: number, oldFlags: number, oldPath: string, newDirfd: number, newPath: string, guard?: PathGuard): number {
    const follow = (oldFlags & Lookupflags.SYMLINK_FOLLOW) !== 0;
    return this.#two(oldDirfd, oldPath, follow, Rights.PATH_LINK_SOURCE, newDirfd, newPath, Rights.PATH_LINK_TARGET, guard, (a, b) => {
      if (a.name === null) return -Errno.PERM;
      if (b.name === null) return -Errno.EXIST;
      if (b.mustDir) return -Errno.NOENT;
      const from = `${PROC_FD}${a.top}/${a.name}`;
      // link(2) never follows a final symlink: a symlink here is linked itself, and it keeps its target.
      if (lstatSync(from).isSymbolicLink() && !sameDir(a.top, b.top) && climbsAbove(readlinkSync(from), 0)) return -Errno.NOTCAPABLE;
      linkSync(from, `${PROC_FD}${b.top}/${b.name}`);
      return 0;
    });
  }

  /**
   * Set a file's size (WASI `fd_filestat_set_size`).
   * @param fd - a file descriptor with `FD_FILESTAT_SET_SIZE`
   * @param size - new size
   * @returns 0, or a negated errno
   */
  truncate(fd: number, size: number): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if (e.filetype === Filetype.DIRECTORY) return -Errno.BADF;
    if ((e.rightsBase & Rights.FD_FILESTAT_SET_SIZE) === 0) return -Errno.NOTCAPABLE;
    if (size < 0 || !Number.isSafeInteger(size)) return -Errno.INVAL;
    try {
      ftruncateSync(e.hostFd, size);
      return 0;
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Make sure `[offset, offset + len)` is allocated (WASI `fd_allocate`): extends the file when shorter.
   * @param fd - a file descriptor with `FD_ALLOCATE`
   * @param offset - start
   * @param len - length
   * @returns 0, or a negated errno
   */
  allocate(fd: number, offset: number, len: number): number {
    const e = this.#entries[fd];
    if (e === undefined || e.filetype === Filetype.DIRECTORY) return -Errno.BADF;
    if ((e.rightsBase & Rights.FD_ALLOCATE) === 0) return -Errno.NOTCAPABLE;
    const end = offset + len;
    if (offset < 0 || len <= 0 || !Number.isSafeInteger(end)) return -Errno.INVAL;
    try {
      if (fstatSync(e.hostFd).size < end) ftruncateSync(e.hostFd, end);
      return 0;
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Declare an access pattern (WASI `fd_advise`); validated, then ignored.
   * @param fd - a file descriptor with `FD_ADVISE`
   * @param offset - start
   * @param len - length
   * @param advice - 0..5
   * @returns 0, or a negated errno
   */
  advise(fd: number, offset: number, len: number, advice: number): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if (e.filetype === Filetype.DIRECTORY) return -Errno.BADF;
    if ((e.rightsBase & Rights.FD_ADVISE) === 0) return -Errno.NOTCAPABLE;
    if (advice < 0 || advice > ADVICE_MAX || offset < 0 || len < 0) return -Errno.INVAL;
    return 0;
  }

  /**
   * Set access and modification times of a descriptor (WASI `fd_filestat_set_times`).
   * @param fd - a descriptor with `FD_FILESTAT_SET_TIMES`
   * @param atim - access time, ns (used with `ATIM`)
   * @param mtim - modification time, ns (used with `MTIM`)
   * @param fstflags - {@link Fstflags}
   * @returns 0, or a negated errno (`EINVAL` for both X and X_NOW)
   */
  utimes(fd: number, atim: bigint, mtim: bigint, fstflags: number): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if ((e.rightsBase & Rights.FD_FILESTAT_SET_TIMES) === 0) return -Errno.NOTCAPABLE;
    if (!validFst(fstflags)) return -Errno.INVAL;
    try {
      const [a, m] = times(fstatSync(e.hostFd, { bigint: true }), atim, mtim, fstflags);
      futimesSync(e.hostFd, a, m);
      return 0;
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Set access and modification times of a path (WASI `path_filestat_set_times`).
   * @param dirfd - directory descriptor with `PATH_FILESTAT_SET_TIMES`
   * @param path - relative guest path
   * @param follow - follow a final symlink (inside the preopen only)
   * @param atim - access time, ns
   * @param mtim - modification time, ns
   * @param fstflags - {@link Fstflags}
   * @param guard - authorises the resolved path
   * @returns 0, or a negated errno
   */
  utimesAt(dirfd: number, path: string, follow: boolean, atim: bigint, mtim: bigint, fstflags: number, guard?: PathGuard): number {
    if (!validFst(fstflags)) return -Errno.INVAL;
    return this.#at(dirfd, path, follow, Rights.PATH_FILESTAT_SET_TIMES, guard, (w) => {
      if (w.name === null) {
        const p = `${PROC_FD}${w.top}`;
        const [a, m] = times(lstatSync(`${p}/.`, { bigint: true }), atim, mtim, fstflags);
        utimesSync(p, a, m);
        return 0;
      }
      // The walk already followed symlinks inside the preopen; lutimes never follows one swapped in since.
      const p = `${PROC_FD}${w.top}/${w.name}`;
      const [a, m] = times(lstatSync(p, { bigint: true }), atim, mtim, fstflags);
      lutimesSync(p, a, m);
      return 0;
    });
  }

  /**
   * Flush a descriptor to storage (WASI `fd_sync` / `fd_datasync`).
   * @param fd - a descriptor with `FD_SYNC` (or `FD_DATASYNC`)
   * @param dataOnly - `fd_datasync`
   * @returns 0, or a negated errno
   */
  sync(fd: number, dataOnly: boolean): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if ((e.rightsBase & (dataOnly ? Rights.FD_DATASYNC : Rights.FD_SYNC)) === 0) return -Errno.NOTCAPABLE;
    try {
      if (dataOnly) fdatasyncSync(e.hostFd);
      else fsyncSync(e.hostFd);
      return 0;
    } catch (err) {
      return -errnoOf(err);
    }
  }

  /**
   * Change a descriptor's flags (WASI `fd_fdstat_set_flags`): APPEND and NONBLOCK may change; the sync
   * flags are fixed at open (`ENOTSUP`).
   * @param fd - a descriptor with `FD_FDSTAT_SET_FLAGS`
   * @param flags - new {@link Fdflags}
   * @returns 0, or a negated errno
   */
  setFlags(fd: number, flags: number): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if ((e.rightsBase & Rights.FD_FDSTAT_SET_FLAGS) === 0) return -Errno.NOTCAPABLE;
    if (flags < 0 || flags > 31) return -Errno.INVAL;
    const sync = Fdflags.DSYNC | Fdflags.RSYNC | Fdflags.SYNC;
    if ((flags & sync) !== (e.fdflags & sync)) return -Errno.NOTSUP;
    e.fdflags = flags;
    return 0;
  }

  /**
   * Drop rights of a descriptor (WASI `fd_fdstat_set_rights`); rights can never be added.
   * @param fd - a descriptor
   * @param base - new base rights, a subset of the current ones
   * @param inheriting - new inheriting rights, a subset of the current ones
   * @returns 0, or a negated errno (`ENOTCAPABLE` when adding)
   */
  setRights(fd: number, base: number, inheriting: number): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    if ((base & ~e.rightsBase) !== 0 || (inheriting & ~e.rightsInheriting) !== 0) return -Errno.NOTCAPABLE;
    e.rightsBase = base;
    e.rightsInheriting = inheriting;
    return 0;
  }

  /**
   * Close a descriptor.
   * @param fd - a descriptor
   * @returns 0, or `-EBADF`
   */
  close(fd: number): number {
    const e = this.#entries[fd];
    if (e === undefined) return -Errno.BADF;
    this.#entries[fd] = undefined;
    this.#count--;
    try {
      closeSync(e.hostFd);
    } catch {
      // already gone; the guest's view is closed either way
    }
    return 0;
  }

  /**
   * Move descriptor `from` to number `to`, closing what `to` held (WASI `fd_renumber`).
   * @param from - an open descriptor
   * @param to - an open descriptor
   * @returns 0, or `-EBADF`
   */
  renumber(from: number, to: number): number {
    const a = this.#entries[from];
    const b = this.#entries[to];
    if (a === undefined || b === undefined) return -Errno.BADF;
    if (from === to) return 0;
    this.close(to);
    this.#entries[to] = a;
    this.#entries[from] = undefined;
    return 0;
  }

  /** Close every descriptor (the preopens too). */
  dispose(): void {
    for (let fd = 0; fd < this.#entries.length; fd++) if (this.#entries[fd] !== undefined) this.close(fd);
  }

  /**
   * Scan the subtree of a directory about to move into another directory for symlinks whose target climbs
   * above it (their meaning would change), without following any link. Returns 0, `NOTCAPABLE` (such a
   * link found), or `XDEV` (more than `maxRenameScan` entries).
   */
  #scanMoved(dirPath: string): number {
    let budget = this.#maxScan;
    // Depth first, one descriptor per level of the current branch (never one per queued directory).
    const frames: { fd: number; level: number; entries: Dirent<Buffer>[]; i: number }[] = [];
    const enter = (path: string | Buffer, level: number): void => {
      const fd = openSync(path, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      frames.push({ fd, level, entries: [], i: 0 });
      frames[frames.length - 1]!.entries = readdirSync(`${PROC_FD}${fd}`, { withFileTypes: true, encoding: 'buffer' });
    };
    try {
      enter(dirPath, 0);
      while (frames.length > 0) {
        const f = frames[frames.length - 1]!;
        const d = f.entries[f.i++];
        if (d === undefined) {
          frames.pop();
          closeSync(f.fd);
          continue;
        }
        if (--budget < 0) return Errno.XDEV;
        const p = Buffer.concat([Buffer.from(`${PROC_FD}${f.fd}/`), d.name]);
        if (d.isSymbolicLink()) {
          if (climbsAbove(readlinkSync(p, 'utf8'), f.level)) return Errno.NOTCAPABLE;
        } else if (d.isDirectory()) enter(p, f.level + 1);
      }
      return 0;
    } finally {
      for (const f of frames) {
        try {
          closeSync(f.fd);
        } catch {
          // ignore
        }
      }
    }
  }

  #add(e: Entry): number {
    let fd = this.#first;
    while (this.#entries[fd] !== undefined) fd++;
    this.#entries[fd] = e;
    this.#count++;
    return fd;
  }

  #inside(fd: number, root: Root): boolean {
    const real = readlinkSync(`${PROC_FD}${fd}`);
    if (root.hostReal === '/') return real.startsWith('/');
    return real === root.hostReal || real.startsWith(`${root.hostReal}/`);
  }

  #release(w: Walk): void {
    for (const fd of w.owned) {
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    }
  }

  #at(dirfd: number, path: string, follow: boolean, right: number, guard: PathGuard | undefined, op: (w: Walk, e: Entry) => number): number {
    const e = this.#entries[dirfd];
    if (e === undefined) return -Errno.BADF;
    if (e.filetype !== Filetype.DIRECTORY) return -Errno.NOTDIR;
    if ((e.rightsBase & right) === 0) return -Errno.NOTCAPABLE;
    const w = this.#walk(e, path, follow);
    if (typeof w === 'number') return w;
    try {
      if (guard !== undefined && !guard(w.guest, 0)) return -Errno.ACCES;
      return op(w, e);
    } catch (err) {
      return -errnoOf(err);
    } finally {
      this.#release(w);
    }
  }

  #two(
    da: number,
    pa: string,
    followA: boolean,
    ra: number,
    db: number,
    pb: string,
    rb: number,
    guard: PathGuard | undefined,
    op: (a: Walk, b: Walk) => number,
  ): number {
    const ea = this.#entries[da];
    const eb = this.#entries[db];
    if (ea === undefined || eb === undefined) return -Errno.BADF;
    let early = 0;
    if (ea.filetype !== Filetype.DIRECTORY || eb.filetype !== Filetype.DIRECTORY) early = -Errno.NOTDIR;
    else if ((ea.rightsBase & ra) === 0 || (eb.rightsBase & rb) === 0) early = -Errno.NOTCAPABLE;
    const a = early !== 0 ? early : this.#walk(ea, pa, followA);
    const b = early !== 0 ? early : this.#walk(eb, pb, false);
    try {
      if (guard !== undefined) {
        // Both paths cross the gate whatever happens next: the resolved path when the walk succeeded, else
        // the lexical one, so the policy decides (and the record shows) where the guest tried to go.
        const ga = typeof a === 'number' ? lexical(pa, ea.guestPath) : a.guest;
        const gb = typeof b === 'number' ? lexical(pb, eb.guestPath) : b.guest;
        if (ga !== undefined && gb !== undefined && (!guard(ga, 0) || !guard(gb, 1))) return -Errno.ACCES;
      }
      if (typeof a === 'number') return a;
      if (typeof b === 'number') return b;
      return op(a, b);
    } catch (err) {
      return -errnoOf(err);
    } finally {
      if (typeof a !== 'number') this.#release(a);
      if (typeof b !== 'number') this.#release(b);
    }
  }

  /**
   * Resolve `path` from directory `base` inside its preopen. Returns the directory holding the final
   * component (an open host fd) and the final name, or a negated errno.
   */
  #walk(base: Entry, path: string, followFinal: boolean): Walk | number {
    if (path.length === 0) return -Errno.NOENT;
    if (path.includes('\0')) return -Errno.INVAL;
    if (path.startsWith('/')) return -Errno.NOTCAPABLE;
    const root = base.root;
    const stack: number[] = [base.hostFd];
    const names: string[] = [];
    const owned: number[] = [];
    let bottomGuest = base.guestPath;
    let parts = splitPath(path);
    let mustDir = endsAsDir(path);
    let links = 0;
    let name: string | null = null;
    const fail = (errno: number): number => {
      for (const fd of owned) {
        try {
          closeSync(fd);
        } catch {
          // ignore
        }
      }
      return -errno;
    };
    let i = 0;
    while (i < parts.length) {
      const part = parts[i]!;
      const last = i === parts.length - 1;
      const top = stack[stack.length - 1]!;
      if (part === '..') {
        if (stack.length > 1) {
          const fd = stack.pop()!;
          owned.splice(owned.indexOf(fd), 1);
          closeSync(fd);
          names.pop();
        } else {
          let parent: number;
          try {
            parent = openSync(`${PROC_FD}${top}/..`, O_PATH | C.O_DIRECTORY);
          } catch (e) {
            return fail(errnoOf(e));
          }
          owned.push(parent);
          let ok: boolean;
          try {
            ok = this.#inside(parent, root);
          } catch {
            ok = false;
          }
          if (!ok) return fail(Errno.NOTCAPABLE);
          if (top !== base.hostFd) {
            owned.splice(owned.indexOf(top), 1);
            closeSync(top);
          }
          stack[0] = parent;
          bottomGuest = canonicalPath('..', bottomGuest);
        }
        i++;
        continue;
      }
      const hostPath = `${PROC_FD}${top}/${part}`;
      let target: string | null = null;
      if (last) {
        if (!followFinal && !mustDir) {
          name = part;
          break;
        }
        try {
          target = readlinkSync(hostPath);
        } catch (e) {
          const errno = errnoOf(e);
          if (errno !== Errno.INVAL && errno !== Errno.NOENT) return fail(errno);
          name = part;
          break;
        }
      } else {
        try {
          const fd = openSync(hostPath, O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW);
          owned.push(fd);
          stack.push(fd);
          names.push(part);
          i++;
          continue;
        } catch (e) {
          const errno = errnoOf(e);
          if (errno !== Errno.NOTDIR && errno !== Errno.LOOP) return fail(errno);
          try {
            target = readlinkSync(hostPath);
          } catch {
            return fail(errno);
          }
        }
      }
      // A symlink: splice its target in, confined to the preopen.
      if (++links > MAX_SYMLINKS) return fail(Errno.LOOP);
      if (target.startsWith('/')) return fail(Errno.NOTCAPABLE);
      if (target === '') return fail(Errno.NOENT);
      if (last && endsAsDir(target)) mustDir = true;
      parts = [...splitPath(target), ...parts.slice(i + 1)];
      i = 0;
    }
    const top = stack[stack.length - 1]!;
    let ok: boolean;
    try {
      ok = this.#inside(top, root);
    } catch {
      ok = false;
    }
    if (!ok) return fail(Errno.NOTCAPABLE);
    const guest = canonicalPath([...names, ...(name === null ? [] : [name])].join('/'), bottomGuest);
    return { owned, top, name, guest, mustDir };
  }
}

/** The canonical guest path a relative path names lexically from `base`, or undefined (a NUL byte). */
function lexical(path: string, base: string): string | undefined {
  try {
    return canonicalPath(path, base);
  } catch {
    return undefined;
  }
}

/** Whether two held directory descriptors are the same directory. */
function sameDir(a: number, b: number): boolean {
  if (a === b) return true;
  const x = fstatSync(a, { bigint: true });
  const y = fstatSync(b, { bigint: true });
  return x.ino === y.ino && x.dev === y.dev;
}

function validFst(f: number): boolean {
  if (f < 0 || f > 15) return false;
  if ((f & Fstflags.ATIM) !== 0 && (f & Fstflags.ATIM_NOW) !== 0) return false;
  if ((f & Fstflags.MTIM) !== 0 && (f & Fstflags.MTIM_NOW) !== 0) return false;
  return true;
}

function times(st: BigIntStats, atim: bigint, mtim: bigint, f: number): [number, number] {
  const now = Date.now() / 1000;
  const a = (f & Fstflags.ATIM_NOW) !== 0 ? now : (f & Fstflags.ATIM) !== 0 ? Number(atim) / 1e9 : Number(st.atimeNs) / 1e9;
  const m = (f & Fstflags.MTIM_NOW) !== 0 ? now : (f & Fstflags.MTIM) !== 0 ? Number(mtim) / 1e9 : Number(st.mtimeNs) / 1e9;
  return [a, m];
}
