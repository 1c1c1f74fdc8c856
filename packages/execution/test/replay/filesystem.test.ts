// Replay of filesystem calls: a run that used a preopen replays from its records alone, after the directory
// is gone, without opening any host directory; a guest that touches another file, or touches it at another
// point, diverges at the record where it parts.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KNOWN_SYSCALLS, SyscallTable, isForgeError } from '@forgeone/common';
import { afterEach, describe, expect, it } from 'vitest';
import { HostResultError, buildComponentImports, disposeComponentImports, instantiateComponent, transpileComponent, type Descriptor } from '../../src/component/index.js';
import type { CallRecord } from '../../src/gate/index.js';
import { ReplayGate, replayComponent } from '../../src/replay/index.js';
import { allowAllExcept, policyGate, watComponent } from '../component/helpers.js';
import { fsGuest, type FsGuestOptions } from './fs-guest.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'forgeone-fs-replay-'));
  dirs.push(d);
  return d;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** What a call gave the guest: its value, or the error case it returned, or the code it trapped with. */
function attempt(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    if (e instanceof HostResultError) return { err: e.payload };
    if (isForgeError(e)) return { trap: e.code };
    throw e;
  }
}

function preopen(imports: ReturnType<typeof buildComponentImports>): Descriptor {
  const list = (imports['wasi:filesystem/preopens']!['getDirectories'] as () => [Descriptor, string][])();
  return list[0]![0];
}

/**
 * A "guest" written against the descriptor API: opens, positional and stream reads and writes, appends,
 * metadata, a directory, a rename, a symlink read and followed, a hard link, listings, failures (missing
 * file, escape, a denied removal), set-size, sync, set-times, same-object.
 */
function script(root: Descriptor, name = 'a.txt'): unknown[] {
  const out: unknown[] = [];
  out.push(root.getType(), root.getFlags());
  const f = root.openAt({}, name, { create: true, truncate: true }, { read: true, write: true });
  out.push(f.guestPath, f.getType(), f.getFlags());
  out.push(f.write(enc('first line\n'), 0n));
  f.appendViaStream().blockingWriteAndFlush(enc('appended\n'));
  f.writeViaStream(30n).write(enc('at 30'));
  const [bytes, eof] = f.read(100n, 0n);
  out.push(dec(bytes), eof);
  const s = f.readViaStream(6n);
  const streamed: string[] = [];
  for (let r = attempt(() => s.read(8n)); r instanceof Uint8Array; r = attempt(() => s.read(8n))) streamed.push(dec(r));
  out.push(streamed);
  out.push(f.stat(), f.metadataHash());
  root.createDirectoryAt('sub');
  root.renameAt(name, root, 'sub/b.txt');
  root.symlinkAt('sub/b.txt', 'link');
  out.push(root.readlinkAt('link'));
  const viaLink = root.openAt({ symlinkFollow: true }, 'link', {}, { read: true });
  out.push(viaLink.guestPath, dec(viaLink.read(5n, 0n)[0]));
  root.linkAt({}, 'sub/b.txt', root, 'hard.txt');
  out.push(root.statAt({}, 'hard.txt'), root.metadataHashAt({}, 'hard.txt'));
  out.push(attempt(() => root.statAt({}, 'missing.txt')));
  out.push(attempt(() => root.openAt({}, '../outside.txt', {}, { read: true })));
  out.push(attempt(() => root.removeDirectoryAt('sub')));
  out.push(attempt(() => viaLink.write(enc('x'), 0n)));
  out.push(attempt(() => viaLink.writeViaStream(0n)));
  const entries: unknown[] = [];
  const listing = root.readDirectory();
  for (let e = listing.readDirectoryEntry(); e !== undefined; e = listing.readDirectoryEntry()) entries.push(e);
  out.push(entries);
  f.setSize(5n);
  f.syncData();
  f.setTimes({ tag: 'timestamp', val: { seconds: 1_700_000_000n, nanoseconds: 5 } }, { tag: 'no-change' });
  out.push(f.isSameObject(viaLink));
  root.unlinkFileAt('hard.txt');
  out.push(attempt(() => root.statAt({}, 'hard.txt')));
  return out;
}

