#define _POSIX_C_SOURCE 200809L
/* Materialized state: last-writer-wins base, counters after it, tombstones.
 *
 * Layout. state[key(target)] = record; key(target) is 't' then the target up
 * to KEY_PREFIX_BYTES, else its first KEY_PREFIX_BYTES bytes and a 16-byte tag
 * (LMDB keys stop at 511 bytes; targets go to 1 KiB). Byte order of keys is
 * byte order of targets except between long targets sharing the prefix, which
 * a dump sorts itself. incrs[tag(target), hlc u64be, origin, seq u64be] =
 * delta i64le keeps every incr, so a late put or del can re-count those after
 * it. seq is in the key because (hlc, origin) need not be unique: a peer's
 * chain may repeat an hlc (acceptance never depends on the clock), and two
 * incrs sharing one key would both count when applied after their base but
 * only once when a late base re-counts them: the state would depend on the
 * arrival order (G5).
 *
 * Record, version 2 (little-endian):
 *   0   1  version            1   1  base kind (0 none, 1 put, 2 del)
 *   2   2  reserved (0)       4   4  target bytes
 *   8   8  base hlc           16 32  base origin
 *   48  8  last hlc           56 32  last origin   (greatest counted op)
 *   88  8  incrs after base   96  8  their sum (two's complement)
 *   104 4  base value bytes   108 32 digest (what the entry adds to the state hash)
 *   140 .. target, then the base value
 *
 * State hash: the XOR of every target's digest, over what the application
 * sees: a tombstone (a del with no incr after it) contributes nothing (all
 * zero), so a store that dropped it (compaction below gc_floor) and one
 * that keeps it have the same hash. A target whose entry is one put (no
 * incr after it) contributes that op's hash: it names the entry exactly
 * (target, value, origin, hlc are all in the op), every replica holds the
 * same op for it, and it is already computed on every path that applies
 * an op. Entries with counted incrs contribute a BLAKE2b-256 of what the
 * entry shows (entry_digest: the total, and the greatest counted op's hlc
 * and origin), which does not depend on how the incr rows are kept (one
 * per op, or folded into per-origin totals). Keeping the digest in the
 * record spares recomputing the old one on every update. (Store format 7;
 * a format-6 store's digests are rewritten when it opens:
 * vs_state_rehash_txn.)
 *
 * gc_floor (meta "gc_floor", u64le, monotone): the highest HLC of a
 * tombstone dropped or an incr row folded into a per-origin total
 * (vs_state_gc_step_txn). A data op with an HLC at or below it cannot be
 * merged as it would have been before: received ones are refused
 * (VS_ERR_BELOW_FLOOR; docs/storage.md, "Dropping tombstones").
 */
#include "vixsync/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "chain.h"
#include "internal.h"
#include "state_int.h"
#include "wal_int.h"

#define REC_VERSION 2u
#define REC_DIGEST_OFFSET 108u
#define REC_FIXED_BYTES 140u
#define KEY_PREFIX_BYTES 448u
#define TAG_BYTES 16u
#define KEY_MARK 0x74u /* 't': LMDB refuses empty keys, and targets may be empty */
#define KEY_BYTES_MAX (1u + KEY_PREFIX_BYTES + TAG_BYTES)
#define INCR_SEEK_BYTES (TAG_BYTES + 8u + VS_ORIGIN_BYTES) /* tag, hlc, origin */
#define INCR_KEY_BYTES (INCR_SEEK_BYTES + 8u)                 /* and seq */
#define BASE_NONE 0u
#define BASE_PUT 1u
#define BASE_DEL 2u
#define I64_TEXT_MAX 21u /* "-9223372036854775808" and a NUL */
_Static_assert(KEY_BYTES_MAX <= 511u, "LMDB's default key size limit");

static const char TAG_DOMAIN[] = "vixsync/target-tag/v1";
static const char ENTRY_DOMAIN[] = "vixsync/state-entry/v1";
static const char META_STATE_HASH[] = "state_hash";
static const char META_BASE_HASH[] = "base_hash"; /* the state hash of the base state (hstate) */

/* A decoded record. Pointers go into the record's bytes. */
typedef struct record {
  uint8_t base_kind;
  uint64_t base_hlc;
  uint8_t base_origin[VS_ORIGIN_BYTES];
  uint64_t last_hlc;
  uint8_t last_origin[VS_ORIGIN_BYTES];
  uint64_t incr_count;
  uint64_t incr_sum;
  uint8_t digest[VS_HASH_BYTES]; /* the entry's part of the state hash */
  const uint8_t *target;
  uint32_t target_bytes;
  const uint8_t *base_value;
  uint32_t base_value_bytes;
} record;

const char *vs_state_kind_name(vs_state_kind kind) {
  switch (kind) {
    case VS_STATE_VALUE: return "put";
    case VS_STATE_COUNTER: return "counter";
    case VS_STATE_TOMBSTONE: return "del";
  }
  return "?";
}

bool vs_parse_i64(const uint8_t *text, uint32_t text_bytes, int64_t *out) {
  if (text == NULL || text_bytes == 0 || text_bytes > 20) return false;
  bool neg = text[0] == '-';
  uint32_t i = neg ? 1u : 0u;
  if (i == text_bytes || text_bytes - i > 19) return false; /* 1 to 19 digits, as state.h says */
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX, v = 0;
  for (; i < text_bytes; i++) { /* at most 19 rounds */
    if (text[i] < '0' || text[i] > '9') return false;
    uint64_t d = (uint64_t)(text[i] - '0');
    if (v > (limit - d) / 10u) return false;
    v = v * 10u + d;
  }
  /* Two's complement by hand: negating INT64_MIN's magnitude is defined in
   * unsigned arithmetic, and the conversion back is exact in range. */
  *out = neg ? (v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v) : (int64_t)v;
  return true;
}

/* Greater in the last-writer-wins order: (hlc, origin) as (integer, bytes). */
static int lww_cmp(uint64_t hlc_a, const uint8_t *origin_a, uint64_t hlc_b, const uint8_t *origin_b) {
  if (hlc_a != hlc_b) return hlc_a < hlc_b ? -1 : 1;
  if (VS_FAULT(VS_FAULT_LWW_TIE)) return 0; /* fault: no tie-break, the first arrival stays */
  return memcmp(origin_a, origin_b, VS_ORIGIN_BYTES);
}

static void target_tag(const uint8_t *target, uint32_t target_bytes, uint8_t tag[TAG_BYTES]) {
  crypto_generichash_state st;
  vs_hash_init(&st, TAG_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)TAG_DOMAIN, sizeof TAG_DOMAIN - 1);
  if (target_bytes > 0) crypto_generichash_update(&st, target, target_bytes);
  crypto_generichash_final(&st, tag, TAG_BYTES);
}

static size_t state_key(const uint8_t *target, uint32_t target_bytes, uint8_t key[KEY_BYTES_MAX]) {
  key[0] = KEY_MARK;
  if (target_bytes <= KEY_PREFIX_BYTES) {
    if (target_bytes > 0) memcpy(key + 1, target, target_bytes);
    return 1u + target_bytes;
  }
  memcpy(key + 1, target, KEY_PREFIX_BYTES);
  target_tag(target, target_bytes, key + 1 + KEY_PREFIX_BYTES);
  return KEY_BYTES_MAX;
}

