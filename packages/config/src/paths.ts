import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { KernelConfig } from './schema.js';

/** The config's file paths made absolute. */
export interface ResolvedConfigPaths {
  /** The kernel's home directory. */
  readonly home: string;
  /** The durable store. */
  readonly store: string;
  /** Installed packages. */
  readonly packages: string;
  /** The trust root document. */
  readonly trustRoot: string;
  /** The signed policy bundle (`policy.bundle`). */
  readonly policyBundle: string;
  /** Known-good boot measurements (`boot.goldenMeasurements`), when configured. */
  readonly goldenMeasurements?: string;
  /** The TLS certificate (`api.tls.certFile`), when configured. */
  readonly tlsCertFile?: string;
}

/** Options for {@link resolveConfigPaths}. */
export interface ResolveConfigPathsOptions {
  /** What `~` stands for; default the user's home directory. */
  readonly userHome?: string;
  /** What a relative `paths.home` is relative to; default the current directory. */
  readonly cwd?: string;
}

function expandHome(p: string, userHome: string): string {
  if (p === '~') return userHome;
  if (p.startsWith('~/')) return join(userHome, p.slice(2));
  return p;
}

/**
 * Make the config's paths absolute: `~` in `paths.home` becomes the user's home directory, a relative home is
 * taken from `cwd`, and every other relative path is relative to the home directory.
 * @param config - a parsed config
 * @param options - user home and working directory
 * @returns absolute paths
 * @example
 * ```ts
 * resolveConfigPaths(defaultConfig(), { userHome: '/home/ada' }).store; // '/home/ada/.forgeone/store'
 * ```
 */
export function resolveConfigPaths(config: KernelConfig, options: ResolveConfigPathsOptions = {}): ResolvedConfigPaths {
  const userHome = options.userHome ?? homedir();
  const cwd = options.cwd ?? process.cwd();
  const home = resolve(cwd, expandHome(config.paths.home, userHome));
  const under = (p: string): string => {
    const expanded = expandHome(p, userHome);
    return isAbsolute(expanded) ? resolve(expanded) : resolve(home, expanded);
  };
  return {
    home,
    store: under(config.paths.store),
    packages: under(config.paths.packages),
    trustRoot: under(config.paths.trustRoot),
    policyBundle: under(config.policy.bundle),
    ...(config.boot.goldenMeasurements === undefined ? {} : { goldenMeasurements: under(config.boot.goldenMeasurements) }),
    ...(config.api.tls === undefined ? {} : { tlsCertFile: under(config.api.tls.certFile) }),
  };
}
