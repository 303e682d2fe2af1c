/* The outbox's step transaction (outbox_step.h): results, lease expiry,
 * claims and ranges, each batch in one durable LMDB transaction, and the
 * single-entry calls built on it. */
#include "chain.h"
#include "outbox_int.h"
#include "wal_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- operations ---- */

vs_err vs_obx_begin(vs_outbox *ob, vs_obx_txn *t) {
  assert(ob != NULL && ob->store != NULL && t != NULL);
  t->dirty = false;
  t->ec = NULL;
  t->ec_lsn = 0;
  t->ic.cur = NULL;
  vs_err err = vs_txn_begin(ob->store, true, &t->txn);
  if (err != VS_OK) return err;
  err = vs_obx_counts_load(t->txn, ob->store, ob->sink, &t->counts);
  t->total_at_begin = vs_obx_counts_total(&t->counts);
  t->added = 0;
  t->removed = 0;
  t->rng_dirty = false;
  t->pmark_loaded = false;
  t->pmark = 0;
  if (err == VS_OK) err = vs_obx_ranges_get_txn(t->txn, ob->store, ob->sink, &t->ranges, &t->rng_from);
  if (err != VS_OK) mdb_txn_abort(t->txn);
  return err;
}

/* Commit what the step changed. A step that changed nothing (an idle tick)
 * commits nothing: no disk write, no fsync. */
vs_err vs_obx_finish(vs_outbox *ob, vs_obx_txn *t, vs_err err) {
  if (t->ec != NULL) mdb_cursor_close(t->ec);
  t->ec = NULL;
  if (t->ic.cur != NULL) mdb_cursor_close(t->ic.cur);
  t->ic.cur = NULL;
  if (err == VS_OK && !t->dirty) {
    mdb_txn_abort(t->txn);
    return VS_OK;
  }
  /* Every move took one from a state and gave it to another: only enqueues
   * and purges change the total, and no count went below zero. */
  assert(err != VS_OK || vs_obx_counts_consistent(&t->counts, t->total_at_begin, t->added, t->removed));
  if (err == VS_OK) err = vs_obx_counts_save(t->txn, ob->store, ob->sink, &t->counts);
  if (err == VS_OK && t->rng_dirty) err = vs_obx_ranges_put_txn(t->txn, ob->store, ob->sink, true, t->rng_from);
  if (err != VS_OK) {
    mdb_txn_abort(t->txn);
    return err;
  }
  return vs_txn_commit(t->txn);
}

/* The step's cursor on the entries, opened on first use. */
vs_err vs_obx_cursor(vs_outbox *ob, vs_obx_txn *t) {
  if (t->ec != NULL) return VS_OK;
  int rc = mdb_cursor_open(t->txn, ob->store->dbi_outbox, &t->ec);
  if (rc != MDB_SUCCESS) t->ec = NULL;
  return vs_mdb_err(rc);
}

/* Read entry `lsn` inside a step's transaction, leaving the entries cursor
 * on it for vs_obx_write. */
vs_err vs_obx_get(vs_outbox *ob, vs_obx_txn *t, uint64_t lsn, vs_outbox_entry *e) {
  t->ec_lsn = 0;
  vs_err cerr = vs_obx_cursor(ob, t);
  if (cerr != VS_OK) return cerr;
  uint8_t key[ENTRY_KEY_BYTES];
  vs_obx_entry_key(key, ob->sink, lsn);
  MDB_val k = {sizeof key, key}, v;
  vs_err err = vs_mdb_err(mdb_cursor_get(t->ec, &k, &v, MDB_SET_KEY));
  if (err == VS_OK) err = vs_obx_entry_decode(&v, lsn, e);
  if (err == VS_OK) t->ec_lsn = lsn;
  return err;
}

/* vs_obx_entry_write inside a step's transaction. Rewriting the entry vs_obx_get just
 * read goes through the cursor that is on it (no second search). */
