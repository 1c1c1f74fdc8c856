import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/index.js';

/** apps/forgeone */
export const APP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root. */
export const REPO_ROOT = join(APP_DIR, '..', '..');
/** The core-module sample package (hello.wasm, add(i32, i32)), a test fixture. */
export const HELLO_DIR = join(APP_DIR, 'test', 'fixtures', 'hello-core');

export const DAY = 86_400_000;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Parse stdout as exactly one JSON document (JSON.parse throws on anything else). */
  json(): Record<string, unknown>;
}

export interface RunOptions {
  isTTY?: boolean;
  env?: Record<string, string | undefined>;
}

/** Everything any run printed, so a test can check that no secret ever appeared. */
export const transcript: string[] = [];

/** Run the CLI in-process in `cwd`. */
export async function runIn(cwd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    isTTY: options.isTTY ?? false,
    env: options.env ?? {},
    cwd,
  });
  transcript.push(stdout, stderr);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

/** A fresh temporary directory; `cleanup` removes it. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'forgeone-cli-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Run and require exit status 0, returning the JSON document (the command gets `--json`). */
export async function ok(cwd: string, ...args: string[]): Promise<Record<string, unknown>> {
  const r = await runIn(cwd, [...args, '--json']);
  if (r.code !== 0) throw new Error(`forgeone ${args.join(' ')} exited ${r.code}: ${r.stdout} ${r.stderr}`);
  return r.json();
}

/** Generate key files `<name>.key` and `<name>.key.pub` in `dir`; returns name -> key id. */
export async function keygens(dir: string, ...names: string[]): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const n of names) ids[n] = (await ok(dir, 'keygen', '--out', `${n}.key`)).keyId as string;
  return ids;
}

/** Copy the sample package to `dir/<name>`, changing fields of its forgepkg.json. */
export async function sampleCopy(dir: string, name: string, changes: Record<string, unknown> = {}): Promise<string> {
  const target = join(dir, name);
  await cp(HELLO_DIR, target, { recursive: true });
  const template = JSON.parse(await readFile(join(target, 'forgepkg.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(target, 'forgepkg.json'), JSON.stringify({ ...template, ...changes }, null, 2));
  return target;
}

/** The secret key hex of a private key file. */
export async function secretOf(file: string): Promise<string> {
  return (JSON.parse(await readFile(file, 'utf8')) as { secretKey: string }).secretKey;
}
