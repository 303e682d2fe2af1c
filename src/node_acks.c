#define _POSIX_C_SOURCE 200809L
/* The node's member acknowledgements (node_int.h; acks.h, docs/protocol.md
 * "Acknowledgements"): our own ack when our vector changed, acks relayed to
 * peers (keyframe before delta, what each was told remembered), acks
 * received (checked, quota-bounded, stored in one transaction per
 * message), the re-tell when two peers' digests stay different, and the
 * stable cut's counters. Only in a managed mesh. */
#include "node_int.h"

#include <stdlib.h>

#include "acks.h"
#include "chain.h"
#include "sigcache.h"

_Static_assert(VS_ACK_SIGNED_BYTES <= VS_SIG_CACHE_MSG_MAX, "an ack's signed message fits a cache entry");

/* ---- what a peer was told ---- */

static int told_find(const peer *p, const uint8_t author[VS_ORIGIN_BYTES], bool *found) {
  int lo = 0, hi = (int)p->told_n;
  while (lo < hi) { /* binary search */
    int mid = (lo + hi) / 2;
    int c = memcmp(p->told[mid].author, author, VS_ORIGIN_BYTES);
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

/* Note that `author`'s ack (key_hlc, hlc) was told. Bounded by the members
 * whose acks we hold (VS_MESH_MEMBERS_MAX). */
static vs_err told_set(peer *p, const uint8_t author[VS_ORIGIN_BYTES], uint64_t key_hlc, uint64_t hlc) {
  bool found;
  int i = told_find(p, author, &found);
  if (!found) {
    if (p->told_n == p->told_cap) {
      uint32_t cap = p->told_cap == 0 ? 8 : p->told_cap * 2;
      told *t = realloc(p->told, sizeof *t * cap);
      if (t == NULL) return VS_ERR_NOMEM;
      p->told = t;
      p->told_cap = cap;
    }
    memmove(&p->told[i + 1], &p->told[i], sizeof *p->told * (p->told_n - (uint32_t)i));
    memcpy(p->told[i].author, author, VS_ORIGIN_BYTES);
    p->told_n++;
  }
  p->told[i].key_hlc = key_hlc;
  p->told[i].hlc = hlc;
  return VS_OK;
}

void nd_acks_peer_free(peer *p) {
  free(p->told);
  p->told = NULL;
  p->told_n = p->told_cap = 0;
  p->told_gen = 0;
}

/* ---- our own ack ---- */

/* Our full vector from the store's heads, in `txn` (VS_ERR_LIMIT: more
 * than VS_WIRE_VV_MAX origins: such a node acks nothing). */
static vs_err own_vector(MDB_txn *txn, const vs_store *store, vs_ack_entry *out, uint32_t *n_out) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_heads, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  uint32_t n = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && err == VS_OK;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) { /* bounded: VS_WIRE_VV_MAX + 1 steps */
    vs_head h;
    err = k.mv_size == VS_ORIGIN_BYTES ? vs_head_decode(&v, &h) : VS_ERR_CORRUPT;
    if (err != VS_OK || h.seq == 0) continue;
    if (n == VS_WIRE_VV_MAX) err = VS_ERR_LIMIT;
    else {
      memcpy(out[n].origin, k.mv_data, VS_ORIGIN_BYTES);
      out[n++].seq = h.seq;
    }
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  *n_out = n;
  return err;
}

static bool same_vector(const vs_ack_entry *a, uint32_t an, const vs_ack_entry *b, uint32_t bn) {
  if (an != bn) return false;
  for (uint32_t i = 0; i < an; i++)
    if (a[i].seq != b[i].seq || memcmp(a[i].origin, b[i].origin, VS_ORIGIN_BYTES) != 0) return false;
  return true;
}

/* The record after an ack at `hlc` signed `sig`: a keyframe of e[0..n),
 * or a delta e[0..n) against `held`'s keyframe (entries borrowed). */
static void rec_next(const vs_ack_rec *held, bool keyframe, uint64_t hlc, const uint8_t sig[VS_SIGNATURE_BYTES],
                     const vs_ack_entry *e, uint32_t n, vs_ack_rec *out) {
  assert(keyframe || held != NULL);
  memset(out, 0, sizeof *out);
  out->hlc = hlc;
  memcpy(out->sig, sig, VS_SIGNATURE_BYTES);
  if (keyframe) {
    out->key_hlc = hlc;
    memcpy(out->key_sig, sig, VS_SIGNATURE_BYTES);
    out->key = (vs_ack_entry *)e;
    out->key_n = n;
    return;
  }
  assert(held->key_hlc < hlc);
  out->key_hlc = held->key_hlc;
  memcpy(out->key_sig, held->key_sig, VS_SIGNATURE_BYTES);
  out->key = held->key;
  out->key_n = held->key_n;
  out->delta = (vs_ack_entry *)e;
  out->delta_n = n;
}

/* Sign our vector full[0..full_n) (it differs from `held`'s, when have)
 * and store it: a delta when it stays small against our keyframe. `delta`
 * has room for VS_WIRE_VV_MAX entries. */
static vs_err sign_own(vs_node *n, MDB_txn *txn, const uint8_t mesh_id[VS_HASH_BYTES], const vs_ack_entry *full,
                       uint32_t full_n, const vs_ack_rec *held, bool have, vs_ack_entry *delta, uint64_t now_ms) {
  /* The store's clock ticked at now (its wall part is a time: the cut's
   * oldest_hlc says how old the oldest member's word is), past our last. */
  uint64_t hlc = 0;
  vs_err err = vs_meta_hlc_get(txn, n->store, &hlc);
  if (err != VS_OK) return err;
  if (have && held->hlc == UINT64_MAX) return VS_ERR_LIMIT; /* no hlc left: our own clock's doing */
  hlc = vs_hlc_next(hlc, now_ms);
  if (have && hlc <= held->hlc) hlc = held->hlc + 1;
  if (hlc == 0) hlc = 1;
  uint32_t delta_n = 0, max = full_n / 4 > 16 ? full_n / 4 : 16;
  bool keyframe = !have || vs_acks_diff(held->key, held->key_n, full, full_n, delta, max, &delta_n) != VS_OK;
  uint8_t msg[VS_ACK_SIGNED_BYTES], sig[VS_SIGNATURE_BYTES];
  err = vs_acks_signed_txn(txn, n->store, mesh_id, n->cfg.identity.pk, hlc, full, full_n, msg);
  if (err == VS_OK && crypto_sign_detached(sig, NULL, msg, sizeof msg, n->cfg.identity.sk) != 0) err = VS_ERR_CRYPTO;
  if (err != VS_OK) return err;
  vs_ack_rec next;
  rec_next(held, keyframe, hlc, sig, keyframe ? full : delta, keyframe ? full_n : delta_n, &next);
  return vs_acks_put_txn(txn, n->store, n->cfg.identity.pk, &next);
}

/* Sign and store a new ack of ours when our vector changed (in `txn`).
 * *made_out: one was stored (dry: one is due; nothing is signed or
 * written, `txn` may be a read transaction). `buf`: 3 x VS_WIRE_VV_MAX. */
static vs_err make_own(vs_node *n, MDB_txn *txn, vs_ack_entry *buf, bool dry, uint64_t now_ms, bool *made_out) {
  const uint8_t *self = n->cfg.identity.pk;
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, n->store, mesh_id);
  if (err == VS_ERR_NOTFOUND) return VS_OK; /* an open mesh: no acks */
  bool active = false;
  if (err == VS_OK) err = vs_acks_member_txn(txn, n->store, self, &active);
  if (err != VS_OK || !active) return err;
  vs_ack_entry *full = buf, *old = buf + VS_WIRE_VV_MAX, *delta = buf + 2 * VS_WIRE_VV_MAX;
  uint32_t full_n = 0, old_n = 0;
  err = own_vector(txn, n->store, full, &full_n);
  if (err == VS_ERR_LIMIT) return VS_OK; /* too many origins to ack (docs/protocol.md) */
  /* A too-late replica acks of its own chain only what peers are known to
   * hold (node_snap.c): the rest it holds back, and its rebase orphans it.
   * An ack naming it could be checked by no peer and would be relayed to
   * none (peer_covers), so a member none of whose acks had arrived before
   * it lost touch pinned every peer's cut, none compacted, and no
   * snapshot anchored what it had compacted of its own chain: it stayed
   * late for good (vix-sim compaction_suspend_late, seeds 19, 40, 48, 51,
   * once runs took the spanning tree). Acking less than it holds is true. */
  if (err == VS_OK && n->late) {
    uint64_t held = nd_snap_own_held(n);
    for (uint32_t i = 0; i < full_n; i++) { /* bounded: full_n */
      if (memcmp(full[i].origin, self, VS_ORIGIN_BYTES) != 0 || full[i].seq <= held) continue;
      full[i].seq = held;
      if (held == 0) { /* none: the entry goes */
        memmove(&full[i], &full[i + 1], sizeof *full * (full_n - i - 1));
        full_n--;
      }
      break;
    }
  }
  vs_ack_rec rec;
  memset(&rec, 0, sizeof rec);
  bool have = false;
  if (err == VS_OK) {
    err = vs_acks_get_txn(txn, n->store, self, &rec);
    have = err == VS_OK;
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
  }
  if (err == VS_OK && have) err = vs_acks_merge(rec.key, rec.key_n, rec.delta, rec.delta_n, old, VS_WIRE_VV_MAX, &old_n);
  bool due = err == VS_OK && !(have && same_vector(full, full_n, old, old_n));
  if (due && !dry) err = sign_own(n, txn, mesh_id, full, full_n, &rec, have, delta, now_ms);
  vs_ack_rec_free(&rec);
  if (err == VS_ERR_LIMIT) return VS_OK; /* no hlc left: we ack no more */
  if (err == VS_OK && due) *made_out = true;
  return err;
}

