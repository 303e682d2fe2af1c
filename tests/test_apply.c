/* tests/test_apply.c: pins include/vixsync/apply.h (and the signing half of
 * write.h / store.h that it relies on).
 *
 * A small "sender" helper reads one origin's operations from a source store
 * (vs_wal_replay, buffers copied) and cuts them into runs that end at signed
 * operations (vs_apply_next_signed + vs_apply_sig_get), as a peer would.
 *
 * Cases: local commits are signed (last op of each commit, at least every
 * VS_SIGN_INTERVAL_BYTES inside a big batch; other origins and stores
 * without identity are not); two nodes exchange runs and converge; a relay
 * A -> B -> C converges using B's stored signatures; duplicates and
 * overlapping runs; every documented rejection changes nothing and leaves
 * the store usable; forks are refused and recorded; an op whose HLC is
 * beyond the receiver's clock plus the drift waits (the pin attack: hlc
 * 2^64-1; a device a day ahead) and applies once the clock catches up.
 */
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

/* ------------------------------------------------------------------------ */
/* Nodes                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct node {
  char dir[512];
  vs_store *store;
  vs_identity id;
} node;

static void seed_fill(uint8_t seed[VS_SEED_BYTES], uint8_t salt) {
  for (unsigned i = 0; i < VS_SEED_BYTES; i++) seed[i] = (uint8_t)(salt * 31u + i);
}

/* A fresh store in its own directory with the identity of seed `salt`
 * (installed unless `with_identity` is false). */
static void node_open_ex(node *n, const char *tag, uint8_t salt, bool with_identity) {
  memset(n, 0, sizeof *n);
  vt_tmpdir(n->dir, sizeof n->dir, tag);
  assert_err(vt_store_open(n->dir, 64 * MIB, &n->store), VS_OK);
  uint8_t seed[VS_SEED_BYTES];
  seed_fill(seed, salt);
  assert_err(vs_identity_from_seed(seed, &n->id), VS_OK);
  if (with_identity) assert_err(vs_store_set_identity(n->store, &n->id), VS_OK);
}

static void node_open(node *n, const char *tag, uint8_t salt) { node_open_ex(n, tag, salt, true); }

static void node_close(node *n) {
  vs_store_close(n->store);
  n->store = NULL;
  vt_rmrf(n->dir);
  vs_identity_wipe(&n->id);
}

static vs_write_req req_of(const char *kind, const char *target, const char *payload) {
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
static vs_write_result wr(node *n, const char *kind, const char *target, const char *payload, uint64_t now_ms) {
  vs_write_req r = req_of(kind, target, payload);
  vs_write_result res;
  assert_err(vs_write(n->store, n->id.pk, &r, now_ms, &res), VS_OK);
  return res;
}

/* ------------------------------------------------------------------------ */
/* The sender: one origin's operations, copied out of the WAL                */
/* ------------------------------------------------------------------------ */

typedef struct oplist {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint32_t count;              /* ops[i].seq == i + 1 */
  vs_op ops[OPS_MAX];
  uint8_t hashes[OPS_MAX][VS_HASH_BYTES];
  uint64_t lsns[OPS_MAX];
  uint8_t *bufs[OPS_MAX];      /* target || payload of ops[i] */
} oplist;

static vs_err collect_cb(const vs_wal_record *rec, void *ctx) {
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

static void oplist_free(oplist *l) {
  if (l == NULL) return;
  for (uint32_t i = 0; i < l->count; i++) free(l->bufs[i]);
  free(l);
}

/* Every op of `origin` that `store` holds. The copies hash as the WAL says. */
static oplist *collect(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES]) {
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
static uint32_t cut_runs(vs_store *src, const oplist *l, run *runs, uint32_t runs_max) {
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

static vs_err apply_run(node *dst, const oplist *l, const run *r, uint64_t now_ms, vs_apply_result *res) {
  return vs_apply_run(dst->store, &l->ops[r->first], r->count, r->sig, now_ms, VS_MAX_DRIFT_MS_DEFAULT, res);
}

/* Send everything `src` holds of `origin` (signed runs) to `dst`. Returns the
 * number of ops newly applied. */
static uint32_t sync_origin(node *src, node *dst, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms) {
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

/* ------------------------------------------------------------------------ */
/* Observing a store                                                         */
/* ------------------------------------------------------------------------ */

typedef struct dumpbuf {
  uint8_t bytes[DUMP_BYTES_MAX];
  size_t len;
} dumpbuf;

static void put_bytes(dumpbuf *d, const void *p, size_t n) {
  assert_true(d->len + n <= DUMP_BYTES_MAX);
  if (n > 0) memcpy(d->bytes + d->len, p, n);
  d->len += n;
}

static vs_err dump_cb(const vs_state_entry *e, void *ctx) {
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
static dumpbuf *dump(vs_store *store) {
  dumpbuf *d = calloc(1, sizeof *d);
  assert_non_null(d);
  assert_err(vs_state_dump(store, true, dump_cb, d), VS_OK);
  return d;
}

typedef struct vvbuf {
  uint32_t count;
  uint8_t origins[8][VS_ORIGIN_BYTES];
  uint64_t seqs[8];
} vvbuf;

static vs_err vv_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vvbuf *v = ctx;
  if (v->count >= 8) return VS_ERR_LIMIT;
  memcpy(v->origins[v->count], origin, VS_ORIGIN_BYTES);
  v->seqs[v->count++] = seq;
  return VS_OK;
}

static uint64_t vv_get(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES]) {
  vvbuf v;
  memset(&v, 0, sizeof v);
  assert_err(vs_vv_each(store, vv_cb, &v), VS_OK);
  for (uint32_t i = 0; i < v.count; i++)
    if (memcmp(v.origins[i], origin, VS_ORIGIN_BYTES) == 0) return v.seqs[i];
  return 0;
}

static void assert_same_vv(vs_store *a, vs_store *b) {
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

typedef struct valbuf {
  uint8_t bytes[64];
  uint32_t len;
} valbuf;

static vs_err value_cb(const vs_state_entry *e, void *ctx) {
  valbuf *v = ctx;
  if (e->value_bytes > sizeof v->bytes) return VS_ERR_LIMIT;
  memcpy(v->bytes, e->value, e->value_bytes);
  v->len = e->value_bytes;
  return VS_OK;
}

/* The live value of `target` is `want` (NULL: absent). */
static void assert_value(vs_store *s, const char *target, const char *want) {
  valbuf v;
  memset(&v, 0, sizeof v);
  vs_err err = vs_state_get(s, (const uint8_t *)target, (uint32_t)strlen(target), false, value_cb, &v);
  if (want == NULL) {
    assert_err(err, VS_ERR_NOTFOUND);
    return;
  }
  assert_err(err, VS_OK);
  assert_int_equal(v.len, strlen(want));
  assert_memory_equal(v.bytes, want, v.len);
}

static void state_hash(vs_store *s, uint8_t out[VS_HASH_BYTES]) { assert_err(vs_state_hash(s, out), VS_OK); }

static uint64_t last_lsn(vs_store *s) {
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(s, &lsn), VS_OK);
  return lsn;
}

/* Same state hash, same dump (tombstones included), same version vector. */
static void assert_converged(vs_store *a, vs_store *b) {
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

/* What a refused run must leave untouched. */
typedef struct snap {
  uint64_t lsn;
  uint8_t state_hash[VS_HASH_BYTES];
  uint64_t head_seq, head_hlc;
  uint8_t head_hash[VS_HASH_BYTES];
  uint64_t forks;
  dumpbuf *dump;
} snap;

static void snap_take(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], snap *out) {
  out->lsn = last_lsn(s);
  state_hash(s, out->state_hash);
  assert_err(vs_wal_head(s, origin, &out->head_seq, out->head_hash, &out->head_hlc), VS_OK);
  assert_err(vs_apply_forks(s, NULL, 0, &out->forks), VS_OK);
  out->dump = dump(s);
}

static void snap_check(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], const snap *want) {
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

/* ------------------------------------------------------------------------ */
/* 1. Signing of local writes                                                */
/* ------------------------------------------------------------------------ */

/* The op at `seq` of `l` carries a signature that verifies. */
static void assert_signed(vs_store *s, const oplist *l, uint64_t seq) {
  uint8_t sig[VS_SIGNATURE_BYTES];
  assert_true(seq >= 1 && seq <= l->count);
  assert_err(vs_apply_sig_get(s, &l->ops[seq - 1].id, sig), VS_OK);
  assert_true(vs_chain_verify(l->origin, seq, l->hashes[seq - 1], sig));
  uint64_t next = 0;
  assert_err(vs_apply_next_signed(s, l->origin, seq, &next), VS_OK);
  assert_int_equal(next, seq);
}

static void test_apply_local_commits_are_signed(void **state) {
  (void)state;
  node a;
  node_open(&a, "apply-sign", 1);
  uint64_t commit_last[8];
  uint32_t commits = 0;
  commit_last[commits++] = wr(&a, "put", "x", "1", T0_MS).seq;
  commit_last[commits++] = wr(&a, "incr", "y", "5", T0_MS + 1).seq;
  vs_write_req batch[4] = {req_of("put", "p", "a"), req_of("del", "x", NULL), req_of("incr", "y", "-2"),
                           req_of("app.note", "n", "hello")};
  vs_write_result res[4];
  assert_err(vs_write_batch(a.store, a.id.pk, batch, 4, T0_MS + 2, res), VS_OK);
  commit_last[commits++] = res[3].seq;
  commit_last[commits++] = wr(&a, "put", "z", "9", T0_MS + 3).seq;

  oplist *l = collect(a.store, a.id.pk);
  assert_int_equal(l->count, 7);
  for (uint32_t i = 0; i < commits; i++) assert_signed(a.store, l, commit_last[i]);
  /* The next signed op at or after seq 3 ends the batch (3..6). */
  uint64_t next = 0;
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 3, &next), VS_OK);
  assert_int_equal(next, 6);
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 8, &next), VS_ERR_NOTFOUND);
  /* A signature covers the op's own chain head only. */
  uint8_t sig[VS_SIGNATURE_BYTES];
  assert_err(vs_apply_sig_get(a.store, &l->ops[6].id, sig), VS_OK);
  assert_false(vs_chain_verify(a.id.pk, 6, l->hashes[6], sig));
  assert_false(vs_chain_verify(a.id.pk, 7, l->hashes[5], sig));
  oplist_free(l);
  node_close(&a);
}

