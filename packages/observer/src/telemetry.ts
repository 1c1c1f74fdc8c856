// Telemetry: OpenTelemetry spans for container runs and for refused calls (through @opentelemetry/api only,
// so it is silent and nearly free until the host application registers an SDK), and Prometheus metrics
// rendered by a small registry of our own, fed with the same call records the trace writer takes.
import { ForgeError } from '@forgeone/common';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Span, Tracer } from '@opentelemetry/api';
import { CALL_VERDICTS } from './record.js';
import type { CallVerdict, TraceCallRecord } from './record.js';

// ---------------------------------------------------------------------------------------------- metrics

/** The content type of the Prometheus text exposition format (version 0.0.4), for an HTTP response. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Upper bounds (seconds) of the gate latency histogram buckets: 1 µs to 1 s. Fixed, so series from
 * different kernels and versions can be summed.
 */
export const GATE_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
]);

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Metric name prefix (default `forgeone`): names are `<prefix>_gate_calls_total` and so on. */
  readonly prefix?: string;
  /**
   * Most distinct syscall label values kept (default 256); calls of further syscalls are counted under
   * `syscall="other"`. Bounds memory whatever the guests do.
   */
  readonly maxSyscalls?: number;
  /** Most distinct (syscall, rule) denial series (default 1024); further ones count under `rule="other"`. */
  readonly maxRules?: number;
}

/** A Prometheus metrics registry fed with gate call records. */
export interface Metrics {
  /**
   * Count one call: `calls_total` by syscall and verdict, `denials_total` by syscall and rule (verdict
   * `deny`), `quarantines_total` by syscall (verdict `quarantine`), and its duration in the latency
   * histogram. Does not allocate once a syscall's series exist.
   * @param record - a call record (the shape the trace writer takes); malformed ones are ignored
   */
  observeCall(record: TraceCallRecord): void;
  /**
   * Count a batch of calls ({@link Metrics.observeCall} for each).
   * @param records - call records
   */
  observeCalls(records: readonly TraceCallRecord[]): void;
  /**
   * Count a finished container run by outcome (`runs_total`).
   * @param outcome - a short word (`exited`, `trapped`, `quarantined`, ...); anything else counts as `other`
   */
  observeRun(outcome: string): void;
  /**
   * Render every metric in the Prometheus text exposition format (version 0.0.4), series sorted.
   * @returns the exposition text, ending with a newline
   */
  render(): string;
}

const VERDICT_INDEX: ReadonlyMap<string, number> = new Map(CALL_VERDICTS.map((v, i) => [v, i]));
const OUTCOME = /^[a-z][a-z0-9-]{0,63}$/;
const METRIC_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const MAX_OUTCOMES = 64;

/** Per-syscall counters: by verdict, quarantines, latency buckets. Typed arrays, so counting never allocates. */
class SyscallSeries {
  readonly byVerdict = new Float64Array(CALL_VERDICTS.length);
  readonly buckets: Float64Array;
  sum = 0;
  readonly denials = new Map<string, number>();
  constructor(buckets: number) {
    this.buckets = new Float64Array(buckets + 1);
  }
}

/**
 * Escape a label value for the exposition format: backslash, double quote and line feed.
 * @param v - the value
 * @returns the escaped value
 */
function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

