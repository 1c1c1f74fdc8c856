// The example plugins (plugins/hello, kv-counter, fetcher, rogue) build with `forgeone plugin build`, import only
// what they request, and behave: each component is transpiled by jco and run against JS implementations of the
// forgeone:host interfaces (the real host, packages/execution, will run them in the lead's tests). Each example
// is componentized once.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transpile } from '@bytecodealliance/jco';
import { parsePackage } from '@forgeone/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, keygens, ok, tempDir } from './helpers.js';
import { runPlugin } from './plugin-cli.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await keygens(dir, 'root', 'dev');
  await ok(dir, 'trust', 'init', '--root-key', 'root.key', '--package-key', 'dev.key.pub', '--threshold', '1', '--out', 'trust-root.json');
});
afterAll(async () => cleanup());

type Run = (input: string) => string;
type HostError = { payload: { code: string; message: string } };

/** A host call's failure as jco expects it: thrown, with the host-error record as `payload`. */
function refuse(code: string, message: string): never {
  throw Object.assign(new Error(message), { payload: { code, message } }) as Error & HostError;
}

/** Build plugins/<name> into the temp directory (signed by dev), verify it, and return the built document. */
async function buildExample(name: string): Promise<Record<string, unknown>> {
  const out = `${name}.forgepkg`;
  const r = await runPlugin(dir, ['plugin', 'build', join(REPO_ROOT, 'plugins', name), '--out', out, '--key', 'dev.key', '--json']);
  if (r.code !== 0) throw new Error(`building ${name} failed: ${r.stdout}${r.stderr}`);
  const v = await ok(dir, 'pkg', 'verify', out, '--trust-root', 'trust-root.json');
  expect(v).toMatchObject({ ok: true, name, version: '1.0.0' });
  return r.json();
}

/** Transpile the package's component with jco and instantiate it with `imports` (interface name → functions). */
async function instantiate(name: string, imports: Record<string, Record<string, unknown>>): Promise<Run> {
  const parsed = parsePackage(await readFile(join(dir, `${name}.forgepkg`)));
  if (!parsed.ok) throw parsed.error;
  const { files } = await transpile(parsed.value.files.get('plugin.wasm')!, { name, instantiation: 'async' });
  const out = join(dir, `${name}-js`);
  for (const [file, bytes] of Object.entries(files)) {
    await mkdir(join(out, file, '..'), { recursive: true });
    await writeFile(join(out, file), bytes);
  }
  const mod = (await import(pathToFileURL(join(out, `${name}.js`)).href)) as {
    instantiate: (get: (path: string) => Promise<unknown>, imports: Record<string, unknown>) => Promise<{ run: Run }>;
  };
  const wasm = (globalThis as unknown as { WebAssembly: { compile: (b: Uint8Array) => Promise<unknown> } }).WebAssembly;
  const all = { 'forgeone:host/types': {}, ...imports };
  return (await mod.instantiate(async (path) => wasm.compile(await readFile(join(out, path))), all)).run;
}

/** Call run; an `err` result comes back as a thrown error whose payload is the string. */
function call(run: Run, input: string): { ok: string } | { err: string } {
  try {
    return { ok: run(input) };
  } catch (e) {
    const payload = (e as { payload?: unknown }).payload;
    return { err: typeof payload === 'string' ? payload : String(e) };
  }
}

