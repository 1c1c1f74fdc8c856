import { describe, expect, it } from 'vitest';
import { createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, globSource, parsePolicy } from '../src/index.js';
import { NOW, POLICY_YAML, alice, ctx, mallory, table } from './fixtures.js';

const { policy } = parsePolicy(POLICY_YAML);

describe('compiled policy: documented behaviour', () => {
  const t = table();
  const id = (n: string) => t.id(n);

  it('activates nodes by edge conditions on trust', () => {
    expect(compilePolicy(policy, { identity: alice, syscalls: t }).activeNodes).toEqual(['base', 'trusted']);
    expect(compilePolicy(policy, { identity: mallory, syscalls: t }).activeNodes).toEqual(['base', 'untrusted']);
  });

  it('allows, denies by default, and the explicit deny wins over an allow', () => {
    const p = compilePolicy(policy, { identity: alice, syscalls: t });
    expect(p.decide(id('wasi:cli/stdout'), ctx()).verdict).toBe('allow');
    expect(p.decide(id('wasi:cli/stdin'), ctx())).toMatchObject({ verdict: 'deny', rule: null, code: 'POLICY_DENIED' });
    expect(p.decide(id('wasi:filesystem/read'), ctx({ path: '/data/report.csv' }))).toMatchObject({ verdict: 'allow', rule: 'base/read-data' });
    expect(p.decide(id('wasi:filesystem/read'), ctx({ path: '/etc/passwd' }))).toMatchObject({ verdict: 'deny', rule: null });
    expect(p.decide(id('wasi:filesystem/read'), ctx({ path: '/data/secrets/key' }))).toMatchObject({ verdict: 'deny', rule: 'base/no-secrets' });
    expect(p.decide(id('wasi:filesystem/read'), ctx())).toMatchObject({ verdict: 'deny', rule: null });
  });

  it('audits (allowed and flagged) and lets a more trusted identity through its own node', () => {
    const p = compilePolicy(policy, { identity: mallory, syscalls: t });
    expect(p.decide(id('forgeone:http/fetch'), ctx({ host: 'api.example.com', port: 443 })).verdict).toBe('audit');
    expect(p.decide(id('forgeone:http/fetch'), ctx({ host: 'cdn.example.org', port: 443 })).verdict).toBe('audit');
    expect(p.decide(id('forgeone:http/fetch'), ctx({ host: 'example.org', port: 443 })).verdict).toBe('deny');
    expect(p.decide(id('forgeone:http/fetch'), ctx({ host: 'api.example.com', port: 80 })).verdict).toBe('deny');
    const q = compilePolicy(policy, { identity: alice, syscalls: t });
    // trusted/any-fetch allows; base/fetch audits: audit is stricter and wins.
    expect(q.decide(id('forgeone:http/fetch'), ctx({ host: 'api.example.com', port: 443 })).verdict).toBe('audit');
    expect(q.decide(id('forgeone:http/fetch'), ctx({ host: 'evil.test', port: 443 })).verdict).toBe('allow');
  });

  it('quarantines untrusted code that opens sockets', () => {
    const p = compilePolicy(policy, { identity: mallory, syscalls: t });
    expect(p.decide(id('wasi:sockets/tcp-connect'), ctx({ host: 'evil.test', port: 4444 }))).toMatchObject({ verdict: 'quarantine', rule: 'untrusted/no-network' });
    expect(compilePolicy(policy, { identity: alice, syscalls: t }).decide(id('wasi:sockets/tcp-connect'), ctx()).verdict).toBe('deny');
  });

  it('rate-limits with a token bucket: burst 2, then one per 500 ms at 2/s', () => {
    const p = compilePolicy(policy, { identity: alice, syscalls: t });
    const kv = id('forgeone:kv/get');
    const seq = [0, 0, 0, 499, 500, 500].map((dt) => p.decide(kv, ctx({ now: NOW + dt })));
    expect(seq.map((d) => d.verdict)).toEqual(['allow', 'allow', 'deny', 'deny', 'allow', 'deny']);
    expect(seq[2]).toMatchObject({ rateLimited: true, code: 'POLICY_RATE_LIMITED', rule: 'base/kv' });
  });

  it('explains which rule decided and why the others did not match', () => {
    const p = compilePolicy(policy, { identity: alice, syscalls: t });
    const e = p.explain(id('wasi:filesystem/read'), ctx({ path: '/etc/passwd' }));
    expect(e.decision.verdict).toBe('deny');
    expect(e.candidates).toEqual([
      { rule: 'base/read-data', action: 'allow', matched: false, failed: 'args.path: /etc/passwd matches none of /data/**' },
      { rule: 'base/no-secrets', action: 'deny', matched: false, failed: 'args.path: /etc/passwd matches none of /data/secrets/**' },
    ]);
    expect(e.inactiveNodes).toEqual([{ node: 'untrusted', reason: 'not reached' }]);
    expect(e.text).toMatch(/default action \(deny\)/);
  });

  it('evaluates identity conditions once, at compile time', () => {
    const { policy: p2 } = parsePolicy({
      apiVersion: 'forgeone.policy/v1', name: 'x', version: 1, defaultAction: 'deny', root: 'r',
      nodes: { r: { rules: [{ id: 'eu', action: 'allow', syscalls: ['*'], identity: { attributes: { region: ['eu'] }, roles: { anyOf: ['reader'] } } }] } },
    });
    expect(compilePolicy(p2, { identity: alice, syscalls: t }).decide(id('wasi:cli/env'), ctx()).verdict).toBe('allow');
    const us = createIdentity({ subject: 'plugin:hello', attributes: { region: 'us' }, roles: ['reader'], trust: trustVector('Verified') });
    const c = compilePolicy(p2, { identity: us, syscalls: t });
    expect(c.decide(id('wasi:cli/env'), ctx()).verdict).toBe('deny');
    expect(c.explain(id('wasi:cli/env'), ctx()).candidates[0]!.failed).toBe('identity.attributes.region: us is not one of eu');
  });

  it('path globs follow §4.3', () => {
    const re = (g: string) => new RegExp(`^(?:${globSource(g)})$`, 's');
    expect(re('/data/**').test('/data')).toBe(true);
    expect(re('/data/**').test('/data/a/b')).toBe(true);
    expect(re('/data/**').test('/database')).toBe(false);
    expect(re('/data/*.txt').test('/data/a.txt')).toBe(true);
    expect(re('/data/*.txt').test('/data/x/a.txt')).toBe(false);
    expect(re('/tmp/?').test('/tmp/a')).toBe(true);
    expect(re('/tmp/?').test('/tmp/ab')).toBe(false);
    expect(re('/**').test('/')).toBe(true);
    expect(re('/a/**/z').test('/a/z')).toBe(true);
    expect(re('/a/**/z').test('/a/b/c/z')).toBe(true);
  });

  it('matches the detail argument with host patterns; a call without one does not hold', () => {
    const { policy: p } = parsePolicy(`
apiVersion: forgeone.policy/v1
name: detail
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: named, action: allow, syscalls: ["wasi:sockets/tcp-connect"], args: { detail: { in: ["api.example.com", "*.example.org"], notIn: ["bad.example.org"] } } }
`);
    const prog = compilePolicy(p, { identity: alice, syscalls: t });
    const connect = id('wasi:sockets/tcp-connect');
    expect(prog.decide(connect, ctx({ host: '93.184.216.34', detail: 'api.example.com' })).verdict).toBe('allow');
    expect(prog.decide(connect, ctx({ detail: 'x.example.org' })).verdict).toBe('allow');
    expect(prog.decide(connect, ctx({ detail: 'bad.example.org' })).verdict).toBe('deny');
    expect(prog.decide(connect, ctx({ host: '93.184.216.34' })).verdict).toBe('deny');
    expect(prog.explain(connect, ctx({ detail: 'evil.com' })).candidates[0]?.failed).toBe('args.detail: evil.com is not in api.example.com, *.example.org');
  });

  it('time windows and history conditions', () => {
    const { policy: p3 } = parsePolicy({
      apiVersion: 'forgeone.policy/v1', name: 'x', version: 1, defaultAction: 'allow', root: 'r',
      nodes: {
        r: {
          rules: [
            { id: 'night', action: 'deny', syscalls: ['wasi:cli/stdout'], time: { from: '22:00', to: '06:00' } },
            { id: 'weekend', action: 'deny', syscalls: ['wasi:cli/stderr'], time: { days: ['sat', 'sun'] } },
            { id: 'flood', action: 'quarantine', syscalls: ['forgeone:log/write'], history: { rateAbove: 100 } },
            { id: 'repeat-offender', action: 'deny', syscalls: ['*'], history: { deniedAtLeast: 5 } },
          ],
        },
      },
    });
    const c = compilePolicy(p3, { identity: alice, syscalls: t });
    const at = (h: number, day = 0) => NOW - 10 * 3_600_000 + h * 3_600_000 + day * 86_400_000;
    expect(c.decide(id('wasi:cli/stdout'), ctx({ now: at(23) })).verdict).toBe('deny');
    expect(c.decide(id('wasi:cli/stdout'), ctx({ now: at(5) })).verdict).toBe('deny');
    expect(c.decide(id('wasi:cli/stdout'), ctx({ now: at(12) })).verdict).toBe('allow');
    expect(c.decide(id('wasi:cli/stderr'), ctx({ now: at(12, 5) })).verdict).toBe('deny'); // Saturday
    expect(c.decide(id('wasi:cli/stderr'), ctx({ now: at(12, 1) })).verdict).toBe('allow');
    expect(c.decide(id('forgeone:log/write'), ctx({ rate: 101 })).verdict).toBe('quarantine');
    expect(c.decide(id('forgeone:log/write'), ctx({ rate: 100 })).verdict).toBe('allow');
    expect(c.decide(id('wasi:cli/env'), ctx({ denied: 5 })).verdict).toBe('deny');
  });

  it('decisions are shared, precomputed objects: deciding allocates no result', () => {
    const p = compilePolicy(policy, { identity: alice, syscalls: t });
    const c = ctx({ path: '/data/a' });
    const first = p.decide(id('wasi:filesystem/read'), c);
    expect(p.decide(id('wasi:filesystem/read'), c)).toBe(first);
    expect(p.decide(id('wasi:cli/stdout'), c)).toBe(p.decide(id('wasi:cli/stdout'), ctx()));
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('unknown syscall ids get the default action', () => {
    const p = compilePolicy(policy, { identity: alice, syscalls: t });
    expect(p.decide(9999, ctx())).toMatchObject({ verdict: 'deny', rule: null });
  });
});

describe('policy documents', () => {
  it('rejects malformed documents with the path of the field', () => {
    const bad = (doc: unknown) => {
      try {
        parsePolicy(doc);
        return 'accepted';
      } catch (e) {
        return `${(e as { code: string }).code} ${(e as { details: { path: string } }).details.path}`;
      }
    };
    const base = { apiVersion: 'forgeone.policy/v1', name: 'x', version: 1, defaultAction: 'deny', root: 'r', nodes: { r: { rules: [] } } };
    expect(bad(base)).toBe('accepted');
    expect(bad({ ...base, defaultAction: 'maybe' })).toBe('POLICY_INVALID defaultAction');
    expect(bad({ ...base, nodes: { r: { rules: [{ id: 'a', action: 'allow', syscalls: [] }] } } })).toBe('POLICY_INVALID nodes.r.rules[0].syscalls');
    expect(bad({ ...base, nodes: { r: { rules: [{ id: 'a', action: 'rate-limit', syscalls: ['*'] }] } } })).toBe('POLICY_INVALID nodes.r.rules[0].rateLimit');
    expect(bad({ ...base, nodes: { r: { rules: [{ id: 'a', action: 'allow', syscalls: ['*'], args: { path: { match: ['/x'] }, colour: 1 } }] } } })).toBe('POLICY_INVALID nodes.r.rules[0].args');
    expect(bad({ ...base, root: 'nope' })).toBe('POLICY_INVALID root');
    expect(bad({ ...base, edges: [{ from: 'r', to: 'q', kind: 'extends' }] })).toBe('POLICY_INVALID edges[0].to');
    expect(bad('version: [')).toBe('POLICY_INVALID $');
  });

  it('detects cycles and names them', () => {
    const doc = {
      apiVersion: 'forgeone.policy/v1', name: 'x', version: 1, defaultAction: 'deny', root: 'a',
      nodes: { a: { rules: [] }, b: { rules: [] }, c: { rules: [] } },
      edges: [{ from: 'a', to: 'b', kind: 'extends' }, { from: 'b', to: 'c', kind: 'extends' }, { from: 'c', to: 'b', kind: 'overrides' }],
    };
    expect(() => parsePolicy(doc)).toThrow(/cycle: b -> c -> b/);
  });

  it('warns on unknown syscalls and unreachable nodes', () => {
    const { warnings } = parsePolicy({
      apiVersion: 'forgeone.policy/v1', name: 'x', version: 1, defaultAction: 'deny', root: 'r',
      nodes: { r: { rules: [{ id: 'a', action: 'allow', syscalls: ['wasi:filesytem/read'] }] }, orphan: { rules: [] } },
    });
    expect(warnings.map((w) => w.code)).toEqual(['UNKNOWN_SYSCALL', 'UNREACHABLE_NODE']);
    expect(warnings[0]!.path).toBe('nodes.r.rules[0].syscalls[0]');
  });
});