static vs_err stable_refresh(vs_node *n) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  vs_acks_cut_info info;
  err = vs_acks_cut_txn(txn, n->store, n->cfg.suspend_after_ms, NULL, NULL, &info);
  mdb_txn_abort(txn);
  if (err == VS_OK) {
    n->stats.stable_ops = info.stable_ops;
    n->stats.stable_behind = info.behind;
    n->stats.members_suspended = info.suspended;
  }
  return err;
}

/* Every ack_interval_ms in a managed mesh: our own ack when our vector
 * changed and we are an active member; the digest when the members
 * changed; the stable cut's counters. */
vs_err nd_acks_tick(vs_node *n, uint64_t now_ms) {
  if (!n->mesh_managed || now_ms < n->ack_next_ms) return VS_OK;
  n->ack_next_ms = vs_add_sat_u64(now_ms, n->cfg.ack_interval_ms);
  if (n->acks_gen == 0) n->acks_gen = 1;
  vs_ack_entry *buf = malloc(sizeof *buf * 3u * VS_WIRE_VV_MAX);
  if (buf == NULL) return VS_ERR_NOMEM;
  /* A read transaction decides; the write lock is taken only to store a
   * new ack (a long write elsewhere, a CLI import, does not stall polls). */
  MDB_txn *txn = NULL;
  bool due = false, made = false;
  bool redigest = !n->acks_loaded || n->acks_mesh_gen != n->mesh_gen;
  uint64_t digest = n->acks_digest;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err == VS_OK) {
    err = make_own(n, txn, buf, true, now_ms, &due);
    if (err == VS_OK && redigest && !due) err = vs_acks_digest_txn(txn, n->store, &digest);
    mdb_txn_abort(txn);
  }
  if (err == VS_OK && due) err = vs_txn_begin(n->store, true, &txn);
  if (err == VS_OK && due) {
    err = make_own(n, txn, buf, false, now_ms, &made);
    redigest = redigest || made;
    if (err == VS_OK && redigest) err = vs_acks_digest_txn(txn, n->store, &digest);
    if (err == VS_OK && made) err = vs_txn_commit(txn);
    else mdb_txn_abort(txn);
  }
  free(buf);
  if (err != VS_OK) return err;
  if (made) {
    n->stats.acks_made++;
    n->acks_gen++;
  }
  if (redigest) {
    n->acks_digest = digest;
    n->acks_loaded = true;
    n->acks_mesh_gen = n->mesh_gen;
  }
  return stable_refresh(n);
}

