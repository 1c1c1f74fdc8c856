import { z } from 'zod';
import { TrustLevel } from '@forgeone/common';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const Name = z.string().regex(NAME, 'a name is 1-64 characters of [A-Za-z0-9._-], starting alphanumeric');
const nonEmpty = <T extends z.ZodType>(t: T) => z.array(t).min(1).max(1024);
const Pattern = z.string().min(1).max(512);
const LevelName = z.enum(Object.keys(TrustLevel) as [keyof typeof TrustLevel, ...(keyof typeof TrustLevel)[]]);
const Hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day is HH:MM (00:00-23:59)');
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Identity condition (§4.1 of docs/policy.md). */
export const IdentityConditionSchema = z.strictObject({
  subjects: nonEmpty(Pattern).optional(),
  tenants: nonEmpty(z.string().min(1).max(255)).optional(),
  roles: z
    .strictObject({
      anyOf: nonEmpty(z.string().min(1).max(255)).optional(),
      allOf: nonEmpty(z.string().min(1).max(255)).optional(),
      noneOf: nonEmpty(z.string().min(1).max(255)).optional(),
    })
    .optional(),
  attributes: z.record(z.string().min(1).max(255), nonEmpty(z.string().max(1024))).optional(),
});

/** Trust condition (§4.2). */
export const TrustConditionSchema = z.strictObject({
  minLevel: LevelName.optional(),
  maxLevel: LevelName.optional(),
  minScore: z.number().min(0).max(1).optional(),
  maxScore: z.number().min(0).max(1).optional(),
});

/** Argument conditions (§4.3). */
export const ArgsConditionSchema = z.strictObject({
  path: z
    .strictObject({ match: nonEmpty(Pattern).optional(), notMatch: nonEmpty(Pattern).optional() })
    .refine((v) => v.match !== undefined || v.notMatch !== undefined, 'give match or notMatch')
    .optional(),
  host: z
    .strictObject({ in: nonEmpty(Pattern).optional(), notIn: nonEmpty(Pattern).optional() })
    .refine((v) => v.in !== undefined || v.notIn !== undefined, 'give in or notIn')
    .optional(),
  port: z
    .strictObject({ in: nonEmpty(z.number().int().min(0).max(65535)).optional(), min: z.number().int().optional(), max: z.number().int().optional() })
    .refine((v) => v.in !== undefined || v.min !== undefined || v.max !== undefined, 'give in, min or max')
    .optional(),
  size: z
    .strictObject({ min: Count.optional(), max: Count.optional() })
    .refine((v) => v.min !== undefined || v.max !== undefined, 'give min or max')
    .optional(),
  detail: z
    .strictObject({ in: nonEmpty(Pattern).optional(), notIn: nonEmpty(Pattern).optional() })
    .refine((v) => v.in !== undefined || v.notIn !== undefined, 'give in or notIn')
    .optional(),
});

/** History conditions (§4.4). */
export const HistoryConditionSchema = z.strictObject({
  callsAtLeast: Count.optional(),
  callsBelow: Count.optional(),
  rateAbove: z.number().min(0).optional(),
  deniedAtLeast: Count.optional(),
  anomalyAbove: z.number().min(0).max(1).optional(),
});

/** Days of the week, as policies name them. */
export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** Time window condition (§4.5). */
export const TimeConditionSchema = z.strictObject({
  days: nonEmpty(z.enum(DAYS)).optional(),
  from: Hhmm.optional(),
  to: Hhmm.optional(),
});

/** Policy actions. */
export const ACTIONS = ['allow', 'deny', 'audit', 'quarantine', 'rate-limit'] as const;
/** Actions allowed as the default. */
export const DEFAULT_ACTIONS = ['allow', 'deny', 'audit', 'quarantine'] as const;

/** One rule (§3). */
export const RuleSchema = z
  .strictObject({
    id: Name,
    action: z.enum(ACTIONS),
    syscalls: nonEmpty(Pattern),
    identity: IdentityConditionSchema.optional(),
    trust: TrustConditionSchema.optional(),
    args: ArgsConditionSchema.optional(),
    history: HistoryConditionSchema.optional(),
    time: TimeConditionSchema.optional(),
    rateLimit: z.strictObject({ perSecond: z.number().int().min(1).max(1_000_000), burst: z.number().int().min(1).max(1_000_000).optional() }).optional(),
    reason: z.string().max(1024).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.action === 'rate-limit' && r.rateLimit === undefined) ctx.addIssue({ code: 'custom', path: ['rateLimit'], message: 'a rate-limit rule needs rateLimit' });
    if (r.action !== 'rate-limit' && r.rateLimit !== undefined) ctx.addIssue({ code: 'custom', path: ['rateLimit'], message: 'only rate-limit rules take rateLimit' });
  });

