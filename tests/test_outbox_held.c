/* tests/test_outbox_held.c: pins include/vixsync/outbox.h where deliveries
 * are known as a range: vs_outbox_step_held moves PENDING -> DONE without a
 * claim for a range of one origin's seqs, and ranges-only sinks (the mesh)
 * complete in LSN order. After every step the counts must equal a recount
 * through vs_outbox_get. The rest of the state machine is test_outbox.c. */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "outbox_fixture.h"

static void test_outbox_step_held_completes_pending_through_seq(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 5, T0_MS); /* seq 1..5 = lsn 1..5 */
  vs_outbox_entry before = get(f->ob, &f->ids[0]);
  assert_int_equal(step_held(f->ob, T0_MS + 7, 1, 3, VS_OUTBOX_CLAIM_MAX), 3);
  for (uint32_t i = 0; i < 3; i++) assert_done_held(f->ob, &f->ids[i], 0, T0_MS + 7);
  vs_outbox_entry after = get(f->ob, &f->ids[0]);
  assert_int_equal(after.lsn, before.lsn);
  assert_int_equal(after.created_at_ms, before.created_at_ms);
  assert_int_equal(after.op_bytes, before.op_bytes);
  for (uint32_t i = 3; i < 5; i++) assert_pending(f->ob, &f->ids[i], 0);
  assert_counts(f->ob, 2, 0, 3, 0);
  check_counts(f, f->ob);
  /* The same range again: the front of the ready index is seq 4 now. */
  assert_int_equal(step_held(f->ob, T0_MS + 8, 1, 3, VS_OUTBOX_CLAIM_MAX), 0);
  assert_counts(f->ob, 2, 0, 3, 0);
  /* The rest are claimed as usual, the DONE ones never. */
  vs_outbox_entry out[8];
  assert_int_equal(claim_ready(f->ob, T0_MS + 9, 8, out), 2);
  assert_true(vs_op_id_equal(&out[0].op_id, &f->ids[3]));
  assert_true(vs_op_id_equal(&out[1].op_id, &f->ids[4]));
  assert_int_equal(out[0].attempts, 1);
  assert_counts(f->ob, 0, 2, 3, 0);
  check_counts(f, f->ob);
  assert_int_equal(next_due(f->ob), T0_MS + 9 + LEASE_MS);
}

/* A range past the last write covers them all; a range of seq 0 nothing. */
static void test_outbox_step_held_range_bounds(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 3, T0_MS);
  size_t before = last_txnid(f);
  assert_int_equal(step_held(f->ob, T0_MS, 1, 0, VS_OUTBOX_CLAIM_MAX), 0);
  assert_int_equal(last_txnid(f), before); /* completed nothing, committed nothing */
  assert_counts(f->ob, 3, 0, 0, 0);
  assert_int_equal(step_held(f->ob, T0_MS, 1, VS_OP_SEQ_MAX, VS_OUTBOX_CLAIM_MAX), 3);
  assert_int_equal(last_txnid(f), before + 1);
  for (uint32_t i = 0; i < 3; i++) assert_done_held(f->ob, &f->ids[i], 0, T0_MS);
  assert_counts(f->ob, 0, 0, 3, 0);
  assert_int_equal(next_due(f->ob), UINT64_MAX);
  /* An empty outbox: nothing to do. */
  assert_int_equal(step_held(f->ob, T0_MS + 1, 1, VS_OP_SEQ_MAX, VS_OUTBOX_CLAIM_MAX), 0);
}

/* In claim order (next attempt, then LSN) the first entry of another origin
 * ends the range: the covered entries behind it stay PENDING. */
