import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { ForgeError, fromHex } from '@forgeone/common';
import { createClient, type ForgeClient, type OutputOf } from '@forgeone/interface';
import { verifyAuditLog } from '@forgeone/observer';
import type { Context } from '../context.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { readFileLimited } from '../files.js';
import { examples, formatSize, layout, shortHex } from '../format.js';
import { issueJson, trustedKeysFrom, type KeyOptions } from './trace.js';

/** Largest package file `launch` and `packages upload` read. */
const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

interface Globals {
  readonly server?: string;
  readonly token?: string;
}

type Container = OutputOf<'getContainer'>['container'];
type QuarantineRecord = OutputOf<'listQuarantine'>['records'][number];

/**
 * The client of the server named by `--server` and `--token` (or `FORGEONE_SERVER` and `FORGEONE_TOKEN`).
 * @param ctx - the context
 * @param cmd - the command being run (its global options are read)
 * @returns the client
 * @throws UsageError when no server or token is given
 */
export function remoteClient(ctx: Context, cmd: Command): ForgeClient {
  const g = cmd.optsWithGlobals<Globals>();
  const server = g.server ?? ctx.io.env.FORGEONE_SERVER;
  const token = g.token ?? ctx.io.env.FORGEONE_TOKEN;
  if (server === undefined || server === '') throw new UsageError('this command talks to a server: give --server <url> (or set FORGEONE_SERVER)');
  if (!/^https?:\/\/[^\s/]+/.test(server)) throw new UsageError(`--server: expected an http:// or https:// URL, got ${JSON.stringify(server)}`);
  if (token === undefined || token === '') throw new UsageError('give --token <token> (or set FORGEONE_TOKEN); `forgeone token issue` makes one');
  return createClient({ baseUrl: server, token });
}

/**
 * Lay out rows under a header, each column as wide as its widest cell.
 * @param header - column names
 * @param rows - cells
 * @returns the lines
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return ['(none)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

function when(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function containerRows(ctx: Context, c: Container): string[] {
  return layout([
    ['id', c.id],
    ['name', c.name],
    ['package', `${c.packageName}@${c.packageVersion} (${shortHex(c.packageHash, ctx.terminal)})`],
    ['status', c.reason === undefined ? c.status : `${c.status}: ${c.reason.code === undefined ? '' : `${c.reason.code} `}${c.reason.message}`],
    ['runs as', `${c.identity.subject} (tenant ${c.identity.tenant})`],
    ['trace', c.traceId ?? 'unknown (not launched by this server process)'],
    ['calls', `${c.resources.calls} (${c.resources.denials} denied)`],
    ['updated', when(c.updatedAt)],
  ]);
}

function quarantineRows(r: QuarantineRecord | null, containerId: string): string[] {
  return layout([
    ['container', containerId],
    ['record', r === null ? 'none' : `${r.id} (${r.state})`],
  ]);
}

function parseMs(value: string): number {
  if (!/^[0-9]{1,7}$/.test(value)) throw new InvalidArgumentError('a whole number of milliseconds.');
  return Number(value);
}

async function packageDigest(ctx: Context, client: ForgeClient, what: string): Promise<{ digest: string; uploaded: boolean; name?: string }> {
  if (/^[0-9a-f]{64}$/.test(what)) return { digest: what, uploaded: false };
  const bytes = await readFileLimited(ctx.path(what), what, { maxBytes: MAX_UPLOAD_BYTES, limitCode: 'PKG_LIMIT_EXCEEDED' });
  const { package: info } = await client.packages.upload(bytes);
  return { digest: info.digest, uploaded: true, name: `${info.name}@${info.version}` };
}

/**
 * `forgeone --server <url> audit verify`: the server's audit log, exported and verified here — against the
 * kernel keys given with `--key`/`--trust-root`, or else the kernel key the server names (then only as strong as
 * that server's word).
 * @param ctx - the context
 * @param cmd - the command (for the global options)
 * @param opts - key options
 */
