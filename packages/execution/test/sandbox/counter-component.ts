// A counter component for snapshot tests: `run(input) -> string` reads the time through forgeone:host/time
// (one recorded call), adds one to a count kept in linear memory and in a global, and returns both counts
// as two digits each (`0303`). Its state between calls lives in its core instance only.

/**
 * The counter's WebAssembly text (component model).
 * @param step - what each call adds (a variant is another component)
 * @returns the text
 */
export function counterComponent(step = 1): string {
  return `(component
  (import "forgeone:host/time@0.1.0" (instance $time
    (type $he (record (field "code" string) (field "message" string)))
    (export $e "host-error" (type (eq $he)))
    (type $f (func (result (result u64 (error $e)))))
    (export "now" (func (type $f)))))
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
  (core func $now (canon lower (func $time-now) (memory $mem) (realloc $realloc)))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "now" (func $now (param i32)))
    (global $calls (mut i32) (i32.const 0))
    (func $digits (param $at i32) (param $v i32)
      (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.div_u (local.get $v) (i32.const 10))))
      (i32.store8 (i32.add (local.get $at) (i32.const 1)) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))
    (func (export "run") (param $p i32) (param $n i32) (result i32)
      (call $now (i32.const 64))
      (global.set $calls (i32.add (global.get $calls) (i32.const ${step})))
      (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const ${step})))
      (call $digits (i32.const 200) (i32.load (i32.const 16)))
      (call $digits (i32.const 202) (global.get $calls))
      (i32.store (i32.const 128) (i32.const 200))
      (i32.store (i32.const 132) (i32.const 4))
      (i32.const 128)))
  (core instance $host (export "now" (func $now)))
  (core instance $main (instantiate $main (with "libc" (instance $libc)) (with "host" (instance $host))))
  (func (export "run") (param "input" string) (result string) (canon lift (core func $main "run") (memory $mem) (realloc $realloc))))`;
}
