/* Membership (issue 16): the mesh.* system ops and the reducer that folds
 * them. Not installed. Pure: no store, no clock, no random source; the same
 * set of facts gives the same verdict in any order (docs/membership.md).
 *
 * A managed mesh begins with a genesis op (kind "mesh.create", seq 1 of its
 * author's chain); the mesh id is that op's hash (vs_op_hash). Membership
 * ops are ordinary signed ops of their author's chain; their payloads are
 * versioned little-endian encodings (below), their target is "mesh". */
#ifndef VIXSYNC_MEMBER_H
#define VIXSYNC_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/mesh.h"
#include "vixsync/op.h"

#define VS_MESH_KIND_CREATE "mesh.create"
#define VS_MESH_KIND_INVITE "mesh.invite"
#define VS_MESH_KIND_ADMIT "mesh.admit"
#define VS_MESH_KIND_REVOKE "mesh.revoke"
#define VS_MESH_KIND_REKEY "mesh.rekey"
#define VS_MESH_KIND_PREFIX "mesh." /* every kind starting so is reserved: not writable by vs_write */
#define VS_MESH_TARGET "mesh"

#define VS_MESH_PAYLOAD_VERSION 1u

/* Bounds (every loop over facts is bounded by them). A mesh past one of
 * them refuses the op that would pass it (VS_ERR_LIMIT), never drops one
 * it already took. */
#define VS_MESH_MEMBERS_MAX 1024u /* devices ever admitted, revoked included */
#define VS_MESH_FACTS_MAX 16384u  /* mesh.* ops folded (all kinds) */

/* vs_mesh_role (reader, writer, admin): vixsync/mesh.h */

typedef enum vs_mesh_kind {
  VS_MESH_CREATE = 1,
  VS_MESH_INVITE = 2,
  VS_MESH_ADMIT = 3,
  VS_MESH_REVOKE = 4,
  VS_MESH_REKEY = 5,
} vs_mesh_kind;

/* ---- payloads ----
 * create : version u8, role of the creator u8 (always ADMIN)       2 bytes
 * invite : version u8, invite_pk 32, role u8, expires_hlc u64le    42 bytes
 * admit  : version u8, mesh_id 32, inviter 32, invite_seq u64le,
 *          invite_pk 32, invite_sig 64                             169 bytes
 *          invite_sig: ed25519 by the invite key over
 *          "vixsync mesh.admit v1" (21 bytes, no NUL) || mesh_id ||
 *          inviter || invite_seq u64le || device_pk (the admit op's origin)
 * revoke : version u8, device_pk 32, cut_seq u64le, cut_hash 32,
 *          cut_sig 64                                              137 bytes
 *          ops of device_pk with seq <= cut_seq stay valid; cut_seq 0
 *          voids all of them (a device revoked before the revoker held
 *          any of its ops). cut_sig: device_pk's own chain signature of
 *          its op at cut_seq (vs_chain_sign over cut_hash; the revoker
 *          holds it: a head rests on a signed op), so that no revoker can
 *          vouch for an op the device did not sign; zero when cut_seq is 0.
 * rekey  : version u8, epoch u32le (1..2^32-1), epk 32, count u16le
 *          (1..VS_MESH_MEMBERS_MAX), then count boxes in order of the
 *          recipients' full pks: hint 8 (the first 8 bytes of the
 *          recipient's ed25519 pk: non-decreasing), box 48.
 *          39 + 56 x count bytes (57,383 at most: fits one op).
 *          box = crypto_box_easy(the epoch's mesh key 32, nonce, recipient's
 *          X25519 pk (from its ed25519 pk), ephemeral secret key), nonce =
 *          the first 24 bytes of BLAKE2b-256("vixsync mesh.rekey v1" (21
 *          bytes) || mesh_id || epoch u32le || recipient ed25519 pk). One
 *          ephemeral key pair per rekey (epk: its public key), from a seed
 *          the caller draws; the nonce differs per recipient, so no (key,
 *          nonce) pair repeats. */
