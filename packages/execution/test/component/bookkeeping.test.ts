// Every function crosses the gate, bookkeeping included: stream check-write / flush / subscribe, pollable
// ready / block, resource drops, wasi:http header maps, and the stream / terminal / preopen handouts. Each is
// recorded under its own syscall with canonical arguments; a refusal returns the interface's error variant
// where it has one and traps with the refusal code where it has none; a refused drop still frees.
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, isForgeError } from '@forgeone/common';
import { compilePolicy } from '@forgeone/trust';
import { beforeAll, describe, expect, it } from 'vitest';
import { PLUMBING_SYSCALLS, capabilityPolicy, type Capabilities } from '../../src/capabilities.js';
import {
  DISPOSE,
  IoError,
  MAX_WRITE,
  buildComponentImports,
  createMemoryServices,
  instantiateComponent,
  transpileComponent,
  type ComponentImports,
  type InputStream,
  type LoadedComponent,
  type OutputStream,
  type Pollable,
} from '../../src/component/index.js';
import { Gate, RingRecorder, decodeBlock, type CallRecord } from '../../src/gate/index.js';
import { ReplayGate, replayComponent, replayHost } from '../../src/replay/index.js';
import { allowAllExcept, buildGuest, payload, policyGate, thrown, trapCode } from './helpers.js';

const enc = new TextEncoder();

function dispose(resource: unknown): void {
  (resource as Record<symbol, () => void>)[DISPOSE]!();
}

type Member<T> = (...a: never[]) => T;
function fn<T>(imports: ComponentImports, iface: string, name: string): Member<T> {
  return imports[iface]![name] as Member<T>;
}

const view = (r: readonly CallRecord[]): unknown[] => r.map((x) => [x.syscall, x.args.detail ?? null, x.allowed, x.result]);

