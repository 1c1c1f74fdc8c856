import { lstatSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ForgeError } from '@forgeone/common';

function owner(): string {
  if (typeof process.getuid === 'function') return String(process.getuid());
  try {
    return userInfo().username.replace(/[^\w.-]/g, '_');
  } catch {
    return 'user';
  }
}

/** Whether a directory is ours alone: a real directory (no link), owned by this user, not writable by others. */
function private_(dir: string): boolean {
  const st = lstatSync(dir);
  if (!st.isDirectory()) return false;
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return false;
  return process.platform === 'win32' || (st.mode & 0o022) === 0;
}

/**
 * The default on-disk transpile cache of components: `<os tmp>/forgeone-component-cache-<uid>`, created
 * private (mode 0700). The generated JavaScript in it runs with the kernel's privileges, so a directory that
 * someone else owns, that others can write to, or that is a link is never used: a fresh private directory
 * under the OS temp dir is made instead (no cache across processes then).
 * @returns an absolute directory path
 * @throws ForgeError `IO_ERROR` when no directory can be created under the OS temp dir
 */
export function defaultComponentCacheDir(): string {
  const dir = join(tmpdir(), `forgeone-component-cache-${owner()}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (private_(dir)) return dir;
  } catch {
    // fall through to a fresh directory
  }
  try {
    return mkdtempSync(join(tmpdir(), 'forgeone-component-cache-'));
  } catch (cause) {
    throw new ForgeError('IO_ERROR', `cannot create a component cache directory under ${tmpdir()}`, { cause });
  }
}