#define VS_MESH_CREATE_BYTES 2u
#define VS_MESH_INVITE_BYTES 42u
#define VS_MESH_ADMIT_BYTES 169u
#define VS_MESH_REVOKE_BYTES 137u

typedef struct vs_mesh_invite_pl {
  uint8_t invite_pk[VS_ORIGIN_BYTES];
  uint8_t role; /* vs_mesh_role */
  uint64_t expires_hlc; /* an admit with hlc > this is void */
} vs_mesh_invite_pl;

typedef struct vs_mesh_admit_pl {
  uint8_t mesh_id[VS_HASH_BYTES];
  uint8_t inviter[VS_ORIGIN_BYTES]; /* the invite op's origin */
  uint64_t invite_seq;              /* and seq */
  uint8_t invite_pk[VS_ORIGIN_BYTES];
  uint8_t invite_sig[VS_SIGNATURE_BYTES];
} vs_mesh_admit_pl;

#define VS_MESH_REKEY_HEADER_BYTES 39u
#define VS_MESH_REKEY_BOX_BYTES 56u /* hint 8 + box 48 */
#define VS_MESH_REKEY_HINT_BYTES 8u
#define VS_MESH_REKEY_BYTES_MAX (VS_MESH_REKEY_HEADER_BYTES + VS_MESH_REKEY_BOX_BYTES * VS_MESH_MEMBERS_MAX)

typedef struct vs_mesh_rekey_pl {
  uint32_t epoch;
  uint8_t epk[32];
  uint16_t count;
  uint8_t boxes_digest[VS_HASH_BYTES]; /* BLAKE2b-256 of the boxes' bytes (the fact keeps no box) */
} vs_mesh_rekey_pl;

typedef struct vs_mesh_revoke_pl {
  uint8_t device_pk[VS_ORIGIN_BYTES];
  uint64_t cut_seq;
  uint8_t cut_hash[VS_HASH_BYTES]; /* the revoker's hash of device_pk's op at cut_seq (zero when cut_seq is 0) */
  uint8_t cut_sig[VS_SIGNATURE_BYTES]; /* device_pk's chain signature of that op (zero when cut_seq is 0) */
} vs_mesh_revoke_pl;

/** Strict encoders and decoders: exact length, known version, role in
 *  1..3, no trailing bytes. Decoders return VS_ERR_MALFORMED /
 *  VS_ERR_TRUNCATED / VS_ERR_TRAILING / VS_ERR_VERSION and write nothing on
 *  error. Encoders write exactly VS_MESH_*_BYTES (their input must be valid:
 *  asserted). Order of the checks: no byte at all is TRUNCATED; then the
 *  version byte (VS_ERR_VERSION: a later protocol's payload, whatever its
 *  length); then the exact length (TRUNCATED / TRAILING); then the fields
 *  (MALFORMED). Fields beyond their type:
 *  - create: role ADMIN;
 *  - invite: role 1..3;
 *  - admit: invite_seq 2..VS_OP_SEQ_MAX (seq 1 of every managed chain is a
 *    create or an admit, never an invite);
 *  - revoke: cut_seq 0..VS_OP_SEQ_MAX, cut_hash zero iff cut_seq is 0,
 *    cut_sig zero when cut_seq is 0 (vs_mesh_fact_from_op verifies it).
 *  NULL `out` (or NULL `in` with in_bytes > 0) is VS_ERR_INVAL. */
