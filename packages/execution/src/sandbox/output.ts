import { METER_OUTPUT_BYTES } from './protocol.js';

/** A byte sink that counts what it accepts against a shared budget. */
export interface OutputSink {
  /**
   * Write bytes. All or nothing: a write that would pass the budget is refused whole.
   * @param bytes - the bytes (copied before delivery)
   * @returns the number of bytes accepted, or -1 when the budget is exhausted
   */
  write(bytes: Uint8Array): number;
  /** Bytes accepted by every sink sharing the budget. */
  readonly used: number;
  /** The shared budget in bytes. */
  readonly limit: number;
}

/** The budget several sinks share. */
export interface OutputBudget {
  /** Bytes accepted so far. */
  used: number;
  /** The limit. */
  readonly limit: number;
  /** Where the count is published (a meter array), if anywhere. */
  readonly meter?: Int32Array;
}

/**
 * Create a counting sink: it forwards accepted bytes to `deliver` and refuses writes beyond the budget.
 * @param budget - shared with the container's other sinks (see {@link createOutputBudget})
 * @param deliver - receives a copy of each accepted write
 * @returns the sink
 * @example
 * ```ts
 * const budget = createOutputBudget(1024);
 * const stdout = createOutputSink(budget, (b) => chunks.push(b));
 * stdout.write(new TextEncoder().encode('hi')); // 2
 * ```
 */
export function createOutputSink(budget: OutputBudget, deliver: (bytes: Uint8Array) => void): OutputSink {
  return {
    write(bytes: Uint8Array): number {
      const n = bytes.length;
      if (budget.used + n > budget.limit) return -1;
      budget.used += n;
      if (budget.meter !== undefined) Atomics.store(budget.meter, METER_OUTPUT_BYTES, budget.used);
      if (n > 0) deliver(bytes.slice());
      return n;
    },
    get used(): number {
      return budget.used;
    },
    get limit(): number {
      return budget.limit;
    },
  };
}

/**
 * Create an output budget.
 * @param limit - bytes allowed in total
 * @param meter - a meter array to publish the count in
 * @returns the budget
 */
export function createOutputBudget(limit: number, meter?: Int32Array): OutputBudget {
  return meter === undefined ? { used: 0, limit } : { used: 0, limit, meter };
}
