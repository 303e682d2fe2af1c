#define _POSIX_C_SOURCE 200809L /* strnlen */
/* Managed meshes: the public calls (vixsync/mesh.h). Each writes one
 * mesh.* op of the store's identity through the write path (write_int.h)
 * and, in the same transaction, its membership record and the refreshed
 * member view (mgate.h): nothing is visible before it all commits. */
#include "vixsync/mesh.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chain.h"
#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "internal.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "write_int.h"

_Static_assert(VS_MESH_TOKEN_LINE_MAX == VS_MESH_TOKEN_CHARS_MAX, "one token bound");
_Static_assert(VS_MESH_ADDRS_MAX == VS_MESH_TOKEN_ADDRS_MAX, "one address count");
_Static_assert(VS_MESH_ADDR_CHARS_MAX == VS_MESH_TOKEN_ADDR_CHARS_MAX, "one address length");
_Static_assert(VS_MESH_ID_BYTES == VS_HASH_BYTES, "a mesh id is an op hash");

const char *vs_mesh_role_name(int role) {
  switch (role) {
    case VS_MESH_READER: return "reader";
    case VS_MESH_WRITER: return "writer";
    case VS_MESH_ADMIN: return "admin";
    default: return NULL;
  }
}

vs_err vs_mesh_id(vs_store *store, uint8_t mesh_id_out[VS_MESH_ID_BYTES]) {
  if (store == NULL || mesh_id_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_mesh_id_get_txn(txn, store, mesh_id_out);
  mdb_txn_abort(txn);
  return err;
}

/* The store is empty (holds no op of any origin) and not managed yet: what
 * founding or joining a mesh needs, so that every op it ever held passed
 * the gate. */
static vs_err fresh_store(MDB_txn *txn, const vs_store *store) {
  uint8_t id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, store, id);
  if (err == VS_OK) return VS_ERR_EXISTS;
  if (err != VS_ERR_NOTFOUND) return err;
  MDB_stat st;
  int rc = mdb_stat(txn, store->dbi_heads, &st);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  return st.ms_entries == 0 ? VS_OK : VS_ERR_STATE;
}

/* Record the op just written and refold the view, in its transaction. */
static vs_err record_and_refresh(vs_store *store, write_ctx *c, const uint8_t mesh_id[VS_HASH_BYTES],
                                 const vs_write_result *res, const uint8_t hash[VS_HASH_BYTES]) {
  MDB_txn *txn = vs_write_sys_txn(c);
  bool refolded = false;
  vs_err err = vs_mesh_record_put_txn(txn, store, store->identity.pk, res->seq, hash, res->lsn);
  if (err == VS_OK) err = vs_mesh_refresh_txn(txn, store, mesh_id, &refolded);
  if (err == VS_OK && refolded) err = vs_write_sys_state_reload(c);
  return err;
}

/* This identity's record says it may invite or revoke: an active admin
 * below its fact quota, in a mesh below its fact bound. */
static vs_err admin_check(MDB_txn *txn, const vs_store *store, bool revoke, uint8_t mesh_id[VS_HASH_BYTES],
                          vs_mesh_rec *self) {
  vs_err err = vs_mesh_id_get_txn(txn, store, mesh_id);
  if (err != VS_OK) return err; /* NOTFOUND: an open mesh */
  err = vs_mesh_rec_get_txn(txn, store, store->identity.pk, self);
  if (err == VS_ERR_NOTFOUND) return VS_ERR_DENIED; /* not a member here (yet) */
  if (err != VS_OK) return err;
  if (self->revoked) return VS_ERR_REVOKED;
  if (self->role != VS_MESH_ADMIN) return VS_ERR_DENIED;
  if (self->facts >= VS_MESH_AUTHOR_FACTS_MAX) return VS_ERR_LIMIT;
  uint64_t held = 0;
  err = vs_mesh_records_count_txn(txn, store, &held);
  if (err == VS_OK && held >= (revoke ? VS_MESH_FACTS_MAX : VS_MESH_NONREVOKE_FACTS_MAX)) err = VS_ERR_LIMIT;
  return err;
}