static vs_err obx_write(vs_outbox *ob, vs_obx_txn *t, const vs_outbox_entry *old_e, const vs_outbox_entry *now_e) {
  t->dirty = true;
  if (old_e != NULL && t->ec != NULL && t->ec_lsn != old_e->lsn) {
    /* A step writes back the entries it read, youngest first: the cursor
     * finds each on the page it is on, or one next to it. */
    uint8_t key[ENTRY_KEY_BYTES];
    vs_obx_entry_key(key, ob->sink, old_e->lsn);
    MDB_val k = {sizeof key, key}, v;
    int rc = mdb_cursor_get(t->ec, &k, &v, MDB_SET);
    t->ec_lsn = rc == MDB_SUCCESS ? old_e->lsn : 0;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return vs_mdb_err(rc);
  }
  if (old_e == NULL || t->ec_lsn != old_e->lsn) {
    t->ec_lsn = 0; /* a put beside the cursor: do not trust its place */
    return vs_obx_entry_write(t->txn, ob->store, ob->sink, old_e, now_e, &t->counts, &t->ic, t->ranges);
  }
  vs_err err = vs_obx_index_move(t->txn, ob->store, ob->sink, old_e, now_e, &t->counts, &t->ic, t->ranges);
  if (err != VS_OK) return err;
  uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
  vs_obx_entry_key(key, ob->sink, now_e->lsn);
  MDB_val k = {sizeof key, key}, v = {vs_obx_entry_encode(now_e, buf), buf};
  return vs_mdb_err(mdb_cursor_put(t->ec, &k, &v, MDB_CURRENT));
}

/* The same, and a move to DONE below the purge mark gets its DONE key (the
 * purge's invariant, outbox_admin.c). */
vs_err vs_obx_write(vs_outbox *ob, vs_obx_txn *t, const vs_outbox_entry *old_e, const vs_outbox_entry *now_e) {
  vs_err err = obx_write(ob, t, old_e, now_e);
  if (err == VS_OK && now_e->state == VS_OUTBOX_DONE && old_e != NULL && old_e->state != VS_OUTBOX_DONE)
    err = vs_obx_done_mark(ob, t, now_e->lsn);
  return err;
}

/* vs_obx_entry_find inside a step's transaction. `lsn_hint` (0 = none) is where the
 * caller believes the entry is: used when the entry there is this op's. */
vs_err vs_obx_find(vs_outbox *ob, vs_obx_txn *t, const vs_op_id *id, uint64_t lsn_hint, vs_outbox_entry *e) {
  if (lsn_hint != 0) {
    vs_err err = vs_obx_get(ob, t, lsn_hint, e);
    if (err == VS_OK && vs_op_id_equal(&e->op_id, id)) return VS_OK;
    if (err != VS_OK && err != VS_ERR_NOTFOUND) return err;
  }
  uint64_t lsn;
  vs_err err = vs_opid_get(t->txn, ob->store, id, &lsn, NULL);
  if (err != VS_OK) return err;
  return vs_obx_get(ob, t, lsn, e);
}

vs_err vs_outbox_enqueue(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms) {
  if (outbox == NULL || id == NULL) return VS_ERR_INVAL;
  vs_obx_txn t;
  vs_err err = vs_obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  uint64_t lsn;
  uint32_t op_bytes = 0;
  err = vs_opid_get(t.txn, outbox->store, id, &lsn, NULL);
  if (err == VS_OK) err = vs_wal_op_bytes_txn(t.txn, outbox->store, lsn, &op_bytes);
  t.dirty = true;
  if (err == VS_OK)
    err = vs_obx_enqueue_txn(t.txn, outbox->store, outbox->sink, lsn, id, op_bytes, now_ms, &t.counts, t.ranges);
  if (err == VS_OK) t.added++;
  return vs_obx_finish(outbox, &t, err);
}

