/* Pins include/vixsync/op.h: the v1 operation encoding, strict decoding of
 * forged input, id derivation, the operation hash, hex ids and the HLC.
 *
 * Golden values were computed independently with Python's hashlib (see the
 * one-liners next to each), never with the code under test. */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fixture.h"
#include "vixsync/op.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static vs_err decode_exact(const uint8_t *src, size_t n, vs_op *op_out) {
  uint8_t *copy = vt_dup_exact(src, n);
  vs_err err = vs_op_decode(copy, n, op_out);
  free(copy);
  return err;
}

static void fill_prev(uint8_t prev[VS_HASH_BYTES], uint8_t salt) {
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) prev[i] = (uint8_t)(i * 3u + salt);
}

/* A valid op over static buffers: kind "put", target "users/42", payload
 * {"name":"ada"}. */
static const uint8_t k_target[] = "users/42";
static const uint8_t k_payload[] = "{\"name\":\"ada\"}";
#define K_TARGET_BYTES ((uint32_t)(sizeof k_target - 1))
#define K_PAYLOAD_BYTES ((uint32_t)(sizeof k_payload - 1))

static void make_op(vs_op *op, uint64_t seq) {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint8_t prev[VS_HASH_BYTES];
  vt_origin(origin, 0);
  fill_prev(prev, 1);
  vs_err err = vs_op_init(op, origin, seq, vs_hlc_make(1700000000000ull, 3), prev, "put",
                          k_target, K_TARGET_BYTES, k_payload, K_PAYLOAD_BYTES);
  assert_int_equal(err, VS_OK);
}

static void assert_ops_equal(const vs_op *a, const vs_op *b) {
  assert_true(vs_op_id_equal(&a->id, &b->id));
  assert_memory_equal(a->origin, b->origin, VS_ORIGIN_BYTES);
  assert_true(a->seq == b->seq);
  assert_true(a->hlc == b->hlc);
  assert_memory_equal(a->prev, b->prev, VS_HASH_BYTES);
  assert_int_equal(a->kind_bytes, b->kind_bytes);
  assert_string_equal(a->kind, b->kind);
  assert_int_equal(strlen(b->kind), b->kind_bytes);
  assert_int_equal(a->target_bytes, b->target_bytes);
  if (a->target_bytes > 0) assert_memory_equal(a->target, b->target, a->target_bytes);
  assert_int_equal(a->payload_bytes, b->payload_bytes);
  if (a->payload_bytes > 0) assert_memory_equal(a->payload, b->payload, a->payload_bytes);
}

/* Encode `op` into a fresh heap buffer of exactly the encoded size. */
static uint8_t *encode_alloc(const vs_op *op, size_t *n_out) {
  size_t n = vs_op_encoded_bytes(op);
  uint8_t *buf = malloc(n);
  assert_non_null(buf);
  size_t written = 0;
  assert_int_equal(vs_op_encode(op, buf, n, &written), VS_OK);
  assert_int_equal(written, n);
  *n_out = n;
  return buf;
}

/* Encode, decode from an exact-size copy, compare, and check that the
 * decoded op re-encodes to the same bytes. */
static void assert_roundtrip(const vs_op *op) {
  size_t n = 0;
  uint8_t *enc = encode_alloc(op, &n);
  vs_op back;
  memset(&back, 0xcc, sizeof back);
  assert_int_equal(vs_op_decode(enc, n, &back), VS_OK);
  assert_ops_equal(op, &back);
  if (back.target_bytes > 0) assert_true(back.target >= enc && back.target + back.target_bytes <= enc + n);
  if (back.payload_bytes > 0) assert_true(back.payload >= enc && back.payload + back.payload_bytes <= enc + n);
  size_t n2 = 0;
  uint8_t *enc2 = encode_alloc(&back, &n2);
  assert_int_equal(n, n2);
  assert_memory_equal(enc, enc2, n);
  free(enc2);
  free(enc);
}

/* ------------------------------------------------------------------------ */
/* Forging encodings byte by byte, independently of vs_op_encode            */
/* ------------------------------------------------------------------------ */

#define FORGE_KIND_MAX 255u
#define FORGE_WRITE_MAX (VS_OP_PAYLOAD_BYTES_MAX + 1u) /* larger lengths: declared only */

typedef struct forge {
  uint8_t version;
  uint8_t flags;
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;
  uint64_t hlc;
  uint8_t prev[VS_HASH_BYTES];
  uint8_t kind_bytes;
  uint8_t kind[FORGE_KIND_MAX];
  uint32_t target_bytes;    /* declared length */
  uint32_t target_written;  /* bytes actually present */
  uint32_t payload_bytes;
  uint32_t payload_written;
} forge;

/* The base forged op: kind "put", 2 target bytes, 3 payload bytes. Layout:
 * version 0, flags 1, origin 2..33, seq 34..41, hlc 42..49, prev 50..81,
 * kind_bytes 82, kind 83..85, target_bytes 86..89, target 90..91,
 * payload_bytes 92..95, payload 96..98: 99 bytes. */
#define FORGE_BASE_BYTES 99u

static void forge_default(forge *f) {
  memset(f, 0, sizeof *f);
  f->version = 1;
  f->flags = 0;
  vt_origin(f->origin, 0x5a);
  f->seq = 7;
  f->hlc = vs_hlc_make(1700000000000ull, 1);
  fill_prev(f->prev, 9);
  f->kind_bytes = 3;
  memcpy(f->kind, "put", 3);
  f->target_bytes = f->target_written = 2;
  f->payload_bytes = f->payload_written = 3;
}

static size_t forge_size(const forge *f) {
  return VS_OP_HEADER_BYTES + f->kind_bytes + 4u + f->target_written + 4u + f->payload_written;
}

/* Write `f` into `out` (capacity forge_size(f)); return the size. */
static size_t forge_write(const forge *f, uint8_t *out) {
  size_t n = 0;
  out[n++] = f->version;
  out[n++] = f->flags;
  memcpy(out + n, f->origin, VS_ORIGIN_BYTES);
  n += VS_ORIGIN_BYTES;
  vt_put_u64le(out + n, f->seq);
  n += 8;
  vt_put_u64le(out + n, f->hlc);
  n += 8;
  memcpy(out + n, f->prev, VS_HASH_BYTES);
  n += VS_HASH_BYTES;
  assert_int_equal(n, 82);
  out[n++] = f->kind_bytes;
  memcpy(out + n, f->kind, f->kind_bytes);
  n += f->kind_bytes;
  vt_put_u32le(out + n, f->target_bytes);
  n += 4;
  for (uint32_t i = 0; i < f->target_written; i++) out[n++] = (uint8_t)('a' + i % 26u);
  vt_put_u32le(out + n, f->payload_bytes);
  n += 4;
  for (uint32_t i = 0; i < f->payload_written; i++) out[n++] = (uint8_t)(i * 7u);
  assert_int_equal(n, forge_size(f));
  return n;
}

typedef enum forge_field {
  F_CUT,           /* keep only `value` bytes of the base encoding */
  F_TRAILING,      /* append `value` bytes */
  F_VERSION,
  F_FLAGS,
  F_SEQ,
  F_KIND_BYTES,    /* kind of `value` valid bytes ('k'), declared and present */
  F_KIND_CHAR,     /* kind "p?t" with `value` as its middle byte */
  F_TARGET_BYTES,  /* declared target length; present too when small enough */
  F_PAYLOAD_BYTES, /* declared payload length; present too when small enough */
} forge_field;

