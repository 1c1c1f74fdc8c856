import { isForgeError } from '@forgeone/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONTAINER_STATUSES,
  CONTAINER_TRANSITIONS,
  RESTART_POLICIES,
  accountUsage,
  canTransition,
  decodeRecord,
  encodeRecord,
  isTerminalStatus,
  restartRecord,
  transition,
  type ContainerRecord,
  type ContainerStatus,
  type TransitionOptions,
} from '../../src/index.js';
import { T0, baseRecord } from './helpers.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isForgeError(e) ? e.code : `not a ForgeError: ${String(e)}`;
  }
  return undefined;
}

const reasonFor = (to: ContainerStatus): TransitionOptions['reason'] =>
  to === 'failed' ? { code: 'WASM_TRAP', message: 'unreachable' } : to === 'quarantined' ? { message: 'anomaly score 0.97' } : undefined;

function opts(to: ContainerStatus, at = T0 + 1): TransitionOptions {
  const reason = reasonFor(to);
  return reason === undefined ? { at } : { at, reason };
}

describe('transition table', () => {
  it('allows exactly the listed moves and refuses every other with CONTAINER_INVALID_TRANSITION', () => {
    for (const from of CONTAINER_STATUSES) {
      for (const to of CONTAINER_STATUSES) {
        const rec = baseRecord({ status: from });
        if (CONTAINER_TRANSITIONS[from].includes(to)) {
          const next = transition(rec, to, opts(to));
          expect(next.status).toBe(to);
          expect(next.history.at(-1)).toMatchObject({ from, to, at: T0 + 1 });
        } else {
          let err: unknown;
          try {
            transition(rec, to, opts(to));
          } catch (e) {
            err = e;
          }
          expect(isForgeError(err), `${from} -> ${to} must be refused`).toBe(true);
          expect((err as { code: string }).code).toBe('CONTAINER_INVALID_TRANSITION');
          expect((err as { details: unknown }).details).toMatchObject({ from, to });
        }
      }
    }
  });

  it('has no way out of the terminal states and no self-loops', () => {
    for (const s of CONTAINER_STATUSES) {
      expect(canTransition(s, s)).toBe(false);
      expect(CONTAINER_TRANSITIONS[s].length === 0).toBe(isTerminalStatus(s));
    }
  });

  it('requires a coded reason for failed and a reason for quarantined', () => {
    const running = baseRecord({ status: 'running' });
    expect(code(() => transition(running, 'failed', { at: T0 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => transition(running, 'failed', { at: T0, reason: { message: 'no code' } }))).toBe('INVALID_ARGUMENT');
    expect(code(() => transition(running, 'quarantined', { at: T0 }))).toBe('INVALID_ARGUMENT');
    // an unknown code is refused, naming the field
    try {
      transition(running, 'failed', { at: T0, reason: { code: 'NOPE' as never, message: 'x' } });
      expect.unreachable();
    } catch (e) {
      expect((e as { details: unknown }).details).toEqual({ field: 'reason.code' });
    }
    const failed = transition(running, 'failed', { at: T0 + 5, reason: { code: 'SANDBOX_CPU_EXCEEDED', message: 'budget 100ms' } });
    expect(failed.reason).toEqual({ code: 'SANDBOX_CPU_EXCEEDED', message: 'budget 100ms' });
    expect(failed.updatedAt).toBe(T0 + 5);
  });

  it('keeps the reason only while in the state it explains', () => {
    const q = transition(baseRecord({ status: 'running' }), 'quarantined', { at: T0, reason: { message: 'suspicious' } });
    expect(q.reason?.message).toBe('suspicious');
    const back = transition(q, 'running', { at: T0 + 1 });
    expect(back.reason).toBeUndefined();
    expect(back.history.map((h) => h.reason?.message)).toEqual([undefined, 'suspicious', undefined]);
  });

  it('sets a stop deadline from the grace period and clears it on leaving stopping', () => {
    const stopping = transition(baseRecord({ status: 'running' }), 'stopping', { at: T0, graceMs: 5000 });
    expect(stopping.stopDeadline).toBe(T0 + 5000);
    expect(transition(stopping, 'stopped', { at: T0 + 10 }).stopDeadline).toBeUndefined();
    expect(code(() => transition(baseRecord({ status: 'running' }), 'stopping', { at: T0, graceMs: -1 }))).toBe('INVALID_ARGUMENT');
  });

  it('returns frozen records and leaves the input untouched', () => {
    const rec = baseRecord();
    const next = transition(rec, 'running', { at: T0 + 1 });
    expect(rec.status).toBe('creating');
    expect(Object.isFrozen(next)).toBe(true);
    expect(Object.isFrozen(next.history)).toBe(true);
    expect(Object.isFrozen(next.resources)).toBe(true);
  });

  it('random walks follow the table, bound the history and count every move', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...CONTAINER_STATUSES), { maxLength: 80 }), fc.integer({ min: 1, max: 10 }), (targets, maxHistory) => {
        let rec: ContainerRecord = baseRecord();
        let moves = 0;
        let at = T0;
        for (const to of targets) {
          const from = rec.status;
          at += 1;
          const c = code(() => {
            rec = transition(rec, to, { ...opts(to, at), maxHistory });
          });
          if (canTransition(from, to)) {
            expect(c).toBeUndefined();
            moves++;
            expect(rec.status).toBe(to);
          } else {
            expect(c).toBe('CONTAINER_INVALID_TRANSITION');
            expect(rec.status).toBe(from);
          }
          expect(rec.history.length).toBeLessThanOrEqual(maxHistory);
          expect(rec.transitions).toBe(moves);
          // history entries chain: each entry starts where the previous ended
          for (let i = 1; i < rec.history.length; i++) expect(rec.history[i]!.from).toBe(rec.history[i - 1]!.to);
          expect(rec.history.at(-1)!.to).toBe(rec.status);
        }
      }),
    );
  });
});

