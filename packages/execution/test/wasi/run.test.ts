// runPreview1: command modules (_start), proc_exit → exit code, traps → WASM_TRAP, link and export errors.
import { describe, expect, it } from 'vitest';
import { isForgeError } from '@forgeone/common';
import { runPreview1 } from '../../src/wasi/index.js';
import { allowAllGate, policyGate, wat } from './helpers.js';

const HELLO = `
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello from wat\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 42))
    unreachable))
`;

async function expectForgeError(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isForgeError(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    if (message !== undefined) expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected ForgeError ${code}`);
}

describe('runPreview1', () => {
  it('runs _start, collects stdout, maps proc_exit to the exit code', async () => {
    let out = '';
    const { gate, records } = allowAllGate();
    const r = await runPreview1(await wat(HELLO), { gate, stdout: (b) => (out += Buffer.from(b).toString()) });
    expect(r.exitCode).toBe(42);
    expect(out).toBe('hello from wat\n');
    expect(records.map((c) => c.syscall)).toEqual(['wasi:cli/stdout', 'wasi:cli/exit']);
    expect(records[1]!.args.detail).toBe('code=42');
  });

  it('a _start that returns exits 0; a compiled module is accepted too', async () => {
    const mod = await WebAssembly.compile((await wat('(module (memory (export "memory") 1) (func (export "_start")))')) as Uint8Array<ArrayBuffer>);
    expect(await runPreview1(mod, { gate: allowAllGate().gate })).toEqual({ exitCode: 0 });
  });

  it('exit codes are u32 (proc_exit(-1) is 4294967295)', async () => {
    const bytes = await wat(`(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
      (memory (export "memory") 1) (func (export "_start") (call $e (i32.const -1))))`);
    expect((await runPreview1(bytes, { gate: allowAllGate().gate })).exitCode).toBe(4294967295);
  });

  it('a refused proc_exit still ends the guest (recorded as refused)', async () => {
    const { gate, records } = policyGate(`
apiVersion: forgeone.policy/v1
name: none
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules: []
`);
    const bytes = await wat(`(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
      (memory (export "memory") 1) (func (export "_start") (call $e (i32.const 3)) unreachable))`);
    expect((await runPreview1(bytes, { gate })).exitCode).toBe(3);
    expect(records[0]!.allowed).toBe(false);
  });

  it('traps become WASM_TRAP naming the trap', async () => {
    const gate = allowAllGate().gate;
    await expectForgeError(runPreview1(await wat('(module (memory (export "memory") 1) (func (export "_start") unreachable))'), { gate }), 'WASM_TRAP', /unreachable/);
    await expectForgeError(
      runPreview1(await wat('(module (memory (export "memory") 1) (func (export "_start") (drop (i32.load (i32.const 70000)))))'), { gate }),
      'WASM_TRAP',
      /out of bounds/,
    );
    await expectForgeError(
      runPreview1(await wat('(module (memory (export "memory") 1) (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.const 0)))))'), { gate }),
      'WASM_TRAP',
      /divide by zero/,
    );
    await expectForgeError(
      runPreview1(await wat('(module (memory (export "memory") 1) (func $f (export "_start") (call $f)))'), { gate }),
      'WASM_TRAP',
      /stack overflow/,
    );
  });

  it('a module without _start is WASM_EXPORT_MISSING', async () => {
    await expectForgeError(runPreview1(await wat('(module (memory (export "memory") 1) (func (export "main")))'), { gate: allowAllGate().gate }), 'WASM_EXPORT_MISSING', /_start/);
  });

  it('imports the host does not supply are WASM_LINK_ERROR naming them', async () => {
    const bytes = await wat(`(module
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_teleport" (func (param i32) (result i32)))
      (import "env" "evil" (func))
      (memory (export "memory") 1) (func (export "_start")))`);
    await expectForgeError(runPreview1(bytes, { gate: allowAllGate().gate }), 'WASM_LINK_ERROR', /wasi_snapshot_preview1\.path_teleport.*env\.evil/);
  });

  it('an import declared with the wrong signature gets a result when called, never a host exception', async () => {
    // Node cannot reflect import types before instantiation, and JS functions link to any signature.
    const bytes = await wat(`(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i64) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
      (memory (export "memory") 1) (func (export "_start") (call $e (call $w (i64.const 1)))))`);
    const r = await runPreview1(bytes, { gate: allowAllGate().gate });
    expect(r.exitCode).toBeLessThanOrEqual(76); // success or an errno, passed on to proc_exit
  });

  it('bytes that are not WebAssembly are WASM_INVALID', async () => {
    await expectForgeError(runPreview1(new Uint8Array([0, 1, 2, 3]), { gate: allowAllGate().gate }), 'WASM_INVALID');
  });

  it('a host failure (a throwing sink) is EIO to the guest, never a host crash', async () => {
    const bytes = await wat(`(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 3))
        (call $e (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
    const { gate, records } = allowAllGate();
    const r = await runPreview1(bytes, {
      gate,
      stdout: () => {
        throw new Error('sink broke');
      },
    });
    expect(r.exitCode).toBe(29); // EIO, returned by fd_write and passed to proc_exit
    expect(records[0]!.result).toBe(29);
  });
});
