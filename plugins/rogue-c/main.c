/*
 * rogue-c: a hostile WASI preview1 command (clang + wasi-libc) that tries to break out of ForgeOne's
 * preview1 host. Usage: rogue-c ATTACK [TAG]
 *
 *   ATTACK  passwd | write-outside | dotdot | symlink | abs-symlink | pinned | proc | net | loop | alloc |
 *           alloc-abort | all (`all` runs every attack but `loop` and the `alloc`s, which end the run;
 *           `alloc-abort` is `alloc` that aborts, i.e. traps, when malloc fails)
 *   TAG     a word put into the names of files the guest tries to create outside its preopen
 *           (default `x`), so a test can look for exactly them
 *
 * A `# rogue-c ATTACK: ...` header line, then one line per attempt on stdout:
 *   <attack>/<variant>: refused errno=N (strerror)
 *   <attack>/<variant>: ALLOWED <what the guest got>
 * (`alloc` also prints its progress), a `# done: N allowed` line, and the exit code is the number of
 * ALLOWED attempts (0 = contained).
 *
 * Two kinds of attempt:
 *   libc  through wasi-libc (open, opendir, stat, symlink, ...). wasi-libc maps an absolute path to the
 *         preopen with the longest matching prefix and refuses a path under no preopen itself (ENOTCAPABLE,
 *         no host call), so these show what an ordinary C program gets;
 *   raw   straight preview1 calls (__wasi_path_open on the preopen's descriptor with hostile relative and
 *         absolute paths, sock_* on any descriptor), so the host, not libc, has to refuse them.
 *
 * The test plants, inside the preopen /data: link -> /etc, abs -> /etc/passwd, rel -> ../secret.txt,
 * outlink -> <outside dir> (absolute host path), dangle -> <outside dir>/pwned-dangle-TAG (missing),
 * dangle-rel -> ../outside/pwned-dangle-rel-TAG (missing), sub/pinned -> .. and box/inner/top -> ../.. (both
 * lead to /data: contained where they are, not wherever they are moved); and next to it (outside): secret.txt,
 * victim.txt and the directory outside/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

#define ALL_RIGHTS ((__wasi_rights_t)0x1FFFFFFF) /* every preview1 right (bits 0..28) */

static int allowed = 0;
static const char *tag = "x";
static __wasi_fd_t pre = (__wasi_fd_t)-1; /* the /data preopen's descriptor */

/* A note on how the attempt was set up (e.g. whether the guest could create its symlink), printed after the
   attempt's outcome as ` [note]` and then cleared. */
static char note[256];

/* Append to the note: "; " between parts. */
static void note_add(const char *fmt, ...) {
  size_t used = strlen(note);
  if (used > 0 && used + 2 < sizeof note) {
    strcpy(note + used, "; ");
    used += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(note + used, sizeof note - used, fmt, ap);
  va_end(ap);
}

static void refused(const char *name, int err) {
  printf("%s: refused errno=%d (%s)%s%s%s\n", name, err, strerror(err), note[0] ? " [" : "", note, note[0] ? "]" : "");
  note[0] = 0;
}

static void allow(const char *name, const char *what) {
  printf("%s: ALLOWED %s%s%s%s\n", name, what, note[0] ? " [" : "", note, note[0] ? "]" : "");
  note[0] = 0;
  allowed++;
}

/* A short printable sample of bytes read. */
static void sample(char *out, size_t outLen, const char *buf, ssize_t n) {
  size_t j = 0;
  for (ssize_t i = 0; i < n && j + 1 < outLen; i++) {
    char c = buf[i];
    out[j++] = (c >= 32 && c < 127) ? c : '.';
  }
  out[j] = 0;
}

static void named(char *out, size_t len, const char *fmt) {
  snprintf(out, len, fmt, tag);
}

/* ---------- libc attempts ---------- */

static void libc_read(const char *name, const char *path) {
  errno = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    refused(name, errno);
    return;
  }
  char buf[48], s[64], what[160];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  sample(s, sizeof s, buf, n < 0 ? 0 : n);
  snprintf(what, sizeof what, "opened %s, read %zd bytes: \"%s\"", path, n, s);
  allow(name, what);
}

