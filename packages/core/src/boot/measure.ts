import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ForgeError, canonicalJson, concatBytes, formatFieldPath, fromHex, toHex, utf8 } from '@forgeone/common';
import type { CryptoProvider } from '@forgeone/crypto';

/** Domain prefix of a poison digest: `SHA3-256(prefix ‖ name)`. */
export const POISON_PREFIX = 'forgeone.boot.poison\0';
/** Domain prefix of a directory digest. */
export const DIRECTORY_DIGEST_PREFIX = 'forgeone/boot/dir/v1\0';
/** Domain prefix of a symbolic link digest (so a link never equals a file holding its target text). */
export const SYMLINK_DIGEST_PREFIX = 'forgeone/boot/symlink/v1\0';
/** Domain prefix of the digest of a whole event log (bound into the quote, so names cannot be swapped). */
export const EVENT_LOG_DIGEST_PREFIX = 'forgeone/boot/events/v1\0';

/** The value the measurement chain starts from: 32 zero bytes, hex. */
export const INITIAL_PCR = '0'.repeat(64);

/** What a measured input is, for people and for appraisal reports. */
export const MEASUREMENT_KINDS = Object.freeze(['kernel', 'config', 'policy', 'trust-root', 'package', 'other'] as const);

/** What a measured input is. */
export type MeasurementKind = (typeof MEASUREMENT_KINDS)[number];

/**
 * Where a measurement's bytes come from.
 * - `{ path }`: a file (SHA3-256 of its content) or a directory (see {@link measureDirectory}). A symbolic link
 *   given as `path` is followed, unless `noFollow` is set: then it is measured as its target text.
 * - `{ bytes }`: bytes already in memory (SHA3-256 of them), e.g. a document the kernel read once and parses.
 */
export type MeasurementSource =
  | { readonly path: string; readonly noFollow?: boolean }
  | { readonly bytes: Uint8Array };

/** One input the kernel trusts. */
export interface MeasurementInput {
  /** Stable name, e.g. `kernel:@forgeone/core/dist/index.js`, `config`, `policy`, `trust-root`, `package:hello@0.1.0`. */
  readonly name: string;
  /** What it is. */
  readonly kind: MeasurementKind;
  /** Where its bytes come from. */
  readonly source: MeasurementSource;
}

/** One entry of the measurement event log. */
export interface MeasurementEvent {
  /** Position in the log, from 0. */
  readonly index: number;
  /** The input's name. */
  readonly name: string;
  /** The input's kind. */
  readonly kind: MeasurementKind;
  /** The digest extended into the chain (hex SHA3-256): the input's, or the poison digest of its name. */
  readonly digest: string;
  /** True when the measurement could not be taken and the poison digest was extended instead. */
  readonly poisoned: boolean;
  /** Why the measurement could not be taken (poisoned events only). */
  readonly error?: string;
}

/** An event log and the value it replays to. */
export interface MeasurementLog {
  /** The events, in the order they were extended. */
  readonly events: readonly MeasurementEvent[];
  /** The final chain value (hex): start at {@link INITIAL_PCR}, then `pcr = SHA3-256(pcr ‖ digest)` per event. */
  readonly pcr: string;
}

/** Limits of one directory walk; exceeding one poisons the input. */
export interface DirectoryLimits {
  /** Most entries (files, links, directories) in one measured directory. Default 100 000. */
  readonly maxEntries?: number;
  /** Deepest nesting below the measured directory. Default 64. */
  readonly maxDepth?: number;
}

/** Options of {@link measure}. */
export interface MeasureOptions {
  /** Hashes. */
  readonly crypto: CryptoProvider;
  /** Directory walk limits. */
  readonly limits?: DirectoryLimits;
}

const NAME = z
  .string()
  .min(1)
  .max(512)
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'a measurement name has no control characters');
const HEX32 = z.string().regex(/^[0-9a-f]{64}$/, '32 bytes of lowercase hex');

/** Schema of one event, as read back from storage or another machine. */
export const MeasurementEventSchema = z.strictObject({
  index: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  name: NAME,
  kind: z.enum(MEASUREMENT_KINDS),
  digest: HEX32,
  poisoned: z.boolean(),
  error: z.string().max(4096).optional(),
});

