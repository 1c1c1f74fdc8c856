// pnpm bench (part 1 of the execution benchmarks): the cost of the gate on a real guest loop.
// A WebAssembly guest calls one host import N times in a loop; the same guest runs against the raw
// import (baseline) and against the same import behind the gate (quarantine flag + compiled policy
// decision on the allow path + recording into the ring), in the same run, interleaved. Two calls:
// one without arguments, one with a string argument (copied out of guest memory and recorded).
// Reported as ns per call and the ratio gated / raw. Goals (issue 4): ≤ 1.5× without arguments,
// ≤ 1.25× with a string argument.
import wabtInit from 'wabt';
import { Gate, RingRecorder, createCoarseClock } from '../dist/index.js';
import { loopPolicy } from './loop-guests.mjs';

const quick = process.argv.includes('--quick');
const N = quick ? 200_000 : 2_000_000;
const ROUNDS = quick ? 3 : 9;

const wabt = await wabtInit();
const wat = `(module
  (import "env" "tick" (func $tick (result i32)))
  (import "env" "log" (func $log (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "plugin:bench says hello")
  (func (export "ticks") (param $n i32) (result i32) (local $acc i32)
    (loop $l (local.set $acc (i32.add (local.get $acc) (call $tick)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
  (func (export "logs") (param $n i32) (result i32) (local $acc i32)
    (loop $l (local.set $acc (i32.add (local.get $acc) (call $log (i32.const 16) (i32.const 23))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc)))`;
const module = new WebAssembly.Module(wabt.parseWat('bench.wat', wat).toBinary({}).buffer);

// The same policy as the component and recording benches (bench/loop-guests.mjs).
const { syscalls, gatePolicy } = loopPolicy();

function instantiate(imports) {
  const instance = new WebAssembly.Instance(module, { env: imports });
  return instance;
}

// Raw imports: the host work only.
let counter = 0;
const decoder = new TextDecoder();
let rawMem;
const raw = instantiate({
  tick: () => (counter++ & 1),
  log: (ptr, len) => (decoder.decode(new Uint8Array(rawMem.buffer, ptr, len)).length & 1),
});
rawMem = raw.exports.memory;

// Gated imports: the same host work, through the gate with recording on.
let blocks = 0;
const recorder = new RingRecorder({ onBlock: () => blocks++ });
const clock = createCoarseClock();
const gate = new Gate({ syscalls, policy: gatePolicy, recorder, now: clock.now });
const TIME = syscalls.id('forgeone:time/now');
const LOG = syscalls.id('forgeone:log/write');
let gatedMem;
const gated = instantiate({
  tick: () => {
    if (!gate.enter(TIME)) { gate.exit(-1); return -1; }
    const r = counter++ & 1;
    gate.exit(0);
    return r;
  },
  log: (ptr, len) => {
    // copy out of guest memory, then decide on the copy
    const text = decoder.decode(new Uint8Array(gatedMem.buffer, ptr, len));
    gate.args.detail = text;
    gate.args.size = len;
    if (!gate.enter(LOG)) { gate.exit(-1); return -1; }
    const r = text.length & 1;
    gate.exit(0);
    return r;
  },
});
gatedMem = gated.exports.memory;

function time(fn) {
  const t0 = process.hrtime.bigint();
  fn(N);
  return Number(process.hrtime.bigint() - t0) / N;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rows = [];
for (const [label, name] of [['no argument (forgeone:time/now)', 'ticks'], ['string argument (forgeone:log/write)', 'logs']]) {
  const r = [], g = [];
  // warm up both
  raw.exports[name](N / 10); gated.exports[name](N / 10);
  for (let i = 0; i < ROUNDS; i++) { r.push(time(raw.exports[name])); g.push(time(gated.exports[name])); }
  const rn = median(r), gn = median(g);
  rows.push({ call: label, 'raw ns/call': rn.toFixed(1), 'gated ns/call': gn.toFixed(1), 'gated/raw': `${(gn / rn).toFixed(2)}×` });
}
recorder.flush();
console.log(`gate overhead: guest loop of ${N.toLocaleString()} host calls, median of ${ROUNDS} rounds (recorded ${recorder.total.toLocaleString()} calls in ${blocks} blocks)`);
console.table(rows);
await clock.stop();
