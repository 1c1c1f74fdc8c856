// The on-disk frame format shared by log and key-value files, and the scan that recovers a file on open.
//
// A file is a sequence of frames; the first one is a header (JSON naming the format, kind, version and
// logical name). A frame is
//
//   [u32 length][u32 ~length][u32 CRC-32 of payload][payload]      (little-endian)
//
// The length is stored twice (plain and complemented) so that a damaged length field is recognised as
// damage: with a single length, a flipped bit in the middle of a file would make the frame seem to run past
// the end of the file, which is exactly what a torn tail looks like, and recovery would silently cut off
// every record after it. An all-zero header (a file system that extended the file but never wrote the
// data) fails the check too.
import type { FileHandle } from 'node:fs/promises';
import { ForgeError } from '@forgeone/common';
import { crc32 } from './crc32.js';

/** Bytes before each payload. */
export const FRAME_HEADER_BYTES = 12;
/** The read window of the scan. */
const CHUNK = 1024 * 1024;

export function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** Write one frame into `out` at `offset`; returns the offset after it. */
export function putFrame(out: Uint8Array, offset: number, payload: Uint8Array): number {
  const len = payload.length;
  putU32(out, offset, len);
  putU32(out, offset + 4, ~len >>> 0);
  putU32(out, offset + 8, crc32(payload));
  out.set(payload, offset + FRAME_HEADER_BYTES);
  return offset + FRAME_HEADER_BYTES + len;
}

/** Frame many payloads into one buffer (one `write`). */
export function encodeFrames(payloads: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of payloads) total += FRAME_HEADER_BYTES + p.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of payloads) o = putFrame(out, o, p);
  return out;
}

/** The contents of a file's first frame. */
export interface FileHeader {
  readonly format: 'forgeone-store';
  readonly kind: 'log' | 'kv';
  readonly version: 1;
  readonly name: string;
}

export function encodeHeader(header: FileHeader): Uint8Array {
  return encodeFrames([new TextEncoder().encode(JSON.stringify(header))]);
}

export function corrupt(file: string, offset: number, reason: string): ForgeError {
  return new ForgeError('STATE_CORRUPT', `${file} is corrupt at offset ${offset}: ${reason}`, { details: { file, offset, reason } });
}

export function ioError(action: string, file: string, cause: unknown): ForgeError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ForgeError('IO_ERROR', `${action} ${file} failed: ${why}`, { cause, details: { file } });
}

/** Read exactly `length` bytes at `position`, or fail when the file is shorter. */
export async function readExact(fh: FileHandle, file: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(out, got, length - got, position + got);
    if (bytesRead === 0) throw corrupt(file, position + got, 'file ends early');
    got += bytesRead;
  }
  return out;
}

/** Write all of `data` at `position` (a `write` may write less than asked). */
export async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

/** Sequential reads through a window, so a scan costs one `read` per MiB rather than two per frame. */
class WindowReader {
  #buf: Uint8Array = new Uint8Array(0);
  #start = 0;
  readonly #fh: FileHandle;
  readonly #file: string;
  readonly #size: number;

  constructor(fh: FileHandle, file: string, size: number) {
    this.#fh = fh;
    this.#file = file;
    this.#size = size;
  }

