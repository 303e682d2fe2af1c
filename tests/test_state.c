/* tests/test_state.c: pins include/vixsync/state.h.
 *
 * The rules of the materialized state through vs_write (put, del, incr,
 * counters, tombstones, wrap-around, other kinds, refused incr payloads,
 * vs_parse_i64); the state hash; long targets in a dump; the version
 * vector. Late bases in every arrival order: test_state_order.c;
 * convergence (G5) over random histories: test_state_converge.c.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "state_model.h"

static void get_absent(vs_store *s, const char *target, bool tombstones) {
  got g;
  memset(&g, 0, sizeof g);
  assert_err(vs_state_get(s, (const uint8_t *)target, (uint32_t)strlen(target), tombstones, got_cb, &g), VS_ERR_NOTFOUND);
  assert_int_equal(g.calls, 0);
}

/* Target `target` is a tombstone, named by (origin, hlc). */
static void want_tombstone(vs_store *s, const char *target, const uint8_t *origin, uint64_t hlc) {
  get_absent(s, target, false);
  got g;
  get_ok(s, target, (uint32_t)strlen(target), true, &g);
  assert_int_equal(g.kind, VS_STATE_TOMBSTONE);
  assert_true(g.value_null);
  assert_int_equal(g.value_bytes, 0);
  assert_memory_equal(g.origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(g.hlc, hlc);
}

/* ====================================================================== */
/* 1. The rules, through vs_write on one store                            */
/* ====================================================================== */

static void test_state_kind_names(void **state) {
  (void)state;
  assert_string_equal(vs_state_kind_name(VS_STATE_VALUE), "put");
  assert_string_equal(vs_state_kind_name(VS_STATE_COUNTER), "counter");
  assert_string_equal(vs_state_kind_name(VS_STATE_TOMBSTONE), "del");
}

static void test_state_put_then_get(void **state) {
  fixture *f = *state;
  get_absent(f->store, "x", false);
  get_absent(f->store, "x", true);
  uint64_t h1 = wrs(f->store, f->a, "put", "x", "hello", T0_MS);
  want_value(f->store, "x", "hello", f->a, h1);
  got g;
  get_ok(f->store, "x", 1, true, &g); /* a live value is found with tombstones too */
  assert_int_equal(g.kind, VS_STATE_VALUE);
  uint64_t h2 = wrs(f->store, f->b, "put", "x", "", T0_MS + 1); /* an empty value is a value */
  want_value(f->store, "x", "", f->b, h2);
  get_absent(f->store, "y", false);
  get_absent(f->store, "", false);
  /* The empty target and an empty value may come as NULL with 0 bytes. */
  vs_write_result res;
  assert_err(wr(f->store, f->a, "put", NULL, 0, NULL, 0, T0_MS + 2, &res), VS_OK);
  get_ok(f->store, NULL, 0, false, &g);
  assert_int_equal(g.kind, VS_STATE_VALUE);
  assert_int_equal(g.value_bytes, 0);
  assert_int_equal(g.hlc, res.hlc);
  get_ok(f->store, (const uint8_t *)"", 0, false, &g); /* the same target */
  assert_int_equal(g.hlc, res.hlc);
  assert_err(wr(f->store, f->b, "incr", NULL, 0, "2", 1, T0_MS + 3, &res), VS_OK);
  want_counter(f->store, "", 2, f->b, res.hlc);
  assert_err(wr(f->store, f->a, "del", NULL, 0, NULL, 0, T0_MS + 4, &res), VS_OK);
  want_tombstone(f->store, "", f->a, res.hlc);
}

static void test_state_put_then_incr_counts_from_the_value(void **state) {
  fixture *f = *state;
  wrs(f->store, f->a, "put", "x", "5", T0_MS);
  uint64_t h = wrs(f->store, f->a, "incr", "x", "3", T0_MS + 1);
  want_counter(f->store, "x", 8, f->a, h);
  h = wrs(f->store, f->b, "incr", "x", "-10", T0_MS + 2);
  want_counter(f->store, "x", -2, f->b, h);
  h = wrs(f->store, f->a, "incr", "x", "2", T0_MS + 3);
  want_counter(f->store, "x", 0, f->a, h); /* still a counter at zero */
  /* A later put is a new base: the incrs before it no longer count. */
  h = wrs(f->store, f->c, "put", "x", "new", T0_MS + 4);
  want_value(f->store, "x", "new", f->c, h);
  h = wrs(f->store, f->a, "incr", "x", "1", T0_MS + 5);
  want_counter(f->store, "x", 1, f->a, h); /* "new" is not a number: counts from 0 */
}

static void test_state_del_leaves_tombstone_then_incr_counts_from_zero(void **state) {
  fixture *f = *state;
  wrs(f->store, f->a, "put", "x", "5", T0_MS);
  uint64_t h = wrs(f->store, f->b, "del", "x", "ignored", T0_MS + 1);
  want_tombstone(f->store, "x", f->b, h);
  h = wrs(f->store, f->a, "incr", "x", "1", T0_MS + 2);
  want_counter(f->store, "x", 1, f->a, h);
  /* del of an absent target is a tombstone as well */
  h = wrs(f->store, f->a, "del", "never", "", T0_MS + 3);
  want_tombstone(f->store, "never", f->a, h);
}

static void test_state_incr_on_absent_target(void **state) {
  fixture *f = *state;
  uint64_t h = wrs(f->store, f->a, "incr", "n", "4", T0_MS);
  want_counter(f->store, "n", 4, f->a, h);
  h = wrs(f->store, f->b, "incr", "n", "-6", T0_MS);
  want_counter(f->store, "n", -2, f->b, h);
  h = wrs(f->store, f->a, "incr", "", "7", T0_MS); /* the empty target */
  want_counter(f->store, "", 7, f->a, h);
}

static void test_state_incr_after_non_number_counts_from_zero(void **state) {
  fixture *f = *state;
  static const struct {
    const char *base;
    int64_t from;
  } cases[] = {
      {"abc", 0}, {"", 0}, {" 5", 0}, {"5 ", 0}, {"+5", 0}, {"5.0", 0}, {"-0", 0}, {"007", 7}, {"-12", -12},
      {"9223372036854775808", 0}, {"-9223372036854775809", 0}, {"00000000000000000005", 0}, {"0000000000000000005", 5},
      {"\x35\x00", 0}, /* "5" and a NUL: not a number */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char target[16];
    snprintf(target, sizeof target, "t%zu", i);
    uint32_t base_bytes = i == sizeof cases / sizeof cases[0] - 1 ? 2u : (uint32_t)strlen(cases[i].base);
    vs_write_result res;
    assert_err(wr(f->store, f->a, "put", target, (uint32_t)strlen(target), cases[i].base, base_bytes, T0_MS, &res),
               VS_OK);
    uint64_t h = wrs(f->store, f->b, "incr", target, "1", T0_MS);
    want_counter(f->store, target, cases[i].from + 1, f->b, h);
  }
}

static void test_state_negative_deltas(void **state) {
  fixture *f = *state;
  wrs(f->store, f->a, "put", "x", "10", T0_MS);
  wrs(f->store, f->a, "incr", "x", "-3", T0_MS);
  uint64_t h = wrs(f->store, f->a, "incr", "x", "-20", T0_MS);
  want_counter(f->store, "x", -13, f->a, h);
  h = wrs(f->store, f->a, "incr", "x", "-0", T0_MS);
  want_counter(f->store, "x", -13, f->a, h);
  h = wrs(f->store, f->a, "incr", "x", "-9223372036854775795", T0_MS); /* -13 + that = INT64_MIN */
  want_counter(f->store, "x", INT64_MIN, f->a, h);
}

/* Two's complement: the counter wraps identically everywhere (state.h). */
static void test_state_counter_wraps_around(void **state) {
  fixture *f = *state;
  wrs(f->store, f->a, "put", "x", "9223372036854775807", T0_MS);
  uint64_t h = wrs(f->store, f->a, "incr", "x", "1", T0_MS);
  want_counter(f->store, "x", INT64_MIN, f->a, h);
  h = wrs(f->store, f->a, "incr", "x", "-1", T0_MS);
  want_counter(f->store, "x", INT64_MAX, f->a, h);
  wrs(f->store, f->a, "put", "y", "-9223372036854775808", T0_MS);
  h = wrs(f->store, f->a, "incr", "y", "-1", T0_MS);
  want_counter(f->store, "y", INT64_MAX, f->a, h);
  /* Deltas alone wrap too: MAX + MAX = -2. */
  wrs(f->store, f->a, "incr", "z", "9223372036854775807", T0_MS);
  h = wrs(f->store, f->a, "incr", "z", "9223372036854775807", T0_MS);
  want_counter(f->store, "z", -2, f->a, h);
}

static void test_state_other_kinds_change_nothing(void **state) {
  fixture *f = *state;
  uint64_t h = wrs(f->store, f->a, "put", "x", "v", T0_MS);
  uint8_t hash0[VS_HASH_BYTES], hash1[VS_HASH_BYTES];
  assert_err(vs_state_hash(f->store, hash0), VS_OK);
  sbuf d0 = {0}, d1 = {0};
  assert_err(dump_ser(f->store, true, &d0, NULL), VS_OK);
  /* "mesh." kinds are membership ops, which vs_write refuses (test_write);
   * "mesh" alone is a data kind like any other. */
  static const char *kinds[] = {"note", "x.y", "id.add", "mesh", "Put", "PUT", "puts", "delete", "incr.x",
                                "incr2", "counter", "set"};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    wrs(f->store, f->b, kinds[i], "x", "99", T0_MS + 1 + i);
    wrs(f->store, f->b, kinds[i], "other", "1", T0_MS + 1 + i);
  }
  want_value(f->store, "x", "v", f->a, h);
  get_absent(f->store, "other", true);
  assert_err(vs_state_hash(f->store, hash1), VS_OK);
  assert_memory_equal(hash0, hash1, VS_HASH_BYTES);
  assert_err(dump_ser(f->store, true, &d1, NULL), VS_OK);
  assert_true(sb_equal(&d0, &d1));
  sb_free(&d0);
  sb_free(&d1);
}

