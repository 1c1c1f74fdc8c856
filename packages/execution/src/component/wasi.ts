import { createHash, randomFillSync } from 'node:crypto';
import { ForgeError } from '@forgeone/common';
import type { DirGrant, NetGrant } from '../capabilities.js';
import { Descriptor, DirectoryEntryStream, createComponentFilesystem } from './filesystem.js';
import { ComponentExit, RESULT_FAILED, RESULT_OK, recordedJson, type HostContext } from './host.js';
import { InputStream, IoError, OutputStream, Pollable, enterErrorInspection, pollList, type ByteSink, type ByteSource } from './io.js';
import type { NetBackend } from './net.js';
import { socketImports } from './sockets.js';

/** A directory granted to the guest (the lead's `DirGrant` from capabilities). */
export type ComponentPreopen = DirGrant;

export * from './sockets.js';

/** What the WASI 0.2 interfaces need (normalised by `buildComponentImports`). */
export interface WasiHostOptions {
  /** argv. */
  readonly args: readonly string[];
  /** Environment pairs. */
  readonly env: readonly (readonly [string, string])[];
  /** Initial working directory, if any. */
  readonly cwd: string | undefined;
  /** stdout sink. */
  readonly stdout: ByteSink | undefined;
  /** stderr sink. */
  readonly stderr: ByteSink | undefined;
  /** stdin source. */
  readonly stdin: ByteSource | undefined;
  /** Granted directories. */
  readonly preopens: readonly ComponentPreopen[];
  /** Granted network destinations. */
  readonly network: readonly NetGrant[];
  /** Wall clock, ns since the epoch. */
  readonly wallNs: () => bigint;
  /** Monotonic clock, ns. */
  readonly monotonicNs: () => bigint;
  /** Fills a buffer with random bytes (secure and insecure). */
  readonly random: (into: Uint8Array) => void;
  /** Registers a clean-up to run when the container's imports are disposed (host descriptors). */
  readonly onDispose: (fn: () => void) => void;
  /** The network backend of `wasi:sockets`; default one of its own, started on first use (`socketImports`). */
  readonly net?: NetBackend | undefined;
}

const textEncoder = new TextEncoder();

/**
 * What the record keeps of `get-environment`: the SHA3-256 of the pairs (each name and value as UTF-8,
 * NUL-terminated), never the values, which may be secrets.
 * @param env - the pairs, in the order the guest sees them
 * @returns 32 bytes
 */
export function environmentDigest(env: readonly (readonly [string, string])[]): Uint8Array {
  const h = createHash('sha3-256');
  for (const [k, v] of env) {
    h.update(k, 'utf8');
    h.update('\0');
    h.update(v, 'utf8');
    h.update('\0');
  }
  return new Uint8Array(h.digest());
}

/** Most random bytes one call may ask for. */
export const MAX_RANDOM_BYTES = 1 << 20;


/** `wasi:cli/terminal-input.terminal-input`: never handed out (the guest has no terminal). */
export class TerminalInput {}
/** `wasi:cli/terminal-output.terminal-output`: never handed out (the guest has no terminal). */
export class TerminalOutput {}

/**
 * Build the WASI 0.2 interfaces the host implements: cli, clocks, random, io, filesystem (preopens over the
 * confined filesystem layer, every descriptor method gated), sockets (gated and fenced by network grants).
 * @param ctx - the host context
 * @param o - normalised options
 * @returns import objects keyed by unversioned interface name
 */
