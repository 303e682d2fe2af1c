/* Orphans: own ops a rebase took out of the chain (orphans.h). */
#include "orphans.h"

#include <stdio.h>
#include <stdlib.h>

#include "vixsync/write.h"

static const char PREFIX[] = "orphan:";
static const char NEXT_KEY[] = "orphan_next";
#define KEY_BYTES (sizeof PREFIX - 1 + 8u)

static void key_of(uint8_t key[KEY_BYTES], uint64_t id) {
  memcpy(key, PREFIX, sizeof PREFIX - 1);
  vs_put_u64be(key + sizeof PREFIX - 1, id);
}

static vs_err rec_decode(const MDB_val *k, const MDB_val *v, vs_orphan *o) {
  const uint8_t *p = v->mv_data;
  if (k->mv_size != KEY_BYTES || v->mv_size < VS_ORPHAN_REC_HEADER_BYTES || p[0] != VS_ORPHAN_REC_VERSION)
    return VS_ERR_CORRUPT;
  o->id = vs_get_u64be((const uint8_t *)k->mv_data + sizeof PREFIX - 1);
  o->seq = vs_get_u64le(p + 1);
  o->hlc = vs_get_u64le(p + 9);
  o->op_bytes = vs_get_u32le(p + 17);
  o->op = p + VS_ORPHAN_REC_HEADER_BYTES;
  if (o->op_bytes > VS_OP_ENCODED_BYTES_MAX || v->mv_size != VS_ORPHAN_REC_HEADER_BYTES + (size_t)o->op_bytes)
    return VS_ERR_CORRUPT;
  return VS_OK;
}

vs_err vs_orphans_walk_txn(MDB_txn *txn, const vs_store *store, uint64_t from, vs_orphan_fn fn, void *ctx) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_meta, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t key[KEY_BYTES];
  key_of(key, from);
  MDB_val k = {sizeof key, key}, v;
  vs_err err = VS_OK;
  uint64_t seen = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < sizeof PREFIX - 1 || memcmp(k.mv_data, PREFIX, sizeof PREFIX - 1) != 0) break;
    if (++seen > VS_ORPHANS_MAX) { /* bounded: more is corruption */
      err = VS_ERR_CORRUPT;
      break;
    }
    vs_orphan o;
    err = rec_decode(&k, &v, &o);
    if (err == VS_OK) err = fn(ctx, &o);
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

typedef struct usage {
  uint64_t count, bytes;
} usage;

static vs_err usage_cb(void *ctx, const vs_orphan *o) {
  usage *u = ctx;
  u->count++;
  u->bytes += o->op_bytes;
  return VS_OK;
}

vs_err vs_orphans_usage_txn(MDB_txn *txn, const vs_store *store, uint64_t *count_out, uint64_t *bytes_out) {
  usage u = {0, 0};
  vs_err err = vs_orphans_walk_txn(txn, store, 0, usage_cb, &u);
  *count_out = u.count;
  *bytes_out = u.bytes;
  return err;
}