static void test_apply_big_batch_signed_every_interval(void **state) {
  (void)state;
  node a;
  node_open(&a, "apply-bigsign", 2);
  enum { N = 150 };
  static uint8_t payload[1024];
  memset(payload, 'v', sizeof payload);
  char targets[N][16];
  vs_write_req reqs[N];
  for (unsigned i = 0; i < N; i++) {
    snprintf(targets[i], sizeof targets[i], "big%03u", i);
    reqs[i] = req_of("put", targets[i], NULL);
    reqs[i].payload = payload;
    reqs[i].payload_bytes = sizeof payload;
  }
  wr(&a, "put", "before", "0", T0_MS); /* seq 1, its own commit */
  assert_err(vs_write_batch(a.store, a.id.pk, reqs, N, T0_MS + 1, NULL), VS_OK);

  oplist *l = collect(a.store, a.id.pk);
  assert_int_equal(l->count, N + 1);
  uint64_t total = 0;
  for (uint32_t i = 1; i <= N; i++) total += vs_op_encoded_bytes(&l->ops[i]);
  assert_true(total > 2u * VS_SIGN_INTERVAL_BYTES); /* room for two intermediate signatures */

  /* Walk the batch's runs: every signature verifies; the bytes before a
   * run's signed op stay under the interval; the commit ends signed. */
  uint64_t seq = 2, signed_in_batch = 0;
  while (seq <= N + 1u) {
    uint64_t end = 0;
    assert_err(vs_apply_next_signed(a.store, a.id.pk, seq, &end), VS_OK);
    assert_signed(a.store, l, end);
    uint64_t unsigned_bytes = 0;
    for (uint64_t s = seq; s < end; s++) unsigned_bytes += vs_op_encoded_bytes(&l->ops[s - 1]);
    assert_true(unsigned_bytes < VS_SIGN_INTERVAL_BYTES);
    signed_in_batch++;
    seq = end + 1;
  }
  assert_int_equal(seq, N + 2u);
  assert_true(signed_in_batch >= 3); /* at least two intermediate + the commit's last */
  /* A receiver takes the batch as the runs cut at those signatures. */
  node b;
  node_open(&b, "apply-bigrecv", 5);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 2), N + 1);
  assert_converged(a.store, b.store);
  node_close(&b);
  oplist_free(l);
  node_close(&a);
}

static void test_apply_other_origins_not_signed(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-nosign", 3);
  node_open_ex(&b, "apply-noid", 4, false);
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 0x5a);

  /* a has an identity, but writes as another origin: not signed. */
  vs_write_req r = req_of("put", "k", "v");
  assert_err(vs_write(a.store, other, &r, T0_MS, NULL), VS_OK);
  vs_write_req two[2] = {req_of("put", "k2", "v"), req_of("incr", "c", "1")};
  assert_err(vs_write_batch(a.store, other, two, 2, T0_MS, NULL), VS_OK);
  oplist *l = collect(a.store, other);
  assert_int_equal(l->count, 3);
  uint64_t next = 0;
  uint8_t sig[VS_SIGNATURE_BYTES];
  assert_err(vs_apply_next_signed(a.store, other, 1, &next), VS_ERR_NOTFOUND);
  for (uint32_t i = 0; i < l->count; i++) assert_err(vs_apply_sig_get(a.store, &l->ops[i].id, sig), VS_ERR_NOTFOUND);
  oplist_free(l);
  /* Its own origin still is. */
  assert_int_equal(wr(&a, "put", "own", "1", T0_MS).seq, 1);
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 1, &next), VS_OK);
  assert_int_equal(next, 1);

  /* b has no identity: its own key's writes are not signed either. */
  wr(&b, "put", "k", "v", T0_MS);
  assert_err(vs_apply_next_signed(b.store, b.id.pk, 1, &next), VS_ERR_NOTFOUND);
  /* Installed, then removed again: only the write in between is signed. */
  assert_err(vs_store_set_identity(b.store, &b.id), VS_OK);
  wr(&b, "put", "k", "w", T0_MS);
  assert_err(vs_store_set_identity(b.store, NULL), VS_OK);
  wr(&b, "put", "k", "x", T0_MS);
  l = collect(b.store, b.id.pk);
  assert_int_equal(l->count, 3);
  assert_err(vs_apply_sig_get(b.store, &l->ops[0].id, sig), VS_ERR_NOTFOUND);
  assert_signed(b.store, l, 2);
  assert_err(vs_apply_sig_get(b.store, &l->ops[2].id, sig), VS_ERR_NOTFOUND);
  assert_err(vs_apply_next_signed(b.store, b.id.pk, 3, &next), VS_ERR_NOTFOUND);
  oplist_free(l);
  assert_err(vs_store_set_identity(NULL, &b.id), VS_ERR_INVAL);
  node_close(&a);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* 2. Two nodes converge                                                     */
/* ------------------------------------------------------------------------ */

/* A's history: puts, incrs, dels, other kinds, singles and batches. */
static void write_history_a(node *a, uint64_t t) {
  wr(a, "put", "k1", "one", t);
  wr(a, "incr", "ctr", "5", t + 1);
  vs_write_req b1[3] = {req_of("put", "k2", "two"), req_of("incr", "ctr", "-2"), req_of("del", "k1", NULL)};
  assert_err(vs_write_batch(a->store, a->id.pk, b1, 3, t + 2, NULL), VS_OK);
  wr(a, "app.event", "ev", "opaque", t + 3);
  vs_write_req b2[2] = {req_of("put", "shared", "from-a"), req_of("incr", "gone", "7")};
  assert_err(vs_write_batch(a->store, a->id.pk, b2, 2, t + 4, NULL), VS_OK);
  wr(a, "del", "gone", NULL, t + 5);
}

