import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createIdentity, trustVector } from '@forgeone/common';
import { createTrustRoot, loadPublicKey, loadSigningKey, NodeCryptoProvider, signTrustRoot } from '@forgeone/crypto';
import type { SigningKey } from '@forgeone/crypto';
import { createTraceWriter, exportTrace } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_USAGE } from '../src/errors.js';
import { keygens, runIn, tempDir } from './helpers.js';

const provider = new NodeCryptoProvider();
const T0 = Date.UTC(2025, 0, 15, 12);

/** Run the CLI in-process with the full command tree (runCli). */
const run = runIn;

async function writeTrace(key: SigningKey, file: string): Promise<string> {
  const store = createMemoryStore();
  const w = await createTraceWriter({
    store,
    crypto: provider,
    signingKey: key,
    blockSize: 2,
    header: {
      traceId: 'run-1',
      containerId: 'ctr-1',
      identity: createIdentity({ subject: 'plugin:hello', tenant: 'acme', trust: trustVector('Verified') }),
      package: { name: 'hello', version: '1.0.0', hash: 'abc' },
      policy: { name: 'default', version: 1 },
      startTime: T0,
    },
  });
  const base = { allowed: true, result: 0, duration: 0.01, resultBytes: null } as const;
  await w.append([
    { ...base, seq: 0, syscall: 'wasi:filesystem/read', args: { path: '/data/a.txt' }, verdict: 'allow', rule: 'base/read', start: T0 + 1 },
    { ...base, seq: 1, syscall: 'wasi:sockets/tcp-connect', args: { host: 'example.com', port: 443 }, verdict: 'allow', rule: 'net/ok', start: T0 + 2 },
    { ...base, seq: 2, syscall: 'wasi:filesystem/read', args: { path: '/etc/passwd' }, verdict: 'deny', rule: 'base/no-etc', allowed: false, result: -1, start: T0 + 3 },
  ]);
  await w.stop({ endTime: T0 + 10, outcome: 'exited', exitCode: 0 });
  const text = await exportTrace(store, 'run-1');
  await writeFile(file, text);
  return text;
}

describe('forgeone trace', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let text: string;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    await keygens(dir, 'kernel', 'other', 'root', 'pkg');
    const kernel = await loadSigningKey(provider, join(dir, 'kernel.key'));
    text = await writeTrace(kernel, join(dir, 'run.dna'));
    // A trust root with a `kernel` role.
    const pub = async (n: string) => loadPublicKey(provider, join(dir, `${n}.key.pub`));
    const unsigned = createTrustRoot(provider, {
      expires: '2099-01-01T00:00:00Z',
      roles: { root: { keys: [await pub('root')], threshold: 1 }, packages: { keys: [await pub('pkg')], threshold: 1 }, kernel: { keys: [await pub('kernel')], threshold: 1 } },
    });
    const signed = signTrustRoot(provider, unsigned, await loadSigningKey(provider, join(dir, 'root.key')));
    await writeFile(join(dir, 'trust-root.json'), JSON.stringify(signed, null, 2));
  });
  afterAll(async () => cleanup());

  it('verify: with a key file and with a trust root role', async () => {
    const r = await run(dir, ['trace', 'verify', 'run.dna', '--key', 'kernel.key.pub', '--json']);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, traceId: 'run-1', records: 3, complete: true, integrity: 0.95, denials: 1 });
    const t = await run(dir, ['trace', 'verify', 'run.dna', '--trust-root', 'trust-root.json']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/verified\s+trace run-1 \(run.dna\)/);
    expect(t.stdout).toMatch(/records\s+3 in 2 blocks/);
  });

  it('verify: an untrusted key, a missing role, a missing file fail with a code', async () => {
    const r = await run(dir, ['trace', 'verify', 'run.dna', '--key', 'other.key.pub', '--json']);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ ok: false, code: 'STATE_CORRUPT', details: { issue: { code: 'CHECKPOINT_KEY_UNTRUSTED', line: 2 } } });
    const role = await run(dir, ['trace', 'verify', 'run.dna', '--trust-root', 'trust-root.json', '--role', 'auditors', '--json']);
    expect(role.code).toBe(1);
    expect(role.json()).toMatchObject({ code: 'TRUST_ROLE_UNKNOWN' });
    const missing = await run(dir, ['trace', 'verify', 'nope.dna', '--key', 'kernel.key.pub', '--json']);
    expect(missing.json()).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    expect((await run(dir, ['trace', 'verify', 'run.dna'])).code).toBe(EXIT_USAGE);
    expect((await run(dir, ['trace', 'verify', 'run.dna', '--key', 'kernel.key.pub', '--trust-root', 'trust-root.json'])).code).toBe(EXIT_USAGE);
  });

  it('verify: a tampered file is located', async () => {
    const lines = text.split('\n');
    const i = lines.findIndex((l) => l.includes('/etc/passwd'));
    lines[i] = lines[i]!.replace('"verdict":"deny"', '"verdict":"allow"');
    await writeFile(join(dir, 'tampered.dna'), lines.join('\n'));
    const r = await run(dir, ['trace', 'verify', 'tampered.dna', '--key', 'kernel.key.pub', '--json']);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ code: 'STATE_CORRUPT', details: { issue: { code: 'RECORD_ALTERED', line: i + 1, seq: 2 } } });
    const t = await run(dir, ['trace', 'verify', 'tampered.dna', '--key', 'kernel.key.pub']);
    expect(t.stderr).toContain(`error STATE_CORRUPT: tampered.dna: RECORD_ALTERED: line ${i + 1}: record 2`);
  });

  it('explain: text and JSON, verified or not', async () => {
    const t = await run(dir, ['trace', 'explain', 'run.dna']);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('Verdict:     SUSPICIOUS');
    expect(t.stdout).toContain('Signatures:  not checked');
    expect(t.stdout).toContain('base/no-etc [deny] ×1: rule base/no-etc');
    const j = await run(dir, ['trace', 'explain', 'run.dna', '--key', 'kernel.key.pub', '--json']);
    expect(j.json()).toMatchObject({ ok: true, traceId: 'run-1', verification: { status: 'verified' }, verdict: { level: 'suspicious' }, touched: { hosts: [{ target: 'example.com:443' }] } });
    const wrong = await run(dir, ['trace', 'explain', 'run.dna', '--key', 'other.key.pub', '--json']);
    expect(wrong.json()).toMatchObject({ verification: { status: 'failed' }, verdict: { level: 'compromised' } });
    await writeFile(join(dir, 'flags.json'), JSON.stringify([{ name: 'exfil', severity: 'high', detail: 'large upload' }]));
    const flagged = await run(dir, ['trace', 'explain', 'run.dna', '--flags', 'flags.json', '--json']);
    expect(flagged.json()).toMatchObject({ verdict: { level: 'compromised' }, flags: [{ name: 'exfil' }] });
    await writeFile(join(dir, 'bad-flags.json'), '[{"name":"x"}]');
    expect((await run(dir, ['trace', 'explain', 'run.dna', '--flags', 'bad-flags.json', '--json'])).json()).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    await writeFile(join(dir, 'junk.dna'), 'junk\n');
    expect((await run(dir, ['trace', 'explain', 'junk.dna', '--json'])).json()).toMatchObject({ ok: false, code: 'STATE_CORRUPT' });
    expect(await readFile(join(dir, 'run.dna'), 'utf8')).toBe(text);
  });
});
