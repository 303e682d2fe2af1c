/* vix-node run: the ENet driver around the sans-IO vs_node.
 *
 * One thread runs the node, one poll(2) loop over four descriptors: the
 * ENet UDP socket, the nudge socket (CLI writes in other processes), a
 * self-pipe for SIGINT/SIGTERM/SIGHUP and the receive pipeline's pipe. Every round
 * it services ENet, feeds each event to the node, drains vs_node_poll
 * (SEND -> enet_peer_send, CLOSE -> disconnect)
 * and sleeps until the earliest of the node's wake time, a dial's next
 * attempt, the half-open sweep, the status file and the outbox purge
 * (run_purge.c); a packet, a nudge or a signal wakes it sooner.
 *
 * Connections get small integer handles (the node's `peer`), lowest free
 * first; ENet peers are found by their index in host->peers. Dials (--peer)
 * reconnect with a deterministic backoff. Every SWEEP_MS, ENet peers stuck
 * short of CONNECTED (or in a disconnect) past HALF_OPEN_MS are reset;
 * connected peers that do not finish the vixsync handshake are closed by the
 * node (no valid HELLO within hello_timeout_ms, 1 s; no handshake within
 * handshake_timeout_ms, 5 s).
 *
 * Admission (strangers without the mesh key must not lock peers out): an
 * inbound connection is "unauthenticated" from the CONNECT datagram that
 * makes ENet allocate it until its vixsync handshake is done. ENet's
 * intercept hook sees every datagram first (vn_on_datagram, run_inbound.c): at most
 * UNAUTH_IN_MAX unauthenticated connections, at most UNAUTH_PER_HOST_MAX of
 * them from one IP address (not per address *and port*: honest devices
 * behind one NAT address each get in once their HELLO is valid). When a
 * budget is full the oldest one without a valid HELLO is evicted for the
 * newcomer; when none is evictable the CONNECT is dropped. Authenticated
 * inbound peers have their own budget, and DIAL_RESERVED_MAX node slots stay
 * free for our own dials. An unauthenticated connection that sends a packet
 * larger than the largest handshake frame (or any fragment) is closed. Each
 * refusal and eviction is a counter in run.json (status --json).
 *
 * Receive pipeline (rx.h): a DATA frame of an established session of at
 * least VIX_NODE_RX_MIN_BYTES (default RX_MIN_BYTES_DEFAULT; 0: every one)
 * is opened, decoded, hashed and verified on a second thread while this one
 * applies the frames before it; once a connection has a frame in the
 * pipeline, its later frames follow it there, so each connection's frames
 * reach the node in the order they came. Small frames (acknowledgements,
 * single writes) skip the hop while nothing of theirs is in the pipeline.
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "run_daemon.h"
#include "vixsync/snapshot.h"

/* An own op a re-bootstrap took out of the chain (docs/storage.md,
 * "Re-bootstrap and orphans"): once, after the rebase committed. */
static vs_err orphan_log(void *ctx, const vs_orphan *o) {
  (void)ctx;
  vn_log(VN_LOG_WARN, "orphan", "id=%llu seq=%llu hlc=%llu note=not_sent_see_vix-node_orphans",
         (unsigned long long)o->id, (unsigned long long)o->seq, (unsigned long long)o->hlc);
  return VS_OK;
}

/* ---- signals: a flag and a self-pipe, so poll wakes ---- */

static volatile sig_atomic_t stop_signal, hup_signal;
static int stop_pipe_w = -1;

static void on_stop_signal(int sig) {
  int saved = errno;
  if (sig == SIGHUP) hup_signal = 1; /* no reload yet: logged and ignored by the loop */
  else stop_signal = sig;
  if (stop_pipe_w >= 0) {
    ssize_t w = write(stop_pipe_w, "s", 1);
    (void)w; /* the pipe is non-blocking; a full pipe already wakes poll */
  }
  errno = saved;
}

/* ---- state (the types are in run_daemon.h) ---- */

/* The node's clock. Outbox times and the HLC are wall-clock milliseconds
 * (write.h), and the node's timers need time that never stands still nor
 * goes back: advance by the monotonic clock, and jump forward to the wall
 * clock when it is ahead (a wall clock stepped back does not freeze us). */
