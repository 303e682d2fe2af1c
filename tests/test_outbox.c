/* tests/test_outbox.c: pins include/vixsync/outbox.h.
 *
 * The delivery state machine of one entry per (operation, sink):
 * PENDING -> INFLIGHT -> DONE | PENDING (retryable failure, lease expired) |
 * FAILED (permanent failure, max_attempts), FAILED -> PENDING by hand; with
 * the default policy and a small jitter-free one. After every step the
 * counts must equal a recount through vs_outbox_get. (vs_outbox_step_held
 * and ranges-only sinks: test_outbox_held.c.) vs_outbox_backfill gives a sink opened after the writes its origin's older
 * ops, once.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "outbox_fixture.h"
#include "outbox_int.h" /* internal: the transition and count checks */

/* ---- configuration and sinks ----------------------------------------------- */

static void test_outbox_cfg_default_is_default_sink_and_policy(void **state) {
  (void)state;
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  assert_true(cfg.sink == NULL || strcmp(cfg.sink, VS_OUTBOX_SINK_DEFAULT) == 0);
  assert_int_equal(cfg.retry.base_delay_ms, 500);
  assert_int_equal(cfg.retry.factor_milli, 2000);
  assert_int_equal(cfg.retry.max_delay_ms, 60000);
  assert_int_equal(cfg.retry.max_attempts, 8);
  assert_int_equal(cfg.retry.jitter_milli, 200);
}

static void test_outbox_state_names(void **state) {
  (void)state;
  assert_string_equal(vs_outbox_state_name(VS_OUTBOX_PENDING), "PENDING");
  assert_string_equal(vs_outbox_state_name(VS_OUTBOX_INFLIGHT), "INFLIGHT");
  assert_string_equal(vs_outbox_state_name(VS_OUTBOX_DONE), "DONE");
  assert_string_equal(vs_outbox_state_name(VS_OUTBOX_FAILED), "FAILED");
  assert_string_equal(vs_outbox_state_name((vs_outbox_state)42), "?");
}

static void test_outbox_transition_table_refuses_illegal_pairs(void **state) {
  (void)state;
  enum { P = VS_OUTBOX_PENDING, I = VS_OUTBOX_INFLIGHT, D = VS_OUTBOX_DONE, F = VS_OUTBOX_FAILED };
  /* legal[from][to], from outbox.h's diagram and the late/range/void moves. */
  static const bool legal[4][4] = {
      [P] = {[I] = true, [D] = true, [F] = true},
      [I] = {[P] = true, [D] = true, [F] = true},
      [D] = {0}, /* only a purge, which deletes */
      [F] = {[P] = true, [D] = true},
  };
  for (int from = 0; from < 4; from++) {
    for (int to = 0; to < 4; to++) {
      assert_int_equal(vs_obx_transition_legal((vs_outbox_state)from, (vs_outbox_state)to), legal[from][to]);
    }
  }
  assert_false(vs_obx_transition_legal(VS_OUTBOX_DONE, VS_OUTBOX_PENDING));
  assert_false(vs_obx_transition_legal(VS_OUTBOX_PENDING, VS_OUTBOX_PENDING));
  assert_false(vs_obx_transition_legal((vs_outbox_state)42, VS_OUTBOX_PENDING));
}

static void test_outbox_counts_check_refuses_lost_entries_and_underflow(void **state) {
  (void)state;
  vs_outbox_counts c = {.pending = 2, .inflight = 1, .done = 3, .failed = 0};
  assert_true(vs_obx_counts_consistent(&c, 6, 0, 0));
  assert_true(vs_obx_counts_consistent(&c, 5, 2, 1)); /* two enqueued, one purged */
  assert_false(vs_obx_counts_consistent(&c, 7, 0, 0)); /* a move lost one */
  assert_false(vs_obx_counts_consistent(&c, 6, 1, 0));
  vs_outbox_counts wrapped = {.pending = 2, .inflight = UINT64_MAX, .done = 0, .failed = 0};
  assert_false(vs_obx_counts_consistent(&wrapped, 1, 0, 0)); /* sums to 1, but inflight went below zero */
}

static void test_outbox_open_keeps_policy(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  const vs_retry_policy *p = vs_outbox_policy(f->ob);
  assert_non_null(p);
  assert_int_equal(p->base_delay_ms, SMALL_POLICY.base_delay_ms);
  assert_int_equal(p->factor_milli, SMALL_POLICY.factor_milli);
  assert_int_equal(p->max_delay_ms, SMALL_POLICY.max_delay_ms);
  assert_int_equal(p->max_attempts, SMALL_POLICY.max_attempts);
  assert_int_equal(p->jitter_milli, SMALL_POLICY.jitter_milli);
}

static void test_outbox_open_bad_sink_name_is_inval(void **state) {
  fixture *f = *state;
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  vs_outbox *ob = NULL;
  cfg.sink = "";
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_ERR_INVAL);
  assert_null(ob);
  char name[VS_OUTBOX_SINK_NAME_BYTES_MAX + 2];
  memset(name, 'a', sizeof name - 1);
  name[sizeof name - 1] = '\0'; /* 65 bytes */
  cfg.sink = name;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_ERR_INVAL);
  assert_null(ob);
  name[VS_OUTBOX_SINK_NAME_BYTES_MAX] = '\0'; /* 64 bytes: fine */
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_OK);
  vs_outbox_close(ob);
}

/* vs_outbox_cfg is versioned (cfg.h): a cfg that did not come from
 * vs_outbox_cfg_default (cfg_bytes 0), or claims to be larger than the
 * library's struct, is refused; the default one opens. */
static void test_outbox_open_checks_cfg_bytes(void **state) {
  fixture *f = *state;
  vs_outbox_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_ERR_INVAL);
  assert_null(ob);
  vs_outbox_cfg_default(&cfg);
  assert_int_equal(cfg.cfg_bytes, sizeof cfg);
  cfg.cfg_bytes = (uint32_t)sizeof cfg + 1;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_ERR_INVAL);
  assert_null(ob);
  vs_outbox_cfg_default(&cfg);
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_OK);
  vs_outbox_close(ob);
}

static void test_outbox_open_bad_policy_is_inval(void **state) {
  fixture *f = *state;
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  vs_outbox *ob = NULL;
  cfg.retry.factor_milli = 999;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_ERR_INVAL);
  assert_null(ob);
  vs_outbox_cfg_default(&cfg);
  cfg.retry.base_delay_ms = 0;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_ERR_INVAL);
  assert_null(ob);
}

/* The store always has "default", so VS_OUTBOX_SINKS_MAX - 1 more fit. */
static void test_outbox_too_many_sinks_is_limit(void **state) {
  fixture *f = *state;
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  char name[32];
  for (uint32_t i = 0; i < VS_OUTBOX_SINKS_MAX - 1; i++) {
    snprintf(name, sizeof name, "sink%u", i);
    cfg.sink = name;
    vs_outbox *ob = NULL;
    assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_OK);
    vs_outbox_close(ob);
  }
  snprintf(name, sizeof name, "one-too-many");
  cfg.sink = name;
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_ERR_LIMIT);
  assert_null(ob);
  /* Registered sinks still open. */
  cfg.sink = "sink0";
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_OK);
  vs_outbox_close(ob);
  cfg.sink = NULL;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_OK);
  vs_outbox_close(ob);
}

