#define _POSIX_C_SOURCE 200809L /* strnlen, snprintf */
/* The local write path: one LMDB write transaction per call (group commit
 * for batches) covering WAL, indexes, chain head and outbox entries. */
#include "vixsync/write.h"

#include <stdlib.h>

#include <sodium.h>

#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "chain.h"
#include "fork.h"
#include "internal.h"
#include "member.h" /* vs_mesh_kind_reserved */
#include "mgate.h"
#include "mstore.h"
#include "write_int.h"
#include "state_int.h"
#include "wal_int.h"
#include "outbox_int.h"
#include "vixsync/state.h"
#include "vixsync/wal.h"

#define IDEM_VALUE_BYTES (VS_OP_ID_BYTES + VS_HASH_BYTES)
static const char ARGS_DOMAIN[] = "vixsync/idem-args/v1";

/* What one transaction reads once and writes once, however many
 * operations it holds. */
typedef struct write_ctx {
  MDB_txn *txn;
  vs_store *store;
  const uint8_t *origin;
  uint64_t now_ms;
  uint64_t lsn;      /* last LSN used */
  uint64_t node_hlc; /* node-wide HLC */
  vs_head head;      /* the origin's chain head */
  uint64_t restore_to; /* a restored copy: no new op below this seq (vs_write_restoring) */
  uint8_t state_hash[VS_HASH_BYTES];
  bool sign;              /* the store's identity writes as this origin */
  uint64_t unsigned_bytes; /* encoded bytes since the last signed op */
  bool last_signed;
  bool appended;          /* the head changed: put it once at commit */
  uint32_t sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t sink_count;
  bool ranges[VS_OUTBOX_SINKS_MAX]; /* ranges-only sinks: entries without a claim index */
  vs_outbox_counts counts[VS_OUTBOX_SINKS_MAX];
  vs_wal_cursors cur; /* this origin's appends; freed by the txn's end */
  /* A managed mesh (mgate.h): this origin's member record, read once. */
  bool managed, has_rec;
  vs_mesh_rec rec;
  bool admission_lost;          /* no record though our invite is held: not a member */
  bool system;                  /* vs_write_sys_*: mesh.* ops of the store's identity */
  uint8_t last_hash[VS_HASH_BYTES]; /* the last op appended */
} write_ctx;

/* Hash of the arguments an idempotency key promised: the same key must come
 * back with the same (kind, target, payload). Lengths are framed so that no
 * two argument lists share an encoding. */
static void args_hash(const vs_write_req *req, size_t kind_bytes, uint8_t out[VS_HASH_BYTES]) {
  uint8_t len[4];
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)ARGS_DOMAIN, sizeof ARGS_DOMAIN - 1);
  vs_put_u32le(len, (uint32_t)kind_bytes);
  crypto_generichash_update(&st, len, 4);
  crypto_generichash_update(&st, (const uint8_t *)req->kind, kind_bytes);
  vs_put_u32le(len, req->target_bytes);
  crypto_generichash_update(&st, len, 4);
  if (req->target_bytes > 0) crypto_generichash_update(&st, req->target, req->target_bytes);
  vs_put_u32le(len, req->payload_bytes);
  crypto_generichash_update(&st, len, 4);
  if (req->payload_bytes > 0) crypto_generichash_update(&st, req->payload, req->payload_bytes);
  crypto_generichash_final(&st, out, VS_HASH_BYTES);
}

static vs_err req_check(const vs_write_req *req, bool system, size_t *kind_bytes_out) {
  if (req == NULL || req->kind == NULL) return VS_ERR_INVAL;
  size_t kind_bytes = strnlen(req->kind, VS_OP_KIND_BYTES_MAX + 1);
  vs_err err = vs_op_kind_check(req->kind, kind_bytes);
  if (err != VS_OK) return err;
  /* mesh.* ops are membership facts (member.h): the mesh calls write them
   * (vixsync/mesh.h), never an application; they write nothing else. */
  if (vs_mesh_kind_reserved(req->kind, kind_bytes) != system) return VS_ERR_INVAL;
  if ((req->target == NULL && req->target_bytes != 0) || (req->payload == NULL && req->payload_bytes != 0))
    return VS_ERR_INVAL;
  if (req->target_bytes > VS_OP_TARGET_BYTES_MAX || req->payload_bytes > VS_OP_PAYLOAD_BYTES_MAX)
    return VS_ERR_TOO_LARGE;
  if (req->idem_key != NULL && (req->idem_key_bytes == 0 || req->idem_key_bytes > VS_IDEM_KEY_BYTES_MAX))
    return VS_ERR_INVAL;
  /* A node may refuse to write what it would accept from a peer (which then
   * counts 0): an incr's delta must be a signed 64-bit decimal. */
  int64_t delta;
  if (strcmp(req->kind, "incr") == 0 && !vs_parse_i64(req->payload, req->payload_bytes, &delta))
    return VS_ERR_INVAL;
  *kind_bytes_out = kind_bytes;
  return VS_OK;
}