/** Schema of a whole event log. */
export const MeasurementEventsSchema = z.array(MeasurementEventSchema).max(1_000_000);

/** Schema of a measurement name. */
export const MeasurementNameSchema = NAME;

const READ_CHUNK = 1 << 20;

/**
 * The poison digest of an input: `SHA3-256("forgeone.boot.poison\0" ‖ name)`. Extended in place of a measurement
 * that cannot be taken, so the chain never matches a golden value and the input is never skipped.
 * @param crypto - hashes
 * @param name - the input's name
 * @returns hex digest
 */
export function poisonDigest(crypto: CryptoProvider, name: string): string {
  return toHex(crypto.sha3_256(concatBytes(utf8(POISON_PREFIX), utf8(name))));
}

/**
 * One step of the chain: `SHA3-256(pcr ‖ digest)`.
 * @param crypto - hashes
 * @param pcr - the current value (hex, 32 bytes)
 * @param digest - the measurement (hex, 32 bytes)
 * @returns the new value, hex
 * @throws ForgeError `INVALID_ARGUMENT` when either is not 32 bytes of hex
 */
export function extendPcr(crypto: CryptoProvider, pcr: string, digest: string): string {
  return toHex(crypto.sha3_256(concatBytes(fromHex(pcr, 32), fromHex(digest, 32))));
}

async function hashFile(crypto: CryptoProvider, path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    // Check the opened file, not the path: what is hashed is what was checked.
    const st = await handle.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    const h = crypto.createSha3_256();
    const buf = new Uint8Array(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
    return toHex(h.digest());
  } finally {
    await handle.close();
  }
}

function symlinkDigest(crypto: CryptoProvider, target: string): string {
  return toHex(crypto.sha3_256(concatBytes(utf8(SYMLINK_DIGEST_PREFIX), utf8(target))));
}

type DirEntry = readonly [path: string, type: 'f' | 'l' | 'd', digest: string | null];

/**
 * The canonical digest of a directory tree: `SHA3-256("forgeone/boot/dir/v1\0" ‖ canonicalJson(entries))`,
 * where `entries` lists every file (`f`, SHA3-256 of its content), symbolic link (`l`, digest of its target
 * text — never followed, so a link cannot pull anything from outside the tree) and subdirectory (`d`, so an
 * added empty directory counts) as `[relativePath, type, digest]`, sorted by path (`/` separators).
 * Any other file type (socket, FIFO, device) is an error: it cannot be measured.
 * @param crypto - hashes
 * @param dir - the directory
 * @param limits - entry and depth limits
 * @returns hex digest
 * @throws Error (an I/O error or a limit) — {@link measure} turns it into a poisoned event
 */
export async function measureDirectory(crypto: CryptoProvider, dir: string, limits: DirectoryLimits = {}): Promise<string> {
  const maxEntries = limits.maxEntries ?? 100_000;
  const maxDepth = limits.maxDepth ?? 64;
  const entries: DirEntry[] = [];
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > maxDepth) throw new Error(`${rel}: nested deeper than ${maxDepth} levels`);
    const names = (await readdir(abs)).sort();
    for (const n of names) {
      if (entries.length >= maxEntries) throw new Error(`more than ${maxEntries} entries`);
      const childAbs = join(abs, n);
      const childRel = rel === '' ? n : `${rel}/${n}`;
      const st = await lstat(childAbs);
      if (st.isSymbolicLink()) {
        entries.push([childRel, 'l', symlinkDigest(crypto, await readlink(childAbs))]);
      } else if (st.isDirectory()) {
        entries.push([childRel, 'd', null]);
        await walk(childAbs, childRel, depth + 1);
      } else if (st.isFile()) {
        entries.push([childRel, 'f', await hashFile(crypto, childAbs)]);
      } else {
        throw new Error(`${childRel}: not a regular file, directory or symbolic link`);
      }
    }
  };
  await walk(dir, '', 0);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return toHex(crypto.sha3_256(concatBytes(utf8(DIRECTORY_DIGEST_PREFIX), utf8(canonicalJson(entries)))));
}

