/* Pins the op half of src/member.h: the mesh.* payload codecs (round trips,
 * every truncation, trailing bytes, versions, fields), the invite key's
 * admission signature, vs_mesh_fact_from_op, and the invite token; then
 * every 1-byte mutation of each valid encoding is refused or re-encodes to
 * itself.
 *
 * Golden values were computed independently with Python (`cryptography`'s
 * ed25519, hashlib.blake2b, base64), never with the code under test:
 *
 *   from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
 *   from cryptography.hazmat.primitives import serialization as s
 *   import hashlib, base64
 *   inv = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
 *   mesh = bytes((i*3+5)&0xff for i in range(32)); inviter = bytes(i^0x40 for i in range(32))
 *   seq = 0x0000010203040506; dev = bytes(i^0x80 for i in range(32))
 *   msg = b"vixsync mesh.admit v1" + mesh + inviter + seq.to_bytes(8,"little") + dev
 *   print(inv.sign(msg).hex())
 *   seed = bytes(range(32)); key = bytes((i*11)&0xff for i in range(32))
 *   body = bytes([1]) + mesh + seed + inviter + seq.to_bytes(8,"little") + key + bytes([1]) \
 *          + bytes([9]) + b"127.0.0.1" + (7400).to_bytes(2,"little")
 *   chk = hashlib.blake2b(body, digest_size=32).digest()[:4]
 *   print("vix1-" + base64.urlsafe_b64encode(body+chk).decode().rstrip("="))
 */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "member.h"

static const char GOLDEN_SIG_HEX[] =
    "a3adc5bc1c3a52d0ae38638c77c972e1640dd202474adf49ab88d57540215ad2"
    "52e6e0650d520103ebbff01a2d603a390447807492967f98a796310c303d7d0c";
static const char GOLDEN_TOKEN[] =
    "vix1-AQUICw4RFBcaHSAjJiksLzI1ODs-QURHSk1QU1ZZXF9iAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9AQUJDREVGR0hJSktM"
    "TU5PUFFSU1RVVldYWVpbXF1eXwYFBAMCAQAAAAsWISw3Qk1YY255hI-apbC7xtHc5_L9CBMeKTQ_SlUBCTEyNy4wLjAuMegcKLvkGA";
static const uint64_t GOLDEN_SEQ = 0x0000010203040506ull;

static void fill(uint8_t *p, size_t n, uint8_t mul, uint8_t add) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * mul + add);
}

static void xor_fill(uint8_t *p, size_t n, uint8_t x) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i ^ x);
}

static void identity_of(uint8_t salt, vs_identity *id) {
  uint8_t seed[VS_SEED_BYTES];
  xor_fill(seed, sizeof seed, salt);
  assert_err(vs_identity_from_seed(seed, id), VS_OK);
}

/* The golden admission: invite key from seed 0..31, signed for device
 * i ^ 0x80, mesh (3i + 5), inviter i ^ 0x40, GOLDEN_SEQ. */
static void golden_admit(vs_mesh_admit_pl *a, uint8_t device[VS_ORIGIN_BYTES], vs_identity *invite) {
  uint8_t seed[VS_SEED_BYTES];
  fill(seed, sizeof seed, 1, 0);
  assert_err(vs_identity_from_seed(seed, invite), VS_OK);
  memset(a, 0, sizeof *a);
  fill(a->mesh_id, VS_HASH_BYTES, 3, 5);
  xor_fill(a->inviter, VS_ORIGIN_BYTES, 0x40);
  a->invite_seq = GOLDEN_SEQ;
  memcpy(a->invite_pk, invite->pk, VS_ORIGIN_BYTES);
  xor_fill(device, VS_ORIGIN_BYTES, 0x80);
  assert_err(vs_mesh_admit_sign(a, invite, device), VS_OK);
}

static void sample_invite(vs_mesh_invite_pl *v) {
  memset(v, 0, sizeof *v);
  fill(v->invite_pk, VS_ORIGIN_BYTES, 7, 1);
  v->role = VS_MESH_WRITER;
  v->expires_hlc = 0x1122334455667788ull;
}

/* A revoke of the device of seed 5..36, cut 42, with that device's own
 * signature of the (made-up) op hash at the cut. */
static void sample_revoke(vs_mesh_revoke_pl *v) {
  memset(v, 0, sizeof *v);
  uint8_t seed[VS_SEED_BYTES];
  fill(seed, VS_SEED_BYTES, 5, 1);
  vs_identity dev;
  assert_err(vs_identity_from_seed(seed, &dev), VS_OK);
  memcpy(v->device_pk, dev.pk, VS_ORIGIN_BYTES);
  v->cut_seq = 42;
  fill(v->cut_hash, VS_HASH_BYTES, 13, 3);
  vs_chain_sign(&dev, v->cut_seq, v->cut_hash, v->cut_sig);
  vs_identity_wipe(&dev);
}

/* ---- one decoder, generically: every truncation and trailing length ---- */

typedef vs_err (*decode_fn)(const uint8_t *in, size_t in_bytes, void *out);
static vs_err dec_create(const uint8_t *in, size_t n, void *out) { (void)out; return vs_mesh_create_decode(in, n); }
static vs_err dec_invite(const uint8_t *in, size_t n, void *out) { return vs_mesh_invite_decode(in, n, out); }
static vs_err dec_admit(const uint8_t *in, size_t n, void *out) { return vs_mesh_admit_decode(in, n, out); }
static vs_err dec_revoke(const uint8_t *in, size_t n, void *out) { return vs_mesh_revoke_decode(in, n, out); }

#define OUT_BYTES_MAX 256u
/* Truncations, trailing bytes and bad versions of `enc` (exactly `n`
 * bytes); on each error the out struct (`out_bytes`) is untouched. */
