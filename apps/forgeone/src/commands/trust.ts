import { InvalidArgumentError, Option, type Command } from 'commander';
import { ForgeError, isForgeError, type ErrorCode } from '@forgeone/common';
import {
  REQUIRED_ROLES,
  createTrustRoot,
  nextTrustRoot,
  signTrustRoot,
  verifyTrustRoot,
  type PublicKeyInfo,
  type TrustRootChange,
  type TrustRootDocument,
  type TrustRootVerification,
} from '@forgeone/crypto';
import type { Context } from '../context.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { writeJsonAtomic } from '../files.js';
import { examples, layout, shortHex, type Row } from '../format.js';
import { inFile, loadPublicKeys, loadSigningKeys, readTrustRoot } from '../load.js';
import { isoSeconds, parseDays, parseIsoTime, parseThreshold } from '../options.js';

const DAY_MS = 86_400_000;
const DEFAULT_VALID_DAYS = 365;

/** Verification failures that another root key holder can cure by adding a signature. */
const PENDING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['TRUST_ROOT_SIGNATURE', 'TRUST_ROOT_ROTATION']);

function parseKeyId(value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new InvalidArgumentError('a key id is 64 lowercase hex characters (see the keyId field of a .pub file).');
  return value;
}

/** Role names: required ones first, then the rest in order. */
function roleNames(doc: TrustRootDocument): string[] {
  const names = Object.keys(doc.signed.roles);
  const required: readonly string[] = REQUIRED_ROLES;
  return [...required.filter((r) => names.includes(r)), ...names.filter((n) => !required.includes(n)).sort()];
}

/** The JSON fields and text rows that describe a trust root document. */
function describe(ctx: Context, doc: TrustRootDocument): { json: Record<string, unknown>; rows: Row[] } {
  const s = doc.signed;
  const short = (id: string): string => shortHex(id, ctx.terminal);
  const roles: Record<string, { threshold: number; keyIds: readonly string[] }> = {};
  const rows: Row[] = [
    ['version', String(s.version)],
    ['expires', s.expires],
  ];
  for (const name of roleNames(doc)) {
    const role = s.roles[name]!;
    roles[name] = { threshold: role.threshold, keyIds: role.keyIds };
    rows.push([`role ${name}`, [`threshold ${role.threshold} of ${role.keyIds.length}`, ...role.keyIds.map(short)]]);
  }
  rows.push(['revoked', s.revoked.map(short)]);
  return { json: { version: s.version, expires: s.expires, roles, revoked: s.revoked }, rows };
}

function addExpiryOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--expires <iso>', 'expiry time (ISO 8601, e.g. 2027-01-01T00:00:00Z)').argParser(parseIsoTime).conflicts('validDays'))
    .addOption(new Option('--valid-days <n>', `days until expiry (default: ${DEFAULT_VALID_DAYS})`).argParser(parseDays));
}

interface InitOptions {
  readonly rootKey: readonly string[];
  readonly rootThreshold?: number;
  readonly packageKey: readonly string[];
  readonly threshold: number;
  readonly policyKey?: readonly string[];
  readonly policyThreshold?: number;
  readonly configKey?: readonly string[];
  readonly configThreshold?: number;
  readonly expires?: number;
  readonly validDays?: number;
  readonly out: string;
}

interface UpdateOptions {
  readonly trustRoot: string;
  readonly signKey: readonly string[];
  readonly out: string;
  readonly partial?: boolean;
}

/**
 * Derive, sign, verify and write the next version of a trust root. Without `--partial` nothing is written unless
 * the result verifies against the current version; with it, a document short of signatures is written too, so
 * other root key holders can add theirs with `forgeone trust sign`.
 */
