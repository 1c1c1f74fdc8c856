import { z } from 'zod';
import { ForgeError, canonicalJson, formatFieldPath, parseSemver } from '@forgeone/common';
import { PACKAGE_NAME, checkPackagePath } from '@forgeone/crypto';
import { PluginErrorCodes } from './errors.js';
import { DEFAULT_WORLD } from './wit.js';

/** The name of the plugin manifest in a plugin directory. */
export const PLUGIN_MANIFEST_FILE = 'forgeone.plugin.json';

/** The name of the component inside a built plugin package (the package's `entry`). */
export const PLUGIN_COMPONENT_FILE = 'plugin.wasm';

/** Engine features of the JavaScript runtime that can be switched on; each adds WASI imports to the component. */
export const ENGINE_FEATURES = ['stdio', 'random', 'clocks', 'http'] as const;

/** An engine feature of the JavaScript runtime. */
export type EngineFeature = (typeof ENGINE_FEATURES)[number];

/** `host:port` with a lowercase DNS name (optionally `*.` for any subdomain), an IPv4 address or a bracketed IPv6 address. */
const HOST_PORT = /^(?:(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\]):([0-9]{1,5})$/;

const HostPort = z
  .string()
  .max(260)
  .regex(HOST_PORT, 'an HTTP destination is host:port in lowercase, e.g. api.example.com:443 or *.example.com:443')
  .refine((v) => {
    const port = Number(v.slice(v.lastIndexOf(':') + 1));
    return port >= 1 && port <= 65535;
  }, 'the port must be 1 to 65535');

/** A canonical absolute guest path: `/`, or `/` followed by segments without `.`, `..`, empty segments or a trailing `/`. */
const GuestPath = z
  .string()
  .max(1024)
  .refine((p) => p === '/' || (p.startsWith('/') && p.slice(1).split('/').every((s) => s !== '' && s !== '.' && s !== '..')), 'a guest path is absolute and canonical (no ., .., // or trailing /)')
  // eslint-disable-next-line no-control-regex
  .refine((p) => !/[\u0000-\u001f\u007f\\]/.test(p), 'a guest path holds no control characters or backslashes');

const Preopen = z.strictObject({
  /** The guest directory the plugin asks to see, e.g. `/data`. */
  path: GuestPath,
  /** `read` (default) or `read-write`. */
  access: z.enum(['read', 'read-write']).default('read'),
});

/** What a plugin asks to be allowed. A request, not a grant: the policy decides. Everything absent is not requested. */
export const PluginCapabilitiesSchema = z.strictObject({
  /** `forgeone:host/log` (syscall `forgeone:log/write`). */
  log: z.boolean().default(false),
  /** `forgeone:host/kv` (syscalls `forgeone:kv/get|set|delete|list`). */
  kv: z.boolean().default(false),
  /** `forgeone:host/http`: the destinations (`host:port`) the plugin asks to reach (syscall `forgeone:http/fetch`). */
  http: z.array(HostPort).max(32).default([]),
  /** `forgeone:host/identity` (syscall `forgeone:identity/get`). */
  identity: z.boolean().default(false),
  /** `forgeone:host/info` (syscall `forgeone:info/get`). */
  info: z.boolean().default(false),
  /** `forgeone:host/time` (syscall `forgeone:time/now`). */
  time: z.boolean().default(false),
  /** WASI filesystem directories the plugin asks to see (syscalls `wasi:filesystem/*`). */
  preopens: z.array(Preopen).max(16).default([]),
});

/** Validated capabilities, with every field present. */
export type PluginCapabilities = z.infer<typeof PluginCapabilitiesSchema>;

