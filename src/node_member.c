/* Admission of sessions in a managed mesh (issue 16; docs/membership.md,
 * "Sessions"). The handshake proves a peer holds the mesh key and its node
 * identity; here the member records (mgate.h) decide whether that identity
 * may stay:
 *  - an active member stays;
 *  - a revoked one is closed at once (rejected_revoked), at the handshake
 *    and whenever a refold revokes it (the records' generation moved);
 *  - an identity that is no member here may be a device presenting its
 *    admission (a new one, or a member whose admit has not reached us): it
 *    is on probation. Both sides present their own admission, the first op
 *    of their chain (a create or an admit, signed alone), and nothing else
 *    is sent to it. What it sends is taken as from any peer (the gate
 *    stores members' ops only, so it may relay the chains of members we
 *    lack: a new device that joined through another member holds its
 *    inviter's chain). Its admit makes it a member here (then it syncs like
 *    any other); a chain of its own that does not open with an admission,
 *    or the end of probation, closes it (rejected_not_member);
 *  - a store that is not a member itself yet (a device that joined and has
 *    not received its admission) cannot judge and admits every key holder;
 *    an open mesh admits every key holder. */
#include "node_int.h"

#include <sodium.h>

#include "member.h"
#include "mgate.h"
#include "mstore.h"

/* How long a device may take to present its admission, and how often we
 * present ours to it meanwhile. */
#define PROBATION_MS 30000u
#define PRESENT_EVERY_MS 5000u

typedef enum admission { ADMIT_OK, ADMIT_PROBATION, ADMIT_REVOKED } admission;

static vs_err judge(MDB_txn *txn, const vs_node *n, const uint8_t pk[VS_ORIGIN_BYTES], admission *out) {
  *out = ADMIT_OK;
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, n->store, mesh_id);
  if (err == VS_ERR_NOTFOUND) return VS_OK; /* an open mesh */
  if (err != VS_OK) return err;
  vs_mesh_rec self, r;
  err = vs_mesh_rec_get_txn(txn, n->store, n->cfg.identity.pk, &self);
  if (err == VS_ERR_NOTFOUND) return VS_OK; /* not a member ourselves yet: no judge */
  if (err != VS_OK) return err;
  err = vs_mesh_rec_get_txn(txn, n->store, pk, &r);
  if (err == VS_ERR_NOTFOUND) {
    *out = ADMIT_PROBATION;
    return VS_OK;
  }
  if (err != VS_OK) return err;
  if (r.revoked) *out = ADMIT_REVOKED;
  return VS_OK;
}

/* ---- the mesh keys (docs/membership.md, "Rekey") ---- */

/* The grace of the newest key ends this long after its rekey was written
 * (its HLC) or after this node learned it, whichever is earlier; a key
 * held when the node opened was learned before (UINT64_MAX): its HLC
 * alone decides, or, for a key of an older epoch than the mesh's, the
 * grace is over. */
static bool grace_over(const vs_node *n, uint64_t now_ms) {
  if (n->keys.count < 2) return false;
  uint64_t since = n->key_new_ms;
  uint64_t written = vs_hlc_wall_ms(n->keys.view_hlc);
  if (n->keys.epoch[0] == n->keys.view_epoch && n->keys.view_epoch > 0 && written < since) since = written;
  if (since == UINT64_MAX) return true;
  return now_ms >= vs_add_sat_u64(since, n->cfg.rekey_grace_ms);
}

uint32_t nd_dial_key(vs_node *n, const uint8_t *addr, size_t addr_bytes, uint8_t tag_out[DIAL_TAG_BYTES]) {
  crypto_generichash(tag_out, DIAL_TAG_BYTES, addr, addr_bytes, NULL, 0);
  for (uint32_t i = 0; i < DIAL_SLOTS; i++) /* bounded: DIAL_SLOTS */
    if (n->dial[i].used && memcmp(n->dial[i].tag, tag_out, DIAL_TAG_BYTES) == 0)
      return n->dial[i].index % n->keys.count;
  return 0;
}

void nd_dial_failed(vs_node *n, const peer *p) {
  if (n->keys.count < 2) return;
  uint32_t slot = DIAL_SLOTS;
  for (uint32_t i = 0; i < DIAL_SLOTS && slot == DIAL_SLOTS; i++)
    if (n->dial[i].used && memcmp(n->dial[i].tag, p->dial_tag, DIAL_TAG_BYTES) == 0) slot = i;
  if (slot == DIAL_SLOTS) { /* a new address: a free slot, else the oldest taken */
    for (uint32_t i = 0; i < DIAL_SLOTS && slot == DIAL_SLOTS; i++)
      if (!n->dial[i].used) slot = i;
    if (slot == DIAL_SLOTS) slot = n->dial_next++ % DIAL_SLOTS;
    memcpy(n->dial[slot].tag, p->dial_tag, DIAL_TAG_BYTES);
    n->dial[slot].used = true;
  }
  n->dial[slot].index = (p->key_index + 1u) % n->keys.count;
}

