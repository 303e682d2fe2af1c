/* Re-bootstrap of a store that already holds data (vixsync/snapshot.h,
 * vs_snapshot_rebase; docs/storage.md, "Re-bootstrap and orphans").
 *
 * One write transaction: the snapshot's header is checked first (outside
 * it: nothing of the store is read), then inside it
 *   1. the plan: from our own chain (head, horizon, restore mark), the
 *      snapshot's anchor of it and its gc_floor, which own ops the mesh
 *      holds (they leave the log), which stay above the anchor (sent as
 *      usual) and from which seq on they are orphans; and for every other
 *      chain we hold past the snapshot's anchor of it, that those ops can
 *      stay (others_plan: they continue its anchor);
 *   2. the orphans are written (bounded: VS_ORPHANS_MAX/_BYTES_MAX);
 *   3. every WAL record but the kept ops is deleted, with its op id,
 *      signature, inert mark, membership record and (own ops) undelivered
 *      outbox entries; the tables the snapshot rewrites (heads, horizons,
 *      state, base state, members, fork verdicts, acks) are emptied; our
 *      own head and horizon are set at the anchor (or the last kept op);
 *   4. the snapshot's body is loaded exactly as an install loads it
 *      (snapshot_int.h: every chunk checked, counts, state hash, anchors,
 *      the member view with the signer active, the live state rebuilt).
 * Any error aborts the transaction: nothing changed. */
#include "vixsync/snapshot.h"

#include <stdlib.h>

#include "chain.h"
#include "fork.h"
#include "internal.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "orphans.h"
#include "outbox_int.h"
#include "sinks.h"
#include "snapshot_int.h"
#include "wal_int.h"

typedef struct plan {
  const uint8_t *self;
  uint64_t anchor;             /* the snapshot's seq of our chain (0: none) */
  const uint8_t *anchor_rec;   /* its record in the header (NULL: none) */
  vs_head head;                /* our chain's head before */
  vs_horizon horizon;          /* ours before */
  uint64_t restore_to;         /* the restore mark (0: none) */
  uint64_t orphan_from;        /* the first orphaned seq (UINT64_MAX: none) */
  uint64_t late_held;          /* a too-late replica: our chain's seq peers are known to hold (UINT64_MAX: not one) */
  uint64_t late_after;         /* and: only ops above this HLC (0: any) */
  uint32_t sinks[VS_OUTBOX_SINKS_MAX], n_sinks;
  bool ranges[VS_OUTBOX_SINKS_MAX];
  bool any_ranges; /* a ranges-only sink (the mesh's) tells which own ops the mesh took */
  /* Other chains held past the snapshot's anchor: their heads (the ops
   * above the anchor stay in the log and the live state). */
  struct kept_head {
    uint8_t origin[VS_ORIGIN_BYTES];
    vs_head head;
  } *kept;
  uint32_t kept_n;
} plan;

/* The op of our chain at `seq`: its record's LSN, hash and decoded op
 * (pointing into the transaction's pages). */
static vs_err own_op(MDB_txn *txn, const vs_store *store, const plan *p, uint64_t seq, uint64_t *lsn_out,
                     uint8_t hash_out[VS_HASH_BYTES], vs_op *op_out, const uint8_t **enc_out, uint32_t *enc_bytes_out) {
  vs_op_id id;
  vs_op_id_derive(p->self, seq, &id);
  vs_err err = vs_opid_get(txn, store, &id, lsn_out, hash_out);
  if (err == VS_ERR_NOTFOUND) return VS_ERR_CORRUPT; /* a gap in our own chain below its head */
  if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, store, *lsn_out, enc_out, enc_bytes_out);
  if (err == VS_OK && vs_op_decode(*enc_out, *enc_bytes_out, op_out) != VS_OK) err = VS_ERR_CORRUPT;
  return err;
}

/* Whether a ranges-only sink (the mesh's) has an undelivered entry for
 * record `lsn`: PENDING, INFLIGHT or FAILED. No entry, or DONE: the mesh
 * took it (a purged entry was DONE). */
