import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ForgeError, isForgeError } from '@forgeone/common';
import {
  createWasmHost,
  decodeBlock,
  detectWasmKind,
  parseDirGrant,
  parseNetGrant,
  type CallRecord,
  type Capabilities,
  type DirGrant,
  type NetGrant,
  type RawBlock,
  type SandboxLimits,
  type SandboxPoolOptions,
  type WasmKind,
  type WasmRunOutcome,
} from '@forgeone/execution';
import type { Context } from '../context.js';
import { EXIT_FAILURE, UsageError } from '../errors.js';
import { examples } from '../format.js';

/** Exit status of `forgeone exec` when the guest trapped (128 + SIGABRT, as wasmtime). */
export const EXIT_TRAP = 134;

/** Default memory limit of `forgeone exec` in MiB (override with `--memory-limit-mb`). */
export const EXEC_DEFAULT_MEMORY_MB = 1024;

/** What `forgeone exec` was asked to do, parsed from its command line. */
export interface ExecInvocation {
  /** The module file as typed. */
  readonly file: string;
  /** The guest's arguments after `argv[0]`. */
  readonly args: readonly string[];
  /** `--dir HOST::GUEST` values. */
  readonly dirs: readonly string[];
  /** `--env K=V` values. */
  readonly env: readonly string[];
  /** `--allow-net HOST:PORT` values. */
  readonly net: readonly string[];
  /** `--cpu-budget-ms`. */
  readonly cpuBudgetMs?: number;
  /** `--memory-limit-mb`. */
  readonly memoryLimitMb?: number;
  /** `--trace FILE`. */
  readonly trace?: string;
  /** `--json` given before the module file. */
  readonly json: boolean;
  /** `-h` / `--help` given before the module file. */
  readonly help?: boolean;
}

/** Injected dependencies of `forgeone exec` (tests pass their own). */
export interface ExecDeps {
  /**
   * The guest's standard input; default `process.stdin`, read only when the guest reads (a component takes
   * it whole before it starts, and an interactive terminal is not read for components).
   */
  readonly stdin?: Readable;
  /** Options of the sandbox pool (e.g. another worker script). */
  readonly poolOptions?: SandboxPoolOptions;
  /** The components' transpile cache directory; default the runtime's (private, per user, under the OS temp dir). */
  readonly cacheDir?: string;
}

/** Writes call records somewhere as they arrive; `close` when the run is over. */
export interface TraceWriter {
  /**
   * Write decoded records.
   * @param records - in order
   */
  write(records: readonly CallRecord[]): void;
  /** Flush and close. */
  close(): void;
}

/**
 * The trace writer of `forgeone exec --trace FILE`: one JSON object per line and per call, with `seq`,
 * `syscall`, `args`, `verdict`, `rule`, `allowed`, `result`, `start`, `duration` and `resultBytes` (base64 or
 * null). Kept in one function so it can be swapped for a sealed DNA export.
 * @param path - the file to create (truncated if it exists)
 * @returns the writer
 * @throws ForgeError `IO_ERROR` when the file cannot be opened
 */
