import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, isForgeError, trustVector } from '@forgeone/common';
import { createFileStore, createMemoryStore } from '@forgeone/store';
import { compilePolicy, parsePolicy } from '@forgeone/trust';
import { afterEach, describe, expect, it } from 'vitest';
import { createTraceWriter, explainTrace, exportTrace, openTrace, parseTrace, readTrace, verifyTrace } from '../src/index.js';
import type { TraceCallRecord } from '../src/index.js';
import { T0, call, crypto, header, kernelKey, otherKey, scenario, writeScenario } from './helpers.js';

const trusted = { trustedKeys: [kernelKey.toPublic()], crypto };

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isForgeError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
}

describe('trace writer and verifier (memory store)', () => {
  it('writes a trace that verifies, with blocks, interval and quarantine checkpoints, summary', async () => {
    const store = createMemoryStore();
    const w = await writeScenario(store, { blockSize: 2, checkpointEvery: 2 });
    expect(w.records).toBe(11);
    const text = await exportTrace(store, 'tr-1');
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { t: string; reason?: string });
    expect(lines[0]!.t).toBe('header');
    expect(lines[1]).toMatchObject({ t: 'checkpoint', reason: 'start' });
    expect(lines.filter((l) => l.t === 'call')).toHaveLength(11);
    expect(lines.filter((l) => l.t === 'checkpoint').map((l) => l.reason)).toEqual(['start', 'interval', 'interval', 'quarantine', 'stop']);
    expect(lines.at(-2)!.t).toBe('summary');

    const v = verifyTrace(text, trusted);
    expect(v.issue).toBeNull();
    expect(v.ok).toBe(true);
    expect(v.complete).toBe(true);
    expect(v.records).toBe(11);
    expect(v.signers).toEqual([kernelKey.keyId]);
    expect(v.summary).toMatchObject({ records: 11, denials: 2, quarantines: 1, suspended: 1, audits: 1, allowed: 7, integrity: 1000 - 100 - 250 - 100 });
    expect(v.summary?.redFlags.map((r) => r.seq)).toEqual([3, 8, 9]);
    // Bytes verify the same as text.
    expect(verifyTrace(new TextEncoder().encode(text), trusted).ok).toBe(true);
  });

  it('reads back exactly what was written (times to the microsecond, result bytes)', async () => {
    const store = createMemoryStore();
    await writeScenario(store, { blockSize: 4 });
    const trace = await readTrace(store, 'tr-1', crypto);
    const original = scenario();
    expect(trace.records).toHaveLength(original.length);
    trace.records.forEach((r, i) => {
      const o = original[i]!;
      expect(r.seq).toBe(o.seq);
      expect(r.syscall).toBe(o.syscall);
      expect(r.args).toEqual(o.args);
      expect(r.verdict).toBe(o.verdict);
      expect(r.rule).toBe(o.rule);
      expect(r.start).toBeCloseTo(o.start, 3);
      expect(r.duration).toBeCloseTo(o.duration, 3);
      expect(r.resultBytes === null ? null : [...r.resultBytes]).toEqual(o.resultBytes === null ? null : [...o.resultBytes]);
    });
    expect(trace.header).toMatchObject({ traceId: 'tr-1', containerId: 'ctr-01', kernelKeyId: kernelKey.keyId, blockSize: 4 });
    expect(trace.header.identity).toEqual({ subject: 'plugin:hello', tenant: 'acme', roles: ['plugin'], trustLevel: 'Verified', trustScore: 800 });
    expect(trace.complete).toBe(true);
    const h = await openTrace(store, 'tr-1', crypto);
    expect((await h.verify({ trustedKeys: [kernelKey.publicKey] })).ok).toBe(true);
  });

  it('refuses untrusted and wrong keys', async () => {
    const store = createMemoryStore();
    await writeScenario(store);
    const text = await exportTrace(store, 'tr-1');
    const v = verifyTrace(text, { trustedKeys: [otherKey.toPublic()], crypto });
    expect(v.ok).toBe(false);
    expect(v.issue).toMatchObject({ code: 'CHECKPOINT_KEY_UNTRUSTED', line: 2 });
    expect(verifyTrace(text, { trustedKeys: [], crypto }).issue?.code).toBe('CHECKPOINT_KEY_UNTRUSTED');
    // A map from key id to key (as roleKeys gives) works too.
    expect(verifyTrace(text, { trustedKeys: new Map([[kernelKey.keyId, kernelKey.publicKey]]), crypto }).ok).toBe(true);
  });

  it('a trace signed by another key than its header names is refused even if that key is trusted', async () => {
    const store = createMemoryStore();
    await writeScenario(store);
    const text = await exportTrace(store, 'tr-1');
    // Re-sign the whole trace by another (trusted) kernel key, keeping the header: the start checkpoint no longer matches.
    const store2 = createMemoryStore();
    const w = await createTraceWriter({ store: store2, crypto, signingKey: otherKey, header: header() });
    await w.append(scenario());
    await w.stop({ endTime: T0 + 5 });
    const forged = (await exportTrace(store2, 'tr-1')).split('\n');
    forged[0] = text.split('\n')[0]!;
    const v = verifyTrace(forged.join('\n'), { trustedKeys: [kernelKey.publicKey, otherKey.publicKey], crypto });
    expect(v.issue).toMatchObject({ code: 'HEADER_ALTERED', line: 1 });
  });

  it('an unfinished trace is incomplete unless allowed; parse still reads it', async () => {
    const store = createMemoryStore();
    const w = await writeScenario(store, { blockSize: 4, stop: null });
    const text = await exportTrace(store, 'tr-1');
    const lineCount = text.trimEnd().split('\n').length;
    const v = verifyTrace(text, trusted);
    expect(v.issue).toMatchObject({ code: 'INCOMPLETE', line: lineCount + 1 });
    expect(verifyTrace(text, { ...trusted, allowIncomplete: true }).ok).toBe(true);
    const t = parseTrace(text, crypto);
    expect(t.complete).toBe(false);
    expect(t.summary).toBeNull();
    expect(t.records).toHaveLength(11);
    await w.stop();
    expect(verifyTrace(await exportTrace(store, 'tr-1'), trusted).ok).toBe(true);
  });

  it('an empty trace (no calls) verifies', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('empty') });
    const s = await w.stop({ endTime: T0, outcome: 'exited', exitCode: 0 });
    expect(s).toMatchObject({ records: 0, integrity: 1000, exitCode: 0, outcome: 'exited' });
    const v = verifyTrace(await exportTrace(store, 'empty'), trusted);
    expect(v.ok).toBe(true);
    expect(v.blocks).toBe(1);
  });

  it('validates input: nothing is written for a bad batch, sequence gaps, stopped traces, duplicates', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header(), blockSize: 2 });
    const log = await store.log('trace/tr-1');
    const before = log.length;
    await rejects(w.append([call(0), call(1, { verdict: 'maybe' as never })]), 'INVALID_ARGUMENT');
    await rejects(w.append([call(0), call(2)]), 'INVALID_ARGUMENT');
    await rejects(w.append([call(0, { start: Number.NaN })]), 'INVALID_ARGUMENT');
    await rejects(w.append([call(0, { args: { port: 1.5 } })]), 'INVALID_ARGUMENT');
    await rejects(w.append([call(0, { syscall: '' })]), 'INVALID_ARGUMENT');
    await rejects(w.append(null as unknown as TraceCallRecord[]), 'INVALID_ARGUMENT');
    await rejects(w.checkpoint('stop'), 'INVALID_ARGUMENT');
    await rejects(w.checkpoint('Not A Reason'), 'INVALID_ARGUMENT');
    expect(log.length).toBe(before);
    await w.append([call(0, { args: { detail: 'lone \ud800 surrogate' } })]);
    await w.stop({ endTime: T0 });
    await rejects(w.append([call(1)]), 'INVALID_ARGUMENT');
    await rejects(w.stop(), 'INVALID_ARGUMENT');
    await rejects(createTraceWriter({ store, crypto, signingKey: kernelKey, header: header() }), 'ALREADY_EXISTS');
    await rejects(createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('../x') }), 'INVALID_ARGUMENT');
    await rejects(createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('x', { policy: { name: 'p', version: -1 } }) }), 'INVALID_ARGUMENT');
    await rejects(createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('y'), blockSize: 0 }), 'INVALID_ARGUMENT');
    await rejects(exportTrace(store, 'nope'), 'NOT_FOUND');
    const v = verifyTrace(await exportTrace(store, 'tr-1'), trusted);
    expect(v.ok).toBe(true);
    expect(parseTrace(await exportTrace(store, 'tr-1'), crypto).records[0]!.args.detail).toBe('lone \ufffd surrogate');
  });

  it('concurrent appends apply in call order', async () => {
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header(), blockSize: 3, checkpointEvery: 1 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => w.append([call(i)])));
    await w.stop({ endTime: T0 });
    const v = verifyTrace(await exportTrace(store, 'tr-1'), trusted);
    expect(v.ok).toBe(true);
    expect(v.records).toBe(20);
  });

  it('rejects garbage without throwing', () => {
    for (const input of ['', '\n', 'not json\n', '{}\n', '[1]\n', '{"t":"header"}\n', new Uint8Array([0xff, 0xfe, 0x0a])]) {
      const v = verifyTrace(input, trusted);
      expect(v.ok).toBe(false);
      expect(v.issue?.line).toBe(1);
    }
    expect(() => parseTrace('garbage')).toThrow(/damaged/);
  });
});

