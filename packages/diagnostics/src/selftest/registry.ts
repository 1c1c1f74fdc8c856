import { ForgeError, systemClock, toForgeError } from '@forgeone/common';
import type { Clock } from '@forgeone/common';
import { clip } from '../audit.js';
import type { DiagnosticsAuditSink } from '../audit.js';

/** How a self-test ended. */
export type SelfTestStatus = 'passed' | 'failed' | 'skipped' | 'error';

/** What a self-test's `run` receives. */
export interface SelfTestContext {
  /** The registry's clock. */
  readonly clock: Clock;
  /** Aborted when the test runs out of time. */
  readonly signal: AbortSignal;
  /**
   * Fail the test unless a condition holds.
   * @param condition - what must be true
   * @param message - what failed, for people
   * @throws SelfTestFailure when `condition` is false
   */
  check(condition: unknown, message: string): void;
}

/** What `run` may return: nothing (passed), or an explicit outcome with a message. */
export interface SelfTestOutcome {
  /** `passed` or `skipped` (fail with {@link SelfTestContext.check} or {@link SelfTestFailure}). */
  readonly status: 'passed' | 'skipped';
  /** A note, e.g. why it was skipped. */
  readonly message?: string;
}

/** A self-test. */
export interface SelfTest {
  /** A unique name: 1-128 of `a-z 0-9 . _ -`, e.g. `crypto.node.sha3-256`. */
  readonly name: string;
  /** What it checks, for people. */
  readonly description: string;
  /** Tests that must pass first; when one does not, this one is skipped. */
  readonly dependsOn?: readonly string[];
  /** Time limit in ms (default: the registry's). */
  readonly timeoutMs?: number;
  /**
   * Run the check. Throw {@link SelfTestFailure} (or use `ctx.check`) when the check does not hold: the
   * result is `failed`. Any other exception is an `error` (the check could not run).
   * @param ctx - clock, abort signal, check helper
   * @returns nothing, or an outcome
   */
  run(ctx: SelfTestContext): void | SelfTestOutcome | Promise<void | SelfTestOutcome>;
}

/** A self-test's result. */
export interface SelfTestResult {
  /** The test. */
  readonly name: string;
  /** Its description. */
  readonly description: string;
  /** How it ended. */
  readonly status: SelfTestStatus;
  /** Why (failures, errors, skips), or a note; empty when passed without one. */
  readonly message: string;
  /** Error code of an `error` (from a ForgeError, else `INTERNAL`), or null. */
  readonly code: string | null;
  /** How long it ran, ms (0 when skipped). */
  readonly durationMs: number;
}

/** The results of one run of the registry. */
export interface SelfTestReport {
  /** Results in the order the tests ran (dependency order). */
  readonly results: readonly SelfTestResult[];
  /** Counts by status. */
  readonly counts: Readonly<Record<SelfTestStatus, number>>;
  /** True when any test failed or ended in error: the kernel should run degraded. */
  readonly degraded: boolean;
  /** When the run started, ms since the epoch. */
  readonly startedAt: number;
  /** How long the whole run took, ms. */
  readonly durationMs: number;
  /** Whether the report reached the audit sink (false without one, or when it failed). */
  readonly audited: boolean;
}

/** Options of {@link createSelfTestRegistry}. */
export interface SelfTestRegistryOptions {
  /** Clock for times and durations (default: the system clock). */
  readonly clock?: Clock;
  /** Receives one `selftest` event per run (the audit log). */
  readonly audit?: DiagnosticsAuditSink;
  /** Default time limit per test, ms (default 10,000). */
  readonly timeoutMs?: number;
  /** Called with every report whose `degraded` is true (the kernel marks itself degraded). */
  readonly onDegraded?: (report: SelfTestReport) => void;
}

/** Options of {@link SelfTestRegistry.runAll}. */
export interface RunSelfTestsOptions {
  /** Run only these tests (and what they depend on). */
  readonly only?: readonly string[];
}

/** A registry of self-tests. */
export interface SelfTestRegistry {
  /**
   * Add a test.
   * @param test - the test
   * @throws ForgeError `INVALID_ARGUMENT` for a malformed test or one that would close a dependency cycle
   *   (the cycle is named), `ALREADY_EXISTS` for a name already registered
   */
  register(test: SelfTest): void;
  /**
   * Add several tests (each as {@link SelfTestRegistry.register}).
   * @param tests - the tests
   */
  registerAll(tests: readonly SelfTest[]): void;
  /** The registered tests' names, in registration order. */
  readonly names: readonly string[];
  /**
   * Run the tests in dependency order (registration order among independent ones). A test whose dependency
   * did not pass is skipped; a test depending on an unregistered one ends in error. The report goes to the
   * audit sink.
   * @param options - which tests
   * @returns the report
   * @throws ForgeError `NOT_FOUND` when `only` names an unregistered test
   */
  runAll(options?: RunSelfTestsOptions): Promise<SelfTestReport>;
  /** The last report, or null before the first run. */
  readonly last: SelfTestReport | null;
  /** Whether the last run found the kernel degraded (false before the first run). */
  readonly degraded: boolean;
}

