/* Fuzz target: the membership decoders (issue 16, src/member.h) with
 * hostile bytes. They read what a peer sends (mesh.* op payloads inside
 * replicated ops) and what a person pastes (the invite token), so every one
 * must refuse garbage without reading past its input, and be strict.
 *
 * The first input byte picks the decoder (mod 8); the rest is its input:
 *   0  vs_mesh_create_decode       4  vs_mesh_token_decode (the raw line)
 *   1  vs_mesh_invite_decode       5  a token's binary form: the target adds
 *   2  vs_mesh_admit_decode           the right check, base64url and "vix1-",
 *   3  vs_mesh_revoke_decode          so the fuzzer gets past the 4-byte check
 *   6  vs_op_decode, then vs_mesh_fact_from_op on the op it gives
 *   7  an op built field by field (byte 1: kind, byte 2: flags, 32 bytes of
 *      origin, then the payload), then vs_mesh_fact_from_op: it reaches the
 *      payload decoders through the fact path without a valid op encoding.
 *
 * What must hold, checked after every input (a failure aborts: a crash to
 * the fuzzer, in any build type, NDEBUG included):
 * - payload decoders: the error order member.h gives (no byte TRUNCATED,
 *   then the version, then the exact length); on VS_OK the payload
 *   re-encodes to the same bytes; on error *out is untouched;
 * - the token: on VS_OK it re-encodes to the same line and its addresses
 *   are valid; on error *out is all zero (no secret half-written); with the
 *   right check (mode 5) the error is never VS_ERR_CORRUPT;
 * - facts: a data kind is VS_ERR_NOTFOUND; on VS_OK the fact carries the
 *   op's origin, seq, hlc and hash, the op's target is "mesh", its payload
 *   re-encodes from the fact, create/admit sit at seq 1 and invite/revoke
 *   after it, an admit's signature verifies for the op's origin; on error
 *   *out is untouched; the same call twice gives the same answer.
 *
 * Built two ways, like tests/fuzz_node_frame.c: with clang
 * -fsanitize=fuzzer (VS_FUZZ=ON) for libFuzzer, and with tests/fuzz_driver.c,
 * which replays tests/fuzz/member (ctest fuzz_member_corpus). Built with
 * FUZZ_MEMBER_SEEDS it is instead the program that writes that corpus's
 * seeds (valid encodings of every kind, signed with fixed keys, and near
 * misses): `build/fuzz_member_seeds tests/fuzz/member`. */
#define _XOPEN_SOURCE 700

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "member.h"
#include "vixsync/op.h"

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "fuzz_member: %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
      abort();                                                                   \
    }                                                                            \
  } while (0)

#define SENTINEL 0xa5
#define TOKEN_CHECK_BYTES 4u
/* The binary a line of VS_MESH_TOKEN_CHARS_MAX can carry, and a little more
 * (to reach VS_ERR_TOO_LARGE). */
#define TOKEN_BIN_FUZZ_MAX 800u
#define TOKEN_LINE_FUZZ_MAX (VS_MESH_TOKEN_CHARS_MAX + 64u)

static bool all_bytes(const void *p, size_t n, uint8_t b) {
  const uint8_t *q = p;
  for (size_t i = 0; i < n; i++)
    if (q[i] != b) return false;
  return true;
}

/* The order of the checks every payload decoder shares (member.h). */
static void check_head(const uint8_t *in, size_t n, size_t want, vs_err err) {
  if (n == 0) CHECK(err == VS_ERR_TRUNCATED);
  else if (in[0] != VS_MESH_PAYLOAD_VERSION) CHECK(err == VS_ERR_VERSION);
  else if (n < want) CHECK(err == VS_ERR_TRUNCATED);
  else if (n > want) CHECK(err == VS_ERR_TRAILING);
  else CHECK(err == VS_OK || err == VS_ERR_MALFORMED);
}

