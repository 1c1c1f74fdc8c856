import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HostResultError,
  buildComponentImports,
  disposeComponentImports,
  type ComponentImports,
  type Descriptor,
  type InputStream,
  type OutputStream,
} from '../../src/component/index.js';
import { policyGate } from './helpers.js';

// wasi:filesystem over the confined filesystem layer, behind a real compiled policy: /data is readable,
// /data/out is writable, /data/secret is denied.
const POLICY = `
apiVersion: forgeone.policy/v1
name: fs-test
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: preopens, action: allow, syscalls: ["wasi:filesystem/preopens"] }
      - id: read-data
        action: allow
        syscalls: ["wasi:filesystem/open", "wasi:filesystem/read", "wasi:filesystem/stat", "wasi:filesystem/readdir"]
        args: { path: { match: ["/data/**"] } }
      - id: write-out
        action: allow
        syscalls: ["wasi:filesystem/write", "wasi:filesystem/create-directory", "wasi:filesystem/remove-file"]
        args: { path: { match: ["/data/out/**"] } }
      - id: secret
        action: deny
        syscalls: ["wasi:filesystem/*"]
        args: { path: { match: ["/data/secret/**"] } }
`;

let host: string;
let outside: string;

beforeAll(async () => {
  host = await mkdtemp(join(tmpdir(), 'forgeone-cfs-'));
  outside = await mkdtemp(join(tmpdir(), 'forgeone-outside-'));
  await writeFile(join(host, 'hello.txt'), 'hello, file');
  await mkdir(join(host, 'out'));
  await mkdir(join(host, 'secret'));
  await writeFile(join(host, 'secret', 'key'), 'k');
  await writeFile(join(outside, 'passwd'), 'root:x');
  await symlink(join(outside, 'passwd'), join(host, 'escape'));
  await symlink('secret/key', join(host, 'innocent'));
});

