// The one build preset: switching the bundler touches only this file.
import { defineConfig } from 'tsup';

/**
 * Build a package's entry points into ESM with declaration files.
 * @param {Record<string, string>} entry map of output name to source file
 * @param {Partial<import('tsup').Options>} [overrides]
 */
export function preset(entry, overrides = {}) {
  return defineConfig({
    entry,
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: false,
    treeshake: true,
    outDir: 'dist',
    ...overrides,
  });
}