vs_err vs_mesh_create(vs_store *store, uint64_t now_ms, uint8_t mesh_id_out[VS_MESH_ID_BYTES]) {
  if (store == NULL || mesh_id_out == NULL) return VS_ERR_INVAL;
  write_ctx *c;
  vs_err err = vs_write_sys_begin(store, now_ms, &c);
  if (err != VS_OK) return err;
  MDB_txn *txn = vs_write_sys_txn(c);
  err = fresh_store(txn, store);
  uint8_t payload[VS_MESH_CREATE_BYTES], hash[VS_HASH_BYTES];
  vs_mesh_create_encode(payload);
  vs_write_result res;
  if (err == VS_OK) err = vs_write_sys_op(c, VS_MESH_KIND_CREATE, payload, sizeof payload, &res, hash);
  if (err == VS_OK && res.seq != 1) err = VS_ERR_STATE;
  /* The mesh id is the genesis op's hash. */
  if (err == VS_OK) err = vs_mesh_id_put_txn(txn, store, hash);
  if (err == VS_OK) err = record_and_refresh(store, c, hash, &res, hash);
  vs_mesh_rec self;
  if (err == VS_OK) err = vs_mesh_rec_get_txn(txn, store, store->identity.pk, &self);
  if (err == VS_ERR_NOTFOUND || (err == VS_OK && self.role != VS_MESH_ADMIN)) err = VS_ERR_CORRUPT; /* the fold disagrees */
  if (err != VS_OK) {
    vs_write_sys_abort(c);
    return err;
  }
  err = vs_write_sys_commit(c);
  if (err == VS_OK) memcpy(mesh_id_out, hash, VS_HASH_BYTES);
  return err;
}

static vs_err invite_req_check(const vs_mesh_invite_req *req, uint64_t now_ms) {
  if (req->role < VS_MESH_READER || req->role > VS_MESH_ADMIN || req->invite_seed == NULL || req->mesh_key == NULL)
    return VS_ERR_INVAL;
  if (req->expires_ms <= now_ms || req->expires_ms > vs_hlc_wall_ms(UINT64_MAX)) return VS_ERR_INVAL;
  if (req->addr_count > VS_MESH_ADDRS_MAX || (req->addrs == NULL && req->addr_count > 0)) return VS_ERR_INVAL;
  for (uint32_t i = 0; i < req->addr_count; i++) {
    const char *a = req->addrs[i];
    if (a == NULL) return VS_ERR_INVAL;
    size_t n = strnlen(a, VS_MESH_ADDR_CHARS_MAX + 1);
    if (n > VS_MESH_ADDR_CHARS_MAX || !vs_mesh_addr_valid(a, n)) return VS_ERR_INVAL;
  }
  return VS_OK;
}

vs_err vs_mesh_invite(vs_store *store, const vs_mesh_invite_req *req, uint64_t now_ms, char *token_out,
                      size_t token_max, size_t *token_chars_out) {
  if (store == NULL || req == NULL || token_out == NULL || token_chars_out == NULL) return VS_ERR_INVAL;
  vs_err err = invite_req_check(req, now_ms);
  if (err != VS_OK) return err;
  if (token_max < VS_MESH_TOKEN_LINE_MAX + 1u) return VS_ERR_BUFSIZE;
  write_ctx *c;
  err = vs_write_sys_begin(store, now_ms, &c);
  if (err != VS_OK) return err;
  MDB_txn *txn = vs_write_sys_txn(c);
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_mesh_rec self;
  err = admin_check(txn, store, false, mesh_id, &self);
  vs_identity inv;
  memset(&inv, 0, sizeof inv);
  if (err == VS_OK) err = vs_identity_from_seed(req->invite_seed, &inv);
  vs_mesh_invite_pl pl;
  memset(&pl, 0, sizeof pl);
  memcpy(pl.invite_pk, inv.pk, VS_ORIGIN_BYTES);
  pl.role = req->role;
  /* Judged against the admit op's HLC: the last HLC of that millisecond. */
  pl.expires_hlc = vs_hlc_make(req->expires_ms, UINT16_MAX);
  uint8_t payload[VS_MESH_INVITE_BYTES], hash[VS_HASH_BYTES];
  vs_write_result res;
  if (err == VS_OK) {
    vs_mesh_invite_encode(&pl, payload);
    err = vs_write_sys_op(c, VS_MESH_KIND_INVITE, payload, sizeof payload, &res, hash);
  }
  if (err == VS_OK) err = record_and_refresh(store, c, mesh_id, &res, hash);
  vs_mesh_token *tok = NULL;
  if (err == VS_OK) {
    tok = sodium_malloc(sizeof *tok);
    if (tok == NULL) err = VS_ERR_NOMEM;
  }
  if (err == VS_OK) {
    memset(tok, 0, sizeof *tok);
    memcpy(tok->mesh_id, mesh_id, VS_HASH_BYTES);
    memcpy(tok->invite_seed, req->invite_seed, VS_SEED_BYTES);
    memcpy(tok->inviter, store->identity.pk, VS_ORIGIN_BYTES);
    tok->invite_seq = res.seq;
    /* The newest key this device holds (a rekey's, or the base key). */
    vs_mesh_keys *keys = sodium_malloc(sizeof *keys);
    err = keys == NULL ? VS_ERR_NOMEM : vs_mesh_keys_txn(txn, store, &store->identity, req->mesh_key, keys);
    if (err == VS_OK) memcpy(tok->mesh_key, keys->key[0], VS_MESH_KEY_BYTES);
    if (keys != NULL) sodium_free(keys);
    tok->addr_count = (uint8_t)req->addr_count;
    for (uint32_t i = 0; err == VS_OK && i < req->addr_count; i++) {
      size_t n = strlen(req->addrs[i]); /* checked: <= VS_MESH_ADDR_CHARS_MAX */
      memcpy(tok->addrs[i], req->addrs[i], n + 1);
    }
    /* Made before the commit: an invite whose token cannot be given is not written. */
    if (err == VS_OK) err = vs_mesh_token_encode(tok, token_out, token_max, token_chars_out);
  }
  if (tok != NULL) sodium_free(tok); /* wipes it */
  vs_identity_wipe(&inv);
  if (err != VS_OK) {
    vs_write_sys_abort(c);
    sodium_memzero(token_out, token_max);
    return err;
  }
  err = vs_write_sys_commit(c);
  if (err != VS_OK) sodium_memzero(token_out, token_max);
  return err;
}

