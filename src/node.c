#define _POSIX_C_SOURCE 200809L
/* The replication node: sessions, anti-entropy, mesh push (see node.h). */
#include "vixsync/node.h"

#include <stdio.h>
#include <stdlib.h>

#include "cfg.h"
#include "internal.h"
#include "apply.h"
#include "vixsync/state.h"
#include "vixsync/wal.h"
#include "wire.h"

#define QUEUE_MAX 4096u /* frames queued per peer; past it the peer is too slow: closed */

typedef enum peer_state { PEER_FREE = 0, PEER_HANDSHAKE, PEER_READY, PEER_CLOSING } peer_state;

typedef struct frame {
  uint8_t *bytes; /* NULL: a CLOSE */
  size_t len;
} frame;

typedef struct vv {
  vs_vv_entry *e;
  uint32_t n, cap;
} vv;

/* A run sent to a peer and not yet acknowledged: its in-flight credit comes
 * back when the peer's vector holds `end` of `origin`, and only then. */
typedef struct flight {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t end;
  uint64_t bytes;
} flight;

#define RESEND_LEVEL_MAX 32u /* resend_ms << level saturates at resend_max_ms long before */
#define QUOTA_UNIT 60000u    /* origin quota tokens are counted in 1/60000: one per minute-ms */
#define QUOTA_ALL_PEERS 4u   /* the node-wide bucket holds and refills this many peers' worth */

typedef struct peer {
  peer_state st;
  uint32_t handle;
  vs_hs hs;
  vs_session sess;
  uint64_t hs_deadline_ms; /* the earlier of hs_end_ms and, until a valid HELLO, the HELLO deadline */
  uint64_t hs_end_ms;
  vv known;  /* the peer's last complete vector, only origins we hold (and our own) */
  uint64_t known_vector; /* its number (0: none yet) */
  vv asm;    /* a vector being assembled from its parts (filtered as known) */
  uint64_t asm_vector;
  uint32_t asm_next, asm_parts; /* asm_parts 0: nothing being assembled */
  uint8_t asm_last[VS_ORIGIN_BYTES]; /* the last origin of the previous part */
  uint64_t vv_out_no; /* the number of the last vector we sent it */
  vv sent;   /* per origin, the highest seq we sent it */
  uint64_t sent_at_ms;
  uint32_t resend_level; /* resends since the last progress: the wait is resend_ms << level */
  uint64_t inflight_bytes; /* the sum of fl[].bytes */
  flight *fl;
  uint32_t fl_n, fl_cap;
  uint64_t next_vv_ms;
  bool vv_due;
  uint32_t ack_id; /* READY: the engine's index for this peer's identity */
  uint64_t sess_no; /* READY: the node's number for this session (vs_rx_key) */
  /* Its vector claims more of our own chain than we hold: it must back the
   * claim with our signed ops before the deadline (extended by every run it
   * gets applied), or the session closes (rejected_vv_future). */
  uint64_t own_claim, own_claim_deadline_ms;
  bool own_backed; /* it sent us own ops we lacked: we are a restored copy */
  /* Looking for where our branch of `fk_origin` and the peer's part (a
   * fork suspected: node.c, "forks"): they are equal at fk_lo (0: nothing
   * to compare yet) and differ at fk_hi; fk_want is the seq asked for. */
  bool fk_active;
  uint8_t fk_origin[VS_ORIGIN_BYTES];
  uint64_t fk_lo, fk_hi, fk_want, fk_deadline_ms;
  uint32_t fk_tries;
  /* Verdicts to send it: every one once per session, in origin order, a
   * few per poll; fk_sent_all when done (reset by a new verdict). */
  uint8_t fk_next[VS_ORIGIN_BYTES];
  bool fk_next_set, fk_sent_all;
  /* An entry of its vector fell with no verdict here (yet): the old entry
   * is kept until fall_deadline_ms, when the verdict must be here. */
  uint64_t asm_forks;     /* the forks digest of the vector being assembled */
  uint64_t fk_resend_ms;  /* no new round of verdicts to it before then */
  bool fall_pending;
  uint8_t fall_origin[VS_ORIGIN_BYTES];
  uint64_t fall_deadline_ms;
  frame *q;
  uint32_t q_head, q_tail, q_cap;
} peer;

struct vs_node {
  vs_node_cfg cfg;
  vs_store *store;
  vs_outbox *outbox;
  vs_engine *engine;
  peer peers[VS_NODE_PEERS_MAX];
  uint32_t rr; /* round-robin cursor for poll */
  vv mine;
  vs_node_stats stats;
  uint8_t *msg;   /* plaintext scratch, VS_MSG_BYTES_MAX */
  uint8_t *last;  /* the frame handed out by the previous poll */
  const uint8_t **run_enc; /* push scratch: a run's op encodings (in the read txn) */
  uint32_t *run_lens;
  uint32_t run_cap;
  uint8_t ack_pk[VS_NODE_PEERS_MAX][VS_ORIGIN_BYTES]; /* ack_id -> peer identity */
  uint64_t ack_used;                                  /* bit per ack_id in use */
  uint64_t ack_held[VS_NODE_PEERS_MAX];               /* ack_id -> highest own seq it holds */
  uint64_t quota[VS_NODE_PEERS_MAX];    /* ack_id -> new-origin tokens, in 1/QUOTA_UNIT */
  uint64_t quota_ms[VS_NODE_PEERS_MAX]; /* ack_id -> when quota[] was last refilled */
  /* Node-wide new-origin bucket: identities are free to anyone with the
   * mesh key, so fresh handshakes (each a full per-peer bucket) must not
   * add up to an unbounded flood. */
  uint64_t quota_all, quota_all_ms;
  /* ack_id -> WANTs that identity may still send us (bucket, in
   * 1/QUOTA_UNIT): kept across its sessions, as the origin quota is. */
  uint64_t want_tokens[VS_NODE_PEERS_MAX], want_ms[VS_NODE_PEERS_MAX];
  uint64_t want_init; /* bit per ack_id: its bucket was filled once */
  /* Fork verdicts may refold the whole state: a node-wide bucket of
   * VS_NODE_VERDICTS_PER_MIN (one equivocating member could otherwise
   * lower its verdict one seq at a time, a refold each, issue 14 review). */
  uint64_t verdict_tokens, verdict_ms;
  bool verdict_init;
  bool quota_all_init;
  bool reject_counted; /* the frame being handled counted its own rejection */
  uint64_t sessions; /* sessions established so far: the last one's number */
  /* Handshake cookies (wire.h): the secret, the previous one, and when the
   * next rotation is due (drawn from cfg.random on the first responder). */
  uint8_t cookie_secret[VS_COOKIE_SECRET_BYTES], cookie_prev[VS_COOKIE_SECRET_BYTES];
  bool cookie_ready, cookie_has_prev;
  uint64_t cookie_rotate_ms;
  /* A restored copy (vs_write_restoring): the own seq to reach before local
   * writes (0: none), as stored; since when no ready peer claims beyond our
   * head (0: some does, or none is ready). */
  uint64_t restore_to, restore_quiet_since_ms;
  uint8_t skew_logged[VS_NODE_SKEW_LOG_MAX][VS_ORIGIN_BYTES]; /* origins with a clock_skew line out */
  uint32_t skew_n, skew_next; /* entries used; the slot the next new origin overwrites when full */
  bool own_void; /* a fork verdict voids our own identity (apply.h, FORKS): it writes no more */
  uint64_t forks_digest; /* vs_fork_digest: sent in every VV */
};

/* The first layout of vs_node_cfg (cfg.h): a caller's cfg_bytes is at least this. */
#define NODE_CFG_BYTES_V1 VS_CFG_BYTES_THROUGH(vs_node_cfg, origin_quota_per_min)

static vs_node_cfg node_cfg_defaults(void) {
  vs_node_cfg c;
  memset(&c, 0, sizeof c);
  c.cfg_bytes = (uint32_t)sizeof c;
  c.durability = VS_DURABILITY_SYNC;
  c.ack_quorum = 1;
  c.max_drift_ms = VS_MAX_DRIFT_MS_DEFAULT;
  c.handshake_timeout_ms = 5000;
  c.hello_timeout_ms = 1000;
  c.vv_interval_ms = 1000;
  c.resend_ms = 2000;
  c.inflight_bytes_max = 4u * 1024u * 1024u;
  c.own_outbox = true;
  c.resend_max_ms = 60000;
  c.origin_quota_per_min = 64;
  return c;
}

void vs_node_cfg_default_sized(vs_node_cfg *cfg, size_t cfg_bytes) {
  vs_node_cfg def = node_cfg_defaults();
  vs_cfg_default_out(cfg, cfg_bytes, &def, sizeof def);
}

/* ---- version vectors as sorted arrays ---- */

static int vv_find(const vv *v, const uint8_t origin[VS_ORIGIN_BYTES], bool *found) {
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

static uint64_t vv_get(const vv *v, const uint8_t origin[VS_ORIGIN_BYTES]) {
  bool found;
  int i = vv_find(v, origin, &found);
  return found ? v->e[i].seq : 0;
}

/* Set `origin`'s entry; head (VS_VV_HEAD_BYTES, may be NULL: zero) is
 * what VV messages carry of the op at seq. */
static vs_err vv_set(vv *v, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *head) {
  bool found;
  int i = vv_find(v, origin, &found);
  if (found) {
    v->e[i].seq = seq;
    if (head != NULL) memcpy(v->e[i].head, head, VS_VV_HEAD_BYTES);
    else memset(v->e[i].head, 0, VS_VV_HEAD_BYTES);
    return VS_OK;
  }
  /* No cap here: our own vector holds every origin the store holds (a wire
   * limit here once made a store that held more unopenable, issue 14); what
   * a peer can add to the vectors kept of it is limited by the caller
   * (vv_keep). Parts of VS_WIRE_VV_MAX carry it on the wire. */
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
  v->n++;
  return VS_OK;
}

/* Drop `origin`'s entry (a fork verdict voided all of it). */
static void vv_remove(vv *v, const uint8_t origin[VS_ORIGIN_BYTES]) {
  bool found;
  int i = vv_find(v, origin, &found);
  if (!found) return;
  memmove(&v->e[i], &v->e[i + 1], sizeof *v->e * (v->n - (uint32_t)i - 1));
  v->n--;
}


static void vv_free(vv *v) {
  free(v->e);
  memset(v, 0, sizeof *v);
}

/* Append an entry past the last one (origins arrive sorted). */
static vs_err vv_append(vv *v, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *head) {
  if (v->n > 0 && memcmp(v->e[v->n - 1].origin, origin, VS_ORIGIN_BYTES) >= 0) return VS_ERR_MALFORMED;
  return vv_set(v, origin, seq, head); /* lands at the end: nothing moves */
}

/* ---- in-flight credit ---- */

static void flight_clear(peer *p) {
  free(p->fl);
  p->fl = NULL;
  p->fl_n = p->fl_cap = 0;
  p->inflight_bytes = 0;
}

/* Record a run sent (its credit is added to inflight_bytes by the caller,
 * once the message is queued). Bounded by the window: runs are only added
 * while inflight_bytes < inflight_bytes_max, one message at a time. */
static vs_err flight_add(peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t end, uint64_t bytes) {
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
  p->fl_n++;
  return VS_OK;
}

/* Release the credit of every run `acked` holds: only what a vector
 * acknowledges gives credit back (an empty or stale vector gives none).
 * Returns the bytes released. */
static uint64_t flight_release(peer *p, const vv *acked) {
  uint64_t released = 0;
  uint32_t keep = 0;
  for (uint32_t i = 0; i < p->fl_n; i++) { /* bounded: fl_n */
    if (vv_get(acked, p->fl[i].origin) >= p->fl[i].end) {
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
static uint64_t resend_wait_ms(const vs_node *n, const peer *p) {
  uint64_t wait = n->cfg.resend_ms;
  for (uint32_t i = 0; i < p->resend_level && wait < n->cfg.resend_max_ms; i++) wait *= 2; /* bounded: level */
  return wait < n->cfg.resend_max_ms ? wait : n->cfg.resend_max_ms;
}

/* Our vector from the store's chain heads (one read transaction). */
static vs_err load_mine(vs_node *n) {
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
    }
    mdb_cursor_close(cur);
  }
  if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS && err == VS_OK) err = vs_mdb_err(rc);
  mdb_txn_abort(txn);
  return err;
}

/* Refresh our vector's entry for `origin` from the store (it may fall, or
 * go, after a fork verdict). */
static vs_err refresh_mine(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t seq = 0;
  uint8_t hash[VS_HASH_BYTES];
  vs_err err = vs_wal_head(n->store, origin, &seq, hash, NULL);
  if (err == VS_OK && seq > 0) err = vv_set(&n->mine, origin, seq, hash);
  if (err == VS_OK && seq == 0) vv_remove(&n->mine, origin);
  return err;
}

/* What we keep of a peer's vector: origins we hold, and our own (what it
 * holds of us). Anything else it claims is of no use to us (we have nothing
 * of that origin to send), and keeping it would let a peer make us spend
 * memory on origins it invents. Bounded by our own vector, plus one. */
static bool vv_keep(const vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  return vv_get(&n->mine, origin) > 0 || memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0;
}

/* ---- per-peer frame queues ---- */

static peer *peer_find(vs_node *n, uint32_t handle) {
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    if (n->peers[i].st != PEER_FREE && n->peers[i].handle == handle) return &n->peers[i];
  }
  return NULL;
}

