// `forgeone plugin new` + `forgeone plugin build`: the template becomes a real, signed component package that
// `pkg verify` accepts, and the component runs (transpiled by jco, with a JS implementation of forgeone:host/log).
// Componentizing takes seconds, so this file builds once and checks everything on that one package.
import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { componentWit, transpile } from '@bytecodealliance/jco';
import { parsePackage } from '@forgeone/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keygens, ok, tempDir } from './helpers.js';
import { runPlugin } from './plugin-cli.js';

let dir: string;
let cleanup: () => Promise<void>;
let ids: Record<string, string>;
let created: Record<string, unknown>;
let built: Record<string, unknown>;
let buildStderr: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  ids = await keygens(dir, 'root', 'p1', 'p2', 'p3');
  await ok(dir, 'trust', 'init', '--root-key', 'root.key', '--package-key', 'p1.key.pub', 'p2.key.pub', 'p3.key.pub', '--threshold', '2', '--out', 'trust-root.json');
  const made = await runPlugin(dir, ['plugin', 'new', 'greeter', '--json']);
  expect(made.code).toBe(0);
  created = made.json();
  const b = await runPlugin(dir, ['plugin', 'build', 'greeter', '--key', 'p1.key', '--key', 'p2.key', '--json']);
  buildStderr = b.stderr;
  if (b.code !== 0) throw new Error(`plugin build failed: ${b.stdout} ${b.stderr}`);
  built = b.json();
}, 240_000);
afterAll(async () => cleanup());

