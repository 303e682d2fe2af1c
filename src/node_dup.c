/* One session per pair of nodes (issue 18; docs/protocol.md, "One session
 * per pair"). Two nodes that dial each other hold two sessions, and
 * anti-entropy pushed every op on both: each receiver got everything twice.
 *
 * Two READY sessions are duplicates when they name the same peer identity
 * AND the driver gave both the same transport address (vs_node_peer_up_addr;
 * ENet dials from the listening socket, so both directions of a pair share
 * one). Without the address two devices that share an identity (a cloned
 * device: docs/protocol.md, "Forks") would look like one, and closing one
 * of them would hide its branch from us; sessions without an address are
 * never taken as duplicates.
 *
 * Of duplicates one is kept, chosen the same way on both ends, from what
 * both ends know:
 *   1. a live session (a message within live_ms) beats a silent one: the
 *      peer restarted and dialled again, and its old connection has not
 *      timed out here yet (the other end has no such session at all);
 *   2. of two sessions dialled by different ends, the one dialled by the
 *      lower public key (memcmp of the identities);
 *   3. of two dialled by the same end (or, 2 tied: two devices of one
 *      identity), the lower rank: a hash of the session's initiator->responder
 *      key, which both ends hold.
 * Only the initiator of a loser closes it, at once: its driver then knows
 * the dial is covered by the session kept (vs_node_close_reason) and does
 * not dial again while that lives. The responder keeps the loser silent
 * (no vector, no runs) and closes it itself only if the initiator has not
 * within grace_ms (an older build, a hostile peer), or once it is silent,
 * or at once when a pair has three sessions or more (no honest pair has:
 * so a key holder reconnecting on and on holds two at most).
 * Both ends never close both: the rule is symmetric, and only one end
 * closes a live loser early.
 *
 * What a peer costs is kept per identity (ack_id: quota, acknowledged seq,
 * WANT and ack budgets), so closing a session loses none of it; what is
 * per session (in-flight runs, acks told, a snapshot transfer) ends with
 * the loser and starts again on the session kept (a snapshot after
 * VS_NODE_SNAP_RETRY_MS). A probation does not restart: the kept session
 * ends it no later than the loser would have.
 *
 * A node that dialled itself holds both ends of one session (its own
 * identity, the same keys): both are closed (VS_NODE_CLOSE_SELF); they
 * would count this node toward its own ack quorum.
 *
 * Cost: a sweep per poll round when two or more sessions are READY, O(P^2)
 * identity compares over VS_NODE_PEERS_MAX slots (2,016 at most), hashes
 * only between duplicates. A hostile key holder reconnecting under one
 * identity from one address closes only its own sessions, one per
 * handshake it completes. */
#include "node_int.h"

#include <sodium.h>

/* A live session hears the peer's vector at least every VV_IDLE_FACTOR
 * vv_interval_ms, idle (wire v6, node_vv.c); a few intervals more for the
 * way. */
static uint64_t live_ms(const vs_node *n) {
  uint64_t k = VV_IDLE_FACTOR + VV_RESEND_FACTOR;
  return n->cfg.vv_interval_ms > UINT64_MAX / k ? UINT64_MAX : k * n->cfg.vv_interval_ms;
}

/* The responder's wait for the initiator to close a loser: past live_ms, so
 * that a stale winner is found silent first (the loser then wins). */
static uint64_t grace_ms(const vs_node *n) { return vs_add_sat_u64(live_ms(n), n->cfg.handshake_timeout_ms); }

static bool alive(const vs_node *n, const peer *p, uint64_t now_ms) {
  return now_ms < vs_add_sat_u64(p->rx_ms, live_ms(n));
}

/* The same for both ends of a session: from its initiator->responder key. */
static uint64_t rank(const peer *p) {
  static const char dom[] = "vixsync/dup-rank/v1";
  uint8_t h[8];
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, sizeof h);
  crypto_generichash_update(&st, (const uint8_t *)dom, sizeof dom - 1);
  crypto_generichash_update(&st, p->initiator ? p->sess.tx_key : p->sess.rx_key, sizeof p->sess.tx_key);
  crypto_generichash_final(&st, h, sizeof h);
  return vs_get_u64le(h);
}

static bool same_pair(const peer *a, const peer *b) {
  return a->has_addr && b->has_addr && memcmp(a->sess.peer_id, b->sess.peer_id, VS_ORIGIN_BYTES) == 0 &&
         memcmp(a->dial_tag, b->dial_tag, DIAL_TAG_BYTES) == 0;
}

/* The session of the two to keep (rules 1-3 above). */
static peer *prefer(const vs_node *n, peer *a, peer *b, uint64_t now_ms) {
  bool la = alive(n, a, now_ms), lb = alive(n, b, now_ms);
  if (la != lb) return la ? a : b;
  if (a->initiator != b->initiator) {
    int c = memcmp(n->cfg.identity.pk, a->sess.peer_id, VS_ORIGIN_BYTES);
    peer *ours = a->initiator ? a : b, *theirs = a->initiator ? b : a;
    if (c != 0) return c < 0 ? ours : theirs;
  }
  uint64_t ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? a : b;
  return a->sess_no > b->sess_no ? a : b; /* fresh keys per connection: not reached */
}

