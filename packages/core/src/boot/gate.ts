import { ForgeError } from '@forgeone/common';
import type { BootMode, BootResult } from './Boot.js';

/** What the kernel is asked to do, as the boot gate sees it. */
export type BootAction =
  /** Launch or resume a workload (a container, a plugin call). */
  | 'workload'
  /** Read-only diagnostics: status, self-tests, the boot result, audit and trace reads. */
  | 'diagnostics'
  /** Recovery actions: install new golden values, a trust root update, reinstall packages, reboot. */
  | 'recovery';

/** The actions each mode allows. */
export const BOOT_MODE_ACTIONS: Readonly<Record<BootMode, readonly BootAction[]>> = Object.freeze({
  normal: Object.freeze(['workload', 'diagnostics', 'recovery'] as const),
  degraded: Object.freeze(['workload', 'diagnostics', 'recovery'] as const),
  recovery: Object.freeze(['diagnostics', 'recovery'] as const),
});

/**
 * Whether a boot result allows an action.
 * @param result - the boot result (only its mode is read)
 * @param action - the action
 * @returns true when the mode allows it
 */
export function isActionAllowed(result: Pick<BootResult, 'mode'>, action: BootAction): boolean {
  const allowed = BOOT_MODE_ACTIONS[result.mode] as readonly BootAction[] | undefined;
  return allowed !== undefined && allowed.includes(action);
}

/**
 * Refuse an action the boot mode does not allow.
 * @param result - the boot result (mode, verdict and differing inputs are read)
 * @param action - the action
 * @throws ForgeError `BOOT_RECOVERY_MODE` when the kernel is in recovery mode and the action is a workload
 *   (details: verdict, differing input names)
 */
export function assertActionAllowed(result: Pick<BootResult, 'mode' | 'verdict' | 'differing'>, action: BootAction): void {
  if (isActionAllowed(result, action)) return;
  const names = result.differing.map((d) => d.name);
  throw new ForgeError('BOOT_RECOVERY_MODE', `the kernel is in ${result.mode} mode (boot ${result.verdict}${names.length > 0 ? `: ${names.join(', ')}` : ''}); ${action} actions are refused, only diagnostics and recovery are open`, {
    details: { mode: result.mode, verdict: result.verdict, differing: names, action },
  });
}

/**
 * Refuse workload launches in recovery mode; the kernel calls it before every launch.
 * @param result - the boot result
 * @throws ForgeError `BOOT_RECOVERY_MODE` when the mode is `recovery`
 * @example
 * ```ts
 * assertWorkloadsAllowed(await boot.boot());
 * ```
 */
export function assertWorkloadsAllowed(result: Pick<BootResult, 'mode' | 'verdict' | 'differing'>): void {
  assertActionAllowed(result, 'workload');
}