/**
 * Create a Prometheus metrics registry for gate calls. Render it at `/metrics` with
 * {@link PROMETHEUS_CONTENT_TYPE}.
 * @param options - name prefix and cardinality bounds
 * @returns the registry
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed prefix or bound
 * @example
 * ```ts
 * const metrics = createMetrics();
 * metrics.observeCalls(records);
 * response.setHeader('content-type', PROMETHEUS_CONTENT_TYPE).end(metrics.render());
 * ```
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const prefix = options.prefix ?? 'forgeone';
  if (typeof prefix !== 'string' || !METRIC_PREFIX.test(prefix)) throw new ForgeError('INVALID_ARGUMENT', `invalid metric prefix ${JSON.stringify(prefix)}`, { details: { field: 'prefix' } });
  const bound = (v: number | undefined, dflt: number, field: string): number => {
    const n = v ?? dflt;
    if (!Number.isSafeInteger(n) || n < 1) throw new ForgeError('INVALID_ARGUMENT', `${field} must be a positive integer`, { details: { field } });
    return n;
  };
  const maxSyscalls = bound(options.maxSyscalls, 256, 'maxSyscalls');
  const maxRules = bound(options.maxRules, 1024, 'maxRules');
  const bounds = Float64Array.from(GATE_LATENCY_BUCKETS);
  const series = new Map<string, SyscallSeries>();
  const runs = new Map<string, number>();
  let ruleSeries = 0;

  const seriesOf = (syscall: string): SyscallSeries => {
    let s = series.get(syscall);
    if (s === undefined) {
      const key = series.size < maxSyscalls ? syscall : 'other';
      s = series.get(key);
      if (s === undefined) {
        s = new SyscallSeries(bounds.length);
        series.set(key, s);
      }
    }
    return s;
  };

  const observeCall = (r: TraceCallRecord): void => {
    if (typeof r !== 'object' || r === null || typeof r.syscall !== 'string') return;
    const v = VERDICT_INDEX.get(r.verdict);
    if (v === undefined) return;
    const s = seriesOf(r.syscall);
    s.byVerdict[v]!++;
    if (r.verdict === 'deny') {
      const rule = typeof r.rule === 'string' ? r.rule : '(default)';
      const n = s.denials.get(rule);
      if (n !== undefined) s.denials.set(rule, n + 1);
      else if (ruleSeries < maxRules) {
        s.denials.set(rule, 1);
        ruleSeries++;
      } else s.denials.set('other', (s.denials.get('other') ?? 0) + 1);
    }
    const d = r.duration;
    if (typeof d === 'number' && d >= 0 && Number.isFinite(d)) {
      const secs = d / 1000;
      let i = 0;
      while (i < bounds.length && secs > bounds[i]!) i++;
      s.buckets[i]!++;
      s.sum += secs;
    }
  };

  return {
    observeCall,
    observeCalls(records) {
      for (let i = 0; i < records.length; i++) observeCall(records[i]!);
    },
    observeRun(outcome) {
      let key = typeof outcome === 'string' && OUTCOME.test(outcome) ? outcome : 'other';
      if (!runs.has(key) && runs.size >= MAX_OUTCOMES) key = 'other';
      runs.set(key, (runs.get(key) ?? 0) + 1);
    },
    render() {
      const names = [...series.keys()].sort();
      const lines: string[] = [];
      const head = (name: string, type: string, help: string): void => {
        lines.push(`# HELP ${prefix}_${name} ${help}`, `# TYPE ${prefix}_${name} ${type}`);
      };
      head('gate_calls_total', 'counter', 'Host calls that crossed the gate, by syscall and verdict.');
      for (const name of names) {
        const s = series.get(name)!;
        const sys = labelValue(name);
        CALL_VERDICTS.forEach((verdict: CallVerdict, i) => {
          const n = s.byVerdict[i]!;
          if (n > 0) lines.push(`${prefix}_gate_calls_total{syscall="${sys}",verdict="${verdict}"} ${num(n)}`);
        });
      }
      head('gate_denials_total', 'counter', 'Calls the policy denied, by syscall and deciding rule ("(default)": no rule matched).');
      for (const name of names) {
        const s = series.get(name)!;
        for (const rule of [...s.denials.keys()].sort()) lines.push(`${prefix}_gate_denials_total{syscall="${labelValue(name)}",rule="${labelValue(rule)}"} ${num(s.denials.get(rule)!)}`);
      }
      head('gate_quarantines_total', 'counter', 'Calls that put their container in quarantine, by syscall.');
      const q = VERDICT_INDEX.get('quarantine')!;
      for (const name of names) {
        const n = series.get(name)!.byVerdict[q]!;
        if (n > 0) lines.push(`${prefix}_gate_quarantines_total{syscall="${labelValue(name)}"} ${num(n)}`);
      }
      head('gate_call_duration_seconds', 'histogram', 'Duration of host calls at the gate, by syscall.');
      for (const name of names) {
        const s = series.get(name)!;
        const sys = labelValue(name);
        let cumulative = 0;
        for (let i = 0; i <= bounds.length; i++) {
          cumulative += s.buckets[i]!;
          lines.push(`${prefix}_gate_call_duration_seconds_bucket{syscall="${sys}",le="${num(i < bounds.length ? bounds[i]! : Infinity)}"} ${num(cumulative)}`);
        }
        lines.push(`${prefix}_gate_call_duration_seconds_sum{syscall="${sys}"} ${num(s.sum)}`, `${prefix}_gate_call_duration_seconds_count{syscall="${sys}"} ${num(cumulative)}`);
      }
      head('container_runs_total', 'counter', 'Container runs that ended, by outcome.');
      for (const outcome of [...runs.keys()].sort()) lines.push(`${prefix}_container_runs_total{outcome="${labelValue(outcome)}"} ${num(runs.get(outcome)!)}`);
      return `${lines.join('\n')}\n`;
    },
  };
}

// ---------------------------------------------------------------------------------------------- tracing

/** The instrumentation scope name spans are created under. */
export const TRACER_NAME = '@forgeone/observer';

