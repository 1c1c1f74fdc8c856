import { ForgeError } from './errors.js';

/**
 * The syscalls the gate can intern: every host call a guest can make, named `namespace:package/operation`.
 * WASI 0.2 interfaces (and WASI preview1 functions, mapped onto the same names) and ForgeOne's own WIT
 * interfaces. Policies name these; a policy pattern that matches none of them draws a warning.
 */
export const KNOWN_SYSCALLS = Object.freeze([
  'wasi:cli/args',
  'wasi:cli/env',
  'wasi:cli/cwd',
  'wasi:cli/exit',
  'wasi:cli/stdin',
  'wasi:cli/stdout',
  'wasi:cli/stderr',
  'wasi:cli/terminal',
  'wasi:cli/sched-yield',
  'wasi:cli/raise',
  'wasi:clocks/wall-clock',
  'wasi:clocks/monotonic-clock',
  'wasi:clocks/subscribe',
  'wasi:random/random',
  'wasi:random/insecure',
  'wasi:random/insecure-seed',
  'wasi:io/poll',
  'wasi:io/read',
  'wasi:io/write',
  'wasi:io/check-write',
  'wasi:io/flush',
  'wasi:io/subscribe',
  'wasi:io/ready',
  'wasi:io/block',
  'wasi:io/drop',
  'wasi:io/error',
  'wasi:filesystem/preopens',
  'wasi:filesystem/open',
  'wasi:filesystem/read',
  'wasi:filesystem/write',
  'wasi:filesystem/stat',
  'wasi:filesystem/readdir',
  'wasi:filesystem/create-directory',
  'wasi:filesystem/remove-file',
  'wasi:filesystem/remove-directory',
  'wasi:filesystem/rename',
  'wasi:filesystem/link',
  'wasi:filesystem/symlink',
  'wasi:filesystem/readlink',
  'wasi:filesystem/set-size',
  'wasi:filesystem/set-times',
  'wasi:filesystem/sync',
  'wasi:filesystem/advise',
  'wasi:sockets/resolve',
  'wasi:sockets/tcp-connect',
  'wasi:sockets/tcp-bind',
  'wasi:sockets/tcp-listen',
  'wasi:sockets/tcp-accept',
  'wasi:sockets/tcp-send',
  'wasi:sockets/tcp-receive',
  'wasi:sockets/udp-bind',
  'wasi:sockets/udp-send',
  'wasi:sockets/udp-receive',
  'wasi:sockets/local',
  'wasi:http/outgoing-request',
  'wasi:http/incoming-handler',
  'wasi:http/fields-new',
  'wasi:http/fields-from-list',
  'wasi:http/fields-get',
  'wasi:http/fields-has',
  'wasi:http/fields-set',
  'wasi:http/fields-append',
  'wasi:http/fields-delete',
  'wasi:http/fields-entries',
  'wasi:http/fields-clone',
  'wasi:http/request-local',
  'wasi:http/response-local',
  'forgeone:log/write',
  'forgeone:kv/get',
  'forgeone:kv/set',
  'forgeone:kv/delete',
  'forgeone:kv/list',
  'forgeone:http/fetch',
  'forgeone:identity/get',
  'forgeone:info/get',
  'forgeone:time/now',
] as const);

/** A syscall name from the built-in catalogue. */
export type KnownSyscall = (typeof KNOWN_SYSCALLS)[number];

/** The shape of a syscall name: `namespace:package/operation`, lowercase. */
export const SYSCALL_NAME = /^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*\/[a-z][a-z0-9.-]*$/;

/**
 * Interns syscall names to small dense integer ids, so the hot path indexes arrays instead of hashing
 * strings. Ids are stable for the life of the table; a container's table is built when it is created.
 *
 * @example
 * ```ts
 * const table = new SyscallTable(['wasi:cli/stdout', 'wasi:filesystem/read']);
 * table.id('wasi:filesystem/read'); // 1
 * ```
 */
export class SyscallTable {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [];

  /** @param names - names to intern first, in order */
  constructor(names: Iterable<string> = []) {
    for (const n of names) this.intern(n);
  }

  /**
   * The id of a name, interning it if new.
   * @param name - a syscall name
   * @returns its id
   * @throws ForgeError `INVALID_ARGUMENT` when the name is malformed
   */
  intern(name: string): number {
    const existing = this.#ids.get(name);
    if (existing !== undefined) return existing;
    if (!SYSCALL_NAME.test(name)) throw new ForgeError('INVALID_ARGUMENT', `malformed syscall name: ${JSON.stringify(name)}`);
    const id = this.#names.length;
    this.#names.push(name);
    this.#ids.set(name, id);
    return id;
  }

  /**
   * The id of an interned name.
   * @param name - a syscall name
   * @returns the id, or -1 when not interned
   */
  id(name: string): number {
    return this.#ids.get(name) ?? -1;
  }

  /**
   * The name of an id.
   * @param id - an interned id
   * @returns the name
   * @throws ForgeError `NOT_FOUND` for an unknown id
   */
  name(id: number): string {
    const n = this.#names[id];
    if (n === undefined) throw new ForgeError('NOT_FOUND', `no syscall with id ${id}`);
    return n;
  }

  /** How many names are interned. */
  get size(): number {
    return this.#names.length;
  }

  /** @returns the names in id order */
  names(): readonly string[] {
    return this.#names;
  }
}