static vs_err ctx_begin(write_ctx *c) {
  vs_err err = vs_txn_begin(c->store, true, &c->txn);
  if (err != VS_OK) return err;
  err = vs_wal_last_lsn_txn(c->txn, c->store, &c->lsn);
  if (err == VS_OK) err = vs_meta_hlc_get(c->txn, c->store, &c->node_hlc);
  if (err == VS_OK) err = vs_meta_restore_get(c->txn, c->store, &c->restore_to);
  if (err == VS_OK) err = vs_head_get(c->txn, c->store, c->origin, &c->head);
  /* An origin voided by a fork verdict (apply.h, FORKS) never writes
   * again: every node refuses its ops from the fork on. */
  uint64_t void_from = 0;
  if (err == VS_OK) err = vs_fork_get_txn(c->txn, c->store, c->origin, &void_from, NULL);
  if (err == VS_OK && void_from != 0) err = VS_ERR_FORKED;
  if (err == VS_OK) err = vs_state_hash_get_txn(c->txn, c->store, c->state_hash);
  uint8_t mesh_id[VS_HASH_BYTES];
  if (err == VS_OK) {
    err = vs_mesh_id_get_txn(c->txn, c->store, mesh_id);
    c->managed = err == VS_OK;
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
  }
  if (err == VS_OK && c->managed) {
    err = vs_mesh_rec_get_txn(c->txn, c->store, c->origin, &c->rec);
    c->has_rec = err == VS_OK;
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
  }
  /* No member record for our own chain: pending (our admission's invite
   * has not reached us) or lost (we hold the invite and the fold did not
   * admit us: another admit won it, or our inviter was cut below it). */
  if (err == VS_OK && c->managed && !c->has_rec && c->sign && c->head.seq >= 1) {
    vs_mesh_fact admit, invite;
    err = vs_mesh_fact_get_txn(c->txn, c->store, c->origin, 1, &admit);
    if (err == VS_OK && admit.kind == VS_MESH_ADMIT) {
      err = vs_mesh_fact_get_txn(c->txn, c->store, admit.u.admit.inviter, admit.u.admit.invite_seq, &invite);
      c->admission_lost = err == VS_OK;
    }
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
  }
  if (err == VS_OK) err = vs_sinks_list(c->txn, c->store, c->sinks, &c->sink_count);
  for (uint32_t i = 0; i < c->sink_count && err == VS_OK; i++) {
    err = vs_obx_counts_load(c->txn, c->store, c->sinks[i], &c->counts[i]);
    if (err == VS_OK) err = vs_obx_ranges_only_txn(c->txn, c->store, c->sinks[i], &c->ranges[i]);
  }
  if (err == VS_OK) err = vs_wal_cursors_open(c->txn, c->store, &c->cur);
  if (err != VS_OK) mdb_txn_abort(c->txn);
  return err;
}