/* ---- enqueue -------------------------------------------------------------------- */

static void test_outbox_write_enqueues_pending_entry(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  vs_outbox_entry e = get(f->ob, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.lsn, 1);
  assert_int_equal(e.attempts, 0);
  assert_int_equal(e.next_attempt_at_ms, T0_MS);
  assert_int_equal(e.created_at_ms, T0_MS);
  assert_string_equal(e.reason, "");
  /* version .. kind_bytes, "put", target length + "k", payload length + "op-1" */
  assert_int_equal(e.op_bytes, VS_OP_HEADER_BYTES + 3 + 4 + 1 + 4 + 4);
  assert_counts(f->ob, 1, 0, 0, 0);
  check_counts(f, f->ob);
}

static void test_outbox_enqueue_twice_is_exists(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  vs_outbox_entry before = get(f->ob, &f->ids[0]);
  assert_err(vs_outbox_enqueue(f->ob, &f->ids[0], T0_MS + 50), VS_ERR_EXISTS);
  vs_outbox_entry after = get(f->ob, &f->ids[0]);
  assert_entry_equal(&before, &after);
  assert_counts(f->ob, 1, 0, 0, 0);
}

static void test_outbox_enqueue_unknown_op_is_notfound(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 1);
  vs_op_id missing;
  vs_op_id_derive(origin, 2, &missing);
  assert_err(vs_outbox_enqueue(f->ob, &missing, T0_MS), VS_ERR_NOTFOUND);
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob, &missing, &e), VS_ERR_NOTFOUND);
  assert_counts(f->ob, 1, 0, 0, 0);
}

/* vs_outbox_sinks: every registered sink by id, "default" first, with
 * its counts; the count says how many exist even when `out` is short. */
static void test_outbox_sinks_lists_names_and_counts(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  f->ob2 = open_sink(f, "zeta-http", NULL); /* sorts after "default" by name and id */
  vs_outbox *ob3 = open_sink(f, "alpha", NULL); /* sorts first by name, last by id */
  write_ops(f, 3, T0_MS);
  vs_outbox_entry claimed[1];
  uint32_t n = 0;
  assert_err(vs_outbox_claim_ready(f->ob2, T0_MS, 1000, 1, claimed, &n), VS_OK);
  assert_int_equal(n, 1);
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t count = 0;
  assert_err(vs_outbox_sinks(f->store, sinks, VS_OUTBOX_SINKS_MAX, &count), VS_OK);
  assert_int_equal(count, 3);
  assert_string_equal(sinks[0].name, "default");
  assert_int_equal(sinks[0].id, 0);
  assert_string_equal(sinks[1].name, "zeta-http");
  assert_string_equal(sinks[2].name, "alpha");
  assert_true(sinks[1].id < sinks[2].id);
  assert_int_equal(sinks[0].counts.pending, 3);
  assert_int_equal(sinks[1].counts.pending, 2);
  assert_int_equal(sinks[1].counts.inflight, 1);
  assert_int_equal(sinks[2].counts.pending, 3);
  assert_err(vs_outbox_sinks(f->store, sinks, 1, &count), VS_OK);
  assert_int_equal(count, 3);
  assert_err(vs_outbox_sinks(f->store, NULL, 0, &count), VS_OK);
  assert_int_equal(count, 3);
  assert_err(vs_outbox_sinks(f->store, NULL, 1, &count), VS_ERR_INVAL);
  assert_err(vs_outbox_sinks(NULL, sinks, 1, &count), VS_ERR_INVAL);
  vs_outbox_close(ob3);
}

static void test_outbox_new_sink_enqueues_older_op_by_hand(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  f->ob2 = open_sink(f, "http", NULL);
  /* Written before the sink existed: no entry for it. */
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob2, &f->ids[0], &e), VS_ERR_NOTFOUND);
  assert_counts(f->ob2, 0, 0, 0, 0);
  assert_err(vs_outbox_enqueue(f->ob2, &f->ids[0], T0_MS + 10), VS_OK);
  e = get(f->ob2, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.lsn, 1);
  assert_int_equal(e.attempts, 0);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 10);
  assert_int_equal(e.created_at_ms, T0_MS + 10);
  assert_err(vs_outbox_enqueue(f->ob2, &f->ids[0], T0_MS + 20), VS_ERR_EXISTS);
  /* Written after: enqueued for both sinks by vs_write. */
  write_ops(f, 1, T0_MS + 30);
  e = get(f->ob2, &f->ids[1]);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 30);
  assert_counts(f->ob, 2, 0, 0, 0);
  assert_counts(f->ob2, 2, 0, 0, 0);
  check_counts(f, f->ob);
  check_counts(f, f->ob2);
}

static void test_outbox_sink_registration_is_durable(void **state) {
  fixture *f = *state;
  f->ob2 = open_sink(f, "http", NULL);
  vs_outbox_close(f->ob2);
  f->ob2 = NULL;
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  /* Not opened in this run: vs_write still enqueues for it. */
  write_ops(f, 1, T0_MS);
  f->ob2 = open_sink(f, "http", NULL);
  vs_outbox_entry e = get(f->ob2, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
}

/* ---- claim by id ------------------------------------------------------------------ */

static void test_outbox_claim_makes_inflight(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 2, T0_MS);
  vs_outbox_entry e = claim(f->ob, &f->ids[1], T0_MS + 5);
  assert_true(vs_op_id_equal(&e.op_id, &f->ids[1]));
  assert_int_equal(e.lsn, 2);
  assert_int_equal(e.attempts, 1);
  assert_int_equal(e.lease_until_ms, T0_MS + 5 + LEASE_MS);
  vs_outbox_entry g = get(f->ob, &f->ids[1]);
  assert_entry_equal(&e, &g);
  assert_counts(f->ob, 1, 1, 0, 0);
  check_counts(f, f->ob);
}

static void test_outbox_claim_entry_out_may_be_null(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  assert_err(vs_outbox_claim(f->ob, &f->ids[0], T0_MS, LEASE_MS, NULL), VS_OK);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_INFLIGHT);
}

static void test_outbox_claim_inflight_is_state(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  vs_outbox_entry first = claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e;
  memset(&e, 0, sizeof e);
  assert_err(vs_outbox_claim(f->ob, &f->ids[0], T0_MS + 1, LEASE_MS, &e), VS_ERR_STATE);
  assert_entry_equal(&e, &first); /* filled with the current entry */
  vs_outbox_entry g = get(f->ob, &f->ids[0]);
  assert_entry_equal(&g, &first);
  assert_counts(f->ob, 0, 1, 0, 0);
}

static void test_outbox_claim_not_ready_is_state(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry failed = fail_retry(f->ob, &f->ids[0], T0_MS + 10);
  assert_int_equal(failed.next_attempt_at_ms, T0_MS + 10 + 100);
  vs_outbox_entry e;
  assert_err(vs_outbox_claim(f->ob, &f->ids[0], T0_MS + 109, LEASE_MS, &e), VS_ERR_STATE);
  assert_entry_equal(&e, &failed);
  vs_outbox_entry g = get(f->ob, &f->ids[0]);
  assert_entry_equal(&g, &failed);
  e = claim(f->ob, &f->ids[0], T0_MS + 110); /* next_attempt_at <= now */
  assert_int_equal(e.attempts, 2);
  check_counts(f, f->ob);
}

