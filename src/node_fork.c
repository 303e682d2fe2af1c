#define _POSIX_C_SOURCE 200809L
/* The node's forks (node_int.h): finding where two branches part, taking
 * verdicts and relaying their evidence. */
#include "node_int.h"

#include <stdio.h>
#include <stdlib.h>

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

vs_err nd_send_want(vs_node *n, peer *p, uint64_t now_ms) {
  uint8_t m[VS_MSG_WANT_BYTES];
  size_t len = 0;
  vs_err err = vs_msg_want_encode(p->fk_origin, p->fk_want, m, sizeof m, &len);
  p->fk_deadline_ms = vs_add_sat_u64(now_ms, 2 * n->cfg.resend_ms);
  p->fk_tries++;
  if (err == VS_OK) err = nd_send_msg(n, p, m, len);
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
  return nd_send_want(n, p, now_ms);
}

/* `p`'s branch of `origin` and ours differ at `hi` (<= our head). */
vs_err nd_fork_suspect(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t hi, uint64_t now_ms) {
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
vs_err nd_fork_answer(vs_node *n, peer *p, const vs_op *ops, uint32_t count, vs_err err, const vs_apply_result *r,
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
    vs_err e = nd_send_msg(n, q, buf, len);
    if (e != VS_OK && e != VS_ERR_LIMIT) err = e; /* LIMIT: that peer was too slow and is closed */
  }
  free(buf);
  return err;
}

/* Whether the refold budget allows a verdict now (holds the store's
 * verdicts otherwise, for the runs applied next). */
bool nd_verdict_budget(vs_node *n, uint64_t now_ms) {
  if (!n->verdict_init) {
    n->verdict_tokens = (uint64_t)VS_NODE_VERDICTS_PER_MIN * QUOTA_UNIT;
    n->verdict_ms = now_ms;
    n->verdict_init = true;
  }
  nd_bucket_refill(&n->verdict_tokens, &n->verdict_ms, VS_NODE_VERDICTS_PER_MIN, now_ms);
  bool ok = n->verdict_tokens >= QUOTA_UNIT;
  n->store->hold_verdicts = !ok;
  return ok;
}

/* A verdict was taken here (from a run or a peer's evidence). */
vs_err nd_fork_verdict(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const char *how,
                       const peer *from) {
  n->stats.fork_verdicts++;
  if (n->verdict_tokens >= QUOTA_UNIT) n->verdict_tokens -= QUOTA_UNIT;
  fork_log(n, origin, seq, how);
  if (memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0) n->own_void = true;
  uint64_t held = nd_vv_get(&n->mine, origin);
  vs_err err = nd_refresh_mine(n, origin);
  uint64_t now_held = nd_vv_get(&n->mine, origin);
  if (err == VS_OK && now_held < held && n->cfg.on_void != NULL)
    n->cfg.on_void(n->cfg.on_void_ctx, origin, now_held + 1, held);
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
vs_err nd_on_fork_msg(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  if (len < VS_MSG_FORK_HEADER_BYTES) return VS_ERR_TRUNCATED;
  const uint8_t *origin = msg + 1;
  bool fresh = false;
  uint64_t held_from = 0;
  vs_err err = vs_apply_void_from(n->store, origin, &held_from);
  if (err != VS_OK) return err;
  uint64_t seq = vs_get_u64le(msg + 1 + VS_ORIGIN_BYTES);
  if (held_from != 0 && held_from <= seq) return VS_OK; /* nothing new: not even worth checking */
  /* Evidence about an origin we hold nothing of costs disk like its ops. */
  if (!nd_quota_allows(n, p, origin, now_ms, &fresh)) return VS_OK;
  if (!nd_verdict_budget(n, now_ms)) { /* it comes again while our verdicts differ */
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
    nd_peer_close(n, p);
    return err;
  }
  if (err != VS_OK || !fr.verdict) return err;
  if (fresh) nd_quota_take(n, p);
  return nd_fork_verdict(n, fr.origin, fr.seq, "evidence", p);
}

/* WANT from a peer: one run from the seq it names, if held. */
vs_err nd_on_want(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms) {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t from = 0;
  vs_err err = vs_msg_want_decode(msg, len, origin, &from);
  if (err != VS_OK) return err;
  if (p->probation) return VS_OK; /* a device not admitted here is sent no run (node_member.c) */
  /* A too-late replica holds its own ops back (node_snap.c): a WANT would
   * hand a member the writes its rebase then orphans, and with them a
   * second op at each of those seqs: a fork of our identity. */
  if (n->late && memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0) return VS_OK;
  uint32_t a = p->ack_id;
  if (!((n->want_init >> a) & 1u)) {
    n->want_tokens[a] = (uint64_t)WANT_PER_MIN * QUOTA_UNIT;
    n->want_ms[a] = now_ms;
    n->want_init |= 1ull << a;
  }
  nd_bucket_refill(&n->want_tokens[a], &n->want_ms[a], WANT_PER_MIN, now_ms);
  /* An answer is a run sent like any other: it takes in-flight credit,
   * which comes back only when the peer's vector holds it or at the
   * resend timeout, so WANTs cannot pull past the window (issue 14). */
  if (n->want_tokens[a] < QUOTA_UNIT || p->inflight_bytes >= n->cfg.inflight_bytes_max) {
    n->stats.rejected_want_quota++;
    return VS_OK;
  }
  n->want_tokens[a] -= QUOTA_UNIT;
  uint64_t head = nd_vv_get(&n->mine, origin);
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
  if (err == VS_OK) err = nd_add_run(n, txn, &wr, &w, origin, from, head, &end);
  size_t out = 0;
  if (err == VS_OK) err = vs_ops_writer_finish(&w, &out);
  if (wr.cur != NULL) vs_wal_reader_close(&wr);
  if (txn != NULL) mdb_txn_abort(txn);
  uint32_t fl_before = p->fl_n;
  if (err == VS_OK) err = nd_flight_add(p, origin, end, out, now_ms);
  if (err == VS_OK) err = nd_send_msg(n, p, buf, out);
  if (err != VS_OK) p->fl_n = fl_before;
  if (err == VS_OK) {
    if (p->sent.n == 0) p->sent_at_ms = now_ms; /* the resend timer frees the credit if never acknowledged */
    p->inflight_bytes += out;
    if (nd_vv_get(&p->sent, origin) < end) err = nd_vv_set(&p->sent, origin, end, NULL);
    n->stats.wants_served++;
  }
  free(buf);
  /* Nothing signed there, a run too large for one message, or ops
   * compacted here (below the horizon): no answer. */
  return err == VS_ERR_NOTFOUND || err == VS_ERR_BUFSIZE || err == VS_ERR_LIMIT || err == VS_ERR_BEHIND_HORIZON ? VS_OK
                                                                                                                : err;
}

/* Send a new session the verdicts it has not had, a few per poll. */
vs_err nd_forks_to_session(vs_node *n, peer *p) {
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
    err = nd_send_msg(n, p, buf, len);
    memcpy(p->fk_next, origin, VS_ORIGIN_BYTES);
    p->fk_next_set = true;
  }
  free(buf);
  return err;
}
