// A real guest on wasi:sockets: the hand-written WASI command component of fixtures/tcp-client.wat connects
// to 127.0.0.1:<port> (its argument), writes "ping", reads the echo and prints it. Run in place, replayed
// after the server is gone, refused without a grant, and run on builtin:component in a sandbox worker
// under the capability policy.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildComponentImports, disposeComponentImports, runComponent, transpileComponent, type LoadedComponent } from '../../src/component/index.js';
import { decodeBlock, type CallRecord } from '../../src/gate/index.js';
import { replayComponent } from '../../src/replay/index.js';
import { createWasmHost, type WasmHost } from '../../src/runtime/index.js';
import { buildWorker } from '../sandbox/helpers.js';
import { tempDir } from '../wasi/helpers.js';
import { allowAllExcept, policyGate, watComponent } from './helpers.js';

const ECHO = `
const net = require('node:net');
const server = net.createServer((s) => { s.on('data', (b) => s.write(b)); s.on('error', () => {}); });
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

async function startEcho(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [port] = (await once(child, 'message')) as [number];
  return { child, port };
}

const here = fileURLToPath(new URL('.', import.meta.url));
const text = (chunks: readonly Uint8Array[]): string => chunks.map((c) => new TextDecoder().decode(c)).join('');

let bytes: Uint8Array;
let loaded: LoadedComponent;
let echo: { child: ChildProcess; port: number };

beforeAll(async () => {
  bytes = await watComponent(await readFile(join(here, 'fixtures', 'tcp-client.wat'), 'utf8'));
  loaded = await transpileComponent(bytes);
  echo = await startEcho();
}, 120_000);
afterAll(() => {
  echo.child.kill();
});

/** Run the client in place against `port` with `network` granted. */
function runHere(port: number, network: string[], ...deny: string[]): { outcome: ReturnType<typeof runComponent>; stdout: string; records: CallRecord[] } {
  const { gate, recorder } = policyGate(allowAllExcept(...deny));
  const out: Uint8Array[] = [];
  const imports = buildComponentImports({ gate, args: ['tcp-client', String(port)], network, stdout: (b) => out.push(b.slice()) });
  try {
    const outcome = runComponent(loaded, imports, { input: '' });
    return { outcome, stdout: text(out), records: recorder.flush() };
  } finally {
    disposeComponentImports(imports);
  }
}

describe('a WASI command component using wasi:sockets/tcp', () => {
  it('connects, writes "ping", prints the echo; the record holds the connect, the bytes and the drops', () => {
    const { outcome, stdout, records } = runHere(echo.port, [`127.0.0.1:${echo.port}`]);
    expect(outcome).toEqual({ ok: true, value: '', exitCode: 0 });
    expect(stdout).toBe('ping\n');
    const net = records.filter((r) => r.syscall.startsWith('wasi:sockets/') && r.syscall !== 'wasi:sockets/local');
    expect(net.map((r) => [r.syscall, r.args.host, r.args.port, r.result])).toEqual([
      ['wasi:sockets/tcp-connect', '127.0.0.1', echo.port, 0],
      ['wasi:sockets/tcp-send', '127.0.0.1', echo.port, 0],
      ...net.slice(2).map(() => ['wasi:sockets/tcp-receive', '127.0.0.1', echo.port, 0]),
    ]);
    expect(net.slice(2).map((r) => new TextDecoder().decode(r.resultBytes!)).join('')).toBe('ping');
    expect(records.filter((r) => r.syscall === 'wasi:io/drop').map((r) => r.args.detail)).toEqual(['stdout', 'tcp-input-stream', 'tcp-output-stream', 'tcp-socket', 'network']);
  });

  it('replays identically from its record after the server is gone', async () => {
    const server = await startEcho();
    const { records, stdout } = runHere(server.port, [`127.0.0.1:${server.port}`]);
    expect(stdout).toBe('ping\n');
    server.child.kill();
    await once(server.child, 'exit');
    const report = await replayComponent({ records, component: loaded, export: 'wasi:cli/run', network: [`127.0.0.1:${server.port}`] });
    expect(report.divergence).toBeNull();
    expect(report.identical).toBe(true);
    expect(report.outcome).toEqual({ ok: true, value: '', exitCode: 0 });
    expect(new TextDecoder().decode(report.stdout)).toBe('ping\n');
  });

  it('without a grant the connect is refused: access-denied, the guest exits 3, nothing was sent', () => {
    const { outcome, records } = runHere(echo.port, []);
    expect(outcome).toMatchObject({ ok: false, exitCode: 3 });
    expect(records.filter((r) => r.syscall.startsWith('wasi:sockets/') && r.syscall !== 'wasi:sockets/local').map((r) => [r.syscall, r.args.host, r.args.port, r.result])).toEqual([['wasi:sockets/tcp-connect', '127.0.0.1', echo.port, -1]]);
  });

  it('a refused connection is finish-connect\'s connection-refused (exit 40 + its index, 54)', async () => {
    const server = await startEcho();
    server.child.kill();
    await once(server.child, 'exit');
    const { outcome } = runHere(server.port, [`127.0.0.1:${server.port}`]);
    expect(outcome).toMatchObject({ ok: false, exitCode: 54 });
  });
});

describe('the socket guest on builtin:component', () => {
  let built: Awaited<ReturnType<typeof buildWorker>>;
  let host: WasmHost;
  let cache: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    cache = tempDir('forgeone-sockets-');
    built = await buildWorker();
    host = createWasmHost({ poolOptions: { size: 1, maxContainers: 2, workerUrl: built.url }, cacheDir: cache.dir });
    await host.pool.ready();
  }, 120_000);

  afterAll(async () => {
    await host?.close();
    built?.cleanup();
    cache?.cleanup();
  });

  it('runs in a sandbox worker with the network granted by its capabilities (the capability policy allows each call)', async () => {
    const records: CallRecord[] = [];
    const r = await host.run({
      module: bytes,
      capabilities: { args: ['tcp-client', String(echo.port)], stdio: true, net: [{ host: '127.0.0.1', port: echo.port }] },
      onRecords: (b, syscalls) => records.push(...decodeBlock(b, syscalls)),
    });
    expect(r.exitCode).toBe(0);
    expect(new TextDecoder().decode(r.stdout)).toBe('ping\n');
    const net = records.filter((x) => x.syscall.startsWith('wasi:sockets/') && x.syscall !== 'wasi:sockets/local');
    expect(net.length).toBeGreaterThanOrEqual(3);
    expect(net.every((x) => x.allowed && x.rule === `granted/net-${echo.port}`)).toBe(true);
  });

  it('without the grant the capability policy refuses the connect', async () => {
    const records: CallRecord[] = [];
    const r = await host.run({
      module: bytes,
      capabilities: { args: ['tcp-client', String(echo.port)], stdio: true },
      onRecords: (b, syscalls) => records.push(...decodeBlock(b, syscalls)),
    });
    expect(r.exitCode).toBe(3);
    expect(records.filter((x) => x.syscall.startsWith('wasi:sockets/') && x.syscall !== 'wasi:sockets/local')).toMatchObject([{ syscall: 'wasi:sockets/tcp-connect', allowed: false, verdict: 'deny' }]);
  });
});
