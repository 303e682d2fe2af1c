/* The chain module (chain.c): what ties each origin's ops into a signed
 * chain, kept apart from the WAL records themselves. It owns the chain
 * heads (dbi "heads"), the signatures of run ends (dbi "sigs"), reads of
 * the op-id index (dbi "opid"; the WAL writes it with each record), the
 * node's HLC and restore marks in meta, the pure shape checks of a run,
 * and a run reader over an origin's signed runs. Not installed.
 *
 * It sits below wal, state, apply, fork and write, and above the base
 * (internal.h): it calls none of them, so the WAL, the state, the receive
 * path and local writes share it without a cycle between them. */
#ifndef VIXSYNC_CHAIN_H
#define VIXSYNC_CHAIN_H

#include "internal.h"

/* Value of the op-id index: the record's lsn u64le, the op's hash. */
#define VS_OPID_VALUE_BYTES (8u + VS_HASH_BYTES)
#define VS_HEAD_VERSION 1u
#define VS_HEAD_VALUE_BYTES (1u + 8u + 8u + VS_HASH_BYTES)

#define VS_APPLY_RUN_OPS_MAX 65536u
/** The most a run may weigh: the sum over its ops of 4 + the encoding's
 *  size (what it takes in an OPS message). Half a message, so that two
 *  branches of a fork, each at most one run, always fit one FORK message
 *  as evidence (wire.h): a run past it is refused (VS_ERR_INVAL), whoever
 *  signed it. Honest signers sign every VS_SIGN_INTERVAL_BYTES. */
#define VS_RUN_BYTES_MAX ((1024u * 1024u - 256u) / 2u)

typedef struct vs_head {
  uint64_t seq;
  uint64_t hlc;
  uint8_t hash[VS_HASH_BYTES];
} vs_head;

/** Decode a stored chain head. */
vs_err vs_head_decode(const MDB_val *v, vs_head *head_out);

/** Read the chain head of `origin` in `txn` (zero if none). */
vs_err vs_head_get(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], vs_head *head_out);

/** Store `origin`'s chain head. Appending many ops of one origin in one
 *  transaction, callers put the head once, after the last (put_head false
 *  for the others): the head is only read at the start of a transaction. */
vs_err vs_head_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], const vs_head *head);

/** Look up an op id: its LSN and hash. VS_ERR_NOTFOUND if absent. */
vs_err vs_opid_get(MDB_txn *txn, const vs_store *store, const vs_op_id *id, uint64_t *lsn_out,
                   uint8_t hash_out[VS_HASH_BYTES]);

/** An origin's horizon (compact.h): every op up to `seq` is folded into the
 *  base state and gone from the log (membership ops stay); `hash` and `hlc`
 *  are those of the op at `seq`, the chain's anchor. seq 0: nothing
 *  compacted. */
typedef struct vs_horizon {
  uint64_t seq;
  uint64_t hlc;
  uint8_t hash[VS_HASH_BYTES];
  bool has_sig; /* the origin's signature of its chain head at seq (it signed there) */
  uint8_t sig[VS_SIGNATURE_BYTES];
} vs_horizon;
#define VS_HORIZON_VERSION 1u
#define VS_HORIZON_VALUE_BYTES (1u + 8u + 8u + VS_HASH_BYTES + 1u + VS_SIGNATURE_BYTES)

/** Read `origin`'s horizon in `txn` (zero if none) / store it. */
/** The hash of `origin`'s op at `seq` if this store holds it or has it as
 *  its horizon's anchor. @return VS_OK or VS_ERR_NOTFOUND. */
vs_err vs_op_hash_at_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                         uint8_t hash_out[VS_HASH_BYTES]);
vs_err vs_horizon_get(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], vs_horizon *out);
vs_err vs_horizon_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                          const vs_horizon *h);

/** Verdicts that reached below a horizon (meta "hz_breach" u64le): a fork
 *  verdict or a revocation cut or lost admission that would void ops this
 *  store already folded. It cannot (voids.c starts above the horizon), so
 *  this store and one that did not compact disagree on those ops: the
 *  finality rules (compact_final.h) keep honest meshes from it; what is
 *  left is counted here and logged by the daemon (docs/storage.md,
 *  "Membership finality"). */
vs_err vs_horizon_breaches_get_txn(MDB_txn *txn, const vs_store *store, uint64_t *count_out);
vs_err vs_horizon_breach_add_txn(MDB_txn *txn, const vs_store *store);

/** Read the node-wide HLC (0 if never set) / store a new one. */
vs_err vs_meta_hlc_get(MDB_txn *txn, const vs_store *store, uint64_t *hlc_out);
vs_err vs_meta_hlc_put(MDB_txn *txn, const vs_store *store, uint64_t hlc);
/** The own seq a restored copy must reach before it writes (0: none; a put
 *  of 0 deletes it). See vs_write_restoring. */
