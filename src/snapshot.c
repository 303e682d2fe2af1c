#define _POSIX_C_SOURCE 200809L
/* Snapshots (vixsync/snapshot.h; the layout: docs/storage.md,
 * "Snapshots").
 *
 * Stream: the header (signed), the chunk hashes (their BLAKE2b is the
 * header's root), then each chunk as [u32 bytes][chunk]. A chunk is
 * [u32 index][u32 items] and its items; items run on across chunks in one
 * order: the state's entries in state-key order, each followed by its incr
 * rows, then the membership ops in (origin, seq) order.
 *   item  = [u8 type][u32 body bytes][body]
 *   ENTRY (1) = u32 target bytes, target, u8 base kind, u64 base hlc,
 *               origin 32, u32 value bytes, value, u8 lone, digest 32
 *               (zero for a del: a tombstone adds nothing to the state hash)
 *   INCR  (2) = u64 hlc, origin 32, u64 seq, i64 delta (of the last ENTRY):
 *               one incr, or the total of one origin's incrs that the
 *               maker's compaction folded (its greatest hlc and seq)
 *   MESH  (3) = sig 64 (the origin's, of its chain head at the op), op
 *   AHEAD (4) = as MESH, for a membership op past its origin's anchor
 *               (version 3): stored by no installer (its chain brings it
 *               by anti-entropy), only folded with the rest into the view
 *               that must hold the signer. MESH and AHEAD items run
 *               together in (origin, seq) order; the header's mesh ops
 *               counts both.
 * Header (little-endian): magic "VIXSNAP1", u32 version, u32 header bytes,
 * mesh id 32, signer 32, u64 hlc, u64 gc_floor (the maker's: <= hlc), state hash 32, u64
 * entries, u64 incrs, u64 mesh ops, u32 origins, u32 chunks, root 32, then
 * per origin (increasing) origin 32, u64 seq, u64 hlc, hash 32, sig 64,
 * then the signer's Ed25519 signature of BLAKE2b-512(domain || the header
 * before it). */
#include "vixsync/snapshot.h"

#include <stdlib.h>

#include "chain.h"
#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "internal.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "snapshot_int.h"
#include "state_int.h"
#include "wal_int.h"
#include "vixsync/node.h" /* VS_MAX_DRIFT_MS_DEFAULT */

#define MAGIC "VIXSNAP1"
#define HDR_FIXED 192u
#define ORIGIN_REC 144u /* origin 32, seq 8, hlc 8, hash 32, sig 64 */
#define CHUNK_HEAD 8u   /* index, items */
#define ITEM_HEAD 5u
#define ITEM_ENTRY 1u
#define ITEM_INCR 2u
#define ITEM_MESH 3u
#define ITEM_AHEAD 4u
#define INCR_BODY (8u + VS_ORIGIN_BYTES + 8u + 8u)
#define ENTRY_BODY_FIXED (4u + 1u + 8u + VS_ORIGIN_BYTES + 4u + 1u + VS_HASH_BYTES)
#define ITEM_MAX (ITEM_HEAD + ENTRY_BODY_FIXED + VS_OP_TARGET_BYTES_MAX + VS_OP_PAYLOAD_BYTES_MAX)
_Static_assert(ITEM_MAX < VS_SNAPSHOT_CHUNK_BYTES_MAX - CHUNK_HEAD - VS_SNAPSHOT_CHUNK_BYTES, "an item fits a chunk");
_Static_assert(ITEM_HEAD + VS_SIGNATURE_BYTES + VS_OP_ENCODED_BYTES_MAX < VS_SNAPSHOT_CHUNK_BYTES_MAX - CHUNK_HEAD -
                                                                              VS_SNAPSHOT_CHUNK_BYTES,
               "a membership op fits a chunk");

static const char SIG_DOMAIN[] = "vixsync/snapshot/v1";
static const char CHUNK_DOMAIN[] = "vixsync/snapshot-chunk/v1";
static const char ROOT_DOMAIN[] = "vixsync/snapshot-root/v1";

static void chunk_hash(const uint8_t *chunk, size_t bytes, uint8_t out[VS_HASH_BYTES]) {
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)CHUNK_DOMAIN, sizeof CHUNK_DOMAIN - 1);
  crypto_generichash_update(&st, chunk, bytes);
  crypto_generichash_final(&st, out, VS_HASH_BYTES);
}

static void root_of(const uint8_t (*hashes)[VS_HASH_BYTES], uint32_t n, uint8_t out[VS_HASH_BYTES]) {
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)ROOT_DOMAIN, sizeof ROOT_DOMAIN - 1);
  if (n > 0) crypto_generichash_update(&st, hashes[0], (size_t)n * VS_HASH_BYTES);
  crypto_generichash_final(&st, out, VS_HASH_BYTES);
}

/* What the signature covers: a digest of the header up to it. */
static void header_digest(const uint8_t *hdr, size_t bytes, uint8_t out[crypto_sign_BYTES]) {
  crypto_generichash_state st;
  vs_hash_init(&st, 64);
  crypto_generichash_update(&st, (const uint8_t *)SIG_DOMAIN, sizeof SIG_DOMAIN - 1);
  crypto_generichash_update(&st, hdr, bytes);
  crypto_generichash_final(&st, out, 64);
}

/* ---- making ---- */

typedef struct maker {
  MDB_txn *txn;
  vs_store *store;
  bool base; /* a managed mesh: the base state at the horizons (else the live state at the heads) */
  bool emit; /* pass 2: write; pass 1: only hash */
  vs_snapshot_write_fn fn;
  void *ctx;
  uint8_t *chunk; /* VS_SNAPSHOT_CHUNK_BYTES_MAX */
  size_t used;
  uint32_t items;
  uint8_t *item; /* ITEM_MAX scratch */
  uint8_t (*hashes)[VS_HASH_BYTES];
  uint32_t n, cap;
  uint64_t entries, incrs, mesh_ops, bytes;
  uint8_t state_hash[VS_HASH_BYTES];
  /* A managed mesh, pass 1: the facts of the membership ops carried (the
   * view an installer makes of them must hold the signer). */
  vs_mesh_fact *facts;
  uint32_t facts_n, facts_cap;
} maker;

/* Append the fact of `op` (hash `hash`) to a growing list, at most
 * VS_MESH_FACTS_MAX (VS_ERR_LIMIT); VS_ERR_MALFORMED: no membership fact. */
