/* vixsync: snapshots, the state at a version vector for a new device
 * (issue 17; docs/storage.md, "Snapshots").
 *
 * A snapshot holds what a device needs to start where the mesh is instead
 * of replaying its history: the state (every target's winning put or del,
 * but tombstones its maker's compaction dropped, and every incr counted,
 * those compaction folded as per-origin totals), the membership ops with their signatures, and per origin
 * the chain's anchor (seq, hash and the origin's signature of it). It is
 * signed by the store that made it and cut into chunks, each checked
 * against a root the signature covers, so a changed byte anywhere is
 * refused before anything is installed. Installing is one transaction: a
 * crash leaves the store as it was or bootstrapped. Anti-entropy then goes
 * on from the snapshot's vector (the anchors): the device holds nothing
 * below it and serves nothing from there (VS_ERR_BEHIND_HORIZON).
 *
 * What is checked and what is vouched for: the anchors are the origins'
 * own signatures, membership ops theirs (so a snapshot cannot admit a
 * device), the state hash is recomputed from the entries; the entries
 * themselves (which value won, which incrs exist) are vouched for by the
 * signer, a member of the mesh (in a managed mesh: an active member as the
 * snapshot's own membership ops say). */
#ifndef VIXSYNC_SNAPSHOT_H
#define VIXSYNC_SNAPSHOT_H

#include "vixsync/api.h"

#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_SNAPSHOT_VERSION 3u /**< 3 carries membership ops past the anchors (AHEAD); 2 is still read */
#define VS_SNAPSHOT_CHUNK_BYTES (64u * 1024u)      /**< chunks are cut past this (one item may make one longer) */
#define VS_SNAPSHOT_CHUNK_BYTES_MAX (160u * 1024u) /**< no chunk is longer: a longer one is refused */
/** Bounds on what a header may announce: a forged header costs its reader
 *  at most 9.4 MB (origins) and 8 MB (chunk hashes) before its signature is
 *  checked. 65,536 chains; 262,144 chunks of 64 KiB: 16 GiB of state. */
#define VS_SNAPSHOT_ORIGINS_MAX (1u << 16)
#define VS_SNAPSHOT_CHUNKS_MAX (1u << 18)

/** Takes the next `len` bytes of a snapshot being made. */
typedef vs_err (*vs_snapshot_write_fn)(void *ctx, const uint8_t *bytes, size_t len);
/** Fills `buf` with exactly the next `len` bytes of a snapshot being read:
 *  VS_OK, or an error (VS_ERR_TRUNCATED at its end) that stops the install. */
typedef vs_err (*vs_snapshot_read_fn)(void *ctx, uint8_t *buf, size_t len);

typedef struct vs_snapshot_info {
  uint8_t signer[VS_ORIGIN_BYTES]; /**< the device that made it */
  uint8_t mesh_id[32];             /**< zero: an open mesh */
  uint8_t state_hash[32];          /**< the state it holds (vs_state_hash once installed, before newer ops) */
  uint64_t hlc;                    /**< the signer's HLC when it was made */
  uint32_t origins;                /**< chains anchored */
  uint32_t chunks;
  uint64_t entries;                /**< targets */
  uint64_t incrs;
  uint64_t mesh_ops;
  uint64_t bytes;                  /**< the whole snapshot */
  uint64_t gc_floor;               /**< the maker's gc_floor, which the installer adopts: a data op at or below it
                                        is refused (docs/storage.md, "Dropping tombstones") */
} vs_snapshot_info;

/** Make a snapshot of `store` (which needs an identity: it signs), writing
 *  its bytes through `fn`, from one read transaction (a consistent state;
 *  writers are not blocked). Reads the state twice (the chunks' root is in
 *  the signed header, which comes first). `info` may be NULL.
 *  @return VS_OK; VS_ERR_INVAL; VS_ERR_NO_IDENTITY; VS_ERR_FORKED (an
 *  origin's head is vouched for by fork evidence only: not yet carried);
 *  VS_ERR_STATE (a chain head or membership op without its signature);
 *  VS_ERR_LIMIT (more than VS_SNAPSHOT_ORIGINS_MAX origins or
 *  VS_SNAPSHOT_CHUNKS_MAX chunks); fn's error; VS_ERR_NOMEM, VS_ERR_STORE. */
