import { parse as parseYaml } from 'yaml';
import { ForgeError, KNOWN_SYSCALLS, formatFieldPath } from '@forgeone/common';
import { PolicySchema, type Policy } from './schema.js';

/** A problem that does not make a policy invalid but deserves a look. */
export interface PolicyWarning {
  /** Stable warning code. */
  readonly code: 'UNKNOWN_SYSCALL' | 'UNREACHABLE_NODE';
  /** Field path, e.g. `nodes.base.rules[0].syscalls[1]`. */
  readonly path: string;
  /** What is wrong. */
  readonly message: string;
}

/** A parsed policy with its warnings. */
export interface ParsedPolicy {
  /** The validated document. */
  readonly policy: Policy;
  /** Warnings (unknown syscalls, unreachable nodes). */
  readonly warnings: readonly PolicyWarning[];
}

/**
 * Compile a syscall pattern (`*` = any run of characters) into a predicate.
 * @param pattern - the pattern
 * @returns a function testing a name
 */
export function syscallPatternMatcher(pattern: string): (name: string) => boolean {
  // Compiling a policy asks for the same patterns again and again (per syscall, per rule): keep them.
  let m = matcherCache.get(pattern);
  if (m === undefined) {
    if (!pattern.includes('*')) m = (name) => name === pattern;
    else {
      const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
      m = (name) => re.test(name);
    }
    if (matcherCache.size >= 4096) matcherCache.clear();
    matcherCache.set(pattern, m);
  }
  return m;
}

const matcherCache = new Map<string, (name: string) => boolean>();

/**
 * Node order (docs/policy.md §2): topological order of the edge graph by Kahn's algorithm, ties broken by
 * declaration order. Throws when the graph has a cycle, naming it.
 * @param policy - a schema-valid policy
 * @returns node names in node order
 * @throws ForgeError `POLICY_INVALID` with the cycle, e.g. `a -> b -> a`
 */
export function nodeOrder(policy: Policy): string[] {
  const names = Object.keys(policy.nodes);
  const index = new Map(names.map((n, i) => [n, i]));
  const indegree = new Map(names.map((n) => [n, 0]));
  const out = new Map<string, string[]>(names.map((n) => [n, []]));
  for (const e of policy.edges) {
    out.get(e.from)!.push(e.to);
    indegree.set(e.to, indegree.get(e.to)! + 1);
  }
  const ready = names.filter((n) => indegree.get(n) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => index.get(a)! - index.get(b)!);
    const n = ready.shift()!;
    order.push(n);
    for (const m of out.get(n)!) {
      indegree.set(m, indegree.get(m)! - 1);
      if (indegree.get(m) === 0) ready.push(m);
    }
  }
  if (order.length < names.length) throw new ForgeError('POLICY_INVALID', `policy graph has a cycle: ${findCycle(names, out).join(' -> ')}`, { details: { path: 'edges', cycle: findCycle(names, out) } });
  return order;
}

function findCycle(names: string[], out: Map<string, string[]>): string[] {
  const state = new Map<string, 0 | 1 | 2>();
  const stack: string[] = [];
  let cycle: string[] = [];
  const visit = (n: string): boolean => {
    state.set(n, 1);
    stack.push(n);
    for (const m of out.get(n)!) {
      if (state.get(m) === 1) {
        cycle = [...stack.slice(stack.indexOf(m)), m];
        return true;
      }
      if (state.get(m) === undefined && visit(m)) return true;
    }
    stack.pop();
    state.set(n, 2);
    return false;
  };
  for (const n of names) if (state.get(n) === undefined && visit(n)) break;
  return cycle;
}

/**
 * Parse and validate a policy graph from JSON or YAML text, or from an already-parsed value: schema (unknown
 * fields are errors), references between nodes, cycles. Unknown syscall names become warnings.
 * @param input - JSON or YAML text, or a value
 * @returns the policy and its warnings
 * @throws ForgeError `POLICY_INVALID` with `details.path` naming the first offending field
 * @example
 * ```ts
 * const { policy, warnings } = parsePolicy(await readFile('policy.yaml', 'utf8'));
 * ```
 */
export function parsePolicy(input: unknown): ParsedPolicy {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = input.trimStart().startsWith('{') ? (JSON.parse(input) as unknown) : (parseYaml(input, { maxAliasCount: 100, uniqueKeys: true }) as unknown);
    } catch (e) {
      throw new ForgeError('POLICY_INVALID', `policy is not valid JSON or YAML: ${(e as Error).message}`, { details: { path: '$' } });
    }
  }
  const parsed = PolicySchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = formatFieldPath(issue.path);
    throw new ForgeError('POLICY_INVALID', `policy field ${path}: ${issue.message}`, { details: { path } });
  }
  const policy = parsed.data;
  nodeOrder(policy);
  const warnings: PolicyWarning[] = [];
  for (const [name, node] of Object.entries(policy.nodes)) {
    node.rules.forEach((rule, i) => {
      rule.syscalls.forEach((pattern, j) => {
        const m = syscallPatternMatcher(pattern);
        if (!KNOWN_SYSCALLS.some(m)) {
          warnings.push({ code: 'UNKNOWN_SYSCALL', path: `nodes.${name}.rules[${i}].syscalls[${j}]`, message: `${pattern} matches no known syscall` });
        }
      });
    });
  }
  const reachable = new Set([policy.root]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const e of policy.edges) {
      if (reachable.has(e.from) && !reachable.has(e.to)) {
        reachable.add(e.to);
        changed = true;
      }
    }
  }
  for (const name of Object.keys(policy.nodes)) {
    if (!reachable.has(name)) warnings.push({ code: 'UNREACHABLE_NODE', path: `nodes.${name}`, message: `node ${name} is not reachable from root ${policy.root}` });
  }
  return { policy, warnings };
}
