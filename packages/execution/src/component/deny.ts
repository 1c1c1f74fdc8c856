import { ForgeError, SYSCALL_NAME } from '@forgeone/common';
import { RESULT_REFUSED, kebab, type HostContext } from './host.js';

const FS_METHODS: Readonly<Record<string, string>> = {
  'read-via-stream': 'read',
  read: 'read',
  'write-via-stream': 'write',
  'append-via-stream': 'write',
  write: 'write',
  'read-directory': 'readdir',
  'read-directory-entry': 'readdir',
  'create-directory-at': 'create-directory',
  'open-at': 'open',
  'readlink-at': 'readlink',
  'remove-directory-at': 'remove-directory',
  'rename-at': 'rename',
  'symlink-at': 'symlink',
  'unlink-file-at': 'remove-file',
  'link-at': 'link',
  'set-size': 'set-size',
  'set-times': 'set-times',
  'set-times-at': 'set-times',
  sync: 'sync',
  'sync-data': 'sync',
  advise: 'advise',
};

const SOCKET_METHODS: Readonly<Record<string, string>> = {
  'start-bind': 'bind',
  'finish-bind': 'bind',
  'start-connect': 'connect',
  'finish-connect': 'connect',
  'start-listen': 'listen',
  'finish-listen': 'listen',
  accept: 'accept',
  send: 'send',
  'check-send': 'send',
  receive: 'receive',
  stream: 'send',
};

/**
 * The catalogue syscall nearest to an import the host does not implement, so even an attempt to use an
 * unimplemented interface is decided and recorded under a name policies can match.
 * @param iface - the import key (`wasi:sockets/udp`, `acme:thing/api`)
 * @param member - the jco member name (`startBind`, `getStdout`), kebab-cased here
 * @returns a syscall name (a catalogue name for WASI and forgeone interfaces)
 */
export function nearestSyscall(iface: string, member: string): string {
  const m = kebab(member);
  const [ns = '', rest = ''] = iface.split(':', 2);
  const [pkg = '', name = ''] = rest.split('/', 2);
  if (ns === 'wasi') {
    switch (pkg) {
      case 'cli':
        if (name === 'environment') return m === 'get-arguments' ? 'wasi:cli/args' : m === 'initial-cwd' ? 'wasi:cli/cwd' : 'wasi:cli/env';
        if (name === 'exit' || name === 'stdin' || name === 'stdout' || name === 'stderr') return `wasi:cli/${name}`;
        return 'wasi:cli/terminal';
      case 'clocks':
        return name === 'monotonic-clock' ? 'wasi:clocks/monotonic-clock' : 'wasi:clocks/wall-clock';
      case 'random':
        return name === 'insecure' || name === 'insecure-seed' ? `wasi:random/${name}` : 'wasi:random/random';
      case 'io':
        if (m === 'ready' || m === 'block' || m === 'subscribe' || m === 'check-write') return `wasi:io/${m}`;
        if (m === 'flush' || m === 'blocking-flush') return 'wasi:io/flush';
        if (name === 'poll') return 'wasi:io/poll';
        return /read|skip/.test(m) ? 'wasi:io/read' : 'wasi:io/write';
      case 'filesystem':
        if (name === 'preopens') return 'wasi:filesystem/preopens';
        return `wasi:filesystem/${FS_METHODS[m] ?? 'stat'}`;
      case 'sockets': {
        if (name === 'ip-name-lookup') return 'wasi:sockets/resolve';
        const op = SOCKET_METHODS[m] ?? 'connect';
        if (name === 'udp' || name === 'udp-create-socket') return `wasi:sockets/udp-${op === 'connect' || op === 'listen' || op === 'accept' ? 'send' : op}`;
        return `wasi:sockets/tcp-${op}`;
      }
      case 'http':
        return name === 'incoming-handler' ? 'wasi:http/incoming-handler' : 'wasi:http/outgoing-request';
      default:
        break;
    }
  }
  if (ns === 'forgeone' && pkg === 'host') {
    const candidate = `forgeone:${name}/${m}`;
    if (SYSCALL_NAME.test(candidate)) return candidate;
  }
  const generic = `${ns}:${pkg}/${name}.${m}`.toLowerCase().replace(/[^a-z0-9:/.-]/g, '-');
  return SYSCALL_NAME.test(generic) ? generic : 'forgeone:host/unknown-import';
}

