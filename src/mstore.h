/* The store's membership facts (issue 16, slice 2a): the `mesh` database
 * (internal.h) keeps one record per mesh.* op the store holds, written in
 * the transaction that stores the op and dropped in the one that voids it
 * (fork.c). Not installed. Module `mstore`: it reads the WAL and calls the
 * pure `member` module; apply and fork call it, it calls neither.
 *
 * Record: key origin 32 || seq u64be; value version u8 (1), the op's hash
 * 32, its LSN u64le (41 bytes). Nothing is refused for membership here: the
 * gate is a later slice. */
#ifndef VIXSYNC_MSTORE_H
#define VIXSYNC_MSTORE_H

#include "internal.h"
#include "member.h"

#define VS_MESH_RECORD_VERSION 1u
/* An orphan: a revoke of a revoked member past its cut, kept without its
 * chain (mgate.h): version u8 (2), the op's hash 32, the op's encoding. */
#define VS_MESH_ORPHAN_VERSION 2u
#define VS_MESH_RECORD_KEY_BYTES (VS_ORIGIN_BYTES + 8u)
#define VS_MESH_RECORD_BYTES (1u + VS_HASH_BYTES + 8u)

/** Records held in `txn` (LMDB's entry count: O(1)). */
vs_err vs_mesh_records_count_txn(MDB_txn *txn, const vs_store *store, uint64_t *count_out);

/** Put the record of the mesh.* op (origin, seq) with `hash`, stored at `lsn`. */
vs_err vs_mesh_record_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                              const uint8_t hash[VS_HASH_BYTES], uint64_t lsn);

/** Put an orphan record for `op` (hash `hash`): the op's own bytes, for a
 *  fact whose op the chain does not hold (a revoke past its author's cut). */
vs_err vs_mesh_orphan_put_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t hash[VS_HASH_BYTES]);

/** Delete the records of `origin` from seq `from` on (a fork verdict voids
 *  them). Bounded by the origin's records. */
vs_err vs_mesh_records_drop_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                                uint64_t from);

/** The fact of the record (origin, seq), read back from the WAL and checked
 *  as vs_mesh_view_get checks it. VS_ERR_NOTFOUND: no such record. */
vs_err vs_mesh_fact_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                            vs_mesh_fact *out);

/** The op of the chain record (origin, seq), decoded in place (its
 *  pointers valid while `txn` lives). VS_ERR_NOTFOUND: no such record, or
 *  an orphan (no chain op); VS_ERR_CORRUPT: the WAL disagrees. */
vs_err vs_mesh_record_op_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                             vs_op *op_out);

/** Every fact the store holds, in (origin, seq) order, read in `txn` as
 *  vs_mesh_view_get reads them: *facts_out malloc'd (the caller frees it),
 *  *count_out of them. Errors as vs_mesh_view_get's. */
vs_err vs_mesh_facts_read_txn(MDB_txn *txn, const vs_store *store, vs_mesh_fact **facts_out, uint32_t *count_out);

/** *out: whether some revoke this store holds (its author's cut or a senior
 *  revoke may leave it without effect here: an orphan, or the loser of two
 *  admins' mutual revokes) names `device` with a cut at or below `seq`. A
 *  peer that took that revoke voided `device`'s ops past the cut, so its
 *  vector may fall to it (node_member.c). Reads every record: bounded by
 *  VS_MESH_FACTS_MAX. Errors as vs_mesh_facts_read_txn's. */
vs_err vs_mesh_revoke_held_txn(MDB_txn *txn, const vs_store *store, const uint8_t device[VS_ORIGIN_BYTES], uint64_t seq,
                               bool *out);

/** The view of mesh `mesh_id` from the facts the store holds: in one read
 *  transaction, every record's op is read from the WAL, decoded, checked
 *  against the record (origin, seq, hash: VS_ERR_CORRUPT when they differ
 *  or the fact no longer decodes), and all are folded by vs_mesh_reduce
 *  (facts of other meshes fold to nothing). Bounded by VS_MESH_FACTS_MAX
 *  records (more: VS_ERR_LIMIT, which apply never lets happen).
 *  @return VS_OK; VS_ERR_INVAL (NULLs); VS_ERR_NOMEM; VS_ERR_CORRUPT;
 *  VS_ERR_LIMIT; vs_mesh_reduce's errors. *view_out is zeroed on error. */
vs_err vs_mesh_view_get(vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES], vs_mesh_view *view_out);

#endif
