import type { RawBlock } from '../gate/recorder.js';

/**
 * Kernel side of a worker's call records: puts blocks back in hand-over order and resolves their rule
 * names. Blocks come from two places — the shared slots, drained in hand-over order, and copies the worker
 * posted when no slot was free — so a copy can arrive after a slot handed over later. Rule names come with
 * the worker's messages, possibly after the first block that uses them. A block goes out once every block
 * before it did and the names of its rules are known.
 */
export interface RecordSequencer {
  /** Rule names by index, as the worker sent them. */
  readonly ruleNames: readonly string[];
  /**
   * Append rule names the worker sent.
   * @param names - the new names, in index order
   */
  addRuleNames(names: readonly string[]): void;
  /**
   * Take a block (with {@link RawBlock.handOver}; one without goes out at once).
   * @param block - the block
   */
  push(block: RawBlock): void;
  /** Send out whatever still waits (the worker died before a predecessor or a rule name came), in order. */
  flush(): void;
  /** Blocks waiting for a predecessor or a rule name. */
  readonly waiting: number;
}

/**
 * Create a {@link RecordSequencer}.
 * @param emit - receives each block in order, with `rules` resolved from `ruleIds`
 * @returns the sequencer
 * @example
 * ```ts
 * const seq = createRecordSequencer((block) => onRecords(block));
 * seq.addRuleNames(message.rules);
 * for (const block of drainSlots(ring)) seq.push(block);
 * ```
 */
export function createRecordSequencer(emit: (block: RawBlock) => void): RecordSequencer {
  const names: string[] = [];
  const waiting = new Map<number, RawBlock>();
  let next = 0;

  const out = (block: RawBlock): void => {
    const ids = block.ruleIds;
    if (ids === undefined) {
      emit(block);
      return;
    }
    const rules = new Array<string | null>(block.count);
    for (let i = 0; i < block.count; i++) rules[i] = names[ids[i]!] ?? null;
    emit({ count: block.count, fields: block.fields, rules, arena: block.arena, ruleIds: ids });
  };

  const pump = (): void => {
    for (;;) {
      const block = waiting.get(next);
      if (block === undefined) return;
      const ids = block.ruleIds;
      if (ids !== undefined) for (let i = 0; i < block.count; i++) if (ids[i]! >= names.length) return;
      waiting.delete(next);
      next = (next + 1) | 0;
      out(block);
    }
  };

  return {
    ruleNames: names,
    addRuleNames(more) {
      for (const n of more) names.push(String(n));
      pump();
    },
    push(block) {
      if (block.handOver === undefined) {
        out(block);
        return;
      }
      waiting.set(block.handOver, block);
      pump();
    },
    flush() {
      pump();
      const rest = [...waiting.entries()].sort((a, b) => (a[0] - b[0]) | 0);
      waiting.clear();
      for (const [, block] of rest) {
        out(block);
        next = (block.handOver! + 1) | 0;
      }
    },
    get waiting() {
      return waiting.size;
    },
  };
}
