/* bench_rebase: what re-bootstrapping a store that holds data costs
 * (vs_snapshot_rebase; docs/storage.md, "Re-bootstrap and orphans"),
 * against installing the same snapshot into a fresh store, same run.
 *
 *   bench_rebase [N [K]]      (default 200000 operations over 1000 keys)
 *
 * Store M (the mesh) writes N operations over K keys (bench_snapshot's
 * mix, batches of 1,000, untimed). Store R, the returning device, holds
 * M's first N/2 (replayed in signed runs, untimed) and 1,000 ops of its
 * own that M never received. M's snapshot is made once; then, timed:
 *   a. install into a fresh store (the floor: what a new device pays);
 *   b. rebase R: its N/2 records of M and the tables the snapshot rewrites
 *      emptied, the snapshot loaded, its 1,000 own ops kept above the
 *      (absent) anchor of its chain, the live state rebuilt.
 * Checked: the fresh store has M's state; R keeps its 1,000 ops, orphans
 * none, and equals the fresh store once its own ops are replayed there.
 * `ratio rebase/install` is what the data already held costs on top. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define BENCH_NAME "bench_rebase"
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
#define OWN_OPS 1000u

#include "bench_join_util.h"

static vs_identity ident(uint8_t salt) {
  vs_identity id;
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, salt, sizeof seed);
  CHECK_VS(vs_identity_from_seed(seed, &id));
  return id;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? parse_ops(argv[1], "N") : 200000u;
  uint32_t keys = argc > 2 ? (uint32_t)parse_ops(argv[2], "K") : 1000u;
  if (sodium_init() < 0) die("sodium_init", "failed");
  bench_base_init("bench_rebase");
  describe_base();
  vs_identity mid = ident(7), rid = ident(9);
  vs_store *m = open_store("mesh");
  CHECK_VS(vs_store_set_identity(m, &mid));
  fill(m, &mid, n, keys);
  uint64_t head = 0;
  CHECK_VS(vs_wal_head(m, mid.pk, &head, NULL, NULL));
  vs_store *r = open_store("returning");
  CHECK_VS(vs_store_set_identity(r, &rid));
  /* M's runs are batches of 1,000 (each signed): the first half, whole runs. */
  uint64_t half = head / 2 / BATCH * BATCH;
  (void)replay(m, r, mid.pk, half > 0 ? half : head);
  fill(r, &rid, OWN_OPS, keys);
  printf("ops: %" PRIu64 " (the returning store holds %" PRIu64 " and %u of its own)\nkeys: %u\n", head,
         half > 0 ? half : head, OWN_OPS, keys);

  vt_snap_buf snap = {NULL, 0, 0, 0};
  vs_snapshot_info info;
  CHECK_VS(vs_snapshot_make(m, vt_snap_write, &snap, &info));
  vs_store *f = open_store("fresh");
  double t0 = now_s();
  CHECK_VS(vs_snapshot_install(f, vt_snap_read, &snap, T0_MS + n + 100000, NULL));
  double install_s = now_s() - t0;
  snap.at = 0;
  vs_rebase_info ri;
  t0 = now_s();
  CHECK_VS(vs_snapshot_rebase(r, vt_snap_read, &snap, T0_MS + n + 100000, &ri));
  double rebase_s = now_s() - t0;
  if (ri.own_kept != OWN_OPS || ri.orphaned != 0 || ri.ops_dropped != (half > 0 ? half : head))
    die("rebase", "unexpected counts");
  /* R = the snapshot + its own ops: the fresh store once they reach it. */
  (void)replay(r, f, rid.pk, OWN_OPS);
  uint8_t hr[VS_HASH_BYTES], hf[VS_HASH_BYTES];
  CHECK_VS(vs_state_hash(r, hr));
  CHECK_VS(vs_state_hash(f, hf));
  if (memcmp(hr, hf, sizeof hr) != 0) die("state hash", "the rebased store and the fresh one differ");

  printf("snapshot_bytes: %zu bytes (%" PRIu64 " targets)\n", snap.len, info.entries);
  printf("install: %.1f ms\n", install_s * 1000.0);
  printf("rebase: %.1f ms (%" PRIu64 " records dropped, %" PRIu64 " own ops kept)\n", rebase_s * 1000.0,
         ri.ops_dropped, ri.own_kept);
  printf("ratio rebase/install: %.4f\n", rebase_s / install_s);
  free(snap.p);
  vs_store_close(m);
  vs_store_close(r);
  vs_store_close(f);
  vs_identity_wipe(&mid);
  vs_identity_wipe(&rid);
  vt_rmrf(bench_base);
  return 0;
}