static void test_outbox_step_held_stops_at_other_origin(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops_as(f, 1, 2, T0_MS); /* lsn 1, 2: origin 1 seq 1, 2 */
  write_ops_as(f, 2, 1, T0_MS); /* lsn 3: origin 2 seq 1 */
  write_ops_as(f, 1, 2, T0_MS); /* lsn 4, 5: origin 1 seq 3, 4 */
  assert_int_equal(step_held(f->ob, T0_MS + 1, 1, 4, VS_OUTBOX_CLAIM_MAX), 2);
  assert_done_held(f->ob, &f->ids[0], 0, T0_MS + 1);
  assert_done_held(f->ob, &f->ids[1], 0, T0_MS + 1);
  for (uint32_t i = 2; i < 5; i++) assert_pending(f->ob, &f->ids[i], 0);
  assert_counts(f->ob, 3, 0, 2, 0);
  /* Another call stops at the same place: nothing, and no commit. */
  size_t before = last_txnid(f);
  assert_int_equal(step_held(f->ob, T0_MS + 2, 1, 4, VS_OUTBOX_CLAIM_MAX), 0);
  assert_int_equal(last_txnid(f), before);
  /* Origin 2's range moves the front on; then origin 1's covers the rest. */
  assert_int_equal(step_held(f->ob, T0_MS + 3, 2, 1, VS_OUTBOX_CLAIM_MAX), 1);
  assert_done_held(f->ob, &f->ids[2], 0, T0_MS + 3);
  assert_int_equal(step_held(f->ob, T0_MS + 4, 1, 4, VS_OUTBOX_CLAIM_MAX), 2);
  assert_done_held(f->ob, &f->ids[3], 0, T0_MS + 4);
  assert_done_held(f->ob, &f->ids[4], 0, T0_MS + 4);
  assert_counts(f->ob, 0, 0, 5, 0);
  check_counts(f, f->ob);
}

/* A higher seq ahead in claim order ends the range too, even when a covered
 * entry (waiting for its retry) comes after it. */
static void test_outbox_step_held_stops_at_higher_seq(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 3, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  fail_retry(f->ob, &f->ids[0], T0_MS); /* seq 1: next T0+100, behind seq 2 and 3 */
  assert_int_equal(step_held(f->ob, T0_MS + 1, 1, 2, VS_OUTBOX_CLAIM_MAX), 1);
  assert_done_held(f->ob, &f->ids[1], 0, T0_MS + 1);
  assert_pending(f->ob, &f->ids[0], 1); /* covered, but behind seq 3 */
  assert_pending(f->ob, &f->ids[2], 0);
  assert_counts(f->ob, 2, 0, 1, 0);
  /* Once seq 3 is covered the retried seq 1 is reached: DONE, its one
   * attempt kept, before its retry time. */
  assert_int_equal(step_held(f->ob, T0_MS + 2, 1, 3, VS_OUTBOX_CLAIM_MAX), 2);
  assert_done_held(f->ob, &f->ids[2], 0, T0_MS + 2);
  assert_done_held(f->ob, &f->ids[0], 1, T0_MS + 2);
  assert_counts(f->ob, 0, 0, 3, 0);
  check_counts(f, f->ob);
}

/* INFLIGHT entries are not in the ready index: the range leaves them to
 * their results and leases. */
