import type { VerifyIssue } from './codes.js';
import type { TraceCallRecord } from './record.js';
import { INTEGRITY_PENALTIES, SummaryAccumulator, integrityMilli } from './summary.js';
import type { AnomalyFlag, CallCounts } from './summary.js';
import type { Trace } from './trace.js';

/** The verdict of an explanation. */
export type TraceVerdict = 'clean' | 'suspicious' | 'compromised';

/**
 * The rules of the verdict, in the order they are checked; the first level whose rule holds wins.
 * `compromised`: the trace failed verification, the run was terminated, an anomaly flag is `high`, or the
 * integrity score is below 0.5. `suspicious`: a call was quarantined, suspended or denied, any anomaly flag
 * was raised, the integrity score is below 0.9, or the trace was not stopped. `clean`: none of these.
 */
export const VERDICT_RULES = Object.freeze({
  compromised: 'verification failed, or terminated, or a high-severity flag, or integrity < 0.5',
  suspicious: 'a quarantined, suspended or denied call, or any flag, or integrity < 0.9, or the trace is incomplete',
  clean: 'none of the above',
} as const);

/** What {@link explainTrace} knows beyond the trace. */
export interface ExplainOptions {
  /** The policy's own explanation of a rule (`node/rule`), e.g. its reason text; undefined when unknown. */
  readonly ruleExplanation?: (rule: string) => string | undefined;
  /** Anomalies raised outside the trace (detectors, people); added to the trace's own flags. */
  readonly flags?: readonly AnomalyFlag[];
  /** The outcome of {@link verifyTrace} on the same trace; without it the explanation says signatures were not checked. */
  readonly verification?: { readonly ok: boolean; readonly issue: VerifyIssue | null; readonly signers: readonly string[] };
}

/** One thing a run touched (a path, a host, a key-value key). */
export interface TouchedItem {
  /** The path, `host:port` or key. */
  readonly target: string;
  /** The syscalls that touched it, sorted. */
  readonly operations: readonly string[];
  /** How many calls. */
  readonly calls: number;
  /** How many of them were refused. */
  readonly refused: number;
}

/** Refused calls grouped by deciding rule. */
export interface DenialGroup {
  /** The rule (`node/rule`), or null for the policy's default action or a quarantine/termination refusal. */
  readonly rule: string | null;
  /** Why: the policy's own text when given, otherwise a generic one. */
  readonly explanation: string;
  /** How many calls. */
  readonly calls: number;
  /** Verdicts seen, sorted. */
  readonly verdicts: readonly string[];
  /** The first few calls: sequence number, syscall and target. */
  readonly examples: readonly { readonly seq: number; readonly syscall: string; readonly target: string | null }[];
}

/** The machine-readable explanation. */
export interface TraceExplanationJson {
  /** The trace id. */
  readonly traceId: string;
  /** The container. */
  readonly containerId: string;
  /** Who ran it. */
  readonly who: { readonly subject: string; readonly tenant: string; readonly roles: readonly string[]; readonly trustLevel: string; readonly trustScore: number };
  /** What ran, under which policy. */
  readonly what: { readonly package: { readonly name: string; readonly version: string; readonly hash: string }; readonly policy: { readonly name: string; readonly version: number } };
  /** When: ISO times and duration (null when the trace was not stopped). */
  readonly when: { readonly start: string; readonly end: string | null; readonly durationMs: number | null };
  /** Call counts, and per syscall. */
  readonly calls: CallCounts & { readonly bySyscall: readonly { readonly syscall: string; readonly calls: number; readonly refused: number }[] };
  /** What it touched, grouped. */
  readonly touched: { readonly paths: readonly TouchedItem[]; readonly hosts: readonly TouchedItem[]; readonly kv: readonly TouchedItem[] };
  /** Refused calls by rule. */
  readonly denials: readonly DenialGroup[];
  /** Anomaly flags (the trace's and the caller's). */
  readonly flags: readonly AnomalyFlag[];
  /** The integrity score (0–1) and what lowered it. */
  readonly integrity: { readonly score: number; readonly penalties: readonly { readonly cause: string; readonly count: number; readonly cost: number }[] };
  /** Whether the trace verified. */
  readonly verification: { readonly status: 'verified' | 'failed' | 'not-checked'; readonly issue: VerifyIssue | null; readonly signers: readonly string[] };
  /** The verdict and the reasons for it. */
  readonly verdict: { readonly level: TraceVerdict; readonly reasons: readonly string[]; readonly rule: string };
  /** Whether the trace ends with its stop checkpoint. */
  readonly complete: boolean;
  /** How the run ended, from the summary. */
  readonly outcome: { readonly outcome: string | null; readonly exitCode: number | null } | null;
}

