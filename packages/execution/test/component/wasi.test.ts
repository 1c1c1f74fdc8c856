import { ForgeError, KNOWN_SYSCALLS, SyscallTable, isForgeError } from '@forgeone/common';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildComponentImports,
  createMemoryServices,
  instantiateComponent,
  runComponent,
  transpileComponent,
  type ComponentImports,
  type LoadedComponent,
  type NetBackend,
  type Socket,
} from '../../src/component/index.js';
import { Gate } from '../../src/gate/index.js';
import { allowAllExcept, buildGuest, payload, policyGate, thrown, watComponent } from './helpers.js';

// The same plugin guest, componentized with the engine's WASI features on (stdio, random, clocks, http).
let loaded: LoadedComponent;

beforeAll(async () => {
  loaded = await transpileComponent(await buildGuest('plugin.js', { disable: [] }));
}, 300_000);

const dec = new TextDecoder();

describe('a componentize-js 0.17 guest with WASI features', () => {
  it('imports exactly these interfaces (all linked: wasi:http is a deny interface)', () => {
    expect([...loaded.imports].sort()).toEqual([
      'forgeone:host/http',
      'forgeone:host/identity',
      'forgeone:host/info',
      'forgeone:host/kv',
      'forgeone:host/log',
      'forgeone:host/time',
      'wasi:cli/stderr',
      'wasi:cli/stdin',
      'wasi:cli/stdout',
      'wasi:cli/terminal-input',
      'wasi:cli/terminal-output',
      'wasi:cli/terminal-stderr',
      'wasi:cli/terminal-stdin',
      'wasi:cli/terminal-stdout',
      'wasi:clocks/monotonic-clock',
      'wasi:clocks/wall-clock',
      'wasi:filesystem/preopens',
      'wasi:filesystem/types',
      'wasi:http/outgoing-handler',
      'wasi:http/types',
      'wasi:io/error',
      'wasi:io/poll',
      'wasi:io/streams',
      'wasi:random/random',
    ]);
  });

  it('console.log and console.error reach the sinks, each write gated as wasi:cli/stdout / stderr', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const out: string[] = [];
    const err: string[] = [];
    const imports = buildComponentImports({ gate, stdout: (b) => out.push(dec.decode(b)), stderr: (b) => err.push(dec.decode(b)) });
    expect(runComponent(loaded, imports, { input: 'console hi' })).toEqual({ ok: true, value: 'logged' });
    expect(out.join('')).toBe('out hi\n');
    expect(err.join('')).toBe('err hi\n');
    const r = recorder.flush();
    const writes = r.filter((x) => x.syscall === 'wasi:cli/stdout' || x.syscall === 'wasi:cli/stderr');
    expect(writes.map((x) => [x.syscall, x.allowed])).toContainEqual(['wasi:cli/stdout', true]);
    expect(writes.filter((x) => x.syscall === 'wasi:cli/stdout').reduce((n, x) => n + (x.args.size ?? 0), 0)).toBe(7);
    // The engine looks at the preopens once: the default sandbox hands out none.
    expect(r.find((x) => x.syscall === 'wasi:filesystem/preopens')).toMatchObject({ args: { size: 0 }, allowed: true });
  });

  it('a denied stdout traps where the guest asks for the stream (get-stdout has no error case)', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:cli/stdout'));
    const out: Uint8Array[] = [];
    const imports = buildComponentImports({ gate, stdout: (b) => out.push(b) });
    const e = thrown(() => runComponent(loaded, imports, { input: 'console x' }));
    expect(isForgeError(e) && e.code).toBe('POLICY_DENIED');
    expect(isForgeError(e) && e.details).toMatchObject({ syscall: 'wasi:cli/stdout', rule: 'base/no' });
    expect(out).toEqual([]);
    const stdout = recorder.flush().filter((x) => x.syscall === 'wasi:cli/stdout');
    expect(stdout.map((x) => [x.args.detail, x.verdict, x.allowed, x.result])).toEqual([['get-stdout', 'deny', false, -1]]);
  });

  it('Date.now and Math.random come from the host clock and random source, and their bytes are recorded', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({
      gate,
      clocks: { wallNs: () => 1_234_567_890_123_000_000n },
      random: (into) => into.fill(7),
    });
    const instance = instantiateComponent(loaded, imports);
    expect(instance.call({ input: 'date' })).toEqual({ ok: true, value: '1234567890123' });
    const wall = recorder.flush().filter((x) => x.syscall === 'wasi:clocks/wall-clock');
    expect(wall).toHaveLength(1);
    const v = new DataView(wall[0]!.resultBytes!.buffer);
    expect(v.getBigUint64(0, true)).toBe(1_234_567_890n);
    expect(v.getUint32(8, true)).toBe(123_000_000);
    const first = instance.call({ input: 'random' });
    expect(first.ok).toBe(true);
    const rnd = recorder.flush().filter((x) => x.syscall.startsWith('wasi:random/'));
    expect(rnd.length).toBeGreaterThanOrEqual(1);
    expect([...rnd[0]!.resultBytes!]).toEqual([7, 7, 7, 7, 7, 7, 7, 7]);
  });

  it('a refused call without an error case traps with the refusal code, and the instance is then dead', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:clocks/wall-clock'));
    const instance = instantiateComponent(loaded, buildComponentImports({ gate }));
    const e = thrown(() => instance.call({ input: 'date' }));
    expect(isForgeError(e) && e.code).toBe('POLICY_DENIED');
    expect(isForgeError(e) && e.details).toMatchObject({ syscall: 'wasi:clocks/wall-clock', rule: 'base/no' });
    expect(recorder.flush().find((x) => x.syscall === 'wasi:clocks/wall-clock')).toMatchObject({ verdict: 'deny', allowed: false, result: -1 });
    const again = thrown(() => instance.call({ input: 'hello x' }));
    expect(isForgeError(again) && again.code).toBe('CONTAINER_FAILED');
  });
});

