/* Compaction below a stable cut (src/compact.h): the log's ops up to the cut
 * leave the WAL, folded into the base state, and nothing a reader sees
 * changes: every test compares a compacted store with a twin that received
 * the same ops and never compacted (same state hash, same dump, same
 * vector), before and after later ops, refolds and voids. */
#include "apply_nodes.h"

#include "chain.h"
#include "compact.h"
#include "compact_util.h"
#include "member.h"
#include "member_facts.h"
#include "mesh_ops.h"
#include "mstore.h"
#include "vixsync/mesh.h"
#include "internal.h"
#include "outbox_step.h"
#include "state_int.h"
#include "voids.h"

typedef struct world {
  node a, b, e; /* writers; e's clock runs behind */
  node c, d;    /* c compacts, d is its twin that never does */
} world;

/* Interleaved puts, dels and incrs of a and b on four targets: overwrites,
 * deletes, counters after a base and before it. */
static void write_round(world *w, uint64_t t, unsigned round) {
  char v[32];
  snprintf(v, sizeof v, "a%u", round);
  wr(&w->a, "put", "k1", v, t + 1);
  wr(&w->b, "incr", "n", "5", t + 2);
  wr(&w->a, "incr", "n", "-2", t + 3);
  snprintf(v, sizeof v, "b%u", round);
  wr(&w->b, "put", "k2", v, t + 4);
  wr(&w->a, round % 2 ? "del" : "put", "k2", "x", t + 5);
  wr(&w->b, "put", "n", "100", t + 6 + (round % 3)); /* a new base under the counter */
  wr(&w->a, "incr", "n", "7", t + 7);
  snprintf(v, sizeof v, "c%u", round);
  wr(&w->b, round % 2 ? "put" : "del", "k3", v, t + 8);
}

static void sync_all(world *w, uint64_t now) {
  node *writers[] = {&w->a, &w->b, &w->e};
  node *readers[] = {&w->c, &w->d};
  for (unsigned r = 0; r < 2; r++)
    for (unsigned i = 0; i < 3; i++) sync_origin(writers[i], readers[r], writers[i]->id.pk, now);
}

static int setup(void **state) {
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  node_open(&w->a, "compact-a", 1);
  node_open(&w->b, "compact-b", 2);
  node_open(&w->e, "compact-e", 5);
  node_open(&w->c, "compact-c", 3);
  node_open(&w->d, "compact-d", 4);
  for (unsigned round = 0; round < 6; round++) write_round(w, T0_MS + round * 100, round);
  sync_all(w, T0_MS + 10000);
  assert_converged_live(w->c.store, w->d.store);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  node_close(&w->a);
  node_close(&w->b);
  node_close(&w->e);
  node_close(&w->c);
  node_close(&w->d);
  free(w);
  return 0;
}

static vs_err count_cb(const vs_wal_record *rec, void *ctx) {
  (void)rec;
  (*(uint64_t *)ctx)++;
  return VS_OK;
}

static uint64_t floor_of(vs_store *s) {
  MDB_txn *txn;
  uint64_t floor = 0;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  assert_err(vs_state_gc_floor_get_txn(txn, s, &floor), VS_OK);
  mdb_txn_abort(txn);
  return floor;
}

/* Every run `src` holds of its own chain, applied to `dst`: the first
 * error, or VS_OK. */
static vs_err send_all(node *src, node *dst, uint64_t now_ms) {
  oplist *l = collect(src->store, src->id.pk);
  run runs[RUNS_MAX];
  uint32_t nruns = cut_runs(src->store, l, runs, RUNS_MAX);
  vs_err err = VS_OK;
  for (uint32_t i = 0; i < nruns && err == VS_OK; i++) {
    vs_apply_result res;
    memset(&res, 0, sizeof res);
    err = apply_run(dst, l, &runs[i], now_ms, &res);
  }
  oplist_free(l);
  return err;
}

static int kind_of(vs_store *s, const char *target);

static void cut_of(node *n, uint64_t seq, vs_cut_entry *out) {
  memcpy(out->origin, n->id.pk, VS_ORIGIN_BYTES);
  out->seq = seq;
}

