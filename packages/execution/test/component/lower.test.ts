// The core-level forms of forgeone:host/log.write and time.now (jco hybrid bindings, component/lower.ts):
// a WAT component calls the lowered imports with raw pointers, so these tests reach what a JS guest never
// sends — bad discriminants, out-of-bounds pointers, memory that grew, UTF-16 strings — and check that the
// core-level path records exactly what the JS-level path records.
import { describe, expect, it } from 'vitest';
import { buildComponentImports } from '../../src/component/adapter.js';
import { CABI_LOWER } from '../../src/component/lower.js';
import { transpileComponent, type ComponentImports, type LoadedComponent } from '../../src/component/loader.js';
import { createMemoryServices } from '../../src/component/services.js';
import { allowAllExcept, policyGate, thrown, watComponent } from './helpers.js';

const HOST_ERROR = `(type $he (record (field "code" string) (field "message" string))) (export $e "host-error" (type (eq $he)))`;

// Exports: log(level, ptr, len) -> u32 (the result tag), now() -> u32 (the tag; the value stays at 72),
// code() -> string (the host-error code of the last failed log call), poke(at, byte), grow(pages) -> u32.
function guest(encoding: 'utf8' | 'utf16'): string {
  return `(component
  (import "forgeone:host/time@0.1.0" (instance $time ${HOST_ERROR}
    (type $f (func (result (result u64 (error $e))))) (export "now" (func (type $f)))))
  (import "forgeone:host/log@0.1.0" (instance $log ${HOST_ERROR}
    (type $lv (enum "debug" "info" "warn" "error")) (export $l "level" (type (eq $lv)))
    (type $f (func (param "level" $l) (param "message" string) (result (result (error $e))))) (export "write" (func (type $f)))))
  (core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))
  (alias export $time "now" (func $time-now))
  (alias export $log "write" (func $log-write))
  (core func $now (canon lower (func $time-now) (memory $mem) (realloc $realloc)))
  (core func $write (canon lower (func $log-write) (memory $mem) (realloc $realloc) string-encoding=${encoding}))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "now" (func $now (param i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (func (export "log") (param i32 i32 i32) (result i32)
      (call $write (local.get 0) (local.get 1) (local.get 2) (i32.const 96))
      (i32.load8_u (i32.const 96)))
    (func (export "now") (result i32) (call $now (i32.const 64)) (i32.load8_u (i32.const 64)))
    (func (export "now-value") (result i64) (i64.load (i32.const 72)))
    (func (export "code") (result i32) (i32.const 100))
    (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
  (core instance $host (export "now" (func $now)) (export "write" (func $write)))
  (core instance $main (instantiate $main (with "libc" (instance $libc)) (with "host" (instance $host))))
  (func (export "log") (param "level" u32) (param "ptr" u32) (param "len" u32) (result u32) (canon lift (core func $main "log")))
  (func (export "now") (result u32) (canon lift (core func $main "now")))
  (func (export "now-value") (result u64) (canon lift (core func $main "now-value")))
  (func (export "code") (result string) (canon lift (core func $main "code") (memory $mem) (realloc $realloc)))
  (func (export "poke") (param "at" u32) (param "byte" u32) (canon lift (core func $main "poke")))
  (func (export "grow") (param "pages" u32) (result u32) (canon lift (core func $main "grow"))))`;
}

interface Guest {
  log(level: number, ptr: number, len: number): number;
  now(): number;
  nowValue(): bigint;
  code(): string;
  poke(at: number, byte: number): void;
  grow(pages: number): number;
}

const loaded = new Map<string, LoadedComponent>();
async function load(encoding: 'utf8' | 'utf16'): Promise<LoadedComponent> {
  let l = loaded.get(encoding);
  if (l === undefined) {
    l = await transpileComponent(await watComponent(guest(encoding)));
    loaded.set(encoding, l);
  }
  return l;
}

// Write bytes into guest memory through the guest's own store instruction.
function put(g: Guest, at: number, bytes: Uint8Array): void {
  bytes.forEach((b, i) => g.poke(at + i, b));
}

// The import object with the JS-level functions replaced by functions that fail the test: only the core-level
// forms may be reached.
function coreOnly(imports: ComponentImports): ComponentImports {
  const out: ComponentImports = {};
  for (const key of ['forgeone:host/log', 'forgeone:host/time'] as const) {
    const iface = imports[key]!;
    const fns: Record<string, unknown> = {};
    for (const name of key.endsWith('log') ? ['write'] : ['now']) {
      const lower = (iface[name] as Record<symbol, unknown>)[CABI_LOWER];
      expect(typeof lower).toBe('function');
      const jsLevel = (): never => {
        throw new Error(`the JS-level ${key}.${name} was called`);
      };
      fns[name] = Object.assign(jsLevel, { [CABI_LOWER]: lower });
    }
    out[key] = fns;
  }
  return out;
}