static vs_err record_decode(const MDB_val *v, record *r) {
  const uint8_t *p = v->mv_data;
  if (v->mv_size < REC_FIXED_BYTES || p[0] != REC_VERSION || p[1] > BASE_DEL) return VS_ERR_CORRUPT;
  r->base_kind = p[1];
  r->target_bytes = vs_get_u32le(p + 4);
  r->base_hlc = vs_get_u64le(p + 8);
  memcpy(r->base_origin, p + 16, VS_ORIGIN_BYTES);
  r->last_hlc = vs_get_u64le(p + 48);
  memcpy(r->last_origin, p + 56, VS_ORIGIN_BYTES);
  r->incr_count = vs_get_u64le(p + 88);
  r->incr_sum = vs_get_u64le(p + 96);
  r->base_value_bytes = vs_get_u32le(p + 104);
  memcpy(r->digest, p + REC_DIGEST_OFFSET, VS_HASH_BYTES);
  if (r->target_bytes > VS_OP_TARGET_BYTES_MAX || r->base_value_bytes > VS_OP_PAYLOAD_BYTES_MAX ||
      v->mv_size != (size_t)REC_FIXED_BYTES + r->target_bytes + r->base_value_bytes)
    return VS_ERR_CORRUPT;
  r->target = p + REC_FIXED_BYTES;
  r->base_value = p + REC_FIXED_BYTES + r->target_bytes;
  return VS_OK;
}

/* Lay out a record in `p` (record_bytes(r) bytes). */
static void record_fill(uint8_t *p, const record *r) {
  p[0] = REC_VERSION;
  p[1] = r->base_kind;
  vs_put_u16le(p + 2, 0);
  vs_put_u32le(p + 4, r->target_bytes);
  vs_put_u64le(p + 8, r->base_hlc);
  memcpy(p + 16, r->base_origin, VS_ORIGIN_BYTES);
  vs_put_u64le(p + 48, r->last_hlc);
  memcpy(p + 56, r->last_origin, VS_ORIGIN_BYTES);
  vs_put_u64le(p + 88, r->incr_count);
  vs_put_u64le(p + 96, r->incr_sum);
  vs_put_u32le(p + 104, r->base_value_bytes);
  memcpy(p + REC_DIGEST_OFFSET, r->digest, VS_HASH_BYTES);
  if (r->target_bytes > 0) memcpy(p + REC_FIXED_BYTES, r->target, r->target_bytes); /* NULL when empty */
  if (r->base_value_bytes > 0) memcpy(p + REC_FIXED_BYTES + r->target_bytes, r->base_value, r->base_value_bytes);
}

static size_t record_bytes(const record *r) { return REC_FIXED_BYTES + (size_t)r->target_bytes + r->base_value_bytes; }

/* The databases a fold writes: the live state (state, incrs) or the base
 * state that compaction folds the ops below the horizon into (hstate,
 * hincrs): one record layout for both. */
typedef struct tables {
  MDB_dbi state, incrs;
} tables;

static tables live_tables(const vs_store *store) { return (tables){store->dbi_state, store->dbi_incrs}; }

static vs_err record_put(MDB_txn *txn, tables t, const uint8_t *key, size_t key_bytes, const record *r) {
  MDB_val k = {key_bytes, (void *)key}, v = {record_bytes(r), NULL};
  int rc = mdb_put(txn, t.state, &k, &v, MDB_RESERVE);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  record_fill(v.mv_data, r);
  return VS_OK;
}

/* What a record shows: the entry a dump prints. `text` holds a counter. */
static void record_entry(const record *r, vs_state_entry *e, char text[I64_TEXT_MAX]) {
  memset(e, 0, sizeof *e);
  e->target = r->target;
  e->target_bytes = r->target_bytes;
  memcpy(e->origin, r->last_origin, VS_ORIGIN_BYTES);
  e->hlc = r->last_hlc;
  if (r->incr_count > 0) {
    int64_t base = 0;
    if (r->base_kind == BASE_PUT && !vs_parse_i64(r->base_value, r->base_value_bytes, &base)) base = 0;
    e->kind = VS_STATE_COUNTER;
    e->counter = (int64_t)((uint64_t)base + r->incr_sum); /* wraps, identically everywhere */
    int n = snprintf(text, I64_TEXT_MAX, "%" PRId64, e->counter);
    e->value = (const uint8_t *)text;
    e->value_bytes = (uint32_t)n;
  } else if (r->base_kind == BASE_PUT) {
    e->kind = VS_STATE_VALUE;
    e->value = r->base_value;
    e->value_bytes = r->base_value_bytes;
  } else {
    e->kind = VS_STATE_TOMBSTONE;
  }
}

/* The digest a target contributes to the state hash. */
static void entry_digest(const vs_state_entry *e, uint8_t out[VS_HASH_BYTES]) {
  uint8_t head[4 + 1 + 4], tail[VS_ORIGIN_BYTES + 8];
  vs_put_u32le(head, e->target_bytes);
  head[4] = (uint8_t)e->kind;
  vs_put_u32le(head + 5, e->value_bytes);
  memcpy(tail, e->origin, VS_ORIGIN_BYTES);
  vs_put_u64le(tail + VS_ORIGIN_BYTES, e->hlc);
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)ENTRY_DOMAIN, sizeof ENTRY_DOMAIN - 1);
  crypto_generichash_update(&st, head, 4);
  if (e->target_bytes > 0) crypto_generichash_update(&st, e->target, e->target_bytes);
  crypto_generichash_update(&st, head + 4, 5);
  if (e->value_bytes > 0) crypto_generichash_update(&st, e->value, e->value_bytes);
  crypto_generichash_update(&st, tail, sizeof tail);
  crypto_generichash_final(&st, out, VS_HASH_BYTES);
}

static void xor_into(uint8_t acc[VS_HASH_BYTES], const uint8_t d[VS_HASH_BYTES]) {
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) acc[i] ^= d[i];
}

/* Re-count the incrs after a new base: bounded by the incrs of the target. */
static vs_err recount_after(MDB_txn *txn, tables t, const uint8_t tag[TAG_BYTES], record *r) {
  uint8_t key[INCR_SEEK_BYTES]; /* a prefix: sorts before every seq under it */
  memcpy(key, tag, TAG_BYTES);
  vs_put_u64be(key + TAG_BYTES, r->base_hlc);
  memcpy(key + TAG_BYTES + 8, r->base_origin, VS_ORIGIN_BYTES);
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, t.incrs, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  r->incr_count = 0;
  r->incr_sum = 0;
  MDB_val k = {sizeof key, key}, v;
  vs_err err = VS_OK;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != INCR_KEY_BYTES || v.mv_size != 8) {
      err = VS_ERR_CORRUPT;
      break;
    }
    const uint8_t *kp = k.mv_data;
    if (memcmp(kp, tag, TAG_BYTES) != 0) break;
    uint64_t hlc = vs_get_u64be(kp + TAG_BYTES);
    const uint8_t *origin = kp + TAG_BYTES + 8;
    if (lww_cmp(hlc, origin, r->base_hlc, r->base_origin) <= 0) continue; /* the base itself */
    r->incr_count++;
    r->incr_sum += vs_get_u64le(v.mv_data);
    if (lww_cmp(hlc, origin, r->last_hlc, r->last_origin) > 0) {
      r->last_hlc = hlc;
      memcpy(r->last_origin, origin, VS_ORIGIN_BYTES);
    }
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

