/* tests/test_engine_results.c: pins include/vixsync/engine.h, with the
 * scripted transport of mem_transport.h and the probes of probe.h: late,
 * duplicate, stale and unknown results; offline; a busy transport;
 * ack_quorum (probes stay short for one origin's ids; results from
 * out-of-range peers or of unknown kinds are refused whole); wake times; a
 * transport's held range (completed unsent) and ids_only batches (no
 * bytes). The rest of the engine's tests are test_engine.c.
 * Time is virtual everywhere: T0_MS plus what the scripts add.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: fork, pipe, mkdtemp, nftw */

#include "engine_fixture.h"

/* ---- results: unknown, duplicate, late, stale ---------------------------- */

static void test_engine_results_late_duplicate_stale_unknown(void **state) {
  fixture *f = *state;
  write_ops(f, 4, T0_MS); /* A B C D */
  vs_mem_script lost = quiet_script(10, 3);
  lost.drop_batch_permille = 1000; /* the transport never answers: the test does */
  vs_engine_cfg cfg = small_cfg(1, 10, 1000);
  make_engine(f, &cfg, NULL, &lost);
  const vs_op_id *A = &f->ids[0], *B = &f->ids[1], *C = &f->ids[2], *D = &f->ids[3];
  vs_op_id unknown = foreign_id(3);

  uint64_t wake = tick(f, T0_MS);
  assert_int_equal(wake, T0_MS + 1000);
  assert_int_equal(counts_of(f).inflight, 4);

  /* In time: A completes; an id nobody holds is ignored. */
  push(f, VS_RESULT_DONE, A, 0);
  push(f, VS_RESULT_DONE, &unknown, 0);
  tick(f, T0_MS + 10);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.results_done, 1);
  assert_int_equal(s.results_unknown, 1);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_DONE);
  assert_err(vs_outbox_get(f->ob, &unknown, &(vs_outbox_entry){0}), VS_ERR_NOTFOUND);

  /* Duplicates for A: the entry stays DONE. */
  push(f, VS_RESULT_DONE, A, 0);
  push(f, VS_RESULT_RETRY, A, 0);
  push(f, VS_RESULT_FAILED, A, 0);
  tick(f, T0_MS + 20);
  s = stats_of(f);
  assert_int_equal(s.results_duplicate, 3);
  assert_int_equal(s.results_done, 1);
  assert_int_equal(s.results_retry + s.results_failed, 0);
  vs_outbox_entry a = entry_of(f, 0);
  assert_int_equal(a.state, VS_OUTBOX_DONE);
  assert_int_equal(a.attempts, 1);

  /* The lease ends: B, C, D go back to PENDING, their attempt spent. */
  wake = tick(f, T0_MS + 1000);
  s = stats_of(f);
  assert_int_equal(s.leases_expired, 1);
  assert_int_equal(vs_engine_inflight_batches(f->e), 0);
  for (uint32_t i = 1; i < 4; i++) {
    vs_outbox_entry e = entry_of(f, i);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    assert_int_equal(e.attempts, 1);
    assert_int_equal(e.next_attempt_at_ms, T0_MS + 1000 + 100);
  }
  assert_int_equal(wake, T0_MS + 1100);

  /* Late answers for that attempt: DONE still proves delivery, B completes;
   * RETRY and FAILED describe an attempt that is over: ignored. */
  vs_outbox_entry c_before = entry_of(f, 2), d_before = entry_of(f, 3);
  push(f, VS_RESULT_DONE, B, 0);
  push(f, VS_RESULT_RETRY, C, 0);
  push(f, VS_RESULT_FAILED, C, 0);
  push(f, VS_RESULT_FAILED, D, 0);
  push(f, VS_RESULT_DONE, &unknown, 0);
  wake = tick(f, T0_MS + 1050);
  s = stats_of(f);
  assert_int_equal(s.results_late, 1);
  assert_int_equal(s.results_stale, 3);
  assert_int_equal(s.results_unknown, 2);
  assert_int_equal(s.results_retry + s.results_failed, 0);
  assert_int_equal(s.batches_sent, 1); /* nothing was due yet */
  assert_int_equal(entry_of(f, 1).state, VS_OUTBOX_DONE);
  vs_outbox_entry c_after = entry_of(f, 2), d_after = entry_of(f, 3);
  assert_memory_equal(&c_after, &c_before, sizeof c_after);
  assert_memory_equal(&d_after, &d_before, sizeof d_after);
  assert_int_equal(wake, T0_MS + 1100);

  /* C and D go out again (attempt 2). In time, RETRY moves C on, FAILED
   * ends D; then a late DONE for D still completes it. */
  tick(f, T0_MS + 1100);
  assert_int_equal(stats_of(f).batches_sent, 2);
  assert_int_equal(entry_of(f, 2).attempts, 2);
  push(f, VS_RESULT_RETRY, C, 0);
  push(f, VS_RESULT_FAILED, D, 0);
  tick(f, T0_MS + 1120);
  s = stats_of(f);
  assert_int_equal(s.results_retry, 1);
  assert_int_equal(s.results_failed, 1);
  vs_outbox_entry c = entry_of(f, 2), d = entry_of(f, 3);
  assert_int_equal(c.state, VS_OUTBOX_PENDING);
  assert_int_equal(c.next_attempt_at_ms, T0_MS + 1120 + 200);
  assert_int_equal(d.state, VS_OUTBOX_FAILED);
  assert_string_equal(d.reason, "pushed by the test");
  push(f, VS_RESULT_DONE, D, 0);
  tick(f, T0_MS + 1130);
  s = stats_of(f);
  assert_int_equal(s.results_late, 2);
  assert_int_equal(entry_of(f, 3).state, VS_OUTBOX_DONE);
  vs_outbox_counts n = counts_of(f);
  assert_int_equal(n.done, 3);
  assert_int_equal(n.pending, 1);
  assert_int_equal(s.results_dropped, 0);
}