static void refold(vs_store *s) {
  MDB_txn *txn;
  assert_err(vs_txn_begin(s, true, &txn), VS_OK);
  assert_err(vs_state_rebuild_txn(txn, s), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
}

/* Everything compacted: two anchors left in the log, the state as the
 * twin's, a refold from the base gives it again, and so do later ops of
 * every origin. e's, behind the folded HLCs, are the too-late replica's:
 * at or below gc_floor, refused by the compacted store (its twin, which
 * dropped nothing, takes them). */
static void test_compact_everything_keeps_the_state(void **state) {
  world *w = *state;
  uint64_t before = vt_wal_records(w->c.store), lsn_before = last_lsn(w->c.store);
  assert_int_equal(before, 48);
  vs_cut_entry cut[2];
  cut_of(&w->a, 24, &cut[0]);
  cut_of(&w->b, 1000, &cut[1]); /* past the head: clamped */
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, cut, 2, 1000, &res), VS_OK);
  assert_int_equal(res.ops_folded, 48);
  assert_int_equal(res.records_dropped, 48);
  assert_int_equal(res.origins_moved, 2);
  assert_true(res.incrs_dropped > 0); /* incrs before a folded base: they never count again */
  assert_false(res.more);
  assert_true(res.tombstones_dropped > 0); /* k2's, k3's below the bound */
  assert_true(floor_of(w->c.store) > 0);
  assert_int_equal(vt_wal_records(w->c.store), 0); /* the horizons keep the anchors' hashes */
  assert_int_equal(last_lsn(w->c.store), lsn_before); /* never given again */
  assert_int_equal(vt_horizon_of(w->c.store, w->a.id.pk).seq, 24);
  assert_int_equal(vt_horizon_of(w->c.store, w->b.id.pk).seq, 24);
  assert_converged_live(w->c.store, w->d.store);
  refold(w->c.store);
  assert_converged_live(w->c.store, w->d.store);
  /* Again: nothing left to do. */
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, cut, 2, 1000, &res), VS_OK);
  assert_int_equal(res.ops_folded, 0);
  /* Later ops: a and b go on. */
  for (unsigned round = 6; round < 9; round++) write_round(w, T0_MS + round * 100, round);
  node *writers[] = {&w->a, &w->b};
  for (unsigned i = 0; i < 2; i++) {
    sync_origin(writers[i], &w->c, writers[i]->id.pk, T0_MS + 20000);
    sync_origin(writers[i], &w->d, writers[i]->id.pk, T0_MS + 20000);
  }
  assert_converged_live(w->c.store, w->d.store);
  refold(w->c.store);
  refold(w->d.store);
  assert_converged_live(w->c.store, w->d.store);
  /* The log's gaps are no corruption: a replay steps over them. */
  uint64_t replayed = 0;
  assert_err(vs_wal_replay(w->c.store, 1, count_cb, &replayed), VS_OK);
  assert_int_equal(replayed, 24); /* the rounds after the horizons, of a and b */
  /* e writes with a clock far behind: its ops order before folded ones
   * (a put there might have lost to a tombstone c no longer has). Refused
   * by c, whole: nothing stored, the state as it was. */
  wr(&w->e, "put", "k1", "old", T0_MS - 5000);
  wr(&w->e, "incr", "n", "1000", T0_MS - 4000);
  wr(&w->e, "del", "k3", NULL, T0_MS - 3000);
  wr(&w->e, "put", "fresh", "e", T0_MS - 2000);
  uint8_t h0[VS_HASH_BYTES], h1[VS_HASH_BYTES];
  state_hash(w->c.store, h0);
  assert_err(send_all(&w->e, &w->c, T0_MS + 20000), VS_ERR_BELOW_FLOOR);
  state_hash(w->c.store, h1);
  assert_memory_equal(h0, h1, VS_HASH_BYTES);
  uint64_t held = 0;
  uint8_t hh[VS_HASH_BYTES];
  assert_err(vs_wal_head(w->c.store, w->e.id.pk, &held, hh, NULL), VS_OK);
  assert_int_equal(held, 0);
}

