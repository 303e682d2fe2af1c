#define _POSIX_C_SOURCE 200809L
/* The node's version vectors (node_int.h): sorted arrays, the in-flight
 * credit of runs sent, our vector from the store, and a peer's vector
 * assembled from its VV parts. */
#include "node_int.h"

#include <stdlib.h>

/* ---- version vectors as sorted arrays ---- */

int nd_vv_find(const vv *v, const uint8_t origin[VS_ORIGIN_BYTES], bool *found) {
  int lo = 0, hi = (int)v->n;
  while (lo < hi) { /* binary search: O(log n) steps */
    int mid = (lo + hi) / 2;
    int c = memcmp(v->e[mid].origin, origin, VS_ORIGIN_BYTES);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = false;
  return lo;
}

uint64_t nd_vv_get(const vv *v, const uint8_t origin[VS_ORIGIN_BYTES]) {
  bool found;
  int i = nd_vv_find(v, origin, &found);
  return found ? v->e[i].seq : 0;
}

/* The seq of `origin` in v for a walk that asks origins in increasing
 * order: *at (0 to start) only moves forward, so a walk over n origins
 * costs O(n + v->n) comparisons, not O(n log v->n). */
uint64_t nd_vv_seek(const vv *v, uint32_t *at, const uint8_t origin[VS_ORIGIN_BYTES]) {
  int c = 1;
  while (*at < v->n && (c = memcmp(v->e[*at].origin, origin, VS_ORIGIN_BYTES)) < 0) (*at)++; /* bounded: v->n */
  return *at < v->n && c == 0 ? v->e[*at].seq : 0;
}

/* Set `origin`'s entry; head (VS_VV_HEAD_BYTES, may be NULL: zero) is
 * what VV messages carry of the op at seq. */
static uint64_t entry_sum(const vs_vv_entry *e) { return vs_vv_sum_entry(e->origin, e->seq, e->head); }

vs_err nd_vv_set(vv *v, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *head) {
  bool found;
  int i = nd_vv_find(v, origin, &found);
  if (found) {
    if (v->summed) v->sum -= entry_sum(&v->e[i]);
    v->e[i].seq = seq;
    if (head != NULL) memcpy(v->e[i].head, head, VS_VV_HEAD_BYTES);
    else memset(v->e[i].head, 0, VS_VV_HEAD_BYTES);
    if (v->summed) v->sum += entry_sum(&v->e[i]);
    return VS_OK;
  }
  /* No cap here: our own vector holds every origin the store holds (a wire
   * limit here once made a store that held more unopenable, issue 14); what
   * a peer can add to the vectors kept of it is limited by the caller
   * (nd_vv_keep). Parts of VS_WIRE_VV_MAX carry it on the wire. */
  if (v->n == UINT32_MAX) return VS_ERR_LIMIT;
  if (v->n == v->cap) {
    uint32_t cap = v->cap == 0 ? 8 : (v->cap > UINT32_MAX / 2 ? UINT32_MAX : v->cap * 2);
    vs_vv_entry *e = realloc(v->e, sizeof *e * cap);
    if (e == NULL) return VS_ERR_NOMEM;
    v->e = e;
    v->cap = cap;
  }
  memmove(&v->e[i + 1], &v->e[i], sizeof *v->e * (v->n - (uint32_t)i));
  memcpy(v->e[i].origin, origin, VS_ORIGIN_BYTES);
  v->e[i].seq = seq;
  if (head != NULL) memcpy(v->e[i].head, head, VS_VV_HEAD_BYTES);
  else memset(v->e[i].head, 0, VS_VV_HEAD_BYTES);
  v->e[i].gen = 0;
  v->e[i].born = 0;
  v->e[i].short_id = false;
  if (v->summed) v->sum += entry_sum(&v->e[i]);
  v->n++;
  return VS_OK;
}

/* Drop `origin`'s entry (a fork verdict voided all of it). */
static void vv_remove(vv *v, const uint8_t origin[VS_ORIGIN_BYTES]) {
  bool found;
  int i = nd_vv_find(v, origin, &found);
  if (!found) return;
  if (v->summed) v->sum -= entry_sum(&v->e[i]);
  memmove(&v->e[i], &v->e[i + 1], sizeof *v->e * (v->n - (uint32_t)i - 1));
  v->n--;
}


void nd_vv_free(vv *v) {
  free(v->e);
  memset(v, 0, sizeof *v);
}

/* Append an entry past the last one (origins arrive sorted). */
static vs_err vv_append(vv *v, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *head) {
  if (v->n > 0 && memcmp(v->e[v->n - 1].origin, origin, VS_ORIGIN_BYTES) >= 0) return VS_ERR_MALFORMED;
  return nd_vv_set(v, origin, seq, head); /* lands at the end: nothing moves */
}

/* ---- in-flight credit ---- */

void nd_flight_clear(peer *p) {
  free(p->fl);
  p->fl = NULL;
  p->fl_n = p->fl_cap = 0;
  p->inflight_bytes = 0;
}

/* Record a run sent (its credit is added to inflight_bytes by the caller,
 * once the message is queued). Bounded by the window: runs are only added
 * while inflight_bytes < inflight_bytes_max, one message at a time. */
vs_err nd_flight_add(peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t end, uint64_t bytes, uint64_t now_ms) {
  if (p->fl_n == p->fl_cap) {
    uint32_t cap = p->fl_cap == 0 ? 16 : p->fl_cap * 2;
    flight *f = realloc(p->fl, sizeof *f * cap);
    if (f == NULL) return VS_ERR_NOMEM;
    p->fl = f;
    p->fl_cap = cap;
  }
  memcpy(p->fl[p->fl_n].origin, origin, VS_ORIGIN_BYTES);
  p->fl[p->fl_n].end = end;
  p->fl[p->fl_n].bytes = bytes;
  p->fl[p->fl_n].at_ms = now_ms;
  p->fl_n++;
  return VS_OK;
}

/* ---- one origin sent again ----
 * The resend timer measures the oldest unacknowledged push, but any
 * progress restarts it: while a peer acknowledges other origins, a run it
 * refused stays unacknowledged and is never sent again. A run of a new
 * member that a peer refused (its admission had not reached it: mgate.h),
 * relayed by the one node that held it before its author went away, was
 * never sent to that peer again while writes went on: the peer lacked those
 * ops for good, and the relay's acks, which name them, were held back
 * from it (nd_acks_relay), so every member left the relay out of its
 * stable cut as silent (vix-sim --managed, compaction_suspend_late, seed
 * 16). So each run in flight has its own deadline, resend_ms doubled per
 * such resend (stuck_level, back to 0 once the peer holds all we sent; at
 * most resend_max_ms): past it, that origin alone is sent again from what
 * the peer's vector holds. A run refused for good (below the peer's floor)
 * costs one run per resend_max_ms. */

static uint64_t stuck_wait_ms(const vs_node *n, const peer *p) {
  uint64_t wait = n->cfg.resend_ms;
  for (uint32_t i = 0; i < p->stuck_level && wait < n->cfg.resend_max_ms; i++) wait *= 2; /* bounded: level */
  return wait < n->cfg.resend_max_ms ? wait : n->cfg.resend_max_ms;
}

/* Whether flight `f` is one the resend timer no longer covers: the peer
 * made progress after it was sent (sent_at_ms moved past it). A peer that
 * acknowledges nothing is the resend timer's alone (its window once per
 * backed-off resend, test_node_attacks.c). */
static bool flight_orphaned(const peer *p, const flight *f) { return p->sent_at_ms > f->at_ms; }

/* When the oldest run in flight is due to be sent again (UINT64_MAX: none,
 * or the resend timer covers it). Runs are kept in the order they were
 * sent. */
uint64_t nd_flight_stuck_at(const vs_node *n, const peer *p) {
  if (p->fl_n == 0 || !flight_orphaned(p, &p->fl[0])) return UINT64_MAX;
  return vs_add_sat_u64(p->fl[0].at_ms, stuck_wait_ms(n, p));
}

void nd_flight_unstick(vs_node *n, peer *p, uint64_t now_ms) {
  if (now_ms < nd_flight_stuck_at(n, p)) return;
  uint64_t wait = stuck_wait_ms(n, p);
  uint32_t again = 0;
  /* Bounded: each pass takes out every flight of one origin. */
  while (p->fl_n > 0 && flight_orphaned(p, &p->fl[0]) && now_ms >= vs_add_sat_u64(p->fl[0].at_ms, wait)) {
    uint8_t origin[VS_ORIGIN_BYTES];
    memcpy(origin, p->fl[0].origin, VS_ORIGIN_BYTES);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < p->fl_n; i++) { /* bounded: fl_n */
      if (memcmp(p->fl[i].origin, origin, VS_ORIGIN_BYTES) == 0) {
        assert(p->fl[i].bytes <= p->inflight_bytes);
        p->inflight_bytes -= p->fl[i].bytes;
        continue;
      }
      p->fl[keep++] = p->fl[i];
    }
    p->fl_n = keep;
    /* From what its vector holds: push_ops sends from there. */
    uint64_t known = nd_vv_get(&p->known, origin);
    if (known > 0) (void)nd_vv_set(&p->sent, origin, known, NULL); /* an entry exists: no allocation */
    else vv_remove(&p->sent, origin);
    again++;
  }
  if (again == 0) return;
  n->stats.origin_resends += again;
  if (p->stuck_level < RESEND_LEVEL_MAX) p->stuck_level++;
}

