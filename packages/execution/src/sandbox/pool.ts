import { randomUUID } from 'node:crypto';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ForgeError, KNOWN_SYSCALLS, SyscallTable, type ErrorCode } from '@forgeone/common';
import { drainSlots, salvageBlock, type SharedRing } from '../gate/recorder.js';
import { createRecordSequencer } from './records.js';
import { CONTROL_CALLS, CONTROL_IN_CALL, CONTROL_POLICY_EPOCH, CONTROL_STATE, ContainerState, createControl, quarantineControl, releaseControl, terminateControl } from '../gate/index.js';
import { serveBridge } from './bridge.js';
import type { PolicyMessage } from './live-policy.js';
import {
  METER_GUEST_SINCE,
  METER_GUEST_TOTAL,
  METER_MEMORY_PAGES,
  METER_OUTPUT_BYTES,
  createMeter,
  fromWireError,
  sinceBase,
  type FromWorker,
  type ToWorker,
} from './protocol.js';
import {
  DEFAULT_LIMITS,
  type ContainerSnapshot,
  type ContainerStats,
  type PolicyUpdate,
  type ResolvedLimits,
  type RunResult,
  type SandboxLimits,
  type SandboxPool,
  type SandboxPoolOptions,
  type SandboxSpec,
  type SandboxedContainer,
} from './types.js';

const DEFAULT_RESOURCE_LIMITS = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 };

function resolveLimits(base: ResolvedLimits, over: SandboxLimits | undefined): ResolvedLimits {
  const out: Record<string, number | undefined> = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) {
    if (v === undefined) continue;
    if (!Object.hasOwn(DEFAULT_LIMITS, k)) throw new ForgeError('INVALID_ARGUMENT', `unknown limit ${k}`, { details: { limit: k } });
    // Infinity is allowed (no budget); NaN and negative numbers are not.
    if (typeof v !== 'number' || !(v >= 0)) throw new ForgeError('INVALID_ARGUMENT', `limit ${k} must be a non-negative number`, { details: { limit: k } });
    out[k] = v;
  }
  return Object.freeze(out) as unknown as ResolvedLimits;
}

function workerFailure(error: Error): ForgeError {
  const code = (error as { code?: unknown }).code;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new ForgeError('SANDBOX_MEMORY_EXCEEDED', `the sandbox worker ran out of heap memory: ${error.message}`, { cause: error });
  }
  return new ForgeError('CONTAINER_FAILED', `the sandbox worker failed: ${error.message}`, { cause: error });
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

interface WarmWorker {
  readonly worker: Worker;
  ready: boolean;
  readonly whenReady: Promise<void>;
  assigned: boolean;
}

/**
 * Create a pool of pre-warmed sandbox workers. Each container gets a fresh worker of its own (workers are
 * never reused); the pool spawns replacements in the background. A watchdog on the main thread enforces
 * each container's CPU budgets from the meter the worker writes, terminating the worker when one is
 * exceeded.
 *
 * The CPU budgets count time spent running guest code (from an entry or the return of a host call to the
 * next host call or return), measured by the worker's clock: time blocked in host calls, the bridge or
 * quarantine does not count. The worker is terminated within about `watchdogIntervalMs` of the budget.
 *
 * @param options - pool size, container limit, worker script, preloads, limits
 * @returns the pool
 * @throws ForgeError `INVALID_ARGUMENT` for bad options
 * @example
 * ```ts
 * const pool = createSandboxPool({ size: 2, maxContainers: 8 });
 * const c = pool.start({ runner: 'builtin:core', data: { module: bytes, entry: 'main' }, policy });
 * const { value } = await c.result;
 * await pool.close();
 * ```
 */
