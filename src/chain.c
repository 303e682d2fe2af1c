#define _POSIX_C_SOURCE 200809L
/* The chain module (see chain.h): chain heads, signatures, op-id lookups,
 * the HLC and restore meta, run shape checks and the run reader. Moved
 * here from wal.c and apply.c (issue 15) so that wal, state, apply, fork
 * and write share them without a cycle. */
#include "chain.h"

static const char META_HLC[] = "hlc";
static const char META_RESTORE[] = "restore"; /* own seq a restored copy must reach before writing */
static const char META_CONTACT[] = "contact"; /* wall ms a node last had a ready session (node_snap.c) */
static const char META_LATE[] = "late";       /* wall ms a node found itself a too-late replica (node_snap.c) */

static MDB_val val(const void *data, size_t bytes) {
  MDB_val v = {bytes, (void *)data};
  return v;
}

vs_err vs_head_decode(const MDB_val *v, vs_head *head_out) {
  const uint8_t *p = v->mv_data;
  if (v->mv_size != VS_HEAD_VALUE_BYTES || p[0] != VS_HEAD_VERSION) return VS_ERR_CORRUPT;
  head_out->seq = vs_get_u64le(p + 1);
  head_out->hlc = vs_get_u64le(p + 9);
  memcpy(head_out->hash, p + 17, VS_HASH_BYTES);
  return VS_OK;
}

vs_err vs_head_get(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], vs_head *head_out) {
  memset(head_out, 0, sizeof *head_out);
  MDB_val k = val(origin, VS_ORIGIN_BYTES), v;
  int rc = mdb_get(txn, store->dbi_heads, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  return vs_head_decode(&v, head_out);
}

vs_err vs_head_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], const vs_head *head) {
  uint8_t buf[VS_HEAD_VALUE_BYTES];
  buf[0] = VS_HEAD_VERSION;
  vs_put_u64le(buf + 1, head->seq);
  vs_put_u64le(buf + 9, head->hlc);
  memcpy(buf + 17, head->hash, VS_HASH_BYTES);
  MDB_val k = val(origin, VS_ORIGIN_BYTES), v = val(buf, sizeof buf);
  return vs_mdb_err(mdb_put(txn, store->dbi_heads, &k, &v, 0));
}

vs_err vs_horizon_get(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], vs_horizon *out) {
  memset(out, 0, sizeof *out);
  MDB_val k = val(origin, VS_ORIGIN_BYTES), v;
  int rc = mdb_get(txn, store->dbi_horizon, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  const uint8_t *p = v.mv_data;
  if (v.mv_size != VS_HORIZON_VALUE_BYTES || p[0] != VS_HORIZON_VERSION) return VS_ERR_CORRUPT;
  out->seq = vs_get_u64le(p + 1);
  out->hlc = vs_get_u64le(p + 9);
  memcpy(out->hash, p + 17, VS_HASH_BYTES);
  out->has_sig = p[49] == 1;
  memcpy(out->sig, p + 50, VS_SIGNATURE_BYTES);
  return out->seq > 0 && p[49] <= 1 ? VS_OK : VS_ERR_CORRUPT;
}

vs_err vs_horizon_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                          const vs_horizon *h) {
  uint8_t buf[VS_HORIZON_VALUE_BYTES];
  buf[0] = VS_HORIZON_VERSION;
  vs_put_u64le(buf + 1, h->seq);
  vs_put_u64le(buf + 9, h->hlc);
  memcpy(buf + 17, h->hash, VS_HASH_BYTES);
  buf[49] = h->has_sig ? 1u : 0u;
  if (h->has_sig) memcpy(buf + 50, h->sig, VS_SIGNATURE_BYTES);
  else memset(buf + 50, 0, VS_SIGNATURE_BYTES);
  MDB_val k = val(origin, VS_ORIGIN_BYTES), v = val(buf, sizeof buf);
  return vs_mdb_err(mdb_put(txn, store->dbi_horizon, &k, &v, 0));
}

static const char META_HZ_BREACH[] = "hz_breach";

vs_err vs_horizon_breaches_get_txn(MDB_txn *txn, const vs_store *store, uint64_t *count_out) {
  *count_out = 0;
  MDB_val k = val(META_HZ_BREACH, sizeof META_HZ_BREACH - 1), v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 8) return VS_ERR_CORRUPT;
  *count_out = vs_get_u64le(v.mv_data);
  return VS_OK;
}

