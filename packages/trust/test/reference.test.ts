import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createIdentity, trustVector, type IdentityContext, type IdentityInit } from '@forgeone/common';
import { parsePolicy } from '../src/parse.js';
import { createReferenceState, referenceActiveNodes, referenceDecide, type ReferenceState } from '../src/reference.js';
import type { CallContext, Policy } from '../src/schema.js';
import { arbCase } from './arbitraries.js';

// Hand-written examples for every point of docs/policy.md that the reference implements.

/** Monday 2026-11-23, 12:00:00 UTC. */
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const HOUR = 3_600_000;

function ctx(over: Partial<CallContext> = {}): CallContext {
  return { now: T0, calls: 0, rate: 0, denied: 0, anomaly: 0, ...over };
}

function identity(over: Partial<IdentityInit> = {}): IdentityContext {
  return createIdentity({ subject: 'plugin:a', tenant: 'acme', roles: ['reader'], attributes: { region: 'eu' }, trust: trustVector('Verified', 0.5), ...over });
}

/** Parse a document written as an object (validates it, fills `edges`). */
function policy(doc: Record<string, unknown>): Policy {
  return parsePolicy({ apiVersion: 'forgeone.policy/v1', name: 'test', version: 1, defaultAction: 'deny', ...doc }).policy;
}

/** A policy of one node `base` with the given rules. */
function rules(rs: Record<string, unknown>[], defaultAction = 'deny'): Policy {
  return policy({ defaultAction, root: 'base', nodes: { base: { rules: rs } } });
}

function decide(p: Policy, syscall = 'wasi:filesystem/read', c: Partial<CallContext> = {}, id: IdentityContext = identity(), state: ReferenceState = createReferenceState()) {
  return referenceDecide(p, id, syscall, ctx(c), state);
}

/** Whether a single `allow` rule with the given conditions matches (default action deny). */
function holds(conditions: Record<string, unknown>, c: Partial<CallContext> = {}, id: IdentityContext = identity(), syscall = 'wasi:filesystem/read'): boolean {
  return decide(rules([{ id: 'r', action: 'allow', syscalls: ['*'], ...conditions }]), syscall, c, id).verdict === 'allow';
}

/** Whether a single rule with the given syscall patterns matches `name`. */
function syscallMatches(patterns: string[], name: string): boolean {
  return decide(rules([{ id: 'r', action: 'allow', syscalls: patterns }]), name).verdict === 'allow';
}

describe('§2 node order and activation', () => {
  it('orders nodes topologically, ties by declaration order, and lists active nodes in that order', () => {
    const p = policy({
      root: 'root',
      nodes: { late: { rules: [] }, mid: { rules: [] }, root: { rules: [] }, leaf: { rules: [] } },
      edges: [
        { from: 'mid', to: 'leaf', kind: 'extends' },
        { from: 'root', to: 'mid', kind: 'extends' },
        { from: 'root', to: 'late', kind: 'extends' },
      ],
    });
    // Ready at first: late? no (edge root->late); mid? no; root: yes. Then late and mid are ready: late first.
    expect(referenceActiveNodes(p, identity())).toEqual(['root', 'late', 'mid', 'leaf']);
    expect(decide(p).activeNodes).toEqual(['root', 'late', 'mid', 'leaf']);
  });

  it('activates only the root and what it reaches through extends edges', () => {
    const p = policy({
      root: 'base',
      nodes: { base: { rules: [] }, a: { rules: [] }, island: { rules: [] }, b: { rules: [] } },
      edges: [
        { from: 'base', to: 'a', kind: 'extends' },
        { from: 'island', to: 'b', kind: 'extends' },
      ],
    });
    expect(referenceActiveNodes(p, identity())).toEqual(['base', 'a']);
  });

  it('follows an extends edge only when its when holds (identity and trust)', () => {
    const p = policy({
      root: 'base',
      nodes: { base: { rules: [] }, eu: { rules: [] }, low: { rules: [] } },
      edges: [
        { from: 'base', to: 'eu', kind: 'extends', when: { identity: { attributes: { region: ['eu'] } } } },
        { from: 'base', to: 'low', kind: 'extends', when: { trust: { maxLevel: 'Limited' } } },
      ],
    });
    expect(referenceActiveNodes(p, identity())).toEqual(['base', 'eu']);
    expect(referenceActiveNodes(p, identity({ attributes: { region: 'us' }, trust: trustVector('Limited') }))).toEqual(['base', 'low']);
    expect(referenceActiveNodes(p, identity({ attributes: {}, trust: trustVector('Root') }))).toEqual(['base']);
  });

  it('an active overrides edge switches its target off, and a switched-off node activates nothing', () => {
    const p = policy({
      root: 'base',
      nodes: { base: { rules: [] }, admin: { rules: [] }, strict: { rules: [] }, strictChild: { rules: [] } },
      edges: [
        { from: 'base', to: 'admin', kind: 'extends', when: { identity: { roles: { anyOf: ['admin'] } } } },
        { from: 'base', to: 'strict', kind: 'extends' },
        { from: 'admin', to: 'strict', kind: 'overrides' },
        { from: 'strict', to: 'strictChild', kind: 'extends' },
      ],
    });
    expect(referenceActiveNodes(p, identity())).toEqual(['base', 'strict', 'strictChild']);
    expect(referenceActiveNodes(p, identity({ roles: ['admin'] }))).toEqual(['base', 'admin']);
  });

  it('an overrides edge from an inactive node, or whose when fails, switches nothing off', () => {
    const p = policy({
      root: 'base',
      nodes: { base: { rules: [] }, island: { rules: [] }, target: { rules: [] } },
      edges: [
        { from: 'base', to: 'target', kind: 'extends' },
        { from: 'island', to: 'target', kind: 'overrides' },
        { from: 'base', to: 'target', kind: 'overrides', when: { identity: { tenants: ['globex'] } } },
      ],
    });
    expect(referenceActiveNodes(p, identity())).toEqual(['base', 'target']);
    expect(referenceActiveNodes(p, identity({ tenant: 'globex' }))).toEqual(['base']);
  });

  it('a switched-off node stays off even when another extends edge reaches it', () => {
    const p = policy({
      root: 'base',
      nodes: { base: { rules: [] }, a: { rules: [] }, b: { rules: [] }, c: { rules: [] } },
      edges: [
        { from: 'base', to: 'a', kind: 'extends' },
        { from: 'base', to: 'b', kind: 'extends' },
        { from: 'a', to: 'c', kind: 'extends' },
        { from: 'b', to: 'c', kind: 'overrides' },
      ],
    });
    expect(referenceActiveNodes(p, identity())).toEqual(['base', 'a', 'b']);
  });

  it('only rules of active nodes take part; overriding is the way to lift a deny', () => {
    const p = policy({
      root: 'base',
      nodes: {
        base: { rules: [{ id: 'read', action: 'allow', syscalls: ['wasi:filesystem/*'] }] },
        strict: { rules: [{ id: 'no-read', action: 'deny', syscalls: ['wasi:filesystem/read'] }] },
        admin: { rules: [] },
      },
      edges: [
        { from: 'base', to: 'strict', kind: 'extends' },
        { from: 'base', to: 'admin', kind: 'extends', when: { identity: { roles: { anyOf: ['admin'] } } } },
        { from: 'admin', to: 'strict', kind: 'overrides' },
      ],
    });
    expect(decide(p)).toMatchObject({ verdict: 'deny', rule: 'strict/no-read' });
    expect(decide(p, 'wasi:filesystem/read', {}, identity({ roles: ['admin'] }))).toMatchObject({ verdict: 'allow', rule: 'base/read', activeNodes: ['base', 'admin'] });
  });
});