VS_API vs_err vs_snapshot_make(vs_store *store, vs_snapshot_write_fn fn, void *ctx, vs_snapshot_info *info);

/** Install a snapshot read through `fn` into `store`, in one transaction.
 *  The store must hold no op of another origin than its own identity's (a
 *  new device: empty, or just joined), and must be of the snapshot's mesh
 *  (a managed store joins first). Every check happens before the commit;
 *  on any error nothing is changed. `now_ms`: the caller's wall clock; an
 *  HLC in the snapshot past it plus VS_MAX_DRIFT_MS_DEFAULT is refused, as
 *  a run is (apply.h).
 *  @return VS_OK; VS_ERR_INVAL; VS_ERR_FUTURE (an HLC past now + drift); VS_ERR_MALFORMED, VS_ERR_VERSION,
 *  VS_ERR_TRUNCATED (fn's) (not a snapshot, or cut short); VS_ERR_AUTH (a
 *  signature, chunk or the state hash does not match: a changed byte);
 *  VS_ERR_NOT_MEMBER (the signer is no active member of the mesh it
 *  carries); VS_ERR_STATE (the store holds other origins' ops, belongs to
 *  another mesh, or the snapshot holds more of this device's own chain than
 *  the store: a restored copy); VS_ERR_FULL, VS_ERR_NOMEM, VS_ERR_STORE. */
VS_API vs_err vs_snapshot_install(vs_store *store, vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms,
                                  vs_snapshot_info *info);

/* ---- re-bootstrap of a store that holds data, and orphans ----
 * (docs/storage.md, "Re-bootstrap and orphans") */

/** What one vs_snapshot_rebase did. */
typedef struct vs_rebase_info {
  vs_snapshot_info snapshot;  /**< as vs_snapshot_install's */
  uint64_t own_anchor;        /**< the snapshot's seq of this store's own chain (0: it anchors none) */
  uint64_t own_head_before;   /**< our own chain's head before */
  uint64_t own_head_after;    /**< ... and after: the anchor, or the last own op kept above it */
  uint64_t own_held;          /**< own ops at or below the anchor left the log: the mesh holds them */
  uint64_t own_kept;          /**< own ops above the anchor kept in the chain: they are sent as usual */
  uint64_t orphaned;          /**< own ops moved to the orphans (never sent) */
  uint64_t first_orphan;      /**< the first new orphan's id (vs_orphan.id; 0: none) */
  uint64_t ops_dropped;       /**< other origins' ops that left the log (the snapshot's state has them) */
  uint64_t entries_dropped;   /**< undelivered outbox entries (any sink) of own ops that left the log */
  uint64_t others_kept;       /**< other origins' ops above the snapshot's anchors that stayed (a later field) */
} vs_rebase_info;

