// The network backend against real sockets: a TCP echo server on the loopback interface, in a child
// process (the backend's calls block the test's thread while they wait, so the server cannot live here).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetBackend, netFailureOf, type NetBackend } from '../../src/component/net.js';

const ECHO = `
const net = require('node:net');
const server = net.createServer((s) => {
  s.on('data', (b) => { const t = b.toString(); if (t === 'bye') s.end('later'); else s.write(t.toUpperCase()); });
  s.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

let echo: ChildProcess;
let port: number;
let net: NetBackend;

beforeAll(async () => {
  echo = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  [port] = (await once(echo, 'message')) as [number];
  net = createNetBackend({ timeoutMs: 5_000 });
});
afterAll(async () => {
  await net.dispose();
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

/** Read until `n` bytes came or the stream ended. */
function readAll(id: number, n: number): string {
  let out = '';
  while (out.length < n) {
    if (!net.waitReadable(id, 2_000)) break;
    const b = net.read(id, 1024);
    if (b === null) break;
    out += Buffer.from(b).toString();
  }
  return out;
}

describe('createNetBackend', () => {
  it('connects, sends, waits for and reads the answer, and sees the end of the stream', () => {
    const c = net.connect('127.0.0.1', port);
    expect(c.remote).toEqual({ address: '127.0.0.1', port, family: 'ipv4' });
    expect(c.local.address).toBe('127.0.0.1');
    expect(net.read(c.id, 16)).toEqual(new Uint8Array(0)); // nothing yet, and no waiting
    net.write(c.id, new TextEncoder().encode('ping'));
    expect(readAll(c.id, 4)).toBe('PING');
    net.write(c.id, new TextEncoder().encode('bye'));
    expect(readAll(c.id, 5)).toBe('later');
    expect(net.waitReadable(c.id, 2_000)).toBe(true);
    expect(net.read(c.id, 16)).toBeNull(); // the peer closed
    net.close(c.id);
    expect(() => net.read(c.id, 16)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });

  it('reads at most what is asked, the rest stays buffered', () => {
    const c = net.connect('127.0.0.1', port);
    net.write(c.id, new TextEncoder().encode('abcdefgh'));
    expect(net.waitReadable(c.id, 2_000)).toBe(true);
    let got = '';
    while (got.length < 8) {
      const b = net.read(c.id, 3);
      expect(b!.length).toBeLessThanOrEqual(3);
      got += Buffer.from(b!).toString();
      if (b!.length === 0) net.waitReadable(c.id, 1_000);
    }
    expect(got).toBe('ABCDEFGH');
    net.close(c.id);
  });

  it('waitReadable gives up after its time when nothing comes', () => {
    const c = net.connect('127.0.0.1', port);
    expect(net.waitReadable(c.id, 50)).toBe(false);
    net.close(c.id);
  });

  it('reports a refused connection and an unresolvable name with their reasons', async () => {
    const p = await closedPort();
    let e: unknown;
    try {
      net.connect('127.0.0.1', p);
    } catch (x) {
      e = x;
    }
    expect(e).toMatchObject({ code: 'NET_FAILED' });
    expect(netFailureOf(e)).toBe('connection-refused');
    let r: unknown;
    try {
      net.resolve('no-such-host.invalid', 3_000);
    } catch (x) {
      r = x;
    }
    expect(r).toMatchObject({ code: 'NET_FAILED' });
    expect(['name-unresolvable', 'temporary-resolver-failure']).toContain(netFailureOf(r));
    expect(net.resolve('localhost')).toContain('127.0.0.1');
  });

  it('after dispose every call is refused', async () => {
    const other = createNetBackend();
    const c = other.connect('127.0.0.1', port);
    await other.dispose();
    expect(() => other.read(c.id, 1)).toThrow(expect.objectContaining({ code: 'NET_FAILED' }));
  });
});
