/* vixsync: the outbox, a durable delivery queue per sink.
 *
 * Every local operation gets one entry per sink (the peer mesh, an HTTP
 * endpoint, ...), each with its own delivery state:
 *
 *   PENDING --claim--> INFLIGHT --complete--> DONE
 *      ^                  |
 *      |    retryable fail, lease expired (each spends the attempt;
 *      +---- next_attempt_at = now + vs_retry_delay_ms(policy, id, k))
 *                         |
 *                         +--> FAILED (permanent failure, or max_attempts)
 *   FAILED --retry_failed--> PENDING (attempts reset, by hand once fixed)
 *
 * Every transition is one durable LMDB transaction. Stored times are
 * wall-clock milliseconds so they survive reboots; a clock that goes
 * backwards only delays work, it never loses or repeats it. Ready entries are
 * claimed in a deterministic order: next attempt time, then LSN.
 *
 * Sinks are registered durably by name the first time they are opened. The
 * store always has the sink "default". vs_write enqueues each new local
 * operation for every registered sink in its own transaction.
 *
 * A vs_engine (engine.h) drives the deliveries of one sink through a
 * vs_transport; this header opens a sink, inspects it (get, counts,
 * next_due, sinks) and administers it (requeue, retry-failed, purge,
 * backfill).
 */
#ifndef VIXSYNC_OUTBOX_H
#define VIXSYNC_OUTBOX_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"
#include "vixsync/retry.h"
#include "vixsync/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_OUTBOX_SINK_DEFAULT "default"
#define VS_OUTBOX_SINK_NAME_BYTES_MAX 64u
#define VS_OUTBOX_SINKS_MAX 16u
#define VS_OUTBOX_REASON_BYTES_MAX 200u

typedef enum vs_outbox_state {
  VS_OUTBOX_PENDING = 0,
  VS_OUTBOX_INFLIGHT = 1,
  VS_OUTBOX_DONE = 2,
  VS_OUTBOX_FAILED = 3,
} vs_outbox_state;

/** "PENDING", "INFLIGHT", "DONE", "FAILED" or "?". */
VS_API const char *vs_outbox_state_name(vs_outbox_state state);

/** A snapshot of one entry. */
typedef struct vs_outbox_entry {
  vs_op_id op_id;
  uint64_t lsn;
  vs_outbox_state state;
  uint32_t attempts;           /**< sends started (claims) so far */
  uint64_t next_attempt_at_ms; /**< PENDING: not claimed before this */
  uint64_t lease_until_ms;     /**< INFLIGHT: lease ends (then it is retried) */
  uint64_t created_at_ms;
  uint64_t updated_at_ms;
  uint32_t op_bytes;           /**< size of the operation's encoding */
  char reason[VS_OUTBOX_REASON_BYTES_MAX + 1]; /**< last failure, NUL-terminated */
} vs_outbox_entry;

typedef struct vs_outbox_counts {
  uint64_t pending, inflight, done, failed;
} vs_outbox_counts;

typedef struct vs_outbox_cfg {
  /** The size of the struct this program was compiled with, written by
   *  vs_outbox_cfg_default(&cfg): the library reads no more of it, so fields
   *  added later never break a compiled caller. Start every cfg from
   *  vs_outbox_cfg_default. */
  uint32_t cfg_bytes;
  const char *sink;             /**< sink name; NULL = VS_OUTBOX_SINK_DEFAULT */
  vs_retry_policy retry;        /**< schedule of retries for this sink */
  /** The sink's deliveries are known only as ranges (vs_outbox_step_held:
   *  the mesh, whose acknowledgements are version vectors), and nothing is
   *  ever claimed from it. Its PENDING entries then carry no claim index:
   *  a write costs one put less per op, and a range completes entries in
   *  LSN order from a per-sink mark (meta["obxrng" sink] = the first LSN
   *  that may still be PENDING) with one cursor step each. The setting is
   *  stored with the sink; opening with the other value converts the sink
   *  in that open's transaction (its claim indexes dropped and INFLIGHT
   *  entries made PENDING, or PENDING entries indexed again). Default false. */
  bool ranges_only;
} vs_outbox_cfg;

