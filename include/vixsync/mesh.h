/* vixsync: managed meshes (docs/membership.md).
 *
 * A managed mesh is one whose writers are the devices admitted by signed
 * invites, and from which an admin can put a device out with a revocation
 * cut. Every call here writes one membership op (mesh.*) of this store's
 * identity, in one LMDB write transaction with everything it changes, like
 * every write (write.h); the op replicates like any other and every replica
 * folds the same member set from the same ops.
 *
 * A store is managed once vs_mesh_create or vs_mesh_join wrote its first
 * op; from then on it stores only ops of members (a received run of a
 * non-member is VS_ERR_NOT_MEMBER, of a revoked device past its cut
 * VS_ERR_REVOKED: not stored, offered again by anti-entropy once the
 * admission arrives). A store that never called either is an open mesh:
 * every holder of the mesh key writes (labs, the simulator).
 */
#ifndef VIXSYNC_MESH_H
#define VIXSYNC_MESH_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/op.h"
#include "vixsync/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_MESH_ID_BYTES 32u
/** An invite token line's length at most (without a NUL). */
#define VS_MESH_TOKEN_LINE_MAX 1024u
/** Addresses an invite token carries at most, and one's length ("HOST:PORT"). */
#define VS_MESH_ADDRS_MAX 4u
#define VS_MESH_ADDR_CHARS_MAX 259u
/** Invites and revokes one device may write in all (its later ones are
 *  refused everywhere: a deterministic, per-chain bound). */
#define VS_MESH_AUTHOR_FACTS_MAX 1024u

typedef enum vs_mesh_role {
  VS_MESH_READER = 1, /**< replicates; its data ops are refused */
  VS_MESH_WRITER = 2, /**< writes data ops */
  VS_MESH_ADMIN = 3,  /**< writes, invites and revokes */
} vs_mesh_role;

/** "reader", "writer", "admin" (NULL for another value). */
VS_API const char *vs_mesh_role_name(int role);

/** This store's mesh id (the genesis op's hash).
 *  @return VS_OK; VS_ERR_NOTFOUND: an open mesh (neither created nor
 *  joined); VS_ERR_INVAL; VS_ERR_STORE. */
VS_API vs_err vs_mesh_id(vs_store *store, uint8_t mesh_id_out[VS_MESH_ID_BYTES]);

/** Create a managed mesh: write its genesis op (mesh.create, seq 1 of this
 *  store's identity, which becomes the first admin). The store needs an
 *  identity (vs_store_set_identity) and must hold no op at all.
 *  @return VS_OK; VS_ERR_INVAL (NULLs); VS_ERR_NO_IDENTITY; VS_ERR_EXISTS
 *  (already managed: created or joined); VS_ERR_STATE (the store holds
 *  ops);
 *  VS_ERR_FULL; VS_ERR_STORE. */
VS_API vs_err vs_mesh_create(vs_store *store, uint64_t now_ms, uint8_t mesh_id_out[VS_MESH_ID_BYTES]);

typedef struct vs_mesh_invite_req {
  uint8_t role;        /**< vs_mesh_role of the device it admits */
  uint64_t expires_ms; /**< wall-clock ms past which an admission is void (judged by the admit op's HLC) */
  /** The invite key's seed: 32 bytes of entropy the caller draws (the
   *  library draws none). Secret: it goes into the token only. */
  const uint8_t *invite_seed;
  /** This device's base mesh key (vs_mesh_key's base_key, secret): the
   *  token carries the newest key this device holds (vs_mesh_key). */
  const uint8_t *mesh_key;
  /** Up to VS_MESH_ADDRS_MAX "HOST:PORT" strings where a member listens
   *  (NULL with addr_count 0: none). */
  const char *const *addrs;
  uint32_t addr_count;
} vs_mesh_invite_req;