/** The schema of `forgeone.plugin.json`. Unknown fields are errors. */
export const PluginManifestSchema = z
  .strictObject({
    /** Package name: lowercase npm-style, optionally `@scope/name`. */
    name: z.string().min(1).max(214).regex(PACKAGE_NAME, 'a plugin name is lowercase npm-style, optionally @scope/name'),
    /** Semantic Versioning 2.0.0. */
    version: z
      .string()
      .max(256)
      .refine((v) => parseSemver(v) !== undefined, 'must be a Semantic Versioning 2.0.0 version, e.g. 1.0.0'),
    description: z.string().max(4096).default(''),
    author: z.string().max(512).default(''),
    /** The JavaScript module to componentize, relative to the plugin directory. */
    entry: z
      .string()
      .default('src/index.js')
      .refine((e) => checkPackagePath(e) === undefined, 'entry is a relative path inside the plugin directory (no .., no leading /)')
      .refine((e) => /\.(?:m?js)$/.test(e), 'entry is a .js or .mjs file'),
    /** The WIT world to target. Default `forgeone:host/plugin@0.1.0`. */
    world: z
      .string()
      .max(256)
      .regex(/^(?:[a-z][a-z0-9-]*:[a-z][a-z0-9-]*\/)?[a-z][a-z0-9-]*(?:@[0-9A-Za-z.+-]+)?$/, 'a world is name or namespace:package/name@version')
      .default(DEFAULT_WORLD),
    /** A directory of the plugin holding its own WIT package (for a custom world); `forgeone:host` is available to it as a dependency. */
    wit: z
      .string()
      .refine((e) => checkPackagePath(e) === undefined, 'wit is a relative directory inside the plugin directory')
      .optional(),
    /** JavaScript runtime features to keep (each adds WASI imports). Default none: the component imports only its world. */
    engineFeatures: z.array(z.enum(ENGINE_FEATURES)).max(4).default([]),
    /** What the plugin asks to be allowed. */
    capabilities: PluginCapabilitiesSchema.default(PluginCapabilitiesSchema.parse({})),
    /** Package lifetime in days from the build (default 365). */
    validDays: z.number().int().min(1).max(3650).default(365),
    /** Further files or directories of the plugin to pack, e.g. `["README.md"]`. */
    include: z
      .array(z.string().refine((e) => checkPackagePath(e.replace(/\/+$/, '')) === undefined, 'include lists relative paths inside the plugin directory'))
      .max(256)
      .default([]),
  })
  .superRefine((m, ctx) => {
    if (new Set(m.engineFeatures).size !== m.engineFeatures.length) ctx.addIssue({ code: 'custom', path: ['engineFeatures'], message: 'duplicate feature' });
    if (new Set(m.capabilities.http).size !== m.capabilities.http.length) ctx.addIssue({ code: 'custom', path: ['capabilities', 'http'], message: 'duplicate destination' });
    const paths = m.capabilities.preopens.map((p) => p.path);
    if (new Set(paths).size !== paths.length) ctx.addIssue({ code: 'custom', path: ['capabilities', 'preopens'], message: 'duplicate preopen path' });
    if (m.world !== DEFAULT_WORLD && m.wit === undefined && !m.world.startsWith('forgeone:host/')) {
      ctx.addIssue({ code: 'custom', path: ['world'], message: 'a world outside forgeone:host needs a wit directory' });
    }
  });

/** A validated plugin manifest, with defaults filled in. */
export type PluginManifest = z.infer<typeof PluginManifestSchema>;

/**
 * Parse and validate the text of `forgeone.plugin.json`.
 * @param text - the file's text
 * @param shown - the file as the user named it, for messages
 * @returns the manifest with defaults filled in
 * @throws ForgeError `CONFIG_INVALID` with the offending field path in the message and in `details.path`
 */
export function parsePluginManifest(text: string, shown: string = PLUGIN_MANIFEST_FILE): PluginManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ForgeError(PluginErrorCodes.manifestInvalid, `${shown} is not JSON: ${(e as Error).message}`, { details: { path: '$' } });
  }
  const parsed = PluginManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = formatFieldPath(issue.path);
    throw new ForgeError(PluginErrorCodes.manifestInvalid, `${shown} field ${path}: ${issue.message}`, {
      details: { path, issues: parsed.error.issues.map((i) => ({ path: formatFieldPath(i.path), message: i.message })) },
    });
  }
  return parsed.data;
}

/** The WASI syscalls each engine feature can reach. */
const FEATURE_CAPABILITIES: Readonly<Record<EngineFeature, readonly string[]>> = {
  stdio: ['wasi:cli/stdout', 'wasi:cli/stderr', 'wasi:cli/stdin'],
  random: ['wasi:random/random'],
  clocks: ['wasi:clocks/wall-clock', 'wasi:clocks/monotonic-clock'],
  http: ['wasi:http/outgoing-request'],
};