void vs_mesh_create_encode(uint8_t out[VS_MESH_CREATE_BYTES]);
vs_err vs_mesh_create_decode(const uint8_t *in, size_t in_bytes);
void vs_mesh_invite_encode(const vs_mesh_invite_pl *in, uint8_t out[VS_MESH_INVITE_BYTES]);
vs_err vs_mesh_invite_decode(const uint8_t *in, size_t in_bytes, vs_mesh_invite_pl *out);
void vs_mesh_admit_encode(const vs_mesh_admit_pl *in, uint8_t out[VS_MESH_ADMIT_BYTES]);
vs_err vs_mesh_admit_decode(const uint8_t *in, size_t in_bytes, vs_mesh_admit_pl *out);
void vs_mesh_revoke_encode(const vs_mesh_revoke_pl *in, uint8_t out[VS_MESH_REVOKE_BYTES]);
vs_err vs_mesh_revoke_decode(const uint8_t *in, size_t in_bytes, vs_mesh_revoke_pl *out);

/** Structure of a rekey payload (lengths, version, epoch >= 1, count,
 *  hints non-decreasing); boxes are not opened. Errors as the other
 *  decoders'. */
vs_err vs_mesh_rekey_decode(const uint8_t *in, size_t in_bytes, vs_mesh_rekey_pl *out);

/** Make a rekey payload: the epoch's `key` boxed for each of `count`
 *  recipients (ed25519 pks, any order, no duplicates), with the ephemeral
 *  key pair of `eph_seed` (crypto_box_seed_keypair). Deterministic for its
 *  inputs. *out_bytes = 39 + 56 x count.
 *  @return VS_OK; VS_ERR_INVAL (NULLs, epoch 0, count 0 or past
 *  VS_MESH_MEMBERS_MAX, a duplicate recipient, a pk that is no curve point);
 *  VS_ERR_BUFSIZE (out_max too small); VS_ERR_NOMEM. */
vs_err vs_mesh_rekey_make(const uint8_t mesh_id[VS_HASH_BYTES], uint32_t epoch, const uint8_t key[VS_MESH_KEY_BYTES],
                          const uint8_t eph_seed[VS_SEED_BYTES], const uint8_t (*recipients)[VS_ORIGIN_BYTES],
                          uint32_t count, uint8_t *out, size_t out_max, size_t *out_bytes);

/** Open `self`'s box in a rekey payload of mesh `mesh_id`: the epoch's key.
 *  @return VS_OK; VS_ERR_NOTFOUND (no box for self: not a recipient);
 *  VS_ERR_AUTH (a box under self's hint does not open: forged or for
 *  another mesh or epoch); the decoder's errors. key_out is written only on
 *  VS_OK. */
vs_err vs_mesh_rekey_open(const uint8_t *payload, size_t payload_bytes, const uint8_t mesh_id[VS_HASH_BYTES],
                          const vs_identity *self, uint8_t key_out[VS_MESH_KEY_BYTES]);

/** Whether a box can be made for `pk` (an ed25519 key with an X25519
 *  twin): a rekey boxes only such members, and no rekey is due for the
 *  others (else every rekey would leave one "without a box": a storm). */
bool vs_mesh_boxable(const uint8_t pk[VS_ORIGIN_BYTES]);

/** The epoch a set of valid rekeys reaches (`epochs`: their epochs, any
 *  order, repeats allowed): the greatest e such that every epoch 1..e is
 *  among them, 0 when epoch 1 is not. A rekey cannot skip epochs, so no
 *  admin can end rotation by writing epoch 2^32-1. At most
 *  VS_MESH_FACTS_MAX. */
uint32_t vs_mesh_epoch_reached(const uint32_t *epochs, uint32_t n);

/** Whether a rekey payload holds a box under `pk`'s hint (a recipient, or
 *  a hint collision: the caller treats both alike). */
bool vs_mesh_rekey_names(const uint8_t *payload, size_t payload_bytes, const uint8_t pk[VS_ORIGIN_BYTES]);

/** The invite key's signature of an admission (fills admit->invite_sig;
 *  the other fields must be set). `invite` is the identity made from the
 *  invite secret (vs_identity_from_seed). */
vs_err vs_mesh_admit_sign(vs_mesh_admit_pl *admit, const vs_identity *invite, const uint8_t device_pk[VS_ORIGIN_BYTES]);
/** Whether admit->invite_sig is invite_pk's signature for device_pk. */
bool vs_mesh_admit_verify(const vs_mesh_admit_pl *admit, const uint8_t device_pk[VS_ORIGIN_BYTES]);

