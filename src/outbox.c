#define _POSIX_C_SOURCE 200809L /* strnlen */
/* The outbox handle (vixsync/outbox.h): open (registering the sink and
 * converting it to or from ranges-only), close, inspection. The layout is
 * outbox_layout.c, the step transaction outbox_step.c, administration
 * outbox_admin.c, the sink registry sinks.c. */
#include "vixsync/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "outbox_int.h"
#include "wal_int.h"

const char *vs_outbox_state_name(vs_outbox_state state) {
  switch (state) {
    case VS_OUTBOX_PENDING: return "PENDING";
    case VS_OUTBOX_INFLIGHT: return "INFLIGHT";
    case VS_OUTBOX_DONE: return "DONE";
    case VS_OUTBOX_FAILED: return "FAILED";
  }
  return "?";
}

/* The first layout of vs_outbox_cfg (cfg.h): a caller's cfg_bytes is at least this. */
#define OUTBOX_CFG_V1_BYTES VS_CFG_BYTES_THROUGH(vs_outbox_cfg, ranges_only)

static vs_outbox_cfg outbox_cfg_defaults(void) {
  vs_outbox_cfg cfg = {(uint32_t)sizeof cfg, VS_OUTBOX_SINK_DEFAULT, VS_RETRY_POLICY_DEFAULT_INIT, false};
  return cfg;
}

void vs_outbox_cfg_default_sized(vs_outbox_cfg *cfg, size_t cfg_bytes) {
  vs_outbox_cfg def = outbox_cfg_defaults();
  vs_cfg_default_out(cfg, cfg_bytes, &def, sizeof def);
}

/* ---- the handle ---- */

static bool sink_name_ok(const char *name, size_t *len_out) {
  size_t n = strnlen(name, VS_OUTBOX_SINK_NAME_BYTES_MAX + 1);
  *len_out = n;
  return vs_op_kind_check(name, n) == VS_OK && n <= VS_OUTBOX_SINK_NAME_BYTES_MAX;
}

vs_err vs_outbox_sinks(vs_store *store, vs_sink_info *out, uint32_t max, uint32_t *count_out) {
  if (store == NULL || count_out == NULL || (out == NULL && max > 0)) return VS_ERR_INVAL;
  *count_out = 0;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t n = 0;
  err = vs_sinks_scan(txn, store, sinks, &n);
  for (uint32_t i = 0; err == VS_OK && i < n && i < max; i++) {
    out[i] = sinks[i];
    err = vs_obx_counts_load(txn, store, sinks[i].id, &out[i].counts);
  }
  mdb_txn_abort(txn);
  if (err == VS_OK) *count_out = n;
  return err;
}

/* Delete every key of `sink` in index `dbi` (keys (sink u32be, u64be, lsn
 * u64be)); *min_lsn: the smallest LSN among them. Each deleted key is an
 * entry: bounded by `bound` (more is corruption). `inflight`: the keys are
 * leases, their entries are made PENDING (counted in *counts). */
static vs_err index_drop(MDB_txn *txn, const vs_store *store, MDB_dbi dbi, uint32_t sink, uint64_t bound,
                         bool inflight, vs_outbox_counts *counts, uint64_t *min_lsn) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t prefix[4];
  vs_put_u32be(prefix, sink);
  vs_err err = VS_OK;
  for (uint64_t n = 0; err == VS_OK; n++) {
    MDB_val k = {sizeof prefix, prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && (k.mv_size < 4 || memcmp(k.mv_data, prefix, 4) != 0))) break;
    if (rc != MDB_SUCCESS) {
      err = vs_mdb_err(rc);
      break;
    }
    if (k.mv_size != 20 || n >= bound) {
      err = VS_ERR_CORRUPT;
      break;
    }
    uint64_t lsn = vs_get_u64be((const uint8_t *)k.mv_data + 12);
    if (lsn < *min_lsn) *min_lsn = lsn;
    err = vs_mdb_err(mdb_cursor_del(cur, 0));
    if (err != VS_OK || !inflight) continue;
    vs_outbox_entry e;
    err = vs_obx_entry_get(txn, store, sink, lsn, &e);
    if (err == VS_OK && (e.state != VS_OUTBOX_INFLIGHT || counts->inflight == 0)) err = VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    assert(vs_obx_transition_legal(e.state, VS_OUTBOX_PENDING));
    e.state = VS_OUTBOX_PENDING; /* its attempt stays spent, as on a restart */
    e.lease_until_ms = 0;
    uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
    vs_obx_entry_key(key, sink, lsn);
    MDB_val ek = {sizeof key, key}, ev = {vs_obx_entry_encode(&e, buf), buf};
    err = vs_mdb_err(mdb_put(txn, store->dbi_outbox, &ek, &ev, 0));
    counts->inflight--;
    counts->pending++;
  }
  mdb_cursor_close(cur);
  return err;
}

