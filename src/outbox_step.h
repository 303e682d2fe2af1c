/* vixsync internals: the outbox's step API. Batched steps for the engine
 * (engine.c) and the node's mesh sink (node_push.c): many transitions in one transaction;
 * and the single-entry calls (enqueue, claim, complete, fail) the tests
 * drive it with, one transaction each.
 * Not installed: an application drives deliveries through vs_engine and
 * administers an outbox through vixsync/outbox.h (counts, retry-failed,
 * purge); the step API and its types may change with the engine. */
#ifndef VIXSYNC_OUTBOX_STEP_H
#define VIXSYNC_OUTBOX_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/outbox.h"

/** Expired leases turned back per call of vs_outbox_claim_ready. */
#define VS_OUTBOX_EXPIRE_PER_CALL 4096u
/** Entries claimed per call of vs_outbox_claim_ready, at most. */
#define VS_OUTBOX_CLAIM_MAX 65536u

/* ---- single entries, one transaction each (tests, tools) ---- */

/** Queue operation `id` (already in the WAL) for this sink, ready at now_ms.
 *  @return VS_OK, VS_ERR_NOTFOUND (not in the WAL), VS_ERR_EXISTS (already
 *  queued: nothing changed), VS_ERR_FULL or VS_ERR_STORE. */
vs_err vs_outbox_enqueue(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms);

/** Claim one PENDING entry that is ready (next_attempt_at <= now_ms): it
 *  becomes INFLIGHT until now_ms + lease_ms and its attempt count grows by
 *  one. @param[out] entry_out the entry after the claim (may be NULL; filled
 *  with the current entry on VS_ERR_STATE).
 *  @return VS_OK, VS_ERR_NOTFOUND, VS_ERR_STATE (not PENDING, or not ready
 *  yet), VS_ERR_INVAL (lease_ms 0), VS_ERR_FULL or VS_ERR_STORE. */
vs_err vs_outbox_claim(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms, uint64_t lease_ms,
                       vs_outbox_entry *entry_out);

/** Turn INFLIGHT entries whose lease ended (lease_until <= now_ms) back to
 *  PENDING (or FAILED at max_attempts), at most VS_OUTBOX_EXPIRE_PER_CALL of
 *  them, then claim up to `max_entries` ready entries in order (next attempt
 *  time, then LSN), all in one transaction.
 *  @param[out] entries_out room for max_entries entries.
 *  @param[out] count_out how many were claimed.
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_FULL or VS_ERR_STORE. */
vs_err vs_outbox_claim_ready(vs_outbox *outbox, uint64_t now_ms, uint64_t lease_ms, uint32_t max_entries,
                             vs_outbox_entry *entries_out, uint32_t *count_out);

/** Mark an entry DONE. A late or duplicate result is harmless: from PENDING
 *  or FAILED the delivery still happened, so it becomes DONE too; an entry
 *  already DONE stays as it is (VS_OK).
 *  @return VS_OK, VS_ERR_NOTFOUND, VS_ERR_FULL or VS_ERR_STORE. */
vs_err vs_outbox_complete(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms);

/** Record a failed attempt of an INFLIGHT entry. Retryable: back to PENDING
 *  with next_attempt_at = now_ms + delay, or FAILED once max_attempts is
 *  spent; permanent: FAILED. `reason` (may be NULL) is kept, cut to
 *  VS_OUTBOX_REASON_BYTES_MAX bytes. `retry_after_ms` (0 = none) is a floor
 *  on the delay given by the other side, capped at the policy's max delay.
 *  @param[out] entry_out the entry afterwards (may be NULL).
 *  @return VS_OK, VS_ERR_NOTFOUND, VS_ERR_STATE (not INFLIGHT: a stale
 *  result, nothing changed), VS_ERR_FULL or VS_ERR_STORE. */
vs_err vs_outbox_fail(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms, bool retryable,
                      const char *reason, uint64_t retry_after_ms, vs_outbox_entry *entry_out);

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