/* Release the credit of every run `acked` holds: only what a vector
 * acknowledges gives credit back (an empty or stale vector gives none).
 * Returns the bytes released. */
static uint64_t flight_release(peer *p, const vv *acked) {
  uint64_t released = 0;
  uint32_t keep = 0;
  for (uint32_t i = 0; i < p->fl_n; i++) { /* bounded: fl_n */
    if (nd_vv_get(acked, p->fl[i].origin) >= p->fl[i].end) {
      released += p->fl[i].bytes;
      continue;
    }
    p->fl[keep++] = p->fl[i];
  }
  p->fl_n = keep;
  assert(released <= p->inflight_bytes);
  p->inflight_bytes -= released;
  return released;
}

/* How long the oldest unacknowledged push may wait before it is sent again:
 * resend_ms doubled per resend without progress, at most resend_max_ms. */
uint64_t nd_resend_wait_ms(const vs_node *n, const peer *p) {
  uint64_t wait = n->cfg.resend_ms;
  for (uint32_t i = 0; i < p->resend_level && wait < n->cfg.resend_max_ms; i++) wait *= 2; /* bounded: level */
  return wait < n->cfg.resend_max_ms ? wait : n->cfg.resend_max_ms;
}

/* What `p`'s last vector holds of our own chain, counted only when it
 * names our op there by hash (its head bytes): a member cannot claim ops
 * of ours it never received (we never sent them, it cannot know their
 * hashes) to mark them delivered (the mesh sink's DONE, which a rebase
 * then will not orphan: VS_ERR_HELD), nor to keep a too-late replica from
 * orphaning them (node_snap.c). A seq compacted here (no op to compare)
 * is below the stable cut: every member holds it. Claims past our head are
 * policed apart (own_claim). */
