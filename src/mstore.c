/* The store's membership facts (mstore.h). */
#include "mstore.h"

#include <stdlib.h>
#include <string.h>

#include "wal_int.h"

static void record_key(uint8_t key[VS_MESH_RECORD_KEY_BYTES], const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  memcpy(key, origin, VS_ORIGIN_BYTES);
  vs_put_u64be(key + VS_ORIGIN_BYTES, seq);
}

vs_err vs_mesh_records_count_txn(MDB_txn *txn, const vs_store *store, uint64_t *count_out) {
  MDB_stat st;
  int rc = mdb_stat(txn, store->dbi_mesh, &st);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  *count_out = (uint64_t)st.ms_entries;
  return VS_OK;
}

vs_err vs_mesh_record_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                              const uint8_t hash[VS_HASH_BYTES], uint64_t lsn) {
  uint8_t key[VS_MESH_RECORD_KEY_BYTES], val[VS_MESH_RECORD_BYTES];
  record_key(key, origin, seq);
  val[0] = VS_MESH_RECORD_VERSION;
  memcpy(val + 1, hash, VS_HASH_BYTES);
  vs_put_u64le(val + 1 + VS_HASH_BYTES, lsn);
  MDB_val k = {sizeof key, key}, v = {sizeof val, val};
  return vs_mdb_err(mdb_put(txn, store->dbi_mesh, &k, &v, 0));
}

vs_err vs_mesh_records_drop_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                                uint64_t from) {
  uint8_t start[VS_MESH_RECORD_KEY_BYTES];
  record_key(start, origin, from);
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_mesh, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  for (;;) { /* bounded: each round deletes one of the origin's records */
    MDB_val k = {sizeof start, start}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc != MDB_SUCCESS) break;
    if (k.mv_size != VS_MESH_RECORD_KEY_BYTES || memcmp(k.mv_data, origin, VS_ORIGIN_BYTES) != 0) break;
    rc = mdb_cursor_del(cur, 0);
    if (rc != MDB_SUCCESS) break;
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? VS_OK : vs_mdb_err(rc);
}

vs_err vs_mesh_orphan_put_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t hash[VS_HASH_BYTES]) {
  uint8_t key[VS_MESH_RECORD_KEY_BYTES];
  record_key(key, op->origin, op->seq);
  size_t enc_bytes = vs_op_encoded_bytes(op);
  if (enc_bytes == 0 || enc_bytes > VS_OP_ENCODED_BYTES_MAX) return VS_ERR_INVAL;
  MDB_val k = {sizeof key, key}, v = {1u + VS_HASH_BYTES + enc_bytes, NULL};
  int rc = mdb_put(txn, store->dbi_mesh, &k, &v, MDB_RESERVE);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t *p = v.mv_data;
  p[0] = VS_MESH_ORPHAN_VERSION;
  memcpy(p + 1, hash, VS_HASH_BYTES);
  size_t written = 0;
  vs_err err = vs_op_encode(op, p + 1 + VS_HASH_BYTES, enc_bytes, &written);
  if (err == VS_OK && written != enc_bytes) err = VS_ERR_CORRUPT;
  return err;
}

/* The fact of one record, read back from the WAL (an orphan: from the
 * record itself) and checked against it. */
static vs_err record_fact(vs_wal_reader *wr, const MDB_val *k, const MDB_val *v, vs_mesh_fact *out) {
  if (k->mv_size != VS_MESH_RECORD_KEY_BYTES || v->mv_size < 1) return VS_ERR_CORRUPT;
  const uint8_t *key = k->mv_data, *val = v->mv_data;
  uint64_t seq = vs_get_u64be(key + VS_ORIGIN_BYTES);
  const uint8_t *enc = NULL;
  uint32_t enc_bytes = 0;
  vs_op op;
  uint8_t hash[VS_HASH_BYTES];
  vs_err err = VS_OK;
  if (val[0] == VS_MESH_ORPHAN_VERSION) {
    if (v->mv_size <= 1u + VS_HASH_BYTES || v->mv_size > 1u + VS_HASH_BYTES + VS_OP_ENCODED_BYTES_MAX)
      return VS_ERR_CORRUPT;
    enc = val + 1 + VS_HASH_BYTES;
    enc_bytes = (uint32_t)(v->mv_size - 1u - VS_HASH_BYTES);
  } else {
    if (v->mv_size != VS_MESH_RECORD_BYTES || val[0] != VS_MESH_RECORD_VERSION) return VS_ERR_CORRUPT;
    uint64_t lsn = vs_get_u64le(val + 1 + VS_HASH_BYTES);
    err = vs_wal_reader_op(wr, lsn, &enc, &enc_bytes);
    if (err == VS_ERR_NOTFOUND) return VS_ERR_CORRUPT; /* the record names a WAL record that is gone */
    if (err != VS_OK) return err;
  }
  /* the WAL record's checksum held: an op that does not decode now is a damaged store */
  if (vs_op_decode(enc, enc_bytes, &op) != VS_OK || vs_op_hash(&op, hash) != VS_OK) return VS_ERR_CORRUPT;
  if (op.seq != seq || memcmp(op.origin, key, VS_ORIGIN_BYTES) != 0 || memcmp(hash, val + 1, VS_HASH_BYTES) != 0)
    return VS_ERR_CORRUPT;
  err = vs_mesh_fact_from_op(&op, hash, out);
  /* apply took it, so it decoded then: anything else now is a damaged store */
  return err == VS_OK ? VS_OK : VS_ERR_CORRUPT;
}