/* In budget steps: the same result however it is cut, each call bounded. */
static void test_compact_in_steps(void **state) {
  world *w = *state;
  vs_cut_entry cut[2];
  cut_of(&w->b, 15, &cut[0]);
  cut_of(&w->a, 20, &cut[1]);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  unsigned calls = 0;
  do {
    res.more = false;
    uint64_t folded = res.ops_folded;
    assert_err(vs_compact_to(w->c.store, cut, 2, 7, &res), VS_OK);
    assert_true(res.ops_folded - folded <= 7);
    calls++;
    assert_true(calls <= 6);
  } while (res.more);
  assert_int_equal(res.ops_folded, 35);
  assert_int_equal(calls, 6); /* the fifth spent its budget exactly: one more finds nothing */
  assert_int_equal(vt_horizon_of(w->c.store, w->a.id.pk).seq, 20);
  assert_int_equal(vt_horizon_of(w->c.store, w->b.id.pk).seq, 15);
  assert_int_equal(vt_wal_records(w->c.store), 48 - 35);
  assert_converged_live(w->c.store, w->d.store);
  refold(w->c.store);
  assert_converged_live(w->c.store, w->d.store);
  /* An origin named twice, a zero budget: refused, nothing written. */
  vs_cut_entry twice[2];
  cut_of(&w->a, 24, &twice[0]);
  cut_of(&w->a, 24, &twice[1]);
  assert_err(vs_compact_to(w->c.store, twice, 2, 100, &res), VS_ERR_INVAL);
  assert_err(vs_compact_to(w->c.store, cut, 2, 0, &res), VS_ERR_INVAL);
  assert_int_equal(vt_horizon_of(w->c.store, w->a.id.pk).seq, 20);
}

/* Below the horizon: runs sent again are duplicates (nothing to compare
 * them with), a run cannot be read from there (never a partial stream), and
 * from the anchor on it can. */
static void test_compact_below_horizon(void **state) {
  world *w = *state;
  vs_cut_entry cut;
  cut_of(&w->a, 20, &cut);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, &cut, 1, 100, &res), VS_OK);
  assert_int_equal(sync_origin(&w->a, &w->c, w->a.id.pk, T0_MS + 30000), 0);
  assert_converged_live(w->c.store, w->d.store);
  MDB_txn *txn;
  assert_err(vs_txn_begin(w->c.store, false, &txn), VS_OK);
  vs_chain_runs r;
  assert_err(vs_chain_runs_open(txn, w->c.store, w->a.id.pk, 1, 24, &r), VS_ERR_BEHIND_HORIZON);
  vs_chain_runs_close(&r);
  assert_err(vs_chain_runs_open(txn, w->c.store, w->a.id.pk, 19, 24, &r), VS_ERR_BEHIND_HORIZON);
  vs_chain_runs_close(&r);
  assert_err(vs_chain_runs_open(txn, w->c.store, w->a.id.pk, 20, 24, &r), VS_ERR_BEHIND_HORIZON);
  vs_chain_runs_close(&r);
  assert_err(vs_chain_runs_open(txn, w->c.store, w->a.id.pk, 21, 24, &r), VS_OK);
  vs_chain_op op;
  assert_err(vs_chain_runs_next(&r, &op), VS_OK);
  assert_int_equal(op.seq, 21);
  vs_chain_runs_close(&r);
  /* The anchor's hash stays known: acknowledgements name it. */
  uint8_t h20[VS_HASH_BYTES], h19[VS_HASH_BYTES];
  assert_err(vs_op_hash_at_txn(txn, w->c.store, w->a.id.pk, 20, h20), VS_OK);
  assert_memory_equal(h20, vt_horizon_of(w->c.store, w->a.id.pk).hash, VS_HASH_BYTES);
  assert_err(vs_op_hash_at_txn(txn, w->c.store, w->a.id.pk, 19, h19), VS_ERR_NOTFOUND);
  assert_err(vs_op_hash_at_txn(txn, w->c.store, w->a.id.pk, 21, h19), VS_OK);
  vs_chain_runs_close(&r);
  mdb_txn_abort(txn);
}

/* A second branch of a compacted chain (a restored copy of a's directory
 * that wrote on, with a's identity): its run ending at the anchor differs
 * there and is refused, not taken for a duplicate; one ending below the
 * anchor cannot be told apart here (the ops are gone: docs/storage.md). */