vs_err vs_meta_restore_get(MDB_txn *txn, const vs_store *store, uint64_t *to_out);
vs_err vs_meta_restore_put(MDB_txn *txn, const vs_store *store, uint64_t to);
/* meta "contact": the wall ms (the node's clock) it last had a ready
 * session, kept every suspend_after / 8 (0: never). */
vs_err vs_meta_contact_get(MDB_txn *txn, const vs_store *store, uint64_t *ms_out);
vs_err vs_meta_contact_put(MDB_txn *txn, const vs_store *store, uint64_t ms);
/* meta "late": the wall ms the node found itself a too-late replica (0:
 * not one); cleared by the rebase that orphans its absence, in its
 * transaction, so a crash in between leaves it late. */
vs_err vs_meta_late_get(MDB_txn *txn, const vs_store *store, uint64_t *ms_out);
vs_err vs_meta_late_put(MDB_txn *txn, const vs_store *store, uint64_t ms);

/** Store the signature of the chain head at op `id`. */
vs_err vs_sig_put_txn(MDB_txn *txn, const vs_store *store, const vs_op_id *id, const uint8_t sig[VS_SIGNATURE_BYTES]);

/** The first signed seq >= from_seq of `origin`, and its signature (may be
 *  NULL). VS_ERR_NOTFOUND when there is none. */
vs_err vs_sig_next_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from_seq,
                       uint64_t *seq_out, uint8_t sig_out[VS_SIGNATURE_BYTES]);

/** The signature stored for operation `id` (the chain head at it), if the
 *  origin signed there. @return VS_OK or VS_ERR_NOTFOUND. */
vs_err vs_apply_sig_get(vs_store *store, const vs_op_id *id, uint8_t sig_out[VS_SIGNATURE_BYTES]);

/** The first seq >= from_seq of `origin` that carries a signature (the end
 *  of the run that starts at from_seq). @return VS_OK or VS_ERR_NOTFOUND. */
vs_err vs_apply_next_signed(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from_seq,
                            uint64_t *seq_out);

/** The pure shape checks of a run (apply.c): one origin, consecutive
 *  seqs, ids, encodings, links, at most max_bytes (as in an OPS message);
 *  fills each op's hash. VS_ERR_INVAL or VS_ERR_MALFORMED (broken links). */
vs_err vs_run_check(const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count,
                    uint64_t max_bytes, uint8_t (*hashes)[VS_HASH_BYTES]);

/* ---- the run reader ----
 * An origin's ops from a seq on, in seq order, each with its record's LSN
 * and, where the origin signed the chain head, the signature: what a node
 * needs to send signed runs (a run ends at a signed op; the signature
 * covers the ops before it through their links). One cursor over the
 * op-id index (ids of an origin sort by seq) and one over the signatures,
 * so reading a run costs no search per op. Pointers stay valid while the
 * read transaction lives. */
typedef struct vs_chain_runs {
  MDB_cursor *sigs, *opid;
  vs_op_id start;      /* (origin, from): its tag picks the origin's keys */
  uint64_t seq, last;  /* the next op's seq; the last seq to read */
  uint64_t signed_seq; /* the next signed seq, <= last */
  const uint8_t *sig;  /* its signature */
  bool stepped;        /* next read an op: the cursor steps on */
  uint64_t horizon;    /* the origin's horizon: a missing op below it was compacted */
} vs_chain_runs;

typedef struct vs_chain_op {
  uint64_t seq;
  uint64_t lsn;       /* of its WAL record */
  const uint8_t *sig; /* VS_SIGNATURE_BYTES: a signed run ends here; NULL: not signed */
} vs_chain_op;

/** Start reading `origin` from seq `from` (at most to `last`). Close it
 *  (also after an error) before `txn` ends.
 *  @return VS_OK; VS_ERR_NOTFOUND (no signed op in from..last: unsigned
 *  ops stay local); VS_ERR_BEHIND_HORIZON (`from` is below the origin's
 *  horizon: those ops were compacted here); VS_ERR_CORRUPT (a signature
 *  without its op). */
vs_err vs_chain_runs_open(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                          uint64_t last, vs_chain_runs *r);
/** The next op (from, from + 1, ...; the caller stops at `last`).
 *  @return VS_OK; VS_ERR_CORRUPT (the op is missing: the caller knows it
 *  is held, from its version vector or a later signature). */
vs_err vs_chain_runs_next(vs_chain_runs *r, vs_chain_op *op_out);
/** Move past the signature of the op just read (op_out->sig set), to the
 *  next signed op. @return VS_OK; VS_ERR_NOTFOUND (no signed op past it up
 *  to `last`: the ops after it cannot be sent). */
vs_err vs_chain_runs_past_sig(vs_chain_runs *r);
void vs_chain_runs_close(vs_chain_runs *r);

#endif
