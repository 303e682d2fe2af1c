/* tests/test_state.c: pins include/vixsync/state.h.
 *
 * The rules of the materialized state through vs_write (put, del, incr,
 * counters, tombstones, wrap-around, other kinds, refused incr payloads,
 * vs_parse_i64); late bases arriving in every order through vs_wal_append;
 * convergence (G5) as a property over random histories, checked against an
 * independent O(n^2) model of the rule; the state hash; long targets in a
 * dump; the version vector.
 *
 * VS_STATE_SEEDS sets the number of random histories (default 200),
 * VS_STATE_SEED0 the first seed (default 1): a failure names its seed.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "internal.h" /* vs_wal_append, vs_parse_i64: internal since issue 15 */
#include "testutil.h"
#include "vixsync/op.h"
#include "vixsync/state.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "vixsync/write.h"

#define MIB (1024ull * 1024ull)
#define MAP_BYTES (64u * MIB)
#define T0_MS 1700000000000ull
#define SEEDS_DEFAULT 200u
#define SEEDS_MAX 1000000u
#define ORIGINS_MAX 4u
#define OPS_PER_ORIGIN_MAX 40u
#define OPS_MAX (ORIGINS_MAX * OPS_PER_ORIGIN_MAX)
#define TARGET_STORES 3u
#define VALUE_COPY_MAX 1100u

/* ---- small helpers ---- */

/* Make DIR/name and open a store there. */
static vs_store *open_sub(const char *dir, const char *name) {
  char path[600];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  assert_true(n > 0 && (size_t)n < sizeof path);
  assert_int_equal(mkdir(path, 0700), 0);
  vs_store *s = NULL;
  assert_err(vt_store_open(path, MAP_BYTES, &s), VS_OK);
  return s;
}

static vs_err wr(vs_store *s, const uint8_t *origin, const char *kind, const void *target, uint32_t target_bytes,
                 const void *payload, uint32_t payload_bytes, uint64_t now_ms, vs_write_result *res) {
  vs_write_req req;
  memset(&req, 0, sizeof req);
  req.kind = kind;
  req.target = target;
  req.target_bytes = target_bytes;
  req.payload = payload;
  req.payload_bytes = payload_bytes;
  return vs_write(s, origin, &req, now_ms, res);
}

/* A write of strings that must succeed; returns its hlc. */
static uint64_t wrs(vs_store *s, const uint8_t *origin, const char *kind, const char *target, const char *payload,
                    uint64_t now_ms) {
  vs_write_result res;
  assert_err(wr(s, origin, kind, target, (uint32_t)strlen(target), payload, (uint32_t)strlen(payload), now_ms, &res),
             VS_OK);
  return res.hlc;
}

static int tcmp(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn) {
  uint32_t n = an < bn ? an : bn;
  int c = n > 0 ? memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return an < bn ? -1 : an > bn;
}

/* ---- one entry, captured ---- */

typedef struct got {
  int calls;
  uint8_t target[VS_OP_TARGET_BYTES_MAX];
  uint32_t target_bytes;
  vs_state_kind kind;
  bool value_null;
  uint8_t value[VALUE_COPY_MAX];
  uint32_t value_bytes;
  int64_t counter;
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t hlc;
} got;

static vs_err got_cb(const vs_state_entry *e, void *ctx) {
  got *g = ctx;
  g->calls++;
  if (e->target_bytes > sizeof g->target || e->value_bytes > sizeof g->value) return VS_ERR_LIMIT;
  g->target_bytes = e->target_bytes;
  if (e->target_bytes > 0) memcpy(g->target, e->target, e->target_bytes);
  g->kind = e->kind;
  g->value_null = e->value == NULL;
  g->value_bytes = e->value_bytes;
  if (e->value_bytes > 0) memcpy(g->value, e->value, e->value_bytes);
  g->counter = e->counter;
  memcpy(g->origin, e->origin, VS_ORIGIN_BYTES);
  g->hlc = e->hlc;
  return VS_OK;
}

