/* Helpers shared by the benchmarks (tests/bench_*.c): where the stores go,
 * failing loudly, timing, medians, arguments. Include after testutil.h with
 * BENCH_NAME, BENCH_REPS and BENCH_OPS_MAX defined. */
#ifndef VIXSYNC_BENCH_UTIL_H
#define VIXSYNC_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>

#include "testutil.h"
#include "vixsync/vixsync.h"

/* Every temporary directory of a run lives under this one. */
static char bench_base[4096];

/* Stop the benchmark, removing its temporary directories. */
static inline void die(const char *what, const char *why) {
  fprintf(stderr, "%s: %s: %s\n", BENCH_NAME, what, why);
  if (bench_base[0] != '\0') vt_rmrf(bench_base);
  exit(1);
}

#define CHECK_MDB(call)                                    \
  do {                                                     \
    int rc_ = (call);                                      \
    if (rc_ != MDB_SUCCESS) die(#call, mdb_strerror(rc_)); \
  } while (0)

#define CHECK_VS(call)                                     \
  do {                                                     \
    vs_err e_ = (call);                                    \
    if (e_ != VS_OK) die(#call, vs_strerror(e_));          \
  } while (0)

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* splitmix64's finaliser: deterministic filler bytes. */
static inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of BENCH_REPS measurements (v is left as it is). */
static inline double median3(const double v[BENCH_REPS]) {
  double s[BENCH_REPS];
  memcpy(s, v, sizeof s);
  qsort(s, BENCH_REPS, sizeof s[0], cmp_double);
  return s[BENCH_REPS / 2];
}

static inline uint64_t parse_ops(const char *s, const char *what) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v == 0 || v > BENCH_OPS_MAX) die(what, "expected 1..10000000");
  return (uint64_t)v;
}

/* Make the run's base directory, `prefix`-XXXXXX under $TMPDIR, or under the
 * current directory when it is unset. */
static inline void bench_base_init(const char *prefix) {
  const char *tmp = getenv("TMPDIR");
  int n = snprintf(bench_base, sizeof bench_base, "%s/%s-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : ".", prefix);
  if (n < 0 || (size_t)n >= sizeof bench_base || mkdtemp(bench_base) == NULL) {
    bench_base[0] = '\0'; /* nothing to remove */
    die("mkdtemp", strerror(errno));
  }
}

/* A fresh directory `tag`-XXXXXX under the bench base. */
static inline void fresh_dir(char *out, size_t out_bytes, const char *tag) {
  int n = snprintf(out, out_bytes, "%s/%s-XXXXXX", bench_base, tag);
  if (n < 0 || (size_t)n >= out_bytes || mkdtemp(out) == NULL) die("mkdtemp", strerror(errno));
}

static inline const char *mode_name(vs_durability d) { return d == VS_DURABILITY_SYNC ? "sync" : "nosync"; }

/* Print where the stores go and on what file system. */
static inline void describe_base(void) {
  char real[4096];
  if (realpath(bench_base, real) == NULL) die("realpath", strerror(errno));
  struct statfs sf;
  const char *fs = "?";
  if (statfs(bench_base, &sf) == 0) {
    switch ((unsigned long)sf.f_type) {
      case 0xEF53ul: fs = "ext4"; break;
      case 0x01021994ul: fs = "tmpfs"; break;
      case 0x58465342ul: fs = "xfs"; break;
      case 0x9123683Eul: fs = "btrfs"; break;
      case 0x794c7630ul: fs = "overlayfs"; break;
      default: fs = "other"; break;
    }
  }
  const char *tmp = getenv("TMPDIR");
  printf("dir: %s (%s; %s)\n", real, fs,
         tmp != NULL && tmp[0] != '\0' ? "under $TMPDIR" : "under the current directory, $TMPDIR unset");
}

#endif