typedef struct reject_case {
  const char *name;
  forge_field field;
  uint64_t value;
  vs_err expected;
} reject_case;

/* Each case has exactly one defect, so its expected error does not depend on
 * the order in which the decoder checks fields. */
static const reject_case k_reject_cases[] = {
    /* Truncated at every field boundary and inside every field. */
    {"empty input", F_CUT, 0, VS_ERR_TRUNCATED},
    {"cut after version", F_CUT, 1, VS_ERR_TRUNCATED},
    {"cut after flags", F_CUT, 2, VS_ERR_TRUNCATED},
    {"cut inside origin", F_CUT, 17, VS_ERR_TRUNCATED},
    {"cut after origin", F_CUT, 34, VS_ERR_TRUNCATED},
    {"cut inside seq", F_CUT, 38, VS_ERR_TRUNCATED},
    {"cut after seq", F_CUT, 42, VS_ERR_TRUNCATED},
    {"cut inside hlc", F_CUT, 45, VS_ERR_TRUNCATED},
    {"cut after hlc", F_CUT, 50, VS_ERR_TRUNCATED},
    {"cut inside prev", F_CUT, 66, VS_ERR_TRUNCATED},
    {"cut after prev", F_CUT, 82, VS_ERR_TRUNCATED},
    {"cut after kind_bytes", F_CUT, 83, VS_ERR_TRUNCATED},
    {"cut inside kind", F_CUT, 84, VS_ERR_TRUNCATED},
    {"cut after kind", F_CUT, 86, VS_ERR_TRUNCATED},
    {"cut inside target_bytes", F_CUT, 87, VS_ERR_TRUNCATED},
    {"cut after target_bytes", F_CUT, 90, VS_ERR_TRUNCATED},
    {"cut inside target", F_CUT, 91, VS_ERR_TRUNCATED},
    {"cut after target", F_CUT, 92, VS_ERR_TRUNCATED},
    {"cut inside payload_bytes", F_CUT, 95, VS_ERR_TRUNCATED},
    {"cut after payload_bytes", F_CUT, 96, VS_ERR_TRUNCATED},
    {"cut inside payload", F_CUT, 97, VS_ERR_TRUNCATED},
    {"last byte missing", F_CUT, FORGE_BASE_BYTES - 1, VS_ERR_TRUNCATED},
    /* Bytes after a complete encoding. */
    {"one trailing byte", F_TRAILING, 1, VS_ERR_TRAILING},
    {"two trailing bytes", F_TRAILING, 2, VS_ERR_TRAILING},
    {"4096 trailing bytes", F_TRAILING, 4096, VS_ERR_TRAILING},
    /* Lengths past the protocol limits. */
    {"target_bytes 1025", F_TARGET_BYTES, VS_OP_TARGET_BYTES_MAX + 1u, VS_ERR_TOO_LARGE},
    {"target_bytes 65536 (the payload limit)", F_TARGET_BYTES, VS_OP_PAYLOAD_BYTES_MAX, VS_ERR_TOO_LARGE},
    {"target_bytes 0x80000000", F_TARGET_BYTES, 0x80000000u, VS_ERR_TOO_LARGE},
    {"target_bytes 0xffffffff", F_TARGET_BYTES, 0xffffffffu, VS_ERR_TOO_LARGE},
    {"payload_bytes 65537", F_PAYLOAD_BYTES, VS_OP_PAYLOAD_BYTES_MAX + 1u, VS_ERR_TOO_LARGE},
    {"payload_bytes 0x80000000", F_PAYLOAD_BYTES, 0x80000000u, VS_ERR_TOO_LARGE},
    {"payload_bytes 0xffffffff", F_PAYLOAD_BYTES, 0xffffffffu, VS_ERR_TOO_LARGE},
    /* Unknown versions. */
    {"version 0", F_VERSION, 0, VS_ERR_VERSION},
    {"version 2", F_VERSION, 2, VS_ERR_VERSION},
    {"version 255", F_VERSION, 255, VS_ERR_VERSION},
    /* Malformed fields. */
    {"flags 0x01", F_FLAGS, 0x01, VS_ERR_MALFORMED},
    {"flags 0x80", F_FLAGS, 0x80, VS_ERR_MALFORMED},
    {"flags 0xff", F_FLAGS, 0xff, VS_ERR_MALFORMED},
    {"seq 0", F_SEQ, 0, VS_ERR_MALFORMED},
    {"seq 2^48 (past VS_OP_SEQ_MAX)", F_SEQ, VS_OP_SEQ_MAX + 1u, VS_ERR_MALFORMED},
    {"seq 0xffffffffffffffff", F_SEQ, UINT64_MAX, VS_ERR_MALFORMED},
    {"kind_bytes 0", F_KIND_BYTES, 0, VS_ERR_MALFORMED},
    {"kind_bytes 65", F_KIND_BYTES, VS_OP_KIND_BYTES_MAX + 1u, VS_ERR_MALFORMED},
    {"kind_bytes 255", F_KIND_BYTES, 255, VS_ERR_MALFORMED},
    {"kind with NUL byte", F_KIND_CHAR, 0x00, VS_ERR_MALFORMED},
    {"kind with control byte 0x01", F_KIND_CHAR, 0x01, VS_ERR_MALFORMED},
    {"kind with tab", F_KIND_CHAR, 0x09, VS_ERR_MALFORMED},
    {"kind with space", F_KIND_CHAR, 0x20, VS_ERR_MALFORMED},
    {"kind with DEL 0x7f", F_KIND_CHAR, 0x7f, VS_ERR_MALFORMED},
    {"kind with 0x80", F_KIND_CHAR, 0x80, VS_ERR_MALFORMED},
    {"kind with 0xff", F_KIND_CHAR, 0xff, VS_ERR_MALFORMED},
};
#define REJECT_CASE_COUNT (sizeof k_reject_cases / sizeof k_reject_cases[0])
_Static_assert(REJECT_CASE_COUNT >= 25, "the brief asks for at least 25 rejection cases");

/* Build the forged bytes of `c` into an exact-size heap buffer. */
static uint8_t *forge_case(const reject_case *c, size_t *len_out) {
  forge f;
  forge_default(&f);
  size_t trailing = 0;
  size_t cut = SIZE_MAX;
  switch (c->field) {
    case F_CUT: cut = (size_t)c->value; break;
    case F_TRAILING: trailing = (size_t)c->value; break;
    case F_VERSION: f.version = (uint8_t)c->value; break;
    case F_FLAGS: f.flags = (uint8_t)c->value; break;
    case F_SEQ: f.seq = c->value; break;
    case F_KIND_BYTES:
      f.kind_bytes = (uint8_t)c->value;
      memset(f.kind, 'k', f.kind_bytes);
      break;
    case F_KIND_CHAR: f.kind[1] = (uint8_t)c->value; break;
    case F_TARGET_BYTES:
      f.target_bytes = (uint32_t)c->value;
      f.target_written = c->value <= FORGE_WRITE_MAX ? (uint32_t)c->value : 0;
      break;
    case F_PAYLOAD_BYTES:
      f.payload_bytes = (uint32_t)c->value;
      f.payload_written = c->value <= FORGE_WRITE_MAX ? (uint32_t)c->value : 0;
      break;
  }
  size_t full = forge_size(&f);
  uint8_t *tmp = malloc(full + trailing);
  assert_non_null(tmp);
  assert_int_equal(forge_write(&f, tmp), full);
  memset(tmp + full, 0xa5, trailing);
  size_t len = full + trailing;
  if (cut != SIZE_MAX) {
    assert_int_equal(full, FORGE_BASE_BYTES);
    assert_true(cut < full);
    len = cut;
  }
  uint8_t *exact = vt_dup_exact(tmp, len);
  free(tmp);
  *len_out = len;
  return exact;
}

