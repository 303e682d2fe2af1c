/* State internals (state.c): the materialized state inside a transaction.
 * Not installed. */
#ifndef VIXSYNC_STATE_INT_H
#define VIXSYNC_STATE_INT_H

#include "internal.h"

/** Rebuild the materialized state and its hash: the base state (what
 *  compaction folded) and then the WAL records the op-id index still names
 *  above each origin's horizon (after a fork verdict voided some). */
vs_err vs_state_rebuild_txn(MDB_txn *txn, const vs_store *store);

/** Apply `op` (whose hash is `op_hash`) to the materialized state inside `txn`, folding the change
 *  into `state_hash` (in/out). Kinds other than put/del/incr change nothing. */
vs_err vs_state_apply_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t op_hash[VS_HASH_BYTES],
                          uint8_t state_hash[VS_HASH_BYTES]);

/** Fold `op` into the base state (hstate, hincrs: the ops compaction
 *  folded), with `base_hash` (in/out) as its state hash. Same rules as the
 *  live state: folding every op of a set in any order gives the same base. */
vs_err vs_state_fold_base_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t op_hash[VS_HASH_BYTES],
                              uint8_t base_hash[VS_HASH_BYTES]);
/** Read / store the base state's hash (meta "base_hash"; zero if none). */
vs_err vs_state_base_hash_get_txn(MDB_txn *txn, const vs_store *store, uint8_t hash_out[VS_HASH_BYTES]);
vs_err vs_state_base_hash_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t hash[VS_HASH_BYTES]);

/** The incr rows of `target` ordered at or before its base state's base
 *  (a put or del folded below a horizon, which nothing voids: they can
 *  never count again), in the base and, when the live base is that one or
 *  later, in the live state; the state hash is unchanged (only counted
 *  incrs are in it). *dropped_out is added to. Bounded by the rows. */
vs_err vs_state_prune_dead_incrs_txn(MDB_txn *txn, const vs_store *store, const uint8_t *target, uint32_t target_bytes,
                                     uint64_t *dropped_out);

/** One target of the state as a snapshot carries it (state.c's record):
 *  the winning put or del (base_kind 0: none, 1 put, 2 del) and, when no
 *  incr is counted after it (lone), the digest it adds to the state hash
 *  (its op's hash). Pointers valid during the callback. */
typedef struct vs_state_export_entry {
  const uint8_t *target;
  uint32_t target_bytes;
  uint8_t base_kind;
  uint64_t base_hlc;
  const uint8_t *base_origin;
  const uint8_t *value;
  uint32_t value_bytes;
  bool lone;
  uint8_t lone_digest[VS_HASH_BYTES];
} vs_state_export_entry;
typedef vs_err (*vs_state_export_fn)(void *ctx, const vs_state_export_entry *e);
/** One incr row of the entry just exported. */
typedef vs_err (*vs_state_export_incr_fn)(void *ctx, uint64_t hlc, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                                          int64_t delta);
/** The live state (or with `base` the base state) in state-key order:
 *  each entry, then its incr rows ordered after its base (one before it
 *  counts again only if the base is voided, and a snapshot's receiver holds
 *  everything below its horizon). Bounded by the records and incr rows. */
vs_err vs_state_export_txn(MDB_txn *txn, const vs_store *store, bool base, vs_state_export_fn on_entry,
                           vs_state_export_incr_fn on_incr, void *ctx);
/** Fold an exported entry's base, or one of its incrs, into the base state
 *  (hstate; base_hash in/out). Importing every entry and incr of an export
 *  in any order rebuilds the exported state and its hash exactly. */
vs_err vs_state_import_entry_txn(MDB_txn *txn, const vs_store *store, const vs_state_export_entry *e,
                                 uint8_t base_hash[VS_HASH_BYTES]);
vs_err vs_state_import_incr_txn(MDB_txn *txn, const vs_store *store, const uint8_t *target, uint32_t target_bytes,
                                uint64_t hlc, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, int64_t delta,
                                uint8_t base_hash[VS_HASH_BYTES]);

/** Is `op` a data op (put, del, incr) at or below `gc_floor` (0: none)?
 *  Such an op may be ordered before a tombstone this store dropped or
 *  between incr rows it folded: merging it would not give what a store
 *  that never compacted gives (apply.c refuses it: VS_ERR_BELOW_FLOOR). */
bool vs_state_kind_below_floor(const vs_op *op, uint64_t gc_floor);
/** gc_floor (meta "gc_floor"; 0 if none): the highest HLC of a tombstone
 *  dropped or an incr row folded into a total. Raise: to max(floor, hlc). */
vs_err vs_state_gc_floor_get_txn(MDB_txn *txn, const vs_store *store, uint64_t *floor_out);
vs_err vs_state_gc_floor_raise_txn(MDB_txn *txn, const vs_store *store, uint64_t hlc);

typedef struct vs_state_gc_result {
  uint64_t visited;            /* base records visited */
  uint64_t tombstones_dropped; /* tombstones gone from the base (and the live state) */
  uint64_t incr_rows_folded;   /* base incr rows folded into per-origin totals (gone) */
  bool more;                   /* the walk's round is not over */
} vs_state_gc_result;
/** One step of the walk over the base state (resumable: meta "gc_walk"),
 *  at most `budget` records: each tombstone (a del with no incr after it)
 *  whose HLC is at or below `bound` is dropped from the base and, when the
 *  live state shows the same one, from there; the incr rows of other
 *  targets ordered after their base with an HLC at or below `bound` fold
 *  into one row per (target, origin) holding their sum, in the base and in
 *  the live state. gc_floor rises to the highest HLC dropped or folded.
 *  The caller vouches that every op this store does not hold folded into
 *  its base, held or not, has an HLC above `bound` (compact.c computes it:
 *  docs/storage.md, "Dropping tombstones"). A round starts when `bound`
 *  rose since the last round began and ends at the last record. The state
 *  hash and what a dump shows do not change. Results are added to *res. */
vs_err vs_state_gc_step_txn(MDB_txn *txn, const vs_store *store, uint64_t bound, uint64_t budget,
                            vs_state_gc_result *res);
/** An origin's chain went back in HLC (an op not above the one before it:
 *  no honest device writes one, acceptance never checks it): the bound of
 *  vs_state_gc_step_txn must count that op while it is above the origin's
 *  horizon (meta "gclow" + origin: the highest such seq, the least such
 *  HLC; a mark already folded is replaced). Get: 0, 0 if none. */
vs_err vs_state_gc_low_note_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                                uint64_t hlc);
vs_err vs_state_gc_low_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                               uint64_t *seq_out, uint64_t *hlc_out);
/** Format 6 -> 7: tombstones' digests zeroed (they add nothing to the
 *  state hash now) in the base and the live state, both hashes mended. */
vs_err vs_state_rehash_txn(MDB_txn *txn, const vs_store *store);

/** Read / store the state hash kept in meta. */
vs_err vs_state_hash_get_txn(MDB_txn *txn, const vs_store *store, uint8_t hash_out[VS_HASH_BYTES]);
vs_err vs_state_hash_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t hash[VS_HASH_BYTES]);

#endif
