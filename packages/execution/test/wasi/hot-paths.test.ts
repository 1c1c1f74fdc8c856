// The hot paths of the preview1 host (fd_write to stdout, clock_time_get): the zero-copy output stream,
// the memory views kept across calls (refreshed when the guest grows its memory, also for shared memory),
// and the per-function exception shield (a failing sink is EIO, never a host exception).
import { describe, expect, it } from 'vitest';
import { CONTROL_IN_CALL } from '../../src/gate/index.js';
import { Errno } from '../../src/fs/index.js';
import { createPreview1Host, type Preview1OutputStream } from '../../src/wasi/index.js';
import { allowAllGate } from './helpers.js';

const PAGE = 65536;

/** A guest exporting fd_write and clock_time_get wrappers plus memory.grow, with the given memory type. */
function growGuest(memory: string): string {
  return `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "clock_time_get" (func $c (param i32 i64 i32) (result i32)))
    (memory (export "memory") ${memory})
    (func (export "write") (param i32 i32 i32 i32) (result i32) (call $w (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
    (func (export "clock") (param i32 i32) (result i32) (call $c (local.get 0) (i64.const 1) (local.get 1)))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`;
}

interface GrowGuest {
  write(fd: number, iovs: number, n: number, out: number): number;
  clock(id: number, out: number): number;
  grow(pages: number): number;
  memory: WebAssembly.Memory;
}

async function instantiate(memory: string, options: Parameters<typeof createPreview1Host>[0], features: Record<string, boolean> = {}): Promise<GrowGuest> {
  const wabt = await (await import('wabt')).default();
  const bytes = wabt.parseWat('grow.wat', growGuest(memory), features).toBinary({}).buffer;
  const host = createPreview1Host(options);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), host.imports as unknown as WebAssembly.Imports);
  host.bind(instance);
  return instance.exports as unknown as GrowGuest;
}

function iov(memory: WebAssembly.Memory, at: number, ptr: number, len: number): void {
  const dv = new DataView(memory.buffer);
  dv.setUint32(at, ptr, true);
  dv.setUint32(at + 4, len, true);
}

describe('zero-copy output stream (Preview1OutputStream)', () => {
  it('sees the bytes in place in guest memory, one call per iovec, without a copy', async () => {
    const seen: { same: boolean; offset: number; text: string }[] = [];
    const guest: { memory?: WebAssembly.Memory } = {};
    const stream: Preview1OutputStream = {
      write(memory, offset, length) {
        seen.push({ same: memory.buffer === guest.memory!.buffer, offset, text: Buffer.from(memory.subarray(offset, offset + length)).toString() });
      },
    };
    const { gate, records } = allowAllGate();
    const g = await instantiate('1', { gate, stdout: stream });
    guest.memory = g.memory;
    const mem = new Uint8Array(g.memory.buffer);
    mem.set(Buffer.from('abc'), 100);
    mem.set(Buffer.from('defg'), 200);
    iov(g.memory, 0, 100, 3);
    iov(g.memory, 8, 200, 4);
    expect(g.write(1, 0, 2, 16)).toBe(0);
    expect(new DataView(g.memory.buffer).getUint32(16, true)).toBe(7);
    expect(seen).toEqual([
      { same: true, offset: 100, text: 'abc' },
      { same: true, offset: 200, text: 'defg' },
    ]);
    expect(records.at(-1)).toMatchObject({ syscall: 'wasi:cli/stdout', result: 0, args: { size: 7 } });
  });

  it('maxOutputBytes cuts the stream too (the cut falls inside the second iovec), then ENOSPC', async () => {
    const out: string[] = [];
    const stream: Preview1OutputStream = { write: (m, o, l) => void out.push(Buffer.from(m.subarray(o, o + l)).toString()) };
    const { gate } = allowAllGate();
    const g = await instantiate('1', { gate, stderr: stream, maxOutputBytes: 5 });
    const mem = new Uint8Array(g.memory.buffer);
    mem.set(Buffer.from('abc'), 100);
    mem.set(Buffer.from('defg'), 200);
    iov(g.memory, 0, 100, 3);
    iov(g.memory, 8, 200, 4);
    expect(g.write(2, 0, 2, 16)).toBe(0);
    expect(new DataView(g.memory.buffer).getUint32(16, true)).toBe(5);
    expect(out).toEqual(['abc', 'de']);
    expect(g.write(2, 0, 2, 16)).toBe(Errno.NOSPC);
  });

  it('a function sink still gets a fresh copy it may keep (the guest overwriting its buffer does not change it)', async () => {
    const kept: Uint8Array[] = [];
    const { gate } = allowAllGate();
    const g = await instantiate('1', { gate, stdout: (b) => kept.push(b) });
    const mem = new Uint8Array(g.memory.buffer);
    mem.set(Buffer.from('first'), 100);
    iov(g.memory, 0, 100, 5);
    expect(g.write(1, 0, 1, 16)).toBe(0);
    mem.set(Buffer.from('XXXXX'), 100);
    expect(Buffer.from(kept[0]!).toString()).toBe('first');
    expect(kept[0]!.buffer).not.toBe(g.memory.buffer);
  });
});