/* Run every case expecting `expected`; report each mismatch by name. */
static void run_reject_cases(vs_err expected) {
  unsigned ran = 0, bad = 0;
  for (size_t i = 0; i < REJECT_CASE_COUNT; i++) {
    const reject_case *c = &k_reject_cases[i];
    if (c->expected != expected) continue;
    size_t len = 0;
    uint8_t *buf = forge_case(c, &len);
    vs_op op;
    vs_err got = vs_op_decode(buf, len, &op);
    free(buf);
    ran++;
    if (got != c->expected) {
      print_error("decode of '%s' (%zu bytes): got %d (%s), want %d (%s)\n", c->name, len, (int)got,
                  vs_err_name(got), (int)c->expected, vs_err_name(c->expected));
      bad++;
    }
  }
  assert_true(ran > 0);
  assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------------ */
/* Encoding and round trips                                                 */
/* ------------------------------------------------------------------------ */

/* The canonical bytes of make_op(op, 1), built in Python:
 *   python3 -c 'import struct;o=bytes(range(32));h=(1700000000000<<16)|3;
 *   k,t,p=b"put",b"users/42",b"{\"name\":\"ada\"}";
 *   print((bytes([1,0])+o+struct.pack("<QQ",1,h)+bytes(i*3+1 for i in range(32))
 *   +bytes([len(k)])+k+struct.pack("<I",len(t))+t+struct.pack("<I",len(p))+p).hex())'
 * (prev is bytes(i*3+1), see fill_prev.) */
static const char k_golden_enc_hex[] =
    "0100"
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "0100000000000000"
    "03000068e5cf8b01"
    "0104070a0d101316191c1f2225282b2e3134373a3d404346494c4f5255585b5e"
    "03" "707574"
    "08000000" "75736572732f3432"
    "0e000000" "7b226e616d65223a22616461227d";

static void test_op_encode_matches_golden_bytes(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  uint8_t want[116];
  vt_hex_to_bytes(k_golden_enc_hex, want, sizeof want);
  assert_int_equal(vs_op_encoded_bytes(&op), sizeof want);
  size_t n = 0;
  uint8_t *enc = encode_alloc(&op, &n);
  assert_int_equal(n, sizeof want);
  assert_memory_equal(enc, want, sizeof want);
  free(enc);
}

static void test_op_decode_golden_bytes_gives_fields(void **state) {
  (void)state;
  uint8_t enc[116];
  vt_hex_to_bytes(k_golden_enc_hex, enc, sizeof enc);
  vs_op want, got;
  make_op(&want, 1);
  assert_int_equal(vs_op_decode(enc, sizeof enc, &got), VS_OK);
  assert_ops_equal(&want, &got);
}

static void test_op_roundtrip_basic(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 42);
  assert_roundtrip(&op);
}

static void test_op_roundtrip_empty_target_and_payload(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES];
  vt_origin(origin, 3);
  fill_prev(prev, 0);
  vs_op op;
  assert_int_equal(vs_op_init(&op, origin, 1, 0, prev, "noop", NULL, 0, NULL, 0), VS_OK);
  assert_int_equal(vs_op_encoded_bytes(&op), VS_OP_HEADER_BYTES + 4u + 4u + 4u);
  assert_roundtrip(&op);
}

static void test_op_roundtrip_max_target_and_payload(void **state) {
  (void)state;
  uint8_t *target = malloc(VS_OP_TARGET_BYTES_MAX);
  uint8_t *payload = malloc(VS_OP_PAYLOAD_BYTES_MAX);
  assert_non_null(target);
  assert_non_null(payload);
  for (uint32_t i = 0; i < VS_OP_TARGET_BYTES_MAX; i++) target[i] = (uint8_t)(i * 31u + 5u);
  for (uint32_t i = 0; i < VS_OP_PAYLOAD_BYTES_MAX; i++) payload[i] = (uint8_t)(i ^ (i >> 8));
  char kind[VS_OP_KIND_BYTES_MAX + 1];
  memset(kind, 'z', VS_OP_KIND_BYTES_MAX);
  kind[VS_OP_KIND_BYTES_MAX] = '\0';
  uint8_t origin[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES];
  vt_origin(origin, 0xee);
  fill_prev(prev, 7);
  vs_op op;
  assert_int_equal(vs_op_init(&op, origin, VS_OP_SEQ_MAX, UINT64_MAX, prev, kind, target,
                              VS_OP_TARGET_BYTES_MAX, payload, VS_OP_PAYLOAD_BYTES_MAX),
                   VS_OK);
  assert_int_equal(vs_op_encoded_bytes(&op), VS_OP_ENCODED_BYTES_MAX);
  assert_roundtrip(&op);
  free(payload);
  free(target);
}

static void test_op_roundtrip_unknown_kinds_are_valid(void **state) {
  (void)state;
  /* Kinds are open: any 1..64 visible ASCII bytes, including the extremes. */
  static const char *const kinds[] = {"!", "~", "x.custom/thing-v9", "!~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
                                      "ZZZ", "0"};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    uint8_t origin[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES];
    vt_origin(origin, (uint8_t)i);
    fill_prev(prev, (uint8_t)i);
    vs_op op;
    assert_int_equal(vs_op_init(&op, origin, 1 + i, 0, prev, kinds[i], k_target, K_TARGET_BYTES,
                                k_payload, K_PAYLOAD_BYTES),
                     VS_OK);
    assert_int_equal(op.kind_bytes, strlen(kinds[i]));
    assert_string_equal(op.kind, kinds[i]);
    assert_roundtrip(&op);
  }
}

static void test_op_encoded_bytes_counts_every_field(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 9);
  assert_int_equal(vs_op_encoded_bytes(&op),
                   VS_OP_HEADER_BYTES + 3u + 4u + K_TARGET_BYTES + 4u + K_PAYLOAD_BYTES);
}

static void test_op_decode_points_target_and_payload_into_buffer(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 5);
  size_t n = 0;
  uint8_t *enc = encode_alloc(&op, &n);
  vs_op back;
  assert_int_equal(vs_op_decode(enc, n, &back), VS_OK);
  /* Borrowed, not copied: the payload is the tail of the buffer. */
  assert_ptr_equal(back.payload, enc + n - K_PAYLOAD_BYTES);
  assert_ptr_equal(back.target, enc + n - K_PAYLOAD_BYTES - 4u - K_TARGET_BYTES);
  free(enc);
}

