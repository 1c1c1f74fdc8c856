/**
 * Everything the CLI touches outside itself: output streams, whether they are a terminal, the environment and
 * the working directory. `src/cli.ts` passes the real process; tests pass their own and read what was written.
 */
export interface CliIo {
  /** Write text to standard output (results; with `--json`, exactly one JSON document). */
  readonly stdout: (text: string) => void;
  /** Write text to standard error (errors, warnings and the progress line). */
  readonly stderr: (text: string) => void;
  /**
   * Whether output goes to an interactive terminal. When true (and without `--json`) key ids and hashes are
   * shortened to 16 hex characters and slow work shows a progress line on standard error.
   */
  readonly isTTY: boolean;
  /** Environment variables. Only `TERM` is read: `TERM=dumb` turns the progress line off. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The directory relative paths are resolved against. */
  readonly cwd: string;
}
