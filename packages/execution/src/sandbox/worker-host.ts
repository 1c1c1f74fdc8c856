import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ForgeError, KNOWN_SYSCALLS, SyscallTable } from '@forgeone/common';
import { RingRecorder, coarseClockReader, type CallRecorder, type RawBlock } from '../gate/index.js';
import { GuestClock } from './clock.js';
import { createWorkerBridge } from './bridge.js';
import { LivePolicy, MeteredGate } from './live-policy.js';
import { createOutputBudget, createOutputSink } from './output.js';
import { METER_MEMORY_PAGES, toWireError, type FromWorker, type ToWorker } from './protocol.js';
import type { ResolvedLimits, Runner, RunnerEnv, RunnerInstance, RunnerModule, SandboxPolicy } from './types.js';

const SERVE = Symbol('forgeone.serve');

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
      else throw e;
    }
  };
  const modules = new Map<string, Promise<RunnerModule>>();
  const load = (specifier: string): Promise<RunnerModule> => {
    let m = modules.get(specifier);
    if (m === undefined) {
      const builtin = Object.hasOwn(builtins, specifier) ? builtins[specifier] : undefined;
      m = builtin !== undefined ? Promise.resolve(builtin) : (import(specifier) as Promise<RunnerModule>);
      modules.set(specifier, m);
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
  const warm = Promise.allSettled([...preload.map(load), ...(warmUp ? [warmBuiltins()] : [])]).then(() => post({ type: 'ready' }));

  let started = false;
  let instance: RunnerInstance | undefined;
  let clock: GuestClock | undefined;
  let recorder: RingRecorder | undefined;
  // Records go out before any other message that ends a phase (result, failure, serving, a call's result).
  function flushRecords(): void {
    recorder?.flush();
  }

  const start = async (msg: Extract<ToWorker, { type: 'start' }>): Promise<void> => {
    await warm;
    const mod = await load(msg.runner).catch((e: unknown) => {
      throw new ForgeError('NOT_FOUND', `runner ${JSON.stringify(msg.runner)} cannot be loaded: ${e instanceof Error ? e.message : String(e)}`);
    });
    const run: Runner | undefined = typeof mod.run === 'function' ? mod.run : typeof mod.default === 'function' ? mod.default : undefined;
    if (run === undefined) throw new ForgeError('NOT_FOUND', `runner ${JSON.stringify(msg.runner)} exports no run function`);
    const limits = msg.limits as ResolvedLimits;
    const control = msg.control;
    const meter = msg.meter;
    const now = msg.clockBuffer instanceof SharedArrayBuffer ? coarseClockReader(msg.clockBuffer) : undefined;
    const c = new GuestClock(meter, msg.timeBase, now);
    clock = c;
    const syscalls = new SyscallTable(KNOWN_SYSCALLS);
    const policyPort = msg.policyPort as unknown as MessagePort;
    const policy = new LivePolicy(msg.policy as SandboxPolicy | undefined, syscalls, control, policyPort);
    const bridge = createWorkerBridge(msg.bridgePort as unknown as MessagePort, msg.bridgeSignal, limits.bridgeTimeoutMs, c);
    const budget = createOutputBudget(limits.maxOutputBytes, meter);
    if (typeof msg.recordBlockSize === 'number' && msg.recordBlockSize > 0) {
      let sent = syscalls.size;
      recorder = new RingRecorder({
        blockSize: Math.max(1, Math.floor(msg.recordBlockSize)),
        onBlock: (block: RawBlock) => {
          const all = syscalls.names();
          const names = all.length > sent ? all.slice(sent) : [];
          sent = all.length;
          post({ type: 'records', block, names }, [block.fields.buffer as ArrayBuffer, block.arena.buffer as ArrayBuffer]);
        },
        // In shared memory, so the kernel can salvage the pending calls if it has to kill this worker.
        shared: true,
      });
      if (recorder.shared !== undefined) post({ type: 'ring', ring: recorder.shared });
    }
    const rec = recorder;
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
      stdout: createOutputSink(budget, (bytes) => post({ type: 'output', stream: 'stdout', bytes })),
      stderr: createOutputSink(budget, (bytes) => post({ type: 'output', stream: 'stderr', bytes })),
      createGate: (options = {}) => {
        const gateRecorder: CallRecorder | undefined = options.recorder ?? rec;
        const flush = gateRecorder !== undefined && typeof (gateRecorder as { flush?: unknown }).flush === 'function' ? () => void (gateRecorder as RingRecorder).flush() : undefined;
        return new MeteredGate(
          {
            syscalls,
            policy: options.policy ?? policy,
            control,
            onQuarantined: 'block',
            ...(now === undefined ? {} : { now }),
            ...(gateRecorder === undefined ? {} : { recorder: gateRecorder }),
            ...(options.onQuarantine === undefined ? {} : { onQuarantine: options.onQuarantine }),
            ...(flush === undefined ? {} : { onHold: flush }),
          },
          c,
          flush,
        );
      },
      guest: (fn) => c.guest(fn),
      pollPolicy: () => policy.poll(),
      onPolicyUpdate: (cb) => policy.onUpdate(cb),
      reportMemory: (pages) => Atomics.store(meter, METER_MEMORY_PAGES, pages | 0),
      serve: (inst) => ({ [SERVE]: inst }) satisfies ServeMarker,
    };
    const value: unknown = await run(env);
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