vs_err vs_mesh_join(vs_store *store, const char *token, size_t token_chars, uint64_t now_ms, vs_mesh_joined *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (store == NULL || token == NULL || out == NULL) return VS_ERR_INVAL;
  vs_mesh_token *tok = sodium_malloc(sizeof *tok);
  if (tok == NULL) return VS_ERR_NOMEM;
  vs_err err = vs_mesh_token_decode(token, token_chars, tok);
  write_ctx *c = NULL;
  if (err == VS_OK) err = vs_write_sys_begin(store, now_ms, &c);
  MDB_txn *txn = c != NULL ? vs_write_sys_txn(c) : NULL;
  if (err == VS_OK) err = fresh_store(txn, store);
  vs_identity inv;
  memset(&inv, 0, sizeof inv);
  vs_mesh_admit_pl pl;
  memset(&pl, 0, sizeof pl);
  if (err == VS_OK) err = vs_identity_from_seed(tok->invite_seed, &inv);
  if (err == VS_OK) {
    memcpy(pl.mesh_id, tok->mesh_id, VS_HASH_BYTES);
    memcpy(pl.inviter, tok->inviter, VS_ORIGIN_BYTES);
    pl.invite_seq = tok->invite_seq;
    memcpy(pl.invite_pk, inv.pk, VS_ORIGIN_BYTES);
    /* The invite key signs this device's admission: it binds the device,
     * the mesh and the invite (member.h). */
    err = vs_mesh_admit_sign(&pl, &inv, store->identity.pk);
  }
  vs_identity_wipe(&inv);
  uint8_t payload[VS_MESH_ADMIT_BYTES], hash[VS_HASH_BYTES];
  vs_write_result res;
  if (err == VS_OK) {
    vs_mesh_admit_encode(&pl, payload);
    err = vs_mesh_id_put_txn(txn, store, tok->mesh_id);
  }
  if (err == VS_OK) err = vs_write_sys_op(c, VS_MESH_KIND_ADMIT, payload, sizeof payload, &res, hash);
  if (err == VS_OK && res.seq != 1) err = VS_ERR_STATE;
  if (err == VS_OK) err = record_and_refresh(store, c, tok->mesh_id, &res, hash);
  if (err == VS_OK) err = vs_write_sys_commit(c);
  else vs_write_sys_abort(c);
  if (err == VS_OK) {
    memcpy(out->mesh_id, tok->mesh_id, VS_HASH_BYTES);
    memcpy(out->mesh_key, tok->mesh_key, VS_MESH_KEY_BYTES);
    memcpy(out->inviter, tok->inviter, VS_ORIGIN_BYTES);
    out->addr_count = tok->addr_count;
    for (uint32_t i = 0; i < tok->addr_count && i < VS_MESH_ADDRS_MAX; i++)
      memcpy(out->addrs[i], tok->addrs[i], sizeof out->addrs[i]);
  }
  sodium_free(tok);
  return err;
}

