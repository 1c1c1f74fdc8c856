// The group-commit writer, with a fake file handle: how many syncs concurrent work costs, and what happens
// when a write or a sync fails.
import type { FileHandle } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { GroupWriter, type Job } from '../src/file.js';

interface Fake {
  fh: FileHandle;
  writes: number[];
  syncs: number;
}

function fakeFile(fail: { write?: number; sync?: number } = {}): Fake {
  const fake: Fake = { fh: undefined as unknown as FileHandle, writes: [], syncs: 0 };
  fake.fh = {
    write: async (data: Uint8Array, offset: number, length: number) => {
      await new Promise((r) => setTimeout(r, 1));
      if (fake.writes.length === fail.write) throw new Error('ENOSPC: no space left on device');
      fake.writes.push(length);
      return { bytesWritten: length, buffer: data.subarray(offset) };
    },
    datasync: async () => {
      if (fake.syncs === fail.sync) throw new Error('EIO: i/o error');
      fake.syncs++;
    },
  } as unknown as FileHandle;
  return fake;
}

function submit(w: GroupWriter, payload: Uint8Array[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const job: Job = { prepare: () => payload, done: resolve, fail: reject };
    w.submit(job);
  });
}

describe('group commit', () => {
  it('lets concurrent jobs share writes and syncs, in submission order, at consecutive offsets', async () => {
    const f = fakeFile();
    const w = new GroupWriter(f.fh, 100, 'fake.log');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => submit(w, [new Uint8Array(i % 3)])));
    // The first job is written alone (nothing else was queued yet); the other 49 share the next write.
    expect(f.syncs).toBe(2);
    let rest = 0;
    for (let i = 1; i < 50; i++) rest += 12 + (i % 3);
    expect(f.writes).toEqual([12, rest]);
    let at = 100;
    results.forEach(([offset], i) => {
      expect(offset).toBe(at);
      at += 12 + (i % 3);
    });
    expect(w.end).toBe(at);
  });

  it('writes nothing for a group with no payloads', async () => {
    const f = fakeFile();
    const w = new GroupWriter(f.fh, 0, 'fake.log');
    expect(await submit(w, [])).toEqual([]);
    expect(f.syncs).toBe(0);
  });

  it.each([
    ['write', { write: 1 }],
    ['sync', { sync: 1 }],
  ] as const)('after a failed %s, fails that group, everything queued and everything later with IO_ERROR', async (_what, fail) => {
    const f = fakeFile(fail);
    const w = new GroupWriter(f.fh, 0, 'fake.log');
    const first = submit(w, [new Uint8Array(1)]);
    const failing = [submit(w, [new Uint8Array(2)]), submit(w, [new Uint8Array(3)])];
    expect(await first).toEqual([0]);
    for (const p of failing) await expect(p).rejects.toMatchObject({ code: 'IO_ERROR', details: { file: 'fake.log' } });
    await expect(submit(w, [new Uint8Array(4)])).rejects.toMatchObject({ code: 'IO_ERROR', message: expect.stringContaining('until the store is reopened') });
    expect(w.end).toBe(13);
    await w.idle();
  });
});
