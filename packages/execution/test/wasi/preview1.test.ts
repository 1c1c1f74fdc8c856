// Spec tests of ForgeOne's WASI preview1 host, written from the witx of wasi_snapshot_preview1
// (typenames.witx / wasi_snapshot_preview1.witx, WASI repo, legacy/preview1). Each test names the
// behaviour it checks. The guest is a real WebAssembly module (test/wasi/helpers.ts harnessWat) whose
// exports call the imported host functions, so every value crosses the wasm/JS boundary as in a guest.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync, lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { terminateControl } from '../../src/gate/index.js';
import { ALL_RIGHTS, Errno, Filetype, Fdflags, Oflags, Rights } from '../../src/fs/index.js';
import type { Preview1Options } from '../../src/wasi/index.js';
import { allowAllGate, harness, policyGate, tempDir, type Harness } from './helpers.js';

const PATH = 1024;
const OUT = 2048;
const IOV = 3072;
const BUF = 4096;
const BIG = 16384;
const OOB = 2 * 65536 - 1; // two pages of memory: anything longer than 1 byte here runs past the end

let tmp: ReturnType<typeof tempDir>;
let data: string;
beforeEach(() => {
  tmp = tempDir();
  data = join(tmp.dir, 'data');
  mkdirSync(data);
});
afterEach(() => tmp.cleanup());

async function make(extra: Partial<Preview1Options> = {}): Promise<Harness & { records: ReturnType<typeof allowAllGate>['records']; gate: ReturnType<typeof allowAllGate>['gate'] }> {
  const { gate, records } = allowAllGate();
  const h = await harness({ gate, preopens: [{ guestPath: '/data', hostPath: data }], ...extra });
  return Object.assign(h, { records, gate });
}

/** path_open relative to `dir`; returns [errno, fd]. */
function open(h: Harness, dir: number, path: string, oflags = 0, rights = ALL_RIGHTS, fdflags = 0, lookup = 0): [number, number] {
  const len = h.put(PATH, path);
  h.dv().setUint32(OUT, 0xffffffff, true);
  const e = h.call.path_open!(dir, lookup, PATH, len, oflags, BigInt(rights), BigInt(ALL_RIGHTS), fdflags, OUT);
  return [e, h.u32(OUT)];
}

function write(h: Harness, fd: number, text: string): [number, number] {
  const len = h.put(BUF, text);
  h.dv().setUint32(IOV, BUF, true);
  h.dv().setUint32(IOV + 4, len, true);
  const e = h.call.fd_write!(fd, IOV, 1, OUT);
  return [e, h.u32(OUT)];
}

function read(h: Harness, fd: number, max: number): [number, string] {
  h.dv().setUint32(IOV, BIG, true);
  h.dv().setUint32(IOV + 4, max, true);
  const e = h.call.fd_read!(fd, IOV, 1, OUT);
  return [e, e === 0 ? h.get(BIG, h.u32(OUT)) : ''];
}

function pathCall(h: Harness, fn: string, dir: number, path: string): number {
  const len = h.put(PATH, path);
  return h.call[fn]!(dir, PATH, len);
}

describe('args and environ (args_sizes_get/args_get, environ_sizes_get/environ_get)', () => {
  it('sizes count NUL-terminated strings and the pointers point at them', async () => {
    const h = await make({ args: ['prog', 'héllo'], env: { A: '1', LONG: 'x'.repeat(100) } });
    expect(h.call.args_sizes_get!(OUT, OUT + 4)).toBe(0);
    expect(h.u32(OUT)).toBe(2);
    expect(h.u32(OUT + 4)).toBe(5 + 7); // 'prog\0' + 'héllo\0' (é is 2 bytes)
    expect(h.call.args_get!(BUF, BIG)).toBe(0);
    expect(h.get(h.u32(BUF), 4)).toBe('prog');
    expect(h.u32(BUF + 4)).toBe(BIG + 5);
    expect(h.get(h.u32(BUF + 4), 6)).toBe('héllo');
    expect(h.mem()[BIG + 4]).toBe(0);
    expect(h.call.environ_sizes_get!(OUT, OUT + 4)).toBe(0);
    expect(h.u32(OUT)).toBe(2);
    expect(h.u32(OUT + 4)).toBe(4 + 106); // 'A=1\0' + 'LONG=x…x\0'
    expect(h.call.environ_get!(BUF, BIG)).toBe(0);
    expect(h.get(h.u32(BUF), 3)).toBe('A=1');
  });

  it('the default sandbox has no args and no env', async () => {
    const h = await make();
    expect(h.call.args_sizes_get!(OUT, OUT + 4)).toBe(0);
    expect([h.u32(OUT), h.u32(OUT + 4)]).toEqual([0, 0]);
    expect(h.call.environ_sizes_get!(OUT, OUT + 4)).toBe(0);
    expect([h.u32(OUT), h.u32(OUT + 4)]).toEqual([0, 0]);
  });

  it('out-of-bounds pointers are EFAULT, never a host exception', async () => {
    const h = await make({ args: ['a'] });
    expect(h.call.args_sizes_get!(OOB, OUT)).toBe(Errno.FAULT);
    expect(h.call.args_get!(OUT, OOB)).toBe(Errno.FAULT);
    expect(h.call.environ_get!(-1, 0)).toBe(Errno.FAULT);
  });
});

