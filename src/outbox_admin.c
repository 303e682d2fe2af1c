/* The outbox's administration (vixsync/outbox.h): backfill a new sink,
 * requeue after a crash, retry what failed, purge what was delivered
 * (resumable: meta["obxpurge" sink], see the purge section). */
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
    if (err == VS_ERR_NOTFOUND) { /* compacted (docs/storage.md): nothing left to enqueue */
      err = VS_OK;
      continue;
    }
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

/* ---- purge: what was delivered goes, in bounded, resumable steps ----
 *
 * meta["obxpurge" sink] = [1][u64le mark] (absent: 0). The invariant: every
 * DONE entry of the sink below the mark has a DONE index key
 * obx_state[(sink, 2, lsn)]. A step first takes the DONE keys (each names
 * a DONE entry below the mark: key and entry go), then walks the entries in
 * LSN order from the mark, deleting the DONE ones and stepping over the
 * others, and moves the mark past every entry it visited. An entry that
 * turns DONE below the mark later (a late result, a retry or requeue that
 * then completes, a range, a lease that ended then completed) gets its DONE
 * key in the transaction of that move (vs_obx_done_note, called by every
 * move to DONE), so nothing is missed; entries that turn DONE at or above
 * the mark, the usual case, cost nothing more. The mark never goes back:
 * over all steps the walk visits each entry at most once, and the keys are
 * written at most once per entry, so the total work is O(entries ever
 * enqueued); each step is bounded by its max_visits. */

static const char PURGE_PREFIX[] = "obxpurge";
#define PURGE_KEY_BYTES (sizeof PURGE_PREFIX - 1 + 4u)
#define PURGE_VALUE_BYTES 9u

static void purge_key(uint8_t key[PURGE_KEY_BYTES], uint32_t sink) {
  memcpy(key, PURGE_PREFIX, sizeof PURGE_PREFIX - 1);
  vs_put_u32be(key + sizeof PURGE_PREFIX - 1, sink);
}

vs_err vs_obx_purge_mark_get(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t *mark_out) {
  uint8_t key[PURGE_KEY_BYTES];
  purge_key(key, sink);
  MDB_val k = {sizeof key, key}, v;
  *mark_out = 0;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  const uint8_t *p = v.mv_data;
  if (v.mv_size != PURGE_VALUE_BYTES || p[0] != 1) return VS_ERR_CORRUPT;
  *mark_out = vs_get_u64le(p + 1);
  return VS_OK;
}