/** An explanation in both forms. */
export interface TraceExplanation {
  /** For people. */
  readonly text: string;
  /** For machines (plain JSON data). */
  readonly json: TraceExplanationJson;
}

const MAX_EXAMPLES = 5;
const REFUSED = new Set(['deny', 'quarantine', 'suspended', 'terminated']);

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function targetOf(r: TraceCallRecord): string | null {
  if (r.args.path !== undefined) return r.args.path;
  if (r.args.host !== undefined) return r.args.port === undefined ? r.args.host : `${r.args.host}:${r.args.port}`;
  if (r.args.detail !== undefined) return r.args.detail;
  return null;
}

function defaultExplanation(rule: string | null, verdicts: readonly string[]): string {
  if (rule !== null) return `rule ${rule}`;
  if (verdicts.includes('suspended')) return 'refused while the container was quarantined';
  if (verdicts.includes('terminated')) return 'refused after the container was terminated';
  return "the policy's default action";
}

class Touch {
  readonly ops = new Set<string>();
  calls = 0;
  refused = 0;
}

function touched(map: Map<string, Touch>): TouchedItem[] {
  return [...map.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([target, t]) => ({ target, operations: [...t.ops].sort(), calls: t.calls, refused: t.refused }));
}

function add(map: Map<string, Touch>, key: string, r: TraceCallRecord): void {
  let t = map.get(key);
  if (t === undefined) map.set(key, (t = new Touch()));
  t.ops.add(r.syscall);
  t.calls++;
  if (REFUSED.has(r.verdict)) t.refused++;
}

/**
 * Explain a trace: who ran what, what it touched (paths, hosts, key-value keys, grouped), what was refused
 * and why (by rule, with the policy's own text when `ruleExplanation` gives it), anomaly flags, the integrity
 * score (see `INTEGRITY_PENALTIES`) and a verdict (see {@link VERDICT_RULES}). Deterministic: the same trace
 * and options give the same text and JSON.
 * @param trace - a trace ({@link readTrace} / {@link parseTrace})
 * @param options - rule explanations, extra flags, the verification outcome
 * @returns text and JSON
 */