static void queue_clear(peer *p) {
  for (uint32_t i = p->q_head; i < p->q_tail; i++) free(p->q[i].bytes);
  free(p->q);
  p->q = NULL;
  p->q_head = p->q_tail = p->q_cap = 0;
}

static vs_err queue_push(peer *p, uint8_t *bytes, size_t len) {
  if (p->q_tail - p->q_head >= QUEUE_MAX) return VS_ERR_LIMIT;
  if (p->q_tail == p->q_cap) {
    if (p->q_head > 0) {
      memmove(p->q, p->q + p->q_head, sizeof *p->q * (p->q_tail - p->q_head));
      p->q_tail -= p->q_head;
      p->q_head = 0;
    }
    if (p->q_tail == p->q_cap) {
      uint32_t cap = p->q_cap == 0 ? 8 : p->q_cap * 2;
      frame *q = realloc(p->q, sizeof *q * cap);
      if (q == NULL) return VS_ERR_NOMEM;
      p->q = q;
      p->q_cap = cap;
    }
  }
  p->q[p->q_tail].bytes = bytes;
  p->q[p->q_tail].len = len;
  p->q_tail++;
  return VS_OK;
}

/* Queue a copy of a handshake frame, or a CLOSE (bytes NULL). */
static vs_err queue_copy(peer *p, const uint8_t *bytes, size_t len) {
  uint8_t *copy = NULL;
  if (bytes != NULL) {
    copy = malloc(len);
    if (copy == NULL) return VS_ERR_NOMEM;
    memcpy(copy, bytes, len);
  }
  vs_err err = queue_push(p, copy, len);
  if (err != VS_OK) free(copy);
  return err;
}

static void peer_close(vs_node *n, peer *p) {
  (void)n;
  if (p->st == PEER_CLOSING) return;
  vs_hs_wipe(&p->hs);
  sodium_memzero(&p->sess, sizeof p->sess);
  queue_clear(p);
  p->st = PEER_CLOSING;
  (void)queue_copy(p, NULL, 0);
}

/* Seal `msg` for a ready peer and queue it. */
static vs_err send_msg(vs_node *n, peer *p, const uint8_t *msg, size_t len) {
  size_t cap = len + VS_DATA_OVERHEAD_BYTES, out_len = 0;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) return VS_ERR_NOMEM;
  vs_err err = vs_session_seal(&p->sess, msg, len, buf, cap, &out_len);
  if (err == VS_OK) err = queue_push(p, buf, out_len);
  if (err != VS_OK) {
    free(buf);
    if (err == VS_ERR_LIMIT) peer_close(n, p); /* a peer that reads nothing is dropped */
  }
  return err;
}

/* Our vector, in parts of VS_WIRE_VV_MAX entries (wire.h): as many as the
 * store's origins need, each part its own message, queued in order. */
static vs_err send_vv(vs_node *n, peer *p, uint64_t now_ms) {
  uint32_t parts = n->mine.n == 0 ? 1u : (n->mine.n - 1u) / VS_WIRE_VV_MAX + 1u;
  vs_err err = parts <= VS_WIRE_VV_PARTS_MAX ? VS_OK : VS_ERR_LIMIT;
  vs_vv_part part = {++p->vv_out_no, 0, parts, n->forks_digest};
  for (uint32_t k = 0; k < parts && err == VS_OK && p->st == PEER_READY; k++) { /* bounded: parts */
    uint32_t first = k * VS_WIRE_VV_MAX, count = n->mine.n - first;
    if (count > VS_WIRE_VV_MAX) count = VS_WIRE_VV_MAX;
    size_t len = 0;
    part.part = k;
    err = vs_msg_vv_encode(&part, n->mine.e == NULL ? NULL : n->mine.e + first, count, n->msg, VS_MSG_BYTES_MAX,
                           &len);
    if (err == VS_OK) err = send_msg(n, p, n->msg, len);
  }
  p->vv_due = false;
  p->next_vv_ms = vs_add_sat_u64(now_ms, n->cfg.vv_interval_ms);
  return err;
}

/* ---- anti-entropy: send a peer what it lacks, in signed runs ---- */

/* Grow the run scratch arrays to hold `count` ops. */
static vs_err run_scratch(vs_node *n, uint32_t count) {
  if (count <= n->run_cap) return VS_OK;
  uint32_t cap = n->run_cap == 0 ? 1024 : n->run_cap;
  while (cap < count) cap *= 2;
  const uint8_t **enc = realloc(n->run_enc, sizeof *enc * cap);
  if (enc == NULL) return VS_ERR_NOMEM;
  n->run_enc = enc;
  uint32_t *lens = realloc(n->run_lens, sizeof *lens * cap);
  if (lens == NULL) return VS_ERR_NOMEM;
  n->run_lens = lens;
  n->run_cap = cap;
  return VS_OK;
}

/* Same origin tag, and the seq of an op-id key. */
static bool id_key_seq(const MDB_val *k, const vs_op_id *tag, uint64_t *seq_out) {
  if (k->mv_size != VS_OP_ID_BYTES || memcmp(k->mv_data, tag->bytes, VS_OP_ID_TAG_BYTES) != 0) return false;
  const uint8_t *p = (const uint8_t *)k->mv_data + VS_OP_ID_TAG_BYTES;
  uint64_t seq = 0;
  for (unsigned i = 0; i < VS_OP_ID_BYTES - VS_OP_ID_TAG_BYTES; i++) seq = (seq << 8) | p[i];
  *seq_out = seq;
  return true;
}

/* Add to the writer the longest run of `origin` from `from` (at most to
 * `last`) that ends at an op the store holds a signature for and fits the
 * message. Runs are cut only at signed ops but may pass several: the last
 * signature covers the run through its chain links, so the receiver
 * verifies one signature per run. Reads the origin's ops with one cursor
 * over the op-id index (ids of an origin sort by seq) and one over the
 * signatures. *end_out: the run's last seq. VS_ERR_NOTFOUND: no signed op
 * in from..last (unsigned ops stay local); VS_ERR_BUFSIZE / VS_ERR_LIMIT:
 * the first signed run does not fit this message. */
static vs_err add_run(vs_node *n, MDB_txn *txn, vs_wal_reader *wr, vs_ops_writer *w,
                      const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint64_t last, uint64_t *end_out) {
  if (w->runs >= VS_WIRE_RUNS_MAX) return VS_ERR_LIMIT;
  size_t room = vs_ops_writer_room(w);
  if (room > VS_RUN_BYTES_MAX) room = VS_RUN_BYTES_MAX; /* what a receiver takes in one run */
  vs_op_id start;
  vs_op_id_derive(origin, from, &start);
  MDB_cursor *sc = NULL, *oc = NULL;
  int rc = mdb_cursor_open(txn, n->store->dbi_sigs, &sc);
  if (rc == MDB_SUCCESS) rc = mdb_cursor_open(txn, n->store->dbi_opid, &oc);
  vs_err err = vs_mdb_err(rc);
  MDB_val sk = {VS_OP_ID_BYTES, start.bytes}, sv, ok = {VS_OP_ID_BYTES, start.bytes}, ov;
  uint64_t signed_seq = 0, end = 0;
  const uint8_t *end_sig = NULL;
  if (err == VS_OK) {
    rc = mdb_cursor_get(sc, &sk, &sv, MDB_SET_RANGE);
    if (rc == MDB_SUCCESS && (!id_key_seq(&sk, &start, &signed_seq) || signed_seq > last)) rc = MDB_NOTFOUND;
    err = vs_mdb_err(rc);
  }
  if (err == VS_OK) err = sv.mv_size == VS_SIGNATURE_BYTES ? VS_OK : VS_ERR_CORRUPT;
  if (err == VS_OK) {
    err = vs_mdb_err(mdb_cursor_get(oc, &ok, &ov, MDB_SET_RANGE));
    if (err == VS_ERR_NOTFOUND) err = VS_ERR_CORRUPT; /* signed, so held */
  }
  size_t used = 0;
  uint32_t count = 0;
  /* Bounded: each step takes the next op of the origin; stops at `last`,
   * at VS_APPLY_RUN_OPS_MAX ops or when the message is full. */
  for (uint64_t seq = from; err == VS_OK && seq <= last && count < VS_APPLY_RUN_OPS_MAX; seq++) {
    uint64_t got = 0;
    if (count > 0) err = vs_mdb_err(mdb_cursor_get(oc, &ok, &ov, MDB_NEXT));
    if (err == VS_OK && (!id_key_seq(&ok, &start, &got) || got != seq || ov.mv_size != VS_OPID_VALUE_BYTES))
      err = VS_ERR_CORRUPT; /* the version vector says the store holds it */
    if (err == VS_ERR_NOTFOUND) err = VS_ERR_CORRUPT;
    if (err == VS_OK) err = run_scratch(n, count + 1);
    if (err != VS_OK) break;
    err = vs_wal_reader_op(wr, vs_get_u64le(ov.mv_data), &n->run_enc[count], &n->run_lens[count]);
    if (err != VS_OK) break;
    used += 4u + n->run_lens[count];
    if (used > room) break;
    count++;
    if (seq != signed_seq) continue;
    end = seq;
    end_sig = sv.mv_data;
    rc = mdb_cursor_get(sc, &sk, &sv, MDB_NEXT);
    if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && (!id_key_seq(&sk, &start, &signed_seq) || signed_seq > last))) break;
    err = vs_mdb_err(rc);
    if (err == VS_OK && sv.mv_size != VS_SIGNATURE_BYTES) err = VS_ERR_CORRUPT;
  }
  if (err == VS_OK && end_sig == NULL) err = VS_ERR_BUFSIZE;
  if (err == VS_OK)
    err = vs_ops_writer_add_run(w, origin, end_sig, n->run_enc, n->run_lens, (uint32_t)(end - from + 1));
  if (err == VS_OK) *end_out = end;
  if (oc != NULL) mdb_cursor_close(oc);
  if (sc != NULL) mdb_cursor_close(sc);
  return err;
}

