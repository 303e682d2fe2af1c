/* vixsync internals shared by the library's modules. Not installed. */
#ifndef VIXSYNC_INTERNAL_H
#define VIXSYNC_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <lmdb.h>
#include <sodium.h>

#include "vixsync/identity.h"
#include "vixsync/outbox.h"
#include "vixsync/state.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"

#include "apply.h"

/* ---- little-endian fields (wire and disk), big-endian keys (ordering) ---- */

static inline void vs_put_u16le(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
/* Written out byte by byte, not as loops: gcc merges each of these into one
 * load or store (plus a bswap for big-endian), which it does not do for the
 * loop forms (~2% of a replication's CPU went to the loops). */
static inline void vs_put_u32le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline void vs_put_u64le(uint8_t *p, uint64_t v) {
  vs_put_u32le(p, (uint32_t)v);
  vs_put_u32le(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t vs_get_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t vs_get_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t vs_get_u64le(const uint8_t *p) {
  return (uint64_t)vs_get_u32le(p) | ((uint64_t)vs_get_u32le(p + 4) << 32);
}
/* LMDB compares keys as byte strings: big-endian integers sort numerically. */
static inline void vs_put_u32be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void vs_put_u64be(uint8_t *p, uint64_t v) {
  vs_put_u32be(p, (uint32_t)(v >> 32));
  vs_put_u32be(p + 4, (uint32_t)v);
}
static inline uint32_t vs_get_u32be(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t vs_get_u64be(const uint8_t *p) {
  return ((uint64_t)vs_get_u32be(p) << 32) | (uint64_t)vs_get_u32be(p + 4);
}

/** Bits set in x (at most 64 rounds). */
static inline uint32_t vs_popcount64(uint64_t x) {
  uint32_t n = 0;
  for (; x != 0; x &= x - 1) n++;
  return n;
}

static inline uint64_t vs_add_sat_u64(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/* ---- hashing ---- */

/** Start an unkeyed BLAKE2b of `out_bytes` (1..64; libsodium accepts every
 *  length BLAKE2b defines, its BYTES_MIN of 16 is advice). A failure here is
 *  our bug, not bad input. */
static inline void vs_hash_init(crypto_generichash_state *st, size_t out_bytes) {
  int rc = crypto_generichash_init(st, NULL, 0, out_bytes);
  assert(rc == 0);
  (void)rc;
}

/* ---- checksums ---- */

/** CRC-32C (Castagnoli), as in iSCSI, ext4 and LevelDB. `crc` starts at 0. */
uint32_t vs_crc32c(uint32_t crc, const uint8_t *data, size_t data_bytes);

/** The table-driven CRC-32C, always available (tests compare both paths). */
uint32_t vs_crc32c_portable(uint32_t crc, const uint8_t *data, size_t data_bytes);

/** True when vs_crc32c uses the SSE4.2 crc32 instruction on this CPU. */
bool vs_crc32c_accelerated(void);

/* ---- the store ---- */

struct vs_store {
  MDB_env *env;
  /* meta's keys: "vixsync" -> store format u32le (store.c); "hlc", "restore"
   * (wal.c); "state_hash" (state.c); "sink:" name -> sink id u32le, and per
   * sink id (u32be): "obxcnt" (state counts), "obxrng" (ranges-only mark),
   * "sinkfill" (backfill progress) (outbox.c). */
  MDB_dbi dbi_meta;
  MDB_dbi dbi_wal;       /* lsn u64be -> WAL record */
  MDB_dbi dbi_opid;      /* op id -> lsn u64le, op hash */
  MDB_dbi dbi_idem;      /* idempotency key -> op id, args hash */
  MDB_dbi dbi_heads;     /* origin -> chain head */
  MDB_dbi dbi_outbox;    /* sink u32be, lsn u64be -> entry */
  MDB_dbi dbi_obx_ready; /* sink, next_attempt_at u64be, lsn -> "" (PENDING) */
  MDB_dbi dbi_obx_lease; /* sink, lease_until u64be, lsn -> "" (INFLIGHT) */
  MDB_dbi dbi_obx_state; /* sink, state u8, lsn -> "" (DONE, FAILED) */
  MDB_dbi dbi_state;     /* state key of a target -> state record (state.c) */
  MDB_dbi dbi_incrs;     /* target tag, hlc u64be, origin -> i64 delta (state.c) */
  MDB_dbi dbi_sigs;      /* op id -> signature of the chain head at that op */
  MDB_dbi dbi_forks;     /* origin -> fork verdict: void_from, the two hashes, prev, evidence (fork.c) */
  bool has_identity;     /* local writes of identity.pk are signed */
  bool hold_verdicts; /* the node defers fork verdicts found by apply (its refold budget is spent) */
  vs_identity identity;
  vs_durability durability;
  int owner_fd; /* -1 unless the owner lock is held */
  dev_t dev;
  ino_t ino;
  char *dir;
};

/** Map an LMDB or errno code to a vs_err. */
vs_err vs_mdb_err(int rc);

/** Begin a transaction, adopting a map grown by another process
 *  (MDB_MAP_RESIZED). */
vs_err vs_txn_begin(vs_store *store, bool write, MDB_txn **txn_out);

/** Commit; on failure the transaction is gone and nothing changed. */
vs_err vs_txn_commit(MDB_txn *txn);

/* ---- WAL internals (wal.c) ---- */

#define VS_OPID_VALUE_BYTES (8u + VS_HASH_BYTES)
#define VS_HEAD_VERSION 1u
#define VS_HEAD_VALUE_BYTES (1u + 8u + 8u + VS_HASH_BYTES)

typedef struct vs_head {
  uint64_t seq;
  uint64_t hlc;
  uint8_t hash[VS_HASH_BYTES];
} vs_head;

/** Decode a stored chain head. */
vs_err vs_head_decode(const MDB_val *v, vs_head *head_out);

/** Read the chain head of `origin` in `txn` (zero if none). */
vs_err vs_head_get(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], vs_head *head_out);

/** Highest LSN in `txn` (0 if empty). */
vs_err vs_wal_last_lsn_txn(MDB_txn *txn, const vs_store *store, uint64_t *lsn_out);

/* vs_msg_ops_decode, with each op's encoding (a pointer into the message
 * and its length) beside the decoded ops: the receive path hashes and
 * stores those bytes instead of encoding the op again. */
typedef vs_err (*vs_ops_run_enc_fn)(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                                    const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                                    uint32_t op_count, void *ctx);
vs_err vs_msg_ops_decode_enc(const uint8_t *in, size_t in_bytes, vs_ops_run_enc_fn fn, void *ctx);

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

/** vs_apply_run with each op's encoding (enc[i], enc_bytes[i]; both may be
 *  NULL): hashed and stored as they are. */
vs_err vs_apply_run_enc(vs_store *store, const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                        uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES], uint64_t now_ms,
                        uint64_t max_drift_ms, vs_apply_result *result_out);

/** The pure checks of a run (no store: any thread), for a receive pipeline:
 *  what vs_apply_run_enc checks before it opens the store (count, one
 *  origin, consecutive seqs, ids, encodings, the links inside the run),
 *  each op's hash into hashes_out (count entries), and when those pass the
 *  signature. The verdicts go to *pre_out, to be handed to vs_apply_run_pre
 *  with the same arguments; hashes_out must live as long. */
typedef struct vs_run_pre {
  const uint8_t (*hashes)[VS_HASH_BYTES];
  vs_err check;  /**< VS_OK, or the error vs_apply_run_enc returns for it */
  bool sig_ok;   /**< the signature verifies (only when check is VS_OK) */
} vs_run_pre;
void vs_run_prepare(const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count,
                    const uint8_t sig[VS_SIGNATURE_BYTES], uint8_t (*hashes_out)[VS_HASH_BYTES], vs_run_pre *pre_out);

/** vs_apply_run_enc with the pure checks done by vs_run_prepare: the same
 *  result for the same run, store and time, minus that work. */
vs_err vs_apply_run_pre(vs_store *store, const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                        uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES], const vs_run_pre *pre,
                        uint64_t now_ms, uint64_t max_drift_ms, vs_apply_result *result_out);

/** Store `origin`'s chain head. Appending many ops of one origin in one
 *  transaction, callers put the head once, after the last (put_head false
 *  for the others): the head is only read at the start of a transaction. */
vs_err vs_head_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], const vs_head *head);