static void test_outbox_step_held_leaves_inflight_alone(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 4, T0_MS);
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, T0_MS, 2, out), 2); /* seq 1, 2 */
  vs_outbox_entry in0 = get(f->ob, &f->ids[0]), in1 = get(f->ob, &f->ids[1]);
  assert_int_equal(step_held(f->ob, T0_MS + 10, 1, 4, VS_OUTBOX_CLAIM_MAX), 2);
  vs_outbox_entry now0 = get(f->ob, &f->ids[0]), now1 = get(f->ob, &f->ids[1]);
  assert_entry_equal(&now0, &in0);
  assert_entry_equal(&now1, &in1);
  assert_done_held(f->ob, &f->ids[2], 0, T0_MS + 10);
  assert_done_held(f->ob, &f->ids[3], 0, T0_MS + 10);
  assert_counts(f->ob, 0, 2, 2, 0);
  check_counts(f, f->ob);
  /* Seq 1 completes through its result, as before. */
  vs_outbox_result done = {f->ids[0], VS_RESULT_DONE, 1, 0, NULL, 0};
  vs_outbox_verdict v;
  assert_err(vs_outbox_step(f->ob, T0_MS + 20, &done, 1, &v, NULL, NULL), VS_OK);
  assert_int_equal(v, VS_VERDICT_APPLIED);
  assert_int_equal(get(f->ob, &f->ids[0]).attempts, 1);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_DONE);
  /* Seq 2's lease ends in a step with the range: the range goes first, so
   * the entry leaves INFLIGHT in this step and is completed by the next. */
  uint64_t t = T0_MS + LEASE_MS;
  assert_int_equal(step_held(f->ob, t, 1, 4, VS_OUTBOX_CLAIM_MAX), 0);
  vs_outbox_entry e = get(f->ob, &f->ids[1]);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.attempts, 1);
  assert_int_equal(e.next_attempt_at_ms, t + 100);
  assert_int_equal(step_held(f->ob, t + 1, 1, 4, VS_OUTBOX_CLAIM_MAX), 1);
  assert_done_held(f->ob, &f->ids[1], 1, t + 1);
  assert_counts(f->ob, 0, 0, 4, 0);
  check_counts(f, f->ob);
}

static void test_outbox_step_held_max_caps_completed(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 5, T0_MS);
  assert_int_equal(step_held(f->ob, T0_MS + 1, 1, 5, 2), 2);
  assert_done_held(f->ob, &f->ids[0], 0, T0_MS + 1);
  assert_done_held(f->ob, &f->ids[1], 0, T0_MS + 1);
  for (uint32_t i = 2; i < 5; i++) assert_pending(f->ob, &f->ids[i], 0);
  assert_counts(f->ob, 3, 0, 2, 0);
  /* max 0: nothing. */
  size_t before = last_txnid(f);
  assert_int_equal(step_held(f->ob, T0_MS + 2, 1, 5, 0), 0);
  assert_int_equal(last_txnid(f), before);
  assert_counts(f->ob, 3, 0, 2, 0);
  /* max past VS_OUTBOX_CLAIM_MAX: INVAL, nothing changes. */
  vs_outbox_held h = {held_id(1, 5), VS_OUTBOX_CLAIM_MAX + 1, 0, false};
  assert_err(vs_outbox_step_held(f->ob, T0_MS + 3, &h, NULL, 0, NULL, NULL, NULL), VS_ERR_INVAL);
  assert_int_equal(last_txnid(f), before);
  assert_counts(f->ob, 3, 0, 2, 0);
  /* VS_OUTBOX_CLAIM_MAX itself is fine: the rest. */
  assert_int_equal(step_held(f->ob, T0_MS + 4, 1, 5, VS_OUTBOX_CLAIM_MAX), 3);
  assert_counts(f->ob, 0, 0, 5, 0);
  check_counts(f, f->ob);
}

/* A bad claim request fails the whole call before anything is written:
 * completed is 0 and every entry stays PENDING. */
static void test_outbox_step_held_bad_claim_completes_nothing(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 3, T0_MS);
  vs_outbox_entry claimed[4];
  vs_outbox_claim_req bad = {0, 4, UINT64_MAX, claimed}; /* lease 0 */
  vs_outbox_held h = {held_id(1, 3), VS_OUTBOX_CLAIM_MAX, 77, true};
  uint32_t n = 0;
  assert_err(vs_outbox_step_held(f->ob, T0_MS, &h, NULL, 0, NULL, &bad, &n), VS_ERR_INVAL);
  assert_int_equal(h.completed, 0);
  for (uint32_t i = 0; i < 3; i++) assert_pending(f->ob, &f->ids[i], 0);
  assert_counts(f->ob, 3, 0, 0, 0);
}

