/* Member acknowledgements and the stable cut (issue 17; docs/protocol.md,
 * "Acknowledgements"). Not installed. Module `acks`: the records of the
 * `acks` database, what an ack signs, and the cut computed from the store
 * alone (so a stopped daemon's `vix-node compact` can use it).
 *
 * An ack is a member's signed statement "at HLC h I hold exactly these
 * ops": its full version vector with, per origin, the hash of its op at
 * that seq. The signature (the author's identity key; author = device pk
 * = origin id) covers
 *   "vixsync-ack-v1" || mesh_id 32 || author 32 || hlc u64le || digest 32
 * with digest = BLAKE2b-256 over the full vector in origin order, each
 * entry origin 32 || seq u64le || hash 32. Hashes do not travel: a receiver
 * fills them from its own store, so an ack verifies exactly when the
 * receiver holds every op acked with the same hashes.
 *
 * The `acks` database: author pk (32) -> one record (VS_ACK_REC_*):
 *   0   1  version (1)
 *   1   8  hlc u64le         the latest ack held (keyframe or delta)
 *   9   8  key_hlc u64le     its keyframe's (== hlc: the latest is a keyframe)
 *   17 64  sig               the latest ack's signature
 *   81 64  key_sig           the keyframe's
 *   145 4  key_n u32le       keyframe entries
 *   149 4  delta_n u32le     the latest delta's entries (0 when hlc == key_hlc)
 *   153    key_n x (origin 32, seq u64le), then delta_n x (origin 32, seq u64le)
 * Both the keyframe and the latest delta are kept so that both can be
 * relayed verbatim. Only active members' acks are stored. */
#ifndef VIXSYNC_ACKS_H
#define VIXSYNC_ACKS_H

#include "internal.h"
#include "wire.h"

#define VS_ACK_REC_VERSION 1u
#define VS_ACK_REC_HEADER_BYTES 153u
#define VS_ACK_SIGNED_BYTES (14u + 32u + VS_ORIGIN_BYTES + 8u + 32u)

/** One stored record, decoded. key and delta point into `mem` (free it). */
typedef struct vs_ack_rec {
  uint64_t hlc, key_hlc;
  uint8_t sig[VS_SIGNATURE_BYTES], key_sig[VS_SIGNATURE_BYTES];
  uint32_t key_n, delta_n;
  vs_ack_entry *key, *delta;
  void *mem;
} vs_ack_rec;

/** `author`'s record (VS_ERR_NOTFOUND: none; VS_ERR_CORRUPT). Free with
 *  vs_ack_rec_free (also after an error: a no-op then). */
vs_err vs_acks_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES], vs_ack_rec *out);
void vs_ack_rec_free(vs_ack_rec *rec);

/** Only the record's hlc (0: none) and its keyframe's (key_hlc_out may be
 *  NULL), without decoding the entries. */
vs_err vs_acks_hlc_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES], uint64_t *hlc_out,
                       uint64_t *key_hlc_out);

/** Write `author`'s record (entries as in the record; counts <= VS_WIRE_VV_MAX). */
vs_err vs_acks_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES],
                       const vs_ack_rec *rec);
vs_err vs_acks_del_txn(MDB_txn *txn, const vs_store *store, const uint8_t author[VS_ORIGIN_BYTES]);

/** The full vector of a keyframe `key` with a delta applied (seq 0 in the
 *  delta drops the origin): both sorted, the result sorted, into out (room
 *  for max). @return VS_OK, VS_ERR_LIMIT (more than max entries). */
vs_err vs_acks_merge(const vs_ack_entry *key, uint32_t key_n, const vs_ack_entry *delta, uint32_t delta_n,
                     vs_ack_entry *out, uint32_t max, uint32_t *n_out);

/** The entries of `full` that differ from the keyframe `key` (a delta:
 *  seq 0 for an origin the keyframe has and full lacks), into out (room for
 *  max). @return VS_OK, VS_ERR_LIMIT (more than max differ). */
vs_err vs_acks_diff(const vs_ack_entry *key, uint32_t key_n, const vs_ack_entry *full, uint32_t full_n,
                    vs_ack_entry *out, uint32_t max, uint32_t *n_out);

/** The bytes an ack's signature covers, with the hashes of this store's ops
 *  at the vector's seqs. @return VS_OK; VS_ERR_NOTFOUND when the store does
 *  not hold one of them (past its head, or voided): the ack cannot verify
 *  here; VS_ERR_STORE / VS_ERR_CORRUPT. */
