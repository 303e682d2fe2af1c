/* The outbox's administration (vixsync/outbox.h): backfill a new sink,
 * requeue after a crash, retry what failed, purge what was delivered. */
#include "outbox_int.h"
#include "wal_int.h"

#include <string.h>

/* ---- backfill: entries for what was written before the sink ---- */

#define FILL_RECORDS_PER_TXN 10000u
#define FILL_VALUE_BYTES 17u /* version 1, LSN reached u64le, LSN to reach u64le */
static const char FILL_PREFIX[] = "sinkfill";

/* One transaction of the scan: up to FILL_RECORDS_PER_TXN records, read in
 * LSN order through a WAL cursor. */
static vs_err fill_step(vs_outbox *ob, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms, uint64_t *enqueued,
                        uint64_t *end_out, bool *finished) {
  vs_obx_txn t;
  vs_err err = vs_obx_begin(ob, &t);
  if (err != VS_OK) return err;
  uint64_t reached = 0, end = 0;
  uint8_t key[sizeof FILL_PREFIX - 1 + 4], val[FILL_VALUE_BYTES];
  memcpy(key, FILL_PREFIX, sizeof FILL_PREFIX - 1);
  vs_put_u32be(key + sizeof FILL_PREFIX - 1, ob->sink);
  MDB_val k = {sizeof key, key}, v;
  int rc = mdb_get(t.txn, ob->store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    err = vs_wal_last_lsn_txn(t.txn, ob->store, &end); /* first run: later writes have entries */
  } else if (rc == MDB_SUCCESS) {
    const uint8_t *p = v.mv_data;
    if (v.mv_size != FILL_VALUE_BYTES || p[0] != 1) err = VS_ERR_CORRUPT;
    else reached = vs_get_u64le(p + 1), end = vs_get_u64le(p + 9);
    if (err == VS_OK && reached >= end) { /* done long ago: nothing to write */
      *end_out = end;
      *finished = true;
      return vs_obx_finish(ob, &t, VS_OK); /* nothing written: dropped */
    }
  } else {
    err = vs_mdb_err(rc);
  }
  uint64_t stop = end - reached > FILL_RECORDS_PER_TXN ? reached + FILL_RECORDS_PER_TXN : end, added = 0;
  vs_wal_reader wr = {NULL, 0};
  if (err == VS_OK) err = vs_wal_reader_open(t.txn, ob->store, &wr);
  for (uint64_t lsn = reached + 1; lsn <= stop && err == VS_OK; lsn++) {
    const uint8_t *enc;
    uint32_t enc_bytes;
    vs_op op;
    err = vs_wal_reader_op(&wr, lsn, &enc, &enc_bytes);
    if (err == VS_OK && vs_op_decode(enc, enc_bytes, &op) != VS_OK) err = VS_ERR_CORRUPT;
    if (err != VS_OK || memcmp(op.origin, origin, VS_ORIGIN_BYTES) != 0) continue;
    t.dirty = true;
    err = vs_obx_enqueue_txn(t.txn, ob->store, ob->sink, lsn, &op.id, enc_bytes, now_ms, &t.counts, t.ranges);
    if (err == VS_OK) {
      added++;
      t.added++;
    } else if (err == VS_ERR_EXISTS) err = VS_OK; /* written after the sink was registered */
  }
  vs_wal_reader_close(&wr);
  val[0] = 1;
  vs_put_u64le(val + 1, stop);
  vs_put_u64le(val + 9, end);
  MDB_val nv = {sizeof val, val};
  t.dirty = true; /* the progress, even when nothing was enqueued */
  if (err == VS_OK) err = vs_mdb_err(mdb_put(t.txn, ob->store->dbi_meta, &k, &nv, 0));
  err = vs_obx_finish(ob, &t, err);
  if (err == VS_OK) {
    *enqueued += added;
    *end_out = end;
    *finished = stop >= end;
  }
  return err;
}