static void check_lengths(decode_fn dec, const uint8_t *enc, size_t n, size_t out_bytes) {
  uint8_t buf[512], out[OUT_BYTES_MAX], sentinel[OUT_BYTES_MAX];
  assert_true(n + 16 <= sizeof buf && out_bytes <= OUT_BYTES_MAX);
  memset(sentinel, 0xa5, sizeof sentinel);
  memcpy(buf, enc, n);
  for (size_t len = 0; len < n; len++) {
    memcpy(out, sentinel, sizeof out);
    assert_err(dec(buf, len, out), VS_ERR_TRUNCATED);
    assert_memory_equal(out, sentinel, out_bytes);
  }
  for (size_t extra = 1; extra <= 16; extra++) {
    memset(buf + n, (int)extra, extra);
    memcpy(out, sentinel, sizeof out);
    assert_err(dec(buf, n + extra, out), VS_ERR_TRAILING);
    assert_memory_equal(out, sentinel, out_bytes);
  }
  const uint8_t versions[] = {0, 2, 3, 0x7f, 0xff};
  for (size_t i = 0; i < sizeof versions; i++) {
    buf[0] = versions[i];
    memcpy(out, sentinel, sizeof out);
    assert_err(dec(buf, n, out), VS_ERR_VERSION);
    assert_err(dec(buf, n + 3, out), VS_ERR_VERSION); /* a later version's length is its own */
    assert_memory_equal(out, sentinel, out_bytes);
  }
  buf[0] = VS_MESH_PAYLOAD_VERSION;
  assert_err(dec(buf, n, out), VS_OK);
}

/* ---- create ---- */

static void test_member_create_roundtrip_and_strictness(void **state) {
  (void)state;
  uint8_t enc[VS_MESH_CREATE_BYTES];
  vs_mesh_create_encode(enc);
  assert_int_equal(enc[0], 1);
  assert_int_equal(enc[1], VS_MESH_ADMIN);
  assert_err(vs_mesh_create_decode(enc, sizeof enc), VS_OK);
  check_lengths(dec_create, enc, sizeof enc, 0);
  const uint8_t roles[] = {0, VS_MESH_READER, VS_MESH_WRITER, 4, 0xff};
  for (size_t i = 0; i < sizeof roles; i++) {
    uint8_t bad[2] = {1, roles[i]};
    assert_err(vs_mesh_create_decode(bad, sizeof bad), VS_ERR_MALFORMED);
  }
  assert_err(vs_mesh_create_decode(NULL, 2), VS_ERR_INVAL);
  assert_err(vs_mesh_create_decode(NULL, 0), VS_ERR_TRUNCATED);
}

/* ---- invite ---- */

static void test_member_invite_roundtrip_layout(void **state) {
  (void)state;
  vs_mesh_invite_pl in, out;
  sample_invite(&in);
  uint8_t enc[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&in, enc);
  /* explicit little-endian, field by field (member.h) */
  assert_int_equal(enc[0], 1);
  assert_memory_equal(enc + 1, in.invite_pk, 32);
  assert_int_equal(enc[33], VS_MESH_WRITER);
  const uint8_t hlc_le[8] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
  assert_memory_equal(enc + 34, hlc_le, 8);
  memset(&out, 0, sizeof out);
  assert_err(vs_mesh_invite_decode(enc, sizeof enc, &out), VS_OK);
  assert_memory_equal(out.invite_pk, in.invite_pk, 32);
  assert_int_equal(out.role, in.role);
  assert_true(out.expires_hlc == in.expires_hlc);
  for (uint8_t role = VS_MESH_READER; role <= VS_MESH_ADMIN; role++) {
    in.role = role;
    vs_mesh_invite_encode(&in, enc);
    assert_err(vs_mesh_invite_decode(enc, sizeof enc, &out), VS_OK);
    assert_int_equal(out.role, role);
  }
}

static void test_member_invite_refuses_bad_lengths_versions_roles(void **state) {
  (void)state;
  vs_mesh_invite_pl in, out;
  sample_invite(&in);
  uint8_t enc[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&in, enc);
  check_lengths(dec_invite, enc, sizeof enc, sizeof out);
  const uint8_t roles[] = {0, 4, 0x80, 0xff};
  for (size_t i = 0; i < sizeof roles; i++) {
    enc[33] = roles[i];
    memset(&out, 0x5a, sizeof out);
    vs_mesh_invite_pl before;
    memcpy(&before, &out, sizeof out);
    assert_err(vs_mesh_invite_decode(enc, sizeof enc, &out), VS_ERR_MALFORMED);
    assert_memory_equal(&out, &before, sizeof out);
  }
  assert_err(vs_mesh_invite_decode(enc, sizeof enc, NULL), VS_ERR_INVAL);
  assert_err(vs_mesh_invite_decode(NULL, 42, &out), VS_ERR_INVAL);
}

/* ---- admit ---- */

static void test_member_admit_roundtrip_layout(void **state) {
  (void)state;
  vs_mesh_admit_pl a, out;
  uint8_t device[VS_ORIGIN_BYTES];
  vs_identity invite;
  golden_admit(&a, device, &invite);
  uint8_t enc[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&a, enc);
  assert_int_equal(enc[0], 1);
  assert_memory_equal(enc + 1, a.mesh_id, 32);
  assert_memory_equal(enc + 33, a.inviter, 32);
  const uint8_t seq_le[8] = {6, 5, 4, 3, 2, 1, 0, 0};
  assert_memory_equal(enc + 65, seq_le, 8);
  assert_memory_equal(enc + 73, a.invite_pk, 32);
  assert_memory_equal(enc + 105, a.invite_sig, 64);
  assert_err(vs_mesh_admit_decode(enc, sizeof enc, &out), VS_OK);
  assert_memory_equal(&out, &a, sizeof a); /* no padding in vs_mesh_admit_pl */
  check_lengths(dec_admit, enc, sizeof enc, sizeof out);
  vs_identity_wipe(&invite);
}