describe('clocks (clock_res_get, clock_time_get)', () => {
  it('realtime is the wall clock in ns; monotonic never goes back; resolution is positive', async () => {
    const h = await make();
    expect(h.call.clock_time_get!(0, 1n, OUT)).toBe(0);
    const rt = Number(h.u64(OUT)) / 1e6;
    expect(Math.abs(rt - Date.now())).toBeLessThan(1000);
    let last = 0n;
    for (let i = 0; i < 50; i++) {
      expect(h.call.clock_time_get!(1, 0n, OUT)).toBe(0);
      const t = h.u64(OUT);
      expect(t >= last).toBe(true);
      last = t;
    }
    for (const id of [0, 1, 2, 3]) {
      expect(h.call.clock_res_get!(id, OUT)).toBe(0);
      expect(h.u64(OUT) > 0n).toBe(true);
    }
  });

  it('an unknown clock id is EINVAL; a bad pointer EFAULT', async () => {
    const h = await make();
    expect(h.call.clock_time_get!(4, 0n, OUT)).toBe(Errno.INVAL);
    expect(h.call.clock_res_get!(99, OUT)).toBe(Errno.INVAL);
    expect(h.call.clock_time_get!(0, 0n, OOB)).toBe(Errno.FAULT);
  });

  it('clock values go to the record (they cannot be recomputed) and custom clocks are used', async () => {
    const h = await make({ clocks: { realtime: () => 1_700_000_000_123_456_789n, monotonic: () => 42n } });
    expect(h.call.clock_time_get!(0, 0n, OUT)).toBe(0);
    expect(h.u64(OUT)).toBe(1_700_000_000_123_456_768n); // float64 ns (256 ns granularity at this magnitude)
    expect(h.call.clock_time_get!(1, 0n, OUT)).toBe(0);
    expect(h.u64(OUT)).toBe(42n);
    const rec = h.records.filter((r) => r.syscall.startsWith('wasi:clocks/'));
    expect(rec.map((r) => r.syscall)).toEqual(['wasi:clocks/wall-clock', 'wasi:clocks/monotonic-clock']);
    expect(new DataView(rec[1]!.resultBytes!.buffer, rec[1]!.resultBytes!.byteOffset).getBigUint64(0, true)).toBe(42n);
  });
});

describe('random_get', () => {
  it('fills the buffer, twice differently, and records the bytes', async () => {
    const h = await make();
    expect(h.call.random_get!(BUF, 64)).toBe(0);
    const a = h.mem().slice(BUF, BUF + 64);
    expect(h.call.random_get!(BUF, 64)).toBe(0);
    const b = h.mem().slice(BUF, BUF + 64);
    expect(Buffer.compare(a, b)).not.toBe(0);
    const rec = h.records.filter((r) => r.syscall === 'wasi:random/random');
    expect(rec[1]!.resultBytes).toEqual(b);
    expect(h.call.random_get!(OOB, 64)).toBe(Errno.FAULT);
  });

  it('uses the given random source', async () => {
    const h = await make({ random: (buf) => buf.fill(7) });
    expect(h.call.random_get!(BUF, 4)).toBe(0);
    expect([...h.mem().subarray(BUF, BUF + 4)]).toEqual([7, 7, 7, 7]);
  });
});

describe('stdio (fd_write, fd_read, fd_fdstat_get on 0-2)', () => {
  it('stdout and stderr go to their sinks as copies; stdin comes from its source', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const h = await make({ stdin: 'line one\nline two\n', stdout: (b) => out.push(Buffer.from(b).toString()), stderr: (b) => err.push(Buffer.from(b).toString()) });
    expect(write(h, 1, 'hello')).toEqual([0, 5]);
    expect(write(h, 2, 'oops')).toEqual([0, 4]);
    expect(out).toEqual(['hello']);
    expect(err).toEqual(['oops']);
    expect(read(h, 0, 9)).toEqual([0, 'line one\n']);
    expect(read(h, 0, 100)).toEqual([0, 'line two\n']);
    expect(read(h, 0, 100)).toEqual([0, '']); // end of input: 0 bytes
    expect(h.records.find((r) => r.syscall === 'wasi:cli/stdin')!.resultBytes).toEqual(new TextEncoder().encode('line one\n'));
  });

  it('gathers several iovecs in order (ciovec array)', async () => {
    const out: string[] = [];
    const h = await make({ stdout: (b) => out.push(Buffer.from(b).toString()) });
    h.put(BUF, 'abc');
    h.put(BUF + 100, 'defg');
    const dv = h.dv();
    dv.setUint32(IOV, BUF, true);
    dv.setUint32(IOV + 4, 3, true);
    dv.setUint32(IOV + 8, BUF + 100, true);
    dv.setUint32(IOV + 12, 4, true);
    expect(h.call.fd_write!(1, IOV, 2, OUT)).toBe(0);
    expect(h.u32(OUT)).toBe(7);
    expect(out).toEqual(['abcdefg']);
  });

  it('a pull stdin is asked for at most the buffer size', async () => {
    const asked: number[] = [];
    const h = await make({ stdin: (max) => (asked.push(max), asked.length === 1 ? new TextEncoder().encode('xy') : null) });
    expect(read(h, 0, 16)).toEqual([0, 'xy']);
    expect(read(h, 0, 16)).toEqual([0, '']);
    expect(asked).toEqual([16, 16]);
  });

  it('maxOutputBytes cuts a write to what fits, then fails with ENOSPC', async () => {
    const out: string[] = [];
    const h = await make({ maxOutputBytes: 6, stdout: (b) => out.push(Buffer.from(b).toString()) });
    expect(write(h, 1, 'abcd')).toEqual([0, 4]);
    expect(write(h, 1, 'efgh')).toEqual([0, 2]);
    expect(write(h, 2, 'x')[0]).toBe(Errno.NOSPC);
    expect(out.join('')).toBe('abcdef');
    expect(h.host.outputLimitHit).toBe(true);
    expect(h.records.at(-1)!.result).toBe(Errno.NOSPC);
  });

  it('stdio descriptors are character devices; writing stdin or reading stdout is EBADF; seeking them ESPIPE', async () => {
    const h = await make();
    expect(h.call.fd_fdstat_get!(1, OUT)).toBe(0);
    expect(h.mem()[OUT]).toBe(Filetype.CHARACTER_DEVICE);
    expect(write(h, 0, 'x')[0]).toBe(Errno.BADF);
    expect(read(h, 1, 4)[0]).toBe(Errno.BADF);
    expect(h.call.fd_seek!(1, 0n, 0, OUT)).toBe(Errno.SPIPE);
    expect(h.call.fd_close!(1)).toBe(0);
    expect(write(h, 1, 'x')[0]).toBe(Errno.BADF);
  });

  it('EFAULT for an iovec outside memory and for nwritten outside memory', async () => {
    const h = await make();
    const dv = h.dv();
    dv.setUint32(IOV, OOB, true);
    dv.setUint32(IOV + 4, 16, true);
    expect(h.call.fd_write!(1, IOV, 1, OUT)).toBe(Errno.FAULT);
    expect(h.call.fd_write!(1, OOB, 1, OUT)).toBe(Errno.FAULT);
    dv.setUint32(IOV, BUF, true);
    expect(h.call.fd_write!(1, IOV, 1, OOB)).toBe(Errno.FAULT);
    expect(h.call.fd_read!(0, IOV, 1, OOB)).toBe(Errno.FAULT);
  });
});

