/* vixsync: an in-memory, scripted transport with a deduplicating receiver.
 *
 * For tests, examples and benchmarks: it "delivers" each batch to a receiver
 * in the same process that keeps every operation it accepts exactly once,
 * and answers after a fixed latency, as scripted: acks, drops (of batches or
 * of their acks), transient and permanent failures (random or per op: fail N
 * times then succeed), duplicate acks, acks for ids nobody sent, and busy
 * refusals. Its randomness comes from its own seeded generator, so a run is
 * a pure function of (script, seed, inputs).
 */
#ifndef VIXSYNC_MEM_TRANSPORT_H
#define VIXSYNC_MEM_TRANSPORT_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"
#include "vixsync/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Rates are in thousandths (permille), decided per batch or per op. */
typedef struct vs_mem_script {
  uint64_t latency_ms;             /**< results are due this long after send */
  uint32_t drop_batch_permille;    /**< batch lost before the receiver: no effect, no result */
  uint32_t drop_ack_permille;      /**< batch received, its results lost */
  uint32_t retry_permille;         /**< per op: receiver declines, RETRY */
  uint64_t retry_after_ms;         /**< carried by RETRY results */
  uint32_t fail_permille;          /**< per op: permanent rejection, FAILED */
  uint32_t duplicate_ack_permille; /**< per op: its DONE is sent twice */
  uint32_t unknown_ack_permille;   /**< per batch: an extra DONE for an id never sent */
  uint32_t busy_permille;          /**< per send: refused with VS_ERR_BUSY */
  uint32_t peer;                   /**< peer id named in results */
  uint64_t seed;                   /**< the transport's own PRNG */
} vs_mem_script;

typedef struct vs_mem_stats {
  uint64_t sends, busy, batches_dropped, acks_dropped;
  uint64_t ops_offered;   /**< ops in batches that reached the receiver */
  uint64_t ops_stored;    /**< distinct ops the receiver holds */
  uint64_t ops_redelivered; /**< ops that reached it again (it kept one copy) */
  uint64_t results_done, results_retry, results_failed, results_duplicate, results_unknown;
} vs_mem_stats;

typedef struct vs_mem_transport vs_mem_transport;

/** Called at every send, before anything else (to check G1 from a test). */
typedef void (*vs_mem_on_send)(void *ctx, const vs_send_batch *batch, uint64_t now_ms);

/** @return VS_OK, VS_ERR_INVAL (a rate above 1000) or VS_ERR_NOMEM. */
VS_API vs_err vs_mem_transport_new(const vs_mem_script *script, vs_mem_transport **t_out);
VS_API void vs_mem_transport_free(vs_mem_transport *t);

/** The vs_transport to give to an engine (valid while `t` lives). */
VS_API vs_transport vs_mem_transport_iface(vs_mem_transport *t);

/** Script one op: its next `times` deliveries get RETRY, then it succeeds. */
VS_API vs_err vs_mem_transport_fail_times(vs_mem_transport *t, const vs_op_id *id, uint32_t times);
/** Script one op: every delivery is rejected permanently. */
VS_API vs_err vs_mem_transport_reject(vs_mem_transport *t, const vs_op_id *id);
/** Change the script's rates (the PRNG and the receiver carry on). */
VS_API vs_err vs_mem_transport_set_script(vs_mem_transport *t, const vs_mem_script *script);
/** Install a send hook (NULL to remove). */
VS_API void vs_mem_transport_on_send(vs_mem_transport *t, vs_mem_on_send hook, void *ctx);

/** True when the receiver holds op `id`. */
VS_API bool vs_mem_transport_holds(const vs_mem_transport *t, const vs_op_id *id);
/** How many times the receiver accepted op `id` as new: 0 or 1 (G4). */
VS_API uint32_t vs_mem_transport_applied(const vs_mem_transport *t, const vs_op_id *id);
/** Call fn for every op the receiver holds, in table order (not sorted):
 *  to check it holds nothing that was never written. Stops at fn's error. */
VS_API vs_err vs_mem_transport_each_stored(const vs_mem_transport *t, vs_err (*fn)(void *ctx, const vs_op_id *id),
                                    void *ctx);
/** Counters. */
VS_API void vs_mem_transport_stats(const vs_mem_transport *t, vs_mem_stats *stats_out);
/** Results scheduled but not yet handed over. */
VS_API uint64_t vs_mem_transport_queued(const vs_mem_transport *t);

#ifdef __cplusplus
}
#endif
#endif
