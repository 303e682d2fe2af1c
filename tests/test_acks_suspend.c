/* Members who stop acking (src/acks.c vs_acks_suspended_txn; docs/storage.md,
 * "Members who stop acking"): real vs_nodes of a managed mesh on the
 * in-memory mesh (tests/mesh_harness.h) with suspend_after_ms set to a
 * minute of virtual time. A member silent past the bound stops holding the
 * cut and counts again as soon as it acknowledges; a mesh that wrote
 * nothing for longer than the bound suspends nobody when one op arrives;
 * 0 suspends nobody; a store alone suspends nobody; a member whose ack a
 * store never held is not suspended there. Time is
 * virtual; nothing here depends on how fast the machine is. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "acks.h"
#include "vixsync/snapshot.h"
#include "vixsync/wal.h"
#include "fixture.h"
#include "internal.h"
#include "mesh_harness.h"
/* Invites that expire soon: a member's ops compact only once no other
 * admission can take its invite (compact_final.h). */
#define MN_INVITE_MS 2000ull
#include "member_nodes.h"

#define BOUND_MS 60000u /* suspend_after_ms of every node here */

static void configure(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  (void)i;
  cfg->suspend_after_ms = BOUND_MS;
  cfg->compact_every_ms = 0; /* compaction by hand here (the node's default compacts every 60 s) */
}

typedef struct one_cut {
  const uint8_t *origin;
  uint64_t cut;
} one_cut;

static vs_err one_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx) {
  assert_true(cut <= head);
  one_cut *o = ctx;
  if (memcmp(origin, o->origin, VS_ORIGIN_BYTES) == 0) o->cut = cut;
  return VS_OK;
}

/* Node i's cut of `origin`'s chain with the bound `after` (0: never). */
static uint64_t cut_of(mh_mesh *m, uint32_t i, uint32_t origin, uint64_t after, vs_acks_cut_info *info) {
  one_cut o = {m->ids[origin].pk, 0};
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  assert_err(vs_acks_cut_txn(txn, mn_store(m, i), after, one_cb, &o, info), VS_OK);
  mdb_txn_abort(txn);
  return o.cut;
}

static void three(mh_mesh *m, const char *tag) {
  mn_mesh(m, 3, 3, NULL, tag, 0xd1, 29, configure);
  mh_connect(m, 0, 1);
  mh_connect(m, 0, 2);
  mh_connect(m, 1, 2);
}

static void away(mh_mesh *m, uint32_t i) {
  for (uint32_t j = 0; j < m->n; j++)
    if (j != i) mh_disconnect(m, i, j);
  mh_close(m, i);
}

/* Node 2 goes away; 0 and 1 write on for longer than the bound: 2 leaves
 * the minimum (the cut reaches the heads, suspended 1) while 0 says the
 * cut without the bound stays where 2 acked. 2 comes back: it catches up,
 * acknowledges and counts again (suspended 0). */
