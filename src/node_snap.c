#define _POSIX_C_SOURCE 200809L
/* The node's snapshots over a session (node_int.h; docs/protocol.md,
 * "Snapshots over a session"; wire.h, BEHIND .. SNAPACK).
 *
 * Sending side. Anti-entropy (node_push.c) asks nd_snap_behind for every
 * origin it has something of to send: a peer whose vector is below our
 * horizon there (it lacks ops compacted here) gets no run of that origin,
 * never a partial stream, and is told so in a BEHIND message (our horizons,
 * at most one message per 2 x resend_ms while it stays behind). A peer told
 * BEHIND in this session may ask for a snapshot (SNAPREQ): we make it at
 * once, from one read transaction (vs_snapshot_make), into a buffer of at
 * most cfg.snap_bytes_max, and stream it in SNAPCHUNKs of
 * VS_WIRE_SNAP_CHUNK_BYTES, at most VS_NODE_SNAP_WINDOW_BYTES beyond what
 * its SNAPACKs acknowledge. One snapshot per session at a time, at most
 * VS_NODE_SNAP_SERVE_MAX per node, one per peer identity per
 * VS_NODE_SNAP_INTERVAL_MS; a transfer without an acknowledgement for
 * cfg.snap_timeout_ms is dropped and its buffer freed.
 *
 * Receiving side. A BEHIND is checked against our vector (an origin we
 * hold up to the horizon named: not behind, the claim is ignored). If it is
 * true and the store can take a snapshot (vs_snapshot_install: it holds no
 * other origin's ops, a new device just joined; a managed mesh, as only
 * those compact), we ask that peer for one: one transfer per node at a
 * time. Chunks must come in order, of the requested id, within
 * cfg.snap_bytes_max; the bytes are buffered in memory and installed in
 * one transaction when complete (every check of the install happens
 * before its commit), then our vector is reloaded and every peer gets it:
 * anti-entropy goes on from the snapshot's anchors. Anything wrong drops
 * the transfer (counted), that peer is not asked again for SNAP_BAD_MS, and
 * no request goes out for VS_NODE_SNAP_RETRY_MS. A store that cannot
 * install (it holds data: a returning member) counts the BEHIND, logs it
 * once and calls nd_snap_rebase, the seam for re-bootstrapping such a
 * store; it asks nothing. */
#include "node_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "acks.h"
#include "member.h"
#include "mstore.h"
#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "snapshot_int.h"
#include "vixsync/snapshot.h"

/* A peer that declined, or sent a bad or stalled snapshot, is not asked
 * again for this long (and the rebase seam not called again for a session
 * sooner): one transfer per such period per session at most, so that a
 * transient refusal (its rate, a lost chunk) does not leave a returning
 * member stuck behind for the whole session (vix-sim late seed 2: it was
 * told BEHIND 544 times and asked twice). */
#define SNAP_BAD_MS (6u * VS_NODE_SNAP_RETRY_MS)
#define SNAP_BAD_LEVEL_MAX 4u /* the back-off doubles up to 16 x SNAP_BAD_MS (8 min) */

/* Per session. */
typedef struct nd_snap_peer {
  /* Sending side: BEHIND. */
  bool told;               /* told BEHIND in this session: its SNAPREQ may be served */
  uint64_t behind_next_ms; /* no BEHIND to it before then */
  vs_behind_entry *pend;   /* origins found behind since the last BEHIND, sorted */
  uint32_t pend_n;
  /* Sending side: the snapshot it asked for (buf NULL: none). */
  uint64_t id;
  uint8_t *buf;
  size_t len, sent, acked;
  uint64_t progress_ms; /* the last acknowledgement that moved (or the start) */
  /* Receiving side. */
  uint64_t bad_until_ms;  /* declined, sent a bad or stalled snapshot: not asked again before then */
  uint64_t stuck_next_ms; /* the rebase seam is not called again for this session before then */
  uint32_t bad_level;     /* back-offs so far in this session: each doubles the next (snap_later) */
} nd_snap_peer;

/* Per node. */
typedef struct nd_snap_node {
  uint32_t serving;                      /* sessions with a snapshot buffer (<= VS_NODE_SNAP_SERVE_MAX) */
  uint64_t made_ms[VS_NODE_PEERS_MAX];   /* ack_id -> when we last made it a snapshot */
  uint64_t made_any;                     /* bit per ack_id: made_ms is set */
  /* The one snapshot being received. */
  bool in_active;
  bool in_rebase; /* the store holds data: the snapshot re-bootstraps it (vs_snapshot_rebase) */
  uint32_t in_handle;
  uint64_t in_sess, in_id, in_total, in_progress_ms;
  uint8_t *in_buf;
  size_t in_len, in_cap;
  uint64_t next_id;  /* our last request's id */
  uint64_t retry_ms; /* no request before then */
  bool stuck_logged; /* the BEHIND a store with data cannot answer was logged */
  /* The rebase asked for: the origins the BEHIND named that we lack, with
   * the horizons named (rebase_covers; VS_WIRE_BEHIND_MAX at most). */
  vs_behind_entry *want;
  uint32_t want_n;
} nd_snap_node;

static void snap_log(vs_node *n, vs_log_level level, const char *msg) {
  if (n->cfg.log != NULL) n->cfg.log(n->cfg.log_ctx, level, msg);
}

static nd_snap_node *node_state(vs_node *n) {
  if (n->snap == NULL) n->snap = calloc(1, sizeof *n->snap);
  return n->snap;
}

/* When s may be asked again (or the rebase seam called again): SNAP_BAD_MS,
 * doubling with each back-off in the session, so that a failure that will
 * recur (a snapshot that never covers what we were told) costs a transfer
 * ever more rarely, not every 30 s. */
static uint64_t snap_later(nd_snap_peer *s, uint64_t now_ms) {
  uint64_t wait = (uint64_t)SNAP_BAD_MS << s->bad_level;
  if (s->bad_level < SNAP_BAD_LEVEL_MAX) s->bad_level++;
  return vs_add_sat_u64(now_ms, wait);
}

