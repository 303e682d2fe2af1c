/* vixsync: operations and their canonical binary encoding.
 *
 * An operation is the durable unit of work: Vix Sync's {id, kind, target,
 * payload} plus what peer-to-peer replication needs: the writer (`origin`,
 * an ed25519 public key), its per-origin gapless `seq` (from 1), a hybrid
 * logical clock `hlc` and `prev`, the hash of the origin's previous
 * operation (all zero for seq 1), which makes each origin's operations a
 * hash chain.
 *
 * The id is derived, never drawn: 24 bytes, a 128-bit origin tag
 * BLAKE2b-128("vixsync/op-id/v2" || origin) followed by seq as a 64-bit
 * big-endian integer. The same (origin, seq) gives the same id on every
 * machine, and the encoding does not carry it. Why this shape: the ids of one
 * origin are adjacent and increasing, so the op-id index grows by appends
 * (about 3x the group-commit throughput of a hash-of-everything id, measured
 * with tests/bench_write.c).
 *
 * Why 128 bits of tag (op-id v2; v1 was 16 bytes, an 80-bit tag and a 48-bit
 * seq): every index keyed by op id (op-id index, signatures, outbox, the
 * engine's and the HTTP receiver's deduplication) takes two ops with equal
 * ids for one, so two origins with equal tags cannot both be stored: the
 * second is refused everywhere. An attacker who chooses both origins finds
 * such a pair by birthday search in about 2^(tag bits / 2) key generations:
 * 2^40 for v1 (within reach), 2^64 for v2; by chance, 2^-128 per pair. Keying
 * the indexes by the full origin (32 + 8 = 40-byte ids) would rule collisions
 * out entirely but grows every key and record that carries an id by 16 more
 * bytes for no practical gain. The seq takes 8 bytes, not 6, so that ids
 * stay a whole number of u64s and the seq field can grow without another
 * format change; today it still holds at most VS_OP_SEQ_MAX (2^48 - 1, 8.9
 * years at a million writes a second from one origin), the limit of the op
 * encoding below. Changing the id changes the store format (store.c) and the
 * HTTP batch format (http_transport.h); peers never send ids (they derive
 * them), so the mesh wire format is unchanged.
 *
 * Encoding, version 1 (all integers little-endian, no padding):
 *
 *   offset size  field
 *   0      1     version      = 1 (any other value: VS_ERR_VERSION)
 *   1      1     flags        = 0 (reserved; non-zero: VS_ERR_MALFORMED)
 *   2      32    origin
 *   34     8     seq          1..VS_OP_SEQ_MAX
 *   42     8     hlc          48-bit wall-clock ms << 16 | 16-bit counter
 *   50     32    prev
 *   82     1     kind_bytes   1..64
 *   83     k     kind         bytes 0x21..0x7e (visible ASCII)
 *   ..     4     target_bytes <= VS_OP_TARGET_BYTES_MAX
 *   ..     t     target
 *   ..     4     payload_bytes <= VS_OP_PAYLOAD_BYTES_MAX
 *   ..     p     payload
 *
 * The limits are constants of the protocol version: every v1 node accepts
 * every operation within them.
 */
#ifndef VIXSYNC_OP_H
#define VIXSYNC_OP_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_OP_VERSION 1u
#define VS_OP_ID_BYTES 24u
#define VS_OP_ID_TAG_BYTES 16u /* BLAKE2b-128 of the origin */
#define VS_OP_ID_SEQ_BYTES (VS_OP_ID_BYTES - VS_OP_ID_TAG_BYTES) /* u64 big-endian */
#define VS_OP_SEQ_MAX ((1ull << 48) - 1u)
#define VS_OP_ID_HEX_BYTES (2u * VS_OP_ID_BYTES + 1u) /* with the NUL */
#define VS_ORIGIN_BYTES 32u
#define VS_HASH_BYTES 32u
#define VS_OP_KIND_BYTES_MAX 64u
#define VS_OP_TARGET_BYTES_MAX 1024u
#define VS_OP_PAYLOAD_BYTES_MAX 65536u
#define VS_OP_HEADER_BYTES 83u /* version .. kind_bytes */
#define VS_OP_ENCODED_BYTES_MAX                                                  \
  (VS_OP_HEADER_BYTES + VS_OP_KIND_BYTES_MAX + 4u + VS_OP_TARGET_BYTES_MAX + 4u + \
   VS_OP_PAYLOAD_BYTES_MAX)

/** An operation id: 24 bytes derived from (origin, seq): the origin's tag, then seq. */
typedef struct vs_op_id {
  uint8_t bytes[VS_OP_ID_BYTES];
} vs_op_id;

/** An operation. `target` and `payload` are borrowed: they point into the
 *  caller's memory (or, after vs_op_decode, into the decoded buffer) and must
 *  outlive the struct's use. `kind` is NUL-terminated and held inline. */