/** Invite a device (this store's identity must be an active admin): write
 *  mesh.invite{invite_pk, role, expires} and give the token line (with a
 *  NUL) that vs_mesh_join reads. The line holds two secrets: wipe it.
 *  @return VS_OK; VS_ERR_INVAL (NULLs, role, expires_ms not after now_ms,
 *  a bad address); VS_ERR_NOTFOUND (an open mesh); VS_ERR_NO_IDENTITY;
 *  VS_ERR_DENIED (not an admin); VS_ERR_REVOKED (this device was revoked);
 *  VS_ERR_LIMIT (this device wrote VS_MESH_AUTHOR_FACTS_MAX invites and
 *  revokes, or the mesh is full); VS_ERR_TOO_LARGE (the addresses do not
 *  fit a token); VS_ERR_BUFSIZE (token_max below VS_MESH_TOKEN_LINE_MAX + 1:
 *  nothing written); VS_ERR_FULL; VS_ERR_STORE. */
VS_API vs_err vs_mesh_invite(vs_store *store, const vs_mesh_invite_req *req, uint64_t now_ms, char *token_out,
                             size_t token_max, size_t *token_chars_out);

typedef struct vs_mesh_joined {
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  uint8_t mesh_key[VS_MESH_KEY_BYTES]; /**< secret: the caller keeps it (the node's mesh.key) and wipes this */
  uint8_t inviter[VS_ORIGIN_BYTES];
  uint8_t role; /**< not known from the token: 0 until the invite op arrives (vs_mesh_members) */
  uint32_t addr_count;
  char addrs[VS_MESH_ADDRS_MAX][VS_MESH_ADDR_CHARS_MAX + 1]; /**< NUL-terminated "HOST:PORT" */
} vs_mesh_joined;

/** Join the mesh of an invite token (`token_chars` characters, no NUL
 *  needed, no whitespace): write this identity's first op, mesh.admit,
 *  signed with the token's invite key. The store needs an identity and must
 *  hold no op at all (a fresh directory: every op a managed store holds has
 *  passed the membership gate). The admission takes effect on every node that holds
 *  the invite op, so it works while the inviting admin is offline; this
 *  store may write at once (its ops count once the invite reaches a node).
 *  @return VS_OK; VS_ERR_INVAL (NULLs); VS_ERR_MALFORMED, VS_ERR_CORRUPT
 *  (a mistyped token), VS_ERR_VERSION, VS_ERR_TRUNCATED, VS_ERR_TRAILING,
 *  VS_ERR_TOO_LARGE (the token, vs_mesh_token_decode); VS_ERR_NO_IDENTITY;
 *  VS_ERR_EXISTS (already managed); VS_ERR_STATE (the store holds
 *  ops); VS_ERR_FULL; VS_ERR_STORE. On error *out is zeroed. */
VS_API vs_err vs_mesh_join(vs_store *store, const char *token, size_t token_chars, uint64_t now_ms,
                           vs_mesh_joined *out);

/** Revoke `device_pk` (this store's identity must be an active admin):
 *  write mesh.revoke{device_pk, cut} where the cut is the newest op of that
 *  device this store holds (*cut_seq_out, may be NULL). Its ops up to the
 *  cut stay valid, later ones are void everywhere. In the same transaction
 *  this store drops what the revoke voids and refolds its state.
 *  @return VS_OK; VS_ERR_INVAL (NULLs); VS_ERR_NOTFOUND (an open mesh, or
 *  device_pk is not a member); VS_ERR_NO_IDENTITY; VS_ERR_DENIED (this
 *  device is not an admin, device_pk is itself or the last admin, or the
 *  revoke would not take: a more senior revoke cuts this device's own line
 *  of inviters); VS_ERR_REVOKED
 *  (this device was revoked); VS_ERR_EXISTS (device_pk is revoked already
 *  at or below that cut); VS_ERR_LIMIT; VS_ERR_FULL; VS_ERR_STORE. */
VS_API vs_err vs_mesh_revoke(vs_store *store, const uint8_t device_pk[VS_ORIGIN_BYTES], uint64_t now_ms,
                             uint64_t *cut_seq_out);