static nd_snap_peer *snap_of(peer *p) {
  if (p->snap == NULL) p->snap = calloc(1, sizeof *p->snap);
  return p->snap;
}

/* ---- sending side: BEHIND ---- */

/* Note `origin` as behind for p's next BEHIND (sorted, at most
 * VS_WIRE_BEHIND_MAX: the rest are named in a later one). */
static vs_err pend_add(nd_snap_peer *s, const uint8_t origin[VS_ORIGIN_BYTES], const vs_horizon *h) {
  uint32_t lo = 0, hi = s->pend_n;
  while (lo < hi) { /* bounded: log2(VS_WIRE_BEHIND_MAX) */
    uint32_t mid = lo + (hi - lo) / 2;
    int c = memcmp(s->pend[mid].origin, origin, VS_ORIGIN_BYTES);
    if (c == 0) return VS_OK;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  if (s->pend_n >= VS_WIRE_BEHIND_MAX) return VS_OK;
  if (s->pend == NULL) {
    s->pend = malloc(sizeof *s->pend * VS_WIRE_BEHIND_MAX);
    if (s->pend == NULL) return VS_ERR_NOMEM;
  }
  memmove(s->pend + lo + 1, s->pend + lo, sizeof *s->pend * (s->pend_n - lo));
  memcpy(s->pend[lo].origin, origin, VS_ORIGIN_BYTES);
  s->pend[lo].seq = h->seq;
  memcpy(s->pend[lo].hash, h->hash, sizeof s->pend[lo].hash);
  s->pend_n++;
  return VS_OK;
}

/* Whether `p` is behind our horizon of `origin` (its vector holds less than
 * our anchor: it lacks ops compacted here, which no run can carry). Then
 * anti-entropy sends it nothing of that origin, and the origin goes into
 * its next BEHIND. *err_out: a store or memory failure (then true). */
bool nd_snap_behind(vs_node *n, peer *p, MDB_txn *txn, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms,
                    vs_err *err_out) {
  *err_out = VS_OK;
  vs_horizon h;
  vs_err err = vs_horizon_get(txn, n->store, origin, &h);
  if (err != VS_OK) {
    *err_out = err;
    return true;
  }
  if (h.seq == 0 || nd_vv_get(&p->known, origin) >= h.seq) return false;
  nd_snap_peer *s = snap_of(p);
  if (s == NULL) {
    *err_out = VS_ERR_NOMEM;
    return true;
  }
  /* Told only once its own vector is here: before that it holds nothing
   * as far as we know, and a member that holds it all would be told. */
  if (s->buf == NULL && p->known_vector != 0 && now_ms >= s->behind_next_ms && !VS_FAULT(VS_FAULT_NO_BEHIND))
    *err_out = pend_add(s, origin, &h); /* (the fault: never told) */
  return true;
}

vs_err nd_snap_floor(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms) {
  if (!n->mesh_managed || VS_FAULT(VS_FAULT_NO_BEHIND)) return VS_OK;
  nd_snap_peer *s = snap_of(p);
  if (s == NULL) return VS_ERR_NOMEM;
  if (s->buf != NULL || p->known_vector == 0 || now_ms < s->behind_next_ms) return VS_OK;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  vs_head h;
  err = vs_head_get(txn, n->store, origin, &h);
  mdb_txn_abort(txn);
  if (err == VS_ERR_NOTFOUND || (err == VS_OK && h.seq == 0)) return VS_OK; /* nothing of it held: its first op was refused */
  if (err != VS_OK) return err;
  vs_horizon at;
  memset(&at, 0, sizeof at);
  at.seq = h.seq;
  memcpy(at.hash, h.hash, sizeof at.hash);
  n->stats.floor_notices++;
  return pend_add(s, origin, &at);
}

static vs_err send_behind(vs_node *n, peer *p, nd_snap_peer *s, uint64_t now_ms) {
  size_t len = 0;
  vs_err err = vs_msg_behind_encode(s->pend, s->pend_n, n->msg, VS_MSG_BYTES_MAX, &len);
  s->pend_n = 0;
  if (err == VS_OK) err = nd_send_msg(n, p, n->msg, len);
  if (err != VS_OK) return err;
  s->told = true;
  s->behind_next_ms = vs_add_sat_u64(now_ms, 2 * n->cfg.resend_ms);
  n->stats.snap_behind_sent++;
  return VS_OK;
}

/* ---- sending side: the snapshot a peer asked for ---- */

typedef struct make_buf {
  uint8_t *p;
  size_t len, cap, max;
} make_buf;

static vs_err make_write(void *ctx, const uint8_t *bytes, size_t len) {
  make_buf *b = ctx;
  if (len > b->max - b->len) return VS_ERR_LIMIT; /* past snap_bytes_max */
  if (b->len + len > b->cap) {
    size_t cap = b->cap == 0 ? 64u * 1024u : b->cap;
    while (cap < b->len + len) cap = cap > b->max / 2 ? b->max : cap * 2; /* bounded: doubles up to max */
    uint8_t *q = realloc(b->p, cap);
    if (q == NULL) return VS_ERR_NOMEM;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, bytes, len);
  b->len += len;
  return VS_OK;
}

static void serve_drop(vs_node *n, nd_snap_peer *s) {
  if (s->buf == NULL) return;
  free(s->buf);
  s->buf = NULL;
  s->len = s->sent = s->acked = 0;
  if (n->snap != NULL && n->snap->serving > 0) n->snap->serving--;
}

static vs_err send_decline(vs_node *n, peer *p, uint64_t id) {
  vs_snapchunk c = {id, 0, 0, NULL, 0};
  size_t len = 0;
  vs_err err = vs_msg_snapchunk_encode(&c, n->msg, VS_MSG_BYTES_MAX, &len);
  return err == VS_OK ? nd_send_msg(n, p, n->msg, len) : err;
}

vs_err nd_on_snapreq(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  uint64_t id = 0;
  vs_err err = vs_msg_snapreq_decode(msg, len, &id);
  if (err != VS_OK) return err;
  nd_snap_node *sn = node_state(n);
  nd_snap_peer *s = snap_of(p);
  if (sn == NULL || s == NULL) return VS_ERR_NOMEM;
  if (s->buf != NULL) { /* one in flight per session: a repeat or a flood is not answered */
    n->stats.snap_requests_refused++;
    return VS_OK;
  }
  /* Only a peer we found behind, or that sent its vector (a too-late
   * replica asks without a BEHIND: nd_snap_late_tick), a member (no
   * probation), within the rates: making a snapshot reads the whole state.
   * A member can always claim a vector that gets it a BEHIND, so the rates
   * are the bound: one snapshot per identity per VS_NODE_SNAP_INTERVAL_MS,
   * VS_NODE_SNAP_SERVE_MAX at once. */
  uint32_t a = p->ack_id;
  bool rate_ok = !((sn->made_any >> a) & 1u) || now_ms >= vs_add_sat_u64(sn->made_ms[a], VS_NODE_SNAP_INTERVAL_MS) ||
                 now_ms < sn->made_ms[a];
  if (!(s->told || p->known_vector != 0) || p->probation || sn->serving >= VS_NODE_SNAP_SERVE_MAX || !rate_ok) {
    n->stats.snap_requests_refused++;
    return send_decline(n, p, id);
  }
  sn->made_ms[a] = now_ms;
  sn->made_any |= 1ull << a;
  make_buf b = {NULL, 0, 0, n->cfg.snap_bytes_max};
  err = vs_snapshot_make(n->store, make_write, &b, NULL);
  if (err != VS_OK || b.len == 0) {
    free(b.p);
    n->stats.snap_requests_refused++;
    if (err == VS_ERR_NOMEM || err == VS_ERR_STORE) return err;
    return send_decline(n, p, id); /* too large, a forked origin, ... */
  }
  s->id = id;
  s->buf = b.p;
  s->len = b.len;
  s->sent = s->acked = 0;
  s->progress_ms = now_ms;
  s->pend_n = 0;
  sn->serving++;
  n->stats.snap_served++;
  return nd_snap_peer_tick(n, p, now_ms);
}

vs_err nd_on_snapack(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  uint64_t id = 0, received = 0;
  vs_err err = vs_msg_snapack_decode(msg, len, &id, &received);
  if (err != VS_OK) return err;
  nd_snap_peer *s = p->snap;
  if (s == NULL || s->buf == NULL || id != s->id || received > s->sent || received < s->acked) {
    n->stats.snap_rejected++; /* nothing of it is ours to count: ignored */
    return VS_OK;
  }
  if (received > s->acked) s->progress_ms = now_ms;
  s->acked = (size_t)received;
  if (s->acked == s->len) {
    serve_drop(n, s); /* all of it is there */
    /* Its store takes our snapshot in place of what it held, acks
     * included (an install or a rebase empties them): what we told it of
     * every author is told again, or it stores no ack of some members for
     * as long as our digests keep moving (the re-tell waits for both to
     * rest: node_acks.c), and its cut stays 0 (vix-sim: swarm seeds 10 and
     * 28, a seeded node's horizons above acks it never got back). */
    nd_acks_peer_free(p);
  }
  return VS_OK;
}

/* Chunks within the window. */
static vs_err serve_chunks(vs_node *n, peer *p, nd_snap_peer *s) {
  for (uint32_t k = 0; k < VS_NODE_SNAP_WINDOW_BYTES / VS_WIRE_SNAP_CHUNK_BYTES + 1u && s->sent < s->len &&
                       s->sent - s->acked < VS_NODE_SNAP_WINDOW_BYTES && p->st == PEER_READY;
       k++) {
    size_t part = s->len - s->sent;
    if (part > VS_WIRE_SNAP_CHUNK_BYTES) part = VS_WIRE_SNAP_CHUNK_BYTES;
    vs_snapchunk c = {s->id, s->len, s->sent, s->buf + s->sent, part};
    size_t len = 0;
    vs_err err = vs_msg_snapchunk_encode(&c, n->msg, VS_MSG_BYTES_MAX, &len);
    if (err == VS_OK) err = nd_send_msg(n, p, n->msg, len);
    if (err != VS_OK) return err;
    s->sent += part;
    n->stats.snap_chunks_sent++;
    n->stats.snap_bytes_sent += part;
  }
  return VS_OK;
}

/* ---- receiving side ---- */

static void recv_drop(vs_node *n, uint64_t now_ms) {
  nd_snap_node *sn = n->snap;
  if (sn == NULL || !sn->in_active) return;
  free(sn->in_buf);
  sn->in_buf = NULL;
  sn->in_len = sn->in_cap = 0;
  sn->in_total = 0;
  sn->in_active = false;
  sn->retry_ms = vs_add_sat_u64(now_ms, VS_NODE_SNAP_RETRY_MS);
}

/* The store can take a snapshot (vs_snapshot_install): it holds no op of
 * another origin than its own. Our vector says so without a transaction. */
static bool store_fresh(const vs_node *n) {
  for (uint32_t i = 0; i < n->mine.n; i++) /* bounded: stops at the first other origin */
    if (memcmp(n->mine.e[i].origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) != 0) return false;
  return true;
}

static vs_err send_request(vs_node *n, peer *p, nd_snap_node *sn, uint64_t now_ms);

/* Re-bootstrapping a store that already holds data and is behind a peer's
 * horizon (a returning member, a restored backup): the snapshot is asked
 * for as a new device's is, and taken with vs_snapshot_rebase when it
 * anchors every origin the BEHIND named at or past the horizon named
 * (rebase_covers). Called at most once per SNAP_BAD_MS per session that tells us BEHIND; `e`
 * (count entries): that BEHIND's. */
static vs_err nd_snap_rebase(vs_node *n, peer *p, nd_snap_node *sn, nd_snap_peer *s, const vs_behind_entry *e,
                             uint32_t count, bool own_floor, uint64_t now_ms) {
  if (sn->in_active || now_ms < s->bad_until_ms || now_ms < sn->retry_ms) return VS_OK;
  if (sn->want == NULL) sn->want = malloc(sizeof *sn->want * VS_WIRE_BEHIND_MAX);
  if (sn->want == NULL) return VS_ERR_NOMEM;
  sn->want_n = 0;
  for (uint32_t i = 0; i < count && i < VS_WIRE_BEHIND_MAX; i++) { /* bounded: VS_WIRE_BEHIND_MAX */
    bool self = memcmp(e[i].origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0;
    /* A floor notice: the snapshot must anchor our chain at what the
     * peer holds of it (its orphans start above that, never below). */
    if (nd_vv_get(&n->mine, e[i].origin) < e[i].seq || (self && own_floor)) sn->want[sn->want_n++] = e[i];
  }
  vs_err err = send_request(n, p, sn, now_ms);
  if (err == VS_OK) sn->in_rebase = true;
  return err;
}

/* ---- the too-late replica ----
 * A member silent past twice suspend_after no longer bounds its peers'
 * tombstone drops (compact.c, the pin), so their floors pass the writes it
 * made meanwhile, each peer at its own time: one whose floor has not
 * passed a write yet takes it, one whose floor has refuses it for good,
 * and the mesh splits on that chain (vix-sim compaction_suspend_late: a
 * peer that had just rebased onto a snapshot with no floor took them all).
 * So a device that comes back in touch (a ready peer after none) having
 * been out of touch for about that long (since it last had a ready
 * session, kept in meta "contact", or heard an ack of another member,
 * whichever is later: more than 1.75 x suspend_after, a quarter of the
 * bound for clock skew; the peers' clocks start when they store an op it
 * lacks, at the earliest when it lost touch) while it holds own writes no
 * peer holds sends none of them, asks a peer for its snapshot and rebases onto
 * it, orphaning every such write (surfaced once, never sent: the
 * application replays what it still wants, as new writes). Not a member
 * of a mesh of fewer than three (two never suspend each other), nor a
 * device that holds no ack of anyone (new: it never was in the cut). */
/* Keep when a peer was last ready: in memory at every poll, in meta every
 * suspend_after / 8 at most (one small write transaction). A failed write
 * is not retried before the next period and stops nothing (the measure is
 * advisory; a full store fails louder elsewhere). */
static void contact_keep(vs_node *n, uint64_t now_ms) {
  n->contact_ms = now_ms;
  uint64_t every = n->cfg.suspend_after_ms / 8 > 1000 ? n->cfg.suspend_after_ms / 8 : 1000;
  if (n->contact_saved_ms != 0 && now_ms >= n->contact_saved_ms && now_ms - n->contact_saved_ms < every) return;
  n->contact_saved_ms = now_ms;
  MDB_txn *txn;
  if (vs_txn_begin(n->store, true, &txn) != VS_OK) return;
  if (vs_meta_contact_put(txn, n->store, now_ms) == VS_OK) (void)vs_txn_commit(txn);
  else mdb_txn_abort(txn);
}

static vs_err late_enter(vs_node *n, uint64_t since_ms, uint64_t now_ms, uint64_t unsent, bool marked) {
  if (!marked) { /* marked in the store first: acks of others arrive while it waits for a snapshot, and after a
                  * crash they would say it was in touch */
    MDB_txn *txn;
    vs_err err = vs_txn_begin(n->store, true, &txn);
    if (err != VS_OK) return err;
    err = vs_meta_late_put(txn, n->store, now_ms > 0 ? now_ms : 1);
    if (err == VS_OK) err = vs_txn_commit(txn);
    else mdb_txn_abort(txn);
    if (err != VS_OK) return err;
  }
  n->late = true;
  n->late_since_ms = since_ms;
  n->stats.late_returns++;
  char line[220];
  if (marked)
    snprintf(line, sizeof line, "event=late_return action=rebase: still a too-late replica (marked before a restart)");
  else
    snprintf(line, sizeof line, "event=late_return silent_ms=%llu unsent=%llu action=rebase: own writes of the absence "
             "are held back and will be orphaned", (unsigned long long)(now_ms - since_ms), (unsigned long long)unsent);
  snap_log(n, VS_LOG_WARN, line);
  return VS_OK;
}

vs_err nd_snap_late_check(vs_node *n, uint64_t now_ms) {
  uint32_t ready = 0;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) ready += n->peers[i].st == PEER_READY; /* bounded: the table */
  uint32_t prev = n->ready_prev;
  n->ready_prev = ready;
  bool back = ready > 0 && prev == 0 && !n->late && n->mesh_managed; /* in touch again, after none */
  uint64_t last = n->contact_ms;                                      /* before this poll's */
  /* Contact is kept while in touch and not late: a too-late replica that
   * crashes before its rebase finds the same silence when it is back. */
  bool keep = ready > 0 && n->mesh_managed && n->cfg.suspend_after_ms != 0 && !n->late;
  if (!back) {
    if (keep) contact_keep(n, now_ms);
    return VS_OK;
  }
  MDB_txn *txn;
  uint64_t heard = 0, kept = 0, marked = 0;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_acks_heard_txn(txn, n->store, n->cfg.identity.pk, &heard);
  if (err == VS_OK) err = vs_meta_contact_get(txn, n->store, &kept);
  if (err == VS_OK) err = vs_meta_late_get(txn, n->store, &marked);
  mdb_txn_abort(txn);
  if (err != VS_OK) return err;
  /* Found late before a crash or a restart, and not rebased since: still
   * late, whatever the configuration says now. */
  if (marked != 0) return late_enter(n, kept, now_ms, 0, true);
  bool judged = n->cfg.suspend_after_ms != 0 && n->keys.active >= 3 && n->cfg.suspend_after_ms <= UINT64_MAX / 4;
  /* No ack of anyone held: a new device, never in a cut. */
  if (!judged || heard == 0) {
    if (keep) contact_keep(n, now_ms);
    return VS_OK;
  }
  /* Since when out of touch: our own clock's record of the last ready
   * session; the newest ack of another member only for a store that kept
   * none (made before session 14), as that member's clock, which may be
   * ahead of ours, tells it. */
  uint64_t since = last > kept ? last : kept;
  if (since == 0) since = vs_hlc_wall_ms(heard);
  uint64_t bound = n->cfg.suspend_after_ms * 2 - n->cfg.suspend_after_ms / 4;
  vs_outbox_counts c;
  memset(&c, 0, sizeof c);
  bool late = now_ms > since && now_ms - since > bound && n->outbox != NULL;
  if (late) err = vs_outbox_counts_get(n->outbox, &c);
  if (err != VS_OK) return err;
  if (!late || c.pending + c.inflight == 0) { /* every own write is held somewhere: nothing at risk */
    contact_keep(n, now_ms);
    return VS_OK;
  }
  return late_enter(n, since, now_ms, c.pending + c.inflight, false);
}

/* While late: ask a ready peer that sent its vector for its snapshot (the
 * rebase orphans our unsent writes: rebase()). One transfer at a time; a
 * peer that declined or failed is asked again after the back-off. */
vs_err nd_snap_late_tick(vs_node *n, peer *p, uint64_t now_ms) {
  if (!n->late || p->probation || p->known_vector == 0) return VS_OK;
  nd_snap_node *sn = node_state(n);
  nd_snap_peer *s = snap_of(p);
  if (sn == NULL || s == NULL) return VS_ERR_NOMEM;
  if (sn->in_active || now_ms < s->bad_until_ms || now_ms < sn->retry_ms) return VS_OK;
  sn->want_n = 0; /* any snapshot of the mesh: what it anchors is checked by the rebase */
  vs_err err = send_request(n, p, sn, now_ms);
  if (err == VS_OK) sn->in_rebase = true;
  return err;
}

/* The seq of our chain that ready peers' vectors hold, naming our op
 * there by hash (nd_own_claim_verified: a member claiming ops of ours it
 * never got would keep them from being orphaned); a too-late replica's
 * rebase orphans nothing at or below it. */
uint64_t nd_snap_own_held(vs_node *n) {
  uint64_t held = 0, head = nd_vv_get(&n->mine, n->cfg.identity.pk);
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) { /* bounded: the table */
    const peer *q = &n->peers[i];
    if (q->st != PEER_READY) continue;
    uint64_t h = nd_own_claim_verified(n, q);
    if (h > head) h = head;
    if (h > held) held = h;
  }
  return held;
}

