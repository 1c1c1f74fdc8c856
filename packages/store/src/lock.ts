// One process per store directory. Node has no flock, so the lock is a file holding the owner's pid and
// host; a lock whose pid is dead on this host is stale and is taken over.
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ForgeError } from '@forgeone/common';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as { pid?: unknown; host?: unknown };
    if (typeof v.pid === 'number' && Number.isSafeInteger(v.pid) && v.pid > 0 && typeof v.host === 'string') return { pid: v.pid, host: v.host };
  } catch {
    // fall through: unreadable content
  }
  return undefined;
}

async function readOwner(path: string): Promise<LockOwner | undefined | 'missing'> {
  try {
    return parseOwner(await readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedBy(owner: LockOwner, path: string): ForgeError {
  const where = owner.host === hostname() ? '' : ` on host ${owner.host}`;
  return new ForgeError('IO_ERROR', `store is locked by pid ${owner.pid}${where} (${path})`, {
    details: { lock: path, pid: owner.pid, host: owner.host },
  });
}

/**
 * Take the lock of a store directory.
 * @returns a function that releases it
 * @throws ForgeError `IO_ERROR` "store is locked by pid N" when a live process holds it
 */
export async function acquireLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'LOCK');
  const me: LockOwner = { pid: process.pid, host: hostname() };
  const content = `${JSON.stringify(me)}\n`;
  // Write the content first and link it into place: the lock file never exists empty, so a process that
  // finds it can always tell who holds it.
  const tmp = join(dir, `LOCK.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await writeFile(tmp, content, { flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(tmp, path);
        return async () => {
          await unlink(path).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          });
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = await readOwner(path);
      if (owner === 'missing') continue;
      // On another host we cannot tell whether the owner lives: refuse. Unreadable content can only come
      // from a crash of the machine before the lock's data reached the disk, or from editing: stale.
      if (owner !== undefined && (owner.host !== me.host || isAlive(owner.pid))) throw lockedBy(owner, path);
      // Stale. Move it aside (atomic), then check that what we moved is the stale lock and not a fresh one
      // that another process took over in between; if it is fresh, put it back and give up.
      const aside = join(dir, `LOCK.stale.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      try {
        await rename(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const moved = await readOwner(aside);
      if (moved !== 'missing' && moved !== undefined && (moved.pid !== owner?.pid || moved.host !== owner.host) && isAlive(moved.pid)) {
        await link(aside, path).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
        throw lockedBy(moved, path);
      }
      await unlink(aside).catch(() => undefined);
    }
    throw new ForgeError('IO_ERROR', `could not take the store lock ${path}: it keeps changing hands`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
