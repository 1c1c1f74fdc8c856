import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createIdentity, trustVector } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, savePublicKey } from '@forgeone/crypto';
import { createTraceWriter, exportTrace } from '@forgeone/observer';
import type { CallArgs, CallVerdict, TraceCallRecord } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_USAGE } from '../src/errors.js';
import { runIn, tempDir } from './helpers.js';

const provider = new NodeCryptoProvider();
const kernel = SigningKey.generate(provider);
const T0 = Date.UTC(2026, 0, 1);

type Call = [syscall: string, args?: CallArgs, verdict?: CallVerdict];

function records(calls: Call[], t0: number): TraceCallRecord[] {
  return calls.map(([syscall, args = {}, verdict = 'allow'], seq) => {
    const allowed = verdict === 'allow';
    return { seq, syscall, args, verdict, rule: allowed ? 'capabilities/ok' : null, allowed, result: allowed ? 0 : -1, start: t0 + seq * 0.5, duration: 0.01, resultBytes: null };
  });
}

const normal = (i: number): Call[] => [
  ['wasi:random/insecure-seed'],
  ['forgeone:http/fetch', { host: 'example.com', port: 443, size: 0, detail: 'GET https' }],
  ['forgeone:log/write', { detail: 'info', size: 40 + i }],
];
const rogue: Call[] = [
  ['wasi:random/insecure-seed'],
  ['forgeone:http/fetch', { size: 0, detail: 'GET file' }, 'deny'],
  ['forgeone:http/fetch', { host: '169.254.169.254', port: 80, size: 0, detail: 'GET http' }, 'deny'],
  ['forgeone:http/fetch', { host: 'evil.example.net', port: 443, size: 0, detail: 'PUT https' }, 'deny'],
  ['forgeone:log/write', { detail: 'info', size: 80 }],
];

async function writeTrace(dir: string, file: string, id: string, subject: string, calls: Call[], t0: number, flags: { name: string; severity: 'low' | 'medium' | 'high' }[] = []): Promise<string> {
  const store = createMemoryStore();
  const w = await createTraceWriter({
    store,
    crypto: provider,
    signingKey: kernel,
    header: {
      traceId: id,
      containerId: `ctr-${id}`,
      identity: createIdentity({ subject, trust: trustVector('Verified') }),
      package: { name: 'fetcher', version: '1.0.0', hash: '' },
      policy: { name: 'default', version: 1 },
      startTime: t0,
    },
  });
  await w.append(records(calls, t0));
  await w.stop({ endTime: t0 + 100, outcome: 'exited', exitCode: 0, flags });
  const text = await exportTrace(store, id);
  await writeFile(join(dir, file), text);
  return text;
}

