/* Member acknowledgements: records, signed bytes, digest and the stable
 * cut (see acks.h). */
#include "acks.h"

#include <stdlib.h>

#include "chain.h"
#include "mgate.h"

static const char ACK_DOMAIN[] = "vixsync-ack-v1";
_Static_assert(sizeof ACK_DOMAIN - 1 == 14, "VS_ACK_SIGNED_BYTES counts the domain");

static MDB_val val(const void *data, size_t bytes) {
  MDB_val v = {bytes, (void *)data};
  return v;
}

void vs_ack_rec_free(vs_ack_rec *rec) {
  if (rec == NULL) return;
  free(rec->mem);
  rec->mem = NULL;
  rec->key = rec->delta = NULL;
  rec->key_n = rec->delta_n = 0;
}

static vs_err rec_decode(const MDB_val *v, vs_ack_rec *out, bool entries) {
  const uint8_t *p = v->mv_data;
  if (v->mv_size < VS_ACK_REC_HEADER_BYTES || p[0] != VS_ACK_REC_VERSION) return VS_ERR_CORRUPT;
  out->hlc = vs_get_u64le(p + 1);
  out->key_hlc = vs_get_u64le(p + 9);
  memcpy(out->sig, p + 17, VS_SIGNATURE_BYTES);
  memcpy(out->key_sig, p + 81, VS_SIGNATURE_BYTES);
  out->key_n = vs_get_u32le(p + 145);
  out->delta_n = vs_get_u32le(p + 149);
  out->key = out->delta = NULL;
  out->mem = NULL;
  if (out->key_n > VS_WIRE_VV_MAX || out->delta_n > VS_WIRE_VV_MAX || out->key_hlc > out->hlc) return VS_ERR_CORRUPT;
  size_t n = (size_t)out->key_n + out->delta_n;
  if (v->mv_size != VS_ACK_REC_HEADER_BYTES + n * VS_ACK_ENTRY_BYTES) return VS_ERR_CORRUPT;
  if (!entries) return VS_OK;
  vs_ack_entry *e = malloc(sizeof *e * (n > 0 ? n : 1));
  if (e == NULL) return VS_ERR_NOMEM;
  const uint8_t *q = p + VS_ACK_REC_HEADER_BYTES;
  for (size_t i = 0; i < n; i++, q += VS_ACK_ENTRY_BYTES) { /* bounded: 2 x VS_WIRE_VV_MAX */
    memcpy(e[i].origin, q, VS_ORIGIN_BYTES);
    e[i].seq = vs_get_u64le(q + VS_ORIGIN_BYTES);
  }
  out->mem = e;
  out->key = e;
  out->delta = e + out->key_n;
  return VS_OK;
}

vs_err vs_acks_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES], vs_ack_rec *out) {
  memset(out, 0, sizeof *out);
  MDB_val k = val(author, VS_ORIGIN_BYTES), v;
  int rc = mdb_get(txn, store->dbi_acks, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  vs_err err = rec_decode(&v, out, true);
  if (err != VS_OK) vs_ack_rec_free(out);
  return err;
}

vs_err vs_acks_hlc_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES], uint64_t *hlc_out,
                       uint64_t *key_hlc_out) {
  *hlc_out = 0;
  if (key_hlc_out != NULL) *key_hlc_out = 0;
  MDB_val k = val(author, VS_ORIGIN_BYTES), v;
  int rc = mdb_get(txn, store->dbi_acks, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  vs_ack_rec r;
  vs_err err = rec_decode(&v, &r, false);
  if (err == VS_OK) *hlc_out = r.hlc;
  if (err == VS_OK && key_hlc_out != NULL) *key_hlc_out = r.key_hlc;
  return err;
}

vs_err vs_acks_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES],
                       const vs_ack_rec *rec) {
  if (rec->key_n > VS_WIRE_VV_MAX || rec->delta_n > VS_WIRE_VV_MAX || rec->key_hlc > rec->hlc) return VS_ERR_INVAL;
  size_t n = (size_t)rec->key_n + rec->delta_n;
  size_t bytes = VS_ACK_REC_HEADER_BYTES + n * VS_ACK_ENTRY_BYTES;
  uint8_t *buf = malloc(bytes);
  if (buf == NULL) return VS_ERR_NOMEM;
  buf[0] = VS_ACK_REC_VERSION;
  vs_put_u64le(buf + 1, rec->hlc);
  vs_put_u64le(buf + 9, rec->key_hlc);
  memcpy(buf + 17, rec->sig, VS_SIGNATURE_BYTES);
  memcpy(buf + 81, rec->key_sig, VS_SIGNATURE_BYTES);
  vs_put_u32le(buf + 145, rec->key_n);
  vs_put_u32le(buf + 149, rec->delta_n);
  uint8_t *q = buf + VS_ACK_REC_HEADER_BYTES;
  for (uint32_t i = 0; i < rec->key_n; i++, q += VS_ACK_ENTRY_BYTES) {
    memcpy(q, rec->key[i].origin, VS_ORIGIN_BYTES);
    vs_put_u64le(q + VS_ORIGIN_BYTES, rec->key[i].seq);
  }
  for (uint32_t i = 0; i < rec->delta_n; i++, q += VS_ACK_ENTRY_BYTES) {
    memcpy(q, rec->delta[i].origin, VS_ORIGIN_BYTES);
    vs_put_u64le(q + VS_ORIGIN_BYTES, rec->delta[i].seq);
  }
  MDB_val k = val(author, VS_ORIGIN_BYTES), v = val(buf, bytes);
  vs_err err = vs_mdb_err(mdb_put(txn, store->dbi_acks, &k, &v, 0));
  free(buf);
  return err;
}

