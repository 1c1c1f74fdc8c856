import { MessageChannel, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ForgeError, KNOWN_SYSCALLS, SyscallTable } from '@forgeone/common';
import type { SnapshotState } from '@forgeone/observer';
import { RingRecorder, coarseClockReader, createControl, drainSlots, requestDrain, type CallRecorder, type Gate, type RawBlock } from '../gate/index.js';
import { capabilityPolicy } from '../capabilities.js';
import { warmP1Data } from './runners/wasi-p1.js';
import { GuestClock } from './clock.js';
import { createWorkerBridge } from './bridge.js';
import { LivePolicy, MeteredGate } from './live-policy.js';
import { createOutputBudget, createOutputSink } from './output.js';
import { METER_MEMORY_PAGES, createMeter, toWireError, type FromWorker, type ToWorker } from './protocol.js';
import { DEFAULT_LIMITS, type ResolvedLimits, type Runner, type RunnerEnv, type RunnerInstance, type RunnerModule, type SandboxPolicy } from './types.js';

const SERVE = Symbol('forgeone.serve');
// Shared slots of the worker's recorder, and how many may wait before the worker asks the kernel to drain.
const SLOTS = 16;
const DRAIN_AT = SLOTS / 4;

interface ServeMarker {
  readonly [SERVE]: RunnerInstance;
}

function isServe(value: unknown): value is ServeMarker {
  return typeof value === 'object' && value !== null && SERVE in value;
}

/** Data the pool gives each worker at spawn. */
export interface SandboxWorkerData {
  /** Runner modules to import before the worker is handed out. */
  readonly preload?: readonly string[];
  /** Run the built-in runners' warm-up before reporting ready (default true). */
  readonly warmUp?: boolean;
}

type StartMessage = Extract<ToWorker, { type: 'start' }>;
type Post = (m: FromWorker, transfer?: ArrayBuffer[]) => void;

