// `forgeone run` on a signed core-module package: WASI preview1 commands written in WAT (compiled with wabt),
// packed and signed with the CLI's own commands under a trust root made here, run in real sandbox workers (the
// built @forgeone/execution worker) with exactly what the manifest requests and the command line gives.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseTrace } from '@forgeone/observer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coreModuleCapabilities } from '../src/commands/run.js';
import { REPO_ROOT, keygens, ok, runIn, tempDir } from './helpers.js';

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

/** The guests: WAT text and the capabilities their manifests request. */
const GUESTS: Record<string, { wat: string; capabilities: string[] }> = {
  // Prints each argument on a line and "bye" on stderr, exits 7 (99 when the arguments are refused).
  echo: {
    capabilities: ['wasi:cli/args', 'wasi:cli/stdout', 'wasi:cli/stderr'],
    wat: `(module ${IMPORTS} ${LIB}
      (data (i32.const 64) "bye\\n")
      (func (export "_start") (local $i i32) (local $p i32)
        (if (call $args) (then (call $exit (i32.const 99))))
        (block $d (loop $l
          (br_if $d (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
          (local.set $p (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
          (call $print (i32.const 1) (local.get $p) (call $strlen (local.get $p)))
          (call $print (i32.const 1) (i32.const 32) (i32.const 1))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
        (call $print (i32.const 2) (i32.const 64) (i32.const 4))
        (call $exit (i32.const 7))))`,
  },
  // Opens argv[1] under the preopen (fd 3), prints it, exits 3; 100 + errno on an error.
  read: {
    capabilities: ['wasi:cli/args', 'wasi:cli/stdout', 'wasi:filesystem/read:/data'],
    wat: `(module ${IMPORTS} ${LIB}
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
  },
  // Creates argv[1] under the preopen (fd 3) and writes "pwned"; exits 0, or 100 + errno. Requests read access only.
  write: {
    capabilities: ['wasi:cli/args', 'wasi:filesystem/read:/data', 'wasi:filesystem/stat:/data'],
    wat: `(module ${IMPORTS} ${LIB}
      (data (i32.const 64) "pwned")
      (func (export "_start") (local $e i32) (local $p i32)
        (if (call $args) (then (call $exit (i32.const 99))))
        (local.set $p (i32.load (i32.const 1028)))
        ;; oflags O_CREAT|O_TRUNC (1|8), rights fd_write (64)
        (local.set $e (call $open (i32.const 3) (i32.const 1) (local.get $p) (call $strlen (local.get $p))
          (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 40)))
        (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
        (call $print (i32.load (i32.const 40)) (i32.const 64) (i32.const 5))
        (call $exit (i32.const 0))))`,
  },
  // Exits with the number of environment variables it sees (99 when refused).
  envcount: {
    capabilities: ['wasi:cli/env'],
    wat: `(module ${IMPORTS} ${LIB}
      (func (export "_start")
        (if (call $esg (i32.const 0) (i32.const 4)) (then (call $exit (i32.const 99))))
        (call $exit (i32.load (i32.const 0)))))`,
  },
  // Spins forever.
  loop: {
    capabilities: [],
    wat: `(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`,
  },
};

const COMPONENT_FIXTURES = join(REPO_ROOT, 'packages', 'execution', 'test', 'fixtures', 'components');

/**
 * Componentize packages/execution's plugin fixture for the plugin world, exactly as that package's test helper
 * and exec.test.ts do (same child process, cache key and file), so a build made by any of them is reused.
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

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  const wabt = await (await import('wabt')).default();
  await keygens(dir, 'root', 'publisher', 'stranger');
  await ok(dir, 'trust', 'init', '--root-key', 'root.key', '--package-key', 'publisher.key.pub', '--threshold', '1', '--out', 'trust-root.json');
  for (const [name, guest] of Object.entries(GUESTS)) {
    const pkgDir = join(dir, 'src', name);
    mkdirSync(pkgDir, { recursive: true });
    const m = wabt.parseWat(`${name}.wat`, guest.wat);
    writeFileSync(join(pkgDir, `${name}.wasm`), m.toBinary({}).buffer);
    m.destroy();
    writeFileSync(join(pkgDir, 'forgepkg.json'), JSON.stringify({ name, version: '1.0.0', entry: `${name}.wasm`, capabilities: guest.capabilities }));
    await ok(dir, 'pkg', 'build', `src/${name}`, '--out', `${name}.forgepkg`);
    await ok(dir, 'pkg', 'sign', `${name}.forgepkg`, '--key', 'publisher.key');
  }
  // A plugin component (componentized with every WASI feature of the JS engine enabled), to check that the component path still runs beside the core one.
  mkdirSync(join(dir, 'src', 'plugin'));
  writeFileSync(join(dir, 'src', 'plugin', 'plugin.wasm'), await componentize('plugin.js'));
  writeFileSync(
    join(dir, 'src', 'plugin', 'forgepkg.json'),
    JSON.stringify({ name: 'plugin', version: '1.0.0', entry: 'plugin.wasm', capabilities: ['forgeone:log/write'], metadata: { 'forgeone.capabilities': '{"log":true}', 'forgeone.engine-features': 'stdio,random,clocks' } }),
  );
  await ok(dir, 'pkg', 'build', 'src/plugin', '--out', 'plugin.forgepkg');
  await ok(dir, 'pkg', 'sign', 'plugin.forgepkg', '--key', 'publisher.key');
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'data', 'in.txt'), 'granted\n');
  writeFileSync(join(dir, 'secret.txt'), 'top secret\n');
}, 300_000);

afterAll(async () => cleanup?.());

const run = (...args: string[]) => runIn(dir, ['run', ...args.slice(0, 1), '--trust-root', 'trust-root.json', ...args.slice(1)]);

describe('forgeone run: a signed core module', () => {
  it("passes the guest's exit code, stdout and stderr through; argv[0] is the package name; the summary goes to stderr", async () => {
    const r = await run('echo.forgepkg', '--', 'alpha', '--beta');
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('echo\nalpha\n--beta\n');
    expect(r.stderr).toMatch(/^bye\n/);
    expect(r.stderr).toContain('echo@1.0.0 verified (1 of 1 signatures) and ran in ');
    expect(r.stderr).toContain('exit code: 7');
  });

  it('--json: one document with the exit code and the captured output', async () => {
    const r = await runIn(dir, ['run', 'echo.forgepkg', '--trust-root', 'trust-root.json', '--json', '--', 'x']);
    expect(r.code).toBe(7);
    expect(r.json()).toMatchObject({ ok: false, kind: 'core', code: null, exitCode: 7, stdout: 'echo\nx\n', stderr: 'bye\n', package: { name: 'echo', version: '1.0.0' } });
  });

  it('reads a file in the granted directory; a file outside it is refused, and the refusal is in the verified trace', async () => {
    const granted = await run('read.forgepkg', '--dir', 'data::/data', '--trace', 'read-ok.dna', '--', 'in.txt');
    expect(granted.code).toBe(3);
    expect(granted.stdout).toBe('granted\n');

    const outside = await run('read.forgepkg', '--dir', 'data::/data', '--trace', 'read-out.dna', '--', '../secret.txt');
    expect(outside.code).toBe(100 + 2); // EACCES: refused at the gate (/secret.txt is outside /data)
    expect(outside.stdout).toBe('');
    expect(outside.stderr).not.toContain('top secret');

    const v = await ok(dir, 'trace', 'verify', 'read-ok.dna', '--key', 'read-ok.dna.pub');
    expect(v).toMatchObject({ ok: true, complete: true });
    const okTrace = parseTrace(readFileSync(join(dir, 'read-ok.dna')));
    const read = okTrace.records.find((c) => c.syscall === 'wasi:filesystem/read');
    expect(read).toMatchObject({ allowed: true, args: { path: '/data/in.txt' } });
    expect(new TextDecoder().decode(read!.resultBytes!)).toBe('granted\n');
    expect(okTrace.header.package).toMatchObject({ name: 'read', version: '1.0.0' });

    await ok(dir, 'trace', 'verify', 'read-out.dna', '--key', 'read-out.dna.pub');
    const outTrace = parseTrace(readFileSync(join(dir, 'read-out.dna')));
    expect(outTrace.records.some((c) => c.syscall === 'wasi:filesystem/read')).toBe(false);
    const open = outTrace.records.find((c) => c.syscall === 'wasi:filesystem/open');
    // Refused at the gate by the capabilities (no rule of the kernel policy decided it), never performed.
    expect(open).toMatchObject({ args: { path: '/secret.txt' }, verdict: 'deny', allowed: false, result: -1 });
  });

  it('a directory requested for reading only is granted read-only: creating a file is refused at the gate, nothing is written', async () => {
    const r = await run('write.forgepkg', '--dir', 'data::/data', '--trace', 'write.dna', '--', 'new.txt');
    expect(r.code).toBe(100 + 2); // EACCES: creating is a write, and the read-only grant allows no writes
    expect(existsSync(join(dir, 'data', 'new.txt'))).toBe(false);
    const trace = parseTrace(readFileSync(join(dir, 'write.dna')));
    // An open with O_CREAT is decided as a write on the path; the capabilities grant /data for reading only.
    expect(trace.records.find((c) => c.args.path === '/data/new.txt')).toMatchObject({ syscall: 'wasi:filesystem/write', allowed: false, verdict: 'deny' });
    expect(trace.records.some((c) => c.syscall === 'wasi:filesystem/write' && c.allowed)).toBe(false);
  });

  it('--env only for a package requesting wasi:cli/env; the guest sees exactly those variables', async () => {
    expect((await run('envcount.forgepkg', '--env', 'A=1', '--env', 'B=2')).code).toBe(2);
    expect((await run('envcount.forgepkg')).code).toBe(0);
    const refused = await runIn(dir, ['run', 'echo.forgepkg', '--trust-root', 'trust-root.json', '--env', 'A=1', '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json()).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', message: expect.stringContaining('does not request wasi:cli/env') });
  });

  it('granting what the package did not request is refused before anything runs', async () => {
    const dirNotRequested = await runIn(dir, ['run', 'echo.forgepkg', '--trust-root', 'trust-root.json', '--dir', 'data::/data', '--json']);
    expect(dirNotRequested.json()).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('does not request filesystem access at /data') });
    const otherDir = await runIn(dir, ['run', 'read.forgepkg', '--trust-root', 'trust-root.json', '--dir', 'data::/elsewhere', '--json', '--', 'in.txt']);
    expect(otherDir.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const argsNotRequested = await runIn(dir, ['run', 'envcount.forgepkg', '--trust-root', 'trust-root.json', '--json', '--', 'x']);
    expect(argsNotRequested.json()).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('wasi:cli/args') });
    const input = await runIn(dir, ['run', 'echo.forgepkg', '--trust-root', 'trust-root.json', '--input', 'x', '--json']);
    expect(input.json()).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--input') });
  });

  it('a tampered package is refused with its code before anything runs; so is one signed by a key the root does not trust', async () => {
    const bytes = readFileSync(join(dir, 'echo.forgepkg'));
    const wasmAt = bytes.indexOf(Buffer.from([0x00, 0x61, 0x73, 0x6d]));
    expect(wasmAt).toBeGreaterThan(0);
    const tampered = Buffer.from(bytes);
    tampered[wasmAt + 40]! ^= 0x01; // inside the module
    writeFileSync(join(dir, 'tampered.forgepkg'), tampered);
    const r = await runIn(dir, ['run', 'tampered.forgepkg', '--trust-root', 'trust-root.json', '--trace', 'tampered.dna', '--', 'a']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error PKG_HASH_MISMATCH: /);
    expect(r.stdout).toBe(''); // the guest never printed its argv
    expect(existsSync(join(dir, 'tampered.dna'))).toBe(false);

    await ok(dir, 'pkg', 'build', 'src/echo', '--out', 'stranger.forgepkg');
    await ok(dir, 'pkg', 'sign', 'stranger.forgepkg', '--key', 'stranger.key');
    const s = await runIn(dir, ['run', 'stranger.forgepkg', '--trust-root', 'trust-root.json', '--json']);
    expect(s.code).toBe(1);
    expect(s.json()).toMatchObject({ ok: false, code: 'PKG_SIGNER_UNTRUSTED' });
  });

  it('a guest that spins is stopped with SANDBOX_CPU_EXCEEDED; the trace is still sealed and verifies', async () => {
    const r = await runIn(dir, ['run', 'loop.forgepkg', '--trust-root', 'trust-root.json', '--cpu-budget-ms', '300', '--trace', 'loop.dna', '--json']);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ ok: false, kind: 'core', code: 'SANDBOX_CPU_EXCEEDED', exitCode: null });
    const v = await ok(dir, 'trace', 'verify', 'loop.dna', '--key', 'loop.dna.pub');
    expect(v).toMatchObject({ ok: true, complete: true });
  });
});

describe('forgeone run: a plugin component (unchanged path)', () => {
  it('calls run(input), prints the result and the log line, and refuses core-module options', async () => {
    const r = await run('plugin.forgepkg', '--input', 'hello forge', '--cache-dir', 'component-cache', '--trace', 'plugin.dna');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('plugin@1.0.0 verified (1 of 1 signatures)');
    expect(r.stdout).toContain('log [info] hello forge');
    expect(r.stdout).toContain('result: hi forge');
    await ok(dir, 'trace', 'verify', 'plugin.dna', '--key', 'plugin.dna.pub');
    const words = await runIn(dir, ['run', 'plugin.forgepkg', '--trust-root', 'trust-root.json', '--json', '--', 'x']);
    expect(words.json()).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--input') });
  });
});

describe('coreModuleCapabilities', () => {
  const grants = { name: 'p', args: [], env: [], dirs: [] };
  it('grants nothing that was not requested', () => {
    expect(coreModuleCapabilities([], grants)).toEqual({ dirs: [], net: [], stdio: false, clocks: false, random: false, kv: false, log: false });
  });
  it('maps requests and grants: wildcards, scopes, read-only unless a write is requested', () => {
    const caps = coreModuleCapabilities(['wasi:cli/*', 'wasi:clocks/wall-clock', 'wasi:random/*', 'wasi:filesystem/*:/data', 'wasi:filesystem/read:/ro'], {
      name: 'p',
      args: ['a'],
      env: ['K=v=w'],
      dirs: [
        { hostPath: '/h/data', guestPath: '/data/sub' },
        { hostPath: '/h/ro', guestPath: '/ro' },
      ],
    });
    expect(caps).toEqual({
      args: ['p', 'a'],
      env: { K: 'v=w' },
      dirs: [
        { hostPath: '/h/data', guestPath: '/data/sub' },
        { hostPath: '/h/ro', guestPath: '/ro', readOnly: true },
      ],
      net: [],
      stdio: true,
      clocks: true,
      random: true,
      kv: false,
      log: false,
    });
  });
  it('a scoped env request limits the variables; a scope below the grant does not cover it', () => {
    expect(coreModuleCapabilities(['wasi:cli/env:GREETING'], { ...grants, env: ['GREETING=hi'] }).env).toEqual({ GREETING: 'hi' });
    expect(() => coreModuleCapabilities(['wasi:cli/env:GREETING'], { ...grants, env: ['HOME=/'] })).toThrow(/only the variables GREETING/);
    expect(() => coreModuleCapabilities(['wasi:filesystem/*:/data/out'], { ...grants, dirs: [{ hostPath: '/h', guestPath: '/data' }] })).toThrow(/filesystem access at \/data/);
    expect(() => coreModuleCapabilities(['wasi:cli/env'], { ...grants, env: ['novalue'] })).toThrow(/KEY=VALUE/);
  });
});
