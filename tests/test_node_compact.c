/* Compaction in the node (src/node_compact.c; docs/storage.md,
 * "Compaction"): real managed vs_nodes on the in-memory mesh. Once every
 * member has acknowledged ops, they leave every node's log and the nodes
 * still agree; a member that is away holds the cut; a device that joins
 * afterwards is seeded from a member's snapshot and goes on by
 * anti-entropy; one that is not is told BEHIND and fetches one over the
 * session (never a partial stream). */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "mesh_harness.h"
/* Invites that expire soon: a member's ops compact only once no other
 * admission can take its invite (compact_final.h), judged by the store's
 * HLC, so each test writes after the expiry. */
#define MN_INVITE_MS 2000ull
#include "member_nodes.h"
#include "chain.h"
#include "compact_util.h"
#include "internal.h"
#include "vixsync/snapshot.h"
#include "snap_buf.h"

static uint64_t horizon(mh_mesh *m, uint32_t i, uint32_t origin) {
  return vt_horizon_of(mn_store(m, i), m->ids[origin].pk).seq;
}

static void writes(mh_mesh *m, uint32_t nodes, uint32_t count, uint32_t round) {
  char t[32], v[32];
  for (uint32_t k = 0; k < count; k++) {
    uint32_t i = k % nodes;
    snprintf(t, sizeof t, "t%u", k % 13);
    snprintf(v, sizeof v, "r%u-%u", round, k);
    mh_write(m, i, k % 7 == 3 ? "incr" : k % 7 == 5 ? "del" : "put", t, k % 7 == 3 ? "2" : v);
    if (k % 16 == 15) mh_run_for(m, 10);
  }
}

/* Three members: after the writes and their acks, every node's log is
 * down to the membership ops, and all agree; later writes go on. */
static void test_node_compacts_the_stable_part(void **state) {
  (void)state;
  mh_mesh m;
  mn_compacting_star(&m, 3, 3, "nc-three", 0x21);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 2500);
  writes(&m, 3, 300, 0);
  mh_run_for(&m, 30000);
  for (uint32_t i = 0; i < 3; i++) {
    vs_node_stats s = mn_stats(&m, i);
    assert_true(s.ops_compacted >= 250);
    assert_true(s.compact_steps >= 1);
    assert_true(vt_wal_records(mn_store(&m, i)) < 20); /* genesis, invites, admits, and an unsigned tail at most */
    for (uint32_t o = 0; o < 3; o++) assert_true(horizon(&m, i, o) > 0);
  }
  mh_expect_converged(&m, 0, 1);
  mh_expect_converged(&m, 0, 2);
  writes(&m, 3, 60, 1);
  mh_run_for(&m, 30000);
  mh_expect_converged(&m, 0, 1);
  mh_expect_converged(&m, 0, 2);
  mh_free(&m);
}

/* A member away holds the cut: what it has not acknowledged stays in
 * everyone's log; when it comes back it catches up from them, and then
 * compaction goes on. */
static void test_node_away_member_holds_the_cut(void **state) {
  (void)state;
  mh_mesh m;
  mn_compacting_star(&m, 3, 3, "nc-away", 0x31);
  mh_run_for(&m, 2500);
  writes(&m, 3, 60, 0);
  mh_run_for(&m, 20000);
  uint64_t seen = mn_head(&m, 2, 0); /* what node 2 holds of node 0's chain */
  mh_disconnect(&m, 2, 0);
  mh_close(&m, 2);
  writes(&m, 2, 200, 1);
  mh_run_for(&m, 30000);
  assert_true(mn_head(&m, 0, 0) > seen);
  assert_true(horizon(&m, 0, 0) <= seen);
  assert_true(horizon(&m, 1, 0) <= seen);
  mh_open(&m, 2, 0);
  mh_connect(&m, 2, 0);
  mh_run_for(&m, 40000);
  mh_expect_converged(&m, 0, 2);
  assert_true(horizon(&m, 0, 0) > seen); /* its ack came: the cut moved */
  mh_free(&m);
}

typedef vt_snap_buf sbuf;
#define sb_write vt_snap_write
#define sb_read vt_snap_read

/* A device joining after compaction: seeded from a member's snapshot it
 * converges, its log holding only what came after; without one it fetches
 * one over the session and converges the same way. */
static void test_node_late_device_seeded_by_snapshot(void **state) {
  (void)state;
  mh_mesh m;
  mn_compacting_star(&m, 5, 3, "nc-late", 0x41);
  mh_run_for(&m, 2500);
  writes(&m, 3, 200, 0);
  mh_run_for(&m, 30000);
  assert_true(horizon(&m, 0, 0) > 0);
  mn_join(&m, 0, 3, VS_MESH_WRITER);
  mn_join(&m, 0, 4, VS_MESH_WRITER);
  mh_run_for(&m, 100);
  /* Node 3: a snapshot of node 0, installed while its node is closed. */
  sbuf snap = {NULL, 0, 0, 0};
  vs_snapshot_info info;
  assert_err(vs_snapshot_make(mn_store(&m, 0), sb_write, &snap, &info), VS_OK);
  assert_true(info.entries > 0 && info.origins == 3);
  mh_close(&m, 3);
  vs_store *s = NULL;
  assert_err(vt_store_open(m.dirs[3], 64ull << 20, &s), VS_OK);
  assert_err(vs_store_set_identity(s, &m.ids[3]), VS_OK);
  assert_err(vs_snapshot_install(s, sb_read, &snap, m.now_ms, NULL), VS_OK);
  vs_store_close(s);
  free(snap.p);
  mh_open(&m, 3, 0);
  mh_connect(&m, 3, 0);
  mh_connect(&m, 4, 0);
  mh_run_for(&m, 40000);
  mh_expect_converged(&m, 0, 3);
  assert_true(vt_wal_records(mn_store(&m, 3)) < 40);
  /* Node 4, not seeded by hand: told BEHIND (no run of a compacted
   * chain, not even its membership prefix), it fetched a snapshot over the
   * session (node_snap.c) and converged from its anchors. */
  mh_expect_converged(&m, 0, 4);
  assert_true(vt_wal_records(mn_store(&m, 4)) < 40);
  assert_int_equal(mn_stats(&m, 4).snap_installs, 1);
  assert_int_equal(mn_stats(&m, 4).runs_gap, 0);
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_compacts_the_stable_part),
      cmocka_unit_test(test_node_away_member_holds_the_cut),
      cmocka_unit_test(test_node_late_device_seeded_by_snapshot),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
