import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ForgeError } from '@forgeone/common';
import { PluginErrorCodes } from './errors.js';
import type { EngineFeature } from './manifest.js';
import { ENGINE_FEATURES } from './manifest.js';

/** The pinned componentizer (JavaScript to component: SpiderMonkey embedding + Wizer). */
export const COMPONENTIZE_JS_PACKAGE = '@bytecodealliance/componentize-js';
/** The pinned component toolchain (used to read back the component's WIT). */
export const JCO_PACKAGE = '@bytecodealliance/jco';

/** What to componentize. */
export interface ComponentizeRequest {
  /** The JavaScript module's text. */
  readonly source: string;
  /** The file name shown in error messages (a bare name ending in `.js`). */
  readonly sourceName: string;
  /** A WIT file or directory (with `deps/`) holding the world. */
  readonly witPath: string;
  /** The world to target. */
  readonly world: string;
  /** Engine features to keep; every other one is disabled. */
  readonly features: readonly EngineFeature[];
  /** Kill the componentizer after this long. Default 10 minutes. */
  readonly timeoutMs?: number;
  /** Called about every half second while it runs, with the time spent. */
  readonly onTick?: (elapsedMs: number) => void;
}

/** A componentized plugin. */
export interface ComponentizeResult {
  /** The component's bytes. */
  readonly component: Uint8Array;
  /** The component's imports (interfaces or functions), sorted, e.g. `forgeone:host/log@0.1.0`. */
  readonly imports: readonly string[];
  /** The component's exports, sorted, e.g. `run`. */
  readonly exports: readonly string[];
  /** The component's WIT as read back from the binary. */
  readonly wit: string;
  /** The componentizer's version. */
  readonly componentizeVersion: string;
}

/**
 * Find an installed package's directory by walking the same `node_modules` chain Node would search from this
 * file (the packages are ESM-only, so `require.resolve` cannot name them).
 */
function packageDir(name: string): string {
  const require = createRequire(import.meta.url);
  for (const base of require.resolve.paths(name) ?? []) {
    const dir = join(base, name);
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new ForgeError(PluginErrorCodes.missing, `${name} is not installed; reinstall @forgeone/cli`);
}

function packageEntry(name: string, fallback: string): { url: string; version: string } {
  const dir = packageDir(name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string; exports?: unknown };
  const exp = pkg.exports as { import?: unknown; '.'?: { default?: unknown } } | undefined;
  const rel = typeof exp?.import === 'string' ? exp.import : typeof exp?.['.']?.default === 'string' ? exp['.'].default : fallback;
  return { url: pathToFileURL(join(dir, rel)).href, version: pkg.version ?? 'unknown' };
}

/**
 * The child process's program. It stubs `@bytecodealliance/weval` (ahead-of-time compilation, never used here;
 * its module downloads a binary and needs a native LZMA binding that Node 20 does not get), componentizes, reads
 * the component's WIT back with jco, and writes the component and a JSON report next to each other.
 */
const CHILD = String.raw`
import { register } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
const stub = 'data:text/javascript,' + encodeURIComponent('export default async function getWeval() { throw new Error("ahead-of-time compilation is disabled"); }');
const hooks = 'export async function resolve(s, c, n) { return s === "@bytecodealliance/weval" ? { url: ' + JSON.stringify(stub) + ', shortCircuit: true } : n(s, c); }';
register('data:text/javascript,' + encodeURIComponent(hooks));
const job = JSON.parse(readFileSync(0, 'utf8'));
const report = (r) => writeFileSync(job.reportPath, JSON.stringify(r));
try {
  const { componentize } = await import(job.componentizeUrl);
  const { componentWit } = await import(job.jcoUrl);
  const source = readFileSync(job.sourcePath, 'utf8');
  const { component } = await componentize(source, { sourceName: job.sourceName, witPath: job.witPath, worldName: job.world, disableFeatures: job.disableFeatures });
  writeFileSync(job.componentPath, component);
  report({ ok: true, wit: await componentWit(component) });
} catch (e) {
  report({ ok: false, name: e && e.name ? String(e.name) : 'Error', message: e && e.message ? String(e.message) : String(e) });
  process.exitCode = 1;
}
`;

/** The interface and function names after `import` / `export` in the `world root { ... }` of a component's WIT. */
function worldItems(wit: string, keyword: 'import' | 'export'): string[] {
  const out = new Set<string>();
  // `import forgeone:host/log@0.1.0;` (an interface) or `export run: func(...)` (a function).
  const re = new RegExp(`^\\s*${keyword}\\s+(?:%?([a-z][a-z0-9-]*)\\s*:\\s*(?:func|async)\\b|([^\\s;]+)\\s*;)`, 'gm');
  for (const m of wit.matchAll(re)) out.add(m[1] ?? m[2]!);
  return [...out].sort();
}

/** Lines of the componentizer's output that say what went wrong (SpiderMonkey prints `file:line:col Error: ...`). */
function diagnostics(stderr: string, sourceName: string): string[] {
  const lines = stderr.split('\n').map((l) => l.trimEnd());
  const own = lines.filter((l) => l.startsWith(`${sourceName}:`) && !/^\S+:\d+:\d+ \S*\.{3,}\^?$/.test(l));
  return own.slice(0, 8);
}

function classify(report: { name: string; message: string } | undefined, stderr: string, sourceName: string): ForgeError {
  const diag = diagnostics(stderr, sourceName);
  const where = diag[0]?.match(/^(\S+?):(\d+):(\d+) /);
  const location = where === null || where === undefined ? {} : { line: Number(where[2]), column: Number(where[3]) };
  const message = report?.message ?? '';
  const importMatch = message.match(/Import '([^']+)' is not defined by the WIT world/);
  if (importMatch !== null) {
    const spec = importMatch[1]!;
    const hint = spec.startsWith('.') || spec.startsWith('/') || !spec.includes(':') ? ' (imports of other JavaScript files or npm packages need a bundler first: the entry must be one module)' : '';
    return new ForgeError(PluginErrorCodes.importNotAllowed, `${sourceName} imports '${spec}', which the WIT world does not offer${hint}`, { details: { reason: 'import', import: spec } });
  }
  const exportMatch = message.match(/Expected a JS export definition for '([^']+)'/);
  if (exportMatch !== null) {
    return new ForgeError(PluginErrorCodes.exportMissing, `${sourceName} does not export '${exportMatch[1]}', which the world requires`, { details: { reason: 'export', export: exportMatch[1] } });
  }
  const syntax = diag.find((l) => /SyntaxError/.test(l));
  if (syntax !== undefined) {
    return new ForgeError(PluginErrorCodes.buildFailed, `syntax error in ${syntax}`, { details: { reason: 'syntax', ...location, diagnostics: diag } });
  }
  if (/Exception while evaluating top-level script/.test(stderr)) {
    const first = diag[0] ?? 'an exception';
    return new ForgeError(PluginErrorCodes.buildFailed, `the module throws while it is initialised: ${first}`, { details: { reason: 'init', ...location, diagnostics: diag } });
  }
  const tail = stderr.trim().split('\n').slice(-6).join('\n');
  const text = message === '' ? tail : message;
  return new ForgeError(PluginErrorCodes.buildFailed, `componentizing ${sourceName} failed: ${text === '' ? 'no diagnostics' : text}`, { details: { reason: 'componentize', diagnostics: diag } });
}