vs_err vs_acks_del_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES]) {
  MDB_val k = val(author, VS_ORIGIN_BYTES);
  int rc = mdb_del(txn, store->dbi_acks, &k, NULL);
  return rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

vs_err vs_acks_merge(const vs_ack_entry *key, uint32_t key_n, const vs_ack_entry *delta, uint32_t delta_n,
                     vs_ack_entry *out, uint32_t max, uint32_t *n_out) {
  uint32_t i = 0, j = 0, n = 0;
  while (i < key_n || j < delta_n) { /* bounded: key_n + delta_n steps */
    int c = i == key_n ? 1 : j == delta_n ? -1 : memcmp(key[i].origin, delta[j].origin, VS_ORIGIN_BYTES);
    const vs_ack_entry *e = c < 0 ? &key[i] : &delta[j];
    if (c <= 0) i++;
    if (c >= 0) j++;
    if (e->seq == 0) continue; /* absent at the delta's hlc */
    if (n == max) return VS_ERR_LIMIT;
    out[n++] = *e;
  }
  *n_out = n;
  return VS_OK;
}

vs_err vs_acks_diff(const vs_ack_entry *key, uint32_t key_n, const vs_ack_entry *full, uint32_t full_n,
                    vs_ack_entry *out, uint32_t max, uint32_t *n_out) {
  uint32_t i = 0, j = 0, n = 0;
  while (i < key_n || j < full_n) { /* bounded: key_n + full_n steps */
    int c = i == key_n ? 1 : j == full_n ? -1 : memcmp(key[i].origin, full[j].origin, VS_ORIGIN_BYTES);
    vs_ack_entry e;
    bool differs;
    if (c < 0) { /* gone since the keyframe */
      e = key[i++];
      e.seq = 0;
      differs = true;
    } else if (c > 0) {
      e = full[j++];
      differs = true;
    } else {
      e = full[j];
      differs = key[i].seq != full[j].seq;
      i++;
      j++;
    }
    if (!differs) continue;
    if (n == max) return VS_ERR_LIMIT;
    out[n++] = e;
  }
  *n_out = n;
  return VS_OK;
}

vs_err vs_acks_signed_txn(MDB_txn *txn, const vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES],
                          const uint8_t author[VS_ORIGIN_BYTES], uint64_t hlc, const vs_ack_entry *full, uint32_t n,
                          uint8_t out[VS_ACK_SIGNED_BYTES]) {
  crypto_generichash_state st;
  vs_hash_init(&st, 32);
  for (uint32_t i = 0; i < n; i++) { /* bounded: n <= VS_WIRE_VV_MAX (the callers') */
    vs_head h;
    vs_err err = vs_head_get(txn, store, full[i].origin, &h);
    if (err != VS_OK) return err;
    if (full[i].seq == 0 || full[i].seq > h.seq) return VS_ERR_NOTFOUND; /* past what we hold (or voided) */
    uint8_t hash[VS_HASH_BYTES];
    if (full[i].seq == h.seq) {
      memcpy(hash, h.hash, VS_HASH_BYTES);
    } else {
      /* Held, or the anchor of a compacted chain (its hash is kept). */
      err = vs_op_hash_at_txn(txn, store, full[i].origin, full[i].seq, hash);
      if (err != VS_OK) return err; /* VS_ERR_NOTFOUND: not held */
    }
    uint8_t seq[8];
    vs_put_u64le(seq, full[i].seq);
    crypto_generichash_update(&st, full[i].origin, VS_ORIGIN_BYTES);
    crypto_generichash_update(&st, seq, sizeof seq);
    crypto_generichash_update(&st, hash, VS_HASH_BYTES);
  }
  uint8_t *p = out;
  memcpy(p, ACK_DOMAIN, sizeof ACK_DOMAIN - 1);
  p += sizeof ACK_DOMAIN - 1;
  memcpy(p, mesh_id, 32);
  p += 32;
  memcpy(p, author, VS_ORIGIN_BYTES);
  p += VS_ORIGIN_BYTES;
  vs_put_u64le(p, hlc);
  p += 8;
  crypto_generichash_final(&st, p, 32);
  assert(p + 32 == out + VS_ACK_SIGNED_BYTES);
  return VS_OK;
}