/** The mesh key as this device holds it (docs/membership.md, "Rekey"). */
typedef struct vs_mesh_key_info {
  uint32_t epoch;     /**< the mesh's current epoch (0: never rekeyed) */
  uint32_t key_epoch; /**< the epoch of `key` (0: the base key; below epoch: no box of the current key reached us yet) */
  bool rekey_due;     /**< a revoked device may hold the current key, or an active member has no box of it:
                           an admin should call vs_mesh_rekey (vs_node does, in a node of an admin) */
  uint8_t key[VS_MESH_KEY_BYTES]; /**< secret: the newest key this device holds (wipe it) */
} vs_mesh_key_info;

/** The mesh key this device holds: the newest epoch's it can open (a
 *  mesh.rekey boxed for it), else `base_key` (the key it created the mesh
 *  with or its token gave it: vix-node's mesh.key). Invites carry this key.
 *  @return VS_OK; VS_ERR_NOTFOUND (an open mesh); VS_ERR_INVAL;
 *  VS_ERR_NO_IDENTITY; VS_ERR_NOMEM; VS_ERR_STORE; VS_ERR_CORRUPT. */
VS_API vs_err vs_mesh_key(vs_store *store, const uint8_t base_key[VS_MESH_KEY_BYTES], vs_mesh_key_info *out);

/** Rotate the mesh key (this store's identity must be an active admin):
 *  write mesh.rekey{epoch + 1} with `new_key` boxed (crypto_box_easy, an
 *  ephemeral key from `eph_seed`) for every active member this store knows.
 *  A revoked device gets no box and cannot open it. Both inputs are 32
 *  bytes of fresh entropy the caller draws (the library draws none). Of
 *  concurrent rekeys of one epoch every node takes the one with the
 *  smallest op hash.
 *  @return VS_OK (*epoch_out, may be NULL: the new epoch); VS_ERR_INVAL
 *  (NULLs, an all-zero input); VS_ERR_NOTFOUND (an open mesh);
 *  VS_ERR_NO_IDENTITY; VS_ERR_DENIED; VS_ERR_REVOKED; VS_ERR_LIMIT (the
 *  author's fact quota, the mesh's room, or the last epoch); VS_ERR_FULL;
 *  VS_ERR_STORE. */
VS_API vs_err vs_mesh_rekey(vs_store *store, const uint8_t new_key[VS_MESH_KEY_BYTES], const uint8_t eph_seed[32],
                            uint64_t now_ms, uint32_t *epoch_out);

/** One member as this store sees it. */
typedef struct vs_mesh_member_info {
  uint8_t pk[VS_ORIGIN_BYTES];
  uint8_t role;                      /**< vs_mesh_role */
  uint32_t depth;                    /**< 0: the mesh's creator; else its inviter's + 1 */
  uint8_t admitted_by[VS_ORIGIN_BYTES]; /**< the inviter (zero for the creator) */
  uint64_t admitted_hlc;             /**< its admit op's HLC (the creator: its genesis op's) */
  bool revoked;
  uint64_t cut_seq;                  /**< when revoked: its ops up to this seq stay valid */
  uint8_t revoked_by[VS_ORIGIN_BYTES];
  uint64_t head_seq;                 /**< its ops this store holds (0: none) */
  uint64_t head_hlc;                 /**< the newest one's HLC: when it last wrote, as far as we know */
} vs_mesh_member_info;

/** The members (admitted devices, revoked ones included) by pk: up to `max`
 *  of them into out (may be NULL with max 0), their number in *count_out.
 *  @return VS_OK; VS_ERR_NOTFOUND (an open mesh); VS_ERR_INVAL;
 *  VS_ERR_NOMEM; VS_ERR_STORE; VS_ERR_CORRUPT. */
VS_API vs_err vs_mesh_members(vs_store *store, vs_mesh_member_info *out, uint32_t max, uint32_t *count_out);

#ifdef __cplusplus
}
#endif
#endif
