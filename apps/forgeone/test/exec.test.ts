// `forgeone exec`: WASI preview1 modules and components in a sandbox worker with exactly the capabilities on the
// command line, live stdio, exit codes, limits and a JSON-lines trace. Real modules (WAT compiled with wabt), a
// real componentized guest (componentize-js 0.17 in a child process, cached by hash in the OS temp dir), real
// workers (the built @forgeone/execution worker).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PassThrough, type Readable } from 'node:stream';
import { CommanderError, type Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toForgeError } from '@forgeone/common';
import { parseExecArgs, registerExec } from '../src/commands/exec.js';
import { Context } from '../src/context.js';
import { UsageError } from '../src/errors.js';
import { buildProgram } from '../src/program.js';
import { REPO_ROOT, tempDir } from './helpers.js';

const IMPORTS = `
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $asg (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $ag (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $esg (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fw (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fr (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))`;
const LIB = `
  (memory (export "memory") 1)
  (data (i32.const 32) "\\n")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))
  (func $print (param $fd i32) (param $p i32) (param $n i32)
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (local.get $n))
    (drop (call $fw (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func $args (result i32) (local $e i32)
    (local.set $e (call $asg (i32.const 0) (i32.const 4)))
    (if (i32.eqz (local.get $e)) (then (local.set $e (call $ag (i32.const 1024) (i32.const 4096)))))
    (local.get $e))`;

const GUESTS: Record<string, string> = {
  // Prints each argument on a line, exits 7.
  echo: `(module ${IMPORTS} ${LIB}
    (func (export "_start") (local $i i32) (local $p i32)
      (if (call $args) (then (call $exit (i32.const 99))))
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
        (local.set $p (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (call $print (i32.const 1) (local.get $p) (call $strlen (local.get $p)))
        (call $print (i32.const 1) (i32.const 32) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (call $exit (i32.const 7))))`,
  // Opens argv[1] under fd 3, prints it, exits 3; 100 + errno on an error.
  read: `(module ${IMPORTS} ${LIB}
    (func (export "_start") (local $e i32) (local $p i32)
      (if (call $args) (then (call $exit (i32.const 99))))
      (local.set $p (i32.load (i32.const 1028)))
      (local.set $e (call $open (i32.const 3) (i32.const 1) (local.get $p) (call $strlen (local.get $p))
        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40)))
      (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
      (i32.store (i32.const 48) (i32.const 8192))
      (i32.store (i32.const 52) (i32.const 4096))
      (local.set $e (call $fr (i32.load (i32.const 40)) (i32.const 48) (i32.const 1) (i32.const 56)))
      (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
      (call $print (i32.const 1) (i32.const 8192) (i32.load (i32.const 56)))
      (call $exit (i32.const 3))))`,
  // Exits with the number of environment variables (99 when refused).
  envcount: `(module ${IMPORTS} ${LIB}
    (func (export "_start")
      (if (call $esg (i32.const 0) (i32.const 4)) (then (call $exit (i32.const 99))))
      (call $exit (i32.load (i32.const 0)))))`,
  // Copies stdin to stdout, and "to stderr" on stderr at the end.
  cat: `(module ${IMPORTS} ${LIB}
    (data (i32.const 64) "done")
    (func (export "_start") (local $e i32)
      (i32.store (i32.const 48) (i32.const 8192))
      (i32.store (i32.const 52) (i32.const 64))
      (block $d (loop $l
        (local.set $e (call $fr (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 56)))
        (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
        (br_if $d (i32.eqz (i32.load (i32.const 56))))
        (call $print (i32.const 1) (i32.const 8192) (i32.load (i32.const 56)))
        (br $l)))
      (call $print (i32.const 2) (i32.const 64) (i32.const 4))))`,
  loop: `(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`,
  grow: `(module (memory (export "memory") 1)
    (func (export "_start") (if (i32.eq (memory.grow (i32.const 1000)) (i32.const -1)) (then unreachable))))`,
  trap: `(module ${IMPORTS} ${LIB}
    (data (i32.const 64) "before the trap\\n")
    (func (export "_start") (call $print (i32.const 1) (i32.const 64) (i32.const 16)) unreachable))`,
};

const COMPONENT_FIXTURES = join(REPO_ROOT, 'packages', 'execution', 'test', 'fixtures', 'components');

/**
 * Componentize a JS guest of packages/execution's fixtures for the plugin world, exactly as that package's
 * test helper does (same child process, same cache key and file), so a build made by either is reused.
 */
