#define _POSIX_C_SOURCE 200809L /* strnlen, snprintf */
/* Operations: canonical encoding, strict decoding, derived ids and hashes. */
#include "vixsync/op.h"

#include <sodium.h>

#include "internal.h"

static const char OP_ID_DOMAIN[] = "vixsync/op-id/v2";

_Static_assert(VS_OP_ID_TAG_BYTES >= 16, "at least 128 bits of the origin in an op id (op.h)");
_Static_assert(VS_OP_ID_SEQ_BYTES == 8, "the seq is a u64 big-endian in an op id");
static const char OP_HASH_DOMAIN[] = "vixsync/op-hash/v1";

void vs_op_id_derive(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, vs_op_id *id_out) {
  assert(origin != NULL && id_out != NULL);
  assert(seq <= VS_OP_SEQ_MAX);
  /* Runs, batches and chains come one origin at a time: remember the last
   * origin's tag (per thread) instead of hashing it for every op. */
  static _Thread_local uint8_t cached_origin[VS_ORIGIN_BYTES];
  static _Thread_local uint8_t cached_tag[VS_OP_ID_TAG_BYTES];
  static _Thread_local bool cached;
  if (!cached || memcmp(cached_origin, origin, VS_ORIGIN_BYTES) != 0) {
    crypto_generichash_state st;
    vs_hash_init(&st, VS_OP_ID_TAG_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)OP_ID_DOMAIN, sizeof OP_ID_DOMAIN - 1);
    crypto_generichash_update(&st, origin, VS_ORIGIN_BYTES);
    crypto_generichash_final(&st, cached_tag, VS_OP_ID_TAG_BYTES);
    memcpy(cached_origin, origin, VS_ORIGIN_BYTES);
    cached = true;
  }
  memcpy(id_out->bytes, cached_tag, VS_OP_ID_TAG_BYTES);
  /* Big-endian: the ids of one origin sort in seq order (see op.h). */
  vs_put_u64be(id_out->bytes + VS_OP_ID_TAG_BYTES, seq);
}

vs_err vs_op_kind_check(const char *kind, size_t kind_bytes) {
  if (kind == NULL || kind_bytes == 0 || kind_bytes > VS_OP_KIND_BYTES_MAX) return VS_ERR_MALFORMED;
  for (size_t i = 0; i < kind_bytes; i++) {
    unsigned char c = (unsigned char)kind[i];
    if (c < 0x21 || c > 0x7e) return VS_ERR_MALFORMED;
  }
  return VS_OK;
}

/* The checks every valid op passes, shared by init and encode. */
static vs_err op_check(const vs_op *op) {
  if (op->seq == 0 || op->seq > VS_OP_SEQ_MAX) return VS_ERR_INVAL;
  if ((op->target == NULL && op->target_bytes != 0) || (op->payload == NULL && op->payload_bytes != 0))
    return VS_ERR_INVAL;
  if (op->target_bytes > VS_OP_TARGET_BYTES_MAX || op->payload_bytes > VS_OP_PAYLOAD_BYTES_MAX)
    return VS_ERR_TOO_LARGE;
  return vs_op_kind_check(op->kind, op->kind_bytes);
}

vs_err vs_op_init(vs_op *op, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, uint64_t hlc,
                  const uint8_t prev[VS_HASH_BYTES], const char *kind, const uint8_t *target,
                  uint32_t target_bytes, const uint8_t *payload, uint32_t payload_bytes) {
  if (op == NULL || origin == NULL || kind == NULL) return VS_ERR_INVAL;
  memset(op, 0, sizeof *op);
  size_t kind_bytes = strnlen(kind, VS_OP_KIND_BYTES_MAX + 1);
  vs_err err = vs_op_kind_check(kind, kind_bytes);
  if (err != VS_OK) return err;
  memcpy(op->origin, origin, VS_ORIGIN_BYTES);
  op->seq = seq;
  op->hlc = hlc;
  if (prev != NULL) memcpy(op->prev, prev, VS_HASH_BYTES);
  op->kind_bytes = (uint8_t)kind_bytes;
  memcpy(op->kind, kind, kind_bytes);
  op->kind[kind_bytes] = '\0';
  op->target = target;
  op->target_bytes = target_bytes;
  op->payload = payload;
  op->payload_bytes = payload_bytes;
  err = op_check(op);
  if (err != VS_OK) return err;
  vs_op_id_derive(origin, seq, &op->id);
  return VS_OK;
}

