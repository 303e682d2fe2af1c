#define _POSIX_C_SOURCE 200809L
/* The node's receiving side (node_int.h): frames and messages of a
 * session, the origin quota, what a run's apply result means, and the
 * prepared-frames pipeline (node.h). */
#include "node_int.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- receiving ---- */

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
void nd_bucket_refill(uint64_t *tokens, uint64_t *at_ms, uint64_t per_min, uint64_t now_ms) {
  uint64_t cap = per_min * QUOTA_UNIT;
  uint64_t elapsed = now_ms > *at_ms ? now_ms - *at_ms : 0;
  *at_ms = now_ms;
  if (elapsed >= QUOTA_UNIT) *tokens = cap; /* a minute refills all (and avoids overflow) */
  else *tokens = vs_add_sat_u64(*tokens, elapsed * per_min);
  if (*tokens > cap) *tokens = cap;
}

static void quota_refill(vs_node *n, uint32_t ack_id, uint64_t now_ms) {
  nd_bucket_refill(&n->quota[ack_id], &n->quota_ms[ack_id], n->cfg.origin_quota_per_min, now_ms);
  uint64_t all_per_min = (uint64_t)n->cfg.origin_quota_per_min * QUOTA_ALL_PEERS;
  if (!n->quota_all_init) { /* full at the first new origin */
    n->quota_all = all_per_min * QUOTA_UNIT;
    n->quota_all_ms = now_ms;
    n->quota_all_init = true;
  }
  nd_bucket_refill(&n->quota_all, &n->quota_all_ms, all_per_min, now_ms);
}

/* Whether a run of `origin` from `p` may be applied. An origin we hold
 * nothing of costs one token of p's bucket (taken by nd_quota_take once the
 * run is applied); with none left the run is refused before anything of it
 * is stored, and counted. *fresh_out: the origin is new to us. */
bool nd_quota_allows(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms,
                     bool *fresh_out) {
  *fresh_out = n->cfg.origin_quota_per_min > 0 && !nd_vv_keep(n, origin);
  if (!*fresh_out) return true;
  quota_refill(n, p->ack_id, now_ms);
  if (n->quota[p->ack_id] >= QUOTA_UNIT && n->quota_all >= QUOTA_UNIT) return true;
  n->stats.rejected_origin_quota++;
  return false;
}

void nd_quota_take(vs_node *n, const peer *p) {
  assert(n->quota[p->ack_id] >= QUOTA_UNIT && n->quota_all >= QUOTA_UNIT);
  n->quota[p->ack_id] -= QUOTA_UNIT;
  n->quota_all -= QUOTA_UNIT;
}

/* ---- a run's outcome: what an applied (or refused) run means ---- */

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
        err = nd_refresh_mine(n, origin);
        skew_clear(n, origin);
        if (memcmp(origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0) {
          /* Progress on the claim: more time. Only our own ops count (a
           * peer sends them first, push_ops), so a liar cannot stay by
           * trickling ops of its own. */
          p->own_claim_deadline_ms = vs_add_sat_u64(now_ms, nd_claim_grace_ms(n));
          /* Our own signed ops, which we lacked: this store is a restored
           * copy. No local write until we hold what the peer claims. The
           * marker's transaction follows the apply's (a crash between them
           * leaves the window until the peer sends again). */
          n->stats.own_ops_restored += r->applied;
          p->own_backed = true;
          if (err == VS_OK) err = nd_restore_update(n, now_ms);
        }
      }
      /* The ops stored follow the ones held already; a run that crosses a
       * revocation cut is taken up to the cut, so its tail may not be. */
      for (uint32_t i = r->duplicates; i < r->duplicates + r->applied && i < count; i++) {
        n->stats.op_bytes_applied += vs_op_encoded_bytes(&ops[i]);
        n->stats.payload_bytes_applied += ops[i].payload_bytes;
        if (n->cfg.on_apply != NULL) n->cfg.on_apply(n->cfg.on_apply_ctx, &ops[i]);
      }
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
    case VS_ERR_INVAL:
    case VS_ERR_VERSION:   /* a mesh.* kind this build does not read (membership, apply.c) */
    case VS_ERR_TRUNCATED: /* a signed mesh.* op whose payload does not decode */
    case VS_ERR_TRAILING:
      n->stats.rejected_malformed++;
      return VS_OK;
    case VS_ERR_FORKED: n->stats.runs_void++; return VS_OK; /* its sender has not heard of the verdict yet */
    /* A data op ordered before what our compaction dropped: never merged
     * (docs/storage.md, "Dropping tombstones"); its author re-bootstraps.
     * Relayed by a peer that is not its author: that peer holds what we
     * never will: the stores differ on that chain unless one of them
     * rebases (a too-late replica's writes near the floors: docs/storage.md,
     * "Members who stop acking"). Counted and logged once per session. */
    case VS_ERR_BELOW_FLOOR:
      n->stats.runs_below_floor++;
      if (memcmp(origin, p->sess.peer_id, VS_ORIGIN_BYTES) != 0) {
        n->stats.floor_splits++;
        if (!p->split_logged && n->cfg.log != NULL) {
          char hex[2 * VS_ORIGIN_BYTES + 1], line[256];
          vs_hex_encode(origin, VS_ORIGIN_BYTES, hex);
          snprintf(line, sizeof line,
                   "event=floor_split origin=%s seq=%llu: a peer holds ops of it below our gc_floor, which we "
                   "refuse: the stores differ on that chain unless one of them rebases",
                   hex, (unsigned long long)ops[0].seq);
          n->cfg.log(n->cfg.log_ctx, VS_LOG_WARN, line);
        }
        p->split_logged = true;
        return VS_OK;
      }
      return nd_snap_floor(n, p, origin, now_ms);
    /* Membership (mgate.h): nothing stored; an honest sender may hold an
     * admission or a revoke we lack yet, so the session stays. */
    case VS_ERR_NOT_MEMBER: n->stats.rejected_not_member++; return VS_OK;
    case VS_ERR_REVOKED: n->stats.rejected_revoked++; return VS_OK;
    case VS_ERR_DENIED:
    case VS_ERR_LIMIT: n->stats.rejected_denied++; return VS_OK;
    default: return err; /* storage: stop, nothing of this run was applied */
  }
}