describe('preopens (fd_prestat_get, fd_prestat_dir_name)', () => {
  it('describes preopens from fd 3 and answers EBADF after the last (the libc scan stops there)', async () => {
    const other = join(tmp.dir, 'other');
    mkdirSync(other);
    const h = await make({ preopens: [{ guestPath: '/data', hostPath: data }, { guestPath: '/srv/other', hostPath: other }] });
    expect(h.call.fd_prestat_get!(3, OUT)).toBe(0);
    expect(h.mem()[OUT]).toBe(0); // preopentype dir
    expect(h.u32(OUT + 4)).toBe(5);
    expect(h.call.fd_prestat_dir_name!(3, BUF, 5)).toBe(0);
    expect(h.get(BUF, 5)).toBe('/data');
    expect(h.call.fd_prestat_get!(4, OUT)).toBe(0);
    expect(h.call.fd_prestat_dir_name!(4, BUF, 10)).toBe(0);
    expect(h.get(BUF, 10)).toBe('/srv/other');
    expect(h.call.fd_prestat_dir_name!(4, BUF, 3)).toBe(Errno.NAMETOOLONG);
    expect(h.call.fd_prestat_get!(5, OUT)).toBe(Errno.BADF);
    expect(h.call.fd_prestat_get!(1, OUT)).toBe(Errno.BADF);
    expect(h.call.fd_fdstat_get!(3, OUT)).toBe(0);
    expect(h.mem()[OUT]).toBe(Filetype.DIRECTORY);
  });

  it('the default sandbox has no preopens: nothing to open', async () => {
    const { gate } = allowAllGate();
    const h = await harness({ gate });
    expect(h.call.fd_prestat_get!(3, OUT)).toBe(Errno.BADF);
    expect(open(h, 3, 'anything')[0]).toBe(Errno.BADF);
    expect(pathCall(h, 'path_create_directory', 3, 'x')).toBe(Errno.BADF);
  });
});

