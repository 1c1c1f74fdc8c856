import { InvalidArgumentError } from 'commander';

/**
 * Parse a threshold: a whole number from 1 to 64 (the trust root's limits).
 * @param value - as typed
 * @returns the number
 * @throws InvalidArgumentError (a usage error) otherwise
 */
export function parseThreshold(value: string): number {
  if (!/^[0-9]{1,2}$/.test(value) || Number(value) < 1 || Number(value) > 64) throw new InvalidArgumentError('a threshold is a whole number from 1 to 64.');
  return Number(value);
}

/**
 * Parse a number of days: a whole number from 1 to 3650.
 * @param value - as typed
 * @returns the number
 * @throws InvalidArgumentError (a usage error) otherwise
 */
export function parseDays(value: string): number {
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 3650) throw new InvalidArgumentError('a number of days is a whole number from 1 to 3650.');
  return Number(value);
}

const ISO = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Parse an ISO 8601 time: a date (`2027-01-01`, midnight UTC) or a date and time with `Z` or an offset, so it
 * never depends on the local time zone.
 * @param value - as typed
 * @returns milliseconds since the epoch
 * @throws InvalidArgumentError (a usage error) otherwise
 */
export function parseIsoTime(value: string): number {
  const ms = ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new InvalidArgumentError('expected an ISO 8601 time such as 2027-01-01 or 2027-01-01T12:00:00Z.');
  return ms;
}

/**
 * The whole-second UTC form trust roots and manifests use: `2027-01-01T12:00:00Z`.
 * @param ms - milliseconds since the epoch
 * @returns the timestamp
 */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