/* Fill one OPS message for `p` with runs it lacks. *sent_any when queued. */
static vs_err push_ops(vs_node *n, peer *p, uint64_t now_ms, bool *sent_any) {
  *sent_any = false;
  vs_ops_writer w;
  vs_err err = vs_ops_writer_init(&w, n->msg, VS_MSG_BYTES_MAX);
  if (err != VS_OK) return err;
  MDB_txn *txn;
  err = vs_txn_begin(n->store, false, &txn);
  if (err != VS_OK) return err;
  vs_wal_reader wr;
  err = vs_wal_reader_open(txn, n->store, &wr);
  bool full = false, was_acked = p->sent.n == 0;
  uint32_t runs = 0, ops = 0, fl_before = p->fl_n;
  /* The peer's own origin first: a restored copy gets its own ops back
   * before anything else, and must (it refuses local writes meanwhile, and
   * its claim deadline is renewed only by them). Then the sorted rest. */
  bool own_found = false;
  int own_i = vv_find(&n->mine, p->sess.peer_id, &own_found);
  for (uint32_t k = 0; k <= n->mine.n && !full && err == VS_OK; k++) {
    uint32_t i = k - 1;
    if (k == 0 && !own_found) continue;
    if (k == 0) i = (uint32_t)own_i;
    else if (own_found && i == (uint32_t)own_i) continue;
    const vs_vv_entry *mine = &n->mine.e[i];
    uint64_t known = vv_get(&p->known, mine->origin), sent = vv_get(&p->sent, mine->origin);
    uint64_t from = (known > sent ? known : sent) + 1;
    while (from <= mine->seq && err == VS_OK) { /* bounded: from grows each round */
      uint64_t end = 0;
      size_t used_before = w.used;
      err = add_run(n, txn, &wr, &w, mine->origin, from, mine->seq, &end);
      if (err == VS_ERR_NOTFOUND) {
        err = VS_OK; /* unsigned ops (a store used without identity) stay local */
        break;
      }
      if (err == VS_ERR_BUFSIZE || err == VS_ERR_LIMIT) {
        err = VS_OK;
        full = true;
        break;
      }
      if (err != VS_OK) break;
      runs++;
      ops += (uint32_t)(end - from + 1);
      err = flight_add(p, mine->origin, end, w.used - used_before);
      if (err == VS_OK) err = vv_set(&p->sent, mine->origin, end, NULL);
      used_before = w.used;
      from = end + 1;
    }
  }
  vs_wal_reader_close(&wr);
  mdb_txn_abort(txn);
  size_t len = 0;
  if (err == VS_OK && runs > 0) err = vs_ops_writer_finish(&w, &len);
  if (err == VS_OK && runs > 0) err = send_msg(n, p, n->msg, len);
  if (err != VS_OK) p->fl_n = fl_before; /* nothing of it left: no credit held for it */
  if (err != VS_OK || runs == 0) return err;
  if (err == VS_OK) {
    uint64_t runs_bytes = 0;
    for (uint32_t i = fl_before; i < p->fl_n; i++) runs_bytes += p->fl[i].bytes;
    assert(p->fl_n > fl_before && runs_bytes <= len);
    p->fl[fl_before].bytes += len - runs_bytes; /* the message header rides on its first run */
    p->inflight_bytes += len;
    /* The resend timer measures how long the oldest unacknowledged push has
     * waited: later pushes do not restart it (else a steady stream of writes
     * would postpone the resend of a lost frame forever). */
    if (was_acked) p->sent_at_ms = now_ms;
    n->stats.runs_sent += runs;
    n->stats.ops_sent += ops;
    *sent_any = true;
  }
  return err;
}

static vs_err anti_entropy(vs_node *n, peer *p, uint64_t now_ms) {
  if (p->sent.n > 0 && now_ms >= vs_add_sat_u64(p->sent_at_ms, resend_wait_ms(n, p))) {
    /* Unacknowledged for too long: forget what was sent, send again, and
     * wait twice as long before the next resend unless the peer makes
     * progress meanwhile: a peer that acknowledges nothing gets the window
     * once per backed-off resend, not once per resend_ms (issue 14). */
    bool ahead = false;
    for (uint32_t i = 0; i < p->sent.n; i++) ahead = ahead || p->sent.e[i].seq > vv_get(&p->known, p->sent.e[i].origin);
    if (ahead) n->stats.resends++;
    if (ahead && p->resend_level < RESEND_LEVEL_MAX) p->resend_level++;
    vv_free(&p->sent);
    flight_clear(p);
  }
  /* Up to 64 messages while the window allows, but at most about one full
   * message's worth per call: the driver sends what is queued before the
   * next poll builds more, so a peer with a large backlog gets its first
   * frame after one message is built rather than after the whole window
   * (4 MiB: ~15 ms on a small CPU), and its apply overlaps our reads. */
  uint64_t start = p->inflight_bytes;
  for (uint32_t round = 0; round < 64 && p->inflight_bytes < n->cfg.inflight_bytes_max; round++) {
    bool sent = false;
    vs_err err = push_ops(n, p, now_ms, &sent);
    if (err != VS_OK || !sent || p->st != PEER_READY) return err;
    if (p->inflight_bytes - start >= VS_MSG_BYTES_MAX / 2) break;
  }
  return VS_OK;
}

/* ---- the mesh as the engine's transport ---- */

/* The engine counts DONE results per peer index (< 64) toward ack_quorum,
 * and node.h promises *distinct* peers. A connection slot is not a peer: one
 * peer that reconnects into another slot would count twice. So the index
 * names the authenticated identity. Exact for up to 64 identities; past
 * that, one not connected now is forgotten (reusing its index can only
 * delay a DONE, and that identity may count twice if it comes back). */
static uint32_t ack_id_for(vs_node *n, const uint8_t pk[VS_ORIGIN_BYTES], uint64_t now_ms) {
  uint32_t pick = VS_NODE_PEERS_MAX;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    bool used = (n->ack_used >> i) & 1u;
    if (used && memcmp(n->ack_pk[i], pk, VS_ORIGIN_BYTES) == 0) return i;
    if (!used && pick == VS_NODE_PEERS_MAX) pick = i;
  }
  if (pick == VS_NODE_PEERS_MAX) { /* full: take one no ready peer holds */
    uint64_t busy = 0;
    for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++)
      if (n->peers[s].st == PEER_READY) busy |= 1ull << n->peers[s].ack_id;
    for (uint32_t i = 0; i < VS_NODE_PEERS_MAX && pick == VS_NODE_PEERS_MAX; i++)
      if (!((busy >> i) & 1u)) pick = i;
  }
  assert(pick < VS_NODE_PEERS_MAX); /* the caller is not READY yet: at most 63 busy */
  memcpy(n->ack_pk[pick], pk, VS_ORIGIN_BYTES);
  n->ack_used |= 1ull << pick;
  n->ack_held[pick] = 0;
  /* A new identity starts with a full bucket; one that reconnects keeps
   * what it had (a reconnect does not refill its quota). */
  n->quota[pick] = (uint64_t)n->cfg.origin_quota_per_min * QUOTA_UNIT;
  n->quota_ms[pick] = now_ms;
  return pick;
}

/* A peer's vector holds our ops up to `held`: the engine completes the
 * entries a quorum holds (mesh_held). */
static void mesh_acked(vs_node *n, uint32_t ack_id, uint64_t held) {
  /* Nothing is delivered beyond what we hold ourselves: a vector claiming
   * more (a liar, or our own later ops held by a peer while we are a
   * restored copy) completes at most our head. */
  uint64_t head = vv_get(&n->mine, n->cfg.identity.pk);
  if (held > head) held = head;
  if (held > n->ack_held[ack_id]) n->ack_held[ack_id] = held;
}

/* The own seq that ack_quorum distinct peer identities all hold: the
 * quorum-th highest of what each holds. Every own op up to it is delivered,
 * so the engine completes those entries (the mesh is a held_only transport:
 * nothing is claimed, anti-entropy does the sending). */
static bool mesh_held(void *ctx, vs_op_id *id_out) {
  vs_node *n = ctx;
  uint64_t top[VS_NODE_PEERS_MAX];
  uint32_t k = 0, quorum = n->cfg.ack_quorum;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    if (!((n->ack_used >> i) & 1u)) continue;
    uint32_t j = k++;
    for (; j > 0 && top[j - 1] < n->ack_held[i]; j--) top[j] = top[j - 1]; /* descending */
    top[j] = n->ack_held[i];
  }
  if (quorum == 0 || k < quorum || top[quorum - 1] == 0) return false;
  vs_op_id_derive(n->cfg.identity.pk, top[quorum - 1], id_out);
  return true;
}

static bool mesh_online(void *ctx, uint64_t now_ms) {
  (void)now_ms;
  return vs_node_peers_ready(ctx) > 0;
}

static uint64_t mesh_next_check(void *ctx, uint64_t now_ms) {
  (void)ctx;
  (void)now_ms;
  return UINT64_MAX; /* a peer coming up is an event: the driver polls then */
}

/* ---- a restored copy: own ops that come back from peers ---- */

/* How long a peer may claim our own ops beyond our head without backing
 * them (each applied run of it extends it), and how long the marker stays
 * once no ready peer claims beyond our head. */
static uint64_t claim_grace_ms(const vs_node *n) { return vs_add_sat_u64(n->cfg.handshake_timeout_ms, 2 * n->cfg.resend_ms); }

static vs_err restore_put(vs_node *n, uint64_t to) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(n->store, true, &txn);
  if (err != VS_OK) return err;
  err = vs_meta_restore_put(txn, n->store, to);
  if (err != VS_OK) {
    mdb_txn_abort(txn);
    return err;
  }
  err = vs_txn_commit(txn);
  if (err == VS_OK) n->restore_to = to;
  return err;
}

/* Keep the marker of vs_write_restoring: raised to the highest claim of a
 * ready peer that backed it with our own signed ops; cleared once our head
 * reaches it, or once no ready peer has claimed beyond our head for a
 * grace period (a claim disproved closes its session: maintain). One write
 * transaction, only when the marker changes. */
static vs_err restore_update(vs_node *n, uint64_t now_ms) {
  uint64_t head = vv_get(&n->mine, n->cfg.identity.pk), want = 0;
  uint32_t ready = 0;
  bool claimed = false;
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) {
    const peer *p = &n->peers[s];
    if (p->st != PEER_READY) continue;
    ready++;
    if (p->own_claim <= head) continue;
    claimed = true;
    if (p->own_backed && p->own_claim > want) want = p->own_claim;
  }
  if (claimed || ready == 0) n->restore_quiet_since_ms = 0;
  else if (n->restore_quiet_since_ms == 0) n->restore_quiet_since_ms = now_ms;
  uint64_t to = n->restore_to > want ? n->restore_to : want;
  if (to <= head) to = 0;
  if (to != 0 && !claimed && n->restore_quiet_since_ms != 0 &&
      now_ms - n->restore_quiet_since_ms >= claim_grace_ms(n))
    to = 0;
  return to == n->restore_to ? VS_OK : restore_put(n, to);
}

/* ---- open, close, write ---- */

