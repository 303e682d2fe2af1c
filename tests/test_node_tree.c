/* The spanning tree new runs travel along (wire v6, issue 18;
 * docs/protocol.md, "The spanning tree"): in a full mesh each op reaches
 * each node about once; a node on the tree that stops passing runs on (a
 * black hole, or a liar that made itself the root) costs a graft, not
 * convergence. Time is virtual. */
#define _XOPEN_SOURCE 700

#include <stdio.h>

#include "mesh_harness.h"
#include "testutil.h"

static vs_node_stats stats(mh_mesh *m, uint32_t i) {
  vs_node_stats st;
  vs_node_stats_get(m->nodes[i], &st);
  return st;
}

/* The tree's id of node i (node_tree.c: the first 8 bytes of its key, LE). */
static uint64_t tree_id(const mh_mesh *m, uint32_t i) {
  uint64_t v = 0;
  for (int b = 7; b >= 0; b--) v = v << 8 | m->ids[i].pk[b];
  return v == 0 ? 1 : v;
}

static uint32_t lowest(const mh_mesh *m) {
  uint32_t r = 0;
  for (uint32_t i = 1; i < m->n; i++)
    if (tree_id(m, i) < tree_id(m, r)) r = i;
  return r;
}

/* Five nodes, every pair linked; 50 writes on each node, spread over 10 s
 * of virtual time: every node converges, and duplicate deliveries are
 * rare (before wire v6 each op came from every peer: about 3 duplicates
 * per useful application here). */
static void test_full_mesh_delivers_about_once(void **state) {
  (void)state;
  enum { N = 5, WRITES = 50 };
  mh_mesh m;
  mh_init(&m, N, "tree", 0x31, 7);
  for (uint32_t i = 0; i < N; i++)
    for (uint32_t j = i + 1; j < N; j++) mh_connect(&m, i, j);
  mh_run_for(&m, 2000);
  for (uint32_t k = 0; k < WRITES; k++) {
    for (uint32_t i = 0; i < N; i++) {
      char key[32];
      snprintf(key, sizeof key, "k%u-%u", i, k);
      mh_write(&m, i, "put", key, "v");
    }
    mh_run_for(&m, 200);
  }
  mh_run_for(&m, 20000);
  uint64_t applied = 0, dup = 0, moves = 0;
  for (uint32_t i = 0; i < N; i++) {
    vs_node_stats st = stats(&m, i);
    applied += st.ops_applied;
    dup += st.ops_duplicate;
    moves += st.tree_moves;
    if (i > 0) mh_expect_converged(&m, 0, i);
  }
  assert_true(applied >= (uint64_t)WRITES * N * (N - 1)); /* every op reached every other node */
  print_message("full mesh of %u: %llu applications, %llu duplicates, %llu tree moves\n", N,
                (unsigned long long)applied, (unsigned long long)dup, (unsigned long long)moves);
  assert_true(dup * 10 <= applied); /* at most 0.1 duplicates per useful application */
  assert_true(moves >= N - 1);      /* every node but the root took a parent */
  mh_free(&m);
}

/* Three nodes, all linked; the root (the lowest id: every other node's
 * parent) stops passing anything on (its frames are lost, its sessions
 * stay up): a black hole, or a key holder that made itself the root and
 * forwards nothing. A write on one leaf reaches the other leaf over their
 * direct link, which carried only vectors: the vector shows the lack and
 * the leaf grafts the link. */
static bool drop_from_root(mh_mesh *m, uint32_t from, const vs_node_out *out) {
  const uint32_t *root = m->ctx;
  return root[1] != 0 && from == root[0] && out->kind == VS_NODE_OUT_SEND;
}

static void test_black_hole_root_costs_a_graft(void **state) {
  (void)state;
  mh_mesh m;
  mh_init(&m, 3, "treebh", 0x41, 9);
  uint32_t root[2] = {lowest(&m), 0};
  m.ctx = root;
  m.intercept = drop_from_root;
  mh_connect(&m, 0, 1);
  mh_connect(&m, 0, 2);
  mh_connect(&m, 1, 2);
  mh_write(&m, 0, "put", "warm", "1");
  mh_run_for(&m, 3000);
  for (uint32_t i = 1; i < 3; i++) mh_expect_converged(&m, 0, i);
  uint32_t a = (root[0] + 1) % 3, b = (root[0] + 2) % 3;
  uint64_t grafts = stats(&m, b).grafts;
  root[1] = 1; /* the root goes silent */
  for (int k = 0; k < 10; k++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", k);
    mh_write(&m, a, "put", key, "x");
  }
  mh_run_for(&m, 5000);
  mh_expect_converged(&m, a, b);
  assert_true(stats(&m, b).grafts > grafts); /* b asked a for runs: the tree did not bring them */
  assert_true(stats(&m, a).ops_sent > 0);
  mh_free(&m);
}

/* A line 0 - 1 - 2 - 3: the only tree there is. Cutting the middle link
 * and linking 0 and 3 directly reforms it; writes on every node converge
 * and nothing travels twice over a link (no duplicates at all on a line,
 * and few around the change). */
static void test_tree_reforms_when_a_link_goes(void **state) {
  (void)state;
  mh_mesh m;
  mh_init(&m, 4, "treeline", 0x51, 11);
  mh_connect(&m, 0, 1);
  mh_connect(&m, 1, 2);
  mh_connect(&m, 2, 3);
  for (uint32_t i = 0; i < 4; i++) mh_write(&m, i, "put", "a", "1");
  mh_run_for(&m, 5000);
  for (uint32_t i = 1; i < 4; i++) mh_expect_converged(&m, 0, i);
  uint64_t dup = 0;
  for (uint32_t i = 0; i < 4; i++) dup += stats(&m, i).ops_duplicate;
  assert_int_equal(dup, 0);
  mh_disconnect(&m, 1, 2);
  mh_connect(&m, 0, 3);
  for (uint32_t i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof key, "b%u", i);
    mh_write(&m, i, "put", key, "2");
  }
  mh_run_for(&m, 10000);
  for (uint32_t i = 1; i < 4; i++) mh_expect_converged(&m, 0, i);
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_mesh_delivers_about_once),
      cmocka_unit_test(test_black_hole_root_costs_a_graft),
      cmocka_unit_test(test_tree_reforms_when_a_link_goes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
