import { ForgeError, KNOWN_SYSCALLS, SyscallTable, bytesEqual, createIdentity, fromHex, isForgeError, systemClock, toHex, trustVector, utf8 } from '@forgeone/common';
import type { Clock } from '@forgeone/common';
import { parseTrustRoot, verifyTrustRoot } from '@forgeone/crypto';
import type { CryptoProvider } from '@forgeone/crypto';
import type { Store } from '@forgeone/store';
import { compilePolicy, parsePolicy } from '@forgeone/trust';
import type { CallContext, CompiledPolicy, Tightening } from '@forgeone/trust';
import { SelfTestFailure } from './registry.js';
import type { SelfTest, SelfTestContext } from './registry.js';

/** Known answers: SHA3-256 (FIPS 202) of "" and "abc". */
export const SHA3_256_VECTORS = Object.freeze([
  { message: '', digest: 'a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a' },
  { message: 'abc', digest: '3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532' },
] as const);

/** Known answers: Ed25519, RFC 8032 section 7.1, tests 1–3 (seed, public key, message and signature in hex). */
export const ED25519_VECTORS = Object.freeze([
  {
    name: 'RFC 8032 7.1 TEST 1',
    secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'RFC 8032 7.1 TEST 2',
    secretKey: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'RFC 8032 7.1 TEST 3',
    secretKey: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
] as const);

function slug(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return s === '' ? 'provider' : s.slice(0, 40);
}

/**
 * Known-answer self-tests of a crypto provider: SHA3-256 of "" and "abc" (one-shot and streamed), Ed25519 by
 * RFC 8032 tests 1–3 (public key, exact signature, verification, a flipped bit refused, the imported signer),
 * and its random source (lengths, two draws differ, a fresh key pair signs and verifies). The provider has no
 * SHA-256, so SHA-256 is not tested. Names: `crypto.<provider>.sha3-256`, `.ed25519`, `.random`.
 * @param provider - the provider to test
 * @returns the tests
 */
export function cryptoSelfTests(provider: CryptoProvider): SelfTest[] {
  const p = `crypto.${slug(provider.name)}`;
  return [
    {
      name: `${p}.sha3-256`,
      description: `SHA3-256 known answers ("" and "abc", FIPS 202), one-shot and streamed, on the ${provider.name} provider`,
      run(ctx) {
        for (const v of SHA3_256_VECTORS) {
          const got = toHex(provider.sha3_256(utf8(v.message)));
          ctx.check(got === v.digest, `SHA3-256(${JSON.stringify(v.message)}) = ${got}, expected ${v.digest}`);
          const s = provider.createSha3_256();
          const bytes = utf8(v.message);
          s.update(bytes.subarray(0, 1)).update(bytes.subarray(1));
          const streamed = toHex(s.digest());
          ctx.check(streamed === v.digest, `streamed SHA3-256(${JSON.stringify(v.message)}) = ${streamed}, expected ${v.digest}`);
        }
      },
    },
    {
      name: `${p}.ed25519`,
      description: `Ed25519 known answers (RFC 8032 section 7.1, tests 1-3): public key, signature, verification, on the ${provider.name} provider`,
      run(ctx) {
        for (const v of ED25519_VECTORS) {
          const sk = fromHex(v.secretKey);
          const msg = fromHex(v.message);
          ctx.check(toHex(provider.ed25519PublicKey(sk)) === v.publicKey, `${v.name}: wrong public key`);
          ctx.check(toHex(provider.sign(sk, msg)) === v.signature, `${v.name}: wrong signature`);
          ctx.check(toHex(provider.createSigner(sk).sign(msg)) === v.signature, `${v.name}: the imported signer signs differently`);
          ctx.check(provider.verify(fromHex(v.signature), msg, fromHex(v.publicKey)), `${v.name}: a valid signature does not verify`);
          const bad = fromHex(v.signature);
          bad[0]! ^= 1;
          ctx.check(!provider.verify(bad, msg, fromHex(v.publicKey)), `${v.name}: a signature with a flipped bit verifies`);
        }
      },
    },
    {
      name: `${p}.random`,
      description: `the random source and key generation of the ${provider.name} provider: lengths, distinct draws, a fresh key signs and verifies`,
      dependsOn: [`${p}.ed25519`],
      run(ctx) {
        const a = provider.randomBytes(32);
        const b = provider.randomBytes(32);
        ctx.check(a.length === 32 && b.length === 32, 'randomBytes(32) did not return 32 bytes');
        ctx.check(!bytesEqual(a, b), 'two draws of 32 random bytes are equal');
        ctx.check(a.some((x) => x !== 0), '32 random bytes are all zero');
        const pair = provider.generateEd25519();
        ctx.check(bytesEqual(provider.ed25519PublicKey(pair.secretKey), pair.publicKey), 'a generated key pair does not match its seed');
        const msg = utf8('forgeone self-test');
        ctx.check(provider.verify(provider.sign(pair.secretKey, msg), msg, pair.publicKey), 'a fresh key pair does not verify its own signature');
      },
    },
  ];
}

/**
 * A self-test that two providers agree: each verifies what the other signs, and both hash the same bytes to the
 * same digest (`crypto.agreement.<a>.<b>`, after both providers' Ed25519 tests).
 * @param a - a provider
 * @param b - another provider
 * @returns the test
 */
export function cryptoAgreementSelfTest(a: CryptoProvider, b: CryptoProvider): SelfTest {
  const [na, nb] = [slug(a.name), slug(b.name)];
  return {
    name: `crypto.agreement.${na}.${nb}`,
    description: `the ${a.name} and ${b.name} providers agree: same digests, each verifies the other's signatures`,
    dependsOn: [`crypto.${na}.ed25519`, `crypto.${nb}.ed25519`],
    run(ctx) {
      const msg = a.randomBytes(1000);
      ctx.check(bytesEqual(a.sha3_256(msg), b.sha3_256(msg)), 'the providers hash the same bytes differently');
      const pair = a.generateEd25519();
      ctx.check(b.verify(a.sign(pair.secretKey, msg), msg, pair.publicKey), `${b.name} refuses a signature by ${a.name}`);
      ctx.check(a.verify(b.sign(pair.secretKey, msg), msg, pair.publicKey), `${a.name} refuses a signature by ${b.name}`);
      ctx.check(bytesEqual(a.sign(pair.secretKey, msg), b.sign(pair.secretKey, msg)), 'the providers sign the same message differently (Ed25519 is deterministic)');
    },
  };
}

/** The canary policy of {@link policySelfTests}. */
export const CANARY_POLICY = Object.freeze({
  apiVersion: 'forgeone.policy/v1',
  name: 'selftest-canary',
  version: 1,
  defaultAction: 'deny',
  root: 'base',
  nodes: {
    base: {
      rules: [
        { id: 'read-data', action: 'allow', syscalls: ['wasi:filesystem/read'], args: { path: { match: ['/data/**'] } }, reason: 'plugins read their data' },
        { id: 'no-secrets', action: 'deny', syscalls: ['wasi:filesystem/read'], args: { path: { match: ['/data/secret/**'] } }, reason: 'secrets stay secret' },
        { id: 'metadata', action: 'quarantine', syscalls: ['wasi:sockets/tcp-connect'], args: { host: { in: ['169.254.169.254'] } }, reason: 'the metadata service is off limits' },
        { id: 'log', action: 'audit', syscalls: ['forgeone:log/write'] },
      ],
    },
  },
  edges: [],
});

const canaryCtx = (args: Partial<CallContext> = {}): CallContext => ({ now: Date.UTC(2026, 0, 1), calls: 0, rate: 0, denied: 0, anomaly: 0, ...args });

/**
 * Self-tests of the policy engine: compile a canary policy (`policy.compile`), check allow, deny, explicit
 * deny over allow, quarantine, audit and default-deny canaries (`policy.canaries`), and that tightenings only
 * make decisions stricter (`policy.tightening`).
 * @returns the tests
 */
export function policySelfTests(): SelfTest[] {
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const identity = createIdentity({ subject: 'selftest:canary', tenant: 'selftest', trust: trustVector('Verified') });
  let program: CompiledPolicy | undefined;
  const compile = (tightenings: readonly Tightening[] = []): CompiledPolicy => compilePolicy(parsePolicy(structuredClone(CANARY_POLICY)).policy, { identity, syscalls }, { tightenings });
  const expect = (ctx: SelfTestContext, p: CompiledPolicy, syscall: string, args: Partial<CallContext>, verdict: string, rule: string | null): void => {
    const d = p.decide(syscalls.id(syscall), canaryCtx(args));
    const shown = `${syscall} ${JSON.stringify(args)}`;
    ctx.check(d.verdict === verdict, `${shown}: verdict ${d.verdict}, expected ${verdict}`);
    ctx.check(d.rule === rule, `${shown}: decided by ${d.rule ?? 'the default'}, expected ${rule ?? 'the default'}`);
  };
  return [
    {
      name: 'policy.compile',
      description: 'the canary policy parses and compiles for a canary identity',
      run(ctx) {
        program = compile();
        ctx.check(program.activeNodes.includes('base'), 'the canary policy compiled without its base node');
      },
    },
    {
      name: 'policy.canaries',
      description: 'canary decisions: allow, deny by default, explicit deny over allow, quarantine, audit',
      dependsOn: ['policy.compile'],
      run(ctx) {
        const p = program ?? compile();
        expect(ctx, p, 'wasi:filesystem/read', { path: '/data/a.txt' }, 'allow', 'base/read-data');
        expect(ctx, p, 'wasi:filesystem/read', { path: '/etc/passwd' }, 'deny', null);
        expect(ctx, p, 'wasi:filesystem/read', { path: '/data/secret/key' }, 'deny', 'base/no-secrets');
        expect(ctx, p, 'wasi:sockets/tcp-connect', { host: '169.254.169.254', port: 80 }, 'quarantine', 'base/metadata');
        expect(ctx, p, 'wasi:sockets/tcp-connect', { host: 'example.com', port: 443 }, 'deny', null);
        expect(ctx, p, 'forgeone:log/write', {}, 'audit', 'base/log');
        expect(ctx, p, 'forgeone:kv/set', { path: '/k' }, 'deny', null);
      },
    },
    {
      name: 'policy.tightening',
      description: 'a tightening makes its scope stricter and nothing looser',
      dependsOn: ['policy.compile'],
      run(ctx) {
        const at = Date.UTC(2026, 0, 1);
        const t = (id: string, action: Tightening['action'], syscall: string): Tightening => ({ id, action, syscalls: [syscall], identity: { subjects: ['selftest:canary'] }, reason: 'self-test', createdAt: at, actor: 'selftest' });
        const p = compile([t('t1', 'deny', 'forgeone:log/write'), t('t2', 'audit', 'wasi:sockets/tcp-connect')]);
        const log = p.decide(syscalls.id('forgeone:log/write'), canaryCtx());
        ctx.check(log.verdict === 'deny', `a deny tightening left forgeone:log/write at ${log.verdict}`);
        expect(ctx, p, 'wasi:filesystem/read', { path: '/data/a.txt' }, 'allow', 'base/read-data');
        const q = p.decide(syscalls.id('wasi:sockets/tcp-connect'), canaryCtx({ host: '169.254.169.254', port: 80 }));
        ctx.check(q.verdict === 'quarantine', `an audit tightening loosened a quarantine to ${q.verdict}`);
      },
    },
  ];
}

/** What {@link storeSelfTests} tests. */
export interface StoreSelfTestTarget {
  /** A live store: written and read under `diagnostics/selftest` (a kv key, deleted after, and a log record). */
  readonly store?: Store;
  /**
   * Opens a fresh store of the kind to test, in a scratch place (each call opens the same place): used for the
   * durability test (write, close, reopen, read) and, without `store`, for the write-read test.
   */
  readonly open?: () => Promise<Store>;
}

const NS = 'diagnostics/selftest';

async function writeRead(store: Store, ctx: SelfTestContext, tag: string): Promise<void> {
  const kv = await store.kv(NS);
  const key = `probe-${tag}`;
  const value = utf8(`forgeone self-test ${tag}`);
  await kv.set(key, value);
  const back = await kv.get(key);
  ctx.check(back !== undefined && bytesEqual(back, value), `kv ${NS}: ${key} did not read back as written`);
  ctx.check((await kv.list('probe-')).includes(key), `kv ${NS}: ${key} is not listed`);
  ctx.check(await kv.delete(key), `kv ${NS}: deleting ${key} found nothing`);
  ctx.check((await kv.get(key)) === undefined, `kv ${NS}: ${key} is still there after delete`);
  const log = await store.log(NS);
  const { seq } = await log.append(value);
  const [entry] = await log.read(seq, 1);
  ctx.check(entry !== undefined && entry.seq === seq && bytesEqual(entry.data, value), `log ${NS}: record ${seq} did not read back as written`);
}

/**
 * Self-tests of a store: write, read back, list, delete (`store.write-read`), and durability across close and
 * reopen (`store.durability`, only with `open`; skipped without).
 * @param target - a live store and/or a way to open a scratch one
 * @param crypto - a random source for unique probe keys (default: Math.random)
 * @returns the tests
 * @throws ForgeError `INVALID_ARGUMENT` when neither `store` nor `open` is given
 */
export function storeSelfTests(target: StoreSelfTestTarget, crypto?: Pick<CryptoProvider, 'randomBytes'>): SelfTest[] {
  if (typeof target !== 'object' || target === null || (target.store === undefined && typeof target.open !== 'function')) {
    throw new ForgeError('INVALID_ARGUMENT', 'storeSelfTests needs { store } or { open }', { details: { field: 'target' } });
  }
  const tag = (): string => (crypto === undefined ? Math.random().toString(16).slice(2, 14) : toHex(crypto.randomBytes(8)));
  return [
    {
      name: 'store.write-read',
      description: 'the store writes, reads back, lists and deletes a key, and appends and reads a log record',
      async run(ctx) {
        if (target.store !== undefined) return writeRead(target.store, ctx, tag());
        const s = await target.open!();
        try {
          await writeRead(s, ctx, tag());
        } finally {
          await s.close();
        }
        return undefined;
      },
    },
    {
      name: 'store.durability',
      description: 'what the store acknowledged is there after it is closed and opened again',
      dependsOn: ['store.write-read'],
      async run(ctx) {
        if (target.open === undefined) return { status: 'skipped', message: 'no way to reopen the store was given' };
        const t = tag();
        const key = `durable-${t}`;
        const value = utf8(`forgeone durability ${t}`);
        const first = await target.open();
        let seq: number;
        try {
          await (await first.kv(NS)).set(key, value);
          seq = (await (await first.log(NS)).append(value)).seq;
        } finally {
          await first.close();
        }
        const second = await target.open();
        try {
          const kv = await second.kv(NS);
          const back = await kv.get(key);
          ctx.check(back !== undefined && bytesEqual(back, value), `kv ${NS}: ${key} was lost across close and reopen`);
          const [entry] = await (await second.log(NS)).read(seq, 1);
          ctx.check(entry !== undefined && bytesEqual(entry.data, value), `log ${NS}: record ${seq} was lost across close and reopen`);
          await kv.delete(key);
        } finally {
          await second.close();
        }
        return undefined;
      },
    },
  ];
}

/** Options of {@link clockSelfTests}. */
export interface ClockSelfTestOptions {
  /** Earliest plausible time, ms (default 2024-01-01). */
  readonly earliest?: number;
  /** Latest plausible time, ms (default 2100-01-01). */
  readonly latest?: number;
  /** A second clock to compare with (e.g. the system clock when the kernel's is another). */
  readonly reference?: Clock;
  /** Largest tolerated difference from the reference, ms (default 5 minutes). */
  readonly maxSkewMs?: number;
}

/**
 * Self-test of a clock (`clock.sanity`): the wall clock is a finite time within plausible bounds, the
 * monotonic clock never goes back, and (with a reference) the two clocks agree within a tolerance.
 * @param clock - the clock to test
 * @param options - bounds and reference
 * @returns the tests
 */
export function clockSelfTests(clock: Clock, options: ClockSelfTestOptions = {}): SelfTest[] {
  const earliest = options.earliest ?? Date.UTC(2024, 0, 1);
  const latest = options.latest ?? Date.UTC(2100, 0, 1);
  const maxSkew = options.maxSkewMs ?? 300_000;
  return [
    {
      name: 'clock.sanity',
      description: 'the wall clock reads a plausible time and the monotonic clock never goes back',
      run(ctx) {
        const now = clock.now();
        ctx.check(Number.isFinite(now), `the wall clock reads ${now}`);
        ctx.check(now >= earliest && now <= latest, `the wall clock reads ${new Date(now).toISOString()}, outside ${new Date(earliest).toISOString()} … ${new Date(latest).toISOString()}`);
        const m = [clock.monotonicNs(), clock.monotonicNs(), clock.monotonicNs()];
        ctx.check(
          m.every((x) => typeof x === 'bigint'),
          'the monotonic clock does not return bigint nanoseconds',
        );
        ctx.check(m[1]! >= m[0]! && m[2]! >= m[1]!, `the monotonic clock went back: ${m.join(', ')}`);
        ctx.check(clock.now() >= now, 'the wall clock went back between two reads');
        if (options.reference !== undefined) {
          const skew = Math.abs(clock.now() - options.reference.now());
          ctx.check(skew <= maxSkew, `the clock is ${Math.round(skew)} ms off the reference (tolerance ${maxSkew} ms)`);
        }
      },
    },
  ];
}

/** Options of {@link trustRootSelfTests}. */
export interface TrustRootSelfTestOptions {
  /** Clock for the expiry check (default: the system clock). */
  readonly clock?: Clock;
  /** Roles that must be present besides `root` and `packages` (e.g. `kernel`, `policy`). */
  readonly requiredRoles?: readonly string[];
}

/**
 * Self-test of the trust root (`trust-root.valid`): it parses, a threshold of its root keys signed it, it has
 * not expired, and it has the required roles. The message says when it expires.
 * @param doc - the trust root document (parsed JSON or text)
 * @param provider - verifies signatures
 * @param options - clock and required roles
 * @returns the tests
 */
export function trustRootSelfTests(doc: unknown, provider: CryptoProvider, options: TrustRootSelfTestOptions = {}): SelfTest[] {
  const clock = options.clock ?? systemClock;
  return [
    {
      name: 'trust-root.valid',
      description: 'the trust root parses, is signed by a threshold of its root keys, has not expired and has the required roles',
      run(ctx) {
        const now = clock.now();
        let signers: readonly string[];
        let parsed;
        try {
          parsed = parseTrustRoot(provider, doc);
          signers = verifyTrustRoot(provider, parsed, { now }).signers;
        } catch (e) {
          if (isForgeError(e)) throw new SelfTestFailure(`${e.code}: ${e.message}`);
          throw e;
        }
        for (const role of ['root', 'packages', ...(options.requiredRoles ?? [])]) {
          ctx.check(parsed.signed.roles[role] !== undefined, `the trust root has no ${role} role`);
        }
        const days = Math.floor((Date.parse(parsed.signed.expires) - now) / 86_400_000);
        return { status: 'passed', message: `v${parsed.signed.version}, signed by ${signers.length} root key(s), expires ${parsed.signed.expires} (in ${days} day(s))` };
      },
    },
  ];
}

/** Options of {@link sandboxSelfTests}. */
export interface SandboxSelfTestOptions {
  /** The test name (default `sandbox.canaries`). */
  readonly name?: string;
  /** What the canary does (default: a hostile module is denied and a spinning one is killed). */
  readonly description?: string;
  /** Time limit, ms (default 30,000). */
  readonly timeoutMs?: number;
}

/**
 * Self-test of the sandbox through a canary the kernel provides (diagnostics does not depend on the execution
 * layer): the canary runs a hostile module that must be denied and a spinning one that must be killed, and
 * resolves when both were contained; any rejection fails the test with its message.
 * @param canary - resolves when containment held, rejects (with why) when it did not
 * @param options - name, description, time limit
 * @returns the tests
 */
export function sandboxSelfTests(canary: () => Promise<void>, options: SandboxSelfTestOptions = {}): SelfTest[] {
  if (typeof canary !== 'function') throw new ForgeError('INVALID_ARGUMENT', 'sandboxSelfTests needs a canary function', { details: { field: 'canary' } });
  return [
    {
      name: options.name ?? 'sandbox.canaries',
      description: options.description ?? 'a built-in hostile module is denied and a spinning one is killed',
      timeoutMs: options.timeoutMs ?? 30_000,
      async run() {
        try {
          await canary();
        } catch (e) {
          throw new SelfTestFailure(`containment did not hold: ${isForgeError(e) ? `${e.code}: ` : ''}${e instanceof Error ? e.message : String(e)}`);
        }
      },
    },
  ];
}

/** What {@link builtinSelfTests} needs; each part is optional and adds its tests. */
export interface BuiltinSelfTestDeps {
  /** Crypto providers to test (with two or more, agreement between the first and each other). */
  readonly providers?: readonly CryptoProvider[];
  /** Whether to test the policy engine (default true). */
  readonly policy?: boolean;
  /** A store to test. */
  readonly store?: StoreSelfTestTarget;
  /** A clock to test. */
  readonly clock?: Clock;
  /** Options of the clock test. */
  readonly clockOptions?: ClockSelfTestOptions;
  /** A trust root to check (verified with the first provider). */
  readonly trustRoot?: unknown;
  /** Options of the trust root test. */
  readonly trustRootOptions?: TrustRootSelfTestOptions;
  /** The sandbox canary (the kernel provides it). */
  readonly sandboxCanary?: () => Promise<void>;
}

/**
 * The built-in self-tests for what is given: crypto known answers per provider and their agreement, policy
 * canaries, store, clock, trust root, sandbox canary.
 * @param deps - the parts to test
 * @returns the tests, ready for `registry.registerAll`
 * @throws ForgeError `INVALID_ARGUMENT` when a trust root is given without a provider
 */
export function builtinSelfTests(deps: BuiltinSelfTestDeps): SelfTest[] {
  const out: SelfTest[] = [];
  const providers = deps.providers ?? [];
  for (const p of providers) out.push(...cryptoSelfTests(p));
  for (const p of providers.slice(1)) out.push(cryptoAgreementSelfTest(providers[0]!, p));
  if (deps.policy ?? true) out.push(...policySelfTests());
  if (deps.store !== undefined) out.push(...storeSelfTests(deps.store, providers[0]));
  if (deps.clock !== undefined) out.push(...clockSelfTests(deps.clock, deps.clockOptions));
  if (deps.trustRoot !== undefined) {
    if (providers[0] === undefined) throw new ForgeError('INVALID_ARGUMENT', 'checking a trust root needs a crypto provider', { details: { field: 'providers' } });
    out.push(...trustRootSelfTests(deps.trustRoot, providers[0], deps.trustRootOptions));
  }
  if (deps.sandboxCanary !== undefined) out.push(...sandboxSelfTests(deps.sandboxCanary));
  return out;
}
