import { ForgeError, toForgeError } from '@forgeone/common';
import type { ConfigAudit, ConfigEvent, ConfigListener, ConfigReloadOutcome } from './ConfigSource.js';
import type { KernelConfig } from './schema.js';

/** Callbacks shared by every config source. */
export interface ConfigCallbacks {
  /** Called after a config is put in force (also the first one). */
  readonly onChange?: (config: KernelConfig, previous: KernelConfig | undefined) => void;
  /** Called after an offered config is refused; the one in force stays. */
  readonly onReject?: (error: ForgeError, current: KernelConfig | undefined) => void;
  /** Records every decision; a change is applied only after it resolves. */
  readonly audit?: ConfigAudit;
}

/**
 * The part every source shares: the config in force, subscribers, and the rule that a change is applied only
 * once it has been audited. Not exported from the package.
 */
export class ConfigDecisions {
  #current: KernelConfig | undefined;
  readonly #listeners = new Set<ConfigListener>();
  readonly #callbacks: ConfigCallbacks;

  constructor(callbacks: ConfigCallbacks, initial?: KernelConfig) {
    this.#callbacks = callbacks;
    this.#current = initial;
  }

  get current(): KernelConfig | undefined {
    return this.#current;
  }

  subscribe(listener: ConfigListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  emit(event: ConfigEvent): void {
    try {
      if (event.kind === 'config.change') this.#callbacks.onChange?.(event.config, event.previous);
      else if (event.kind === 'config.rejected') this.#callbacks.onReject?.(event.error, event.current);
    } catch {
      // A failing callback must not undo a decision already taken and audited.
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // Same: listeners observe, they cannot veto.
      }
    }
  }

  /** Audit, then put `config` in force. When the audit fails, the change is refused instead. */
  async accept(config: KernelConfig): Promise<ConfigReloadOutcome> {
    const previous = this.#current;
    try {
      await this.#callbacks.audit?.({ kind: 'config.change', version: config.version, previous: previous?.version ?? null });
    } catch (e) {
      const cause = toForgeError(e, 'IO_ERROR');
      const error = new ForgeError(cause.code, `config v${config.version} not applied: auditing the change failed: ${cause.message}`, {
        cause: e,
        details: { version: config.version },
      });
      return this.#rejected(error);
    }
    this.#current = config;
    this.emit({ kind: 'config.change', config, previous });
    return { status: 'accepted', config, previous };
  }

  /** Audit a refusal and report it; the config in force stays. */
  async reject(error: ForgeError, version: number | null): Promise<ConfigReloadOutcome> {
    let reported = error;
    try {
      await this.#callbacks.audit?.({ kind: 'config.rejected', version, previous: this.#current?.version ?? null, code: error.code, reason: error.message });
    } catch (e) {
      reported = new ForgeError(error.code, `${error.message} (auditing the refusal failed: ${toForgeError(e).message})`, {
        cause: e,
        ...(error.details === undefined ? {} : { details: error.details }),
      });
    }
    return this.#rejected(reported);
  }

  #rejected(error: ForgeError): ConfigReloadOutcome {
    const current = this.#current;
    this.emit({ kind: 'config.rejected', error, current });
    return { status: 'rejected', error, current };
  }
}