static void test_outbox_claim_before_enqueue_time_is_state(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  assert_err(vs_outbox_claim(f->ob, &f->ids[0], T0_MS - 1, LEASE_MS, NULL), VS_ERR_STATE);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_PENDING);
}

static void test_outbox_claim_done_or_failed_is_state(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 2, T0_MS);
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS), VS_OK);
  claim(f->ob, &f->ids[1], T0_MS);
  assert_err(vs_outbox_fail(f->ob, &f->ids[1], T0_MS, false, "rejected", 0, NULL), VS_OK);
  assert_err(vs_outbox_claim(f->ob, &f->ids[0], T0_MS + 1, LEASE_MS, NULL), VS_ERR_STATE);
  assert_err(vs_outbox_claim(f->ob, &f->ids[1], T0_MS + 1, LEASE_MS, NULL), VS_ERR_STATE);
  assert_counts(f->ob, 0, 0, 1, 1);
  check_counts(f, f->ob);
}

static void test_outbox_claim_lease_0_is_inval(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  assert_err(vs_outbox_claim(f->ob, &f->ids[0], T0_MS, 0, NULL), VS_ERR_INVAL);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_PENDING);
  vs_outbox_entry out[4];
  uint32_t n = 99;
  assert_err(vs_outbox_claim_ready(f->ob, T0_MS, 0, 4, out, &n), VS_ERR_INVAL);
  assert_counts(f->ob, 1, 0, 0, 0);
}

static void test_outbox_claim_unknown_is_notfound(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 9);
  vs_op_id id;
  vs_op_id_derive(origin, 1, &id);
  assert_err(vs_outbox_claim(f->ob, &id, T0_MS, LEASE_MS, NULL), VS_ERR_NOTFOUND);
  assert_err(vs_outbox_complete(f->ob, &id, T0_MS), VS_ERR_NOTFOUND);
  assert_err(vs_outbox_fail(f->ob, &id, T0_MS, true, NULL, 0, NULL), VS_ERR_NOTFOUND);
  assert_counts(f->ob, 0, 0, 0, 0);
}

/* ---- complete -------------------------------------------------------------------------- */

static void test_outbox_complete_inflight_is_done(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + 20), VS_OK);
  vs_outbox_entry e = get(f->ob, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_DONE);
  assert_int_equal(e.attempts, 1);
  assert_int_equal(e.updated_at_ms, T0_MS + 20);
  assert_counts(f->ob, 0, 0, 1, 0);
  check_counts(f, f->ob);
}

static void test_outbox_complete_twice_is_ok_and_unchanged(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + 20), VS_OK);
  vs_outbox_entry first = get(f->ob, &f->ids[0]);
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + 40), VS_OK);
  vs_outbox_entry again = get(f->ob, &f->ids[0]);
  assert_entry_equal(&first, &again);
  assert_counts(f->ob, 0, 0, 1, 0);
  check_counts(f, f->ob);
}

static void test_outbox_complete_pending_is_done(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 2, T0_MS);
  /* Never claimed, and after a failure (a late result of the old attempt). */
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + 1), VS_OK);
  claim(f->ob, &f->ids[1], T0_MS);
  fail_retry(f->ob, &f->ids[1], T0_MS + 5);
  assert_err(vs_outbox_complete(f->ob, &f->ids[1], T0_MS + 6), VS_OK);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_DONE);
  assert_int_equal(get(f->ob, &f->ids[1]).state, VS_OUTBOX_DONE);
  assert_counts(f->ob, 0, 0, 2, 0);
  check_counts(f, f->ob);
}

static void test_outbox_complete_failed_is_done(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS + 5, false, "rejected", 0, NULL), VS_OK);
  assert_counts(f->ob, 0, 0, 0, 1);
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + 6), VS_OK);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_DONE);
  assert_counts(f->ob, 0, 0, 1, 0);
  check_counts(f, f->ob);
}

/* ---- fail ------------------------------------------------------------------------------- */

static void test_outbox_fail_retryable_backs_off(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  const vs_retry_policy *p = vs_outbox_policy(f->ob);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e = fail_retry(f->ob, &f->ids[0], T0_MS + 7);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.attempts, 1);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 7 + vs_retry_delay_ms(p, &f->ids[0], 1));
  assert_string_equal(e.reason, "timeout");
  vs_outbox_entry g = get(f->ob, &f->ids[0]);
  assert_entry_equal(&e, &g);
  check_counts(f, f->ob);

  uint64_t t = e.next_attempt_at_ms;
  e = claim(f->ob, &f->ids[0], t);
  assert_int_equal(e.attempts, 2);
  e = fail_retry(f->ob, &f->ids[0], t + 3);
  assert_int_equal(e.next_attempt_at_ms, t + 3 + vs_retry_delay_ms(p, &f->ids[0], 2));
  assert_int_equal(e.attempts, 2);
  check_counts(f, f->ob);
}

static void test_outbox_fail_small_policy_delays_are_exact(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 1, T0_MS);
  static const uint64_t want_ms[] = {100, 200, 400, 800, 1000, 1000, 1000};
  uint64_t t = T0_MS;
  for (uint32_t k = 0; k < sizeof want_ms / sizeof want_ms[0]; k++) {
    claim(f->ob, &f->ids[0], t);
    vs_outbox_entry e = fail_retry(f->ob, &f->ids[0], t);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    assert_int_equal(e.attempts, k + 1);
    assert_int_equal(e.next_attempt_at_ms - t, want_ms[k]);
    t = e.next_attempt_at_ms;
  }
}

static void test_outbox_retry_keeps_op_id(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 1, T0_MS);
  vs_outbox_entry first = claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e = fail_retry(f->ob, &f->ids[0], T0_MS + 1);
  vs_outbox_entry again = claim(f->ob, &f->ids[0], e.next_attempt_at_ms);
  assert_true(vs_op_id_equal(&again.op_id, &first.op_id));
  assert_true(vs_op_id_equal(&again.op_id, &f->ids[0]));
  assert_int_equal(again.lsn, first.lsn);
  assert_int_equal(again.created_at_ms, first.created_at_ms);
  /* A retry sends the same operation: nothing new in the WAL. */
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(f->store, &lsn), VS_OK);
  assert_int_equal(lsn, 1);
  assert_counts(f->ob, 0, 1, 0, 0);
}

static void test_outbox_fail_permanent_is_failed_with_reason(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e;
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS + 3, false, "410 gone", 0, &e), VS_OK);
  assert_int_equal(e.state, VS_OUTBOX_FAILED);
  assert_int_equal(e.attempts, 1);
  assert_string_equal(e.reason, "410 gone");
  vs_outbox_entry g = get(f->ob, &f->ids[0]);
  assert_entry_equal(&e, &g);
  assert_counts(f->ob, 0, 0, 0, 1);
  check_counts(f, f->ob);
}