static void test_engine_results_buffer_is_bounded(void **state) {
  fixture *f = *state;
  vs_mem_script script = quiet_script(10, 4);
  make_engine(f, NULL, NULL, &script);
  uint32_t n = VS_ENGINE_RESULTS_MAX + 5;
  vs_result *r = calloc(n, sizeof *r);
  assert_non_null(r);
  for (uint32_t i = 0; i < n; i++) {
    r[i].kind = VS_RESULT_DONE;
    r[i].op_id = foreign_id(4);
    r[i].op_id.bytes[0] = (uint8_t)i;
    r[i].op_id.bytes[1] = (uint8_t)(i >> 8);
    r[i].op_id.bytes[2] = (uint8_t)(i >> 16);
  }
  assert_err(vs_engine_on_results(f->e, r, n), VS_ERR_LIMIT);
  free(r);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.results_dropped, 5);
  assert_int_equal(tick(f, T0_MS), NEVER);
  s = stats_of(f);
  assert_int_equal(s.results_unknown, VS_ENGINE_RESULTS_MAX);
  /* Applied and gone: the buffer takes results again. */
  vs_op_id one = foreign_id(5);
  push(f, VS_RESULT_DONE, &one, 0);
  tick(f, T0_MS + 1);
  assert_int_equal(stats_of(f).results_unknown, VS_ENGINE_RESULTS_MAX + 1);
}

/* A transport that hands over `n` results in one emit, then returns what
 * emit said, or `own_err` (its own failure) when n is 0. */
typedef struct flood_tr {
  vs_result *r;
  uint32_t n;
  vs_err own_err;
} flood_tr;

static vs_err flood_send(void *ctx, const vs_send_batch *b, uint64_t now_ms) {
  (void)ctx, (void)b, (void)now_ms;
  return VS_OK;
}

static vs_err flood_poll(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx) {
  (void)now_ms;
  flood_tr *t = ctx;
  if (t->n == 0) return t->own_err;
  uint32_t n = t->n;
  t->n = 0;
  return emit(emit_ctx, t->r, n);
}

/* The buffer refusing a transport's results is VS_ERR_LIMIT (an in-memory
 * cap, not the store's map: not VS_ERR_FULL) and costs the tick nothing:
 * the excess is a lost reply. A transport's own failure still fails it. */
static void test_engine_results_over_cap_from_poll_are_lost_replies(void **state) {
  fixture *f = *state;
  flood_tr ft = {calloc(VS_ENGINE_RESULTS_MAX + 3, sizeof(vs_result)), VS_ENGINE_RESULTS_MAX + 3, VS_OK};
  assert_non_null(ft.r);
  for (uint32_t i = 0; i < ft.n; i++) {
    ft.r[i].kind = VS_RESULT_DONE;
    ft.r[i].op_id = foreign_id(6);
    ft.r[i].op_id.bytes[0] = (uint8_t)i;
    ft.r[i].op_id.bytes[1] = (uint8_t)(i >> 8);
    ft.r[i].op_id.bytes[2] = (uint8_t)(i >> 16);
  }
  vs_transport tr = {&ft, flood_send, flood_poll, NULL, false, NULL, false};
  vs_probe always = vs_probe_always();
  assert_err(vs_engine_new(NULL, f->ob, &always, &tr, &f->e), VS_OK);
  assert_int_equal(tick(f, T0_MS), NEVER);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.results_dropped, 3);
  assert_int_equal(s.results_unknown, VS_ENGINE_RESULTS_MAX);
  free(ft.r);
  ft.own_err = VS_ERR_LIMIT; /* the transport's own limit, no result dropped */
  uint64_t wake = 0;
  assert_err(vs_engine_tick(f->e, T0_MS + 1, &wake), VS_ERR_LIMIT);
  assert_int_equal(stats_of(f).results_dropped, 3);
}

