// node bench/p1.bench.mjs [--quick] (after `npx tsup`): the cost of ForgeOne's WASI preview1 host against
// node:wasi on a real guest loop. One preview1 guest calls (a) clock_time_get(REALTIME) and (b) fd_write of
// a short string to stdout, N times in a loop. The same module runs on four hosts, in the same run,
// interleaved, median of rounds:
//   - node:wasi (`new WASI({ version: 'preview1' })`, stdout redirected to /dev/null by its fd option);
//   - ForgeOne, gate on: a real compiled policy allowing exactly those calls, every call recorded into a
//     RingRecorder, gate timestamps from the coarse clock;
//   - ForgeOne, gate on without a recorder (so the cost of recording is visible);
//   - bare JS imports doing only the work, without gate or checks: the floor of any JS host.
// ForgeOne's stdout is a zero-copy stream sink ({ write(memory, offset, length) }) that either discards
// the bytes or writes them to /dev/null with writeSync (the same system call node:wasi makes).
import { closeSync, openSync, writeSync } from 'node:fs';
import { WASI } from 'node:wasi';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, parsePolicy } from '@forgeone/trust';
import wabtInit from 'wabt';
import { Gate, RingRecorder, createCoarseClock, createPreview1Host } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const N = quick ? 100_000 : 1_000_000;
const ROUNDS = quick ? 3 : 9;

const wabt = await wabtInit();
const wat = `(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 32, len = 14 }; nwritten at 8; time at 16
  (data (i32.const 0) "\\20\\00\\00\\00\\0e\\00\\00\\00")
  (data (i32.const 32) "hello, world!\\n")
  (func (export "clocks") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $clock (i32.const 0) (i64.const 1000) (i32.const 16))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
  (func (export "writes") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc)))`;
const module = new WebAssembly.Module(wabt.parseWat('p1.wat', wat).toBinary({}).buffer);

// node:wasi, stdout to /dev/null.
const devnull = openSync('/dev/null', 'w');
const nodeWasi = new WASI({ version: 'preview1', stdout: devnull, returnOnExit: true });
const nodeInst = new WebAssembly.Instance(module, nodeWasi.getImportObject());
nodeWasi.initialize(nodeInst);

// ForgeOne: a real compiled policy allowing the two calls.
const { policy } = parsePolicy(`
apiVersion: forgeone.policy/v1
name: p1-bench
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: clock, action: allow, syscalls: ["wasi:clocks/wall-clock"] }
      - { id: stdout, action: allow, syscalls: ["wasi:cli/stdout"] }
      - { id: no-fs, action: deny, syscalls: ["wasi:filesystem/*"] }
`);
const syscalls = new SyscallTable(KNOWN_SYSCALLS);
const identity = createIdentity({ subject: 'plugin:p1-bench', trust: trustVector('Verified') });
const program = compilePolicy(policy, { identity, syscalls });
const clock = createCoarseClock();
const decide = { mode: 'enforce', decide: (id, ctx) => program.decide(id, ctx) };
const discard = { write() {} };
const toDevnull = { write: (memory, offset, length) => void writeSync(devnull, memory, offset, length) };

let blocks = 0;
// The consumer gives each block back once it has it (as the sandbox's shared slots do, and as the component
// and recording benches do): the recorder double-buffers instead of copying every block.
const recorder = new RingRecorder({
  onBlock: (b) => {
    blocks++;
    recorder.recycle(b);
  },
});
function forgeone(withRecorder, stdout) {
  const gate = new Gate({ syscalls, policy: decide, now: clock.now, ...(withRecorder ? { recorder } : {}) });
  // No output cap: the default (16 MiB) would turn most of the measured writes into ENOSPC.
  const host = createPreview1Host({ gate, stdout, maxOutputBytes: Number.MAX_SAFE_INTEGER });
  const instance = new WebAssembly.Instance(module, host.imports);
  host.bind(instance);
  return { instance, gate };
}