describe('restart edge', () => {
  it('follows the restart policy', () => {
    for (const restartPolicy of RESTART_POLICIES) {
      for (const status of CONTAINER_STATUSES) {
        const rec = baseRecord({ status, restartPolicy, resources: { cpuMs: 7, memoryBytesPeak: 9, calls: 3, denials: 1 } });
        const allowed = (status === 'failed' && restartPolicy !== 'never') || (status === 'stopped' && restartPolicy === 'always');
        if (allowed) {
          const again = restartRecord(rec, { at: T0 + 1 });
          expect(again.status).toBe('creating');
          expect(again.restarts).toBe(1);
          expect(again.resources).toEqual(rec.resources);
          expect(again.history.at(-1)).toMatchObject({ from: status, to: 'creating' });
        } else {
          expect(code(() => restartRecord(rec, { at: T0 + 1 })), `${restartPolicy}/${status}`).toBe('CONTAINER_INVALID_TRANSITION');
        }
      }
    }
  });
});

describe('resource accounting', () => {
  it('accumulates cpu, calls and denials and keeps the memory peak', () => {
    let rec = baseRecord({ status: 'running' });
    rec = accountUsage(rec, { cpuMs: 1.5, calls: 10, denials: 1, memoryBytes: 65536 }, T0 + 1);
    rec = accountUsage(rec, { cpuMs: 2, calls: 5, memoryBytes: 4096 }, T0 + 2);
    rec = accountUsage(rec, { memoryBytes: 131072 }, T0 + 3);
    expect(rec.resources).toEqual({ cpuMs: 3.5, calls: 15, denials: 1, memoryBytesPeak: 131072 });
    expect(rec.updatedAt).toBe(T0 + 3);
  });

  it('refuses bad usage, naming the field', () => {
    const rec = baseRecord();
    for (const [usage, field] of [
      [{ cpuMs: -1 }, 'usage.cpuMs'],
      [{ cpuMs: Number.NaN }, 'usage.cpuMs'],
      [{ calls: 1.5 }, 'usage.calls'],
      [{ denials: -2 }, 'usage.denials'],
      [{ memoryBytes: Infinity }, 'usage.memoryBytes'],
    ] as const) {
      try {
        accountUsage(rec, usage, T0);
        expect.unreachable();
      } catch (e) {
        expect((e as { code: string }).code).toBe('INVALID_ARGUMENT');
        expect((e as { details: unknown }).details).toEqual({ field });
      }
    }
  });
});

describe('persisted form', () => {
  it('round-trips a record with reason, deadline and history', () => {
    let rec = transition(baseRecord(), 'running', { at: T0 + 1 });
    rec = accountUsage(rec, { cpuMs: 12.25, calls: 3 }, T0 + 2);
    rec = transition(rec, 'stopping', { at: T0 + 3, graceMs: 100, reason: { message: 'operator' } });
    expect(decodeRecord(encodeRecord(rec), rec.id)).toEqual(rec);
  });

  it('reports damage as STATE_CORRUPT naming the field', () => {
    const rec = baseRecord();
    const bad = (mutate: (o: Record<string, unknown>) => void): Uint8Array => {
      const o = JSON.parse(new TextDecoder().decode(encodeRecord(rec))) as Record<string, unknown>;
      mutate(o);
      return new TextEncoder().encode(JSON.stringify(o));
    };
    const fieldOf = (bytes: Uint8Array, key = rec.id): unknown => {
      try {
        decodeRecord(bytes, key);
      } catch (e) {
        expect((e as { code: string }).code).toBe('STATE_CORRUPT');
        return (e as { details: { field?: string } }).details.field;
      }
      return 'decoded';
    };
    expect(fieldOf(bad((o) => (o.status = 'zombie')))).toBe('status');
    expect(fieldOf(bad((o) => ((o.resources as Record<string, unknown>).calls = -1)))).toBe('resources.calls');
    expect(fieldOf(bad((o) => (o.extra = 1)))).toBe('extra');
    expect(fieldOf(bad(() => undefined), 'ctr_other')).toBe('id');
    expect(fieldOf(Uint8Array.from([0xff, 0xfe]))).toBeUndefined();
  });
});
