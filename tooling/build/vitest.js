// The one test preset shared by every package.
import { defineConfig } from 'vitest/config';

/** @param {import('vitest/config').UserConfig['test']} [overrides] */
export function vitestPreset(overrides = {}) {
  return defineConfig({
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      testTimeout: 60_000,
      hookTimeout: 60_000,
      reporters: process.env.CI ? ['default'] : ['default'],
      ...overrides,
    },
  });
}
