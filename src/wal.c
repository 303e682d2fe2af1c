#define _POSIX_C_SOURCE 200809L /* strnlen, snprintf */
/* The write-ahead log: gapless LSNs, checksummed records, per-origin chains. */
#include "vixsync/wal.h"

#include "chain.h"
#include "internal.h"
#include "wal_int.h"

#define REC_TYPE_OP 1u

static MDB_val val(const void *data, size_t bytes) {
  MDB_val v = {bytes, (void *)data};
  return v;
}

/* The checksum covers every byte of a record but its own four. */
static uint32_t record_crc(const uint8_t *rec, size_t rec_bytes) {
  assert(rec_bytes >= VS_WAL_RECORD_HEADER_BYTES);
  uint32_t crc = vs_crc32c(0, rec, 4);
  return vs_crc32c(crc, rec + 8, rec_bytes - 8);
}

static const char META_WAL_LAST[] = "wal_last"; /* the last LSN, when compaction took its record out */

vs_err vs_wal_last_lsn_txn(MDB_txn *txn, const vs_store *store, uint64_t *lsn_out) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_wal, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  mdb_cursor_close(cur);
  *lsn_out = 0;
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return vs_mdb_err(rc);
  if (rc == MDB_SUCCESS) {
    if (k.mv_size != 8) return VS_ERR_CORRUPT;
    *lsn_out = vs_get_u64be(k.mv_data);
  }
  /* An LSN is never given twice (outbox entries are keyed by it): a log
   * whose last records were compacted remembers where it was. */
  MDB_val mk = {sizeof META_WAL_LAST - 1, (void *)META_WAL_LAST}, mv;
  rc = mdb_get(txn, store->dbi_meta, &mk, &mv);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (mv.mv_size != 8) return VS_ERR_CORRUPT;
  uint64_t kept = vs_get_u64le(mv.mv_data);
  if (kept > *lsn_out) *lsn_out = kept;
  return VS_OK;
}

vs_err vs_wal_last_lsn_keep_txn(MDB_txn *txn, const vs_store *store) {
  uint64_t last = 0;
  vs_err err = vs_wal_last_lsn_txn(txn, store, &last);
  if (err != VS_OK) return err;
  uint8_t buf[8];
  vs_put_u64le(buf, last);
  MDB_val mk = {sizeof META_WAL_LAST - 1, (void *)META_WAL_LAST}, mv = {sizeof buf, buf};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &mk, &mv, 0));
}

vs_err vs_wal_cursors_open(MDB_txn *txn, const vs_store *store, vs_wal_cursors *c) {
  c->wal = c->opid = NULL;
  int rc = mdb_cursor_open(txn, store->dbi_wal, &c->wal);
  if (rc == MDB_SUCCESS) rc = mdb_cursor_open(txn, store->dbi_opid, &c->opid);
  if (rc != MDB_SUCCESS) vs_wal_cursors_close(c);
  return vs_mdb_err(rc);
}

void vs_wal_cursors_close(vs_wal_cursors *c) {
  if (c->wal != NULL) mdb_cursor_close(c->wal);
  if (c->opid != NULL) mdb_cursor_close(c->opid);
  c->wal = c->opid = NULL;
}

/* mdb_put, or through `cur` when there is one: a cursor left on the last
 * key it wrote finds the next one without a search from the root when the
 * key lands on the same leaf page (or past the tree's last key), which is
 * where a run's next LSN and next op id go. */
static int put_via(MDB_txn *txn, MDB_dbi dbi, MDB_cursor *cur, MDB_val *k, MDB_val *v, unsigned flags) {
  return cur != NULL ? mdb_cursor_put(cur, k, v, flags) : mdb_put(txn, dbi, k, v, flags);
}

vs_err vs_wal_append_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t *enc, uint64_t lsn,
                         uint64_t now_ms, const uint8_t *known_hash, bool put_head,
                         uint8_t hash_out[VS_HASH_BYTES]) {
  return vs_wal_append_cur(txn, store, NULL, op, enc, lsn, now_ms, known_hash, put_head, hash_out);
}

