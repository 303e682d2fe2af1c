/* Helpers shared by the tests and benchmarks: temporary directories, removed
 * afterwards; origins; byte order; seeded randomness; assert_err. */
#ifndef VIXSYNC_TESTUTIL_H
#define VIXSYNC_TESTUTIL_H

#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include "vixsync/error.h"

/* Make a fresh directory under $TMPDIR (or /tmp); abort on failure. */
static inline void vt_tmpdir(char *buf, size_t buf_bytes, const char *tag) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  int n = snprintf(buf, buf_bytes, "%s/vixsync-%s-XXXXXX", base, tag);
  if (n < 0 || (size_t)n >= buf_bytes || mkdtemp(buf) == NULL) {
    perror("mkdtemp");
    abort();
  }
}

static inline int vt_rm_one_(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  return remove(path);
}

/* rm -rf `dir`. */
static inline void vt_rmrf(const char *dir) {
  (void)nftw(dir, vt_rm_one_, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fixed origin for tests: bytes 0..31 xor `salt`. */
static inline void vt_origin(uint8_t origin[32], uint8_t salt) {
  for (int i = 0; i < 32; i++) origin[i] = (uint8_t)(i ^ salt);
}

/* Little- and big-endian integers, written out here rather than taken from
 * src/internal.h, so that tests and baselines that spell out the library's
 * byte layout do not check it against its own helpers. */
static inline void vt_put_u32le(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void vt_put_u64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t vt_get_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t vt_get_u64le(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static inline void vt_put_u32be(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * (3 - i)));
}
static inline void vt_put_u64be(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

/* splitmix64: the next value of the sequence whose state is `*s`.
 * Deterministic from a seed the test fixes or prints, so a failure replays. */
static inline uint64_t vt_sm64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* A random source for vs_node_cfg.random and the like: each byte is the low
 * byte of the next vt_sm64 of the uint64_t state at `ctx`. */
static inline void vt_sm_fill(void *ctx, uint8_t *buf, size_t bytes) {
  uint64_t *s = ctx;
  for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)vt_sm64(s);
}

/* In cmocka tests: fail with both codes' names when `got` is not `want`.
 * (fail_msg is cmocka's; the macro expands where cmocka.h is included.) */
#define assert_err(got, want)                                                          \
  do {                                                                                 \
    vs_err got_ = (got);                                                               \
    vs_err want_ = (want);                                                             \
    if (got_ != want_)                                                                 \
      fail_msg("%s: got %s (%d), want %s", #got, vs_err_name(got_), (int)got_,         \
               vs_err_name(want_));                                                    \
  } while (0)

#endif