uint64_t vs_op_id_seq(const vs_op_id *id) {
  return vs_get_u64be(id->bytes + VS_OP_ID_TAG_BYTES);
}

bool vs_op_id_same_origin(const vs_op_id *a, const vs_op_id *b) {
  return memcmp(a->bytes, b->bytes, VS_OP_ID_TAG_BYTES) == 0;
}

size_t vs_op_encoded_bytes(const vs_op *op) {
  assert(op != NULL);
  return VS_OP_HEADER_BYTES + op->kind_bytes + 4u + op->target_bytes + 4u + op->payload_bytes;
}

/* Lay out version .. kind (the fixed part); returns its size. */
static size_t put_header(const vs_op *op, uint8_t *p) {
  p[0] = VS_OP_VERSION;
  p[1] = 0; /* flags */
  memcpy(p + 2, op->origin, VS_ORIGIN_BYTES);
  vs_put_u64le(p + 34, op->seq);
  vs_put_u64le(p + 42, op->hlc);
  memcpy(p + 50, op->prev, VS_HASH_BYTES);
  p[82] = op->kind_bytes;
  memcpy(p + VS_OP_HEADER_BYTES, op->kind, op->kind_bytes);
  return VS_OP_HEADER_BYTES + op->kind_bytes;
}

vs_err vs_op_encode(const vs_op *op, uint8_t *out, size_t out_bytes_max, size_t *out_bytes) {
  if (op == NULL || out == NULL) return VS_ERR_INVAL;
  vs_err err = op_check(op);
  if (err != VS_OK) return err;
  size_t n = vs_op_encoded_bytes(op);
  if (n > out_bytes_max) return VS_ERR_BUFSIZE;
  uint8_t *p = out + put_header(op, out);
  vs_put_u32le(p, op->target_bytes);
  p += 4;
  if (op->target_bytes > 0) memcpy(p, op->target, op->target_bytes);
  p += op->target_bytes;
  vs_put_u32le(p, op->payload_bytes);
  p += 4;
  if (op->payload_bytes > 0) memcpy(p, op->payload, op->payload_bytes);
  p += op->payload_bytes;
  assert((size_t)(p - out) == n);
  if (out_bytes != NULL) *out_bytes = n;
  return VS_OK;
}

/* Read a u32 length field and the bytes it announces, bounds-checked. */
static vs_err take_block(const uint8_t *buf, size_t buf_bytes, size_t *pos, uint32_t limit,
                         const uint8_t **data_out, uint32_t *len_out) {
  if (buf_bytes - *pos < 4) return VS_ERR_TRUNCATED;
  uint32_t len = vs_get_u32le(buf + *pos);
  *pos += 4;
  if (len > limit) return VS_ERR_TOO_LARGE;
  if (buf_bytes - *pos < len) return VS_ERR_TRUNCATED;
  *data_out = len > 0 ? buf + *pos : NULL;
  *len_out = len;
  *pos += len;
  return VS_OK;
}

vs_err vs_op_decode(const uint8_t *buf, size_t buf_bytes, vs_op *op_out) {
  if (op_out == NULL || (buf == NULL && buf_bytes != 0)) return VS_ERR_INVAL;
  if (buf_bytes < 1) return VS_ERR_TRUNCATED;
  /* The version comes first so that a future format is named as such, not
   * reported as a truncation or a bad length. */
  if (buf[0] != VS_OP_VERSION) return VS_ERR_VERSION;
  if (buf_bytes < VS_OP_HEADER_BYTES) return VS_ERR_TRUNCATED;
  if (buf[1] != 0) return VS_ERR_MALFORMED;
  memset(op_out, 0, sizeof *op_out);
  memcpy(op_out->origin, buf + 2, VS_ORIGIN_BYTES);
  op_out->seq = vs_get_u64le(buf + 34);
  op_out->hlc = vs_get_u64le(buf + 42);
  memcpy(op_out->prev, buf + 50, VS_HASH_BYTES);
  if (op_out->seq == 0 || op_out->seq > VS_OP_SEQ_MAX) return VS_ERR_MALFORMED;
  uint8_t kind_bytes = buf[82];
  if (kind_bytes == 0 || kind_bytes > VS_OP_KIND_BYTES_MAX) return VS_ERR_MALFORMED;
  size_t pos = VS_OP_HEADER_BYTES;
  if (buf_bytes - pos < kind_bytes) return VS_ERR_TRUNCATED;
  vs_err err = vs_op_kind_check((const char *)(buf + pos), kind_bytes);
  if (err != VS_OK) return err;
  op_out->kind_bytes = kind_bytes;
  memcpy(op_out->kind, buf + pos, kind_bytes);
  op_out->kind[kind_bytes] = '\0';
  pos += kind_bytes;
  err = take_block(buf, buf_bytes, &pos, VS_OP_TARGET_BYTES_MAX, &op_out->target, &op_out->target_bytes);
  if (err != VS_OK) return err;
  err = take_block(buf, buf_bytes, &pos, VS_OP_PAYLOAD_BYTES_MAX, &op_out->payload, &op_out->payload_bytes);
  if (err != VS_OK) return err;
  if (pos != buf_bytes) return VS_ERR_TRAILING;
  vs_op_id_derive(op_out->origin, op_out->seq, &op_out->id);
  return VS_OK;
}

