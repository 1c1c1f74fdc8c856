import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForgeError } from '@forgeone/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ComponentCache,
  buildComponentImports,
  createMemoryServices,
  instantiateComponent,
  runComponent,
  transpileComponent,
  type LoadedComponent,
} from '../../src/component/index.js';
import type { Gate } from '../../src/gate/index.js';
import { ALL_FEATURES, allowAllExcept, buildGuest, policyGate } from './helpers.js';

// The `plugin` world guest componentized with every WASI feature of the engine disabled: it imports only
// forgeone:host interfaces.
let bytes: Uint8Array;
let loaded: LoadedComponent;
let cacheDir: string;

beforeAll(async () => {
  bytes = await buildGuest('plugin.js', { disable: ALL_FEATURES });
  cacheDir = await mkdtemp(join(tmpdir(), 'forgeone-plugin-'));
  loaded = await transpileComponent(bytes, { cacheDir });
}, 300_000);

afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

const dec = new TextDecoder();

describe('a plugin-world guest (no WASI features)', () => {
  it('imports exactly the forgeone:host interfaces it uses', () => {
    // componentize-js 0.17 with disableFeatures [stdio, random, clocks, http]: no WASI import at all.
    expect([...loaded.imports].sort()).toEqual([
      'forgeone:host/http',
      'forgeone:host/identity',
      'forgeone:host/info',
      'forgeone:host/kv',
      'forgeone:host/log',
      'forgeone:host/time',
    ]);
    expect(loaded.exports).toEqual([['run', 'function']]);
  });

  it('a second load of the same bytes does not transpile again', async () => {
    const cache = new ComponentCache();
    await transpileComponent(bytes, { cache, cacheDir });
    await transpileComponent(bytes, { cache, cacheDir });
    expect(cache.stats).toMatchObject({ transpiles: 0, diskHits: 1, memoryHits: 1 });
  });

  it('hello: logs through forgeone:host/log and returns its output; the gate records the call', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices();
    const out = runComponent(loaded, buildComponentImports({ gate, services }), { input: 'hello world' });
    expect(out).toEqual({ ok: true, value: 'hi world' });
    expect(services.logs).toEqual([{ level: 'info', message: 'hello world' }]);
    const records = recorder.flush();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ syscall: 'forgeone:log/write', args: { detail: 'info', size: 11 }, verdict: 'allow', allowed: true, result: 0 });
  });

  it('kv: set, get, list and delete go through the services and record what cannot be recomputed', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices({ kv: [['seed', new TextEncoder().encode('planted')]] });
    const instance = instantiateComponent(loaded, buildComponentImports({ gate, services }));
    const call = (input: string): unknown => instance.call({ input });
    expect(call('kv-get seed')).toEqual({ ok: true, value: 'planted' });
    expect(call('kv-set colour blue green')).toEqual({ ok: true, value: 'ok' });
    expect(dec.decode(services.kv.get('colour'))).toBe('blue green');
    expect(call('kv-get colour')).toEqual({ ok: true, value: 'blue green' });
    expect(call('kv-get missing')).toEqual({ ok: true, value: '<none>' });
    expect(call('kv-list co')).toEqual({ ok: true, value: 'colour' });
    expect(call('kv-del colour')).toEqual({ ok: true, value: 'true' });
    expect(call('kv-del colour')).toEqual({ ok: true, value: 'false' });
    const r = recorder.flush();
    expect(r.map((x) => x.syscall)).toEqual(['forgeone:kv/get', 'forgeone:kv/set', 'forgeone:kv/get', 'forgeone:kv/get', 'forgeone:kv/list', 'forgeone:kv/delete', 'forgeone:kv/delete']);
    expect(r[0]!.args).toEqual({ detail: 'seed', path: '/seed' });
    expect(dec.decode(r[0]!.resultBytes!.subarray(1))).toBe('planted');
    expect(r[0]!.resultBytes![0]).toBe(1);
    expect(r[1]!.args).toEqual({ detail: 'colour', path: '/colour', size: 10 });
    expect([...r[3]!.resultBytes!]).toEqual([0]);
    expect(JSON.parse(dec.decode(r[4]!.resultBytes!))).toEqual(['colour']);
    expect([...r[5]!.resultBytes!]).toEqual([1]);
  });

  it('a call the compiled policy denies returns host-error POLICY_DENIED and is recorded as denied', () => {
    const { gate, recorder } = policyGate(allowAllExcept('forgeone:kv/*'));
    const services = createMemoryServices({ kv: [['k', new Uint8Array([1])]] });
    const instance = instantiateComponent(loaded, buildComponentImports({ gate, services }));
    const got = instance.call({ input: 'kv-get k' });
    expect(got.ok).toBe(true);
    expect(got.ok && got.value).toMatch(/^host-error POLICY_DENIED forgeone:kv\/get refused by the policy \(rule base\/no\)/);
    expect(instance.call({ input: 'kv-set k v' })).toMatchObject({ value: expect.stringMatching(/^host-error POLICY_DENIED/) });
    expect(services.kv.get('k')).toEqual(new Uint8Array([1]));
    // Logging is still allowed: the instance keeps working after refusals.
    expect(instance.call({ input: 'hello again' })).toEqual({ ok: true, value: 'hi again' });
    const r = recorder.flush();
    expect(r.map((x) => [x.syscall, x.verdict, x.allowed, x.rule, x.result])).toEqual([
      ['forgeone:kv/get', 'deny', false, 'base/no', -1],
      ['forgeone:kv/set', 'deny', false, 'base/no', -1],
      ['forgeone:log/write', 'allow', true, 'base/allow-all', 0],
    ]);
    expect(gate.denied).toBe(2);
  });

  it('kv keys shaped like escapes carry no path: a path-scoped policy denies them, and they never reach the store', () => {
    const scoped = `
apiVersion: forgeone.policy/v1
name: kv-scoped
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: kv, action: allow, syscalls: ["forgeone:kv/*"], args: { path: { match: ["/**"] } } }
`;
    const services = createMemoryServices({ kv: [['etc/passwd', new Uint8Array([7])]] });
    const { gate, recorder } = policyGate(scoped);
    const instance = instantiateComponent(loaded, buildComponentImports({ gate, services }));
    for (const key of ['/etc/passwd', '../../etc/passwd', 'a//b', 'a/./b']) {
      expect(instance.call({ input: `kv-get ${key}` })).toMatchObject({ value: expect.stringMatching(/^host-error POLICY_DENIED/) });
    }
    expect(instance.call({ input: 'kv-list ..' })).toMatchObject({ value: expect.stringMatching(/^host-error POLICY_DENIED/) });
    expect(instance.call({ input: 'kv-get etc/passwd' })).toEqual({ ok: true, value: '\u0007' });
    expect(instance.call({ input: 'kv-list etc/' })).toEqual({ ok: true, value: 'etc/passwd' });
    const r = recorder.flush();
    expect(r.map((x) => [x.verdict, x.args.path])).toEqual([
      ['deny', undefined],
      ['deny', undefined],
      ['deny', undefined],
      ['deny', undefined],
      ['deny', undefined],
      ['allow', '/etc/passwd'],
      ['allow', '/etc'],
    ]);
    // Under a policy that allows every kv call, such keys are still refused (after the gate, recorded).
    const open = policyGate(allowAllExcept());
    const free = instantiateComponent(loaded, buildComponentImports({ gate: open.gate, services }));
    expect(free.call({ input: 'kv-set ../other/owned x' })).toMatchObject({ value: expect.stringMatching(/^host-error INVALID_ARGUMENT .* is not a key/) });
    expect(services.kv.has('../other/owned')).toBe(false);
    expect(open.recorder.flush().map((x) => [x.verdict, x.result])).toEqual([['allow', 1]]);
  });

  it('malformed attempts cross the gate too: they are on record, then fail with their own code', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices();
    const instance = instantiateComponent(loaded, buildComponentImports({ gate, services, maxKeyBytes: 8, maxValueBytes: 4, maxLogBytes: 8 }));
    expect(instance.call({ input: 'kv-get a-key-too-long' })).toMatchObject({ value: expect.stringMatching(/^host-error INVALID_ARGUMENT a key may hold at most 8 bytes/) });
    expect(instance.call({ input: 'kv-set k too-big' })).toMatchObject({ value: expect.stringMatching(/^host-error LIMIT_EXCEEDED a value may hold at most 4 bytes/) });
    expect(instance.call({ input: 'fetch not a url' })).toMatchObject({ value: expect.stringMatching(/^host-error INVALID_ARGUMENT not a URL/) });
    expect(instance.call({ input: 'hello long message' })).toMatchObject({ value: expect.stringMatching(/^host-error LIMIT_EXCEEDED a log message may hold at most 8 bytes/) });
    expect(services.kv.size).toBe(0);
    expect(services.logs).toEqual([]);
    expect(recorder.flush().map((x) => [x.syscall, x.verdict, x.result, x.args])).toEqual([
      ['forgeone:kv/get', 'allow', 1, {}],
      ['forgeone:kv/set', 'allow', 1, { path: '/k', detail: 'k', size: 7 }],
      ['forgeone:http/fetch', 'allow', 1, { detail: 'GET ', size: 0 }],
      ['forgeone:log/write', 'allow', 1, { detail: 'info', size: 18 }],
    ]);
  });

  it('a failing service returns its ForgeError code in host-error', () => {
    const { gate } = policyGate(allowAllExcept());
    const services = createMemoryServices();
    const imports = buildComponentImports({ gate, services: { ...services, kvGet: () => { throw new ForgeError('STATE_CORRUPT', 'store is broken'); } } });
    expect(runComponent(loaded, imports, { input: 'kv-get a' })).toEqual({ ok: true, value: 'host-error STATE_CORRUPT store is broken' });
  });

  it('time, identity and info answer from the options; without identity the call fails with NOT_FOUND', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({
      gate,
      clocks: { wallNs: () => 1_700_000_000_123_456_789n },
      identity: { subject: 'plugin:hello', tenant: 'acme', roles: ['reader'], trustLevel: 'Verified' },
      info: { containerId: 'c-1', packageName: 'hello', packageVersion: '1.0.0', kernelVersion: '0.1.0' },
    });
    const instance = instantiateComponent(loaded, imports);
    expect(instance.call({ input: 'time' })).toEqual({ ok: true, value: '1700000000123' });
    expect(JSON.parse((instance.call({ input: 'identity' }) as { value: string }).value)).toEqual({ subject: 'plugin:hello', tenant: 'acme', roles: ['reader'], trustLevel: 'Verified' });
    expect(JSON.parse((instance.call({ input: 'info' }) as { value: string }).value)).toEqual({ containerId: 'c-1', packageName: 'hello', packageVersion: '1.0.0', kernelVersion: '0.1.0' });
    const r = recorder.flush();
    expect(r[0]).toMatchObject({ syscall: 'forgeone:time/now', allowed: true });
    expect(new DataView(r[0]!.resultBytes!.buffer, r[0]!.resultBytes!.byteOffset).getBigUint64(0, true)).toBe(1_700_000_000_123n);
    const bare = runComponent(loaded, buildComponentImports({ gate }), { input: 'identity' });
    expect(bare).toMatchObject({ ok: true, value: expect.stringMatching(/^host-error NOT_FOUND/) });
  });

  it('fetch: the gate sees the canonical host and port; the memory services refuse; a handler answers', () => {
    const yaml = `
apiVersion: forgeone.policy/v1
name: fetch-test
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - id: example
        action: allow
        syscalls: ["forgeone:http/fetch"]
        args: { host: { in: ["example.com"] }, port: { in: [443] } }
`;
    const { gate, recorder } = policyGate(yaml);
    const none = instantiateComponent(loaded, buildComponentImports({ gate, services: createMemoryServices() }));
    expect(none.call({ input: 'fetch https://EXAMPLE.com./a' })).toMatchObject({ value: expect.stringMatching(/^host-error POLICY_DENIED these host services have no network/) });
    expect(none.call({ input: 'fetch https://evil.example/' })).toMatchObject({ value: expect.stringMatching(/^host-error POLICY_DENIED forgeone:http\/fetch refused/) });
    // Another scheme crosses the gate without a host: no host-scoped rule allows it.
    expect(none.call({ input: 'fetch ftp://example.com/' })).toMatchObject({ value: expect.stringMatching(/^host-error POLICY_DENIED/) });
    // So does a malformed URL: on record, and denied like any fetch without a host.
    expect(none.call({ input: 'fetch not a url' })).toMatchObject({ value: expect.stringMatching(/^host-error POLICY_DENIED/) });
    const seen: string[] = [];
    const services = createMemoryServices({
      fetch: (req) => {
        seen.push(`${req.method} ${req.url} ${JSON.stringify(req.headers)}`);
        return { status: 200, headers: [['content-type', 'text/plain']], body: new TextEncoder().encode('pong') };
      },
    });
    expect(runComponent(loaded, buildComponentImports({ gate, services }), { input: 'fetch https://example.com/ping' })).toEqual({ ok: true, value: '200 pong' });
    expect(seen).toEqual(['GET https://example.com/ping [["accept","text/plain"]]']);
    const r = recorder.flush();
    expect(r.map((x) => [x.args.host, x.args.port, x.verdict, x.result])).toEqual([
      ['example.com', 443, 'allow', 1],
      ['evil.example', 443, 'deny', -1],
      [undefined, undefined, 'deny', -1],
      [undefined, undefined, 'deny', -1],
      ['example.com', 443, 'allow', 0],
    ]);
    expect(r[2]!.args.detail).toBe('GET ftp');
    expect(r[3]!.args.detail).toBe('GET ');
    expect(dec.decode(r[4]!.resultBytes!)).toContain('pong');
  });

  it('an error thrown by run comes back as { ok: false, error }', () => {
    const { gate } = policyGate(allowAllExcept());
    expect(runComponent(loaded, buildComponentImports({ gate }), { input: 'fail bad input' })).toEqual({ ok: false, error: 'bad input' });
  });

  it('a terminated container: every host call is refused with CONTAINER_TERMINATED', () => {
    const { gate } = policyGate(allowAllExcept());
    terminate(gate);
    const services = createMemoryServices();
    expect(runComponent(loaded, buildComponentImports({ gate, services }), { input: 'hello x' })).toMatchObject({ value: expect.stringMatching(/^host-error CONTAINER_TERMINATED/) });
    expect(services.logs).toEqual([]);
  });
});

function terminate(gate: Gate): void {
  Atomics.store(gate.control, 0, 2);
}