static vs_err undelivered(MDB_txn *txn, const vs_store *store, const plan *p, uint64_t lsn, bool *out) {
  *out = false;
  for (uint32_t i = 0; i < p->n_sinks && !*out; i++) { /* bounded: VS_OUTBOX_SINKS_MAX */
    if (!p->ranges[i]) continue;
    vs_outbox_entry e;
    vs_err err = vs_obx_entry_get(txn, store, p->sinks[i], lsn, &e);
    if (err == VS_ERR_NOTFOUND) continue;
    if (err != VS_OK) return err;
    *out = e.state != VS_OUTBOX_DONE;
  }
  return VS_OK;
}

/* Our op at `seq` (decoded into *op_out, pointing into the transaction's
 * pages) and whether a ranges-only sink has it undelivered. */
static vs_err own_op_undelivered(MDB_txn *txn, const vs_store *store, const plan *p, uint64_t seq, vs_op *op_out,
                                 bool *und_out) {
  uint64_t lsn = 0;
  uint8_t hash[VS_HASH_BYTES];
  const uint8_t *enc = NULL;
  uint32_t enc_bytes = 0;
  vs_err err = own_op(txn, store, p, seq, &lsn, hash, op_out, &enc, &enc_bytes);
  if (err == VS_OK) err = undelivered(txn, store, p, lsn, und_out);
  return err;
}