static void test_compact_other_branch_at_anchor(void **state) {
  world *w = *state;
  vs_cut_entry cut;
  cut_of(&w->a, 4, &cut);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, &cut, 1, 100, &res), VS_OK);
  assert_int_equal(vt_horizon_of(w->c.store, w->a.id.pk).seq, 4);
  node copy;
  node_open(&copy, "compact-copy", 1); /* a's identity, another history */
  for (unsigned i = 0; i < 4; i++) wr(&copy, "put", "other", i % 2 ? "x" : "y", T0_MS + 50000 + i);
  oplist *l = collect(copy.store, copy.id.pk);
  run runs[RUNS_MAX];
  uint32_t n = cut_runs(copy.store, l, runs, RUNS_MAX);
  assert_int_equal(n, 4);
  vs_apply_result ar;
  assert_err(apply_run(&w->c, l, &runs[2], T0_MS + 60000, &ar), VS_OK); /* seq 3: below the anchor, taken as held */
  assert_int_equal(ar.applied, 0);
  assert_err(apply_run(&w->c, l, &runs[3], T0_MS + 60000, &ar), VS_ERR_CHAIN); /* seq 4: the anchor differs */
  assert_converged_live(w->c.store, w->d.store);
  oplist_free(l);
  node_close(&copy);
}

/* A void (fork verdict, revocation cut) that reaches below the horizon
 * starts above it: the ops up to it were held by every member. The twin
 * voided from there gives the same state. */
static void test_compact_void_starts_above_horizon(void **state) {
  world *w = *state;
  vs_cut_entry cut;
  cut_of(&w->b, 12, &cut);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, &cut, 1, 100, &res), VS_OK);
  uint8_t prev[VS_HASH_BYTES] = {0};
  bool changed = false;
  MDB_txn *txn;
  assert_err(vs_txn_begin(w->c.store, true, &txn), VS_OK);
  assert_err(vs_void_from_txn(txn, w->c.store, w->b.id.pk, 3, prev, NULL, VS_VOID_FORK, true, &changed), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  assert_true(changed);
  assert_err(vs_txn_begin(w->d.store, true, &txn), VS_OK);
  assert_err(vs_void_from_txn(txn, w->d.store, w->b.id.pk, 13, prev, NULL, VS_VOID_FORK, true, &changed), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  assert_converged_live(w->c.store, w->d.store);
  uint64_t seq = 0;
  assert_err(vs_wal_head(w->c.store, w->b.id.pk, &seq, NULL, NULL), VS_OK);
  assert_int_equal(seq, 12);
}

/* An own op a sink still has to send (an HTTP sink's PENDING entry) keeps
 * its record: its origin's compaction stops before it, and goes on once
 * the sink delivered it. */
static void test_compact_waits_for_the_outbox(void **state) {
  world *w = *state;
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(w->a.store, NULL, &ob), VS_OK); /* sink "default": claimed, as HTTP's */
  vs_outbox_entry e;
  vs_op_id id;
  vs_op_id_derive(w->a.id.pk, 1, &id);
  assert_err(vs_outbox_get(ob, &id, &e), VS_OK);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  vs_cut_entry cut;
  cut_of(&w->a, 10, &cut);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->a.store, &cut, 1, 100, &res), VS_OK);
  assert_int_equal(res.ops_folded, 0);
  assert_int_equal(res.held_by_outbox, 1);
  for (uint64_t seq = 1; seq <= 4; seq++) {
    vs_op_id_derive(w->a.id.pk, seq, &id);
    vs_outbox_entry got;
    assert_err(vs_outbox_claim(ob, &id, T0_MS + 50000, 1000u, &got), VS_OK);
    assert_err(vs_outbox_complete(ob, &id, T0_MS + 50001), VS_OK);
  }
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->a.store, &cut, 1, 100, &res), VS_OK);
  assert_int_equal(res.ops_folded, 4);
  assert_int_equal(res.held_by_outbox, 1);
  assert_int_equal(vt_horizon_of(w->a.store, w->a.id.pk).seq, 4);
  vs_outbox_close(ob);
  /* A client's retry of a compacted write (its idempotency key): the same
   * op id, nothing written, no record to describe it (lsn 0). */
  vs_write_req rq = req_of("put", "idem-target", "v");
  rq.idem_key = (const uint8_t *)"k1";
  rq.idem_key_bytes = 2;
  vs_write_result first, again;
  assert_err(vs_write(w->a.store, w->a.id.pk, &rq, T0_MS + 52000, &first), VS_OK);
  vs_outbox_open(w->a.store, NULL, &ob);
  vs_outbox_entry ent;
  assert_err(vs_outbox_claim(ob, &first.op_id, T0_MS + 52001, 1000u, &ent), VS_OK);
  assert_err(vs_outbox_complete(ob, &first.op_id, T0_MS + 52002), VS_OK);
  for (uint64_t seq = 5; seq < first.seq; seq++) {
    vs_op_id_derive(w->a.id.pk, seq, &id);
    if (vs_outbox_claim(ob, &id, T0_MS + 52003, 1000u, &ent) == VS_OK) assert_err(vs_outbox_complete(ob, &id, T0_MS + 52004), VS_OK);
  }
  vs_outbox_close(ob);
  cut.seq = first.seq;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->a.store, &cut, 1, 100, &res), VS_OK);
  assert_int_equal(vt_horizon_of(w->a.store, w->a.id.pk).seq, first.seq);
  assert_err(vs_write(w->a.store, w->a.id.pk, &rq, T0_MS + 53000, &again), VS_OK);
  assert_true(again.duplicate);
  assert_memory_equal(again.op_id.bytes, first.op_id.bytes, VS_OP_ID_BYTES);
  assert_int_equal(again.seq, first.seq);
  assert_int_equal(again.lsn, 0);
  assert_int_equal(again.hlc, first.hlc); /* the anchor: its HLC is kept */
  /* What a writes still reads the same: a's view equals c's of a alone. */
  uint64_t seq = 0;
  assert_err(vs_wal_head(w->a.store, w->a.id.pk, &seq, NULL, NULL), VS_OK);
  assert_int_equal(seq, 25);
  wr(&w->a, "put", "after", "1", T0_MS + 60000); /* the chain goes on from its head */
}

