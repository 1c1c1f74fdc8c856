import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ForgeError, toForgeError } from '@forgeone/common';
import type { CryptoProvider, TrustRootDocument } from '@forgeone/crypto';
import type { ConfigListener, ConfigReloadOutcome, ConfigSource } from './ConfigSource.js';
import { ConfigDecisions, type ConfigCallbacks } from './decisions.js';
import type { KernelConfig } from './schema.js';
import { verifyConfig } from './signed.js';

/** The largest config file read (1 MiB). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** Options for {@link createFileConfigSource}. */
export interface FileConfigSourceOptions extends ConfigCallbacks {
  /** The signed config file. */
  readonly path: string;
  /** The trust root whose `config` role signs configs, or a function returning the one currently trusted. */
  readonly trustRoot: TrustRootDocument | (() => TrustRootDocument);
  /** Verifies signatures. */
  readonly crypto: CryptoProvider;
  /**
   * The lowest version the first load accepts (e.g. the highest version accepted before a restart, which the
   * kernel persists), so an older signed file put in place while the kernel was down is refused. Default 1.
   */
  readonly minVersion?: number;
  /** Quiet time (ms) after a file system event before the file is re-read. Default 100. */
  readonly debounceMs?: number;
  /** Whether the watcher keeps the process alive. Default false. */
  readonly persistent?: boolean;
}

function peekVersion(text: string): number | null {
  try {
    const v = (JSON.parse(text) as { signed?: { version?: unknown } } | null)?.signed?.version;
    return typeof v === 'number' && Number.isSafeInteger(v) ? v : null;
  } catch {
    return null;
  }
}

type Mode = 'load' | 'reload' | 'watch';

/**
 * A config source backed by a signed config file. `load()` reads, verifies against the trust root's `config`
 * role, and parses. `watch()` re-reads the file when it changes (the directory is watched, so editors that
 * replace the file by renaming are seen) and puts the new config in force only when it carries a valid
 * signature and a strictly higher version; anything else is refused, reported (subscribers, `onReject`) with
 * its code, and the config in force stays. Every decision — the first load too — is audited through `audit`
 * before it takes effect. Reloads run one at a time.
 * @param options - the file, trust root, crypto provider, callbacks and audit hook
 * @returns the source
 * @example
 * ```ts
 * const source = createFileConfigSource({ path: 'config.json', trustRoot, crypto, audit: (e) => auditLog.append(e) });
 * const config = await source.load();
 * source.watch();
 * source.subscribe((e) => { if (e.kind === 'config.rejected') console.error(e.error.code); });
 * ```
 */
export function createFileConfigSource(options: FileConfigSourceOptions): ConfigSource {
  const { path, crypto } = options;
  const decisions = new ConfigDecisions(options);
  const debounceMs = options.debounceMs ?? 100;
  const minVersion = options.minVersion ?? 1;
  const trustRoot = (): TrustRootDocument => (typeof options.trustRoot === 'function' ? options.trustRoot() : options.trustRoot);

  let acceptedText: string | undefined;
  let lastSeenText: string | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let watcher: FSWatcher | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  function enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = queue.then(task, task);
    queue = next.catch(() => undefined);
    return next;
  }

  async function attempt(mode: Mode): Promise<ConfigReloadOutcome | undefined> {
    const current = decisions.current;
    let text: string;
    try {
      const bytes = await readFile(path);
      if (bytes.length > MAX_CONFIG_FILE_BYTES) {
        return decisions.reject(new ForgeError('CONFIG_INVALID', `config file ${path} is ${bytes.length} bytes, more than ${MAX_CONFIG_FILE_BYTES}`), null);
      }
      text = bytes.toString('utf8');
    } catch (e) {
      return decisions.reject(new ForgeError('IO_ERROR', `cannot read config file ${path}: ${(e as Error).message}`, { cause: e }), null);
    }
    if (current !== undefined && text === acceptedText) return { status: 'unchanged', config: current };
    // A watcher often sees several events for one write: judge each distinct file content once.
    if (mode === 'watch' && text === lastSeenText) return undefined;
    lastSeenText = text;
    let config: KernelConfig;
    try {
      const verified = verifyConfig(text, trustRoot(), { crypto, what: path, ...(current === undefined ? {} : { after: current.version }) });
      if (current === undefined && verified.version < minVersion) {
        throw new ForgeError('CONFIG_ROLLBACK', `${path} v${verified.version} is older than v${minVersion}, the lowest version still acceptable`, {
          details: { offered: verified.version, minimum: minVersion },
        });
      }
      config = verified.config;
    } catch (e) {
      return decisions.reject(toForgeError(e, 'CONFIG_INVALID'), peekVersion(text));
    }
    const outcome = await decisions.accept(config);
    if (outcome.status === 'accepted') acceptedText = text;
    return outcome;
  }

  function schedule(): void {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) void enqueue(() => attempt('watch'));
    }, debounceMs);
    if (!(options.persistent ?? false)) timer.unref();
  }

  return {
    load(): Promise<KernelConfig> {
      return enqueue(async () => {
        const current = decisions.current;
        if (current !== undefined) return current;
        const outcome = (await attempt('load'))!;
        if (outcome.status === 'rejected') throw outcome.error;
        return outcome.config;
      });
    },
    current(): KernelConfig | undefined {
      return decisions.current;
    },
    reload(): Promise<ConfigReloadOutcome> {
      return enqueue(async () => (await attempt('reload'))!);
    },
    watch(): void {
      if (watcher !== undefined || closed) return;
      const file = basename(path);
      try {
        watcher = fsWatch(dirname(path), { persistent: options.persistent ?? false }, (_event, filename) => {
          if (filename === null || filename === file) schedule();
        });
      } catch (e) {
        throw new ForgeError('IO_ERROR', `cannot watch ${dirname(path)}: ${(e as Error).message}`, { cause: e });
      }
      watcher.on('error', (e) => {
        watcher?.close();
        watcher = undefined;
        decisions.emit({ kind: 'config.watch-error', error: new ForgeError('IO_ERROR', `watching ${path} stopped: ${e.message}`, { cause: e }) });
      });
    },
    subscribe(listener: ConfigListener): () => void {
      return decisions.subscribe(listener);
    },
    async close(): Promise<void> {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      watcher?.close();
      watcher = undefined;
      await queue;
    },
  };
}