async function update(ctx: Context, opts: UpdateOptions, what: string, change: (current: TrustRootDocument) => Promise<TrustRootChange>): Promise<void> {
  const provider = ctx.provider;
  const current = await readTrustRoot(ctx, opts.trustRoot);
  const now = ctx.now();
  try {
    // The current root must be genuine; its expiry is judged on the result, which inherits it.
    verifyTrustRoot(provider, current, { now, ignoreExpiry: true });
  } catch (e) {
    throw inFile(opts.trustRoot, e);
  }
  let next = nextTrustRoot(provider, current, await change(current));
  const keys = await loadSigningKeys(ctx, opts.signKey);
  const rootKeyIds = new Set([...(current.signed.roles.root?.keyIds ?? []), ...(next.signed.roles.root?.keyIds ?? [])]);
  keys.forEach((key, i) => {
    if (!rootKeyIds.has(key.keyId)) {
      throw new ForgeError(
        'INVALID_ARGUMENT',
        `${opts.signKey[i]}: key ${key.keyId} is not a root key of v${current.signed.version} or v${next.signed.version}; only root keys sign trust roots`,
        { details: { keyId: key.keyId } },
      );
    }
    next = signTrustRoot(provider, next, key);
  });
  let verification: TrustRootVerification | undefined;
  let pending: ForgeError | undefined;
  try {
    verification = verifyTrustRoot(provider, next, { now, previous: current });
  } catch (e) {
    if (opts.partial !== true || !isForgeError(e) || !PENDING_CODES.has(e.code)) throw e;
    pending = e;
  }
  await writeJsonAtomic(ctx.path(opts.out), opts.out, next);

  const { json, rows } = describe(ctx, next);
  const short = (id: string): string => shortHex(id, ctx.terminal);
  const head: Row[] = [
    ['wrote', `${opts.out} (trust root v${next.signed.version}, ${pending === undefined ? 'complete' : 'partially signed'})`],
    ['change', what],
  ];
  const tail: Row[] =
    verification === undefined
      ? [
          ['signed by', next.signatures.map((s) => short(s.keyId))],
          ['pending', `${pending!.code}: ${pending!.message}`],
          ['next', `forgeone trust sign ${opts.out} --key <root key file> --previous ${opts.trustRoot}`],
        ]
      : [
          ['signed by', verification.signers.map(short)],
          ['and by v' + String(current.signed.version), verification.previousSigners.map(short)],
        ];
  ctx.finish({
    exitCode: EXIT_OK,
    json: {
      ok: true,
      file: opts.out,
      change: what,
      complete: pending === undefined,
      pending: pending === undefined ? null : { code: pending.code, message: pending.message },
      ...json,
      signatures: next.signatures.map((s) => s.keyId),
      signers: verification?.signers ?? [],
      previousSigners: verification?.previousSigners ?? [],
    },
    text: layout([...head, ...rows, ...tail]),
  });
}

/** The options every update command shares, listed after its own. */
function addUpdateOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--trust-root <file>', 'the current trust root')
    .requiredOption('--sign-key <keyfile...>', 'private root key file(s) to sign the new version with')
    .requiredOption('-o, --out <file>', 'where to write the new version (keep the old one: it is the --previous of the new)')
    .option('--partial', 'write the new version even when it lacks signatures, for `forgeone trust sign`');
}

