/**
 * The source of time. Inject it so tests can control time; never call `Date.now()` in logic that
 * decides (expiry, rate limits).
 */
export interface Clock {
  /** Wall-clock time in milliseconds since the Unix epoch. */
  now(): number;
  /** A monotonic timestamp in nanoseconds, for durations only. */
  monotonicNs(): bigint;
}

/** The real clock. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  monotonicNs: () => process.hrtime.bigint(),
});

/** A clock that moves only when told to, for tests. */
export interface ManualClock extends Clock {
  /**
   * Move time forward.
   * @param ms - milliseconds to add
   */
  advance(ms: number): void;
  /**
   * Jump to a wall-clock time.
   * @param epochMs - milliseconds since the epoch
   */
  set(epochMs: number): void;
}

/**
 * Create a clock that starts at `startMs` and moves only by {@link ManualClock.advance} or {@link ManualClock.set}.
 * @param startMs - start time in ms since the epoch (default 2026-01-01T00:00:00Z)
 * @returns a manual clock
 * @example
 * ```ts
 * const clock = createManualClock(Date.parse('2027-01-01T00:00:00Z'));
 * clock.advance(1000);
 * ```
 */
export function createManualClock(startMs = Date.UTC(2026, 0, 1)): ManualClock {
  let wall = startMs;
  let mono = 0n;
  return {
    now: () => wall,
    monotonicNs: () => mono,
    advance(ms: number) {
      wall += ms;
      mono += BigInt(Math.round(ms * 1e6));
    },
    set(epochMs: number) {
      if (epochMs > wall) mono += BigInt(Math.round((epochMs - wall) * 1e6));
      wall = epochMs;
    },
  };
}
