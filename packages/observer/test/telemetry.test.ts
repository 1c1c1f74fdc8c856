import { randomBytes } from 'node:crypto';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, isForgeError, trustVector } from '@forgeone/common';
import { SpanStatusCode, TraceFlags, context, trace } from '@opentelemetry/api';
import type { Attributes, Context, Exception, Link, Span, SpanAttributeValue, SpanContext, SpanOptions, SpanStatus, TimeInput, Tracer, TracerProvider } from '@opentelemetry/api';
import { compilePolicy, parsePolicy } from '@forgeone/trust';
import { afterEach, describe, expect, it } from 'vitest';
import { GATE_LATENCY_BUCKETS, PROMETHEUS_CONTENT_TYPE, createMetrics, createTelemetry } from '../src/index.js';
import type { TraceCallRecord } from '../src/index.js';
import { T0, call, scenario } from './helpers.js';

// ------------------------------------------------------------------ a tiny Prometheus text format parser

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

interface Exposition {
  readonly types: Map<string, string>;
  readonly help: Map<string, string>;
  readonly samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/y;

/** Parse the text exposition format strictly: every line a HELP, a TYPE or a sample of a declared family. */
function parseExposition(text: string): Exposition {
  expect(text.endsWith('\n')).toBe(true);
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      expect(meta[2]).toMatch(new RegExp(`^${NAME}$`));
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        expect(types.has(meta[2]!), `TYPE ${meta[2]} twice`).toBe(false);
        types.set(meta[2]!, meta[3]!);
      } else help.set(meta[2]!, meta[3]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    expect(m, `not a sample line: ${JSON.stringify(line)}`).not.toBeNull();
    const [, name, rawLabels, rawValue] = m!;
    const labels: Record<string, string> = {};
    if (rawLabels !== undefined && rawLabels !== '') {
      LABEL.lastIndex = 0;
      let consumed = 0;
      for (let l = LABEL.exec(rawLabels); l !== null; l = LABEL.exec(rawLabels)) {
        labels[l[1]!] = l[2]!.replace(/\\(\\|"|n)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        consumed = LABEL.lastIndex;
        if (l[3] === '') break;
      }
      expect(consumed, `bad labels: ${rawLabels}`).toBe(rawLabels.length);
    }
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
    expect(Number.isNaN(value) && rawValue !== 'NaN', `bad value ${rawValue}`).toBe(false);
    const family = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(family), `sample of undeclared family ${name}`).toBe(true);
    samples.push({ name: name!, labels, value });
  }
  return { types, help, samples };
}

function value(e: Exposition, name: string, labels: Record<string, string>): number | undefined {
  return e.samples.find((s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

// ------------------------------------------------------------------ metrics

describe('Prometheus metrics', () => {
  it('renders the exposition format, with counts that match a known set of records', () => {
    const metrics = createMetrics();
    const records = scenario(); // 11 calls: 2 denials (one by rule, one default), 1 quarantine, 1 suspended, 1 audit
    metrics.observeCalls(records);
    metrics.observeCall(call(11, { duration: 2.5 })); // one more read, 2.5 ms
    metrics.observeRun('quarantined');
    metrics.observeRun('exited');
    metrics.observeRun('exited');
    const text = metrics.render();
    const e = parseExposition(text);
    expect(e.types.get('forgeone_gate_calls_total')).toBe('counter');
    expect(e.types.get('forgeone_gate_call_duration_seconds')).toBe('histogram');
    expect(e.help.get('forgeone_gate_calls_total')).toMatch(/by syscall and verdict/);

    const calls = e.samples.filter((s) => s.name === 'forgeone_gate_calls_total');
    expect(calls.reduce((n, s) => n + s.value, 0)).toBe(12);
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'wasi:filesystem/read', verdict: 'allow' })).toBe(2);
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'wasi:filesystem/read', verdict: 'deny' })).toBe(1);
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'wasi:sockets/tcp-connect', verdict: 'allow' })).toBe(1);
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'wasi:sockets/tcp-connect', verdict: 'deny' })).toBe(1);
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'forgeone:kv/set', verdict: 'audit' })).toBe(1);
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'wasi:cli/stdout', verdict: 'suspended' })).toBe(1);
    expect(value(e, 'forgeone_gate_denials_total', { syscall: 'wasi:filesystem/read', rule: 'base/no-etc' })).toBe(1);
    expect(value(e, 'forgeone_gate_denials_total', { syscall: 'wasi:sockets/tcp-connect', rule: '(default)' })).toBe(1);
    expect(e.samples.filter((s) => s.name === 'forgeone_gate_denials_total')).toHaveLength(2);
    expect(value(e, 'forgeone_gate_quarantines_total', { syscall: 'wasi:filesystem/write' })).toBe(1);
    expect(e.samples.filter((s) => s.name === 'forgeone_gate_quarantines_total')).toHaveLength(1);
    expect(value(e, 'forgeone_container_runs_total', { outcome: 'exited' })).toBe(2);
    expect(value(e, 'forgeone_container_runs_total', { outcome: 'quarantined' })).toBe(1);

    // The histogram: cumulative buckets per syscall, +Inf = count, sum in seconds.
    const reads = e.samples.filter((s) => s.name === 'forgeone_gate_call_duration_seconds_bucket' && s.labels.syscall === 'wasi:filesystem/read');
    expect(reads.map((s) => s.labels.le)).toEqual([...GATE_LATENCY_BUCKETS.map(String), '+Inf']);
    for (let i = 1; i < reads.length; i++) expect(reads[i]!.value).toBeGreaterThanOrEqual(reads[i - 1]!.value);
    // Two reads of 42.5 µs (bucket 50 µs) and one of 2.5 ms (bucket 2.5 ms).
    expect(value(e, 'forgeone_gate_call_duration_seconds_bucket', { syscall: 'wasi:filesystem/read', le: '0.000025' })).toBe(0);
    expect(value(e, 'forgeone_gate_call_duration_seconds_bucket', { syscall: 'wasi:filesystem/read', le: '0.00005' })).toBe(2);
    expect(value(e, 'forgeone_gate_call_duration_seconds_bucket', { syscall: 'wasi:filesystem/read', le: '0.001' })).toBe(2);
    expect(value(e, 'forgeone_gate_call_duration_seconds_bucket', { syscall: 'wasi:filesystem/read', le: '0.0025' })).toBe(3);
    expect(value(e, 'forgeone_gate_call_duration_seconds_bucket', { syscall: 'wasi:filesystem/read', le: '+Inf' })).toBe(3);
    expect(value(e, 'forgeone_gate_call_duration_seconds_count', { syscall: 'wasi:filesystem/read' })).toBe(3);
    expect(value(e, 'forgeone_gate_call_duration_seconds_sum', { syscall: 'wasi:filesystem/read' })).toBeCloseTo(2 * 0.0000425 + 0.0025, 12);
    const counts = e.samples.filter((s) => s.name === 'forgeone_gate_call_duration_seconds_count');
    expect(counts.reduce((n, s) => n + s.value, 0)).toBe(12);
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('counts calls a real compiled policy decided', () => {
    const { policy } = parsePolicy(`
apiVersion: forgeone.policy/v1
name: metrics
version: 1
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
        syscalls: ["wasi:filesystem/*"]
        args: { path: { match: ["/etc/**"] } }
`);
    const syscalls = new SyscallTable(KNOWN_SYSCALLS);
    const identity = createIdentity({ subject: 'plugin:m', tenant: 'acme', roles: ['plugin'], trust: trustVector('Verified', 0.8) });
    const program = compilePolicy(policy, { identity, syscalls });
    const paths = ['/data/a', '/etc/passwd', '/data/b', '/home/x', '/etc/shadow', '/data/c'];
    const records: TraceCallRecord[] = paths.map((path, seq) => {
      const d = program.decide(syscalls.id('wasi:filesystem/read'), { now: T0, calls: seq, rate: 0, denied: 0, anomaly: 0, path });
      const allowed = d.verdict === 'allow' || d.verdict === 'audit';
      return call(seq, { args: { path }, verdict: d.verdict, rule: d.rule, allowed, result: allowed ? 0 : -1 });
    });
    const metrics = createMetrics({ prefix: 'fo' });
    metrics.observeCalls(records);
    const e = parseExposition(metrics.render());
    expect(value(e, 'fo_gate_calls_total', { syscall: 'wasi:filesystem/read', verdict: 'allow' })).toBe(3);
    expect(value(e, 'fo_gate_calls_total', { syscall: 'wasi:filesystem/read', verdict: 'deny' })).toBe(3);
    expect(value(e, 'fo_gate_denials_total', { syscall: 'wasi:filesystem/read', rule: 'base/no-etc' })).toBe(2);
    expect(value(e, 'fo_gate_denials_total', { syscall: 'wasi:filesystem/read', rule: '(default)' })).toBe(1);
  });

  it('escapes label values, bounds cardinality, ignores malformed records, refuses bad options', () => {
    const metrics = createMetrics({ maxSyscalls: 2, maxRules: 1 });
    metrics.observeCall(call(0, { syscall: 'odd"sys\\call\nname', verdict: 'deny', rule: 'r"1', allowed: false }));
    metrics.observeCall(call(1, { syscall: 'b', verdict: 'deny', rule: 'r2', allowed: false }));
    metrics.observeCall(call(2, { syscall: 'c' }));
    metrics.observeCall(call(3, { syscall: 'd' }));
    metrics.observeCall({ ...call(4), verdict: 'bogus' as never });
    metrics.observeCall(null as never);
    metrics.observeRun('Not A Word');
    const e = parseExposition(metrics.render());
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'odd"sys\\call\nname', verdict: 'deny' })).toBe(1);
    expect(value(e, 'forgeone_gate_denials_total', { syscall: 'odd"sys\\call\nname', rule: 'r"1' })).toBe(1);
    expect(value(e, 'forgeone_gate_denials_total', { syscall: 'b', rule: 'other' })).toBe(1);
    expect(value(e, 'forgeone_gate_calls_total', { syscall: 'other', verdict: 'allow' })).toBe(2);
    expect(new Set(e.samples.filter((s) => s.name === 'forgeone_gate_calls_total').map((s) => s.labels.syscall)).size).toBe(3);
    expect(value(e, 'forgeone_container_runs_total', { outcome: 'other' })).toBe(1);
    for (const bad of [{ prefix: '1x' }, { prefix: 'a b' }, { maxSyscalls: 0 }, { maxRules: 1.5 }]) {
      let err: unknown;
      try {
        createMetrics(bad);
      } catch (x) {
        err = x;
      }
      expect(isForgeError(err) && err.code === 'INVALID_ARGUMENT').toBe(true);
    }
    expect(parseExposition(createMetrics().render()).samples).toHaveLength(0);
  });
});

