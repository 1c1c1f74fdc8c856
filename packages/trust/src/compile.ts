import { TrustLevel, type ErrorCode, type IdentityContext, type SyscallTable } from '@forgeone/common';
import { nodeOrder, syscallPatternMatcher } from './parse.js';
import { DAYS, type CallContext, type IdentityCondition, type Policy, type Rule, type Tightening, type TrustCondition, type Verdict } from './schema.js';

/**
 * The outcome of one decision. Decision objects are created when the policy is compiled and shared: the
 * hot path returns one of them and allocates nothing. Never mutate one.
 */
export interface Decision {
  /** What the policy says (docs/policy.md §5.1). */
  readonly verdict: Verdict;
  /** The deciding rule as `node/rule` (§5.3), or null when the default action decided. */
  readonly rule: string | null;
  /** The rule's reason text, or a short description of the default. */
  readonly reason: string;
  /** True when a rate limit produced the verdict (§5.1 step 3). */
  readonly rateLimited: boolean;
  /** The error code a refused call carries: `POLICY_DENIED`, `POLICY_RATE_LIMITED`, or null when allowed. */
  readonly code: ErrorCode | null;
}

/** Why a candidate rule did or did not match, for explanations. */
export interface RuleTrace {
  /** `node/rule`. */
  readonly rule: string;
  /** The rule's action. */
  readonly action: Rule['action'];
  /** Whether every condition held. */
  readonly matched: boolean;
  /** The first condition that failed, e.g. `args.path: /etc/passwd matches none of /data/**`. */
  readonly failed?: string;
  /** For a matching rate-limit rule: whether its bucket had a token. */
  readonly hadToken?: boolean;
}

/** A full explanation of one decision (§5.5). */
export interface Explanation {
  /** The syscall. */
  readonly syscall: string;
  /** The decision. */
  readonly decision: Decision;
  /** The policy name and version. */
  readonly policy: { readonly name: string; readonly version: number };
  /** Active nodes in node order. */
  readonly activeNodes: readonly string[];
  /** Inactive nodes and why. */
  readonly inactiveNodes: readonly { readonly node: string; readonly reason: string }[];
  /** Every rule of an active node whose syscall patterns match the call, in node order. */
  readonly candidates: readonly RuleTrace[];
  /** One paragraph for people. */
  readonly text: string;
}

/** What a container's compiled policy knows about the container. */
export interface CompileTarget {
  /** The container's identity (static for the program's life). */
  readonly identity: IdentityContext;
  /** The container's syscalls, interned; the program has one entry per id. */
  readonly syscalls: SyscallTable;
}

/** A policy compiled for one container: a decision program indexed by syscall id. */
export interface CompiledPolicy {
  /** The source document. */
  readonly policy: Policy;
  /** The syscall table the program is indexed by. */
  readonly syscalls: SyscallTable;
  /** Active nodes in node order. */
  readonly activeNodes: readonly string[];
  /**
   * Decide one call. Allocation-free: returns a shared, precomputed {@link Decision}. Spends rate-limit tokens.
   * @param syscallId - an id from `syscalls`; ids outside the table get the default action
   * @param ctx - the call's canonical arguments, time and history
   * @returns the decision
   */
  decide(syscallId: number, ctx: CallContext): Decision;
  /**
   * Explain the decision `decide` would make now, without spending tokens.
   * @param syscallId - an id from `syscalls`
   * @param ctx - the call's context
   * @returns the explanation
   */
  explain(syscallId: number, ctx: CallContext): Explanation;
  /**
   * The rate-limit buckets, to carry over into a recompiled program (hot swap).
   * @returns `node/rule` → bucket
   */
  exportBuckets(): Map<string, { tokens: number; last: number }>;
}

/** Options for {@link compilePolicy}. */
export interface CompileOptions {
  /** Buckets of the program this one replaces; rules with the same `node/rule` keep their tokens. */
  readonly buckets?: ReadonlyMap<string, { tokens: number; last: number }>;
  /** Tightenings laid over the policy (§6): each can only make a verdict stricter. */
  readonly tightenings?: readonly Tightening[];
}

const STRICTNESS: Record<Verdict, number> = { allow: 0, audit: 1, deny: 2, quarantine: 3 };

