import { ForgeError } from '@forgeone/common';
import { ENV_NAME_PATTERN, type KernelConfig } from './schema.js';

/** The environment to read secrets from: `process.env` or a plain map in tests. */
export type SecretEnvironment = Readonly<Record<string, string | undefined>>;

/**
 * Read a secret from the environment variable a config field names (such as `api.jwtSecretEnv`).
 * @param variable - the environment variable's name
 * @param env - the environment; default `process.env`
 * @param field - the config field that named the variable, for the message
 * @returns the secret (never logged)
 * @throws ForgeError `CONFIG_SECRET_MISSING` when the variable is unset or empty; `INVALID_ARGUMENT` for a malformed name
 * @example
 * ```ts
 * const jwt = config.api.jwtSecretEnv === undefined ? undefined : readSecretEnv(config.api.jwtSecretEnv, process.env, 'api.jwtSecretEnv');
 * ```
 */
export function readSecretEnv(variable: string, env: SecretEnvironment = process.env, field?: string): string {
  if (!ENV_NAME_PATTERN.test(variable)) throw new ForgeError('INVALID_ARGUMENT', `"${variable}" is not an environment variable name`);
  const value = Object.hasOwn(env, variable) ? env[variable] : undefined;
  if (value === undefined || value === '') {
    const by = field === undefined ? '' : ` (named by ${field})`;
    throw new ForgeError('CONFIG_SECRET_MISSING', `environment variable ${variable}${by} is not set`, {
      details: field === undefined ? { env: variable } : { env: variable, field },
    });
  }
  return value;
}

/**
 * Resolve a named secret of the config (`secrets.<name>`) from the environment variable it references.
 * @param config - a parsed config
 * @param name - the secret's name under `secrets`
 * @param env - the environment; default `process.env`
 * @returns the secret's value (never logged)
 * @throws ForgeError `NOT_FOUND` when the config declares no such secret; `CONFIG_SECRET_MISSING` when its variable is unset or empty
 * @example
 * ```ts
 * const dbPassword = resolveSecret(config, 'db', process.env);
 * ```
 */
export function resolveSecret(config: KernelConfig, name: string, env: SecretEnvironment = process.env): string {
  const ref = Object.hasOwn(config.secrets, name) ? config.secrets[name] : undefined;
  if (ref === undefined) {
    throw new ForgeError('NOT_FOUND', `config v${config.version} declares no secret "${name}" (add secrets.${name}: { env: 'NAME' })`, { details: { name } });
  }
  return readSecretEnv(ref.env, env, `secrets.${name}.env`);
}
