// The last host functions that did not cross the gate: error inspection (`wasi:io/error`), the guest's own
// wasi:http objects (`wasi:http/request-local`, `wasi:http/response-local`), the guest's own socket state
// (`wasi:sockets/local`, plus `tcp-listen` / `tcp-accept`), filesystem stream handouts, `is-same-object` and
// the drops of descriptors and directory-entry streams. Each crosses the gate once, with `detail` = the
// function; refused, it returns the interface's error variant or traps with the refusal code; a refused
// drop still frees; nothing here records result bytes except `is-same-object`'s one-byte answer.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity } from '@forgeone/common';
import { compilePolicy } from '@forgeone/trust';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLUMBING_SYSCALLS, capabilityPolicy, type Capabilities } from '../../src/capabilities.js';
import {
  DISPOSE,
  HostResultError,
  IoError,
  buildComponentImports,
  createMemoryServices,
  disposeComponentImports,
  type ComponentImports,
  type Descriptor,
  type InputStream,
  type OutputStream,
} from '../../src/component/index.js';
import { Gate, RingRecorder, decodeBlock, type CallRecord } from '../../src/gate/index.js';
import { ReplayGate, replayHost } from '../../src/replay/index.js';
import { allowAllExcept, payload, policyGate, trapCode } from './helpers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

const dispose = (resource: unknown): void => (resource as Record<symbol, () => void>)[DISPOSE]!();
type Fn = (...a: never[]) => unknown;
const fn = (imports: ComponentImports, iface: string, name: string): Fn => imports[iface]![name] as Fn;
const view = (r: readonly CallRecord[]): unknown[] => r.map((x) => [x.syscall, x.args.detail ?? null, x.result]);

// --- wasi:http shapes -------------------------------------------------------------------------------------
type Fields = { append(n: string, v: Uint8Array): void };
type Body = { write(): OutputStream };
type Req = {
  method(): unknown;
  setMethod(m: unknown): void;
  pathWithQuery(): string | undefined;
  setPathWithQuery(p: string | undefined): void;
  scheme(): unknown;
  setScheme(s: unknown): void;
  authority(): string | undefined;
  setAuthority(a: string | undefined): void;
  headers(): Fields;
  body(): Body;
  readonly methodValue: unknown;
  readonly authorityValue: string | undefined;
};
type Options = {
  connectTimeout(): bigint | undefined;
  setConnectTimeout(d: bigint | undefined): void;
  firstByteTimeout(): bigint | undefined;
  setFirstByteTimeout(d: bigint | undefined): void;
  betweenBytesTimeout(): bigint | undefined;
  setBetweenBytesTimeout(d: bigint | undefined): void;
};
type IncomingBodyT = { stream(): InputStream };
type Res = { status(): number; headers(): Fields; consume(): IncomingBodyT };
type Trailers = { get(): unknown };
type Future = { get(): { tag: string; val: { tag: string; val: unknown } } };

interface Http {
  Fields: new () => Fields;
  OutgoingRequest: new (h: Fields) => Req;
  RequestOptions: new () => Options;
  OutgoingBody: { finish(b: Body, t?: unknown): void };
  IncomingBody: { finish(b: IncomingBodyT): Trailers };
  handle(r: Req): Future;
  httpErrorCode(e: unknown): unknown;
}

function http(imports: ComponentImports): Http {
  const t = imports['wasi:http/types']!;
  return {
    Fields: t['Fields'] as Http['Fields'],
    OutgoingRequest: t['OutgoingRequest'] as Http['OutgoingRequest'],
    RequestOptions: t['RequestOptions'] as Http['RequestOptions'],
    OutgoingBody: t['OutgoingBody'] as Http['OutgoingBody'],
    IncomingBody: t['IncomingBody'] as Http['IncomingBody'],
    handle: imports['wasi:http/outgoing-handler']!['handle'] as Http['handle'],
    httpErrorCode: t['httpErrorCode'] as Http['httpErrorCode'],
  };
}

const reply = (): ReturnType<typeof createMemoryServices> =>
  createMemoryServices({ fetch: (r) => ({ status: 202, headers: [['x-seen', r.method]], body: enc.encode(`got ${r.body === undefined ? '' : dec.decode(r.body)}`) }) });

