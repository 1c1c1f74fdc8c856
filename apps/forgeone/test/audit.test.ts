import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeCryptoProvider, loadSigningKey } from '@forgeone/crypto';
import { createAuditLog } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_USAGE } from '../src/errors.js';
import { keygens, runIn, tempDir } from './helpers.js';

const provider = new NodeCryptoProvider();
const T0 = Date.UTC(2025, 0, 15, 12);

/** Run the CLI in-process with the full command tree (runCli). */
const run = runIn;

describe('forgeone audit verify', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let logText: string;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    await keygens(dir, 'kernel', 'other');
    const key = await loadSigningKey(provider, join(dir, 'kernel.key'));
    const log = await createAuditLog({ store: createMemoryStore(), crypto: provider, signingKey: key });
    await log.append({ kind: 'boot', subject: 'kernel', actor: 'kernel', time: T0 });
    await log.append({ kind: 'container.launched', subject: 'ctr-1', actor: 'user:alice', time: T0 + 1 });
    await log.append({ kind: 'quarantine', subject: 'ctr-1', actor: 'kernel', time: T0 + 2, details: { rule: 'base/no-etc' } });
    await log.append({ kind: 'termination', subject: 'ctr-1', actor: 'user:bob', time: T0 + 3 });
    logText = await log.exportLog();
    await writeFile(join(dir, 'audit.log'), logText);
    await writeFile(join(dir, 'evidence.json'), JSON.stringify(await log.exportEvidence({ subject: 'ctr-1', kind: ['quarantine', 'termination'] })));
  });
  afterAll(async () => cleanup());

  it('verifies a whole log export', async () => {
    const r = await run(dir, ['audit', 'verify', 'audit.log', '--key', 'kernel.key.pub', '--json']);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, kind: 'log', logId: 'audit', events: 4, checkpoints: 5 });
    const t = await run(dir, ['audit', 'verify', 'audit.log', '--key', 'kernel.key.pub']);
    expect(t.stdout).toMatch(/verified\s+audit log audit \(audit.log\)/);
  });

  it('verifies an evidence bundle and lists its events', async () => {
    const r = await run(dir, ['audit', 'verify', 'evidence.json', '--key', 'kernel.key.pub', '--json']);
    expect(r.code).toBe(0);
    const doc = r.json() as { kind: string; events: { seq: number; kind: string }[]; logLength: number };
    expect(doc.kind).toBe('evidence');
    expect(doc.events.map((e) => [e.seq, e.kind])).toEqual([
      [2, 'quarantine'],
      [3, 'termination'],
    ]);
    expect(doc.logLength).toBe(4);
    const t = await run(dir, ['audit', 'verify', 'evidence.json', '--key', 'kernel.key.pub']);
    expect(t.stdout).toContain('#2 2025-01-15T12:00:00.002Z quarantine ctr-1 by kernel');
  });

  it('fails with the location of tampering, an untrusted key, or no key', async () => {
    const lines = logText.split('\n');
    const i = lines.findIndex((l) => l.includes('user:bob'));
    lines[i] = lines[i]!.replace('user:bob', 'user:eve');
    await writeFile(join(dir, 'tampered.log'), lines.join('\n'));
    const r = await run(dir, ['audit', 'verify', 'tampered.log', '--key', 'kernel.key.pub', '--json']);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ ok: false, code: 'STATE_CORRUPT', details: { issue: { code: 'RECORD_ALTERED', line: i + 1, seq: 3 } } });
    const bundle = JSON.parse(await readFile(join(dir, 'evidence.json'), 'utf8')) as { items: { event: string }[] };
    bundle.items[0]!.event = bundle.items[0]!.event.replace('base/no-etc', 'base/other');
    await writeFile(join(dir, 'tampered.json'), JSON.stringify(bundle));
    const e = await run(dir, ['audit', 'verify', 'tampered.json', '--key', 'kernel.key.pub', '--json']);
    expect(e.json()).toMatchObject({ ok: false, code: 'STATE_CORRUPT', details: { issue: { code: 'RECORD_ALTERED', item: 0, seq: 2 } } });
    const u = await run(dir, ['audit', 'verify', 'audit.log', '--key', 'other.key.pub', '--json']);
    expect(u.json()).toMatchObject({ ok: false, details: { issue: { code: 'CHECKPOINT_KEY_UNTRUSTED' } } });
    expect((await run(dir, ['audit', 'verify', 'audit.log'])).code).toBe(EXIT_USAGE);
  });
});
