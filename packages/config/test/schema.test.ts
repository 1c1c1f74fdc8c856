import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isForgeError } from '@forgeone/common';
import { KernelConfigSchema, defaultConfig, looksLikeSecretName, parseConfig, readSecretEnv, resolveConfigPaths, resolveSecret } from '../src/index.js';
import { issuesOf, thrown } from './helpers.js';

describe('defaults', () => {
  it('an empty config parses to the documented defaults', () => {
    const c = parseConfig({});
    expect(c).toEqual(defaultConfig());
    expect(c.version).toBe(1);
    expect(c.boot.allowDegraded).toBe(false);
    expect(c.api).toEqual({ host: '127.0.0.1', port: 7700, rateLimit: { perMinute: 600 } });
    expect(c.policy.mode).toBe('enforce');
    expect(c.federation.enabled).toBe(false);
    expect(c.secrets).toEqual({});
    expect(c.observer).toEqual({ blockSize: 256, checkpointEvery: 16 });
  });

  it('a partial section keeps the defaults of its other fields', () => {
    const c = parseConfig('{"version": 7, "scheduler": {"cpuSlots": 16}, "api": {"rateLimit": {}}}');
    expect(c.version).toBe(7);
    expect(c.scheduler).toEqual({ cpuSlots: 16, memoryMb: 2048, maxInstances: 64, agingMs: 5000 });
    expect(c.api.rateLimit.perMinute).toBe(600);
  });

  it('defaultConfig returns a fresh object each time', () => {
    const a = defaultConfig();
    a.api.port = 1;
    expect(defaultConfig().api.port).toBe(7700);
  });

  it('a full config with every optional field parses unchanged', () => {
    const full = {
      version: 3,
      node: { id: 'eu-1.a', name: 'edge A', labels: { zone: 'eu-1', 'topology.io/rack': 'r7' }, location: 'Frankfurt' },
      paths: { home: '/var/lib/forgeone', store: 'store', packages: '/opt/pkgs', trustRoot: 'root.json' },
      boot: { allowDegraded: true, goldenMeasurements: 'golden.json' },
      api: { host: 'api.example.org', port: 0, jwtSecretEnv: 'FORGEONE_JWT', rateLimit: { perMinute: 10 }, tls: { certFile: 'cert.pem', keyEnv: 'TLS_KEY' } },
      scheduler: { cpuSlots: 2, memoryMb: 512, maxInstances: 4, agingMs: 100 },
      sandbox: { poolSize: 0, cpuBudgetMs: 10, memoryLimitMb: 512, maxOutputBytes: 10, maxOpenFiles: 3 },
      observer: { blockSize: 64, checkpointEvery: 1 },
      policy: { bundle: 'p.json', mode: 'audit' },
      federation: { enabled: true, natsUrl: 'nats://127.0.0.1:4222', credentialsEnv: 'NATS_CREDS' },
      secrets: { db: { env: 'DB_PASSWORD' } },
    } as const;
    expect(parseConfig(full)).toEqual(full);
  });
});

