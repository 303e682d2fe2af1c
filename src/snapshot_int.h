/* Snapshots, what install (snapshot.c) and rebase (snapshot_rebase.c)
 * share: reading and checking a snapshot's header, and loading its body
 * into a store inside the caller's write transaction. Not installed. */
#ifndef VIXSYNC_SNAPSHOT_INT_H
#define VIXSYNC_SNAPSHOT_INT_H

#include "internal.h"
#include "vixsync/snapshot.h"

/* Offsets in the header (snapshot.c has the layout). */
#define VS_SNAP_MESH_ID 16u
#define VS_SNAP_SIGNER 48u
#define VS_SNAP_HLC 80u
#define VS_SNAP_GC_FLOOR 88u
#define VS_SNAP_STATE_HASH 96u
/* In an anchor record (vs_snap_anchor): origin 32, then these. */
#define VS_SNAP_ANCHOR_SEQ 32u
#define VS_SNAP_ANCHOR_HLC 40u
#define VS_SNAP_ANCHOR_HASH 48u
#define VS_SNAP_ANCHOR_SIG 80u

/** A snapshot's header, checked: the signer's signature, every anchor's
 *  origin signature and HLC, the chunk hashes against the signed root. */
typedef struct vs_snap_head {
  uint8_t *hdr; /* the header bytes (hdr_bytes) */
  size_t hdr_bytes;
  uint32_t n_origins, n_chunks;
  uint32_t version;                 /* the format: 2 or VS_SNAPSHOT_VERSION */
  uint8_t (*hashes)[VS_HASH_BYTES]; /* the chunks' */
  uint64_t hlc_max;                 /* wall ms: now + the drift a run may have */
  uint64_t total;                   /* bytes read so far */
} vs_snap_head;

/** Read and check the header and the chunk hashes through fn (nothing
 *  of the store is read). On error nothing is left to free. */
vs_err vs_snap_head_read(vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms, vs_snap_head *h);
void vs_snap_head_free(vs_snap_head *h);

/** `origin`'s anchor record in the header (ORIGIN_REC bytes: the offsets
 *  above), NULL when the snapshot anchors no chain of it. */
const uint8_t *vs_snap_anchor(const vs_snap_head *h, const uint8_t origin[VS_ORIGIN_BYTES]);

/** The store is of the snapshot's mesh (VS_ERR_STATE: another one, or a
 *  managed snapshot for a store that has not joined). */
/* vs_snapshot_rebase for a too-late replica (node_snap.c): also every own
 * data op above `held` (the seq of our chain peers are known to hold) and
 * not marked delivered is orphaned, from the top of the chain down to the
 * last membership op, and (after_hlc > 0) down to the last op at or below
 * after_hlc: with ack_quorum > 1 an op one peer holds is not marked
 * delivered, so only ops written after the device lost touch are surely
 * held by none. held UINT64_MAX: vs_snapshot_rebase, which does the same
 * with held 0 when the store is marked late (meta "late": a daemon that
 * could not rebase over a session, rebased from a file). */
vs_err vs_snap_rebase_late(vs_store *store, vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms, uint64_t held,
                           uint64_t after_hlc, vs_rebase_info *info);

vs_err vs_snap_mesh_check_txn(MDB_txn *txn, const vs_store *store, const vs_snap_head *h);

/** Read the chunks through fn and load them into the store in `txn`:
 *  each chunk checked against its hash, the counts and state hash the
 *  header states, the anchors (horizons and heads; the store's own chain
 *  must reach its anchor with the same hash), the HLC, the member view
 *  (the signer an active member), the live state rebuilt (base + the ops
 *  above the horizons). The caller commits or aborts. */
vs_err vs_snap_body_txn(MDB_txn *txn, vs_store *store, vs_snap_head *h, vs_snapshot_read_fn fn, void *ctx,
                        vs_snapshot_info *info);

#endif
