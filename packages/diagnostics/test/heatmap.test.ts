import { createIdentity, trustVector } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { createTraceWriter, explainTrace, exportTrace, parseTrace } from '@forgeone/observer';
import type { AnomalyFlag } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { RUN_COLUMN, buildHeatmap, cellScore, heatColor, renderHeatmapSvg, runIntegrity } from '../src/index.js';
import type { Heatmap, HeatmapRun } from '../src/index.js';
import { attackRun, normalRun, records, rng } from './synth.js';

const T0 = Date.UTC(2026, 0, 1);

function sample(): HeatmapRun[] {
  const rogue = attackRun('fetcher', 'net', 1, T0 + 30_000);
  const flags: AnomalyFlag[] = [
    { name: 'metadata-address', severity: 'high', seq: rogue.find((r) => r.args.host === '169.254.169.254')!.seq },
    { name: 'odd-run', severity: 'low' },
  ];
  return [
    { subject: 'plugin:hello', containerId: 'ctr-hello', records: normalRun('hello', 1, T0) },
    { subject: 'plugin:fetcher', containerId: 'ctr-rogue', records: rogue, flags },
  ];
}

describe('buildHeatmap', () => {
  it('counts calls, refusals and flags per identity × syscall, placing flags at their record', () => {
    const runs = sample();
    const h = buildHeatmap(runs);
    expect(h.format).toBe('forgeone.heatmap/v1');
    expect(h.identitySyscall.rows).toEqual(['plugin:fetcher', 'plugin:hello']);
    expect(h.identitySyscall.cols.at(-1)).toBe(RUN_COLUMN);
    const fetch = h.identitySyscall.cells.find((c) => c.row === 'plugin:fetcher' && c.col === 'forgeone:http/fetch')!;
    const fetches = runs[1]!.records.filter((r) => r.syscall === 'forgeone:http/fetch');
    expect(fetch).toMatchObject({ calls: fetches.length, denials: fetches.filter((r) => r.verdict === 'deny').length, anomalies: 1, severity: 'high', score: 1 });
    expect(fetch.denials).toBeGreaterThanOrEqual(4);
    const run = h.identitySyscall.cells.find((c) => c.col === RUN_COLUMN)!;
    expect(run).toMatchObject({ row: 'plugin:fetcher', calls: 0, anomalies: 1, severity: 'low', score: 0.3 });
    const hello = h.identitySyscall.cells.filter((c) => c.row === 'plugin:hello');
    expect(hello.every((c) => c.score === 0 && c.denials === 0)).toBe(true);
    expect(h.totals).toEqual({ runs: 2, records: runs[0]!.records.length + runs[1]!.records.length, denials: fetch.denials, anomalies: 2 });
  });

  it('buckets container × time and keeps columns in time order', () => {
    const h = buildHeatmap(sample());
    expect(h.containerTime.bucketMs).toBe(5000);
    expect(h.containerTime.colStarts).toEqual([...h.containerTime.colStarts].sort((a, b) => a - b));
    expect(h.containerTime.cols[0]).toBe(new Date(h.containerTime.colStarts[0]!).toISOString());
    const rogue = h.containerTime.cells.filter((c) => c.row === 'ctr-rogue');
    expect(rogue.reduce((a, c) => a + c.denials, 0)).toBe(h.totals.denials);
    expect(rogue.reduce((a, c) => a + c.anomalies, 0)).toBe(2);
    expect(buildHeatmap(sample(), { bucketMs: 60_000 }).containerTime.cols).toHaveLength(1);
    expect(() => buildHeatmap(sample(), { bucketMs: 0 })).toThrow(expect.objectContaining({ details: { field: 'bucketMs' } }));
  });

  it('gives each container the integrity its explanation would show', async () => {
    const runs = sample();
    const h = buildHeatmap(runs);
    expect(h.integrity.map((c) => c.containerId)).toEqual(['ctr-rogue', 'ctr-hello']);
    expect(h.integrity[1]!.integrity).toBe(1);
    // The same records and flags through a real trace and explainTrace.
    const provider = new NodeCryptoProvider();
    const store = createMemoryStore();
    const w = await createTraceWriter({
      store,
      crypto: provider,
      signingKey: SigningKey.generate(provider),
      header: {
        traceId: 'rogue',
        containerId: 'ctr-rogue',
        identity: createIdentity({ subject: 'plugin:fetcher', trust: trustVector('Verified') }),
        package: { name: 'fetcher', version: '1.0.0', hash: '' },
        policy: { name: 'default', version: 1 },
        startTime: T0,
      },
    });
    await w.append(runs[1]!.records);
    await w.stop({ outcome: 'exited', exitCode: 0 });
    const explained = explainTrace(parseTrace(await exportTrace(store, 'rogue')), { flags: runs[1]!.flags! });
    expect(h.integrity[0]!.integrity).toBe(explained.json.integrity.score);
    expect(runIntegrity(runs[1]!.records, runs[1]!.flags!)).toBe(explained.json.integrity.score);
  });

  it('heat: 1 − (1 − d/(d+2))(1 − w)', () => {
    expect(cellScore(0, null)).toBe(0);
    expect(cellScore(2, null)).toBe(0.5);
    expect(cellScore(0, 'medium')).toBeCloseTo(0.6);
    expect(cellScore(1, 'low')).toBeCloseTo(1 - (2 / 3) * 0.7);
    expect(cellScore(0, 'high')).toBe(1);
    expect(cellScore(8, null)).toBeCloseTo(0.8);
  });

  it('rejects malformed runs, naming the field', () => {
    expect(() => buildHeatmap([{ subject: '', containerId: 'c', records: [] }])).toThrow(expect.objectContaining({ details: { field: 'runs[0].subject' } }));
    expect(() => buildHeatmap([{ subject: 's', containerId: 'c', records: [{}] as never }])).toThrow(expect.objectContaining({ details: { field: 'runs[0].records[0].syscall' } }));
    expect(() => buildHeatmap([{ subject: 's', containerId: 'c', records: [], flags: [{ name: 'x', severity: 'dire' }] as never }])).toThrow(expect.objectContaining({ details: { field: 'runs[0].flags' } }));
    expect(buildHeatmap([]).identitySyscall.cells).toEqual([]);
  });
});