async function componentize(source: string): Promise<Uint8Array> {
  const wit = join(REPO_ROOT, 'plugins', 'wit', 'forgeone.wit');
  const src = join(COMPONENT_FIXTURES, source);
  const h = createHash('sha3-256');
  h.update(await readFile(src));
  h.update(await readFile(wit));
  h.update('plugin\0-\0componentize-js@0.17.0');
  const buildDir = join(tmpdir(), 'forgeone-test-components');
  const out = join(buildDir, `${source.replace(/\W/g, '_')}-${h.digest('hex').slice(0, 24)}.wasm`);
  if (!existsSync(out)) {
    await mkdir(buildDir, { recursive: true });
    await promisify(execFile)(process.execPath, ['--import', join(COMPONENT_FIXTURES, 'lzma-stub.mjs'), join(COMPONENT_FIXTURES, 'componentize.mjs'), src, wit, 'plugin', out, '-'], {
      cwd: COMPONENT_FIXTURES,
      timeout: 240_000,
      maxBuffer: 16 << 20,
    });
  }
  return new Uint8Array(await readFile(out));
}

// A WASI command component: exports wasi:cli/run instead of the plugin ABI's run(input).
const CLI_COMMAND = `(component
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $inst (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $inst)))`;

// A component whose run(input) traps at once.
const TRAPPING = `(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 64)
    (func (export "run") (param i32 i32) (result i32) unreachable))
  (core instance $i (instantiate $m))
  (func (export "run") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "run") (memory $i "mem") (realloc (func $i "realloc")))))`;

let dir: string;
let cleanup: () => Promise<void>;
let server: Server;
let port: number;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  const wabt = await (await import('wabt')).default();
  for (const [name, text] of Object.entries(GUESTS)) {
    const m = wabt.parseWat(`${name}.wat`, text);
    writeFileSync(join(dir, `${name}.wasm`), m.toBinary({}).buffer);
    m.destroy();
  }
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'data', 'in.txt'), 'granted\n');
  writeFileSync(join(dir, 'secret.txt'), 'secret\n');
  writeFileSync(join(dir, 'plugin.wasm'), await componentize('plugin.js'));
  const { parse } = (await import('@bytecodealliance/jco')) as unknown as { parse: (wat: string) => Promise<Uint8Array> };
  writeFileSync(join(dir, 'command.wasm'), await parse(CLI_COMMAND));
  writeFileSync(join(dir, 'trapping.wasm'), await parse(TRAPPING));
  server = createServer((req, res) => res.end(`served ${req.url ?? ''}`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
}, 300_000);

afterAll(async () => {
  await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
  await cleanup?.();
});

interface ExecRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `forgeone <args>` in-process on a fresh program with `exec` registered, the way runCli does. */
async function forgeone(args: string[], stdin: Readable = new PassThrough().end()): Promise<ExecRun> {
  let stdout = '';
  let stderr = '';
  const ctx = new Context({ stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), isTTY: false, env: {}, cwd: dir }, false);
  const program = buildProgram(ctx);
  // buildProgram registers exec with the process's stdin: swap it for one reading the test's stdin, with the
  // components' transpile cache in the test's directory (the default is a per-user directory under the OS temp dir).
  const commands = program.commands as Command[];
  commands.splice(commands.findIndex((c) => c.name() === 'exec'), 1);
  registerExec(program, ctx, { stdin, cacheDir: 'component-cache' });
  let code = 0;
  try {
    await program.parseAsync(args, { from: 'user' });
    const r = ctx.result;
    if (r !== undefined) {
      if (ctx.json) stdout += `${JSON.stringify(r.json)}\n`;
      else if (r.errText !== undefined && r.errText.length > 0) stderr += `${r.errText.join('\n')}\n`;
      code = r.exitCode;
    }
  } catch (e) {
    if (e instanceof CommanderError) code = e.exitCode === 0 ? 0 : 2;
    else if (e instanceof UsageError) {
      stderr += `error: ${e.message}\n`;
      code = 2;
    } else {
      const err = toForgeError(e);
      stderr += `error ${err.code}: ${err.message}\n`;
      code = 1;
    }
  }
  return { code, stdout, stderr };
}

