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

static vs_store *open_store(const char *tag) {
  char dir[4200];
  fresh_dir(dir, sizeof dir, tag);
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_NOSYNC;
  cfg.map_bytes = 8ull << 30;
  vs_store *s = NULL;
  CHECK_VS(vs_store_open(dir, &cfg, &s));
  return s;
}

static void fill(vs_store *a, const vs_identity *id, uint64_t n, uint32_t keys) {
  vs_write_req *reqs = calloc(BATCH, sizeof *reqs);
  char (*targets)[16] = calloc(BATCH, 16), (*values)[72] = calloc(BATCH, 72);
  if (reqs == NULL || targets == NULL || values == NULL) die("calloc", "out of memory");
  uint64_t x = 42;
  for (uint64_t done = 0; done < n;) {
    uint32_t b = n - done < BATCH ? (uint32_t)(n - done) : BATCH;
    for (uint32_t i = 0; i < b; i++) {
      x = mix(x + 1);
      int tn = snprintf(targets[i], 16, "key%05u", (unsigned)(x % keys));
      uint32_t pick = (uint32_t)((x >> 20) % 100);
      vs_write_req *r = &reqs[i];
      memset(r, 0, sizeof *r);
      r->target = (const uint8_t *)targets[i];
      r->target_bytes = (uint32_t)tn;
      if (pick < 70) {
        uint32_t len = 16 + (uint32_t)((x >> 40) % 49);
        memset(values[i], 'a' + (int)(x % 26), len);
        r->kind = "put";
        r->payload = (const uint8_t *)values[i];
        r->payload_bytes = len;
      } else if (pick < 85) {
        r->kind = "del";
      } else {
        int vn = snprintf(values[i], 72, "%d", (int)((x >> 30) % 200) - 100);
        r->kind = "incr";
        r->payload = (const uint8_t *)values[i];
        r->payload_bytes = (uint32_t)vn;
      }
    }
    CHECK_VS(vs_write_batch(a, id->pk, reqs, b, T0_MS + done, NULL));
    done += b;
  }
  free(reqs);
  free(targets);
  free(values);
}

/* Replay A's chain up to `head` into B in signed runs; returns the bytes
 * those runs weigh on the wire. */
static uint64_t replay(vs_store *a, vs_store *b, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t head) {
  MDB_txn *txn;
  CHECK_VS(vs_txn_begin(a, false, &txn));
  vs_wal_reader wr;
  CHECK_VS(vs_wal_reader_open(txn, a, &wr));
  uint32_t cap = VS_APPLY_RUN_OPS_MAX;
  vs_op *ops = malloc(sizeof *ops * cap);
  const uint8_t **enc = malloc(sizeof *enc * cap);
  uint32_t *lens = malloc(sizeof *lens * cap);
  if (ops == NULL || enc == NULL || lens == NULL) die("malloc", "out of memory");
  uint64_t bytes = 0, from = 1;
  while (from <= head) {
    vs_chain_runs r;
    CHECK_VS(vs_chain_runs_open(txn, a, origin, from, head, &r));
    uint32_t count = 0;
    const uint8_t *sig = NULL;
    for (uint64_t seq = from; seq <= head && count < cap; seq++) {
      vs_chain_op op;
      CHECK_VS(vs_chain_runs_next(&r, &op));
      CHECK_VS(vs_wal_reader_op(&wr, op.lsn, &enc[count], &lens[count]));
      CHECK_VS(vs_op_decode(enc[count], lens[count], &ops[count]));
      bytes += 4u + lens[count];
      count++;
      if (op.sig != NULL) {
        sig = op.sig;
        break;
      }
    }
    vs_chain_runs_close(&r);
    if (sig == NULL) die("replay", "a run without a signature");
    bytes += VS_ORIGIN_BYTES + 4u + VS_SIGNATURE_BYTES;
    vs_apply_result res;
    CHECK_VS(vs_apply_run_enc(b, ops, enc, lens, count, sig, T0_MS + head + 1000, VS_MAX_DRIFT_MS_DEFAULT, &res));
    if (res.applied != count) die("replay", "not every op applied");
    from += count;
  }
  vs_wal_reader_close(&wr);
  mdb_txn_abort(txn);
  free(ops);
  free(enc);
  free(lens);
  return bytes;
}

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
