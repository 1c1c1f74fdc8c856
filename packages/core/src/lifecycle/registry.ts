/**
 * The default {@link ContainerRegistry}: an in-memory index over a Store kv namespace.
 *
 * @packageDocumentation
 */
import { ForgeError, TrustLevel, isForgeError, isId, newId, systemClock, type IdentityContext } from '@forgeone/common';
import type { KvMap } from '@forgeone/store';
import type {
  ContainerFilter,
  ContainerRegistry,
  ContainerRegistryOptions,
  CorruptRecord,
  LaunchInput,
  RecoveryReport,
  StopOptions,
} from './ContainerRegistry.js';
import {
  DEFAULT_MAX_HISTORY,
  accountUsage,
  decodeRecord,
  encodeRecord,
  freezeRecord,
  restartRecord,
  transition,
  wasActive,
  type ContainerRecord,
  type PolicyRef,
  type StatusReason,
} from './record.js';
import { RESTART_POLICIES, isContainerStatus, isTerminalStatus, type ContainerStatus, type RestartPolicy } from './status.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HEX64 = /^[0-9a-f]{64}$/;

function invalid(field: string, message: string): ForgeError {
  return new ForgeError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

function checkString(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) throw invalid(field, `must be a string of 1-${max} characters`);
  return value;
}

function checkIdentity(identity: IdentityContext | undefined): IdentityContext {
  if (typeof identity !== 'object' || identity === null) throw invalid('identity', 'must be an identity from createIdentity');
  checkString('identity.subject', identity.subject, 255);
  checkString('identity.tenant', identity.tenant, 255);
  const level = identity.trust?.level;
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > TrustLevel.Root) {
    throw invalid('identity.trust.level', `must be a trust level 0-5, got ${String(level)}`);
  }
  if (level === TrustLevel.Compromised) {
    throw new ForgeError('IDENTITY_COMPROMISED', `identity ${identity.subject} is compromised; it never runs`, {
      details: { subject: identity.subject, tenant: identity.tenant },
    });
  }
  return identity;
}

function checkPolicy(policy: PolicyRef | undefined): PolicyRef {
  if (typeof policy !== 'object' || policy === null) throw invalid('policy', 'must be { name, version }');
  const name = checkString('policy.name', policy.name, 255);
  if (!Number.isSafeInteger(policy.version) || policy.version < 1) throw invalid('policy.version', `must be a positive integer, got ${String(policy.version)}`);
  return { name, version: policy.version };
}

function defaultName(packageName: string, id: string): string {
  const base = packageName.replace(/^@/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 48) || 'ctr';
  return `${base}-${id.slice(-6).toLowerCase()}`;
}

/**
 * Open the registry over a store: every stored record is loaded (unreadable ones are listed in
 * {@link ContainerRegistry.corrupt} and left in place). Call {@link ContainerRegistry.recover} next when this
 * is a kernel start.
 * @param options - store, clock, namespace, history bound
 * @returns the registry
 * @throws ForgeError `INVALID_ARGUMENT` for bad options; the store's `IO_ERROR`/`STATE_CORRUPT` when the namespace cannot be opened
 * @example
 * ```ts
 * const registry = await createContainerRegistry({ store: createMemoryStore() });
 * const rec = await registry.launch({ package: verified, identity, policy: { name: 'default', version: 1 } });
 * await registry.start(rec.id);
 * ```
 */