// ---------------------------------------------------------------------------------------------
// Static conditions (identity, trust): evaluated once at compile time.

function subjectMatch(patterns: readonly string[], subject: string): boolean {
  return patterns.some((p) => syscallPatternMatcher(p)(subject));
}

/** First failing identity condition, or undefined. */
function identityFailure(c: IdentityCondition | undefined, id: IdentityContext): string | undefined {
  if (c === undefined) return undefined;
  if (c.subjects !== undefined && !subjectMatch(c.subjects, id.subject)) return `identity.subjects: ${id.subject} matches none of ${c.subjects.join(', ')}`;
  if (c.tenants !== undefined && !c.tenants.includes(id.tenant)) return `identity.tenants: ${id.tenant} is not one of ${c.tenants.join(', ')}`;
  if (c.roles !== undefined) {
    const { anyOf, allOf, noneOf } = c.roles;
    if (anyOf !== undefined && !anyOf.some((r) => id.roles.includes(r))) return `identity.roles.anyOf: holds none of ${anyOf.join(', ')}`;
    if (allOf !== undefined && !allOf.every((r) => id.roles.includes(r))) return `identity.roles.allOf: lacks one of ${allOf.join(', ')}`;
    if (noneOf !== undefined && noneOf.some((r) => id.roles.includes(r))) return `identity.roles.noneOf: holds one of ${noneOf.join(', ')}`;
  }
  if (c.attributes !== undefined) {
    for (const [k, vs] of Object.entries(c.attributes)) {
      const v = Object.hasOwn(id.attributes, k) ? id.attributes[k] : undefined;
      if (v === undefined || !vs.includes(v)) return `identity.attributes.${k}: ${v ?? '(absent)'} is not one of ${vs.join(', ')}`;
    }
  }
  return undefined;
}