static void test_op_decode_accepts_boundary_values(void **state) {
  (void)state;
  forge f;
  forge_default(&f);
  f.seq = VS_OP_SEQ_MAX;
  f.hlc = UINT64_MAX;
  f.kind_bytes = VS_OP_KIND_BYTES_MAX;
  for (unsigned i = 0; i < VS_OP_KIND_BYTES_MAX; i++) f.kind[i] = (uint8_t)(0x21u + i % 94u);
  f.kind[0] = 0x21;
  f.kind[1] = 0x7e;
  f.target_bytes = f.target_written = VS_OP_TARGET_BYTES_MAX;
  f.payload_bytes = f.payload_written = 0;
  size_t n = forge_size(&f);
  uint8_t *buf = malloc(n);
  assert_non_null(buf);
  forge_write(&f, buf);
  vs_op op;
  assert_int_equal(vs_op_decode(buf, n, &op), VS_OK);
  assert_true(op.seq == VS_OP_SEQ_MAX);
  assert_true(op.hlc == UINT64_MAX);
  assert_int_equal(op.kind_bytes, VS_OP_KIND_BYTES_MAX);
  assert_int_equal(strlen(op.kind), VS_OP_KIND_BYTES_MAX);
  assert_memory_equal(op.kind, f.kind, VS_OP_KIND_BYTES_MAX);
  assert_int_equal(op.target_bytes, VS_OP_TARGET_BYTES_MAX);
  assert_int_equal(op.payload_bytes, 0);
  free(buf);
}

static void test_op_decode_accepts_forged_base(void **state) {
  (void)state;
  /* Guards the rejection table: without its one defect a case decodes. */
  forge f;
  forge_default(&f);
  uint8_t buf[FORGE_BASE_BYTES];
  assert_int_equal(forge_write(&f, buf), FORGE_BASE_BYTES);
  vs_op op;
  assert_int_equal(decode_exact(buf, sizeof buf, &op), VS_OK);
  assert_true(op.seq == 7);
  assert_string_equal(op.kind, "put");
  assert_int_equal(op.target_bytes, 2);
  assert_int_equal(op.payload_bytes, 3);
}

/* ------------------------------------------------------------------------ */
/* Decode rejections                                                        */
/* ------------------------------------------------------------------------ */

static void test_op_decode_rejects_truncated_fields(void **state) {
  (void)state;
  run_reject_cases(VS_ERR_TRUNCATED);
}

static void test_op_decode_rejects_trailing_bytes(void **state) {
  (void)state;
  run_reject_cases(VS_ERR_TRAILING);
}

static void test_op_decode_rejects_lengths_past_limits(void **state) {
  (void)state;
  run_reject_cases(VS_ERR_TOO_LARGE);
}

static void test_op_decode_rejects_unknown_versions(void **state) {
  (void)state;
  run_reject_cases(VS_ERR_VERSION);
}

static void test_op_decode_rejects_malformed_fields(void **state) {
  (void)state;
  run_reject_cases(VS_ERR_MALFORMED);
}

static void test_op_decode_rejects_every_prefix(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 3);
  size_t n = 0;
  uint8_t *enc = encode_alloc(&op, &n);
  for (size_t len = 0; len < n; len++) {
    vs_op back;
    vs_err err = decode_exact(enc, len, &back); /* exact copy: ASan sees overreads */
    if (err != VS_ERR_TRUNCATED) print_error("prefix of %zu/%zu bytes: %s\n", len, n, vs_err_name(err));
    assert_int_equal(err, VS_ERR_TRUNCATED);
  }
  free(enc);
}

static void test_op_decode_rejects_every_prefix_of_max_encoding(void **state) {
  (void)state;
  uint8_t *target = calloc(1, VS_OP_TARGET_BYTES_MAX);
  uint8_t *payload = calloc(1, VS_OP_PAYLOAD_BYTES_MAX);
  assert_non_null(target);
  assert_non_null(payload);
  char kind[VS_OP_KIND_BYTES_MAX + 1];
  memset(kind, 'q', VS_OP_KIND_BYTES_MAX);
  kind[VS_OP_KIND_BYTES_MAX] = '\0';
  uint8_t origin[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES];
  vt_origin(origin, 1);
  fill_prev(prev, 2);
  vs_op op;
  assert_int_equal(vs_op_init(&op, origin, 1, 1, prev, kind, target, VS_OP_TARGET_BYTES_MAX,
                              payload, VS_OP_PAYLOAD_BYTES_MAX),
                   VS_OK);
  size_t n = 0;
  uint8_t *enc = encode_alloc(&op, &n);
  /* One buffer for all ~66k prefixes (copying each would be quadratic):
   * here only the result is checked, the small test above checks reads. */
  for (size_t len = 0; len < n; len++) {
    vs_op back;
    vs_err err = vs_op_decode(enc, len, &back);
    if (err != VS_ERR_TRUNCATED) print_error("prefix of %zu/%zu bytes: %s\n", len, n, vs_err_name(err));
    assert_int_equal(err, VS_ERR_TRUNCATED);
  }
  free(enc);
  free(payload);
  free(target);
}

static void test_op_decode_single_byte_mutations_are_safe_and_canonical(void **state) {
  (void)state;
  /* Every byte of a valid encoding set to every value: no crash, and what is
   * accepted re-encodes to exactly the same bytes (one encoding per op). */
  vs_op op;
  make_op(&op, 11);
  size_t n = 0;
  uint8_t *enc = encode_alloc(&op, &n);
  uint8_t *mut = malloc(n);
  uint8_t *re = malloc(n);
  assert_non_null(mut);
  assert_non_null(re);
  unsigned accepted = 0;
  for (size_t pos = 0; pos < n; pos++) {
    for (unsigned v = 0; v < 256; v++) {
      memcpy(mut, enc, n);
      mut[pos] = (uint8_t)v;
      vs_op back;
      if (vs_op_decode(mut, n, &back) != VS_OK) continue;
      accepted++;
      size_t written = 0;
      assert_int_equal(vs_op_encoded_bytes(&back), n);
      assert_int_equal(vs_op_encode(&back, re, n, &written), VS_OK);
      assert_int_equal(written, n);
      assert_memory_equal(re, mut, n);
    }
  }
  assert_true(accepted > n); /* origin, hlc, prev, target, payload bytes are free */
  free(re);
  free(mut);
  free(enc);
}

/* ------------------------------------------------------------------------ */
/* vs_op_init, vs_op_kind_check and vs_op_encode validation                 */
/* ------------------------------------------------------------------------ */

static vs_err init_with(const char *kind, uint64_t seq, const uint8_t *target, uint32_t target_bytes,
                        const uint8_t *payload, uint32_t payload_bytes) {
  uint8_t origin[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES];
  vt_origin(origin, 0);
  fill_prev(prev, 0);
  vs_op op;
  return vs_op_init(&op, origin, seq, 0, prev, kind, target, target_bytes, payload, payload_bytes);
}

static void test_op_init_rejects_seq_zero(void **state) {
  (void)state;
  assert_int_equal(init_with("put", 0, k_target, K_TARGET_BYTES, k_payload, K_PAYLOAD_BYTES),
                   VS_ERR_INVAL);
}

static void test_op_init_rejects_null_target_with_length(void **state) {
  (void)state;
  assert_int_equal(init_with("put", 1, NULL, 1, k_payload, K_PAYLOAD_BYTES), VS_ERR_INVAL);
}

static void test_op_init_rejects_null_payload_with_length(void **state) {
  (void)state;
  assert_int_equal(init_with("put", 1, k_target, K_TARGET_BYTES, NULL, 1), VS_ERR_INVAL);
}

static void test_op_init_accepts_null_with_zero_length(void **state) {
  (void)state;
  assert_int_equal(init_with("put", 1, NULL, 0, NULL, 0), VS_OK);
}

