import { readFile } from 'node:fs/promises';
import { createKernel } from './kernel.js';
import type { ContainerHandle, Kernel, KernelOptions, LaunchRequest, SecureSyscallResult, SyscallArgs } from './types.js';

let current: Kernel | undefined;

/**
 * The prelude's short path, step 1: boot a process-wide kernel (once; later calls return it).
 * @param options - as for {@link createKernel}
 * @returns the kernel
 */
export async function init(options: KernelOptions): Promise<Kernel> {
  current ??= await createKernel(options);
  return current;
}

function kernel(): Kernel {
  if (current === undefined) throw new Error('call init() first');
  return current;
}

/**
 * The prelude's short path, step 2: launch a signed plugin on the kernel from {@link init}.
 * @param pkg - the `.forgepkg` bytes, or its path
 * @param request - the rest of the launch request
 * @returns the container handle
 */
export async function launchContainer(pkg: Uint8Array | string, request: Omit<LaunchRequest, 'package'> = {}): Promise<ContainerHandle> {
  const bytes = typeof pkg === 'string' ? new Uint8Array(await readFile(pkg)) : pkg;
  return kernel().launch({ ...request, package: bytes });
}

/**
 * The prelude's short path, step 3: a call of the embedding application through the gate (decided by the
 * kernel policy, recorded in the subject's session trace); `perform` runs only when allowed.
 * @param subject - who calls
 * @param syscall - the syscall name
 * @param args - canonical arguments
 * @param perform - the operation
 * @returns the verdict and the value
 */
export async function secureSyscall<T>(subject: string, syscall: string, args: SyscallArgs = {}, perform?: () => T): Promise<SecureSyscallResult<T>> {
  return kernel().secureSyscall(subject, syscall, args, perform);
}

/** Shut the prelude's kernel down (a later {@link init} boots a new one). */
export async function shutdown(): Promise<void> {
  const k = current;
  current = undefined;
  await k?.shutdown();
}