/** A node: named rules. */
export const NodeSchema = z.strictObject({
  description: z.string().max(4096).optional(),
  rules: z.array(RuleSchema).max(100_000),
});

/** Static condition on an edge (identity and trust only). */
export const EdgeConditionSchema = z.strictObject({
  identity: IdentityConditionSchema.optional(),
  trust: TrustConditionSchema.optional(),
});

/** An edge of the graph (§2). */
export const EdgeSchema = z.strictObject({
  from: Name,
  to: Name,
  kind: z.enum(['extends', 'overrides']),
  when: EdgeConditionSchema.optional(),
});

/** A policy graph document (§1). */
export const PolicySchema = z
  .strictObject({
    apiVersion: z.literal('forgeone.policy/v1'),
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a policy name is lowercase [a-z0-9._-]'),
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    description: z.string().max(4096).optional(),
    defaultAction: z.enum(DEFAULT_ACTIONS),
    root: Name,
    nodes: z.record(Name, NodeSchema),
    edges: z.array(EdgeSchema).max(100_000).default([]),
  })
  .superRefine((p, ctx) => {
    if (!Object.hasOwn(p.nodes, p.root)) ctx.addIssue({ code: 'custom', path: ['root'], message: `root names no node: ${p.root}` });
    p.edges.forEach((e, i) => {
      if (!Object.hasOwn(p.nodes, e.from)) ctx.addIssue({ code: 'custom', path: ['edges', i, 'from'], message: `no node named ${e.from}` });
      if (!Object.hasOwn(p.nodes, e.to)) ctx.addIssue({ code: 'custom', path: ['edges', i, 'to'], message: `no node named ${e.to}` });
    });
    for (const [name, node] of Object.entries(p.nodes)) {
      const seen = new Set<string>();
      node.rules.forEach((r, i) => {
        if (seen.has(r.id)) ctx.addIssue({ code: 'custom', path: ['nodes', name, 'rules', i, 'id'], message: `duplicate rule id ${r.id}` });
        seen.add(r.id);
      });
    }
  });

/**
 * A tightening (docs/policy.md §6): a runtime restriction laid over the signed policy. It can only make
 * decisions stricter: the verdict of a call is the stricter of the policy's and the tightening's.
 */
export const TighteningSchema = z.strictObject({
  id: Name,
  action: z.enum(['audit', 'deny', 'quarantine']),
  syscalls: nonEmpty(Pattern),
  identity: IdentityConditionSchema.optional(),
  reason: z.string().max(1024),
  createdAt: z.number().int().min(0),
  actor: z.string().max(255),
});

/** A tightening. */
export type Tightening = z.infer<typeof TighteningSchema>;

/** A validated policy graph. */
export type Policy = z.infer<typeof PolicySchema>;
/** A validated rule. */
export type Rule = z.infer<typeof RuleSchema>;
/** An edge. */
export type Edge = z.infer<typeof EdgeSchema>;
/** A rule's action. */
export type Action = (typeof ACTIONS)[number];
/** A verdict: what the policy says about one call. */
export type Verdict = 'allow' | 'deny' | 'audit' | 'quarantine';
/** Identity condition. */
export type IdentityCondition = z.infer<typeof IdentityConditionSchema>;
/** Trust condition. */
export type TrustCondition = z.infer<typeof TrustConditionSchema>;
/** Argument conditions. */
export type ArgsCondition = z.infer<typeof ArgsConditionSchema>;
/** History conditions. */
export type HistoryCondition = z.infer<typeof HistoryConditionSchema>;
/** Time window. */
export type TimeCondition = z.infer<typeof TimeConditionSchema>;

/**
 * The arguments of one call as the gate hands them over: copied out of guest memory and canonicalised
 * (docs/policy.md §4.3). Absent fields are `undefined`.
 */
export interface CallArgs {
  /** Absolute, normalised path. */
  path?: string | undefined;
  /** Lowercase host, no trailing dot. */
  host?: string | undefined;
  /** Port number. */
  port?: number | undefined;
  /** Size in bytes. */
  size?: number | undefined;
  /**
   * The call's other canonical argument: a key-value key, an HTTP method, the name a socket address was
   * resolved from, a stream's name (docs/policy.md §4.3).
   */
  detail?: string | undefined;
}

/**
 * Everything about one call that a decision reads beyond identity and trust. The gate keeps one such
 * object per container and refills it for every call, so deciding allocates nothing.
 */
export interface CallContext extends CallArgs {
  /** Wall-clock time of the call, ms since the epoch. */
  now: number;
  /** Calls this container made to this syscall before this one. */
  calls: number;
  /** Calls to this syscall in the last second, before this one. */
  rate: number;
  /** Calls of this container denied so far. */
  denied: number;
  /** The container's anomaly score in [0, 1]. */
  anomaly: number;
}
