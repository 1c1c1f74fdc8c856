/**
 * `@forgeone/cli`: the `forgeone` command line, as a function that tests and other tools can call in-process.
 *
 * @packageDocumentation
 */
import { CommanderError } from 'commander';
import { toForgeError } from '@forgeone/common';
import { Context, type CommandResult } from './context.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { buildProgram } from './program.js';

export type { CliIo } from './io.js';
export { CLI_VERSION } from './program.js';

/** Whether `--json` appears among the options (before any `--`), for errors found before the options are parsed. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

function print(ctx: Context, result: CommandResult): number {
  if (ctx.json) {
    ctx.io.stdout(`${JSON.stringify(result.json, null, 2)}\n`);
  } else {
    if (result.text.length > 0) ctx.io.stdout(`${result.text.join('\n')}\n`);
    if (result.errText !== undefined && result.errText.length > 0) ctx.io.stderr(`${result.errText.join('\n')}\n`);
  }
  return result.exitCode;
}

function usageFailure(ctx: Context, message: string, alreadyPrinted: boolean): number {
  if (ctx.json) {
    ctx.io.stdout(`${JSON.stringify({ ok: false, code: 'INVALID_ARGUMENT', message, usage: true }, null, 2)}\n`);
  } else if (!alreadyPrinted) {
    ctx.io.stderr(`error: ${message}\n(add --help for usage)\n`);
  }
  return EXIT_USAGE;
}

/**
 * Run the `forgeone` command line in-process and return its exit status. Everything thrown is caught: a
 * ForgeOne error prints `error <CODE>: message` on standard error (with `--json`, `{"ok":false,"code",...}` on
 * standard output) and returns 1; a usage error returns 2. Private keys are never printed.
 * @param argv - the arguments after the program name, e.g. `['pkg', 'verify', 'hello.forgepkg', '--trust-root', 'root.json']`
 * @param io - output streams, terminal flag, environment and working directory
 * @returns the exit status: 0 success, 1 failure, 2 usage error
 * @example
 * ```ts
 * const code = await runCli(['keygen', '--out', 'release.key', '--json'], {
 *   stdout: (t) => process.stdout.write(t),
 *   stderr: (t) => process.stderr.write(t),
 *   isTTY: false,
 *   env: process.env,
 *   cwd: process.cwd(),
 * });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const ctx = new Context(io, wantsJson(argv));
  try {
    await buildProgram(ctx).parseAsync([...argv], { from: 'user' });
    return ctx.result === undefined ? EXIT_OK : print(ctx, ctx.result);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with status 0; everything else commander reports is a usage error.
      if (e.exitCode === 0) return EXIT_OK;
      const message = e.code === 'commander.help' || e.code === 'commander.helpDisplayed' ? 'a command is required' : e.message.replace(/^error: /, '');
      return usageFailure(ctx, message, true);
    }
    if (e instanceof UsageError) return usageFailure(ctx, e.message, false);
    const error = toForgeError(e);
    if (ctx.json) {
      const doc = { ok: false, code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) };
      ctx.io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    } else {
      ctx.io.stderr(`error ${error.code}: ${error.message}\n`);
    }
    return EXIT_FAILURE;
  }
}
