// `forgeone exec` of a WASI command component (it exports wasi:cli/run@0.2.0), run as the built binary in a
// child process: the guest's arguments are the words after the file, stdin/stdout/stderr pass through, the
// process exits with the guest's exit code. The guest is packages/execution's hand-written
// test/component/fixtures/command.wat: it prints its arguments and ends as its first argument says.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_DIR, REPO_ROOT, tempDir } from './helpers.js';

const BIN = join(APP_DIR, 'dist', 'cli.js');
const WAT = join(REPO_ROOT, 'packages', 'execution', 'test', 'component', 'fixtures', 'command.wat');
let dir: string;
let cleanup: () => Promise<void>;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built binary in the test directory, with `stdin` written to it (closed at once when omitted). */
function forgeone(args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', TMPDIR: dir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (turbo runs build before test)`);
  ({ dir, cleanup } = await tempDir());
  const { parse } = (await import('@bytecodealliance/jco')) as unknown as { parse: (wat: string) => Promise<Uint8Array> };
  await writeFile(join(dir, 'command.wasm'), await parse(await readFile(WAT, 'utf8')));
}, 120_000);

afterAll(async () => cleanup?.());

describe('forgeone exec of a WASI command component (child process)', () => {
  it('passes the words after the file as arguments (argv[0] = base name) and exits with the code the guest gave exit', async () => {
    const r = await forgeone(['exec', 'command.wasm', '42', '--verbose', 'two words']);
    expect(r.stdout).toBe('command.wasm\n42\n--verbose\ntwo words\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(42);
  }, 60_000);

  it('ok from run is status 0, err is 1; exit(err) is 1', async () => {
    const ok = await forgeone(['exec', 'command.wasm', 'fine']);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('command.wasm\nfine\n');
    const err = await forgeone(['exec', 'command.wasm', 'err']);
    expect(err.status).toBe(1);
    expect(err.stdout).toBe('command.wasm\nerr\n');
    expect((await forgeone(['exec', 'command.wasm', 'exit-err'])).status).toBe(1);
  }, 60_000);

  it('passes stdin, stdout and stderr through', async () => {
    const input = 'first line\nsecond line\n'.repeat(200);
    const r = await forgeone(['exec', 'command.wasm', 'cat'], input);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`command.wasm\ncat\n${input}`);
    expect(r.stderr).toBe('cat done\n');
  }, 60_000);

  it('--json reports the exit code; --trace has every crossing, bookkeeping included', async () => {
    const json = await forgeone(['--json', 'exec', 'command.wasm', '3']);
    expect(json.status).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, exitCode: 3, kind: 'component', stdout: 'command.wasm\n3\n' });
    const traced = await forgeone(['exec', '--trace', 'cmd.jsonl', 'command.wasm', '5']);
    expect(traced.status).toBe(5);
    const lines = readFileSync(join(dir, 'cmd.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { syscall: string; args: Record<string, unknown>; allowed: boolean; rule: string });
    expect(lines.map((l) => l.syscall)).toEqual([
      'wasi:cli/args',
      'wasi:cli/stdout',
      'wasi:cli/stdout',
      'wasi:cli/stdout',
      'wasi:cli/stdout',
      'wasi:cli/stdout',
      'wasi:io/drop',
      'wasi:cli/exit',
    ]);
    expect(lines[1]).toMatchObject({ args: { detail: 'get-stdout' }, allowed: true, rule: 'granted/stdio' });
    expect(lines[6]).toMatchObject({ args: { detail: 'stdout' }, allowed: true, rule: 'granted/plumbing' });
    expect(lines[7]).toMatchObject({ args: { detail: '5' }, allowed: true });
  }, 60_000);
});