/* ---- offline, busy, quorum, wake ----------------------------------------- */

typedef struct batch_counter {
  uint64_t sends, ops;
} batch_counter;

static void batch_count_hook(void *ctx, const vs_send_batch *b, uint64_t now_ms) {
  (void)now_ms;
  batch_counter *c = ctx;
  c->sends++;
  c->ops += b->op_count;
}

static void test_engine_offline_claims_nothing_and_spends_nothing(void **state) {
  fixture *f = *state;
  bool online = false;
  vs_probe probe = vs_probe_flag(&online);
  vs_mem_script script = quiet_script(10, 5);
  vs_engine_cfg cfg = small_cfg(2, 4, 1000);
  cfg.offline_recheck_ms = 500;
  make_engine(f, &cfg, &probe, &script);
  batch_counter sent = {0, 0};
  vs_mem_transport_on_send(f->mt, batch_count_hook, &sent);
  write_ops(f, 10, T0_MS);
  uint64_t now = T0_MS;
  for (uint32_t i = 0; i < 20; i++) {
    uint64_t wake = tick(f, now);
    assert_int_equal(wake, now + 500); /* asks the probe again, nothing else to do */
    now = wake;
    if (i == 10) write_ops(f, 3, now); /* writes go on while offline */
  }
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.offline_ticks, 20);
  assert_int_equal(s.batches_sent + s.ops_sent + s.busy, 0);
  assert_int_equal(sent.sends, 0);
  assert_int_equal(vs_engine_inflight_batches(f->e), 0);
  vs_outbox_counts c = counts_of(f);
  assert_int_equal(c.pending, 13);
  for (uint32_t i = 0; i < f->n; i++) {
    vs_outbox_entry e = entry_of(f, i);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    assert_int_equal(e.attempts, 0);
  }

  online = true;
  drive(f, &now, 100, now + 10000);
  c = counts_of(f);
  assert_int_equal(c.done, 13);
  for (uint32_t i = 0; i < f->n; i++) {
    assert_int_equal(entry_of(f, i).attempts, 1);
    assert_int_equal(vs_mem_transport_applied(f->mt, &f->ids[i]), 1);
  }
  assert_int_equal(sent.ops, 13);
  assert_int_equal(stats_of(f).offline_ticks, 20);
}

static void test_engine_busy_transport_gives_entries_back(void **state) {
  fixture *f = *state;
  vs_mem_script busy = quiet_script(10, 6);
  busy.busy_permille = 1000;
  vs_engine_cfg cfg = small_cfg(2, 4, 1000);
  make_engine(f, &cfg, NULL, &busy);
  batch_counter offered = {0, 0};
  vs_mem_transport_on_send(f->mt, batch_count_hook, &offered);
  write_ops(f, 6, T0_MS);
  uint64_t now = T0_MS;
  for (uint32_t i = 0; i < 10; i++) {
    uint64_t wake = tick(f, now);
    assert_true(wake > now && wake <= now + 1000); /* tries again soon, not at a retry delay */
    now = wake;
  }
  vs_engine_stats s = stats_of(f);
  vs_mem_stats m = mem_stats_of(f);
  assert_int_equal(s.busy, 10); /* one refusal per tick stops the claims of that tick */
  assert_int_equal(m.busy, 10);
  assert_int_equal(offered.sends, 10);
  assert_int_equal(s.batches_sent + s.ops_sent, 0);
  assert_int_equal(vs_engine_inflight_batches(f->e), 0);
  assert_int_equal(counts_of(f).pending, 6);
  for (uint32_t i = 0; i < f->n; i++) {
    vs_outbox_entry e = entry_of(f, i);
    assert_int_equal(e.state, VS_OUTBOX_PENDING);
    assert_int_equal(e.attempts, 0);
    assert_true(e.next_attempt_at_ms <= now);
    assert_false(vs_mem_transport_holds(f->mt, &f->ids[i]));
  }

  vs_mem_script open = quiet_script(10, 6);
  assert_err(vs_mem_transport_set_script(f->mt, &open), VS_OK);
  drive(f, &now, 100, now + 10000);
  assert_int_equal(counts_of(f).done, 6);
  for (uint32_t i = 0; i < f->n; i++) {
    assert_int_equal(entry_of(f, i).attempts, 1);
    assert_int_equal(vs_mem_transport_applied(f->mt, &f->ids[i]), 1);
  }
  s = stats_of(f);
  assert_int_equal(s.batches_sent, 2);
  assert_int_equal(s.busy, 10);
}

