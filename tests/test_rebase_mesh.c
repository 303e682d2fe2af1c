/* Members who stop acking, end to end in a managed mesh of real vs_nodes
 * (tests/mesh_harness.h, virtual time): node 2 goes away holding an op it
 * never sent; past suspend_after the others leave it out of the stable
 * cut and compact past what it holds, so when it returns no peer can send
 * it what it lacks (never a partial stream; its own op does reach them).
 * Away again, it writes one more op and re-bootstraps from a member's
 * snapshot with vs_snapshot_rebase: that unsent op stays in its chain and
 * is sent, it converges with the others, nothing forks, and it counts in
 * the cut again. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "acks.h"
#include "chain.h"
#include "fixture.h"
#include "internal.h"
#include "mesh_harness.h"
/* Invites that expire soon: every member's chain compacts (membership
 * finality), so the snapshot anchors every chain the returning node holds. */
#define MN_INVITE_MS 2000ull
#include "member_nodes.h"
#include "snap_buf.h"
#include "vixsync/snapshot.h"

#define BOUND_MS 60000u

static void configure(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  (void)i;
  cfg->suspend_after_ms = BOUND_MS;
  cfg->compact_every_ms = 5000;
}

static uint64_t horizon_of(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  MDB_txn *txn;
  vs_horizon hz;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  assert_err(vs_horizon_get(txn, s, origin, &hz), VS_OK);
  mdb_txn_abort(txn);
  return hz.seq;
}

static void test_silent_member_returns_behind_horizon_and_rebases(void **state) {
  (void)state;
  mh_mesh m;
  mn_mesh(&m, 3, 3, NULL, "rbm-return", 0xe1, 31, configure);
  mh_connect(&m, 0, 1);
  mh_connect(&m, 0, 2);
  mh_connect(&m, 1, 2);
  mh_write(&m, 0, "put", "a", "1");
  mh_write(&m, 2, "put", "b", "1");
  mh_run_for(&m, 20000);
  mh_expect_converged(&m, 0, 2);
  /* 2 goes away with an op nobody received. */
  mh_disconnect(&m, 2, 0);
  mh_disconnect(&m, 2, 1);
  mh_write(&m, 2, "put", "offline", "written away");
  mh_run_for(&m, 1000);
  uint64_t own2 = mn_head(&m, 2, 2), held0 = mn_head(&m, 2, 0);
  mh_close(&m, 2);
  for (int k = 0; k < 12; k++) {
    mh_write(&m, 0, "put", "a", k % 2 ? "x" : "y");
    mh_write(&m, 1, "incr", "n", "3");
    mh_run_for(&m, 10000);
  }
  mh_run_for(&m, 20000);
  /* 2 was suspended and the others compacted past what it holds. */
  for (uint32_t i = 0; i < 2; i++) {
    assert_int_equal(mn_stats(&m, i).members_suspended, 1);
    assert_true(mn_stats(&m, i).ops_compacted > 0);
    assert_true(horizon_of(mn_store(&m, i), m.ids[0].pk) > held0);
  }
  /* It returns: nobody can send it what was compacted. Told BEHIND, it
   * fetches a member's snapshot over the session and rebases onto it (it
   * covers every chain 2 holds of the others). Its unsent op is older than
   * the mesh's gc_floor (the others dropped tombstones past it): an
   * orphan, surfaced once, never sent. */
  mh_open(&m, 2, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 2, 1);
  for (int k = 0; k < 300 && mn_stats(&m, 2).snap_rebases == 0; k++) mh_run_for(&m, 100);
  assert_int_equal(mn_stats(&m, 2).snap_rebases, 1);
  assert_int_equal(mn_stats(&m, 2).snap_installs, 1);
  /* The rebase rewrote 2's chain above the anchor: what it counted as sent
   * of it (the orphan, offered before the BEHIND came) no longer holds, so
   * its next write goes out at once, not at the next resend (by when the
   * others' gc_floor may have passed it: refused for good). */
  mh_write(&m, 2, "put", "back", "written on return");
  mh_run_for(&m, 500);
  assert_true(mn_has(&m, 0, "back"));
  assert_true(mn_has(&m, 1, "back"));
  mh_run_for(&m, 30000);
  mh_expect_converged(&m, 0, 2);
  assert_int_equal(mn_orphans(&m, 2), 1);
  assert_false(mn_has(&m, 0, "offline"));
  assert_false(mn_has(&m, 2, "offline"));
  assert_true(mn_has(&m, 2, "a"));
  mh_disconnect(&m, 2, 0);
  mh_disconnect(&m, 2, 1);
  mh_write(&m, 2, "put", "offline2", "written away again"); /* unsent */
  mh_run_for(&m, 1000);
  own2 = mn_head(&m, 2, 2);
  mh_close(&m, 2);
  /* The re-bootstrap from 0's snapshot. */
  vt_snap_buf b = {NULL, 0, 0, 0};
  assert_err(vs_snapshot_make(mn_store(&m, 0), vt_snap_write, &b, NULL), VS_OK);
  vs_store *s = NULL;
  assert_err(vt_store_open(m.dirs[2], 0, &s), VS_OK);
  assert_err(vs_store_set_identity(s, &m.ids[2]), VS_OK);
  vs_rebase_info info;
  assert_err(vs_snapshot_rebase(s, vt_snap_read, &b, m.now_ms, &info), VS_OK);
  assert_int_equal(info.orphaned, 0);
  assert_true(info.own_kept >= 1); /* the op written away again, at least */
  assert_true(info.own_anchor < own2);
  assert_int_equal(info.own_head_after, own2);
  vs_store_close(s);
  free(b.p);
  mh_open(&m, 2, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 40000);
  mh_expect_converged(&m, 0, 2);
  mh_expect_converged(&m, 1, 2);
  assert_true(mn_has(&m, 0, "offline2"));
  assert_true(mn_has(&m, 1, "offline2"));
  for (uint32_t i = 0; i < 3; i++) {
    vs_node_stats st = mn_stats(&m, i);
    assert_int_equal(st.fork_verdicts, 0);
    assert_int_equal(st.runs_fork, 0);
    assert_int_equal(st.members_suspended, 0); /* 2 acknowledged again */
  }
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_silent_member_returns_behind_horizon_and_rebases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