/** Run the script against a real preopen; return what it saw and the records. */
function recordScript(dir: string): { seen: unknown[]; records: CallRecord[] } {
  const { gate, recorder } = policyGate(allowAllExcept('wasi:filesystem/remove-directory'));
  const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/data', hostPath: dir }] });
  const seen = script(preopen(imports));
  disposeComponentImports(imports);
  return { seen, records: recorder.flush() };
}

describe('replayed filesystem calls', () => {
  it('answer every descriptor method from the record, after the directory is gone, touching no host directory', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'seed.txt'), 'seed');
    const { seen, records } = recordScript(dir);
    expect(records.length).toBeGreaterThan(25);
    // The record holds what a replay needs: the opened descriptor, the metadata, the listing, the link target.
    expect(records.find((r) => r.syscall === 'wasi:filesystem/readdir')?.resultBytes).not.toBeNull();
    expect(records.find((r) => r.syscall === 'wasi:filesystem/readlink')?.resultBytes).toEqual(enc('sub/b.txt'));
    expect(records.find((r) => r.syscall === 'wasi:filesystem/stat' && r.args.path === '/data/hard.txt')?.resultBytes?.length).toBe(64);
    // The open through the symlink crossed the gate on the resolved path, with the lexical one beside it.
    expect(records.find((r) => r.args.detail === '/data/link')).toMatchObject({ syscall: 'wasi:filesystem/open', args: { path: '/data/sub/b.txt' } });
    rmSync(dir, { recursive: true });

    const gate = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const empty = tempDir();
    // A host path that does not exist: the real confined layer would refuse to start; the replay never opens it.
    const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/data', hostPath: join(empty, 'never-there') }] });
    const replayed = script(preopen(imports));
    disposeComponentImports(imports);
    expect(gate.finish()).toBeNull();
    expect(gate.sequence).toBe(records.length);
    expect(replayed).toEqual(seen);
    expect(readdirSync(empty)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('a guest that opens another file diverges at that open, with the paths in the divergence', () => {
    const dir = tempDir();
    const { records } = recordScript(dir);
    const gate = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/data', hostPath: dir }] });
    expect(attempt(() => script(preopen(imports), 'z.txt'))).toEqual({ trap: 'REPLAY_DIVERGED' });
    const open = records.find((r) => r.syscall === 'wasi:filesystem/write' && r.args.path === '/data/a.txt')!;
    expect(gate.divergence).toMatchObject({ seq: open.seq, kind: 'arguments', expected: { args: { path: '/data/a.txt' } }, got: { args: { path: '/data/z.txt' } } });
  });

  it('a guest that reads through the symlink to another file diverges there (the lexical path is checked)', () => {
    const dir = tempDir();
    const { records } = recordScript(dir);
    const link = records.find((r) => r.args.detail === '/data/link')!;
    // The same resolved path, reached through another name: the record's lexical path differs.
    const edited = records.map((r) => (r === link ? { ...r, args: { ...r.args, detail: '/data/other-link' } } : r));
    const gate = new ReplayGate(edited, new SyscallTable(KNOWN_SYSCALLS));
    const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/data', hostPath: dir }] });
    expect(attempt(() => script(preopen(imports)))).toEqual({ trap: 'REPLAY_DIVERGED' });
    expect(gate.divergence).toMatchObject({ seq: link.seq, kind: 'arguments', got: { args: { path: '/data/link' } } });
  });

  it('a record without the bytes a call needs is unanswerable, not invented', () => {
    const dir = tempDir();
    const { records } = recordScript(dir);
    const stat = records.find((r) => r.syscall === 'wasi:filesystem/stat' && r.resultBytes !== null)!;
    const edited = records.map((r) => (r === stat ? { ...r, resultBytes: null } : r));
    const gate = new ReplayGate(edited, new SyscallTable(KNOWN_SYSCALLS));
    const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/data', hostPath: dir }] });
    expect(attempt(() => script(preopen(imports)))).toEqual({ trap: 'REPLAY_DIVERGED' });
    expect(gate.divergence).toMatchObject({ seq: stat.seq, kind: 'unanswerable' });
  });
});

