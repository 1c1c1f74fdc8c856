// Container start latency (issue goal: warm start p50 < 5 ms). A tiny WASI preview1 guest (prints one
// line, exits 0) runs to its end in a sandbox worker:
// - cold: a new host (new pool: the worker is spawned on demand) and a first compile (empty module cache),
//   measured from createWasmHost() to the result;
// - warm run(): a warm worker from the pool and the compiled module from the cache, from run() to the result;
// - warm start(): the same through the synchronous start() (the kernel's path), to the container's result.
// Between two warm starts the bench waits until the pool has refilled (a warm worker is ready), as a
// kernel under a steady load would see. Run after `pnpm build`: node bench/start.bench.mjs [--quick]
import wabtInit from 'wabt';
import { createWasmHost } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const N = quick ? 10 : 50;

const wabt = await wabtInit();
const guest = wabt
  .parseWat(
    'tiny.wat',
    `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fw (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hi\\n")
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 3))
    (drop (call $fw (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))`,
  )
  .toBinary({}).buffer;

const check = (out) => {
  if (out.exitCode !== 0 || new TextDecoder().decode(out.stdout) !== 'hi\n') throw new Error(`unexpected outcome ${JSON.stringify(out)}`);
};

function summary(name, samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { case: name, n: s.length, 'p50 ms': q(50).toFixed(2), 'p99 ms': q(99).toFixed(2), 'mean ms': mean.toFixed(2), 'min ms': s[0].toFixed(2), 'max ms': s.at(-1).toFixed(2) };
}

// Cold.
const cold = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  const host = createWasmHost({ poolOptions: { size: 0, maxContainers: 1 } });
  const out = await host.run({ module: guest });
  cold.push(performance.now() - t0);
  check(out);
  await host.close();
}

// Warm.
const host = createWasmHost({ poolOptions: { size: 2, maxContainers: 4 } });
await host.pool.ready();
check(await host.run({ module: guest })); // compile once into the cache
const warmRun = [];
const warmStart = [];
for (let i = 0; i < N; i++) {
  await host.pool.ready();
  let t0 = performance.now();
  check(await host.run({ module: guest }));
  warmRun.push(performance.now() - t0);
  await host.pool.ready();
  t0 = performance.now();
  const r = await host.start({ module: guest }).result;
  warmStart.push(performance.now() - t0);
  check({ exitCode: r.value.exitCode, stdout: r.stdout });
}
await host.close();

const rows = [summary('cold (new pool, first compile)', cold), summary('warm run() (pool + cached module)', warmRun), summary('warm start() → result', warmStart)];
console.table(rows);
const p50 = Number(rows[1]['p50 ms']);
console.log(`warm start p50 ${p50.toFixed(2)} ms — goal < 5 ms: ${p50 < 5 ? 'met' : 'NOT met'} (cache: ${JSON.stringify(host.cache.stats)})`);
