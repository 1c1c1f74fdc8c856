// A hostile C guest (plugins/rogue-c, clang + wasi-libc) against ForgeOne's own WASI preview1 host: raw and
// libc-level escape attempts under a real compiled capability policy with a RingRecorder, the same attempts with
// the policy out of the way (the confined filesystem alone), and the CPU and memory attacks in worker sandboxes.
import { existsSync, linkSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Errno } from '../../src/fs/index.js';
import { decodeBlock, type CallRecord } from '../../src/gate/index.js';
import { createWasmHost, type WasmHost } from '../../src/runtime/index.js';
import { runPreview1 } from '../../src/wasi/index.js';
import { buildWorker, rejection } from '../sandbox/helpers.js';
import { allowAllGate, buildCGuest, tempDir } from '../wasi/helpers.js';
import {
  buildRogue,
  capabilityGate,
  hostResolve,
  linksLeadingOut,
  parseReport,
  plant,
  plantedLinksLeadingOut,
  segments,
  snapshot,
  type Attempt,
  type Refusal,
} from './helpers.js';

/**
 * Where each attempt is stopped:
 * - `libc`: wasi-libc refuses a path under no preopen itself (ENOTCAPABLE) and the host never sees a call;
 * - `gate`: the capability policy denies the call (its canonical path is outside `/data/**`, or it is a socket
 *   call and no network was granted): the guest gets EACCES (ENOTCAPABLE for sockets), the record says deny;
 *   rename and link cross twice (source, then destination), so a move out is denied on its destination;
 * - `fs`: the policy allows the call (its lexical path is inside `/data`) and the confined filesystem refuses
 *   it while resolving (a symlink leading out, `..` above the root, an absolute symlink target) or moving (a
 *   link pinned to its directory, a symlink target it will not create): the record
 *   says allow and holds the errno the guest got.
 * `policy` is the errno under the compiled capability policy, `alone` the errno with an allow-all gate (the
 * confined filesystem and the host's own checks alone).
 */
type Layer = 'libc' | 'gate' | 'fs';
interface Expect {
  readonly layer: Layer;
  readonly policy: number;
  readonly alone: number;
}
const { ACCES, BADF, LOOP, NOENT, NOTCAPABLE, NOTSOCK, PERM } = Errno;
const libc = (): Expect => ({ layer: 'libc', policy: NOTCAPABLE, alone: NOTCAPABLE });
const gate = (alone: number = NOTCAPABLE): Expect => ({ layer: 'gate', policy: ACCES, alone });
const fs = (errno: number = NOTCAPABLE): Expect => ({ layer: 'fs', policy: errno, alone: errno });
const sock = (alone: number = NOTSOCK): Expect => ({ layer: 'gate', policy: NOTCAPABLE, alone });