/** A guest's whole exchange: build a request with every accessor and setter, send a body, read the response. */
function exchange(imports: ComponentImports): { status: number; body: string; again: unknown; trailers: unknown; seen: unknown[] } {
  const h = http(imports);
  const req = new h.OutgoingRequest(new h.Fields());
  const seen: unknown[] = [];
  req.setMethod({ tag: 'post' });
  seen.push(req.method());
  req.setScheme({ tag: 'HTTPS' });
  seen.push(req.scheme());
  req.setAuthority('API.Example.com:8443');
  seen.push(req.authority());
  req.setPathWithQuery('/v1/x?q=1');
  seen.push(req.pathWithQuery());
  req.headers();
  const options = new h.RequestOptions();
  options.setConnectTimeout(5n);
  options.setFirstByteTimeout(6n);
  options.setBetweenBytesTimeout(7n);
  seen.push(options.connectTimeout(), options.firstByteTimeout(), options.betweenBytesTimeout());
  const body = req.body();
  const out = body.write();
  out.blockingWriteAndFlush(enc.encode('hello'));
  out.write(enc.encode('!!'));
  dispose(out);
  h.OutgoingBody.finish(body);
  const future = h.handle(req);
  const res = future.get().val.val as Res;
  const again = future.get();
  const status = res.status();
  res.headers();
  const incoming = res.consume();
  const stream = incoming.stream();
  let text = '';
  for (;;) {
    try {
      text += dec.decode(stream.read(4n));
    } catch (e) {
      if (e instanceof HostResultError) break;
      throw e;
    }
  }
  dispose(stream);
  const trailers = h.IncomingBody.finish(incoming).get();
  return { status, body: text, again, trailers, seen };
}

