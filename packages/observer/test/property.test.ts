import { canonicalJson } from '@forgeone/common';
import { createMemoryStore } from '@forgeone/store';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CALL_VERDICTS, createTraceWriter, exportTrace, verifyTrace } from '../src/index.js';
import type { TraceCallRecord } from '../src/index.js';
import { CallLineSchema, callLineText, recordLineObject, scanCallLine } from '../src/record.js';
import { T0, crypto, header, kernelKey } from './helpers.js';

const trusted = { trustedKeys: [kernelKey.toPublic()], crypto };

const recordArb = fc.record({
  syscall: fc.constantFrom('wasi:filesystem/read', 'wasi:sockets/tcp-connect', 'forgeone:kv/get', 'wasi:random/random', 'wasi:cli/stdout'),
  path: fc.option(fc.constantFrom('/data/a', '/etc/passwd', '/tmp/é'), { nil: undefined }),
  host: fc.option(fc.constantFrom('example.com', 'evil.test'), { nil: undefined }),
  port: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
  verdict: fc.constantFrom(...CALL_VERDICTS),
  rule: fc.option(fc.constantFrom('base/a', 'net/b'), { nil: null }),
  result: fc.integer({ min: -1, max: 70 }),
  bytes: fc.option(fc.uint8Array({ maxLength: 12 }), { nil: null }),
});

const traceArb = fc.record({
  chunks: fc.array(fc.record({ records: fc.array(recordArb, { maxLength: 6 }), checkpoint: fc.boolean() }), { maxLength: 6 }),
  blockSize: fc.integer({ min: 1, max: 5 }),
  checkpointEvery: fc.integer({ min: 0, max: 3 }),
  flags: fc.array(fc.record({ name: fc.constantFrom('a', 'b'), severity: fc.constantFrom('low' as const, 'medium' as const, 'high' as const) }), { maxLength: 2 }),
});

type Mutation = { kind: 'edit'; line: number; leaf: number } | { kind: 'drop'; line: number } | { kind: 'swap'; a: number; b: number } | { kind: 'dup'; line: number; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('edit' as const), line: fc.nat(), leaf: fc.nat() }),
  fc.record({ kind: fc.constant('drop' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('dup' as const), line: fc.nat(), at: fc.nat() }),
);

type TraceInput = typeof traceArb extends fc.Arbitrary<infer T> ? T : never;

async function buildTrace(t: TraceInput): Promise<string> {
  const store = createMemoryStore();
  const w = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: header('prop'), blockSize: t.blockSize, checkpointEvery: t.checkpointEvery });
  let seq = 0;
  for (const chunk of t.chunks) {
    const records: TraceCallRecord[] = chunk.records.map((r) => {
      const args: { path?: string; host?: string; port?: number } = {};
      if (r.path !== undefined) args.path = r.path;
      if (r.host !== undefined) args.host = r.host;
      if (r.port !== undefined) args.port = r.port;
      const allowed = r.verdict === 'allow' || r.verdict === 'audit';
      return { seq: seq++, syscall: r.syscall, args, verdict: r.verdict, rule: r.rule, allowed, result: r.result, start: T0 + seq * 0.5, duration: 0.001 * seq, resultBytes: r.bytes };
    });
    await w.append(records);
    if (chunk.checkpoint) await w.checkpoint('quarantine');
  }
  await w.stop({ endTime: T0 + 1000, outcome: 'exited', exitCode: 0, flags: t.flags });
  return exportTrace(store, 'prop');
}

function leaves(value: unknown, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
    for (const [k, v] of entries) leaves(v, [...path, k], out);
  } else out.push(path);
  return out;
}

function changed(v: unknown): unknown {
  if (typeof v === 'string') return `${v}x`;
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  return 'x';
}

/** Apply a mutation; returns the new lines, or null when the mutation is a no-op. */
function mutate(lines: string[], m: Mutation): string[] | null {
  const n = lines.length;
  const out = [...lines];
  switch (m.kind) {
    case 'edit': {
      const i = m.line % n;
      const value = JSON.parse(lines[i]!) as Record<string, unknown>;
      const all = leaves(value);
      const path = all[m.leaf % all.length]!;
      let parent: Record<string | number, unknown> = value;
      for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
      const last = path[path.length - 1]!;
      parent[last] = changed(parent[last]);
      out[i] = canonicalJson(value);
      break;
    }
    case 'drop':
      out.splice(m.line % n, 1);
      break;
    case 'swap': {
      const a = m.a % n;
      const b = m.b % n;
      if (a === b) return null;
      out[a] = lines[b]!;
      out[b] = lines[a]!;
      break;
    }
    case 'dup':
      out.splice(m.at % (n + 1), 0, lines[m.line % n]!);
      break;
  }
  return out;
}

