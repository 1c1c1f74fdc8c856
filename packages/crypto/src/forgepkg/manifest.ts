import { z } from 'zod';
import { parseSemver } from '@forgeone/common';
import { checkPackagePath } from './paths.js';

const Timestamp = z.iso.datetime({ offset: false, precision: 0 });
const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes of lowercase hex');

/** Package names: npm-style, optionally scoped, lowercase, at most 214 characters. */
export const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/**
 * A requested capability: an interface name, optionally with a scope after `:`; e.g.
 * `wasi:cli/stdout`, `wasi:filesystem/read:/data`, `forgeone:kv/store`, `net:connect:api.example.com:443`.
 * The policy engine decides what is granted; the manifest only asks.
 */
export const CAPABILITY = /^[a-z][a-z0-9-]*:[a-z0-9*][a-z0-9*/._-]*(?::[\x21-\x7e]{1,512})?$/;

const SemverString = z
  .string()
  .max(256)
  .refine((v) => parseSemver(v) !== undefined, 'must be a Semantic Versioning 2.0.0 version');

const DependencyRange = z
  .string()
  .max(256)
  .regex(/^[\x20-\x7e]+$/, 'a version range is printable ASCII');

const PathKey = z.string().superRefine((v, ctx) => {
  const problem = checkPackagePath(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/** A content file as the manifest records it. */
export const ManifestFileSchema = z.strictObject({
  sha3_256: Hex32,
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** The `.forgepkg` manifest schema (see docs/forgepkg.md). Unknown fields are errors. */
export const ManifestSchema = z
  .strictObject({
    schema: z.literal(1),
    name: z.string().min(1).max(214).regex(PACKAGE_NAME, 'a package name is lowercase npm-style, optionally @scope/name'),
    version: SemverString,
    description: z.string().max(4096),
    author: z.string().max(512),
    created: Timestamp,
    expires: Timestamp,
    entry: z.string(),
    files: z.record(PathKey, ManifestFileSchema),
    capabilities: z.array(z.string().max(1024).regex(CAPABILITY, 'a capability is interface[:scope], e.g. wasi:cli/stdout')).max(256),
    dependencies: z.record(z.string().max(214).regex(PACKAGE_NAME, 'a dependency is a package name'), DependencyRange),
    metadata: z.record(z.string().max(128), z.string().max(4096)),
  })
  .superRefine((m, ctx) => {
    if (Date.parse(m.expires) <= Date.parse(m.created)) ctx.addIssue({ code: 'custom', path: ['expires'], message: 'expires must be after created' });
    if (!Object.hasOwn(m.files, m.entry)) ctx.addIssue({ code: 'custom', path: ['entry'], message: 'entry must name one of the files' });
    if (new Set(m.capabilities).size !== m.capabilities.length) ctx.addIssue({ code: 'custom', path: ['capabilities'], message: 'duplicate capability' });
    if (Object.keys(m.metadata).length > 64) ctx.addIssue({ code: 'custom', path: ['metadata'], message: 'at most 64 metadata entries' });
    if (Object.keys(m.dependencies).length > 256) ctx.addIssue({ code: 'custom', path: ['dependencies'], message: 'at most 256 dependencies' });
  });

/** A validated package manifest. */
export type Manifest = z.infer<typeof ManifestSchema>;

/** What a package author writes in `forgepkg.json`; the builder fills in schema, files, hashes and times. */
export const ManifestTemplateSchema = z.strictObject({
  name: z.string(),
  version: z.string(),
  description: z.string().optional(),
  author: z.string().optional(),
  entry: z.string(),
  capabilities: z.array(z.string()).optional(),
  dependencies: z.record(z.string(), z.string()).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  /** Lifetime in days from the build time (default 365), unless `expires` is given. */
  validDays: z.number().int().min(1).max(3650).optional(),
  expires: z.string().optional(),
  /** Files and directories (relative) to pack; default everything in the directory but `forgepkg.json`. */
  include: z.array(z.string().min(1)).min(1).optional(),
});

/** The author's part of a manifest. */
export type ManifestTemplate = z.infer<typeof ManifestTemplateSchema>;
