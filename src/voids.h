/* Voiding an origin's ops from a seq on (voids.c): what a fork verdict
 * (fork.c) and a revocation cut (mgate.c) both do to the ops they void, in
 * the caller's transaction. Not installed. */
#ifndef VIXSYNC_VOIDS_H
#define VIXSYNC_VOIDS_H

#include "internal.h"

/* Why the ops are void: the reason their outbox entries fail with. */
typedef enum vs_void_why {
  VS_VOID_FORK = 1,   /* the origin forked at `from` */
  VS_VOID_CUT = 2,    /* the origin was revoked with a cut at from - 1 */
  VS_VOID_ADMIT = 3,  /* the origin's admission is void (another admit won its invite, or its inviter was cut) */
} vs_void_why;

/** Roll `origin`'s chain back to from - 1 and (with `rebuild`) refold the
 *  state: its op-id entries and signatures from `from` on are dropped (and,
 *  for a fork, its membership records: a cut or a lost admission keeps
 *  them, the reducer ignoring facts past a cut),
 *  its own outbox entries from there fail with the reason `why`, the head
 *  moves to from - 1 (gone at from 1), and when the op there has hash
 *  `prev` and no signature of its own at or above it survives, it gets
 *  `prev_sig` (a revoke carries the device's own signature of the op at
 *  its cut) or, NULL, the zero signature (fork evidence vouches for it:
 *  apply.h, FORKS). *changed_out: anything was held from `from`.
 *  Bounded by the origin's held ops; the state rebuild by the WAL. */
vs_err vs_void_from_txn(MDB_txn *txn, vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                        const uint8_t prev[VS_HASH_BYTES], const uint8_t *prev_sig, vs_void_why why, bool rebuild,
                        bool *changed_out);

/** `op` is about to be appended again after a lifted cut or admission
 *  (its op-id entry went with the void): a membership op's WAL record, kept
 *  for the reducer, is deleted so that the op is stored once (its mesh
 *  record is rewritten with the new LSN by the gate). Data ops' records
 *  went with the void itself. A no-op for an op never voided. */
vs_err vs_void_retake_txn(MDB_txn *txn, vs_store *store, const vs_op *op);

#endif
