/** Reports how far slow work has got. */
export interface Progress {
  /**
   * Replace the progress text. Drawn only once the delay has passed, at most every 100 ms.
   * @param text - e.g. `hashing 3/10 files`
   */
  update(text: string): void;
}

/** Options for {@link withProgress}. */
export interface ProgressOptions {
  /** Whether to show anything at all (a terminal, no `--json`). */
  readonly enabled: boolean;
  /** Where the line goes (standard error). */
  readonly write: (text: string) => void;
  /** How long the work may run before the line appears. Default 1000 ms: quick work shows nothing. */
  readonly delayMs?: number;
}

const CLEAR_LINE = '\r\x1b[2K';
const MAX_WIDTH = 76;

/**
 * Run work that may be slow, showing a one-line progress indicator on a terminal once it has taken longer than
 * the delay, and clearing the line when it ends (also when it fails). Synchronous work (hashing) blocks the
 * timer, so the line is also drawn from {@link Progress.update} once the delay has passed.
 * @param options - enabled, writer, delay
 * @param initial - the text shown first
 * @param task - the work; it may call `progress.update`
 * @returns what the task returns
 * @example
 * ```ts
 * const bytes = await withProgress({ enabled: io.isTTY, write: io.stderr }, 'reading', (p) => read(file, p));
 * ```
 */
export async function withProgress<T>(options: ProgressOptions, initial: string, task: (progress: Progress) => Promise<T> | T): Promise<T> {
  if (!options.enabled) return await task({ update: () => undefined });
  const delay = options.delayMs ?? 1000;
  const start = performance.now();
  let text = initial;
  let shown = false;
  let lastDraw = 0;
  const draw = (): void => {
    const line = text.length > MAX_WIDTH ? `${text.slice(0, MAX_WIDTH - 1)}…` : text;
    options.write(`${CLEAR_LINE}${line}`);
    shown = true;
    lastDraw = performance.now();
  };
  const timer = setTimeout(draw, delay);
  try {
    return await task({
      update(next) {
        text = next;
        const t = performance.now();
        if (t - start >= delay && t - lastDraw >= 100) draw();
      },
    });
  } finally {
    clearTimeout(timer);
    if (shown) options.write(CLEAR_LINE);
  }
}
