// pnpm bench [-- --quick] [-- --impl <path to another build's index.js>] (after `npx tsup`): what execution DNA
// costs per recorded call, against a baseline measured in the same run, interleaved, median of rounds.
//
//   write  - createTraceWriter + append in batches of 256 (one block, as the gate's recorder hands them
//            over) + stop, into the memory store and into the file store (fdatasync per batch);
//   verify - verifyTrace of the export, signatures and all.
//   baseline write  - the same records as plain JSON.stringify lines (result bytes as base64), appended
//                     in the same batches to a fresh log of the same store: no hashing, no signing;
//   baseline verify - reading those lines back: split + JSON.parse of every line.
//
// Figures are records/s (higher is better) and µs per record of wall time, and CPU µs per record (user +
// system time of the whole process, GC threads included: on a shared machine closer to what an idle one
// would show; for the file store it leaves out the time waiting for fdatasync). "× baseline" is DNA time /
// baseline time for the same work. Compare ratios within one run, not figures across runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { createFileStore, createMemoryStore } from '@forgeone/store';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const implAt = args.indexOf('--impl');
const impl = implAt >= 0 ? new URL(args[implAt + 1], `file://${process.cwd()}/`).href : '../dist/index.js';
const { createTraceWriter, exportTrace, verifyTrace } = await import(impl);

const N = quick ? 20_000 : 100_000;
const ROUNDS = quick ? 3 : 7;
const BATCH = 256;

const crypto = new NodeCryptoProvider();
const key = new SigningKey(crypto, new Uint8Array(32).fill(7));
const T0 = Date.UTC(2025, 0, 15, 12);

// A plausible mix of host calls: file reads returning data, clock reads, stdout writes, kv gets, denials.
const kinds = [
  (i) => ({ syscall: 'wasi:filesystem/read', args: { path: '/data/input.csv', size: 64, detail: 'fd=3' }, verdict: 'allow', rule: 'data/read', allowed: true, result: 0, resultBytes: new Uint8Array(64).fill(i & 255) }),
  () => ({ syscall: 'wasi:clocks/wall-clock', args: {}, verdict: 'allow', rule: null, allowed: true, result: 0, resultBytes: new Uint8Array(12).fill(1) }),
  () => ({ syscall: 'wasi:cli/stdout', args: { size: 14 }, verdict: 'allow', rule: 'base/stdout', allowed: true, result: 0, resultBytes: null }),
  (i) => ({ syscall: 'forgeone:kv/get', args: { detail: `user:${i % 1000}` }, verdict: 'allow', rule: 'kv/read', allowed: true, result: 0, resultBytes: new Uint8Array(24).fill(7) }),
  () => ({ syscall: 'wasi:sockets/tcp-connect', args: { host: 'evil.example', port: 6667 }, verdict: 'deny', rule: 'net/deny-all', allowed: false, result: -1, resultBytes: null }),
];
const records = Array.from({ length: N }, (_, i) => ({ seq: i, start: T0 + i * 0.0123, duration: 0.000417 + (i % 7) * 0.001, ...kinds[i % kinds.length](i) }));
const header = (traceId) => ({
  traceId,
  containerId: 'ctr-bench',
  identity: { subject: 'plugin:bench', tenant: 'acme', roles: ['plugin'], trust: { level: 3, score: 0.8 } },
  package: { name: 'bench', version: '1.0.0', hash: 'sha3-256:00' },
  policy: { name: 'bench', version: 1 },
  startTime: T0,
});

const baselineLine = (r) => JSON.stringify({ ...r, resultBytes: r.resultBytes === null ? null : Buffer.from(r.resultBytes).toString('base64') });

async function writeDna(store, id) {
  const w = await createTraceWriter({ store, crypto, signingKey: key, header: header(id) });
  for (let i = 0; i < N; i += BATCH) await w.append(records.slice(i, i + BATCH));
  await w.stop({ outcome: 'exited', exitCode: 0, endTime: T0 + 1000 });
}

async function writeBaseline(store, id) {
  const log = await store.log(`baseline/${id}`);
  for (let i = 0; i < N; i += BATCH) await log.appendBatch(records.slice(i, i + BATCH).map(baselineLine));
}

const dir = mkdtempSync(join(tmpdir(), 'forgeone-dna-bench-'));
const times = new Map();
const cpu = new Map();
const time = async (name, fn) => {
  const c = process.cpuUsage();
  const t = performance.now();
  const out = await fn();
  (times.get(name) ?? times.set(name, []).get(name)).push(performance.now() - t);
  const used = process.cpuUsage(c);
  (cpu.get(name) ?? cpu.set(name, []).get(name)).push((used.user + used.system) / 1000);
  return out;
};

try {
  const fileStore = await createFileStore({ dir });
  let exported = '';
  let baselineText = '';
  for (let round = 0; round < ROUNDS; round++) {
    const mem = createMemoryStore();
    await time('baseline write, memory store', () => writeBaseline(mem, `m${round}`));
    await time('DNA write, memory store', () => writeDna(mem, `m${round}`));
    await time('baseline write, file store', () => writeBaseline(fileStore, `f${round}`));
    await time('DNA write, file store', () => writeDna(fileStore, `f${round}`));
    exported = await exportTrace(mem, `m${round}`);
    baselineText = `${(await (await mem.log(`baseline/m${round}`)).read(0)).map((e) => Buffer.from(e.data).toString('utf8')).join('\n')}\n`;
    await time('baseline verify (split + JSON.parse)', () => {
      let n = 0;
      for (const line of baselineText.split('\n')) if (line !== '') n += JSON.parse(line).seq >= 0 ? 1 : 0;
      return n;
    });
    const v = await time('DNA verify (verifyTrace)', () => verifyTrace(exported, { trustedKeys: [key.toPublic()], crypto }));
    if (!v.ok || v.records !== N) throw new Error(`the bench trace does not verify: ${JSON.stringify(v.issue)}`);
    await mem.close();
  }
  await fileStore.close();

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = [];
  const pairs = [
    ['DNA write, memory store', 'baseline write, memory store'],
    ['DNA write, file store', 'baseline write, file store'],
    ['DNA verify (verifyTrace)', 'baseline verify (split + JSON.parse)'],
  ];
  for (const [dna, base] of pairs) {
    for (const name of [base, dna]) {
      const ms = median(times.get(name));
      const cpuMs = median(cpu.get(name));
      rows.push({
        task: name,
        'records/s': Math.round((N / ms) * 1000).toLocaleString('en-US'),
        'µs/record': ((ms * 1000) / N).toFixed(2),
        'CPU µs/record': ((cpuMs * 1000) / N).toFixed(2),
        '× baseline': name === dna ? `${(ms / median(times.get(base))).toFixed(2)}×` : '',
        'CPU × baseline': name === dna ? `${(cpuMs / median(cpu.get(base))).toFixed(2)}×` : '',
      });
    }
  }
  const bytes = Buffer.byteLength(exported);
  console.log(`\nExecution DNA: ${N.toLocaleString('en-US')} records, batches of ${BATCH}, median of ${ROUNDS} interleaved rounds${implAt >= 0 ? ` (impl ${args[implAt + 1]})` : ''}`);
  console.table(rows);
  console.log(`export: ${(bytes / N).toFixed(0)} bytes/record (baseline lines: ${(Buffer.byteLength(baselineText) / N).toFixed(0)})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
