/* vix-node run: admission of inbound connections (see run.c's file
 * comment, "Admission"): the budgets of unauthenticated connections, the
 * eviction of one without a valid HELLO for a newcomer, and ENet's
 * intercept hook that applies them to every datagram before ENet acts on
 * it. What a datagram asks for is read by run_admit.c (pure, unit-tested
 * alone); the connections are closed through run.c (vn_slot_kill). */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <string.h>

#include "run_daemon.h"

vn_daemon *vn_intercept_daemon; /* ENet's intercept callback takes no context pointer */

/* ---- admission of inbound connections ---- */

bool vn_half_open_state(ENetPeerState st) {
  return st == ENET_PEER_STATE_ACKNOWLEDGING_CONNECT || st == ENET_PEER_STATE_CONNECTION_PENDING ||
         st == ENET_PEER_STATE_CONNECTION_SUCCEEDED;
}

/* An inbound connection not yet authenticated: ENet still connecting it,
 * or connected with the vixsync handshake under way. */
static bool inbound_unauth(const vn_daemon *d, uint32_t si) {
  const ENetPeer *p = &d->host->peers[si];
  const vn_slot *s = &d->slots[si];
  if (s->dial >= 0) return false;
  if (vn_half_open_state(p->state)) return true;
  return p->state == ENET_PEER_STATE_CONNECTED && s->handle != 0 && !s->ready;
}

uint32_t vn_inbound_ready(const vn_daemon *d) {
  uint32_t n = 0;
  for (uint32_t si = 0; si < d->host->peerCount; si++) {
    const vn_slot *s = &d->slots[si];
    if (s->handle != 0 && s->ready && !s->initiator) n++;
  }
  return n;
}

/* Which of two evictable slots goes first: the older, then the lower index. */
static bool evict_before(const vn_daemon *d, uint32_t a, int32_t b) {
  if (b < 0) return true;
  const vn_slot *sa = &d->slots[a], *sb = &d->slots[b];
  return sa->in_seq < sb->in_seq || (sa->in_seq == sb->in_seq && a < (uint32_t)b);
}

/* Unauthenticated inbound connections from `host` among the k in `idx`. */
static uint32_t host_count(const vn_daemon *d, const uint32_t *idx, uint32_t k, enet_uint32 host) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < k; i++) n += d->host->peers[idx[i]].address.host == host ? 1u : 0u;
  return n;
}

/* A CONNECT from `from`: true lets ENet allocate a peer for it (after an
 * eviction if a budget is full), false drops the datagram. The victim is a
 * connection without a valid HELLO: from the newcomer's own address when
 * that address is at UNAUTH_PER_HOST_MAX, else from the address holding the
 * most such connections (so a flood from a few addresses pushes out its own
 * attempts, not an honest device's single one still saying HELLO), the
 * oldest first. O(ENET_PEERS + k^2) per CONNECT, k <= UNAUTH_IN_MAX + 1 in
 * practice: scans of small arrays, no allocation. */