/* ---- facts: the decoded mesh.* ops the reducer folds ---- */

typedef struct vs_mesh_fact {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;
  uint64_t hlc;
  uint8_t hash[VS_HASH_BYTES]; /* the op's hash */
  uint8_t kind;                /* vs_mesh_kind */
  union {
    vs_mesh_invite_pl invite;
    vs_mesh_admit_pl admit;
    vs_mesh_revoke_pl revoke;
    vs_mesh_rekey_pl rekey;
  } u;
} vs_mesh_fact;

/** Whether `kind` (kind_bytes bytes) is reserved for membership ops. */
bool vs_mesh_kind_reserved(const char *kind, size_t kind_bytes);

/** The fact an op states. VS_ERR_NOTFOUND: not a mesh.* kind (a data op);
 *  VS_ERR_MALFORMED etc.: a mesh.* op whose target or payload is bad, or an
 *  admit whose invite signature does not verify (VS_ERR_AUTH), or an admit
 *  or create that is not seq 1. Nothing but the op is read.
 *  In order: NULLs VS_ERR_INVAL; not mesh.* VS_ERR_NOTFOUND; target other
 *  than "mesh" VS_ERR_MALFORMED; create/admit not at seq 1 with a zero prev,
 *  or invite/revoke at seq 1, VS_ERR_MALFORMED; a mesh.* kind this build
 *  does not read
 *  VS_ERR_VERSION (written by a later protocol: refused, never taken for
 *  a data op); then the payload decoder's error; then, for an admit, its
 *  invite signature against the op's origin as device_pk (VS_ERR_AUTH);
 *  for a revoke with a cut, cut_sig against device_pk (VS_ERR_AUTH).
 *  *out is written only on VS_OK. */
vs_err vs_mesh_fact_from_op(const vs_op *op, const uint8_t hash[VS_HASH_BYTES], vs_mesh_fact *out);

/* ---- the invite token ----
 * What `vix-node invite` prints and `vix-node join` reads: one line,
 * "vix1-" then base64url (RFC 4648 section 5, no padding, canonical) of
 *
 *   version u8 (1), mesh_id 32, invite_seed 32, inviter 32,
 *   invite_seq u64le, mesh_key 32, addr_count u8 (0..4),
 *   per address: host_bytes u8 (1..253), host, port u16le (1..65535),
 *   check 4: the first 4 bytes of BLAKE2b-256 of everything before it.
 *
 * The check catches a mistyped or cut token (VS_ERR_CORRUPT) before any
 * field is read. A host is a DNS name or IPv4 literal ([A-Za-z0-9.-]) or a
 * bracketed IPv6 literal ("[" hex digits, ':' and '.' "]"); a port is
 * decimal without a leading zero. The line holds secrets (invite seed, mesh
 * key): the caller wipes it. */
#define VS_MESH_TOKEN_VERSION 1u
#define VS_MESH_TOKEN_PREFIX "vix1-"
#define VS_MESH_TOKEN_ADDRS_MAX 4u
#define VS_MESH_TOKEN_HOST_BYTES_MAX 253u
#define VS_MESH_TOKEN_ADDR_CHARS_MAX (VS_MESH_TOKEN_HOST_BYTES_MAX + 6u) /* ":65535" */
#define VS_MESH_TOKEN_CHARS_MAX 1024u /* the whole line, without a NUL */