// ------------------------------------------------------------------ OpenTelemetry

/** A span kept in memory, written against the API's interfaces (no SDK). */
class MemorySpan implements Span {
  readonly attributes: Record<string, SpanAttributeValue> = {};
  readonly events: { name: string; attributes?: Attributes }[] = [];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  endTime: TimeInput | undefined;
  ended = false;
  constructor(
    public name: string,
    readonly context: SpanContext,
    readonly parent: SpanContext | undefined,
    readonly startTime: TimeInput | undefined,
    attributes: Attributes | undefined,
  ) {
    if (attributes !== undefined) this.setAttributes(attributes);
  }
  spanContext(): SpanContext {
    return this.context;
  }
  setAttribute(key: string, value: SpanAttributeValue): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    for (const [k, v] of Object.entries(attributes)) if (v !== undefined) this.attributes[k] = v;
    return this;
  }
  addEvent(name: string, attributes?: Attributes | TimeInput): this {
    this.events.push({ name, ...(typeof attributes === 'object' && !(attributes instanceof Date) && !Array.isArray(attributes) ? { attributes } : {}) });
    return this;
  }
  addLink(_link: Link): this {
    return this;
  }
  addLinks(_links: Link[]): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(name: string): this {
    this.name = name;
    return this;
  }
  end(endTime?: TimeInput): void {
    this.ended = true;
    this.endTime = endTime;
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(exception: Exception): void {
    this.events.push({ name: 'exception', attributes: { message: typeof exception === 'string' ? exception : (exception.message ?? '') } });
  }
}