describe('trace with a real compiled policy', () => {
  it('records the rules a compiled policy decided with, and the explanation uses the policy text', async () => {
    const { policy } = parsePolicy(`
apiVersion: forgeone.policy/v1
name: example
version: 3
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - id: read-data
        action: allow
        syscalls: ["wasi:filesystem/read"]
        args: { path: { match: ["/data/**"] } }
      - id: no-etc
        action: deny
        reason: system files are off limits
        syscalls: ["wasi:filesystem/*"]
        args: { path: { match: ["/etc/**"] } }
`);
    const syscalls = new SyscallTable(KNOWN_SYSCALLS);
    const identity = createIdentity({ subject: 'plugin:hello', tenant: 'acme', roles: ['plugin'], trust: trustVector('Verified', 0.8) });
    const program = compilePolicy(policy, { identity, syscalls });
    const calls: [string, string][] = [
      ['wasi:filesystem/read', '/data/a.txt'],
      ['wasi:filesystem/read', '/etc/passwd'],
      ['wasi:filesystem/read', '/home/x'],
      ['wasi:filesystem/read', '/data/b.txt'],
    ];
    const records: TraceCallRecord[] = calls.map(([syscall, path], seq) => {
      const d = program.decide(syscalls.id(syscall), { now: T0, calls: seq, rate: 0, denied: 0, anomaly: 0, path });
      const allowed = d.verdict === 'allow' || d.verdict === 'audit';
      return call(seq, { syscall, args: { path }, verdict: d.verdict, rule: d.rule, allowed, result: allowed ? 0 : -1 });
    });
    expect(records.map((r) => r.rule)).toEqual(['base/read-data', 'base/no-etc', null, 'base/read-data']);
    const store = createMemoryStore();
    const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('policy-run'), blockSize: 2 });
    await w.append(records);
    await w.stop({ endTime: T0 + 10, outcome: 'exited', exitCode: 0 });
    const text = await exportTrace(store, 'policy-run');
    const verification = verifyTrace(text, trusted);
    expect(verification.ok).toBe(true);
    const reasons = new Map(policy.nodes.base!.rules.map((r) => [`base/${r.id}`, r.reason]));
    const ex = explainTrace(parseTrace(text, crypto), { verification, ruleExplanation: (rule) => reasons.get(rule) });
    expect(ex.json.denials.map((d) => [d.rule, d.explanation])).toEqual([
      [null, "the policy's default action"],
      ['base/no-etc', 'system files are off limits'],
    ]);
    expect(ex.json.verdict.level).toBe('suspicious');
    expect(ex.text).toContain('base/no-etc [deny] ×1: system files are off limits');
  });
});

