/* tests/apply_nodes.h: what the apply.h tests share (test_apply.c,
 * test_apply_fork.c): nodes (a store with an identity), the sender that
 * copies one origin's operations out of the WAL and cuts them into signed
 * runs, and observers of a store. */
#ifndef VIXSYNC_APPLY_NODES_H
#define VIXSYNC_APPLY_NODES_H

#include "testutil.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "apply.h"
#include "wire.h"
#include "vixsync/identity.h"
#include "vixsync/op.h"
#include "vixsync/outbox.h"
#include "vixsync/state.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "vixsync/write.h"

#define T0_MS 1700000000000ull
#define MIB (1024ull * 1024ull)
#define OPS_MAX 1024u  /* operations one list holds (bounds the replay copy) */
#define RUNS_MAX 256u  /* runs one cut holds */
#define DUMP_BYTES_MAX (1024u * 1024u)
#define HLC_SLACK 64u  /* "small": counter steps of a few local writes */

typedef struct node {
  char dir[512];
  vs_store *store;
  vs_identity id;
} node;

static inline void seed_fill(uint8_t seed[VS_SEED_BYTES], uint8_t salt) {
  for (unsigned i = 0; i < VS_SEED_BYTES; i++) seed[i] = (uint8_t)(salt * 31u + i);
}

/* A fresh store in its own directory with the identity of seed `salt`
 * (installed unless `with_identity` is false). */
static inline void node_open_ex(node *n, const char *tag, uint8_t salt, bool with_identity) {
  memset(n, 0, sizeof *n);
  vt_tmpdir(n->dir, sizeof n->dir, tag);
  assert_err(vt_store_open(n->dir, 64 * MIB, &n->store), VS_OK);
  uint8_t seed[VS_SEED_BYTES];
  seed_fill(seed, salt);
  assert_err(vs_identity_from_seed(seed, &n->id), VS_OK);
  if (with_identity) assert_err(vs_store_set_identity(n->store, &n->id), VS_OK);
}

static inline void node_open(node *n, const char *tag, uint8_t salt) { node_open_ex(n, tag, salt, true); }

static inline void node_close(node *n) {
  vs_store_close(n->store);
  n->store = NULL;
  vt_rmrf(n->dir);
  vs_identity_wipe(&n->id);
}

static inline vs_write_req req_of(const char *kind, const char *target, const char *payload) {
  vs_write_req r;
  memset(&r, 0, sizeof r);
  r.kind = kind;
  r.target = (const uint8_t *)target;
  r.target_bytes = (uint32_t)strlen(target);
  r.payload = (const uint8_t *)payload;
  r.payload_bytes = payload != NULL ? (uint32_t)strlen(payload) : 0u;
  return r;
}

/* One local write by the node's own origin; returns its result. */
static inline vs_write_result wr(node *n, const char *kind, const char *target, const char *payload, uint64_t now_ms) {
  vs_write_req r = req_of(kind, target, payload);
  vs_write_result res;
  assert_err(vs_write(n->store, n->id.pk, &r, now_ms, &res), VS_OK);
  return res;
}

typedef struct oplist {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint32_t count;              /* ops[i].seq == i + 1 */
  vs_op ops[OPS_MAX];
  uint8_t hashes[OPS_MAX][VS_HASH_BYTES];
  uint64_t lsns[OPS_MAX];
  uint8_t *bufs[OPS_MAX];      /* target || payload of ops[i] */
} oplist;

static inline vs_err collect_cb(const vs_wal_record *rec, void *ctx) {
  oplist *l = ctx;
  if (memcmp(rec->op.origin, l->origin, VS_ORIGIN_BYTES) != 0) return VS_OK;
  /* One origin's ops are stored in seq order, gapless from 1. */
  if (l->count >= OPS_MAX || rec->op.seq != (uint64_t)l->count + 1u) return VS_ERR_LIMIT;
  size_t bytes = (size_t)rec->op.target_bytes + rec->op.payload_bytes;
  uint8_t *buf = malloc(bytes + 1u);
  if (buf == NULL) return VS_ERR_NOMEM;
  if (rec->op.target_bytes > 0) memcpy(buf, rec->op.target, rec->op.target_bytes);
  if (rec->op.payload_bytes > 0) memcpy(buf + rec->op.target_bytes, rec->op.payload, rec->op.payload_bytes);
  vs_op *op = &l->ops[l->count];
  *op = rec->op; /* id, origin, seq, hlc, prev, kind are held inline */
  op->target = buf;
  op->payload = buf + rec->op.target_bytes;
  l->bufs[l->count] = buf;
  memcpy(l->hashes[l->count], rec->op_hash, VS_HASH_BYTES);
  l->lsns[l->count] = rec->lsn;
  l->count++;
  return VS_OK;
}

