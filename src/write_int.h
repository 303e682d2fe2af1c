/* The write path's internal entry for membership ops (write.c): the mesh
 * calls (mesh_api.c) write mesh.* ops of the store's identity through the
 * same transaction, signing and chain code as every write, and add their
 * own records in that transaction before it commits. Not installed. */
#ifndef VIXSYNC_WRITE_INT_H
#define VIXSYNC_WRITE_INT_H

#include "internal.h"
#include "vixsync/write.h"

typedef struct write_ctx write_ctx;

/** Begin a write transaction of the store's identity (VS_ERR_NO_IDENTITY
 *  without one). The context is freed by commit or abort. */
vs_err vs_write_sys_begin(vs_store *store, uint64_t now_ms, write_ctx **c_out);
/** Its transaction, for the caller's own reads and records. */
MDB_txn *vs_write_sys_txn(write_ctx *c);
/** The identity's chain head seq when the transaction began (before any op of it). */
uint64_t vs_write_sys_head_seq(const write_ctx *c);
/** Append one mesh.* op (target "mesh"): signed at commit, no outbox entry,
 *  no membership record (the caller puts it). Gate: the identity's member
 *  record must allow it, except for the op that opens the chain (seq 1).
 *  hash_out: the op's hash. On error the caller aborts. */
vs_err vs_write_sys_op(write_ctx *c, const char *kind, const uint8_t *payload, uint32_t payload_bytes,
                       vs_write_result *res, uint8_t hash_out[VS_HASH_BYTES]);
/** A fold in the transaction rebuilt the state: take its state hash (the
 *  commit writes the context's). */
vs_err vs_write_sys_state_reload(write_ctx *c);
/** Commit (the chain head, signature, HLC, state hash) and free. */
vs_err vs_write_sys_commit(write_ctx *c);
/** Abort and free (NULL: nothing). */
void vs_write_sys_abort(write_ctx *c);

#endif
