// The confined filesystem layer on its own: resolution inside the preopen, symlink confinement, the
// guard seeing resolved paths, descriptor limits. Real files in a temporary directory.
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isForgeError } from '@forgeone/common';
import { ALL_RIGHTS, ConfinedFs, Errno, Filetype, Oflags, Rights, createFileStat } from '../../src/fs/index.js';

let base: string;
let root: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'forgeone-fs-'));
  root = join(base, 'root');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  writeFileSync(join(root, 'a', 'b', 'f.txt'), 'deep');
  writeFileSync(join(base, 'outside.txt'), 'OUT');
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

const RO = Rights.FD_READ | Rights.FD_SEEK | Rights.FD_TELL | Rights.FD_FILESTAT_GET;

function readAll(fs: ConfinedFs, fd: number): string {
  const buf = new Uint8Array(256);
  const n = fs.read(fd, buf, 0, buf.length);
  return n < 0 ? `errno ${-n}` : Buffer.from(buf.subarray(0, n)).toString();
}

describe('ConfinedFs', () => {
  it('preopens take descriptors from firstFd and are described', () => {
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r/', hostPath: root }], firstFd: 10 });
    expect(fs.descriptor(10)).toMatchObject({ preopen: '/r', guestPath: '/r', filetype: Filetype.DIRECTORY });
    expect(fs.descriptor(3)).toBeUndefined();
    expect(fs.openCount).toBe(1);
    fs.dispose();
    expect(fs.openCount).toBe(0);
  });

  it('a missing preopen directory is IO_ERROR; too many preopens SANDBOX_LIMIT_EXCEEDED', () => {
    const err = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return isForgeError(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(err(() => new ConfinedFs({ preopens: [{ guestPath: '/x', hostPath: join(base, 'nope') }] }))).toBe('IO_ERROR');
    expect(err(() => new ConfinedFs({ preopens: [{ guestPath: '/x', hostPath: root }], maxOpenFiles: 0 }))).toBe('SANDBOX_LIMIT_EXCEEDED');
    expect(err(() => new ConfinedFs({ preopens: [{ guestPath: 'rel', hostPath: root }] }))).toBe('INVALID_ARGUMENT');
  });

  it('resolves through subdirectories and `..` inside the root; refuses `..` above it', () => {
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
    const fd = fs.open(3, 'a/./b/../b/f.txt', 0, 0, RO, 0, 0);
    expect(fd).toBe(4);
    expect(readAll(fs, fd)).toBe('deep');
    expect(fs.descriptor(fd)!.guestPath).toBe('/r/a/b/f.txt');
    expect(fs.open(3, '..', 0, 0, RO, 0, 0)).toBe(-Errno.NOTCAPABLE);
    expect(fs.open(3, 'a/../../outside.txt', 0, 0, RO, 0, 0)).toBe(-Errno.NOTCAPABLE);
    const dir = fs.open(3, 'a/b', 0, Oflags.DIRECTORY, ALL_RIGHTS, ALL_RIGHTS, 0);
    expect(fs.open(dir, '../../a/b/f.txt', 0, 0, RO, 0, 0)).toBeGreaterThan(0);
    expect(fs.open(dir, '../../../outside.txt', 0, 0, RO, 0, 0)).toBe(-Errno.NOTCAPABLE);
    fs.dispose();
  });

  it('follows a symlinked directory in the middle of a path and `..` after it goes back to the real parent', () => {
    symlinkSync('a/b', join(root, 'lnk'));
    writeFileSync(join(root, 'a', 'sibling.txt'), 'sib');
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
    expect(readAll(fs, fs.open(3, 'lnk/f.txt', 0, 0, RO, 0, 0))).toBe('deep');
    // lnk → a/b, so lnk/.. is a (POSIX), not the root
    expect(readAll(fs, fs.open(3, 'lnk/../sibling.txt', 0, 0, RO, 0, 0))).toBe('sib');
    fs.dispose();
  });

  it('symlink loops are ELOOP; dangling links are ENOENT; a chain inside the root works', () => {
    symlinkSync('loop2', join(root, 'loop1'));
    symlinkSync('loop1', join(root, 'loop2'));
    symlinkSync('nothing-here', join(root, 'dangling'));
    symlinkSync('hop2', join(root, 'hop1'));
    symlinkSync('a/b/f.txt', join(root, 'hop2'));
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
    expect(fs.open(3, 'loop1', 1, 0, RO, 0, 0)).toBe(-Errno.LOOP);
    expect(fs.open(3, 'loop1/x', 0, 0, RO, 0, 0)).toBe(-Errno.LOOP);
    expect(fs.open(3, 'dangling', 1, 0, RO, 0, 0)).toBe(-Errno.NOENT);
    expect(readAll(fs, fs.open(3, 'hop1', 1, 0, RO, 0, 0))).toBe('deep');
    fs.dispose();
  });

  it('escaping symlinks are refused wherever they appear; creating through one creates nothing outside', () => {
    symlinkSync('..', join(root, 'up'));
    symlinkSync(base, join(root, 'absdir'));
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
    expect(fs.open(3, 'up/outside.txt', 0, 0, RO, 0, 0)).toBe(-Errno.NOTCAPABLE);
    expect(fs.open(3, 'absdir/outside.txt', 0, 0, RO, 0, 0)).toBe(-Errno.NOTCAPABLE);
    expect(fs.open(3, 'up/created.txt', 0, Oflags.CREAT, ALL_RIGHTS, 0, 0)).toBe(-Errno.NOTCAPABLE);
    expect(fs.mkdir(3, 'absdir/made')).toBe(-Errno.NOTCAPABLE);
    expect(existsSync(join(base, 'created.txt'))).toBe(false);
    expect(existsSync(join(base, 'made'))).toBe(false);
    // without follow, the final symlink itself is never opened through (O_NOFOLLOW)
    expect(fs.open(3, 'up', 0, 0, RO, 0, 0)).toBe(-Errno.LOOP);
    // unlinking the link removes the link, not what it points at
    expect(fs.unlink(3, 'up')).toBe(0);
    expect(existsSync(join(base, 'outside.txt'))).toBe(true);
    fs.dispose();
  });

  it('the guard sees the resolved canonical guest path and can refuse before anything changes', () => {
    symlinkSync('a/b', join(root, 'lnk'));
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
    const seen: string[] = [];
    const deny = (p: string): boolean => (seen.push(p), false);
    expect(fs.open(3, 'lnk/new.txt', 0, Oflags.CREAT, ALL_RIGHTS, 0, 0, deny)).toBe(-Errno.ACCES);
    expect(existsSync(join(root, 'a', 'b', 'new.txt'))).toBe(false);
    expect(fs.rename(3, 'a/b/f.txt', 3, 'moved', (p, i) => (seen.push(`${i}:${p}`), i === 0))).toBe(-Errno.ACCES);
    expect(existsSync(join(root, 'a', 'b', 'f.txt'))).toBe(true);
    expect(seen).toEqual(['/r/a/b/new.txt', '0:/r/a/b/f.txt', '1:/r/moved']);
    fs.dispose();
  });

  it('read-only preopens grant no write rights; rights only shrink', () => {
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root, readOnly: true }] });
    expect(fs.descriptor(3)!.rightsInheriting & Rights.FD_WRITE).toBe(0);
    expect(fs.open(3, 'a/b/f.txt', 0, 0, Rights.FD_WRITE, 0, 0)).toBe(-Errno.NOTCAPABLE);
    expect(fs.open(3, 'a/b/f.txt', 0, Oflags.TRUNC, Rights.FD_READ, 0, 0)).toBe(-Errno.NOTCAPABLE);
    expect(fs.mkdir(3, 'x')).toBe(-Errno.NOTCAPABLE);
    expect(fs.rmdir(3, 'a/b')).toBe(-Errno.NOTCAPABLE);
    expect(fs.symlink('a', 3, 'l')).toBe(-Errno.NOTCAPABLE);
    expect(fs.setRights(3, ALL_RIGHTS, ALL_RIGHTS)).toBe(-Errno.NOTCAPABLE);
    fs.dispose();
  });

  it('descriptor limit: EMFILE at maxOpenFiles; closing frees a slot; the lowest free number is reused', () => {
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }], maxOpenFiles: 3 });
    const a = fs.open(3, 'a/b/f.txt', 0, 0, RO, 0, 0);
    const b = fs.open(3, 'a/b/f.txt', 0, 0, RO, 0, 0);
    expect([a, b]).toEqual([4, 5]);
    expect(fs.open(3, 'a/b/f.txt', 0, 0, RO, 0, 0)).toBe(-Errno.MFILE);
    expect(fs.close(a)).toBe(0);
    expect(fs.open(3, 'a/b/f.txt', 0, 0, RO, 0, 0)).toBe(4);
    fs.dispose();
  });

  it('statAt follows or not; readdir snapshots with stable cookies', () => {
    symlinkSync('a', join(root, 'la'));
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
    const st = createFileStat();
    expect(fs.statAt(3, 'la', false, st)).toBe(0);
    expect(st.filetype).toBe(Filetype.SYMBOLIC_LINK);
    expect(fs.statAt(3, 'la', true, st)).toBe(0);
    expect(st.filetype).toBe(Filetype.DIRECTORY);
    expect(fs.statAt(3, 'a/b/f.txt/', true, st)).toBe(-Errno.NOTDIR);
    const list = fs.readdir(3, 0n);
    expect(typeof list).not.toBe('number');
    const names = (list as readonly { name: Uint8Array }[]).map((e) => Buffer.from(e.name).toString());
    expect(names.slice(0, 2)).toEqual(['.', '..']);
    expect(names.slice(2).sort()).toEqual(['a', 'la']);
    writeFileSync(join(root, 'later'), '');
    expect((fs.readdir(3, 2n) as unknown[]).length).toBe(4); // same snapshot while cookies continue
    expect((fs.readdir(3, 0n) as unknown[]).length).toBe(5); // a new snapshot from cookie 0
    fs.dispose();
  });

  it('a descriptor whose directory was moved out of the root cannot reach outside', () => {
    const fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
    const dir = fs.open(3, 'a', 0, Oflags.DIRECTORY, Rights.PATH_OPEN | Rights.FD_READDIR, RO, 0);
    expect(dir).toBeGreaterThan(0);
    // the host moves the directory out from under the guest
    renameSync(join(root, 'a'), join(base, 'moved-a'));
    expect(fs.open(dir, 'b/f.txt', 0, 0, RO, 0, 0)).toBe(-Errno.NOTCAPABLE);
    fs.dispose();
  });
});