/* held == NULL is vs_outbox_step: the same claims and the same entries. */
static void test_outbox_step_held_null_is_step(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  f->ob2 = open_sink(f, "other", &SMALL_POLICY);
  write_ops(f, 4, T0_MS);
  vs_outbox_entry a[3], b[3];
  vs_outbox_claim_req ra = {LEASE_MS, 3, UINT64_MAX, a}, rb = {LEASE_MS, 3, UINT64_MAX, b};
  uint32_t na = 0, nb = 0;
  assert_err(vs_outbox_step_held(f->ob, T0_MS + 5, NULL, NULL, 0, NULL, &ra, &na), VS_OK);
  assert_err(vs_outbox_step(f->ob2, T0_MS + 5, NULL, 0, NULL, &rb, &nb), VS_OK);
  assert_int_equal(na, 3);
  assert_int_equal(nb, 3);
  for (uint32_t i = 0; i < 3; i++) {
    assert_true(vs_op_id_equal(&a[i].op_id, &f->ids[i]));
    assert_true(vs_op_id_equal(&a[i].op_id, &b[i].op_id));
    assert_int_equal(a[i].state, VS_OUTBOX_INFLIGHT);
    assert_int_equal(a[i].attempts, b[i].attempts);
    assert_int_equal(a[i].lease_until_ms, b[i].lease_until_ms);
  }
  vs_outbox_result r = {f->ids[0], VS_RESULT_DONE, 1, 0, NULL, 0};
  vs_outbox_verdict va, vb;
  assert_err(vs_outbox_step_held(f->ob, T0_MS + 6, NULL, &r, 1, &va, NULL, NULL), VS_OK);
  assert_err(vs_outbox_step(f->ob2, T0_MS + 6, &r, 1, &vb, NULL, NULL), VS_OK);
  assert_int_equal(va, VS_VERDICT_APPLIED);
  assert_int_equal(vb, VS_VERDICT_APPLIED);
  for (uint32_t i = 0; i < 4; i++) {
    vs_outbox_entry ea = get(f->ob, &f->ids[i]), eb = get(f->ob2, &f->ids[i]);
    assert_entry_equal(&ea, &eb);
  }
  assert_counts(f->ob, 1, 2, 1, 0);
  check_counts(f, f->ob);
}

/* One sink's range completes that sink's entries only. */
static void test_outbox_step_held_touches_only_its_sink(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  f->ob2 = open_sink(f, "other", &SMALL_POLICY);
  write_ops(f, 3, T0_MS);
  assert_int_equal(step_held(f->ob2, T0_MS + 1, 1, 3, VS_OUTBOX_CLAIM_MAX), 3);
  assert_counts(f->ob2, 0, 0, 3, 0);
  assert_counts(f->ob, 3, 0, 0, 0);
  for (uint32_t i = 0; i < 3; i++) assert_pending(f->ob, &f->ids[i], 0);
  check_counts(f, f->ob);
  check_counts(f, f->ob2);
}

/* The range, results, lease expiry and claims in one call, in that order,
 * one commit. */