typedef struct vs_mesh_token {
  uint8_t mesh_id[VS_HASH_BYTES];
  uint8_t invite_seed[VS_SEED_BYTES]; /* secret: the invite key's seed */
  uint8_t inviter[VS_ORIGIN_BYTES];   /* the invite op's origin */
  uint64_t invite_seq;                /* and seq (2..VS_OP_SEQ_MAX) */
  uint8_t mesh_key[VS_MESH_KEY_BYTES]; /* secret: the current mesh key */
  uint8_t addr_count;                  /* 0..VS_MESH_TOKEN_ADDRS_MAX */
  char addrs[VS_MESH_TOKEN_ADDRS_MAX][VS_MESH_TOKEN_ADDR_CHARS_MAX + 1]; /* "HOST:PORT", NUL-terminated */
} vs_mesh_token;

/** Whether `addr` (addr_chars bytes, no NUL needed) is a HOST:PORT the token
 *  carries (rules above). */
bool vs_mesh_addr_valid(const char *addr, size_t addr_chars);

/** Write the token line and a NUL into `out` (capacity out_bytes_max);
 *  *out_chars gets the line's length (without the NUL).
 *  @return VS_OK; VS_ERR_INVAL (NULLs, addr_count past the maximum, an
 *  address that is not valid or not NUL-terminated, invite_seq out of
 *  range); VS_ERR_TOO_LARGE (the line would pass VS_MESH_TOKEN_CHARS_MAX);
 *  VS_ERR_BUFSIZE (out too small). Nothing meaningful in `out` on error. */
vs_err vs_mesh_token_encode(const vs_mesh_token *token, char *out, size_t out_bytes_max, size_t *out_chars);

/** Decode exactly `line_chars` characters (no NUL needed; no whitespace
 *  allowed: the CLI trims). Strict: re-encoding gives the same line.
 *  @return VS_OK; VS_ERR_INVAL (NULLs); VS_ERR_TOO_LARGE (longer than
 *  VS_MESH_TOKEN_CHARS_MAX); VS_ERR_VERSION ("vix<digit>" other than
 *  "vix1-", or a version byte other than 1); VS_ERR_MALFORMED (no prefix,
 *  bad base64url, a bad field); VS_ERR_CORRUPT (the check does not match: a
 *  mistyped token); VS_ERR_TRUNCATED / VS_ERR_TRAILING. *out is zeroed on
 *  error (no secret half-written). */
vs_err vs_mesh_token_decode(const char *line, size_t line_chars, vs_mesh_token *out);

/* ---- the reducer ---- */

typedef struct vs_mesh_member {
  uint8_t pk[VS_ORIGIN_BYTES];
  uint8_t role;       /* vs_mesh_role, from the invite */
  uint32_t depth;     /* 0: the genesis author; else the inviter's + 1 */
  uint8_t inviter[VS_ORIGIN_BYTES]; /* zero for the genesis author */
  uint64_t invite_seq, invite_hlc;  /* the invite op that admitted it (0 for genesis) */
  uint64_t admit_hlc;               /* its admit op's hlc (genesis: the create op's) */
  bool revoked;
  uint64_t cut_seq;                 /* when revoked: its ops with seq <= cut_seq stay valid */
  uint8_t revoked_by[VS_ORIGIN_BYTES];
  uint64_t revoke_seq;              /* the effective revoke with the lowest cut (ties: seniority) */
} vs_mesh_member;

typedef struct vs_mesh_view {
  uint8_t mesh_id[VS_HASH_BYTES];
  bool has_genesis; /* the genesis op is among the facts */
  uint32_t count;   /* members, sorted by pk */
  vs_mesh_member members[VS_MESH_MEMBERS_MAX];
  /* The mesh key's epoch: the greatest epoch the rekeys whose author is an
   * admin valid at the rekey's seq reach without a gap (0: none, the key
   * of the genesis), and of its rekeys the one with the smallest op hash
   * (origin, seq, hash: zero when epoch is 0). */
  uint32_t epoch;
  uint8_t epoch_origin[VS_ORIGIN_BYTES];
  uint64_t epoch_seq;
  uint8_t epoch_hash[VS_HASH_BYTES];
  /* BLAKE2b-256 of "vixsync mesh view v1" || mesh_id || has_genesis u8 ||
   * count u32le || per member in pk order: pk, role u8, depth u32le,
   * inviter, invite_seq, invite_hlc, admit_hlc (u64le), revoked u8,
   * cut_seq u64le, revoked_by, revoke_seq u64le (the fields zero when
   * unset) || when epoch > 0: epoch u32le, epoch_origin, epoch_seq u64le,
   * epoch_hash: equal views, equal digests */
  uint8_t digest[VS_HASH_BYTES];
} vs_mesh_view;