uint64_t vs_acks_tag(const uint8_t author[VS_ORIGIN_BYTES], uint64_t hlc) {
  uint8_t in[VS_ORIGIN_BYTES + 8], h[32];
  memcpy(in, author, VS_ORIGIN_BYTES);
  vs_put_u64le(in + VS_ORIGIN_BYTES, hlc);
  crypto_generichash(h, sizeof h, in, sizeof in, NULL, 0);
  return vs_get_u64le(h);
}

vs_err vs_acks_member_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES], bool *active_out) {
  vs_mesh_rec r;
  *active_out = false;
  vs_err err = vs_mesh_rec_get_txn(txn, store, pk, &r);
  if (err == VS_ERR_NOTFOUND) return VS_OK;
  if (err == VS_OK) *active_out = !r.revoked;
  return err;
}

vs_err vs_acks_digest_txn(MDB_txn *txn, const vs_store *store, uint64_t *digest_out) {
  *digest_out = 0;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_acks, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  uint64_t sum = 0;
  /* Bounded: only members' acks are stored (VS_MESH_MEMBERS_MAX). */
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_ack_rec r;
    bool active = false;
    err = k.mv_size == VS_ORIGIN_BYTES ? rec_decode(&v, &r, false) : VS_ERR_CORRUPT;
    if (err == VS_OK) err = vs_acks_member_txn(txn, store, k.mv_data, &active);
    if (err == VS_OK && active) sum += vs_acks_tag(k.mv_data, r.hlc);
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  if (err == VS_OK) *digest_out = sum;
  return err;
}

/* ---- the stable cut ---- */

typedef struct cut_vec {
  uint8_t (*origin)[VS_ORIGIN_BYTES];
  uint64_t *head, *cut;
  uint32_t n, cap;
} cut_vec;

static vs_err cut_push(cut_vec *c, const uint8_t *origin, uint64_t head) {
  if (c->n == c->cap) {
    if (c->cap > UINT32_MAX / 2) return VS_ERR_LIMIT;
    uint32_t cap = c->cap == 0 ? 64 : c->cap * 2;
    void *o = realloc(c->origin, (size_t)cap * VS_ORIGIN_BYTES);
    if (o == NULL) return VS_ERR_NOMEM;
    c->origin = o;
    uint64_t *h = realloc(c->head, sizeof *h * cap);
    if (h == NULL) return VS_ERR_NOMEM;
    c->head = h;
    uint64_t *k = realloc(c->cut, sizeof *k * cap);
    if (k == NULL) return VS_ERR_NOMEM;
    c->cut = k;
    c->cap = cap;
  }
  memcpy(c->origin[c->n], origin, VS_ORIGIN_BYTES);
  c->head[c->n] = head;
  c->cut[c->n] = head;
  c->n++;
  return VS_OK;
}

/* cut[o] = min(cut[o], full's seq of o (0 when absent)): both sorted. */
static void cut_lower(cut_vec *c, const vs_ack_entry *full, uint32_t n) {
  uint32_t j = 0;
  for (uint32_t i = 0; i < c->n; i++) { /* bounded: c->n + n steps in all */
    while (j < n && memcmp(full[j].origin, c->origin[i], VS_ORIGIN_BYTES) < 0) j++;
    uint64_t seq = j < n && memcmp(full[j].origin, c->origin[i], VS_ORIGIN_BYTES) == 0 ? full[j].seq : 0;
    if (seq < c->cut[i]) c->cut[i] = seq;
  }
}

static vs_err cut_heads(MDB_txn *txn, const vs_store *store, cut_vec *c) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_heads, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK; /* bounded: origins held */
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_head h;
    err = k.mv_size == VS_ORIGIN_BYTES ? vs_head_decode(&v, &h) : VS_ERR_CORRUPT;
    if (err == VS_OK && h.seq > 0) err = cut_push(c, k.mv_data, h.seq);
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  return err;
}

