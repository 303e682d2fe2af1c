/* The operations the store benchmarks write (bench_write, bench_engine,
 * bench_replicate): op i is kind "put", target "key-" + i in 12 digits,
 * payload filler bytes from i, so every benchmark writes the same ops.
 * Include after bench_util.h with BENCH_TARGET_BYTES, BENCH_PAYLOAD_BYTES and
 * BENCH_BATCH defined. */
#ifndef VIXSYNC_BENCH_OPS_H
#define VIXSYNC_BENCH_OPS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench_util.h"

_Static_assert(BENCH_TARGET_BYTES == 16u, "make_target writes \"key-\" and 12 digits");

static inline void make_target(uint8_t target[BENCH_TARGET_BYTES], uint64_t i) {
  char buf[BENCH_TARGET_BYTES + 1];
  snprintf(buf, sizeof buf, "key-%012" PRIu64, (uint64_t)(i % 1000000000000u));
  memcpy(target, buf, BENCH_TARGET_BYTES);
}

/* splitmix64 output, 8 bytes at a time: "random-looking" bytes, as where the
 * library stores hashes, so B-tree inserts land alike on both sides. */
static inline void make_payload(uint8_t payload[BENCH_PAYLOAD_BYTES], uint64_t i) {
  for (size_t k = 0; k < BENCH_PAYLOAD_BYTES; k += 8) {
    uint64_t r = mix((i ^ 0x5a5a5a5aull) * 0x100000001b3ull + k);
    for (size_t j = 0; j < 8 && k + j < BENCH_PAYLOAD_BYTES; j++) payload[k + j] = (uint8_t)(r >> (8 * j));
  }
}

/* The origin the store benchmarks write as. */
static inline const uint8_t *bench_origin(void) {
  static uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 0x42);
  return origin;
}

/* The requests of ops [first, first + n), their targets and payloads built
 * in targets[j] and payloads[j]. */
static inline void make_reqs(uint8_t (*targets)[BENCH_TARGET_BYTES], uint8_t (*payloads)[BENCH_PAYLOAD_BYTES],
                             vs_write_req *reqs, uint64_t first, uint32_t n) {
  for (uint32_t j = 0; j < n; j++) {
    make_target(targets[j], first + j);
    make_payload(payloads[j], first + j);
    reqs[j] = (vs_write_req){.kind = "put",
                             .target = targets[j],
                             .target_bytes = BENCH_TARGET_BYTES,
                             .payload = payloads[j],
                             .payload_bytes = BENCH_PAYLOAD_BYTES};
  }
}

/* Write ops [0, n) to `store` as `origin` with vs_write_batch, BENCH_BATCH
 * at a time. Each batch is written at `at_ms`, or at the wall clock when
 * `at_ms` is 0. */
static inline void write_batches(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t n, uint64_t at_ms) {
  static uint8_t targets[BENCH_BATCH][BENCH_TARGET_BYTES];
  static uint8_t payloads[BENCH_BATCH][BENCH_PAYLOAD_BYTES];
  static vs_write_req reqs[BENCH_BATCH];
  for (uint64_t done = 0; done < n;) {
    uint32_t b = n - done < BENCH_BATCH ? (uint32_t)(n - done) : BENCH_BATCH;
    make_reqs(targets, payloads, reqs, done, b);
    CHECK_VS(vs_write_batch(store, origin, reqs, b, at_ms != 0 ? at_ms : wall_ms(), NULL));
    done += b;
  }
}

#endif