static void test_member_admit_refuses_bad_invite_seq(void **state) {
  (void)state;
  vs_mesh_admit_pl a, out;
  uint8_t device[VS_ORIGIN_BYTES];
  vs_identity invite;
  golden_admit(&a, device, &invite);
  uint8_t enc[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&a, enc);
  const uint64_t bad[] = {0, 1, VS_OP_SEQ_MAX + 1u, UINT64_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (int b = 0; b < 8; b++) enc[65 + b] = (uint8_t)(bad[i] >> (8 * b));
    memset(&out, 0x33, sizeof out);
    vs_mesh_admit_pl before;
    memcpy(&before, &out, sizeof out);
    assert_err(vs_mesh_admit_decode(enc, sizeof enc, &out), VS_ERR_MALFORMED);
    assert_memory_equal(&out, &before, sizeof out);
  }
  for (int b = 0; b < 8; b++) enc[65 + b] = (uint8_t)(VS_OP_SEQ_MAX >> (8 * b));
  assert_err(vs_mesh_admit_decode(enc, sizeof enc, &out), VS_OK);
  vs_identity_wipe(&invite);
}

static void test_member_admit_signature_matches_golden(void **state) {
  (void)state;
  vs_mesh_admit_pl a;
  uint8_t device[VS_ORIGIN_BYTES];
  vs_identity invite;
  golden_admit(&a, device, &invite);
  uint8_t want[VS_SIGNATURE_BYTES];
  assert_err(vs_hex_decode(GOLDEN_SIG_HEX, sizeof GOLDEN_SIG_HEX - 1, want, sizeof want), VS_OK);
  assert_memory_equal(a.invite_sig, want, sizeof want);
  assert_true(vs_mesh_admit_verify(&a, device));
  vs_identity_wipe(&invite);
}

static void test_member_admit_verify_refuses_forgeries(void **state) {
  (void)state;
  vs_mesh_admit_pl a, b;
  uint8_t device[VS_ORIGIN_BYTES], other[VS_ORIGIN_BYTES];
  vs_identity invite, wrong;
  golden_admit(&a, device, &invite);
  identity_of(0x99, &wrong);
  /* signed by another invite key than the one it names */
  b = a;
  memcpy(b.invite_pk, wrong.pk, VS_ORIGIN_BYTES);
  assert_err(vs_mesh_admit_sign(&b, &wrong, device), VS_OK);
  memcpy(b.invite_pk, a.invite_pk, VS_ORIGIN_BYTES);
  assert_false(vs_mesh_admit_verify(&b, device));
  /* sign refuses a key other than invite_pk */
  b = a;
  assert_err(vs_mesh_admit_sign(&b, &wrong, device), VS_ERR_INVAL);
  /* for another device */
  memcpy(other, device, sizeof other);
  other[0] ^= 1;
  assert_false(vs_mesh_admit_verify(&a, other));
  /* for another mesh, inviter, invite seq */
  b = a;
  b.mesh_id[31] ^= 0x10;
  assert_false(vs_mesh_admit_verify(&b, device));
  b = a;
  b.inviter[0] ^= 0x01;
  assert_false(vs_mesh_admit_verify(&b, device));
  b = a;
  b.invite_seq++;
  assert_false(vs_mesh_admit_verify(&b, device));
  /* every flipped bit of the signature and the invite key */
  for (size_t bit = 0; bit < 8 * VS_SIGNATURE_BYTES; bit++) {
    b = a;
    b.invite_sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_false(vs_mesh_admit_verify(&b, device));
  }
  for (size_t bit = 0; bit < 8 * VS_ORIGIN_BYTES; bit++) {
    b = a;
    b.invite_pk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_false(vs_mesh_admit_verify(&b, device));
  }
  assert_false(vs_mesh_admit_verify(NULL, device));
  assert_false(vs_mesh_admit_verify(&a, NULL));
  assert_err(vs_mesh_admit_sign(NULL, &invite, device), VS_ERR_INVAL);
  vs_identity_wipe(&invite);
  vs_identity_wipe(&wrong);
}

/* ---- revoke ---- */

static void test_member_revoke_roundtrip_and_cut_rules(void **state) {
  (void)state;
  vs_mesh_revoke_pl in, out;
  sample_revoke(&in);
  uint8_t enc[VS_MESH_REVOKE_BYTES];
  vs_mesh_revoke_encode(&in, enc);
  assert_int_equal(enc[0], 1);
  assert_memory_equal(enc + 1, in.device_pk, 32);
  assert_int_equal(enc[33], 42);
  assert_int_equal(enc[34], 0);
  assert_memory_equal(enc + 41, in.cut_hash, 32);
  assert_memory_equal(enc + 73, in.cut_sig, 64);
  assert_err(vs_mesh_revoke_decode(enc, sizeof enc, &out), VS_OK);
  assert_memory_equal(&out, &in, sizeof in);
  check_lengths(dec_revoke, enc, sizeof enc, sizeof out);
  /* cut 0 (nothing held) has a zero hash */
  in.cut_seq = 0;
  memset(in.cut_hash, 0, sizeof in.cut_hash);
  memset(in.cut_sig, 0, sizeof in.cut_sig);
  vs_mesh_revoke_encode(&in, enc);
  assert_err(vs_mesh_revoke_decode(enc, sizeof enc, &out), VS_OK);
  assert_true(out.cut_seq == 0);
  enc[41 + 31] = 1; /* cut 0 with a hash */
  assert_err(vs_mesh_revoke_decode(enc, sizeof enc, &out), VS_ERR_MALFORMED);
  enc[41 + 31] = 0;
  enc[73 + 63] = 1; /* cut 0 with a signature */
  assert_err(vs_mesh_revoke_decode(enc, sizeof enc, &out), VS_ERR_MALFORMED);
  sample_revoke(&in);
  vs_mesh_revoke_encode(&in, enc);
  memset(enc + 41, 0, 32); /* cut 42 without one */
  assert_err(vs_mesh_revoke_decode(enc, sizeof enc, &out), VS_ERR_MALFORMED);
  vs_mesh_revoke_encode(&in, enc);
  for (int b = 0; b < 8; b++) enc[33 + b] = (uint8_t)((VS_OP_SEQ_MAX + 1u) >> (8 * b));
  memset(&out, 0x77, sizeof out);
  vs_mesh_revoke_pl before;
  memcpy(&before, &out, sizeof out);
  assert_err(vs_mesh_revoke_decode(enc, sizeof enc, &out), VS_ERR_MALFORMED);
  assert_memory_equal(&out, &before, sizeof out);
}

/* ---- kinds and facts ---- */

