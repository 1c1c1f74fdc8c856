import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ForgeError } from '@forgeone/common';
import type { MeasurementInput } from './measure.js';

/** Options of {@link kernelInputs}. */
export interface KernelInputsOptions {
  /** Most files listed under one package's `dist`; past it the listing fails and `dist` is poisoned. Default 10 000. */
  readonly maxFiles?: number;
}

async function listFiles(root: string, maxFiles: number): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > 64) throw new Error(`${rel}: nested too deep`);
    for (const n of (await readdir(abs)).sort()) {
      const childAbs = join(abs, n);
      const childRel = rel === '' ? n : `${rel}/${n}`;
      const st = await lstat(childAbs);
      if (st.isDirectory()) {
        await walk(childAbs, childRel, depth + 1);
      } else {
        // Files, symbolic links (measured as their target text, never followed) and anything else (which
        // then fails to measure and is poisoned, so it is named rather than hidden).
        if (out.length >= maxFiles) throw new Error(`more than ${maxFiles} files`);
        out.push(childRel);
      }
    }
  };
  await walk(root, '', 0);
  return out.sort();
}

/**
 * The kernel's self-measurement inputs: for each ForgeOne package, its `package.json` and every file under its
 * `dist` directory, one input each, named `kernel:<package>/<relative path>` (e.g.
 * `kernel:@forgeone/core/dist/index.js`), so an appraisal names the exact file that changed; a removed file is
 * reported missing, an added one unexpected. Nothing is followed out of `dist`: a symbolic link is measured as
 * its target text. When `dist` cannot be listed, one input `kernel:<package>/dist` stands for it and is
 * poisoned when measured. The caller resolves the directories (e.g. with `createRequire` in the kernel).
 * @param packageDirs - package name → package root directory (the one holding `package.json`)
 * @param options - listing limit
 * @returns the inputs, packages in name order, files in path order
 * @throws ForgeError `INVALID_ARGUMENT` when `packageDirs` is not a name → directory record
 * @example
 * ```ts
 * const inputs = await kernelInputs({ '@forgeone/core': '/opt/forgeone/node_modules/@forgeone/core' });
 * ```
 */
export async function kernelInputs(packageDirs: Readonly<Record<string, string>>, options: KernelInputsOptions = {}): Promise<MeasurementInput[]> {
  if (typeof packageDirs !== 'object' || packageDirs === null || Array.isArray(packageDirs)) {
    throw new ForgeError('INVALID_ARGUMENT', 'packageDirs must map package names to directories', { details: { field: 'packageDirs' } });
  }
  const maxFiles = options.maxFiles ?? 10_000;
  const out: MeasurementInput[] = [];
  for (const name of Object.keys(packageDirs).sort()) {
    const dir = packageDirs[name];
    if (typeof dir !== 'string' || dir === '') {
      throw new ForgeError('INVALID_ARGUMENT', `packageDirs.${name}: must be a directory path`, { details: { field: `packageDirs.${name}` } });
    }
    out.push({ name: `kernel:${name}/package.json`, kind: 'kernel', source: { path: join(dir, 'package.json'), noFollow: true } });
    const dist = join(dir, 'dist');
    let files: string[];
    try {
      files = await listFiles(dist, maxFiles);
    } catch {
      out.push({ name: `kernel:${name}/dist`, kind: 'kernel', source: { path: dist } });
      continue;
    }
    for (const f of files) out.push({ name: `kernel:${name}/dist/${f}`, kind: 'kernel', source: { path: join(dist, f), noFollow: true } });
  }
  return out;
}
