import { ForgeError, toForgeError } from '@forgeone/common';
import type { ConfigListener, ConfigReloadOutcome, ConfigSource } from './ConfigSource.js';
import { ConfigDecisions, type ConfigCallbacks } from './decisions.js';
import { parseConfig } from './parse.js';
import type { KernelConfig, KernelConfigInput } from './schema.js';

/** A config source whose config is given in code; {@link StaticConfigSource.update} replaces it. */
export interface StaticConfigSource extends ConfigSource {
  /**
   * Offer a new config. It is put in force when it is valid and its version is strictly higher than the one
   * in force (no signature: the caller is trusted), audited like a file reload.
   * @param config - the new config (defaults applied)
   * @returns accepted, or rejected with `CONFIG_INVALID` or `CONFIG_ROLLBACK`
   */
  update(config: KernelConfigInput | KernelConfig): Promise<ConfigReloadOutcome>;
}

/**
 * A config source holding a config given in code, for tests and for embedding the kernel in a program that
 * builds its config itself. Nothing is signed or watched; `reload()` reports `unchanged`.
 * @param config - the config (defaults are applied)
 * @param callbacks - optional `onChange`, `onReject` and `audit`, as for the file source
 * @returns the source; `load()` puts the config in force (audited) and returns it
 * @throws ForgeError `CONFIG_INVALID` naming every bad field
 * @example
 * ```ts
 * const source = createStaticConfigSource({ api: { port: 0 } });
 * (await source.load()).api.port; // 0
 * ```
 */
export function createStaticConfigSource(config: KernelConfigInput | KernelConfig, callbacks: ConfigCallbacks = {}): StaticConfigSource {
  const initial = parseConfig(config);
  const decisions = new ConfigDecisions(callbacks);
  let queue: Promise<unknown> = Promise.resolve();

  function enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = queue.then(task, task);
    queue = next.catch(() => undefined);
    return next;
  }

  return {
    load(): Promise<KernelConfig> {
      return enqueue(async () => {
        const current = decisions.current;
        if (current !== undefined) return current;
        const outcome = await decisions.accept(initial);
        if (outcome.status === 'rejected') throw outcome.error;
        return initial;
      });
    },
    current(): KernelConfig | undefined {
      return decisions.current;
    },
    reload(): Promise<ConfigReloadOutcome> {
      return enqueue(async () => {
        const current = decisions.current;
        return current === undefined ? decisions.accept(initial) : { status: 'unchanged', config: current };
      });
    },
    watch(): void {},
    subscribe(listener: ConfigListener): () => void {
      return decisions.subscribe(listener);
    },
    async close(): Promise<void> {
      await queue;
    },
    update(next: KernelConfigInput | KernelConfig): Promise<ConfigReloadOutcome> {
      return enqueue(async () => {
        let parsed: KernelConfig;
        try {
          parsed = parseConfig(next);
        } catch (e) {
          return decisions.reject(toForgeError(e, 'CONFIG_INVALID'), null);
        }
        const current = decisions.current;
        if (current !== undefined && parsed.version <= current.version) {
          const error = new ForgeError('CONFIG_ROLLBACK', `config v${parsed.version} is not newer than the config in force (v${current.version})`, {
            details: { offered: parsed.version, current: current.version },
          });
          return decisions.reject(error, parsed.version);
        }
        return decisions.accept(parsed);
      });
    },
  };
}
