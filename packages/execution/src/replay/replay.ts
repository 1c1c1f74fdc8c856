import { ForgeError, KNOWN_SYSCALLS, SyscallTable, isForgeError } from '@forgeone/common';
import type { NetGrant } from '../capabilities.js';
import { buildComponentImports, disposeComponentImports, type ComponentClocks } from '../component/adapter.js';
import { decodeHttpResponse } from '../component/forgeone.js';
import type { ByteSource } from '../component/io.js';
import type { NetBackend } from '../component/net.js';
import { transpileComponent, type LoadedComponent } from '../component/loader.js';
import { defaultExport, guestError, instantiateComponent, type RunOutcome } from '../component/run.js';
import type { HostServices, LoggedLine } from '../component/services.js';
import type { ReplayPreopen } from './filesystem.js';
import { ReplayGate, type ReplayDivergence, type ReplayRecord } from './gate.js';
import { replayNet } from './net.js';

/** Options of {@link replayComponent}. */
export interface ReplayComponentOptions {
  /** The recorded calls of the run to replay, in sequence order (`parseTrace(text).records` fits). */
  readonly records: readonly ReplayRecord[];
  /** The component that is claimed to have made them: its bytes (from the package), or already loaded. */
  readonly component: Uint8Array | LoadedComponent;
  /** The export the original run called; default `run`, or `wasi:cli/run` for a command component. */
  readonly export?: string;
  /** The input the original run passed; default the empty string. */
  readonly input?: string;
  /**
   * The environment the original run gave the guest. The record holds only its SHA3-256 (values may be
   * secrets): a replay with another environment diverges at `get-environment`. Default none.
   */
  readonly env?: readonly (readonly [string, string])[];
  /** The network grants of the original run (`wasi:http` and `wasi:sockets` check them after the gate); default none. */
  readonly network?: readonly (NetGrant | string)[];
  /**
   * The directories the original run was granted, in order: their guest paths (a `DirGrant` fits; its host
   * path is never used). Every filesystem call is answered from the record, so the replay needs no host
   * directory and touches none. Default: the guest paths the record's `wasi:filesystem/preopens` call holds
   * as its result (a JSON list), else none. Other preopens than the original run's diverge at
   * `wasi:filesystem/preopens` (another count) or at the first call on them (another path).
   */
  readonly preopens?: readonly (string | ReplayPreopen)[];
  /** Transpile cache directory, as for `transpileComponent`. */
  readonly cacheDir?: string;
}

/** What a replay found. */
export interface ReplayReport {
  /** True when the replay made exactly the recorded calls, with the recorded arguments and results. */
  readonly identical: boolean;
  /** Recorded calls the replay matched before it ended or diverged. */
  readonly matched: number;
  /** Recorded calls in all. */
  readonly records: number;
  /** The first divergence, or null when identical. */
  readonly divergence: ReplayDivergence | null;
  /** What the export returned in the replay, or the error that ended it (a divergence is `REPLAY_DIVERGED`). */
  readonly outcome: RunOutcome | { readonly ok: false; readonly error: string; readonly code: string };
  /** What the guest wrote to stdout in the replay. */
  readonly stdout: Uint8Array;
  /** What the guest wrote to stderr in the replay. */
  readonly stderr: Uint8Array;
  /** What the guest logged through `forgeone:host/log` in the replay. */
  readonly logs: readonly LoggedLine[];
}

const MONOTONIC = 'wasi:clocks/monotonic-clock';

/** What {@link replayHost} gives `buildComponentImports`: host parts answering from the record, and the log sink. */
export interface ReplayHost {
  /** `forgeone:host` services: kv and fetch answered from the record; log lines go to {@link ReplayHost.logs}. */
  services: HostServices;
  /** Clocks answered from the record. */
  clocks: ComponentClocks;
  /**
   * Random bytes answered from the record.
   * @param into - filled with the recorded bytes
   */
  random: (into: Uint8Array) => void;
  /** Standard input answered from the record. */
  stdin: ByteSource;
  /** The network of `wasi:sockets` answered from the record ({@link replayNet}): no socket is opened. */
  net: NetBackend;
  /** What the guest logged in the replay. */
  logs: LoggedLine[];
}

