// The `builtin:component` runner in real sandbox workers: componentized guests, the kernel's policy laid
// over the capabilities, host services over the bridge, records to the kernel, CPU and memory limits.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isForgeError } from '@forgeone/common';
import { parsePolicy } from '@forgeone/trust';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentBridgeHandlers, prepareComponentModules, type ContainerKv, type PreparedComponentModules, type RunOutcome } from '../../src/component/index.js';
import { decodeBlock, type CallRecord, type RawBlock } from '../../src/gate/index.js';
import { DEFAULT_LIMITS, createSandboxPool, type SandboxPolicy, type SandboxPool, type SandboxSpec, type SandboxedContainer } from '../../src/sandbox/index.js';
import { ALL_FEATURES, allowAllExcept, buildGuest } from './helpers.js';

const here = fileURLToPath(new URL('.', import.meta.url));
let outDir: string;
let pool: SandboxPool;
let hog: Uint8Array;
let cacheDir: string;
let compiled: PreparedComponentModules;

/** Bundle the worker entry (committed built-ins + builtin:component) with tsup, as test/sandbox does. */
async function buildWorker(): Promise<URL> {
  outDir = join(here, '.build', `${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(outDir, { recursive: true });
  const { build } = await import('tsup');
  await build({
    entry: { worker: join(here, 'fixtures/worker-entry.ts') },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    dts: false,
    sourcemap: false,
    clean: false,
    splitting: false,
    silent: true,
    config: false,
    external: ['@forgeone/common', '@forgeone/trust', '@bytecodealliance/jco'],
  });
  return pathToFileURL(join(outDir, 'worker.js'));
}

beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'forgeone-runner-'));
  const [url, bytes] = await Promise.all([buildWorker(), buildGuest('hog.js', { disable: ALL_FEATURES })]);
  hog = bytes;
  // Transpile once here (the workers then load the bindings from the disk cache), and compile the core
  // modules with the default memory limit for the tests that do not exercise compilation in the worker.
  compiled = await prepareComponentModules(hog, { maxMemoryBytes: DEFAULT_LIMITS.maxMemoryBytes, cacheDir });
  pool = createSandboxPool({ size: 2, maxContainers: 6, workerUrl: url, limits: { cpuPerCallMs: 20_000 } });
  await pool.ready();
}, 300_000);

afterAll(async () => {
  await pool?.close();
  if (outDir !== undefined) rmSync(outDir, { recursive: true, force: true });
  if (cacheDir !== undefined) rmSync(cacheDir, { recursive: true, force: true });
});

function kernelPolicy(yaml: string): SandboxPolicy {
  return { document: parsePolicy(yaml).policy, identity: { subject: 'plugin:hog' } };
}

function memoryKv(): ContainerKv & { map: Map<string, Uint8Array> } {
  const map = new Map<string, Uint8Array>();
  return {
    map,
    get: (k) => Promise.resolve(map.get(k)),
    set: (k, v) => Promise.resolve(void map.set(k, v.slice())),
    delete: (k) => Promise.resolve(map.delete(k)),
    list: (p = '') => Promise.resolve([...map.keys()].filter((k) => k.startsWith(p)).sort()),
  };
}

function start(spec: Omit<SandboxSpec, 'runner' | 'onRecords'>): { c: SandboxedContainer; records: CallRecord[] } {
  const records: CallRecord[] = [];
  const c: SandboxedContainer = pool.start({ runner: 'builtin:component', ...spec, onRecords: (b: RawBlock) => records.push(...decodeBlock(b, c.syscalls)) });
  return { c, records };
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (!isForgeError(e)) throw new Error(`rejected with a non-ForgeError: ${String(e)}`);
    return { code: e.code, message: e.message };
  }
  throw new Error('expected a rejection');
}

describe('builtin:component in a sandbox worker', () => {
  it('runs run(input): the log line crosses the bridge, the records reach the kernel', async () => {
    const logs: string[] = [];
    const { c, records } = start({
      data: { bytes: hog, cacheDir, input: 'echo hi there', capabilities: { log: true } },
      policy: kernelPolicy(allowAllExcept()),
      handlers: componentBridgeHandlers({ log: (level, message) => logs.push(`${level} ${message}`) }),
    });
    const r = await c.result;
    expect(r.value).toEqual({ ok: true, value: 'hi there' } satisfies RunOutcome);
    expect(logs).toEqual(['info echo hi there']);
    expect(records.map((x) => [x.syscall, x.verdict, x.allowed, x.rule])).toEqual([['forgeone:log/write', 'allow', true, 'base/allow-all']]);
    expect(r.stats.memoryPages).toBeGreaterThan(0);
  });

  it('serves repeated calls on one instance; kv goes through the bridge to the kernel namespace', async () => {
    const kv = memoryKv();
    const { c, records } = start({ data: { bytes: hog, cacheDir, compiled, serve: true, capabilities: { kv: true } }, policy: kernelPolicy(allowAllExcept()), handlers: componentBridgeHandlers({ kv }) });
    await c.serving;
    expect(await c.call('run', 'count')).toEqual({ ok: true, value: '1' });
    expect(await c.call('run', 'count')).toEqual({ ok: true, value: '2' });
    expect(await c.call('run', 'count')).toEqual({ ok: true, value: '3' });
    expect(new TextDecoder().decode(kv.map.get('n'))).toBe('3');
    expect(records.map((x) => x.syscall)).toEqual(['forgeone:kv/get', 'forgeone:kv/set', 'forgeone:kv/get', 'forgeone:kv/set', 'forgeone:kv/get', 'forgeone:kv/set']);
    expect(records[4]).toMatchObject({ args: { detail: 'n', path: '/n' }, allowed: true });
    expect(new TextDecoder().decode(records[4]!.resultBytes!.subarray(1))).toBe('2');
    await c.close();
  });

  it('a call is allowed only when both the capabilities and the kernel policy allow it', async () => {
    const kv = memoryKv();
    // Capabilities grant kv, the kernel denies it.
    const denied = start({ data: { bytes: hog, cacheDir, compiled, input: 'count', capabilities: { kv: true } }, policy: kernelPolicy(allowAllExcept('forgeone:kv/*')), handlers: componentBridgeHandlers({ kv }) });
    // The kernel allows everything, the capabilities do not grant kv.
    const ungranted = start({ data: { bytes: hog, cacheDir, compiled, input: 'count', capabilities: { log: true } }, policy: kernelPolicy(allowAllExcept()), handlers: componentBridgeHandlers({ kv }) });
    const [d, u] = await Promise.all([denied.c.result, ungranted.c.result]);
    expect(d.value).toEqual({ ok: true, value: 'host-error POLICY_DENIED' });
    expect(u.value).toEqual({ ok: true, value: 'host-error POLICY_DENIED' });
    expect(denied.records.map((x) => [x.syscall, x.verdict, x.rule, x.result])).toEqual([['forgeone:kv/get', 'deny', 'base/no', -1]]);
    expect(ungranted.records.map((x) => [x.syscall, x.verdict, x.result])).toEqual([['forgeone:kv/get', 'deny', -1]]);
    expect(kv.map.size).toBe(0);
  });

  it('a guest spinning forever is killed with SANDBOX_CPU_EXCEEDED', async () => {
    const { c } = start({ data: { bytes: hog, cacheDir, compiled, input: 'spin' }, policy: kernelPolicy(allowAllExcept()), limits: { cpuPerCallMs: 400 } });
    const e = await failure(c.result);
    expect(e.code).toBe('SANDBOX_CPU_EXCEEDED');
  });

  it('a guest allocating without end is capped with SANDBOX_MEMORY_EXCEEDED, even when it catches its out-of-memory error', async () => {
    const { c } = start({ data: { bytes: hog, cacheDir, input: 'alloc', capabilities: { log: true } }, policy: kernelPolicy(allowAllExcept()), limits: { maxMemoryBytes: 48 << 20 } });
    const e = await failure(c.result);
    expect(e.code).toBe('SANDBOX_MEMORY_EXCEEDED');
    expect(e.message).toMatch(/refused; the limit is 768 pages/);
    // With onMemoryExceeded: 'continue' the guest's own answer stands.
    const lenient = start({ data: { bytes: hog, cacheDir, input: 'alloc', onMemoryExceeded: 'continue' }, policy: kernelPolicy(allowAllExcept()), limits: { maxMemoryBytes: 48 << 20 } });
    const r = await lenient.c.result;
    expect(r.value).toMatchObject({ ok: true, value: expect.stringMatching(/^stopped after (16|32) MiB$/) });
    expect(r.stats.memoryPages).toBeLessThanOrEqual(768);
  });

  it('runs core modules compiled by the kernel, and refuses ones limited above the container', async () => {
    const compiled = await prepareComponentModules(hog, { maxMemoryBytes: 64 << 20, cacheDir });
    expect(compiled.limitPages).toBe(1024);
    expect([...compiled.modules.keys()].sort()).toEqual(['component.core.wasm', 'component.core2.wasm', 'component.core3.wasm']);
    const logs: string[] = [];
    const ok = start({
      data: { bytes: hog, cacheDir, compiled, input: 'echo pre', capabilities: { log: true } },
      policy: kernelPolicy(allowAllExcept()),
      limits: { maxMemoryBytes: 64 << 20 },
      handlers: componentBridgeHandlers({ log: (_l, m) => logs.push(m) }),
    });
    const over = start({ data: { bytes: hog, cacheDir, compiled, input: 'echo pre' }, policy: kernelPolicy(allowAllExcept()), limits: { maxMemoryBytes: 32 << 20 } });
    expect((await ok.c.result).value).toEqual({ ok: true, value: 'pre' });
    expect(logs).toEqual(['echo pre']);
    expect((await failure(over.c.result)).code).toBe('INVALID_ARGUMENT');
  });

  it('bad component bytes fail the container with WASM_INVALID; a missing export with WASM_EXPORT_MISSING', async () => {
    const corrupt = hog.slice(0, 4096);
    const bad = start({ data: { bytes: corrupt, cacheDir, input: '' } });
    const missing = start({ data: { bytes: hog, cacheDir, compiled, export: 'nope', input: '' } });
    const [b, m] = await Promise.all([failure(bad.c.result), failure(missing.c.result)]);
    expect(['WASM_INVALID', 'WASM_TRANSPILE_FAILED']).toContain(b.code);
    expect(m.code).toBe('WASM_EXPORT_MISSING');
  });
});