static uint64_t tick_clock(vn_daemon *d) {
  uint64_t mono = vn_mono_ms(), wall = vn_wall_ms();
  uint64_t t = d->now_ms + (mono - d->mono_ms);
  d->now_ms = wall > t ? wall : t;
  d->mono_ms = mono;
  return d->now_ms;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static void addr_text(const ENetAddress *a, char out[ADDR_TEXT_MAX]) {
  char ip[48];
  if (enet_address_get_host_ip(a, ip, sizeof ip) != 0) snprintf(ip, sizeof ip, "?");
  snprintf(out, ADDR_TEXT_MAX, "%s:%u", ip, (unsigned)a->port);
}

static void slot_clear(vn_slot *s) {
  memset(s, 0, sizeof *s);
  s->dial = -1;
}

/* ---- handles: lowest free, never from addresses or pointers ---- */

static uint32_t handle_alloc(vn_daemon *d, uint32_t si) {
  for (uint32_t h = 1; h <= HANDLES_MAX; h++) {
    if (d->handle_slot[h] == 0) {
      d->handle_slot[h] = si + 1;
      return h;
    }
  }
  return 0;
}

static void handle_free(vn_daemon *d, uint32_t h) {
  assert(h >= 1 && h <= HANDLES_MAX && d->handle_slot[h] != 0);
  d->handle_slot[h] = 0;
}

/* ---- dials: deterministic exponential backoff ---- */

/* Delay before attempt `attempt` (>= 1) of dial `text` by node `self`
 * (hex id): 200 ms doubling to 5 s, minus up to a quarter. The jitter is a
 * hash of (node, address, attempt), not rand(): the schedule is
 * reproducible, and nodes redialling one address after its restart still
 * spread out. A good handshake clears the failures, unless its session
 * ends within SESSION_SHORT_MS (dial_lost). */
static uint64_t backoff_ms(const char *self, const char *text, uint32_t attempt) {
  assert(attempt >= 1);
  uint64_t d = BACKOFF_MIN_MS;
  for (uint32_t i = 1; i < attempt && d < BACKOFF_MAX_MS; i++) d *= 2; /* bounded: stops at the cap */
  d = min_u64(d, BACKOFF_MAX_MS);
  uint8_t in[4] = {(uint8_t)attempt, (uint8_t)(attempt >> 8), (uint8_t)(attempt >> 16), (uint8_t)(attempt >> 24)};
  uint8_t h[8];
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, sizeof h);
  crypto_generichash_update(&st, (const uint8_t *)self, strlen(self) + 1); /* with its NUL: a separator */
  crypto_generichash_update(&st, (const uint8_t *)text, strlen(text));
  crypto_generichash_update(&st, in, sizeof in);
  crypto_generichash_final(&st, h, sizeof h);
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = (u << 8) | h[i];
  return d - (d / 4) * (u % 1000u) / 1000u;
}

static void dial_lost(vn_daemon *d, int32_t di) {
  assert(di >= 0 && (uint32_t)di < d->dial_count);
  vn_dial *dl = &d->dials[di];
  dl->slot = -1;
  if (dl->ready_ms != 0 && d->now_ms - dl->ready_ms < SESSION_SHORT_MS) dl->attempt = dl->attempt_cleared;
  dl->ready_ms = 0;
  if (dl->attempt < UINT32_MAX) dl->attempt++;
  uint64_t delay = backoff_ms(d->node_hex, dl->text, dl->attempt);
  dl->next_ms = d->now_ms + delay;
  vn_log(VN_LOG_DEBUG, "dial_wait", "addr=%s attempt=%u delay_ms=%llu", dl->text, dl->attempt,
         (unsigned long long)delay);
}

/* A dial covered by a session the node kept in place of ours (one session
 * per pair): while it lives the address is not dialled, so two nodes that
 * name each other do not redial and close in turn. */
static bool dial_covered(vn_daemon *d, vn_dial *dl) {
  if (dl->cover_conn == 0) return false;
  const vn_slot *k = &d->slots[dl->cover_slot];
  if (k->handle != 0 && k->ready && k->conn == dl->cover_conn) return true;
  dl->cover_conn = 0; /* it ended: dial again, with the backoff dial_lost counted */
  uint64_t delay = backoff_ms(d->node_hex, dl->text, dl->attempt > 0 ? dl->attempt : 1u);
  dl->next_ms = d->now_ms + delay;
  vn_log(VN_LOG_DEBUG, "dial_uncovered", "addr=%s delay_ms=%llu", dl->text, (unsigned long long)delay);
  return false;
}

/* The node closed slot `si` as a duplicate of handle `kept`: its dial (and
 * any dial covered by it) waits for the session kept. */
static void dial_cover(vn_daemon *d, uint32_t si, uint32_t kept) {
  if (kept < 1 || kept > HANDLES_MAX || d->handle_slot[kept] == 0) return;
  uint32_t ks = d->handle_slot[kept] - 1;
  const vn_slot *s = &d->slots[si];
  for (uint32_t i = 0; i < d->dial_count; i++) { /* bounded: the dials */
    vn_dial *dl = &d->dials[i];
    bool mine = s->dial == (int32_t)i, via = dl->cover_conn != 0 && dl->cover_slot == si && dl->cover_conn == s->conn;
    if (!mine && !via) continue;
    dl->cover_conn = d->slots[ks].conn;
    dl->cover_slot = ks;
    if (mine) d->c.dials_covered++;
    vn_log(VN_LOG_INFO, "dial_covered", "addr=%s peer=%u", dl->text, kept);
  }
}

