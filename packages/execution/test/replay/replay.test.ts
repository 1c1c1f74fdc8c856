import { describe, expect, it } from 'vitest';
import { buildComponentImports, createMemoryServices, instantiateComponent, transpileComponent, type LoadedComponent } from '../../src/component/index.js';
import type { CallRecord } from '../../src/gate/index.js';
import { replayComponent, type ReplayRecord } from '../../src/replay/index.js';
import { allowAllExcept, policyGate, watComponent } from '../component/helpers.js';

// A component that reads the time (forgeone:host/time), logs its input (forgeone:host/log) and draws a
// random u64 (wasi:random), in an order and at a log level the variants change.
function guest(body: string): string {
  return `(component
  (import "forgeone:host/time@0.1.0" (instance $time
    (type $he (record (field "code" string) (field "message" string)))
    (export $e "host-error" (type (eq $he)))
    (type $f (func (result (result u64 (error $e)))))
    (export "now" (func (type $f)))))
  (import "forgeone:host/log@0.1.0" (instance $log
    (type $he (record (field "code" string) (field "message" string)))
    (export $e "host-error" (type (eq $he)))
    (type $lv (enum "debug" "info" "warn" "error"))
    (export $l "level" (type (eq $lv)))
    (type $f (func (param "level" $l) (param "message" string) (result (result (error $e)))))
    (export "write" (func (type $f)))))
  (import "wasi:random/random@0.2.0" (instance $random
    (export "get-random-u64" (func (result u64)))))
  (core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))
  (alias export $time "now" (func $time-now))
  (alias export $log "write" (func $log-write))
  (alias export $random "get-random-u64" (func $rand))
  (core func $now (canon lower (func $time-now) (memory $mem) (realloc $realloc)))
  (core func $write (canon lower (func $log-write) (memory $mem) (realloc $realloc)))
  (core func $rand64 (canon lower (func $rand)))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "now" (func $now (param i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (import "host" "rand" (func $rand (result i64)))
    (data (i32.const 200) "done")
    (func (export "run") (param $p i32) (param $n i32) (result i32)
      ${body}
      (i32.store (i32.const 128) (i32.const 200))
      (i32.store (i32.const 132) (i32.const 4))
      (i32.const 128)))
  (core instance $host (export "now" (func $now)) (export "write" (func $write)) (export "rand" (func $rand64)))
  (core instance $main (instantiate $main (with "libc" (instance $libc)) (with "host" (instance $host))))
  (func (export "run") (param "input" string) (result string) (canon lift (core func $main "run") (memory $mem) (realloc $realloc))))`;
}

const NOW = '(call $now (i32.const 64))';
const LOG_INFO = '(call $write (i32.const 1) (local.get $p) (local.get $n) (i32.const 96))';
const LOG_WARN = '(call $write (i32.const 2) (local.get $p) (local.get $n) (i32.const 96))';
const RAND = '(drop (call $rand))';

async function load(body: string): Promise<LoadedComponent> {
  return transpileComponent(await watComponent(guest(body)));
}

/** Run a component for real behind a recording gate; return its records. */
function record(loaded: LoadedComponent, input: string, policy = allowAllExcept()): CallRecord[] {
  const { gate, recorder } = policyGate(policy);
  const services = createMemoryServices();
  const imports = buildComponentImports({ gate, services });
  const outcome = instantiateComponent(loaded, imports).call({ input });
  expect(outcome).toEqual({ ok: true, value: 'done' });
  return recorder.flush();
}