static vs_err fact_push(vs_mesh_fact **facts, uint32_t *n, uint32_t *cap, const vs_op *op,
                        const uint8_t hash[VS_HASH_BYTES]) {
  if (*n == VS_MESH_FACTS_MAX) return VS_ERR_LIMIT;
  if (*n == *cap) {
    uint32_t c = *cap == 0 ? 16 : *cap * 2;
    vs_mesh_fact *g = realloc(*facts, sizeof *g * c);
    if (g == NULL) return VS_ERR_NOMEM;
    *facts = g;
    *cap = c;
  }
  if (vs_mesh_fact_from_op(op, hash, &(*facts)[*n]) != VS_OK) return VS_ERR_MALFORMED;
  (*n)++;
  return VS_OK;
}

/* Pass 1 of a managed mesh's snapshot: the fact of a membership op carried. */
static vs_err fact_add(maker *m, const uint8_t *enc, uint32_t enc_bytes) {
  if (m->emit || !m->base) return VS_OK;
  vs_op op;
  uint8_t hash[VS_HASH_BYTES];
  if (vs_op_decode(enc, enc_bytes, &op) != VS_OK) return VS_ERR_CORRUPT; /* a stored membership op that does not read */
  vs_op_hash_encoded(enc, enc_bytes, hash);
  vs_err err = fact_push(&m->facts, &m->facts_n, &m->facts_cap, &op, hash);
  return err == VS_ERR_MALFORMED ? VS_ERR_CORRUPT : err;
}

/* Whether the view the carried membership ops make holds the signer as an
 * active member: else no installer would take the snapshot. */
static vs_err signer_check(maker *m, const uint8_t mesh_id[VS_HASH_BYTES], const uint8_t self[VS_ORIGIN_BYTES]) {
  vs_mesh_view *view = malloc(sizeof *view);
  if (view == NULL) return VS_ERR_NOMEM;
  vs_err err = vs_mesh_reduce(mesh_id, m->facts, m->facts_n, view);
  if (err == VS_OK && !vs_mesh_active(view, self)) err = VS_ERR_NOT_MEMBER;
  free(view);
  return err;
}

static vs_err put(maker *m, const uint8_t *bytes, size_t len) {
  m->bytes += len;
  return m->emit ? m->fn(m->ctx, bytes, len) : VS_OK;
}

static vs_err flush(maker *m) {
  if (m->items == 0) return VS_OK;
  vs_put_u32le(m->chunk + 4, m->items);
  uint8_t h[VS_HASH_BYTES];
  chunk_hash(m->chunk, m->used, h);
  uint32_t index = vs_get_u32le(m->chunk);
  vs_err err = VS_OK;
  if (!m->emit) {
    if (m->n == VS_SNAPSHOT_CHUNKS_MAX) return VS_ERR_LIMIT;
    if (m->n == m->cap) {
      uint32_t cap = m->cap == 0 ? 64 : m->cap * 2;
      uint8_t(*g)[VS_HASH_BYTES] = realloc(m->hashes, (size_t)cap * VS_HASH_BYTES);
      if (g == NULL) return VS_ERR_NOMEM;
      m->hashes = g;
      m->cap = cap;
    }
    memcpy(m->hashes[m->n++], h, VS_HASH_BYTES);
  } else {
    /* The second pass reads the same transaction: the same chunks. */
    if (index >= m->n || memcmp(m->hashes[index], h, VS_HASH_BYTES) != 0) return VS_ERR_CORRUPT;
    uint8_t len[4];
    vs_put_u32le(len, (uint32_t)m->used);
    err = put(m, len, sizeof len);
    if (err == VS_OK) err = put(m, m->chunk, m->used);
  }
  vs_put_u32le(m->chunk, index + 1);
  m->used = CHUNK_HEAD;
  m->items = 0;
  return err;
}

/* Add the item in m->item (`bytes` long, its head filled here). */
static vs_err item_add(maker *m, uint8_t type, size_t bytes) {
  m->item[0] = type;
  vs_put_u32le(m->item + 1, (uint32_t)(bytes - ITEM_HEAD));
  if (m->items > 0 && m->used + bytes > VS_SNAPSHOT_CHUNK_BYTES) {
    vs_err err = flush(m);
    if (err != VS_OK) return err;
  }
  memcpy(m->chunk + m->used, m->item, bytes);
  m->used += bytes;
  m->items++;
  return VS_OK;
}

static vs_err on_entry(void *ctx, const vs_state_export_entry *e) {
  maker *m = ctx;
  uint8_t *p = m->item + ITEM_HEAD;
  vs_put_u32le(p, e->target_bytes);
  p += 4;
  if (e->target_bytes > 0) memcpy(p, e->target, e->target_bytes);
  p += e->target_bytes;
  *p++ = e->base_kind;
  vs_put_u64le(p, e->base_hlc);
  p += 8;
  memcpy(p, e->base_origin, VS_ORIGIN_BYTES);
  p += VS_ORIGIN_BYTES;
  vs_put_u32le(p, e->value_bytes);
  p += 4;
  if (e->value_bytes > 0) memcpy(p, e->value, e->value_bytes);
  p += e->value_bytes;
  *p++ = e->lone ? 1u : 0u;
  if (e->lone) memcpy(p, e->lone_digest, VS_HASH_BYTES);
  else memset(p, 0, VS_HASH_BYTES);
  p += VS_HASH_BYTES;
  m->entries++;
  return item_add(m, ITEM_ENTRY, (size_t)(p - m->item));
}

static vs_err on_incr(void *ctx, uint64_t hlc, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, int64_t delta) {
  maker *m = ctx;
  uint8_t *p = m->item + ITEM_HEAD;
  vs_put_u64le(p, hlc);
  memcpy(p + 8, origin, VS_ORIGIN_BYTES);
  vs_put_u64le(p + 8 + VS_ORIGIN_BYTES, seq);
  vs_put_u64le(p + 16 + VS_ORIGIN_BYTES, (uint64_t)delta);
  m->incrs++;
  return item_add(m, ITEM_INCR, ITEM_HEAD + INCR_BODY);
}