static vs_err send_request(vs_node *n, peer *p, nd_snap_node *sn, uint64_t now_ms) {
  uint64_t id = ++sn->next_id;
  size_t len = 0;
  vs_err err = vs_msg_snapreq_encode(id, n->msg, VS_MSG_BYTES_MAX, &len);
  if (err == VS_OK) err = nd_send_msg(n, p, n->msg, len);
  if (err != VS_OK) return err;
  sn->in_active = true;
  sn->in_rebase = false;
  sn->in_handle = p->handle;
  sn->in_sess = p->sess_no;
  sn->in_id = id;
  sn->in_total = 0;
  sn->in_len = 0;
  sn->in_progress_ms = now_ms;
  n->stats.snap_requests_sent++;
  return VS_OK;
}

/* An entry naming our own origin at a seq we hold: the sender refused our
 * run after it below its gc_floor (nd_snap_floor). Taken when the hash is
 * our op's there (the sender holds our chain up to it); else ignored (an
 * old notice from before a rebase, or a liar: nothing changes). */
static vs_err floor_notice(vs_node *n, const vs_behind_entry *e, bool *out) {
  MDB_txn *txn;
  uint8_t held[VS_HASH_BYTES];
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_op_hash_at_txn(txn, n->store, e->origin, e->seq, held);
  mdb_txn_abort(txn);
  if (err == VS_ERR_NOTFOUND) return VS_OK; /* compacted here or never held: not ours to judge */
  if (err == VS_OK && memcmp(held, e->hash, VS_HASH_BYTES) == 0) *out = true;
  return err;
}