describe('wasi:io bookkeeping', () => {
  it('check-write, flush, subscribe, ready, block and drops cross the gate with the stream as detail', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, stdout: () => undefined, stdin: enc.encode('in') });
    const out = fn<OutputStream>(imports, 'wasi:cli/stdout', 'getStdout')();
    expect(out.checkWrite()).toBe(BigInt(MAX_WRITE));
    out.flush();
    out.blockingFlush();
    const p: Pollable = out.subscribe();
    expect(p.ready()).toBe(true);
    p.block();
    dispose(p);
    dispose(out);
    const input = fn<InputStream>(imports, 'wasi:cli/stdin', 'getStdin')();
    dispose(input.subscribe());
    dispose(input);
    const r = recorder.flush();
    expect(view(r)).toEqual([
      ['wasi:cli/stdout', 'get-stdout', true, 0],
      ['wasi:io/check-write', 'stdout', true, 0],
      ['wasi:io/flush', 'stdout', true, 0],
      ['wasi:io/flush', 'stdout', true, 0],
      ['wasi:io/subscribe', 'stdout', true, 0],
      ['wasi:io/ready', 'stdout', true, 0],
      ['wasi:io/block', 'stdout', true, 0],
      ['wasi:io/drop', 'pollable:stdout', true, 0],
      ['wasi:io/drop', 'stdout', true, 0],
      ['wasi:cli/stdin', 'get-stdin', true, 0],
      ['wasi:io/subscribe', 'stdin', true, 0],
      ['wasi:io/drop', 'pollable:stdin', true, 0],
      ['wasi:io/drop', 'stdin', true, 0],
    ]);
    // Bookkeeping carries no size and no bytes, except the answer of ready (one byte, for replays).
    expect(r.filter((x) => x.syscall.startsWith('wasi:io/')).every((x) => x.args.size === undefined)).toBe(true);
    expect(r.find((x) => x.syscall === 'wasi:io/ready')!.resultBytes).toEqual(new Uint8Array([1]));
  });

  it('a refused check-write or flush fails with last-operation-failed carrying the refusal code', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:io/check-write', 'wasi:io/flush'));
    const imports = buildComponentImports({ gate, stdout: () => undefined });
    const out = fn<OutputStream>(imports, 'wasi:cli/stdout', 'getStdout')();
    for (const call of [(): unknown => out.checkWrite(), (): unknown => out.flush(), (): unknown => out.blockingFlush()]) {
      const p = payload(call) as { tag: string; val: IoError };
      expect(p.tag).toBe('last-operation-failed');
      expect(p.val).toBeInstanceOf(IoError);
      expect(p.val.code).toBe('POLICY_DENIED');
      expect(p.val.toDebugString()).toMatch(/^POLICY_DENIED: wasi:io\/(check-write|flush) refused/);
      // The error resource handed to the guest is the container's: its drop crosses the gate too.
      dispose(p.val);
    }
    // Writes are not bookkeeping: still allowed.
    out.blockingWriteAndFlush(enc.encode('x'));
    expect(view(recorder.flush())).toEqual([
      ['wasi:cli/stdout', 'get-stdout', true, 0],
      ['wasi:io/check-write', 'stdout', false, -1],
      ['wasi:io/error', 'to-debug-string', true, 0],
      ['wasi:io/drop', 'error', true, 0],
      ['wasi:io/flush', 'stdout', false, -1],
      ['wasi:io/error', 'to-debug-string', true, 0],
      ['wasi:io/drop', 'error', true, 0],
      ['wasi:io/flush', 'stdout', false, -1],
      ['wasi:io/error', 'to-debug-string', true, 0],
      ['wasi:io/drop', 'error', true, 0],
      ['wasi:cli/stdout', null, true, 0],
    ]);
  });

  it('a refused subscribe, ready or block traps with the refusal code (no error case)', () => {
    const sub = policyGate(allowAllExcept('wasi:io/subscribe'));
    const out = fn<OutputStream>(buildComponentImports({ gate: sub.gate }), 'wasi:cli/stdout', 'getStdout')();
    expect(trapCode(() => out.subscribe())).toBe('POLICY_DENIED');
    const clockImports = (g: Gate): { subscribeDuration(ns: bigint): Pollable } =>
      buildComponentImports({ gate: g })['wasi:clocks/monotonic-clock'] as unknown as { subscribeDuration(ns: bigint): Pollable };
    const ready = policyGate(allowAllExcept('wasi:io/ready'));
    expect(trapCode(() => clockImports(ready.gate).subscribeDuration(0n).ready())).toBe('POLICY_DENIED');
    const block = policyGate(allowAllExcept('wasi:io/block'));
    const e = thrown(() => clockImports(block.gate).subscribeDuration(0n).block());
    expect(isForgeError(e) && e.details).toMatchObject({ syscall: 'wasi:io/block', rule: 'base/no' });
    expect(view(block.recorder.flush())).toEqual([
      ['wasi:clocks/subscribe', 'duration', true, 0],
      ['wasi:io/block', 'clock', false, -1],
    ]);
  });

  it('a refused drop is recorded as refused, never throws, and still frees what the resource held', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:io/drop'));
    const imports = buildComponentImports({ gate, stdout: () => undefined });
    const out = fn<OutputStream>(imports, 'wasi:cli/stdout', 'getStdout')();
    dispose(out.subscribe());
    dispose(out);
    // An outgoing body holds the bytes written to it: a refused drop lets go of them all the same.
    const http = imports['wasi:http/types']!;
    const Fields = http['Fields'] as new () => unknown;
    const OutgoingRequest = http['OutgoingRequest'] as new (h: unknown) => { body(): { write(): OutputStream; chunks: Uint8Array[]; size: number } };
    const body = new OutgoingRequest(new Fields()).body();
    body.write().blockingWriteAndFlush(enc.encode('held by the host'));
    expect(body.size).toBe(16);
    dispose(body);
    expect(body.chunks).toEqual([]);
    expect(body.size).toBe(0);
    const drops = recorder.flush().filter((x) => x.syscall === 'wasi:io/drop');
    expect(drops.map((x) => [x.args.detail, x.verdict, x.allowed, x.result])).toEqual([
      ['pollable:stdout', 'deny', false, -1],
      ['stdout', 'deny', false, -1],
      ['outgoing-body', 'deny', false, -1],
    ]);
    // The refusal code is recorded with the drop (a replay gives the guest the same verdict).
    expect(new TextDecoder().decode(drops[0]!.resultBytes!)).toBe('POLICY_DENIED');
    // Refused drops do not stop the guest: the next call goes on.
    expect(fn<OutputStream>(imports, 'wasi:cli/stdout', 'getStdout')().checkWrite()).toBe(BigInt(MAX_WRITE));
  });
});