describe('the default sandbox', () => {
  let imports: ComponentImports;
  let rec: ReturnType<typeof policyGate>['recorder'];
  beforeAll(() => {
    const { gate, recorder } = policyGate(allowAllExcept());
    imports = buildComponentImports({ gate });
    rec = recorder;
  });

  it('gives no environment, no arguments, no cwd, no preopens, no terminal, empty stdin', () => {
    const env = imports['wasi:cli/environment']!;
    expect((env['getEnvironment'] as () => unknown)()).toEqual([]);
    expect((env['getArguments'] as () => unknown)()).toEqual([]);
    expect((env['initialCwd'] as () => unknown)()).toBeUndefined();
    expect((imports['wasi:filesystem/preopens']!['getDirectories'] as () => unknown)()).toEqual([]);
    expect((imports['wasi:cli/terminal-stdout']!['getTerminalStdout'] as () => unknown)()).toBeUndefined();
    const stdin = (imports['wasi:cli/stdin']!['getStdin'] as () => { read(n: bigint): Uint8Array })();
    expect(payload(() => stdin.read(10n))).toEqual({ tag: 'closed' });
    expect(rec.flush().map((x) => [x.syscall, x.args.detail])).toEqual([
      ['wasi:cli/env', undefined],
      ['wasi:cli/args', undefined],
      ['wasi:cli/cwd', undefined],
      ['wasi:filesystem/preopens', undefined],
      ['wasi:cli/terminal', 'stdout'],
      ['wasi:cli/stdin', 'get-stdin'],
      ['wasi:cli/stdin', undefined],
    ]);
  });

  it('stdin given as bytes is read through the gate and the bytes are recorded', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const withStdin = buildComponentImports({ gate, stdin: new TextEncoder().encode('abcdef') });
    const stdin = (withStdin['wasi:cli/stdin']!['getStdin'] as () => { read(n: bigint): Uint8Array })();
    expect(dec.decode(stdin.read(4n))).toBe('abcd');
    expect(dec.decode(stdin.read(4n))).toBe('ef');
    expect(payload(() => stdin.read(4n))).toEqual({ tag: 'closed' });
    const r = recorder.flush();
    expect(r.map((x) => [x.syscall, x.args.size, x.result])).toEqual([
      ['wasi:cli/stdin', undefined, 0],
      ['wasi:cli/stdin', 4, 0],
      ['wasi:cli/stdin', 4, 0],
      ['wasi:cli/stdin', 4, 1],
    ]);
    expect(dec.decode(r[2]!.resultBytes!)).toBe('ef');
  });
});

