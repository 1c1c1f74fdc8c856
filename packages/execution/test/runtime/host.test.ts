// The runtime facade: WASI preview1 guests in sandbox workers (builtin:wasi-p1), capabilities intersected
// with a real compiled kernel policy, limits, live stdio, records, the compiled-module cache.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '@forgeone/trust';
import { parseDirGrant } from '../../src/capabilities.js';
import { decodeBlock, type CallRecord, type RawBlock } from '../../src/gate/index.js';
import { createWasmHost, detectWasmKind, type WasmHost } from '../../src/runtime/index.js';
import { tempDir } from '../wasi/helpers.js';
import { buildWorker, rejection, wat } from '../sandbox/helpers.js';
import { BIG_MEMORY, CAT, ECHO_ARGS, GROW, READ_FILE, SPIN, TRAP } from './guests.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let host: WasmHost;
let tmp: ReturnType<typeof tempDir>;
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

beforeAll(async () => {
  built = await buildWorker();
  host = createWasmHost({ poolOptions: { size: 2, maxContainers: 4, workerUrl: built.url } });
  tmp = tempDir('forgeone-runtime-');
  mkdirSync(join(tmp.dir, 'data'));
  writeFileSync(join(tmp.dir, 'data', 'in.txt'), 'granted contents\n');
  writeFileSync(join(tmp.dir, 'secret.txt'), 'do not read\n');
  await host.pool.ready();
});

afterAll(async () => {
  await host?.close();
  built?.cleanup();
  tmp?.cleanup();
});