afterAll(async () => {
  await rm(host, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

function err(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    if (e instanceof HostResultError) return e.payload;
    throw e;
  }
  throw new Error('expected an error case');
}

type Dir = Descriptor;

function setup(): { imports: ComponentImports; root: Dir; flush: () => { syscall: string; path?: string; detail?: string; verdict: string; result: number }[] } {
  const { gate, recorder } = policyGate(POLICY);
  const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/data', hostPath: host }] });
  const dirs = (imports['wasi:filesystem/preopens']!['getDirectories'] as () => [Dir, string][])();
  expect(dirs.map(([, p]) => p)).toEqual(['/data']);
  const flush = () => recorder.flush().map((r) => ({ syscall: r.syscall, ...r.args, verdict: r.verdict, result: r.result }));
  flush();
  return { imports, root: dirs[0]![0], flush };
}

const dec = new TextDecoder();

describe('wasi:filesystem over the confined layer', () => {
  it('opens and reads a file, through a stream and directly; reads are recorded with their bytes', () => {
    const { root, flush, imports } = setup();
    expect(root.getType()).toBe('directory');
    const f = root.openAt({}, 'hello.txt', {}, { read: true });
    expect(f.guestPath).toBe('/data/hello.txt');
    const [bytes, eof] = f.read(100n, 0n);
    expect(dec.decode(bytes)).toBe('hello, file');
    expect(eof).toBe(true);
    const s: InputStream = f.readViaStream(7n);
    expect(dec.decode(s.read(100n))).toBe('file');
    expect(err(() => s.read(100n))).toEqual({ tag: 'closed' });
    expect(f.stat()).toMatchObject({ type: 'regular-file', size: 11n });
    expect(flush()).toEqual([
      { syscall: 'wasi:filesystem/stat', path: '/data', verdict: 'allow', result: 0 },
      { syscall: 'wasi:filesystem/open', path: '/data/hello.txt', verdict: 'allow', result: 0 },
      { syscall: 'wasi:filesystem/read', path: '/data/hello.txt', size: 100, verdict: 'allow', result: 0 },
      // Handing out the stream crosses the gate too (detail = the function).
      { syscall: 'wasi:filesystem/read', path: '/data/hello.txt', detail: 'read-via-stream', verdict: 'allow', result: 0 },
      { syscall: 'wasi:filesystem/read', path: '/data/hello.txt', size: 100, verdict: 'allow', result: 0 },
      { syscall: 'wasi:filesystem/read', path: '/data/hello.txt', size: 100, verdict: 'allow', result: 1 },
      { syscall: 'wasi:filesystem/stat', path: '/data/hello.txt', verdict: 'allow', result: 0 },
    ]);
    disposeComponentImports(imports);
  });

  it('writes only where the policy allows; a read-only open cannot write', async () => {
    const { root, flush } = setup();
    const out = root.openAt({}, 'out/new.txt', { create: true }, { read: true, write: true });
    const w: OutputStream = out.writeViaStream(0n);
    w.blockingWriteAndFlush(new TextEncoder().encode('written'));
    expect(await readFile(join(host, 'out', 'new.txt'), 'utf8')).toBe('written');
    expect(err(() => root.openAt({}, 'hello.txt', {}, { read: true }).write(new Uint8Array([1]), 0n))).toBe('access');
    // The policy decides first (as for write): refused there, the stream is `access`; allowed, a descriptor
    // opened read-only is `read-only`.
    expect(err(() => root.openAt({}, 'hello.txt', {}, { read: true }).writeViaStream(0n))).toBe('access');
    expect(err(() => root.openAt({}, 'out/new.txt', {}, { read: true }).writeViaStream(0n))).toBe('read-only');
    root.createDirectoryAt('out/sub');
    expect(err(() => root.createDirectoryAt('made-here'))).toBe('access');
    const records = flush();
    expect(records.find((r) => r.syscall === 'wasi:filesystem/write' && r.path === '/data/out/new.txt')).toMatchObject({ verdict: 'allow', result: 0 });
    expect(records.find((r) => r.syscall === 'wasi:filesystem/write' && r.path === '/data/hello.txt')).toMatchObject({ verdict: 'deny', result: -1 });
    expect(records.find((r) => r.syscall === 'wasi:filesystem/create-directory' && r.path === '/data/made-here')).toMatchObject({ verdict: 'deny' });
  });

  it('refuses escapes: .. above the preopen, a symlink out of it, and a symlink into a denied directory', () => {
    const { root, flush } = setup();
    expect(err(() => root.openAt({}, '../etc/passwd', {}, { read: true }))).toBe('access');
    expect(['access', 'not-permitted']).toContain(err(() => root.openAt({ symlinkFollow: true }, 'escape', {}, { read: true })));
    // The lexical path /data/innocent is allowed; the resolved path /data/secret/key is what the gate decides.
    expect(err(() => root.openAt({ symlinkFollow: true }, 'innocent', {}, { read: true }))).toBe('access');
    expect(err(() => root.openAt({}, 'secret/key', {}, { read: true }))).toBe('access');
    const records = flush();
    expect(records[0]).toMatchObject({ syscall: 'wasi:filesystem/open', path: '/etc/passwd', verdict: 'deny' });
    expect(records.find((r) => r.path === '/data/secret/key' && r.detail === '/data/innocent')).toMatchObject({ verdict: 'deny' });
  });

  it('lists a directory without . and .., and reports missing files as no-entry', () => {
    const { root, flush } = setup();
    const entries: { type: string; name: string }[] = [];
    const stream = root.readDirectory() as unknown as { readDirectoryEntry(): { type: string; name: string } | undefined };
    for (let e = stream.readDirectoryEntry(); e !== undefined; e = stream.readDirectoryEntry()) entries.push(e);
    expect(entries.map((e) => e.name).sort()).toEqual(['escape', 'hello.txt', 'innocent', 'out', 'secret']);
    expect(entries.find((e) => e.name === 'hello.txt')!.type).toBe('regular-file');
    expect(err(() => root.statAt({}, 'nope.txt'))).toBe('no-entry');
    expect(flush().at(-1)).toMatchObject({ syscall: 'wasi:filesystem/stat', path: '/data/nope.txt', verdict: 'allow' });
  });

  it('after dispose the host descriptors are closed', () => {
    const { root, imports } = setup();
    disposeComponentImports(imports);
    expect(err(() => root.openAt({}, 'hello.txt', {}, { read: true }))).toBe('bad-descriptor');
  });

  it('without preopens the guest gets no directory at all', () => {
    const { gate } = policyGate(POLICY);
    const imports = buildComponentImports({ gate });
    expect((imports['wasi:filesystem/preopens']!['getDirectories'] as () => unknown[])()).toEqual([]);
  });
});
