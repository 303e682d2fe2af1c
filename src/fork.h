/* Fork verdicts (fork.c; apply.h, "FORKS" says what they are). Not
 * installed. The verdict calls were in apply.h; apply.h includes this
 * header, so its users still see them. */
#ifndef VIXSYNC_FORK_H
#define VIXSYNC_FORK_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* ---- internals ---- */

/** `origin`'s first void seq (0: none) and the prev both branches share
 *  (prev_out may be NULL). */
vs_err vs_fork_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                       uint64_t *void_from_out, uint8_t prev_out[VS_HASH_BYTES]);
/** 64 zero bytes: the signature of an op that fork evidence vouches for. */
const uint8_t *vs_fork_zero_sig(void);
/** Evidence from the held branch from ops[at].seq on and a signed run
 *  (ops[at..count-1], enc may be NULL), then vs_apply_fork. */
vs_err vs_fork_from_run(vs_store *store, const vs_op *ops, const uint8_t *const *enc, uint32_t count, uint32_t at,
                        const uint8_t sig[VS_SIGNATURE_BYTES], vs_fork_result *result_out);

/** The verdict after origin `after` (NULL: the first), by origin: its
 *  origin and FORK message. VS_ERR_NOTFOUND past the last. */
vs_err vs_fork_next(vs_store *store, const uint8_t *after, uint8_t origin_out[VS_ORIGIN_BYTES], uint8_t *out,
                    size_t out_max, size_t *out_bytes);

/** A digest of every verdict (0: none; never 0 otherwise), for VV
 *  messages: peers whose digests differ exchange their verdicts again. */
vs_err vs_fork_digest(vs_store *store, uint64_t *digest_out);

#ifdef __cplusplus
}
#endif
#endif