uint64_t nd_own_claim_verified(vs_node *n, const peer *p) {
  const uint8_t *self = n->cfg.identity.pk;
  bool found = false;
  int i = nd_vv_find(&p->known, self, &found);
  if (!found) return 0;
  const vs_vv_entry *e = &p->known.e[i];
  uint64_t head = nd_vv_get(&n->mine, self);
  if (e->seq == 0 || e->seq > head) return e->seq;
  bool mine_found = false;
  int j = nd_vv_find(&n->mine, self, &mine_found);
  if (mine_found && e->seq == head) return memcmp(n->mine.e[j].head, e->head, VS_VV_HEAD_BYTES) == 0 ? e->seq : 0;
  MDB_txn *txn;
  uint8_t hash[VS_HASH_BYTES];
  if (vs_txn_begin(n->store, false, &txn) != VS_OK) return 0; /* not counted now: the next vector */
  vs_err err = vs_op_hash_at_txn(txn, n->store, self, e->seq, hash);
  mdb_txn_abort(txn);
  if (err == VS_ERR_NOTFOUND) return e->seq;
  return err == VS_OK && memcmp(hash, e->head, VS_VV_HEAD_BYTES) == 0 ? e->seq : 0;
}

/* Our vector from the store's chain heads (one read transaction): a new
 * generation, from which deltas start (every peer is told it whole next). */
vs_err nd_load_mine(vs_node *n) {
  n->mine.summed = true;
  n->mine.sum = 0;
  n->vv_cut_gen = ++n->vv_gen;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, n->store->dbi_heads, &cur);
  MDB_val k, v;
  if (rc == MDB_SUCCESS) {
    /* Bounded: one step per origin held. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      vs_head h;
      err = k.mv_size == VS_ORIGIN_BYTES ? vs_head_decode(&v, &h) : VS_ERR_CORRUPT;
      if (err == VS_OK && h.seq > 0) err = vv_append(&n->mine, k.mv_data, h.seq, h.hash);
      if (err == VS_OK && h.seq > 0) n->mine.e[n->mine.n - 1].gen = n->mine.e[n->mine.n - 1].born = n->vv_gen;
    }
    mdb_cursor_close(cur);
  }
  if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS && err == VS_OK) err = vs_mdb_err(rc);
  mdb_txn_abort(txn);
  return err;
}

/* Refresh our vector's entry for `origin` from the store (it may fall, or
 * go, after a fork verdict). */
vs_err nd_refresh_mine(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t seq = 0;
  uint8_t hash[VS_HASH_BYTES];
  vs_err err = vs_wal_head(n->store, origin, &seq, hash, NULL);
  if (err != VS_OK) return err;
  bool found = false;
  int i = nd_vv_find(&n->mine, origin, &found);
  if (found && n->mine.e[i].seq == seq && memcmp(n->mine.e[i].head, hash, VS_VV_HEAD_BYTES) == 0) return VS_OK;
  if (!found && seq == 0) return VS_OK;
  n->vv_gen++; /* a change: deltas carry the entry from this generation on */
  if (seq == 0) {
    vv_remove(&n->mine, origin);
    n->vv_cut_gen = n->vv_gen; /* deltas cannot say an entry went: peers are told the whole vector */
    return VS_OK;
  }
  err = nd_vv_set(&n->mine, origin, seq, hash);
  if (err != VS_OK) return err;
  bool was_found = found;
  i = nd_vv_find(&n->mine, origin, &found);
  assert(found);
  n->mine.e[i].gen = n->vv_gen;
  if (!was_found) n->mine.e[i].born = n->vv_gen;
  /* A peer that holds this seq with another head holds another branch:
   * deltas will not repeat its unchanged entry, so look now (maintain). */
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) { /* bounded: the peer slots */
    peer *p = &n->peers[s];
    if (p->st != PEER_READY || p->fk_recheck) continue;
    int j = nd_vv_find(&p->known, origin, &found);
    if (!found || p->known.e[j].seq != seq || memcmp(p->known.e[j].head, hash, VS_VV_HEAD_BYTES) == 0) continue;
    p->fk_recheck = true;
    memcpy(p->fk_recheck_origin, origin, VS_ORIGIN_BYTES);
  }
  return VS_OK;
}

/* What we keep of a peer's vector: origins we hold, and our own (what it
 * holds of us). Anything else it claims is of no use to us (we have nothing
 * of that origin to send), and keeping it would let a peer make us spend
 * memory on origins it invents. Bounded by our own vector, plus one. */
bool nd_vv_keep(const vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  return nd_vv_get(&n->mine, origin) > 0 || memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0;
}

