import { ForgeError, canonicalJson, concatBytes, fromHex, systemClock, toHex, utf8, type Clock, type Result } from '@forgeone/common';
import { countSignatures, roleKeys, type CryptoProvider, type SigningKey, type TrustRootDocument } from '@forgeone/crypto';
import { compilePolicy, type CompileTarget, type CompiledPolicy, type Decision, type Explanation } from './compile.js';
import { parsePolicy, type PolicyWarning } from './parse.js';
import { TighteningSchema, type CallContext, type IdentityCondition, type Policy, type Tightening, type Verdict } from './schema.js';

/** Domain-separation prefix of the bytes a policy bundle's signatures cover. */
export const POLICY_SIGNING_PREFIX = 'forgeone/policy/v1\0';

/** A signed policy: the document and detached signatures by keys of the trust root's `policy` role. */
export interface PolicyBundle {
  /** The policy document (as parsed JSON or YAML). */
  readonly policy: unknown;
  /** Signatures over `forgeone/policy/v1\0 ‖ canonical JSON of policy`. */
  readonly signatures: readonly { readonly keyId: string; readonly signature: string }[];
}

/**
 * The bytes a policy bundle's signatures cover.
 * @param policy - the policy document
 * @returns prefix ‖ canonical JSON
 */
export function policySigningBytes(policy: unknown): Uint8Array {
  return concatBytes(utf8(POLICY_SIGNING_PREFIX), utf8(canonicalJson(policy)));
}

/**
 * Add one key's signature to a bundle (replacing an earlier one by the same key).
 * @param bundle - a bundle, or a bare policy to start one
 * @param key - a key of the `policy` role
 * @returns the signed bundle
 */
export function signPolicyBundle(bundle: PolicyBundle | { policy: unknown }, key: SigningKey): PolicyBundle {
  const signatures = 'signatures' in bundle ? bundle.signatures.filter((s) => s.keyId !== key.keyId) : [];
  return { policy: bundle.policy, signatures: [...signatures, { keyId: key.keyId, signature: toHex(key.sign(policySigningBytes(bundle.policy))) }] };
}

/**
 * How a container's verdicts take effect (docs/policy.md §5.4).
 * - `enforce`: deny refuses, quarantine refuses and quarantines;
 * - `audit`: every call goes through, verdicts are recorded;
 * - `permissive`: every call goes through, deny and quarantine are recorded as warnings.
 */
export type EnforcementMode = 'enforce' | 'audit' | 'permissive';

/**
 * Whether a call goes through under a mode. Allocation-free.
 * @param decision - the decision
 * @param mode - the container's mode
 * @returns true when the call proceeds
 */
export function isAllowed(decision: Decision, mode: EnforcementMode): boolean {
  return mode !== 'enforce' || decision.verdict === 'allow' || decision.verdict === 'audit';
}

/**
 * Whether a decision quarantines the container under a mode.
 * @param decision - the decision
 * @param mode - the container's mode
 * @returns true only for a quarantine verdict in enforce mode
 */
export function shouldQuarantine(decision: Decision, mode: EnforcementMode): boolean {
  return mode === 'enforce' && decision.verdict === 'quarantine';
}

/**
 * Whether a decision is recorded as flagged (audit verdicts; and, outside enforce mode, the verdicts that
 * would have refused the call — warnings in permissive mode).
 * @param decision - the decision
 * @param mode - the container's mode
 * @returns true when the trace should flag the call
 */
export function isFlagged(decision: Decision, mode: EnforcementMode): boolean {
  return decision.verdict !== 'allow' || (mode !== 'enforce' && decision.rateLimited);
}

/** A container's live view of the engine's policy: follows every swap between one call and the next. */
export interface ContainerPolicy {
  /** The container's enforcement mode. */
  readonly mode: EnforcementMode;
  /** The program in force now. */
  readonly program: CompiledPolicy;
  /**
   * Decide one call on the program in force when the call starts (allocation-free).
   * @param syscallId - interned id
   * @param ctx - the call context
   * @returns the decision
   */
  decide(syscallId: number, ctx: CallContext): Decision;
  /**
   * Explain a call on the program in force.
   * @param syscallId - interned id
   * @param ctx - the call context
   * @returns the explanation
   */
  explain(syscallId: number, ctx: CallContext): Explanation;
  /**
   * Change the container's mode.
   * @param mode - the new mode
   */
  setMode(mode: EnforcementMode): void;
  /** Stop following swaps. */
  detach(): void;
}

