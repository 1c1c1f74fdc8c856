// WASI command components (they export wasi:cli/run@0.2.x `run: func() -> result`, as `cargo component` and
// wasm32-wasip2 build them): run in place and on builtin:component in real sandbox workers. The guest is the
// hand-written fixtures/command.wat: it prints its arguments and ends as its first argument says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildComponentImports, defaultExport, instantiateComponent, isCommandExport, runComponent, transpileComponent, type LoadedComponent } from '../../src/component/index.js';
import { decodeBlock, type CallRecord } from '../../src/gate/index.js';
import { replayComponent } from '../../src/replay/index.js';
import { createWasmHost, type WasmHost } from '../../src/runtime/index.js';
import { buildWorker, rejection } from '../sandbox/helpers.js';
import { tempDir } from '../wasi/helpers.js';
import { commandComponent } from './command-fixture.js';
import { allowAllExcept, policyGate } from './helpers.js';

let bytes: Uint8Array;
let loaded: LoadedComponent;
const text = (b: Uint8Array | readonly Uint8Array[]): string => (b instanceof Uint8Array ? new TextDecoder().decode(b) : b.map((x) => new TextDecoder().decode(x)).join(''));

beforeAll(async () => {
  bytes = await commandComponent();
  loaded = await transpileComponent(bytes);
}, 120_000);

/** Run the command in place with `args` under an allow-all policy (minus `deny`). */
function runHere(args: string[], ...deny: string[]): { outcome: ReturnType<typeof runComponent>; stdout: string; records: CallRecord[] } {
  const { gate, recorder } = policyGate(allowAllExcept(...deny));
  const out: Uint8Array[] = [];
  const outcome = runComponent(loaded, buildComponentImports({ gate, args, stdout: (b) => out.push(b.slice()) }), { input: 'ignored' });
  return { outcome, stdout: text(out), records: recorder.flush() };
}

describe('a WASI command component in place', () => {
  it('is recognised by its wasi:cli/run export: the default export runs it', () => {
    expect(loaded.exports.map(([n]) => n)).toContain('wasi:cli/run@0.2.0');
    expect(defaultExport(loaded.exports)).toBe('wasi:cli/run');
    expect(defaultExport([['run', 'function']])).toBe('run');
    for (const name of ['wasi:cli/run', 'wasi:cli/run@0.2.0', 'wasi:cli/run@0.2.3#run']) expect(isCommandExport(name), name).toBe(true);
    expect(isCommandExport('run')).toBe(false);
  });

  it('ok is exit 0, err exit 1, exit-with-code its code, exit(err) 1; stdout holds its arguments', () => {
    const ok = runHere(['cmd', 'hello', 'big world']);
    expect(ok.outcome).toEqual({ ok: true, value: '', exitCode: 0 });
    expect(ok.stdout).toBe('cmd\nhello\nbig world\n');
    expect(runHere(['cmd', 'err']).outcome).toEqual({ ok: false, error: 'the command returned an error', exitCode: 1 });
    expect(runHere(['cmd', '42']).outcome).toMatchObject({ ok: false, exitCode: 42 });
    expect(runHere(['cmd', '0']).outcome).toEqual({ ok: true, value: '', exitCode: 0 });
    expect(runHere(['cmd', 'exit-err']).outcome).toMatchObject({ ok: false, exitCode: 1 });
    // The versioned name runs it too, and so does the interface's function.
    const { gate } = policyGate(allowAllExcept());
    const instance = instantiateComponent(loaded, buildComponentImports({ gate, args: ['cmd', '7'] }));
    expect(instance.call({ export: 'wasi:cli/run@0.2.0#run', input: '' })).toMatchObject({ exitCode: 7 });
  });

  it('reads stdin through the gate and writes stderr ("cat")', () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    const input = 'line one\n'.repeat(5000);
    const stdin = new TextEncoder().encode(input);
    const outcome = runComponent(loaded, buildComponentImports({ gate, args: ['cmd', 'cat'], stdin, stdout: (b) => out.push(b.slice()), stderr: (b) => err.push(b.slice()) }), { input: '' });
    expect(outcome).toEqual({ ok: true, value: '', exitCode: 0 });
    expect(text(out)).toBe(`cmd\ncat\n${input}`);
    expect(text(err)).toBe('cat done\n');
    const reads = recorder.flush().filter((r) => r.syscall === 'wasi:cli/stdin' && r.args.size !== undefined);
    expect(reads.reduce((n, r) => n + (r.resultBytes?.length ?? 0), 0)).toBe(stdin.length);
    expect(reads.at(-1)!.result).toBe(1); // the read that found the end of the stream
  });

  it('every call crosses the gate: arguments, the stdout handout, each write, the drop, the exit', () => {
    const { records } = runHere(['cmd', '3']);
    expect(records.map((r) => [r.syscall, r.args.detail ?? null, r.args.size ?? null])).toEqual([
      ['wasi:cli/args', null, null],
      ['wasi:cli/stdout', 'get-stdout', null],
      ['wasi:cli/stdout', null, 3],
      ['wasi:cli/stdout', null, 1],
      ['wasi:cli/stdout', null, 1],
      ['wasi:cli/stdout', null, 1],
      ['wasi:io/drop', 'stdout', null],
      ['wasi:cli/exit', '3', null],
    ]);
  });

  it('a refused stdout traps with the refusal code (get-stdout has no error case)', () => {
    const e = (() => {
      try {
        runHere(['cmd', 'x'], 'wasi:cli/stdout');
      } catch (err) {
        return err as { code?: string; details?: unknown };
      }
      throw new Error('expected a trap');
    })();
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.details).toMatchObject({ syscall: 'wasi:cli/stdout', rule: 'base/no' });
  });

  it('replays identically when the export is named', async () => {
    const { records, stdout } = runHere(['cmd', '5', 'replay me']);
    const report = await replayComponent({ records, component: loaded, export: 'wasi:cli/run' });
    expect(report.divergence).toBeNull();
    expect(report.outcome).toMatchObject({ exitCode: 5 });
    expect(text(report.stdout)).toBe(stdout);
  });
});