const EXPECTED: Readonly<Record<string, Readonly<Record<string, Expect>>>> = {
  passwd: {
    'passwd/libc-abs': libc(),
    'passwd/libc-dotdot': gate(),
    'passwd/libc-dotdot-deep': gate(),
    'passwd/raw-abs': gate(),
    'passwd/raw-dotdot': gate(),
    'passwd/raw-stdin-dirfd': gate(BADF),
    'passwd/raw-unknown-dirfd': gate(BADF),
  },
  'write-outside': {
    'write-outside/libc-tmp': libc(),
    'write-outside/libc-dotdot': gate(),
    'write-outside/raw-dotdot': gate(),
    'write-outside/raw-abs': gate(),
    'write-outside/mkdir-dotdot': gate(),
    'write-outside/victim-truncate': gate(),
    'write-outside/victim-unlink': gate(),
    'write-outside/rename-out': gate(), // denied on its destination (second crossing)
    'write-outside/link-out': gate(),
    'write-outside/link-in-victim': gate(),
    'write-outside/planted-dir-link': fs(),
    'write-outside/planted-dangling-abs': fs(),
    'write-outside/planted-dangling-rel': fs(),
    'write-outside/raw-dangling-follow': fs(),
    'write-outside/raw-dangling-nofollow': fs(LOOP), // O_CREAT on a symlink without following it: ELOOP
    'write-outside/unlink-through-link': fs(),
  },
  dotdot: {
    'dotdot/opendir-parent': gate(),
    'dotdot/stat-secret': gate(),
    'dotdot/libc-sub': gate(),
    'dotdot/raw-parent-dir': gate(),
    'dotdot/raw-sub': gate(),
    'dotdot/raw-dot-chain': gate(),
    'dotdot/raw-deep': gate(),
    'dotdot/raw-from-subdir': gate(),
  },
  symlink: {
    'symlink/planted-abs-dir': fs(),
    'symlink/raw-planted-abs-dir': fs(),
    'symlink/planted-abs-opendir': fs(),
    'symlink/planted-abs-stat': fs(),
    'symlink/planted-rel': fs(),
    'symlink/hardlink-through-planted': fs(),
    'symlink/guest-abs': fs(NOENT), // the link was refused on creation, so nothing is there
    'symlink/guest-rel': fs(NOENT),
    'symlink/guest-dotdot': fs(NOENT),
    'symlink/guest-deep': fs(NOENT),
    'symlink/guest-moved-up': fs(NOENT), // `sub/mv -> ..` refused on creation: nothing to rename up
    'symlink/guest-dot-pair': fs(NOENT), // `s -> .` and `t -> s/..` both refused on creation
    'symlink/guest-pinned-pair': fs(NOENT), // `sp -> sub/pinned` created (it lands on /data), `tp -> sp/..` refused
    'symlink/guest-loop': fs(LOOP),
  },
  'abs-symlink': {
    'abs-symlink/planted-open': fs(),
    'abs-symlink/raw-planted-follow': fs(),
    'abs-symlink/raw-planted-nofollow': fs(LOOP),
    'abs-symlink/planted-stat': fs(),
    'abs-symlink/guest': fs(NOENT),
    'abs-symlink/guest-data-prefix': fs(NOENT),
  },
  // host-placed links climbing above their directory (sub/pinned -> .., box/inner/top -> ../..) stay there
  pinned: {
    'pinned/read-through': fs(), // /data/sub/pinned/../secret.txt: lexically inside, physically above /data
    'pinned/rename-up': fs(),
    'pinned/link-up': fs(),
    'pinned/link-follow': fs(PERM), // following sub/pinned names /data itself: a directory, not linkable
    'pinned/rename-down': fs(),
    'pinned/rename-via-guest-link': fs(),
    'pinned/move-sub-down': fs(), // the scan of sub finds pinned
    'pinned/move-box-down': fs(), // the scan of box finds inner/top
    'pinned/move-box-into-sub': fs(),
    'pinned/move-inner-up': fs(),
    'pinned/link-top-up': fs(),
  },
  proc: {
    'proc/libc-root': libc(),
    'proc/libc-environ': libc(),
    'proc/raw-dotdot-root': gate(),
    'proc/raw-abs-fd': gate(),
    'proc/guest-link-root': fs(NOENT),
    'proc/guest-link-fd': fs(NOENT),
    'proc/raw-host-walk-syntax': gate(),
  },
  net: {
    'net/sock_accept-fd0': sock(),
    'net/sock_accept-fd1': sock(),
    'net/sock_accept-fd2': sock(),
    'net/sock_accept-fd3': sock(),
    'net/sock_accept-fd4': sock(BADF),
    'net/sock_accept-fd5': sock(BADF),
    'net/sock_recv-stdin': sock(),
    'net/sock_send-stdout': sock(),
    'net/sock_send-preopen': sock(),
    'net/sock_shutdown-preopen': sock(),
  },
};

/** The setup notes (symlinks the guest tried to create, directories, renames): the host refuses every symlink
 * target that is absolute, holds `..` or names nothing. Attempts not listed have no note. */