/* A local incr must carry a signed 64-bit decimal; anything else is refused
 * and writes nothing (not the WAL, not the chain, not the state). */
static void test_state_local_incr_refuses_non_decimal(void **state) {
  fixture *f = *state;
  uint64_t h = wrs(f->store, f->a, "put", "x", "5", T0_MS);
  static const struct {
    const char *p;
    uint32_t n;
  } bad[] = {
      {"abc", 3}, {"+1", 2}, {" 1", 2}, {"1 ", 2}, {"", 0}, {"-", 1}, {"--1", 3}, {"1-", 2}, {"0x10", 4},
      {"1e3", 3}, {"1.0", 3}, {"99999999999999999999", 20}, {"9223372036854775808", 19},
      {"-9223372036854775809", 20}, {"00000000000000000001", 20}, {"1\0", 2}, {"\xff", 1},
  };
  uint64_t lsn0, seq0, lsn1, seq1;
  uint8_t hash0[VS_HASH_BYTES], hash1[VS_HASH_BYTES];
  assert_err(vs_wal_last_lsn(f->store, &lsn0), VS_OK);
  assert_err(vs_wal_head(f->store, f->a, &seq0, NULL, NULL), VS_OK);
  assert_err(vs_state_hash(f->store, hash0), VS_OK);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    vs_err err = wr(f->store, f->a, "incr", "x", 1, bad[i].p, bad[i].n, T0_MS + 1, NULL);
    if (err != VS_ERR_INVAL) fail_msg("incr payload #%zu \"%.*s\": got %s, want VS_ERR_INVAL", i, (int)bad[i].n,
                                      bad[i].p, vs_err_name(err));
  }
  /* In a batch, one bad incr refuses the whole batch. */
  vs_write_req reqs[2];
  memset(reqs, 0, sizeof reqs);
  reqs[0].kind = reqs[1].kind = "incr";
  reqs[0].target = reqs[1].target = (const uint8_t *)"x";
  reqs[0].target_bytes = reqs[1].target_bytes = 1;
  reqs[0].payload = (const uint8_t *)"1";
  reqs[0].payload_bytes = 1;
  reqs[1].payload = (const uint8_t *)"one";
  reqs[1].payload_bytes = 3;
  assert_err(vs_write_batch(f->store, f->a, reqs, 2, T0_MS + 2, NULL), VS_ERR_INVAL);
  assert_err(vs_wal_last_lsn(f->store, &lsn1), VS_OK);
  assert_err(vs_wal_head(f->store, f->a, &seq1, NULL, NULL), VS_OK);
  assert_err(vs_state_hash(f->store, hash1), VS_OK);
  assert_int_equal(lsn0, lsn1);
  assert_int_equal(seq0, seq1);
  assert_memory_equal(hash0, hash1, VS_HASH_BYTES);
  want_value(f->store, "x", "5", f->a, h);
  get_absent(f->store, "y", true);
  /* The edges that are numbers are accepted. */
  wrs(f->store, f->a, "incr", "x", "-9223372036854775808", T0_MS + 3);
  wrs(f->store, f->a, "incr", "x", "9223372036854775807", T0_MS + 3);
  h = wrs(f->store, f->a, "incr", "x", "0000000000000000001", T0_MS + 3);
  want_counter(f->store, "x", 5 - 1 + 1, f->a, h);
}