/**
 * The host of a replay: clocks, random, stdin, sockets and the `forgeone:host` services answer from the record of
 * the call in progress ({@link ReplayGate.recorded}); what the guest does to the world (kv writes, logs,
 * stdout) goes to the replay's own sinks. Pass the parts to `buildComponentImports` with the same gate
 * (filesystem calls answer from the record by themselves: `buildComponentImports` sees the replay gate).
 * @param gate - the replay gate
 * @returns the import options and the sinks
 */
export function replayHost(gate: ReplayGate): ReplayHost {
  const logs: LoggedLine[] = [];
  const bytes = (what: string): Uint8Array => {
    const failure = gate.recordedFailure;
    if (failure !== null) throw new ForgeError(failure.code, failure.message);
    const b = gate.recorded;
    if (b === null) gate.unanswerable(`the record holds no ${what} to answer with`);
    return b;
  };
  const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  let lastMonotonic = 0n;
  const services: HostServices = {
    kvGet(): Uint8Array | undefined {
      const b = bytes('kv value');
      if (b.length === 0) gate.unanswerable('the recorded kv answer is empty');
      return b[0] === 0 ? undefined : b.slice(1);
    },
    kvSet(): void {
      const failure = gate.recordedFailure;
      if (failure !== null) throw new ForgeError(failure.code, failure.message);
    },
    kvDelete(): boolean {
      return bytes('kv delete answer')[0] === 1;
    },
    kvList(): string[] {
      const b = bytes('kv key list');
      try {
        const keys = JSON.parse(new TextDecoder().decode(b)) as unknown;
        if (Array.isArray(keys) && keys.every((k) => typeof k === 'string')) return keys as string[];
      } catch {
        // fall through
      }
      return gate.unanswerable('the recorded kv key list is malformed');
    },
    fetch() {
      const b = bytes('HTTP response');
      try {
        return decodeHttpResponse(b);
      } catch {
        return gate.unanswerable('the recorded HTTP response is malformed');
      }
    },
    log(level, message): void {
      logs.push({ level, message });
    },
  };
  const clocks: ComponentClocks = {
    wallNs(): bigint {
      const b = bytes('wall-clock time');
      if (b.length !== 12) gate.unanswerable('the recorded wall-clock time is malformed');
      const v = view(b);
      return v.getBigUint64(0, true) * 1_000_000_000n + BigInt(v.getUint32(8, true));
    },
    wallMs(): number {
      const b = bytes('time');
      if (b.length !== 8) gate.unanswerable('the recorded time is malformed');
      return Number(view(b).getBigUint64(0, true));
    },
    monotonicNs(): bigint {
      // Read by `now` (recorded) and by pollables and subscriptions (not recorded): those see the last
      // recorded reading, so the guest's notion of time only moves as the record says.
      const cur = gate.current;
      if (cur !== null && cur.syscall === MONOTONIC && cur.args.detail === undefined) {
        const b = bytes('monotonic time');
        if (b.length !== 8) gate.unanswerable('the recorded monotonic time is malformed');
        lastMonotonic = view(b).getBigUint64(0, true);
      }
      return lastMonotonic;
    },
  };
  const random = (into: Uint8Array): void => {
    const b = bytes('random bytes');
    if (b.length !== into.length) gate.unanswerable(`the record holds ${b.length} random bytes, the guest asked for ${into.length}`);
    into.set(b);
  };
  const stdin: ByteSource = () => {
    const cur = gate.current;
    if (cur === null) return null;
    if (!cur.allowed || cur.result !== 0) return null;
    return bytes('stdin bytes');
  };
  return { services, clocks, random, stdin, net: replayNet(gate), logs };
}

