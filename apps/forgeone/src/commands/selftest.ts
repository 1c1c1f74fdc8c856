import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { systemClock } from '@forgeone/common';
import { createCryptoProvider } from '@forgeone/crypto';
import { builtinSelfTests, createSelfTestRegistry } from '@forgeone/diagnostics';
import type { SelfTestReport, SelfTestResult } from '@forgeone/diagnostics';
import { createFileStore } from '@forgeone/store';
import type { Context } from '../context.js';
import { EXIT_FAILURE, EXIT_OK } from '../errors.js';
import { examples } from '../format.js';
import { readTrustRoot } from '../load.js';

interface SelftestOptions {
  readonly trustRoot?: string;
  readonly requireRole?: readonly string[];
  readonly only?: readonly string[];
}

function duration(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/**
 * The self-test report as an aligned table: status, name, duration, message.
 * @param report - the report
 * @returns the lines
 */
export function selftestTable(report: SelfTestReport): string[] {
  const rows = report.results.map((r: SelfTestResult) => [r.status.toUpperCase(), r.name, r.status === 'skipped' && r.durationMs === 0 ? '' : duration(r.durationMs), r.message]);
  const head = ['STATUS', 'TEST', 'TIME', 'MESSAGE'];
  const w = [0, 1, 2].map((i) => Math.max(head[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `${cells[0]!.padEnd(w[0]!)}  ${cells[1]!.padEnd(w[1]!)}  ${cells[2]!.padStart(w[2]!)}  ${cells[3]!}`.trimEnd();
  const c = report.counts;
  return [
    line(head),
    ...rows.map(line),
    '',
    `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, ${c.error} error(s) in ${duration(report.durationMs)}: ${report.degraded ? 'DEGRADED' : 'healthy'}`,
  ];
}

/**
 * Register `forgeone selftest`.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerSelftest(program: Command, ctx: Context): void {
  program
    .command('selftest')
    .summary('run the built-in self-tests that need no kernel')
    .description(
      'Run the built-in self-tests that need no running kernel: crypto known answers (SHA3-256, RFC 8032 Ed25519) on\n' +
        'both providers and their agreement, policy canaries (allow, deny, quarantine, tightening), the file store in a\n' +
        'temporary directory (write, read back, durability across reopen), the clock, and the trust root when\n' +
        '--trust-root is given (signatures, expiry, roles). Tests run in dependency order; one whose dependency did not\n' +
        'pass is skipped. Exit status 0 when every test passed or was skipped; 1 with code SELFTEST_FAILED when any\n' +
        'failed or could not run (a kernel would then run degraded).',
    )
    .option('--trust-root <file>', 'also check this trust root')
    .option('--require-role <name...>', 'roles the trust root must have besides root and packages (e.g. kernel policy)')
    .option('--only <name...>', 'run only these tests (and what they depend on)')
    .addHelpText('after', examples('forgeone selftest', 'forgeone selftest --trust-root trust-root.json --require-role kernel --json', 'forgeone selftest --only policy.canaries'))
    .action(async (opts: SelftestOptions) => {
      const trustRoot = opts.trustRoot === undefined ? undefined : await readTrustRoot(ctx, opts.trustRoot);
      const dir = await mkdtemp(join(tmpdir(), 'forgeone-selftest-'));
      try {
        const providers = [createCryptoProvider('node'), createCryptoProvider('noble')];
        const registry = createSelfTestRegistry();
        registry.registerAll(
          builtinSelfTests({
            providers,
            store: { open: () => createFileStore({ dir: join(dir, 'store') }) },
            clock: systemClock,
            ...(trustRoot === undefined ? {} : { trustRoot, trustRootOptions: { requiredRoles: opts.requireRole ?? [] } }),
          }),
        );
        const report = await registry.runAll(opts.only === undefined ? {} : { only: opts.only });
        const bad = report.results.filter((r) => r.status === 'failed' || r.status === 'error');
        ctx.finish({
          exitCode: report.degraded ? EXIT_FAILURE : EXIT_OK,
          json: {
            ok: !report.degraded,
            code: report.degraded ? 'SELFTEST_FAILED' : null,
            degraded: report.degraded,
            counts: report.counts,
            durationMs: report.durationMs,
            results: report.results,
          },
          text: selftestTable(report),
          ...(report.degraded ? { errText: [`error SELFTEST_FAILED: ${bad.length} self-test(s) did not pass: ${bad.map((r) => r.name).join(', ')}`] } : {}),
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
}
