import type { z } from 'zod';
import { ForgeError, formatFieldPath } from '@forgeone/common';
import { KernelConfigSchema, looksLikeSecretName, type KernelConfig } from './schema.js';

/** One problem with a config: the field it is at and what is wrong, for people and machines. */
export interface ConfigIssue {
  /** Field path such as `scheduler.cpuSlots` or `node.labels.zone` (`$` for the whole document). */
  readonly path: string;
  /** What is wrong, never echoing the value (it might be a secret). */
  readonly message: string;
}

const INLINE_SECRET = "looks like an inline secret; secrets are never stored in config files: name an environment variable (a field ending in Env, or `secrets: { name: { env: 'NAME' } }`)";

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function isLiteral(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint';
}

/**
 * Turn zod issues into one {@link ConfigIssue} per bad field. An unknown key becomes an issue at that key
 * (`api.prot: unknown field`), and one whose name looks like a secret and holds a literal is reported as an
 * inline secret.
 * @param issues - zod issues
 * @param input - the value that was validated (to tell literal values from references)
 * @param prefix - path segments to put in front (e.g. `signed.config` inside a signed document)
 * @returns the issues, in the order zod found them
 */
export function configIssues(issues: readonly z.core.$ZodIssue[], input: unknown, prefix: readonly PropertyKey[] = []): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const keyPath = [...issue.path, key];
        const secret = looksLikeSecretName(key) && isLiteral(valueAt(input, keyPath));
        out.push({ path: formatFieldPath([...prefix, ...keyPath]), message: secret ? INLINE_SECRET : 'unknown field (misspelt, or not a config field)' });
      }
      continue;
    }
    if (issue.code === 'invalid_key') {
      out.push({ path: formatFieldPath(path), message: issue.issues[0]?.message ?? issue.message });
      continue;
    }
    if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined && issue.path.length > 0) {
      out.push({ path: formatFieldPath(path), message: `required: ${issue.message}` });
      continue;
    }
    out.push({ path: formatFieldPath(path), message: issue.message });
  }
  return out;
}

/**
 * The `CONFIG_INVALID` error for a list of issues: the message lists every `path: problem`, and
 * `details.issues` holds the same lines (`details.fields` the structured form).
 * @param issues - the problems
 * @param what - what was being read, for the message (e.g. a file path)
 * @returns the error
 */
export function configInvalid(issues: readonly ConfigIssue[], what = 'config'): ForgeError {
  const lines = issues.map((i) => `${i.path}: ${i.message}`);
  const head = `${what} is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'})`;
  return new ForgeError('CONFIG_INVALID', `${head}: ${lines.join('; ')}`, { details: { issues: lines, fields: issues } });
}

/**
 * Parse JSON text, reporting a syntax error as `CONFIG_INVALID`.
 * @param text - JSON text
 * @param what - what is being read, for the message
 * @returns the value
 * @throws ForgeError `CONFIG_INVALID` when the text is not JSON
 */
export function parseJsonText(text: string, what = 'config'): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw configInvalid([{ path: '$', message: `not valid JSON: ${(e as Error).message}` }], what);
  }
}

/** Options for {@link parseConfig}. */
export interface ParseConfigOptions {
  /** Path segments prefixed to every reported field (e.g. `['signed', 'config']`). */
  readonly pathPrefix?: readonly PropertyKey[];
  /** What is being read, for the error message (e.g. the file path). Default `config`. */
  readonly what?: string;
}

/**
 * Parse and validate a kernel configuration, applying defaults.
 * @param input - JSON text or an already-parsed value
 * @param options - path prefix and a name for messages
 * @returns the config with every default applied
 * @throws ForgeError `CONFIG_INVALID` whose message and `details.issues` name every bad field, e.g.
 *   `scheduler.cpuSlots: expected a positive integer`; unknown keys and inline secrets are errors
 * @example
 * ```ts
 * const config = parseConfig('{"version": 2, "api": {"port": 8080}}');
 * config.api.host; // '127.0.0.1'
 * ```
 */
export function parseConfig(input: unknown, options: ParseConfigOptions = {}): KernelConfig {
  const what = options.what ?? 'config';
  const value = typeof input === 'string' ? parseJsonText(input, what) : input;
  const parsed = KernelConfigSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw configInvalid(configIssues(parsed.error.issues, value, options.pathPrefix ?? []), what);
}
