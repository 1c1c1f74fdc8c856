import { ForgeError, formatFieldPath } from '@forgeone/common';
import { CALL_VERDICTS } from '@forgeone/observer';
import type { AnomalyFlag, TraceCallRecord } from '@forgeone/observer';
import { globSource } from '@forgeone/trust';
import { z } from 'zod';
import { SEVERITY_WEIGHT, checkBaselineKey, checkRecord, checkRecords, flag, isRefused, targetOf } from './types.js';
import type { AnomalyDetector, AnomalyResult, RunObserver, RunRecords } from './types.js';

/** The placeholders a rule's `output` may use. */
export const RULE_PLACEHOLDERS = Object.freeze(['id', 'syscall', 'verdict', 'rule', 'seq', 'count', 'path', 'host', 'port', 'detail', 'target'] as const);

const Glob = z.string().min(1).max(512);
const Globs = z.union([Glob, z.array(Glob).min(1).max(256)]);

/** Schema of a declarative detection rule. */
export const DetectionRuleSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an id is 1-64 of A-Z a-z 0-9 . _ -, starting alphanumeric'),
  description: z.string().max(1024).optional(),
  when: z
    .strictObject({
      syscall: Globs.optional(),
      verdict: z.array(z.enum(CALL_VERDICTS)).min(1).optional(),
      refused: z.boolean().optional(),
      args: z
        .strictObject({
          path: Globs.optional(),
          host: Globs.optional(),
          port: z.array(z.number().int().min(0).max(65535)).min(1).max(1024).optional(),
          detail: Globs.optional(),
        })
        .optional(),
      countAtLeast: z.number().int().min(1).max(1_000_000_000).optional(),
      withinMs: z.number().int().min(1).max(86_400_000).optional(),
    })
    .refine((w) => w.withinMs === undefined || w.countAtLeast !== undefined, { message: 'withinMs needs countAtLeast', path: ['withinMs'] }),
  priority: z.enum(['low', 'medium', 'high']),
  output: z
    .string()
    .min(1)
    .max(1024)
    .refine((s) => [...s.matchAll(/\{([^}]*)\}/g)].every((m) => (RULE_PLACEHOLDERS as readonly string[]).includes(m[1]!)), {
      message: `output may use only the placeholders ${RULE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`,
    }),
});

/** A declarative detection rule: a condition on call attributes, a priority and an output message template. */
export type DetectionRule = z.infer<typeof DetectionRuleSchema>;

/** The input form of a rule (before defaults). */
export type DetectionRuleInput = z.input<typeof DetectionRuleSchema>;

/**
 * Rules that need no baseline: sensitive files, escape-shaped keys, file: URLs, the cloud metadata address,
 * loopback, and a burst of refusals.
 */
export const DEFAULT_DETECTION_RULES: readonly DetectionRule[] = Object.freeze([
  {
    id: 'sensitive-file',
    description: 'A WASI file operation on a system file (credentials, process state, kernel interfaces).',
    when: { syscall: 'wasi:filesystem/*', args: { path: ['/etc/**', '/proc/**', '/sys/**', '/root/**', '/dev/**', '**/.ssh/**'] } },
    priority: 'high',
    output: '{syscall} of sensitive file {path} ({verdict})',
  },
  {
    id: 'kv-escape-key',
    description: 'A key-value key shaped like a path escape: absolute, with a .. or empty segment.',
    when: { syscall: 'forgeone:kv/*', args: { detail: ['/*', '..', '../*', '*/..', '*/../*', '*//*'] } },
    priority: 'high',
    output: '{syscall} with an escape-shaped key {detail} ({verdict})',
  },
  {
    id: 'file-url',
    description: 'An HTTP fetch of a file: URL.',
    when: { syscall: 'forgeone:http/fetch', args: { detail: '* file' } },
    priority: 'high',
    output: 'fetch of a file: URL ({detail}, {verdict})',
  },
  {
    id: 'metadata-address',
    description: 'A connection to a cloud instance metadata service.',
    when: { args: { host: ['169.254.169.254', 'metadata.google.internal', 'metadata', 'fd00:ec2::254', '100.100.100.200'] } },
    priority: 'high',
    output: '{syscall} to the cloud metadata address {host}:{port} ({verdict})',
  },
  {
    id: 'loopback',
    description: 'A connection to the host itself.',
    when: { args: { host: ['127.*', 'localhost', '::1', '0.0.0.0'] } },
    priority: 'medium',
    output: '{syscall} to loopback {host}:{port} ({verdict})',
  },
  {
    id: 'burst-of-denials',
    description: 'Five refused calls or more in one run.',
    when: { refused: true, countAtLeast: 5 },
    priority: 'medium',
    output: '{count} refused calls, the latest {syscall} {target} ({rule})',
  },
] satisfies DetectionRule[]);