describe('§3 syscall patterns', () => {
  it('matches exactly and case-sensitively without *', () => {
    expect(syscallMatches(['wasi:filesystem/read'], 'wasi:filesystem/read')).toBe(true);
    expect(syscallMatches(['wasi:filesystem/read'], 'wasi:filesystem/readdir')).toBe(false);
    expect(syscallMatches(['wasi:filesystem/read'], 'WASI:filesystem/read')).toBe(false);
    expect(syscallMatches(['wasi:filesystem/rea'], 'wasi:filesystem/read')).toBe(false);
  });

  it('* is any run of characters, possibly empty, crossing /', () => {
    expect(syscallMatches(['wasi:filesystem/*'], 'wasi:filesystem/read')).toBe(true);
    expect(syscallMatches(['wasi:filesystem/*'], 'wasi:filesystem/')).toBe(true);
    expect(syscallMatches(['wasi:filesystem/*'], 'wasi:sockets/tcp-connect')).toBe(false);
    expect(syscallMatches(['wasi:*'], 'wasi:filesystem/read')).toBe(true);
    expect(syscallMatches(['*/read'], 'wasi:io/read')).toBe(true);
    expect(syscallMatches(['*/read'], 'wasi:io/readdir')).toBe(false);
    expect(syscallMatches(['wasi:*/tcp-*'], 'wasi:sockets/tcp-connect')).toBe(true);
    expect(syscallMatches(['*'], 'anything:at/all')).toBe(true);
  });

  it('any of several patterns may match', () => {
    expect(syscallMatches(['wasi:cli/stdout', 'forgeone:kv/*'], 'forgeone:kv/get')).toBe(true);
    expect(syscallMatches(['wasi:cli/stdout', 'forgeone:kv/*'], 'wasi:cli/stderr')).toBe(false);
  });

  it('? is literal in syscall patterns', () => {
    expect(syscallMatches(['wasi:cli/std???'], 'wasi:cli/stdout')).toBe(false);
  });

  it('a rule with no conditions matches every call to its syscalls', () => {
    expect(holds({}, { path: '/etc/passwd', host: 'evil.com', anomaly: 1, denied: 99 })).toBe(true);
  });
});

