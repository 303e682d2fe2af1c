/* vixsync: the store, one LMDB environment per directory.
 *
 * All durable state of a node lives in one LMDB environment: the WAL, the
 * op-id and idempotency-key indexes, the per-origin chain heads, the outbox
 * and (later) the materialized state. A change is durable exactly when its
 * LMDB write transaction commits. LMDB needs no recovery after a crash.
 *
 * Several processes may open the same directory at once (LMDB's
 * multi-process locking); within one process a directory may be open only
 * once (LMDB forbids a second environment on the same files: the second
 * vs_store_open returns VS_ERR_BUSY). Never carry an open store across
 * fork(): open it again in the child.
 */
#ifndef VIXSYNC_STORE_H
#define VIXSYNC_STORE_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/identity.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A signer signs its chain head at least every this many bytes of encoded
 *  operations inside one commit, so runs stay bounded for receivers. */
#define VS_SIGN_INTERVAL_BYTES (64u * 1024u)

/** Durability of a commit. */
typedef enum vs_durability {
  /** fsync at every commit: a committed write survives power loss. */
  VS_DURABILITY_SYNC = 0,
  /** No fsync (MDB_NOSYNC): a commit survives a crash of the process
   *  (kill -9), not of the machine. For the simulator and benchmarks. */
  VS_DURABILITY_NOSYNC = 1,
} vs_durability;

/** The store format this build reads and writes (meta["vixsync"]). A store
 *  of format 5 is upgraded when it opens (the databases format 6 added are
 *  created, empty, in one transaction); any other is refused
 *  (VS_ERR_VERSION). 6: compaction (the base state and the horizons:
 *  docs/storage.md); 5: a record per membership op (the `mesh` database); 4: fork verdicts keep their evidence (apply.h); 3: 24-byte op ids
 *  (op.h); 2: state records keep their digest. */
#define VS_STORE_FORMAT 7u

#define VS_STORE_MAP_BYTES_DEFAULT (1024ull * 1024ull * 1024ull) /* 1 GiB */
#define VS_STORE_MAP_BYTES_MIN (64ull * 1024ull)

typedef struct vs_store_cfg {
  /** The size of the struct this program was compiled with, written by
   *  vs_store_cfg_default(&cfg): the library reads no more of it, so fields added
   *  later never break a compiled caller. Start every cfg from vs_store_cfg_default. */
  uint32_t cfg_bytes;
  vs_durability durability;
  /** Maximum size of the store; 0 means VS_STORE_MAP_BYTES_DEFAULT. A write
   *  that would pass it fails with VS_ERR_FULL and changes nothing. */
  uint64_t map_bytes;
  /** Create the store if the directory holds none (the directory itself must
   *  exist). When false, a directory without a store gives VS_ERR_NO_STORE. */
  bool create;
} vs_store_cfg;

/** The default configuration (sync durability, default map size, create);
 *  use it through vs_store_cfg_default(&cfg), which passes sizeof cfg
 *  (cfg_bytes). */
VS_API void vs_store_cfg_default_sized(vs_store_cfg *cfg, size_t cfg_bytes);
/** Fill `*cfg` (a vs_store_cfg) with the defaults and its cfg_bytes. */
#define vs_store_cfg_default(cfg) vs_store_cfg_default_sized((cfg), sizeof *(cfg))

typedef struct vs_store vs_store;

/** Open (or create) the store in directory `dir`.
 *  @param[out] store_out the open store, to close with vs_store_close.
 *  @param cfg NULL for the defaults, else a cfg started with
 *  vs_store_cfg_default(&cfg).
 *  @return VS_OK, VS_ERR_INVAL (also a cfg not started with
 *  vs_store_cfg_default), VS_ERR_NO_STORE (nothing there and
 *  cfg->create is false, or the directory is missing), VS_ERR_FOREIGN (not a
 *  vixsync store), VS_ERR_VERSION (a vixsync store of a format other than
 *  VS_STORE_FORMAT, older or newer, that this build does not upgrade:
 *  vs_store_format says which; nothing is changed), VS_ERR_BUSY (already open in this process), VS_ERR_NOMEM or
 *  VS_ERR_STORE. */
VS_API vs_err vs_store_open(const char *dir, const vs_store_cfg *cfg, vs_store **store_out);

/** Read the format version of the store in `dir` without opening it for use
 *  (read-only, nothing written), to name it when vs_store_open returns
 *  VS_ERR_VERSION: "store format 2, this build reads 3".
 *  @param[out] format_out the format recorded in the store.
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_NO_STORE (no directory or no store in
 *  it), VS_ERR_FOREIGN (not a vixsync store), VS_ERR_BUSY (the store is open
 *  in this process: it is then of VS_STORE_FORMAT) or VS_ERR_STORE. */
