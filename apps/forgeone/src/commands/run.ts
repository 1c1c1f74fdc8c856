import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Command } from 'commander';
import { ForgeError, createIdentity, newId, toForgeError, trustVector } from '@forgeone/common';
import { DEFAULT_PACKAGE_LIMITS, SigningKey, createPackageVerifier, savePublicKey } from '@forgeone/crypto';
import {
  COMPONENT_RUNNER,
  componentBridgeHandlers,
  createCoarseClock,
  createSandboxPool,
  decodeBlock,
  defaultComponentCacheDir,
  pluginCapabilities,
  prepareComponentModules,
  type CallRecord,
  type ComponentRunnerData,
  type RawBlock,
  type RunOutcome,
} from '@forgeone/execution';
import { createTraceWriter, explainTrace, exportTrace, parseTrace, verifyTrace, type TraceCallRecord } from '@forgeone/observer';
import { createFileStore, createMemoryStore, type Store } from '@forgeone/store';
import { parsePolicy, type Policy } from '@forgeone/trust';
import type { Context } from '../context.js';
import { EXIT_FAILURE, EXIT_OK } from '../errors.js';
import { readFileLimited, writeFileAtomic } from '../files.js';
import { examples } from '../format.js';
import { inFile, loadSigningKeys, readTrustRoot } from '../load.js';

/**
 * The kernel policy `forgeone run` applies when `--policy` is not given. The package's requested capabilities
 * are laid over it (a call needs both), so this only narrows: kv keys must be canonical, reads of system
 * paths quarantine the container, everything else a capability grants is allowed.
 */
export const DEFAULT_RUN_POLICY = `
apiVersion: forgeone.policy/v1
name: forgeone-run-default
version: 1
defaultAction: deny
root: base
nodes:
  base:
    description: what any plugin may do once its package requested it
    rules:
      - { id: basics, action: allow, syscalls: ["forgeone:log/write", "forgeone:time/now", "forgeone:identity/get", "forgeone:info/get", "wasi:cli/*", "wasi:clocks/*", "wasi:random/*", "wasi:io/*"], reason: plugin basics }
      - { id: kv, action: allow, syscalls: ["forgeone:kv/*"], args: { path: { match: ["/**"] } }, reason: kv under canonical keys }
      - { id: files, action: allow, syscalls: ["wasi:filesystem/*"], reason: files the package requested }
      - { id: network, action: allow, syscalls: ["forgeone:http/fetch", "wasi:http/*", "wasi:sockets/*"], reason: hosts the package requested }
      - { id: system-paths, action: quarantine, syscalls: ["wasi:filesystem/*"], args: { path: { match: ["/etc/**", "/proc/**", "/sys/**"] } }, reason: system paths are never a plugin's business }
`;

