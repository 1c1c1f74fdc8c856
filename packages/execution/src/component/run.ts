import { ForgeError, isForgeError } from '@forgeone/common';
import { ComponentExit } from './host.js';
import type { ComponentExports, ComponentImports, InstantiateHooks, LoadedComponent } from './loader.js';

/** The outcome of calling a `run(input: string) -> result<string, string>` export. */
export type RunOutcome =
  | { readonly ok: true; readonly value: string; readonly exitCode?: number }
  | { readonly ok: false; readonly error: string; readonly exitCode?: number };

/** Options of {@link runComponent} and {@link ComponentInstance.call}. */
export interface RunOptions {
  /**
   * The export to call: a world-level function (`run`), `interface#function`, or {@link COMMAND_EXPORT}
   * (`wasi:cli/run`, any version) to run a WASI command. Default `run`.
   */
  readonly export?: string;
  /** The input string (not passed to a WASI command, which reads its arguments and stdin). */
  readonly input: string;
}

/**
 * The export name that runs a WASI command component: its `wasi:cli/run` interface's `run: func() -> result`,
 * whatever the interface's version (`wasi:cli/run@0.2.0`, `@0.2.3`, ...).
 */
export const COMMAND_EXPORT = 'wasi:cli/run';

const COMMAND_NAME = /^wasi:cli\/run(@[^#]*)?(#run)?$/;
const CLI_RUN_INTERFACE = /^wasi:cli\/run(@|$)/;

/**
 * Whether an export name asks for a WASI command's `run` (`wasi:cli/run`, versioned or not, with or without
 * `#run`).
 * @param name - an export name
 * @returns true for the command's run
 */
export function isCommandExport(name: string): boolean {
  return COMMAND_NAME.test(name);
}

/**
 * The export to call when none is named: `run` when the component has a world-level `run` function (the
 * plugin ABI), else {@link COMMAND_EXPORT} when it exports `wasi:cli/run` (a WASI command, as
 * `cargo component` and wasm32-wasip2 build them), else `run` (which then fails as missing).
 * @param exports - the component's exports (`LoadedComponent.exports`)
 * @returns the export name
 */
export function defaultExport(exports: readonly (readonly [string, 'function' | 'instance'])[]): string {
  if (exports.some(([n, kind]) => n === 'run' && kind === 'function')) return 'run';
  return exports.some(([n, kind]) => kind === 'instance' && CLI_RUN_INTERFACE.test(n)) ? COMMAND_EXPORT : 'run';
}

/**
 * Turn whatever a guest call threw into a ForgeError: refusals that trapped keep their code
 * (`POLICY_DENIED`, `CONTAINER_TERMINATED`, ...), WebAssembly traps and stack overflows become
 * `WASM_TRAP` naming the trap, link failures `WASM_LINK_ERROR`.
 * @param e - anything thrown by instantiation or a call
 * @returns the error
 */
export function guestError(e: unknown): ForgeError {
  if (isForgeError(e)) return e;
  if (e instanceof WebAssembly.RuntimeError) return new ForgeError('WASM_TRAP', `the guest trapped: ${e.message}`, { cause: e, details: { trap: e.message } });
  if (e instanceof WebAssembly.LinkError) return new ForgeError('WASM_LINK_ERROR', `the component does not link: ${e.message}`, { cause: e });
  if (e instanceof WebAssembly.CompileError) return new ForgeError('WASM_INVALID', `the component does not compile: ${e.message}`, { cause: e });
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new ForgeError('WASM_TRAP', 'the guest trapped: stack overflow', { cause: e, details: { trap: 'stack overflow' } });
  const message = e instanceof Error ? e.message : String(e);
  // The rest come from the generated bindings (a guest returning values that violate its own types) or
  // from a host bug: the call is dead either way.
  return new ForgeError('WASM_TRAP', `the guest call failed: ${message}`, { cause: e, details: { trap: message } });
}

function isComponentError(e: unknown): e is Error & { payload: unknown } {
  return e instanceof Error && e.constructor.name === 'ComponentError' && Object.hasOwn(e, 'payload');
}

/**
 * One instantiated component. After a trap the instance is dead: its memory may be inconsistent, so every
 * later call fails with `CONTAINER_FAILED`.
 */
export class ComponentInstance {
  /** The lifted exports. */
  readonly exports: ComponentExports;
  readonly #names: ReadonlySet<string>;
  #dead: ForgeError | null = null;

  /**
   * @param exports - the lifted exports
   * @param names - the export names the component declares
   */
  constructor(exports: ComponentExports, names: ReadonlySet<string>) {
    this.exports = exports;
    this.#names = names;
  }

  /** Whether an earlier call trapped. */
  get dead(): boolean {
    return this.#dead !== null;
  }

  /**
   * Call a `func(input: string) -> result<string, string>` export, or run a WASI command
   * ({@link COMMAND_EXPORT}: `run: func() -> result`, the input unused).
   * @param options - export name and input
   * @returns `{ ok, value }` or `{ ok: false, error }` (the guest's own error, or its exit); a command's
   *   outcome always has an `exitCode`: 0 for `ok`, 1 for `err`, or the code it exited with
   * @throws ForgeError `WASM_EXPORT_MISSING`, `WASM_TRAP`, `INVALID_ARGUMENT`, `CONTAINER_FAILED` (dead
   *   instance), or the refusal code of a host call that trapped
   */
  call(options: RunOptions): RunOutcome {
    if (this.#dead !== null) throw new ForgeError('CONTAINER_FAILED', 'the component instance trapped earlier and cannot be called again', { cause: this.#dead });
    if (typeof options.input !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'input must be a string');
    const name = options.export ?? 'run';
    const command = isCommandExport(name);
    const fn = command ? this.#command(name) : this.#lookup(name);
    try {
      if (command) {
        // `run: func() -> result`: ok lifts to undefined, err throws a ComponentError.
        fn('');
        return { ok: true, value: '', exitCode: 0 };
      }
      const value = fn(options.input);
      if (typeof value !== 'string') throw new ForgeError('WASM_TRAP', 'the export did not return a string');
      return { ok: true, value };
    } catch (e) {
      if (isComponentError(e)) {
        if (command) return { ok: false, error: 'the command returned an error', exitCode: 1 };
        return { ok: false, error: typeof e.payload === 'string' ? e.payload : String(e.payload) };
      }
      if (e instanceof ComponentExit) {
        this.#dead = new ForgeError('CONTAINER_TERMINATED', e.message);
        return e.exitCode === 0 ? { ok: true, value: '', exitCode: 0 } : { ok: false, error: e.message, exitCode: e.exitCode };
      }
      const err = guestError(e);
      this.#dead = err;
      throw err;
    }
  }

  /** The `run` function of the component's `wasi:cli/run` export (the version named, or any). */
  #command(name: string): (input: string) => unknown {
    const hash = name.indexOf('#');
    const wanted = hash < 0 ? name : name.slice(0, hash);
    let found: string | undefined;
    for (const n of this.#names) {
      if (wanted === COMMAND_EXPORT ? CLI_RUN_INTERFACE.test(n) : n === wanted) {
        found = n;
        break;
      }
    }
    const iface = found === undefined ? undefined : this.exports[found];
    const run = typeof iface === 'object' && iface !== null ? (iface as Record<string, unknown>)['run'] : undefined;
    if (typeof run !== 'function') {
      throw new ForgeError('WASM_EXPORT_MISSING', `the component does not export ${JSON.stringify(name)} (it is not a WASI command)`, { details: { export: name, exports: [...this.#names] } });
    }
    return run as (input: string) => unknown;
  }

  #lookup(name: string): (input: string) => unknown {
    const hash = name.indexOf('#');
    const top = hash < 0 ? name : name.slice(0, hash);
    if (!this.#names.has(top)) throw new ForgeError('WASM_EXPORT_MISSING', `the component does not export ${JSON.stringify(name)}`, { details: { export: name, exports: [...this.#names] } });
    let v: unknown = this.exports[top];
    if (hash >= 0) {
      const member = name.slice(hash + 1).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[member] : undefined;
    }
    if (typeof v !== 'function') throw new ForgeError('WASM_EXPORT_MISSING', `the component's export ${JSON.stringify(name)} is not a function`, { details: { export: name } });
    return v as (input: string) => unknown;
  }
}

/**
 * Instantiate a loaded component with an import object.
 * @param loaded - from `transpileComponent`
 * @param imports - from `buildComponentImports`
 * @param hooks - observe the core instances (see {@link LoadedComponent.instantiate})
 * @returns the instance
 * @throws ForgeError `WASM_TRAP` / `WASM_LINK_ERROR` / a refusal code when the guest's start-up fails
 */
export function instantiateComponent(loaded: LoadedComponent, imports: ComponentImports, hooks?: InstantiateHooks): ComponentInstance {
  let exports: ComponentExports;
  try {
    exports = loaded.instantiate(imports, hooks);
  } catch (e) {
    throw guestError(e);
  }
  // jco names exported interfaces in camelCase; accept both spellings of world-level names.
  const names = new Set<string>();
  for (const [n] of loaded.exports) {
    names.add(n);
    names.add(n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()));
  }
  for (const k of Object.keys(exports)) names.add(k);
  return new ComponentInstance(exports, names);
}

/**
 * Instantiate a component and call its `run(input) -> result<string, string>` export once (or run it as a
 * WASI command: see {@link defaultExport}).
 * @param loaded - from `transpileComponent`
 * @param imports - from `buildComponentImports`
 * @param options - export name (default {@link defaultExport}) and input
 * @returns the outcome
 * @throws ForgeError `WASM_EXPORT_MISSING` when the export is absent, `WASM_TRAP` naming the trap, or the
 *   refusal code of a host call without an error case
 */
export function runComponent(loaded: LoadedComponent, imports: ComponentImports, options: RunOptions): RunOutcome {
  const name = options.export ?? defaultExport(loaded.exports);
  const top = name.includes('#') ? name.slice(0, name.indexOf('#')) : name;
  const command = isCommandExport(name) && (top === COMMAND_EXPORT ? loaded.exports.some(([n]) => CLI_RUN_INTERFACE.test(n)) : loaded.exports.some(([n]) => n === top));
  if (!command && !loaded.exports.some(([n]) => n === top || n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) === top)) {
    throw new ForgeError('WASM_EXPORT_MISSING', `the component does not export ${JSON.stringify(name)}`, { details: { export: name, exports: loaded.exports.map(([n]) => n) } });
  }
  return instantiateComponent(loaded, imports).call({ export: name, input: options.input });
}
