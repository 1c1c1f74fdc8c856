/**
 * `@forgeone/config`: the kernel configuration — a strict zod schema with good defaults, config files signed
 * by the trust root's `config` role, hot reload that accepts only a valid signature and a strictly higher
 * version (every decision audited), and secrets named by environment variable, never stored in files.
 *
 * @packageDocumentation
 */
export {
  KernelConfigSchema,
  NodeSectionSchema,
  PathsSectionSchema,
  BootSectionSchema,
  ApiSectionSchema,
  TlsSectionSchema,
  SchedulerSectionSchema,
  SandboxSectionSchema,
  ObserverSectionSchema,
  PolicySectionSchema,
  FederationSectionSchema,
  SecretsSectionSchema,
  SecretRefSchema,
  EnvNameSchema,
  ENV_NAME_PATTERN,
  SECRET_WORDS,
  looksLikeSecretName,
  defaultConfig,
} from './schema.js';
export type { KernelConfig, KernelConfigInput, SecretRef } from './schema.js';
export { parseConfig, configIssues, configInvalid, parseJsonText } from './parse.js';
export type { ConfigIssue, ParseConfigOptions } from './parse.js';
export { resolveSecret, readSecretEnv } from './secrets.js';
export type { SecretEnvironment } from './secrets.js';
export { resolveConfigPaths } from './paths.js';
export type { ResolvedConfigPaths, ResolveConfigPathsOptions } from './paths.js';
export {
  CONFIG_SIGNING_PREFIX,
  CONFIG_ROLE,
  SignedConfigBodySchema,
  SignedConfigDocumentSchema,
  configSigningBytes,
  addConfigSignature,
  signConfig,
  verifyConfig,
  writeSignedConfig,
} from './signed.js';
export type { SignedConfigBody, SignedConfigDocument, VerifyConfigOptions, VerifiedConfig } from './signed.js';
export type { ConfigSource, ConfigAudit, ConfigAuditEvent, ConfigEvent, ConfigListener, ConfigReloadOutcome } from './ConfigSource.js';
export type { ConfigCallbacks } from './decisions.js';
export { createFileConfigSource, MAX_CONFIG_FILE_BYTES } from './FileConfigSource.js';
export type { FileConfigSourceOptions } from './FileConfigSource.js';
export { createStaticConfigSource } from './StaticConfigSource.js';
export type { StaticConfigSource } from './StaticConfigSource.js';