void vs_node_close(vs_node *n) {
  if (n == NULL) return;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    peer *p = &n->peers[i];
    vs_hs_wipe(&p->hs);
    sodium_memzero(&p->sess, sizeof p->sess);
    queue_clear(p);
    vv_free(&p->known);
    vv_free(&p->asm);
    vv_free(&p->sent);
    flight_clear(p);
  }
  vs_engine_free(n->engine);
  vs_outbox_close(n->outbox);
  vs_store_close(n->store);
  vv_free(&n->mine);
  vs_identity_wipe(&n->cfg.identity);
  sodium_memzero(n->cfg.mesh_key, sizeof n->cfg.mesh_key);
  sodium_memzero(n->cookie_secret, sizeof n->cookie_secret);
  sodium_memzero(n->cookie_prev, sizeof n->cookie_prev);
  free(n->msg);
  free(n->run_enc);
  free(n->run_lens);
  free(n->last);
  free(n);
}

static vs_err open_engine(vs_node *n) {
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  /* The mesh push never gives up: FAILED there would mean a permanent
   * rejection, which peers agreeing on the protocol never send. */
  ocfg.retry.max_attempts = 0;
  /* Deliveries are known as ranges (version vectors) and nothing is ever
   * claimed from the mesh (a held_only transport): no claim index. Every
   * opener of the node (the daemon, CLI writes) says so, so the setting
   * never flips between them. */
  ocfg.ranges_only = true;
  vs_err err = vs_outbox_open(n->store, &ocfg, &n->outbox);
  if (err != VS_OK || !n->cfg.own_outbox) return err;
  vs_engine_cfg ecfg;
  vs_engine_cfg_default(&ecfg);
  ecfg.retry = ocfg.retry;
  ecfg.ack_quorum = n->cfg.ack_quorum;
  ecfg.lease_ms = 4 * n->cfg.resend_ms;
  vs_probe probe = {n, mesh_online, mesh_next_check};
  /* Anti-entropy delivers, acknowledgements are version vectors: the
   * engine completes ranges and never claims (no attempt spent, no lease). */
  vs_transport tr = {n, NULL, NULL, NULL, false, mesh_held, true};
  return vs_engine_new(&ecfg, n->outbox, &probe, &tr, &n->engine);
}

/* A node signs its writes with its identity and peers apply only signed ops
 * (G6): without a valid key pair its writes would never leave the device
 * while every write returned VS_OK. So the identity must be the key pair of
 * its own seed (compared in constant time: sk is secret), and the seed must
 * not be all zero (an unset identity, or a key everybody knows). */
static vs_err node_identity_check(const vs_identity *id) {
  if (sodium_is_zero(id->sk, VS_SEED_BYTES)) return VS_ERR_NO_IDENTITY;
  vs_identity again;
  vs_err err = vs_identity_from_seed(id->sk, &again);
  if (err == VS_OK && (sodium_memcmp(again.sk, id->sk, VS_SECRET_KEY_BYTES) != 0 ||
                       sodium_memcmp(again.pk, id->pk, VS_ORIGIN_BYTES) != 0))
    err = VS_ERR_NO_IDENTITY;
  vs_identity_wipe(&again);
  return err;
}

static vs_err node_open(const vs_node_cfg *cfg, vs_node **node_out) {
  if (cfg->dir == NULL || cfg->random == NULL) return VS_ERR_INVAL;
  if (cfg->ack_quorum == 0 || cfg->ack_quorum > VS_NODE_PEERS_MAX || cfg->handshake_timeout_ms == 0 ||
      cfg->hello_timeout_ms == 0 ||
      cfg->vv_interval_ms == 0 || cfg->resend_ms == 0 || cfg->inflight_bytes_max == 0 ||
      cfg->resend_max_ms < cfg->resend_ms)
    return VS_ERR_INVAL;
  *node_out = NULL;
  vs_err id_err = node_identity_check(&cfg->identity); /* before anything is created */
  if (id_err != VS_OK) return id_err;
  vs_node *n = calloc(1, sizeof *n);
  if (n == NULL) return VS_ERR_NOMEM;
  n->cfg = *cfg;
  n->msg = malloc(VS_MSG_BYTES_MAX);
  vs_store_cfg scfg = vs_store_cfg_default();
  scfg.durability = cfg->durability;
  scfg.map_bytes = cfg->map_bytes;
  vs_err err = n->msg != NULL ? vs_store_open(cfg->dir, &scfg, &n->store) : VS_ERR_NOMEM;
  if (err == VS_OK) err = vs_store_set_identity(n->store, &cfg->identity);
  if (err == VS_OK) err = open_engine(n);
  if (err == VS_OK) err = load_mine(n);
  if (err == VS_OK) err = vs_write_restoring(n->store, &n->restore_to);
  uint64_t own_void_from = 0;
  if (err == VS_OK) err = vs_apply_void_from(n->store, cfg->identity.pk, &own_void_from);
  if (err == VS_OK) err = vs_fork_digest(n->store, &n->forks_digest);
  n->own_void = own_void_from != 0;
  if (err != VS_OK) {
    vs_node_close(n);
    return err;
  }
  *node_out = n;
  return VS_OK;
}

vs_err vs_node_open(const vs_node_cfg *cfg, vs_node **node_out) {
  if (cfg == NULL || node_out == NULL) return VS_ERR_INVAL;
  vs_node_cfg c = node_cfg_defaults();
  vs_err err = vs_cfg_load(cfg, &c, sizeof c, NODE_CFG_BYTES_V1);
  if (err == VS_OK) err = node_open(&c, node_out);
  vs_identity_wipe(&c.identity); /* the secret key lives on only in the node's own copy */
  return err;
}

vs_store *vs_node_store(vs_node *n) { return n->store; }

vs_engine *vs_node_engine(vs_node *n) { return n->engine; }

/* After a committed local write: our vector's entry and the apply callback
 * for each operation actually written (a duplicate changed nothing). */
static vs_err after_local_write(vs_node *n, const vs_write_req *reqs, const vs_write_result *res, size_t count) {
  vs_err err = refresh_mine(n, n->cfg.identity.pk);
  for (size_t i = 0; i < count && err == VS_OK && n->cfg.on_apply != NULL; i++) {
    if (res[i].duplicate) continue;
    vs_op op;
    if (vs_op_init(&op, n->cfg.identity.pk, res[i].seq, res[i].hlc, NULL, reqs[i].kind, reqs[i].target,
                   reqs[i].target_bytes, reqs[i].payload, reqs[i].payload_bytes) == VS_OK)
      n->cfg.on_apply(n->cfg.on_apply_ctx, &op); /* prev is not needed by an apply callback */
  }
  return err;
}

vs_err vs_node_write(vs_node *n, const vs_write_req *req, uint64_t now_ms, vs_write_result *result_out) {
  if (n == NULL || req == NULL) return VS_ERR_INVAL;
  vs_write_result res;
  vs_err err = vs_write(n->store, n->cfg.identity.pk, req, now_ms, &res);
  if (err != VS_OK) return err;
  if (result_out != NULL) *result_out = res;
  return after_local_write(n, req, &res, 1);
}

vs_err vs_node_write_batch(vs_node *n, const vs_write_req *reqs, size_t count, uint64_t now_ms,
                           vs_write_result *results_out) {
  if (n == NULL || (reqs == NULL && count > 0)) return VS_ERR_INVAL;
  if (count > VS_WRITE_BATCH_MAX) return VS_ERR_LIMIT;
  /* The callback needs every result even when the caller wants none. */
  vs_write_result *res = results_out;
  if (res == NULL && count > 0 && n->cfg.on_apply != NULL) {
    res = malloc(sizeof *res * count);
    if (res == NULL) return VS_ERR_NOMEM;
  }
  vs_err err = vs_write_batch(n->store, n->cfg.identity.pk, reqs, count, now_ms, res);
  if (err == VS_OK && count > 0) {
    if (res != NULL) err = after_local_write(n, reqs, res, count);
    else err = refresh_mine(n, n->cfg.identity.pk);
  }
  if (res != results_out) free(res);
  return err;
}

/* ---- connections ---- */

/* The cookie secrets, rotated when due: a secret lives two periods (as
 * the current one, then as the previous one). Time only ever decides when
 * the responder draws a new secret; no peer's clock is involved. */
static void cookie_rotate(vs_node *n, uint64_t now_ms) {
  if (n->cookie_ready && now_ms < n->cookie_rotate_ms) return;
  /* Rotation is lazy (at an inbound connection): after a quiet spell of a
   * whole period or more the current secret is already past its two
   * periods, so it must not live on as the previous one. */
  bool overdue = now_ms >= vs_add_sat_u64(n->cookie_rotate_ms, VS_NODE_COOKIE_ROTATE_MS);
  if (n->cookie_ready && !overdue) {
    memcpy(n->cookie_prev, n->cookie_secret, sizeof n->cookie_prev);
    n->cookie_has_prev = true;
  } else {
    sodium_memzero(n->cookie_prev, sizeof n->cookie_prev);
    n->cookie_has_prev = false;
  }
  n->cfg.random(n->cfg.random_ctx, n->cookie_secret, sizeof n->cookie_secret);
  n->cookie_ready = true;
  n->cookie_rotate_ms = vs_add_sat_u64(now_ms, VS_NODE_COOKIE_ROTATE_MS);
}

vs_err vs_node_peer_up(vs_node *n, uint32_t handle, bool initiator, uint64_t now_ms) {
  return vs_node_peer_up_addr(n, handle, initiator, NULL, 0, now_ms);
}

vs_err vs_node_peer_up_addr(vs_node *n, uint32_t handle, bool initiator, const uint8_t *addr, size_t addr_bytes,
                            uint64_t now_ms) {
  if (n == NULL || (addr == NULL && addr_bytes > 0)) return VS_ERR_INVAL;
  if (peer_find(n, handle) != NULL) return VS_ERR_EXISTS;
  peer *p = NULL;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX && p == NULL; i++) {
    if (n->peers[i].st == PEER_FREE) p = &n->peers[i];
  }
  if (p == NULL) return VS_ERR_LIMIT;
  memset(p, 0, sizeof *p);
  p->handle = handle;
  p->st = PEER_HANDSHAKE;
  p->hs_end_ms = vs_add_sat_u64(now_ms, n->cfg.handshake_timeout_ms);
  p->hs_deadline_ms = p->hs_end_ms;
  if (!initiator) { /* the initiator speaks first: a silent one is not of the mesh */
    uint64_t hello_ms = vs_add_sat_u64(now_ms, n->cfg.hello_timeout_ms);
    if (hello_ms < p->hs_deadline_ms) p->hs_deadline_ms = hello_ms;
  }
  uint8_t seed[32];
  n->cfg.random(n->cfg.random_ctx, seed, sizeof seed);
  vs_err err;
  if (initiator) {
    uint8_t hello[VS_HELLO_BYTES];
    size_t len = 0;
    err = vs_hs_start_initiator(&p->hs, &n->cfg.identity, n->cfg.mesh_key, seed, hello, sizeof hello, &len);
    if (err == VS_OK) err = queue_copy(p, hello, len);
  } else {
    err = vs_hs_start_responder(&p->hs, &n->cfg.identity, n->cfg.mesh_key, seed);
    if (err == VS_OK) {
      cookie_rotate(n, now_ms);
      err = vs_hs_responder_cookie(&p->hs, n->cookie_secret, n->cookie_has_prev ? n->cookie_prev : NULL, addr,
                                   addr_bytes);
    }
  }
  sodium_memzero(seed, sizeof seed);
  if (err != VS_OK) {
    vs_hs_wipe(&p->hs);
    queue_clear(p);
    p->st = PEER_FREE;
  }
  return err;
}

static void peer_free(peer *p) {
  vs_hs_wipe(&p->hs);
  sodium_memzero(&p->sess, sizeof p->sess);
  queue_clear(p);
  vv_free(&p->known);
  vv_free(&p->asm);
  vv_free(&p->sent);
  flight_clear(p);
  p->st = PEER_FREE;
}