describe('§4.1 identity conditions', () => {
  it('subjects: the subject matches one of the patterns', () => {
    expect(holds({ identity: { subjects: ['plugin:a'] } })).toBe(true);
    expect(holds({ identity: { subjects: ['plugin:*'] } })).toBe(true);
    expect(holds({ identity: { subjects: ['user:*', 'plugin:b'] } })).toBe(false);
    expect(holds({ identity: { subjects: ['plugin:b', '*'] } })).toBe(true);
  });

  it('tenants: the tenant equals one of them', () => {
    expect(holds({ identity: { tenants: ['globex', 'acme'] } })).toBe(true);
    expect(holds({ identity: { tenants: ['globex'] } })).toBe(false);
    expect(holds({ identity: { tenants: ['acm'] } })).toBe(false);
  });

  it('roles: anyOf / allOf / noneOf, each given part must hold', () => {
    const id = identity({ roles: ['reader', 'writer'] });
    expect(holds({ identity: { roles: { anyOf: ['admin', 'writer'] } } }, {}, id)).toBe(true);
    expect(holds({ identity: { roles: { anyOf: ['admin'] } } }, {}, id)).toBe(false);
    expect(holds({ identity: { roles: { allOf: ['reader', 'writer'] } } }, {}, id)).toBe(true);
    expect(holds({ identity: { roles: { allOf: ['reader', 'admin'] } } }, {}, id)).toBe(false);
    expect(holds({ identity: { roles: { noneOf: ['admin'] } } }, {}, id)).toBe(true);
    expect(holds({ identity: { roles: { noneOf: ['admin', 'writer'] } } }, {}, id)).toBe(false);
    expect(holds({ identity: { roles: { anyOf: ['reader'], noneOf: ['writer'] } } }, {}, id)).toBe(false);
    expect(holds({ identity: { roles: { anyOf: ['reader'], noneOf: ['writer'] } } }, {}, identity({ roles: ['reader'] }))).toBe(true);
  });

  it('attributes: for every key the attribute exists and equals one of the values', () => {
    const id = identity({ attributes: { region: 'eu', team: 'core' } });
    expect(holds({ identity: { attributes: { region: ['us', 'eu'] } } }, {}, id)).toBe(true);
    expect(holds({ identity: { attributes: { region: ['eu'], team: ['core'] } } }, {}, id)).toBe(true);
    expect(holds({ identity: { attributes: { region: ['eu'], team: ['edge'] } } }, {}, id)).toBe(false);
    expect(holds({ identity: { attributes: { region: ['us'] } } }, {}, id)).toBe(false);
    expect(holds({ identity: { attributes: { owner: ['eu'] } } }, {}, id)).toBe(false);
    expect(holds({ identity: { attributes: { constructor: ['x'] } } }, {}, id)).toBe(false);
  });

  it('all given fields must hold', () => {
    expect(holds({ identity: { subjects: ['plugin:a'], tenants: ['acme'], roles: { anyOf: ['reader'] } } })).toBe(true);
    expect(holds({ identity: { subjects: ['plugin:a'], tenants: ['globex'] } })).toBe(false);
  });
});

describe('§4.2 trust conditions', () => {
  it('compares levels by their order, bounds inclusive', () => {
    expect(holds({ trust: { minLevel: 'Verified' } })).toBe(true);
    expect(holds({ trust: { minLevel: 'Trusted' } })).toBe(false);
    expect(holds({ trust: { maxLevel: 'Verified' } })).toBe(true);
    expect(holds({ trust: { maxLevel: 'Limited' } })).toBe(false);
    expect(holds({ trust: { minLevel: 'Limited', maxLevel: 'Trusted' } })).toBe(true);
    expect(holds({ trust: { maxLevel: 'Compromised' } }, {}, identity({ trust: trustVector('Compromised') }))).toBe(true);
    expect(holds({ trust: { minLevel: 'Root' } }, {}, identity({ trust: trustVector('Root') }))).toBe(true);
  });

  it('compares scores, bounds inclusive', () => {
    expect(holds({ trust: { minScore: 0.5 } })).toBe(true);
    expect(holds({ trust: { minScore: 0.6 } })).toBe(false);
    expect(holds({ trust: { maxScore: 0.5 } })).toBe(true);
    expect(holds({ trust: { maxScore: 0.3 } })).toBe(false);
    expect(holds({ trust: { minLevel: 'Verified', minScore: 0.5, maxScore: 0.5 } })).toBe(true);
    expect(holds({ trust: { minLevel: 'Limited', minScore: 0.9 } })).toBe(false);
  });
});

