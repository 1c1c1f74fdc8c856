import type { Command } from 'commander';
import { ForgeError } from '@forgeone/common';
import { SigningKey, saveSigningKey } from '@forgeone/crypto';
import type { Context } from '../context.js';
import { EXIT_OK } from '../errors.js';
import { exists } from '../files.js';
import { examples, layout } from '../format.js';

interface KeygenOptions {
  readonly out: string;
  readonly force?: boolean;
}

/**
 * Register `forgeone keygen`.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerKeygen(program: Command, ctx: Context): void {
  program
    .command('keygen')
    .summary('generate an Ed25519 signing key')
    .description(
      'Generate an Ed25519 signing key. The private key goes to <file> (mode 0600), the public key to <file>.pub (mode 0644).\n' +
        'Prints the key id: the SHA3-256 of the public key, which trust roots and package signatures refer to.\n' +
        'The private key is never printed. Hand out only the .pub file.',
    )
    .requiredOption('-o, --out <file>', 'private key file to write (the public key goes to <file>.pub)')
    .option('-f, --force', 'replace existing key files')
    .addHelpText('after', examples('forgeone keygen --out keys/release-1.key', 'forgeone keygen --out keys/release-1.key --json'))
    .action(async (opts: KeygenOptions) => {
      const path = ctx.path(opts.out);
      const force = opts.force === true;
      if (!force) {
        // Check both files first, so a stray .pub never leaves a lone new private key behind.
        for (const [abs, shown] of [[path, opts.out], [`${path}.pub`, `${opts.out}.pub`]] as const) {
          if (await exists(abs)) throw new ForgeError('KEY_FILE_EXISTS', `${shown} already exists; refusing to overwrite it (use --force to replace it)`);
        }
      }
      const key = SigningKey.generate(ctx.provider);
      await saveSigningKey(key, path, { overwrite: force });
      const publicKeyFile = `${opts.out}.pub`;
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, keyId: key.keyId, privateKeyFile: opts.out, publicKeyFile },
        text: layout([
          ['key id', key.keyId],
          ['private key', `${opts.out} (mode 0600, keep it secret)`],
          ['public key', publicKeyFile],
        ]),
      });
    });
}