/* The newest op of `pk` at or below `head_seq` that holds `pk`'s own
 * signature (not the zero one a verdict or a cut gave): its seq, hash and
 * signature, the cut a revoke can vouch for. *seq_out 0: none. One cursor
 * step back from head + 1 in the signature index. */
static vs_err signed_cut(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES], uint64_t head_seq,
                         uint64_t *seq_out, uint8_t hash_out[VS_HASH_BYTES], uint8_t sig_out[VS_SIGNATURE_BYTES]) {
  *seq_out = 0;
  if (head_seq == 0) return VS_OK;
  MDB_cursor *cur;
  vs_err err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_sigs, &cur));
  if (err != VS_OK) return err;
  vs_op_id start;
  vs_op_id_derive(pk, head_seq + 1 <= VS_OP_SEQ_MAX ? head_seq + 1 : VS_OP_SEQ_MAX, &start);
  MDB_val k = {VS_OP_ID_BYTES, start.bytes}, v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  rc = rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, rc == MDB_SUCCESS ? MDB_PREV : MDB_LAST)
                                               : rc;
  for (uint32_t steps = 0; rc == MDB_SUCCESS && steps < VS_APPLY_RUN_OPS_MAX; steps++) { /* bounded */
    if (k.mv_size != VS_OP_ID_BYTES || memcmp(k.mv_data, start.bytes, VS_OP_ID_TAG_BYTES) != 0) break;
    uint64_t seq = vs_get_u64be((const uint8_t *)k.mv_data + VS_OP_ID_TAG_BYTES);
    if (v.mv_size == VS_SIGNATURE_BYTES && seq <= head_seq && !sodium_is_zero(v.mv_data, VS_SIGNATURE_BYTES)) {
      vs_op_id id;
      vs_op_id_derive(pk, seq, &id);
      memcpy(sig_out, v.mv_data, VS_SIGNATURE_BYTES);
      err = vs_opid_get(txn, store, &id, NULL, hash_out);
      if (err == VS_OK) *seq_out = seq;
      mdb_cursor_close(cur);
      return err == VS_ERR_NOTFOUND ? VS_ERR_CORRUPT : err;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
  }
  mdb_cursor_close(cur);
  return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

vs_err vs_mesh_revoke(vs_store *store, const uint8_t device_pk[VS_ORIGIN_BYTES], uint64_t now_ms,
                      uint64_t *cut_seq_out) {
  if (store == NULL || device_pk == NULL) return VS_ERR_INVAL;
  write_ctx *c;
  vs_err err = vs_write_sys_begin(store, now_ms, &c);
  if (err != VS_OK) return err;
  MDB_txn *txn = vs_write_sys_txn(c);
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_mesh_rec self, target;
  err = admin_check(txn, store, true, mesh_id, &self);
  /* Its own revoke would lie past its own cut: never effective. */
  if (err == VS_OK && memcmp(device_pk, store->identity.pk, VS_ORIGIN_BYTES) == 0) err = VS_ERR_DENIED;
  if (err == VS_OK) err = vs_mesh_rec_get_txn(txn, store, device_pk, &target);
  vs_head head;
  if (err == VS_OK) err = vs_head_get(txn, store, device_pk, &head);
  /* The cut: the newest op we hold with the device's own signature (a
   * head rests on one, unless a verdict gave it the zero signature). */
  vs_mesh_revoke_pl pl;
  memset(&pl, 0, sizeof pl);
  memcpy(pl.device_pk, device_pk, VS_ORIGIN_BYTES);
  if (err == VS_OK) err = signed_cut(txn, store, device_pk, head.seq, &pl.cut_seq, pl.cut_hash, pl.cut_sig);
  /* Compacted: the op at the horizon keeps its signature in the horizon
   * record only (compact.h); a cut below it would name ops every member
   * holds and nothing can void. */
  vs_horizon hz;
  if (err == VS_OK) err = vs_horizon_get(txn, store, device_pk, &hz);
  if (err == VS_OK && hz.has_sig && hz.seq > pl.cut_seq && hz.seq <= head.seq) {
    pl.cut_seq = hz.seq;
    memcpy(pl.cut_hash, hz.hash, VS_HASH_BYTES);
    memcpy(pl.cut_sig, hz.sig, VS_SIGNATURE_BYTES);
  }
  /* Revoked at or below that already: nothing to cut. */
  if (err == VS_OK && target.revoked && target.cut_seq <= pl.cut_seq) err = VS_ERR_EXISTS;
  uint8_t payload[VS_MESH_REVOKE_BYTES], hash[VS_HASH_BYTES];
  vs_write_result res;
  if (err == VS_OK) {
    vs_mesh_revoke_encode(&pl, payload);
    err = vs_write_sys_op(c, VS_MESH_KIND_REVOKE, payload, sizeof payload, &res, hash);
  }
  if (err == VS_OK) err = record_and_refresh(store, c, mesh_id, &res, hash);
  /* Not effective (the last admin, or a senior admin's revoke of us wins
   * first): nothing is written. */
  bool written = err == VS_OK;
  if (err == VS_OK) err = vs_mesh_rec_get_txn(txn, store, device_pk, &target);
  if (err == VS_OK && !target.revoked) err = VS_ERR_DENIED;
  if (written && err == VS_ERR_NOTFOUND) err = VS_OK; /* a cascade dropped it: revoked through its inviter */
  if (err != VS_OK) {
    vs_write_sys_abort(c);
    return err;
  }
  err = vs_write_sys_commit(c);
  if (err == VS_OK && cut_seq_out != NULL) *cut_seq_out = pl.cut_seq;
  return err;
}

vs_err vs_mesh_members(vs_store *store, vs_mesh_member_info *out, uint32_t max, uint32_t *count_out) {
  if (store == NULL || count_out == NULL || (out == NULL && max > 0)) return VS_ERR_INVAL;
  *count_out = 0;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  uint8_t mesh_id[VS_HASH_BYTES];
  err = vs_mesh_id_get_txn(txn, store, mesh_id);
  MDB_cursor *cur = NULL;
  if (err == VS_OK) err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_members, &cur));
  MDB_val k, v;
  int rc = err == VS_OK ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : MDB_NOTFOUND;
  uint32_t n = 0;
  for (; err == VS_OK && rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    /* bounded: the gate keeps at most VS_MESH_MEMBERS_MAX records */
    if (k.mv_size != VS_ORIGIN_BYTES || n >= VS_MESH_MEMBERS_MAX) {
      err = VS_ERR_CORRUPT;
      break;
    }
    if (n < max) {
      uint8_t pk[VS_ORIGIN_BYTES];
      memcpy(pk, k.mv_data, VS_ORIGIN_BYTES);
      vs_mesh_rec r;
      vs_head head;
      err = vs_mesh_rec_get_txn(txn, store, pk, &r);
      if (err == VS_OK) err = vs_head_get(txn, store, pk, &head);
      if (err != VS_OK) break;
      vs_mesh_member_info *m = &out[n];
      memset(m, 0, sizeof *m);
      memcpy(m->pk, pk, VS_ORIGIN_BYTES);
      m->role = r.role;
      m->depth = r.depth;
      memcpy(m->admitted_by, r.inviter, VS_ORIGIN_BYTES);
      m->admitted_hlc = r.admit_hlc;
      m->revoked = r.revoked;
      m->cut_seq = r.cut_seq;
      memcpy(m->revoked_by, r.revoked_by, VS_ORIGIN_BYTES);
      m->head_seq = head.seq;
      m->head_hlc = head.hlc;
    }
    n++;
  }
  if (err == VS_OK && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  if (cur != NULL) mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (err == VS_OK) *count_out = n;
  return err;
}