describe('wasi:io/error: inspecting an error crosses the gate', () => {
  it('to-debug-string and the *-error-code functions are recorded with the function as detail; refused, they trap', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:io/check-write'));
    const imports = buildComponentImports({ gate, stdout: () => undefined });
    const out = fn(imports, 'wasi:cli/stdout', 'getStdout')() as OutputStream;
    const err = (payload(() => out.checkWrite()) as { val: IoError }).val;
    expect(err.toDebugString()).toMatch(/^POLICY_DENIED: /);
    expect(fn(imports, 'wasi:filesystem/types', 'filesystemErrorCode')(err as never)).toBeUndefined();
    expect(fn(imports, 'wasi:sockets/network', 'networkErrorCode')(err as never)).toBeUndefined();
    expect(http(imports).httpErrorCode(err)).toBeUndefined();
    expect(view(recorder.flush().filter((x) => x.syscall === 'wasi:io/error'))).toEqual([
      ['wasi:io/error', 'to-debug-string', 0],
      ['wasi:io/error', 'filesystem-error-code', 0],
      ['wasi:io/error', 'network-error-code', 0],
      ['wasi:io/error', 'http-error-code', 0],
    ]);

    const denied = policyGate(allowAllExcept('wasi:io/check-write', 'wasi:io/error'));
    const imports2 = buildComponentImports({ gate: denied.gate, stdout: () => undefined });
    const e2 = (payload(() => (fn(imports2, 'wasi:cli/stdout', 'getStdout')() as OutputStream).checkWrite()) as { val: IoError }).val;
    expect(trapCode(() => e2.toDebugString())).toBe('POLICY_DENIED');
    expect(trapCode(() => fn(imports2, 'wasi:filesystem/types', 'filesystemErrorCode')(e2 as never))).toBe('POLICY_DENIED');
    expect(trapCode(() => fn(imports2, 'wasi:sockets/network', 'networkErrorCode')(e2 as never))).toBe('POLICY_DENIED');
    expect(trapCode(() => http(imports2).httpErrorCode(e2))).toBe('POLICY_DENIED');
    const refused = denied.recorder.flush().filter((x) => x.syscall === 'wasi:io/error');
    expect(refused.map((x) => [x.args.detail, x.allowed, x.result])).toEqual([
      ['to-debug-string', false, -1],
      ['filesystem-error-code', false, -1],
      ['network-error-code', false, -1],
      ['http-error-code', false, -1],
    ]);
    // A host-side error (not handed to a guest) crosses nothing.
    expect(new IoError('IO_ERROR', 'x').toDebugString()).toBe('IO_ERROR: x');
  });

  it('a file error carries its filesystem code through filesystem-error-code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forgeone-local-'));
    try {
      await writeFile(join(dir, 'f.txt'), 'abc');
      const { gate } = policyGate(allowAllExcept());
      const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/d', hostPath: dir }] });
      const [[root]] = fn(imports, 'wasi:filesystem/preopens', 'getDirectories')() as [[Descriptor, string]];
      const f = root.openAt({}, 'f.txt', {}, { read: true });
      // A stream over a descriptor the guest dropped fails with a filesystem error the guest can inspect.
      const s = f.readViaStream(0n);
      dispose(f);
      const failed = payload(() => s.read(4n)) as { tag: string; val: IoError };
      expect(failed.tag).toBe('last-operation-failed');
      expect(fn(imports, 'wasi:filesystem/types', 'filesystemErrorCode')(failed.val as never)).toBe('bad-descriptor');
      disposeComponentImports(imports);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('wasi:http/request-local and response-local', () => {
  it('every accessor, setter, body write and response accessor crosses the gate once, detail = the function', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, services: reply(), network: ['api.example.com:8443'] });
    const r = exchange(imports);
    expect(r).toMatchObject({ status: 202, body: 'got hello!!', again: { tag: 'err' }, trailers: { tag: 'ok', val: { tag: 'ok' } } });
    expect(r.seen).toEqual([{ tag: 'post' }, { tag: 'HTTPS' }, 'API.Example.com:8443', '/v1/x?q=1', 5n, 6n, 7n]);
    const records = recorder.flush();
    expect(view(records.filter((x) => x.syscall !== 'wasi:io/drop'))).toEqual([
      ['wasi:http/fields-new', null, 0],
      ['wasi:http/request-local', 'new-outgoing-request', 0],
      ['wasi:http/request-local', 'set-method:POST', 0],
      ['wasi:http/request-local', 'method', 0],
      ['wasi:http/request-local', 'set-scheme:https', 0],
      ['wasi:http/request-local', 'scheme', 0],
      ['wasi:http/request-local', 'set-authority', 0],
      ['wasi:http/request-local', 'authority', 0],
      ['wasi:http/request-local', 'set-path-with-query', 0],
      ['wasi:http/request-local', 'path-with-query', 0],
      ['wasi:http/request-local', 'headers', 0],
      ['wasi:http/request-local', 'new-request-options', 0],
      ['wasi:http/request-local', 'set-connect-timeout', 0],
      ['wasi:http/request-local', 'set-first-byte-timeout', 0],
      ['wasi:http/request-local', 'set-between-bytes-timeout', 0],
      ['wasi:http/request-local', 'connect-timeout', 0],
      ['wasi:http/request-local', 'first-byte-timeout', 0],
      ['wasi:http/request-local', 'between-bytes-timeout', 0],
      ['wasi:http/request-local', 'body', 0],
      ['wasi:http/request-local', 'write', 0],
      ['wasi:http/request-local', 'body-write', 0],
      ['wasi:http/request-local', 'body-write', 0],
      ['wasi:http/request-local', 'finish', 0],
      ['wasi:http/outgoing-request', 'POST', 0],
      // The first get is the request itself; asked again, it is the local get (the response was taken).
      ['wasi:http/outgoing-request', 'response', 0],
      ['wasi:http/response-local', 'future-incoming-response.get', 1],
      ['wasi:http/response-local', 'status', 0],
      ['wasi:http/response-local', 'headers', 0],
      ['wasi:http/response-local', 'consume', 0],
      ['wasi:http/response-local', 'stream', 0],
      ['wasi:http/response-local', 'body-read', 0],
      ['wasi:http/response-local', 'body-read', 0],
      ['wasi:http/response-local', 'body-read', 0],
      ['wasi:http/response-local', 'body-read', 1],
      ['wasi:http/response-local', 'finish', 0],
      ['wasi:http/response-local', 'future-trailers.get', 0],
    ]);
    // set-authority carries the canonical host and port; body writes their sizes; body reads the size asked.
    expect(records.find((x) => x.args.detail === 'set-authority')!.args).toMatchObject({ host: 'api.example.com', port: 8443 });
    expect(records.filter((x) => x.args.detail === 'body-write').map((x) => x.args.size)).toEqual([5, 2]);
    const reads = records.filter((x) => x.args.detail === 'body-read');
    expect(reads.every((x) => x.args.size === 4)).toBe(true);
    // Only the response itself carries bytes: the local calls are recomputed from it in a replay.
    const local = records.filter((x) => x.syscall.endsWith('-local'));
    expect(local.every((x) => x.resultBytes === null)).toBe(true);
    expect(dec.decode(records.find((x) => x.args.detail === 'response')!.resultBytes!)).toContain('got hello!!');
  });

  it('refused: setters, body, write, consume and stream return their error; getters and constructors trap', () => {
    // Everything local refused; header maps allowed.
    const { gate, recorder } = policyGate(allowAllExcept('wasi:http/request-local', 'wasi:http/response-local'));
    const imports = buildComponentImports({ gate, services: reply(), network: ['api.example.com:443'] });
    const h = http(imports);
    const f = new h.Fields();
    expect(trapCode(() => new h.OutgoingRequest(f))).toBe('POLICY_DENIED');
    expect(trapCode(() => new h.RequestOptions())).toBe('POLICY_DENIED');
    expect(view(recorder.flush())).toEqual([
      ['wasi:http/fields-new', null, 0],
      ['wasi:http/request-local', 'new-outgoing-request', -1],
      ['wasi:http/request-local', 'new-request-options', -1],
    ]);

    // Request-local refused once the objects exist (a policy that allows the constructors only).
    const policy = `
apiVersion: forgeone.policy/v1
name: local-test
version: 1
defaultAction: allow
root: base
nodes:
  base:
    rules:
      - { id: no, action: deny, syscalls: ["wasi:http/request-local"], args: { detail: { notIn: ["new-outgoing-request", "new-request-options"] } } }
`;
    const p = policyGate(policy);
    const imp = buildComponentImports({ gate: p.gate, services: reply(), network: ['api.example.com:443'] });
    const hp = http(imp);
    const req = new hp.OutgoingRequest(new hp.Fields());
    for (const call of [(): unknown => req.setMethod({ tag: 'put' }), (): unknown => req.setPathWithQuery('/'), (): unknown => req.setScheme({ tag: 'HTTP' }), (): unknown => req.setAuthority('a.example'), (): unknown => req.body()]) {
      expect(payload(call)).toBeUndefined();
    }
    for (const call of [(): unknown => req.method(), (): unknown => req.pathWithQuery(), (): unknown => req.scheme(), (): unknown => req.authority(), (): unknown => req.headers()]) {
      expect(trapCode(call)).toBe('POLICY_DENIED');
    }
    const options = new hp.RequestOptions();
    expect(payload(() => options.setConnectTimeout(1n))).toBeUndefined();
    expect(trapCode(() => options.connectTimeout())).toBe('POLICY_DENIED');
    // Nothing was changed by the refused setters.
    expect(req.methodValue).toEqual({ tag: 'get' });
    expect(req.authorityValue).toBeUndefined();
    const all = p.recorder.flush();
    const recs = all.filter((x) => x.syscall === 'wasi:http/request-local');
    expect(recs.map((x) => [x.args.detail, x.allowed, x.rule])).toEqual([
      ['new-outgoing-request', true, null],
      ['set-method:PUT', false, 'base/no'],
      ['set-path-with-query', false, 'base/no'],
      ['set-scheme:http', false, 'base/no'],
      ['set-authority', false, 'base/no'],
      ['body', false, 'base/no'],
      ['method', false, 'base/no'],
      ['path-with-query', false, 'base/no'],
      ['scheme', false, 'base/no'],
      ['authority', false, 'base/no'],
      ['headers', false, 'base/no'],
      ['new-request-options', true, null],
      ['set-connect-timeout', false, 'base/no'],
      ['connect-timeout', false, 'base/no'],
    ]);
    // The refused set-authority still carries its canonical host: a policy can decide on it.
    expect(recs.find((x) => x.args.detail === 'set-authority')!.args.host).toBe('a.example');
  });

  it('refused body write and finish: last-operation-failed and HTTP-request-denied', () => {
    const policy = `
apiVersion: forgeone.policy/v1
name: local-body
version: 1
defaultAction: allow
root: base
nodes:
  base:
    rules:
      - { id: no, action: deny, syscalls: ["wasi:http/request-local"], args: { detail: { in: ["body-write", "finish"] } } }
`;
    const { gate, recorder } = policyGate(policy);
    const imports = buildComponentImports({ gate, services: reply(), network: ['api.example.com:443'] });
    const h = http(imports);
    const req = new h.OutgoingRequest(new h.Fields());
    const body = req.body();
    const out = body.write();
    const failed = payload(() => out.write(enc.encode('x'))) as { tag: string; val: IoError };
    expect(failed.tag).toBe('last-operation-failed');
    expect(failed.val.code).toBe('POLICY_DENIED');
    expect(payload(() => h.OutgoingBody.finish(body))).toEqual({ tag: 'HTTP-request-denied' });
    // Not finished: the future's get sends nothing and crosses the gate as the local get.
    req.setAuthority('api.example.com');
    const future = h.handle(req);
    expect(future.get()).toEqual({ tag: 'ok', val: { tag: 'err', val: { tag: 'HTTP-protocol-error' } } });
    expect(view(recorder.flush().filter((x) => x.syscall !== 'wasi:io/error' && x.syscall !== 'wasi:io/drop'))).toEqual([
      ['wasi:http/fields-new', null, 0],
      ['wasi:http/request-local', 'new-outgoing-request', 0],
      ['wasi:http/request-local', 'body', 0],
      ['wasi:http/request-local', 'write', 0],
      ['wasi:http/request-local', 'body-write', -1],
      ['wasi:http/request-local', 'finish', -1],
      ['wasi:http/request-local', 'set-authority', 0],
      ['wasi:http/outgoing-request', 'GET', 0],
      ['wasi:http/response-local', 'future-incoming-response.get', 1],
    ]);
  });

  it('refused response-local: consume and stream return their error, status and headers trap, gets answer HTTP-request-denied', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:http/response-local'));
    const imports = buildComponentImports({ gate, services: reply(), network: ['api.example.com:443'] });
    const h = http(imports);
    const req = new h.OutgoingRequest(new h.Fields());
    req.setAuthority('api.example.com');
    const future = h.handle(req);
    // The first get is the request (outgoing-request, allowed); a second one is local (refused).
    const res = future.get().val.val as Res;
    expect(future.get()).toEqual({ tag: 'ok', val: { tag: 'err', val: { tag: 'HTTP-request-denied' } } });
    expect(trapCode(() => res.status())).toBe('POLICY_DENIED');
    expect(trapCode(() => res.headers())).toBe('POLICY_DENIED');
    expect(payload(() => res.consume())).toBeUndefined();
    const local = recorder.flush().filter((x) => x.syscall === 'wasi:http/response-local');
    expect(local.map((x) => [x.args.detail, x.allowed, x.result])).toEqual([
      ['future-incoming-response.get', false, -1],
      ['status', false, -1],
      ['headers', false, -1],
      ['consume', false, -1],
    ]);
    // A body stream refused its reads: last-operation-failed with the code. Trailers refused: denied.
    const allowStream = `
apiVersion: forgeone.policy/v1
name: local-read
version: 1
defaultAction: allow
root: base
nodes:
  base:
    rules:
      - { id: no, action: deny, syscalls: ["wasi:http/response-local"], args: { detail: { in: ["body-read", "future-trailers.get", "finish"] } } }
`;
    const p = policyGate(allowStream);
    const imp = buildComponentImports({ gate: p.gate, services: reply(), network: ['api.example.com:443'] });
    const hp = http(imp);
    const r2 = new hp.OutgoingRequest(new hp.Fields());
    r2.setAuthority('api.example.com');
    const incoming = (hp.handle(r2).get().val.val as Res).consume();
    const s = incoming.stream();
    expect((payload(() => s.read(10n)) as { tag: string; val: IoError }).val.code).toBe('POLICY_DENIED');
    expect(trapCode(() => hp.IncomingBody.finish(incoming))).toBe('POLICY_DENIED');
  });
});