static vs_err incr_put(MDB_txn *txn, tables t, const uint8_t tag[TAG_BYTES], const vs_op *op, int64_t delta) {
  uint8_t key[INCR_KEY_BYTES], val[8];
  memcpy(key, tag, TAG_BYTES);
  vs_put_u64be(key + TAG_BYTES, op->hlc);
  memcpy(key + TAG_BYTES + 8, op->origin, VS_ORIGIN_BYTES);
  vs_put_u64be(key + INCR_SEEK_BYTES, op->seq);
  vs_put_u64le(val, (uint64_t)delta);
  MDB_val k = {sizeof key, key}, v = {sizeof val, val};
  return vs_mdb_err(mdb_put(txn, t.incrs, &k, &v, 0));
}

/* The record of a target that has none: `op` is its first counted op. */
static void record_first(const vs_op *op, bool is_put, bool is_incr, int64_t delta, record *r) {
  memset(r, 0, sizeof *r);
  r->target = op->target;
  r->target_bytes = op->target_bytes;
  if (is_incr) {
    r->base_kind = BASE_NONE;
    r->incr_count = 1;
    r->incr_sum = (uint64_t)delta;
  } else {
    r->base_kind = is_put ? BASE_PUT : BASE_DEL;
    r->base_hlc = op->hlc;
    memcpy(r->base_origin, op->origin, VS_ORIGIN_BYTES);
    r->base_value = is_put ? op->payload : NULL;
    r->base_value_bytes = is_put ? op->payload_bytes : 0;
  }
  r->last_hlc = op->hlc;
  memcpy(r->last_origin, op->origin, VS_ORIGIN_BYTES);
}

/* Set r->digest, the entry's part of the state hash. base_op_hash: the hash
 * of the op that just became the base (NULL when the base did not change). */
static void record_digest(record *r, const uint8_t *base_op_hash) {
  if (r->incr_count == 0 && r->base_kind == BASE_DEL) { /* a tombstone shows nothing: it adds nothing */
    memset(r->digest, 0, VS_HASH_BYTES);
    return;
  }
  if (r->incr_count == 0 && r->base_kind != BASE_NONE && base_op_hash != NULL) {
    memcpy(r->digest, base_op_hash, VS_HASH_BYTES);
    return;
  }
  char text[I64_TEXT_MAX];
  vs_state_entry e;
  record_entry(r, &e, text);
  entry_digest(&e, r->digest);
}

static vs_err state_apply(MDB_txn *txn, tables t, const vs_op *op, const uint8_t op_hash[VS_HASH_BYTES],
                          uint8_t state_hash[VS_HASH_BYTES]) {
  bool is_put = strcmp(op->kind, "put") == 0, is_del = !is_put && strcmp(op->kind, "del") == 0;
  bool is_incr = !is_put && !is_del && strcmp(op->kind, "incr") == 0;
  if (!is_put && !is_del && !is_incr) return VS_OK;
  uint8_t key[KEY_BYTES_MAX], tag[TAG_BYTES];
  size_t key_bytes = state_key(op->target, op->target_bytes, key);
  int64_t delta = 0;
  if (is_incr && !vs_parse_i64(op->payload, op->payload_bytes, &delta)) delta = 0;
  /* Most ops name a new target. One B-tree descent serves both cases: the
   * put reserves and fills the record when the key is absent, and hands back
   * the stored record (MDB_KEYEXIST, nothing written) when it is not. The
   * record of a new target follows from the op alone. */
  record r;
  record_first(op, is_put, is_incr, delta, &r);
  record_digest(&r, op_hash);
  MDB_val k = {key_bytes, key}, v = {record_bytes(&r), NULL};
  int rc = mdb_put(txn, t.state, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
  if (rc == MDB_SUCCESS) {
    record_fill(v.mv_data, &r);
    /* No record: no incrs to re-count, and only an incr needs the tag. */
    if (is_incr) {
      target_tag(op->target, op->target_bytes, tag);
      vs_err err = incr_put(txn, t, tag, op, delta);
      if (err != VS_OK) return err;
    }
    xor_into(state_hash, r.digest);
    return VS_OK;
  }
  if (rc != MDB_KEYEXIST) return vs_mdb_err(rc);
  memset(&r, 0, sizeof r);
  vs_err err = record_decode(&v, &r);
  if (err != VS_OK) return err;
  target_tag(op->target, op->target_bytes, tag);
  bool has_base = r.base_kind != BASE_NONE;
  bool after_base = !has_base || lww_cmp(op->hlc, op->origin, r.base_hlc, r.base_origin) > 0;
  if (!after_base) {
    if (!is_incr) return VS_OK; /* an older put or del changes nothing */
    return incr_put(txn, t, tag, op, delta); /* kept for a later re-count */
  }
  /* The old entry's digest, kept aside: r.digest is about to change. */
  uint8_t old_digest[VS_HASH_BYTES];
  memcpy(old_digest, r.digest, VS_HASH_BYTES);
  /* The new record may point at the op's bytes or the old record's: copy the
   * old base value aside before any put. */
  uint8_t *old_value = NULL;
  if (r.base_value_bytes > 0) {
    old_value = malloc(r.base_value_bytes);
    if (old_value == NULL) return VS_ERR_NOMEM;
    memcpy(old_value, r.base_value, r.base_value_bytes);
    r.base_value = old_value;
  }
  r.target = op->target;
  r.target_bytes = op->target_bytes;
  if (is_incr) {
    err = incr_put(txn, t, tag, op, delta);
    if (err == VS_OK) {
      r.incr_count++;
      r.incr_sum += (uint64_t)delta;
      if (lww_cmp(op->hlc, op->origin, r.last_hlc, r.last_origin) > 0) {
        r.last_hlc = op->hlc;
        memcpy(r.last_origin, op->origin, VS_ORIGIN_BYTES);
      }
    }
  } else {
    r.base_kind = is_put ? BASE_PUT : BASE_DEL;
    r.base_hlc = op->hlc;
    memcpy(r.base_origin, op->origin, VS_ORIGIN_BYTES);
    r.last_hlc = op->hlc;
    memcpy(r.last_origin, op->origin, VS_ORIGIN_BYTES);
    r.base_value = is_put ? op->payload : NULL;
    r.base_value_bytes = is_put ? op->payload_bytes : 0;
    err = recount_after(txn, t, tag, &r);
  }
  if (err == VS_OK) {
    record_digest(&r, is_incr ? NULL : op_hash);
    err = record_put(txn, t, key, key_bytes, &r);
  }
  if (err == VS_OK) {
    xor_into(state_hash, old_digest);
    xor_into(state_hash, r.digest);
  }
  free(old_value);
  return err;
}

vs_err vs_state_apply_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t op_hash[VS_HASH_BYTES],
                          uint8_t state_hash[VS_HASH_BYTES]) {
  return state_apply(txn, live_tables(store), op, op_hash, state_hash);
}

vs_err vs_state_fold_base_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t op_hash[VS_HASH_BYTES],
                              uint8_t base_hash[VS_HASH_BYTES]) {
  return state_apply(txn, (tables){store->dbi_hstate, store->dbi_hincrs}, op, op_hash, base_hash);
}

static vs_err meta_hash_get(MDB_txn *txn, const vs_store *store, const char *name, uint8_t hash_out[VS_HASH_BYTES]) {
  MDB_val k = {strlen(name), (void *)name}, v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  memset(hash_out, 0, VS_HASH_BYTES);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != VS_HASH_BYTES) return VS_ERR_CORRUPT;
  memcpy(hash_out, v.mv_data, VS_HASH_BYTES);
  return VS_OK;
}

vs_err vs_state_base_hash_get_txn(MDB_txn *txn, const vs_store *store, uint8_t hash_out[VS_HASH_BYTES]) {
  return meta_hash_get(txn, store, META_BASE_HASH, hash_out);
}

