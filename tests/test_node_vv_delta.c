/* Vectors as deltas (wire v6, issue 18; docs/protocol.md, "Vectors as
 * deltas"): a node tells a peer what changed since the generation the peer
 * said it holds, and a peer that lies about generations, digests or
 * origins gets a whole vector asked of it, a bounded copy, or its session
 * closed, never a wrong view. Time is virtual. */
#define _XOPEN_SOURCE 700

#include "node_bench.h"

/* The next VV part node 0 sent the fake, with its entries (up to max). */
static bool take_vv(bench *t, fake *f, vs_vv_part *part, vs_vv_entry *e, uint32_t max, uint32_t *count) {
  bool close = false, got = false;
  size_t len = 0, msg_len = 0;
  uint8_t *buf = malloc(VS_FRAME_BYTES_MAX), *msg = malloc(VS_FRAME_BYTES_MAX);
  assert_non_null(buf);
  assert_non_null(msg);
  while (!got && cap_take(t, 0, f->handle, &close, buf, VS_FRAME_BYTES_MAX, &len)) {
    assert_false(close);
    assert_err(vs_session_open(&f->sess, buf, len, msg, VS_FRAME_BYTES_MAX, &msg_len), VS_OK);
    if (msg[0] != VS_MSG_VV) continue;
    assert_err(vs_msg_vv_decode(msg, msg_len, part, e, max, count), VS_OK);
    got = true;
  }
  free(buf);
  free(msg);
  return got;
}

/* The last VV part node 0 sent the fake (all captures consumed). */
static bool last_vv(bench *t, fake *f, vs_vv_part *part, vs_vv_entry *e, uint32_t max, uint32_t *count) {
  bool any = false;
  vs_vv_part p;
  uint32_t c = 0;
  while (take_vv(t, f, &p, e, max, &c)) {
    *part = p;
    *count = c;
    any = true;
  }
  return any;
}

/* The fake sends node 0 a VV of `count` entries with the given header. */
static void fake_vv(bench *t, fake *f, const vs_vv_part *part, const vs_vv_entry *e, uint32_t count) {
  size_t cap = VS_MSG_VV_HEADER_BYTES + (size_t)count * (VS_ORIGIN_BYTES + 8u + VS_VV_HEAD_BYTES);
  uint8_t *msg = malloc(cap), *frame = malloc(cap + VS_DATA_OVERHEAD_BYTES);
  assert_non_null(msg);
  assert_non_null(frame);
  size_t len = 0;
  assert_err(vs_msg_vv_encode(part, e, count, msg, cap, &len), VS_OK);
  size_t flen = fake_seal(f, msg, len, frame, cap + VS_DATA_OVERHEAD_BYTES);
  assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_OK);
  free(msg);
  free(frame);
}

static uint64_t sum_of(const vs_vv_entry *e, uint32_t count) {
  uint64_t s = 0;
  for (uint32_t i = 0; i < count; i++) s += vs_vv_sum_entry(e[i].origin, e[i].seq, e[i].head);
  return s;
}

static uint64_t stat_resyncs(vs_node *node) {
  vs_node_stats st;
  vs_node_stats_get(node, &st);
  return st.vv_resyncs;
}

/* A whole vector of `total` entries as vector `number`, in as many parts
 * as it takes, with the digest `sum` (right or not). */
static void fake_whole_parts(bench *t, fake *f, uint64_t number, const vs_vv_entry *e, uint32_t total, uint64_t gen,
                             uint64_t held, uint64_t sum) {
  uint32_t parts = (total - 1) / VS_WIRE_VV_MAX + 1;
  for (uint32_t k = 0; k < parts; k++) {
    uint32_t first = k * VS_WIRE_VV_MAX, count = total - first > VS_WIRE_VV_MAX ? VS_WIRE_VV_MAX : total - first;
    vs_vv_part p = {number, k, parts, 0, 0, gen, 0, held, sum, 0, 0, 0, 0};
    fake_vv(t, f, &p, e + first, count);
  }
}

/* Node 0's whole vector as the fake saw it first, and node 0's entry of
 * its own origin (the fake claims to hold exactly that). */