/** Look up an op id: its LSN and hash. VS_ERR_NOTFOUND if absent. */
vs_err vs_opid_get(MDB_txn *txn, const vs_store *store, const vs_op_id *id, uint64_t *lsn_out,
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

/** Read the node-wide HLC (0 if never set) / store a new one. */
vs_err vs_meta_hlc_get(MDB_txn *txn, const vs_store *store, uint64_t *hlc_out);
vs_err vs_meta_hlc_put(MDB_txn *txn, const vs_store *store, uint64_t hlc);
/** The own seq a restored copy must reach before it writes (0: none; a put
 *  of 0 deletes it). See vs_write_restoring. */
vs_err vs_meta_restore_get(MDB_txn *txn, const vs_store *store, uint64_t *to_out);
vs_err vs_meta_restore_put(MDB_txn *txn, const vs_store *store, uint64_t to);

/** Store the signature of the chain head at op `id`. */
vs_err vs_sig_put_txn(MDB_txn *txn, const vs_store *store, const vs_op_id *id, const uint8_t sig[VS_SIGNATURE_BYTES]);

/** The first signed seq >= from_seq of `origin`, and its signature (may be
 *  NULL). VS_ERR_NOTFOUND when there is none. */
vs_err vs_sig_next_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from_seq,
                       uint64_t *seq_out, uint8_t sig_out[VS_SIGNATURE_BYTES]);