static void test_op_init_rejects_bad_kinds(void **state) {
  (void)state;
  char kind65[VS_OP_KIND_BYTES_MAX + 2];
  memset(kind65, 'k', VS_OP_KIND_BYTES_MAX + 1);
  kind65[VS_OP_KIND_BYTES_MAX + 1] = '\0';
  static const char *const bad[] = {"", "a b", " put", "put ", "p\tt", "p\x01t", "p\x7ft", "p\x80t",
                                    "\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(init_with(bad[i], 1, NULL, 0, NULL, 0), VS_ERR_MALFORMED);
  }
  assert_int_equal(init_with(kind65, 1, NULL, 0, NULL, 0), VS_ERR_MALFORMED);
  kind65[VS_OP_KIND_BYTES_MAX] = '\0'; /* 64 bytes: the limit itself is fine */
  assert_int_equal(init_with(kind65, 1, NULL, 0, NULL, 0), VS_OK);
}

static void test_op_init_rejects_oversized_target_and_payload(void **state) {
  (void)state;
  uint8_t *big = calloc(1, VS_OP_PAYLOAD_BYTES_MAX + 1u);
  assert_non_null(big);
  assert_int_equal(init_with("put", 1, big, VS_OP_TARGET_BYTES_MAX + 1u, NULL, 0), VS_ERR_TOO_LARGE);
  assert_int_equal(init_with("put", 1, NULL, 0, big, VS_OP_PAYLOAD_BYTES_MAX + 1u), VS_ERR_TOO_LARGE);
  assert_int_equal(init_with("put", 1, big, VS_OP_TARGET_BYTES_MAX, big, VS_OP_PAYLOAD_BYTES_MAX),
                   VS_OK);
  free(big);
}

static void test_op_kind_check_bounds(void **state) {
  (void)state;
  char kind[VS_OP_KIND_BYTES_MAX + 1];
  memset(kind, 'a', sizeof kind);
  assert_int_equal(vs_op_kind_check(kind, 0), VS_ERR_MALFORMED);
  assert_int_equal(vs_op_kind_check(kind, 1), VS_OK);
  assert_int_equal(vs_op_kind_check(kind, VS_OP_KIND_BYTES_MAX), VS_OK);
  assert_int_equal(vs_op_kind_check(kind, VS_OP_KIND_BYTES_MAX + 1u), VS_ERR_MALFORMED);
}

static void test_op_kind_check_accepts_only_visible_ascii(void **state) {
  (void)state;
  for (unsigned b = 0; b < 256; b++) {
    char kind[3] = {'a', (char)b, 'z'};
    vs_err want = (b >= 0x21 && b <= 0x7e) ? VS_OK : VS_ERR_MALFORMED;
    if (vs_op_kind_check(kind, sizeof kind) != want) print_error("byte 0x%02x\n", b);
    assert_int_equal(vs_op_kind_check(kind, sizeof kind), want);
  }
}

static void test_op_kind_check_does_not_need_nul(void **state) {
  (void)state;
  char *kind = malloc(3); /* exactly 3 bytes, no terminator: ASan checks */
  assert_non_null(kind);
  memcpy(kind, "put", 3);
  assert_int_equal(vs_op_kind_check(kind, 3), VS_OK);
  free(kind);
}

static void test_op_encode_reports_bufsize(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  size_t n = vs_op_encoded_bytes(&op);
  uint8_t *small = malloc(n - 1); /* exact: ASan flags a write past it */
  assert_non_null(small);
  size_t written = 0;
  assert_int_equal(vs_op_encode(&op, small, n - 1, &written), VS_ERR_BUFSIZE);
  assert_int_equal(vs_op_encode(&op, small, 0, &written), VS_ERR_BUFSIZE);
  assert_int_equal(vs_op_encode(&op, small, VS_OP_HEADER_BYTES, &written), VS_ERR_BUFSIZE);
  free(small);
  uint8_t *fit = malloc(n);
  assert_non_null(fit);
  assert_int_equal(vs_op_encode(&op, fit, n, &written), VS_OK);
  assert_int_equal(written, n);
  free(fit);
}

static void test_op_encode_larger_buffer_reports_exact_size(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  uint8_t buf[512];
  size_t written = 0;
  assert_int_equal(vs_op_encode(&op, buf, sizeof buf, &written), VS_OK);
  assert_int_equal(written, vs_op_encoded_bytes(&op));
  vs_op back;
  assert_int_equal(vs_op_decode(buf, written, &back), VS_OK);
}

/* Encode an op that vs_op_init would not have built, into a buffer big
 * enough for anything, so a missing check shows as a wrong code. */
static vs_err encode_invalid(const vs_op *op) {
  size_t cap = VS_OP_ENCODED_BYTES_MAX + 4096u;
  uint8_t *buf = malloc(cap);
  assert_non_null(buf);
  size_t written = 0;
  vs_err err = vs_op_encode(op, buf, cap, &written);
  free(buf);
  return err;
}

static void test_op_encode_rejects_seq_zero(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  op.seq = 0;
  assert_int_equal(encode_invalid(&op), VS_ERR_INVAL);
}

static void test_op_encode_rejects_seq_past_max(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  op.seq = VS_OP_SEQ_MAX + 1u;
  assert_int_equal(encode_invalid(&op), VS_ERR_INVAL);
  uint8_t origin[VS_ORIGIN_BYTES] = {0};
  assert_int_equal(vs_op_init(&op, origin, VS_OP_SEQ_MAX + 1u, 0, NULL, "put", NULL, 0, NULL, 0), VS_ERR_INVAL);
  assert_int_equal(vs_op_init(&op, origin, VS_OP_SEQ_MAX, 0, NULL, "put", NULL, 0, NULL, 0), VS_OK);
}

/* Ids of one origin sort by seq: the op-id index grows by appends. */
static void test_op_ids_of_one_origin_sort_by_seq(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 9);
  vs_op_id prev, id;
  vs_op_id_derive(origin, 1, &prev);
  static const uint64_t seqs[] = {2, 255, 256, 65536, 1ull << 32, VS_OP_SEQ_MAX};
  for (unsigned i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
    vs_op_id_derive(origin, seqs[i], &id);
    assert_true(memcmp(prev.bytes, id.bytes, VS_OP_ID_BYTES) < 0);
    assert_memory_equal(prev.bytes, id.bytes, VS_OP_ID_TAG_BYTES);
    prev = id;
  }
}

static void test_op_encode_rejects_null_with_length(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  op.target = NULL;
  assert_int_equal(encode_invalid(&op), VS_ERR_INVAL);
  make_op(&op, 1);
  op.payload = NULL;
  assert_int_equal(encode_invalid(&op), VS_ERR_INVAL);
}

static void test_op_encode_rejects_bad_kind(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  op.kind_bytes = 0;
  op.kind[0] = '\0';
  assert_int_equal(encode_invalid(&op), VS_ERR_MALFORMED);
  make_op(&op, 1);
  op.kind[1] = ' '; /* "p t" */
  assert_int_equal(encode_invalid(&op), VS_ERR_MALFORMED);
  make_op(&op, 1);
  op.kind[1] = (char)0x80;
  assert_int_equal(encode_invalid(&op), VS_ERR_MALFORMED);
  make_op(&op, 1);
  memset(op.kind, 'k', VS_OP_KIND_BYTES_MAX);
  op.kind[VS_OP_KIND_BYTES_MAX] = '\0';
  op.kind_bytes = VS_OP_KIND_BYTES_MAX + 1u; /* past the limit (kind[] cannot hold it) */
  assert_int_equal(encode_invalid(&op), VS_ERR_MALFORMED);
}