vs_err vs_horizon_breach_add_txn(MDB_txn *txn, const vs_store *store) {
  uint64_t n = 0;
  vs_err err = vs_horizon_breaches_get_txn(txn, store, &n);
  if (err != VS_OK) return err;
  uint8_t buf[8];
  vs_put_u64le(buf, n + 1);
  MDB_val k = val(META_HZ_BREACH, sizeof META_HZ_BREACH - 1), v = val(buf, sizeof buf);
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

vs_err vs_op_hash_at_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                         uint8_t hash_out[VS_HASH_BYTES]) {
  vs_op_id id;
  vs_op_id_derive(origin, seq, &id);
  vs_err err = vs_opid_get(txn, store, &id, NULL, hash_out);
  if (err != VS_ERR_NOTFOUND) return err;
  vs_horizon h;
  err = vs_horizon_get(txn, store, origin, &h);
  if (err != VS_OK) return err;
  if (h.seq == 0 || h.seq != seq) return VS_ERR_NOTFOUND;
  memcpy(hash_out, h.hash, VS_HASH_BYTES);
  return VS_OK;
}

vs_err vs_opid_get(MDB_txn *txn, const vs_store *store, const vs_op_id *id, uint64_t *lsn_out,
                   uint8_t hash_out[VS_HASH_BYTES]) {
  MDB_val k = val(id->bytes, VS_OP_ID_BYTES), v;
  int rc = mdb_get(txn, store->dbi_opid, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != VS_OPID_VALUE_BYTES) return VS_ERR_CORRUPT;
  if (lsn_out != NULL) *lsn_out = vs_get_u64le(v.mv_data);
  if (hash_out != NULL) memcpy(hash_out, (const uint8_t *)v.mv_data + 8, VS_HASH_BYTES);
  return VS_OK;
}

vs_err vs_meta_hlc_get(MDB_txn *txn, const vs_store *store, uint64_t *hlc_out) {
  MDB_val k = val(META_HLC, sizeof META_HLC - 1), v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  *hlc_out = 0;
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 8) return VS_ERR_CORRUPT;
  *hlc_out = vs_get_u64le(v.mv_data);
  return VS_OK;
}

vs_err vs_meta_hlc_put(MDB_txn *txn, const vs_store *store, uint64_t hlc) {
  uint8_t buf[8];
  vs_put_u64le(buf, hlc);
  MDB_val k = val(META_HLC, sizeof META_HLC - 1), v = val(buf, sizeof buf);
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

/* A u64le meta value (absent: 0). */
static vs_err meta_u64_get(MDB_txn *txn, const vs_store *store, const char *key, size_t key_bytes, uint64_t *out) {
  MDB_val k = val(key, key_bytes), v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  *out = 0;
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 8) return VS_ERR_CORRUPT;
  *out = vs_get_u64le(v.mv_data);
  return VS_OK;
}

/* Write it; 0 deletes it. */
static vs_err meta_u64_put(MDB_txn *txn, const vs_store *store, const char *key, size_t key_bytes, uint64_t value) {
  MDB_val k = val(key, key_bytes);
  if (value == 0) {
    int rc = mdb_del(txn, store->dbi_meta, &k, NULL);
    return rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
  }
  uint8_t buf[8];
  vs_put_u64le(buf, value);
  MDB_val v = val(buf, sizeof buf);
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

vs_err vs_meta_restore_get(MDB_txn *txn, const vs_store *store, uint64_t *to_out) {
  return meta_u64_get(txn, store, META_RESTORE, sizeof META_RESTORE - 1, to_out);
}

vs_err vs_meta_restore_put(MDB_txn *txn, const vs_store *store, uint64_t to) {
  return meta_u64_put(txn, store, META_RESTORE, sizeof META_RESTORE - 1, to);
}

vs_err vs_meta_contact_get(MDB_txn *txn, const vs_store *store, uint64_t *ms_out) {
  return meta_u64_get(txn, store, META_CONTACT, sizeof META_CONTACT - 1, ms_out);
}

vs_err vs_meta_contact_put(MDB_txn *txn, const vs_store *store, uint64_t ms) {
  return meta_u64_put(txn, store, META_CONTACT, sizeof META_CONTACT - 1, ms);
}

vs_err vs_meta_late_get(MDB_txn *txn, const vs_store *store, uint64_t *ms_out) {
  return meta_u64_get(txn, store, META_LATE, sizeof META_LATE - 1, ms_out);
}

vs_err vs_meta_late_put(MDB_txn *txn, const vs_store *store, uint64_t ms) {
  return meta_u64_put(txn, store, META_LATE, sizeof META_LATE - 1, ms);
}

vs_err vs_sig_put_txn(MDB_txn *txn, const vs_store *store, const vs_op_id *id, const uint8_t sig[VS_SIGNATURE_BYTES]) {
  MDB_val k = {VS_OP_ID_BYTES, (void *)id->bytes}, v = {VS_SIGNATURE_BYTES, (void *)sig};
  return vs_mdb_err(mdb_put(txn, store->dbi_sigs, &k, &v, 0));
}

/* Shape checks that need no store: one origin, consecutive seqs, valid ops;
 * fills the op hashes. */
vs_err vs_run_check(const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count,
                    uint64_t max_bytes, uint8_t (*hashes)[VS_HASH_BYTES]) {
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < count; i++) {
    bytes += 4u + (uint64_t)(enc != NULL ? enc_bytes[i] : vs_op_encoded_bytes(&ops[i]));
    if (bytes > max_bytes) return VS_ERR_INVAL; /* no evidence could hold it (apply.h) */
    if (memcmp(ops[i].origin, ops[0].origin, VS_ORIGIN_BYTES) != 0) return VS_ERR_INVAL;
    if (ops[i].seq != ops[0].seq + i || ops[i].seq == 0 || ops[i].seq > VS_OP_SEQ_MAX) return VS_ERR_INVAL;
    vs_op_id id;
    vs_op_id_derive(ops[i].origin, ops[i].seq, &id); /* indexes trust op->id: check it */
    if (!vs_op_id_equal(&id, &ops[i].id)) return VS_ERR_INVAL;
    if (enc != NULL) { /* the bytes the op was decoded from: hashed as they are */
      if (enc[i] == NULL || enc_bytes[i] != vs_op_encoded_bytes(&ops[i])) return VS_ERR_INVAL;
      vs_op_hash_encoded(enc[i], enc_bytes[i], hashes[i]);
    } else {
      vs_err err = vs_op_hash(&ops[i], hashes[i]);
      if (err != VS_OK) return err;
    }
    /* The signature covers the last op; the links extend it to the others.
     * A run whose own links break is not covered by its signature: forged,
     * whether or not the node holds those seqs (else a genuine signed run
     * with one held op swapped would pass as fork evidence against an
     * honest origin). */
    if (i > 0 && memcmp(ops[i].prev, hashes[i - 1], VS_HASH_BYTES) != 0) return VS_ERR_MALFORMED;
  }
  return VS_OK;
}

