// A real kernel (memory store, no kernel-file measurement) behind a real server on 127.0.0.1, a trust root with
// root, packages, policy and api roles, and tokens of every role.
import { createManualClock, type Clock } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, buildPackage, createTrustRoot, signPackage, signTrustRoot, type TrustRootDocument } from '@forgeone/crypto';
import { createKernel, type Kernel } from '@forgeone/kernel';
import { createMemoryStore } from '@forgeone/store';
import { createApiServer, type ApiLimits, type ApiServer } from '../src/server.js';
import { issueToken } from '../src/tokens.js';
import type { ApiRole } from '../src/roles.js';

export const crypto = new NodeCryptoProvider();

export interface Keys {
  root: SigningKey;
  packages: SigningKey;
  policy: SigningKey;
  api: SigningKey;
  stranger: SigningKey;
}

export function makeKeys(): Keys {
  return { root: SigningKey.generate(crypto), packages: SigningKey.generate(crypto), policy: SigningKey.generate(crypto), api: SigningKey.generate(crypto), stranger: SigningKey.generate(crypto) };
}

export function makeTrustRoot(keys: Keys, withApiRole = true): TrustRootDocument {
  const roles: Record<string, { keys: ReturnType<SigningKey['toPublic']>[]; threshold: number }> = {
    root: { keys: [keys.root.toPublic()], threshold: 1 },
    packages: { keys: [keys.packages.toPublic()], threshold: 1 },
    policy: { keys: [keys.policy.toPublic()], threshold: 1 },
  };
  if (withApiRole) roles.api = { keys: [keys.api.toPublic()], threshold: 1 };
  return signTrustRoot(crypto, createTrustRoot(crypto, { expires: '2035-01-01T00:00:00Z', roles }), keys.root);
}

/** A small signed package (not a runnable component: uploads and verification only). */
export function smallPackage(key: SigningKey, name = 'tiny', version = '1.0.0', size = 64): Uint8Array {
  const { bytes } = buildPackage(crypto, { template: { name, version, entry: 'main.wasm' }, files: new Map([['main.wasm', new Uint8Array(size).fill(7)]]) });
  return signPackage(bytes, key);
}

export interface Harness {
  keys: Keys;
  kernel: Kernel;
  server: ApiServer;
  url: string;
  /** Errors the server answered with INTERNAL: a test that expects none checks this is empty. */
  unexpected: unknown[];
  token(role: ApiRole, options?: { ttlSeconds?: number; key?: SigningKey; clock?: Clock; subject?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startHarness(options: { limits?: ApiLimits; clock?: Clock } = {}): Promise<Harness> {
  const keys = makeKeys();
  const unexpected: unknown[] = [];
  const kernel = await createKernel({ trustRoot: makeTrustRoot(keys), store: createMemoryStore(), boot: { measureKernel: false } });
  const server = await createApiServer({
    kernel,
    auth: {},
    port: 0,
    validateResponses: true,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    onError: (e) => unexpected.push(e),
  });
  const { url } = await server.listen();
  return {
    keys,
    kernel,
    server,
    url,
    unexpected,
    token: (role, o = {}) => issueToken({ key: o.key ?? keys.api, role, subject: o.subject ?? `user:${role}`, ttlSeconds: o.ttlSeconds ?? 600, ...(o.clock === undefined ? {} : { clock: o.clock }) }),
    close: async () => {
      await server.close();
      await kernel.shutdown();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: () => { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<string, unknown>;
}

export async function http(url: string, init: { method?: string; token?: string; headers?: Record<string, string>; body?: string | Uint8Array; json?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  let body: string | Uint8Array | undefined = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

export { createManualClock };
