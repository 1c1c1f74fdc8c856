/**
 * ForgeOne core: measured boot, container lifecycle, scheduler.
 * @packageDocumentation
 */
export * from './boot/index.js';
export * from './lifecycle/index.js';
export * from './scheduler/index.js';