static void libc_write(const char *name, const char *path) {
  errno = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    refused(name, errno);
    return;
  }
  ssize_t n = write(fd, "pwned\n", 6);
  close(fd);
  char what[160];
  snprintf(what, sizeof what, "created %s, wrote %zd bytes", path, n);
  allow(name, what);
}

static void libc_opendir(const char *name, const char *path) {
  errno = 0;
  DIR *d = opendir(path);
  if (d == NULL) {
    refused(name, errno);
    return;
  }
  char what[256];
  int n = snprintf(what, sizeof what, "listed %s:", path);
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < (int)sizeof what - 1) n += snprintf(what + n, sizeof what - n, " %s", e->d_name);
  closedir(d);
  allow(name, what);
}

static void libc_stat(const char *name, const char *path) {
  struct stat st;
  errno = 0;
  if (stat(path, &st) != 0) {
    refused(name, errno);
    return;
  }
  char what[160];
  snprintf(what, sizeof what, "stat %s: size %lld mode %o", path, (long long)st.st_size, (unsigned)st.st_mode);
  allow(name, what);
}

static void libc_mkdir(const char *name, const char *path) {
  errno = 0;
  if (mkdir(path, 0755) != 0) {
    refused(name, errno);
    return;
  }
  char what[160];
  snprintf(what, sizeof what, "created directory %s", path);
  allow(name, what);
}

static void libc_unlink(const char *name, const char *path) {
  errno = 0;
  if (unlink(path) != 0) {
    refused(name, errno);
    return;
  }
  char what[160];
  snprintf(what, sizeof what, "removed %s", path);
  allow(name, what);
}

/* Plant a symlink: a step, not an attempt; whether the host let it be created goes into the next line's note. */
static void plant(const char *target, const char *path) {
  errno = 0;
  if (symlink(target, path) == 0) note_add("symlink %s -> %s created", path, target);
  else note_add("symlink %s -> %s refused errno=%d", path, target, errno);
}

/* Make a directory: a step, noted like plant(). */
static void step_mkdir(const char *path) {
  errno = 0;
  if (mkdir(path, 0755) == 0) note_add("mkdir %s", path);
  else note_add("mkdir %s refused errno=%d", path, errno);
}

/* rename(2) through wasi-libc as an attempt. */
static void libc_rename(const char *name, const char *from, const char *to) {
  errno = 0;
  if (rename(from, to) != 0) {
    refused(name, errno);
    return;
  }
  char what[200];
  snprintf(what, sizeof what, "renamed %s to %s", from, to);
  allow(name, what);
}

/* ---------- raw preview1 attempts ---------- */

static void raw_open(const char *name, __wasi_fd_t dir, __wasi_lookupflags_t lf, const char *path, __wasi_oflags_t of, int write) {
  __wasi_fd_t fd;
  __wasi_errno_t e = __wasi_path_open(dir, lf, path, of, ALL_RIGHTS, ALL_RIGHTS, 0, &fd);
  if (e != 0) {
    refused(name, e);
    return;
  }
  char what[200];
  if (write) {
    __wasi_ciovec_t iov = {(const uint8_t *)"pwned\n", 6};
    __wasi_size_t n = 0;
    __wasi_errno_t we = __wasi_fd_write(fd, &iov, 1, &n);
    snprintf(what, sizeof what, "path_open(%d, \"%s\") gave fd %d, write errno=%d wrote %u bytes", (int)dir, path, (int)fd, we, (unsigned)n);
  } else {
    char buf[48], s[64];
    __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
    __wasi_size_t n = 0;
    __wasi_errno_t re = __wasi_fd_read(fd, &iov, 1, &n);
    sample(s, sizeof s, buf, re == 0 ? (ssize_t)n : 0);
    snprintf(what, sizeof what, "path_open(%d, \"%s\") gave fd %d, read errno=%d %u bytes: \"%s\"", (int)dir, path, (int)fd, re, (unsigned)n, s);
  }
  (void)__wasi_fd_close(fd);
  allow(name, what);
}

static void raw_result(const char *name, __wasi_errno_t e, const char *what) {
  if (e != 0) refused(name, e);
  else allow(name, what);
}

