// forgeone.plugin.json: schema, field-path errors, capability strings, import coverage; and the embedded WIT.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CAPABILITY } from '@forgeone/crypto';
import { isForgeError } from '@forgeone/common';
import { describe, expect, it } from 'vitest';
import { capabilitiesJson, capabilityStrings, parsePluginManifest, undeclaredImports, type PluginManifest } from '../src/plugin/manifest.js';
import { pluginTemplate } from '../src/plugin/templates.js';
import { FORGEONE_WIT } from '../src/plugin/wit.js';
import { APP_DIR, REPO_ROOT } from './helpers.js';

function parseError(value: unknown): { code: string; message: string; path: unknown } {
  try {
    parsePluginManifest(typeof value === 'string' ? value : JSON.stringify(value));
  } catch (e) {
    if (!isForgeError(e)) throw e;
    return { code: e.code, message: e.message, path: e.details?.path };
  }
  throw new Error('expected the manifest to be refused');
}

const base = { name: 'demo', version: '1.0.0' };

describe('parsePluginManifest', () => {
  it('fills in defaults: entry, world, no features, nothing requested', () => {
    const m = parsePluginManifest(JSON.stringify(base));
    expect(m).toEqual({
      name: 'demo',
      version: '1.0.0',
      description: '',
      author: '',
      entry: 'src/index.js',
      world: 'forgeone:host/plugin@0.1.0',
      engineFeatures: [],
      capabilities: { log: false, kv: false, http: [], identity: false, info: false, time: false, preopens: [] },
      validDays: 365,
      include: [],
    });
    expect(capabilityStrings(m)).toEqual([]);
  });

  it('accepts the template that `plugin new` writes', () => {
    const text = pluginTemplate('fresh').files.get('forgeone.plugin.json')!;
    expect(parsePluginManifest(text)).toMatchObject({ name: 'fresh', capabilities: { log: true } });
  });

  it.each([
    ['not JSON', '{"name": ', '$'],
    ['a missing name', { version: '1.0.0' }, 'name'],
    ['an upper-case name', { ...base, name: 'Demo' }, 'name'],
    ['a version that is not semver', { ...base, version: '1.0' }, 'version'],
    ['an unknown field', { ...base, colour: 'red' }, '$'],
    ['an entry outside the directory', { ...base, entry: '../x.js' }, 'entry'],
    ['an entry that is not JavaScript', { ...base, entry: 'src/index.ts' }, 'entry'],
    ['an unknown capability', { ...base, capabilities: { shell: true } }, 'capabilities'],
    ['kv given as a string', { ...base, capabilities: { kv: 'yes' } }, 'capabilities.kv'],
    ['an http destination without a port', { ...base, capabilities: { http: ['api.example.com:443', 'example.org'] } }, 'capabilities.http[1]'],
    ['an http port out of range', { ...base, capabilities: { http: ['example.org:70000'] } }, 'capabilities.http[0]'],
    ['an upper-case http host', { ...base, capabilities: { http: ['Example.org:443'] } }, 'capabilities.http[0]'],
    ['a duplicate destination', { ...base, capabilities: { http: ['a.example:1', 'a.example:1'] } }, 'capabilities.http'],
    ['a relative preopen', { ...base, capabilities: { preopens: [{ path: 'data' }] } }, 'capabilities.preopens[0].path'],
    ['a preopen with ..', { ...base, capabilities: { preopens: [{ path: '/data/../etc' }] } }, 'capabilities.preopens[0].path'],
    ['a bad preopen access', { ...base, capabilities: { preopens: [{ path: '/data', access: 'all' }] } }, 'capabilities.preopens[0].access'],
    ['an unknown engine feature', { ...base, engineFeatures: ['threads'] }, 'engineFeatures[0]'],
    ['a foreign world without WIT', { ...base, world: 'acme:x/y@1.0.0' }, 'world'],
    ['validDays out of range', { ...base, validDays: 0 }, 'validDays'],
  ])('refuses %s with CONFIG_INVALID and the field path', (_what, value, path) => {
    const e = parseError(value);
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.path).toBe(path);
    expect(e.message).toContain(`forgeone.plugin.json`);
    if (path !== '$') expect(e.message).toContain(`field ${path}:`);
  });
});