static void test_outbox_fail_reason_is_cut(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 2, T0_MS);
  char reason[VS_OUTBOX_REASON_BYTES_MAX + 100];
  for (size_t i = 0; i < sizeof reason - 1; i++) reason[i] = (char)('a' + i % 26);
  reason[sizeof reason - 1] = '\0';
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e;
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS, false, reason, 0, &e), VS_OK);
  assert_int_equal(strlen(e.reason), VS_OUTBOX_REASON_BYTES_MAX);
  assert_memory_equal(e.reason, reason, VS_OUTBOX_REASON_BYTES_MAX);
  assert_string_equal(get(f->ob, &f->ids[0]).reason, e.reason);
  /* No reason at all is fine too. */
  claim(f->ob, &f->ids[1], T0_MS);
  assert_err(vs_outbox_fail(f->ob, &f->ids[1], T0_MS, false, NULL, 0, &e), VS_OK);
  assert_int_equal(e.state, VS_OUTBOX_FAILED);
}

static void test_outbox_max_attempts_fails_after_8(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  const vs_retry_policy *p = vs_outbox_policy(f->ob);
  assert_int_equal(p->max_attempts, 8);
  write_ops(f, 1, T0_MS);
  uint64_t t = T0_MS;
  for (uint32_t k = 1; k <= 8; k++) {
    vs_outbox_entry c = claim(f->ob, &f->ids[0], t);
    assert_int_equal(c.attempts, k);
    vs_outbox_entry e = fail_retry(f->ob, &f->ids[0], t + 1);
    assert_int_equal(e.attempts, k);
    if (k < 8) {
      assert_int_equal(e.state, VS_OUTBOX_PENDING);
      assert_int_equal(e.next_attempt_at_ms, t + 1 + vs_retry_delay_ms(p, &f->ids[0], k));
      t = e.next_attempt_at_ms;
    } else {
      assert_int_equal(e.state, VS_OUTBOX_FAILED);
    }
    check_counts(f, f->ob);
  }
  assert_err(vs_outbox_claim(f->ob, &f->ids[0], t + 10000000, LEASE_MS, NULL), VS_ERR_STATE);
  assert_counts(f->ob, 0, 0, 0, 1);
}

static void test_outbox_unlimited_attempts_never_fail(void **state) {
  fixture *f = *state;
  vs_retry_policy unlimited = SMALL_POLICY;
  unlimited.max_attempts = 0;
  f->ob = open_sink(f, NULL, &unlimited);
  write_ops(f, 1, T0_MS);
  uint64_t t = T0_MS;
  for (uint32_t k = 1; k <= 20; k++) {
    claim(f->ob, &f->ids[0], t);
    vs_outbox_entry e = fail_retry(f->ob, &f->ids[0], t);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    assert_int_equal(e.attempts, k);
    t = e.next_attempt_at_ms;
  }
  assert_counts(f->ob, 1, 0, 0, 0);
}

static void test_outbox_retry_after_floors_delay(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e;
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS, true, "429", 500, &e), VS_OK);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 500); /* computed delay 100 < 500 */
}

static void test_outbox_retry_after_below_delay_keeps_delay(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e;
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS, true, "429", 5, &e), VS_OK);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 100);
}

static void test_outbox_retry_after_capped_at_max_delay(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry e;
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS, true, "503", 3600000, &e), VS_OK);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + SMALL_POLICY.max_delay_ms);
}

static void test_outbox_stale_fail_is_state_and_changes_nothing(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 3, T0_MS);
  /* ids[0] PENDING (after a failure), ids[1] DONE, ids[2] FAILED. */
  claim(f->ob, &f->ids[0], T0_MS);
  fail_retry(f->ob, &f->ids[0], T0_MS);
  assert_err(vs_outbox_complete(f->ob, &f->ids[1], T0_MS), VS_OK);
  claim(f->ob, &f->ids[2], T0_MS);
  assert_err(vs_outbox_fail(f->ob, &f->ids[2], T0_MS, false, "no", 0, NULL), VS_OK);
  vs_outbox_entry before[3];
  for (uint32_t i = 0; i < 3; i++) before[i] = get(f->ob, &f->ids[i]);
  vs_outbox_counts cb = counts(f->ob);
  for (uint32_t i = 0; i < 3; i++) {
    assert_err(vs_outbox_fail(f->ob, &f->ids[i], T0_MS + 50, true, "late", 0, NULL),
               VS_ERR_STATE);
    assert_err(vs_outbox_fail(f->ob, &f->ids[i], T0_MS + 50, false, "late", 0, NULL),
               VS_ERR_STATE);
    vs_outbox_entry after = get(f->ob, &f->ids[i]);
    assert_entry_equal(&before[i], &after);
  }
  vs_outbox_counts ca = counts(f->ob);
  assert_memory_equal(&cb, &ca, sizeof cb);
  check_counts(f, f->ob);
}

/* ---- claim_ready ------------------------------------------------------------------------ */

static void test_outbox_claim_ready_orders_by_time_then_lsn(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 5, T0_MS); /* A..E = lsn 1..5, all ready at T0 */
  const vs_op_id *A = &f->ids[0], *B = &f->ids[1], *C = &f->ids[2], *D = &f->ids[3],
                 *E = &f->ids[4];
  claim(f->ob, A, T0_MS);
  fail_retry(f->ob, A, T0_MS); /* next T0+100 */
  claim(f->ob, B, T0_MS);
  fail_retry(f->ob, B, T0_MS); /* next T0+100 */
  claim(f->ob, C, T0_MS);
  fail_retry(f->ob, C, T0_MS + 50); /* next T0+150 */
  claim(f->ob, E, T0_MS);
  fail_retry(f->ob, E, T0_MS); /* next T0+100 */
  claim(f->ob, E, T0_MS + 100);
  fail_retry(f->ob, E, T0_MS + 100); /* next T0+300 */
  /* D never failed: next T0. LSN order would be A B C D E. */
  check_counts(f, f->ob);
  vs_outbox_entry out[8];
  uint32_t n = claim_ready(f->ob, T0_MS + 1000, 8, out);
  assert_int_equal(n, 5);
  const vs_op_id *want[5] = {D, A, B, C, E};
  for (uint32_t i = 0; i < 5; i++) assert_true(vs_op_id_equal(&out[i].op_id, want[i]));
  assert_int_equal(out[4].attempts, 3);
  assert_counts(f->ob, 0, 5, 0, 0);
  check_counts(f, f->ob);
}

static void test_outbox_claim_ready_takes_only_ready_up_to_max(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 3, T0_MS);
  write_ops(f, 2, T0_MS + 500); /* lsn 4, 5: not ready before T0+500 */
  vs_outbox_entry out[8];
  assert_int_equal(claim_ready(f->ob, T0_MS + 10, 2, out), 2);
  assert_true(vs_op_id_equal(&out[0].op_id, &f->ids[0]));
  assert_true(vs_op_id_equal(&out[1].op_id, &f->ids[1]));
  assert_int_equal(out[0].attempts, 1);
  assert_int_equal(claim_ready(f->ob, T0_MS + 10, 8, out), 1);
  assert_true(vs_op_id_equal(&out[0].op_id, &f->ids[2]));
  assert_int_equal(claim_ready(f->ob, T0_MS + 499, 8, out), 0);
  assert_counts(f->ob, 2, 3, 0, 0);
  assert_int_equal(claim_ready(f->ob, T0_MS + 500, 8, out), 2);
  assert_counts(f->ob, 0, 5, 0, 0);
  check_counts(f, f->ob);
}

