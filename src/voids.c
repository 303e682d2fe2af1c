#define _POSIX_C_SOURCE 200809L
/* Voiding an origin's ops from a seq on (voids.h). Moved from fork.c so
 * that revocation cuts (mgate.c) void the same way fork verdicts do. */
#include "voids.h"

#include <stdio.h>

#include "chain.h"
#include "mstore.h"
#include "outbox_int.h"
#include "state_int.h"
#include "wal_int.h"

static const uint8_t ZERO_SIG[VS_SIGNATURE_BYTES];

/* Delete the op-id index entries (or signatures) of `origin` from seq
 * `from` on. Bounded by the origin's held ops. */
static vs_err drop_from(MDB_txn *txn, MDB_dbi dbi, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from) {
  vs_op_id start;
  vs_op_id_derive(origin, from, &start);
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  for (;;) { /* bounded: each round deletes one of the origin's entries */
    k = (MDB_val){VS_OP_ID_BYTES, start.bytes};
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc != MDB_SUCCESS) break;
    if (k.mv_size != VS_OP_ID_BYTES || memcmp(k.mv_data, start.bytes, VS_OP_ID_TAG_BYTES) != 0) break;
    rc = mdb_cursor_del(cur, 0);
    if (rc != MDB_SUCCESS) break;
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? VS_OK : vs_mdb_err(rc);
}

/* The outbox entries of the void ops (own writes) fail: no node will ever
 * take them. Bounded by the origin's held ops. */
static vs_err fail_outbox(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                          vs_void_why why) {
  char reason[112];
  if (why == VS_VOID_FORK)
    snprintf(reason, sizeof reason, "void: this origin forked at seq %llu (make a new identity)",
             (unsigned long long)from);
  else if (why == VS_VOID_CUT)
    snprintf(reason, sizeof reason, "void: this device was revoked from the mesh with a cut at seq %llu",
             (unsigned long long)(from - 1));
  else
    snprintf(reason, sizeof reason, "void: this device's admission to the mesh is void");
  vs_err err = VS_OK;
  for (uint64_t seq = from; err == VS_OK && seq <= VS_OP_SEQ_MAX; seq++) {
    vs_op_id id;
    uint64_t lsn = 0;
    vs_op_id_derive(origin, seq, &id);
    err = vs_opid_get(txn, store, &id, &lsn, NULL);
    if (err == VS_ERR_NOTFOUND) return VS_OK; /* past the head */
    if (err == VS_OK) err = vs_obx_void_txn(txn, store, lsn, reason);
  }
  return err;
}

/* A cut or a lost admission can be lifted again (a more senior revoke),
 * and then the ops come back in runs and are appended anew: a record left
 * behind as history would store the op twice (vix-sim G4). So such a void
 * deletes the WAL records (and inert marks) of the data ops it voids:
 * nothing reads them (their op-id entries go, the state skips them, a
 * peer is sent only what the index holds), and the peers that still hold
 * them send them again if the void is lifted. Membership ops keep theirs:
 * the reducer reads a fact past its author's cut by LSN (and apply drops
 * that record when the op is taken again: vs_void_retake_txn). A fork is
 * never lifted: its void ops stay as history (and evidence). Bounded by
 * the origin's held ops from `from` to `head`. */
static vs_err drop_data_records(MDB_txn *txn, vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                                uint64_t head) {
  vs_err err = vs_wal_last_lsn_keep_txn(txn, store); /* the log's last records may go: no LSN given twice */
  for (uint64_t seq = from; seq <= head && err == VS_OK; seq++) {
    vs_op_id id;
    uint64_t lsn = 0;
    vs_op_id_derive(origin, seq, &id);
    err = vs_opid_get(txn, store, &id, &lsn, NULL);
    if (err == VS_ERR_NOTFOUND) return VS_OK; /* past what is held */
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    vs_op op;
    if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, store, lsn, &enc, &enc_bytes);
    if (err == VS_OK && vs_op_decode(enc, enc_bytes, &op) != VS_OK) err = VS_ERR_CORRUPT;
    if (err != VS_OK || vs_mesh_kind_reserved(op.kind, op.kind_bytes)) continue;
    uint8_t key[8];
    vs_put_u64be(key, lsn);
    MDB_val k = {sizeof key, key};
    err = vs_mdb_err(mdb_del(txn, store->dbi_wal, &k, NULL));
    k = (MDB_val){VS_OP_ID_BYTES, id.bytes};
    int rc = err == VS_OK ? mdb_del(txn, store->dbi_inert, &k, NULL) : MDB_SUCCESS;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  }
  return err;
}