describe('forgeone heatmap', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let rogueText: string;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    for (let i = 0; i < 4; i++) await writeTrace(dir, `normal-${i}.dna`, `normal-${i}`, 'plugin:fetcher', normal(i), T0 + i * 60_000);
    await writeTrace(dir, 'ok.dna', 'ok', 'plugin:fetcher', normal(9), T0 + 10 * 60_000);
    rogueText = await writeTrace(dir, 'rogue.dna', 'rogue', 'plugin:rogue', rogue, T0 + 11 * 60_000, [{ name: 'kernel-note', severity: 'low' }]);
    await savePublicKey(kernel.toPublic(), join(dir, 'kernel.key.pub'));
  });
  afterAll(async () => cleanup());

  it('writes an SVG and lists the hottest cells, integrity and tightening steps', async () => {
    const r = await runIn(dir, ['heatmap', 'ok.dna', 'rogue.dna', '--out', 'heatmap.svg', '--title', 'Rogue check']);
    expect(r.code).toBe(0);
    const svg = await readFile(join(dir, 'heatmap.svg'), 'utf8');
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('Rogue check');
    expect(svg).toContain('plugin:rogue × forgeone:http/fetch: 3 call(s), 3 refused');
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(r.stdout).toMatch(/^traces\s+2 \(8 calls, 3 refused, 3 anomaly flag\(s\)\)$/m);
    expect(r.stdout).toMatch(/^detectors\s+rules$/m);
    expect(r.stdout).toMatch(/^hottest\s+1\.00 {2}plugin:rogue × forgeone:http\/fetch \(3 refused, 2 flag\(s\)\)$/m);
    expect(r.stdout).toMatch(/^integrity\s+0\.230 {2}ctr-rogue \(plugin:rogue\)$/m);
    expect(r.stdout).toMatch(/^tighten\s+plugin:rogue × forgeone:http\/fetch: none → audit$/m);
    expect(r.stdout).toContain('wrote heatmap.svg');
  });

  it('--json prints the heatmap and the plan; --learn adds the learned detectors', async () => {
    const j = await runIn(dir, ['heatmap', 'ok.dna', 'rogue.dna', '--json']);
    expect(j.code).toBe(0);
    const doc = j.json() as { heatmap: { identitySyscall: { cells: { row: string; col: string; score: number; denials: number }[] } }; tightening: { steps: unknown[] }; detectors: string[]; out: null };
    expect(doc).toMatchObject({ ok: true, out: null, detectors: ['rules'], heatmap: { format: 'forgeone.heatmap/v1', totals: { runs: 2 } }, tightening: { steps: [{ subject: 'plugin:rogue', syscall: 'forgeone:http/fetch', action: 'audit' }] } });
    const learned = (await runIn(dir, ['heatmap', 'ok.dna', 'rogue.dna', '--learn', 'normal-0.dna', 'normal-1.dna', 'normal-2.dna', 'normal-3.dna', '--json'])).json() as typeof doc;
    expect(learned.detectors).toEqual(['rules', 'sequence', 'frequency']);
    const fetch = (d: typeof doc) => d.heatmap.identitySyscall.cells.find((c) => c.row === 'plugin:rogue' && c.col === 'forgeone:http/fetch')!;
    expect(fetch(learned).score).toBe(1);
    // The honest run, scored against what was learned, stays cold.
    expect(learned.heatmap.identitySyscall.cells.filter((c) => c.row === 'plugin:fetcher').every((c) => c.score === 0)).toBe(true);
    const bare = (await runIn(dir, ['heatmap', 'rogue.dna', '--no-rules', '--json'])).json() as typeof doc;
    expect(bare.detectors).toEqual([]);
    expect(fetch(bare).score).toBe(0.6);
    await writeFile(join(dir, 'rules.json'), JSON.stringify([{ id: 'any-log', when: { syscall: 'forgeone:log/*' }, priority: 'medium', output: 'log {detail}' }]));
    const custom = (await runIn(dir, ['heatmap', 'rogue.dna', '--rules-file', 'rules.json', '--json'])).json() as typeof doc;
    expect(custom.heatmap.identitySyscall.cells.find((c) => c.col === 'forgeone:log/write')!.score).toBeCloseTo(0.6);
  });

  it('verifies traces when given keys, and reports bad input with a code or as a usage error', async () => {
    expect((await runIn(dir, ['heatmap', 'rogue.dna', '--key', 'kernel.key.pub', '--json'])).code).toBe(0);
    await writeFile(join(dir, 'tampered.dna'), rogueText.replace('"verdict":"deny"', '"verdict":"allow"'));
    const t = await runIn(dir, ['heatmap', 'tampered.dna', '--key', 'kernel.key.pub', '--json']);
    expect(t.code).toBe(1);
    expect(t.json()).toMatchObject({ ok: false, code: 'STATE_CORRUPT', details: { file: 'tampered.dna', issue: { code: 'RECORD_ALTERED' } } });
    await writeFile(join(dir, 'junk.dna'), 'junk\n');
    expect((await runIn(dir, ['heatmap', 'junk.dna', '--json'])).json()).toMatchObject({ ok: false, code: 'STATE_CORRUPT' });
    expect((await runIn(dir, ['heatmap', 'missing.dna', '--json'])).json()).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    await writeFile(join(dir, 'bad-rules.json'), JSON.stringify([{ id: 'x', when: { args: { port: ['22'] } }, priority: 'low', output: 'x' }]));
    expect((await runIn(dir, ['heatmap', 'rogue.dna', '--rules-file', 'bad-rules.json', '--json'])).json()).toMatchObject({
      ok: false,
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('rules[0].when.args.port[0]'),
    });
    expect((await runIn(dir, ['heatmap', 'rogue.dna', '--bucket', 'soon'])).code).toBe(EXIT_USAGE);
    expect((await runIn(dir, ['heatmap', 'rogue.dna', '--hot', '2'])).code).toBe(EXIT_USAGE);
    expect((await runIn(dir, ['heatmap', 'rogue.dna', '--no-rules', '--rules-file', 'rules.json'])).code).toBe(EXIT_USAGE);
    expect((await runIn(dir, ['heatmap'])).code).toBe(EXIT_USAGE);
  });
});