/* With the default (jittered) policy the order is still (next attempt, LSN). */
static void test_outbox_claim_ready_order_default_policy(void **state) {
  fixture *f = *state;
  enum { N = 12 };
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, N, T0_MS);
  for (uint32_t i = 0; i < N; i++) {
    if (i % 3 == 0) continue; /* stays ready at T0 */
    claim(f->ob, &f->ids[i], T0_MS);
    fail_retry(f->ob, &f->ids[i], T0_MS + (i % 4));
  }
  uint64_t next[N], lsn[N];
  for (uint32_t i = 0; i < N; i++) {
    vs_outbox_entry e = get(f->ob, &f->ids[i]);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    next[i] = e.next_attempt_at_ms;
    lsn[i] = e.lsn;
  }
  vs_outbox_entry out[N];
  assert_int_equal(claim_ready(f->ob, T0_MS + 100000, N, out), N);
  for (uint32_t i = 0; i + 1 < N; i++) {
    uint32_t a = (uint32_t)(out[i].lsn - 1), b = (uint32_t)(out[i + 1].lsn - 1);
    assert_true(next[a] < next[b] || (next[a] == next[b] && lsn[a] < lsn[b]));
  }
  check_counts(f, f->ob);
}

/* ---- leases ------------------------------------------------------------------------------ */

static void test_outbox_lease_expiry_requeues_and_spends_attempt(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  const vs_retry_policy *p = vs_outbox_policy(f->ob);
  write_ops(f, 1, T0_MS);
  uint64_t t = T0_MS + 10;
  claim(f->ob, &f->ids[0], t); /* lease until t + 1000 */
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, t + LEASE_MS - 1, 4, out), 0);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_INFLIGHT);
  /* The lease ends: back to PENDING, the attempt is spent, the delay applies
   * (so it is not claimed again in the same call). */
  assert_int_equal(claim_ready(f->ob, t + LEASE_MS, 4, out), 0);
  vs_outbox_entry e = get(f->ob, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.attempts, 1);
  uint64_t due = t + LEASE_MS + vs_retry_delay_ms(p, &f->ids[0], 1);
  assert_int_equal(e.next_attempt_at_ms, due);
  check_counts(f, f->ob);
  assert_int_equal(claim_ready(f->ob, due - 1, 4, out), 0);
  assert_int_equal(claim_ready(f->ob, due, 4, out), 1);
  assert_true(vs_op_id_equal(&out[0].op_id, &f->ids[0]));
  assert_int_equal(out[0].attempts, 2);
  assert_int_equal(out[0].lease_until_ms, due + LEASE_MS);
  assert_counts(f->ob, 0, 1, 0, 0);
  check_counts(f, f->ob);
}

static void test_outbox_lease_expiry_at_max_attempts_fails(void **state) {
  fixture *f = *state;
  vs_retry_policy once = SMALL_POLICY;
  once.max_attempts = 1;
  f->ob = open_sink(f, NULL, &once);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, T0_MS + LEASE_MS, 4, out), 0);
  vs_outbox_entry e = get(f->ob, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_FAILED);
  assert_int_equal(e.attempts, 1);
  assert_counts(f->ob, 0, 0, 0, 1);
  check_counts(f, f->ob);
}

static void test_outbox_result_after_lease_expiry_is_stale(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, T0_MS + LEASE_MS, 4, out), 0);
  vs_outbox_entry before = get(f->ob, &f->ids[0]);
  /* The old attempt's failure arrives late: the entry is PENDING already. */
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS + LEASE_MS + 1, true, "late", 0, NULL),
             VS_ERR_STATE);
  vs_outbox_entry after = get(f->ob, &f->ids[0]);
  assert_entry_equal(&before, &after);
  /* Its success still counts. */
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + LEASE_MS + 2), VS_OK);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_DONE);
}

static void test_outbox_claim_ready_with_nothing_ready(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, T0_MS, 4, out), 0);
}

/* ---- owner-only requeue ------------------------------------------------------------------- */

static void test_outbox_requeue_inflight_needs_owner(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 2, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  vs_outbox_entry before = get(f->ob, &f->ids[0]);
  uint64_t n = 77;
  assert_false(vs_store_is_owner(f->store));
  assert_err(vs_outbox_requeue_inflight(f->ob, T0_MS + 1, &n), VS_ERR_NOT_OWNER);
  vs_outbox_entry after = get(f->ob, &f->ids[0]);
  assert_entry_equal(&before, &after);
  assert_counts(f->ob, 1, 1, 0, 0);
}

static void test_outbox_requeue_inflight_after_restart(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  write_ops(f, 3, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  claim(f->ob, &f->ids[1], T0_MS);
  assert_counts(f->ob, 1, 2, 0, 0);
  /* Restart: every handle goes, the entries stay. */
  vs_outbox_close(f->ob);
  f->ob = NULL;
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  f->ob = open_sink(f, NULL, NULL);
  assert_counts(f->ob, 1, 2, 0, 0);
  assert_err(vs_store_lock_owner(f->store), VS_OK);
  uint64_t t = T0_MS + 50; /* before the leases would have ended */
  uint64_t n = 0;
  assert_err(vs_outbox_requeue_inflight(f->ob, t, &n), VS_OK);
  assert_int_equal(n, 2);
  for (uint32_t i = 0; i < 2; i++) {
    vs_outbox_entry e = get(f->ob, &f->ids[i]);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    assert_int_equal(e.next_attempt_at_ms, t); /* ready now */
    assert_int_equal(e.attempts, 1);           /* the interrupted attempt counts */
  }
  assert_counts(f->ob, 3, 0, 0, 0);
  check_counts(f, f->ob);
  vs_outbox_entry out[4];
  assert_int_equal(claim_ready(f->ob, t, 4, out), 3);
  /* Nothing INFLIGHT left to requeue after the claims are completed. */
  for (uint32_t i = 0; i < 3; i++) assert_err(vs_outbox_complete(f->ob, &f->ids[i], t), VS_OK);
  assert_err(vs_outbox_requeue_inflight(f->ob, t, &n), VS_OK);
  assert_int_equal(n, 0);
  check_counts(f, f->ob);
}

static void test_outbox_requeue_inflight_last_attempt_fails(void **state) {
  fixture *f = *state;
  vs_retry_policy once = SMALL_POLICY;
  once.max_attempts = 1;
  f->ob = open_sink(f, NULL, &once);
  write_ops(f, 1, T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  assert_err(vs_store_lock_owner(f->store), VS_OK);
  uint64_t n = 0;
  assert_err(vs_outbox_requeue_inflight(f->ob, T0_MS + 1, &n), VS_OK);
  assert_int_equal(n, 1);
  vs_outbox_entry e = get(f->ob, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_FAILED);
  assert_int_equal(e.attempts, 1);
  assert_counts(f->ob, 0, 0, 0, 1);
}

/* ---- time going backwards ------------------------------------------------------------------ */

static void test_outbox_time_going_backwards_loses_and_repeats_nothing(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 3, 10000);
  uint32_t claims[3] = {0, 0, 0};
  vs_outbox_entry out[8];
  uint32_t n;

#define CLAIM_AT(now, want)                                                          \
  do {                                                                               \
    n = claim_ready(f->ob, (now), 8, out);                                           \
    assert_int_equal(n, (want));                                                     \
    for (uint32_t i_ = 0; i_ < n; i_++) claims[out[i_].lsn - 1]++;                   \
    check_counts(f, f->ob);                                                          \
    vs_outbox_counts c_ = counts(f->ob);                                             \
    assert_int_equal(c_.pending + c_.inflight + c_.done + c_.failed, 3);             \
  } while (0)

  n = claim_ready(f->ob, 10000, 1, out); /* A, lease until 11000 */
  assert_int_equal(n, 1);
  claims[out[0].lsn - 1]++;
  CLAIM_AT(5000, 0);  /* the clock jumps back: nothing is ready, A keeps its lease */
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_INFLIGHT);
  CLAIM_AT(10000, 2); /* B and C, not A again */
  CLAIM_AT(10500, 0);
  assert_err(vs_outbox_complete(f->ob, &f->ids[1], 10600), VS_OK);
  fail_retry(f->ob, &f->ids[2], 10600); /* C: next 10700 */
  CLAIM_AT(9000, 0);
  CLAIM_AT(11000, 1); /* A's lease ends (PENDING until 11100); C is claimed again */
  assert_int_equal(out[0].lsn, 3);
  CLAIM_AT(5000, 0);
  CLAIM_AT(11100, 1); /* A */
  assert_int_equal(out[0].lsn, 1);
#undef CLAIM_AT

  /* Each claim spent exactly one attempt, and every claim was seen once. */
  for (uint32_t i = 0; i < 3; i++) assert_int_equal(get(f->ob, &f->ids[i]).attempts, claims[i]);
  assert_int_equal(claims[0], 2);
  assert_int_equal(claims[1], 1);
  assert_int_equal(claims[2], 2);
  assert_counts(f->ob, 0, 2, 1, 0);
}