vs_err vs_outbox_backfill(vs_outbox *outbox, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms,
                          uint64_t *enqueued_out) {
  if (outbox == NULL || origin == NULL) return VS_ERR_INVAL;
  if (enqueued_out != NULL) *enqueued_out = 0;
  uint64_t enqueued = 0, end = 0;
  /* "default" exists since the store was made: every local write has an
   * entry there already (or had one, purged since). */
  bool finished = outbox->is_default;
  vs_err err = VS_OK;
  /* Each step moves FILL_RECORDS_PER_TXN records on, or finishes: bounded
   * by the range fixed at the first step. */
  for (uint64_t round = 0; err == VS_OK && !finished; round++) {
    err = fill_step(outbox, origin, now_ms, &enqueued, &end, &finished);
    if (err == VS_OK && !finished && round > end / FILL_RECORDS_PER_TXN + 1) err = VS_ERR_CORRUPT;
  }
  if (enqueued_out != NULL) *enqueued_out = enqueued;
  return err;
}

/* Move every entry under one index prefix through `step`, bounded by the
 * count of entries in that state when the transaction began. */
typedef void (*step_fn)(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms);

static vs_err move_all(vs_outbox *ob, MDB_dbi dbi, const uint8_t *prefix, size_t prefix_bytes,
                       vs_outbox_state from, step_fn step, uint64_t now_ms, uint64_t max, uint64_t *count_out) {
  vs_obx_txn t;
  vs_err err = vs_obx_begin(ob, &t);
  if (err != VS_OK) return err;
  uint64_t bound = *vs_obx_count_slot(&t.counts, from);
  if (bound > max) bound = max;
  uint64_t n = 0;
  while (err == VS_OK && n < bound) {
    bool found;
    uint64_t time_ms, lsn;
    err = vs_obx_first_key(t.txn, dbi, prefix, prefix_bytes, &found, &time_ms, &lsn);
    if (err != VS_OK || !found) break;
    vs_outbox_entry old_e, e;
    err = vs_obx_get(ob, &t, lsn, &old_e);
    if (err == VS_ERR_NOTFOUND || (err == VS_OK && old_e.state != from)) err = VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    e = old_e;
    if (step != NULL) {
      step(&e, &ob->policy, now_ms);
      err = vs_obx_write(ob, &t, &old_e, &e);
    } else { /* purge */
      uint8_t ikey[INDEX_KEY_BYTES_MAX], key[ENTRY_KEY_BYTES];
      size_t ikey_bytes;
      MDB_dbi idbi = vs_obx_index_key(ob->store, ob->sink, &old_e, ikey, &ikey_bytes);
      MDB_val ik = {ikey_bytes, ikey}, k = {sizeof key, key};
      vs_obx_entry_key(key, ob->sink, lsn);
      t.dirty = true;
      t.ec_lsn = 0;
      err = vs_mdb_err(mdb_del(t.txn, idbi, &ik, NULL));
      if (err == VS_OK) err = vs_mdb_err(mdb_del(t.txn, ob->store->dbi_outbox, &k, NULL));
      (*vs_obx_count_slot(&t.counts, from))--;
      t.removed++;
    }
    n++;
  }
  err = vs_obx_finish(ob, &t, err);
  if (count_out != NULL) *count_out = err == VS_OK ? n : 0;
  return err;
}

static void step_requeue(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms) {
  e->lease_until_ms = 0;
  e->updated_at_ms = now_ms;
  if (vs_retry_exhausted(policy, e->attempts)) {
    e->state = VS_OUTBOX_FAILED;
    vs_obx_set_reason(e, "interrupted by a restart during the last attempt", NULL);
  } else {
    e->state = VS_OUTBOX_PENDING;
    e->next_attempt_at_ms = now_ms;
    vs_obx_set_reason(e, "requeued after a restart", NULL);
  }
}

static void step_unfail(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms) {
  (void)policy;
  e->state = VS_OUTBOX_PENDING;
  e->attempts = 0;
  e->next_attempt_at_ms = now_ms;
  e->updated_at_ms = now_ms;
}