describe('§4.3 argument conditions', () => {
  const path = (match: string[] | undefined, p: string | undefined, notMatch?: string[]) =>
    holds({ args: { path: { ...(match ? { match } : {}), ...(notMatch ? { notMatch } : {}) } } }, { path: p });

  it('path: ** matches zero or more segments, so /data/** matches /data and everything below', () => {
    expect(path(['/data/**'], '/data')).toBe(true);
    expect(path(['/data/**'], '/data/a.txt')).toBe(true);
    expect(path(['/data/**'], '/data/sub/deep/c')).toBe(true);
    expect(path(['/data/**'], '/datax')).toBe(false);
    expect(path(['/data/**'], '/')).toBe(false);
    expect(path(['/**'], '/')).toBe(true);
    expect(path(['/**'], '/etc/passwd')).toBe(true);
    expect(path(['/data/**/c.txt'], '/data/c.txt')).toBe(true);
    expect(path(['/data/**/c.txt'], '/data/x/y/c.txt')).toBe(true);
    expect(path(['/data/**/c.txt'], '/data/x/y/c.bin')).toBe(false);
  });

  it('path: * stays within a segment, ? is one character, the rest is literal', () => {
    expect(path(['/data/*.txt'], '/data/a.txt')).toBe(true);
    expect(path(['/data/*.txt'], '/data/.txt')).toBe(true);
    expect(path(['/data/*.txt'], '/data/sub/a.txt')).toBe(false);
    expect(path(['/data/*.txt'], '/data/a.txt2')).toBe(false);
    expect(path(['/tmp/?'], '/tmp/x')).toBe(true);
    expect(path(['/tmp/?'], '/tmp/xy')).toBe(false);
    expect(path(['/tmp/?'], '/tmp')).toBe(false);
    expect(path(['/etc/passwd'], '/etc/passwd')).toBe(true);
    expect(path(['/etc/passwd'], '/etc/passwd2')).toBe(false);
    expect(path(['/etc/pass.d'], '/etc/passwd')).toBe(false);
    expect(path(['/etc/*'], '/etc/passwd')).toBe(true);
  });

  it('path: one of match and none of notMatch', () => {
    expect(path(['/etc/passwd', '/data/**'], '/data/x')).toBe(true);
    expect(path(['/data/**'], '/data/secret/key', ['/data/secret/**'])).toBe(false);
    expect(path(['/data/**'], '/data/public/key', ['/data/secret/**'])).toBe(true);
    expect(path(undefined, '/tmp/x', ['/etc/**'])).toBe(true);
    expect(path(undefined, '/etc/passwd', ['/etc/**'])).toBe(false);
  });

  it('path: a call without a path does not hold, not even for notMatch', () => {
    expect(path(['/**'], undefined)).toBe(false);
    expect(path(undefined, undefined, ['/etc/**'])).toBe(false);
  });

  const host = (cond: Record<string, string[]>, h: string | undefined) => holds({ args: { host: cond } }, { host: h });

  it('host: exact, or *.example.com = any host ending in .example.com but not example.com itself', () => {
    expect(host({ in: ['api.example.com'] }, 'api.example.com')).toBe(true);
    expect(host({ in: ['api.example.com'] }, 'cdn.example.com')).toBe(false);
    expect(host({ in: ['*.example.com'] }, 'api.example.com')).toBe(true);
    expect(host({ in: ['*.example.com'] }, 'a.b.example.com')).toBe(true);
    expect(host({ in: ['*.example.com'] }, 'example.com')).toBe(false);
    expect(host({ in: ['*.example.com'] }, 'badexample.com')).toBe(false);
    expect(host({ in: ['*.example.com'] }, 'example.com.evil.org')).toBe(false);
  });

  it('host: in and notIn, and a call without a host does not hold', () => {
    expect(host({ in: ['*.example.com'], notIn: ['evil.example.com'] }, 'evil.example.com')).toBe(false);
    expect(host({ in: ['*.example.com'], notIn: ['evil.example.com'] }, 'good.example.com')).toBe(true);
    expect(host({ notIn: ['*.example.com'] }, 'example.com')).toBe(true);
    expect(host({ notIn: ['*.example.com'] }, 'api.example.com')).toBe(false);
    expect(host({ in: ['api.example.com'] }, undefined)).toBe(false);
    expect(host({ notIn: ['evil.com'] }, undefined)).toBe(false);
  });

  it('port: in, min and max (inclusive); a call without a port does not hold', () => {
    const port = (cond: Record<string, unknown>, p: number | undefined) => holds({ args: { port: cond } }, { port: p });
    expect(port({ in: [80, 443] }, 443)).toBe(true);
    expect(port({ in: [80, 443] }, 8080)).toBe(false);
    expect(port({ min: 1024 }, 1024)).toBe(true);
    expect(port({ min: 1024 }, 1023)).toBe(false);
    expect(port({ max: 1024 }, 1024)).toBe(true);
    expect(port({ max: 1024 }, 1025)).toBe(false);
    expect(port({ in: [80, 8080], min: 1000 }, 80)).toBe(false);
    expect(port({ in: [80, 8080], min: 1000 }, 8080)).toBe(true);
    expect(port({ min: 0 }, undefined)).toBe(false);
    expect(port({ min: 0 }, 0)).toBe(true);
  });

  it('size: min and max (inclusive); a call without a size does not hold', () => {
    const size = (cond: Record<string, unknown>, s: number | undefined) => holds({ args: { size: cond } }, { size: s });
    expect(size({ max: 4096 }, 4096)).toBe(true);
    expect(size({ max: 4096 }, 4097)).toBe(false);
    expect(size({ min: 100 }, 100)).toBe(true);
    expect(size({ min: 100 }, 99)).toBe(false);
    expect(size({ min: 0, max: 10 }, 0)).toBe(true);
    expect(size({ max: 4096 }, undefined)).toBe(false);
  });

  it('all given argument fields must hold', () => {
    const cond = { args: { path: { match: ['/data/**'] }, size: { max: 100 } } };
    expect(holds(cond, { path: '/data/x', size: 100 })).toBe(true);
    expect(holds(cond, { path: '/data/x', size: 101 })).toBe(false);
    expect(holds(cond, { path: '/data/x' })).toBe(false);
  });
});

