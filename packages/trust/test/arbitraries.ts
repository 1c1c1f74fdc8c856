/**
 * fast-check arbitraries for the differential test between the reference interpreter (src/reference.ts)
 * and the compiled evaluator. Every value is drawn from small pools shared by policies, identities and calls,
 * so conditions both hold and fail often, rules collide on the same syscalls, and the precedence, rate-limit
 * and tie-break paths are all exercised.
 */
import fc from 'fast-check';
import { createIdentity, trustVector, type IdentityContext, type TrustLevelName } from '@forgeone/common';
import { ACTIONS, DAYS, DEFAULT_ACTIONS } from '../src/schema.js';
import type { ArgsCondition, CallContext, Edge, HistoryCondition, IdentityCondition, Policy, Rule, TimeCondition, TrustCondition } from '../src/schema.js';

// ---------------------------------------------------------------------------------------------------------
// Pools.
// ---------------------------------------------------------------------------------------------------------

/** Syscall patterns rules use. */
export const SYSCALL_PATTERNS = [
  'wasi:filesystem/read',
  'wasi:filesystem/write',
  'wasi:filesystem/*',
  'wasi:sockets/tcp-connect',
  'wasi:sockets/*',
  'wasi:cli/stdout',
  'wasi:*',
  '*/read',
  'forgeone:kv/*',
  'forgeone:kv/get',
  '*',
] as const;
/** Syscall names calls use: mostly names the patterns can match, a few only `*` matches. */
export const SYSCALL_NAMES = ['wasi:filesystem/read', 'wasi:filesystem/write', 'wasi:filesystem/open', 'wasi:sockets/tcp-connect', 'wasi:cli/stdout', 'forgeone:kv/get', 'forgeone:kv/set'] as const;
/** Syscall names no pattern but `*` (and `wasi:*`, `*\/read`) matches. */
export const RARE_SYSCALL_NAMES = ['wasi:http/outgoing-request', 'wasi:clocks/wall-clock', 'wasi:io/read', 'forgeone:log/write'] as const;

/** Subjects identities have. */
export const SUBJECTS = ['plugin:a', 'plugin:b', 'user:alice'] as const;
/** Subject patterns conditions use. */
export const SUBJECT_PATTERNS = ['plugin:a', 'plugin:b', 'plugin:*', 'user:*', '*'] as const;
/** Tenants identities have. */
export const TENANTS = ['acme', 'globex'] as const;
/** Tenants conditions name (one no identity has). */
export const TENANT_POOL = ['acme', 'globex', 'initech'] as const;
/** Roles. */
export const ROLES = ['reader', 'writer', 'admin'] as const;
/** Regions (the one attribute identities may carry). */
export const REGIONS = ['eu', 'us'] as const;
/** Trust level names. */
export const LEVEL_NAMES: readonly TrustLevelName[] = ['Compromised', 'Untrusted', 'Limited', 'Verified', 'Trusted', 'Root'];
/** Trust scores, for identities and for bounds. */
export const SCORES = [0, 0.3, 0.5, 1] as const;

/** Path globs. */
export const PATH_GLOBS = ['/data/**', '/data/*.txt', '/data', '/etc/passwd', '/tmp/?', '/tmp/*', '/**'] as const;
/** Canonical paths calls carry. */
export const PATHS = ['/', '/data', '/data/a.txt', '/data/b.bin', '/data/sub/c.txt', '/datax', '/etc/passwd', '/tmp/x', '/tmp/xy'] as const;
/** Host patterns. */
export const HOST_PATTERNS = ['api.example.com', '*.example.com', 'example.com', 'evil.com'] as const;
/** Canonical hosts calls carry. */
export const HOSTS = ['api.example.com', 'cdn.example.com', 'a.b.example.com', 'example.com', 'evil.com'] as const;
/** Ports calls carry and `port.in` names. */
export const PORTS = [22, 80, 443, 8080] as const;
/** Port bounds. */
export const PORT_BOUNDS = [0, 80, 443, 1024, 65535] as const;
/** Sizes calls carry. */
export const SIZES = [0, 100, 4096, 1_000_000] as const;
/** Size bounds. */
export const SIZE_BOUNDS = [0, 100, 4096, 65536] as const;
/** Times of day for windows (the call times below cluster around the same boundaries). */
export const TIMES_OF_DAY = ['00:00', '06:00', '08:00', '12:00', '18:00', '22:00', '23:59'] as const;

