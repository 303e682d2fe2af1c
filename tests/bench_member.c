/* bench_member: what the membership gate (src/mgate.h) costs a receiver.
 *
 *   bench_member [N]      (default 100000)
 *
 * A sender founds a managed mesh (vs_mesh_create), invites the receivers
 * and writes N ops (kind "put", 16-byte target + 100-byte payload, batches
 * of 1,000: signed runs), untimed. Its runs (cut at its signatures, as a
 * peer sends them) are then applied with vs_apply_run to two fresh
 * receivers (nosync), timed, the two taking turns going first, median of 5:
 *   open:    a store in an open mesh (no mesh id): the gate reads one meta
 *            key per run and stops;
 *   managed: a store that joined the sender's mesh (vs_mesh_join), so every
 *            run is checked against the sender's member record (one meta
 *            key and one record per run), after the genesis and the invite
 *            made the sender an admin there.
 * Both apply the same runs, the genesis and invite included (in the open
 * store they are stored as ops, no fact), so the two do the same work but
 * the gate's. The gate is per run, not per op: the ratio shows it.
 * Also: one fold of the view (vs_mesh_refresh_txn through vs_mesh_revoke
 * is not timed here; tests/test_member.c prints the reducer at its bounds).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vixsync/vixsync.h"
#include "apply.h" /* internal: signatures of runs */

#define BENCH_REPS 5
#define BENCH_BATCH 1000u
#define BENCH_TARGET_BYTES 16u
#define BENCH_PAYLOAD_BYTES 100u
#define BENCH_MAP_BYTES (4ull * 1024ull * 1024ull * 1024ull)
#define BENCH_OPS_MAX 10000000ull
#define BENCH_NAME "bench_member"

#include "bench_util.h"
#include "bench_ops.h"

#define T0_MS 1700000000000ull
#define DAY_MS (24ull * 3600ull * 1000ull)

typedef struct sent_run {
  uint64_t first, last; /* seqs */
  uint8_t sig[VS_SIGNATURE_BYTES];
} sent_run;

typedef struct oplist {
  vs_op *ops;
  uint8_t **bufs;
  uint64_t n, cap;
} oplist;

static const uint8_t *sender_pk;

static vs_err collect_cb(const vs_wal_record *rec, void *ctx) {
  oplist *l = ctx;
  if (memcmp(rec->op.origin, sender_pk, VS_ORIGIN_BYTES) != 0) return VS_OK;
  if (l->n == l->cap) die("collect", "more ops than expected");
  /* The op's target and payload point into the WAL's bytes: copy them. */
  size_t bytes = (size_t)rec->op.target_bytes + rec->op.payload_bytes;
  uint8_t *b = malloc(bytes > 0 ? bytes : 1);
  if (b == NULL) die("collect", "out of memory");
  vs_op op = rec->op;
  if (op.target_bytes > 0) memcpy(b, rec->op.target, op.target_bytes);
  op.target = b;
  if (op.payload_bytes > 0) memcpy(b + op.target_bytes, rec->op.payload, op.payload_bytes);
  op.payload = b + op.target_bytes;
  l->bufs[l->n] = b;
  l->ops[l->n++] = op;
  return VS_OK;
}

static vs_store *open_store(const char *dir, const vs_identity *id) {
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.map_bytes = BENCH_MAP_BYTES;
  cfg.durability = VS_DURABILITY_NOSYNC;
  vs_store *s = NULL;
  CHECK_VS(vs_store_open(dir, &cfg, &s));
  if (id != NULL) CHECK_VS(vs_store_set_identity(s, id));
  return s;
}

static vs_identity ident(uint8_t salt) {
  uint8_t seed[VS_SEED_BYTES];
  for (unsigned i = 0; i < VS_SEED_BYTES; i++) seed[i] = (uint8_t)(salt * 31u + i);
  vs_identity id;
  CHECK_VS(vs_identity_from_seed(seed, &id));
  return id;
}

static const uint8_t MESH_KEY[VS_MESH_KEY_BYTES] = {1, 2, 3};

/* A token of a fresh invite of `s` (its identity an admin). */
static void make_token(vs_store *s, uint8_t seed_byte, char tok[VS_MESH_TOKEN_LINE_MAX + 1], size_t *n) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, seed_byte, sizeof seed);
  vs_mesh_invite_req req = {VS_MESH_WRITER, T0_MS + DAY_MS, seed, MESH_KEY, NULL, 0};
  CHECK_VS(vs_mesh_invite(s, &req, T0_MS, tok, VS_MESH_TOKEN_LINE_MAX + 1, n));
}

