/* vs_node: replicas converge through frames passed in memory (no sockets).
 *
 * The in-memory network of tests/mesh_harness.h: node i reaches node j
 * through connection handle j (and j sees i as handle i). Frames are
 * delivered in order per link, as ENet's reliable channel would; a test may
 * drop links, restart nodes and write anywhere. Time is virtual.
 * Built twice: test_node_prepared delivers every frame through the receive
 * pipeline instead of vs_node_on_frame (tests/prepared.h). */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "mesh_harness.h" /* delivers through the receive pipeline in test_node_prepared */
#include "testutil.h"
#include "vixsync/vixsync.h"
#include "vixsync/node.h"

/* The mesh of these tests: n nodes, identities from seed byte 0x10. */
static void net_init(mh_mesh *t, uint32_t n) { mh_init(t, n, "node", 0x10, 42); }

static void test_node_two_nodes_converge(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 2);
  mh_write(&t, 0, "put", "colour", "blue");
  mh_write(&t, 1, "incr", "visits", "2");
  mh_connect(&t, 0, 1);
  mh_run(&t, 1000);
  mh_write(&t, 0, "incr", "visits", "5");
  mh_write(&t, 1, "put", "colour", "green");
  mh_run(&t, 1000);
  mh_expect_converged(&t, 0, 1);
  vs_node_stats st;
  vs_node_stats_get(t.nodes[1], &st);
  assert_int_equal(st.handshakes_done, 1);
  assert_true(st.ops_applied == 2);
  assert_int_equal(st.rejected_auth + st.rejected_malformed + st.rejected_replay + st.runs_forged, 0);
  /* The outbox of each node drains: its ops are held by the other. */
  mh_run(&t, 1000);
  vs_outbox *ob;
  assert_err(vs_outbox_open(vs_node_store(t.nodes[0]), NULL, &ob), VS_OK);
  vs_outbox_counts c;
  assert_err(vs_outbox_counts_get(ob, &c), VS_OK);
  assert_int_equal(c.done, 2);
  assert_int_equal(c.pending + c.inflight + c.failed, 0);
  vs_outbox_close(ob);
  mh_free(&t);
}

static void test_node_line_relays(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 3);
  mh_connect(&t, 0, 1);
  mh_connect(&t, 1, 2);
  for (int k = 0; k < 20; k++) {
    char target[16], value[16];
    snprintf(target, sizeof target, "k%d", k % 7);
    snprintf(value, sizeof value, "%d", k);
    mh_write(&t, 0, k % 3 == 0 ? "incr" : "put", target, value);
    mh_write(&t, 2, "put", target, value);
  }
  mh_run(&t, 2000);
  mh_expect_converged(&t, 0, 1);
  mh_expect_converged(&t, 0, 2);
  mh_free(&t);
}

static void test_node_other_mesh_learns_nothing(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 2);
  memset(t.keys[1], 0x33, VS_MESH_KEY_BYTES);
  mh_restart(&t, 1);
  mh_write(&t, 0, "put", "secret", "42");
  mh_connect(&t, 0, 1);
  mh_run(&t, 200);
  uint8_t h1[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  mh_state_hash(&t, 1, h1);
  assert_memory_equal(h1, zero, VS_HASH_BYTES);
  vs_node_stats s0, s1;
  vs_node_stats_get(t.nodes[0], &s0);
  vs_node_stats_get(t.nodes[1], &s1);
  assert_int_equal(s0.handshakes_done + s1.handshakes_done, 0);
  assert_true(s0.rejected_auth + s1.rejected_auth >= 1);
  mh_free(&t);
}

static void test_node_restart_and_offline_writes_arrive(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 2);
  mh_connect(&t, 0, 1);
  mh_write(&t, 0, "put", "a", "1");
  mh_run(&t, 500);
  mh_disconnect(&t, 0, 1);
  for (int k = 0; k < 50; k++) mh_write(&t, 0, "incr", "n", "1");
  mh_restart(&t, 1);
  mh_connect(&t, 0, 1);
  mh_run(&t, 2000);
  mh_expect_converged(&t, 0, 1);
  mh_free(&t);
}

/* vs_node_write_batch: one commit, results in order, a key repeated inside
 * the batch deduplicated, a bad request writes nothing; peers get it all. */
/* A CLI write beside the daemon commits to the store from another process:
 * the node learns of it only from the store, and must still push it (here
 * the write goes to the store directly, under the node's feet). */