/* ---- a peer's vector, from its parts (wire.h, VV) ---- */

static void asm_drop(peer *p) {
  nd_vv_free(&p->asm);
  p->asm_vector = 0;
  p->asm_next = p->asm_parts = 0;
  p->asm_partial = false;
}

/* An entry of a peer's vector may fall, within a session, only where the
 * receiver holds a fork verdict voiding that origin from the fork's seq on
 * (apply.h, FORKS), and only to just below it. Evidence may trail the
 * vector that shows the fall (frames reordered, or the peer heard of it
 * first): vv_complete then keeps the old entry and waits a claim grace for
 * the verdict before it calls the fall a lie. */
static bool vv_fall_exempt(const vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t was, uint64_t now) {
  uint64_t void_from = 0;
  (void)was;
  if (vs_apply_void_from(n->store, origin, &void_from) == VS_OK && void_from != 0 && now >= void_from - 1) return true;
  /* A revocation cut or a lost admission voids as a verdict does (node_member.c). */
  return nd_member_fall_exempt(n, origin, now);
}

/* A complete vector (p->asm, numbered p->asm_vector) from `p`: check it does
 * not go backwards, release the credit of what it newly acknowledges, and
 * make it the peer's known vector. */

/* Whether a peer's known vector may take an entry of `origin`: origins we
 * hold and our own always; others (it holds what we do not yet) while the
 * copy holds fewer than our origins + 1 + VV_FOREIGN_MAX entries, so that
 * its digest can be checked and its entry is at hand once we hold that
 * origin too. A peer inventing origins costs us at most that many entries
 * per copy (its known vector, and one being assembled). */
static bool known_room(const vs_node *n, const vv *v, const uint8_t origin[VS_ORIGIN_BYTES]) {
  return nd_vv_keep(n, origin) || v->n < n->mine.n + 1u + VV_FOREIGN_MAX;
}

/* Ask `p` for its whole vector: our next VV tells it we hold none of it. */
static void want_full(vs_node *n, peer *p) {
  if (!p->want_full) n->stats.vv_resyncs++;
  p->want_full = true;
  p->vv_due = true;
}

/* The changes a complete vector (p->asm: whole, or a delta against a
 * generation we hold) makes to p->known, into *chg (sorted by origin; seq 0:
 * the origin went). A whole vector also drops what it lacks. */
static vs_err vv_changes(const peer *p, bool whole, vv *chg) {
  vs_err err = VS_OK;
  uint32_t i = 0, j = 0;
  /* Bounded: each step consumes an entry of asm or of known. */
  while (err == VS_OK && (i < p->asm.n || (whole && j < p->known.n))) {
    int c = i == p->asm.n ? 1 : !whole || j == p->known.n ? -1 : memcmp(p->asm.e[i].origin, p->known.e[j].origin, VS_ORIGIN_BYTES);
    if (c < 0 || (c == 0)) {
      err = vv_append(chg, p->asm.e[i].origin, p->asm.e[i].seq, p->asm.e[i].head);
      i++;
      if (c == 0) j++;
    } else {
      err = vv_append(chg, p->known.e[j].origin, 0, NULL);
      j++;
    }
  }
  return err;
}

/* A complete vector (p->asm, numbered p->asm_vector: whole, or a delta)
 * from `p`: check it does not go backwards, make it the peer's known
 * vector, release the credit of what it newly acknowledges. The work is
 * the size of the change, not of the vector (wire v6). */
