/* Two admins revoke each other apart, and a member's vector falls on the
 * loser's revoke (src/node_member.c nd_member_fall_exempt): real vs_nodes
 * on the in-memory mesh (tests/mesh_harness.h).
 *
 * Node 0 (the creator) and node 1 (an admin) revoke each other while apart.
 * Node 3 holds both revokes: node 0's wins there (node 1's lies past its
 * cut). Node 2 took node 1's revoke first and voided node 0's op past its
 * cut, so its vector for node 0 fell below what node 3 knew it held. Node
 * 3 must send node 0's chain again from that cut: the first op past it
 * links node 0's revoke on node 2 (an orphan record, mgate.c run_links),
 * and node 2's view comes to node 3's. Before the fix node 3 kept node 2's
 * old entry and sent runs that started past node 2's head, which never
 * link: the views never agreed (vix-sim's mutual-revoke swarm, seed 40). */
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

/* Node `i`'s record of node `who`: *revoked and its cut. */
static void member_of(mh_mesh *m, uint32_t i, uint32_t who, bool *revoked, uint64_t *cut) {
  vs_mesh_member_info v[8];
  uint32_t c = 0;
  assert_err(vs_mesh_members(mn_store(m, i), v, 8, &c), VS_OK);
  for (uint32_t k = 0; k < c; k++) {
    if (memcmp(v[k].pk, m->ids[who].pk, VS_ORIGIN_BYTES) != 0) continue;
    *revoked = v[k].revoked;
    *cut = v[k].revoked ? v[k].cut_seq : 0;
    return;
  }
  fail_msg("node %u does not list node %u", i, who);
}

static void test_mutual_revoke_fallen_vector(void **state) {
  (void)state;
  const uint8_t roles[4] = {0, VS_MESH_ADMIN, VS_MESH_WRITER, VS_MESH_WRITER};
  mh_mesh m;
  mn_mesh(&m, 4, 4, roles, "nmrv", 0xa1, 40, NULL);
  mn_drop d = {3, 2, false, 0}; /* everything node 3 sends node 2 is lost while dropping */
  m.ctx = &d;
  m.intercept = mn_drop_link;
  for (uint32_t i = 0; i < 4; i++)
    for (uint32_t j = i + 1; j < 4; j++) mh_connect(&m, i, j);
  mh_run_for(&m, 15000);
  /* Node 1 away: node 0 writes once more; 2 and 3 hold it (node 3's
   * session with node 2 knows it). */
  for (uint32_t j = 0; j < 4; j++)
    if (j != 1) mh_disconnect(&m, 1, j);
  uint64_t cut0 = mn_head(&m, 0, 0);
  mh_write(&m, 0, "put", "past-cut", "x");
  mh_run_for(&m, 5000);
  assert_int_equal(mn_head(&m, 2, 0), cut0 + 1);
  assert_int_equal(mn_head(&m, 3, 0), cut0 + 1);
  /* Node 0 away from node 2; nothing of node 3 reaches node 2 for now. */
  mh_disconnect(&m, 0, 2);
  d.dropping = true;
  uint64_t c01 = 0, c10 = 0;
  assert_err(vs_mesh_revoke(mn_store(&m, 0), m.ids[1].pk, m.now_ms, &c01), VS_OK);
  assert_err(vs_mesh_revoke(mn_store(&m, 1), m.ids[0].pk, m.now_ms, &c10), VS_OK);
  assert_int_equal(c10, cut0); /* node 1 never saw node 0's last write */
  mh_run_for(&m, 5000);        /* node 3 takes node 0's revoke (from node 0) */
  /* Node 1 reaches node 2: node 2 takes node 1's revoke, voids node 0's
   * op past the cut, and passes node 1's chain on to node 3. */
  mh_connect(&m, 2, 1); /* node 2 dials, on the key it holds (node 1 rekeyed) */
  mh_run_for(&m, 10000);
  assert_int_equal(mn_head(&m, 2, 0), cut0);
  bool rv = false;
  uint64_t cut = 0;
  member_of(&m, 2, 0, &rv, &cut);
  assert_true(rv);
  assert_int_equal(cut, cut0);
  member_of(&m, 3, 1, &rv, &cut); /* node 0's revoke is senior at node 3 */
  assert_true(rv);
  assert_int_equal(cut, c01);
  assert_true(d.dropped > 0);
  d.dropping = false;
  mh_run_for(&m, 120000);
  /* Node 2 holds node 0's revoke now, and its view is node 3's. */
  member_of(&m, 2, 1, &rv, &cut);
  assert_true(rv);
  assert_int_equal(cut, c01);
  member_of(&m, 2, 0, &rv, &cut);
  assert_false(rv);
  assert_true(mn_has(&m, 2, "past-cut"));
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mutual_revoke_fallen_vector),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