static void test_node_pushes_writes_of_another_process(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 2);
  mh_connect(&t, 0, 1);
  mh_run(&t, 200);
  for (int k = 0; k < 3; k++) {
    char value[16];
    snprintf(value, sizeof value, "%d", k);
    vs_write_req req = {"put", (const uint8_t *)"cli", 3, (const uint8_t *)value, (uint32_t)strlen(value), NULL, 0};
    assert_err(vs_write(vs_node_store(t.nodes[0]), t.ids[0].pk, &req, t.now_ms, NULL), VS_OK);
  }
  mh_run(&t, 200);
  mh_expect_converged(&t, 0, 1);
  uint8_t h1[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  mh_state_hash(&t, 1, h1);
  assert_memory_not_equal(h1, zero, VS_HASH_BYTES);
  mh_free(&t);
}

static void test_node_write_batch_group_commits(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 2);
  const uint8_t key[] = "k1";
  vs_write_req reqs[4] = {
      {"put", (const uint8_t *)"a", 1, (const uint8_t *)"5", 1, NULL, 0},
      {"incr", (const uint8_t *)"a", 1, (const uint8_t *)"3", 1, key, 2},
      {"incr", (const uint8_t *)"a", 1, (const uint8_t *)"3", 1, key, 2},
      {"del", (const uint8_t *)"b", 1, NULL, 0, NULL, 0},
  };
  vs_write_result res[4];
  assert_err(vs_node_write_batch(t.nodes[0], reqs, 4, t.now_ms, res), VS_OK);
  assert_int_equal(res[0].lsn, 1);
  assert_int_equal(res[1].lsn, 2);
  assert_true(res[2].duplicate);
  assert_true(vs_op_id_equal(&res[1].op_id, &res[2].op_id));
  assert_int_equal(res[3].seq, 3);
  /* All or none: an incr that is not a number spoils the whole batch. */
  vs_write_req bad[2] = {
      {"put", (const uint8_t *)"c", 1, (const uint8_t *)"x", 1, NULL, 0},
      {"incr", (const uint8_t *)"a", 1, (const uint8_t *)"x", 1, NULL, 0},
  };
  assert_err(vs_node_write_batch(t.nodes[0], bad, 2, t.now_ms, NULL), VS_ERR_INVAL);
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(vs_node_store(t.nodes[0]), &lsn), VS_OK);
  assert_int_equal(lsn, 3);
  assert_err(vs_node_write_batch(t.nodes[0], NULL, 0, t.now_ms, NULL), VS_OK);
  mh_connect(&t, 0, 1);
  mh_run(&t, 1000);
  mh_expect_converged(&t, 0, 1);
  assert_err(vs_wal_last_lsn(vs_node_store(t.nodes[1]), &lsn), VS_OK);
  assert_int_equal(lsn, 3);
  mh_free(&t);
}

/* Write `n` ops on node i in batches of 500. */
static void write_many(mh_mesh *t, uint32_t i, uint32_t n) {
  static char targets[500][16];
  vs_write_req reqs[500];
  for (uint32_t done = 0; done < n;) {
    uint32_t b = n - done < 500 ? n - done : 500;
    for (uint32_t k = 0; k < b; k++) {
      snprintf(targets[k], sizeof targets[k], "t%u", (unsigned)(done + k));
      reqs[k] = (vs_write_req){"put", (const uint8_t *)targets[k], (uint32_t)strlen(targets[k]),
                               (const uint8_t *)"v", 1, NULL, 0};
    }
    assert_err(vs_node_write_batch(t->nodes[i], reqs, b, t->now_ms, NULL), VS_OK);
    done += b;
  }
}

/* Ops the peer learned by anti-entropy are completed by its acknowledged
 * version vector, most of them without ever being claimed; every entry is
 * completed exactly once, by the range or by a result. */
static void test_node_delivered_ranges_complete_unclaimed(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 2);
  const uint32_t n = 3000;
  write_many(&t, 0, n);
  mh_connect(&t, 0, 1);
  mh_run(&t, 5000);
  mh_expect_converged(&t, 0, 1);
  vs_node_stats st;
  vs_node_stats_get(t.nodes[1], &st);
  assert_int_equal(st.ops_applied, n);
  mh_run(&t, 1000);
  vs_outbox_counts c;
  mh_outbox_counts(&t, 0, &c);
  assert_int_equal(c.done, n);
  assert_int_equal(c.pending + c.inflight + c.failed, 0);
  vs_engine_stats es;
  vs_engine_stats_get(vs_node_engine(t.nodes[0]), &es);
  assert_true(es.done_held > 0);
  assert_int_equal(es.done_held + es.results_done + es.results_late, n);
  assert_int_equal(es.done_held + es.ops_sent, n); /* none claimed twice, none both ways */
  mh_free(&t);
}

/* With ack_quorum 2, one peer holding the ops completes nothing; a second
 * one completes them all. */