static void test_silent_member_leaves_the_cut_and_returns(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "susp-return");
  mh_write(&m, 0, "put", "x", "1");
  mh_run_for(&m, 20000);
  uint64_t held0 = mn_head(&m, 0, 0);
  vs_acks_cut_info info;
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), held0);
  assert_int_equal(info.suspended, 0);
  away(&m, 2);
  /* Within the bound 2 still holds the cut. */
  for (int k = 0; k < 4; k++) {
    mh_write(&m, 0, "put", "y", "2");
    mh_write(&m, 1, "put", "z", "3");
    mh_run_for(&m, 5000);
  }
  assert_true(mn_head(&m, 0, 0) > held0);
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), held0);
  assert_int_equal(info.suspended, 0);
  assert_int_equal(mn_stats(&m, 0).members_suspended, 0);
  /* Past it (by the store's HLC: the writes move it). */
  for (int k = 0; k < 8; k++) {
    mh_write(&m, 0, "put", "y", "4");
    mh_write(&m, 1, "put", "z", "5");
    mh_run_for(&m, 10000);
  }
  for (uint32_t i = 0; i < 2; i++) {
    assert_int_equal(cut_of(&m, i, 0, BOUND_MS, &info), mn_head(&m, i, 0));
    assert_int_equal(cut_of(&m, i, 1, BOUND_MS, &info), mn_head(&m, i, 1));
    assert_int_equal(info.suspended, 1);
    assert_int_equal(info.members, 3);
    assert_int_equal(cut_of(&m, i, 0, 0, &info), held0); /* 0: never suspended */
    assert_int_equal(info.suspended, 0);
    vs_node_stats s = mn_stats(&m, i);
    assert_int_equal(s.members_suspended, 1);
    assert_int_equal(s.stable_behind, 0);
  }
  /* vs_store_compact judges with the store's bound (set by the node). */
  vs_compact_info ci;
  assert_err(vs_store_compact(mn_store(&m, 0), 1u << 20, &ci), VS_OK);
  assert_int_equal(ci.members_suspended, 1);
  assert_true(ci.ops_folded > 0);
  /* 2 returns before anything it lacks was compacted on node 1: it
   * catches up from 1 and counts again. */
  mh_open(&m, 2, 0);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 30000);
  mh_expect_converged(&m, 1, 2);
  for (uint32_t i = 1; i < 3; i++) {
    assert_int_equal(cut_of(&m, i, 1, BOUND_MS, &info), mn_head(&m, i, 1));
    assert_int_equal(info.suspended, 0);
    assert_int_equal(info.with_ack, 3);
    assert_int_equal(cut_of(&m, i, 1, 0, &info), mn_head(&m, i, 1)); /* it holds the cut again */
    assert_int_equal(mn_stats(&m, i).members_suspended, 0);
  }
  mh_free(&m);
}

/* A mesh that wrote nothing for three times the bound, then one op while
 * 2 is away: 2's last ack is old by the store's HLC, but the op it lacks
 * is new, so it is not suspended (it may be on its way). Only once that
 * op is older than the bound does 2 leave the minimum. */
static void test_quiet_mesh_then_one_op_suspends_nobody(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "susp-quiet");
  mh_write(&m, 0, "put", "q", "1");
  mh_run_for(&m, 20000);
  uint64_t held = mn_head(&m, 0, 0);
  mh_run_for(&m, 3 * BOUND_MS);
  away(&m, 2);
  mh_write(&m, 0, "put", "q", "2");
  mh_run_for(&m, 5000);
  vs_acks_cut_info info;
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), held);
  assert_int_equal(info.suspended, 0);
  assert_int_equal(mn_stats(&m, 0).members_suspended, 0);
  /* Time alone moves no HLC: 2 stays in until newer ops are written. */
  mh_run_for(&m, 2 * BOUND_MS);
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), held);
  assert_int_equal(info.suspended, 0);
  mh_write(&m, 1, "put", "q", "3");
  mh_run_for(&m, 5000);
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), mn_head(&m, 0, 0));
  assert_int_equal(info.suspended, 1);
  mh_free(&m);
}

/* Node 0 alone past the bound (1 and 2 away): both would be suspended,
 * but a store with no other member counted may be the one cut off (and its
 * own unsent ops must not pass for held): nothing is stable. When 1
 * returns and acknowledges, 2 alone is suspended and the cut moves. */
static void test_alone_suspends_nobody(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "susp-alone");
  mh_write(&m, 0, "put", "s", "1");
  mh_run_for(&m, 20000);
  uint64_t held = mn_head(&m, 0, 0);
  away(&m, 1);
  away(&m, 2);
  for (int k = 0; k < 8; k++) {
    mh_write(&m, 0, "put", "s", "2");
    mh_run_for(&m, 10000);
  }
  vs_acks_cut_info info;
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), 0);
  assert_int_equal(info.suspended, 2);
  assert_int_equal(mn_stats(&m, 0).stable_ops, 0);
  vs_compact_info ci;
  assert_err(vs_store_compact(mn_store(&m, 0), 1u << 20, &ci), VS_OK);
  assert_int_equal(ci.ops_folded, 0);
  assert_true(mn_head(&m, 0, 0) > held);
  mh_open(&m, 1, 0);
  mh_connect(&m, 0, 1);
  mh_run_for(&m, 20000);
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), mn_head(&m, 0, 0));
  assert_int_equal(info.suspended, 1);
  mh_free(&m);
}