describe('memory views across memory.grow', () => {
  it('a pointer into a page the guest grew is usable at once (was EFAULT before the grow)', async () => {
    const out: string[] = [];
    const { gate } = allowAllGate();
    const g = await instantiate('1', { gate, stdout: (b) => out.push(Buffer.from(b).toString()) });
    iov(g.memory, 0, PAGE + 8, 5);
    expect(g.write(1, 0, 1, 16)).toBe(Errno.FAULT); // the buffer lies past the end of memory
    expect(g.clock(0, PAGE + 64)).toBe(Errno.FAULT);
    expect(g.grow(1)).toBe(1);
    new Uint8Array(g.memory.buffer).set(Buffer.from('grown'), PAGE + 8);
    expect(g.write(1, 0, 1, PAGE + 16)).toBe(0);
    expect(new DataView(g.memory.buffer).getUint32(PAGE + 16, true)).toBe(5);
    expect(out).toEqual(['grown']);
    expect(g.clock(0, PAGE + 64)).toBe(0);
    const ms = Number(new DataView(g.memory.buffer).getBigUint64(PAGE + 64, true)) / 1e6;
    expect(Math.abs(ms - Date.now())).toBeLessThan(1000);
  });

  it('shared memory (whose buffer is replaced, not detached, on grow) is followed too', async () => {
    const out: string[] = [];
    const { gate } = allowAllGate();
    const g = await instantiate('1 4 shared', { gate, stdout: (b) => out.push(Buffer.from(b).toString()) }, { threads: true });
    expect(g.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    iov(g.memory, 0, 8, 2);
    new Uint8Array(g.memory.buffer).set(Buffer.from('ok'), 8);
    expect(g.write(1, 0, 1, 16)).toBe(0); // the host's view is now of the 1-page buffer
    iov(g.memory, 0, 2 * PAGE + 8, 5);
    expect(g.write(1, 0, 1, 16)).toBe(Errno.FAULT);
    expect(g.grow(2)).toBe(1);
    new Uint8Array(g.memory.buffer).set(Buffer.from('grown'), 2 * PAGE + 8);
    expect(g.write(1, 0, 1, 2 * PAGE + 16)).toBe(0);
    expect(out).toEqual(['ok', 'grown']);
  });
});

describe('the exception shield of the hot functions', () => {
  it('a sink that throws makes the write EIO; the gate call is closed and the next call works', async () => {
    let fail = true;
    const out: string[] = [];
    const { gate, records } = allowAllGate();
    const g = await instantiate('1', {
      gate,
      stdout: (b) => {
        if (fail) throw new Error('sink broke');
        out.push(Buffer.from(b).toString());
      },
    });
    new Uint8Array(g.memory.buffer).set(Buffer.from('hi'), 100);
    iov(g.memory, 0, 100, 2);
    expect(g.write(1, 0, 1, 16)).toBe(Errno.IO);
    expect(gate.control[CONTROL_IN_CALL]).toBe(-1);
    expect(records.at(-1)).toMatchObject({ syscall: 'wasi:cli/stdout', result: Errno.IO });
    fail = false;
    expect(g.write(1, 0, 1, 16)).toBe(0);
    expect(out).toEqual(['hi']);
  });
});
