/**
 * Container lifecycle: states, the transition table, durable records and restart recovery.
 *
 * @packageDocumentation
 */
export {
  CONTAINER_STATUSES,
  CONTAINER_TRANSITIONS,
  RESTART_POLICIES,
  TERMINAL_STATUSES,
  canTransition,
  isContainerStatus,
  isTerminalStatus,
  restartAllowed,
} from './status.js';
export type { ContainerStatus, RestartPolicy } from './status.js';
export { DEFAULT_MAX_HISTORY, transition, restartRecord, accountUsage, freezeRecord, encodeRecord, decodeRecord, wasActive } from './record.js';
export type {
  ContainerRecord,
  ContainerResources,
  ContainerIdentity,
  PolicyRef,
  ResourceUsage,
  StatusReason,
  TransitionEntry,
  TransitionOptions,
} from './record.js';
export type {
  ContainerRegistry,
  ContainerRegistryOptions,
  ContainerFilter,
  CorruptRecord,
  LaunchInput,
  LaunchPackage,
  RecoveryReport,
  StopOptions,
} from './ContainerRegistry.js';
export { createContainerRegistry } from './registry.js';