describe('handouts without an error case trap when refused', () => {
  it('get-stdout, get-stderr, get-stdin, get-terminal-* and get-directories trap with the refusal code', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:cli/*', 'wasi:filesystem/preopens'));
    const imports = buildComponentImports({ gate, stdout: () => undefined });
    const calls: [string, string][] = [
      ['wasi:cli/stdout', 'getStdout'],
      ['wasi:cli/stderr', 'getStderr'],
      ['wasi:cli/stdin', 'getStdin'],
      ['wasi:cli/terminal-stdin', 'getTerminalStdin'],
      ['wasi:cli/terminal-stdout', 'getTerminalStdout'],
      ['wasi:cli/terminal-stderr', 'getTerminalStderr'],
      ['wasi:cli/environment', 'getEnvironment'],
      ['wasi:cli/environment', 'getArguments'],
      ['wasi:filesystem/preopens', 'getDirectories'],
    ];
    for (const [iface, name] of calls) {
      const e = thrown(() => fn<unknown>(imports, iface, name)());
      expect(isForgeError(e) && e.code, `${iface}#${name}`).toBe('POLICY_DENIED');
      expect(isForgeError(e) && (e.details as { rule: string }).rule, name).toBe('base/no');
    }
    expect(recorder.flush().map((x) => [x.syscall, x.allowed, x.result])).toEqual([
      ['wasi:cli/stdout', false, -1],
      ['wasi:cli/stderr', false, -1],
      ['wasi:cli/stdin', false, -1],
      ['wasi:cli/terminal', false, -1],
      ['wasi:cli/terminal', false, -1],
      ['wasi:cli/terminal', false, -1],
      ['wasi:cli/env', false, -1],
      ['wasi:cli/args', false, -1],
      ['wasi:filesystem/preopens', false, -1],
    ]);
  });

  it('a quarantine refusal traps with its own code', () => {
    const { gate } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate });
    Atomics.store(gate.control, 0, 2); // terminated
    expect(trapCode(() => fn<unknown>(imports, 'wasi:filesystem/preopens', 'getDirectories')())).toBe('CONTAINER_TERMINATED');
  });
});

/** A gate deciding with the capability policy alone (as a sandbox without a kernel policy does). */
function capabilityGate(caps: Capabilities): { gate: Gate; records: () => CallRecord[] } {
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const program = compilePolicy(capabilityPolicy(caps), { identity: createIdentity({ subject: 'capabilities' }), syscalls });
  const ring = new RingRecorder({ blockSize: 4096 });
  const gate = new Gate({ syscalls, policy: { mode: 'enforce', decide: (id, ctx) => program.decide(id, ctx) }, recorder: ring });
  return {
    gate,
    records: () => {
      const b = ring.flush();
      return b === null ? [] : decodeBlock(b, syscalls);
    },
  };
}

describe('the capability policy', () => {
  it('allows the plumbing whatever is granted; no directories granted is an empty list, not a refusal', () => {
    const { gate, records } = capabilityGate({ stdio: false });
    const imports = buildComponentImports({ gate });
    expect(fn<unknown>(imports, 'wasi:filesystem/preopens', 'getDirectories')()).toEqual([]);
    // stdio not granted: asking for stdout traps.
    expect(trapCode(() => fn<unknown>(imports, 'wasi:cli/stdout', 'getStdout')())).toBe('POLICY_DENIED');
    const Fields = imports['wasi:http/types']!['Fields'] as new () => { append(n: string, v: Uint8Array): void; has(n: string): boolean };
    const f = new Fields();
    f.append('X-A', enc.encode('1'));
    expect(f.has('x-a')).toBe(true);
    dispose(f);
    const clock = imports['wasi:clocks/monotonic-clock'] as unknown as { subscribeDuration(ns: bigint): Pollable };
    const p = clock.subscribeDuration(0n);
    expect(p.ready()).toBe(true);
    p.block();
    dispose(p);
    expect(records().map((x) => [x.syscall, x.allowed, x.rule])).toEqual([
      ['wasi:filesystem/preopens', true, 'granted/plumbing'],
      ['wasi:cli/stdout', false, null],
      ['wasi:http/fields-new', true, 'granted/plumbing'],
      ['wasi:http/fields-append', true, 'granted/plumbing'],
      ['wasi:http/fields-has', true, 'granted/plumbing'],
      ['wasi:io/drop', true, 'granted/plumbing'],
      ['wasi:clocks/subscribe', true, 'granted/exit'],
      ['wasi:io/ready', true, 'granted/plumbing'],
      ['wasi:io/block', true, 'granted/plumbing'],
      ['wasi:io/drop', true, 'granted/plumbing'],
    ]);
    // Every plumbing pattern names catalogue syscalls.
    for (const pattern of PLUMBING_SYSCALLS) {
      const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
      expect(KNOWN_SYSCALLS.some((s) => re.test(s)), pattern).toBe(true);
    }
  });
});

describe('wasi:http header maps', () => {
  type F = {
    get(n: string): Uint8Array[];
    has(n: string): boolean;
    set(n: string, v: Uint8Array[]): void;
    append(n: string, v: Uint8Array): void;
    delete(n: string): void;
    entries(): [string, Uint8Array][];
    clone(): F;
  };
  type FieldsClass = (new () => F) & { fromList(e: [string, Uint8Array][]): F };
  const fieldsOf = (imports: ComponentImports): FieldsClass => imports['wasi:http/types']!['Fields'] as FieldsClass;

  it('every operation crosses the gate under wasi:http/fields-*, the header name lowercased as detail', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const Fields = fieldsOf(buildComponentImports({ gate }));
    const f = Fields.fromList([['Content-Type', enc.encode('text/plain')]]);
    expect(f).toBeInstanceOf(Fields);
    f.append('X-Trace', enc.encode('abc'));
    f.set('Accept', [enc.encode('a'), enc.encode('bc')]);
    expect(f.get('CONTENT-TYPE').map((v) => new TextDecoder().decode(v))).toEqual(['text/plain']);
    expect(f.has('x-trace')).toBe(true);
    f.delete('X-Trace');
    expect(f.entries().map(([k]) => k)).toEqual(['content-type', 'accept', 'accept']);
    const copy = f.clone();
    expect(copy).toBeInstanceOf(Fields);
    const empty = new Fields();
    expect(empty.get('not a token')).toEqual([]);
    expect(payload(() => empty.append('bad name', enc.encode('x')))).toEqual({ tag: 'invalid-syntax' });
    expect(payload(() => empty.append('ok', enc.encode('line\nbreak')))).toEqual({ tag: 'invalid-syntax' });
    expect(recorder.flush().map((x) => [x.syscall, x.args.detail ?? null, x.args.size ?? null, x.result])).toEqual([
      ['wasi:http/fields-from-list', null, 1, 0],
      ['wasi:http/fields-append', 'x-trace', 3, 0],
      ['wasi:http/fields-set', 'accept', 3, 0],
      ['wasi:http/fields-get', 'content-type', null, 0],
      ['wasi:http/fields-has', 'x-trace', null, 0],
      ['wasi:http/fields-delete', 'x-trace', null, 0],
      ['wasi:http/fields-entries', null, null, 0],
      ['wasi:http/fields-clone', null, null, 0],
      ['wasi:http/fields-new', null, null, 0],
      // A name that is not a token has no canonical form: no detail.
      ['wasi:http/fields-get', null, null, 0],
      ['wasi:http/fields-append', null, 1, 1],
      ['wasi:http/fields-append', 'ok', 10, 1],
    ]);
  });

  it('refused: header-error.forbidden where the function has an error case, a trap where it has none', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:http/fields-*'));
    const Fields = fieldsOf(buildComponentImports({ gate }));
    expect(payload(() => Fields.fromList([['a', enc.encode('1')]]))).toEqual({ tag: 'forbidden' });
    expect(trapCode(() => new Fields())).toBe('POLICY_DENIED');
    const allowed = policyGate(allowAllExcept('wasi:http/fields-set', 'wasi:http/fields-append', 'wasi:http/fields-delete', 'wasi:http/fields-get', 'wasi:http/fields-has', 'wasi:http/fields-entries', 'wasi:http/fields-clone'));
    const f = new (fieldsOf(buildComponentImports({ gate: allowed.gate })))();
    expect(payload(() => f.set('a', []))).toEqual({ tag: 'forbidden' });
    expect(payload(() => f.append('a', enc.encode('1')))).toEqual({ tag: 'forbidden' });
    expect(payload(() => f.delete('a'))).toEqual({ tag: 'forbidden' });
    for (const call of [(): unknown => f.get('a'), (): unknown => f.has('a'), (): unknown => f.entries(), (): unknown => f.clone()]) expect(trapCode(call)).toBe('POLICY_DENIED');
    expect(recorder.flush().map((x) => [x.syscall, x.result])).toEqual([
      ['wasi:http/fields-from-list', -1],
      ['wasi:http/fields-new', -1],
    ]);
    expect(allowed.recorder.flush().map((x) => [x.syscall, x.args.detail ?? null, x.result])).toEqual([
      ['wasi:http/fields-new', null, 0],
      ['wasi:http/fields-set', 'a', -1],
      ['wasi:http/fields-append', 'a', -1],
      ['wasi:http/fields-delete', 'a', -1],
      ['wasi:http/fields-get', 'a', -1],
      ['wasi:http/fields-has', 'a', -1],
      ['wasi:http/fields-entries', null, -1],
      ['wasi:http/fields-clone', null, -1],
    ]);
  });

  it('headers attached to a request are immutable (recorded as failed); response headers are the container\'s class', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices({ fetch: () => ({ status: 200, headers: [['X-Reply', 'yes']], body: enc.encode('ok') }) });
    const imports = buildComponentImports({ gate, services, network: ['api.example.com:443'] });
    const http = imports['wasi:http/types']!;
    const Fields = fieldsOf(imports);
    const OutgoingRequest = http['OutgoingRequest'] as new (h: F) => { headers(): F; setAuthority(a: string): void };
    const req = new OutgoingRequest(new Fields());
    expect(payload(() => req.headers().append('a', enc.encode('1')))).toEqual({ tag: 'immutable' });
    req.setAuthority('api.example.com');
    type Res = { headers(): F; consume(): { stream(): InputStream } };
    const future = fn<{ subscribe(): Pollable; get(): { val: { val: Res } } }>(imports, 'wasi:http/outgoing-handler', 'handle')(req as never);
    dispose(future.subscribe());
    const res = future.get().val.val;
    const headers = res.headers();
    expect(headers).toBeInstanceOf(Fields);
    expect(headers.has('x-reply')).toBe(true);
    const body = res.consume();
    dispose(body.stream());
    dispose(body);
    dispose(res);
    dispose(future);
    dispose(req);
    const options = new (http['RequestOptions'] as new () => unknown)();
    dispose(options);
    expect(recorder.flush().map((x) => [x.syscall, x.args.detail ?? null, x.result])).toEqual([
      ['wasi:http/fields-new', null, 0],
      ['wasi:http/request-local', 'new-outgoing-request', 0],
      ['wasi:http/request-local', 'headers', 0],
      ['wasi:http/fields-append', 'a', 1],
      ['wasi:http/request-local', 'set-authority', 0],
      ['wasi:http/outgoing-request', 'GET', 0],
      ['wasi:io/subscribe', 'future-incoming-response', 0],
      ['wasi:io/drop', 'pollable:future-incoming-response', 0],
      ['wasi:http/outgoing-request', 'response', 0],
      ['wasi:http/response-local', 'headers', 0],
      ['wasi:http/fields-has', 'x-reply', 0],
      ['wasi:http/response-local', 'consume', 0],
      ['wasi:http/response-local', 'stream', 0],
      ['wasi:io/drop', 'incoming-body-stream', 0],
      ['wasi:io/drop', 'incoming-body', 0],
      ['wasi:io/drop', 'incoming-response', 0],
      ['wasi:io/drop', 'future-incoming-response', 0],
      ['wasi:io/drop', 'outgoing-request', 0],
      ['wasi:http/request-local', 'new-request-options', 0],
      ['wasi:io/drop', 'request-options', 0],
    ]);
  });
});