/* The keys again from the store (its records moved); the newest key's
 * grace starts now if it is new. */
static vs_err keys_reload(vs_node *n, MDB_txn *txn, uint64_t now_ms) {
  vs_mesh_keys k;
  vs_err err = vs_mesh_keys_txn(txn, n->store, &n->cfg.identity, n->cfg.mesh_key, &k);
  if (err != VS_OK) return err;
  if (sodium_memcmp(k.key[0], n->keys.key[0], VS_MESH_KEY_BYTES) != 0) {
    n->key_new_ms = now_ms;
    memset(n->dial, 0, sizeof n->dial); /* every address tries the newest first again */
  }
  vs_mesh_keys_wipe(&n->keys);
  n->keys = k;
  vs_mesh_keys_wipe(&k);
  n->stats.mesh_epoch = n->keys.view_epoch;
  n->stats.key_epoch = n->keys.epoch[0];
  return VS_OK;
}

vs_err nd_keys_open(vs_node *n) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  err = keys_reload(n, txn, 0);
  mdb_txn_abort(txn);
  n->key_new_ms = UINT64_MAX; /* learned before we opened */
  return err;
}

/* An admin's node rotates the key when a revoked device may hold it or its
 * own box does not open (vs_mesh_keys.rekey_due), and, after
 * REBOX_DELAY_MS, when an active member holds no box of it (rebox_due): the new key and the box
 * key's seed from cfg.random. Concurrent rekeys of one epoch settle by the
 * smallest hash everywhere; one that loses and still leaves the key due is
 * followed by the next epoch. At most one try per REKEY_RETRY_MS and
 * REKEYS_PER_HOUR an hour: every rekey is a fact of this device's quota,
 * and a hostile admin (boxing revoked devices) or a token holder
 * (admitting fresh identities) could otherwise spend it for us. */
#define REKEY_RETRY_MS 5000u
#define REBOX_DELAY_MS 20000u
#define REKEY_HOUR_MS 3600000u
_Static_assert(VS_MESH_KEYS_MAX <= VS_HS_KEYS_MAX, "a responder takes every key the node holds");
static vs_err maybe_rekey(vs_node *n, uint64_t now_ms) {
  /* Boxes for members that joined after the rekey wait REBOX_DELAY_MS
   * (joins come in groups: one epoch for them all); a revoked device that
   * may hold the key does not wait. */
  if (!n->keys.rebox_due) n->rebox_since_ms = 0;
  else if (n->rebox_since_ms == 0) n->rebox_since_ms = now_ms > 0 ? now_ms : 1;
  bool rebox = n->keys.rebox_due && now_ms >= vs_add_sat_u64(n->rebox_since_ms, REBOX_DELAY_MS);
  if (!n->keys.managed || !n->keys.admin || !(n->keys.rekey_due || rebox) || n->own_void || now_ms < n->rekey_next_ms)
    return VS_OK;
  uint32_t slot = n->rekey_slot % REKEYS_PER_HOUR;
  if (n->rekey_at[slot] != 0 && now_ms < vs_add_sat_u64(n->rekey_at[slot], REKEY_HOUR_MS)) {
    n->rekey_next_ms = vs_add_sat_u64(n->rekey_at[slot], REKEY_HOUR_MS); /* the hour's rekeys are spent */
    return VS_OK;
  }
  n->rekey_next_ms = vs_add_sat_u64(now_ms, REKEY_RETRY_MS);
  uint8_t key[VS_MESH_KEY_BYTES], seed[32];
  n->cfg.random(n->cfg.random_ctx, key, sizeof key);
  n->cfg.random(n->cfg.random_ctx, seed, sizeof seed);
  uint32_t epoch = 0;
  vs_err err = vs_mesh_rekey(n->store, key, seed, now_ms, &epoch);
  sodium_memzero(key, sizeof key);
  sodium_memzero(seed, sizeof seed);
  if (err == VS_OK) {
    n->stats.rekeys_issued++;
    n->rekey_at[slot] = now_ms > 0 ? now_ms : 1;
    n->rekey_slot++;
    err = nd_refresh_mine(n, n->cfg.identity.pk);
    /* Take our own rekey at once (the keys, the sessions' vectors): a
     * node with no peer may not be polled again for a long time. The
     * retry time above keeps this from writing again. */
    return err == VS_OK ? nd_member_sweep(n, now_ms) : err;
  }
  /* Not allowed (any more), or no room: the store says so; nothing to undo. */
  if (err == VS_ERR_DENIED || err == VS_ERR_REVOKED || err == VS_ERR_LIMIT || err == VS_ERR_NOTFOUND ||
      err == VS_ERR_INVAL)
    return VS_OK;
  return err;
}

