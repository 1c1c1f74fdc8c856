import type { ErrorCode, ForgeError } from '@forgeone/common';
import type { KernelConfig } from './schema.js';

/**
 * What a config source reports to the audit log about every load or reload it decides on. Holds versions and
 * codes only, never config values.
 */
export interface ConfigAuditEvent {
  /** `config.change` when a config was put in force, `config.rejected` when one was refused. */
  readonly kind: 'config.change' | 'config.rejected';
  /** The offered version, or null when it could not be read (unreadable file, malformed JSON). */
  readonly version: number | null;
  /** The version in force before, or null at the first load. */
  readonly previous: number | null;
  /** Why a config was refused (`CONFIG_ROLLBACK`, `CONFIG_SIGNATURE_INVALID`, `CONFIG_INVALID`, `IO_ERROR`, ...). */
  readonly code?: ErrorCode;
  /** The refusal's message (names fields and versions, never values). */
  readonly reason?: string;
}

/**
 * Records config decisions; the kernel connects it to the audit log. A change is applied only once this
 * resolves: when it throws, the change is refused.
 */
export type ConfigAudit = (event: ConfigAuditEvent) => void | Promise<void>;

/** An event a config source emits to its subscribers. */
export type ConfigEvent =
  | {
      /** A new config is in force. */
      readonly kind: 'config.change';
      /** The new config. */
      readonly config: KernelConfig;
      /** The config it replaced, undefined at the first load. */
      readonly previous: KernelConfig | undefined;
    }
  | {
      /** An offered config was refused; the one in force stays. */
      readonly kind: 'config.rejected';
      /** Why, with a stable code. */
      readonly error: ForgeError;
      /** The config still in force, undefined when none was loaded yet. */
      readonly current: KernelConfig | undefined;
    }
  | {
      /** Watching stopped because the file system reported an error; `reload()` still works. */
      readonly kind: 'config.watch-error';
      /** The error (`IO_ERROR`). */
      readonly error: ForgeError;
    };

/** A subscriber to a config source's events. Exceptions it throws are ignored. */
export type ConfigListener = (event: ConfigEvent) => void;

/** The outcome of one reload. */
export type ConfigReloadOutcome =
  | {
      /** The offered config is now in force. */
      readonly status: 'accepted';
      /** The new config. */
      readonly config: KernelConfig;
      /** The config it replaced, undefined at the first load. */
      readonly previous: KernelConfig | undefined;
    }
  | {
      /** The offered config was refused; the one in force stays. */
      readonly status: 'rejected';
      /** Why, with a stable code. */
      readonly error: ForgeError;
      /** The config still in force. */
      readonly current: KernelConfig | undefined;
    }
  | {
      /** The source holds exactly the config already in force; nothing happened and nothing was audited. */
      readonly status: 'unchanged';
      /** The config in force. */
      readonly config: KernelConfig;
    };

/**
 * Where the kernel's configuration comes from, and how it changes while the kernel runs. Implementations:
 * a signed file with hot reload (`createFileConfigSource`) and a fixed value (`createStaticConfigSource`).
 */
export interface ConfigSource {
  /**
   * Load the config the first time; later calls return the config in force.
   * @returns the config in force
   * @throws ForgeError when the first load is refused (the code says why)
   */
  load(): Promise<KernelConfig>;
  /**
   * The config in force.
   * @returns it, or undefined before the first successful load
   */
  current(): KernelConfig | undefined;
  /**
   * Read the source again and put what it holds in force if it is acceptable (for a file: a valid signature
   * and a strictly higher version). Never throws for a bad config: the outcome says what happened.
   * @returns accepted, rejected (with the code) or unchanged
   */
  reload(): Promise<ConfigReloadOutcome>;
  /**
   * Start reloading whenever the source changes (no-op when the source cannot change by itself). Idempotent.
   * @throws ForgeError `IO_ERROR` when the source cannot be watched
   */
  watch(): void;
  /**
   * Receive change, rejection and watch-error events.
   * @param listener - called synchronously after each decision
   * @returns a function that unsubscribes
   */
  subscribe(listener: ConfigListener): () => void;
  /**
   * Stop watching and wait for a reload in progress to finish.
   * @returns when stopped
   */
  close(): Promise<void>;
}