/* Make `sink` ranges-only (to_ranges) or claimed from again, inside txn
 * (vs_outbox_cfg.ranges_only). Bounded by the sink's entries. */
static vs_err ranges_convert(MDB_txn *txn, const vs_store *store, uint32_t sink, bool to_ranges, uint64_t from) {
  vs_outbox_counts c;
  vs_err err = vs_obx_counts_load(txn, store, sink, &c);
  if (err != VS_OK) return err;
  if (to_ranges) {
    uint64_t min_lsn = UINT64_MAX, last = 0;
    err = index_drop(txn, store, store->dbi_obx_ready, sink, c.pending + 1, false, &c, &min_lsn);
    if (err == VS_OK) err = index_drop(txn, store, store->dbi_obx_lease, sink, c.inflight + 1, true, &c, &min_lsn);
    if (err == VS_OK && min_lsn == UINT64_MAX) err = vs_wal_last_lsn_txn(txn, store, &last);
    if (err == VS_OK) err = vs_obx_ranges_put_txn(txn, store, sink, true, min_lsn != UINT64_MAX ? min_lsn : last + 1);
  } else {
    /* Index the PENDING entries again: all at or after the mark. */
    MDB_cursor *cur;
    err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_outbox, &cur));
    if (err != VS_OK) return err;
    uint8_t key[ENTRY_KEY_BYTES];
    vs_obx_entry_key(key, sink, from);
    MDB_val k = {sizeof key, key}, v;
    int rc;
    /* Bounded by the sink's entries. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && err == VS_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (k.mv_size != ENTRY_KEY_BYTES || vs_get_u32be(k.mv_data) != sink) break;
      vs_outbox_entry e;
      err = vs_obx_entry_decode(&v, vs_get_u64be((const uint8_t *)k.mv_data + 4), &e);
      if (err != VS_OK || e.state != VS_OUTBOX_PENDING) continue;
      uint8_t ikey[INDEX_KEY_BYTES_MAX];
      size_t ikey_bytes;
      MDB_dbi dbi = vs_obx_index_key(store, sink, &e, ikey, &ikey_bytes);
      MDB_val ik = {ikey_bytes, ikey}, empty = {0, NULL};
      err = vs_mdb_err(mdb_put(txn, dbi, &ik, &empty, 0));
    }
    if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
    mdb_cursor_close(cur);
    if (err == VS_OK) err = vs_obx_ranges_put_txn(txn, store, sink, false, 0);
  }
  if (err == VS_OK) err = vs_obx_counts_save(txn, store, sink, &c);
  return err;
}

vs_err vs_outbox_open(vs_store *store, const vs_outbox_cfg *cfg, vs_outbox **outbox_out) {
  if (store == NULL || outbox_out == NULL) return VS_ERR_INVAL;
  *outbox_out = NULL;
  vs_outbox_cfg def = outbox_cfg_defaults();
  if (cfg != NULL && vs_cfg_load(cfg, &def, sizeof def, OUTBOX_CFG_V1_BYTES) != VS_OK) return VS_ERR_INVAL;
  cfg = &def; /* the caller's fields over the defaults, as far as its cfg_bytes goes */
  const char *name = cfg->sink != NULL ? cfg->sink : VS_OUTBOX_SINK_DEFAULT;
  size_t name_bytes;
  if (!sink_name_ok(name, &name_bytes) || vs_retry_policy_check(&cfg->retry) != VS_OK) return VS_ERR_INVAL;
  vs_outbox *ob = calloc(1, sizeof *ob);
  if (ob == NULL) return VS_ERR_NOMEM;
  ob->store = store;
  ob->policy = cfg->retry;
  ob->is_default = strcmp(name, VS_OUTBOX_SINK_DEFAULT) == 0;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) {
    free(ob);
    return err;
  }
  bool changed = false, ranges = false;
  uint64_t from = 0;
  err = vs_sinks_lookup(txn, store, name, name_bytes, &ob->sink);
  if (err == VS_ERR_NOTFOUND) {
    uint32_t ids[VS_OUTBOX_SINKS_MAX], n = 0;
    err = vs_sinks_list(txn, store, ids, &n);
    if (err == VS_OK && n >= VS_OUTBOX_SINKS_MAX) err = VS_ERR_LIMIT;
    if (err == VS_OK) {
      ob->sink = n == 0 ? 0 : ids[n - 1] + 1;
      err = vs_sinks_put(txn, store, name, name_bytes, ob->sink);
    }
    changed = true;
  }
  if (err == VS_OK) err = vs_obx_ranges_get_txn(txn, store, ob->sink, &ranges, &from);
  if (err == VS_OK && ranges != cfg->ranges_only) {
    err = ranges_convert(txn, store, ob->sink, cfg->ranges_only, from);
    changed = true;
  }
  if (err == VS_OK && changed) err = vs_txn_commit(txn);
  else mdb_txn_abort(txn);
  if (err != VS_OK) {
    free(ob);
    return err;
  }
  *outbox_out = ob;
  return VS_OK;
}

