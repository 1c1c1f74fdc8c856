import { InvalidArgumentError, type Command } from 'commander';
import { API_ROLES, MAX_TOKEN_TTL_SECONDS, issueToken, type ApiRole } from '@forgeone/interface';
import type { Context } from '../context.js';
import { EXIT_OK } from '../errors.js';
import { examples, layout } from '../format.js';
import { loadSigningKeys } from '../load.js';
import { isoSeconds } from '../options.js';

interface TokenIssueOptions {
  readonly role: ApiRole;
  readonly key: string;
  readonly subject?: string;
  readonly ttl: number;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parse a lifetime: seconds, or a number with `s`, `m`, `h` or `d` (`90m`, `12h`, `30d`), at most 90 days.
 * @param value - as typed
 * @returns seconds
 * @throws InvalidArgumentError (a usage error) otherwise
 */
export function parseTtl(value: string): number {
  const m = /^([0-9]{1,7})([smhd]?)$/.exec(value);
  const seconds = m === null ? Number.NaN : Number(m[1]) * UNITS[m[2] === '' ? 's' : m[2]!]!;
  if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_TOKEN_TTL_SECONDS) throw new InvalidArgumentError('a lifetime is seconds or a number with s, m, h or d (e.g. 12h), from 1 s to 90 days.');
  return seconds;
}

function parseRole(value: string): ApiRole {
  if (!(API_ROLES as readonly string[]).includes(value)) throw new InvalidArgumentError(`a role is one of ${API_ROLES.join(', ')}.`);
  return value as ApiRole;
}

/**
 * Register `forgeone token` (`issue`).
 * @param program - the root command
 * @param ctx - the context
 */
export function registerToken(program: Command, ctx: Context): void {
  const token = program.command('token').summary('issue API tokens for `forgeone serve`').description('Bearer tokens of the HTTP API: EdDSA JWTs signed with a token key the server trusts.');
  token
    .command('issue')
    .summary('issue a signed API token with a role')
    .description(
      'Issue an API token: an EdDSA JWT signed with --key (a private key file the server trusts: `forgeone serve`\n' +
        'keeps one in <home>/api-token.key, or trusts the keys of the trust root\'s api role), carrying a role, a subject\n' +
        'and an expiry. Roles: admin (everything), operator (run and stop workloads, the red zone), auditor (audit log,\n' +
        'traces, the red zone; read-only), reader (state, metrics, events). Without --json only the token is printed on\n' +
        'standard output (details go to standard error), so `TOKEN=$(forgeone token issue ...)` works.',
    )
    .requiredOption('--role <role>', `the role: ${API_ROLES.join(', ')}`, parseRole)
    .requiredOption('--key <file>', 'the private token key file')
    .option('--subject <name>', 'who the token is for (default user:<your user name>)')
    .option('--ttl <lifetime>', 'how long the token is valid: seconds, or 90m, 12h, 30d', parseTtl, 3600)
    .addHelpText('after', examples('forgeone token issue --role operator --key .forgeone-home/api-token.key --ttl 12h', 'forgeone token issue --role auditor --key api.key --subject user:carol --json'))
    .action(async (opts: TokenIssueOptions) => {
      const [key] = await loadSigningKeys(ctx, [opts.key]);
      const subject = opts.subject ?? `user:${ctx.io.env.USER ?? ctx.io.env.LOGNAME ?? 'unknown'}`;
      const now = ctx.now();
      const jwt = await issueToken({ key: key!, role: opts.role, subject, ttlSeconds: opts.ttl, clock: { now: () => now, monotonicNs: () => 0n } });
      const expires = isoSeconds(Math.floor(now / 1000) * 1000 + opts.ttl * 1000);
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, token: jwt, role: opts.role, subject, expires, keyId: key!.keyId },
        text: [jwt],
        errText: layout([
          ['role', opts.role],
          ['subject', subject],
          ['expires', expires],
          ['signed by', key!.keyId],
        ]),
      });
    });
}