/* A managed store: its membership ops (genesis, invites) stay whole below
 * the horizon, so the view reads the same facts after compaction, and a
 * device's own admission can still be presented (a run from seq 1). */
static void test_compact_keeps_membership_ops(void **state) {
  (void)state;
  node a;
  node_open(&a, "compact-m", 7);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(a.store, T0_MS, mesh_id), VS_OK);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.ranges_only = true; /* the mesh's sink, as the node opens it: it never holds an op back */
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(a.store, &ocfg, &ob), VS_OK);
  uint8_t key[VS_MESH_KEY_BYTES], seed[32];
  memset(key, 0x11, sizeof key);
  char token[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t chars = 0;
  wr(&a, "del", "gone", NULL, T0_MS + 5); /* a tombstone: the only member, folded to its head: it goes */
  for (unsigned i = 0; i < 3; i++) {
    wr(&a, "put", "k", i % 2 ? "x" : "y", T0_MS + 10 + i * 10);
    memset(seed, (int)(0x20 + i), sizeof seed);
    vs_mesh_invite_req req = {.role = VS_MESH_WRITER, .expires_ms = T0_MS + 3600000, .invite_seed = seed, .mesh_key = key};
    assert_err(vs_mesh_invite(a.store, &req, T0_MS + 15 + i * 10, token, sizeof token, &chars), VS_OK);
    wr(&a, "incr", "n", "3", T0_MS + 17 + i * 10);
  }
  uint64_t head = 0;
  assert_err(vs_wal_head(a.store, a.id.pk, &head, NULL, NULL), VS_OK);
  assert_int_equal(head, 11); /* genesis, del, then 3 x (put, invite, incr) */
  vs_mesh_view *before = malloc(sizeof *before), *after = malloc(sizeof *after);
  assert_non_null(before);
  assert_non_null(after);
  assert_err(vs_mesh_view_get(a.store, mesh_id, before), VS_OK);
  assert_int_equal(before->count, 1);
  assert_true(before->has_genesis);
  uint8_t hash_before[VS_HASH_BYTES], hash_after[VS_HASH_BYTES];
  state_hash(a.store, hash_before);
  vs_cut_entry cut;
  cut_of(&a, head, &cut);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(a.store, &cut, 1, 100, &res), VS_OK);
  assert_int_equal(res.ops_folded, 11);
  assert_int_equal(res.records_dropped, 7);
  /* The only member, an active one, folded up to its head: its later ops
   * come after everything folded (docs/storage.md, "Dropping tombstones"),
   * so nothing bounds the walk but the base's top. */
  assert_int_equal(res.tombstones_dropped, 1);
  assert_int_equal(kind_of(a.store, "gone"), -1);
  assert_true(res.incr_rows_folded >= 1); /* n's three incrs, one total */
  assert_int_equal(vt_wal_records(a.store), 4);
  assert_err(vs_mesh_view_get(a.store, mesh_id, after), VS_OK);
  assert_true(mf_view_equal(before, after));
  free(before);
  free(after);
  refold(a.store);
  state_hash(a.store, hash_after);
  assert_memory_equal(hash_before, hash_after, VS_HASH_BYTES);
  MDB_txn *txn;
  assert_err(vs_txn_begin(a.store, false, &txn), VS_OK);
  vs_chain_runs r;
  assert_err(vs_chain_runs_open(txn, a.store, a.id.pk, 1, 1, &r), VS_OK); /* the genesis alone */
  vs_chain_op op;
  assert_err(vs_chain_runs_next(&r, &op), VS_OK);
  assert_int_equal(op.seq, 1);
  assert_non_null(op.sig);
  vs_chain_runs_close(&r);
  assert_err(vs_chain_runs_open(txn, a.store, a.id.pk, 1, 10, &r), VS_OK);
  assert_err(vs_chain_runs_next(&r, &op), VS_OK);
  assert_err(vs_chain_runs_next(&r, &op), VS_ERR_BEHIND_HORIZON); /* seq 2 was compacted */
  vs_chain_runs_close(&r);
  mdb_txn_abort(txn);
  /* Writes go on, membership ops too. */
  wr(&a, "put", "k", "z", T0_MS + 100);
  memset(seed, 0x30, sizeof seed);
  vs_mesh_invite_req req = {.role = VS_MESH_READER, .expires_ms = T0_MS + 3600000, .invite_seed = seed, .mesh_key = key};
  assert_err(vs_mesh_invite(a.store, &req, T0_MS + 110, token, sizeof token, &chars), VS_OK);
  sodium_memzero(token, sizeof token);
  vs_outbox_close(ob);
  node_close(&a);
}

