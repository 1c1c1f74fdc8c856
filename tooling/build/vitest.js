// The one test preset shared by every package.
import { defineConfig } from 'vitest/config';

/** @param {import('vitest/config').UserConfig['test']} [overrides] */
export function vitestPreset(overrides = {}) {
  return defineConfig({
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      // Generous: CI machines have 2 cores and turbo runs several suites at once (property tests, worker
      // sandboxes and componentizing compete); a hang still fails, a loaded machine does not.
      testTimeout: 300_000,
      hookTimeout: 600_000,
      reporters: process.env.CI ? ['default'] : ['default'],
      ...overrides,
    },
  });
}
