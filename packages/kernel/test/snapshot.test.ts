// kernel.snapshot and kernel.restore: a serving counter plugin in the sandbox is snapshotted between calls
// into a file signed by the kernel key, restored into a new container that goes on counting and whose trace
// names the snapshot and continues at its sequence number; another package's snapshot and a tampered file
// are refused, and every decision is audited.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeCryptoProvider, SigningKey, buildPackage, createTrustRoot, signPackage, signTrustRoot, type TrustRootDocument } from '@forgeone/crypto';
import { parseTrace, verifyTrace, writeSnapshot, readSnapshot } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernel, type Kernel } from '../src/index.js';

const crypto = new NodeCryptoProvider();
const root = SigningKey.generate(crypto);
const trustRoot: TrustRootDocument = signTrustRoot(crypto, createTrustRoot(crypto, { expires: '2030-01-01T00:00:00Z', roles: { root: { keys: [root.toPublic()], threshold: 1 }, packages: { keys: [root.toPublic()], threshold: 1 } } }), root);

// The counter component of packages/execution/test/sandbox/counter-component.ts (assembled with jco's
// wasm-tools): `run(input) -> string` reads forgeone:host/time once and returns its memory and global counts
// as two digits each. COUNTER_BY_TWO is the same component counting by two (another component hash).
const COUNTER = 'AGFzbQ0AAQAHOAFCBQFyAgRjb2RlcwdtZXNzYWdlcwQACmhvc3QtZXJyb3IDAAABagF3AQEBQAAAAgQAA25vdwEDCh0BABhmb3JnZW9uZTpob3N0L3RpbWVAMC4xLjAFAAF1AGFzbQEAAAABCQFgBH9/f38BfwMCAQAFAwEAAQYHAX8BQYAgCwcUAgZtZW1vcnkCAAdyZWFsbG9jAAAKGQEXAQF/IwBBB2pBeHEhBCAEIANqJAAgBAsAHQRuYW1lAAUEbGliYwIGAQABBAFwBwcBAARidW1wAgQBAAAABh8DAAIBAAZtZW1vcnkAAAEAB3JlYWxsb2MBAAADbm93CAkBAQAAAgMABAAB7QEAYXNtAQAAAAEQA2ABfwBgAn9/AGACf38BfwIbAgRsaWJjBm1lbW9yeQIAAQRob3N0A25vdwAAAwMCAQIGBgF/AUEACwcHAQNydW4AAgpiAh8AIABBMCABQQpuajoAACAAQQFqQTAgAUEKcGo6AAALQABBwAAQACMAQQFqJABBEEEQKAIAQQFqNgIAQcgBQRAoAgAQAUHKASMAEAFBgAFByAE2AgBBhAFBBDYCAEGAAQsAOgRuYW1lAAUEbWFpbgEOAgADbm93AQZkaWdpdHMCEgIBAgACYXQBAXYCAgABcAEBbgcIAQAFY2FsbHMCGgIBAQNub3cAAQABAgRsaWJjEgAEaG9zdBIBBwwBQAEFaW5wdXRzAHMGCQEAAAECA3J1bggKAQAAAgIDAAQAAQsJAQADcnVuAQEAAGwOY29tcG9uZW50LW5hbWUBEQAAAgAHcmVhbGxvYwEDbm93AQgAAgEAA21lbQEPABECAARsaWJjAQRtYWluARUAEgMABGxpYmMBBGhvc3QCBG1haW4BDAEBAAh0aW1lLW5vdwEIBQEABHRpbWU=';
const COUNTER_BY_TWO = 'AGFzbQ0AAQAHOAFCBQFyAgRjb2RlcwdtZXNzYWdlcwQACmhvc3QtZXJyb3IDAAABagF3AQEBQAAAAgQAA25vdwEDCh0BABhmb3JnZW9uZTpob3N0L3RpbWVAMC4xLjAFAAF1AGFzbQEAAAABCQFgBH9/f38BfwMCAQAFAwEAAQYHAX8BQYAgCwcUAgZtZW1vcnkCAAdyZWFsbG9jAAAKGQEXAQF/IwBBB2pBeHEhBCAEIANqJAAgBAsAHQRuYW1lAAUEbGliYwIGAQABBAFwBwcBAARidW1wAgQBAAAABh8DAAIBAAZtZW1vcnkAAAEAB3JlYWxsb2MBAAADbm93CAkBAQAAAgMABAAB7QEAYXNtAQAAAAEQA2ABfwBgAn9/AGACf38BfwIbAgRsaWJjBm1lbW9yeQIAAQRob3N0A25vdwAAAwMCAQIGBgF/AUEACwcHAQNydW4AAgpiAh8AIABBMCABQQpuajoAACAAQQFqQTAgAUEKcGo6AAALQABBwAAQACMAQQJqJABBEEEQKAIAQQJqNgIAQcgBQRAoAgAQAUHKASMAEAFBgAFByAE2AgBBhAFBBDYCAEGAAQsAOgRuYW1lAAUEbWFpbgEOAgADbm93AQZkaWdpdHMCEgIBAgACYXQBAXYCAgABcAEBbgcIAQAFY2FsbHMCGgIBAQNub3cAAQABAgRsaWJjEgAEaG9zdBIBBwwBQAEFaW5wdXRzAHMGCQEAAAECA3J1bggKAQAAAgIDAAQAAQsJAQADcnVuAQEAAGwOY29tcG9uZW50LW5hbWUBEQAAAgAHcmVhbGxvYwEDbm93AQgAAgEAA21lbQEPABECAARsaWJjAQRtYWluARUAEgMABGxpYmMBBGhvc3QCBG1haW4BDAEBAAh0aW1lLW5vdwEIBQEABHRpbWU=';