/* ---- tombstones and counters below the bound (docs/storage.md, "Dropping tombstones") ---- */

static uint64_t db_rows(vs_store *s, MDB_dbi dbi) {
  MDB_txn *txn;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  MDB_stat st;
  assert_int_equal(mdb_stat(txn, dbi, &st), 0);
  mdb_txn_abort(txn);
  return st.ms_entries;
}

static vs_err get_cb(const vs_state_entry *e, void *ctx) {
  *(vs_state_kind *)ctx = e->kind;
  return VS_OK;
}

/* The kind `target` shows in `s` (tombstones included), or -1 if none. */
static int kind_of(vs_store *s, const char *target) {
  vs_state_kind k = VS_STATE_VALUE;
  vs_err err = vs_state_get(s, (const uint8_t *)target, (uint32_t)strlen(target), true, get_cb, &k);
  if (err == VS_ERR_NOTFOUND) return -1;
  assert_err(err, VS_OK);
  return (int)k;
}

/* Compact c up to every head, in steps of `budget`. */
static vs_compact_result compact_all(world *w, uint64_t budget) {
  vs_cut_entry cut[3];
  cut_of(&w->a, 100000, &cut[0]);
  cut_of(&w->b, 100000, &cut[1]);
  cut_of(&w->e, 100000, &cut[2]);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  unsigned calls = 0;
  do {
    res.more = false;
    assert_err(vs_compact_to(w->c.store, cut, 3, budget, &res), VS_OK);
    assert_true(++calls < 10000);
  } while (res.more);
  return res;
}

static void sync_ab(world *w, uint64_t now) {
  node *writers[] = {&w->a, &w->b};
  node *readers[] = {&w->c, &w->d};
  for (unsigned r = 0; r < 2; r++)
    for (unsigned i = 0; i < 2; i++) sync_origin(writers[i], readers[r], writers[i]->id.pk, now);
}