static vs_err meta_hash_put(MDB_txn *txn, const vs_store *store, const char *name, const uint8_t hash[VS_HASH_BYTES]) {
  MDB_val k = {strlen(name), (void *)name}, v = {VS_HASH_BYTES, (void *)hash};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

vs_err vs_state_base_hash_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t hash[VS_HASH_BYTES]) {
  return meta_hash_put(txn, store, META_BASE_HASH, hash);
}

vs_err vs_state_hash_get_txn(MDB_txn *txn, const vs_store *store, uint8_t hash_out[VS_HASH_BYTES]) {
  return meta_hash_get(txn, store, META_STATE_HASH, hash_out);
}

vs_err vs_state_hash_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t hash[VS_HASH_BYTES]) {
  return meta_hash_put(txn, store, META_STATE_HASH, hash);
}

/* Copy every entry of `from` into the empty `to` (sorted: appended).
 * Bounded by the entries of `from`. */
static vs_err copy_db(MDB_txn *txn, MDB_dbi from, MDB_dbi to) {
  MDB_cursor *src, *dst;
  int rc = mdb_cursor_open(txn, from, &src);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  rc = mdb_cursor_open(txn, to, &dst);
  if (rc != MDB_SUCCESS) {
    mdb_cursor_close(src);
    return vs_mdb_err(rc);
  }
  MDB_val k, v;
  for (rc = mdb_cursor_get(src, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(src, &k, &v, MDB_NEXT)) {
    rc = mdb_cursor_put(dst, &k, &v, MDB_APPEND);
    if (rc != MDB_SUCCESS) break;
  }
  mdb_cursor_close(dst);
  mdb_cursor_close(src);
  return rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

vs_err vs_state_rebuild_txn(MDB_txn *txn, const vs_store *store) {
  int rc = mdb_drop(txn, store->dbi_state, 0);
  if (rc == MDB_SUCCESS) rc = mdb_drop(txn, store->dbi_incrs, 0);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  /* The base first: what compaction folded (every op up to each origin's
   * horizon), then every live op above the horizons. */
  uint8_t state_hash[VS_HASH_BYTES] = {0};
  vs_err err = copy_db(txn, store->dbi_hstate, store->dbi_state);
  if (err == VS_OK) err = copy_db(txn, store->dbi_hincrs, store->dbi_incrs);
  if (err == VS_OK) err = vs_state_base_hash_get_txn(txn, store, state_hash);
  if (err != VS_OK) return err;
  uint8_t *buf = malloc(VS_OP_ENCODED_BYTES_MAX);
  if (buf == NULL) return VS_ERR_NOMEM;
  MDB_stat ist, hst;
  err = vs_mdb_err(mdb_stat(txn, store->dbi_inert, &ist));
  if (err == VS_OK) err = vs_mdb_err(mdb_stat(txn, store->dbi_horizon, &hst));
  bool any_inert = err == VS_OK && ist.ms_entries > 0, any_horizon = err == VS_OK && hst.ms_entries > 0;
  MDB_cursor *cur = NULL;
  if (err == VS_OK) err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_wal, &cur));
  /* Bounded: one step per WAL record (compaction leaves gaps between LSNs:
   * the cursor steps over them). The state is a CRDT, so refolding in LSN
   * order gives what any order gives. An op is live when the op-id index
   * still names its record (a verdict removed the void ones). */
  uint64_t next = 1;
  while (err == VS_OK && cur != NULL) {
    uint8_t key[8];
    vs_put_u64be(key, next);
    MDB_val k = {sizeof key, key}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) break;
    if (rc != MDB_SUCCESS) {
      err = vs_mdb_err(rc);
      break;
    }
    if (k.mv_size != 8) {
      err = VS_ERR_CORRUPT;
      break;
    }
    uint64_t lsn = vs_get_u64be(k.mv_data);
    next = lsn + 1; /* the cursor is re-seeked: the writes below may move pages */
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    err = vs_wal_op_encoded_txn(txn, store, lsn, &enc, &enc_bytes);
    if (err != VS_OK) break;
    if (enc_bytes > VS_OP_ENCODED_BYTES_MAX) {
      err = VS_ERR_CORRUPT;
      break;
    }
    memcpy(buf, enc, enc_bytes); /* pages of this write txn may move under the writes below */
    vs_op op;
    uint8_t hash[VS_HASH_BYTES], held[VS_HASH_BYTES];
    uint64_t at = 0;
    err = vs_op_decode(buf, enc_bytes, &op);
    if (err != VS_OK) {
      err = VS_ERR_CORRUPT;
      break;
    }
    err = vs_opid_get(txn, store, &op.id, &at, held);
    if (err == VS_ERR_NOTFOUND || (err == VS_OK && at != lsn)) {
      err = VS_OK; /* void */
      continue;
    }
    if (err == VS_OK && any_inert) { /* held without effect (a reader's data op) */
      MDB_val ik = {VS_OP_ID_BYTES, op.id.bytes}, iv;
      rc = mdb_get(txn, store->dbi_inert, &ik, &iv);
      if (rc == MDB_SUCCESS) continue;
      if (rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
    }
    if (err == VS_OK && any_horizon) { /* folded into the base already (the anchor is) */
      vs_horizon h;
      err = vs_horizon_get(txn, store, op.origin, &h);
      if (err == VS_OK && op.seq <= h.seq) continue;
    }
    vs_op_hash_encoded(buf, enc_bytes, hash);
    if (err == VS_OK) err = vs_state_apply_txn(txn, store, &op, hash, state_hash);
  }
  if (cur != NULL) mdb_cursor_close(cur);
  free(buf);
  if (err == VS_OK) err = vs_state_hash_put_txn(txn, store, state_hash);
  return err;
}

/* ---- dead incrs (compaction) ---- */

/* Delete the incr rows of `tag` in `dbi` ordered at or before (hlc,
 * origin): a base there that never goes away makes them count never again.
 * Bounded by the target's incr rows. */
static vs_err incrs_drop_through(MDB_txn *txn, MDB_dbi dbi, const uint8_t tag[TAG_BYTES], uint64_t hlc,
                                 const uint8_t origin[VS_ORIGIN_BYTES], uint64_t *dropped) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  /* Bounded: each round deletes one row; the seek restarts at the tag (a
   * delete leaves the cursor where LMDB says little about). */
  for (;;) {
    k = (MDB_val){TAG_BYTES, (void *)tag};
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc != MDB_SUCCESS) break;
    if (k.mv_size != INCR_KEY_BYTES) {
      err = VS_ERR_CORRUPT;
      break;
    }
    const uint8_t *kp = k.mv_data;
    if (memcmp(kp, tag, TAG_BYTES) != 0) break;
    if (lww_cmp(vs_get_u64be(kp + TAG_BYTES), kp + TAG_BYTES + 8, hlc, origin) > 0) break; /* sorted: the rest is after */
    rc = mdb_cursor_del(cur, 0);
    if (rc != MDB_SUCCESS) break;
    (*dropped)++;
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