typedef struct seen {
  vs_vv_part part;
  vs_vv_entry e[8];
  uint32_t n;
} seen;

static void first_vv(bench *t, fake *f, seen *s) {
  /* The fake's own (empty) vector, generation 1: node 0 answers, whole
   * (the fake told no generation of node 0's yet). */
  vs_vv_part p = {2, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}; /* after fake_dial's vector 1 */
  fake_vv(t, f, &p, NULL, 0);
  bench_run(t, 1100); /* news for the fake waits vv_interval_ms (1 s) */
  assert_true(last_vv(t, f, &s->part, s->e, 8, &s->n));
  assert_true(s->n >= 1);
}

/* An honest fake: the whole vector `e` as generation `gen`, holding node
 * 0's generation `held`. */
static void fake_whole(bench *t, fake *f, uint64_t *vector, const vs_vv_entry *e, uint32_t n, uint64_t gen,
                       uint64_t held) {
  vs_vv_part p = {++*vector, 0, 1, 0, 0, gen, 0, held, sum_of(e, n), 0, 0, 0, 0};
  fake_vv(t, f, &p, e, n);
}

/* Once the fake says it holds node 0's vector, node 0 tells it only what
 * changes: one write, one entry; an idle session, nothing but a digest
 * every VV_IDLE_FACTOR intervals. */
static void test_deltas_carry_what_changed(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "k", "0");
  first_vv(t, &f, &s);
  assert_int_equal(s.part.base, 0); /* whole: the fake told no generation yet */
  assert_int_equal(s.n, 2);         /* nodes 0 and 1 */
  assert_true(s.part.gen >= 1);
  assert_int_equal(s.part.sum, sum_of(s.e, s.n));
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 1, s.part.gen); /* it holds what node 0 holds */
  caps_clear(t);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "k", "1");
  bench_run(t, 1100); /* the run goes at once; the vector with the next news */
  vs_vv_part p;
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &p, e, 8, &n));
  assert_int_equal(p.base, s.part.gen);
  assert_true(p.gen > p.base);
  assert_int_equal(n, 1); /* only node 0's own entry moved */
  assert_memory_equal(e[0].origin, t->h.ids[0].pk, VS_ORIGIN_BYTES);
  assert_int_equal(p.held, 1); /* and it holds the fake's generation 1 */
  /* The fake confirms; ten idle minutes cost a digest per idle period. */
  vs_vv_entry mine[8];
  memcpy(mine, s.e, sizeof mine);
  for (uint32_t k = 0; k < s.n; k++)
    if (memcmp(mine[k].origin, e[0].origin, VS_ORIGIN_BYTES) == 0) mine[k] = e[0];
  fake_whole(t, &f, &vector, mine, s.n, 1, p.gen);
  caps_clear(t);
  vs_node_stats a, b;
  vs_node_stats_get(t->h.nodes[0], &a);
  bench_run(t, 600000);
  vs_node_stats_get(t->h.nodes[0], &b);
  uint32_t vvs = 0;
  while (take_vv(t, &f, &p, e, 8, &n)) {
    assert_int_equal(n, 0); /* no entries: nothing changed */
    vvs++;
  }
  /* 600 s / (20 x 1 s); node 1 is a second peer of node 0, whose acks of
   * the fake's chain... node 0 holds none of the fake's: nothing moves. */
  assert_true(vvs >= 25 && vvs <= 31);
  assert_true(b.bytes_sent_vv - a.bytes_sent_vv <= 2u * 31u * (VS_MSG_VV_HEADER_BYTES + VS_DATA_OVERHEAD_BYTES));
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 0);
  bench_free(t);
}

/* A delta from a generation node 0 does not hold (a lie: it never had
 * one): nothing of it is taken, the whole vector is asked for (held 0),
 * counted; the whole vector that follows is taken. */