vs_err vs_wal_append_cur(MDB_txn *txn, const vs_store *store, vs_wal_cursors *cur, const vs_op *op, const uint8_t *enc,
                         uint64_t lsn, uint64_t now_ms, const uint8_t *known_hash, bool put_head,
                         uint8_t hash_out[VS_HASH_BYTES]) {
  assert(lsn >= 1);
  size_t enc_bytes = vs_op_encoded_bytes(op);
  uint8_t key[8];
  vs_put_u64be(key, lsn);
  /* MDB_RESERVE: encode straight into the page, no staging copy. MDB_APPEND:
   * LSNs only grow; LMDB refuses (MDB_KEYEXIST) an LSN that is not last. */
  MDB_val k = val(key, sizeof key), v = {VS_WAL_RECORD_HEADER_BYTES + enc_bytes, NULL};
  int rc = put_via(txn, store->dbi_wal, cur != NULL ? cur->wal : NULL, &k, &v, MDB_APPEND | MDB_RESERVE);
  if (rc == MDB_KEYEXIST) return VS_ERR_CORRUPT;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t *rec = v.mv_data;
  rec[0] = VS_WAL_RECORD_VERSION;
  rec[1] = REC_TYPE_OP;
  vs_put_u16le(rec + 2, 0);
  vs_put_u64le(rec + 8, lsn);
  vs_put_u64le(rec + 16, now_ms);
  vs_err err = VS_OK;
  if (enc != NULL) {
    memcpy(rec + VS_WAL_RECORD_HEADER_BYTES, enc, enc_bytes);
  } else {
    size_t n = 0;
    err = vs_op_encode(op, rec + VS_WAL_RECORD_HEADER_BYTES, enc_bytes, &n);
    if (err != VS_OK) return err;
    assert(n == enc_bytes);
  }
  vs_put_u32le(rec + 4, record_crc(rec, v.mv_size));

  vs_head head = {op->seq, op->hlc, {0}};
  if (known_hash != NULL) memcpy(head.hash, known_hash, VS_HASH_BYTES); /* the caller hashed these bytes */
  else vs_op_hash_encoded(rec + VS_WAL_RECORD_HEADER_BYTES, enc_bytes, head.hash);
  uint8_t idx[VS_OPID_VALUE_BYTES];
  vs_put_u64le(idx, lsn);
  memcpy(idx + 8, head.hash, VS_HASH_BYTES);
  MDB_val ik = val(op->id.bytes, VS_OP_ID_BYTES), iv = val(idx, sizeof idx);
  rc = put_via(txn, store->dbi_opid, cur != NULL ? cur->opid : NULL, &ik, &iv, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return VS_ERR_EXISTS; /* callers check first; this is the backstop */
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (put_head) {
    err = vs_head_put_txn(txn, store, op->origin, &head);
    if (err != VS_OK) return err;
  }
  if (hash_out != NULL) memcpy(hash_out, head.hash, VS_HASH_BYTES);
  return VS_OK;
}

/* Check and decode one stored record. */
static vs_err record_decode(const MDB_val *k, const MDB_val *v, uint64_t expect_lsn, vs_wal_record *rec) {
  if (k->mv_size != 8 || v->mv_size < VS_WAL_RECORD_HEADER_BYTES) return VS_ERR_CORRUPT;
  const uint8_t *p = v->mv_data;
  if (record_crc(p, v->mv_size) != vs_get_u32le(p + 4)) return VS_ERR_CORRUPT;
  if (p[0] != VS_WAL_RECORD_VERSION || p[1] != REC_TYPE_OP) return VS_ERR_CORRUPT;
  uint64_t lsn = vs_get_u64le(p + 8);
  if (lsn != vs_get_u64be(k->mv_data) || lsn != expect_lsn) return VS_ERR_CORRUPT;
  rec->lsn = lsn;
  rec->stored_at_ms = vs_get_u64le(p + 16);
  const uint8_t *enc = p + VS_WAL_RECORD_HEADER_BYTES;
  size_t enc_bytes = v->mv_size - VS_WAL_RECORD_HEADER_BYTES;
  if (vs_op_decode(enc, enc_bytes, &rec->op) != VS_OK) return VS_ERR_CORRUPT;
  vs_op_hash_encoded(enc, enc_bytes, rec->op_hash);
  return VS_OK;
}

static vs_err record_get(MDB_txn *txn, const vs_store *store, uint64_t lsn, MDB_val *v) {
  uint8_t key[8];
  vs_put_u64be(key, lsn);
  MDB_val k = val(key, sizeof key);
  int rc = mdb_get(txn, store->dbi_wal, &k, v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v->mv_size < VS_WAL_RECORD_HEADER_BYTES || v->mv_size - VS_WAL_RECORD_HEADER_BYTES > VS_OP_ENCODED_BYTES_MAX)
    return VS_ERR_CORRUPT;
  return VS_OK;
}

vs_err vs_wal_op_bytes_txn(MDB_txn *txn, const vs_store *store, uint64_t lsn, uint32_t *op_bytes_out) {
  MDB_val v;
  vs_err err = record_get(txn, store, lsn, &v);
  if (err == VS_OK) *op_bytes_out = (uint32_t)(v.mv_size - VS_WAL_RECORD_HEADER_BYTES);
  return err;
}

vs_err vs_wal_op_encoded_txn(MDB_txn *txn, const vs_store *store, uint64_t lsn, const uint8_t **enc_out,
                             uint32_t *enc_bytes_out) {
  MDB_val v;
  vs_err err = record_get(txn, store, lsn, &v);
  if (err != VS_OK) return err;
  const uint8_t *p = v.mv_data;
  if (record_crc(p, v.mv_size) != vs_get_u32le(p + 4) || vs_get_u64le(p + 8) != lsn) return VS_ERR_CORRUPT;
  *enc_out = p + VS_WAL_RECORD_HEADER_BYTES;
  *enc_bytes_out = (uint32_t)(v.mv_size - VS_WAL_RECORD_HEADER_BYTES);
  return VS_OK;
}

vs_err vs_wal_reader_open(MDB_txn *txn, const vs_store *store, vs_wal_reader *r) {
  r->at = 0;
  r->cur = NULL;
  return vs_mdb_err(mdb_cursor_open(txn, store->dbi_wal, &r->cur));
}

void vs_wal_reader_close(vs_wal_reader *r) {
  if (r->cur != NULL) mdb_cursor_close(r->cur);
  r->cur = NULL;
  r->at = 0;
}

vs_err vs_wal_reader_op(vs_wal_reader *r, uint64_t lsn, const uint8_t **enc_out, uint32_t *enc_bytes_out) {
  uint8_t key[8];
  vs_put_u64be(key, lsn);
  MDB_val k = val(key, sizeof key), v;
  /* The next record is one step along the leaf; any other is a seek. */
  int rc = r->at != 0 && lsn == r->at + 1 ? mdb_cursor_get(r->cur, &k, &v, MDB_NEXT)
                                          : mdb_cursor_get(r->cur, &k, &v, MDB_SET_KEY);
  r->at = 0;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (k.mv_size != 8 || vs_get_u64be(k.mv_data) != lsn) return VS_ERR_NOTFOUND; /* NEXT went past a gap */
  if (v.mv_size < VS_WAL_RECORD_HEADER_BYTES || v.mv_size - VS_WAL_RECORD_HEADER_BYTES > VS_OP_ENCODED_BYTES_MAX)
    return VS_ERR_CORRUPT;
  const uint8_t *p = v.mv_data;
  if (record_crc(p, v.mv_size) != vs_get_u32le(p + 4) || vs_get_u64le(p + 8) != lsn) return VS_ERR_CORRUPT;
  r->at = lsn;
  *enc_out = p + VS_WAL_RECORD_HEADER_BYTES;
  *enc_bytes_out = (uint32_t)(v.mv_size - VS_WAL_RECORD_HEADER_BYTES);
  return VS_OK;
}

vs_err vs_wal_replay(vs_store *store, uint64_t from_lsn, vs_wal_handler handler, void *ctx) {
  if (store == NULL || handler == NULL) return VS_ERR_INVAL;
  if (from_lsn == 0) from_lsn = 1;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_wal, &cur);
  if (rc != MDB_SUCCESS) {
    mdb_txn_abort(txn);
    return vs_mdb_err(rc);
  }
  uint8_t key[8];
  vs_put_u64be(key, from_lsn);
  MDB_val k = val(key, sizeof key), v;
  uint64_t expect = from_lsn;
  /* Bounded by the records in the snapshot: each step moves the cursor on.
   * LSNs increase; compaction leaves gaps below the horizons. */
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_wal_record rec;
    uint64_t lsn = k.mv_size == 8 ? vs_get_u64be(k.mv_data) : 0;
    err = lsn >= expect ? record_decode(&k, &v, lsn, &rec) : VS_ERR_CORRUPT;
    if (err == VS_OK) err = handler(&rec, ctx);
    expect = lsn + 1;
  }
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_wal_last_lsn(vs_store *store, uint64_t *lsn_out) {
  if (store == NULL || lsn_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_wal_last_lsn_txn(txn, store, lsn_out);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_wal_find(vs_store *store, const vs_op_id *id, uint64_t *lsn_out) {
  if (store == NULL || id == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_opid_get(txn, store, id, lsn_out, NULL);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_wal_head(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t *seq_out,
                   uint8_t hash_out[VS_HASH_BYTES], uint64_t *hlc_out) {
  if (store == NULL || origin == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  vs_head head;
  err = vs_head_get(txn, store, origin, &head);
  mdb_txn_abort(txn);
  if (err != VS_OK) return err;
  if (seq_out != NULL) *seq_out = head.seq;
  if (hash_out != NULL) memcpy(hash_out, head.hash, VS_HASH_BYTES);
  if (hlc_out != NULL) *hlc_out = head.hlc;
  return VS_OK;
}