export function wasiImports(ctx: HostContext, o: WasiHostOptions): Record<string, Record<string, unknown>> {
  const gate = ctx.gate;
  const mono = o.monotonicNs;
  const ID = {
    args: ctx.id('wasi:cli/args'),
    env: ctx.id('wasi:cli/env'),
    cwd: ctx.id('wasi:cli/cwd'),
    exit: ctx.id('wasi:cli/exit'),
    stdin: ctx.id('wasi:cli/stdin'),
    stdout: ctx.id('wasi:cli/stdout'),
    stderr: ctx.id('wasi:cli/stderr'),
    terminal: ctx.id('wasi:cli/terminal'),
    wall: ctx.id('wasi:clocks/wall-clock'),
    monotonic: ctx.id('wasi:clocks/monotonic-clock'),
    subscribe: ctx.id('wasi:clocks/subscribe'),
    random: ctx.id('wasi:random/random'),
    insecure: ctx.id('wasi:random/insecure'),
    seed: ctx.id('wasi:random/insecure-seed'),
    poll: ctx.id('wasi:io/poll'),
    preopens: ctx.id('wasi:filesystem/preopens'),
  };
  const sleeper = (ms: number): void => ctx.sleep(ms);
  const scratch = new Uint8Array(16);
  const view = new DataView(scratch.buffer);
  const wallBytes = scratch.subarray(0, 12);
  const u64Bytes = scratch.subarray(0, 8);

  const stdout = new OutputStream(ctx, ID.stdout, o.stdout, mono);
  const stderr = new OutputStream(ctx, ID.stderr, o.stderr, mono);
  const stdin = new InputStream(ctx, ID.stdin, o.stdin, mono);

  const randomBytes = (id: number, len: bigint): Uint8Array => {
    if (len > BigInt(MAX_RANDOM_BYTES)) throw new ForgeError('LIMIT_EXCEEDED', `at most ${MAX_RANDOM_BYTES} random bytes per call`);
    const n = Number(len);
    gate.args.size = n;
    ctx.enterOrTrap(id);
    const out = new Uint8Array(n);
    o.random(out);
    gate.exit(RESULT_OK, out);
    return out;
  };
  const randomU64 = (id: number): bigint => {
    gate.args.size = 8;
    ctx.enterOrTrap(id);
    o.random(u64Bytes);
    gate.exit(RESULT_OK, u64Bytes);
    return view.getBigUint64(0, true);
  };

  const fs = filesystemImports(ctx, o);
  const sockets = socketImports(ctx, { network: o.network, monotonicNs: o.monotonicNs, onDispose: o.onDispose, net: o.net });

  // Handing out a stream crosses the gate under the stream's syscall (`detail` = the function), as each
  // read and write does; refused, it traps (the function has no error case).
  const handOut = <T>(id: number, detail: string, value: T): T => {
    gate.args.detail = detail;
    ctx.enterOrTrap(id);
    gate.exit(RESULT_OK);
    return value;
  };
  return {
    'wasi:cli/environment': {
      // The environment may hold secrets: the record keeps its SHA3-256 (a replay must be given the same
      // environment, and diverges here when it was not); arguments and the cwd are recorded as JSON.
      getEnvironment(): [string, string][] {
        ctx.enterOrTrap(ID.env);
        const env = o.env.map(([k, v]): [string, string] => [k, v]);
        gate.exit(RESULT_OK, environmentDigest(env));
        return env;
      },
      getArguments(): string[] {
        ctx.enterOrTrap(ID.args);
        const args = recordedJson<string[]>(ctx)?.map(String) ?? [...o.args];
        gate.exit(RESULT_OK, textEncoder.encode(JSON.stringify(args)));
        return args;
      },
      initialCwd(): string | undefined {
        ctx.enterOrTrap(ID.cwd);
        const rec = recordedJson<{ cwd: string | null }>(ctx);
        const cwd = rec === undefined ? o.cwd : (rec.cwd ?? undefined);
        gate.exit(RESULT_OK, textEncoder.encode(JSON.stringify({ cwd: cwd ?? null })));
        return cwd;
      },
    },
    'wasi:cli/exit': {
      exit(status: { tag: 'ok' | 'err' }): never {
        gate.args.detail = status.tag;
        ctx.enterOrTrap(ID.exit);
        gate.exit(RESULT_OK);
        throw new ComponentExit(status.tag === 'ok' ? 0 : 1);
      },
      exitWithCode(code: number): never {
        gate.args.detail = String(code);
        ctx.enterOrTrap(ID.exit);
        gate.exit(RESULT_OK);
        throw new ComponentExit(code);
      },
    },
    'wasi:cli/stdin': { getStdin: (): InputStream => handOut(ID.stdin, 'get-stdin', stdin) },
    'wasi:cli/stdout': { getStdout: (): OutputStream => handOut(ID.stdout, 'get-stdout', stdout) },
    'wasi:cli/stderr': { getStderr: (): OutputStream => handOut(ID.stderr, 'get-stderr', stderr) },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: (): undefined => noTerminal(ctx, ID.terminal, 'stdin') },
    'wasi:cli/terminal-stdout': { getTerminalStdout: (): undefined => noTerminal(ctx, ID.terminal, 'stdout') },
    'wasi:cli/terminal-stderr': { getTerminalStderr: (): undefined => noTerminal(ctx, ID.terminal, 'stderr') },
    'wasi:clocks/wall-clock': {
      now(): { seconds: bigint; nanoseconds: number } {
        ctx.enterOrTrap(ID.wall);
        const ns = o.wallNs();
        const seconds = ns / 1_000_000_000n;
        const nanoseconds = Number(ns % 1_000_000_000n);
        view.setBigUint64(0, seconds, true);
        view.setUint32(8, nanoseconds, true);
        gate.exit(RESULT_OK, wallBytes);
        return { seconds, nanoseconds };
      },
      resolution(): { seconds: bigint; nanoseconds: number } {
        gate.args.detail = 'resolution';
        ctx.enterOrTrap(ID.wall);
        gate.exit(RESULT_OK);
        return { seconds: 0n, nanoseconds: 1_000_000 };
      },
    },
    'wasi:clocks/monotonic-clock': {
      now(): bigint {
        ctx.enterOrTrap(ID.monotonic);
        const ns = mono();
        view.setBigUint64(0, ns, true);
        gate.exit(RESULT_OK, u64Bytes);
        return ns;
      },
      resolution(): bigint {
        gate.args.detail = 'resolution';
        ctx.enterOrTrap(ID.monotonic);
        gate.exit(RESULT_OK);
        return 1000n;
      },
      subscribeInstant(when: bigint): Pollable {
        gate.args.detail = 'instant';
        ctx.enterOrTrap(ID.subscribe);
        gate.exit(RESULT_OK);
        return new Pollable(mono, when < 0n ? 0n : when, sleeper, ctx, 'clock');
      },
      subscribeDuration(duration: bigint): Pollable {
        gate.args.detail = 'duration';
        gate.args.size = Number(duration / 1_000_000n);
        ctx.enterOrTrap(ID.subscribe);
        const now = mono();
        gate.exit(RESULT_OK);
        return new Pollable(mono, now + (duration < 0n ? 0n : duration), sleeper, ctx, 'clock');
      },
    },
    'wasi:random/random': {
      getRandomBytes: (len: bigint): Uint8Array => randomBytes(ID.random, len),
      getRandomU64: (): bigint => randomU64(ID.random),
    },
    'wasi:random/insecure': {
      getInsecureRandomBytes: (len: bigint): Uint8Array => randomBytes(ID.insecure, len),
      getInsecureRandomU64: (): bigint => randomU64(ID.insecure),
    },
    'wasi:random/insecure-seed': {
      insecureSeed(): [bigint, bigint] {
        gate.args.size = 16;
        ctx.enterOrTrap(ID.seed);
        o.random(scratch);
        gate.exit(RESULT_OK, scratch);
        return [view.getBigUint64(0, true), view.getBigUint64(8, true)];
      },
    },
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': {
      Pollable,
      poll(list: Pollable[]): Uint32Array {
        gate.args.size = list.length;
        ctx.enterOrTrap(ID.poll);
        try {
          // With a pollable that waits on the outside world (a socket) in the list, the answer cannot be
          // recomputed: it is recorded (u32 indices, little-endian) and a replay answers from the record.
          if (!list.some((p) => p.probe !== undefined)) {
            const ready = pollList(list, mono);
            gate.exit(RESULT_OK);
            return ready;
          }
          const rec = ctx.replaying ? ctx.recorded() : null;
          const ready = rec !== null && rec.length % 4 === 0 && rec.length > 0 ? new Uint32Array(rec.slice().buffer) : pollList(list, mono);
          gate.exit(RESULT_OK, new Uint8Array(ready.buffer, ready.byteOffset, ready.byteLength));
          return ready;
        } catch (e) {
          gate.exit(RESULT_FAILED);
          throw e;
        }
      },
    },
    'wasi:io/streams': { InputStream, OutputStream },
    ...fs,
    ...sockets,
  };
}

