// fetcher: fetches the URL given as input through forgeone:host/http and returns the status and body length
// as JSON, e.g. {"url":"https://example.com/","status":200,"bytes":1256}. The host's policy decides which
// destinations it may reach (the manifest asks for example.com:443 and its subdomains).
import { fetch as hostFetch } from 'forgeone:host/http@0.1.0';
import { write } from 'forgeone:host/log@0.1.0';

function hostError(e) {
  const p = e !== null && typeof e === 'object' ? e.payload : undefined;
  return p !== undefined && typeof p.code === 'string' ? `${p.code}: ${p.message}` : String(e instanceof Error ? e.message : e);
}

/**
 * @param {string} input - an http(s) URL
 * @returns {string} JSON: url, status, bytes
 */
function main(input) {
  const url = input.trim();
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new Error(`input must be an http(s) URL, not ${JSON.stringify(url.slice(0, 64))}`);
  let response;
  try {
    response = hostFetch({ method: 'GET', url, headers: [['user-agent', 'forgeone-fetcher/1.0']], body: undefined });
  } catch (e) {
    const reason = hostError(e);
    write('warn', `fetch ${url} refused: ${reason}`);
    throw new Error(`fetch ${url}: ${reason}`);
  }
  write('info', `fetch ${url}: ${response.status}, ${response.body.length} bytes`);
  return JSON.stringify({ url, status: response.status, bytes: response.body.length });
}

/**
 * The entry point: the `ok` result is what {@link main} returns, the `err` result its error message.
 * componentize-js turns a thrown *string* into `err`; any other thrown value would trap the component.
 * @param {string} input
 * @returns {string}
 */
export function run(input) {
  try {
    return main(input);
  } catch (e) {
    throw e instanceof Error ? e.message : String(e);
  }
}