/** Thrown by a self-test whose check does not hold: its result is `failed`, not `error`. */
export class SelfTestFailure extends Error {
  /**
   * @param message - what did not hold
   */
  constructor(message: string) {
    super(message);
    this.name = 'SelfTestFailure';
  }
}

function isFailure(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'SelfTestFailure';
}

/** Self-test names: 1-128 of `a-z 0-9 . _ -`, starting with a letter or digit. */
export const SELFTEST_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

function checkTest(test: SelfTest): void {
  if (typeof test !== 'object' || test === null) throw new ForgeError('INVALID_ARGUMENT', 'a self-test must be an object', { details: { field: 'test' } });
  if (typeof test.name !== 'string' || !SELFTEST_NAME.test(test.name)) {
    throw new ForgeError('INVALID_ARGUMENT', `invalid self-test name ${JSON.stringify(test.name)}: 1-128 of a-z 0-9 . _ -`, { details: { field: 'name' } });
  }
  if (typeof test.description !== 'string' || test.description.length === 0 || test.description.length > 1024) {
    throw new ForgeError('INVALID_ARGUMENT', `self-test ${test.name}: description must be 1-1024 characters`, { details: { field: 'description' } });
  }
  if (typeof test.run !== 'function') throw new ForgeError('INVALID_ARGUMENT', `self-test ${test.name}: run must be a function`, { details: { field: 'run' } });
  const deps = test.dependsOn ?? [];
  if (!Array.isArray(deps) || !deps.every((d) => typeof d === 'string' && SELFTEST_NAME.test(d))) {
    throw new ForgeError('INVALID_ARGUMENT', `self-test ${test.name}: dependsOn must be a list of self-test names`, { details: { field: 'dependsOn' } });
  }
  if (deps.includes(test.name)) throw new ForgeError('INVALID_ARGUMENT', `self-test ${test.name} depends on itself`, { details: { field: 'dependsOn', cycle: [test.name, test.name] } });
  if (test.timeoutMs !== undefined && (!Number.isSafeInteger(test.timeoutMs) || test.timeoutMs < 1)) {
    throw new ForgeError('INVALID_ARGUMENT', `self-test ${test.name}: timeoutMs must be a positive integer`, { details: { field: 'timeoutMs' } });
  }
}

const msSince = (clock: Clock, t0: bigint): number => Number(clock.monotonicNs() - t0) / 1e6;

/**
 * Create a self-test registry. Tests are registered with their dependencies and run in dependency order; each
 * result says passed, failed, skipped or error, with a message and a duration; a run's report goes to the
 * audit sink, and any failure or error marks it degraded.
 * @param options - clock, audit sink, default time limit, degraded callback
 * @returns the registry
 * @throws ForgeError `INVALID_ARGUMENT` for a bad time limit
 * @example
 * ```ts
 * const registry = createSelfTestRegistry({ audit: (e) => auditLog.append(e) });
 * registry.registerAll([...cryptoSelfTests(provider), ...clockSelfTests(systemClock)]);
 * const report = await registry.runAll();
 * if (report.degraded) console.error('degraded');
 * ```
 */