void vs_outbox_close(vs_outbox *outbox) { free(outbox); }

vs_store *vs_outbox_store(const vs_outbox *outbox) { return outbox->store; }

const vs_retry_policy *vs_outbox_policy(const vs_outbox *outbox) { return &outbox->policy; }
vs_err vs_outbox_get(vs_outbox *outbox, const vs_op_id *id, vs_outbox_entry *entry_out) {
  if (outbox == NULL || id == NULL || entry_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(outbox->store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_obx_entry_find(txn, outbox, id, entry_out);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_outbox_set_policy(vs_outbox *outbox, const vs_retry_policy *policy) {
  if (outbox == NULL || vs_retry_policy_check(policy) != VS_OK) return VS_ERR_INVAL;
  outbox->policy = *policy;
  return VS_OK;
}

vs_err vs_outbox_counts_get(vs_outbox *outbox, vs_outbox_counts *counts_out) {
  if (outbox == NULL || counts_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(outbox->store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_obx_counts_load(txn, outbox->store, outbox->sink, counts_out);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_outbox_next_due(vs_outbox *outbox, uint64_t *due_ms_out) {
  if (outbox == NULL || due_ms_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(outbox->store, false, &txn);
  if (err != VS_OK) return err;
  uint8_t prefix[4];
  vs_put_u32be(prefix, outbox->sink);
  uint64_t due = UINT64_MAX, t_ms, lsn;
  bool found;
  err = vs_obx_first_key(txn, outbox->store->dbi_obx_ready, prefix, sizeof prefix, &found, &t_ms, &lsn);
  if (err == VS_OK && found && t_ms < due) due = t_ms;
  if (err == VS_OK) err = vs_obx_first_key(txn, outbox->store->dbi_obx_lease, prefix, sizeof prefix, &found, &t_ms, &lsn);
  if (err == VS_OK && found && t_ms < due) due = t_ms;
  mdb_txn_abort(txn);
  if (err == VS_OK) *due_ms_out = due;
  return err;
}