/* A member none of whose acks reached a store is never suspended there
 * (a store seeded from a snapshot, or just rebased, holds none yet): it
 * holds every cut at 0 until one arrives. Shown by deleting node 0's
 * record of 2's ack: the cut falls to 0 and 2 is not counted suspended. */
static void test_no_ack_held_is_not_silence(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "susp-noack");
  mh_write(&m, 0, "put", "s", "1");
  mh_run_for(&m, 20000);
  away(&m, 2);
  for (int k = 0; k < 8; k++) {
    mh_write(&m, 0, "put", "s", "2");
    mh_run_for(&m, 10000);
  }
  vs_acks_cut_info info;
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), mn_head(&m, 0, 0));
  assert_int_equal(info.suspended, 1);
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(&m, 0), true, &txn), VS_OK);
  assert_err(vs_acks_del_txn(txn, mn_store(&m, 0), m.ids[2].pk), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  assert_int_equal(cut_of(&m, 0, 0, BOUND_MS, &info), 0);
  assert_int_equal(info.suspended, 0);
  mh_free(&m);
}

/* The HLC of node i's newest op of `origin`'s chain. */
static uint64_t head_hlc(mh_mesh *m, uint32_t i, uint32_t origin) {
  uint64_t seq = 0, hlc = 0;
  uint8_t hash[VS_HASH_BYTES];
  assert_err(vs_wal_head(mn_store(m, i), m->ids[origin].pk, &seq, hash, &hlc), VS_OK);
  return hlc;
}

/* Compact node i to the end; its info (gc_pinned: the last call's). */
static vs_compact_info compact_all(mh_mesh *m, uint32_t i) {
  vs_compact_info ci;
  int k = 0;
  do assert_err(vs_store_compact(mn_store(m, i), 1u << 20, &ci), VS_OK);
  while (ci.more && ++k < 64);
  return ci;
}

/* 0 and 1 put and delete; i writes too (offline if it is cut off). */
static void churn(mh_mesh *m, uint32_t steps, uint32_t also) {
  for (uint32_t k = 0; k < steps; k++) {
    char t[16];
    snprintf(t, sizeof t, "t%u", k % 7);
    mh_write(m, k % 2, k % 3 == 0 ? "del" : "put", t, k % 3 == 0 ? "" : "v");
    mh_write(m, also, "put", "mine", "w");
    mh_run_for(m, 5000);
  }
}

/* Node 2 is cut off (its store stays open: it writes offline-first) for
 * longer than suspend_after but less than twice it, while 0 and 1 put
 * and delete: 2 leaves the cut (the log compacts past it) but its last op
 * held bounds what tombstones drop (gc_pinned, gc_floor below it), so
 * when it comes back its offline writes are refused nowhere (without the
 * pin every peer's floor passed them: vix-sim, the mesh diverged). Past
 * twice the bound it no longer holds the floor (storage stays bounded). */
static void test_silent_member_pins_gc(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "susp-gcpin");
  mh_write(&m, 2, "put", "mine", "0");
  mh_run_for(&m, 20000);
  mh_disconnect(&m, 2, 0);
  mh_disconnect(&m, 2, 1);
  churn(&m, 18, 2); /* 90 s: past the bound, within twice it */
  for (uint32_t i = 0; i < 2; i++) {
    vs_compact_info ci = compact_all(&m, i);
    assert_int_equal(ci.members_suspended, 1);
    assert_true(ci.gc_floor <= head_hlc(&m, i, 2)); /* below what 2 wrote offline */
    assert_true(ci.gc_pinned >= 1);
  }
  mh_connect(&m, 2, 0);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 60000);
  mh_expect_converged(&m, 0, 2);
  mh_expect_converged(&m, 1, 2);
  for (uint32_t i = 0; i < 3; i++) {
    assert_int_equal(mn_stats(&m, i).runs_below_floor, 0);
    assert_int_equal(mn_orphans(&m, i), 0);
  }
  assert_int_equal(mn_head(&m, 0, 2), mn_head(&m, 2, 2)); /* every offline write arrived */
  /* Away again, past twice the bound: it no longer holds the floor. */
  mh_disconnect(&m, 2, 0);
  mh_disconnect(&m, 2, 1);
  churn(&m, 30, 0); /* 150 s */
  vs_compact_info ci = compact_all(&m, 0);
  assert_int_equal(ci.members_suspended, 1);
  assert_int_equal(ci.gc_pinned, 0);
  assert_true(ci.gc_floor > head_hlc(&m, 0, 2));
  mh_free(&m);
}