static void dials_due(vn_daemon *d) {
  for (uint32_t i = 0; i < d->dial_count; i++) {
    vn_dial *dl = &d->dials[i];
    if (dl->slot >= 0 || dl->self || dial_covered(d, dl) || d->now_ms < dl->next_ms) continue;
    d->c.dial_attempts++;
    ENetPeer *p = enet_host_connect(d->host, &dl->addr, 1, 0);
    if (p == NULL) { /* every slot taken (a flood?): try again later */
      vn_log(VN_LOG_WARN, "dial_failed", "addr=%s reason=no_free_slot", dl->text);
      dial_lost(d, (int32_t)i);
      continue;
    }
    uint32_t si = (uint32_t)(p - d->host->peers);
    vn_slot *s = &d->slots[si];
    slot_clear(s);
    s->dial = (int32_t)i;
    snprintf(s->addr, sizeof s->addr, "%s", dl->text);
    dl->slot = (int32_t)si;
    enet_peer_timeout(p, 0, ENET_TIMEOUT_MIN_MS, ENET_TIMEOUT_MAX_MS);
    vn_log(VN_LOG_DEBUG, "dial", "addr=%s attempt=%u", dl->text, dl->attempt + 1);
  }
}

static uint64_t dials_next(const vn_daemon *d) {
  uint64_t t = UINT64_MAX;
  for (uint32_t i = 0; i < d->dial_count; i++) /* a covered dial waits for an event (its cover's end) */
    if (d->dials[i].slot < 0 && d->dials[i].cover_conn == 0 && !d->dials[i].self) t = min_u64(t, d->dials[i].next_ms);
  return t;
}

/* ---- connections ---- */

/* Tell the node the connection of slot `si` is gone (if it knows it). */
static void conn_forget(vn_daemon *d, uint32_t si, const char *reason) {
  vn_slot *s = &d->slots[si];
  if (s->handle == 0) return;
  (void)vs_node_peer_down(d->node, s->handle, d->now_ms);
  vn_log(s->ready ? VN_LOG_INFO : VN_LOG_DEBUG, "peer_down", "peer=%u addr=%s reason=%s", s->handle, s->addr, reason);
  handle_free(d, s->handle);
  s->handle = 0;
  s->ready = false;
  s->rx_pending = 0; /* its jobs in the pipeline are dropped when they come back */
  d->status_dirty = true;
}

/* Forget slot `si` whole: the node's peer and the dial's attempt. `reset`:
 * also reset the ENet peer (no event will come for it). */
static void slot_drop(vn_daemon *d, uint32_t si, bool reset, const char *reason) {
  vn_slot *s = &d->slots[si];
  conn_forget(d, si, reason);
  if (s->dial >= 0) dial_lost(d, s->dial);
  if (reset) enet_peer_reset(&d->host->peers[si]);
  slot_clear(s);
  d->kick = true;
}

/* Close slot `si` at once: one DISCONNECT datagram, then the ENet peer is
 * reset rather than left to linger (an unauthenticated connection holds
 * nothing worth flushing, and its slot is wanted). */
void vn_slot_kill(vn_daemon *d, uint32_t si, const char *reason) {
  vn_slot *s = &d->slots[si];
  conn_forget(d, si, reason);
  if (s->dial >= 0) dial_lost(d, s->dial);
  enet_peer_disconnect_now(&d->host->peers[si], 0);
  slot_clear(s);
  d->kick = true;
}

/* ---- connection events ---- */

static void on_connect(vn_daemon *d, ENetPeer *p) {
  uint32_t si = (uint32_t)(p - d->host->peers);
  vn_slot *s = &d->slots[si];
  conn_forget(d, si, "replaced"); /* defensive: nothing to forget unless an event was missed */
  const ENetAddress *want = s->dial >= 0 ? &d->dials[s->dial].addr : NULL;
  if (want != NULL && (p->address.host != want->host || p->address.port != want->port)) {
    dial_lost(d, s->dial); /* defensive: the slot is not our attempt any more */
    s->dial = -1;
  }
  if (s->dial < 0) addr_text(&p->address, s->addr);
  s->initiator = s->dial >= 0;
  s->hello_ok = false;
  uint32_t h = handle_alloc(d, si);
  /* The handshake cookie is bound to the address and port (network order). */
  uint8_t addr[6];
  memcpy(addr, &p->address.host, 4);
  addr[4] = (uint8_t)(p->address.port >> 8);
  addr[5] = (uint8_t)(p->address.port & 0xffu);
  vs_err err = h == 0 ? VS_ERR_LIMIT : vs_node_peer_up_addr(d->node, h, s->initiator, addr, sizeof addr, d->now_ms);
  if (err != VS_OK) {
    if (h != 0) handle_free(d, h);
    d->c.refused_full++;
    vn_log(VN_LOG_WARN, "peer_refused", "addr=%s reason=%s", s->addr, vs_err_name(err));
    slot_drop(d, si, true, "refused");
    return;
  }
  s->handle = h;
  s->conn = ++d->conns;
  s->rx_pending = 0;
  s->up_ms = d->now_ms;
  if (s->initiator) d->c.connections_out++;
  else d->c.connections_in++;
  enet_peer_timeout(p, 0, ENET_TIMEOUT_MIN_MS, ENET_TIMEOUT_MAX_MS);
  vn_log(VN_LOG_DEBUG, "connected", "peer=%u addr=%s dir=%s", h, s->addr, s->initiator ? "out" : "in");
  d->status_dirty = true;
}

/* What the node said of a frame of slot s: a failure of ours is an error,
 * a rejected frame a debug line. */