vs_err vs_node_peer_down(vs_node *n, uint32_t handle, uint64_t now_ms) {
  (void)now_ms;
  if (n == NULL) return VS_ERR_INVAL;
  peer *p = peer_find(n, handle);
  if (p == NULL) return VS_ERR_NOTFOUND;
  peer_free(p);
  return VS_OK;
}

uint32_t vs_node_peers_ready(const vs_node *n) {
  uint32_t c = 0;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) c += n->peers[i].st == PEER_READY ? 1u : 0u;
  return c;
}

void vs_node_stats_get(const vs_node *n, vs_node_stats *stats_out) { *stats_out = n->stats; }

/* Count a frame's rejection; the node's own failures (memory, a full or
 * failing store, libsodium not starting) are not the frame's fault. */
static void count_reject(vs_node *n, vs_err err) {
  if (n->reject_counted) { /* counted by its own reason already (rejected_vv_regress) */
    n->reject_counted = false;
    return;
  }
  switch (err) {
    case VS_OK:
    case VS_ERR_NOMEM:
    case VS_ERR_FULL:
    case VS_ERR_STORE:
    case VS_ERR_CRYPTO: break;
    case VS_ERR_AUTH: n->stats.rejected_auth++; break;
    case VS_ERR_REPLAY: n->stats.rejected_replay++; break;
    case VS_ERR_STATE: n->stats.rejected_state++; break;
    default: n->stats.rejected_malformed++; break;
  }
}

/* ---- receiving ---- */

typedef struct run_ctx {
  vs_node *n;
  peer *p;
  uint64_t now_ms;
} run_ctx;

static int skew_find(const vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  for (uint32_t i = 0; i < n->skew_n; i++) /* bounded: VS_NODE_SKEW_LOG_MAX */
    if (memcmp(n->skew_logged[i], origin, VS_ORIGIN_BYTES) == 0) return (int)i;
  return -1;
}

/* A run of `origin` waits for our clock: log it once per origin (until one
 * of its runs is applied), so a peer resending it on schedule does not
 * flood the log. The table is bounded; when full, the oldest entry goes. */
static void skew_note(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t ahead_ms) {
  if (skew_find(n, origin) >= 0) return;
  uint32_t slot = n->skew_n < VS_NODE_SKEW_LOG_MAX ? n->skew_n++ : n->skew_next;
  if (n->skew_n == VS_NODE_SKEW_LOG_MAX && slot == n->skew_next) n->skew_next = (slot + 1) % VS_NODE_SKEW_LOG_MAX;
  memcpy(n->skew_logged[slot], origin, VS_ORIGIN_BYTES);
  if (n->cfg.log == NULL) return;
  char hex[2 * VS_ORIGIN_BYTES + 1], msg[160];
  vs_hex_encode(origin, VS_ORIGIN_BYTES, hex);
  snprintf(msg, sizeof msg, "event=clock_skew origin=%s ahead_ms=%llu", hex, (unsigned long long)ahead_ms);
  n->cfg.log(n->cfg.log_ctx, VS_LOG_WARN, msg);
}

/* One of `origin`'s runs was applied: a later deferral is a new episode. */
static void skew_clear(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  int i = n->skew_n > 0 ? skew_find(n, origin) : -1;
  if (i < 0) return;
  memmove(n->skew_logged[i], n->skew_logged[i + 1], (size_t)(n->skew_n - (uint32_t)i - 1) * VS_ORIGIN_BYTES);
  n->skew_n--;
  n->skew_next = 0;
}

/* ---- the origin quota (issue 14): new origins per peer identity ---- */

/* Refill the bucket of `ack_id` for the time since its last refill (time
 * going backwards refills nothing and restarts the count from now). */
static void bucket_refill(uint64_t *tokens, uint64_t *at_ms, uint64_t per_min, uint64_t now_ms) {
  uint64_t cap = per_min * QUOTA_UNIT;
  uint64_t elapsed = now_ms > *at_ms ? now_ms - *at_ms : 0;
  *at_ms = now_ms;
  if (elapsed >= QUOTA_UNIT) *tokens = cap; /* a minute refills all (and avoids overflow) */
  else *tokens = vs_add_sat_u64(*tokens, elapsed * per_min);
  if (*tokens > cap) *tokens = cap;
}

static void quota_refill(vs_node *n, uint32_t ack_id, uint64_t now_ms) {
  bucket_refill(&n->quota[ack_id], &n->quota_ms[ack_id], n->cfg.origin_quota_per_min, now_ms);
  uint64_t all_per_min = (uint64_t)n->cfg.origin_quota_per_min * QUOTA_ALL_PEERS;
  if (!n->quota_all_init) { /* full at the first new origin */
    n->quota_all = all_per_min * QUOTA_UNIT;
    n->quota_all_ms = now_ms;
    n->quota_all_init = true;
  }
  bucket_refill(&n->quota_all, &n->quota_all_ms, all_per_min, now_ms);
}

/* Whether a run of `origin` from `p` may be applied. An origin we hold
 * nothing of costs one token of p's bucket (taken by quota_take once the
 * run is applied); with none left the run is refused before anything of it
 * is stored, and counted. *fresh_out: the origin is new to us. */
static bool quota_allows(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms,
                         bool *fresh_out) {
  *fresh_out = n->cfg.origin_quota_per_min > 0 && !vv_keep(n, origin);
  if (!*fresh_out) return true;
  quota_refill(n, p->ack_id, now_ms);
  if (n->quota[p->ack_id] >= QUOTA_UNIT && n->quota_all >= QUOTA_UNIT) return true;
  n->stats.rejected_origin_quota++;
  return false;
}

static void quota_take(vs_node *n, const peer *p) {
  assert(n->quota[p->ack_id] >= QUOTA_UNIT && n->quota_all >= QUOTA_UNIT);
  n->quota[p->ack_id] -= QUOTA_UNIT;
  n->quota_all -= QUOTA_UNIT;
}

/* ---- forks (apply.h, FORKS): finding where two branches part, relaying
 * the evidence ----
 *
 * A fork shows as: equal seqs with different heads in a peer's vector; a
 * run that starts at our head + 1 but does not link to it; a run that
 * differs from held ops with another prev. Each says the branches differ
 * at some seq hi <= our head, not where they part. The node then asks the
 * peer for its runs (WANT), bisecting [lo, hi]: a run that matches ours
 * moves lo up, one whose first op differs with another prev moves hi
 * down, and one that differs with the same prev is the evidence itself
 * (apply takes the verdict). At most ~48 steps for a 2^48 chain; one
 * search per peer at a time, each WANT answered within the resend time or
 * asked again (three tries). Verdicts go to every ready peer when taken
 * and to every new session, before anything else. */

#define WANT_PER_MIN 240u       /* WANTs a peer may send us per minute (bisection needs <= 48 per fork) */
#define FORK_SEARCH_TRIES 3u    /* a WANT asked this many times unanswered ends the search */
#define FORKS_PER_POLL 4u       /* verdicts sent to one new session per poll */

static void fork_log(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const char *how) {
  if (n->cfg.log == NULL) return;
  char hex[2 * VS_ORIGIN_BYTES + 1], msg[320];
  vs_hex_encode(origin, VS_ORIGIN_BYTES, hex);
  bool own = memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0;
  snprintf(msg, sizeof msg, "event=fork origin=%s void_from=%llu how=%s%s", hex, (unsigned long long)seq, how,
           own ? " own=1: this device's identity signed two branches (a copied data directory or restored "
                 "backup that wrote); its writes from that seq on are void everywhere: make a new identity"
               : "");
  n->cfg.log(n->cfg.log_ctx, own ? VS_LOG_ERROR : VS_LOG_WARN, msg);
}

static vs_err send_want(vs_node *n, peer *p, uint64_t now_ms) {
  uint8_t m[VS_MSG_WANT_BYTES];
  size_t len = 0;
  vs_err err = vs_msg_want_encode(p->fk_origin, p->fk_want, m, sizeof m, &len);
  p->fk_deadline_ms = vs_add_sat_u64(now_ms, 2 * n->cfg.resend_ms);
  p->fk_tries++;
  if (err == VS_OK) err = send_msg(n, p, m, len);
  if (err == VS_OK) n->stats.wants_sent++;
  return err;
}

/* The next WANT of the search, or its end. */
static vs_err fork_step(vs_node *n, peer *p, uint64_t now_ms) {
  if (p->fk_hi <= p->fk_lo) { /* the answers contradict each other (the chains moved): stop */
    p->fk_active = false;
    return VS_OK;
  }
  p->fk_want = p->fk_lo + 1 + (p->fk_hi - p->fk_lo - 1) / 2;
  p->fk_tries = 0;
  return send_want(n, p, now_ms);
}

/* `p`'s branch of `origin` and ours differ at `hi` (<= our head). */
static vs_err fork_suspect(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t hi, uint64_t now_ms) {
  if (hi == 0 || p->st != PEER_READY) return VS_OK;
  if (p->fk_active) {
    if (memcmp(p->fk_origin, origin, VS_ORIGIN_BYTES) == 0 && hi < p->fk_hi && hi > p->fk_lo) p->fk_hi = hi;
    return VS_OK; /* one search at a time; another suspicion shows again later */
  }
  p->fk_active = true;
  memcpy(p->fk_origin, origin, VS_ORIGIN_BYTES);
  p->fk_lo = 0;
  p->fk_hi = hi;
  return fork_step(n, p, now_ms);
}

/* A run of the searched origin from the seq we asked `p` for. */
static vs_err fork_answer(vs_node *n, peer *p, const vs_op *ops, uint32_t count, vs_err err, const vs_apply_result *r,
                          uint64_t now_ms) {
  if (err == VS_OK && ops[count - 1].seq < p->fk_hi) {
    if (ops[count - 1].seq > p->fk_lo) p->fk_lo = ops[count - 1].seq; /* the same ops as ours up to there */
    return fork_step(n, p, now_ms);
  }
  if ((err == VS_ERR_FORK || err == VS_ERR_CHAIN) && r->suspect_seq > p->fk_lo && r->suspect_seq < p->fk_hi) {
    p->fk_hi = r->suspect_seq;
    return fork_step(n, p, now_ms);
  }
  p->fk_active = false; /* the verdict, or nothing more to learn here */
  return VS_OK;
}

/* Send the verdict on `origin` to every ready peer but `except`. */
static vs_err fork_broadcast(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], const peer *except) {
  uint8_t *buf = malloc(VS_MSG_BYTES_MAX);
  if (buf == NULL) return VS_ERR_NOMEM;
  size_t len = 0;
  vs_err err = vs_apply_fork_evidence(n->store, origin, buf, VS_MSG_BYTES_MAX, &len);
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX && err == VS_OK; s++) {
    peer *q = &n->peers[s];
    if (q->st != PEER_READY || q == except) continue;
    vs_err e = send_msg(n, q, buf, len);
    if (e != VS_OK && e != VS_ERR_LIMIT) err = e; /* LIMIT: that peer was too slow and is closed */
  }
  free(buf);
  return err;
}

/* Whether the refold budget allows a verdict now (holds the store's
 * verdicts otherwise, for the runs applied next). */
static bool verdict_budget(vs_node *n, uint64_t now_ms) {
  if (!n->verdict_init) {
    n->verdict_tokens = (uint64_t)VS_NODE_VERDICTS_PER_MIN * QUOTA_UNIT;
    n->verdict_ms = now_ms;
    n->verdict_init = true;
  }
  bucket_refill(&n->verdict_tokens, &n->verdict_ms, VS_NODE_VERDICTS_PER_MIN, now_ms);
  bool ok = n->verdict_tokens >= QUOTA_UNIT;
  n->store->hold_verdicts = !ok;
  return ok;
}

