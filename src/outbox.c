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
 * from there.
 */
#include "vixsync/outbox.h"

#include <stdio.h>
#include <stdlib.h>

#include "chain.h"
#include "internal.h"
#include "wal_int.h"

/* 2: 24-byte op ids (op.h, op-id v2), op_bytes moved from 56 to 64. */
#define ENTRY_VERSION 2u
#define ENTRY_OP_ID_OFFSET 40u
#define ENTRY_OP_BYTES_OFFSET (ENTRY_OP_ID_OFFSET + VS_OP_ID_BYTES)
#define ENTRY_FIXED_BYTES (ENTRY_OP_BYTES_OFFSET + 4u)
#define ENTRY_KEY_BYTES 12u
#define INDEX_KEY_BYTES_MAX 20u
static const char SINK_PREFIX[] = "sink:";
static const char COUNTS_PREFIX[] = "obxcnt";
static const char RANGES_PREFIX[] = "obxrng";
#define RANGES_KEY_BYTES (sizeof RANGES_PREFIX - 1 + 4u)
#define RANGES_VALUE_BYTES 9u

struct vs_outbox {
  vs_store *store;
  uint32_t sink;
  bool is_default; /* the sink every store has from its creation */
  vs_retry_policy policy;
};

const char *vs_outbox_state_name(vs_outbox_state state) {
  switch (state) {
    case VS_OUTBOX_PENDING: return "PENDING";
    case VS_OUTBOX_INFLIGHT: return "INFLIGHT";
    case VS_OUTBOX_DONE: return "DONE";
    case VS_OUTBOX_FAILED: return "FAILED";
  }
  return "?";
}

vs_outbox_cfg vs_outbox_cfg_default(void) {
  vs_outbox_cfg cfg = {VS_OUTBOX_SINK_DEFAULT, VS_RETRY_POLICY_DEFAULT_INIT, false};
  return cfg;
}

/* ---- encoding ---- */

static void entry_key(uint8_t key[ENTRY_KEY_BYTES], uint32_t sink, uint64_t lsn) {
  vs_put_u32be(key, sink);
  vs_put_u64be(key + 4, lsn);
}

