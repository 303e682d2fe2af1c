/* vixsync internals: the outbox's batched steps, for the engine (engine.c)
 * and the node's mesh sink (node_push.c): many transitions in one transaction.
 * Not installed: an application drives deliveries through vs_engine and
 * administers an outbox through vixsync/outbox.h (counts, retry-failed,
 * purge); the step API and its types may change with the engine. */
#ifndef VIXSYNC_OUTBOX_STEP_H
#define VIXSYNC_OUTBOX_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/outbox.h"

/* ---- batched steps, for the engine: many transitions, one transaction ---- */

typedef struct vs_outbox_result {
  vs_op_id op_id;
  vs_result_kind kind;
  uint32_t attempt;        /**< attempt answered; 0 = the current one */
  uint64_t retry_after_ms; /**< RETRY: floor on the delay, 0 = none */
  const char *reason;      /**< may be NULL */
  uint64_t lsn;            /**< the entry's LSN when the caller knows it (a hint,
                                checked against op_id); 0 = find it by op_id */
} vs_outbox_result;

/** What applying one result did. */
typedef enum vs_outbox_verdict {
  VS_VERDICT_APPLIED = 0,   /**< the INFLIGHT entry moved on */
  VS_VERDICT_LATE = 1,      /**< DONE for an entry no longer INFLIGHT: it is DONE now */
  VS_VERDICT_DUPLICATE = 2, /**< the entry was already DONE: nothing changed */
  VS_VERDICT_STALE = 3,     /**< RETRY/FAILED for an entry not INFLIGHT, or for an
                                 older attempt than the current one: ignored */
  VS_VERDICT_UNKNOWN = 4,   /**< no entry for this id in this sink: ignored */
} vs_outbox_verdict;

/** Claim parameters for vs_outbox_step. */
typedef struct vs_outbox_claim_req {
  uint64_t lease_ms;            /**< > 0 */
  uint32_t entries_max;         /**< <= VS_OUTBOX_CLAIM_MAX */
  uint64_t bytes_max;           /**< sum of op_bytes; the first entry is always taken */
  vs_outbox_entry *entries_out; /**< room for entries_max */
} vs_outbox_claim_req;

/** In one durable transaction: apply `results` in order, turn expired leases
 *  back into retries (as vs_outbox_claim_ready), then, if `claim` is not
 *  NULL, claim ready entries in order within its limits.
 *  @param[out] verdicts_out one per result (may be NULL).
 *  @param[out] claimed_out entries claimed (may be NULL when claim is NULL).
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_FULL or VS_ERR_STORE (then nothing
 *  changed). */
vs_err vs_outbox_step(vs_outbox *outbox, uint64_t now_ms, const vs_outbox_result *results, uint32_t result_count,
                      vs_outbox_verdict *verdicts_out, const vs_outbox_claim_req *claim, uint32_t *claimed_out);

/** A range of deliveries, known at once: every operation of the origin of
 *  `through` with a seq up to `through`'s is delivered (a peer's version
 *  vector says so). */
typedef struct vs_outbox_held {
  vs_op_id through;
  uint32_t max;          /**< entries to complete at most, <= VS_OUTBOX_CLAIM_MAX */
  uint32_t completed;    /**< [out] PENDING entries it made DONE */
  bool more;             /**< [out] stopped at max: the range may cover more */
} vs_outbox_held;

/** vs_outbox_step that first, in the same transaction, completes the
 *  PENDING entries `held` covers, in claim order (a ranges-only sink: in
 *  LSN order from its mark, stepping over DONE and FAILED entries),
 *  stopping at the first ready entry it does not cover or one claimed by
 *  hand (so it costs what it completes, plus one):
 *  they were delivered before anybody claimed them, so no attempt is spent.
 *  Entries it leaves are claimed and answered as usual. `held` may be NULL
 *  (then this is vs_outbox_step). */
vs_err vs_outbox_step_held(vs_outbox *outbox, uint64_t now_ms, vs_outbox_held *held,
                           const vs_outbox_result *results, uint32_t result_count, vs_outbox_verdict *verdicts_out,
                           const vs_outbox_claim_req *claim, uint32_t *claimed_out);

/** Give INFLIGHT entries back without spending their attempt (the transport
 *  refused the batch before sending anything): PENDING, ready at now_ms.
 *  Entries not INFLIGHT are left alone. @return VS_OK, VS_ERR_FULL, VS_ERR_STORE. */
vs_err vs_outbox_release(vs_outbox *outbox, const vs_op_id *ids, uint32_t count, uint64_t now_ms);

#endif