static void test_member_kind_reserved(void **state) {
  (void)state;
  assert_true(vs_mesh_kind_reserved("mesh.", 5));
  assert_true(vs_mesh_kind_reserved("mesh.create", 11));
  assert_true(vs_mesh_kind_reserved("mesh.anything", 13));
  assert_false(vs_mesh_kind_reserved("mesh", 4));
  assert_false(vs_mesh_kind_reserved("meshy", 5));
  assert_false(vs_mesh_kind_reserved("Mesh.create", 11));
  assert_false(vs_mesh_kind_reserved("mesh.create", 4)); /* only kind_bytes count */
  assert_false(vs_mesh_kind_reserved("set", 3));
  assert_false(vs_mesh_kind_reserved(NULL, 0));
}

static const uint8_t ZERO32[32];
static const uint8_t MESH_TARGET[] = {'m', 'e', 's', 'h'};

static void make_op(vs_op *op, const uint8_t origin[32], uint64_t seq, const uint8_t prev[32], const char *kind,
                    const uint8_t *payload, uint32_t payload_bytes) {
  assert_err(vs_op_init(op, origin, seq, 1000u + seq, prev, kind, MESH_TARGET, sizeof MESH_TARGET, payload,
                        payload_bytes),
             VS_OK);
}

static void test_member_fact_from_each_kind(void **state) {
  (void)state;
  uint8_t origin[32], hash[32], prev[32];
  vt_origin(origin, 0x11);
  fill(hash, 32, 9, 2);
  fill(prev, 32, 1, 1);
  vs_op op;
  vs_mesh_fact f;

  uint8_t create[VS_MESH_CREATE_BYTES];
  vs_mesh_create_encode(create);
  make_op(&op, origin, 1, ZERO32, VS_MESH_KIND_CREATE, create, sizeof create);
  assert_err(vs_mesh_fact_from_op(&op, hash, &f), VS_OK);
  assert_int_equal(f.kind, VS_MESH_CREATE);
  assert_memory_equal(f.origin, origin, 32);
  assert_memory_equal(f.hash, hash, 32);
  assert_true(f.seq == 1 && f.hlc == 1001);

  vs_mesh_invite_pl inv;
  sample_invite(&inv);
  uint8_t ienc[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&inv, ienc);
  make_op(&op, origin, 7, prev, VS_MESH_KIND_INVITE, ienc, sizeof ienc);
  assert_err(vs_mesh_fact_from_op(&op, hash, &f), VS_OK);
  assert_int_equal(f.kind, VS_MESH_INVITE);
  assert_true(f.seq == 7 && f.hlc == 1007);
  assert_memory_equal(f.u.invite.invite_pk, inv.invite_pk, 32);
  assert_true(f.u.invite.role == inv.role && f.u.invite.expires_hlc == inv.expires_hlc);

  vs_mesh_admit_pl a;
  uint8_t device[32];
  vs_identity invite;
  golden_admit(&a, device, &invite);
  uint8_t aenc[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&a, aenc);
  make_op(&op, device, 1, ZERO32, VS_MESH_KIND_ADMIT, aenc, sizeof aenc);
  assert_err(vs_mesh_fact_from_op(&op, hash, &f), VS_OK);
  assert_int_equal(f.kind, VS_MESH_ADMIT);
  assert_memory_equal(&f.u.admit, &a, sizeof a);

  vs_mesh_revoke_pl r;
  sample_revoke(&r);
  uint8_t renc[VS_MESH_REVOKE_BYTES];
  vs_mesh_revoke_encode(&r, renc);
  make_op(&op, origin, 2, prev, VS_MESH_KIND_REVOKE, renc, sizeof renc);
  assert_err(vs_mesh_fact_from_op(&op, hash, &f), VS_OK);
  assert_int_equal(f.kind, VS_MESH_REVOKE);
  assert_memory_equal(&f.u.revoke, &r, sizeof r);
  vs_identity_wipe(&invite);
}

/* A fact's bytes are a function of the op: padding and the union's unused
 * bytes are zero whatever *out held, so facts can be hashed or compared. */
static void test_member_fact_bytes_are_canonical(void **state) {
  (void)state;
  uint8_t origin[32], prev[32], hash[32];
  vt_origin(origin, 0x33);
  fill(prev, 32, 1, 1);
  fill(hash, 32, 2, 7);
  vs_mesh_invite_pl inv;
  sample_invite(&inv);
  uint8_t ienc[VS_MESH_INVITE_BYTES], create[VS_MESH_CREATE_BYTES];
  vs_mesh_invite_encode(&inv, ienc);
  vs_mesh_create_encode(create);
  vs_op ops[2];
  make_op(&ops[0], origin, 4, prev, VS_MESH_KIND_INVITE, ienc, sizeof ienc);
  make_op(&ops[1], origin, 1, ZERO32, VS_MESH_KIND_CREATE, create, sizeof create);
  for (int i = 0; i < 2; i++) {
    vs_mesh_fact x, y;
    memset(&x, 0x00, sizeof x);
    memset(&y, 0xff, sizeof y);
    assert_err(vs_mesh_fact_from_op(&ops[i], hash, &x), VS_OK);
    assert_err(vs_mesh_fact_from_op(&ops[i], hash, &y), VS_OK);
    assert_memory_equal(&x, &y, sizeof x);
  }
}

/* On error, the fact is untouched. */
static void expect_fact_err(const vs_op *op, vs_err want) {
  uint8_t hash[32] = {1};
  vs_mesh_fact f, before;
  memset(&f, 0x6b, sizeof f);
  memcpy(&before, &f, sizeof f);
  assert_err(vs_mesh_fact_from_op(op, hash, &f), want);
  assert_memory_equal(&f, &before, sizeof f);
}

