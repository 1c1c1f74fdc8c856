import { domainToASCII } from 'node:url';
import { ForgeError } from '@forgeone/common';

/**
 * Normalise a guest path: make it absolute against `base` (a normalised absolute path), drop `.` and
 * empty segments, apply `..` lexically, and never go above `/`. The result has no trailing `/` except `/`.
 * This is the form policy rules match (docs/policy.md §4.3); it says nothing about symlinks — the
 * filesystem layer resolves those inside the preopen before anything is opened.
 * @param path - the path the guest gave (relative or absolute)
 * @param base - the absolute guest directory a relative path is taken from
 * @returns the canonical absolute path
 * @throws ForgeError `INVALID_ARGUMENT` when the path holds a NUL byte
 */
export function canonicalPath(path: string, base = '/'): string {
  if (path.includes('\0')) throw new ForgeError('INVALID_ARGUMENT', 'a path may not contain a NUL byte');
  const parts: string[] = [];
  const full = path.startsWith('/') ? path : `${base}/${path}`;
  for (const seg of full.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

/**
 * Canonicalise a host name: IDNA-map it to ASCII (punycode), lowercase, drop one trailing dot. IPv4
 * literals pass through; IPv6 literals lose their brackets and are lowercased.
 * @param host - the host as the guest gave it
 * @returns the canonical host
 * @throws ForgeError `INVALID_ARGUMENT` when the name cannot be mapped (empty, bad characters)
 */
export function canonicalHost(host: string): string {
  let h = host.trim();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.includes(':')) {
    if (!/^[0-9a-fA-F:.]+$/.test(h)) throw new ForgeError('INVALID_ARGUMENT', `not a host: ${JSON.stringify(host)}`);
    return h.toLowerCase();
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  const ascii = domainToASCII(h);
  if (ascii === '' || ascii.length > 253) throw new ForgeError('INVALID_ARGUMENT', `not a host: ${JSON.stringify(host)}`);
  return ascii.toLowerCase();
}

/**
 * Canonicalise the authority of a URL: host as {@link canonicalHost}, port explicit (80 for http, 443
 * for https when absent).
 * @param url - an absolute http or https URL
 * @returns the canonical host and port, and the URL with them written out
 * @throws ForgeError `INVALID_ARGUMENT` for other schemes, credentials in the URL, or a malformed URL
 */
export function canonicalUrl(url: string): { host: string; port: number; url: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new ForgeError('INVALID_ARGUMENT', `not a URL: ${JSON.stringify(url)}`, { cause });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ForgeError('INVALID_ARGUMENT', `only http and https URLs are allowed, got ${u.protocol}`);
  if (u.username !== '' || u.password !== '') throw new ForgeError('INVALID_ARGUMENT', 'credentials in URLs are not allowed');
  const host = canonicalHost(u.hostname);
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  return { host, port, url: u.href };
}