static void test_outbox_step_held_with_results_and_claims(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 6, T0_MS);
  vs_outbox_entry claimed[8];
  vs_outbox_claim_req req2 = {LEASE_MS, 2, UINT64_MAX, claimed};
  uint32_t n = 0;
  assert_err(vs_outbox_step(f->ob, T0_MS, NULL, 0, NULL, &req2, &n), VS_OK);
  assert_int_equal(n, 2); /* seq 1, 2 INFLIGHT */
  /* Seq 1 is delivered, seq 2 is to be retried; the range says 1..4 are
   * held; and whatever is ready is claimed. */
  vs_outbox_result rs[2] = {
      {f->ids[0], VS_RESULT_DONE, 1, 0, NULL, 0},
      {f->ids[1], VS_RESULT_RETRY, 1, 0, "busy", 0},
  };
  vs_outbox_verdict v[2];
  vs_outbox_held h = {held_id(1, 4), VS_OUTBOX_CLAIM_MAX, 0, false};
  vs_outbox_claim_req req = {LEASE_MS, 8, UINT64_MAX, claimed};
  uint64_t t = T0_MS + 10;
  size_t before = last_txnid(f);
  assert_err(vs_outbox_step_held(f->ob, t, &h, rs, 2, v, &req, &n), VS_OK);
  assert_int_equal(last_txnid(f), before + 1);
  assert_int_equal(h.completed, 2); /* seq 3, 4: 1 and 2 were INFLIGHT then */
  assert_int_equal(v[0], VS_VERDICT_APPLIED);
  assert_int_equal(v[1], VS_VERDICT_APPLIED);
  assert_int_equal(n, 2); /* seq 5, 6; seq 2 waits for its retry */
  assert_true(vs_op_id_equal(&claimed[0].op_id, &f->ids[4]));
  assert_true(vs_op_id_equal(&claimed[1].op_id, &f->ids[5]));
  vs_outbox_entry e0 = get(f->ob, &f->ids[0]);
  assert_int_equal(e0.state, VS_OUTBOX_DONE);
  assert_int_equal(e0.attempts, 1);
  vs_outbox_entry e1 = get(f->ob, &f->ids[1]);
  assert_int_equal(e1.state, VS_OUTBOX_PENDING); /* the range ran before its result */
  assert_int_equal(e1.attempts, 1);
  assert_int_equal(e1.next_attempt_at_ms, t + 100);
  assert_done_held(f->ob, &f->ids[2], 0, t);
  assert_done_held(f->ob, &f->ids[3], 0, t);
  assert_counts(f->ob, 1, 2, 3, 0);
  check_counts(f, f->ob);
  /* The next step's range reaches seq 2 before its retry time: no claim. */
  assert_err(vs_outbox_step_held(f->ob, t + 1, &h, NULL, 0, NULL, &req, &n), VS_OK);
  assert_int_equal(h.completed, 1);
  assert_int_equal(n, 0);
  assert_done_held(f->ob, &f->ids[1], 1, t + 1);
  assert_counts(f->ob, 0, 2, 4, 0);
  check_counts(f, f->ob);
}

/* More entries than one listing pass (1024) holds: the range goes on with
 * the next pass and still stops at the first entry it does not cover. */
static void test_outbox_step_held_spans_passes(void **state) {
  fixture *f = *state;
  enum { N = 1030, HELD = 1027 };
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_batch_of_1(f, N, T0_MS);
  assert_counts(f->ob, N, 0, 0, 0);
  assert_int_equal(step_held(f->ob, T0_MS + 1, 1, HELD, VS_OUTBOX_CLAIM_MAX), HELD);
  assert_counts(f->ob, N - HELD, 0, HELD, 0);
  static const uint64_t done_seqs[] = {1, 1024, 1025, HELD};
  for (uint32_t i = 0; i < sizeof done_seqs / sizeof done_seqs[0]; i++) {
    vs_op_id id = held_id(1, done_seqs[i]);
    assert_done_held(f->ob, &id, 0, T0_MS + 1);
  }
  for (uint64_t seq = HELD + 1; seq <= N; seq++) {
    vs_op_id id = held_id(1, seq);
    assert_pending(f->ob, &id, 0);
  }
  /* Capped inside the second pass. */
  assert_int_equal(step_held(f->ob, T0_MS + 2, 1, N, 2), 2);
  assert_counts(f->ob, 1, 0, N - 1, 0);
}

/* Purge walks the entries in LSN order: it takes the oldest DONE ones
 * first, steps over the others, and looks at no more than max_entries
 * entries (DONE or not); the next call resumes where it stopped. */