static void test_member_fact_refuses_bad_ops(void **state) {
  (void)state;
  uint8_t origin[32], prev[32];
  vt_origin(origin, 0x22);
  fill(prev, 32, 1, 1);
  vs_op op;
  uint8_t create[VS_MESH_CREATE_BYTES];
  vs_mesh_create_encode(create);
  vs_mesh_invite_pl inv;
  sample_invite(&inv);
  uint8_t ienc[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&inv, ienc);

  /* a data op is none of this module's business */
  assert_err(vs_op_init(&op, origin, 3, 5, prev, "set", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1), VS_OK);
  expect_fact_err(&op, VS_ERR_NOTFOUND);
  assert_err(vs_op_init(&op, origin, 1, 5, ZERO32, "meshcreate", MESH_TARGET, 4, create, 2), VS_OK);
  expect_fact_err(&op, VS_ERR_NOTFOUND);
  /* mesh.* with another target */
  const char *targets[] = {"", "Mesh", "mesh2", "mes", "mesh\0"};
  const uint32_t target_bytes[] = {0, 4, 5, 3, 5};
  for (size_t i = 0; i < 5; i++) {
    assert_err(vs_op_init(&op, origin, 1, 5, ZERO32, VS_MESH_KIND_CREATE, (const uint8_t *)targets[i], target_bytes[i],
                          create, 2),
               VS_OK);
    expect_fact_err(&op, VS_ERR_MALFORMED);
  }
  /* create and admit open a chain; invites and revokes do not */
  make_op(&op, origin, 2, prev, VS_MESH_KIND_CREATE, create, sizeof create);
  expect_fact_err(&op, VS_ERR_MALFORMED);
  make_op(&op, origin, 1, prev, VS_MESH_KIND_CREATE, create, sizeof create); /* non-zero prev */
  expect_fact_err(&op, VS_ERR_MALFORMED);
  make_op(&op, origin, 1, ZERO32, VS_MESH_KIND_INVITE, ienc, sizeof ienc);
  expect_fact_err(&op, VS_ERR_MALFORMED);
  vs_mesh_admit_pl a;
  uint8_t device[32];
  vs_identity invite;
  golden_admit(&a, device, &invite);
  uint8_t aenc[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&a, aenc);
  make_op(&op, device, 2, prev, VS_MESH_KIND_ADMIT, aenc, sizeof aenc);
  expect_fact_err(&op, VS_ERR_MALFORMED);
  /* the admission is the op author's: another origin presenting it fails */
  make_op(&op, origin, 1, ZERO32, VS_MESH_KIND_ADMIT, aenc, sizeof aenc);
  expect_fact_err(&op, VS_ERR_AUTH);
  aenc[VS_MESH_ADMIT_BYTES - 1] ^= 0x40; /* a flipped signature bit */
  make_op(&op, device, 1, ZERO32, VS_MESH_KIND_ADMIT, aenc, sizeof aenc);
  expect_fact_err(&op, VS_ERR_AUTH);
  aenc[1] ^= 0x01; /* another mesh */
  aenc[VS_MESH_ADMIT_BYTES - 1] ^= 0x40;
  make_op(&op, device, 1, ZERO32, VS_MESH_KIND_ADMIT, aenc, sizeof aenc);
  expect_fact_err(&op, VS_ERR_AUTH);
  /* signed by another invite key than the one it names */
  vs_identity wrong;
  identity_of(0x77, &wrong);
  vs_mesh_admit_pl w = a;
  memcpy(w.invite_pk, wrong.pk, 32);
  assert_err(vs_mesh_admit_sign(&w, &wrong, device), VS_OK);
  memcpy(w.invite_pk, a.invite_pk, 32);
  uint8_t wenc[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&w, wenc);
  make_op(&op, device, 1, ZERO32, VS_MESH_KIND_ADMIT, wenc, sizeof wenc);
  expect_fact_err(&op, VS_ERR_AUTH);
  vs_identity_wipe(&wrong);
  /* payload errors pass through: a create payload under the invite kind */
  make_op(&op, origin, 3, prev, VS_MESH_KIND_INVITE, create, sizeof create);
  expect_fact_err(&op, VS_ERR_TRUNCATED);
  make_op(&op, origin, 3, prev, VS_MESH_KIND_REVOKE, NULL, 0);
  expect_fact_err(&op, VS_ERR_TRUNCATED);
  /* a revoke whose cut signature is not the device's: AUTH (a revoker
   * cannot vouch for an op the device did not sign) */
  {
    vs_mesh_revoke_pl rv;
    sample_revoke(&rv);
    rv.cut_sig[7] ^= 0x01;
    uint8_t renc[VS_MESH_REVOKE_BYTES];
    vs_mesh_revoke_encode(&rv, renc);
    make_op(&op, origin, 3, prev, VS_MESH_KIND_REVOKE, renc, sizeof renc);
    expect_fact_err(&op, VS_ERR_AUTH);
    sample_revoke(&rv);
    rv.cut_seq = 41; /* the signature was for 42 */
    vs_mesh_revoke_encode(&rv, renc);
    make_op(&op, origin, 3, prev, VS_MESH_KIND_REVOKE, renc, sizeof renc);
    expect_fact_err(&op, VS_ERR_AUTH);
  }
  /* mesh.rekey is read since its slice: an invite's payload is no rekey's layout */
  make_op(&op, origin, 3, prev, VS_MESH_KIND_REKEY, ienc, sizeof ienc);
  expect_fact_err(&op, VS_ERR_MALFORMED);
  const uint8_t zero_prev[32] = {0};
  make_op(&op, origin, 1, zero_prev, VS_MESH_KIND_REKEY, ienc, sizeof ienc);
  expect_fact_err(&op, VS_ERR_MALFORMED); /* at seq 1: where no rekey sits */
  /* kinds this build does not read */
  make_op(&op, origin, 3, prev, "mesh.future", ienc, sizeof ienc);
  expect_fact_err(&op, VS_ERR_VERSION);
  make_op(&op, origin, 3, prev, "mesh.", NULL, 0);
  expect_fact_err(&op, VS_ERR_VERSION);
  make_op(&op, origin, 3, prev, "mesh.create2", create, sizeof create);
  expect_fact_err(&op, VS_ERR_VERSION);
  /* NULLs */
  vs_mesh_fact f;
  assert_err(vs_mesh_fact_from_op(NULL, ZERO32, &f), VS_ERR_INVAL);
  assert_err(vs_mesh_fact_from_op(&op, NULL, &f), VS_ERR_INVAL);
  assert_err(vs_mesh_fact_from_op(&op, ZERO32, NULL), VS_ERR_INVAL);
  vs_identity_wipe(&invite);
}

