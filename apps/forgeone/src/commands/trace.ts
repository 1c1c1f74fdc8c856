import type { Command } from 'commander';
import { ForgeError, decodeUtf8Strict, toForgeError } from '@forgeone/common';
import { DEFAULT_PACKAGE_LIMITS, createPackageVerifier, roleKeys, verifyTrustRoot } from '@forgeone/crypto';
import { detectWasmKind, pluginCapabilities, replayComponent, type ReplayReport } from '@forgeone/execution';
import { explainTrace, parseTrace, verifyTrace } from '@forgeone/observer';
import type { AnomalyFlag, TraceVerification, TrustedKeys, VerifyIssue } from '@forgeone/observer';
import type { Context } from '../context.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../errors.js';
import { readFileLimited } from '../files.js';
import { examples, layout, shortHex } from '../format.js';
import { inFile, loadPublicKeys, readTrustRoot } from '../load.js';

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

interface ReplayOptions {
  readonly trustRoot: string;
  readonly key?: readonly string[];
  readonly role?: string;
  readonly input?: string;
  readonly cacheDir?: string;
  readonly preopen?: readonly string[];
}

function replayJson(report: ReplayReport): Record<string, unknown> {
  const d = report.divergence;
  return {
    identical: report.identical,
    matched: report.matched,
    records: report.records,
    divergence: d === null ? null : { seq: d.seq, kind: d.kind, expected: d.expected, got: d.got, message: d.message },
    outcome: report.outcome,
  };
}

/**
 * Register `forgeone trace` (`verify`, `explain`, `replay`).
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
    .command('replay')
    .summary('re-run a plugin with the recorded result of every host call')
    .description(
      'Forensic replay: verify the trace and the signed package, then re-run the package\'s component with the recorded\n' +
        'result of every host call (clocks, random, kv, HTTP, identity, files) instead of the real ones. Each call must have the\n' +
        'name and canonical arguments of the next record. Exit status 0 when the replay is identical; 1 with code\n' +
        'REPLAY_DIVERGED and the first divergence (record, expected, got) when it is not. Files are answered from the\n' +
        'record too: give the guest paths the run was granted with --preopen; no host directory is opened.',
    )
    .argument('<trace>', 'exported trace (JSON lines)')
    .argument('<package>', 'the .forgepkg that is claimed to have run')
    .requiredOption('--trust-root <file>', 'trust root that verifies the package (and, without --key, the trace: its --role keys)')
    .option('--role <name>', 'the trust root role whose keys sign traces', 'kernel')
    .option('--key <file...>', 'trust these public key files for the trace')
    .option('-i, --input <text>', 'the input of run(), when the trace does not hold it')
    .option('--cache-dir <dir>', 'transpile cache directory')
    .option('--preopen <guest-path...>', 'guest paths of the directories the run was granted, in order (no host directory is used)')
    .addHelpText('after', examples('forgeone trace replay hello.dna plugins/hello/dist/hello.forgepkg --trust-root .forgeone-dev/trust-root.json --key hello.dna.pub'))
    .action(async (file: string, pkgFile: string, opts: ReplayOptions) => {
      try {
        const bytes = await readChainFile(ctx, file);
        const trustRoot = await readTrustRoot(ctx, opts.trustRoot);
        const keys = (opts.key ?? []).length > 0 ? await loadPublicKeys(ctx, opts.key!) : roleKeys(trustRoot.signed, opts.role ?? 'kernel');
        const v = verifyTrace(bytes, { trustedKeys: keys, crypto: ctx.provider, allowIncomplete: true });
        if (!v.ok) throw new ForgeError('STATE_CORRUPT', `${file}: ${v.issue!.code}: ${v.issue!.message}`, { details: { issue: issueJson(v.issue!) } });
        const parsed = parseTrace(bytes, ctx.provider);
        const pkgBytes = await readFileLimited(ctx.path(pkgFile), pkgFile, { maxBytes: DEFAULT_PACKAGE_LIMITS.maxPackageBytes, limitCode: 'PKG_LIMIT_EXCEEDED' });
        const verified = createPackageVerifier({ provider: ctx.provider, trustRoot }).verify(pkgBytes);
        if (!verified.ok) throw inFile(pkgFile, verified.error);
        const { manifest, files, digest } = verified.value;
        const component = files.get(manifest.entry);
        if (component === undefined) throw new ForgeError('PKG_MALFORMED', `${pkgFile}: the entry ${manifest.entry} is not in the package`);
        if (detectWasmKind(component) !== 'component') throw new ForgeError('REPLAY_UNSUPPORTED', `${pkgFile}: replay runs plugin components; ${manifest.entry} is a core module`);
        const invocation = parsed.header.invocation;
        const input = opts.input ?? invocation?.input;
        if (input === undefined) throw new UsageError('the trace does not hold the input of run(): give it with --input');
        const samePackage = parsed.header.package.hash === `sha3-256:${digest}`;
        const report = await replayComponent({
          records: parsed.records,
          component,
          export: invocation?.export ?? 'run',
          input,
          network: pluginCapabilities(manifest.metadata ?? {}, {}).net ?? [],
          ...(opts.preopen === undefined ? {} : { preopens: opts.preopen }),
          ...(opts.cacheDir === undefined ? {} : { cacheDir: ctx.path(opts.cacheDir) }),
        });
        const pkgLine = `${manifest.name}@${manifest.version}${samePackage ? '' : ` — NOT the package the trace names (${parsed.header.package.name}@${parsed.header.package.version})`}`;
        const d = report.divergence;
        ctx.finish({
          exitCode: report.identical ? EXIT_OK : EXIT_FAILURE,
          json: { ok: report.identical, code: report.identical ? null : 'REPLAY_DIVERGED', file, package: { name: manifest.name, version: manifest.version, digest, samePackage }, ...replayJson(report) },
          text: layout([
            ['trace', `${v.traceId ?? ''} (${file}), verified, ${report.records} records`],
            ['package', pkgLine],
            ['replay', report.identical ? `identical: ${report.matched} of ${report.records} calls matched` : `DIVERGED at record ${d!.seq} (${d!.kind}) after ${report.matched} matching calls`],
            ...(d === null ? [] : ([['divergence', d.message]] as const)),
          ]),
          ...(report.identical ? {} : { errText: [`error REPLAY_DIVERGED: ${d!.message}`] }),
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
