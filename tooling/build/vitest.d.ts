import type { UserConfig } from 'vitest/config';
/** The shared vitest configuration. */
export declare function vitestPreset(overrides?: UserConfig['test']): UserConfig;
