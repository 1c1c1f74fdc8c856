import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ForgeError, KNOWN_SYSCALLS, createIdentity, newId, toForgeError, trustVector } from '@forgeone/common';
import { DEFAULT_PACKAGE_LIMITS, SigningKey, createPackageVerifier, savePublicKey } from '@forgeone/crypto';
import {
  COMPONENT_RUNNER,
  canonicalPath,
  componentBridgeHandlers,
  createCoarseClock,
  createSandboxPool,
  createWasmHost,
  decodeBlock,
  defaultComponentCacheDir,
  detectWasmKind,
  parseDirGrant,
  pluginCapabilities,
  prepareComponentModules,
  type CallRecord,
  type Capabilities,
  type ComponentRunnerData,
  type DirGrant,
  type RawBlock,
  type RunOutcome,
  type SandboxPool,
  type WasmHost,
  type WasmRunOutcome,
} from '@forgeone/execution';
import { createTraceWriter, explainTrace, exportTrace, parseTrace, verifyTrace, type TraceStopInput } from '@forgeone/observer';
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
  readonly input: string;
  readonly policy?: string;
  readonly dir?: string[];
  readonly env?: string[];
  readonly trace?: string;
  readonly kernelKey?: string;
  readonly state?: string;
  readonly cacheDir?: string;
  readonly cpuBudgetMs?: string;
  readonly memoryLimitMb?: string;
}

/** Injected dependencies of `forgeone run` (tests pass their own). */
export interface RunDeps {
  /**
   * Standard input of a core module whose package requests `wasi:cli/stdin`; default `process.stdin`, read
   * only when the guest reads. Packages that do not request it read an empty stdin.
   */
  readonly stdin?: Readable;
}

/** What the command line gives a core-module package, on top of (and only within) what its manifest requests. */
export interface CoreRunGrants {
  /** `argv[0]`: the package name. */
  readonly name: string;
  /** The words after `--`, `argv[1]` onwards. */
  readonly args: readonly string[];
  /** `--env` values, `KEY=VALUE`. */
  readonly env: readonly string[];
  /** `--dir` grants (host paths absolute, guest paths canonical). */
  readonly dirs: readonly DirGrant[];
}

/** One requested capability, split. */
interface Request {
  /** The interface pattern as a regular expression (`*` matches anything). */
  readonly pattern: RegExp;
  /** The scope after the interface, if any. */
  readonly scope: string | undefined;
  /** As written. */
  readonly text: string;
}

const FS_WRITES = new Set([
  'wasi:filesystem/write',
  'wasi:filesystem/create-directory',
  'wasi:filesystem/remove-file',
  'wasi:filesystem/remove-directory',
  'wasi:filesystem/rename',
  'wasi:filesystem/link',
  'wasi:filesystem/symlink',
  'wasi:filesystem/set-size',
  'wasi:filesystem/set-times',
]);
const FILESYSTEM = KNOWN_SYSCALLS.filter((s) => s.startsWith('wasi:filesystem/'));

