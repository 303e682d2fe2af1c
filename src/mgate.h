/* The membership gate of a managed mesh (issue 16; docs/membership.md,
 * "The gate"). Not installed. Module `mgate`: apply, fork and write call it;
 * it calls the pure `member` module, the fact records (mstore) and voids.
 *
 * A store is managed when its meta holds "mesh_id" (32 bytes, put by the
 * transaction that writes its genesis or its own admit). The `members`
 * database then holds one record per member of the view folded from the
 * facts held, key device pk (32), value (VS_MESH_REC_BYTES):
 *   0   1  version (1)
 *   1   1  role (vs_mesh_role)
 *   2   1  revoked (0/1)
 *   3   4  depth u32le
 *   7   8  cut_seq u64le        (revoked: its ops up to here stay valid)
 *   15 32  cut_hash             (the effective revoke's; zero when cut_seq is 0 or not revoked)
 *   47 32  inviter              (zero for the genesis author)
 *   79  8  invite_seq u64le
 *   87  8  admit_hlc u64le
 *   95 32  revoked_by
 *   127 8  revoke_seq u64le
 *   135 4  facts u32le          (invites, revokes and rekeys of its chain held)
 *   139 64 cut_sig              (the device's own signature of its op at the cut: the revoke's)
 * They are rewritten by vs_mesh_refresh_txn, in the transaction that stores
 * or drops a membership fact, so a run's check is one read: per run, not
 * per op. */
#ifndef VIXSYNC_MGATE_H
#define VIXSYNC_MGATE_H

#include "internal.h"
#include "member.h"

#define VS_MESH_REC_VERSION 1u
/* Facts other than revokes stop here, leaving revokes room up to
 * VS_MESH_FACTS_MAX: no flood of invites keeps an admin from revoking. */
#define VS_MESH_NONREVOKE_FACTS_MAX (VS_MESH_FACTS_MAX - 4u * VS_MESH_MEMBERS_MAX)
#define VS_MESH_REC_BYTES 203u

typedef struct vs_mesh_rec {
  uint8_t role;
  bool revoked;
  uint32_t depth;
  uint64_t cut_seq;
  uint8_t cut_hash[VS_HASH_BYTES];
  uint8_t inviter[VS_ORIGIN_BYTES];
  uint64_t invite_seq;
  uint64_t admit_hlc;
  uint8_t revoked_by[VS_ORIGIN_BYTES];
  uint64_t revoke_seq;
  uint32_t facts;
  uint8_t cut_sig[VS_SIGNATURE_BYTES];
} vs_mesh_rec;

/** The store's mesh id; VS_ERR_NOTFOUND: an open mesh. */
vs_err vs_mesh_id_get_txn(MDB_txn *txn, const vs_store *store, uint8_t mesh_id_out[VS_HASH_BYTES]);
vs_err vs_mesh_id_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES]);

/** The member records' generation (meta "mesh_gen" u64le, 0 when absent):
 *  bumped by every refresh that changes a record. */
vs_err vs_mesh_gen_get_txn(MDB_txn *txn, const vs_store *store, uint64_t *gen_out);

/** `pk`'s member record; VS_ERR_NOTFOUND: not a member (or an open mesh);
 *  VS_ERR_CORRUPT: a record that does not decode. */
vs_err vs_mesh_rec_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES], vs_mesh_rec *out);

/** Decode a member record's value (VS_ERR_CORRUPT: not a record). */
vs_err vs_mesh_rec_decode(const MDB_val *v, vs_mesh_rec *out);

/** A revoked member's cut as a void point for apply (apply.h, FORKS): its
 *  ops from *void_from_out on are void, and the revoke vouches for the op
 *  below (hash prev_out) with the device's own signature of it (sig_out). *void_from_out 0: not revoked, not a member or an
 *  open mesh (the gate decides those). */
vs_err vs_mesh_cut_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                       uint64_t *void_from_out, uint8_t prev_out[VS_HASH_BYTES], uint8_t sig_out[VS_SIGNATURE_BYTES]);

typedef struct vs_mesh_gate {
  bool managed;   /* the store is a managed mesh */
  bool member;    /* the origin's record is loaded: role, facts */
  bool pending;   /* our own ops while our admission has not reached us */
  bool admitting; /* the run's first new op must make its origin a member */
  bool own;       /* our own write (vs_wal_append of our identity) */
  bool refresh;   /* a fact was recorded since the last refold */
  uint8_t role;
  bool revoked;   /* with the member: its cut, and the revoke's hash of the op there */
  uint64_t cut_seq;
  uint8_t cut_hash[VS_HASH_BYTES];
  uint8_t cut_sig[VS_SIGNATURE_BYTES];
  uint32_t facts; /* the author's facts held (its quota) */
  uint64_t held;  /* fact records held (the mesh's room) */
  uint8_t mesh_id[VS_HASH_BYTES];
} vs_mesh_gate;

/** Whether ops[skip..count) (one origin's, linked, about to be stored in
 *  `txn`) may be stored (docs/membership.md, "The gate"). `own`: this
 *  store's own writes (a device may write while its admission has not
 *  reached it yet). Reads the meta and one member record: per run.
 *  @return VS_OK (*g then judges each op: vs_mesh_gate_op_txn);
 *  VS_ERR_NOT_MEMBER (no member, and the run does not open its chain with
 *  the genesis or an admit naming a held invite); VS_ERR_REVOKED (an op
 *  past the origin's cut: apply.c takes only the part below); VS_ERR_LIMIT
 *  (an admission past VS_MESH_MEMBERS_MAX or the mesh's room);
 *  VS_ERR_STORE, VS_ERR_CORRUPT. */