/** Re-bootstrap a store that already holds data from a snapshot: a member
 *  returning behind a horizon, or a store restored from a backup whose own
 *  chain is behind what the mesh holds. In ONE write transaction: the
 *  snapshot is verified as vs_snapshot_install verifies it (nothing
 *  changes on any error), then the store's log, state, heads, horizons,
 *  member view, fork verdicts and held acknowledgements are replaced by the
 *  snapshot's, keeping the store's identity, its sinks, its HLC (raised to
 *  the snapshot's) and its own ops the mesh does not hold:
 *  - own ops at or below the snapshot's anchor of our chain leave the log
 *    (the snapshot's state has them), when we hold the op at the anchor
 *    with the anchor's hash (the chain's links prove the rest);
 *  - otherwise (our chain is behind the anchor, or our op there differs: a
 *    restored backup re-signed those seqs) the first own op at a seq up to
 *    the anchor that no ranges-only sink (the mesh's) delivered, or the op
 *    at the anchor, starts the orphans (with no ranges-only sink at all,
 *    the first own op in the log: nothing tells which ones the mesh took);
 *  - own ops above the anchor stay in the chain and are sent, up to the
 *    first whose HLC is at or below the snapshot's gc_floor or whose seq
 *    the mesh is known to hold already (the restore mark:
 *    vs_write_restoring), which starts the orphans;
 *  - an orphan and every later own op are moved to the orphans
 *    (vs_orphans_list), never sent, their outbox entries dropped;
 *  - another origin's ops above the snapshot's anchor of its chain stay
 *    in the log and the live state (they continue the chain: we hold its
 *    op at the anchor with the anchor's hash and compacted no further);
 *    a chain that does not continue the anchor, one with a fork verdict
 *    held, or a kept data op at or below the snapshot's gc_floor refuses
 *    the rebase (VS_ERR_STATE).
 *  The chain then resumes at the anchor (or after the kept ops): the next
 *  write gets that seq + 1. The store's identity is required (its chain is
 *  what is kept). Called on a store no vs_node has open, or by the node
 *  itself (it reloads what it caches). After the commit, the orphan
 *  callback (vs_store_set_orphan_fn) sees each new orphan once. `info` may
 *  be NULL.
 *  @return as vs_snapshot_install, and VS_ERR_NO_IDENTITY; VS_ERR_FORKED
 *  (this store holds a fork verdict on its own identity: it needs a new
 *  one, a rebase would only hide the verdict here); VS_ERR_STATE
 *  also when the snapshot anchors our chain below what this store
 *  compacted of it (a stale snapshot), or a membership op of ours would be
 *  orphaned (never done: restore it from a newer snapshot); VS_ERR_LIMIT:
 *  the orphans would pass VS_ORPHANS_MAX or VS_ORPHANS_BYTES_MAX (replay
 *  or drop orphans first); VS_ERR_MALFORMED also for a gc_floor past the
 *  snapshot's HLC; a store a daemon marked a too-late replica (meta
 *  "late": back after about twice suspend_after out of touch) also has
 *  every own data op no peer is known to hold orphaned, and the mark
 *  cleared (docs/storage.md, "Members who stop acking"); VS_ERR_HELD: the
 *  gc_floor would orphan an own op a
 *  ranges-only sink marked delivered (a peer holds it: writing its seq
 *  again would fork this identity; wait for a snapshot that anchors it). */
VS_API vs_err vs_snapshot_rebase(vs_store *store, vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms,
                                 vs_rebase_info *info);

#define VS_ORPHANS_MAX 65536u                /**< orphans a store holds at most */
#define VS_ORPHANS_BYTES_MAX (64u << 20)     /**< and at most this many bytes of their ops */

/** One orphan: an own op that a rebase took out of the chain. */
typedef struct vs_orphan {
  uint64_t id;        /**< increasing, never reused in a store */
  uint64_t seq;       /**< the seq it had in our chain */
  uint64_t hlc;
  const uint8_t *op;  /**< its encoding (vixsync/op.h: vs_op_decode), valid during the call */
  uint32_t op_bytes;
} vs_orphan;

typedef vs_err (*vs_orphan_fn)(void *ctx, const vs_orphan *orphan);

/** Each orphan held, in id order, from one read transaction. A non-OK
 *  return of fn stops the walk and is returned. */
VS_API vs_err vs_orphans_list(vs_store *store, vs_orphan_fn fn, void *ctx);

/** Write every orphan's kind, target and value again as a new own op (a
 *  fresh seq and HLC, as vs_write does), then remove it. Idempotent: each
 *  write carries the idempotency key "vixsync/orphan/" + the hex of the
 *  orphan's op hash, so a crash between the writes (one transaction) and
 *  the removal (the next) writes nothing twice when called again.
 *  *count_out (may be NULL): orphans replayed.
 *  @return VS_OK; VS_ERR_NO_IDENTITY; vs_write_batch's errors (nothing
 *  written, nothing removed). */
VS_API vs_err vs_orphans_replay(vs_store *store, uint64_t now_ms, uint64_t *count_out);

/** Remove one orphan (the application decided it is not wanted).
 *  @return VS_OK, VS_ERR_NOTFOUND, VS_ERR_STORE. */
VS_API vs_err vs_orphans_drop(vs_store *store, uint64_t id);

/** Called once per orphan a rebase makes, after its commit (NULL: none). */
VS_API vs_err vs_store_set_orphan_fn(vs_store *store, vs_orphan_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
