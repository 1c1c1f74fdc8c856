// pnpm bench (component part): the cost of the gate on a real WebAssembly component.
// A JS guest (componentize-js 0.17, StarlingMonkey inside wasm; bench/fixtures/loop.js, `plugin` world of
// plugins/wit/forgeone.wit) loops N times calling a forgeone:host import. The same transpiled component is
// instantiated twice in this process, and the two instances are timed interleaved, median of rounds:
//   raw   — a hand-written import object: the minimal JS jco needs (`now` returns a BigInt of the wall
//           clock, `write` touches the string), no gate;
//   gated — buildComponentImports({ gate, services }): the ABI adapter, a Gate over a real compiled policy
//           allowing the two calls, recording on (RingRecorder), gate timestamps from the coarse clock.
// Two calls: forgeone:host/time.now() (no arguments) and forgeone:host/log.write(level, message) (a string
// argument). A third loop calls nothing: the guest's own cost per iteration (the StarlingMonkey loop, in
// both columns), so the import cost can be isolated: (gated − empty) / (raw − empty).
// The same three loops run in a second guest written in component WAT (bench/fixtures/loop.wat): its core
// code calls the lowered imports directly, so the host side (jco's trampoline + the host function) is
// nearly all of each iteration — the StarlingMonkey guest spends microseconds per import call inside wasm,
// which hides the gate in either column. ns columns are medians; "best rounds" is the ratio of the fastest
// rounds (robust when other processes share the machine: interference only ever adds time).
// Goals (issue 4): gated/raw ≤ 1.5× without arguments, ≤ 1.25× with a string argument.
//   node bench/component.bench.mjs [--quick] [--guest=js|wat] [--mode=gated|raw] [--n=N] [--rounds=R] [--recorder=copy]
// --guest runs one guest only, --mode one column only (for `node --cpu-prof`).
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Gate, RingRecorder, buildComponentImports, createCoarseClock, createMemoryServices, transpileComponent } from '../dist/index.js';
import { BUILD, buildJsLoopGuest, buildWatLoopGuest, loopPolicy } from './loop-guests.mjs';

const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = process.argv.includes('--quick');
const only = arg('mode');
const NJS = Number(arg('n') ?? (quick ? 10_000 : 50_000));
const NWAT = Number(arg('n') ?? (quick ? 200_000 : 2_000_000));
const onlyGuest = arg('guest');
const ROUNDS = Number(arg('rounds') ?? (quick ? 3 : 9));

// 1. The guests (bench/loop-guests.mjs): loop.js componentized once (every WASI feature of the engine
// disabled, so it imports forgeone:host only) and cached by content hash; loop.wat assembled.

// 2. Transpile once each (jco, sync instantiation mode; disk cache next to the components). The WAT guest
// is assembled with jco's wasm-tools (milliseconds).
const cacheDir = join(BUILD, 'jco');
const guests = [];
if (onlyGuest === undefined || onlyGuest === 'js') {
  const loaded = await transpileComponent(await buildJsLoopGuest(), { cacheDir });
  guests.push({ name: 'js', label: 'JS guest (componentize-js 0.17, StarlingMonkey)', loaded, n: NJS, call: (exports, mode, n) => exports.run(`${mode} ${n}`) });
}
if (onlyGuest === undefined || onlyGuest === 'wat') {
  const loaded = await transpileComponent(await buildWatLoopGuest(), { cacheDir });
  const names = { now: 'loopNow', log: 'loopLog', empty: 'loopEmpty' };
  guests.push({ name: 'wat', label: 'core-wasm loop guest (bench/fixtures/loop.wat, no JS engine)', loaded, n: NWAT, call: (exports, mode, n) => exports[names[mode]](n) });
}
for (const g of guests) {
  const got = [...g.loaded.imports].sort().join(', ');
  if (got !== 'forgeone:host/log, forgeone:host/time') throw new Error(`the ${g.name} bench guest imports ${got}, expected forgeone:host/log and forgeone:host/time only`);
}

// 3a. RAW: the minimal import object jco needs. `write` touches the string like the gated log service below.
let sink = 0;
const touch = (level, message) => {
  sink = (sink + level.length + message.length) | 0;
};
const rawImports = () => ({
  'forgeone:host/time': { now: () => BigInt(Math.floor(performance.timeOrigin + performance.now())) },
  'forgeone:host/log': { write: touch },
});

