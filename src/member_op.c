/* Membership ops (issue 16): the mesh.* payload codecs, the invite key's
 * signature of an admission, and the op -> fact step the reducer folds.
 * Pure: bytes in, values out; no store, clock or random source. Layouts
 * are in member.h and docs/membership.md. */
#include "member.h"

#include "internal.h"

_Static_assert(VS_MESH_CREATE_BYTES == 1u + 1u, "create layout (member.h)");
_Static_assert(VS_MESH_INVITE_BYTES == 1u + VS_ORIGIN_BYTES + 1u + 8u, "invite layout (member.h)");
_Static_assert(VS_MESH_ADMIT_BYTES == 1u + VS_HASH_BYTES + VS_ORIGIN_BYTES + 8u + VS_ORIGIN_BYTES + VS_SIGNATURE_BYTES,
               "admit layout (member.h)");
_Static_assert(VS_MESH_REVOKE_BYTES == 1u + VS_ORIGIN_BYTES + 8u + VS_HASH_BYTES + VS_SIGNATURE_BYTES,
               "revoke layout (member.h)");
_Static_assert(VS_MESH_PAYLOAD_VERSION <= UINT8_MAX, "the version is a u8");

/* The admission message the invite key signs (member.h). The domain keeps
 * any other signature of an invite key from passing for an admission. */
static const char ADMIT_DOMAIN[] = "vixsync mesh.admit v1";
#define ADMIT_DOMAIN_BYTES (sizeof ADMIT_DOMAIN - 1u)
#define ADMIT_MSG_BYTES (ADMIT_DOMAIN_BYTES + VS_HASH_BYTES + VS_ORIGIN_BYTES + 8u + VS_ORIGIN_BYTES)
_Static_assert(ADMIT_DOMAIN_BYTES == 21u, "the domain is part of the signed format (member.h)");
_Static_assert(ADMIT_MSG_BYTES == 125u, "domain, mesh id, inviter, invite seq, device");

static bool role_valid(uint8_t role) { return role >= VS_MESH_READER && role <= VS_MESH_ADMIN; }

static bool all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* The common head of every decoder: something to read, a known version,
 * then exactly `want` bytes. */
static vs_err payload_check(const uint8_t *in, size_t in_bytes, size_t want) {
  if (in == NULL && in_bytes > 0) return VS_ERR_INVAL;
  if (in_bytes == 0) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MESH_PAYLOAD_VERSION) return VS_ERR_VERSION;
  if (in_bytes < want) return VS_ERR_TRUNCATED;
  if (in_bytes > want) return VS_ERR_TRAILING;
  return VS_OK;
}

/* ---- create ---- */

void vs_mesh_create_encode(uint8_t out[VS_MESH_CREATE_BYTES]) {
  assert(out != NULL);
  out[0] = (uint8_t)VS_MESH_PAYLOAD_VERSION;
  out[1] = (uint8_t)VS_MESH_ADMIN;
}

vs_err vs_mesh_create_decode(const uint8_t *in, size_t in_bytes) {
  vs_err err = payload_check(in, in_bytes, VS_MESH_CREATE_BYTES);
  if (err != VS_OK) return err;
  /* The genesis author is an admin: a mesh nobody can manage is no mesh. */
  if (in[1] != VS_MESH_ADMIN) return VS_ERR_MALFORMED;
  return VS_OK;
}

/* ---- invite ---- */

void vs_mesh_invite_encode(const vs_mesh_invite_pl *in, uint8_t out[VS_MESH_INVITE_BYTES]) {
  assert(in != NULL && out != NULL);
  assert(role_valid(in->role));
  out[0] = (uint8_t)VS_MESH_PAYLOAD_VERSION;
  memcpy(out + 1, in->invite_pk, VS_ORIGIN_BYTES);
  out[1 + VS_ORIGIN_BYTES] = in->role;
  vs_put_u64le(out + 2 + VS_ORIGIN_BYTES, in->expires_hlc);
}

vs_err vs_mesh_invite_decode(const uint8_t *in, size_t in_bytes, vs_mesh_invite_pl *out) {
  if (out == NULL) return VS_ERR_INVAL;
  vs_err err = payload_check(in, in_bytes, VS_MESH_INVITE_BYTES);
  if (err != VS_OK) return err;
  vs_mesh_invite_pl v;
  memset(&v, 0, sizeof v);
  memcpy(v.invite_pk, in + 1, VS_ORIGIN_BYTES);
  v.role = in[1 + VS_ORIGIN_BYTES];
  v.expires_hlc = vs_get_u64le(in + 2 + VS_ORIGIN_BYTES);
  if (!role_valid(v.role)) return VS_ERR_MALFORMED;
  memcpy(out, &v, sizeof v); /* with its zeroed padding */
  return VS_OK;
}