vs_err vs_outbox_requeue_inflight(vs_outbox *outbox, uint64_t now_ms, uint64_t *count_out) {
  if (outbox == NULL) return VS_ERR_INVAL;
  if (!vs_store_is_owner(outbox->store)) return VS_ERR_NOT_OWNER;
  uint8_t prefix[4];
  vs_put_u32be(prefix, outbox->sink);
  return move_all(outbox, outbox->store->dbi_obx_lease, prefix, sizeof prefix, VS_OUTBOX_INFLIGHT, step_requeue,
                  now_ms, UINT64_MAX, count_out);
}

vs_err vs_outbox_retry_failed(vs_outbox *outbox, uint64_t now_ms, uint64_t *count_out) {
  if (outbox == NULL) return VS_ERR_INVAL;
  uint8_t prefix[5];
  vs_put_u32be(prefix, outbox->sink);
  prefix[4] = VS_OUTBOX_FAILED;
  return move_all(outbox, outbox->store->dbi_obx_state, prefix, sizeof prefix, VS_OUTBOX_FAILED, step_unfail,
                  now_ms, UINT64_MAX, count_out);
}

/* Purge: walk this sink's entries in LSN order, a pass of up to PURGE_PASS
 * DONE entries at a time (listed with a cursor, then deleted by key, with
 * the DONE index key of an older store if there is one). Bounded: every
 * entry of the sink is visited at most once, and at most max_entries go. */
#define PURGE_PASS 1024u
vs_err vs_outbox_purge_done(vs_outbox *outbox, uint64_t max_entries, uint64_t *count_out) {
  if (outbox == NULL) return VS_ERR_INVAL;
  vs_obx_txn t;
  vs_err err = vs_obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  uint64_t purged = 0, from = 0, lsns[PURGE_PASS], done_at_start = t.counts.done;
  bool more = true;
  while (err == VS_OK && more && purged < max_entries && purged < done_at_start) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t.txn, outbox->store->dbi_outbox, &cur);
    if (rc != MDB_SUCCESS) {
      err = vs_mdb_err(rc);
      break;
    }
    uint8_t key[ENTRY_KEY_BYTES];
    vs_obx_entry_key(key, outbox->sink, from);
    MDB_val k = {sizeof key, key}, v;
    uint64_t want = max_entries - purged < PURGE_PASS ? max_entries - purged : PURGE_PASS;
    uint32_t listed = 0;
    more = false;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (k.mv_size != ENTRY_KEY_BYTES || vs_get_u32be(k.mv_data) != outbox->sink) break;
      const uint8_t *e = v.mv_data;
      if (v.mv_size < ENTRY_FIXED_BYTES) {
        rc = MDB_CORRUPTED;
        break;
      }
      uint64_t lsn = vs_get_u64be((const uint8_t *)k.mv_data + 4);
      if (e[1] == VS_OUTBOX_DONE) {
        if (listed == want) { /* the next pass starts here */
          more = true;
          break;
        }
        lsns[listed++] = lsn;
      }
      from = lsn + 1;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
    for (uint32_t i = 0; i < listed && err == VS_OK; i++) {
      uint8_t ikey[13];
      vs_put_u32be(ikey, outbox->sink);
      ikey[4] = VS_OUTBOX_DONE;
      vs_put_u64be(ikey + 5, lsns[i]);
      MDB_val ik = {sizeof ikey, ikey}, ek = {sizeof key, key};
      vs_obx_entry_key(key, outbox->sink, lsns[i]);
      rc = mdb_del(t.txn, outbox->store->dbi_obx_state, &ik, NULL);
      if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) rc = mdb_del(t.txn, outbox->store->dbi_outbox, &ek, NULL);
      err = vs_mdb_err(rc);
      if (err == VS_OK) {
        t.dirty = true;
        t.counts.done--;
        t.removed++;
        purged++;
      }
    }
    if (listed > 0 && err == VS_OK) from = lsns[listed - 1] + 1;
  }
  err = vs_obx_finish(outbox, &t, err);
  if (count_out != NULL) *count_out = err == VS_OK ? purged : 0;
  return err;
}