export function createSelfTestRegistry(options: SelfTestRegistryOptions = {}): SelfTestRegistry {
  const clock = options.clock ?? systemClock;
  const defaultTimeout = options.timeoutMs ?? 10_000;
  if (!Number.isSafeInteger(defaultTimeout) || defaultTimeout < 1) throw new ForgeError('INVALID_ARGUMENT', 'timeoutMs must be a positive integer', { details: { field: 'timeoutMs' } });
  const tests = new Map<string, SelfTest>();
  let last: SelfTestReport | null = null;

  /** A path from `from` to `to` through known dependencies, or null. */
  const path = (from: string, to: string, seen = new Set<string>()): string[] | null => {
    if (from === to) return [to];
    if (seen.has(from)) return null;
    seen.add(from);
    for (const d of tests.get(from)?.dependsOn ?? []) {
      const p = path(d, to, seen);
      if (p !== null) return [from, ...p];
    }
    return null;
  };

  const register = (test: SelfTest): void => {
    checkTest(test);
    if (tests.has(test.name)) throw new ForgeError('ALREADY_EXISTS', `a self-test named ${test.name} is already registered`, { details: { field: 'name' } });
    for (const d of test.dependsOn ?? []) {
      const p = path(d, test.name);
      if (p !== null) {
        const cycle = [test.name, ...p];
        throw new ForgeError('INVALID_ARGUMENT', `self-test ${test.name} would close a dependency cycle: ${cycle.join(' -> ')}`, { details: { field: 'dependsOn', cycle } });
      }
    }
    tests.set(test.name, { ...test, dependsOn: [...(test.dependsOn ?? [])] });
  };

  const order = (only: readonly string[] | undefined): SelfTest[] => {
    let wanted: Set<string>;
    if (only === undefined) wanted = new Set(tests.keys());
    else {
      wanted = new Set();
      const add = (n: string): void => {
        if (wanted.has(n) || !tests.has(n)) return;
        wanted.add(n);
        for (const d of tests.get(n)!.dependsOn ?? []) add(d);
      };
      for (const n of only) {
        if (!tests.has(n)) throw new ForgeError('NOT_FOUND', `no self-test named ${n}`, { details: { name: n } });
        add(n);
      }
    }
    // Depth-first in registration order: each test after its dependencies (no cycles: register refuses them).
    const out: SelfTest[] = [];
    const done = new Set<string>();
    const visit = (n: string): void => {
      if (done.has(n) || !wanted.has(n)) return;
      done.add(n);
      const t = tests.get(n)!;
      for (const d of t.dependsOn ?? []) visit(d);
      out.push(t);
    };
    for (const n of tests.keys()) visit(n);
    return out;
  };

  const runOne = async (test: SelfTest): Promise<Omit<SelfTestResult, 'name' | 'description' | 'durationMs'>> => {
    const controller = new AbortController();
    const limit = test.timeoutMs ?? defaultTimeout;
    const ctx: SelfTestContext = {
      clock,
      signal: controller.signal,
      check(condition: unknown, message: string): void {
        if (!condition) throw new SelfTestFailure(message);
      },
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new ForgeError('SELFTEST_FAILED', `did not finish within ${limit} ms`));
      }, limit);
      timer.unref?.();
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(() => test.run(ctx)), timeout]);
      if (outcome === undefined || outcome === null) return { status: 'passed', message: '', code: null };
      if (typeof outcome !== 'object' || (outcome.status !== 'passed' && outcome.status !== 'skipped')) {
        return { status: 'error', message: 'run returned something other than nothing or { status: passed | skipped }', code: 'INTERNAL' };
      }
      return { status: outcome.status, message: clip(String(outcome.message ?? ''), 2048), code: null };
    } catch (e) {
      if (isFailure(e)) return { status: 'failed', message: clip((e as Error).message, 2048), code: null };
      const fe = toForgeError(e);
      return { status: 'error', message: clip(fe.message, 2048), code: fe.code };
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    register,
    registerAll(list) {
      if (!Array.isArray(list)) throw new ForgeError('INVALID_ARGUMENT', 'registerAll takes an array of self-tests', { details: { field: 'tests' } });
      for (const t of list) register(t);
    },
    get names() {
      return [...tests.keys()];
    },
    get last() {
      return last;
    },
    get degraded() {
      return last?.degraded ?? false;
    },
    async runAll(runOptions = {}) {
      const startedAt = Math.floor(clock.now());
      const t0 = clock.monotonicNs();
      const results: SelfTestResult[] = [];
      const status = new Map<string, SelfTestStatus>();
      for (const test of order(runOptions.only)) {
        const missing = (test.dependsOn ?? []).filter((d) => !tests.has(d));
        const notPassed = (test.dependsOn ?? []).filter((d) => tests.has(d) && status.get(d) !== 'passed');
        let r: Omit<SelfTestResult, 'name' | 'description' | 'durationMs'>;
        let durationMs = 0;
        if (missing.length > 0) r = { status: 'error', message: `depends on ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not registered`, code: 'NOT_FOUND' };
        else if (notPassed.length > 0) r = { status: 'skipped', message: `skipped: ${notPassed.map((d) => `${d} ${status.get(d) ?? 'did not run'}`).join(', ')}`, code: null };
        else {
          const s0 = clock.monotonicNs();
          r = await runOne(test);
          durationMs = msSince(clock, s0);
        }
        status.set(test.name, r.status);
        results.push({ name: test.name, description: test.description, ...r, durationMs });
      }
      const counts = { passed: 0, failed: 0, skipped: 0, error: 0 };
      for (const r of results) counts[r.status]++;
      const degraded = counts.failed + counts.error > 0;
      const durationMs = msSince(clock, t0);
      let audited = false;
      if (options.audit !== undefined) {
        try {
          await options.audit({
            kind: 'selftest',
            subject: 'kernel',
            actor: 'diagnostics:selftest',
            time: startedAt,
            details: {
              degraded,
              passed: counts.passed,
              failed: counts.failed,
              skipped: counts.skipped,
              error: counts.error,
              durationUs: Math.round(durationMs * 1000),
              results: results.map((r) => ({ name: r.name, status: r.status, message: clip(r.message, 256), code: r.code, durationUs: Math.round(r.durationMs * 1000) })),
            },
          });
          audited = true;
        } catch {
          audited = false;
        }
      }
      const report: SelfTestReport = { results, counts, degraded, startedAt, durationMs, audited };
      last = report;
      if (degraded) options.onDegraded?.(report);
      return report;
    },
  };
}
