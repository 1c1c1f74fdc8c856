// path_rename and path_link cross the gate on both paths, also when one of them fails to resolve, so an
// attempt to move or link something out of the preopen is decided (and recorded) on its destination and
// never shows as a plain `allow` in the record. A real compiled policy, a RingRecorder. Also the symlink
// residue found by the rogue C guest (plugins/rogue-c): a link renamed up so that it points above the
// preopen can no longer be made.
import { existsSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Errno } from '../../src/fs/index.js';
import type { CallRecord } from '../../src/gate/index.js';
import { allowAllGate, harness, policyGate, tempDir, type Harness } from './helpers.js';

const P1 = 1024;
const P2 = 1536;

const POLICY = `
apiVersion: forgeone.policy/v1
name: data-only
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - id: data
        action: allow
        syscalls: ["wasi:filesystem/*"]
        args: { path: { match: ["/data", "/data/**"] } }
`;

let tmp: ReturnType<typeof tempDir>;
let data: string;
beforeEach(() => {
  tmp = tempDir();
  data = join(tmp.dir, 'data');
  mkdirSync(join(data, 'sub'), { recursive: true });
  writeFileSync(join(data, 'own.txt'), 'mine');
});
afterEach(() => tmp.cleanup());

async function setup(kind: 'policy' | 'allow-all'): Promise<{ h: Harness; records: CallRecord[]; refusal: () => string | null }> {
  const { gate, records } = kind === 'policy' ? policyGate(POLICY) : allowAllGate();
  const h = await harness({ gate, preopens: [{ guestPath: '/data', hostPath: data }] });
  records.length = 0;
  return { h, records, refusal: () => gate.refusal };
}

function rename(h: Harness, from: string, to: string): number {
  const a = h.put(P1, from);
  const b = h.put(P2, to);
  return h.call.path_rename!(3, P1, a, 3, P2, b);
}

function link(h: Harness, from: string, to: string, follow = 0): number {
  const a = h.put(P1, from);
  const b = h.put(P2, to);
  return h.call.path_link!(3, follow, P1, a, 3, P2, b);
}

const brief = (r: CallRecord): object => ({ syscall: r.syscall, path: r.args.path, verdict: r.verdict, allowed: r.allowed, result: r.result });

/** Nothing allowed and successful outside /data, whatever happened. */
function noAllowedEscape(records: readonly CallRecord[]): void {
  for (const r of records) if (r.allowed && r.args.path !== undefined) expect(r.args.path, `${r.syscall} ${r.args.path}`).toMatch(/^\/data(\/|$)/);
}

describe('path_rename / path_link: both paths cross the gate (compiled policy, RingRecorder)', () => {
  it('rename out of the preopen (witx: path_rename) is decided on the destination: deny, EACCES, nothing moved', async () => {
    const { h, records, refusal } = await setup('policy');
    expect(rename(h, 'own.txt', '../out.txt')).toBe(Errno.ACCES);
    expect(refusal()).toBe('POLICY_DENIED');
    expect(records.map(brief)).toEqual([
      { syscall: 'wasi:filesystem/rename', path: '/data/own.txt', verdict: 'allow', allowed: true, result: 0 },
      { syscall: 'wasi:filesystem/rename', path: '/out.txt', verdict: 'deny', allowed: false, result: -1 },
    ]);
    expect(records[0]!.args.detail).toBe('to /out.txt');
    expect(existsSync(join(data, 'own.txt'))).toBe(true);
    expect(existsSync(join(tmp.dir, 'out.txt'))).toBe(false);
    noAllowedEscape(records);
  });

  it('link out of the preopen (witx: path_link) likewise; a hard link in from outside is denied on the source', async () => {
    writeFileSync(join(tmp.dir, 'victim.txt'), 'v');
    const { h, records } = await setup('policy');
    expect(link(h, 'own.txt', '../hl.txt')).toBe(Errno.ACCES);
    expect(records.map(brief)).toEqual([
      { syscall: 'wasi:filesystem/link', path: '/data/own.txt', verdict: 'allow', allowed: true, result: 0 },
      { syscall: 'wasi:filesystem/link', path: '/hl.txt', verdict: 'deny', allowed: false, result: -1 },
    ]);
    records.length = 0;
    expect(link(h, '../victim.txt', 'here.txt')).toBe(Errno.ACCES);
    // the source is refused first: one crossing, the destination is never decided
    expect(records.map(brief)).toEqual([{ syscall: 'wasi:filesystem/link', path: '/victim.txt', verdict: 'deny', allowed: false, result: -1 }]);
    expect(existsSync(join(tmp.dir, 'hl.txt')) || existsSync(join(data, 'here.txt'))).toBe(false);
    noAllowedEscape(records);
  });

  it('when the source fails to resolve (a link leading out), the destination is still decided', async () => {
    symlinkSync('..', join(data, 'esc')); // placed by the host, leads above the preopen
    const { h, records } = await setup('policy');
    expect(rename(h, 'esc/secret', '../y')).toBe(Errno.ACCES);
    expect(records.map(brief)).toEqual([
      { syscall: 'wasi:filesystem/rename', path: '/data/esc/secret', verdict: 'allow', allowed: true, result: 0 },
      { syscall: 'wasi:filesystem/rename', path: '/y', verdict: 'deny', allowed: false, result: -1 },
    ]);
    noAllowedEscape(records);
  });

  it('a destination inside lexically but leading out through a link: both allowed, the confined fs refuses (ENOTCAPABLE on the record)', async () => {
    symlinkSync('..', join(data, 'esc'));
    const { h, records } = await setup('policy');
    expect(rename(h, 'own.txt', 'esc/stolen.txt')).toBe(Errno.NOTCAPABLE);
    expect(records.map(brief)).toEqual([
      { syscall: 'wasi:filesystem/rename', path: '/data/own.txt', verdict: 'allow', allowed: true, result: 0 },
      { syscall: 'wasi:filesystem/rename', path: '/data/esc/stolen.txt', verdict: 'allow', allowed: true, result: Errno.NOTCAPABLE },
    ]);
    expect(existsSync(join(tmp.dir, 'stolen.txt'))).toBe(false);
  });

  it('with an allow-all gate both crossings are recorded and the confined fs alone refuses the escape', async () => {
    const { h, records } = await setup('allow-all');
    expect(rename(h, 'own.txt', '../out.txt')).toBe(Errno.NOTCAPABLE);
    expect(records.map((r) => [r.args.path, r.result])).toEqual([
      ['/data/own.txt', 0],
      ['/out.txt', Errno.NOTCAPABLE],
    ]);
    expect(existsSync(join(tmp.dir, 'out.txt'))).toBe(false);
  });

  it('a rename inside the preopen: two allowed crossings, the second holds the result', async () => {
    const { h, records } = await setup('policy');
    expect(rename(h, 'own.txt', 'sub/moved.txt')).toBe(0);
    expect(records.map((r) => [r.args.path, r.verdict, r.result])).toEqual([
      ['/data/own.txt', 'allow', 0],
      ['/data/sub/moved.txt', 'allow', 0],
    ]);
    expect(rename(h, 'nope.txt', 'sub/x.txt')).toBe(Errno.NOENT);
    expect(records.slice(2).map((r) => [r.args.path, r.result])).toEqual([
      ['/data/nope.txt', 0],
      ['/data/sub/x.txt', Errno.NOENT],
    ]);
  });
});