vs_err vs_state_prune_dead_incrs_txn(MDB_txn *txn, const vs_store *store, const uint8_t *target, uint32_t target_bytes,
                                     uint64_t *dropped_out) {
  uint8_t key[KEY_BYTES_MAX], tag[TAG_BYTES];
  MDB_val k = {state_key(target, target_bytes, key), key}, v;
  int rc = mdb_get(txn, store->dbi_hstate, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  record base;
  vs_err err = record_decode(&v, &base);
  if (err != VS_OK || base.base_kind == BASE_NONE) return err;
  uint64_t hlc = base.base_hlc;
  uint8_t origin[VS_ORIGIN_BYTES];
  memcpy(origin, base.base_origin, VS_ORIGIN_BYTES);
  target_tag(target, target_bytes, tag);
  err = incrs_drop_through(txn, store->dbi_hincrs, tag, hlc, origin, dropped_out);
  /* The live state's rows too, once its base is that same final one (or a
   * later one: it never goes below a final base). */
  if (err == VS_OK) {
    rc = mdb_get(txn, store->dbi_state, &k, &v);
    if (rc == MDB_SUCCESS) {
      record live;
      err = record_decode(&v, &live);
      if (err == VS_OK && live.base_kind != BASE_NONE && lww_cmp(live.base_hlc, live.base_origin, hlc, origin) >= 0)
        err = incrs_drop_through(txn, store->dbi_incrs, tag, hlc, origin, dropped_out);
    } else if (rc != MDB_NOTFOUND) {
      err = vs_mdb_err(rc);
    }
  }
  return err;
}

/* ---- gc_floor: dropping tombstones, folding incrs (compaction) ---- */

static const char META_GC_FLOOR[] = "gc_floor";
/* The walk over the base state: u64le the bound its round started at, u8
 * active, then the last state key visited (none: the round starts at the
 * first). Absent: no round yet. */
static const char META_GC_WALK[] = "gc_walk";
#define GC_WALK_FIXED 9u

vs_err vs_state_gc_floor_get_txn(MDB_txn *txn, const vs_store *store, uint64_t *floor_out) {
  MDB_val k = {sizeof META_GC_FLOOR - 1, (void *)META_GC_FLOOR}, v;
  *floor_out = 0;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 8) return VS_ERR_CORRUPT;
  *floor_out = vs_get_u64le(v.mv_data);
  return VS_OK;
}

vs_err vs_state_gc_floor_raise_txn(MDB_txn *txn, const vs_store *store, uint64_t hlc) {
  uint64_t floor = 0;
  vs_err err = vs_state_gc_floor_get_txn(txn, store, &floor);
  if (err != VS_OK || hlc <= floor) return err; /* monotone */
  uint8_t buf[8];
  vs_put_u64le(buf, hlc);
  MDB_val k = {sizeof META_GC_FLOOR - 1, (void *)META_GC_FLOOR}, v = {sizeof buf, buf};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

bool vs_state_kind_below_floor(const vs_op *op, uint64_t gc_floor) {
  if (gc_floor == 0 || op->hlc > gc_floor) return false;
  return strcmp(op->kind, "put") == 0 || strcmp(op->kind, "del") == 0 || strcmp(op->kind, "incr") == 0;
}

/* One origin's incr rows of a target being folded into a total. */
typedef struct incr_group {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t rows, sum, hlc, seq; /* hlc, seq: the greatest row's (its key keeps the total) */
} incr_group;

/* Fold the incr rows of `tag` in `dbi` ordered after the base (kind, hlc,
 * origin) and with an HLC at or below `bound` into one row per origin: its
 * key the origin's greatest row's, its delta their sum (two's complement,
 * as the record sums). Every later op has an HLC above `bound`, so a later
 * base is ordered after all of them and none of them before it: each
 * counts exactly when its total does. *floor_out rises to the greatest HLC
 * of a group folded; *folded_out counts the rows that went. Bounded by the
 * target's incr rows (three passes). */
static vs_err incrs_fold(MDB_txn *txn, MDB_dbi dbi, const uint8_t tag[TAG_BYTES], uint8_t base_kind, uint64_t base_hlc,
                         const uint8_t base_origin[VS_ORIGIN_BYTES], uint64_t bound, uint64_t *floor_out,
                         uint64_t *folded_out) {
  incr_group *g = NULL;
  size_t n = 0, cap = 0;
  uint8_t seek[INCR_SEEK_BYTES];
  memcpy(seek, tag, TAG_BYTES);
  vs_put_u64be(seek + TAG_BYTES, base_kind == BASE_NONE ? 0 : base_hlc);
  memset(seek + TAG_BYTES + 8, 0, VS_ORIGIN_BYTES);
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  vs_err err = VS_OK;
  MDB_val k = {sizeof seek, seek}, v;
  /* Pass 1: the groups. Bounded by the rows. */
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != INCR_KEY_BYTES || v.mv_size != 8) {
      err = VS_ERR_CORRUPT;
      break;
    }
    const uint8_t *kp = k.mv_data;
    if (memcmp(kp, tag, TAG_BYTES) != 0) break;
    uint64_t hlc = vs_get_u64be(kp + TAG_BYTES);
    const uint8_t *origin = kp + TAG_BYTES + 8;
    if (hlc > bound) break; /* sorted by hlc: the rest is above */
    if (base_kind != BASE_NONE && lww_cmp(hlc, origin, base_hlc, base_origin) <= 0) continue; /* not counted */
    size_t i = 0;
    while (i < n && memcmp(g[i].origin, origin, VS_ORIGIN_BYTES) != 0) i++; /* bounded by the origins */
    if (i == n) {
      if (n == cap) {
        size_t c = cap == 0 ? 8 : cap * 2;
        incr_group *ng = realloc(g, c * sizeof *ng);
        if (ng == NULL) {
          err = VS_ERR_NOMEM;
          break;
        }
        g = ng;
        cap = c;
      }
      memset(&g[n], 0, sizeof g[n]);
      memcpy(g[n].origin, origin, VS_ORIGIN_BYTES);
      n++;
    }
    g[i].rows++;
    g[i].sum += vs_get_u64le(v.mv_data);
    g[i].hlc = hlc; /* rows come in key order: the last is the greatest */
    g[i].seq = vs_get_u64be(kp + INCR_SEEK_BYTES);
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  bool any = false;
  for (size_t i = 0; i < n; i++) any = any || g[i].rows > 1;
  /* Pass 2: delete the rows of the groups that fold (re-seeking after each
   * delete, as incrs_drop_through does). Bounded by the rows. */
  uint8_t at[INCR_KEY_BYTES];
  memcpy(at, seek, sizeof seek);
  size_t at_bytes = sizeof seek;
  while (err == VS_OK && any) {
    k = (MDB_val){at_bytes, at};
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc != MDB_SUCCESS) break;
    const uint8_t *kp = k.mv_data;
    if (k.mv_size != INCR_KEY_BYTES || memcmp(kp, tag, TAG_BYTES) != 0 || vs_get_u64be(kp + TAG_BYTES) > bound) break;
    memcpy(at, kp, INCR_KEY_BYTES);
    at_bytes = INCR_KEY_BYTES;
    const uint8_t *origin = kp + TAG_BYTES + 8;
    size_t i = 0;
    while (i < n && memcmp(g[i].origin, origin, VS_ORIGIN_BYTES) != 0) i++;
    bool counted = base_kind == BASE_NONE || lww_cmp(vs_get_u64be(kp + TAG_BYTES), origin, base_hlc, base_origin) > 0;
    if (i < n && counted && g[i].rows > 1) {
      rc = mdb_cursor_del(cur, 0);
      if (rc != MDB_SUCCESS) break;
      continue; /* the seek finds the next row */
    }
    /* kept: step past it (the key with one more byte sorts right after) */
    uint64_t sq = vs_get_u64be(at + INCR_SEEK_BYTES);
    if (sq == UINT64_MAX) break;
    vs_put_u64be(at + INCR_SEEK_BYTES, sq + 1);
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  mdb_cursor_close(cur);
  /* Pass 3: a total per group folded. */
  for (size_t i = 0; i < n && err == VS_OK; i++) {
    if (g[i].rows < 2) continue;
    uint8_t key[INCR_KEY_BYTES], val[8];
    memcpy(key, tag, TAG_BYTES);
    vs_put_u64be(key + TAG_BYTES, g[i].hlc);
    memcpy(key + TAG_BYTES + 8, g[i].origin, VS_ORIGIN_BYTES);
    vs_put_u64be(key + INCR_SEEK_BYTES, g[i].seq);
    vs_put_u64le(val, g[i].sum);
    MDB_val pk = {sizeof key, key}, pv = {sizeof val, val};
    err = vs_mdb_err(mdb_put(txn, dbi, &pk, &pv, 0));
    *folded_out += g[i].rows - 1;
    if (g[i].hlc > *floor_out) *floor_out = g[i].hlc;
  }
  free(g);
  return err;
}