/** 2026-11-23T00:00:00Z, a Monday. */
export const BASE_DAY = Date.UTC(2026, 10, 23);
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

// ---------------------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------------------

/** Present now and then: `undefined` `absentWeight` times as often as a value. */
function sometimes<T>(arb: fc.Arbitrary<T>, absentWeight = 3): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: absentWeight, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}

/** A non-empty list of distinct values from a pool. */
function someOf<T>(pool: readonly T[], maxLength = 3): fc.Arbitrary<T[]> {
  return fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: Math.min(maxLength, pool.length) });
}

/** Drop the keys whose value is `undefined` (so documents look as a parser would leave them). */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** An object with at least one of its optional fields present. */
function atLeastOne<T extends object>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return arb.map(compact).filter((o) => Object.keys(o).length > 0);
}

// ---------------------------------------------------------------------------------------------------------
// Conditions.
// ---------------------------------------------------------------------------------------------------------

function arbIdentityCondition(): fc.Arbitrary<IdentityCondition> {
  return fc
    .record({
      subjects: sometimes(someOf(SUBJECT_PATTERNS, 2), 2),
      tenants: sometimes(someOf(TENANT_POOL, 2), 2),
      roles: sometimes(
        atLeastOne(fc.record({ anyOf: sometimes(someOf(ROLES, 2), 1), allOf: sometimes(someOf(ROLES, 2), 2), noneOf: sometimes(someOf(ROLES, 1), 2) })),
        2,
      ),
      attributes: sometimes(
        fc.oneof(
          fc.record({ region: someOf(REGIONS, 2) }),
          fc.record({ team: someOf(['core']) }),
          fc.record({ region: someOf(REGIONS, 1), team: someOf(['core']) }),
        ),
        2,
      ),
    })
    .map(compact);
}

function arbTrustCondition(): fc.Arbitrary<TrustCondition> {
  return fc
    .record({
      minLevel: sometimes(fc.constantFrom(...LEVEL_NAMES), 1),
      maxLevel: sometimes(fc.constantFrom(...LEVEL_NAMES), 2),
      minScore: sometimes(fc.constantFrom(...SCORES), 2),
      maxScore: sometimes(fc.constantFrom(...SCORES), 3),
    })
    .map(compact);
}

function arbArgsCondition(): fc.Arbitrary<ArgsCondition> {
  const path = atLeastOne(fc.record({ match: sometimes(someOf(PATH_GLOBS, 2), 1), notMatch: sometimes(someOf(PATH_GLOBS, 1), 2) }));
  const host = atLeastOne(fc.record({ in: sometimes(someOf(HOST_PATTERNS, 2), 1), notIn: sometimes(someOf(HOST_PATTERNS, 1), 2) }));
  const port = atLeastOne(fc.record({ in: sometimes(someOf(PORTS, 2), 1), min: sometimes(fc.constantFrom(...PORT_BOUNDS), 2), max: sometimes(fc.constantFrom(...PORT_BOUNDS), 2) }));
  const size = atLeastOne(fc.record({ min: sometimes(fc.constantFrom(...SIZE_BOUNDS), 1), max: sometimes(fc.constantFrom(...SIZE_BOUNDS), 1) }));
  return fc.record({ path: sometimes(path, 1), host: sometimes(host, 2), port: sometimes(port, 2), size: sometimes(size, 2), detail: sometimes(host, 4) }).map(compact);
}

function arbHistoryCondition(): fc.Arbitrary<HistoryCondition> {
  return fc
    .record({
      callsAtLeast: sometimes(fc.constantFrom(0, 1, 2, 3, 5), 2),
      callsBelow: sometimes(fc.constantFrom(0, 1, 2, 3, 5), 2),
      rateAbove: sometimes(fc.constantFrom(0, 0.5, 1, 2, 3), 2),
      deniedAtLeast: sometimes(fc.constantFrom(0, 1, 2, 3), 2),
      anomalyAbove: sometimes(fc.constantFrom(0, 0.3, 0.5, 0.9), 2),
    })
    .map(compact);
}

function arbTimeCondition(): fc.Arbitrary<TimeCondition> {
  return fc
    .record({
      days: sometimes(someOf(DAYS, 4), 1),
      from: sometimes(fc.constantFrom(...TIMES_OF_DAY), 1),
      to: sometimes(fc.constantFrom(...TIMES_OF_DAY), 1),
    })
    .map(compact);
}