static void test_engine_ack_quorum_counts_distinct_peers(void **state) {
  fixture *f = *state;
  write_ops(f, 2, T0_MS);
  vs_mem_script lost = quiet_script(10, 7);
  lost.drop_batch_permille = 1000;
  vs_engine_cfg cfg = small_cfg(1, 10, 5000);
  cfg.ack_quorum = 2;
  make_engine(f, &cfg, NULL, &lost);
  const vs_op_id *A = &f->ids[0], *B = &f->ids[1];
  tick(f, T0_MS);
  assert_int_equal(counts_of(f).inflight, 2);

  push(f, VS_RESULT_DONE, A, 0);
  push(f, VS_RESULT_DONE, A, 0);
  tick(f, T0_MS + 10);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_INFLIGHT); /* one peer, twice */
  assert_int_equal(s.results_done, 0);
  assert_int_equal(s.results_quorum_wait, 2);

  push(f, VS_RESULT_DONE, A, 1);
  push(f, VS_RESULT_DONE, B, 1);
  tick(f, T0_MS + 20);
  s = stats_of(f);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_DONE); /* peers 0 and 1 */
  assert_int_equal(entry_of(f, 1).state, VS_OUTBOX_INFLIGHT);
  assert_int_equal(s.results_done, 1);
  assert_int_equal(s.results_quorum_wait, 3);

  push(f, VS_RESULT_DONE, B, 63);
  push(f, VS_RESULT_DONE, A, 2); /* a third peer for A: already DONE */
  tick(f, T0_MS + 30);
  s = stats_of(f);
  assert_int_equal(entry_of(f, 1).state, VS_OUTBOX_DONE);
  assert_int_equal(s.results_done, 2);
  assert_int_equal(s.results_duplicate, 1);
  assert_int_equal(counts_of(f).done, 2);
}

/* Issue 14: the quorum table took its start slot from the first bytes of
 * the id, which are the origin tag, so every op of one origin probed from
 * the same slot: O(n) per DONE, about 20 million probes here. Hashing the
 * whole id keeps it near one probe per DONE. The count is deterministic
 * (ids derived from a fixed origin, no clock), so it can be asserted. */
#define QUORUM_OPS 10000u
static void test_engine_quorum_probes_stay_short_for_one_origin(void **state) {
  fixture *f = *state;
  write_ops(f, QUORUM_OPS, T0_MS);
  vs_mem_script lost = quiet_script(10, 11);
  lost.drop_batch_permille = 1000; /* only the test's results come back */
  vs_engine_cfg cfg = small_cfg(1, QUORUM_OPS, 60000);
  cfg.batch_bytes_max = 64 * MIB;
  cfg.ack_quorum = 2;
  make_engine(f, &cfg, NULL, &lost);
  tick(f, T0_MS);
  assert_int_equal(counts_of(f).inflight, QUORUM_OPS);

  vs_result r[2];
  memset(r, 0, sizeof r);
  r[1].peer = 1;
  for (uint32_t i = 0; i < QUORUM_OPS; i++) {
    r[0].op_id = r[1].op_id = f->ids[i];
    assert_err(vs_engine_on_results(f->e, r, 2), VS_OK);
  }
  tick(f, T0_MS + 10);
  vs_engine_stats s = stats_of(f);
  /* 2 lookups per op in a table at most half full: linear probing expects
   * under 2.5 probes per lookup there; 3 leaves room, O(n) is ~1000x more. */
  print_message("quorum probes for %u DONE of one origin: %llu\n", 2u * QUORUM_OPS,
                (unsigned long long)s.quorum_probes);
  assert_true(s.quorum_probes >= 2ull * QUORUM_OPS);
  assert_true(s.quorum_probes <= 3ull * 2ull * QUORUM_OPS);
  /* Every op reached its quorum: the table is cleared (when half full)
   * only before a new id, never between an op's first and second DONE. */
  assert_int_equal(s.results_quorum_wait, QUORUM_OPS);
  assert_int_equal(s.results_done, QUORUM_OPS);
  assert_int_equal(counts_of(f).done, QUORUM_OPS);
}

/* Issue 14: on_results folded `peer % 64`, so peer 65 counted as peer 1
 * toward ack_quorum. Now an invalid result refuses the whole call before
 * anything is buffered, and is counted. */