/* A deleted target and a counter written many times: after compaction the
 * tombstone is gone (not merely hidden), the counter's rows are one per
 * origin, and the compacted store and its twin agree on the hash, the dump
 * and every get, before and after later ops from every origin with HLCs
 * just above gc_floor, and after refolds. An op just at the floor is the
 * too-late replica's: refused by c, nothing stored. */
static void test_compact_drops_tombstones_folds_counters(void **state) {
  world *w = *state;
  uint64_t t = T0_MS + 1000;
  wr(&w->a, "put", "gone", "v", t++);
  for (unsigned i = 0; i < 200; i++) {
    wr(&w->a, "incr", "hot", "1", t++);
    wr(&w->b, "incr", "hot", "2", t++);
    if (i == 50) wr(&w->b, "put", "hot", "1000", t++); /* a base under the counter: the incrs before it die */
  }
  wr(&w->b, "del", "gone", NULL, t++);
  wr(&w->a, "put", "end", "a", t++); /* the horizons' HLCs: above everything before */
  wr(&w->b, "put", "end", "b", t++);
  sync_ab(w, t + 10000);
  assert_int_equal(kind_of(w->c.store, "gone"), VS_STATE_TOMBSTONE);
  uint64_t twin_incrs = db_rows(w->d.store, w->d.store->dbi_incrs);
  vs_compact_result res = compact_all(w, 64);
  assert_true(res.tombstones_dropped >= 2); /* gone, and k2 or k3 of the rounds */
  assert_true(res.incr_rows_folded > 0);
  assert_converged_live(w->c.store, w->d.store);
  assert_int_equal(kind_of(w->c.store, "gone"), -1); /* dropped, */
  assert_int_equal(kind_of(w->d.store, "gone"), VS_STATE_TOMBSTONE); /* kept by the twin */
  assert_int_equal(kind_of(w->c.store, "hot"), VS_STATE_COUNTER);
  /* The counter's rows: a's and b's totals, in the base and the live copy
   * (the twin keeps one row per incr after the base). */
  uint64_t base_rows = db_rows(w->c.store, w->c.store->dbi_hincrs), live_rows = db_rows(w->c.store, w->c.store->dbi_incrs);
  assert_true(base_rows <= 4);
  assert_true(live_rows <= 4);
  assert_true(twin_incrs > 300);
  uint64_t floor = floor_of(w->c.store);
  assert_true(floor > 0);
  refold(w->c.store);
  assert_converged_live(w->c.store, w->d.store);
  /* Later ops of every origin, just above the floor: the same everywhere,
   * a put on the dropped target included (it wins over the tombstone in
   * the twin too: it is ordered after it). */
  uint64_t above = vs_hlc_wall_ms(floor) + 1;
  wr(&w->e, "put", "gone", "back", above);
  wr(&w->e, "incr", "hot", "5", above + 1);
  wr(&w->e, "del", "k1", NULL, above + 2);
  wr(&w->a, "incr", "hot", "7", above + 3);
  wr(&w->b, "put", "hot", "1", above + 4);
  wr(&w->b, "incr", "hot", "1", above + 5);
  sync_all(w, above + 20000);
  assert_converged_live(w->c.store, w->d.store);
  assert_int_equal(kind_of(w->c.store, "gone"), VS_STATE_VALUE);
  compact_all(w, 1000);
  assert_converged_live(w->c.store, w->d.store);
  refold(w->c.store);
  refold(w->d.store);
  assert_converged_live(w->c.store, w->d.store);
  /* A replica whose clock stood at the floor: its put on the dropped
   * target is refused by c (detected, never merged), whole. */
  uint64_t floor2 = floor_of(w->c.store);
  assert_true(floor2 >= floor);
  node late;
  node_open(&late, "compact-late", 6);
  wr(&late, "put", "k-late", "x", T0_MS); /* below: refused as a whole run with the next */
  wr(&late, "put", "gone", "zombie", vs_hlc_wall_ms(floor2));
  uint8_t h0[VS_HASH_BYTES], h1[VS_HASH_BYTES];
  state_hash(w->c.store, h0);
  assert_err(send_all(&late, &w->c, above + 30000), VS_ERR_BELOW_FLOOR);
  state_hash(w->c.store, h1);
  assert_memory_equal(h0, h1, VS_HASH_BYTES);
  assert_int_equal(kind_of(w->c.store, "k-late"), -1);
  /* The twin, which dropped nothing, merges it as a CRDT does. */
  assert_err(send_all(&late, &w->d, above + 30000), VS_OK);
  node_close(&late);
}