static vs_err ctx_commit(write_ctx *c) {
  vs_err err = VS_OK;
  if (c->sign && !c->last_signed && c->unsigned_bytes > 0) {
    /* Every commit ends on a signed chain head. */
    uint8_t sig[VS_SIGNATURE_BYTES];
    vs_op_id id;
    vs_op_id_derive(c->origin, c->head.seq, &id);
    vs_chain_sign(&c->store->identity, c->head.seq, c->head.hash, sig);
    err = vs_sig_put_txn(c->txn, c->store, &id, sig);
  }
  if (err == VS_OK && c->appended) err = vs_head_put_txn(c->txn, c->store, c->origin, &c->head);
  if (err == VS_OK) err = vs_meta_hlc_put(c->txn, c->store, c->node_hlc);
  if (err == VS_OK) err = vs_state_hash_put_txn(c->txn, c->store, c->state_hash);
  for (uint32_t i = 0; i < c->sink_count && err == VS_OK; i++)
    err = vs_obx_counts_save(c->txn, c->store, c->sinks[i], &c->counts[i]);
  if (err != VS_OK) {
    mdb_txn_abort(c->txn);
    return err;
  }
  return vs_txn_commit(c->txn);
}

/* Fill a duplicate's result from the operation the key created. */
static vs_err describe_stored(write_ctx *c, vs_write_result *res) {
  vs_err err = vs_opid_get(c->txn, c->store, &res->op_id, &res->lsn, NULL);
  if (err == VS_ERR_NOTFOUND) {
    /* Compacted (compact.h): held by every member, its record gone; the
     * id and seq stand, the LSN is 0, the HLC known only at the anchor. */
    vs_horizon hz;
    err = vs_horizon_get(c->txn, c->store, c->origin, &hz);
    uint64_t seq = vs_op_id_seq(&res->op_id);
    if (err == VS_OK && seq >= 1 && seq <= hz.seq) {
      res->lsn = 0;
      res->seq = seq;
      res->hlc = seq == hz.seq ? hz.hlc : 0;
      return VS_OK;
    }
    if (err == VS_OK) err = VS_ERR_NOTFOUND;
  }
  const uint8_t *enc;
  uint32_t enc_bytes;
  if (err == VS_OK) err = vs_wal_op_encoded_txn(c->txn, c->store, res->lsn, &enc, &enc_bytes);
  vs_op op;
  if (err == VS_OK && vs_op_decode(enc, enc_bytes, &op) != VS_OK) err = VS_ERR_CORRUPT;
  if (err != VS_OK) return err == VS_ERR_NOTFOUND ? VS_ERR_CORRUPT : err;
  res->seq = op.seq;
  res->hlc = op.hlc;
  return VS_OK;
}

/* Whether this origin may write an op (mesh: a mesh.* op) in a managed
 * mesh, as every receiver's gate will judge it (mgate.h). */
static vs_err member_may_write(const write_ctx *c, bool mesh) {
  if (!c->managed) return VS_OK;
  if (c->has_rec) {
    if (c->rec.revoked) return VS_ERR_REVOKED; /* every new op is past its cut */
    if (mesh ? c->rec.role != VS_MESH_ADMIN : c->rec.role == VS_MESH_READER) return VS_ERR_DENIED;
    return VS_OK;
  }
  /* Not a member here (yet): this device after its join, whose admission
   * has not reached it, writes data (it counts once the invite is held
   * where it goes); anything else waits for a membership. */
  if (c->sign && c->head.seq >= 1 && !mesh && !c->admission_lost) return VS_OK;
  return VS_ERR_NOT_MEMBER;
}

