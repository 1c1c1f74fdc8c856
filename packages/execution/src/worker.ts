/**
 * The worker script each sandboxed container runs in (`@forgeone/execution/worker`). It preloads runner
 * modules, then runs one container; built-in runners are available by name: `builtin:core` (raw core
 * modules with a few gated `env` imports), `builtin:wasi-p1` (WASI preview1 command modules),
 * `builtin:component` (components) and `builtin:component-snapshot` (serving components that can be
 * snapshotted).
 *
 * @packageDocumentation
 */
import { startSandboxWorker } from './sandbox/worker-host.js';
import { coreRunner } from './sandbox/runners/core.js';
import { wasiP1Runner } from './sandbox/runners/wasi-p1.js';
import { componentRunner } from './component/runner.js';
import { componentSnapshotRunner } from './sandbox/runners/component-snapshot.js';

startSandboxWorker({ 'builtin:core': coreRunner, 'builtin:wasi-p1': wasiP1Runner, 'builtin:component': componentRunner, 'builtin:component-snapshot': componentSnapshotRunner });
