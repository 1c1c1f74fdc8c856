import { afterEach, describe, expect, it, vi } from 'vitest';
import { createManualClock, isForgeError, isId, type ManualClock } from '@forgeone/common';
import {
  createRedzone,
  type QuarantineCallRecord,
  type QuarantineEvent,
  type QuarantineState,
  type Redzone,
  type RedzoneOptions,
} from '../src/redzone.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const alice = { actor: 'user:alice' };

interface Harness {
  clock: ManualClock;
  rz: Redzone;
  events: QuarantineEvent[];
  flags: [string, boolean][];
}

const open: Redzone[] = [];

function setup(options: Omit<RedzoneOptions, 'clock' | 'onEvent' | 'onFlagChange'> = {}): Harness {
  const clock = createManualClock(T0);
  const events: QuarantineEvent[] = [];
  const flags: [string, boolean][] = [];
  const rz = createRedzone({
    ...options,
    clock,
    onEvent: (e) => events.push(e),
    onFlagChange: (id, q) => flags.push([id, q]),
  });
  open.push(rz);
  return { clock, rz, events, flags };
}

afterEach(() => {
  for (const rz of open.splice(0)) rz.close();
  vi.useRealTimers();
});

/** Run `fn` and return the ForgeError code it throws. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isForgeError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a ForgeError');
}

/** Bring a fresh record to `state` by allowed transitions. */
function recordIn(rz: Redzone, state: QuarantineState, containerId = 'ctr_a'): string {
  const { id } = rz.quarantine(containerId, { reason: 'policy quarantine', actor: 'gate' });
  if (state === 'analyzing' || state === 'remediating' || state === 'released' || state === 'terminated') rz.transition(id, state, alice);
  return id;
}

const ALL: QuarantineState[] = ['active', 'analyzing', 'remediating', 'released', 'terminated'];
const ALLOWED: [QuarantineState, QuarantineState][] = [
  ['active', 'analyzing'],
  ['active', 'remediating'],
  ['analyzing', 'remediating'],
  ['analyzing', 'active'],
  ['remediating', 'active'],
  ['active', 'released'],
  ['active', 'terminated'],
  ['analyzing', 'released'],
  ['analyzing', 'terminated'],
  ['remediating', 'released'],
  ['remediating', 'terminated'],
];
const REFUSED = ALL.flatMap((from) => ALL.map((to): [QuarantineState, QuarantineState] => [from, to])).filter(
  ([from, to]) => !ALLOWED.some(([f, t]) => f === from && t === to),
);