describe('§4.4 history conditions', () => {
  it('callsAtLeast / callsBelow compare the calls made so far', () => {
    expect(holds({ history: { callsAtLeast: 3 } }, { calls: 3 })).toBe(true);
    expect(holds({ history: { callsAtLeast: 3 } }, { calls: 2 })).toBe(false);
    expect(holds({ history: { callsBelow: 3 } }, { calls: 2 })).toBe(true);
    expect(holds({ history: { callsBelow: 3 } }, { calls: 3 })).toBe(false);
    expect(holds({ history: { callsBelow: 0 } }, { calls: 0 })).toBe(false);
  });

  it('rateAbove is strict', () => {
    expect(holds({ history: { rateAbove: 2 } }, { rate: 3 })).toBe(true);
    expect(holds({ history: { rateAbove: 2 } }, { rate: 2 })).toBe(false);
    expect(holds({ history: { rateAbove: 0.5 } }, { rate: 1 })).toBe(true);
  });

  it('deniedAtLeast compares the denials so far', () => {
    expect(holds({ history: { deniedAtLeast: 3 } }, { denied: 3 })).toBe(true);
    expect(holds({ history: { deniedAtLeast: 3 } }, { denied: 2 })).toBe(false);
  });

  it('anomalyAbove is strict', () => {
    expect(holds({ history: { anomalyAbove: 0.5 } }, { anomaly: 0.9 })).toBe(true);
    expect(holds({ history: { anomalyAbove: 0.5 } }, { anomaly: 0.5 })).toBe(false);
  });

  it('all given history fields must hold', () => {
    expect(holds({ history: { callsAtLeast: 1, deniedAtLeast: 1 } }, { calls: 1, denied: 1 })).toBe(true);
    expect(holds({ history: { callsAtLeast: 1, deniedAtLeast: 1 } }, { calls: 1, denied: 0 })).toBe(false);
  });
});