export function createJsonLinesTraceWriter(path: string): TraceWriter {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (cause) {
    throw new ForgeError('IO_ERROR', `cannot write the trace file ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  return {
    write(records: readonly CallRecord[]): void {
      let text = '';
      for (const r of records) {
        text += `${JSON.stringify({
          seq: r.seq,
          syscall: r.syscall,
          args: r.args,
          verdict: r.verdict,
          rule: r.rule,
          allowed: r.allowed,
          result: r.result,
          start: r.start,
          duration: r.duration,
          resultBytes: r.resultBytes === null ? null : Buffer.from(r.resultBytes).toString('base64'),
        })}\n`;
      }
      if (text !== '') writeSync(fd, text);
    },
    close(): void {
      closeSync(fd);
    },
  };
}

const VALUE_OPTIONS = new Set(['--dir', '--env', '--allow-net', '--cpu-budget-ms', '--memory-limit-mb', '--trace', '--provider']);

function positiveNumber(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${name} expects a positive number, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Split `forgeone exec` arguments: options up to the module file are for `exec`, everything after the file
 * goes to the guest unchanged (a `--` right after the file is dropped, so `exec x.wasm -- --help` passes
 * `--help`). A `--` before the file ends the options.
 * @param tokens - the arguments after the word `exec`
 * @param jsonBefore - whether `--json` came before `exec`
 * @returns the invocation
 * @throws UsageError for a missing file, an option without its value, or an unknown option before the file
 */
export function parseExecArgs(tokens: readonly string[], jsonBefore = false): ExecInvocation {
  const dirs: string[] = [];
  const env: string[] = [];
  const net: string[] = [];
  let cpuBudgetMs: number | undefined;
  let memoryLimitMb: number | undefined;
  let trace: string | undefined;
  let json = jsonBefore;
  let i = 0;
  let file: string | undefined;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (t === '--') {
      file = tokens[i + 1];
      i += 2;
      break;
    }
    if (!t.startsWith('-') || t === '-') {
      file = t;
      i++;
      break;
    }
    if (t === '--json') {
      json = true;
      i++;
      continue;
    }
    if (t === '-h' || t === '--help') return { file: '', args: [], dirs, env, net, json, help: true };
    const eq = t.indexOf('=');
    const name = eq > 0 && t.startsWith('--') ? t.slice(0, eq) : t;
    if (!VALUE_OPTIONS.has(name)) throw new UsageError(`unknown option '${t}' before the module file`);
    let value: string | undefined;
    if (eq > 0 && t.startsWith('--')) {
      value = t.slice(eq + 1);
      i++;
    } else {
      value = tokens[i + 1];
      i += 2;
    }
    if (value === undefined) throw new UsageError(`option '${name}' needs a value`);
    switch (name) {
      case '--dir':
        dirs.push(value);
        break;
      case '--env':
        env.push(value);
        break;
      case '--allow-net':
        net.push(value);
        break;
      case '--cpu-budget-ms':
        cpuBudgetMs = positiveNumber(name, value);
        break;
      case '--memory-limit-mb':
        memoryLimitMb = positiveNumber(name, value);
        break;
      case '--trace':
        trace = value;
        break;
      default:
        // --provider: a global option, irrelevant here.
        break;
    }
  }
  if (file === undefined) throw new UsageError('missing the module file: forgeone exec [options] <file.wasm> [args...]');
  let rest = tokens.slice(i);
  if (rest[0] === '--') rest = rest.slice(1);
  return {
    file,
    args: rest,
    dirs,
    env,
    net,
    json,
    ...(cpuBudgetMs === undefined ? {} : { cpuBudgetMs }),
    ...(memoryLimitMb === undefined ? {} : { memoryLimitMb }),
    ...(trace === undefined ? {} : { trace }),
  };
}

/** The tokens after the `exec` subcommand in the root command's raw arguments, and whether `--json` came before it. */
function execTokens(raw: readonly string[]): { tokens: string[]; jsonBefore: boolean } {
  let jsonBefore = false;
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i]!;
    if (t === 'exec') return { tokens: raw.slice(i + 1), jsonBefore };
    if (t === '--json') jsonBefore = true;
    else if (t === '--provider') i++;
  }
  return { tokens: [], jsonBefore };
}

/**
 * Build the guest's capabilities from an invocation: exactly the `--dir`, `--env` and `--allow-net` grants
 * and the arguments (`argv[0]` = the module's base name), plus stdio, clocks, random and log, which every
 * guest gets. A component also gets `forgeone:host/kv` on an in-memory store that lives for the run only
 * (nothing persists, nothing of the host is reachable through it).
 * @param inv - the invocation
 * @param cwd - the directory relative host paths are resolved against
 * @param kind - the guest's kind (default `core`)
 * @returns the capabilities
 * @throws UsageError for a malformed `--env`; ForgeError `INVALID_ARGUMENT` for a bad `--dir` / `--allow-net`
 */
export function execCapabilities(inv: ExecInvocation, cwd: (p: string) => string, kind: WasmKind = 'core'): Capabilities {
  const env: Record<string, string> = {};
  for (const kv of inv.env) {
    const at = kv.indexOf('=');
    if (at <= 0) throw new UsageError(`--env expects KEY=VALUE, got ${JSON.stringify(kv)}`);
    env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  const dirs: DirGrant[] = inv.dirs.map((d) => {
    const g = parseDirGrant(d);
    return { ...g, hostPath: cwd(g.hostPath) };
  });
  const net: NetGrant[] = inv.net.map((n) => parseNetGrant(n));
  return { args: [basename(inv.file), ...inv.args], env, dirs, net, stdio: true, clocks: true, random: true, log: true, ...(kind === 'component' ? { kv: true } : {}) };
}

function exitStatusOf(code: number): number {
  // Statuses outside 0–255 cannot be expressed by a process; report them as a plain failure.
  return Number.isInteger(code) && code >= 0 && code <= 255 ? code : EXIT_FAILURE;
}

/**
 * Run `forgeone exec`: a WASI preview1 module or a component in a sandbox worker, with live stdio, gated and
 * traced. A module runs `_start` and exits with its exit code. A WASI command component (it exports
 * `wasi:cli/run`, as `cargo component` and wasm32-wasip2 build them) runs like `wasmtime run` runs it: its
 * arguments are the file's base name and the words after the file, its environment only the `--env`
 * variables, and the process exits with 0 when `run` returns ok, 1 when it returns an error, or the code
 * the guest gave `wasi:cli/exit`. Any other component is run on ForgeOne's plugin ABI: its
 * `run(input: string) -> result<string, string>` export is called with the guest arguments joined by single
 * spaces as the input; an ok value is printed to stdout with a newline (status 0), an error to stderr
 * (status 1).
 * @param ctx - the CLI context (output, working directory)
 * @param inv - the parsed invocation
 * @param deps - stdin and pool options
 * @returns resolves when the result is recorded in `ctx`
 * @throws ForgeError from loading or running the guest (the CLI prints `error CODE: message`, status 1)
 */
export async function runExec(ctx: Context, inv: ExecInvocation, deps: ExecDeps = {}): Promise<void> {
  ctx.json = inv.json;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(ctx.path(inv.file)));
  } catch (cause) {
    throw new ForgeError('NOT_FOUND', `cannot read ${inv.file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const kind = detectWasmKind(bytes);
  const capabilities = execCapabilities(inv, (p) => ctx.path(p), kind);
  const limits: SandboxLimits = {
    cpuPerCallMs: inv.cpuBudgetMs ?? Number.POSITIVE_INFINITY,
    cpuTotalMs: inv.cpuBudgetMs ?? Number.POSITIVE_INFINITY,
    maxMemoryBytes: Math.floor((inv.memoryLimitMb ?? EXEC_DEFAULT_MEMORY_MB) * 1024 * 1024),
    maxOutputBytes: Number.POSITIVE_INFINITY,
  };
  const trace = inv.trace === undefined ? undefined : createJsonLinesTraceWriter(ctx.path(inv.trace));
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  const captured = { stdout: '', stderr: '' };
  const emit = (stream: 'stdout' | 'stderr', text: string): void => {
    if (text === '') return;
    if (inv.json) captured[stream] += text;
    else if (stream === 'stdout') ctx.io.stdout(text);
    else ctx.io.stderr(text);
  };
  let calls = 0;
  const host = createWasmHost({ poolOptions: { size: 0, maxContainers: 1, ...deps.poolOptions }, ...(deps.cacheDir === undefined ? {} : { cacheDir: ctx.path(deps.cacheDir) }) });
  // A component takes its stdin whole before it starts: never wait for the end of an interactive terminal.
  const stdin = deps.stdin ?? (kind === 'component' && process.stdin.isTTY ? undefined : process.stdin);
  let outcome: WasmRunOutcome | undefined;
  let failure: unknown;
  try {
    outcome = await host.run({
      module: bytes,
      capabilities,
      limits,
      retainOutput: false,
      ...(kind === 'component' ? { component: { input: inv.args.join(' ') } } : {}),
      stdio: {
        ...(stdin === undefined ? {} : { stdin }),
        stdout: (b) => emit('stdout', decoders.stdout.decode(b, { stream: true })),
        stderr: (b) => emit('stderr', decoders.stderr.decode(b, { stream: true })),
      },
      onRecords: (block: RawBlock, syscalls) => {
        calls += block.count;
        trace?.write(decodeBlock(block, syscalls));
      },
      recordBlockSize: 64,
    });
  } catch (e) {
    failure = e;
  } finally {
    emit('stdout', decoders.stdout.decode());
    emit('stderr', decoders.stderr.decode());
    trace?.close();
    await host.close();
  }
  const base = { file: inv.file, calls, ...(inv.trace === undefined ? {} : { trace: inv.trace }) };
  if (outcome !== undefined) {
    const result = outcome.result;
    // A component's answer: the ok value on stdout, the error on stderr (after what the guest wrote itself).
    if (result !== undefined && result.exitCode === undefined) {
      if (result.ok) emit('stdout', `${result.value}\n`);
      else emit('stderr', `${result.error}\n`);
    }
    const exitCode = exitStatusOf(outcome.exitCode);
    const answer = result === undefined ? {} : result.ok ? { value: result.value } : { error: result.error };
    ctx.finish({ exitCode, json: { ok: exitCode === 0, exitCode: outcome.exitCode, kind, ...answer, ...base, stdout: captured.stdout, stderr: captured.stderr }, text: [] });
    return;
  }
  if (isForgeError(failure) && failure.code === 'WASM_TRAP') {
    ctx.finish({
      exitCode: EXIT_TRAP,
      json: { ok: false, code: failure.code, message: failure.message, ...base, stdout: captured.stdout, stderr: captured.stderr },
      text: [],
      errText: [`error ${failure.code}: ${failure.message}`],
    });
    return;
  }
  throw failure;
}

/**
 * Register `forgeone exec`.
 * @param program - the root command
 * @param ctx - the context
 * @param deps - injected stdin and pool options (tests)
 */
export function registerExec(program: Command, ctx: Context, deps: ExecDeps = {}): void {
  program
    .command('exec')
    .summary('run a WASI preview1 module or a component (a WASI command or a plugin) in a sandbox, with exactly the capabilities given')
    .description(
      'Run a WASI preview1 command module or a component (like `wasmtime run`) in a ForgeOne sandbox worker. Every\n' +
        'call of the guest crosses the gate: the guest gets exactly the capabilities on the command line — its\n' +
        "arguments (argv[0] is the file's base name, then every word after the file, unchanged), --dir, --env,\n" +
        '--allow-net — plus standard input/output/error, clocks, random numbers and log. Standard streams pass\n' +
        'through live.\n\n' +
        'A WASI command component (it exports wasi:cli/run, as cargo component and wasm32-wasip2 build them) runs\n' +
        'like a module: same arguments, --env only, and its exit status (0 when run returns ok, 1 for an error, or\n' +
        'the code given to wasi:cli/exit). Another component (forgeone:host plugin ABI) has its\n' +
        '`run(input: string) -> result<string, string>` export called with the arguments after the file joined by\n' +
        'single spaces; the ok value is printed with a newline (status 0), an error goes to stderr (status 1).\n' +
        'Components also get an in-memory key-value store that lives for the run, their log lines go to stderr as\n' +
        '[level] message, and they read stdin whole before they start (not from a terminal).\n\n' +
        'Options go before the file; everything after it belongs to the guest (use `--` after the file to pass -h or\n' +
        '--version to the guest). Exit status: the guest\'s exit code (codes above 255 become 1); 134 when the guest\n' +
        'trapped; 1 with an error code for limits (SANDBOX_CPU_EXCEEDED, SANDBOX_MEMORY_EXCEEDED) and other failures.',
    )
    .argument('[file]', 'the module or component (.wasm)')
    .argument('[args...]', 'arguments for the guest')
    // -h and --help after the file belong to the guest: exec handles its own help flag before the file.
    .helpOption(false)
    .option('-h, --help', 'show help for exec')
    .option('--dir <HOST::GUEST>', 'make a host directory visible at a guest path (repeatable; HOST alone maps to the same path)')
    .option('--env <KEY=VALUE>', 'set an environment variable for the guest (repeatable)')
    .option('--allow-net <HOST:PORT>', 'allow network access to a destination (repeatable)')
    .option('--cpu-budget-ms <N>', 'CPU time the guest may spend running its code, in ms (default: no limit)')
    .option('--memory-limit-mb <N>', `largest linear memory in MiB (default ${EXEC_DEFAULT_MEMORY_MB})`)
    .option('--trace <FILE>', 'write every gated call as a JSON line to FILE')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      examples('forgeone exec hello.wasm', 'forgeone exec --dir ./data::/data app.wasm /data/in.txt --verbose', 'forgeone exec --cpu-budget-ms 2000 --trace run.jsonl loop.wasm'),
    )
    .action(async (_file: string, _args: string[], _opts: unknown, cmd: Command) => {
      // Commander also takes exec's own options after the file; re-split the raw arguments so that
      // everything after the file goes to the guest exactly as typed.
      let root: Command = cmd;
      while (root.parent !== null) root = root.parent;
      // `rawArgs` (the arguments given to parse) is set by commander at run time but not in its typings.
      const raw = (root as unknown as { rawArgs?: unknown }).rawArgs;
      if (!Array.isArray(raw)) throw new ForgeError('INTERNAL', 'commander did not expose the raw arguments');
      const { tokens, jsonBefore } = execTokens(raw.filter((t): t is string => typeof t === 'string'));
      const inv = parseExecArgs(tokens, jsonBefore);
      if (inv.help === true) cmd.help();
      await runExec(ctx, inv, deps);
    });
}