static inline void oplist_free(oplist *l) {
  if (l == NULL) return;
  for (uint32_t i = 0; i < l->count; i++) free(l->bufs[i]);
  free(l);
}

/* Every op of `origin` that `store` holds. The copies hash as the WAL says. */
static inline oplist *collect(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES]) {
  oplist *l = calloc(1, sizeof *l);
  assert_non_null(l);
  memcpy(l->origin, origin, VS_ORIGIN_BYTES);
  assert_err(vs_wal_replay(store, 1, collect_cb, l), VS_OK);
  for (uint32_t i = 0; i < l->count; i++) {
    uint8_t h[VS_HASH_BYTES];
    assert_err(vs_op_hash(&l->ops[i], h), VS_OK);
    assert_memory_equal(h, l->hashes[i], VS_HASH_BYTES);
  }
  return l;
}

typedef struct run {
  uint32_t first; /* index into the oplist (seq - 1) */
  uint32_t count;
  uint8_t sig[VS_SIGNATURE_BYTES];
} run;

/* Cut `l` (held by `src`) into runs ending at signed ops, using src's
 * stored signatures. Trailing unsigned ops are not sent. Returns the count. */
static inline uint32_t cut_runs(vs_store *src, const oplist *l, run *runs, uint32_t runs_max) {
  uint32_t n = 0;
  uint64_t seq = 1;
  while (seq <= l->count) {
    uint64_t end = 0;
    vs_err err = vs_apply_next_signed(src, l->origin, seq, &end);
    if (err == VS_ERR_NOTFOUND) break;
    assert_err(err, VS_OK);
    assert_true(end >= seq);
    assert_true(end <= l->count);
    assert_true(n < runs_max);
    run *r = &runs[n++];
    r->first = (uint32_t)(seq - 1);
    r->count = (uint32_t)(end - seq + 1);
    assert_err(vs_apply_sig_get(src, &l->ops[end - 1].id, r->sig), VS_OK);
    assert_true(vs_chain_verify(l->origin, end, l->hashes[end - 1], r->sig));
    seq = end + 1;
  }
  return n;
}

static inline vs_err apply_run(node *dst, const oplist *l, const run *r, uint64_t now_ms, vs_apply_result *res) {
  return vs_apply_run(dst->store, &l->ops[r->first], r->count, r->sig, now_ms, VS_MAX_DRIFT_MS_DEFAULT, res);
}

/* Send everything `src` holds of `origin` (signed runs) to `dst`. Returns the
 * number of ops newly applied. */
static inline uint32_t sync_origin(node *src, node *dst, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms) {
  oplist *l = collect(src->store, origin);
  run runs[RUNS_MAX];
  uint32_t nruns = cut_runs(src->store, l, runs, RUNS_MAX);
  uint32_t applied = 0;
  for (uint32_t i = 0; i < nruns; i++) {
    uint64_t held = 0, end = (uint64_t)runs[i].first + runs[i].count;
    uint8_t hh[VS_HASH_BYTES];
    assert_err(vs_wal_head(dst->store, origin, &held, hh, NULL), VS_OK);
    vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
    assert_err(apply_run(dst, l, &runs[i], now_ms, &res), VS_OK);
    assert_int_equal(res.applied + res.duplicates, runs[i].count);
    assert_int_equal(res.applied, end > held ? end - held : 0);
    assert_int_equal(res.head_seq, end > held ? end : held);
    applied += res.applied;
  }
  oplist_free(l);
  return applied;
}

typedef struct dumpbuf {
  uint8_t bytes[DUMP_BYTES_MAX];
  size_t len;
} dumpbuf;

static inline void put_bytes(dumpbuf *d, const void *p, size_t n) {
  assert_true(d->len + n <= DUMP_BYTES_MAX);
  if (n > 0) memcpy(d->bytes + d->len, p, n);
  d->len += n;
}