vs_err vs_outbox_claim(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms, uint64_t lease_ms,
                       vs_outbox_entry *entry_out) {
  if (outbox == NULL || id == NULL) return VS_ERR_INVAL;
  if (lease_ms == 0) return VS_ERR_INVAL;
  vs_obx_txn t;
  vs_err err = vs_obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  vs_outbox_entry old_e = {0}, e;
  err = vs_obx_find(outbox, &t, id, 0, &old_e);
  e = old_e;
  if (err == VS_OK && (old_e.state != VS_OUTBOX_PENDING || old_e.next_attempt_at_ms > now_ms)) err = VS_ERR_STATE;
  if (err == VS_OK) {
    vs_obx_to_inflight(&e, now_ms, lease_ms);
    err = vs_obx_write(outbox, &t, &old_e, &e);
  }
  vs_err done = vs_obx_finish(outbox, &t, err);
  if (entry_out != NULL && (done == VS_OK || done == VS_ERR_STATE)) *entry_out = done == VS_OK ? e : old_e;
  return done;
}

/* Turn expired leases back into retries, oldest lease first. */
static vs_err expire_leases(vs_outbox *ob, vs_obx_txn *t, uint64_t now_ms) {
  uint8_t prefix[4];
  vs_put_u32be(prefix, ob->sink);
  for (uint32_t i = 0; i < VS_OUTBOX_EXPIRE_PER_CALL; i++) {
    bool found;
    uint64_t until, lsn;
    vs_err err = vs_obx_first_key(t->txn, ob->store->dbi_obx_lease, prefix, sizeof prefix, &found, &until, &lsn);
    if (err != VS_OK) return err;
    if (!found || until > now_ms) return VS_OK;
    vs_outbox_entry old_e, e;
    err = vs_obx_get(ob, t, lsn, &old_e);
    if (err != VS_OK) return err == VS_ERR_NOTFOUND ? VS_ERR_CORRUPT : err;
    /* A lease key names an INFLIGHT entry; anything else is a damaged
     * store (an error, as claim_loop and move_all say for theirs), not the
     * bug vs_obx_index_move's transition assert is there to catch. */
    if (old_e.state != VS_OUTBOX_INFLIGHT) return VS_ERR_CORRUPT;
    e = old_e;
    vs_obx_to_retry(&e, &ob->policy, now_ms, "lease expired", 0);
    err = vs_obx_write(ob, t, &old_e, &e);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}

/* Write the transitions olds[i] -> news[i] for i = n-1 down to 0. Why
 * backwards: the entries were listed from the front of an index, oldest
 * first, and LMDB keeps a page's nodes in the order they were inserted, from
 * the top of the page down; deleting the oldest key first moves every
 * younger node of its page (a memmove of up to a page per delete), deleting
 * the youngest first moves none. The transaction ends in the same state. */
static vs_err write_back(vs_outbox *ob, vs_obx_txn *t, const vs_outbox_entry *olds, const vs_outbox_entry *news,
                         uint32_t n) {
  for (uint32_t i = n; i-- > 0;) {
    vs_err err = vs_obx_write(ob, t, &olds[i], &news[i]);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}

/* Claim ready entries in order (next attempt, then LSN) within the limits.
 * One pass of a cursor over the ready index lists them (their LSNs parked in
 * entries_out), then each is read and moved to INFLIGHT in that order. */
/* The LSNs of up to `max` entries from the front of this sink's ready index
 * (claim order) that are due at `due_ms`, with one cursor pass. The moves
 * that follow delete the keys walked, so the listing comes first. */
static vs_err list_ready(vs_outbox *ob, vs_obx_txn *t, uint64_t due_ms, uint32_t max, uint64_t *lsns,
                         uint32_t *listed_out) {
  uint8_t prefix[4];
  vs_put_u32be(prefix, ob->sink);
  *listed_out = 0;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(t->txn, ob->store->dbi_obx_ready, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint32_t listed = 0;
  MDB_val k = {sizeof prefix, prefix}, v;
  /* Bounded by max. */
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && listed < max;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < sizeof prefix || memcmp(k.mv_data, prefix, sizeof prefix) != 0) break;
    if (k.mv_size != 20) {
      rc = MDB_CORRUPTED;
      break;
    }
    if (vs_get_u64be((const uint8_t *)k.mv_data + 4) > due_ms) break; /* not due yet, nor anything after */
    lsns[listed++] = vs_get_u64be((const uint8_t *)k.mv_data + 12);
  }
  mdb_cursor_close(cur);
  *listed_out = listed;
  return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

static vs_err claim_loop(vs_outbox *ob, vs_obx_txn *t, uint64_t now_ms, const vs_outbox_claim_req *req, uint32_t *n_out) {
  *n_out = 0;
  uint32_t listed = 0;
  uint64_t *lsns = req->entries_max > 0 ? malloc(sizeof *lsns * req->entries_max) : NULL;
  if (req->entries_max > 0 && lsns == NULL) return VS_ERR_NOMEM;
  vs_err err = list_ready(ob, t, now_ms, req->entries_max, lsns, &listed);
  vs_outbox_entry *olds = NULL;
  if (err == VS_OK && listed > 0) {
    olds = malloc(sizeof *olds * listed);
    if (olds == NULL) err = VS_ERR_NOMEM;
  }
  uint32_t n = 0;
  uint64_t bytes = 0;
  for (; n < listed && err == VS_OK; n++) {
    err = vs_obx_get(ob, t, lsns[n], &olds[n]);
    if (err == VS_ERR_NOTFOUND || (err == VS_OK && olds[n].state != VS_OUTBOX_PENDING)) err = VS_ERR_CORRUPT;
    if (err != VS_OK) break;
    if (n > 0 && bytes + olds[n].op_bytes > req->bytes_max) break;
    bytes += olds[n].op_bytes;
    req->entries_out[n] = olds[n];
    vs_obx_to_inflight(&req->entries_out[n], now_ms, req->lease_ms);
  }
  if (err == VS_OK) err = write_back(ob, t, olds, req->entries_out, n);
  free(olds);
  free(lsns);
  *n_out = err == VS_OK ? n : 0;
  return err;
}

/* Apply one result inside the transaction. `e_out` gets the entry after. */
static vs_err apply_result(vs_outbox *ob, vs_obx_txn *t, const vs_outbox_result *r, uint64_t now_ms,
                           vs_outbox_verdict *verdict, vs_outbox_entry *e_out) {
  vs_outbox_entry old_e;
  vs_err err = vs_obx_find(ob, t, &r->op_id, r->lsn, &old_e);
  if (err == VS_ERR_NOTFOUND) {
    *verdict = VS_VERDICT_UNKNOWN;
    return VS_OK;
  }
  if (err != VS_OK) return err;
  vs_outbox_entry e = old_e;
  *e_out = old_e;
  if (r->kind == VS_RESULT_DONE) {
    if (old_e.state == VS_OUTBOX_DONE) {
      *verdict = VS_VERDICT_DUPLICATE;
      return VS_OK;
    }
    /* A late DONE still proves delivery: complete it rather than send again. */
    *verdict = old_e.state == VS_OUTBOX_INFLIGHT ? VS_VERDICT_APPLIED : VS_VERDICT_LATE;
    e.state = VS_OUTBOX_DONE;
    e.lease_until_ms = 0;
    e.updated_at_ms = now_ms;
  } else if (old_e.state != VS_OUTBOX_INFLIGHT || (r->attempt != 0 && r->attempt != old_e.attempts)) {
    /* A verdict on an attempt whose lease already ended: the entry has moved
     * on (retried, answered, or sent again), and this answer no longer
     * describes it. */
    *verdict = old_e.state == VS_OUTBOX_DONE ? VS_VERDICT_DUPLICATE : VS_VERDICT_STALE;
    return VS_OK;
  } else if (r->kind == VS_RESULT_RETRY) {
    *verdict = VS_VERDICT_APPLIED;
    vs_obx_to_retry(&e, &ob->policy, now_ms, r->reason, r->retry_after_ms);
  } else {
    *verdict = VS_VERDICT_APPLIED;
    e.state = VS_OUTBOX_FAILED;
    e.lease_until_ms = 0;
    e.updated_at_ms = now_ms;
    vs_obx_set_reason(&e, "", r->reason);
  }
  err = vs_obx_write(ob, t, &old_e, &e);
  if (err == VS_OK) *e_out = e;
  return err;
}

/* Complete the PENDING entries `h` covers, from the front of the ready
 * index, up to the first one it does not cover. Each pass lists up to
 * HELD_PASS LSNs with a cursor, then moves them (the moves delete the keys
 * the cursor walked, so the listing comes first). Bounded by h->max. */
#define HELD_PASS 1024u
/* held_loop for a ranges-only sink: the entries in LSN order from the mark,
 * each completed with one cursor step and an in-place rewrite; DONE and
 * FAILED ones are stepped over (a sink converted from a claimed one may
 * hold them). Stops at the first PENDING entry the range does not cover.
 * Bounded by h->max entries visited. */
static vs_err held_walk(vs_outbox *ob, vs_obx_txn *t, uint64_t now_ms, vs_outbox_held *h) {
  assert(t->ranges && h->max <= VS_OUTBOX_CLAIM_MAX);
  uint64_t upto = vs_op_id_seq(&h->through);
  vs_err cerr = vs_obx_cursor(ob, t);
  if (cerr != VS_OK) return cerr;
  t->ec_lsn = 0; /* the walk moves the cursor */
  uint8_t key[ENTRY_KEY_BYTES], buf[ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX];
  vs_obx_entry_key(key, ob->sink, t->rng_from);
  MDB_val k = {sizeof key, key}, v;
  uint32_t visits = 0;
  vs_err err = VS_OK;
  int rc;
  for (rc = mdb_cursor_get(t->ec, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(t->ec, &k, &v, MDB_NEXT)) {
    if (k.mv_size != ENTRY_KEY_BYTES || vs_get_u32be(k.mv_data) != ob->sink) break; /* past the sink */
    if (visits == h->max) {
      h->more = true;
      break;
    }
    visits++;
    uint64_t lsn = vs_get_u64be((const uint8_t *)k.mv_data + 4);
    vs_outbox_entry e;
    err = vs_obx_entry_decode(&v, lsn, &e);
    if (err != VS_OK) break;
    if (e.state == VS_OUTBOX_PENDING) {
      if (!vs_op_id_same_origin(&e.op_id, &h->through) || vs_op_id_seq(&e.op_id) > upto) break;
      assert(vs_obx_transition_legal(e.state, VS_OUTBOX_DONE));
      e.state = VS_OUTBOX_DONE;
      e.lease_until_ms = 0;
      e.updated_at_ms = now_ms;
      MDB_val nv = {vs_obx_entry_encode(&e, buf), buf};
      err = vs_mdb_err(mdb_cursor_put(t->ec, &k, &nv, MDB_CURRENT));
      if (err != VS_OK) break;
      if (t->counts.pending == 0) {
        err = VS_ERR_CORRUPT;
        break;
      }
      t->counts.pending--;
      t->counts.done++;
      h->completed++;
      t->dirty = true;
      err = vs_obx_done_mark(ob, t, lsn); /* below the purge mark: indexed */
      if (err != VS_OK) break;
    } else if (e.state == VS_OUTBOX_INFLIGHT) {
      break; /* claimed by hand (vs_outbox_claim): its result or lease decides first */
    }
    t->rng_from = lsn + 1;
    t->rng_dirty = true;
    t->dirty = true;
  }
  if (err == VS_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

static vs_err held_loop(vs_outbox *ob, vs_obx_txn *t, uint64_t now_ms, vs_outbox_held *h) {
  if (t->ranges) return held_walk(ob, t, now_ms, h);
  uint64_t upto = vs_op_id_seq(&h->through), lsns[HELD_PASS];
  vs_outbox_entry *olds = malloc(sizeof *olds * HELD_PASS * 2), *news = olds + HELD_PASS;
  if (olds == NULL) return VS_ERR_NOMEM;
  vs_err err = VS_OK;
  bool stop = false;
  while (!stop && err == VS_OK && h->completed < h->max) {
    uint32_t listed = 0, want = h->max - h->completed < HELD_PASS ? h->max - h->completed : HELD_PASS;
    err = list_ready(ob, t, UINT64_MAX, want, lsns, &listed); /* delivered: due or not */
    if (err != VS_OK) break;
    if (listed < want) stop = true; /* the ready index ends here */
    uint32_t n = 0;
    for (; n < listed && err == VS_OK; n++) {
      err = vs_obx_get(ob, t, lsns[n], &olds[n]);
      if (err == VS_ERR_NOTFOUND || (err == VS_OK && olds[n].state != VS_OUTBOX_PENDING)) err = VS_ERR_CORRUPT;
      if (err != VS_OK) break;
      if (!vs_op_id_same_origin(&olds[n].op_id, &h->through) || vs_op_id_seq(&olds[n].op_id) > upto) {
        stop = true;
        break;
      }
      news[n] = olds[n];
      news[n].state = VS_OUTBOX_DONE;
      news[n].lease_until_ms = 0;
      news[n].updated_at_ms = now_ms;
    }
    if (err == VS_OK) err = write_back(ob, t, olds, news, n);
    if (err == VS_OK) h->completed += n;
  }
  h->more = !stop && h->completed >= h->max;
  free(olds);
  return err;
}

vs_err vs_outbox_step(vs_outbox *outbox, uint64_t now_ms, const vs_outbox_result *results, uint32_t result_count,
                      vs_outbox_verdict *verdicts_out, const vs_outbox_claim_req *claim, uint32_t *claimed_out) {
  return vs_outbox_step_held(outbox, now_ms, NULL, results, result_count, verdicts_out, claim, claimed_out);
}

vs_err vs_outbox_step_held(vs_outbox *outbox, uint64_t now_ms, vs_outbox_held *held,
                           const vs_outbox_result *results, uint32_t result_count, vs_outbox_verdict *verdicts_out,
                           const vs_outbox_claim_req *claim, uint32_t *claimed_out) {
  if (outbox == NULL || (results == NULL && result_count > 0)) return VS_ERR_INVAL;
  if (held != NULL && held->max > VS_OUTBOX_CLAIM_MAX) return VS_ERR_INVAL;
  if (held != NULL) {
    held->completed = 0;
    held->more = false;
  }
  if (claim != NULL && (claim->lease_ms == 0 || claim->entries_max > VS_OUTBOX_CLAIM_MAX || claimed_out == NULL ||
                        (claim->entries_max > 0 && claim->entries_out == NULL)))
    return VS_ERR_INVAL;
  if (claimed_out != NULL) *claimed_out = 0;
  vs_obx_txn t;
  vs_err err = vs_obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  if (held != NULL) err = held_loop(outbox, &t, now_ms, held);
  for (uint32_t i = 0; i < result_count && err == VS_OK; i++) {
    vs_outbox_verdict v;
    vs_outbox_entry e;
    err = apply_result(outbox, &t, &results[i], now_ms, &v, &e);
    if (verdicts_out != NULL) verdicts_out[i] = v;
  }
  if (err == VS_OK) err = expire_leases(outbox, &t, now_ms);
  uint32_t n = 0;
  if (err == VS_OK && claim != NULL) err = claim_loop(outbox, &t, now_ms, claim, &n);
  err = vs_obx_finish(outbox, &t, err);
  if (err == VS_OK && claimed_out != NULL) *claimed_out = n;
  if (err != VS_OK && held != NULL) held->completed = 0; /* nothing changed */
  return err;
}

vs_err vs_outbox_claim_ready(vs_outbox *outbox, uint64_t now_ms, uint64_t lease_ms, uint32_t max_entries,
                             vs_outbox_entry *entries_out, uint32_t *count_out) {
  if (count_out == NULL) return VS_ERR_INVAL;
  vs_outbox_claim_req req = {lease_ms, max_entries, UINT64_MAX, entries_out};
  return vs_outbox_step(outbox, now_ms, NULL, 0, NULL, &req, count_out);
}

/* One result in its own transaction, for the single-entry calls. */
static vs_err apply_one(vs_outbox *outbox, const vs_outbox_result *r, uint64_t now_ms, vs_outbox_verdict *verdict,
                        vs_outbox_entry *entry_out) {
  if (outbox == NULL || r == NULL) return VS_ERR_INVAL;
  vs_obx_txn t;
  vs_err err = vs_obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  vs_outbox_entry e;
  err = apply_result(outbox, &t, r, now_ms, verdict, &e);
  err = vs_obx_finish(outbox, &t, err);
  if (err == VS_OK && entry_out != NULL && *verdict != VS_VERDICT_UNKNOWN) *entry_out = e;
  return err;
}

vs_err vs_outbox_complete(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms) {
  if (id == NULL) return VS_ERR_INVAL;
  vs_outbox_result r = {*id, VS_RESULT_DONE, 0, 0, NULL, 0};
  vs_outbox_verdict v;
  vs_err err = apply_one(outbox, &r, now_ms, &v, NULL);
  return err == VS_OK && v == VS_VERDICT_UNKNOWN ? VS_ERR_NOTFOUND : err;
}

vs_err vs_outbox_fail(vs_outbox *outbox, const vs_op_id *id, uint64_t now_ms, bool retryable, const char *reason,
                      uint64_t retry_after_ms, vs_outbox_entry *entry_out) {
  if (id == NULL) return VS_ERR_INVAL;
  vs_outbox_result r = {*id, retryable ? VS_RESULT_RETRY : VS_RESULT_FAILED, 0, retry_after_ms, reason, 0};
  vs_outbox_verdict v;
  vs_err err = apply_one(outbox, &r, now_ms, &v, entry_out);
  if (err != VS_OK) return err;
  if (v == VS_VERDICT_UNKNOWN) return VS_ERR_NOTFOUND;
  return v == VS_VERDICT_APPLIED ? VS_OK : VS_ERR_STATE;
}

vs_err vs_outbox_release(vs_outbox *outbox, const vs_op_id *ids, uint32_t count, uint64_t now_ms) {
  if (outbox == NULL || (ids == NULL && count > 0)) return VS_ERR_INVAL;
  vs_obx_txn t;
  vs_err err = vs_obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  for (uint32_t i = 0; i < count && err == VS_OK; i++) {
    vs_outbox_entry old_e, e;
    err = vs_obx_find(outbox, &t, &ids[i], 0, &old_e);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK;
      continue;
    }
    if (err != VS_OK || old_e.state != VS_OUTBOX_INFLIGHT) continue;
    e = old_e;
    e.state = VS_OUTBOX_PENDING;
    if (e.attempts > 0) e.attempts--; /* nothing left this process: refund it */
    e.lease_until_ms = 0;
    e.next_attempt_at_ms = now_ms;
    e.updated_at_ms = now_ms;
    err = vs_obx_write(outbox, &t, &old_e, &e);
  }
  return vs_obx_finish(outbox, &t, err);
}
