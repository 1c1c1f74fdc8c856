import { z } from 'zod';

/**
 * Words that mark a field name as holding a secret. A name is split into words at camelCase humps and at
 * `_`, `-` and `.` (`apiKey` → `api key`, `DB_PASSWORD` → `db password`), so `keyboard` or `monkey` do not match.
 */
export const SECRET_WORDS: readonly string[] = ['secret', 'secrets', 'password', 'passwd', 'passphrase', 'pwd', 'token', 'tokens', 'key', 'keys', 'apikey', 'privatekey', 'credential', 'credentials', 'creds'];

const SECRET_WORD_SET = new Set(SECRET_WORDS);

/**
 * Whether a field name looks like it holds a secret (see {@link SECRET_WORDS}).
 * @param name - a field or map key name
 * @returns true when one of its words is a secret word
 * @example
 * ```ts
 * looksLikeSecretName('dbPassword'); // true
 * looksLikeSecretName('keyboard');   // false
 * ```
 */
export function looksLikeSecretName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[\s_.-]+/)
    .filter((w) => w !== '');
  return words.some((w) => SECRET_WORD_SET.has(w));
}

/** The form of an environment variable name a config may reference: `FORGEONE_JWT_SECRET`. */
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/;

const ENV_NAME_MESSAGE = 'expected the NAME of an environment variable (upper case letters, digits and _, e.g. FORGEONE_JWT_SECRET), never the secret itself';

const positiveInt = (max: number = Number.MAX_SAFE_INTEGER) =>
  z
    .number({ error: 'expected a positive integer' })
    .int({ error: 'expected a positive integer' })
    .min(1, { error: 'expected a positive integer' })
    .max(max, { error: `expected a positive integer of at most ${max}` });

const nonNegativeInt = (max: number) =>
  z
    .number({ error: 'expected a non-negative integer' })
    .int({ error: 'expected a non-negative integer' })
    .min(0, { error: 'expected a non-negative integer' })
    .max(max, { error: `expected an integer of at most ${max}` });

const bool = () => z.boolean({ error: 'expected true or false' });

const text = (what: string, max = 256) =>
  z
    .string({ error: `expected ${what}` })
    .min(1, { error: `expected ${what}, got an empty string` })
    .max(max, { error: `expected ${what} of at most ${max} characters` })
    .refine((s) => !s.includes('\0'), { error: `expected ${what} without NUL characters` });

const pathString = () => text('a file path', 4096);

/** The NAME of an environment variable, as config fields ending in `Env` hold it. */
export const EnvNameSchema = z.string({ error: ENV_NAME_MESSAGE }).regex(ENV_NAME_PATTERN, { error: ENV_NAME_MESSAGE });

/** A reference to a secret: the environment variable that holds it. The only way a config names a secret. */
export const SecretRefSchema = z.strictObject(
  { env: EnvNameSchema },
  { error: "inline secret values are not allowed; reference an environment variable instead: { env: 'NAME' }" },
);

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const SECRET_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,62}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[?[0-9A-Fa-f:.]+\]?)$/;

/** The node: who this kernel is. */
export const NodeSectionSchema = z
  .strictObject({
    /** Stable node id, unique within a federation. */
    id: z.string({ error: 'expected a node id' }).regex(NODE_ID, { error: 'expected a node id: letters, digits, ., _ and -, at most 63 characters' }).default('local'),
    /** Human-readable name. */
    name: text('a node name', 128).default('forgeone'),
    /** Free-form labels used for placement (`zone: eu-1`). Never secrets. */
    labels: z
      .record(z.string().regex(LABEL_KEY, { error: 'expected a label name: letters, digits, ., _, / and -, at most 63 characters' }), text('a label value', 256))
      .default({})
      .superRefine((labels, ctx) => {
        for (const k of Object.keys(labels)) {
          if (looksLikeSecretName(k)) {
            ctx.addIssue({ code: 'custom', path: [k], message: "looks like an inline secret; labels are not secret: put it under `secrets` as { env: 'NAME' }" });
          }
        }
      }),
    /** Where the node runs (data centre, region), for placement. */
    location: text('a location', 128).optional(),
  })
  .prefault({});