export async function auditVerifyRemote(ctx: Context, cmd: Command, opts: KeyOptions): Promise<void> {
  const client = remoteClient(ctx, cmd);
  const [exported, boot, server] = await Promise.all([client.audit.export(), client.boot.status(), client.audit.verify()]);
  const local = opts.key !== undefined || opts.trustRoot !== undefined;
  if (!local) ctx.warn(`no --key or --trust-root: verifying against the kernel key the server names (${shortHex(boot.kernelKeyId, ctx.terminal)})`);
  const keys = local ? await trustedKeysFrom(ctx, opts) : [fromHex(boot.kernelPublicKey, 32)];
  const v = verifyAuditLog(exported, { trustedKeys: keys, crypto: ctx.provider });
  if (!v.ok) {
    const issue = v.issue!;
    throw new ForgeError('STATE_CORRUPT', `${client.baseUrl} audit log: ${issue.code}: ${issue.message}`, { details: { issue: issueJson(issue), serverSaysOk: server.ok } });
  }
  ctx.finish({
    exitCode: EXIT_OK,
    json: { ok: true, code: null, server: client.baseUrl, kind: 'remote', logId: v.logId, events: v.events, checkpoints: v.checkpoints, signers: v.signers, keys: local ? 'local' : 'server', serverVerification: server.ok },
    text: layout([
      ['verified', `audit log ${v.logId ?? ''} of ${client.baseUrl} (checked here${local ? '' : ' against the key the server names'})`],
      ['events', String(v.events)],
      ['checkpoints', String(v.checkpoints)],
      ['signers', v.signers.map((k) => shortHex(k, ctx.terminal))],
      ['server says', server.ok ? 'verified' : `NOT verified: ${server.issue?.code ?? '?'}`],
    ]),
  });
}

/**
 * Register the commands that work on a server (`--server <url> --token <t>`): `containers`, `launch`,
 * `packages`, `quarantine`. (`audit verify` without a file is the remote form of `audit verify`.)
 * @param program - the root command
 * @param ctx - the context
 */
