/* vixsync: SyncEngine and its SyncWorkers.
 *
 * The engine drives one outbox through one transport:
 *
 *   Outbox -> SyncWorker -> Transport -> Done / Retry / Failed
 *
 * Each worker holds at most one batch in flight. On every tick the engine,
 * in ONE durable transaction, applies the results that arrived, turns
 * expired leases back into retries, and claims the next batches for its idle
 * workers (nothing is claimed while the probe says offline, so no attempt is
 * spent); then it hands the batches to the transport. Time only advances
 * through vs_engine_tick(now): the engine never reads a clock, so a
 * simulator can drive it in virtual time and replay it exactly.
 *
 * On its first tick the engine requeues what a crash left INFLIGHT. It takes
 * the store's owner lock when created: one engine per store at a time.
 */
#ifndef VIXSYNC_ENGINE_H
#define VIXSYNC_ENGINE_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/outbox.h"
#include "vixsync/probe.h"
#include "vixsync/retry.h"
#include "vixsync/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_ENGINE_WORKERS_MAX 64u
#define VS_ENGINE_BATCH_OPS_MAX 10000u
#define VS_ENGINE_RESULTS_MAX 65536u /**< results buffered between ticks */

typedef struct vs_engine_cfg {
  /** The size of the struct this program was compiled with, written by
   *  vs_engine_cfg_default(&cfg): the library reads no more of it, so fields added
   *  later never break a compiled caller. Start every cfg from vs_engine_cfg_default. */
  uint32_t cfg_bytes;
  uint32_t workers;            /**< batches in flight at once; default 1 */
  uint32_t batch_ops_max;      /**< ops per batch; default 1000 */
  uint64_t batch_bytes_max;    /**< encoded bytes per batch (one op always fits); default 1 MiB */
  uint64_t lease_ms;           /**< how long a sent batch may stay unanswered; default 30 s */
  vs_retry_policy retry;       /**< replaces the outbox's policy; default Vix Sync's */
  uint32_t ack_quorum;         /**< distinct peers whose DONE completes an entry; default 1 */
  uint64_t offline_recheck_ms; /**< wake interval while offline (probe without next_check); default 1 s */
} vs_engine_cfg;

/** The defaults listed above; use it through vs_engine_cfg_default(&cfg),
 *  which passes sizeof cfg (cfg_bytes). */
VS_API void vs_engine_cfg_default_sized(vs_engine_cfg *cfg, size_t cfg_bytes);
/** Fill `*cfg` (a vs_engine_cfg) with the defaults and its cfg_bytes. */
#define vs_engine_cfg_default(cfg) vs_engine_cfg_default_sized((cfg), sizeof *(cfg))

/** Counters, for status pages and tests. */
typedef struct vs_engine_stats {
  uint64_t ticks;
  uint64_t offline_ticks;     /**< ticks on which the probe said offline */
  uint64_t requeued_on_start; /**< INFLIGHT entries found at the first tick */
  uint64_t batches_sent;
  uint64_t ops_sent;
  uint64_t bytes_sent;
  uint64_t busy;              /**< sends the transport refused (entries given back) */
  uint64_t results_done;      /**< DONE results that completed an entry */
  uint64_t results_quorum_wait; /**< DONE results counted, quorum not reached yet */
  uint64_t results_retry;     /**< RETRY results applied */
  uint64_t results_failed;    /**< FAILED results applied */
  uint64_t results_late;      /**< DONE for an entry no longer INFLIGHT (lease expired): completed */
  uint64_t results_duplicate; /**< results for entries already DONE */
  uint64_t results_stale;     /**< RETRY/FAILED for entries not INFLIGHT: ignored */
  uint64_t results_unknown;   /**< results for ids this outbox does not hold: ignored */
  uint64_t results_dropped;   /**< results refused because the buffer was full */
  uint64_t leases_expired;    /**< batches whose lease ended before all results came */
  uint64_t done_held;         /**< PENDING entries completed unclaimed: the transport's
                                   held_through covered them (sent by anti-entropy) */
  uint64_t results_invalid;   /**< results refused by vs_engine_on_results (peer
                                   >= VS_PEERS_MAX or an unknown kind) */
  uint64_t quorum_probes;     /**< slots examined in the ack_quorum table (ack_quorum > 1):
                                   about 1-2 per DONE; many more means clustered ids */
} vs_engine_stats;

typedef struct vs_engine vs_engine;

/** Create an engine over `outbox` (which must outlive it), asking `probe`
 *  and sending through `transport` (both copied). Takes the store's owner
 *  lock. @return VS_OK, VS_ERR_INVAL (bad cfg, one not started with
 *  vs_engine_cfg_default, or missing callbacks),
 *  VS_ERR_BUSY (another process owns the store), VS_ERR_NOMEM. */
VS_API vs_err vs_engine_new(const vs_engine_cfg *cfg, vs_outbox *outbox, const vs_probe *probe,
                     const vs_transport *transport, vs_engine **engine_out);

/** Free the engine. Entries in flight stay INFLIGHT in the store; the next
 *  engine requeues them. NULL is a no-op. */
VS_API void vs_engine_free(vs_engine *engine);

/** Advance to now_ms: poll the transport, apply results, expire leases,
 *  claim and send (see the file comment).
 *  @param[out] wake_ms_out when the engine next needs a tick (UINT64_MAX:
 *  only when something new is written or a result is pushed).
 *  @return VS_OK or a storage error (VS_ERR_FULL, VS_ERR_STORE): nothing of
 *  the failed step is lost, the next tick tries again. */
VS_API vs_err vs_engine_tick(vs_engine *engine, uint64_t now_ms, uint64_t *wake_ms_out);

/** Push results (from a driver that decodes acks): they are buffered and
 *  applied durably at the next tick, in arrival order. Reasons are copied.
 *  Every result must name a peer < VS_PEERS_MAX and a known kind; if one
 *  does not, the whole call is refused before anything is buffered.
 *  @return VS_OK; VS_ERR_INVAL (NULL engine or results, or an invalid result:
 *  nothing of the call is kept, `count` is added to results_invalid);
 *  VS_ERR_LIMIT (VS_ENGINE_RESULTS_MAX results are buffered already) or
 *  VS_ERR_NOMEM (growing the buffer failed): the excess is counted in
 *  results_dropped and behaves as a lost reply; what came before it is kept. */
VS_API vs_err vs_engine_on_results(vs_engine *engine, const vs_result *results, uint32_t count);

/** Counters since creation. */
VS_API void vs_engine_stats_get(const vs_engine *engine, vs_engine_stats *stats_out);

/** Batches currently in flight. */
VS_API uint32_t vs_engine_inflight_batches(const vs_engine *engine);

#ifdef __cplusplus
}
#endif
#endif