export function createSandboxPool(options: SandboxPoolOptions = {}): SandboxPool {
  const size = options.size ?? 2;
  const maxContainers = options.maxContainers ?? 16;
  if (!Number.isInteger(size) || size < 0) throw new ForgeError('INVALID_ARGUMENT', 'pool size must be a non-negative integer');
  if (!Number.isInteger(maxContainers) || maxContainers < 1) throw new ForgeError('INVALID_ARGUMENT', 'maxContainers must be a positive integer');
  const workerUrl = options.workerUrl ?? new URL('./worker.js', import.meta.url);
  const preload = [...(options.preload ?? [])];
  const resourceLimits = { ...DEFAULT_RESOURCE_LIMITS, ...options.resourceLimits };
  const baseLimits = resolveLimits(DEFAULT_LIMITS, options.limits);
  const interval = options.watchdogIntervalMs ?? 10;
  const grace = options.terminateGraceMs ?? 50;

  const warm: WarmWorker[] = [];
  const containers = new Set<ContainerImpl>();
  let closed = false;
  let spawnFailures = 0;
  let watchdog: ReturnType<typeof setInterval> | undefined;

  // Warm workers run the built-in runners' warm-up before reporting ready; a worker spawned on demand for a
  // waiting container skips it (it would only delay that container).
  const spawn = (warmUp = true): WarmWorker => {
    const worker = new Worker(workerUrl, { workerData: { preload, warmUp }, resourceLimits, stdout: false, stderr: false });
    let resolveReady!: () => void;
    const whenReady = new Promise<void>((r) => (resolveReady = r));
    const w: WarmWorker = { worker, ready: false, whenReady, assigned: false };
    const onMessage = (m: FromWorker): void => {
      if (m.type === 'ready') {
        w.ready = true;
        spawnFailures = 0;
        resolveReady();
      }
    };
    const onGone = (): void => {
      resolveReady();
      if (w.assigned) return;
      const i = warm.indexOf(w);
      if (i >= 0) warm.splice(i, 1);
      if (!w.ready) spawnFailures++;
      refill();
    };
    worker.on('message', onMessage);
    worker.on('error', onGone);
    worker.on('exit', onGone);
    worker.unref();
    (w as { detach?: () => void }).detach = () => {
      worker.off('message', onMessage);
      worker.off('error', onGone);
      worker.off('exit', onGone);
    };
    return w;
  };

  const refill = (): void => {
    if (closed) return;
    // A worker script that cannot start would otherwise respawn forever.
    if (spawnFailures >= 3) return;
    while (warm.length < size) warm.push(spawn());
  };

  const tick = (): void => {
    if (containers.size === 0) {
      if (watchdog !== undefined) clearInterval(watchdog);
      watchdog = undefined;
      return;
    }
    for (const c of containers) c.check();
  };

  const ensureWatchdog = (): void => {
    if (watchdog === undefined) {
      watchdog = setInterval(tick, interval);
      watchdog.unref();
    }
  };

  class ContainerImpl implements SandboxedContainer {
    readonly id: string;
    readonly control = createControl();
    readonly meter = createMeter();
    #syscalls: SyscallTable | undefined;
    readonly result: Promise<RunResult>;
    readonly serving: Promise<void>;
    readonly #worker: Worker;
    readonly #limits: ResolvedLimits;
    readonly #timeBase: number;
    readonly #policyPort: MessagePort;
    readonly #stopBridge: () => void;
    readonly #onOutput: SandboxSpec['onOutput'];
    readonly #onRecords: SandboxSpec['onRecords'];
    #ring: SharedRing | undefined;
    readonly #records = createRecordSequencer((block) => {
      try {
        this.#onRecords?.(block);
      } catch {
        // A throwing record listener must not take the kernel down.
      }
    });
    readonly #retain: boolean;
    readonly #stdout: Uint8Array[] = [];
    readonly #stderr: Uint8Array[] = [];
    readonly #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
    readonly #snapshots = new Map<number, { resolve: (v: ContainerSnapshot) => void; reject: (e: unknown) => void }>();
    #callSeq = 0;
    #phase: ContainerStats['phase'] = 'running';
    #settled = false;
    #exited: Promise<void>;
    #resolve!: (r: RunResult) => void;
    #reject!: (e: unknown) => void;
    #resolveServing!: () => void;
    #rejectServing!: (e: unknown) => void;
    #final: ContainerStats | undefined;

    constructor(spec: SandboxSpec, worker: Worker, limits: ResolvedLimits) {
      this.id = spec.id ?? randomUUID();
      this.#worker = worker;
      this.#limits = limits;
      this.#onOutput = spec.onOutput;
      this.#onRecords = spec.onRecords;
      this.#retain = spec.retainOutput !== false;
      this.#timeBase = Math.floor(performance.timeOrigin + performance.now());
      this.result = new Promise<RunResult>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      this.serving = new Promise<void>((resolve, reject) => {
        this.#resolveServing = resolve;
        this.#rejectServing = reject;
      });
      // Callers that only await one of the two must not see an unhandled rejection from the other.
      this.result.catch(() => undefined);
      this.serving.catch(() => undefined);
      this.#exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

      const bridge = new MessageChannel();
      const policy = new MessageChannel();
      const bridgeSignal = new Int32Array(new SharedArrayBuffer(8));
      this.#stopBridge = serveBridge(bridge.port1, bridgeSignal, spec.handlers ?? {});
      this.#policyPort = policy.port1;
      policy.port1.unref();

      worker.on('message', (m: FromWorker) => this.#onMessage(m));
      worker.on('error', (e: Error) => this.fail(workerFailure(e)));
      worker.on('exit', (code: number) => this.fail(new ForgeError('CONTAINER_FAILED', `the sandbox worker exited (code ${code}) before the container ended`, { details: { exitCode: code } })));
      worker.ref();

      const start: ToWorker = {
        type: 'start',
        id: this.id,
        runner: spec.runner,
        data: spec.data,
        policy: spec.policy,
        limits,
        control: this.control,
        meter: this.meter,
        timeBase: this.#timeBase,
        clockBuffer: options.clockBuffer,
        bridgePort: bridge.port2,
        bridgeSignal,
        policyPort: policy.port2,
        recordBlockSize: spec.onRecords === undefined ? 0 : (spec.recordBlockSize ?? 256),
        ...(spec.snapshot === undefined ? {} : { snapshot: spec.snapshot, startSeq: spec.snapshot.trace?.seq ?? 0 }),
      };
      try {
        worker.postMessage(start, [bridge.port2, policy.port2]);
      } catch (e) {
        this.#stopBridge();
        throw new ForgeError('INVALID_ARGUMENT', `the spec cannot be sent to the worker: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }

    #onMessage(m: FromWorker): void {
      if (m.type === 'records') {
        for (const name of m.names) {
          try {
            this.syscalls.intern(name);
          } catch {
            // A malformed name from a misbehaving runner: the ids after it would not line up; decode fails loudly later.
          }
        }
        this.#records.addRuleNames(m.rules);
      }
      // Blocks the worker handed over in shared slots come first: they precede this message.
      this.#drain();
      switch (m.type) {
        case 'records': {
          if (m.block !== undefined) {
            const p = m.block;
            this.#records.push({ count: p.count, fields: p.fields, rules: [], arena: p.arena, ruleIds: p.ruleIds, handOver: p.handOver });
          }
          return;
        }
        case 'ring':
          this.#ring = m.ring;
          return;
        case 'output': {
          if (this.#retain) (m.stream === 'stderr' ? this.#stderr : this.#stdout).push(m.bytes);
          try {
            this.#onOutput?.(m.stream, m.bytes);
          } catch {
            // A throwing output listener must not take the kernel down.
          }
          return;
        }
        case 'serving':
          this.#phase = 'serving';
          this.#resolveServing();
          return;
        case 'result':
          this.#finish(m.value);
          return;
        case 'failed':
          this.fail(fromWireError(m.error));
          return;
        case 'callResult': {
          const pending = this.#calls.get(m.seq);
          if (pending === undefined) return;
          this.#calls.delete(m.seq);
          if (m.ok) pending.resolve(m.value);
          else pending.reject(fromWireError(m.error));
          return;
        }
        case 'snapshotResult': {
          const pending = this.#snapshots.get(m.seq);
          if (pending === undefined) return;
          this.#snapshots.delete(m.seq);
          // The records of every call before the capture were drained above: the worker flushed them, and
          // posted any copies and rule names, before this message.
          if (m.ok) pending.resolve({ state: m.state, seq: m.next });
          else pending.reject(fromWireError(m.error));
          return;
        }
        case 'ready':
          return;
      }
    }

    // Take the blocks waiting in the worker's shared slots (copied here; the slots go back to the worker).
    #drain(): void {
      const ring = this.#ring;
      if (ring === undefined) return;
      for (const block of drainSlots(ring)) this.#records.push(block);
    }

    /** The container's syscall table (made when first needed: most containers never decode a record). */
    get syscalls(): SyscallTable {
      return (this.#syscalls ??= new SyscallTable(KNOWN_SYSCALLS));
    }

    #ended = false;

    #end(deferKill = false): ContainerStats {
      const stats = this.stats();
      if (this.#ended) return stats;
      this.#ended = true;
      this.#final = stats;
      this.#stopBridge();
      this.#policyPort.close();
      containers.delete(this);
      // A failed container's worker is stopped now; a finished one (its runner returned) after the result
      // is delivered. The replacement worker is spawned after the result either way: both cost main-thread
      // time that must not delay the caller.
      if (!deferKill) void this.#worker.terminate().catch(() => undefined);
      setImmediate(() => {
        if (deferKill) void this.#worker.terminate().catch(() => undefined);
        refill();
      });
      return stats;
    }

    #finish(value: unknown): void {
      if (this.#settled) return;
      this.#records.flush();
      this.#settled = true;
      this.#phase = 'done';
      terminateControl(this.control);
      const stats = this.#end(true);
      for (const p of [...this.#calls.values(), ...this.#snapshots.values()]) p.reject(new ForgeError('CONTAINER_TERMINATED', 'the container ended'));
      this.#calls.clear();
      this.#snapshots.clear();
      this.#rejectServing(new ForgeError('CONTAINER_TERMINATED', 'the container ended without serving'));
      this.#resolve({ value, stdout: concat(this.#stdout), stderr: concat(this.#stderr), stats });
    }

    /**
     * End the container with an error (idempotent): stop the worker, reject the result and pending calls.
     * @param error - the failure
     * @param graceMs - let the worker unwind this long before stopping it
     */
    fail(error: ForgeError, graceMs = 0): void {
      if (this.#settled) return;
      this.#settled = true;
      this.#phase = 'failed';
      terminateControl(this.control);
      const kill = (): void => {
        this.#end();
      };
      if (graceMs > 0) {
        containers.delete(this);
        const t = setTimeout(kill, graceMs);
        t.unref();
        void this.#exited.then(() => clearTimeout(t));
        void this.#exited.then(kill);
        this.#final = this.stats();
      } else kill();
      // Reject once the worker is gone, so every block of records it posted before it stopped is delivered
      // first (messages already queued are dispatched before 'exit').
      const settle = (): void => {
        // The calls the worker recorded but had not handed over when it was stopped (CPU, terminate, crash).
        // Blocks handed over first (in order), then the calls after them.
        this.#drain();
        this.#records.flush();
        const ring = this.#ring;
        this.#ring = undefined;
        const salvaged = ring === undefined ? null : salvageBlock(ring, this.#records.ruleNames);
        if (salvaged !== null) this.#records.push({ count: salvaged.count, fields: salvaged.fields, rules: salvaged.rules, arena: salvaged.arena });
        for (const p of [...this.#calls.values(), ...this.#snapshots.values()]) p.reject(error);
        this.#calls.clear();
        this.#snapshots.clear();
        this.#rejectServing(error);
        this.#reject(error);
      };
      const backstop = setTimeout(settle, 2_000);
      backstop.unref();
      void this.#exited.then(() => {
        clearTimeout(backstop);
        settle();
      });
    }

    /** Watchdog check: CPU budgets and the wall-clock limit. */
    check(): void {
      if (this.#settled) return;
      // Records waiting in the worker's shared slots reach the kernel within a tick even when the worker
      // does not ask (it asks only once several blocks wait).
      this.#drain();
      const now = sinceBase(this.#timeBase);
      const since = Atomics.load(this.meter, METER_GUEST_SINCE);
      const run = since >= 0 ? Math.max(0, now - since) : 0;
      const total = Atomics.load(this.meter, METER_GUEST_TOTAL) + run;
      const limits = this.#limits;
      if (run > limits.cpuPerCallMs) {
        this.fail(
          new ForgeError('SANDBOX_CPU_EXCEEDED', `the guest ran ${Math.round(run)} ms without a host call; the per-call budget is ${limits.cpuPerCallMs} ms`, {
            details: { budget: 'per-call', limitMs: limits.cpuPerCallMs, usedMs: Math.round(run) },
          }),
        );
      } else if (total > limits.cpuTotalMs) {
        this.fail(
          new ForgeError('SANDBOX_CPU_EXCEEDED', `the guest ran ${Math.round(total)} ms in total; the container budget is ${limits.cpuTotalMs} ms`, {
            details: { budget: 'total', limitMs: limits.cpuTotalMs, usedMs: Math.round(total) },
          }),
        );
      } else if (limits.timeoutMs !== undefined && now > limits.timeoutMs) {
        this.fail(new ForgeError('SANDBOX_TIMEOUT', `the container did not finish within ${limits.timeoutMs} ms`, { details: { limitMs: limits.timeoutMs } }));
      }
    }

    call(name: string, input?: unknown): Promise<unknown> {
      if (this.#settled) return Promise.reject(new ForgeError('CONTAINER_TERMINATED', 'the container has ended'));
      if (typeof name !== 'string') return Promise.reject(new ForgeError('INVALID_ARGUMENT', 'the export name must be a string'));
      const seq = ++this.#callSeq;
      return new Promise<unknown>((resolve, reject) => {
        this.#calls.set(seq, { resolve, reject });
        try {
          this.#worker.postMessage({ type: 'call', seq, name, input } satisfies ToWorker);
        } catch (e) {
          this.#calls.delete(seq);
          reject(new ForgeError('INVALID_ARGUMENT', `the call input cannot be sent: ${e instanceof Error ? e.message : String(e)}`));
        }
      });
    }

    snapshot(timeoutMs = 30_000): Promise<ContainerSnapshot> {
      if (this.#settled) return Promise.reject(new ForgeError('CONTAINER_TERMINATED', 'the container has ended'));
      // A held container may be stopped in the middle of a call (no snapshot can be taken there) and waits for
      // release or termination: refuse now rather than wait on it.
      if (Atomics.load(this.control, CONTROL_STATE) !== ContainerState.Running) {
        return Promise.reject(new ForgeError('CONTAINER_QUARANTINED', 'the container is held in the red zone: a snapshot is taken between calls of a running container; release it first'));
      }
      const seq = ++this.#callSeq;
      return new Promise<ContainerSnapshot>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (this.#snapshots.delete(seq)) reject(new ForgeError('SANDBOX_TIMEOUT', `the container did not reach a point between calls within ${timeoutMs} ms`, { details: { timeoutMs } }));
        }, timeoutMs);
        timer.unref();
        const done = <T>(f: (v: T) => void) => (v: T): void => {
          clearTimeout(timer);
          f(v);
        };
        this.#snapshots.set(seq, { resolve: done(resolve), reject: done(reject) });
        this.#worker.postMessage({ type: 'snapshot', seq } satisfies ToWorker);
      });
    }

    quarantine(): void {
      if (!this.#settled) quarantineControl(this.control);
    }

    release(): void {
      if (!this.#settled) releaseControl(this.control);
    }

    async terminate(reason = 'terminated by the kernel'): Promise<void> {
      this.fail(new ForgeError('CONTAINER_TERMINATED', `the container was terminated: ${reason}`, { details: { reason } }), grace);
      await this.#exited;
    }

    close(): Promise<RunResult> {
      if (!this.#settled) this.#worker.postMessage({ type: 'close' } satisfies ToWorker);
      return this.result;
    }

    updatePolicy(update: PolicyUpdate): void {
      if (this.#settled) return;
      if (typeof update !== 'object' || update === null) throw new ForgeError('INVALID_ARGUMENT', 'a policy update must be an object');
      const epoch = (Atomics.load(this.control, CONTROL_POLICY_EPOCH) + 1) | 0;
      const message: PolicyMessage = { epoch, update };
      try {
        this.#policyPort.postMessage(message);
      } catch (e) {
        throw new ForgeError('INVALID_ARGUMENT', `the policy update cannot be sent: ${e instanceof Error ? e.message : String(e)}`);
      }
      // Posted first, then the epoch: the worker's next decision sees the bump and finds the message.
      Atomics.store(this.control, CONTROL_POLICY_EPOCH, epoch);
    }

    stats(): ContainerStats {
      if (this.#final !== undefined) return this.#final;
      const now = sinceBase(this.#timeBase);
      const since = Atomics.load(this.meter, METER_GUEST_SINCE);
      const run = since >= 0 ? Math.max(0, now - since) : 0;
      const state = Atomics.load(this.control, CONTROL_STATE);
      return {
        id: this.id,
        phase: this.#phase,
        state: state === ContainerState.Quarantined ? 'quarantined' : state === ContainerState.Terminated ? 'terminated' : 'running',
        calls: Atomics.load(this.control, CONTROL_CALLS),
        inCall: Atomics.load(this.control, CONTROL_IN_CALL),
        guestMs: Atomics.load(this.meter, METER_GUEST_TOTAL) + run,
        currentRunMs: run,
        wallMs: now,
        outputBytes: Atomics.load(this.meter, METER_OUTPUT_BYTES),
        memoryPages: Atomics.load(this.meter, METER_MEMORY_PAGES),
      };
    }
  }

  const refuse = (code: ErrorCode, message: string): never => {
    throw new ForgeError(code, message);
  };

  refill();

  return {
    start<D>(spec: SandboxSpec<D>): SandboxedContainer {
      if (closed) refuse('INVALID_ARGUMENT', 'the sandbox pool is closed');
      if (typeof spec !== 'object' || spec === null || typeof spec.runner !== 'string' || spec.runner.length === 0) {
        refuse('INVALID_ARGUMENT', 'a sandbox spec needs a runner (module specifier or builtin name)');
      }
      if (spec.recordBlockSize !== undefined && (!Number.isInteger(spec.recordBlockSize) || spec.recordBlockSize < 1 || spec.recordBlockSize > 65_536)) {
        refuse('INVALID_ARGUMENT', 'recordBlockSize must be an integer from 1 to 65536');
      }
      if (spec.snapshot !== undefined) {
        const snap = spec.snapshot as Partial<SandboxSpec['snapshot'] & object>;
        if (typeof snap !== 'object' || snap === null || !Array.isArray(snap.instances) || typeof snap.moduleHash !== 'string') refuse('INVALID_ARGUMENT', 'spec.snapshot must be a snapshot state (readSnapshot)');
        const seq = snap.trace?.seq;
        if (seq !== undefined && (!Number.isSafeInteger(seq) || seq < 0)) refuse('INVALID_ARGUMENT', 'spec.snapshot.trace.seq must be a non-negative integer');
      }
      if (containers.size >= maxContainers) {
        throw new ForgeError('SANDBOX_LIMIT_EXCEEDED', `the sandbox pool runs ${containers.size} containers, its limit`, { details: { maxContainers } });
      }
      const limits = resolveLimits(baseLimits, spec.limits);
      const w = warm.shift() ?? spawn(false);
      w.assigned = true;
      (w as { detach?: () => void }).detach?.();
      let c: ContainerImpl;
      try {
        c = new ContainerImpl(spec as SandboxSpec, w.worker, limits);
      } catch (e) {
        void w.worker.terminate();
        refill();
        throw e;
      }
      containers.add(c);
      ensureWatchdog();
      // Spawning the replacement costs ~1 ms of main-thread time: not on the caller's path.
      setImmediate(refill);
      return c;
    },
    get active(): number {
      return containers.size;
    },
    get warm(): number {
      return warm.filter((w) => w.ready).length;
    },
    async ready(): Promise<void> {
      // Warm workers are unreferenced (an idle pool must not keep the process alive), but a caller waiting
      // for them must: reference them while waiting.
      const waiting = warm.slice();
      for (const w of waiting) w.worker.ref();
      try {
        await Promise.all(waiting.map((w) => w.whenReady));
      } finally {
        for (const w of waiting) if (!w.assigned) w.worker.unref();
      }
    },
    async close(): Promise<void> {
      closed = true;
      const all = [...containers];
      for (const c of all) c.fail(new ForgeError('CONTAINER_TERMINATED', 'the sandbox pool was closed'));
      const workers = warm.splice(0).map((w) => w.worker.terminate());
      await Promise.allSettled(workers);
      if (watchdog !== undefined) clearInterval(watchdog);
      watchdog = undefined;
    },
  };
}