/**
 * Validate rules.
 * @param rules - rule documents (parsed JSON or YAML)
 * @returns the rules
 * @throws ForgeError `INVALID_ARGUMENT` naming the first bad field, e.g. `rules[2].when.args.port[0]`
 */
export function parseDetectionRules(rules: unknown): DetectionRule[] {
  const parsed = z.array(DetectionRuleSchema).max(10_000).safeParse(rules);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = formatFieldPath(['rules', ...issue.path]);
    throw new ForgeError('INVALID_ARGUMENT', `detection rule field ${path}: ${issue.message}`, { details: { field: path } });
  }
  const ids = new Set<string>();
  parsed.data.forEach((r, i) => {
    if (ids.has(r.id)) throw new ForgeError('INVALID_ARGUMENT', `detection rule field rules[${i}].id: duplicate id ${r.id}`, { details: { field: `rules[${i}].id` } });
    ids.add(r.id);
  });
  return parsed.data;
}

function list(g: string | readonly string[] | undefined): readonly string[] | undefined {
  return g === undefined ? undefined : typeof g === 'string' ? [g] : g;
}

/** `*` any characters, `?` one: for syscall names, hosts and details. */
function plainGlob(globs: readonly string[]): (s: string) => boolean {
  const re = new RegExp(`^(?:${globs.map((g) => g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')).join('|')})$`, 's');
  return (s) => re.test(s);
}

/** Path globs as in policies (`*` within a segment, `**` across segments). */
function pathGlob(globs: readonly string[]): (s: string) => boolean {
  const re = new RegExp(`^(?:${globs.map((g) => globSource(g)).join('|')})$`, 's');
  return (s) => re.test(s);
}

interface CompiledRule {
  readonly rule: DetectionRule;
  readonly matches: (r: TraceCallRecord) => boolean;
}

function compileRule(rule: DetectionRule): CompiledRule {
  const w = rule.when;
  const tests: ((r: TraceCallRecord) => boolean)[] = [];
  const sys = list(w.syscall);
  if (sys !== undefined) {
    const m = plainGlob(sys);
    tests.push((r) => m(r.syscall));
  }
  if (w.verdict !== undefined) {
    const vs = new Set<string>(w.verdict);
    tests.push((r) => vs.has(r.verdict));
  }
  if (w.refused !== undefined) {
    const want = w.refused;
    tests.push((r) => isRefused(r) === want);
  }
  const path = list(w.args?.path);
  if (path !== undefined) {
    const m = pathGlob(path);
    tests.push((r) => r.args.path !== undefined && m(r.args.path));
  }
  const host = list(w.args?.host);
  if (host !== undefined) {
    const m = plainGlob(host);
    tests.push((r) => r.args.host !== undefined && m(r.args.host));
  }
  if (w.args?.port !== undefined) {
    const ports = new Set(w.args.port);
    tests.push((r) => r.args.port !== undefined && ports.has(r.args.port));
  }
  const detail = list(w.args?.detail);
  if (detail !== undefined) {
    const m = plainGlob(detail);
    tests.push((r) => r.args.detail !== undefined && m(r.args.detail));
  }
  return { rule, matches: (r) => tests.every((t) => t(r)) };
}

