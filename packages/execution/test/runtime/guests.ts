// WASI preview1 guests in WAT for the runtime tests.
const IMPORTS = `
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $asg (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $ag (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fw (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fr (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))`;

// Memory map: 0 argc, 4 argv buf size, 16 iovec, 24 nwritten, 32 "\\n", 40 opened fd, 48 read iovec,
// 56 nread, 1024 argv pointers, 4096 argv strings, 8192 read buffer.
const LIB = `
  (memory (export "memory") 1)
  (data (i32.const 32) "\\n")
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))
  (func $print (param $p i32) (param $n i32)
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (local.get $n))
    (drop (call $fw (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func $args (result i32)
    (local $e i32)
    (local.set $e (call $asg (i32.const 0) (i32.const 4)))
    (if (i32.eqz (local.get $e)) (then (local.set $e (call $ag (i32.const 1024) (i32.const 4096)))))
    (local.get $e))`;

/** Prints each argument on its own line, then exits 7 (99 when the arguments are refused). */
export const ECHO_ARGS = `(module ${IMPORTS} ${LIB}
  (func (export "_start") (local $i i32) (local $p i32)
    (if (call $args) (then (call $exit (i32.const 99))))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
      (local.set $p (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
      (call $print (local.get $p) (call $strlen (local.get $p)))
      (call $print (i32.const 32) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $exit (i32.const 7))))`;

/** Opens argv[1] under the first preopen (fd 3), prints it and exits 3; on an error exits 100 + errno. */
export const READ_FILE = `(module ${IMPORTS} ${LIB}
  (func (export "_start") (local $e i32) (local $p i32) (local $fd i32)
    (if (call $args) (then (call $exit (i32.const 99))))
    (local.set $p (i32.load (i32.const 1028)))
    (local.set $e (call $open (i32.const 3) (i32.const 1) (local.get $p) (call $strlen (local.get $p))
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40)))
    (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
    (local.set $fd (i32.load (i32.const 40)))
    (i32.store (i32.const 48) (i32.const 8192))
    (i32.store (i32.const 52) (i32.const 4096))
    (local.set $e (call $fr (local.get $fd) (i32.const 48) (i32.const 1) (i32.const 56)))
    (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
    (call $print (i32.const 8192) (i32.load (i32.const 56)))
    (call $exit (i32.const 3))))`;

/** Copies stdin to stdout until the end, then exits 0 (100 + errno on a read error). */
export const CAT = `(module ${IMPORTS} ${LIB}
  (func (export "_start") (local $e i32)
    (i32.store (i32.const 48) (i32.const 8192))
    (i32.store (i32.const 52) (i32.const 16))
    (block $d (loop $l
      (local.set $e (call $fr (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 56)))
      (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
      (br_if $d (i32.eqz (i32.load (i32.const 56))))
      (call $print (i32.const 8192) (i32.load (i32.const 56)))
      (br $l)))))`;

/** Spins forever without a host call. */
export const SPIN = `(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`;

/** Asks for 1000 more pages (62.5 MiB) and traps when refused. */
export const GROW = `(module ${IMPORTS} ${LIB}
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 1000)) (i32.const -1)) (then unreachable))
    (call $exit (i32.const 0))))`;

/** Prints a line, then traps with unreachable. */
export const TRAP = `(module ${IMPORTS} ${LIB}
  (data (i32.const 64) "about to trap")
  (func (export "_start") (call $print (i32.const 64) (i32.const 13)) unreachable))`;

/** Declares 300 pages (18.75 MiB) of initial memory. */
export const BIG_MEMORY = `(module (memory (export "memory") 300) (func (export "_start")))`;