/* ---- admit ---- */

#define ADMIT_OFF_MESH 1u
#define ADMIT_OFF_INVITER (ADMIT_OFF_MESH + VS_HASH_BYTES)
#define ADMIT_OFF_SEQ (ADMIT_OFF_INVITER + VS_ORIGIN_BYTES)
#define ADMIT_OFF_PK (ADMIT_OFF_SEQ + 8u)
#define ADMIT_OFF_SIG (ADMIT_OFF_PK + VS_ORIGIN_BYTES)
_Static_assert(ADMIT_OFF_SIG + VS_SIGNATURE_BYTES == VS_MESH_ADMIT_BYTES, "admit offsets");

/* Seq 1 of a managed chain is its create or admit: an invite is at 2 or later. */
static bool invite_seq_valid(uint64_t seq) { return seq >= 2u && seq <= VS_OP_SEQ_MAX; }

void vs_mesh_admit_encode(const vs_mesh_admit_pl *in, uint8_t out[VS_MESH_ADMIT_BYTES]) {
  assert(in != NULL && out != NULL);
  assert(invite_seq_valid(in->invite_seq));
  out[0] = (uint8_t)VS_MESH_PAYLOAD_VERSION;
  memcpy(out + ADMIT_OFF_MESH, in->mesh_id, VS_HASH_BYTES);
  memcpy(out + ADMIT_OFF_INVITER, in->inviter, VS_ORIGIN_BYTES);
  vs_put_u64le(out + ADMIT_OFF_SEQ, in->invite_seq);
  memcpy(out + ADMIT_OFF_PK, in->invite_pk, VS_ORIGIN_BYTES);
  memcpy(out + ADMIT_OFF_SIG, in->invite_sig, VS_SIGNATURE_BYTES);
}

vs_err vs_mesh_admit_decode(const uint8_t *in, size_t in_bytes, vs_mesh_admit_pl *out) {
  if (out == NULL) return VS_ERR_INVAL;
  vs_err err = payload_check(in, in_bytes, VS_MESH_ADMIT_BYTES);
  if (err != VS_OK) return err;
  vs_mesh_admit_pl v;
  memcpy(v.mesh_id, in + ADMIT_OFF_MESH, VS_HASH_BYTES);
  memcpy(v.inviter, in + ADMIT_OFF_INVITER, VS_ORIGIN_BYTES);
  v.invite_seq = vs_get_u64le(in + ADMIT_OFF_SEQ);
  memcpy(v.invite_pk, in + ADMIT_OFF_PK, VS_ORIGIN_BYTES);
  memcpy(v.invite_sig, in + ADMIT_OFF_SIG, VS_SIGNATURE_BYTES);
  if (!invite_seq_valid(v.invite_seq)) return VS_ERR_MALFORMED;
  *out = v;
  return VS_OK;
}

/* The signed message, laid out as member.h documents. */
static void admit_message(const vs_mesh_admit_pl *admit, const uint8_t device_pk[VS_ORIGIN_BYTES],
                          uint8_t msg[ADMIT_MSG_BYTES]) {
  size_t at = 0;
  memcpy(msg + at, ADMIT_DOMAIN, ADMIT_DOMAIN_BYTES);
  at += ADMIT_DOMAIN_BYTES;
  memcpy(msg + at, admit->mesh_id, VS_HASH_BYTES);
  at += VS_HASH_BYTES;
  memcpy(msg + at, admit->inviter, VS_ORIGIN_BYTES);
  at += VS_ORIGIN_BYTES;
  vs_put_u64le(msg + at, admit->invite_seq);
  at += 8u;
  memcpy(msg + at, device_pk, VS_ORIGIN_BYTES);
  at += VS_ORIGIN_BYTES;
  assert(at == ADMIT_MSG_BYTES);
  (void)at;
}