void vs_op_hash_encoded(const uint8_t *enc, size_t enc_bytes, uint8_t hash_out[VS_HASH_BYTES]) {
  assert(enc != NULL && hash_out != NULL);
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)OP_HASH_DOMAIN, sizeof OP_HASH_DOMAIN - 1);
  crypto_generichash_update(&st, enc, enc_bytes);
  crypto_generichash_final(&st, hash_out, VS_HASH_BYTES);
}

vs_err vs_op_hash(const vs_op *op, uint8_t hash_out[VS_HASH_BYTES]) {
  if (op == NULL || hash_out == NULL) return VS_ERR_INVAL;
  vs_err err = op_check(op);
  if (err != VS_OK) return err;
  /* Stream the fields exactly as vs_op_encode lays them out: no 64 KiB
   * buffer, and the same bytes as vs_op_hash_encoded by construction. */
  uint8_t head[VS_OP_HEADER_BYTES + VS_OP_KIND_BYTES_MAX];
  size_t head_bytes = put_header(op, head);
  uint8_t len[4];
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)OP_HASH_DOMAIN, sizeof OP_HASH_DOMAIN - 1);
  crypto_generichash_update(&st, head, head_bytes);
  vs_put_u32le(len, op->target_bytes);
  crypto_generichash_update(&st, len, 4);
  if (op->target_bytes > 0) crypto_generichash_update(&st, op->target, op->target_bytes);
  vs_put_u32le(len, op->payload_bytes);
  crypto_generichash_update(&st, len, 4);
  if (op->payload_bytes > 0) crypto_generichash_update(&st, op->payload, op->payload_bytes);
  crypto_generichash_final(&st, hash_out, VS_HASH_BYTES);
  return VS_OK;
}

void vs_op_id_to_hex(const vs_op_id *id, char hex_out[VS_OP_ID_HEX_BYTES]) {
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < VS_OP_ID_BYTES; i++) {
    hex_out[2 * i] = digits[id->bytes[i] >> 4];
    hex_out[2 * i + 1] = digits[id->bytes[i] & 0xf];
  }
  hex_out[2 * VS_OP_ID_BYTES] = '\0';
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

vs_err vs_op_id_from_hex(const char *hex, vs_op_id *id_out) {
  if (hex == NULL || id_out == NULL) return VS_ERR_INVAL;
  if (strnlen(hex, 2 * VS_OP_ID_BYTES + 1) != 2 * VS_OP_ID_BYTES) return VS_ERR_INVAL;
  for (unsigned i = 0; i < VS_OP_ID_BYTES; i++) {
    int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return VS_ERR_INVAL;
    id_out->bytes[i] = (uint8_t)(hi << 4 | lo);
  }
  return VS_OK;
}

bool vs_op_id_equal(const vs_op_id *a, const vs_op_id *b) {
  return memcmp(a->bytes, b->bytes, VS_OP_ID_BYTES) == 0;
}

uint64_t vs_hlc_next(uint64_t last_hlc, uint64_t wall_ms) {
  uint64_t wall = vs_hlc_make(wall_ms, 0);
  uint64_t next = last_hlc == UINT64_MAX ? UINT64_MAX : last_hlc + 1;
  return wall > next ? wall : next;
}