describe('wasi:sockets/local', () => {
  type Tcp = Record<string, (...a: unknown[]) => unknown>;
  const TCP_GETTERS = ['keepAliveEnabled', 'keepAliveIdleTime', 'keepAliveInterval', 'keepAliveCount', 'hopLimit', 'receiveBufferSize', 'sendBufferSize'];
  const TCP_SETTERS = ['setListenBacklogSize', 'setKeepAliveEnabled', 'setKeepAliveIdleTime', 'setKeepAliveInterval', 'setKeepAliveCount', 'setHopLimit', 'setReceiveBufferSize', 'setSendBufferSize'];
  const kebab = (n: string): string => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

  it('creating sockets, the network handle, the socket state and options cross the gate with the function as detail', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: ['10.0.0.1:80'] });
    const net = fn(imports, 'wasi:sockets/instance-network', 'instanceNetwork')();
    const tcp = fn(imports, 'wasi:sockets/tcp-create-socket', 'createTcpSocket')('ipv4' as never) as Tcp;
    expect(tcp['addressFamily']!()).toBe('ipv4');
    expect(tcp['isListening']!()).toBe(false);
    expect(TCP_GETTERS.map((g) => tcp[g]!())).toEqual([false, 7200_000_000_000n, 75_000_000_000n, 9, 64, 65536n, 65536n]);
    for (const s of TCP_SETTERS) expect(payload(() => tcp[s]!(1))).toBe('not-supported');
    expect(payload(() => tcp['finishBind']!())).toBe('not-in-progress');
    expect(payload(() => tcp['finishConnect']!())).toBe('not-in-progress');
    expect(payload(() => tcp['startListen']!())).toBe('invalid-state');
    expect(payload(() => tcp['finishListen']!())).toBe('not-in-progress');
    expect(payload(() => tcp['accept']!())).toBe('invalid-state');
    expect(payload(() => tcp['localAddress']!())).toBe('invalid-state');
    expect(payload(() => tcp['remoteAddress']!())).toBe('invalid-state');
    expect(payload(() => fn(imports, 'wasi:sockets/tcp-create-socket', 'createTcpSocket')('ipx' as never))).toBe('not-supported');
    const udp = fn(imports, 'wasi:sockets/udp-create-socket', 'createUdpSocket')('ipv6' as never) as Tcp;
    expect(udp['addressFamily']!()).toBe('ipv6');
    expect([udp['unicastHopLimit']!(), udp['receiveBufferSize']!(), udp['sendBufferSize']!()]).toEqual([64, 65536n, 65536n]);
    for (const s of ['setUnicastHopLimit', 'setReceiveBufferSize', 'setSendBufferSize']) expect(payload(() => udp[s]!(1))).toBe('not-supported');
    expect(payload(() => udp['finishBind']!())).toBe('not-in-progress');
    expect(payload(() => udp['localAddress']!())).toBe('invalid-state');
    expect(payload(() => udp['remoteAddress']!())).toBe('invalid-state');
    // An unconnected UDP stream is egress (to anyone): it crosses as udp-send, without a host.
    expect(payload(() => udp['stream']!(undefined))).toBe('not-supported');
    const lookup = fn(imports, 'wasi:sockets/ip-name-lookup', 'resolveAddresses')(net as never, '10.0.0.1' as never) as Tcp;
    expect(lookup['resolveNextAddress']!()).toEqual({ tag: 'ipv4', val: [10, 0, 0, 1] });
    expect(lookup['resolveNextAddress']!()).toBeUndefined();
    disposeComponentImports(imports);
    const records = recorder.flush().filter((x) => x.syscall !== 'wasi:io/drop');
    expect(records.map((x) => [x.syscall, x.args.detail ?? null, x.result])).toEqual([
      ['wasi:sockets/local', 'instance-network', 0],
      ['wasi:sockets/local', 'create-tcp-socket', 0],
      ['wasi:sockets/local', 'address-family', 0],
      ['wasi:sockets/local', 'is-listening', 0],
      ...TCP_GETTERS.map((g) => ['wasi:sockets/local', kebab(g), 0]),
      ...TCP_SETTERS.map((s) => ['wasi:sockets/local', kebab(s), 1]),
      ['wasi:sockets/local', 'finish-bind', 1],
      ['wasi:sockets/local', 'finish-connect', 1],
      ['wasi:sockets/tcp-listen', null, 1],
      ['wasi:sockets/local', 'finish-listen', 1],
      ['wasi:sockets/tcp-accept', null, 1],
      ['wasi:sockets/local', 'local-address', 1],
      ['wasi:sockets/local', 'remote-address', 1],
      ['wasi:sockets/local', 'create-tcp-socket', 1],
      ['wasi:sockets/local', 'create-udp-socket', 0],
      ['wasi:sockets/local', 'address-family', 0],
      ['wasi:sockets/local', 'unicast-hop-limit', 0],
      ['wasi:sockets/local', 'receive-buffer-size', 0],
      ['wasi:sockets/local', 'send-buffer-size', 0],
      ['wasi:sockets/local', 'set-unicast-hop-limit', 1],
      ['wasi:sockets/local', 'set-receive-buffer-size', 1],
      ['wasi:sockets/local', 'set-send-buffer-size', 1],
      ['wasi:sockets/local', 'finish-bind', 1],
      ['wasi:sockets/local', 'local-address', 1],
      ['wasi:sockets/local', 'remote-address', 1],
      ['wasi:sockets/udp-send', null, 1],
      ['wasi:sockets/resolve', null, 0],
      ['wasi:sockets/local', 'resolve-next-address', 0],
      ['wasi:sockets/local', 'resolve-next-address', 0],
    ]);
    expect(records.every((x) => x.resultBytes === null || x.syscall === 'wasi:sockets/resolve' || x.syscall === 'wasi:sockets/udp-send')).toBe(true);
  });

  it('refused: functions with an error case return access-denied, the others trap', () => {
    const { gate, recorder } = policyGate(allowAllExcept('wasi:sockets/local', 'wasi:sockets/tcp-listen', 'wasi:sockets/tcp-accept'));
    const denied = buildComponentImports({ gate, network: ['10.0.0.1:80'] });
    expect(trapCode(() => fn(denied, 'wasi:sockets/instance-network', 'instanceNetwork')())).toBe('POLICY_DENIED');
    expect(payload(() => fn(denied, 'wasi:sockets/tcp-create-socket', 'createTcpSocket')('ipv4' as never))).toBe('access-denied');
    expect(payload(() => fn(denied, 'wasi:sockets/udp-create-socket', 'createUdpSocket')('ipv4' as never))).toBe('access-denied');
    expect(view(recorder.flush())).toEqual([
      ['wasi:sockets/local', 'instance-network', -1],
      ['wasi:sockets/local', 'create-tcp-socket', -1],
      ['wasi:sockets/local', 'create-udp-socket', -1],
    ]);
    disposeComponentImports(denied);
    // Sockets made while allowed, then refused: a policy on detail refuses everything but creation.
    const policy = `
apiVersion: forgeone.policy/v1
name: sockets-local
version: 1
defaultAction: allow
root: base
nodes:
  base:
    rules:
      - { id: no, action: deny, syscalls: ["wasi:sockets/local"], args: { detail: { notIn: ["instance-network", "create-tcp-socket"] } } }
      - { id: no-listen, action: deny, syscalls: ["wasi:sockets/tcp-listen", "wasi:sockets/tcp-accept"] }
`;
    const p = policyGate(policy);
    const imp = buildComponentImports({ gate: p.gate, network: ['10.0.0.1:80'] });
    const n2 = fn(imp, 'wasi:sockets/instance-network', 'instanceNetwork')();
    const t2 = fn(imp, 'wasi:sockets/tcp-create-socket', 'createTcpSocket')('ipv4' as never) as Tcp;
    expect(trapCode(() => t2['addressFamily']!())).toBe('POLICY_DENIED');
    expect(trapCode(() => t2['isListening']!())).toBe('POLICY_DENIED');
    for (const m of [...TCP_GETTERS, ...TCP_SETTERS, 'finishBind', 'finishConnect', 'startListen', 'finishListen', 'accept', 'localAddress', 'remoteAddress']) {
      expect(payload(() => t2[m]!(1)), m).toBe('access-denied');
    }
    const l2 = fn(imp, 'wasi:sockets/ip-name-lookup', 'resolveAddresses')(n2 as never, '10.0.0.1' as never) as Tcp;
    expect(payload(() => l2['resolveNextAddress']!())).toBe('access-denied');
    const recs = p.recorder.flush().filter((x) => x.syscall !== 'wasi:sockets/resolve');
    expect(recs.slice(0, 2).map((x) => x.allowed)).toEqual([true, true]);
    expect(recs.slice(2).every((x) => !x.allowed && x.result === -1 && x.rule?.startsWith('base/no') === true)).toBe(true);
    expect(recs.length).toBe(2 + 2 + TCP_GETTERS.length + TCP_SETTERS.length + 7 + 1);
    disposeComponentImports(imp);
  });
});