/* Every live membership op with its own signature. A record whose op is
 * void (past a cut: the view ignores it) or an orphan record is left out.
 * A managed mesh's snapshot (the base at the horizons) carries those at or
 * below their origin's anchor as MESH items, which installers store, and
 * those past it as AHEAD items: the view an installer checks the signer in
 * is the maker's own (a member admitted less than an invite's lifetime ago
 * has its admission past its anchor: finality keeps its chain
 * uncompacted). An AHEAD record without its own signature (an op in the
 * middle of a run: no membership op is, they are written alone) is left
 * out. */
static vs_err mesh_items(maker *m) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(m->txn, m->store->dbi_mesh, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  vs_err err = VS_OK;
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != VS_MESH_RECORD_KEY_BYTES || v.mv_size != VS_MESH_RECORD_BYTES || ((const uint8_t *)v.mv_data)[0] != 1)
      continue; /* an orphan record: the op's bytes without its chain */
    const uint8_t *origin = k.mv_data;
    uint64_t seq = vs_get_u64be((const uint8_t *)k.mv_data + VS_ORIGIN_BYTES);
    uint64_t lsn = vs_get_u64le((const uint8_t *)v.mv_data + 1 + VS_HASH_BYTES);
    uint8_t type = ITEM_MESH;
    if (m->base) { /* past the horizon its chain brings it, by anti-entropy */
      vs_horizon hz;
      err = vs_horizon_get(m->txn, m->store, origin, &hz);
      if (err != VS_OK) break;
      if (seq > hz.seq) type = ITEM_AHEAD;
    }
    vs_op_id id;
    uint64_t at = 0;
    vs_op_id_derive(origin, seq, &id);
    err = vs_opid_get(m->txn, m->store, &id, &at, NULL);
    if (err == VS_ERR_NOTFOUND || (err == VS_OK && at != lsn)) {
      err = VS_OK;
      continue;
    }
    MDB_val sk = {VS_OP_ID_BYTES, id.bytes}, sv;
    if (err == VS_OK) {
      int src = mdb_get(m->txn, m->store->dbi_sigs, &sk, &sv);
      if (src == MDB_NOTFOUND && type == ITEM_AHEAD) continue;
      if (src == MDB_NOTFOUND || (src == MDB_SUCCESS && sv.mv_size != VS_SIGNATURE_BYTES)) err = VS_ERR_STATE;
      else err = vs_mdb_err(src);
    }
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    if (err == VS_OK) err = vs_wal_op_encoded_txn(m->txn, m->store, lsn, &enc, &enc_bytes);
    if (err == VS_OK && enc_bytes > VS_OP_ENCODED_BYTES_MAX) err = VS_ERR_CORRUPT;
    if (err == VS_OK) err = fact_add(m, enc, enc_bytes);
    if (err != VS_OK) break;
    memcpy(m->item + ITEM_HEAD, sv.mv_data, VS_SIGNATURE_BYTES);
    memcpy(m->item + ITEM_HEAD + VS_SIGNATURE_BYTES, enc, enc_bytes);
    m->mesh_ops++;
    err = item_add(m, type, ITEM_HEAD + VS_SIGNATURE_BYTES + (size_t)enc_bytes);
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

static vs_err pass(maker *m) {
  m->used = CHUNK_HEAD;
  m->items = 0;
  vs_put_u32le(m->chunk, 0);
  m->entries = m->incrs = m->mesh_ops = 0;
  vs_err err = vs_state_export_txn(m->txn, m->store, m->base, on_entry, on_incr, m);
  if (err == VS_OK) err = mesh_items(m);
  if (err == VS_OK) err = flush(m);
  return err;
}

/* The header's origins: each chain head with its origin's signature (from
 * the signatures, or the horizon's anchor when the head was compacted). */
static vs_err origins_fill(maker *m, uint8_t **out, uint32_t *n_out) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(m->txn, m->base ? m->store->dbi_horizon : m->store->dbi_heads, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t *buf = NULL;
  uint32_t n = 0, cap = 0;
  vs_err err = VS_OK;
  static const uint8_t zero_sig[VS_SIGNATURE_BYTES];
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_head head;
    vs_horizon anchor;
    memset(&anchor, 0, sizeof anchor);
    if (k.mv_size != VS_ORIGIN_BYTES) err = VS_ERR_CORRUPT;
    else if (!m->base) err = vs_head_decode(&v, &head);
    else err = vs_horizon_get(m->txn, m->store, k.mv_data, &anchor); /* compaction anchors only at signed ops */
    if (err == VS_OK && m->base) {
      head.seq = anchor.seq;
      head.hlc = anchor.hlc;
      memcpy(head.hash, anchor.hash, VS_HASH_BYTES);
      if (!anchor.has_sig) err = VS_ERR_STATE;
    }
    if (err != VS_OK) break;
    if (n == VS_SNAPSHOT_ORIGINS_MAX) {
      err = VS_ERR_LIMIT;
      break;
    }
    if (n == cap) {
      cap = cap == 0 ? 16 : cap * 2;
      uint8_t *g = realloc(buf, (size_t)cap * ORIGIN_REC);
      if (g == NULL) {
        err = VS_ERR_NOMEM;
        break;
      }
      buf = g;
    }
    uint8_t *p = buf + (size_t)n * ORIGIN_REC;
    memcpy(p, k.mv_data, VS_ORIGIN_BYTES);
    vs_put_u64le(p + 32, head.seq);
    vs_put_u64le(p + 40, head.hlc);
    memcpy(p + 48, head.hash, VS_HASH_BYTES);
    vs_op_id id;
    vs_op_id_derive(p, head.seq, &id);
    MDB_val sk = {VS_OP_ID_BYTES, id.bytes}, sv;
    int src = m->base ? MDB_NOTFOUND : mdb_get(m->txn, m->store->dbi_sigs, &sk, &sv);
    if (m->base) {
      memcpy(p + 80, anchor.sig, VS_SIGNATURE_BYTES);
    } else if (src == MDB_SUCCESS && sv.mv_size == VS_SIGNATURE_BYTES) {
      memcpy(p + 80, sv.mv_data, VS_SIGNATURE_BYTES);
    } else if (src == MDB_SUCCESS || src == MDB_NOTFOUND) {
      vs_horizon hz;
      err = vs_horizon_get(m->txn, m->store, p, &hz);
      if (err == VS_OK && !(hz.seq == head.seq && hz.has_sig)) err = VS_ERR_STATE;
      if (err == VS_OK) memcpy(p + 80, hz.sig, VS_SIGNATURE_BYTES);
    } else {
      err = vs_mdb_err(src);
    }
    /* A head vouched for only by fork evidence (the zero signature). */
    if (err == VS_OK && memcmp(p + 80, zero_sig, VS_SIGNATURE_BYTES) == 0) err = VS_ERR_FORKED;
    n++;
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  if (err != VS_OK) {
    free(buf);
    return err;
  }
  *out = buf;
  *n_out = n;
  return VS_OK;
}