static vs_err vv_complete(vs_node *n, peer *p, uint64_t now_ms) {
  bool whole = p->asm_base == 0;
  if (!whole && p->known_vector == 0) {
    /* A delta and we hold none of its vector (a lie, or ours was lost to
     * a reset): nothing of it is taken; we ask for the whole. */
    asm_drop(p);
    want_full(n, p);
    return VS_OK;
  }
  /* A delta past what we hold: one before it was lost (or is still on its
   * way, reordered). Its entries are the peer's now, so they are taken
   * (what the lost one changed stays as we had it: lower, never higher,
   * so we may send what it holds, never hold back what it lacks), but we
   * do not hold its generation: our next VV asks, at once, for the changes
   * since the one we hold (VS_VV_GAP), and its digest is not checked. */
  bool gap = !whole && p->asm_base > p->known_gen;
  if (gap) {
    if (!p->gap_due) n->stats.vv_gaps++;
    p->gap_due = true;
    p->vv_due = true;
  }
  vv chg = {0};
  vs_err err = vv_changes(p, whole, &chg);
  if (err != VS_OK) {
    nd_vv_free(&chg);
    return err;
  }
  bool kept_old = false;
  /* Falls first, nothing changed yet: a session that closes keeps nothing. */
  for (uint32_t i = 0; i < chg.n; i++) { /* bounded: chg.n */
    vs_vv_entry *e = &chg.e[i];
    bool found = false;
    int k = nd_vv_find(&p->known, e->origin, &found);
    uint64_t was = found ? p->known.e[k].seq : 0;
    if (e->seq >= was || vv_fall_exempt(n, e->origin, was, e->seq)) continue;
    /* An origin we hold nothing of: no credit or claim rests on it, and a
     * whole vector past VV_FOREIGN_MAX leaves such entries out (it is
     * partial here), which is no fall. */
    if (!nd_vv_keep(n, e->origin)) continue;
    if (n->mesh_managed) {
      /* A managed mesh: the peer may have taken a revoke (or a fork
       * verdict) we lack yet, for several origins at once (a cascade). Its
       * old entry stands, so nothing is released or sent again on its word,
       * and the session goes on: once the revoke is here the fall is
       * exempt (node_member.c). */
      e->seq = was;
      memcpy(e->head, p->known.e[k].head, VS_VV_HEAD_BYTES);
      kept_old = true;
      continue;
    }
    /* A store never loses ops: a peer whose vector falls is lying (or
     * broken), unless a fork verdict we have not had yet voided what it
     * held (one origin at a time, for a claim grace). Meanwhile its old
     * entry stands: nothing is released or sent again on its word. */
    if (!p->fall_pending || memcmp(p->fall_origin, e->origin, VS_ORIGIN_BYTES) == 0) {
      if (!p->fall_pending) p->fall_deadline_ms = vs_add_sat_u64(now_ms, nd_claim_grace_ms(n));
      p->fall_pending = true;
      memcpy(p->fall_origin, e->origin, VS_ORIGIN_BYTES);
      e->seq = was;
      memcpy(e->head, p->known.e[k].head, VS_VV_HEAD_BYTES);
      kept_old = true;
      continue;
    }
    /* Releasing credit on its word would let it pull without bound
     * (issue 14). The session ends; a new one starts afresh. */
    n->stats.rejected_vv_regress++;
    n->reject_counted = true;
    nd_vv_free(&chg);
    asm_drop(p);
    nd_peer_close(n, p);
    return VS_ERR_STATE;
  }
  /* Apply the changes: whether its vector moved, and whether it now holds
   * more of what we sent it (acks are coming in). */
  bool moved = false, progress = false;
  for (uint32_t i = 0; i < chg.n && err == VS_OK; i++) { /* bounded: chg.n */
    const vs_vv_entry *e = &chg.e[i];
    bool found = false;
    int k = nd_vv_find(&p->known, e->origin, &found);
    uint64_t was = found ? p->known.e[k].seq : 0;
    if (found && was == e->seq && memcmp(p->known.e[k].head, e->head, VS_VV_HEAD_BYTES) == 0) continue;
    if (!found && e->seq == 0) continue;
    moved = true;
    if (e->seq > was && nd_vv_get(&p->sent, e->origin) > was) progress = true;
    /* A fall that stands (a verdict, a cut): what it sent us past it is
     * gone there; send it again from there if it asks. */
    if (e->seq < was && nd_vv_get(&p->has, e->origin) > e->seq) (void)nd_vv_set(&p->has, e->origin, e->seq, NULL); /* no allocation: it exists */
    /* A link that pushes us nothing: it holds what we lack; the tree
     * should bring it soon (nd_tree_tick grafts the link if it does not). */
    if (e->seq > nd_vv_get(&n->mine, e->origin) && !nd_tree_listens(n, p)) nd_tree_lack(p, e, now_ms);
    if (e->seq == 0) vv_remove(&p->known, e->origin);
    else if (found || known_room(n, &p->known, e->origin)) err = nd_vv_set(&p->known, e->origin, e->seq, e->head);
    else p->known_partial = true;
  }
  if (err != VS_OK) {
    nd_vv_free(&chg);
    asm_drop(p);
    return err;
  }
  if (whole) {
    p->known_partial = p->asm_partial;
    p->want_full = false;
    p->known_kept = kept_old;
  } else {
    p->known_kept = p->known_kept || kept_old;
    p->known_partial = p->known_partial || p->asm_partial;
  }
  p->known_vector = p->asm_vector;
  if (!gap) p->known_gen = p->asm_gen;
  p->peer_held = p->asm_held;
  /* It missed a delta of ours, or asks for the whole (held 0 after our
   * first): the next delta builds on what it holds. At the pace of news
   * (nd_vv_send_due), not at once: its asking cannot make us send faster. */
  if (p->asm_gap || (p->asm_held == 0 && p->vv_out_no > 0)) {
    p->vv_base = p->asm_held;
    p->resend_base = true;
  }
  p->peer_wants = p->asm_want;
  p->adv_set = true;
  p->adv_dist = p->asm_dist;
  p->adv_root = p->asm_root;
  p->adv_parent = p->asm_parent;
  uint64_t sum = p->asm_sum;
  asm_drop(p);
  /* Drift (a bug, a lost reset): its digest is not that of what we hold of
   * its vector. Ask for the whole (not while we keep an old entry of our
   * own choosing, whose digest differs by design, until a whole vector
   * comes without one: asking meanwhile would only bring the same). */
  if (sum != 0 && !gap && !p->known_kept && !p->known_partial && !p->want_full && sum != p->known.sum) want_full(n, p);
  if (flight_release(p, &p->known) > 0) progress = true;
  bool covered = true;
  uint32_t at = 0;
  for (uint32_t i = 0; i < p->sent.n && covered; i++) /* bounded: sent.n, both sorted */
    covered = p->sent.e[i].seq <= nd_vv_seek(&p->known, &at, p->sent.e[i].origin);
  if (covered) {
    nd_vv_free(&p->sent);
    nd_flight_clear(p); /* all of it acknowledged: nothing holds credit */
    p->stuck_level = 0;
  }
  if (progress) { /* acks are coming in: not lost, just behind */
    p->sent_at_ms = now_ms;
    p->resend_level = 0;
  }
  /* It holds nothing of our own chain though we sent it: in a managed mesh
   * it refused it (our admission's invite had not reached it: mgate.h) and
   * sends this vector since its view changed (node_member.c). Send again
   * now rather than after the resend wait: joining is this. Only when its
   * vector moved (what changes its view comes in some chain): the vector
   * it answers our refused run with is the same as before, and resending
   * on that would ping-pong at the link's round trip until our admission
   * reaches it, for ever if it never does (the resend wait backs off). */
  const uint8_t *self = n->cfg.identity.pk;
  if (!progress && moved && nd_vv_get(&p->sent, self) > 0 && nd_vv_get(&p->known, self) == 0 && n->mesh_managed) {
    p->sent_at_ms = 0;
    p->resend_level = 0;
  }
  /* Its verdicts differ from ours: send ours again (a FORK may have been
   * lost; it sends its own when ours differ from its), at most once per
   * two resend periods while they differ. */
  if (p->asm_forks != n->forks_digest && n->forks_digest != 0 && p->fk_sent_all && now_ms >= p->fk_resend_ms) {
    p->fk_sent_all = false;
    p->fk_next_set = false;
    p->fk_resend_ms = vs_add_sat_u64(now_ms, 2 * n->cfg.resend_ms);
  }
  nd_acks_on_vv(n, p, p->asm_acks, now_ms); /* its acks differ from ours for long: tell it all again */
  /* Equal seqs, different heads: its branch of that origin is not ours.
   * Its changed entries here; ours that change, in nd_refresh_mine. */
  for (uint32_t i = 0; i < chg.n && !p->fk_active && err == VS_OK; i++) { /* bounded: chg.n */
    const vs_vv_entry *e = &chg.e[i];
    bool found = false;
    int j = nd_vv_find(&n->mine, e->origin, &found);
    if (e->seq == 0 || !found || n->mine.e[j].seq != e->seq || memcmp(n->mine.e[j].head, e->head, VS_VV_HEAD_BYTES) == 0)
      continue;
    if (p->fall_pending && memcmp(p->fall_origin, e->origin, VS_ORIGIN_BYTES) == 0) continue;
    err = nd_fork_suspect(n, p, e->origin, e->seq, now_ms);
  }
  nd_vv_free(&chg);
  if (err != VS_OK) return err;
  uint64_t claim = nd_vv_get(&p->known, n->cfg.identity.pk), head = nd_vv_get(&n->mine, n->cfg.identity.pk);
  if (n->own_void) claim = head; /* our identity is spent: peers that still hold its void ops are no liars */
  if (claim > head) { /* more of our chain than we hold: to be backed by our signed ops (maintain) */
    if (p->own_claim <= head) p->own_claim_deadline_ms = vs_add_sat_u64(now_ms, nd_claim_grace_ms(n));
    p->own_claim = claim;
  } else {
    p->own_claim = 0;
  }
  /* Delivery counts a claim only when it names our op by hash. */
  if (claim <= head && claim > n->ack_held[p->ack_id]) claim = nd_own_claim_verified(n, p);
  nd_mesh_acked(n, p->ack_id, claim);
  return VS_OK;
}

