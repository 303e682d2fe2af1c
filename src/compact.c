#define _POSIX_C_SOURCE 200809L
/* Compaction below a stable cut (compact.h). */
#include "compact.h"
#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */

#include <stdlib.h>

#include "acks.h"
#include "chain.h"
#include "compact_final.h"
#include "fork.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "outbox_int.h"
#include "sinks.h"
#include "state_int.h"
#include "wal_int.h"

/* What one compaction call works with. */
typedef struct job {
  MDB_txn *txn;
  vs_store *store;
  uint8_t *buf; /* an op's encoding, copied out of the map (writes move pages) */
  uint32_t sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t sinks_n; /* sinks whose entries hold an op back (not ranges-only) */
  uint8_t base_hash[VS_HASH_BYTES];
  uint64_t gc_cap;     /* vs_compact_txn's: the GC bound is at most this */
  const uint8_t (*settled)[VS_ORIGIN_BYTES]; /* revoked devices whose revocation is final */
  uint32_t settled_n;
  uint32_t gc_pinned;  /* members silent past suspend_after that held the bound (gc_bound) */
} job;

/* One held op of the log: decoded from the copy in j->buf. */
typedef struct held_op {
  uint64_t lsn;
  uint8_t hash[VS_HASH_BYTES];
  vs_op op;
  bool mesh;  /* a membership op: it stays */
  bool inert; /* held without effect on the state (a reader's data op) */
} held_op;

static vs_err op_read(job *j, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, held_op *h) {
  vs_op_id id;
  vs_op_id_derive(origin, seq, &id);
  vs_err err = vs_opid_get(j->txn, j->store, &id, &h->lsn, h->hash);
  if (err == VS_ERR_NOTFOUND) return VS_ERR_CORRUPT; /* at or below the head: held */
  const uint8_t *enc = NULL;
  uint32_t enc_bytes = 0;
  if (err == VS_OK) err = vs_wal_op_encoded_txn(j->txn, j->store, h->lsn, &enc, &enc_bytes);
  if (err == VS_ERR_NOTFOUND) return VS_ERR_CORRUPT;
  if (err != VS_OK) return err;
  if (enc_bytes > VS_OP_ENCODED_BYTES_MAX) return VS_ERR_CORRUPT;
  memcpy(j->buf, enc, enc_bytes);
  if (vs_op_decode(j->buf, enc_bytes, &h->op) != VS_OK || h->op.seq != seq ||
      memcmp(h->op.origin, origin, VS_ORIGIN_BYTES) != 0)
    return VS_ERR_CORRUPT;
  h->mesh = vs_mesh_kind_reserved(h->op.kind, h->op.kind_bytes);
  MDB_val ik = {VS_OP_ID_BYTES, h->op.id.bytes}, iv;
  int rc = mdb_get(j->txn, j->store->dbi_inert, &ik, &iv);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return vs_mdb_err(rc);
  h->inert = rc == MDB_SUCCESS;
  return VS_OK;
}

/* May the op at `lsn` leave the log? Not while a sink that sends it (an
 * HTTP sink) has yet to: its entry is PENDING, INFLIGHT or FAILED. The
 * mesh's ranges-only sink never blocks: a stable op is held by every member. */
static vs_err outbox_lets_go(job *j, uint64_t lsn, bool *ok_out) {
  *ok_out = true;
  for (uint32_t i = 0; i < j->sinks_n; i++) {
    vs_outbox_entry e;
    vs_err err = vs_obx_entry_get(j->txn, j->store, j->sinks[i], lsn, &e);
    if (err == VS_ERR_NOTFOUND) continue;
    if (err != VS_OK) return err;
    if (e.state != VS_OUTBOX_DONE) {
      *ok_out = false;
      return VS_OK;
    }
  }
  return VS_OK;
}

