import { ForgeError } from '@forgeone/common';

/** What kind of WebAssembly binary a guest is. */
export type WasmKind = 'core' | 'component';

/**
 * Tell a core module (`\0asm` version 1) from a component (`\0asm` version 0x0d, layer 1) by the header.
 * @param bytes - the guest's bytes
 * @returns `core` or `component`
 * @throws ForgeError `WASM_INVALID` when the bytes are not a WebAssembly binary of a known version
 */
export function detectWasmKind(bytes: Uint8Array): WasmKind {
  if (!(bytes instanceof Uint8Array)) throw new ForgeError('INVALID_ARGUMENT', 'the guest must be given as bytes (Uint8Array)');
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new ForgeError('WASM_INVALID', 'not a WebAssembly binary (no \\0asm header)', { details: { length: bytes.length } });
  }
  const version = bytes[4]! | (bytes[5]! << 8);
  const layer = bytes[6]! | (bytes[7]! << 8);
  if (version === 1 && layer === 0) return 'core';
  if (layer === 1) return 'component';
  throw new ForgeError('WASM_INVALID', `unknown WebAssembly binary version ${version} (layer ${layer})`, { details: { version, layer } });
}