describe('example plugins', () => {
  it('hello: imports log only, and greets', async () => {
    const built = await buildExample('hello');
    expect(built).toMatchObject({ capabilities: ['forgeone:log/write'], imports: ['forgeone:host/log@0.1.0', 'forgeone:host/types@0.1.0'], exports: ['run'] });
    const logged: string[] = [];
    const run = await instantiate('hello', { 'forgeone:host/log': { write: (_level: string, m: string) => void logged.push(m) } });
    expect(call(run, 'ForgeOne')).toEqual({ ok: 'Hello, ForgeOne!' });
    expect(logged).toEqual(['Hello, ForgeOne!']);
  }, 300_000);

  it('kv-counter: counts in the kv store across runs, per name, and reports a refused kv call', async () => {
    const built = await buildExample('kv-counter');
    expect(built.imports).toEqual(['forgeone:host/kv@0.1.0', 'forgeone:host/log@0.1.0', 'forgeone:host/types@0.1.0']);
    expect(built.capabilities).toEqual(['forgeone:kv/delete', 'forgeone:kv/get', 'forgeone:kv/list', 'forgeone:kv/set', 'forgeone:log/write']);
    const store = new Map<string, Uint8Array>();
    let deny = false;
    const run = await instantiate('kv-counter', {
      'forgeone:host/log': { write: () => undefined },
      'forgeone:host/kv': {
        get: (k: string) => (deny ? refuse('POLICY_DENIED', `kv get ${k} denied`) : store.get(k)),
        set: (k: string, v: Uint8Array) => void store.set(k, Uint8Array.from(v)),
        delete: (k: string) => store.delete(k),
        list: (p: string) => [...store.keys()].filter((k) => k.startsWith(p)).sort(),
      },
    });
    expect([call(run, ''), call(run, ''), call(run, 'b'), call(run, '')]).toEqual([{ ok: '1' }, { ok: '2' }, { ok: '1' }, { ok: '3' }]);
    expect(new TextDecoder().decode(store.get('counter'))).toBe('3');
    store.set('counter', new TextEncoder().encode('junk'));
    expect(call(run, '')).toEqual({ err: expect.stringContaining('not a counter') });
    deny = true;
    expect(call(run, 'b')).toEqual({ err: 'kv get counter/b: POLICY_DENIED: kv get counter/b denied' });
  }, 300_000);

  it('fetcher: returns status and body length, and the host code of a refused fetch', async () => {
    const built = await buildExample('fetcher');
    expect(built.capabilities).toEqual(['forgeone:http/fetch:*.example.com:443', 'forgeone:http/fetch:example.com:443', 'forgeone:log/write']);
    const seen: { method: string; url: string }[] = [];
    const run = await instantiate('fetcher', {
      'forgeone:host/log': { write: () => undefined },
      'forgeone:host/http': {
        fetch: (req: { method: string; url: string }) => {
          seen.push({ method: req.method, url: req.url });
          if (!req.url.startsWith('https://example.com/')) refuse('POLICY_DENIED', `${new URL(req.url).host} is not allowed`);
          return { status: 200, headers: [['content-type', 'text/html']], body: new Uint8Array(1256) };
        },
      },
    });
    expect(call(run, 'https://example.com/')).toEqual({ ok: JSON.stringify({ url: 'https://example.com/', status: 200, bytes: 1256 }) });
    expect(call(run, 'https://evil.example.net/')).toEqual({ err: 'fetch https://evil.example.net/: POLICY_DENIED: evil.example.net is not allowed' });
    expect(call(run, 'ftp://x')).toEqual({ err: expect.stringContaining('input must be an http(s) URL') });
    expect(seen).toEqual([
      { method: 'GET', url: 'https://example.com/' },
      { method: 'GET', url: 'https://evil.example.net/' },
    ]);
  }, 300_000);

  it('rogue: every file and network attempt reports refused under a deny-all host, and is logged as it happens', async () => {
    const built = await buildExample('rogue');
    expect(built.imports).toEqual(['forgeone:host/http@0.1.0', 'forgeone:host/kv@0.1.0', 'forgeone:host/log@0.1.0', 'forgeone:host/types@0.1.0']);
    const logged: [string, string][] = [];
    const denied: string[] = [];
    const deny = (what: string) => (...args: unknown[]) => {
      denied.push(`${what} ${JSON.stringify(args[0])}`);
      return refuse('POLICY_DENIED', `${what} denied`);
    };
    const run = await instantiate('rogue', {
      'forgeone:host/log': { write: (level: string, m: string) => void logged.push([level, m]) },
      'forgeone:host/kv': { get: deny('kv get'), set: deny('kv set'), delete: deny('kv delete'), list: deny('kv list') },
      'forgeone:host/http': { fetch: (req: { url: string }) => deny('fetch')(req.url) },
    });
    for (const attempt of ['passwd', 'write-outside', 'dotdot', 'symlink', 'net']) {
      const r = call(run, attempt);
      if (!('ok' in r)) throw new Error(`rogue ${attempt} failed: ${r.err}`);
      const report = JSON.parse(r.ok) as Record<string, { outcome: string; detail: string }>;
      expect(report[attempt]!.outcome, report[attempt]!.detail).toBe('refused');
      expect(report[attempt]!.detail).toContain('POLICY_DENIED');
    }
    expect(denied).toContain('fetch "file:///etc/passwd"');
    expect(denied).toContain('kv set "../../other-container/owned"');
    expect(denied).toContain('fetch "http://169.254.169.254/latest/meta-data/"');
    expect(logged.filter(([level]) => level === 'error')).toEqual([]); // nothing was ALLOWED
    expect(logged).toContainEqual(['info', expect.stringMatching(/^rogue: net refused: /)]);

    // A host that lets everything through is caught by the report.
    const open = await instantiate('rogue', {
      'forgeone:host/log': { write: () => undefined },
      'forgeone:host/kv': { get: () => new TextEncoder().encode('root:x:0:0'), set: () => undefined, delete: () => false, list: () => [] },
      'forgeone:host/http': { fetch: () => ({ status: 200, headers: [], body: new Uint8Array(3) }) },
    });
    const leaky = JSON.parse((call(open, 'passwd') as { ok: string }).ok) as Record<string, { outcome: string }>;
    expect(leaky.passwd!.outcome).toBe('ALLOWED');
    expect(call(open, 'nope')).toEqual({ err: expect.stringContaining('unknown attempt') });
  }, 300_000);
});
