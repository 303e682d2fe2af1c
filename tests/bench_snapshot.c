/* bench_snapshot: what a new device pays to join, by replaying the history
 * or by installing a snapshot, measured in the same run.
 *
 *   bench_snapshot [N [K]]      (default 1000000 operations over 1000 keys)
 *
 * Store A writes N operations over K keys (70% puts of 16-64 bytes, 15%
 * dels, 15% incrs; batches of 1,000, untimed). Then, each on a fresh store
 * (nosync durability, as a bulk load would run):
 *   a. replay: A's chain read from its WAL in signed runs (as anti-entropy
 *      sends them) and applied with vs_apply_run_enc: the receiver's work of
 *      a join by history. Bytes: what those runs weigh on the wire (per op
 *      u32 length and encoding, per run origin, count and signature).
 *   b. snapshot: vs_snapshot_make of A into memory, then vs_snapshot_install
 *      into a fresh store. Bytes: the snapshot.
 * All three stores end with the same state hash (checked).
 * `ratio join time snapshot/replay` = (make + install) / replay: the issue's
 * target is <= 0.05 (20x shorter); `ratio join bytes snapshot/history`. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define BENCH_NAME "bench_snapshot"
#define BENCH_REPS 3
#define BENCH_OPS_MAX 10000000ull

#include <inttypes.h>

#include "bench_util.h"
#include "apply.h"
#include "chain.h"
#include "internal.h"
#include "wal_int.h"
#include "vixsync/snapshot.h"
#include "snap_buf.h"

#define T0_MS 1700000000000ull
#define BATCH 1000u

typedef vt_snap_buf membuf;
#define mem_write vt_snap_write
#define mem_read vt_snap_read

#include "bench_join_util.h"

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? parse_ops(argv[1], "N") : 1000000u;
  uint32_t keys = argc > 2 ? (uint32_t)parse_ops(argv[2], "K") : 1000u;
  if (sodium_init() < 0) die("sodium_init", "failed");
  bench_base_init("bench_snapshot");
  describe_base();
  vs_identity id;
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 7, sizeof seed);
  CHECK_VS(vs_identity_from_seed(seed, &id));
  vs_store *a = open_store("a");
  CHECK_VS(vs_store_set_identity(a, &id));
  fill(a, &id, n, keys);
  uint64_t head = 0;
  CHECK_VS(vs_wal_head(a, id.pk, &head, NULL, NULL));
  printf("ops: %" PRIu64 "\nkeys: %u\n", head, keys);

  vs_store *b = open_store("replay");
  double t0 = now_s();
  uint64_t history_bytes = replay(a, b, id.pk, head);
  double replay_s = now_s() - t0;

  membuf snap = {NULL, 0, 0, 0};
  vs_snapshot_info info;
  t0 = now_s();
  CHECK_VS(vs_snapshot_make(a, mem_write, &snap, &info));
  double make_s = now_s() - t0;
  vs_store *c = open_store("snapshot");
  t0 = now_s();
  CHECK_VS(vs_snapshot_install(c, mem_read, &snap, T0_MS + n + 1000, NULL));
  double install_s = now_s() - t0;

  uint8_t ha[VS_HASH_BYTES], hb[VS_HASH_BYTES], hc[VS_HASH_BYTES];
  CHECK_VS(vs_state_hash(a, ha));
  CHECK_VS(vs_state_hash(b, hb));
  CHECK_VS(vs_state_hash(c, hc));
  if (memcmp(ha, hb, sizeof ha) != 0 || memcmp(ha, hc, sizeof ha) != 0) die("state hash", "the three stores differ");

  printf("history_bytes: %" PRIu64 " bytes\n", history_bytes);
  printf("snapshot_bytes: %zu bytes (%" PRIu64 " targets, %" PRIu64 " incrs, %u chunks)\n", snap.len, info.entries,
         info.incrs, info.chunks);
  printf("replay: %.1f ms (%.0f ops/s)\n", replay_s * 1000.0, (double)head / replay_s);
  printf("snapshot_make: %.1f ms\n", make_s * 1000.0);
  printf("snapshot_install: %.1f ms\n", install_s * 1000.0);
  printf("ratio join time snapshot/replay: %.4f\n", (make_s + install_s) / replay_s);
  printf("ratio join bytes snapshot/history: %.4f\n", (double)snap.len / (double)history_bytes);
  free(snap.p);
  vs_store_close(a);
  vs_store_close(b);
  vs_store_close(c);
  vs_identity_wipe(&id);
  vt_rmrf(bench_base);
  return 0;
}
