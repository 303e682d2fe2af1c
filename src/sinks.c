/* The sink registry and the per-sink meta keys (sinks.h): the sink names,
 * the counts per state and the ranges-only mark. */
#include "sinks.h"

#include <string.h>

static const char SINK_PREFIX[] = "sink:";
static const char COUNTS_PREFIX[] = "obxcnt";
static const char RANGES_PREFIX[] = "obxrng";
#define RANGES_KEY_BYTES (sizeof RANGES_PREFIX - 1 + 4u)
#define RANGES_VALUE_BYTES 9u

/* ---- counts ---- */

static void counts_key(uint8_t key[sizeof COUNTS_PREFIX - 1 + 4], uint32_t sink) {
  memcpy(key, COUNTS_PREFIX, sizeof COUNTS_PREFIX - 1);
  vs_put_u32be(key + sizeof COUNTS_PREFIX - 1, sink);
}

vs_err vs_obx_counts_load(MDB_txn *txn, const vs_store *store, uint32_t sink, vs_outbox_counts *counts_out) {
  uint8_t key[sizeof COUNTS_PREFIX - 1 + 4];
  counts_key(key, sink);
  MDB_val k = {sizeof key, key}, v;
  memset(counts_out, 0, sizeof *counts_out);
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 32) return VS_ERR_CORRUPT;
  const uint8_t *p = v.mv_data;
  counts_out->pending = vs_get_u64le(p);
  counts_out->inflight = vs_get_u64le(p + 8);
  counts_out->done = vs_get_u64le(p + 16);
  counts_out->failed = vs_get_u64le(p + 24);
  return VS_OK;
}

vs_err vs_obx_counts_save(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_counts *counts) {
  uint8_t key[sizeof COUNTS_PREFIX - 1 + 4], buf[32];
  counts_key(key, sink);
  vs_put_u64le(buf, counts->pending);
  vs_put_u64le(buf + 8, counts->inflight);
  vs_put_u64le(buf + 16, counts->done);
  vs_put_u64le(buf + 24, counts->failed);
  MDB_val k = {sizeof key, key}, v = {sizeof buf, buf};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

/* meta["obxrng" sink]: *on, and the mark when on. */
vs_err vs_obx_ranges_get_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, bool *on, uint64_t *from) {
  uint8_t key[RANGES_KEY_BYTES];
  memcpy(key, RANGES_PREFIX, sizeof RANGES_PREFIX - 1);
  vs_put_u32be(key + sizeof RANGES_PREFIX - 1, sink);
  MDB_val k = {sizeof key, key}, v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  *on = false;
  *from = 0;
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  const uint8_t *p = v.mv_data;
  if (v.mv_size != RANGES_VALUE_BYTES || p[0] != 1) return VS_ERR_CORRUPT;
  *on = true;
  *from = vs_get_u64le(p + 1);
  return VS_OK;
}

/* Set the mark (on = true) or drop it (the sink is claimed from again). */
vs_err vs_obx_ranges_put_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, bool on, uint64_t from) {
  uint8_t key[RANGES_KEY_BYTES], val[RANGES_VALUE_BYTES];
  memcpy(key, RANGES_PREFIX, sizeof RANGES_PREFIX - 1);
  vs_put_u32be(key + sizeof RANGES_PREFIX - 1, sink);
  MDB_val k = {sizeof key, key};
  if (!on) {
    int rc = mdb_del(txn, store->dbi_meta, &k, NULL);
    return rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
  }
  val[0] = 1;
  vs_put_u64le(val + 1, from);
  MDB_val v = {sizeof val, val};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

vs_err vs_obx_ranges_only_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, bool *on_out) {
  uint64_t from;
  return vs_obx_ranges_get_txn(txn, store, sink, on_out, &from);
}

vs_err vs_sinks_lookup(MDB_txn *txn, const vs_store *store, const char *name, size_t name_bytes, uint32_t *id) {
  uint8_t key[sizeof SINK_PREFIX - 1 + VS_OUTBOX_SINK_NAME_BYTES_MAX];
  memcpy(key, SINK_PREFIX, sizeof SINK_PREFIX - 1);
  memcpy(key + sizeof SINK_PREFIX - 1, name, name_bytes);
  MDB_val k = {sizeof SINK_PREFIX - 1 + name_bytes, key}, v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 4) return VS_ERR_CORRUPT;
  *id = vs_get_u32le(v.mv_data);
  return VS_OK;
}

vs_err vs_sinks_put(MDB_txn *txn, const vs_store *store, const char *name, size_t name_bytes, uint32_t id) {
  uint8_t key[sizeof SINK_PREFIX - 1 + VS_OUTBOX_SINK_NAME_BYTES_MAX], buf[4];
  memcpy(key, SINK_PREFIX, sizeof SINK_PREFIX - 1);
  memcpy(key + sizeof SINK_PREFIX - 1, name, name_bytes);
  vs_put_u32le(buf, id);
  MDB_val k = {sizeof SINK_PREFIX - 1 + name_bytes, key}, v = {sizeof buf, buf};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, MDB_NOOVERWRITE));
}

vs_err vs_sinks_init(MDB_txn *txn, const vs_store *store) {
  return vs_sinks_put(txn, store, VS_OUTBOX_SINK_DEFAULT, sizeof VS_OUTBOX_SINK_DEFAULT - 1, 0);
}

/* The registry meta["sink:" name] = id u32le, read in one cursor pass:
 * names and ids in id order ("default" is 0). Bounded by
 * VS_OUTBOX_SINKS_MAX (more is corruption). Counts are left zero. */
vs_err vs_sinks_scan(MDB_txn *txn, const vs_store *store, vs_sink_info out[VS_OUTBOX_SINKS_MAX],
                         uint32_t *count_out) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_meta, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k = {sizeof SINK_PREFIX - 1, (void *)SINK_PREFIX}, v;
  uint32_t n = 0;
  vs_err err = VS_OK;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < sizeof SINK_PREFIX - 1 || memcmp(k.mv_data, SINK_PREFIX, sizeof SINK_PREFIX - 1) != 0) break;
    size_t name_bytes = k.mv_size - (sizeof SINK_PREFIX - 1);
    if (n == VS_OUTBOX_SINKS_MAX || v.mv_size != 4 || name_bytes > VS_OUTBOX_SINK_NAME_BYTES_MAX) {
      err = VS_ERR_CORRUPT;
      break;
    }
    uint32_t id = vs_get_u32le(v.mv_data);
    uint32_t i = n++;
    for (; i > 0 && out[i - 1].id > id; i--) out[i] = out[i - 1]; /* keep id order */
    memset(&out[i], 0, sizeof out[i]);
    memcpy(out[i].name, (const uint8_t *)k.mv_data + sizeof SINK_PREFIX - 1, name_bytes);
    out[i].id = id;
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  *count_out = err == VS_OK ? n : 0;
  return err;
}

vs_err vs_sinks_list(MDB_txn *txn, const vs_store *store, uint32_t ids_out[VS_OUTBOX_SINKS_MAX], uint32_t *count_out) {
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  vs_err err = vs_sinks_scan(txn, store, sinks, count_out);
  for (uint32_t i = 0; err == VS_OK && i < *count_out; i++) ids_out[i] = sinks[i].id;
  return err;
}