static vs_err del_key(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_bytes) {
  MDB_val k = {key_bytes, (void *)key};
  int rc = mdb_del(txn, dbi, &k, NULL);
  return rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

/* The op at `seq` is at or below the new horizon and already folded: its
 * record, op id, signature and inert mark go; a membership op stays whole. */
static vs_err op_drop(job *j, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, vs_compact_result *res) {
  held_op h;
  vs_err err = op_read(j, origin, seq, &h);
  if (err != VS_OK || h.mesh) return err;
  uint8_t lsn_key[8];
  vs_put_u64be(lsn_key, h.lsn);
  err = del_key(j->txn, j->store->dbi_wal, lsn_key, sizeof lsn_key);
  if (err == VS_OK) err = del_key(j->txn, j->store->dbi_opid, h.op.id.bytes, VS_OP_ID_BYTES);
  if (err == VS_OK) err = del_key(j->txn, j->store->dbi_sigs, h.op.id.bytes, VS_OP_ID_BYTES);
  if (err == VS_OK && h.inert) err = del_key(j->txn, j->store->dbi_inert, h.op.id.bytes, VS_OP_ID_BYTES);
  if (err == VS_OK) res->records_dropped++;
  return err;
}

/* Move one origin's horizon towards `to`, spending *budget. */
/* The signature of the op `id`, if the origin signed there. */
static vs_err sig_of(job *j, const vs_op_id *id, bool *has_out, uint8_t sig_out[VS_SIGNATURE_BYTES]) {
  MDB_val sk = {VS_OP_ID_BYTES, (void *)id->bytes}, sv;
  int rc = mdb_get(j->txn, j->store->dbi_sigs, &sk, &sv);
  *has_out = rc == MDB_SUCCESS && sv.mv_size == VS_SIGNATURE_BYTES;
  if (*has_out && sig_out != NULL) memcpy(sig_out, sv.mv_data, VS_SIGNATURE_BYTES);
  return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

/* How far one origin's horizon may move from hz towards `to`: past no op a
 * sink has yet to deliver, no membership op without its own signature, and
 * only to a signed op (the anchor a snapshot gives its receiver is the
 * origin's own signature); about `budget` ops, more only to reach the first
 * signed op (a run: at most VS_APPLY_RUN_OPS_MAX of them in a received
 * run, though a store's own unsigned ops could make it longer: bounded by
 * `to`). *end_out: hz when nothing may go. */
static vs_err reach(job *j, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint64_t to, uint64_t budget,
                    uint64_t *end_out, vs_compact_result *res) {
  *end_out = from;
  vs_err err = VS_OK;
  for (uint64_t seq = from + 1; seq <= to && err == VS_OK; seq++) { /* bounded by to - from */
    if (seq - from > budget && *end_out > from) {
      res->more = true; /* the rest next time */
      break;
    }
    held_op h;
    bool ok = true, has_sig = false;
    err = op_read(j, origin, seq, &h);
    if (err == VS_OK) err = outbox_lets_go(j, h.lsn, &ok);
    if (err == VS_OK) err = sig_of(j, &h.op.id, &has_sig, NULL);
    if (err != VS_OK) break;
    if (!ok) {
      res->held_by_outbox++;
      break;
    }
    if (h.mesh && !has_sig) { /* it stays, and must stay provable alone */
      res->held_by_mesh++;
      break;
    }
    if (has_sig) *end_out = seq;
  }
  return err;
}

/* Move one origin's horizon towards `to`, spending *budget. */
static vs_err compact_origin(job *j, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t to, uint64_t *budget,
                             vs_compact_result *res) {
  vs_head head;
  vs_horizon hz;
  uint64_t void_from = 0;
  uint8_t void_prev[VS_HASH_BYTES];
  vs_err err = vs_head_get(j->txn, j->store, origin, &head);
  if (err == VS_OK) err = vs_horizon_get(j->txn, j->store, origin, &hz);
  if (err == VS_OK) err = vs_fork_get_txn(j->txn, j->store, origin, &void_from, void_prev);
  if (err != VS_OK) return err;
  if (void_from != 0) return VS_OK; /* an origin with fork evidence never advances */
  if (to > head.seq) to = head.seq;
  uint64_t from = hz.seq, end = hz.seq;
  if (to > from) err = reach(j, origin, from, to, *budget, &end, res);
  /* Bounded: each round folds one op (end - from of them). */
  for (uint64_t seq = from + 1; seq <= end && err == VS_OK; seq++) {
    held_op h;
    err = op_read(j, origin, seq, &h);
    if (err == VS_OK && !h.mesh && !h.inert) err = vs_state_fold_base_txn(j->txn, j->store, &h.op, h.hash, j->base_hash);
    /* A put or del folded is final: the incrs before it never count again. */
    if (err == VS_OK && !h.mesh && !h.inert && (strcmp(h.op.kind, "put") == 0 || strcmp(h.op.kind, "del") == 0))
      err = vs_state_prune_dead_incrs_txn(j->txn, j->store, h.op.target, h.op.target_bytes, &res->incrs_dropped);
    if (err == VS_OK && seq == end) {
      hz.seq = seq;
      hz.hlc = h.op.hlc;
      memcpy(hz.hash, h.hash, VS_HASH_BYTES);
      err = sig_of(j, &h.op.id, &hz.has_sig, hz.sig); /* signed: reach() ends only there */
      if (err == VS_OK && !hz.has_sig) err = VS_ERR_CORRUPT;
    }
    /* Its record goes (a membership op's stays): the horizon keeps the
     * anchor's hash, HLC and signature, all the chain needs from it. */
    if (err == VS_OK) err = op_drop(j, origin, seq, res);
    if (err == VS_OK) res->ops_folded++;
  }
  if (err != VS_OK || end == from) return err;
  err = vs_horizon_put_txn(j->txn, j->store, origin, &hz);
  res->origins_moved++;
  *budget = end - from >= *budget ? 0 : *budget - (end - from);
  return err;
}

/* The bound below which tombstones may go and incr rows fold (docs/
 * storage.md, "Dropping tombstones"): every op this store has not folded,
 * held or not, has an HLC above it. An honest chain's HLCs increase (each
 * write takes the clock past the last), so an origin's ops above its
 * horizon are above the anchor's HLC, and with no horizon yet at least its
 * first op's HLC (we hold it: nothing was folded): the bound is the least
 * of these over every origin held, but active members folded up to their
 * head (below). An origin with fork evidence holds two
 * branches of any HLCs: no bound (0). Origins we hold nothing of are
 * members whose acks (which a stable cut needs) show they hold everything
 * below it, so their ops come after, at higher HLCs; and devices not yet
 * admitted are invited later, by a member that held it. Bounded by the
 * origins held. */
static vs_err gc_bound(job *j, uint64_t *bound_out) {
  *bound_out = 0;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(j->txn, j->store->dbi_heads, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint64_t bound = UINT64_MAX, top = 0; /* top: the highest anchor HLC, what the base reaches */
  vs_err err = VS_OK;
  MDB_val k, v;
  uint8_t origin[VS_ORIGIN_BYTES];
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK && bound > 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != VS_ORIGIN_BYTES) {
      err = VS_ERR_CORRUPT;
      break;
    }
    memcpy(origin, k.mv_data, VS_ORIGIN_BYTES);
    vs_head head;
    err = vs_head_decode(&v, &head);
    if (err != VS_OK || head.seq == 0) continue;
    uint64_t void_from = 0;
    uint8_t void_prev[VS_HASH_BYTES];
    err = vs_fork_get_txn(j->txn, j->store, origin, &void_from, void_prev);
    if (err == VS_OK && void_from != 0) bound = 0;
    vs_horizon hz;
    if (err == VS_OK && bound > 0) err = vs_horizon_get(j->txn, j->store, origin, &hz);
    if (err != VS_OK || bound == 0) continue;
    if (hz.seq > 0 && hz.hlc > top) top = hz.hlc;
    /* An op of a chain whose HLC went back, above the horizon: it bounds. */
    uint64_t low_seq = 0, low_hlc = 0;
    err = vs_state_gc_low_get_txn(j->txn, j->store, origin, &low_seq, &low_hlc);
    if (err != VS_OK) continue;
    if (low_seq > hz.seq) {
      uint64_t at_low = low_hlc > 0 ? low_hlc - 1 : 0;
      if (at_low < bound) bound = at_low;
    }
    /* An active member of which we hold nothing above its horizon: the
     * ops of it we lack were written after its acknowledgement (a usable
     * one names only ops we hold), which a stable cut needs and which
     * covers everything folded: they are above all of it. No bound. Not
     * so once it is silent past suspend_after: its acks left the cut, and
     * what it wrote meanwhile is above only its last op we hold. The
     * bound stays at that op (below) for another suspend_after, so that
     * its writes are not refused below our floor while others, whose
     * floor had not passed them, take them (vix-sim: the mesh diverged);
     * past 2 x suspend_after it no longer bounds (storage stays bounded;
     * what it sends below the floor then is a too-late replica's). */
    if (hz.seq > 0 && hz.seq == head.seq) {
      vs_mesh_rec rec;
      bool gone = false;
      vs_err merr = vs_mesh_rec_get_txn(j->txn, j->store, origin, &rec);
      /* A revoked device whose revocation is final and whose chain we
       * hold and folded to its cut can send nothing valid any more: it
       * bounds nothing (before, every revoke held the GC at the revoked
       * device's last op for good: no tombstone dropped after it). */
      bool final = false;
      for (uint32_t k = 0; merr == VS_OK && rec.revoked && k < j->settled_n && !final; k++) /* bounded: members */
        final = memcmp(j->settled[k], origin, VS_ORIGIN_BYTES) == 0 && head.seq >= rec.cut_seq;
      if (final) continue;
      if (merr == VS_OK && !rec.revoked) {
        uint64_t s2 = j->store->suspend_after_ms > UINT64_MAX / 2 ? UINT64_MAX : 2 * j->store->suspend_after_ms;
        bool pin = false;
        merr = vs_acks_member_suspended_txn(j->txn, j->store, origin, j->store->suspend_after_ms, &pin);
        if (merr == VS_OK && pin) merr = vs_acks_member_suspended_txn(j->txn, j->store, origin, s2, &gone);
        if (merr == VS_OK && (!pin || gone)) continue;
        if (merr == VS_OK) j->gc_pinned++;
      }
      if (merr != VS_OK && merr != VS_ERR_NOTFOUND) err = merr;
      if (err != VS_OK) continue;
    }
    uint64_t at = hz.hlc;
    if (hz.seq == 0) {
      held_op h;
      err = op_read(j, origin, 1, &h); /* reads through the cursor's pages: nothing is written here */
      at = h.op.hlc > 0 ? h.op.hlc - 1 : 0;
    }
    if (err == VS_OK && at < bound) bound = at;
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  mdb_cursor_close(cur);
  /* Unconstrained (every origin an active member folded to its head): the
   * base's top, so that the walk's next round starts when more is folded. */
  if (bound > top) bound = top;
  if (bound > j->gc_cap) bound = j->gc_cap;
  if (err == VS_OK) *bound_out = bound;
  return err;
}

/* After the folds: the walk's next step under the bound. */
static vs_err gc_step(job *j, uint64_t budget, vs_compact_result *res) {
  uint64_t bound = 0;
  vs_err err = gc_bound(j, &bound);
  if (err != VS_OK) return err;
  res->gc_bound = bound;
  res->gc_pinned += j->gc_pinned;
  vs_state_gc_result g;
  memset(&g, 0, sizeof g);
  err = vs_state_gc_step_txn(j->txn, j->store, bound, budget, &g);
  res->gc_visited += g.visited;
  res->tombstones_dropped += g.tombstones_dropped;
  res->incr_rows_folded += g.incr_rows_folded;
  if (g.more) res->more = true;
  return err;
}

static int origin_cmp(const void *a, const void *b) { return memcmp(a, b, VS_ORIGIN_BYTES); }

vs_err vs_compact_txn(MDB_txn *txn, vs_store *store, const vs_cut_entry *cut, uint32_t n, uint64_t budget,
                      uint64_t gc_cap, const uint8_t (*settled)[VS_ORIGIN_BYTES], uint32_t settled_n,
                      vs_compact_result *res) {
  if (txn == NULL || store == NULL || (cut == NULL && n > 0) || budget == 0 || res == NULL) return VS_ERR_INVAL;
  /* An origin named twice is a caller's bug: refuse it before any write. */
  uint8_t(*seen)[VS_ORIGIN_BYTES] = n > 0 ? malloc((size_t)n * VS_ORIGIN_BYTES) : NULL;
  if (n > 0 && seen == NULL) return VS_ERR_NOMEM;
  for (uint32_t i = 0; i < n; i++) memcpy(seen[i], cut[i].origin, VS_ORIGIN_BYTES);
  if (n > 1) qsort(seen, n, VS_ORIGIN_BYTES, origin_cmp);
  bool twice = false;
  for (uint32_t i = 1; i < n && !twice; i++) twice = memcmp(seen[i - 1], seen[i], VS_ORIGIN_BYTES) == 0;
  free(seen);
  if (twice) return VS_ERR_INVAL;
  job j;
  memset(&j, 0, sizeof j);
  j.txn = txn;
  j.store = store;
  j.gc_cap = gc_cap;
  j.settled = settled;
  j.settled_n = settled_n;
  j.buf = malloc(VS_OP_ENCODED_BYTES_MAX);
  if (j.buf == NULL) return VS_ERR_NOMEM;
  uint32_t ids[VS_OUTBOX_SINKS_MAX], ids_n = 0;
  vs_err err = vs_sinks_list(txn, store, ids, &ids_n);
  for (uint32_t i = 0; i < ids_n && err == VS_OK; i++) {
    bool ranges_only = false;
    err = vs_obx_ranges_only_txn(txn, store, ids[i], &ranges_only);
    if (err == VS_OK && !ranges_only) j.sinks[j.sinks_n++] = ids[i];
  }
  if (err == VS_OK) err = vs_wal_last_lsn_keep_txn(txn, store); /* the log's last records may go */
  if (err == VS_OK) err = vs_state_base_hash_get_txn(txn, store, j.base_hash);
  uint64_t folded_before = res->ops_folded, budget_in = budget;
  for (uint32_t i = 0; i < n && err == VS_OK && budget > 0; i++)
    err = compact_origin(&j, cut[i].origin, cut[i].seq, &budget, res);
  /* The budget ran out: there may be more (a call that does not spend it
   * all has done everything it could; each call that does folds at least
   * one op, so calling again while `more` ends). */
  if (err == VS_OK && budget == 0) res->more = true;
  if (err == VS_OK && res->ops_folded > folded_before) err = vs_state_base_hash_put_txn(txn, store, j.base_hash);
  /* Tombstones and incr rows under the bound (the base hash stays: a
   * tombstone adds nothing to it, nor how a counter's rows are kept). */
  if (err == VS_OK) err = gc_step(&j, budget_in, res);
  free(j.buf);
  return err;
}

vs_err vs_compact_to(vs_store *store, const vs_cut_entry *cut, uint32_t n, uint64_t budget, vs_compact_result *res) {
  if (store == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  err = vs_compact_txn(txn, store, cut, n, budget, UINT64_MAX, NULL, 0, res);
  if (err != VS_OK) {
    mdb_txn_abort(txn);
    return err;
  }
  return vs_txn_commit(txn);
}

/* The stable cut, gathered for vs_compact_txn: the origins whose cut is
 * above nothing (0 is "nothing stable"). */
typedef struct cut_buf {
  vs_cut_entry *e;
  uint32_t n, cap;
} cut_buf;

static vs_err cut_collect(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx) {
  (void)head;
  cut_buf *b = ctx;
  if (VS_FAULT(VS_FAULT_COMPACT_ABOVE_CUT)) cut = head; /* fault: our head, not what every member holds */
  if (cut == 0) return VS_OK;
  if (b->n == b->cap) {
    uint32_t cap = b->cap == 0 ? 16 : b->cap * 2;
    vs_cut_entry *g = realloc(b->e, (size_t)cap * sizeof *g);
    if (g == NULL) return VS_ERR_NOMEM;
    b->e = g;
    b->cap = cap;
  }
  memcpy(b->e[b->n].origin, origin, VS_ORIGIN_BYTES);
  b->e[b->n].seq = cut;
  b->n++;
  return VS_OK;
}

/* The store's gc_floor, in a read transaction of its own. */
static vs_err gc_floor_read(vs_store *store, uint64_t *floor_out) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_state_gc_floor_get_txn(txn, store, floor_out);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_store_compact(vs_store *store, uint64_t max_ops, vs_compact_info *info) {
  if (store == NULL || max_ops == 0) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  cut_buf b = {NULL, 0, 0};
  vs_acks_cut_info ci;
  memset(&ci, 0, sizeof ci);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  /* The cut and the compaction in one transaction: nothing voids an op
   * between the two. */
  err = vs_acks_cut_txn(txn, store, store->suspend_after_ms, cut_collect, &b, &ci);
  /* Lowered where a membership verdict could still void ops (compact_final.h). */
  vs_final_info fi;
  memset(&fi, 0, sizeof fi);
  if (err == VS_OK && b.n > 0) err = vs_final_cut_txn(txn, store, b.e, b.n, &fi);
  if (err == VS_OK && b.n > 0 && fi.pending_invites == 0)
    err = vs_compact_txn(txn, store, b.e, b.n, max_ops, fi.gc_cap, (const uint8_t(*)[VS_ORIGIN_BYTES])fi.settled,
                         fi.settled_n, &res);
  free(b.e);
  free(fi.settled);
  uint64_t breaches = 0;
  if (err == VS_OK) err = vs_horizon_breaches_get_txn(txn, store, &breaches);
  if (err == VS_OK && (res.ops_folded > 0 || res.gc_visited > 0)) err = vs_txn_commit(txn);
  else mdb_txn_abort(txn);
  if (err == VS_OK && info != NULL) {
    memset(info, 0, sizeof *info);
    info->ops_folded = res.ops_folded;
    info->records_dropped = res.records_dropped;
    info->origins_moved = res.origins_moved;
    info->held_by_outbox = res.held_by_outbox;
    info->held_by_mesh = res.held_by_mesh;
    info->members = ci.members;
    info->members_acked = ci.with_ack;
    info->stable_ops = ci.stable_ops;
    info->pending_invites = fi.pending_invites;
    info->unfinal_members = fi.unfinal_members;
    info->revoked_holding = fi.revoked_holding;
    info->horizon_breaches = breaches;
    info->members_suspended = ci.suspended;
    info->more = res.more;
    info->tombstones_dropped = res.tombstones_dropped;
    info->incr_rows_folded = res.incr_rows_folded;
    info->gc_pinned = res.gc_pinned + fi.gc_pinned_invites;
    err = gc_floor_read(store, &info->gc_floor);
  }
  return err;
}
