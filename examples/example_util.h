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

/* The examples' clock: virtual milliseconds from a fixed start, so their
 * output is the same on every run. A real application passes its wall clock. */
#define EX_T0_MS 1700000000000ull

/* Print every batch the engine hands to the transport. */
static inline void ex_print_send(void *ctx, const vs_send_batch *b, uint64_t now_ms) {
  (void)ctx;
  printf("  t+%llu ms  send batch #%llu: %u op(s), %llu bytes\n", (unsigned long long)(now_ms - EX_T0_MS),
         (unsigned long long)b->batch_id, b->op_count, (unsigned long long)b->bytes);
}

/* Drive the engine like a node's event loop would: tick, sleep until the
 * wake time it returns, tick again; stop when it has nothing scheduled, at
 * `until_ms`, or after `ticks_max` ticks. Returns the final time. */
static inline uint64_t ex_run(vs_engine *engine, uint64_t now_ms, uint64_t until_ms, unsigned ticks_max) {
  for (unsigned i = 0; i < ticks_max; i++) {
    uint64_t wake = UINT64_MAX;
    CHECK(vs_engine_tick(engine, now_ms, &wake));
    if (wake == UINT64_MAX || wake > until_ms) break;
    now_ms = wake > now_ms ? wake : now_ms + 1;
  }
  return now_ms;
}

static inline void ex_print_counts(vs_outbox *outbox) {
  vs_outbox_counts c;
  CHECK(vs_outbox_counts_get(outbox, &c));
  printf("outbox: pending %llu, inflight %llu, done %llu, failed %llu\n", (unsigned long long)c.pending,
         (unsigned long long)c.inflight, (unsigned long long)c.done, (unsigned long long)c.failed);
}

#endif
