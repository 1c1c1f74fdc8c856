// wasi:sockets over a real TCP backend: the adapter's functions called from JS as jco calls them, against
// an echo server in a child process (the backend's calls block this thread while they wait, so the server
// cannot live here).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { KNOWN_SYSCALLS, SyscallTable } from '@forgeone/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DISPOSE,
  HostResultError,
  IoError,
  buildComponentImports,
  disposeComponentImports,
  ipAddressOf,
  type ComponentImports,
  type InputStream,
  type IpSocketAddress,
  type Network,
  type Pollable,
  type TcpSocket,
} from '../../src/component/index.js';
import { capabilityPolicy } from '../../src/capabilities.js';
import type { CallRecord } from '../../src/gate/index.js';
import { ReplayGate, replayHost, replayNet } from '../../src/replay/index.js';
import { allowAllExcept, payload, policyGate } from './helpers.js';

// Echoes what it gets; on "bye" answers "later" and closes its end.
const ECHO = `
const net = require('node:net');
const server = net.createServer((s) => {
  s.on('data', (b) => { if (b.toString() === 'bye') s.end('later'); else s.write(b); });
  s.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

async function startEcho(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [port] = (await once(child, 'message')) as [number];
  return { child, port };
}

let echo: ChildProcess;
let port: number;

beforeAll(async () => {
  ({ child: echo, port } = await startEcho());
});
afterAll(() => {
  echo.kill();
});

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const v4 = (p: number, a: [number, number, number, number] = [127, 0, 0, 1]): IpSocketAddress => ({ tag: 'ipv4', val: { port: p, address: a } });

type Fn = (...a: unknown[]) => unknown;
const fn = (imports: ComponentImports, iface: string, name: string): Fn => imports[iface]![name] as Fn;
const tcp = (imports: ComponentImports): TcpSocket => fn(imports, 'wasi:sockets/tcp-create-socket', 'createTcpSocket')('ipv4') as TcpSocket;
const network = (imports: ComponentImports): Network => fn(imports, 'wasi:sockets/instance-network', 'instanceNetwork')() as Network;
const dispose = (r: unknown): void => (r as Record<symbol, () => void>)[DISPOSE]!();
/** The records of calls that reach (or would reach) the network: without the socket's own state (`wasi:sockets/local`). */
const egress = (records: readonly CallRecord[]): CallRecord[] => records.filter((r) => r.syscall !== 'wasi:sockets/local');

/** Read until `n` bytes came or the stream ended (blocking-read, as a guest would). */
function readAll(input: InputStream, n: number): { text: string; ended: boolean } {
  let text = '';
  while (text.length < n) {
    try {
      text += dec(input.blockingRead(1024n));
    } catch (e) {
      if (e instanceof HostResultError && (e.payload as { tag: string }).tag === 'closed') return { text, ended: true };
      throw e;
    }
  }
  return { text, ended: false };
}

/** The guest's session: connect, "ping", the echo, "bye", "later", end of stream, drops. */
function session(imports: ComponentImports, p: number): { echoed: string; last: string; ended: boolean; local: IpSocketAddress; remote: IpSocketAddress } {
  const net = network(imports);
  const s = tcp(imports);
  s.startConnect(net, v4(p));
  const [input, output] = s.finishConnect();
  const local = s.localAddress();
  const remote = s.remoteAddress();
  output.blockingWriteAndFlush(enc('ping'));
  const echoed = readAll(input, 4).text;
  output.blockingWriteAndFlush(enc('bye'));
  const rest = readAll(input, 100);
  dispose(input);
  dispose(output);
  dispose(s);
  dispose(net);
  return { echoed, last: rest.text, ended: rest.ended, local, remote };
}

describe('wasi:sockets/tcp over the network backend', () => {
  it('connects, writes, reads the echo and the end of the stream; every call is recorded with its host, port and bytes', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: [`127.0.0.1:${port}`] });
    const out = session(imports, port);
    disposeComponentImports(imports);
    expect(out).toMatchObject({ echoed: 'ping', last: 'later', ended: true, remote: v4(port) });
    expect(out.local).toMatchObject({ tag: 'ipv4', val: { address: [127, 0, 0, 1] } });
    const records = recorder.flush();
    const connect = records.find((r) => r.syscall === 'wasi:sockets/tcp-connect')!;
    expect(connect).toMatchObject({ args: { host: '127.0.0.1', port }, verdict: 'allow', allowed: true, result: 0 });
    expect(JSON.parse(dec(connect.resultBytes!))).toMatchObject({ remote: { address: '127.0.0.1', port, family: 'ipv4' }, local: { address: '127.0.0.1' } });
    const io = records.filter((r) => r.syscall === 'wasi:sockets/tcp-send' || r.syscall === 'wasi:sockets/tcp-receive');
    expect(io.every((r) => r.args.host === '127.0.0.1' && r.args.port === port)).toBe(true);
    expect(io.filter((r) => r.syscall === 'wasi:sockets/tcp-send').map((r) => r.args.size)).toEqual([4, 3]);
    const received = io.filter((r) => r.syscall === 'wasi:sockets/tcp-receive');
    // The bytes read are in the record; the last read is the end of the stream (result 1, no bytes).
    expect(received.filter((r) => r.result === 0).map((r) => dec(r.resultBytes ?? new Uint8Array(0))).join('')).toBe('pinglater');
    expect(received.at(-1)).toMatchObject({ result: 1, resultBytes: null });
    expect(received.every((r) => r.args.size === 1024)).toBe(true);
    expect(records.filter((r) => r.syscall === 'wasi:io/drop').map((r) => r.args.detail)).toEqual(['tcp-input-stream', 'tcp-output-stream', 'tcp-socket', 'network']);
  });

  it('a read with nothing buffered returns no bytes at once; the stream pollable becomes ready when the echo arrives', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: [`127.0.0.1:${port}`] });
    const s = tcp(imports);
    s.startConnect(network(imports), v4(port));
    const [input, output] = s.finishConnect();
    expect(input.read(16n)).toEqual(new Uint8Array(0));
    const p = input.subscribe() as Pollable;
    expect(p.ready()).toBe(false);
    output.write(enc('hello'));
    p.block();
    expect(p.ready()).toBe(true);
    const ready = fn(imports, 'wasi:io/poll', 'poll')([p]) as Uint32Array;
    expect([...ready]).toEqual([0]);
    expect(readAll(input, 5).text).toBe('hello');
    dispose(s);
    // After the socket is dropped, its streams fail (the connection is closed).
    const err = payload(() => input.read(16n)) as { tag: string; val: IoError };
    expect(err.tag).toBe('last-operation-failed');
    expect(err.val).toBeInstanceOf(IoError);
    expect(fn(imports, 'wasi:sockets/network', 'networkErrorCode')(err.val)).toBe('invalid-state');
    disposeComponentImports(imports);
    const records = recorder.flush();
    expect(records.filter((r) => r.syscall === 'wasi:io/ready').map((r) => [r.args.detail, [...r.resultBytes!]])).toEqual([
      ['tcp-input-stream', [0]],
      ['tcp-input-stream', [1]],
    ]);
    // A poll over a socket's pollable records its answer (a replay cannot recompute it).
    expect(records.find((r) => r.syscall === 'wasi:io/poll')!.resultBytes).toEqual(new Uint8Array([0, 0, 0, 0]));
  });

  it('refuses a connect without a grant, one the policy refuses, and one after the wrong state', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: [`127.0.0.1:${port + 1 === 65536 ? 1 : port + 1}`] });
    const s = tcp(imports);
    expect(payload(() => s.startConnect(network(imports), v4(port)))).toBe('access-denied');
    expect(payload(() => s.finishConnect())).toBe('not-in-progress');
    expect(payload(() => s.localAddress())).toBe('invalid-state');
    expect(payload(() => s.startConnect(network(imports), v4(0)))).toBe('invalid-argument');
    expect(payload(() => s.startConnect(network(imports), { tag: 'ipv6', val: { port, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } }))).toBe('invalid-argument');
    disposeComponentImports(imports);
    expect(egress(recorder.flush()).map((r) => [r.syscall, r.args.host, r.args.port, r.verdict, r.result])).toEqual([['wasi:sockets/tcp-connect', '127.0.0.1', port, 'allow', -1]]);

    const denied = policyGate(allowAllExcept('wasi:sockets/tcp-connect'));
    const imports2 = buildComponentImports({ gate: denied.gate, network: [`127.0.0.1:${port}`] });
    const s2 = tcp(imports2);
    expect(payload(() => s2.startConnect(network(imports2), v4(port)))).toBe('access-denied');
    disposeComponentImports(imports2);
    expect(egress(denied.recorder.flush())).toMatchObject([{ syscall: 'wasi:sockets/tcp-connect', args: { host: '127.0.0.1', port }, verdict: 'deny', rule: 'base/no', allowed: false, result: -1 }]);

    // Connected: a second connect is in the wrong state.
    const ok = policyGate(allowAllExcept());
    const imports3 = buildComponentImports({ gate: ok.gate, network: [`127.0.0.1:${port}`] });
    const s3 = tcp(imports3);
    s3.startConnect(network(imports3), v4(port));
    expect(payload(() => s3.startConnect(network(imports3), v4(port)))).toBe('invalid-state');
    s3.finishConnect();
    expect(payload(() => s3.finishConnect())).toBe('not-in-progress');
    disposeComponentImports(imports3);
  });

  it('a connection refused by the peer fails finish-connect with connection-refused, recorded as failed', async () => {
    const closed = await closedPort();
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: [`127.0.0.1:${closed}`] });
    const s = tcp(imports);
    s.startConnect(network(imports), v4(closed));
    expect(payload(() => s.finishConnect())).toBe('connection-refused');
    expect(payload(() => s.finishConnect())).toBe('not-in-progress');
    disposeComponentImports(imports);
    const [rec] = egress(recorder.flush());
    expect(rec).toMatchObject({ syscall: 'wasi:sockets/tcp-connect', args: { host: '127.0.0.1', port: closed }, allowed: true, result: 1 });
    expect(JSON.parse(dec(rec!.resultBytes!))).toEqual({ code: 'NET_FAILED', message: 'connection-refused' });
  });

  it('shutdown crosses the gate; the peer then sees the end and closes', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: [`127.0.0.1:${port}`] });
    const s = tcp(imports);
    s.startConnect(network(imports), v4(port));
    const [input, output] = s.finishConnect();
    output.blockingWriteAndFlush(enc('abc'));
    expect(readAll(input, 3).text).toBe('abc');
    s.shutdown('send');
    expect(readAll(input, 100)).toEqual({ text: '', ended: true });
    const w = payload(() => output.write(enc('x'))) as { tag: string; val: IoError };
    expect(w.tag).toBe('last-operation-failed');
    disposeComponentImports(imports);
    expect(recorder.flush().find((r) => r.args.detail === 'shutdown:send')).toMatchObject({ syscall: 'wasi:sockets/tcp-send', args: { host: '127.0.0.1', port, size: 0 }, result: 0 });
  });
});

describe('waiting on a socket', () => {
  it('a blocking read with nothing coming is woken by termination and traps with CONTAINER_TERMINATED', async () => {
    const { Worker } = await import('node:worker_threads');
    const { gate } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: [`127.0.0.1:${port}`] });
    const s = tcp(imports);
    s.startConnect(network(imports), v4(port));
    const [input] = s.finishConnect();
    // Another thread terminates the container 50 ms from now, as the kernel would; the echo never answers.
    const killer = new Worker(
      `const { workerData } = require('node:worker_threads');
       setTimeout(() => { Atomics.store(workerData, 0, 2); Atomics.notify(workerData, 0); }, 50);`,
      { eval: true, workerData: gate.control },
    );
    let code: unknown;
    try {
      input.blockingRead(16n);
    } catch (e) {
      code = (e as { code?: unknown }).code;
    }
    await killer.terminate();
    disposeComponentImports(imports);
    expect(code).toBe('CONTAINER_TERMINATED');
  });
});

describe('ipAddressOf', () => {
  it('turns canonical text into the ip-address the guest gets', () => {
    expect(ipAddressOf('10.0.0.255')).toEqual({ tag: 'ipv4', val: [10, 0, 0, 255] });
    expect(ipAddressOf('::1')).toEqual({ tag: 'ipv6', val: [0, 0, 0, 0, 0, 0, 0, 1] });
    expect(ipAddressOf('2001:DB8::8a2e:370:7334')).toEqual({ tag: 'ipv6', val: [0x2001, 0xdb8, 0, 0, 0, 0x8a2e, 0x370, 0x7334] });
    expect(ipAddressOf('::ffff:1.2.3.4')).toEqual({ tag: 'ipv6', val: [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304] });
    expect(ipAddressOf('1:2:3:4:5:6:7:8')).toEqual({ tag: 'ipv6', val: [1, 2, 3, 4, 5, 6, 7, 8] });
    for (const bad of ['256.1.1.1', 'localhost', 'fe80::1%eth0', '1::2::3', '']) expect(ipAddressOf(bad), bad).toBeUndefined();
  });
});

describe('wasi:sockets/ip-name-lookup', () => {
  type Lookup = { resolveNextAddress(): unknown };
  const resolve = (imports: ComponentImports, name: string): Lookup => fn(imports, 'wasi:sockets/ip-name-lookup', 'resolveAddresses')(network(imports), name) as Lookup;

  it('a granted name resolves through the backend, and a connect to its address is granted under the name', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: [`LocalHost:${port}`] });
    const s0 = tcp(imports);
    // Before the lookup, the IP is granted by nothing.
    expect(payload(() => s0.startConnect(network(imports), v4(port)))).toBe('access-denied');
    const lookup = resolve(imports, 'LOCALHOST.');
    const addresses: unknown[] = [];
    for (let a = lookup.resolveNextAddress(); a !== undefined; a = lookup.resolveNextAddress()) addresses.push(a);
    expect(addresses).toContainEqual({ tag: 'ipv4', val: [127, 0, 0, 1] });
    const s = tcp(imports);
    s.startConnect(network(imports), v4(port));
    const [input, output] = s.finishConnect();
    output.blockingWriteAndFlush(enc('named'));
    expect(readAll(input, 5).text).toBe('named');
    // Another port of the same address is not granted by the name.
    expect(payload(() => tcp(imports).startConnect(network(imports), v4(port === 1 ? 2 : port - 1)))).toBe('access-denied');
    // An address no granted name resolved to is not granted.
    expect(payload(() => tcp(imports).startConnect(network(imports), v4(port, [127, 0, 0, 2])))).toBe('access-denied');
    // A name that is not granted is refused before it is resolved.
    expect(payload(() => resolve(imports, 'example.com'))).toBe('access-denied');
    disposeComponentImports(imports);
    const records = recorder.flush();
    const lookupRec = records.find((r) => r.syscall === 'wasi:sockets/resolve' && r.args.host === 'localhost')!;
    expect(lookupRec).toMatchObject({ result: 0 });
    expect(JSON.parse(dec(lookupRec.resultBytes!))).toContain('127.0.0.1');
    expect(records.filter((r) => r.syscall === 'wasi:sockets/tcp-connect').map((r) => [r.args.host, r.args.port, r.args.detail, r.result])).toEqual([
      ['127.0.0.1', port, undefined, -1],
      ['127.0.0.1', port, 'localhost', 0],
      ['127.0.0.1', port === 1 ? 2 : port - 1, 'localhost', -1],
      ['127.0.0.2', port, undefined, -1],
    ]);
    expect(records.filter((r) => r.syscall === 'wasi:sockets/tcp-send').map((r) => r.args)).toEqual([{ host: '127.0.0.1', port, size: 5, detail: 'localhost' }]);
    expect(records.find((r) => r.syscall === 'wasi:sockets/resolve' && r.args.host === 'example.com')).toMatchObject({ result: -1 });
  });

  it('under the capability policy, the grant of a name covers the addresses it resolved to (and nothing else)', () => {
    const caps = { net: [{ host: 'localhost', port }] };
    const { gate, recorder } = policyGate(JSON.stringify(capabilityPolicy(caps)));
    const imports = buildComponentImports({ gate, network: [`localhost:${port}`] });
    // Before the lookup the address carries no name: the policy grants it nothing.
    expect(payload(() => tcp(imports).startConnect(network(imports), v4(port)))).toBe('access-denied');
    const lookup = resolve(imports, 'localhost');
    while (lookup.resolveNextAddress() !== undefined);
    const s = tcp(imports);
    s.startConnect(network(imports), v4(port));
    const [input, output] = s.finishConnect();
    output.blockingWriteAndFlush(enc('caps'));
    expect(readAll(input, 4).text).toBe('caps');
    disposeComponentImports(imports);
    const records = recorder.flush();
    expect(records.filter((r) => r.syscall.startsWith('wasi:sockets/') && r.syscall !== 'wasi:sockets/local').map((r) => [r.syscall, r.args.detail, r.verdict, r.rule])).toEqual(
      expect.arrayContaining([
        ['wasi:sockets/tcp-connect', undefined, 'deny', null],
        ['wasi:sockets/resolve', undefined, 'allow', expect.stringMatching(/^granted\/net-/)],
        ['wasi:sockets/tcp-connect', 'localhost', 'allow', `granted/net-${port}-resolved`],
        ['wasi:sockets/tcp-send', 'localhost', 'allow', `granted/net-${port}-resolved`],
        ['wasi:sockets/tcp-receive', 'localhost', 'allow', `granted/net-${port}-resolved`],
      ]),
    );
  });

  it('an IP literal answers itself; an unresolvable name fails with name-unresolvable', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: ['10.1.2.3:80', 'no-such-host.invalid:80'] });
    expect(resolve(imports, '10.1.2.3').resolveNextAddress()).toEqual({ tag: 'ipv4', val: [10, 1, 2, 3] });
    expect(payload(() => resolve(imports, 'no-such-host.invalid'))).toBe('name-unresolvable');
    disposeComponentImports(imports);
    expect(egress(recorder.flush()).map((r) => [r.args.host, r.result, dec(r.resultBytes!)])).toEqual([
      ['10.1.2.3', 0, '["10.1.2.3"]'],
      ['no-such-host.invalid', 1, '{"code":"NET_FAILED","message":"name-unresolvable"}'],
    ]);
  });
});

describe('bind, listen and UDP stay refused', () => {
  it('cross the gate and fail with not-supported (or access-denied without a grant)', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const imports = buildComponentImports({ gate, network: ['0.0.0.0:8080'] });
    const s = tcp(imports);
    expect(payload(() => s.startBind(network(imports) as never, v4(8080, [0, 0, 0, 0])))).toBe('not-supported');
    expect(payload(() => s.startListen())).toBe('invalid-state');
    expect(payload(() => s.accept())).toBe('invalid-state');
    const udp = fn(imports, 'wasi:sockets/udp-create-socket', 'createUdpSocket')('ipv4') as { startBind(n: unknown, a: unknown): void; stream(r: unknown): void };
    expect(payload(() => udp.startBind(network(imports), v4(9, [0, 0, 0, 0])))).toBe('access-denied');
    expect(payload(() => udp.stream(v4(8080, [0, 0, 0, 0])))).toBe('not-supported');
    disposeComponentImports(imports);
    expect(egress(recorder.flush()).map((r) => [r.syscall, r.args.host, r.args.port, r.result])).toEqual([
      ['wasi:sockets/tcp-bind', '0.0.0.0', 8080, 1],
      // Listening and accepting cross the gate under their own names (the socket is never bound).
      ['wasi:sockets/tcp-listen', undefined, undefined, 1],
      ['wasi:sockets/tcp-accept', undefined, undefined, 1],
      ['wasi:sockets/udp-bind', '0.0.0.0', 9, -1],
      ['wasi:sockets/udp-send', '0.0.0.0', 8080, 1],
    ]);
  });
});

describe('replay of a socket session', () => {
  it('answers every socket call from the record after the server is gone, opening no socket', async () => {
    const server = await startEcho();
    const { gate, recorder } = policyGate(allowAllExcept());
    const grants = [`127.0.0.1:${server.port}`];
    const imports = buildComponentImports({ gate, network: grants });
    const original = session(imports, server.port);
    disposeComponentImports(imports);
    const records = recorder.flush();
    server.child.kill();
    await once(server.child, 'exit');

    const replay = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const host = replayHost(replay);
    const replayed = session(buildComponentImports({ gate: replay, network: grants, net: host.net }), server.port);
    expect(replay.finish()).toBeNull();
    expect(replay.sequence).toBe(records.length);
    expect(replayed).toEqual(original);

    // A guest that writes something else diverges at that write.
    const again = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const imports2 = buildComponentImports({ gate: again, network: grants, net: replayNet(again) });
    const net2 = network(imports2);
    const s = tcp(imports2);
    s.startConnect(net2, v4(server.port));
    const [, output] = s.finishConnect();
    s.localAddress();
    s.remoteAddress();
    expect(() => output.blockingWriteAndFlush(enc('pong!'))).toThrow(expect.objectContaining({ code: 'REPLAY_DIVERGED' }));
    expect(again.divergence).toMatchObject({ kind: 'arguments', expected: { syscall: 'wasi:sockets/tcp-send', args: { size: 4 } }, got: { args: { size: 5 } } });

    // Without the replay's backend, a replay refuses to reach the network.
    const bare = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
    const imports3 = buildComponentImports({ gate: bare, network: grants });
    const net3 = network(imports3);
    expect(() => tcp(imports3).startConnect(net3, v4(server.port))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});
