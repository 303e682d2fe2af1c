/* vixsync: the write-ahead log.
 *
 * An ordered, append-only log of every operation the node holds (its own and,
 * later, its peers'), keyed by a log sequence number (LSN) from 1, each
 * record one more than the last; compaction (store format 6) takes out the
 * records of ops folded below a horizon, so a log may have gaps.
 * Each record carries a CRC-32C checksum, verified on every read.
 *
 * Record layout, version 1 (little-endian):
 *   0  1  record version = 1
 *   1  1  record type    = 1 (operation)
 *   2  2  reserved       = 0
 *   4  4  crc32c of every byte of the record except these four
 *   8  8  lsn
 *   16 8  stored_at_ms   wall-clock time of the commit that stored it
 *   24 .. the operation's canonical encoding (see op.h)
 *
 * Appending also maintains the op-id index (id -> lsn, op hash) and the
 * origin's chain head (seq, hash, hlc), all in one transaction.
 */
#ifndef VIXSYNC_WAL_H
#define VIXSYNC_WAL_H

#include "vixsync/api.h"

#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"
#include "vixsync/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_WAL_RECORD_VERSION 1u
#define VS_WAL_RECORD_HEADER_BYTES 24u

/** One record as handed to a replay handler. `op`'s target and payload point
 *  into the store's memory, valid only during the handler call. */
typedef struct vs_wal_record {
  uint64_t lsn;
  uint64_t stored_at_ms;
  vs_op op;
  uint8_t op_hash[VS_HASH_BYTES];
} vs_wal_record;

/** Called once per record, in LSN order. Return VS_OK to go on; any other
 *  value stops the replay and is returned by vs_wal_replay. */
typedef vs_err (*vs_wal_handler)(const vs_wal_record *record, void *ctx);

/** Replay records with lsn >= from_lsn in order, in one read-only
 *  transaction (a consistent snapshot; concurrent writers are not blocked).
 *  Stops at the first handler error and returns it.
 *  Gaps (compacted records) are stepped over.
 *  @return VS_OK, the handler's error, VS_ERR_CORRUPT (checksum mismatch, a
 *  record whose LSN field is not its key, or one that does not decode) or
 *  VS_ERR_STORE. */
VS_API vs_err vs_wal_replay(vs_store *store, uint64_t from_lsn, vs_wal_handler handler, void *ctx);

/** The highest LSN (0 for an empty log). */
VS_API vs_err vs_wal_last_lsn(vs_store *store, uint64_t *lsn_out);

/** Find the LSN of operation `id`. @return VS_OK or VS_ERR_NOTFOUND. */
VS_API vs_err vs_wal_find(vs_store *store, const vs_op_id *id, uint64_t *lsn_out);

/** The chain head of `origin`: its highest seq held (0 if none), that
 *  operation's hash (zero if none) and hlc. */
VS_API vs_err vs_wal_head(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t *seq_out,
                   uint8_t hash_out[VS_HASH_BYTES], uint64_t *hlc_out);

#ifdef __cplusplus
}
#endif
#endif