/** The pure shape checks of a run (apply.c): one origin, consecutive
 *  seqs, ids, encodings, links, at most max_bytes (as in an OPS message);
 *  fills each op's hash. VS_ERR_INVAL or VS_ERR_MALFORMED (broken links). */
vs_err vs_run_check(const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count,
                    uint64_t max_bytes, uint8_t (*hashes)[VS_HASH_BYTES]);

/* ---- fork verdicts (fork.c) ---- */

/** `origin`'s first void seq (0: none) and the prev both branches share
 *  (prev_out may be NULL). */
vs_err vs_fork_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                       uint64_t *void_from_out, uint8_t prev_out[VS_HASH_BYTES]);
/** 64 zero bytes: the signature of an op that fork evidence vouches for. */
const uint8_t *vs_fork_zero_sig(void);
/** Evidence from the held branch from ops[at].seq on and a signed run
 *  (ops[at..count-1], enc may be NULL), then vs_apply_fork. */
vs_err vs_fork_from_run(vs_store *store, const vs_op *ops, const uint8_t *const *enc, uint32_t count, uint32_t at,
                        const uint8_t sig[VS_SIGNATURE_BYTES], vs_fork_result *result_out);

/** The verdict after origin `after` (NULL: the first), by origin: its
 *  origin and FORK message. VS_ERR_NOTFOUND past the last. */
vs_err vs_fork_next(vs_store *store, const uint8_t *after, uint8_t origin_out[VS_ORIGIN_BYTES], uint8_t *out,
                    size_t out_max, size_t *out_bytes);

/** A digest of every verdict (0: none; never 0 otherwise), for VV
 *  messages: peers whose digests differ exchange their verdicts again. */
vs_err vs_fork_digest(vs_store *store, uint64_t *digest_out);

/* ---- state internals (state.c) ---- */

/** Rebuild the materialized state and its hash from the WAL records the
 *  op-id index still names (after a fork verdict voided some). */
vs_err vs_state_rebuild_txn(MDB_txn *txn, const vs_store *store);

/** Apply `op` (whose hash is `op_hash`) to the materialized state inside `txn`, folding the change
 *  into `state_hash` (in/out). Kinds other than put/del/incr change nothing. */
vs_err vs_state_apply_txn(MDB_txn *txn, const vs_store *store, const vs_op *op, const uint8_t op_hash[VS_HASH_BYTES],
                          uint8_t state_hash[VS_HASH_BYTES]);

/** Read / store the state hash kept in meta. */
vs_err vs_state_hash_get_txn(MDB_txn *txn, const vs_store *store, uint8_t hash_out[VS_HASH_BYTES]);
vs_err vs_state_hash_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t hash[VS_HASH_BYTES]);

/* ---- moved out of the installed headers (issue 15) ---- */

/* Internal, not in vixsync/wal.h: this receive path checks no signature and
 * bounds no clock drift (it is the WAL's own step, under vs_apply_run and
 * the tests). An application writes with vs_write and receives through
 * vs_node, which check both. */

/** Append a complete operation (its origin's next one: seq = head + 1 and
 *  prev = the head's hash, or seq 1 and prev all zero) in one durable
 *  transaction. Used for operations that arrive whole; local writes go
 *  through vs_write, which builds seq, prev and hlc itself.
 *  @param[out] lsn_out its LSN (may be NULL).
 *  @return VS_OK; VS_ERR_EXISTS (this exact operation is already stored:
 *  nothing changed); VS_ERR_FORK (another operation with the same origin and
 *  seq is stored); VS_ERR_CHAIN (seq or prev does not extend the chain);
 *  VS_ERR_FULL; VS_ERR_STORE; the validation errors of vs_op_encode. */
vs_err vs_wal_append(vs_store *store, const vs_op *op, uint64_t now_ms, uint64_t *lsn_out);

/* Internal: the counter parser shared by write.c, state.c and vix-node. */

/** Parse a signed 64-bit decimal integer: optional '-', 1 to 19 digits, no
 *  spaces or '+', in range. @return true and *out on success. */
bool vs_parse_i64(const uint8_t *text, uint32_t text_bytes, int64_t *out);

#ifdef VS_FAULT_INJECTION
/* The fault build fails the Nth LMDB write or commit (fault.h:
 * vs_fault_fail_nth); src/fault.c calls the real functions. */
int vs_fault_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags);
int vs_fault_mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags);
int vs_fault_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int vs_fault_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags);
int vs_fault_mdb_txn_commit(MDB_txn *txn);
#define mdb_put vs_fault_mdb_put
#define mdb_cursor_put vs_fault_mdb_cursor_put
#define mdb_del vs_fault_mdb_del
#define mdb_cursor_del vs_fault_mdb_cursor_del
#define mdb_txn_commit vs_fault_mdb_txn_commit
#endif

#endif