const NOTES: Readonly<Record<string, RegExp>> = {
  'symlink/guest-abs': /-> \/etc refused errno=76$/,
  'symlink/guest-rel': /-> \.\.\/\.\.\/\.\.\/etc refused errno=76$/,
  'symlink/guest-dotdot': /hop-\S+ -> \.\. refused errno=76$/,
  'symlink/guest-deep': /deep-\S+ -> \.\.\/\.\. refused errno=76$/,
  'symlink/guest-moved-up': /sub\/mv-\S+ -> \.\. refused errno=76; rename to \/data\/mv-\S+ refused errno=44$/,
  'symlink/guest-dot-pair': /^symlink \/data\/s-\S+ -> \. refused errno=76; symlink \/data\/t-\S+ -> s-\S+\/\.\. refused errno=76$/,
  'symlink/guest-pinned-pair': /^symlink \/data\/sp-\S+ -> sub\/pinned created; symlink \/data\/tp-\S+ -> sp-\S+\/\.\. refused errno=76$/,
  'symlink/guest-loop': /created$/,
  'abs-symlink/guest': /-> \/etc\/passwd refused errno=76$/,
  'abs-symlink/guest-data-prefix': /-> \/data\/\.\.\/etc\/passwd refused errno=76$/,
  'proc/guest-link-root': /-> \/proc\/self\/root refused errno=76$/,
  'proc/guest-link-fd': /-> \/proc\/self\/fd refused errno=76$/,
  'pinned/rename-down': /^mkdir \/data\/sub\/deeper-\S+$/,
  'pinned/rename-via-guest-link': /^symlink \/data\/via-\S+ -> sub created$/,
  'pinned/move-sub-down': /^mkdir \/data\/nest-\S+$/,
};

const ATTACKS = Object.keys(EXPECTED);
const FS_SYSCALL = /^wasi:(filesystem|sockets)\//;

let wasm: Uint8Array;
let arena: ReturnType<typeof tempDir>;

interface Run {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly attempts: Attempt[];
  readonly records: CallRecord[];
  readonly refusals: Refusal[];
  /** What changed outside the preopen and in /tmp's pwned files. */
  readonly before: Record<string, string>;
  readonly after: Record<string, string>;
  readonly tmpPwned: string[];
  /** Symlinks anywhere in the arena that the host kernel would follow out of /data (see {@link linksLeadingOut}). */
  readonly leadingOut: string[];
  /** The ones plant() placed on purpose: leadingOut must be exactly these. */
  readonly plantedOut: string[];
}

let runSeq = 0;

/** Run one attack in a fresh arena, in process on the preview1 host. */
async function attack(name: string, mode: 'policy' | 'alone'): Promise<Run & { data: string; root: string; tag: string }> {
  const tag = `${process.pid}-${++runSeq}`;
  const root = join(arena.dir, `${name}-${mode}-${runSeq}`);
  mkdirSync(root);
  const { data } = plant(root, tag);
  const args = ['rogue-c', name, tag];
  const g = mode === 'policy' ? capabilityGate({ args, dirs: [{ hostPath: data, guestPath: '/data' }] }) : { ...allowAllGate(), refusals: [] };
  const before = snapshot(root, data);
  let stdout = '';
  let stderr = '';
  const dec = new TextDecoder();
  const r = await runPreview1(wasm, {
    gate: g.gate,
    args,
    preopens: [{ guestPath: '/data', hostPath: data }],
    stdout: (b) => (stdout += dec.decode(b)),
    stderr: (b) => (stderr += dec.decode(b)),
  });
  const pwned = [`/tmp/pwned-${tag}`, `/tmp/pwned-raw-${tag}`, join(tmpdir(), `pwned-${tag}`)].filter((p) => existsSync(p));
  return {
    exitCode: r.exitCode,
    stdout,
    stderr,
    attempts: parseReport(stdout),
    records: g.records,
    refusals: g.refusals,
    before,
    after: snapshot(root, data),
    tmpPwned: pwned,
    leadingOut: linksLeadingOut(root, data),
    plantedOut: plantedLinksLeadingOut(root, tag),
    data,
    root,
    tag,
  };
}

beforeAll(() => {
  wasm = readFileSync(buildRogue());
  arena = tempDir('forgeone-rogue-');
}, 300_000);

afterAll(() => arena?.cleanup());