/* Step 1: where our chain's orphans start. */
static vs_err plan_make(MDB_txn *txn, vs_store *store, const vs_snap_head *h, plan *p) {
  /* A forked identity never writes again (every node refuses its ops from
   * the fork on): a rebase would only hide the verdict here. */
  uint64_t void_from = 0;
  vs_err err = vs_fork_get_txn(txn, store, p->self, &void_from, NULL);
  if (err == VS_OK && void_from != 0) return VS_ERR_FORKED;
  if (err == VS_OK) err = vs_head_get(txn, store, p->self, &p->head);
  if (err == VS_OK) err = vs_horizon_get(txn, store, p->self, &p->horizon);
  if (err == VS_OK) err = vs_meta_restore_get(txn, store, &p->restore_to);
  if (err == VS_OK) err = vs_sinks_list(txn, store, p->sinks, &p->n_sinks);
  for (uint32_t i = 0; i < p->n_sinks && err == VS_OK; i++) err = vs_obx_ranges_only_txn(txn, store, p->sinks[i], &p->ranges[i]);
  if (err != VS_OK) return err;
  for (uint32_t i = 0; i < p->n_sinks; i++) p->any_ranges = p->any_ranges || p->ranges[i];
  p->anchor_rec = vs_snap_anchor(h, p->self);
  p->anchor = p->anchor_rec != NULL ? vs_get_u64le(p->anchor_rec + VS_SNAP_ANCHOR_SEQ) : 0;
  p->orphan_from = UINT64_MAX;
  /* We compacted our own chain past the snapshot's anchor: those ops are
   * in no log here and not in its state. */
  if (p->horizon.seq > p->anchor) return VS_ERR_STATE;
  /* Do we hold the mesh's op at the anchor? Then the links prove every
   * own op below it is the mesh's. */
  bool match = p->anchor == 0;
  if (!match && p->head.seq >= p->anchor) {
    uint8_t held[VS_HASH_BYTES];
    err = vs_op_hash_at_txn(txn, store, p->self, p->anchor, held);
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
    else if (err == VS_OK) match = memcmp(held, p->anchor_rec + VS_SNAP_ANCHOR_HASH, VS_HASH_BYTES) == 0;
    if (err != VS_OK) return err;
  }
  if (!match) {
    /* Behind the anchor, or a different op there (a restored backup that
     * signed those seqs again): an own op the mesh never took is not the
     * one the mesh holds at that seq. */
    uint64_t last = p->head.seq < p->anchor ? p->head.seq : p->anchor;
    /* No sink of the mesh's: nothing tells which ops it took. All of
     * them are orphans (surfaced, never dropped unseen). */
    if (!p->any_ranges && last > p->horizon.seq) p->orphan_from = p->horizon.seq + 1;
    for (uint64_t s = p->horizon.seq + 1; s <= last && p->orphan_from == UINT64_MAX; s++) { /* bounded: our chain */
      vs_op op;
      bool und = false;
      err = own_op_undelivered(txn, store, p, s, &op, &und);
      if (err != VS_OK) return err;
      if (und) {
        p->orphan_from = s;
        break;
      }
    }
    if (p->orphan_from == UINT64_MAX && p->head.seq >= p->anchor) p->orphan_from = p->anchor;
  }
  /* Above the anchor: kept, up to the first at or below the gc_floor or
   * at a seq the mesh holds already (the restore mark). */
  uint64_t gc_floor = vs_get_u64le(h->hdr + VS_SNAP_GC_FLOOR);
  /* What was dropped is older than the snapshot: a floor past its HLC
   * would only serve to orphan our unsent ops. */
  if (gc_floor > vs_get_u64le(h->hdr + VS_SNAP_HLC)) return VS_ERR_MALFORMED;
  uint64_t from = p->anchor > p->horizon.seq ? p->anchor : p->horizon.seq;
  bool floor_orphans = false;
  for (uint64_t s = from + 1; s <= p->head.seq && p->orphan_from == UINT64_MAX; s++) { /* bounded: our chain */
    uint64_t lsn = 0;
    uint8_t hash[VS_HASH_BYTES];
    vs_op op;
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    err = own_op(txn, store, p, s, &lsn, hash, &op, &enc, &enc_bytes);
    if (err != VS_OK) return err;
    /* Membership ops are exempt from the floor (apply takes them below it).
     * A data op at or below it is orphaned even when a peer took it (the
     * fork risk docs/storage.md names): kept, it would be merged here onto
     * a base without the tombstones the floor dropped. */
    bool below = gc_floor > 0 && op.hlc <= gc_floor && !vs_mesh_kind_reserved(op.kind, op.kind_bytes);
    if (below || s <= p->restore_to) p->orphan_from = s;
    floor_orphans = below && s > p->restore_to;
  }
  /* Orphans the floor starts must be ops no peer holds: one the mesh's
   * sink marked delivered was taken by a peer whose floor was below it,
   * and writing its seq again would fork our identity (every node then
   * voids our chain from there). Such a snapshot is refused: the maker
   * adopts a holder's state once a holder relays our ops to it (a floor
   * split: node_snap.c), and then anchors them. */
  /* A too-late replica (back after twice suspend_after: node_snap.c): the
   * peers' floors may have passed any write no peer held, and they pass
   * them at different times (a peer taking one that another refuses for
   * good splits the mesh). So every own data op above what peers are
   * known to hold (the late_held claim, the sink's delivered marks) is
   * orphaned: the top of our chain down to the first op a peer holds or
   * the last membership op (never orphaned; ops below it stay and are
   * judged by the floor alone). */
  if (p->late_held != UINT64_MAX) {
    uint64_t lo = from > p->late_held ? from : p->late_held;
    uint64_t late_from = UINT64_MAX;
    for (uint64_t s = p->head.seq; s > lo; s--) { /* bounded: our chain */
      vs_op op;
      bool und = false;
      err = own_op_undelivered(txn, store, p, s, &op, &und);
      if (err != VS_OK) return err;
      if ((p->any_ranges && !und) || vs_mesh_kind_reserved(op.kind, op.kind_bytes) || op.hlc <= p->late_after)
        break; /* held, a membership op, or written before we lost touch (ack_quorum > 1); no such sink: none known held */
      late_from = s;
    }
    if (late_from < p->orphan_from) p->orphan_from = late_from;
  }
  for (uint64_t s = p->orphan_from; floor_orphans && p->any_ranges && s <= p->head.seq; s++) { /* bounded: our chain */
    vs_op op;
    bool und = false;
    err = own_op_undelivered(txn, store, p, s, &op, &und);
    if (err != VS_OK) return err;
    if (!und) return VS_ERR_HELD;
  }
  return VS_OK;
}

/* Step 1, other chains: a chain we hold past the snapshot's anchor keeps
 * its ops above the anchor (a rebase must not take back what we hold: the
 * peers that sent it count it sent). They continue the snapshot's chain:
 * we hold its op at the anchor with the anchor's hash and compacted
 * nothing past the anchor; none is a data op at or below the snapshot's
 * gc_floor (the mesh refuses those); no fork verdict on that origin is
 * held. Else VS_ERR_STATE: a stale or different snapshot, nothing changes. */
