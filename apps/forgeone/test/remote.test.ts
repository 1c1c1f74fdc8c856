// forgeone serve / token / remote commands against a real server on 127.0.0.1 with the real plugins.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NodeCryptoProvider, loadSigningKey, savePublicKey } from '@forgeone/crypto';
import { createApiServer, type ApiServer } from '@forgeone/interface';
import { createKernel, type Kernel } from '@forgeone/kernel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_FAILURE, EXIT_USAGE } from '../src/errors.js';
import { APP_DIR, REPO_ROOT, keygens, ok, runIn, tempDir } from './helpers.js';

const TRUST_ROOT = join(REPO_ROOT, '.forgeone-dev', 'trust-root.json');
const plugin = (name: string): string => join(REPO_ROOT, 'plugins', name, 'dist', `${name}.forgepkg`);
const provider = new NodeCryptoProvider();

let dir: string;
let cleanup: () => Promise<void>;
let kernel: Kernel;
let server: ApiServer;
let url: string;
let admin: string;
let reader: string;

/** Run a remote command with --server and a token. */
const remote = (token: string, ...args: string[]) => runIn(dir, ['--server', url, '--token', token, ...args]);

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await keygens(dir, 'tok', 'other');
  kernel = await createKernel({ trustRoot: TRUST_ROOT, home: join(dir, 'home'), cacheDir: join(dir, 'cache') });
  server = await createApiServer({ kernel, auth: { keys: [(await loadSigningKey(provider, join(dir, 'tok.key'))).toPublic()] }, port: 0 });
  ({ url } = await server.listen());
  admin = (await ok(dir, 'token', 'issue', '--role', 'admin', '--key', 'tok.key', '--subject', 'user:cli-admin')).token as string;
  reader = (await ok(dir, 'token', 'issue', '--role', 'reader', '--key', 'tok.key', '--ttl', '10m')).token as string;
});
afterAll(async () => {
  await server?.close();
  await kernel?.shutdown();
  await cleanup();
});