function balanced(svg: string): boolean {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (m[3] === '/') continue;
    if (m[1] === '/') {
      if (stack.pop() !== m[2]) return false;
    } else stack.push(m[2]!);
  }
  return stack.length === 0;
}

describe('renderHeatmapSvg', () => {
  it('draws both grids, a legend and the integrity list, with every label escaped', () => {
    const runs = sample();
    runs.push({ subject: 'plugin:<b>&"x"', containerId: 'ctr-<3', records: records([{ syscall: 'forgeone:log/write', verdict: 'deny' }], T0 + 1000, rng(1)) });
    const svg = renderHeatmapSvg(buildHeatmap(runs), { title: 'Rogue & friends' });
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(balanced(svg.slice(svg.indexOf('<svg')))).toBe(true);
    expect(svg).toContain('Rogue &amp; friends');
    expect(svg).toContain('plugin:&lt;b&gt;&amp;&quot;x&quot;');
    expect(svg).not.toContain('<b>');
    expect(svg).toContain('Identity × syscall');
    expect(svg).toContain('Container × time (5 s buckets, UTC)');
    expect(svg).toContain('Legend');
    expect(svg).toContain('Integrity (lowest first)');
    expect(svg).toContain(`fill="${heatColor(1)}"`);
    expect(svg).toContain('>5/1</text>');
    expect(svg).toContain('plugin:fetcher × forgeone:http/fetch: 5 call(s), 5 refused, 1 flag(s) (strongest high), heat 1.00');
  });

  it('shows the hottest rows and columns when there are too many, and says so', () => {
    const runs: HeatmapRun[] = Array.from({ length: 30 }, (_, i) => ({
      subject: `plugin:p${i}`,
      containerId: `ctr-${i}`,
      records: records([{ syscall: `forgeone:op/n${i}`, verdict: i === 29 ? 'deny' : 'allow' }], T0 + i, rng(i)),
    }));
    const svg = renderHeatmapSvg(buildHeatmap(runs), { maxRows: 5, maxCols: 5 });
    expect(svg).toContain('30 identity × 30 syscall (showing the hottest 5 × 5)');
    expect(svg).toContain('plugin:p29');
    expect(() => renderHeatmapSvg({} as Heatmap)).toThrow(/not a heatmap/);
    expect(() => renderHeatmapSvg(buildHeatmap(runs), { maxRows: 0 })).toThrow(expect.objectContaining({ details: { field: 'maxRows' } }));
  });

  it('the colour scale runs from pale yellow to dark red', () => {
    expect(heatColor(0)).toBe('#fff7bc');
    expect(heatColor(0.5)).toBe('#fd8d3c');
    expect(heatColor(1)).toBe('#bd0026');
    expect(heatColor(2)).toBe('#bd0026');
    expect(heatColor(Number.NaN)).toBe('#fff7bc');
  });
});
