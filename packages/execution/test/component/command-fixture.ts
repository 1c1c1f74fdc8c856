// The hand-written WASI command component of fixtures/command.wat, assembled with jco's wasm-tools.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { watComponent } from './helpers.js';

/** Path of the command component's text. */
export const COMMAND_WAT = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures', 'command.wat');

/** The command component's bytes (exports wasi:cli/run@0.2.0). */
export async function commandComponent(): Promise<Uint8Array> {
  return watComponent(await readFile(COMMAND_WAT, 'utf8'));
}