describe('§4.5 time conditions (UTC)', () => {
  const at = (day: number, hh: number, mm: number, ss = 0) => Date.UTC(2026, 10, 23 + day, hh, mm, ss);

  it('days: the UTC day of the call', () => {
    expect(holds({ time: { days: ['mon'] } }, { now: at(0, 0, 0) })).toBe(true);
    expect(holds({ time: { days: ['mon'] } }, { now: at(0, 23, 59, 59) })).toBe(true);
    expect(holds({ time: { days: ['mon'] } }, { now: at(-1, 23, 59, 59) })).toBe(false);
    expect(holds({ time: { days: ['sat', 'sun'] } }, { now: at(-1, 12, 0) })).toBe(true);
    expect(holds({ time: { days: ['sat', 'sun'] } }, { now: at(1, 12, 0) })).toBe(false);
  });

  it('from/to: minute in [from, to)', () => {
    const w = { time: { from: '08:00', to: '18:00' } };
    expect(holds(w, { now: at(0, 8, 0) })).toBe(true);
    expect(holds(w, { now: at(0, 7, 59, 59) })).toBe(false);
    expect(holds(w, { now: at(0, 17, 59, 59) })).toBe(true);
    expect(holds(w, { now: at(0, 18, 0) })).toBe(false);
  });

  it('from > to wraps midnight: minute ≥ from or minute < to', () => {
    const w = { time: { from: '22:00', to: '06:00' } };
    expect(holds(w, { now: at(0, 22, 0) })).toBe(true);
    expect(holds(w, { now: at(0, 23, 59) })).toBe(true);
    expect(holds(w, { now: at(1, 0, 0) })).toBe(true);
    expect(holds(w, { now: at(1, 5, 59) })).toBe(true);
    expect(holds(w, { now: at(1, 6, 0) })).toBe(false);
    expect(holds(w, { now: at(0, 12, 0) })).toBe(false);
    expect(holds(w, { now: at(0, 21, 59) })).toBe(false);
  });

  it('days and window together', () => {
    const w = { time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' } };
    expect(holds(w, { now: at(0, 9, 0) })).toBe(true);
    expect(holds(w, { now: at(-1, 9, 0) })).toBe(false);
    expect(holds(w, { now: at(0, 19, 0) })).toBe(false);
  });

  it('SPEC readings: from === to never holds; a single bound is open on the other side', () => {
    expect(holds({ time: { from: '12:00', to: '12:00' } }, { now: at(0, 12, 0) })).toBe(false);
    expect(holds({ time: { from: '12:00' } }, { now: at(0, 23, 59) })).toBe(true);
    expect(holds({ time: { from: '12:00' } }, { now: at(0, 11, 59) })).toBe(false);
    expect(holds({ time: { to: '12:00' } }, { now: at(0, 0, 0) })).toBe(true);
    expect(holds({ time: { to: '12:00' } }, { now: at(0, 12, 0) })).toBe(false);
  });
});

describe('§5.1 precedence', () => {
  const all = [
    { id: 'allow', action: 'allow', syscalls: ['*'] },
    { id: 'audit', action: 'audit', syscalls: ['*'] },
    { id: 'rl', action: 'rate-limit', syscalls: ['*'], rateLimit: { perSecond: 1, burst: 1 } },
    { id: 'deny', action: 'deny', syscalls: ['*'] },
    { id: 'quarantine', action: 'quarantine', syscalls: ['*'] },
  ];
  const without = (...ids: string[]) => rules(all.filter((r) => !ids.includes(r.id)));
  /** A state whose `base/rl` bucket is empty. */
  const drained = (): ReferenceState => {
    const s = createReferenceState();
    s.buckets.set('base/rl', { tokens: 0, last: T0 });
    return s;
  };

  it('quarantine beats deny, rate-limit, audit and allow', () => {
    expect(decide(without(), 'x:y/z', {}, identity(), drained())).toMatchObject({ verdict: 'quarantine', rule: 'base/quarantine', rateLimited: false });
  });

  it('deny beats rate-limit, audit and allow', () => {
    expect(decide(without('quarantine'), 'x:y/z', {}, identity(), drained())).toMatchObject({ verdict: 'deny', rule: 'base/deny', rateLimited: false });
  });

  it('a rate-limit rule without a token denies, over audit and allow', () => {
    expect(decide(without('quarantine', 'deny'), 'x:y/z', {}, identity(), drained())).toMatchObject({ verdict: 'deny', rule: 'base/rl', rateLimited: true });
  });

  it('audit beats allow (and a rate-limit rule with a token)', () => {
    expect(decide(without('quarantine', 'deny'))).toMatchObject({ verdict: 'audit', rule: 'base/audit', rateLimited: false });
  });

  it('allow and rate-limit with a token allow', () => {
    expect(decide(without('quarantine', 'deny', 'audit', 'rl'))).toMatchObject({ verdict: 'allow', rule: 'base/allow' });
    expect(decide(without('quarantine', 'deny', 'audit', 'allow'))).toMatchObject({ verdict: 'allow', rule: 'base/rl', rateLimited: false });
  });

  it('the default action decides when no rule matches', () => {
    for (const d of ['allow', 'deny', 'audit', 'quarantine'] as const) {
      const p = rules([{ id: 'other', action: 'quarantine', syscalls: ['wasi:cli/*'] }], d);
      expect(decide(p, 'wasi:filesystem/read')).toEqual({ verdict: d, rule: null, rateLimited: false, activeNodes: ['base'] });
    }
    expect(decide(policy({ defaultAction: 'audit', root: 'base', nodes: { base: { rules: [] } } }))).toMatchObject({ verdict: 'audit', rule: null });
  });

  it('an explicit deny wins over any allow, wherever the rules sit in the graph', () => {
    const p = policy({
      root: 'base',
      nodes: {
        base: { rules: [{ id: 'all', action: 'allow', syscalls: ['wasi:filesystem/read'], identity: { subjects: ['plugin:a'] }, trust: { minLevel: 'Limited' } }] },
        deep: { rules: [{ id: 'no', action: 'deny', syscalls: ['*'] }] },
      },
      edges: [{ from: 'base', to: 'deep', kind: 'extends' }],
    });
    expect(decide(p)).toMatchObject({ verdict: 'deny', rule: 'deep/no' });
  });

  it('rules that do not match do not count', () => {
    const p = rules([
      { id: 'deny-etc', action: 'deny', syscalls: ['*'], args: { path: { match: ['/etc/**'] } } },
      { id: 'ok', action: 'allow', syscalls: ['*'] },
    ]);
    expect(decide(p, 'wasi:filesystem/read', { path: '/data/x' })).toMatchObject({ verdict: 'allow', rule: 'base/ok' });
    expect(decide(p, 'wasi:filesystem/read', { path: '/etc/x' })).toMatchObject({ verdict: 'deny', rule: 'base/deny-etc' });
  });
});

describe('§5.2 rate limits', () => {
  const rl = (rateLimit: Record<string, number>, extra: Record<string, unknown>[] = []) =>
    rules([{ id: 'rl', action: 'rate-limit', syscalls: ['wasi:filesystem/read'], rateLimit }, ...extra]);

  it('burst 2, perSecond 1: allow, allow, deny, then after 1000 ms allow again', () => {
    const p = rl({ perSecond: 1, burst: 2 });
    const s = createReferenceState();
    const at = (dt: number) => decide(p, 'wasi:filesystem/read', { now: T0 + dt }, identity(), s);
    expect(at(0)).toMatchObject({ verdict: 'allow', rule: 'base/rl', rateLimited: false });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 1000, last: T0 });
    expect(at(0)).toMatchObject({ verdict: 'allow', rateLimited: false });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 0, last: T0 });
    expect(at(0)).toMatchObject({ verdict: 'deny', rule: 'base/rl', rateLimited: true });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 0, last: T0 });
    // Half a second later: 500 milli-tokens, still no token, and a denied call spends nothing...
    expect(at(500)).toMatchObject({ verdict: 'deny', rateLimited: true });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 500, last: T0 + 500 });
    // ...so at +1000 ms there is exactly one token again.
    expect(at(1000)).toMatchObject({ verdict: 'allow', rateLimited: false });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 0, last: T0 + 1000 });
    expect(at(1000)).toMatchObject({ verdict: 'deny', rateLimited: true });
  });

  it('refills up to capacity only; burst defaults to perSecond', () => {
    const p = rl({ perSecond: 3 });
    const s = createReferenceState();
    decide(p, 'wasi:filesystem/read', { now: T0 }, identity(), s);
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 2000, last: T0 });
    decide(p, 'wasi:filesystem/read', { now: T0 + 60_000 }, identity(), s);
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 2000, last: T0 + 60_000 });
    const verdicts = [0, 0, 0].map(() => decide(p, 'wasi:filesystem/read', { now: T0 + 60_000 }, identity(), s).verdict);
    expect(verdicts).toEqual(['allow', 'allow', 'deny']);
  });

  it('refills by (t − last) × perSecond milli-tokens', () => {
    const p = rl({ perSecond: 4, burst: 5 });
    const s = createReferenceState();
    s.buckets.set('base/rl', { tokens: 0, last: T0 });
    decide(p, 'wasi:filesystem/read', { now: T0 + 249 }, identity(), s);
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 996, last: T0 + 249 });
    expect(decide(p, 'wasi:filesystem/read', { now: T0 + 250 }, identity(), s).verdict).toBe('allow');
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 0, last: T0 + 250 });
  });

  it('spends nothing when a deny or quarantine rule decides, but still refills', () => {
    for (const action of ['deny', 'quarantine'] as const) {
      const p = rl({ perSecond: 1, burst: 2 }, [{ id: 'no', action, syscalls: ['*'] }]);
      const s = createReferenceState();
      s.buckets.set('base/rl', { tokens: 500, last: T0 });
      expect(decide(p, 'wasi:filesystem/read', { now: T0 + 100 }, identity(), s)).toMatchObject({ verdict: action, rule: 'base/no', rateLimited: false });
      expect(s.buckets.get('base/rl')).toEqual({ tokens: 600, last: T0 + 100 });
    }
  });

  it('spends on audit too', () => {
    const p = rl({ perSecond: 1, burst: 2 }, [{ id: 'watch', action: 'audit', syscalls: ['*'] }]);
    const s = createReferenceState();
    expect(decide(p, 'wasi:filesystem/read', { now: T0 }, identity(), s)).toMatchObject({ verdict: 'audit', rule: 'base/watch' });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 1000, last: T0 });
  });

  it('touches only matching rate-limit rules; with several, one empty bucket denies and none spends', () => {
    const p = rules([
      { id: 'a', action: 'rate-limit', syscalls: ['wasi:filesystem/*'], rateLimit: { perSecond: 1, burst: 1 } },
      { id: 'b', action: 'rate-limit', syscalls: ['wasi:filesystem/read'], rateLimit: { perSecond: 5, burst: 5 } },
      { id: 'c', action: 'rate-limit', syscalls: ['wasi:cli/*'], rateLimit: { perSecond: 1 } },
    ]);
    const s = createReferenceState();
    expect(decide(p, 'wasi:filesystem/read', { now: T0 }, identity(), s)).toMatchObject({ verdict: 'allow', rule: 'base/b' });
    expect(s.buckets.get('base/a')).toEqual({ tokens: 0, last: T0 });
    expect(s.buckets.get('base/b')).toEqual({ tokens: 4000, last: T0 });
    expect(s.buckets.has('base/c')).toBe(false);
    expect(decide(p, 'wasi:filesystem/read', { now: T0 + 10 }, identity(), s)).toMatchObject({ verdict: 'deny', rule: 'base/a', rateLimited: true });
    expect(s.buckets.get('base/a')).toEqual({ tokens: 10, last: T0 + 10 });
    expect(s.buckets.get('base/b')).toEqual({ tokens: 4050, last: T0 + 10 });
  });

  it('a call earlier than last refills nothing', () => {
    const p = rl({ perSecond: 1, burst: 2 });
    const s = createReferenceState();
    s.buckets.set('base/rl', { tokens: 500, last: T0 });
    expect(decide(p, 'wasi:filesystem/read', { now: T0 - 5000 }, identity(), s)).toMatchObject({ verdict: 'deny', rateLimited: true });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 500, last: T0 });
    expect(decide(p, 'wasi:filesystem/read', { now: T0 + 500 }, identity(), s)).toMatchObject({ verdict: 'allow' });
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 0, last: T0 + 500 });
  });

  it('buckets are per rule: the same rule id in two nodes has two buckets', () => {
    const p = policy({
      root: 'base',
      nodes: {
        base: { rules: [{ id: 'rl', action: 'rate-limit', syscalls: ['*'], rateLimit: { perSecond: 1, burst: 1 } }] },
        more: { rules: [{ id: 'rl', action: 'rate-limit', syscalls: ['*'], rateLimit: { perSecond: 1, burst: 3 } }] },
      },
      edges: [{ from: 'base', to: 'more', kind: 'extends' }],
    });
    const s = createReferenceState();
    decide(p, 'x:y/z', {}, identity(), s);
    expect(s.buckets.get('base/rl')).toEqual({ tokens: 0, last: T0 });
    expect(s.buckets.get('more/rl')).toEqual({ tokens: 2000, last: T0 });
  });
});