/** Sink "default" with Vix Sync's default retry policy, not ranges-only;
 *  use it through vs_outbox_cfg_default(&cfg), which passes sizeof cfg
 *  (cfg_bytes). */
VS_API void vs_outbox_cfg_default_sized(vs_outbox_cfg *cfg, size_t cfg_bytes);
/** Fill `*cfg` (a vs_outbox_cfg) with the defaults and its cfg_bytes. */
#define vs_outbox_cfg_default(cfg) vs_outbox_cfg_default_sized((cfg), sizeof *(cfg))

typedef struct vs_outbox vs_outbox;

/** Open the outbox of one sink, registering the sink durably if it is new
 *  (operations written before the registration have no entry for it).
 *  `cfg` NULL: the defaults.
 *  @return VS_OK, VS_ERR_INVAL (bad name or policy, or a cfg not from
 *  vs_outbox_cfg_default), VS_ERR_LIMIT (too many
 *  sinks), VS_ERR_NOMEM, VS_ERR_FULL or VS_ERR_STORE. */
VS_API vs_err vs_outbox_open(vs_store *store, const vs_outbox_cfg *cfg, vs_outbox **outbox_out);

/** Free the handle (the entries stay in the store). NULL is a no-op. */
VS_API void vs_outbox_close(vs_outbox *outbox);

/** Give this sink an entry for each operation of `origin` (the local
 *  writer) written before the sink existed.
 *
 *  Why: vs_write enqueues each new local operation for every registered sink
 *  in its own transaction, so once the sink is registered nothing written
 *  later is missed; what was written before has no entry. This scans the WAL
 *  up to the last LSN it saw at its first run, enqueueing (ready at now_ms)
 *  every operation of `origin` without an entry, in transactions of at most
 *  10,000 records that also store how far the scan went (meta key
 *  "sinkfill" + sink id: the LSN reached and the LSN to reach). An
 *  interrupted scan resumes there; a finished one is never repeated, so
 *  entries purged later (vs_outbox_purge_done) are not enqueued again.
 *  Received operations (other origins) are not enqueued, as for vs_write;
 *  nor are operations compaction took out of the log (vs_store_compact:
 *  every member holds them; an HTTP sink registered later never sees them).
 *  The sink "default" exists from the store's creation: nothing is scanned.
 *  @param[out] enqueued_out entries created (may be NULL).
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_CORRUPT, VS_ERR_FULL or VS_ERR_STORE
 *  (entries committed by earlier transactions stay; the next call resumes). */
VS_API vs_err vs_outbox_backfill(vs_outbox *outbox, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms,
                          uint64_t *enqueued_out);

/** Read one entry. @return VS_OK or VS_ERR_NOTFOUND. */
VS_API vs_err vs_outbox_get(vs_outbox *outbox, const vs_op_id *id, vs_outbox_entry *entry_out);

/** On start, the engine's owner turns every INFLIGHT entry of this sink (left
 *  by a crash) back to PENDING, ready at now_ms. The interrupted attempt
 *  counts (it may have reached the other side); an entry that had spent its
 *  last attempt becomes FAILED. Requires vs_store_lock_owner: a CLI process
 *  must never steal the daemon's claims.
 *  @return VS_OK, VS_ERR_NOT_OWNER, VS_ERR_FULL or VS_ERR_STORE. */
VS_API vs_err vs_outbox_requeue_inflight(vs_outbox *outbox, uint64_t now_ms, uint64_t *count_out);

/** Requeue every FAILED entry of this sink (attempts reset to 0, ready at
 *  now_ms), once the cause is fixed. @return VS_OK, VS_ERR_FULL, VS_ERR_STORE. */
VS_API vs_err vs_outbox_retry_failed(vs_outbox *outbox, uint64_t now_ms, uint64_t *count_out);