// The guest paths a `wasi:filesystem/preopens` record holds as its result (a JSON list), if any.
function recordedPreopens(records: readonly ReplayRecord[]): string[] {
  const rec = records.find((r) => r.syscall === 'wasi:filesystem/preopens' && r.allowed && r.resultBytes !== null);
  if (rec === undefined) return [];
  try {
    const v = JSON.parse(new TextDecoder().decode(rec.resultBytes!)) as unknown;
    if (Array.isArray(v) && v.every((p) => typeof p === 'string')) return v as string[];
  } catch {
    // not a list of guest paths
  }
  return [];
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Forensic replay: re-run a component with the recorded result of every host call. Each call the guest
 * makes must have the name and canonical arguments of the next record; it is answered from the record (the
 * host does not touch the clock, the random source, the network or the key-value store), and the run stops
 * at the first divergence. The report says "identical" or gives that divergence: sequence number, what was
 * expected, what the replay did.
 *
 * Runs on the calling thread (a replay is a kernel-side investigation, not a workload). Filesystem calls are
 * answered from the record too (opens, reads, writes, listings, metadata): descriptors are replay-side
 * objects, no host directory is opened, so a run that used preopens replays on another machine from its
 * trace and its package alone (give the original grants' guest paths in `preopens`; see docs/replay.md).
 *
 * @example
 * ```ts
 * const trace = parseTrace(await readFile('hello.dna', 'utf8'));
 * const report = await replayComponent({ records: trace.records, component: wasmBytes, input: 'ForgeOne' });
 * console.log(report.identical ? 'identical' : report.divergence?.message);
 * ```
 * @param options - the record, the component and the original invocation
 * @returns the report
 * @throws ForgeError `WASM_INVALID` / `WASM_TRANSPILE_FAILED` when the component cannot be loaded
 */
export async function replayComponent(options: ReplayComponentOptions): Promise<ReplayReport> {
  const loaded = options.component instanceof Uint8Array ? await transpileComponent(options.component, options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }) : options.component;
  const records = [...options.records].sort((a, b) => a.seq - b.seq);
  const gate = new ReplayGate(records, new SyscallTable(KNOWN_SYSCALLS));
  const host = replayHost(gate);
  const stdout: Uint8Array[] = [];
  const stderr: Uint8Array[] = [];
  const preopens = (options.preopens ?? recordedPreopens(records)).map((p) =>
    typeof p === 'string' ? { guestPath: p, hostPath: '' } : { guestPath: p.guestPath, hostPath: '', ...(p.readOnly === true ? { readOnly: true } : {}) },
  );
  const imports = buildComponentImports({
    gate,
    preopens,
    services: host.services,
    clocks: host.clocks,
    random: host.random,
    stdin: host.stdin,
    net: host.net,
    env: options.env ?? [],
    network: options.network ?? [],
    stdout: (b) => void stdout.push(b.slice()),
    stderr: (b) => void stderr.push(b.slice()),
  });
  let outcome: ReplayReport['outcome'];
  try {
    outcome = instantiateComponent(loaded, imports).call({ export: options.export ?? defaultExport(loaded.exports), input: options.input ?? '' });
  } catch (e) {
    const err = isForgeError(e) ? e : guestError(e);
    outcome = { ok: false, error: err.message, code: err.code };
  } finally {
    disposeComponentImports(imports);
  }
  const divergence = gate.finish();
  // The records before the diverging one matched (an extra call diverges after all of them).
  const at = divergence === null ? -1 : records.findIndex((r) => r.seq === divergence.seq);
  return {
    identical: divergence === null,
    matched: divergence === null ? records.length : at === -1 ? gate.sequence : at,
    records: records.length,
    divergence,
    outcome,
    stdout: concat(stdout),
    stderr: concat(stderr),
    logs: host.logs,
  };
}