static void test_node_held_ranges_respect_quorum(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 3);
  mh_close(&t, 0);
  mh_open(&t, 0, 2); /* ack_quorum 2 */
  const uint32_t n = 700;
  write_many(&t, 0, n);
  mh_connect(&t, 0, 1);
  mh_run(&t, 5000);
  vs_node_stats st;
  vs_node_stats_get(t.nodes[1], &st);
  assert_int_equal(st.ops_applied, n);
  vs_outbox_counts c;
  mh_outbox_counts(&t, 0, &c);
  assert_int_equal(c.done, 0);
  assert_int_equal(c.pending + c.inflight, n);
  vs_engine_stats es;
  vs_engine_stats_get(vs_node_engine(t.nodes[0]), &es);
  assert_int_equal(es.done_held, 0);
  mh_connect(&t, 0, 2);
  mh_run(&t, 5000);
  mh_outbox_counts(&t, 0, &c);
  assert_int_equal(c.done, n);
  assert_int_equal(c.pending + c.inflight + c.failed, 0);
  vs_engine_stats_get(vs_node_engine(t.nodes[0]), &es);
  assert_int_equal(es.done_held + es.results_done + es.results_late, n);
  mh_free(&t);
}

/* ---- an origin whose clock is ahead (issue 14: the pin attack) ---- */

#define DAY_MS (24ull * 3600ull * 1000ull)

typedef struct logcap {
  uint32_t lines, skew_lines;
  char last[256];
} logcap;

static void log_cb(void *ctx, vs_log_level level, const char *msg) {
  logcap *c = ctx;
  c->lines++;
  if (strncmp(msg, "event=clock_skew ", 17) == 0) {
    assert_int_equal(level, VS_LOG_WARN);
    c->skew_lines++;
  }
  snprintf(c->last, sizeof c->last, "%s", msg);
}

/* Run the network for `ms` of virtual time (it need not go quiet). */
static void run_for(mh_mesh *t, uint64_t ms) {
  uint64_t until = t->now_ms + ms;
  for (uint32_t step = 0; step < 1000000 && t->now_ms < until; step++) mh_run(t, 1);
  assert_true(t->now_ms >= until);
}

typedef struct val {
  char text[64];
  bool found;
} val;

static vs_err val_cb(const vs_state_entry *e, void *ctx) {
  val *v = ctx;
  assert_true(e->value_bytes < sizeof v->text);
  memcpy(v->text, e->value, e->value_bytes);
  v->text[e->value_bytes] = '\0';
  v->found = true;
  return VS_OK;
}

static void assert_value(mh_mesh *t, uint32_t i, const char *target, const char *want) {
  val v = {{0}, false};
  vs_err err = vs_state_get(vs_node_store(t->nodes[i]), (const uint8_t *)target, (uint32_t)strlen(target), false,
                            val_cb, &v);
  assert_err(err, VS_OK);
  assert_true(v.found);
  assert_string_equal(v.text, want);
}

/* Node 1's clock runs a day ahead. Its write waits on node 0 (counted in
 * ops_deferred_future, logged once as clock_skew, node 0's vector does not
 * advance) instead of winning there silently; node 1 resends on its normal
 * schedule, not in a loop; node 0's own writes take effect meanwhile. When
 * node 0's clock is within the drift of it, it applies, both converge, and
 * node 0's next write wins everywhere. */
static void test_node_future_hlc_waits_for_clock(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 2);
  mh_close(&t, 0);
  logcap lc;
  memset(&lc, 0, sizeof lc);
  vs_node_cfg cfg = vt_node_cfg(t.dirs[0], &t.ids[0], t.keys[0], &t.rng);
  cfg.log = log_cb;
  cfg.log_ctx = &lc;
  assert_err(vs_node_open(&cfg, &t.nodes[0]), VS_OK);
  mh_write(&t, 0, "put", "k", "b0");
  mh_connect(&t, 0, 1);
  mh_run(&t, 1000);
  mh_expect_converged(&t, 0, 1);

  vt_node_write_kv(t.nodes[1], t.now_ms + DAY_MS, "put", "k", "ahead");
  vs_node_stats s0, s1, s1_before;
  vs_node_stats_get(t.nodes[1], &s1_before);
  const uint64_t minute_ms = 60000;
  run_for(&t, minute_ms);
  vs_node_stats_get(t.nodes[0], &s0);
  vs_node_stats_get(t.nodes[1], &s1);
  assert_true(s0.ops_deferred_future >= 1);
  assert_int_equal(s0.rejected_malformed + s0.runs_forged + s0.runs_fork, 0);
  assert_value(&t, 0, "k", "b0");
  uint64_t held = 99;
  assert_err(vs_wal_head(vs_node_store(t.nodes[0]), t.ids[1].pk, &held, NULL, NULL), VS_OK);
  assert_int_equal(held, 0);
  /* Logged once, though offered again and again. */
  assert_int_equal(lc.skew_lines, 1);
  char hex[2 * VS_ORIGIN_BYTES + 1], want[200];
  vs_hex_encode(t.ids[1].pk, VS_ORIGIN_BYTES, hex);
  snprintf(want, sizeof want, "event=clock_skew origin=%s ahead_ms=", hex);
  assert_true(strncmp(lc.last, want, strlen(want)) == 0);
  uint64_t ahead = strtoull(lc.last + strlen(want), NULL, 10);
  assert_true(ahead > DAY_MS - minute_ms && ahead <= DAY_MS);
  /* The sender resends on its schedule (resend_ms), not in a loop. */
  vs_node_cfg defaults;
  vs_node_cfg_default(&defaults);
  uint64_t resends_max = minute_ms / defaults.resend_ms + 2;
  assert_true(s1.runs_sent - s1_before.runs_sent <= resends_max);
  assert_true(s0.ops_deferred_future <= resends_max);

  /* Node 0's honest write takes effect there. */
  mh_write(&t, 0, "put", "k", "honest");
  assert_value(&t, 0, "k", "honest");
  run_for(&t, 10000);
  assert_value(&t, 0, "k", "honest");

  /* Node 0's clock catches up to within the drift: it applies. */
  t.now_ms += DAY_MS - VS_MAX_DRIFT_MS_DEFAULT;
  run_for(&t, 30000);
  mh_expect_converged(&t, 0, 1);
  assert_value(&t, 0, "k", "ahead");
  assert_value(&t, 1, "k", "ahead");
  /* Node 0 has seen it: its next write is ordered after it, everywhere. */
  mh_write(&t, 0, "put", "k", "after");
  run_for(&t, 30000);
  mh_expect_converged(&t, 0, 1);
  assert_value(&t, 0, "k", "after");
  assert_value(&t, 1, "k", "after");
  assert_int_equal(lc.skew_lines, 1);
  mh_free(&t);
}