vs_err vs_void_retake_txn(MDB_txn *txn, vs_store *store, const vs_op *op) {
  if (!vs_mesh_kind_reserved(op->kind, op->kind_bytes)) return VS_OK;
  uint8_t key[VS_MESH_RECORD_KEY_BYTES];
  memcpy(key, op->origin, VS_ORIGIN_BYTES);
  vs_put_u64be(key + VS_ORIGIN_BYTES, op->seq);
  MDB_val k = {sizeof key, key}, v;
  int rc = mdb_get(txn, store->dbi_mesh, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  const uint8_t *val = v.mv_data;
  if (v.mv_size != VS_MESH_RECORD_BYTES || val[0] != VS_MESH_RECORD_VERSION) return VS_OK; /* an orphan: no WAL record */
  uint8_t lk[8];
  vs_put_u64be(lk, vs_get_u64le(val + 1 + VS_HASH_BYTES));
  MDB_val wk = {sizeof lk, lk};
  vs_err err = vs_wal_last_lsn_keep_txn(txn, store);
  rc = err == VS_OK ? mdb_del(txn, store->dbi_wal, &wk, NULL) : MDB_SUCCESS;
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

vs_err vs_void_from_txn(MDB_txn *txn, vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                        const uint8_t prev[VS_HASH_BYTES], const uint8_t *prev_sig, vs_void_why why, bool rebuild,
                        bool *changed_out) {
  vs_head head;
  vs_err err = vs_head_get(txn, store, origin, &head);
  *changed_out = false;
  /* Never below the horizon: the ops up to it were held and acknowledged,
   * with the same hashes, by every member before they were compacted, so
   * no verdict or cut found later takes them back (docs/storage.md,
   * "Compaction"); the void starts after the anchor. */
  vs_horizon hz;
  if (err == VS_OK) err = vs_horizon_get(txn, store, origin, &hz);
  if (err == VS_OK && from <= hz.seq) {
    err = vs_horizon_breach_add_txn(txn, store); /* counted: this store cannot follow the verdict */
    from = hz.seq + 1;
  }
  if (err != VS_OK || head.seq < from) return err;
  *changed_out = true;
  err = fail_outbox(txn, store, origin, from, why);
  if (err == VS_OK && why != VS_VOID_FORK) err = drop_data_records(txn, store, origin, from, head.seq);
  if (err == VS_OK) err = drop_from(txn, store->dbi_opid, origin, from);
  if (err == VS_OK) err = drop_from(txn, store->dbi_sigs, origin, from);
  /* A fork voids the facts for good. A cut or a lost admission only while
   * the view says so: a more senior revoke may lift a cut again, and the
   * reducer ignores facts past their author's cut, so their records stay
   * (their WAL records stay too: mstore reads the fact by LSN). */
  if (err == VS_OK && why == VS_VOID_FORK) err = vs_mesh_records_drop_txn(txn, store, origin, from);
  if (err != VS_OK) return err;
  if (from == 1) {
    MDB_val k = {VS_ORIGIN_BYTES, (void *)origin};
    err = vs_mdb_err(mdb_del(txn, store->dbi_heads, &k, NULL));
  } else {
    vs_op_id id;
    vs_op_id_derive(origin, from - 1, &id);
    uint64_t lsn = 0;
    vs_head nh = {from - 1, 0, {0}};
    err = vs_opid_get(txn, store, &id, &lsn, nh.hash);
    if (err == VS_ERR_NOTFOUND && from - 1 == hz.seq) { /* the horizon's anchor: its record is gone */
      memcpy(nh.hash, hz.hash, VS_HASH_BYTES);
      nh.hlc = hz.hlc;
      lsn = 0;
      err = VS_OK;
    }
    if (err == VS_ERR_NOTFOUND) err = VS_ERR_CORRUPT; /* below the head: held */
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    vs_op op;
    if (err == VS_OK && lsn != 0) err = vs_wal_op_encoded_txn(txn, store, lsn, &enc, &enc_bytes);
    if (err == VS_OK && lsn != 0) err = vs_op_decode(enc, enc_bytes, &op);
    if (err == VS_OK && lsn != 0) nh.hlc = op.hlc;
    if (err == VS_OK) err = vs_head_put_txn(txn, store, origin, &nh);
    /* The new head must stay relayable: a run ends at a signed op. Where
     * the origin signed only past the fork, the evidence vouches for this
     * op (its hash is both branches' prev): the zero signature says so
     * (apply.h). */
    uint8_t sig[VS_SIGNATURE_BYTES];
    uint64_t signed_seq = 0;
    if (err == VS_OK && lsn != 0) { /* (the anchor is no op held here: nothing to sign or relay) */
      err = vs_sig_next_txn(txn, store, origin, from - 1, &signed_seq, sig);
      /* Only where the evidence does vouch for it: our op there may be of
       * a third branch that parts lower down (then nothing vouches for it;
       * it stays here, unrelayed, until that fork is proven). */
      if (err == VS_ERR_NOTFOUND) err = memcmp(nh.hash, prev, VS_HASH_BYTES) == 0 ? vs_sig_put_txn(txn, store, &id, prev_sig != NULL ? prev_sig : ZERO_SIG) : VS_OK;
    }
  }
  if (err == VS_OK && rebuild) err = vs_state_rebuild_txn(txn, store);
  return err;
}