/** A change of policy, for the audit log. */
export interface PolicyChange {
  /** What happened. */
  readonly kind: 'installed' | 'tightened' | 'reverted';
  /** Signed policy version in force after the change. */
  readonly version: number;
  /** Local revision (counts tightenings and reverts on top of the signed version). */
  readonly revision: number;
  /** Who did it. */
  readonly actor: string;
  /** When (ms). */
  readonly at: number;
  /** The tightening added or removed, if any. */
  readonly tightening?: Tightening;
  /** Key ids that signed, for installs. */
  readonly signers?: readonly string[];
}

/** What a tightening targets and how strictly. */
export interface TightenRequest {
  /** Syscall names or patterns. */
  readonly syscalls: readonly string[];
  /** Identities it applies to (subjects, tenants, roles, attributes); absent = every container. */
  readonly identity?: IdentityCondition;
  /** The step: audit, deny or quarantine. */
  readonly action: Tightening['action'];
  /** Why, for explanations. */
  readonly reason: string;
  /** Who asks (e.g. `diagnostics:anomaly`). */
  readonly actor: string;
}

/** The policy engine: the current policy, signed hot swaps, tightenings, and per-container programs. */
export interface PolicyEngine {
  /** The signed policy in force. */
  readonly policy: Policy;
  /** The tightenings in force. */
  readonly tightenings: readonly Tightening[];
  /** `{ version, revision }` of what is in force. */
  readonly version: { readonly version: number; readonly revision: number };
  /**
   * Compile the current policy for a container and keep it current across swaps.
   * @param target - identity and syscall table
   * @param mode - enforcement mode, default `enforce`
   * @returns the container's live policy
   */
  attach(target: CompileTarget, mode?: EnforcementMode): ContainerPolicy;
  /**
   * Verify and install a signed bundle: threshold of the trust root's `policy` role, version higher than the
   * current one. Every attached container switches atomically between two calls.
   * @param bundle - the bundle
   * @param actor - who installs it
   * @returns the new version and the policy's warnings, or the refusal
   */
  install(bundle: PolicyBundle, actor?: string): Result<{ version: number; warnings: readonly PolicyWarning[] }>;
  /**
   * Tighten a scope at runtime: a new revision whose verdicts are never looser than before.
   * @param request - scope and step
   * @returns the tightening
   */
  tighten(request: TightenRequest): Tightening;
  /**
   * Remove a tightening (a new revision).
   * @param id - the tightening id
   * @param actor - who reverts it
   * @throws ForgeError `NOT_FOUND`
   */
  revert(id: string, actor: string): void;
  /**
   * Subscribe to changes (the audit log does).
   * @param listener - called after each change
   * @returns unsubscribe
   */
  onChange(listener: (change: PolicyChange) => void): () => void;
}

/** Dependencies of {@link createPolicyEngine}. */
export interface PolicyEngineDeps {
  /** Verifies bundle signatures. */
  readonly provider: CryptoProvider;
  /** Its `policy` role signs bundles. */
  readonly trustRoot: TrustRootDocument;
  /** The first policy (already trusted: e.g. verified at boot, or built in). */
  readonly initial: Policy;
  /** Time source for tightenings. */
  readonly clock?: Clock;
}

/**
 * Verify a bundle against a trust root's `policy` role and the current version.
 * @param provider - verifies signatures
 * @param trustRoot - the trust root
 * @param bundle - the bundle
 * @param currentVersion - the version in force
 * @returns the parsed policy, warnings and signers, or the refusal (`POLICY_BUNDLE_SIGNATURE`, `POLICY_VERSION`, `POLICY_INVALID`)
 */