describe('wasi:filesystem: handouts, is-same-object and drops', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forgeone-local-fs-'));
    await writeFile(join(dir, 'a.txt'), 'alpha');
    await writeFile(join(dir, 'b.txt'), 'beta');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const root = (imports: ComponentImports): Descriptor => (fn(imports, 'wasi:filesystem/preopens', 'getDirectories')() as [[Descriptor, string]])[0][0];

  it('stream handouts cross the gate under read / write with the function as detail; rights are checked after', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/d', hostPath: dir }] });
    const r = root(imports);
    const a = r.openAt({}, 'a.txt', {}, { read: true });
    a.readViaStream(0n);
    expect(payload(() => a.writeViaStream(0n))).toBe('read-only');
    expect(payload(() => a.appendViaStream())).toBe('read-only');
    const w = r.openAt({}, 'b.txt', {}, { write: true });
    expect(payload(() => w.readViaStream(0n))).toBe('not-permitted');
    disposeComponentImports(imports);
    const handouts = recorder.flush().filter((x) => x.args.detail?.endsWith('-via-stream') === true);
    expect(handouts.map((x) => [x.syscall, x.args.path, x.args.detail, x.result])).toEqual([
      ['wasi:filesystem/read', '/d/a.txt', 'read-via-stream', 0],
      ['wasi:filesystem/write', '/d/a.txt', 'write-via-stream', 1],
      ['wasi:filesystem/write', '/d/a.txt', 'append-via-stream', 1],
      ['wasi:filesystem/read', '/d/b.txt', 'read-via-stream', 1],
    ]);
  });

  it('is-same-object crosses the gate once (both paths), its answer recorded; a replay answers from it', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/d', hostPath: dir }] });
    const r = root(imports);
    const run = (rt: Descriptor): boolean[] => {
      const a = rt.openAt({}, 'a.txt', {}, { read: true });
      const a2 = rt.openAt({}, 'a.txt', {}, { read: true });
      const b = rt.openAt({}, 'b.txt', {}, { read: true });
      return [a.isSameObject(a), a.isSameObject(a2), a.isSameObject(b)];
    };
    expect(run(r)).toEqual([true, true, false]);
    disposeComponentImports(imports);
    const records = recorder.flush();
    const same = records.filter((x) => x.syscall === 'wasi:filesystem/stat');
    expect(same.map((x) => [x.args.path, x.args.detail, [...x.resultBytes!]])).toEqual([
      ['/d/a.txt', '/d/a.txt', [1]],
      ['/d/a.txt', '/d/a.txt', [1]],
      ['/d/a.txt', '/d/b.txt', [0]],
    ]);
    const replay = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const again = buildComponentImports({ gate: replay, preopens: [{ guestPath: '/d', hostPath: join(dir, 'not-there') }] });
    expect(run(root(again))).toEqual([true, true, false]);
    disposeComponentImports(again);
    expect(replay.finish()).toBeNull();

    const denied = policyGate(allowAllExcept('wasi:filesystem/stat'));
    const imp = buildComponentImports({ gate: denied.gate, preopens: [{ guestPath: '/d', hostPath: dir }] });
    const a = root(imp).openAt({}, 'a.txt', {}, { read: true });
    expect(trapCode(() => a.isSameObject(a))).toBe('POLICY_DENIED');
    disposeComponentImports(imp);
  });

  it('dropping a descriptor or a directory-entry stream crosses the gate; a refused drop still closes and frees', () => {
    for (const deny of [[], ['wasi:io/drop']]) {
      const { gate, recorder } = policyGate(allowAllExcept(...deny));
      const imports = buildComponentImports({ gate, preopens: [{ guestPath: '/d', hostPath: dir }] });
      const r = root(imports);
      const a = r.openAt({}, 'a.txt', {}, { read: true });
      const list = r.readDirectory() as unknown as { readDirectoryEntry(): unknown };
      dispose(list);
      expect(list.readDirectoryEntry()).toBeUndefined(); // the entries were let go
      dispose(a);
      expect(payload(() => a.stat())).toBe('bad-descriptor'); // closed in the confined layer
      dispose(r); // a preopen stays open
      expect(r.stat()).toMatchObject({ type: 'directory' });
      disposeComponentImports(imports);
      const drops = recorder.flush().filter((x) => x.syscall === 'wasi:io/drop');
      const allowed = deny.length === 0;
      expect(drops.map((x) => [x.args.detail, x.args.path, x.allowed, x.result])).toEqual([
        ['directory-entry-stream', '/d', allowed, allowed ? 0 : -1],
        ['descriptor', '/d/a.txt', allowed, allowed ? 0 : -1],
        ['descriptor', '/d', allowed, allowed ? 0 : -1],
      ]);
    }
  });
});