describe('forgeone exec', () => {
  it('passes every word after the file to the guest (argv[0] = base name) and exits with its code', async () => {
    const r = await forgeone(['exec', 'echo.wasm', '--foo', 'bar', '--dir', 'x', '--json', '-h']);
    expect(r.stdout).toBe('echo.wasm\n--foo\nbar\n--dir\nx\n--json\n-h\n');
    expect(r.code).toBe(7);
    const dashes = await forgeone(['exec', 'echo.wasm', '--', '--help']);
    expect(dashes.stdout).toBe('echo.wasm\n--help\n');
    // Before the file, -h is exec's own.
    const help = await forgeone(['exec', '-h']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: forgeone exec/);
  });

  it('parses exec options only before the file', () => {
    expect(parseExecArgs(['--dir', 'a::/a', '--env=K=V', '--cpu-budget-ms', '50', 'x.wasm', '--dir', 'b'])).toEqual({
      file: 'x.wasm',
      args: ['--dir', 'b'],
      dirs: ['a::/a'],
      env: ['K=V'],
      net: [],
      cpuBudgetMs: 50,
      json: false,
    });
    expect(() => parseExecArgs(['--bogus', 'x.wasm'])).toThrow(/unknown option/);
    expect(() => parseExecArgs(['--dir'])).toThrow(/needs a value/);
    expect(() => parseExecArgs(['--cpu-budget-ms', 'soon', 'x.wasm'])).toThrow(/positive number/);
  });

  it('reads a file from a --dir grant, refuses one outside it, and writes a JSON-lines trace', async () => {
    const ok = await forgeone(['exec', '--dir', 'data::/data', '--trace', 'run.jsonl', 'read.wasm', 'in.txt']);
    expect(ok.stdout).toBe('granted\n');
    expect(ok.code).toBe(3);
    const lines = readFileSync(join(dir, 'run.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.seq)).toEqual([...lines.keys()]);
    expect(Object.keys(lines[0]!).sort()).toEqual(['allowed', 'args', 'duration', 'result', 'resultBytes', 'rule', 'seq', 'start', 'syscall', 'verdict']);
    const open = lines.find((l) => l.syscall === 'wasi:filesystem/open');
    expect(open).toMatchObject({ allowed: true, verdict: 'allow', rule: 'granted/dirs-read', args: { path: '/data/in.txt' } });
    const read = lines.find((l) => l.syscall === 'wasi:filesystem/read');
    expect(Buffer.from(read!.resultBytes as string, 'base64').toString()).toBe('granted\n');
    expect(lines.at(-1)).toMatchObject({ syscall: 'wasi:cli/exit', args: { detail: 'code=3' } });

    const outside = await forgeone(['exec', '--dir', 'data::/data', 'read.wasm', '../secret.txt']);
    expect(outside.code).toBe(102); // EACCES: /secret.txt is outside the grant
    expect(outside.stdout).toBe('');
    const none = await forgeone(['exec', 'read.wasm', 'in.txt']);
    expect(none.code).toBe(102); // no --dir: no filesystem at all
  });

  it('gives the guest exactly the --env variables', async () => {
    expect((await forgeone(['exec', 'envcount.wasm'])).code).toBe(0);
    expect((await forgeone(['exec', '--env', 'A=1', '--env', 'B=two=2', 'envcount.wasm'])).code).toBe(2);
    expect((await forgeone(['exec', '--env', 'nope', 'envcount.wasm'])).code).toBe(2); // usage error
  });

  it('passes stdin through live and writes stderr', async () => {
    const stdin = new PassThrough();
    const running = forgeone(['exec', 'cat.wasm'], stdin);
    stdin.write('line one\n');
    setTimeout(() => stdin.end('line two\n'), 50);
    const r = await running;
    expect(r.stdout).toBe('line one\nline two\n');
    expect(r.stderr).toBe('done');
    expect(r.code).toBe(0);
  });

  it('a trap exits 134 with a message naming it, after the output written before it', async () => {
    const r = await forgeone(['exec', 'trap.wasm']);
    expect(r.code).toBe(134);
    expect(r.stdout).toBe('before the trap\n');
    expect(r.stderr).toMatch(/error WASM_TRAP: .*unreachable/);
  });

  it('enforces --cpu-budget-ms and --memory-limit-mb with their codes', async () => {
    const cpu = await forgeone(['exec', '--cpu-budget-ms', '300', 'loop.wasm']);
    expect(cpu.code).toBe(1);
    expect(cpu.stderr).toMatch(/error SANDBOX_CPU_EXCEEDED/);
    const mem = await forgeone(['exec', '--memory-limit-mb', '16', 'grow.wasm']);
    expect(mem.code).toBe(1);
    expect(mem.stderr).toMatch(/error SANDBOX_MEMORY_EXCEEDED/);
    const fits = await forgeone(['exec', '--memory-limit-mb', '128', 'grow.wasm']);
    expect(fits.code).toBe(0);
  });

  it('reports a missing or invalid module with a code', async () => {
    expect((await forgeone(['exec', 'nope.wasm'])).stderr).toMatch(/error NOT_FOUND/);
    writeFileSync(join(dir, 'bad.wasm'), 'not wasm');
    const bad = await forgeone(['exec', 'bad.wasm']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error WASM_INVALID/);
    expect((await forgeone(['exec'])).code).toBe(2);
  });

  it('with --json prints one document holding the exit code and the output', async () => {
    const r = await forgeone(['--json', 'exec', 'echo.wasm', 'a']);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 7, stdout: 'echo.wasm\na\n', file: 'echo.wasm' });
  });

  const cGuest = join(REPO_ROOT, 'plugins', 'c-guest', 'c-guest.wasm');
  it.runIf(existsSync(cGuest))('runs the C guest (clang + wasi-libc) with a --dir grant', async () => {
    const data = join(dir, 'cdata');
    mkdirSync(join(data, 'out'), { recursive: true });
    writeFileSync(join(data, 'input.txt'), 'hello forge\n');
    symlinkSync('/etc', join(data, 'escape'));
    const r = await forgeone(['exec', '--dir', `${data}::/data`, '--env', 'GREETING=hi there', cGuest, 'alpha', '7']);
    expect(r.stderr).toBe('c-guest done\n');
    expect(r.code).toBe(7);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('argv[0]=c-guest.wasm');
    expect(lines).toContain('argv[1]=alpha');
    expect(lines).toContain('GREETING=hi there');
    expect(lines).toContain('input=hello forge');
    expect(lines.some((l) => l.startsWith('outside_preopen=refused'))).toBe(true);
    expect(readFileSync(join(data, 'out', 'result.txt'), 'utf8')).toBe('upper:HELLO FORGE!\n');
  });
  describe('components', () => {
    it("calls run with the arguments joined by spaces: the ok value on stdout, exit 0; log lines on stderr", async () => {
      const r = await forgeone(['exec', 'plugin.wasm', 'hello', 'big', '--world']);
      expect(r.stdout).toBe('hi big --world\n');
      expect(r.stderr).toBe('[info] hello big --world\n');
      expect(r.code).toBe(0);
      // The guest's own stdout and stderr pass through before its answer.
      const c = await forgeone(['exec', 'plugin.wasm', 'console', 'x']);
      expect(c.stdout).toBe('out x\nlogged\n');
      expect(c.stderr).toBe('err x\n');
      const json = await forgeone(['--json', 'exec', 'plugin.wasm', 'hello', 'j']);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, exitCode: 0, kind: 'component', value: 'hi j', stdout: 'hi j\n' });
    });

    it('an error result goes to stderr with exit 1; kv lives for the run only', async () => {
      const r = await forgeone(['exec', 'plugin.wasm', 'fail', 'it', 'broke']);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('it broke\n');
      expect(r.code).toBe(1);
      expect((await forgeone(['exec', 'plugin.wasm', 'kv-set', 'k', 'v'])).stdout).toBe('ok\n');
      expect((await forgeone(['exec', 'plugin.wasm', 'kv-get', 'k'])).stdout).toBe('<none>\n');
    });

    it('fetch is denied without --allow-net (the denial is in --trace) and performed with it', async () => {
      const url = `http://127.0.0.1:${port}/p`;
      const denied = await forgeone(['exec', '--trace', 'component.jsonl', 'plugin.wasm', 'fetch', url]);
      expect(denied.code).toBe(0); // the guest answered: it caught the host error
      expect(denied.stdout).toMatch(/^host-error POLICY_DENIED /);
      const lines = readFileSync(join(dir, 'component.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => l.seq)).toEqual([...lines.keys()]);
      const fetch = lines.filter((l) => l.syscall === 'forgeone:http/fetch');
      expect(fetch).toEqual([expect.objectContaining({ allowed: false, verdict: 'deny', result: -1, args: expect.objectContaining({ host: '127.0.0.1', port }) as unknown })]);
      const allowed = await forgeone(['exec', '--allow-net', `127.0.0.1:${port}`, 'plugin.wasm', 'fetch', url]);
      expect(allowed.stdout).toBe('200 served /p\n');
      expect(allowed.code).toBe(0);
    });

    it('runs a wasi:cli/run command component (ok: exit 0); a trap exits 134; the memory limit holds, with their codes', async () => {
      const cli = await forgeone(['exec', 'command.wasm']);
      expect(cli.code).toBe(0);
      expect(cli.stdout).toBe('');
      expect(cli.stderr).toBe('');
      const trap = await forgeone(['exec', 'trapping.wasm', 'x']);
      expect(trap.code).toBe(134);
      expect(trap.stderr).toMatch(/error WASM_TRAP: .*unreachable/);
      const mem = await forgeone(['exec', '--memory-limit-mb', '1', 'plugin.wasm', 'hello']);
      expect(mem.code).toBe(1);
      expect(mem.stderr).toMatch(/error SANDBOX_MEMORY_EXCEEDED/);
    });
  });
});