static void test_op_encode_rejects_oversized_target_and_payload(void **state) {
  (void)state;
  uint8_t *big = calloc(1, VS_OP_PAYLOAD_BYTES_MAX + 1u);
  assert_non_null(big);
  vs_op op;
  make_op(&op, 1);
  op.target = big;
  op.target_bytes = VS_OP_TARGET_BYTES_MAX + 1u;
  assert_int_equal(encode_invalid(&op), VS_ERR_TOO_LARGE);
  make_op(&op, 1);
  op.payload = big;
  op.payload_bytes = VS_OP_PAYLOAD_BYTES_MAX + 1u;
  assert_int_equal(encode_invalid(&op), VS_ERR_TOO_LARGE);
  free(big);
}

static void test_op_hash_rejects_invalid_op(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  op.seq = 0;
  uint8_t hash[VS_HASH_BYTES];
  assert_int_equal(vs_op_hash(&op, hash), VS_ERR_INVAL);
}

/* ------------------------------------------------------------------------ */
/* Ids                                                                      */
/* ------------------------------------------------------------------------ */

/* python3 -c 'import hashlib;print((hashlib.blake2b(b"vixsync/op-id/v2"+bytes(range(32)),
 *   digest_size=16).digest()+(1).to_bytes(8,"big")).hex())' */
#define GOLDEN_ID_SEQ1_HEX "7b20ceabac835117d0df0f9ae6426be70000000000000001"
/* The same with seq 0x010203040506: pins the byte order of seq. */
#define GOLDEN_ID_SEQ_BYTES_HEX "7b20ceabac835117d0df0f9ae6426be70000010203040506"

static void test_op_id_matches_golden(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 0); /* bytes 0..31 */
  uint8_t want[VS_OP_ID_BYTES];
  vs_op_id id;
  vs_op_id_derive(origin, 1, &id);
  vt_hex_to_bytes(GOLDEN_ID_SEQ1_HEX, want, sizeof want);
  assert_memory_equal(id.bytes, want, VS_OP_ID_BYTES);
  vs_op_id_derive(origin, 0x010203040506ull, &id);
  vt_hex_to_bytes(GOLDEN_ID_SEQ_BYTES_HEX, want, sizeof want);
  assert_memory_equal(id.bytes, want, VS_OP_ID_BYTES);
}

static void test_op_id_depends_on_every_origin_byte(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 0);
  vs_op_id base;
  vs_op_id_derive(origin, 1, &base);
  for (unsigned i = 0; i < VS_ORIGIN_BYTES; i++) {
    origin[i] ^= 0x01;
    vs_op_id id;
    vs_op_id_derive(origin, 1, &id);
    assert_false(vs_op_id_equal(&base, &id));
    origin[i] ^= 0x01;
  }
}

static void test_op_id_depends_on_seq(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 0);
  /* Values that differ only in high bytes catch a seq narrowed to 32 bits. */
  static const uint64_t seqs[] = {1, 2, 256, 1ull << 32, (1ull << 32) + 1, 1ull << 40, VS_OP_SEQ_MAX};
  enum { N = sizeof seqs / sizeof seqs[0] };
  vs_op_id ids[N];
  for (unsigned i = 0; i < N; i++) vs_op_id_derive(origin, seqs[i], &ids[i]);
  for (unsigned i = 0; i < N; i++)
    for (unsigned j = i + 1; j < N; j++) assert_false(vs_op_id_equal(&ids[i], &ids[j]));
}

/* vs_op_id_seq reads back the seq vs_op_id_derive put in, all 48 bits of
 * it; vs_op_id_same_origin compares the tag only, all 128 bits of it. */
static void test_op_id_seq_and_same_origin(void **state) {
  (void)state;
  uint8_t a_origin[VS_ORIGIN_BYTES], b_origin[VS_ORIGIN_BYTES];
  vt_origin(a_origin, 0x21);
  vt_origin(b_origin, 0x22);
  static const uint64_t seqs[] = {1, (1ull << 32) + 5, VS_OP_SEQ_MAX};
  enum { N = sizeof seqs / sizeof seqs[0] };
  vs_op_id a[N], b[N];
  for (unsigned i = 0; i < N; i++) {
    vs_op_id_derive(a_origin, seqs[i], &a[i]);
    vs_op_id_derive(b_origin, seqs[i], &b[i]);
    assert_int_equal(vs_op_id_seq(&a[i]), seqs[i]);
    assert_int_equal(vs_op_id_seq(&b[i]), seqs[i]);
  }
  for (unsigned i = 0; i < N; i++) {
    for (unsigned j = 0; j < N; j++) {
      assert_true(vs_op_id_same_origin(&a[i], &a[j]));
      assert_true(vs_op_id_same_origin(&b[i], &b[j]));
      /* Across origins, even with the same seq. */
      assert_false(vs_op_id_same_origin(&a[i], &b[j]));
      assert_false(vs_op_id_same_origin(&b[j], &a[i]));
    }
  }
  /* The golden id's seq bytes, read back. */
  uint8_t want[VS_OP_ID_BYTES];
  vs_op_id g;
  vt_hex_to_bytes(GOLDEN_ID_SEQ_BYTES_HEX, want, sizeof want);
  memcpy(g.bytes, want, sizeof want);
  assert_int_equal(vs_op_id_seq(&g), 0x010203040506ull);
  /* A difference in any tag byte is another origin, also in bytes 10..15
   * (past the 80 bits of op-id v1, where an attacker's two origins collide
   * after ~2^40 key generations). */
  for (unsigned i = 0; i < VS_OP_ID_TAG_BYTES; i++) {
    vs_op_id other = a[0];
    other.bytes[i] ^= 0x01;
    assert_false(vs_op_id_same_origin(&a[0], &other));
    assert_int_equal(vs_op_id_seq(&other), 1);
  }
  for (unsigned i = 10; i < 16; i++) {
    vs_op_id other = a[0];
    other.bytes[i] ^= 0x80;
    assert_false(vs_op_id_same_origin(&a[0], &other));
    assert_false(vs_op_id_equal(&a[0], &other));
  }
}

/* The tag is BLAKE2b-128("vixsync/op-id/v2" || origin), recomputed here
 * with libsodium, not through op.c, and the seq follows as a u64be: an op
 * id carries 128 bits of the origin's hash (issue 14, item 9). Two origins
 * collide by birthday search only after ~2^64 key generations. */
static void test_op_id_tag_is_blake2b_128_of_origin(void **state) {
  (void)state;
  static const char domain[] = "vixsync/op-id/v2";
  static const uint64_t seqs[] = {1, 0x0102030405ull, VS_OP_SEQ_MAX};
  for (unsigned salt = 0; salt < 4; salt++) {
    uint8_t origin[VS_ORIGIN_BYTES], msg[sizeof domain - 1 + VS_ORIGIN_BYTES], want[16];
    vt_origin(origin, (uint8_t)(salt * 0x41u));
    memcpy(msg, domain, sizeof domain - 1);
    memcpy(msg + sizeof domain - 1, origin, VS_ORIGIN_BYTES);
    assert_int_equal(crypto_generichash(want, sizeof want, msg, sizeof msg, NULL, 0), 0);
    for (unsigned k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
      vs_op_id id;
      vs_op_id_derive(origin, seqs[k], &id);
      assert_memory_equal(id.bytes, want, sizeof want);
      uint64_t seq = 0;
      for (unsigned i = 16; i < VS_OP_ID_BYTES; i++) seq = seq << 8 | id.bytes[i];
      assert_int_equal(seq, seqs[k]);
    }
  }
  assert_true(VS_OP_ID_TAG_BYTES * 8u >= 128u);
  assert_int_equal(VS_OP_ID_BYTES, VS_OP_ID_TAG_BYTES + 8u);
}