/* Write one request inside the context's transaction. */
static vs_err write_one(write_ctx *c, const vs_write_req *req, vs_write_result *res) {
  size_t kind_bytes;
  vs_err err = req_check(req, c->system, &kind_bytes);
  if (err != VS_OK) return err;
  /* The genesis and the own admit open a chain before the store is a
   * member's: vs_mesh_create and vs_mesh_join check what they need. */
  if (!(c->system && c->head.seq == 0)) err = member_may_write(c, c->system);
  if (err != VS_OK) return err;
  memset(res, 0, sizeof *res);
  uint8_t ahash[VS_HASH_BYTES];
  MDB_val ik = {req->idem_key_bytes, (void *)req->idem_key}, iv;
  if (req->idem_key != NULL) {
    args_hash(req, kind_bytes, ahash);
    int rc = mdb_get(c->txn, c->store->dbi_idem, &ik, &iv);
    if (rc == MDB_SUCCESS) {
      if (iv.mv_size != IDEM_VALUE_BYTES) return VS_ERR_CORRUPT;
      if (memcmp((const uint8_t *)iv.mv_data + VS_OP_ID_BYTES, ahash, VS_HASH_BYTES) != 0) return VS_ERR_CONFLICT;
      memcpy(res->op_id.bytes, iv.mv_data, VS_OP_ID_BYTES);
      res->duplicate = true;
      return describe_stored(c, res);
    }
    if (rc != MDB_NOTFOUND) return vs_mdb_err(rc);
  }
  if (c->head.seq >= VS_OP_SEQ_MAX) return VS_ERR_LIMIT;
  /* A restored copy never signs a seq its other self may have signed. */
  if (c->head.seq < c->restore_to && memcmp(c->origin, c->store->identity.pk, VS_ORIGIN_BYTES) == 0)
    return VS_ERR_RESTORING;
  uint64_t last_hlc = c->node_hlc > c->head.hlc ? c->node_hlc : c->head.hlc;
  vs_op op;
  err = vs_op_init(&op, c->origin, c->head.seq + 1, vs_hlc_next(last_hlc, c->now_ms), c->head.hash, req->kind,
                   req->target, req->target_bytes, req->payload, req->payload_bytes);
  if (err != VS_OK) return err;
  size_t enc_bytes = vs_op_encoded_bytes(&op);
  uint8_t hash[VS_HASH_BYTES];
  err = vs_wal_append_cur(c->txn, c->store, &c->cur, &op, NULL, c->lsn + 1, c->now_ms, NULL, false, hash);
  /* A fresh (origin, seq) whose id is already stored means the head and the
   * op-id index disagree: another copy of this origin wrote here. */
  if (err == VS_ERR_EXISTS) return VS_ERR_FORK;
  if (err != VS_OK) return err;
  err = vs_state_apply_txn(c->txn, c->store, &op, hash, c->state_hash);
  if (err != VS_OK) return err;
  if (c->sign) {
    /* Sign at least every VS_SIGN_INTERVAL_BYTES, so a receiver's runs stay
     * bounded; the last op of the commit is signed in ctx_commit. */
    c->unsigned_bytes += enc_bytes;
    c->last_signed = c->unsigned_bytes >= VS_SIGN_INTERVAL_BYTES;
    if (c->last_signed) {
      uint8_t sig[VS_SIGNATURE_BYTES];
      vs_chain_sign(&c->store->identity, op.seq, hash, sig);
      err = vs_sig_put_txn(c->txn, c->store, &op.id, sig);
      if (err != VS_OK) return err;
      c->unsigned_bytes = 0;
    }
  }
  c->lsn++;
  c->appended = true;
  c->head.seq = op.seq;
  c->head.hlc = op.hlc;
  memcpy(c->head.hash, hash, VS_HASH_BYTES);
  if (op.hlc > c->node_hlc) c->node_hlc = op.hlc;
  if (req->idem_key != NULL) {
    uint8_t buf[IDEM_VALUE_BYTES];
    memcpy(buf, op.id.bytes, VS_OP_ID_BYTES);
    memcpy(buf + VS_OP_ID_BYTES, ahash, VS_HASH_BYTES);
    iv.mv_size = sizeof buf;
    iv.mv_data = buf;
    int rc = mdb_put(c->txn, c->store->dbi_idem, &ik, &iv, MDB_NOOVERWRITE);
    if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  }
  memcpy(c->last_hash, hash, VS_HASH_BYTES);
  /* Membership ops replicate along their chain, not through the sinks:
   * they are the mesh's, not the application's. */
  for (uint32_t i = 0; i < c->sink_count && !c->system; i++) {
    err = vs_obx_enqueue_txn(c->txn, c->store, c->sinks[i], c->lsn, &op.id, (uint32_t)enc_bytes, c->now_ms,
                             &c->counts[i], c->ranges[i]);
    if (err != VS_OK) return err;
  }
  res->op_id = op.id;
  res->lsn = c->lsn;
  res->seq = op.seq;
  res->hlc = op.hlc;
  return VS_OK;
}