static void test_outbox_purge_done_spans_passes(void **state) {
  fixture *f = *state;
  enum { N = 2500 };
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_batch_of_1(f, N, T0_MS);
  /* Every seq but those divisible by 7 delivered. */
  for (uint64_t seq = 1; seq <= N; seq++) {
    if (seq % 7 == 0) continue;
    vs_op_id id = held_id(1, seq);
    assert_err(vs_outbox_complete(f->ob, &id, T0_MS), VS_OK);
  }
  uint64_t done = N - N / 7, n = 0;
  assert_counts(f->ob, N / 7, 0, done, 0);
  assert_err(vs_outbox_purge_done(f->ob, 1100, &n), VS_OK);
  assert_int_equal(n, 1100 - 1100 / 7); /* lsn 1..1100 looked at, 157 of them kept */
  vs_outbox_entry e;
  vs_op_id last = held_id(1, 1100), next = held_id(1, 1101), kept = held_id(1, 1099);
  assert_err(vs_outbox_get(f->ob, &last, &e), VS_ERR_NOTFOUND);
  assert_int_equal(get(f->ob, &next).state, VS_OUTBOX_DONE);
  assert_int_equal(get(f->ob, &kept).state, VS_OUTBOX_PENDING);
  assert_err(vs_outbox_purge_done(f->ob, 100000, &n), VS_OK);
  assert_int_equal(n, done - (1100 - 1100 / 7));
  assert_counts(f->ob, N / 7, 0, 0, 0);
}

/* A store written before DONE entries lost their index key still holds
 * (sink, DONE, lsn) keys: purging deletes them with their entries. */
static void test_outbox_purge_done_deletes_legacy_done_keys(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 3, T0_MS);
  for (uint32_t i = 0; i < 3; i++) assert_err(vs_outbox_complete(f->ob, &f->ids[i], T0_MS), VS_OK);
  MDB_txn *txn;
  assert_err(vs_txn_begin(f->store, true, &txn), VS_OK);
  for (uint64_t lsn = 1; lsn <= 2; lsn++) { /* as the old layout wrote them */
    uint8_t key[13];
    vs_put_u32be(key, 0);
    key[4] = VS_OUTBOX_DONE;
    vs_put_u64be(key + 5, lsn);
    MDB_val k = {sizeof key, key}, v = {0, NULL};
    assert_int_equal(mdb_put(txn, f->store->dbi_obx_state, &k, &v, 0), MDB_SUCCESS);
  }
  assert_err(vs_txn_commit(txn), VS_OK);
  uint64_t n = 0;
  assert_err(vs_outbox_purge_done(f->ob, 10, &n), VS_OK);
  assert_int_equal(n, 3);
  assert_counts(f->ob, 0, 0, 0, 0);
  MDB_stat st;
  assert_err(vs_txn_begin(f->store, false, &txn), VS_OK);
  assert_int_equal(mdb_stat(txn, f->store->dbi_obx_state, &st), MDB_SUCCESS);
  mdb_txn_abort(txn);
  assert_int_equal(st.ms_entries, 0);
}

/* Entries of a ranges-only sink are never due nor claimed; ranges complete
 * them in LSN order, across reopens, stopping at an entry of another origin,
 * at an entry claimed by hand, and at max (saying so). */