static void fuzz_create(const uint8_t *in, size_t n) {
  vs_err err = vs_mesh_create_decode(n > 0 ? in : NULL, n);
  check_head(in, n, VS_MESH_CREATE_BYTES, err);
  if (err == VS_OK) {
    uint8_t enc[VS_MESH_CREATE_BYTES];
    vs_mesh_create_encode(enc);
    CHECK(memcmp(enc, in, n) == 0);
  }
}

static void fuzz_invite(const uint8_t *in, size_t n) {
  vs_mesh_invite_pl v;
  memset(&v, SENTINEL, sizeof v);
  vs_err err = vs_mesh_invite_decode(n > 0 ? in : NULL, n, &v);
  check_head(in, n, VS_MESH_INVITE_BYTES, err);
  if (err != VS_OK) {
    CHECK(all_bytes(&v, sizeof v, SENTINEL));
    return;
  }
  CHECK(v.role >= VS_MESH_READER && v.role <= VS_MESH_ADMIN);
  uint8_t enc[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&v, enc);
  CHECK(memcmp(enc, in, n) == 0);
}

static void fuzz_admit(const uint8_t *in, size_t n) {
  vs_mesh_admit_pl v;
  memset(&v, SENTINEL, sizeof v);
  vs_err err = vs_mesh_admit_decode(n > 0 ? in : NULL, n, &v);
  check_head(in, n, VS_MESH_ADMIT_BYTES, err);
  if (err != VS_OK) {
    CHECK(all_bytes(&v, sizeof v, SENTINEL));
    return;
  }
  CHECK(v.invite_seq >= 2u && v.invite_seq <= VS_OP_SEQ_MAX);
  uint8_t enc[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&v, enc);
  CHECK(memcmp(enc, in, n) == 0);
}

static void fuzz_revoke(const uint8_t *in, size_t n) {
  vs_mesh_revoke_pl v;
  memset(&v, SENTINEL, sizeof v);
  vs_err err = vs_mesh_revoke_decode(n > 0 ? in : NULL, n, &v);
  check_head(in, n, VS_MESH_REVOKE_BYTES, err);
  if (err != VS_OK) {
    CHECK(all_bytes(&v, sizeof v, SENTINEL));
    return;
  }
  CHECK(v.cut_seq <= VS_OP_SEQ_MAX);
  CHECK((v.cut_seq == 0) == all_bytes(v.cut_hash, VS_HASH_BYTES, 0));
  uint8_t enc[VS_MESH_REVOKE_BYTES];
  vs_mesh_revoke_encode(&v, enc);
  CHECK(memcmp(enc, in, n) == 0);
}

/* Decode a line; returns the error for the caller's own checks. */
static vs_err fuzz_token_line(const char *line, size_t n) {
  static vs_mesh_token t; /* ~1 KiB: off the stack */
  memset(&t, SENTINEL, sizeof t);
  vs_err err = vs_mesh_token_decode(line, n, &t);
  if (n > VS_MESH_TOKEN_CHARS_MAX) CHECK(err == VS_ERR_TOO_LARGE);
  if (err != VS_OK) {
    CHECK(all_bytes(&t, sizeof t, 0));
    return err;
  }
  CHECK(n >= sizeof VS_MESH_TOKEN_PREFIX - 1u && memcmp(line, VS_MESH_TOKEN_PREFIX, sizeof VS_MESH_TOKEN_PREFIX - 1u) == 0);
  CHECK(t.addr_count <= VS_MESH_TOKEN_ADDRS_MAX);
  CHECK(t.invite_seq >= 2u && t.invite_seq <= VS_OP_SEQ_MAX);
  for (uint32_t i = 0; i < t.addr_count; i++) {
    size_t a = strnlen(t.addrs[i], VS_MESH_TOKEN_ADDR_CHARS_MAX + 1u);
    CHECK(a <= VS_MESH_TOKEN_ADDR_CHARS_MAX);
    CHECK(vs_mesh_addr_valid(t.addrs[i], a));
  }
  static char again[VS_MESH_TOKEN_CHARS_MAX + 1u];
  size_t again_chars = 0;
  CHECK(vs_mesh_token_encode(&t, again, sizeof again, &again_chars) == VS_OK);
  CHECK(again_chars == n && memcmp(again, line, n) == 0);
  return err;
}

