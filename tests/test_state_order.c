/* tests/test_state_order.c: pins include/vixsync/state.h: late bases
 * arriving in every order through vs_wal_append give the value the rule
 * says, checked against an independent O(n^2) model of the rule.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "state_model.h"

/* ====================================================================== */
/* 2. Late bases: the value follows the rule whatever the arrival order   */
/* ====================================================================== */

/* Build each origin's ops with vs_write in its own source store. */
static size_t build_sources(const char *dir, const step *steps, size_t n, uint8_t origins[][VS_ORIGIN_BYTES],
                            int n_origins, ref_op *ops) {
  size_t held = 0;
  for (int o = 0; o < n_origins; o++) {
    char name[16];
    snprintf(name, sizeof name, "src%d", o);
    vs_store *s = open_sub(dir, name);
    for (size_t i = 0; i < n; i++)
      if (steps[i].origin == o) wrs(s, origins[o], steps[i].kind, steps[i].target, steps[i].payload, steps[i].now_ms);
    collect c = {ops + held, 0, n - held};
    assert_err(vs_wal_replay(s, 1, collect_cb, &c), VS_OK);
    held += c.n;
    vs_store_close(s);
  }
  assert_int_equal(held, n);
  return held;
}

/* Next permutation in lexicographic order; false after the last. */
static bool next_perm(size_t *p, size_t n) {
  if (n < 2) return false;
  size_t i = n - 1;
  while (i > 0 && p[i - 1] >= p[i]) i--;
  if (i == 0) return false;
  size_t j = n - 1;
  while (p[j] <= p[i - 1]) j--;
  size_t t = p[i - 1];
  p[i - 1] = p[j];
  p[j] = t;
  for (size_t a = i, b = n - 1; a < b; a++, b--) {
    t = p[a];
    p[a] = p[b];
    p[b] = t;
  }
  return true;
}

/* Every interleaving that keeps each origin's order: append into a fresh
 * store, after each op compare the dump with the model of the ops held, and
 * at the end with `final` (hand-computed) and across interleavings. */
static void run_interleavings(const char *dir, const ref_op *ops, size_t n, const sbuf *final) {
  size_t perm[8];
  assert_true(n <= 8);
  for (size_t i = 0; i < n; i++) perm[i] = i;
  uint8_t first_hash[VS_HASH_BYTES];
  unsigned runs = 0;
  do {
    bool keeps = true; /* ops of one origin appear in seq order */
    for (size_t i = 0; i < n && keeps; i++)
      for (size_t j = i + 1; j < n && keeps; j++)
        if (memcmp(ops[perm[i]].origin, ops[perm[j]].origin, VS_ORIGIN_BYTES) == 0 &&
            ops[perm[i]].seq > ops[perm[j]].seq)
          keeps = false;
    if (!keeps) continue;
    char name[16];
    snprintf(name, sizeof name, "t%u", runs);
    vs_store *s = open_sub(dir, name);
    bool held[8] = {false};
    for (size_t i = 0; i < n; i++) {
      assert_err(append_ref(s, &ops[perm[i]], T0_MS), VS_OK);
      held[perm[i]] = true;
      sbuf got_d = {0}, want_d = {0};
      assert_err(dump_ser(s, true, &got_d, NULL), VS_OK);
      ref_dump(ops, n, held, true, &want_d);
      if (!sb_equal(&got_d, &want_d)) {
        print_ser("model", &want_d);
        print_ser("store", &got_d);
        fail_msg("interleaving %u: state after %zu ops differs from the model", runs, i + 1);
      }
      sb_free(&got_d);
      sb_free(&want_d);
    }
    sbuf got_d = {0};
    assert_err(dump_ser(s, true, &got_d, NULL), VS_OK);
    if (!sb_equal(&got_d, final)) {
      print_ser("expected", final);
      print_ser("store", &got_d);
      fail_msg("interleaving %u: final state differs from the expected one", runs);
    }
    sb_free(&got_d);
    uint8_t hash[VS_HASH_BYTES];
    assert_err(vs_state_hash(s, hash), VS_OK);
    if (runs == 0) memcpy(first_hash, hash, VS_HASH_BYTES);
    else assert_memory_equal(hash, first_hash, VS_HASH_BYTES);
    vs_store_close(s);
    runs++;
  } while (next_perm(perm, n));
  assert_true(runs >= 2);
}