describe('file store', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function fileTrace(): Promise<{ dir: string; file: string; text: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'observer-'));
    dirs.push(dir);
    const store = await createFileStore({ dir });
    await writeScenario(store, { traceId: 'ft-1', blockSize: 3, checkpointEvery: 2 });
    await store.close();
    const names = (await readdir(join(dir, 'logs'))).filter((n) => n.endsWith('.log'));
    expect(names).toHaveLength(1);
    const reopened = await createFileStore({ dir });
    const text = await exportTrace(reopened, 'ft-1');
    await reopened.close();
    return { dir, file: join(dir, 'logs', names[0]!), text };
  }

  /** Frames of a store file: [offset, length] of each payload (frame 0 is the file header). */
  function frames(buf: Uint8Array): { at: number; len: number }[] {
    const out: { at: number; len: number }[] = [];
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let o = 0; o < buf.length; ) {
      const len = view.getUint32(o, true);
      out.push({ at: o + 12, len });
      o += 12 + len;
    }
    return out;
  }

  it('survives a reopen and verifies', async () => {
    const { dir, text } = await fileTrace();
    expect(verifyTrace(text, trusted).ok).toBe(true);
    const store = await createFileStore({ dir });
    const t = await readTrace(store, 'ft-1', crypto);
    expect(t.records).toHaveLength(11);
    await store.close();
  });

  it('a flipped byte on disk: the store refuses it; with the checksum forged too, verification names the record', async () => {
    const { dir, file, text } = await fileTrace();
    const lines = text.trimEnd().split('\n');
    const target = lines.findIndex((l) => l.includes('"seq":4,'));
    expect(target).toBeGreaterThan(0);
    const original = new Uint8Array(await readFile(file));
    const f = frames(original)[target + 1]!; // frame 0 is the store's file header
    const payload = new TextDecoder().decode(original.subarray(f.at, f.at + f.len));
    expect(payload).toBe(lines[target]);
    // Change the port 443 to 444: a valid record, different bytes.
    const pos = f.at + new TextEncoder().encode(payload.slice(0, payload.indexOf('"port":443') + 9)).length;
    const tampered = Uint8Array.from(original);
    tampered[pos] = '4'.charCodeAt(0);

    // 1. Plain flip: the store's CRC catches it.
    await writeFile(file, tampered);
    const s1 = await createFileStore({ dir });
    const e = await exportTrace(s1, 'ft-1').then(
      () => null,
      (err: unknown) => err,
    );
    expect(isForgeError(e) && e.code).toBe('STATE_CORRUPT');
    await s1.close();

    // 2. An attacker who also fixes the frame checksum: the DNA catches it and names the record.
    const view = new DataView(tampered.buffer);
    view.setUint32(f.at - 4, crc32(tampered.subarray(f.at, f.at + f.len)) >>> 0, true);
    await writeFile(file, tampered);
    const s2 = await createFileStore({ dir });
    const exported = await exportTrace(s2, 'ft-1');
    await s2.close();
    const v = verifyTrace(exported, trusted);
    expect(v.ok).toBe(false);
    expect(v.issue).toMatchObject({ code: 'RECORD_ALTERED', seq: 4, line: target + 1, block: 1 });
    expect(() => parseTrace(exported, crypto)).toThrow(/record 4/);
  });
});