/** Fold `facts` (any order; duplicates of one op allowed) of the mesh whose
 *  genesis hash is mesh_id into *view. Deterministic: a function of the
 *  SET of facts. Rules (docs/membership.md):
 *  - the genesis author (the create fact whose hash is mesh_id) is an
 *    admin at depth 0; other create facts are ignored;
 *  - an admit (seq 1 of its device's chain) admits its device iff the
 *    invite it names is a fact of an admin that is a member valid at the
 *    invite's seq, its mesh_id is this mesh's, invite_pk matches, the
 *    signature verified (checked by vs_mesh_fact_from_op), admit hlc <=
 *    expires_hlc, and it is the smallest (hlc, device pk) of the admits
 *    naming that invite that pass these checks (an admit with a wrong key
 *    or mesh id cannot block an invite);
 *  - revokes are taken greedily in seniority order of their author (depth,
 *    then the admitting invite's (hlc, inviter pk), then pk; then the revoke
 *    op's (hlc, seq)): one is effective iff, with it and every revoke taken
 *    before, its author is an admin valid at the revoke's seq, its target
 *    is a member, at least one admin stays unrevoked, and every revoke
 *    taken before stays valid (its author valid at its seq, its target's
 *    admission unchanged). A revoke cuts its target (the lowest cut wins)
 *    and, through the cut, voids every admission its target's invites at
 *    seqs past the cut made (cascade);
 *  - invites, revokes and rekeys by non-admins, or past their author's
 *    cut, do nothing; the epoch is the greatest that the valid rekeys
 *    reach without a gap (vs_mesh_epoch_reached), and of its rekeys the
 *    one with the smallest op hash wins.
 *  A revoke's cut_hash is not checked here (the reducer holds no data
 *  ops): the caller compares it with the target's op at cut_seq, where a
 *  mismatch is a fork of the target.
 *  Cost: O(F log F + R * M) for F facts, R revokes, M members (the bounds:
 *  ~16.8M steps; member_reduce.c). Scratch is malloc'd and freed.
 *  @return VS_OK; VS_ERR_LIMIT (more than VS_MESH_FACTS_MAX distinct facts,
 *  more than 2 * VS_MESH_FACTS_MAX with duplicates, or more than
 *  VS_MESH_MEMBERS_MAX admissions counted before any revoke, so that the
 *  limit does not depend on which revokes win); VS_ERR_NOMEM;
 *  VS_ERR_INVAL (NULLs; two different facts at one (origin, seq): a fork,
 *  which the fork verdict settles first). On error *view_out is zeroed. */
vs_err vs_mesh_reduce(const uint8_t mesh_id[VS_HASH_BYTES], const vs_mesh_fact *facts, uint32_t count,
                      vs_mesh_view *view_out);

/** The member with `pk`, or NULL. */
const vs_mesh_member *vs_mesh_find(const vs_mesh_view *view, const uint8_t pk[VS_ORIGIN_BYTES]);

/** Whether op (origin, seq) of kind class `data` (true: a data op; false: a
 *  mesh.* op) is valid under the view: its origin is a member, seq is not
 *  past its cut, and a data op's author is not a reader. A device's own
 *  admit (seq 1) is valid whenever the device is a member. */
bool vs_mesh_op_valid(const vs_mesh_view *view, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, bool data);

/** Whether `pk` is an unrevoked member (may open sessions). */
bool vs_mesh_active(const vs_mesh_view *view, const uint8_t pk[VS_ORIGIN_BYTES]);

#endif