/* ---- relaying ---- */

/* When `p` is to be sent acks next: UINT64_MAX when it was told all we
 * hold. Relays are paced (a quarter of ack_interval_ms apart, unless a
 * round stopped at its message cap): acks of several members arriving
 * within that time travel in one message, one transaction at the peer. */
uint64_t nd_acks_wake(const vs_node *n, const peer *p, uint64_t now_ms) {
  if (p->st != PEER_READY || !n->mesh_managed || p->probation || n->acks_gen == 0 || p->told_gen == n->acks_gen)
    return UINT64_MAX;
  /* Off the tree, acks come along the tree's edges: a link off it carries
   * what it was not told yet once per ACKS_LAZY_FACTOR ack intervals (a
   * tree that breaks and mends under faults, which the digests in the
   * vectors show, then heals by this), or at once after a re-tell. */
  uint64_t at = p->acks_relay_ms;
  if (!nd_tree_pushes(n, p) && !p->acks_retell && p->acks_lazy_ms > at) at = p->acks_lazy_ms;
  return at > now_ms ? at : now_ms;
}

bool nd_acks_due(const vs_node *n, const peer *p, uint64_t now_ms) { return nd_acks_wake(n, p, now_ms) <= now_ms; }

typedef struct relay {
  vs_node *n;
  peer *p;
  vs_acks_writer w;
  uint32_t msgs;
  bool stopped; /* ACKS_MSGS_PER_ROUND reached: more next round */
  bool held;    /* an author's ack held back (the peer lacks ops it names): again next round */
} relay;