// ---------------------------------------------------------------------------------------------------------
// Policies.
// ---------------------------------------------------------------------------------------------------------

function arbRule(id: string): fc.Arbitrary<Rule> {
  return fc
    .record({
      // Every action, weighted so that quarantine and deny do not drown the rest of the precedence ladder.
      action: fc.oneof(
        ...ACTIONS.map((a) => ({ weight: a === 'quarantine' || a === 'deny' ? 1 : a === 'audit' ? 2 : 3, arbitrary: fc.constant(a) })),
      ),
      syscalls: someOf(SYSCALL_PATTERNS, 3),
      identity: sometimes(arbIdentityCondition(), 5),
      trust: sometimes(arbTrustCondition(), 5),
      args: sometimes(arbArgsCondition(), 3),
      history: sometimes(arbHistoryCondition(), 5),
      time: sometimes(arbTimeCondition(), 5),
      rateLimit: fc.record({ perSecond: fc.integer({ min: 1, max: 5 }), burst: sometimes(fc.integer({ min: 1, max: 5 }), 1) }).map(compact),
      reason: sometimes(fc.constantFrom('because', 'rate-limited'), 4),
    })
    .map(({ rateLimit, ...r }) => compact({ id, ...r, rateLimit: r.action === 'rate-limit' ? rateLimit : undefined }) as Rule);
}

/** Node names; none is integer-like, so JavaScript property order is declaration order. */
export const NODE_NAMES = ['base', 'fs', 'net', 'untrusted', 'admin', 'kv', 'tighten-8'] as const;

function arbEdgeWhen(): fc.Arbitrary<NonNullable<Edge['when']>> {
  return fc.record({ identity: sometimes(arbIdentityCondition(), 1), trust: sometimes(arbTrustCondition(), 1) }).map(compact);
}

/**
 * A random policy, valid under `PolicySchema` by construction: 1–6 nodes declared in a random order, 0–8
 * rules each (every action, every condition kind), and 0–8 edges of both kinds, with optional `when`,
 * that only run from earlier to later nodes of a random permutation, so the graph is acyclic and its
 * topological order differs from declaration order.
 * @returns the arbitrary
 */
export function arbPolicy(): fc.Arbitrary<Policy> {
  return fc.uniqueArray(fc.constantFrom(...NODE_NAMES), { minLength: 1, maxLength: 6 }).chain((names) => {
    const n = names.length;
    // An edge between two distinct positions of the permutation, always pointing to the later one.
    // Half of them leave the first node of the permutation (usually the root), so more nodes are reached.
    const pair = fc.record({
      a: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: n - 1 })),
      d: fc.integer({ min: 1, max: Math.max(1, n - 1) }),
      kind: fc.oneof({ weight: 3, arbitrary: fc.constant('extends' as const) }, { weight: 1, arbitrary: fc.constant('overrides' as const) }),
      when: sometimes(arbEdgeWhen(), 2),
    });
    return fc
      .record({
        permutation: fc.shuffledSubarray(names, { minLength: n, maxLength: n }),
        pairs: fc.array(pair, { maxLength: n < 2 ? 0 : 8 }),
        rules: fc.tuple(...names.map(() => fc.integer({ min: 0, max: 8 }).chain((k) => fc.tuple(...Array.from({ length: k }, (_, i) => arbRule(`r${i}`)))))),
        rootIsFirst: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        anyRoot: fc.constantFrom(...names),
        defaultAction: fc.constantFrom(...DEFAULT_ACTIONS),
        version: fc.integer({ min: 1, max: 1000 }),
        description: sometimes(fc.constant('a random node'), 3),
      })
      .map(({ permutation, pairs, rules, rootIsFirst, anyRoot, defaultAction, version, description }) => {
        const nodes: Policy['nodes'] = {};
        names.forEach((name, i) => {
          nodes[name] = compact({ description, rules: rules[i] ?? [] });
        });
        const edges: Edge[] = pairs.map(({ a, d, kind, when }) => {
          const b = (a + d) % n;
          return compact({ from: permutation[Math.min(a, b)]!, to: permutation[Math.max(a, b)]!, kind, when });
        });
        return {
          apiVersion: 'forgeone.policy/v1' as const,
          name: 'fuzz',
          version,
          defaultAction,
          root: rootIsFirst ? permutation[0]! : anyRoot,
          nodes,
          edges,
        };
      });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Identities and calls.