static void test_op_init_derives_id(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  uint8_t want[VS_OP_ID_BYTES];
  vt_hex_to_bytes(GOLDEN_ID_SEQ1_HEX, want, sizeof want);
  assert_memory_equal(op.id.bytes, want, VS_OP_ID_BYTES);
}

static void test_op_decode_derives_id(void **state) {
  (void)state;
  uint8_t enc[116];
  vt_hex_to_bytes(k_golden_enc_hex, enc, sizeof enc);
  vs_op op;
  memset(&op, 0, sizeof op);
  assert_int_equal(decode_exact(enc, sizeof enc, &op), VS_OK);
  uint8_t want[VS_OP_ID_BYTES];
  vt_hex_to_bytes(GOLDEN_ID_SEQ1_HEX, want, sizeof want);
  assert_memory_equal(op.id.bytes, want, VS_OP_ID_BYTES);
}

static void test_op_id_equal_compares_every_byte(void **state) {
  (void)state;
  vs_op_id a, b;
  for (unsigned i = 0; i < VS_OP_ID_BYTES; i++) a.bytes[i] = (uint8_t)(i + 1);
  b = a;
  assert_true(vs_op_id_equal(&a, &b));
  for (unsigned i = 0; i < VS_OP_ID_BYTES; i++) {
    b.bytes[i] ^= 0x80;
    assert_false(vs_op_id_equal(&a, &b));
    assert_false(vs_op_id_equal(&b, &a));
    b.bytes[i] ^= 0x80;
  }
}

/* ------------------------------------------------------------------------ */
/* Hex                                                                      */
/* ------------------------------------------------------------------------ */

static void test_op_id_to_hex_is_lowercase_and_terminated(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 0);
  vs_op_id id;
  vs_op_id_derive(origin, 1, &id);
  char hex[VS_OP_ID_HEX_BYTES];
  memset(hex, 'X', sizeof hex);
  vs_op_id_to_hex(&id, hex);
  assert_string_equal(hex, GOLDEN_ID_SEQ1_HEX);
  assert_int_equal(hex[VS_OP_ID_HEX_BYTES - 1], '\0');
}

static void test_op_id_hex_roundtrip(void **state) {
  (void)state;
  vs_op_id ids[4];
  memset(&ids[0], 0x00, sizeof ids[0]);
  memset(&ids[1], 0xff, sizeof ids[1]);
  for (unsigned i = 0; i < VS_OP_ID_BYTES; i++) ids[2].bytes[i] = (uint8_t)(i * 17u);
  for (unsigned i = 0; i < VS_OP_ID_BYTES; i++) ids[3].bytes[i] = (uint8_t)(0xa5u ^ (i * 29u));
  for (unsigned k = 0; k < 4; k++) {
    char hex[VS_OP_ID_HEX_BYTES];
    vs_op_id_to_hex(&ids[k], hex);
    assert_int_equal(strlen(hex), 2 * VS_OP_ID_BYTES);
    vs_op_id back;
    memset(&back, 0x5c, sizeof back);
    assert_int_equal(vs_op_id_from_hex(hex, &back), VS_OK);
    assert_true(vs_op_id_equal(&ids[k], &back));
  }
  char hex[VS_OP_ID_HEX_BYTES];
  vs_op_id_to_hex(&ids[1], hex);
  assert_string_equal(hex, "ffffffffffffffffffffffffffffffffffffffffffffffff");
}

static void test_op_id_from_hex_rejects_bad_input(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "0",
      "023de0c749059385e2930f24b4e06738",                  /* 32 chars: an op-id v1 id */
      "023de0c749059385e2930f24b4e06738000000000000000",   /* 47 chars */
      "023de0c749059385e2930f24b4e067380000000000000001a", /* 49 chars */
      "g23de0c749059385e2930f24b4e067380000000000000001",  /* non-hex first */
      "023de0c749059385e2930f24b4e06738000000000000000g",  /* non-hex last */
      "023de0c749059385 2930f24b4e067380000000000000001",  /* space inside */
      "0x3de0c749059385e2930f24b4e067380000000000000001",  /* prefix is not hex */
      "023de0c749059385-2930f24b4e067380000000000000001",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    vs_op_id id;
    if (vs_op_id_from_hex(bad[i], &id) != VS_ERR_INVAL) print_error("accepted \"%s\"\n", bad[i]);
    assert_int_equal(vs_op_id_from_hex(bad[i], &id), VS_ERR_INVAL);
  }
}

/* ------------------------------------------------------------------------ */
/* Hash                                                                     */
/* ------------------------------------------------------------------------ */

/* python3 -c 'import hashlib;print(hashlib.blake2b(b"vixsync/op-hash/v1"+bytes.fromhex(ENC),
 *   digest_size=32).hexdigest())'  with ENC = k_golden_enc_hex */
#define GOLDEN_HASH_HEX "2c4f187f48dc1c87e17f03136b6fc545dda3fafdd5bd39cffe8bf8aec38e0cd3"

static void test_op_hash_matches_golden(void **state) {
  (void)state;
  vs_op op;
  make_op(&op, 1);
  uint8_t want[VS_HASH_BYTES], got[VS_HASH_BYTES];
  vt_hex_to_bytes(GOLDEN_HASH_HEX, want, sizeof want);
  assert_int_equal(vs_op_hash(&op, got), VS_OK);
  assert_memory_equal(got, want, VS_HASH_BYTES);
}

static void test_op_hash_encoded_matches_hash(void **state) {
  (void)state;
  uint8_t enc[116];
  vt_hex_to_bytes(k_golden_enc_hex, enc, sizeof enc);
  uint8_t want[VS_HASH_BYTES], got[VS_HASH_BYTES];
  vt_hex_to_bytes(GOLDEN_HASH_HEX, want, sizeof want);
  vs_op_hash_encoded(enc, sizeof enc, got);
  assert_memory_equal(got, want, VS_HASH_BYTES);
}

static void test_op_hash_changes_when_any_field_changes(void **state) {
  (void)state;
  enum { VARIANTS = 13 };
  uint8_t hashes[VARIANTS][VS_HASH_BYTES];
  static const uint8_t target2[] = "users/43";
  static const uint8_t payload2[] = "{\"name\":\"bob\"}";
  for (unsigned v = 0; v < VARIANTS; v++) {
    uint8_t origin[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES];
    vt_origin(origin, 0);
    fill_prev(prev, 1);
    uint64_t seq = 1, hlc = vs_hlc_make(1700000000000ull, 3);
    const char *kind = "put";
    const uint8_t *target = k_target, *payload = k_payload;
    uint32_t target_bytes = K_TARGET_BYTES, payload_bytes = K_PAYLOAD_BYTES;
    switch (v) {
      case 0: break; /* the base */
      case 1: origin[31] ^= 1; break;
      case 2: seq = 2; break;
      case 3: hlc += 1; break;
      case 4: hlc += 1ull << 16; break;
      case 5: prev[0] ^= 1; break;
      case 6: kind = "puT"; break;
      case 7: kind = "putx"; break;
      case 8: target = target2; break;
      case 9: target_bytes -= 1; break;
      case 10: payload = payload2; break;
      case 11: payload_bytes -= 1; break;
      case 12: target_bytes = 0; break;
    }
    vs_op op;
    assert_int_equal(vs_op_init(&op, origin, seq, hlc, prev, kind, target, target_bytes, payload,
                                payload_bytes),
                     VS_OK);
    assert_int_equal(vs_op_hash(&op, hashes[v]), VS_OK);
  }
  for (unsigned i = 0; i < VARIANTS; i++)
    for (unsigned j = i + 1; j < VARIANTS; j++) {
      if (memcmp(hashes[i], hashes[j], VS_HASH_BYTES) == 0) print_error("variants %u and %u\n", i, j);
      assert_memory_not_equal(hashes[i], hashes[j], VS_HASH_BYTES);
    }
}