function plugin(name: string, b64: string): Uint8Array {
  const files = new Map([['counter.wasm', new Uint8Array(Buffer.from(b64, 'base64'))]]);
  const { bytes } = buildPackage(crypto, { template: { name, version: '1.0.0', entry: 'counter.wasm', metadata: { 'forgeone.capabilities': JSON.stringify({ time: true }) } }, files });
  return signPackage(bytes, root);
}

let kernel: Kernel;
let tmp: string;
const counter = plugin('counter', COUNTER);
const other = plugin('counter-by-two', COUNTER_BY_TWO);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'forgeone-kernel-snapshot-'));
  kernel = await createKernel({ trustRoot, store: createMemoryStore(), boot: { measureKernel: false }, cacheDir: join(tmp, 'cache'), config: { sandbox: { poolSize: 1 } } });
}, 60_000);

afterAll(async () => {
  await kernel?.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

const value = async (id: string): Promise<unknown> => {
  const out = await kernel.call(id, '');
  return out.ok ? out.value : out;
};

describe('kernel snapshots', () => {
  it('snapshots a serving counter and restores it into a new container that goes on counting, its trace continuing at the snapshot', async () => {
    const first = await kernel.launch({ package: counter, serve: true });
    expect([await value(first.id), await value(first.id), await value(first.id)]).toEqual(['0101', '0202', '0303']);
    const path = join(tmp, 'counter.fgsnap');
    const snap = await kernel.snapshot(first.id, { path });
    expect(snap).toMatchObject({ containerId: first.id, traceId: first.traceId, seq: 3, path });
    expect(readFileSync(path)).toEqual(Buffer.from(snap.bytes));
    // The file is signed by the kernel key and names the trace position.
    const read = readSnapshot(snap.bytes, { trustedKeys: [kernel.kernelKey], crypto });
    expect(read.trace).toMatchObject({ traceId: first.traceId, seq: 3 });
    expect(read.container.id).toBe(first.id);
    // The original goes on from its own state.
    expect(await value(first.id)).toBe('0404');

    const restored = await kernel.restore(path, { package: counter });
    expect(await value(restored.id)).toBe('0404');
    expect(await value(restored.id)).toBe('0505');
    await expect(kernel.replay(restored.id)).rejects.toMatchObject({ code: 'REPLAY_UNSUPPORTED' });
    const [a, b] = await Promise.all([kernel.stop(first.id), kernel.stop(restored.id)]);
    expect(a.error).toBeNull();
    expect(b.error).toBeNull();

    // The restored trace verifies offline, names the snapshot, and starts at its seq.
    const text = await kernel.exportTrace(restored.id);
    const v = verifyTrace(text, { trustedKeys: [kernel.kernelKey], crypto });
    expect(v.issue).toBeNull();
    expect(v.header?.restoredFrom).toEqual({ snapshot: snap.digest, traceId: first.traceId, containerId: first.id, seq: 3, blockHash: read.trace!.blockHash });
    expect(parseTrace(text, crypto).records.map((r) => [r.seq, r.syscall])).toEqual([
      [3, 'forgeone:time/now'],
      [4, 'forgeone:time/now'],
    ]);
    // The original trace holds the snapshot checkpoint after record 2, whose hash the snapshot names.
    const original = parseTrace(await kernel.exportTrace(first.id), crypto);
    expect(original.records.map((r) => r.seq)).toEqual([0, 1, 2, 3]);
    expect(original.checkpoints.map((c) => [c.reason, c.records])).toContainEqual(['snapshot', 3]);

    const audit = await kernel.audit.query({ subject: first.id });
    expect(audit.find((e) => e.kind === 'api.action')?.details).toMatchObject({ action: 'snapshot', snapshot: snap.digest, seq: 3 });
    const launched = (await kernel.audit.query({ kind: 'container.launched', subject: restored.id }))[0];
    expect(launched?.details).toMatchObject({ restoredFrom: { snapshot: snap.digest, traceId: first.traceId, seq: 3 } });
  }, 120_000);

  it('refuses a snapshot of another package, a tampered file and one not signed by the kernel, auditing each', async () => {
    const first = await kernel.launch({ package: counter, serve: true });
    await value(first.id);
    const snap = await kernel.snapshot(first.id);
    await kernel.stop(first.id);

    await expect(kernel.restore(snap.bytes, { package: other })).rejects.toMatchObject({ code: 'SNAPSHOT_MODULE_MISMATCH' });
    const tampered = snap.bytes.slice();
    tampered[tampered.length - 100]! ^= 1;
    await expect(kernel.restore(tampered, { package: counter })).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID' });
    const foreign = writeSnapshot(readSnapshot(snap.bytes, { trustedKeys: [kernel.kernelKey], crypto }), { signingKey: SigningKey.generate(crypto), crypto });
    const foreignPath = join(tmp, 'foreign.fgsnap');
    writeFileSync(foreignPath, foreign);
    await expect(kernel.restore(foreignPath, { package: counter })).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID', details: { reason: 'untrusted-key' } });
    const refused = (await kernel.audit.query({ kind: 'api.action' })).filter((e) => e.details['action'] === 'restore').map((e) => e.details['code']);
    expect(refused).toEqual(['SNAPSHOT_MODULE_MISMATCH', 'SNAPSHOT_INVALID', 'SNAPSHOT_INVALID']);
  }, 120_000);

  it('a container that does not serve calls is never between two: no snapshot', async () => {
    const once = await kernel.launch({ package: counter, input: 'x' });
    const report = await once.done;
    expect(report.outcome).toEqual({ ok: true, value: '0101' });
    await expect(kernel.snapshot(once.id)).rejects.toMatchObject({ code: 'SNAPSHOT_UNSUPPORTED' });
    await expect(kernel.call(once.id, '')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  }, 120_000);
});
