// pnpm bench: crypto primitives, node provider against noble provider, and package verification.
// Runs against the built package (dist). Figures are ops/s and ratios measured in this one run.
import { Bench } from 'tinybench';
import { createManualClock, utf8 } from '@forgeone/common';
import {
  NobleCryptoProvider,
  NodeCryptoProvider,
  SigningKey,
  buildPackage,
  createPackageVerifier,
  createTrustRoot,
  signPackage,
  signTrustRoot,
} from '../dist/index.js';

const quick = process.argv.includes('--quick');
const time = quick ? 100 : 1000;
const node = new NodeCryptoProvider();
const noble = new NobleCryptoProvider();

const small = node.randomBytes(64);
const big = node.randomBytes(10 * 1024 * 1024);
const seed = node.randomBytes(32);
const pub = node.ed25519PublicKey(seed);
const msg = utf8('forgeone benchmark message of moderate length, about the size of a manifest digest line');
const sig = node.sign(seed, msg);

async function pair(label, makeFn, opts = {}) {
  const bench = new Bench({ time: opts.time ?? time, warmup: true, iterations: opts.iterations ?? 10 });
  for (const p of [node, noble]) bench.add(p.name, makeFn(p));
  await bench.run();
  const [a, b] = bench.tasks.map((t) => t.result);
  const hzA = a.throughput.mean;
  const hzB = b.throughput.mean;
  return { label, node: hzA, noble: hzB, ratio: hzA / hzB, rmeNode: a.latency.rme, rmeNoble: b.latency.rme };
}

const rows = [];
rows.push(await pair('SHA3-256, 64 B', (p) => () => p.sha3_256(small)));
rows.push(await pair('SHA3-256, 10 MB', (p) => () => p.sha3_256(big), { time: quick ? 200 : 2000, iterations: 3 }));
rows.push(await pair('Ed25519 sign (one-shot)', (p) => () => p.sign(seed, msg)));
rows.push(await pair('Ed25519 sign (imported key)', (p) => {
  const signer = p.createSigner(seed);
  return () => signer.sign(msg);
}));
rows.push(await pair('Ed25519 verify', (p) => () => {
  if (!p.verify(sig, msg, pub)) throw new Error('verify failed');
}));

const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
console.log('\nCrypto providers (ops/s, higher is better; ratio = node / noble, same run)');
console.table(
  rows.map((r) => ({
    operation: r.label,
    'node ops/s': fmt(r.node),
    'noble ops/s': fmt(r.noble),
    'ratio node/noble': `${r.ratio.toFixed(2)}×`,
    'rme node/noble': `±${r.rmeNode.toFixed(1)}% / ±${r.rmeNoble.toFixed(1)}%`,
  })),
);
const mb10 = rows[1];
console.log(`SHA3-256 throughput on 10 MB: node ${fmt((mb10.node * 10))} MB/s, noble ${fmt(mb10.noble * 10)} MB/s`);

// Verification of a 10 MB package signed 3-of-5, with each provider.
const clock = createManualClock(Date.UTC(2026, 10, 23));
const rootKey = SigningKey.generate(node);
const pkgKeys = Array.from({ length: 5 }, () => SigningKey.generate(node));
let trustRoot = createTrustRoot(node, {
  expires: '2030-01-01T00:00:00Z',
  roles: { root: { keys: [rootKey.toPublic()], threshold: 1 }, packages: { keys: pkgKeys.map((k) => k.toPublic()), threshold: 3 } },
});
trustRoot = signTrustRoot(node, trustRoot, rootKey);
let { bytes } = buildPackage(node, { template: { name: 'bench', version: '1.0.0', entry: 'big.wasm' }, files: new Map([['big.wasm', big]]) }, { clock });
for (const k of pkgKeys.slice(0, 3)) bytes = signPackage(bytes, k);
const sizeMB = bytes.length / (1024 * 1024);
const pkgRows = [];
for (const p of [node, noble]) {
  const verifier = createPackageVerifier({ provider: p, trustRoot, clock });
  const bench = new Bench({ time: quick ? 200 : 2000, iterations: 3 });
  bench.add(p.name, () => {
    const r = verifier.verify(bytes);
    if (!r.ok) throw r.error;
  });
  await bench.run();
  const ms = bench.tasks[0].result.latency.mean;
  pkgRows.push({ provider: p.name, 'ms per verify': ms.toFixed(2), 'MB/s': (sizeMB / (ms / 1000)).toFixed(1) });
}
console.log(`\nVerify a ${sizeMB.toFixed(2)} MB package signed 3-of-5 (parse, 3 signatures, expiry, SHA3-256 of content)`);
console.table(pkgRows);
console.log(`ratio node/noble: ${(Number(pkgRows[1]['ms per verify']) / Number(pkgRows[0]['ms per verify'])).toFixed(2)}× faster with node`);