static void find_preopen(void) {
  for (__wasi_fd_t fd = 3; fd < 64; fd++) {
    __wasi_prestat_t ps;
    if (__wasi_fd_prestat_get(fd, &ps) != 0) break;
    if (ps.tag != __WASI_PREOPENTYPE_DIR || ps.u.dir.pr_name_len >= 64) continue;
    char dirName[64] = {0};
    if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)dirName, ps.u.dir.pr_name_len) != 0) continue;
    if (pre == (__wasi_fd_t)-1 || strcmp(dirName, "/data") == 0) pre = fd;
  }
}

/* ---------- the attacks ---------- */

static void attack_passwd(void) {
  libc_read("passwd/libc-abs", "/etc/passwd");
  libc_read("passwd/libc-dotdot", "/data/../../etc/passwd");
  libc_read("passwd/libc-dotdot-deep", "/data/../../../../../../../../etc/passwd");
  raw_open("passwd/raw-abs", pre, 0, "/etc/passwd", 0, 0);
  raw_open("passwd/raw-dotdot", pre, 0, "../../etc/passwd", 0, 0);
  raw_open("passwd/raw-stdin-dirfd", 0, 0, "../etc/passwd", 0, 0);
  raw_open("passwd/raw-unknown-dirfd", 77, 0, "etc/passwd", 0, 0);
}

static void attack_write_outside(void) {
  char p[128];
  named(p, sizeof p, "/tmp/pwned-%s");
  libc_write("write-outside/libc-tmp", p);
  named(p, sizeof p, "/data/../pwned-%s");
  libc_write("write-outside/libc-dotdot", p);
  named(p, sizeof p, "../pwned-raw-%s");
  raw_open("write-outside/raw-dotdot", pre, 0, p, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, 1);
  named(p, sizeof p, "/tmp/pwned-raw-%s");
  raw_open("write-outside/raw-abs", pre, 0, p, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, 1);
  named(p, sizeof p, "/data/../pwned-dir-%s");
  libc_mkdir("write-outside/mkdir-dotdot", p);
  libc_write("write-outside/victim-truncate", "/data/../victim.txt");
  libc_unlink("write-outside/victim-unlink", "/data/../victim.txt");
  /* a file of its own, inside, then moved or linked out */
  char own[128], out[128];
  named(own, sizeof own, "own-%s.txt");
  __wasi_fd_t fd;
  if (__wasi_path_open(pre, 0, own, __WASI_OFLAGS_CREAT, ALL_RIGHTS, ALL_RIGHTS, 0, &fd) == 0) (void)__wasi_fd_close(fd);
  named(out, sizeof out, "../pwned-renamed-%s");
  raw_result("write-outside/rename-out", __wasi_path_rename(pre, own, pre, out), "renamed its file out of the preopen");
  named(out, sizeof out, "../pwned-link-%s");
  raw_result("write-outside/link-out", __wasi_path_link(pre, 0, own, pre, out), "hard-linked its file out of the preopen");
  raw_result("write-outside/link-in-victim", __wasi_path_link(pre, 0, "../victim.txt", pre, "victim-here"), "hard-linked ../victim.txt into the preopen");
  /* through planted symlinks leading outside */
  named(p, sizeof p, "/data/outlink/pwned-outlink-%s");
  libc_write("write-outside/planted-dir-link", p);
  libc_write("write-outside/planted-dangling-abs", "/data/dangle");
  libc_write("write-outside/planted-dangling-rel", "/data/dangle-rel");
  raw_open("write-outside/raw-dangling-follow", pre, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "dangle", __WASI_OFLAGS_CREAT, 1);
  raw_open("write-outside/raw-dangling-nofollow", pre, 0, "dangle-rel", __WASI_OFLAGS_CREAT, 1);
  libc_unlink("write-outside/unlink-through-link", "/data/outlink/keep.txt");
}

static void attack_dotdot(void) {
  libc_opendir("dotdot/opendir-parent", "/data/..");
  libc_stat("dotdot/stat-secret", "/data/../secret.txt");
  libc_read("dotdot/libc-sub", "/data/sub/../../secret.txt");
  raw_open("dotdot/raw-parent-dir", pre, 0, "..", __WASI_OFLAGS_DIRECTORY, 0);
  raw_open("dotdot/raw-sub", pre, 0, "sub/../../secret.txt", 0, 0);
  raw_open("dotdot/raw-dot-chain", pre, 0, "./sub/./../.././secret.txt", 0, 0);
  raw_open("dotdot/raw-deep", pre, 0, "../../../../../../../../../../etc/passwd", 0, 0);
  /* an inner directory descriptor, then `..` from it twice */
  __wasi_fd_t sub;
  __wasi_errno_t e = __wasi_path_open(pre, 0, "sub", __WASI_OFLAGS_DIRECTORY, ALL_RIGHTS, ALL_RIGHTS, 0, &sub);
  if (e != 0) refused("dotdot/raw-from-subdir", e);
  else {
    raw_open("dotdot/raw-from-subdir", sub, 0, "../../secret.txt", 0, 0);
    (void)__wasi_fd_close(sub);
  }
}