static void write_history_b(node *b, uint64_t t) {
  wr(b, "put", "shared", "from-b", t);
  wr(b, "incr", "ctr", "10", t + 1);
  vs_write_req bb[2] = {req_of("put", "b-only", "x"), req_of("del", "k2", NULL)};
  assert_err(vs_write_batch(b->store, b->id.pk, bb, 2, t + 2, NULL), VS_OK);
}

static void test_apply_two_nodes_converge(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-a", 10);
  node_open(&b, "apply-b", 11);
  vs_outbox_cfg ocfg = vs_outbox_cfg_default();
  vs_outbox *bob;
  assert_err(vs_outbox_open(b.store, &ocfg, &bob), VS_OK);

  write_history_a(&a, T0_MS);
  oplist *la = collect(a.store, a.id.pk);
  assert_int_equal(la->count, 9);
  run runs[RUNS_MAX];
  uint32_t nruns = cut_runs(a.store, la, runs, RUNS_MAX);
  assert_int_equal(nruns, 6); /* one per commit */
  uint64_t expect_head = 0;
  for (uint32_t i = 0; i < nruns; i++) {
    vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
    uint64_t lsn_before = last_lsn(b.store);
    assert_err(apply_run(&b, la, &runs[i], T0_MS + 100, &res), VS_OK);
    expect_head += runs[i].count;
    assert_int_equal(res.applied, runs[i].count);
    assert_int_equal(res.duplicates, 0);
    assert_int_equal(res.head_seq, expect_head);
    assert_int_equal(last_lsn(b.store), lsn_before + runs[i].count);
  }
  assert_converged(a.store, b.store);
  assert_int_equal(vv_get(b.store, a.id.pk), 9);

  /* B's WAL holds A's ops, byte for byte (same hashes), and B kept the
   * signatures it received at the run ends. */
  oplist *lb = collect(b.store, a.id.pk);
  assert_int_equal(lb->count, la->count);
  for (uint32_t i = 0; i < la->count; i++) {
    assert_memory_equal(lb->hashes[i], la->hashes[i], VS_HASH_BYTES);
    assert_true(vs_op_id_equal(&lb->ops[i].id, &la->ops[i].id));
    assert_int_equal(lb->ops[i].hlc, la->ops[i].hlc);
  }
  for (uint32_t i = 0; i < nruns; i++) assert_signed(b.store, lb, runs[i].first + runs[i].count);
  oplist_free(lb);

  /* Received ops create no outbox entry: the outbox pushes own writes. */
  vs_outbox_counts c;
  assert_err(vs_outbox_counts_get(bob, &c), VS_OK);
  assert_int_equal(c.pending + c.inflight + c.done + c.failed, 0);

  /* B writes (after A, its HLC advanced); A applies B's runs: both agree. */
  write_history_b(&b, T0_MS + 200);
  assert_err(vs_outbox_counts_get(bob, &c), VS_OK);
  assert_int_equal(c.pending, 4);
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 300), 4);
  assert_converged(a.store, b.store);
  assert_int_equal(vv_get(a.store, b.id.pk), 4);
  assert_int_equal(vv_get(a.store, a.id.pk), 9);
  assert_int_equal(last_lsn(a.store), 13);
  assert_int_equal(last_lsn(b.store), 13);

  /* Values as the data model says: B's later put of "shared" wins, the
   * counter sums both origins' incrs, deletes leave the targets absent. */
  assert_value(a.store, "shared", "from-b");
  assert_value(a.store, "ctr", "13");
  assert_value(a.store, "b-only", "x");
  assert_value(a.store, "k1", NULL);
  assert_value(a.store, "k2", NULL);
  assert_value(a.store, "gone", NULL);
  oplist_free(la);
  vs_outbox_close(bob);
  node_close(&a);
  node_close(&b);
}

/* Concurrent histories (neither saw the other), exchanged in both orders. */
static void test_apply_concurrent_writes_converge(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-ca", 12);
  node_open(&b, "apply-cb", 13);
  write_history_a(&a, T0_MS);
  write_history_b(&b, T0_MS + 1); /* interleaved HLCs: both sides win somewhere */
  wr(&a, "put", "late", "a", T0_MS + 50);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 60), 10);
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 60), 4);
  assert_converged(a.store, b.store);
  /* A second full exchange changes nothing (G4). */
  uint64_t la = last_lsn(a.store), lb = last_lsn(b.store);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 70), 0);
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 70), 0);
  assert_int_equal(sync_origin(&a, &b, b.id.pk, T0_MS + 70), 0);
  assert_int_equal(sync_origin(&b, &a, a.id.pk, T0_MS + 70), 0);
  assert_int_equal(last_lsn(a.store), la);
  assert_int_equal(last_lsn(b.store), lb);
  assert_converged(a.store, b.store);
  node_close(&a);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* 3. Relay                                                                  */
/* ------------------------------------------------------------------------ */

static void test_apply_relay_through_b(void **state) {
  (void)state;
  node a, b, c;
  node_open(&a, "apply-ra", 20);
  node_open(&b, "apply-rb", 21);
  node_open(&c, "apply-rc", 22);
  write_history_a(&a, T0_MS);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 10), 9);
  write_history_b(&b, T0_MS + 20);
  /* C only ever hears from B: B's own ops first, then A's, forwarded with
   * the signatures B stored when it received them. */
  assert_int_equal(sync_origin(&b, &c, b.id.pk, T0_MS + 30), 4);
  assert_int_equal(sync_origin(&b, &c, a.id.pk, T0_MS + 30), 9);
  /* A gets B's ops directly. */
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 30), 4);
  assert_converged(a.store, b.store);
  assert_converged(b.store, c.store);
  assert_converged(a.store, c.store);

  /* More writes by A reach C through B only, in several commits. */
  wr(&a, "put", "k1", "again", T0_MS + 40);
  vs_write_req r[2] = {req_of("incr", "ctr", "100"), req_of("put", "x", "y")};
  assert_err(vs_write_batch(a.store, a.id.pk, r, 2, T0_MS + 41, NULL), VS_OK);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 50), 3);
  assert_int_equal(sync_origin(&b, &c, a.id.pk, T0_MS + 50), 3);
  assert_converged(a.store, c.store);
  assert_converged(b.store, c.store);
  /* C relays back to A: nothing new there. */
  assert_int_equal(sync_origin(&c, &a, a.id.pk, T0_MS + 60), 0);
  assert_int_equal(sync_origin(&c, &a, b.id.pk, T0_MS + 60), 0);
  node_close(&a);
  node_close(&b);
  node_close(&c);
}

/* ------------------------------------------------------------------------ */
/* 4. Duplicates and overlaps                                                */
/* ------------------------------------------------------------------------ */

/* A with three commits: runs [1..3], [4..5], [6]. */
static void write_three_commits(node *a, uint64_t t) {
  vs_write_req c1[3] = {req_of("put", "a", "1"), req_of("incr", "b", "2"), req_of("put", "c", "3")};
  assert_err(vs_write_batch(a->store, a->id.pk, c1, 3, t, NULL), VS_OK);
  vs_write_req c2[2] = {req_of("del", "a", NULL), req_of("put", "d", "4")};
  assert_err(vs_write_batch(a->store, a->id.pk, c2, 2, t + 1, NULL), VS_OK);
  wr(a, "incr", "b", "5", t + 2);
}