typedef struct vs_op {
  vs_op_id id;
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;
  uint64_t hlc;
  uint8_t prev[VS_HASH_BYTES];
  uint8_t kind_bytes;
  char kind[VS_OP_KIND_BYTES_MAX + 1];
  const uint8_t *target;
  uint32_t target_bytes;
  const uint8_t *payload;
  uint32_t payload_bytes;
} vs_op;

/** Derive the id of operation `seq` (1..VS_OP_SEQ_MAX) of `origin` (a pure
 *  function). */
VS_API void vs_op_id_derive(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, vs_op_id *id_out);

/** The seq an id carries (its last 8 bytes). Whose id it is takes the tag:
 *  compare it with an id derived from the origin. */
VS_API uint64_t vs_op_id_seq(const vs_op_id *id);

/** Whether two ids name operations of the same origin (equal tags). */
VS_API bool vs_op_id_same_origin(const vs_op_id *a, const vs_op_id *b);

/** Fill `op` from its parts and derive its id. `kind` is a NUL-terminated
 *  string. Borrowed buffers are not copied.
 *  @return VS_OK, VS_ERR_INVAL (NULL with a non-zero length, seq 0 or past VS_OP_SEQ_MAX) or
 *  VS_ERR_MALFORMED (kind empty, too long or outside 0x21..0x7e) or
 *  VS_ERR_TOO_LARGE (target or payload past the protocol limits). */
VS_API vs_err vs_op_init(vs_op *op, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, uint64_t hlc,
                  const uint8_t prev[VS_HASH_BYTES], const char *kind, const uint8_t *target,
                  uint32_t target_bytes, const uint8_t *payload, uint32_t payload_bytes);

/** Check that `kind` (kind_bytes bytes, not necessarily NUL-terminated) is a
 *  valid v1 kind: 1..64 visible ASCII bytes. @return VS_OK or VS_ERR_MALFORMED. */
VS_API vs_err vs_op_kind_check(const char *kind, size_t kind_bytes);

/** The exact size of `op`'s encoding. */
VS_API size_t vs_op_encoded_bytes(const vs_op *op);

/** Encode `op` into `out` (capacity out_bytes_max); `*out_bytes` gets the size.
 *  @return VS_OK, VS_ERR_BUFSIZE (nothing meaningful written) or the errors of
 *  vs_op_init's checks for an op that is not valid. */
VS_API vs_err vs_op_encode(const vs_op *op, uint8_t *out, size_t out_bytes_max, size_t *out_bytes);

/** Decode exactly `buf_bytes` bytes into `op_out`, derive its id. Strict:
 *  @return VS_OK, VS_ERR_TRUNCATED (input ends inside a field),
 *  VS_ERR_TRAILING (bytes after the payload), VS_ERR_TOO_LARGE (a length past
 *  a limit), VS_ERR_VERSION (unknown version), VS_ERR_MALFORMED (flags, seq 0 or past VS_OP_SEQ_MAX,
 *  bad kind). On error `op_out` is unspecified. On success its target and
 *  payload point into `buf`. Never reads outside buf[0, buf_bytes). */
VS_API vs_err vs_op_decode(const uint8_t *buf, size_t buf_bytes, vs_op *op_out);

/** The operation's hash: BLAKE2b-256("vixsync/op-hash/v1" || encoding). The
 *  next operation of the same origin carries it as `prev`.
 *  @return VS_OK or the errors of vs_op_encode for an invalid op. */
VS_API vs_err vs_op_hash(const vs_op *op, uint8_t hash_out[VS_HASH_BYTES]);

/** The same hash from an already encoded operation (no re-encoding). */
VS_API void vs_op_hash_encoded(const uint8_t *enc, size_t enc_bytes, uint8_t hash_out[VS_HASH_BYTES]);

/** Write `id` as 48 lowercase hex characters and a NUL into `hex_out`. */
VS_API void vs_op_id_to_hex(const vs_op_id *id, char hex_out[VS_OP_ID_HEX_BYTES]);

/** Parse 48 hex characters (2 * VS_OP_ID_BYTES). @return VS_OK or VS_ERR_INVAL (any
 *  other length, e.g. a 32-hex v1 id, or a non-hex character). */
VS_API vs_err vs_op_id_from_hex(const char *hex, vs_op_id *id_out);

/** True when both ids are equal. */
VS_API bool vs_op_id_equal(const vs_op_id *a, const vs_op_id *b);

/** HLC helpers: 48-bit milliseconds in the high bits, a 16-bit counter low. */
static inline uint64_t vs_hlc_make(uint64_t wall_ms, uint16_t counter) {
  return ((wall_ms & 0xffffffffffffull) << 16) | counter;
}
static inline uint64_t vs_hlc_wall_ms(uint64_t hlc) { return hlc >> 16; }

/** The next local HLC: max(wall clock, last + 1). Pure. */
VS_API uint64_t vs_hlc_next(uint64_t last_hlc, uint64_t wall_ms);

#ifdef __cplusplus
}
#endif
#endif