static void test_outbox_ranges_only_completes_in_lsn_order(void **state) {
  fixture *f = *state;
  f->ob = open_ranges(f, true);
  write_ops(f, 10, T0_MS);
  assert_counts(f->ob, 10, 0, 0, 0);
  assert_int_equal(next_due(f->ob), UINT64_MAX); /* no claim index */
  vs_outbox_entry out[16];
  assert_int_equal(claim_ready(f->ob, T0_MS + 100000, 16, out), 0);

  vs_outbox_held h = held_step(f->ob, T0_MS + 1, 1, 4, VS_OUTBOX_CLAIM_MAX);
  assert_int_equal(h.completed, 4);
  assert_false(h.more);
  for (uint32_t i = 0; i < 4; i++) assert_done_held(f->ob, &f->ids[i], 0, T0_MS + 1);
  for (uint32_t i = 4; i < 10; i++) assert_pending(f->ob, &f->ids[i], 0);
  assert_counts(f->ob, 6, 0, 4, 0);

  /* The mark survives a reopen; max stops the walk and says so. */
  vs_outbox_close(f->ob);
  f->ob = open_ranges(f, true);
  h = held_step(f->ob, T0_MS + 2, 1, 10, 2);
  assert_int_equal(h.completed, 2);
  assert_true(h.more);
  h = held_step(f->ob, T0_MS + 3, 1, 10, VS_OUTBOX_CLAIM_MAX);
  assert_int_equal(h.completed, 4);
  assert_false(h.more);
  assert_counts(f->ob, 0, 0, 10, 0);
  check_counts(f, f->ob);

  /* 11, 12 of origin 1, then one of origin 2, then 13 of origin 1. */
  write_ops(f, 2, T0_MS + 4);
  write_ops_as(f, 2, 1, T0_MS + 4);
  write_ops(f, 1, T0_MS + 4);
  h = held_step(f->ob, T0_MS + 5, 1, 13, VS_OUTBOX_CLAIM_MAX);
  assert_int_equal(h.completed, 2);
  assert_false(h.more);
  assert_pending(f->ob, &f->ids[12], 0);
  assert_pending(f->ob, &f->ids[13], 0);
  assert_int_equal(vs_outbox_complete(f->ob, &f->ids[12], T0_MS + 6), VS_OK); /* origin 2's, by hand */
  h = held_step(f->ob, T0_MS + 7, 1, 13, VS_OUTBOX_CLAIM_MAX);
  assert_int_equal(h.completed, 1); /* the DONE one is stepped over */
  assert_counts(f->ob, 0, 0, 14, 0);

  /* An entry claimed by hand stops the walk until its result. */
  write_ops(f, 3, T0_MS + 8); /* seq 14..16 */
  claim(f->ob, &f->ids[15], T0_MS + 8);
  h = held_step(f->ob, T0_MS + 9, 1, 16, VS_OUTBOX_CLAIM_MAX);
  assert_int_equal(h.completed, 1);
  assert_pending(f->ob, &f->ids[16], 0);
  assert_int_equal(vs_outbox_complete(f->ob, &f->ids[15], T0_MS + 10), VS_OK);
  h = held_step(f->ob, T0_MS + 11, 1, 16, VS_OUTBOX_CLAIM_MAX);
  assert_int_equal(h.completed, 1);
  assert_counts(f->ob, 0, 0, 17, 0);
  check_counts(f, f->ob);
}

/* A claimed sink made ranges-only keeps every entry: its claim indexes go,
 * INFLIGHT entries become PENDING (their attempt spent), DONE ones stay;
 * made claimed again, its PENDING entries are claimable. */
static void test_outbox_ranges_only_conversion(void **state) {
  fixture *f = *state;
  f->ob = open_ranges(f, false);
  write_ops(f, 6, T0_MS);
  assert_int_equal(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + 1), VS_OK);
  claim(f->ob, &f->ids[1], T0_MS + 1);
  assert_counts(f->ob, 4, 1, 1, 0);
  vs_outbox_close(f->ob);

  f->ob = open_ranges(f, true);
  assert_counts(f->ob, 5, 0, 1, 0);
  assert_pending(f->ob, &f->ids[1], 1);
  assert_int_equal(next_due(f->ob), UINT64_MAX);
  vs_outbox_entry out[16];
  assert_int_equal(claim_ready(f->ob, T0_MS + 100000, 16, out), 0);
  vs_outbox_held h = held_step(f->ob, T0_MS + 2, 1, 5, VS_OUTBOX_CLAIM_MAX);
  assert_int_equal(h.completed, 4); /* seq 2..5; 1 was DONE */
  assert_done_held(f->ob, &f->ids[1], 1, T0_MS + 2);
  write_ops(f, 2, T0_MS + 3); /* no index for these either */
  assert_counts(f->ob, 3, 0, 5, 0);
  check_counts(f, f->ob);
  vs_outbox_close(f->ob);

  f->ob = open_ranges(f, false);
  assert_int_equal(next_due(f->ob), T0_MS); /* seq 6, enqueued at T0 */
  assert_int_equal(claim_ready(f->ob, T0_MS + 100000, 16, out), 3);
  assert_true(vs_op_id_equal(&out[0].op_id, &f->ids[5]));
  assert_true(vs_op_id_equal(&out[1].op_id, &f->ids[6]));
  assert_true(vs_op_id_equal(&out[2].op_id, &f->ids[7]));
  assert_counts(f->ob, 0, 3, 5, 0);
  check_counts(f, f->ob);
  /* Reopening with the same setting converts nothing. */
  vs_outbox_close(f->ob);
  f->ob = open_ranges(f, false);
  assert_counts(f->ob, 0, 3, 5, 0);
}