vs_err vs_mesh_admit_sign(vs_mesh_admit_pl *admit, const vs_identity *invite, const uint8_t device_pk[VS_ORIGIN_BYTES]) {
  if (admit == NULL || invite == NULL || device_pk == NULL) return VS_ERR_INVAL;
  /* The verifier checks against admit->invite_pk: signing with another key
   * would make an admission nobody accepts. Caught here, not there. */
  if (memcmp(admit->invite_pk, invite->pk, VS_ORIGIN_BYTES) != 0) return VS_ERR_INVAL;
  if (memcmp(invite->sk + VS_SEED_BYTES, invite->pk, VS_ORIGIN_BYTES) != 0) return VS_ERR_INVAL;
  if (sodium_init() < 0) return VS_ERR_CRYPTO;
  uint8_t msg[ADMIT_MSG_BYTES];
  admit_message(admit, device_pk, msg);
  int rc = crypto_sign_detached(admit->invite_sig, NULL, msg, sizeof msg, invite->sk);
  assert(rc == 0);
  (void)rc;
  return VS_OK;
}

bool vs_mesh_admit_verify(const vs_mesh_admit_pl *admit, const uint8_t device_pk[VS_ORIGIN_BYTES]) {
  if (admit == NULL || device_pk == NULL) return false;
  if (sodium_init() < 0) return false;
  uint8_t msg[ADMIT_MSG_BYTES];
  admit_message(admit, device_pk, msg);
  return crypto_sign_verify_detached(admit->invite_sig, msg, sizeof msg, admit->invite_pk) == 0;
}

/* ---- revoke ---- */

#define REVOKE_OFF_PK 1u
#define REVOKE_OFF_SEQ (REVOKE_OFF_PK + VS_ORIGIN_BYTES)
#define REVOKE_OFF_HASH (REVOKE_OFF_SEQ + 8u)
#define REVOKE_OFF_SIG (REVOKE_OFF_HASH + VS_HASH_BYTES)
_Static_assert(REVOKE_OFF_SIG + VS_SIGNATURE_BYTES == VS_MESH_REVOKE_BYTES, "revoke offsets");

/* cut_seq 0 names no op, so it has no hash; any other cut names one. One
 * cut, one encoding. */
static bool cut_valid(uint64_t cut_seq, const uint8_t cut_hash[VS_HASH_BYTES], const uint8_t cut_sig[VS_SIGNATURE_BYTES]) {
  if (cut_seq > VS_OP_SEQ_MAX) return false;
  if (cut_seq == 0) return all_zero(cut_hash, VS_HASH_BYTES) && all_zero(cut_sig, VS_SIGNATURE_BYTES);
  return !all_zero(cut_hash, VS_HASH_BYTES);
}

void vs_mesh_revoke_encode(const vs_mesh_revoke_pl *in, uint8_t out[VS_MESH_REVOKE_BYTES]) {
  assert(in != NULL && out != NULL);
  assert(cut_valid(in->cut_seq, in->cut_hash, in->cut_sig));
  out[0] = (uint8_t)VS_MESH_PAYLOAD_VERSION;
  memcpy(out + REVOKE_OFF_PK, in->device_pk, VS_ORIGIN_BYTES);
  vs_put_u64le(out + REVOKE_OFF_SEQ, in->cut_seq);
  memcpy(out + REVOKE_OFF_HASH, in->cut_hash, VS_HASH_BYTES);
  memcpy(out + REVOKE_OFF_SIG, in->cut_sig, VS_SIGNATURE_BYTES);
}

vs_err vs_mesh_revoke_decode(const uint8_t *in, size_t in_bytes, vs_mesh_revoke_pl *out) {
  if (out == NULL) return VS_ERR_INVAL;
  vs_err err = payload_check(in, in_bytes, VS_MESH_REVOKE_BYTES);
  if (err != VS_OK) return err;
  vs_mesh_revoke_pl v;
  memcpy(v.device_pk, in + REVOKE_OFF_PK, VS_ORIGIN_BYTES);
  v.cut_seq = vs_get_u64le(in + REVOKE_OFF_SEQ);
  memcpy(v.cut_hash, in + REVOKE_OFF_HASH, VS_HASH_BYTES);
  memcpy(v.cut_sig, in + REVOKE_OFF_SIG, VS_SIGNATURE_BYTES);
  if (!cut_valid(v.cut_seq, v.cut_hash, v.cut_sig)) return VS_ERR_MALFORMED;
  *out = v;
  return VS_OK;
}

/* ---- ops to facts ---- */

bool vs_mesh_kind_reserved(const char *kind, size_t kind_bytes) {
  const size_t prefix_bytes = sizeof VS_MESH_KIND_PREFIX - 1u;
  if (kind == NULL || kind_bytes < prefix_bytes) return false;
  return memcmp(kind, VS_MESH_KIND_PREFIX, prefix_bytes) == 0;
}

