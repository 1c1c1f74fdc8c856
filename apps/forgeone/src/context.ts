import { resolve } from 'node:path';
import { systemClock } from '@forgeone/common';
import { createCryptoProvider, type CryptoProvider, type CryptoProviderName } from '@forgeone/crypto';
import type { CliIo } from './io.js';

/** What a command produced. `runCli` prints it once the command returns, so `--json` prints one document. */
export interface CommandResult {
  /** Exit status. */
  readonly exitCode: number;
  /** The document printed with `--json`. */
  readonly json: Readonly<Record<string, unknown>>;
  /** Lines for standard output without `--json`. */
  readonly text: readonly string[];
  /** Lines for standard error without `--json`. */
  readonly errText?: readonly string[];
}

/** The state of one `runCli` call, shared by the command actions. */
export class Context {
  /** Whether `--json` was given. */
  json: boolean;
  /** The `--provider` chosen. */
  providerName: CryptoProviderName = 'node';
  /** What the command produced, set by its action. */
  result: CommandResult | undefined;
  #provider: CryptoProvider | undefined;

  /**
   * @param io - the streams, environment and working directory
   * @param json - whether `--json` appears on the command line (refined once the options are parsed)
   */
  constructor(
    readonly io: CliIo,
    json: boolean,
  ) {
    this.json = json;
  }

  /** The crypto provider named by `--provider`, created on first use. */
  get provider(): CryptoProvider {
    this.#provider ??= createCryptoProvider(this.providerName);
    return this.#provider;
  }

  /** Whether text output goes to a person at a terminal (short ids, progress line). */
  get terminal(): boolean {
    return this.io.isTTY && !this.json;
  }

  /** Whether slow work may show a progress line on standard error. */
  get progressEnabled(): boolean {
    return this.terminal && this.io.env.TERM !== 'dumb';
  }

  /**
   * Resolve a path given on the command line against the working directory.
   * @param path - as typed
   * @returns an absolute path
   */
  path(path: string): string {
    return resolve(this.io.cwd, path);
  }

  /**
   * The current time, read once per decision.
   * @returns milliseconds since the epoch
   */
  now(): number {
    return systemClock.now();
  }

  /**
   * Print a warning on standard error (also with `--json`: standard output holds only the document).
   * @param text - the warning
   */
  warn(text: string): void {
    this.io.stderr(`warning: ${text}\n`);
  }

  /**
   * Record what the command produced.
   * @param result - exit status, JSON document and text lines
   */
  finish(result: CommandResult): void {
    this.result = result;
  }
}