/* A verdict was taken here (from a run or a peer's evidence). */
static vs_err fork_verdict(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const char *how,
                           const peer *from) {
  n->stats.fork_verdicts++;
  if (n->verdict_tokens >= QUOTA_UNIT) n->verdict_tokens -= QUOTA_UNIT;
  fork_log(n, origin, seq, how);
  if (memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0) n->own_void = true;
  vs_err err = refresh_mine(n, origin);
  if (err == VS_OK) err = vs_fork_digest(n->store, &n->forks_digest);
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) {
    peer *q = &n->peers[s];
    if (q->st != PEER_READY) continue;
    if (q->fk_active && memcmp(q->fk_origin, origin, VS_ORIGIN_BYTES) == 0) q->fk_active = false;
    if (n->own_void) q->own_claim = 0; /* peers still holding our void ops are no liars */
    q->vv_due = true; /* our vector fell: say so */
  }
  if (err == VS_OK) err = fork_broadcast(n, origin, from);
  return err;
}

/* FORK from a peer: verified and taken, or the session ends. */
static vs_err on_fork_msg(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  if (len < VS_MSG_FORK_HEADER_BYTES) return VS_ERR_TRUNCATED;
  const uint8_t *origin = msg + 1;
  bool fresh = false;
  uint64_t held_from = 0;
  vs_err err = vs_apply_void_from(n->store, origin, &held_from);
  if (err != VS_OK) return err;
  uint64_t seq = vs_get_u64le(msg + 1 + VS_ORIGIN_BYTES);
  if (held_from != 0 && held_from <= seq) return VS_OK; /* nothing new: not even worth checking */
  /* Evidence about an origin we hold nothing of costs disk like its ops. */
  if (!quota_allows(n, p, origin, now_ms, &fresh)) return VS_OK;
  if (!verdict_budget(n, now_ms)) { /* it comes again while our verdicts differ */
    n->stats.fork_verdicts_deferred++;
    return VS_OK;
  }
  vs_fork_result fr;
  err = vs_apply_fork(n->store, msg, len, &fr);
  if (err == VS_ERR_MALFORMED || err == VS_ERR_AUTH) {
    /* Wrong (MALFORMED) or forged (AUTH: a proof's signature fails)
     * evidence from a member: it would void an honest origin if we
     * believed it. */
    n->stats.fork_evidence_bad++;
    n->reject_counted = true;
    peer_close(n, p);
    return err;
  }
  if (err != VS_OK || !fr.verdict) return err;
  if (fresh) quota_take(n, p);
  return fork_verdict(n, fr.origin, fr.seq, "evidence", p);
}

/* WANT from a peer: one run from the seq it names, if held. */
static vs_err on_want(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t from = 0;
  vs_err err = vs_msg_want_decode(msg, len, origin, &from);
  if (err != VS_OK) return err;
  uint32_t a = p->ack_id;
  if (!((n->want_init >> a) & 1u)) {
    n->want_tokens[a] = (uint64_t)WANT_PER_MIN * QUOTA_UNIT;
    n->want_ms[a] = now_ms;
    n->want_init |= 1ull << a;
  }
  bucket_refill(&n->want_tokens[a], &n->want_ms[a], WANT_PER_MIN, now_ms);
  /* An answer is a run sent like any other: it takes in-flight credit,
   * which comes back only when the peer's vector holds it or at the
   * resend timeout, so WANTs cannot pull past the window (issue 14). */
  if (n->want_tokens[a] < QUOTA_UNIT || p->inflight_bytes >= n->cfg.inflight_bytes_max) {
    n->stats.rejected_want_quota++;
    return VS_OK;
  }
  n->want_tokens[a] -= QUOTA_UNIT;
  uint64_t head = vv_get(&n->mine, origin);
  if (from > head) return VS_OK; /* nothing of it to give */
  vs_ops_writer w;
  uint8_t *buf = malloc(VS_MSG_BYTES_MAX);
  if (buf == NULL) return VS_ERR_NOMEM;
  err = vs_ops_writer_init(&w, buf, VS_MSG_BYTES_MAX);
  MDB_txn *txn = NULL;
  if (err == VS_OK) err = vs_txn_begin(n->store, false, &txn);
  vs_wal_reader wr = {NULL, 0};
  if (err == VS_OK) err = vs_wal_reader_open(txn, n->store, &wr);
  uint64_t end = 0;
  if (err == VS_OK) err = add_run(n, txn, &wr, &w, origin, from, head, &end);
  size_t out = 0;
  if (err == VS_OK) err = vs_ops_writer_finish(&w, &out);
  if (wr.cur != NULL) vs_wal_reader_close(&wr);
  if (txn != NULL) mdb_txn_abort(txn);
  uint32_t fl_before = p->fl_n;
  if (err == VS_OK) err = flight_add(p, origin, end, out);
  if (err == VS_OK) err = send_msg(n, p, buf, out);
  if (err != VS_OK) p->fl_n = fl_before;
  if (err == VS_OK) {
    if (p->sent.n == 0) p->sent_at_ms = now_ms; /* the resend timer frees the credit if never acknowledged */
    p->inflight_bytes += out;
    if (vv_get(&p->sent, origin) < end) err = vv_set(&p->sent, origin, end, NULL);
    n->stats.wants_served++;
  }
  free(buf);
  /* Nothing signed there, or a run too large for one message: no answer. */
  return err == VS_ERR_NOTFOUND || err == VS_ERR_BUFSIZE || err == VS_ERR_LIMIT ? VS_OK : err;
}

/* Send a new session the verdicts it has not had, a few per poll. */
static vs_err forks_to_session(vs_node *n, peer *p) {
  uint8_t *buf = NULL;
  vs_err err = VS_OK;
  if (n->forks_digest == 0) p->fk_sent_all = true; /* no verdict: nothing to read or send */
  for (uint32_t k = 0; k < FORKS_PER_POLL && !p->fk_sent_all && err == VS_OK && p->st == PEER_READY; k++) {
    if (buf == NULL && (buf = malloc(VS_MSG_BYTES_MAX)) == NULL) return VS_ERR_NOMEM;
    uint8_t origin[VS_ORIGIN_BYTES];
    size_t len = 0;
    err = vs_fork_next(n->store, p->fk_next_set ? p->fk_next : NULL, origin, buf, VS_MSG_BYTES_MAX, &len);
    if (err == VS_ERR_NOTFOUND) {
      p->fk_sent_all = true;
      err = VS_OK;
      break;
    }
    if (err != VS_OK) break;
    err = send_msg(n, p, buf, len);
    memcpy(p->fk_next, origin, VS_ORIGIN_BYTES);
    p->fk_next_set = true;
  }
  free(buf);
  return err;
}

/* What a run's apply result means for the node: counts, our vector, the
 * apply callback. Refused runs are counted and do not stop the message. */
static vs_err run_outcome_base(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], const vs_op *ops,
                               uint32_t count, vs_err err, const vs_apply_result *r, uint64_t now_ms) {
  switch (err) {
    case VS_OK:
      n->stats.runs_applied++;
      n->stats.ops_applied += r->applied;
      n->stats.ops_duplicate += r->duplicates;
      if (r->applied > 0) {
        err = refresh_mine(n, origin);
        skew_clear(n, origin);
        if (memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0) {
          /* Progress on the claim: more time. Only our own ops count (a
           * peer sends them first, push_ops), so a liar cannot stay by
           * trickling ops of its own. */
          p->own_claim_deadline_ms = vs_add_sat_u64(now_ms, claim_grace_ms(n));
          /* Our own signed ops, which we lacked: this store is a restored
           * copy. No local write until we hold what the peer claims. The
           * marker's transaction follows the apply's (a crash between them
           * leaves the window until the peer sends again). */
          n->stats.own_ops_restored += r->applied;
          p->own_backed = true;
          if (err == VS_OK) err = restore_update(n, now_ms);
        }
      }
      for (uint32_t i = count - r->applied; i < count && n->cfg.on_apply != NULL; i++)
        n->cfg.on_apply(n->cfg.on_apply_ctx, &ops[i]);
      return err;
    case VS_ERR_CHAIN: n->stats.runs_gap++; return VS_OK;     /* fetched again after the VV exchange */
    case VS_ERR_AUTH:      /* the signature does not verify */
    case VS_ERR_MALFORMED: /* the run's own links break: no signature covers it */
      n->stats.runs_forged++;
      return VS_OK;
    case VS_ERR_FORK:
      n->stats.runs_fork++;
      if (r->verdict_deferred) n->stats.fork_verdicts_deferred++;
      return VS_OK;
    case VS_ERR_FUTURE: /* valid, but ahead of our clock: the peer offers it again on schedule */
      n->stats.ops_deferred_future += r->deferred;
      skew_note(n, origin, r->ahead_ms);
      return VS_OK;
    case VS_ERR_INVAL: n->stats.rejected_malformed++; return VS_OK;
    case VS_ERR_FORKED: n->stats.runs_void++; return VS_OK; /* its sender has not heard of the verdict yet */
    default: return err; /* storage: stop, nothing of this run was applied */
  }
}

/* run_outcome_base, then what the run says about forks. */
static vs_err run_outcome(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], const vs_op *ops,
                          uint32_t count, vs_err err, const vs_apply_result *r, uint64_t now_ms) {
  bool answer = p->fk_active && memcmp(p->fk_origin, origin, VS_ORIGIN_BYTES) == 0 && ops[0].seq == p->fk_want;
  vs_err out = run_outcome_base(n, p, origin, ops, count, err, r, now_ms);
  if (out != VS_OK) return out;
  if (err == VS_ERR_FORK && r->verdict) return fork_verdict(n, origin, r->fork_seq, "found", NULL);
  if (answer) return fork_answer(n, p, ops, count, err, r, now_ms);
  if ((err == VS_ERR_FORK || err == VS_ERR_CHAIN) && r->suspect_seq > 0)
    return fork_suspect(n, p, origin, r->suspect_seq, now_ms);
  return VS_OK;
}

static vs_err on_run(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES], const vs_op *ops,
                     const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count, void *ctx) {
  run_ctx *rc = ctx;
  vs_node *n = rc->n;
  bool fresh = false;
  if (!quota_allows(n, rc->p, origin, rc->now_ms, &fresh)) return VS_OK; /* refused: nothing stored */
  vs_apply_result r;
  memset(&r, 0, sizeof r);
  (void)verdict_budget(n, rc->now_ms);
  vs_err err = vs_apply_run_enc(n->store, ops, enc, enc_bytes, count, sig, rc->now_ms, n->cfg.max_drift_ms, &r);
  if (err == VS_OK && fresh && r.applied > 0) quota_take(n, rc->p);
  return run_outcome(n, rc->p, origin, ops, count, err, &r, rc->now_ms);
}

static void asm_drop(peer *p) {
  vv_free(&p->asm);
  p->asm_vector = 0;
  p->asm_next = p->asm_parts = 0;
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
  return vs_apply_void_from(n->store, origin, &void_from) == VS_OK && void_from != 0 && now >= void_from - 1;
}

/* A complete vector (p->asm, numbered p->asm_vector) from `p`: check it does
 * not go backwards, release the credit of what it newly acknowledges, and
 * make it the peer's known vector. */