export function explainTrace(trace: Trace, options: ExplainOptions = {}): TraceExplanation {
  const { header, records, summary } = trace;
  const acc = new SummaryAccumulator();
  const bySyscall = new Map<string, { calls: number; refused: number }>();
  const paths = new Map<string, Touch>();
  const hosts = new Map<string, Touch>();
  const kv = new Map<string, Touch>();
  const groups = new Map<string, { rule: string | null; calls: number; verdicts: Set<string>; examples: DenialGroup['examples'][number][] }>();
  for (const r of records) {
    acc.add(r);
    const s = bySyscall.get(r.syscall) ?? { calls: 0, refused: 0 };
    s.calls++;
    const refused = REFUSED.has(r.verdict);
    if (refused) s.refused++;
    bySyscall.set(r.syscall, s);
    if (r.syscall.startsWith('forgeone:kv/')) add(kv, r.args.path ?? r.args.detail ?? '*', r);
    else {
      if (r.args.path !== undefined) add(paths, r.args.path, r);
      if (r.args.host !== undefined) add(hosts, r.args.port === undefined ? r.args.host : `${r.args.host}:${r.args.port}`, r);
    }
    if (refused) {
      // Refusals without a rule are grouped by why: the default action, quarantine, termination.
      const key = r.rule ?? `\0${r.verdict}`;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = { rule: r.rule, calls: 0, verdicts: new Set(), examples: [] }));
      g.calls++;
      g.verdicts.add(r.verdict);
      if (g.examples.length < MAX_EXAMPLES) g.examples.push({ seq: r.seq, syscall: r.syscall, target: targetOf(r) });
    }
  }
  const counts = acc.counts();
  const flags: AnomalyFlag[] = [...(summary?.flags ?? []), ...(options.flags ?? [])].map((f) => {
    const out: { name: string; severity: AnomalyFlag['severity']; detail?: string; seq?: number } = { name: f.name, severity: f.severity };
    if (f.detail !== undefined) out.detail = f.detail;
    if (f.seq !== undefined) out.seq = f.seq;
    return out;
  });
  const terminated = summary?.outcome === 'terminated' || counts.terminated > 0;
  const score = integrityMilli(counts, flags, terminated) / 1000;
  const penalties: { cause: string; count: number; cost: number }[] = [];
  if (counts.denials > 0) penalties.push({ cause: 'denied calls', count: counts.denials, cost: (counts.denials * INTEGRITY_PENALTIES.denial) / 1000 });
  if (counts.quarantines > 0) penalties.push({ cause: 'quarantining calls', count: counts.quarantines, cost: (counts.quarantines * INTEGRITY_PENALTIES.quarantine) / 1000 });
  if (terminated) penalties.push({ cause: 'terminated', count: 1, cost: INTEGRITY_PENALTIES.terminated / 1000 });
  for (const sev of ['high', 'medium', 'low'] as const) {
    const n = flags.filter((f) => f.severity === sev).length;
    if (n > 0) penalties.push({ cause: `${sev} flags`, count: n, cost: (n * INTEGRITY_PENALTIES.flag[sev]) / 1000 });
  }

  const v = options.verification;
  const verification = {
    status: v === undefined ? ('not-checked' as const) : v.ok ? ('verified' as const) : ('failed' as const),
    issue: v?.issue ?? null,
    signers: [...(v?.signers ?? [])],
  };

  const compromised: string[] = [];
  if (verification.status === 'failed') compromised.push(`the trace failed verification (${v?.issue?.code ?? 'unknown'})`);
  if (terminated) compromised.push('the container was terminated');
  const high = flags.filter((f) => f.severity === 'high');
  if (high.length > 0) compromised.push(`${high.length} high-severity flag(s): ${high.map((f) => f.name).join(', ')}`);
  if (score < 0.5) compromised.push(`integrity ${score.toFixed(3)} is below 0.5`);
  const suspicious: string[] = [];
  if (counts.quarantines > 0) suspicious.push(`${counts.quarantines} call(s) quarantined the container`);
  if (counts.suspended > 0) suspicious.push(`${counts.suspended} call(s) refused while quarantined`);
  if (counts.denials > 0) suspicious.push(`${counts.denials} call(s) denied`);
  const others = flags.filter((f) => f.severity !== 'high');
  if (others.length > 0) suspicious.push(`${others.length} flag(s): ${others.map((f) => f.name).join(', ')}`);
  if (score < 0.9 && score >= 0.5) suspicious.push(`integrity ${score.toFixed(3)} is below 0.9`);
  if (!trace.complete) suspicious.push('the trace was not stopped (incomplete)');
  const level: TraceVerdict = compromised.length > 0 ? 'compromised' : suspicious.length > 0 ? 'suspicious' : 'clean';
  const reasons = level === 'compromised' ? [...compromised, ...suspicious] : level === 'suspicious' ? suspicious : [];

  const denials: DenialGroup[] = [...groups.values()]
    .sort((a, b) => b.calls - a.calls || ((a.rule ?? '') < (b.rule ?? '') ? -1 : (a.rule ?? '') > (b.rule ?? '') ? 1 : 0))
    .map((g) => {
      const verdicts = [...g.verdicts].sort();
      const own = g.rule === null ? undefined : options.ruleExplanation?.(g.rule);
      return { rule: g.rule, explanation: own ?? defaultExplanation(g.rule, verdicts), calls: g.calls, verdicts, examples: g.examples };
    });

  const end = summary?.endTime ?? null;
  const json: TraceExplanationJson = {
    traceId: header.traceId,
    containerId: header.containerId,
    who: { subject: header.identity.subject, tenant: header.identity.tenant, roles: [...header.identity.roles], trustLevel: header.identity.trustLevel, trustScore: header.identity.trustScore / 1000 },
    what: { package: { ...header.package }, policy: { ...header.policy } },
    when: { start: iso(header.startTime), end: end === null ? null : iso(end), durationMs: end === null ? null : end - header.startTime },
    calls: {
      ...counts,
      bySyscall: [...bySyscall.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([syscall, s]) => ({ syscall, calls: s.calls, refused: s.refused })),
    },
    touched: { paths: touched(paths), hosts: touched(hosts), kv: touched(kv) },
    denials,
    flags,
    integrity: { score, penalties },
    verification,
    verdict: { level, reasons, rule: VERDICT_RULES[level] },
    complete: trace.complete,
    outcome: summary === null ? null : { outcome: summary.outcome, exitCode: summary.exitCode },
  };
  return { text: renderText(json), json };
}