/* A tombstone above the bound stays: an origin whose horizon is low may
 * still send ops ordered before it. When that horizon rises, the walk's
 * next round drops it. */
static void test_compact_tombstone_above_bound_stays(void **state) {
  world *w = *state;
  /* k2's last op: a's del at round 5 (t + 5). */
  assert_int_equal(kind_of(w->c.store, "k2"), VS_STATE_TOMBSTONE);
  vs_cut_entry cut[2];
  cut_of(&w->a, 1000, &cut[0]);
  cut_of(&w->b, 2, &cut[1]); /* b's ops from seq 3 on may be ordered before it */
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, cut, 2, 1000, &res), VS_OK);
  assert_true(res.gc_bound > 0);
  assert_true(res.gc_bound < vs_hlc_make(T0_MS + 505, 0));
  assert_int_equal(kind_of(w->c.store, "k2"), VS_STATE_TOMBSTONE);
  assert_true(floor_of(w->c.store) <= res.gc_bound);
  assert_converged_live(w->c.store, w->d.store);
  cut[1].seq = 1000;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, cut, 2, 1000, &res), VS_OK);
  assert_true(res.tombstones_dropped > 0);
  assert_int_equal(kind_of(w->c.store, "k2"), -1);
  assert_converged_live(w->c.store, w->d.store);
  /* What the bound protected: b's put of k2 at round 5 (t + 4) is ordered
   * before a's del (t + 5). Had the del gone at the first call, folding
   * the put at the second would have made it the base's winner: a refold
   * (or a snapshot of the base) would show k2 again, the twin not. */
  refold(w->c.store);
  assert_converged_live(w->c.store, w->d.store);
  assert_int_equal(kind_of(w->c.store, "k2"), -1);
  /* Nothing new to fold and the bound the same: no round, nothing visited. */
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, cut, 2, 1000, &res), VS_OK);
  assert_int_equal(res.gc_visited, 0);
  assert_false(res.more);
}

/* A hostile chain whose HLC goes back: its op ordered before a's del of
 * k2, held above its horizon, must hold the tombstone (honest chains
 * never do this; acceptance does not check it). Without the mark the
 * bound is its anchor's HLC, the del would go, and a refold would show
 * the hostile put. */
static void test_compact_chain_going_back_holds_the_bound(void **state) {
  world *w = *state;
  chain *h = chain_new(0x61);
  chain_put(h, 2000, "h1", "x");
  chain_put(h, 3000, "h2", "y");
  chain_put(h, 100, "k2", "zombie"); /* back in time: before a's del (t + 505) */
  node *readers[] = {&w->c, &w->d};
  for (unsigned r = 0; r < 2; r++) {
    assert_err(apply_seqs(readers[r]->store, h, 1, 2, NULL), VS_OK);
    assert_err(apply_seqs(readers[r]->store, h, 3, 3, NULL), VS_OK);
  }
  assert_converged_live(w->c.store, w->d.store);
  vs_cut_entry cut[3];
  cut_of(&w->a, 1000, &cut[0]);
  cut_of(&w->b, 1000, &cut[1]);
  memcpy(cut[2].origin, h->id.pk, VS_ORIGIN_BYTES);
  cut[2].seq = 2; /* the op that went back stays above the horizon */
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->c.store, cut, 3, 1000, &res), VS_OK);
  assert_true(res.gc_bound < hlc_at(100));
  assert_int_equal(kind_of(w->c.store, "k2"), VS_STATE_TOMBSTONE);
  refold(w->c.store);
  assert_converged_live(w->c.store, w->d.store);
  assert_int_equal(kind_of(w->c.store, "k2"), VS_STATE_TOMBSTONE);
  chain_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_compact_everything_keeps_the_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_in_steps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_drops_tombstones_folds_counters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_tombstone_above_bound_stays, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_chain_going_back_holds_the_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_below_horizon, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_other_branch_at_anchor, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_void_starts_above_horizon, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_waits_for_the_outbox, setup, teardown),
      cmocka_unit_test(test_compact_keeps_membership_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
