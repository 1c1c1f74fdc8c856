// pnpm bench (floor part): how low could the gated string call of the component bench go? The same loop.wat
// guest and log.write call as bench/component.bench.mjs, against three import objects in one run:
//   raw        — the minimal import jco needs (the component bench's raw column);
//   fused      — ONE hand-written function doing the least the gate must do for this call, with no classes,
//                no calls into the gate or recorder and no generality: level check, UTF-8 size of the message
//                (Buffer.byteLength) and its limit, the quarantine word, the (constant) decision, the
//                counters, and the record (12 fields into a Float64Array, the level into an arena);
//   fused−size — the same without counting the message's bytes (size = UTF-16 length: NOT what the gate may
//                record, shown only to price the count);
//   fused−record — `fused` without the record: fused/fused−record is the floor of recording on/off (issue 5);
//   compact    — `fused` with a compact record: four Int32 slots, start and duration, the size, and the level
//                string kept BY REFERENCE (JS strings are immutable, so a reference is a copy) and encoded
//                into an arena when the block of 256 is handed over. What a redesigned recorder would do on
//                the guest's thread.
// The ratios are the floor of a gate behind jco's JS-level bindings (every column here is a plain function, so
// jco's trampoline lifts the level and decodes the message before it): no implementation there can do less
// work than `fused`. The adapter's own log.write is now linked at the core level (jco hybrid bindings,
// src/component/lower.ts) and skips that lifting, which costs about as much as the gate: see the
// component bench for where the real gate stands against the raw jco import.   node bench/floor.bench.mjs [--rounds=R]
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createCoarseClock, transpileComponent } from '../dist/index.js';
import { BUILD, buildWatLoopGuest, loopPolicy } from './loop-guests.mjs';

const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ROUNDS = Number(arg('rounds') ?? 9);
const N = 2_000_000;
const loaded = await transpileComponent(await buildWatLoopGuest(), { cacheDir: join(BUILD, 'jco') });
const { syscalls, gatePolicy } = loopPolicy();
const clock = createCoarseClock();
const LOG = syscalls.id('forgeone:log/write');
let sink = 0;
const touch = (level, message) => {
  sink = (sink + level.length + message.length) | 0;
};
const now = () => BigInt(Math.floor(performance.timeOrigin + performance.now()));

function fused(countBytes, record = true) {
  const control = new Int32Array(new SharedArrayBuffer(32));
  const B = 256;
  const F = 12;
  const fields = new Float64Array(B * F);
  const arena = new Uint8Array(64 * 1024);
  const ruleIds = new Int32Array(B);
  const counts = new Uint32Array(128);
  const t = clock.now;
  let n = 0;
  let used = 0;
  let seq = 0;
  return (level, message) => {
    if (level !== 'info' && level !== 'debug' && level !== 'warn' && level !== 'error') throw new Error('level');
    const size = countBytes ? Buffer.byteLength(message, 'utf8') : message.length;
    if (size > 65536) throw new Error('too big');
    if (control[0] !== 0) throw new Error('held');
    const start = t();
    if (gatePolicy.decide(LOG, null).verdict !== 'allow') throw new Error('denied');
    control[2] = LOG;
    touch(level, message);
    control[2] = -1;
    control[3] = (control[3] + 1) | 0;
    counts[LOG]++;
    if (!record) return;
    const base = n * F;
    fields[base] = seq++;
    fields[base + 1] = LOG;
    fields[base + 2] = 0;
    fields[base + 3] = 1;
    fields[base + 4] = 0;
    fields[base + 5] = start;
    fields[base + 6] = t() - start;
    fields[base + 7] = used;
    fields[base + 8] = -1;
    fields[base + 10] = NaN;
    fields[base + 11] = size;
    arena[used] = 5;
    const len = level.length;
    for (let i = 0; i < len; i++) arena[used + 5 + i] = level.charCodeAt(i);
    arena[used + 1] = len;
    arena[used + 2] = 0;
    arena[used + 3] = 0;
    arena[used + 4] = 0;
    used += 5 + len;
    ruleIds[n] = 0;
    if (++n === B) {
      n = 0;
      used = 0;
    }
  };
}

function compact() {
  const control = new Int32Array(new SharedArrayBuffer(32));
  const B = 256;
  const meta = new Int32Array(B * 4);
  const times = new Float64Array(B * 2);
  const sizes = new Float64Array(B);
  const levels = new Array(B).fill(undefined);
  const arena = new Uint8Array(64 * 1024);
  const counts = new Uint32Array(128);
  const t = clock.now;
  let n = 0;
  let seq = 0;
  return (level, message) => {
    if (level !== 'info' && level !== 'debug' && level !== 'warn' && level !== 'error') throw new Error('level');
    const size = Buffer.byteLength(message, 'utf8');
    if (size > 65536) throw new Error('too big');
    if (control[0] !== 0) throw new Error('held');
    const start = t();
    if (gatePolicy.decide(LOG, null).verdict !== 'allow') throw new Error('denied');
    control[2] = LOG;
    touch(level, message);
    control[2] = -1;
    control[3] = (control[3] + 1) | 0;
    counts[LOG]++;
    const k = n << 2;
    meta[k] = LOG | (1 << 16);
    meta[k + 1] = 0;
    meta[k + 2] = 0;
    meta[k + 3] = seq++;
    times[n << 1] = start;
    times[(n << 1) + 1] = t() - start;
    sizes[n] = size;
    levels[n] = level;
    if (++n === B) {
      // The hand-over: the strings kept by reference are encoded into the block's arena now.
      let at = 0;
      for (let i = 0; i < B; i++) {
        const l = levels[i];
        arena[at] = 5;
        const len = l.length;
        for (let j = 0; j < len; j++) arena[at + 5 + j] = l.charCodeAt(j);
        arena[at + 1] = len;
        arena[at + 2] = 0;
        arena[at + 3] = 0;
        arena[at + 4] = 0;
        at += 5 + len;
        levels[i] = undefined;
      }
      n = 0;
    }
  };
}
const imports = (write) => ({ 'forgeone:host/time': { now }, 'forgeone:host/log': { write } });
const columns = {
  raw: loaded.instantiate(imports(touch)),
  fused: loaded.instantiate(imports(fused(true))),
  'fused−size': loaded.instantiate(imports(fused(false))),
  'fused−record': loaded.instantiate(imports(fused(true, false))),
  compact: loaded.instantiate(imports(compact())),
};
for (const ex of Object.values(columns)) if (Number(ex.loopLog(10)) !== 10) throw new Error('the loop guest did not log 10 times');
const time = (ex) => {
  const t0 = process.hrtime.bigint();
  ex.loopLog(N);
  return Number(process.hrtime.bigint() - t0) / N;
};
for (const ex of Object.values(columns)) time(ex);
const samples = {};
for (let r = 0; r < ROUNDS; r++) for (const [k, ex] of Object.entries(columns)) (samples[k] ??= []).push(time(ex));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const raw = median(samples.raw);
console.log(`\nfloor of the gated string call (loop.wat, log.write): ${N.toLocaleString()} calls, median of ${ROUNDS} interleaved rounds; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.table(Object.entries(samples).map(([k, xs]) => ({ column: k, 'ns/call': median(xs).toFixed(1), '/raw': `${(median(xs) / raw).toFixed(2)}×`, 'best rounds /raw': `${(Math.min(...xs) / Math.min(...samples.raw)).toFixed(2)}×` })));
await clock.stop();
if (sink === 42) console.log('');
