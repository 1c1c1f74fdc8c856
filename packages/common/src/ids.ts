import { ForgeError } from './errors.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const PREFIX = /^[a-z][a-z0-9]{0,15}$/;
const ID = /^([a-z][a-z0-9]{0,15})_([0-9A-HJKMNP-TV-Z]{26})$/;

/**
 * Make a new id: a short prefix naming the kind, `_`, and a 26-character ULID (48-bit millisecond time,
 * 80 random bits, Crockford base32). Ids of one kind sort by creation time.
 * @param prefix - lowercase kind, e.g. `ctr` for containers, `trc` for traces
 * @param nowMs - the time to encode (default now)
 * @returns e.g. `ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H`
 * @throws ForgeError `INVALID_ARGUMENT` for a bad prefix
 * @example
 * ```ts
 * const id = newId('ctr');
 * ```
 */
export function newId(prefix: string, nowMs: number = Date.now()): string {
  if (!PREFIX.test(prefix)) throw new ForgeError('INVALID_ARGUMENT', `invalid id prefix: ${prefix}`);
  let time = Math.max(0, Math.floor(nowMs));
  let t = '';
  for (let i = 0; i < 10; i++) {
    t = CROCKFORD[time % 32]! + t;
    time = Math.floor(time / 32);
  }
  const rnd = new Uint8Array(16);
  crypto.getRandomValues(rnd);
  let r = '';
  for (let i = 0; i < 16; i++) r += CROCKFORD[rnd[i]! & 31];
  return `${prefix}_${t}${r}`;
}

/**
 * Whether a string is a well-formed id, optionally of a given kind.
 * @param value - candidate
 * @param prefix - required kind
 * @returns true when well formed
 */
export function isId(value: unknown, prefix?: string): value is string {
  if (typeof value !== 'string') return false;
  const m = ID.exec(value);
  return m !== null && (prefix === undefined || m[1] === prefix);
}

/**
 * The creation time encoded in an id.
 * @param id - a well-formed id
 * @returns milliseconds since the epoch
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed id
 */
export function idTime(id: string): number {
  const m = ID.exec(id);
  if (m === null) throw new ForgeError('INVALID_ARGUMENT', `malformed id: ${id}`);
  let t = 0;
  for (const ch of m[2]!.slice(0, 10)) t = t * 32 + CROCKFORD.indexOf(ch);
  return t;
}
