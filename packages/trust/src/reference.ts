/**
 * The reference interpreter of the policy language: a slow, deliberately naive evaluator written straight
 * from docs/policy.md, section by section, for differential tests against the compiled evaluator.
 *
 * Nothing is precompiled or cached: every call re-derives the node order, the active nodes, and every
 * pattern match from the document. Where the specification leaves room for more than one reading, the most
 * literal one is taken and marked with a `SPEC:` comment.
 */
import { TrustLevel, type IdentityContext } from '@forgeone/common';
import type { CallContext, Edge, IdentityCondition, Policy, Rule, TrustCondition, Verdict } from './schema.js';

/** One rate-limit rule's token bucket for one container (docs/policy.md §5.2). */
export interface ReferenceBucket {
  /** Tokens held, in milli-tokens (1000 = one token). */
  tokens: number;
  /** Time of the last refill, ms since the epoch. */
  last: number;
}

/** Everything the reference remembers between calls of one container: its token buckets. */
export interface ReferenceState {
  /** Token buckets by `${node}/${ruleId}`; a bucket is created full the first time its rule matches. */
  readonly buckets: Map<string, ReferenceBucket>;
}

/**
 * A fresh per-container state: no bucket has been touched yet, so every bucket will start full.
 * @returns an empty state
 */
export function createReferenceState(): ReferenceState {
  return { buckets: new Map() };
}

