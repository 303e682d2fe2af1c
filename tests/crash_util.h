/* tests/crash_util.h: what the SIGKILL tests of compaction, snapshot
 * install and rebase share (test_crash_compact.c, test_crash_rebase.c): a
 * seeded xorshift, environment overrides, killing a forked child after a
 * delay, and copying a store file. Include after cmocka.h. */
#ifndef VIXSYNC_CRASH_UTIL_H
#define VIXSYNC_CRASH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t crash_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* The environment's `name` as a number (VS_TORTURE_SEED, ..._KILLS), else dflt. */
static inline uint64_t crash_env_u64(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  return v == NULL || v[0] == '\0' ? dflt : strtoull(v, NULL, 0);
}

static inline void crash_sleep_us(uint64_t us) {
  struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static inline uint64_t crash_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Kill the child after `us`; true when it had finished first (exit 0). */
static inline bool crash_kill_after(pid_t pid, uint64_t us) {
  crash_sleep_us(us);
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) assert_true(errno == EINTR);
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) != 0) fail_msg("child exited %d", WEXITSTATUS(status));
    return true;
  }
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  return false;
}

/* The kill delay's span, fitted to the child's speed as the kills go:
 * shorter after a child that finished before its kill, a little longer
 * after one that was killed. A fixed span (a few times one run measured
 * in the parent) left most children finished before their kill on a
 * faster machine, and the torture fell short of its kills. */
static inline void crash_span_adapt(uint64_t *span_us, bool finished) {
  if (finished) *span_us = *span_us * 3u / 4u > 500u ? *span_us * 3u / 4u : 500u;
  else *span_us += *span_us / 16u + 1u;
}

/* Copy the file `from` to `to` (made or truncated, 0600), fsync'ed: a
 * store's pristine copy, put back before each kill. */
static inline void crash_copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(in >= 0 && out >= 0);
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    assert_true(n >= 0);
    if (n == 0) break;
    assert_int_equal(write(out, buf, (size_t)n), n);
  }
  assert_int_equal(fsync(out), 0);
  close(in);
  close(out);
}

#endif