// The floor: the same guest on bare JS imports doing only the work (read the clock and store it; read the
// iovec and hand it to the sink), no gate, no checks — what any JS host pays for the call itself.
function bare(sink) {
  let dv;
  const TWO32 = 4294967296;
  const origin = performance.timeOrigin;
  const instance = new WebAssembly.Instance(module, {
    wasi_snapshot_preview1: {
      clock_time_get: (_id, _precision, ptr) => {
        const n = Math.floor((origin + performance.now()) * 1e6);
        dv.setUint32(ptr, n >>> 0, true);
        dv.setUint32(ptr + 4, Math.floor(n / TWO32) >>> 0, true);
        return 0;
      },
      fd_write: (_fd, iovs, _n, out) => {
        const len = dv.getUint32(iovs + 4, true);
        sink.write(new Uint8Array(dv.buffer), dv.getUint32(iovs, true), len);
        dv.setUint32(out, len, true);
        return 0;
      },
    },
  });
  dv = new DataView(instance.exports.memory.buffer);
  return { instance };
}

const hosts = {
  discard: [forgeone(true, discard), forgeone(false, discard), bare(discard)],
  devnull: [forgeone(true, toDevnull), forgeone(false, toDevnull), bare(toDevnull)],
};

// Check every host does the work: the calls succeed (errno 0), the clock value is the time, 14 bytes written.
for (const [name, inst] of [['node:wasi', nodeInst], ...Object.values(hosts).flat().map((h, i) => [`host ${i}`, h.instance])]) {
  const r = inst.exports.clocks(10) + inst.exports.writes(10);
  const mem = new DataView(inst.exports.memory.buffer);
  const t = Number(mem.getBigUint64(16, true)) / 1e6;
  if (r !== 0 || Math.abs(t - Date.now()) > 5000 || mem.getUint32(8, true) !== 14) throw new Error(`${name}: calls failed (${r}, clock ${t})`);
}
for (const h of Object.values(hosts).flat()) if (h.gate !== undefined && h.gate.denied !== 0) throw new Error('the policy refused a bench call');

function time(fn) {
  const t0 = process.hrtime.bigint();
  const errnos = fn(N); // the guest sums the errno of every call: anything but 0 means calls failed
  const ns = Number(process.hrtime.bigint() - t0) / N;
  if (errnos !== 0) throw new Error(`calls failed during the measurement (errno sum ${errnos})`);
  return ns;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rows = [];
for (const [label, name, sink] of [
  ['clock_time_get (REALTIME)', 'clocks', 'discard'],
  ['fd_write 14 B to stdout (ForgeOne sink discards)', 'writes', 'discard'],
  ['fd_write 14 B to stdout (ForgeOne sink → /dev/null)', 'writes', 'devnull'],
]) {
  const all = [nodeInst, ...hosts[sink].map((h) => h.instance)];
  const times = all.map(() => []);
  for (const h of all) time(() => h.exports[name](N / 10)); // warm up
  for (let i = 0; i < ROUNDS; i++) all.forEach((h, j) => times[j].push(time(h.exports[name])));
  const [n, f, u, b] = times.map(median);
  rows.push({
    call: label,
    'node:wasi': n.toFixed(1),
    ForgeOne: f.toFixed(1),
    'ForgeOne/node': `${(f / n).toFixed(2)}×`,
    'no recorder': u.toFixed(1),
    'no rec./node': `${(u / n).toFixed(2)}×`,
    'bare JS import': b.toFixed(1),
  });
}
recorder.flush();
console.log(
  `preview1 host, ns per call: guest loop of ${N.toLocaleString()} calls, median of ${ROUNDS} rounds, interleaved ` +
    `(ForgeOne: gate on, compiled policy; recorded ${recorder.total.toLocaleString()} calls in ${blocks} blocks)`,
);
console.table(rows);
closeSync(devnull);
await clock.stop();