static double apply_all(vs_store *r, const oplist *l, const sent_run *runs, uint64_t nruns) {
  double t0 = now_s();
  for (uint64_t i = 0; i < nruns; i++) {
    vs_apply_result res;
    uint32_t count = (uint32_t)(runs[i].last - runs[i].first + 1);
    CHECK_VS(vs_apply_run(r, &l->ops[runs[i].first - 1], count, runs[i].sig, T0_MS + 1000, VS_MAX_DRIFT_MS_DEFAULT, &res));
    if (res.applied != count) die("apply", "a run did not apply whole");
  }
  return now_s() - t0;
}

int main(int argc, char **argv) {
  if (argc > 2) die("usage", "bench_member [N]");
  uint64_t n = argc > 1 ? parse_ops(argv[1], "N") : 100000u;
  bench_base_init("vixsync-bench-member");
  describe_base();
  vs_identity ids = ident(1), idr = ident(2);
  sender_pk = ids.pk;
  char dir_s[4200];
  fresh_dir(dir_s, sizeof dir_s, "sender");
  vs_store *s = open_store(dir_s, &ids);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  CHECK_VS(vs_mesh_create(s, T0_MS, mesh_id));
  char tokens[BENCH_REPS][VS_MESH_TOKEN_LINE_MAX + 1];
  size_t tok_n[BENCH_REPS];
  for (int k = 0; k < BENCH_REPS; k++) make_token(s, (uint8_t)(0x30 + k), tokens[k], &tok_n[k]);
  write_batches(s, ids.pk, n, T0_MS + 10);
  /* The sender's chain and its runs, as a peer would send them. */
  oplist l;
  memset(&l, 0, sizeof l);
  l.cap = n + 1 + BENCH_REPS;
  l.ops = calloc(l.cap, sizeof *l.ops);
  l.bufs = calloc(l.cap, sizeof *l.bufs);
  sent_run *runs = calloc(l.cap, sizeof *runs);
  if (l.ops == NULL || l.bufs == NULL || runs == NULL) die("alloc", "out of memory");
  CHECK_VS(vs_wal_replay(s, 1, collect_cb, &l));
  uint64_t nruns = 0;
  for (uint64_t seq = 1; seq <= l.n;) {
    uint64_t end = 0;
    CHECK_VS(vs_apply_next_signed(s, ids.pk, seq, &end));
    runs[nruns].first = seq;
    runs[nruns].last = end;
    CHECK_VS(vs_apply_sig_get(s, &l.ops[end - 1].id, runs[nruns].sig));
    nruns++;
    seq = end + 1;
  }
  vs_store_close(s);
  printf("op: %u-byte target + %u-byte payload, kind \"put\"; N = %" PRIu64 " (+ %d membership ops); %" PRIu64
         " signed runs; nosync; medians of %d runs\n",
         BENCH_TARGET_BYTES, BENCH_PAYLOAD_BYTES, n, 1 + BENCH_REPS, nruns, BENCH_REPS);
  double open_s[BENCH_REPS], managed_s[BENCH_REPS];
  for (int k = 0; k < BENCH_REPS; k++) {
    char dir_o[4200], dir_m[4200];
    fresh_dir(dir_o, sizeof dir_o, "open");
    fresh_dir(dir_m, sizeof dir_m, "managed");
    vs_store *ro = open_store(dir_o, NULL);
    vs_store *rm = open_store(dir_m, &idr);
    vs_mesh_joined j;
    CHECK_VS(vs_mesh_join(rm, tokens[k], tok_n[k], T0_MS + 1, &j));
    sodium_memzero(&j, sizeof j);
    if (k % 2 == 0) {
      open_s[k] = apply_all(ro, &l, runs, nruns);
      managed_s[k] = apply_all(rm, &l, runs, nruns);
    } else {
      managed_s[k] = apply_all(rm, &l, runs, nruns);
      open_s[k] = apply_all(ro, &l, runs, nruns);
    }
    uint32_t members = 0;
    CHECK_VS(vs_mesh_members(rm, NULL, 0, &members));
    if (members != 2) die("managed", "the receiver does not see the sender and itself as members");
    vs_store_close(ro);
    vs_store_close(rm);
    vt_rmrf(dir_o);
    vt_rmrf(dir_m);
  }
  double o = median3(open_s), m = median3(managed_s);
  printf("apply open mesh: %.0f ops/s\n", (double)l.n / o);
  printf("apply managed mesh: %.0f ops/s\n", (double)l.n / m);
  printf("gate cost per run: %.2f us\n", nruns > 0 ? (m - o) / (double)nruns * 1e6 : 0.0);
  printf("ratio apply managed vs open: %.3f\n", o / m);
  for (uint64_t i = 0; i < l.n; i++) free(l.bufs[i]);
  free(l.bufs);
  free(l.ops);
  free(runs);
  vt_rmrf(bench_base);
  return 0;
}