static void frame_result(vn_slot *s, vs_err err, const uint8_t *data, size_t bytes) {
  uint8_t first = bytes > 0 ? data[0] : 0;
  if (err == VS_ERR_NOMEM || err == VS_ERR_STORE || err == VS_ERR_FULL || err == VS_ERR_CRYPTO) {
    vn_log(VN_LOG_ERROR, "frame_failed", "peer=%u err=%s", s->handle, vs_err_name(err));
  } else if (err == VS_ERR_VERSION && first > 0 && first < 16 && !s->version_logged) {
    /* Another protocol version (a plausible one: garbage is not logged at
     * this level): say which, once per connection, where an operator sees. */
    s->version_logged = true;
    vn_log(VN_LOG_WARN, "wire_version_mismatch", "peer=%u addr=%s theirs=%u ours=%u note=\"upgrade one of the two\"",
           s->handle, s->addr, (unsigned)first, (unsigned)VS_WIRE_VERSION);
  } else if (err != VS_OK) {
    vn_log(VN_LOG_DEBUG, "frame_rejected", "peer=%u addr=%s bytes=%zu err=%s", s->handle, s->addr, bytes,
           vs_err_name(err));
  }
}

/* A job back from the receive pipeline: applied if its connection lives. */
static void rx_apply(vn_daemon *d, vn_rx_job *j) {
  vn_slot *s = &d->slots[j->slot];
  if (s->handle == j->handle && s->conn == j->conn) {
    assert(s->rx_pending > 0);
    s->rx_pending--;
    vs_err err = j->prep != NULL ? vs_node_on_prepared(d->node, s->handle, j->prep, d->now_ms)
                                 : vs_node_on_frame(d->node, s->handle, j->pkt->data, j->pkt->dataLength, d->now_ms);
    d->c.rx_pipelined++;
    frame_result(s, err, j->pkt->data, (size_t)j->pkt->dataLength);
    d->kick = true;
  }
  vn_rx_job_free(j);
}

/* Apply the finished jobs (bounded by VN_RX_JOBS_MAX in flight). */
static void rx_drain(vn_daemon *d) {
  for (vn_rx_job *j; d->rx != NULL && (j = vn_rx_take(d->rx, false)) != NULL;) rx_apply(d, j);
}

/* Hand a frame of a ready session to the pipeline; false: apply it here
 * (no pipeline, a small frame with nothing of its connection queued, or no
 * memory). Takes the packet on true. */
static bool rx_submit(vn_daemon *d, uint32_t si, ENetPacket *pkt) {
  vn_slot *s = &d->slots[si];
  if (d->rx == NULL || !s->ready || (s->rx_pending == 0 && pkt->dataLength < d->rx_min)) return false;
  vn_rx_job *j = calloc(1, sizeof *j);
  if (j == NULL && s->rx_pending == 0) return false; /* nothing to overtake: apply it here */
  if (j == NULL) { /* dropped: its ops come again with anti-entropy */
    vn_log(VN_LOG_ERROR, "frame_failed", "peer=%u err=%s", s->handle, vs_err_name(VS_ERR_NOMEM));
    enet_packet_destroy(pkt);
    return true;
  }
  j->slot = si;
  j->conn = s->conn;
  j->handle = s->handle;
  j->pkt = pkt;
  j->have_key = vs_node_rx_key(d->node, s->handle, &j->key) == VS_OK;
  /* Full: apply the oldest job first (the worker is busy, so wait). */
  while (!vn_rx_submit(d->rx, j)) rx_apply(d, vn_rx_take(d->rx, true));
  s->rx_pending++;
  return true;
}

/* The frame that completes the handshake on our side names the peer: REPLY
 * (initiator: id_r at byte 34) or AUTH (responder: id_i at byte 2), see
 * wire.h; it is authentic once the node accepted it. Returns true when the
 * packet was handed to the receive pipeline (the caller must not free it). */
static bool on_receive(vn_daemon *d, ENetPeer *p, ENetPacket *pkt) {
  uint32_t si = (uint32_t)(p - d->host->peers);
  vn_slot *s = &d->slots[si];
  if (s->handle == 0) return false; /* closed by the node: late frames are dropped */
  if (!s->ready && pkt->dataLength > HS_FRAME_BYTES_MAX) { /* not a handshake frame: not of the mesh */
    d->c.closed_oversized++;
    vn_log(VN_LOG_DEBUG, "peer_closed", "peer=%u addr=%s reason=oversized bytes=%zu", s->handle, s->addr,
           (size_t)pkt->dataLength);
    vn_slot_kill(d, si, "oversized");
    return false;
  }
  if (rx_submit(d, si, pkt)) return true;
  uint8_t type = 0;
  uint8_t want = s->initiator ? VS_FRAME_REPLY : VS_FRAME_AUTH;
  bool finishing = !s->ready && vs_frame_type(pkt->data, pkt->dataLength, &type) == VS_OK && type == want;
  vs_err err = vs_node_on_frame(d->node, s->handle, pkt->data, pkt->dataLength, d->now_ms);
  /* A HELLO2 with a valid cookie proves the mesh key (a HELLO, which anyone
   * can replay, does not): from then on strangers cannot push it out. */
  if (err == VS_OK && !s->ready && !s->initiator && type == VS_FRAME_HELLO2) s->hello_ok = true;
  if (err == VS_OK && finishing && !s->initiator && vn_inbound_ready(d) >= d->ready_in_max) {
    d->c.refused_ready_full++;
    vn_log(VN_LOG_WARN, "peer_refused", "addr=%s reason=ready_full max=%u", s->addr, d->ready_in_max);
    vn_slot_kill(d, si, "ready_full");
    return false;
  }
  if (err == VS_OK && finishing) {
    size_t at = s->initiator ? 2u + 32u : 2u;
    assert(pkt->dataLength >= at + VS_ORIGIN_BYTES); /* the node accepted a whole frame */
    memcpy(s->node_id, pkt->data + at, VS_ORIGIN_BYTES);
    s->ready = true;
    s->up_ms = d->now_ms;
    if (s->dial >= 0) {
      vn_dial *dl = &d->dials[s->dial];
      dl->attempt_cleared = dl->attempt;
      dl->attempt = 0;
      dl->ready_ms = d->now_ms > 0 ? d->now_ms : 1u;
    }
    char hex[VS_NODE_ID_HEX_BYTES];
    vs_hex_encode(s->node_id, VS_ORIGIN_BYTES, hex);
    vn_log(VN_LOG_INFO, "peer_up", "peer=%u addr=%s dir=%s node=%.16s", s->handle, s->addr,
           s->initiator ? "out" : "in", hex);
    d->status_dirty = true;
  } else {
    frame_result(s, err, pkt->data, (size_t)pkt->dataLength);
  }
  return false;
}

