import { mkdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { ForgeError, canonicalJsonBytes, toHex } from '@forgeone/common';
import pkg from '../../package.json' with { type: 'json' };
import type { Context } from '../context.js';
import { EXIT_OK } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { examples, formatSize, layout, shortHex } from '../format.js';
import { inFile, loadSigningKeys } from '../load.js';
import { buildPlugin } from '../plugin/build.js';
import { PLUGIN_MANIFEST_FILE } from '../plugin/manifest.js';
import { createPluginProject } from '../plugin/new.js';
import { withProgress } from '../progress.js';

/** Options of `forgeone plugin new`. */
export interface PluginNewOptions {
  /** Where to create the project (default `./<name>`, without the scope). */
  readonly dir?: string;
}

/** Options of `forgeone plugin build`. */
export interface PluginBuildOptions {
  /** The package file to write (default `<dir>/dist/<name>.forgepkg`). */
  readonly out?: string;
  /** Private key files to sign with, in order. */
  readonly key?: readonly string[];
  /** Componentizer time limit in seconds. */
  readonly timeout?: number;
}

function collect(value: string, previous: readonly string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function seconds(value: string): number {
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 3600) throw new InvalidArgumentError('a time limit is a whole number of seconds from 1 to 3600.');
  return Number(value);
}

/** The short name of a package (`@scope/name` → `name`). */
function shortName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/**
 * `forgeone plugin new <name> [--dir <path>]`: create a plugin project from the template.
 * @param ctx - the context
 * @param name - the plugin's package name
 * @param opts - options
 * @throws ForgeError `INVALID_ARGUMENT` (bad name), `ALREADY_EXISTS` (the directory exists), `IO_ERROR`
 */
export async function pluginNewAction(ctx: Context, name: string, opts: PluginNewOptions): Promise<void> {
  const shown = opts.dir ?? shortName(name);
  const files = await createPluginProject({ name, dir: ctx.path(shown), shown });
  ctx.finish({
    exitCode: EXIT_OK,
    json: { ok: true, name, dir: shown, files },
    text: layout([
      ['created', `${name} in ${shown}`],
      ['files', files],
      ['next', `forgeone plugin build ${shown} --key <release.key>`],
    ]),
  });
}

/**
 * `forgeone plugin build [dir] [--out <file>] [--key <keyfile> ...]`: componentize, pack and sign a plugin.
 * @param ctx - the context
 * @param dir - the plugin directory as typed (default `.`)
 * @param opts - options
 * @throws ForgeError see {@link buildPlugin}; key loading and writing errors
 */
export async function pluginBuildAction(ctx: Context, dir: string | undefined, opts: PluginBuildOptions): Promise<void> {
  const shownDir = dir ?? '.';
  const keys = await loadSigningKeys(ctx, opts.key ?? []);
  const built = await withProgress({ enabled: ctx.progressEnabled, write: ctx.io.stderr, delayMs: 300 }, `building ${shownDir}`, (progress) =>
    buildPlugin({
      dir: ctx.path(shownDir),
      provider: ctx.provider,
      keys,
      sdkVersion: pkg.version,
      ...(opts.timeout === undefined ? {} : { timeoutMs: opts.timeout * 1000 }),
      onProgress: (text) => progress.update(text),
    }).catch((e: unknown) => Promise.reject(inFile(shownDir, e))),
  );
  const m = built.manifest;
  const out = opts.out ?? relative(ctx.io.cwd, join(ctx.path(shownDir), 'dist', `${shortName(m.name)}.forgepkg`));
  await mkdir(dirname(ctx.path(out)), { recursive: true }).catch((e: unknown) => {
    throw new ForgeError('IO_ERROR', `cannot create the directory of ${out}: ${(e as Error).message}`, { cause: e });
  });
  await writeFileAtomic(ctx.path(out), out, built.bytes);
  const digest = toHex(ctx.provider.sha3_256(canonicalJsonBytes(m)));
  const signers = [...new Set(built.signers)];
  ctx.finish({
    exitCode: EXIT_OK,
    json: {
      ok: true,
      file: out,
      name: m.name,
      version: m.version,
      digest,
      size: built.bytes.length,
      files: Object.keys(m.files).sort(),
      entry: m.entry,
      world: built.plugin.world,
      capabilities: m.capabilities,
      imports: built.component.imports,
      exports: built.component.exports,
      componentSize: built.component.size,
      signers,
      expires: m.expires,
    },
    text: layout([
      ['built', `${m.name}@${m.version} -> ${out}${signers.length === 0 ? ' (unsigned)' : ''}`],
      ['component', `${m.entry}, ${formatSize(built.component.size)}, world ${built.plugin.world}`],
      ['imports', built.component.imports.length === 0 ? 'none' : [...built.component.imports]],
      ['capabilities', m.capabilities.length === 0 ? 'none' : [...m.capabilities]],
      ['signed by', signers.length === 0 ? 'nobody (sign with --key or `forgeone pkg sign`)' : signers.map((s) => shortHex(s, ctx.terminal))],
      ['digest', digest],
      ['size', `${formatSize(built.bytes.length)} (${built.bytes.length} bytes)`],
      ['expires', m.expires],
    ]),
  });
}

/**
 * Register `forgeone plugin` and its subcommands: new, build.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerPlugin(program: Command, ctx: Context): void {
  const plugin = program
    .command('plugin')
    .summary('create and build JavaScript plugins (WebAssembly components)')
    .description(
      'A plugin is one JavaScript module that imports ForgeOne host interfaces (forgeone:host/log, kv, http, identity,\n' +
        `info, time) and exports run(input) -> result<string, string>. ${PLUGIN_MANIFEST_FILE} names it and lists the\n` +
        'capabilities it requests; `plugin build` turns it into a WebAssembly component and a signed .forgepkg.',
    )
    .addHelpText('after', examples('forgeone plugin new hello', 'forgeone plugin build hello --key keys/release.key'));

  plugin
    .command('new')
    .summary('create a plugin project from the template')
    .description(
      `Create a plugin project: ${PLUGIN_MANIFEST_FILE} (name, version, entry, world, requested capabilities),\n` +
        'src/index.js (logs a greeting through forgeone:host/log and returns it), README.md (documents the manifest),\n' +
        'package.json and .gitignore. Refuses to write into anything that already exists (ALREADY_EXISTS).',
    )
    .argument('<name>', 'plugin package name: lowercase npm-style, optionally @scope/name')
    .option('--dir <path>', 'directory to create (default ./<name>)')
    .addHelpText('after', examples('forgeone plugin new hello', 'forgeone plugin new @acme/counter --dir plugins/counter --json'))
    .action((name: string, opts: PluginNewOptions) => pluginNewAction(ctx, name, opts));

  plugin
    .command('build')
    .summary('componentize a plugin and pack it into a signed .forgepkg')
    .description(
      `Build a plugin directory: validate ${PLUGIN_MANIFEST_FILE}, componentize its entry module against the WIT world\n` +
        '(componentize-js; the ForgeOne WIT ships with the CLI), refuse a component that imports more than the manifest\n' +
        'requests, pack plugin.wasm (the entry), the manifest, the source and README.md, and sign the package with each\n' +
        '--key. Componentizing embeds a JavaScript engine: expect ~11 MB and several seconds.',
    )
    .argument('[dir]', 'plugin directory containing ' + PLUGIN_MANIFEST_FILE, '.')
    .option('-o, --out <file>', 'package file to write (default <dir>/dist/<name>.forgepkg)')
    .option('--key <keyfile>', 'private key file to sign with (repeat for more signatures)', collect)
    .option('--timeout <seconds>', 'stop componentizing after this long (default 600)', seconds)
    .addHelpText(
      'after',
      examples('forgeone plugin build plugins/hello --key keys/p1.key --key keys/p2.key', 'forgeone plugin build . --out hello.forgepkg --json'),
    )
    .action((dir: string, opts: PluginBuildOptions) => pluginBuildAction(ctx, dir, opts));
}
