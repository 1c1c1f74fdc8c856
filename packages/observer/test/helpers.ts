import { createIdentity, trustVector } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import type { Store } from '@forgeone/store';
import { createTraceWriter } from '../src/index.js';
import type { TraceCallRecord, TraceHeaderInit, TraceStopInput, TraceWriter } from '../src/index.js';

export const crypto = new NodeCryptoProvider();
/** A fixed kernel key, so golden files are stable. */
export const kernelKey = new SigningKey(crypto, new Uint8Array(32).fill(7));
export const otherKey = new SigningKey(crypto, new Uint8Array(32).fill(9));

export const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

export function header(traceId = 'tr-1', overrides: Partial<TraceHeaderInit> = {}): TraceHeaderInit {
  return {
    traceId,
    containerId: 'ctr-01',
    identity: createIdentity({ subject: 'plugin:hello', tenant: 'acme', roles: ['plugin'], trust: trustVector('Verified', 0.8) }),
    package: { name: 'hello', version: '1.2.0', hash: 'sha3-256:6f1c' },
    policy: { name: 'example', version: 3 },
    startTime: T0,
    ...overrides,
  };
}

/** A call record with sensible defaults. */
export function call(seq: number, partial: Partial<TraceCallRecord> = {}): TraceCallRecord {
  return {
    seq,
    syscall: 'wasi:filesystem/read',
    args: { path: '/data/a.txt', size: 64 },
    verdict: 'allow',
    rule: 'base/read-data',
    allowed: true,
    result: 0,
    start: T0 + seq * 1.25,
    duration: 0.0425,
    resultBytes: null,
    ...partial,
  };
}

/** A varied run: reads, a denied read of /etc/passwd, a network call, kv, random bytes, a quarantine. */
export function scenario(): TraceCallRecord[] {
  const r: TraceCallRecord[] = [];
  const push = (p: Partial<TraceCallRecord>): void => {
    r.push(call(r.length, p));
  };
  push({ syscall: 'wasi:filesystem/open', args: { path: '/data/a.txt', detail: 'fd=3' }, resultBytes: null });
  push({ args: { path: '/data/a.txt', size: 5 }, resultBytes: new Uint8Array([104, 101, 108, 108, 111]) });
  push({ syscall: 'wasi:clocks/wall-clock', args: {}, rule: null, resultBytes: new Uint8Array(8).fill(1) });
  push({ syscall: 'wasi:filesystem/read', args: { path: '/etc/passwd' }, verdict: 'deny', rule: 'base/no-etc', allowed: false, result: -1 });
  push({ syscall: 'wasi:sockets/tcp-connect', args: { host: 'example.com', port: 443 }, rule: 'net/allow-example' });
  push({ syscall: 'forgeone:kv/get', args: { detail: 'user:42' }, rule: 'kv/read', resultBytes: new Uint8Array([1, 2, 3]) });
  push({ syscall: 'forgeone:kv/set', args: { detail: 'user:42', size: 3 }, verdict: 'audit', rule: 'kv/write-audited' });
  push({ syscall: 'wasi:random/random', args: { size: 16 }, rule: null, resultBytes: new Uint8Array(16).fill(0xab) });
  push({ syscall: 'wasi:sockets/tcp-connect', args: { host: 'evil.example', port: 6667 }, verdict: 'deny', rule: null, allowed: false, result: -1 });
  push({ syscall: 'wasi:filesystem/write', args: { path: '/etc/shadow', size: 10 }, verdict: 'quarantine', rule: 'base/quarantine-etc-write', allowed: false, result: -1 });
  push({ syscall: 'wasi:cli/stdout', args: { size: 12 }, verdict: 'suspended', rule: null, allowed: false, result: -1 });
  return r;
}

/** Write a trace: records in chunks, a quarantine checkpoint after the quarantining call, then stop. */
export async function writeScenario(
  store: Store,
  opts: { traceId?: string; blockSize?: number; checkpointEvery?: number; records?: TraceCallRecord[]; stop?: TraceStopInput | null } = {},
): Promise<TraceWriter> {
  const w = await createTraceWriter({
    store,
    crypto,
    signingKey: kernelKey,
    header: header(opts.traceId ?? 'tr-1'),
    ...(opts.blockSize === undefined ? {} : { blockSize: opts.blockSize }),
    ...(opts.checkpointEvery === undefined ? {} : { checkpointEvery: opts.checkpointEvery }),
  });
  const records = opts.records ?? scenario();
  for (let i = 0; i < records.length; i += 3) {
    const chunk = records.slice(i, i + 3);
    await w.append(chunk);
    if (chunk.some((c) => c.verdict === 'quarantine')) await w.checkpoint('quarantine');
  }
  if (opts.stop !== null) await w.stop(opts.stop ?? { endTime: T0 + 1500, outcome: 'quarantined', flags: [{ name: 'probe-etc', severity: 'medium', detail: 'read of /etc/passwd', seq: 3 }] });
  return w;
}