describe('symlinks that could be moved into escaping (the rogue-c finding), through the preview1 host', () => {
  it('path_symlink("..", "sub/mv") is refused now (ENOTCAPABLE), so there is nothing to rename up', async () => {
    const { h, records } = await setup('policy');
    const t = h.put(P1, '..');
    const p = h.put(P2, 'sub/mv');
    expect(h.call.path_symlink!(P1, t, 3, P2, p)).toBe(Errno.NOTCAPABLE);
    expect(records.at(-1)).toMatchObject({ syscall: 'wasi:filesystem/symlink', allowed: true, result: Errno.NOTCAPABLE, args: { path: '/data/sub/mv', detail: '-> ..' } });
    expect(rename(h, 'sub/mv', 'mv')).toBe(Errno.NOENT);
    expect(existsSync(join(data, 'mv'))).toBe(false);
  });

  it('a link the host placed (sub/mv -> .., inside) cannot be renamed or hard-linked up, nor down; within sub it can', async () => {
    symlinkSync('..', join(data, 'sub', 'mv'));
    mkdirSync(join(data, 'sub', 'deeper'));
    const { h, records } = await setup('policy');
    expect(rename(h, 'sub/mv', 'mv')).toBe(Errno.NOTCAPABLE);
    expect(link(h, 'sub/mv', 'mv')).toBe(Errno.NOTCAPABLE);
    expect(rename(h, 'sub/mv', 'sub/deeper/mv')).toBe(Errno.NOTCAPABLE);
    expect(existsSync(join(data, 'mv'))).toBe(false);
    expect(rename(h, 'sub/mv', 'sub/mv2')).toBe(0);
    expect(readlinkSync(join(data, 'sub', 'mv2'))).toBe('..');
    // every crossing was allowed (all paths under /data) and the refusals are on the record with their errno
    expect(records.every((r) => r.allowed)).toBe(true);
    expect(records.filter((r) => r.result === Errno.NOTCAPABLE).map((r) => [r.syscall, r.args.path])).toEqual([
      ['wasi:filesystem/rename', '/data/mv'],
      ['wasi:filesystem/link', '/data/mv'],
      ['wasi:filesystem/rename', '/data/sub/deeper/mv'],
    ]);
  });

  it('a directory holding a host link that climbs above it cannot be moved to another directory', async () => {
    mkdirSync(join(data, 'sub', 'box'));
    symlinkSync('../..', join(data, 'sub', 'box', 'top')); // /data, from sub/box
    const { h } = await setup('policy');
    expect(rename(h, 'sub/box', 'box')).toBe(Errno.NOTCAPABLE); // would point above /data
    expect(rename(h, 'sub/box', 'sub/box2')).toBe(0); // same parent: unchanged meaning
    expect(readlinkSync(join(data, 'sub', 'box2', 'top'))).toBe('../..');
  });
});
