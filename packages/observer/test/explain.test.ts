import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { explainTrace, exportTrace, parseTrace, verifyTrace } from '../src/index.js';
import type { TraceExplanation } from '../src/index.js';
import { T0, call, crypto, kernelKey, writeScenario } from './helpers.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

/** Compare with test/golden/<name>.txt and .json; UPDATE_GOLDEN=1 rewrites them. */
async function golden(name: string, ex: TraceExplanation): Promise<void> {
  const txt = join(GOLDEN, `${name}.txt`);
  const json = join(GOLDEN, `${name}.json`);
  const jsonText = `${JSON.stringify(ex.json, null, 2)}\n`;
  if (update || !existsSync(txt) || !existsSync(json)) {
    if (!update) throw new Error(`golden files for ${name} are missing; run with UPDATE_GOLDEN=1`);
    await writeFile(txt, ex.text);
    await writeFile(json, jsonText);
  }
  expect(ex.text).toBe(await readFile(txt, 'utf8'));
  expect(jsonText).toBe(await readFile(json, 'utf8'));
}

const POLICY_TEXT: Record<string, string> = {
  'base/no-etc': 'system files under /etc are off limits',
  'base/quarantine-etc-write': 'writing under /etc quarantines the container',
};

describe('explainTrace (golden files)', () => {
  it('a suspicious run: denials, a quarantine, a flag', async () => {
    const store = createMemoryStore();
    await writeScenario(store, { blockSize: 4 });
    const text = await exportTrace(store, 'tr-1');
    const verification = verifyTrace(text, { trustedKeys: [kernelKey.publicKey], crypto });
    const ex = explainTrace(parseTrace(text, crypto), {
      verification,
      ruleExplanation: (rule) => POLICY_TEXT[rule],
      flags: [{ name: 'unusual-port', severity: 'low', detail: 'tcp 6667 (IRC)', seq: 8 }],
    });
    expect(ex.json.verdict.level).toBe('suspicious');
    expect(ex.json.integrity.score).toBe(0.53);
    await golden('suspicious', ex);
  });

  it('a clean run', async () => {
    const store = createMemoryStore();
    const records = [
      call(0, { syscall: 'wasi:filesystem/read', args: { path: '/data/a.txt', size: 5 } }),
      call(1, { syscall: 'wasi:filesystem/read', args: { path: '/data/b.txt', size: 7 } }),
      call(2, { syscall: 'forgeone:kv/get', args: { detail: 'greeting' }, rule: 'kv/read' }),
      call(3, { syscall: 'wasi:cli/stdout', args: { size: 13 }, rule: 'base/stdout' }),
    ];
    await writeScenario(store, { traceId: 'clean', records, stop: { endTime: T0 + 20, outcome: 'exited', exitCode: 0 } });
    const text = await exportTrace(store, 'clean');
    const ex = explainTrace(parseTrace(text, crypto), { verification: verifyTrace(text, { trustedKeys: [kernelKey.publicKey], crypto }) });
    expect(ex.json.verdict).toMatchObject({ level: 'clean', reasons: [] });
    expect(ex.json.integrity.score).toBe(1);
    await golden('clean', ex);
  });

  it('a compromised run: terminated, tampered, unverified', async () => {
    const store = createMemoryStore();
    const records = [
      call(0, { syscall: 'wasi:sockets/tcp-connect', args: { host: 'c2.evil.test', port: 4444 }, verdict: 'deny', rule: 'net/deny-all', allowed: false, result: -1 }),
      call(1, { syscall: 'wasi:cli/stdout', args: { size: 1 }, verdict: 'terminated', rule: null, allowed: false, result: -1 }),
    ];
    await writeScenario(store, { traceId: 'bad', records, stop: { endTime: T0 + 5, outcome: 'terminated', flags: [{ name: 'c2-beacon', severity: 'high' }] } });
    const text = await exportTrace(store, 'bad');
    const ex = explainTrace(parseTrace(text, crypto));
    expect(ex.json.verdict.level).toBe('compromised');
    expect(ex.json.verification.status).toBe('not-checked');
    await golden('compromised', ex);
    // A failed verification alone makes a run compromised.
    const lines = text.split('\n');
    lines[2] = lines[2]!.replace('4444', '4445');
    const tampered = lines.join('\n');
    const failed = explainTrace(parseTrace(text, crypto), { verification: verifyTrace(tampered, { trustedKeys: [kernelKey.publicKey], crypto }) });
    expect(failed.json.verification.status).toBe('failed');
    expect(failed.json.verdict.reasons[0]).toMatch(/failed verification \(RECORD_ALTERED\)/);
  });

  it('is deterministic', async () => {
    const store = createMemoryStore();
    await writeScenario(store);
    const trace = parseTrace(await exportTrace(store, 'tr-1'), crypto);
    expect(explainTrace(trace)).toEqual(explainTrace(trace));
  });
});
