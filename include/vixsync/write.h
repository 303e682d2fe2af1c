/* vixsync: the local write path.
 *
 * Local write -> WAL -> Outbox, in one LMDB write transaction: the WAL
 * record, the op-id index, the idempotency-key index, the origin's chain head
 * (seq, hash, hlc) and one outbox entry per registered sink. The write is
 * durable exactly when that transaction commits; nothing is sent before.
 *
 * seq, prev and hlc are read inside the transaction, so several processes may
 * write to the same store at once: LMDB serializes their write transactions.
 *
 * Idempotency keys: a write may carry an application key. The first write with
 * a key stores the operation and maps the key to it; a later write with the
 * same key and the same (kind, target, payload) returns the first operation's
 * id and changes nothing (so a writer that crashed before it saw the answer
 * may simply write again); with different arguments it is VS_ERR_CONFLICT.
 */
#ifndef VIXSYNC_WRITE_H
#define VIXSYNC_WRITE_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"
#include "vixsync/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_IDEM_KEY_BYTES_MAX 256u
/** Operations per vs_write_batch call. */
#define VS_WRITE_BATCH_MAX 100000u

/** One local write. Buffers are borrowed for the duration of the call. */
typedef struct vs_write_req {
  const char *kind;         /**< NUL-terminated, 1..64 visible ASCII bytes, not starting with "mesh." */
  const uint8_t *target;
  uint32_t target_bytes;    /**< <= VS_OP_TARGET_BYTES_MAX */
  const uint8_t *payload;
  uint32_t payload_bytes;   /**< <= VS_OP_PAYLOAD_BYTES_MAX */
  const uint8_t *idem_key;  /**< NULL: no idempotency key */
  uint32_t idem_key_bytes;  /**< 1..VS_IDEM_KEY_BYTES_MAX when idem_key is set */
} vs_write_req;

typedef struct vs_write_result {
  vs_op_id op_id;
  uint64_t lsn;
  uint64_t seq;
  uint64_t hlc;
  /** True when the idempotency key had been used with the same arguments:
   *  op_id and the rest describe the first operation, nothing was written
   *  (if compaction took that operation out of the log since: lsn 0, and
   *  hlc 0 unless it is the chain's anchor; vs_store_compact). */
  bool duplicate;
} vs_write_result;

/** Durably write one local operation of `origin`.
 *  @param now_ms wall-clock milliseconds, for the HLC and the outbox times.
 *  @param[out] result_out what was written (may be NULL).
 *  @return VS_OK; VS_ERR_CONFLICT (idempotency key reused with other
 *  arguments); VS_ERR_INVAL, VS_ERR_MALFORMED, VS_ERR_TOO_LARGE (bad
 *  request; VS_ERR_INVAL also for a kind starting with "mesh.", which is
 *  reserved for membership ops and never written by an application);
 *  VS_ERR_FULL (store full: nothing changed); VS_ERR_STORE. */
VS_API vs_err vs_write(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], const vs_write_req *req,
                uint64_t now_ms, vs_write_result *result_out);

/** Group commit: write `count` operations in one transaction, all or none.
 *  Requests are applied in order (a key repeated inside the batch behaves as
 *  it would across calls). @param[out] results_out room for `count` results
 *  (may be NULL). @return as vs_write; on any error nothing is written (a
 *  batch holding one "mesh." kind writes none of its operations). */
VS_API vs_err vs_write_batch(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                      const vs_write_req *reqs, size_t count, uint64_t now_ms,
                      vs_write_result *results_out);

/** A restored copy of a device (a backup, a copied data directory) learns
 *  from a peer, with its own signed operations as proof, that its chain
 *  went further than its store: until its head reaches that seq, every
 *  write that would append fails with VS_ERR_RESTORING (nothing written),
 *  so it never reuses a seq it already signed elsewhere; an idempotent
 *  retry of a stored write still answers. *to_out: the seq to reach (0: not
 *  restoring). The node sets and clears it (node.h). @return VS_OK or a
 *  storage error. */
VS_API vs_err vs_write_restoring(vs_store *store, uint64_t *to_out);

/** Look up an idempotency key. @param[out] id_out the operation it created.
 *  @return VS_OK or VS_ERR_NOTFOUND. */
VS_API vs_err vs_write_idem_lookup(vs_store *store, const uint8_t *idem_key, uint32_t idem_key_bytes,
                            vs_op_id *id_out);

#ifdef __cplusplus
}
#endif
#endif