/**
 * A function that crosses the gate under `syscall`, records the attempt as refused, and traps: the
 * adapter has nothing to perform. The trap is a ForgeError with the gate's refusal code, or
 * `WASM_LINK_ERROR` ("not implemented by this host") when the policy would have allowed it.
 * @param ctx - the host context
 * @param iface - import key
 * @param member - member name (decides the syscall)
 * @param label - how the member is named in the record's `detail` (`[method]tcp-socket.start-bind`)
 * @returns the deny function
 */
export function denyFunction(ctx: HostContext, iface: string, member: string, label = kebab(member)): (...args: unknown[]) => never {
  const syscall = nearestSyscall(iface, member);
  const id = ctx.id(syscall);
  const what = `${iface}#${label}`;
  return () => {
    const gate = ctx.gate;
    gate.args.detail = what;
    const allowed = gate.enter(id);
    const err = allowed
      ? new ForgeError('WASM_LINK_ERROR', `${what} is not implemented by this host`, { details: { syscall, import: what } })
      : new ForgeError(ctx.refusalCode(), `${what} refused (${syscall})`, { details: { syscall, import: what, rule: gate.decision?.rule ?? null } });
    gate.exit(RESULT_REFUSED);
    throw err;
  };
}

/**
 * A resource class whose constructor, static functions and methods are all deny functions. Only string
 * properties are denied; symbols (jco's `Symbol.for('cabiDispose')`, `Symbol.hasInstance`) read normally.
 * @param ctx - the host context
 * @param iface - import key
 * @param className - the resource's class name (PascalCase)
 * @returns the class
 */
function denyClass(ctx: HostContext, iface: string, className: string): unknown {
  const resource = kebab(className);
  const methods = new Map<string, (...args: unknown[]) => never>();
  const proto = new Proxy(Object.create(null) as object, {
    get(target, prop, receiver) {
      if (typeof prop !== 'string') return Reflect.get(target, prop, receiver);
      let fn = methods.get(prop);
      if (fn === undefined) {
        fn = denyFunction(ctx, iface, prop, `[method]${resource}.${kebab(prop)}`);
        methods.set(prop, fn);
      }
      return fn;
    },
  });
  const ctor = denyFunction(ctx, iface, 'constructor', `[constructor]${resource}`);
  function Denied(): never {
    return ctor();
  }
  Denied.prototype = proto;
  return new Proxy(Denied, {
    get(target, prop, receiver) {
      if (typeof prop !== 'string' || prop === 'prototype' || prop === 'name' || prop === 'length') return Reflect.get(target, prop, receiver);
      let fn = methods.get(`static:${prop}`);
      if (fn === undefined) {
        fn = denyFunction(ctx, iface, prop, `[static]${resource}.${kebab(prop)}`);
        methods.set(`static:${prop}`, fn);
      }
      return fn;
    },
  });
}

/**
 * The import object of an interface the host does not supply: every function (and every resource's
 * methods) is a deny function, so the component still instantiates and any use is decided, recorded and
 * refused. PascalCase members are resource classes, the rest functions.
 * @param ctx - the host context
 * @param iface - import key
 * @param base - members the host does implement, taking precedence
 * @returns the import object
 */
export function denyInterface(ctx: HostContext, iface: string, base: Record<string, unknown> = {}): Record<string, unknown> {
  const made = new Map<string, unknown>();
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (typeof prop !== 'string' || Object.hasOwn(target, prop)) return Reflect.get(target, prop, receiver);
      let v = made.get(prop);
      if (v === undefined) {
        v = /^[A-Z]/.test(prop) ? denyClass(ctx, iface, prop) : denyFunction(ctx, iface, prop);
        made.set(prop, v);
      }
      return v;
    },
  });
}