static inline vs_err dump_cb(const vs_state_entry *e, void *ctx) {
  dumpbuf *d = ctx;
  uint32_t kind = (uint32_t)e->kind;
  put_bytes(d, &e->target_bytes, sizeof e->target_bytes);
  put_bytes(d, e->target, e->target_bytes);
  put_bytes(d, &kind, sizeof kind);
  put_bytes(d, &e->value_bytes, sizeof e->value_bytes);
  put_bytes(d, e->value, e->value_bytes);
  int64_t counter = e->kind == VS_STATE_COUNTER ? e->counter : 0;
  put_bytes(d, &counter, sizeof counter);
  put_bytes(d, e->origin, VS_ORIGIN_BYTES);
  put_bytes(d, &e->hlc, sizeof e->hlc);
  return VS_OK;
}

/* The whole state, tombstones included, as comparable bytes. */
static inline dumpbuf *dump(vs_store *store) {
  dumpbuf *d = calloc(1, sizeof *d);
  assert_non_null(d);
  assert_err(vs_state_dump(store, true, dump_cb, d), VS_OK);
  return d;
}

/* What the application sees (no tombstones): a compacted store may have
 * dropped tombstones its twin keeps (docs/storage.md, "Dropping tombstones"). */
static inline dumpbuf *dump_live(vs_store *store) {
  dumpbuf *d = calloc(1, sizeof *d);
  assert_non_null(d);
  assert_err(vs_state_dump(store, false, dump_cb, d), VS_OK);
  return d;
}

typedef struct vvbuf {
  uint32_t count;
  uint8_t origins[8][VS_ORIGIN_BYTES];
  uint64_t seqs[8];
} vvbuf;

static inline vs_err vv_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vvbuf *v = ctx;
  if (v->count >= 8) return VS_ERR_LIMIT;
  memcpy(v->origins[v->count], origin, VS_ORIGIN_BYTES);
  v->seqs[v->count++] = seq;
  return VS_OK;
}

static inline void assert_same_vv(vs_store *a, vs_store *b) {
  vvbuf va, vb;
  memset(&va, 0, sizeof va);
  memset(&vb, 0, sizeof vb);
  assert_err(vs_vv_each(a, vv_cb, &va), VS_OK);
  assert_err(vs_vv_each(b, vv_cb, &vb), VS_OK);
  assert_int_equal(va.count, vb.count);
  for (uint32_t i = 0; i < va.count; i++) {
    assert_memory_equal(va.origins[i], vb.origins[i], VS_ORIGIN_BYTES);
    assert_int_equal(va.seqs[i], vb.seqs[i]);
  }
}

static inline void state_hash(vs_store *s, uint8_t out[VS_HASH_BYTES]) { assert_err(vs_state_hash(s, out), VS_OK); }

static inline uint64_t last_lsn(vs_store *s) {
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(s, &lsn), VS_OK);
  return lsn;
}

/* Same state hash, same dump (tombstones included), same version vector. */
static inline void assert_converged(vs_store *a, vs_store *b) {
  uint8_t ha[VS_HASH_BYTES], hb[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  state_hash(a, ha);
  state_hash(b, hb);
  assert_memory_not_equal(ha, zero, VS_HASH_BYTES);
  assert_memory_equal(ha, hb, VS_HASH_BYTES);
  dumpbuf *da = dump(a), *db = dump(b);
  assert_int_equal(da->len, db->len);
  assert_memory_equal(da->bytes, db->bytes, da->len);
  free(da);
  free(db);
  assert_same_vv(a, b);
}

/* The same, the dumps without tombstones: twins one of which compacted. */
static inline void assert_converged_live(vs_store *a, vs_store *b) {
  uint8_t ha[VS_HASH_BYTES], hb[VS_HASH_BYTES];
  state_hash(a, ha);
  state_hash(b, hb);
  assert_memory_equal(ha, hb, VS_HASH_BYTES);
  dumpbuf *da = dump_live(a), *db = dump_live(b);
  assert_int_equal(da->len, db->len);
  assert_memory_equal(da->bytes, db->bytes, da->len);
  free(da);
  free(db);
  assert_same_vv(a, b);
}

/* What a refused run must leave untouched. */
typedef struct snap {
  uint64_t lsn;
  uint8_t state_hash[VS_HASH_BYTES];
  uint64_t head_seq, head_hlc;
  uint8_t head_hash[VS_HASH_BYTES];
  uint64_t forks;
  dumpbuf *dump;
} snap;

static inline void snap_take(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], snap *out) {
  out->lsn = last_lsn(s);
  state_hash(s, out->state_hash);
  assert_err(vs_wal_head(s, origin, &out->head_seq, out->head_hash, &out->head_hlc), VS_OK);
  assert_err(vs_apply_forks(s, NULL, 0, &out->forks), VS_OK);
  out->dump = dump(s);
}