static void attack_symlink(void) {
  char link[128], via[160];
  /* planted by the host: /data/link -> /etc, /data/rel -> ../secret.txt */
  libc_read("symlink/planted-abs-dir", "/data/link/passwd");
  raw_open("symlink/raw-planted-abs-dir", pre, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link/passwd", 0, 0);
  libc_opendir("symlink/planted-abs-opendir", "/data/link");
  libc_stat("symlink/planted-abs-stat", "/data/link/passwd");
  libc_read("symlink/planted-rel", "/data/rel");
  raw_result("symlink/hardlink-through-planted", __wasi_path_link(pre, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link/passwd", pre, "stolen-passwd"),
             "hard-linked /etc/passwd into the preopen");
  /* created by the guest */
  named(link, sizeof link, "/data/mine-%s");
  plant("/etc", link);
  snprintf(via, sizeof via, "%s/passwd", link);
  libc_read("symlink/guest-abs", via);
  named(link, sizeof link, "/data/up-%s");
  plant("../../../etc", link);
  snprintf(via, sizeof via, "%s/passwd", link);
  libc_read("symlink/guest-rel", via);
  /* `..` from the preopen's root, and from one level down */
  named(link, sizeof link, "/data/hop-%s");
  plant("..", link);
  snprintf(via, sizeof via, "%s/secret.txt", link);
  libc_read("symlink/guest-dotdot", via);
  named(link, sizeof link, "/data/sub/deep-%s");
  plant("../..", link); /* depth 1 - 2 < 0: refused on creation */
  snprintf(via, sizeof via, "%s/secret.txt", link);
  libc_read("symlink/guest-deep", via);
  /* a link that stays inside where it is made (/data/sub/mv -> .. is /data), then renamed up to /data,
     where the same `..` now points above the preopen: creation-time checks alone would miss this */
  char from[128], to[128];
  named(from, sizeof from, "/data/sub/mv-%s");
  plant("..", from);
  named(to, sizeof to, "/data/mv-%s");
  errno = 0;
  if (rename(from, to) == 0) note_add("renamed to %s", to);
  else note_add("rename to %s refused errno=%d", to, errno);
  snprintf(via, sizeof via, "%s/secret.txt", to);
  libc_read("symlink/guest-moved-up", via);
  /* No move needed: `s -> .` and `t -> s/..` both read as contained from /data, but the kernel follows s
     first and resolves the `..` from where it landed, so t would lead to /data's parent */
  char s2[128], t2[128];
  named(link, sizeof link, "/data/s-%s");
  plant(".", link);
  named(s2, sizeof s2, "s-%s/..");
  named(link, sizeof link, "/data/t-%s");
  plant(s2, link);
  snprintf(via, sizeof via, "%s/secret.txt", link);
  libc_read("symlink/guest-dot-pair", via);
  /* the same with a first link the host allows (downward by its text, but through the host-placed
     sub/pinned -> .. it lands on /data itself) */
  named(link, sizeof link, "/data/sp-%s");
  plant("sub/pinned", link);
  named(s2, sizeof s2, "sp-%s/..");
  named(t2, sizeof t2, "/data/tp-%s");
  plant(s2, t2);
  snprintf(via, sizeof via, "%s/secret.txt", t2);
  libc_read("symlink/guest-pinned-pair", via);
  /* a loop */
  named(link, sizeof link, "/data/loop-%s");
  char self[128];
  named(self, sizeof self, "loop-%s");
  plant(self, link);
  libc_read("symlink/guest-loop", link);
}

static void attack_abs_symlink(void) {
  char link[128];
  /* planted by the host: /data/abs -> /etc/passwd */
  libc_read("abs-symlink/planted-open", "/data/abs");
  raw_open("abs-symlink/raw-planted-follow", pre, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "abs", 0, 0);
  raw_open("abs-symlink/raw-planted-nofollow", pre, 0, "abs", 0, 0);
  libc_stat("abs-symlink/planted-stat", "/data/abs");
  /* created by the guest */
  named(link, sizeof link, "/data/gabs-%s");
  plant("/etc/passwd", link);
  libc_read("abs-symlink/guest", link);
  named(link, sizeof link, "/data/gdata-%s");
  plant("/data/../etc/passwd", link);
  libc_read("abs-symlink/guest-data-prefix", link);
}

static void attack_pinned(void) {
  /* planted by the host: /data/sub/pinned -> .. (is /data) and /data/box/inner/top -> ../.. (is /data): both
     contained where they are, both climbing above their directory, so moving them would change their meaning */
  char p[128], q[128], dir[128];
  libc_read("pinned/read-through", "/data/sub/pinned/../secret.txt"); /* lexically /data/sub/secret.txt */
  named(p, sizeof p, "/data/pinned-up-%s");
  libc_rename("pinned/rename-up", "/data/sub/pinned", p);
  named(p, sizeof p, "pinned-link-%s");
  raw_result("pinned/link-up", __wasi_path_link(pre, 0, "sub/pinned", pre, p), "hard-linked sub/pinned up to /data");
  named(p, sizeof p, "pinned-dir-%s");
  raw_result("pinned/link-follow", __wasi_path_link(pre, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "sub/pinned", pre, p),
             "hard-linked the directory sub/pinned leads to");
  named(dir, sizeof dir, "/data/sub/deeper-%s");
  step_mkdir(dir);
  snprintf(p, sizeof p, "%s/pinned", dir);
  libc_rename("pinned/rename-down", "/data/sub/pinned", p);
  named(p, sizeof p, "/data/via-%s");
  plant("sub", p);
  snprintf(q, sizeof q, "%s/pinned", p);
  named(p, sizeof p, "/data/pinned-via-%s");
  libc_rename("pinned/rename-via-guest-link", q, p);
  /* the directories holding them */
  named(dir, sizeof dir, "/data/nest-%s");
  step_mkdir(dir);
  snprintf(p, sizeof p, "%s/sub", dir);
  libc_rename("pinned/move-sub-down", "/data/sub", p);
  snprintf(p, sizeof p, "%s/box", dir);
  libc_rename("pinned/move-box-down", "/data/box", p);
  named(p, sizeof p, "/data/sub/box-%s");
  libc_rename("pinned/move-box-into-sub", "/data/box", p);
  named(p, sizeof p, "/data/inner-%s");
  libc_rename("pinned/move-inner-up", "/data/box/inner", p);
  named(p, sizeof p, "top-%s");
  raw_result("pinned/link-top-up", __wasi_path_link(pre, 0, "box/inner/top", pre, p), "hard-linked box/inner/top up to /data");
}

static void attack_proc(void) {
  char link[128], via[160];
  libc_read("proc/libc-root", "/proc/self/root/etc/passwd");
  libc_read("proc/libc-environ", "/proc/self/environ");
  raw_open("proc/raw-dotdot-root", pre, 0, "../proc/self/root/etc/passwd", 0, 0);
  raw_open("proc/raw-abs-fd", pre, 0, "/proc/self/fd/3", 0, 0);
  named(link, sizeof link, "/data/proot-%s");
  plant("/proc/self/root", link);
  snprintf(via, sizeof via, "%s/etc/passwd", link);
  libc_read("proc/guest-link-root", via);
  named(link, sizeof link, "/data/pfd-%s");
  plant("/proc/self/fd", link);
  libc_opendir("proc/guest-link-fd", link);
  /* /proc/self/fd/N/.. is how the host itself walks: try to name it relative to the preopen */
  raw_open("proc/raw-host-walk-syntax", pre, 0, "../../proc/self/fd/3/../etc/passwd", 0, 0);
}

static void attack_net(void) {
  /* preview1 has no socket() or connect(); the socket functions work on descriptors the host handed over. */
  __wasi_fd_t conn;
  char name[64];
  for (__wasi_fd_t fd = 0; fd <= 5; fd++) {
    snprintf(name, sizeof name, "net/sock_accept-fd%d", (int)fd);
    raw_result(name, __wasi_sock_accept(fd, 0, &conn), "accepted a connection");
  }
  char buf[16];
  __wasi_iovec_t riov = {(uint8_t *)buf, sizeof buf};
  __wasi_size_t n;
  __wasi_roflags_t rf;
  raw_result("net/sock_recv-stdin", __wasi_sock_recv(0, &riov, 1, 0, &n, &rf), "received from stdin as a socket");
  __wasi_ciovec_t siov = {(const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18};
  raw_result("net/sock_send-stdout", __wasi_sock_send(1, &siov, 1, 0, &n), "sent on stdout as a socket");
  raw_result("net/sock_send-preopen", __wasi_sock_send(pre, &siov, 1, 0, &n), "sent on the preopen as a socket");
  raw_result("net/sock_shutdown-preopen", __wasi_sock_shutdown(pre, __WASI_SDFLAGS_WR), "shut down the preopen as a socket");
}

static void attack_loop(void) {
  printf("loop: spinning\n");
  volatile uint64_t n = 0;
  for (;;) n++;
}

/* The blocks are kept where the compiler must assume they are used (clang otherwise elides an unused
   malloc and its stores altogether), and every page is written through a volatile pointer. */
static char *volatile blocks[64];

static void attack_alloc(int abortOnNull) {
  const size_t step = (size_t)64 << 20;
  unsigned long long mib = 0;
  for (int i = 0; i < 64; i++) {
    errno = 0;
    char *p = malloc(step);
    if (p == NULL) {
      /* wasi-libc's malloc does not set errno when sbrk (memory.grow) fails: report what it gave */
      printf("alloc: refused malloc returned NULL (errno=%d) after %llu MiB\n", errno, mib);
      if (abortOnNull) {
        printf("alloc: aborting, as a program that cannot live without its memory would\n");
        abort(); /* a trap: the host sees the refused memory.grow behind it */
      }
      return;
    }
    blocks[i] = p;
    volatile char *v = p;
    for (size_t off = 0; off < step; off += 4096) v[off] = (char)(i + 1); /* touch every page */
    mib += 64;
    printf("alloc: holding %llu MiB\n", mib);
  }
  char what[64];
  snprintf(what, sizeof what, "allocated %llu MiB", mib);
  allow("alloc", what);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *attack = argc > 1 ? argv[1] : "all";
  if (argc > 2) tag = argv[2];
  find_preopen();
  /* The first line: the call record before it is start-up (libc's preopen scan, arguments), after it the
     attempts' (each attempt's calls come just before its line). */
  if (pre == (__wasi_fd_t)-1) {
    printf("# rogue-c %s: no preopen, raw attempts use descriptor 3\n", attack);
    pre = 3;
  } else {
    printf("# rogue-c %s: preopen /data is descriptor %d\n", attack, (int)pre);
  }
  int all = strcmp(attack, "all") == 0;
  int known = all;
  if (all || strcmp(attack, "passwd") == 0) known = 1, attack_passwd();
  if (all || strcmp(attack, "write-outside") == 0) known = 1, attack_write_outside();
  if (all || strcmp(attack, "dotdot") == 0) known = 1, attack_dotdot();
  if (all || strcmp(attack, "symlink") == 0) known = 1, attack_symlink();
  if (all || strcmp(attack, "abs-symlink") == 0) known = 1, attack_abs_symlink();
  if (all || strcmp(attack, "pinned") == 0) known = 1, attack_pinned();
  if (all || strcmp(attack, "proc") == 0) known = 1, attack_proc();
  if (all || strcmp(attack, "net") == 0) known = 1, attack_net();
  if (strcmp(attack, "loop") == 0) known = 1, attack_loop();
  if (strcmp(attack, "alloc") == 0) known = 1, attack_alloc(0);
  if (strcmp(attack, "alloc-abort") == 0) known = 1, attack_alloc(1);
  if (!known) {
    fprintf(stderr, "rogue-c: unknown attack %s (passwd, write-outside, dotdot, symlink, abs-symlink, pinned, proc, net, loop, alloc, alloc-abort, all)\n", attack);
    return 64;
  }
  printf("# done: %d allowed\n", allowed);
  return allowed;
}
