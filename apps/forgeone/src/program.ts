import { Command, Option } from 'commander';
import type { CryptoProviderName } from '@forgeone/crypto';
import pkg from '../package.json' with { type: 'json' };
import { registerAudit } from './commands/audit.js';
import { registerDemo } from './commands/demo.js';
import { registerExec } from './commands/exec.js';
import { registerHeatmap } from './commands/heatmap.js';
import { registerKeygen } from './commands/keygen.js';
import { registerPkg } from './commands/pkg.js';
import { registerPlugin } from './commands/plugin.js';
import { registerRemote } from './commands/remote.js';
import { registerRun } from './commands/run.js';
import { registerSelftest } from './commands/selftest.js';
import { registerServe } from './commands/serve.js';
import { registerToken } from './commands/token.js';
import { registerTrace } from './commands/trace.js';
import { registerTrust } from './commands/trust.js';
import type { Context } from './context.js';
import { examples } from './format.js';

/** The CLI's version, from its package.json. */
export const CLI_VERSION: string = pkg.version;

interface GlobalOptions {
  readonly json?: boolean;
  readonly provider: CryptoProviderName;
}

/**
 * Build the command tree for one run. Output goes through `ctx.io`, and commander never exits the process:
 * its errors are thrown to `runCli`.
 * @param ctx - the context the actions read and report to
 * @returns the root command
 */
export function buildProgram(ctx: Context): Command {
  const program = new Command('forgeone');
  // Settings first: subcommands copy them when they are created.
  program
    .configureOutput({
      writeOut: ctx.io.stdout,
      writeErr: ctx.io.stderr,
      // With --json the error is reported as a JSON document instead.
      outputError: (text, write) => {
        if (!ctx.json) write(text);
      },
    })
    .configureHelp({ showGlobalOptions: true, helpWidth: 120 })
    .showHelpAfterError(ctx.json ? false : '(add --help for usage)')
    .exitOverride();

  program
    .description(
      'ForgeOne command line: generate signing keys, manage the signed trust root that says which keys are trusted,\n' +
        'and build, sign, verify and inspect .forgepkg packages.\n\n' +
        'Exit status: 0 success, 1 failure (an error code is printed), 2 usage error.',
    )
    .version(CLI_VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .addOption(new Option('--json', 'print exactly one JSON document on standard output instead of text'))
    .addOption(new Option('--provider <name>', 'crypto provider: node (OpenSSL) or noble (pure JS)').choices(['node', 'noble']).default('node'))
    .addOption(new Option('--server <url>', 'the API server of remote commands (containers, launch, packages, quarantine, audit verify); or FORGEONE_SERVER'))
    .addOption(new Option('--token <token>', 'the bearer token for --server (forgeone token issue); or FORGEONE_TOKEN'))
    .addHelpText(
      'after',
      examples(
        'forgeone keygen --out keys/root.key',
        'forgeone trust init --root-key keys/root.key --package-key keys/p1.key.pub keys/p2.key.pub --threshold 2 --out trust-root.json',
        'forgeone plugin new my-plugin && forgeone plugin build my-plugin --key keys/p1.key',
        'forgeone pkg build apps/forgeone/test/fixtures/hello-core --out hello.forgepkg',
        'forgeone pkg sign hello.forgepkg --key keys/p1.key',
        'forgeone pkg verify hello.forgepkg --trust-root trust-root.json',
        'forgeone pkg verify --help',
      ),
    )
    .hook('preAction', (_root, action) => {
      const globals = action.optsWithGlobals<GlobalOptions>();
      ctx.json = globals.json === true;
      ctx.providerName = globals.provider;
    });

  registerKeygen(program, ctx);
  registerTrust(program, ctx);
  registerPkg(program, ctx);
  registerPlugin(program, ctx);
  registerRun(program, ctx);
  registerExec(program, ctx);
  registerTrace(program, ctx);
  registerAudit(program, ctx);
  registerSelftest(program, ctx);
  registerHeatmap(program, ctx);
  registerDemo(program, ctx);
  registerServe(program, ctx);
  registerToken(program, ctx);
  registerRemote(program, ctx);
  return program;
}