static void test_engine_on_results_rejects_bad_peer_and_kind(void **state) {
  fixture *f = *state;
  write_ops(f, 3, T0_MS);
  vs_mem_script lost = quiet_script(10, 12);
  lost.drop_batch_permille = 1000;
  vs_engine_cfg cfg = small_cfg(1, 10, 5000);
  cfg.ack_quorum = 2;
  make_engine(f, &cfg, NULL, &lost);
  const vs_op_id *A = &f->ids[0], *B = &f->ids[1];
  tick(f, T0_MS);
  assert_int_equal(counts_of(f).inflight, 3);

  push(f, VS_RESULT_DONE, A, 1);
  vs_result bad;
  memset(&bad, 0, sizeof bad);
  bad.kind = VS_RESULT_DONE;
  bad.op_id = *A;
  bad.peer = VS_PEERS_MAX + 1; /* would fold onto peer 1 ... */
  assert_err(vs_engine_on_results(f->e, &bad, 1), VS_ERR_INVAL);
  bad.peer = VS_PEERS_MAX; /* ... or onto peer 0: with peer 1, a quorum */
  assert_err(vs_engine_on_results(f->e, &bad, 1), VS_ERR_INVAL);
  bad.peer = UINT32_MAX;
  assert_err(vs_engine_on_results(f->e, &bad, 1), VS_ERR_INVAL);
  /* A valid result first and a bad one after: neither is kept. */
  vs_result mixed[2];
  memset(mixed, 0, sizeof mixed);
  mixed[0].kind = VS_RESULT_DONE;
  mixed[0].op_id = *B;
  mixed[0].peer = 2;
  mixed[1] = mixed[0];
  mixed[1].peer = VS_PEERS_MAX + 3;
  assert_err(vs_engine_on_results(f->e, mixed, 2), VS_ERR_INVAL);
  /* An unknown kind, for a valid peer. */
  mixed[1].peer = 3;
  mixed[1].kind = (vs_result_kind)3;
  assert_err(vs_engine_on_results(f->e, mixed, 2), VS_ERR_INVAL);
  tick(f, T0_MS + 10);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.results_invalid, 3 + 2 + 2);
  assert_int_equal(s.results_quorum_wait, 1); /* only A's peer 1 was buffered */
  assert_int_equal(s.results_done + s.results_retry + s.results_failed, 0);
  assert_int_equal(s.results_late + s.results_duplicate + s.results_stale + s.results_unknown, 0);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_INFLIGHT);
  assert_int_equal(entry_of(f, 1).state, VS_OUTBOX_INFLIGHT);
  assert_int_equal(counts_of(f).inflight, 3);

  /* The highest valid peer counts as itself. */
  push(f, VS_RESULT_DONE, A, VS_PEERS_MAX - 1);
  tick(f, T0_MS + 20);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_DONE);
  assert_int_equal(stats_of(f).results_done, 1);
}

/* With ack_quorum 1 the peer is not counted, but it is still checked: a
 * result from no valid peer must not complete anything. */
static void test_engine_on_results_bad_peer_completes_nothing_at_quorum_one(void **state) {
  fixture *f = *state;
  write_ops(f, 1, T0_MS);
  vs_mem_script lost = quiet_script(10, 13);
  lost.drop_batch_permille = 1000;
  vs_engine_cfg cfg = small_cfg(1, 10, 5000);
  make_engine(f, &cfg, NULL, &lost);
  tick(f, T0_MS);
  vs_result bad;
  memset(&bad, 0, sizeof bad);
  bad.kind = VS_RESULT_DONE;
  bad.op_id = f->ids[0];
  bad.peer = VS_PEERS_MAX;
  assert_err(vs_engine_on_results(f->e, &bad, 1), VS_ERR_INVAL);
  assert_err(vs_engine_on_results(NULL, &bad, 1), VS_ERR_INVAL);
  assert_err(vs_engine_on_results(f->e, NULL, 1), VS_ERR_INVAL);
  assert_err(vs_engine_on_results(f->e, NULL, 0), VS_OK);
  tick(f, T0_MS + 10);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_INFLIGHT);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.results_invalid, 1);
  assert_int_equal(s.results_done, 0);
  push(f, VS_RESULT_DONE, &f->ids[0], 0);
  tick(f, T0_MS + 20);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_DONE);
  assert_int_equal(stats_of(f).quorum_probes, 0); /* no table at quorum 1 */
}