/* A delta's short origin (wire v7), resolved in our copy of the peer's
 * vector, which holds every origin of its vector at the delta's base
 * unless entries were left out (known_partial). 1: resolved (e->origin
 * whole); 0: not there, and our copy is partial; -1: ambiguous, or not
 * there in a complete copy (a lie, or drift). */
static int resolve_short(const peer *p, vs_vv_entry *e) {
  bool found = false;
  int i = nd_vv_find(&p->known, e->origin, &found); /* the rest zero: the first entry with that start */
  if (found) return -1; /* an origin that IS its start and zero bytes: only a whole id names it */
  bool at = (uint32_t)i < p->known.n && memcmp(p->known.e[i].origin, e->origin, VS_VV_SHORT_BYTES) == 0;
  if (!at) return p->known_partial ? 0 : -1;
  if ((uint32_t)i + 1 < p->known.n && memcmp(p->known.e[i + 1].origin, e->origin, VS_VV_SHORT_BYTES) == 0) return -1;
  memcpy(e->origin, p->known.e[i].origin, VS_ORIGIN_BYTES);
  e->short_id = false;
  return 1;
}

/* One part of a peer's vector or delta (wire.h). Parts of a vector arrive
 * in order; a part out of order (lost or reordered in transit) or of a
 * vector older than the one held is dropped, not refused: the next vector
 * replaces it (a delta is always from a generation the peer knows we hold,
 * so a lost one costs nothing but the next). Memory: the parts' entries,
 * bounded as known is (known_room). */
