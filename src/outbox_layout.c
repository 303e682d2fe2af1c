#define _POSIX_C_SOURCE 200809L /* strnlen, snprintf */
/* The outbox: a durable per-sink delivery state machine over LMDB.
 *
 * Layout. Entries: outbox[(sink u32be, lsn u64be)] = entry. An entry that
 * can still move has exactly one index key, by state, so that every scan the
 * engine needs is an ordered range read instead of a full scan:
 *   PENDING   obx_ready[(sink, next_attempt_at u64be, lsn)]  claim order
 *   INFLIGHT  obx_lease[(sink, lease_until u64be, lsn)]      lease expiry
 *   FAILED    obx_state[(sink, 3, lsn)]                      retry_failed
 *   DONE      none: nothing scans DONE entries but a purge, which walks the
 *             entries in LSN order (the oldest are the DONE ones). Stores
 *             written before this layout also hold obx_state[(sink, 2, lsn)]
 *             keys; a transition out of DONE (purge) deletes one if present.
 *             One write less per delivered op.
 * Counts per state live in meta["obxcnt" sink] and change with every
 * transition, in the same transaction.
 * A ranges-only sink (vs_outbox_cfg.ranges_only: the mesh) is never claimed
 * from: its PENDING entries carry no obx_ready key, and
 * meta["obxrng" sink] = [1][u64le from] marks it, `from` being the first
 * LSN that may still be PENDING; ranges complete its entries in LSN order
 * from there. (Counts and the mark are sinks.c's keys.)
 */
#include "chain.h"
#include "outbox_int.h"

#include <stdio.h>
#include <string.h>

/* ---- transitions and counts: what may happen (asserted on every write) ---- */

/* outbox.h's diagram, and the moves it does not draw: a late DONE from
 * PENDING or FAILED (the delivery happened all the same), a range
 * completing PENDING entries, a fork verdict failing PENDING ones. Nothing
 * leaves DONE but a purge, which deletes the entry; no move stays put. */
bool vs_obx_transition_legal(vs_outbox_state from, vs_outbox_state to) {
  switch (from) {
    case VS_OUTBOX_PENDING: /* claim; range or late DONE; fork verdict */
      return to == VS_OUTBOX_INFLIGHT || to == VS_OUTBOX_DONE || to == VS_OUTBOX_FAILED;
    case VS_OUTBOX_INFLIGHT: /* complete; retry, lease end, release, requeue; fail */
      return to == VS_OUTBOX_DONE || to == VS_OUTBOX_PENDING || to == VS_OUTBOX_FAILED;
    case VS_OUTBOX_FAILED: /* retry_failed; late DONE */
      return to == VS_OUTBOX_PENDING || to == VS_OUTBOX_DONE;
    case VS_OUTBOX_DONE: break;
  }
  return false;
}

uint64_t vs_obx_counts_total(const vs_outbox_counts *c) {
  return c->pending + c->inflight + c->done + c->failed; /* mod 2^64: a wrap shows in consistent() */
}

bool vs_obx_counts_consistent(const vs_outbox_counts *c, uint64_t total_before, uint64_t added, uint64_t removed) {
  uint64_t total = total_before + added - removed;
  if (vs_obx_counts_total(c) != total) return false; /* a move lost or made an entry */
  /* A count that went below zero wrapped to near UINT64_MAX: above the total. */
  return c->pending <= total && c->inflight <= total && c->done <= total && c->failed <= total;
}

/* ---- encoding ---- */

void vs_obx_entry_key(uint8_t key[ENTRY_KEY_BYTES], uint32_t sink, uint64_t lsn) {
  vs_put_u32be(key, sink);
  vs_put_u64be(key + 4, lsn);
}

size_t vs_obx_entry_encode(const vs_outbox_entry *e, uint8_t *buf) {
  assert(e != NULL && buf != NULL);
  assert(e->state <= VS_OUTBOX_FAILED && e->lsn > 0); /* LSNs start at 1 */
  size_t reason_bytes = strnlen(e->reason, VS_OUTBOX_REASON_BYTES_MAX);
  buf[0] = ENTRY_VERSION;
  buf[1] = (uint8_t)e->state;
  vs_put_u16le(buf + 2, (uint16_t)reason_bytes);
  vs_put_u32le(buf + 4, e->attempts);
  vs_put_u64le(buf + 8, e->next_attempt_at_ms);
  vs_put_u64le(buf + 16, e->lease_until_ms);
  vs_put_u64le(buf + 24, e->created_at_ms);
  vs_put_u64le(buf + 32, e->updated_at_ms);
  memcpy(buf + ENTRY_OP_ID_OFFSET, e->op_id.bytes, VS_OP_ID_BYTES);
  vs_put_u32le(buf + ENTRY_OP_BYTES_OFFSET, e->op_bytes);
  memcpy(buf + ENTRY_FIXED_BYTES, e->reason, reason_bytes);
  return ENTRY_FIXED_BYTES + reason_bytes;
}