static void test_delta_from_unknown_generation_asks_whole(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 5, s.part.gen);
  caps_clear(t);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  /* Generation 9 from 7: node 0 holds 5. Its entry claims node 1's origin
   * far ahead, which node 0 would police if it took it. */
  vs_vv_entry d = s.e[0];
  d.seq += 1000;
  vs_vv_part p = {++vector, 0, 1, 0, 0, 9, 7, s.part.gen, 0, 0, 0, 0, 0};
  fake_vv(t, &f, &p, &d, 1);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  bench_pump(t);
  vs_vv_part got;
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 0); /* "send me your whole vector" */
  /* Again before the whole vector comes: asked once, counted once. */
  p.vector = ++vector;
  fake_vv(t, &f, &p, &d, 1);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  fake_whole(t, &f, &vector, s.e, s.n, 10, s.part.gen);
  caps_clear(t);
  bench_run(t, 2000);
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 10);
  expect_refused(t->h.nodes[0], &s0, "none", 0, "a delta from a generation never held");
  expect_legit_sync(t, "vv-delta-unknown-base");
  bench_free(t);
}

/* A digest that is not that of what node 0 made of the fake's vector
 * (drift): the whole vector is asked for. A right one: nothing. */
static void test_digest_mismatch_asks_whole(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 3, s.part.gen);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 0);
  /* A delta that changes nothing, with a digest of another vector. */
  vs_vv_part p = {++vector, 0, 1, 0, 0, 4, 3, s.part.gen, sum_of(s.e, s.n) + 1, 0, 0, 0, 0};
  fake_vv(t, &f, &p, NULL, 0);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  caps_clear(t);
  bench_pump(t);
  vs_vv_part got;
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 0);
  fake_whole(t, &f, &vector, s.e, s.n, 5, s.part.gen); /* right digest: taken */
  p = (vs_vv_part){++vector, 0, 1, 0, 0, 6, 5, s.part.gen, sum_of(s.e, s.n), 0, 0, 0, 0};
  fake_vv(t, &f, &p, NULL, 0);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  expect_legit_sync(t, "vv-digest");
  bench_free(t);
}

/* Origins node 0 does not hold are kept of a peer's vector (so its digest
 * is checked) up to VV_FOREIGN_MAX (4,096): a wrong digest over 100 of
 * them is found; past the bound the copy is partial, its digest is not
 * checked, and the peer cannot make node 0 keep more. */
static void test_foreign_origins_bounded(void **state) {
  (void)state;
  enum { FEW = 100, MANY = 5000 };
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  vs_vv_entry *e = calloc(MANY + 8, sizeof *e);
  assert_non_null(e);
  /* Sorted origins 0x00.. (below every real one, whose first byte is
   * random: kept sorted by putting the real entries after a 0x00 prefix). */
  for (uint32_t i = 0; i < MANY; i++) {
    e[i].origin[0] = 0;
    e[i].origin[1] = (uint8_t)(i >> 8);
    e[i].origin[2] = (uint8_t)i;
    e[i].seq = 1;
  }
  for (uint32_t k = 0; k < s.n; k++) assert_true(s.e[k].origin[0] != 0 || s.e[k].origin[1] >= 0x20);
  uint64_t vector = 2;
  /* FEW foreign ones and a wrong digest: found. */
  vs_vv_entry *few = calloc(FEW + 8, sizeof *few);
  assert_non_null(few);
  memcpy(few, e, FEW * sizeof *e);
  memcpy(few + FEW, s.e, s.n * sizeof *s.e);
  vs_vv_part p = {++vector, 0, 1, 0, 0, 2, 0, s.part.gen, sum_of(few, FEW + s.n) ^ 1u, 0, 0, 0, 0};
  fake_vv(t, &f, &p, few, FEW + s.n);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  /* MANY foreign ones and a wrong digest: partial, not checked. */
  memcpy(e + MANY, s.e, s.n * sizeof *s.e);
  uint32_t total = MANY + s.n;
  fake_whole_parts(t, &f, ++vector, e, total, 3, s.part.gen, sum_of(e, total) ^ 1u);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1); /* the whole vector cleared the ask; no new one */
  expect_legit_sync(t, "vv-foreign");
  free(few);
  free(e);
  bench_free(t);
}

/* A delta that drops node 0's own entry (seq 0) is a fall like any other:
 * its old entry stands for a claim grace, then, no verdict having come,
 * the session closes. */