vs_err nd_on_vv(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  /* Room for the entries the message announces (not the 160 KiB of
   * VS_WIRE_VV_MAX every time); the decoder checks the count against the
   * message and the limit. */
  size_t fit = len / VS_VV_ENTRY_BYTES_MIN + 1u;
  uint32_t room = fit > VS_WIRE_VV_MAX ? VS_WIRE_VV_MAX : (uint32_t)fit;
  vs_vv_entry *e = malloc(sizeof *e * room);
  if (e == NULL) return VS_ERR_NOMEM;
  vs_vv_part part;
  uint32_t count = 0;
  vs_err err = vs_msg_vv_decode(msg, len, &part, e, room, &count);
  bool take = err == VS_OK && part.vector > p->known_vector;
  if (take && part.part == 0) {
    take = p->asm_parts == 0 || part.vector >= p->asm_vector;
    if (take) {
      asm_drop(p);
      p->asm_vector = part.vector;
      p->asm_parts = part.parts;
      p->asm_gen = part.gen;
      p->asm_base = part.base;
    }
  } else if (take) {
    take = p->asm_parts != 0 && part.vector == p->asm_vector && part.part == p->asm_next && part.parts == p->asm_parts &&
           part.gen == p->asm_gen && part.base == p->asm_base;
    if (!take && part.vector > p->asm_vector) asm_drop(p); /* a newer vector whose first part we missed */
  }
  /* (A short first origin is checked once resolved: vv_append keeps the
   * order across parts too.) */
  if (take && part.part > 0 && count > 0 && !e[0].short_id && memcmp(e[0].origin, p->asm_last, VS_ORIGIN_BYTES) <= 0) {
    err = VS_ERR_MALFORMED; /* parts must continue the order */
    asm_drop(p);
    take = false;
  }
  /* A delta past the generation we hold may name origins our copy does
   * not have yet (the lost delta brought them): those are left out; the
   * changes since what we hold, which we ask for (VS_VV_GAP), name them in
   * full. */
  bool gap = take && part.base != 0 && p->known_vector != 0 && part.base > p->known_gen;
  for (uint32_t i = 0; take && err == VS_OK && i < count; i++) { /* bounded: count <= VS_WIRE_VV_MAX */
    if (e[i].short_id) {
      int r = resolve_short(p, &e[i]);
      if (r <= 0 && gap) continue;
      if (r < 0) { /* none or two of our copy's origins start so: we ask for the whole */
        asm_drop(p);
        want_full(n, p);
        take = false;
        break;
      }
      if (r == 0) { /* an origin our copy left out (VV_FOREIGN_MAX) */
        p->asm_partial = true;
        continue;
      }
    }
    if (known_room(n, &p->asm, e[i].origin)) err = vv_append(&p->asm, e[i].origin, e[i].seq, e[i].head);
    else p->asm_partial = true;
  }
  if (take && err == VS_OK) {
    if (count > 0) memcpy(p->asm_last, e[count - 1].origin, VS_ORIGIN_BYTES);
    p->asm_next = part.part + 1;
    p->asm_forks = part.forks;
    p->asm_acks = part.acks;
    p->asm_held = part.held;
    p->asm_sum = part.sum;
    p->asm_want = (part.flags & VS_VV_WANT) != 0;
    p->asm_gap = (part.flags & VS_VV_GAP) != 0;
    p->asm_dist = part.dist;
    p->asm_root = part.root;
    p->asm_parent = part.parent;
    if (p->asm_next == p->asm_parts) err = vv_complete(n, p, now_ms);
  } else if (take) {
    asm_drop(p);
  }
  free(e);
  return err;
}

/* ---- sending our vector (wire v6: deltas) ---- */

/* What our next VV to `p` says: our generation (0, and nothing of what we
 * hold, to a device on probation on an older key past the grace:
 * node_member.c), and the generation of its vector we hold whole. */
static uint64_t gen_for(const vs_node *n, const peer *p) { return p->stale_probation ? 0 : n->vv_gen; }
static uint64_t held_for(const peer *p) { return p->want_full ? 0 : p->known_gen; }
static uint64_t forks_for(const vs_node *n, const peer *p) { return p->stale_probation ? 0 : n->forks_digest; }
static uint64_t acks_for(const vs_node *n, const peer *p) {
  return p->stale_probation ? 0 : p->acks_forget_due ? ACKS_DIGEST_FORGET : n->acks_digest;
}

/* Whether our VV has news for `p`: a change of our vector, of the
 * generation of its vector we hold, or of a digest; or none was sent yet. */
static bool vv_news(const vs_node *n, const peer *p) {
  return p->vv_out_no == 0 || p->vv_told_gen != gen_for(n, p) || p->held_told != held_for(p) || p->resend_base ||
         p->gap_due ||
         p->told_forks != forks_for(n, p) || p->told_acks != acks_for(n, p) || p->told_want != p->want_me ||
         p->told_root != n->tree_root || p->told_parent != n->tree_parent || p->told_dist != n->tree_dist;
}

/* Whether a VV is due to `p` now: at once when asked (an acknowledgement
 * after its runs) and there is news; news otherwise at most once per
 * vv_interval_ms (changes batch up); a delta it has not confirmed again
 * after VV_RESEND_FACTOR intervals; and a digest when idle, every
 * VV_IDLE_FACTOR intervals. A quiet session costs one small message per
 * direction per idle period. */
bool nd_vv_send_due(const vs_node *n, const peer *p, uint64_t now_ms) {
  bool news = vv_news(n, p);
  if (news && (p->vv_due || now_ms >= p->next_vv_ms)) return true;
  if (p->peer_held != gen_for(n, p) && now_ms >= p->vv_resend_ms) return true;
  return now_ms >= p->vv_idle_ms;
}