vs_err vs_snapshot_make(vs_store *store, vs_snapshot_write_fn fn, void *ctx, vs_snapshot_info *info) {
  if (store == NULL || fn == NULL) return VS_ERR_INVAL;
  if (!store->has_identity) return VS_ERR_NO_IDENTITY;
  maker m;
  memset(&m, 0, sizeof m);
  m.store = store;
  m.fn = fn;
  m.ctx = ctx;
  m.chunk = malloc(VS_SNAPSHOT_CHUNK_BYTES_MAX);
  m.item = malloc(ITEM_MAX + VS_OP_ENCODED_BYTES_MAX);
  uint8_t *origins = NULL, *hdr = NULL;
  uint32_t n_origins = 0;
  vs_err err = m.chunk == NULL || m.item == NULL ? VS_ERR_NOMEM : vs_txn_begin(store, false, &m.txn);
  if (err != VS_OK) {
    free(m.chunk);
    free(m.item);
    return err;
  }
  uint8_t mesh_id[VS_HASH_BYTES] = {0};
  uint64_t hlc = 0;
  err = vs_mesh_id_get_txn(m.txn, store, mesh_id);
  if (err == VS_ERR_NOTFOUND) {
    memset(mesh_id, 0, sizeof mesh_id);
    err = VS_OK;
  }
  /* A managed mesh: the base state at the horizons, the stable part: what
   * the receiver then holds as final is what every member holds (voids
   * never reach below a horizon). An open mesh has no stable cut: the live
   * state at the heads (docs/storage.md, "Snapshots"). */
  m.base = memcmp(mesh_id, (const uint8_t[VS_HASH_BYTES]){0}, VS_HASH_BYTES) != 0;
  if (err == VS_OK) err = vs_meta_hlc_get(m.txn, store, &hlc);
  if (err == VS_OK && m.base) err = vs_state_base_hash_get_txn(m.txn, store, m.state_hash);
  if (err == VS_OK && !m.base) err = vs_state_hash_get_txn(m.txn, store, m.state_hash);
  /* What the base dropped (tombstones, incr rows folded into totals) was
   * at or below it: the receiver refuses later data ops there as we do. */
  uint64_t gc_floor = 0;
  if (err == VS_OK) err = vs_state_gc_floor_get_txn(m.txn, store, &gc_floor);
  if (err == VS_OK) err = origins_fill(&m, &origins, &n_origins);
  if (err == VS_OK) err = pass(&m); /* pass 1: the chunks' hashes */
  /* Nothing is written for a snapshot whose signer is no active member in
   * the view its membership ops make (a revoked or never admitted maker). */
  if (err == VS_OK && m.base) err = signer_check(&m, mesh_id, store->identity.pk);
  free(m.facts);
  m.facts = NULL;
  size_t hdr_bytes = HDR_FIXED + (size_t)n_origins * ORIGIN_REC + VS_SIGNATURE_BYTES;
  if (err == VS_OK && (hdr = malloc(hdr_bytes)) == NULL) err = VS_ERR_NOMEM;
  if (err == VS_OK) {
    uint8_t *p = hdr;
    memcpy(p, MAGIC, 8);
    vs_put_u32le(p + 8, VS_SNAPSHOT_VERSION);
    vs_put_u32le(p + 12, (uint32_t)hdr_bytes);
    memcpy(p + 16, mesh_id, 32);
    memcpy(p + 48, store->identity.pk, VS_ORIGIN_BYTES);
    vs_put_u64le(p + 80, hlc);
    vs_put_u64le(p + 88, gc_floor); /* docs/storage.md, "Dropping tombstones" */
    memcpy(p + 96, m.state_hash, VS_HASH_BYTES);
    vs_put_u64le(p + 128, m.entries);
    vs_put_u64le(p + 136, m.incrs);
    vs_put_u64le(p + 144, m.mesh_ops);
    vs_put_u32le(p + 152, n_origins);
    vs_put_u32le(p + 156, m.n);
    root_of((const uint8_t(*)[VS_HASH_BYTES])m.hashes, m.n, p + 160);
    if (n_origins > 0) memcpy(p + HDR_FIXED, origins, (size_t)n_origins * ORIGIN_REC);
    uint8_t digest[64];
    header_digest(hdr, hdr_bytes - VS_SIGNATURE_BYTES, digest);
    crypto_sign_detached(hdr + hdr_bytes - VS_SIGNATURE_BYTES, NULL, digest, sizeof digest, store->identity.sk);
    m.emit = true;
    m.bytes = 0;
    err = put(&m, hdr, hdr_bytes);
    if (err == VS_OK && m.n > 0) err = put(&m, m.hashes[0], (size_t)m.n * VS_HASH_BYTES);
  }
  if (err == VS_OK) err = pass(&m); /* pass 2: the chunks */
  mdb_txn_abort(m.txn);
  if (err == VS_OK && info != NULL) {
    memset(info, 0, sizeof *info);
    memcpy(info->signer, store->identity.pk, VS_ORIGIN_BYTES);
    memcpy(info->mesh_id, mesh_id, 32);
    memcpy(info->state_hash, m.state_hash, 32);
    info->hlc = hlc;
    info->origins = n_origins;
    info->chunks = m.n;
    info->entries = m.entries;
    info->incrs = m.incrs;
    info->mesh_ops = m.mesh_ops;
    info->bytes = m.bytes;
    info->gc_floor = gc_floor;
  }
  free(hdr);
  free(origins);
  free(m.hashes);
  free(m.chunk);
  free(m.item);
  return err;
}

/* ---- installing ---- */