describe('quarantine', () => {
  it('creates an active record, flips the flag and emits `quarantined`', () => {
    const { rz, events, flags } = setup();
    expect(rz.isQuarantined('ctr_a')).toBe(false);
    const rec = rz.quarantine('ctr_a', { reason: 'exfiltration attempt', actor: 'gate', traceId: 'trc_1', note: 'rule net/exfil' });
    expect(isId(rec.id, 'qrn')).toBe(true);
    expect(rec).toMatchObject({ containerId: 'ctr_a', reason: 'exfiltration attempt', quarantinedAt: T0, updatedAt: T0, traceId: 'trc_1', state: 'active' });
    expect(rec.history).toEqual([{ from: null, to: 'active', actor: 'gate', at: T0, note: 'rule net/exfil' }]);
    expect(rz.isQuarantined('ctr_a')).toBe(true);
    expect(flags).toEqual([['ctr_a', true]]);
    expect(events.map((e) => [e.kind, e.from, e.to, e.actor])).toEqual([['quarantined', null, 'active', 'gate']]);
    expect(rz.get(rec.id)).toBe(rec);
  });

  it('omits traceId when none is given', () => {
    const { rz } = setup();
    const rec = rz.quarantine('ctr_a', { reason: 'r', actor: 'gate' });
    expect('traceId' in rec).toBe(false);
  });

  it('is idempotent while the container has a non-final record', () => {
    const { rz, events, flags, clock } = setup();
    const first = rz.quarantine('ctr_a', { reason: 'first', actor: 'gate' });
    clock.advance(1000);
    rz.transition(first.id, 'analyzing', alice);
    const again = rz.quarantine('ctr_a', { reason: 'second', actor: 'other' });
    expect(again.id).toBe(first.id);
    expect(again.reason).toBe('first');
    expect(again.state).toBe('analyzing');
    expect(rz.list()).toHaveLength(1);
    expect(flags).toEqual([['ctr_a', true]]);
    expect(events.map((e) => e.kind)).toEqual(['quarantined', 'state-changed']);

    rz.release(first.id, alice);
    const next = rz.quarantine('ctr_a', { reason: 'again', actor: 'gate' });
    expect(next.id).not.toBe(first.id);
    expect(rz.list({ containerId: 'ctr_a' }).map((r) => r.state)).toEqual(['released', 'active']);
  });

  it('rejects empty arguments and bad options', () => {
    const { rz } = setup();
    expect(codeOf(() => rz.quarantine('', { reason: 'r', actor: 'gate' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => rz.quarantine('ctr_a', { reason: '', actor: 'gate' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => rz.quarantine('ctr_a', { reason: 'r', actor: '' }))).toBe('INVALID_ARGUMENT');
    const id = recordIn(rz, 'active');
    expect(codeOf(() => rz.release(id, { actor: '' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => rz.transition(id, 'paused' as QuarantineState, alice))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => rz.list({ state: 'paused' as QuarantineState }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createRedzone({ maxQuarantineMs: 0 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createRedzone({ sweepIntervalMs: Number.NaN }))).toBe('INVALID_ARGUMENT');
    expect(rz.get(id).state).toBe('active');
  });
});

describe('transitions', () => {
  it.each(ALLOWED)('allows %s → %s', (from, to) => {
    const { rz, clock } = setup();
    const id = recordIn(rz, from);
    clock.advance(5000);
    const rec = rz.transition(id, to, { actor: 'user:bob', note: 'why' });
    expect(rec.state).toBe(to);
    expect(rec.updatedAt).toBe(T0 + 5000);
    expect(rec.history.at(-1)).toEqual({ from, to, actor: 'user:bob', at: T0 + 5000, note: 'why' });
    expect(rz.isQuarantined('ctr_a')).toBe(to !== 'released' && to !== 'terminated');
  });

  it.each(REFUSED)('refuses %s → %s with QUARANTINE_STATE', (from, to) => {
    const { rz, events } = setup();
    const id = recordIn(rz, from);
    const before = rz.get(id);
    const emitted = events.length;
    let caught: unknown;
    try {
      rz.transition(id, to, alice);
    } catch (error) {
      caught = error;
    }
    expect(isForgeError(caught)).toBe(true);
    if (!isForgeError(caught)) return;
    expect(caught.code).toBe('QUARANTINE_STATE');
    expect(caught.message).toContain(`from ${from} to ${to}`);
    expect(caught.details).toEqual({ id, from, to });
    expect(rz.get(id)).toBe(before);
    expect(events).toHaveLength(emitted);
  });

  it('has 11 allowed and 14 refused pairs', () => {
    expect(ALLOWED).toHaveLength(11);
    expect(REFUSED).toHaveLength(14);
  });

  it('throws NOT_FOUND for unknown ids', () => {
    const { rz } = setup();
    expect(codeOf(() => rz.get('qrn_nope'))).toBe('NOT_FOUND');
    expect(codeOf(() => rz.transition('qrn_nope', 'analyzing', alice))).toBe('NOT_FOUND');
    expect(codeOf(() => rz.release('qrn_nope', alice))).toBe('NOT_FOUND');
    expect(codeOf(() => rz.terminate('qrn_nope', alice))).toBe('NOT_FOUND');
    expect(codeOf(() => rz.analyze('qrn_nope', []))).toBe('NOT_FOUND');
  });

  it.each(['released', 'terminated'] as const)('%s is final', (final) => {
    const { rz, flags } = setup();
    const id = recordIn(rz, 'remediating');
    const rec = final === 'released' ? rz.release(id, alice) : rz.terminate(id, alice);
    expect(rec.state).toBe(final);
    expect(rz.isQuarantined('ctr_a')).toBe(false);
    expect(flags).toEqual([
      ['ctr_a', true],
      ['ctr_a', false],
    ]);
    for (const to of ALL) expect(codeOf(() => rz.transition(id, to, alice))).toBe('QUARANTINE_STATE');
    expect(codeOf(() => rz.release(id, alice))).toBe('QUARANTINE_STATE');
    expect(codeOf(() => rz.terminate(id, alice))).toBe('QUARANTINE_STATE');
    expect(rz.get(id).state).toBe(final);
    expect(flags).toHaveLength(2);
  });

  it('calls onFlagChange only on quarantine and on release or termination', () => {
    const { rz, flags } = setup();
    const a = recordIn(rz, 'active', 'ctr_a');
    const b = recordIn(rz, 'active', 'ctr_b');
    rz.transition(a, 'analyzing', alice);
    rz.transition(a, 'remediating', alice);
    rz.transition(a, 'active', alice);
    expect(flags).toEqual([
      ['ctr_a', true],
      ['ctr_b', true],
    ]);
    rz.terminate(b, alice);
    expect(rz.isQuarantined('ctr_b')).toBe(false);
    expect(rz.isQuarantined('ctr_a')).toBe(true);
    rz.release(a, alice);
    expect(rz.isQuarantined('ctr_a')).toBe(false);
    expect(flags.slice(2)).toEqual([
      ['ctr_b', false],
      ['ctr_a', false],
    ]);
  });
});

describe('events', () => {
  it('reports every change in order, with actors, times, notes and snapshots', () => {
    const { rz, events, clock } = setup();
    const { id } = rz.quarantine('ctr_a', { reason: 'policy quarantine', actor: 'gate' });
    clock.advance(1000);
    rz.analyze(id, [], { actor: 'user:alice' });
    clock.advance(1000);
    rz.transition(id, 'remediating', { actor: 'user:bob', note: 'rotating secrets' });
    clock.advance(1000);
    rz.transition(id, 'active', { actor: 'user:bob' });
    clock.advance(1000);
    rz.release(id, { actor: 'user:carol', note: 'cleared' });

    expect(events.map((e) => ({ kind: e.kind, from: e.from, to: e.to, actor: e.actor, at: e.at, note: e.note, state: e.record.state }))).toEqual([
      { kind: 'quarantined', from: null, to: 'active', actor: 'gate', at: T0, note: undefined, state: 'active' },
      { kind: 'state-changed', from: 'active', to: 'analyzing', actor: 'user:alice', at: T0 + 1000, note: undefined, state: 'analyzing' },
      { kind: 'state-changed', from: 'analyzing', to: 'remediating', actor: 'user:bob', at: T0 + 2000, note: 'rotating secrets', state: 'remediating' },
      { kind: 'state-changed', from: 'remediating', to: 'active', actor: 'user:bob', at: T0 + 3000, note: undefined, state: 'active' },
      { kind: 'released', from: 'active', to: 'released', actor: 'user:carol', at: T0 + 4000, note: 'cleared', state: 'released' },
    ]);
    for (const e of events) expect(Object.isFrozen(e)).toBe(true);
    expect(events.map((e) => e.record.history.length)).toEqual([1, 2, 3, 4, 5]);
    expect(rz.get(id).history.map((h) => h.actor)).toEqual(['gate', 'user:alice', 'user:bob', 'user:bob', 'user:carol']);
  });

  it('emits `terminated` for a termination', () => {
    const { rz, events } = setup();
    const id = recordIn(rz, 'active');
    rz.terminate(id, { actor: 'user:alice', note: 'malicious' });
    expect(events.at(-1)).toMatchObject({ kind: 'terminated', from: 'active', to: 'terminated', actor: 'user:alice', note: 'malicious' });
  });

  it('applies the change and runs every listener before reporting a listener failure', () => {
    const clock = createManualClock(T0);
    const flags: [string, boolean][] = [];
    const rz = createRedzone({
      clock,
      onFlagChange: (id, q) => flags.push([id, q]),
      onEvent: (e) => {
        if (e.kind === 'released') throw new Error('audit log down');
      },
    });
    const { id } = rz.quarantine('ctr_a', { reason: 'r', actor: 'gate' });
    let caught: unknown;
    try {
      rz.release(id, alice);
    } catch (error) {
      caught = error;
    }
    expect(isForgeError(caught) && caught.code).toBe('INTERNAL');
    expect((caught as Error).message).toContain('audit log down');
    expect(rz.get(id).state).toBe('released');
    expect(rz.isQuarantined('ctr_a')).toBe(false);
    expect(flags).toEqual([
      ['ctr_a', true],
      ['ctr_a', false],
    ]);
  });
});

describe('maximum quarantine time', () => {
  it('sweep terminates only non-final records older than the limit', () => {
    const { rz, clock, events, flags } = setup({ maxQuarantineMs: DAY });
    const old = recordIn(rz, 'active', 'ctr_old');
    const oldRemediating = recordIn(rz, 'remediating', 'ctr_rem');
    const released = recordIn(rz, 'active', 'ctr_rel');
    rz.release(released, alice);
    clock.advance(HOUR);
    const young = recordIn(rz, 'analyzing', 'ctr_young');

    clock.set(T0 + DAY);
    expect(rz.sweep()).toEqual([]);

    clock.advance(1);
    const swept = rz.sweep();
    expect(swept.map((r) => r.id)).toEqual([old, oldRemediating]);
    expect(Object.isFrozen(swept)).toBe(true);
    for (const r of swept) {
      expect(r.state).toBe('terminated');
      expect(r.history.at(-1)).toEqual({ from: r.history.at(-2)?.to, to: 'terminated', actor: 'redzone', at: T0 + DAY + 1, note: 'max quarantine time exceeded' });
    }
    expect(rz.get(released).state).toBe('released');
    expect(rz.get(young).state).toBe('analyzing');
    expect(rz.isQuarantined('ctr_old')).toBe(false);
    expect(rz.isQuarantined('ctr_young')).toBe(true);
    expect(flags.filter(([, q]) => !q).map(([c]) => c)).toEqual(['ctr_rel', 'ctr_old', 'ctr_rem']);
    expect(events.slice(-2).map((e) => [e.kind, e.actor, e.note])).toEqual([
      ['terminated', 'redzone', 'max quarantine time exceeded'],
      ['terminated', 'redzone', 'max quarantine time exceeded'],
    ]);

    expect(rz.sweep()).toEqual([]);
    clock.advance(HOUR);
    expect(rz.sweep().map((r) => r.id)).toEqual([young]);
  });

  it('defaults to 24 hours', () => {
    const { rz, clock } = setup();
    const id = recordIn(rz, 'active');
    clock.advance(DAY);
    expect(rz.sweep()).toHaveLength(0);
    clock.advance(1);
    expect(rz.sweep().map((r) => r.id)).toEqual([id]);
  });

  it('sweeps on a timer until closed (fake timers)', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { rz, clock, events } = setup({ maxQuarantineMs: 1000, sweepIntervalMs: 20 });
    const a = recordIn(rz, 'active', 'ctr_a');
    vi.advanceTimersByTime(100);
    expect(rz.get(a).state).toBe('active');
    clock.advance(1001);
    vi.advanceTimersByTime(20);
    expect(rz.get(a).state).toBe('terminated');
    expect(events.at(-1)).toMatchObject({ kind: 'terminated', actor: 'redzone' });

    rz.close();
    rz.close();
    const b = recordIn(rz, 'active', 'ctr_b');
    clock.advance(5000);
    vi.advanceTimersByTime(200);
    expect(rz.get(b).state).toBe('active');
  });

  it('sweeps on a real 20 ms interval with the manual clock', async () => {
    const { rz, clock } = setup({ maxQuarantineMs: 1000, sweepIntervalMs: 20 });
    const id = recordIn(rz, 'active');
    clock.advance(1001);
    await vi.waitFor(() => expect(rz.get(id).state).toBe('terminated'), { timeout: 2000, interval: 10 });
  });

  it('reports timer sweep failures to onError', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = createManualClock(T0);
    const errors: unknown[] = [];
    const rz = createRedzone({
      clock,
      maxQuarantineMs: 1000,
      sweepIntervalMs: 20,
      onEvent: (e) => {
        if (e.kind === 'terminated') throw new Error('listener broke');
      },
      onError: (e) => errors.push(e),
    });
    open.push(rz);
    const a = recordIn(rz, 'active', 'ctr_a');
    const b = recordIn(rz, 'active', 'ctr_b');
    clock.advance(1001);
    vi.advanceTimersByTime(20);
    expect(rz.get(a).state).toBe('terminated');
    expect(rz.get(b).state).toBe('terminated');
    expect(errors).toHaveLength(1);
    expect(isForgeError(errors[0]) && errors[0].code).toBe('INTERNAL');
    expect(isForgeError(errors[0]) && errors[0].details).toEqual({ failures: 2 });
  });
});

describe('analyze', () => {
  const QT = T0 + 10_000;
  const call = (seq: number, syscall: string, verdict: QuarantineCallRecord['verdict'], rule: string | null, reason: string, flags?: string[]): QuarantineCallRecord => ({
    seq,
    time: T0 + seq * 1000,
    syscall,
    verdict,
    rule,
    reason,
    ...(flags === undefined ? {} : { flags }),
  });
  /** 8 calls, given out of order: 3 refused (2 deny, 1 quarantine), 4 flagged. */
  const CALLS: QuarantineCallRecord[] = [
    call(5, 'wasi:filesystem/open-at', 'deny', null, 'default deny', ['burst', 'burst']),
    call(1, 'wasi:filesystem/open-at', 'allow', 'app/data', 'data dir'),
    call(8, 'wasi:sockets/connect', 'quarantine', 'net/exfil', 'connection to an unknown host', ['exfil']),
    call(2, 'wasi:filesystem/read', 'allow', 'app/data', 'data dir', ['burst']),
    call(3, 'wasi:filesystem/open-at', 'deny', 'base/no-etc', 'no access to /etc', ['sensitive-path', 'burst']),
    call(4, 'wasi:clocks/now', 'audit', 'base/audit-clock', 'clock reads are audited'),
    call(7, 'wasi:sockets/connect', 'allow', 'net/api', 'api host'),
    call(6, 'wasi:filesystem/read', 'allow', 'app/data', 'data dir'),
  ];

  function quarantined(): Harness & { id: string } {
    const h = setup();
    h.clock.set(QT);
    const { id } = h.rz.quarantine('ctr_a', { reason: 'policy net/exfil quarantined the call', actor: 'gate', traceId: 'trc_9' });
    h.clock.advance(60_000);
    return { ...h, id };
  }

  it('moves an active record to analyzing and reports what was denied and why', () => {
    const { rz, id, events } = quarantined();
    const report = rz.analyze(id, CALLS, { actor: 'user:alice' });

    expect(report.record.state).toBe('analyzing');
    expect(report.record).toBe(rz.get(id));
    expect(events.at(-1)).toMatchObject({ kind: 'state-changed', from: 'active', to: 'analyzing', actor: 'user:alice' });
    expect(report.generatedAt).toBe(QT + 60_000);
    expect(report.calls.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(report.callsAfterQuarantine).toBe(0);
    expect(report.bySyscall).toEqual([
      { syscall: 'wasi:filesystem/open-at', count: 3 },
      { syscall: 'wasi:filesystem/read', count: 2 },
      { syscall: 'wasi:sockets/connect', count: 2 },
      { syscall: 'wasi:clocks/now', count: 1 },
    ]);
    expect(report.byVerdict).toEqual({ allow: 4, audit: 1, deny: 2, quarantine: 1 });
    expect(report.denied).toEqual([
      { seq: 3, time: T0 + 3000, syscall: 'wasi:filesystem/open-at', verdict: 'deny', rule: 'base/no-etc', reason: 'no access to /etc' },
      { seq: 5, time: T0 + 5000, syscall: 'wasi:filesystem/open-at', verdict: 'deny', rule: null, reason: 'default deny' },
      { seq: 8, time: T0 + 8000, syscall: 'wasi:sockets/connect', verdict: 'quarantine', rule: 'net/exfil', reason: 'connection to an unknown host' },
    ]);
    expect(report.firstDenial).toEqual(report.denied[0]);
    expect(report.flags).toEqual([
      { flag: 'burst', count: 3 },
      { flag: 'exfil', count: 1 },
      { flag: 'sensitive-path', count: 1 },
    ]);

    const s = report.summary;
    expect(s).toContain('Container ctr_a was quarantined at 2026-01-01T00:00:10.000Z (policy net/exfil quarantined the call)');
    expect(s).toContain('8 calls to 4 syscalls (4 allow, 1 audit, 2 deny, 1 quarantine)');
    expect(s).toContain('3 calls were refused (base/no-etc (1), default action (1), net/exfil (1))');
    expect(s).toContain('the first: call #3 (wasi:filesystem/open-at) got deny from rule base/no-etc: no access to /etc.');
    expect(s).toContain('Flags raised: burst (3), exfil (1), sensitive-path (1).');
    expect(s).toContain('Full trace: trc_9.');
    expect(s).not.toContain('\n');
  });

  it('leaves out calls made after the quarantine time', () => {
    const { rz, id } = quarantined();
    const later = { ...call(11, 'wasi:filesystem/read', 'deny', null, 'quarantined'), time: QT + 1 };
    const atQt = { ...call(10, 'wasi:sockets/connect', 'quarantine', 'net/exfil', 'exfil'), time: QT };
    const report = rz.analyze(id, [...CALLS, later, atQt]);
    expect(report.calls.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 10]);
    expect(report.callsAfterQuarantine).toBe(1);
    expect(report.summary).toContain('1 later call left out.');
    expect(report.record.history.at(-1)?.actor).toBe('redzone');
  });

  it('reports on non-active records without changing them, and on empty traces', () => {
    const { rz, id, events } = quarantined();
    rz.transition(id, 'remediating', alice);
    const emitted = events.length;
    const report = rz.analyze(id, []);
    expect(report.record.state).toBe('remediating');
    expect(events).toHaveLength(emitted);
    expect(report.firstDenial).toBeNull();
    expect(report.byVerdict).toEqual({ allow: 0, audit: 0, deny: 0, quarantine: 0 });
    expect(report.summary).toContain('No calls were recorded before the quarantine.');
    rz.terminate(id, alice);
    expect(rz.analyze(id, CALLS).record.state).toBe('terminated');
    expect(codeOf(() => rz.analyze(id, 'nope' as unknown as QuarantineCallRecord[]))).toBe('INVALID_ARGUMENT');
  });

  it('returns a frozen report that does not follow later changes to its input', () => {
    const { rz, id } = quarantined();
    const calls = CALLS.map((c) => ({ ...c, ...(c.flags === undefined ? {} : { flags: [...c.flags] }) }));
    const report = rz.analyze(id, calls);
    calls[0]!.syscall = 'changed';
    calls[0]!.flags = ['changed'];
    calls.length = 0;
    expect(report.calls).toHaveLength(8);
    expect(report.calls.map((c) => c.syscall)).not.toContain('changed');
    for (const part of [report, report.calls, report.calls[0], report.bySyscall, report.byVerdict, report.denied, report.flags, report.calls[4]?.flags]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
  });
});

describe('snapshots', () => {
  it('are frozen and never change when the registry changes', () => {
    const { rz, clock } = setup();
    const rec = rz.quarantine('ctr_a', { reason: 'r', actor: 'gate' });
    expect(Object.isFrozen(rec)).toBe(true);
    expect(Object.isFrozen(rec.history)).toBe(true);
    expect(Object.isFrozen(rec.history[0])).toBe(true);
    expect(() => {
      (rec as { state: QuarantineState }).state = 'released';
    }).toThrow(TypeError);
    expect(() => (rec.history as unknown[]).push({})).toThrow(TypeError);

    clock.advance(1000);
    const later = rz.transition(rec.id, 'analyzing', alice);
    rz.release(rec.id, alice);
    expect(rec.state).toBe('active');
    expect(rec.updatedAt).toBe(T0);
    expect(rec.history).toHaveLength(1);
    expect(later.state).toBe('analyzing');
    expect(later.history).toHaveLength(2);
    expect(rz.get(rec.id).state).toBe('released');
    expect(rz.get(rec.id)).not.toBe(rec);
  });

  it('list returns frozen arrays of snapshots, filtered by state and container', () => {
    const { rz } = setup();
    const a = recordIn(rz, 'active', 'ctr_a');
    const b = recordIn(rz, 'analyzing', 'ctr_b');
    const c = recordIn(rz, 'active', 'ctr_c');
    rz.terminate(c, alice);
    const all = rz.list();
    expect(Object.isFrozen(all)).toBe(true);
    expect(all.map((r) => r.id)).toEqual([a, b, c]);
    expect(rz.list({ state: 'active' }).map((r) => r.id)).toEqual([a]);
    expect(rz.list({ state: 'terminated', containerId: 'ctr_c' }).map((r) => r.id)).toEqual([c]);
    expect(rz.list({ state: 'active', containerId: 'ctr_c' })).toEqual([]);
    expect(rz.list({ containerId: 'ctr_b' })[0]).toBe(rz.get(b));
    rz.release(a, alice);
    expect(all[0]?.state).toBe('active');
  });
});
