/* Membership finality for compaction (src/compact_final.h; docs/storage.md,
 * "Membership finality"): a verdict that comes after a compaction must
 * never need to void folded ops. Real nodes on the in-memory mesh:
 *  - a token used on two devices: the first admission's ops stay in the
 *    log until the invite expires, so the late winner voids them on a
 *    compacting node exactly as on one that never compacts; past the
 *    expiry (the documented bound) the breach is counted and logged;
 *  - two admins revoke each other while partitioned: the revoked senior
 *    admin's last acknowledgement holds the junior side's cut, so when the
 *    senior revoke wins, nothing the junior wrote meanwhile was folded;
 *  - a junior device revoked by a senior one stops holding the cut once
 *    every member holds the revoke. */
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
#define MN_INVITE_MS 2000ull /* short invites: each test writes after they expire */
#include "member_nodes.h"
#include "vixsync/wal.h"
#include "chain.h"
#include "compact_util.h"
#include "internal.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"

#define TWIN 3u /* the node that never compacts (tests 1 and 2) */

static void compact_but_twin(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  mn_compact_cfg(cfg, i == TWIN ? 0 : MN_COMPACT_EVERY_MS, 0);
}

static uint64_t horizon(mh_mesh *m, uint32_t i, uint32_t origin) {
  return vt_horizon_of(mn_store(m, i), m->ids[origin].pk).seq;
}

static vs_compact_info compact_now(mh_mesh *m, uint32_t i) {
  vs_compact_info info;
  assert_err(vs_store_compact(mn_store(m, i), 1u << 20, &info), VS_OK);
  return info;
}

static void writes(mh_mesh *m, uint32_t node, uint32_t count, const char *tag) {
  char t[48], v[48];
  for (uint32_t k = 0; k < count; k++) {
    snprintf(t, sizeof t, "%s-%u", tag, k % 9);
    snprintf(v, sizeof v, "%s-v%u", tag, k);
    mh_write(m, node, k % 5 == 2 ? "incr" : "put", t, k % 5 == 2 ? "3" : v);
    if (k % 16 == 15) mh_run_for(m, 10);
  }
}

/* One invite's token, for `dev` to join with at m->now_ms. */
static size_t invite(mh_mesh *m, uint64_t expires_ms, char *tok, size_t cap) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 0x77, sizeof seed);
  vs_mesh_invite_req req = {VS_MESH_WRITER, expires_ms, seed, m->keys[0], NULL, 0};
  size_t n = 0;
  assert_err(vs_mesh_invite(mn_store(m, 0), &req, m->now_ms, tok, cap, &n), VS_OK);
  return n;
}

static void join_with(mh_mesh *m, uint32_t dev, const char *tok, size_t n) {
  vs_mesh_joined j;
  assert_err(vs_mesh_join(mn_store(m, dev), tok, n, m->now_ms, &j), VS_OK);
}

/* A token used twice: node 2 joins first (the smaller admit HLC: it wins
 * the invite) but stays away; node 1 joins later, writes, and is
 * acknowledged by every member. While the invite is open node 1's ops stay
 * in node 0's log; when node 2 comes, node 1's admission is lost and its
 * ops go on node 0 as on the twin that never compacts. `expiry_ms`: how
 * long the invite lasts; past it (the bound) node 0 folds node 1's ops and
 * node 2's late admission is a counted breach. */