describe('capabilityStrings', () => {
  const m = parsePluginManifest(
    JSON.stringify({
      ...base,
      engineFeatures: ['clocks'],
      capabilities: { log: true, kv: true, http: ['api.example.com:443', '*.example.org:8443'], identity: true, info: true, time: true, preopens: [{ path: '/data' }, { path: '/scratch', access: 'read-write' }] },
    }),
  );

  it('lists the catalogue syscalls each capability reaches, scoped where the request is', () => {
    expect(capabilityStrings(m)).toEqual([
      'forgeone:http/fetch:*.example.org:8443',
      'forgeone:http/fetch:api.example.com:443',
      'forgeone:identity/get',
      'forgeone:info/get',
      'forgeone:kv/delete',
      'forgeone:kv/get',
      'forgeone:kv/list',
      'forgeone:kv/set',
      'forgeone:log/write',
      'forgeone:time/now',
      'wasi:clocks/monotonic-clock',
      'wasi:clocks/wall-clock',
      'wasi:filesystem/read:/data',
      'wasi:filesystem/read:/scratch',
      'wasi:filesystem/write:/scratch',
    ]);
    for (const c of capabilityStrings(m)) expect(c).toMatch(CAPABILITY); // what the .forgepkg manifest accepts
  });

  it('serialises the request canonically for the package metadata', () => {
    expect(JSON.parse(capabilitiesJson(m.capabilities))).toEqual({ ...m.capabilities });
    expect(capabilitiesJson(m.capabilities)).toBe(capabilitiesJson(parsePluginManifest(JSON.stringify({ ...base, ...JSON.parse(JSON.stringify({ engineFeatures: ['clocks'], capabilities: m.capabilities })) })).capabilities));
  });
});

describe('undeclaredImports', () => {
  const manifest = (capabilities: object, engineFeatures: string[] = []): PluginManifest => parsePluginManifest(JSON.stringify({ ...base, capabilities, engineFeatures }));

  it('covers an interface only when its capability is requested', () => {
    const imports = ['forgeone:host/types@0.1.0', 'forgeone:host/log@0.1.0', 'forgeone:host/kv@0.1.0', 'forgeone:host/http@0.1.0'];
    expect(undeclaredImports(imports, manifest({ log: true }))).toEqual(['forgeone:host/kv@0.1.0', 'forgeone:host/http@0.1.0']);
    expect(undeclaredImports(imports, manifest({ log: true, kv: true, http: ['a.example:443'] }))).toEqual([]);
    expect(undeclaredImports(['forgeone:host/http@0.1.0'], manifest({ http: [] }))).toEqual(['forgeone:host/http@0.1.0']);
  });

  it('covers WASI only through an engine feature or a preopen', () => {
    // What componentize-js 0.17.0 imports with the stdio feature on.
    const stdio = ['wasi:io/streams@0.2.3', 'wasi:cli/stdout@0.2.3', 'wasi:cli/terminal-stdout@0.2.3', 'wasi:filesystem/types@0.2.3', 'wasi:filesystem/preopens@0.2.3', 'wasi:clocks/wall-clock@0.2.3'];
    expect(undeclaredImports(stdio, manifest({}))).toEqual(stdio.slice(1));
    expect(undeclaredImports(stdio, manifest({}, ['stdio']))).toEqual([]);
    expect(undeclaredImports(['wasi:filesystem/types@0.2.3'], manifest({ preopens: [{ path: '/d' }] }))).toEqual([]);
    expect(undeclaredImports(['wasi:sockets/tcp@0.2.3', 'wasi:random/random@0.2.3', 'acme:x/y'], manifest({}, ['clocks']))).toEqual(['wasi:sockets/tcp@0.2.3', 'wasi:random/random@0.2.3', 'acme:x/y']);
  });
});

describe('the embedded WIT', () => {
  it('is plugins/wit/forgeone.wit byte for byte (EMBED_WIT=1 rewrites src/plugin/wit.ts)', async () => {
    const wit = await readFile(join(REPO_ROOT, 'plugins', 'wit', 'forgeone.wit'), 'utf8');
    if (wit !== FORGEONE_WIT && process.env.EMBED_WIT === '1') {
      const file = join(APP_DIR, 'src', 'plugin', 'wit.ts');
      const text = await readFile(file, 'utf8');
      const start = text.indexOf('export const FORGEONE_WIT = `');
      const body = wit.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');
      await writeFile(file, `${text.slice(0, start)}export const FORGEONE_WIT = \`${body}\`;\n`);
      return;
    }
    expect(FORGEONE_WIT, 'src/plugin/wit.ts is out of date: run EMBED_WIT=1 npx vitest run test/plugin-manifest.test.ts in apps/forgeone').toBe(wit);
  });
});