static void close_dup(vs_node *n, peer *p, const peer *kept, vs_node_close_why why) {
  assert(p->st == PEER_READY && p != kept);
  n->stats.sessions_duplicate++;
  p->close_why = (uint8_t)why;
  p->dup_kept = kept != NULL ? kept->handle : 0;
  nd_peer_close(n, p);
}

/* Both ends of a dial of this node to itself: our identity, opposite roles,
 * the same keys. */
static void close_self(vs_node *n, peer *a) {
  if (memcmp(a->sess.peer_id, n->cfg.identity.pk, VS_ORIGIN_BYTES) != 0) return;
  for (uint32_t j = 0; j < VS_NODE_PEERS_MAX; j++) { /* bounded: the slots */
    peer *b = &n->peers[j];
    if (b == a || b->st != PEER_READY || b->initiator == a->initiator) continue;
    if (memcmp(b->sess.peer_id, a->sess.peer_id, VS_ORIGIN_BYTES) != 0) continue;
    if (sodium_memcmp(a->sess.tx_key, b->sess.rx_key, sizeof a->sess.tx_key) != 0) continue;
    close_dup(n, a, NULL, VS_NODE_CLOSE_SELF);
    close_dup(n, b, NULL, VS_NODE_CLOSE_SELF);
    return;
  }
}

/* The losers of the group of `first` (the READY sessions of its pair):
 * silenced, and closed when their turn came; `grouped` gets every member. */
static void settle_group(vs_node *n, uint32_t first, uint64_t now_ms, uint64_t *grouped, uint64_t *losers) {
  peer *a = &n->peers[first], *keep = a;
  uint32_t members = 1;
  for (uint32_t j = first + 1; j < VS_NODE_PEERS_MAX; j++) { /* bounded: the slots */
    peer *b = &n->peers[j];
    if (b->st != PEER_READY || !same_pair(a, b)) continue;
    *grouped |= 1ull << j;
    members++;
    keep = prefer(n, keep, b, now_ms);
  }
  if (members < 2) return;
  for (uint32_t j = first; j < VS_NODE_PEERS_MAX; j++) {
    peer *l = &n->peers[j];
    if (l == keep || l->st != PEER_READY || !same_pair(a, l)) continue;
    *losers |= 1ull << j;
    if (!l->dup_doomed) {
      l->dup_doomed = true;
      l->dup_since_ms = now_ms;
    }
    if (keep->probation && l->probation && l->probation_end_ms < keep->probation_end_ms)
      keep->probation_end_ms = l->probation_end_ms; /* a reconnect does not extend a probation */
    /* Two ends dialling each other make two sessions; a third is a driver
     * dialling on or a hostile key holder: no wait for those. */
    if (l->initiator || members > 2 || !alive(n, l, now_ms) ||
        now_ms >= vs_add_sat_u64(l->dup_since_ms, grace_ms(n)))
      close_dup(n, l, keep, VS_NODE_CLOSE_DUPLICATE);
  }
}

/* Every poll round (maintain): duplicates are silenced and closed, and a
 * session silenced whose rival is gone speaks again. */
void nd_dup_sweep(vs_node *n, uint64_t now_ms) {
  _Static_assert(VS_NODE_PEERS_MAX <= 64u, "a bit per slot in a uint64_t");
  uint32_t ready = 0;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) ready += n->peers[i].st == PEER_READY ? 1u : 0u;
  uint64_t grouped = 0, losers = 0;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX && ready >= 2; i++) {
    peer *a = &n->peers[i];
    if (a->st == PEER_READY) close_self(n, a);
    if (a->st != PEER_READY || ((grouped >> i) & 1u)) continue;
    grouped |= 1ull << i;
    settle_group(n, i, now_ms, &grouped, &losers);
  }
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    peer *p = &n->peers[i];
    if (p->st != PEER_READY || !p->dup_doomed || ((losers >> i) & 1u)) continue;
    p->dup_doomed = false; /* its rival is gone: it carries on */
    p->vv_due = true;
  }
}

/* When a silenced session's fate may change: its grace ends, or it falls
 * silent itself. (The winner's own timers wake the node at least every
 * VV_IDLE_FACTOR vv_interval_ms, so its falling silent is seen in time.) */
uint64_t nd_dup_wake(const vs_node *n, const peer *p) {
  assert(p->dup_doomed);
  uint64_t a = vs_add_sat_u64(p->dup_since_ms, grace_ms(n)), b = vs_add_sat_u64(p->rx_ms, live_ms(n));
  return a < b ? a : b;
}

vs_node_close_why vs_node_close_reason(const vs_node *n, uint32_t *kept_out) {
  if (kept_out != NULL) *kept_out = 0;
  if (n == NULL) return VS_NODE_CLOSE_OTHER;
  if (kept_out != NULL && n->closed_why == VS_NODE_CLOSE_DUPLICATE) *kept_out = n->closed_kept;
  return (vs_node_close_why)n->closed_why;
}