// ---------------------------------------------------------------------------------------------------------

/**
 * A random identity from the same small pools the policy conditions use: subject, tenant, a subset of the
 * roles, sometimes a `region` attribute, any trust level with a score from {0, 0.3, 0.5, 1}.
 * @returns the arbitrary
 */
export function arbIdentity(): fc.Arbitrary<IdentityContext> {
  return fc
    .record({
      subject: fc.constantFrom(...SUBJECTS),
      tenant: fc.constantFrom(...TENANTS),
      roles: fc.subarray([...ROLES]),
      region: fc.option(fc.constantFrom(...REGIONS), { nil: undefined }),
      level: fc.constantFrom(...LEVEL_NAMES),
      score: fc.constantFrom(...SCORES),
    })
    .map(({ subject, tenant, roles, region, level, score }) =>
      createIdentity({ subject, tenant, roles, attributes: region === undefined ? {} : { region }, trust: trustVector(level, score) }),
    );
}

/** One call: a syscall name and its context. */
export interface ArbCall {
  /** The syscall name. */
  syscall: string;
  /** Arguments, time and history. */
  ctx: CallContext;
}

/** A base time: a day around 2026-11-23, at a random moment or just before a window boundary. */
function arbBaseTime(): fc.Arbitrary<number> {
  const boundaries = TIMES_OF_DAY.map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3))).concat([24 * 60]);
  return fc
    .record({
      day: fc.integer({ min: -3, max: 3 }),
      inDay: fc.oneof(
        fc.integer({ min: 0, max: DAY_MS - 1 }),
        fc.record({ minute: fc.constantFrom(...boundaries), before: fc.integer({ min: 0, max: 6000 }) }).map(({ minute, before }) => minute * MINUTE_MS - before),
      ),
    })
    .map(({ day, inDay }) => BASE_DAY + day * DAY_MS + inDay);
}

const arbCallBody = fc.record(
  {
    syscall: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...SYSCALL_NAMES) }, { weight: 1, arbitrary: fc.constantFrom(...RARE_SYSCALL_NAMES) }),
    step: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 1500 }) }),
    path: fc.option(fc.constantFrom(...PATHS), { nil: undefined, freq: 3 }),
    host: fc.option(fc.constantFrom(...HOSTS), { nil: undefined, freq: 3 }),
    port: fc.option(fc.constantFrom(...PORTS), { nil: undefined, freq: 3 }),
    size: fc.option(fc.constantFrom(...SIZES), { nil: undefined, freq: 3 }),
    detail: fc.option(fc.constantFrom(...HOSTS), { nil: undefined, freq: 3 }),
    calls: fc.constantFrom(0, 1, 2, 3, 5),
    rate: fc.constantFrom(0, 1, 2, 4),
    denied: fc.constantFrom(0, 1, 3),
    anomaly: fc.constantFrom(0, 0.3, 0.5, 0.9, 1),
  },
  // Arguments are sometimes absent keys, sometimes present with `undefined`, sometimes present.
  { requiredKeys: ['syscall', 'step', 'calls', 'rate', 'denied', 'anomaly'] },
);

/**
 * 1–12 calls with non-decreasing `now` (steps of 0–1500 ms, often 0, from a base time around
 * 2026-11-23), syscall names mostly from {@link SYSCALL_NAMES}, each argument sometimes missing, and
 * history numbers from small pools.
 * @returns the arbitrary
 */
export function arbCalls(): fc.Arbitrary<ArbCall[]> {
  return fc.record({ base: arbBaseTime(), bodies: fc.array(arbCallBody, { minLength: 1, maxLength: 12 }) }).map(({ base, bodies }) => {
    let now = base;
    return bodies.map(({ syscall, step, ...rest }) => {
      now += step;
      return { syscall, ctx: { ...rest, now } };
    });
  });
}

/** One differential-test case. */
export interface ArbCase {
  /** The policy. */
  policy: Policy;
  /** The container's identity. */
  identity: IdentityContext;
  /** The calls the container makes, in order. */
  calls: ArbCall[];
}

/**
 * A policy, an identity and a sequence of calls.
 * @returns the arbitrary
 */
export function arbCase(): fc.Arbitrary<ArbCase> {
  return fc.record({ policy: arbPolicy(), identity: arbIdentity(), calls: arbCalls() });
}
