/** Longest file name (whole path) in bytes of UTF-8. */
export const MAX_PATH_BYTES = 1024;
/** Longest single path segment in bytes of UTF-8. */
export const MAX_SEGMENT_BYTES = 255;

const encoder = new TextEncoder();

/**
 * Check that a file name is a safe relative POSIX path: not empty, no NUL or control characters, no
 * backslash, not absolute, no drive letter, no empty, `.` or `..` segment, no trailing slash, in Unicode
 * NFC, within the length limits.
 * @param name - the file name
 * @returns a description of the first problem, or undefined when the name is safe
 */
export function checkPackagePath(name: string): string | undefined {
  if (name.length === 0) return 'empty file name';
  if (encoder.encode(name).length > MAX_PATH_BYTES) return `file name longer than ${MAX_PATH_BYTES} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'file name contains NUL or a control character';
  if (name.includes('\\')) return 'file name contains a backslash';
  if (name.startsWith('/')) return 'file name is an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'file name starts with a drive letter';
  if (/\p{Cs}/u.test(name)) return 'file name contains a lone surrogate';
  if (name.normalize('NFC') !== name) return 'file name is not in Unicode NFC';
  for (const seg of name.split('/')) {
    if (seg === '') return 'file name has an empty segment (// or trailing /)';
    if (seg === '.' || seg === '..') return `file name has a "${seg}" segment`;
    if (encoder.encode(seg).length > MAX_SEGMENT_BYTES) return `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/**
 * The key two names collide under on a case-insensitive file system (`A.wasm` and `a.wasm`).
 * @param name - a safe file name
 * @returns the collision key
 */
export function pathCollisionKey(name: string): string {
  return name.normalize('NFC').toLowerCase();
}