static void test_state_parse_i64_table(void **state) {
  (void)state;
  static const struct {
    const char *text;
    uint32_t n; /* 0: strlen */
    bool ok;
    int64_t v;
  } t[] = {
      {"0", 0, true, 0},
      {"-0", 0, true, 0},
      {"1", 0, true, 1},
      {"-1", 0, true, -1},
      {"42", 0, true, 42},
      {"007", 0, true, 7},
      {"-007", 0, true, -7},
      {"0000000000000000000", 0, true, 0},  /* 19 digits */
      {"-0000000000000000001", 0, true, -1}, /* '-' and 19 digits */
      {"9223372036854775807", 0, true, INT64_MAX},
      {"-9223372036854775808", 0, true, INT64_MIN},
      {"-9223372036854775807", 0, true, -INT64_MAX},
      {"9223372036854775806", 0, true, INT64_MAX - 1},
      {"9223372036854775808", 0, false, 0},   /* MAX + 1 */
      {"-9223372036854775809", 0, false, 0},  /* MIN - 1 */
      {"9999999999999999999", 0, false, 0},   /* 19 digits, out of range */
      {"18446744073709551616", 0, false, 0},  /* 2^64 */
      {"18446744073709551615", 0, false, 0},  /* 2^64 - 1 */
      {"99999999999999999999", 0, false, 0},  /* 20 digits */
      {"00000000000000000000", 0, false, 0},  /* 20 digits: more than 19 */
      {"00000000000000000001", 0, false, 0},  /* 20 digits */
      {"-00000000000000000001", 0, false, 0}, /* '-' and 20 digits */
      {"", 0, false, 0},
      {"-", 0, false, 0},
      {"+1", 0, false, 0},
      {" 1", 0, false, 0},
      {"1 ", 0, false, 0},
      {"--1", 0, false, 0},
      {"-+1", 0, false, 0},
      {"1-", 0, false, 0},
      {"1a", 0, false, 0},
      {"0x1", 0, false, 0},
      {"1.5", 0, false, 0},
      {"1\0", 2, false, 0},
      {"/", 0, false, 0}, /* the bytes either side of '0'..'9' */
      {":", 0, false, 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    uint32_t n = t[i].n != 0 ? t[i].n : (uint32_t)strlen(t[i].text);
    int64_t v = 12345;
    bool ok = vs_parse_i64((const uint8_t *)t[i].text, n, &v);
    if (ok != t[i].ok) fail_msg("vs_parse_i64(\"%s\"): got %d, want %d", t[i].text, ok, t[i].ok);
    if (ok && v != t[i].v) fail_msg("vs_parse_i64(\"%s\"): got %" PRId64 ", want %" PRId64, t[i].text, v, t[i].v);
    int64_t rv = 0;
    bool rok = ref_parse((const uint8_t *)t[i].text, n, &rv); /* the model agrees with the table */
    if (rok != t[i].ok || (rok && rv != t[i].v)) fail_msg("ref_parse(\"%s\") disagrees with the table", t[i].text);
  }
  int64_t v = 0;
  assert_false(vs_parse_i64(NULL, 0, &v));
}

static void test_state_dump_live_and_tombstones(void **state) {
  fixture *f = *state;
  uint64_t ha = wrs(f->store, f->a, "put", "a", "va", T0_MS);
  wrs(f->store, f->a, "put", "b", "vb", T0_MS);
  uint64_t hb = wrs(f->store, f->b, "del", "b", "", T0_MS);
  wrs(f->store, f->a, "put", "c", "5", T0_MS);
  uint64_t hc = wrs(f->store, f->b, "incr", "c", "2", T0_MS);
  uint64_t hd = wrs(f->store, f->c, "del", "d", "", T0_MS);
  wrs(f->store, f->a, "note", "e", "x", T0_MS);
  uint64_t h0 = wrs(f->store, f->c, "put", "", "empty", T0_MS);

  sbuf want = {0}, live = {0}, all = {0};
  uint32_t n_live = 0, n_all = 0;
  ser_entry(&want, (const uint8_t *)"", 0, VS_STATE_VALUE, (const uint8_t *)"empty", 5, 0, f->c, h0);
  ser_entry(&want, (const uint8_t *)"a", 1, VS_STATE_VALUE, (const uint8_t *)"va", 2, 0, f->a, ha);
  ser_entry(&want, (const uint8_t *)"c", 1, VS_STATE_COUNTER, (const uint8_t *)"7", 1, 7, f->b, hc);
  assert_err(dump_ser(f->store, false, &live, &n_live), VS_OK);
  assert_int_equal(n_live, 3);
  assert_true(sb_equal(&want, &live));
  sb_free(&want);
  ser_entry(&want, (const uint8_t *)"", 0, VS_STATE_VALUE, (const uint8_t *)"empty", 5, 0, f->c, h0);
  ser_entry(&want, (const uint8_t *)"a", 1, VS_STATE_VALUE, (const uint8_t *)"va", 2, 0, f->a, ha);
  ser_entry(&want, (const uint8_t *)"b", 1, VS_STATE_TOMBSTONE, NULL, 0, 0, f->b, hb);
  ser_entry(&want, (const uint8_t *)"c", 1, VS_STATE_COUNTER, (const uint8_t *)"7", 1, 7, f->b, hc);
  ser_entry(&want, (const uint8_t *)"d", 1, VS_STATE_TOMBSTONE, NULL, 0, 0, f->c, hd);
  assert_err(dump_ser(f->store, true, &all, &n_all), VS_OK);
  assert_int_equal(n_all, 5);
  if (!sb_equal(&want, &all)) {
    print_ser("want", &want);
    print_ser("got", &all);
    fail_msg("dump with tombstones differs");
  }
  sb_free(&want);
  sb_free(&live);
  sb_free(&all);
}

static void test_state_get_and_dump_stop_at_callback_error(void **state) {
  fixture *f = *state;
  wrs(f->store, f->a, "put", "a", "1", T0_MS);
  wrs(f->store, f->a, "put", "b", "2", T0_MS);
  wrs(f->store, f->a, "put", "c", "3", T0_MS);
  dump_ctx *d = calloc(1, sizeof *d);
  assert_non_null(d);
  d->order_ok = d->entry_ok = true;
  d->stop_after = 2;
  assert_err(vs_state_dump(f->store, false, dump_cb, d), VS_ERR_LIMIT);
  assert_int_equal(d->count, 2);
  sb_free(&d->out);
  free(d);
  got g;
  memset(&g, 0, sizeof g);
  /* got_cb refuses values past its buffer: VS_ERR_LIMIT comes back as is */
  static uint8_t big[VALUE_COPY_MAX + 1];
  memset(big, 'v', sizeof big);
  assert_err(wr(f->store, f->a, "put", "big", 3, big, sizeof big, T0_MS, NULL), VS_OK);
  assert_err(vs_state_get(f->store, (const uint8_t *)"big", 3, false, got_cb, &g), VS_ERR_LIMIT);
  assert_err(vs_state_get(f->store, NULL, 1, false, got_cb, &g), VS_ERR_INVAL);
  assert_err(vs_state_get(f->store, (const uint8_t *)"a", 1, false, NULL, &g), VS_ERR_INVAL);
  assert_err(vs_state_dump(f->store, false, NULL, NULL), VS_ERR_INVAL);
  static uint8_t too_long[VS_OP_TARGET_BYTES_MAX + 1];
  assert_err(vs_state_get(f->store, too_long, sizeof too_long, true, got_cb, &g), VS_ERR_TOO_LARGE);
}

/* ====================================================================== */
/* 4. The state hash                                                      */
/* ====================================================================== */

static void test_state_hash_of_empty_store_is_zero(void **state) {
  fixture *f = *state;
  uint8_t hash[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  memset(hash, 0xaa, sizeof hash);
  assert_err(vs_state_hash(f->store, hash), VS_OK);
  assert_memory_equal(hash, zero, VS_HASH_BYTES);
  /* Only kinds that leave the state alone: still zero. */
  wrs(f->store, f->a, "note", "x", "1", T0_MS);
  assert_err(vs_state_hash(f->store, hash), VS_OK);
  assert_memory_equal(hash, zero, VS_HASH_BYTES);
  assert_err(vs_state_hash(NULL, hash), VS_ERR_INVAL);
  assert_err(vs_state_hash(f->store, NULL), VS_ERR_INVAL);
}

/* Every change of what the application sees moves the hash; since each
 * entry names its op (origin, hlc), `put x a` again by a later op is a new
 * state and a new hash, not the first one. Ops that change nothing leave
 * it alone, and a tombstone shows nothing: deleting every value gives the
 * hash of the state that never had them (a store that dropped the
 * tombstone has the same hash as one that keeps it). `back`: the write
 * after which the state looked the same (-1: the empty state; -2: a new
 * state). */
static void test_state_hash_moves_with_every_change(void **state) {
  fixture *f = *state;
  static const struct {
    int origin;
    const char *kind, *target, *payload;
    int back;
  } w[] = {
      {0, "put", "x", "a", -2},   {0, "put", "x", "b", -2},  {0, "put", "x", "a", -2},  {1, "put", "x", "a", -2},
      {0, "incr", "x", "0", -2},  {0, "incr", "x", "1", -2}, {1, "incr", "x", "-1", -2}, {0, "del", "x", "", -1},
      {0, "del", "x", "", -1},    {0, "incr", "y", "1", -2}, {0, "note", "x", "1", 9},  {2, "x.y", "y", "1", 9},
      {0, "put", "", "", -2},     {0, "del", "", "", 9},     {1, "put", "y", "1", -2},
  };
  size_t n = sizeof w / sizeof w[0];
  uint8_t after[sizeof w / sizeof w[0]][VS_HASH_BYTES], empty[VS_HASH_BYTES];
  assert_err(vs_state_hash(f->store, empty), VS_OK);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *o = w[i].origin == 0 ? f->a : w[i].origin == 1 ? f->b : f->c;
    wrs(f->store, o, w[i].kind, w[i].target, w[i].payload, T0_MS);
    assert_err(vs_state_hash(f->store, after[i]), VS_OK);
    if (w[i].back >= -1) {
      const uint8_t *want = w[i].back == -1 ? empty : after[w[i].back];
      if (memcmp(after[i], want, VS_HASH_BYTES) != 0) fail_msg("write %zu: the hash is not the one it looked like", i);
      continue;
    }
    if (memcmp(after[i], empty, VS_HASH_BYTES) == 0) fail_msg("write %zu: hash equals the empty state's", i);
    for (size_t j = 0; j < i; j++)
      if (memcmp(after[i], after[j], VS_HASH_BYTES) == 0) fail_msg("write %zu: hash equals the one after write %zu", i, j);
  }
}

/* The hash is a function of the state (what a dump shows): different
 * histories that end in the same dump have the same hash, and it is the XOR
 * of one digest per target. Late ops that change nothing leave it alone. */
static void test_state_hash_is_a_function_of_the_state(void **state) {
  (void)state;
  char dir[512];
  vt_tmpdir(dir, sizeof dir, "state-hash");
  chain a1, a2, a3, b, b2;
  memset(&a1, 0, sizeof a1);
  memset(&a2, 0, sizeof a2);
  memset(&a3, 0, sizeof a3);
  memset(&b, 0, sizeof b);
  memset(&b2, 0, sizeof b2);
  vt_origin(a1.origin, 1);
  vt_origin(a2.origin, 1);
  vt_origin(a3.origin, 1);
  vt_origin(b.origin, 2);
  vt_origin(b2.origin, 2);
  ref_op h1[2], h2[3], hb[3], yonly[3], p8;
  /* History 1: A put x 5 @10, A incr x 3 @20 -> counter 8 named (A, 20). */
  craft(&a1, 10, "put", "x", 1, "5", 1, &h1[0]);
  craft(&a1, 20, "incr", "x", 1, "3", 1, &h1[1]);
  /* History 2 (another chain of A, in another store): put x 2 @10, incr 6
   * @20 -> the same entry; then a note and B's stale put and incr. */
  craft(&a2, 10, "put", "x", 1, "2", 1, &h2[0]);
  craft(&a2, 20, "incr", "x", 1, "6", 1, &h2[1]);
  craft(&a2, 25, "note", "x", 1, "n", 1, &h2[2]);
  craft(&b, 3, "put", "x", 1, "100", 3, &hb[0]);
  craft(&b, 4, "incr", "x", 1, "100", 3, &hb[1]);
  craft(&b, 30, "put", "y", 1, "yy", 2, &hb[2]);
  /* A fork of B: the same entry for y (put "yy" named (B, 30)) after other ops. */
  craft(&b2, 3, "note", "q", 1, "", 0, &yonly[0]);
  craft(&b2, 4, "note", "q", 1, "", 0, &yonly[1]);
  craft(&b2, 30, "put", "y", 1, "yy", 2, &yonly[2]);
  /* A put "8" named (A, 20): same text, origin and hlc as the counter. */
  craft(&a3, 20, "put", "x", 1, "8", 1, &p8);

  vs_store *s1 = open_sub(dir, "s1"), *s2 = open_sub(dir, "s2"), *s3 = open_sub(dir, "s3"),
           *s4 = open_sub(dir, "s4"), *sy = open_sub(dir, "sy"), *s5 = open_sub(dir, "s5");
  uint8_t x1[VS_HASH_BYTES], x2[VS_HASH_BYTES], x3[VS_HASH_BYTES], x4[VS_HASH_BYTES], yo[VS_HASH_BYTES],
      both[VS_HASH_BYTES];
  for (int i = 0; i < 2; i++) assert_err(append_ref(s1, &h1[i], T0_MS), VS_OK);
  for (int i = 0; i < 2; i++) assert_err(append_ref(s2, &h2[i], T0_MS), VS_OK);
  assert_err(vs_state_hash(s1, x1), VS_OK);
  assert_err(vs_state_hash(s2, x2), VS_OK);
  assert_memory_equal(x1, x2, VS_HASH_BYTES);
  /* Stale ops and other kinds: the state does not change, nor the hash. */
  for (int i = 0; i < 3; i++) {
    assert_err(append_ref(s2, i == 0 ? &h2[2] : &hb[i - 1], T0_MS), VS_OK);
    assert_err(vs_state_hash(s2, x2), VS_OK);
    assert_memory_equal(x1, x2, VS_HASH_BYTES);
  }
  want_counter(s2, "x", 8, a2.origin, 20);
  /* XOR per target: H{x, y} = H{x} ^ H{y}. */
  assert_err(append_ref(s2, &hb[2], T0_MS), VS_OK);
  assert_err(vs_state_hash(s2, both), VS_OK);
  /* H{y} = H{B's x, y} ^ H{B's x}: sy holds B's three ops, s5 its first two. */
  for (int i = 0; i < 3; i++) assert_err(append_ref(sy, &hb[i], T0_MS), VS_OK);
  for (int i = 0; i < 2; i++) assert_err(append_ref(s5, &hb[i], T0_MS), VS_OK);
  uint8_t bx[VS_HASH_BYTES];
  assert_err(vs_state_hash(sy, yo), VS_OK);
  assert_err(vs_state_hash(s5, bx), VS_OK);
  uint8_t x_xor_y[VS_HASH_BYTES];
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) x_xor_y[i] = x1[i] ^ yo[i] ^ bx[i];
  assert_memory_equal(both, x_xor_y, VS_HASH_BYTES);
  /* A put entry contributes the hash of its op, so the same entry reached
   * through a forked chain of B (yonly: other ops before it) does not share
   * it; the mesh refuses forks, and an honest origin never repeats an hlc. */
  vs_store *sf = open_sub(dir, "sf");
  for (int i = 0; i < 3; i++) assert_err(append_ref(sf, &yonly[i], T0_MS), VS_OK);
  uint8_t fy[VS_HASH_BYTES], y_only[VS_HASH_BYTES];
  assert_err(vs_state_hash(sf, fy), VS_OK);
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) y_only[i] = yo[i] ^ bx[i];
  assert_memory_not_equal(fy, y_only, VS_HASH_BYTES);
  vs_store_close(sf);
  /* The put "8" is not the counter 8: the kind is part of the state. */
  assert_err(append_ref(s3, &p8, T0_MS), VS_OK);
  assert_err(vs_state_hash(s3, x3), VS_OK);
  assert_memory_not_equal(x1, x3, VS_HASH_BYTES);
  /* Same ops as s2's x and y, another order and history: the same hash. */
  for (int i = 0; i < 3; i++) assert_err(append_ref(s4, &hb[i], T0_MS), VS_OK);
  for (int i = 0; i < 2; i++) assert_err(append_ref(s4, &h1[i], T0_MS), VS_OK);
  assert_err(vs_state_hash(s4, x4), VS_OK);
  assert_memory_equal(x4, both, VS_HASH_BYTES);

  vs_store_close(s1);
  vs_store_close(s2);
  vs_store_close(s3);
  vs_store_close(s4);
  vs_store_close(sy);
  vs_store_close(s5);
  for (int i = 0; i < 2; i++) ref_op_free(&h1[i]);
  for (int i = 0; i < 3; i++) ref_op_free(&h2[i]);
  for (int i = 0; i < 3; i++) ref_op_free(&hb[i]);
  for (int i = 0; i < 3; i++) ref_op_free(&yonly[i]);
  ref_op_free(&p8);
  vt_rmrf(dir);
}

