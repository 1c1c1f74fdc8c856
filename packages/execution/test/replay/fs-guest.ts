// A component that uses a preopened directory through wasi:filesystem (the types it needs, nothing more):
// it opens `note.txt` (create, truncate, read-write), writes to it, reads it back, lists the preopen,
// stats the file, and returns `<bytes read>|<entries>|<size>|<type>`. Variants change what it opens or
// when it stats.

/** The parts of the guest a variant can change. */
export interface FsGuestOptions {
  /** The file it opens, writes and reads (8 bytes). */
  readonly file?: string;
  /** The file it stats (8 bytes). */
  readonly statFile?: string;
  /** Stat before reading instead of after listing. */
  readonly statFirst?: boolean;
}

const ERROR_CODES =
  '"access" "would-block" "already" "bad-descriptor" "busy" "deadlock" "quota" "exist" "file-too-large" "illegal-byte-sequence" "in-progress" "interrupted" "invalid" "io" "is-directory" "loop" "too-many-links" "message-size" "name-too-long" "no-device" "no-entry" "no-lock" "insufficient-memory" "insufficient-space" "not-directory" "not-empty" "not-recoverable" "unsupported" "no-tty" "no-such-device" "overflow" "not-permitted" "pipe" "read-only" "invalid-seek" "text-file-busy" "cross-device"';

/**
 * The guest's WebAssembly text (component model).
 * @param o - what to change
 * @returns the text
 */