static void test_engine_wake_times(void **state) {
  fixture *f = *state;
  vs_mem_script script = quiet_script(25, 8);
  vs_engine_cfg cfg = small_cfg(1, 10, 1000);
  make_engine(f, &cfg, NULL, &script);

  /* Nothing to do. */
  assert_int_equal(tick(f, T0_MS), NEVER);
  assert_int_equal(tick(f, T0_MS + 5), NEVER);

  /* A pending retry: the wake is its next attempt. */
  write_ops(f, 1, T0_MS + 10);
  assert_err(vs_mem_transport_fail_times(f->mt, &f->ids[0], 1), VS_OK);
  uint64_t wake = tick(f, T0_MS + 10);
  vs_outbox_entry e = entry_of(f, 0);
  assert_int_equal(e.state, VS_OUTBOX_INFLIGHT);
  assert_true(wake <= e.lease_until_ms);
  assert_int_equal(wake, T0_MS + 10 + 25); /* the answer is due before the lease ends */
  wake = tick(f, wake);
  e = entry_of(f, 0);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 35 + 100);
  assert_int_equal(wake, e.next_attempt_at_ms);
  assert_int_equal(tick(f, T0_MS + 100), e.next_attempt_at_ms); /* an early tick changes nothing */
  wake = tick(f, e.next_attempt_at_ms);
  assert_int_equal(wake, T0_MS + 135 + 25);
  assert_int_equal(tick(f, wake), NEVER);
  assert_int_equal(entry_of(f, 0).state, VS_OUTBOX_DONE);

  /* A batch in flight whose answers are lost: the wake is no later than
   * its lease end, and there the attempt is retried. */
  vs_mem_script mute = quiet_script(25, 8);
  mute.drop_ack_permille = 1000;
  assert_err(vs_mem_transport_set_script(f->mt, &mute), VS_OK);
  write_ops(f, 2, T0_MS + 200);
  wake = tick(f, T0_MS + 200);
  e = entry_of(f, 1);
  assert_int_equal(e.state, VS_OUTBOX_INFLIGHT);
  assert_int_equal(e.lease_until_ms, T0_MS + 1200);
  assert_true(wake > T0_MS + 200 && wake <= e.lease_until_ms);
  uint64_t now = wake;
  for (uint32_t i = 0; i < 10 && now < e.lease_until_ms; i++) {
    wake = tick(f, now);
    assert_true(wake <= e.lease_until_ms);
    now = wake;
  }
  assert_int_equal(now, e.lease_until_ms);
  wake = tick(f, now);
  assert_int_equal(stats_of(f).leases_expired, 1);
  vs_outbox_entry e1 = entry_of(f, 1), e2 = entry_of(f, 2);
  assert_int_equal(e1.state, VS_OUTBOX_PENDING);
  assert_int_equal(e1.attempts, 1);
  assert_int_equal(wake, e1.next_attempt_at_ms < e2.next_attempt_at_ms ? e1.next_attempt_at_ms : e2.next_attempt_at_ms);
  assert_int_equal(e1.next_attempt_at_ms, T0_MS + 1200 + 100);
}

/* ---- held_through and ids_only ------------------------------------------- */

#define REC_OPS_MAX 64u

/* A transport around the mem transport that reports a held range and
 * records every op it is sent. Recorded, not asserted: it runs inside
 * vs_engine_tick, which must not be left by a longjmp. */
typedef struct rec_transport {
  vs_transport inner;
  bool has_held;
  vs_op_id held;
  uint32_t held_calls;
  uint32_t sends;
  uint32_t ops; /* recorded ops, all sends together */
  vs_send_op sent[REC_OPS_MAX]; /* encoded: the pointer as seen, never read */
  uint64_t batch_bytes; /* sum of the batches' `bytes` */
  uint64_t overflow;    /* ops past REC_OPS_MAX */
} rec_transport;

static vs_err rec_send(void *ctx, const vs_send_batch *b, uint64_t now_ms) {
  rec_transport *t = ctx;
  t->sends++;
  t->batch_bytes += b->bytes;
  for (uint32_t i = 0; i < b->op_count; i++) {
    if (t->ops < REC_OPS_MAX) t->sent[t->ops++] = b->ops[i];
    else t->overflow++;
  }
  return t->inner.send(t->inner.ctx, b, now_ms);
}

static vs_err rec_poll(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx) {
  rec_transport *t = ctx;
  return t->inner.poll(t->inner.ctx, now_ms, emit, emit_ctx);
}

static uint64_t rec_next_wake(void *ctx, uint64_t now_ms) {
  rec_transport *t = ctx;
  return t->inner.next_wake_ms(t->inner.ctx, now_ms);
}

static bool rec_held(void *ctx, vs_op_id *id_out) {
  rec_transport *t = ctx;
  t->held_calls++;
  if (t->has_held) *id_out = t->held;
  return t->has_held;
}

/* An engine over a rec_transport around a new mem transport (in f->mt). */
static void make_rec_engine(fixture *f, const vs_engine_cfg *cfg, rec_transport *rt, bool ids_only) {
  vs_mem_script script = quiet_script(10, 21);
  assert_err(vs_mem_transport_new(&script, &f->mt), VS_OK);
  memset(rt, 0, sizeof *rt);
  rt->inner = vs_mem_transport_iface(f->mt);
  vs_transport tr = {rt, rec_send, rec_poll, rec_next_wake, ids_only, rec_held, false};
  vs_probe always = vs_probe_always();
  assert_err(vs_engine_new(cfg, f->ob, &always, &tr, &f->e), VS_OK);
}

/* How many times op `index` was sent through `rt`. */
static uint32_t times_sent(const rec_transport *rt, const fixture *f, uint32_t index) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < rt->ops; i++) n += vs_op_id_equal(&rt->sent[i].op_id, &f->ids[index]) ? 1u : 0u;
  return n;
}

/* Ops in the held range are completed without a claim or a send; the rest
 * go out as usual; the range is applied again when it grows. */