interface RunOptions {
  readonly trustRoot: string;
  readonly input?: string;
  readonly policy?: string;
  readonly dir?: string[];
  readonly trace?: string;
  readonly kernelKey?: string;
  readonly state?: string;
  readonly cacheDir?: string;
  readonly cpuBudgetMs?: string;
  readonly memoryLimitMb?: string;
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ForgeError('INVALID_ARGUMENT', `${name} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

function toTraceRecord(r: CallRecord): TraceCallRecord {
  return r as TraceCallRecord;
}

/**
 * Register `forgeone run`: verify a signed plugin package, run it in a worker sandbox under policy, and
 * write its execution DNA.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerRun(program: Command, ctx: Context): void {
  program
    .command('run')
    .summary('verify a signed plugin package and run it behind the gate, with its trace')
    .description(
      'Verify <package> against the trust root (quorum, expiry, hashes), grant the capabilities its manifest requests\n' +
        '(directories only where --dir maps them), and run its `run(input)` export in a worker sandbox. Every host call\n' +
        'crosses the gate: the kernel policy (--policy, or a built-in default) and the capabilities must both allow it.\n' +
        'The calls are sealed into a signed execution DNA trace (--trace writes it; `forgeone trace verify` checks it offline).\n\n' +
        'Exit status: 0 when the plugin returned ok, 1 when it returned an error or was stopped (the code is printed).',
    )
    .argument('<package>', 'the .forgepkg file')
    .requiredOption('--trust-root <file>', 'trust root whose packages role must sign the package')
    .option('-i, --input <text>', 'the input string passed to run()', '')
    .option('--policy <file>', 'kernel policy (YAML or JSON); default: a built-in policy that only narrows the capabilities')
    .option('--dir <HOST::GUEST...>', 'map a host directory to a guest path the package requested')
    .option('--trace <file>', 'write the signed execution DNA trace (JSON lines) to this file')
    .option('--kernel-key <file>', 'the kernel signing key for trace checkpoints (default: a new key for this run; its .pub is written beside --trace)')
    .option('--state <dir>', 'keep the key-value data and traces in a file store in this directory (default: in memory)')
    .option('--cache-dir <dir>', 'where transpiled components are cached (default: a private per-user directory under the system temp directory)')
    .option('--cpu-budget-ms <n>', 'CPU budget of the run in ms', undefined)
    .option('--memory-limit-mb <n>', 'largest linear memory in MiB (default 256)', undefined)
    .addHelpText(
      'after',
      examples(
        'forgeone run plugins/hello/dist/hello.forgepkg --trust-root .forgeone-dev/trust-root.json --input ForgeOne --trace hello.dna',
        'forgeone trace verify hello.dna --key hello.dna.pub',
      ),
    )
    .action(async (file: string, opts: RunOptions) => {
      const cpu = positive('--cpu-budget-ms', opts.cpuBudgetMs, 30_000);
      const memory = Math.floor(positive('--memory-limit-mb', opts.memoryLimitMb, 256) * 1024 * 1024);
      const trustRoot = await readTrustRoot(ctx, opts.trustRoot);
      const bytes = await readFileLimited(ctx.path(file), file, { maxBytes: DEFAULT_PACKAGE_LIMITS.maxPackageBytes, limitCode: 'PKG_LIMIT_EXCEEDED' });
      const verified = createPackageVerifier({ provider: ctx.provider, trustRoot }).verify(bytes);
      if (!verified.ok) throw inFile(file, verified.error);
      const { manifest, files, digest } = verified.value;
      const component = files.get(manifest.entry);
      if (component === undefined) throw new ForgeError('PKG_MALFORMED', `${file}: the entry ${manifest.entry} is not in the package`);
      const hostDirs: Record<string, string> = {};
      for (const spec of opts.dir ?? []) {
        const at = spec.indexOf('::');
        if (at <= 0) throw new ForgeError('INVALID_ARGUMENT', `--dir ${spec}: expected HOST::GUEST`);
        hostDirs[spec.slice(at + 2)] = ctx.path(spec.slice(0, at));
      }
      const capabilities = pluginCapabilities(manifest.metadata ?? {}, hostDirs);
      let policy: Policy;
      let policyText = DEFAULT_RUN_POLICY;
      if (opts.policy !== undefined) {
        policyText = new TextDecoder().decode(await readFileLimited(ctx.path(opts.policy), opts.policy, { maxBytes: 1 << 20, limitCode: 'POLICY_INVALID' }));
      }
      try {
        policy = parsePolicy(policyText).policy;
      } catch (e) {
        throw opts.policy === undefined ? e : inFile(opts.policy, e);
      }

      const kernelKey = opts.kernelKey === undefined ? SigningKey.generate(ctx.provider) : (await loadSigningKeys(ctx, [opts.kernelKey]))[0]!;
      let store: Store;
      if (opts.state === undefined) store = createMemoryStore();
      else {
        mkdirSync(ctx.path(opts.state), { recursive: true });
        store = await createFileStore({ dir: ctx.path(opts.state) });
      }
      const containerId = newId('ctr');
      const traceId = newId('trc');
      const subject = `plugin:${manifest.name}`;
      const clock = createCoarseClock();
      const pool = createSandboxPool({ size: 1, maxContainers: 1, clockBuffer: clock.buffer, limits: { maxMemoryBytes: memory, cpuTotalMs: cpu, cpuPerCallMs: cpu } });
      const logs: string[] = [];
      let outcome: RunOutcome | undefined;
      let failure: ForgeError | undefined;
      try {
        const writer = await createTraceWriter({
          store,
          crypto: ctx.provider,
          signingKey: kernelKey,
          header: {
            traceId,
            containerId,
            identity: createIdentity({ subject, trust: trustVector('Verified') }),
            package: { name: manifest.name, version: manifest.version, hash: `sha3-256:${digest}` },
            policy: { name: policy.name, version: policy.version },
          },
        });
        // A private per-user cache by default: transpiled JavaScript from it runs in the worker.
        const cacheDir = opts.cacheDir === undefined ? defaultComponentCacheDir() : ctx.path(opts.cacheDir);
        mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
        const compiled = await prepareComponentModules(component, { maxMemoryBytes: memory, cacheDir });
        const kv = await store.kv(`kv/${manifest.name}`);
        const pending: Promise<void>[] = [];
        const data: ComponentRunnerData = { bytes: component, compiled, cacheDir, capabilities, identity: { subject }, input: opts.input ?? '' };
        const container = pool.start({
          runner: COMPONENT_RUNNER,
          data,
          policy: { document: policy, identity: { subject } },
          handlers: componentBridgeHandlers({ kv, log: (level, message) => logs.push(`[${level}] ${message}`) }),
          onRecords: (block: RawBlock) => {
            pending.push(writer.append(decodeBlock(block, container.syscalls).map(toTraceRecord)));
          },
        });
        try {
          const result = await container.result;
          outcome = result.value as RunOutcome;
        } catch (e) {
          failure = toForgeError(e);
        }
        await Promise.all(pending);
        const summary = await writer.stop(
          failure === undefined ? { outcome: outcome?.ok === false ? 'error' : 'returned' } : { outcome: failure.code === 'SANDBOX_CPU_EXCEEDED' ? 'terminated' : 'failed' },
        );
        const exported = await exportTrace(store, traceId);
        const verification = verifyTrace(exported, { trustedKeys: [kernelKey] });
        const explanation = explainTrace(parseTrace(exported), { verification });
        if (opts.trace !== undefined) {
          await writeFileAtomic(ctx.path(opts.trace), opts.trace, exported);
          if (opts.kernelKey === undefined) {
            const pub = `${opts.trace}.pub`;
            mkdirSync(dirname(ctx.path(pub)), { recursive: true });
            await savePublicKey(kernelKey, ctx.path(pub), { overwrite: true });
          }
        }
        const ok = failure === undefined && outcome?.ok === true;
        const value = outcome?.ok === true ? outcome.value : undefined;
        const error = failure !== undefined ? `${failure.code}: ${failure.message}` : outcome?.ok === false ? outcome.error : undefined;
        const text = [
          `${manifest.name}@${manifest.version} verified (${verified.value.signers.length} of ${verified.value.threshold} signatures) and ran in ${containerId}`,
          ...logs.map((l) => `log ${l}`),
          ok ? `result: ${String(value)}` : `error: ${error ?? 'unknown'}`,
          '',
          explanation.text,
          '',
          opts.trace === undefined ? `trace ${traceId}: ${summary.records} call(s), not written (use --trace FILE)` : `trace written to ${opts.trace} (${basename(opts.trace)}; verify: forgeone trace verify ${opts.trace} --key ${opts.kernelKey ?? `${opts.trace}.pub`})`,
        ];
        ctx.finish({
          exitCode: ok ? EXIT_OK : EXIT_FAILURE,
          json: { ok, code: failure?.code ?? null, package: { name: manifest.name, version: manifest.version, digest }, containerId, traceId, value: value ?? null, error: error ?? null, logs, trace: explanation.json, traceFile: opts.trace ?? null },
          text,
        });
      } finally {
        await pool.close();
        await clock.stop();
        await store.close();
      }
    });
}
