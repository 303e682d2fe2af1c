/* tests/test_chain.c: pins src/chain.h, the chain module: the run reader
 * (vs_chain_runs_*) that a node sends signed runs with, and the meta it
 * keeps (HLC, restore mark).
 *
 * Cases: the reader walks an origin's ops in seq order with their LSNs and
 * marks exactly the signed ones with the stored signature; it starts at
 * any seq and stops looking for signatures past `last`; no signed op in
 * the range (other origins' unsigned ops, a commit not yet signed) is
 * VS_ERR_NOTFOUND; a signature whose op is missing is VS_ERR_CORRUPT; the
 * meta round-trips and a restore mark of 0 is deleted.
 */

#include "apply_nodes.h"
#include "chain.h"

typedef struct chain_fx {
  node a;
} chain_fx;

static int setup(void **state) {
  chain_fx *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  node_open(&f->a, "chain", 1);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  chain_fx *f = *state;
  node_close(&f->a);
  free(f);
  return 0;
}

/* One read of `origin` from..last through the run reader: each op's seq,
 * LSN and whether it is signed, as sent (stops after the last signed op,
 * as add_run does). Returns the open's or a step's error. */
typedef struct walked {
  uint32_t count;
  uint64_t seqs[16], lsns[16];
  bool signed_[16];
  uint8_t sigs[16][VS_SIGNATURE_BYTES];
} walked;

static vs_err walk(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint64_t last, walked *w) {
  memset(w, 0, sizeof *w);
  MDB_txn *txn;
  vs_err err = vs_txn_begin(s, false, &txn);
  if (err != VS_OK) return err;
  vs_chain_runs r;
  err = vs_chain_runs_open(txn, s, origin, from, last, &r);
  for (uint64_t seq = from; err == VS_OK && seq <= last && w->count < 16; seq++) {
    vs_chain_op op;
    err = vs_chain_runs_next(&r, &op);
    if (err != VS_OK) break;
    w->seqs[w->count] = op.seq;
    w->lsns[w->count] = op.lsn;
    w->signed_[w->count] = op.sig != NULL;
    if (op.sig != NULL) memcpy(w->sigs[w->count], op.sig, VS_SIGNATURE_BYTES);
    w->count++;
    if (op.sig == NULL) continue;
    err = vs_chain_runs_past_sig(&r);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK;
      break;
    }
  }
  vs_chain_runs_close(&r);
  mdb_txn_abort(txn);
  return err;
}

/* The reader's view agrees with the public reads: LSNs with vs_wal_find,
 * signatures with vs_apply_sig_get, signed seqs with vs_apply_next_signed. */
static void assert_walk_matches_store(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], const walked *w) {
  for (uint32_t i = 0; i < w->count; i++) {
    vs_op_id id;
    vs_op_id_derive(origin, w->seqs[i], &id);
    uint64_t lsn = 0;
    assert_err(vs_wal_find(s, &id, &lsn), VS_OK);
    assert_int_equal(lsn, w->lsns[i]);
    uint8_t sig[VS_SIGNATURE_BYTES];
    vs_err err = vs_apply_sig_get(s, &id, sig);
    assert_err(err, w->signed_[i] ? VS_OK : VS_ERR_NOTFOUND);
    if (w->signed_[i]) assert_memory_equal(sig, w->sigs[i], VS_SIGNATURE_BYTES);
  }
}

static void test_chain_runs_walk_signed_runs(void **state) {
  chain_fx *f = *state;
  write_three_commits(&f->a, T0_MS); /* runs [1..3], [4..5], [6] */
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 9); /* unsigned ops of another origin, in between */
  vs_write_req r = req_of("put", "x", "1");
  assert_err(vs_write(f->a.store, other, &r, T0_MS, NULL), VS_OK);
  wr(&f->a, "put", "e", "7", T0_MS + 3); /* [7] */

  walked w;
  assert_err(walk(f->a.store, f->a.id.pk, 1, 7, &w), VS_OK);
  assert_int_equal(w.count, 7);
  const bool want_signed[7] = {false, false, true, false, true, true, true};
  for (uint32_t i = 0; i < 7; i++) {
    assert_int_equal(w.seqs[i], i + 1);
    assert_int_equal(w.signed_[i], want_signed[i]);
  }
  assert_true(w.lsns[6] > w.lsns[5] + 1); /* the other origin's record sits between */
  assert_walk_matches_store(f->a.store, f->a.id.pk, &w);

  /* From the middle of a run, to a `last` inside a later one: the reader
   * stops at the last signed op up to `last`. */
  assert_err(walk(f->a.store, f->a.id.pk, 2, 5, &w), VS_OK);
  assert_int_equal(w.count, 4);
  assert_int_equal(w.seqs[0], 2);
  assert_true(w.signed_[1] && w.signed_[3] && !w.signed_[0] && !w.signed_[2]);
  assert_walk_matches_store(f->a.store, f->a.id.pk, &w);
  uint64_t next = 0;
  assert_err(vs_apply_next_signed(f->a.store, f->a.id.pk, 4, &next), VS_OK);
  assert_int_equal(next, 5);

  /* The whole of a single signed op. */
  assert_err(walk(f->a.store, f->a.id.pk, 6, 6, &w), VS_OK);
  assert_int_equal(w.count, 1);
  assert_true(w.signed_[0]);
}

