// CRC-32 (IEEE 802.3, the polynomial of zlib, gzip and PNG). node:zlib has a native crc32 since Node 20.15
// (so in every Node this package supports); the table-driven version is the fallback for runtimes whose
// node:zlib lacks it, and the reference the tests compare the native one against.
import * as zlib from 'node:zlib';

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** Table-driven CRC-32 of `data` (unsigned 32-bit). */
export function crc32Table(data: Uint8Array): number {
  const t = (table ??= makeTable());
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data` (unsigned 32-bit): native when node:zlib has it, table-driven otherwise. */
export const crc32: (data: Uint8Array) => number =
  typeof native === 'function' ? (data) => native(data) >>> 0 : crc32Table;