describe('imports the host does not implement', () => {
  const PING = `
(component
  (import "acme:thing/api" (instance $api (export "ping" (func (result u32)))))
  (core func $ping (canon lower (func $api "ping")))
  (core module $m
    (import "host" "ping" (func $ping (result i32)))
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64))
    (func (export "run") (param i32 i32) (result i32)
      (drop (call $ping))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (i32.const 0))
      (i32.store (i32.const 8) (i32.const 0))
      (i32.const 0)))
  (core instance $h (export "ping" (func $ping)))
  (core instance $i (instantiate $m (with "host" (instance $h))))
  (func (export "run") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "run") (memory $i "memory") (realloc (func $i "realloc")))))
`;

  it('are linked, so the component instantiates; a call is decided, recorded and refused', async () => {
    const ping = await transpileComponent(await watComponent(PING));
    expect(ping.imports).toEqual(['acme:thing/api']);
    // A compiled policy decides names interned after compilation by its default action (deny here).
    const compiled = policyGate(allowAllExcept());
    const e = thrown(() => runComponent(ping, buildComponentImports({ gate: compiled.gate }), { input: '' }));
    expect(isForgeError(e) && e.code).toBe('POLICY_DENIED');
    expect(compiled.recorder.flush()).toMatchObject([{ syscall: 'acme:thing/api.ping', args: { detail: 'acme:thing/api#ping' }, verdict: 'deny', rule: null, allowed: false, result: -1 }]);
    // A policy that allows it: there is still nothing to perform, the host does not implement it.
    const syscalls = new SyscallTable(KNOWN_SYSCALLS);
    const allow = { verdict: 'allow', rule: 'test/all', reason: 'test', rateLimited: false, code: null } as const;
    const gate = new Gate({ syscalls, policy: { mode: 'enforce', decide: () => allow } });
    const e2 = thrown(() => runComponent(ping, buildComponentImports({ gate }), { input: '' }));
    expect(isForgeError(e2) && e2.code).toBe('WASM_LINK_ERROR');
    expect(gate.sequence).toBe(1);
  });

  it('the wasi:http server side is a deny interface under wasi:http/outgoing-request', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:http/*'));
    const imports = buildComponentImports({ gate });
    const IncomingRequest = imports['wasi:http/types']!['IncomingRequest'] as { prototype: { method(): unknown } };
    const fake = Object.create(IncomingRequest.prototype) as { method(): unknown };
    const e = thrown(() => fake.method());
    expect(isForgeError(e) && e.code).toBe('POLICY_DENIED');
    const set = (imports['wasi:http/types']!['ResponseOutparam'] as { set(...a: unknown[]): unknown }).set;
    expect(isForgeError(thrown(() => set())) && (thrown(() => set()) as { code: string }).code).toBe('POLICY_DENIED');
    expect(recorder.flush().map((x) => [x.syscall, x.args.detail, x.verdict])).toEqual([
      ['wasi:http/outgoing-request', 'wasi:http/types#[method]incoming-request.method', 'deny'],
      ['wasi:http/outgoing-request', 'wasi:http/types#[static]response-outparam.set', 'deny'],
      ['wasi:http/outgoing-request', 'wasi:http/types#[static]response-outparam.set', 'deny'],
    ]);
  });
});

describe('wasi:http outgoing requests', () => {
  type Ctor<T> = new (...a: unknown[]) => T;
  interface Req {
    setMethod(m: unknown): void;
    setScheme(s: unknown): void;
    setAuthority(a: string): void;
    setPathWithQuery(p: string): void;
    body(): { write(): { blockingWriteAndFlush(b: Uint8Array): void } };
  }
  function request(imports: ComponentImports, authority: string, body?: string): Req {
    const http = imports['wasi:http/types']!;
    const Fields = http['Fields'] as { fromList(e: [string, Uint8Array][]): unknown };
    const OutgoingRequest = http['OutgoingRequest'] as Ctor<Req>;
    const req = new OutgoingRequest(Fields.fromList([['content-type', new TextEncoder().encode('text/plain')]]));
    req.setMethod({ tag: body === undefined ? 'get' : 'post' });
    req.setScheme({ tag: 'HTTPS' });
    req.setAuthority(authority);
    req.setPathWithQuery('/v1/echo?x=1');
    if (body !== undefined) {
      const b = req.body();
      b.write().blockingWriteAndFlush(new TextEncoder().encode(body));
      (http['OutgoingBody'] as { finish(b: unknown): void }).finish(b);
    }
    return req;
  }
  type Future = { get(): { tag: string; val: { tag: string; val: { status(): number; consume(): { stream(): { read(n: bigint): Uint8Array } } } } } };

  it('goes through services.fetch when the policy allows it and a grant covers it', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const seen: string[] = [];
    const services = createMemoryServices({
      fetch: (r) => {
        seen.push(`${r.method} ${r.url} ${JSON.stringify(r.headers)} ${r.body === undefined ? '' : dec.decode(r.body)}`);
        return { status: 201, headers: [['x-echo', 'yes']], body: new TextEncoder().encode('made') };
      },
    });
    const imports = buildComponentImports({ gate, services, network: ['api.example.com:443'] });
    const handle = imports['wasi:http/outgoing-handler']!['handle'] as (r: Req) => Future;
    const future = handle(request(imports, 'API.example.com', 'payload'));
    const res = future.get();
    expect(res.tag).toBe('ok');
    expect(res.val.tag).toBe('ok');
    expect(res.val.val.status()).toBe(201);
    expect(dec.decode(res.val.val.consume().stream().read(100n))).toBe('made');
    expect(seen).toEqual(['POST https://api.example.com/v1/echo?x=1 [["content-type","text/plain"]] payload']);
    // The guest's own request and response objects cross the gate as request-local / response-local
    // (test/component/local.test.ts); here, the egress.
    const r = recorder.flush().filter((x) => !x.syscall.endsWith('-local'));
    expect(r.map((x) => [x.syscall, x.args.host, x.args.port, x.args.detail, x.result])).toEqual([
      ['wasi:http/fields-from-list', undefined, undefined, undefined, 0],
      ['wasi:http/outgoing-request', 'api.example.com', 443, 'POST', 0],
      ['wasi:http/outgoing-request', 'api.example.com', 443, 'response', 0],
    ]);
    expect(dec.decode(r[2]!.resultBytes!)).toContain('made');
  });

  it('is refused with HTTP-request-denied without a grant or when the policy denies it', () => {
    const services = createMemoryServices({ fetch: () => ({ status: 200, headers: [], body: new Uint8Array() }) });
    const allowed = policyGate(allowAllExcept());
    const noGrant = buildComponentImports({ gate: allowed.gate, services, network: ['other.example.com:443'] });
    expect(payload(() => (noGrant['wasi:http/outgoing-handler']!['handle'] as (r: Req) => unknown)(request(noGrant, 'api.example.com')))).toEqual({ tag: 'HTTP-request-denied' });
    const denied = policyGate(allowAllExcept('wasi:http/outgoing-request'));
    const imports = buildComponentImports({ gate: denied.gate, services, network: ['api.example.com:443'] });
    expect(payload(() => (imports['wasi:http/outgoing-handler']!['handle'] as (r: Req) => unknown)(request(imports, 'api.example.com')))).toEqual({ tag: 'HTTP-request-denied' });
    expect(denied.recorder.flush().filter((x) => x.syscall === 'wasi:http/outgoing-request')).toMatchObject([
      { syscall: 'wasi:http/outgoing-request', args: { host: 'api.example.com', port: 443 }, verdict: 'deny', rule: 'base/no' },
    ]);
  });
});

describe('sockets', () => {
  const tcpAddress = { tag: 'ipv4', val: { port: 443, address: [93, 184, 216, 34] } };

  it('tcp connect: refused without a grant, refused by the policy, performed when both allow', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    // The backend answers as a host with no route would (test/component/sockets.test.ts uses real sockets).
    const unreachable = {
      connect: () => {
        throw new ForgeError('NET_FAILED', 'no route', { details: { reason: 'remote-unreachable' } });
      },
    } as unknown as NetBackend;
    const make = (network: string[]): Socket => {
      const imports = buildComponentImports({ gate, network, net: unreachable });
      return (imports['wasi:sockets/tcp-create-socket']!['createTcpSocket'] as (f: string) => Socket)('ipv4');
    };
    const net = {} as never;
    expect(payload(() => make([]).startConnect(net, tcpAddress as never))).toBe('access-denied');
    expect(payload(() => make(['93.184.216.34:80']).startConnect(net, tcpAddress as never))).toBe('access-denied');
    const allowed = make(['93.184.216.34:443']);
    allowed.startConnect(net, tcpAddress as never);
    expect(payload(() => allowed.finishConnect())).toBe('remote-unreachable');
    expect(recorder.flush().filter((x) => x.syscall !== 'wasi:sockets/local').map((x) => [x.syscall, x.args.host, x.args.port, x.result])).toEqual([
      ['wasi:sockets/tcp-connect', '93.184.216.34', 443, -1],
      ['wasi:sockets/tcp-connect', '93.184.216.34', 443, -1],
      ['wasi:sockets/tcp-connect', '93.184.216.34', 443, 1],
    ]);
    const denied = policyGate(allowAllExcept('wasi:sockets/tcp-*'));
    const imports = buildComponentImports({ gate: denied.gate, network: ['93.184.216.34:443'] });
    const socket = (imports['wasi:sockets/tcp-create-socket']!['createTcpSocket'] as (f: string) => Socket)('ipv4');
    expect(payload(() => socket.startConnect(net, tcpAddress as never))).toBe('access-denied');
    expect(denied.recorder.flush().filter((x) => x.syscall !== 'wasi:sockets/local')).toMatchObject([{ syscall: 'wasi:sockets/tcp-connect', verdict: 'deny', rule: 'base/no' }]);
  });
});

describe('clock subscriptions', () => {
  type Clock = { subscribeDuration(ns: bigint): { block(): void; ready(): boolean } };

  it('a duration pollable really waits, and a poll returns it when ready', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate });
    const clock = imports['wasi:clocks/monotonic-clock'] as unknown as Clock;
    const p = clock.subscribeDuration(30_000_000n);
    expect(p.ready()).toBe(false);
    const t0 = performance.now();
    const ready = (imports['wasi:io/poll']!['poll'] as (l: unknown[]) => Uint32Array)([p]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect([...ready]).toEqual([0]);
    expect(recorder.flush().map((x) => [x.syscall, x.args.detail, x.resultBytes === null ? null : [...x.resultBytes]])).toEqual([
      ['wasi:clocks/subscribe', 'duration', null],
      ['wasi:io/ready', 'clock', [0]],
      ['wasi:io/poll', undefined, null],
    ]);
  });

  it('a guest sleeping on a clock is woken by termination and traps with CONTAINER_TERMINATED', async () => {
    const { Worker } = await import('node:worker_threads');
    const { gate } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate });
    const p = (imports['wasi:clocks/monotonic-clock'] as unknown as Clock).subscribeDuration(20_000_000_000n);
    // Another thread terminates the container 50 ms from now, as the kernel would.
    const killer = new Worker(
      `const { workerData } = require('node:worker_threads');
       setTimeout(() => { Atomics.store(workerData, 0, 2); Atomics.notify(workerData, 0); }, 50);`,
      { eval: true, workerData: gate.control },
    );
    const t0 = performance.now();
    const e = thrown(() => p.block());
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(isForgeError(e) && e.code).toBe('CONTAINER_TERMINATED');
    await killer.terminate();
  });
});