export function verifyPolicyBundle(
  provider: CryptoProvider,
  trustRoot: TrustRootDocument,
  bundle: PolicyBundle,
  currentVersion: number,
): Result<{ policy: Policy; warnings: readonly PolicyWarning[]; signers: readonly string[] }> {
  try {
    const role = trustRoot.signed.roles.policy;
    if (role === undefined) return { ok: false, error: new ForgeError('POLICY_BUNDLE_SIGNATURE', 'the trust root has no policy role') };
    if (!Array.isArray(bundle.signatures)) return { ok: false, error: new ForgeError('POLICY_BUNDLE_SIGNATURE', 'bundle carries no signature list') };
    const message = policySigningBytes(bundle.policy);
    const entries = bundle.signatures.slice(0, 64).map((s) => ({ keyId: String(s.keyId), signature: /^[0-9a-f]{128}$/.test(String(s.signature)) ? fromHex(String(s.signature)) : new Uint8Array(0) }));
    const q = countSignatures(provider, roleKeys(trustRoot.signed, 'policy'), new Set(trustRoot.signed.revoked), role.threshold, message, entries);
    if (!q.met) {
      return { ok: false, error: new ForgeError('POLICY_BUNDLE_SIGNATURE', `${q.valid.length} distinct policy-role signature(s) of ${q.threshold} required`, { details: { signers: q.valid, threshold: q.threshold, rejected: q.rejected } }) };
    }
    const { policy, warnings } = parsePolicy(bundle.policy);
    if (policy.version <= currentVersion) {
      return { ok: false, error: new ForgeError('POLICY_VERSION', `policy v${policy.version} is not newer than v${currentVersion}`, { details: { offered: policy.version, current: currentVersion } }) };
    }
    return { ok: true, value: { policy, warnings, signers: q.valid } };
  } catch (e) {
    return { ok: false, error: e instanceof ForgeError ? e : new ForgeError('POLICY_INVALID', (e as Error).message, { cause: e }) };
  }
}

/**
 * Create the default policy engine.
 * @param deps - provider, trust root, initial policy, clock
 * @returns the engine
 * @example
 * ```ts
 * const engine = createPolicyEngine({ provider, trustRoot, initial: parsePolicy(text).policy });
 * const live = engine.attach({ identity, syscalls });
 * live.decide(syscalls.id('wasi:cli/stdout'), ctx);
 * ```
 */
export function createPolicyEngine(deps: PolicyEngineDeps): PolicyEngine {
  const clock = deps.clock ?? systemClock;
  let policy = deps.initial;
  let tightenings: Tightening[] = [];
  let revision = 0;
  let counter = 0;
  const listeners = new Set<(c: PolicyChange) => void>();
  const attached = new Set<{ recompile(): void }>();

  function changed(change: Omit<PolicyChange, 'version' | 'revision' | 'at'>): void {
    for (const a of attached) a.recompile();
    const full: PolicyChange = { ...change, version: policy.version, revision, at: clock.now() };
    for (const l of listeners) l(full);
  }

  const engine: PolicyEngine = {
    get policy() {
      return policy;
    },
    get tightenings() {
      return tightenings;
    },
    get version() {
      return { version: policy.version, revision };
    },
    attach(target, initialMode = 'enforce') {
      let mode = initialMode;
      // The one reference every call reads: replaced whole, never mutated, so a call that has read it
      // finishes on that program and the next call reads the new one.
      let program = compilePolicy(policy, target, { tightenings });
      const handle = {
        recompile() {
          program = compilePolicy(policy, target, { tightenings, buckets: program.exportBuckets() });
        },
      };
      attached.add(handle);
      return {
        get mode() {
          return mode;
        },
        get program() {
          return program;
        },
        decide: (id, ctx) => program.decide(id, ctx),
        explain: (id, ctx) => program.explain(id, ctx),
        setMode(m) {
          mode = m;
        },
        detach() {
          attached.delete(handle);
        },
      };
    },
    install(bundle, actor = 'unknown') {
      const r = verifyPolicyBundle(deps.provider, deps.trustRoot, bundle, policy.version);
      if (!r.ok) return r;
      policy = r.value.policy;
      revision++;
      changed({ kind: 'installed', actor, signers: r.value.signers });
      return { ok: true, value: { version: policy.version, warnings: r.value.warnings } };
    },
    tighten(request) {
      const t = TighteningSchema.parse({
        id: `t${revision + 1}-${++counter}`,
        action: request.action,
        syscalls: [...request.syscalls],
        ...(request.identity === undefined ? {} : { identity: request.identity }),
        reason: request.reason,
        createdAt: clock.now(),
        actor: request.actor,
      });
      tightenings = [...tightenings, t];
      revision++;
      changed({ kind: 'tightened', actor: request.actor, tightening: t });
      return t;
    },
    revert(id, actor) {
      const t = tightenings.find((x) => x.id === id);
      if (t === undefined) throw new ForgeError('NOT_FOUND', `no tightening ${id}`);
      tightenings = tightenings.filter((x) => x.id !== id);
      revision++;
      changed({ kind: 'reverted', actor, tightening: t });
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return engine;
}

/** Verdicts from least to most strict. */
export const VERDICT_ORDER: readonly Verdict[] = ['allow', 'audit', 'deny', 'quarantine'];
