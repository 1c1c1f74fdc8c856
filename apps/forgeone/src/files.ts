import { randomBytes } from 'node:crypto';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ForgeError, type ErrorCode } from '@forgeone/common';

function ioError(e: unknown, action: string, shown: string): ForgeError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new ForgeError('NOT_FOUND', `${shown} does not exist`, { cause: e });
  if (code === 'EISDIR') return new ForgeError('IO_ERROR', `${shown} is a directory`, { cause: e });
  return new ForgeError('IO_ERROR', `cannot ${action} ${shown}: ${(e as Error).message}`, { cause: e });
}

/** Options for {@link readFileLimited}. */
export interface ReadOptions {
  /** Largest size accepted; a larger file is refused before it is read. */
  readonly maxBytes: number;
  /** Code for a file over the limit. */
  readonly limitCode: ErrorCode;
  /** Called after each chunk with the bytes read so far and the file size. */
  readonly onProgress?: (done: number, total: number) => void;
}

const CHUNK = 8 * 1024 * 1024;

/**
 * Read a whole file in chunks, refusing one over the size limit before reading it.
 * @param path - absolute path
 * @param shown - the path as the user typed it, for messages
 * @param options - limit, limit code, progress callback
 * @returns the bytes
 * @throws ForgeError `NOT_FOUND`, `IO_ERROR` or `options.limitCode`
 */
export async function readFileLimited(path: string, shown: string, options: ReadOptions): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw ioError(e, 'read', shown);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new ForgeError('IO_ERROR', `${shown} is not a regular file`);
    if (st.size > options.maxBytes) {
      throw new ForgeError(options.limitCode, `${shown} is ${st.size} bytes, the limit is ${options.maxBytes}`, { details: { value: st.size, limit: options.maxBytes } });
    }
    const buf = new Uint8Array(st.size);
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await handle.read(buf, done, Math.min(CHUNK, buf.length - done), done);
      if (bytesRead === 0) break;
      done += bytesRead;
      options.onProgress?.(done, buf.length);
    }
    return done === buf.length ? buf : buf.subarray(0, done);
  } catch (e) {
    throw e instanceof ForgeError ? e : ioError(e, 'read', shown);
  } finally {
    await handle.close();
  }
}

/**
 * Replace a file atomically: write a temporary file beside it, flush it, rename it over the target. A crash
 * leaves the old file or the new one, never half of either.
 * @param path - absolute path
 * @param shown - the path as the user typed it, for messages
 * @param data - the new content
 * @throws ForgeError `NOT_FOUND` (missing directory) or `IO_ERROR`
 */
export async function writeFileAtomic(path: string, shown: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ForgeError('NOT_FOUND', `cannot write ${shown}: directory ${dirname(shown)} does not exist`, { cause: e });
    throw ioError(e, 'write', shown);
  }
}

/**
 * Write a value as pretty JSON (two spaces, final newline), atomically.
 * @param path - absolute path
 * @param shown - the path as the user typed it
 * @param value - plain data
 */
export async function writeJsonAtomic(path: string, shown: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, shown, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Whether anything (file, directory, link) exists at a path.
 * @param path - absolute path
 * @returns true when it exists
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