static bool kind_is(const vs_op *op, const char *name) {
  size_t n = strlen(name);
  return op->kind_bytes == n && memcmp(op->kind, name, n) == 0;
}

/* The kinds this build reads; anything else under "mesh." is VS_ERR_VERSION. */
static uint8_t kind_code(const vs_op *op) {
  if (kind_is(op, VS_MESH_KIND_CREATE)) return VS_MESH_CREATE;
  if (kind_is(op, VS_MESH_KIND_INVITE)) return VS_MESH_INVITE;
  if (kind_is(op, VS_MESH_KIND_ADMIT)) return VS_MESH_ADMIT;
  if (kind_is(op, VS_MESH_KIND_REVOKE)) return VS_MESH_REVOKE;
  if (kind_is(op, VS_MESH_KIND_REKEY)) return VS_MESH_REKEY;
  return 0;
}

/* Where in its chain a membership op may sit: create and admit open a
 * chain (seq 1, zero prev); invites and revokes follow it. */
static bool seq_fits(uint8_t code, const vs_op *op) {
  bool first = op->seq == 1u;
  if (code == VS_MESH_CREATE || code == VS_MESH_ADMIT) return first && all_zero(op->prev, VS_HASH_BYTES);
  return !first;
}

vs_err vs_mesh_fact_from_op(const vs_op *op, const uint8_t hash[VS_HASH_BYTES], vs_mesh_fact *out) {
  if (op == NULL || hash == NULL || out == NULL) return VS_ERR_INVAL;
  if (op->kind_bytes > VS_OP_KIND_BYTES_MAX) return VS_ERR_INVAL;
  if (!vs_mesh_kind_reserved(op->kind, op->kind_bytes)) return VS_ERR_NOTFOUND;
  const size_t target_bytes = sizeof VS_MESH_TARGET - 1u;
  if (op->target_bytes != target_bytes || op->target == NULL ||
      memcmp(op->target, VS_MESH_TARGET, target_bytes) != 0)
    return VS_ERR_MALFORMED;
  if (op->payload == NULL && op->payload_bytes > 0) return VS_ERR_INVAL;
  uint8_t code = kind_code(op);
  if (code == 0) return VS_ERR_VERSION;
  if (!seq_fits(code, op)) return VS_ERR_MALFORMED;

  vs_mesh_fact f;
  memset(&f, 0, sizeof f); /* the union's unused bytes too: facts may be hashed or compared */
  memcpy(f.origin, op->origin, VS_ORIGIN_BYTES);
  f.seq = op->seq;
  f.hlc = op->hlc;
  memcpy(f.hash, hash, VS_HASH_BYTES);
  f.kind = code;
  vs_err err = VS_OK;
  switch (code) {
    case VS_MESH_CREATE: err = vs_mesh_create_decode(op->payload, op->payload_bytes); break;
    case VS_MESH_INVITE: err = vs_mesh_invite_decode(op->payload, op->payload_bytes, &f.u.invite); break;
    case VS_MESH_ADMIT:
      err = vs_mesh_admit_decode(op->payload, op->payload_bytes, &f.u.admit);
      /* The device admitted is the op's author: an admission cannot be
       * replayed by another device, nor moved to another mesh or invite. */
      if (err == VS_OK && !vs_mesh_admit_verify(&f.u.admit, op->origin)) err = VS_ERR_AUTH;
      break;
    case VS_MESH_REVOKE:
      err = vs_mesh_revoke_decode(op->payload, op->payload_bytes, &f.u.revoke);
      /* The cut names an op its device signed: the revoke vouches for it
       * only with the device's own signature (mgate.c stores it there). */
      if (err == VS_OK && f.u.revoke.cut_seq > 0 &&
          !vs_chain_verify(f.u.revoke.device_pk, f.u.revoke.cut_seq, f.u.revoke.cut_hash, f.u.revoke.cut_sig))
        err = VS_ERR_AUTH;
      break;
    case VS_MESH_REKEY: err = vs_mesh_rekey_decode(op->payload, op->payload_bytes, &f.u.rekey); break;
    default: assert(0 && "kind_code returned an unknown code"); err = VS_ERR_VERSION; break;
  }
  if (err != VS_OK) return err;
  memcpy(out, &f, sizeof f); /* with its zeroed padding: an assignment need not copy it */
  return VS_OK;
}
