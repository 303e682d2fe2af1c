/* Sessions in a managed mesh (src/node_member.c, docs/membership.md
 * "Sessions"): real vs_nodes on the in-memory mesh (tests/mesh_harness.h).
 * A device that joined syncs through probation; a revoke closes the
 * revoked device's sessions at once, it cannot come back, and its writes
 * past the cut reach nobody; a key holder that was never admitted stores
 * nothing anywhere and is closed. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "fixture.h"
#include "mesh_harness.h"
#include "member_nodes.h"
#include "vixsync/mesh.h"
#include "vixsync/node.h"
#include "vixsync/state.h"
#include "vixsync/wal.h"

static vs_store *st(mh_mesh *m, uint32_t i) { return mn_store(m, i); }
static vs_node_stats stats(mh_mesh *m, uint32_t i) { return mn_stats(m, i); }
static void join(mh_mesh *m, uint32_t admin, uint32_t dev, uint8_t role) { mn_join(m, admin, dev, role); }
static bool has(mh_mesh *m, uint32_t i, const char *target) { return mn_has(m, i, target); }
static uint64_t head(mh_mesh *m, uint32_t i, uint32_t origin) { return mn_head(m, i, origin); }

static uint32_t members(mh_mesh *m, uint32_t i) {
  uint32_t c = 0;
  assert_err(vs_mesh_members(st(m, i), NULL, 0, &c), VS_OK);
  return c;
}

/* 0 creates; 1 and 2 join with 0's invites while 0 is the only one they
 * know; 3 joins with an invite of 0 and connects to 1 only (0 is away):
 * it is admitted through 1, which holds the invite. Everyone converges. */
static void test_member_join_through_probation(void **state) {
  (void)state;
  mh_mesh m;
  mh_init(&m, 4, "nmem-join", 0x61, 11);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(st(&m, 0), m.now_ms, mesh_id), VS_OK);
  join(&m, 0, 1, VS_MESH_WRITER);
  join(&m, 0, 2, VS_MESH_WRITER);
  join(&m, 0, 3, VS_MESH_WRITER);
  mh_write(&m, 1, "put", "from1", "a");
  mh_connect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  mh_run(&m, 2000);
  assert_int_equal(members(&m, 0), 3);
  assert_int_equal(members(&m, 1), 3);
  assert_int_equal(members(&m, 2), 3);
  assert_true(has(&m, 2, "from1"));
  mh_expect_converged(&m, 0, 1);
  mh_expect_converged(&m, 0, 2);
  /* 3 reaches 1 only: 1 holds 0's invite of 3, so 3's admit takes there. */
  mh_write(&m, 3, "put", "from3", "b");
  mh_connect(&m, 3, 1);
  mh_run(&m, 2000);
  assert_true(has(&m, 1, "from3"));
  assert_int_equal(members(&m, 1), 4);
  assert_int_equal(members(&m, 3), 4);
  mh_expect_converged(&m, 1, 3);
  for (uint32_t i = 0; i < 4; i++) {
    vs_node_stats s = stats(&m, i);
    assert_int_equal(s.rejected_revoked, 0);
    assert_int_equal(s.rejected_denied, 0);
  }
  mh_free(&m);
}

/* 0 revokes 2 while 2 is connected to 0 and 1: both close 2's sessions at
 * once; 2's later writes reach nobody; 2 cannot reconnect; 0 and 1 keep
 * syncing. */