/** Delete DONE entries of this sink, oldest LSN first, looking at no more
 *  than `max_entries` entries (DONE or not: a call on a long prefix of
 *  PENDING or FAILED entries is bounded too). Resumable: the sink keeps a
 *  mark (meta "obxpurge" + sink id) where the last call's walk stopped, and
 *  an entry that turns DONE below it later gets an index key the next call
 *  takes first, so calls never walk the same entries again: all calls
 *  together cost O(entries ever enqueued), whatever the mix of states. A
 *  ranges-only sink is walked only below its range mark (what is delivered);
 *  a sink whose backfill has not finished only below what the backfill
 *  reached (a purged entry is never enqueued again; call vs_outbox_backfill
 *  before purging a new sink). One write transaction per call. The WAL
 *  keeps the operations.
 *  @param[out] count_out entries deleted (may be NULL).
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_CORRUPT, VS_ERR_FULL, VS_ERR_STORE. */
VS_API vs_err vs_outbox_purge_done(vs_outbox *outbox, uint64_t max_entries, uint64_t *count_out);

/** What one purge step did. */
typedef struct vs_outbox_purge_stats {
  uint64_t purged;  /**< DONE entries deleted */
  uint64_t visited; /**< entries (and DONE index keys) looked at, purged ones included */
  bool more;        /**< stopped at max_visits with DONE entries over keep_done left */
} vs_outbox_purge_stats;

/** vs_outbox_purge_done for the sink with id `sink` (vs_sink_info.id),
 *  without opening it (its settings stay as they are: a daemon or another
 *  process may be delivering it; purge takes no owner lock, the entries it
 *  deletes are DONE, which no delivery looks at again), keeping the
 *  `keep_done` youngest DONE entries: the step stops once the sink's DONE
 *  count is down to keep_done (0: purge all). At most `max_visits` entries
 *  looked at, one write transaction.
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_NOTFOUND (no such sink),
 *  VS_ERR_CORRUPT, VS_ERR_FULL or VS_ERR_STORE (stats zero: nothing changed). */
VS_API vs_err vs_outbox_purge_sink(vs_store *store, uint32_t sink, uint64_t max_visits, uint64_t keep_done,
                                   vs_outbox_purge_stats *stats_out);

/** One registered sink: its name and its entries per state. */
typedef struct vs_sink_info {
  char name[VS_OUTBOX_SINK_NAME_BYTES_MAX + 1]; /**< NUL-terminated */
  uint32_t id;
  vs_outbox_counts counts;
} vs_sink_info;

/** The sinks registered in this store ("default", the mesh, first; then by
 *  id), with their counts, from one read transaction. *count_out is how
 *  many exist; `out` gets the first `max` of them by id (pass
 *  VS_OUTBOX_SINKS_MAX to get them all).
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_CORRUPT or VS_ERR_STORE. */
VS_API vs_err vs_outbox_sinks(vs_store *store, vs_sink_info *out, uint32_t max, uint32_t *count_out);

/** Entries of this sink per state (kept current in O(1) per transition). */
VS_API vs_err vs_outbox_counts_get(vs_outbox *outbox, vs_outbox_counts *counts_out);

/** The earliest time at which something becomes due: the first PENDING
 *  entry's next attempt or the first INFLIGHT lease's end; UINT64_MAX if
 *  neither exists. */
VS_API vs_err vs_outbox_next_due(vs_outbox *outbox, uint64_t *due_ms_out);

/** The store this outbox lives in. */
VS_API vs_store *vs_outbox_store(const vs_outbox *outbox);

/** This outbox's retry policy. */
VS_API const vs_retry_policy *vs_outbox_policy(const vs_outbox *outbox);

/** Replace the retry policy (not stored: each process sets its own).
 *  @return VS_OK or VS_ERR_INVAL. */
VS_API vs_err vs_outbox_set_policy(vs_outbox *outbox, const vs_retry_policy *policy);

/** What a transport said about one operation. */
typedef enum vs_result_kind {
  VS_RESULT_DONE = 0,   /**< delivered */
  VS_RESULT_RETRY = 1,  /**< transient failure */
  VS_RESULT_FAILED = 2, /**< permanent rejection */
} vs_result_kind;

#ifdef __cplusplus
}
#endif
#endif