/* run_outcome_base, then what the run says about forks. */
static vs_err run_outcome(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], const vs_op *ops,
                          uint32_t count, vs_err err, const vs_apply_result *r, uint64_t now_ms) {
  bool answer = p->fk_active && memcmp(p->fk_origin, origin, VS_ORIGIN_BYTES) == 0 && ops[0].seq == p->fk_want;
  vs_err out = run_outcome_base(n, p, origin, ops, count, err, r, now_ms);
  if (out == VS_OK) out = nd_member_after_run(n, p, origin, ops, err);
  if (out != VS_OK || p->st != PEER_READY) return out;
  if (err == VS_ERR_FORK && r->verdict) return nd_fork_verdict(n, origin, r->fork_seq, "found", NULL);
  if (answer) return nd_fork_answer(n, p, ops, count, err, r, now_ms);
  /* It holds what it sent: never pushed back to it (best effort: without
   * memory for the entry, a duplicate later, not a failed receive after
   * its ops were stored). */
  if (err == VS_OK && count > 0 && ops[count - 1].seq > nd_vv_get(&p->has, origin))
    (void)nd_vv_set(&p->has, origin, ops[count - 1].seq, NULL);
  if (err == VS_OK) nd_tree_on_run(n, p, r->applied, r->duplicates, now_ms); /* a duplicate ends a graft */
  if ((err == VS_ERR_FORK || err == VS_ERR_CHAIN) && r->suspect_seq > 0)
    return nd_fork_suspect(n, p, origin, r->suspect_seq, now_ms);
  return VS_OK;
}

static vs_err on_run(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES], const vs_op *ops,
                     const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count, void *ctx) {
  run_ctx *rc = ctx;
  vs_node *n = rc->n;
  bool fresh = false;
  if (!nd_quota_allows(n, rc->p, origin, rc->now_ms, &fresh)) return VS_OK; /* refused: nothing stored */
  vs_apply_result r;
  memset(&r, 0, sizeof r);
  (void)nd_verdict_budget(n, rc->now_ms);
  vs_err err = vs_apply_run_enc(n->store, ops, enc, enc_bytes, count, sig, rc->now_ms, n->cfg.max_drift_ms,
                                n->cfg.sig_cache, &r);
  if (err == VS_OK && fresh && r.applied > 0) nd_quota_take(n, rc->p);
  return run_outcome(n, rc->p, origin, ops, count, err, &r, rc->now_ms);
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
  uint8_t *rebuilt;     /* the ops' encodings, rebuilt from the message (wire v7) */
  vs_op *ops;           /* every op of the message, runs back to back */
  const uint8_t **enc;
  uint32_t *enc_bytes;
  uint8_t (*hashes)[VS_HASH_BYTES];
  size_t ops_n, ops_cap;
  prep_run *runs;
  uint32_t runs_n, runs_cap;
};