export function fsGuest(o: FsGuestOptions = {}): string {
  const file = o.file ?? 'note.txt';
  const statFile = o.statFile ?? file;
  if (file.length !== 8 || statFile.length !== 8) throw new Error('file names of 8 bytes');
  const stat = `
      (call $statat (local.get $dir) (i32.const 0) (i32.const 410) (i32.const 8) (i32.const 256))
      (if (i32.load8_u (i32.const 256)) (then unreachable))`;
  return `(component $root
  (import "wasi:filesystem/types@0.2.0" (instance $types
    (export $desc "descriptor" (type (sub resource)))
    (export $des "directory-entry-stream" (type (sub resource)))
    (type $ec0 (enum ${ERROR_CODES}))
    (export $ec "error-code" (type (eq $ec0)))
    (type $dt0 (enum "unknown" "block-device" "character-device" "directory" "fifo" "symbolic-link" "regular-file" "socket"))
    (export $dt "descriptor-type" (type (eq $dt0)))
    (type $df0 (flags "read" "write" "file-integrity-sync" "data-integrity-sync" "requested-write-sync" "mutate-directory"))
    (export $df "descriptor-flags" (type (eq $df0)))
    (type $pf0 (flags "symlink-follow"))
    (export $pf "path-flags" (type (eq $pf0)))
    (type $of0 (flags "create" "directory" "exclusive" "truncate"))
    (export $of "open-flags" (type (eq $of0)))
    (type $tm0 (record (field "seconds" u64) (field "nanoseconds" u32)))
    (export $tm "datetime" (type (eq $tm0)))
    (type $otm (option $tm))
    (type $st0 (record (field "type" $dt) (field "link-count" u64) (field "size" u64) (field "data-access-timestamp" $otm) (field "data-modification-timestamp" $otm) (field "status-change-timestamp" $otm)))
    (export $st "descriptor-stat" (type (eq $st0)))
    (type $de0 (record (field "type" $dt) (field "name" string)))
    (export $de "directory-entry" (type (eq $de0)))
    (type $bd (borrow $desc))
    (type $od (own $desc))
    (type $ods (own $des))
    (type $bds (borrow $des))
    (type $bytes (list u8))
    (type $r-open (result $od (error $ec)))
    (type $f-open (func (param "self" $bd) (param "path-flags" $pf) (param "path" string) (param "open-flags" $of) (param "flags" $df) (result $r-open)))
    (export "[method]descriptor.open-at" (func (type $f-open)))
    (type $r-write (result u64 (error $ec)))
    (type $f-write (func (param "self" $bd) (param "buffer" $bytes) (param "offset" u64) (result $r-write)))
    (export "[method]descriptor.write" (func (type $f-write)))
    (type $read-ok (tuple $bytes bool))
    (type $r-read (result $read-ok (error $ec)))
    (type $f-read (func (param "self" $bd) (param "length" u64) (param "offset" u64) (result $r-read)))
    (export "[method]descriptor.read" (func (type $f-read)))
    (type $r-readdir (result $ods (error $ec)))
    (type $f-readdir (func (param "self" $bd) (result $r-readdir)))
    (export "[method]descriptor.read-directory" (func (type $f-readdir)))
    (type $ode (option $de))
    (type $r-entry (result $ode (error $ec)))
    (type $f-entry (func (param "self" $bds) (result $r-entry)))
    (export "[method]directory-entry-stream.read-directory-entry" (func (type $f-entry)))
    (type $r-stat (result $st (error $ec)))
    (type $f-stat (func (param "self" $bd) (param "path-flags" $pf) (param "path" string) (result $r-stat)))
    (export "[method]descriptor.stat-at" (func (type $f-stat)))))
  (alias export $types "descriptor" (type $descriptor))
  (import "wasi:filesystem/preopens@0.2.0" (instance $preopens
    (alias outer $root $descriptor (type $d0))
    (export $d "descriptor" (type (eq $d0)))
    (type $od (own $d))
    (type $pair (tuple $od string))
    (type $list (list $pair))
    (type $f (func (result $list)))
    (export "get-directories" (func (type $f)))))
  (core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 8192))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))
  (alias export $preopens "get-directories" (func $get-directories))
  (alias export $types "[method]descriptor.open-at" (func $open-at))
  (alias export $types "[method]descriptor.write" (func $write))
  (alias export $types "[method]descriptor.read" (func $read))
  (alias export $types "[method]descriptor.read-directory" (func $read-directory))
  (alias export $types "[method]directory-entry-stream.read-directory-entry" (func $read-entry))
  (alias export $types "[method]descriptor.stat-at" (func $stat-at))
  (core func $c-dirs (canon lower (func $get-directories) (memory $mem) (realloc $realloc)))
  (core func $c-open (canon lower (func $open-at) (memory $mem) (realloc $realloc)))
  (core func $c-write (canon lower (func $write) (memory $mem) (realloc $realloc)))
  (core func $c-read (canon lower (func $read) (memory $mem) (realloc $realloc)))
  (core func $c-readdir (canon lower (func $read-directory) (memory $mem) (realloc $realloc)))
  (core func $c-entry (canon lower (func $read-entry) (memory $mem) (realloc $realloc)))
  (core func $c-stat (canon lower (func $stat-at) (memory $mem) (realloc $realloc)))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "fs" "dirs" (func $dirs (param i32)))
    (import "fs" "open" (func $open (param i32 i32 i32 i32 i32 i32 i32)))
    (import "fs" "write" (func $write (param i32 i32 i32 i64 i32)))
    (import "fs" "read" (func $read (param i32 i64 i64 i32)))
    (import "fs" "readdir" (func $readdir (param i32 i32)))
    (import "fs" "entry" (func $entry (param i32 i32)))
    (import "fs" "statat" (func $statat (param i32 i32 i32 i32 i32)))
    (data (i32.const 400) "${file}")
    (data (i32.const 410) "${statFile}")
    (data (i32.const 420) "hello replay")
    (func $digit (param $at i32) (param $v i32) (i32.store8 (local.get $at) (i32.add (i32.const 48) (local.get $v))))
    (func (export "run") (param $p i32) (param $n i32) (result i32)
      (local $dir i32) (local $f i32) (local $len i32) (local $s i32) (local $count i32) (local $size i32)
      (call $dirs (i32.const 64))
      (if (i32.eqz (i32.load (i32.const 68))) (then unreachable))
      (local.set $dir (i32.load (i32.load (i32.const 64))))
      ;; open-at(dir, no symlink-follow, file, create|truncate, read|write)
      (call $open (local.get $dir) (i32.const 0) (i32.const 400) (i32.const 8) (i32.const 9) (i32.const 3) (i32.const 96))
      (if (i32.load8_u (i32.const 96)) (then unreachable))
      (local.set $f (i32.load (i32.const 100)))
      (call $write (local.get $f) (i32.const 420) (i32.const 12) (i64.const 0) (i32.const 128))
      (if (i32.load8_u (i32.const 128)) (then unreachable))
      ${o.statFirst === true ? stat : ''}
      (call $read (local.get $f) (i64.const 100) (i64.const 0) (i32.const 160))
      (if (i32.load8_u (i32.const 160)) (then unreachable))
      (local.set $len (i32.load (i32.const 168)))
      (memory.copy (i32.const 1024) (i32.load (i32.const 164)) (local.get $len))
      (call $readdir (local.get $dir) (i32.const 192))
      (if (i32.load8_u (i32.const 192)) (then unreachable))
      (local.set $s (i32.load (i32.const 196)))
      (block $done
        (loop $next
          (call $entry (local.get $s) (i32.const 224))
          (if (i32.load8_u (i32.const 224)) (then unreachable))
          (br_if $done (i32.eqz (i32.load8_u (i32.const 228))))
          (local.set $count (i32.add (local.get $count) (i32.const 1)))
          (br $next)))
      ${o.statFirst === true ? '' : stat}
      (local.set $size (i32.wrap_i64 (i64.load (i32.const 280))))
      (i32.store8 (i32.add (i32.const 1024) (local.get $len)) (i32.const 124))
      (call $digit (i32.add (i32.const 1025) (local.get $len)) (local.get $count))
      (i32.store8 (i32.add (i32.const 1026) (local.get $len)) (i32.const 124))
      (call $digit (i32.add (i32.const 1027) (local.get $len)) (i32.div_u (local.get $size) (i32.const 10)))
      (call $digit (i32.add (i32.const 1028) (local.get $len)) (i32.rem_u (local.get $size) (i32.const 10)))
      (i32.store8 (i32.add (i32.const 1029) (local.get $len)) (i32.const 124))
      (call $digit (i32.add (i32.const 1030) (local.get $len)) (i32.load8_u (i32.const 264)))
      (i32.store (i32.const 900) (i32.const 1024))
      (i32.store (i32.const 904) (i32.add (local.get $len) (i32.const 7)))
      (i32.const 900)))
  (core instance $fs
    (export "dirs" (func $c-dirs)) (export "open" (func $c-open)) (export "write" (func $c-write)) (export "read" (func $c-read))
    (export "readdir" (func $c-readdir)) (export "entry" (func $c-entry)) (export "statat" (func $c-stat)))
  (core instance $main (instantiate $main (with "libc" (instance $libc)) (with "fs" (instance $fs))))
  (func (export "run") (param "input" string) (result string) (canon lift (core func $main "run") (memory $mem) (realloc $realloc))))`;
}
