// Synthetic runs shaped like the example plugins' execution DNA (see plugins/*/src and the ABI adapter in
// packages/execution/src/component/forgeone.ts for the arguments each host call carries), and attack runs
// shaped like plugins/rogue's attempts, for the detector tests and the evaluation.
import type { CallArgs, CallVerdict, TraceCallRecord } from '@forgeone/observer';

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Plugin = 'hello' | 'kv-counter' | 'fetcher';
export const PLUGINS: readonly Plugin[] = ['hello', 'kv-counter', 'fetcher'];
export const KEYS: Record<Plugin, { packageName: string; packageVersion: string }> = {
  hello: { packageName: 'hello', packageVersion: '1.0.0' },
  'kv-counter': { packageName: 'kv-counter', packageVersion: '1.0.0' },
  fetcher: { packageName: 'fetcher', packageVersion: '1.0.0' },
};
/** Which capabilities each plugin's manifest grants (decides whether an attack's call is denied at the gate). */
const CAPS: Record<Plugin, { kv: boolean; hosts: readonly string[] }> = {
  hello: { kv: false, hosts: [] },
  'kv-counter': { kv: true, hosts: [] },
  fetcher: { kv: false, hosts: ['example.com', 'www.example.com', 'api.example.com', 'docs.example.com'] },
};

export interface Call {
  syscall: string;
  args?: CallArgs;
  verdict?: CallVerdict;
  rule?: string | null;
  result?: number;
  /** ms after the previous call */
  gap?: number;
}

/** Number records: seq from 0, times from `t0`, allowed/result consistent with the verdict. */
export function records(calls: readonly Call[], t0: number, random: () => number): TraceCallRecord[] {
  let t = t0;
  return calls.map((c, seq) => {
    t += c.gap ?? 0.05 + random() * 1.5;
    const verdict = c.verdict ?? 'allow';
    const allowed = verdict === 'allow' || verdict === 'audit';
    return {
      seq,
      syscall: c.syscall,
      args: c.args ?? {},
      verdict,
      rule: c.rule === undefined ? (allowed ? `capabilities/${c.syscall.split('/')[0]!.split(':')[1]}` : null) : c.rule,
      allowed,
      result: c.result ?? (allowed ? 0 : -1),
      start: Math.round(t * 1000) / 1000,
      duration: 0.01,
      resultBytes: null,
    };
  });
}

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

/** What a componentize-js guest does before run(): seed its PRNG and read the clocks. */
function preamble(random: () => number): Call[] {
  const out: Call[] = [{ syscall: 'wasi:random/insecure-seed' }, { syscall: 'wasi:clocks/wall-clock' }];
  const mono = 1 + Math.floor(random() * 2);
  for (let i = 0; i < mono; i++) out.push({ syscall: 'wasi:clocks/monotonic-clock' });
  return out;
}

const log = (level: string, size: number): Call => ({ syscall: 'forgeone:log/write', args: { detail: level, size } });

/** The body of a normal run of a plugin. */
function body(plugin: Plugin, random: () => number): Call[] {
  switch (plugin) {
    case 'hello':
      return [log('info', 10 + Math.floor(random() * 30))];
    case 'kv-counter': {
      const key = random() < 0.4 ? 'counter' : `counter/${pick(random, ['a', 'b', 'visits', 'clicks', 'user-7', 'x'])}`;
      return [
        { syscall: 'forgeone:kv/get', args: { detail: key, path: `/${key}` } },
        { syscall: 'forgeone:kv/set', args: { detail: key, path: `/${key}`, size: 1 + Math.floor(random() * 4) } },
        log('info', key.length + 4),
      ];
    }
    case 'fetcher': {
      // One run in twenty asks for a host the policy does not allow: refused, logged as a warning.
      if (random() < 0.05) {
        return [
          { syscall: 'forgeone:http/fetch', args: { host: pick(random, ['other.org', 'news.example.net']), port: 443, size: 0, detail: 'GET https' }, verdict: 'deny' },
          log('warn', 60),
        ];
      }
      return [{ syscall: 'forgeone:http/fetch', args: { host: pick(random, CAPS.fetcher.hosts), port: 443, size: 0, detail: 'GET https' } }, log('info', 50)];
    }
  }
}

/** A normal run of a plugin. */
export function normalRun(plugin: Plugin, seed: number, t0 = Date.UTC(2026, 0, 1) + seed * 60_000): TraceCallRecord[] {
  const random = rng(seed);
  return records([...preamble(random), ...body(plugin, random)], t0, random);
}

export type Attack = 'passwd' | 'write-outside' | 'dotdot' | 'symlink' | 'net' | 'wasi-fs' | 'kv-burst' | 'fetch-burst';
export const ATTACKS: readonly Attack[] = ['passwd', 'write-outside', 'dotdot', 'symlink', 'net', 'wasi-fs', 'kv-burst', 'fetch-burst'];

