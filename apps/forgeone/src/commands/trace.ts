import type { Command } from 'commander';
import { ForgeError, decodeUtf8Strict, toForgeError } from '@forgeone/common';
import { roleKeys, verifyTrustRoot } from '@forgeone/crypto';
import { explainTrace, parseTrace, verifyTrace } from '@forgeone/observer';
import type { AnomalyFlag, TraceVerification, TrustedKeys, VerifyIssue } from '@forgeone/observer';
import type { Context } from '../context.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../errors.js';
import { readFileLimited } from '../files.js';
import { examples, layout, shortHex } from '../format.js';
import { loadPublicKeys, readTrustRoot } from '../load.js';

/** Largest trace or audit file read (the whole file is verified in memory). */
export const MAX_TRACE_FILE_BYTES = 1024 * 1024 * 1024;

/** Options naming the keys trusted to sign traces and audit logs. */
export interface KeyOptions {
  /** A trust root file. */
  readonly trustRoot?: string;
  /** The role of the trust root whose keys sign (default `kernel`). */
  readonly role?: string;
  /** Public key files. */
  readonly key?: readonly string[];
}

/**
 * The trusted kernel keys named on the command line: the keys of a role of a verified trust root, or public
 * key files. Exactly one of the two must be given.
 * @param ctx - the context
 * @param opts - `--trust-root` (+ `--role`) or `--key`
 * @returns the keys
 * @throws UsageError when neither or both are given; ForgeError from reading or verifying them
 */
export async function trustedKeysFrom(ctx: Context, opts: KeyOptions): Promise<TrustedKeys> {
  const keys = opts.key ?? [];
  if ((opts.trustRoot === undefined) === (keys.length === 0)) throw new UsageError('give either --trust-root <file> or --key <file...>');
  if (opts.trustRoot !== undefined) {
    const doc = await readTrustRoot(ctx, opts.trustRoot);
    verifyTrustRoot(ctx.provider, doc, { now: ctx.now() });
    return roleKeys(doc.signed, opts.role ?? 'kernel');
  }
  return loadPublicKeys(ctx, keys);
}

/**
 * Read a trace or audit file (bytes; decoded line by line by the verifier).
 * @param ctx - the context
 * @param file - the path as typed
 * @returns the bytes
 */
export async function readChainFile(ctx: Context, file: string): Promise<Uint8Array> {
  return readFileLimited(ctx.path(file), file, { maxBytes: MAX_TRACE_FILE_BYTES, limitCode: 'LIMIT_EXCEEDED' });
}

/**
 * The JSON form of a verification finding.
 * @param issue - the finding
 * @returns plain data
 */
export function issueJson(issue: VerifyIssue): Record<string, unknown> {
  return { code: issue.code, message: issue.message, line: issue.line, ...(issue.seq === undefined ? {} : { seq: issue.seq }), ...(issue.block === undefined ? {} : { block: issue.block }) };
}

interface VerifyOptions extends KeyOptions {
  readonly allowIncomplete?: boolean;
}

interface ExplainOptions extends KeyOptions {
  readonly flags?: string;
}

function failure(ctx: Context, file: string, e: unknown): void {
  const error = toForgeError(e);
  ctx.finish({
    exitCode: EXIT_FAILURE,
    json: { ok: false, code: error.code, message: error.message, file, ...(error.details === undefined ? {} : { details: error.details }) },
    text: [],
    errText: [`error ${error.code}: ${error.message}`],
  });
}

async function readFlags(ctx: Context, file: string | undefined): Promise<AnomalyFlag[]> {
  if (file === undefined) return [];
  const text = decodeUtf8Strict(await readFileLimited(ctx.path(file), file, { maxBytes: 4 * 1024 * 1024, limitCode: 'LIMIT_EXCEEDED' }));
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    throw new ForgeError('INVALID_ARGUMENT', `${file}: not JSON`);
  }
  const ok = (f: unknown): f is AnomalyFlag =>
    typeof f === 'object' && f !== null && typeof (f as AnomalyFlag).name === 'string' && ['low', 'medium', 'high'].includes((f as AnomalyFlag).severity);
  if (!Array.isArray(value) || !value.every(ok)) throw new ForgeError('INVALID_ARGUMENT', `${file}: expected an array of { name, severity: low|medium|high, detail?, seq? }`);
  return value;
}

/**
 * Register `forgeone trace` (`verify`, `explain`).
 * @param program - the root command
 * @param ctx - the context
 */