describe('createWasmHost', () => {
  it('detects core modules and components by their header', async () => {
    expect(detectWasmKind(await wat('(module)'))).toBe('core');
    expect(detectWasmKind(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]))).toBe('component');
    expect(() => detectWasmKind(new Uint8Array([1, 2, 3]))).toThrow(/not a WebAssembly binary/);
    // A component header alone is an empty component: it is prepared, and has no `run` to call.
    const component = new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]);
    const e = await rejection(host.run({ module: component }));
    expect(e.code).toBe('WASM_EXPORT_MISSING');
    expect(e.message).toMatch(/exports nothing/);
  });

  it('runs a preview1 guest with exactly its arguments, streaming stdout live, and returns its exit code', async () => {
    const chunks: string[] = [];
    const blocks: RawBlock[] = [];
    const out = await host.run({
      module: await wat(ECHO_ARGS),
      capabilities: { args: ['echo', 'hello', 'wide world'] },
      stdio: { stdout: (b) => chunks.push(text(b)) },
      onRecords: (b, syscalls) => {
        expect(syscalls.name(0)).toBeTypeOf('string');
        blocks.push(b);
      },
    });
    const records = blocks.flatMap((b) => decodeBlock(b, out.syscalls));
    expect(out.exitCode).toBe(7);
    expect(text(out.stdout)).toBe('echo\nhello\nwide world\n');
    expect(chunks).toEqual(['echo', '\n', 'hello', '\n', 'wide world', '\n']);
    expect(records.map((r) => r.syscall)).toEqual(['wasi:cli/args', 'wasi:cli/args', ...Array<string>(6).fill('wasi:cli/stdout'), 'wasi:cli/exit']);
    expect(records.every((r) => r.allowed)).toBe(true);
    expect(records[0]!.rule).toBe('granted/args');
  });

  it('without the args capability the guest sees its arguments refused (EACCES), deny by default', async () => {
    const out = await host.run({ module: await wat(ECHO_ARGS) });
    expect(out.exitCode).toBe(99);
  });

  it('reads a file from a granted directory; a path outside it is refused', async () => {
    const dirs = [parseDirGrant(`${join(tmp.dir, 'data')}::/data`)];
    const ok = await host.run({ module: await wat(READ_FILE), capabilities: { args: ['read', 'in.txt'], dirs } });
    expect(ok.exitCode).toBe(3);
    expect(text(ok.stdout)).toBe('granted contents\n');

    const outside = await host.run({ module: await wat(READ_FILE), capabilities: { args: ['read', '../secret.txt'], dirs } });
    expect(outside.exitCode).toBe(100 + 2); // EACCES: the gate sees /secret.txt, outside the granted /data/**
    expect(text(outside.stdout)).toBe('');

    const noDirs = await host.run({ module: await wat(READ_FILE), capabilities: { args: ['read', 'in.txt'] } });
    expect(noDirs.exitCode).toBe(100 + 2); // EACCES: no filesystem capability at all
  });

  it('intersects the capabilities with a real compiled kernel policy: the kernel can narrow them', async () => {
    const kernel = parsePolicy(`
apiVersion: forgeone.policy/v1
name: kernel
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: cli, action: allow, syscalls: ["wasi:cli/*", "wasi:filesystem/preopens", "wasi:filesystem/open", "wasi:filesystem/stat"] }
      - { id: no-read, action: deny, syscalls: ["wasi:filesystem/read"] }
`).policy;
    const records: CallRecord[] = [];
    const c: ReturnType<WasmHost['start']> = host.start({
      module: await wat(READ_FILE),
      capabilities: { args: ['read', 'in.txt'], dirs: [parseDirGrant(`${join(tmp.dir, 'data')}::/data`)] },
      policy: { document: kernel, identity: { subject: 'plugin:reader' } },
      onRecords: (b) => records.push(...decodeBlock(b, c!.syscalls)),
    });
    const r = await c.result;
    expect((r.value as { exitCode: number }).exitCode).toBe(100 + 2); // EACCES from the gate
    const read = records.find((x) => x.syscall === 'wasi:filesystem/read');
    expect(read).toMatchObject({ allowed: false, verdict: 'deny', rule: 'base/no-read' });
    const open = records.find((x) => x.syscall === 'wasi:filesystem/open');
    expect(open).toMatchObject({ allowed: true, rule: 'base/cli', args: { path: '/data/in.txt' } });
  });

  it('pulls stdin live from a stream, and takes it whole from bytes', async () => {
    const stream = new PassThrough();
    const chunks: string[] = [];
    const running = host.run({ module: await wat(CAT), stdio: { stdin: stream, stdout: (b) => chunks.push(text(b)) } });
    stream.write('first line\n');
    // The guest echoes the first chunk before the second one exists.
    const end = Date.now() + 5_000;
    while (chunks.join('') !== 'first line\n' && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(chunks.join('')).toBe('first line\n');
    stream.end('second\n');
    const out = await running;
    expect(out.exitCode).toBe(0);
    expect(text(out.stdout)).toBe('first line\nsecond\n');

    const whole = await host.run({ module: await wat(CAT), stdio: { stdin: 'all at once' } });
    expect(text(whole.stdout)).toBe('all at once');
  });

  it('maps a trap to WASM_TRAP naming it, after the output written before it', async () => {
    const chunks: string[] = [];
    const e = await rejection(host.run({ module: await wat(TRAP), stdio: { stdout: (b) => chunks.push(text(b)) } }));
    expect(e.code).toBe('WASM_TRAP');
    expect(e.message).toMatch(/unreachable/);
    expect(chunks).toEqual(['about to trap']);
  });

  it('enforces CPU and memory limits with their codes', async () => {
    const spin = await rejection(host.run({ module: await wat(SPIN), limits: { cpuPerCallMs: 200 } }));
    expect(spin.code).toBe('SANDBOX_CPU_EXCEEDED');
    const grow = await rejection(host.run({ module: await wat(GROW), limits: { maxMemoryBytes: 16 << 20 } }));
    expect(grow.code).toBe('SANDBOX_MEMORY_EXCEEDED');
    expect(grow.details).toMatchObject({ requestedPages: 1000, limitPages: 256 });
    const big = await rejection(host.run({ module: await wat(BIG_MEMORY), limits: { maxMemoryBytes: 16 << 20 } }));
    expect(big.code).toBe('SANDBOX_MEMORY_EXCEEDED');
    // The same module fits a larger limit (a different cache entry).
    expect((await host.run({ module: await wat(BIG_MEMORY), limits: { maxMemoryBytes: 32 << 20 } })).exitCode).toBe(0);
  });

  it('caches compiled modules: a second start reuses the compiled module (cold start() fills the cache)', async () => {
    // A module no earlier test compiled.
    const bytes = await wat(ECHO_ARGS.replace('(memory (export "memory") 1)', '(memory (export "memory") 1) (data (i32.const 900) "cache-test")'));
    const before = host.cache.stats;
    const c = host.start({ module: bytes, capabilities: { args: ['a'] } });
    expect(((await c.result).value as { exitCode: number }).exitCode).toBe(7);
    // Give the background compile a moment, then start again: a hit.
    await new Promise((r) => setTimeout(r, 50));
    const c2 = host.start({ module: bytes, capabilities: { args: ['b'] } });
    const r2 = await c2.result;
    expect(text(r2.stdout)).toBe('b\n');
    expect(host.cache.stats.misses).toBe(before.misses + 1);
    expect(host.cache.stats.hits).toBeGreaterThan(before.hits);
  });
});