/* ---- retry_failed, purge_done ---------------------------------------------------------------- */

static void test_outbox_retry_failed_requeues_with_zero_attempts(void **state) {
  fixture *f = *state;
  vs_retry_policy twice = SMALL_POLICY;
  twice.max_attempts = 2;
  f->ob = open_sink(f, NULL, &twice);
  write_ops(f, 5, T0_MS);
  /* 0: FAILED permanent; 1: FAILED by max_attempts; 2: DONE; 3: PENDING; 4: INFLIGHT */
  claim(f->ob, &f->ids[0], T0_MS);
  assert_err(vs_outbox_fail(f->ob, &f->ids[0], T0_MS, false, "bad", 0, NULL), VS_OK);
  claim(f->ob, &f->ids[1], T0_MS);
  vs_outbox_entry e = fail_retry(f->ob, &f->ids[1], T0_MS);
  claim(f->ob, &f->ids[1], e.next_attempt_at_ms);
  e = fail_retry(f->ob, &f->ids[1], e.next_attempt_at_ms);
  assert_int_equal(e.state, VS_OUTBOX_FAILED);
  assert_err(vs_outbox_complete(f->ob, &f->ids[2], T0_MS), VS_OK);
  claim(f->ob, &f->ids[4], T0_MS);
  vs_outbox_entry before[5];
  for (uint32_t i = 0; i < 5; i++) before[i] = get(f->ob, &f->ids[i]);
  assert_counts(f->ob, 1, 1, 1, 2);

  uint64_t t = T0_MS + 5000, n = 0;
  assert_err(vs_outbox_retry_failed(f->ob, t, &n), VS_OK);
  assert_int_equal(n, 2);
  for (uint32_t i = 0; i < 2; i++) {
    e = get(f->ob, &f->ids[i]);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    assert_int_equal(e.attempts, 0);
    assert_int_equal(e.next_attempt_at_ms, t);
  }
  for (uint32_t i = 2; i < 5; i++) {
    e = get(f->ob, &f->ids[i]);
    assert_entry_equal(&before[i], &e);
  }
  assert_counts(f->ob, 3, 1, 1, 0);
  check_counts(f, f->ob);
  /* They get a full set of attempts again. */
  e = claim(f->ob, &f->ids[1], t);
  assert_int_equal(e.attempts, 1);
  e = fail_retry(f->ob, &f->ids[1], t);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_err(vs_outbox_retry_failed(f->ob, t, &n), VS_OK);
  assert_int_equal(n, 0);
}

