// Symlinks that could be turned into a way out by moving things around (docs/wasi.md, "Symlinks and
// moves"): the creation rule for guest links, and rename/link of symlinks and of directories holding
// them, up and down the tree. Real files; every escape is checked on the host with realpath, the way a
// host tool following links would see it.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALL_RIGHTS, ConfinedFs, Errno, Lookupflags, Oflags, climbsAbove, isDownwardTarget } from '../../src/fs/index.js';

let base: string;
let root: string;
let fs: ConfinedFs;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'forgeone-fsmv-'));
  root = join(base, 'root');
  mkdirSync(join(root, 'a', 'b', 'c'), { recursive: true });
  writeFileSync(join(root, 'a', 'b', 'f.txt'), 'F');
  writeFileSync(join(base, 'secret.txt'), 'SECRET');
  fs = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }] });
});
afterEach(() => {
  fs.dispose();
  rmSync(base, { recursive: true, force: true });
});

/** Where the host's kernel resolves a link (what a host tool following it reaches), or null when dangling. */
function hostResolves(path: string): string | null {
  try {
    return realpathSync.native(path);
  } catch {
    return null;
  }
}
const isInside = (p: string | null): boolean => p !== null && (p === realpathSync.native(root) || p.startsWith(`${realpathSync.native(root)}/`));

describe('the creation rule: guest symlinks lead strictly downward (relative, no `..`, at least one name)', () => {
  it('the predicates', () => {
    for (const t of ['x', 'a/b', './a', 'a/./b/', 'a//b']) expect(isDownwardTarget(t), t).toBe(true);
    for (const t of ['', '.', './', './.', '..', '../x', 'a/../b', 'a/..', '/etc', '/r/a']) expect(isDownwardTarget(t), t).toBe(false);
    expect(climbsAbove('..', 0)).toBe(true);
    expect(climbsAbove('../x', 1)).toBe(false);
    expect(climbsAbove('../../x', 1)).toBe(true);
    expect(climbsAbove('a/../..', 0)).toBe(true);
    expect(climbsAbove('a/../b', 0)).toBe(false);
    expect(climbsAbove('/etc', 0)).toBe(false); // absolute: the same wherever it is (and never followed)
  });

  it('why `..` is refused even where it stays inside lexically: the kernel resolves `s/..` after following s', () => {
    // On the host (no ForgeOne): s -> . and t -> s/.. look contained from the root, lexically (t: s, then
    // back up to the root), yet the kernel follows s to the root itself and `..` then leaves it.
    const lab = join(base, 'lab');
    mkdirSync(lab);
    symlinkSync('.', join(lab, 's'));
    symlinkSync('s/..', join(lab, 't'));
    expect(hostResolves(join(lab, 't'))).toBe(realpathSync.native(base));
    // The guest can create neither.
    expect(fs.symlink('.', 3, 's')).toBe(-Errno.NOTCAPABLE);
    expect(fs.symlink('s/..', 3, 't')).toBe(-Errno.NOTCAPABLE);
    expect(existsSync(join(root, 's')) || existsSync(join(root, 't'))).toBe(false);
  });

  it('refused: `..` anywhere (even a/b/.. inside the root), `.` alone, absolute; allowed: downward, dangling or not', () => {
    for (const [t, at] of [
      ['..', 'a/up'],
      ['../f.txt', 'a/b/c/l1'],
      ['c/../f.txt', 'a/b/l2'],
      ['.', 'a/l3'],
      ['./.', 'a/l4'],
      ['/etc', 'a/l5'],
    ] as const) {
      expect(fs.symlink(t, 3, at), `${at} -> ${t}`).toBe(-Errno.NOTCAPABLE);
      expect(() => lstatSync(join(root, at)), at).toThrow();
    }
    expect(fs.symlink('b/f.txt', 3, 'a/ok')).toBe(0);
    expect(fs.symlink('nothing/yet', 3, 'a/dangling')).toBe(0);
    expect(readlinkSync(join(root, 'a', 'ok'))).toBe('b/f.txt');
    expect(fs.symlink('', 3, 'a/empty')).toBe(-Errno.NOENT);
  });

  it('a downward guest link moved anywhere (up, down, hard-linked, its directory moved) still leads inside the root', () => {
    expect(fs.symlink('b/f.txt', 3, 'a/dl')).toBe(0);
    expect(fs.rename(3, 'a/dl', 3, 'dl')).toBe(0); // up
    expect(fs.rename(3, 'dl', 3, 'a/b/c/dl')).toBe(0); // down
    expect(fs.link(3, 0, 'a/b/c/dl', 3, 'hl')).toBe(0); // the symlink inode itself, in another directory
    expect(lstatSync(join(root, 'hl')).isSymbolicLink()).toBe(true);
    expect(fs.rename(3, 'a/b', 3, 'b2')).toBe(0); // its directory moved up
    for (const p of [join(root, 'hl'), join(root, 'b2', 'c', 'dl')]) {
      const r = hostResolves(p);
      expect(r === null || isInside(r), `${p} -> ${String(r)}`).toBe(true);
    }
  });
});