/** Where the kernel keeps its files. Relative paths are relative to `home`; see `resolveConfigPaths`. */
export const PathsSectionSchema = z
  .strictObject({
    /** The kernel's home directory; `~` stands for the user's home directory. */
    home: pathString().default('~/.forgeone'),
    /** The durable store (audit log, execution DNA, state). */
    store: pathString().default('store'),
    /** Installed `.forgepkg` packages. */
    packages: pathString().default('packages'),
    /** The trust root document. */
    trustRoot: pathString().default('trust-root.json'),
  })
  .prefault({});

/** How the kernel boots. */
export const BootSectionSchema = z
  .strictObject({
    /** Whether a kernel whose measurements do not match may keep running degraded instead of entering recovery mode. */
    allowDegraded: bool().default(false),
    /** File of known-good boot measurements to compare against. */
    goldenMeasurements: pathString().optional(),
  })
  .prefault({});

/** TLS for the HTTP API: the certificate from a file, the private key from the environment. */
export const TlsSectionSchema = z.strictObject({
  /** PEM certificate chain file. */
  certFile: pathString(),
  /** NAME of the environment variable holding the PEM private key. */
  keyEnv: EnvNameSchema,
});

/** The HTTP API (/v1). */
export const ApiSectionSchema = z
  .strictObject({
    /** Address to listen on; loopback by default. */
    host: z.string({ error: 'expected a host name or IP address' }).max(253, { error: 'expected a host name of at most 253 characters' }).regex(HOST, { error: 'expected a host name or IP address' }).default('127.0.0.1'),
    /** TCP port; 0 picks a free port. */
    port: nonNegativeInt(65535).default(7700),
    /** NAME of the environment variable holding the JWT signing secret; without it the API accepts no bearer tokens. */
    jwtSecretEnv: EnvNameSchema.optional(),
    /** Requests per minute per client. */
    rateLimit: z.strictObject({ perMinute: positiveInt(1_000_000).default(600) }).prefault({}),
    /** TLS; without it the API speaks plain HTTP (keep it on loopback). */
    tls: TlsSectionSchema.optional(),
  })
  .prefault({});

/** The scheduler: how much work the node takes. */
export const SchedulerSectionSchema = z
  .strictObject({
    /** Containers that may run at once. */
    cpuSlots: positiveInt(4096).default(4),
    /** Memory (MiB) the scheduler hands out to containers in total. */
    memoryMb: positiveInt(16 * 1024 * 1024).default(2048),
    /** Containers that may exist (running or waiting). */
    maxInstances: positiveInt(1_000_000).default(64),
    /** Waiting time (ms) after which a queued container gains one priority step, so nothing starves. */
    agingMs: positiveInt(24 * 3600 * 1000).default(5000),
  })
  .prefault({});

/** Sandbox limits applied to every container unless its grant lowers them. */
export const SandboxSectionSchema = z
  .strictObject({
    /** Pre-warmed worker threads. */
    poolSize: nonNegativeInt(1024).default(2),
    /** CPU budget (ms) per call into a container; the worker is terminated beyond it. */
    cpuBudgetMs: positiveInt(24 * 3600 * 1000).default(5000),
    /** Linear memory limit (MiB) per container; wasm32 allows at most 4096. */
    memoryLimitMb: positiveInt(4096).default(256),
    /** Bytes a container may write to stdout and stderr together. */
    maxOutputBytes: positiveInt(1024 * 1024 * 1024).default(1024 * 1024),
    /** Open file descriptors per container. */
    maxOpenFiles: positiveInt(65536).default(64),
  })
  .prefault({});

/** Execution DNA sealing. */
export const ObserverSectionSchema = z
  .strictObject({
    /** Records per hashed block. */
    blockSize: positiveInt(1 << 20).default(256),
    /** Blocks between signed checkpoints. */
    checkpointEvery: positiveInt(1 << 20).default(16),
  })
  .prefault({});