static vs_err purge_mark_put(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t mark) {
  uint8_t key[PURGE_KEY_BYTES], val[PURGE_VALUE_BYTES];
  purge_key(key, sink);
  val[0] = 1;
  vs_put_u64le(val + 1, mark);
  MDB_val k = {sizeof key, key}, v = {sizeof val, val};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

static void done_key(uint8_t key[13], uint32_t sink, uint64_t lsn) {
  vs_put_u32be(key, sink);
  key[4] = VS_OUTBOX_DONE;
  vs_put_u64be(key + 5, lsn);
}

vs_err vs_obx_done_note(vs_outbox *ob, vs_obx_txn *t, uint64_t lsn) {
  if (!t->pmark_loaded) {
    vs_err err = vs_obx_purge_mark_get(t->txn, ob->store, ob->sink, &t->pmark);
    if (err != VS_OK) return err;
    t->pmark_loaded = true;
  }
  if (lsn >= t->pmark) return VS_OK; /* the walk will find it */
  uint8_t key[13];
  done_key(key, ob->sink, lsn);
  MDB_val k = {sizeof key, key}, empty = {0, NULL};
  t->dirty = true;
  return vs_mdb_err(mdb_put(t->txn, ob->store->dbi_obx_state, &k, &empty, 0));
}

/* How far the walk may go: entries a ranges-only sink has not completed yet
 * (from its mark on) wait for their range, and a backfill that has not
 * finished may still look at LSNs past what it reached (an entry purged there
 * would be enqueued again). UINT64_MAX: no limit. */
static vs_err purge_limit(vs_outbox *ob, vs_obx_txn *t, uint64_t *limit_out) {
  *limit_out = t->ranges ? t->rng_from : UINT64_MAX;
  if (ob->is_default) return VS_OK; /* never backfilled */
  uint8_t key[sizeof FILL_PREFIX - 1 + 4];
  memcpy(key, FILL_PREFIX, sizeof FILL_PREFIX - 1);
  vs_put_u32be(key + sizeof FILL_PREFIX - 1, ob->sink);
  MDB_val k = {sizeof key, key}, v;
  int rc = mdb_get(t->txn, ob->store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  const uint8_t *p = v.mv_data;
  if (v.mv_size != FILL_VALUE_BYTES || p[0] != 1) return VS_ERR_CORRUPT;
  uint64_t reached = vs_get_u64le(p + 1), end = vs_get_u64le(p + 9);
  if (reached < end && reached + 1 < *limit_out) *limit_out = reached + 1;
  return VS_OK;
}

/* 1. The DONE keys: entries that turned DONE below the mark (and an older
 * store's keys), each deleted with its key; a key whose entry is gone goes
 * alone. Each key looked at is deleted: bounded by max_visits. *left_out:
 * it stopped at a bound, keys may be left. */
static vs_err purge_keys(vs_outbox *ob, vs_obx_txn *t, uint64_t max_visits, uint64_t budget,
                         vs_outbox_purge_stats *st, bool *left_out) {
  uint8_t prefix[5];
  vs_put_u32be(prefix, ob->sink);
  prefix[4] = VS_OUTBOX_DONE;
  *left_out = true;
  while (st->visited < max_visits && st->purged < budget) {
    bool found;
    uint64_t unused, lsn;
    vs_err err = vs_obx_first_key(t->txn, ob->store->dbi_obx_state, prefix, sizeof prefix, &found, &unused, &lsn);
    if (err != VS_OK) return err;
    if (!found) {
      *left_out = false;
      return VS_OK;
    }
    st->visited++;
    uint8_t ikey[13], key[ENTRY_KEY_BYTES];
    done_key(ikey, ob->sink, lsn);
    vs_obx_entry_key(key, ob->sink, lsn);
    MDB_val ik = {sizeof ikey, ikey}, k = {sizeof key, key};
    t->dirty = true;
    err = vs_mdb_err(mdb_del(t->txn, ob->store->dbi_obx_state, &ik, NULL));
    vs_outbox_entry e;
    if (err == VS_OK) err = vs_obx_entry_get(t->txn, ob->store, ob->sink, lsn, &e);
    if (err == VS_ERR_NOTFOUND) continue;
    /* DONE is final: a key names a DONE entry, counted. */
    if (err == VS_OK && (e.state != VS_OUTBOX_DONE || t->counts.done == 0)) err = VS_ERR_CORRUPT;
    if (err == VS_OK) err = vs_mdb_err(mdb_del(t->txn, ob->store->dbi_outbox, &k, NULL));
    if (err != VS_OK) return err;
    t->counts.done--;
    t->removed++;
    st->purged++;
  }
  return VS_OK;
}

/* 2. The walk in LSN order from the mark, up to `limit`: DONE entries are
 * deleted through the cursor (no DONE key is left: purge_keys took them
 * all), the others stepped over; the mark moves past each entry looked at. */
static vs_err purge_walk(vs_outbox *ob, vs_obx_txn *t, uint64_t mark, uint64_t limit, uint64_t max_visits,
                         uint64_t budget, vs_outbox_purge_stats *st) {
  vs_err err = vs_obx_cursor(ob, t);
  if (err != VS_OK) return err;
  t->ec_lsn = 0; /* the walk moves the cursor */
  uint8_t key[ENTRY_KEY_BYTES];
  vs_obx_entry_key(key, ob->sink, mark);
  MDB_val k = {sizeof key, key}, v;
  uint64_t mark_at_start = mark;
  int rc;
  /* Bounded by max_visits: every round but the last looks at one entry. */
  for (rc = mdb_cursor_get(t->ec, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(t->ec, &k, &v, MDB_NEXT)) {
    if (k.mv_size != ENTRY_KEY_BYTES || vs_get_u32be(k.mv_data) != ob->sink) break; /* past the sink */
    uint64_t lsn = vs_get_u64be((const uint8_t *)k.mv_data + 4);
    assert(lsn >= mark);
    if (lsn >= limit || st->purged == budget) break;
    if (st->visited == max_visits) {
      st->more = true;
      break;
    }
    st->visited++;
    const uint8_t *p = v.mv_data;
    if (v.mv_size < ENTRY_FIXED_BYTES || p[0] != ENTRY_VERSION || p[1] > VS_OUTBOX_FAILED) {
      err = VS_ERR_CORRUPT;
      break;
    }
    if (p[1] == VS_OUTBOX_DONE) {
      if (t->counts.done == 0) {
        err = VS_ERR_CORRUPT;
        break;
      }
      rc = mdb_cursor_del(t->ec, 0); /* the cursor is then on the next entry: MDB_NEXT returns it */
      if (rc != MDB_SUCCESS) break;
      t->counts.done--;
      t->removed++;
      t->dirty = true;
      st->purged++;
    }
    mark = lsn + 1;
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  if (err == VS_OK && mark != mark_at_start) {
    t->dirty = true;
    err = purge_mark_put(t->txn, ob->store, ob->sink, mark);
  }
  return err;
}

/* One step for one sink inside t: the DONE keys, then the walk. */
static vs_err purge_txn(vs_outbox *ob, vs_obx_txn *t, uint64_t max_visits, uint64_t keep_done,
                        vs_outbox_purge_stats *st) {
  uint64_t done_at_start = t->counts.done;
  uint64_t budget = done_at_start > keep_done ? done_at_start - keep_done : 0;
  if (budget == 0 || max_visits == 0) {
    st->more = budget > 0;
    return VS_OK;
  }
  uint64_t mark, limit;
  bool keys_left = false;
  vs_err err = vs_obx_purge_mark_get(t->txn, ob->store, ob->sink, &mark);
  if (err == VS_OK) err = purge_limit(ob, t, &limit);
  if (err == VS_OK) err = purge_keys(ob, t, max_visits, budget, st, &keys_left);
  if (err == VS_OK && keys_left) st->more = st->visited == max_visits && st->purged < budget;
  else if (err == VS_OK) err = purge_walk(ob, t, mark, limit, max_visits, budget, st);
  assert(err != VS_OK || (st->purged <= st->visited && st->visited <= max_visits && st->purged <= budget));
  assert(err != VS_OK || t->counts.done + st->purged == done_at_start);
  return err;
}

static vs_err purge_step(vs_outbox *ob, uint64_t max_visits, uint64_t keep_done, vs_outbox_purge_stats *st) {
  memset(st, 0, sizeof *st);
  vs_obx_txn t;
  vs_err err = vs_obx_begin(ob, &t);
  if (err != VS_OK) return err;
  err = purge_txn(ob, &t, max_visits, keep_done, st);
  err = vs_obx_finish(ob, &t, err);
  if (err != VS_OK) memset(st, 0, sizeof *st); /* nothing changed */
  return err;
}

vs_err vs_outbox_purge_done(vs_outbox *outbox, uint64_t max_entries, uint64_t *count_out) {
  if (count_out != NULL) *count_out = 0;
  if (outbox == NULL) return VS_ERR_INVAL;
  vs_outbox_purge_stats st;
  vs_err err = purge_step(outbox, max_entries, 0, &st);
  if (count_out != NULL) *count_out = st.purged;
  return err;
}

vs_err vs_outbox_purge_sink(vs_store *store, uint32_t sink, uint64_t max_visits, uint64_t keep_done,
                            vs_outbox_purge_stats *stats_out) {
  if (stats_out != NULL) memset(stats_out, 0, sizeof *stats_out);
  if (store == NULL || stats_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  uint32_t ids[VS_OUTBOX_SINKS_MAX], n = 0;
  err = vs_sinks_list(txn, store, ids, &n);
  mdb_txn_abort(txn);
  if (err != VS_OK) return err;
  bool known = false;
  for (uint32_t i = 0; i < n; i++) known = known || ids[i] == sink;
  if (!known) return VS_ERR_NOTFOUND;
  /* A handle of this process only (no sink opened: its settings unchanged;
   * the sink with id 0 is "default", registered with the store). */
  vs_outbox ob;
  memset(&ob, 0, sizeof ob);
  ob.store = store;
  ob.sink = sink;
  ob.is_default = sink == 0;
  return purge_step(&ob, max_visits, keep_done, stats_out);
}