/* A dial on an older key worked: the peer gets the rekey from this session,
 * so the next dial there starts from the newest key again (no one on the
 * path can keep us on an old key by closing a handshake). */
static void dial_ok(vs_node *n, const peer *p) {
  for (uint32_t i = 0; i < DIAL_SLOTS; i++)
    if (n->dial[i].used && memcmp(n->dial[i].tag, p->dial_tag, DIAL_TAG_BYTES) == 0) n->dial[i].used = false;
}

vs_err nd_member_on_ready(vs_node *n, peer *p, uint64_t now_ms) {
  if (!p->initiator) p->key_index = p->sess.key_index;
  if (p->initiator && p->key_index > 0) dial_ok(n, p);
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  admission a = ADMIT_OK;
  err = judge(txn, n, p->sess.peer_id, &a);
  mdb_txn_abort(txn);
  if (err != VS_OK) return err;
  if (p->key_index > 0) n->stats.handshakes_stale_key++;
  /* An older key past its grace: an active member is taken as on the
   * newest; a device that is no member here is sent nothing of ours (no
   * admission, an empty vector) and must make itself one with its own
   * admission within the probation (a device that joined with a token of
   * before the rekey and was offline since), else it is closed
   * (rejected_stale_key): an outsider with an old key learns nothing. */
  p->stale_probation = p->key_index > 0 && a == ADMIT_PROBATION && grace_over(n, now_ms);
  p->probation = a == ADMIT_PROBATION;
  if (p->probation) {
    p->probation_end_ms = vs_add_sat_u64(now_ms, PROBATION_MS);
    p->present_ms = now_ms; /* at once */
  }
  if (a == ADMIT_REVOKED) {
    n->stats.rejected_revoked++;
    nd_peer_close(n, p);
  }
  return VS_OK;
}

/* Our vector from the store again; what fell is told to the application
 * (cfg.on_void): the ops of a cut or of a lost admission. */
static vs_err reload_mine(vs_node *n) {
  vv old = n->mine;
  memset(&n->mine, 0, sizeof n->mine);
  vs_err err = nd_load_mine(n);
  for (uint32_t i = 0; err == VS_OK && i < old.n && n->cfg.on_void != NULL; i++) { /* bounded: old.n */
    uint64_t now = nd_vv_get(&n->mine, old.e[i].origin);
    if (now < old.e[i].seq) n->cfg.on_void(n->cfg.on_void_ctx, old.e[i].origin, now + 1, old.e[i].seq);
  }
  if (err == VS_OK) {
    nd_vv_free(&old);
  } else { /* keep the vector we had */
    nd_vv_free(&n->mine);
    n->mine = old;
  }
  return err;
}

vs_err nd_member_sweep(vs_node *n, uint64_t now_ms) {
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) {
    peer *p = &n->peers[s];
    if (p->st == PEER_READY && p->probation && now_ms >= p->probation_end_ms) {
      /* it presented no admission in time */
      if (p->stale_probation)
        n->stats.rejected_stale_key++;
      else
        n->stats.rejected_not_member++;
      nd_peer_close(n, p);
    }
  }
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  uint64_t gen = 0;
  uint8_t mesh_id[VS_HASH_BYTES];
  err = vs_mesh_id_get_txn(txn, n->store, mesh_id);
  n->mesh_managed = err == VS_OK;
  if (err == VS_ERR_NOTFOUND) err = VS_OK;
  if (err == VS_OK) err = vs_mesh_gen_get_txn(txn, n->store, &gen);
  if (err != VS_OK || gen == n->mesh_gen) {
    mdb_txn_abort(txn);
    return err == VS_OK ? maybe_rekey(n, now_ms) : err;
  }
  if (n->mesh_managed) err = keys_reload(n, txn, now_ms);
  /* The records moved: every session is judged again, in one read txn. */
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX && err == VS_OK; s++) {
    peer *p = &n->peers[s];
    if (p->st != PEER_READY) continue;
    admission a = ADMIT_OK;
    err = judge(txn, n, p->sess.peer_id, &a);
    if (err != VS_OK) break;
    p->vv_due = true; /* our vector may have moved: what it offered us may be taken now */
    if (a == ADMIT_REVOKED) {
      n->stats.rejected_revoked++;
      nd_peer_close(n, p); /* at once: it is sent nothing more */
    } else if (a == ADMIT_PROBATION && !p->probation) {
      /* Taken while we could not judge (not a member ourselves yet), or its
       * admission is void now: it presents it again, or goes at the end. */
      p->probation = true;
      p->probation_end_ms = vs_add_sat_u64(now_ms, PROBATION_MS);
      p->present_ms = now_ms;
    } else if (a == ADMIT_OK && p->probation) {
      p->probation = false; /* its admit took: it syncs like any member */
      p->stale_probation = false;
      p->vv_due = true;
    }
  }
  mdb_txn_abort(txn);
  /* A refold may have voided ops (a cut, a lost admission): the vector we
   * send must say what we hold. */
  if (err == VS_OK) err = reload_mine(n);
  if (err == VS_OK) n->mesh_gen = gen;
  if (err == VS_OK) err = maybe_rekey(n, now_ms);
  return err;
}