describe('closed streams', () => {
  it('a read after the end and a write after a failure still cross the gate (recorded as failed)', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, stdin: enc.encode('') });
    const input = fn(imports, 'wasi:cli/stdin', 'getStdin')() as InputStream;
    expect(payload(() => input.read(4n))).toEqual({ tag: 'closed' });
    expect(payload(() => input.read(4n))).toEqual({ tag: 'closed' });
    const failing = buildComponentImports({
      gate,
      stdout: () => {
        throw new IoError('IO_ERROR', 'gone');
      },
    });
    const out = fn(failing, 'wasi:cli/stdout', 'getStdout')() as OutputStream;
    expect((payload(() => out.write(enc.encode('x'))) as { tag: string }).tag).toBe('last-operation-failed');
    expect(payload(() => out.write(enc.encode('y')))).toEqual({ tag: 'closed' });
    expect(view(recorder.flush())).toEqual([
      ['wasi:cli/stdin', 'get-stdin', 0],
      ['wasi:cli/stdin', null, 1],
      ['wasi:cli/stdin', null, 1],
      ['wasi:cli/stdout', 'get-stdout', 0],
      ['wasi:cli/stdout', null, 1],
      ['wasi:cli/stdout', null, 1],
    ]);
  });
});

/** A gate deciding with the capability policy alone. */
function capabilityGate(caps: Capabilities): { gate: Gate; records: () => CallRecord[] } {
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const program = compilePolicy(capabilityPolicy(caps), { identity: createIdentity({ subject: 'capabilities' }), syscalls });
  const ring = new RingRecorder({ blockSize: 1 << 16 });
  const gate = new Gate({ syscalls, policy: { mode: 'enforce', decide: (id, ctx) => program.decide(id, ctx) }, recorder: ring });
  return {
    gate,
    records: () => {
      const b = ring.flush();
      return b === null ? [] : decodeBlock(b, syscalls);
    },
  };
}

