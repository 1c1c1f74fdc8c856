import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isForgeError } from '@forgeone/common';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileStore, type FileStoreOptions, type RecoveryEvent, type Store } from '../src/index.js';
import { crc32, crc32Table } from '../src/crc32.js';

const dirs: string[] = [];
const open: Store[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'forgeone-store-file-'));
  dirs.push(d);
  return d;
}

async function openStore(dir: string, options: Omit<FileStoreOptions, 'dir'> = {}): Promise<Store> {
  const s = await createFileStore({ dir, ...options });
  open.push(s);
  return s;
}

async function closeStore(s: Store): Promise<void> {
  await s.close();
  open.splice(open.indexOf(s), 1);
}

/** Frame start offsets of a store file, read independently of the implementation: [header, record 0, …]. */
function frames(file: string): { starts: number[]; size: number } {
  const b = readFileSync(file);
  const starts: number[] = [];
  let p = 0;
  while (p + 12 <= b.length) {
    const len = b.readUInt32LE(p);
    if (p + 12 + len > b.length) break;
    starts.push(p);
    p += 12 + len;
  }
  return { starts, size: b.length };
}

/** Flip bits of one byte. */
function flip(b: Uint8Array, at: number, mask: number): void {
  b[at] = b[at]! ^ mask;
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const record = (i: number): string => `record-${i}-`.repeat(1 + ((i * 7) % 13));

async function writeLog(dir: string, n: number, name = 'audit'): Promise<string> {
  const s = await openStore(dir);
  const log = await s.log(name);
  for (let i = 0; i < n; i++) await log.append(record(i));
  await closeStore(s);
  return join(dir, 'logs', `${name}.log`);
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    if (isForgeError(e)) return { code: e.code, message: e.message, details: { ...e.details } };
    throw e;
  }
  throw new Error('expected a failure');
}

describe('CRC-32', () => {
  it('matches the standard check value, and the native and table-driven versions agree', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Table(check)).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (data) => crc32(data) === crc32Table(data)));
  });
});