describe('bad values name the exact field', () => {
  const cases: [string, unknown, string][] = [
    ['version', { version: 0 }, 'version: expected a positive integer'],
    ['version fraction', { version: 1.5 }, 'version: expected a positive integer'],
    ['node.id', { node: { id: 'has space' } }, 'node.id: expected a node id'],
    ['node.name', { node: { name: '' } }, 'node.name: expected a node name, got an empty string'],
    ['node.labels value', { node: { labels: { zone: 5 } } }, 'node.labels.zone: expected a label value'],
    ['node.labels key', { node: { labels: { 'bad key!': 'x' } } }, 'node.labels.bad key!: expected a label name'],
    ['node.location', { node: { location: '' } }, 'node.location: expected a location'],
    ['paths.store', { paths: { store: 42 } }, 'paths.store: expected a file path'],
    ['paths.trustRoot NUL', { paths: { trustRoot: 'a\0b' } }, 'paths.trustRoot: expected a file path without NUL characters'],
    ['boot.allowDegraded', { boot: { allowDegraded: 'yes' } }, 'boot.allowDegraded: expected true or false'],
    ['boot.goldenMeasurements', { boot: { goldenMeasurements: '' } }, 'boot.goldenMeasurements: expected a file path'],
    ['api.host', { api: { host: 'not a host' } }, 'api.host: expected a host name or IP address'],
    ['api.port', { api: { port: 65536 } }, 'api.port: expected an integer of at most 65535'],
    ['api.port negative', { api: { port: -1 } }, 'api.port: expected a non-negative integer'],
    ['api.rateLimit.perMinute', { api: { rateLimit: { perMinute: 0 } } }, 'api.rateLimit.perMinute: expected a positive integer'],
    ['api.tls.certFile', { api: { tls: { keyEnv: 'TLS_KEY' } } }, 'api.tls.certFile: required: expected a file path'],
    ['api.tls.keyEnv', { api: { tls: { certFile: 'c.pem', keyEnv: 'lower' } } }, 'api.tls.keyEnv: expected the NAME of an environment variable'],
    ['scheduler.cpuSlots', { scheduler: { cpuSlots: -2 } }, 'scheduler.cpuSlots: expected a positive integer'],
    ['scheduler.memoryMb', { scheduler: { memoryMb: '1G' } }, 'scheduler.memoryMb: expected a positive integer'],
    ['scheduler.maxInstances', { scheduler: { maxInstances: 0 } }, 'scheduler.maxInstances: expected a positive integer'],
    ['scheduler.agingMs', { scheduler: { agingMs: 0.5 } }, 'scheduler.agingMs: expected a positive integer'],
    ['sandbox.poolSize', { sandbox: { poolSize: -1 } }, 'sandbox.poolSize: expected a non-negative integer'],
    ['sandbox.cpuBudgetMs', { sandbox: { cpuBudgetMs: 0 } }, 'sandbox.cpuBudgetMs: expected a positive integer'],
    ['sandbox.memoryLimitMb', { sandbox: { memoryLimitMb: 5000 } }, 'sandbox.memoryLimitMb: expected a positive integer of at most 4096'],
    ['sandbox.maxOutputBytes', { sandbox: { maxOutputBytes: null } }, 'sandbox.maxOutputBytes: expected a positive integer'],
    ['sandbox.maxOpenFiles', { sandbox: { maxOpenFiles: 0 } }, 'sandbox.maxOpenFiles: expected a positive integer'],
    ['observer.blockSize', { observer: { blockSize: 0 } }, 'observer.blockSize: expected a positive integer'],
    ['observer.checkpointEvery', { observer: { checkpointEvery: 'often' } }, 'observer.checkpointEvery: expected a positive integer'],
    ['policy.bundle', { policy: { bundle: '' } }, 'policy.bundle: expected a file path'],
    ['policy.mode', { policy: { mode: 'permissive' } }, "policy.mode: expected 'enforce' or 'audit'"],
    ['federation.enabled', { federation: { enabled: 1 } }, 'federation.enabled: expected true or false'],
    ['federation.natsUrl', { federation: { natsUrl: 'http://x' } }, 'federation.natsUrl: expected a NATS URL'],
    ['federation.natsUrl required', { federation: { enabled: true } }, 'federation.natsUrl: required when federation.enabled is true'],
    ['federation.credentialsEnv', { federation: { credentialsEnv: 'nats creds' } }, 'federation.credentialsEnv: expected the NAME of an environment variable'],
    ['secrets name', { secrets: { '9lives': { env: 'X' } } }, 'secrets.9lives: expected a secret name'],
    ['secrets env', { secrets: { db: { env: 'db-pass' } } }, 'secrets.db.env: expected the NAME of an environment variable'],
    ['section type', { scheduler: 4 }, 'scheduler: '],
    ['cross-field memory', { scheduler: { memoryMb: 128 }, sandbox: { memoryLimitMb: 256 } }, 'sandbox.memoryLimitMb: 256 exceeds scheduler.memoryMb (128)'],
  ];

  it.each(cases)('%s', (_label, input, expected) => {
    const issues = issuesOf(() => parseConfig(input));
    expect(issues.some((i) => i.startsWith(expected)), `${JSON.stringify(issues)} should contain ${expected}`).toBe(true);
  });

  it('every bad field is listed, in the message and in details', () => {
    const e = thrown(() => parseConfig({ scheduler: { cpuSlots: 0 }, api: { port: 'x' }, observer: { blockSize: -1 } }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.details?.issues).toEqual(['api.port: expected a non-negative integer', 'scheduler.cpuSlots: expected a positive integer', 'observer.blockSize: expected a positive integer']);
    expect(e.message).toContain('3 problems');
    for (const line of e.details?.issues as string[]) expect(e.message).toContain(line);
    expect(e.details?.fields).toContainEqual({ path: 'scheduler.cpuSlots', message: 'expected a positive integer' });
  });

  it('unknown keys are errors, named with their path', () => {
    const issues = issuesOf(() => parseConfig({ schedular: {}, api: { prot: 80 }, sandbox: { poolsize: 2, cpuBudgetMS: 1 } }));
    expect(issues).toEqual(
      expect.arrayContaining([
        'schedular: unknown field (misspelt, or not a config field)',
        'api.prot: unknown field (misspelt, or not a config field)',
        'sandbox.poolsize: unknown field (misspelt, or not a config field)',
        'sandbox.cpuBudgetMS: unknown field (misspelt, or not a config field)',
      ]),
    );
    expect(issues).toHaveLength(4);
  });

  it('malformed JSON text and non-objects are CONFIG_INVALID at $', () => {
    expect(issuesOf(() => parseConfig('{"version": 2,'))[0]).toMatch(/^\$: not valid JSON/);
    expect(issuesOf(() => parseConfig([]))).toEqual(['$: expected a config object']);
    expect(issuesOf(() => parseConfig(null))).toEqual(['$: expected a config object']);
  });

  it('never throws anything but CONFIG_INVALID, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ api: fc.jsonValue(), scheduler: fc.jsonValue(), secrets: fc.jsonValue(), node: fc.jsonValue() }, { requiredKeys: [] })), (input) => {
        try {
          parseConfig(input);
        } catch (e) {
          expect(isForgeError(e) && e.code === 'CONFIG_INVALID').toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('secrets are only ever named, never written', () => {
  const INLINE = 'looks like an inline secret';

  it('a literal under secrets is rejected at that field', () => {
    expect(issuesOf(() => parseConfig({ secrets: { db: 'hunter2' } }))).toEqual([
      "secrets.db: inline secret values are not allowed; reference an environment variable instead: { env: 'NAME' }",
    ]);
    expect(issuesOf(() => parseConfig({ secrets: { db: { value: 'hunter2' } } }))).toEqual(['secrets.db.env: required: expected the NAME of an environment variable (upper case letters, digits and _, e.g. FORGEONE_JWT_SECRET), never the secret itself', 'secrets.db.value: unknown field (misspelt, or not a config field)']);
  });

  it.each([
    ['api.jwtSecret', { api: { jwtSecret: 'abc' } }],
    ['api.tls.key', { api: { tls: { certFile: 'c.pem', keyEnv: 'K', key: '-----BEGIN' } } }],
    ['federation.password', { federation: { password: 's3cret' } }],
    ['federation.authToken', { federation: { authToken: 'tok' } }],
    ['apiKey', { apiKey: 12345 }],
    ['node.labels.db_password', { node: { labels: { db_password: 'x' } } }],
  ])('a literal in a secret-looking field is rejected at %s', (path, input) => {
    const issues = issuesOf(() => parseConfig(input));
    const line = issues.find((i) => i.startsWith(`${path}: `));
    expect(line, JSON.stringify(issues)).toContain(INLINE);
    expect(line).not.toMatch(/abc|BEGIN|s3cret|tok\b|12345/);
  });

  it('a secret value written where a variable name belongs is rejected', () => {
    expect(issuesOf(() => parseConfig({ api: { jwtSecretEnv: 'correct horse battery staple' } }))[0]).toMatch(/^api\.jwtSecretEnv: expected the NAME of an environment variable/);
    expect(issuesOf(() => parseConfig({ federation: { natsUrl: 'nats://user:pw@host:4222' } }))[0]).toBe('federation.natsUrl: credentials in the URL are inline secrets; use credentialsEnv');
  });

  it('secret-looking names are judged by whole words', () => {
    for (const name of ['apiKey', 'api_key', 'DB_PASSWORD', 'jwtSecret', 'authToken', 'privateKey', 'creds', 'KEY']) expect(looksLikeSecretName(name), name).toBe(true);
    for (const name of ['keyboard', 'monkey', 'tokenizer', 'zone', 'passport', 'secretary']) expect(looksLikeSecretName(name), name).toBe(false);
    expect(parseConfig({ node: { labels: { keyboard: 'us', monkey: 'yes' } } }).node.labels).toEqual({ keyboard: 'us', monkey: 'yes' });
  });

  it('resolveSecret reads the named environment variable', () => {
    const config = parseConfig({ secrets: { db: { env: 'FORGEONE_TEST_DB' } } });
    expect(resolveSecret(config, 'db', { FORGEONE_TEST_DB: 'pw' })).toBe('pw');
    process.env.FORGEONE_TEST_DB = 'from-process';
    try {
      expect(resolveSecret(config, 'db')).toBe('from-process');
    } finally {
      delete process.env.FORGEONE_TEST_DB;
    }
  });

  it('an unset or empty variable is CONFIG_SECRET_MISSING, naming the variable and field but no value', () => {
    const config = parseConfig({ secrets: { db: { env: 'FORGEONE_TEST_DB' } } });
    for (const env of [{}, { FORGEONE_TEST_DB: '' }, { OTHER: 'x' }]) {
      const e = thrown(() => resolveSecret(config, 'db', env));
      expect(e.code).toBe('CONFIG_SECRET_MISSING');
      expect(e.message).toBe('environment variable FORGEONE_TEST_DB (named by secrets.db.env) is not set');
      expect(e.details).toEqual({ env: 'FORGEONE_TEST_DB', field: 'secrets.db.env' });
    }
  });

  it('an undeclared secret is NOT_FOUND; inherited object keys are not secrets', () => {
    const config = parseConfig({});
    expect(thrown(() => resolveSecret(config, 'db', {})).code).toBe('NOT_FOUND');
    expect(thrown(() => resolveSecret(config, 'toString', {})).code).toBe('NOT_FOUND');
  });

  it('readSecretEnv serves the fields ending in Env', () => {
    const config = parseConfig({ api: { jwtSecretEnv: 'FORGEONE_JWT' } });
    expect(readSecretEnv(config.api.jwtSecretEnv!, { FORGEONE_JWT: 'k' }, 'api.jwtSecretEnv')).toBe('k');
    expect(thrown(() => readSecretEnv('FORGEONE_JWT', {}, 'api.jwtSecretEnv')).code).toBe('CONFIG_SECRET_MISSING');
    expect(thrown(() => readSecretEnv('not a name', {})).code).toBe('INVALID_ARGUMENT');
  });
});

describe('resolveConfigPaths', () => {
  it('expands ~ and resolves relative paths against home', () => {
    const p = resolveConfigPaths(parseConfig({ paths: { packages: '/opt/pkgs' }, boot: { goldenMeasurements: 'golden.json' } }), { userHome: '/home/ada' });
    expect(p).toEqual({
      home: '/home/ada/.forgeone',
      store: '/home/ada/.forgeone/store',
      packages: '/opt/pkgs',
      trustRoot: '/home/ada/.forgeone/trust-root.json',
      policyBundle: '/home/ada/.forgeone/policy.json',
      goldenMeasurements: '/home/ada/.forgeone/golden.json',
    });
    expect(resolveConfigPaths(parseConfig({ paths: { home: 'data' } }), { cwd: '/srv' }).store).toBe('/srv/data/store');
  });
});

describe('KernelConfigSchema', () => {
  it('is usable directly and strict', () => {
    expect(KernelConfigSchema.safeParse({}).success).toBe(true);
    expect(KernelConfigSchema.safeParse({ extra: 1 }).success).toBe(false);
  });
});