static void on_event(vn_daemon *d, ENetEvent *ev) {
  switch (ev->type) {
    case ENET_EVENT_TYPE_CONNECT: on_connect(d, ev->peer); break;
    case ENET_EVENT_TYPE_RECEIVE:
      if (!on_receive(d, ev->peer, ev->packet)) enet_packet_destroy(ev->packet);
      break;
    case ENET_EVENT_TYPE_DISCONNECT:
      slot_drop(d, (uint32_t)(ev->peer - d->host->peers), false, "disconnected");
      break;
    case ENET_EVENT_TYPE_NONE: break;
  }
  d->kick = true;
}

/* ---- the node's outputs ---- */

static void out_send(vn_daemon *d, uint32_t h, const uint8_t *bytes, size_t len) {
  assert(h >= 1 && h <= HANDLES_MAX && d->handle_slot[h] != 0); /* the node only names live handles */
  uint32_t si = d->handle_slot[h] - 1;
  ENetPeer *p = &d->host->peers[si];
  ENetPacket *pkt = enet_packet_create(bytes, len, ENET_PACKET_FLAG_RELIABLE);
  if (pkt != NULL && enet_peer_send(p, 0, pkt) == 0) return;
  if (pkt != NULL) enet_packet_destroy(pkt); /* a failed send leaves the packet to us */
  d->c.send_errors++;
  /* The reliable stream now has a hole: this session cannot go on. The
   * dial, if any, waits for the disconnect event. */
  vn_log(VN_LOG_WARN, "send_failed", "peer=%u addr=%s bytes=%zu", h, d->slots[si].addr, len);
  conn_forget(d, si, "send_failed");
  enet_peer_disconnect(p, 0);
}

static void out_close(vn_daemon *d, uint32_t h) {
  assert(h >= 1 && h <= HANDLES_MAX && d->handle_slot[h] != 0);
  uint32_t si = d->handle_slot[h] - 1;
  vn_slot *s = &d->slots[si];
  /* The node has forgotten the handle already. */
  uint32_t kept = 0;
  vs_node_close_why why = vs_node_close_reason(d->node, &kept);
  const char *reason = why == VS_NODE_CLOSE_DUPLICATE ? "duplicate" : why == VS_NODE_CLOSE_SELF ? "self" : "closed_by_node";
  vn_log(VN_LOG_INFO, s->ready ? "peer_down" : "handshake_failed", "peer=%u addr=%s reason=%s", h, s->addr, reason);
  if (why == VS_NODE_CLOSE_DUPLICATE) dial_cover(d, si, kept);
  if (why == VS_NODE_CLOSE_SELF && s->dial >= 0) {
    d->dials[s->dial].self = true;
    vn_log(VN_LOG_WARN, "dial_self", "addr=%s note=\"this node's own address: not dialled again\"", s->addr);
  }
  bool was_ready = s->ready;
  handle_free(d, h);
  s->handle = 0;
  s->ready = false;
  s->rx_pending = 0;
  d->status_dirty = true;
  if (was_ready) enet_peer_disconnect_later(&d->host->peers[si], 0); /* flushes what is queued first */
  else vn_slot_kill(d, si, "closed_by_node"); /* a failed handshake: free the slot now */
}