static vs_err vv_complete(vs_node *n, peer *p, uint64_t now_ms) {
  for (uint32_t i = 0; i < p->known.n; i++) { /* bounded: known.n */
    uint64_t was = p->known.e[i].seq, now = vv_get(&p->asm, p->known.e[i].origin);
    if (now < was && !vv_fall_exempt(n, p->known.e[i].origin, was, now)) {
      /* A store never loses ops: a peer whose vector falls is lying (or
       * broken), unless a fork verdict we have not had yet voided what it
       * held (one origin at a time, for a claim grace). Meanwhile its old
       * entry stands: nothing is released or sent again on its word. */
      if (!p->fall_pending || memcmp(p->fall_origin, p->known.e[i].origin, VS_ORIGIN_BYTES) == 0) {
        if (!p->fall_pending) p->fall_deadline_ms = vs_add_sat_u64(now_ms, claim_grace_ms(n));
        p->fall_pending = true;
        memcpy(p->fall_origin, p->known.e[i].origin, VS_ORIGIN_BYTES);
        vs_err e = vv_set(&p->asm, p->known.e[i].origin, was, p->known.e[i].head);
        if (e != VS_OK) return e;
        continue;
      }
      /* Releasing credit on its word would let it pull without bound
       * (issue 14). The session ends; a new one starts afresh. */
      n->stats.rejected_vv_regress++;
      n->reject_counted = true;
      asm_drop(p);
      peer_close(n, p);
      return VS_ERR_STATE;
    }
  }
  bool progress = flight_release(p, &p->asm) > 0;
  for (uint32_t i = 0; i < p->sent.n && !progress; i++)
    progress = vv_get(&p->asm, p->sent.e[i].origin) > vv_get(&p->known, p->sent.e[i].origin);
  vv_free(&p->known);
  p->known = p->asm;
  p->known_vector = p->asm_vector;
  memset(&p->asm, 0, sizeof p->asm);
  asm_drop(p);
  bool covered = true;
  for (uint32_t i = 0; i < p->sent.n && covered; i++)
    covered = p->sent.e[i].seq <= vv_get(&p->known, p->sent.e[i].origin);
  if (covered) {
    vv_free(&p->sent);
    flight_clear(p); /* all of it acknowledged: nothing holds credit */
  }
  if (progress) { /* acks are coming in: not lost, just behind */
    p->sent_at_ms = now_ms;
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
  /* Equal seqs, different heads: its branch of that origin is not ours. */
  for (uint32_t i = 0; i < p->known.n && !p->fk_active; i++) { /* bounded: known.n */
    const vs_vv_entry *e = &p->known.e[i];
    bool found = false;
    int j = vv_find(&n->mine, e->origin, &found);
    if (!found || n->mine.e[j].seq != e->seq || memcmp(n->mine.e[j].head, e->head, VS_VV_HEAD_BYTES) == 0) continue;
    if (p->fall_pending && memcmp(p->fall_origin, e->origin, VS_ORIGIN_BYTES) == 0) continue;
    vs_err err = fork_suspect(n, p, e->origin, e->seq, now_ms);
    if (err != VS_OK) return err;
  }
  uint64_t claim = vv_get(&p->known, n->cfg.identity.pk), head = vv_get(&n->mine, n->cfg.identity.pk);
  if (n->own_void) claim = head; /* our identity is spent: peers that still hold its void ops are no liars */
  if (claim > head) { /* more of our chain than we hold: to be backed by our signed ops (maintain) */
    if (p->own_claim <= head) p->own_claim_deadline_ms = vs_add_sat_u64(now_ms, claim_grace_ms(n));
    p->own_claim = claim;
  } else {
    p->own_claim = 0;
  }
  mesh_acked(n, p->ack_id, claim);
  return VS_OK;
}

/* One part of a peer's vector (wire.h). Parts of a vector arrive in order;
 * a part out of order (lost or reordered in transit) or of a vector older
 * than the one held is dropped, not refused: the next vector replaces it.
 * Memory: the assembled vector keeps only entries vv_keep wants. */
static vs_err on_vv(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  /* Room for the entries the message announces (not the 160 KiB of
   * VS_WIRE_VV_MAX every time); the decoder checks the count against the
   * message and the limit. */
  uint32_t room = len >= VS_MSG_VV_HEADER_BYTES ? vs_get_u32le(msg + VS_MSG_VV_HEADER_BYTES - 4) : 1;
  if (room > VS_WIRE_VV_MAX) room = VS_WIRE_VV_MAX;
  if (room == 0) room = 1;
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
    }
  } else if (take) {
    take = p->asm_parts != 0 && part.vector == p->asm_vector && part.part == p->asm_next && part.parts == p->asm_parts;
    if (!take && part.vector > p->asm_vector) asm_drop(p); /* a newer vector whose first part we missed */
  }
  if (take && part.part > 0 && memcmp(e[0].origin, p->asm_last, VS_ORIGIN_BYTES) <= 0) {
    err = VS_ERR_MALFORMED; /* parts must continue the order */
    asm_drop(p);
    take = false;
  }
  for (uint32_t i = 0; take && err == VS_OK && i < count; i++) /* bounded: count <= VS_WIRE_VV_MAX */
    if (vv_keep(n, e[i].origin)) err = vv_append(&p->asm, e[i].origin, e[i].seq, e[i].head);
  if (take && err == VS_OK) {
    if (count > 0) memcpy(p->asm_last, e[count - 1].origin, VS_ORIGIN_BYTES);
    p->asm_next = part.part + 1;
    p->asm_forks = part.forks;
    if (p->asm_next == p->asm_parts) err = vv_complete(n, p, now_ms);
  } else if (take) {
    asm_drop(p);
  }
  free(e);
  return err;
}

/* ---- prepared frames (node.h, receive pipeline) ---- */

typedef struct prep_run {
  const uint8_t *origin, *sig; /* into msg */
  size_t first;                /* index of the run's first op */
  uint32_t count;
  vs_run_pre pre;
} prep_run;

struct vs_rx_prep {
  const uint8_t *bytes; /* the frame (the caller's) */
  size_t len;
  uint32_t peer;
  uint64_t session;
  uint8_t key[32];      /* the key it was opened with (session numbers are per node) */
  bool opened;          /* authentic under the key: counter and msg valid */
  uint64_t counter;
  uint8_t *msg;
  size_t msg_len;
  vs_err decode_err;    /* an OPS message: the decoder's verdict */
  vs_op *ops;           /* every op of the message, runs back to back */
  const uint8_t **enc;
  uint32_t *enc_bytes;
  uint8_t (*hashes)[VS_HASH_BYTES];
  size_t ops_n, ops_cap;
  prep_run *runs;
  uint32_t runs_n, runs_cap;
};

/* Decoder callback: keep the run (ops point into prep->msg, which stays). */
static vs_err prep_collect(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                           const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count,
                           void *ctx) {
  vs_rx_prep *p = ctx;
  if (p->runs_n == p->runs_cap) {
    uint32_t cap = p->runs_cap == 0 ? 16 : p->runs_cap * 2;
    prep_run *r = realloc(p->runs, sizeof *r * cap);
    if (r == NULL) return VS_ERR_NOMEM;
    p->runs = r;
    p->runs_cap = cap;
  }
  if (p->ops_n + count > p->ops_cap) {
    size_t cap = p->ops_cap * 2 > p->ops_n + count ? p->ops_cap * 2 : p->ops_n + count;
    vs_op *o = realloc(p->ops, sizeof *o * cap);
    if (o != NULL) p->ops = o;
    const uint8_t **e = o != NULL ? realloc(p->enc, sizeof *e * cap) : NULL;
    if (e != NULL) p->enc = e;
    uint32_t *eb = e != NULL ? realloc(p->enc_bytes, sizeof *eb * cap) : NULL;
    if (eb == NULL) return VS_ERR_NOMEM;
    p->enc_bytes = eb;
    p->ops_cap = cap;
  }
  /* The decoder's origin and sig point into its input: p->msg. */
  p->runs[p->runs_n++] = (prep_run){origin, sig, p->ops_n, count, {NULL, VS_ERR_INVAL, false}};
  memcpy(p->ops + p->ops_n, ops, sizeof *ops * count);
  memcpy(p->enc + p->ops_n, enc, sizeof *enc * count);
  memcpy(p->enc_bytes + p->ops_n, enc_bytes, sizeof *enc_bytes * count);
  p->ops_n += count;
  return VS_OK;
}

/* The pure part of an OPS message: decode, then per run the checks of
 * vs_run_prepare. false: out of memory (the frame goes unprepared). */
static bool prep_ops(vs_rx_prep *p) {
  p->decode_err = vs_msg_ops_decode_enc(p->msg, p->msg_len, prep_collect, p);
  if (p->decode_err == VS_ERR_NOMEM) return false;
  if (p->decode_err != VS_OK) return true; /* the node rejects the message as on_frame would */
  p->hashes = malloc(sizeof *p->hashes * (p->ops_n > 0 ? p->ops_n : 1));
  if (p->hashes == NULL) return false;
  for (uint32_t r = 0; r < p->runs_n; r++) {
    prep_run *run = &p->runs[r];
    vs_run_prepare(p->ops + run->first, p->enc + run->first, p->enc_bytes + run->first, run->count, run->sig,
                   p->hashes + run->first, &run->pre);
  }
  return true;
}

static void prep_drop_work(vs_rx_prep *p) {
  free(p->msg);
  free(p->ops);
  free(p->enc);
  free(p->enc_bytes);
  free(p->hashes);
  free(p->runs);
  sodium_memzero(p->key, sizeof p->key);
  const uint8_t *bytes = p->bytes;
  size_t len = p->len;
  memset(p, 0, sizeof *p);
  p->bytes = bytes;
  p->len = len;
}

vs_err vs_rx_prepare(const vs_rx_key *key, const uint8_t *bytes, size_t bytes_len, vs_rx_prep **prep_out) {
  if (prep_out == NULL || (bytes == NULL && bytes_len > 0)) return VS_ERR_INVAL;
  vs_rx_prep *p = calloc(1, sizeof *p);
  if (p == NULL) return VS_ERR_NOMEM;
  p->bytes = bytes;
  p->len = bytes_len;
  *prep_out = p;
  uint8_t type = 0;
  if (key == NULL || bytes_len <= VS_DATA_OVERHEAD_BYTES || bytes_len > VS_FRAME_BYTES_MAX ||
      vs_frame_type(bytes, bytes_len, &type) != VS_OK || type != VS_FRAME_DATA)
    return VS_OK; /* the node deals with it */
  p->peer = key->peer;
  p->session = key->session;
  memcpy(p->key, key->key, sizeof p->key);
  p->msg = malloc(bytes_len - VS_DATA_OVERHEAD_BYTES);
  if (p->msg == NULL) return VS_OK; /* unprepared: still correct, only slower */
  p->opened = vs_data_open(key->key, bytes, bytes_len, p->msg, bytes_len - VS_DATA_OVERHEAD_BYTES, &p->msg_len,
                           &p->counter) == VS_OK;
  if (p->opened && p->msg[0] == VS_MSG_OPS && !prep_ops(p)) prep_drop_work(p);
  if (!p->opened) prep_drop_work(p);
  return VS_OK;
}

void vs_rx_prep_free(vs_rx_prep *prep) {
  if (prep == NULL) return;
  prep_drop_work(prep);
  free(prep);
}

vs_err vs_node_rx_key(const vs_node *n, uint32_t handle, vs_rx_key *key_out) {
  if (n == NULL || key_out == NULL) return VS_ERR_INVAL;
  const peer *p = peer_find((vs_node *)n, handle);
  if (p == NULL) return VS_ERR_NOTFOUND;
  if (p->st != PEER_READY) return VS_ERR_STATE;
  key_out->peer = handle;
  key_out->session = p->sess_no;
  memcpy(key_out->key, p->sess.rx_key, sizeof key_out->key);
  return VS_OK;
}

/* An authentic message of an established session (opened, its counter
 * accepted). `prep` (may be NULL) holds the pure work on an OPS message. */