vs_err vs_mesh_gate_txn(MDB_txn *txn, const vs_store *store, const vs_op *ops, uint32_t skip, uint32_t count,
                        bool own, vs_mesh_gate *g);

/** Each new op, in order, once appended at `lsn` (its hash `hash`): the
 *  admitting op is recorded and folded at once (VS_ERR_NOT_MEMBER when the
 *  fold does not make its origin a member); an admin's invite, revoke or
 *  rekey within its quota and the mesh's room is recorded as a fact; a
 *  reader's data op is marked inert (*apply_state_out false: the caller
 *  does not fold it into the state, nor does any rebuild); anything else
 *  (a non-admin's mesh op, one past a quota) stays in the chain without
 *  effect. *refolded_out: the fold voided ops and rebuilt the state (the
 *  caller rereads its state hash). */
vs_err vs_mesh_gate_op_txn(MDB_txn *txn, vs_store *store, vs_mesh_gate *g, const vs_op *op,
                           const uint8_t hash[VS_HASH_BYTES], uint64_t lsn, bool *apply_state_out,
                           bool *refolded_out);

/** After the run's ops: refold when a fact was recorded. *refolded_out:
 *  ops were voided and the state rebuilt. */
vs_err vs_mesh_gate_after(MDB_txn *txn, vs_store *store, const vs_mesh_gate *g, bool *refolded_out);

/** Fold the facts held into the view and rewrite the member records; for
 *  each member whose cut fell, void its ops past the new cut, and for each
 *  that is no member any more, void all its ops (voids.h), in `txn`.
 *  *refolded_out: something was voided (the state was rebuilt). Bounded by
 *  VS_MESH_FACTS_MAX facts and VS_MESH_MEMBERS_MAX members. */
vs_err vs_mesh_refresh_txn(MDB_txn *txn, vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES], bool *refolded_out);

/** A revoked admin's revokes past its cut (ops[from..count) of a run whose
 *  signature covers all of ops[0..count), checked by the caller): the gate
 *  refuses the ops, but a revoke past a cut may lift another cut (a mutual
 *  revoke: the reducer's seniority decides), so each is kept as an orphan
 *  record (mstore.h: the op's bytes without its chain) when the run links
 *  to the chain held, within the author's quota and the revokes' room, and
 *  the view is refolded. *stored_out: orphans put. Nothing in an open mesh
 *  or for a member that is not a revoked admin. */
vs_err vs_mesh_orphans_txn(MDB_txn *txn, vs_store *store, const vs_op *ops, uint32_t from, uint32_t count,
                           const uint8_t (*hashes)[VS_HASH_BYTES], uint32_t *stored_out, bool *refolded_out);

/** vs_mesh_refresh_txn when the store is managed (a fork verdict may void
 *  facts); nothing in an open mesh. */
vs_err vs_mesh_refresh_managed_txn(MDB_txn *txn, vs_store *store, bool *refolded_out);

/* ---- the mesh keys a device holds (mgate_keys.c; docs/membership.md, "Rekey") ----
 * Epoch e >= 1's key is the one boxed in the winner of e: of the rekeys of
 * epoch e whose author is an admin valid at the rekey's seq (its record:
 * admin, not revoked or the rekey at or below its cut), the one with the
 * smallest op hash (the reducer's rule). A device holds the keys of the
 * last VS_MESH_EPOCHS_KEPT winners it can open, newest first, then its
 * base key (the key it created the mesh with, or its token's: the node's
 * mesh.key) unless that is one of them. */
#define VS_MESH_EPOCHS_KEPT 32u
#define VS_MESH_KEYS_MAX (VS_MESH_EPOCHS_KEPT + 1u)

typedef struct vs_mesh_keys {
  uint32_t count; /* >= 1: key[0] the one new handshakes use; the base key last */
  uint8_t key[VS_MESH_KEYS_MAX][VS_MESH_KEY_BYTES];
  uint32_t epoch[VS_MESH_KEYS_MAX]; /* the base key's: 0 unless it is an opened epoch's */
  bool managed;
  uint32_t view_epoch;   /* the mesh's current epoch (0: no rekey yet) */
  uint64_t view_hlc;     /* its winner's HLC (0 at epoch 0) */
  bool admin;            /* this device is an active admin */
  /* The current key needs replacing: a revoked member may hold it (at
   * epoch 0 any revoked member does; later, one named in the winner, the
   * winner's author, or one admitted by an invite written after the
   * winner, whose token may carry it), or our own box of it does not open. */
  bool rekey_due;
  /* An active member holds no box of the current key (it joined after
   * the rekey, with a token of it or of an older key): a new epoch should
   * box it, without haste (joins are batched, node_member.c). */
  bool rebox_due;
  uint32_t active;       /* active (unrevoked) members */
} vs_mesh_keys;

/** The keys `self` holds in this store, with `base` as its base key (an
 *  open mesh: just the base). Reads every fact record (bounded by
 *  VS_MESH_FACTS_MAX) and opens at most VS_MESH_EPOCHS_KEPT boxes. */
vs_err vs_mesh_keys_txn(MDB_txn *txn, const vs_store *store, const vs_identity *self,
                        const uint8_t base[VS_MESH_KEY_BYTES], vs_mesh_keys *out);

/** Wipe the keys (NULL: nothing). */
void vs_mesh_keys_wipe(vs_mesh_keys *keys);

#endif