describe('moving a symlink that climbs (placed by the host): it stays in its directory', () => {
  beforeEach(() => {
    // contained where they are: a/up -> .. is the root; a/b/up2 -> ../.. is the root too
    symlinkSync('..', join(root, 'a', 'up'));
    symlinkSync('../..', join(root, 'a', 'b', 'up2'));
  });

  it('rename up (where `..` would leave the root) and down (where it would point elsewhere) is ENOTCAPABLE', () => {
    expect(fs.rename(3, 'a/up', 3, 'up')).toBe(-Errno.NOTCAPABLE); // the rogue-c finding: /r/up -> .. is above the root
    expect(fs.rename(3, 'a/b/up2', 3, 'a/up2')).toBe(-Errno.NOTCAPABLE); // up one level
    expect(fs.rename(3, 'a/up', 3, 'a/b/c/up')).toBe(-Errno.NOTCAPABLE); // down
    expect(existsSync(join(root, 'up')) || existsSync(join(root, 'a', 'up2')) || existsSync(join(root, 'a', 'b', 'c', 'up'))).toBe(false);
    expect(readlinkSync(join(root, 'a', 'up'))).toBe('..');
    expect(readlinkSync(join(root, 'a', 'b', 'up2'))).toBe('../..');
  });

  it('a rename within its own directory changes nothing it points to and is allowed', () => {
    expect(fs.rename(3, 'a/up', 3, 'a/./up-renamed')).toBe(0);
    expect(readlinkSync(join(root, 'a', 'up-renamed'))).toBe('..');
    expect(hostResolves(join(root, 'a', 'up-renamed'))).toBe(realpathSync.native(root));
  });

  it('link without SYMLINK_FOLLOW links the symlink itself: only within its directory', () => {
    expect(fs.link(3, 0, 'a/up', 3, 'up')).toBe(-Errno.NOTCAPABLE);
    expect(fs.link(3, 0, 'a/b/up2', 3, 'a/b/c/up2')).toBe(-Errno.NOTCAPABLE);
    expect(existsSync(join(root, 'up'))).toBe(false);
    expect(fs.link(3, 0, 'a/up', 3, 'a/up-same')).toBe(0);
    expect(lstatSync(join(root, 'a', 'up-same')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(root, 'a', 'up')).nlink).toBe(2);
    // with SYMLINK_FOLLOW the link is resolved (inside the root) and its target is linked: here a directory
    expect(fs.link(3, Lookupflags.SYMLINK_FOLLOW, 'a/up', 3, 'rootlink')).toBe(-Errno.PERM);
    expect(fs.link(3, Lookupflags.SYMLINK_FOLLOW, 'a/b/c/../up2', 3, 'x')).toBe(-Errno.PERM);
  });

  it('a descriptor opened on the link\'s directory is the same directory: rename through it is allowed', () => {
    const dir = fs.open(3, 'a', 0, Oflags.DIRECTORY, ALL_RIGHTS, ALL_RIGHTS, 0);
    expect(dir).toBeGreaterThan(3);
    expect(fs.rename(3, 'a/up', dir, 'up-via-fd')).toBe(0);
    expect(readlinkSync(join(root, 'a', 'up-via-fd'))).toBe('..');
  });
});