// The container's first sequence number (a snapshot's position), 0 when absent or malformed.
function startSeqOf(msg: StartMessage): number {
  const n = msg.startSeq;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

// The built-in runner whose start path the warm-up takes.
const WARM_RUNNER = 'builtin:wasi-p1';

// A start message for a throw-away container (the warm-up): its own control, meter and ports, a kernel policy
// (so the live policy compiles one), records on (so the shared recorder runs).
function warmStartMessage(): { readonly msg: StartMessage; readonly close: () => void } {
  const bridge = new MessageChannel();
  const policy = new MessageChannel();
  const ports = [bridge.port1, bridge.port2, policy.port1, policy.port2];
  for (const p of ports) p.unref();
  const msg: StartMessage = {
    type: 'start',
    id: 'warm-up',
    runner: WARM_RUNNER,
    data: warmP1Data(),
    policy: { document: capabilityPolicy({ args: [], env: {} }), identity: { subject: 'warm-up' } } satisfies SandboxPolicy,
    limits: DEFAULT_LIMITS,
    control: createControl(),
    meter: createMeter(),
    timeBase: Math.floor(performance.timeOrigin + performance.now()),
    clockBuffer: undefined,
    bridgePort: bridge.port2,
    bridgeSignal: new Int32Array(new SharedArrayBuffer(8)),
    policyPort: policy.port2,
    recordBlockSize: 2,
  };
  return { msg, close: () => ports.forEach((p) => p.close()) };
}

/**
 * Set up a container from its start message and run its runner: guest clock, live policy, bridge, output
 * sinks, the shared recorder when records are wanted, metered gates.
 * @param mod - the runner module
 * @param msg - the start message
 * @param post - sends to the kernel
 * @param onState - receives the container's clock, recorder and the list of gates its runner makes, as soon as
 *   they exist
 * @returns the runner's value
 */
async function launch(
  mod: RunnerModule,
  msg: StartMessage,
  post: Post,
  onState: (clock: GuestClock, recorder: RingRecorder | undefined, gates: readonly Gate[]) => void,
): Promise<unknown> {
  const run: Runner | undefined = typeof mod.run === 'function' ? mod.run : typeof mod.default === 'function' ? mod.default : undefined;
  if (run === undefined) throw new ForgeError('NOT_FOUND', `runner ${JSON.stringify(msg.runner)} exports no run function`);
  if (msg.snapshot !== undefined && mod.snapshots !== true) throw new ForgeError('SNAPSHOT_UNSUPPORTED', `runner ${JSON.stringify(msg.runner)} cannot start a container from a snapshot`);
  const limits = msg.limits as ResolvedLimits;
  const control = msg.control;
  const meter = msg.meter;
  const now = msg.clockBuffer instanceof SharedArrayBuffer ? coarseClockReader(msg.clockBuffer) : undefined;
  const c = new GuestClock(meter, msg.timeBase, now);
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const policyPort = msg.policyPort as unknown as MessagePort;
  const policy = new LivePolicy(msg.policy as SandboxPolicy | undefined, syscalls, control, policyPort);
  const bridge = createWorkerBridge(msg.bridgePort as unknown as MessagePort, msg.bridgeSignal, limits.bridgeTimeoutMs, c);
  const budget = createOutputBudget(limits.maxOutputBytes, meter);
  let rec: RingRecorder | undefined;
  if (typeof msg.recordBlockSize === 'number' && msg.recordBlockSize > 0) {
    let sent = syscalls.size;
    let rulesSent = 0;
    const created: RingRecorder = new RingRecorder({
      blockSize: Math.max(1, Math.floor(msg.recordBlockSize)),
      onBlock: (block: RawBlock) => {
        const all = syscalls.names();
        const names = all.length > sent ? all.slice(sent) : [];
        sent = all.length;
        const ruleNames = created.ruleNames();
        const rules = ruleNames.length > rulesSent ? ruleNames.slice(rulesSent) : [];
        rulesSent = ruleNames.length;
        if (block.slot !== undefined) {
          // The block stays in its shared slot; nothing is copied here. The kernel drains the slots before
          // every other message of this worker and on its watchdog tick; ask it explicitly once a quarter of
          // the slots are waiting (one message per several blocks), or when new names must go with them.
          const ask = created.slotsHandedOver >= DRAIN_AT && requestDrain(created.shared!);
          if (ask || names.length > 0 || rules.length > 0) post({ type: 'records', names, rules });
        } else {
          // A copy (no slot was free): fields, rule ids and arena share one buffer, transferred.
          const ruleIds = block.ruleIds ?? new Int32Array(block.count).fill(-1);
          const buffers = [...new Set([block.fields.buffer, block.arena.buffer, ruleIds.buffer] as ArrayBuffer[])];
          post({ type: 'records', block: { count: block.count, fields: block.fields, arena: block.arena, ruleIds, handOver: block.handOver ?? -1 }, names, rules }, buffers);
        }
      },
      // In shared memory: blocks go to the kernel as slots (no copy here), and the kernel can salvage the
      // pending calls if it has to kill this worker. 16 slots: the kernel thread takes them in batches, and a
      // guest in a tight loop fills one every ~15 µs. Each has the default 256 KiB for argument and result
      // bytes (results are what a replay answers with); pages that are never written are never backed.
      shared: true,
      slots: SLOTS,
    });
    rec = created;
  }
  const startSeq = startSeqOf(msg);
  const gates: Gate[] = [];
  onState(c, rec, gates);
  if (rec?.shared !== undefined) post({ type: 'ring', ring: rec.shared });
  const flushRecords = (): void => void rec?.flush();
  const env: RunnerEnv = {
    id: msg.id,
    data: msg.data,
    control,
    limits,
    maxMemoryPages: Math.min(65536, Math.floor(limits.maxMemoryBytes / 65536)),
    syscalls,
    policy,
    kernelPolicy: msg.policy !== undefined && msg.policy !== null,
    recorder: rec,
    flushRecords,
    bridge,
    snapshot: msg.snapshot,
    startSeq,
    stdout: createOutputSink(budget, (bytes) => post({ type: 'output', stream: 'stdout', bytes })),
    stderr: createOutputSink(budget, (bytes) => post({ type: 'output', stream: 'stderr', bytes })),
    createGate: (options = {}) => {
      const gateRecorder: CallRecorder | undefined = options.recorder ?? rec;
      const flush = gateRecorder !== undefined && typeof (gateRecorder as { flush?: unknown }).flush === 'function' ? () => void (gateRecorder as RingRecorder).flush() : undefined;
      const gate = new MeteredGate(
        {
          syscalls,
          policy: options.policy ?? policy,
          control,
          startSeq,
          onQuarantined: 'block',
          ...(now === undefined ? {} : { now }),
          ...(gateRecorder === undefined ? {} : { recorder: gateRecorder }),
          ...(options.onQuarantine === undefined ? {} : { onQuarantine: options.onQuarantine }),
          ...(flush === undefined ? {} : { onHold: flush }),
        },
        c,
        flush,
      );
      gates.push(gate);
      return gate;
    },
    guest: (fn) => c.guest(fn),
    pollPolicy: () => policy.poll(),
    onPolicyUpdate: (cb) => policy.onUpdate(cb),
    reportMemory: (pages) => Atomics.store(meter, METER_MEMORY_PAGES, pages | 0),
    serve: (inst) => ({ [SERVE]: inst }) satisfies ServeMarker,
  };
  return run(env);
}

/**
 * The sandbox worker's main loop: preloads runner modules, then runs exactly one container (`start`),
 * serving `call` and `close` if its runner serves. Called by the worker entry (`@forgeone/execution/worker`);
 * does nothing outside a worker thread.
 * @param builtins - runners available by name (e.g. `builtin:core`) without an import
 */
export function startSandboxWorker(builtins: Readonly<Record<string, RunnerModule>>): void {
  const port = parentPort;
  if (port === null) return;
  const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => {
    if (m.type !== 'records' && m.type !== 'output') flushRecords();
    try {
      port.postMessage(m, transfer);
    } catch (e) {
      if (m.type === 'result') port.postMessage({ type: 'failed', error: toWireError(new ForgeError('CONTAINER_FAILED', `the runner's result cannot be sent: ${String(e)}`)) } satisfies FromWorker);
      else if (m.type === 'callResult') port.postMessage({ type: 'callResult', seq: m.seq, ok: false, error: toWireError(new ForgeError('INVALID_ARGUMENT', `the call's result cannot be sent: ${String(e)}`)) } satisfies FromWorker);
      else if (m.type === 'snapshotResult') port.postMessage({ type: 'snapshotResult', seq: m.seq, ok: false, error: toWireError(new ForgeError('SNAPSHOT_UNSUPPORTED', `the snapshot cannot be sent: ${String(e)}`)) } satisfies FromWorker);
      else throw e;
    }
  };
  const modules = new Map<string, Promise<RunnerModule>>();
  // Runner modules loaded so far, for a start without awaiting (each await is a trip through the event loop).
  const loaded = new Map<string, RunnerModule>();
  const load = (specifier: string): Promise<RunnerModule> => {
    let m = modules.get(specifier);
    if (m === undefined) {
      const builtin = Object.hasOwn(builtins, specifier) ? builtins[specifier] : undefined;
      m = builtin !== undefined ? Promise.resolve(builtin) : (import(specifier) as Promise<RunnerModule>);
      modules.set(specifier, m);
      m.then(
        (mod) => loaded.set(specifier, mod),
        () => undefined,
      );
    }
    return m;
  };
  const preload = ((workerData as SandboxWorkerData | null)?.preload ?? []).filter((s): s is string => typeof s === 'string');
  const warmBuiltins = async (): Promise<void> => {
    for (const mod of Object.values(builtins)) {
      try {
        await mod.warm?.();
      } catch {
        // A failed warm-up only costs speed.
      }
    }
  };
  const warmUp = (workerData as SandboxWorkerData | null)?.warmUp !== false;
  // The container start path itself (clock, live policy, bridge, shared recorder, metered gate, the runner)
  // once on a throw-away container, so a real start runs code that is already compiled.
  const warmStart = async (): Promise<void> => {
    const mod = Object.hasOwn(builtins, WARM_RUNNER) ? builtins[WARM_RUNNER] : undefined;
    if (mod === undefined) return;
    const { msg, close } = warmStartMessage();
    let rec: RingRecorder | undefined;
    // Nothing goes to the kernel: blocks are taken here, everything else is dropped.
    const sink: Post = (m) => {
      if (m.type === 'records' && rec?.shared !== undefined) drainSlots(rec.shared);
    };
    try {
      await launch(mod, msg, sink, (_c, r) => (rec = r));
      rec?.flush();
    } catch {
      // A failed warm-up only costs speed.
    } finally {
      close();
    }
  };
  let warmed = false;
  const warm = Promise.allSettled([...preload.map(load), ...(warmUp ? [warmBuiltins().then(warmStart)] : [])]).then(() => {
    warmed = true;
    post({ type: 'ready' });
  });

  let started = false;
  let instance: RunnerInstance | undefined;
  let clock: GuestClock | undefined;
  let recorder: RingRecorder | undefined;
  let gates: readonly Gate[] = [];
  let firstSeq = 0;
  // Records go out before any other message that ends a phase (result, failure, serving, a call's result).
  function flushRecords(): void {
    recorder?.flush();
  }

  const start = async (msg: StartMessage): Promise<void> => {
    // A warm worker with the runner loaded goes straight on; otherwise wait for the warm-up and the import.
    let mod = warmed ? loaded.get(msg.runner) : undefined;
    if (mod === undefined) {
      await warm;
      mod = await load(msg.runner).catch((e: unknown) => {
        throw new ForgeError('NOT_FOUND', `runner ${JSON.stringify(msg.runner)} cannot be loaded: ${e instanceof Error ? e.message : String(e)}`);
      });
    }
    firstSeq = startSeqOf(msg);
    const value = await launch(mod, msg, post, (c, r, g) => {
      clock = c;
      recorder = r;
      gates = g;
    });
    if (isServe(value)) {
      instance = value[SERVE];
      post({ type: 'serving' });
    } else {
      post({ type: 'result', value });
    }
  };

  port.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'start':
        if (started) return;
        started = true;
        start(msg).catch((e: unknown) => post({ type: 'failed', error: toWireError(e) }));
        return;
      case 'call': {
        const inst = instance;
        const seq = msg.seq;
        if (inst?.call === undefined) {
          post({ type: 'callResult', seq, ok: false, error: { code: 'INVALID_ARGUMENT', message: 'the container does not serve calls' } });
          return;
        }
        const call = inst.call.bind(inst);
        Promise.resolve()
          .then(() => (clock === undefined ? call(msg.name, msg.input) : clock.guest(() => call(msg.name, msg.input))))
          .then(
            (value) => post({ type: 'callResult', seq, ok: true, value }),
            (e: unknown) => post({ type: 'callResult', seq, ok: false, error: toWireError(e) }),
          );
        return;
      }
      case 'snapshot': {
        const inst = instance;
        const seq = msg.seq;
        Promise.resolve()
          .then(() => {
            if (inst?.snapshot === undefined) {
              throw new ForgeError('SNAPSHOT_UNSUPPORTED', inst === undefined ? 'the container does not serve calls: it has no state between calls to capture' : 'the container\'s runner cannot capture snapshots');
            }
            return inst.snapshot();
          })
          .then(
            (state: SnapshotState) => {
              // The next call's number: the highest of the container's gates (they all start at startSeq).
              let next = firstSeq;
              for (const g of gates) next = Math.max(next, g.sequence);
              const buffers = new Set<ArrayBuffer>();
              for (const i of state.instances) for (const m of i.memories) if (m.bytes.buffer instanceof ArrayBuffer && m.bytes.byteLength === m.bytes.buffer.byteLength) buffers.add(m.bytes.buffer);
              post({ type: 'snapshotResult', seq, ok: true, state, next }, [...buffers]);
            },
            (e: unknown) => post({ type: 'snapshotResult', seq, ok: false, error: toWireError(e, 'SNAPSHOT_UNSUPPORTED') }),
          );
        return;
      }
      case 'close': {
        const inst = instance;
        Promise.resolve()
          .then(() => inst?.close?.())
          .then(
            (value) => post({ type: 'result', value }),
            (e: unknown) => post({ type: 'failed', error: toWireError(e) }),
          );
        return;
      }
    }
  });
}