static void test_engine_held_through_completes_without_sending(void **state) {
  fixture *f = *state;
  rec_transport rt;
  vs_engine_cfg cfg = small_cfg(1, 3, 1000);
  make_rec_engine(f, &cfg, &rt, false);
  write_ops(f, 8, T0_MS);
  tick(f, T0_MS); /* no range yet: seq 1..3 go out, the one worker is busy */
  assert_int_equal(rt.ops, 3);
  assert_true(rt.held_calls > 0);
  assert_int_equal(stats_of(f).done_held, 0);

  rt.has_held = true;
  rt.held = f->ids[5]; /* seq 6 */
  tick(f, T0_MS + 1); /* no answers yet: only the range moves entries */
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.done_held, 3);
  assert_int_equal(s.batches_sent, 1);
  assert_int_equal(s.ops_sent, 3);
  for (uint32_t i = 0; i < 3; i++) assert_int_equal(entry_of(f, i).state, VS_OUTBOX_INFLIGHT);
  for (uint32_t i = 3; i < 6; i++) {
    vs_outbox_entry e = entry_of(f, i);
    assert_int_equal(e.state, VS_OUTBOX_DONE);
    assert_int_equal(e.attempts, 0);
  }
  for (uint32_t i = 6; i < 8; i++) assert_int_equal(entry_of(f, i).state, VS_OUTBOX_PENDING);

  uint64_t now = T0_MS + 1;
  drive(f, &now, 100, now + 10000);
  vs_outbox_counts c = counts_of(f);
  assert_int_equal(c.done, 8);
  assert_int_equal(c.pending + c.inflight + c.failed, 0);
  s = stats_of(f);
  assert_int_equal(s.done_held, 3);
  assert_int_equal(s.batches_sent, 2);
  assert_int_equal(s.ops_sent, 5);
  assert_int_equal(rt.ops, 5);
  assert_int_equal(rt.overflow, 0);
  for (uint32_t i = 0; i < 8; i++) {
    bool held = i >= 3 && i < 6;
    assert_int_equal(times_sent(&rt, f, i), held ? 0 : 1);
    assert_int_equal(vs_mem_transport_applied(f->mt, &f->ids[i]), held ? 0 : 1);
    assert_int_equal(entry_of(f, i).attempts, held ? 0 : 1);
  }

  /* The range grows over new writes: seq 9, 10 are held, 11, 12 sent. */
  write_ops(f, 4, now);
  rt.held = f->ids[9];
  tick(f, now);
  s = stats_of(f);
  assert_int_equal(s.done_held, 5);
  assert_int_equal(s.batches_sent, 3);
  assert_int_equal(s.ops_sent, 7);
  drive(f, &now, 100, now + 10000);
  assert_int_equal(counts_of(f).done, 12);
  for (uint32_t i = 8; i < 12; i++) {
    bool held = i < 10;
    assert_int_equal(times_sent(&rt, f, i), held ? 0 : 1);
    assert_int_equal(entry_of(f, i).attempts, held ? 0 : 1);
  }
  assert_int_equal(stats_of(f).done_held, 5);
}

/* A range of another origin covers none of these ops: all are sent. */
static void test_engine_held_through_other_origin_completes_nothing(void **state) {
  fixture *f = *state;
  rec_transport rt;
  vs_engine_cfg cfg = small_cfg(1, 10, 1000);
  make_rec_engine(f, &cfg, &rt, false);
  write_ops(f, 4, T0_MS);
  rt.has_held = true;
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 8);
  vs_op_id_derive(other, 100, &rt.held);
  uint64_t now = T0_MS;
  drive(f, &now, 100, now + 10000);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.done_held, 0);
  assert_int_equal(s.ops_sent, 4);
  assert_int_equal(counts_of(f).done, 4);
  for (uint32_t i = 0; i < 4; i++) {
    assert_int_equal(times_sent(&rt, f, i), 1);
    assert_int_equal(entry_of(f, i).attempts, 1);
  }
}

/* A held_only transport (the mesh): nothing is ever claimed, sent or
 * leased; entries wait PENDING, spending no attempt, until a range covers
 * them; the engine asks for no tick of its own while nothing is covered. */