static size_t entry_encode(const vs_outbox_entry *e, uint8_t *buf) {
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

static vs_err entry_decode(const MDB_val *v, uint64_t lsn, vs_outbox_entry *e) {
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
static MDB_dbi index_key(const vs_store *store, uint32_t sink, const vs_outbox_entry *e,
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

static uint64_t *count_slot(vs_outbox_counts *c, vs_outbox_state s) {
  switch (s) {
    case VS_OUTBOX_PENDING: return &c->pending;
    case VS_OUTBOX_INFLIGHT: return &c->inflight;
    case VS_OUTBOX_DONE: return &c->done;
    case VS_OUTBOX_FAILED: break;
  }
  return &c->failed;
}

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

/* ---- entries ---- */

static vs_err entry_get(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t lsn, vs_outbox_entry *e) {
  uint8_t key[ENTRY_KEY_BYTES];
  entry_key(key, sink, lsn);
  MDB_val k = {sizeof key, key}, v;
  int rc = mdb_get(txn, store->dbi_outbox, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  return entry_decode(&v, lsn, e);
}

/* Move the index key and the counts from `old_e`'s state (NULL: a new
 * entry) to `now_e`'s. */
/* A cursor kept for index deletes within one step (see index_del). */
typedef struct index_cursor {
  MDB_cursor *cur; /* NULL: none yet */
  MDB_dbi dbi;
} index_cursor;

/* Delete index key k of dbi; through ic when given. A step deletes many
 * keys that sit close together (a claim or a range takes them from the
 * front of the ready index): a cursor that stays on the page finds the next
 * one there (LMDB looks at the cursor's own leaf page first), where mdb_del
 * would search from the root each time. */
static int index_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, index_cursor *ic) {
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
static vs_err index_move(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_entry *old_e,
                         const vs_outbox_entry *now_e, vs_outbox_counts *counts, index_cursor *ic, bool ranges) {
  uint8_t ikey[INDEX_KEY_BYTES_MAX];
  size_t ikey_bytes;
  int rc;
  if (old_e != NULL && ranges && old_e->state == VS_OUTBOX_PENDING) {
    assert(old_e->lsn == now_e->lsn);
    uint64_t *slot = count_slot(counts, old_e->state);
    if (*slot == 0) return VS_ERR_CORRUPT;
    (*slot)--;
  } else if (old_e != NULL) {
    assert(old_e->lsn == now_e->lsn);
    MDB_dbi dbi = index_key(store, sink, old_e, ikey, &ikey_bytes);
    MDB_val k = {ikey_bytes, ikey};
    rc = index_del(txn, dbi, &k, ic);
    if (rc == MDB_NOTFOUND && old_e->state != VS_OUTBOX_DONE) return VS_ERR_CORRUPT; /* index and entry disagree */
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return vs_mdb_err(rc);
    uint64_t *slot = count_slot(counts, old_e->state);
    if (*slot == 0) return VS_ERR_CORRUPT;
    (*slot)--;
  }
  if (now_e->state == VS_OUTBOX_DONE || (ranges && now_e->state == VS_OUTBOX_PENDING)) { /* not indexed */
    (*count_slot(counts, now_e->state))++;
    return VS_OK;
  }
  MDB_dbi dbi = index_key(store, sink, now_e, ikey, &ikey_bytes);
  MDB_val ik = {ikey_bytes, ikey}, empty = {0, NULL};
  rc = mdb_put(txn, dbi, &ik, &empty, 0);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  (*count_slot(counts, now_e->state))++;
  return VS_OK;
}

/* Store `now_e` (replacing `old_e`, NULL for a new entry): the entry, its
 * index key and the counts move together. */
static vs_err entry_write(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_entry *old_e,
                          const vs_outbox_entry *now_e, vs_outbox_counts *counts, index_cursor *ic, bool ranges) {
  vs_err err = index_move(txn, store, sink, old_e, now_e, counts, ic, ranges);
  if (err != VS_OK) return err;
  uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
  entry_key(key, sink, now_e->lsn);
  MDB_val k = {sizeof key, key}, v = {entry_encode(now_e, buf), buf};
  return vs_mdb_err(mdb_put(txn, store->dbi_outbox, &k, &v, 0));
}

/* meta["obxrng" sink]: *on, and the mark when on. */
static vs_err ranges_get(MDB_txn *txn, const vs_store *store, uint32_t sink, bool *on, uint64_t *from) {
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
static vs_err ranges_put(MDB_txn *txn, const vs_store *store, uint32_t sink, bool on, uint64_t from) {
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
  return ranges_get(txn, store, sink, on_out, &from);
}

vs_err vs_obx_enqueue_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t lsn, const vs_op_id *id,
                          uint32_t op_bytes, uint64_t now_ms, vs_outbox_counts *counts, bool ranges) {
  vs_outbox_entry e;
  vs_err err = entry_get(txn, store, sink, lsn, &e);
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
  return entry_write(txn, store, sink, NULL, &e, counts, NULL, ranges);
}

/* ---- transitions: pure functions of (entry, policy, now) ---- */

static void set_reason(vs_outbox_entry *e, const char *prefix, const char *reason) {
  snprintf(e->reason, sizeof e->reason, "%s%s", prefix, reason != NULL ? reason : "");
}

static void to_retry(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms, const char *reason,
                     uint64_t retry_after_ms) {
  e->updated_at_ms = now_ms;
  e->lease_until_ms = 0;
  if (vs_retry_exhausted(policy, e->attempts)) {
    char prefix[48];
    snprintf(prefix, sizeof prefix, "max attempts (%u) reached: ", (unsigned)e->attempts);
    e->state = VS_OUTBOX_FAILED;
    set_reason(e, prefix, reason);
    return;
  }
  uint64_t delay = vs_retry_delay_ms(policy, &e->op_id, e->attempts);
  uint64_t floor_ms = retry_after_ms < policy->max_delay_ms ? retry_after_ms : policy->max_delay_ms;
  if (floor_ms > delay) delay = floor_ms;
  e->state = VS_OUTBOX_PENDING;
  e->next_attempt_at_ms = vs_add_sat_u64(now_ms, delay);
  set_reason(e, "", reason);
}

static void to_inflight(vs_outbox_entry *e, uint64_t now_ms, uint64_t lease_ms) {
  assert(e->state == VS_OUTBOX_PENDING);
  e->state = VS_OUTBOX_INFLIGHT;
  if (e->attempts < UINT32_MAX) e->attempts++;
  e->lease_until_ms = vs_add_sat_u64(now_ms, lease_ms);
  e->updated_at_ms = now_ms;
}

/* ---- the handle ---- */

static bool sink_name_ok(const char *name, size_t *len_out) {
  size_t n = strnlen(name, VS_OUTBOX_SINK_NAME_BYTES_MAX + 1);
  *len_out = n;
  return vs_op_kind_check(name, n) == VS_OK && n <= VS_OUTBOX_SINK_NAME_BYTES_MAX;
}

static vs_err sink_lookup(MDB_txn *txn, const vs_store *store, const char *name, size_t name_bytes, uint32_t *id) {
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

static vs_err sink_put(MDB_txn *txn, const vs_store *store, const char *name, size_t name_bytes, uint32_t id) {
  uint8_t key[sizeof SINK_PREFIX - 1 + VS_OUTBOX_SINK_NAME_BYTES_MAX], buf[4];
  memcpy(key, SINK_PREFIX, sizeof SINK_PREFIX - 1);
  memcpy(key + sizeof SINK_PREFIX - 1, name, name_bytes);
  vs_put_u32le(buf, id);
  MDB_val k = {sizeof SINK_PREFIX - 1 + name_bytes, key}, v = {sizeof buf, buf};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, MDB_NOOVERWRITE));
}

vs_err vs_sinks_init(MDB_txn *txn, const vs_store *store) {
  return sink_put(txn, store, VS_OUTBOX_SINK_DEFAULT, sizeof VS_OUTBOX_SINK_DEFAULT - 1, 0);
}

/* The registry meta["sink:" name] = id u32le, read in one cursor pass:
 * names and ids in id order ("default" is 0). Bounded by
 * VS_OUTBOX_SINKS_MAX (more is corruption). Counts are left zero. */
static vs_err sinks_scan(MDB_txn *txn, const vs_store *store, vs_sink_info out[VS_OUTBOX_SINKS_MAX],
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
  vs_err err = sinks_scan(txn, store, sinks, count_out);
  for (uint32_t i = 0; err == VS_OK && i < *count_out; i++) ids_out[i] = sinks[i].id;
  return err;
}

vs_err vs_outbox_sinks(vs_store *store, vs_sink_info *out, uint32_t max, uint32_t *count_out) {
  if (store == NULL || count_out == NULL || (out == NULL && max > 0)) return VS_ERR_INVAL;
  *count_out = 0;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t n = 0;
  err = sinks_scan(txn, store, sinks, &n);
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
    err = entry_get(txn, store, sink, lsn, &e);
    if (err == VS_OK && (e.state != VS_OUTBOX_INFLIGHT || counts->inflight == 0)) err = VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    e.state = VS_OUTBOX_PENDING; /* its attempt stays spent, as on a restart */
    e.lease_until_ms = 0;
    uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
    entry_key(key, sink, lsn);
    MDB_val ek = {sizeof key, key}, ev = {entry_encode(&e, buf), buf};
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
    if (err == VS_OK) err = ranges_put(txn, store, sink, true, min_lsn != UINT64_MAX ? min_lsn : last + 1);
  } else {
    /* Index the PENDING entries again: all at or after the mark. */
    MDB_cursor *cur;
    err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_outbox, &cur));
    if (err != VS_OK) return err;
    uint8_t key[ENTRY_KEY_BYTES];
    entry_key(key, sink, from);
    MDB_val k = {sizeof key, key}, v;
    int rc;
    /* Bounded by the sink's entries. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && err == VS_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (k.mv_size != ENTRY_KEY_BYTES || vs_get_u32be(k.mv_data) != sink) break;
      vs_outbox_entry e;
      err = entry_decode(&v, vs_get_u64be((const uint8_t *)k.mv_data + 4), &e);
      if (err != VS_OK || e.state != VS_OUTBOX_PENDING) continue;
      uint8_t ikey[INDEX_KEY_BYTES_MAX];
      size_t ikey_bytes;
      MDB_dbi dbi = index_key(store, sink, &e, ikey, &ikey_bytes);
      MDB_val ik = {ikey_bytes, ikey}, empty = {0, NULL};
      err = vs_mdb_err(mdb_put(txn, dbi, &ik, &empty, 0));
    }
    if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
    mdb_cursor_close(cur);
    if (err == VS_OK) err = ranges_put(txn, store, sink, false, 0);
  }
  if (err == VS_OK) err = vs_obx_counts_save(txn, store, sink, &c);
  return err;
}

vs_err vs_outbox_open(vs_store *store, const vs_outbox_cfg *cfg, vs_outbox **outbox_out) {
  if (store == NULL || outbox_out == NULL) return VS_ERR_INVAL;
  *outbox_out = NULL;
  vs_outbox_cfg def = vs_outbox_cfg_default();
  if (cfg == NULL) cfg = &def;
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
  err = sink_lookup(txn, store, name, name_bytes, &ob->sink);
  if (err == VS_ERR_NOTFOUND) {
    uint32_t ids[VS_OUTBOX_SINKS_MAX], n = 0;
    err = vs_sinks_list(txn, store, ids, &n);
    if (err == VS_OK && n >= VS_OUTBOX_SINKS_MAX) err = VS_ERR_LIMIT;
    if (err == VS_OK) {
      ob->sink = n == 0 ? 0 : ids[n - 1] + 1;
      err = sink_put(txn, store, name, name_bytes, ob->sink);
    }
    changed = true;
  }
  if (err == VS_OK) err = ranges_get(txn, store, ob->sink, &ranges, &from);
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

/* ---- operations ---- */

/* A write transaction with this sink's counts loaded; `finish` saves the
 * counts and commits, or aborts when err is not VS_OK. */
typedef struct obx_txn {
  MDB_txn *txn;
  vs_outbox_counts counts;
  bool dirty;      /* something was written: commit (else the txn is dropped) */
  MDB_cursor *ec;  /* on the entries: a read and the rewrite of the same entry
                      share one tree search; opened on first use */
  uint64_t ec_lsn; /* the entry ec is on; 0 = none */
  index_cursor ic; /* for index deletes */
  bool ranges;     /* the sink is ranges-only: rng_from is its mark */
  uint64_t rng_from;
  bool rng_dirty;  /* the mark moved: saved at commit */
} obx_txn;

static vs_err obx_begin(vs_outbox *ob, obx_txn *t) {
  t->dirty = false;
  t->ec = NULL;
  t->ec_lsn = 0;
  t->ic.cur = NULL;
  vs_err err = vs_txn_begin(ob->store, true, &t->txn);
  if (err != VS_OK) return err;
  err = vs_obx_counts_load(t->txn, ob->store, ob->sink, &t->counts);
  t->rng_dirty = false;
  if (err == VS_OK) err = ranges_get(t->txn, ob->store, ob->sink, &t->ranges, &t->rng_from);
  if (err != VS_OK) mdb_txn_abort(t->txn);
  return err;
}

/* Commit what the step changed. A step that changed nothing (an idle tick)
 * commits nothing: no disk write, no fsync. */
static vs_err obx_finish(vs_outbox *ob, obx_txn *t, vs_err err) {
  if (t->ec != NULL) mdb_cursor_close(t->ec);
  t->ec = NULL;
  if (t->ic.cur != NULL) mdb_cursor_close(t->ic.cur);
  t->ic.cur = NULL;
  if (err == VS_OK && !t->dirty) {
    mdb_txn_abort(t->txn);
    return VS_OK;
  }
  if (err == VS_OK) err = vs_obx_counts_save(t->txn, ob->store, ob->sink, &t->counts);
  if (err == VS_OK && t->rng_dirty) err = ranges_put(t->txn, ob->store, ob->sink, true, t->rng_from);
  if (err != VS_OK) {
    mdb_txn_abort(t->txn);
    return err;
  }
  return vs_txn_commit(t->txn);
}

/* The step's cursor on the entries, opened on first use. */
static vs_err obx_cursor(vs_outbox *ob, obx_txn *t) {
  if (t->ec != NULL) return VS_OK;
  int rc = mdb_cursor_open(t->txn, ob->store->dbi_outbox, &t->ec);
  if (rc != MDB_SUCCESS) t->ec = NULL;
  return vs_mdb_err(rc);
}

/* Read entry `lsn` inside a step's transaction, leaving the entries cursor
 * on it for obx_write. */
static vs_err obx_get(vs_outbox *ob, obx_txn *t, uint64_t lsn, vs_outbox_entry *e) {
  t->ec_lsn = 0;
  vs_err cerr = obx_cursor(ob, t);
  if (cerr != VS_OK) return cerr;
  uint8_t key[ENTRY_KEY_BYTES];
  entry_key(key, ob->sink, lsn);
  MDB_val k = {sizeof key, key}, v;
  vs_err err = vs_mdb_err(mdb_cursor_get(t->ec, &k, &v, MDB_SET_KEY));
  if (err == VS_OK) err = entry_decode(&v, lsn, e);
  if (err == VS_OK) t->ec_lsn = lsn;
  return err;
}

/* entry_write inside a step's transaction. Rewriting the entry obx_get just
 * read goes through the cursor that is on it (no second search). */
static vs_err obx_write(vs_outbox *ob, obx_txn *t, const vs_outbox_entry *old_e, const vs_outbox_entry *now_e) {
  t->dirty = true;
  if (old_e != NULL && t->ec != NULL && t->ec_lsn != old_e->lsn) {
    /* A step writes back the entries it read, youngest first: the cursor
     * finds each on the page it is on, or one next to it. */
    uint8_t key[ENTRY_KEY_BYTES];
    entry_key(key, ob->sink, old_e->lsn);
    MDB_val k = {sizeof key, key}, v;
    int rc = mdb_cursor_get(t->ec, &k, &v, MDB_SET);
    t->ec_lsn = rc == MDB_SUCCESS ? old_e->lsn : 0;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return vs_mdb_err(rc);
  }
  if (old_e == NULL || t->ec_lsn != old_e->lsn) {
    t->ec_lsn = 0; /* a put beside the cursor: do not trust its place */
    return entry_write(t->txn, ob->store, ob->sink, old_e, now_e, &t->counts, &t->ic, t->ranges);
  }
  vs_err err = index_move(t->txn, ob->store, ob->sink, old_e, now_e, &t->counts, &t->ic, t->ranges);
  if (err != VS_OK) return err;
  uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
  entry_key(key, ob->sink, now_e->lsn);
  MDB_val k = {sizeof key, key}, v = {entry_encode(now_e, buf), buf};
  return vs_mdb_err(mdb_cursor_put(t->ec, &k, &v, MDB_CURRENT));
}

/* Find the entry of op `id` for this sink. */
static vs_err entry_find(MDB_txn *txn, vs_outbox *ob, const vs_op_id *id, vs_outbox_entry *e) {
  uint64_t lsn;
  vs_err err = vs_opid_get(txn, ob->store, id, &lsn, NULL);
  if (err != VS_OK) return err;
  return entry_get(txn, ob->store, ob->sink, lsn, e);
}

/* entry_find inside a step's transaction. `lsn_hint` (0 = none) is where the
 * caller believes the entry is: used when the entry there is this op's. */
static vs_err obx_find(vs_outbox *ob, obx_txn *t, const vs_op_id *id, uint64_t lsn_hint, vs_outbox_entry *e) {
  if (lsn_hint != 0) {
    vs_err err = obx_get(ob, t, lsn_hint, e);
    if (err == VS_OK && vs_op_id_equal(&e->op_id, id)) return VS_OK;
    if (err != VS_OK && err != VS_ERR_NOTFOUND) return err;
  }
  uint64_t lsn;
  vs_err err = vs_opid_get(t->txn, ob->store, id, &lsn, NULL);
  if (err != VS_OK) return err;
  return obx_get(ob, t, lsn, e);
}

/* The first index key of this sink in `dbi` under `prefix` (4 or 5 bytes):
 * its time field (ready/lease keys) and LSN. *found is false past the sink. */
static vs_err first_key(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t prefix_bytes, bool *found,
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

/* ---- backfill: entries for what was written before the sink ---- */

#define FILL_RECORDS_PER_TXN 10000u
#define FILL_VALUE_BYTES 17u /* version 1, LSN reached u64le, LSN to reach u64le */
static const char FILL_PREFIX[] = "sinkfill";

/* One transaction of the scan: up to FILL_RECORDS_PER_TXN records, read in
 * LSN order through a WAL cursor. */
static vs_err fill_step(vs_outbox *ob, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms, uint64_t *enqueued,
                        uint64_t *end_out, bool *finished) {
  obx_txn t;
  vs_err err = obx_begin(ob, &t);
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
      return obx_finish(ob, &t, VS_OK); /* nothing written: dropped */
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
    if (err == VS_OK) added++;
    else if (err == VS_ERR_EXISTS) err = VS_OK; /* written after the sink was registered */
  }
  vs_wal_reader_close(&wr);
  val[0] = 1;
  vs_put_u64le(val + 1, stop);
  vs_put_u64le(val + 9, end);
  MDB_val nv = {sizeof val, val};
  t.dirty = true; /* the progress, even when nothing was enqueued */
  if (err == VS_OK) err = vs_mdb_err(mdb_put(t.txn, ob->store->dbi_meta, &k, &nv, 0));
  err = obx_finish(ob, &t, err);
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

vs_err vs_outbox_enqueue(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms) {
  if (outbox == NULL || id == NULL) return VS_ERR_INVAL;
  obx_txn t;
  vs_err err = obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  uint64_t lsn;
  uint32_t op_bytes = 0;
  err = vs_opid_get(t.txn, outbox->store, id, &lsn, NULL);
  if (err == VS_OK) err = vs_wal_op_bytes_txn(t.txn, outbox->store, lsn, &op_bytes);
  t.dirty = true;
  if (err == VS_OK)
    err = vs_obx_enqueue_txn(t.txn, outbox->store, outbox->sink, lsn, id, op_bytes, now_ms, &t.counts, t.ranges);
  return obx_finish(outbox, &t, err);
}

vs_err vs_outbox_get(vs_outbox *outbox, const vs_op_id *id, vs_outbox_entry *entry_out) {
  if (outbox == NULL || id == NULL || entry_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(outbox->store, false, &txn);
  if (err != VS_OK) return err;
  err = entry_find(txn, outbox, id, entry_out);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_outbox_claim(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms, uint64_t lease_ms,
                       vs_outbox_entry *entry_out) {
  if (outbox == NULL || id == NULL) return VS_ERR_INVAL;
  if (lease_ms == 0) return VS_ERR_INVAL;
  obx_txn t;
  vs_err err = obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  vs_outbox_entry old_e = {0}, e;
  err = obx_find(outbox, &t, id, 0, &old_e);
  e = old_e;
  if (err == VS_OK && (old_e.state != VS_OUTBOX_PENDING || old_e.next_attempt_at_ms > now_ms)) err = VS_ERR_STATE;
  if (err == VS_OK) {
    to_inflight(&e, now_ms, lease_ms);
    err = obx_write(outbox, &t, &old_e, &e);
  }
  vs_err done = obx_finish(outbox, &t, err);
  if (entry_out != NULL && (done == VS_OK || done == VS_ERR_STATE)) *entry_out = done == VS_OK ? e : old_e;
  return done;
}

/* Turn expired leases back into retries, oldest lease first. */
static vs_err expire_leases(vs_outbox *ob, obx_txn *t, uint64_t now_ms) {
  uint8_t prefix[4];
  vs_put_u32be(prefix, ob->sink);
  for (uint32_t i = 0; i < VS_OUTBOX_EXPIRE_PER_CALL; i++) {
    bool found;
    uint64_t until, lsn;
    vs_err err = first_key(t->txn, ob->store->dbi_obx_lease, prefix, sizeof prefix, &found, &until, &lsn);
    if (err != VS_OK) return err;
    if (!found || until > now_ms) return VS_OK;
    vs_outbox_entry old_e, e;
    err = obx_get(ob, t, lsn, &old_e);
    if (err != VS_OK) return err == VS_ERR_NOTFOUND ? VS_ERR_CORRUPT : err;
    e = old_e;
    to_retry(&e, &ob->policy, now_ms, "lease expired", 0);
    err = obx_write(ob, t, &old_e, &e);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}

/* Write the transitions olds[i] -> news[i] for i = n-1 down to 0. Why
 * backwards: the entries were listed from the front of an index, oldest
 * first, and LMDB keeps a page's nodes in the order they were inserted, from
 * the top of the page down; deleting the oldest key first moves every
 * younger node of its page (a memmove of up to a page per delete), deleting
 * the youngest first moves none. The transaction ends in the same state. */
static vs_err write_back(vs_outbox *ob, obx_txn *t, const vs_outbox_entry *olds, const vs_outbox_entry *news,
                         uint32_t n) {
  for (uint32_t i = n; i-- > 0;) {
    vs_err err = obx_write(ob, t, &olds[i], &news[i]);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}

/* Claim ready entries in order (next attempt, then LSN) within the limits.
 * One pass of a cursor over the ready index lists them (their LSNs parked in
 * entries_out), then each is read and moved to INFLIGHT in that order. */
/* The LSNs of up to `max` entries from the front of this sink's ready index
 * (claim order) that are due at `due_ms`, with one cursor pass. The moves
 * that follow delete the keys walked, so the listing comes first. */
static vs_err list_ready(vs_outbox *ob, obx_txn *t, uint64_t due_ms, uint32_t max, uint64_t *lsns,
                         uint32_t *listed_out) {
  uint8_t prefix[4];
  vs_put_u32be(prefix, ob->sink);
  *listed_out = 0;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(t->txn, ob->store->dbi_obx_ready, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint32_t listed = 0;
  MDB_val k = {sizeof prefix, prefix}, v;
  /* Bounded by max. */
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && listed < max;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < sizeof prefix || memcmp(k.mv_data, prefix, sizeof prefix) != 0) break;
    if (k.mv_size != 20) {
      rc = MDB_CORRUPTED;
      break;
    }
    if (vs_get_u64be((const uint8_t *)k.mv_data + 4) > due_ms) break; /* not due yet, nor anything after */
    lsns[listed++] = vs_get_u64be((const uint8_t *)k.mv_data + 12);
  }
  mdb_cursor_close(cur);
  *listed_out = listed;
  return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

static vs_err claim_loop(vs_outbox *ob, obx_txn *t, uint64_t now_ms, const vs_outbox_claim_req *req, uint32_t *n_out) {
  *n_out = 0;
  uint32_t listed = 0;
  uint64_t *lsns = req->entries_max > 0 ? malloc(sizeof *lsns * req->entries_max) : NULL;
  if (req->entries_max > 0 && lsns == NULL) return VS_ERR_NOMEM;
  vs_err err = list_ready(ob, t, now_ms, req->entries_max, lsns, &listed);
  vs_outbox_entry *olds = NULL;
  if (err == VS_OK && listed > 0) {
    olds = malloc(sizeof *olds * listed);
    if (olds == NULL) err = VS_ERR_NOMEM;
  }
  uint32_t n = 0;
  uint64_t bytes = 0;
  for (; n < listed && err == VS_OK; n++) {
    err = obx_get(ob, t, lsns[n], &olds[n]);
    if (err == VS_ERR_NOTFOUND || (err == VS_OK && olds[n].state != VS_OUTBOX_PENDING)) err = VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    if (n > 0 && bytes + olds[n].op_bytes > req->bytes_max) break;
    bytes += olds[n].op_bytes;
    req->entries_out[n] = olds[n];
    to_inflight(&req->entries_out[n], now_ms, req->lease_ms);
  }
  if (err == VS_OK) err = write_back(ob, t, olds, req->entries_out, n);
  free(olds);
  free(lsns);
  *n_out = err == VS_OK ? n : 0;
  return err;
}

/* Apply one result inside the transaction. `e_out` gets the entry after. */
static vs_err apply_result(vs_outbox *ob, obx_txn *t, const vs_outbox_result *r, uint64_t now_ms,
                           vs_outbox_verdict *verdict, vs_outbox_entry *e_out) {
  vs_outbox_entry old_e;
  vs_err err = obx_find(ob, t, &r->op_id, r->lsn, &old_e);
  if (err == VS_ERR_NOTFOUND) {
    *verdict = VS_VERDICT_UNKNOWN;
    return VS_OK;
  }
  if (err != VS_OK) return err;
  vs_outbox_entry e = old_e;
  *e_out = old_e;
  if (r->kind == VS_RESULT_DONE) {
    if (old_e.state == VS_OUTBOX_DONE) {
      *verdict = VS_VERDICT_DUPLICATE;
      return VS_OK;
    }
    /* A late DONE still proves delivery: complete it rather than send again. */
    *verdict = old_e.state == VS_OUTBOX_INFLIGHT ? VS_VERDICT_APPLIED : VS_VERDICT_LATE;
    e.state = VS_OUTBOX_DONE;
    e.lease_until_ms = 0;
    e.updated_at_ms = now_ms;
  } else if (old_e.state != VS_OUTBOX_INFLIGHT || (r->attempt != 0 && r->attempt != old_e.attempts)) {
    /* A verdict on an attempt whose lease already ended: the entry has moved
     * on (retried, answered, or sent again), and this answer no longer
     * describes it. */
    *verdict = old_e.state == VS_OUTBOX_DONE ? VS_VERDICT_DUPLICATE : VS_VERDICT_STALE;
    return VS_OK;
  } else if (r->kind == VS_RESULT_RETRY) {
    *verdict = VS_VERDICT_APPLIED;
    to_retry(&e, &ob->policy, now_ms, r->reason, r->retry_after_ms);
  } else {
    *verdict = VS_VERDICT_APPLIED;
    e.state = VS_OUTBOX_FAILED;
    e.lease_until_ms = 0;
    e.updated_at_ms = now_ms;
    set_reason(&e, "", r->reason);
  }
  err = obx_write(ob, t, &old_e, &e);
  if (err == VS_OK) *e_out = e;
  return err;
}

/* Complete the PENDING entries `h` covers, from the front of the ready
 * index, up to the first one it does not cover. Each pass lists up to
 * HELD_PASS LSNs with a cursor, then moves them (the moves delete the keys
 * the cursor walked, so the listing comes first). Bounded by h->max. */
#define HELD_PASS 1024u
/* held_loop for a ranges-only sink: the entries in LSN order from the mark,
 * each completed with one cursor step and an in-place rewrite; DONE and
 * FAILED ones are stepped over (a sink converted from a claimed one may
 * hold them). Stops at the first PENDING entry the range does not cover.
 * Bounded by h->max entries visited. */
static vs_err held_walk(vs_outbox *ob, obx_txn *t, uint64_t now_ms, vs_outbox_held *h) {
  uint64_t upto = vs_op_id_seq(&h->through);
  vs_err cerr = obx_cursor(ob, t);
  if (cerr != VS_OK) return cerr;
  t->ec_lsn = 0; /* the walk moves the cursor */
  uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
  entry_key(key, ob->sink, t->rng_from);
  MDB_val k = {sizeof key, key}, v;
  uint32_t visits = 0;
  vs_err err = VS_OK;
  int rc;
  for (rc = mdb_cursor_get(t->ec, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(t->ec, &k, &v, MDB_NEXT)) {
    if (k.mv_size != ENTRY_KEY_BYTES || vs_get_u32be(k.mv_data) != ob->sink) break; /* past the sink */
    if (visits == h->max) {
      h->more = true;
      break;
    }
    visits++;
    uint64_t lsn = vs_get_u64be((const uint8_t *)k.mv_data + 4);
    vs_outbox_entry e;
    err = entry_decode(&v, lsn, &e);
    if (err != VS_OK) break;
    if (e.state == VS_OUTBOX_PENDING) {
      if (!vs_op_id_same_origin(&e.op_id, &h->through) || vs_op_id_seq(&e.op_id) > upto) break;
      e.state = VS_OUTBOX_DONE;
      e.lease_until_ms = 0;
      e.updated_at_ms = now_ms;
      MDB_val nv = {entry_encode(&e, buf), buf};
      err = vs_mdb_err(mdb_cursor_put(t->ec, &k, &nv, MDB_CURRENT));
      if (err != VS_OK) break;
      if (t->counts.pending == 0) {
        err = VS_ERR_CORRUPT;
        break;
      }
      t->counts.pending--;
      t->counts.done++;
      h->completed++;
      t->dirty = true;
    } else if (e.state == VS_OUTBOX_INFLIGHT) {
      break; /* claimed by hand (vs_outbox_claim): its result or lease decides first */
    }
    t->rng_from = lsn + 1;
    t->rng_dirty = true;
    t->dirty = true;
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

static vs_err held_loop(vs_outbox *ob, obx_txn *t, uint64_t now_ms, vs_outbox_held *h) {
  if (t->ranges) return held_walk(ob, t, now_ms, h);
  uint64_t upto = vs_op_id_seq(&h->through), lsns[HELD_PASS];
  vs_outbox_entry *olds = malloc(sizeof *olds * HELD_PASS * 2), *news = olds + HELD_PASS;
  if (olds == NULL) return VS_ERR_NOMEM;
  vs_err err = VS_OK;
  bool stop = false;
  while (!stop && err == VS_OK && h->completed < h->max) {
    uint32_t listed = 0, want = h->max - h->completed < HELD_PASS ? h->max - h->completed : HELD_PASS;
    err = list_ready(ob, t, UINT64_MAX, want, lsns, &listed); /* delivered: due or not */
    if (err != VS_OK) break;
    if (listed < want) stop = true; /* the ready index ends here */
    uint32_t n = 0;
    for (; n < listed && err == VS_OK; n++) {
      err = obx_get(ob, t, lsns[n], &olds[n]);
      if (err == VS_ERR_NOTFOUND || (err == VS_OK && olds[n].state != VS_OUTBOX_PENDING)) err = VS_ERR_CORRUPT;
      if (err != VS_OK) break;
      if (!vs_op_id_same_origin(&olds[n].op_id, &h->through) || vs_op_id_seq(&olds[n].op_id) > upto) {
        stop = true;
        break;
      }
      news[n] = olds[n];
      news[n].state = VS_OUTBOX_DONE;
      news[n].lease_until_ms = 0;
      news[n].updated_at_ms = now_ms;
    }
    if (err == VS_OK) err = write_back(ob, t, olds, news, n);
    if (err == VS_OK) h->completed += n;
  }
  h->more = !stop && h->completed >= h->max;
  free(olds);
  return err;
}

vs_err vs_outbox_step(vs_outbox *outbox, uint64_t now_ms, const vs_outbox_result *results, uint32_t result_count,
                      vs_outbox_verdict *verdicts_out, const vs_outbox_claim_req *claim, uint32_t *claimed_out) {
  return vs_outbox_step_held(outbox, now_ms, NULL, results, result_count, verdicts_out, claim, claimed_out);
}

vs_err vs_outbox_step_held(vs_outbox *outbox, uint64_t now_ms, vs_outbox_held *held,
                           const vs_outbox_result *results, uint32_t result_count, vs_outbox_verdict *verdicts_out,
                           const vs_outbox_claim_req *claim, uint32_t *claimed_out) {
  if (outbox == NULL || (results == NULL && result_count > 0)) return VS_ERR_INVAL;
  if (held != NULL && held->max > VS_OUTBOX_CLAIM_MAX) return VS_ERR_INVAL;
  if (held != NULL) {
    held->completed = 0;
    held->more = false;
  }
  if (claim != NULL && (claim->lease_ms == 0 || claim->entries_max > VS_OUTBOX_CLAIM_MAX || claimed_out == NULL ||
                        (claim->entries_max > 0 && claim->entries_out == NULL)))
    return VS_ERR_INVAL;
  if (claimed_out != NULL) *claimed_out = 0;
  obx_txn t;
  vs_err err = obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  if (held != NULL) err = held_loop(outbox, &t, now_ms, held);
  for (uint32_t i = 0; i < result_count && err == VS_OK; i++) {
    vs_outbox_verdict v;
    vs_outbox_entry e;
    err = apply_result(outbox, &t, &results[i], now_ms, &v, &e);
    if (verdicts_out != NULL) verdicts_out[i] = v;
  }
  if (err == VS_OK) err = expire_leases(outbox, &t, now_ms);
  uint32_t n = 0;
  if (err == VS_OK && claim != NULL) err = claim_loop(outbox, &t, now_ms, claim, &n);
  err = obx_finish(outbox, &t, err);
  if (err == VS_OK && claimed_out != NULL) *claimed_out = n;
  if (err != VS_OK && held != NULL) held->completed = 0; /* nothing changed */
  return err;
}

vs_err vs_outbox_claim_ready(vs_outbox *outbox, uint64_t now_ms, uint64_t lease_ms, uint32_t max_entries,
                             vs_outbox_entry *entries_out, uint32_t *count_out) {
  if (count_out == NULL) return VS_ERR_INVAL;
  vs_outbox_claim_req req = {lease_ms, max_entries, UINT64_MAX, entries_out};
  return vs_outbox_step(outbox, now_ms, NULL, 0, NULL, &req, count_out);
}

/* One result in its own transaction, for the single-entry calls. */
static vs_err apply_one(vs_outbox *outbox, const vs_outbox_result *r, uint64_t now_ms, vs_outbox_verdict *verdict,
                        vs_outbox_entry *entry_out) {
  if (outbox == NULL || r == NULL) return VS_ERR_INVAL;
  obx_txn t;
  vs_err err = obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  vs_outbox_entry e;
  err = apply_result(outbox, &t, r, now_ms, verdict, &e);
  err = obx_finish(outbox, &t, err);
  if (err == VS_OK && entry_out != NULL && *verdict != VS_VERDICT_UNKNOWN) *entry_out = e;
  return err;
}

vs_err vs_outbox_complete(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms) {
  if (id == NULL) return VS_ERR_INVAL;
  vs_outbox_result r = {*id, VS_RESULT_DONE, 0, 0, NULL, 0};
  vs_outbox_verdict v;
  vs_err err = apply_one(outbox, &r, now_ms, &v, NULL);
  return err == VS_OK && v == VS_VERDICT_UNKNOWN ? VS_ERR_NOTFOUND : err;
}

vs_err vs_outbox_fail(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms, bool retryable, const char *reason,
                      uint64_t retry_after_ms, vs_outbox_entry *entry_out) {
  if (id == NULL) return VS_ERR_INVAL;
  vs_outbox_result r = {*id, retryable ? VS_RESULT_RETRY : VS_RESULT_FAILED, 0, retry_after_ms, reason, 0};
  vs_outbox_verdict v;
  vs_err err = apply_one(outbox, &r, now_ms, &v, entry_out);
  if (err != VS_OK) return err;
  if (v == VS_VERDICT_UNKNOWN) return VS_ERR_NOTFOUND;
  return v == VS_VERDICT_APPLIED ? VS_OK : VS_ERR_STATE;
}

vs_err vs_outbox_release(vs_outbox *outbox, const vs_op_id *ids, uint32_t count, uint64_t now_ms) {
  if (outbox == NULL || (ids == NULL && count > 0)) return VS_ERR_INVAL;
  obx_txn t;
  vs_err err = obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  for (uint32_t i = 0; i < count && err == VS_OK; i++) {
    vs_outbox_entry old_e, e;
    err = obx_find(outbox, &t, &ids[i], 0, &old_e);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK;
      continue;
    }
    if (err != VS_OK || old_e.state != VS_OUTBOX_INFLIGHT) continue;
    e = old_e;
    e.state = VS_OUTBOX_PENDING;
    if (e.attempts > 0) e.attempts--; /* nothing left this process: refund it */
    e.lease_until_ms = 0;
    e.next_attempt_at_ms = now_ms;
    e.updated_at_ms = now_ms;
    err = obx_write(outbox, &t, &old_e, &e);
  }
  return obx_finish(outbox, &t, err);
}

vs_err vs_outbox_set_policy(vs_outbox *outbox, const vs_retry_policy *policy) {
  if (outbox == NULL || vs_retry_policy_check(policy) != VS_OK) return VS_ERR_INVAL;
  outbox->policy = *policy;
  return VS_OK;
}

/* Move every entry under one index prefix through `step`, bounded by the
 * count of entries in that state when the transaction began. */
typedef void (*step_fn)(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms);

static vs_err move_all(vs_outbox *ob, MDB_dbi dbi, const uint8_t *prefix, size_t prefix_bytes,
                       vs_outbox_state from, step_fn step, uint64_t now_ms, uint64_t max, uint64_t *count_out) {
  obx_txn t;
  vs_err err = obx_begin(ob, &t);
  if (err != VS_OK) return err;
  uint64_t bound = *count_slot(&t.counts, from);
  if (bound > max) bound = max;
  uint64_t n = 0;
  while (err == VS_OK && n < bound) {
    bool found;
    uint64_t time_ms, lsn;
    err = first_key(t.txn, dbi, prefix, prefix_bytes, &found, &time_ms, &lsn);
    if (err != VS_OK || !found) break;
    vs_outbox_entry old_e, e;
    err = obx_get(ob, &t, lsn, &old_e);
    if (err == VS_ERR_NOTFOUND || (err == VS_OK && old_e.state != from)) err = VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    e = old_e;
    if (step != NULL) {
      step(&e, &ob->policy, now_ms);
      err = obx_write(ob, &t, &old_e, &e);
    } else { /* purge */
      uint8_t ikey[INDEX_KEY_BYTES_MAX], key[ENTRY_KEY_BYTES];
      size_t ikey_bytes;
      MDB_dbi idbi = index_key(ob->store, ob->sink, &old_e, ikey, &ikey_bytes);
      MDB_val ik = {ikey_bytes, ikey}, k = {sizeof key, key};
      entry_key(key, ob->sink, lsn);
      t.dirty = true;
      t.ec_lsn = 0;
      err = vs_mdb_err(mdb_del(t.txn, idbi, &ik, NULL));
      if (err == VS_OK) err = vs_mdb_err(mdb_del(t.txn, ob->store->dbi_outbox, &k, NULL));
      (*count_slot(&t.counts, from))--;
    }
    n++;
  }
  err = obx_finish(ob, &t, err);
  if (count_out != NULL) *count_out = err == VS_OK ? n : 0;
  return err;
}

static void step_requeue(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms) {
  e->lease_until_ms = 0;
  e->updated_at_ms = now_ms;
  if (vs_retry_exhausted(policy, e->attempts)) {
    e->state = VS_OUTBOX_FAILED;
    set_reason(e, "interrupted by a restart during the last attempt", NULL);
  } else {
    e->state = VS_OUTBOX_PENDING;
    e->next_attempt_at_ms = now_ms;
    set_reason(e, "requeued after a restart", NULL);
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
  obx_txn t;
  vs_err err = obx_begin(outbox, &t);
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
    entry_key(key, outbox->sink, from);
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
      entry_key(key, outbox->sink, lsns[i]);
      rc = mdb_del(t.txn, outbox->store->dbi_obx_state, &ik, NULL);
      if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) rc = mdb_del(t.txn, outbox->store->dbi_outbox, &ek, NULL);
      err = vs_mdb_err(rc);
      if (err == VS_OK) {
        t.dirty = true;
        t.counts.done--;
        purged++;
      }
    }
    if (listed > 0 && err == VS_OK) from = lsns[listed - 1] + 1;
  }
  err = obx_finish(outbox, &t, err);
  if (count_out != NULL) *count_out = err == VS_OK ? purged : 0;
  return err;
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
  err = first_key(txn, outbox->store->dbi_obx_ready, prefix, sizeof prefix, &found, &t_ms, &lsn);
  if (err == VS_OK && found && t_ms < due) due = t_ms;
  if (err == VS_OK) err = first_key(txn, outbox->store->dbi_obx_lease, prefix, sizeof prefix, &found, &t_ms, &lsn);
  if (err == VS_OK && found && t_ms < due) due = t_ms;
  mdb_txn_abort(txn);
  if (err == VS_OK) *due_ms_out = due;
  return err;
}

vs_err vs_obx_void_txn(MDB_txn *txn, const vs_store *store, uint64_t lsn, const char *reason) {
  uint32_t sinks[VS_OUTBOX_SINKS_MAX], n = 0;
  vs_err err = vs_sinks_list(txn, store, sinks, &n);
  for (uint32_t i = 0; i < n && err == VS_OK; i++) { /* bounded: VS_OUTBOX_SINKS_MAX */
    vs_outbox_entry e;
    err = entry_get(txn, store, sinks[i], lsn, &e);
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
    set_reason(&now_e, "", reason);
    if (err == VS_OK) err = entry_write(txn, store, sinks[i], &e, &now_e, &counts, NULL, ranges);
    if (err == VS_OK) err = vs_obx_counts_save(txn, store, sinks[i], &counts);
  }
  return err;
}
