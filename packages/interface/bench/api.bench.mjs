// `pnpm bench`: p50 and p99 latency and errors of the API at a fixed request rate (autocannon), for /v1/health
// and for listing containers, side by side with a bare Fastify route answering the same JSON in the same run,
// reported as ratios (API / bare). Run after `pnpm build`. BENCH_RATE (requests/s, default 1000), BENCH_SECONDS
// (per case, default 5) and BENCH_CONNECTIONS (default 10) change the load.
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { createIdentity, newId, trustVector } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, createTrustRoot, signTrustRoot } from '@forgeone/crypto';
import { createKernel } from '@forgeone/kernel';
import { createMemoryStore } from '@forgeone/store';
import { createApiServer, issueToken } from '../dist/index.js';

const rate = Number(process.env.BENCH_RATE ?? 1000);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const CONTAINERS = 20;

const crypto = new NodeCryptoProvider();
const root = SigningKey.generate(crypto);
const tokenKey = SigningKey.generate(crypto);
const trustRoot = signTrustRoot(crypto, createTrustRoot(crypto, { expires: '2035-01-01T00:00:00Z', roles: { root: { keys: [root.toPublic()], threshold: 1 }, packages: { keys: [root.toPublic()], threshold: 1 } } }), root);
const kernel = await createKernel({ trustRoot, store: createMemoryStore(), boot: { measureKernel: false } });
// Some containers to list: registry records as launches leave them.
for (let i = 0; i < CONTAINERS; i++) {
  await kernel.registry.launch({
    package: { manifest: { name: `bench-${i}`, version: '1.0.0' }, digest: 'a'.repeat(64) },
    identity: createIdentity({ subject: `plugin:bench-${i}`, trust: trustVector('Verified') }),
    policy: { name: 'forgeone-kernel-default', version: 1 },
    id: newId('ctr'),
  });
}

const api = await createApiServer({ kernel, auth: { keys: [tokenKey.toPublic()] }, port: 0, limits: { requestsPerWindow: 1_000_000_000 } });
const { url: apiUrl } = await api.listen();
const token = await issueToken({ key: tokenKey, role: 'reader', subject: 'user:bench', ttlSeconds: 3600 });
const headers = { authorization: `Bearer ${token}` };

// The baseline: bare Fastify routes returning the same JSON documents (serialised per request, as the API does),
// without tokens, rate limits, validation or metrics.
const list = await (await fetch(`${apiUrl}/v1/containers`, { headers })).json();
const health = await (await fetch(`${apiUrl}/v1/health`)).json();
const bare = Fastify({ logger: false });
bare.get('/v1/health', async () => ({ ...health, time: Date.now() }));
bare.get('/v1/containers', async () => list);
await bare.listen({ host: '127.0.0.1', port: 0 });
const bareUrl = `http://127.0.0.1:${bare.server.address().port}`;

/** One autocannon run; latencies are autocannon's per-response times (its histogram keeps whole milliseconds only). */
function run(options) {
  return new Promise((resolve, reject) => {
    const times = [];
    const instance = autocannon(options, (err, result) => (err ? reject(err) : resolve({ result, times })));
    instance.on('response', (_client, status, _bytes, responseTime) => {
      if (status >= 200 && status < 300) times.push(responseTime);
    });
  });
}

const percentile = (sorted, p) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);

async function load(url) {
  // A short warm-up, then the measured run at the fixed rate.
  await run({ url, connections, duration: 1, overallRate: rate, headers });
  const { result: r, times } = await run({ url, connections, duration: seconds, overallRate: rate, headers });
  times.sort((x, y) => x - y);
  const ms = (v) => Math.round(v * 1000) / 1000;
  return { p50: ms(percentile(times, 50)), p99: ms(percentile(times, 99)), errors: r.errors + r.timeouts + r.non2xx, requests: r.requests.total, rps: r.requests.average };
}

const rows = [];
for (const [name, path] of [['health', '/v1/health'], ['list containers', '/v1/containers']]) {
  const a = await load(`${apiUrl}${path}`);
  const b = await load(`${bareUrl}${path}`);
  rows.push({ name, a, b });
}
await api.close();
await bare.close();
await kernel.shutdown();

const ratio = (x, y) => (y === 0 ? (x === 0 ? '1.00' : 'inf') : (x / y).toFixed(2));
console.log(`\nForgeOne API vs bare Fastify: ${rate} req/s for ${seconds} s, ${connections} connections, ${CONTAINERS} containers listed (node ${process.version})`);
console.log('case             server   p50 ms   p99 ms  errors  requests');
for (const { name, a, b } of rows) {
  console.log(`${name.padEnd(16)} api     ${a.p50.toFixed(3).padStart(7)}  ${a.p99.toFixed(3).padStart(7)}  ${String(a.errors).padStart(6)}  ${a.requests}`);
  console.log(`${''.padEnd(16)} bare    ${b.p50.toFixed(3).padStart(7)}  ${b.p99.toFixed(3).padStart(7)}  ${String(b.errors).padStart(6)}  ${b.requests}`);
  console.log(`${''.padEnd(16)} ratio   ${ratio(a.p50, b.p50).padStart(7)}  ${ratio(a.p99, b.p99).padStart(7)}`);
}
console.log(JSON.stringify({ rate, seconds, connections, results: rows.map(({ name, a, b }) => ({ case: name, api: a, bare: b, p50Ratio: Number(ratio(a.p50, b.p50)), p99Ratio: Number(ratio(a.p99, b.p99)) })) }));
const failed = rows.some(({ a, b }) => a.errors > 0 || b.errors > 0);
if (failed) {
  console.error('errors under load');
  process.exitCode = 1;
}