static void test_outbox_purge_done_removes_done_only(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, NULL);
  f->ob2 = open_sink(f, "http", NULL);
  write_ops(f, 5, T0_MS);
  assert_err(vs_outbox_complete(f->ob, &f->ids[4], T0_MS), VS_OK); /* lsn 5 first */
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS), VS_OK);
  assert_err(vs_outbox_complete(f->ob, &f->ids[2], T0_MS), VS_OK);
  claim(f->ob, &f->ids[1], T0_MS);
  assert_err(vs_outbox_fail(f->ob, &f->ids[1], T0_MS, false, "bad", 0, NULL), VS_OK);
  assert_counts(f->ob, 1, 0, 3, 1);

  uint64_t n = 0;
  assert_err(vs_outbox_purge_done(f->ob, 2, &n), VS_OK); /* looks at lsn 1 and 2 only */
  assert_int_equal(n, 1);
  assert_err(vs_outbox_purge_done(f->ob, 1, &n), VS_OK); /* resumes at lsn 3 */
  assert_int_equal(n, 1);
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob, &f->ids[0], &e), VS_ERR_NOTFOUND); /* oldest LSN first */
  assert_err(vs_outbox_get(f->ob, &f->ids[2], &e), VS_ERR_NOTFOUND);
  assert_int_equal(get(f->ob, &f->ids[4]).state, VS_OUTBOX_DONE);
  assert_counts(f->ob, 1, 0, 1, 1);
  check_counts(f, f->ob);
  assert_err(vs_outbox_purge_done(f->ob, 100, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_err(vs_outbox_purge_done(f->ob, 100, &n), VS_OK);
  assert_int_equal(n, 0);
  assert_int_equal(get(f->ob, &f->ids[1]).state, VS_OUTBOX_FAILED);
  assert_int_equal(get(f->ob, &f->ids[3]).state, VS_OUTBOX_PENDING);
  assert_counts(f->ob, 1, 0, 0, 1);
  check_counts(f, f->ob);
  /* The WAL keeps the operations; the other sink keeps its entries. */
  for (uint32_t i = 0; i < 5; i++) {
    uint64_t lsn = 0;
    assert_err(vs_wal_find(f->store, &f->ids[i], &lsn), VS_OK);
    assert_int_equal(lsn, i + 1);
  }
  assert_counts(f->ob2, 5, 0, 0, 0);
  check_counts(f, f->ob2);
}

/* ---- sinks are independent ------------------------------------------------------------------- */

static void test_outbox_two_sinks_keep_independent_states(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, VS_OUTBOX_SINK_DEFAULT, &SMALL_POLICY);
  f->ob2 = open_sink(f, "http", NULL);
  write_ops(f, 1, T0_MS);
  const vs_op_id *id = &f->ids[0];
  assert_int_equal(get(f->ob, id).state, VS_OUTBOX_PENDING);
  assert_int_equal(get(f->ob2, id).state, VS_OUTBOX_PENDING);

  claim(f->ob2, id, T0_MS);
  assert_int_equal(get(f->ob, id).state, VS_OUTBOX_PENDING); /* untouched */
  assert_err(vs_outbox_complete(f->ob2, id, T0_MS + 1), VS_OK);

  claim(f->ob, id, T0_MS + 2);
  vs_outbox_entry e = fail_retry(f->ob, id, T0_MS + 3);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 3 + 100); /* the default sink's policy */
  vs_outbox_entry h = get(f->ob2, id);
  assert_int_equal(h.state, VS_OUTBOX_DONE);
  assert_int_equal(h.attempts, 1);
  assert_string_equal(h.reason, "");
  claim(f->ob, id, e.next_attempt_at_ms);
  assert_err(vs_outbox_fail(f->ob, id, e.next_attempt_at_ms, false, "no", 0, NULL), VS_OK);
  e = get(f->ob, id);
  assert_int_equal(e.state, VS_OUTBOX_FAILED);
  assert_int_equal(e.attempts, 2);
  assert_int_equal(get(f->ob2, id).state, VS_OUTBOX_DONE);
  assert_counts(f->ob, 0, 0, 0, 1);
  assert_counts(f->ob2, 0, 0, 1, 0);
  check_counts(f, f->ob);
  check_counts(f, f->ob2);
  /* Requeueing one sink's failures leaves the other alone. */
  uint64_t n = 0;
  assert_err(vs_outbox_retry_failed(f->ob, T0_MS + 9000, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(get(f->ob2, id).state, VS_OUTBOX_DONE);
  assert_err(vs_outbox_purge_done(f->ob2, 10, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(get(f->ob, id).state, VS_OUTBOX_PENDING);
}

/* ---- next_due ---------------------------------------------------------------------------------- */

static void test_outbox_next_due(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  assert_int_equal(next_due(f->ob), UINT64_MAX);
  write_ops(f, 1, T0_MS); /* A */
  assert_int_equal(next_due(f->ob), T0_MS);
  claim(f->ob, &f->ids[0], T0_MS);
  assert_int_equal(next_due(f->ob), T0_MS + LEASE_MS); /* A's lease */
  write_ops(f, 1, T0_MS + 10); /* B */
  assert_int_equal(next_due(f->ob), T0_MS + 10);
  assert_err(vs_outbox_claim(f->ob, &f->ids[1], T0_MS + 10, 5000, NULL), VS_OK);
  assert_int_equal(next_due(f->ob), T0_MS + LEASE_MS);
  fail_retry(f->ob, &f->ids[0], T0_MS + 20); /* A: next T0+120 */
  assert_int_equal(next_due(f->ob), T0_MS + 120);
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS + 30), VS_OK);
  assert_int_equal(next_due(f->ob), T0_MS + 10 + 5000); /* B's lease */
  assert_err(vs_outbox_fail(f->ob, &f->ids[1], T0_MS + 40, false, "no", 0, NULL), VS_OK);
  assert_int_equal(next_due(f->ob), UINT64_MAX); /* DONE and FAILED are never due */
}

/* A step with nothing to do (no results, no expired lease, nothing ready)
 * commits nothing: an idle node never writes (nor fsyncs) the disk; a step
 * that does something commits once. */
static void test_outbox_idle_step_commits_nothing(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 2, T0_MS);
  vs_outbox_entry claimed[2];
  vs_outbox_claim_req req = {LEASE_MS, 2, UINT64_MAX, claimed};
  uint32_t n = 0;
  assert_err(vs_outbox_step(f->ob, T0_MS, NULL, 0, NULL, &req, &n), VS_OK);
  assert_int_equal(n, 2);
  size_t before = last_txnid(f);
  for (uint32_t i = 0; i < 10; i++) {
    assert_err(vs_outbox_step(f->ob, T0_MS + 1 + i, NULL, 0, NULL, &req, &n), VS_OK);
    assert_int_equal(n, 0);
  }
  /* An unknown op's result changes nothing either. */
  vs_outbox_result unknown = {{{0}}, VS_RESULT_DONE, 1, 0, NULL, 0};
  vs_outbox_verdict v;
  assert_err(vs_outbox_step(f->ob, T0_MS + 20, &unknown, 1, &v, NULL, NULL), VS_OK);
  assert_int_equal(v, VS_VERDICT_UNKNOWN);
  assert_int_equal(last_txnid(f), before);
  /* A real result commits, once. */
  vs_outbox_result done = {f->ids[0], VS_RESULT_DONE, 1, 0, NULL, 0};
  assert_err(vs_outbox_step(f->ob, T0_MS + 30, &done, 1, &v, NULL, NULL), VS_OK);
  assert_int_equal(v, VS_VERDICT_APPLIED);
  assert_int_equal(last_txnid(f), before + 1);
  check_counts(f, f->ob);
}

/* vs_outbox_step: a RETRY or FAILED naming an older attempt than the entry's
 * current one is stale (that attempt's lease already ended and the entry was
 * sent again); a DONE for any attempt still completes it. */
static void test_outbox_step_result_for_older_attempt_is_stale(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 2, T0_MS);
  vs_outbox_entry claimed[2];
  vs_outbox_claim_req req = {LEASE_MS, 2, UINT64_MAX, claimed};
  uint32_t n = 0;
  assert_err(vs_outbox_step(f->ob, T0_MS, NULL, 0, NULL, &req, &n), VS_OK);
  assert_int_equal(n, 2);
  /* Both leases end unanswered; at the retry time both are sent again. */
  uint64_t t = T0_MS + LEASE_MS;
  assert_err(vs_outbox_step(f->ob, t, NULL, 0, NULL, NULL, NULL), VS_OK);
  t += 100;
  assert_err(vs_outbox_step(f->ob, t, NULL, 0, NULL, &req, &n), VS_OK);
  assert_int_equal(n, 2);
  assert_int_equal(get(f->ob, &f->ids[0]).attempts, 2);
  /* Attempt 1's answers arrive now. */
  vs_outbox_result late[3] = {
      {f->ids[0], VS_RESULT_RETRY, 1, 0, "late busy", 0},
      {f->ids[0], VS_RESULT_FAILED, 1, 0, "late reject", 0},
      {f->ids[1], VS_RESULT_DONE, 1, 0, NULL, 0},
  };
  vs_outbox_verdict v[3];
  assert_err(vs_outbox_step(f->ob, t + 1, late, 3, v, NULL, NULL), VS_OK);
  assert_int_equal(v[0], VS_VERDICT_STALE);
  assert_int_equal(v[1], VS_VERDICT_STALE);
  assert_int_equal(v[2], VS_VERDICT_APPLIED);
  vs_outbox_entry e = get(f->ob, &f->ids[0]);
  assert_int_equal(e.state, VS_OUTBOX_INFLIGHT);
  assert_int_equal(e.attempts, 2);
  assert_int_equal(get(f->ob, &f->ids[1]).state, VS_OUTBOX_DONE);
  /* The current attempt's answer, and an answer that names no attempt, apply. */
  vs_outbox_result now_r = {f->ids[0], VS_RESULT_RETRY, 2, 0, "busy", 0};
  assert_err(vs_outbox_step(f->ob, t + 2, &now_r, 1, v, NULL, NULL), VS_OK);
  assert_int_equal(v[0], VS_VERDICT_APPLIED);
  assert_int_equal(get(f->ob, &f->ids[0]).state, VS_OUTBOX_PENDING);
  check_counts(f, f->ob);
}