function renderText(j: TraceExplanationJson): string {
  const out: string[] = [];
  const row = (label: string, value: string): void => {
    out.push(`${label.padEnd(13)}${value}`);
  };
  out.push(`Execution trace ${j.traceId} of container ${j.containerId}`);
  row('Verdict:', `${j.verdict.level.toUpperCase()}${j.verdict.reasons.length > 0 ? '' : ' (no denials, quarantines or flags)'}`);
  for (const r of j.verdict.reasons) out.push(`             - ${r}`);
  row('Integrity:', `${j.integrity.score.toFixed(3)}${j.integrity.penalties.length === 0 ? '' : ` (${j.integrity.penalties.map((p) => `${p.cause} ×${p.count} −${p.cost.toFixed(3)}`).join(', ')})`}`);
  const vs = j.verification;
  row(
    'Signatures:',
    vs.status === 'verified' ? `verified (signed by ${vs.signers.join(', ')})` : vs.status === 'failed' ? `FAILED: ${vs.issue?.code ?? ''} ${vs.issue?.message ?? ''}` : 'not checked',
  );
  row('Who:', `${j.who.subject} (tenant ${j.who.tenant}; roles ${j.who.roles.length === 0 ? 'none' : j.who.roles.join(', ')}; trust ${j.who.trustLevel} ${j.who.trustScore.toFixed(3)})`);
  row('Package:', `${j.what.package.name}@${j.what.package.version}${j.what.package.hash === '' ? '' : ` (${j.what.package.hash})`}`);
  row('Policy:', `${j.what.policy.name} v${j.what.policy.version}`);
  row('Ran:', `${j.when.start} to ${j.when.end ?? '(not stopped)'}${j.when.durationMs === null ? '' : ` (${j.when.durationMs} ms)`}`);
  if (j.outcome !== null) row('Outcome:', `${j.outcome.outcome ?? 'unknown'}${j.outcome.exitCode === null ? '' : ` (exit code ${j.outcome.exitCode})`}`);
  const c = j.calls;
  row('Calls:', `${c.records} (${c.allowed} performed, ${c.audits} audited, ${c.denials} denied, ${c.quarantines} quarantining, ${c.suspended} suspended, ${c.terminated} after termination)`);
  for (const s of c.bySyscall) out.push(`             ${s.syscall} ×${s.calls}${s.refused > 0 ? ` (${s.refused} refused)` : ''}`);
  const section = (title: string, items: readonly TouchedItem[]): void => {
    if (items.length === 0) return;
    out.push(`${title}:`);
    for (const t of items) out.push(`  ${t.target}  ${t.operations.join(', ')} ×${t.calls}${t.refused > 0 ? ` (${t.refused} refused)` : ''}`);
  };
  if (j.touched.paths.length + j.touched.hosts.length + j.touched.kv.length === 0) out.push('Touched:     nothing (no paths, hosts or keys)');
  section('Paths', j.touched.paths);
  section('Hosts', j.touched.hosts);
  section('Keys', j.touched.kv);
  if (j.denials.length > 0) {
    out.push('Refused:');
    for (const d of j.denials) {
      out.push(`  ${d.rule ?? '(no rule)'} [${d.verdicts.join(', ')}] ×${d.calls}: ${d.explanation}`);
      for (const e of d.examples) out.push(`    #${e.seq} ${e.syscall}${e.target === null ? '' : ` ${e.target}`}`);
    }
  }
  if (j.flags.length > 0) {
    out.push('Flags:');
    for (const f of j.flags) out.push(`  [${f.severity}] ${f.name}${f.detail === undefined ? '' : `: ${f.detail}`}${f.seq === undefined ? '' : ` (record ${f.seq})`}`);
  }
  return `${out.join('\n')}\n`;
}