static void test_delta_fall_is_policed(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 2, s.part.gen);
  vs_vv_entry gone = s.e[0];
  gone.seq = 0;
  vs_vv_part p = {++vector, 0, 1, 0, 0, 3, 2, s.part.gen, 0, 0, 0, 0, 0};
  fake_vv(t, &f, &p, &gone, 1);
  caps_clear(t);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  bench_run(t, 30000);
  expect_refused(t->h.nodes[0], &s0, "rejected_vv_regress", 1, "a delta that drops an entry");
  assert_int_equal(caps_count(t, 0, f.handle, true), 1);
  expect_legit_sync(t, "vv-delta-fall");
  bench_free(t);
}

/* A whole vector past the foreign bound (node 0 keeps at most its origins
 * + 1 + 4,096 entries of the fake's) leaves foreign entries out: no fall,
 * the session stays (a review of session 15 closed an honest session so:
 * a vector that gained an origin sorted first pushed one out). */
static void test_partial_whole_vector_is_no_fall(void **state) {
  (void)state;
  enum { MANY = 4099 };
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  vs_vv_entry *e = calloc(MANY + 1 + 8, sizeof *e);
  assert_non_null(e);
  for (uint32_t i = 0; i <= MANY; i++) { /* sorted below the real origins */
    e[i].origin[0] = 0;
    e[i].origin[1] = (uint8_t)(i >> 8);
    e[i].origin[2] = (uint8_t)i;
    e[i].seq = 1;
  }
  for (uint32_t k = 0; k < s.n; k++) assert_true(s.e[k].origin[0] != 0 || s.e[k].origin[1] >= 0x20);
  uint64_t vector = 2;
  /* Origins 1..MANY, then the real ones; then 0..MANY: one more, sorted
   * first, pushes the last foreign one out of the copy. */
  for (uint32_t round = 0; round < 2; round++) {
    vs_vv_entry *from = e + (round == 0 ? 1 : 0);
    uint32_t foreign = round == 0 ? MANY : MANY + 1, total = foreign + s.n;
    vs_vv_entry *all = calloc(total, sizeof *all);
    assert_non_null(all);
    memcpy(all, from, foreign * sizeof *all);
    memcpy(all + foreign, s.e, s.n * sizeof *s.e);
    fake_whole_parts(t, &f, ++vector, all, total, 2 + round, s.part.gen, sum_of(all, total));
    free(all);
  }
  caps_clear(t);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  bench_run(t, 30000);
  expect_refused(t->h.nodes[0], &s0, "none", 0, "a whole vector that left foreign entries out");
  assert_int_equal(caps_count(t, 0, f.handle, true), 0); /* the session stays */
  expect_legit_sync(t, "vv-partial-whole");
  free(e);
  bench_free(t);
}

/* A place in the tree no node can hold (the fake a root whose id is not
 * its own) is not taken: node 0 keeps its root. */
static void test_impossible_tree_place_not_taken(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t root = s.part.root;
  assert_true(root > 1);
  vs_vv_part p = {3, 0, 1, 0, 0, 2, 0, s.part.gen, sum_of(s.e, s.n), 0, 0, 1, 0}; /* "I am root 1" */
  fake_vv(t, &f, &p, s.e, s.n);
  caps_clear(t);
  bench_run(t, 3000);
  vs_vv_part got;
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.root, root);
  p = (vs_vv_part){4, 0, 1, 0, 0, 3, 0, s.part.gen, sum_of(s.e, s.n), 0, 1, 1, 0}; /* hops but no parent */
  fake_vv(t, &f, &p, s.e, s.n);
  caps_clear(t);
  bench_run(t, 3000);
  if (last_vv(t, &f, &got, e, 8, &n)) assert_int_equal(got.root, root);
  expect_legit_sync(t, "tree-impossible-place");
  bench_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deltas_carry_what_changed),
      cmocka_unit_test(test_delta_from_unknown_generation_asks_whole),
      cmocka_unit_test(test_digest_mismatch_asks_whole),
      cmocka_unit_test(test_foreign_origins_bounded),
      cmocka_unit_test(test_delta_fall_is_policed),
      cmocka_unit_test(test_partial_whole_vector_is_no_fall),
      cmocka_unit_test(test_impossible_tree_place_not_taken),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