/** The policy in force at boot. */
export const PolicySectionSchema = z
  .strictObject({
    /** Signed policy bundle file. */
    bundle: pathString().default('policy.json'),
    /** `enforce` refuses denied calls; `audit` lets them through and records the verdict. */
    mode: z.enum(['enforce', 'audit'], { error: "expected 'enforce' or 'audit'" }).default('enforce'),
  })
  .prefault({});

/** Federation through NATS JetStream. */
export const FederationSectionSchema = z
  .strictObject({
    /** Whether this node joins a federation. */
    enabled: bool().default(false),
    /** NATS server URL (`nats://`, `tls://`, `ws://` or `wss://`); required when enabled. */
    natsUrl: z
      .string({ error: 'expected a NATS URL' })
      .max(2048, { error: 'expected a NATS URL of at most 2048 characters' })
      .refine((u) => /^(nats|tls|ws|wss):\/\/[^\s/]+/.test(u) && URL.canParse(u), { error: 'expected a NATS URL such as nats://127.0.0.1:4222' })
      .refine((u) => !URL.canParse(u) || new URL(u).password === '', { error: 'credentials in the URL are inline secrets; use credentialsEnv' })
      .optional(),
    /** NAME of the environment variable holding the NATS credentials (a `.creds` file's content). */
    credentialsEnv: EnvNameSchema.optional(),
  })
  .prefault({})
  .superRefine((f, ctx) => {
    if (f.enabled && f.natsUrl === undefined) ctx.addIssue({ code: 'custom', path: ['natsUrl'], message: 'required when federation.enabled is true' });
  });

/** Named secrets, each only a reference to the environment variable that holds it. */
export const SecretsSectionSchema = z
  .record(z.string().regex(SECRET_NAME, { error: 'expected a secret name: a letter, then letters, digits, ., _ and -, at most 63 characters' }), SecretRefSchema, {
    error: "expected an object of named secret references: { name: { env: 'NAME' } }",
  })
  .default({});

/**
 * The kernel configuration. Every object is strict (an unknown key, such as a typo, is an error) and every
 * field has a default, so `{}` is a valid config. Secrets are never values in the config: it names the
 * environment variables that hold them (`secrets`, and the fields ending in `Env`).
 *
 * Cross-field rules (checked once every field is well-formed): `sandbox.memoryLimitMb` fits in
 * `scheduler.memoryMb`, and `federation.natsUrl` is set when federation is enabled.
 */
export const KernelConfigSchema = z
  .strictObject({
    /** Monotonic version: a reload is accepted only with a strictly higher one. */
    version: positiveInt().default(1),
    node: NodeSectionSchema,
    paths: PathsSectionSchema,
    boot: BootSectionSchema,
    api: ApiSectionSchema,
    scheduler: SchedulerSectionSchema,
    sandbox: SandboxSectionSchema,
    observer: ObserverSectionSchema,
    policy: PolicySectionSchema,
    federation: FederationSectionSchema,
    secrets: SecretsSectionSchema,
  }, { error: 'expected a config object' })
  .superRefine((c, ctx) => {
    if (c.sandbox.memoryLimitMb > c.scheduler.memoryMb) {
      ctx.addIssue({ code: 'custom', path: ['sandbox', 'memoryLimitMb'], message: `${c.sandbox.memoryLimitMb} exceeds scheduler.memoryMb (${c.scheduler.memoryMb})` });
    }
  });

/** A parsed kernel configuration with every default applied. */
export type KernelConfig = z.output<typeof KernelConfigSchema>;

/** What a config file may contain before defaults are applied (every field optional). */
export type KernelConfigInput = z.input<typeof KernelConfigSchema>;

/** A reference to a secret held in an environment variable. */
export type SecretRef = z.output<typeof SecretRefSchema>;

/**
 * The default configuration: loopback API on port 7700, enforce mode, no degraded boot, no federation, no secrets.
 * @returns a fresh config object (safe to modify)
 * @example
 * ```ts
 * defaultConfig().api.port; // 7700
 * ```
 */
export function defaultConfig(): KernelConfig {
  return KernelConfigSchema.parse({});
}