vs_err vs_obx_entry_decode(const MDB_val *v, uint64_t lsn, vs_outbox_entry *e) {
  const uint8_t *p = v->mv_data;
  if (v->mv_size < ENTRY_FIXED_BYTES || p[0] != ENTRY_VERSION || p[1] > VS_OUTBOX_FAILED) return VS_ERR_CORRUPT;
  uint16_t reason_bytes = vs_get_u16le(p + 2);
  if (reason_bytes > VS_OUTBOX_REASON_BYTES_MAX || v->mv_size != ENTRY_FIXED_BYTES + reason_bytes)
    return VS_ERR_CORRUPT;
  memset(e, 0, sizeof *e);
  e->lsn = lsn;
  e->state = (vs_outbox_state)p[1];
  e->attempts = vs_get_u32le(p + 4);
  e->next_attempt_at_ms = vs_get_u64le(p + 8);
  e->lease_until_ms = vs_get_u64le(p + 16);
  e->created_at_ms = vs_get_u64le(p + 24);
  e->updated_at_ms = vs_get_u64le(p + 32);
  memcpy(e->op_id.bytes, p + ENTRY_OP_ID_OFFSET, VS_OP_ID_BYTES);
  e->op_bytes = vs_get_u32le(p + ENTRY_OP_BYTES_OFFSET);
  memcpy(e->reason, p + ENTRY_FIXED_BYTES, reason_bytes);
  e->reason[reason_bytes] = '\0';
  return VS_OK;
}

/* The one index key of an entry, by its state. */
MDB_dbi vs_obx_index_key(const vs_store *store, uint32_t sink, const vs_outbox_entry *e,
                         uint8_t key[INDEX_KEY_BYTES_MAX], size_t *key_bytes) {
  vs_put_u32be(key, sink);
  switch (e->state) {
    case VS_OUTBOX_PENDING:
    case VS_OUTBOX_INFLIGHT:
      vs_put_u64be(key + 4, e->state == VS_OUTBOX_PENDING ? e->next_attempt_at_ms : e->lease_until_ms);
      vs_put_u64be(key + 12, e->lsn);
      *key_bytes = 20;
      return e->state == VS_OUTBOX_PENDING ? store->dbi_obx_ready : store->dbi_obx_lease;
    case VS_OUTBOX_DONE:
    case VS_OUTBOX_FAILED:
      break;
  }
  key[4] = (uint8_t)e->state;
  vs_put_u64be(key + 5, e->lsn);
  *key_bytes = 13;
  return store->dbi_obx_state;
}

uint64_t *vs_obx_count_slot(vs_outbox_counts *c, vs_outbox_state s) {
  switch (s) {
    case VS_OUTBOX_PENDING: return &c->pending;
    case VS_OUTBOX_INFLIGHT: return &c->inflight;
    case VS_OUTBOX_DONE: return &c->done;
    case VS_OUTBOX_FAILED: break;
  }
  return &c->failed;
}

/* ---- entries ---- */

vs_err vs_obx_entry_get(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t lsn, vs_outbox_entry *e) {
  uint8_t key[ENTRY_KEY_BYTES];
  vs_obx_entry_key(key, sink, lsn);
  MDB_val k = {sizeof key, key}, v;
  int rc = mdb_get(txn, store->dbi_outbox, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  return vs_obx_entry_decode(&v, lsn, e);
}

/* Move the index key and the counts from `old_e`'s state (NULL: a new
 * entry) to `now_e`'s. */
/* Delete index key k of dbi; through ic when given. A step deletes many
 * keys that sit close together (a claim or a range takes them from the
 * front of the ready index): a cursor that stays on the page finds the next
 * one there (LMDB looks at the cursor's own leaf page first), where mdb_del
 * would search from the root each time. */
static int index_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, vs_obx_index_cursor *ic) {
  if (ic == NULL) return mdb_del(txn, dbi, k, NULL);
  if (ic->cur != NULL && ic->dbi != dbi) {
    mdb_cursor_close(ic->cur);
    ic->cur = NULL;
  }
  if (ic->cur == NULL) {
    int rc = mdb_cursor_open(txn, dbi, &ic->cur);
    if (rc != MDB_SUCCESS) {
      ic->cur = NULL;
      return rc;
    }
    ic->dbi = dbi;
  }
  MDB_val v;
  int rc = mdb_cursor_get(ic->cur, k, &v, MDB_SET);
  return rc == MDB_SUCCESS ? mdb_cursor_del(ic->cur, 0) : rc;
}

