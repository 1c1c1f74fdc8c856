import { METER_GUEST_RUNS, METER_GUEST_SINCE, METER_GUEST_TOTAL } from './protocol.js';

/**
 * Worker side of the CPU watchdog: marks when guest code runs, in the container's meter array. A guest run
 * starts at an entry ({@link GuestClock.guest}) or when a host call returns, and stops at the next host call
 * or the return; the main thread compares the open run and the total against the budgets. Allocation-free.
 */
export class GuestClock {
  readonly #meter: Int32Array;
  readonly #base: number;
  readonly #now: () => number;
  #running = false;
  #since = 0;
  #total = 0;
  #depth = 0;
  #resume = false;

  /**
   * @param meter - the container's meter array
   * @param base - the time base shared with the main thread (ms since the epoch)
   * @param now - the wall clock in ms since the epoch; default `performance.timeOrigin + performance.now()`
   *   (pass a coarse clock reader to save its cost on every host call)
   */
  constructor(meter: Int32Array, base: number, now?: () => number) {
    this.#meter = meter;
    this.#base = base;
    const origin = performance.timeOrigin;
    this.#now = now ?? (() => origin + performance.now());
  }

  /** ms spent in guest code so far, including the open run. */
  get totalMs(): number {
    return this.#running ? this.#total + (this.#now() - this.#base - this.#since) : this.#total;
  }

  // Twice per host call: one atomic store each (Atomics calls cost ~5 ns in Node 20). This thread is the only
  // writer; the watchdog reads `since` with Atomics.load first, so the plain stores before an atomic one are
  // seen with it (the total of a stopped run never counts twice).
  #start(): void {
    const meter = this.#meter;
    this.#since = this.#now() - this.#base;
    this.#running = true;
    meter[METER_GUEST_RUNS] = (meter[METER_GUEST_RUNS]! + 1) | 0;
    Atomics.store(meter, METER_GUEST_SINCE, Math.floor(this.#since));
  }

  #stop(): void {
    const meter = this.#meter;
    this.#total += this.#now() - this.#base - this.#since;
    this.#running = false;
    meter[METER_GUEST_TOTAL] = Math.floor(this.#total);
    Atomics.store(meter, METER_GUEST_SINCE, -1);
  }

  /**
   * Run guest code with the clock running (nested entries from host calls run their own run).
   * @param fn - the guest entry
   * @returns its value
   */
  guest<T>(fn: () => T): T {
    if (this.#running) return fn();
    this.#start();
    try {
      return fn();
    } finally {
      if (this.#running) this.#stop();
    }
  }

  /** A host call begins: the open guest run (if any) stops. Pair with {@link GuestClock.resume}. */
  pause(): void {
    if (this.#depth++ === 0) {
      this.#resume = this.#running;
      if (this.#running) this.#stop();
    }
  }

  /** A host call ends: the guest run continues if it was running at the matching {@link GuestClock.pause}. */
  resume(): void {
    if (this.#depth > 0 && --this.#depth === 0 && this.#resume) {
      this.#resume = false;
      this.#start();
    }
  }
}
