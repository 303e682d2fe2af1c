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
 * point with its peer (node_fork.c).
 */
#ifndef VIXSYNC_APPLY_H
#define VIXSYNC_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/op.h"
#include "vixsync/sigcache.h"
#include "vixsync/store.h"

#include "chain.h" /* VS_APPLY_RUN_OPS_MAX, VS_RUN_BYTES_MAX, the signature reads */
#include "fork.h"  /* the verdicts (FORKS), taken by fork.c */

#ifdef __cplusplus
extern "C" {
#endif

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
 *  deferred, ahead_ms and head_seq); VS_ERR_BELOW_FLOOR (a new data op,
 *  put, del or incr, with an HLC at or below the store's gc_floor: it may
 *  be ordered before a tombstone compaction dropped, so the whole run is
 *  refused, nothing stored: docs/storage.md, "Dropping tombstones"); for a signed run holding a mesh.* op
 *  (membership, member.h), checked after the signature: that op's
 *  vs_mesh_fact_from_op error (VS_ERR_MALFORMED, VS_ERR_TRUNCATED,
 *  VS_ERR_TRAILING, VS_ERR_VERSION, VS_ERR_AUTH); in a managed mesh, the
 *  membership gate's (mgate.h, one member record read per run):
 *  VS_ERR_NOT_MEMBER (the origin is no member and the run does not open
 *  its chain with an admission that makes it one), VS_ERR_REVOKED (the run
 *  lies wholly past the origin's revocation cut, or crosses it with an op
 *  at the cut that the revoke does not vouch for; a run that crosses it
 *  with the vouched op is taken up to the cut), VS_ERR_DENIED (a reader's
 *  data op, a non-admin's invite, revoke or rekey), VS_ERR_LIMIT (the
 *  author's or the mesh's bound of facts or members); VS_ERR_FULL;
 *  VS_ERR_STORE. On any error nothing is applied. A run whose membership
 *  fact changes the view refolds it in the same transaction (a revoke may
 *  void held ops past its cut: the state is rebuilt). */
vs_err vs_apply_run(vs_store *store, const vs_op *ops, uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES],
                    uint64_t now_ms, uint64_t max_drift_ms, vs_apply_result *result_out);

/** vs_apply_run with each op's encoding (enc[i], enc_bytes[i]; both may be
 *  NULL): hashed and stored as they are. The run's signature is verified
 *  through `sig_cache` (vixsync/sigcache.h; NULL: directly): the same
 *  verdict, maybe without the ed25519 work. The cache is used on the
 *  calling thread only. */
vs_err vs_apply_run_enc(vs_store *store, const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                        uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES], uint64_t now_ms,
                        uint64_t max_drift_ms, vs_sig_cache *sig_cache, vs_apply_result *result_out);

/** The pure checks of a run (no store: any thread), for a receive pipeline:
 *  what vs_apply_run_enc checks before it opens the store (count, one
 *  origin, consecutive seqs, ids, encodings, the links inside the run),
 *  each op's hash into hashes_out (count entries), and when those pass the
 *  signature. The verdicts go to *pre_out, to be handed to vs_apply_run_pre
 *  with the same arguments; hashes_out must live as long. */
typedef struct vs_run_pre {
  const uint8_t (*hashes)[VS_HASH_BYTES];
  vs_err check;  /**< VS_OK, or the error vs_apply_run_enc returns for it */
  bool sig_ok;   /**< the signature verifies (only when check is VS_OK) */
} vs_run_pre;
void vs_run_prepare(const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count,
                    const uint8_t sig[VS_SIGNATURE_BYTES], uint8_t (*hashes_out)[VS_HASH_BYTES], vs_run_pre *pre_out);

/** vs_apply_run_enc with the pure checks done by vs_run_prepare: the same
 *  result for the same run, store and time, minus that work. */
vs_err vs_apply_run_pre(vs_store *store, const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                        uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES], const vs_run_pre *pre,
                        uint64_t now_ms, uint64_t max_drift_ms, vs_apply_result *result_out);

/* Internal, not in vixsync/wal.h (defined in apply.c: it updates the state,
 * which the WAL module does not call): this receive path checks no signature and
 * bounds no clock drift (it is the WAL's own step, under vs_apply_run and
 * the tests). An application writes with vs_write and receives through
 * vs_node, which check both. */

/** Append a complete operation (its origin's next one: seq = head + 1 and
 *  prev = the head's hash, or seq 1 and prev all zero) in one durable
 *  transaction. Used for operations that arrive whole; local writes go
 *  through vs_write, which builds seq, prev and hlc itself.
 *  @param[out] lsn_out its LSN (may be NULL).
 *  @return VS_OK; VS_ERR_EXISTS (this exact operation is already stored:
 *  nothing changed); VS_ERR_FORK (another operation with the same origin and
 *  seq is stored); VS_ERR_CHAIN (seq or prev does not extend the chain);
 *  VS_ERR_FORKED (a fork verdict voids the origin from this seq on);
 *  VS_ERR_FULL; VS_ERR_STORE; the validation errors of vs_op_encode. */
vs_err vs_wal_append(vs_store *store, const vs_op *op, uint64_t now_ms, uint64_t *lsn_out);

#ifdef __cplusplus
}
#endif
#endif
