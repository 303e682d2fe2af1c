/* vixsync: applying operations written elsewhere (replication's receive side).
 *
 * Operations arrive as *runs*: consecutive operations of one origin, in seq
 * order, ending at an operation whose chain head the origin signed. The run
 * is accepted only if
 *   - it extends what the node holds: its first new operation is the
 *     origin's next seq, and each operation's `prev` is the hash of the one
 *     before (checked from the stored chain head; nothing is applied out of
 *     order, a gap is refused and fetched again later);
 *   - the signature on its last operation verifies against the origin's key
 *     (one ed25519 verification per run, the chain links cover the rest).
 * Operations it already holds are skipped when their hash matches; a
 * different operation at a held (origin, seq) is a fork (see FORKS).
 *
 * Validity never depends on the clock, but *applying* does: a run with a
 * new operation whose HLC wall clock is beyond now_ms + max_drift_ms is not
 * applied now (VS_ERR_FUTURE, nothing stored, the origin's version-vector
 * entry does not advance). Its origin's chain waits behind it; a peer offers
 * it again on its normal resend schedule and it is applied once the
 * receiver's clock has caught up. So a peer with a wild clock (an HLC of
 * 2^64-1, a device a day ahead) can neither pin a value forever nor drag
 * everybody's timestamps, and deferral costs no disk or memory. The whole
 * run waits (not its prefix before the future op): the only signature the
 * receiver has is on the run's last op, and a held chain always ends at a
 * signed op so that it can be relayed.
 *
 * Every applied operation moves the node's HLC to at least its HLC (in the
 * same transaction), so a local write made after a value was seen is
 * ordered after it (vs_hlc_next: max(wall clock, last hlc + 1)).
 *
 * A run is applied in one transaction: WAL records, op-id index, chain head
 * and its signature, state, state hash, node HLC. No outbox entry is created:
 * the outbox pushes the node's own writes; anti-entropy relays the rest.
 *
 * FORKS. Two different signed ops of one origin at one seq (a device that
 * signed two branches: an equivocating writer, or a copied data directory
 * or restored backup that wrote on) split the mesh: which branch a node
 * holds would depend on arrival order. So a fork is never resolved by
 * keeping one branch. Evidence (wire.h, FORK: both branches from the seq
 * where they part, each signed) travels to every node, which checks it and
 * takes the same verdict: that origin's ops from that seq on are VOID,
 * everywhere, whichever branch a node held. Taking a verdict is one
 * transaction: the verdict and its evidence are stored, the origin's ops
 * from the seq on leave the op-id index and the signatures (their WAL
 * records stay, as history), its chain head goes back to seq - 1, and the
 * state is refolded from the ops still live. Several forks of one origin:
 * the smallest seq wins, so nodes that saw the same evidence agree in any
 * order. From then on every run of that origin that reaches the void
 * range is refused (VS_ERR_FORKED) except its part below the seq, and
 * vs_write as that origin is VS_ERR_FORKED: the identity is spent. The
 * owner of that device makes a new identity (a new data directory); its
 * writes from the fork on, acknowledged or not, are lost by design: no
 * node can tell which branch its owner meant.
 * A run whose last op is right below a fork's seq may carry 64 zero bytes
 * as signature: the origin may have signed only past the fork, and the
 * evidence (both branches' prev) vouches for that op instead.
 * apply finds the evidence itself when a run differs from held ops with
 * the same prev (an exact split): it builds the FORK message from the held
 * branch and the run and takes the verdict (result_out->verdict). When the
 * branches differ but part lower down, it says where they are known to
 * differ (result_out->suspect_seq) so that the node can look for the split
 * point with its peer (node.c).
 */
#ifndef VIXSYNC_APPLY_H
#define VIXSYNC_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/op.h"
#include "vixsync/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_APPLY_RUN_OPS_MAX 65536u
/** The most a run may weigh: the sum over its ops of 4 + the encoding's
 *  size (what it takes in an OPS message). Half a message, so that two
 *  branches of a fork, each at most one run, always fit one FORK message
 *  as evidence (wire.h): a run past it is refused (VS_ERR_INVAL), whoever
 *  signed it. Honest signers sign every VS_SIGN_INTERVAL_BYTES. */
#define VS_RUN_BYTES_MAX ((1024u * 1024u - 256u) / 2u)