static void test_state_late_base_any_arrival_order(void **state) {
  (void)state;
  static const scenario sc[] = {
      /* incr (10), put (5) late, incr (3) last: the incr at 3 precedes the base. */
      {"late put", {{0, "incr", "x", "2", 10}, {1, "put", "x", "5", 5}, {2, "incr", "x", "7", 3}}, 3,
       VS_STATE_COUNTER, "7", 7, 0, 10, 0},
      {"late del", {{0, "incr", "x", "2", 10}, {1, "del", "x", "", 5}, {2, "incr", "x", "7", 3}}, 3,
       VS_STATE_COUNTER, "2", 2, 0, 10, 0},
      {"late non-number", {{0, "incr", "x", "2", 10}, {1, "put", "x", "abc", 5}, {2, "incr", "x", "7", 6}}, 3,
       VS_STATE_COUNTER, "9", 9, 0, 10, 0},
      {"put after incr", {{0, "incr", "x", "2", 10}, {1, "put", "x", "5", 20}, {2, "incr", "x", "-1", 15}}, 3,
       VS_STATE_VALUE, "5", 0, 1, 20, 0},
      {"incr after late put", {{0, "incr", "x", "2", 10}, {1, "put", "x", "5", 20}, {2, "incr", "x", "1", 30}}, 3,
       VS_STATE_COUNTER, "6", 6, 2, 30, 0},
      /* Equal hlc: the origin decides (vt_origin salt 1 < 2 < 3). */
      {"equal hlc puts", {{0, "put", "x", "a", 7}, {1, "put", "x", "b", 7}}, 2, VS_STATE_VALUE, "b", 0, 1, 7, 0},
      {"equal hlc incr before base", {{0, "incr", "x", "1", 7}, {1, "put", "x", "5", 7}}, 2, VS_STATE_VALUE, "5", 0,
       1, 7, 0},
      {"equal hlc incr after base", {{0, "put", "x", "5", 7}, {1, "incr", "x", "1", 7}}, 2, VS_STATE_COUNTER, "6", 6,
       1, 7, 0},
      /* Chains: A put (10.0), A incr (10.1), B incr (10.0 > A's put by
       * origin), C del (10.0, the greatest base): only A's incr counts. */
      {"chains", {{0, "put", "x", "1", 10}, {0, "incr", "x", "1", 10}, {1, "incr", "x", "100", 10},
                  {2, "del", "x", "", 10}}, 4, VS_STATE_COUNTER, "1", 1, 0, 10, 1},
      {"chains without del", {{0, "put", "x", "1", 10}, {0, "incr", "x", "1", 10}, {1, "incr", "x", "100", 10},
                              {2, "note", "x", "9", 10}}, 4, VS_STATE_COUNTER, "102", 102, 0, 10, 1},
      {"del wins late", {{0, "put", "x", "1", 10}, {0, "incr", "x", "5", 11}, {1, "del", "x", "", 12},
                         {2, "put", "x", "3", 9}, {2, "incr", "x", "4", 9}}, 5, VS_STATE_TOMBSTONE, NULL, 0, 1, 12, 0},
  };
  uint8_t origins[3][VS_ORIGIN_BYTES];
  for (int o = 0; o < 3; o++) vt_origin(origins[o], (uint8_t)(o + 1));
  for (size_t s = 0; s < sizeof sc / sizeof sc[0]; s++) {
    char dir[512];
    vt_tmpdir(dir, sizeof dir, "state-late");
    ref_op ops[8];
    size_t n = build_sources(dir, sc[s].steps, sc[s].n, origins, 3, ops);
    sbuf final = {0};
    const char *v = sc[s].value;
    ser_entry(&final, (const uint8_t *)"x", 1, sc[s].kind, (const uint8_t *)v, v != NULL ? (uint32_t)strlen(v) : 0,
              sc[s].counter, origins[sc[s].by], vs_hlc_make(sc[s].by_ms, sc[s].by_ctr));
    print_message("scenario %s\n", sc[s].name);
    run_interleavings(dir, ops, n, &final);
    sb_free(&final);
    for (size_t i = 0; i < n; i++) ref_op_free(&ops[i]);
    vt_rmrf(dir);
  }
}

/* A received incr whose payload is not a number counts 0 but is counted: the
 * value is a counter named by it (acceptance never depends on content). */
static void test_state_received_non_number_incr_counts_zero(void **state) {
  fixture *f = *state;
  chain ca, cb;
  memset(&ca, 0, sizeof ca);
  memset(&cb, 0, sizeof cb);
  memcpy(ca.origin, f->a, VS_ORIGIN_BYTES);
  memcpy(cb.origin, f->b, VS_ORIGIN_BYTES);
  ref_op ops[4];
  craft(&ca, 100, "put", "x", 1, "5", 1, &ops[0]);
  craft(&cb, 200, "incr", "x", 1, "abc", 3, &ops[1]);
  craft(&cb, 300, "incr", "y", 1, "+7", 2, &ops[2]);
  craft(&cb, 400, "incr", "x", 1, "2", 1, &ops[3]);
  for (int i = 0; i < 3; i++) assert_err(append_ref(f->store, &ops[i], T0_MS), VS_OK);
  want_counter(f->store, "x", 5, f->b, 200);
  want_counter(f->store, "y", 0, f->b, 300);
  assert_err(append_ref(f->store, &ops[3], T0_MS), VS_OK);
  want_counter(f->store, "x", 7, f->b, 400);
  for (int i = 0; i < 4; i++) ref_op_free(&ops[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_late_base_any_arrival_order),
      T(test_state_received_non_number_incr_counts_zero),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