/** What the reference decided for one call, with enough detail to compare evaluators. */
export interface ReferenceDecision {
  /** The verdict (§5.1). */
  verdict: Verdict;
  /** The deciding rule `node/ruleId` (§5.3); `null` when the default action decided. */
  rule: string | null;
  /** Whether the verdict came from step 3 of §5.1 (a rate-limit rule without a token). */
  rateLimited: boolean;
  /** The active nodes, in node order (§2). */
  activeNodes: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Character-level wildcard matching.
// ---------------------------------------------------------------------------------------------------------

/**
 * Whether `text` matches `pattern`, where `*` stands for any run of characters (possibly empty) and, when
 * `question` is set, `?` for exactly one character; every other character is literal and case-sensitive.
 * Plain dynamic programming over prefixes: `row[j]` says whether the pattern read so far matches `text[0..j)`.
 */
function wildcardMatches(pattern: string, text: string, question: boolean): boolean {
  // SPEC: "character" is read as a Unicode code point (not a UTF-16 code unit) for `*`, `?` and for
  // counting literal characters (§5.3). Only matters for non-BMP characters.
  const p = Array.from(pattern);
  const t = Array.from(text);
  let row: boolean[] = [true, ...t.map(() => false)];
  for (const pc of p) {
    const next: boolean[] = t.map(() => false);
    next.push(false);
    for (let j = 0; j <= t.length; j++) {
      if (pc === '*') {
        next[j] = row[j] === true || (j > 0 && next[j - 1] === true);
      } else if (j > 0 && (pc === t[j - 1] || (question && pc === '?'))) {
        next[j] = row[j - 1] === true;
      }
    }
    row = next;
  }
  return row[t.length] === true;
}

/** §3: a syscall pattern, `*` = any run of characters (possibly empty, crossing `/`), exact otherwise. */
function syscallPatternMatches(pattern: string, name: string): boolean {
  // SPEC: `?` is an ordinary literal character in syscall (and subject) patterns; only `*` is special.
  return wildcardMatches(pattern, name, false);
}

/** §4.3: a path glob, split on `/`; `**` as a whole segment = zero or more segments. */
function pathGlobMatches(glob: string, path: string): boolean {
  const g = glob.split('/');
  const s = path.split('/');
  const from = (i: number, j: number): boolean => {
    if (i === g.length) return j === s.length;
    const seg = g[i]!;
    if (seg === '**') {
      for (let k = j; k <= s.length; k++) if (from(i + 1, k)) return true;
      return false;
    }
    // SPEC: within a segment `*` matches any run of characters *including the empty run* (as for syscall
    // patterns), so `/*` matches `/` (split: ["", ""]) and `/tmp/*` would match `/tmp/` if it were canonical.
    // A `**` that is not a whole segment (e.g. `a**`) is just two single-segment `*`s.
    return j < s.length && wildcardMatches(seg, s[j]!, true) && from(i + 1, j + 1);
  };
  return from(0, 0);
}

/** §4.3: a host pattern: exact, or `*.suffix` = any host ending in `.suffix`. */
function hostPatternMatches(pattern: string, host: string): boolean {
  // SPEC: only a leading `*.` is a wildcard; a `*` anywhere else (or `*` alone) is a literal character,
  // so the pattern `*` matches only the host `*`. The wildcard form is a pure suffix test, so it also covers
  // several labels (`a.b.example.com`) and, literally, the non-canonical host `.example.com`.
  // SPEC: comparison is exact and case-sensitive; hosts arrive lowercase, so an uppercase pattern never matches.
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return host === pattern;
}

// ---------------------------------------------------------------------------------------------------------
// §2: node order and activation.
// ---------------------------------------------------------------------------------------------------------

/**
 * Kahn's algorithm over all edges (both kinds); among ready nodes the one declared first goes first.
 * Throws on a cycle (a valid policy never has one).
 */
function nodeOrderOf(policy: Policy): string[] {
  // SPEC: "declared first in `nodes`" is the JavaScript property order of the parsed `nodes` object
  // (Object.keys), the only order a parsed document still has; integer-like node names ("7") therefore
  // come first, in ascending numeric order.
  const declared = Object.keys(policy.nodes);
  const remaining = new Map<string, number>(declared.map((n) => [n, 0]));
  for (const e of policy.edges) remaining.set(e.to, (remaining.get(e.to) ?? 0) + 1);
  const done = new Set<string>();
  const order: string[] = [];
  while (order.length < declared.length) {
    const next = declared.find((n) => !done.has(n) && remaining.get(n) === 0);
    if (next === undefined) throw new Error('reference: the policy graph has a cycle');
    done.add(next);
    order.push(next);
    for (const e of policy.edges) if (e.from === next) remaining.set(e.to, (remaining.get(e.to) ?? 0) - 1);
  }
  return order;
}

/** §4.1 identity condition. */
function identityHolds(cond: IdentityCondition, id: IdentityContext): boolean {
  if (cond.subjects !== undefined && !cond.subjects.some((p) => syscallPatternMatches(p, id.subject))) return false;
  if (cond.tenants !== undefined && !cond.tenants.includes(id.tenant)) return false;
  if (cond.roles !== undefined) {
    const { anyOf, allOf, noneOf } = cond.roles;
    if (anyOf !== undefined && !anyOf.some((r) => id.roles.includes(r))) return false;
    if (allOf !== undefined && !allOf.every((r) => id.roles.includes(r))) return false;
    if (noneOf !== undefined && noneOf.some((r) => id.roles.includes(r))) return false;
  }
  if (cond.attributes !== undefined) {
    // SPEC: "the attribute exists" means an own property of the identity's attributes (so `constructor`
    // or `toString` never exist by inheritance). An empty `attributes: {}` holds vacuously.
    for (const [key, values] of Object.entries(cond.attributes)) {
      if (!Object.hasOwn(id.attributes, key)) return false;
      if (!values.includes(id.attributes[key]!)) return false;
    }
  }
  return true;
}

/** §4.2 trust condition; levels compare by their numeric `TrustLevel` value, all bounds inclusive. */
function trustHolds(cond: TrustCondition, id: IdentityContext): boolean {
  const { level, score } = id.trust;
  if (cond.minLevel !== undefined && level < TrustLevel[cond.minLevel]) return false;
  if (cond.maxLevel !== undefined && level > TrustLevel[cond.maxLevel]) return false;
  if (cond.minScore !== undefined && score < cond.minScore) return false;
  if (cond.maxScore !== undefined && score > cond.maxScore) return false;
  return true;
}

/** An edge's static `when`: absent, or every given part holds. */
function edgeWhenHolds(edge: Edge, id: IdentityContext): boolean {
  const when = edge.when;
  if (when === undefined) return true;
  if (when.identity !== undefined && !identityHolds(when.identity, id)) return false;
  if (when.trust !== undefined && !trustHolds(when.trust, id)) return false;
  return true;
}

/**
 * The active nodes of a policy for one container, in node order (docs/policy.md §2): walking the nodes in
 * topological order (Kahn's algorithm, ties by declaration order), a node is active when it is the root or
 * has an incoming `extends` edge from an active node whose `when` holds, and no incoming `overrides` edge
 * from an active node whose `when` holds.
 * @param policy - a valid policy
 * @param identity - the container's identity
 * @returns the names of the active nodes, in node order
 */
export function referenceActiveNodes(policy: Policy, identity: IdentityContext): string[] {
  const active: string[] = [];
  for (const node of nodeOrderOf(policy)) {
    const applies = (kind: Edge['kind']): boolean =>
      policy.edges.some((e) => e.to === node && e.kind === kind && active.includes(e.from) && edgeWhenHolds(e, identity));
    // SPEC: the root is subject to condition 2 like any node. (It can never actually be overridden: an
    // active overrider must be reachable from the root, which would close a cycle.)
    const reached = node === policy.root || applies('extends');
    if (reached && !applies('overrides')) active.push(node);
  }
  return active;
}

// ---------------------------------------------------------------------------------------------------------
// §3, §4: rule matching.
// ---------------------------------------------------------------------------------------------------------

/** §4.3 argument conditions; a matcher on an argument the call does not carry does not hold. */
function argsHold(rule: Rule, ctx: CallContext): boolean {
  const args = rule.args;
  if (args === undefined) return true;
  if (args.path !== undefined) {
    const path = ctx.path;
    if (path === undefined) return false;
    if (args.path.match !== undefined && !args.path.match.some((g) => pathGlobMatches(g, path))) return false;
    if (args.path.notMatch !== undefined && args.path.notMatch.some((g) => pathGlobMatches(g, path))) return false;
  }
  if (args.host !== undefined) {
    const host = ctx.host;
    if (host === undefined) return false;
    if (args.host.in !== undefined && !args.host.in.some((h) => hostPatternMatches(h, host))) return false;
    if (args.host.notIn !== undefined && args.host.notIn.some((h) => hostPatternMatches(h, host))) return false;
  }
  if (args.detail !== undefined) {
    const detail = ctx.detail;
    if (detail === undefined) return false;
    if (args.detail.in !== undefined && !args.detail.in.some((h) => hostPatternMatches(h, detail))) return false;
    if (args.detail.notIn !== undefined && args.detail.notIn.some((h) => hostPatternMatches(h, detail))) return false;
  }
  if (args.port !== undefined) {
    const port = ctx.port;
    if (port === undefined) return false;
    if (args.port.in !== undefined && !args.port.in.includes(port)) return false;
    if (args.port.min !== undefined && port < args.port.min) return false;
    if (args.port.max !== undefined && port > args.port.max) return false;
  }
  if (args.size !== undefined) {
    const size = ctx.size;
    if (size === undefined) return false;
    if (args.size.min !== undefined && size < args.size.min) return false;
    if (args.size.max !== undefined && size > args.size.max) return false;
  }
  return true;
}

/** §4.4 history conditions, read from the call context (the current call is not counted there). */
function historyHolds(rule: Rule, ctx: CallContext): boolean {
  const h = rule.history;
  if (h === undefined) return true;
  if (h.callsAtLeast !== undefined && !(ctx.calls >= h.callsAtLeast)) return false;
  if (h.callsBelow !== undefined && !(ctx.calls < h.callsBelow)) return false;
  if (h.rateAbove !== undefined && !(ctx.rate > h.rateAbove)) return false;
  if (h.deniedAtLeast !== undefined && !(ctx.denied >= h.deniedAtLeast)) return false;
  if (h.anomalyAbove !== undefined && !(ctx.anomaly > h.anomalyAbove)) return false;
  return true;
}

/** Day names by `Date#getUTCDay()` (0 = Sunday). */
const UTC_DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** `"HH:MM"` → minute of the day. */
function minuteOf(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

/** §4.5 time window, in UTC. */
function timeHolds(rule: Rule, ctx: CallContext): boolean {
  const t = rule.time;
  if (t === undefined) return true;
  const date = new Date(ctx.now);
  // SPEC: "the call's day" is the UTC day of the call itself, also inside a window that wraps midnight
  // (`days: [mon], from: 22:00, to: 02:00` holds Monday 23:00 and Monday 01:00, not Tuesday 01:00).
  if (t.days !== undefined) {
    const day = UTC_DAY_NAMES[date.getUTCDay()];
    if (day === undefined || !t.days.includes(day)) return false;
  }
  const minute = date.getUTCHours() * 60 + date.getUTCMinutes();
  if (t.from !== undefined && t.to !== undefined) {
    const from = minuteOf(t.from);
    const to = minuteOf(t.to);
    // SPEC: `from === to` is not `from > to`, so it is the half-open window [from, from): empty, never holds.
    if (from <= to) return from <= minute && minute < to;
    return minute >= from || minute < to;
  }
  // SPEC: with only one bound given, the other is open: `from` alone = minute ≥ from (until midnight),
  // `to` alone = minute < to (from midnight).
  if (t.from !== undefined) return minute >= minuteOf(t.from);
  if (t.to !== undefined) return minute < minuteOf(t.to);
  return true;
}

/** §3: a rule matches when one of its syscall patterns matches and every condition it has holds. */
function ruleMatches(rule: Rule, identity: IdentityContext, syscall: string, ctx: CallContext): boolean {
  if (!rule.syscalls.some((p) => syscallPatternMatches(p, syscall))) return false;
  if (rule.identity !== undefined && !identityHolds(rule.identity, identity)) return false;
  if (rule.trust !== undefined && !trustHolds(rule.trust, identity)) return false;
  return argsHold(rule, ctx) && historyHolds(rule, ctx) && timeHolds(rule, ctx);
}

// ---------------------------------------------------------------------------------------------------------
// §5.3: specificity.
// ---------------------------------------------------------------------------------------------------------

/** The number of condition fields of §4.1–§4.5 a rule uses. */
function conditionFieldCount(rule: Rule): number {
  // SPEC: a "condition field" is a field listed in the tables/objects of §4.1–§4.5 — identity: subjects,
  // tenants, roles, attributes; trust: minLevel, maxLevel, minScore, maxScore; args: path, host, port, size, detail;
  // history: callsAtLeast, callsBelow, rateAbove, deniedAtLeast, anomalyAbove; time: days, from, to. A
  // composite field counts 1 however many parts it has (`roles: { anyOf, noneOf }` = 1, `path: { match,
  // notMatch }` = 1, `attributes` = 1 whatever its keys), and an empty condition object (`identity: {}`)
  // counts 0.
  const present = (o: object | undefined): number => (o === undefined ? 0 : Object.values(o).filter((v) => v !== undefined).length);
  return present(rule.identity) + present(rule.trust) + present(rule.args) + present(rule.history) + present(rule.time);
}

/** The specificity tuple of a matching rule for one syscall name, larger first. */
function specificity(rule: Rule, syscall: string): [number, number, number] {
  const matching = rule.syscalls.filter((p) => syscallPatternMatches(p, syscall));
  // SPEC: "its best-matching syscall pattern is exact" is read as "some matching pattern is exact" — an
  // exact pattern that matches is the name itself, the best match there is.
  const exact = matching.some((p) => !p.includes('*')) ? 1 : 0;
  // SPEC: "its longest matching pattern" is read literally: the matching pattern with the most characters
  // (wildcards included); its literal (non-`*`) characters are counted. Among equally long patterns the
  // larger literal count is taken.
  let longest = -1;
  let literals = 0;
  for (const p of matching) {
    const length = Array.from(p).length;
    const lit = Array.from(p).filter((c) => c !== '*').length;
    if (length > longest || (length === longest && lit > literals)) {
      longest = length;
      literals = lit;
    }
  }
  return [conditionFieldCount(rule), exact, literals];
}

// ---------------------------------------------------------------------------------------------------------
// §5: decisions.
// ---------------------------------------------------------------------------------------------------------

/** A rule of M with where it sits. */
interface Matched {
  readonly node: string;
  readonly nodeIndex: number;
  readonly ruleIndex: number;
  readonly rule: Rule;
  readonly key: string;
}

/** The deciding rule among `candidates` (§5.3): most specific, then earlier node, then earlier rule. */
function decidingRule(candidates: readonly Matched[], syscall: string): string {
  let best: Matched | undefined;
  let bestSpec: [number, number, number] = [-1, -1, -1];
  for (const c of candidates) {
    const spec = specificity(c.rule, syscall);
    let cmp = 0;
    for (let i = 0; i < 3 && cmp === 0; i++) cmp = spec[i]! - bestSpec[i]!;
    const earlier = best === undefined || c.nodeIndex < best.nodeIndex || (c.nodeIndex === best.nodeIndex && c.ruleIndex < best.ruleIndex);
    if (cmp > 0 || (cmp === 0 && earlier)) {
      best = c;
      bestSpec = spec;
    }
  }
  if (best === undefined) throw new Error('reference: no candidate for the deciding rule');
  return `${best.node}/${best.rule.id}`;
}

/**
 * Decide one call the slow way, straight from docs/policy.md: find the active nodes (§2), collect the
 * matching rules M (§3, §4), refill the token bucket of every matching rate-limit rule (§5.2), apply the
 * precedence of §5.1, spend a token from every matching rate-limit rule when the verdict is allow or audit,
 * and name the deciding rule (§5.3). Mutates `state.buckets`.
 * @param policy - a valid policy
 * @param identity - the container's identity
 * @param syscall - the syscall name, e.g. `wasi:filesystem/read`
 * @param ctx - the call's arguments, time and history
 * @param state - the container's bucket state, carried from call to call
 * @returns the decision
 * @example
 * ```ts
 * const state = createReferenceState();
 * const d = referenceDecide(policy, identity, 'wasi:cli/stdout', { now: Date.now(), calls: 0, rate: 0, denied: 0, anomaly: 0 }, state);
 * ```
 */
export function referenceDecide(policy: Policy, identity: IdentityContext, syscall: string, ctx: CallContext, state: ReferenceState): ReferenceDecision {
  const order = nodeOrderOf(policy);
  const activeNodes = referenceActiveNodes(policy, identity);

  // M: the matching rules of the active nodes.
  const m: Matched[] = [];
  for (const node of activeNodes) {
    const nodeIndex = order.indexOf(node);
    policy.nodes[node]!.rules.forEach((rule, ruleIndex) => {
      if (ruleMatches(rule, identity, syscall, ctx)) m.push({ node, nodeIndex, ruleIndex, rule, key: `${node}/${rule.id}` });
    });
  }

  // §5.2: every matching rate-limit rule first refills.
  const rateRules = m.filter((x) => x.rule.action === 'rate-limit');
  const t = ctx.now;
  for (const x of rateRules) {
    const limit = x.rule.rateLimit;
    if (limit === undefined) throw new Error(`reference: rate-limit rule ${x.key} has no rateLimit`);
    const capacity = (limit.burst ?? limit.perSecond) * 1000;
    let bucket = state.buckets.get(x.key);
    if (bucket === undefined) {
      // SPEC: "full when the container starts": the reference has no start time, so a bucket is created
      // full (capacity) the first time its rule matches, with `last` = that call's time.
      bucket = { tokens: capacity, last: t };
      state.buckets.set(x.key, bucket);
    }
    // SPEC: "a call with t < last refills nothing" — neither `tokens` nor `last` change (moving `last`
    // backwards would let the next call refill the same interval twice).
    // SPEC: the refill formula is applied as written, with no rounding; it stays in integer milli-tokens
    // as long as `now` is an integer number of ms.
    if (t >= bucket.last) {
      bucket.tokens = Math.min(capacity, bucket.tokens + (t - bucket.last) * limit.perSecond);
      bucket.last = t;
    }
  }
  const hasToken = (x: Matched): boolean => (state.buckets.get(x.key)?.tokens ?? 0) >= 1000;

  // §5.1: precedence.
  let verdict: Verdict;
  let candidates: Matched[];
  let rateLimited = false;
  const withAction = (...actions: Rule['action'][]): Matched[] => m.filter((x) => actions.includes(x.rule.action));
  if (withAction('quarantine').length > 0) {
    verdict = 'quarantine';
    candidates = withAction('quarantine');
  } else if (withAction('deny').length > 0) {
    verdict = 'deny';
    candidates = withAction('deny');
  } else if (rateRules.some((x) => !hasToken(x))) {
    verdict = 'deny';
    rateLimited = true;
    candidates = rateRules.filter((x) => !hasToken(x));
  } else if (withAction('audit').length > 0) {
    verdict = 'audit';
    candidates = withAction('audit');
  } else if (withAction('allow', 'rate-limit').length > 0) {
    verdict = 'allow';
    candidates = withAction('allow', 'rate-limit');
  } else {
    return { verdict: policy.defaultAction, rule: null, rateLimited: false, activeNodes };
  }

  // §5.2: spend a token from every matching rate-limit rule when the call goes through.
  if (verdict === 'allow' || verdict === 'audit') {
    for (const x of rateRules) state.buckets.get(x.key)!.tokens -= 1000;
  }

  return { verdict, rule: decidingRule(candidates, syscall), rateLimited, activeNodes };
}