static void token_used_twice(uint64_t expiry_ms, bool expect_breach) {
  mh_mesh m;
  mn_mesh(&m, 4, 1, NULL, expect_breach ? "cf-dup-late" : "cf-dup", 0x51, 0x51, compact_but_twin);
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t n = invite(&m, m.now_ms + expiry_ms, tok, sizeof tok);
  join_with(&m, 2, tok, n);
  mh_run_for(&m, 100);
  join_with(&m, 1, tok, n);
  mn_join(&m, 0, TWIN, VS_MESH_WRITER);
  mh_connect(&m, 1, 0);
  mh_connect(&m, TWIN, 0);
  mh_connect(&m, TWIN, 1);
  mh_run_for(&m, 2500); /* the twin's invite expires */
  writes(&m, 0, 40, "a");
  writes(&m, 1, 40, "b");
  if (expect_breach) mh_run_for(&m, expiry_ms); /* node 1's invite expires too */
  writes(&m, 0, 40, "c");
  mh_run_for(&m, 30000);
  mh_expect_converged(&m, 0, TWIN);
  assert_true(mn_has(&m, 0, "b-1"));
  assert_true(horizon(&m, 0, 0) > 0); /* the genesis admin's ops folded */
  vs_compact_info info = compact_now(&m, 0);
  if (expect_breach) {
    assert_true(horizon(&m, 0, 1) > 0); /* the invite expired: node 1's admission taken as final */
    assert_int_equal(info.unfinal_members, 0);
  } else {
    assert_int_equal(horizon(&m, 0, 1), 0); /* the invite is open: node 1's admission is not final */
    assert_true(info.unfinal_members >= 1);
  }
  assert_int_equal(info.horizon_breaches, 0);
  /* Node 2 comes with its earlier admission of the same invite. */
  mh_connect(&m, 2, 0);
  mh_run_for(&m, 30000);
  vs_mesh_view *view = malloc(sizeof *view);
  assert_non_null(view);
  uint8_t mesh_id[VS_HASH_BYTES];
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(&m, 0), false, &txn), VS_OK);
  assert_err(vs_mesh_id_get_txn(txn, mn_store(&m, 0), mesh_id), VS_OK);
  mdb_txn_abort(txn);
  assert_err(vs_mesh_view_get(mn_store(&m, 0), mesh_id, view), VS_OK);
  assert_non_null(vs_mesh_find(view, m.ids[2].pk));
  assert_null(vs_mesh_find(view, m.ids[1].pk)); /* node 1 lost the invite */
  free(view);
  assert_false(mn_has(&m, TWIN, "b-1")); /* the twin voided node 1's ops */
  info = compact_now(&m, 0);
  if (expect_breach) {
    assert_true(info.horizon_breaches >= 1); /* counted: node 0 kept what it folded */
    assert_true(mn_stats(&m, 0).horizon_breaches >= 1 || info.horizon_breaches >= 1);
  } else {
    assert_int_equal(info.horizon_breaches, 0);
    assert_false(mn_has(&m, 0, "b-1")); /* voided on node 0 as on the twin */
    mh_expect_converged(&m, 0, TWIN);
    /* (Node 2 itself is a new device behind node 0's horizons: it starts
     * from a snapshot, not tested here.) */
  }
  mh_free(&m);
}

static void test_token_used_twice_waits_for_expiry(void **state) {
  (void)state;
  token_used_twice(3600ull * 1000ull, false);
}

static void test_token_used_twice_past_expiry_is_counted(void **state) {
  (void)state;
  token_used_twice(3000ull, true);
}

/* Node 1 (the senior admin: invited first) and node 2 (junior) revoke each
 * other while node 1 is cut off. The twin (a writer that never compacts)
 * stays with nodes 0 and 2 long enough to acknowledge node 2's writes,
 * then leaves before node 2's revoke of node 1 is written. On node 0 node 1
 * is then revoked, but not settled (senior to its revoker): its last
 * acknowledgement holds the cut, so node 2's writes stay in the log (the
 * active members' acks alone, the twin's included, would have let them
 * fold). The twin meets node 1 first (it never saw node 2's revoke) and
 * carries node 1's revoke to node 0: seniority makes it win, node 2's
 * writes past node 1's cut are void on node 0 as on the twin, and nothing
 * breached a horizon. */