static vs_err on_message(vs_node *n, peer *p, const uint8_t *msg, size_t msg_len, const vs_rx_prep *prep,
                         uint64_t now_ms) {
  if (msg_len == 0) return VS_ERR_TRUNCATED;
  if (msg[0] == VS_MSG_VV) return on_vv(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_FORK) return on_fork_msg(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_WANT) return on_want(n, p, msg, msg_len, now_ms);
  if (msg[0] != VS_MSG_OPS) return VS_ERR_MALFORMED;
  vs_err err;
  if (prep == NULL) {
    run_ctx rc = {n, p, now_ms};
    err = vs_msg_ops_decode_enc(msg, msg_len, on_run, &rc);
  } else {
    err = prep->decode_err;
    for (uint32_t r = 0; r < prep->runs_n && err == VS_OK; r++) {
      const prep_run *run = &prep->runs[r];
      const vs_op *ops = prep->ops + run->first;
      vs_apply_result res;
      memset(&res, 0, sizeof res);
      bool fresh = false;
      if (!quota_allows(n, p, run->origin, now_ms, &fresh)) continue; /* refused: nothing stored */
      (void)verdict_budget(n, now_ms);
      err = vs_apply_run_pre(n->store, ops, prep->enc + run->first, prep->enc_bytes + run->first, run->count,
                             run->sig, &run->pre, now_ms, n->cfg.max_drift_ms, &res);
      if (err == VS_OK && fresh && res.applied > 0) quota_take(n, p);
      err = run_outcome(n, p, run->origin, ops, run->count, err, &res, now_ms);
    }
  }
  if (err == VS_OK) p->vv_due = true; /* acknowledge with our new vector */
  return err;
}

static vs_err on_data(vs_node *n, peer *p, const uint8_t *bytes, size_t len, uint64_t now_ms) {
  uint8_t type = 0;
  vs_err err = vs_frame_type(bytes, len, &type);
  if (err != VS_OK) return err;
  /* A well-formed handshake frame on an established session (a late
   * duplicate of this connection's handshake) is unexpected, not
   * malformed: node.h counts it in rejected_state. */
  if (type != VS_FRAME_DATA) return VS_ERR_STATE;
  size_t msg_len = 0;
  err = vs_session_open(&p->sess, bytes, len, n->msg, VS_MSG_BYTES_MAX, &msg_len);
  if (err != VS_OK) return err;
  return on_message(n, p, n->msg, msg_len, NULL, now_ms);
}

vs_err vs_node_on_prepared(vs_node *n, uint32_t handle, const vs_rx_prep *prep, uint64_t now_ms) {
  if (n == NULL || prep == NULL) return VS_ERR_INVAL;
  peer *p = peer_find(n, handle);
  /* Only a frame opened with the key of this peer's current session skips
   * the work; anything else takes the whole path, with its checks. */
  if (!prep->opened || prep->peer != handle || p == NULL || p->st != PEER_READY || p->sess_no != prep->session ||
      sodium_memcmp(prep->key, p->sess.rx_key, sizeof prep->key) != 0)
    return vs_node_on_frame(n, handle, prep->bytes, prep->len, now_ms);
  n->stats.frames_in++;
  n->stats.bytes_in += prep->len;
  vs_err err = vs_session_accept(&p->sess, prep->counter);
  if (err == VS_OK) err = on_message(n, p, prep->msg, prep->msg_len, prep, now_ms);
  count_reject(n, err);
  return err;
}

vs_err vs_node_on_frame(vs_node *n, uint32_t handle, const uint8_t *bytes, size_t len, uint64_t now_ms) {
  if (n == NULL || (bytes == NULL && len > 0)) return VS_ERR_INVAL;
  peer *p = peer_find(n, handle);
  if (p == NULL || p->st == PEER_CLOSING) {
    n->stats.rejected_unknown_peer++;
    return VS_ERR_NOTFOUND;
  }
  n->stats.frames_in++;
  n->stats.bytes_in += len;
  if (len > VS_FRAME_BYTES_MAX) {
    n->stats.rejected_malformed++;
    return VS_ERR_TOO_LARGE;
  }
  if (len > 0 && bytes[0] != VS_WIRE_VERSION) { /* refused below as VS_ERR_VERSION; name the version */
    n->stats.rejected_version++;
    n->stats.version_seen = bytes[0];
  }
  vs_err err;
  if (p->st == PEER_HANDSHAKE) {
    uint8_t out[VS_HS_FRAME_BYTES_MAX];
    size_t out_len = 0;
    bool done = false;
    uint32_t cookies = p->hs.cookies_sent;
    err = vs_hs_on_frame(&p->hs, bytes, len, out, sizeof out, &out_len, &done, &p->sess);
    n->stats.cookies_sent += p->hs.cookies_sent - cookies;
    /* A valid HELLO2 (its cookie checked) or REPLY: the 5 s deadline rules. A
     * HELLO answered by a COOKIE extends nothing: a replayed HELLO proves no key. */
    if (err == VS_OK && !(out_len > 0 && out[1] == VS_FRAME_COOKIE)) {
      p->hs_deadline_ms = p->hs_end_ms;
    } else if (err == VS_OK && p->hs.cookies_sent == 1) {
      /* The cookie round costs a round trip: a valid HELLO earns one more
       * HELLO period from now for its HELLO2 (once per connection). */
      uint64_t more = vs_add_sat_u64(now_ms, n->cfg.hello_timeout_ms);
      p->hs_deadline_ms = more < p->hs_end_ms ? more : p->hs_end_ms;
    }
    if (err == VS_OK && out_len > 0) err = queue_copy(p, out, out_len);
    if (err == VS_OK && done) {
      vs_hs_wipe(&p->hs);
      p->ack_id = ack_id_for(n, p->sess.peer_id, now_ms);
      p->sess_no = ++n->sessions;
      p->st = PEER_READY;
      p->vv_due = true;
      n->stats.handshakes_done++;
    }
    if (err == VS_ERR_AUTH) peer_close(n, p); /* not of this mesh: it gets nothing more */
  } else {
    err = on_data(n, p, bytes, len, now_ms);
  }
  count_reject(n, err);
  return err;
}

/* ---- polling ---- */

/* Timers and anti-entropy for every connection; runs when nothing is queued. */
static vs_err maintain(vs_node *n, uint64_t now_ms) {
  /* Another process (a CLI write beside the daemon) may have extended our
   * own chain: only the store knows. One read transaction per poll round;
   * when the chain grew, every ready peer gets our vector and the new ops. */
  uint64_t own_before = vv_get(&n->mine, n->cfg.identity.pk);
  vs_err own_err = refresh_mine(n, n->cfg.identity.pk);
  if (own_err != VS_OK) return own_err;
  if (vv_get(&n->mine, n->cfg.identity.pk) != own_before) {
    for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++)
      if (n->peers[s].st == PEER_READY) n->peers[s].vv_due = true;
  }
  uint64_t own_head = vv_get(&n->mine, n->cfg.identity.pk);
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) {
    peer *p = &n->peers[s];
    if (p->st == PEER_HANDSHAKE && now_ms >= p->hs_deadline_ms) {
      n->stats.handshakes_timeout++;
      peer_close(n, p);
      continue;
    }
    if (p->st != PEER_READY) continue;
    if (p->own_claim > own_head && now_ms >= p->own_claim_deadline_ms) {
      /* It claimed our ops beyond our head and sent nothing that backs it:
       * a protocol violation (a lying vector), not a restored copy. */
      n->stats.rejected_vv_future++;
      peer_close(n, p);
      continue;
    }
    if (p->own_claim <= own_head) p->own_claim = 0;
    vs_err err = VS_OK;
    if (p->fall_pending && now_ms >= p->fall_deadline_ms) {
      uint64_t void_from = 0;
      err = vs_apply_void_from(n->store, p->fall_origin, &void_from);
      if (err != VS_OK) return err;
      p->fall_pending = false;
      if (void_from == 0) { /* no verdict came: the fall was a lie */
        n->stats.rejected_vv_regress++;
        peer_close(n, p);
        continue;
      }
    }
    if (p->fk_active && now_ms >= p->fk_deadline_ms) {
      if (p->fk_tries < FORK_SEARCH_TRIES) err = send_want(n, p, now_ms);
      else p->fk_active = false; /* it does not answer: the next vector starts again */
    }
    if (err == VS_OK && !p->fk_sent_all) err = forks_to_session(n, p); /* before anything they vouch for */
    if (err == VS_OK && p->st == PEER_READY && (p->vv_due || now_ms >= p->next_vv_ms)) err = send_vv(n, p, now_ms);
    /* Runs only once it has every verdict: a run may end at an op that
     * only the evidence vouches for (the zero signature, apply.h). */
    if (err == VS_OK && p->st == PEER_READY && p->fk_sent_all) err = anti_entropy(n, p, now_ms);
    if (err != VS_OK && err != VS_ERR_LIMIT) return err;
  }
  vs_err rerr = restore_update(n, now_ms);
  if (rerr != VS_OK) return rerr;
  if (n->engine != NULL) {
    uint64_t wake;
    return vs_engine_tick(n->engine, now_ms, &wake);
  }
  return VS_OK;
}

static uint64_t next_wake(vs_node *n, uint64_t now_ms) {
  uint64_t wake = UINT64_MAX;
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) {
    const peer *p = &n->peers[s];
    uint64_t t = UINT64_MAX;
    if (p->q_tail > p->q_head) t = now_ms;
    else if (p->st == PEER_HANDSHAKE) t = p->hs_deadline_ms;
    else if (p->st == PEER_READY) {
      t = p->vv_due ? now_ms : p->next_vv_ms;
      if (p->own_claim > 0 && p->own_claim_deadline_ms < t) t = p->own_claim_deadline_ms;
      if (p->fk_active && p->fk_deadline_ms < t) t = p->fk_deadline_ms;
      if (p->fall_pending && p->fall_deadline_ms < t) t = p->fall_deadline_ms;
      if (!p->fk_sent_all) t = now_ms;
      if (p->sent.n > 0) {
        uint64_t r = vs_add_sat_u64(p->sent_at_ms, resend_wait_ms(n, p));
        t = r < t ? r : t;
      }
    }
    wake = t < wake ? t : wake;
  }
  if (n->engine != NULL) {
    uint64_t e = UINT64_MAX;
    if (vs_engine_tick(n->engine, now_ms, &e) == VS_OK && e < wake) wake = e;
  }
  return wake;
}

vs_err vs_node_poll(vs_node *n, uint64_t now_ms, vs_node_out *out, uint64_t *wake_ms_out) {
  if (n == NULL || out == NULL) return VS_ERR_INVAL;
  free(n->last);
  n->last = NULL;
  memset(out, 0, sizeof *out);
  bool queued = false;
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX && !queued; s++) queued = n->peers[s].q_tail > n->peers[s].q_head;
  vs_err err = queued ? VS_OK : maintain(n, now_ms);
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    uint32_t s = (n->rr + i) % VS_NODE_PEERS_MAX;
    peer *p = &n->peers[s];
    if (p->q_tail == p->q_head) continue;
    frame f = p->q[p->q_head++];
    out->peer = p->handle;
    n->rr = s + 1;
    if (f.bytes == NULL) {
      out->kind = VS_NODE_OUT_CLOSE;
      peer_free(p);
    } else {
      out->kind = VS_NODE_OUT_SEND;
      out->bytes = f.bytes;
      out->bytes_len = f.len;
      n->last = f.bytes;
      n->stats.frames_out++;
      n->stats.bytes_out += f.len;
    }
    break;
  }
  if (wake_ms_out != NULL) *wake_ms_out = out->kind != VS_NODE_OUT_NONE ? now_ms : next_wake(n, now_ms);
  return err;
}