/** First failing trust condition, or undefined. */
function trustFailure(c: TrustCondition | undefined, id: IdentityContext): string | undefined {
  if (c === undefined) return undefined;
  const { level, score } = id.trust;
  if (c.minLevel !== undefined && level < TrustLevel[c.minLevel]) return `trust.minLevel: level ${level} is below ${c.minLevel}`;
  if (c.maxLevel !== undefined && level > TrustLevel[c.maxLevel]) return `trust.maxLevel: level ${level} is above ${c.maxLevel}`;
  if (c.minScore !== undefined && score < c.minScore) return `trust.minScore: score ${score} is below ${c.minScore}`;
  if (c.maxScore !== undefined && score > c.maxScore) return `trust.maxScore: score ${score} is above ${c.maxScore}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Dynamic conditions: compiled into closures once, called per decision without allocating.

/** Compile a path glob (§4.3) into a regular expression source (without anchors). */
export function globSource(glob: string): string {
  const segs = glob.split('/');
  let out = '';
  segs.forEach((seg, i) => {
    if (seg === '**') {
      // Zero or more whole segments, with their leading slashes.
      out += i === 0 ? '(?:[^/]*(?:/.*)?)?' : '(?:/.*)?';
      return;
    }
    const body = seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
    out += i === 0 ? body : `/${body}`;
  });
  return out;
}

/**
 * A list of path globs as one predicate. Each glob keeps its literal prefix (up to the first wildcard, cut
 * back to a segment boundary) so most paths are turned away by a `startsWith` before any regular expression
 * runs.
 */
function anyGlob(globs: readonly string[]): { test(path: string): boolean } {
  const prefixes: string[] = [];
  const res: RegExp[] = [];
  for (const g of globs) {
    const wild = g.search(/[*?]/);
    const literal = wild < 0 ? g : g.slice(0, wild);
    prefixes.push(wild < 0 ? literal : literal.slice(0, Math.max(0, literal.lastIndexOf('/'))));
    res.push(new RegExp(`^(?:${globSource(g)})$`, 's'));
  }
  const n = globs.length;
  return {
    test(path: string): boolean {
      for (let i = 0; i < n; i++) if (path.startsWith(prefixes[i]!) && res[i]!.test(path)) return true;
      return false;
    },
  };
}

type Test = (ctx: CallContext) => boolean;
type Explain = (ctx: CallContext) => string | undefined;

function hostTest(patterns: readonly string[]): (host: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.startsWith('*.')));
  const suffixes = patterns.filter((p) => p.startsWith('*.')).map((p) => p.slice(1));
  return (host) => {
    if (exact.has(host)) return true;
    for (let i = 0; i < suffixes.length; i++) if (host.endsWith(suffixes[i]!)) return true;
    return false;
  };
}

const DAY_MS = 86_400_000;

function dayOfWeek(now: number): number {
  const d = Math.floor(now / DAY_MS);
  return (((d + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday
}

function minuteOfDay(now: number): number {
  return Math.floor((((now % DAY_MS) + DAY_MS) % DAY_MS) / 60_000);
}

function hhmm(s: string): number {
  return Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
}

/** Build the per-call test of a rule and its explainer, and count its condition fields (§5.3). */
function compileDynamic(rule: Rule): { test: Test | null; explain: Explain; fields: number } {
  const tests: Test[] = [];
  const explains: Explain[] = [];
  let fields = 0;
  const { args, history, time } = rule;
  for (const part of [rule.identity, rule.trust]) if (part !== undefined) fields += Object.keys(part).length;

  if (args?.path !== undefined) {
    fields++;
    const { match, notMatch } = args.path;
    const yes = match === undefined ? null : anyGlob(match);
    const no = notMatch === undefined ? null : anyGlob(notMatch);
    tests.push((c) => c.path !== undefined && (yes === null || yes.test(c.path)) && (no === null || !no.test(c.path)));
    explains.push((c) => {
      if (c.path === undefined) return 'args.path: the call carries no path';
      if (yes !== null && !yes.test(c.path)) return `args.path: ${c.path} matches none of ${match!.join(', ')}`;
      if (no !== null && no.test(c.path)) return `args.path: ${c.path} matches one of ${notMatch!.join(', ')}`;
      return undefined;
    });
  }
  if (args?.host !== undefined) {
    fields++;
    const { in: inList, notIn } = args.host;
    const yes = inList === undefined ? null : hostTest(inList);
    const no = notIn === undefined ? null : hostTest(notIn);
    tests.push((c) => c.host !== undefined && (yes === null || yes(c.host)) && (no === null || !no(c.host)));
    explains.push((c) => {
      if (c.host === undefined) return 'args.host: the call carries no host';
      if (yes !== null && !yes(c.host)) return `args.host: ${c.host} is not in ${inList!.join(', ')}`;
      if (no !== null && no(c.host)) return `args.host: ${c.host} is in ${notIn!.join(', ')}`;
      return undefined;
    });
  }
  if (args?.detail !== undefined) {
    fields++;
    const { in: inList, notIn } = args.detail;
    const yes = inList === undefined ? null : hostTest(inList);
    const no = notIn === undefined ? null : hostTest(notIn);
    tests.push((c) => c.detail !== undefined && (yes === null || yes(c.detail)) && (no === null || !no(c.detail)));
    explains.push((c) => {
      if (c.detail === undefined) return 'args.detail: the call carries no detail';
      if (yes !== null && !yes(c.detail)) return `args.detail: ${c.detail} is not in ${inList!.join(', ')}`;
      if (no !== null && no(c.detail)) return `args.detail: ${c.detail} is in ${notIn!.join(', ')}`;
      return undefined;
    });
  }
  if (args?.port !== undefined) {
    fields++;
    const { in: inList, min, max } = args.port;
    const set = inList === undefined ? null : new Set(inList);
    const lo = min ?? -Infinity;
    const hi = max ?? Infinity;
    tests.push((c) => c.port !== undefined && (set === null || set.has(c.port)) && c.port >= lo && c.port <= hi);
    explains.push((c) => {
      if (c.port === undefined) return 'args.port: the call carries no port';
      if (set !== null && !set.has(c.port)) return `args.port: ${c.port} is not in ${inList!.join(', ')}`;
      if (c.port < lo || c.port > hi) return `args.port: ${c.port} is outside [${min ?? '-∞'}, ${max ?? '∞'}]`;
      return undefined;
    });
  }
  if (args?.size !== undefined) {
    fields++;
    const lo = args.size.min ?? -Infinity;
    const hi = args.size.max ?? Infinity;
    tests.push((c) => c.size !== undefined && c.size >= lo && c.size <= hi);
    explains.push((c) => {
      if (c.size === undefined) return 'args.size: the call carries no size';
      if (c.size < lo || c.size > hi) return `args.size: ${c.size} is outside [${args.size!.min ?? 0}, ${args.size!.max ?? '∞'}]`;
      return undefined;
    });
  }
  if (history !== undefined) {
    const h = history;
    if (h.callsAtLeast !== undefined) {
      fields++;
      const n = h.callsAtLeast;
      tests.push((c) => c.calls >= n);
      explains.push((c) => (c.calls >= n ? undefined : `history.callsAtLeast: ${c.calls} calls so far, fewer than ${n}`));
    }
    if (h.callsBelow !== undefined) {
      fields++;
      const n = h.callsBelow;
      tests.push((c) => c.calls < n);
      explains.push((c) => (c.calls < n ? undefined : `history.callsBelow: ${c.calls} calls so far, not below ${n}`));
    }
    if (h.rateAbove !== undefined) {
      fields++;
      const r = h.rateAbove;
      tests.push((c) => c.rate > r);
      explains.push((c) => (c.rate > r ? undefined : `history.rateAbove: ${c.rate} calls in the last second, not above ${r}`));
    }
    if (h.deniedAtLeast !== undefined) {
      fields++;
      const n = h.deniedAtLeast;
      tests.push((c) => c.denied >= n);
      explains.push((c) => (c.denied >= n ? undefined : `history.deniedAtLeast: ${c.denied} denials so far, fewer than ${n}`));
    }
    if (h.anomalyAbove !== undefined) {
      fields++;
      const s = h.anomalyAbove;
      tests.push((c) => c.anomaly > s);
      explains.push((c) => (c.anomaly > s ? undefined : `history.anomalyAbove: anomaly score ${c.anomaly} is not above ${s}`));
    }
  }
  if (time !== undefined) {
    if (time.days !== undefined) {
      fields++;
      let mask = 0;
      for (const d of time.days) mask |= 1 << DAYS.indexOf(d);
      tests.push((c) => ((mask >> dayOfWeek(c.now)) & 1) === 1);
      explains.push((c) => (((mask >> dayOfWeek(c.now)) & 1) === 1 ? undefined : `time.days: ${DAYS[dayOfWeek(c.now)]} is not one of ${time.days!.join(', ')}`));
    }
    if (time.from !== undefined || time.to !== undefined) {
      fields += (time.from === undefined ? 0 : 1) + (time.to === undefined ? 0 : 1);
      const from = time.from === undefined ? 0 : hhmm(time.from);
      const to = time.to === undefined ? 1440 : hhmm(time.to);
      const inWindow = from <= to ? (m: number) => m >= from && m < to : (m: number) => m >= from || m < to;
      tests.push((c) => inWindow(minuteOfDay(c.now)));
      explains.push((c) => (inWindow(minuteOfDay(c.now)) ? undefined : `time: minute ${minuteOfDay(c.now)} of the day (UTC) is outside [${time.from ?? '00:00'}, ${time.to ?? '24:00'})`));
    }
  }
  const explain: Explain = (c) => {
    for (const e of explains) {
      const f = e(c);
      if (f !== undefined) return f;
    }
    return undefined;
  };
  if (tests.length === 0) return { test: null, explain, fields };
  if (tests.length === 1) return { test: tests[0]!, explain, fields };
  const all = tests;
  return {
    test: (c) => {
      for (let i = 0; i < all.length; i++) if (!all[i]!(c)) return false;
      return true;
    },
    explain,
    fields,
  };
}

// ---------------------------------------------------------------------------------------------

/** Activation (§2): which nodes are active for an identity, and why the others are not. */
export function activateNodes(policy: Policy, identity: IdentityContext): { active: string[]; inactive: { node: string; reason: string }[] } {
  const order = nodeOrder(policy);
  const active = new Set<string>();
  const inactive: { node: string; reason: string }[] = [];
  const holds = (e: Policy['edges'][number]) => identityFailure(e.when?.identity, identity) === undefined && trustFailure(e.when?.trust, identity) === undefined;
  for (const n of order) {
    const incoming = policy.edges.filter((e) => e.to === n && active.has(e.from) && holds(e));
    const overriddenBy = incoming.find((e) => e.kind === 'overrides');
    if (overriddenBy !== undefined) {
      inactive.push({ node: n, reason: `overridden by ${overriddenBy.from}` });
      continue;
    }
    if (n === policy.root || incoming.some((e) => e.kind === 'extends')) active.add(n);
    else inactive.push({ node: n, reason: 'not reached' });
  }
  return { active: order.filter((n) => active.has(n)), inactive };
}

interface CRule {
  readonly key: string;
  readonly rule: Rule;
  readonly node: string;
  readonly test: Test | null;
  readonly explain: Explain;
  readonly fields: number;
  readonly staticFailure: string | undefined;
  readonly decision: Decision;
  readonly limited: Decision | null;
  readonly bucket: number;
  readonly capacity: number;
  readonly perSecond: number;
}

const KIND_QUARANTINE = 0;
const KIND_DENY = 1;
const KIND_AUDIT = 2;
const KIND_ALLOW = 3;
const KIND_RATE = 4;
const KINDS: Record<Rule['action'], number> = { quarantine: KIND_QUARANTINE, deny: KIND_DENY, audit: KIND_AUDIT, allow: KIND_ALLOW, 'rate-limit': KIND_RATE };

interface Program {
  /** Set when the outcome cannot depend on the call. */
  readonly constant: Decision | null;
  readonly rules: readonly CRule[];
  readonly kinds: Uint8Array;
  /** Rank by §5.3: lower is better (more specific, then earlier node, then earlier rule). */
  readonly rank: Int32Array;
  /** All candidate rules of active nodes (static failures included), for explanations. */
  readonly candidates: readonly CRule[];
  /** The strictest tightening that applies to this syscall for this identity, or null. */
  readonly overlay: Decision | null;
}

// One rule's syscall patterns as one test: exact names in a set, globs as compiled matchers.
function patternSet(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set<string>();
  const globs: ((name: string) => boolean)[] = [];
  for (const p of patterns) {
    if (p.includes('*')) globs.push(syscallPatternMatcher(p));
    else exact.add(p);
  }
  if (globs.length === 0) return (name) => exact.has(name);
  return (name) => exact.has(name) || globs.some((g) => g(name));
}

function specificity(rule: CRule, name: string): [number, number, number] {
  let exact = 0;
  let literal = -1;
  for (const p of rule.rule.syscalls) {
    if (!syscallPatternMatcher(p)(name)) continue;
    if (!p.includes('*')) exact = 1;
    literal = Math.max(literal, p.replaceAll('*', '').length);
  }
  return [rule.fields, exact, literal];
}

function stricter(a: Decision, b: Decision): Decision {
  return STRICTNESS[b.verdict] > STRICTNESS[a.verdict] ? b : a;
}

function verdictCode(v: Verdict, rateLimited: boolean): ErrorCode | null {
  if (v === 'allow' || v === 'audit') return null;
  return rateLimited ? 'POLICY_RATE_LIMITED' : 'POLICY_DENIED';
}

function makeDecision(verdict: Verdict, rule: string | null, reason: string, rateLimited = false): Decision {
  return Object.freeze({ verdict, rule, reason, rateLimited, code: verdictCode(verdict, rateLimited) });
}

/**
 * Compile a policy for one container (docs/policy.md): resolve the active nodes and the identity and trust
 * conditions once, then build for every syscall id a program holding only the rules that can match it,
 * ranked by §5.3. A syscall whose outcome cannot depend on the call gets a constant decision.
 * @param policy - a parsed policy
 * @param target - the container's identity and syscall table
 * @param options - buckets to carry over
 * @returns the compiled program
 * @throws ForgeError `POLICY_INVALID` when the graph has a cycle
 * @example
 * ```ts
 * const program = compilePolicy(policy, { identity, syscalls: new SyscallTable(KNOWN_SYSCALLS) });
 * const d = program.decide(program.syscalls.id('wasi:filesystem/read'), ctx);
 * ```
 */
export function compilePolicy(policy: Policy, target: CompileTarget, options: CompileOptions = {}): CompiledPolicy {
  const { identity, syscalls } = target;
  const { active, inactive } = activateNodes(policy, identity);
  const tightenings = options.tightenings ?? [];
  const defaultDecision = makeDecision(policy.defaultAction, null, `no rule matched: default action ${policy.defaultAction}`);

  // Every rule of every active node, in node order then rule order.
  const all: CRule[] = [];
  let buckets = 0;
  for (const node of active) {
    for (const rule of policy.nodes[node]!.rules) {
      const dyn = compileDynamic(rule);
      const key = `${node}/${rule.id}`;
      const reason = rule.reason ?? `${rule.action} by ${key}`;
      const isRate = rule.action === 'rate-limit';
      const verdict: Verdict = isRate ? 'allow' : (rule.action as Verdict);
      all.push({
        key,
        rule,
        node,
        test: dyn.test,
        explain: dyn.explain,
        fields: dyn.fields,
        staticFailure: identityFailure(rule.identity, identity) ?? trustFailure(rule.trust, identity),
        decision: makeDecision(verdict, key, reason),
        limited: isRate ? makeDecision('deny', key, `rate-limited by ${key} (${rule.rateLimit!.perSecond}/s)`, true) : null,
        bucket: isRate ? buckets++ : -1,
        capacity: isRate ? (rule.rateLimit!.burst ?? rule.rateLimit!.perSecond) * 1000 : 0,
        perSecond: isRate ? rule.rateLimit!.perSecond : 0,
      });
    }
  }
  const tokens = new Float64Array(buckets);
  const last = new Float64Array(buckets).fill(-Infinity);
  for (const r of all) {
    if (r.bucket < 0) continue;
    const carried = options.buckets?.get(r.key);
    tokens[r.bucket] = carried === undefined ? r.capacity : Math.min(r.capacity, carried.tokens);
    if (carried !== undefined) last[r.bucket] = carried.last;
  }
  const matchers = all.map((r) => patternSet(r.rule.syscalls));

  const programs: Program[] = syscalls.names().map((name) => {
    const candidates = all.filter((_, i) => matchers[i]!(name));
    const live = candidates.filter((r) => r.staticFailure === undefined);
    const spec = live.map((r) => specificity(r, name));
    const order = live.map((_, i) => i);
    order.sort((a, b) => {
      const [fa, ea, la] = spec[a]!;
      const [fb, eb, lb] = spec[b]!;
      return fb - fa || eb - ea || lb - la || a - b;
    });
    const rank = new Int32Array(live.length);
    order.forEach((idx, r) => (rank[idx] = r));
    const kinds = Uint8Array.from(live.map((r) => KINDS[r.rule.action]));
    let constant: Decision | null = null;
    if (live.length === 0) constant = defaultDecision;
    else if (live.every((r) => r.test === null && r.bucket < 0)) {
      // Every live rule matches every call of this syscall: decide now.
      let best: Decision = defaultDecision;
      for (const kind of [KIND_QUARANTINE, KIND_DENY, KIND_AUDIT, KIND_ALLOW]) {
        let b = -1;
        live.forEach((_, i) => {
          if (kinds[i] === kind && (b < 0 || rank[i]! < rank[b]!)) b = i;
        });
        if (b >= 0) {
          best = live[b]!.decision;
          break;
        }
      }
      constant = best;
    }
    // Tightenings hold only identity conditions, so for one container they are constant per syscall.
    let overlay: Decision | null = null;
    for (const t of tightenings) {
      if (!t.syscalls.some((pat) => syscallPatternMatcher(pat)(name)) || identityFailure(t.identity, identity) !== undefined) continue;
      if (overlay === null || STRICTNESS[t.action] > STRICTNESS[overlay.verdict]) overlay = makeDecision(t.action, `tightening/${t.id}`, t.reason);
    }
    if (constant !== null && overlay !== null) constant = stricter(constant, overlay);
    return { constant, rules: live, kinds, rank, candidates, overlay };
  });

  // Scratch for the rate-limit rules matched by one call; decide() is synchronous and never re-entered.
  const scratch = new Int32Array(Math.max(1, ...programs.map((p) => p.rules.length)));

  function refill(r: CRule, now: number): void {
    const b = r.bucket;
    const prev = last[b]!;
    if (now < prev) return;
    tokens[b] = Math.min(r.capacity, tokens[b]! + (now - prev) * r.perSecond);
    last[b] = now;
  }

  function evaluate(p: Program, ctx: CallContext, spend: boolean): Decision {
    const { rules, kinds, rank } = p;
    let q = -1;
    let d = -1;
    let a = -1;
    let al = -1;
    let nRate = 0;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.test !== null && !r.test(ctx)) continue;
      switch (kinds[i]) {
        case KIND_QUARANTINE:
          if (q < 0 || rank[i]! < rank[q]!) q = i;
          break;
        case KIND_DENY:
          if (d < 0 || rank[i]! < rank[d]!) d = i;
          break;
        case KIND_AUDIT:
          if (a < 0 || rank[i]! < rank[a]!) a = i;
          break;
        case KIND_ALLOW:
          if (al < 0 || rank[i]! < rank[al]!) al = i;
          break;
        default:
          scratch[nRate++] = i;
      }
    }
    let rl = -1;
    for (let k = 0; k < nRate; k++) {
      const i = scratch[k]!;
      const r = rules[i]!;
      if (spend) refill(r, ctx.now);
      const has = spend ? tokens[r.bucket]! >= 1000 : peekTokens(r, ctx.now) >= 1000;
      if (!has) {
        if (rl < 0 || rank[i]! < rank[rl]!) rl = i;
      } else if (al < 0 || rank[i]! < rank[al]!) al = i;
    }
    if (q >= 0) return rules[q]!.decision;
    if (d >= 0) return rules[d]!.decision;
    if (rl >= 0) return rules[rl]!.limited!;
    if (spend) for (let k = 0; k < nRate; k++) tokens[rules[scratch[k]!]!.bucket]! -= 1000;
    if (a >= 0) return rules[a]!.decision;
    if (al >= 0) return rules[al]!.decision;
    return defaultDecision;
  }

  function peekTokens(r: CRule, now: number): number {
    const prev = last[r.bucket]!;
    return now < prev ? tokens[r.bucket]! : Math.min(r.capacity, tokens[r.bucket]! + (now - prev) * r.perSecond);
  }

  const compiled: CompiledPolicy = {
    policy,
    syscalls,
    activeNodes: active,
    decide(syscallId, ctx) {
      const p = programs[syscallId];
      if (p === undefined) return defaultDecision;
      if (p.constant !== null) return p.constant;
      const d = evaluate(p, ctx, true);
      return p.overlay === null ? d : stricter(d, p.overlay);
    },
    explain(syscallId, ctx) {
      const p = programs[syscallId];
      const name = p === undefined ? `#${syscallId}` : syscalls.name(syscallId);
      const decision = p === undefined ? defaultDecision : (p.constant ?? (p.overlay === null ? evaluate(p, ctx, false) : stricter(evaluate(p, ctx, false), p.overlay)));
      const candidates: RuleTrace[] = (p?.candidates ?? []).map((r) => {
        const failed = r.staticFailure ?? r.explain(ctx);
        const base = { rule: r.key, action: r.rule.action, matched: failed === undefined };
        const withFail = failed === undefined ? base : { ...base, failed };
        return r.bucket >= 0 && failed === undefined ? { ...withFail, hadToken: peekTokens(r, ctx.now) >= 1000 } : withFail;
      });
      const matched = candidates.filter((c) => c.matched).map((c) => c.rule);
      const text =
        `${name}: ${decision.verdict}${decision.rateLimited ? ' (rate-limited)' : ''} — ` +
        (decision.rule === null ? `no rule matched, so the default action (${policy.defaultAction}) applies` : `decided by ${decision.rule}: ${decision.reason}`) +
        `. Policy ${policy.name} v${policy.version}; active nodes: ${active.join(', ') || 'none'}` +
        (matched.length > 0 ? `; matching rules: ${matched.join(', ')}` : '') +
        '.';
      return { syscall: name, decision, policy: { name: policy.name, version: policy.version }, activeNodes: active, inactiveNodes: inactive, candidates, text };
    },
    exportBuckets() {
      const out = new Map<string, { tokens: number; last: number }>();
      for (const r of all) if (r.bucket >= 0) out.set(r.key, { tokens: tokens[r.bucket]!, last: last[r.bucket]! });
      return out;
    },
  };
  return compiled;
}