  /** `n` bytes at `pos` (the caller has checked they exist); the view is valid until the next call. */
  async get(pos: number, n: number): Promise<Uint8Array> {
    if (pos >= this.#start && pos + n <= this.#start + this.#buf.length) {
      return this.#buf.subarray(pos - this.#start, pos - this.#start + n);
    }
    const want = Math.max(n, Math.min(CHUNK, this.#size - pos));
    this.#buf = await readExact(this.#fh, this.#file, pos, want);
    this.#start = pos;
    return this.#buf.subarray(0, n);
  }
}

/** Why a scan stopped before the end of the file, when what it found is a torn tail (not corruption). */
export interface TornTail {
  /** Where the torn frame starts; the file is cut here. */
  readonly offset: number;
  /** What was wrong with it. */
  readonly reason: string;
}

/** The outcome of {@link scanFile}. */
export interface ScanResult {
  /** The header of the file. */
  readonly header: FileHeader;
  /** The end of the last good frame. */
  readonly end: number;
  /** Set when a torn tail follows `end`. */
  readonly torn?: TornTail;
}

/**
 * Walk every frame of a file, checking each, and decide what a bad frame means:
 * - fewer bytes left than a frame header, a frame whose (checked) length runs past the end of the file, a
 *   checksum mismatch in the very last frame, or nothing but zero bytes from the bad frame on: a **torn
 *   tail** — the one write that was in progress when the process or machine died. Reported, not thrown.
 * - a damaged length field, or a checksum mismatch with more data after the frame: **corruption**
 *   (`STATE_CORRUPT` with the file and offset).
 * @param onFrame - called with each good frame after the header; `payload` is valid only during the call
 */
export async function scanFile(
  fh: FileHandle,
  file: string,
  size: number,
  expected: { kind: FileHeader['kind']; name: string },
  onFrame: (offset: number, payload: Uint8Array) => void,
): Promise<ScanResult> {
  const reader = new WindowReader(fh, file, size);
  // The header: files are created complete (written, synced, then renamed into place), so a bad one is damage.
  if (size < FRAME_HEADER_BYTES) throw corrupt(file, 0, 'too short to be a ForgeOne store file');
  const h = await reader.get(0, FRAME_HEADER_BYTES);
  const hlen = u32(h, 0);
  if ((hlen ^ u32(h, 4)) >>> 0 !== 0xffffffff || hlen > 4096 || FRAME_HEADER_BYTES + hlen > size) {
    throw corrupt(file, 0, 'not a ForgeOne store file (bad header frame)');
  }
  const hcrc = u32(h, 8);
  const hpayload = await reader.get(FRAME_HEADER_BYTES, hlen);
  if (crc32(hpayload) !== hcrc) throw corrupt(file, 0, 'header checksum mismatch');
  let header: FileHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(hpayload)) as FileHeader;
  } catch {
    throw corrupt(file, 0, 'header is not JSON');
  }
  if (header.format !== 'forgeone-store') throw corrupt(file, 0, 'not a ForgeOne store file');
  if (header.version !== 1) throw corrupt(file, 0, `unsupported format version ${String(header.version)}`);
  if (header.kind !== expected.kind || header.name !== expected.name) {
    throw corrupt(file, 0, `holds ${String(header.kind)} ${JSON.stringify(header.name)}, expected ${expected.kind} ${JSON.stringify(expected.name)}`);
  }

  let pos = FRAME_HEADER_BYTES + hlen;
  while (pos < size) {
    if (size - pos < FRAME_HEADER_BYTES) return { header, end: pos, torn: { offset: pos, reason: 'incomplete frame header' } };
    const fh12 = await reader.get(pos, FRAME_HEADER_BYTES);
    const len = u32(fh12, 0);
    const check = u32(fh12, 4);
    const crc = u32(fh12, 8);
    if ((len ^ check) >>> 0 !== 0xffffffff) {
      if (await allZero(reader, pos, size)) return { header, end: pos, torn: { offset: pos, reason: 'zero-filled tail' } };
      throw corrupt(file, pos, 'damaged frame header (length check failed)');
    }
    const end = pos + FRAME_HEADER_BYTES + len;
    if (end > size) return { header, end: pos, torn: { offset: pos, reason: `incomplete frame (${len} bytes declared, ${size - pos - FRAME_HEADER_BYTES} present)` } };
    const payload = await reader.get(pos + FRAME_HEADER_BYTES, len);
    if (crc32(payload) !== crc) {
      if (end === size) return { header, end: pos, torn: { offset: pos, reason: 'checksum mismatch in the last frame' } };
      throw corrupt(file, pos, 'checksum mismatch');
    }
    onFrame(pos, payload);
    pos = end;
  }
  return { header, end: pos };
}

async function allZero(reader: WindowReader, from: number, size: number): Promise<boolean> {
  for (let p = from; p < size; ) {
    const n = Math.min(CHUNK, size - p);
    const b = await reader.get(p, n);
    for (let i = 0; i < n; i++) if (b[i] !== 0) return false;
    p += n;
  }
  return true;
}