describe('core-level host functions (jco hybrid bindings)', () => {
  it('log.write reads the message from guest memory, delivers it, and records level and byte size', async () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices();
    const g = (await load('utf8')).instantiate(coreOnly(buildComponentImports({ gate, services }))) as unknown as Guest;
    const message = new TextEncoder().encode('grüße, 世界');
    put(g, 2000, message);
    expect(g.log(2, 2000, message.length)).toBe(0);
    expect(services.logs).toEqual([{ level: 'warn', message: 'grüße, 世界' }]);
    const [rec] = recorder.flush();
    expect(rec).toMatchObject({ syscall: 'forgeone:log/write', verdict: 'allow', allowed: true, result: 0, args: { detail: 'warn', size: message.length } });
  });

  it('records the same calls as the JS-level functions do', async () => {
    const records = [];
    for (const core of [true, false]) {
      const { gate, recorder } = policyGate(allowAllExcept());
      const services = createMemoryServices();
      const imports = buildComponentImports({ gate, services, clocks: { wallMs: () => 1_700_000_000_123.9 } });
      const l = await load('utf8');
      if (core) {
        const g = l.instantiate(coreOnly(imports)) as unknown as Guest;
        put(g, 2000, new TextEncoder().encode('hello'));
        g.log(1, 2000, 5);
        g.log(1, 2000, 5);
        g.log(3, 2000, 0);
        expect(g.now()).toBe(0);
        expect(g.nowValue()).toBe(1_700_000_000_123n);
      } else {
        // The same calls through the JS-level functions.
        const log = imports['forgeone:host/log']!.write as (l: string, m: string) => void;
        const now = imports['forgeone:host/time']!.now as () => bigint;
        log('info', 'hello');
        log('info', 'hello');
        log('error', '');
        expect(now()).toBe(1_700_000_000_123n);
      }
      expect(services.logs).toEqual([
        { level: 'info', message: 'hello' },
        { level: 'info', message: 'hello' },
        { level: 'error', message: '' },
      ]);
      records.push(recorder.flush().map((r) => ({ ...r, start: 0, duration: 0 })));
    }
    expect(records[0]).toHaveLength(4);
    expect(records[0]).toEqual(records[1]);
    expect(Buffer.from(records[0]![3]!.resultBytes!).readBigUInt64LE(0)).toBe(1_700_000_000_123n);
  });

  it('a refused call writes host-error into guest memory; the refusal is recorded', async () => {
    const { gate, recorder } = policyGate(allowAllExcept('forgeone:log/write', 'forgeone:time/now'));
    const services = createMemoryServices();
    const g = (await load('utf8')).instantiate(coreOnly(buildComponentImports({ gate, services }))) as unknown as Guest;
    put(g, 2000, new TextEncoder().encode('secret'));
    expect(g.log(1, 2000, 6)).toBe(1);
    expect(g.code()).toBe('POLICY_DENIED');
    expect(g.now()).toBe(1);
    expect(services.logs).toEqual([]);
    const recs = recorder.flush();
    expect(recs.map((r) => [r.syscall, r.verdict, r.allowed, r.result])).toEqual([
      ['forgeone:log/write', 'deny', false, -1],
      ['forgeone:time/now', 'deny', false, -1],
    ]);
  });

  it('a message over the limit crosses the gate, is on record, and fails with LIMIT_EXCEEDED', async () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices();
    const g = (await load('utf8')).instantiate(coreOnly(buildComponentImports({ gate, services, maxLogBytes: 4 }))) as unknown as Guest;
    expect(g.log(1, 2000, 5)).toBe(1);
    expect(g.code()).toBe('LIMIT_EXCEEDED');
    expect(services.logs).toEqual([]);
    const [rec] = recorder.flush();
    expect(rec).toMatchObject({ syscall: 'forgeone:log/write', verdict: 'allow', allowed: true, result: 1, args: { detail: 'info', size: 5 } });
    expect(JSON.parse(new TextDecoder().decode(rec!.resultBytes!))).toMatchObject({ code: 'LIMIT_EXCEEDED' });
  });

  it('traps on a bad discriminant and on out-of-bounds memory, recording nothing', async () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const g = (await load('utf8')).instantiate(coreOnly(buildComponentImports({ gate }))) as unknown as Guest;
    expect(String(thrown(() => g.log(4, 0, 0)))).toMatch(/invalid discriminant/);
    expect(String(thrown(() => g.log(1, 65_530, 10)))).toMatch(/out of bounds/);
    // A pointer with the top bit set is an unsigned offset far out of bounds, not a negative one.
    expect(String(thrown(() => g.log(1, 0x8000_0000, 1)))).toMatch(/out of bounds/);
    expect(recorder.flush()).toEqual([]);
  });

  it('reads memory the guest grew after the views were made', async () => {
    const { gate } = policyGate(allowAllExcept());
    const services = createMemoryServices();
    const g = (await load('utf8')).instantiate(coreOnly(buildComponentImports({ gate, services }))) as unknown as Guest;
    put(g, 2000, new TextEncoder().encode('a'));
    g.log(1, 2000, 1);
    expect(g.grow(1)).toBe(1);
    put(g, 70_000, new TextEncoder().encode('grown'));
    expect(g.log(1, 70_000, 5)).toBe(0);
    expect(services.logs.map((l) => l.message)).toEqual(['a', 'grown']);
  });

  it('decodes UTF-16 strings and records their UTF-8 size', async () => {
    const { gate, recorder } = policyGate(allowAllExcept());
    const services = createMemoryServices();
    const g = (await load('utf16')).instantiate(coreOnly(buildComponentImports({ gate, services }))) as unknown as Guest;
    const text = 'héllo';
    const units = new Uint8Array(text.length * 2);
    for (let i = 0; i < text.length; i++) new DataView(units.buffer).setUint16(i * 2, text.charCodeAt(i), true);
    put(g, 2000, units);
    expect(g.log(0, 2000, text.length)).toBe(0);
    expect(services.logs).toEqual([{ level: 'debug', message: 'héllo' }]);
    expect(recorder.flush()[0]!.args).toEqual({ detail: 'debug', size: 6 });
  });
});