vs_err nd_on_behind(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  uint32_t count = 0;
  vs_behind_entry *e = malloc(sizeof *e * VS_WIRE_BEHIND_MAX);
  if (e == NULL) return VS_ERR_NOMEM;
  vs_err err = vs_msg_behind_decode(msg, len, e, VS_WIRE_BEHIND_MAX, &count);
  if (err != VS_OK) {
    free(e);
    return err;
  }
  n->stats.snap_behind_received++;
  bool behind = false, own = false, own_floor = false;
  for (uint32_t i = 0; i < count && err == VS_OK; i++) { /* bounded: count <= VS_WIRE_BEHIND_MAX */
    /* Our own chain, held past there: a floor notice? (At our head it
     * names nothing refused: ignored, or anyone could make us rebase.) */
    if (memcmp(e[i].origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0 && nd_vv_get(&n->mine, e[i].origin) > e[i].seq)
      err = floor_notice(n, &e[i], &own_floor);
    if (nd_vv_get(&n->mine, e[i].origin) >= e[i].seq) continue;
    behind = true;
    /* Behind on our own chain: the mesh holds more of it than we do (a
     * restored copy): a snapshot cannot be installed over that either. */
    own = own || memcmp(e[i].origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0;
  }
  nd_snap_node *sn = node_state(n);
  nd_snap_peer *s = snap_of(p);
  if (own_floor && err == VS_OK && n->mesh_managed) {
    n->stats.floor_notices_received++;
    /* A ready peer holds our chain past the notice: it took what this one
     * refuses. Rebasing would sign those seqs again (a fork of our own
     * identity); the stores differ on our chain and stay so (counted). */
    for (uint32_t i = 0; i < VS_NODE_PEERS_MAX && own_floor; i++) { /* bounded: the peer table */
      const peer *q = &n->peers[i];
      if (q->st != PEER_READY || q == p) continue;
      uint64_t held = nd_vv_get(&q->known, n->cfg.identity.pk);
      for (uint32_t k = 0; k < count && own_floor; k++)
        if (memcmp(e[k].origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0 && held > e[k].seq) own_floor = false;
    }
    if (!own_floor) n->stats.floor_splits++;
    else behind = own = true;
  }
  if (err == VS_OK && (sn == NULL || s == NULL)) err = VS_ERR_NOMEM;
  if (err != VS_OK) {
    /* nothing more: a store or memory failure */
  } else if (!behind || !n->mesh_managed) {
    n->stats.snap_behind_false++; /* nothing to fetch: ignored */
  } else if (!store_fresh(n) || own) {
    n->stats.snap_behind_stuck++;
    /* A store holding the fork verdict on its own identity never rebases
     * (vs_snapshot_rebase: VS_ERR_FORKED; the identity is spent and is
     * replaced by a new one): asking would only fetch a snapshot to refuse
     * (a device of a cloned identity the mesh compacted past:
     * docs/storage.md, "One identity on two devices"). */
    uint64_t void_from = 0;
    err = vs_store_fork_get(n->store, n->cfg.identity.pk, &void_from);
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
    if (err == VS_OK && !sn->stuck_logged) {
      char line[160];
      snprintf(line, sizeof line, "event=behind_horizon origins=%u action=%s reason=%s", count,
               void_from != 0 ? "none" : "rebase",
               void_from != 0 ? "own_identity_forked" : own_floor ? "own_writes_below_floor" : own ? "own_chain_behind"
                                                                                              : "store_holds_data");
      snap_log(n, VS_LOG_WARN, line);
      sn->stuck_logged = true;
    }
    if (err == VS_OK && void_from == 0 && now_ms >= s->stuck_next_ms) {
      s->stuck_next_ms = snap_later(s, now_ms);
      err = nd_snap_rebase(n, p, sn, s, e, count, own_floor, now_ms);
    }
  } else if (!sn->in_active && now_ms >= s->bad_until_ms && now_ms >= sn->retry_ms) {
    err = send_request(n, p, sn, now_ms);
  }
  free(e);
  return err;
}

typedef struct read_cur {
  const uint8_t *p;
  size_t len, at;
} read_cur;

static vs_err install_read(void *ctx, uint8_t *buf, size_t len) {
  read_cur *c = ctx;
  if (len > c->len - c->at) return VS_ERR_TRUNCATED;
  memcpy(buf, c->p + c->at, len);
  c->at += len;
  return VS_OK;
}

/* Whether the snapshot lifts us past what the BEHIND named: its anchor
 * of each origin we lacked at or past the horizon named. An older one,
 * validly signed, would leave us behind (and cost a transfer per session).
 * And that origin's ops up to the anchor are ones our view holds valid: a
 * member, or a revoked one up to its cut. A maker that folded ops we hold
 * void (a lost admission, ops past a revocation cut: a horizon breach
 * there, counted) would hand us its breach; we stay behind instead
 * (tests/test_compact_final.c, the twin).
 * What we hold past its anchors stays through the rebase
 * (vs_snapshot_rebase keeps other chains' ops above the anchors; one that
 * we compacted past, or that does not continue the anchor, is refused
 * there). Not covered: nothing changes (vix-node restore --rebase takes a
 * snapshot file). *ok_out false: not covered. */
static vs_err rebase_covers(vs_node *n, const nd_snap_node *sn, const uint8_t *buf, size_t len, uint64_t now_ms,
                            bool *ok_out) {
  read_cur c = {buf, len, 0};
  vs_snap_head h;
  *ok_out = false;
  vs_err err = vs_snap_head_read(install_read, &c, now_ms, &h);
  if (err != VS_OK) return VS_OK; /* not covered: the rebase would refuse it anyway */
  MDB_txn *txn = NULL;
  err = vs_txn_begin(n->store, false, &txn);
  bool ok = err == VS_OK;
  for (uint32_t i = 0; i < sn->want_n && ok; i++) { /* bounded: VS_WIRE_BEHIND_MAX */
    const uint8_t *a = vs_snap_anchor(&h, sn->want[i].origin);
    uint64_t anchor = a != NULL ? vs_get_u64le(a + VS_SNAP_ANCHOR_SEQ) : 0;
    vs_mesh_rec rec;
    ok = a != NULL && anchor >= sn->want[i].seq;
    if (ok) err = vs_mesh_rec_get_txn(txn, n->store, sn->want[i].origin, &rec);
    if (ok && err == VS_ERR_NOTFOUND) {
      /* Not a member in our view: its ops are void here (an admission
       * that lost: we hold it, and its record), unless we hold nothing of
       * it (a member admitted while we were away: its admission is in the
       * snapshot's membership ops, which the rebase folds). */
      vs_mesh_fact f;
      err = vs_mesh_fact_get_txn(txn, n->store, sn->want[i].origin, 1, &f);
      ok = err == VS_ERR_NOTFOUND && nd_vv_get(&n->mine, sn->want[i].origin) == 0;
      if (err == VS_ERR_NOTFOUND || err == VS_OK) err = VS_OK;
    } else if (ok && err == VS_OK) {
      ok = !rec.revoked || anchor <= rec.cut_seq;
    }
    if (err != VS_OK) ok = false;
  }
  if (txn != NULL) mdb_txn_abort(txn);
  vs_snap_head_free(&h);
  *ok_out = ok;
  return err == VS_ERR_STORE || err == VS_ERR_NOMEM ? err : VS_OK;
}

/* A fresh store (only its own ops: a device that went offline before it
 * received anything) whose own ops past the snapshot's anchor of its chain
 * include a data op at or below the snapshot's gc_floor. An install keeps
 * them in the chain, where every peer refuses them (below its floor) for
 * good and nobody is told (vix-sim, session 12); the rebase orphans them
 * from the first such op on, surfaced once. Bounded: our own chain past
 * the anchor. */
static vs_err own_below_floor(vs_node *n, const uint8_t *buf, size_t len, uint64_t now_ms, bool *out) {
  read_cur c = {buf, len, 0};
  vs_snap_head h;
  *out = false;
  if (vs_snap_head_read(install_read, &c, now_ms, &h) != VS_OK) return VS_OK; /* the install refuses it */
  const uint8_t *self = n->cfg.identity.pk, *a = vs_snap_anchor(&h, self);
  uint64_t floor = vs_get_u64le(h.hdr + VS_SNAP_GC_FLOOR), anchor = a != NULL ? vs_get_u64le(a + VS_SNAP_ANCHOR_SEQ) : 0;
  uint64_t head = nd_vv_get(&n->mine, self);
  vs_snap_head_free(&h);
  if (floor == 0 || head <= anchor) return VS_OK;
  MDB_txn *txn = NULL;
  vs_err err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  for (uint64_t q = anchor + 1; q <= head && err == VS_OK && !*out; q++) {
    vs_op_id id;
    uint64_t lsn = 0;
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    vs_op op;
    vs_op_id_derive(self, q, &id);
    err = vs_opid_get(txn, n->store, &id, &lsn, NULL);
    if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, n->store, lsn, &enc, &enc_bytes);
    if (err == VS_OK && vs_op_decode(enc, enc_bytes, &op) != VS_OK) err = VS_ERR_CORRUPT;
    if (err == VS_OK) *out = op.hlc <= floor && !vs_mesh_kind_reserved(op.kind, op.kind_bytes);
  }
  mdb_txn_abort(txn);
  return err == VS_ERR_NOTFOUND ? VS_OK : err; /* a gap: the install decides */
}

/* A store with data: the snapshot re-bootstraps it when it covers what the
 * BEHIND named (rebase_covers; a fresh store asked nothing of it), in one
 * transaction (vs_snapshot_rebase). */
static vs_err rebase(vs_node *n, nd_snap_node *sn, uint64_t now_ms, vs_snapshot_info *info_out) {
  bool covers = !sn->in_rebase;
  vs_err err = sn->in_rebase ? rebase_covers(n, sn, sn->in_buf, sn->in_len, now_ms, &covers) : VS_OK;
  if (err != VS_OK) return err;
  if (!covers) {
    snap_log(n, VS_LOG_WARN, "event=snapshot_refused reason=would_roll_back: it anchors a chain below the horizon "
                             "we were told (vix-node restore --rebase takes a snapshot file)");
    return VS_ERR_STATE;
  }
  read_cur c = {sn->in_buf, sn->in_len, 0};
  vs_rebase_info info;
  uint64_t held = n->late ? nd_snap_own_held(n) : UINT64_MAX;
  /* With ack_quorum > 1 an op one peer holds is not marked delivered:
   * only writes made after we lost touch are surely held by none. */
  uint64_t after = n->late && n->cfg.ack_quorum > 1 ? vs_hlc_make(n->late_since_ms, UINT16_MAX) : 0;
  err = vs_snap_rebase_late(n->store, install_read, &c, now_ms, held, after, &info);
  if (err != VS_OK) return err;
  *info_out = info.snapshot;
  n->stats.snap_rebases++;
  if (n->late) {
    n->stats.late_rebases++;
    n->late = false;
  }
  char line[200];
  snprintf(line, sizeof line,
           "event=snapshot_rebased own_anchor=%llu own_kept=%llu orphaned=%llu ops_dropped=%llu",
           (unsigned long long)info.own_anchor, (unsigned long long)info.own_kept,
           (unsigned long long)info.orphaned, (unsigned long long)info.ops_dropped);
  snap_log(n, info.orphaned > 0 ? VS_LOG_WARN : VS_LOG_INFO, line);
  return VS_OK;
}

/* The whole snapshot is here: install it (or rebase onto it), in one transaction. */
static vs_err install(vs_node *n, peer *p, nd_snap_node *sn, uint64_t now_ms) {
  read_cur c = {sn->in_buf, sn->in_len, 0};
  vs_snapshot_info info;
  bool rebased = sn->in_rebase;
  vs_err err = rebased ? VS_OK : own_below_floor(n, sn->in_buf, sn->in_len, now_ms, &rebased);
  if (err == VS_OK) err = rebased ? rebase(n, sn, now_ms, &info) : vs_snapshot_install(n->store, install_read, &c, now_ms, &info);
  recv_drop(n, now_ms);
  if (err != VS_OK) {
    n->stats.snap_install_failed++;
    char line[128];
    snprintf(line, sizeof line, "event=snapshot_refused err=%s", vs_err_name(err));
    snap_log(n, VS_LOG_WARN, line);
    /* Not asked again for SNAP_BAD_MS. VS_ERR_STATE: another mesh's, or
     * the store took runs meanwhile (then the next BEHIND finds it not
     * fresh and asks nothing). */
    if (p->snap != NULL) p->snap->bad_until_ms = snap_later(p->snap, now_ms);
    return err == VS_ERR_NOMEM || err == VS_ERR_STORE || err == VS_ERR_FULL ? err : VS_OK;
  }
  sn->retry_ms = 0;
  n->stats.snap_installs++;
  char signer[2 * VS_ORIGIN_BYTES + 1], line[320];
  vs_hex_encode(info.signer, VS_ORIGIN_BYTES, signer);
  snprintf(line, sizeof line,
           "event=snapshot_installed signer=%s origins=%u entries=%llu incrs=%llu mesh_ops=%llu bytes=%llu", signer,
           info.origins, (unsigned long long)info.entries, (unsigned long long)info.incrs,
           (unsigned long long)info.mesh_ops, (unsigned long long)info.bytes);
  snap_log(n, VS_LOG_INFO, line);
  /* Anti-entropy from the installed vector: ours again from the store,
   * told to every peer; the membership view is read again at the sweep. */
  nd_vv_free(&n->mine);
  err = nd_load_mine(n);
  n->mesh_checked = false;
  n->acks_loaded = false;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    peer *q = &n->peers[i];
    if (q->st != PEER_READY) continue;
    q->vv_due = true;
    q->acks_forget_due = true; /* the store's acks were emptied: every peer tells them again */
    /* A rebase rewrote our chain above the anchor: what we counted as sent
     * of it (orphans now, sent before the BEHIND came) says nothing of the
     * new ops at those seqs. Forget it, so they go out at once rather than
     * at the next resend, by when the peers' gc_floor may have passed
     * them (refused for good: VS_ERR_BELOW_FLOOR). */
    if (rebased) {
      nd_vv_free(&q->sent);
      nd_flight_clear(q);
    }
  }
  return err;
}

vs_err nd_on_snapchunk(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  vs_snapchunk c;
  vs_err err = vs_msg_snapchunk_decode(msg, len, &c);
  if (err != VS_OK) return err;
  nd_snap_node *sn = n->snap;
  if (sn == NULL || !sn->in_active || sn->in_handle != p->handle || sn->in_sess != p->sess_no || c.id != sn->in_id) {
    n->stats.snap_rejected++; /* not asked for: ignored, nothing kept */
    return VS_OK;
  }
  nd_snap_peer *s = snap_of(p);
  if (s == NULL) return VS_ERR_NOMEM;
  if (c.total == 0) { /* declined */
    n->stats.snap_declined++;
    s->bad_until_ms = snap_later(s, now_ms);
    /* A too-late replica stays late: it asks another peer, or this one
     * after the back-off (a peer that holds nothing beyond it proves
     * nothing of the peers it cannot reach). */
    recv_drop(n, now_ms);
    return VS_OK;
  }
  if (c.total > n->cfg.snap_bytes_max || (sn->in_total != 0 && c.total != sn->in_total) || c.offset != sn->in_len) {
    n->stats.snap_rejected++; /* too large, changed its size, out of order: the transfer is over */
    s->bad_until_ms = snap_later(s, now_ms);
    recv_drop(n, now_ms);
    return VS_OK;
  }
  sn->in_total = c.total;
  if (sn->in_len + c.len > sn->in_cap) { /* grows with what arrives, never past the total */
    size_t cap = sn->in_cap == 0 ? 256u * 1024u : sn->in_cap * 2;
    if (cap < sn->in_len + c.len) cap = sn->in_len + c.len;
    if (cap > c.total) cap = (size_t)c.total;
    uint8_t *q = realloc(sn->in_buf, cap);
    if (q == NULL) {
      recv_drop(n, now_ms);
      return VS_ERR_NOMEM;
    }
    sn->in_buf = q;
    sn->in_cap = cap;
  }
  memcpy(sn->in_buf + sn->in_len, c.bytes, c.len);
  sn->in_len += c.len;
  sn->in_progress_ms = now_ms;
  n->stats.snap_chunks_received++;
  n->stats.snap_bytes_received += c.len;
  size_t out = 0;
  err = vs_msg_snapack_encode(c.id, sn->in_len, n->msg, VS_MSG_BYTES_MAX, &out);
  if (err == VS_OK) err = nd_send_msg(n, p, n->msg, out);
  if (err != VS_OK) return err;
  return sn->in_len == sn->in_total ? install(n, p, sn, now_ms) : VS_OK;
}

/* ---- timers ---- */

vs_err nd_snap_tick(vs_node *n, uint64_t now_ms) {
  nd_snap_node *sn = n->snap;
  if (sn != NULL && sn->in_active && now_ms >= vs_add_sat_u64(sn->in_progress_ms, n->cfg.snap_timeout_ms)) {
    n->stats.snap_timeouts++;
    peer *p = nd_peer_find(n, sn->in_handle);
    if (p != NULL && p->snap != NULL && p->sess_no == sn->in_sess)
      p->snap->bad_until_ms = snap_later(p->snap, now_ms);
    recv_drop(n, now_ms);
  }
  return VS_OK;
}

vs_err nd_snap_peer_tick(vs_node *n, peer *p, uint64_t now_ms) {
  nd_snap_peer *s = p->snap;
  if (s == NULL || p->st != PEER_READY) return VS_OK;
  if (s->buf != NULL && now_ms >= vs_add_sat_u64(s->progress_ms, n->cfg.snap_timeout_ms)) {
    n->stats.snap_timeouts++; /* it acknowledges nothing: the buffer goes */
    serve_drop(n, s);
  }
  if (s->buf != NULL) return serve_chunks(n, p, s);
  if (s->pend_n > 0) return send_behind(n, p, s, now_ms);
  return VS_OK;
}

uint64_t nd_snap_wake(const vs_node *n, uint64_t now_ms) {
  uint64_t wake = UINT64_MAX;
  const nd_snap_node *sn = n->snap;
  if (sn != NULL && sn->in_active) wake = vs_add_sat_u64(sn->in_progress_ms, n->cfg.snap_timeout_ms);
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    const peer *p = &n->peers[i];
    const nd_snap_peer *s = p->snap;
    if (p->st != PEER_READY || s == NULL) continue;
    uint64_t t = UINT64_MAX;
    if (s->pend_n > 0 || (s->buf != NULL && s->sent < s->len && s->sent - s->acked < VS_NODE_SNAP_WINDOW_BYTES))
      t = now_ms;
    else if (s->buf != NULL)
      t = vs_add_sat_u64(s->progress_ms, n->cfg.snap_timeout_ms);
    if (t < wake) wake = t;
  }
  return wake;
}

/* ---- freeing ---- */

void nd_snap_peer_free(vs_node *n, peer *p) {
  nd_snap_peer *s = p->snap;
  if (n->snap != NULL && n->snap->in_active && n->snap->in_handle == p->handle && n->snap->in_sess == p->sess_no)
    recv_drop(n, n->snap->in_progress_ms); /* its transfer ends with it (retry measured from its last chunk) */
  if (s == NULL) return;
  serve_drop(n, s);
  free(s->pend);
  free(s);
  p->snap = NULL;
}

void nd_snap_free(vs_node *n) {
  if (n->snap == NULL) return;
  free(n->snap->in_buf);
  free(n->snap->want);
  free(n->snap);
  n->snap = NULL;
}