describe('verifyTrace finds any single mutation and points at it (fast-check)', () => {
  it('an unmutated random trace verifies', async () => {
    await fc.assert(
      fc.asyncProperty(traceArb, async (t) => {
        const text = await buildTrace(t);
        const v = verifyTrace(text, trusted);
        expect(v.issue).toBeNull();
        expect(v.records).toBe(t.chunks.reduce((s, c) => s + c.records.length, 0));
      }),
      { numRuns: 60 },
    );
  });

  it('edit a field, drop a line, swap two lines, duplicate a line: verification fails at the first changed line', async () => {
    await fc.assert(
      fc.asyncProperty(traceArb, mutationArb, async (t, m) => {
        const lines = (await buildTrace(t)).trimEnd().split('\n');
        const mutated = mutate(lines, m);
        fc.pre(mutated !== null);
        let first = 0;
        while (first < lines.length && mutated![first] === lines[first]) first++;
        const v = verifyTrace(`${mutated!.join('\n')}\n`, trusted);
        expect(v.ok, `${m.kind} at line ${first + 1} went undetected`).toBe(false);
        expect(v.issue!.line, `${JSON.stringify(m)}: ${v.issue!.code} ${v.issue!.message}`).toBe(first + 1);
        // A record edit names the record.
        if (m.kind === 'edit' && v.issue!.code === 'RECORD_ALTERED') {
          expect(v.issue!.seq).toBe((JSON.parse(lines[first]!) as { seq: number }).seq);
        }
      }),
      { numRuns: Number(process.env.OBSERVER_FC_RUNS ?? 600) },
    );
  });
});