/* Read the record at `key` of `dbi` into *r, its bytes copied to *buf_out
 * (freed by the caller): the writes that follow may move the map's pages.
 * *found_out false: none. */
static vs_err record_copy(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t key_bytes, record *r, uint8_t **buf_out,
                          bool *found_out) {
  MDB_val k = {key_bytes, (void *)key}, v;
  *buf_out = NULL;
  *found_out = false;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint8_t *buf = malloc(v.mv_size);
  if (buf == NULL) return VS_ERR_NOMEM;
  memcpy(buf, v.mv_data, v.mv_size);
  MDB_val c = {v.mv_size, buf};
  vs_err err = record_decode(&c, r);
  if (err != VS_OK) {
    free(buf);
    return err;
  }
  *buf_out = buf;
  *found_out = true;
  return VS_OK;
}

/* One target of the base state (its record at `key`): a tombstone at or
 * below `tomb_bound` goes from the base and, when the live state shows
 * that same tombstone, from there too; else its incr rows at or below
 * `bound` fold into per-origin totals, in both. */
static vs_err gc_target(MDB_txn *txn, const vs_store *store, const uint8_t *key, size_t key_bytes, uint64_t bound,
                        uint64_t tomb_bound, uint64_t *floor, vs_state_gc_result *res) {
  record b, l;
  uint8_t *bbuf = NULL, *lbuf = NULL, tag[TAG_BYTES];
  bool bfound = false, lfound = false;
  vs_err err = record_copy(txn, store->dbi_hstate, key, key_bytes, &b, &bbuf, &bfound);
  if (err == VS_OK && bfound) err = record_copy(txn, store->dbi_state, key, key_bytes, &l, &lbuf, &lfound);
  if (err != VS_OK || !bfound) goto out;
  target_tag(b.target, b.target_bytes, tag);
  if (b.base_kind == BASE_DEL && b.incr_count == 0) {
    if (b.base_hlc > tomb_bound) goto out; /* a later op may still be ordered before it */
    MDB_val k = {key_bytes, (void *)key};
    err = vs_mdb_err(mdb_del(txn, store->dbi_hstate, &k, NULL));
    uint64_t none = 0;
    if (err == VS_OK) err = incrs_drop_through(txn, store->dbi_hincrs, tag, b.base_hlc, b.base_origin, &none);
    bool same = lfound && l.base_kind == BASE_DEL && l.incr_count == 0 && l.base_hlc == b.base_hlc &&
                memcmp(l.base_origin, b.base_origin, VS_ORIGIN_BYTES) == 0;
    if (err == VS_OK && same) err = vs_mdb_err(mdb_del(txn, store->dbi_state, &k, NULL));
    if (err == VS_OK && same) err = incrs_drop_through(txn, store->dbi_incrs, tag, b.base_hlc, b.base_origin, &none);
    /* the fault drops without raising the floor: nothing detects the late op */
    if (err == VS_OK && b.base_hlc > *floor && !VS_FAULT(VS_FAULT_DROP_TOMBSTONE_EARLY)) *floor = b.base_hlc;
    if (err == VS_OK) res->tombstones_dropped++;
    goto out;
  }
  err = incrs_fold(txn, store->dbi_hincrs, tag, b.base_kind, b.base_hlc, b.base_origin, bound, floor,
                   &res->incr_rows_folded);
  uint64_t live_folded = 0; /* the same rows, in the live state's copy */
  if (err == VS_OK && lfound)
    err = incrs_fold(txn, store->dbi_incrs, tag, l.base_kind, l.base_hlc, l.base_origin, bound, floor, &live_folded);
out:
  free(bbuf);
  free(lbuf);
  return err;
}

vs_err vs_state_gc_step_txn(MDB_txn *txn, const vs_store *store, uint64_t bound, uint64_t budget,
                            vs_state_gc_result *res) {
  if (budget == 0) return VS_OK;
  MDB_val wk = {sizeof META_GC_WALK - 1, (void *)META_GC_WALK}, wv;
  uint8_t walk[GC_WALK_FIXED + KEY_BYTES_MAX];
  size_t walk_bytes = 0;
  int rc = mdb_get(txn, store->dbi_meta, &wk, &wv);
  if (rc == MDB_SUCCESS) {
    if (wv.mv_size < GC_WALK_FIXED || wv.mv_size > sizeof walk) return VS_ERR_CORRUPT;
    memcpy(walk, wv.mv_data, wv.mv_size);
    walk_bytes = wv.mv_size;
  } else if (rc != MDB_NOTFOUND) {
    return vs_mdb_err(rc);
  } else {
    memset(walk, 0, GC_WALK_FIXED);
    walk_bytes = GC_WALK_FIXED;
  }
  uint64_t round_bound = vs_get_u64le(walk);
  bool active = walk[8] != 0;
  if (!active) {
    /* A round when the bound rose since the last one began: what it frees
     * is what the last round could not. */
    if (bound == 0 || bound <= round_bound) return VS_OK;
    vs_put_u64le(walk, bound);
    walk[8] = 1;
    walk_bytes = GC_WALK_FIXED;
  }
  uint64_t tomb_bound = VS_FAULT(VS_FAULT_DROP_TOMBSTONE_EARLY) ? UINT64_MAX : bound; /* fault: no bound */
  uint64_t floor = 0;
  vs_err err = vs_state_gc_floor_get_txn(txn, store, &floor);
  uint64_t floor_before = floor;
  MDB_cursor *cur = NULL;
  if (err == VS_OK) err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_hstate, &cur));
  bool done = false;
  /* Bounded: `budget` records, each bounded by its target's incr rows. */
  for (uint64_t visited = 0; err == VS_OK && visited < budget; visited++) {
    MDB_val k, v;
    if (walk_bytes == GC_WALK_FIXED) {
      rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
      k = (MDB_val){walk_bytes - GC_WALK_FIXED, walk + GC_WALK_FIXED};
      rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
      if (rc == MDB_SUCCESS && k.mv_size == walk_bytes - GC_WALK_FIXED &&
          memcmp(k.mv_data, walk + GC_WALK_FIXED, k.mv_size) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* visited last time */
    }
    if (rc == MDB_NOTFOUND) {
      done = true;
      break;
    }
    if (rc != MDB_SUCCESS || k.mv_size == 0 || k.mv_size > KEY_BYTES_MAX) {
      err = rc != MDB_SUCCESS ? vs_mdb_err(rc) : VS_ERR_CORRUPT;
      break;
    }
    memcpy(walk + GC_WALK_FIXED, k.mv_data, k.mv_size); /* the key, copied: the writes below move pages */
    walk_bytes = GC_WALK_FIXED + k.mv_size;
    err = gc_target(txn, store, walk + GC_WALK_FIXED, k.mv_size, bound, tomb_bound, &floor, res);
    res->visited++;
  }
  if (cur != NULL) mdb_cursor_close(cur);
  if (done) {
    walk[8] = 0; /* the round is over; the next starts when the bound rises */
    walk_bytes = GC_WALK_FIXED;
  }
  res->more = !done;
  if (err == VS_OK && floor > floor_before) err = vs_state_gc_floor_raise_txn(txn, store, floor);
  wv = (MDB_val){walk_bytes, walk};
  if (err == VS_OK) err = vs_mdb_err(mdb_put(txn, store->dbi_meta, &wk, &wv, 0));
  return err;
}