/**
 * The capability strings (`interface[:scope]`, syscall names of the catalogue) a plugin manifest requests,
 * for the `.forgepkg` manifest's `capabilities` field. Sorted, without duplicates.
 * @param manifest - the plugin manifest
 * @returns e.g. `['forgeone:http/fetch:api.example.com:443', 'forgeone:log/write']`
 */
export function capabilityStrings(manifest: Pick<PluginManifest, 'capabilities' | 'engineFeatures'>): string[] {
  const c = manifest.capabilities;
  const out = new Set<string>();
  if (c.log) out.add('forgeone:log/write');
  if (c.kv) for (const op of ['get', 'set', 'delete', 'list']) out.add(`forgeone:kv/${op}`);
  for (const dest of c.http) out.add(`forgeone:http/fetch:${dest}`);
  if (c.identity) out.add('forgeone:identity/get');
  if (c.info) out.add('forgeone:info/get');
  if (c.time) out.add('forgeone:time/now');
  for (const p of c.preopens) {
    out.add(`wasi:filesystem/read:${p.path}`);
    if (p.access === 'read-write') out.add(`wasi:filesystem/write:${p.path}`);
  }
  for (const f of manifest.engineFeatures) for (const s of FEATURE_CAPABILITIES[f]) out.add(s);
  return [...out].sort();
}

/**
 * The canonical JSON of the requested capabilities, stored in the package metadata under `forgeone.capabilities`.
 * @param capabilities - validated capabilities
 * @returns canonical JSON text
 */
export function capabilitiesJson(capabilities: PluginCapabilities): string {
  return canonicalJson({ ...capabilities, preopens: capabilities.preopens.map((p) => ({ path: p.path, access: p.access })) });
}

/**
 * The WASI interfaces (prefixes) the JavaScript engine imports for each feature, as componentize-js 0.17.0 does:
 * stdio needs the filesystem descriptor types and the wall clock besides the CLI streams; clocks also writes to stderr.
 */
const FEATURE_IMPORTS: Readonly<Record<EngineFeature, readonly string[]>> = {
  stdio: ['wasi:cli/', 'wasi:filesystem/types', 'wasi:filesystem/preopens', 'wasi:clocks/wall-clock'],
  random: ['wasi:random/'],
  clocks: ['wasi:clocks/', 'wasi:cli/stderr'],
  http: ['wasi:http/', 'wasi:clocks/', 'wasi:cli/stderr'],
};

/**
 * Which of a component's imports the manifest does not request. An interface import is covered when the
 * matching capability is requested: `forgeone:host/kv` by `capabilities.kv`, `forgeone:host/http` by a non-empty
 * `capabilities.http`, `wasi:filesystem/*` by a preopen, the WASI interfaces an engine feature imports by that
 * feature. `forgeone:host/types` and `wasi:io/*` (plumbing) are always covered.
 * @param imports - the component's imports (`namespace:package/interface@version`)
 * @param manifest - the plugin manifest
 * @returns the imports not covered, in order
 */
export function undeclaredImports(imports: readonly string[], manifest: Pick<PluginManifest, 'capabilities' | 'engineFeatures'>): string[] {
  const c = manifest.capabilities;
  const covered = (name: string): boolean => {
    const iface = name.replace(/@[^@]*$/, '');
    switch (iface) {
      case 'forgeone:host/types':
        return true;
      case 'forgeone:host/log':
        return c.log;
      case 'forgeone:host/kv':
        return c.kv;
      case 'forgeone:host/http':
        return c.http.length > 0;
      case 'forgeone:host/identity':
        return c.identity;
      case 'forgeone:host/info':
        return c.info;
      case 'forgeone:host/time':
        return c.time;
      default:
        break;
    }
    if (iface.startsWith('wasi:io/')) return true;
    if (iface.startsWith('wasi:filesystem/') && c.preopens.length > 0) return true;
    return manifest.engineFeatures.some((feature) => FEATURE_IMPORTS[feature].some((prefix) => iface.startsWith(prefix)));
    return false;
  };
  return imports.filter((i) => !covered(i));
}