static void test_apply_duplicates_change_nothing(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-da", 30);
  node_open(&b, "apply-db", 31);
  write_three_commits(&a, T0_MS);
  oplist *l = collect(a.store, a.id.pk);
  run runs[RUNS_MAX];
  assert_int_equal(cut_runs(a.store, l, runs, RUNS_MAX), 3);
  assert_int_equal(runs[0].count, 3);
  assert_int_equal(runs[1].count, 2);

  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 3);
  snap s;
  snap_take(b.store, a.id.pk, &s);
  /* The same run again: all duplicates, nothing written. */
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], T0_MS + 5, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 3);
  assert_int_equal(res.head_seq, 3);
  snap_check(b.store, a.id.pk, &s);
  free(s.dump);

  /* An overlapping run [2..5] (a sender that cut differently, signature at
   * 5): only 4 and 5 are new. */
  run over = runs[1];
  over.first = 1;
  over.count = 4;
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &over, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 2);
  assert_int_equal(res.duplicates, 2);
  assert_int_equal(res.head_seq, 5);
  assert_int_equal(last_lsn(b.store), 5);
  /* The whole chain [1..6] at once: only 6 is new. */
  run all = runs[2];
  all.first = 0;
  all.count = 6;
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &all, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_int_equal(res.duplicates, 5);
  assert_int_equal(res.head_seq, 6);
  assert_converged(a.store, b.store);
  /* A run entirely below the head is all duplicates. */
  snap_take(b.store, a.id.pk, &s);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[1], T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 2);
  assert_int_equal(res.head_seq, 6);
  snap_check(b.store, a.id.pk, &s);
  free(s.dump);
  /* The origin's own ops coming back to it are duplicates as well. */
  uint64_t lsn_a = last_lsn(a.store);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&a, l, &all, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 6);
  assert_int_equal(last_lsn(a.store), lsn_a);
  oplist_free(l);
  node_close(&a);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* 5. Rejections                                                             */
/* ------------------------------------------------------------------------ */

#define SCRATCH_OPS 8u

/* A private copy of a run whose bytes a test may tamper with. */
typedef struct scratch {
  vs_op ops[SCRATCH_OPS];
  uint8_t bufs[SCRATCH_OPS][256];
  uint32_t count;
  uint8_t sig[VS_SIGNATURE_BYTES];
} scratch;

static void scratch_from(scratch *s, const oplist *l, const run *r) {
  assert_true(r->count <= SCRATCH_OPS);
  memset(s, 0, sizeof *s);
  for (uint32_t i = 0; i < r->count; i++) {
    const vs_op *src = &l->ops[r->first + i];
    assert_true((size_t)src->target_bytes + src->payload_bytes <= sizeof s->bufs[i]);
    s->ops[i] = *src;
    memcpy(s->bufs[i], src->target, src->target_bytes);
    memcpy(s->bufs[i] + src->target_bytes, src->payload, src->payload_bytes);
    s->ops[i].target = s->bufs[i];
    s->ops[i].payload = s->bufs[i] + src->target_bytes;
  }
  s->count = r->count;
  memcpy(s->sig, r->sig, VS_SIGNATURE_BYTES);
}

static vs_err scratch_apply(node *dst, const scratch *s) {
  vs_apply_result res;
  return vs_apply_run(dst->store, s->ops, s->count, s->sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res);
}

/* Writable payload byte of a scratch op (the copy owns it). */
static uint8_t *payload_at(scratch *s, uint32_t i) {
  assert_true(s->ops[i].payload_bytes > 0);
  return s->bufs[i] + s->ops[i].target_bytes;
}

/* A with four commits of puts (non-empty payloads): runs [1..3], [4..6],
 * [7], [8..9]. */
