/* vixsync: the Transport interface.
 *
 * A transport moves batches of operations to a sink (a peer mesh, an HTTP
 * endpoint, a test double) and reports what happened. Sending is
 * asynchronous: `send` takes a batch and returns at once, and results arrive
 * later, each naming the peer or sink that produced it:
 *
 *   DONE                         the op is held by `peer` (counts toward ack_quorum)
 *   RETRY(reason, retry_after)   a transient failure; retry_after_ms is a floor on the delay
 *   FAILED(reason)               a permanent rejection
 *
 * A lost result is simply a lease that expires: the engine retries, spending
 * an attempt. Results reach the engine either through the transport's `poll`
 * (the engine calls it on every tick) or pushed by the driver with
 * vs_engine_on_results (a network driver that decodes acks from peers).
 */
#ifndef VIXSYNC_TRANSPORT_H
#define VIXSYNC_TRANSPORT_H

#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"
#include "vixsync/outbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One operation of a batch: its id, LSN and canonical encoding. `encoded`
 *  points into the store and is valid only during the send call: a transport
 *  that keeps the bytes copies them. For a transport with `ids_only` set,
 *  `encoded` is NULL and `encoded_bytes` still the encoding's size. */
typedef struct vs_send_op {
  vs_op_id op_id;
  uint64_t lsn;
  uint32_t attempt; /**< which attempt this send is (1 = first); echo it in results */
  const uint8_t *encoded;
  uint32_t encoded_bytes;
} vs_send_op;

typedef struct vs_send_batch {
  uint64_t batch_id; /**< unique per engine, increasing from 1 */
  uint32_t attempt_max; /**< the highest attempt number among its entries */
  uint32_t op_count;
  uint64_t bytes;    /**< sum of encoded_bytes */
  const vs_send_op *ops;
} vs_send_batch;

typedef struct vs_result {
  vs_result_kind kind;
  vs_op_id op_id;
  uint32_t peer;           /**< the peer or sink that produced it (< VS_PEERS_MAX) */
  uint32_t attempt;        /**< the attempt it answers (vs_send_op.attempt); 0 = not known.
                                A RETRY or FAILED for an older attempt than the entry's current
                                one is stale and ignored; a DONE always counts. */
  uint64_t retry_after_ms; /**< RETRY only; 0 = none */
  const char *reason;      /**< RETRY and FAILED; may be NULL; copied by the engine */
} vs_result;

#define VS_PEERS_MAX 64u

/** Receives results from a transport's poll. Returns VS_OK to go on. */
typedef vs_err (*vs_result_fn)(void *emit_ctx, const vs_result *results, uint32_t count);

typedef struct vs_transport {
  void *ctx;
  /** Take a batch. VS_OK: accepted (results follow, or leases expire);
   *  VS_ERR_BUSY: not taken, the engine gives the entries back without
   *  spending their attempt and tries later. Required unless held_only. */
  vs_err (*send)(void *ctx, const vs_send_batch *batch, uint64_t now_ms);
  /** Hand over the results due at now_ms through `emit`. Optional. */
  vs_err (*poll)(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx);
  /** The earliest time poll has something to hand over, UINT64_MAX if
   *  nothing is scheduled. Optional. */
  uint64_t (*next_wake_ms)(void *ctx, uint64_t now_ms);
  /** The transport reads the operations itself (the peer mesh sends what a
   *  peer lacks from the store): batches carry ids, LSNs and sizes only, and
   *  the engine reads nothing from the WAL for them. */
  bool ids_only;
  /** Deliveries known as a range: true with `*id_out` when every operation
   *  of id_out's origin up to its seq is delivered to ack_quorum peers (the
   *  mesh: the quorum's version vectors). The engine then completes those
   *  entries still PENDING without claiming them. Optional. */
  bool (*held_through)(void *ctx, vs_op_id *id_out);
  /** The transport delivers the operations by itself and knows deliveries
   *  only as a range (the mesh: anti-entropy sends every peer what it
   *  lacks, acknowledgements are version vectors). The engine then never
   *  claims, sends or leases: entries stay PENDING, spending no attempt,
   *  until held_through (required) covers them. `send` may be NULL. */
  bool held_only;
} vs_transport;

#ifdef __cplusplus
}
#endif
#endif