describe('moving a directory that holds relative symlinks (placed by the host)', () => {
  beforeEach(() => {
    // a/b/c/x -> ../../.. is the root (contained); a/b/c/in -> ../f.txt stays inside a/b
    symlinkSync('../../..', join(root, 'a', 'b', 'c', 'x'));
    symlinkSync('../f.txt', join(root, 'a', 'b', 'c', 'in'));
  });

  it('up the tree: x would lead above the root → ENOTCAPABLE, nothing moved', () => {
    expect(hostResolves(join(root, 'a', 'b', 'c', 'x'))).toBe(realpathSync.native(root));
    expect(fs.rename(3, 'a/b', 3, 'b')).toBe(-Errno.NOTCAPABLE);
    expect(fs.rename(3, 'a/b/c', 3, 'c')).toBe(-Errno.NOTCAPABLE);
    expect(existsSync(join(root, 'b')) || existsSync(join(root, 'c'))).toBe(false);
    expect(readlinkSync(join(root, 'a', 'b', 'c', 'x'))).toBe('../../..');
  });

  it('down the tree: x would point somewhere else (still climbing above the moved directory) → ENOTCAPABLE', () => {
    mkdirSync(join(root, 'a', 'deeper'));
    expect(fs.rename(3, 'a/b', 3, 'a/deeper/b')).toBe(-Errno.NOTCAPABLE);
    expect(existsSync(join(root, 'a', 'b', 'c', 'x'))).toBe(true);
  });

  it('links that stay inside the moved directory move with it: allowed up and down, and still lead to the same file', () => {
    rmSync(join(root, 'a', 'b', 'c', 'x'));
    expect(fs.rename(3, 'a/b', 3, 'b')).toBe(0); // up
    expect(realpathSync.native(join(root, 'b', 'c', 'in'))).toBe(join(realpathSync.native(root), 'b', 'f.txt'));
    mkdirSync(join(root, 'a', 'q'));
    expect(fs.rename(3, 'b', 3, 'a/q/b')).toBe(0); // down
    expect(realpathSync.native(join(root, 'a', 'q', 'b', 'c', 'in'))).toBe(join(realpathSync.native(root), 'a', 'q', 'b', 'f.txt'));
  });

  it('a rename within the same parent is not scanned and is allowed (nothing changes meaning)', () => {
    expect(fs.rename(3, 'a/b', 3, 'a/b-renamed')).toBe(0);
    expect(hostResolves(join(root, 'a', 'b-renamed', 'c', 'x'))).toBe(realpathSync.native(root));
  });

  it('the scan finds a climbing link deep down, never follows links (a self loop, a link to the root), and is bounded', () => {
    rmSync(join(root, 'a', 'b', 'c', 'x'));
    mkdirSync(join(root, 'a', 'b', 'c', 'd', 'e'), { recursive: true });
    symlinkSync('.', join(root, 'a', 'b', 'c', 'self'));
    symlinkSync('../../../..', join(root, 'a', 'b', 'c', 'd', 'tolinkdir'));
    symlinkSync('../../../../..', join(root, 'a', 'b', 'c', 'd', 'e', 'deep')); // from a/b/c/d/e: the root
    expect(fs.rename(3, 'a/b', 3, 'b')).toBe(-Errno.NOTCAPABLE);
    rmSync(join(root, 'a', 'b', 'c', 'd', 'e', 'deep'));
    // from a/b/c/d, ../../../.. is a/ (above b): moving b changes it
    expect(fs.rename(3, 'a/b', 3, 'b')).toBe(-Errno.NOTCAPABLE);
    rmSync(join(root, 'a', 'b', 'c', 'd', 'tolinkdir'));
    // over the limit: EXDEV (programs copy instead); within it: allowed
    const small = new ConfinedFs({ preopens: [{ guestPath: '/r', hostPath: root }], maxRenameScan: 3 });
    try {
      expect(small.rename(3, 'a/b', 3, 'b')).toBe(-Errno.XDEV);
      expect(small.rename(3, 'a/b', 3, 'a/same-parent')).toBe(0); // not scanned
      expect(small.rename(3, 'a/same-parent/c/d/e', 3, 'e')).toBe(0); // an empty directory: nothing to scan
    } finally {
      small.dispose();
    }
    expect(fs.rename(3, 'a/same-parent', 3, 'b')).toBe(0);
    expect(hostResolves(join(root, 'b', 'c', 'self'))).toBe(realpathSync.native(join(root, 'b', 'c')));
  });

  it('after every refused move, no link under the root leads outside it (as a host tool following links sees it)', () => {
    symlinkSync('..', join(root, 'a', 'up'));
    mkdirSync(join(root, 'z'));
    const attempts: [string, string][] = [
      ['a/up', 'up'],
      ['a/b', 'b'],
      ['a/b/c', 'c'],
      ['a/b/c', 'z/c'],
      ['a/b/c/x', 'x'],
      ['a/b/c/x', 'z/x'],
    ];
    for (const [from, to] of attempts) {
      fs.rename(3, from, 3, to);
      fs.link(3, 0, from, 3, `${to}-hl`);
    }
    const bad: string[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const st = lstatSync(p);
        if (st.isSymbolicLink()) {
          const r = hostResolves(p);
          if (r !== null && !isInside(r)) bad.push(`${p} -> ${r}`);
        } else if (st.isDirectory()) walk(p);
      }
    };
    walk(root);
    expect(bad).toEqual([]);
  });
});
