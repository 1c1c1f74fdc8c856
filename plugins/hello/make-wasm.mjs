#!/usr/bin/env node
// Writes hello.wasm: the smallest useful WebAssembly core module, exporting add(i32, i32) -> i32.
// The bytes are spelled out by hand (no toolchain needed) and checked with WebAssembly.validate.
//
//   node plugins/hello/make-wasm.mjs            writes plugins/hello/hello.wasm
//   node plugins/hello/make-wasm.mjs out.wasm   writes out.wasm instead
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const I32 = 0x7f;

/** A section: id, then its contents prefixed by their length (all lengths here are < 128, one LEB128 byte). */
function section(id, bytes) {
  if (bytes.length > 127) throw new Error('section too long for a one-byte length');
  return [id, bytes.length, ...bytes];
}

const name = [...Buffer.from('add', 'utf8')];
const body = [
  0x00, // no local declarations
  0x20, 0x00, // local.get 0
  0x20, 0x01, // local.get 1
  0x6a, // i32.add
  0x0b, // end
];

const bytes = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, // magic "\0asm"
  0x01, 0x00, 0x00, 0x00, // version 1
  ...section(1, [0x01, 0x60, 0x02, I32, I32, 0x01, I32]), // type section: one type, (i32, i32) -> i32
  ...section(3, [0x01, 0x00]), // function section: one function of type 0
  ...section(7, [0x01, name.length, ...name, 0x00, 0x00]), // export section: "add" = function 0
  ...section(10, [0x01, body.length, ...body]), // code section: one body
]);

if (!WebAssembly.validate(bytes)) throw new Error('generated module does not validate');

const out = process.argv[2] ?? fileURLToPath(new URL('./hello.wasm', import.meta.url));
writeFileSync(out, bytes);
console.log(`wrote ${out} (${bytes.length} bytes)`);