/* ---- the invite token ---- */

static void golden_token(vs_mesh_token *t) {
  memset(t, 0, sizeof *t);
  fill(t->mesh_id, 32, 3, 5);
  fill(t->invite_seed, 32, 1, 0);
  xor_fill(t->inviter, 32, 0x40);
  t->invite_seq = GOLDEN_SEQ;
  fill(t->mesh_key, 32, 11, 0);
  t->addr_count = 1;
  strcpy(t->addrs[0], "127.0.0.1:7400");
}

#define LINE_MAX_BYTES (VS_MESH_TOKEN_CHARS_MAX + 1u)

static void assert_token_equal(const vs_mesh_token *a, const vs_mesh_token *b) {
  assert_memory_equal(a->mesh_id, b->mesh_id, 32);
  assert_memory_equal(a->invite_seed, b->invite_seed, 32);
  assert_memory_equal(a->inviter, b->inviter, 32);
  assert_true(a->invite_seq == b->invite_seq);
  assert_memory_equal(a->mesh_key, b->mesh_key, 32);
  assert_int_equal(a->addr_count, b->addr_count);
  for (uint32_t i = 0; i < a->addr_count; i++) assert_string_equal(a->addrs[i], b->addrs[i]);
}

static void test_member_token_matches_golden(void **state) {
  (void)state;
  vs_mesh_token t, back;
  golden_token(&t);
  char line[LINE_MAX_BYTES];
  size_t n = 0;
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_OK);
  assert_string_equal(line, GOLDEN_TOKEN);
  assert_int_equal(n, strlen(GOLDEN_TOKEN));
  assert_err(vs_mesh_token_decode(GOLDEN_TOKEN, strlen(GOLDEN_TOKEN), &back), VS_OK);
  assert_token_equal(&back, &t);
}

static void test_member_token_roundtrips(void **state) {
  (void)state;
  vs_mesh_token t, back;
  golden_token(&t);
  char line[LINE_MAX_BYTES], again[LINE_MAX_BYTES];
  size_t n = 0, m = 0;
  const char *addrs[] = {"node-1.example.com:1", "[::1]:65535", "10.0.0.2:443", "a:9"};
  for (uint8_t count = 0; count <= 4; count++) {
    t.addr_count = count;
    for (uint8_t i = 0; i < count; i++) strcpy(t.addrs[i], addrs[i]);
    assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_OK);
    assert_true(n <= VS_MESH_TOKEN_CHARS_MAX && strncmp(line, "vix1-", 5) == 0);
    assert_err(vs_mesh_token_decode(line, n, &back), VS_OK);
    assert_token_equal(&back, &t);
    assert_err(vs_mesh_token_encode(&back, again, sizeof again, &m), VS_OK);
    assert_string_equal(again, line);
  }
  /* the longest host fits once */
  t.addr_count = 1;
  memset(t.addrs[0], 'h', 253);
  strcpy(t.addrs[0] + 253, ":65535");
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_OK);
  assert_err(vs_mesh_token_decode(line, n, &back), VS_OK);
  assert_token_equal(&back, &t);
  /* BUFSIZE: one byte short of line + NUL */
  assert_err(vs_mesh_token_encode(&t, line, n, &m), VS_ERR_BUFSIZE);
  assert_err(vs_mesh_token_encode(&t, line, n + 1, &m), VS_OK);
}

static void test_member_token_encode_refuses_bad_addresses(void **state) {
  (void)state;
  vs_mesh_token t;
  golden_token(&t);
  char line[LINE_MAX_BYTES];
  size_t n = 0;
  const char *bad[] = {"host", "host:", ":80", "host:0", "host:65536", "host:080", "host:8o", "ho st:80",
                       "a:b:80", "[::1:80", "[]:80", "[::g]:80", "host:123456", "h_st:80", "-:"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    strcpy(t.addrs[0], bad[i]);
    assert_false(vs_mesh_addr_valid(bad[i], strlen(bad[i])));
    assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_ERR_INVAL);
  }
  /* an overlong host: 254 characters */
  memset(t.addrs[0], 'h', 254);
  strcpy(t.addrs[0] + 254, ":80");
  assert_false(vs_mesh_addr_valid(t.addrs[0], strlen(t.addrs[0])));
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_ERR_INVAL);
  /* five addresses */
  golden_token(&t);
  t.addr_count = 5;
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_ERR_INVAL);
  /* four long hosts pass the line limit */
  t.addr_count = 4;
  for (int i = 0; i < 4; i++) {
    memset(t.addrs[i], 'h', 200);
    strcpy(t.addrs[i] + 200, ":80");
  }
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_ERR_TOO_LARGE);
  golden_token(&t);
  t.invite_seq = 1;
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_ERR_INVAL);
  assert_true(vs_mesh_addr_valid("[fe80::1]:7400", 14));
}

/* A line from a hand-made binary body (the check appended), for fields the
 * encoder would never write. */