vs_err vs_acks_signed_txn(MDB_txn *txn, const vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES],
                          const uint8_t author[VS_ORIGIN_BYTES], uint64_t hlc, const vs_ack_entry *full, uint32_t n,
                          uint8_t out[VS_ACK_SIGNED_BYTES]);

/** An ack's contribution to the acks digest (VV `acks`): the first 8 bytes
 *  LE of BLAKE2b-256(author || hlc u64le). The digest is their sum mod 2^64
 *  over the latest ack held per active member (0: none). */
uint64_t vs_acks_tag(const uint8_t author[VS_ORIGIN_BYTES], uint64_t hlc);

/** The acks digest of the store: over the records of active members. */
vs_err vs_acks_digest_txn(MDB_txn *txn, const vs_store *store, uint64_t *digest_out);

/** Whether `pk` is an active (not revoked) member of a managed store. */
vs_err vs_acks_member_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES], bool *active_out);

typedef struct vs_acks_cut_info {
  uint32_t members;    /**< active members */
  uint32_t with_ack;   /**< of them, with an ack stored */
  uint64_t oldest_hlc; /**< the oldest of their acks' hlc (0: none) */
  uint64_t stable_ops; /**< sum of the cut's seqs */
  uint64_t behind;     /**< sum over origins held of head - cut */
  uint32_t suspended;  /**< active members left out of the minimum: silent past suspend_after */
} vs_acks_cut_info;

/** Called per origin held, in origin order, with its cut seq (0: nothing
 *  stable) and our head seq. A non-OK return stops the walk. */
typedef vs_err (*vs_acks_cut_fn)(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx);

/** The stable cut, from the store alone (the acks and members records and
 *  the heads): for each origin held, cut = min(our head seq, min over
 *  active members m of m's latest ack's seq for it (0 when absent)); when
 *  an active member has no ack stored (or the store is an open mesh), every
 *  cut is 0. fn may be NULL (info only). Memory: one member's vector at a
 *  time plus one u64 per origin held.
 *
 *  suspend_after_ms (0: never): a member that has been silent that long
 *  leaves the minimum (vs_acks_suspended_txn; docs/storage.md, "Members
 *  who stop acking"). A member with no ack stored is never suspended
 *  (nothing is known of its silence: it holds every cut at 0). When
 *  members are suspended and no member other than the store's identity is
 *  still counted, every cut is 0: a store alone may be the one cut off,
 *  and its own unsent ops must not pass for held. */
vs_err vs_acks_cut_txn(MDB_txn *txn, const vs_store *store, uint64_t suspend_after_ms, vs_acks_cut_fn fn, void *ctx,
                       vs_acks_cut_info *info);

/** Whether member `pk` is suspended: silent for more than
 *  suspend_after_ms, judged on HLCs only (the core has no clock): the
 *  physical part of the store's HLC `now_hlc` against
 *  - the physical part of the member's latest ack's HLC `heard_hlc`, and
 *  - when this store stored the oldest op its acked vector `full` (n
 *    entries, sorted; NULL/0: none) lacks, per origin the op after its
 *    seq (its WAL record's stored_at_ms, the caller's clock then: not the
 *    op's HLC, which its writer chose; one below our horizon counts as
 *    lacked for ever).
 *  Both must be older than the bound: a member that acked recently, or one
 *  that lacks only ops newer than the bound (a mesh that wrote nothing for
 *  a month, then one op), is not suspended. The store's own identity is
 *  never suspended; suspend_after_ms 0 suspends nobody. */
vs_err vs_acks_suspended_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES],
                             uint64_t heard_hlc, const vs_ack_entry *full, uint32_t n, uint64_t now_hlc,
                             uint64_t suspend_after_ms, bool *suspended_out);

/** The newest HLC of an acknowledgement held of an active member other
 *  than `self` (0: none held): when this store last heard that the mesh
 *  went on, as its members' clocks tell it (a device cut off hears none;
 *  node_snap.c, the too-late replica). Bounded by the records held. */
vs_err vs_acks_heard_txn(MDB_txn *txn, const vs_store *store, const uint8_t self[VS_ORIGIN_BYTES], uint64_t *hlc_out);

/** vs_acks_suspended_txn from the store alone (member `pk`'s latest ack
 *  and the store's HLC) for a silence of suspend_after_ms (compact.c asks
 *  with twice the store's: the GC bound's pin). A member with no ack
 *  stored is not suspended (nothing is known of its silence). */
vs_err vs_acks_member_suspended_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES],
                                    uint64_t suspend_after_ms, bool *suspended_out);

#endif