/* ---- suspended members (suspend_after) ---- */

/* When this store stored `origin`'s op at `seq` (its WAL record's
 * stored_at_ms: the caller's clock at that commit, as the HLC's physical
 * part is). Not the op's own HLC: its writer chose that, and a backdated op
 * would make every member that has not received it yet look silent. */
static vs_err op_stored_at(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                           uint64_t *ms_out) {
  vs_op_id id;
  uint64_t lsn = 0;
  vs_op_id_derive(origin, seq, &id);
  vs_err err = vs_opid_get(txn, store, &id, &lsn, NULL);
  if (err != VS_OK) return err;
  uint8_t key[8];
  vs_put_u64be(key, lsn);
  MDB_val k = {sizeof key, key}, v;
  int rc = mdb_get(txn, store->dbi_wal, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size < 24) return VS_ERR_CORRUPT; /* wal.h: stored_at_ms at 16, the op from 24 */
  *ms_out = vs_get_u64le((const uint8_t *)v.mv_data + 16);
  return VS_OK;
}

/* Whether `full` lacks an op this store has held since before `before`
 * (wall ms): per origin held, the op after the member's seq. */
static vs_err lacks_older(MDB_txn *txn, const vs_store *store, const vs_ack_entry *full, uint32_t n, uint64_t before,
                          bool *out) {
  *out = false;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_heads, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  uint32_t j = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK && !*out; /* bounded: origins */
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_head h;
    err = k.mv_size == VS_ORIGIN_BYTES ? vs_head_decode(&v, &h) : VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    while (j < n && memcmp(full[j].origin, k.mv_data, VS_ORIGIN_BYTES) < 0) j++; /* bounded: n in all */
    uint64_t seq = j < n && memcmp(full[j].origin, k.mv_data, VS_ORIGIN_BYTES) == 0 ? full[j].seq : 0;
    if (seq >= h.seq) continue; /* lacks nothing of this origin */
    vs_horizon hz;
    err = vs_horizon_get(txn, store, k.mv_data, &hz);
    if (err != VS_OK) break;
    if (seq < hz.seq) { /* behind our horizon: only a snapshot helps it */
      *out = true;
      break;
    }
    uint64_t at = 0;
    err = op_stored_at(txn, store, k.mv_data, seq + 1, &at);
    if (err == VS_ERR_NOTFOUND) { /* not in the log (voided): this origin says nothing */
      err = VS_OK;
      continue;
    }
    if (err == VS_OK && at < before) *out = true;
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS && !*out) err = vs_mdb_err(rc);
  return err;
}

vs_err vs_acks_suspended_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES],
                             uint64_t heard_hlc, const vs_ack_entry *full, uint32_t n, uint64_t now_hlc,
                             uint64_t suspend_after_ms, bool *suspended_out) {
  *suspended_out = false;
  if (suspend_after_ms == 0) return VS_OK;
  if (store->has_identity && memcmp(pk, store->identity.pk, VS_ORIGIN_BYTES) == 0) return VS_OK;
  uint64_t now = vs_hlc_wall_ms(now_hlc);
  if (now <= suspend_after_ms) return VS_OK;
  uint64_t before = now - suspend_after_ms; /* silent since before this wall ms */
  if (vs_hlc_wall_ms(heard_hlc) >= before) return VS_OK;
  return lacks_older(txn, store, full, n, before, suspended_out);
}

vs_err vs_acks_heard_txn(MDB_txn *txn, const vs_store *store, const uint8_t self[VS_ORIGIN_BYTES], uint64_t *hlc_out) {
  *hlc_out = 0;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_acks, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK; /* bounded: one per member */
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != VS_ORIGIN_BYTES) {
      err = VS_ERR_CORRUPT;
      break;
    }
    if (memcmp(k.mv_data, self, VS_ORIGIN_BYTES) == 0) continue;
    bool active = false;
    uint64_t hlc = 0;
    err = vs_acks_member_txn(txn, store, k.mv_data, &active);
    if (err == VS_OK && active) err = vs_acks_hlc_txn(txn, store, k.mv_data, &hlc, NULL);
    if (err == VS_OK && hlc > *hlc_out) *hlc_out = hlc;
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  return err;
}