describe('the capability policy and replays', () => {
  it('grants the new names as plumbing; the egress stays fenced by the network grants', () => {
    for (const name of ['wasi:io/error', 'wasi:http/request-local', 'wasi:http/response-local', 'wasi:sockets/local']) {
      expect(KNOWN_SYSCALLS).toContain(name);
      expect(PLUMBING_SYSCALLS).toContain(name);
    }
    const { gate, records } = capabilityGate({ net: [{ host: 'api.example.com', port: 8443 }] });
    const imports = buildComponentImports({ gate, services: reply(), network: ['api.example.com:8443'] });
    expect(exchange(imports)).toMatchObject({ status: 202, body: 'got hello!!' });
    fn(imports, 'wasi:sockets/tcp-create-socket', 'createTcpSocket')('ipv4' as never);
    const recs = records();
    const local = recs.filter((x) => x.syscall.endsWith('-local') || x.syscall === 'wasi:sockets/local');
    expect(local.length).toBeGreaterThan(30);
    expect(local.every((x) => x.allowed && x.rule === 'granted/plumbing')).toBe(true);
    expect(recs.filter((x) => x.syscall === 'wasi:http/outgoing-request').every((x) => x.rule === 'granted/net-8443')).toBe(true);
    // Without the grant the request itself is refused; the local calls are not.
    const bare = capabilityGate({});
    const imp = buildComponentImports({ gate: bare.gate, services: reply(), network: [] });
    const h = http(imp);
    const req = new h.OutgoingRequest(new h.Fields());
    req.setAuthority('api.example.com:8443');
    expect(payload(() => h.handle(req))).toEqual({ tag: 'HTTP-request-denied' });
    expect(bare.records().map((x) => [x.syscall, x.allowed])).toEqual([
      ['wasi:http/fields-new', true],
      ['wasi:http/request-local', true],
      ['wasi:http/request-local', true],
      ['wasi:http/outgoing-request', false],
    ]);
  });

  it('an HTTP exchange replays identically from its record, the local calls matched one by one', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const original = exchange(buildComponentImports({ gate, services: reply(), network: ['api.example.com:8443'] }));
    const records = recorder.flush();
    const replay = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const host = replayHost(replay);
    // The replay's services answer the fetch from the record: no network, no real service.
    const replayed = exchange(buildComponentImports({ gate: replay, services: host.services, network: ['api.example.com:8443'] }));
    expect(replay.finish()).toBeNull();
    expect(replay.sequence).toBe(records.length);
    expect(replayed).toEqual(original);
    // A guest that sets another method diverges at its set-method.
    const again = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const h = http(buildComponentImports({ gate: again, services: replayHost(again).services, network: ['api.example.com:8443'] }));
    const req = new h.OutgoingRequest(new h.Fields());
    expect(trapCode(() => req.setMethod({ tag: 'put' }))).toBe('REPLAY_DIVERGED');
    expect(again.divergence).toMatchObject({ kind: 'arguments', expected: { args: { detail: 'set-method:POST' } }, got: { args: { detail: 'set-method:PUT' } } });
  });
});
