/**
 * WASI preview1 numbers (witx `wasi_snapshot_preview1`): errno, rights, file types, flags and record
 * layouts. Shared by the confined filesystem ({@link ConfinedFs}) and the preview1 host.
 *
 * @packageDocumentation
 */

/** WASI `errno` values (witx `typenames.witx`, enum `errno`, u16). */
export const Errno = Object.freeze({
  SUCCESS: 0,
  TOOBIG: 1,
  ACCES: 2,
  ADDRINUSE: 3,
  ADDRNOTAVAIL: 4,
  AFNOSUPPORT: 5,
  AGAIN: 6,
  ALREADY: 7,
  BADF: 8,
  BADMSG: 9,
  BUSY: 10,
  CANCELED: 11,
  CHILD: 12,
  CONNABORTED: 13,
  CONNREFUSED: 14,
  CONNRESET: 15,
  DEADLK: 16,
  DESTADDRREQ: 17,
  DOM: 18,
  DQUOT: 19,
  EXIST: 20,
  FAULT: 21,
  FBIG: 22,
  HOSTUNREACH: 23,
  IDRM: 24,
  ILSEQ: 25,
  INPROGRESS: 26,
  INTR: 27,
  INVAL: 28,
  IO: 29,
  ISCONN: 30,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  MLINK: 34,
  MSGSIZE: 35,
  MULTIHOP: 36,
  NAMETOOLONG: 37,
  NETDOWN: 38,
  NETRESET: 39,
  NETUNREACH: 40,
  NFILE: 41,
  NOBUFS: 42,
  NODEV: 43,
  NOENT: 44,
  NOEXEC: 45,
  NOLCK: 46,
  NOLINK: 47,
  NOMEM: 48,
  NOMSG: 49,
  NOPROTOOPT: 50,
  NOSPC: 51,
  NOSYS: 52,
  NOTCONN: 53,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTRECOVERABLE: 56,
  NOTSOCK: 57,
  NOTSUP: 58,
  NOTTY: 59,
  NXIO: 60,
  OVERFLOW: 61,
  OWNERDEAD: 62,
  PERM: 63,
  PIPE: 64,
  PROTO: 65,
  PROTONOSUPPORT: 66,
  PROTOTYPE: 67,
  RANGE: 68,
  ROFS: 69,
  SPIPE: 70,
  SRCH: 71,
  STALE: 72,
  TIMEDOUT: 73,
  TXTBSY: 74,
  XDEV: 75,
  NOTCAPABLE: 76,
} as const);

/** WASI `rights` bits (witx flags `rights`, u64; every defined bit fits in 32 bits). */
export const Rights = Object.freeze({
  FD_DATASYNC: 1 << 0,
  FD_READ: 1 << 1,
  FD_SEEK: 1 << 2,
  FD_FDSTAT_SET_FLAGS: 1 << 3,
  FD_SYNC: 1 << 4,
  FD_TELL: 1 << 5,
  FD_WRITE: 1 << 6,
  FD_ADVISE: 1 << 7,
  FD_ALLOCATE: 1 << 8,
  PATH_CREATE_DIRECTORY: 1 << 9,
  PATH_CREATE_FILE: 1 << 10,
  PATH_LINK_SOURCE: 1 << 11,
  PATH_LINK_TARGET: 1 << 12,
  PATH_OPEN: 1 << 13,
  FD_READDIR: 1 << 14,
  PATH_READLINK: 1 << 15,
  PATH_RENAME_SOURCE: 1 << 16,
  PATH_RENAME_TARGET: 1 << 17,
  PATH_FILESTAT_GET: 1 << 18,
  PATH_FILESTAT_SET_SIZE: 1 << 19,
  PATH_FILESTAT_SET_TIMES: 1 << 20,
  FD_FILESTAT_GET: 1 << 21,
  FD_FILESTAT_SET_SIZE: 1 << 22,
  FD_FILESTAT_SET_TIMES: 1 << 23,
  PATH_SYMLINK: 1 << 24,
  PATH_REMOVE_DIRECTORY: 1 << 25,
  PATH_UNLINK_FILE: 1 << 26,
  POLL_FD_READWRITE: 1 << 27,
  SOCK_SHUTDOWN: 1 << 28,
  SOCK_ACCEPT: 1 << 29,
} as const);

const R = Rights;
/** Rights a regular file descriptor can hold. */
export const FILE_RIGHTS =
  R.FD_DATASYNC | R.FD_READ | R.FD_SEEK | R.FD_FDSTAT_SET_FLAGS | R.FD_SYNC | R.FD_TELL | R.FD_WRITE | R.FD_ADVISE |
  R.FD_ALLOCATE | R.FD_FILESTAT_GET | R.FD_FILESTAT_SET_SIZE | R.FD_FILESTAT_SET_TIMES | R.POLL_FD_READWRITE;
/** Rights a directory descriptor can hold. */
export const DIR_RIGHTS =
  R.FD_FDSTAT_SET_FLAGS | R.FD_SYNC | R.FD_DATASYNC | R.PATH_CREATE_DIRECTORY | R.PATH_CREATE_FILE | R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET | R.PATH_OPEN | R.FD_READDIR | R.PATH_READLINK | R.PATH_RENAME_SOURCE | R.PATH_RENAME_TARGET |
  R.PATH_FILESTAT_GET | R.PATH_FILESTAT_SET_SIZE | R.PATH_FILESTAT_SET_TIMES | R.FD_FILESTAT_GET | R.FD_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK | R.PATH_REMOVE_DIRECTORY | R.PATH_UNLINK_FILE;