typedef struct installer {
  MDB_txn *txn;
  vs_store *store;
  uint8_t base_hash[VS_HASH_BYTES];
  /* The last ENTRY's target: the INCR items after it are its. */
  uint8_t target[VS_OP_TARGET_BYTES_MAX];
  uint32_t target_bytes;
  bool have_target;
  uint8_t last_key[VS_ORIGIN_BYTES + 8]; /* the last MESH or AHEAD op's (origin, seq): increasing */
  bool have_mesh;
  uint32_t version; /* the snapshot's format: AHEAD items from 3 */
  /* The facts of the AHEAD items: folded with the store's for the signer
   * check, never stored. */
  vs_mesh_fact *ahead;
  uint32_t ahead_n, ahead_cap;
  uint64_t entries, incrs, mesh_ops, mesh_items;
  uint64_t lsn; /* the WAL's last LSN */
  const uint8_t *origins; /* the header's anchors (ORIGIN_REC each, by origin) */
  uint32_t n_origins;
  uint64_t hlc_max; /* no HLC whose wall ms is past this is taken: now + the drift a run may have */
  vs_wal_cursors cur;
} installer;

/* An ENTRY: the target's winning put or del folded into the base state
 * (a target sent twice merges as two ops would: the state hash the header
 * signs then tells). */
static vs_err item_entry(installer *in, const uint8_t *b, uint32_t len) {
  if (len < ENTRY_BODY_FIXED) return VS_ERR_MALFORMED;
  vs_state_export_entry e;
  memset(&e, 0, sizeof e);
  const uint8_t *p = b, *end = b + len;
  e.target_bytes = vs_get_u32le(p);
  p += 4;
  if (e.target_bytes > VS_OP_TARGET_BYTES_MAX || (size_t)(end - p) < (size_t)e.target_bytes + ENTRY_BODY_FIXED - 4)
    return VS_ERR_MALFORMED;
  e.target = p;
  p += e.target_bytes;
  e.base_kind = *p++;
  e.base_hlc = vs_get_u64le(p);
  p += 8;
  e.base_origin = p;
  p += VS_ORIGIN_BYTES;
  e.value_bytes = vs_get_u32le(p);
  p += 4;
  if (e.value_bytes > VS_OP_PAYLOAD_BYTES_MAX || (size_t)(end - p) != (size_t)e.value_bytes + 1u + VS_HASH_BYTES)
    return VS_ERR_MALFORMED;
  e.value = p;
  p += e.value_bytes;
  if (*p > 1) return VS_ERR_MALFORMED;
  e.lone = *p++ == 1;
  memcpy(e.lone_digest, p, VS_HASH_BYTES);
  if (e.base_kind > 2 || (e.lone && e.base_kind == 0) || (e.base_kind != 1 && e.value_bytes > 0)) return VS_ERR_MALFORMED;
  static const uint8_t zero[VS_HASH_BYTES];
  if (e.lone && e.base_kind == 2 && memcmp(e.lone_digest, zero, VS_HASH_BYTES) != 0)
    return VS_ERR_MALFORMED; /* a tombstone adds nothing to the state hash: its digest is zero */
  if (vs_hlc_wall_ms(e.base_hlc) > in->hlc_max) return VS_ERR_FUTURE;
  vs_err err = vs_state_import_entry_txn(in->txn, in->store, &e, in->base_hash);
  if (err != VS_OK) return err;
  memcpy(in->target, e.target, e.target_bytes);
  in->target_bytes = e.target_bytes;
  in->have_target = true;
  in->entries++;
  return VS_OK;
}

static vs_err item_incr(installer *in, const uint8_t *b, uint32_t len) {
  if (len != INCR_BODY || !in->have_target) return VS_ERR_MALFORMED;
  if (vs_hlc_wall_ms(vs_get_u64le(b)) > in->hlc_max) return VS_ERR_FUTURE;
  in->incrs++;
  return vs_state_import_incr_txn(in->txn, in->store, in->target, in->target_bytes, vs_get_u64le(b), b + 8,
                                  vs_get_u64le(b + 8 + VS_ORIGIN_BYTES), (int64_t)vs_get_u64le(b + 16 + VS_ORIGIN_BYTES),
                                  in->base_hash);
}

/* A membership op with its origin's signature of its chain head there:
 * stored as held (WAL record, op id, signature, membership record). One
 * the store holds already (its own admission) must be the same op. An
 * AHEAD item (past its origin's anchor, or of an origin the header
 * anchors no chain of) is checked the same way and only its fact kept,
 * for the signer check. */