typedef struct vs_apply_result {
  uint32_t applied;    /**< new operations stored */
  uint32_t duplicates; /**< operations already held (same hash) */
  uint64_t head_seq;   /**< the origin's highest seq held afterwards */
  uint32_t deferred;   /**< VS_ERR_FUTURE: new operations that wait (none stored) */
  uint64_t ahead_ms;   /**< VS_ERR_FUTURE: how far the run's furthest HLC is ahead of now_ms */
  /** VS_ERR_FORK / VS_ERR_CHAIN: a seq <= the held head at which the run's
   *  branch and the held one are known to differ (0: none known). */
  uint64_t suspect_seq;
  /** VS_ERR_FORK: the run proved a fork and this call took the verdict
   *  (void from fork_seq); the evidence is in the store to relay. */
  bool verdict;
  uint64_t fork_seq;
  /** VS_ERR_FORK: the run proves a fork, but the verdict was deferred (a
   *  node limits the refolds peers can make it do; the run comes again). */
  bool verdict_deferred;
} vs_apply_result;

/** Verify and apply one run (see the file comment).
 *  @param sig the origin's signature over the chain head at ops[count-1].
 *  @return VS_OK (also when everything was a duplicate); VS_ERR_INVAL
 *  (count 0 or past VS_APPLY_RUN_OPS_MAX, mixed origins, seqs not
 *  consecutive); VS_ERR_CHAIN (the run does not extend what is held: it
 *  starts past the next seq, or its first new op does not link to the held
 *  head); VS_ERR_FORK (a held seq with another hash: nothing of the run
 *  applied; when the split point is exact the verdict is taken, see FORKS);
 *  VS_ERR_FORKED (the run lies wholly in a void range, or carries the zero
 *  signature of fork evidence this store does not hold); VS_ERR_AUTH
 *  (forged: the signature does not verify over the run's head);
 *  VS_ERR_MALFORMED (the run's own prev links break, so the signature does
 *  not cover every op: checked before the signature, which is then not
 *  verified); VS_ERR_FUTURE (a valid run with a new op whose HLC is past
 *  now_ms + max_drift_ms: deferred, see the file comment; result_out gets
 *  deferred, ahead_ms and head_seq); VS_ERR_FULL; VS_ERR_STORE. On any error
 *  nothing is applied. */
vs_err vs_apply_run(vs_store *store, const vs_op *ops, uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES],
                    uint64_t now_ms, uint64_t max_drift_ms, vs_apply_result *result_out);

/** The signature stored for operation `id` (the chain head at it), if the
 *  origin signed there. @return VS_OK or VS_ERR_NOTFOUND. */
vs_err vs_apply_sig_get(vs_store *store, const vs_op_id *id, uint8_t sig_out[VS_SIGNATURE_BYTES]);

/** The first seq >= from_seq of `origin` that carries a signature (the end
 *  of the run that starts at from_seq). @return VS_OK or VS_ERR_NOTFOUND. */
vs_err vs_apply_next_signed(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from_seq,
                            uint64_t *seq_out);

/** A fork verdict: `origin` is void from `seq` on; the two branches' ops
 *  at seq have these hashes (held_hash < refused_hash: the names are
 *  historical, neither branch is kept). */
typedef struct vs_fork {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;
  uint8_t held_hash[VS_HASH_BYTES];
  uint8_t refused_hash[VS_HASH_BYTES];
} vs_fork;

/** Number of verdicts, and up to `max` of them (by origin). */
vs_err vs_apply_forks(vs_store *store, vs_fork *forks_out, uint32_t max, uint64_t *count_out);

typedef struct vs_fork_result {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;  /**< the origin's first void seq now */
  bool verdict;  /**< this call took or lowered the verdict */
  bool refolded; /**< ops were voided here (the state was refolded) */
} vs_fork_result;

/** Check fork evidence (a FORK message, wire.h) and take its verdict (see
 *  FORKS), in one transaction. Evidence for a seq at or past the held
 *  verdict changes nothing (VS_OK, verdict false).
 *  @return VS_OK; VS_ERR_MALFORMED (does not decode, a proof's links
 *  break or it does not start at the message's origin and seq, the first
 *  ops are equal or do not share their prev); VS_ERR_AUTH (a proof's
 *  signature does not verify: forged); on both nothing changed;
 *  VS_ERR_FULL; VS_ERR_STORE; VS_ERR_NOMEM. */
vs_err vs_apply_fork(vs_store *store, const uint8_t *msg, size_t msg_bytes, vs_fork_result *result_out);

/** The FORK message behind `origin`'s verdict. @return VS_OK,
 *  VS_ERR_NOTFOUND (no verdict), VS_ERR_BUFSIZE (*out_bytes says how much). */
vs_err vs_apply_fork_evidence(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint8_t *out, size_t out_max,
                              size_t *out_bytes);

/** `origin`'s first void seq (0: no verdict). */
vs_err vs_apply_void_from(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t *void_from_out);

#ifdef __cplusplus
}
#endif
#endif