static void test_member_revoke_closes_sessions(void **state) {
  (void)state;
  mh_mesh m;
  mh_init(&m, 3, "nmem-rev", 0x71, 12);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(st(&m, 0), m.now_ms, mesh_id), VS_OK);
  join(&m, 0, 1, VS_MESH_WRITER);
  join(&m, 0, 2, VS_MESH_WRITER);
  mh_connect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 2, 1);
  mh_write(&m, 2, "put", "before", "x");
  mh_run(&m, 2000);
  assert_true(has(&m, 0, "before") && has(&m, 1, "before"));
  assert_int_equal(vs_node_peers_ready(m.nodes[2]), 2);
  uint64_t cut = 0;
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, &cut), VS_OK);
  assert_int_equal(cut, head(&m, 0, 2));
  mh_write(&m, 2, "put", "after", "y"); /* 2 has not heard yet: its store takes it */
  mh_run(&m, 2000);
  assert_true(stats(&m, 0).rejected_revoked >= 1);
  assert_true(stats(&m, 1).rejected_revoked >= 1);
  assert_false(has(&m, 0, "after"));
  assert_false(has(&m, 1, "after"));
  assert_int_equal(head(&m, 0, 2), cut);
  assert_int_equal(head(&m, 1, 2), cut);
  assert_true(has(&m, 1, "before"));
  assert_int_equal(vs_node_peers_ready(m.nodes[2]), 0);
  /* It dials again: refused at the handshake. */
  uint64_t refused = stats(&m, 1).rejected_revoked;
  mh_disconnect(&m, 2, 1);
  mh_connect(&m, 2, 1);
  mh_run(&m, 2000);
  assert_true(stats(&m, 1).rejected_revoked > refused);
  assert_false(has(&m, 1, "after"));
  /* The others sync on. */
  mh_write(&m, 1, "put", "on", "z");
  mh_run(&m, 2000);
  assert_true(has(&m, 0, "on"));
  assert_false(has(&m, 2, "on"));
  mh_expect_converged(&m, 0, 1);
  mh_free(&m);
}

/* A key holder that was never admitted (its own store is an open mesh):
 * on probation it is sent no run, its data run is refused, it is closed,
 * and nothing of it is stored. */
static void test_member_outsider_closed(void **state) {
  (void)state;
  mh_mesh m;
  mh_init(&m, 2, "nmem-out", 0x79, 13);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(st(&m, 0), m.now_ms, mesh_id), VS_OK);
  mh_write(&m, 0, "put", "secret", "s");
  mh_write(&m, 1, "put", "junk", "j");
  mh_connect(&m, 1, 0);
  mh_run(&m, 2000);
  assert_int_equal(head(&m, 0, 1), 0);
  assert_false(has(&m, 0, "junk"));
  assert_false(has(&m, 1, "secret"));
  assert_true(stats(&m, 0).rejected_not_member >= 1);
  assert_int_equal(vs_node_peers_ready(m.nodes[0]), 0);
  mh_free(&m);
}

/* What an application is told of ops voided where it had them applied. */
typedef struct voids_seen {
  uint32_t calls;
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t from, to;
} voids_seen;

static voids_seen g_voids[3];

static void on_void(void *ctx, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint64_t to) {
  voids_seen *v = ctx;
  v->calls++;
  memcpy(v->origin, origin, VS_ORIGIN_BYTES);
  v->from = from;
  v->to = to;
}

static void with_on_void(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  cfg->on_void = on_void;
  cfg->on_void_ctx = &g_voids[i];
}

/* 2 writes while 0 is away; 1 takes it; 0 revokes 2 with the cut it holds
 * (below that write): when 1 takes the revoke, the write is voided there
 * and 1's application is told (cfg.on_void): 2's ops cut+1..its head. */
static void test_member_on_void_after_cut(void **state) {
  (void)state;
  memset(g_voids, 0, sizeof g_voids);
  mh_mesh m;
  mn_mesh(&m, 3, 3, NULL, "nmem-void", 0x91, 14, with_on_void);
  mh_connect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 2, 1);
  mh_run(&m, 2000);
  mh_disconnect(&m, 1, 0);
  mh_disconnect(&m, 2, 0);
  mh_write(&m, 2, "put", "late", "x");
  mh_run(&m, 2000);
  assert_true(has(&m, 1, "late"));
  uint64_t cut = 0;
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, &cut), VS_OK);
  uint64_t head2 = head(&m, 1, 2);
  assert_true(head2 > cut);
  mh_connect(&m, 1, 0);
  mh_run(&m, 2000);
  assert_false(has(&m, 1, "late"));
  assert_int_equal(head(&m, 1, 2), cut);
  assert_int_equal(g_voids[1].calls, 1);
  assert_memory_equal(g_voids[1].origin, m.ids[2].pk, VS_ORIGIN_BYTES);
  assert_int_equal(g_voids[1].from, cut + 1);
  assert_int_equal(g_voids[1].to, head2);
  assert_int_equal(g_voids[0].calls, 0); /* 0 never held them */
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_member_join_through_probation),
      cmocka_unit_test(test_member_revoke_closes_sessions),
      cmocka_unit_test(test_member_outsider_closed),
      cmocka_unit_test(test_member_on_void_after_cut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
