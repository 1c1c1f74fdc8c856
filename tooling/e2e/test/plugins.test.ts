// The example plugins end to end, from their signed packages: verified against the dev trust root, their
// requested capabilities granted, run in worker sandboxes under a kernel policy. `rogue` is refused, killed
// and capped, each with its own code, while `hello` keeps running beside it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isForgeError } from '@forgeone/common';
import { NodeCryptoProvider, createPackageVerifier, parseTrustRoot, type PackageVerifier } from '@forgeone/crypto';
import {
  componentBridgeHandlers,
  createSandboxPool,
  decodeBlock,
  parseNetGrant,
  pluginCapabilities,
  prepareComponentModules,
  type CallRecord,
  type Capabilities,
  type ComponentBridgeOptions,
  type ComponentRunnerData,
  type PreparedComponentModules,
  type RunOutcome,
  type SandboxPool,
  type SandboxedContainer,
} from '@forgeone/execution';
import { createMemoryStore, type Store } from '@forgeone/store';
import { parsePolicy } from '@forgeone/trust';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const RUNNER = pathToFileURL(join(here, 'fixtures/component-runner.mjs')).href;
const MAX_MEMORY = 64 << 20;

/**
 * The operator's policy for plugins: logging, kv under canonical keys only (a key shaped like a path
 * escape carries no `path` and matches nothing), fetches to the loopback test servers only. Everything
 * else is denied. The capabilities of each plugin are laid over it: a call needs both.
 */
const KERNEL_POLICY = `
apiVersion: forgeone.policy/v1
name: e2e-plugins
version: 1
defaultAction: deny
root: plugins
nodes:
  plugins:
    rules:
      - { id: log, action: allow, syscalls: ["forgeone:log/write"] }
      - { id: kv, action: allow, syscalls: ["forgeone:kv/*"], args: { path: { match: ["/**"] } } }
      - { id: fetch-loopback, action: allow, syscalls: ["forgeone:http/fetch"], args: { host: { in: ["127.0.0.1"] } } }
      - { id: basics, action: allow, syscalls: ["forgeone:time/now", "forgeone:identity/get", "forgeone:info/get"] }
`;

interface Plugin {
  readonly name: string;
  readonly component: Uint8Array;
  readonly capabilities: Capabilities;
  readonly compiled: PreparedComponentModules;
}

let verifier: PackageVerifier;
let pool: SandboxPool;
let store: Store;
let cacheDir: string;
const plugins = new Map<string, Plugin>();

function packageBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(ROOT, 'plugins', name, 'dist', `${name}.forgepkg`)));
}

/** Verify a package and read its component and requested capabilities; throws the verifier's ForgeError. */
function openPlugin(bytes: Uint8Array): { name: string; component: Uint8Array; capabilities: Capabilities } {
  const verified = verifier.verify(bytes);
  if (!verified.ok) throw verified.error;
  const { manifest, files } = verified.value;
  const component = files.get(manifest.entry);
  if (component === undefined) throw new Error(`${manifest.name}: no entry file`);
  return { name: manifest.name, component, capabilities: pluginCapabilities(manifest.metadata) };
}

beforeAll(async () => {
  const provider = new NodeCryptoProvider();
  const trustRoot = parseTrustRoot(provider, JSON.parse(readFileSync(join(ROOT, '.forgeone-dev/trust-root.json'), 'utf8')) as unknown);
  verifier = createPackageVerifier({ provider, trustRoot });
  cacheDir = mkdtempSync(join(tmpdir(), 'forgeone-e2e-'));
  store = createMemoryStore();
  pool = createSandboxPool({ size: 2, maxContainers: 8, preload: [RUNNER], limits: { maxMemoryBytes: MAX_MEMORY, cpuPerCallMs: 10_000 } });
  // The kernel transpiles and compiles each plugin once (memory limit written in); containers get the modules.
  for (const name of ['hello', 'kv-counter', 'fetcher', 'rogue']) {
    const p = openPlugin(packageBytes(name));
    const compiled = await prepareComponentModules(p.component, { maxMemoryBytes: MAX_MEMORY, cacheDir });
    plugins.set(name, { ...p, compiled });
  }
  await pool.ready();
}, 240_000);

afterAll(async () => {
  await pool?.close();
  await store?.close();
  if (cacheDir !== undefined) rmSync(cacheDir, { recursive: true, force: true });
});

interface Started {
  readonly c: SandboxedContainer;
  readonly records: CallRecord[];
  readonly logs: string[];
}