vs_err vs_orphans_put_txn(MDB_txn *txn, const vs_store *store, uint64_t seq, uint64_t hlc, const uint8_t *op,
                          uint32_t op_bytes, uint64_t *id_out) {
  if (op_bytes > VS_OP_ENCODED_BYTES_MAX) return VS_ERR_INVAL;
  MDB_val nk = {sizeof NEXT_KEY - 1, (void *)NEXT_KEY}, nv;
  uint64_t id = 1;
  int rc = mdb_get(txn, store->dbi_meta, &nk, &nv);
  if (rc == MDB_SUCCESS && nv.mv_size != 8) return VS_ERR_CORRUPT;
  if (rc == MDB_SUCCESS) id = vs_get_u64le(nv.mv_data);
  else if (rc != MDB_NOTFOUND) return vs_mdb_err(rc);
  uint8_t next[8];
  vs_put_u64le(next, id + 1);
  nv.mv_size = sizeof next;
  nv.mv_data = next;
  rc = mdb_put(txn, store->dbi_meta, &nk, &nv, 0);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t key[KEY_BYTES];
  key_of(key, id);
  MDB_val k = {sizeof key, key}, v = {VS_ORPHAN_REC_HEADER_BYTES + (size_t)op_bytes, NULL};
  rc = mdb_put(txn, store->dbi_meta, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t *p = v.mv_data;
  p[0] = VS_ORPHAN_REC_VERSION;
  vs_put_u64le(p + 1, seq);
  vs_put_u64le(p + 9, hlc);
  vs_put_u32le(p + 17, op_bytes);
  if (op_bytes > 0) memcpy(p + VS_ORPHAN_REC_HEADER_BYTES, op, op_bytes);
  *id_out = id;
  return VS_OK;
}

vs_err vs_orphans_list(vs_store *store, vs_orphan_fn fn, void *ctx) {
  if (store == NULL || fn == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_orphans_walk_txn(txn, store, 0, fn, ctx);
  mdb_txn_abort(txn);
  return err;
}

static vs_err drop_txn(MDB_txn *txn, const vs_store *store, uint64_t id) {
  uint8_t key[KEY_BYTES];
  key_of(key, id);
  MDB_val k = {sizeof key, key};
  return vs_mdb_err(mdb_del(txn, store->dbi_meta, &k, NULL));
}

vs_err vs_orphans_drop(vs_store *store, uint64_t id) {
  if (store == NULL || id == 0) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  err = drop_txn(txn, store, id);
  if (err == VS_OK) err = vs_txn_commit(txn);
  else mdb_txn_abort(txn);
  return err;
}

vs_err vs_store_set_orphan_fn(vs_store *store, vs_orphan_fn fn, void *ctx) {
  if (store == NULL) return VS_ERR_INVAL;
  store->on_orphan = fn;
  store->on_orphan_ctx = fn != NULL ? ctx : NULL;
  return VS_OK;
}

/* ---- replay ---- */

#define IDEM_PREFIX "vixsync/orphan/"
#define IDEM_BYTES (sizeof IDEM_PREFIX - 1 + 2u * VS_HASH_BYTES)
#define KIND_BYTES_MAX 64u

typedef struct replay_item {
  uint64_t id;
  vs_op op;              /* points into mem */
  uint8_t *mem;          /* the op's encoding, copied */
  char kind[KIND_BYTES_MAX + 1];
  uint8_t idem[IDEM_BYTES];
} replay_item;

typedef struct replay {
  replay_item *items;
  uint64_t n, cap;
  vs_err err;
} replay;

static vs_err replay_collect(void *ctx, const vs_orphan *o) {
  replay *r = ctx;
  if (r->n == r->cap) {
    uint64_t cap = r->cap == 0 ? 64 : r->cap * 2;
    replay_item *g = realloc(r->items, (size_t)cap * sizeof *g);
    if (g == NULL) return VS_ERR_NOMEM;
    r->items = g;
    r->cap = cap;
  }
  replay_item *it = &r->items[r->n];
  memset(it, 0, sizeof *it);
  it->mem = malloc(o->op_bytes > 0 ? o->op_bytes : 1);
  if (it->mem == NULL) return VS_ERR_NOMEM;
  r->n++; /* owned from here (freed with the rest) */
  memcpy(it->mem, o->op, o->op_bytes);
  it->id = o->id;
  if (vs_op_decode(it->mem, o->op_bytes, &it->op) != VS_OK || it->op.kind_bytes == 0 ||
      it->op.kind_bytes > KIND_BYTES_MAX)
    return VS_ERR_CORRUPT;
  memcpy(it->kind, it->op.kind, it->op.kind_bytes);
  it->kind[it->op.kind_bytes] = '\0';
  uint8_t hash[VS_HASH_BYTES];
  vs_op_hash_encoded(it->mem, o->op_bytes, hash);
  memcpy(it->idem, IDEM_PREFIX, sizeof IDEM_PREFIX - 1);
  char hex[2 * VS_HASH_BYTES + 1];
  vs_hex_encode(hash, VS_HASH_BYTES, hex);
  memcpy(it->idem + sizeof IDEM_PREFIX - 1, hex, 2u * VS_HASH_BYTES);
  return VS_OK;
}

vs_err vs_orphans_replay(vs_store *store, uint64_t now_ms, uint64_t *count_out) {
  if (count_out != NULL) *count_out = 0;
  if (store == NULL) return VS_ERR_INVAL;
  if (!store->has_identity) return VS_ERR_NO_IDENTITY;
  replay r;
  memset(&r, 0, sizeof r);
  vs_err err = vs_orphans_list(store, replay_collect, &r);
  vs_write_req *reqs = NULL;
  if (err == VS_OK && r.n > 0) {
    reqs = calloc((size_t)r.n, sizeof *reqs);
    if (reqs == NULL) err = VS_ERR_NOMEM;
  }
  for (uint64_t i = 0; i < r.n && err == VS_OK; i++) { /* bounded: VS_ORPHANS_MAX */
    const replay_item *it = &r.items[i];
    reqs[i].kind = it->kind;
    reqs[i].target = it->op.target;
    reqs[i].target_bytes = it->op.target_bytes;
    reqs[i].payload = it->op.payload;
    reqs[i].payload_bytes = it->op.payload_bytes;
    reqs[i].idem_key = it->idem;
    reqs[i].idem_key_bytes = (uint32_t)IDEM_BYTES;
  }
  /* One transaction writes them all (or none), the next removes them. */
  if (err == VS_OK && r.n > 0) err = vs_write_batch(store, store->identity.pk, reqs, (size_t)r.n, now_ms, NULL);
  MDB_txn *txn = NULL;
  if (err == VS_OK && r.n > 0) err = vs_txn_begin(store, true, &txn);
  for (uint64_t i = 0; i < r.n && err == VS_OK && txn != NULL; i++) err = drop_txn(txn, store, r.items[i].id);
  if (txn != NULL) {
    if (err == VS_OK) err = vs_txn_commit(txn);
    else mdb_txn_abort(txn);
  }
  if (err == VS_OK && count_out != NULL) *count_out = r.n;
  for (uint64_t i = 0; i < r.n; i++) free(r.items[i].mem);
  free(r.items);
  free(reqs);
  return err;
}