/* ====================================================================== */
/* 5. Long targets                                                        */
/* ====================================================================== */

#define LONG_N 16u

static void test_state_dump_orders_long_targets_by_full_bytes(void **state) {
  fixture *f = *state;
  /* P = 448 bytes; targets share P and differ after it (in the byte right
   * after, in the last of 1024, by length), plus short ones around them. */
  static uint8_t t[LONG_N][VS_OP_TARGET_BYTES_MAX];
  uint32_t tb[LONG_N];
  unsigned n = 0;
  for (unsigned i = 0; i < LONG_N; i++) memset(t[i], 'p', VS_OP_TARGET_BYTES_MAX);
  static const uint8_t after[] = {0x00, 0x01, 'p', 0x7f, 0x80, 0xff};
  for (unsigned i = 0; i < sizeof after; i++) { /* 1024 bytes, byte 448 differs */
    t[n][448] = after[i];
    tb[n++] = 1024;
  }
  t[n][1023] = 'a'; /* differs only in the last byte from t[2] ('p' everywhere) */
  tb[n++] = 1024;
  t[n][1023] = 'z';
  tb[n++] = 1024;
  tb[n++] = 449;  /* P "p": a prefix of the 1024-byte 'p' ones */
  tb[n++] = 700;
  tb[n++] = 448;  /* P itself: short */
  tb[n++] = 447;
  t[n][447] = 'q'; /* 448 bytes, after every P... target */
  tb[n++] = 448;
  memset(t[n], 'q', 600); /* another long group */
  tb[n++] = 600;
  tb[n++] = 0;    /* the empty target */
  t[n][0] = 'a';
  tb[n++] = 1;
  assert_true(n <= LONG_N);
  /* Write in a scrambled order; value = index; some are counters or deleted. */
  for (unsigned k = 0; k < n; k++) {
    unsigned i = (k * 7u + 3u) % n;
    char v[sizeof "4294967295"]; /* room for any unsigned (gcc -O0 -Wformat-truncation) */
    snprintf(v, sizeof v, "%u", i);
    assert_err(wr(f->store, f->a, "put", t[i], tb[i], v, (uint32_t)strlen(v), T0_MS, NULL), VS_OK);
  }
  assert_err(wr(f->store, f->b, "incr", t[1], tb[1], "10", 2, T0_MS, NULL), VS_OK); /* "1" + 10 */
  assert_err(wr(f->store, f->b, "del", t[4], tb[4], "", 0, T0_MS, NULL), VS_OK);
  assert_err(wr(f->store, f->b, "del", t[8], tb[8], "", 0, T0_MS, NULL), VS_OK);

  /* Expected order: sort indices by full bytes. */
  unsigned idx[LONG_N];
  for (unsigned i = 0; i < n; i++) idx[i] = i;
  for (unsigned i = 1; i < n; i++)
    for (unsigned j = i; j > 0 && tcmp(t[idx[j - 1]], tb[idx[j - 1]], t[idx[j]], tb[idx[j]]) > 0; j--) {
      unsigned x = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = x;
    }
  for (int pass = 0; pass < 2; pass++) {
    bool tomb = pass == 1;
    dump_ctx *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->order_ok = d->entry_ok = true;
    d->tombstones = tomb;
    assert_err(vs_state_dump(f->store, tomb, dump_cb, d), VS_OK);
    assert_true(d->order_ok);
    assert_true(d->entry_ok);
    assert_int_equal(d->count, tomb ? n : n - 2);
    /* Walk the serialized dump: targets in idx order (skipping the deleted
     * ones when live only), each with its own value. */
    size_t off = 0;
    for (unsigned k = 0; k < n; k++) {
      unsigned i = idx[k];
      if (!tomb && (i == 4 || i == 8)) continue;
      uint64_t len = 0;
      for (int j = 0; j < 8; j++) len |= (uint64_t)d->out.p[off + j] << (8 * j);
      if (len != tb[i] || (len > 0 && memcmp(d->out.p + off + 8, t[i], len) != 0))
        fail_msg("dump position %u: want target #%u (%u bytes), got %" PRIu64 " bytes", k, i, tb[i], len);
      off += 8 + len;
      uint8_t kind = d->out.p[off++];
      uint64_t vb = 0;
      for (int j = 0; j < 8; j++) vb |= (uint64_t)d->out.p[off + j] << (8 * j);
      const char *v = (const char *)d->out.p + off + 8;
      off += 8 + vb;
      char want[8];
      snprintf(want, sizeof want, "%u", i == 1 ? 11u : i);
      if (i == 4 || i == 8) assert_int_equal(kind, VS_STATE_TOMBSTONE);
      else if (vb != strlen(want) || memcmp(v, want, vb) != 0) fail_msg("target #%u: value %.*s", i, (int)vb, v);
      if (kind == VS_STATE_COUNTER) off += 8;
      off += VS_ORIGIN_BYTES + 8;
    }
    assert_int_equal(off, d->out.n);
    sb_free(&d->out);
    free(d);
  }
  /* Each long target is found by vs_state_get as itself. */
  for (unsigned i = 0; i < n; i++) {
    if (i == 4 || i == 8) continue;
    got g;
    get_ok(f->store, t[i], tb[i], false, &g);
    char want[sizeof "4294967295"];
    snprintf(want, sizeof want, "%u", i == 1 ? 11u : i);
    assert_int_equal(g.value_bytes, strlen(want));
    assert_memory_equal(g.value, want, g.value_bytes);
    assert_int_equal(g.kind, i == 1 ? VS_STATE_COUNTER : VS_STATE_VALUE);
  }
  static uint8_t other[1024];
  memset(other, 'p', sizeof other);
  other[600] = 'x'; /* shares P, never written */
  got g;
  memset(&g, 0, sizeof g);
  assert_err(vs_state_get(f->store, other, sizeof other, true, got_cb, &g), VS_ERR_NOTFOUND);
}