describe('replayComponent', () => {
  it('replays a run identically, answering clocks and random from the record', async () => {
    const loaded = await load(`${NOW} ${LOG_INFO} ${RAND} ${NOW}`);
    const records = record(loaded, 'hello replay');
    expect(records.map((r) => r.syscall)).toEqual(['forgeone:time/now', 'forgeone:log/write', 'wasi:random/random', 'forgeone:time/now']);
    const report = await replayComponent({ records, component: loaded, input: 'hello replay' });
    expect(report.divergence).toBeNull();
    expect(report.identical).toBe(true);
    expect(report.matched).toBe(4);
    expect(report.outcome).toEqual({ ok: true, value: 'done' });
    expect(report.logs).toEqual([{ level: 'info', message: 'hello replay' }]);
  });

  it('a changed package diverges at the first call it makes differently', async () => {
    const records = record(await load(`${NOW} ${LOG_INFO} ${RAND}`), 'x');
    const report = await replayComponent({ records, component: await load(`${NOW} ${LOG_WARN} ${RAND}`), input: 'x' });
    expect(report.identical).toBe(false);
    expect(report.divergence).toMatchObject({ seq: 1, kind: 'arguments', expected: { syscall: 'forgeone:log/write', args: { detail: 'info' } }, got: { syscall: 'forgeone:log/write', args: { detail: 'warn' } } });
    expect(report.matched).toBe(1);
    expect(report.outcome).toMatchObject({ ok: false, code: 'REPLAY_DIVERGED' });
  });

  it('a guest that reads the time at another point diverges at that record', async () => {
    const records = record(await load(`${LOG_INFO} ${NOW} ${RAND}`), 'abc');
    const report = await replayComponent({ records, component: await load(`${LOG_INFO} ${RAND} ${NOW}`), input: 'abc' });
    expect(report.divergence).toMatchObject({ seq: 1, kind: 'syscall', expected: { syscall: 'forgeone:time/now' }, got: { syscall: 'wasi:random/random' } });
  });

  it('a guest that reads the time one more time diverges after the last record', async () => {
    const records = record(await load(`${NOW} ${LOG_INFO}`), 'abc');
    const report = await replayComponent({ records, component: await load(`${NOW} ${LOG_INFO} ${NOW}`), input: 'abc' });
    expect(report.divergence).toMatchObject({ seq: 2, kind: 'extra-call', expected: null, got: { syscall: 'forgeone:time/now' } });
  });

  it('a guest that makes fewer calls diverges at the first call it did not make', async () => {
    const records = record(await load(`${NOW} ${LOG_INFO} ${NOW}`), 'abc');
    const report = await replayComponent({ records, component: await load(`${NOW} ${LOG_INFO}`), input: 'abc' });
    expect(report.divergence).toMatchObject({ seq: 2, kind: 'missing-call', expected: { syscall: 'forgeone:time/now' }, got: null });
    expect(report.outcome).toEqual({ ok: true, value: 'done' });
  });

  it('an edited trace diverges at the edited record', async () => {
    const loaded = await load(`${NOW} ${LOG_INFO} ${RAND} ${NOW}`);
    const records: ReplayRecord[] = record(loaded, 'hello');
    // The log's size edited: the replayed guest logs 5 bytes, the record says 6.
    const edited = records.map((r) => (r.seq === 1 ? { ...r, args: { ...r.args, size: 6 } } : r));
    const a = await replayComponent({ records: edited, component: loaded, input: 'hello' });
    expect(a.divergence).toMatchObject({ seq: 1, kind: 'arguments', expected: { args: { size: 6 } }, got: { args: { size: 5 } } });
    // A record removed: the replay's third call is not the record's third.
    const removed = records.filter((r) => r.seq !== 2);
    const b = await replayComponent({ records: removed, component: loaded, input: 'hello' });
    expect(b.divergence).toMatchObject({ seq: 3, kind: 'syscall', expected: { syscall: 'forgeone:time/now' }, got: { syscall: 'wasi:random/random' } });
    // The recorded result code of the log edited: the replayed log succeeds.
    const failed = records.map((r) => (r.seq === 1 ? { ...r, result: 1 } : r));
    const c = await replayComponent({ records: failed, component: loaded, input: 'hello' });
    expect(c.divergence).toMatchObject({ seq: 1, kind: 'result', expected: { result: 1 }, got: { result: 0 } });
    // A recorded success turned into a failure that the record cannot explain.
    const unexplained = records.map((r) => (r.seq === 0 ? { ...r, result: 1 } : r));
    expect((await replayComponent({ records: unexplained, component: loaded, input: 'hello' })).divergence).toMatchObject({ seq: 0, kind: 'unanswerable' });
    // The recorded random bytes cut short: the record cannot answer the call.
    const short = records.map((r) => (r.seq === 2 ? { ...r, resultBytes: r.resultBytes!.subarray(0, 4) } : r));
    const d = await replayComponent({ records: short, component: loaded, input: 'hello' });
    expect(d.divergence).toMatchObject({ seq: 2, kind: 'unanswerable' });
  });

  it('replays refusals with the recorded code, without asking the policy', async () => {
    const loaded = await load(`${NOW} ${LOG_INFO} ${NOW}`);
    const records = record(loaded, 'denied', allowAllExcept('forgeone:log/write'));
    expect(records[1]).toMatchObject({ syscall: 'forgeone:log/write', allowed: false, verdict: 'deny' });
    expect(new TextDecoder().decode(records[1]!.resultBytes!)).toBe('POLICY_DENIED');
    const report = await replayComponent({ records, component: loaded, input: 'denied' });
    expect(report.identical).toBe(true);
    expect(report.logs).toEqual([]);
  });

  it('answers the time from the record, not the clock', async () => {
    const loaded = await load(`${NOW} ${NOW}`);
    const records = record(loaded, '');
    // Move both recorded readings an hour back: the replay answers with them (and so stays identical).
    const shifted = records.map((r) => {
      const b = new Uint8Array(r.resultBytes!);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, v.getBigUint64(0, true) - 3_600_000n, true);
      return { ...r, resultBytes: b };
    });
    const report = await replayComponent({ records: shifted, component: loaded, input: '' });
    expect(report.identical).toBe(true);
  });
});
