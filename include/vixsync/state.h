/* vixsync: materialized state, version vector, state hash.
 *
 * The state of a target is a pure function of the set of operations a node
 * holds, so two nodes holding the same set have byte-identical state, in
 * whatever order the operations arrived (G5):
 *
 *   - the *base* is the `put` or `del` with the greatest (hlc, origin),
 *     compared as (integer, bytes); the value is the base's payload (absent
 *     after a `del`: a tombstone);
 *   - if `incr` operations ordered after the base exist, the value is a
 *     counter: the base's value read as a signed 64-bit decimal integer (0 if
 *     absent or not a number) plus their deltas, in two's complement (it
 *     wraps, identically everywhere). So `put x 5; incr x 3` gives 8 and
 *     `del x; incr x 1` gives 1, as in Redis;
 *   - an `incr` payload is a signed 64-bit decimal ("-12"); a local write
 *     refuses anything else, and a received one that is not a number counts 0
 *     (acceptance never depends on payload content);
 *   - every other kind is stored and replicated but leaves the state alone.
 *
 * The entry of a target names the counted operation with the greatest
 * (hlc, origin): the base, or the last incr after it.
 *
 * The state hash is the XOR of one BLAKE2b-256 digest per target (tombstones
 * included) over what a dump shows: it is kept current in O(1) per applied
 * operation (plus the incrs after a base that a late put or del re-counts).
 *
 * The version vector maps each origin to the highest seq held; a node only
 * applies an origin's operations in seq order, so that seq is contiguous.
 */
#ifndef VIXSYNC_STATE_H
#define VIXSYNC_STATE_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"
#include "vixsync/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vs_state_kind {
  VS_STATE_VALUE = 1,     /**< a put's value ("put" in dumps) */
  VS_STATE_COUNTER = 2,   /**< a counter: value is its decimal text ("counter") */
  VS_STATE_TOMBSTONE = 3, /**< deleted ("del" in dumps with tombstones) */
} vs_state_kind;

/** "put", "counter" or "del". */
VS_API const char *vs_state_kind_name(vs_state_kind kind);

/** One target's state, valid during the callback only. */
typedef struct vs_state_entry {
  const uint8_t *target;
  uint32_t target_bytes;
  vs_state_kind kind;
  const uint8_t *value; /**< the put's bytes, or the counter's decimal text; NULL for a tombstone */
  uint32_t value_bytes;
  int64_t counter;      /**< COUNTER only */
  uint8_t origin[VS_ORIGIN_BYTES]; /**< the counted op with the greatest (hlc, origin) */
  uint64_t hlc;
} vs_state_entry;

typedef vs_err (*vs_state_fn)(const vs_state_entry *entry, void *ctx);

/** Read one target. Calls fn once if it has a live value (tombstones count as
 *  absent unless `tombstones`). @return VS_OK, VS_ERR_NOTFOUND, fn's error,
 *  VS_ERR_CORRUPT or VS_ERR_STORE. */
VS_API vs_err vs_state_get(vs_store *store, const uint8_t *target, uint32_t target_bytes, bool tombstones,
                    vs_state_fn fn, void *ctx);

/** Call fn for every target in byte order of the target, live entries only
 *  unless `tombstones`, in one read transaction. Stops at fn's error. */
VS_API vs_err vs_state_dump(vs_store *store, bool tombstones, vs_state_fn fn, void *ctx);

/** The state hash (32 zero bytes for an empty state). */
VS_API vs_err vs_state_hash(vs_store *store, uint8_t hash_out[VS_HASH_BYTES]);

/** Called for each origin in byte order with the highest seq held. */
typedef vs_err (*vs_vv_fn)(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx);

/** Walk the version vector in one read transaction. Stops at fn's error. */
VS_API vs_err vs_vv_each(vs_store *store, vs_vv_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
