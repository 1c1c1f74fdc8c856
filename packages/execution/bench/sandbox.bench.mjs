// pnpm bench (sandbox part): the gate's cost where guests really run — in a sandbox worker, through the
// MeteredGate (CPU clock paused for each host call; timestamps from the kernel's coarse clock), recording into the worker's shared ring, each block of
// records handed to the kernel thread (a consumer decodes nothing; it only counts). component.bench.mjs
// measures the gate in one thread; this one adds what the worker adds per call and per block.
// A core guest (the builtin:core runner) loops N times over the gated import `tick` (forgeone:time/now,
// allowed by a compiled policy). Columns, per call, from the kernel thread's view (call to answer, the
// difference between a long and a short loop, so the fixed cost of a container call drops out):
//   raw       — the same loop in this thread against a bare `tick` import (no gate);
//   no-record — sandboxed, gated, no onRecords (no recorder in the worker);
//   record    — sandboxed, gated, records on (block size 256), blocks reach the kernel's onRecords.
// Medians of interleaved rounds. node bench/sandbox.bench.mjs [--quick]
import { parsePolicy } from '@forgeone/trust';
import wabtInit from 'wabt';
import { createCoarseClock, createSandboxPool, decodeBlock } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const N = quick ? 200_000 : 2_000_000;
const SHORT = 1_000;
const ROUNDS = quick ? 3 : 9;

const wabt = await wabtInit();
const guest = wabt
  .parseWat(
    'ticks.wat',
    `(module
  (import "env" "tick" (func $tick (result i32)))
  (memory (export "memory") 1)
  (func (export "ticks") (param $n i32) (result i32) (local $acc i32)
    (loop $l (local.set $acc (i32.add (local.get $acc) (call $tick)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc)))`,
  )
  .toBinary({}).buffer;

const { policy: document } = parsePolicy(`
apiVersion: forgeone.policy/v1
name: bench
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: time, action: allow, syscalls: ["forgeone:time/now"] }
`);
const policy = { document, identity: { subject: 'plugin:bench', trust: 'Verified' } };

// raw: the same module in this thread, the import doing what the runner's tick does besides the gate.
let counter = 0;
const raw = new WebAssembly.Instance(new WebAssembly.Module(guest), { env: { tick: () => (counter++, 0) } });

// As the kernel runs them: gate and CPU-clock timestamps from a coarse clock in shared memory.
const clock = createCoarseClock();
const pool = createSandboxPool({ size: 2, maxContainers: 4, clockBuffer: clock.buffer });
await pool.ready();
let recorded = 0;
let blocks = 0;
let checked = false;
const start = (records) => {
  const c = pool.start({
    runner: 'builtin:core',
    data: { module: guest, serve: true },
    policy,
    ...(records
      ? {
          recordBlockSize: 256,
          onRecords: (block) => {
            blocks++;
            recorded += block.count;
            if (!checked) {
              // The records are real: decodable, allowed forgeone:time/now calls.
              checked = true;
              const first = decodeBlock(block, c.syscalls)[0];
              if (first?.syscall !== 'forgeone:time/now' || first.verdict !== 'allow') throw new Error(`unexpected record ${JSON.stringify(first)}`);
            }
          },
        }
      : {}),
  });
  return c;
};
const containers = { 'no-record': start(false), record: start(true) };
await Promise.all(Object.values(containers).map((c) => c.serving));

const timeCall = async (c, n) => {
  const t0 = performance.now();
  const v = await c.call('ticks', [n]);
  const ms = performance.now() - t0;
  if (v !== 0) throw new Error(`unexpected result ${v}: a tick was refused`);
  return ms;
};
const timeRaw = (n) => {
  const t0 = performance.now();
  raw.exports.ticks(n);
  return performance.now() - t0;
};
const perCall = async (f) => ((await f(N)) - (await f(SHORT))) / (N - SHORT);

const samples = { raw: [], 'no-record': [], record: [] };
for (const [, c] of Object.entries(containers)) await perCall((n) => timeCall(c, n));
await perCall(async (n) => timeRaw(n));
for (let r = 0; r < ROUNDS; r++) {
  samples.raw.push(await perCall(async (n) => timeRaw(n)));
  for (const [label, c] of Object.entries(containers)) samples[label].push(await perCall((n) => timeCall(c, n)));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ns = (label) => median(samples[label]) * 1e6;
console.log(`\nsandboxed core guest, loops of ${N.toLocaleString()} gated calls (forgeone:time/now), median of ${ROUNDS} rounds`);
console.table(
  ['raw', 'no-record', 'record'].map((label) => ({
    column: label,
    'ns/call': ns(label).toFixed(1),
    'vs raw': `${(ns(label) / ns('raw')).toFixed(2)}×`,
    'best ns/call': (Math.min(...samples[label]) * 1e6).toFixed(1),
  })),
);
console.log(`recording: ${(ns('record') - ns('no-record')).toFixed(1)} ns per call in the worker (records of ${recorded.toLocaleString()} calls in ${blocks.toLocaleString()} blocks reached the kernel)`);
for (const c of Object.values(containers)) await c.close().catch(() => undefined);
await pool.close();
await clock.stop();
if (!checked) throw new Error('no records reached the kernel');
if (counter === 0) throw new Error('the raw loop made no calls');