/* Whether the peer's vector (its last VV) reaches every seq of `rec`'s full
 * vector (its keyframe with its delta applied; entries by origin, strictly
 * increasing in both). A peer verifies an ack only over ops it holds and
 * drops one it cannot check; an ack relayed ahead of the ops it names (a
 * relay's acks are small, its ops wait for the window) was dropped there,
 * and the next one as well while ops kept flowing: a member two hops from
 * a writer never stored its acks while the writes went on, and compacted
 * nothing (tests/bench_disk.py: node c's store grew with the history). */
static bool peer_covers(const peer *p, const vs_ack_rec *rec) {
  uint32_t i = 0, j = 0;
  while (i < rec->key_n || j < rec->delta_n) { /* bounded: key_n + delta_n steps */
    const vs_ack_entry *e;
    int c = i == rec->key_n ? 1 : j == rec->delta_n ? -1 : memcmp(rec->key[i].origin, rec->delta[j].origin, VS_ORIGIN_BYTES);
    if (c < 0) {
      e = &rec->key[i++];
    } else {
      e = &rec->delta[j++];
      if (c == 0) i++; /* the delta's entry replaces the keyframe's */
    }
    if (e->seq != 0 && nd_vv_get(&p->known, e->origin) < e->seq) return false;
  }
  return true;
}

static vs_err relay_flush(relay *r) {
  size_t len = 0;
  if (r->w.acks == 0) return VS_OK;
  vs_err err = vs_acks_writer_finish(&r->w, &len);
  if (err == VS_OK) err = nd_send_msg(r->n, r->p, r->n->msg, len);
  if (err == VS_OK) r->n->stats.acks_sent += r->w.acks;
  r->msgs++;
  if (err == VS_OK) err = vs_acks_writer_init(&r->w, r->n->msg, VS_MSG_BYTES_MAX);
  return err;
}

static vs_err relay_add(relay *r, const uint8_t author[VS_ORIGIN_BYTES], uint64_t hlc, uint64_t key_hlc,
                        const uint8_t sig[VS_SIGNATURE_BYTES], const vs_ack_entry *e, uint32_t count) {
  vs_err err = vs_acks_writer_add(&r->w, author, hlc, key_hlc, sig, e, count);
  if (err != VS_ERR_BUFSIZE) return err;
  err = relay_flush(r); /* an ack always fits an empty message (wire_msg.c asserts it) */
  if (err == VS_OK && r->msgs >= ACKS_MSGS_PER_ROUND) {
    r->stopped = true;
    return VS_OK;
  }
  return err == VS_OK ? vs_acks_writer_add(&r->w, author, hlc, key_hlc, sig, e, count) : err;
}

/* One author's record to the peer: the keyframe first when what it was
 * told has another, then the delta when newer than what it was told. */
static vs_err relay_author(relay *r, MDB_txn *txn, const uint8_t author[VS_ORIGIN_BYTES]) {
  bool found;
  int i = told_find(r->p, author, &found);
  uint64_t t_key = found ? r->p->told[i].key_hlc : 0, t_hlc = found ? r->p->told[i].hlc : 0;
  uint64_t hlc = 0, key_hlc = 0;
  vs_err err = vs_acks_hlc_txn(txn, r->n->store, author, &hlc, &key_hlc);
  if (err != VS_OK || (t_key == key_hlc && t_hlc >= hlc)) return err; /* told already: nothing decoded */
  vs_ack_rec rec;
  err = vs_acks_get_txn(txn, r->n->store, author, &rec);
  if (err != VS_OK) return err;
  if (!peer_covers(r->p, &rec)) { /* it would drop it: after its vector says it holds those ops */
    r->held = true;
    vs_ack_rec_free(&rec);
    return VS_OK;
  }
  if (t_key != rec.key_hlc) {
    err = relay_add(r, author, rec.key_hlc, rec.key_hlc, rec.key_sig, rec.key, rec.key_n);
    if (err == VS_OK && !r->stopped) err = told_set(r->p, author, rec.key_hlc, rec.key_hlc);
    t_key = rec.key_hlc;
    t_hlc = rec.key_hlc;
  }
  if (err == VS_OK && !r->stopped && rec.hlc > t_hlc) {
    err = relay_add(r, author, rec.hlc, rec.key_hlc, rec.sig, rec.delta, rec.delta_n);
    if (err == VS_OK && !r->stopped) err = told_set(r->p, author, rec.key_hlc, rec.hlc);
  }
  vs_ack_rec_free(&rec);
  return err;
}

