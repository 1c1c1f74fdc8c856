/**
 * `@forgeone/kernel`: the composition root. `createKernel(options)` wires every ForgeOne subsystem from
 * defaults; each can be replaced by another implementation of its interface.
 *
 * @packageDocumentation
 */
export { createKernel, DEFAULT_KERNEL_POLICY, QUARANTINE_AFTER_DENIALS } from './kernel.js';
export { init, launchContainer, secureSyscall, shutdown } from './prelude.js';
export type { ContainerHandle, ContainerReport, Kernel, KernelAnomalyDetector, KernelBootOptions, KernelEvent, KernelOptions, KernelSnapshot, LaunchRequest, SecureSyscallResult, SyscallArgs } from './types.js';