describe('sockets bookkeeping', () => {
  it('subscribe and drops of sockets, the network and name lookups cross the gate', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: ['10.0.0.1:80'] });
    const socket = fn<{ subscribe(): Pollable }>(imports, 'wasi:sockets/tcp-create-socket', 'createTcpSocket')('ipv4' as never);
    dispose(socket.subscribe());
    dispose(socket);
    const udp = fn<unknown>(imports, 'wasi:sockets/udp-create-socket', 'createUdpSocket')('ipv4' as never);
    dispose(udp);
    const network = fn<unknown>(imports, 'wasi:sockets/instance-network', 'instanceNetwork')();
    const lookup = fn<{ resolveNextAddress(): unknown; subscribe(): Pollable }>(imports, 'wasi:sockets/ip-name-lookup', 'resolveAddresses')(network as never, '10.0.0.1' as never);
    dispose(lookup.subscribe());
    dispose(lookup);
    expect(lookup.resolveNextAddress()).toBeUndefined(); // the drop let go of the addresses
    dispose(network);
    expect(recorder.flush().map((x) => [x.syscall, x.args.detail ?? null])).toEqual([
      ['wasi:sockets/local', 'create-tcp-socket'],
      ['wasi:io/subscribe', 'tcp-socket'],
      ['wasi:io/drop', 'pollable:tcp-socket'],
      ['wasi:io/drop', 'tcp-socket'],
      ['wasi:sockets/local', 'create-udp-socket'],
      ['wasi:io/drop', 'udp-socket'],
      ['wasi:sockets/local', 'instance-network'],
      ['wasi:sockets/resolve', null],
      ['wasi:io/subscribe', 'resolve-address-stream'],
      ['wasi:io/drop', 'pollable:resolve-address-stream'],
      ['wasi:io/drop', 'resolve-address-stream'],
      ['wasi:sockets/local', 'resolve-next-address'],
      ['wasi:io/drop', 'network'],
    ]);
  });
});