function noTerminal(ctx: HostContext, id: number, which: string): undefined {
  // Allowed, the answer is "not a terminal" (the guest never has one); refused, the call traps with the
  // refusal code: the function has no error case, and a refusal is not an answer.
  ctx.gate.args.detail = which;
  ctx.enterOrTrap(id);
  ctx.gate.exit(RESULT_OK);
  return undefined;
}

function filesystemImports(ctx: HostContext, o: WasiHostOptions): Record<string, Record<string, unknown>> {
  const { dispose, preopens } = createComponentFilesystem(ctx, o.preopens, o.monotonicNs);
  o.onDispose(dispose);
  const PREOPENS = ctx.id('wasi:filesystem/preopens');
  // The answer is recorded as the JSON list of guest paths: a replay opens the same directories (as
  // replay-side objects) without being told which they were.
  const answer = new TextEncoder().encode(JSON.stringify(preopens.map((d) => d.guestPath)));
  return {
    'wasi:filesystem/preopens': {
      getDirectories(): [Descriptor, string][] {
        // Allowed with nothing granted, the answer is an empty list; refused, the call traps with the refusal
        // code (the list has no error case, and an empty answer would hide the refusal from the guest).
        ctx.gate.args.size = preopens.length;
        ctx.enterOrTrap(PREOPENS);
        ctx.gate.exit(RESULT_OK, answer);
        return preopens.map((d) => [d, d.guestPath]);
      },
    },
    'wasi:filesystem/types': {
      Descriptor,
      DirectoryEntryStream,
      // Inspecting an error crosses the gate as `wasi:io/error` (a trap when refused: no error case).
      filesystemErrorCode(err: unknown): string | undefined {
        enterErrorInspection(ctx, 'filesystem-error-code');
        ctx.gate.exit(RESULT_OK);
        return err instanceof IoError ? err.filesystemCode : undefined;
      },
    },
  };
}

/**
 * Default random source: the operating system's CSPRNG.
 * @param into - buffer to fill
 */
export function osRandom(into: Uint8Array): void {
  randomFillSync(into);
}