/* A device joins on an invite of 0's (its admission is in its own chain)
 * and writes offline; nobody hears of it. Once the invite expires the
 * others compact, but the invite (expired, unused in their view) holds
 * the GC bound below its HLC for twice suspend_after: the device that
 * turns up within that has none of its writes refused below a floor. */
static void test_expired_invite_pins_gc(void **state) {
  (void)state;
  mh_mesh m;
  mn_mesh(&m, 4, 3, NULL, "susp-gcinv", 0xd5, 31, configure);
  mh_connect(&m, 0, 1);
  mh_connect(&m, 0, 2);
  mh_connect(&m, 1, 2);
  mh_run_for(&m, 10000);
  mn_join(&m, 0, 3, VS_MESH_WRITER); /* nobody is linked to 3 */
  mh_restart(&m, 3);                  /* as vix-node join: the daemon starts on the joined store */
  churn(&m, 16, 3); /* 80 s */
  for (uint32_t i = 0; i < 3; i++) {
    vs_compact_info ci = compact_all(&m, i);
    assert_int_equal(ci.pending_invites, 0); /* expired */
    assert_true(ci.gc_floor < head_hlc(&m, 3, 3));
    assert_true(ci.gc_pinned >= 1);
  }
  mh_connect(&m, 3, 0);
  mh_run_for(&m, 60000);
  for (uint32_t i = 0; i < 3; i++) {
    mh_expect_converged(&m, i, 3);
    assert_int_equal(mn_stats(&m, i).runs_below_floor, 0);
  }
  mh_free(&m);
}

/* Node 2 does not judge its own silence (suspend_after 0 on it alone: a
 * misconfigured device; the bound is meant to be the same on every
 * member), so it is no too-late replica to itself and sends its writes.
 */
static void configure_2_unbounded(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  configure(m, i, cfg);
  if (i == 2) cfg->suspend_after_ms = 0;
}

/* Node 1 declines every snapshot request (it can make none that small). */
static void configure_1_no_snapshot(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  configure(m, i, cfg);
  if (i == 1) cfg->snap_bytes_max = 1;
}

/* Node 2 away for 150 s, past twice the bound: the pin is gone. It comes
 * back through node 1 only, which never compacted, and is a too-late
 * replica (back after more than 1.75 x the bound out of touch, with
 * writes no peer holds): it sends none of them, rebases onto node 1's
 * snapshot and orphans every one (surfaced once); then nothing of it is
 * refused anywhere, nothing splits, all converge and its chain resumes
 * from the mesh's head. (Before, node 1 took them all and relayed them to
 * node 0, whose floor had passed them: refused there for good, the mesh
 * split: test_floor_split_counted.) */