static void node_drain(vn_daemon *d) {
  for (uint32_t i = 0; i < OUTS_PER_DRAIN; i++) {
    vs_node_out out;
    uint64_t wake = UINT64_MAX;
    vs_err err = vs_node_poll(d->node, d->now_ms, &out, &wake);
    if (err != VS_OK) {
      /* Storage trouble (a full store?): nothing is lost, the node retries
       * at its next poll; say so once in a while, not every round. */
      if (err != d->node_err || d->now_ms >= d->node_err_ms + NODE_ERR_LOG_MS) {
        vn_log(VN_LOG_ERROR, "node_error", "err=%s msg=\"%s\"", vs_err_name(err), vs_strerror(err));
        d->node_err = err;
        d->node_err_ms = d->now_ms;
      }
      wake = min_u64(wake, d->now_ms + 100u); /* try again soon, not in a spin */
    }
    if (out.kind == VS_NODE_OUT_NONE) {
      d->node_wake_ms = wake;
      return;
    }
    if (out.kind == VS_NODE_OUT_SEND) out_send(d, out.peer, out.bytes, out.bytes_len);
    else out_close(d, out.peer);
  }
  d->node_wake_ms = d->now_ms; /* more queued: after a turn of the network */
}

/* ---- half-open sweep ---- */

/* A managed mesh's key moved (a rekey written here or received, a box
 * opened): one log line, and run.json soon. */
static void key_watch(vn_daemon *d) {
  vs_node_stats st;
  vs_node_stats_get(d->node, &st);
  uint64_t now[3] = {st.mesh_epoch, st.key_epoch, st.rekeys_issued};
  if (memcmp(now, d->key_seen, sizeof now) == 0) return;
  memcpy(d->key_seen, now, sizeof now);
  d->status_dirty = true;
  vn_log(VN_LOG_INFO, "mesh_key", "mesh_epoch=%llu key_epoch=%llu rekeys_issued=%llu", (unsigned long long)now[0],
         (unsigned long long)now[1], (unsigned long long)now[2]);
}

static void sweep(vn_daemon *d) {
  uint32_t reset = 0, live = 0;
  for (uint32_t si = 0; si < d->host->peerCount; si++) {
    ENetPeer *p = &d->host->peers[si];
    vn_slot *s = &d->slots[si];
    if (p->state != ENET_PEER_STATE_DISCONNECTED) live++;
    if (p->state != s->seen_state || p->connectID != s->seen_connect_id) {
      s->seen_state = p->state;
      s->seen_connect_id = p->connectID;
      s->seen_since_ms = d->now_ms;
      continue;
    }
    if (p->state == ENET_PEER_STATE_DISCONNECTED) {
      if (s->handle != 0 || s->dial >= 0) slot_drop(d, si, false, "reset"); /* reset without an event */
      continue;
    }
    if (p->state == ENET_PEER_STATE_CONNECTED || d->now_ms - s->seen_since_ms < HALF_OPEN_MS) continue;
    /* Stuck: an attempt nobody completes (a flood, or a dial to a dead
     * address) or a disconnect nobody acknowledges. */
    bool flood = s->dial < 0 && s->handle == 0 && vn_half_open_state(p->state);
    if (flood) {
      d->c.half_open_resets++;
      reset++;
    } else {
      d->c.stale_resets++;
      vn_log(VN_LOG_DEBUG, "peer_reset", "slot=%u state=%d addr=%s", si, (int)p->state, s->addr);
    }
    slot_drop(d, si, true, "stuck");
  }
  if (reset > 0)
    vn_log(VN_LOG_INFO, "half_open_reset", "count=%u total=%llu", reset, (unsigned long long)d->c.half_open_resets);
  d->enet_live = live;
  d->sweep_next_ms = d->now_ms + SWEEP_MS;
  vn_limits_log(d);
  key_watch(d);
}

/* ---- the loop ---- */

/* Handle ENet events until none is pending (bounded per round). */
static void service(vn_daemon *d) {
  for (uint32_t i = 0; i < EVENTS_PER_ROUND; i++) {
    ENetEvent ev;
    int rc = enet_host_service(d->host, &ev, 0);
    if (rc < 0) {
      vn_log(VN_LOG_WARN, "enet_error", "errno=%d", errno);
      return;
    }
    if (rc == 0) return;
    on_event(d, &ev);
  }
  d->kick = true; /* events left: the next round comes at once */
}

/* Sleep until the next thing to do, a packet, a nudge or a signal. */
static void wait_round(vn_daemon *d) {
  uint64_t next = d->node_wake_ms;
  next = min_u64(next, dials_next(d));
  next = min_u64(next, d->status_next_ms);
  next = min_u64(next, vn_purge_next(d));
  if (d->enet_live > 0) next = min_u64(next, d->sweep_next_ms);
  uint64_t cap = d->enet_live > 0 ? ENET_SLEEP_MS : IDLE_SLEEP_MS;
  uint64_t now = tick_clock(d);
  /* Nudges are coalesced: the socket is looked at again NUDGE_GAP_MS after
   * a wake, and one wake drains whatever came meanwhile, so a local flood
   * of datagrams costs at most 1000 / NUDGE_GAP_MS wakes a second. */
  bool nudge_on = d->nudge_fd >= 0 && now >= d->nudge_next_ms;
  if (d->nudge_fd >= 0 && !nudge_on) cap = min_u64(cap, d->nudge_next_ms - now);
  int timeout = d->kick ? 0 : (int)(next <= now ? 0 : min_u64(next - now, cap));
  struct pollfd fds[4] = {{d->host->socket, POLLIN, 0},
                          {d->stop_fd, POLLIN, 0},
                          {d->rx != NULL ? vn_rx_fd(d->rx) : -1, POLLIN, 0}, /* poll skips fd -1 */
                          {d->nudge_fd, POLLIN, 0}};
  nfds_t n = nudge_on ? 4 : 3;
  int rc = poll(fds, n, timeout);
  if (rc < 0 && errno != EINTR) vn_log(VN_LOG_WARN, "poll_error", "errno=%d", errno);
  if (rc > 0 && (fds[1].revents & POLLIN)) { /* a signal: the loop reads its flag */
    char b[16];
    for (uint32_t i = 0; i < 64 && read(d->stop_fd, b, sizeof b) > 0; i++) continue;
  }
  if (rc > 0 && (fds[2].revents & POLLIN)) d->kick = true; /* finished frames: rx_drain takes them */
  if (rc > 0 && n == 4 && (fds[3].revents & POLLIN)) {
    uint32_t got = vn_nudge_drain(d->nudge_fd, NUDGES_PER_WAKE);
    d->c.nudges += got;
    d->nudge_next_ms = tick_clock(d) + NUDGE_GAP_MS;
    if (got > 0) {
      d->c.nudge_wakes++;
      d->kick = true;
      vn_log(VN_LOG_DEBUG, "nudge", "count=%u", got);
    }
  }
}