static vs_err others_plan(MDB_txn *txn, vs_store *store, const vs_snap_head *h, plan *p) {
  MDB_stat st;
  vs_err err = vs_mdb_err(mdb_stat(txn, store->dbi_heads, &st));
  if (err != VS_OK) return err;
  p->kept = st.ms_entries > 0 ? calloc(st.ms_entries, sizeof *p->kept) : NULL;
  if (st.ms_entries > 0 && p->kept == NULL) return VS_ERR_NOMEM;
  uint64_t gc_floor = vs_get_u64le(h->hdr + VS_SNAP_GC_FLOOR);
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_heads, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK; /* bounded: origins held */
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs_head head;
    err = k.mv_size == VS_ORIGIN_BYTES ? vs_head_decode(&v, &head) : VS_ERR_CORRUPT;
    if (err != VS_OK || memcmp(k.mv_data, p->self, VS_ORIGIN_BYTES) == 0) continue;
    const uint8_t *rec = vs_snap_anchor(h, k.mv_data);
    uint64_t anchor = rec != NULL ? vs_get_u64le(rec + VS_SNAP_ANCHOR_SEQ) : 0;
    if (head.seq <= anchor) continue; /* the snapshot covers it */
    vs_horizon hz;
    uint64_t void_from = 0;
    err = vs_horizon_get(txn, store, k.mv_data, &hz);
    if (err == VS_OK) err = vs_fork_get_txn(txn, store, k.mv_data, &void_from, NULL);
    if (err == VS_OK && (hz.seq > anchor || void_from != 0)) err = VS_ERR_STATE;
    if (err == VS_OK && anchor > 0) {
      uint8_t held[VS_HASH_BYTES];
      err = vs_op_hash_at_txn(txn, store, k.mv_data, anchor, held);
      if (err == VS_ERR_NOTFOUND || (err == VS_OK && memcmp(held, rec + VS_SNAP_ANCHOR_HASH, VS_HASH_BYTES) != 0))
        err = VS_ERR_STATE;
    }
    for (uint64_t q = anchor + 1; q <= head.seq && err == VS_OK && gc_floor > 0; q++) { /* bounded: the chain held */
      vs_op_id id;
      uint64_t lsn = 0;
      const uint8_t *enc = NULL;
      uint32_t enc_bytes = 0;
      vs_op op;
      vs_op_id_derive(k.mv_data, q, &id);
      err = vs_opid_get(txn, store, &id, &lsn, NULL);
      if (err == VS_ERR_NOTFOUND) err = VS_ERR_CORRUPT; /* a gap below a head */
      if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, store, lsn, &enc, &enc_bytes);
      if (err == VS_OK && vs_op_decode(enc, enc_bytes, &op) != VS_OK) err = VS_ERR_CORRUPT;
      if (err == VS_OK && op.hlc <= gc_floor && !vs_mesh_kind_reserved(op.kind, op.kind_bytes)) err = VS_ERR_STATE;
    }
    if (err != VS_OK) break;
    if (p->kept_n >= st.ms_entries) {
      err = VS_ERR_CORRUPT; /* more heads than the table held */
      break;
    }
    memcpy(p->kept[p->kept_n].origin, k.mv_data, VS_ORIGIN_BYTES);
    p->kept[p->kept_n].head = head;
    p->kept_n++;
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

/* Step 2: the orphans, from p->orphan_from to our head. */
static vs_err orphans_write(MDB_txn *txn, vs_store *store, const plan *p, vs_rebase_info *info) {
  if (p->orphan_from > p->head.seq) return VS_OK;
  uint64_t count = 0, bytes = 0;
  vs_err err = vs_orphans_usage_txn(txn, store, &count, &bytes);
  for (uint64_t s = p->orphan_from; s <= p->head.seq && err == VS_OK; s++) { /* bounded: VS_ORPHANS_MAX */
    uint64_t lsn = 0, id = 0;
    uint8_t hash[VS_HASH_BYTES];
    vs_op op;
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    if (s <= p->horizon.seq) continue; /* compacted (only when orphan_from is the anchor's: excluded above) */
    err = own_op(txn, store, p, s, &lsn, hash, &op, &enc, &enc_bytes);
    if (err != VS_OK) break;
    if (vs_mesh_kind_reserved(op.kind, op.kind_bytes)) return VS_ERR_STATE; /* membership ops are never orphaned */
    if (count + 1 > VS_ORPHANS_MAX || bytes + enc_bytes > VS_ORPHANS_BYTES_MAX) return VS_ERR_LIMIT;
    err = vs_orphans_put_txn(txn, store, s, op.hlc, enc, enc_bytes, &id);
    count++;
    bytes += enc_bytes;
    if (err == VS_OK && info->first_orphan == 0) info->first_orphan = id;
    if (err == VS_OK) info->orphaned++;
  }
  return err;
}