vs_err vs_acks_member_suspended_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES],
                                    uint64_t suspend_after_ms, bool *suspended_out) {
  *suspended_out = false;
  if (suspend_after_ms == 0) return VS_OK;
  vs_ack_rec r;
  vs_err err = vs_acks_get_txn(txn, store, pk, &r);
  if (err == VS_ERR_NOTFOUND) return VS_OK;
  if (err != VS_OK) return err;
  uint64_t now_hlc = 0;
  uint32_t n = 0;
  vs_ack_entry *full = malloc(sizeof *full * VS_WIRE_VV_MAX);
  if (full == NULL) err = VS_ERR_NOMEM;
  if (err == VS_OK) err = vs_meta_hlc_get(txn, store, &now_hlc);
  if (err == VS_OK) err = vs_acks_merge(r.key, r.key_n, r.delta, r.delta_n, full, VS_WIRE_VV_MAX, &n);
  if (err == VS_OK)
    err = vs_acks_suspended_txn(txn, store, pk, r.hlc, full, n, now_hlc, suspend_after_ms, suspended_out);
  free(full);
  vs_ack_rec_free(&r);
  return err;
}

/* Lower the cut by every active member's ack; *all_out false when one has none. */
static vs_err cut_members(MDB_txn *txn, const vs_store *store, cut_vec *c, vs_acks_cut_info *info, bool *all_out,
                          uint64_t now_hlc, uint64_t suspend_after_ms, uint32_t *others_out) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_members, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  vs_ack_entry *full = malloc(sizeof *full * VS_WIRE_VV_MAX);
  if (full == NULL) err = VS_ERR_NOMEM;
  *all_out = true;
  /* Bounded: VS_MESH_MEMBERS_MAX records. */
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_mesh_rec m;
    err = k.mv_size == VS_ORIGIN_BYTES ? vs_mesh_rec_decode(&v, &m) : VS_ERR_CORRUPT;
    if (err != VS_OK || m.revoked) continue;
    info->members++;
    vs_ack_rec r;
    err = vs_acks_get_txn(txn, store, k.mv_data, &r);
    bool suspended = false;
    if (err == VS_ERR_NOTFOUND) { /* nothing known of its silence: it holds the cut */
      err = VS_OK;
      *all_out = false;
      continue;
    }
    uint32_t n = 0;
    if (err == VS_OK) err = vs_acks_merge(r.key, r.key_n, r.delta, r.delta_n, full, VS_WIRE_VV_MAX, &n);
    if (err == VS_OK)
      err = vs_acks_suspended_txn(txn, store, k.mv_data, r.hlc, full, n, now_hlc, suspend_after_ms, &suspended);
    if (err == VS_OK && suspended) info->suspended++; /* leaves the minimum until it acks again */
    bool self = store->has_identity && memcmp(k.mv_data, store->identity.pk, VS_ORIGIN_BYTES) == 0;
    if (err == VS_OK && !suspended && !self) (*others_out)++;
    if (err == VS_OK && !suspended) {
      info->with_ack++;
      if (info->oldest_hlc == 0 || r.hlc < info->oldest_hlc) info->oldest_hlc = r.hlc;
      cut_lower(c, full, n);
    }
    vs_ack_rec_free(&r);
  }
  mdb_cursor_close(cur);
  free(full);
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  return err;
}

vs_err vs_acks_cut_txn(MDB_txn *txn, const vs_store *store, uint64_t suspend_after_ms, vs_acks_cut_fn fn, void *ctx,
                       vs_acks_cut_info *info) {
  if (txn == NULL || store == NULL || info == NULL) return VS_ERR_INVAL;
  memset(info, 0, sizeof *info);
  cut_vec c;
  memset(&c, 0, sizeof c);
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, store, mesh_id);
  bool managed = err == VS_OK, all = false;
  if (err == VS_ERR_NOTFOUND) err = VS_OK;
  if (err == VS_OK) err = cut_heads(txn, store, &c);
  uint64_t now_hlc = 0;
  if (err == VS_OK && managed) err = vs_meta_hlc_get(txn, store, &now_hlc);
  uint32_t others = 0; /* members counted other than this store's identity */
  if (err == VS_OK && managed) err = cut_members(txn, store, &c, info, &all, now_hlc, suspend_after_ms, &others);
  /* A store that suspends members needs one other member still counted:
   * alone (the others all silent) it may be the one cut off, and its own
   * unsent ops must not count as held. */
  if (err == VS_OK && (!managed || !all || info->members == 0 || (info->suspended > 0 && others == 0)))
    for (uint32_t i = 0; i < c.n; i++) c.cut[i] = 0; /* bounded: c.n */
  for (uint32_t i = 0; i < c.n && err == VS_OK; i++) { /* bounded: origins held */
    info->stable_ops += c.cut[i];
    info->behind += c.head[i] - c.cut[i];
    if (fn != NULL) err = fn(c.origin[i], c.cut[i], c.head[i], ctx);
  }
  free(c.origin);
  free(c.head);
  free(c.cut);
  return err;
}