uint64_t nd_vv_wake(const vs_node *n, const peer *p, uint64_t now_ms) {
  if (vv_news(n, p)) return p->vv_due ? now_ms : p->next_vv_ms;
  uint64_t t = p->vv_idle_ms;
  if (p->peer_held != gen_for(n, p) && p->vv_resend_ms < t) t = p->vv_resend_ms;
  return t;
}

/* Whether entry i of our vector may be named by its first bytes: no
 * neighbour starts the same (sorted: only neighbours can) and it is not
 * its start and zeros (which the receiver's search would meet first). */
static bool short_unique(const vv *v, uint32_t i) {
  const uint8_t *o = v->e[i].origin;
  if (i > 0 && memcmp(v->e[i - 1].origin, o, VS_VV_SHORT_BYTES) == 0) return false;
  if (i + 1 < v->n && memcmp(v->e[i + 1].origin, o, VS_VV_SHORT_BYTES) == 0) return false;
  uint8_t nz = 0;
  for (unsigned b = VS_VV_SHORT_BYTES; b < VS_ORIGIN_BYTES; b++) nz |= o[b]; /* bounded: 24 bytes */
  return nz != 0;
}

/* Our vector to `p`: whole, or what changed since the generation we last
 * sent it (or, sent again unconfirmed or asked so, since the one it told us
 * it holds), in parts of VS_WIRE_VV_MAX entries (wire.h), each its own
 * message, queued in order. */
vs_err nd_send_vv(vs_node *n, peer *p, uint64_t now_ms) {
  uint64_t gen = gen_for(n, p), base = p->vv_base;
  if (p->peer_held != gen && now_ms >= p->vv_resend_ms) base = p->peer_held; /* unconfirmed: again */
  bool whole = gen == 0 || base == 0 || base < n->vv_cut_gen || base > gen;
  const vs_vv_entry *src = NULL;
  vs_vv_entry *pick = NULL;
  uint32_t held = 0;
  if (gen != 0 && whole) {
    src = n->mine.e;
    held = n->mine.n;
  } else if (gen != 0) {
    for (uint32_t i = 0; i < n->mine.n; i++) held += n->mine.e[i].gen > base; /* bounded: mine.n */
    pick = held > 0 ? malloc(sizeof *pick * held) : NULL;
    if (held > 0 && pick == NULL) return VS_ERR_NOMEM;
    for (uint32_t i = 0, k = 0; i < n->mine.n && k < held; i++) {
      if (n->mine.e[i].gen <= base) continue;
      pick[k] = n->mine.e[i];
      /* In our vector at base, so in every copy of it the peer may build
       * this delta on: it is named by its first bytes (wire v7). */
      pick[k++].short_id = n->mine.e[i].born <= base && short_unique(&n->mine, i);
    }
    src = pick;
  }
  uint32_t parts = held == 0 ? 1u : (held - 1u) / VS_WIRE_VV_MAX + 1u;
  vs_err err = parts <= VS_WIRE_VV_PARTS_MAX ? VS_OK : VS_ERR_LIMIT;
  bool forget = p->acks_forget_due && !p->stale_probation;
  vs_vv_part part = {++p->vv_out_no, 0, parts, forks_for(n, p), acks_for(n, p),
                     gen, whole ? 0 : base, held_for(p), gen == 0 ? 0 : n->mine.sum,
                     (uint8_t)((p->want_me ? VS_VV_WANT : 0) | (p->gap_due ? VS_VV_GAP : 0)),
                     n->tree_dist, n->tree_root, n->tree_parent};
  for (uint32_t k = 0; k < parts && err == VS_OK && p->st == PEER_READY; k++) { /* bounded: parts */
    uint32_t first = k * VS_WIRE_VV_MAX, count = held - first;
    if (count > VS_WIRE_VV_MAX) count = VS_WIRE_VV_MAX;
    size_t len = 0;
    part.part = k;
    err = vs_msg_vv_encode(&part, src == NULL || held == 0 ? NULL : src + first, count, n->msg, VS_MSG_BYTES_MAX, &len);
    if (err == VS_OK) err = nd_send_msg(n, p, n->msg, len);
  }
  free(pick);
  if (err == VS_OK) {
    n->stats.vv_sent++;
    if (whole && gen != 0) n->stats.vv_sent_whole++;
  }
  if (err == VS_OK && forget) {
    p->acks_forget_due = false;
    n->stats.acks_forgets++;
  }
  p->vv_told_gen = gen;
  p->vv_base = gen;
  p->resend_base = false;
  p->gap_due = false;
  p->held_told = part.held;
  p->told_forks = part.forks;
  p->told_acks = part.acks;
  p->told_want = p->want_me;
  p->told_root = n->tree_root;
  p->told_parent = n->tree_parent;
  p->told_dist = n->tree_dist;
  p->vv_due = false;
  p->next_vv_ms = vs_add_sat_u64(now_ms, n->cfg.vv_interval_ms);
  p->vv_resend_ms = vs_add_sat_u64(now_ms, VV_RESEND_FACTOR * n->cfg.vv_interval_ms);
  p->vv_idle_ms = vs_add_sat_u64(now_ms, VV_IDLE_FACTOR * n->cfg.vv_interval_ms);
  return err;
}