static void fuzz_token(const uint8_t *in, size_t n) {
  (void)fuzz_token_line((const char *)in, n);
}

/* The binary as the fuzzer gives it, with the check it lacks, as a line. */
static void fuzz_token_bin(const uint8_t *in, size_t n) {
  if (n > TOKEN_BIN_FUZZ_MAX) n = TOKEN_BIN_FUZZ_MAX;
  uint8_t bin[TOKEN_BIN_FUZZ_MAX + TOKEN_CHECK_BYTES];
  if (n > 0) memcpy(bin, in, n);
  uint8_t h[VS_HASH_BYTES];
  CHECK(crypto_generichash(h, sizeof h, bin, n, NULL, 0) == 0);
  memcpy(bin + n, h, TOKEN_CHECK_BYTES);
  static char line[sizeof VS_MESH_TOKEN_PREFIX - 1u +
                   sodium_base64_ENCODED_LEN(TOKEN_BIN_FUZZ_MAX + TOKEN_CHECK_BYTES,
                                             sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  const size_t prefix = sizeof VS_MESH_TOKEN_PREFIX - 1u;
  memcpy(line, VS_MESH_TOKEN_PREFIX, prefix);
  sodium_bin2base64(line + prefix, sizeof line - prefix, bin, n + TOKEN_CHECK_BYTES,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  size_t chars = strlen(line);
  vs_err err = fuzz_token_line(line, chars);
  if (chars <= VS_MESH_TOKEN_CHARS_MAX) CHECK(err != VS_ERR_CORRUPT && err != VS_ERR_TOO_LARGE);
}

/* vs_mesh_fact_from_op on one op, and what its answer promises. */
static void check_fact(const vs_op *op, const uint8_t hash[VS_HASH_BYTES]) {
  vs_mesh_fact f, g;
  memset(&f, SENTINEL, sizeof f);
  memset(&g, SENTINEL, sizeof g);
  vs_err err = vs_mesh_fact_from_op(op, hash, &f);
  CHECK(vs_mesh_fact_from_op(op, hash, &g) == err);
  CHECK(memcmp(&f, &g, sizeof f) == 0); /* deterministic, padding included */
  bool reserved = vs_mesh_kind_reserved(op->kind, op->kind_bytes);
  if (!reserved) CHECK(err == VS_ERR_NOTFOUND);
  if (err != VS_OK) {
    CHECK(all_bytes(&f, sizeof f, SENTINEL));
    return;
  }
  CHECK(op->target_bytes == 4u && memcmp(op->target, VS_MESH_TARGET, 4u) == 0);
  CHECK(memcmp(f.origin, op->origin, VS_ORIGIN_BYTES) == 0);
  CHECK(f.seq == op->seq && f.hlc == op->hlc);
  CHECK(memcmp(f.hash, hash, VS_HASH_BYTES) == 0);
  uint8_t enc[VS_MESH_ADMIT_BYTES]; /* the largest payload */
  size_t enc_bytes = 0;
  const char *kind = NULL;
  switch (f.kind) {
    case VS_MESH_CREATE:
      kind = VS_MESH_KIND_CREATE;
      vs_mesh_create_encode(enc);
      enc_bytes = VS_MESH_CREATE_BYTES;
      CHECK(op->seq == 1u && all_bytes(op->prev, VS_HASH_BYTES, 0));
      CHECK(all_bytes(&f.u, sizeof f.u, 0));
      break;
    case VS_MESH_INVITE:
      kind = VS_MESH_KIND_INVITE;
      vs_mesh_invite_encode(&f.u.invite, enc);
      enc_bytes = VS_MESH_INVITE_BYTES;
      CHECK(op->seq != 1u);
      break;
    case VS_MESH_ADMIT:
      kind = VS_MESH_KIND_ADMIT;
      vs_mesh_admit_encode(&f.u.admit, enc);
      enc_bytes = VS_MESH_ADMIT_BYTES;
      CHECK(op->seq == 1u && all_bytes(op->prev, VS_HASH_BYTES, 0));
      CHECK(vs_mesh_admit_verify(&f.u.admit, op->origin));
      break;
    case VS_MESH_REVOKE:
      kind = VS_MESH_KIND_REVOKE;
      vs_mesh_revoke_encode(&f.u.revoke, enc);
      enc_bytes = VS_MESH_REVOKE_BYTES;
      CHECK(op->seq != 1u);
      break;
    default: CHECK(0 && "a fact of no known kind"); break;
  }
  CHECK(op->kind_bytes == strlen(kind) && memcmp(op->kind, kind, op->kind_bytes) == 0);
  CHECK(op->payload_bytes == enc_bytes && memcmp(op->payload, enc, enc_bytes) == 0);
}

static void fuzz_op_bytes(const uint8_t *in, size_t n) {
  vs_op op;
  if (vs_op_decode(in, n, &op) != VS_OK) return;
  uint8_t hash[VS_HASH_BYTES];
  vs_op_hash_encoded(in, n, hash);
  check_fact(&op, hash);
}

static const char *const KINDS[] = {VS_MESH_KIND_CREATE, VS_MESH_KIND_INVITE, VS_MESH_KIND_ADMIT, VS_MESH_KIND_REVOKE,
                                    VS_MESH_KIND_REKEY,  "mesh.",             "mesh",             "put"};
#define KIND_COUNT (sizeof KINDS / sizeof KINDS[0])

/* byte 0: kind (mod KIND_COUNT); byte 1: flags (bit 0 seq 1, else 2 + the
 * high bits; bit 1 target "mesh", else "mesh!"; bit 2 a non-zero prev);
 * 32 bytes of origin (zero where the input is short); the payload. */
static void fuzz_op_fields(const uint8_t *in, size_t n) {
  static const uint8_t target_ok[] = "mesh", target_bad[] = "mesh!";
  uint8_t k = n > 0 ? in[0] : 0, flags = n > 1 ? in[1] : 0;
  size_t at = n < 2 ? n : 2;
  vs_op op;
  memset(&op, 0, sizeof op);
  size_t take = n - at < VS_ORIGIN_BYTES ? n - at : VS_ORIGIN_BYTES;
  if (take > 0) memcpy(op.origin, in + at, take);
  at += take;
  op.seq = (flags & 1u) ? 1u : 2u + (flags >> 3);
  op.hlc = 1700000000000ull << 16;
  if (flags & 4u) op.prev[0] = 1;
  const char *kind = KINDS[k % KIND_COUNT];
  op.kind_bytes = (uint8_t)strlen(kind);
  memcpy(op.kind, kind, op.kind_bytes);
  op.target = (flags & 2u) ? target_ok : target_bad;
  op.target_bytes = (flags & 2u) ? 4u : 5u;
  op.payload = n > at ? in + at : NULL;
  op.payload_bytes = (uint32_t)(n - at);
  uint8_t hash[VS_HASH_BYTES];
  memset(hash, 0x5a, sizeof hash);
  check_fact(&op, hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  static bool ready;
  if (!ready) {
    CHECK(sodium_init() >= 0);
    ready = true;
  }
  const uint8_t *in = data + 1;
  size_t n = size - 1;
  if (n > (1u << 20)) n = 1u << 20; /* no decoder here reads more than a few KiB */
  switch (data[0] % 8u) {
    case 0: fuzz_create(in, n); break;
    case 1: fuzz_invite(in, n); break;
    case 2: fuzz_admit(in, n); break;
    case 3: fuzz_revoke(in, n); break;
    case 4: fuzz_token(in, n); break;
    case 5: fuzz_token_bin(in, n); break;
    case 6: fuzz_op_bytes(in, n); break;
    default: fuzz_op_fields(in, n); break;
  }
  return 0;
}

#ifdef FUZZ_MEMBER_SEEDS
/* ---- the seeds: valid encodings of every decoder's input, and near misses ---- */

static const char *g_dir;
static unsigned g_written;

static void seed(const char *name, uint8_t mode, const void *body, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *fp = fopen(path, "wb");
  CHECK(fp != NULL);
  CHECK(fputc(mode, fp) == mode);
  CHECK(n == 0 || fwrite(body, 1, n, fp) == n);
  CHECK(fclose(fp) == 0);
  static uint8_t input[1u + VS_OP_ENCODED_BYTES_MAX];
  CHECK(n < sizeof input);
  input[0] = mode;
  if (n > 0) memcpy(input + 1, body, n);
  LLVMFuzzerTestOneInput(input, n + 1u); /* every seed passes the target's checks */
  g_written++;
}

static void identity(uint8_t b, vs_identity *id) {
  uint8_t s[VS_SEED_BYTES];
  memset(s, b, sizeof s);
  CHECK(vs_identity_from_seed(s, id) == VS_OK);
}

/* An op's encoding as a mode-6 seed, and its fields as a mode-7 seed. */
static void seed_op(const char *name, const vs_op *op) {
  uint8_t buf[VS_OP_ENCODED_BYTES_MAX];
  size_t n = 0;
  CHECK(vs_op_encode(op, buf, sizeof buf, &n) == VS_OK);
  char full[256];
  snprintf(full, sizeof full, "op-%s", name);
  seed(full, 6, buf, n);
  uint8_t f[2 + VS_ORIGIN_BYTES + VS_MESH_ADMIT_BYTES + 8];
  size_t k = 0;
  for (size_t i = 0; i < KIND_COUNT; i++)
    if (strlen(KINDS[i]) == op->kind_bytes && memcmp(KINDS[i], op->kind, op->kind_bytes) == 0) k = i;
  uint8_t flags = (uint8_t)((op->seq == 1u ? 1u : (uint8_t)((op->seq - 2u) << 3)) | 2u);
  f[0] = (uint8_t)k;
  f[1] = flags;
  memcpy(f + 2, op->origin, VS_ORIGIN_BYTES);
  CHECK(op->payload_bytes <= sizeof f - 2 - VS_ORIGIN_BYTES);
  if (op->payload_bytes > 0) memcpy(f + 2 + VS_ORIGIN_BYTES, op->payload, op->payload_bytes);
  snprintf(full, sizeof full, "fields-%s", name);
  seed(full, 7, f, 2 + VS_ORIGIN_BYTES + op->payload_bytes);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  CHECK(sodium_init() >= 0);
  vs_identity genesis, inviter, invite_key, device;
  identity(0x11, &genesis);
  identity(0x22, &inviter);
  identity(0x33, &invite_key);
  identity(0x44, &device);

  /* payloads */
  uint8_t create[VS_MESH_CREATE_BYTES];
  vs_mesh_create_encode(create);
  seed("create", 0, create, sizeof create);
  uint8_t bad_role[VS_MESH_CREATE_BYTES] = {1, 2};
  seed("create-writer", 0, bad_role, sizeof bad_role);
  uint8_t v2[3] = {2, 3, 0};
  seed("create-v2", 0, v2, sizeof v2);

  uint8_t invite[VS_MESH_INVITE_BYTES];
  for (uint8_t role = VS_MESH_READER; role <= VS_MESH_ADMIN; role++) {
    vs_mesh_invite_pl iv;
    memset(&iv, 0, sizeof iv);
    memcpy(iv.invite_pk, invite_key.pk, VS_ORIGIN_BYTES);
    iv.role = role;
    iv.expires_hlc = role == VS_MESH_ADMIN ? UINT64_MAX : (1700000000000ull + role) << 16;
    vs_mesh_invite_encode(&iv, invite);
    char name[32];
    snprintf(name, sizeof name, "invite-role%u", (unsigned)role);
    seed(name, 1, invite, sizeof invite);
  }
  seed("invite-short", 1, invite, sizeof invite - 1);

  vs_op gop;
  CHECK(vs_op_init(&gop, genesis.pk, 1, 1700000000000ull << 16, (const uint8_t[VS_HASH_BYTES]){0},
                   VS_MESH_KIND_CREATE, (const uint8_t *)VS_MESH_TARGET, 4, create, sizeof create) == VS_OK);
  uint8_t mesh_id[VS_HASH_BYTES];
  CHECK(vs_op_hash(&gop, mesh_id) == VS_OK);

  vs_mesh_admit_pl ad;
  memset(&ad, 0, sizeof ad);
  memcpy(ad.mesh_id, mesh_id, VS_HASH_BYTES);
  memcpy(ad.inviter, inviter.pk, VS_ORIGIN_BYTES);
  ad.invite_seq = 2;
  memcpy(ad.invite_pk, invite_key.pk, VS_ORIGIN_BYTES);
  CHECK(vs_mesh_admit_sign(&ad, &invite_key, device.pk) == VS_OK);
  uint8_t admit[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&ad, admit);
  seed("admit", 2, admit, sizeof admit);
  uint8_t admit_long[VS_MESH_ADMIT_BYTES + 1];
  memcpy(admit_long, admit, sizeof admit);
  admit_long[VS_MESH_ADMIT_BYTES] = 0;
  seed("admit-trailing", 2, admit_long, sizeof admit_long);

  uint8_t revoke[VS_MESH_REVOKE_BYTES];
  vs_mesh_revoke_pl rv;
  memset(&rv, 0, sizeof rv);
  memcpy(rv.device_pk, device.pk, VS_ORIGIN_BYTES);
  vs_mesh_revoke_encode(&rv, revoke);
  seed("revoke-cut0", 3, revoke, sizeof revoke);
  rv.cut_seq = VS_OP_SEQ_MAX;
  memset(rv.cut_hash, 0x77, VS_HASH_BYTES);
  vs_mesh_revoke_encode(&rv, revoke);
  seed("revoke-cutmax", 3, revoke, sizeof revoke);

  /* tokens */
  static vs_mesh_token tk;
  memset(&tk, 0, sizeof tk);
  memcpy(tk.mesh_id, mesh_id, VS_HASH_BYTES);
  memset(tk.invite_seed, 0x33, VS_SEED_BYTES);
  memcpy(tk.inviter, inviter.pk, VS_ORIGIN_BYTES);
  tk.invite_seq = 2;
  memset(tk.mesh_key, 0x55, VS_MESH_KEY_BYTES);
  static const char *const addrs[] = {"node-a.example.org:7400", "192.168.1.20:65535", "[fe80::1:2]:1",
                                      "h:7400"};
  for (uint8_t count = 0; count <= VS_MESH_TOKEN_ADDRS_MAX; count++) {
    tk.addr_count = count;
    if (count > 0) snprintf(tk.addrs[count - 1], sizeof tk.addrs[0], "%s", addrs[count - 1]);
    char line[VS_MESH_TOKEN_CHARS_MAX + 1];
    size_t chars = 0;
    CHECK(vs_mesh_token_encode(&tk, line, sizeof line, &chars) == VS_OK);
    char name[32];
    snprintf(name, sizeof name, "token-%uaddrs", (unsigned)count);
    seed(name, 4, line, chars);
    /* its binary, without the check, for mode 5 */
    uint8_t bin[TOKEN_BIN_FUZZ_MAX];
    size_t bin_bytes = 0;
    CHECK(sodium_base642bin(bin, sizeof bin, line + 5, chars - 5, NULL, &bin_bytes, NULL,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
    CHECK(bin_bytes > TOKEN_CHECK_BYTES);
    snprintf(name, sizeof name, "tokenbin-%uaddrs", (unsigned)count);
    seed(name, 5, bin, bin_bytes - TOKEN_CHECK_BYTES);
    if (count == 1) {
      line[3] = '2'; /* vix2-: a later version */
      seed("token-vix2", 4, line, chars);
      line[3] = '1';
      line[chars - 1] = line[chars - 1] == 'A' ? 'B' : 'A'; /* a mistyped last character */
      seed("token-typo", 4, line, chars);
    }
  }

  /* ops: every kind at its place in the chain, and at the wrong one */
  seed_op("create", &gop);
  vs_op op;
  uint8_t prev[VS_HASH_BYTES];
  memset(prev, 0x66, sizeof prev);
  vs_mesh_invite_pl iv = {.role = VS_MESH_WRITER, .expires_hlc = UINT64_MAX};
  memcpy(iv.invite_pk, invite_key.pk, VS_ORIGIN_BYTES);
  vs_mesh_invite_encode(&iv, invite);
  CHECK(vs_op_init(&op, inviter.pk, 2, (1700000000001ull << 16), prev, VS_MESH_KIND_INVITE,
                   (const uint8_t *)VS_MESH_TARGET, 4, invite, sizeof invite) == VS_OK);
  seed_op("invite", &op);
  CHECK(vs_op_init(&op, device.pk, 1, (1700000000002ull << 16), (const uint8_t[VS_HASH_BYTES]){0},
                   VS_MESH_KIND_ADMIT, (const uint8_t *)VS_MESH_TARGET, 4, admit, sizeof admit) == VS_OK);
  seed_op("admit", &op);
  CHECK(vs_op_init(&op, inviter.pk, 1, (1700000000002ull << 16), (const uint8_t[VS_HASH_BYTES]){0},
                   VS_MESH_KIND_ADMIT, (const uint8_t *)VS_MESH_TARGET, 4, admit, sizeof admit) == VS_OK);
  seed_op("admit-other-device", &op); /* VS_ERR_AUTH */
  CHECK(vs_op_init(&op, genesis.pk, 3, (1700000000003ull << 16), prev, VS_MESH_KIND_REVOKE,
                   (const uint8_t *)VS_MESH_TARGET, 4, revoke, sizeof revoke) == VS_OK);
  seed_op("revoke", &op);
  CHECK(vs_op_init(&op, genesis.pk, 1, (1700000000003ull << 16), (const uint8_t[VS_HASH_BYTES]){0},
                   VS_MESH_KIND_REVOKE, (const uint8_t *)VS_MESH_TARGET, 4, revoke, sizeof revoke) == VS_OK);
  seed_op("revoke-seq1", &op); /* VS_ERR_MALFORMED */
  CHECK(vs_op_init(&op, genesis.pk, 4, (1700000000004ull << 16), prev, VS_MESH_KIND_REKEY,
                   (const uint8_t *)VS_MESH_TARGET, 4, create, sizeof create) == VS_OK);
  seed_op("rekey", &op); /* VS_ERR_TRUNCATED: a create's 2 bytes are no rekey */
  CHECK(vs_op_init(&op, genesis.pk, 5, (1700000000005ull << 16), prev, "put", (const uint8_t *)"k", 1,
                   (const uint8_t *)"v", 1) == VS_OK);
  seed_op("put", &op); /* VS_ERR_NOTFOUND */
  printf("fuzz_member: %u seeds written to %s\n", g_written, g_dir);
  return 0;
}
#endif