vs_err nd_member_after_run(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], const vs_op *ops,
                           vs_err apply_err) {
  if (!p->probation || p->st != PEER_READY) return VS_OK;
  /* Its own chain, refused as not a member, and not opening with an
   * admission: a key holder that was never admitted. (An admit naming an
   * invite we lack yet waits for the end of probation.) */
  bool admission = ops[0].seq == 1 && vs_mesh_kind_reserved(ops[0].kind, ops[0].kind_bytes);
  if (apply_err == VS_ERR_NOT_MEMBER && memcmp(origin, p->sess.peer_id, VS_ORIGIN_BYTES) == 0 && !admission)
    nd_peer_close(n, p);
  return VS_OK;
}

vs_err nd_member_present(vs_node *n, peer *p, uint64_t now_ms) {
  if (!p->probation || p->stale_probation || now_ms < p->present_ms) return VS_OK;
  if (nd_vv_get(&p->known, n->cfg.identity.pk) >= 1) {
    p->present_ms = UINT64_MAX; /* it holds our admission: nothing to present (in this probation) */
    return VS_OK;
  }
  p->present_ms = vs_add_sat_u64(now_ms, PRESENT_EVERY_MS);
  vs_ops_writer w;
  vs_err err = vs_ops_writer_init(&w, n->msg, VS_MSG_BYTES_MAX);
  if (err != VS_OK) return err;
  MDB_txn *txn;
  err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  vs_wal_reader wr;
  err = vs_wal_reader_open(txn, n->store, &wr);
  uint64_t end = 0;
  /* The first op of our chain, alone: signed at its own commit (mesh_api.c). */
  if (err == VS_OK) err = nd_add_run(n, txn, &wr, &w, n->cfg.identity.pk, 1, 1, &end);
  size_t len = 0;
  if (err == VS_OK) err = vs_ops_writer_finish(&w, &len);
  if (err == VS_OK) err = nd_send_msg(n, p, n->msg, len);
  vs_wal_reader_close(&wr);
  mdb_txn_abort(txn);
  /* Nothing of ours to present (an open store, no chain yet, or seq 1 not
   * signed alone): the peer judges us by what it holds. */
  if (err == VS_ERR_NOTFOUND || err == VS_ERR_BUFSIZE || err == VS_ERR_CORRUPT || err == VS_ERR_BEHIND_HORIZON)
    err = VS_OK;
  return err;
}

bool nd_member_fall_exempt(const vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now) {
  MDB_txn *txn;
  if (vs_txn_begin(n->store, false, &txn) != VS_OK) return false;
  uint8_t mesh_id[VS_HASH_BYTES];
  bool exempt = false;
  if (vs_mesh_id_get_txn(txn, n->store, mesh_id) == VS_OK) {
    vs_mesh_rec r;
    vs_err err = vs_mesh_rec_get_txn(txn, n->store, origin, &r);
    /* No member (its admission lost): all of it is void; revoked: what
     * lies past its cut (voids.c). */
    exempt = err == VS_ERR_NOTFOUND || (err == VS_OK && r.revoked && now >= r.cut_seq);
    /* Active here, revoked there: two admins revoked each other and the
     * peer holds only one side yet. Here the other revoke (senior, or its
     * author not cut below it) wins, and the peer's revoke is held as an
     * orphan or a fact without effect; there it voided the origin past
     * its cut. Its fall stands: we send the origin again from the cut on,
     * and the first op past it is what links the other revoke (an orphan:
     * mgate.c run_links) on the peer, which then folds our view. Kept at
     * its old entry, the peer got runs that start past its head, which
     * never link: the views never agreed (vix-sim, mutual-revoke swarm,
     * seed 40). Only down to a revoke we hold: signed by its admin author,
     * with the device's own signature of the op at the cut. */
    bool held = false;
    if (!exempt && err == VS_OK && !r.revoked && vs_mesh_revoke_held_txn(txn, n->store, origin, now, &held) == VS_OK)
      exempt = held;
  }
  mdb_txn_abort(txn);
  return exempt;
}