static void test_outbox_step_held_is_durable(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 4, T0_MS);
  assert_int_equal(step_held(f->ob, T0_MS + 5, 1, 3, VS_OUTBOX_CLAIM_MAX), 3);
  vs_outbox_close(f->ob);
  f->ob = NULL;
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  for (uint32_t i = 0; i < 3; i++) assert_done_held(f->ob, &f->ids[i], 0, T0_MS + 5);
  assert_pending(f->ob, &f->ids[3], 0);
  assert_counts(f->ob, 1, 0, 3, 0);
  check_counts(f, f->ob);
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, T0_MS + 6, 4, out), 1);
  assert_true(vs_op_id_equal(&out[0].op_id, &f->ids[3]));
}

/* A result's LSN is a hint, checked against its op id: a right one finds
 * the entry, a wrong or unknown one falls back to the id. */
static void test_outbox_step_result_lsn_hint_is_checked(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 4, T0_MS);
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, T0_MS, 4, out), 4);
  vs_outbox_result rs[4] = {
      {f->ids[0], VS_RESULT_DONE, 1, 0, NULL, 1},          /* right */
      {f->ids[1], VS_RESULT_DONE, 1, 0, NULL, 4},          /* another entry's */
      {f->ids[2], VS_RESULT_FAILED, 1, 0, "no", 999},      /* no entry there */
      {f->ids[3], VS_RESULT_RETRY, 1, 0, "later", 0},      /* none */
  };
  vs_outbox_verdict v[4];
  assert_err(vs_outbox_step(f->ob, T0_MS + 1, rs, 4, v, NULL, NULL), VS_OK);
  for (uint32_t i = 0; i < 4; i++) assert_int_equal(v[i], VS_VERDICT_APPLIED);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_DONE);
  assert_int_equal(get(f->ob, &f->ids[1]).state, VS_OUTBOX_DONE);
  assert_int_equal(get(f->ob, &f->ids[2]).state, VS_OUTBOX_FAILED);
  assert_pending(f->ob, &f->ids[3], 1); /* not made DONE by the hint of ids[1] */
  /* An unknown id with a valid entry's LSN is still unknown. */
  vs_outbox_result unknown = {held_id(9, 1), VS_RESULT_DONE, 1, 0, NULL, 4};
  assert_err(vs_outbox_step(f->ob, T0_MS + 2, &unknown, 1, v, NULL, NULL), VS_OK);
  assert_int_equal(v[0], VS_VERDICT_UNKNOWN);
  assert_pending(f->ob, &f->ids[3], 1);
  assert_counts(f->ob, 1, 0, 2, 1);
  check_counts(f, f->ob);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_outbox_step_held_completes_pending_through_seq),
      T(test_outbox_step_held_range_bounds),
      T(test_outbox_step_held_stops_at_other_origin),
      T(test_outbox_step_held_stops_at_higher_seq),
      T(test_outbox_step_held_leaves_inflight_alone),
      T(test_outbox_step_held_max_caps_completed),
      T(test_outbox_step_held_bad_claim_completes_nothing),
      T(test_outbox_step_held_null_is_step),
      T(test_outbox_step_held_touches_only_its_sink),
      T(test_outbox_step_held_with_results_and_claims),
      T(test_outbox_step_held_spans_passes),
      T(test_outbox_purge_done_spans_passes),
      T(test_outbox_purge_done_deletes_legacy_done_keys),
      T(test_outbox_step_held_is_durable),
      T(test_outbox_step_result_lsn_hint_is_checked),
      T(test_outbox_ranges_only_completes_in_lsn_order),
      T(test_outbox_ranges_only_conversion),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