describe('files (path_open, fd_read/write/pread/pwrite/seek/tell, append)', () => {
  it('creates, writes, seeks, tells and reads back', async () => {
    const h = await make();
    const [e, fd] = open(h, 3, 'a.txt', Oflags.CREAT);
    expect(e).toBe(0);
    expect(fd).toBe(4); // lowest free descriptor after the preopen
    expect(write(h, fd, 'hello world')).toEqual([0, 11]);
    expect(h.call.fd_tell!(fd, OUT)).toBe(0);
    expect(h.u64(OUT)).toBe(11n);
    expect(h.call.fd_seek!(fd, 6n, 0, OUT)).toBe(0); // SET
    expect(h.u64(OUT)).toBe(6n);
    expect(read(h, fd, 100)).toEqual([0, 'world']);
    expect(h.call.fd_seek!(fd, -5n, 2, OUT)).toBe(0); // END
    expect(h.u64(OUT)).toBe(6n);
    expect(h.call.fd_seek!(fd, -2n, 1, OUT)).toBe(0); // CUR
    expect(h.u64(OUT)).toBe(4n);
    expect(h.call.fd_seek!(fd, -100n, 1, OUT)).toBe(Errno.INVAL); // before the start
    expect(h.call.fd_seek!(fd, 0n, 3, OUT)).toBe(Errno.INVAL); // bad whence
    expect(read(h, fd, 3)).toEqual([0, 'o w']);
    expect(h.call.fd_close!(fd)).toBe(0);
    expect(readFileSync(join(data, 'a.txt'), 'utf8')).toBe('hello world');
  });

  it('pread/pwrite use the given offset and leave the file offset alone', async () => {
    const h = await make();
    writeFileSync(join(data, 'p.txt'), '0123456789');
    const [, fd] = open(h, 3, 'p.txt');
    h.put(BUF, 'AB');
    const dv = h.dv();
    dv.setUint32(IOV, BUF, true);
    dv.setUint32(IOV + 4, 2, true);
    expect(h.call.fd_pwrite!(fd, IOV, 1, 3n, OUT)).toBe(0);
    expect(h.u32(OUT)).toBe(2);
    dv.setUint32(IOV, BIG, true);
    dv.setUint32(IOV + 4, 4, true);
    expect(h.call.fd_pread!(fd, IOV, 1, 2n, OUT)).toBe(0);
    expect(h.get(BIG, h.u32(OUT))).toBe('2AB5');
    expect(h.call.fd_tell!(fd, OUT)).toBe(0);
    expect(h.u64(OUT)).toBe(0n);
    expect(readFileSync(join(data, 'p.txt'), 'utf8')).toBe('012AB56789');
  });

  it('a read gathers into several iovecs and records the bytes read', async () => {
    const h = await make();
    writeFileSync(join(data, 'r.txt'), 'abcdefgh');
    const [, fd] = open(h, 3, 'r.txt');
    const dv = h.dv();
    dv.setUint32(IOV, BUF, true);
    dv.setUint32(IOV + 4, 3, true);
    dv.setUint32(IOV + 8, BIG, true);
    dv.setUint32(IOV + 12, 10, true);
    expect(h.call.fd_read!(fd, IOV, 2, OUT)).toBe(0);
    expect(h.u32(OUT)).toBe(8);
    expect(h.get(BUF, 3) + h.get(BIG, 5)).toBe('abcdefgh');
    const rec = h.records.filter((r) => r.syscall === 'wasi:filesystem/read').at(-1)!;
    expect(Buffer.from(rec.resultBytes!).toString()).toBe('abcdefgh');
    expect(rec.args.path).toBe('/data/r.txt');
  });

  it('APPEND writes at the end whatever the offset; TRUNC empties; EXCL on an existing file is EEXIST', async () => {
    const h = await make();
    writeFileSync(join(data, 'log'), 'one\n');
    const [, fd] = open(h, 3, 'log', 0, ALL_RIGHTS, Fdflags.APPEND);
    expect(h.call.fd_seek!(fd, 0n, 0, OUT)).toBe(0);
    expect(write(h, fd, 'two\n')).toEqual([0, 4]);
    expect(readFileSync(join(data, 'log'), 'utf8')).toBe('one\ntwo\n');
    expect(h.call.fd_fdstat_get!(fd, OUT)).toBe(0);
    expect(h.dv().getUint16(OUT + 2, true)).toBe(Fdflags.APPEND);
    expect(open(h, 3, 'log', Oflags.CREAT | Oflags.EXCL)[0]).toBe(Errno.EXIST);
    const [e2] = open(h, 3, 'log', Oflags.TRUNC);
    expect(e2).toBe(0);
    expect(readFileSync(join(data, 'log'), 'utf8')).toBe('');
  });

  it('errno: ENOENT, ENOTDIR, EISDIR, EBADF', async () => {
    const h = await make();
    writeFileSync(join(data, 'f'), 'x');
    mkdirSync(join(data, 'd'));
    expect(open(h, 3, 'missing')[0]).toBe(Errno.NOENT);
    expect(open(h, 3, 'nodir/file', Oflags.CREAT)[0]).toBe(Errno.NOENT);
    expect(open(h, 3, 'f', Oflags.DIRECTORY)[0]).toBe(Errno.NOTDIR);
    expect(open(h, 3, 'f/x')[0]).toBe(Errno.NOTDIR);
    expect(open(h, 3, 'd', 0, Rights.FD_WRITE)[0]).toBe(Errno.ISDIR);
    const [, fd] = open(h, 3, 'f', 0, Rights.FD_READ);
    expect(open(h, fd, 'x')[0]).toBe(Errno.NOTDIR); // path_open from a file descriptor
    expect(write(h, fd, 'no')[0]).toBe(Errno.BADF); // opened without FD_WRITE
    expect(read(h, 3, 4)[0]).toBe(Errno.BADF); // a directory is not readable as a file
    for (const bad of [99, 1234567, -1]) {
      expect(read(h, bad, 4)[0]).toBe(Errno.BADF);
      expect(write(h, bad, 'x')[0]).toBe(Errno.BADF);
      expect(h.call.fd_close!(bad)).toBe(Errno.BADF);
      expect(h.call.fd_seek!(bad, 0n, 0, OUT)).toBe(Errno.BADF);
      expect(h.call.fd_filestat_get!(bad, OUT)).toBe(Errno.BADF);
      expect(h.call.fd_fdstat_get!(bad, OUT)).toBe(Errno.BADF);
    }
    expect(pathCall(h, 'path_unlink_file', 3, 'd')).toBe(Errno.ISDIR);
    expect(h.call.fd_close!(fd)).toBe(0);
    expect(h.call.fd_close!(fd)).toBe(Errno.BADF);
  });

  it('EFAULT for a path outside memory; EILSEQ for a path that is not UTF-8', async () => {
    const h = await make();
    expect(h.call.path_open!(3, 0, OOB, 16, 0, 0n, 0n, 0, OUT)).toBe(Errno.FAULT);
    h.put(PATH, 'x');
    expect(h.call.path_open!(3, 0, PATH, 1, 0, 0n, 0n, 0, OOB)).toBe(Errno.FAULT);
    h.put(PATH, 'a\0b');
    expect(h.call.path_open!(3, 0, PATH, 3, 0, 0n, 0n, 0, OUT)).toBe(Errno.INVAL); // NUL inside a path
    h.mem().set([0xff, 0xfe], PATH);
    expect(h.call.path_open!(3, 0, PATH, 2, 0, 0n, 0n, 0, OUT)).toBe(Errno.ILSEQ);
    expect(h.call.path_create_directory!(3, OOB, 10)).toBe(Errno.FAULT);
  });

  it('filestat (64-byte layout), set_size, set_times, fdstat rights can only shrink', async () => {
    const h = await make();
    writeFileSync(join(data, 's'), '12345');
    const [, fd] = open(h, 3, 's');
    expect(h.call.fd_filestat_get!(fd, BUF)).toBe(0);
    const st = lstatSync(join(data, 's'), { bigint: true });
    const dv = h.dv();
    expect(dv.getBigUint64(BUF + 8, true)).toBe(st.ino);
    expect(dv.getUint8(BUF + 16)).toBe(Filetype.REGULAR_FILE);
    expect(dv.getBigUint64(BUF + 24, true)).toBe(1n);
    expect(dv.getBigUint64(BUF + 32, true)).toBe(5n);
    expect(h.call.fd_filestat_set_size!(fd, 2n)).toBe(0);
    expect(readFileSync(join(data, 's'), 'utf8')).toBe('12');
    expect(h.call.fd_filestat_set_times!(fd, 1_000_000_000n, 2_000_000_000n, 1 | 4)).toBe(0);
    expect(lstatSync(join(data, 's')).mtimeMs).toBe(2000);
    expect(h.call.fd_filestat_set_times!(fd, 0n, 0n, 1 | 2)).toBe(Errno.INVAL); // ATIM with ATIM_NOW
    const len = h.put(PATH, 's');
    expect(h.call.path_filestat_set_times!(3, 0, PATH, len, 0n, 5_000_000_000n, 4)).toBe(0);
    expect(lstatSync(join(data, 's')).mtimeMs).toBe(5000);
    expect(h.call.path_filestat_get!(3, 0, PATH, len, BUF)).toBe(0);
    expect(dv.getBigUint64(BUF + 32, true)).toBe(2n);
    expect(dv.getBigUint64(BUF + 48, true)).toBe(5_000_000_000n);
    expect(h.call.fd_fdstat_set_rights!(fd, BigInt(Rights.FD_READ), 0n)).toBe(0);
    expect(h.call.fd_fdstat_set_rights!(fd, BigInt(Rights.FD_READ | Rights.FD_WRITE), 0n)).toBe(Errno.NOTCAPABLE);
    expect(write(h, fd, 'x')[0]).toBe(Errno.BADF);
    expect(h.call.fd_filestat_set_size!(fd, 0n)).toBe(Errno.NOTCAPABLE);
    expect(h.call.fd_advise!(fd, 0n, 0n, 9)).toBe(Errno.NOTCAPABLE);
  });

  it('fd_advise validates advice; fd_allocate extends; fd_sync/fd_datasync succeed on files', async () => {
    const h = await make();
    const [, fd] = open(h, 3, 'al', Oflags.CREAT);
    expect(h.call.fd_advise!(fd, 0n, 10n, 2)).toBe(0);
    expect(h.call.fd_advise!(fd, 0n, 10n, 6)).toBe(Errno.INVAL);
    expect(h.call.fd_allocate!(fd, 0n, 100n)).toBe(0);
    expect(lstatSync(join(data, 'al')).size).toBe(100);
    expect(h.call.fd_sync!(fd)).toBe(0);
    expect(h.call.fd_datasync!(fd)).toBe(0);
  });

  it('fd_renumber moves a descriptor onto another open one', async () => {
    const h = await make();
    writeFileSync(join(data, 'x'), 'X');
    writeFileSync(join(data, 'y'), 'Y');
    const [, a] = open(h, 3, 'x');
    const [, b] = open(h, 3, 'y');
    expect(h.call.fd_renumber!(a, b)).toBe(0);
    expect(read(h, b, 4)).toEqual([0, 'X']);
    expect(read(h, a, 4)[0]).toBe(Errno.BADF);
    expect(h.call.fd_renumber!(b, 77)).toBe(Errno.BADF);
  });

  it('maxOpenFiles: more open descriptors than allowed is EMFILE', async () => {
    const h = await make({ maxOpenFiles: 2 });
    writeFileSync(join(data, 'x'), 'X');
    const [e, fd] = open(h, 3, 'x');
    expect(e).toBe(0);
    expect(open(h, 3, 'x')[0]).toBe(Errno.MFILE);
    h.call.fd_close!(fd);
    expect(open(h, 3, 'x')[0]).toBe(0);
  });

  it('a read-only preopen refuses every change with ENOTCAPABLE but reads', async () => {
    writeFileSync(join(data, 'ro.txt'), 'keep');
    const h = await make({ preopens: [{ guestPath: '/data', hostPath: data, readOnly: true }] });
    expect(open(h, 3, 'ro.txt', 0, Rights.FD_READ)[0]).toBe(0);
    expect(read(h, 4, 10)).toEqual([0, 'keep']);
    expect(open(h, 3, 'ro.txt', 0, Rights.FD_READ | Rights.FD_WRITE)[0]).toBe(Errno.NOTCAPABLE);
    expect(open(h, 3, 'new', Oflags.CREAT, Rights.FD_READ)[0]).toBe(Errno.NOTCAPABLE);
    expect(pathCall(h, 'path_create_directory', 3, 'd')).toBe(Errno.NOTCAPABLE);
    expect(pathCall(h, 'path_unlink_file', 3, 'ro.txt')).toBe(Errno.NOTCAPABLE);
    expect(readFileSync(join(data, 'ro.txt'), 'utf8')).toBe('keep');
  });
});