describe('§5.3 the deciding rule', () => {
  it('more condition fields win', () => {
    const p = rules([
      { id: 'plain', action: 'allow', syscalls: ['wasi:filesystem/read'] },
      { id: 'one', action: 'allow', syscalls: ['*'], trust: { minLevel: 'Limited' } },
      { id: 'two', action: 'allow', syscalls: ['*'], identity: { tenants: ['acme'] }, history: { callsBelow: 10 } },
    ]);
    expect(decide(p).rule).toBe('base/two');
  });

  it('every present field counts 1 (trust minLevel + minScore = 2 beats one roles field with two parts)', () => {
    const p = rules([
      { id: 'roles', action: 'allow', syscalls: ['*'], identity: { roles: { anyOf: ['reader'], noneOf: ['admin'] } } },
      { id: 'trust', action: 'allow', syscalls: ['*'], trust: { minLevel: 'Limited', minScore: 0 } },
    ]);
    expect(decide(p).rule).toBe('base/trust');
    const q = rules([
      { id: 'window', action: 'allow', syscalls: ['*'], time: { from: '00:00', to: '23:59' } },
      { id: 'path', action: 'allow', syscalls: ['*'], args: { path: { match: ['/**'], notMatch: ['/etc/**'] } } },
    ]);
    expect(decide(q, 'wasi:filesystem/read', { path: '/data' }).rule).toBe('base/window');
  });

  it('with equal conditions an exact pattern beats a wildcard, even one with as many literal characters', () => {
    const p = rules([
      { id: 'wild', action: 'allow', syscalls: ['wasi:filesystem/read*'] },
      { id: 'exact', action: 'allow', syscalls: ['wasi:cli/stdout', 'wasi:filesystem/read'] },
    ]);
    expect(decide(p).rule).toBe('base/exact');
  });

  it('then more literal characters in the longest matching pattern', () => {
    const p = rules([
      { id: 'short', action: 'allow', syscalls: ['wasi:*'] },
      { id: 'long', action: 'allow', syscalls: ['*', 'wasi:filesystem/*'] },
    ]);
    expect(decide(p).rule).toBe('base/long');
  });

  it('then the earlier node in node order (not declaration order)', () => {
    const p = policy({
      root: 'base',
      nodes: {
        second: { rules: [{ id: 'r', action: 'allow', syscalls: ['wasi:filesystem/*'] }] },
        base: { rules: [] },
        first: { rules: [{ id: 'r', action: 'allow', syscalls: ['wasi:filesystem/*'] }] },
      },
      edges: [
        { from: 'base', to: 'first', kind: 'extends' },
        { from: 'first', to: 'second', kind: 'extends' },
      ],
    });
    expect(decide(p)).toMatchObject({ rule: 'first/r', activeNodes: ['base', 'first', 'second'] });
  });

  it('then the earlier rule in its node', () => {
    const p = rules([
      { id: 'z', action: 'allow', syscalls: ['wasi:filesystem/*'] },
      { id: 'a', action: 'allow', syscalls: ['wasi:filesystem/*'] },
    ]);
    expect(decide(p).rule).toBe('base/z');
  });

  it('only rules whose action produced the verdict are candidates', () => {
    const p = rules([
      { id: 'specific-allow', action: 'allow', syscalls: ['wasi:filesystem/read'], identity: { tenants: ['acme'] }, trust: { minLevel: 'Limited' } },
      { id: 'vague-deny', action: 'deny', syscalls: ['*'] },
    ]);
    expect(decide(p)).toMatchObject({ verdict: 'deny', rule: 'base/vague-deny' });
  });

  it('for allow, rate-limit rules are candidates too', () => {
    const p = rules([
      { id: 'allow', action: 'allow', syscalls: ['*'] },
      { id: 'rl', action: 'rate-limit', syscalls: ['wasi:filesystem/read'], rateLimit: { perSecond: 5 } },
    ]);
    expect(decide(p)).toMatchObject({ verdict: 'allow', rule: 'base/rl' });
  });

  it('for a rate-limit denial, only the rate-limit rules without a token are candidates', () => {
    const p = rules([
      { id: 'full', action: 'rate-limit', syscalls: ['wasi:filesystem/read'], identity: { tenants: ['acme'] }, rateLimit: { perSecond: 5 } },
      { id: 'empty', action: 'rate-limit', syscalls: ['*'], rateLimit: { perSecond: 1 } },
      { id: 'allow', action: 'allow', syscalls: ['wasi:filesystem/read'], trust: { minScore: 0 }, history: { callsBelow: 99 } },
    ]);
    const s = createReferenceState();
    s.buckets.set('base/empty', { tokens: 0, last: T0 });
    expect(decide(p, 'wasi:filesystem/read', {}, identity(), s)).toMatchObject({ verdict: 'deny', rule: 'base/empty', rateLimited: true });
  });

  it('the verdict does not depend on specificity or order', () => {
    const rs = [
      { id: 'a', action: 'allow', syscalls: ['wasi:filesystem/read'], identity: { tenants: ['acme'] } },
      { id: 'b', action: 'audit', syscalls: ['*'] },
    ];
    expect(decide(rules(rs)).verdict).toBe('audit');
    expect(decide(rules([...rs].reverse())).verdict).toBe('audit');
  });
});

