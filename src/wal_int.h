/* WAL internals (wal.c): records inside a transaction, appends through
 * cursors, and readers. Not installed. The chain heads, signatures and
 * op-id lookups are the chain module's (chain.h). */
#ifndef VIXSYNC_WAL_INT_H
#define VIXSYNC_WAL_INT_H

#include "internal.h"

/** Highest LSN given so far (0 if none): the last record's, or the one
 *  vs_wal_last_lsn_keep_txn kept when compaction took the last records out. */
vs_err vs_wal_last_lsn_txn(MDB_txn *txn, const vs_store *store, uint64_t *lsn_out);

/** Remember the highest LSN given so far (meta "wal_last") before records
 *  at the end of the log are deleted, so that no LSN is given twice. */
vs_err vs_wal_last_lsn_keep_txn(MDB_txn *txn, const vs_store *store);

/** Append `op` as record `lsn` (which must be last + 1) inside `txn`: the WAL
 *  record, the op-id index and the chain head. The op must extend its chain
 *  (the caller checked or built it so). `known_hash` (may be NULL) is the
 *  op's hash when the caller computed it already (vs_op_hash). `enc` (may
 *  be NULL) is the op's canonical encoding, vs_op_encoded_bytes(op) bytes,
 *  when the caller holds it (decoded from it): copied instead of encoding.
 *  @param[out] hash_out the op's hash. */
vs_err vs_wal_append_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t *enc, uint64_t lsn,
                         uint64_t now_ms, const uint8_t *known_hash, bool put_head,
                         uint8_t hash_out[VS_HASH_BYTES]);

/** Cursors on the WAL and the op-id index for a run of appends in one
 *  transaction (vs_wal_append_cur): consecutive LSNs and consecutive op ids
 *  of one origin then often cost no search from the root (LMDB searches
 *  the cursor's own leaf page first). Close them before the transaction
 *  ends, or leave them to its end: a write transaction frees its cursors. */
typedef struct vs_wal_cursors {
  MDB_cursor *wal, *opid;
} vs_wal_cursors;
vs_err vs_wal_cursors_open(MDB_txn *txn, const vs_store *store, vs_wal_cursors *c);
void vs_wal_cursors_close(vs_wal_cursors *c);
/** vs_wal_append_txn through `cur` (NULL: plain puts). */
vs_err vs_wal_append_cur(MDB_txn *txn, const vs_store *store, vs_wal_cursors *cur, const vs_op *op, const uint8_t *enc,
                         uint64_t lsn, uint64_t now_ms, const uint8_t *known_hash, bool put_head,
                         uint8_t hash_out[VS_HASH_BYTES]);

/** The size of the operation encoding held in record `lsn`. */
vs_err vs_wal_op_bytes_txn(MDB_txn *txn, const vs_store *store, uint64_t lsn, uint32_t *op_bytes_out);

/** Point `enc_out` at the operation encoding of record `lsn` (valid while
 *  `txn` lives), after checking the record's checksum. */
vs_err vs_wal_op_encoded_txn(MDB_txn *txn, const vs_store *store, uint64_t lsn, const uint8_t **enc_out,
                             uint32_t *enc_bytes_out);

/** Reads of many records in one transaction, mostly in LSN order: a cursor
 *  that steps to the next record instead of searching the tree again. The
 *  same checks as vs_wal_op_encoded_txn; pointers valid while the txn lives
 *  and nothing is written through it. */
typedef struct vs_wal_reader {
  MDB_cursor *cur;
  uint64_t at; /* the LSN the cursor is on; 0 = not positioned */
} vs_wal_reader;
vs_err vs_wal_reader_open(MDB_txn *txn, const vs_store *store, vs_wal_reader *r);
vs_err vs_wal_reader_op(vs_wal_reader *r, uint64_t lsn, const uint8_t **enc_out, uint32_t *enc_bytes_out);
void vs_wal_reader_close(vs_wal_reader *r);

#endif