async function digestOf(crypto: CryptoProvider, source: MeasurementSource, limits: DirectoryLimits): Promise<string> {
  if ('bytes' in source) {
    if (!(source.bytes instanceof Uint8Array)) throw new Error('source.bytes is not a Uint8Array');
    return toHex(crypto.sha3_256(source.bytes));
  }
  if (typeof source.path !== 'string' || source.path === '') throw new Error('source.path is empty');
  const st = (source.noFollow ?? false) ? await lstat(source.path) : await stat(source.path);
  if (st.isSymbolicLink()) return symlinkDigest(crypto, await readlink(source.path));
  if (st.isDirectory()) return measureDirectory(crypto, source.path, limits);
  if (st.isFile()) return hashFile(crypto, source.path);
  throw new Error('not a regular file, directory or symbolic link');
}

function describe(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return (typeof err?.code === 'string' && !message.includes(err.code) ? `${err.code}: ${message}` : message).slice(0, 4096);
}

/**
 * Check an input list: an array of objects with unique, well-formed names, known kinds and a source.
 * @param inputs - the inputs
 * @throws ForgeError `INVALID_ARGUMENT` naming the field (`inputs[i].name`, ...)
 * @internal
 */
export function checkInputs(inputs: readonly MeasurementInput[]): void {
  if (!Array.isArray(inputs)) throw new ForgeError('INVALID_ARGUMENT', 'measurement inputs must be an array', { details: { field: 'inputs' } });
  const seen = new Set<string>();
  inputs.forEach((input, i) => {
    const field = (f: string): string => `inputs[${i}].${f}`;
    if (typeof input !== 'object' || input === null) throw new ForgeError('INVALID_ARGUMENT', `inputs[${i}] must be an object`, { details: { field: `inputs[${i}]` } });
    const name = NAME.safeParse(input.name);
    if (!name.success) throw new ForgeError('INVALID_ARGUMENT', `${field('name')}: ${name.error.issues[0]?.message ?? 'invalid'}`, { details: { field: field('name') } });
    if (!(MEASUREMENT_KINDS as readonly string[]).includes(input.kind)) {
      throw new ForgeError('INVALID_ARGUMENT', `${field('kind')}: must be one of ${MEASUREMENT_KINDS.join(', ')}`, { details: { field: field('kind') } });
    }
    if (typeof input.source !== 'object' || input.source === null || !('path' in input.source || 'bytes' in input.source)) {
      throw new ForgeError('INVALID_ARGUMENT', `${field('source')}: must be { path } or { bytes }`, { details: { field: field('source') } });
    }
    if (seen.has(input.name)) throw new ForgeError('INVALID_ARGUMENT', `${field('name')}: duplicate measurement name "${input.name}"`, { details: { field: field('name') } });
    seen.add(input.name);
  });
}

/**
 * Measure every input, in order, into an event log and a chain value. The chain starts at 32 zero bytes and
 * each event extends it: `pcr = SHA3-256(pcr ‖ digest)`. An input that cannot be measured (missing,
 * unreadable, an unsupported file type, a limit) extends its poison digest ({@link poisonDigest}) and records
 * the error: it is never skipped, so the event count always equals the input count.
 * @param inputs - the inputs, with unique names
 * @param options - crypto provider and directory limits
 * @returns the event log and the final value
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed input list (bad or duplicate name, unknown kind, no source), naming the field
 * @example
 * ```ts
 * const { events, pcr } = await measure([{ name: 'config', kind: 'config', source: { path: '/etc/forgeone/config.json' } }], { crypto });
 * ```
 */
export async function measure(inputs: readonly MeasurementInput[], options: MeasureOptions): Promise<MeasurementLog> {
  return measureWithFailures(inputs, options, new Map());
}

/**
 * {@link measure}, with errors already known for some inputs (by name): those are poisoned with that error
 * without being read. Internal: boot uses it for a trust root it could not read or serialise.
 * @param inputs - the inputs
 * @param options - crypto provider and limits
 * @param failures - name → error text
 * @returns the event log and the final value
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed input list
 * @internal
 */