/**
 * Register `forgeone trust` and its subcommands: init, add-key, revoke-key, rotate, sign, verify.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerTrust(program: Command, ctx: Context): void {
  const trust = program
    .command('trust')
    .summary('create, update, sign and verify trust roots')
    .description(
      'A trust root is the signed JSON document that says which keys ForgeOne trusts and for what: the root role signs\n' +
        'trust roots themselves, the packages role signs packages (k of n keys must sign), policy and config are optional.\n' +
        'Each update is a new version signed by a threshold of the previous root keys and of its own.',
    )
    .addHelpText(
      'after',
      examples(
        'forgeone trust init --root-key root.key --package-key p1.key.pub p2.key.pub p3.key.pub --threshold 2 --out trust-root.json',
        'forgeone trust verify trust-root.json',
      ),
    );

  addExpiryOptions(
    trust
      .command('init')
      .summary('create a new trust root (version 1)')
      .description(
        'Create version 1 of a trust root, sign it with every root key given, check it and write it as pretty JSON.\n' +
          'The root role gets the --root-key keys (threshold --root-threshold, default 1), the packages role the\n' +
          '--package-key keys with threshold --threshold; --policy-key and --config-key add the policy and config roles.',
      )
      .requiredOption('--root-key <keyfile...>', 'private root key file(s); each signs the new trust root')
      .option('--root-threshold <n>', 'root keys needed to sign later versions (default: 1)', parseThreshold)
      .requiredOption('--package-key <pubfile...>', 'public key file(s) of the package signers')
      .requiredOption('--threshold <k>', 'package signatures needed (k of the package keys)', parseThreshold)
      .option('--policy-key <pubfile...>', 'public key file(s) of the policy role')
      .option('--policy-threshold <n>', 'policy signatures needed (default: 1)', parseThreshold)
      .option('--config-key <pubfile...>', 'public key file(s) of the config role')
      .option('--config-threshold <n>', 'config signatures needed (default: 1)', parseThreshold),
  )
    .requiredOption('-o, --out <file>', 'trust root file to write')
    .addHelpText(
      'after',
      examples(
        'forgeone trust init --root-key root.key --package-key p1.key.pub p2.key.pub p3.key.pub --threshold 2 --out trust-root.json',
        'forgeone trust init --root-key r1.key r2.key --root-threshold 2 --package-key p1.key.pub --threshold 1 --valid-days 90 --out trust-root.json',
      ),
    )
    .action(async (opts: InitOptions) => {
      if (opts.policyThreshold !== undefined && opts.policyKey === undefined) throw new UsageError('--policy-threshold needs --policy-key');
      if (opts.configThreshold !== undefined && opts.configKey === undefined) throw new UsageError('--config-threshold needs --config-key');
      const now = ctx.now();
      const expires = isoSeconds(opts.expires ?? now + (opts.validDays ?? DEFAULT_VALID_DAYS) * DAY_MS);
      const rootKeys = await loadSigningKeys(ctx, opts.rootKey);
      const roles: Record<string, { keys: readonly PublicKeyInfo[]; threshold: number }> = {
        root: { keys: rootKeys.map((k) => k.toPublic()), threshold: opts.rootThreshold ?? 1 },
        packages: { keys: await loadPublicKeys(ctx, opts.packageKey), threshold: opts.threshold },
      };
      if (opts.policyKey !== undefined) roles.policy = { keys: await loadPublicKeys(ctx, opts.policyKey), threshold: opts.policyThreshold ?? 1 };
      if (opts.configKey !== undefined) roles.config = { keys: await loadPublicKeys(ctx, opts.configKey), threshold: opts.configThreshold ?? 1 };
      let doc = createTrustRoot(ctx.provider, { expires, roles });
      for (const key of rootKeys) doc = signTrustRoot(ctx.provider, doc, key);
      const verification = verifyTrustRoot(ctx.provider, doc, { now });
      await writeJsonAtomic(ctx.path(opts.out), opts.out, doc);
      const { json, rows } = describe(ctx, doc);
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, file: opts.out, ...json, signers: verification.signers },
        text: layout([['wrote', `${opts.out} (trust root v${doc.signed.version})`], ...rows, ['signed by', verification.signers.map((id) => shortHex(id, ctx.terminal))]]),
      });
    });

  addUpdateOptions(
    trust
      .command('add-key')
      .summary('add a key to a role (next version)')
      .description(
        'Write the next version of a trust root with one more key in a role (the role is created if it does not exist),\n' +
          'optionally with a new threshold, signed by the --sign-key root keys and checked against the current version.',
      )
      .requiredOption('--role <role>', 'role to add the key to: root, packages, policy, config, ...')
      .requiredOption('--key <pubfile>', 'public key file of the new key')
      .option('--threshold <k>', "the role's new threshold (default: unchanged)", parseThreshold),
  )
    .addHelpText('after', examples('forgeone trust add-key --trust-root root-v1.json --role packages --key p4.key.pub --threshold 3 --sign-key root.key --out root-v2.json'))
    .action(async (opts: UpdateOptions & { role: string; key: string; threshold?: number }) => {
      const [key] = await loadPublicKeys(ctx, [opts.key]);
      await update(ctx, opts, `add key ${key!.keyId} to role ${opts.role}`, async () =>
        opts.threshold === undefined ? { kind: 'add-key', role: opts.role, key: key! } : { kind: 'add-key', role: opts.role, key: key!, threshold: opts.threshold },
      );
    });

  addUpdateOptions(
    trust
      .command('revoke-key')
      .summary('revoke a key for good (next version)')
      .description(
        'Write the next version of a trust root with a key revoked: it leaves every role and its signatures never count again,\n' +
          'not even on packages signed before. Name the key by --key-id or by its --key file.',
      )
      .addOption(new Option('--key-id <id>', 'key id to revoke (64 hex characters)').argParser(parseKeyId).conflicts('key'))
      .addOption(new Option('--key <pubfile>', 'public key file of the key to revoke')),
  )
    .addHelpText('after', examples('forgeone trust revoke-key --trust-root root-v2.json --key p2.key.pub --sign-key root.key --out root-v3.json'))
    .action(async (opts: UpdateOptions & { keyId?: string; key?: string }) => {
      let keyId = opts.keyId;
      if (opts.key !== undefined) keyId = (await loadPublicKeys(ctx, [opts.key]))[0]!.keyId;
      if (keyId === undefined) throw new UsageError('name the key to revoke with --key-id <id> or --key <pubfile>');
      const id = keyId;
      await update(ctx, opts, `revoke key ${id}`, async () => ({ kind: 'revoke-key', keyId: id }));
    });

  addUpdateOptions(
    trust
      .command('rotate')
      .summary("replace a role's keys (next version)")
      .description(
        "Write the next version of a trust root in which a role has exactly the --new-key keys and threshold.\n" +
          'Rotating the root role needs signatures from a threshold of the old root keys and of the new ones: give all the\n' +
          'root keys you hold to --sign-key. If they are not enough, nothing is written, unless --partial is given: then the\n' +
          'partially signed version is written for the other holders to complete with `forgeone trust sign`.',
      )
      .requiredOption('--role <role>', 'role to rotate: root, packages, policy, config, ...')
      .requiredOption('--new-key <pubfile...>', "public key file(s) of the role's new keys")
      .requiredOption('--threshold <k>', "the role's threshold after the rotation", parseThreshold),
  )
    .addHelpText(
      'after',
      examples(
        'forgeone trust rotate --trust-root root-v1.json --role root --new-key root2.key.pub --threshold 1 --sign-key root.key root2.key --out root-v2.json',
        'forgeone trust rotate --trust-root root-v1.json --role root --new-key root2.key.pub --threshold 1 --sign-key root2.key --partial --out root-v2.json',
        'forgeone trust sign root-v2.json --key root.key --previous root-v1.json   # the old root key holder completes it',
      ),
    )
    .action(async (opts: UpdateOptions & { role: string; newKey: readonly string[]; threshold: number }) => {
      const keys = await loadPublicKeys(ctx, opts.newKey);
      await update(ctx, opts, `rotate role ${opts.role} to ${keys.length} key(s), threshold ${opts.threshold}`, async () => ({
        kind: 'rotate',
        role: opts.role,
        keys,
        threshold: opts.threshold,
      }));
    });

  trust
    .command('sign')
    .summary('add one root key signature to a trust root, in place')
    .description(
      'Add (or renew) one signature on a trust root document and rewrite it in place, then report whether it is now\n' +
        'complete. For a new version, give --previous so the rotation rule (a threshold of the previous root keys) is checked\n' +
        'and keys of the previous root role are accepted.',
    )
    .argument('<file>', 'trust root document (rewritten in place)')
    .requiredOption('--key <keyfile>', 'private root key file to sign with')
    .option('--previous <file>', 'the trust root this version replaces')
    .addHelpText('after', examples('forgeone trust sign root-v2.json --key root.key --previous root-v1.json'))
    .action(async (file: string, opts: { key: string; previous?: string }) => {
      const provider = ctx.provider;
      const doc = await readTrustRoot(ctx, file);
      const previous = opts.previous === undefined ? undefined : await readTrustRoot(ctx, opts.previous);
      const [key] = await loadSigningKeys(ctx, [opts.key]);
      const own = doc.signed.roles.root?.keyIds.includes(key!.keyId) ?? false;
      const old = previous?.signed.roles.root?.keyIds.includes(key!.keyId) ?? false;
      if (!own && !old) {
        if (previous !== undefined) {
          throw new ForgeError('INVALID_ARGUMENT', `${opts.key}: key ${key!.keyId} is not a root key of v${doc.signed.version} or v${previous.signed.version}`, {
            details: { keyId: key!.keyId },
          });
        }
        ctx.warn(`${opts.key} is not a root key of ${file} (v${doc.signed.version}); it counts only as a key of the previous version (check with --previous)`);
      }
      const signed = signTrustRoot(provider, doc, key!);
      const now = ctx.now();
      let pending: ForgeError | undefined;
      let verification: TrustRootVerification | undefined;
      try {
        verification = verifyTrustRoot(provider, signed, previous === undefined ? { now } : { now, previous });
      } catch (e) {
        if (!isForgeError(e) || !PENDING_CODES.has(e.code)) throw inFile(file, e);
        pending = e;
      }
      await writeJsonAtomic(ctx.path(file), file, signed);
      const short = (id: string): string => shortHex(id, ctx.terminal);
      ctx.finish({
        exitCode: EXIT_OK,
        json: {
          ok: true,
          file,
          version: signed.signed.version,
          keyId: key!.keyId,
          signatures: signed.signatures.map((s) => s.keyId),
          complete: pending === undefined,
          checkedPrevious: previous !== undefined,
          pending: pending === undefined ? null : { code: pending.code, message: pending.message },
          signers: verification?.signers ?? [],
          previousSigners: verification?.previousSigners ?? [],
        },
        text: layout([
          ['signed', `${file} (trust root v${signed.signed.version}) with ${short(key!.keyId)}`],
          ['signatures', signed.signatures.map((s) => short(s.keyId))],
          [
            'status',
            pending !== undefined
              ? `incomplete: ${pending.code}: ${pending.message}`
              : previous === undefined
                ? 'complete for its own root keys (add --previous to check the rotation too)'
                : `complete: verifies as the successor of v${previous.signed.version}`,
          ],
        ]),
      });
    });

  trust
    .command('verify')
    .summary('check a trust root and show what it trusts')
    .description(
      'Check a trust root: structure, a threshold of its own root keys, expiry; with --previous also that it is the next\n' +
        'version, signed by a threshold of the previous root keys. Prints the version, the roles and who signed.\n' +
        'Key ids are shortened to 16 hex characters on a terminal (full with --json or when piped).',
    )
    .argument('<file>', 'trust root document')
    .option('--previous <file>', 'the trusted version this one claims to replace')
    .addHelpText('after', examples('forgeone trust verify trust-root.json', 'forgeone trust verify root-v2.json --previous root-v1.json --json'))
    .action(async (file: string, opts: { previous?: string }) => {
      const provider = ctx.provider;
      const doc = await readTrustRoot(ctx, file);
      const now = ctx.now();
      let previous: TrustRootDocument | undefined;
      if (opts.previous !== undefined) {
        previous = await readTrustRoot(ctx, opts.previous);
        try {
          verifyTrustRoot(provider, previous, { now, ignoreExpiry: true });
        } catch (e) {
          throw inFile(opts.previous, e);
        }
      }
      let verification: TrustRootVerification;
      try {
        verification = verifyTrustRoot(provider, doc, previous === undefined ? { now } : { now, previous });
      } catch (e) {
        throw inFile(file, e);
      }
      const { json, rows } = describe(ctx, doc);
      const short = (id: string): string => shortHex(id, ctx.terminal);
      const signedRows: Row[] = [['signed by', verification.signers.map(short)]];
      if (previous !== undefined) signedRows.push([`and by v${previous.signed.version}`, verification.previousSigners.map(short)]);
      ctx.finish({
        exitCode: EXIT_OK,
        json: {
          ok: true,
          file,
          ...json,
          signers: verification.signers,
          previous: previous === undefined ? null : { file: opts.previous, version: previous.signed.version, signers: verification.previousSigners },
        },
        text: layout([['valid', `${file}${previous === undefined ? '' : ` (successor of ${opts.previous})`}`], ...rows, ...signedRows]),
      });
    });
}