vs_err vs_mesh_key(vs_store *store, const uint8_t base_key[VS_MESH_KEY_BYTES], vs_mesh_key_info *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (store == NULL || base_key == NULL || out == NULL) return VS_ERR_INVAL;
  if (!store->has_identity) return VS_ERR_NO_IDENTITY;
  vs_mesh_keys *keys = sodium_malloc(sizeof *keys);
  if (keys == NULL) return VS_ERR_NOMEM;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err == VS_OK) {
    err = vs_mesh_keys_txn(txn, store, &store->identity, base_key, keys);
    mdb_txn_abort(txn);
  }
  if (err == VS_OK && !keys->managed) err = VS_ERR_NOTFOUND;
  if (err == VS_OK) {
    out->epoch = keys->view_epoch;
    out->key_epoch = keys->epoch[0];
    out->rekey_due = keys->rekey_due || keys->rebox_due;
    memcpy(out->key, keys->key[0], VS_MESH_KEY_BYTES);
  }
  sodium_free(keys);
  return err;
}

/* The active members' pks that can get a box, from the member records
 * (bounded by VS_MESH_MEMBERS_MAX): a rekey's recipients. */
static vs_err active_members(MDB_txn *txn, const vs_store *store, uint8_t (*pks)[VS_ORIGIN_BYTES], uint32_t *n_out) {
  *n_out = 0;
  MDB_cursor *cur;
  vs_err err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_members, &cur));
  if (err != VS_OK) return err;
  MDB_val k, v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  while (rc == MDB_SUCCESS && err == VS_OK) { /* bounded: VS_MESH_MEMBERS_MAX records */
    vs_mesh_rec r;
    if (k.mv_size != VS_ORIGIN_BYTES || *n_out >= VS_MESH_MEMBERS_MAX) err = VS_ERR_CORRUPT;
    if (err == VS_OK) err = vs_mesh_rec_decode(&v, &r);
    /* A key without an X25519 twin can get no box (vs_mesh_boxable).
     * fault: the revoked get a box too. */
    if (err == VS_OK && (!r.revoked || VS_FAULT(VS_FAULT_REKEY_BOXES_REVOKED)) && vs_mesh_boxable(k.mv_data))
      memcpy(pks[(*n_out)++], k.mv_data, VS_ORIGIN_BYTES);
    if (err == VS_OK) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (err == VS_OK && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  mdb_cursor_close(cur);
  return err;
}

vs_err vs_mesh_rekey(vs_store *store, const uint8_t new_key[VS_MESH_KEY_BYTES], const uint8_t eph_seed[32],
                     uint64_t now_ms, uint32_t *epoch_out) {
  if (store == NULL || new_key == NULL || eph_seed == NULL) return VS_ERR_INVAL;
  if (sodium_is_zero(new_key, VS_MESH_KEY_BYTES) || sodium_is_zero(eph_seed, 32)) return VS_ERR_INVAL;
  write_ctx *c;
  vs_err err = vs_write_sys_begin(store, now_ms, &c);
  if (err != VS_OK) return err;
  MDB_txn *txn = vs_write_sys_txn(c);
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_mesh_rec self;
  err = admin_check(txn, store, false, mesh_id, &self);
  vs_mesh_keys *keys = sodium_malloc(sizeof *keys);
  uint8_t (*pks)[VS_ORIGIN_BYTES] = malloc((size_t)VS_MESH_MEMBERS_MAX * VS_ORIGIN_BYTES);
  uint8_t *payload = malloc(VS_MESH_REKEY_BYTES_MAX);
  if (err == VS_OK && (keys == NULL || pks == NULL || payload == NULL)) err = VS_ERR_NOMEM;
  /* The base key does not matter here: only the epoch is read. */
  if (err == VS_OK) err = vs_mesh_keys_txn(txn, store, &store->identity, new_key, keys);
  if (err == VS_OK && keys->view_epoch == UINT32_MAX) err = VS_ERR_LIMIT;
  uint32_t n = 0, epoch = keys != NULL ? keys->view_epoch + 1u : 0;
  if (err == VS_OK) err = active_members(txn, store, pks, &n);
  if (err == VS_OK && n == 0) err = VS_ERR_CORRUPT; /* we are an active admin */
  size_t bytes = 0;
  if (err == VS_OK)
    err = vs_mesh_rekey_make(mesh_id, epoch, new_key, eph_seed, (const uint8_t(*)[VS_ORIGIN_BYTES])pks, n, payload,
                             VS_MESH_REKEY_BYTES_MAX, &bytes);
  uint8_t hash[VS_HASH_BYTES];
  vs_write_result res;
  if (err == VS_OK) err = vs_write_sys_op(c, VS_MESH_KIND_REKEY, payload, (uint32_t)bytes, &res, hash);
  if (err == VS_OK) err = record_and_refresh(store, c, mesh_id, &res, hash);
  if (keys != NULL) sodium_free(keys);
  free(pks);
  if (payload != NULL) sodium_memzero(payload, VS_MESH_REKEY_BYTES_MAX);
  free(payload);
  if (err != VS_OK) {
    vs_write_sys_abort(c);
    return err;
  }
  err = vs_write_sys_commit(c);
  if (err == VS_OK && epoch_out != NULL) *epoch_out = epoch;
  return err;
}