static vs_err item_mesh(installer *in, const uint8_t *b, uint32_t len, bool ahead) {
  if (len <= VS_SIGNATURE_BYTES || len - VS_SIGNATURE_BYTES > VS_OP_ENCODED_BYTES_MAX) return VS_ERR_MALFORMED;
  const uint8_t *sig = b, *enc = b + VS_SIGNATURE_BYTES;
  uint32_t enc_bytes = len - VS_SIGNATURE_BYTES;
  vs_op op;
  if (vs_op_decode(enc, enc_bytes, &op) != VS_OK || !vs_mesh_kind_reserved(op.kind, op.kind_bytes))
    return VS_ERR_MALFORMED;
  uint8_t key[VS_ORIGIN_BYTES + 8];
  memcpy(key, op.origin, VS_ORIGIN_BYTES);
  vs_put_u64be(key + VS_ORIGIN_BYTES, op.seq);
  if (in->have_mesh && memcmp(key, in->last_key, sizeof key) <= 0) return VS_ERR_MALFORMED;
  memcpy(in->last_key, key, sizeof key);
  /* Only below an anchor the header names: the chain after it comes by
   * anti-entropy, where the op would be a second copy. */
  const uint8_t *anchor = NULL;
  for (uint32_t lo = 0, hi = in->n_origins; lo < hi && anchor == NULL;) { /* bounded: log2(origins) */
    uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *rec = in->origins + (size_t)mid * ORIGIN_REC;
    int c = memcmp(op.origin, rec, VS_ORIGIN_BYTES);
    if (c == 0) anchor = rec;
    else if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  bool below = anchor != NULL && op.seq <= vs_get_u64le(anchor + 32);
  if (below == ahead) return VS_ERR_MALFORMED;
  if (vs_hlc_wall_ms(op.hlc) > in->hlc_max) return VS_ERR_FUTURE;
  in->have_mesh = true;
  in->mesh_items++;
  uint8_t hash[VS_HASH_BYTES];
  vs_op_hash_encoded(enc, enc_bytes, hash);
  if (!vs_chain_verify(op.origin, op.seq, hash, sig)) return VS_ERR_AUTH;
  uint8_t held[VS_HASH_BYTES];
  vs_err err = vs_opid_get(in->txn, in->store, &op.id, NULL, held);
  if (err == VS_OK && memcmp(held, hash, VS_HASH_BYTES) != 0) return VS_ERR_STATE;
  if (ahead) {
    if (err != VS_OK && err != VS_ERR_NOTFOUND) return err;
    return fact_push(&in->ahead, &in->ahead_n, &in->ahead_cap, &op, hash);
  }
  if (err == VS_OK) return VS_OK;
  if (err != VS_ERR_NOTFOUND) return err;
  in->lsn++;
  err = vs_wal_append_cur(in->txn, in->store, &in->cur, &op, enc, in->lsn, 0, hash, false, NULL);
  if (err == VS_OK) err = vs_sig_put_txn(in->txn, in->store, &op.id, sig);
  if (err == VS_OK) err = vs_mesh_record_put_txn(in->txn, in->store, op.origin, op.seq, hash, in->lsn);
  if (err == VS_OK) in->mesh_ops++;
  return err;
}

static vs_err chunk_items(installer *in, const uint8_t *c, uint32_t bytes, uint32_t index) {
  if (bytes < CHUNK_HEAD || vs_get_u32le(c) != index) return VS_ERR_MALFORMED;
  uint32_t items = vs_get_u32le(c + 4);
  const uint8_t *p = c + CHUNK_HEAD, *end = c + bytes;
  vs_err err = VS_OK;
  for (uint32_t i = 0; i < items && err == VS_OK; i++) { /* bounded by the chunk's bytes */
    if ((size_t)(end - p) < ITEM_HEAD) return VS_ERR_MALFORMED;
    uint8_t type = p[0];
    uint32_t len = vs_get_u32le(p + 1);
    p += ITEM_HEAD;
    if ((size_t)(end - p) < len) return VS_ERR_MALFORMED;
    /* The order: entries (each with its incrs), then membership ops. */
    if (type == ITEM_ENTRY && !in->have_mesh) err = item_entry(in, p, len);
    else if (type == ITEM_INCR && !in->have_mesh) err = item_incr(in, p, len);
    else if (type == ITEM_MESH) err = item_mesh(in, p, len, false);
    else if (type == ITEM_AHEAD && in->version >= 3) err = item_mesh(in, p, len, true);
    else err = VS_ERR_MALFORMED;
    p += len;
  }
  return err == VS_OK && p != end ? VS_ERR_MALFORMED : err;
}

/* The store may take a snapshot: it holds no op of another origin than its
 * own, and nothing compacted or installed yet. */
static vs_err store_fresh(installer *in, const uint8_t *self) {
  MDB_stat st;
  vs_err err = vs_mdb_err(mdb_stat(in->txn, in->store->dbi_horizon, &st));
  if (err == VS_OK && st.ms_entries > 0) return VS_ERR_STATE;
  if (err == VS_OK) err = vs_mdb_err(mdb_stat(in->txn, in->store->dbi_hstate, &st));
  if (err == VS_OK && st.ms_entries > 0) return VS_ERR_STATE; /* an install that held no anchor */
  err = vs_mdb_err(mdb_stat(in->txn, in->store->dbi_heads, &st));
  if (err != VS_OK) return err;
  if (st.ms_entries == 0) return VS_OK;
  if (st.ms_entries > 1 || self == NULL) return VS_ERR_STATE;
  vs_head head;
  err = vs_head_get(in->txn, in->store, self, &head);
  return err == VS_OK && head.seq == 0 ? VS_ERR_STATE : err;
}

/* One origin's anchor: horizon and head there, except the store's own
 * chain, which it holds (its head may be past the snapshot's). */
static vs_err anchor_put(installer *in, const uint8_t *rec, const uint8_t *self) {
  vs_horizon hz;
  memset(&hz, 0, sizeof hz);
  hz.seq = vs_get_u64le(rec + 32);
  hz.hlc = vs_get_u64le(rec + 40);
  memcpy(hz.hash, rec + 48, VS_HASH_BYTES);
  hz.has_sig = true;
  memcpy(hz.sig, rec + 80, VS_SIGNATURE_BYTES);
  if (self != NULL && memcmp(rec, self, VS_ORIGIN_BYTES) == 0) {
    vs_head head;
    uint8_t held[VS_HASH_BYTES];
    vs_err err = vs_head_get(in->txn, in->store, self, &head);
    if (err != VS_OK) return err;
    if (head.seq < hz.seq) return VS_ERR_STATE; /* the mesh holds more of our chain: a restored copy */
    err = vs_op_hash_at_txn(in->txn, in->store, self, hz.seq, held);
    if (err == VS_ERR_NOTFOUND) err = VS_ERR_STATE;
    if (err == VS_OK && memcmp(held, hz.hash, VS_HASH_BYTES) != 0) err = VS_ERR_STATE;
    return err == VS_OK ? vs_horizon_put_txn(in->txn, in->store, self, &hz) : err;
  }
  /* A chain a rebase kept past the anchor (snapshot_rebase.c, others_plan:
   * our op at the anchor has its hash): its head stays. An install's store
   * holds no other chain (store_fresh). */
  vs_head held;
  vs_err err = vs_head_get(in->txn, in->store, rec, &held);
  if (err != VS_OK) return err;
  if (held.seq > hz.seq) return vs_horizon_put_txn(in->txn, in->store, rec, &hz);
  vs_head head = {hz.seq, hz.hlc, {0}};
  memcpy(head.hash, hz.hash, VS_HASH_BYTES);
  err = vs_horizon_put_txn(in->txn, in->store, rec, &hz);
  if (err == VS_OK) err = vs_head_put_txn(in->txn, in->store, rec, &head);
  return err;
}

static vs_err read_exact(vs_snapshot_read_fn fn, void *ctx, uint8_t *buf, size_t len, uint64_t *total) {
  vs_err err = fn(ctx, buf, len);
  if (err == VS_OK) *total += len;
  return err;
}

/* ---- the parts install and rebase share (snapshot_int.h) ---- */

void vs_snap_head_free(vs_snap_head *h) {
  free(h->hdr);
  free(h->hashes);
  h->hdr = NULL;
  h->hashes = NULL;
}

vs_err vs_snap_head_read(vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms, vs_snap_head *h) {
  memset(h, 0, sizeof *h);
  if (fn == NULL) return VS_ERR_INVAL;
  /* HLCs as apply takes them: none past now + the drift (apply.h), so a
   * maker with a wild clock cannot drag ours or win every race. */
  h->hlc_max = vs_add_sat_u64(now_ms, VS_MAX_DRIFT_MS_DEFAULT); /* in wall ms */
  uint8_t fixed[HDR_FIXED];
  vs_err err = read_exact(fn, ctx, fixed, sizeof fixed, &h->total);
  if (err != VS_OK) return err;
  if (memcmp(fixed, MAGIC, 8) != 0) return VS_ERR_MALFORMED;
  h->version = vs_get_u32le(fixed + 8);
  if (h->version != VS_SNAPSHOT_VERSION && h->version != 2) return VS_ERR_VERSION;
  uint32_t n_origins = vs_get_u32le(fixed + 152), n_chunks = vs_get_u32le(fixed + 156);
  if (n_origins > VS_SNAPSHOT_ORIGINS_MAX || n_chunks > VS_SNAPSHOT_CHUNKS_MAX) return VS_ERR_MALFORMED;
  size_t hdr_bytes = HDR_FIXED + (size_t)n_origins * ORIGIN_REC + VS_SIGNATURE_BYTES;
  if (vs_get_u32le(fixed + 12) != hdr_bytes) return VS_ERR_MALFORMED;
  h->n_origins = n_origins;
  h->n_chunks = n_chunks;
  h->hdr_bytes = hdr_bytes;
  h->hdr = malloc(hdr_bytes);
  h->hashes = n_chunks > 0 ? malloc((size_t)n_chunks * VS_HASH_BYTES) : NULL;
  if (h->hdr == NULL || (n_chunks > 0 && h->hashes == NULL)) err = VS_ERR_NOMEM;
  uint8_t *hdr = h->hdr;
  if (err == VS_OK) {
    memcpy(hdr, fixed, sizeof fixed);
    err = read_exact(fn, ctx, hdr + HDR_FIXED, hdr_bytes - HDR_FIXED, &h->total);
  }
  /* The signer's signature first, then the anchors, then the root. */
  if (err == VS_OK) {
    uint8_t digest[64];
    header_digest(hdr, hdr_bytes - VS_SIGNATURE_BYTES, digest);
    if (crypto_sign_verify_detached(hdr + hdr_bytes - VS_SIGNATURE_BYTES, digest, sizeof digest, hdr + 48) != 0)
      err = VS_ERR_AUTH;
  }
  if (err == VS_OK && vs_hlc_wall_ms(vs_get_u64le(hdr + 80)) > h->hlc_max) err = VS_ERR_FUTURE;
  /* gc_floor: what the maker dropped is below its own clock. */
  if (err == VS_OK && vs_get_u64le(hdr + 88) > vs_get_u64le(hdr + 80)) err = VS_ERR_MALFORMED;
  for (uint32_t i = 0; i < n_origins && err == VS_OK; i++) {
    const uint8_t *rec = hdr + HDR_FIXED + (size_t)i * ORIGIN_REC;
    if (i > 0 && memcmp(rec - ORIGIN_REC, rec, VS_ORIGIN_BYTES) >= 0) err = VS_ERR_MALFORMED;
    else if (vs_get_u64le(rec + 32) == 0) err = VS_ERR_MALFORMED;
    else if (!vs_chain_verify(rec, vs_get_u64le(rec + 32), rec + 48, rec + 80)) err = VS_ERR_AUTH;
    else if (vs_hlc_wall_ms(vs_get_u64le(rec + 40)) > h->hlc_max) err = VS_ERR_FUTURE; /* the anchor's HLC: not signed */
  }
  if (err == VS_OK && n_chunks > 0) err = read_exact(fn, ctx, h->hashes[0], (size_t)n_chunks * VS_HASH_BYTES, &h->total);
  if (err == VS_OK) {
    uint8_t root[VS_HASH_BYTES];
    root_of((const uint8_t(*)[VS_HASH_BYTES])h->hashes, n_chunks, root);
    if (memcmp(root, hdr + 160, VS_HASH_BYTES) != 0) err = VS_ERR_AUTH;
  }
  if (err != VS_OK) vs_snap_head_free(h);
  return err;
}

const uint8_t *vs_snap_anchor(const vs_snap_head *h, const uint8_t origin[VS_ORIGIN_BYTES]) {
  const uint8_t *origins = h->hdr + HDR_FIXED;
  for (uint32_t lo = 0, hi = h->n_origins; lo < hi;) { /* bounded: log2(origins) */
    uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *rec = origins + (size_t)mid * ORIGIN_REC;
    int c = memcmp(origin, rec, VS_ORIGIN_BYTES);
    if (c == 0) return rec;
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

vs_err vs_snap_mesh_check_txn(MDB_txn *txn, const vs_store *store, const vs_snap_head *h) {
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, store, mesh_id);
  if (err == VS_ERR_NOTFOUND) {
    memset(mesh_id, 0, sizeof mesh_id);
    err = VS_OK;
  }
  if (err == VS_OK && memcmp(mesh_id, h->hdr + 16, VS_HASH_BYTES) != 0) err = VS_ERR_STATE; /* another mesh (or join first) */
  return err;
}

/* The signer is an active member of the view the store's facts make (the
 * snapshot's MESH ops stored, and the store's own), folded with the AHEAD
 * items' facts when there are any. */
static vs_err signer_active(installer *in, const uint8_t mesh_id[VS_HASH_BYTES], const uint8_t *signer) {
  vs_mesh_rec rec;
  vs_err err = vs_mesh_rec_get_txn(in->txn, in->store, signer, &rec);
  if (err == VS_OK && !rec.revoked) return VS_OK;
  if (err != VS_OK && err != VS_ERR_NOTFOUND) return err;
  if (in->ahead_n == 0) return VS_ERR_NOT_MEMBER;
  vs_mesh_fact *facts = NULL;
  uint32_t n = 0;
  err = vs_mesh_facts_read_txn(in->txn, in->store, &facts, &n);
  if (err == VS_OK && n > VS_MESH_FACTS_MAX) err = VS_ERR_LIMIT;
  vs_mesh_fact *all = NULL;
  if (err == VS_OK && (all = malloc(sizeof *all * ((size_t)n + in->ahead_n))) == NULL) err = VS_ERR_NOMEM;
  vs_mesh_view *view = NULL;
  if (err == VS_OK && (view = malloc(sizeof *view)) == NULL) err = VS_ERR_NOMEM;
  if (err == VS_OK) {
    if (n > 0) memcpy(all, facts, sizeof *all * n);
    memcpy(all + n, in->ahead, sizeof *all * in->ahead_n);
    err = vs_mesh_reduce(mesh_id, all, n + in->ahead_n, view);
  }
  if (err == VS_OK && !vs_mesh_active(view, signer)) err = VS_ERR_NOT_MEMBER;
  free(view);
  free(all);
  free(facts);
  return err;
}

vs_err vs_snap_body_txn(MDB_txn *txn, vs_store *store, vs_snap_head *h, vs_snapshot_read_fn fn, void *ctx,
                        vs_snapshot_info *info) {
  uint8_t *hdr = h->hdr, *chunk = malloc(VS_SNAPSHOT_CHUNK_BYTES_MAX);
  if (chunk == NULL) return VS_ERR_NOMEM;
  const uint8_t *signer = hdr + 48;
  const uint32_t n_origins = h->n_origins, n_chunks = h->n_chunks;
  static const uint8_t zero[VS_HASH_BYTES];
  installer in;
  memset(&in, 0, sizeof in);
  in.txn = txn;
  in.store = store;
  in.origins = hdr + HDR_FIXED;
  in.n_origins = n_origins;
  in.hlc_max = h->hlc_max;
  in.version = h->version;
  const uint8_t *self = store->has_identity ? store->identity.pk : NULL;
  vs_err err = vs_wal_last_lsn_txn(in.txn, store, &in.lsn);
  if (err == VS_OK) err = vs_wal_cursors_open(in.txn, store, &in.cur);
  for (uint32_t i = 0; i < n_chunks && err == VS_OK; i++) {
    uint8_t len[4];
    err = read_exact(fn, ctx, len, sizeof len, &h->total);
    uint32_t bytes = err == VS_OK ? vs_get_u32le(len) : 0;
    if (err == VS_OK && (bytes < CHUNK_HEAD || bytes > VS_SNAPSHOT_CHUNK_BYTES_MAX)) err = VS_ERR_MALFORMED;
    if (err == VS_OK) err = read_exact(fn, ctx, chunk, bytes, &h->total);
    uint8_t hh[VS_HASH_BYTES];
    if (err == VS_OK) chunk_hash(chunk, bytes, hh);
    if (err == VS_OK && memcmp(hh, h->hashes[i], VS_HASH_BYTES) != 0 && !VS_FAULT(VS_FAULT_SNAPSHOT_NO_VERIFY)) err = VS_ERR_AUTH;
    if (err == VS_OK) err = chunk_items(&in, chunk, bytes, i);
  }
  vs_wal_cursors_close(&in.cur);
  free(chunk);
  /* What the header promised, and the state the entries make. */
  if (err == VS_OK && (in.entries != vs_get_u64le(hdr + 128) || in.incrs != vs_get_u64le(hdr + 136) ||
                       in.mesh_items != vs_get_u64le(hdr + 144)))
    err = VS_ERR_AUTH;
  if (err == VS_OK && memcmp(in.base_hash, hdr + 96, VS_HASH_BYTES) != 0 && !VS_FAULT(VS_FAULT_SNAPSHOT_NO_VERIFY)) err = VS_ERR_AUTH;
  for (uint32_t i = 0; i < n_origins && err == VS_OK; i++)
    err = anchor_put(&in, hdr + HDR_FIXED + (size_t)i * ORIGIN_REC, self);
  if (err == VS_OK) err = vs_state_base_hash_put_txn(in.txn, store, in.base_hash);
  uint64_t hlc = 0;
  if (err == VS_OK) err = vs_meta_hlc_get(in.txn, store, &hlc);
  if (err == VS_OK && vs_get_u64le(hdr + 80) > hlc) err = vs_meta_hlc_put(in.txn, store, vs_get_u64le(hdr + 80));
  /* The maker's gc_floor is ours (meta; monotone): a data op at or below it
   * may be ordered before a tombstone the base no longer has. Our clock is
   * past it (the header's HLC, taken above, is at least the floor). */
  if (err == VS_OK) err = vs_state_gc_floor_raise_txn(in.txn, store, vs_get_u64le(hdr + 88));
  /* A managed mesh: the view from the facts it carries, and the signer must
   * be an active member in it. */
  bool managed = memcmp(hdr + 16, zero, VS_HASH_BYTES) != 0, refolded = false;
  if (err == VS_OK && managed) err = vs_mesh_refresh_txn(in.txn, store, hdr + 16, &refolded);
  if (err == VS_OK && managed) err = signer_active(&in, hdr + 16, signer);
  free(in.ahead);
  /* The live state: the base, then this device's own ops past its anchor. */
  if (err == VS_OK) err = vs_state_rebuild_txn(in.txn, store);
  if (err == VS_OK && info != NULL) {
    memset(info, 0, sizeof *info);
    memcpy(info->signer, signer, VS_ORIGIN_BYTES);
    memcpy(info->mesh_id, hdr + 16, 32);
    memcpy(info->state_hash, hdr + 96, 32);
    info->hlc = vs_get_u64le(hdr + 80);
    info->origins = n_origins;
    info->chunks = n_chunks;
    info->entries = in.entries;
    info->incrs = in.incrs;
    info->mesh_ops = vs_get_u64le(hdr + 144);
    info->bytes = h->total;
    info->gc_floor = vs_get_u64le(hdr + 88);
  }
  return err;
}

vs_err vs_snapshot_install(vs_store *store, vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms, vs_snapshot_info *info) {
  if (store == NULL || fn == NULL) return VS_ERR_INVAL;
  vs_snap_head h;
  vs_err err = vs_snap_head_read(fn, ctx, now_ms, &h);
  if (err != VS_OK) return err;
  MDB_txn *txn = NULL;
  err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) {
    vs_snap_head_free(&h);
    return err;
  }
  installer in; /* for store_fresh */
  memset(&in, 0, sizeof in);
  in.txn = txn;
  in.store = store;
  err = vs_snap_mesh_check_txn(txn, store, &h);
  if (err == VS_OK) err = store_fresh(&in, store->has_identity ? store->identity.pk : NULL);
  vs_snapshot_info got;
  if (err == VS_OK) err = vs_snap_body_txn(txn, store, &h, fn, ctx, &got);
  if (err == VS_OK) err = vs_txn_commit(txn);
  else mdb_txn_abort(txn);
  if (err == VS_OK && info != NULL) *info = got;
  vs_snap_head_free(&h);
  return err;
}