/* ====================================================================== */
/* 6. Version vector                                                      */
/* ====================================================================== */

static void test_state_vv_lists_each_origin_once_in_byte_order(void **state) {
  fixture *f = *state;
  vv_cap vv;
  memset(&vv, 0, sizeof vv);
  assert_err(vs_vv_each(f->store, vv_cb, &vv), VS_OK);
  assert_int_equal(vv.n, 0);
  uint8_t hi[VS_ORIGIN_BYTES], lo[VS_ORIGIN_BYTES], mid[VS_ORIGIN_BYTES];
  vt_origin(hi, 0xf0);
  vt_origin(lo, 0x00);
  vt_origin(mid, 0x80);
  /* Interleaved: hi 2 ops, lo 5, mid 1, plus other kinds (they count too). */
  const uint8_t *order[] = {hi, lo, lo, mid, hi, lo, lo, lo};
  const char *kinds[] = {"put", "incr", "note", "del", "x.y", "put", "put", "incr"};
  for (size_t i = 0; i < 8; i++) wrs(f->store, order[i], kinds[i], "k", "1", T0_MS + i);
  memset(&vv, 0, sizeof vv);
  assert_err(vs_vv_each(f->store, vv_cb, &vv), VS_OK);
  assert_int_equal(vv.n, 3);
  assert_memory_equal(vv.origin[0], lo, VS_ORIGIN_BYTES);
  assert_int_equal(vv.seq[0], 5);
  assert_memory_equal(vv.origin[1], mid, VS_ORIGIN_BYTES);
  assert_int_equal(vv.seq[1], 1);
  assert_memory_equal(vv.origin[2], hi, VS_ORIGIN_BYTES);
  assert_int_equal(vv.seq[2], 2);
  /* A refused write does not move it; the walk stops at fn's error. */
  assert_err(wr(f->store, lo, "incr", "k", 1, "x", 1, T0_MS, NULL), VS_ERR_INVAL);
  memset(&vv, 0, sizeof vv);
  vv.stop_after = 2;
  assert_err(vs_vv_each(f->store, vv_cb, &vv), VS_ERR_BUSY);
  assert_int_equal(vv.n, 2);
  assert_int_equal(vv.seq[0], 5);
  assert_err(vs_vv_each(f->store, NULL, &vv), VS_ERR_INVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_kind_names),
      T(test_state_put_then_get),
      T(test_state_put_then_incr_counts_from_the_value),
      T(test_state_del_leaves_tombstone_then_incr_counts_from_zero),
      T(test_state_incr_on_absent_target),
      T(test_state_incr_after_non_number_counts_from_zero),
      T(test_state_negative_deltas),
      T(test_state_counter_wraps_around),
      T(test_state_other_kinds_change_nothing),
      T(test_state_local_incr_refuses_non_decimal),
      cmocka_unit_test(test_state_parse_i64_table),
      T(test_state_dump_live_and_tombstones),
      T(test_state_get_and_dump_stop_at_callback_error),
      T(test_state_hash_of_empty_store_is_zero),
      T(test_state_hash_moves_with_every_change),
      cmocka_unit_test(test_state_hash_is_a_function_of_the_state),
      T(test_state_dump_orders_long_targets_by_full_bytes),
      T(test_state_vv_lists_each_origin_once_in_byte_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
