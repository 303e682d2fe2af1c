/* Small helpers shared by the examples: a scratch directory and printing. */
#ifndef VIXSYNC_EXAMPLE_UTIL_H
#define VIXSYNC_EXAMPLE_UTIL_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vixsync/vixsync.h>

/* Stop the example with a message when a call fails. */
#define CHECK(call)                                                                      \
  do {                                                                                   \
    vs_err check_err_ = (call);                                                          \
    if (check_err_ != VS_OK) {                                                           \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, vs_strerror(check_err_)); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

/* A scratch store directory under $TMPDIR, removed by ex_cleanup. */
static inline void ex_tmpdir(char *buf, size_t buf_bytes, const char *tag) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  snprintf(buf, buf_bytes, "%s/vixsync-%s-XXXXXX", base, tag);
  if (mkdtemp(buf) == NULL) {
    perror("mkdtemp");
    exit(1);
  }
}

static inline int ex_rm_(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void ex_cleanup(const char *dir) { (void)nftw(dir, ex_rm_, 16, FTW_DEPTH | FTW_PHYS); }

/* The first 8 hex digits of an op id: enough to tell ops apart on screen. */
static inline const char *ex_short(const vs_op_id *id) {
  static char hex[VS_OP_ID_HEX_BYTES];
  vs_op_id_to_hex(id, hex);
  hex[8] = '\0';
  return hex;
}

/* This device's writer identity. Real nodes use their ed25519 public key;
 * the examples use a fixed one so their output is the same on every run. */
static inline void ex_origin(uint8_t origin[VS_ORIGIN_BYTES]) {
  for (unsigned i = 0; i < VS_ORIGIN_BYTES; i++) origin[i] = (uint8_t)(0xA0 + i);
}

/* A write request for `kind target=value`. */
static inline vs_write_req ex_req(const char *kind, const char *target, const char *value) {
  vs_write_req r;
  memset(&r, 0, sizeof r);
  r.kind = kind;
  r.target = (const uint8_t *)target;
  r.target_bytes = (uint32_t)strlen(target);
  r.payload = (const uint8_t *)value;
  r.payload_bytes = (uint32_t)strlen(value);
  return r;
}

#endif
