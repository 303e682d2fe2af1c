/* The base of vixsync's modules: byte order, hashing, checksums, the
 * store struct and its transactions. Not installed. Each module's own
 * internals are in its header: chain.h, wal_int.h, state_int.h, fork.h,
 * apply.h; this one includes none of them (tests/check_modules.py). */
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

/* Unsigned LEB128 (wire v7): 7 bits per byte, low first, at most
 * VS_VARINT_MAX bytes. vs_varint_put writes v at p (room for VS_VARINT_MAX)
 * and returns the bytes written; vs_varint_bytes says how many it takes. */
#ifndef VS_VARINT_MAX
#define VS_VARINT_MAX 10u /* also in wire.h */
#endif
static inline size_t vs_varint_put(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80u) { /* bounded: 64 bits, 7 a step */
    p[n++] = (uint8_t)(v | 0x80u);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}
static inline size_t vs_varint_bytes(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80u) { /* bounded: 64 bits, 7 a step */
    v >>= 7;
    n++;
  }
  return n;
}
/* Read a varint at in[*pos] (in_bytes in all): the shortest encoding only
 * (one value, one form), never past 64 bits. Returns false on a truncated,
 * overlong or overflowing varint; *pos moves only on success. */
static inline bool vs_varint_get(const uint8_t *in, size_t in_bytes, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  size_t i = *pos;
  for (unsigned shift = 0; shift < 64; shift += 7) { /* bounded: 10 bytes */
    if (i >= in_bytes) return false;
    uint8_t b = in[i++];
    if (shift == 63 && b > 1u) return false; /* past 64 bits */
    v |= (uint64_t)(b & 0x7fu) << shift;
    if ((b & 0x80u) == 0) {
      if (b == 0 && shift > 0) return false; /* a longer form of a shorter value */
      *pos = i;
      *out = v;
      return true;
    }
  }
  return false;
}

/* vs_varint_get with a verdict: VS_ERR_TRUNCATED only when the input ends
 * inside a varint that could still be valid (every byte left says "more"),
 * VS_ERR_MALFORMED for a longer form or one past 64 bits. */
static inline vs_err vs_varint_take(const uint8_t *in, size_t in_bytes, size_t *pos, uint64_t *out) {
  if (vs_varint_get(in, in_bytes, pos, out)) return VS_OK;
  size_t left = in_bytes - *pos;
  for (size_t i = 0; i < left && i < VS_VARINT_MAX; i++) /* bounded: 10 bytes */
    if ((in[*pos + i] & 0x80u) == 0) return VS_ERR_MALFORMED;
  return left < VS_VARINT_MAX ? VS_ERR_TRUNCATED : VS_ERR_MALFORMED;
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

struct vs_orphan; /* vixsync/snapshot.h */

struct vs_store {
  MDB_env *env;
  /* meta's keys: "vixsync" -> store format u32le (store.c); "hlc", "restore"
   * (chain.c); "state_hash" (state.c); "sink:" name -> sink id u32le, and per
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
  MDB_dbi dbi_mesh;      /* origin, seq u64be -> mesh.* op's record: version u8, hash, lsn u64le (mstore.c) */
  MDB_dbi dbi_members;   /* device pk -> member record of a managed mesh (mgate.c); meta "mesh_id" says managed */
  MDB_dbi dbi_inert;     /* op id -> "": a held op with no effect on the state (a reader's data op: mgate.c) */
  /* Store format 6 (compaction, compact.c): the state folded from every op
   * at or below the horizon (same records as state/incrs), and per origin
   * the horizon: the op the log keeps as the chain's anchor. */
  MDB_dbi dbi_hstate;    /* state key -> state record of the base (state.c) */
  MDB_dbi dbi_hincrs;    /* as incrs, for the base */
  MDB_dbi dbi_horizon;   /* origin -> horizon record (chain.c) */
  MDB_dbi dbi_acks;      /* member pk -> its latest acknowledgement: keyframe and delta (acks.h) */
  bool has_identity;     /* local writes of identity.pk are signed */
  bool hold_verdicts; /* the node defers fork verdicts found by apply (its refold budget is spent) */
  vs_identity identity;
  vs_durability durability;
  uint64_t suspend_after_ms; /* vs_store_set_suspend_after: vs_store_compact's bound on silent members */
  vs_err (*on_orphan)(void *ctx, const struct vs_orphan *orphan); /* vs_store_set_orphan_fn */
  void *on_orphan_ctx;
  int owner_fd; /* -1 unless the owner lock is held */
  dev_t dev;
  ino_t ino;
  char *dir;
};

/* The transaction helpers (txn.c): the base every module opens its
 * transactions with, apart from the store module (store.c), which opens
 * the environment and calls the sink registry. */

/** Map an LMDB or errno code to a vs_err. */
vs_err vs_mdb_err(int rc);

/** Begin a transaction, adopting a map grown by another process
 *  (MDB_MAP_RESIZED). */
vs_err vs_txn_begin(vs_store *store, bool write, MDB_txn **txn_out);

/** Commit; on failure the transaction is gone and nothing changed. */
vs_err vs_txn_commit(MDB_txn *txn);


/* ---- moved out of the installed headers (issue 15) ---- */

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

/* ... and the Nth allocation (fault.h: vs_fault_fail_nth_alloc). <stdlib.h>
 * first, so a file that includes it after this header gets its guard and
 * not a second declaration of malloc under our name. free is left alone:
 * it cannot fail. */
#include <stddef.h>
#include <stdlib.h>
void *vs_fault_malloc(size_t size);
void *vs_fault_calloc(size_t count, size_t size);
void *vs_fault_realloc(void *ptr, size_t size);
#define malloc vs_fault_malloc
#define calloc vs_fault_calloc
#define realloc vs_fault_realloc
#endif

#endif