function fetchCall(plugin: Plugin, host: string | null, port: number, method: string, scheme: string): Call {
  const allowed = host !== null && CAPS[plugin].hosts.includes(host) && port === 443;
  return { syscall: 'forgeone:http/fetch', args: host === null ? { size: 0, detail: `${method} ${scheme}` } : { host, port, size: 0, detail: `${method} ${scheme}` }, verdict: allowed ? 'allow' : 'deny' };
}

/** A kv call with a key: escape-shaped keys carry no path, and are refused after the gate when kv is granted. */
function kvCall(plugin: Plugin, op: string, key: string): Call {
  const escape = key.startsWith('/') || key.split('/').some((s) => s === '..' || s === '' || s === '.');
  const args: CallArgs = escape ? { detail: key } : { detail: key, path: `/${key}` };
  if (!CAPS[plugin].kv) return { syscall: `forgeone:kv/${op}`, args, verdict: 'deny' };
  return { syscall: `forgeone:kv/${op}`, args, verdict: 'allow', result: escape ? 22 : 0 };
}

/** The calls of a rogue attempt, as a compromised version of `plugin` would make them. */
function attackCalls(attack: Attack, plugin: Plugin, random: () => number): Call[] {
  const warn = log('warn', 20);
  switch (attack) {
    case 'passwd':
      return [warn, fetchCall(plugin, null, 0, 'GET', 'file'), kvCall(plugin, 'get', '/etc/passwd'), log('info', 80)];
    case 'write-outside':
      return [warn, kvCall(plugin, 'set', '../../other-container/owned'), fetchCall(plugin, null, 0, 'PUT', 'file'), log('info', 80)];
    case 'dotdot':
      return [warn, kvCall(plugin, 'get', '../../../etc/passwd'), kvCall(plugin, 'list', '..'), fetchCall(plugin, 'api.example.com', 443, 'GET', 'https'), fetchCall(plugin, 'api.example.com', 443, 'GET', 'https'), log('info', 80)];
    case 'symlink':
      return [warn, fetchCall(plugin, null, 0, 'GET', 'file'), fetchCall(plugin, null, 0, 'GET', 'file'), kvCall(plugin, 'get', '/proc/self/environ'), log('info', 80)];
    case 'net':
      return [
        warn,
        fetchCall(plugin, '169.254.169.254', 80, 'GET', 'http'),
        fetchCall(plugin, 'evil.example.net', 443, 'PUT', 'https'),
        fetchCall(plugin, '127.0.0.1', 22, 'GET', 'http'),
        fetchCall(plugin, 'evil.example.net', 443, 'GET', 'https'),
        log('info', 80),
      ];
    case 'wasi-fs':
      // rogue-c: raw WASI file calls outside any preopen.
      return [
        { syscall: 'wasi:filesystem/open', args: { path: '/etc/passwd' }, verdict: 'deny' },
        { syscall: 'wasi:filesystem/read', args: { path: '/etc/shadow' }, verdict: 'deny' },
        { syscall: 'wasi:filesystem/open', args: { path: '/proc/self/environ' }, verdict: 'deny' },
      ];
    case 'kv-burst': {
      // Scrape the key space: hundreds of reads in a fraction of a second.
      const out: Call[] = [kvCall(plugin, 'list', '')];
      for (let i = 0; i < 300; i++) out.push({ ...kvCall(plugin, 'get', `counter/${i}`), gap: 0.2 + random() * 0.3 });
      return out;
    }
    case 'fetch-burst': {
      // Exfiltrate through a host the plugin may reach, sixty requests in a second.
      const out: Call[] = [];
      for (let i = 0; i < 60; i++) out.push({ ...fetchCall(plugin, CAPS.fetcher.hosts[0]!, 443, 'PUT', 'https'), gap: 10 + random() * 5 });
      return out;
    }
  }
}

/** A compromised run of `plugin`: a normal run with a rogue attempt spliced in after the preamble. */
export function attackRun(plugin: Plugin, attack: Attack, seed: number, t0 = Date.UTC(2026, 0, 2) + seed * 60_000): TraceCallRecord[] {
  const random = rng(seed);
  const pre = preamble(random);
  const normal = body(plugin, random);
  const cut = Math.floor(random() * (normal.length + 1));
  return records([...pre, ...normal.slice(0, cut), ...attackCalls(attack, plugin, random), ...normal.slice(cut)], t0, random);
}

/**
 * Mimicry: a compromised fetcher that sends one PUT with a 4 KiB body to a host it normally fetches from, in
 * the exact call shape of a normal run. Records carry no URL path or body, so this is a known blind spot.
 */
export function mimicryRun(seed: number, t0 = Date.UTC(2026, 0, 3) + seed * 60_000): TraceCallRecord[] {
  const random = rng(seed);
  return records(
    [...preamble(random), { syscall: 'forgeone:http/fetch', args: { host: pick(random, CAPS.fetcher.hosts), port: 443, size: 4096, detail: 'PUT https' } }, log('info', 50)],
    t0,
    random,
  );
}
