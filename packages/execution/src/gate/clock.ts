import { Worker } from 'node:worker_threads';

/**
 * A coarse wall clock in shared memory: one thread writes the time every `resolutionMs`, any number of
 * gates on any thread read it with a single memory load. Reading `performance.now()` or `Date.now()`
 * costs 60–80 ns in Node 20 — more than the rest of the gate — so the gate's timestamps come from here
 * (like Linux's CLOCK_MONOTONIC_COARSE). Start times and durations in records therefore have the
 * clock's resolution; rate limits and time-of-day rules need no better.
 */
export interface CoarseClock {
  /** The shared buffer: slot 0 is ms since the epoch (Float64), written by the clock thread. */
  readonly buffer: SharedArrayBuffer;
  /** The resolution the clock thread aims at, in ms. */
  readonly resolutionMs: number;
  /**
   * The current coarse time.
   * @returns ms since the epoch
   */
  now(): number;
  /** Stop the clock thread (reads then return the last value written). */
  stop(): Promise<void>;
}

const CLOCK_THREAD = `
const { workerData } = require('node:worker_threads');
const t = new Float64Array(workerData.buffer, 0, 1);
const stop = new Int32Array(workerData.buffer, 8, 1);
const origin = performance.timeOrigin;
while (Atomics.load(stop, 0) === 0) {
  t[0] = origin + performance.now();
  Atomics.wait(stop, 0, 0, workerData.resolutionMs);
}
`;

/**
 * Start a coarse clock thread.
 * @param resolutionMs - how often the time is written; default 0.25 ms
 * @returns the clock
 */
export function createCoarseClock(resolutionMs = 0.25): CoarseClock {
  const buffer = new SharedArrayBuffer(16);
  const t = new Float64Array(buffer, 0, 1);
  t[0] = performance.timeOrigin + performance.now();
  const worker = new Worker(CLOCK_THREAD, { eval: true, workerData: { buffer, resolutionMs } });
  worker.unref();
  return {
    buffer,
    resolutionMs,
    now: () => t[0]!,
    async stop() {
      const stop = new Int32Array(buffer, 8, 1);
      Atomics.store(stop, 0, 1);
      Atomics.notify(stop, 0);
      await worker.terminate();
    },
  };
}

/**
 * Read a coarse clock from another thread (a sandbox worker) given its buffer.
 * @param buffer - {@link CoarseClock.buffer}
 * @returns a function returning ms since the epoch
 */
export function coarseClockReader(buffer: SharedArrayBuffer): () => number {
  const t = new Float64Array(buffer, 0, 1);
  return () => t[0]!;
}