function startPlugin(
  name: string,
  opts: { input?: string; serve?: boolean; capabilities?: Capabilities; bridge?: ComponentBridgeOptions; limits?: { cpuPerCallMs?: number } } = {},
): Started {
  const p = plugins.get(name)!;
  const records: CallRecord[] = [];
  const logs: string[] = [];
  const data: ComponentRunnerData = {
    bytes: p.component,
    compiled: p.compiled,
    cacheDir,
    capabilities: opts.capabilities ?? p.capabilities,
    identity: { subject: `plugin:${name}` },
    ...(opts.serve === true ? { serve: true } : { input: opts.input ?? '' }),
  };
  const c: SandboxedContainer = pool.start({
    runner: RUNNER,
    data,
    policy: { document: parsePolicy(KERNEL_POLICY).policy, identity: { subject: `plugin:${name}` } },
    handlers: componentBridgeHandlers({ log: (level, message) => logs.push(`${level} ${message}`), ...opts.bridge }),
    onRecords: (b) => records.push(...decodeBlock(b, c.syscalls)),
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
  });
  return { c, records, logs };
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

describe('the example plugins from their signed packages', () => {
  it('every package verifies against the dev trust root and carries its requested capabilities', () => {
    expect(plugins.get('hello')!.capabilities).toMatchObject({ log: true, kv: false, net: [] });
    expect(plugins.get('kv-counter')!.capabilities).toMatchObject({ log: true, kv: true });
    expect(plugins.get('fetcher')!.capabilities.net).toEqual([
      { host: 'example.com', port: 443 },
      { host: '*.example.com', port: 443 },
    ]);
    expect(plugins.get('rogue')!.capabilities).toMatchObject({ log: true, kv: true, net: [{ host: 'api.example.com', port: 443 }] });
  });

  it('a tampered package is refused by the verifier before anything runs', () => {
    const bytes = packageBytes('hello');
    bytes[bytes.length - 1000]! ^= 0x01; // inside the component
    const before = pool.active;
    let code = '';
    try {
      openPlugin(bytes);
    } catch (e) {
      code = isForgeError(e) ? e.code : String(e);
    }
    expect(['PKG_HASH_MISMATCH', 'PKG_SIGNATURE_INVALID']).toContain(code);
    expect(pool.active).toBe(before);
  });

  it('hello: returns its greeting, the log line arrives through the bridge, the trace shows the allowed log call', async () => {
    const { c, records, logs } = startPlugin('hello', { input: 'ForgeOne' });
    const r = await c.result;
    expect(r.value).toEqual({ ok: true, value: 'Hello, ForgeOne!' } satisfies RunOutcome);
    expect(logs).toEqual(['info Hello, ForgeOne!']);
    expect(records.map((x) => [x.syscall, x.verdict, x.allowed, x.rule])).toEqual([['forgeone:log/write', 'allow', true, 'plugins/log']]);
  });

  it('kv-counter: 1, 2, 3 across three runs against a real store namespace; another namespace starts over', async () => {
    const kv = await store.kv('plugin/kv-counter');
    const values: unknown[] = [];
    for (let i = 0; i < 3; i++) values.push((await startPlugin('kv-counter', { bridge: { kv } }).c.result).value);
    expect(values).toEqual([1, 2, 3].map((n) => ({ ok: true, value: String(n) })));
    expect(new TextDecoder().decode(await kv.get('counter'))).toBe('3');
    const other = await store.kv('plugin/kv-counter-2');
    const { c, records } = startPlugin('kv-counter', { bridge: { kv: other } });
    expect((await c.result).value).toEqual({ ok: true, value: '1' });
    expect(records.map((x) => [x.syscall, x.args.path, x.allowed])).toEqual([
      ['forgeone:kv/get', '/counter', true],
      ['forgeone:kv/set', '/counter', true],
      ['forgeone:log/write', undefined, true],
    ]);
  });

  describe('fetcher against real loopback servers', () => {
    let granted: Server;
    let other: Server;
    let otherHits = 0;
    const port = (s: Server): number => (s.address() as AddressInfo).port;

    beforeAll(async () => {
      granted = createServer((req, res) => res.end(`pong ${req.url ?? ''}`));
      other = createServer((_req, res) => {
        otherHits++;
        res.end('should never be reached');
      });
      await Promise.all([granted, other].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    });

    afterAll(async () => {
      await Promise.all([granted, other].map((s) => new Promise((r) => s.close(r))));
    });

    it('fetches from the granted host:port; a host:port not granted is refused with POLICY_DENIED', async () => {
      const fetcher = plugins.get('fetcher')!;
      // The operator grants the test server on top of what the manifest asks for.
      const capabilities: Capabilities = { ...fetcher.capabilities, net: [...(fetcher.capabilities.net ?? []), parseNetGrant(`127.0.0.1:${port(granted)}`)] };
      const { c, records, logs } = startPlugin('fetcher', { serve: true, capabilities });
      await c.serving;
      const ok = (await c.call('run', `http://127.0.0.1:${port(granted)}/ping`)) as RunOutcome;
      expect(ok).toEqual({ ok: true, value: JSON.stringify({ url: `http://127.0.0.1:${port(granted)}/ping`, status: 200, bytes: 10 }) });
      // Loopback is allowed by the kernel, but this port is not granted.
      const notGranted = (await c.call('run', `http://127.0.0.1:${port(other)}/`)) as RunOutcome;
      expect(notGranted).toMatchObject({ ok: false, error: expect.stringMatching(/POLICY_DENIED/) });
      // Requested by the manifest, but the kernel policy does not allow it.
      const notAllowed = (await c.call('run', 'https://example.com/')) as RunOutcome;
      expect(notAllowed).toMatchObject({ ok: false, error: expect.stringMatching(/POLICY_DENIED/) });
      await c.close();
      expect(otherHits).toBe(0);
      const fetches = records.filter((x) => x.syscall === 'forgeone:http/fetch');
      expect(fetches.map((x) => [x.args.host, x.args.port, x.verdict])).toEqual([
        ['127.0.0.1', port(granted), 'allow'],
        ['127.0.0.1', port(other), 'deny'],
        ['example.com', 443, 'deny'],
      ]);
      expect(new TextDecoder().decode(fetches[0]!.resultBytes!)).toContain('pong /ping');
      expect(logs.some((l) => l.startsWith('warn fetch https://example.com/ refused: POLICY_DENIED'))).toBe(true);
    });
  });

  describe('rogue is contained while hello keeps running', () => {
    const REFUSED = ['passwd', 'write-outside', 'dotdot', 'symlink', 'net'] as const;

    it('every attempt is refused, killed or capped with its own code; hello, started alongside, completes', async () => {
      const kvBefore = await (await store.kv('plugin/kv-counter')).list();
      const rogueKv = await store.kv('plugin/rogue');
      const hello = startPlugin('hello', { serve: true });
      await hello.c.serving;
      expect(await hello.c.call('run', 'before')).toEqual({ ok: true, value: 'Hello, before!' });

      // The two the kernel must stop run beside hello; the rest are refused at the gate.
      const loop = startPlugin('rogue', { input: 'loop', limits: { cpuPerCallMs: 1_500 }, bridge: { kv: rogueKv } });
      const alloc = startPlugin('rogue', { input: 'alloc', bridge: { kv: rogueKv } });
      expect(await hello.c.call('run', 'during')).toEqual({ ok: true, value: 'Hello, during!' });

      const refused: Record<string, { outcome: string; detail: string }> = {};
      const traces: CallRecord[] = [];
      for (const attempt of REFUSED) {
        const r = startPlugin('rogue', { input: attempt, bridge: { kv: rogueKv } });
        const out = (await r.c.result).value as RunOutcome;
        expect(out.ok).toBe(true);
        Object.assign(refused, JSON.parse((out as { value: string }).value) as typeof refused);
        traces.push(...r.records);
      }
      for (const attempt of REFUSED) {
        expect(refused[attempt]?.outcome, `${attempt}: ${refused[attempt]?.detail}`).toBe('refused');
        // Each try of the attempt (`what -> CODE: message`) was refused by the policy.
        const tries = refused[attempt]!.detail.split('; ').filter((t) => t.includes(' -> '));
        expect(tries.length).toBeGreaterThan(0);
        for (const t of tries) expect(t, attempt).toMatch(/ -> POLICY_DENIED: /);
      }
      expect(refused['passwd']!.detail).toContain('no ambient file API');
      // The gate recorded each refused try as a denial; only log lines were allowed.
      const hostCalls = traces.filter((x) => x.syscall !== 'forgeone:log/write');
      expect(hostCalls.length).toBe(15);
      for (const x of hostCalls) expect([x.syscall, x.verdict, x.allowed]).toEqual([x.syscall, 'deny', false]);
      expect(traces.filter((x) => x.syscall === 'forgeone:log/write').every((x) => x.allowed)).toBe(true);

      const [loopFailure, allocFailure] = await Promise.all([failure(loop.c.result), failure(alloc.c.result)]);
      expect(loopFailure.code).toBe('SANDBOX_CPU_EXCEEDED');
      expect(allocFailure.code).toBe('SANDBOX_MEMORY_EXCEEDED');
      // Each logged its attempt before the kernel stopped it.
      expect(loop.logs).toEqual(['warn rogue: trying loop']);
      expect(alloc.logs[0]).toBe('warn rogue: trying alloc');

      // hello is still serving, answers, and ends normally.
      expect(await hello.c.call('run', 'after')).toEqual({ ok: true, value: 'Hello, after!' });
      await hello.c.close();
      expect(hello.logs).toEqual(['info Hello, before!', 'info Hello, during!', 'info Hello, after!']);
      // Nothing was written anywhere: not in rogue's namespace, not in another plugin's.
      expect(await rogueKv.list()).toEqual([]);
      expect(await (await store.kv('plugin/kv-counter')).list()).toEqual(kvBefore);
    });
  });
});