describe('forgeone plugin new', () => {
  it('creates the project files from the template', async () => {
    expect(created).toEqual({ ok: true, name: 'greeter', dir: 'greeter', files: ['.gitignore', 'README.md', 'forgeone.plugin.json', 'package.json', 'src/index.js'] });
    const manifest = JSON.parse(await readFile(join(dir, 'greeter', 'forgeone.plugin.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ name: 'greeter', version: '0.1.0', entry: 'src/index.js', world: 'forgeone:host/plugin@0.1.0', capabilities: { log: true } });
    expect(await readFile(join(dir, 'greeter', 'src', 'index.js'), 'utf8')).toContain("from 'forgeone:host/log@0.1.0'");
    const readme = await readFile(join(dir, 'greeter', 'README.md'), 'utf8');
    for (const field of ['capabilities', 'engineFeatures', 'preopens', 'http', 'validDays']) expect(readme).toContain(`\`${field}\``);
  });

  it('refuses to write into an existing directory (ALREADY_EXISTS), leaving it as it was', async () => {
    await writeFile(join(dir, 'greeter', 'src', 'index.js'), '// mine\n');
    const r = await runPlugin(dir, ['plugin', 'new', 'greeter', '--json']);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ ok: false, code: 'ALREADY_EXISTS' });
    expect(await readFile(join(dir, 'greeter', 'src', 'index.js'), 'utf8')).toBe('// mine\n');

    await mkdir(join(dir, 'empty'));
    const empty = await runPlugin(dir, ['plugin', 'new', 'other', '--dir', 'empty']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^error ALREADY_EXISTS: empty already exists/);
    expect(await readdir(join(dir, 'empty'))).toEqual([]);

    await writeFile(join(dir, 'afile'), 'x');
    expect((await runPlugin(dir, ['plugin', 'new', 'x', '--dir', 'afile', '--json'])).json()).toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(await readFile(join(dir, 'afile'), 'utf8')).toBe('x');
  });

  it('refuses a name that is not a package name (INVALID_ARGUMENT) and creates nothing', async () => {
    const r = await runPlugin(dir, ['plugin', 'new', 'Bad Name', '--json']);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(stat(join(dir, 'Bad Name'))).rejects.toThrow();
  });

  it('creates scoped projects under --dir, parents included', async () => {
    const r = await runPlugin(dir, ['plugin', 'new', '@acme/counter', '--dir', 'nested/counter', '--json']);
    expect(r.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(dir, 'nested', 'counter', 'forgeone.plugin.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest.name).toBe('@acme/counter');
  });
});

describe('forgeone plugin build', () => {
  it('writes a signed package to <dir>/dist/<name>.forgepkg and reports what is in it', () => {
    expect(built).toMatchObject({
      ok: true,
      file: join('greeter', 'dist', 'greeter.forgepkg'),
      name: 'greeter',
      version: '0.1.0',
      entry: 'plugin.wasm',
      world: 'forgeone:host/plugin@0.1.0',
      capabilities: ['forgeone:log/write'],
      exports: ['run'],
      signers: [ids.p1, ids.p2],
      files: ['README.md', 'forgeone.plugin.json', 'plugin.wasm', 'src/index.js'],
    });
    // With every engine feature disabled the component imports its world's interfaces and nothing of WASI.
    expect(built.imports).toEqual(['forgeone:host/log@0.1.0', 'forgeone:host/types@0.1.0']);
    expect(built.componentSize).toBeGreaterThan(1_000_000);
    expect(buildStderr).toBe(''); // nothing of the componentizer leaks onto the CLI's streams
  });

  it('pkg verify accepts it under the trust root (2 of 3 package keys)', async () => {
    const v = await ok(dir, 'pkg', 'verify', join('greeter', 'dist', 'greeter.forgepkg'), '--trust-root', 'trust-root.json');
    expect(v).toMatchObject({ ok: true, name: 'greeter', version: '0.1.0', threshold: 2, digest: built.digest });
    expect([...(v.signers as string[])].sort()).toEqual([ids.p1, ids.p2].sort());
  });

  it('records the requested capabilities and the component interface in the manifest metadata', async () => {
    const inspected = await ok(dir, 'pkg', 'inspect', join('greeter', 'dist', 'greeter.forgepkg'));
    const manifest = inspected.manifest as { metadata: Record<string, string>; capabilities: string[] };
    expect(manifest.capabilities).toEqual(['forgeone:log/write']);
    expect(JSON.parse(manifest.metadata['forgeone.capabilities']!)).toEqual({ http: [], identity: false, info: false, kv: false, log: true, preopens: [], time: false });
    expect(manifest.metadata).toMatchObject({
      'forgeone.kind': 'plugin',
      'forgeone.world': 'forgeone:host/plugin@0.1.0',
      'forgeone.source': 'src/index.js',
      'forgeone.imports': 'forgeone:host/log@0.1.0,forgeone:host/types@0.1.0',
      'forgeone.exports': 'run',
      'forgeone.engine-features': '',
    });
    expect(manifest.metadata['forgeone.built-by']).toMatch(/^@forgeone\/cli@\S+ componentize-js@0\.17\.0$/);
  });

  it('packs a real component: jco reads its WIT, and, transpiled, run() logs through forgeone:host/log and returns', async () => {
    const parsed = parsePackage(await readFile(join(dir, 'greeter', 'dist', 'greeter.forgepkg')));
    if (!parsed.ok) throw parsed.error;
    const component = parsed.value.files.get('plugin.wasm')!;
    expect(Buffer.from(component.subarray(0, 8)).toString('hex')).toBe('0061736d0d000100'); // component layer, not a core module
    const wit = await componentWit(component);
    expect(wit).toContain('import forgeone:host/log@0.1.0;');
    expect(wit).toMatch(/export run: func\(input: string\) -> result<string, string>;/);
    expect(wit).not.toContain('wasi:');

    const { files } = await transpile(component, { name: 'greeter', instantiation: 'async' });
    const out = join(dir, 'transpiled');
    for (const [name, bytes] of Object.entries(files)) {
      await mkdir(join(out, name, '..'), { recursive: true });
      await writeFile(join(out, name), bytes);
    }
    const mod = (await import(pathToFileURL(join(out, 'greeter.js')).href)) as {
      instantiate: (getCoreModule: (path: string) => Promise<unknown>, imports: Record<string, unknown>) => Promise<{ run: (input: string) => string }>;
    };
    const logged: [string, string][] = [];
    const wasm = (globalThis as unknown as { WebAssembly: { compile: (b: Uint8Array) => Promise<unknown> } }).WebAssembly;
    const instance = await mod.instantiate(async (path) => wasm.compile(await readFile(join(out, path))), {
      'forgeone:host/log': { write: (level: string, message: string) => void logged.push([level, message]) },
      'forgeone:host/types': {},
    });
    expect(instance.run('ForgeOne')).toBe('Hello, ForgeOne!');
    expect(instance.run('')).toBe('Hello, world!');
    expect(logged).toEqual([
      ['info', 'Hello, ForgeOne!'],
      ['info', 'Hello, world!'],
    ]);
  }, 300_000);
});
