import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, createManualClock, isForgeError } from '@forgeone/common';
import { createFileStore, createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { createAuditLog, verifyAuditExport, verifyAuditLog } from '../src/index.js';
import type { AuditEventInput, AuditLog } from '../src/index.js';
import { T0, crypto, kernelKey, otherKey } from './helpers.js';

const events: AuditEventInput[] = [
  { kind: 'boot', subject: 'kernel', actor: 'kernel', time: T0, details: { version: '0.1.0' } },
  { kind: 'package.accepted', subject: 'hello@1.2.0', actor: 'user:alice', time: T0 + 10, details: { signers: 2 } },
  { kind: 'container.launched', subject: 'ctr-01', actor: 'kernel', time: T0 + 20 },
  { kind: 'quarantine', subject: 'ctr-01', actor: 'kernel', time: T0 + 30, details: { rule: 'base/quarantine-etc-write', seq: 9 } },
  { kind: 'release', subject: 'ctr-01', actor: 'user:bob', time: T0 + 40 },
  { kind: 'quarantine', subject: 'ctr-02', actor: 'kernel', time: T0 + 50 },
];

async function filled(): Promise<{ log: AuditLog; store: ReturnType<typeof createMemoryStore> }> {
  const store = createMemoryStore();
  const log = await createAuditLog({ store, crypto, signingKey: kernelKey, clock: createManualClock(T0) });
  for (const e of events) await log.append(e);
  return { log, store };
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  return isForgeError(e) ? e.code : String(e);
}

describe('audit log', () => {
  it('appends, queries and verifies', async () => {
    const { log } = await filled();
    expect(log.length).toBe(6);
    expect((await log.query({ kind: 'quarantine' })).map((e) => e.subject)).toEqual(['ctr-01', 'ctr-02']);
    expect((await log.query({ subject: 'ctr-01' })).map((e) => e.kind)).toEqual(['container.launched', 'quarantine', 'release']);
    expect((await log.query({ from: T0 + 20, to: T0 + 40 })).map((e) => e.seq)).toEqual([2, 3]);
    expect((await log.query({ kind: ['boot', 'release'] })).map((e) => e.seq)).toEqual([0, 4]);
    const v = await log.verify();
    expect(v).toMatchObject({ ok: true, events: 6, checkpoints: 7, signers: [kernelKey.keyId], logId: 'audit' });
  });

  it('refuses malformed events', async () => {
    const { log } = await filled();
    expect(await code(log.append({ kind: 'reboot' as never, subject: 'k', actor: 'k' }))).toBe('INVALID_ARGUMENT');
    expect(await code(log.append({ kind: 'boot', subject: '', actor: 'k' }))).toBe('INVALID_ARGUMENT');
    expect(await code(log.append({ kind: 'boot', subject: 'k', actor: 'k', details: { x: 1.5 } }))).toBe('INVALID_ARGUMENT');
    expect(await code(log.append({ kind: 'boot', subject: 'k', actor: 'k', details: { x: 'y'.repeat(70_000) } }))).toBe('LIMIT_EXCEEDED');
    expect(await code(log.append({ kind: 'boot', subject: 'k', actor: 'k', time: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(log.length).toBe(6);
    expect((await log.verify()).ok).toBe(true);
  });

  it('finds tampering in an exported log and names the line', async () => {
    const { log } = await filled();
    const text = await log.exportLog();
    expect(verifyAuditLog(text, { trustedKeys: [kernelKey.publicKey], crypto }).ok).toBe(true);
    const lines = text.trimEnd().split('\n');
    const i = lines.findIndex((l) => l.includes('user:bob'));
    const edited = [...lines];
    edited[i] = lines[i]!.replace('user:bob', 'user:eve');
    expect(verifyAuditLog(`${edited.join('\n')}\n`, { trustedKeys: [kernelKey.publicKey], crypto }).issue).toMatchObject({ code: 'RECORD_ALTERED', line: i + 1, seq: 4 });
    const dropped = [...lines];
    dropped.splice(i, 3); // the whole event with its seal and checkpoint
    expect(verifyAuditLog(`${dropped.join('\n')}\n`, { trustedKeys: [kernelKey.publicKey], crypto }).issue).toMatchObject({ code: 'RECORD_SEQUENCE', line: i + 1 });
    const truncated = lines.slice(0, -1);
    expect(verifyAuditLog(`${truncated.join('\n')}\n`, { trustedKeys: [kernelKey.publicKey], crypto }).issue?.code).toBe('INCOMPLETE');
    expect(verifyAuditLog(text, { trustedKeys: [otherKey.publicKey], crypto }).issue?.code).toBe('CHECKPOINT_KEY_UNTRUSTED');
  });

  it('exports evidence that verifies offline, and finds tampering in it', async () => {
    const { log } = await filled();
    const bundle = await log.exportEvidence({ kind: 'quarantine' });
    const v = verifyAuditExport(JSON.stringify(bundle), { trustedKeys: [kernelKey.publicKey], crypto });
    expect(v.issue).toBeNull();
    expect(v.events.map((e) => [e.seq, e.subject])).toEqual([
      [3, 'ctr-01'],
      [5, 'ctr-02'],
    ]);
    expect(v.logLength).toBe(6);
    // An altered event.
    const altered = structuredClone(bundle);
    altered.items[1]!.event = altered.items[1]!.event.replace('ctr-02', 'ctr-09');
    expect(verifyAuditExport(altered, { trustedKeys: [kernelKey.publicKey], crypto }).issue).toMatchObject({ code: 'RECORD_ALTERED', item: 1, seq: 5 });
    // A forged event with a recomputed seal still lacks a valid signature.
    const sealed = structuredClone(bundle);
    sealed.items[0]!.checkpoint = sealed.items[1]!.checkpoint;
    expect(verifyAuditExport(sealed, { trustedKeys: [kernelKey.publicKey], crypto }).issue).toMatchObject({ code: 'CHECKPOINT_MISPLACED', item: 0 });
    // An event outside the filter slipped in.
    const all = await log.exportEvidence();
    const mixed = { ...bundle, items: [all.items[0]!, ...bundle.items] };
    expect(verifyAuditExport(mixed, { trustedKeys: [kernelKey.publicKey], crypto }).issue).toMatchObject({ code: 'UNEXPECTED_LINE', item: 0 });
    expect(verifyAuditExport(bundle, { trustedKeys: [otherKey.publicKey], crypto }).issue?.code).toBe('CHECKPOINT_KEY_UNTRUSTED');
    expect(verifyAuditExport('not json', { trustedKeys: [kernelKey.publicKey], crypto }).issue?.code).toBe('MALFORMED_LINE');
    // The whole log as evidence links consecutive events.
    expect(verifyAuditExport(all, { trustedKeys: [kernelKey.publicKey], crypto }).events).toHaveLength(6);
  });

  it('persists in the file store, continues after a reopen, and after a key rotation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'observer-audit-'));
    try {
      let store = await createFileStore({ dir });
      let log = await createAuditLog({ store, crypto, signingKey: kernelKey });
      for (const e of events.slice(0, 3)) await log.append(e);
      await store.close();
      store = await createFileStore({ dir });
      log = await createAuditLog({ store, crypto, signingKey: otherKey });
      expect(log.length).toBe(3);
      expect((await log.query()).map((e) => e.kind)).toEqual(['boot', 'package.accepted', 'container.launched']);
      await log.append(events[3]!);
      const v = await log.verify({ trustedKeys: [kernelKey.publicKey, otherKey.publicKey] });
      expect(v).toMatchObject({ ok: true, events: 4, signers: [kernelKey.keyId, otherKey.keyId].sort() });
      const onlyOld = await log.verify({ trustedKeys: [kernelKey.publicKey] });
      expect(onlyOld.issue?.code).toBe('CHECKPOINT_KEY_UNTRUSTED');
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('completes an event a crash left unsigned, and refuses a damaged log', async () => {
    const { store } = await filled();
    const raw = await store.log('audit');
    // A crash after the event line reached the store but before its seal and checkpoint.
    await raw.append(canonicalJson({ t: 'event', seq: 6, kind: 'termination', subject: 'ctr-02', actor: 'kernel', time: T0 + 60, details: {} }));
    const log = await createAuditLog({ store, crypto, signingKey: kernelKey });
    expect(log.length).toBe(7);
    const v = await log.verify();
    expect(v.ok).toBe(true);
    expect((await log.exportLog()).trimEnd().split('\n').at(-1)).toContain('"reason":"recovery"');

    const store2 = createMemoryStore();
    const bad = await store2.log('audit');
    for (const l of (await log.exportLog()).trimEnd().split('\n')) await bad.append(l.replace('user:bob', 'user:eve'));
    expect(await code(createAuditLog({ store: store2, crypto, signingKey: kernelKey }))).toBe('STATE_CORRUPT');
  });
});