static void test_too_late_replica_orphans_its_absence(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "susp-late");
  mh_write(&m, 2, "put", "mine", "0");
  mh_run_for(&m, 20000);
  uint64_t held = mn_head(&m, 0, 2);
  assert_int_equal(held, mn_head(&m, 2, 2));
  mh_disconnect(&m, 2, 0);
  mh_disconnect(&m, 2, 1);
  churn(&m, 30, 2); /* 150 s: past twice the bound; 2 writes 30 times */
  vs_compact_info ci = compact_all(&m, 0);
  assert_int_equal(ci.gc_pinned, 0);
  assert_true(ci.gc_floor > head_hlc(&m, 0, 2) + 1);
  assert_int_equal(mn_head(&m, 2, 2), held + 30);
  /* First node 1 can make no snapshot (snap_bytes_max 1: it declines):
   * node 2 knows it is late, sends none of its writes, and crashes before
   * any rebase. Back, it knows again (the contact it keeps was not moved
   * while late) and still sends none; then node 1 serves. */
  m.configure = configure_1_no_snapshot;
  mh_restart(&m, 1);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 5000);
  assert_int_equal(mn_stats(&m, 2).late_returns, 1);
  assert_int_equal(mn_stats(&m, 2).late_rebases, 0);
  assert_true(mn_stats(&m, 2).snap_declined >= 1);
  mh_disconnect(&m, 2, 1);
  mh_restart(&m, 2);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 5000);
  assert_int_equal(mn_stats(&m, 2).late_returns, 1); /* this lifetime's */
  assert_int_equal(mn_head(&m, 1, 2), held);
  m.configure = configure;
  mh_disconnect(&m, 2, 1);
  mh_restart(&m, 1);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 30000);
  vs_node_stats s2 = mn_stats(&m, 2);
  assert_int_equal(s2.late_returns, 1);
  assert_int_equal(s2.late_rebases, 1);
  assert_int_equal(mn_orphans(&m, 2), 30);
  assert_int_equal(mn_head(&m, 1, 2), held); /* none of them sent */
  mh_connect(&m, 2, 0);
  mh_run_for(&m, 30000);
  for (uint32_t i = 0; i < 3; i++) {
    assert_int_equal(mn_stats(&m, i).runs_below_floor, 0);
    assert_int_equal(mn_stats(&m, i).floor_splits, 0);
  }
  mh_expect_converged(&m, 0, 2);
  mh_expect_converged(&m, 1, 2);
  /* Its next write follows the mesh's head of its chain: taken everywhere. */
  mh_write(&m, 2, "put", "mine", "after");
  mh_run_for(&m, 10000);
  assert_int_equal(mn_head(&m, 0, 2), held + 1);
  mh_expect_converged(&m, 0, 2);
  assert_int_equal(mn_stats(&m, 2).late_returns, 1); /* once */
  mh_free(&m);
}

/* A device that does not judge its own silence (configure_2_unbounded)
 * comes back past twice the bound through node 1 only, which never
 * compacted: 1 takes its writes and relays them to 0, whose floor passed
 * them: 0 refuses them for good and counts a floor split (detected, not
 * mended: docs/storage.md, "Members who stop acking"); a run refused from
 * its own author is not one. */
static void test_floor_split_counted(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "susp-split");
  m.configure = configure_2_unbounded;
  mh_restart(&m, 2);
  mh_write(&m, 2, "put", "mine", "0");
  mh_run_for(&m, 20000);
  mh_disconnect(&m, 2, 0);
  mh_disconnect(&m, 2, 1);
  churn(&m, 30, 2); /* 150 s: past twice the bound */
  vs_compact_info ci = compact_all(&m, 0);
  assert_int_equal(ci.gc_pinned, 0);
  assert_true(ci.gc_floor > head_hlc(&m, 0, 2) + 1);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 30000);
  assert_int_equal(mn_head(&m, 1, 2), mn_head(&m, 2, 2)); /* 1 took them all */
  vs_node_stats s0 = mn_stats(&m, 0);
  assert_true(s0.runs_below_floor > 0);
  assert_true(s0.floor_splits > 0);
  assert_true(mn_head(&m, 0, 2) < mn_head(&m, 1, 2));
  /* From the author itself: refused, not a split. */
  mh_disconnect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  uint64_t splits = mn_stats(&m, 0).floor_splits, below = mn_stats(&m, 0).runs_below_floor;
  mh_run_for(&m, 30000);
  assert_true(mn_stats(&m, 0).runs_below_floor > below);
  assert_int_equal(mn_stats(&m, 0).floor_splits, splits);
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_silent_member_leaves_the_cut_and_returns),
      cmocka_unit_test(test_quiet_mesh_then_one_op_suspends_nobody),
      cmocka_unit_test(test_alone_suspends_nobody),
      cmocka_unit_test(test_no_ack_held_is_not_silence),
      cmocka_unit_test(test_silent_member_pins_gc),
      cmocka_unit_test(test_expired_invite_pins_gc),
      cmocka_unit_test(test_too_late_replica_orphans_its_absence),
      cmocka_unit_test(test_floor_split_counted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