/** What a run span records about the run. */
export interface RunSpanInfo {
  /** The container. */
  readonly containerId: string;
  /** The execution DNA trace id, when the run is traced. */
  readonly traceId?: string;
  /** The package that ran. */
  readonly package?: { readonly name: string; readonly version: string };
  /** Who ran it. */
  readonly subject?: string;
  /** Its tenant. */
  readonly tenant?: string;
  /** The policy in force. */
  readonly policy?: { readonly name: string; readonly version: number };
  /** Start time, ms since the epoch (default: now). */
  readonly startTime?: number;
}

/** How a run ended. */
export interface RunEnd {
  /** A short word: `exited`, `trapped`, `timeout`, `quarantined`, `terminated`, ... */
  readonly outcome?: string;
  /** The guest's exit code. */
  readonly exitCode?: number;
  /** The error that ended it, recorded on the span. */
  readonly error?: unknown;
  /** End time, ms since the epoch (default: now). */
  readonly endTime?: number;
}

/** The telemetry of one container run. */
export interface RunTelemetry {
  /** The run's span (non-recording when no OpenTelemetry SDK is registered). */
  readonly span: Span;
  /**
   * Observe call records of the run: each denied, quarantining or terminated call becomes a child span
   * (timed from the record; only when the run span is recording), and every call is counted in the
   * metrics, when there are any.
   * @param records - call records, as the gate's recorder hands them over
   */
  observe(records: readonly TraceCallRecord[]): void;
  /**
   * Note an event on the run span (e.g. `quarantine`, `release`).
   * @param name - the event name
   * @param attributes - its attributes
   */
  event(name: string, attributes?: Attributes): void;
  /**
   * End the run span (once; later calls do nothing) and count the run in the metrics.
   * @param end - outcome, exit code, error, end time
   */
  end(end?: RunEnd): void;
}

/** Options of {@link createTelemetry}. */
export interface TelemetryOptions {
  /** The tracer; default `trace.getTracer('@forgeone/observer')` of the global provider (a no-op one until an SDK registers). */
  readonly tracer?: Tracer;
  /** Metrics to feed, if any. */
  readonly metrics?: Metrics;
}

/** Telemetry of the kernel: spans for runs and refused calls, and metrics. */
export interface Telemetry {
  /** The metrics fed, if any. */
  readonly metrics: Metrics | undefined;
  /**
   * Start the span of a container run.
   * @param info - what ran, for whom, under which policy
   * @returns the run's telemetry
   */
  startRun(info: RunSpanInfo): RunTelemetry;
}

/** Verdicts that get a span of their own. */
const REFUSED: ReadonlySet<string> = new Set(['deny', 'quarantine', 'terminated']);