describe('a WASI command component on builtin:component', () => {
  let built: Awaited<ReturnType<typeof buildWorker>>;
  let host: WasmHost;
  let cache: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    cache = tempDir('forgeone-command-');
    built = await buildWorker();
    host = createWasmHost({ poolOptions: { size: 1, maxContainers: 2, workerUrl: built.url }, cacheDir: cache.dir });
    await host.pool.ready();
  }, 120_000);

  afterAll(async () => {
    await host?.close();
    built?.cleanup();
    cache?.cleanup();
  });

  it('runs with the granted arguments; the exit code is the guest\'s, stdout streams, records come back', async () => {
    const out: Uint8Array[] = [];
    const records: CallRecord[] = [];
    const r = await host.run({
      module: bytes,
      capabilities: { args: ['cmd', '9', 'two words'], stdio: true },
      stdio: { stdout: (b) => out.push(b.slice()) },
      onRecords: (b, syscalls) => records.push(...decodeBlock(b, syscalls)),
    });
    expect(r.exitCode).toBe(9);
    expect(r.result).toMatchObject({ ok: false, exitCode: 9 });
    expect(text(out)).toBe('cmd\n9\ntwo words\n');
    expect(records.map((x) => [x.syscall, x.rule])).toContainEqual(['wasi:io/drop', 'granted/plumbing']);
    expect(records.at(-1)).toMatchObject({ syscall: 'wasi:cli/exit', args: { detail: '9' }, allowed: true });
    const ok = await host.run({ module: bytes, capabilities: { args: ['cmd'], stdio: true }, component: { export: 'wasi:cli/run' } });
    expect(ok.exitCode).toBe(0);
    expect(text(ok.stdout)).toBe('cmd\n');
  });

  it('takes its stdin and passes stderr through', async () => {
    const err: Uint8Array[] = [];
    const r = await host.run({ module: bytes, capabilities: { args: ['cmd', 'cat'], stdio: true }, stdio: { stdin: 'from the host\n', stderr: (b) => err.push(b.slice()) } });
    expect(r.exitCode).toBe(0);
    expect(text(r.stdout)).toBe('cmd\ncat\nfrom the host\n');
    expect(text(err)).toBe('cat done\n');
  });

  it('without stdio granted the guest traps at get-stdout with POLICY_DENIED; without args at get-arguments', async () => {
    const noStdout = await rejection(host.run({ module: bytes, capabilities: { args: ['cmd'], stdio: false } }));
    expect(noStdout.code).toBe('POLICY_DENIED');
    expect(noStdout.details).toMatchObject({ syscall: 'wasi:cli/stdout' });
    const noArgs = await rejection(host.run({ module: bytes, capabilities: { stdio: true } }));
    expect(noArgs.code).toBe('POLICY_DENIED');
    expect(noArgs.details).toMatchObject({ syscall: 'wasi:cli/args' });
  });
});