/**
 * Turn a JavaScript module into a WebAssembly component for a WIT world with componentize-js, in a child
 * process (the componentizer writes to the process's streams and may call `process.exit`; the child keeps the
 * CLI's own output clean and its process alive). Every engine feature not listed is disabled, so the component
 * imports nothing beyond its world unless asked.
 * @param request - source, WIT, world, features, time limit
 * @returns the component, its imports and exports
 * @throws ForgeError `WASM_TRANSPILE_FAILED` (syntax error, exception at initialisation), `WASM_LINK_ERROR` (an import
 * the world does not offer), `WASM_EXPORT_MISSING` (no `run`), `SANDBOX_TIMEOUT`, `NOT_FOUND` (componentizer missing)
 */
export async function componentizeSource(request: ComponentizeRequest): Promise<ComponentizeResult> {
  const componentizeJs = packageEntry(COMPONENTIZE_JS_PACKAGE, 'src/componentize.js');
  const jco = packageEntry(JCO_PACKAGE, 'src/api.js');
  const work = await mkdtemp(join(tmpdir(), 'forgeone-plugin-'));
  try {
    const job = {
      componentizeUrl: componentizeJs.url,
      jcoUrl: jco.url,
      sourcePath: join(work, 'source.js'),
      sourceName: request.sourceName,
      witPath: request.witPath,
      world: request.world,
      disableFeatures: ENGINE_FEATURES.filter((f) => !request.features.includes(f)),
      componentPath: join(work, 'component.wasm'),
      reportPath: join(work, 'report.json'),
    };
    await writeFile(job.sourcePath, request.source);
    const timeoutMs = request.timeoutMs ?? 600_000;
    const { code, stderr, timedOut } = await new Promise<{ code: number | null; stderr: string; timedOut: boolean }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--no-warnings', '--input-type=module', '-e', CHILD], {
        stdio: ['pipe', 'pipe', 'pipe'],
        // Nothing of the caller's environment: the plugin's initialisation runs in the componentizer.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: tmpdir() },
        cwd: work,
      });
      let err = '';
      let killed = false;
      const cap = (chunk: Buffer): void => {
        if (err.length < 1_000_000) err += chunk.toString('utf8');
      };
      child.stdout.on('data', cap);
      child.stderr.on('data', cap);
      const start = performance.now();
      const tick = setInterval(() => request.onTick?.(performance.now() - start), 500);
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (e) => {
        clearInterval(tick);
        clearTimeout(timer);
        reject(new ForgeError(PluginErrorCodes.buildFailed, `cannot start the componentizer: ${e.message}`, { cause: e }));
      });
      child.on('close', (status) => {
        clearInterval(tick);
        clearTimeout(timer);
        resolve({ code: status, stderr: err, timedOut: killed });
      });
      child.stdin.end(JSON.stringify(job));
    });
    if (timedOut) throw new ForgeError(PluginErrorCodes.timeout, `componentizing ${request.sourceName} took longer than ${Math.round(timeoutMs / 1000)} s`, { details: { limitMs: timeoutMs } });
    let report: { ok: boolean; wit?: string; name?: string; message?: string } | undefined;
    try {
      report = JSON.parse(await readFile(job.reportPath, 'utf8')) as typeof report;
    } catch {
      report = undefined;
    }
    if (code !== 0 || report?.ok !== true || typeof report.wit !== 'string') {
      throw classify(report === undefined ? undefined : { name: report.name ?? 'Error', message: report.message ?? '' }, stderr, request.sourceName);
    }
    const component = new Uint8Array(await readFile(job.componentPath));
    return {
      component,
      imports: worldItems(report.wit, 'import'),
      exports: worldItems(report.wit, 'export'),
      wit: report.wit,
      componentizeVersion: componentizeJs.version,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