static void test_engine_held_only_claims_nothing(void **state) {
  fixture *f = *state;
  rec_transport rt;
  memset(&rt, 0, sizeof rt);
  vs_engine_cfg cfg = small_cfg(2, 3, 1000);
  vs_transport tr = {&rt, NULL, NULL, NULL, false, rec_held, true};
  vs_probe always = vs_probe_always();
  assert_err(vs_engine_new(&cfg, f->ob, &always, &tr, &f->e), VS_OK);
  write_ops(f, 8, T0_MS);
  uint64_t wake = 0;
  assert_err(vs_engine_tick(f->e, T0_MS, &wake), VS_OK);
  assert_int_equal(wake, UINT64_MAX); /* fresh entries are not "due" for it */
  assert_int_equal(counts_of(f).pending, 8);
  assert_int_equal(vs_engine_inflight_batches(f->e), 0);

  rt.has_held = true;
  rt.held = f->ids[4]; /* seq 5 */
  assert_err(vs_engine_tick(f->e, T0_MS + 1, &wake), VS_OK);
  assert_int_equal(wake, UINT64_MAX);
  for (uint32_t i = 0; i < 8; i++) {
    vs_outbox_entry e = entry_of(f, i);
    assert_int_equal(e.state, i < 5 ? VS_OUTBOX_DONE : VS_OUTBOX_PENDING);
    assert_int_equal(e.attempts, 0);
  }
  /* Time passing changes nothing: no lease, no retry, no attempt. */
  assert_err(vs_engine_tick(f->e, T0_MS + 3600u * 1000u, &wake), VS_OK);
  assert_int_equal(counts_of(f).pending, 3);
  rt.held = f->ids[7];
  assert_err(vs_engine_tick(f->e, T0_MS + 3600u * 1000u + 1, &wake), VS_OK);
  vs_outbox_counts c = counts_of(f);
  assert_int_equal(c.done, 8);
  assert_int_equal(c.pending + c.inflight + c.failed, 0);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.done_held, 8);
  assert_int_equal(s.batches_sent + s.ops_sent + s.leases_expired, 0);
  for (uint32_t i = 0; i < 8; i++) assert_int_equal(entry_of(f, i).attempts, 0);
}

/* held_only needs held_through; every other transport needs send. */
static void test_engine_held_only_needs_held_through(void **state) {
  fixture *f = *state;
  vs_probe always = vs_probe_always();
  vs_engine *e = NULL;
  vs_transport no_range = {NULL, NULL, NULL, NULL, false, NULL, true};
  assert_err(vs_engine_new(NULL, f->ob, &always, &no_range, &e), VS_ERR_INVAL);
  assert_null(e);
  vs_transport no_send = {NULL, NULL, NULL, NULL, false, rec_held, false};
  assert_err(vs_engine_new(NULL, f->ob, &always, &no_send, &e), VS_ERR_INVAL);
  assert_null(e);
}

/* An ids_only transport gets ids, LSNs and sizes: no bytes. */
static void test_engine_ids_only_sends_ids_lsns_and_sizes(void **state) {
  fixture *f = *state;
  rec_transport rt;
  vs_engine_cfg cfg = small_cfg(1, 10, 1000);
  make_rec_engine(f, &cfg, &rt, true);
  write_ops(f, 5, T0_MS);
  tick(f, T0_MS);
  assert_int_equal(rt.sends, 1);
  assert_int_equal(rt.ops, 5);
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < 5; i++) {
    const vs_send_op *so = &rt.sent[i];
    assert_true(vs_op_id_equal(&so->op_id, &f->ids[i]));
    assert_null(so->encoded);
    uint64_t lsn = 0;
    assert_err(vs_wal_find(f->store, &f->ids[i], &lsn), VS_OK);
    assert_int_equal(so->lsn, lsn);
    assert_int_equal(so->attempt, 1);
    char pl[32], tl[16];
    uint32_t want = VS_OP_HEADER_BYTES + 3u /* "put" */ + 4u + (uint32_t)target_of(i + 1, tl, sizeof tl) + 4u +
                    (uint32_t)payload_of(i + 1, pl, sizeof pl);
    assert_int_equal(so->encoded_bytes, want);
    bytes += want;
  }
  assert_int_equal(rt.batch_bytes, bytes);
  vs_engine_stats s = stats_of(f);
  assert_int_equal(s.bytes_sent, bytes);
  assert_int_equal(s.ops_sent, 5);
  uint64_t now = T0_MS;
  drive(f, &now, 100, now + 10000);
  assert_int_equal(counts_of(f).done, 5);
}

int main(void) {
  if (sodium_init() < 0) return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TD(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown)
  const struct CMUnitTest tests[] = {
      T(test_engine_results_late_duplicate_stale_unknown),
      T(test_engine_results_buffer_is_bounded),
      T(test_engine_results_over_cap_from_poll_are_lost_replies),
      T(test_engine_offline_claims_nothing_and_spends_nothing),
      T(test_engine_busy_transport_gives_entries_back),
      T(test_engine_ack_quorum_counts_distinct_peers),
      T(test_engine_quorum_probes_stay_short_for_one_origin),
      T(test_engine_on_results_rejects_bad_peer_and_kind),
      T(test_engine_on_results_bad_peer_completes_nothing_at_quorum_one),
      T(test_engine_wake_times),
      T(test_engine_held_through_completes_without_sending),
      T(test_engine_held_through_other_origin_completes_nothing),
      T(test_engine_ids_only_sends_ids_lsns_and_sizes),
      T(test_engine_held_only_claims_nothing),
      T(test_engine_held_only_needs_held_through),
  };
#undef T
#undef TD
  return cmocka_run_group_tests(tests, NULL, NULL);
}