vs_err vs_apply_sig_get(vs_store *store, const vs_op_id *id, uint8_t sig_out[VS_SIGNATURE_BYTES]) {
  if (store == NULL || id == NULL || sig_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_val k = {VS_OP_ID_BYTES, (void *)id->bytes}, v;
  err = vs_mdb_err(mdb_get(txn, store->dbi_sigs, &k, &v));
  if (err == VS_OK && v.mv_size != VS_SIGNATURE_BYTES) err = VS_ERR_CORRUPT;
  if (err == VS_OK) memcpy(sig_out, v.mv_data, VS_SIGNATURE_BYTES);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_sig_next_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from_seq,
                       uint64_t *seq_out, uint8_t sig_out[VS_SIGNATURE_BYTES]) {
  if (from_seq == 0 || from_seq > VS_OP_SEQ_MAX) return VS_ERR_INVAL;
  vs_op_id start;
  vs_op_id_derive(origin, from_seq, &start);
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_sigs, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  /* Ids of one origin share a tag and sort by seq: the first key at or after
   * (tag, from_seq) with the same tag is the next signed op. */
  MDB_val k = {VS_OP_ID_BYTES, start.bytes}, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  if (rc == MDB_SUCCESS && (k.mv_size != VS_OP_ID_BYTES || memcmp(k.mv_data, start.bytes, VS_OP_ID_TAG_BYTES) != 0))
    rc = MDB_NOTFOUND;
  vs_err err = vs_mdb_err(rc);
  if (err == VS_OK && v.mv_size != VS_SIGNATURE_BYTES) err = VS_ERR_CORRUPT;
  if (err == VS_OK) {
    uint64_t seq = 0;
    const uint8_t *p = (const uint8_t *)k.mv_data + VS_OP_ID_TAG_BYTES;
    for (unsigned i = 0; i < VS_OP_ID_BYTES - VS_OP_ID_TAG_BYTES; i++) seq = (seq << 8) | p[i];
    *seq_out = seq;
    if (sig_out != NULL) memcpy(sig_out, v.mv_data, VS_SIGNATURE_BYTES);
  }
  mdb_cursor_close(cur);
  return err;
}

vs_err vs_apply_next_signed(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from_seq,
                            uint64_t *seq_out) {
  if (store == NULL || origin == NULL || seq_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_sig_next_txn(txn, store, origin, from_seq, seq_out, NULL);
  mdb_txn_abort(txn);
  return err;
}

/* ---- the run reader (moved from node.c's add_run) ---- */

/* Same origin tag, and the seq of an op-id key. */
static bool id_key_seq(const MDB_val *k, const vs_op_id *tag, uint64_t *seq_out) {
  if (k->mv_size != VS_OP_ID_BYTES || memcmp(k->mv_data, tag->bytes, VS_OP_ID_TAG_BYTES) != 0) return false;
  const uint8_t *p = (const uint8_t *)k->mv_data + VS_OP_ID_TAG_BYTES;
  uint64_t seq = 0;
  for (unsigned i = 0; i < VS_OP_ID_BYTES - VS_OP_ID_TAG_BYTES; i++) seq = (seq << 8) | p[i];
  *seq_out = seq;
  return true;
}

vs_err vs_chain_runs_open(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                          uint64_t last, vs_chain_runs *r) {
  memset(r, 0, sizeof *r);
  vs_horizon h;
  vs_err herr = vs_horizon_get(txn, store, origin, &h);
  if (herr != VS_OK) return herr;
  vs_op_id_derive(origin, from, &r->start);
  /* At or below the horizon only membership ops stay (everything after
   * it is held): a run can start at one of those. */
  r->horizon = h.seq;
  if (from <= h.seq) {
    herr = vs_opid_get(txn, store, &r->start, NULL, NULL);
    if (herr != VS_OK) return herr == VS_ERR_NOTFOUND ? VS_ERR_BEHIND_HORIZON : herr;
  }
  r->seq = from;
  r->last = last;
  int rc = mdb_cursor_open(txn, store->dbi_sigs, &r->sigs);
  if (rc == MDB_SUCCESS) rc = mdb_cursor_open(txn, store->dbi_opid, &r->opid);
  vs_err err = vs_mdb_err(rc);
  MDB_val sk = {VS_OP_ID_BYTES, r->start.bytes}, sv, ok = {VS_OP_ID_BYTES, r->start.bytes}, ov;
  if (err == VS_OK) {
    rc = mdb_cursor_get(r->sigs, &sk, &sv, MDB_SET_RANGE);
    if (rc == MDB_SUCCESS && (!id_key_seq(&sk, &r->start, &r->signed_seq) || r->signed_seq > last)) rc = MDB_NOTFOUND;
    err = vs_mdb_err(rc);
  }
  if (err == VS_OK) err = sv.mv_size == VS_SIGNATURE_BYTES ? VS_OK : VS_ERR_CORRUPT;
  if (err == VS_OK) {
    r->sig = sv.mv_data;
    /* The op cursor goes to `from` now and steps from there (next). */
    err = vs_mdb_err(mdb_cursor_get(r->opid, &ok, &ov, MDB_SET_RANGE));
    if (err == VS_ERR_NOTFOUND) err = VS_ERR_CORRUPT; /* signed, so held */
  }
  return err;
}

vs_err vs_chain_runs_next(vs_chain_runs *r, vs_chain_op *op_out) {
  MDB_val ok, ov;
  /* The first op is where open put the cursor; each later one a step. */
  vs_err err = vs_mdb_err(mdb_cursor_get(r->opid, &ok, &ov, r->stepped ? MDB_NEXT : MDB_GET_CURRENT));
  uint64_t got = 0;
  if (err == VS_OK && (!id_key_seq(&ok, &r->start, &got) || got != r->seq || ov.mv_size != VS_OPID_VALUE_BYTES))
    err = VS_ERR_CORRUPT;
  if (err == VS_ERR_NOTFOUND) err = VS_ERR_CORRUPT;
  if (err == VS_ERR_CORRUPT && r->seq <= r->horizon) err = VS_ERR_BEHIND_HORIZON; /* compacted, not lost */
  if (err != VS_OK) return err;
  r->stepped = true;
  op_out->seq = r->seq;
  op_out->lsn = vs_get_u64le(ov.mv_data);
  op_out->sig = r->seq == r->signed_seq ? r->sig : NULL;
  r->seq++;
  return VS_OK;
}

vs_err vs_chain_runs_past_sig(vs_chain_runs *r) {
  MDB_val sk, sv;
  int rc = mdb_cursor_get(r->sigs, &sk, &sv, MDB_NEXT);
  if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && (!id_key_seq(&sk, &r->start, &r->signed_seq) || r->signed_seq > r->last)))
    return VS_ERR_NOTFOUND;
  vs_err err = vs_mdb_err(rc);
  if (err == VS_OK && sv.mv_size != VS_SIGNATURE_BYTES) err = VS_ERR_CORRUPT;
  if (err == VS_OK) r->sig = sv.mv_data;
  return err;
}

void vs_chain_runs_close(vs_chain_runs *r) {
  if (r->opid != NULL) mdb_cursor_close(r->opid);
  if (r->sigs != NULL) mdb_cursor_close(r->sigs);
  r->opid = r->sigs = NULL;
}
