/* tests/state_model.h: what the state.h tests share (test_state.c,
 * test_state_order.c, test_state_converge.c): writers, captured entries,
 * serialized dumps, the reference model of the rule (O(n^2), from a set of
 * ops), crafted chains and the store fixture. Include it after defining
 * _XOPEN_SOURCE 700 (mkdtemp, nftw). */
#ifndef VIXSYNC_STATE_MODEL_H
#define VIXSYNC_STATE_MODEL_H

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
#include "apply.h"    /* vs_wal_append: internal since issue 15 */
#include "internal.h" /* vs_parse_i64: internal since issue 15 */
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
static inline vs_store *open_sub(const char *dir, const char *name) {
  char path[600];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  assert_true(n > 0 && (size_t)n < sizeof path);
  assert_int_equal(mkdir(path, 0700), 0);
  vs_store *s = NULL;
  assert_err(vt_store_open(path, MAP_BYTES, &s), VS_OK);
  return s;
}

static inline vs_err wr(vs_store *s, const uint8_t *origin, const char *kind, const void *target, uint32_t target_bytes,
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
static inline uint64_t wrs(vs_store *s, const uint8_t *origin, const char *kind, const char *target, const char *payload,
                           uint64_t now_ms) {
  vs_write_result res;
  assert_err(wr(s, origin, kind, target, (uint32_t)strlen(target), payload, (uint32_t)strlen(payload), now_ms, &res),
             VS_OK);
  return res.hlc;
}

static inline int tcmp(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn) {
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

static inline vs_err got_cb(const vs_state_entry *e, void *ctx) {
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

static inline void get_ok(vs_store *s, const void *target, uint32_t target_bytes, bool tombstones, got *g) {
  memset(g, 0, sizeof *g);
  assert_err(vs_state_get(s, target, target_bytes, tombstones, got_cb, g), VS_OK);
  assert_int_equal(g->calls, 1);
  assert_int_equal(g->target_bytes, target_bytes);
  if (target_bytes > 0) assert_memory_equal(g->target, target, target_bytes);
}

/* Target `target` holds a put's value `value`, named by (origin, hlc). */
static inline void want_value(vs_store *s, const char *target, const char *value, const uint8_t *origin, uint64_t hlc) {
  got g;
  get_ok(s, target, (uint32_t)strlen(target), false, &g);
  assert_int_equal(g.kind, VS_STATE_VALUE);
  assert_int_equal(g.value_bytes, strlen(value));
  if (g.value_bytes > 0) assert_memory_equal(g.value, value, g.value_bytes);
  assert_memory_equal(g.origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(g.hlc, hlc);
}

/* Target `target` is a counter worth `v`, named by (origin, hlc). */
static inline void want_counter(vs_store *s, const char *target, int64_t v, const uint8_t *origin, uint64_t hlc) {
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

/* ---- serialized dumps: the bytes two states are compared by ---- */

typedef struct sbuf {
  uint8_t *p;
  size_t n, cap;
} sbuf;

static inline void sb_put(sbuf *b, const void *d, size_t n) {
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

static inline void sb_u64(sbuf *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
  sb_put(b, x, 8);
}

static inline void sb_free(sbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* target, kind, value, (counter), origin, hlc. */
static inline void ser_entry(sbuf *b, const uint8_t *target, uint32_t target_bytes, vs_state_kind kind, const uint8_t *value,
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

static inline vs_err dump_cb(const vs_state_entry *e, void *ctx) {
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
static inline vs_err dump_ser(vs_store *s, bool tombstones, sbuf *out, uint32_t *count_out) {
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
static inline void print_ser(const char *title, const sbuf *b) {
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

static inline bool sb_equal(const sbuf *a, const sbuf *b) { return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0); }

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

static inline uint8_t *dup_bytes(const uint8_t *p, uint32_t n) {
  uint8_t *d = malloc(n > 0 ? n : 1);
  assert_non_null(d);
  if (n > 0) memcpy(d, p, n);
  return d;
}

static inline void ref_op_free(ref_op *r) {
  free(r->target);
  free(r->payload);
  r->target = r->payload = NULL;
}

/* The model's own reading of "optional '-', 1 to 19 digits, in range":
 * compare the digit string with the bound as text, then accumulate. */
static inline bool ref_parse(const uint8_t *t, uint32_t n, int64_t *out) {
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

static inline int64_t to_i64(uint64_t u) { return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(UINT64_MAX - u) - 1; }

/* (hlc, origin) of a strictly greater than of b. */
static inline bool ref_gt(const ref_op *a, const ref_op *b) {
  if (a->hlc != b->hlc) return a->hlc > b->hlc;
  return memcmp(a->origin, b->origin, VS_ORIGIN_BYTES) > 0;
}

static inline bool is_state_kind(const char *k) { return strcmp(k, "put") == 0 || strcmp(k, "del") == 0 || strcmp(k, "incr") == 0; }

static inline bool same_target(const ref_op *a, const ref_op *b) {
  return tcmp(a->target, a->target_bytes, b->target, b->target_bytes) == 0;
}

/* Serialize the reference dump of ops[0..n) whose `held[i]` is set (NULL:
 * all). Ties in (hlc, origin) never occur in the histories compared here. */
static inline void ref_dump(const ref_op *ops, size_t n, const bool *held, bool tombstones, sbuf *out) {
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
static inline vs_err append_ref(vs_store *s, const ref_op *r, uint64_t now_ms) {
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

static inline vs_err collect_cb(const vs_wal_record *rec, void *ctx) {
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

static inline void craft(chain *c, uint64_t hlc, const char *kind, const void *target, uint32_t target_bytes,
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

static inline vs_err vv_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_cap *v = ctx;
  if (v->n == 8) return VS_ERR_LIMIT;
  memcpy(v->origin[v->n], origin, VS_ORIGIN_BYTES);
  v->seq[v->n] = seq;
  v->n++;
  if (v->stop_after > 0 && v->n == v->stop_after) return VS_ERR_BUSY;
  return VS_OK;
}

typedef struct fixture {
  char dir[512];
  vs_store *store;
  uint8_t a[VS_ORIGIN_BYTES], b[VS_ORIGIN_BYTES], c[VS_ORIGIN_BYTES];
} fixture;

static inline int setup(void **state) {
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

static inline int teardown(void **state) {
  fixture *f = *state;
  vt_store_teardown(f->dir, f->store);
  free(f);
  return 0;
}

typedef struct step {
  int origin; /* index into the scenario's origins */
  const char *kind;
  const char *target;
  const char *payload;
  uint64_t now_ms;
} step;

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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif /* VIXSYNC_STATE_MODEL_H */