/** Rights that modify a file or a directory tree; a read-only preopen never grants them. */
export const WRITE_RIGHTS =
  R.FD_DATASYNC | R.FD_WRITE | R.FD_ALLOCATE | R.FD_FILESTAT_SET_SIZE | R.FD_FILESTAT_SET_TIMES | R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE | R.PATH_LINK_TARGET | R.PATH_RENAME_SOURCE | R.PATH_RENAME_TARGET | R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES | R.PATH_SYMLINK | R.PATH_REMOVE_DIRECTORY | R.PATH_UNLINK_FILE;
/** Every right. */
export const ALL_RIGHTS = FILE_RIGHTS | DIR_RIGHTS | R.SOCK_SHUTDOWN | R.SOCK_ACCEPT;

/** WASI `filetype` (u8). */
export const Filetype = Object.freeze({
  UNKNOWN: 0,
  BLOCK_DEVICE: 1,
  CHARACTER_DEVICE: 2,
  DIRECTORY: 3,
  REGULAR_FILE: 4,
  SOCKET_DGRAM: 5,
  SOCKET_STREAM: 6,
  SYMBOLIC_LINK: 7,
} as const);

/** WASI `whence` (u8). */
export const Whence = Object.freeze({ SET: 0, CUR: 1, END: 2 } as const);

/** WASI `oflags` (u16). */
export const Oflags = Object.freeze({ CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const);

/** WASI `fdflags` (u16). */
export const Fdflags = Object.freeze({ APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const);

/** WASI `lookupflags` (u32). */
export const Lookupflags = Object.freeze({ SYMLINK_FOLLOW: 1 } as const);

/** WASI `fstflags` (u16). */
export const Fstflags = Object.freeze({ ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const);

/** WASI `clockid` (u32). */
export const Clockid = Object.freeze({ REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME_ID: 2, THREAD_CPUTIME_ID: 3 } as const);

/** WASI `eventtype` (u8). */
export const Eventtype = Object.freeze({ CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const);

/** WASI `subclockflags` (u16). */
export const Subclockflags = Object.freeze({ ABSTIME: 1 } as const);

/** WASI `advice` (u8): the largest valid value. */
export const ADVICE_MAX = 5;

/** WASI `preopentype` (u8). */
export const Preopentype = Object.freeze({ DIR: 0 } as const);

/** Sizes (bytes) of the WASI preview1 records the host writes. */
export const Layout = Object.freeze({
  /** `iovec` / `ciovec`: buf u32 @0, buf_len u32 @4. */
  IOVEC: 8,
  /** `fdstat`: fs_filetype u8 @0, fs_flags u16 @2, fs_rights_base u64 @8, fs_rights_inheriting u64 @16. */
  FDSTAT: 24,
  /** `filestat`: dev @0, ino @8, filetype u8 @16, nlink @24, size @32, atim @40, mtim @48, ctim @56. */
  FILESTAT: 64,
  /** `prestat`: tag u8 @0, pr_name_len u32 @4. */
  PRESTAT: 8,
  /** `dirent`: d_next u64 @0, d_ino u64 @8, d_namlen u32 @16, d_type u8 @20; the name follows. */
  DIRENT: 24,
  /** `subscription`: userdata u64 @0, tag u8 @8, clock {id u32 @16, timeout u64 @24, precision u64 @32, flags u16 @40} | fd u32 @16. */
  SUBSCRIPTION: 48,
  /** `event`: userdata u64 @0, error u16 @8, type u8 @10, nbytes u64 @16, flags u16 @24. */
  EVENT: 32,
} as const);

const NODE_ERRNO: Readonly<Record<string, number>> = {
  E2BIG: Errno.TOOBIG,
  EACCES: Errno.ACCES,
  EAGAIN: Errno.AGAIN,
  EBADF: Errno.BADF,
  EBUSY: Errno.BUSY,
  EDQUOT: Errno.DQUOT,
  EEXIST: Errno.EXIST,
  EFAULT: Errno.FAULT,
  EFBIG: Errno.FBIG,
  EILSEQ: Errno.ILSEQ,
  EINTR: Errno.INTR,
  EINVAL: Errno.INVAL,
  EIO: Errno.IO,
  EISDIR: Errno.ISDIR,
  ELOOP: Errno.LOOP,
  EMFILE: Errno.MFILE,
  EMLINK: Errno.MLINK,
  ENAMETOOLONG: Errno.NAMETOOLONG,
  ENFILE: Errno.NFILE,
  ENODEV: Errno.NODEV,
  ENOENT: Errno.NOENT,
  ENOMEM: Errno.NOMEM,
  ENOSPC: Errno.NOSPC,
  ENOSYS: Errno.NOSYS,
  ENOTDIR: Errno.NOTDIR,
  ENOTEMPTY: Errno.NOTEMPTY,
  ENOTSUP: Errno.NOTSUP,
  EOPNOTSUPP: Errno.NOTSUP,
  ENOTTY: Errno.NOTTY,
  ENXIO: Errno.NXIO,
  EOVERFLOW: Errno.OVERFLOW,
  EPERM: Errno.PERM,
  EPIPE: Errno.PIPE,
  ERANGE: Errno.RANGE,
  EROFS: Errno.ROFS,
  ESPIPE: Errno.SPIPE,
  ETXTBSY: Errno.TXTBSY,
  EXDEV: Errno.XDEV,
  EWOULDBLOCK: Errno.AGAIN,
};

/**
 * Map an error thrown by `node:fs` to a WASI errno.
 * @param error - anything a `node:fs` call threw
 * @returns the matching errno, `Errno.IO` when there is none
 */
export function errnoOf(error: unknown): number {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? (NODE_ERRNO[code] ?? Errno.IO) : Errno.IO;
}