static void test_chain_runs_nothing_signed_is_notfound(void **state) {
  chain_fx *f = *state;
  write_three_commits(&f->a, T0_MS);
  walked w;
  /* seq 4 is held but its run ends at 5: nothing signed in 4..4. */
  assert_err(walk(f->a.store, f->a.id.pk, 4, 4, &w), VS_ERR_NOTFOUND);
  /* Past the head. */
  assert_err(walk(f->a.store, f->a.id.pk, 7, 9, &w), VS_ERR_NOTFOUND);
  /* Another origin's ops are stored, never signed here. */
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 9);
  vs_write_req r = req_of("put", "x", "1");
  assert_err(vs_write(f->a.store, other, &r, T0_MS, NULL), VS_OK);
  assert_err(walk(f->a.store, other, 1, 1, &w), VS_ERR_NOTFOUND);
  /* A store that signs nothing. */
  node b;
  node_open_ex(&b, "chain-unsigned", 2, false);
  wr(&b, "put", "a", "1", T0_MS);
  assert_err(walk(b.store, b.id.pk, 1, 1, &w), VS_ERR_NOTFOUND);
  node_close(&b);
}

static void test_chain_runs_signature_without_op_is_corrupt(void **state) {
  chain_fx *f = *state;
  write_three_commits(&f->a, T0_MS); /* seqs 1..6 */
  MDB_txn *txn;
  assert_err(vs_txn_begin(f->a.store, true, &txn), VS_OK);
  vs_op_id id;
  vs_op_id_derive(f->a.id.pk, 8, &id);
  uint8_t sig[VS_SIGNATURE_BYTES];
  memset(sig, 0x5a, sizeof sig);
  assert_err(vs_sig_put_txn(txn, f->a.store, &id, sig), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  walked w;
  /* A signature at 8 says 7 and 8 are held; the op-id index has neither. */
  assert_err(walk(f->a.store, f->a.id.pk, 7, 8, &w), VS_ERR_CORRUPT);
  /* The held part is still read as before. */
  assert_err(walk(f->a.store, f->a.id.pk, 1, 6, &w), VS_OK);
  assert_int_equal(w.count, 6);
}

static void test_chain_meta_round_trip(void **state) {
  chain_fx *f = *state;
  MDB_txn *txn;
  uint64_t v = 1;
  assert_err(vs_txn_begin(f->a.store, true, &txn), VS_OK);
  assert_err(vs_meta_hlc_get(txn, f->a.store, &v), VS_OK);
  assert_int_equal(v, 0); /* never set */
  assert_err(vs_meta_hlc_put(txn, f->a.store, 42), VS_OK);
  assert_err(vs_meta_restore_put(txn, f->a.store, 7), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  uint64_t to = 0;
  assert_err(vs_write_restoring(f->a.store, &to), VS_OK);
  assert_int_equal(to, 7);
  assert_err(vs_txn_begin(f->a.store, true, &txn), VS_OK);
  assert_err(vs_meta_hlc_get(txn, f->a.store, &v), VS_OK);
  assert_int_equal(v, 42);
  assert_err(vs_meta_restore_put(txn, f->a.store, 0), VS_OK); /* deletes */
  assert_err(vs_meta_restore_put(txn, f->a.store, 0), VS_OK); /* absent: still fine */
  assert_err(vs_meta_restore_get(txn, f->a.store, &v), VS_OK);
  assert_int_equal(v, 0);
  assert_err(vs_txn_commit(txn), VS_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_chain_runs_walk_signed_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chain_runs_nothing_signed_is_notfound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chain_runs_signature_without_op_is_corrupt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chain_meta_round_trip, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