function render(template: string, rule: DetectionRule, r: TraceCallRecord, count: number): string {
  const values: Record<(typeof RULE_PLACEHOLDERS)[number], string> = {
    id: rule.id,
    syscall: r.syscall,
    verdict: r.verdict,
    rule: r.rule ?? 'default action',
    seq: String(r.seq),
    count: String(count),
    path: r.args.path ?? '',
    host: r.args.host ?? '',
    port: r.args.port === undefined ? '' : String(r.args.port),
    detail: r.args.detail ?? '',
    target: targetOf(r),
  };
  return template.replace(/\{([a-z]+)\}/g, (_m, k: string) => values[k as keyof typeof values] ?? '');
}

/** Options of {@link createRuleDetector}. */
export interface RuleDetectorOptions {
  /** The rules (validated; default {@link DEFAULT_DETECTION_RULES}). */
  readonly rules?: unknown;
  /** The detector name (default `rules`). */
  readonly name?: string;
}

/**
 * The declarative rule detector: each rule is a condition on call attributes (syscall and argument globs,
 * verdicts, refused or not, a count and optionally a time window), a priority and an output template. A rule
 * fires once per run, at the record where its count is reached, as a flag named after the rule with the
 * rule's priority as severity and the rendered output as detail. Score: the weight of the highest priority that
 * fired (low 0.3, medium 0.6, high 1). It learns nothing: `learn` is a no-op and results say `baseline: false`.
 * @param options - rules and name
 * @returns the detector
 * @throws ForgeError `INVALID_ARGUMENT` naming the bad rule field
 * @example
 * ```ts
 * const rules = createRuleDetector({ rules: [{ id: 'no-tmp', when: { args: { path: '/tmp/**' } }, priority: 'medium', output: '{syscall} {path}' }] });
 * ```
 */
export function createRuleDetector(options: RuleDetectorOptions = {}): AnomalyDetector {
  const name = options.name ?? 'rules';
  const rules = (options.rules === undefined ? DEFAULT_DETECTION_RULES : parseDetectionRules(options.rules)).map(compileRule);

  const observer = (): RunObserver => {
    const counts = new Array<number>(rules.length).fill(0);
    const times: number[][] = rules.map(() => []);
    const fired: AnomalyFlag[] = [];
    const done = new Array<boolean>(rules.length).fill(false);
    let finished: AnomalyResult | null = null;
    return {
      observe(record) {
        if (finished !== null) throw new ForgeError('INVALID_ARGUMENT', 'this run is finished');
        checkRecord(record);
        let out: AnomalyFlag[] | null = null;
        for (let i = 0; i < rules.length; i++) {
          if (done[i]) continue;
          const { rule, matches } = rules[i]!;
          if (!matches(record)) continue;
          const w = rule.when;
          let count: number;
          if (w.withinMs !== undefined) {
            const t = times[i]!;
            t.push(record.start);
            while (t.length > 0 && record.start - t[0]! >= w.withinMs) t.shift();
            count = t.length;
          } else count = ++counts[i]!;
          if (count < (w.countAtLeast ?? 1)) continue;
          done[i] = true;
          const f = flag(rule.id, rule.priority, render(rule.output, rule, record, count), record.seq);
          fired.push(f);
          (out ??= []).push(f);
        }
        return out;
      },
      finish() {
        if (finished !== null) return finished;
        const score = fired.reduce((m, f) => Math.max(m, SEVERITY_WEIGHT[f.severity]), 0);
        return (finished = { detector: name, score, flags: [...fired], baseline: false });
      },
    };
  };

  return {
    name,
    async learn(runs, key) {
      checkBaselineKey(key);
      if (!Array.isArray(runs)) throw new ForgeError('INVALID_ARGUMENT', 'runs must be an array of runs', { details: { field: 'runs' } });
    },
    async score(records: RunRecords, key) {
      checkBaselineKey(key);
      checkRecords(records);
      const o = observer();
      for (const r of records) o.observe(r);
      return o.finish();
    },
    async start(key) {
      checkBaselineKey(key);
      return observer();
    },
  };
}