export function registerRemote(program: Command, ctx: Context): void {
  const containers = program.command('containers').summary('list and control the containers of a server (--server)').description('Containers of the kernel behind `forgeone serve`. Needs --server and --token.');
  containers
    .command('ls')
    .alias('list')
    .summary('list containers')
    .option('--status <states>', 'only these states, comma-separated (creating, running, paused, quarantined, stopping, stopped, failed)')
    .addHelpText('after', examples('forgeone --server http://127.0.0.1:7480 --token "$TOKEN" containers ls', 'forgeone --server http://127.0.0.1:7480 --token "$TOKEN" containers ls --status quarantined --json'))
    .action(async (opts: { status?: string }, cmd: Command) => {
      const client = remoteClient(ctx, cmd);
      const { containers: list } = await client.containers.list({ query: opts.status === undefined ? {} : { status: opts.status } });
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, containers: list },
        text: table(
          ['ID', 'NAME', 'PACKAGE', 'STATUS', 'CALLS', 'DENIED', 'UPDATED'],
          list.map((c) => [c.id, c.name, `${c.packageName}@${c.packageVersion}`, c.status, String(c.resources.calls), String(c.resources.denials), when(c.updatedAt)]),
        ),
      });
    });
  containers
    .command('get')
    .summary('show one container')
    .argument('<id>', 'container id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const { container } = await remoteClient(ctx, cmd).containers.get({ params: { id } });
      ctx.finish({ exitCode: EXIT_OK, json: { ok: true, code: null, container }, text: containerRows(ctx, container) });
    });
  containers
    .command('report')
    .summary('show how a run ended (waiting for it with --wait)')
    .argument('<id>', 'container id')
    .option('--wait <ms>', 'wait up to this long for the run to end', parseMs)
    .action(async (id: string, opts: { wait?: number }, cmd: Command) => {
      const r = await remoteClient(ctx, cmd).containers.report({ params: { id }, query: opts.wait === undefined ? {} : { waitMs: Math.min(opts.wait, 110_000) } });
      const rep = r.report;
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, ...r },
        text:
          rep === null
            ? [...containerRows(ctx, r.container), r.done ? '(no report: not run by this server process)' : '(still running)']
            : [
                ...layout([
                  ['id', rep.id],
                  ['status', rep.status],
                  ['outcome', rep.outcome === null ? `failed: ${rep.error?.code ?? ''} ${rep.error?.message ?? ''}` : rep.outcome.ok ? rep.outcome.value : `error: ${rep.outcome.error}`],
                  ['logs', [...rep.logs]],
                ]),
                '',
                ...rep.explanation.text.trimEnd().split('\n'),
              ],
      });
    });
  for (const [name, summary] of [
    ['pause', 'pause a running container'],
    ['resume', 'resume a paused container'],
  ] as const) {
    containers
      .command(name)
      .summary(summary)
      .argument('<id>', 'container id')
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const client = remoteClient(ctx, cmd);
        const { container } = name === 'pause' ? await client.containers.pause({ params: { id } }) : await client.containers.resume({ params: { id } });
        ctx.finish({ exitCode: EXIT_OK, json: { ok: true, code: null, container }, text: containerRows(ctx, container) });
      });
  }
  containers
    .command('stop')
    .summary('stop a container: a grace period, then termination')
    .argument('<id>', 'container id')
    .option('--grace <ms>', 'how long it may take to finish', parseMs)
    .action(async (id: string, opts: { grace?: number }, cmd: Command) => {
      const r = await remoteClient(ctx, cmd).containers.stop({ params: { id }, body: opts.grace === undefined ? {} : { graceMs: opts.grace } });
      ctx.finish({ exitCode: EXIT_OK, json: { ok: true, code: null, ...r }, text: containerRows(ctx, r.container) });
    });

  program
    .command('launch')
    .summary('launch a package on a server (--server): a .forgepkg file (uploaded first) or a digest')
    .description('Launch a package on the server: a .forgepkg file is uploaded (verified by the server against its trust root) and launched by\nits digest; a 64-hex digest launches a package uploaded before. With --wait, waits for the run to end and prints its outcome.')
    .argument('<package>', 'a .forgepkg file, or the digest of an uploaded package')
    .option('--input <text>', 'the input of the plugin\'s run')
    .option('--name <name>', 'a container name')
    .option('--cpu-budget-ms <ms>', 'CPU budget of the run', parseMs)
    .option('--wait', 'wait for the run to end (up to 110 s)')
    .addHelpText('after', examples('forgeone --server http://127.0.0.1:7480 --token "$TOKEN" launch plugins/hello/dist/hello.forgepkg --input you --wait'))
    .action(async (what: string, opts: { input?: string; name?: string; cpuBudgetMs?: number; wait?: boolean }, cmd: Command) => {
      const client = remoteClient(ctx, cmd);
      const pkg = await packageDigest(ctx, client, what);
      const { container } = await client.containers.launch({
        body: { digest: pkg.digest, ...(opts.input === undefined ? {} : { input: opts.input }), ...(opts.name === undefined ? {} : { name: opts.name }), ...(opts.cpuBudgetMs === undefined ? {} : { cpuBudgetMs: opts.cpuBudgetMs }) },
      });
      if (opts.wait !== true) {
        ctx.finish({ exitCode: EXIT_OK, json: { ok: true, code: null, digest: pkg.digest, uploaded: pkg.uploaded, container }, text: containerRows(ctx, container) });
        return;
      }
      const r = await client.containers.report({ params: { id: container.id }, query: { waitMs: 110_000 } });
      const rep = r.report;
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, digest: pkg.digest, uploaded: pkg.uploaded, ...r },
        text: layout([
          ['id', container.id],
          ['status', r.container.status],
          ['outcome', rep === null ? '(still running)' : rep.outcome === null ? `failed: ${rep.error?.code ?? ''}` : rep.outcome.ok ? rep.outcome.value : `error: ${rep.outcome.error}`],
        ]),
      });
    });

  const packages = program.command('packages').summary('upload and list the packages of a server (--server)').description('Packages kept by the server behind `forgeone serve`. Needs --server and --token.');
  packages
    .command('ls')
    .alias('list')
    .summary('list uploaded packages')
    .action(async (_opts: unknown, cmd: Command) => {
      const { packages: list } = await remoteClient(ctx, cmd).packages.list();
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, packages: list },
        text: table(['NAME', 'VERSION', 'DIGEST', 'SIZE', 'UPLOADED', 'BY'], list.map((p) => [p.name, p.version, shortHex(p.digest, ctx.terminal), formatSize(p.size), when(p.uploadedAt), p.uploadedBy])),
      });
    });
  packages
    .command('upload')
    .summary('upload a signed package (the server verifies it)')
    .argument('<file>', 'a .forgepkg file')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const bytes = await readFileLimited(ctx.path(file), file, { maxBytes: MAX_UPLOAD_BYTES, limitCode: 'PKG_LIMIT_EXCEEDED' });
      const { package: p } = await remoteClient(ctx, cmd).packages.upload(bytes);
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, package: p },
        text: layout([
          ['uploaded', `${p.name}@${p.version}`],
          ['digest', p.digest],
          ['signers', p.signers.map((k) => shortHex(k, ctx.terminal))],
        ]),
      });
    });

  const quarantine = program.command('quarantine').summary('the red zone of a server (--server): list, analyse, release, terminate').description('Quarantined containers of the kernel behind `forgeone serve`. <id> is a container id or a quarantine record id. Needs --server and --token.');
  quarantine
    .command('ls')
    .alias('list')
    .summary('list red zone records')
    .option('--state <state>', 'only records in this state (active, analyzing, remediating, released, terminated)')
    .action(async (opts: { state?: string }, cmd: Command) => {
      const { records } = await remoteClient(ctx, cmd).quarantine.list({ query: opts.state === undefined ? {} : { state: opts.state as QuarantineRecord['state'] } });
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, records },
        text: table(['RECORD', 'CONTAINER', 'STATE', 'SINCE', 'REASON'], records.map((r) => [r.id, r.containerId, r.state, when(r.quarantinedAt), r.reason])),
      });
    });
  quarantine
    .command('analyze')
    .summary('analyse what a quarantined container did')
    .argument('<id>', 'container or record id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const r = await remoteClient(ctx, cmd).quarantine.analyze({ params: { id } });
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, report: r },
        text: [
          ...layout([
            ['record', `${r.record.id} (${r.record.state})`],
            ['container', r.record.containerId],
            ['calls', `${r.calls} before the quarantine, ${r.callsAfterQuarantine} after`],
            ['denied', String(r.denied.length)],
          ]),
          '',
          r.summary,
        ],
      });
    });
  quarantine
    .command('release')
    .summary('release a quarantined container: its held call continues')
    .argument('<id>', 'container or record id')
    .addHelpText('after', examples('forgeone --server http://127.0.0.1:7480 --token "$TOKEN" quarantine release ctr_01J...'))
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const r = await remoteClient(ctx, cmd).quarantine.release({ params: { id } });
      ctx.finish({ exitCode: EXIT_OK, json: { ok: true, code: null, ...r }, text: ['released', ...quarantineRows(r.record, r.containerId)] });
    });
  quarantine
    .command('terminate')
    .summary('terminate a quarantined container, keeping its evidence')
    .argument('<id>', 'container or record id')
    .option('--reason <text>', 'why')
    .action(async (id: string, opts: { reason?: string }, cmd: Command) => {
      const r = await remoteClient(ctx, cmd).quarantine.terminate({ params: { id }, body: opts.reason === undefined ? {} : { reason: opts.reason } });
      ctx.finish({ exitCode: EXIT_OK, json: { ok: true, code: null, ...r }, text: ['terminated', ...quarantineRows(r.record, r.containerId)] });
    });
}