/* Send a peer the acks it was not told yet: at most ACKS_MSGS_PER_ROUND
 * messages per round; never an author's own ack to it, never acks of
 * authors that are no active members. */
vs_err nd_acks_relay(vs_node *n, peer *p, uint64_t now_ms) {
  uint64_t gen = n->acks_gen;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  relay r = {n, p, {0}, 0, false, false};
  MDB_cursor *cur = NULL;
  err = vs_acks_writer_init(&r.w, n->msg, VS_MSG_BYTES_MAX);
  int rc = err == VS_OK ? mdb_cursor_open(txn, n->store->dbi_acks, &cur) : MDB_SUCCESS;
  if (rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  MDB_val k, v;
  /* Bounded: one record per member (VS_MESH_MEMBERS_MAX). */
  for (rc = err == VS_OK ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : MDB_NOTFOUND;
       rc == MDB_SUCCESS && err == VS_OK && !r.stopped && p->st == PEER_READY;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != VS_ORIGIN_BYTES) {
      err = VS_ERR_CORRUPT;
      break;
    }
    uint8_t author[VS_ORIGIN_BYTES];
    memcpy(author, k.mv_data, VS_ORIGIN_BYTES);
    if (memcmp(author, p->sess.peer_id, VS_ORIGIN_BYTES) == 0) continue; /* its own: it knows */
    bool active = false;
    err = vs_acks_member_txn(txn, n->store, author, &active);
    if (err == VS_OK && active) err = relay_author(&r, txn, author);
  }
  if (cur != NULL) mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS && !r.stopped) err = vs_mdb_err(rc);
  if (err == VS_OK && p->st == PEER_READY) err = relay_flush(&r);
  mdb_txn_abort(txn);
  if (err == VS_OK && !r.stopped && !r.held) {
    p->told_gen = gen;
    p->acks_retell = false;
  }
  if (err == VS_OK && !r.stopped) p->acks_relay_ms = vs_add_sat_u64(now_ms, n->cfg.ack_interval_ms / 4);
  if (err == VS_OK && !nd_tree_pushes(n, p)) p->acks_lazy_ms = vs_add_sat_u64(now_ms, ACKS_LAZY_FACTOR * n->cfg.ack_interval_ms);
  return err;
}

/* ---- the re-tell ---- */

/* A peer's vector carried its acks digest. While it differs from ours and
 * neither moved for the resend wait (both quiescent: something told was
 * lost), forget what it was told: it is sent everything again. */
void nd_acks_on_vv(vs_node *n, peer *p, uint64_t digest, uint64_t now_ms) {
  if (!n->mesh_managed || p->probation) return;
  /* It installed or rebased onto a snapshot, which emptied the acks we
   * told it: tell it all again now, not once both digests rest (a rebased
   * member stored no ack of some members for seconds to minutes, and
   * compacted nothing meanwhile: vix-sim suspend swarm seeds 28, 32). At
   * most once per resend_ms: a peer that sends it in every vector costs us
   * every ack once per resend_ms, as the re-tell below at its fastest. */
  if (digest == ACKS_DIGEST_FORGET) {
    if (now_ms < p->acks_forget_ok_ms) return;
    p->acks_forget_ok_ms = vs_add_sat_u64(now_ms, n->cfg.resend_ms);
    free(p->told);
    p->told = NULL;
    p->told_n = p->told_cap = 0;
    p->told_gen = 0;
    p->acks_since_ms = 0;
    p->acks_retell = true;
    n->stats.acks_retold++;
    return;
  }
  if (digest == n->acks_digest) {
    p->retell_level = 0;
    p->acks_peer = digest;
    p->acks_ours_then = n->acks_digest;
    p->acks_since_ms = now_ms;
    return;
  }
  if (digest != p->acks_peer || n->acks_digest != p->acks_ours_then || p->acks_since_ms == 0) {
    p->acks_peer = digest;
    p->acks_ours_then = n->acks_digest;
    p->acks_since_ms = now_ms;
    return;
  }
  uint64_t wait = n->cfg.resend_ms;
  for (uint32_t i = 0; i < p->retell_level && wait < n->cfg.resend_max_ms; i++) wait *= 2; /* bounded: level */
  if (wait > n->cfg.resend_max_ms) wait = n->cfg.resend_max_ms;
  if (now_ms < p->acks_since_ms || now_ms - p->acks_since_ms < wait) return; /* time going back waits */
  free(p->told);
  p->told = NULL;
  p->told_n = p->told_cap = 0;
  p->told_gen = 0;
  if (p->retell_level < RESEND_LEVEL_MAX) p->retell_level++;
  p->acks_since_ms = now_ms;
  p->acks_retell = true;
  n->stats.acks_retold++;
}