describe('rogue-c on the preview1 host under the compiled capability policy (RingRecorder)', () => {
  for (const name of ATTACKS) {
    it(`${name}: every attempt is refused, nothing changes outside /data, the gate recorded each crossing`, async () => {
      const run = await attack(name, 'policy');
      const expected = EXPECTED[name]!;
      // the report: exactly the attempts this test knows, all refused with the expected errno
      expect(run.stderr).toBe('');
      expect(run.attempts.map((a) => a.name)).toEqual(Object.keys(expected));
      for (const a of run.attempts) {
        expect({ name: a.name, outcome: a.outcome, errno: a.errno }).toEqual({ name: a.name, outcome: 'refused', errno: expected[a.name]!.policy });
        const note = NOTES[a.name];
        if (note !== undefined) expect(a.note, a.name).toMatch(note);
        else expect(a.note, a.name).toBe('');
      }
      expect(run.exitCode).toBe(0); // the number of ALLOWED attempts
      expect(run.stdout).toMatch(/# done: 0 allowed\n$/);
      // nothing appeared, changed or vanished outside the preopen, nor in /tmp
      expect(run.after).toEqual(run.before);
      expect(run.tmpPwned).toEqual([]);
      // and no link on the host leads out of it but the ones the test planted there
      expect(run.leadingOut).toEqual(run.plantedOut);

      // the record, attempt by attempt (segment i + 1 holds the calls of attempt i)
      const segs = segments(run.records);
      expect(segs.length).toBe(run.attempts.length + 3); // start-up, one per attempt, the "# done" line, the exit
      expect(segs[0]!.map((r) => r.syscall)).not.toContain('wasi:filesystem/open');
      const refusedRecords = run.records.filter((r) => !r.allowed);
      expect(refusedRecords.length).toBe(run.refusals.length);
      refusedRecords.forEach((r, i) => {
        expect(run.refusals[i]).toMatchObject({ syscall: r.syscall, code: 'POLICY_DENIED' });
        expect(r).toMatchObject({ verdict: 'deny', rule: null, result: -1 });
      });
      run.attempts.forEach((a, i) => {
        const seg = segs[i + 1]!.filter((r) => FS_SYSCALL.test(r.syscall));
        const layer = expected[a.name]!.layer;
        if (layer === 'libc') {
          expect(seg, `${a.name}: refused by wasi-libc, no host call`).toEqual([]);
          return;
        }
        if (layer === 'gate') {
          // the call the policy refused; its canonical path is outside /data (or it named a bad descriptor, or
          // it was a socket call)
          const denied = seg.filter((r) => !r.allowed);
          expect(denied.length, `${a.name}: a refused crossing`).toBeGreaterThan(0);
          const last = denied.at(-1)!;
          expect(last, a.name).toMatchObject({ verdict: 'deny', result: -1 });
          if (last.syscall.startsWith('wasi:filesystem/') && last.args.path !== undefined) expect(last.args.path, a.name).not.toMatch(/^\/data(\/|$)/);
          if (a.name.startsWith('net/')) expect(last.syscall, a.name).toMatch(/^wasi:sockets\/tcp-/);
        } else {
          // the policy allowed the call (lexically inside /data) and the confined filesystem refused it: the
          // record holds the errno the guest got
          expect(seg.every((r) => r.allowed), `${a.name}: nothing denied by the policy`).toBe(true);
          const failed = seg.filter((r) => r.result === a.errno);
          expect(failed.length, `${a.name}: a crossing that failed with errno ${String(a.errno)}`).toBeGreaterThan(0);
          expect(failed.at(-1)!.args.path, a.name).toMatch(/^\/data(\/|$)/);
          expect(failed.at(-1)!.rule, a.name).toMatch(/^granted\/dirs-(read|write)$/);
        }
      });
      // nothing the guest did was allowed and succeeded on a path outside /data
      for (const r of run.records) {
        if (r.allowed && r.result === 0 && r.args.path !== undefined) expect(r.args.path, `${r.syscall} ${r.args.path}`).toMatch(/^\/data(\/|$)/);
      }
    });
  }

  it('write-outside: the victim file outside survives unchanged, no link to it or to /etc/passwd appears inside', async () => {
    const run = await attack('write-outside', 'policy');
    expect(readFileSync(join(run.root, 'victim.txt'), 'utf8')).toBe('victim: must survive\n');
    expect(readFileSync(join(run.root, 'outside', 'keep.txt'), 'utf8')).toBe('keep\n');
    expect(existsSync(join(run.data, 'victim-here'))).toBe(false);
    expect(existsSync(join(run.root, 'outside', `pwned-dangle-${run.tag}`))).toBe(false);
    expect(existsSync(join(run.root, 'outside', `pwned-dangle-rel-${run.tag}`))).toBe(false);
    // its own file stayed where it was created, and nothing named like its copies appeared anywhere
    expect(existsSync(join(run.data, `own-${run.tag}.txt`))).toBe(true);
    for (const n of [`pwned-renamed-${run.tag}`, `pwned-link-${run.tag}`]) expect(existsSync(join(run.root, n)), n).toBe(false);
    // rename and link cross the gate twice: the source (inside, allowed; the detail names the destination),
    // then the destination, which the policy denies: the guest got EACCES, no `allow` of the move is recorded
    for (const [call, to] of [
      ['rename', `pwned-renamed-${run.tag}`],
      ['link', `pwned-link-${run.tag}`],
    ] as const) {
      const recs = run.records.filter((r) => r.syscall === `wasi:filesystem/${call}` && r.args.path !== '/victim.txt');
      expect(recs.map((r) => ({ verdict: r.verdict, allowed: r.allowed, result: r.result, args: r.args })), call).toEqual([
        { verdict: 'allow', allowed: true, result: 0, args: { path: `/data/own-${run.tag}.txt`, detail: `to /${to}` } },
        { verdict: 'deny', allowed: false, result: -1, args: { path: `/${to}` } },
      ]);
    }
    // link-in-victim: the source ../victim.txt is outside, so the call ends at its first crossing
    const victim = run.records.filter((r) => r.syscall === 'wasi:filesystem/link' && r.args.path === '/victim.txt');
    expect(victim).toHaveLength(1);
    expect(victim[0]).toMatchObject({ verdict: 'deny', allowed: false, result: -1 });
  });

  it('symlink: no escaping link can be built, with or without a move; only the harmless links remain', async () => {
    const run = await attack('symlink', 'policy');
    const d = run.data;
    expect(existsSync(join(d, 'stolen-passwd'))).toBe(false);
    // `sub/mv -> ..` was refused on creation (it holds `..`), so there was nothing to rename up
    for (const n of [`mv-${run.tag}`, `sub/mv-${run.tag}`]) expect(existsSync(join(d, n)), n).toBe(false);
    expect(run.attempts.find((a) => a.name === 'symlink/guest-moved-up')).toMatchObject({ outcome: 'refused', errno: NOENT });
    // the pair: `s -> .` (names nothing) and `t -> s/..` were refused; `sp -> sub/pinned` (downward text) was
    // created and lands on /data itself through the host's link, `tp -> sp/..` was refused
    for (const n of [`s-${run.tag}`, `t-${run.tag}`, `tp-${run.tag}`]) expect(existsSync(join(d, n)), n).toBe(false);
    expect(readlinkSync(join(d, `sp-${run.tag}`))).toBe('sub/pinned');
    expect(hostResolve(join(d, `sp-${run.tag}`))).toBe(hostResolve(d));
    // the links the guest made: only downward ones (and its loop)
    expect(
      Object.entries(snapshot(d))
        .filter(([p, v]) => p.includes(run.tag) && v.startsWith('link'))
        .map(([p, v]) => `${p.slice(d.length + 1)} ${v}`),
    ).toEqual([`loop-${run.tag} link -> loop-${run.tag}`, `sp-${run.tag} link -> sub/pinned`]);
    expect(run.leadingOut).toEqual(run.plantedOut);
  });

  it('pinned: the host-placed climbing links and the directories holding them stay where the host put them', async () => {
    const run = await attack('pinned', 'policy');
    const d = run.data;
    expect(readlinkSync(join(d, 'sub', 'pinned'))).toBe('..');
    expect(readlinkSync(join(d, 'box', 'inner', 'top'))).toBe('../..');
    for (const n of [
      `pinned-up-${run.tag}`,
      `pinned-link-${run.tag}`,
      `pinned-dir-${run.tag}`,
      `sub/deeper-${run.tag}/pinned`,
      `pinned-via-${run.tag}`,
      `nest-${run.tag}/sub`,
      `nest-${run.tag}/box`,
      `sub/box-${run.tag}`,
      `inner-${run.tag}`,
      `top-${run.tag}`,
    ]) {
      expect(existsSync(join(d, n)) || readlinkOr(join(d, n)) !== null, n).toBe(false);
    }
    // the tree under /data is what was planted plus the guest's two directories and its link `via -> sub`
    const links = Object.entries(snapshot(d))
      .filter(([, v]) => v.startsWith('link'))
      .map(([p, v]) => `${p.slice(d.length + 1)} ${v}`);
    expect(links).toEqual([
      'abs link -> /etc/passwd',
      'box/inner/top link -> ../..',
      `dangle link -> ${join(run.root, 'outside', `pwned-dangle-${run.tag}`)}`,
      `dangle-rel link -> ../outside/pwned-dangle-rel-${run.tag}`,
      'link link -> /etc',
      `outlink link -> ${join(run.root, 'outside')}`,
      'rel link -> ../secret.txt',
      'sub/pinned link -> ..',
      `via-${run.tag} link -> sub`,
    ]);
    expect(run.leadingOut).toEqual(run.plantedOut);
    // each move crossed the gate twice, both paths inside /data and allowed; the second holds the errno
    const moves = run.records.filter((r) => r.syscall === 'wasi:filesystem/rename' || r.syscall === 'wasi:filesystem/link');
    expect(moves).toHaveLength(2 * 10);
    for (const r of moves) expect(r, r.args.path).toMatchObject({ allowed: true, args: { path: expect.stringMatching(/^\/data(\/|$)/) } });
    // (the first crossing of link-follow names /data itself: sub/pinned followed)
    expect(moves[4]!.args).toEqual({ path: '/data', detail: '/data/sub/pinned' });
    expect(moves.filter((_, i) => i % 2 === 0).every((r) => r.result === 0)).toBe(true);
    expect(moves.filter((_, i) => i % 2 === 1).map((r) => r.result)).toEqual([76, 76, 63, 76, 76, 76, 76, 76, 76, 76]);
  });

  it('the link walk itself: it finds the escaping links the previous rules let a guest leave behind', () => {
    // what the old code allowed (reproduced there): `mv -> ..` renamed up to the preopen's root, `t -> s/..`
    // beside `s -> .`, a hard link of a pinned link next to it, and a link reaching out through pinned
    const root = join(arena.dir, 'walk-self-test');
    mkdirSync(root);
    const { data } = plant(root, 'w');
    const base = plantedLinksLeadingOut(root, 'w');
    expect(linksLeadingOut(root, data)).toEqual(base);
    symlinkSync('..', join(data, 'mv'));
    symlinkSync('.', join(data, 's'));
    symlinkSync('s/..', join(data, 't'));
    linkSync(join(data, 'box', 'inner', 'top'), join(data, 'top-hard'));
    symlinkSync('sub/pinned/..', join(data, 'through'));
    symlinkSync('self', join(data, 'self'));
    symlinkSync('sub', join(data, 'down')); // contained
    expect(linksLeadingOut(root, data)).toEqual(
      [...base, 'data/mv -> ..', 'data/t -> s/..', 'data/top-hard -> ../..', 'data/through -> sub/pinned/..'].sort(),
    );
    expect(hostResolve(join(data, 't'))).toBe(hostResolve(root));
    expect(hostResolve(join(data, 'self'))).toBeNull();
  });
});

/** The target of a symlink, or null when there is none (existsSync follows links, so a dangling one is missed). */
function readlinkOr(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}

describe('rogue-c with an allow-all gate: the confined filesystem alone still contains it', () => {
  for (const name of ATTACKS) {
    it(`${name}: every attempt is refused with the host's own errno`, async () => {
      const run = await attack(name, 'alone');
      const expected = EXPECTED[name]!;
      expect(run.attempts.map((a) => a.name)).toEqual(Object.keys(expected));
      for (const a of run.attempts) {
        expect({ name: a.name, outcome: a.outcome, errno: a.errno }).toEqual({ name: a.name, outcome: 'refused', errno: expected[a.name]!.alone });
      }
      expect(run.exitCode).toBe(0);
      expect(run.after).toEqual(run.before);
      expect(run.tmpPwned).toEqual([]);
      expect(run.leadingOut).toEqual(run.plantedOut);
      // every call was allowed by the gate, so every refusal came from the host itself
      expect(run.records.every((r) => r.allowed)).toBe(true);
    });
  }
});

describe('rogue-c in worker sandboxes (createWasmHost, builtin:wasi-p1)', () => {
  let built: Awaited<ReturnType<typeof buildWorker>>;
  let host: WasmHost;
  let cGuest: Uint8Array;
  let benignRuns = 0;
  const text = (b: Uint8Array): string => new TextDecoder().decode(b);

  beforeAll(async () => {
    built = await buildWorker();
    host = createWasmHost({ poolOptions: { size: 2, maxContainers: 4, workerUrl: built.url } });
    cGuest = readFileSync(buildCGuest());
    await host.pool.ready();
    expect((await benign()).exitCode).toBe(0); // warm: the compiled module is cached from here on
  }, 300_000);

  afterAll(async () => {
    await host?.close();
    built?.cleanup();
  });

  /** plugins/c-guest on a fresh directory of its own (it creates /data/out/sub, so a directory serves once). */
  const benign = (): ReturnType<WasmHost['run']> => {
    const cData = join(arena.dir, `c-guest-data-${++benignRuns}`);
    mkdirSync(join(cData, 'out'), { recursive: true });
    writeFileSync(join(cData, 'input.txt'), 'hello forge\n');
    return host.run({
      module: cGuest,
      capabilities: { args: ['c-guest'], env: { GREETING: 'hi' }, dirs: [{ hostPath: cData, guestPath: '/data' }] },
      limits: { cpuPerCallMs: 5_000 },
    });
  };

  it('all: the same refusals with the same errnos through the sandbox runner (capabilities as the policy)', async () => {
    const root = join(arena.dir, 'sandbox-all');
    mkdirSync(root);
    const tag = `${process.pid}-sandbox`;
    const { data } = plant(root, tag);
    const before = snapshot(root, data);
    const records: CallRecord[] = [];
    const out = await host.run({
      module: wasm,
      capabilities: { args: ['rogue-c', 'all', tag], dirs: [{ hostPath: data, guestPath: '/data' }] },
      onRecords: (block, syscalls) => records.push(...decodeBlock(block, syscalls)),
    });
    const attempts = parseReport(text(out.stdout));
    const expected = Object.assign({}, ...Object.values(EXPECTED)) as Record<string, Expect>;
    expect(attempts.map((a) => a.name)).toEqual(Object.keys(expected));
    for (const a of attempts) {
      expect({ name: a.name, outcome: a.outcome, errno: a.errno }).toEqual({ name: a.name, outcome: 'refused', errno: expected[a.name]!.policy });
    }
    expect(out.exitCode).toBe(0);
    expect(snapshot(root, data)).toEqual(before);
    expect(linksLeadingOut(root, data)).toEqual(plantedLinksLeadingOut(root, tag));
    // the record shipped from the worker: the move out crossed twice and was denied on its destination, and
    // nothing was allowed and succeeded on a path outside /data
    expect(
      records.filter((r) => r.syscall === 'wasi:filesystem/rename' && r.args.path?.includes(`own-${tag}`) === true).map((r) => [r.verdict, r.result]),
    ).toEqual([['allow', 0]]);
    expect(records.find((r) => r.syscall === 'wasi:filesystem/rename' && r.args.path === `/pwned-renamed-${tag}`)).toMatchObject({ verdict: 'deny', result: -1 });
    for (const r of records) {
      if (r.allowed && r.result === 0 && r.args.path !== undefined && r.syscall.startsWith('wasi:filesystem/')) expect(r.args.path).toMatch(/^\/data(\/|$)/);
    }
  });

  it('loop: stopped with SANDBOX_CPU_EXCEEDED within its budget while a benign guest in the same pool completes', async () => {
    const budget = 1_500;
    const chunks: string[] = [];
    const started = performance.now();
    let loopEnded = 0;
    const loop = rejection(
      host.run({ module: wasm, capabilities: { args: ['rogue-c', 'loop'] }, limits: { cpuPerCallMs: budget }, stdio: { stdout: (b) => chunks.push(text(b)) } }),
    ).finally(() => (loopEnded = performance.now()));
    // wait until the loop is spinning, then run a benign guest on the other worker
    const deadline = Date.now() + 10_000;
    while (!chunks.join('').includes('loop: spinning') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(chunks.join('')).toMatch(/^# rogue-c loop: no preopen.*\nloop: spinning\n$/);
    const ok = await benign();
    const benignEnded = performance.now();
    expect(ok.exitCode).toBe(0);
    expect(text(ok.stdout)).toContain('input=hello forge');
    const e = await loop;
    expect(e.code).toBe('SANDBOX_CPU_EXCEEDED');
    expect(e.details).toMatchObject({ budget: 'per-call', limitMs: budget });
    expect(benignEnded).toBeLessThan(loopEnded); // completed while the loop was still spinning
    const elapsed = loopEnded - started;
    expect(elapsed).toBeGreaterThanOrEqual(budget);
    expect(elapsed).toBeLessThan(budget + 30_000); // stopped by the budget, not by the test's timeout (a loaded machine delays the watchdog)
    // the pool replaced the killed worker: the next guest runs
    expect((await benign()).exitCode).toBe(0);
  });

  it('alloc: the guest runs into the memory limit; the host process is fine', async () => {
    const limit = 256 << 20;
    const chunks: string[] = [];
    const settled = await host
      .run({ module: wasm, capabilities: { args: ['rogue-c', 'alloc'] }, limits: { maxMemoryBytes: limit }, stdio: { stdout: (b) => chunks.push(text(b)) } })
      .then(
        (out) => ({ ok: true as const, out }),
        (e: unknown) => ({ ok: false as const, e }),
      );
    const report = chunks.join('');
    const held = [...report.matchAll(/^alloc: holding (\d+) MiB$/gm)].map((m) => Number(m[1]));
    // 64 MiB steps under a 256 MiB limit (the guest's data and stack take some): it got to 128 or 192 MiB
    expect(held.length).toBeGreaterThanOrEqual(2);
    expect(held.at(-1)!).toBeLessThan(limit >> 20);
    expect(report).not.toMatch(/ALLOWED/);
    // Which ending: the limit is written into the module, memory.grow returns -1 past it, wasi-libc's malloc
    // returns NULL (without setting errno) and the guest reports it and exits normally: no trap, so not
    // SANDBOX_MEMORY_EXCEEDED. Its memory stayed under the limit.
    expect(settled.ok, settled.ok ? '' : String(settled.e)).toBe(true);
    if (settled.ok) {
      expect(report).toMatch(new RegExp(`^alloc: refused malloc returned NULL \\(errno=0\\) after ${held.at(-1)!} MiB$`, 'm'));
      expect(settled.out.exitCode).toBe(0);
      expect(settled.out.stats.memoryPages * 65536).toBeLessThanOrEqual(limit);
      expect(settled.out.stats.memoryPages * 65536).toBeGreaterThanOrEqual(held.at(-1)! << 20);
    }
    // the host is fine: the same pool runs the next guest
    expect((await benign()).exitCode).toBe(0);
  });
  it('alloc-abort: a guest that traps after the refused grow ends with SANDBOX_MEMORY_EXCEEDED', async () => {
    const limit = 128 << 20;
    const chunks: string[] = [];
    const e = await rejection(
      host.run({ module: wasm, capabilities: { args: ['rogue-c', 'alloc-abort'] }, limits: { maxMemoryBytes: limit }, stdio: { stdout: (b) => chunks.push(text(b)) } }),
    );
    expect(e.code).toBe('SANDBOX_MEMORY_EXCEEDED');
    // 64 MiB = 1024 pages plus dlmalloc's overhead, refused against the 2048-page limit
    expect(e.details).toMatchObject({ limitPages: limit / 65536 });
    expect((e.details as { requestedPages: number }).requestedPages).toBeGreaterThan(1024);
    expect(chunks.join('')).toMatch(/alloc: refused malloc returned NULL \(errno=0\) after 64 MiB\nalloc: aborting/);
    expect((await benign()).exitCode).toBe(0);
  });
});