describe('arbitraries', () => {
  it('arbCase generates valid cases and the reference never throws on 2,000 of them', () => {
    const seen = new Map<string, number>();
    const bump = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    fc.assert(
      fc.property(arbCase(), ({ policy: p, identity: id, calls }) => {
        expect(() => parsePolicy(p)).not.toThrow();
        expect(parsePolicy(p).policy).toEqual(p);
        const state = createReferenceState();
        let last = -Infinity;
        for (const { syscall, ctx: c } of calls) {
          expect(c.now).toBeGreaterThanOrEqual(last);
          last = c.now;
          const d = referenceDecide(p, id, syscall, c, state);
          bump(d.rateLimited ? 'rate-limited' : d.verdict);
          if (d.rule === null) bump('default');
          for (const b of state.buckets.values()) expect(Number.isInteger(b.tokens)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
    // The pools are small enough that every outcome shows up.
    for (const k of ['allow', 'deny', 'audit', 'quarantine', 'rate-limited', 'default']) expect(seen.get(k) ?? 0).toBeGreaterThan(0);
  });
});

describe('fixtures', () => {
  it('T0 is Monday noon UTC', () => {
    expect(new Date(T0).getUTCDay()).toBe(1);
    expect(T0 % (24 * HOUR)).toBe(12 * HOUR);
  });
});
