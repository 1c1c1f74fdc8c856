import { ForgeError, isForgeError } from '@forgeone/common';
import { ComponentExit } from './host.js';
import type { ComponentExports, ComponentImports, InstantiateHooks, LoadedComponent } from './loader.js';

/** The outcome of calling a `run(input: string) -> result<string, string>` export. */
export type RunOutcome =
  | { readonly ok: true; readonly value: string; readonly exitCode?: number }
  | { readonly ok: false; readonly error: string; readonly exitCode?: number };

/** Options of {@link runComponent} and {@link ComponentInstance.call}. */
export interface RunOptions {
  /** The export to call: a world-level function (`run`) or `interface#function`. Default `run`. */
  readonly export?: string;
  /** The input string. */
  readonly input: string;
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
   * Call a `func(input: string) -> result<string, string>` export.
   * @param options - export name and input
   * @returns `{ ok, value }` or `{ ok: false, error }` (the guest's own error, or its exit)
   * @throws ForgeError `WASM_EXPORT_MISSING`, `WASM_TRAP`, `INVALID_ARGUMENT`, `CONTAINER_FAILED` (dead
   *   instance), or the refusal code of a host call that trapped
   */
  call(options: RunOptions): RunOutcome {
    if (this.#dead !== null) throw new ForgeError('CONTAINER_FAILED', 'the component instance trapped earlier and cannot be called again', { cause: this.#dead });
    if (typeof options.input !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'input must be a string');
    const fn = this.#lookup(options.export ?? 'run');
    try {
      const value = fn(options.input);
      if (typeof value !== 'string') throw new ForgeError('WASM_TRAP', 'the export did not return a string');
      return { ok: true, value };
    } catch (e) {
      if (isComponentError(e)) return { ok: false, error: typeof e.payload === 'string' ? e.payload : String(e.payload) };
      if (e instanceof ComponentExit) {
        this.#dead = new ForgeError('CONTAINER_TERMINATED', e.message);
        return e.exitCode === 0 ? { ok: true, value: '', exitCode: 0 } : { ok: false, error: e.message, exitCode: e.exitCode };
      }
      const err = guestError(e);
      this.#dead = err;
      throw err;
    }
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
 * Instantiate a component and call its `run(input) -> result<string, string>` export once.
 * @param loaded - from `transpileComponent`
 * @param imports - from `buildComponentImports`
 * @param options - export name (default `run`) and input
 * @returns the outcome
 * @throws ForgeError `WASM_EXPORT_MISSING` when the export is absent, `WASM_TRAP` naming the trap, or the
 *   refusal code of a host call without an error case
 */
export function runComponent(loaded: LoadedComponent, imports: ComponentImports, options: RunOptions): RunOutcome {
  const name = options.export ?? 'run';
  const top = name.includes('#') ? name.slice(0, name.indexOf('#')) : name;
  if (!loaded.exports.some(([n]) => n === top || n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) === top)) {
    throw new ForgeError('WASM_EXPORT_MISSING', `the component does not export ${JSON.stringify(name)}`, { details: { export: name, exports: loaded.exports.map(([n]) => n) } });
  }
  return instantiateComponent(loaded, imports).call(options);
}