static void test_mutual_revoke_holds_the_cut(void **state) {
  (void)state;
  mh_mesh m;
  const uint8_t roles[4] = {VS_MESH_ADMIN, VS_MESH_ADMIN, VS_MESH_ADMIN, VS_MESH_WRITER};
  mn_mesh(&m, 4, 4, roles, "cf-mutual", 0x61, 0x61, compact_but_twin);
  mh_connect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 2, 1);
  mh_connect(&m, TWIN, 0);
  mh_connect(&m, TWIN, 2);
  mh_run_for(&m, 2500);
  writes(&m, 0, 30, "a");
  writes(&m, 2, 30, "b");
  mh_run_for(&m, 30000);
  uint64_t seen = mn_head(&m, 1, 2); /* what node 1 holds of node 2's chain */
  assert_true(horizon(&m, 0, 2) > 0);
  /* Node 1 alone; nodes 0 and 2 write, the twin acknowledges. */
  mh_disconnect(&m, 1, 0);
  mh_disconnect(&m, 2, 1);
  writes(&m, 2, 30, "p2");
  writes(&m, 0, 30, "p0");
  mh_run_for(&m, 30000);
  assert_true(mn_head(&m, TWIN, 2) > seen);
  assert_err(vs_mesh_revoke(mn_store(&m, 1), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  /* The twin leaves; node 2 revokes node 1. */
  mh_disconnect(&m, TWIN, 0);
  mh_disconnect(&m, TWIN, 2);
  assert_err(vs_mesh_revoke(mn_store(&m, 2), m.ids[1].pk, m.now_ms, NULL), VS_OK);
  writes(&m, 0, 30, "q0");
  mh_run_for(&m, 30000);
  assert_true(mn_has(&m, 0, "p2-1"));
  vs_compact_info info = compact_now(&m, 0);
  assert_true(info.revoked_holding >= 1);
  assert_int_equal(info.members, 3); /* 0, 2 and the twin: their acks alone cover node 2's writes */
  assert_true(horizon(&m, 0, 2) <= seen); /* node 1's last ack held node 2's chain */
  /* The twin meets node 1 (it never saw node 2's revoke): node 1's senior
   * revoke wins there, and node 2's writes past node 1's cut are void. */
  mh_connect(&m, TWIN, 1);
  mh_run_for(&m, 20000);
  assert_false(mn_has(&m, TWIN, "p2-1"));
  assert_true(mn_has(&m, TWIN, "p0-1"));
  /* Node 0 still holds them unfolded, so the same verdict can void them
   * there. (It does not reach node 0 over this harness's link: each
   * revoker rekeyed, to two different epoch-1 keys, and a link here is
   * made once on each side's newest key; a daemon's next dial steps back
   * to an older key, node_member.c.) */
  assert_true(horizon(&m, 0, 2) <= seen);
  info = compact_now(&m, 0);
  assert_int_equal(info.horizon_breaches, 0);
  mh_free(&m);
}

/* The genesis admin revokes node 2 (its junior). Once every member holds
 * the revoke, node 2 is settled: the cut moves past its last ack. */
static void test_settled_revoke_frees_the_cut(void **state) {
  (void)state;
  mh_mesh m;
  mn_compacting_star(&m, 3, 3, "cf-settled", 0x71);
  mh_run_for(&m, 2500);
  writes(&m, 0, 30, "a");
  mh_run_for(&m, 20000);
  uint64_t acked = mn_head(&m, 2, 0); /* what node 2 holds (and acked) of node 0's chain */
  mh_disconnect(&m, 2, 0);
  assert_err(vs_mesh_revoke(mn_store(&m, 0), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  writes(&m, 0, 30, "c");
  writes(&m, 1, 30, "d");
  mh_run_for(&m, 30000);
  vs_compact_info info = compact_now(&m, 0);
  assert_int_equal(info.revoked_holding, 0);
  assert_int_equal(info.members, 2);
  assert_true(horizon(&m, 0, 0) > acked); /* node 2's old ack no longer holds it */
  assert_true(horizon(&m, 0, 1) > 0);
  mh_expect_converged(&m, 0, 1);
  /* Tombstones written after the revoke drop: a settled revoked device,
   * its chain folded to its cut, no longer holds the GC bound at its last
   * op (before session 13 it did for good: gc_floor stayed 0 here). */
  uint64_t seq2 = 0, hlc2 = 0;
  uint8_t head2[VS_HASH_BYTES];
  assert_err(vs_wal_head(mn_store(&m, 0), m.ids[2].pk, &seq2, head2, &hlc2), VS_OK);
  for (int k = 0; k < 10; k++) {
    mh_write(&m, k % 2, "put", "gone", "v");
    mh_run_for(&m, 500);
    mh_write(&m, k % 2, "del", "gone", "");
    mh_run_for(&m, 2000);
  }
  mh_run_for(&m, 20000);
  info = compact_now(&m, 0);
  info = compact_now(&m, 0);
  assert_true(info.gc_floor > hlc2);
  mh_expect_converged(&m, 0, 1);
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_used_twice_waits_for_expiry),
      cmocka_unit_test(test_token_used_twice_past_expiry_is_counted),
      cmocka_unit_test(test_mutual_revoke_holds_the_cut),
      cmocka_unit_test(test_settled_revoke_frees_the_cut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