/* A run a peer refuses while it takes the others is sent again on its own.
 * Node 1 takes one new origin a minute (origin_quota_per_min 1) and hears
 * of everything through node 0. Node 0's writes reach it; node 2's one
 * write, relayed by 0, is refused (the quota was spent on origin 0). Node
 * 0 goes on writing and node 1 acknowledges each write: that progress
 * restarts 0's resend timer, so before each run had its own deadline node
 * 2's write was never sent to node 1 again (its author sends only to 0),
 * and node 1 lacked it for good (nd_flight_unstick). */
static void quota_one(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  if (i == 1) cfg->origin_quota_per_min = 1;
}

static void test_node_refused_run_sent_again_while_others_flow(void **state) {
  (void)state;
  mh_mesh t;
  net_init(&t, 3);
  t.configure = quota_one;
  mh_restart(&t, 1);
  mh_write(&t, 0, "put", "a", "first");
  mh_connect(&t, 0, 1);
  mh_connect(&t, 0, 2);
  mh_run_for(&t, 1000);
  mh_write(&t, 2, "put", "b", "from 2");
  uint64_t held = 0;
  for (uint32_t i = 0; i < 1200; i++) { /* 2 minutes of node 0 writing every 100 ms */
    char v[16];
    snprintf(v, sizeof v, "%u", i);
    mh_write(&t, 0, "put", "a", v);
    mh_run_for(&t, 100);
    if (i == 100) { /* 10 s on: refused, and not there yet */
      vs_node_stats s1;
      vs_node_stats_get(t.nodes[1], &s1);
      assert_true(s1.rejected_origin_quota >= 1);
      assert_err(vs_wal_head(vs_node_store(t.nodes[1]), t.ids[2].pk, &held, NULL, NULL), VS_OK);
      assert_int_equal(held, 0);
    }
  }
  assert_err(vs_wal_head(vs_node_store(t.nodes[1]), t.ids[2].pk, &held, NULL, NULL), VS_OK);
  assert_int_equal(held, 1);
  vs_node_stats s0;
  vs_node_stats_get(t.nodes[0], &s0);
  assert_true(s0.origin_resends >= 1);
  /* Backed off: from 2 s to resend_max_ms, not once per vector. */
  assert_true(s0.origin_resends <= 8);
  mh_run_for(&t, 5000);
  mh_expect_converged(&t, 0, 1);
  mh_expect_converged(&t, 0, 2);
  mh_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_two_nodes_converge),
      cmocka_unit_test(test_node_line_relays),
      cmocka_unit_test(test_node_other_mesh_learns_nothing),
      cmocka_unit_test(test_node_restart_and_offline_writes_arrive),
      cmocka_unit_test(test_node_write_batch_group_commits),
      cmocka_unit_test(test_node_pushes_writes_of_another_process),
      cmocka_unit_test(test_node_delivered_ranges_complete_unclaimed),
      cmocka_unit_test(test_node_held_ranges_respect_quorum),
      cmocka_unit_test(test_node_future_hlc_waits_for_clock),
      cmocka_unit_test(test_node_refused_run_sent_again_while_others_flow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