/* ---- receiving ---- */

typedef struct rx {
  vs_node *n;
  peer *p;
  uint64_t now_ms;
  MDB_txn *txn;
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_ack_entry *full; /* 3 x VS_WIRE_VV_MAX: the full vector, the ack's entries, a held keyframe's */
  uint32_t stored;
  /* A keyframe that names ops we do not hold (a store seeded from a
   * snapshot holds nothing below its horizons, and an author's keyframe
   * may be its first ack): it cannot be checked here, so it is held, for
   * this message only, for the next ack of its author; a delta against it
   * whose full vector verifies is stored with it (rx_verify). */
  bool pend;
  uint8_t pend_author[VS_ORIGIN_BYTES];
  uint64_t pend_hlc;
  uint8_t pend_sig[VS_SIGNATURE_BYTES];
  uint32_t pend_n; /* its entries: full + 2 x VS_WIRE_VV_MAX */
} rx;

/* Acks one peer identity may make us check per minute: every active
 * member's acks at our own pace (one per ack_interval_ms), twice over (a
 * keyframe and a delta), plus a burst. An honest peer relays at most every
 * member's new acks; a peer flooding forged ones costs us at most this many
 * signature checks (and their lookups) a minute. */
static uint64_t quota_per_min(const vs_node *n) {
  uint64_t per_member = 2u * (60000u / n->cfg.ack_interval_ms + 1u);
  return per_member * (uint64_t)n->keys.active + ACK_QUOTA_BURST;
}

/* One ack's check on `p`'s identity's bucket: false when spent. */
static bool quota_take(vs_node *n, const peer *p, uint64_t now_ms) {
  uint32_t id = p->ack_id;
  if (id >= VS_NODE_PEERS_MAX) return false;
  uint64_t per_min = quota_per_min(n);
  if ((n->ack_tok_init & (1ull << id)) == 0) {
    n->ack_tok_init |= 1ull << id;
    n->ack_tokens[id] = per_min * QUOTA_UNIT;
    n->ack_tok_ms[id] = now_ms;
  }
  nd_bucket_refill(&n->ack_tokens[id], &n->ack_tok_ms[id], per_min, now_ms);
  if (n->ack_tokens[id] < QUOTA_UNIT) return false;
  n->ack_tokens[id] -= QUOTA_UNIT;
  return true;
}

/* The cheap checks of an ack, before anything is spent on it: not ours,
 * its author an active member (a revoked author's record stays), newer than
 * the record held. *go_out: go on with it. */