describe('replayComponent of a component that used a preopen', () => {
  async function recordRun(options: FsGuestOptions = {}): Promise<{ records: CallRecord[]; value: unknown; bytes: Uint8Array }> {
    const bytes = await watComponent(fsGuest(options));
    const dir = tempDir();
    writeFileSync(join(dir, 'seed.txt'), 'seed');
    mkdirSync(join(dir, 'empty'));
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/data', hostPath: dir }] });
    const outcome = instantiateComponent(await transpileComponent(bytes), imports).call({ input: '' });
    disposeComponentImports(imports);
    rmSync(dir, { recursive: true });
    expect(outcome.ok).toBe(true);
    return { records: recorder.flush(), value: outcome.ok ? outcome.value : null, bytes };
  }

  it('writes, reads back, lists and stats, then replays identically after the directory was deleted', async () => {
    const { records, value, bytes } = await recordRun();
    expect(value).toBe('hello replay|3|12|6');
    expect(records.map((r) => r.syscall)).toEqual([
      'wasi:filesystem/preopens',
      'wasi:filesystem/write',
      'wasi:filesystem/write',
      'wasi:filesystem/read',
      'wasi:filesystem/readdir',
      // read-directory-entry: three entries, then the end
      'wasi:filesystem/readdir',
      'wasi:filesystem/readdir',
      'wasi:filesystem/readdir',
      'wasi:filesystem/readdir',
      'wasi:filesystem/stat',
    ]);
    const report = await replayComponent({ records, component: bytes, preopens: ['/data'] });
    expect(report.divergence).toBeNull();
    expect(report.identical).toBe(true);
    expect(report.matched).toBe(records.length);
    expect(report.outcome).toEqual({ ok: true, value: 'hello replay|3|12|6' });
  });

  it('a changed guest that opens another file diverges at the open (arguments)', async () => {
    const { records } = await recordRun();
    const report = await replayComponent({ records, component: await watComponent(fsGuest({ file: 'else.txt', statFile: 'note.txt' })), preopens: ['/data'] });
    expect(report.identical).toBe(false);
    expect(report.divergence).toMatchObject({ seq: 1, kind: 'arguments', expected: { syscall: 'wasi:filesystem/write', args: { path: '/data/note.txt' } }, got: { args: { path: '/data/else.txt' } } });
    expect(report.matched).toBe(1);
    expect(report.outcome).toMatchObject({ ok: false, code: 'REPLAY_DIVERGED' });
  });

  it('a changed guest that stats before it reads diverges at the read (syscall)', async () => {
    const { records } = await recordRun();
    const report = await replayComponent({ records, component: await watComponent(fsGuest({ statFirst: true })), preopens: ['/data'] });
    expect(report.divergence).toMatchObject({ seq: 3, kind: 'syscall', expected: { syscall: 'wasi:filesystem/read' }, got: { syscall: 'wasi:filesystem/stat' } });
  });

  it('a replay takes the preopens from the record; given other ones it diverges', async () => {
    const { records, bytes } = await recordRun();
    // The preopens call recorded its answer (the guest paths): nothing needs to be told.
    expect(records.find((r) => r.syscall === 'wasi:filesystem/preopens')?.resultBytes).not.toBeNull();
    const told = await replayComponent({ records, component: bytes });
    expect(told.divergence).toBeNull();
    expect(told.identical).toBe(true);
    const none = await replayComponent({ records, component: bytes, preopens: [] });
    expect(none.divergence).toMatchObject({ seq: 0, kind: 'arguments', expected: { syscall: 'wasi:filesystem/preopens', args: { size: 1 } }, got: { args: { size: 0 } } });
    const elsewhere = await replayComponent({ records, component: bytes, preopens: ['/elsewhere'] });
    // Same count, other guest paths: the recorded answer of the preopens call differs.
    expect(elsewhere.divergence).toMatchObject({ seq: 0, kind: 'result', expected: { syscall: 'wasi:filesystem/preopens' } });
  });
});