/* `ranges`: the sink is ranges-only, its PENDING entries are not indexed. */
vs_err vs_obx_index_move(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_entry *old_e,
                         const vs_outbox_entry *now_e, vs_outbox_counts *counts, vs_obx_index_cursor *ic, bool ranges) {
  assert(now_e != NULL && counts != NULL);
  assert(old_e == NULL ? now_e->state == VS_OUTBOX_PENDING : vs_obx_transition_legal(old_e->state, now_e->state));
  uint64_t total_before = vs_obx_counts_total(counts), added = old_e == NULL ? 1 : 0;
  (void)total_before; /* read by asserts only (NDEBUG builds drop them) */
  (void)added;
  uint8_t ikey[INDEX_KEY_BYTES_MAX];
  size_t ikey_bytes;
  int rc;
  if (old_e != NULL && ranges && old_e->state == VS_OUTBOX_PENDING) {
    assert(old_e->lsn == now_e->lsn);
    uint64_t *slot = vs_obx_count_slot(counts, old_e->state);
    if (*slot == 0) return VS_ERR_CORRUPT;
    (*slot)--;
  } else if (old_e != NULL) {
    assert(old_e->lsn == now_e->lsn);
    MDB_dbi dbi = vs_obx_index_key(store, sink, old_e, ikey, &ikey_bytes);
    MDB_val k = {ikey_bytes, ikey};
    rc = index_del(txn, dbi, &k, ic);
    if (rc == MDB_NOTFOUND && old_e->state != VS_OUTBOX_DONE) return VS_ERR_CORRUPT; /* index and entry disagree */
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return vs_mdb_err(rc);
    uint64_t *slot = vs_obx_count_slot(counts, old_e->state);
    if (*slot == 0) return VS_ERR_CORRUPT;
    (*slot)--;
  }
  if (now_e->state == VS_OUTBOX_DONE || (ranges && now_e->state == VS_OUTBOX_PENDING)) { /* not indexed */
    (*vs_obx_count_slot(counts, now_e->state))++;
    assert(vs_obx_counts_consistent(counts, total_before, added, 0));
    return VS_OK;
  }
  MDB_dbi dbi = vs_obx_index_key(store, sink, now_e, ikey, &ikey_bytes);
  MDB_val ik = {ikey_bytes, ikey}, empty = {0, NULL};
  rc = mdb_put(txn, dbi, &ik, &empty, 0);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  (*vs_obx_count_slot(counts, now_e->state))++;
  assert(vs_obx_counts_consistent(counts, total_before, added, 0));
  return VS_OK;
}

/* Store `now_e` (replacing `old_e`, NULL for a new entry): the entry, its
 * index key and the counts move together. */
vs_err vs_obx_entry_write(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_entry *old_e,
                          const vs_outbox_entry *now_e, vs_outbox_counts *counts, vs_obx_index_cursor *ic, bool ranges) {
  assert(old_e == NULL || (old_e->lsn == now_e->lsn && vs_op_id_equal(&old_e->op_id, &now_e->op_id)));
  vs_err err = vs_obx_index_move(txn, store, sink, old_e, now_e, counts, ic, ranges);
  if (err != VS_OK) return err;
  uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
  vs_obx_entry_key(key, sink, now_e->lsn);
  MDB_val k = {sizeof key, key}, v = {vs_obx_entry_encode(now_e, buf), buf};
  return vs_mdb_err(mdb_put(txn, store->dbi_outbox, &k, &v, 0));
}

vs_err vs_obx_enqueue_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t lsn, const vs_op_id *id,
                          uint32_t op_bytes, uint64_t now_ms, vs_outbox_counts *counts, bool ranges) {
  assert(txn != NULL && store != NULL && id != NULL && counts != NULL && lsn > 0);
  vs_outbox_entry e;
  vs_err err = vs_obx_entry_get(txn, store, sink, lsn, &e);
  if (err == VS_OK) return VS_ERR_EXISTS;
  if (err != VS_ERR_NOTFOUND) return err;
  memset(&e, 0, sizeof e);
  e.op_id = *id;
  e.lsn = lsn;
  e.op_bytes = op_bytes;
  e.state = VS_OUTBOX_PENDING;
  e.next_attempt_at_ms = now_ms;
  e.created_at_ms = now_ms;
  e.updated_at_ms = now_ms;
  return vs_obx_entry_write(txn, store, sink, NULL, &e, counts, NULL, ranges);
}