export async function createContainerRegistry(options: ContainerRegistryOptions): Promise<ContainerRegistry> {
  if (typeof options !== 'object' || options === null || typeof options.store?.kv !== 'function') throw invalid('store', 'a Store is required');
  const clock = options.clock ?? systemClock;
  const maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
  if (!Number.isSafeInteger(maxHistory) || maxHistory < 1) throw invalid('maxHistory', `must be a positive integer, got ${String(options.maxHistory)}`);
  const kv: KvMap = await options.store.kv(options.namespace ?? 'containers');

  const records = new Map<string, ContainerRecord>();
  const corrupt: CorruptRecord[] = [];
  for (const key of await kv.list()) {
    const bytes = await kv.get(key);
    if (bytes === undefined) continue;
    try {
      records.set(key, decodeRecord(bytes, key));
    } catch (e) {
      if (!isForgeError(e) || e.code !== 'STATE_CORRUPT') throw e;
      corrupt.push(Object.freeze({ key, message: e.message }));
    }
  }
  Object.freeze(corrupt);

  // One change at a time, in call order; the cache changes only after the store has the change.
  let chain: Promise<unknown> = Promise.resolve();
  function serial<T>(op: () => Promise<T>): Promise<T> {
    const run = chain.then(op, op);
    chain = run.catch(() => undefined);
    return run;
  }

  function mustGet(id: string): ContainerRecord {
    const rec = typeof id === 'string' ? records.get(id) : undefined;
    if (rec === undefined) throw new ForgeError('NOT_FOUND', `no container ${String(id)}`, { details: { id } });
    return rec;
  }

  async function save(rec: ContainerRecord): Promise<ContainerRecord> {
    await kv.set(rec.id, encodeRecord(rec));
    records.set(rec.id, rec);
    return rec;
  }

  function moveNow(id: string, to: ContainerStatus, reason?: StatusReason, graceMs?: number): Promise<ContainerRecord> {
    if (!isContainerStatus(to)) throw invalid('to', `unknown container status ${JSON.stringify(to)}`);
    const next = transition(mustGet(id), to, {
      at: clock.now(),
      maxHistory,
      ...(reason === undefined ? {} : { reason }),
      ...(graceMs === undefined ? {} : { graceMs }),
    });
    return save(next);
  }

  function move(id: string, to: ContainerStatus, reason?: StatusReason, graceMs?: number): Promise<ContainerRecord> {
    return serial(async () => moveNow(id, to, reason, graceMs));
  }

  function expectFrom(id: string, allowed: readonly ContainerStatus[], to: ContainerStatus): void {
    const rec = mustGet(id);
    if (!allowed.includes(rec.status)) {
      throw new ForgeError('CONTAINER_INVALID_TRANSITION', `container ${id} cannot go from ${rec.status} to ${to} this way`, {
        details: { id, from: rec.status, to, allowed: [...allowed] },
      });
    }
  }

  let report: RecoveryReport | undefined;

  const registry: ContainerRegistry = {
    corrupt,

    launch(input: LaunchInput) {
      return serial(async () => {
        if (typeof input !== 'object' || input === null) throw invalid('input', 'must be an object');
        const pkg = input.package;
        if (typeof pkg !== 'object' || pkg === null || typeof pkg.manifest !== 'object' || pkg.manifest === null) {
          throw invalid('package', 'must be a verified package { manifest: { name, version }, digest }');
        }
        const packageName = checkString('package.manifest.name', pkg.manifest.name, 214);
        const packageVersion = checkString('package.manifest.version', pkg.manifest.version, 256);
        if (typeof pkg.digest !== 'string' || !HEX64.test(pkg.digest)) throw invalid('package.digest', 'must be 64 lowercase hex digits');
        const identity = checkIdentity(input.identity);
        const policy = checkPolicy(input.policy);
        const restartPolicy: RestartPolicy = input.restartPolicy ?? 'never';
        if (!(RESTART_POLICIES as readonly string[]).includes(restartPolicy)) {
          throw invalid('restartPolicy', `must be one of ${RESTART_POLICIES.join(', ')}, got ${JSON.stringify(restartPolicy)}`);
        }
        const now = clock.now();
        let id: string;
        if (input.id !== undefined) {
          if (!isId(input.id, 'ctr')) throw invalid('id', `must be a ctr_ id, got ${JSON.stringify(input.id)}`);
          if (records.has(input.id)) throw new ForgeError('ALREADY_EXISTS', `container ${input.id} already exists`, { details: { id: input.id } });
          id = input.id;
        } else {
          do id = newId('ctr', now);
          while (records.has(id));
        }
        const name = input.name ?? defaultName(packageName, id);
        if (typeof name !== 'string' || !NAME.test(name)) throw invalid('name', `must be 1-63 of A-Z a-z 0-9 . _ - starting alphanumeric, got ${JSON.stringify(name)}`);
        for (const r of records.values()) {
          if (r.name === name && !isTerminalStatus(r.status)) {
            throw new ForgeError('ALREADY_EXISTS', `a container named ${name} is already ${r.status} (${r.id})`, { details: { name, id: r.id } });
          }
        }
        const rec = freezeRecord({
          id,
          name,
          packageName,
          packageVersion,
          packageHash: pkg.digest,
          identity: { subject: identity.subject, tenant: identity.tenant, trustLevel: identity.trust.level },
          policy,
          restartPolicy,
          status: 'creating',
          createdAt: now,
          updatedAt: now,
          restarts: 0,
          resources: { cpuMs: 0, memoryBytesPeak: 0, calls: 0, denials: 0 },
          transitions: 0,
          history: [{ to: 'creating', at: now }],
        });
        return save(rec);
      });
    },

    get(id) {
      return records.get(id);
    },

    list(filter: ContainerFilter = {}) {
      const statuses = filter.status === undefined ? undefined : typeof filter.status === 'string' ? [filter.status] : filter.status;
      return [...records.values()]
        .filter((r) => (statuses === undefined || statuses.includes(r.status)) && (filter.tenant === undefined || r.identity.tenant === filter.tenant))
        .sort((a, b) => a.createdAt - b.createdAt); // stable: launch order within one millisecond
    },

    transition(id, to, reason) {
      return move(id, to, reason);
    },

    start(id) {
      return serial(async () => {
        expectFrom(id, ['creating'], 'running');
        return moveNow(id, 'running');
      });
    },

    pause(id, reason) {
      return move(id, 'paused', reason);
    },

    resume(id, reason) {
      return serial(async () => {
        expectFrom(id, ['paused', 'quarantined'], 'running');
        return moveNow(id, 'running', reason);
      });
    },

    quarantine(id, reason) {
      return move(id, 'quarantined', reason);
    },

    stop(id, stopOptions: StopOptions = {}) {
      return move(id, 'stopping', stopOptions.reason, stopOptions.graceMs ?? 0);
    },

    markStopped(id, reason) {
      return move(id, 'stopped', reason);
    },

    fail(id, reason) {
      return move(id, 'failed', reason);
    },

    restart(id, reason) {
      return serial(async () => save(restartRecord(mustGet(id), { at: clock.now(), maxHistory, ...(reason === undefined ? {} : { reason }) })));
    },

    account(id, usage) {
      return serial(async () => save(accountUsage(mustGet(id), usage, clock.now())));
    },

    overdueStops(now = clock.now()) {
      return registry.list({ status: 'stopping' }).filter((r) => r.stopDeadline !== undefined && r.stopDeadline <= now);
    },

    recover() {
      return serial(async () => {
        if (report !== undefined) return report;
        const at = clock.now();
        const failed: ContainerRecord[] = [];
        const toRestart: ContainerRecord[] = [];
        const quarantined: ContainerRecord[] = [];
        const updates: ContainerRecord[] = [];
        for (const rec of registry.list()) {
          if (rec.status === 'quarantined') {
            quarantined.push(rec);
            continue;
          }
          if (!wasActive(rec.status)) continue;
          const reason: StatusReason = { code: 'KERNEL_RESTART', message: `the kernel restarted while the container was ${rec.status}` };
          const down = transition(rec, 'failed', { at, reason, maxHistory });
          if (rec.status !== 'stopping' && rec.restartPolicy !== 'never') {
            const again = restartRecord(down, {
              at,
              maxHistory,
              reason: { code: 'KERNEL_RESTART', message: `restarted by restart policy ${rec.restartPolicy}` },
            });
            toRestart.push(again);
            updates.push(again);
          } else {
            failed.push(down);
            updates.push(down);
          }
        }
        await Promise.all(updates.map((r) => kv.set(r.id, encodeRecord(r))));
        for (const r of updates) records.set(r.id, r);
        report = Object.freeze({
          failed: Object.freeze(failed),
          toRestart: Object.freeze(toRestart),
          quarantined: Object.freeze(quarantined),
          corrupt,
        });
        return report;
      });
    },

    remove(id) {
      return serial(async () => {
        const rec = records.get(id);
        if (rec === undefined) return false;
        if (!isTerminalStatus(rec.status)) {
          throw new ForgeError('CONTAINER_INVALID_TRANSITION', `container ${id} is ${rec.status}; only stopped or failed containers can be removed`, {
            details: { id, from: rec.status },
          });
        }
        const existed = await kv.delete(id);
        records.delete(id);
        return existed;
      });
    },
  };
  return registry;
}