static size_t line_of(const uint8_t *body, size_t n, char line[LINE_MAX_BYTES]) {
  uint8_t bin[1024];
  assert_true(n + 4 <= sizeof bin);
  memcpy(bin, body, n);
  uint8_t h[32];
  crypto_generichash(h, sizeof h, body, n, NULL, 0);
  memcpy(bin + n, h, 4);
  memcpy(line, "vix1-", 5);
  sodium_bin2base64(line + 5, LINE_MAX_BYTES - 5, bin, n + 4, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return strlen(line);
}

/* The golden body (138 fixed bytes and one address of 9 + 2 + 1 bytes). */
static size_t golden_body(uint8_t body[512]) {
  char line[LINE_MAX_BYTES];
  vs_mesh_token t;
  golden_token(&t);
  size_t n = 0, bin_bytes = 0;
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_OK);
  assert_int_equal(sodium_base642bin(body, 512, line + 5, n - 5, NULL, &bin_bytes, NULL,
                                     sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                   0);
  assert_int_equal(bin_bytes, 138 + 12 + 4);
  return bin_bytes - 4;
}

static void expect_token_err(const char *line, size_t n, vs_err want) {
  vs_mesh_token t;
  memset(&t, 0x3c, sizeof t);
  assert_err(vs_mesh_token_decode(line, n, &t), want);
  vs_mesh_token zero;
  memset(&zero, 0, sizeof zero);
  assert_memory_equal(&t, &zero, sizeof t); /* no secret half-written */
}

static void test_member_token_decode_refuses_bad_fields(void **state) {
  (void)state;
  uint8_t body[512], b[512];
  size_t n = golden_body(body);
  char line[LINE_MAX_BYTES];
  /* version */
  memcpy(b, body, n);
  b[0] = 2;
  expect_token_err(line, line_of(b, n, line), VS_ERR_VERSION);
  /* invite seq 1 */
  memcpy(b, body, n);
  memset(b + 97, 0, 8);
  b[97] = 1;
  expect_token_err(line, line_of(b, n, line), VS_ERR_MALFORMED);
  /* five addresses (four more of "a:1" appended) */
  memcpy(b, body, n);
  b[137] = 5;
  size_t m = n;
  for (int i = 0; i < 4; i++) {
    b[m++] = 1;
    b[m++] = 'a';
    b[m++] = 1;
    b[m++] = 0;
  }
  expect_token_err(line, line_of(b, m, line), VS_ERR_MALFORMED);
  b[137] = 4; /* four of them but five present: trailing */
  expect_token_err(line, line_of(b, m, line), VS_ERR_TRAILING);
  /* port 0 */
  memcpy(b, body, n);
  b[n - 2] = 0;
  b[n - 1] = 0;
  expect_token_err(line, line_of(b, n, line), VS_ERR_MALFORMED);
  /* a host of 254 bytes */
  memcpy(b, body, 138);
  b[138] = 254;
  memset(b + 139, 'h', 254);
  b[139 + 254] = 80;
  b[140 + 254] = 0;
  expect_token_err(line, line_of(b, 141 + 254, line), VS_ERR_MALFORMED);
  /* an empty host, a bad host character */
  memcpy(b, body, n);
  b[138] = 0;
  expect_token_err(line, line_of(b, n, line), VS_ERR_MALFORMED);
  memcpy(b, body, n);
  b[140] = ':';
  expect_token_err(line, line_of(b, n, line), VS_ERR_MALFORMED);
  /* every truncation of the body (the check recomputed) */
  for (size_t len = 1; len < n; len++) {
    size_t k = line_of(body, len, line);
    expect_token_err(line, k, VS_ERR_TRUNCATED);
  }
  /* a trailing byte */
  memcpy(b, body, n);
  b[n] = 0;
  expect_token_err(line, line_of(b, n + 1, line), VS_ERR_TRAILING);
  /* no body at all, nothing after the prefix, no prefix, a later prefix, too long */
  expect_token_err("vix1-", 5, VS_ERR_TRUNCATED);
  expect_token_err("", 0, VS_ERR_MALFORMED);
  expect_token_err("vix", 3, VS_ERR_MALFORMED);
  expect_token_err("VIX1-AAAA", 9, VS_ERR_MALFORMED);
  expect_token_err(GOLDEN_TOKEN + 1, strlen(GOLDEN_TOKEN) - 1, VS_ERR_MALFORMED);
  char v2[LINE_MAX_BYTES];
  strcpy(v2, GOLDEN_TOKEN);
  v2[3] = '2';
  expect_token_err(v2, strlen(v2), VS_ERR_VERSION);
  expect_token_err("vix12-AAAA", 10, VS_ERR_VERSION);
  expect_token_err("vix1", 4, VS_ERR_MALFORMED);
  expect_token_err("vix-AAAA", 8, VS_ERR_MALFORMED);
  expect_token_err("vix1x-AAAA", 10, VS_ERR_MALFORMED);
  char big[VS_MESH_TOKEN_CHARS_MAX + 2];
  memset(big, 'A', sizeof big);
  memcpy(big, "vix1-", 5);
  expect_token_err(big, sizeof big, VS_ERR_TOO_LARGE);
  /* whitespace is the CLI's to trim */
  strcpy(v2, GOLDEN_TOKEN);
  strcat(v2, "\n");
  expect_token_err(v2, strlen(v2), VS_ERR_MALFORMED);
  vs_mesh_token t;
  assert_err(vs_mesh_token_decode(NULL, 0, &t), VS_ERR_INVAL);
  assert_err(vs_mesh_token_decode(GOLDEN_TOKEN, 5, NULL), VS_ERR_INVAL);
}

/* Any one mistyped character is caught: by the check, or by base64url. */
static void test_member_token_refuses_every_changed_character(void **state) {
  (void)state;
  const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t n = strlen(GOLDEN_TOKEN);
  char line[LINE_MAX_BYTES];
  uint32_t corrupt = 0;
  for (size_t i = 5; i < n; i++) {
    for (size_t j = 0; j < 64; j++) {
      if (alphabet[j] == GOLDEN_TOKEN[i]) continue;
      strcpy(line, GOLDEN_TOKEN);
      line[i] = alphabet[j];
      vs_mesh_token t;
      vs_err err = vs_mesh_token_decode(line, n, &t);
      /* the last character carries 2 bits: most changes leave bits set past the end */
      assert_true(err == VS_ERR_CORRUPT || (i == n - 1 && err == VS_ERR_MALFORMED));
      corrupt += err == VS_ERR_CORRUPT;
    }
  }
  assert_true(corrupt >= (n - 6) * 63);
}

/* ---- hostile input: every 1-byte mutation ---- */

/* Every byte value at every position of `enc`: refused, or decodes to what
 * re-encodes to exactly the mutated bytes. */
static void mutate_payload(const uint8_t *enc, size_t n, int which) {
  uint8_t buf[VS_MESH_ADMIT_BYTES], again[VS_MESH_ADMIT_BYTES];
  assert_true(n <= sizeof buf);
  uint32_t accepted = 0;
  for (size_t pos = 0; pos < n; pos++) {
    for (unsigned v = 0; v < 256; v++) {
      memcpy(buf, enc, n);
      buf[pos] = (uint8_t)v;
      vs_err err;
      switch (which) {
        case VS_MESH_CREATE:
          err = vs_mesh_create_decode(buf, n);
          if (err == VS_OK) vs_mesh_create_encode(again);
          break;
        case VS_MESH_INVITE: {
          vs_mesh_invite_pl x;
          err = vs_mesh_invite_decode(buf, n, &x);
          if (err == VS_OK) vs_mesh_invite_encode(&x, again);
          break;
        }
        case VS_MESH_ADMIT: {
          vs_mesh_admit_pl x;
          err = vs_mesh_admit_decode(buf, n, &x);
          if (err == VS_OK) vs_mesh_admit_encode(&x, again);
          break;
        }
        default: {
          vs_mesh_revoke_pl x;
          err = vs_mesh_revoke_decode(buf, n, &x);
          if (err == VS_OK) vs_mesh_revoke_encode(&x, again);
          break;
        }
      }
      if (err == VS_OK) {
        assert_memory_equal(again, buf, n);
        accepted++;
      } else {
        assert_true(err == VS_ERR_VERSION || err == VS_ERR_MALFORMED);
      }
    }
  }
  assert_true(accepted > 0);
}

static void test_member_payload_mutations_refused_or_canonical(void **state) {
  (void)state;
  uint8_t create[VS_MESH_CREATE_BYTES], ienc[VS_MESH_INVITE_BYTES], aenc[VS_MESH_ADMIT_BYTES],
      renc[VS_MESH_REVOKE_BYTES];
  vs_mesh_create_encode(create);
  vs_mesh_invite_pl inv;
  sample_invite(&inv);
  vs_mesh_invite_encode(&inv, ienc);
  vs_mesh_admit_pl a;
  uint8_t device[32];
  vs_identity invite;
  golden_admit(&a, device, &invite);
  vs_mesh_admit_encode(&a, aenc);
  vs_mesh_revoke_pl r;
  sample_revoke(&r);
  vs_mesh_revoke_encode(&r, renc);
  mutate_payload(create, sizeof create, VS_MESH_CREATE);
  mutate_payload(ienc, sizeof ienc, VS_MESH_INVITE);
  mutate_payload(aenc, sizeof aenc, VS_MESH_ADMIT);
  mutate_payload(renc, sizeof renc, VS_MESH_REVOKE);
  /* an admit op mutated anywhere in its payload: a fact only if it still
   * verifies, which for a changed signed field it never does */
  vs_op op;
  uint8_t hash[32] = {0};
  for (size_t pos = 1; pos < sizeof aenc; pos++) {
    uint8_t buf[VS_MESH_ADMIT_BYTES];
    memcpy(buf, aenc, sizeof buf);
    buf[pos] ^= 0x01;
    make_op(&op, device, 1, ZERO32, VS_MESH_KIND_ADMIT, buf, sizeof buf);
    vs_mesh_fact f;
    vs_err err = vs_mesh_fact_from_op(&op, hash, &f);
    assert_true(err == VS_ERR_AUTH || err == VS_ERR_MALFORMED);
  }
  vs_identity_wipe(&invite);
}

static void mutate_token(const char *line, size_t n) {
  char buf[LINE_MAX_BYTES], again[LINE_MAX_BYTES];
  assert_true(n < sizeof buf);
  uint32_t accepted = 0;
  for (size_t pos = 0; pos < n; pos++) {
    for (unsigned v = 0; v < 256; v++) {
      memcpy(buf, line, n);
      buf[pos] = (char)v;
      vs_mesh_token t;
      vs_err err = vs_mesh_token_decode(buf, n, &t);
      if (err != VS_OK) continue;
      size_t m = 0;
      assert_err(vs_mesh_token_encode(&t, again, sizeof again, &m), VS_OK);
      assert_int_equal(m, n);
      assert_memory_equal(again, buf, n);
      accepted++;
    }
    /* and every truncation */
    vs_mesh_token t;
    assert_true(vs_mesh_token_decode(line, pos, &t) != VS_OK);
  }
  assert_true(accepted == n); /* only the unchanged line itself, once per position */
}

static void test_member_token_mutations_refused_or_canonical(void **state) {
  (void)state;
  mutate_token(GOLDEN_TOKEN, strlen(GOLDEN_TOKEN));
  vs_mesh_token t;
  golden_token(&t);
  t.addr_count = 4;
  strcpy(t.addrs[1], "[::1]:1");
  strcpy(t.addrs[2], "example.org:65535");
  strcpy(t.addrs[3], "x:2");
  char line[LINE_MAX_BYTES];
  size_t n = 0;
  assert_err(vs_mesh_token_encode(&t, line, sizeof line, &n), VS_OK);
  mutate_token(line, n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_member_create_roundtrip_and_strictness),
      cmocka_unit_test(test_member_invite_roundtrip_layout),
      cmocka_unit_test(test_member_invite_refuses_bad_lengths_versions_roles),
      cmocka_unit_test(test_member_admit_roundtrip_layout),
      cmocka_unit_test(test_member_admit_refuses_bad_invite_seq),
      cmocka_unit_test(test_member_admit_signature_matches_golden),
      cmocka_unit_test(test_member_admit_verify_refuses_forgeries),
      cmocka_unit_test(test_member_revoke_roundtrip_and_cut_rules),
      cmocka_unit_test(test_member_kind_reserved),
      cmocka_unit_test(test_member_fact_from_each_kind),
      cmocka_unit_test(test_member_fact_refuses_bad_ops),
      cmocka_unit_test(test_member_fact_bytes_are_canonical),
      cmocka_unit_test(test_member_token_matches_golden),
      cmocka_unit_test(test_member_token_roundtrips),
      cmocka_unit_test(test_member_token_encode_refuses_bad_addresses),
      cmocka_unit_test(test_member_token_decode_refuses_bad_fields),
      cmocka_unit_test(test_member_token_refuses_every_changed_character),
      cmocka_unit_test(test_member_payload_mutations_refused_or_canonical),
      cmocka_unit_test(test_member_token_mutations_refused_or_canonical),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
