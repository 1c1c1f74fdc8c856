import { Option, type Command } from 'commander';
import { canonicalJsonBytes, createManualClock, systemClock, toForgeError, toHex, type ForgeError } from '@forgeone/common';
import {
  DEFAULT_PACKAGE_LIMITS,
  buildPackage,
  createPackageVerifier,
  openFileTrustState,
  parsePackage,
  readPackageDirectory,
  signPackage,
  type TrustState,
} from '@forgeone/crypto';
import type { Context } from '../context.js';
import { EXIT_FAILURE, EXIT_OK } from '../errors.js';
import { readFileLimited, writeFileAtomic } from '../files.js';
import { examples, formatSize, layout, shortHex, type Row } from '../format.js';
import { inFile, loadSigningKeys, readTrustRoot } from '../load.js';
import { parseIsoTime } from '../options.js';
import { withProgress, type Progress } from '../progress.js';

/** Read a package file (refused before reading when over the package size limit), reporting progress. */
async function readPackageFile(ctx: Context, shown: string, progress?: Progress): Promise<Uint8Array> {
  return readFileLimited(ctx.path(shown), shown, {
    maxBytes: DEFAULT_PACKAGE_LIMITS.maxPackageBytes,
    limitCode: 'PKG_LIMIT_EXCEEDED',
    ...(progress === undefined ? {} : { onProgress: (done: number, total: number) => progress.update(`reading ${shown}: ${formatSize(done)} of ${formatSize(total)}`) }),
  });
}

function progressOptions(ctx: Context): { enabled: boolean; write: (text: string) => void } {
  return { enabled: ctx.progressEnabled, write: ctx.io.stderr };
}

/** SHA3-256 of the canonical manifest bytes: the package's identity, what its signatures cover. */
function manifestDigest(ctx: Context, manifestBytes: Uint8Array): string {
  return toHex(ctx.provider.sha3_256(manifestBytes));
}

/** What an unverified package claims to be, for reporting a failed verification (null when it does not parse). */
function claimOf(ctx: Context, bytes: Uint8Array | undefined): { name: string | null; version: string | null; digest: string | null } {
  const parsed = bytes === undefined ? undefined : parsePackage(bytes);
  if (parsed === undefined || !parsed.ok) return { name: null, version: null, digest: null };
  const { manifest, manifestBytes } = parsed.value;
  return { name: manifest.name, version: manifest.version, digest: manifestDigest(ctx, manifestBytes) };
}

/** Signers and threshold of a failed package verification: from the error when it says, else none and the role's threshold. */
function quorumOf(error: ForgeError, fallbackThreshold: number): { signers: readonly string[]; threshold: number } {
  // Only package errors describe package signers (a trust root error's details describe root keys).
  const d = error.code.startsWith('PKG_') ? error.details : undefined;
  const signers = Array.isArray(d?.signers) && d.signers.every((s) => typeof s === 'string') ? (d.signers as string[]) : [];
  const threshold = typeof d?.threshold === 'number' ? d.threshold : fallbackThreshold;
  return { signers, threshold };
}

interface VerifyOptions {
  readonly trustRoot: string;
  readonly state?: string;
  readonly now?: number;
}