describe('forgeone token issue', () => {
  it('prints only the token without --json, and its claims with --json', async () => {
    const r = await runIn(dir, ['token', 'issue', '--role', 'auditor', '--key', 'tok.key', '--ttl', '12h', '--subject', 'user:carol']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    expect(r.stderr).toMatch(/role\s+auditor/);
    const j = await ok(dir, 'token', 'issue', '--role', 'operator', '--key', 'tok.key');
    expect(j).toMatchObject({ ok: true, role: 'operator', subject: 'user:unknown' });
    expect(Date.parse(j.expires as string) - Date.now()).toBeGreaterThan(3500_000);
  });

  it('refuses an unknown role or lifetime as usage errors, and a missing key as a failure', async () => {
    expect((await runIn(dir, ['token', 'issue', '--role', 'root', '--key', 'tok.key'])).code).toBe(EXIT_USAGE);
    expect((await runIn(dir, ['token', 'issue', '--role', 'admin', '--key', 'tok.key', '--ttl', '100d'])).code).toBe(EXIT_USAGE);
    expect((await runIn(dir, ['token', 'issue', '--role', 'admin', '--key', 'tok.key', '--ttl', '5y'])).code).toBe(EXIT_USAGE);
    const missing = await runIn(dir, ['token', 'issue', '--role', 'admin', '--key', 'nope.key', '--json']);
    expect(missing.code).toBe(EXIT_FAILURE);
    expect(missing.json()).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });
});

describe('remote commands', () => {
  it('lists containers as a table, or JSON', async () => {
    const empty = await remote(reader, 'containers', 'ls');
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('(none)\n');
    const j = await remote(reader, 'containers', 'ls', '--json');
    expect(j.json()).toMatchObject({ ok: true, containers: [] });
  });

  it('launches a package file, waits for it, and shows it in the table', async () => {
    const r = await remote(admin, 'launch', plugin('hello'), '--input', 'CLI', '--wait', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const doc = r.json() as { uploaded: boolean; digest: string; report: { outcome: unknown }; container: { id: string; status: string } };
    expect(doc.uploaded).toBe(true);
    expect(doc.report.outcome).toEqual({ ok: true, value: 'Hello, CLI!' });
    // By digest this time: nothing is uploaded again.
    const again = await remote(admin, 'launch', doc.digest, '--input', 'again', '--wait');
    expect(again.stdout).toMatch(/outcome\s+Hello, again!/);
    const table = await remote(reader, 'containers', 'ls');
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+PACKAGE\s+STATUS\s+CALLS\s+DENIED\s+UPDATED$/);
    expect(lines.find((l) => l.startsWith(doc.container.id))).toMatch(/hello@\S+\s+stopped\s+\d+\s+0\s+\d{4}-/);
    expect((await remote(reader, 'packages', 'ls', '--json')).json()).toMatchObject({ packages: [{ name: 'hello', uploadedBy: 'api:user:cli-admin' }] });
  });

  it('sees rogue quarantined, releases it, stops it, and verifies the audit log', async () => {
    const launched = await remote(admin, 'launch', plugin('rogue'), '--input', 'all', '--cpu-budget-ms', '30000', '--json');
    expect(launched.code, launched.stdout).toBe(0);
    const id = (launched.json() as { container: { id: string } }).container.id;
    let records: { containerId: string; state: string }[] = [];
    const deadline = Date.now() + 120_000;
    while (!records.some((r) => r.containerId === id) && Date.now() < deadline) {
      records = ((await remote(admin, 'quarantine', 'ls', '--json')).json() as { records: typeof records }).records;
      if (!records.some((r) => r.containerId === id)) await new Promise((r) => setTimeout(r, 250));
    }
    expect(records.find((r) => r.containerId === id)?.state).toBe('active');
    const text = await remote(admin, 'quarantine', 'ls');
    expect(text.stdout).toMatch(new RegExp(`^qrn_\\S+\\s+${id}\\s+active\\s+`, 'm'));
    const released = await remote(admin, 'quarantine', 'release', id, '--json');
    expect(released.code, released.stdout).toBe(0);
    expect(released.json()).toMatchObject({ ok: true, containerId: id, record: { state: 'released' } });
    const stopped = await remote(admin, 'containers', 'stop', id, '--grace', '100', '--json');
    expect(stopped.code, stopped.stdout).toBe(0);
    expect(['stopped', 'failed']).toContain((stopped.json() as { container: { status: string } }).container.status);

    const v = await remote(admin, 'audit', 'verify', '--json');
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.json()).toMatchObject({ ok: true, kind: 'remote', keys: 'server', serverVerification: true });
    expect(v.stderr).toContain('verifying against the kernel key the server names');
    await savePublicKey(kernel.kernelKey, join(dir, 'kernel.key.pub'), { overwrite: true });
    const pinned = await remote(admin, 'audit', 'verify', '--key', 'kernel.key.pub', '--json');
    expect(pinned.json()).toMatchObject({ ok: true, keys: 'local' });
    const wrong = await remote(admin, 'audit', 'verify', '--key', 'other.key.pub', '--json');
    expect(wrong.code).toBe(EXIT_FAILURE);
    expect(wrong.json()).toMatchObject({ ok: false, code: 'STATE_CORRUPT', details: { issue: { code: 'CHECKPOINT_KEY_UNTRUSTED' } } });
  });

  it('reports what the server refuses with its code, and a missing server as a usage error', async () => {
    const forbidden = await remote(reader, 'quarantine', 'release', 'ctr_01ABCDEF', '--json');
    expect(forbidden.code).toBe(EXIT_FAILURE);
    expect(forbidden.json()).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    const bad = await remote('not.a.token', 'containers', 'ls');
    expect(bad.code).toBe(EXIT_FAILURE);
    expect(bad.stderr).toMatch(/^error AUTH_INVALID: /);
    expect((await runIn(dir, ['containers', 'ls'])).code).toBe(EXIT_USAGE);
    expect((await runIn(dir, ['--server', 'ftp://x', '--token', 't', 'containers', 'ls'])).code).toBe(EXIT_USAGE);
    expect((await runIn(dir, ['audit', 'verify'])).code).toBe(EXIT_USAGE);
    const env = await runIn(dir, ['containers', 'ls', '--json'], { env: { FORGEONE_SERVER: url, FORGEONE_TOKEN: reader } });
    expect(env.json()).toMatchObject({ ok: true });
  });
});

describe('forgeone serve', () => {
  it('boots a kernel, serves it until SIGTERM, and takes tokens from the key it keeps in its home', async () => {
    const bin = join(APP_DIR, 'dist', 'cli.js');
    if (!existsSync(bin)) throw new Error(`${bin} is missing: build first`);
    const home = join(dir, 'serve-home');
    const child = spawn(process.execPath, [bin, 'serve', '--trust-root', TRUST_ROOT, '--home', home, '--port', '0', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const doc = await new Promise<{ url: string; tokenKeyFile: string; boot: { mode: string } }>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          try {
            resolve(JSON.parse(out));
          } catch {
            // not whole yet
          }
        });
        void exited.then((code) => reject(new Error(`serve exited ${code}: ${out} ${err}`)));
      });
      expect(doc.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(doc.boot.mode).toBe('normal');
      expect(doc.tokenKeyFile).toBe(join(home, 'api-token.key'));
      expect((await fetch(`${doc.url}/v1/health`)).status).toBe(200);
      const token = (await ok(dir, 'token', 'issue', '--role', 'reader', '--key', doc.tokenKeyFile)).token as string;
      const r = await runIn(dir, ['--server', doc.url, '--token', token, 'containers', 'ls', '--json']);
      expect(r.json()).toMatchObject({ ok: true, containers: [] });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(err).not.toMatch(/error/i);
  });
});
