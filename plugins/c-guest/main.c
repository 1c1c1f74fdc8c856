/*
 * c-guest: a WASI preview1 command built with clang + wasi-libc that exercises ForgeOne's preview1 host:
 * args, environment, clocks, random bytes, files in the /data preopen, stdout/stderr and the exit code.
 *
 * Expects a preopen at /data holding input.txt (one line of text) and a writable directory /data/out.
 * Exit code: the number in the last argument (0 when there is none), or 10+ when a check fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "FAIL %s (errno %d)\n", what, errno);
    failures++;
  }
}

int main(int argc, char **argv) {
  printf("argc=%d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);

  const char *greeting = getenv("GREETING");
  printf("GREETING=%s\n", greeting ? greeting : "(unset)");
  printf("HOME=%s\n", getenv("HOME") ? getenv("HOME") : "(unset)");

  struct timespec rt, m1, m2;
  check(clock_gettime(CLOCK_REALTIME, &rt) == 0, "clock_gettime realtime");
  printf("realtime_after_2020=%d\n", rt.tv_sec > 1577836800);
  check(clock_gettime(CLOCK_MONOTONIC, &m1) == 0 && clock_gettime(CLOCK_MONOTONIC, &m2) == 0, "clock_gettime monotonic");
  printf("monotonic_nondecreasing=%d\n", (m2.tv_sec > m1.tv_sec) || (m2.tv_sec == m1.tv_sec && m2.tv_nsec >= m1.tv_nsec));

  unsigned char a[32], b[32];
  check(getentropy(a, sizeof a) == 0 && getentropy(b, sizeof b) == 0, "getentropy");
  printf("random_differs=%d\n", memcmp(a, b, sizeof a) != 0);

  /* read a file from the preopen */
  char line[128] = {0};
  FILE *in = fopen("/data/input.txt", "r");
  check(in != NULL, "open /data/input.txt");
  if (in) {
    if (fgets(line, sizeof line, in) == NULL) line[0] = 0;
    line[strcspn(line, "\n")] = 0;
    fclose(in);
  }
  printf("input=%s\n", line);

  /* write a file, append to it, read it back with seek */
  FILE *out = fopen("/data/out/result.txt", "w");
  check(out != NULL, "create /data/out/result.txt");
  if (out) {
    fprintf(out, "upper:");
    for (char *p = line; *p; p++) fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, out);
    fclose(out);
  }
  int fd = open("/data/out/result.txt", O_WRONLY | O_APPEND);
  check(fd >= 0, "open for append");
  if (fd >= 0) {
    check(write(fd, "!\n", 2) == 2, "append");
    close(fd);
  }
  fd = open("/data/out/result.txt", O_RDONLY);
  if (fd >= 0) {
    char buf[8] = {0};
    off_t end = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, 6);
    printf("result_size=%lld head=%.*s\n", (long long)end, (int)n, buf);
    close(fd);
  }

  check(mkdir("/data/out/sub", 0755) == 0, "mkdir");
  struct stat st;
  check(stat("/data/out/sub", &st) == 0 && S_ISDIR(st.st_mode), "stat dir");

  /* list /data (sorted count of visible entries, without . and ..) */
  DIR *d = opendir("/data");
  int entries = 0;
  check(d != NULL, "opendir /data");
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) entries++;
    closedir(d);
  }
  printf("data_entries=%d\n", entries);

  /* escapes are refused */
  errno = 0;
  FILE *esc = fopen("/data/../etc/passwd", "r");
  printf("dotdot_escape=%s errno=%d\n", esc ? "OPENED" : "refused", errno);
  if (esc) fclose(esc);
  errno = 0;
  esc = fopen("/etc/passwd", "r");
  printf("outside_preopen=%s errno=%d\n", esc ? "OPENED" : "refused", errno);
  if (esc) fclose(esc);
  errno = 0;
  esc = fopen("/data/escape/passwd", "r");
  printf("symlink_escape=%s errno=%d\n", esc ? "OPENED" : "refused", errno);
  if (esc) fclose(esc);

  fprintf(stderr, "c-guest done\n");
  fflush(stdout);
  if (failures) return 10 + failures;
  return argc > 1 ? atoi(argv[argc - 1]) : 0;
}