/* Backfill enqueues this origin's older ops once; a later open finds the
 * catch-up finished, even after the entries were purged. */
static void test_outbox_backfill_catches_up_once(void **state) {
  fixture *f = *state;
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 1);
  write_ops(f, 5, T0_MS);
  write_ops_as(f, 0x33, 1, T0_MS); /* not ours (f->ids[5]): skipped */
  vs_outbox_cfg oc;
  vs_outbox_cfg_default(&oc);
  oc.sink = "http";
  oc.retry = SMALL_POLICY;
  uint64_t enq = 99;
  assert_err(open_backfilled(f->store, &oc, origin, T0_MS, &f->ob, &enq), VS_OK);
  assert_int_equal(enq, 5);
  assert_int_equal(counts(f->ob).pending, 5);
  write_ops(f, 3, T0_MS); /* the sink exists now: vs_write gives them entries */
  assert_int_equal(counts(f->ob).pending, 8);
  vs_outbox_close(f->ob);
  assert_err(open_backfilled(f->store, &oc, origin, T0_MS, &f->ob, &enq), VS_OK);
  assert_int_equal(enq, 0);
  for (uint32_t i = 0; i < f->n; i++) {
    if (i != 5) assert_err(vs_outbox_complete(f->ob, &f->ids[i], T0_MS), VS_OK);
  }
  uint64_t purged = 0;
  assert_err(vs_outbox_purge_done(f->ob, 100, &purged), VS_OK);
  assert_int_equal(purged, 8);
  vs_outbox_close(f->ob);
  assert_err(open_backfilled(f->store, &oc, origin, T0_MS, &f->ob, &enq), VS_OK);
  assert_int_equal(enq, 0); /* a finished catch-up is never repeated */
  vs_outbox_counts c = counts(f->ob);
  assert_int_equal(c.pending + c.done, 0);
  vs_outbox_cfg bad;
  vs_outbox_cfg_default(&bad);
  bad.sink = "not a name";
  bad.retry = SMALL_POLICY;
  vs_outbox *ob = NULL;
  assert_err(open_backfilled(f->store, &bad, origin, T0_MS, &ob, &enq), VS_ERR_INVAL);
  assert_null(ob);
}

/* The catch-up goes in transactions of 10,000 records and resumes where it
 * stopped. */
static void test_outbox_backfill_large_log(void **state) {
  fixture *f = *state;
  enum { N = 20000, BATCH = 4000 };
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 1);
  for (uint32_t written = 0; written < N; written += BATCH) write_batch_of_1(f, BATCH, T0_MS);
  vs_outbox_cfg oc;
  vs_outbox_cfg_default(&oc);
  oc.sink = "http";
  oc.retry = SMALL_POLICY;
  uint64_t enq = 0;
  assert_err(open_backfilled(f->store, &oc, origin, T0_MS, &f->ob, &enq), VS_OK);
  assert_int_equal(enq, N);
  assert_int_equal(counts(f->ob).pending, N);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_outbox_cfg_default_is_default_sink_and_policy),
      cmocka_unit_test(test_outbox_state_names),
      cmocka_unit_test(test_outbox_transition_table_refuses_illegal_pairs),
      cmocka_unit_test(test_outbox_counts_check_refuses_lost_entries_and_underflow),
      T(test_outbox_idle_step_commits_nothing),
      T(test_outbox_step_result_for_older_attempt_is_stale),
      T(test_outbox_open_keeps_policy),
      T(test_outbox_open_bad_sink_name_is_inval),
      T(test_outbox_open_checks_cfg_bytes),
      T(test_outbox_open_bad_policy_is_inval),
      T(test_outbox_too_many_sinks_is_limit),
      T(test_outbox_write_enqueues_pending_entry),
      T(test_outbox_enqueue_twice_is_exists),
      T(test_outbox_enqueue_unknown_op_is_notfound),
      T(test_outbox_new_sink_enqueues_older_op_by_hand),
      T(test_outbox_sinks_lists_names_and_counts),
      T(test_outbox_sink_registration_is_durable),
      T(test_outbox_claim_makes_inflight),
      T(test_outbox_claim_entry_out_may_be_null),
      T(test_outbox_claim_inflight_is_state),
      T(test_outbox_claim_not_ready_is_state),
      T(test_outbox_claim_before_enqueue_time_is_state),
      T(test_outbox_claim_done_or_failed_is_state),
      T(test_outbox_claim_lease_0_is_inval),
      T(test_outbox_claim_unknown_is_notfound),
      T(test_outbox_complete_inflight_is_done),
      T(test_outbox_complete_twice_is_ok_and_unchanged),
      T(test_outbox_complete_pending_is_done),
      T(test_outbox_complete_failed_is_done),
      T(test_outbox_fail_retryable_backs_off),
      T(test_outbox_fail_small_policy_delays_are_exact),
      T(test_outbox_retry_keeps_op_id),
      T(test_outbox_fail_permanent_is_failed_with_reason),
      T(test_outbox_fail_reason_is_cut),
      T(test_outbox_max_attempts_fails_after_8),
      T(test_outbox_unlimited_attempts_never_fail),
      T(test_outbox_retry_after_floors_delay),
      T(test_outbox_retry_after_below_delay_keeps_delay),
      T(test_outbox_retry_after_capped_at_max_delay),
      T(test_outbox_stale_fail_is_state_and_changes_nothing),
      T(test_outbox_claim_ready_orders_by_time_then_lsn),
      T(test_outbox_claim_ready_takes_only_ready_up_to_max),
      T(test_outbox_claim_ready_order_default_policy),
      T(test_outbox_lease_expiry_requeues_and_spends_attempt),
      T(test_outbox_lease_expiry_at_max_attempts_fails),
      T(test_outbox_result_after_lease_expiry_is_stale),
      T(test_outbox_claim_ready_with_nothing_ready),
      T(test_outbox_requeue_inflight_needs_owner),
      T(test_outbox_requeue_inflight_after_restart),
      T(test_outbox_requeue_inflight_last_attempt_fails),
      T(test_outbox_time_going_backwards_loses_and_repeats_nothing),
      T(test_outbox_retry_failed_requeues_with_zero_attempts),
      T(test_outbox_purge_done_removes_done_only),
      T(test_outbox_two_sinks_keep_independent_states),
      T(test_outbox_next_due),
      T(test_outbox_backfill_catches_up_once),
      T(test_outbox_backfill_large_log),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
