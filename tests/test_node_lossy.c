/* vs_node over a lossy, reordering network (tests/mesh_harness.h's faults):
 * frames are dropped and delivered late from a seeded PRNG while every
 * node writes; then the network heals (links that a lost handshake closed
 * are dialled again) and the nodes must converge, having refused no honest
 * frame as forged or malformed. A small, fast cousin of
 * test_node_property's chaos phase, on the shared harness. */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "mesh_harness.h"
#include "testutil.h"
#include "vixsync/vixsync.h"
#include "vixsync/node.h"

#define LOSSY_NODES 4u

static void lossy_run(uint64_t seed) {
  mh_mesh m;
  mh_init(&m, LOSSY_NODES, "lossy", 0x60, seed);
  m.drop_permille = 50;
  m.reorder_permille = 150;
  for (uint32_t i = 0; i < LOSSY_NODES; i++) {
    for (uint32_t j = i + 1; j < LOSSY_NODES; j++) mh_connect(&m, i, j);
  }
  for (uint32_t k = 0; k < 40; k++) {
    char target[16], value[16];
    snprintf(target, sizeof target, "k%u", (unsigned)(k % 5));
    snprintf(value, sizeof value, "%u", (unsigned)k);
    mh_write(&m, k % LOSSY_NODES, k % 3 == 0 ? "incr" : "put", target, value);
    mh_run_for(&m, 250);
  }
  assert_true(m.dropped > 0);
  assert_true(m.reordered > 0);
  /* Heal: no more faults, every link up again. */
  m.drop_permille = m.reorder_permille = 0;
  for (uint32_t i = 0; i < LOSSY_NODES; i++) {
    for (uint32_t j = i + 1; j < LOSSY_NODES; j++) {
      if (!m.link[i][j]) mh_connect(&m, i, j);
    }
  }
  mh_run_for(&m, 60000);
  for (uint32_t i = 1; i < LOSSY_NODES; i++) mh_expect_converged(&m, 0, i);
  for (uint32_t i = 0; i < LOSSY_NODES; i++) {
    vs_node_stats st;
    vs_node_stats_get(m.nodes[i], &st);
    assert_int_equal(st.rejected_malformed + st.runs_forged + st.runs_fork, 0);
  }
  print_message("seed %llu: %llu delivered, %llu dropped, %llu reordered\n", (unsigned long long)seed,
                (unsigned long long)m.delivered, (unsigned long long)m.dropped, (unsigned long long)m.reordered);
  mh_free(&m);
}

static void test_node_lossy_converges(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 5; seed++) lossy_run(seed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_lossy_converges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