/**
 * Register `forgeone pkg` and its subcommands: build, sign, verify, inspect.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerPkg(program: Command, ctx: Context): void {
  const pkg = program
    .command('pkg')
    .summary('build, sign, verify and inspect .forgepkg packages')
    .description(
      'A .forgepkg holds a canonical JSON manifest (name, version, expiry, capabilities, the SHA3-256 of every file),\n' +
        'the files, and Ed25519 signatures over the manifest. A package runs only when k distinct keys of the trust root\'s\n' +
        'packages role signed it, it has not expired, it is not older than a version already accepted, and every file matches.',
    )
    .addHelpText('after', examples('forgeone pkg build ./my-package --out my-package.forgepkg', 'forgeone pkg verify my-package.forgepkg --trust-root trust-root.json'));

  pkg
    .command('build')
    .summary('build an unsigned package from a directory')
    .description(
      'Build an unsigned .forgepkg from a directory: forgepkg.json (name, version, entry, capabilities, ...) is the\n' +
        'manifest template, every other regular file is content (symbolic links are refused). Prints name@version, the\n' +
        'file count, the size and the manifest digest (the SHA3-256 that signatures cover).',
    )
    .argument('<dir>', 'package directory containing forgepkg.json')
    .requiredOption('-o, --out <file>', 'package file to write')
    .addHelpText('after', examples('forgeone pkg build ./my-package --out my-package.forgepkg', 'forgeone pkg build ./my-package --out my-package.forgepkg --json'))
    .action(async (dir: string, opts: { out: string }) => {
      const built = await withProgress(progressOptions(ctx), `reading ${dir}`, async (progress) => {
        const input = await readPackageDirectory(ctx.path(dir)).catch((e: unknown) => Promise.reject(inFile(dir, e)));
        const result = buildPackage(ctx.provider, input, { onProgress: (done, total, name) => progress.update(`hashing ${done}/${total}: ${name}`) });
        return { ...result, fileCount: input.files.size };
      });
      await writeFileAtomic(ctx.path(opts.out), opts.out, built.bytes);
      const m = built.manifest;
      const digest = manifestDigest(ctx, canonicalJsonBytes(m));
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, file: opts.out, name: m.name, version: m.version, files: built.fileCount, size: built.bytes.length, digest, created: m.created, expires: m.expires },
        text: layout([
          ['built', `${m.name}@${m.version} -> ${opts.out} (unsigned)`],
          ['files', String(built.fileCount)],
          ['size', `${formatSize(built.bytes.length)} (${built.bytes.length} bytes)`],
          ['digest', digest],
          ['expires', m.expires],
        ]),
      });
    });

  pkg
    .command('sign')
    .summary('add a signature to a package, in place')
    .description(
      'Sign a package with one key and rewrite it atomically (a temporary file, then a rename). Signing again with the\n' +
        'same key replaces that key\'s signature; a key counts once however often it signs.',
    )
    .argument('<file>', 'package file (rewritten in place)')
    .requiredOption('--key <keyfile>', 'private key file to sign with')
    .addHelpText('after', examples('forgeone pkg sign hello.forgepkg --key keys/release-1.key'))
    .action(async (file: string, opts: { key: string }) => {
      const [key] = await loadSigningKeys(ctx, [opts.key]);
      const bytes = await withProgress(progressOptions(ctx), `reading ${file}`, (p) => readPackageFile(ctx, file, p));
      const before = parsePackage(bytes);
      if (!before.ok) throw inFile(file, before.error);
      const replaced = before.value.signatures.some((s) => s.keyId === key!.keyId);
      const signed = signPackage(bytes, key!);
      await writeFileAtomic(ctx.path(file), file, signed);
      const after = parsePackage(signed);
      if (!after.ok) throw inFile(file, after.error);
      const { manifest, signatures } = after.value;
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, file, name: manifest.name, version: manifest.version, keyId: key!.keyId, replaced, signatureCount: signatures.length, signatures: signatures.map((s) => s.keyId) },
        text: layout([
          ['signed', `${manifest.name}@${manifest.version} (${file})${replaced ? ', replacing this key\'s earlier signature' : ''}`],
          ['key id', shortHex(key!.keyId, ctx.terminal)],
          ['signatures', String(signatures.length)],
        ]),
      });
    });

  pkg
    .command('verify')
    .summary('verify a package against a trust root')
    .description(
      'Verify a package: k distinct keys of the trust root\'s packages role signed its manifest, none revoked; it has not\n' +
        'expired; with --state, it is not older than a version already accepted (the version is recorded on success);\n' +
        'every file matches its SHA3-256. Exit status 0 when it verifies, 1 with the error code when it does not.\n' +
        'With --json the document always has ok, code (null on success), message, name, version, digest, signers, threshold.',
    )
    .argument('<file>', 'package file')
    .requiredOption('--trust-root <file>', 'trust root to verify against')
    .option('--state <file>', 'rollback state file (created on first success)')
    .addOption(new Option('--now <iso>', 'judge time as if it were <iso> (for audits and tests)').argParser(parseIsoTime).hideHelp())
    .addHelpText(
      'after',
      examples('forgeone pkg verify my-package.forgepkg --trust-root trust-root.json', 'forgeone pkg verify hello.forgepkg --trust-root trust-root.json --state state.json --json'),
    )
    .action(async (file: string, opts: VerifyOptions) => {
      let threshold = 0;
      let bytes: Uint8Array | undefined;
      try {
        const trustRoot = await readTrustRoot(ctx, opts.trustRoot);
        threshold = trustRoot.signed.roles.packages?.threshold ?? 0;
        const state: TrustState | undefined = opts.state === undefined ? undefined : await openFileTrustState(ctx.path(opts.state));
        const clock = opts.now === undefined ? systemClock : createManualClock(opts.now);
        const verifier = createPackageVerifier({ provider: ctx.provider, trustRoot, clock });
        const result = await withProgress(progressOptions(ctx), `reading ${file}`, async (progress) => {
          bytes = await readPackageFile(ctx, file, progress);
          progress.update(`verifying ${file} (${formatSize(bytes.length)})`);
          const onProgress = (done: number, total: number, name: string) => progress.update(`hashing ${done}/${total}: ${name}`);
          return verifier.verify(bytes, state === undefined ? { onProgress } : { state, onProgress });
        });
        if (!result.ok) throw result.error;
        const v = result.value;
        if (state !== undefined) {
          await state.recordRootVersion(trustRoot.signed.version);
          await state.recordPackageVersion(v.manifest.name, v.manifest.version);
        }
        const id = `${v.manifest.name}@${v.manifest.version}`;
        const message = `${id} verified: ${v.signers.length} distinct trusted signature(s), ${v.threshold} required`;
        const rows: Row[] = [
          ['verified', `${id} (${file})`],
          ['digest', v.digest],
          ['signers', [`${v.signers.length} of ${v.threshold} required`, ...v.signers.map((s) => shortHex(s, ctx.terminal))]],
          ['expires', v.manifest.expires],
        ];
        if (opts.state !== undefined) rows.push(['state', `${opts.state} (recorded ${id})`]);
        ctx.finish({
          exitCode: EXIT_OK,
          json: {
            ok: true,
            code: null,
            message,
            file,
            name: v.manifest.name,
            version: v.manifest.version,
            digest: v.digest,
            signers: v.signers,
            threshold: v.threshold,
            expires: v.manifest.expires,
            verifiedAt: new Date(v.verifiedAt).toISOString(),
          },
          text: layout(rows),
        });
      } catch (e) {
        const error = toForgeError(e);
        const { signers, threshold: needed } = quorumOf(error, threshold);
        ctx.finish({
          exitCode: EXIT_FAILURE,
          json: {
            ok: false,
            code: error.code,
            message: error.message,
            file,
            ...claimOf(ctx, bytes),
            signers,
            threshold: needed,
            ...(error.details === undefined ? {} : { details: error.details }),
          },
          text: [],
          errText: [`error ${error.code}: ${error.message}`],
        });
      }
    });

  pkg
    .command('inspect')
    .summary('show what a package contains (no verification)')
    .description(
      'Show a package\'s manifest, its files with sizes and SHA3-256 hashes, and the key ids of its signatures. Works on\n' +
        'unsigned packages. Nothing is verified: use `forgeone pkg verify` before trusting any of it.',
    )
    .argument('<file>', 'package file')
    .addHelpText('after', examples('forgeone pkg inspect hello.forgepkg', 'forgeone pkg inspect hello.forgepkg --json'))
    .action(async (file: string) => {
      const bytes = await withProgress(progressOptions(ctx), `reading ${file}`, (p) => readPackageFile(ctx, file, p));
      const parsed = parsePackage(bytes);
      if (!parsed.ok) throw inFile(file, parsed.error);
      const { manifest: m, manifestBytes, signatures } = parsed.value;
      const digest = manifestDigest(ctx, manifestBytes);
      const files = Object.keys(m.files)
        .sort()
        .map((name) => ({ name, size: m.files[name]!.size, sha3_256: m.files[name]!.sha3_256 }));
      const sizes = files.map((f) => formatSize(f.size));
      const width = Math.max(0, ...sizes.map((s) => s.length));
      const list = (values: readonly string[]): string => (values.length === 0 ? 'none' : values.join(', '));
      const rows: Row[] = [
        ['package', `${m.name}@${m.version} (${file}, not verified)`],
        ['description', m.description === '' ? '-' : m.description],
        ['author', m.author === '' ? '-' : m.author],
        ['entry', m.entry],
        ['capabilities', list(m.capabilities)],
        ['dependencies', list(Object.entries(m.dependencies).map(([n, r]) => `${n} ${r}`))],
        ['metadata', list(Object.entries(m.metadata).map(([k, v]) => `${k}=${v}`))],
        ['created', m.created],
        ['expires', m.expires],
        ['digest', digest],
        ['size', `${formatSize(bytes.length)} (${bytes.length} bytes)`],
        ['files', [String(files.length), ...files.map((f, i) => `${sizes[i]!.padStart(width)}  ${shortHex(f.sha3_256, ctx.terminal)}  ${f.name}`)]],
        ['signatures', [`${signatures.length} (not verified)`, ...signatures.map((s) => shortHex(s.keyId, ctx.terminal))]],
      ];
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, verified: false, file, size: bytes.length, digest, manifest: m, files, signatures: signatures.map((s) => ({ keyId: s.keyId })) },
        text: layout(rows),
      });
    });
}