/* Drop the undelivered (not DONE) entries of record `lsn` in every sink:
 * the op left the log, nothing can deliver it. DONE entries stay (as
 * compaction leaves them: the purge takes them). */
static vs_err entries_drop(MDB_txn *txn, const vs_store *store, const plan *p, uint64_t lsn, uint64_t *dropped) {
  vs_err err = VS_OK;
  for (uint32_t i = 0; i < p->n_sinks && err == VS_OK; i++) { /* bounded: VS_OUTBOX_SINKS_MAX */
    vs_outbox_entry e;
    err = vs_obx_entry_get(txn, store, p->sinks[i], lsn, &e);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK;
      continue;
    }
    if (err != VS_OK || e.state == VS_OUTBOX_DONE) continue;
    uint8_t ik[INDEX_KEY_BYTES_MAX], ek[ENTRY_KEY_BYTES];
    size_t ik_bytes = 0;
    MDB_dbi dbi = vs_obx_index_key(store, p->sinks[i], &e, ik, &ik_bytes);
    MDB_val k = {ik_bytes, ik};
    int rc = mdb_del(txn, dbi, &k, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return vs_mdb_err(rc); /* a ranges-only PENDING entry has none */
    vs_obx_entry_key(ek, p->sinks[i], lsn);
    k.mv_size = sizeof ek;
    k.mv_data = ek;
    err = vs_mdb_err(mdb_del(txn, store->dbi_outbox, &k, NULL));
    vs_outbox_counts counts;
    if (err == VS_OK) err = vs_obx_counts_load(txn, store, p->sinks[i], &counts);
    uint64_t *slot = err == VS_OK ? vs_obx_count_slot(&counts, e.state) : NULL;
    if (err == VS_OK && (slot == NULL || *slot == 0)) err = VS_ERR_CORRUPT;
    if (err == VS_OK) {
      (*slot)--;
      err = vs_obx_counts_save(txn, store, p->sinks[i], &counts);
    }
    if (err == VS_OK) (*dropped)++;
  }
  return err;
}

static vs_err del_key(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t bytes) {
  MDB_val k = {bytes, (void *)key};
  int rc = mdb_del(txn, dbi, &k, NULL);
  return rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

/* Step 3: every WAL record but our kept ops leaves, with what hangs on it. */
static vs_err log_wipe(MDB_txn *txn, vs_store *store, const vs_snap_head *h, const plan *p, vs_rebase_info *info) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_wal, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK; /* bounded: the log */
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 8) {
      err = VS_ERR_CORRUPT;
      break;
    }
    uint64_t lsn = vs_get_u64be(k.mv_data);
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    vs_op op;
    err = vs_wal_op_encoded_txn(txn, store, lsn, &enc, &enc_bytes);
    if (err == VS_OK && vs_op_decode(enc, enc_bytes, &op) != VS_OK) err = VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    bool own = memcmp(op.origin, p->self, VS_ORIGIN_BYTES) == 0;
    bool mesh = vs_mesh_kind_reserved(op.kind, op.kind_bytes);
    const uint8_t *rec = own ? NULL : vs_snap_anchor(h, op.origin);
    bool kept_other = !own && op.seq > (rec != NULL ? vs_get_u64le(rec + VS_SNAP_ANCHOR_SEQ) : 0); /* others_plan */
    if (kept_other) info->others_kept++;
    if ((own && op.seq > p->anchor && op.seq < p->orphan_from) || kept_other) {
      if (mesh) { /* its membership record comes back (the table is emptied below) */
        uint8_t hash[VS_HASH_BYTES];
        vs_op_hash_encoded(enc, enc_bytes, hash);
        err = vs_mesh_record_put_txn(txn, store, op.origin, op.seq, hash, lsn);
      }
      continue;
    }
    if (own) {
      if (op.seq < p->orphan_from) info->own_held++;
      err = entries_drop(txn, store, p, lsn, &info->entries_dropped);
    } else {
      info->ops_dropped++;
    }
    if (err == VS_OK) err = del_key(txn, store->dbi_opid, op.id.bytes, VS_OP_ID_BYTES);
    if (err == VS_OK) err = del_key(txn, store->dbi_sigs, op.id.bytes, VS_OP_ID_BYTES);
    if (err == VS_OK) err = del_key(txn, store->dbi_inert, op.id.bytes, VS_OP_ID_BYTES);
    if (err == VS_OK) err = vs_mdb_err(mdb_cursor_del(cur, 0));
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