function callAttributes(r: TraceCallRecord): Attributes {
  const a: Attributes = { 'forgeone.call.seq': r.seq, 'forgeone.call.syscall': r.syscall, 'forgeone.call.verdict': r.verdict, 'forgeone.call.result': r.result };
  if (r.rule !== null) a['forgeone.call.rule'] = r.rule;
  const args = r.args ?? {};
  if (args.path !== undefined) a['forgeone.call.path'] = args.path;
  if (args.host !== undefined) a['forgeone.call.host'] = args.host;
  if (args.port !== undefined) a['forgeone.call.port'] = args.port;
  if (args.size !== undefined) a['forgeone.call.size'] = args.size;
  if (args.detail !== undefined) a['forgeone.call.detail'] = args.detail;
  return a;
}

/**
 * Create the kernel's telemetry. Spans go through `@opentelemetry/api`: with no SDK registered they are
 * non-recording and nothing is exported (refused-call spans are then not even created).
 * @param options - tracer and metrics
 * @returns the telemetry
 * @example
 * ```ts
 * const telemetry = createTelemetry({ metrics: createMetrics() });
 * const run = telemetry.startRun({ containerId: 'ctr-1', traceId: 'tr-1' });
 * run.observe(records);
 * run.end({ outcome: 'exited', exitCode: 0 });
 * ```
 */
export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const metrics = options.metrics;
  return {
    metrics,
    startRun(info) {
      const attributes: Attributes = { 'forgeone.container.id': info.containerId };
      if (info.traceId !== undefined) attributes['forgeone.trace.id'] = info.traceId;
      if (info.package !== undefined) {
        attributes['forgeone.package.name'] = info.package.name;
        attributes['forgeone.package.version'] = info.package.version;
      }
      if (info.subject !== undefined) attributes['forgeone.identity.subject'] = info.subject;
      if (info.tenant !== undefined) attributes['forgeone.identity.tenant'] = info.tenant;
      if (info.policy !== undefined) {
        attributes['forgeone.policy.name'] = info.policy.name;
        attributes['forgeone.policy.version'] = info.policy.version;
      }
      const span = tracer.startSpan('forgeone.container.run', { kind: SpanKind.INTERNAL, attributes, ...(info.startTime === undefined ? {} : { startTime: info.startTime }) });
      const parent = trace.setSpan(context.active(), span);
      let denied = 0;
      let quarantined = 0;
      let ended = false;
      return {
        span,
        observe(records) {
          if (metrics !== undefined) metrics.observeCalls(records);
          const recording = span.isRecording();
          for (let i = 0; i < records.length; i++) {
            const r = records[i]!;
            if (!REFUSED.has(r.verdict)) continue;
            if (r.verdict === 'deny') denied++;
            else quarantined++;
            if (!recording) continue;
            const child = tracer.startSpan(`forgeone.call.${r.verdict}`, { kind: SpanKind.INTERNAL, startTime: r.start, attributes: callAttributes(r) }, parent);
            child.setStatus({ code: SpanStatusCode.ERROR, message: `${r.syscall} ${r.verdict === 'deny' ? 'denied' : r.verdict === 'quarantine' ? 'quarantined the container' : 'refused: container terminated'}${r.rule === null ? '' : ` by ${r.rule}`}` });
            child.end(r.start + r.duration);
          }
        },
        event(name, attrs) {
          span.addEvent(name, attrs);
        },
        end(end = {}) {
          if (ended) return;
          ended = true;
          span.setAttribute('forgeone.calls.denied', denied);
          span.setAttribute('forgeone.calls.quarantined', quarantined);
          if (end.outcome !== undefined) span.setAttribute('forgeone.run.outcome', end.outcome);
          if (end.exitCode !== undefined) span.setAttribute('forgeone.run.exit_code', end.exitCode);
          if (end.error !== undefined) {
            const e = end.error instanceof Error ? end.error : new Error(String(end.error));
            span.recordException(e);
            span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
          } else if (end.outcome !== undefined && end.outcome !== 'exited') {
            span.setStatus({ code: SpanStatusCode.ERROR, message: `run ended: ${end.outcome}` });
          } else span.setStatus({ code: SpanStatusCode.OK });
          span.end(end.endTime);
          metrics?.observeRun(end.outcome ?? 'unknown');
        },
      };
    },
  };
}