static void get_ok(vs_store *s, const void *target, uint32_t target_bytes, bool tombstones, got *g) {
  memset(g, 0, sizeof *g);
  assert_err(vs_state_get(s, target, target_bytes, tombstones, got_cb, g), VS_OK);
  assert_int_equal(g->calls, 1);
  assert_int_equal(g->target_bytes, target_bytes);
  if (target_bytes > 0) assert_memory_equal(g->target, target, target_bytes);
}

static void get_absent(vs_store *s, const char *target, bool tombstones) {
  got g;
  memset(&g, 0, sizeof g);
  assert_err(vs_state_get(s, (const uint8_t *)target, (uint32_t)strlen(target), tombstones, got_cb, &g), VS_ERR_NOTFOUND);
  assert_int_equal(g.calls, 0);
}

/* Target `target` holds a put's value `value`, named by (origin, hlc). */
static void want_value(vs_store *s, const char *target, const char *value, const uint8_t *origin, uint64_t hlc) {
  got g;
  get_ok(s, target, (uint32_t)strlen(target), false, &g);
  assert_int_equal(g.kind, VS_STATE_VALUE);
  assert_int_equal(g.value_bytes, strlen(value));
  if (g.value_bytes > 0) assert_memory_equal(g.value, value, g.value_bytes);
  assert_memory_equal(g.origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(g.hlc, hlc);
}

/* Target `target` is a counter worth `v`, named by (origin, hlc). */
static void want_counter(vs_store *s, const char *target, int64_t v, const uint8_t *origin, uint64_t hlc) {
  got g;
  get_ok(s, target, (uint32_t)strlen(target), false, &g);
  assert_int_equal(g.kind, VS_STATE_COUNTER);
  assert_true(g.counter == v);
  char text[32];
  int n = snprintf(text, sizeof text, "%" PRId64, v);
  assert_false(g.value_null);
  assert_int_equal(g.value_bytes, (uint32_t)n);
  assert_memory_equal(g.value, text, (size_t)n);
  assert_memory_equal(g.origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(g.hlc, hlc);
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

/* ---- serialized dumps: the bytes two states are compared by ---- */

typedef struct sbuf {
  uint8_t *p;
  size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap == 0 ? 256 : b->cap;
    while (cap < b->n + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    assert_non_null(p);
    b->p = p;
    b->cap = cap;
  }
  if (n > 0) memcpy(b->p + b->n, d, n);
  b->n += n;
}

static void sb_u64(sbuf *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
  sb_put(b, x, 8);
}

static void sb_free(sbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* target, kind, value, (counter), origin, hlc. */
static void ser_entry(sbuf *b, const uint8_t *target, uint32_t target_bytes, vs_state_kind kind, const uint8_t *value,
                      uint32_t value_bytes, int64_t counter, const uint8_t *origin, uint64_t hlc) {
  sb_u64(b, target_bytes);
  sb_put(b, target, target_bytes);
  uint8_t k = (uint8_t)kind;
  sb_put(b, &k, 1);
  sb_u64(b, value_bytes);
  sb_put(b, value, value_bytes);
  if (kind == VS_STATE_COUNTER) sb_u64(b, (uint64_t)counter);
  sb_put(b, origin, VS_ORIGIN_BYTES);
  sb_u64(b, hlc);
}

typedef struct dump_ctx {
  sbuf out;
  uint32_t count;
  bool order_ok;  /* strictly increasing targets */
  bool entry_ok;  /* each entry consistent with its kind */
  bool tombstones;
  uint8_t prev[VS_OP_TARGET_BYTES_MAX];
  uint32_t prev_bytes;
  uint32_t stop_after; /* 0: never stop */
} dump_ctx;

static vs_err dump_cb(const vs_state_entry *e, void *ctx) {
  dump_ctx *d = ctx;
  if (e->target_bytes > VS_OP_TARGET_BYTES_MAX || (e->target == NULL && e->target_bytes > 0)) d->entry_ok = false;
  if (d->count > 0 && tcmp(d->prev, d->prev_bytes, e->target, e->target_bytes) >= 0) d->order_ok = false;
  if (e->target_bytes > 0 && e->target_bytes <= VS_OP_TARGET_BYTES_MAX) memcpy(d->prev, e->target, e->target_bytes);
  d->prev_bytes = e->target_bytes;
  switch (e->kind) {
    case VS_STATE_VALUE:
      if (e->value == NULL && e->value_bytes > 0) d->entry_ok = false;
      break;
    case VS_STATE_COUNTER: {
      char text[32];
      int n = snprintf(text, sizeof text, "%" PRId64, e->counter);
      if (e->value == NULL || e->value_bytes != (uint32_t)n || memcmp(e->value, text, (size_t)n) != 0)
        d->entry_ok = false;
      break;
    }
    case VS_STATE_TOMBSTONE:
      if (!d->tombstones || e->value != NULL || e->value_bytes != 0) d->entry_ok = false;
      break;
    default:
      d->entry_ok = false;
  }
  ser_entry(&d->out, e->target, e->target_bytes, e->kind, e->value, e->value_bytes, e->counter, e->origin, e->hlc);
  d->count++;
  if (d->stop_after > 0 && d->count == d->stop_after) return VS_ERR_LIMIT;
  return VS_OK;
}

/* Dump `s` into `out` (serialized), checking order and entry shapes. */
static vs_err dump_ser(vs_store *s, bool tombstones, sbuf *out, uint32_t *count_out) {
  dump_ctx *d = calloc(1, sizeof *d);
  assert_non_null(d);
  d->order_ok = d->entry_ok = true;
  d->tombstones = tombstones;
  vs_err err = vs_state_dump(s, tombstones, dump_cb, d);
  bool ok = d->order_ok && d->entry_ok;
  *out = d->out;
  if (count_out != NULL) *count_out = d->count;
  free(d);
  if (err == VS_OK && !ok) return VS_ERR_CORRUPT; /* reported by the callers' checks */
  return err;
}

/* Print a serialized dump, one entry a line, for a failure message. */
static void print_ser(const char *title, const sbuf *b) {
  print_message("%s (%zu bytes):\n", title, b->n);
  size_t i = 0;
  for (uint32_t guard = 0; i < b->n && guard < 100000; guard++) {
    uint64_t tb = 0, vb = 0, hlc = 0, ctr = 0;
    for (int j = 0; j < 8; j++) tb |= (uint64_t)b->p[i + j] << (8 * j);
    const uint8_t *t = b->p + i + 8;
    i += 8 + tb;
    uint8_t kind = b->p[i++];
    for (int j = 0; j < 8; j++) vb |= (uint64_t)b->p[i + j] << (8 * j);
    const uint8_t *v = b->p + i + 8;
    i += 8 + vb;
    if (kind == VS_STATE_COUNTER) {
      for (int j = 0; j < 8; j++) ctr |= (uint64_t)b->p[i + j] << (8 * j);
      i += 8;
    }
    const uint8_t *o = b->p + i;
    i += VS_ORIGIN_BYTES;
    for (int j = 0; j < 8; j++) hlc |= (uint64_t)b->p[i + j] << (8 * j);
    i += 8;
    print_message("  target[%" PRIu64 "]=%.*s kind=%s value=%.*s counter=%" PRId64 " origin=%02x.. hlc=%" PRIu64 "\n",
                  tb, (int)(tb > 24 ? 24 : tb), (const char *)t, vs_state_kind_name((vs_state_kind)kind),
                  (int)(vb > 24 ? 24 : vb), (const char *)v, (int64_t)ctr, o[0], hlc);
  }
}

static bool sb_equal(const sbuf *a, const sbuf *b) { return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0); }

/* ---- the reference model: the rule of state.h, O(n^2), from a set of ops ---- */

typedef struct ref_op {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;
  uint64_t hlc;
  uint8_t prev[VS_HASH_BYTES];
  char kind[VS_OP_KIND_BYTES_MAX + 1];
  uint8_t *target;
  uint32_t target_bytes;
  uint8_t *payload;
  uint32_t payload_bytes;
} ref_op;

static uint8_t *dup_bytes(const uint8_t *p, uint32_t n) {
  uint8_t *d = malloc(n > 0 ? n : 1);
  assert_non_null(d);
  if (n > 0) memcpy(d, p, n);
  return d;
}

static void ref_op_free(ref_op *r) {
  free(r->target);
  free(r->payload);
  r->target = r->payload = NULL;
}

/* The model's own reading of "optional '-', 1 to 19 digits, in range":
 * compare the digit string with the bound as text, then accumulate. */
static bool ref_parse(const uint8_t *t, uint32_t n, int64_t *out) {
  bool neg = n > 0 && t[0] == '-';
  uint32_t start = neg ? 1u : 0u, digits = n - start;
  if (n == 0 || digits < 1 || digits > 19) return false;
  for (uint32_t i = start; i < n; i++)
    if (t[i] < '0' || t[i] > '9') return false;
  uint32_t z = start;
  while (z < n - 1 && t[z] == '0') z++; /* strip leading zeros, keep one digit */
  const char *bound = neg ? "9223372036854775808" : "9223372036854775807";
  uint32_t sig = n - z;
  if (sig == 19 && memcmp(t + z, bound, 19) > 0) return false;
  uint64_t v = 0;
  for (uint32_t i = z; i < n; i++) v = v * 10u + (uint64_t)(t[i] - '0');
  if (!neg) *out = (int64_t)v;
  else *out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
  return true;
}

static int64_t to_i64(uint64_t u) { return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(UINT64_MAX - u) - 1; }

/* (hlc, origin) of a strictly greater than of b. */
static bool ref_gt(const ref_op *a, const ref_op *b) {
  if (a->hlc != b->hlc) return a->hlc > b->hlc;
  return memcmp(a->origin, b->origin, VS_ORIGIN_BYTES) > 0;
}

static bool is_state_kind(const char *k) { return strcmp(k, "put") == 0 || strcmp(k, "del") == 0 || strcmp(k, "incr") == 0; }

static bool same_target(const ref_op *a, const ref_op *b) {
  return tcmp(a->target, a->target_bytes, b->target, b->target_bytes) == 0;
}

/* Serialize the reference dump of ops[0..n) whose `held[i]` is set (NULL:
 * all). Ties in (hlc, origin) never occur in the histories compared here. */
static void ref_dump(const ref_op *ops, size_t n, const bool *held, bool tombstones, sbuf *out) {
  size_t *tix = malloc(sizeof *tix * (n > 0 ? n : 1));
  assert_non_null(tix);
  size_t tn = 0;
  for (size_t i = 0; i < n; i++) {
    if ((held != NULL && !held[i]) || !is_state_kind(ops[i].kind)) continue;
    bool seen = false;
    for (size_t j = 0; j < tn && !seen; j++) seen = same_target(&ops[tix[j]], &ops[i]);
    if (!seen) tix[tn++] = i;
  }
  for (size_t i = 1; i < tn; i++) /* insertion sort by target bytes */
    for (size_t j = i; j > 0 && tcmp(ops[tix[j - 1]].target, ops[tix[j - 1]].target_bytes, ops[tix[j]].target,
                                     ops[tix[j]].target_bytes) > 0;
         j--) {
      size_t t = tix[j];
      tix[j] = tix[j - 1];
      tix[j - 1] = t;
    }
  for (size_t ti = 0; ti < tn; ti++) {
    const ref_op *t = &ops[tix[ti]];
    const ref_op *base = NULL, *last = NULL;
    for (size_t i = 0; i < n; i++) {
      const ref_op *o = &ops[i];
      if ((held != NULL && !held[i]) || !same_target(o, t)) continue;
      if ((strcmp(o->kind, "put") == 0 || strcmp(o->kind, "del") == 0) && (base == NULL || ref_gt(o, base))) base = o;
    }
    uint64_t count = 0, sum = 0;
    last = base;
    for (size_t i = 0; i < n; i++) {
      const ref_op *o = &ops[i];
      if ((held != NULL && !held[i]) || !same_target(o, t) || strcmp(o->kind, "incr") != 0) continue;
      if (base != NULL && !ref_gt(o, base)) continue;
      int64_t d = 0;
      if (!ref_parse(o->payload, o->payload_bytes, &d)) d = 0;
      count++;
      sum += (uint64_t)d;
      if (last == NULL || ref_gt(o, last)) last = o;
    }
    assert_non_null(last);
    if (count > 0) {
      int64_t b = 0;
      if (base != NULL && strcmp(base->kind, "put") == 0 && !ref_parse(base->payload, base->payload_bytes, &b)) b = 0;
      int64_t c = to_i64((uint64_t)b + sum);
      char text[32];
      int tn2 = snprintf(text, sizeof text, "%" PRId64, c);
      ser_entry(out, t->target, t->target_bytes, VS_STATE_COUNTER, (const uint8_t *)text, (uint32_t)tn2, c,
                last->origin, last->hlc);
    } else if (strcmp(base->kind, "put") == 0) {
      ser_entry(out, t->target, t->target_bytes, VS_STATE_VALUE, base->payload, base->payload_bytes, 0, last->origin,
                last->hlc);
    } else if (tombstones) {
      ser_entry(out, t->target, t->target_bytes, VS_STATE_TOMBSTONE, NULL, 0, 0, last->origin, last->hlc);
    }
  }
  free(tix);
}

/* Append a held op (rebuilt from its parts) to `s`. */
static vs_err append_ref(vs_store *s, const ref_op *r, uint64_t now_ms) {
  vs_op op;
  vs_err err = vs_op_init(&op, r->origin, r->seq, r->hlc, r->prev, r->kind, r->target, r->target_bytes, r->payload,
                          r->payload_bytes);
  if (err != VS_OK) return err;
  return vs_wal_append(s, &op, now_ms, NULL);
}

/* Collect a store's ops (all of them, in LSN order) as owned copies. */
typedef struct collect {
  ref_op *ops;
  size_t n, cap;
} collect;

static vs_err collect_cb(const vs_wal_record *rec, void *ctx) {
  collect *c = ctx;
  if (c->n == c->cap) return VS_ERR_LIMIT;
  ref_op *r = &c->ops[c->n++];
  memset(r, 0, sizeof *r);
  memcpy(r->origin, rec->op.origin, VS_ORIGIN_BYTES);
  r->seq = rec->op.seq;
  r->hlc = rec->op.hlc;
  memcpy(r->prev, rec->op.prev, VS_HASH_BYTES);
  memcpy(r->kind, rec->op.kind, sizeof r->kind);
  r->target = dup_bytes(rec->op.target, rec->op.target_bytes);
  r->target_bytes = rec->op.target_bytes;
  r->payload = dup_bytes(rec->op.payload, rec->op.payload_bytes);
  r->payload_bytes = rec->op.payload_bytes;
  return VS_OK;
}

/* Craft the next op of an origin's chain by hand (any hlc), as a peer could. */
typedef struct chain {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;
  uint8_t head[VS_HASH_BYTES];
} chain;

static void craft(chain *c, uint64_t hlc, const char *kind, const void *target, uint32_t target_bytes,
                  const void *payload, uint32_t payload_bytes, ref_op *out) {
  memset(out, 0, sizeof *out);
  memcpy(out->origin, c->origin, VS_ORIGIN_BYTES);
  out->seq = c->seq + 1;
  out->hlc = hlc;
  memcpy(out->prev, c->head, VS_HASH_BYTES);
  snprintf(out->kind, sizeof out->kind, "%s", kind);
  out->target = dup_bytes(target, target_bytes);
  out->target_bytes = target_bytes;
  out->payload = dup_bytes(payload, payload_bytes);
  out->payload_bytes = payload_bytes;
  vs_op op;
  assert_err(vs_op_init(&op, out->origin, out->seq, hlc, out->prev, kind, out->target, target_bytes, out->payload,
                        payload_bytes),
             VS_OK);
  assert_err(vs_op_hash(&op, c->head), VS_OK);
  c->seq++;
}

/* ---- version vectors ---- */

typedef struct vv_cap {
  uint32_t n;
  uint8_t origin[8][VS_ORIGIN_BYTES];
  uint64_t seq[8];
  uint32_t stop_after;
} vv_cap;

static vs_err vv_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_cap *v = ctx;
  if (v->n == 8) return VS_ERR_LIMIT;
  memcpy(v->origin[v->n], origin, VS_ORIGIN_BYTES);
  v->seq[v->n] = seq;
  v->n++;
  if (v->stop_after > 0 && v->n == v->stop_after) return VS_ERR_BUSY;
  return VS_OK;
}

/* ====================================================================== */
/* 1. The rules, through vs_write on one store                            */
/* ====================================================================== */

typedef struct fixture {
  char dir[512];
  vs_store *store;
  uint8_t a[VS_ORIGIN_BYTES], b[VS_ORIGIN_BYTES], c[VS_ORIGIN_BYTES];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL || vt_store_setup(f->dir, sizeof f->dir, "state", MAP_BYTES, &f->store) != 0) {
    free(f);
    return -1;
  }
  vt_origin(f->a, 1);
  vt_origin(f->b, 2);
  vt_origin(f->c, 3);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  vt_store_teardown(f->dir, f->store);
  free(f);
  return 0;
}

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
  static const char *kinds[] = {"note", "x.y", "id.add", "mesh.rekey", "Put", "PUT", "puts", "delete", "incr.x",
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
/* 2. Late bases: the value follows the rule whatever the arrival order   */
/* ====================================================================== */

typedef struct step {
  int origin; /* index into the scenario's origins */
  const char *kind;
  const char *target;
  const char *payload;
  uint64_t now_ms;
} step;

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

typedef struct scenario {
  const char *name;
  step steps[6];
  size_t n;
  /* the expected final entry of "x" */
  vs_state_kind kind;
  const char *value;
  int64_t counter;
  int by;           /* origin index of the entry's op */
  uint64_t by_ms;   /* its wall ms */
  uint16_t by_ctr;  /* its HLC counter */
} scenario;

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

/* Every change of the state moves the hash; since each entry names its op
 * (origin, hlc), `put x a` again by a later op is a new state and a new
 * hash, not the first one. Ops that change nothing leave it alone. */
static void test_state_hash_moves_with_every_change(void **state) {
  fixture *f = *state;
  static const struct {
    int origin;
    const char *kind, *target, *payload;
    bool changes;
  } w[] = {
      {0, "put", "x", "a", true},   {0, "put", "x", "b", true},   {0, "put", "x", "a", true},
      {1, "put", "x", "a", true},   {0, "incr", "x", "0", true},  {0, "incr", "x", "1", true},
      {1, "incr", "x", "-1", true}, {0, "del", "x", "", true},    {0, "del", "x", "", true},
      {0, "incr", "y", "1", true},  {0, "note", "x", "1", false}, {2, "x.y", "y", "1", false},
      {0, "put", "", "", true},     {0, "del", "", "", true},     {1, "put", "y", "1", true},
  };
  uint8_t seen[sizeof w / sizeof w[0] + 1][VS_HASH_BYTES];
  size_t n_seen = 1;
  assert_err(vs_state_hash(f->store, seen[0]), VS_OK);
  for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
    const uint8_t *o = w[i].origin == 0 ? f->a : w[i].origin == 1 ? f->b : f->c;
    wrs(f->store, o, w[i].kind, w[i].target, w[i].payload, T0_MS);
    uint8_t h[VS_HASH_BYTES];
    assert_err(vs_state_hash(f->store, h), VS_OK);
    if (!w[i].changes) {
      if (memcmp(h, seen[n_seen - 1], VS_HASH_BYTES) != 0) fail_msg("write %zu changed nothing but moved the hash", i);
      continue;
    }
    for (size_t j = 0; j < n_seen; j++)
      if (memcmp(h, seen[j], VS_HASH_BYTES) == 0) fail_msg("write %zu: hash equals the one after write %zu", i, j);
    memcpy(seen[n_seen++], h, VS_HASH_BYTES);
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

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
      cmocka_unit_test(test_state_late_base_any_arrival_order),
      T(test_state_received_non_number_incr_counts_zero),
      cmocka_unit_test(test_state_same_hlc_incrs_converge),
      cmocka_unit_test(test_state_incr_at_the_base_key_does_not_count),
      cmocka_unit_test(test_state_converges_whatever_the_arrival_order),
      cmocka_unit_test(test_state_converges_for_crafted_chains),
      T(test_state_hash_of_empty_store_is_zero),
      T(test_state_hash_moves_with_every_change),
      cmocka_unit_test(test_state_hash_is_a_function_of_the_state),
      T(test_state_dump_orders_long_targets_by_full_bytes),
      T(test_state_vv_lists_each_origin_once_in_byte_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