/* ---- transitions: pure functions of (entry, policy, now) ---- */

void vs_obx_set_reason(vs_outbox_entry *e, const char *prefix, const char *reason) {
  snprintf(e->reason, sizeof e->reason, "%s%s", prefix, reason != NULL ? reason : "");
}

void vs_obx_to_retry(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms, const char *reason,
                     uint64_t retry_after_ms) {
  assert(e->state == VS_OUTBOX_INFLIGHT); /* an answer or a lease end: only a sent entry retries */
  e->updated_at_ms = now_ms;
  e->lease_until_ms = 0;
  if (vs_retry_exhausted(policy, e->attempts)) {
    char prefix[48];
    snprintf(prefix, sizeof prefix, "max attempts (%u) reached: ", (unsigned)e->attempts);
    e->state = VS_OUTBOX_FAILED;
    vs_obx_set_reason(e, prefix, reason);
    return;
  }
  uint64_t delay = vs_retry_delay_ms(policy, &e->op_id, e->attempts);
  uint64_t floor_ms = retry_after_ms < policy->max_delay_ms ? retry_after_ms : policy->max_delay_ms;
  if (floor_ms > delay) delay = floor_ms;
  e->state = VS_OUTBOX_PENDING;
  e->next_attempt_at_ms = vs_add_sat_u64(now_ms, delay);
  vs_obx_set_reason(e, "", reason);
}

void vs_obx_to_inflight(vs_outbox_entry *e, uint64_t now_ms, uint64_t lease_ms) {
  assert(e->state == VS_OUTBOX_PENDING);
  e->state = VS_OUTBOX_INFLIGHT;
  if (e->attempts < UINT32_MAX) e->attempts++;
  e->lease_until_ms = vs_add_sat_u64(now_ms, lease_ms);
  e->updated_at_ms = now_ms;
}

/* Find the entry of op `id` for this sink. */
vs_err vs_obx_entry_find(MDB_txn *txn, vs_outbox *ob, const vs_op_id *id, vs_outbox_entry *e) {
  uint64_t lsn;
  vs_err err = vs_opid_get(txn, ob->store, id, &lsn, NULL);
  if (err != VS_OK) return err;
  return vs_obx_entry_get(txn, ob->store, ob->sink, lsn, e);
}

/* The first index key of this sink in `dbi` under `prefix` (4 or 5 bytes):
 * its time field (ready/lease keys) and LSN. *found is false past the sink. */
vs_err vs_obx_first_key(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t prefix_bytes, bool *found,
                        uint64_t *time_out, uint64_t *lsn_out) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k = {prefix_bytes, (void *)prefix}, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  mdb_cursor_close(cur);
  *found = false;
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (k.mv_size < prefix_bytes || memcmp(k.mv_data, prefix, prefix_bytes) != 0) return VS_OK;
  const uint8_t *p = k.mv_data;
  if (k.mv_size == 20) {
    *time_out = vs_get_u64be(p + 4);
    *lsn_out = vs_get_u64be(p + 12);
  } else if (k.mv_size == 13) {
    *time_out = 0;
    *lsn_out = vs_get_u64be(p + 5);
  } else {
    return VS_ERR_CORRUPT;
  }
  *found = true;
  return VS_OK;
}

vs_err vs_obx_void_txn(MDB_txn *txn, const vs_store *store, uint64_t lsn, const char *reason) {
  uint32_t sinks[VS_OUTBOX_SINKS_MAX], n = 0;
  vs_err err = vs_sinks_list(txn, store, sinks, &n);
  for (uint32_t i = 0; i < n && err == VS_OK; i++) { /* bounded: VS_OUTBOX_SINKS_MAX */
    vs_outbox_entry e;
    err = vs_obx_entry_get(txn, store, sinks[i], lsn, &e);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK;
      continue;
    }
    if (err != VS_OK || (e.state != VS_OUTBOX_PENDING && e.state != VS_OUTBOX_INFLIGHT)) continue;
    vs_outbox_counts counts;
    bool ranges = false;
    err = vs_obx_counts_load(txn, store, sinks[i], &counts);
    if (err == VS_OK) err = vs_obx_ranges_only_txn(txn, store, sinks[i], &ranges);
    vs_outbox_entry now_e = e;
    now_e.state = VS_OUTBOX_FAILED;
    now_e.lease_until_ms = 0;
    vs_obx_set_reason(&now_e, "", reason);
    if (err == VS_OK) err = vs_obx_entry_write(txn, store, sinks[i], &e, &now_e, &counts, NULL, ranges);
    if (err == VS_OK) err = vs_obx_counts_save(txn, store, sinks[i], &counts);
  }
  return err;
}
