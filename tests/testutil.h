/* Helpers shared by the tests: temporary directories, removed afterwards. */
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