/* Idempotency keys of orphaned ops: their seqs are written again. */
static vs_err idem_wipe(MDB_txn *txn, const vs_store *store, const plan *p) {
  if (p->orphan_from > p->head.seq) return VS_OK;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_idem, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  vs_op_id first;
  vs_op_id_derive(p->self, p->orphan_from, &first);
  MDB_val k, v;
  vs_err err = VS_OK;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK; /* bounded: the keys */
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (v.mv_size < VS_OP_ID_BYTES) {
      err = VS_ERR_CORRUPT;
      break;
    }
    vs_op_id id;
    memcpy(id.bytes, v.mv_data, VS_OP_ID_BYTES);
    if (vs_op_id_same_origin(&id, &first) && vs_op_id_seq(&id) >= p->orphan_from)
      err = vs_mdb_err(mdb_cursor_del(cur, 0));
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

/* The heads of the other chains kept past their anchors (others_plan):
 * the install's anchors then set their horizons only (snapshot.c). */
static vs_err others_heads_put(MDB_txn *txn, vs_store *store, const plan *p) {
  vs_err err = VS_OK;
  for (uint32_t i = 0; i < p->kept_n && err == VS_OK; i++) err = vs_head_put_txn(txn, store, p->kept[i].origin, &p->kept[i].head);
  return err;
}

/* Our own head and horizon at the anchor, or at the last op kept above it. */
static vs_err own_chain_set(MDB_txn *txn, vs_store *store, const plan *p, vs_rebase_info *info) {
  uint64_t last = p->orphan_from <= p->head.seq ? p->orphan_from - 1 : p->head.seq;
  vs_err err = VS_OK;
  if (p->anchor_rec != NULL) {
    vs_horizon hz;
    memset(&hz, 0, sizeof hz);
    hz.seq = p->anchor;
    hz.hlc = vs_get_u64le(p->anchor_rec + VS_SNAP_ANCHOR_HLC);
    memcpy(hz.hash, p->anchor_rec + VS_SNAP_ANCHOR_HASH, VS_HASH_BYTES);
    hz.has_sig = true;
    memcpy(hz.sig, p->anchor_rec + VS_SNAP_ANCHOR_SIG, VS_SIGNATURE_BYTES);
    err = vs_horizon_put_txn(txn, store, p->self, &hz);
  }
  vs_head head;
  memset(&head, 0, sizeof head);
  if (err == VS_OK && last > p->anchor) {
    uint64_t lsn = 0;
    vs_op op;
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    err = own_op(txn, store, p, last, &lsn, head.hash, &op, &enc, &enc_bytes);
    head.seq = last;
    head.hlc = op.hlc;
    info->own_kept = last - p->anchor;
  } else if (p->anchor_rec != NULL) {
    head.seq = p->anchor;
    head.hlc = vs_get_u64le(p->anchor_rec + VS_SNAP_ANCHOR_HLC);
    memcpy(head.hash, p->anchor_rec + VS_SNAP_ANCHOR_HASH, VS_HASH_BYTES);
  }
  if (err == VS_OK && head.seq > 0) err = vs_head_put_txn(txn, store, p->self, &head);
  if (err == VS_OK && p->restore_to > 0 && p->restore_to <= head.seq) err = vs_meta_restore_put(txn, store, 0);
  info->own_head_after = head.seq;
  return err;
}

static vs_err empty(MDB_txn *txn, MDB_dbi dbi) { return vs_mdb_err(mdb_drop(txn, dbi, 0)); }

typedef struct notify {
  vs_store *store;
} notify;

static vs_err notify_cb(void *ctx, const vs_orphan *o) {
  notify *n = ctx;
  return n->store->on_orphan(n->store->on_orphan_ctx, o);
}

vs_err vs_snapshot_rebase(vs_store *store, vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms, vs_rebase_info *info) {
  return vs_snap_rebase_late(store, fn, ctx, now_ms, UINT64_MAX, 0, info);
}

vs_err vs_snap_rebase_late(vs_store *store, vs_snapshot_read_fn fn, void *ctx, uint64_t now_ms, uint64_t held,
                           uint64_t after_hlc, vs_rebase_info *info) {
  if (store == NULL || fn == NULL) return VS_ERR_INVAL;
  if (!store->has_identity) return VS_ERR_NO_IDENTITY;
  vs_rebase_info got;
  memset(&got, 0, sizeof got);
  vs_snap_head h;
  vs_err err = vs_snap_head_read(fn, ctx, now_ms, &h);
  if (err != VS_OK) return err;
  MDB_txn *txn = NULL;
  err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) {
    vs_snap_head_free(&h);
    return err;
  }
  plan p;
  memset(&p, 0, sizeof p);
  p.self = store->identity.pk;
  uint64_t marked = 0;
  err = vs_meta_late_get(txn, store, &marked);
  if (err == VS_OK && held == UINT64_MAX && marked != 0) held = 0; /* marked late: as the node's late rebase */
  p.late_held = held;
  p.late_after = after_hlc;
  if (err == VS_OK) err = vs_snap_mesh_check_txn(txn, store, &h);
  if (err == VS_OK) err = plan_make(txn, store, &h, &p);
  if (err == VS_OK) err = others_plan(txn, store, &h, &p);
  got.own_anchor = p.anchor;
  got.own_head_before = p.head.seq;
  if (err == VS_OK) err = orphans_write(txn, store, &p, &got);
  /* LSNs are never given twice (outbox entries and feeds key on them). */
  if (err == VS_OK) err = vs_wal_last_lsn_keep_txn(txn, store);
  if (err == VS_OK) err = empty(txn, store->dbi_mesh); /* kept own ops put theirs back in log_wipe */
  if (err == VS_OK) err = log_wipe(txn, store, &h, &p, &got);
  if (err == VS_OK) err = idem_wipe(txn, store, &p);
  MDB_dbi wiped[] = {store->dbi_heads, store->dbi_state,   store->dbi_incrs, store->dbi_hstate, store->dbi_hincrs,
                     store->dbi_horizon, store->dbi_forks, store->dbi_acks,  store->dbi_members};
  for (size_t i = 0; i < sizeof wiped / sizeof wiped[0] && err == VS_OK; i++) err = empty(txn, wiped[i]);
  if (err == VS_OK) err = own_chain_set(txn, store, &p, &got);
  if (err == VS_OK && held != UINT64_MAX) err = vs_meta_late_put(txn, store, 0); /* the absence is orphaned */
  if (err == VS_OK) err = others_heads_put(txn, store, &p);
  if (err == VS_OK) err = vs_snap_body_txn(txn, store, &h, fn, ctx, &got.snapshot);
  if (err == VS_OK) err = vs_txn_commit(txn);
  else mdb_txn_abort(txn);
  vs_snap_head_free(&h);
  free(p.kept);
  if (err != VS_OK) return err;
  if (info != NULL) *info = got;
  /* Surfaced once: the callback sees each new orphan after the commit. */
  if (got.orphaned > 0 && store->on_orphan != NULL) {
    notify n = {store};
    MDB_txn *rtxn;
    vs_err nerr = vs_txn_begin(store, false, &rtxn);
    if (nerr == VS_OK) {
      (void)vs_orphans_walk_txn(rtxn, store, got.first_orphan, notify_cb, &n); /* the rebase stands */
      mdb_txn_abort(rtxn);
    }
  }
  return VS_OK;
}