static bool admit_connect(vn_daemon *d, const ENetAddress *from, uint32_t connect_id) {
  uint32_t idx[ENET_PEERS], k = 0, same = 0;
  int32_t free_si = -1;
  for (uint32_t si = 0; si < d->host->peerCount && si < ENET_PEERS; si++) {
    const ENetPeer *p = &d->host->peers[si];
    vn_slot *s = &d->slots[si];
    if (p->state == ENET_PEER_STATE_DISCONNECTED) {
      if (free_si < 0) free_si = (int32_t)si;
      continue;
    }
    if (p->address.host == from->host && p->address.port == from->port && p->connectID == connect_id)
      return true; /* a CONNECT sent again: ENet ignores it, nothing to count */
    if (!inbound_unauth(d, si)) continue;
    if (s->in_connect_id != p->connectID) s->in_seq = 0; /* not the one we admitted: oldest */
    idx[k++] = si;
    if (p->address.host == from->host) same++;
  }
  d->c.connect_requests++;
  bool per_host = same >= UNAUTH_PER_HOST_MAX;
  int32_t victim = -1;
  uint32_t victim_load = 0;
  if (per_host || k >= UNAUTH_IN_MAX) {
    for (uint32_t i = 0; i < k; i++) {
      const vn_slot *s = &d->slots[idx[i]];
      enet_uint32 h = d->host->peers[idx[i]].address.host;
      if (s->hello_ok) continue; /* proved it holds the mesh key: strangers cannot push it out */
      if (per_host && h != from->host) continue;
      uint32_t load = per_host ? same : host_count(d, idx, k, h);
      if (victim < 0 || load > victim_load || (load == victim_load && evict_before(d, idx[i], victim))) {
        victim = (int32_t)idx[i];
        victim_load = load;
      }
    }
    if (victim < 0) {
      if (per_host) d->c.refused_host++;
      else d->c.refused_unauth_full++;
      return false;
    }
    d->c.evicted_no_hello++;
    vn_log(VN_LOG_DEBUG, "peer_evicted", "slot=%d addr=%s reason=no_hello", (int)victim, d->slots[victim].addr);
    vn_slot_kill(d, (uint32_t)victim, "evicted");
    if (free_si < 0 || victim < free_si) free_si = victim;
  }
  if (free_si < 0) {
    d->c.refused_no_slot++;
    return false;
  }
  /* ENet gives a CONNECT the first free peer: stamp it with its turn. */
  vn_slot *s = &d->slots[free_si];
  s->in_connect_id = connect_id;
  s->in_seq = ++d->admit_seq;
  s->hello_ok = false;
  return true;
}

/* ENet's intercept hook: every datagram, before ENet acts on it. Returns 1
 * to drop it, 0 to let ENet have it. */
int vn_on_datagram(ENetHost *host, ENetEvent *ev) {
  (void)ev;
  vn_daemon *d = vn_intercept_daemon;
  assert(d != NULL && d->host == host);
  vn_dgram g;
  vn_dgram_inspect(host->receivedData, host->receivedDataLength, &g);
  if (g.kind == VN_DGRAM_CONNECT) return admit_connect(d, &host->receivedAddress, g.connect_id) ? 0 : 1;
  if (g.kind != VN_DGRAM_PEER || !g.fragment || g.peer_id >= host->peerCount) return 0;
  ENetPeer *p = &host->peers[g.peer_id];
  /* Only the peer's own address may close it (ENet drops the rest). */
  if (p->address.host != host->receivedAddress.host || p->address.port != host->receivedAddress.port) return 0;
  const vn_slot *s = &d->slots[g.peer_id];
  /* A fragment is a packet larger than a datagram, so larger than any
   * handshake frame: ENet would buffer up to maximumWaitingData for it.
   * Not judged here once an inbound peer's HELLO was valid: an honest
   * initiator sends its first DATA frame (a version vector, fragmented when
   * large) right behind AUTH, and this hook runs before ENet hands us AUTH;
   * on_receive judges whole packets in order. A peer we dialled sends DATA
   * only after our AUTH, that is after we were ready. */
  bool unauth_in = inbound_unauth(d, g.peer_id) && !s->hello_ok;
  bool unauth_out = s->dial >= 0 && !s->ready;
  if (!unauth_in && !unauth_out) return 0;
  d->c.closed_oversized++;
  vn_slot_kill(d, g.peer_id, "oversized");
  return 1;
}

/* One line a second at most while connections are refused or evicted. */
void vn_limits_log(vn_daemon *d) {
  const vn_counters *c = &d->c;
  uint64_t sum = c->refused_host + c->refused_unauth_full + c->refused_no_slot + c->evicted_no_hello +
                 c->closed_oversized + c->refused_ready_full;
  if (sum == d->limit_logged || d->now_ms < d->limit_log_ms + LIMIT_LOG_MS) return;
  vn_log(VN_LOG_WARN, "conn_limit",
         "refused_host=%llu refused_unauth_full=%llu refused_no_slot=%llu evicted_no_hello=%llu "
         "closed_oversized=%llu refused_ready_full=%llu",
         (unsigned long long)c->refused_host, (unsigned long long)c->refused_unauth_full,
         (unsigned long long)c->refused_no_slot, (unsigned long long)c->evicted_no_hello,
         (unsigned long long)c->closed_oversized, (unsigned long long)c->refused_ready_full);
  d->limit_logged = sum;
  d->limit_log_ms = d->now_ms;
}