export async function measureWithFailures(inputs: readonly MeasurementInput[], options: MeasureOptions, failures: ReadonlyMap<string, string>): Promise<MeasurementLog> {
  checkInputs(inputs);
  const { crypto } = options;
  const limits = options.limits ?? {};
  const events: MeasurementEvent[] = [];
  let pcr = INITIAL_PCR;
  for (const [index, input] of inputs.entries()) {
    let event: MeasurementEvent;
    try {
      const known = failures.get(input.name);
      if (known !== undefined) throw new Error(known);
      const digest = await digestOf(crypto, input.source, limits);
      event = { index, name: input.name, kind: input.kind, digest, poisoned: false };
    } catch (e) {
      event = { index, name: input.name, kind: input.kind, digest: poisonDigest(crypto, input.name), poisoned: true, error: describe(e) };
    }
    pcr = extendPcr(crypto, pcr, event.digest);
    events.push(event);
  }
  return { events, pcr };
}

/**
 * Check an event log's structure: the schema, indexes 0..n-1 in order, unique names, and poisoned events that
 * carry exactly their name's poison digest.
 * @param events - the log (possibly from outside)
 * @param crypto - hashes
 * @returns the log, typed
 * @throws ForgeError `INVALID_ARGUMENT` naming the offending field (e.g. `events[3].index`)
 */
export function parseEventLog(events: unknown, crypto: CryptoProvider): MeasurementEvent[] {
  const parsed = MeasurementEventsSchema.safeParse(events);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length === 0 ? 'events' : `events${formatFieldPath(issue.path)}`;
    throw new ForgeError('INVALID_ARGUMENT', `event log field ${path}: ${issue.message}`, { details: { field: path } });
  }
  const seen = new Set<string>();
  const out: MeasurementEvent[] = [];
  for (const [i, e] of parsed.data.entries()) {
    if (e.index !== i) throw new ForgeError('INVALID_ARGUMENT', `event log field events[${i}].index: expected ${i}, found ${e.index}`, { details: { field: `events[${i}].index` } });
    if (seen.has(e.name)) throw new ForgeError('INVALID_ARGUMENT', `event log field events[${i}].name: duplicate name "${e.name}"`, { details: { field: `events[${i}].name` } });
    seen.add(e.name);
    if (e.poisoned && e.digest !== poisonDigest(crypto, e.name)) {
      throw new ForgeError('INVALID_ARGUMENT', `event log field events[${i}].digest: a poisoned event must carry the poison digest of its name`, { details: { field: `events[${i}].digest` } });
    }
    if (!e.poisoned && e.error !== undefined) {
      throw new ForgeError('INVALID_ARGUMENT', `event log field events[${i}].error: only a poisoned event carries an error`, { details: { field: `events[${i}].error` } });
    }
    out.push(e.error === undefined ? { index: e.index, name: e.name, kind: e.kind, digest: e.digest, poisoned: e.poisoned } : { ...e, error: e.error });
  }
  return out;
}

/**
 * Recompute the chain value an event log leads to (after checking its structure with {@link parseEventLog}).
 * @param events - the log
 * @param crypto - hashes
 * @returns the final value, hex
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed log, naming the field
 */
export function replayEventLog(events: readonly MeasurementEvent[], crypto: CryptoProvider): string {
  let pcr = INITIAL_PCR;
  for (const e of parseEventLog(events, crypto)) pcr = extendPcr(crypto, pcr, e.digest);
  return pcr;
}

/**
 * The digest of a whole event log (names, kinds, digests, errors), which the quote signs beside the chain
 * value: the chain binds the digests and their order, this binds what each one is called.
 * `SHA3-256("forgeone/boot/events/v1\0" ‖ canonicalJson(events))`.
 * @param events - the log
 * @param crypto - hashes
 * @returns hex digest
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed log
 */
export function eventLogDigest(events: readonly MeasurementEvent[], crypto: CryptoProvider): string {
  const normalised = parseEventLog(events, crypto);
  return toHex(crypto.sha3_256(concatBytes(utf8(EVENT_LOG_DIGEST_PREFIX), utf8(canonicalJson(normalised)))));
}