class MemoryTracer implements Tracer {
  readonly spans: MemorySpan[] = [];
  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    const parent = trace.getSpan(ctx)?.spanContext();
    const sc: SpanContext = { traceId: parent?.traceId ?? randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED };
    const span = new MemorySpan(name, sc, parent, options.startTime, options.attributes);
    this.spans.push(span);
    return span;
  }
  startActiveSpan = ((name: string, ...rest: unknown[]) => {
    const fn = rest[rest.length - 1] as (span: Span) => unknown;
    const options = (rest.length > 1 ? rest[0] : {}) as SpanOptions;
    const span = this.startSpan(name, options);
    return context.with(trace.setSpan(context.active(), span), () => fn(span));
  }) as Tracer['startActiveSpan'];
}

class MemoryTracerProvider implements TracerProvider {
  readonly tracer = new MemoryTracer();
  readonly names: string[] = [];
  getTracer(name: string): Tracer {
    this.names.push(name);
    return this.tracer;
  }
}

describe('OpenTelemetry spans', () => {
  afterEach(() => {
    trace.disable();
  });

  it('are silent with no SDK registered (the API no-op default), while metrics still count', () => {
    const metrics = createMetrics();
    const telemetry = createTelemetry({ metrics });
    const run = telemetry.startRun({ containerId: 'ctr-1', traceId: 'tr-1' });
    expect(run.span.isRecording()).toBe(false);
    run.observe(scenario());
    run.event('quarantine');
    run.end({ outcome: 'quarantined' });
    run.end({ outcome: 'exited' }); // once only
    const e = parseExposition(metrics.render());
    expect(value(e, 'forgeone_gate_quarantines_total', { syscall: 'wasi:filesystem/write' })).toBe(1);
    expect(value(e, 'forgeone_container_runs_total', { outcome: 'quarantined' })).toBe(1);
    expect(value(e, 'forgeone_container_runs_total', { outcome: 'exited' })).toBeUndefined();
  });

  it('with a tracer provider registered: a run span and one child span per denied or quarantining call', () => {
    const provider = new MemoryTracerProvider();
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    const telemetry = createTelemetry();
    const run = telemetry.startRun({
      containerId: 'ctr-9',
      traceId: 'tr-9',
      package: { name: 'hello', version: '1.2.0' },
      subject: 'plugin:hello',
      tenant: 'acme',
      policy: { name: 'example', version: 3 },
      startTime: T0,
    });
    expect(run.span.isRecording()).toBe(true);
    const records = scenario();
    run.observe(records.slice(0, 6));
    run.observe(records.slice(6));
    run.event('quarantine', { 'forgeone.call.seq': 9 });
    run.end({ outcome: 'quarantined', endTime: T0 + 100 });

    expect(provider.names).toContain('@forgeone/observer');
    const spans = provider.tracer.spans;
    const root = spans[0]!;
    expect(root.name).toBe('forgeone.container.run');
    expect(root.attributes).toMatchObject({
      'forgeone.container.id': 'ctr-9',
      'forgeone.trace.id': 'tr-9',
      'forgeone.package.name': 'hello',
      'forgeone.policy.version': 3,
      'forgeone.calls.denied': 2,
      'forgeone.calls.quarantined': 1,
      'forgeone.run.outcome': 'quarantined',
    });
    expect(root.status.code).toBe(SpanStatusCode.ERROR);
    expect(root.ended).toBe(true);
    expect(root.endTime).toBe(T0 + 100);
    expect(root.events.map((x) => x.name)).toEqual(['quarantine']);

    const children = spans.slice(1);
    expect(children.map((s) => [s.name, s.attributes['forgeone.call.seq']])).toEqual([
      ['forgeone.call.deny', 3],
      ['forgeone.call.deny', 8],
      ['forgeone.call.quarantine', 9],
    ]);
    for (const c of children) {
      expect(c.parent?.spanId).toBe(root.context.spanId);
      expect(c.context.traceId).toBe(root.context.traceId);
      expect(c.status.code).toBe(SpanStatusCode.ERROR);
      expect(c.ended).toBe(true);
      const r = records[c.attributes['forgeone.call.seq'] as number]!;
      expect(c.startTime).toBe(r.start);
      expect(c.endTime).toBe(r.start + r.duration);
    }
    expect(children[0]!.attributes).toMatchObject({ 'forgeone.call.syscall': 'wasi:filesystem/read', 'forgeone.call.rule': 'base/no-etc', 'forgeone.call.path': '/etc/passwd' });
    expect(children[0]!.status.message).toBe('wasi:filesystem/read denied by base/no-etc');
    expect(children[1]!.attributes).toMatchObject({ 'forgeone.call.host': 'evil.example', 'forgeone.call.port': 6667 });
    expect(children[1]!.attributes['forgeone.call.rule']).toBeUndefined();
  });

  it('records the error that ended a run', () => {
    const tracer = new MemoryTracer();
    const run = createTelemetry({ tracer }).startRun({ containerId: 'ctr-2' });
    run.end({ error: new Error('trap: unreachable'), outcome: 'trapped' });
    expect(tracer.spans[0]!.events).toEqual([{ name: 'exception', attributes: { message: 'trap: unreachable' } }]);
    expect(tracer.spans[0]!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'trap: unreachable' });
    const ok = createTelemetry({ tracer }).startRun({ containerId: 'ctr-3' });
    ok.end({ outcome: 'exited', exitCode: 0 });
    expect(tracer.spans[1]!.status.code).toBe(SpanStatusCode.OK);
    expect(tracer.spans[1]!.attributes['forgeone.run.exit_code']).toBe(0);
  });
});
