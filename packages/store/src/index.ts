/**
 * `@forgeone/store`: the storage layer of the kernel — append-only logs (execution traces, the audit log)
 * and key-value namespaces (container state, per-container data) behind one {@link Store} interface.
 *
 * - {@link createFileStore}: the embedded default, durable, files only (no server, no native module).
 * - {@link createMemoryStore}: the same contract in memory, for tests.
 * - `@forgeone/store/testing`: the contract suite every implementation must pass.
 *
 * @packageDocumentation
 */
export type { AppendBatchResult, AppendLog, AppendResult, KvMap, LogEntry, LogRecordInput, Store, StoreLimits } from './Store.js';
export { createMemoryStore } from './memory.js';
export type { MemoryStoreOptions } from './memory.js';
export { createFileStore } from './file.js';
export type { FileStoreOptions, RecoveryEvent } from './file.js';
export { isValidStoreName } from './validate.js';