// 3b. GATED: the ABI adapter behind a Gate over a compiled policy, recording into a ring.
const { syscalls, gatePolicy } = loopPolicy();
// The block consumer counts and gives each block back (it is done with it, as a consumer that hashes or
// stores blocks synchronously is): the recorder then double-buffers instead of copying every block.
// --recorder=copy keeps every block (one copy per block). In the sandbox, blocks go to the kernel thread in
// shared slots and are copied there (bench/sandbox.bench.mjs).
const copyBlocks = arg('recorder') === 'copy';
let blocks = 0;
const recorder = new RingRecorder({
  onBlock: (b) => {
    blocks++;
    if (!copyBlocks) recorder.recycle(b);
  },
});
const clock = createCoarseClock();
const gate = new Gate({ syscalls, policy: gatePolicy, recorder, now: clock.now });
// The memory services, with the same host work for log as the raw column (createMemoryServices keeps log
// lines in an array, which is the service's cost, not the gate's).
const services = { ...createMemoryServices(), log: touch };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const modes = ['empty', 'now', 'log'];
const wanted = only === undefined ? ['raw', 'gated'] : [only];

for (const g of guests) {
  const columns = [];
  for (const label of wanted) columns.push([label, g.loaded.instantiate(label === 'raw' ? rawImports() : buildComponentImports({ gate, services }))]);
  // Both must work before anything is timed.
  for (const [label, exports] of columns) {
    for (const mode of modes) {
      const out = g.call(exports, mode, 10);
      const want = mode === 'empty' ? 5 : mode === 'log' ? 10 : null;
      if (want !== null && Number(out) !== want) throw new Error(`${g.name} ${label} ${mode}: unexpected result ${out}`);
    }
  }
  const time = (exports, mode) => {
    const t0 = process.hrtime.bigint();
    g.call(exports, mode, g.n);
    return Number(process.hrtime.bigint() - t0) / g.n;
  };
  // Warm up every loop, then interleave: each round times every (mode, column) once.
  for (const mode of modes) for (const [, exports] of columns) time(exports, mode);
  const samples = new Map();
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of modes) {
      for (const [label, exports] of columns) {
        const key = `${mode}/${label}`;
        if (!samples.has(key)) samples.set(key, []);
        samples.get(key).push(time(exports, mode));
      }
    }
  }
  const m = (mode, label) => median(samples.get(`${mode}/${label}`));
  const best = (mode, label) => Math.min(...samples.get(`${mode}/${label}`));
  console.log(`\n${g.label}: loops of ${g.n.toLocaleString()} iterations, median of ${ROUNDS} rounds, interleaved; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (only !== undefined) {
    for (const mode of modes) console.log(`  ${only} ${mode}: ${m(mode, only).toFixed(1)} ns/iteration`);
    continue;
  }
  const empty = (m('empty', 'raw') + m('empty', 'gated')) / 2;
  const rows = [];
  for (const [label, mode] of [['no argument (time.now)', 'now'], ['string argument (log.write)', 'log']]) {
    const rn = m(mode, 'raw');
    const gn = m(mode, 'gated');
    rows.push({
      call: label,
      'empty loop ns': empty.toFixed(1),
      'raw ns/call': rn.toFixed(1),
      'gated ns/call': gn.toFixed(1),
      'gated/raw': `${(gn / rn).toFixed(2)}×`,
      'gated/raw (best rounds)': `${(best(mode, 'gated') / best(mode, 'raw')).toFixed(2)}×`,
      'raw−empty ns': (rn - empty).toFixed(1),
      'gated−empty ns': (gn - empty).toFixed(1),
      '(gated−empty)/(raw−empty)': `${((gn - empty) / (rn - empty)).toFixed(2)}×`,
    });
  }
  console.table(rows);
}
recorder.flush();
await clock.stop();
console.log(`\nrecorded ${recorder.total.toLocaleString()} gated calls in ${blocks} blocks (${copyBlocks ? 'each block copied' : 'blocks given back: double-buffered'}); goals (issue 4): gated/raw ≤ 1.5× without arguments, ≤ 1.25× with a string argument`);
if (sink === 42) console.log('');