vs_err vs_write_batch(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], const vs_write_req *reqs, size_t count,
                      uint64_t now_ms, vs_write_result *results_out) {
  if (store == NULL || origin == NULL || (reqs == NULL && count > 0)) return VS_ERR_INVAL;
  if (count > VS_WRITE_BATCH_MAX) return VS_ERR_LIMIT;
  write_ctx *c = malloc(sizeof *c);
  if (c == NULL) return VS_ERR_NOMEM;
  memset(c, 0, sizeof *c);
  c->store = store;
  c->origin = origin;
  c->now_ms = now_ms;
  c->sign = store->has_identity && memcmp(store->identity.pk, origin, VS_ORIGIN_BYTES) == 0;
  vs_err err = ctx_begin(c);
  for (size_t i = 0; i < count && err == VS_OK; i++) {
    vs_write_result scratch;
    err = write_one(c, &reqs[i], results_out != NULL ? &results_out[i] : &scratch);
    if (err != VS_OK) mdb_txn_abort(c->txn);
  }
#ifdef VS_FAULT_INJECTION /* fault: every 8th write is acknowledged and never committed */
  if (err == VS_OK && vs_fault_every(VS_FAULT_ACK_BEFORE_COMMIT, 8)) {
    mdb_txn_abort(c->txn);
    free(c);
    return VS_OK;
  }
#endif
  if (err == VS_OK) err = ctx_commit(c);
  free(c);
  return err;
}

vs_err vs_write(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], const vs_write_req *req, uint64_t now_ms,
                vs_write_result *result_out) {
  if (req == NULL) return VS_ERR_INVAL;
  return vs_write_batch(store, origin, req, 1, now_ms, result_out);
}

vs_err vs_write_idem_lookup(vs_store *store, const uint8_t *idem_key, uint32_t idem_key_bytes, vs_op_id *id_out) {
  if (store == NULL || idem_key == NULL || idem_key_bytes == 0 || idem_key_bytes > VS_IDEM_KEY_BYTES_MAX || id_out == NULL)
    return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_val k = {idem_key_bytes, (void *)idem_key}, v;
  err = vs_mdb_err(mdb_get(txn, store->dbi_idem, &k, &v));
  if (err == VS_OK && v.mv_size != IDEM_VALUE_BYTES) err = VS_ERR_CORRUPT;
  if (err == VS_OK) memcpy(id_out->bytes, v.mv_data, VS_OP_ID_BYTES);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_write_restoring(vs_store *store, uint64_t *to_out) {
  if (store == NULL || to_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_meta_restore_get(txn, store, to_out);
  mdb_txn_abort(txn);
  return err;
}

/* ---- mesh.* ops of the store's identity (write_int.h) ---- */

vs_err vs_write_sys_begin(vs_store *store, uint64_t now_ms, write_ctx **c_out) {
  *c_out = NULL;
  if (!store->has_identity) return VS_ERR_NO_IDENTITY;
  write_ctx *c = malloc(sizeof *c);
  if (c == NULL) return VS_ERR_NOMEM;
  memset(c, 0, sizeof *c);
  c->store = store;
  c->origin = store->identity.pk;
  c->now_ms = now_ms;
  c->sign = true;
  c->system = true;
  vs_err err = ctx_begin(c);
  if (err != VS_OK) {
    free(c);
    return err;
  }
  *c_out = c;
  return VS_OK;
}

MDB_txn *vs_write_sys_txn(write_ctx *c) { return c->txn; }

uint64_t vs_write_sys_head_seq(const write_ctx *c) { return c->head.seq; }

vs_err vs_write_sys_op(write_ctx *c, const char *kind, const uint8_t *payload, uint32_t payload_bytes,
                       vs_write_result *res, uint8_t hash_out[VS_HASH_BYTES]) {
  const uint8_t target[] = VS_MESH_TARGET;
  vs_write_req req = {kind, target, (uint32_t)(sizeof target - 1), payload, payload_bytes, NULL, 0};
  vs_err err = write_one(c, &req, res);
  if (err == VS_OK) memcpy(hash_out, c->last_hash, VS_HASH_BYTES);
  return err;
}

vs_err vs_write_sys_state_reload(write_ctx *c) { return vs_state_hash_get_txn(c->txn, c->store, c->state_hash); }

vs_err vs_write_sys_commit(write_ctx *c) {
  vs_err err = ctx_commit(c);
  free(c);
  return err;
}

void vs_write_sys_abort(write_ctx *c) {
  if (c == NULL) return;
  mdb_txn_abort(c->txn);
  free(c);
}