/* SIGHUP (systemd's reload): there is no reload yet; say so, go on. */
static void hup_check(vn_daemon *d) {
  if (!hup_signal) return;
  hup_signal = 0;
  d->c.sighups++;
  vn_log(VN_LOG_INFO, "sighup", "action=ignored note=\"reload is not supported; restart to apply changes\"");
}

static void run_loop(vn_daemon *d) {
  /* Runs until a signal: each round is bounded (events, outputs, dials). */
  while (!stop_signal) {
    tick_clock(d);
    hup_check(d);
    service(d);
    rx_drain(d);
    dials_due(d);
    if (d->now_ms >= d->sweep_next_ms) sweep(d);
    if (d->kick || d->now_ms >= d->node_wake_ms) {
      d->kick = false;
      node_drain(d);
    }
    vn_purge_tick(d);
    vn_status_maybe(d);
    enet_host_flush(d->host); /* send what the node queued */
    wait_round(d);
  }
}

/* Disconnect every peer, wait a little for their acknowledgement. */
static void stop_peers(vn_daemon *d) {
  uint32_t connected = 0;
  for (uint32_t si = 0; si < d->host->peerCount; si++) {
    ENetPeer *p = &d->host->peers[si];
    if (p->state == ENET_PEER_STATE_CONNECTED) {
      enet_peer_disconnect(p, 0);
      connected++;
    }
  }
  uint64_t deadline = vn_mono_ms() + STOP_LINGER_MS;
  for (uint32_t round = 0; connected > 0 && round < 1000 && vn_mono_ms() < deadline; round++) {
    ENetEvent ev;
    int rc = enet_host_service(d->host, &ev, 10);
    if (rc < 0) break;
    if (rc == 0) continue;
    if (ev.type == ENET_EVENT_TYPE_RECEIVE) enet_packet_destroy(ev.packet);
    if (ev.type == ENET_EVENT_TYPE_DISCONNECT && connected > 0) connected--;
  }
}

