// `forgeone plugin build` failures: each carries a stable code, exits 1, writes no package, and never takes
// the CLI's process down (the componentizer runs in a child process and may exit it).
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keygens, tempDir } from './helpers.js';
import { runPlugin } from './plugin-cli.js';

let dir: string;
let cleanup: () => Promise<void>;
let n = 0;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await keygens(dir, 'p1');
});
afterAll(async () => cleanup());

/** A fresh project from the template, with `change` applied; returns its directory name. */
async function project(change: { source?: string; manifest?: Record<string, unknown> } = {}): Promise<string> {
  const name = `p${++n}`;
  const made = await runPlugin(dir, ['plugin', 'new', name, '--json']);
  expect(made.code).toBe(0);
  if (change.source !== undefined) await writeFile(join(dir, name, 'src', 'index.js'), change.source);
  if (change.manifest !== undefined) {
    const file = join(dir, name, 'forgeone.plugin.json');
    const m = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...m, ...change.manifest }));
  }
  return name;
}

/** Build `name` with --json; it must fail with exit status 1 and write nothing. Returns the document. */
async function buildFails(name: string, ...extra: string[]): Promise<{ code: string; message: string; details?: Record<string, unknown> }> {
  const r = await runPlugin(dir, ['plugin', 'build', name, '--json', ...extra]);
  expect(r.code, r.stdout).toBe(1);
  const doc = r.json() as { ok: boolean; code: string; message: string; details?: Record<string, unknown> };
  expect(doc.ok).toBe(false);
  expect(await readdir(join(dir, name)).catch(() => [])).not.toContain('dist');
  return doc;
}

describe('plugin build refuses bad input with a stable code', () => {
  it('NOT_FOUND: no such directory, no manifest, no entry file, no key file', async () => {
    expect(await buildFails('nowhere')).toMatchObject({ code: 'NOT_FOUND' });

    await mkdir(join(dir, 'bare'));
    const bare = await buildFails('bare');
    expect(bare).toMatchObject({ code: 'NOT_FOUND' });
    expect(bare.message).toContain('forgeone.plugin.json');

    const noEntry = await project();
    await rm(join(dir, noEntry, 'src', 'index.js'));
    const e = await buildFails(noEntry);
    expect(e).toMatchObject({ code: 'NOT_FOUND' });
    expect(e.message).toContain('src/index.js');

    const keyless = await project();
    expect(await buildFails(keyless, '--key', 'missing.key')).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('CONFIG_INVALID: a manifest field, named by its path', async () => {
    const name = await project({ manifest: { capabilities: { log: true, http: ['https://api.example.com'] } } });
    const e = await buildFails(name);
    expect(e).toMatchObject({ code: 'CONFIG_INVALID', details: { path: 'capabilities.http[0]' } });
    expect(e.message).toContain('field capabilities.http[0]');

    const notJson = await project();
    await writeFile(join(dir, notJson, 'forgeone.plugin.json'), '{ "name": "x",');
    expect(await buildFails(notJson)).toMatchObject({ code: 'CONFIG_INVALID', details: { path: '$' } });
  });

  it('WASM_TRANSPILE_FAILED: a syntax error, with its line and column', async () => {
    const name = await project({ source: "import { write } from 'forgeone:host/log';\nexport function run(input) {\n  return 'x' +;\n}\n" });
    const e = await buildFails(name);
    expect(e).toMatchObject({ code: 'WASM_TRANSPILE_FAILED', details: { reason: 'syntax', line: 3 } });
    expect(e.message).toMatch(/syntax error in index\.js:3:\d+ SyntaxError/);
  }, 300_000);

  it('WASM_TRANSPILE_FAILED: an exception while the module initialises', async () => {
    const name = await project({ source: "throw new Error('not today');\nexport function run(input) { return input; }\n" });
    const e = await buildFails(name);
    expect(e).toMatchObject({ code: 'WASM_TRANSPILE_FAILED', details: { reason: 'init', line: 1 } });
    expect(e.message).toContain('not today');
  }, 300_000);

  it('WASM_EXPORT_MISSING: no run export', async () => {
    const e = await buildFails(await project({ source: 'export function walk(input) { return input; }\n' }));
    expect(e).toMatchObject({ code: 'WASM_EXPORT_MISSING', details: { export: 'run' } });
  }, 300_000);

  it('WASM_LINK_ERROR: an import the world does not offer, or another file', async () => {
    const e = await buildFails(await project({ source: "import { exec } from 'forgeone:host/shell';\nexport function run(i) { return exec(i); }\n" }));
    expect(e).toMatchObject({ code: 'WASM_LINK_ERROR', details: { reason: 'import', import: 'forgeone:host/shell@0.1.0' } });

    const rel = await buildFails(await project({ source: "import { x } from './util.js';\nexport function run(i) { return x(i); }\n" }));
    expect(rel).toMatchObject({ code: 'WASM_LINK_ERROR', details: { import: './util.js' } });
    expect(rel.message).toContain('bundler');
  }, 300_000);

  it('WASM_LINK_ERROR: the component imports an interface the manifest does not request (with progress on a TTY)', async () => {
    // `forgeone:host/kv` without the version is accepted as forgeone:host/kv@0.1.0.
    const name = await project({ source: "import { get } from 'forgeone:host/kv';\nexport function run(k) { const v = get(k); return v === undefined ? '' : String(v.length); }\n" });
    const r = await runPlugin(dir, ['plugin', 'build', name], { isTTY: true, env: { TERM: 'xterm' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('componentizing src/index.js');
    expect(r.stderr).toContain('\r\x1b[2Kerror WASM_LINK_ERROR: '); // the progress line is cleared before the error
    expect(r.stderr).toMatch(/forgeone:host\/kv@0\.1\.0, which forgeone\.plugin\.json does not request/);
    expect(await readdir(join(dir, name))).not.toContain('dist');
  }, 300_000);

  it('usage errors exit 2: a bad --timeout', async () => {
    const r = await runPlugin(dir, ['plugin', 'build', 'x', '--timeout', 'soon']);
    expect(r.code).toBe(2);
  });
});