/** The verifier's slow path for a call line: JSON.parse, canonical form, schema. */
function slowCallLine(text: string): unknown {
  try {
    const v = JSON.parse(text) as unknown;
    if (canonicalJson(v) !== text) return null;
    const r = CallLineSchema.safeParse(v);
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

const edits = fc.array(
  fc.record({
    kind: fc.constantFrom('replace' as const, 'insert' as const, 'delete' as const),
    at: fc.nat(),
    ch: fc.constantFrom('"', '\\', ',', ':', '{', '}', '[', ']', '0', '1', '9', '-', '+', '.', 'e', 'a', 'A', '=', '/', ' ', '\n', '\u0001', 'é', 'n', 'u', 'l', 't', 'r', 'f'),
  }),
  { minLength: 1, maxLength: 3 },
);

function edit(text: string, es: readonly { kind: 'replace' | 'insert' | 'delete'; at: number; ch: string }[]): string {
  let t = text;
  for (const e of es) {
    const i = e.at % (t.length + 1);
    if (e.kind === 'insert') t = t.slice(0, i) + e.ch + t.slice(i);
    else if (e.kind === 'delete') t = t.slice(0, i) + t.slice(i + 1);
    else t = t.slice(0, i) + e.ch + t.slice(i + 1);
  }
  return t;
}

describe('the verifier scanner', () => {
  it('never accepts a line the slow path refuses, and reads what it reads (edited lines)', () => {
    fc.assert(
      fc.property(recordArb, fc.nat({ max: 1000 }), fc.integer({ min: -2, max: 10 ** 15 }), edits, fc.option(fc.string({ unit: 'binary', maxLength: 8 }), { nil: undefined }), (r, block, n, es, detail) => {
        const args: { path?: string; host?: string; port?: number; detail?: string } = {};
        if (detail !== undefined) args.detail = detail;
        if (r.path !== undefined) args.path = r.path;
        if (r.host !== undefined) args.host = r.host;
        if (r.port !== undefined) args.port = r.port;
        const record = { seq: Math.abs(n), syscall: r.syscall, args, verdict: r.verdict, rule: r.rule, allowed: n % 2 === 0, result: r.result, start: T0 + (n % 1e6), duration: 0.5, resultBytes: r.bytes };
        const line = callLineText(record, block);
        const direct = scanCallLine(line);
        expect(slowCallLine(line)).not.toBeNull();
        if (direct !== null || !line.includes('\\')) expect(direct).toEqual(slowCallLine(line));
        const mutated = edit(line, es);
        // The verifier never scans text with lone surrogates (an edit can split a pair).
        fc.pre(!/\p{Cs}/u.test(mutated));
        const scanned = scanCallLine(mutated);
        if (scanned !== null) expect(scanned).toEqual(slowCallLine(mutated));
      }),
      { numRuns: 5000 },
    );
  });

  it('defers lines with escapes, and refuses non-canonical numbers, unknown verdicts and bad base64', () => {
    const line = callLineText({ seq: 7, syscall: 'wasi:cli/stdout', args: { size: 3 }, verdict: 'allow', rule: 'r/x', allowed: true, result: 0, start: 1, duration: 0, resultBytes: new Uint8Array([1, 2, 3]) }, 0);
    expect(scanCallLine(line)).toMatchObject({ seq: 7, args: { size: 3 }, resultBytes: 'AQID' });
    for (const bad of [
      line.replace('"seq":7', '"seq":07'),
      line.replace('"seq":7', '"seq":-0'),
      line.replace('"seq":7', '"seq":7.0'),
      line.replace('"seq":7', '"seq":1e1'),
      line.replace('"seq":7', '"seq":90071992547409920'),
      line.replace('"result":0', '"result":-0'),
      line.replace('"verdict":"allow"', '"verdict":"allowed"'),
      line.replace('AQID', 'AQ=D'),
      line.replace('AQID', 'AQ'),
      line.replace('"rule":"r/x"', '"rule":""'),
      line.replace('"syscall":"wasi:cli/stdout"', '"syscall":"wasi:cli\\/stdout"'),
      line.replace('{"size":3}', '{"size":3,"port":1}'),
      line.replace('{"size":3}', '{ "size":3}'),
      `${line} `,
      line.replace('"t":"call",', ''),
    ]) {
      expect(scanCallLine(bad), bad).toBeNull();
    }
  });
});

describe('the record serialiser', () => {
  it('gives exactly canonicalJson for any record', () => {
    const str = fc.string({ unit: 'binary', maxLength: 20 });
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          block: fc.nat(),
          syscall: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
          path: fc.option(str, { nil: undefined }),
          host: fc.option(str, { nil: undefined }),
          detail: fc.option(str, { nil: undefined }),
          port: fc.option(fc.nat(), { nil: undefined }),
          size: fc.option(fc.nat(), { nil: undefined }),
          verdict: fc.constantFrom(...CALL_VERDICTS),
          rule: fc.option(fc.string({ minLength: 1, maxLength: 10 }), { nil: null }),
          allowed: fc.boolean(),
          result: fc.integer(),
          start: fc.double({ min: 0, max: 2e12, noNaN: true }),
          duration: fc.double({ min: 0, max: 1e6, noNaN: true }),
          bytes: fc.option(fc.uint8Array({ maxLength: 10 }), { nil: null }),
        }),
        (r) => {
          const args: { path?: string; host?: string; port?: number; size?: number; detail?: string } = {};
          if (r.path !== undefined) args.path = r.path;
          if (r.host !== undefined) args.host = r.host;
          if (r.detail !== undefined) args.detail = r.detail;
          if (r.port !== undefined) args.port = r.port;
          if (r.size !== undefined) args.size = r.size;
          const record = { seq: r.seq, syscall: r.syscall, args, verdict: r.verdict, rule: r.rule, allowed: r.allowed, result: r.result, start: r.start, duration: r.duration, resultBytes: r.bytes };
          const o = recordLineObject(record);
          o.block = r.block;
          const text = callLineText(record, r.block);
          expect(text).toBe(canonicalJson(o));
          // The verifier's scanner reads back exactly what the slow path reads, or defers to it.
          const scanned = scanCallLine(text);
          const reference = slowCallLine(text);
          expect(reference).not.toBeNull();
          if (scanned !== null) expect(scanned).toEqual(reference);
          else expect(text.includes('\\')).toBe(true); // escapes: the slow path reads those
        },
      ),
      { numRuns: 2000 },
    );
  });
});