function splitRequest(text: string): Request {
  // `interface[:scope]`: the interface has exactly one `:` (namespace:package/op); a scope follows a second one.
  const first = text.indexOf(':');
  const second = first < 0 ? -1 : text.indexOf(':', first + 1);
  const iface = second < 0 ? text : text.slice(0, second);
  const scope = second < 0 ? undefined : text.slice(second + 1);
  const pattern = new RegExp(`^${iface.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return { pattern, scope, text };
}

/** The requests whose interface pattern names at least one of `syscalls`. */
function requesting(requests: readonly Request[], syscalls: readonly string[]): Request[] {
  return requests.filter((r) => syscalls.some((s) => r.pattern.test(s)));
}

/** Whether a filesystem request's scope (a guest path, or none for any path) covers the guest directory. */
function covers(scope: string | undefined, guestPath: string): boolean {
  if (scope === undefined) return true;
  if (!scope.startsWith('/')) return false;
  const s = canonicalPath(scope);
  return s === '/' || s === guestPath || guestPath.startsWith(`${s}/`);
}

/**
 * The capabilities of a core-module (WASI preview1) package run by `forgeone run`: the intersection of what
 * its manifest's `capabilities` list requests (`interface[:scope]`, `*` in the interface matches anything)
 * and what the command line grants. Nothing is granted that was not requested:
 * - arguments (`argv[0]` the package name, then the words after `--`) only when it requests `wasi:cli/args`;
 * - environment variables only from `--env`, only when it requests `wasi:cli/env` (a scoped request
 *   `wasi:cli/env:NAME` limits it to the variables named);
 * - a `--dir HOST::GUEST` only when a `wasi:filesystem/...` request covers GUEST (no scope, or a scope that
 *   is GUEST or a directory above it); read-only unless a covering request names a write operation;
 * - stdin/stdout/stderr when it requests any of `wasi:cli/stdin|stdout|stderr`, clocks for
 *   `wasi:clocks/wall-clock|monotonic-clock`, random numbers for `wasi:random/*`; no log, kv or network.
 * @param requested - the manifest's `capabilities`
 * @param grants - what the command line gives
 * @returns the capabilities
 * @throws ForgeError `INVALID_ARGUMENT` when the command line grants what the package did not request
 *   (arguments, `--env`, a `--dir`) or an `--env` value is not `KEY=VALUE`
 */
export function coreModuleCapabilities(requested: readonly string[], grants: CoreRunGrants): Capabilities {
  const requests = requested.map(splitRequest);
  const list = requested.length === 0 ? 'nothing' : requested.join(', ');

  let args: string[] | undefined;
  if (requesting(requests, ['wasi:cli/args']).length > 0) args = [grants.name, ...grants.args];
  else if (grants.args.length > 0) {
    throw new ForgeError('INVALID_ARGUMENT', `the package does not request wasi:cli/args: it cannot be given arguments (it requests ${list})`, { details: { requested } });
  }

  let env: Record<string, string> | undefined;
  const envRequests = requesting(requests, ['wasi:cli/env']);
  if (envRequests.length > 0) env = {};
  const names = envRequests.some((r) => r.scope === undefined) ? undefined : new Set(envRequests.map((r) => r.scope));
  for (const kv of grants.env) {
    const at = kv.indexOf('=');
    if (at <= 0) throw new ForgeError('INVALID_ARGUMENT', `--env expects KEY=VALUE, got ${JSON.stringify(kv)}`);
    const key = kv.slice(0, at);
    if (env === undefined) throw new ForgeError('INVALID_ARGUMENT', `--env ${key}: the package does not request wasi:cli/env (it requests ${list})`, { details: { requested } });
    if (names !== undefined && !names.has(key)) {
      throw new ForgeError('INVALID_ARGUMENT', `--env ${key}: the package requests only the variables ${[...names].join(', ')}`, { details: { requested } });
    }
    env[key] = kv.slice(at + 1);
  }

  const fsRequests = requesting(requests, FILESYSTEM);
  const dirs: DirGrant[] = [];
  for (const d of grants.dirs) {
    const covering = fsRequests.filter((r) => covers(r.scope, d.guestPath));
    if (covering.length === 0) {
      throw new ForgeError(
        'INVALID_ARGUMENT',
        `--dir ${d.hostPath}::${d.guestPath}: the package does not request filesystem access at ${d.guestPath} (it requests ${list})`,
        { details: { guestPath: d.guestPath, requested } },
      );
    }
    const writable = covering.some((r) => FILESYSTEM.some((s) => FS_WRITES.has(s) && r.pattern.test(s)));
    dirs.push({ hostPath: d.hostPath, guestPath: d.guestPath, ...(writable && d.readOnly !== true ? {} : { readOnly: true }) });
  }

  return {
    ...(args === undefined ? {} : { args }),
    ...(env === undefined ? {} : { env }),
    dirs,
    net: [],
    stdio: requesting(requests, ['wasi:cli/stdin', 'wasi:cli/stdout', 'wasi:cli/stderr']).length > 0,
    clocks: requesting(requests, ['wasi:clocks/wall-clock', 'wasi:clocks/monotonic-clock']).length > 0,
    random: requesting(requests, ['wasi:random/random', 'wasi:random/insecure', 'wasi:random/insecure-seed']).length > 0,
    kv: false,
    log: false,
  };
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ForgeError('INVALID_ARGUMENT', `${name} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

function exitStatusOf(code: number): number {
  // Statuses outside 0–255 cannot be expressed by a process; report them as a plain failure.
  return Number.isInteger(code) && code >= 0 && code <= 255 ? code : EXIT_FAILURE;
}

function stopOf(failure: ForgeError): TraceStopInput {
  if (failure.code === 'SANDBOX_CPU_EXCEEDED') return { outcome: 'terminated' };
  if (failure.code === 'WASM_TRAP') return { outcome: 'trapped' };
  return { outcome: 'failed' };
}

/**
 * Register `forgeone run`: verify a signed package and run it in a worker sandbox under policy (a plugin
 * component's `run(input)` export, or a WASI preview1 command module's `_start`), and write its execution DNA.
 * @param program - the root command
 * @param ctx - the context
 * @param deps - injected standard input (tests)
 */
export function registerRun(program: Command, ctx: Context, deps: RunDeps = {}): void {
  program
    .command('run')
    .summary('verify a signed package and run it behind the gate, with its trace')
    .description(
      'Verify <package> against the trust root (quorum, expiry, hashes), grant the capabilities its manifest requests\n' +
        '(directories only where --dir maps them), and run it in a worker sandbox. Every host call crosses the gate: the\n' +
        'kernel policy (--policy, or a built-in default) and the capabilities must both allow it. The calls are sealed\n' +
        'into a signed execution DNA trace (--trace writes it; `forgeone trace verify` checks it offline).\n\n' +
        'A plugin component (forgeone:host world) has its `run(input)` export called with --input. Exit status: 0 when\n' +
        'the plugin returned ok, 1 when it returned an error or was stopped (the code is printed).\n\n' +
        'A WASI preview1 command module runs its _start with only what its manifest\'s `capabilities` request AND the\n' +
        'command line gives: argv (the package name, then the words after `--`) if it requests wasi:cli/args; the --env\n' +
        'variables if it requests wasi:cli/env; each --dir whose guest path a wasi:filesystem/... request covers\n' +
        '(read-only unless a write operation is requested); stdio, clocks and random if requested. Granting what was\n' +
        'not requested is an error (INVALID_ARGUMENT). Its stdout and stderr pass through; the run summary goes to\n' +
        'stderr. Exit status: the guest\'s exit code (codes above 255 become 1); 1 with the code when it was stopped.',
    )
    .argument('<package>', 'the .forgepkg file')
    .argument('[args...]', 'a core module\'s arguments (after --; argv[0] is the package name)')
    .requiredOption('--trust-root <file>', 'trust root whose packages role must sign the package')
    .option('-i, --input <text>', 'the input string passed to a plugin\'s run()', '')
    .option('--policy <file>', 'kernel policy (YAML or JSON); default: a built-in policy that only narrows the capabilities')
    .option('--dir <HOST::GUEST...>', 'map a host directory to a guest path the package requested')
    .option('--env <KEY=VALUE...>', 'an environment variable for a core module that requested wasi:cli/env')
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
        'forgeone run plugins/c-guest/dist/c-guest.forgepkg --trust-root .forgeone-dev/trust-root.json --dir ./data::/data --env GREETING=hi -- alpha 7',
      ),
    )
    .action(async (file: string, words: string[], opts: RunOptions) => {
      const cpu = positive('--cpu-budget-ms', opts.cpuBudgetMs, 30_000);
      const memory = Math.floor(positive('--memory-limit-mb', opts.memoryLimitMb, 256) * 1024 * 1024);
      const trustRoot = await readTrustRoot(ctx, opts.trustRoot);
      const bytes = await readFileLimited(ctx.path(file), file, { maxBytes: DEFAULT_PACKAGE_LIMITS.maxPackageBytes, limitCode: 'PKG_LIMIT_EXCEEDED' });
      const verified = createPackageVerifier({ provider: ctx.provider, trustRoot }).verify(bytes);
      if (!verified.ok) throw inFile(file, verified.error);
      const { manifest, files, digest } = verified.value;
      const component = files.get(manifest.entry);
      if (component === undefined) throw new ForgeError('PKG_MALFORMED', `${file}: the entry ${manifest.entry} is not in the package`);
      let kind: 'core' | 'component';
      try {
        kind = detectWasmKind(component);
      } catch (e) {
        throw inFile(file, e);
      }
      let capabilities: Capabilities;
      if (kind === 'component') {
        if (words.length > 0) throw new ForgeError('INVALID_ARGUMENT', 'arguments after the package are for core modules; a plugin component takes --input');
        if ((opts.env ?? []).length > 0) throw new ForgeError('INVALID_ARGUMENT', '--env is for core modules; a plugin component has no environment');
        const hostDirs: Record<string, string> = {};
        for (const spec of opts.dir ?? []) {
          const at = spec.indexOf('::');
          if (at <= 0) throw new ForgeError('INVALID_ARGUMENT', `--dir ${spec}: expected HOST::GUEST`);
          hostDirs[spec.slice(at + 2)] = ctx.path(spec.slice(0, at));
        }
        capabilities = pluginCapabilities(manifest.metadata ?? {}, hostDirs);
      } else {
        if (opts.input !== '') throw new ForgeError('INVALID_ARGUMENT', '--input is for plugin components; give a core module its arguments after --');
        const dirs = (opts.dir ?? []).map((spec) => {
          if (spec.indexOf('::') <= 0) throw new ForgeError('INVALID_ARGUMENT', `--dir ${spec}: expected HOST::GUEST`);
          const g = parseDirGrant(spec);
          return { ...g, hostPath: ctx.path(g.hostPath) };
        });
        capabilities = coreModuleCapabilities(manifest.capabilities, { name: manifest.name, args: words, env: opts.env ?? [], dirs });
      }
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
      const limits = { maxMemoryBytes: memory, cpuTotalMs: cpu, cpuPerCallMs: cpu };
      let pool: SandboxPool | undefined;
      let host: WasmHost | undefined;
      try {
        // One writer for both kinds: the records of every call, sealed and signed, then exported and explained.
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
            // A plugin's input goes into the header so `forgeone trace replay` needs only the trace and the package.
            ...(kind === 'component' ? { invocation: { export: 'run', input: opts.input } } : {}),
          },
        });
        const pending: Promise<void>[] = [];
        const append = (records: CallRecord[]): void => {
          pending.push(writer.append(records));
        };
        const seal = async (stop: TraceStopInput): Promise<{ records: number; explanation: ReturnType<typeof explainTrace> }> => {
          await Promise.all(pending);
          const summary = await writer.stop(stop);
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
          return { records: summary.records, explanation };
        };
        const traceLine = (records: number): string =>
          opts.trace === undefined
            ? `trace ${traceId}: ${records} call(s), not written (use --trace FILE)`
            : `trace written to ${opts.trace} (${basename(opts.trace)}; verify: forgeone trace verify ${opts.trace} --key ${opts.kernelKey ?? `${opts.trace}.pub`})`;
        const ran = `${manifest.name}@${manifest.version} verified (${verified.value.signers.length} of ${verified.value.threshold} signatures) and ran in ${containerId}`;

        if (kind === 'core') {
          const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
          const captured = { stdout: '', stderr: '' };
          const emit = (stream: 'stdout' | 'stderr', text: string): void => {
            if (text === '') return;
            if (ctx.json) captured[stream] += text;
            else if (stream === 'stdout') ctx.io.stdout(text);
            else ctx.io.stderr(text);
          };
          const wantsStdin = requesting(manifest.capabilities.map(splitRequest), ['wasi:cli/stdin']).length > 0;
          host = createWasmHost({ clock, poolOptions: { size: 0, maxContainers: 1, limits } });
          let outcome: WasmRunOutcome | undefined;
          let failure: ForgeError | undefined;
          try {
            outcome = await host.run({
              module: component,
              capabilities,
              policy: { document: policy, identity: { subject } },
              limits,
              retainOutput: false,
              stdio: {
                stdin: wantsStdin ? (deps.stdin ?? process.stdin) : new Uint8Array(0),
                stdout: (b) => emit('stdout', decoders.stdout.decode(b, { stream: true })),
                stderr: (b) => emit('stderr', decoders.stderr.decode(b, { stream: true })),
              },
              onRecords: (block: RawBlock, syscalls) => append(decodeBlock(block, syscalls)),
              recordBlockSize: 64,
              id: containerId,
            });
          } catch (e) {
            failure = toForgeError(e);
          } finally {
            emit('stdout', decoders.stdout.decode());
            emit('stderr', decoders.stderr.decode());
          }
          const { records, explanation } = await seal(failure === undefined ? { outcome: 'exited', exitCode: outcome?.exitCode ?? 0 } : stopOf(failure));
          const exitCode = failure === undefined ? exitStatusOf(outcome?.exitCode ?? 0) : EXIT_FAILURE;
          ctx.finish({
            exitCode,
            json: {
              ok: failure === undefined && exitCode === 0,
              kind,
              code: failure?.code ?? null,
              error: failure === undefined ? null : `${failure.code}: ${failure.message}`,
              exitCode: outcome?.exitCode ?? null,
              package: { name: manifest.name, version: manifest.version, digest },
              containerId,
              traceId,
              stdout: captured.stdout,
              stderr: captured.stderr,
              trace: explanation.json,
              traceFile: opts.trace ?? null,
            },
            // The guest owns standard output: the summary goes to standard error.
            text: [],
            errText: [
              ran,
              failure === undefined ? `exit code: ${outcome?.exitCode ?? 0}` : `error: ${failure.code}: ${failure.message}`,
              '',
              explanation.text,
              '',
              traceLine(records),
            ],
          });
          return;
        }

        // A plugin component: its run(input) export on builtin:component.
        pool = createSandboxPool({ size: 1, maxContainers: 1, clockBuffer: clock.buffer, limits });
        const logs: string[] = [];
        let outcome: RunOutcome | undefined;
        let failure: ForgeError | undefined;
        // A private per-user cache by default: transpiled JavaScript from it runs in the worker.
        const cacheDir = opts.cacheDir === undefined ? defaultComponentCacheDir() : ctx.path(opts.cacheDir);
        mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
        const compiled = await prepareComponentModules(component, { maxMemoryBytes: memory, cacheDir });
        const kv = await store.kv(`kv/${manifest.name}`);
        const data: ComponentRunnerData = { bytes: component, compiled, cacheDir, capabilities, identity: { subject }, input: opts.input };
        const container = pool.start({
          runner: COMPONENT_RUNNER,
          data,
          policy: { document: policy, identity: { subject } },
          handlers: componentBridgeHandlers({ kv, log: (level, message) => logs.push(`[${level}] ${message}`) }),
          onRecords: (block: RawBlock) => append(decodeBlock(block, container.syscalls)),
        });
        try {
          const result = await container.result;
          outcome = result.value as RunOutcome;
        } catch (e) {
          failure = toForgeError(e);
        }
        const { records, explanation } = await seal(
          failure === undefined ? { outcome: outcome?.ok === false ? 'error' : 'returned' } : { outcome: failure.code === 'SANDBOX_CPU_EXCEEDED' ? 'terminated' : 'failed' },
        );
        const ok = failure === undefined && outcome?.ok === true;
        const value = outcome?.ok === true ? outcome.value : undefined;
        const error = failure !== undefined ? `${failure.code}: ${failure.message}` : outcome?.ok === false ? outcome.error : undefined;
        const text = [ran, ...logs.map((l) => `log ${l}`), ok ? `result: ${String(value)}` : `error: ${error ?? 'unknown'}`, '', explanation.text, '', traceLine(records)];
        ctx.finish({
          exitCode: ok ? EXIT_OK : EXIT_FAILURE,
          json: { ok, code: failure?.code ?? null, package: { name: manifest.name, version: manifest.version, digest }, containerId, traceId, value: value ?? null, error: error ?? null, logs, trace: explanation.json, traceFile: opts.trace ?? null },
          text,
        });
      } finally {
        await pool?.close();
        await host?.close();
        await clock.stop();
        await store.close();
      }
    });
}