static void write_four_commits(node *a, uint64_t t) {
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

static int reject_setup(void **state) {
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

static int reject_teardown(void **state) {
  reject_fx *f = *state;
  free(f->s.dump);
  oplist_free(f->la);
  oplist_free(f->lb);
  node_close(&f->a);
  node_close(&f->b);
  free(f);
  return 0;
}

/* After a refusal: nothing changed, and the store still takes valid runs
 * (the rest of A's chain) and local writes. */
static void assert_refused_then_usable(reject_fx *f) {
  snap_check(f->b.store, f->a.id.pk, &f->s);
  for (uint32_t i = 1; i < f->nruns; i++) {
    vs_apply_result res;
    assert_err(apply_run(&f->b, f->la, &f->runs[i], T0_MS, &res), VS_OK);
    assert_int_equal(res.applied, f->runs[i].count);
  }
  assert_int_equal(vv_get(f->b.store, f->a.id.pk), f->la->count);
  wr(&f->b, "put", "after", "ok", T0_MS + 10);
  assert_int_equal(sync_origin(&f->b, &f->a, f->b.id.pk, T0_MS + 20), 3);
  assert_converged(f->a.store, f->b.store);
}

static void test_apply_rejects_forged_signature(void **state) {
  reject_fx *f = *state;
  for (unsigned byte = 0; byte < VS_SIGNATURE_BYTES; byte += 21) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[1]);
    s.sig[byte] ^= 0x01;
    assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  memset(s.sig, 0, sizeof s.sig);
  /* All zero: the mark of a run vouched for by fork evidence (apply.h,
   * FORKS), which this store does not hold: refused, nothing stored. */
  assert_err(scratch_apply(&f->b, &s), VS_ERR_FORKED);
  snap_check(f->b.store, f->a.id.pk, &f->s);
  /* The signature of another op of the same origin does not fit either. */
  scratch_from(&s, f->la, &f->runs[1]);
  memcpy(s.sig, f->runs[0].sig, VS_SIGNATURE_BYTES);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_signature_by_other_identity(void **state) {
  reject_fx *f = *state;
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  /* B signs A's real chain head at 6: a valid signature, by the wrong key. */
  vs_chain_sign(&f->b.id, 6, f->la->hashes[5], s.sig);
  assert_true(vs_chain_verify(f->b.id.pk, 6, f->la->hashes[5], s.sig));
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_tampered_last_payload(void **state) {
  reject_fx *f = *state;
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  payload_at(&s, 2)[0] ^= 0x20; /* incr "40" -> "\x140": its hash changed */
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  /* A single-op run tampered likewise. */
  scratch_from(&s, f->la, &f->runs[2]);
  payload_at(&s, 0)[0] ^= 0x01;
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  /* Its kind or target likewise (part of the hash). */
  scratch_from(&s, f->la, &f->runs[1]);
  s.ops[2].kind[0] = 'j';
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  scratch_from(&s, f->la, &f->runs[1]);
  s.ops[2].hlc++;
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_tampered_middle_payload(void **state) {
  reject_fx *f = *state;
  for (uint32_t i = 0; i < 2; i++) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[1]);
    payload_at(&s, i)[0] ^= 0x01;
    /* The signature (over op 6) still verifies; op i+1's prev no longer
     * links to the tampered op, so the signature does not cover the run. */
    assert_err(scratch_apply(&f->b, &s), VS_ERR_MALFORMED);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  /* A tampered hlc in the middle breaks the link the same way. */
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  s.ops[1].hlc ^= 1;
  assert_err(scratch_apply(&f->b, &s), VS_ERR_MALFORMED);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_tampered_prev(void **state) {
  reject_fx *f = *state;
  /* prev of the first op (it no longer links to B's head) and of a middle
   * op (it no longer links to the op before). */
  for (uint32_t i = 0; i < 2; i++) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[1]);
    s.ops[i].prev[7] ^= 0x80;
    /* Either way the run's own links break (op 0's hash covers its prev),
     * so the signature does not cover it: forged. A one-op run whose prev
     * misses the held head is a chain error (below). */
    assert_err(scratch_apply(&f->b, &s), VS_ERR_MALFORMED);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  /* The origin itself signs a head whose prev does not link: the signature
   * is genuine, the chain is not. */
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  s.count = 1;
  memset(s.ops[0].prev, 0xab, VS_HASH_BYTES);
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_op_hash(&s.ops[0], h), VS_OK);
  vs_chain_sign(&f->a.id, 4, h, s.sig);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_CHAIN);
  /* And a genuine signed seq 1 with a non-zero prev on a node without A. */
  node c;
  node_open(&c, "apply-xc", 42);
  scratch_from(&s, f->la, &f->runs[0]);
  s.count = 1;
  s.ops[0].prev[0] = 1;
  assert_err(vs_op_hash(&s.ops[0], h), VS_OK);
  vs_chain_sign(&f->a.id, 1, h, s.sig);
  assert_err(scratch_apply(&c, &s), VS_ERR_CHAIN);
  assert_int_equal(last_lsn(c.store), 0);
  assert_int_equal(vv_get(c.store, f->a.id.pk), 0);
  node_close(&c);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_gap(void **state) {
  reject_fx *f = *state;
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  /* Head is 3: runs starting at 7 and at 8 are ahead of the chain. */
  assert_err(apply_run(&f->b, f->la, &f->runs[2], T0_MS, &res), VS_ERR_CHAIN);
  assert_err(apply_run(&f->b, f->la, &f->runs[3], T0_MS, &res), VS_ERR_CHAIN);
  /* A run [5..6] (head + 2), with the genuine signature at 6. */
  run r = f->runs[1];
  r.first = 4;
  r.count = 2;
  assert_err(apply_run(&f->b, f->la, &r, T0_MS, &res), VS_ERR_CHAIN);
  /* Even the origin's own signature cannot skip a seq: op 5 linked
   * straight to op 3 (the held head), genuinely signed. */
  scratch s;
  scratch_from(&s, f->la, &r);
  s.count = 1;
  memcpy(s.ops[0].prev, f->la->hashes[2], VS_HASH_BYTES);
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_op_hash(&s.ops[0], h), VS_OK);
  vs_chain_sign(&f->a.id, 5, h, s.sig);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_CHAIN);
  snap_check(f->b.store, f->a.id.pk, &f->s);
  /* An origin the node never heard of must start at seq 1. */
  node c;
  node_open(&c, "apply-xg", 43);
  assert_err(apply_run(&c, f->la, &f->runs[1], T0_MS, &res), VS_ERR_CHAIN);
  assert_int_equal(last_lsn(c.store), 0);
  node_close(&c);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_bad_shape(void **state) {
  reject_fx *f = *state;
  scratch s;
  /* Mixed origins: A's 4, 5 then an op of B's origin (seq 6, its own id). */
  scratch_from(&s, f->la, &f->runs[1]);
  memcpy(s.ops[2].origin, f->b.id.pk, VS_ORIGIN_BYTES);
  vs_op_id_derive(s.ops[2].origin, s.ops[2].seq, &s.ops[2].id);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_INVAL);
  /* Two genuine ops of two origins with consecutive seqs: A's 1, B's 2
   * (with B's genuine signature at its op 2). */
  run rb = {0, 2, {0}};
  assert_err(vs_apply_sig_get(f->b.store, &f->lb->ops[1].id, rb.sig), VS_OK);
  vs_op mixed[2] = {f->la->ops[0], f->lb->ops[1]};
  assert_err(vs_apply_run(f->b.store, mixed, 2, rb.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  /* Non-consecutive seqs: [4, 6] and [4, 4] and descending [5, 4]. */
  vs_op gap[2] = {f->la->ops[3], f->la->ops[5]};
  assert_err(vs_apply_run(f->b.store, gap, 2, f->runs[1].sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  vs_op same[2] = {f->la->ops[3], f->la->ops[3]};
  assert_err(vs_apply_run(f->b.store, same, 2, f->runs[1].sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  vs_op desc[2] = {f->la->ops[4], f->la->ops[3]};
  assert_err(vs_apply_run(f->b.store, desc, 2, f->runs[1].sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  /* An id that is not the one of (origin, seq): a flipped bit, another
   * op's id, the last op's id. */
  for (uint32_t i = 0; i < 3; i++) {
    scratch_from(&s, f->la, &f->runs[1]);
    if (i == 0) s.ops[0].id.bytes[VS_OP_ID_BYTES - 1] ^= 1;
    if (i == 1) s.ops[1].id = f->la->ops[0].id;
    if (i == 2) s.ops[2].id.bytes[0] ^= 0x40;
    assert_err(scratch_apply(&f->b, &s), VS_ERR_INVAL);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  /* count 0, past the limit, NULL arguments. */
  scratch_from(&s, f->la, &f->runs[1]);
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(f->b.store, s.ops, 0, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_err(vs_apply_run(f->b.store, s.ops, VS_APPLY_RUN_OPS_MAX + 1u, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res),
             VS_ERR_INVAL);
  assert_err(vs_apply_run(NULL, s.ops, 3, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_err(vs_apply_run(f->b.store, NULL, 3, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_err(vs_apply_run(f->b.store, s.ops, 3, NULL, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_op_claiming_other_origin(void **state) {
  reject_fx *f = *state;
  /* A's run relabelled as B's origin (ids re-derived, so the shape is fine)
   * but still carrying A's signature: B's key never signed it. Sent to a
   * node C that holds nothing of B, at B's seqs 1..3 and at A's 4..6. */
  node c;
  node_open(&c, "apply-xo", 44);
  for (uint32_t r = 0; r < 2; r++) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[r]);
    for (uint32_t i = 0; i < s.count; i++) {
      memcpy(s.ops[i].origin, f->b.id.pk, VS_ORIGIN_BYTES);
      vs_op_id_derive(s.ops[i].origin, s.ops[i].seq, &s.ops[i].id);
    }
    if (r == 1) { /* and a prev chain that links, to leave only the key */
      for (uint32_t i = 1; i < s.count; i++) assert_err(vs_op_hash(&s.ops[i - 1], s.ops[i].prev), VS_OK);
    }
    /* r 0: the relabelled ops' links break (MALFORMED); r 1: only the
     * key is wrong, the signature does not verify (AUTH). */
    vs_err want = r == 0 ? VS_ERR_MALFORMED : VS_ERR_AUTH;
    assert_err(scratch_apply(&c, &s), want);
    assert_err(scratch_apply(&f->b, &s), want);
  }
  assert_int_equal(last_lsn(c.store), 0);
  node_close(&c);
  assert_refused_then_usable(f);
  assert_int_equal(vv_get(f->b.store, f->b.id.pk), 3);
}

/* ------------------------------------------------------------------------ */
/* Forks                                                                     */
/* ------------------------------------------------------------------------ */

/* The two hashes of a verdict, in the order vs_apply_forks gives them. */
static void expect_verdict(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *h1,
                           const uint8_t *h2) {
  vs_fork fk[2];
  uint64_t n = 0;
  memset(fk, 0, sizeof fk);
  assert_err(vs_apply_forks(s, fk, 2, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_memory_equal(fk[0].origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(fk[0].seq, seq);
  bool lo1 = memcmp(h1, h2, VS_HASH_BYTES) < 0;
  assert_memory_equal(fk[0].held_hash, lo1 ? h1 : h2, VS_HASH_BYTES);
  assert_memory_equal(fk[0].refused_hash, lo1 ? h2 : h1, VS_HASH_BYTES);
  uint64_t vf = 0;
  assert_err(vs_apply_void_from(s, origin, &vf), VS_OK);
  assert_int_equal(vf, seq);
}

/* The FORK message behind a store's verdict on `origin` (malloc'd). */
static uint8_t *evidence_of(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], size_t *len) {
  uint8_t *buf = malloc(VS_MSG_BYTES_MAX);
  assert_non_null(buf);
  assert_err(vs_apply_fork_evidence(s, origin, buf, VS_MSG_BYTES_MAX, len), VS_OK);
  return buf;
}

/* A copied identity signs a different seq 1: the run that shows it is
 * refused and proves the fork (exact: seq 1), so the verdict voids the
 * origin from seq 1 on: B drops A's six ops, state and head. Forged or
 * empty evidence changes nothing; the evidence relayed makes A, A2 and a
 * new node reach the same verdict and state, and refuse the origin's ops
 * and writes from then on. */
static void test_apply_fork_refused_and_recorded(void **state) {
  (void)state;
  node a, a2, b, c;
  node_open(&a, "apply-fa", 50);
  node_open(&a2, "apply-fa2", 50); /* same seed: a copied identity */
  node_open(&b, "apply-fb", 51);
  node_open(&c, "apply-fc", 52);
  assert_memory_equal(a.id.pk, a2.id.pk, VS_ORIGIN_BYTES);
  write_three_commits(&a, T0_MS);
  vs_write_req other[3] = {req_of("put", "a", "forked"), req_of("put", "z", "zz"), req_of("put", "c", "3")};
  assert_err(vs_write_batch(a2.store, a2.id.pk, other, 3, T0_MS + 5, NULL), VS_OK);
  wr(&b, "put", "mine", "m", T0_MS + 1); /* B's own op survives the verdict */
  uint8_t b_only[VS_HASH_BYTES];
  state_hash(b.store, b_only);

  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS), 6);
  snap s;
  snap_take(b.store, a.id.pk, &s);
  assert_int_equal(s.forks, 0);

  oplist *l2 = collect(a2.store, a2.id.pk);
  oplist *la = collect(a.store, a.id.pk);
  run r2[RUNS_MAX], ra[RUNS_MAX];
  assert_int_equal(cut_runs(a2.store, l2, r2, RUNS_MAX), 1);
  assert_int_equal(cut_runs(a.store, la, ra, RUNS_MAX), 3);
  assert_int_equal(r2[0].count, 3);
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  /* An unauthenticated fork is no evidence: a forged signature on the
   * conflicting run is AUTH and changes nothing. */
  run forged = r2[0];
  forged.sig[5] ^= 0x10;
  assert_err(apply_run(&b, l2, &forged, T0_MS, &res), VS_ERR_AUTH);
  snap_check(b.store, a.id.pk, &s);
  free(s.dump);
  memset(&res, 0, sizeof res);
  assert_err(apply_run(&b, l2, &r2[0], T0_MS, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  assert_int_equal(res.fork_seq, 1);
  /* Void from seq 1: nothing of A's origin is held; B's own op is. */
  expect_verdict(b.store, a.id.pk, 1, la->hashes[0], l2->hashes[0]);
  uint64_t head = 99;
  assert_err(vs_wal_head(b.store, a.id.pk, &head, NULL, NULL), VS_OK);
  assert_int_equal(head, 0);
  uint8_t h[VS_HASH_BYTES];
  state_hash(b.store, h);
  assert_memory_equal(h, b_only, VS_HASH_BYTES);
  /* Either branch is refused from now on; writing as that origin too. */
  assert_err(apply_run(&b, la, &ra[0], T0_MS, &res), VS_ERR_FORKED);
  assert_err(apply_run(&b, l2, &r2[0], T0_MS, &res), VS_ERR_FORKED);
  vs_write_req w1 = req_of("put", "x", "y");
  assert_err(vs_write(b.store, a.id.pk, &w1, T0_MS + 20, NULL), VS_ERR_FORKED);

  /* Evidence checks: forged (AUTH), the same branch twice, truncated
   * (MALFORMED): nothing changes on C. */
  size_t ev_len = 0;
  uint8_t *ev = evidence_of(b.store, a.id.pk, &ev_len);
  uint8_t *bad = malloc(ev_len);
  assert_non_null(bad);
  vs_fork_result fr;
  memcpy(bad, ev, ev_len);
  bad[1 + VS_ORIGIN_BYTES + 8 + 3] ^= 1; /* the first proof's signature */
  assert_err(vs_apply_fork(c.store, bad, ev_len, &fr), VS_ERR_AUTH);
  assert_err(vs_apply_fork(c.store, ev, ev_len - 1, &fr), VS_ERR_MALFORMED);
  vs_fork_msg m;
  assert_err(vs_msg_fork_decode(ev, ev_len, &m), VS_OK);
  vs_fork_proof twice[2] = {m.proof[0], m.proof[0]};
  size_t tw_len = 0;
  uint8_t *tw = malloc(VS_MSG_BYTES_MAX);
  assert_non_null(tw);
  assert_err(vs_msg_fork_encode(m.origin, m.seq, twice, tw, VS_MSG_BYTES_MAX, &tw_len), VS_OK);
  assert_err(vs_apply_fork(c.store, tw, tw_len, &fr), VS_ERR_MALFORMED);
  vs_fork_msg_free(&m);
  uint64_t nf = 9;
  assert_err(vs_apply_forks(c.store, NULL, 0, &nf), VS_OK);
  assert_int_equal(nf, 0);
  /* The real evidence: C takes the verdict, then refuses A's runs. */
  assert_err(vs_apply_fork(c.store, ev, ev_len, &fr), VS_OK);
  assert_true(fr.verdict);
  assert_false(fr.refolded);
  assert_err(apply_run(&c, la, &ra[0], T0_MS, &res), VS_ERR_FORKED);
  /* Again: nothing new. */
  assert_err(vs_apply_fork(c.store, ev, ev_len, &fr), VS_OK);
  assert_false(fr.verdict);
  /* A and A2 reach the same verdict: their own writes are void too, and
   * their identity writes no more. */
  assert_err(vs_apply_fork(a.store, ev, ev_len, &fr), VS_OK);
  assert_true(fr.verdict && fr.refolded);
  assert_err(vs_apply_fork(a2.store, ev, ev_len, &fr), VS_OK);
  uint8_t ha[VS_HASH_BYTES], ha2[VS_HASH_BYTES], hc[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  state_hash(a.store, ha);
  state_hash(a2.store, ha2);
  state_hash(c.store, hc);
  assert_memory_equal(ha, zero, VS_HASH_BYTES);
  assert_memory_equal(ha2, zero, VS_HASH_BYTES);
  assert_memory_equal(hc, zero, VS_HASH_BYTES);
  assert_err(vs_write(a.store, a.id.pk, &w1, T0_MS + 20, NULL), VS_ERR_FORKED);
  expect_verdict(a2.store, a.id.pk, 1, la->hashes[0], l2->hashes[0]);
  wr(&b, "put", "mine2", "m", T0_MS + 21); /* B's own writes work */
  free(tw);
  free(bad);
  free(ev);
  oplist_free(la);
  oplist_free(l2);
  node_close(&a);
  node_close(&a2);
  node_close(&b);
  node_close(&c);
}

/* A restored backup: A2 holds A's first commit, then writes different ops
 * at seqs A already used. An overlapping run from A2 forks at seq 4 after
 * two matching duplicates: exact, so B voids A's ops from 4 on and ends
 * with the state of [1..3], like a node that only ever held [1..3] and got
 * the evidence. */
static void test_apply_fork_after_shared_prefix(void **state) {
  (void)state;
  node a, a2, b, b2;
  node_open(&a, "apply-pa", 52);
  node_open(&a2, "apply-pa2", 52);
  node_open(&b, "apply-pb", 53);
  node_open(&b2, "apply-pb2", 54);
  write_three_commits(&a, T0_MS); /* [1..3], [4..5], [6] */
  oplist *la = collect(a.store, a.id.pk);
  run ra[RUNS_MAX];
  assert_int_equal(cut_runs(a.store, la, ra, RUNS_MAX), 3);
  vs_apply_result res;
  assert_err(apply_run(&a2, la, &ra[0], T0_MS, &res), VS_OK); /* the backup */
  assert_err(apply_run(&b2, la, &ra[0], T0_MS, &res), VS_OK); /* B2 holds [1..3] only */
  vs_write_req other[2] = {req_of("put", "a", "restored"), req_of("put", "q", "r")};
  assert_err(vs_write_batch(a2.store, a2.id.pk, other, 2, T0_MS + 9, NULL), VS_OK);
  oplist *l2 = collect(a2.store, a2.id.pk);
  assert_int_equal(l2->count, 5);
  assert_memory_equal(l2->hashes[2], la->hashes[2], VS_HASH_BYTES);

  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS), 6);
  run over = {1, 4, {0}}; /* [2..5], signed by A2 at 5 */
  assert_err(vs_apply_sig_get(a2.store, &l2->ops[4].id, over.sig), VS_OK);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, false, 99, false};
  assert_err(apply_run(&b, l2, &over, T0_MS, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  assert_int_equal(res.fork_seq, 4);
  expect_verdict(b.store, a.id.pk, 4, la->hashes[3], l2->hashes[3]);
  uint64_t head = 0;
  uint8_t hh[VS_HASH_BYTES];
  assert_err(vs_wal_head(b.store, a.id.pk, &head, hh, NULL), VS_OK);
  assert_int_equal(head, 3);
  assert_memory_equal(hh, la->hashes[2], VS_HASH_BYTES);
  /* B2 gets the evidence: nothing of its own to void, same state as B. */
  size_t ev_len = 0;
  uint8_t *ev = evidence_of(b.store, a.id.pk, &ev_len);
  vs_fork_result fr;
  assert_err(vs_apply_fork(b2.store, ev, ev_len, &fr), VS_OK);
  assert_true(fr.verdict);
  assert_false(fr.refolded);
  assert_converged(b.store, b2.store);
  /* Every later run of either branch is refused; [1..3] again is a duplicate. */
  assert_err(apply_run(&b, la, &ra[1], T0_MS, &res), VS_ERR_FORKED);
  assert_err(apply_run(&b, la, &ra[2], T0_MS, &res), VS_ERR_FORKED);
  run r2 = {3, 2, {0}};
  memcpy(r2.sig, over.sig, VS_SIGNATURE_BYTES);
  assert_err(apply_run(&b, l2, &r2, T0_MS, &res), VS_ERR_FORKED);
  assert_err(apply_run(&b, la, &ra[0], T0_MS, &res), VS_OK);
  assert_int_equal(res.duplicates, 3);
  /* A's run [2..5] crosses the fork: its part below (2..3) is vouched for
   * by the evidence, so it is a duplicate, not an error. */
  run cross = {1, 4, {0}};
  assert_err(vs_apply_sig_get(a.store, &la->ops[4].id, cross.sig), VS_OK);
  assert_err(apply_run(&b, la, &cross, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  free(ev);
  oplist_free(la);
  oplist_free(l2);
  node_close(&a);
  node_close(&a2);
  node_close(&b);
  node_close(&b2);
}

/* Branches that part inside one signed run: A and A2 (one identity) each
 * commit [1..3] with the same op 1 and a different op 2; only seq 3 is
 * signed. B holds A's; A2's run is exact at seq 2: void from 2, head back
 * to 1, whose only signature was past the fork: the evidence vouches for
 * it (a zero signature), so B can still relay op 1 to a node that has the
 * evidence, and that node ends with B's state. Without the evidence the
 * run is refused as void (it waits for the evidence). */
static void test_apply_fork_inside_a_run_keeps_the_prefix_relayable(void **state) {
  (void)state;
  node a, a2, b, c, d;
  node_open(&a, "apply-ia", 55);
  node_open(&a2, "apply-ia2", 55);
  node_open(&b, "apply-ib", 56);
  node_open(&c, "apply-ic", 57);
  node_open(&d, "apply-id", 58);
  vs_write_req wa[3] = {req_of("put", "k", "1"), req_of("put", "m", "A"), req_of("put", "n", "3")};
  vs_write_req wb[3] = {req_of("put", "k", "1"), req_of("put", "m", "B"), req_of("put", "n", "3")};
  assert_err(vs_write_batch(a.store, a.id.pk, wa, 3, T0_MS, NULL), VS_OK);
  assert_err(vs_write_batch(a2.store, a2.id.pk, wb, 3, T0_MS, NULL), VS_OK);
  oplist *la = collect(a.store, a.id.pk), *l2 = collect(a2.store, a2.id.pk);
  assert_memory_equal(la->hashes[0], l2->hashes[0], VS_HASH_BYTES); /* the same op 1 */
  run ra[RUNS_MAX], r2[RUNS_MAX];
  assert_int_equal(cut_runs(a.store, la, ra, RUNS_MAX), 1);
  assert_int_equal(cut_runs(a2.store, l2, r2, RUNS_MAX), 1);
  vs_apply_result res;
  assert_err(apply_run(&b, la, &ra[0], T0_MS, &res), VS_OK);
  memset(&res, 0, sizeof res);
  assert_err(apply_run(&b, l2, &r2[0], T0_MS, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  assert_int_equal(res.fork_seq, 2);
  uint64_t signed_at = 0;
  assert_err(vs_apply_next_signed(b.store, a.id.pk, 1, &signed_at), VS_OK);
  assert_int_equal(signed_at, 1);
  uint8_t zsig[VS_SIGNATURE_BYTES], zero_sig[VS_SIGNATURE_BYTES] = {0};
  assert_err(vs_apply_sig_get(b.store, &la->ops[0].id, zsig), VS_OK);
  assert_memory_equal(zsig, zero_sig, VS_SIGNATURE_BYTES);
  run one = {0, 1, {0}};
  /* D has no evidence: the run waits for it (refused, nothing stored). */
  assert_err(apply_run(&d, la, &one, T0_MS, &res), VS_ERR_FORKED);
  size_t ev_len = 0;
  uint8_t *ev = evidence_of(b.store, a.id.pk, &ev_len);
  vs_fork_result fr;
  assert_err(vs_apply_fork(c.store, ev, ev_len, &fr), VS_OK);
  assert_err(apply_run(&c, la, &one, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_converged(b.store, c.store);
  /* The full runs of either branch now give C only what is below the fork. */
  assert_err(apply_run(&c, la, &ra[0], T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_err(apply_run(&c, l2, &r2[0], T0_MS, &res), VS_OK);
  assert_converged(b.store, c.store);
  free(ev);
  oplist_free(la);
  oplist_free(l2);
  node_close(&a);
  node_close(&a2);
  node_close(&b);
  node_close(&c);
  node_close(&d);
}

/* ------------------------------------------------------------------------ */
/* 6. HLC drift                                                              */
/* ------------------------------------------------------------------------ */

#define DAY_MS (24ull * 3600ull * 1000ull)
#define HLC_WALL_MAX_MS 0xffffffffffffull /* the HLC's 48-bit wall clock, at its end */

/* One signed op of `id`, built by hand (a hostile origin need not use
 * vs_write): kind put, hlc as given, linked to `prev`. `sig` signs its
 * chain head. */
typedef struct crafted {
  vs_op op;
  uint8_t hash[VS_HASH_BYTES];
  uint8_t sig[VS_SIGNATURE_BYTES];
} crafted;

static void craft(const vs_identity *id, uint64_t seq, const uint8_t prev[VS_HASH_BYTES], uint64_t hlc,
                  const char *target, const char *value, crafted *out) {
  assert_err(vs_op_init(&out->op, id->pk, seq, hlc, prev, "put", (const uint8_t *)target, (uint32_t)strlen(target),
                        (const uint8_t *)value, (uint32_t)strlen(value)),
             VS_OK);
  assert_err(vs_op_hash(&out->op, out->hash), VS_OK);
  vs_chain_sign(id, seq, out->hash, out->sig);
}

/* The pin attack of issue 14: a signed op with hlc 2^64-1 must not be
 * applied (it would be the greatest (hlc, origin) of its target forever, so
 * every later honest put or del would return an op id and never show). It
 * waits, with its origin's chain behind it, stores nothing, and the
 * receiver's honest writes take effect. It applies once the clock is there. */
static void test_apply_pin_attack_max_hlc_waits(void **state) {
  (void)state;
  node m, b;
  node_open(&m, "apply-pm", 80); /* the attacker: only its identity is used */
  node_open(&b, "apply-pb", 81);
  wr(&b, "put", "k", "b0", T0_MS);
  const uint8_t zero[VS_HASH_BYTES] = {0};
  crafted c1, c2;
  craft(&m.id, 1, zero, UINT64_MAX, "k", "pinned", &c1);
  craft(&m.id, 2, c1.hash, vs_hlc_make(T0_MS, 0), "k2", "honest-later", &c2);
  const vs_op both[2] = {c1.op, c2.op};

  snap before;
  snap_take(b.store, m.id.pk, &before);
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(b.store, &c1.op, 1, c1.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_FUTURE);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 0);
  assert_int_equal(res.deferred, 1);
  assert_int_equal(res.head_seq, 0);
  assert_int_equal(res.ahead_ms, HLC_WALL_MAX_MS - T0_MS);
  snap_check(b.store, m.id.pk, &before); /* nothing stored, the chain does not advance */
  /* Its chain waits behind it: the run through seq 2 waits as a whole, and
   * seq 2 alone is a gap. */
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(b.store, both, 2, c2.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_FUTURE);
  assert_int_equal(res.deferred, 2);
  assert_int_equal(res.applied, 0);
  assert_err(vs_apply_run(b.store, &c2.op, 1, c2.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_CHAIN);
  /* Validity comes first: a forged far-future run is forged, not deferred. */
  uint8_t bad[VS_SIGNATURE_BYTES];
  memcpy(bad, c1.sig, sizeof bad);
  bad[5] ^= 1u;
  assert_err(vs_apply_run(b.store, &c1.op, 1, bad, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_AUTH);
  snap_check(b.store, m.id.pk, &before);
  free(before.dump);
  assert_int_equal(vv_get(b.store, m.id.pk), 0);

  /* Honest puts and dels on the key take effect, with honest timestamps. */
  vs_write_result w = wr(&b, "put", "k", "b1", T0_MS + 1);
  assert_value(b.store, "k", "b1");
  assert_true(w.hlc <= vs_hlc_make(T0_MS + 1, 0) + HLC_SLACK);
  wr(&b, "del", "k", NULL, T0_MS + 2);
  assert_value(b.store, "k", NULL);
  wr(&b, "put", "k", "b2", T0_MS + 3);
  assert_value(b.store, "k", "b2");

  /* A clock one ms short of the op's wall time minus the drift: still waits.
   * At it: the run applies (both ops). */
  const uint64_t due_ms = HLC_WALL_MAX_MS - VS_MAX_DRIFT_MS_DEFAULT;
  assert_err(vs_apply_run(b.store, both, 2, c2.sig, due_ms - 1, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_FUTURE);
  assert_int_equal(res.ahead_ms, VS_MAX_DRIFT_MS_DEFAULT + 1);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(b.store, both, 2, c2.sig, due_ms, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_OK);
  assert_int_equal(res.applied, 2);
  assert_int_equal(res.deferred, 0);
  assert_int_equal(vv_get(b.store, m.id.pk), 2);
  assert_value(b.store, "k2", "honest-later");
  node_close(&m);
  node_close(&b);
}

/* A device whose clock runs a day ahead: its write waits on a receiver
 * whose clock is right (so it does not silently win every race there), the
 * receiver's own writes take effect meanwhile, and once the receiver's clock
 * is within the drift of it, it applies, moves the receiver's HLC to at
 * least its HLC, and the receiver's next write wins over it everywhere. */
static void test_apply_day_ahead_waits_then_orders(void **state) {
  (void)state;
  node s, b;
  node_open(&s, "apply-das", 82);
  node_open(&b, "apply-dab", 83);
  wr(&b, "put", "k", "b0", T0_MS);
  assert_int_equal(sync_origin(&b, &s, b.id.pk, T0_MS + DAY_MS), 1);
  wr(&s, "put", "k", "ahead", T0_MS + DAY_MS);
  assert_value(s.store, "k", "ahead");
  oplist *l = collect(s.store, s.id.pk);
  run runs[RUNS_MAX];
  assert_int_equal(cut_runs(s.store, l, runs, RUNS_MAX), 1);
  assert_int_equal(l->ops[0].hlc, vs_hlc_make(T0_MS + DAY_MS, 0));

  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], T0_MS, &res), VS_ERR_FUTURE);
  assert_int_equal(res.deferred, 1);
  assert_int_equal(res.ahead_ms, DAY_MS);
  assert_value(b.store, "k", "b0");
  assert_int_equal(vv_get(b.store, s.id.pk), 0);
  vs_write_result w = wr(&b, "put", "k", "b1", T0_MS + 10);
  assert_value(b.store, "k", "b1");
  assert_true(w.hlc < l->ops[0].hlc); /* B's HLC was not dragged a day ahead */

  /* B's clock catches up to within the drift: it applies. */
  const uint64_t due_ms = T0_MS + DAY_MS - VS_MAX_DRIFT_MS_DEFAULT;
  assert_err(apply_run(&b, l, &runs[0], due_ms - 1, &res), VS_ERR_FUTURE);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], due_ms, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_value(b.store, "k", "ahead");
  /* Every applied op moves the HLC: B's next write, though B's wall clock is
   * an hour behind the op's, is ordered after it and wins everywhere. */
  w = wr(&b, "put", "k", "b2", due_ms);
  assert_true(w.hlc > l->ops[0].hlc);
  assert_true(w.hlc <= l->ops[0].hlc + HLC_SLACK);
  assert_value(b.store, "k", "b2");
  assert_int_equal(sync_origin(&b, &s, b.id.pk, T0_MS + DAY_MS), 2);
  assert_converged(s.store, b.store);
  assert_value(s.store, "k", "b2");
  oplist_free(l);
  node_close(&s);
  node_close(&b);
}

static void test_apply_hlc_within_drift_advances(void **state) {
  (void)state;
  /* A peer ten minutes ahead (within the hour): the receiver's next write
   * is ordered after what it received (HLC causality). */
  const uint64_t ahead_ms = T0_MS + 10ull * 60ull * 1000ull;
  node s, b;
  node_open(&s, "apply-ds", 63);
  node_open(&b, "apply-db2", 64);
  wr(&s, "put", "k", "peer", ahead_ms);
  assert_int_equal(sync_origin(&s, &b, s.id.pk, T0_MS), 1);
  oplist *l = collect(s.store, s.id.pk);
  vs_write_result w = wr(&b, "put", "k", "mine", T0_MS);
  assert_true(w.hlc > l->ops[0].hlc);
  assert_true(w.hlc <= l->ops[0].hlc + HLC_SLACK);
  /* So B's put wins everywhere, though B's wall clock is behind. */
  assert_int_equal(sync_origin(&b, &s, b.id.pk, T0_MS), 1);
  assert_converged(s.store, b.store);
  assert_value(s.store, "k", "mine");
  oplist_free(l);
  node_close(&s);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* Look-ups                                                                  */
/* ------------------------------------------------------------------------ */

static void test_apply_lookups_bad_args(void **state) {
  (void)state;
  node a;
  node_open(&a, "apply-la", 70);
  vs_write_result w = wr(&a, "put", "k", "v", T0_MS);
  uint8_t sig[VS_SIGNATURE_BYTES];
  uint64_t seq = 0;
  assert_err(vs_apply_sig_get(NULL, &w.op_id, sig), VS_ERR_INVAL);
  assert_err(vs_apply_sig_get(a.store, NULL, sig), VS_ERR_INVAL);
  assert_err(vs_apply_sig_get(a.store, &w.op_id, NULL), VS_ERR_INVAL);
  assert_err(vs_apply_next_signed(NULL, a.id.pk, 1, &seq), VS_ERR_INVAL);
  assert_err(vs_apply_next_signed(a.store, NULL, 1, &seq), VS_ERR_INVAL);
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 1, NULL), VS_ERR_INVAL);
  /* An unknown origin has nothing signed, even when its ids sort next to
   * a known one's. */
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 9);
  assert_err(vs_apply_next_signed(a.store, other, 1, &seq), VS_ERR_NOTFOUND);
  vs_op_id missing;
  vs_op_id_derive(a.id.pk, 2, &missing);
  assert_err(vs_apply_sig_get(a.store, &missing, sig), VS_ERR_NOTFOUND);
  node_close(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_local_commits_are_signed),
      cmocka_unit_test(test_apply_big_batch_signed_every_interval),
      cmocka_unit_test(test_apply_other_origins_not_signed),
      cmocka_unit_test(test_apply_two_nodes_converge),
      cmocka_unit_test(test_apply_concurrent_writes_converge),
      cmocka_unit_test(test_apply_relay_through_b),
      cmocka_unit_test(test_apply_duplicates_change_nothing),
      cmocka_unit_test_setup_teardown(test_apply_rejects_forged_signature, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_signature_by_other_identity, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_tampered_last_payload, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_tampered_middle_payload, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_tampered_prev, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_gap, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_bad_shape, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_op_claiming_other_origin, reject_setup, reject_teardown),
      cmocka_unit_test(test_apply_fork_refused_and_recorded),
      cmocka_unit_test(test_apply_fork_after_shared_prefix),
      cmocka_unit_test(test_apply_fork_inside_a_run_keeps_the_prefix_relayable),
      cmocka_unit_test(test_apply_pin_attack_max_hlc_waits),
      cmocka_unit_test(test_apply_day_ahead_waits_then_orders),
      cmocka_unit_test(test_apply_hlc_within_drift_advances),
      cmocka_unit_test(test_apply_lookups_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