VS_API vs_err vs_store_format(const char *dir, uint32_t *format_out);

/** Close the store, releasing its owner lock if held. NULL is a no-op. The
 *  caller must have ended its transactions. */
VS_API void vs_store_close(vs_store *store);

/** Change the maximum size (for instance after VS_ERR_FULL). No transaction of
 *  this process may be open. @return VS_OK, VS_ERR_INVAL or VS_ERR_STORE. */
VS_API vs_err vs_store_set_map_bytes(vs_store *store, uint64_t map_bytes);

/** Flush everything committed to disk (useful in NOSYNC mode). */
VS_API vs_err vs_store_sync(vs_store *store);

/** Take the owner lock of the directory (a non-blocking exclusive flock on
 *  DIR/owner.lock): the one process that drives the outbox (the daemon, or the
 *  single process embedding the library). It is released by vs_store_close or
 *  by the death of the process. @return VS_OK (also when already held by this
 *  store), VS_ERR_BUSY (another process holds it) or VS_ERR_STORE. */
VS_API vs_err vs_store_lock_owner(vs_store *store);

/** True when this store holds the owner lock. */
VS_API bool vs_store_is_owner(const vs_store *store);

/** Give the store its node identity (copied; wiped at close or by passing
 *  NULL). From then on every local write whose origin is identity->pk signs
 *  the origin's new chain head in the write's transaction (and at least every
 *  VS_SIGN_INTERVAL_BYTES inside a large batch), so peers can verify it.
 *  Writes for other origins, or without an identity, are not signed: they
 *  stay local (a peer refuses unsigned runs). @return VS_OK or VS_ERR_INVAL. */
VS_API vs_err vs_store_set_identity(vs_store *store, const vs_identity *identity);

/** The directory the store was opened on (as given). */
VS_API const char *vs_store_dir(const vs_store *store);

/** Bytes of the map in use (pages in use times the page size: the
 *  high-water mark less the free pages LMDB will reuse) and the map size,
 *  for monitoring. vs_store_space says more. */
VS_API vs_err vs_store_usage(vs_store *store, uint64_t *used_bytes_out, uint64_t *map_bytes_out);

/** Where a store's bytes are (one read transaction). */
typedef struct vs_store_space {
  uint64_t used_bytes;       /**< pages in use: high_water_bytes - free_bytes */
  uint64_t free_bytes;       /**< pages freed and reusable (LMDB's free list): the file keeps them */
  uint64_t high_water_bytes; /**< pages ever used: the file's extent within the map (it never falls) */
  uint64_t file_bytes;       /**< the data file's size on disk */
  uint64_t map_bytes;        /**< the map size (the store's bound) */
} vs_store_space;

/** The store's space. The free list is read in full (bounded by its
 *  records; status and monitoring, not a hot path).
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_STORE (incl. the data file's stat). */
VS_API vs_err vs_store_space_get(vs_store *store, vs_store_space *out);

/** What one vs_store_compact call did (docs/storage.md, "Compaction"). */
typedef struct vs_compact_info {
  uint64_t ops_folded;      /**< ops folded into the base state: gone from the log */
  uint64_t records_dropped; /**< WAL records deleted (membership ops stay) */
  uint64_t origins_moved;   /**< origins whose horizon rose */
  uint64_t held_by_outbox;  /**< origins held below the cut by an own op an HTTP sink has yet to deliver */
  uint64_t held_by_mesh;    /**< ... by a membership op without its own signature */
  uint32_t members;         /**< active members (0: an open mesh, which never compacts its log) */
  uint32_t members_acked;   /**< of them, with an acknowledgement held (all: the cut can move) */
  uint64_t stable_ops;      /**< the stable cut: the sum of its seqs */
  uint32_t pending_invites; /**< invites not used yet nor expired: while any, nothing is compacted (the
                                 device may join holding nothing that no acknowledgement accounts for) */
  uint32_t unfinal_members; /**< members whose admission another admit of the same invite could still
                                 displace (an invite up their admission chain not expired): their ops stay */
  uint64_t horizon_breaches; /**< verdicts (fork, revocation cut, lost admission) that reached below a
                                  horizon, ever: this store kept ops others void (docs/storage.md) */
  uint32_t revoked_holding; /**< revoked devices whose revocation could still be lifted: their last
                                 acknowledgement lowers the cut (docs/storage.md, "Membership finality") */
  bool more;                /**< the budget ran out: call again */
  uint32_t members_suspended; /**< active members left out of the cut: silent past suspend_after */
  uint64_t tombstones_dropped; /**< tombstones dropped below gc_floor's bound (docs/storage.md, "Dropping tombstones") */
  uint64_t incr_rows_folded;   /**< counter rows folded into per-(target, origin) totals */
  uint64_t gc_floor;           /**< the store's gc_floor afterwards: a data op at or below it is refused */
  uint32_t gc_pinned;          /**< what held tombstone drops and counter folds back: members silent past
                                    suspend_after but not 2 x suspend_after (the bound stays at their last op
                                    held), and invites that expired unused that recently (a device may have
                                    joined on one and not be heard yet): docs/storage.md, "Dropping tombstones" */
} vs_compact_info;