static vs_err rx_screen(rx *x, const vs_ack_view *a, bool *go_out) {
  vs_node *n = x->n;
  *go_out = false;
  if (memcmp(a->author, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0) {
    n->stats.acks_unusable++; /* ours (an honest peer never relays it to us): we know better */
    return VS_OK;
  }
  bool active = false;
  uint64_t held = 0;
  vs_err err = vs_acks_member_txn(x->txn, n->store, a->author, &active);
  if (err == VS_OK) err = vs_acks_hlc_txn(x->txn, n->store, a->author, &held, NULL);
  if (err != VS_OK) return err;
  if (!active) { /* no member, or revoked: its record (if any) stays, as it was when it was revoked: it
                   * holds the cut until the revocation is settled (compact_final.h) */
    n->stats.acks_unusable++;
    return VS_OK;
  }
  *go_out = held == 0 || a->hlc > held; /* else a duplicate (or older): nothing spent on it */
  return VS_OK;
}

/* Whether the ack verifies here: the full vector at its hlc (its keyframe,
 * or the delta applied to the keyframe held, or to the keyframe held back
 * in this message, x->pend) names only ops we hold, with the hashes the
 * author signed. Quota first: it pays for the lookups and the signature
 * check. x->full[0..VS_WIRE_VV_MAX) gets the full vector,
 * x->full[VS_WIRE_VV_MAX..) the ack's own entries. *lacks_out: a keyframe
 * that names an op we do not hold (nothing could be checked). *pend_out:
 * a delta verified against x->pend. */
static vs_err rx_verify(rx *x, const vs_ack_view *a, const vs_ack_rec *rec, bool have, bool *ok_out, bool *lacks_out,
                        bool *pend_out) {
  vs_node *n = x->n;
  *ok_out = false;
  *lacks_out = false;
  *pend_out = false;
  vs_ack_entry *own = x->full + VS_WIRE_VV_MAX;
  for (uint32_t i = 0; i < a->count; i++) vs_ack_entry_at(a, i, &own[i]); /* bounded: <= VS_WIRE_VV_MAX */
  uint32_t full_n = 0;
  bool usable = true;
  if (a->key_hlc == a->hlc) {
    memcpy(x->full, own, sizeof *own * a->count);
    full_n = a->count;
  } else if (x->pend && x->pend_hlc == a->key_hlc && memcmp(x->pend_author, a->author, VS_ORIGIN_BYTES) == 0) {
    /* Against the keyframe held back: the delta's signature covers the
     * merged vector, so what verifies is the author's word (the keyframe's
     * entries the delta overrides are unchecked: docs/protocol.md). */
    *pend_out = true;
    usable = vs_acks_merge(x->full + 2u * VS_WIRE_VV_MAX, x->pend_n, own, a->count, x->full, VS_WIRE_VV_MAX, &full_n) == VS_OK;
  } else if (!have || rec->key_hlc != a->key_hlc) {
    /* A delta against a keyframe we do not hold: the keyframe was lost on
     * the way (or went with a rebase), and its sender counts it told, so
     * every delta it sends is dropped here until both digests rest. Our
     * next VV asks it to tell us everything again (ACKS_DIGEST_FORGET:
     * it takes that once per resend_ms at most): vix-sim suspend swarm
     * seed 32, a rebased member that stored no ack of node 0 while
     * node 0's deltas kept coming. */
    usable = false;
    x->p->acks_forget_due = true;
  } else {
    usable = vs_acks_merge(rec->key, rec->key_n, own, a->count, x->full, VS_WIRE_VV_MAX, &full_n) == VS_OK;
  }
  if (usable && !quota_take(n, x->p, x->now_ms)) {
    n->stats.rejected_ack_quota++;
    return VS_OK;
  }
  uint8_t msg[VS_ACK_SIGNED_BYTES];
  vs_err err = VS_OK;
  if (usable) {
    err = vs_acks_signed_txn(x->txn, n->store, x->mesh_id, a->author, a->hlc, x->full, full_n, msg);
    usable = err == VS_OK;
    if (err == VS_ERR_NOTFOUND) { /* an op we lack or hold no more: cannot verify here */
      err = VS_OK;
      *lacks_out = a->key_hlc == a->hlc;
    }
  }
  /* Through the node's cache (vs_node_cfg.sig_cache): in a simulator every
   * node checks every member's acks, the same signed bytes each time. */
  if (err == VS_OK && usable) usable = vs_sig_cache_verify(n->cfg.sig_cache, a->author, msg, sizeof msg, a->sig);
  if (err == VS_OK && !usable && !*lacks_out) n->stats.acks_unusable++; /* a keyframe held back is counted later */
  *ok_out = err == VS_OK && usable;
  return err;
}

/* The peer that sent us an ack holds it: it need not be told it (only
 * ever raised; a peer lying here only keeps acks from itself). */
static vs_err told_heard(peer *p, const vs_ack_view *a) {
  bool found;
  int i = told_find(p, a->author, &found);
  if (found && p->told[i].hlc >= a->hlc) return VS_OK;
  return told_set(p, a->author, a->key_hlc, a->hlc);
}

/* A keyframe held back is dropped (counted unusable): its author's next ack
 * in the message was not a delta against it, or the message ended. */
static void pend_drop(rx *x) {
  if (x->pend) x->n->stats.acks_unusable++;
  x->pend = false;
}

/* One ack of a message: checked, and stored when it verifies. */
static vs_err rx_ack(const vs_ack_view *a, void *ctx) {
  rx *x = ctx;
  bool go = false, ok = false, lacks = false, via_pend = false;
  bool pend_here = x->pend && memcmp(x->pend_author, a->author, VS_ORIGIN_BYTES) == 0;
  vs_err err = rx_screen(x, a, &go);
  uint64_t held = 0;
  if (err == VS_OK && !go) err = vs_acks_hlc_txn(x->txn, x->n->store, a->author, &held, NULL);
  if (err == VS_OK && !go && held != 0 && held >= a->hlc) err = told_heard(x->p, a); /* a duplicate */
  if (err != VS_OK || !go) {
    if (pend_here) pend_drop(x);
    return err;
  }
  vs_ack_rec rec;
  err = vs_acks_get_txn(x->txn, x->n->store, a->author, &rec);
  bool have = err == VS_OK;
  if (err == VS_ERR_NOTFOUND) err = VS_OK;
  if (err == VS_OK) err = rx_verify(x, a, &rec, have, &ok, &lacks, &via_pend);
  if (via_pend && ok && err == VS_OK) x->pend = false; /* used: stored below with the delta */
  if (pend_here) pend_drop(x);                         /* passed over: dropped */
  if (err == VS_OK && ok) {
    vs_ack_rec next, key;
    bool keyframe = a->key_hlc == a->hlc;
    const vs_ack_rec *base = &rec;
    if (via_pend) { /* the keyframe held back, with this delta */
      memset(&key, 0, sizeof key);
      key.hlc = key.key_hlc = x->pend_hlc;
      memcpy(key.key_sig, x->pend_sig, VS_SIGNATURE_BYTES);
      key.key = x->full + 2u * VS_WIRE_VV_MAX;
      key.key_n = x->pend_n;
      base = &key;
    }
    rec_next(base, keyframe, a->hlc, a->sig, x->full + VS_WIRE_VV_MAX, a->count, &next);
    err = vs_acks_put_txn(x->txn, x->n->store, a->author, &next);
    if (err == VS_OK) x->stored++;
    if (err == VS_OK) err = told_heard(x->p, a);
  } else if (err == VS_OK && lacks) { /* a keyframe that names ops we lack: held for a delta */
    pend_drop(x);
    x->pend = true;
    memcpy(x->pend_author, a->author, VS_ORIGIN_BYTES);
    x->pend_hlc = a->hlc;
    memcpy(x->pend_sig, a->sig, VS_SIGNATURE_BYTES);
    memcpy(x->full + 2u * VS_WIRE_VV_MAX, x->full + VS_WIRE_VV_MAX, sizeof *x->full * a->count);
    x->pend_n = a->count;
  }
  vs_ack_rec_free(&rec);
  return err;
}

static vs_err count_acks(const vs_ack_view *a, void *ctx) {
  (void)a;
  (*(uint64_t *)ctx)++;
  return VS_OK;
}

/* An ACKS message: a malformed one closes the session (as any malformed
 * message); each ack that does not verify is dropped and counted, the
 * session goes on. What verifies is stored in one transaction. */
vs_err nd_on_acks(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  uint64_t count = 0;
  vs_err err = vs_msg_acks_decode(msg, len, count_acks, &count);
  if (err != VS_OK) {
    nd_peer_close(n, p);
    return err;
  }
  if (!n->mesh_managed) { /* an open mesh: no acks */
    n->stats.acks_unusable += count;
    return VS_OK;
  }
  rx x;
  memset(&x, 0, sizeof x);
  x.n = n;
  x.p = p;
  x.now_ms = now_ms;
  x.full = malloc(sizeof *x.full * 3u * VS_WIRE_VV_MAX);
  if (x.full == NULL) return VS_ERR_NOMEM;
  err = vs_txn_begin(n->store, true, &x.txn);
  if (err == VS_OK) err = vs_mesh_id_get_txn(x.txn, n->store, x.mesh_id);
  if (err == VS_ERR_NOTFOUND) {
    n->stats.acks_unusable += count;
    err = VS_OK;
  } else if (err == VS_OK) {
    err = vs_msg_acks_decode(msg, len, rx_ack, &x);
    pend_drop(&x);
  }
  uint64_t digest = n->acks_digest;
  if (err == VS_OK && x.stored > 0) err = vs_acks_digest_txn(x.txn, n->store, &digest);
  if (x.txn != NULL) {
    if (err == VS_OK && x.stored > 0) err = vs_txn_commit(x.txn);
    else mdb_txn_abort(x.txn);
  }
  free(x.full);
  if (err == VS_OK && x.stored > 0) {
    n->stats.acks_received += x.stored;
    n->acks_digest = digest;
    if (n->acks_gen == 0) n->acks_gen = 1;
    n->acks_gen++;
  }
  return err;
}