static inline void snap_check(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], const snap *want) {
  snap got;
  snap_take(s, origin, &got);
  assert_int_equal(got.lsn, want->lsn);
  assert_memory_equal(got.state_hash, want->state_hash, VS_HASH_BYTES);
  assert_int_equal(got.head_seq, want->head_seq);
  assert_int_equal(got.head_hlc, want->head_hlc);
  assert_memory_equal(got.head_hash, want->head_hash, VS_HASH_BYTES);
  assert_int_equal(got.forks, want->forks);
  assert_int_equal(got.dump->len, want->dump->len);
  assert_memory_equal(got.dump->bytes, want->dump->bytes, got.dump->len);
  free(got.dump);
}

/* A with three commits: runs [1..3], [4..5], [6]. */
static inline void write_three_commits(node *a, uint64_t t) {
  vs_write_req c1[3] = {req_of("put", "a", "1"), req_of("incr", "b", "2"), req_of("put", "c", "3")};
  assert_err(vs_write_batch(a->store, a->id.pk, c1, 3, t, NULL), VS_OK);
  vs_write_req c2[2] = {req_of("del", "a", NULL), req_of("put", "d", "4")};
  assert_err(vs_write_batch(a->store, a->id.pk, c2, 2, t + 1, NULL), VS_OK);
  wr(a, "incr", "b", "5", t + 2);
}

/* A with four commits of puts (non-empty payloads): runs [1..3], [4..6],
 * [7], [8..9]. */
static inline void write_four_commits(node *a, uint64_t t) {
  vs_write_req c1[3] = {req_of("put", "a", "1"), req_of("incr", "b", "2"), req_of("put", "c", "3")};
  assert_err(vs_write_batch(a->store, a->id.pk, c1, 3, t, NULL), VS_OK);
  vs_write_req c2[3] = {req_of("put", "a", "alpha"), req_of("put", "d", "delta"), req_of("incr", "b", "40")};
  assert_err(vs_write_batch(a->store, a->id.pk, c2, 3, t + 1, NULL), VS_OK);
  wr(a, "put", "e", "echo", t + 2);
  vs_write_req c4[2] = {req_of("del", "c", NULL), req_of("put", "f", "fox")};
  assert_err(vs_write_batch(a->store, a->id.pk, c4, 2, t + 3, NULL), VS_OK);
}

typedef struct reject_fx {
  node a, b;
  oplist *la;   /* A's ops */
  oplist *lb;   /* B's own ops */
  run runs[RUNS_MAX];
  uint32_t nruns;
  snap s;       /* B after applying A's run [1..3] */
} reject_fx;

static inline int reject_setup(void **state) {
  reject_fx *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  node_open(&f->a, "apply-xa", 40);
  node_open(&f->b, "apply-xb", 41);
  write_four_commits(&f->a, T0_MS);
  wr(&f->b, "put", "b-own", "1", T0_MS);
  wr(&f->b, "put", "b-own2", "2", T0_MS);
  f->la = collect(f->a.store, f->a.id.pk);
  f->lb = collect(f->b.store, f->b.id.pk);
  f->nruns = cut_runs(f->a.store, f->la, f->runs, RUNS_MAX);
  assert_int_equal(f->nruns, 4);
  assert_int_equal(f->runs[1].first, 3);
  assert_int_equal(f->runs[1].count, 3);
  vs_apply_result res;
  assert_err(apply_run(&f->b, f->la, &f->runs[0], T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 3);
  snap_take(f->b.store, f->a.id.pk, &f->s);
  *state = f;
  return 0;
}

static inline int reject_teardown(void **state) {
  reject_fx *f = *state;
  free(f->s.dump);
  oplist_free(f->la);
  oplist_free(f->lb);
  node_close(&f->a);
  node_close(&f->b);
  free(f);
  return 0;
}

#endif /* VIXSYNC_APPLY_NODES_H */
