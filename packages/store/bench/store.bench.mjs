// pnpm bench: append throughput of the file store (one durable append at a time, concurrent appends sharing
// syncs, batches of 100) against the memory store, and kv sets. Runs against the built package (dist).
// Figures are records/s measured in this one run, on this machine's disk; ratios are within the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { createFileStore, createMemoryStore } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const time = quick ? 200 : 1500;
const record = new Uint8Array(128).fill(0x61); // about one trace record
const batch = Array.from({ length: 100 }, () => record);
const dir = mkdtempSync(join(tmpdir(), 'forgeone-store-bench-'));

try {
  const file = await createFileStore({ dir });
  const memory = createMemoryStore();
  const fileLog = await file.log('bench/single');
  const fileConc = await file.log('bench/concurrent');
  const fileBatch = await file.log('bench/batch');
  const memLog = await memory.log('bench');
  const memBatchLog = await memory.log('bench/batch');
  const fileKv = await file.kv('bench');
  const memKv = await memory.kv('bench');
  let k = 0;

  // name, records per iteration, function
  const tasks = [
    ['file: append, one at a time (write + fdatasync each)', 1, () => fileLog.append(record)],
    ['file: 100 concurrent appends (group commit)', 100, () => Promise.all(batch.map((r) => fileConc.append(r)))],
    ['file: appendBatch of 100 (one write + fdatasync)', 100, () => fileBatch.appendBatch(batch)],
    ['memory: append, one at a time', 1, () => memLog.append(record)],
    ['memory: appendBatch of 100', 100, () => memBatchLog.appendBatch(batch)],
    ['file: kv set, one at a time (durable)', 1, () => fileKv.set(`key-${k++ % 1000}`, record)],
    ['memory: kv set, one at a time', 1, () => memKv.set(`key-${k++ % 1000}`, record)],
  ];

  const rows = [];
  for (const [name, perIteration, fn] of tasks) {
    const bench = new Bench({ time, warmup: true, iterations: 10 });
    bench.add(name, fn);
    await bench.run();
    const r = bench.tasks[0].result;
    rows.push({ name, recordsPerSec: r.throughput.mean * perIteration, rme: r.latency.rme, latencyMs: r.latency.mean });
  }

  const base = rows[0].recordsPerSec;
  const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
  console.log(`\nStore appends: ${record.length}-byte records, records/s (higher is better); ratio = against one durable append at a time`);
  console.table(
    rows.map((r) => ({
      operation: r.name,
      'records/s': fmt(r.recordsPerSec),
      'ms per call': r.latencyMs.toFixed(3),
      ratio: `${(r.recordsPerSec / base).toFixed(1)}×`,
      rme: `±${r.rme.toFixed(1)}%`,
    })),
  );
  console.log(
    `A durable append costs one fdatasync: batching 100 records into one sync gives ${(rows[2].recordsPerSec / base).toFixed(0)}× the records/s, ` +
      `concurrent appends ${(rows[1].recordsPerSec / base).toFixed(0)}×; the memory store is ${(rows[3].recordsPerSec / base).toFixed(0)}× a durable append.`,
  );
  await file.close();
  await memory.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