describe('directories (path_create_directory, fd_readdir, path_remove_directory)', () => {
  it('mkdir; EEXIST on an existing name; rmdir non-empty is ENOTEMPTY, of a file ENOTDIR', async () => {
    const h = await make();
    expect(pathCall(h, 'path_create_directory', 3, 'd')).toBe(0);
    expect(pathCall(h, 'path_create_directory', 3, 'd')).toBe(Errno.EXIST);
    writeFileSync(join(data, 'd', 'f'), '');
    expect(pathCall(h, 'path_remove_directory', 3, 'd')).toBe(Errno.NOTEMPTY);
    expect(pathCall(h, 'path_remove_directory', 3, 'd/f')).toBe(Errno.NOTDIR);
    expect(pathCall(h, 'path_unlink_file', 3, 'd/f')).toBe(0);
    expect(pathCall(h, 'path_remove_directory', 3, 'd')).toBe(0);
    expect(existsSync(join(data, 'd'))).toBe(false);
    expect(pathCall(h, 'path_remove_directory', 3, 'd')).toBe(Errno.NOENT);
  });

  it('readdir: dirent layout, . and .., and d_next cookies resume where a small buffer stopped', async () => {
    const h = await make();
    const names = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
    for (const n of names) writeFileSync(join(data, n), n);
    mkdirSync(join(data, 'sub'));
    const seen: { name: string; type: number; next: bigint; ino: bigint }[] = [];
    let cookie = 0n;
    for (let round = 0; round < 50; round++) {
      expect(h.call.fd_readdir!(3, BUF, 40, cookie, OUT)).toBe(0); // room for one entry at most
      const used = h.u32(OUT);
      const dv = h.dv();
      let at = 0;
      let progressed = false;
      while (at + 24 <= used) {
        const next = dv.getBigUint64(BUF + at, true);
        const ino = dv.getBigUint64(BUF + at + 8, true);
        const namlen = dv.getUint32(BUF + at + 16, true);
        const type = dv.getUint8(BUF + at + 20);
        if (at + 24 + namlen > used) break; // truncated entry: read again from its cookie
        seen.push({ name: h.get(BUF + at + 24, namlen), type, next, ino });
        cookie = next;
        progressed = true;
        at += 24 + namlen;
      }
      if (used < 40 && !progressed) break;
      if (used < 40 && at >= used) break;
    }
    const byName = new Map(seen.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual(['.', '..', ...names, 'sub'].sort());
    expect(seen.length).toBe(byName.size); // no entry twice
    expect(byName.get('.')!.type).toBe(Filetype.DIRECTORY);
    expect(byName.get('sub')!.type).toBe(Filetype.DIRECTORY);
    expect(byName.get('alpha')!.type).toBe(Filetype.REGULAR_FILE);
    expect(byName.get('alpha')!.ino).toBe(lstatSync(join(data, 'alpha'), { bigint: true }).ino);
    expect(seen.map((s) => s.next)).toEqual(seen.map((_, i) => BigInt(i + 1)));
    // past the end: nothing
    expect(h.call.fd_readdir!(3, BUF, 4096, 1000n, OUT)).toBe(0);
    expect(h.u32(OUT)).toBe(0);
    expect(h.call.fd_readdir!(1, BUF, 100, 0n, OUT)).toBe(Errno.NOTDIR);
  });
});

describe('links and symlinks (path_symlink, path_readlink, path_link, path_rename)', () => {
  it('a symlink inside the preopen is created, read and followed (SYMLINK_FOLLOW); without it, ELOOP', async () => {
    const h = await make();
    mkdirSync(join(data, 'sub'));
    writeFileSync(join(data, 'sub', 'target.txt'), 'T');
    const tl = h.put(BUF, 'sub/target.txt');
    const pl = h.put(PATH, 'ln');
    expect(h.call.path_symlink!(BUF, tl, 3, PATH, pl)).toBe(0);
    expect(readlinkSync(join(data, 'ln'))).toBe('sub/target.txt');
    expect(h.call.path_readlink!(3, PATH, pl, BIG, 100, OUT)).toBe(0);
    expect(h.get(BIG, h.u32(OUT))).toBe('sub/target.txt');
    expect(h.call.path_readlink!(3, PATH, pl, BIG, 3, OUT)).toBe(0); // truncated to the buffer
    expect(h.u32(OUT)).toBe(3);
    const [e, fd] = open(h, 3, 'ln', 0, ALL_RIGHTS, 0, 1);
    expect(e).toBe(0);
    expect(read(h, fd, 5)).toEqual([0, 'T']);
    expect(open(h, 3, 'ln', 0, ALL_RIGHTS, 0, 0)[0]).toBe(Errno.LOOP);
    // path_filestat_get without follow sees the link itself
    const l2 = h.put(PATH, 'ln');
    expect(h.call.path_filestat_get!(3, 0, PATH, l2, BUF)).toBe(0);
    expect(h.mem()[BUF + 16]).toBe(Filetype.SYMBOLIC_LINK);
    expect(h.call.path_filestat_get!(3, 1, PATH, l2, BUF)).toBe(0);
    expect(h.mem()[BUF + 16]).toBe(Filetype.REGULAR_FILE);
    // readlink of a non-link is EINVAL
    const l3 = h.put(PATH, 'sub');
    expect(h.call.path_readlink!(3, PATH, l3, BIG, 100, OUT)).toBe(Errno.INVAL);
  });

  it('symlinks leading out of the preopen are refused with ENOTCAPABLE: relative escapes and absolute targets', async () => {
    writeFileSync(join(tmp.dir, 'secret'), 'S');
    symlinkSync('../secret', join(data, 'esc'));
    symlinkSync(join(tmp.dir, 'secret'), join(data, 'abs'));
    mkdirSync(join(data, 'sub'));
    symlinkSync('../../', join(data, 'sub', 'up2'));
    const h = await make();
    expect(open(h, 3, 'esc', 0, ALL_RIGHTS, 0, 1)[0]).toBe(Errno.NOTCAPABLE);
    expect(open(h, 3, 'abs', 0, ALL_RIGHTS, 0, 1)[0]).toBe(Errno.NOTCAPABLE);
    expect(open(h, 3, 'sub/up2/secret', 0, ALL_RIGHTS, 0, 0)[0]).toBe(Errno.NOTCAPABLE);
    const len = h.put(PATH, 'esc');
    expect(h.call.path_filestat_get!(3, 1, PATH, len, BUF)).toBe(Errno.NOTCAPABLE);
    // creating escaping or absolute symlinks is refused too
    const t1 = h.put(BUF, '../outside');
    const p1 = h.put(PATH, 'new1');
    expect(h.call.path_symlink!(BUF, t1, 3, PATH, p1)).toBe(Errno.NOTCAPABLE);
    const t2 = h.put(BUF, '/etc/passwd');
    expect(h.call.path_symlink!(BUF, t2, 3, PATH, p1)).toBe(Errno.NOTCAPABLE);
    // a guest link may not climb at all, even where `..` would stay inside (sub/../x is /data/x): a link
    // with `..` means something else once moved (docs/wasi.md, "Symlinks the guest makes")
    const t3 = h.put(BUF, '../x');
    const p3 = h.put(PATH, 'sub/no');
    expect(h.call.path_symlink!(BUF, t3, 3, PATH, p3)).toBe(Errno.NOTCAPABLE);
    expect(existsSync(join(data, 'sub', 'no'))).toBe(false);
    const t4 = h.put(BUF, 'x/y');
    const p4 = h.put(PATH, 'sub/ok');
    expect(h.call.path_symlink!(BUF, t4, 3, PATH, p4)).toBe(0); // downward: sub/x/y (dangling is fine)
    expect(readlinkSync(join(data, 'sub', 'ok'))).toBe('x/y');
  });

  it('`..` never climbs above the preopen root; absolute paths are not capabilities', async () => {
    writeFileSync(join(tmp.dir, 'secret'), 'S');
    mkdirSync(join(data, 'sub'));
    writeFileSync(join(data, 'in.txt'), 'I');
    const h = await make();
    expect(open(h, 3, '../secret')[0]).toBe(Errno.NOTCAPABLE);
    expect(open(h, 3, 'sub/../../secret')[0]).toBe(Errno.NOTCAPABLE);
    expect(open(h, 3, '/etc/passwd')[0]).toBe(Errno.NOTCAPABLE);
    expect(open(h, 3, 'sub/../in.txt')[0]).toBe(0);
    const [, sub] = open(h, 3, 'sub', Oflags.DIRECTORY);
    expect(open(h, sub, '../in.txt')[0]).toBe(0); // up from a subdirectory, still inside
    expect(open(h, sub, '../../secret')[0]).toBe(Errno.NOTCAPABLE);
    expect(pathCall(h, 'path_create_directory', 3, '../made')).toBe(Errno.NOTCAPABLE);
    expect(existsSync(join(tmp.dir, 'made'))).toBe(false);
  });

  it('rename and hard link, both paths checked; unlink removes a file', async () => {
    const h = await make();
    writeFileSync(join(data, 'a'), 'A');
    const al = h.put(PATH, 'a');
    const bl = h.put(BUF, 'b');
    expect(h.call.path_rename!(3, PATH, al, 3, BUF, bl)).toBe(0);
    expect(readFileSync(join(data, 'b'), 'utf8')).toBe('A');
    expect(h.call.path_rename!(3, PATH, al, 3, BUF, bl)).toBe(Errno.NOENT);
    const cl = h.put(PATH, 'c');
    expect(h.call.path_link!(3, 0, BUF, bl, 3, PATH, cl)).toBe(0);
    expect(lstatSync(join(data, 'b')).nlink).toBe(2);
    expect(h.call.path_link!(3, 0, BUF, bl, 3, PATH, cl)).toBe(Errno.EXIST);
    const esc = h.put(PATH, '../stolen');
    expect(h.call.path_rename!(3, BUF, bl, 3, PATH, esc)).toBe(Errno.NOTCAPABLE);
    expect(h.call.path_link!(3, 0, BUF, bl, 3, PATH, esc)).toBe(Errno.NOTCAPABLE);
    expect(pathCall(h, 'path_unlink_file', 3, 'c')).toBe(0);
    expect(existsSync(join(data, 'c'))).toBe(false);
    const renames = h.records.filter((r) => r.syscall === 'wasi:filesystem/rename' && r.result === 0);
    expect(renames.slice(0, 2).map((r) => r.args.path)).toEqual(['/data/a', '/data/b']); // source and destination crossings
  });
});

describe('poll_oneoff', () => {
  it('a relative clock subscription sleeps, then reports its userdata', async () => {
    const h = await make();
    const dv = h.dv();
    h.mem().fill(0, BUF, BUF + 48);
    dv.setBigUint64(BUF, 0xabcn, true);
    dv.setUint8(BUF + 8, 0); // clock
    dv.setUint32(BUF + 16, 1, true); // monotonic
    dv.setBigUint64(BUF + 24, 30_000_000n, true); // 30 ms
    const t0 = performance.now();
    expect(h.call.poll_oneoff!(BUF, BIG, 1, OUT)).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(h.u32(OUT)).toBe(1);
    expect(dv.getBigUint64(BIG, true)).toBe(0xabcn);
    expect(dv.getUint16(BIG + 8, true)).toBe(0);
    expect(dv.getUint8(BIG + 10)).toBe(0);
    expect(h.records.at(-1)!.syscall).toBe('wasi:clocks/subscribe');
  });

  it('a ready fd returns at once without waiting for the clock; no subscriptions is EINVAL', async () => {
    const h = await make({ stdin: 'abc' });
    const dv = h.dv();
    h.mem().fill(0, BUF, BUF + 96);
    dv.setBigUint64(BUF, 1n, true);
    dv.setUint8(BUF + 8, 0);
    dv.setUint32(BUF + 16, 1, true);
    dv.setBigUint64(BUF + 24, 10_000_000_000n, true); // 10 s
    dv.setBigUint64(BUF + 48, 2n, true);
    dv.setUint8(BUF + 56, 1); // fd_read
    dv.setUint32(BUF + 64, 0, true); // stdin
    const t0 = performance.now();
    expect(h.call.poll_oneoff!(BUF, BIG, 2, OUT)).toBe(0);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(h.u32(OUT)).toBe(1);
    expect(dv.getBigUint64(BIG, true)).toBe(2n);
    expect(dv.getUint8(BIG + 10)).toBe(1);
    expect(dv.getBigUint64(BIG + 16, true)).toBe(3n);
    expect(h.records.at(-1)!.syscall).toBe('wasi:io/poll');
    expect(h.call.poll_oneoff!(BUF, BIG, 0, OUT)).toBe(Errno.INVAL);
    expect(h.call.poll_oneoff!(OOB, BIG, 1, OUT)).toBe(Errno.FAULT);
  });

  it('terminating the container from another thread wakes a guest sleeping in poll_oneoff', async () => {
    const h = await make();
    const dv = h.dv();
    h.mem().fill(0, BUF, BUF + 48);
    dv.setBigUint64(BUF, 9n, true);
    dv.setUint32(BUF + 16, 1, true);
    dv.setBigUint64(BUF + 24, 60_000_000_000n, true); // 60 s
    // The kernel's role: a worker thread terminates the container 100 ms from now through shared memory.
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       setTimeout(() => { Atomics.store(workerData, 0, 2); Atomics.notify(workerData, 0); }, 100);`,
      { eval: true, workerData: h.gate.control },
    );
    await new Promise((r) => worker.once('online', r));
    const t0 = performance.now();
    expect(h.call.poll_oneoff!(BUF, BIG, 1, OUT)).toBe(0);
    const waited = performance.now() - t0;
    // Woken by the termination, long before its 60 s timeout (no lower bound: on a loaded machine the worker's
    // 100 ms may mostly have passed before this thread starts waiting).
    expect(waited).toBeLessThan(10_000);
    await worker.terminate();
    // the next call is refused
    expect(h.call.sched_yield!()).toBe(Errno.ACCES);
    expect(h.gate.refusal).toBe('CONTAINER_TERMINATED');
  });
});

describe('processes, scheduling and sockets', () => {
  it('sched_yield succeeds; proc_raise is ENOSYS; sockets: no socket descriptors exist', async () => {
    const h = await make();
    expect(h.call.sched_yield!()).toBe(0);
    expect(h.call.proc_raise!(6)).toBe(Errno.NOSYS);
    expect(h.call.sock_accept!(3, 0, OUT)).toBe(Errno.NOTSOCK);
    expect(h.call.sock_accept!(40, 0, OUT)).toBe(Errno.BADF);
    expect(h.call.sock_send!(1, IOV, 0, 0, OUT)).toBe(Errno.NOTSOCK);
    expect(h.call.sock_recv!(1, IOV, 0, 0, OUT, OUT + 4)).toBe(Errno.NOTSOCK);
    expect(h.call.sock_shutdown!(1, 3)).toBe(Errno.NOTSOCK);
    expect(h.call.sock_shutdown!(1, 9)).toBe(Errno.INVAL);
    expect(h.call.sock_accept!(3, 0, OOB)).toBe(Errno.FAULT);
  });

  it('every one of the 46 preview1 functions is provided', async () => {
    const h = await make();
    expect(Object.keys(h.host.imports.wasi_snapshot_preview1).sort()).toEqual(Object.keys((await import('./helpers.js')).SIGNATURES).sort());
    expect(Object.keys(h.host.imports.wasi_snapshot_preview1)).toHaveLength(46);
  });
});

describe('the gate decides every call (real compiled policy)', () => {
  const POLICY = `
apiVersion: forgeone.policy/v1
name: wasi-data-only
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: out, action: allow, syscalls: ["wasi:cli/stdout"] }
      - id: data
        action: allow
        syscalls: ["wasi:filesystem/*"]
        args: { path: { match: ["/data", "/data/public/**"] } }
`;

  it('filesystem calls are allowed only under /data/public; refusals are EACCES with POLICY_DENIED', async () => {
    mkdirSync(join(data, 'public'));
    mkdirSync(join(data, 'private'));
    writeFileSync(join(data, 'public', 'ok.txt'), 'ok');
    writeFileSync(join(data, 'private', 'no.txt'), 'no');
    const { gate, records } = policyGate(POLICY);
    const h = await harness({ gate, preopens: [{ guestPath: '/data', hostPath: data }], args: ['x'] });
    const [e, fd] = open(h, 3, 'public/ok.txt');
    expect(e).toBe(0);
    expect(read(h, fd, 10)).toEqual([0, 'ok']);
    expect(open(h, 3, 'private/no.txt')[0]).toBe(Errno.ACCES);
    expect(gate.refusal).toBe('POLICY_DENIED');
    expect(pathCall(h, 'path_create_directory', 3, 'private/new')).toBe(Errno.ACCES);
    expect(existsSync(join(data, 'private', 'new'))).toBe(false);
    expect(h.call.args_sizes_get!(OUT, OUT + 4)).toBe(Errno.ACCES); // args are not granted
    expect(write(h, 1, 'hi')).toEqual([0, 2]);
    expect(write(h, 2, 'hi')[0]).toBe(Errno.ACCES); // stderr is not granted
    const denied = records.filter((r) => !r.allowed);
    // the harness opens with every right, write included, so the open is decided as a write on the path
    expect(denied.map((r) => r.syscall)).toEqual(['wasi:filesystem/write', 'wasi:filesystem/create-directory', 'wasi:cli/args', 'wasi:cli/stderr']);
    expect(denied[0]!.args.path).toBe('/data/private/no.txt');
  });

  it('an open that can change the file is decided as a write: a read-only policy cannot create or empty files', async () => {
    writeFileSync(join(data, 'precious.txt'), 'precious data');
    const READ_ONLY = `
apiVersion: forgeone.policy/v1
name: read-only
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: read, action: allow, syscalls: ["wasi:filesystem/open", "wasi:filesystem/read", "wasi:filesystem/stat"], args: { path: { match: ["/data/**"] } } }
`;
    const { gate, records } = policyGate(READ_ONLY);
    const h = await harness({ gate, preopens: [{ guestPath: '/data', hostPath: data }] });
    const readOnly = Rights.FD_READ | Rights.FD_SEEK | Rights.FD_TELL | Rights.FD_FILESTAT_GET;
    expect(open(h, 3, 'precious.txt', 0, readOnly)[0]).toBe(0); // reading is fine
    expect(open(h, 3, 'precious.txt', Oflags.TRUNC, readOnly)[0]).toBe(Errno.ACCES); // truncate: a write
    expect(open(h, 3, 'new.txt', Oflags.CREAT, readOnly)[0]).toBe(Errno.ACCES); // create: a write
    expect(open(h, 3, 'precious.txt', 0, readOnly | Rights.FD_WRITE)[0]).toBe(Errno.ACCES); // write rights
    expect(open(h, 3, 'precious.txt', 0, readOnly, Fdflags.APPEND)[0]).toBe(Errno.ACCES); // append
    expect(readFileSync(join(data, 'precious.txt'), 'utf8')).toBe('precious data');
    expect(existsSync(join(data, 'new.txt'))).toBe(false);
    expect(records.filter((r) => !r.allowed).map((r) => `${r.syscall} ${r.args.path}`)).toEqual([
      'wasi:filesystem/write /data/precious.txt',
      'wasi:filesystem/write /data/new.txt',
      'wasi:filesystem/write /data/precious.txt',
      'wasi:filesystem/write /data/precious.txt',
    ]);
  });

  it('the policy sees where a symlink really leads, not the name the guest used', async () => {
    mkdirSync(join(data, 'public'));
    mkdirSync(join(data, 'private'));
    writeFileSync(join(data, 'private', 'no.txt'), 'secret');
    symlinkSync('../private/no.txt', join(data, 'public', 'sneaky'));
    const { gate, records } = policyGate(POLICY);
    const h = await harness({ gate, preopens: [{ guestPath: '/data', hostPath: data }] });
    expect(open(h, 3, 'public/sneaky', 0, ALL_RIGHTS, 0, 1)[0]).toBe(Errno.ACCES);
    const rec = records.at(-1)!;
    expect(rec.args.path).toBe('/data/private/no.txt');
    expect(rec.args.detail).toBe('/data/public/sneaky');
  });

  it('a sockets refusal is ENOTCAPABLE', async () => {
    const { gate } = policyGate(POLICY);
    const h = await harness({ gate });
    expect(h.call.sock_accept!(3, 0, OUT)).toBe(Errno.NOTCAPABLE);
    expect(gate.refusal).toBe('POLICY_DENIED');
  });

  it('a terminated container gets every call refused', async () => {
    const h = await make();
    terminateControl(h.gate.control);
    expect(write(h, 1, 'x')[0]).toBe(Errno.ACCES);
    expect(open(h, 3, 'x', Oflags.CREAT)[0]).toBe(Errno.ACCES);
    expect(h.gate.refusal).toBe('CONTAINER_TERMINATED');
    expect(existsSync(join(data, 'x'))).toBe(false);
  });
});