/* Decoder callback: keep the run (its origin and sig point into prep->msg,
 * its ops into prep->rebuilt: both stay). */
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
  p->decode_err = vs_msg_ops_decode_keep(p->msg, p->msg_len, prep_collect, p, &p->rebuilt);
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
  free(p->rebuilt);
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
  const peer *p = nd_peer_find((vs_node *)n, handle);
  if (p == NULL) return VS_ERR_NOTFOUND;
  if (p->st != PEER_READY) return VS_ERR_STATE;
  key_out->peer = handle;
  key_out->session = p->sess_no;
  memcpy(key_out->key, p->sess.rx_key, sizeof key_out->key);
  return VS_OK;
}

static vs_err on_message_of(vs_node *n, peer *p, const uint8_t *msg, size_t msg_len, const vs_rx_prep *prep,
                            uint64_t now_ms);

/* An authentic message of an established session (opened, its counter
 * accepted). `prep` (may be NULL) holds the pure work on an OPS message.
 * One that does not decode (an unknown type, a count past its bounds,
 * bytes missing or left over) was sealed by a peer holding the session
 * key: a build of another protocol, or a hostile one. The session ends
 * (as for forged FORK or ACKS evidence): nothing more is read from it,
 * and a new session starts afresh. A run the message carries that fails
 * its own checks (a signature, the links) is a run refused, not a
 * message: run_outcome counts it and the session stays. */
static vs_err on_message(vs_node *n, peer *p, const uint8_t *msg, size_t msg_len, const vs_rx_prep *prep,
                         uint64_t now_ms) {
  p->rx_ms = now_ms; /* authentic: the session lives (node_dup.c) */
  vs_err err = on_message_of(n, p, msg, msg_len, prep, now_ms);
  if ((err == VS_ERR_MALFORMED || err == VS_ERR_TRUNCATED || err == VS_ERR_TRAILING) && p->st == PEER_READY) {
    n->stats.sessions_closed_malformed++;
    nd_peer_close(n, p);
  }
  return err;
}

static vs_err on_message_of(vs_node *n, peer *p, const uint8_t *msg, size_t msg_len, const vs_rx_prep *prep,
                            uint64_t now_ms) {
  if (msg_len == 0) return VS_ERR_TRUNCATED;
  if (msg[0] == VS_MSG_VV) return nd_on_vv(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_FORK) return nd_on_fork_msg(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_WANT) return nd_on_want(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_ACKS) return nd_on_acks(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_BEHIND) return nd_on_behind(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_SNAPREQ) return nd_on_snapreq(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_SNAPCHUNK) return nd_on_snapchunk(n, p, msg, msg_len, now_ms);
  if (msg[0] == VS_MSG_SNAPACK) return nd_on_snapack(n, p, msg, msg_len, now_ms);
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
      if (!nd_quota_allows(n, p, run->origin, now_ms, &fresh)) continue; /* refused: nothing stored */
      (void)nd_verdict_budget(n, now_ms);
      err = vs_apply_run_pre(n->store, ops, prep->enc + run->first, prep->enc_bytes + run->first, run->count,
                             run->sig, &run->pre, now_ms, n->cfg.max_drift_ms, &res);
      if (err == VS_OK && fresh && res.applied > 0) nd_quota_take(n, p);
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
  peer *p = nd_peer_find(n, handle);
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
  peer *p = nd_peer_find(n, handle);
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
    if (err == VS_OK && out_len > 0) err = nd_queue_copy(p, out, out_len);
    if (err == VS_OK && done) {
      vs_hs_wipe(&p->hs);
      p->ack_id = nd_ack_id_for(n, p->sess.peer_id, now_ms);
      p->sess_no = ++n->sessions;
      p->rx_ms = now_ms; /* node_dup.c: live from here */
      p->st = PEER_READY;
      p->vv_due = true;
      n->stats.handshakes_done++;
      /* In a managed mesh, only members (and devices presenting their
       * admission) stay: node_member.c. */
      err = nd_member_on_ready(n, p, now_ms);
    }
    if (err == VS_ERR_AUTH) nd_peer_close(n, p); /* not of this mesh: it gets nothing more */
  } else {
    err = on_data(n, p, bytes, len, now_ms);
  }
  count_reject(n, err);
  return err;
}
