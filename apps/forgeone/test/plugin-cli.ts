// Runs `forgeone plugin ...` in-process the way runCli does (exit status, --json document, error codes), on a
// program with only the plugin commands registered (program.ts registers them once the lead wires them in).
import { Command, CommanderError, Option } from 'commander';
import { toForgeError } from '@forgeone/common';
import { registerPlugin } from '../src/commands/plugin.js';
import { Context } from '../src/context.js';
import type { RunResult } from './helpers.js';
import { transcript } from './helpers.js';

/** Run `args` (starting with `plugin`) in `cwd`; like runCli: 0 ok, 1 ForgeError, 2 usage error. */
export async function runPlugin(cwd: string, args: string[], options: { isTTY?: boolean; env?: Record<string, string> } = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const ctx = new Context(
    {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      isTTY: options.isTTY ?? false,
      env: options.env ?? {},
      cwd,
    },
    args.includes('--json'),
  );
  const program = new Command('forgeone')
    .configureOutput({ writeOut: (t) => void (stdout += t), writeErr: (t) => void (stderr += t) })
    .exitOverride()
    .addOption(new Option('--json'))
    .hook('preAction', (_root, action) => {
      ctx.json = action.optsWithGlobals<{ json?: boolean }>().json === true;
    });
  registerPlugin(program, ctx);
  let code: number;
  try {
    await program.parseAsync(args, { from: 'user' });
    const r = ctx.result!;
    if (ctx.json) stdout += `${JSON.stringify(r.json, null, 2)}\n`;
    else if (r.text.length > 0) stdout += `${r.text.join('\n')}\n`;
    code = r.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      code = e.exitCode === 0 ? 0 : 2;
    } else {
      const error = toForgeError(e);
      if (ctx.json) stdout += `${JSON.stringify({ ok: false, code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) }, null, 2)}\n`;
      else stderr += `error ${error.code}: ${error.message}\n`;
      code = 1;
    }
  }
  transcript.push(stdout, stderr);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
}
