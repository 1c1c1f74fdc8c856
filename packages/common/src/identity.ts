import { ForgeError } from './errors.js';
import { trustVector, type TrustVector } from './trust.js';

/**
 * Who is acting: the subject and tenant, its roles and attributes, and how far it is trusted.
 * Policy decisions read this; it is immutable once built.
 */
export interface IdentityContext {
  /** The acting subject, e.g. `plugin:hello` or `user:alice`. */
  readonly subject: string;
  /** The tenant the subject belongs to. */
  readonly tenant: string;
  /** Roles held, sorted and without duplicates. */
  readonly roles: readonly string[];
  /** Free-form string attributes (region, team, package name). */
  readonly attributes: Readonly<Record<string, string>>;
  /** How far the subject is trusted. */
  readonly trust: TrustVector;
}

/** Input for {@link createIdentity}; everything but the subject has a default. */
export interface IdentityInit {
  /** The acting subject. */
  readonly subject: string;
  /** The tenant; default `"default"`. */
  readonly tenant?: string;
  /** Roles; default none. */
  readonly roles?: readonly string[];
  /** Attributes; default none. */
  readonly attributes?: Readonly<Record<string, string>>;
  /** Trust; default Untrusted. */
  readonly trust?: TrustVector;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,254}$/;

function checkName(kind: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new ForgeError('INVALID_ARGUMENT', `invalid ${kind}: ${JSON.stringify(value)}`, { details: { field: kind } });
  }
  return value;
}

/**
 * Build a validated, frozen identity. Names are 1-255 characters of `[A-Za-z0-9._:@/-]`, starting
 * alphanumeric, so they are safe in logs, paths and policy patterns.
 * @param init - the fields
 * @returns a frozen identity
 * @throws ForgeError `INVALID_ARGUMENT` naming the bad field
 * @example
 * ```ts
 * const id = createIdentity({ subject: 'plugin:hello', tenant: 'acme', roles: ['plugin'] });
 * ```
 */
export function createIdentity(init: IdentityInit): IdentityContext {
  const subject = checkName('subject', init.subject);
  const tenant = checkName('tenant', init.tenant ?? 'default');
  const roles = [...new Set((init.roles ?? []).map((r) => checkName('role', r)))].sort();
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(init.attributes ?? {})) {
    checkName('attribute name', k);
    if (typeof v !== 'string' || v.length > 1024) {
      throw new ForgeError('INVALID_ARGUMENT', `invalid attribute value for ${k}`, { details: { field: `attributes.${k}` } });
    }
    attributes[k] = v;
  }
  const trust = init.trust ?? trustVector('Untrusted');
  return Object.freeze({
    subject,
    tenant,
    roles: Object.freeze(roles),
    attributes: Object.freeze(attributes),
    trust: Object.freeze({ level: trust.level, score: trust.score }),
  });
}
