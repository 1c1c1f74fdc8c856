import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { SigningKey, saveSigningKey, type PublicKeyInfo } from '@forgeone/crypto';
import { DEFAULT_PORT, createApiServer } from '@forgeone/interface';
import { createKernel } from '@forgeone/kernel';
import type { Context } from '../context.js';
import { examples } from '../format.js';
import { loadPublicKeys, loadSigningKeys } from '../load.js';

interface ServeOptions {
  readonly home: string;
  readonly trustRoot: string;
  readonly host: string;
  readonly port: number;
  readonly tokenKey?: readonly string[];
  readonly rate: number;
  readonly maxPackageMb: number;
  readonly configFile?: string;
}

/** The token key `forgeone serve` keeps in its home when no other is given. */
export const HOME_TOKEN_KEY = 'api-token.key';

function parsePort(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('a port is a whole number from 0 to 65535.');
  return Number(value);
}

function parsePositive(max: number): (value: string) => number {
  return (value) => {
    if (!/^[0-9]{1,9}$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`a whole number from 1 to ${max}.`);
    return Number(value);
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Register `forgeone serve`.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerServe(program: Command, ctx: Context): void {
  program
    .command('serve')
    .summary('run a kernel behind the HTTP API (/v1) until interrupted')
    .description(
      'Boot a kernel in --home (measured boot, recovery of containers the last process left) and serve it over HTTP on\n' +
        '127.0.0.1 by default: /v1 routes for boot, packages, containers, policy, traces, the red zone, the audit log and\n' +
        'diagnostics, /v1/events (server-sent events), /metrics, and the OpenAPI document at /v1/openapi.json.\n' +
        'Every route but /v1/health needs a bearer token (`forgeone token issue`) signed by a trusted token key: the\n' +
        '--token-key files, the keys of the trust root\'s api role, or else <home>/api-token.key (created on first run).\n' +
        'Prints the address once listening (with --json: one document), and stops cleanly on SIGINT or SIGTERM.',
    )
    .requiredOption('--trust-root <file>', 'the trust root (packages and policy bundles are verified against it)')
    .option('--home <dir>', 'the kernel home: state, keys, installed packages', '.forgeone-home')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', `port (0: any free port)`, parsePort, DEFAULT_PORT)
    .option('--token-key <file...>', 'public key files of keys that may issue API tokens')
    .option('--rate <n>', 'requests per token per minute', parsePositive(1_000_000), 600)
    .option('--max-package-mb <n>', 'largest package upload, MiB', parsePositive(1024), 64)
    .option('--config-file <file>', 'a signed kernel config file (reloaded when it changes)')
    .addHelpText('after', examples('forgeone serve --trust-root .forgeone-dev/trust-root.json', 'forgeone serve --trust-root trust-root.json --home /var/lib/forgeone --port 8443 --token-key ops.key.pub'))
    .action(async (opts: ServeOptions) => {
      const home = ctx.path(opts.home);
      const kernel = await createKernel({ trustRoot: ctx.path(opts.trustRoot), home, ...(opts.configFile === undefined ? {} : { configFile: ctx.path(opts.configFile) }) });
      try {
        const keys: PublicKeyInfo[] = await loadPublicKeys(ctx, opts.tokenKey ?? []);
        const apiRole = kernel.boot.trustRootDocument?.signed.roles.api !== undefined;
        let homeKeyFile: string | undefined;
        if (keys.length === 0 && !apiRole) {
          homeKeyFile = join(home, HOME_TOKEN_KEY);
          if (!existsSync(homeKeyFile)) await saveSigningKey(SigningKey.generate(ctx.provider), homeKeyFile);
          keys.push((await loadSigningKeys(ctx, [homeKeyFile]))[0]!.toPublic());
        }
        const server = await createApiServer({
          kernel,
          auth: { keys },
          host: opts.host,
          port: opts.port,
          installPackages: true,
          limits: { requestsPerWindow: opts.rate, windowMs: 60_000, packageBytes: opts.maxPackageMb << 20 },
        });
        const address = await server.listen();
        if (!LOOPBACK.has(opts.host)) ctx.warn(`listening on ${opts.host}, beyond this machine: tokens travel in clear text unless a TLS proxy is in front`);
        const doc = {
          ok: true,
          code: null,
          url: address.url,
          host: address.host,
          port: address.port,
          boot: { verdict: kernel.boot.verdict, mode: kernel.boot.mode },
          tokenKeys: [...keys.map((k) => k.keyId), ...(apiRole ? ['(trust root role api)'] : [])],
          ...(homeKeyFile === undefined ? {} : { tokenKeyFile: homeKeyFile }),
        };
        if (ctx.json) ctx.io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
        else {
          ctx.io.stdout(`listening on ${address.url}\n`);
          ctx.io.stdout(`boot: ${kernel.boot.verdict} (${kernel.boot.mode} mode)\n`);
          if (homeKeyFile !== undefined) ctx.io.stdout(`issue a token: forgeone token issue --role admin --key ${homeKeyFile}\n`);
        }
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        await server.close();
        if (!ctx.json) ctx.io.stderr('stopped\n');
      } finally {
        await kernel.shutdown();
      }
    });
}
