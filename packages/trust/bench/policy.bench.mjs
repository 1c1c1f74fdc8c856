// pnpm bench: decisions on a 1,000-rule policy, compiled evaluator against the rule-by-rule reference
// interpreter (the naive baseline), same requests, same run. Reported as ns per decision and as a ratio.
import { Bench } from 'tinybench';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, createReferenceState, parsePolicy, referenceDecide } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const BATCH = 1000;

// A 1,000-rule policy in 10 nodes: 800 rules on syscalls without argument conditions (identity, trust,
// history-free), 100 path rules and 100 host rules.
function bigPolicy() {
  const nodes = {};
  const plain = KNOWN_SYSCALLS.filter((s) => !s.startsWith('wasi:filesystem/') && !s.startsWith('wasi:sockets/') && !s.startsWith('forgeone:http/'));
  let n = 0;
  for (let node = 0; node < 10; node++) {
    const rules = [];
    for (let i = 0; i < 100; i++, n++) {
      if (n % 10 === 0) {
        rules.push({ id: `path-${n}`, action: n % 20 === 0 ? 'deny' : 'allow', syscalls: ['wasi:filesystem/read', 'wasi:filesystem/open'], args: { path: { match: [`/data/t${n}/**`, `/srv/t${n}/*.json`] } } });
      } else if (n % 10 === 1) {
        rules.push({ id: `host-${n}`, action: n % 20 === 1 ? 'deny' : 'allow', syscalls: ['wasi:sockets/tcp-connect', 'forgeone:http/fetch'], args: { host: { in: [`api${n}.example.com`, `*.t${n}.example.org`] }, port: { in: [443, 8443] } } });
      } else {
        const action = ['allow', 'allow', 'allow', 'audit', 'deny'][n % 5];
        rules.push({ id: `r-${n}`, action, syscalls: [plain[n % plain.length]], identity: n % 7 === 0 ? { tenants: ['acme', 'globex'] } : undefined, trust: n % 11 === 0 ? { minLevel: 'Limited' } : undefined });
      }
    }
    nodes[`n${node}`] = { rules: rules.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))) };
  }
  const edges = Array.from({ length: 9 }, (_, i) => ({ from: `n${i}`, to: `n${i + 1}`, kind: 'extends' }));
  return parsePolicy({ apiVersion: 'forgeone.policy/v1', name: 'bench', version: 1, defaultAction: 'deny', root: 'n0', nodes, edges }).policy;
}

const policy = bigPolicy();
const identity = createIdentity({ subject: 'plugin:bench', tenant: 'acme', roles: ['plugin'], trust: trustVector('Verified', 0.9) });
const syscalls = new SyscallTable(KNOWN_SYSCALLS);
const program = compilePolicy(policy, { identity, syscalls });
const refState = createReferenceState();
const base = { now: Date.UTC(2026, 10, 23, 10), calls: 3, rate: 1, denied: 0, anomaly: 0, path: undefined, host: undefined, port: undefined, size: undefined };

const plainNames = KNOWN_SYSCALLS.filter((s) => !s.startsWith('wasi:filesystem/') && !s.startsWith('wasi:sockets/') && !s.startsWith('forgeone:http/') && !s.startsWith('forgeone:kv'));
const workloads = {
  'no argument rules': Array.from({ length: BATCH }, (_, i) => ({ name: plainNames[i % plainNames.length], ctx: { ...base } })),
  'path matchers (100 rules)': Array.from({ length: BATCH }, (_, i) => ({ name: 'wasi:filesystem/read', ctx: { ...base, path: i % 3 === 0 ? `/data/t${(i * 10) % 1000}/x/y.bin` : i % 3 === 1 ? `/srv/t${(i * 10) % 1000}/cfg.json` : `/etc/passwd${i}` } })),
  'host matchers (100 rules)': Array.from({ length: BATCH }, (_, i) => ({ name: 'forgeone:http/fetch', ctx: { ...base, host: i % 2 === 0 ? `api${(i * 10 + 1) % 1000}.example.com` : `x.t${(i * 10 + 1) % 1000}.example.org`, port: i % 4 === 0 ? 80 : 443 } })),
};
for (const w of Object.values(workloads)) for (const r of w) r.id = syscalls.id(r.name);

// Both evaluators must agree on this workload before we time them.
for (const [label, reqs] of Object.entries(workloads)) {
  for (const r of reqs.slice(0, 50)) {
    const a = program.decide(r.id, r.ctx);
    const b = referenceDecide(policy, identity, r.name, r.ctx, refState);
    if (a.verdict !== b.verdict || a.rule !== b.rule) throw new Error(`${label}: compiled ${a.verdict}/${a.rule} vs reference ${b.verdict}/${b.rule} on ${r.name}`);
  }
}

let sink = 0;
const rows = [];
for (const [label, reqs] of Object.entries(workloads)) {
  const bench = new Bench({ time: quick ? 150 : 1000, warmup: true, iterations: 5 });
  // The reference interpreter walks all 1,000 rules per call: time it on a 50-request slice.
  const refReqs = reqs.slice(0, 50);
  bench.add('compiled', () => {
    for (let i = 0; i < reqs.length; i++) sink += program.decide(reqs[i].id, reqs[i].ctx).verdict.length;
  });
  bench.add('reference', () => {
    for (let i = 0; i < refReqs.length; i++) sink += referenceDecide(policy, identity, refReqs[i].name, refReqs[i].ctx, refState).verdict.length;
  });
  await bench.run();
  const c = (bench.tasks[0].result.latency.mean * 1e6) / reqs.length;
  const r = (bench.tasks[1].result.latency.mean * 1e6) / refReqs.length;
  rows.push({ workload: label, 'compiled ns/decision': c.toFixed(1), 'reference ns/decision': r.toFixed(0), 'compiled decisions/s': Math.round(1e9 / c).toLocaleString('en-US'), speedup: `${(r / c).toFixed(0)}×` });
}
console.log(`\nPolicy decisions on a ${Object.values(policy.nodes).reduce((n, x) => n + x.rules.length, 0)}-rule policy (batches of ${BATCH}; goal: <100 ns without argument rules, <1 µs with)`);
console.table(rows);
if (sink === 42) console.log('');
