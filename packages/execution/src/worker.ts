/**
 * The worker script each sandboxed container runs in (`@forgeone/execution/worker`). It preloads runner
 * modules, then runs one container; built-in runners are available by name.
 *
 * @packageDocumentation
 */
import { startSandboxWorker } from './sandbox/worker-host.js';
import { coreRunner } from './sandbox/runners/core.js';

startSandboxWorker({ 'builtin:core': coreRunner });