/* ---- chains whose HLC went back (gc_bound's premise broken) ---- */

/* meta "gclow" + origin: [seq u64le][hlc u64le]: the origin's ops up to
 * seq include one whose HLC is not above the op before it; hlc: the least
 * such HLC. The bound counts it while seq is above the origin's horizon. */
#define GC_LOW_KEY_BYTES (5u + VS_ORIGIN_BYTES)

static void gc_low_key(const uint8_t origin[VS_ORIGIN_BYTES], uint8_t key[GC_LOW_KEY_BYTES]) {
  memcpy(key, "gclow", 5);
  memcpy(key + 5, origin, VS_ORIGIN_BYTES);
}

vs_err vs_state_gc_low_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                               uint64_t *seq_out, uint64_t *hlc_out) {
  uint8_t key[GC_LOW_KEY_BYTES];
  gc_low_key(origin, key);
  MDB_val k = {sizeof key, key}, v;
  *seq_out = 0;
  *hlc_out = 0;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 16) return VS_ERR_CORRUPT;
  *seq_out = vs_get_u64le(v.mv_data);
  *hlc_out = vs_get_u64le((const uint8_t *)v.mv_data + 8);
  return VS_OK;
}

vs_err vs_state_gc_low_note_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                                uint64_t hlc) {
  uint64_t old_seq = 0, old_hlc = 0;
  vs_horizon hz;
  vs_err err = vs_state_gc_low_get_txn(txn, store, origin, &old_seq, &old_hlc);
  if (err == VS_OK) err = vs_horizon_get(txn, store, origin, &hz);
  if (err != VS_OK) return err;
  if (old_seq > hz.seq) { /* still above the horizon: both count */
    if (old_seq > seq) seq = old_seq;
    if (old_hlc < hlc) hlc = old_hlc;
  }
  uint8_t key[GC_LOW_KEY_BYTES], val[16];
  gc_low_key(origin, key);
  vs_put_u64le(val, seq);
  vs_put_u64le(val + 8, hlc);
  MDB_val k = {sizeof key, key}, v = {sizeof val, val};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

/* ---- format 7: tombstones add nothing to the state hash ---- */

/* Zero the digest of every tombstone record of `dbi`, taking it out of
 * *hash. Bounded by the records. */
static vs_err rehash_db(MDB_txn *txn, MDB_dbi dbi, uint8_t hash[VS_HASH_BYTES]) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  vs_err err = VS_OK;
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    record r;
    err = record_decode(&v, &r);
    if (err != VS_OK || r.base_kind != BASE_DEL || r.incr_count != 0) continue;
    static const uint8_t zero[VS_HASH_BYTES];
    if (memcmp(r.digest, zero, VS_HASH_BYTES) == 0) continue;
    xor_into(hash, r.digest);
    /* Same size, same key: overwritten in place through the cursor. */
    uint8_t *copy = malloc(v.mv_size);
    if (copy == NULL) {
      err = VS_ERR_NOMEM;
      break;
    }
    memcpy(copy, v.mv_data, v.mv_size);
    memset(copy + REC_DIGEST_OFFSET, 0, VS_HASH_BYTES);
    MDB_val nv = {v.mv_size, copy};
    rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
    free(copy);
    if (rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  mdb_cursor_close(cur);
  return err;
}

vs_err vs_state_rehash_txn(MDB_txn *txn, const vs_store *store) {
  uint8_t h[VS_HASH_BYTES];
  vs_err err = vs_state_base_hash_get_txn(txn, store, h);
  if (err == VS_OK) err = rehash_db(txn, store->dbi_hstate, h);
  if (err == VS_OK) err = vs_state_base_hash_put_txn(txn, store, h);
  if (err == VS_OK) err = vs_state_hash_get_txn(txn, store, h);
  if (err == VS_OK) err = rehash_db(txn, store->dbi_state, h);
  if (err == VS_OK) err = vs_state_hash_put_txn(txn, store, h);
  return err;
}

/* ---- export and import (snapshots: snapshot.c) ---- */

vs_err vs_state_export_txn(MDB_txn *txn, const vs_store *store, bool base, vs_state_export_fn on_entry,
                           vs_state_export_incr_fn on_incr, void *ctx) {
  tables t = base ? (tables){store->dbi_hstate, store->dbi_hincrs} : live_tables(store);
  MDB_cursor *cur = NULL, *icur = NULL;
  int rc = mdb_cursor_open(txn, t.state, &cur);
  if (rc == MDB_SUCCESS) rc = mdb_cursor_open(txn, t.incrs, &icur);
  vs_err err = vs_mdb_err(rc);
  MDB_val k, v;
  /* Bounded: one step per record, and per record one per incr of its
   * target (every incr row belongs to one record). */
  for (rc = err == VS_OK ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : MDB_NOTFOUND; rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    record r;
    err = record_decode(&v, &r);
    if (err != VS_OK) break;
    vs_state_export_entry e;
    memset(&e, 0, sizeof e);
    e.target = r.target;
    e.target_bytes = r.target_bytes;
    e.base_kind = r.base_kind;
    e.base_hlc = r.base_hlc;
    e.base_origin = r.base_origin;
    e.value = r.base_value;
    e.value_bytes = r.base_value_bytes;
    e.lone = r.incr_count == 0 && r.base_kind != BASE_NONE;
    if (e.lone) memcpy(e.lone_digest, r.digest, VS_HASH_BYTES);
    err = on_entry(ctx, &e);
    if (err != VS_OK) break;
    uint8_t tag[TAG_BYTES];
    target_tag(r.target, r.target_bytes, tag);
    MDB_val ik = {TAG_BYTES, tag}, iv;
    int irc;
    for (irc = mdb_cursor_get(icur, &ik, &iv, MDB_SET_RANGE); irc == MDB_SUCCESS && err == VS_OK;
         irc = mdb_cursor_get(icur, &ik, &iv, MDB_NEXT)) {
      if (ik.mv_size != INCR_KEY_BYTES || iv.mv_size != 8) {
        err = VS_ERR_CORRUPT;
        break;
      }
      const uint8_t *kp = ik.mv_data;
      if (memcmp(kp, tag, TAG_BYTES) != 0) break;
      /* An incr ordered before the base counts only if the base is voided
       * one day: the snapshot's receiver holds all of it below its horizon,
       * where nothing is voided (voids.h), so it never will there. */
      if (r.base_kind != BASE_NONE &&
          lww_cmp(vs_get_u64be(kp + TAG_BYTES), kp + TAG_BYTES + 8, r.base_hlc, r.base_origin) <= 0)
        continue;
      err = on_incr(ctx, vs_get_u64be(kp + TAG_BYTES), kp + TAG_BYTES + 8, vs_get_u64be(kp + INCR_SEEK_BYTES),
                    (int64_t)vs_get_u64le(iv.mv_data));
    }
    if (err == VS_OK && irc != MDB_SUCCESS && irc != MDB_NOTFOUND) err = vs_mdb_err(irc);
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  if (icur != NULL) mdb_cursor_close(icur);
  if (cur != NULL) mdb_cursor_close(cur);
  return err;
}

vs_err vs_state_import_entry_txn(MDB_txn *txn, const vs_store *store, const vs_state_export_entry *e,
                                 uint8_t base_hash[VS_HASH_BYTES]) {
  if (e->base_kind == BASE_NONE) return VS_OK; /* a counter alone: its incrs make the record */
  if (e->base_kind > BASE_DEL || e->target_bytes > VS_OP_TARGET_BYTES_MAX || e->value_bytes > VS_OP_PAYLOAD_BYTES_MAX ||
      (e->base_kind == BASE_DEL && e->value_bytes > 0))
    return VS_ERR_MALFORMED;
  vs_op op;
  memset(&op, 0, sizeof op);
  memcpy(op.kind, e->base_kind == BASE_PUT ? "put" : "del", 4);
  op.kind_bytes = 3;
  op.target = e->target;
  op.target_bytes = e->target_bytes;
  op.payload = e->value;
  op.payload_bytes = e->value_bytes;
  op.hlc = e->base_hlc;
  memcpy(op.origin, e->base_origin, VS_ORIGIN_BYTES);
  /* A lone base's digest is its op's hash (the snapshot's signer vouches
   * for it); with incrs counted, the digest is computed from the entry. */
  return vs_state_fold_base_txn(txn, store, &op, e->lone_digest, base_hash);
}

vs_err vs_state_import_incr_txn(MDB_txn *txn, const vs_store *store, const uint8_t *target, uint32_t target_bytes,
                                uint64_t hlc, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, int64_t delta,
                                uint8_t base_hash[VS_HASH_BYTES]) {
  if (target_bytes > VS_OP_TARGET_BYTES_MAX || seq == 0) return VS_ERR_MALFORMED;
  char text[I64_TEXT_MAX];
  int n = snprintf(text, sizeof text, "%" PRId64, delta);
  if (n <= 0 || (size_t)n >= sizeof text) return VS_ERR_MALFORMED;
  vs_op op;
  memset(&op, 0, sizeof op);
  memcpy(op.kind, "incr", 5);
  op.kind_bytes = 4;
  op.target = target;
  op.target_bytes = target_bytes;
  op.payload = (const uint8_t *)text;
  op.payload_bytes = (uint32_t)n;
  op.hlc = hlc;
  op.seq = seq;
  memcpy(op.origin, origin, VS_ORIGIN_BYTES);
  static const uint8_t no_hash[VS_HASH_BYTES]; /* an incr's digest is computed from the entry */
  return vs_state_fold_base_txn(txn, store, &op, no_hash, base_hash);
}

/* ---- reading ---- */

vs_err vs_state_hash(vs_store *store, uint8_t hash_out[VS_HASH_BYTES]) {
  if (store == NULL || hash_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_state_hash_get_txn(txn, store, hash_out);
  mdb_txn_abort(txn);
  return err;
}

static vs_err emit(const MDB_val *v, bool tombstones, vs_state_fn fn, void *ctx, bool *emitted) {
  record r;
  vs_err err = record_decode(v, &r);
  if (err != VS_OK) return err;
  char text[I64_TEXT_MAX];
  vs_state_entry e;
  record_entry(&r, &e, text);
  *emitted = tombstones || e.kind != VS_STATE_TOMBSTONE;
  return *emitted ? fn(&e, ctx) : VS_OK;
}

vs_err vs_state_get(vs_store *store, const uint8_t *target, uint32_t target_bytes, bool tombstones,
                    vs_state_fn fn, void *ctx) {
  if (store == NULL || fn == NULL || (target == NULL && target_bytes > 0)) return VS_ERR_INVAL;
  if (target_bytes > VS_OP_TARGET_BYTES_MAX) return VS_ERR_TOO_LARGE;
  uint8_t key[KEY_BYTES_MAX];
  MDB_val k = {state_key(target, target_bytes, key), key}, v;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_mdb_err(mdb_get(txn, store->dbi_state, &k, &v));
  bool emitted = false;
  if (err == VS_OK) err = emit(&v, tombstones, fn, ctx, &emitted);
  mdb_txn_abort(txn);
  return err == VS_OK && !emitted ? VS_ERR_NOTFOUND : err;
}

/* Long targets that share the key prefix are ordered by tag in the store;
 * a dump gathers such a group and sorts it by the full target. */
typedef struct group_item {
  MDB_val v;
  const uint8_t *target;
  uint32_t target_bytes;
} group_item;

static int group_cmp(const void *a, const void *b) {
  const group_item *x = a, *y = b;
  uint32_t n = x->target_bytes < y->target_bytes ? x->target_bytes : y->target_bytes;
  int c = memcmp(x->target, y->target, n);
  if (c != 0) return c;
  return x->target_bytes < y->target_bytes ? -1 : x->target_bytes > y->target_bytes;
}

static vs_err flush_group(group_item *g, size_t n, bool tombstones, vs_state_fn fn, void *ctx) {
  qsort(g, n, sizeof *g, group_cmp);
  for (size_t i = 0; i < n; i++) {
    bool emitted;
    vs_err err = emit(&g[i].v, tombstones, fn, ctx, &emitted);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}

vs_err vs_state_dump(vs_store *store, bool tombstones, vs_state_fn fn, void *ctx) {
  if (store == NULL || fn == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_state, &cur);
  if (rc != MDB_SUCCESS) {
    mdb_txn_abort(txn);
    return vs_mdb_err(rc);
  }
  group_item *group = NULL;
  size_t group_n = 0, group_cap = 0;
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    bool is_long = k.mv_size == KEY_BYTES_MAX;
    if (group_n > 0 && (!is_long || memcmp((const uint8_t *)k.mv_data + 1, group[0].target, KEY_PREFIX_BYTES) != 0)) {
      err = flush_group(group, group_n, tombstones, fn, ctx);
      group_n = 0;
      if (err != VS_OK) break;
    }
    if (!is_long) {
      bool emitted;
      err = emit(&v, tombstones, fn, ctx, &emitted);
      continue;
    }
    record r;
    err = record_decode(&v, &r);
    if (err != VS_OK) break;
    if (group_n == group_cap) {
      size_t cap = group_cap == 0 ? 8 : group_cap * 2;
      group_item *g = realloc(group, sizeof *g * cap);
      if (g == NULL) {
        err = VS_ERR_NOMEM;
        break;
      }
      group = g;
      group_cap = cap;
    }
    group[group_n].v = v;
    group[group_n].target = r.target;
    group[group_n].target_bytes = r.target_bytes;
    group_n++;
  }
  if (err == VS_OK && group_n > 0) err = flush_group(group, group_n, tombstones, fn, ctx);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  free(group);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_vv_each(vs_store *store, vs_vv_fn fn, void *ctx) {
  if (store == NULL || fn == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_heads, &cur);
  if (rc != MDB_SUCCESS) {
    mdb_txn_abort(txn);
    return vs_mdb_err(rc);
  }
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_head head;
    err = k.mv_size == VS_ORIGIN_BYTES ? vs_head_decode(&v, &head) : VS_ERR_CORRUPT;
    if (err == VS_OK) err = fn(k.mv_data, head.seq, ctx);
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return err;
}
