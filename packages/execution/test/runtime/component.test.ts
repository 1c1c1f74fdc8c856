// createWasmHost runs components on builtin:component: a componentized JS guest (test/fixtures/components/
// plugin.js, componentize-js 0.17, built once and cached by hash in the OS temp dir) prepared in the kernel,
// run in real sandbox workers under a real compiled kernel policy intersected with its capabilities, kv and
// fetch answered by the kernel, log lines on stderr, records back, limits, the prepared-component cache.
import { createServer, type Server } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '@forgeone/trust';
import { parseNetGrant } from '../../src/capabilities.js';
import type { ContainerKv } from '../../src/component/index.js';
import { decodeBlock, type CallRecord } from '../../src/gate/index.js';
import { createWasmHost, type WasmHost, type WasmRunSpec } from '../../src/runtime/index.js';
import { tempDir } from '../wasi/helpers.js';
import { buildWorker, rejection } from '../sandbox/helpers.js';
import { allowAllExcept, buildGuest, watComponent } from '../component/helpers.js';

let built: Awaited<ReturnType<typeof buildWorker>>;
let host: WasmHost;
let plugin: Uint8Array;
let cache: ReturnType<typeof tempDir>;
let server: Server;
let port: number;
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

beforeAll(async () => {
  cache = tempDir('forgeone-runtime-components-');
  [built, plugin] = await Promise.all([buildWorker(), buildGuest('plugin.js')]);
  host = createWasmHost({ poolOptions: { size: 2, maxContainers: 4, workerUrl: built.url, limits: { cpuPerCallMs: 20_000 } }, cacheDir: cache.dir });
  server = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`served ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
  await host.pool.ready();
}, 300_000);

afterAll(async () => {
  await host?.close();
  await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
  built?.cleanup();
  cache?.cleanup();
});

/** Run with the records collected and decoded. */
async function run(spec: Omit<WasmRunSpec, 'module' | 'onRecords'>): Promise<{ out: Awaited<ReturnType<WasmHost['run']>>; records: CallRecord[] }> {
  const records: CallRecord[] = [];
  const out = await host.run({ module: plugin, ...spec, onRecords: (b, syscalls) => records.push(...decodeBlock(b, syscalls)) });
  return { out, records };
}

/** The records of forgeone:host calls. */
const host_ = (records: readonly CallRecord[]): CallRecord[] => records.filter((r) => r.syscall.startsWith('forgeone:'));

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

describe('createWasmHost with components', () => {
  it('calls run(input) on builtin:component: the ok value, exit 0, log lines on stderr, records in order', async () => {
    const stderr: string[] = [];
    const { out, records } = await run({ component: { input: 'hello wide world' }, capabilities: { log: true }, stdio: { stderr: (b) => stderr.push(text(b)) } });
    expect(out.kind).toBe('component');
    expect(out.result).toEqual({ ok: true, value: 'hi wide world' });
    expect(out.exitCode).toBe(0);
    expect(out.logs).toEqual(['[info] hello wide world']);
    expect(stderr.join('')).toBe('[info] hello wide world\n');
    // The guest's runtime starts with a few WASI calls (random seed, clocks); the host calls follow.
    expect(records.map((r) => r.seq)).toEqual([...records.keys()]);
    expect(host_(records).map((r) => [r.syscall, r.verdict, r.allowed, r.rule])).toEqual([['forgeone:log/write', 'allow', true, 'granted/log']]);
    // Logging is granted unless the capabilities turn it off; then the call is refused and the guest sees the code.
    const bare = await run({ component: { input: 'hello x' }, capabilities: { log: false } });
    expect(bare.out.result).toEqual({ ok: true, value: expect.stringMatching(/^host-error POLICY_DENIED/) as unknown as string });
    expect(host_(bare.records).map((r) => [r.syscall, r.allowed])).toEqual([['forgeone:log/write', false]]);
  });

  it("an error result exits 1 with the guest's error; the guest's own stdout and stderr stream live", async () => {
    const failed = await run({ component: { input: 'fail it broke' } });
    expect(failed.out.result).toEqual({ ok: false, error: 'it broke' });
    expect(failed.out.exitCode).toBe(1);
    const stdout: string[] = [];
    const { out, records } = await run({ component: { input: 'console there' }, capabilities: { stdio: true }, stdio: { stdout: (b) => stdout.push(text(b)) } });
    expect(out.result).toEqual({ ok: true, value: 'logged' });
    expect(stdout.join('')).toBe('out there\n');
    expect(text(out.stdout)).toBe('out there\n');
    expect(text(out.stderr)).toBe('err there\n');
    expect(records.filter((r) => r.syscall.startsWith('wasi:cli/std')).every((r) => r.allowed)).toBe(true);
  });

  it('kv: a fresh in-memory namespace per run by default, the spec’s own when given; the kernel policy narrows the capabilities', async () => {
    const first = await run({ component: { input: 'kv-set k v1' }, capabilities: { kv: true } });
    expect(first.out.result).toEqual({ ok: true, value: 'ok' });
    expect((await run({ component: { input: 'kv-get k' }, capabilities: { kv: true } })).out.result).toEqual({ ok: true, value: '<none>' });
    const kv = memoryKv();
    await run({ component: { input: 'kv-set k v2', kv }, capabilities: { kv: true } });
    expect((await run({ component: { input: 'kv-get k', kv }, capabilities: { kv: true } })).out.result).toEqual({ ok: true, value: 'v2' });
    // A real compiled kernel policy denying kv wins over the capability.
    const kernel = { document: parsePolicy(allowAllExcept('forgeone:kv/*')).policy, identity: { subject: 'plugin:runtime-test' } };
    const denied = await run({ component: { input: 'kv-get k', kv }, capabilities: { kv: true }, policy: kernel });
    expect(denied.out.result).toEqual({ ok: true, value: expect.stringMatching(/^host-error POLICY_DENIED/) as unknown as string });
    expect(host_(denied.records).map((r) => [r.syscall, r.verdict, r.rule])).toEqual([['forgeone:kv/get', 'deny', 'base/no']]);
  });

  it('fetch: refused without a net grant, performed by the kernel with one', async () => {
    const url = `http://127.0.0.1:${port}/x`;
    const refused = await run({ component: { input: `fetch ${url}` } });
    expect(refused.out.result).toEqual({ ok: true, value: expect.stringMatching(/^host-error POLICY_DENIED/) as unknown as string });
    expect(host_(refused.records).map((r) => [r.syscall, r.allowed, r.args.host, r.args.port])).toEqual([['forgeone:http/fetch', false, '127.0.0.1', port]]);
    const granted = await run({ component: { input: `fetch ${url}` }, capabilities: { net: [parseNetGrant(`127.0.0.1:${port}`)] } });
    expect(granted.out.result).toEqual({ ok: true, value: '200 served /x' });
    expect(host_(granted.records).map((r) => [r.syscall, r.allowed])).toEqual([['forgeone:http/fetch', true]]);
  });

  it('prepares each component once per memory limit; a warm start() posts the compiled modules', async () => {
    const before = host.componentCache.stats;
    await run({ component: { input: 'hello a' } });
    expect(host.componentCache.stats.misses).toBe(before.misses);
    expect(host.componentCache.stats.hits).toBe(before.hits + 1);
    const c = host.start({ module: plugin, component: { input: 'hello b' }, capabilities: { log: true } });
    expect(host.componentCache.stats.hits).toBe(before.hits + 2);
    expect((await c.result).value).toEqual({ ok: true, value: 'hi b' });
    // A streamed stdin is read whole by run() (the guest imports wasi:cli/stdin); start() wants bytes.
    const stdin = new PassThrough();
    stdin.end('ignored');
    expect((await run({ component: { input: 'hello c' }, stdio: { stdin } })).out.exitCode).toBe(0);
    expect(() => host.start({ module: plugin, stdio: { stdin: new PassThrough() } })).toThrow(/takes its stdin whole/);
  });

  it('refuses a missing export before taking a worker; runs a WASI command component (wasi:cli/run) by default', async () => {
    const missing = await rejection(host.run({ module: plugin, component: { export: 'nope' } }));
    expect(missing.code).toBe('WASM_EXPORT_MISSING');
    expect(missing.message).toMatch(/does not export a function "nope" \(it exports run\)/);
    const command = await watComponent(`(component
      (core module $m (func (export "run") (result i32) i32.const 0))
      (core instance $i (instantiate $m))
      (func $run (result (result)) (canon lift (core func $i "run")))
      (instance $inst (export "run" (func $run)))
      (export "wasi:cli/run@0.2.0" (instance $inst)))`);
    const cli = await rejection(host.run({ module: command, component: { export: 'run' } }));
    expect(cli.code).toBe('WASM_EXPORT_MISSING');
    expect(cli.message).toMatch(/WASI command \(it exports wasi:cli\/run\) without a world-level `run` function/);
    expect(host.pool.active).toBe(0);
    // Without an export named, a command component runs: run() returned ok, so the exit code is 0.
    const ran = await host.run({ module: command });
    expect(ran.exitCode).toBe(0);
    expect(ran.result).toEqual({ ok: true, value: '', exitCode: 0 });
  });

  it('a trap in run() is WASM_TRAP naming it', async () => {
    // A hand-written component whose run(input: string) -> result<string, string> traps at once.
    const trapper = await watComponent(`(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 64)
    (func (export "run") (param i32 i32) (result i32) unreachable))
  (core instance $i (instantiate $m))
  (func (export "run") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "run") (memory $i "mem") (realloc (func $i "realloc")))))`);
    const e = await rejection(host.run({ module: trapper, component: { input: 'x' } }));
    expect(e.code).toBe('WASM_TRAP');
    expect(e.message).toMatch(/unreachable/);
  });

  it('memory limits: a component whose memory cannot fit is refused with SANDBOX_MEMORY_EXCEEDED', async () => {
    const e = await rejection(host.run({ module: plugin, limits: { maxMemoryBytes: 1 << 20 } }));
    expect(e.code).toBe('SANDBOX_MEMORY_EXCEEDED');
  });
});