describe('torn tails', () => {
  it('cuts an incomplete last frame and keeps every complete record, reporting the repair', async () => {
    const dir = tempDir();
    const file = await writeLog(dir, 5);
    const { starts, size } = frames(file);
    truncateSync(file, size - 3); // the last record loses its last 3 bytes
    const events: RecoveryEvent[] = [];
    const s = await openStore(dir, { onRecover: (e) => events.push(e) });
    const log = await s.log('audit');
    expect(log.length).toBe(4);
    expect((await log.read()).map((e) => text(e.data))).toEqual([0, 1, 2, 3].map(record));
    expect(events).toEqual([
      expect.objectContaining({ kind: 'log', name: 'audit', file, offset: starts[5], droppedBytes: size - 3 - starts[5]!, reason: expect.stringContaining('incomplete frame') }),
    ]);
    expect(statSync(file).size).toBe(starts[5]);
    // The log goes on where it was cut, and the repaired file reopens cleanly.
    expect(await log.append(record(4))).toEqual({ seq: 4 });
    await closeStore(s);
    const events2: RecoveryEvent[] = [];
    const s2 = await openStore(dir, { onRecover: (e) => events2.push(e) });
    expect((await (await s2.log('audit')).read()).map((e) => text(e.data))).toEqual([0, 1, 2, 3, 4].map(record));
    expect(events2).toEqual([]);
  });

  it.each([
    ['a partial frame header', 3, (file: string) => appendFileSync(file, Buffer.from([5, 0, 0]))],
    ['a frame header with no payload', 3, (file: string) => appendFileSync(file, Buffer.from([10, 0, 0, 0, 0xf5, 0xff, 0xff, 0xff, 1, 2, 3, 4]))],
    ['zeros (a file system that extended the file but never wrote it)', 3, (file: string) => appendFileSync(file, Buffer.alloc(4096))],
    [
      'a last frame whose payload was not all written',
      2,
      (file: string) => {
        const b = readFileSync(file);
        flip(b, b.length - 2, 0xff);
        writeFileSync(file, b);
      },
    ],
  ] as const)('treats %s at the end as a torn tail (%i records kept)', async (_what, kept, damage) => {
    const dir = tempDir();
    const file = await writeLog(dir, 3);
    const { starts, size } = frames(file);
    damage(file);
    const events: RecoveryEvent[] = [];
    const s = await openStore(dir, { onRecover: (e) => events.push(e) });
    const log = await s.log('audit');
    expect(events).toHaveLength(1);
    expect(log.length).toBe(kept);
    expect((await log.read()).map((e) => text(e.data))).toEqual([0, 1, 2].slice(0, kept).map(record));
    expect(statSync(file).size).toBe(kept === 3 ? size : starts[3]);
  });

  it('recovers from a cut at every byte of a file: exactly the complete records survive (property)', async () => {
    const dir = tempDir();
    const file = await writeLog(dir, 6);
    const original = readFileSync(file);
    const { starts } = frames(file);
    const ends = [...starts.slice(2), original.length]; // end of record i = start of record i+1
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: starts[1]!, max: original.length }), async (cut) => {
        writeFileSync(file, original.subarray(0, cut));
        const s = await openStore(dir);
        try {
          const complete = ends.filter((e) => e <= cut).length;
          const log = await s.log('audit');
          expect(log.length).toBe(complete);
          expect((await log.read()).map((e) => text(e.data))).toEqual(Array.from({ length: complete }, (_, i) => record(i)));
        } finally {
          await closeStore(s);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('repairs a key-value file the same way', async () => {
    const dir = tempDir();
    const s = await openStore(dir);
    const kv = await s.kv('state');
    await kv.set('a', new Uint8Array([1]));
    await kv.set('b', new Uint8Array([2]));
    await closeStore(s);
    const file = join(dir, 'kv', 'state.kv');
    truncateSync(file, statSync(file).size - 1);
    const events: RecoveryEvent[] = [];
    const s2 = await openStore(dir, { onRecover: (e) => events.push(e) });
    const kv2 = await s2.kv('state');
    expect(await kv2.list()).toEqual(['a']);
    expect(events).toEqual([expect.objectContaining({ kind: 'kv', name: 'state' })]);
  });
});

describe('corruption', () => {
  it('reports a checksum mismatch in the middle of a log as STATE_CORRUPT with the file and offset', async () => {
    const dir = tempDir();
    const file = await writeLog(dir, 5);
    const { starts } = frames(file);
    const b = readFileSync(file);
    flip(b, starts[2]! + 12 + 3, 0x01); // one bit of record 1's payload
    writeFileSync(file, b);
    const s = await openStore(dir);
    const f = await failure(s.log('audit'));
    expect(f.code).toBe('STATE_CORRUPT');
    expect(f.message).toContain(file);
    expect(f.message).toContain(`offset ${starts[2]}`);
    expect(f.details).toMatchObject({ file, offset: starts[2] });
    expect(statSync(file).size).toBe(b.length); // nothing was cut
  });

  it('reports a damaged length in the middle as corruption, not as a torn tail that would cut the rest', async () => {
    const dir = tempDir();
    const file = await writeLog(dir, 5);
    const { starts } = frames(file);
    const b = readFileSync(file);
    flip(b, starts[3]! + 3, 0x40); // the length of record 2 now points far past the end of the file
    writeFileSync(file, b);
    const s = await openStore(dir);
    const f = await failure(s.log('audit'));
    expect(f.code).toBe('STATE_CORRUPT');
    expect(f.details).toMatchObject({ file, offset: starts[3] });
    expect(statSync(file).size).toBe(b.length);
  });

  it('reports a checksum mismatch in the middle of a key-value file', async () => {
    const dir = tempDir();
    const s = await openStore(dir);
    const kv = await s.kv('state');
    await kv.set('a', new TextEncoder().encode('first value'));
    await kv.set('b', new TextEncoder().encode('second value'));
    await closeStore(s);
    const file = join(dir, 'kv', 'state.kv');
    const { starts } = frames(file);
    const b = readFileSync(file);
    flip(b, starts[1]! + 12 + 5, 0x10);
    writeFileSync(file, b);
    const f = await failure((await openStore(dir)).kv('state'));
    expect(f).toMatchObject({ code: 'STATE_CORRUPT', details: { file, offset: starts[1] } });
  });

  it('detects damage that happens after opening when the records are read', async () => {
    const dir = tempDir();
    const s = await openStore(dir);
    const log = await s.log('audit');
    for (let i = 0; i < 3; i++) await log.append(record(i));
    const file = join(dir, 'logs', 'audit.log');
    const { starts } = frames(file);
    const b = readFileSync(file);
    flip(b, starts[2]! + 12, 0xff);
    writeFileSync(file, b);
    expect((await log.read(0, 1)).map((e) => text(e.data))).toEqual([record(0)]);
    expect(await failure(log.read(1))).toMatchObject({ code: 'STATE_CORRUPT', details: { file, offset: starts[2] } });
  });

  it('refuses a file that is not a store file, or that belongs to another log', async () => {
    const dir = tempDir();
    await writeLog(dir, 2, 'audit');
    writeFileSync(join(dir, 'logs', 'junk.log'), 'this is not a store file at all');
    const s = await openStore(dir);
    expect(await failure(s.log('junk'))).toMatchObject({ code: 'STATE_CORRUPT', details: { offset: 0 } });
    await closeStore(s);
    writeFileSync(join(dir, 'logs', 'copy.log'), readFileSync(join(dir, 'logs', 'audit.log')));
    const s2 = await openStore(dir);
    const f = await failure(s2.log('copy'));
    expect(f.code).toBe('STATE_CORRUPT');
    expect(f.message).toContain('"audit"');
    // A failed open is not cached: the good log still opens, and the bad one fails again.
    expect((await s2.log('audit')).length).toBe(2);
    expect((await failure(s2.log('copy'))).code).toBe('STATE_CORRUPT');
  });
});

describe('file names', () => {
  it('gives names differing in case different files, and hashes names too long to spell out', async () => {
    const dir = tempDir();
    const s = await openStore(dir);
    const long = `T/${'A'.repeat(126)}`;
    await (await s.log(long)).append('long');
    await (await s.log('Audit')).append('upper');
    await (await s.log('audit')).append('lower');
    await closeStore(s);
    const files = readdirSync(join(dir, 'logs')).sort();
    expect(files).toHaveLength(3);
    expect(files).toContain('audit.log');
    expect(files).toContain('_41udit.log');
    expect(files.find((f) => f.startsWith('~'))).toMatch(/^~[0-9a-f]{64}\.log$/);
    const s2 = await openStore(dir);
    expect(text((await (await s2.log(long)).read())[0]!.data)).toBe('long');
  });
});

describe('compaction', () => {
  it('rewrites a namespace that is mostly garbage, keeps its data, and leaves no temporary file', async () => {
    const dir = tempDir();
    const s = await openStore(dir, { compactMinGarbageBytes: 4096 });
    const kv = await s.kv('state');
    const value = (k: number, v: number): Uint8Array => new TextEncoder().encode(`key ${k} version ${v} `.repeat(20));
    for (let v = 0; v < 200; v++) for (let k = 0; k < 5; k++) await kv.set(`k${k}`, value(k, v));
    await kv.set('doomed', value(9, 9));
    await kv.delete('doomed');
    const file = join(dir, 'kv', 'state.kv');
    const live = 5 * (12 + 3 + 2 + value(0, 199).length);
    // 1,000 sets of ~440 bytes were written; without compaction the file would be ~450 KB.
    expect(statSync(file).size).toBeLessThan(live * 2 + 4096 + 1000);
    expect(readdirSync(join(dir, 'kv'))).toEqual(['state.kv']);
    expect(text((await kv.get('k3'))!)).toBe(text(value(3, 199)));
    await kv.set('after', new Uint8Array([1, 2, 3]));
    await closeStore(s);
    const kv2 = await (await openStore(dir)).kv('state');
    expect(await kv2.list()).toEqual(['after', 'k0', 'k1', 'k2', 'k3', 'k4']);
    for (let k = 0; k < 5; k++) expect(await kv2.get(`k${k}`)).toEqual(value(k, 199));
    expect(await kv2.get('after')).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('ignores the temporary file of a compaction that a crash interrupted', async () => {
    const dir = tempDir();
    const s = await openStore(dir);
    await (await s.kv('state')).set('k', new Uint8Array([7]));
    await closeStore(s);
    writeFileSync(join(dir, 'kv', 'state.kv.tmp'), 'half-written compaction');
    const s2 = await openStore(dir);
    expect(await (await s2.kv('state')).get('k')).toEqual(new Uint8Array([7]));
    expect(existsSync(join(dir, 'kv', 'state.kv.tmp'))).toBe(false);
  });
});

describe('the directory lock', () => {
  it('lets one store at a time open a directory: a second open fails with IO_ERROR naming the pid', async () => {
    const dir = tempDir();
    const s = await openStore(dir);
    expect(JSON.parse(readFileSync(join(dir, 'LOCK'), 'utf8'))).toEqual({ pid: process.pid, host: hostname() });
    const f = await failure(createFileStore({ dir }));
    expect(f.code).toBe('IO_ERROR');
    expect(f.message).toContain(`store is locked by pid ${process.pid}`);
    await closeStore(s);
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    await openStore(dir);
  });

  it('takes over a lock whose process is dead', async () => {
    const dir = tempDir();
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(child.stdout);
    writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid: deadPid, host: hostname() }));
    writeFileSync(join(dir, `LOCK.${deadPid}.abcd1234.tmp`), 'left by the dead process');
    const s = await openStore(dir);
    await (await s.log('audit')).append('mine now');
    expect(JSON.parse(readFileSync(join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid);
    expect(readdirSync(dir).filter((n) => n.startsWith('LOCK.'))).toEqual([]);
  });

  it('takes over an unreadable lock, and refuses a lock held on another host', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'LOCK'), '');
    await closeStore(await openStore(dir));
    writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid: 1, host: 'some-other-host' }));
    const f = await failure(createFileStore({ dir }));
    expect(f.code).toBe('IO_ERROR');
    expect(f.message).toContain('store is locked by pid 1 on host some-other-host');
  });
});

describe('options', () => {
  it('rejects bad options with INVALID_ARGUMENT', async () => {
    const dir = tempDir();
    for (const bad of [{}, { dir: '' }, { dir, maxValueBytes: 0 }, { dir, maxRecordBytes: 1.5 }, { dir, maxRecordBytes: 2 ** 31 }, { dir, compactMinGarbageBytes: -1 }]) {
      expect((await failure(createFileStore(bad as FileStoreOptions))).code).toBe('INVALID_ARGUMENT');
    }
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });

  it('applies configured limits', async () => {
    const s = await openStore(tempDir(), { maxRecordBytes: 10, maxValueBytes: 4 });
    expect(s.limits).toEqual({ maxRecordBytes: 10, maxKeyBytes: 1024, maxValueBytes: 4 });
    expect((await failure((await s.log('a')).append('x'.repeat(11)))).code).toBe('LIMIT_EXCEEDED');
    expect((await failure((await s.kv('a')).set('k', new Uint8Array(5)))).code).toBe('LIMIT_EXCEEDED');
  });

  it('fails with IO_ERROR when the directory cannot be created', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'x');
    expect((await failure(createFileStore({ dir: join(dir, 'file', 'store') }))).code).toBe('IO_ERROR');
  });
});