/** A member silent this long leaves the stable cut's minimum (docs/storage.md,
 *  "Members who stop acking"): 30 days, like a grace period, but judged on
 *  HLCs and detected (it re-bootstraps from a snapshot when it returns). */
#define VS_SUSPEND_AFTER_MS_DEFAULT (30ull * 24u * 3600u * 1000u)

/** The bound vs_store_compact uses (default VS_SUSPEND_AFTER_MS_DEFAULT; 0:
 *  never suspend: one silent member then holds compaction for ever). Silence
 *  is judged on the store's HLC, not a clock: a member is suspended when
 *  both its latest acknowledgement's HLC and the time this store stored the
 *  oldest op it lacks are older than the bound, by the physical part of the
 *  store's HLC. A member none of
 *  whose acknowledgements reached this store is never suspended, and a
 *  store with no other member still counted suspends nobody (alone, it may
 *  be the one cut off). It counts again as soon as it acknowledges.
 *  @return VS_OK, VS_ERR_INVAL. */
VS_API vs_err vs_store_set_suspend_after(vs_store *store, uint64_t suspend_after_ms);

/** Compact the log below the stable cut: every active member's signed
 *  acknowledgement (docs/protocol.md, "Acknowledgements") says it holds
 *  those very ops, so they are folded into the base state and leave the
 *  log, in one write transaction, at most about `max_ops` (>= 1) of them
 *  (call again while info->more). An open mesh, one where a member has not
 *  acknowledged yet, or one with an invite not used yet nor expired,
 *  compacts nothing. `info` may be NULL.
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_FULL, VS_ERR_NOMEM, VS_ERR_STORE. */
VS_API vs_err vs_store_compact(vs_store *store, uint64_t max_ops, vs_compact_info *info);

/** Write a compacting copy of the store into `dest_dir` (an existing
 *  directory without a data.mdb): LMDB's compacting copy (free pages left
 *  out, so the file is about the size of the pages in use,
 *  vs_store_space_get's used_bytes), from one read transaction (writers go
 *  on; what commits after it began is not in the copy), fsync'ed. The
 *  store's own file never shrinks (LMDB reuses its free pages instead):
 *  this is how a user gets the disk space back, by moving the copy into
 *  place while nothing has the store open (vix-node compact --copy).
 *  @return VS_OK; VS_ERR_INVAL; VS_ERR_EXISTS (dest_dir holds a data.mdb);
 *  VS_ERR_FULL (the disk); VS_ERR_NOMEM; VS_ERR_STORE (dest_dir missing,
 *  not writable). */
VS_API vs_err vs_store_copy_compact(vs_store *store, const char *dest_dir);

/** Whether `origin` was voided by fork evidence: a device (an equivocating
 *  writer, or a copied data directory or restored backup that wrote on)
 *  signed two different operations at one seq. The store that holds the
 *  evidence voids that origin's operations from the seq on, on every node,
 *  whichever branch it held (docs/protocol.md, "Forks: one identity, two
 *  histories"); writes and runs of the origin that reach the void range
 *  are then refused with VS_ERR_FORKED. An application asks here, for
 *  instance, to tell a user that one device's writes from some point on
 *  were dropped, or at start-up whether its own identity is spent.
 *  @param[out] void_from_out the origin's first void seq (>= 1): its
 *  operations below it stand, those from it on are void.
 *  @return VS_OK (a verdict is held), VS_ERR_NOTFOUND (none: nothing of the
 *  origin is void), VS_ERR_INVAL (a NULL argument), VS_ERR_CORRUPT or
 *  VS_ERR_STORE. */
VS_API vs_err vs_store_fork_get(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t *void_from_out);

#ifdef __cplusplus
}
#endif
#endif
