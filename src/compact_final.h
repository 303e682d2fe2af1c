/* Membership finality for compaction (issue 17; docs/storage.md,
 * "Membership finality"). Not installed.
 *
 * The stable cut (acks.h) says what every *active* member holds. That is
 * enough for data, not for membership: a verdict can still change after
 * the cut moved, and a change that voids ops below a horizon cannot be
 * applied there (voids.c starts above it), so the node that compacted and
 * one that did not would disagree for good. Two ways a verdict changes
 * late, and what holds the cut for each:
 *
 *  - a lost admission: another admit naming the same invite with a smaller
 *    (hlc, pk) arrives later (one token used on two devices) and voids the
 *    first device's ops and, through its invites, its invitees'. While the
 *    invite that admitted a device, or any of its ancestors', is not
 *    expired by the store's HLC, that device's origin compacts nothing.
 *    (An honest device signs its admit before the expiry; it may still
 *    arrive after it, from a device that joined offline: the documented
 *    bound. Unused unexpired invites hold every origin, as before.)
 *  - a lifted revocation: a revoked device more senior than its revoker
 *    can, with a revoke of its own (kept as an orphan record past its
 *    cut), make its revocation ineffective and cut the revoker below what
 *    the others held. So a revoked device keeps holding the cut with its
 *    last acknowledgement (its record is kept when it is revoked) until it
 *    is *settled*: junior to its revoker (depth, admitting invite's (hlc,
 *    inviter), pk: the reducer's order) and the revoke held by every active
 *    member (at or below their cut of the revoker's chain). A revoked
 *    device with no acknowledgement held, unsettled, holds every origin at
 *    0. Why settled is enough: lifting a settled revoke takes a revoke of
 *    its revoker by a device more senior still; an active one wrote it
 *    after acknowledging the revoke (or we hold it: its acknowledgement
 *    verified), so its cut is past the revoke; an unsettled one is in the
 *    minimum; a settled one needs a more senior one again (induction on
 *    seniority).
 *
 * Both only lower the cut. */
#ifndef VIXSYNC_COMPACT_FINAL_H
#define VIXSYNC_COMPACT_FINAL_H

#include "compact.h"
#include "internal.h"

typedef struct vs_final_info {
  uint32_t pending_invites;   /* invites neither used nor expired: while any, nothing compacts */
  uint32_t unfinal_members;   /* members whose admission can still be lost (an invite up their
                                 admission chain not expired): their origins compact nothing */
  uint32_t revoked_holding;   /* revoked devices not settled: their last ack lowers the cut */
  uint32_t revoked_settled;   /* revoked devices that no longer count */
  uint32_t revoked_suspended; /* revoked devices not settled but silent past suspend_after (acks.h):
                                 they no longer count either (the documented bound) */
  uint64_t gc_cap;            /* the GC bound's cap from invites (UINT64_MAX: none): the HLC of the
                                 oldest invite that expired unused in our view less than
                                 2 x suspend_after ago, less one (compact.c, gc_bound) */
  uint32_t gc_pinned_invites; /* those invites */
  uint8_t (*settled)[VS_ORIGIN_BYTES]; /* the revoked devices counted in revoked_settled (malloc'd, the
                                          caller frees; NULL when none): their revocation can no longer
                                          be lifted, so once their chain is folded to its cut they no
                                          longer bound the GC (compact.c, gc_bound) */
  uint32_t settled_n;
} vs_final_info;

/** Lower `cut` (n entries, sorted by origin, each origin once) for
 *  membership finality, in the caller's transaction. `cut` comes from
 *  vs_acks_cut_txn (origins it omits are at 0). An open mesh: nothing
 *  changes. Bounded: one read of the membership facts (<=
 *  VS_MESH_FACTS_MAX), one reduction, one ack record per revoked device.
 *  @return VS_OK, VS_ERR_NOMEM, VS_ERR_CORRUPT, VS_ERR_STORE, the
 *  reducer's errors. */
vs_err vs_final_cut_txn(MDB_txn *txn, const vs_store *store, vs_cut_entry *cut, uint32_t n, vs_final_info *info);

#endif
