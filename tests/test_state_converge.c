/* tests/test_state_converge.c: pins include/vixsync/state.h: convergence
 * (G5) as a property over random histories, checked against an independent
 * O(n^2) model of the rule, and over crafted chains.
 *
 * VS_STATE_SEEDS sets the number of random histories (default 200),
 * VS_STATE_SEED0 the first seed (default 1): a failure names its seed.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "state_model.h"

/* ====================================================================== */
/* 3. Convergence (G5) as a property over random histories                */
/* ====================================================================== */

static uint64_t g_seed;

#define SCHECK(cond, ...)                                                                             \
  do {                                                                                                \
    if (!(cond)) {                                                                                    \
      char m_[512];                                                                                   \
      snprintf(m_, sizeof m_, __VA_ARGS__);                                                           \
      fail_msg("seed %" PRIu64 ": %s (replay: VS_STATE_SEED0=%" PRIu64 " VS_STATE_SEEDS=1)", g_seed, m_, \
               g_seed);                                                                               \
    }                                                                                                 \
  } while (0)
#define SOK(expr, want)                                                                           \
  do {                                                                                            \
    vs_err e_ = (expr);                                                                           \
    SCHECK(e_ == (want), "%s: got %s, want %s", #expr, vs_err_name(e_), vs_err_name(want));       \
  } while (0)

static uint64_t rnd(uint64_t *s, uint64_t n) { return vt_sm64(s) % n; }

static uint64_t env_u64(const char *name, uint64_t dflt, uint64_t max) {
  const char *v = getenv(name);
  if (v == NULL || v[0] == '\0') return dflt;
  char *end = NULL;
  unsigned long long x = strtoull(v, &end, 10);
  if (end == v || *end != '\0' || x > max) fail_msg("%s=%s: want an integer <= %" PRIu64, name, v, max);
  return (uint64_t)x;
}

/* A small key set so that ops conflict: short keys, the empty key, and two
 * long keys (> 448 bytes) sharing their first 448 bytes. */
#define KEYS 7u
static void key_of(unsigned k, uint8_t *buf, uint32_t *bytes) {
  static const char *shorts[] = {"a", "b", "ctr", "", "a\xff"};
  if (k < 5) {
    *bytes = (uint32_t)strlen(shorts[k]);
    memcpy(buf, shorts[k], *bytes);
    return;
  }
  memset(buf, 'L', 448);
  *bytes = k == 5 ? 600u : 449u;
  memset(buf + 448, k == 5 ? 'B' : 'A', *bytes - 448);
}

static uint32_t rand_payload(uint64_t *r, bool incr, uint8_t *buf) {
  static const char *nums[] = {"0", "1", "-1", "7", "-0", "007", "42", "-13", "9223372036854775807",
                               "-9223372036854775808", "4611686018427387904", "-4611686018427387905"};
  static const char *junk[] = {"abc", "", "+1", " 1", "1 ", "99999999999999999999", "00000000000000000001",
                               "-", "1.5", "x", "9223372036854775808"};
  uint64_t pick = rnd(r, 10);
  if (incr || pick < 5) {
    if (rnd(r, 3) == 0) { /* a small random number */
      return (uint32_t)snprintf((char *)buf, 32, "%" PRId64, (int64_t)rnd(r, 201) - 100);
    }
    const char *s = nums[rnd(r, sizeof nums / sizeof nums[0])];
    memcpy(buf, s, strlen(s));
    return (uint32_t)strlen(s);
  }
  if (pick < 8) {
    const char *s = junk[rnd(r, sizeof junk / sizeof junk[0])];
    memcpy(buf, s, strlen(s));
    return (uint32_t)strlen(s);
  }
  uint32_t n = (uint32_t)rnd(r, 9); /* random bytes, digits likely */
  for (uint32_t i = 0; i < n; i++) buf[i] = rnd(r, 2) ? (uint8_t)('0' + rnd(r, 10)) : (uint8_t)rnd(r, 256);
  return n;
}

typedef struct world {
  char dir[512];
  int n_origins;
  uint8_t origins[ORIGINS_MAX][VS_ORIGIN_BYTES];
  vs_store *src[ORIGINS_MAX];
  ref_op *ops; /* all ops, grouped by origin in seq order */
  size_t n;
  size_t first[ORIGINS_MAX], count[ORIGINS_MAX];
} world;

/* Each origin writes 5..40 random ops into its own source store. */
static void world_write(world *w, uint64_t *r) {
  static const char *others[] = {"note", "x.y", "Put", "incr.x", "delete"};
  for (int o = 0; o < w->n_origins; o++) {
    char name[16];
    snprintf(name, sizeof name, "src%d", o);
    w->src[o] = open_sub(w->dir, name);
    uint64_t now = T0_MS + rnd(r, 4), n_ops = 5 + rnd(r, OPS_PER_ORIGIN_MAX - 4);
    for (uint64_t i = 0; i < n_ops; i++) {
      uint64_t step = rnd(r, 10); /* equal, decreasing or increasing wall clocks */
      if (step < 3) now += 0;
      else if (step < 5) now -= rnd(r, 3) < now ? rnd(r, 3) : 0;
      else now += 1 + rnd(r, 3);
      uint64_t kpick = rnd(r, 20);
      const char *kind = kpick < 7 ? "put" : kpick < 10 ? "del" : kpick < 17 ? "incr" : others[rnd(r, 5)];
      uint8_t target[VS_OP_TARGET_BYTES_MAX], payload[64];
      uint32_t tb, pb;
      key_of((unsigned)rnd(r, KEYS), target, &tb);
      pb = rand_payload(r, strcmp(kind, "incr") == 0, payload);
      if (strcmp(kind, "incr") == 0 && rnd(r, 8) == 0) { /* a refused local incr writes nothing */
        SOK(wr(w->src[o], w->origins[o], "incr", target, tb, "1x", 2, now, NULL), VS_ERR_INVAL);
      }
      SOK(wr(w->src[o], w->origins[o], kind, target, tb, payload, pb, now, NULL), VS_OK);
    }
    collect c = {w->ops + w->n, 0, OPS_MAX - w->n};
    SOK(vs_wal_replay(w->src[o], 1, collect_cb, &c), VS_OK);
    SCHECK(c.n == n_ops, "source %d holds %zu ops, wrote %" PRIu64, o, c.n, n_ops);
    w->first[o] = w->n;
    w->count[o] = c.n;
    w->n += c.n;
  }
}

/* Feed `s` every op not yet held, in a random interleaving that keeps each
 * origin's order; `skip` (or -1) is an origin the store already holds. Some
 * ops are sent twice: VS_ERR_EXISTS and the state hash does not move. With
 * `check_prefix`, some intermediate states are compared with the model of
 * the ops held at that point. */
static void feed(world *w, vs_store *s, int skip, bool check_prefix, uint64_t *r) {
  size_t next[ORIGINS_MAX] = {0};
  bool held[OPS_MAX] = {false};
  if (skip >= 0) {
    next[skip] = w->count[skip];
    for (size_t i = 0; i < w->count[skip]; i++) held[w->first[skip] + i] = true;
  }
  for (size_t guard = 0; guard < 4 * OPS_MAX; guard++) {
    int open[ORIGINS_MAX], n_open = 0;
    for (int o = 0; o < w->n_origins; o++)
      if (next[o] < w->count[o]) open[n_open++] = o;
    if (n_open == 0) return;
    int o = open[rnd(r, (uint64_t)n_open)];
    SOK(append_ref(s, &w->ops[w->first[o] + next[o]], T0_MS), VS_OK);
    held[w->first[o] + next[o]] = true;
    next[o]++;
    if (check_prefix && rnd(r, 6) == 0) {
      sbuf got_d = {0}, want_d = {0};
      SOK(dump_ser(s, true, &got_d, NULL), VS_OK);
      ref_dump(w->ops, w->n, held, true, &want_d);
      if (!sb_equal(&got_d, &want_d)) {
        print_ser("model", &want_d);
        print_ser("store", &got_d);
      }
      SCHECK(sb_equal(&got_d, &want_d), "an intermediate state differs from the model of the ops held");
      sb_free(&got_d);
      sb_free(&want_d);
    }
    if (rnd(r, 8) == 0) {
      int d = (int)rnd(r, (uint64_t)w->n_origins);
      if (next[d] > 0) {
        uint8_t h0[VS_HASH_BYTES], h1[VS_HASH_BYTES];
        SOK(vs_state_hash(s, h0), VS_OK);
        SOK(append_ref(s, &w->ops[w->first[d] + rnd(r, next[d])], T0_MS), VS_ERR_EXISTS);
        SOK(vs_state_hash(s, h1), VS_OK);
        SCHECK(memcmp(h0, h1, VS_HASH_BYTES) == 0, "a duplicate moved the state hash");
      }
    }
  }
  SCHECK(false, "feed did not finish");
}

/* Compare store `s` with the model and with the first store's hash. */
static void check_store(world *w, vs_store *s, const char *what, const sbuf *want_all, const sbuf *want_live,
                        const uint8_t *hash0) {
  sbuf all = {0}, live = {0};
  SOK(dump_ser(s, true, &all, NULL), VS_OK);
  SOK(dump_ser(s, false, &live, NULL), VS_OK);
  if (!sb_equal(&all, want_all)) {
    print_ser("model", want_all);
    print_ser(what, &all);
  }
  SCHECK(sb_equal(&all, want_all), "%s: dump with tombstones differs from the model", what);
  SCHECK(sb_equal(&live, want_live), "%s: live dump differs from the model", what);
  uint8_t hash[VS_HASH_BYTES];
  SOK(vs_state_hash(s, hash), VS_OK);
  SCHECK(memcmp(hash, hash0, VS_HASH_BYTES) == 0, "%s: state hash differs", what);
  vv_cap vv;
  memset(&vv, 0, sizeof vv);
  SOK(vs_vv_each(s, vv_cb, &vv), VS_OK);
  SCHECK(vv.n == (uint32_t)w->n_origins, "%s: version vector has %u origins", what, vv.n);
  for (uint32_t i = 0; i < vv.n; i++) {
    SCHECK(i == 0 || memcmp(vv.origin[i - 1], vv.origin[i], VS_ORIGIN_BYTES) < 0, "%s: vv not in byte order", what);
    int o = 0;
    while (o < w->n_origins && memcmp(w->origins[o], vv.origin[i], VS_ORIGIN_BYTES) != 0) o++;
    SCHECK(o < w->n_origins && vv.seq[i] == w->count[o], "%s: vv entry %u wrong", what, i);
  }
  sb_free(&all);
  sb_free(&live);
}

static void run_seed(uint64_t seed) {
  g_seed = seed;
  uint64_t r = seed;
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  w->ops = calloc(OPS_MAX, sizeof *w->ops);
  assert_non_null(w->ops);
  vt_tmpdir(w->dir, sizeof w->dir, "state-g5");
  w->n_origins = 2 + (int)rnd(&r, 3);
  uint8_t salts[ORIGINS_MAX];
  for (int o = 0; o < w->n_origins; o++) { /* distinct salts in random order */
    bool dup;
    do {
      salts[o] = (uint8_t)(1 + rnd(&r, 250));
      dup = false;
      for (int p = 0; p < o; p++) dup = dup || salts[p] == salts[o];
    } while (dup);
    vt_origin(w->origins[o], salts[o]);
  }
  world_write(w, &r);

  sbuf want_all = {0}, want_live = {0};
  ref_dump(w->ops, w->n, NULL, true, &want_all);
  ref_dump(w->ops, w->n, NULL, false, &want_live);

  vs_store *t[TARGET_STORES];
  uint8_t hash0[VS_HASH_BYTES];
  for (unsigned i = 0; i < TARGET_STORES; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%u", i);
    t[i] = open_sub(w->dir, name);
    feed(w, t[i], -1, i == 0, &r);
    if (i == 0) SOK(vs_state_hash(t[0], hash0), VS_OK);
    char what[32];
    snprintf(what, sizeof what, "target %u", i);
    check_store(w, t[i], what, &want_all, &want_live, hash0);
  }
  /* Each source store, completed with the others' ops in its own order. */
  for (int o = 0; o < w->n_origins; o++) {
    feed(w, w->src[o], o, o == 0, &r);
    char what[32];
    snprintf(what, sizeof what, "source %d", o);
    check_store(w, w->src[o], what, &want_all, &want_live, hash0);
  }
  for (unsigned i = 0; i < TARGET_STORES; i++) vs_store_close(t[i]);
  for (int o = 0; o < w->n_origins; o++) vs_store_close(w->src[o]);
  for (size_t i = 0; i < w->n; i++) ref_op_free(&w->ops[i]);
  sb_free(&want_all);
  sb_free(&want_live);
  vt_rmrf(w->dir);
  free(w->ops);
  free(w);
}

static void test_state_converges_whatever_the_arrival_order(void **state) {
  (void)state;
  uint64_t seeds = env_u64("VS_STATE_SEEDS", SEEDS_DEFAULT, SEEDS_MAX);
  uint64_t seed0 = env_u64("VS_STATE_SEED0", 1, UINT64_MAX - SEEDS_MAX);
  for (uint64_t s = seed0; s < seed0 + seeds; s++) run_seed(s);
  print_message("G5 property: %" PRIu64 " seeds from %" PRIu64 "\n", seeds, seed0);
}

/* Ops a peer could send: hand-made chains with any hlc (equal, decreasing),
 * incr payloads that are not numbers. Whatever their order of arrival, the
 * stores agree; the model is checked where it is defined (no two state ops
 * of one origin share an hlc). */
static void run_crafted_seed(uint64_t seed) {
  g_seed = seed;
  uint64_t r = seed ^ 0x5eed5eed5eed5eedull;
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  w->ops = calloc(OPS_MAX, sizeof *w->ops);
  assert_non_null(w->ops);
  vt_tmpdir(w->dir, sizeof w->dir, "state-craft");
  w->n_origins = 2 + (int)rnd(&r, 2);
  bool ties = rnd(&r, 2) == 0;
  for (int o = 0; o < w->n_origins; o++) {
    vt_origin(w->origins[o], (uint8_t)(0x40 + 7 * o));
    chain c;
    memset(&c, 0, sizeof c);
    memcpy(c.origin, w->origins[o], VS_ORIGIN_BYTES);
    w->first[o] = w->n;
    w->count[o] = 3 + rnd(&r, 20);
    uint64_t used[OPS_PER_ORIGIN_MAX];
    for (size_t i = 0; i < w->count[o]; i++) {
      uint64_t hlc;
      bool fresh;
      do { /* small ranges: ties across origins (and in a chain) are common */
        hlc = 1 + rnd(&r, ties ? 8 : 30);
        fresh = true;
        for (size_t j = 0; j < i && !ties; j++) fresh = fresh && used[j] != hlc;
      } while (!fresh);
      used[i] = hlc;
      uint64_t kpick = rnd(&r, 10);
      const char *kind = kpick < 3 ? "put" : kpick < 5 ? "del" : kpick < 9 ? "incr" : "note";
      uint8_t target[VS_OP_TARGET_BYTES_MAX], payload[64];
      uint32_t tb, pb;
      key_of((unsigned)rnd(&r, 3), target, &tb);
      pb = rand_payload(&r, strcmp(kind, "incr") == 0 && rnd(&r, 4) != 0, payload);
      craft(&c, hlc, kind, target, tb, payload, pb, &w->ops[w->n++]);
    }
  }
  vs_store *t[TARGET_STORES];
  sbuf first_dump = {0};
  uint8_t hash0[VS_HASH_BYTES];
  for (unsigned i = 0; i < TARGET_STORES; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%u", i);
    t[i] = open_sub(w->dir, name);
    feed(w, t[i], -1, false, &r);
    sbuf d = {0};
    SOK(dump_ser(t[i], true, &d, NULL), VS_OK);
    uint8_t hash[VS_HASH_BYTES];
    SOK(vs_state_hash(t[i], hash), VS_OK);
    if (i == 0) {
      first_dump = d;
      memcpy(hash0, hash, VS_HASH_BYTES);
      continue;
    }
    if (!sb_equal(&d, &first_dump)) {
      print_ser("target 0", &first_dump);
      print_ser("target i", &d);
    }
    SCHECK(sb_equal(&d, &first_dump), "crafted%s: target %u's dump differs from target 0's", ties ? " with ties" : "",
           i);
    SCHECK(memcmp(hash, hash0, VS_HASH_BYTES) == 0, "crafted: target %u's state hash differs", i);
    sb_free(&d);
  }
  if (!ties) {
    sbuf want = {0};
    ref_dump(w->ops, w->n, NULL, true, &want);
    if (!sb_equal(&want, &first_dump)) {
      print_ser("model", &want);
      print_ser("target 0", &first_dump);
    }
    SCHECK(sb_equal(&want, &first_dump), "crafted: dump differs from the model");
    sb_free(&want);
  }
  for (unsigned i = 0; i < TARGET_STORES; i++) vs_store_close(t[i]);
  for (size_t i = 0; i < w->n; i++) ref_op_free(&w->ops[i]);
  sb_free(&first_dump);
  vt_rmrf(w->dir);
  free(w->ops);
  free(w);
}

static void test_state_converges_for_crafted_chains(void **state) {
  (void)state;
  uint64_t seeds = env_u64("VS_STATE_SEEDS", SEEDS_DEFAULT, SEEDS_MAX);
  uint64_t seed0 = env_u64("VS_STATE_SEED0", 1, UINT64_MAX - SEEDS_MAX);
  for (uint64_t s = seed0; s < seed0 + seeds; s++) run_crafted_seed(s);
}

/* Two incrs of one origin at the same hlc (a peer's clock may do that) both
 * count, whether the base arrives before or after them. */
static void test_state_same_hlc_incrs_converge(void **state) {
  (void)state;
  char dir[512];
  vt_tmpdir(dir, sizeof dir, "state-tie");
  chain ca, cb;
  memset(&ca, 0, sizeof ca);
  memset(&cb, 0, sizeof cb);
  vt_origin(ca.origin, 1);
  vt_origin(cb.origin, 2);
  ref_op ops[3];
  craft(&ca, 10, "incr", "x", 1, "1", 1, &ops[0]);
  craft(&ca, 10, "incr", "x", 1, "2", 1, &ops[1]);
  craft(&cb, 5, "put", "x", 1, "0", 1, &ops[2]);
  vs_store *s1 = open_sub(dir, "s1"), *s2 = open_sub(dir, "s2");
  assert_err(append_ref(s1, &ops[2], T0_MS), VS_OK); /* base first */
  assert_err(append_ref(s1, &ops[0], T0_MS), VS_OK);
  assert_err(append_ref(s1, &ops[1], T0_MS), VS_OK);
  assert_err(append_ref(s2, &ops[0], T0_MS), VS_OK); /* base last */
  assert_err(append_ref(s2, &ops[1], T0_MS), VS_OK);
  assert_err(append_ref(s2, &ops[2], T0_MS), VS_OK);
  want_counter(s1, "x", 3, ca.origin, 10);
  want_counter(s2, "x", 3, ca.origin, 10);
  uint8_t h1[VS_HASH_BYTES], h2[VS_HASH_BYTES];
  assert_err(vs_state_hash(s1, h1), VS_OK);
  assert_err(vs_state_hash(s2, h2), VS_OK);
  assert_memory_equal(h1, h2, VS_HASH_BYTES);
  vs_store_close(s1);
  vs_store_close(s2);
  for (int i = 0; i < 3; i++) ref_op_free(&ops[i]);
  vt_rmrf(dir);
}

/* An incr with the very (hlc, origin) of the base is not "ordered after" it
 * (state.h): it does not count, whether it arrives before or after the base,
 * with or without an earlier base already held. */
static void test_state_incr_at_the_base_key_does_not_count(void **state) {
  (void)state;
  char dir[512];
  vt_tmpdir(dir, sizeof dir, "state-basekey");
  chain ca, cb;
  memset(&ca, 0, sizeof ca);
  memset(&cb, 0, sizeof cb);
  vt_origin(ca.origin, 1);
  vt_origin(cb.origin, 2);
  ref_op ops[5];
  craft(&ca, 5, "incr", "x", 1, "1", 1, &ops[0]); /* before its base in the chain */
  craft(&ca, 5, "put", "x", 1, "10", 2, &ops[1]);
  craft(&ca, 6, "put", "y", 1, "20", 2, &ops[2]);
  craft(&ca, 6, "incr", "y", 1, "1", 1, &ops[3]); /* after its base in the chain */
  craft(&cb, 3, "put", "x", 1, "0", 1, &ops[4]);  /* an older base of x */
  vs_store *s1 = open_sub(dir, "s1"), *s2 = open_sub(dir, "s2");
  assert_err(append_ref(s1, &ops[4], T0_MS), VS_OK);
  for (int i = 0; i < 4; i++) assert_err(append_ref(s1, &ops[i], T0_MS), VS_OK);
  for (int i = 0; i < 5; i++) assert_err(append_ref(s2, &ops[i], T0_MS), VS_OK);
  vs_store *ss[2] = {s1, s2};
  for (int i = 0; i < 2; i++) {
    want_value(ss[i], "x", "10", ca.origin, 5);
    want_value(ss[i], "y", "20", ca.origin, 6);
  }
  vs_store_close(s1);
  vs_store_close(s2);
  for (int i = 0; i < 5; i++) ref_op_free(&ops[i]);
  vt_rmrf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_same_hlc_incrs_converge),
      cmocka_unit_test(test_state_incr_at_the_base_key_does_not_count),
      cmocka_unit_test(test_state_converges_whatever_the_arrival_order),
      cmocka_unit_test(test_state_converges_for_crafted_chains),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
