import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ForgeError } from '@forgeone/common';
import { PACKAGE_NAME } from '@forgeone/crypto';
import { PluginErrorCodes } from './errors.js';
import { pluginTemplate } from './templates.js';

/** Options for {@link createPluginProject}. */
export interface CreatePluginOptions {
  /** The plugin's package name: lowercase npm-style, optionally `@scope/name`. */
  readonly name: string;
  /** The directory to create (absolute). It must not exist. */
  readonly dir: string;
  /** The directory as the user typed it, for messages. */
  readonly shown: string;
}

/**
 * Create a plugin project from the template. The directory itself is created with a non-recursive `mkdir`, so
 * an existing directory (or file, or link) at that path is never written into, even when it appears at the
 * same moment; a failure halfway removes what was created.
 * @param options - name and directory
 * @returns the files written, relative to the directory, sorted
 * @throws ForgeError `INVALID_ARGUMENT` (bad name), `ALREADY_EXISTS` (something is at the path), `NOT_FOUND`, `IO_ERROR`
 */
export async function createPluginProject(options: CreatePluginOptions): Promise<string[]> {
  const { name, dir, shown } = options;
  if (name.length > 214 || !PACKAGE_NAME.test(name)) {
    throw new ForgeError('INVALID_ARGUMENT', `${JSON.stringify(name)} is not a valid plugin name: lowercase npm-style, optionally @scope/name`);
  }
  await mkdir(dirname(dir), { recursive: true }).catch((e: unknown) => {
    throw new ForgeError('IO_ERROR', `cannot create the parent directory of ${shown}: ${(e as Error).message}`, { cause: e });
  });
  try {
    await mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ForgeError(PluginErrorCodes.exists, `${shown} already exists; refusing to overwrite it`, { details: { path: shown } });
    throw new ForgeError('IO_ERROR', `cannot create ${shown}: ${(e as Error).message}`, { cause: e });
  }
  const { files } = pluginTemplate(name);
  try {
    for (const [rel, text] of files) {
      const path = join(dir, ...rel.split('/'));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, text, { flag: 'wx' });
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new ForgeError('IO_ERROR', `cannot write the plugin project ${shown}: ${(e as Error).message}`, { cause: e });
  }
  return [...files.keys()].sort();
}