/* ------------------------------------------------------------------------ */
/* HLC                                                                      */
/* ------------------------------------------------------------------------ */

static void test_hlc_make_packs_wall_and_counter(void **state) {
  (void)state;
  uint64_t hlc = vs_hlc_make(1700000000000ull, 3);
  assert_true(hlc == 0x18bcfe568000003ull);
  assert_true(vs_hlc_wall_ms(hlc) == 1700000000000ull);
  assert_int_equal(hlc & 0xffffu, 3);
}

static void test_hlc_next_takes_wall_clock_when_ahead(void **state) {
  (void)state;
  uint64_t last = vs_hlc_make(1000, 5);
  assert_true(vs_hlc_next(last, 2000) == vs_hlc_make(2000, 0));
}

static void test_hlc_next_counts_when_wall_clock_equal(void **state) {
  (void)state;
  uint64_t last = vs_hlc_make(1000, 5);
  assert_true(vs_hlc_next(last, 1000) == vs_hlc_make(1000, 6));
}

static void test_hlc_next_counts_when_wall_clock_behind(void **state) {
  (void)state;
  uint64_t last = vs_hlc_make(1000, 5);
  assert_true(vs_hlc_next(last, 10) == vs_hlc_make(1000, 6));
  assert_true(vs_hlc_next(last, 0) == last + 1);
}

static void test_hlc_next_counter_carries_into_wall(void **state) {
  (void)state;
  uint64_t last = vs_hlc_make(1000, 0xffff);
  assert_true(vs_hlc_next(last, 1000) == last + 1);
  assert_true(vs_hlc_next(last, 1000) == vs_hlc_make(1001, 0));
}

static void test_hlc_next_from_zero(void **state) {
  (void)state;
  assert_true(vs_hlc_next(0, 0) == 1);
  assert_true(vs_hlc_next(0, 5) == vs_hlc_make(5, 0));
}

static void test_hlc_next_is_strictly_increasing(void **state) {
  (void)state;
  /* A wall clock that jumps back and forth (NTP steps) never moves HLC back. */
  static const uint64_t walls[] = {100, 100, 99, 150, 10, 150, 151, 0, 151, 1000, 999, 1000};
  uint64_t last = 0;
  for (size_t i = 0; i < sizeof walls / sizeof walls[0]; i++) {
    uint64_t next = vs_hlc_next(last, walls[i]);
    assert_true(next > last);
    assert_true(next >= vs_hlc_make(walls[i], 0));
    last = next;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_op_encode_matches_golden_bytes),
      cmocka_unit_test(test_op_decode_golden_bytes_gives_fields),
      cmocka_unit_test(test_op_roundtrip_basic),
      cmocka_unit_test(test_op_roundtrip_empty_target_and_payload),
      cmocka_unit_test(test_op_roundtrip_max_target_and_payload),
      cmocka_unit_test(test_op_roundtrip_unknown_kinds_are_valid),
      cmocka_unit_test(test_op_encoded_bytes_counts_every_field),
      cmocka_unit_test(test_op_decode_points_target_and_payload_into_buffer),
      cmocka_unit_test(test_op_decode_accepts_boundary_values),
      cmocka_unit_test(test_op_decode_accepts_forged_base),
      cmocka_unit_test(test_op_decode_rejects_truncated_fields),
      cmocka_unit_test(test_op_decode_rejects_trailing_bytes),
      cmocka_unit_test(test_op_decode_rejects_lengths_past_limits),
      cmocka_unit_test(test_op_decode_rejects_unknown_versions),
      cmocka_unit_test(test_op_decode_rejects_malformed_fields),
      cmocka_unit_test(test_op_decode_rejects_every_prefix),
      cmocka_unit_test(test_op_decode_rejects_every_prefix_of_max_encoding),
      cmocka_unit_test(test_op_decode_single_byte_mutations_are_safe_and_canonical),
      cmocka_unit_test(test_op_init_rejects_seq_zero),
      cmocka_unit_test(test_op_init_rejects_null_target_with_length),
      cmocka_unit_test(test_op_init_rejects_null_payload_with_length),
      cmocka_unit_test(test_op_init_accepts_null_with_zero_length),
      cmocka_unit_test(test_op_init_rejects_bad_kinds),
      cmocka_unit_test(test_op_init_rejects_oversized_target_and_payload),
      cmocka_unit_test(test_op_kind_check_bounds),
      cmocka_unit_test(test_op_kind_check_accepts_only_visible_ascii),
      cmocka_unit_test(test_op_kind_check_does_not_need_nul),
      cmocka_unit_test(test_op_encode_reports_bufsize),
      cmocka_unit_test(test_op_encode_larger_buffer_reports_exact_size),
      cmocka_unit_test(test_op_encode_rejects_seq_zero),
      cmocka_unit_test(test_op_encode_rejects_null_with_length),
      cmocka_unit_test(test_op_encode_rejects_bad_kind),
      cmocka_unit_test(test_op_encode_rejects_oversized_target_and_payload),
      cmocka_unit_test(test_op_hash_rejects_invalid_op),
      cmocka_unit_test(test_op_id_matches_golden),
      cmocka_unit_test(test_op_encode_rejects_seq_past_max),
      cmocka_unit_test(test_op_ids_of_one_origin_sort_by_seq),
      cmocka_unit_test(test_op_id_depends_on_every_origin_byte),
      cmocka_unit_test(test_op_id_depends_on_seq),
      cmocka_unit_test(test_op_id_seq_and_same_origin),
      cmocka_unit_test(test_op_id_tag_is_blake2b_128_of_origin),
      cmocka_unit_test(test_op_init_derives_id),
      cmocka_unit_test(test_op_decode_derives_id),
      cmocka_unit_test(test_op_id_equal_compares_every_byte),
      cmocka_unit_test(test_op_id_to_hex_is_lowercase_and_terminated),
      cmocka_unit_test(test_op_id_hex_roundtrip),
      cmocka_unit_test(test_op_id_from_hex_rejects_bad_input),
      cmocka_unit_test(test_op_hash_matches_golden),
      cmocka_unit_test(test_op_hash_encoded_matches_hash),
      cmocka_unit_test(test_op_hash_changes_when_any_field_changes),
      cmocka_unit_test(test_hlc_make_packs_wall_and_counter),
      cmocka_unit_test(test_hlc_next_takes_wall_clock_when_ahead),
      cmocka_unit_test(test_hlc_next_counts_when_wall_clock_equal),
      cmocka_unit_test(test_hlc_next_counts_when_wall_clock_behind),
      cmocka_unit_test(test_hlc_next_counter_carries_into_wall),
      cmocka_unit_test(test_hlc_next_from_zero),
      cmocka_unit_test(test_hlc_next_is_strictly_increasing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
