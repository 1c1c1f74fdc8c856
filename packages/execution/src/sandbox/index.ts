export { createSandboxPool } from './pool.js';
export { createOutputSink, createOutputBudget } from './output.js';
export type { OutputSink, OutputBudget } from './output.js';
export { DEFAULT_LIMITS } from './types.js';
export type {
  BridgeHandler,
  ContainerSnapshot,
  ContainerStats,
  PolicyUpdate,
  ResolvedLimits,
  RunResult,
  Runner,
  RunnerEnv,
  RunnerInstance,
  RunnerModule,
  SandboxLimits,
  SandboxPolicy,
  SandboxPool,
  SandboxPoolOptions,
  SandboxSpec,
  SandboxedContainer,
  SyncBridge,
} from './types.js';
export {
  METER_GUEST_RUNS,
  METER_GUEST_SINCE,
  METER_GUEST_TOTAL,
  METER_MEMORY_PAGES,
  METER_OUTPUT_BYTES,
  METER_SLOTS,
  createMeter,
  toWireError,
  fromWireError,
} from './protocol.js';
export type { WireError } from './protocol.js';
export { GuestClock } from './clock.js';
export { LivePolicy, MeteredGate } from './live-policy.js';
export type { PolicyMessage } from './live-policy.js';
export { CORE_NOT_FOUND, CORE_REFUSED } from './runners/core.js';
export type { CoreRunnerData } from './runners/core.js';
export { STDIN_BRIDGE_METHOD } from './runners/wasi-p1.js';
export type { WasiP1RunnerData, WasiP1Result } from './runners/wasi-p1.js';
export { COMPONENT_SNAPSHOT_RUNNER, componentSnapshotRunner, runComponentSnapshot } from './runners/component-snapshot.js';
export type { ComponentSnapshotRunnerData } from './runners/component-snapshot.js';