describe('replay of the bookkeeping', () => {
  let wasi: LoadedComponent;
  beforeAll(async () => {
    wasi = await transpileComponent(await buildGuest('plugin.js', { disable: [] }));
  }, 300_000);

  it('a guest writing to stdout and stderr replays identically, the new calls matched one by one', async () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const out = instantiateComponent(wasi, buildComponentImports({ gate, stdout: () => undefined, stderr: () => undefined })).call({ input: 'console replayed' });
    expect(out).toEqual({ ok: true, value: 'logged' });
    const records = recorder.flush();
    expect(records.map((x) => x.syscall)).toEqual(expect.arrayContaining(['wasi:cli/stdin', 'wasi:cli/stdout', 'wasi:cli/stderr', 'wasi:filesystem/preopens', 'wasi:cli/terminal']));
    const report = await replayComponent({ records, component: wasi, input: 'console replayed' });
    expect(report.divergence).toBeNull();
    expect(report.identical).toBe(true);
    expect(new TextDecoder().decode(report.stdout)).toBe('out replayed\n');
  });

  it('ready answers from the record and block does not wait in a replay (the replay clock stands still)', () => {
    type Clock = { subscribeDuration(ns: bigint): Pollable };
    const { gate, recorder } = policyGate(allowAllExcept());
    const clock = buildComponentImports({ gate })['wasi:clocks/monotonic-clock'] as unknown as Clock;
    const p = clock.subscribeDuration(2_000_000n);
    p.block();
    expect(p.ready()).toBe(true);
    dispose(p);
    const records = recorder.flush();
    expect(records.map((x) => x.syscall)).toEqual(['wasi:clocks/subscribe', 'wasi:io/block', 'wasi:io/ready', 'wasi:io/drop']);

    const replay = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const host = replayHost(replay);
    const again = (buildComponentImports({ gate: replay, clocks: host.clocks })['wasi:clocks/monotonic-clock'] as unknown as Clock).subscribeDuration(2_000_000n);
    // The replay's monotonic clock only moves with recorded readings (none here): computed, the pollable
    // would never be ready; block would wait for ever.
    again.block();
    expect(again.ready()).toBe(true);
    dispose(again);
    expect(replay.finish()).toBeNull();
  });
});
