import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KNOWN_SYSCALLS, SyscallTable } from '@forgeone/common';
import { compilePolicy, createReferenceState, referenceActiveNodes, referenceDecide } from '../src/index.js';
import { arbCase } from './arbitraries.js';

// The compiled evaluator against the reference interpreter written independently from docs/policy.md.
// Each case is one random policy, one identity and a sequence of calls (so rate-limit state is exercised);
// every call is one (policy, request) pair.
describe('differential: compiled evaluator = reference interpreter', () => {
  it('agree on at least 100,000 random (policy, request) pairs', () => {
    let pairs = 0;
    let nonDefault = 0;
    const verdicts = new Map<string, number>();
    fc.assert(
      fc.property(arbCase(), ({ policy, identity, calls }) => {
        const table = new SyscallTable(KNOWN_SYSCALLS);
        for (const c of calls) table.intern(c.syscall);
        const program = compilePolicy(policy, { identity, syscalls: table });
        expect(program.activeNodes).toEqual(referenceActiveNodes(policy, identity));
        const state = createReferenceState();
        for (const { syscall, ctx } of calls) {
          const id = table.id(syscall);
          const peek = program.explain(id, ctx).decision;
          const got = program.decide(id, ctx);
          const want = referenceDecide(policy, identity, syscall, ctx, state);
          expect({ verdict: got.verdict, rule: got.rule, rateLimited: got.rateLimited }).toEqual({ verdict: want.verdict, rule: want.rule, rateLimited: want.rateLimited });
          expect(peek).toBe(got);
          pairs++;
          if (got.rule !== null) nonDefault++;
          const key = got.verdict + (got.rateLimited ? '/rate' : '');
          verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
        }
      }),
      { numRuns: 20_000 },
    );
    expect(pairs).toBeGreaterThanOrEqual(100_000);
    // The generator reaches every outcome, and rules (not only defaults) decide a good share of calls.
    expect([...verdicts.keys()].sort()).toEqual(['allow', 'audit', 'deny', 'deny/rate', 'quarantine']);
    expect(nonDefault / pairs).toBeGreaterThan(0.25);
  }, 600_000);
});