/* The record (origin, seq): its key into `key`, k and v set. */
static vs_err record_lookup(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                            uint8_t key[VS_MESH_RECORD_KEY_BYTES], MDB_val *k, MDB_val *v) {
  record_key(key, origin, seq);
  k->mv_size = VS_MESH_RECORD_KEY_BYTES;
  k->mv_data = key;
  return vs_mdb_err(mdb_get(txn, store->dbi_mesh, k, v));
}

vs_err vs_mesh_fact_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                            vs_mesh_fact *out) {
  uint8_t key[VS_MESH_RECORD_KEY_BYTES];
  MDB_val k, v;
  vs_err lerr = record_lookup(txn, store, origin, seq, key, &k, &v);
  if (lerr != VS_OK) return lerr;
  vs_wal_reader wr = {NULL, 0};
  vs_err err = vs_wal_reader_open(txn, store, &wr);
  if (err == VS_OK) err = record_fact(&wr, &k, &v, out);
  vs_wal_reader_close(&wr);
  return err;
}

static vs_err read_facts(MDB_txn *txn, const vs_store *store, vs_mesh_fact *facts, uint32_t max, uint32_t *n_out) {
  vs_wal_reader wr = {NULL, 0};
  MDB_cursor *cur = NULL;
  vs_err err = vs_wal_reader_open(txn, store, &wr);
  if (err == VS_OK) err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_mesh, &cur));
  uint32_t n = 0;
  MDB_val k, v;
  int rc = err == VS_OK ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : MDB_SUCCESS;
  while (err == VS_OK && rc == MDB_SUCCESS) { /* bounded by `max` */
    if (n >= max) {
      err = VS_ERR_CORRUPT; /* more records than the count said */
      break;
    }
    err = record_fact(&wr, &k, &v, &facts[n]);
    if (err == VS_OK) n++;
    if (err == VS_OK) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (err == VS_OK && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  if (cur != NULL) mdb_cursor_close(cur);
  vs_wal_reader_close(&wr);
  *n_out = n;
  return err;
}

vs_err vs_mesh_facts_read_txn(MDB_txn *txn, const vs_store *store, vs_mesh_fact **facts_out, uint32_t *count_out) {
  *facts_out = NULL;
  *count_out = 0;
  uint64_t count = 0;
  vs_err err = vs_mesh_records_count_txn(txn, store, &count);
  if (err == VS_OK && count > VS_MESH_FACTS_MAX) err = VS_ERR_LIMIT;
  if (err != VS_OK) return err;
  vs_mesh_fact *facts = malloc((size_t)(count > 0 ? count : 1) * sizeof *facts);
  if (facts == NULL) return VS_ERR_NOMEM;
  uint32_t n = 0;
  err = read_facts(txn, store, facts, (uint32_t)count, &n);
  if (err != VS_OK) {
    free(facts);
    return err;
  }
  *facts_out = facts;
  *count_out = n;
  return VS_OK;
}

vs_err vs_mesh_revoke_held_txn(MDB_txn *txn, const vs_store *store, const uint8_t device[VS_ORIGIN_BYTES], uint64_t seq,
                               bool *out) {
  *out = false;
  vs_mesh_fact *facts = NULL;
  uint32_t n = 0;
  vs_err err = vs_mesh_facts_read_txn(txn, store, &facts, &n);
  for (uint32_t i = 0; err == VS_OK && i < n && !*out; i++) /* bounded: VS_MESH_FACTS_MAX */
    *out = facts[i].kind == VS_MESH_REVOKE && memcmp(facts[i].u.revoke.device_pk, device, VS_ORIGIN_BYTES) == 0 &&
           facts[i].u.revoke.cut_seq <= seq;
  free(facts);
  return err;
}

vs_err vs_mesh_view_get(vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES], vs_mesh_view *view_out) {
  if (view_out != NULL) memset(view_out, 0, sizeof *view_out);
  if (store == NULL || mesh_id == NULL || view_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  vs_mesh_fact *facts = NULL;
  uint32_t n = 0;
  err = vs_mesh_facts_read_txn(txn, store, &facts, &n);
  mdb_txn_abort(txn);
  if (err == VS_OK) err = vs_mesh_reduce(mesh_id, facts, n, view_out);
  free(facts);
  if (err != VS_OK) memset(view_out, 0, sizeof *view_out);
  return err;
}

vs_err vs_mesh_record_op_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                             vs_op *op_out) {
  uint8_t key[VS_MESH_RECORD_KEY_BYTES];
  MDB_val k, v;
  vs_err err = record_lookup(txn, store, origin, seq, key, &k, &v);
  if (err != VS_OK) return err;
  const uint8_t *val = v.mv_data;
  if (v.mv_size != VS_MESH_RECORD_BYTES || val[0] != VS_MESH_RECORD_VERSION) return VS_ERR_NOTFOUND; /* an orphan */
  const uint8_t *enc = NULL;
  uint32_t enc_bytes = 0;
  err = vs_wal_op_encoded_txn(txn, store, vs_get_u64le(val + 1 + VS_HASH_BYTES), &enc, &enc_bytes);
  if (err == VS_ERR_NOTFOUND) return VS_ERR_CORRUPT;
  if (err != VS_OK) return err;
  if (vs_op_decode(enc, enc_bytes, op_out) != VS_OK || op_out->seq != seq ||
      memcmp(op_out->origin, origin, VS_ORIGIN_BYTES) != 0)
    return VS_ERR_CORRUPT;
  return VS_OK;
}
