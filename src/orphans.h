/* Orphans (vixsync/snapshot.h; docs/storage.md, "Re-bootstrap and
 * orphans"): own ops a rebase took out of the chain, kept for the
 * application until it replays or drops them. Not installed.
 *
 * They live in meta under "orphan:" + id u64be (ids increasing from 1,
 * meta "orphan_next" u64le the next one), so no new database (no store
 * format change). A record: version u8 (1), seq u64le, hlc u64le, op
 * bytes u32le, the op's encoding. At most VS_ORPHANS_MAX records and
 * VS_ORPHANS_BYTES_MAX bytes of ops. */
#ifndef VIXSYNC_ORPHANS_H
#define VIXSYNC_ORPHANS_H

#include "internal.h"
#include "vixsync/snapshot.h"

#define VS_ORPHAN_REC_VERSION 1u
#define VS_ORPHAN_REC_HEADER_BYTES 21u

/** What the orphans hold: records and bytes of ops. Bounded by VS_ORPHANS_MAX. */
vs_err vs_orphans_usage_txn(MDB_txn *txn, const vs_store *store, uint64_t *count_out, uint64_t *bytes_out);

/** Add one orphan (the caller checked the bounds); *id_out its id. */
vs_err vs_orphans_put_txn(MDB_txn *txn, const vs_store *store, uint64_t seq, uint64_t hlc, const uint8_t *op,
                          uint32_t op_bytes, uint64_t *id_out);

/** Call fn for each orphan with id >= from, in id order. */
vs_err vs_orphans_walk_txn(MDB_txn *txn, const vs_store *store, uint64_t from, vs_orphan_fn fn, void *ctx);

#endif
