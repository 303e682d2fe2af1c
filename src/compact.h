/* Compaction (issue 17; docs/storage.md, "Compaction"): the ops of each
 * origin up to a stable cut leave the log, folded into the base state; the
 * origin's horizon keeps the seq, hash and HLC of the op at the cut, the
 * chain's anchor (a device bootstrapped from a snapshot has the same
 * horizons, from the snapshot's header). Not installed.
 *
 * The cut must be stable: every member holds every op up to it, with the
 * same hashes (the caller computes it from the members' signed
 * acknowledgements). Then no later op is ordered before what was folded,
 * no fork verdict or revocation cut can void it (voids.c starts above the
 * horizon), and peers that lack those ops can only be members' new devices,
 * which start from a snapshot (chain.h: VS_ERR_BEHIND_HORIZON).
 *
 * Nothing a later op needs is dropped: the base state keeps, per target,
 * the winning put or del (its HLC and origin: a tombstone is kept) and
 * every incr after it (a late base re-counts them), so an op of any HLC
 * that comes later merges exactly as it would have without compaction;
 * what goes: values a newer put or del superseded, and the incr rows
 * ordered before a folded base (they could count again only if that base
 * were voided, and nothing voids below a horizon). Then tombstones and
 * counted incrs go too, below a bound every op not folded yet is above
 * (the walk of vs_state_gc_step_txn; docs/storage.md, "Dropping
 * tombstones"): a tombstone at or below it is dropped, incr rows at or
 * below it fold into per-(target, origin) totals, and gc_floor (meta)
 * rises to the highest HLC of what went; a data op at or below gc_floor
 * that comes later is refused (VS_ERR_BELOW_FLOOR), never merged.
 *
 * What stays below the horizon: membership ops (the reducer reads them by
 * LSN; their records, op ids and signatures stay, and one without its own
 * signature holds its origin's horizon below it, so that every kept
 * membership op can be proven alone, as a snapshot carries it), and own ops that some
 * sink has yet to deliver (an HTTP sink's PENDING entry: their origin's
 * compaction stops before the first of them). */
#ifndef VIXSYNC_COMPACT_H
#define VIXSYNC_COMPACT_H

#include "internal.h"

typedef struct vs_cut_entry {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq; /* compact this origin up to here (clamped to its head) */
} vs_cut_entry;

typedef struct vs_compact_result {
  uint64_t ops_folded;      /* ops folded into the base state (their effect moved there) */
  uint64_t records_dropped; /* WAL records deleted (with their op ids and signatures) */
  uint64_t incrs_dropped;   /* incr rows ordered before a folded base: they never count again */
  uint64_t origins_moved;   /* origins whose horizon rose */
  uint64_t held_by_outbox;  /* origins stopped short of the cut: an own op a sink has to deliver */
  uint64_t held_by_mesh;    /* ... or a membership op without its own signature (the ops up to the
                               next signed one prove it: they stay) */
  bool more;                /* the budget ran out: call again (a call that does not spend it all did
                               everything it could) */
  uint64_t gc_visited;         /* base records the tombstone walk visited (it moved: commit) */
  uint64_t tombstones_dropped; /* tombstones dropped below the bound (docs/storage.md, "Dropping tombstones") */
  uint64_t incr_rows_folded;   /* incr rows folded into per-(target, origin) totals */
  uint32_t gc_pinned;          /* members silent past suspend_after holding the bound (compact.c) */
  uint64_t gc_bound;           /* the bound this call used: every op not folded here is above it */
} vs_compact_result;

/** Compact, inside the caller's write transaction, each origin of `cut`
 *  (n entries, any order; an origin twice is VS_ERR_INVAL) from its horizon
 *  up to the last op the origin signed at or below min(cut seq, its head)
 *  (the anchor is a signed op: a snapshot hands it on), about `budget` ops
 *  in all (>= 1; past it only to reach an origin's next signed op).
 *  Origins with a fork verdict are skipped (their stable cut never
 *  advances). Bounded by `budget` ops, each a few B-tree operations. The
 *  result is added into *res. Resumable: call again with the same cut.
 *  gc_cap (UINT64_MAX: none) caps the bound under which tombstones drop
 *  and incr rows fold (compact_final.h: invites that may hide a device);
 *  settled (settled_n pks) are revoked devices whose revocation is final:
 *  folded to their cut, they no longer bound it. */
vs_err vs_compact_txn(MDB_txn *txn, vs_store *store, const vs_cut_entry *cut, uint32_t n, uint64_t budget,
                      uint64_t gc_cap, const uint8_t (*settled)[VS_ORIGIN_BYTES], uint32_t settled_n,
                      vs_compact_result *res);

/** The same in its own write transaction (one per call). */
vs_err vs_compact_to(vs_store *store, const vs_cut_entry *cut, uint32_t n, uint64_t budget, vs_compact_result *res);

#endif
