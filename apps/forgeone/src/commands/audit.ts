import type { Command } from 'commander';
import { ForgeError, decodeUtf8Strict, toForgeError } from '@forgeone/common';
import { AUDIT_EVIDENCE_FORMAT, verifyAuditExport, verifyAuditLog } from '@forgeone/observer';
import type { Context } from '../context.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../errors.js';
import { examples, layout, shortHex } from '../format.js';
import { auditVerifyRemote } from './remote.js';
import { issueJson, readChainFile, trustedKeysFrom } from './trace.js';
import type { KeyOptions } from './trace.js';

/** Whether a file's text is an evidence bundle (one JSON document of the evidence format), not JSON lines. */
function asEvidence(text: string): unknown {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const value = JSON.parse(text) as { format?: unknown };
    return typeof value === 'object' && value !== null && value.format === AUDIT_EVIDENCE_FORMAT ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Register `forgeone audit` (`verify`).
 * @param program - the root command
 * @param ctx - the context
 */
export function registerAudit(program: Command, ctx: Context): void {
  const audit = program.command('audit').summary('verify the kernel audit log and evidence exported from it').description('The audit log: kernel events, each one hash-chained and signed by the kernel key.');

  audit
    .command('verify')
    .summary('verify an exported audit log or evidence bundle offline')
    .description(
      'Verify an audit log export (JSON lines) or an evidence bundle (one JSON document): every event against its seal,\n' +
        'the chain, and every checkpoint signature against the trusted kernel keys. Exit status 0 when it verifies;\n' +
        '1 with code STATE_CORRUPT and the finding when it does not.',
    )
    .argument('[file]', 'audit log export or evidence bundle; without it, with --server: the server\'s audit log')
    .option('--trust-root <file>', 'trust the keys of a role of this trust root')
    .option('--role <name>', 'the trust root role whose keys sign the audit log', 'kernel')
    .option('--key <file...>', 'trust these public key files')
    .addHelpText('after', examples('forgeone audit verify audit.log --key kernel.key.pub', 'forgeone audit verify quarantines.evidence.json --trust-root trust-root.json --json'))
    .action(async (file: string | undefined, opts: KeyOptions, cmd: Command) => {
      if (file === undefined) return auditVerifyRemote(ctx, cmd, opts);
      try {
        const keys = await trustedKeysFrom(ctx, opts);
        const bytes = await readChainFile(ctx, file);
        const text = decodeUtf8Strict(bytes);
        const evidence = text === undefined ? undefined : asEvidence(text);
        if (evidence !== undefined) {
          const v = verifyAuditExport(evidence as Parameters<typeof verifyAuditExport>[0], { trustedKeys: keys, crypto: ctx.provider });
          if (!v.ok) {
            const i = v.issue!;
            throw new ForgeError('STATE_CORRUPT', `${file}: ${i.code}: ${i.message}`, { details: { issue: { ...i } } });
          }
          ctx.finish({
            exitCode: EXIT_OK,
            json: { ok: true, code: null, file, kind: 'evidence', logId: v.logId, events: v.events, logLength: v.logLength, signers: v.signers },
            text: [
              ...layout([
                ['verified', `evidence from audit log ${v.logId ?? ''} (${file})`],
                ['events', `${v.events.length} of ${v.logLength} in the log when exported`],
                ['signers', v.signers.map((k) => shortHex(k, ctx.terminal))],
              ]),
              ...v.events.map((e) => `  #${e.seq} ${new Date(e.time).toISOString()} ${e.kind} ${e.subject} by ${e.actor}`),
            ],
          });
          return;
        }
        const v = verifyAuditLog(bytes, { trustedKeys: keys, crypto: ctx.provider });
        if (!v.ok) {
          const issue = v.issue!;
          throw new ForgeError('STATE_CORRUPT', `${file}: ${issue.code}: ${issue.message}`, { details: { issue: issueJson(issue) } });
        }
        ctx.finish({
          exitCode: EXIT_OK,
          json: { ok: true, code: null, file, kind: 'log', logId: v.logId, events: v.events, checkpoints: v.checkpoints, signers: v.signers },
          text: layout([
            ['verified', `audit log ${v.logId ?? ''} (${file})`],
            ['events', String(v.events)],
            ['checkpoints', String(v.checkpoints)],
            ['signers', v.signers.map((k) => shortHex(k, ctx.terminal))],
          ]),
        });
      } catch (e) {
        if (e instanceof UsageError) throw e;
        const error = toForgeError(e);
        ctx.finish({
          exitCode: EXIT_FAILURE,
          json: { ok: false, code: error.code, message: error.message, file, ...(error.details === undefined ? {} : { details: error.details }) },
          text: [],
          errText: [`error ${error.code}: ${error.message}`],
        });
      }
    });
}