static bool install_signals(vn_daemon *d) {
  int pfd[2];
  if (pipe(pfd) != 0) return false;
  for (int i = 0; i < 2; i++) {
    (void)fcntl(pfd[i], F_SETFD, FD_CLOEXEC);
    (void)fcntl(pfd[i], F_SETFL, O_NONBLOCK);
  }
  d->stop_fd = pfd[0];
  stop_pipe_w = pfd[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: poll returns EINTR */
  return sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0 && sigaction(SIGHUP, &sa, NULL) == 0;
}

static int open_host(vn_daemon *d, const char *listen_text, const ENetAddress *listen) {
  d->host = enet_host_create(listen, ENET_PEERS, 1, 0, 0);
  if (d->host == NULL) {
    vn_errorf("run", "cannot listen on %s (address in use or not available)", listen_text);
    return VN_EXIT_NET;
  }
  /* One frame is at most VS_FRAME_BYTES_MAX; a peer may not make ENet hold
   * much more than a frame or two of it before the node has seen them. */
  d->host->maximumPacketSize = VS_FRAME_BYTES_MAX;
  d->host->maximumWaitingData = 2u * VS_FRAME_BYTES_MAX;
  vn_intercept_daemon = d;
  d->host->intercept = vn_on_datagram;
  ENetAddress bound;
  if (enet_socket_get_address(d->host->socket, &bound) != 0) bound = *listen;
  bound.host = listen->host; /* the socket says 0.0.0.0 for ENET_HOST_ANY: keep what was asked */
  addr_text(&bound, d->listen);
  return 0;
}

static void daemon_init(vn_daemon *d, const char *dir) {
  memset(d, 0, sizeof *d);
  d->dir = dir;
  d->nudge_fd = d->stop_fd = -1;
  for (uint32_t i = 0; i < ENET_PEERS; i++) slot_clear(&d->slots[i]);
  d->mono_ms = vn_mono_ms();
  d->now_ms = vn_wall_ms();
  d->started_ms = d->now_ms;
  d->node_wake_ms = d->now_ms;
}

static void daemon_free(vn_daemon *d) {
  vn_rx_stop(d->rx); /* frames still inside are dropped: peers send them again */
  d->rx = NULL;
  if (d->host != NULL) enet_host_destroy(d->host);
  vn_intercept_daemon = NULL;
  vs_node_close(d->node);
  if (d->nudge_fd >= 0) close(d->nudge_fd);
  if (d->stop_fd >= 0) close(d->stop_fd);
  if (stop_pipe_w >= 0) close(stop_pipe_w);
  stop_pipe_w = -1;
}

/* Resolve every address, open the node, listen. 0 or an exit code. */
static int daemon_open(vn_daemon *d, const vn_run_args *a) {
  const char *min = getenv("VIX_NODE_RX_MIN_BYTES");
  char *end = NULL;
  unsigned long long v = min != NULL ? strtoull(min, &end, 10) : RX_MIN_BYTES_DEFAULT;
  if (min != NULL && (min[0] < '0' || min[0] > '9' || *end != '\0' || v > SIZE_MAX)) {
    vn_errorf("run", "VIX_NODE_RX_MIN_BYTES: not a byte count: \"%s\"", min);
    return VN_EXIT_USAGE;
  }
  d->rx_min = (size_t)v;
  ENetAddress listen;
  int rc = vn_run_resolve("--listen", a->listen, 0, &listen);
  for (uint32_t i = 0; i < a->peer_count && rc == 0; i++) {
    vn_dial *dl = &d->dials[d->dial_count++];
    dl->text = a->peers[i];
    dl->slot = -1;
    dl->next_ms = d->now_ms;
    rc = vn_run_resolve("--peer", a->peers[i], 1, &dl->addr);
  }
  if (rc != 0) return rc;
  d->purge_off = a->purge_off;
  d->purge_keep = a->purge_keep;
  d->purge_next_ms = d->now_ms + 1000u; /* the first check a second after the start */
  d->dials_reserved = d->dial_count < DIAL_RESERVED_MAX ? d->dial_count : DIAL_RESERVED_MAX;
  d->ready_in_max = VS_NODE_PEERS_MAX - UNAUTH_IN_MAX - d->dials_reserved;
  uint8_t id[VS_ORIGIN_BYTES];
  vn_node_tune tune = {a->origin_quota_set, a->origin_quota,     a->rekey_grace_set,
                       a->rekey_grace_ms,   a->compact_every_set, a->compact_every_ms,
                       a->suspend_after_set, a->suspend_after_ms, a->ack_interval_set, a->ack_interval_ms};
  rc = vn_open_node_tuned("run", a->dir, a->mesh_key, true, &tune, &d->node, id);
  if (rc != 0) return rc;
  (void)vs_store_set_orphan_fn(vs_node_store(d->node), orphan_log, NULL); /* a rebase in the daemon */
  vs_hex_encode(id, VS_ORIGIN_BYTES, d->node_hex);
  rc = open_host(d, a->listen, &listen);
  if (rc != 0) return rc;
  d->rx = vn_rx_start();
  if (d->rx == NULL) vn_log(VN_LOG_WARN, "rx_pipeline_unavailable", "note=\"frames are applied on one thread\"");
  d->nudge_fd = vn_nudge_listen(a->dir);
  if (d->nudge_fd < 0)
    vn_log(VN_LOG_WARN, "nudge_unavailable", "errno=%d note=\"writes are picked up by the timers (1 s)\"", errno);
  if (!install_signals(d)) {
    vn_errorf("run", "cannot install signal handlers");
    return VN_EXIT_NET;
  }
  return 0;
}

int vn_cmd_run(int argc, char **argv) {
  vn_run_args a;
  bool done = false;
  int rc = vn_run_args_parse(argc, argv, &a, &done);
  if (rc != 0 || done) return rc;
  vn_log_set_level(a.level);
  if (sodium_init() < 0 || enet_initialize() != 0) {
    vn_errorf("run", "cannot initialise libsodium or ENet");
    return VN_EXIT_NET;
  }
  vn_daemon *d = malloc(sizeof *d);
  if (d == NULL) {
    enet_deinitialize();
    vn_errorf("run", "out of memory");
    return VN_EXIT_STORAGE;
  }
  daemon_init(d, a.dir);
  rc = daemon_open(d, &a);
  if (rc == 0) {
    vn_log(VN_LOG_INFO, "start", "node=%.16s data=\"%s\" peers=%u pid=%ld", d->node_hex, a.dir, d->dial_count,
           (long)getpid());
    vn_log(VN_LOG_INFO, "listening", "addr=%s", d->listen);
    vn_status_write(d);
    run_loop(d);
    vn_log(VN_LOG_INFO, "stopping", "signal=%d", (int)stop_signal);
    stop_peers(d);
    vn_run_json_remove(a.dir);
    if (d->nudge_fd >= 0) vn_nudge_unlink(a.dir);
  }
  daemon_free(d);
  free(d);
  enet_deinitialize();
  if (rc == 0) vn_log(VN_LOG_INFO, "stopped", "pid=%ld", (long)getpid());
  return rc;
}
