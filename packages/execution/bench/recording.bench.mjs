// pnpm bench (recording part, issue 5): the run time of a call-heavy guest with recording on against
// recording off, in one run, interleaved, median of rounds. The guest is bench/fixtures/loop.wat: a
// component whose core loop calls forgeone:host imports directly, so almost all of its time is host calls —
// the worst case for recording. Three columns over the same transpiled component and the same compiled
// policy (the gate decides every call in all three):
//   off    — Gate without a recorder;
//   on     — Gate + RingRecorder (what a sandboxed guest's thread does: fixed fields into a Float64Array,
//            argument and result bytes into an arena, a block handed over every 256 calls and given back);
//   sealed — as `on`, and every block is also decoded and sealed into the execution DNA (SHA3-256 chain,
//            signed checkpoints, memory store) on the same thread. In the sandbox this work runs on the
//            kernel's thread, not the guest's; the column shows what it would cost inline.
// on and off are timed interleaved; sealed runs after them, on its own (its garbage would land in their rounds).
// Goal (issue 5): on/off ≤ 1.10×.   node bench/recording.bench.mjs [--quick] [--wat-only] [--n=N] [--rounds=R]
// A second guest, the JS plugin of the component bench (bench/fixtures/loop.js), shows a realistic call-heavy guest.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { createTraceWriter } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { Gate, RingRecorder, buildComponentImports, createCoarseClock, createMemoryServices, decodeBlock, transpileComponent } from '../dist/index.js';
import { BUILD, buildJsLoopGuest, buildWatLoopGuest, loopPolicy } from './loop-guests.mjs';

const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = process.argv.includes('--quick');
const N = Number(arg('n') ?? (quick ? 100_000 : 500_000));
const ROUNDS = Number(arg('rounds') ?? (quick ? 3 : 7));
const cacheDir = join(BUILD, 'jco');
const wat = await transpileComponent(await buildWatLoopGuest(), { cacheDir });
const js = process.argv.includes('--wat-only') ? undefined : await transpileComponent(await buildJsLoopGuest(), { cacheDir });
const { policy, syscalls, identity, gatePolicy: decide } = loopPolicy();
const clock = createCoarseClock();
let sink = 0;
const services = { ...createMemoryServices(), log: (level, message) => void (sink = (sink + level.length + message.length) | 0) };

const crypto = new NodeCryptoProvider();
const kernelKey = SigningKey.generate(crypto);
let traces = 0;
let pending = [];
async function sealedRecorder() {
  const writer = await createTraceWriter({
    store: createMemoryStore(),
    crypto,
    signingKey: kernelKey,
    header: { traceId: `bench-${traces++}`, containerId: 'ctr-bench', identity, package: { name: 'loop', version: '1.0.0', hash: 'sha3-256:bench' }, policy: { name: policy.name, version: policy.version } },
  });
  const ring = new RingRecorder({
    onBlock: (block) => {
      pending.push(writer.append(decodeBlock(block, syscalls)));
      ring.recycle(block);
    },
  });
  return { ring, writer };
}

const columns = {
  off: () => ({ gate: new Gate({ syscalls, policy: decide, now: clock.now }) }),
  on: () => {
    // The receiver gives each block back once it has it (as the sandbox's shared slots do): no copy.
    const ring = new RingRecorder({ onBlock: (block) => ring.recycle(block) });
    return { gate: new Gate({ syscalls, policy: decide, now: clock.now, recorder: ring }), ring };
  },
  sealed: async () => {
    const { ring, writer } = await sealedRecorder();
    return { gate: new Gate({ syscalls, policy: decide, now: clock.now, recorder: ring }), ring, writer };
  },
};

const GUESTS = [
  { name: 'wat', label: 'loop.wat (core wasm calling the imports directly: nothing but host calls)', loaded: wat, n: N, call: (e, mode, n) => e[mode === 'now' ? 'loopNow' : 'loopLog'](n) },
  ...(js === undefined ? [] : [{ name: 'js', label: 'loop.js (a JS plugin, componentize-js: a realistic call-heavy guest)', loaded: js, n: Math.max(1000, Math.floor(N / 10)), call: (e, mode, n) => e.run(`${mode} ${n}`) }]),
];
// One instance per guest and column, reused by every round (as a serving container is); the sealed column's
// trace grows across rounds.
const instances = {};
for (const g of GUESTS) {
  for (const [column, make] of Object.entries(columns)) {
    const c = await make();
    instances[`${g.name}/${column}`] = { ...c, exports: g.loaded.instantiate(buildComponentImports({ gate: c.gate, services })) };
  }
}
async function timeOne(g, column, mode) {
  const c = instances[`${g.name}/${column}`];
  pending = [];
  const before = c.gate.sequence;
  const t0 = process.hrtime.bigint();
  g.call(c.exports, mode, g.n);
  if (c.ring !== undefined) c.ring.flush();
  if (c.writer !== undefined) await Promise.all(pending);
  const ns = Number(process.hrtime.bigint() - t0) / g.n;
  if (c.gate.sequence - before !== g.n) throw new Error(`${g.name} ${column} ${mode}: ${c.gate.sequence - before} calls crossed the gate, expected ${g.n}`);
  return ns;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const MODES = ['now', 'log'];
let worst = 0;
for (const g of GUESTS) {
  const samples = new Map();
  const rounds = async (cols, n) => {
    for (const mode of MODES) for (const column of cols) await timeOne(g, column, mode); // warm-up
    for (let r = 0; r < n; r++) {
      for (const mode of MODES) {
        for (const column of cols) {
          const key = `${mode}/${column}`;
          if (!samples.has(key)) samples.set(key, []);
          samples.get(key).push(await timeOne(g, column, mode));
        }
      }
    }
  };
  // on and off interleaved first; the sealed column after, on its own: its decoding, hashing and signing
  // leave garbage whose collection would otherwise land in the other columns' rounds.
  await rounds(['off', 'on'], ROUNDS);
  await rounds(['sealed'], Math.max(1, Math.floor(ROUNDS / 3)));
  console.log(`\nrecording on vs off — ${g.label}: ${g.n.toLocaleString()} calls per run, median of ${ROUNDS} interleaved rounds; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const rows = [];
  for (const [label, mode] of [['time.now (no argument)', 'now'], ['log.write (string argument)', 'log']]) {
    const m = (c) => median(samples.get(`${mode}/${c}`));
    const best = (c) => Math.min(...samples.get(`${mode}/${c}`));
    rows.push({
      call: label,
      'off ns/call': m('off').toFixed(1),
      'on ns/call': m('on').toFixed(1),
      'sealed ns/call': m('sealed').toFixed(1),
      'on/off': `${(m('on') / m('off')).toFixed(2)}×`,
      'on/off (best rounds)': `${(best('on') / best('off')).toFixed(2)}×`,
      'sealed/off (inline)': `${(m('sealed') / m('off')).toFixed(2)}×`,
    });
    worst = Math.max(worst, m('on') / m('off'));
  }
  console.table(rows);
}
console.log(`worst recording overhead on the guest's thread: ${worst.toFixed(2)}× — goal ≤ 1.10×: ${worst <= 1.1 ? 'met' : 'NOT met'}`);
for (const g of GUESTS) await instances[`${g.name}/sealed`].writer.stop({ outcome: 'returned' });
await clock.stop();
if (sink === 42) console.log('');