export function registerTrace(program: Command, ctx: Context): void {
  const trace = program
    .command('trace')
    .summary('verify and explain execution traces (execution DNA)')
    .description('Execution traces ("execution DNA"): every host call of a container, hash-chained and signed by the kernel key.');

  trace
    .command('verify')
    .summary('verify an exported trace offline')
    .description(
      'Verify an exported trace: the header, every record against its sealed block, the hash chain, every checkpoint\n' +
        'signature against the trusted kernel keys, and the summary. Exit status 0 when it verifies; 1 with code\n' +
        'STATE_CORRUPT and the finding (its code, line, record and block) when it does not.',
    )
    .argument('<file>', 'exported trace (JSON lines)')
    .option('--trust-root <file>', 'trust the keys of a role of this trust root')
    .option('--role <name>', 'the trust root role whose keys sign traces', 'kernel')
    .option('--key <file...>', 'trust these public key files')
    .option('--allow-incomplete', 'accept a trace that ends before its stop checkpoint')
    .addHelpText('after', examples('forgeone trace verify run.dna --key kernel.key.pub', 'forgeone trace verify run.dna --trust-root trust-root.json --json'))
    .action(async (file: string, opts: VerifyOptions) => {
      try {
        const keys = await trustedKeysFrom(ctx, opts);
        const v: TraceVerification = verifyTrace(await readChainFile(ctx, file), { trustedKeys: keys, crypto: ctx.provider, allowIncomplete: opts.allowIncomplete === true });
        if (!v.ok) {
          const issue = v.issue!;
          throw new ForgeError('STATE_CORRUPT', `${file}: ${issue.code}: ${issue.message}`, { details: { issue: issueJson(issue) } });
        }
        const s = v.summary;
        ctx.finish({
          exitCode: EXIT_OK,
          json: {
            ok: true,
            code: null,
            file,
            traceId: v.traceId,
            records: v.records,
            blocks: v.blocks,
            checkpoints: v.checkpoints.length,
            signers: v.signers,
            complete: v.complete,
            integrity: s === null ? null : s.integrity / 1000,
            denials: s?.denials ?? null,
            quarantines: s?.quarantines ?? null,
          },
          text: layout([
            ['verified', `trace ${v.traceId ?? ''} (${file})`],
            ['records', `${v.records} in ${v.blocks} blocks`],
            ['checkpoints', `${v.checkpoints.length} (${v.checkpoints.map((c) => c.reason).join(', ')})`],
            ['signers', v.signers.map((k) => shortHex(k, ctx.terminal))],
            ['complete', v.complete ? 'yes (stopped)' : 'no (not stopped)'],
            ...(s === null ? [] : ([['integrity', `${(s.integrity / 1000).toFixed(3)} (${s.denials} denied, ${s.quarantines} quarantining)`]] as const)),
          ]),
        });
      } catch (e) {
        if (e instanceof UsageError) throw e;
        failure(ctx, file, e);
      }
    });

  trace
    .command('explain')
    .summary('explain an exported trace')
    .description(
      'Explain a trace: who ran what, what it touched (paths, hosts, keys), what was refused and why, anomaly flags,\n' +
        'the integrity score and a verdict (clean, suspicious, compromised). With --trust-root or --key the trace is\n' +
        'verified first and a failed verification makes the verdict compromised; without, signatures are not checked.',
    )
    .argument('<file>', 'exported trace (JSON lines)')
    .option('--trust-root <file>', 'verify against the keys of a role of this trust root')
    .option('--role <name>', 'the trust root role whose keys sign traces', 'kernel')
    .option('--key <file...>', 'verify against these public key files')
    .option('--flags <file>', 'extra anomaly flags: a JSON array of { name, severity, detail?, seq? }')
    .addHelpText('after', examples('forgeone trace explain run.dna', 'forgeone trace explain run.dna --key kernel.key.pub --json'))
    .action(async (file: string, opts: ExplainOptions) => {
      try {
        const bytes = await readChainFile(ctx, file);
        const check = opts.trustRoot !== undefined || (opts.key ?? []).length > 0;
        const verification = check ? verifyTrace(bytes, { trustedKeys: await trustedKeysFrom(ctx, opts), crypto: ctx.provider, allowIncomplete: true }) : undefined;
        const parsed = parseTrace(bytes, ctx.provider);
        const flags = await readFlags(ctx, opts.flags);
        const ex = explainTrace(parsed, { flags, ...(verification === undefined ? {} : { verification }) });
        ctx.finish({ exitCode: EXIT_OK, json: { ok: true, code: null, file, ...ex.json }, text: ex.text.trimEnd().split('\n') });
      } catch (e) {
        if (e instanceof UsageError) throw e;
        failure(ctx, file, e);
      }
    });
}
