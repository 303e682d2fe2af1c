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

/** Read / store the state hash kept in meta. */
vs_err vs_state_hash_get_txn(MDB_txn *txn, const vs_store *store, uint8_t hash_out[VS_HASH_BYTES]);
vs_err vs_state_hash_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t hash[VS_HASH_BYTES]);

#endif
