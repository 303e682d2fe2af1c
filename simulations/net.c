#define _POSIX_C_SOURCE 200809L
/* vix-sim: the simulated network.
 *
 * Topology: undirected links between nodes. A link carries at most one
 * connection at a time; each connection gets a fresh id, which both nodes
 * use as their peer handle, and every frame carries the id of the
 * connection it was sent on: frames of a dead connection die with it (as
 * with a real transport), they are never handed to the next one.
 *
 * A direction of a link is *cut* while a partition separates its ends, one
 * end is isolated, an asymmetric cut holds it or the link is flapping down.
 * Frames that arrive over a cut direction are lost. A connection whose link
 * stays cut (either way) for conn_timeout_ms is declared dead on both sides
 * (what ENet's timeout does); it is dialled again, with backoff, until the
 * link passes both ways and both nodes run.
 *
 * Frames take the base latency; during chaos they may also be lost,
 * duplicated, held back (so later frames overtake them) or delayed by a
 * long tail. Frames that are not held back keep their order per direction.
 * Latency is at least 1 ms, so virtual time always moves on.
 *
 * Events are kept in a binary heap ordered by (time, insertion number):
 * equal times keep the order in which they were scheduled, whatever their
 * addresses, so the run is a pure function of the seed. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- the event heap ---- */

static bool ev_less(const sim_ev *x, const sim_ev *y) { return x->t < y->t || (x->t == y->t && x->seq < y->seq); }

void sim_heap_push(sim *s, uint64_t t, uint32_t kind, uint32_t a, uint32_t b, uint32_t c, uint8_t *bytes, uint32_t len) {
  sim_heap *h = &s->heap;
  if (h->n == h->cap) {
    size_t cap = h->cap == 0 ? 1024 : h->cap * 2;
    sim_ev *v = realloc(h->v, sizeof *v * cap);
    if (v == NULL) {
      free(bytes);
      sim_fail(s, SIM_EXIT_STORE, "out of memory (event queue of %zu)", h->n);
      return;
    }
    h->v = v;
    h->cap = cap;
  }
  assert(t >= s->now); /* nothing is scheduled in the past */
  sim_ev e = {t, h->seq++, kind, a, b, c, bytes, len};
  size_t i = h->n++;
  while (i > 0) { /* sift up: log2(n) steps */
    size_t parent = (i - 1) / 2;
    if (!ev_less(&e, &h->v[parent])) break;
    h->v[i] = h->v[parent];
    i = parent;
  }
  h->v[i] = e;
}

bool sim_heap_pop(sim_heap *h, sim_ev *out) {
  if (h->n == 0) return false;
  *out = h->v[0];
  sim_ev last = h->v[--h->n];
  size_t i = 0;
  for (;;) { /* sift down: log2(n) steps */
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const sim_ev *best = &last;
    if (l < h->n && ev_less(&h->v[l], best)) {
      m = l;
      best = &h->v[l];
    }
    if (r < h->n && ev_less(&h->v[r], best)) m = r;
    if (m == i) break;
    h->v[i] = h->v[m];
    i = m;
  }
  if (h->n > 0) h->v[i] = last;
  return true;
}

void sim_heap_free(sim_heap *h) {
  for (size_t i = 0; i < h->n; i++) free(h->v[i].bytes);
  free(h->v);
  memset(h, 0, sizeof *h);
}

/* ---- topology ---- */

static bool node_add_link(sim *s, uint32_t i, uint32_t li) {
  sim_node *n = &s->nodes[i];
  if (n->nlinks == n->links_cap) {
    uint32_t cap = n->links_cap == 0 ? 8 : n->links_cap * 2;
    uint32_t *v = realloc(n->links, sizeof *v * cap);
    if (v == NULL) return false;
    n->links = v;
    n->links_cap = cap;
  }
  n->links[n->nlinks++] = li;
  return true;
}

static bool linked(const sim *s, uint32_t i, uint32_t j) {
  const sim_node *n = &s->nodes[i];
  for (uint32_t k = 0; k < n->nlinks; k++) {
    const sim_link *l = &s->links[n->links[k]];
    if ((l->a == i && l->b == j) || (l->a == j && l->b == i)) return true;
  }
  return false;
}

static bool add_link(sim *s, uint32_t i, uint32_t j, uint32_t *cap) {
  if (i == j || linked(s, i, j)) return true;
  if (s->nodes[i].nlinks >= VS_NODE_PEERS_MAX || s->nodes[j].nlinks >= VS_NODE_PEERS_MAX) return true;
  if (s->nlinks == *cap) {
    uint32_t c = *cap == 0 ? 64 : *cap * 2;
    sim_link *v = realloc(s->links, sizeof *v * c);
    if (v == NULL) return false;
    s->links = v;
    *cap = c;
  }
  sim_link *l = &s->links[s->nlinks];
  memset(l, 0, sizeof *l);
  l->a = i < j ? i : j;
  l->b = i < j ? j : i;
  l->cut_since = UINT64_MAX;
  if (!node_add_link(s, i, s->nlinks) || !node_add_link(s, j, s->nlinks)) return false;
  s->nlinks++;
  return true;
}

bool sim_net_add_link(sim *s, uint32_t i, uint32_t j) {
  uint32_t cap = s->nlinks; /* full: add_link grows the array */
  return add_link(s, i, j, &cap);
}

/* Random connected graph of degree about d: a ring over a random
 * permutation (connected, degree 2), then random chords between nodes still
 * short of d. */
static bool build_random(sim *s, uint32_t *cap) {
  uint32_t n = s->n, d = s->cfg->degree;
  uint32_t *perm = malloc(sizeof *perm * n);
  if (perm == NULL) return false;
  for (uint32_t i = 0; i < n; i++) perm[i] = i;
  for (uint32_t i = n; i > 1; i--) { /* Fisher-Yates */
    uint32_t j = (uint32_t)sim_rng_below(&s->rng, i);
    uint32_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
  bool ok = true;
  for (uint32_t i = 0; i + 1 < n && ok; i++) ok = add_link(s, perm[i], perm[i + 1], cap);
  if (ok && n > 2 && d >= 2) ok = add_link(s, perm[n - 1], perm[0], cap);
  free(perm);
  /* Chords: a few rounds; a node may stay one short when no partner is left. */
  for (uint32_t round = 0; round < 4 && ok && n > 3; round++) {
    for (uint32_t u = 0; u < n && ok; u++) {
      for (uint32_t tries = 0; s->nodes[u].nlinks < d && tries < 32 && ok; tries++) {
        uint32_t v = (uint32_t)sim_rng_below(&s->rng, n);
        if (v != u && s->nodes[v].nlinks < d && !linked(s, u, v)) ok = add_link(s, u, v, cap);
      }
    }
  }
  return ok;
}

bool sim_net_build(sim *s) {
  uint32_t cap = 0, n = s->n;
  bool ok = true;
  switch (s->cfg->topo) {
    case SIM_TOPO_FULL:
      for (uint32_t i = 0; i < n && ok; i++)
        for (uint32_t j = i + 1; j < n && ok; j++) ok = add_link(s, i, j, &cap);
      break;
    case SIM_TOPO_LINE:
    case SIM_TOPO_RING:
      for (uint32_t i = 0; i + 1 < n && ok; i++) ok = add_link(s, i, i + 1, &cap);
      if (ok && s->cfg->topo == SIM_TOPO_RING && n > 2) ok = add_link(s, n - 1, 0, &cap);
      break;
    case SIM_TOPO_RANDOM: ok = build_random(s, &cap); break;
  }
  if (!ok) return sim_fail(s, SIM_EXIT_STORE, "out of memory building the topology");
  for (uint32_t li = 0; li < s->nlinks; li++) {
    sim_trace(s, 'L', li, s->links[li].a, s->links[li].b, NULL, 0);
    sim_link_dial_soon(s, li);
  }
  return true;
}

/* ---- report intervals ---- */

void sim_iv_open(sim *s, uint8_t what, uint32_t node) {
  if (!s->sampling) return;
  if (s->iv_n == s->iv_cap) {
    size_t cap = s->iv_cap == 0 ? 64 : s->iv_cap * 2;
    sim_interval *v = realloc(s->iv, sizeof *v * cap);
    if (v == NULL) return; /* the report loses a mark, the run goes on */
    s->iv = v;
    s->iv_cap = cap;
  }
  s->iv[s->iv_n++] = (sim_interval){s->now, UINT64_MAX, node, what};
}

void sim_iv_close(sim *s, uint8_t what, uint32_t node) {
  for (size_t k = s->iv_n; k > 0; k--) {
    sim_interval *v = &s->iv[k - 1];
    if (v->what == what && v->node == node && v->to == UINT64_MAX) {
      v->to = s->now;
      return;
    }
  }
}

/* ---- links and connections ---- */

bool sim_link_cut(const sim *s, const sim_link *l, int dir) {
  if (s->part_group != NULL && s->part_group[l->a] != s->part_group[l->b]) return true;
  if (s->nodes[l->a].isolated || s->nodes[l->b].isolated) return true;
  if (l->flap_down) return true;
  return (l->asym_cut >> dir) & 1u;
}

static bool link_passable(const sim *s, const sim_link *l) { return !sim_link_cut(s, l, 0) && !sim_link_cut(s, l, 1); }

void sim_link_dial_soon(sim *s, uint32_t li) {
  sim_link *l = &s->links[li];
  if (l->dialing || l->up) return;
  /* Backoff while the link stays cut: a node offline for hours is not
   * dialled every few hundred milliseconds (it would not be in reality). */
  uint64_t delay = sim_rng_range(&s->rng, s->cfg->redial_ms.lo, s->cfg->redial_ms.hi);
  uint64_t f = l->redial_fail < 6 ? l->redial_fail : 6;
  delay = (delay + 1) << f;
  l->dialing = true;
  sim_heap_push(s, s->now + delay, EV_DIAL, li, 0, l->dial_gen, NULL, 0);
}

/* A cut input of the link changed: start or stop the dead-connection clock,
 * and dial again once it passes. */
void sim_link_recheck(sim *s, uint32_t li) {
  sim_link *l = &s->links[li];
  bool cut = !link_passable(s, l);
  if (cut && l->cut_since == UINT64_MAX) {
    l->cut_since = s->now;
    if (l->up) sim_heap_push(s, s->now + s->cfg->conn_timeout_ms, EV_CONN_CHECK, li, 0, l->conn, NULL, 0);
  } else if (!cut && l->cut_since != UINT64_MAX) {
    l->cut_since = UINT64_MAX;
    l->redial_fail = 0;
    /* A dial the backoff put far off (it doubled while the link stayed
     * cut) is dropped: the link is dialled again soon, as after a heal. A
     * node rejoining after 30 s got its first session up to a minute
     * later, and a scenario's "back at 32 s" became back at 45 s. */
    if (l->dialing) {
      l->dialing = false;
      l->dial_gen++;
    }
    if (!l->up && s->nodes[l->a].node != NULL && s->nodes[l->b].node != NULL) sim_link_dial_soon(s, li);
  }
}

/* The connection ends. `closed_by`: the node that closed it (it has already
 * forgotten the peer, or is crashing), -1 for the network. */
bool sim_link_down(sim *s, uint32_t li, int closed_by, bool redial) {
  sim_link *l = &s->links[li];
  if (l->up) {
    uint32_t ends[2] = {l->a, l->b};
    for (int k = 0; k < 2; k++) {
      sim_node *n = &s->nodes[ends[k]];
      if ((int)ends[k] == closed_by || n->node == NULL) continue;
      uint64_t local = sim_local_ms(n, s->now);
      vs_err err = vs_node_peer_down(n->node, l->conn, local);
      if (err != VS_OK && err != VS_ERR_NOTFOUND)
        return sim_fail(s, SIM_EXIT_FAIL, "node %u: peer_down: %s", ends[k], vs_err_name(err));
      sim_mark_dirty(s, ends[k]);
    }
    sim_trace(s, 'N', li, l->conn, (uint64_t)(int64_t)closed_by, NULL, 0);
  }
  l->up = false;
  l->conn = 0;
  if (redial && s->nodes[l->a].node != NULL && s->nodes[l->b].node != NULL) sim_link_dial_soon(s, li);
  return true;
}

bool sim_net_dial(sim *s, uint32_t li) {
  sim_link *l = &s->links[li];
  l->dialing = false;
  if (l->up || s->nodes[l->a].node == NULL || s->nodes[l->b].node == NULL) return true;
  if (!link_passable(s, l)) {
    s->tot.dials_failed++;
    l->redial_fail++;
    sim_link_dial_soon(s, li);
    return true;
  }
  assert(!l->up && l->a < l->b && l->b < s->n);
  l->conn = ++s->conn_seq;
  l->up = true;
  l->up_at = s->now;
  l->redial_fail = 0;
  l->fifo_at[0] = l->fifo_at[1] = s->now;
  bool a_dials = sim_rng_ppm(&s->rng, 500000);
  uint32_t ini = a_dials ? l->a : l->b, resp = a_dials ? l->b : l->a;
  vs_err err = vs_node_peer_up(s->nodes[ini].node, l->conn, true, sim_local_ms(&s->nodes[ini], s->now));
  /* The responder binds its handshake cookie to the dialler's "address":
   * its node index (little-endian), as a real driver gives IP and port. */
  uint8_t addr[4] = {(uint8_t)ini, (uint8_t)(ini >> 8), (uint8_t)(ini >> 16), (uint8_t)(ini >> 24)};
  if (err == VS_OK)
    err = vs_node_peer_up_addr(s->nodes[resp].node, l->conn, false, addr, sizeof addr,
                               sim_local_ms(&s->nodes[resp], s->now));
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "link %u-%u: peer_up: %s", l->a, l->b, vs_err_name(err));
  s->tot.conns++;
  for (int e = 0; e < 2; e++) { /* a revoked node dialling on: each connection a handshake the other end must refuse */
    sim_node *rn = &s->nodes[e == 0 ? l->a : l->b];
    if (rn->ms == MS_REVOKED && s->now >= rn->revoked_at + s->cfg->rekey_grace_ms) {
      rn->dials_after_grace++;
      s->tot.revoked_dials++;
    }
  }
  sim_trace(s, 'U', li, l->conn, ini, NULL, 0);
  sim_mark_dirty(s, l->a);
  sim_mark_dirty(s, l->b);
  return true;
}

bool sim_net_conn_check(sim *s, uint32_t li, uint32_t conn) {
  sim_link *l = &s->links[li];
  if (!l->up || l->conn != conn || l->cut_since == UINT64_MAX) return true;
  if (s->now - l->cut_since < s->cfg->conn_timeout_ms) { /* cut again since: wait for its own deadline */
    sim_heap_push(s, l->cut_since + s->cfg->conn_timeout_ms, EV_CONN_CHECK, li, 0, conn, NULL, 0);
    return true;
  }
  s->tot.conn_timeouts++;
  return sim_link_down(s, li, -1, true);
}

int sim_link_find_conn(const sim *s, uint32_t node, uint32_t conn) {
  const sim_node *n = &s->nodes[node];
  for (uint32_t k = 0; k < n->nlinks; k++)
    if (s->links[n->links[k]].up && s->links[n->links[k]].conn == conn) return (int)n->links[k];
  return -1;
}

/* ---- frames ---- */

static void push_frame(sim *s, uint64_t at, uint32_t from, uint32_t to, uint32_t conn, const uint8_t *bytes, size_t len) {
  uint8_t *copy = malloc(len > 0 ? len : 1);
  if (copy == NULL) {
    sim_fail(s, SIM_EXIT_STORE, "out of memory (frame of %zu bytes)", len);
    return;
  }
  memcpy(copy, bytes, len);
  sim_heap_push(s, at, EV_DELIVER, from, to, conn, copy, (uint32_t)len);
}

void sim_net_send(sim *s, uint32_t from, uint32_t li, uint32_t conn, const uint8_t *bytes, size_t len) {
  sim_link *l = &s->links[li];
  assert(l->up && l->conn == conn && (l->a == from || l->b == from));
  uint32_t to = l->a == from ? l->b : l->a;
  int dir = l->a == from ? 0 : 1;
  const sim_cfg *c = s->cfg;
  s->tot.frames_sent++;
  s->tot.bytes_sent += len;
  /* A DATA frame's last 16 bytes are its Poly1305 tag, which depends on
   * every byte of the plaintext under the session key: header, counter and
   * tag name the frame exactly, at a fraction of hashing it all. */
  if (len > 64 && bytes[1] == VS_FRAME_DATA) {
    uint8_t head_tag[10 + 16];
    memcpy(head_tag, bytes, 10);
    memcpy(head_tag + 10, bytes + len - 16, 16);
    sim_trace(s, 'S', from, to, ((uint64_t)conn << 32) | (uint32_t)len, head_tag, sizeof head_tag);
  } else {
    sim_trace(s, 'S', from, to, conn, bytes, len);
  }
  if (s->faults && sim_rng_ppm(&s->rng, c->drop_ppm)) {
    s->tot.dropped++;
    sim_trace(s, 'x', from, to, conn, NULL, 0);
    return;
  }
  uint64_t at = s->now + sim_rng_range(&s->rng, c->latency_ms.lo, c->latency_ms.hi);
  if (s->faults && sim_rng_ppm(&s->rng, c->tail_ppm)) {
    at += sim_rng_range(&s->rng, 1, c->tail_ms > 0 ? c->tail_ms : 1);
    s->tot.tailed++;
  }
  if (s->faults && sim_rng_ppm(&s->rng, c->reorder_ppm)) {
    at += sim_rng_range(&s->rng, 1, c->reorder_ms > 0 ? c->reorder_ms : 1); /* held back: later frames overtake it */
    s->tot.reordered++;
    sim_trace(s, 'r', from, to, at, NULL, 0);
  } else {
    if (at < l->fifo_at[dir]) at = l->fifo_at[dir];
    l->fifo_at[dir] = at;
  }
  push_frame(s, at, from, to, conn, bytes, len);
  if (s->faults && sim_rng_ppm(&s->rng, c->dup_ppm)) {
    uint64_t at2 = at + sim_rng_below(&s->rng, c->reorder_ms + 1);
    s->tot.duplicated++;
    sim_trace(s, 'd', from, to, at2, NULL, 0);
    push_frame(s, at2, from, to, conn, bytes, len);
  }
}

bool sim_net_deliver(sim *s, const sim_ev *e) {
  uint32_t from = e->a, to = e->b, conn = e->c;
  int li = sim_link_find_conn(s, to, conn);
  if (li < 0 || s->nodes[to].node == NULL) { /* its connection is gone */
    s->tot.stale_frames++;
    sim_trace(s, 's', from, to, conn, NULL, 0);
    return true;
  }
  const sim_link *l = &s->links[li];
  if (sim_link_cut(s, l, l->a == from ? 0 : 1)) {
    s->tot.cut_dropped++;
    sim_trace(s, 'c', from, to, conn, NULL, 0);
    return true;
  }
  sim_node *n = &s->nodes[to];
  vs_err err = vs_node_on_frame(n->node, conn, e->bytes, e->len, sim_local_ms(n, s->now));
  /* Refusals are counted by the node itself (checked at the end); only a
   * storage failure stops the run. */
  if (err == VS_ERR_STORE || err == VS_ERR_FULL || err == VS_ERR_NOMEM)
    return sim_fail(s, SIM_EXIT_STORE, "node %u: on_frame: %s (raise --map-mib?)", to, vs_err_name(err));
  /* A HELLO MACed with a mesh key the responder does not hold (yet): after
   * a rekey, what a node that learnt a newer key than its peer sends first
   * (it steps down to an older key after the timeout). Counted apart from
   * G6's refusals of honest frames. */
  if (err == VS_ERR_AUTH && s->cfg->managed && s->tot.rekeys > 0 && e->len == VS_HELLO_BYTES && e->bytes[1] == VS_FRAME_HELLO) {
    n->hello_key_refused++;
    s->tot.hello_key_refused++;
  }
  /* A device may install a snapshot over a session whenever it joins
   * late (not only with --join-net): the simulator passes over seeding it
   * when no member's store compacted anything yet. */
  if (s->cfg->managed && !sim_snap_watch(s, to)) return false;
  s->tot.frames_delivered++;
  sim_trace(s, 'D', from, to, (uint64_t)(int64_t)err, NULL, 0);
  sim_mark_dirty(s, to);
  return true;
}

/* ---- partitions, asymmetric cuts, flapping ---- */

static void recheck_all(sim *s) {
  for (uint32_t li = 0; li < s->nlinks; li++) sim_link_recheck(s, li);
}

/* Replace the current partition (groups: n entries, owned from now on; NULL
 * heals it). */
void sim_partition_set(sim *s, uint16_t *groups) {
  if (s->part_group != NULL) sim_iv_close(s, 'p', UINT32_MAX);
  free(s->part_group);
  s->part_group = groups;
  if (groups != NULL) {
    s->tot.partitions++;
    sim_iv_open(s, 'p', UINT32_MAX);
    for (uint32_t i = 0; i < s->n; i++) sim_trace(s, 'P', i, groups[i], 0, NULL, 0);
  } else {
    sim_trace(s, 'P', UINT32_MAX, 0, 0, NULL, 0);
  }
  recheck_all(s);
}

/* Start (or restart with a new rhythm) a link's flapping, from `at`. */
void sim_link_flap(sim *s, uint32_t li, sim_range phase_ms, uint64_t at) {
  sim_link *l = &s->links[li];
  l->flapping = true;
  l->flap_gen++;
  l->flap_range = phase_ms;
  sim_heap_push(s, at + sim_rng_range(&s->rng, phase_ms.lo, phase_ms.hi), EV_FLAP, li, 0, l->flap_gen, NULL, 0);
}

/* Stop a link's flapping; it stays up. */
void sim_link_unflap(sim *s, uint32_t li) {
  sim_link *l = &s->links[li];
  l->flapping = false;
  l->flap_gen++;
  if (l->flap_down) {
    l->flap_down = false;
    sim_link_recheck(s, li);
  }
}

uint16_t *sim_random_split(sim *s) {
  uint16_t *g = malloc(sizeof *g * s->n);
  if (g == NULL) return NULL;
  uint32_t ones = 0;
  for (uint32_t i = 0; i < s->n; i++) {
    g[i] = (uint16_t)sim_rng_below(&s->rng, 2);
    ones += g[i];
  }
  if (s->n >= 2 && (ones == 0 || ones == s->n)) { /* both sides non-empty */
    uint32_t k = (uint32_t)sim_rng_below(&s->rng, s->n);
    g[k] ^= 1u;
  }
  return g;
}

void sim_net_schedule_faults(sim *s, uint64_t chaos_ms) {
  const sim_cfg *c = s->cfg;
  for (uint32_t k = 0; k < c->partitions; k++) {
    uint64_t t = sim_rng_below(&s->rng, chaos_ms + 1), d = sim_rng_range(&s->rng, c->partition_ms.lo, c->partition_ms.hi);
    uint32_t ep = ++s->episode_seq;
    sim_heap_push(s, t, EV_PART_START, 0, 0, ep, NULL, 0);
    sim_heap_push(s, t + d, EV_PART_END, 0, 0, ep, NULL, 0);
  }
  for (uint32_t k = 0; k < c->asym && s->nlinks > 0; k++) {
    uint64_t t = sim_rng_below(&s->rng, chaos_ms + 1), d = sim_rng_range(&s->rng, c->partition_ms.lo, c->partition_ms.hi);
    uint32_t li = (uint32_t)sim_rng_below(&s->rng, s->nlinks), dir = (uint32_t)sim_rng_below(&s->rng, 2);
    uint32_t ep = ++s->episode_seq;
    sim_heap_push(s, t, EV_ASYM_START, li, dir, ep, NULL, 0);
    sim_heap_push(s, t + d, EV_ASYM_END, li, dir, ep, NULL, 0);
  }
  for (uint32_t li = 0; li < s->nlinks; li++) {
    if (!sim_rng_ppm(&s->rng, c->flap_ppm)) continue;
    sim_link_flap(s, li, c->flap_ms, 0);
  }
  for (uint32_t k = 0; k < c->crashes; k++) {
    uint64_t t = sim_rng_below(&s->rng, chaos_ms + 1), d = sim_rng_range(&s->rng, c->crash_ms.lo, c->crash_ms.hi);
    uint32_t i = (uint32_t)sim_rng_below(&s->rng, s->n);
    sim_heap_push(s, t, EV_CRASH, i, 0, (uint32_t)(d > UINT32_MAX ? UINT32_MAX : (d == 0 ? 1 : d)), NULL, 0);
  }
}

/* Network events; false on a failure. Faults fire only during chaos. */
bool sim_net_event(sim *s, const sim_ev *e) {
  sim_link *l = e->kind == EV_DIAL || e->kind == EV_CONN_CHECK || e->kind == EV_ASYM_START || e->kind == EV_ASYM_END ||
                        e->kind == EV_FLAP
                    ? &s->links[e->a]
                    : NULL;
  switch (e->kind) {
    case EV_DELIVER: return sim_net_deliver(s, e);
    case EV_DIAL: return sim_net_dial(s, e->a);
    case EV_CONN_CHECK: return sim_net_conn_check(s, e->a, e->c);
    case EV_PART_START: {
      if (!s->faults) return true;
      uint16_t *g = sim_random_split(s);
      if (g == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
      s->part_episode = e->c;
      sim_partition_set(s, g);
      return true;
    }
    case EV_PART_END:
      if (s->faults && s->part_episode == e->c && s->part_group != NULL) sim_partition_set(s, NULL);
      return true;
    case EV_ASYM_START:
      if (!s->faults) return true;
      l->asym_cut |= (uint8_t)(1u << e->b);
      l->asym_ep[e->b] = e->c;
      s->tot.asyms++;
      sim_trace(s, 'A', e->a, e->b, 1, NULL, 0);
      sim_link_recheck(s, e->a);
      return true;
    case EV_ASYM_END:
      if (!s->faults || l->asym_ep[e->b] != e->c) return true;
      l->asym_cut &= (uint8_t)~(1u << e->b);
      sim_trace(s, 'A', e->a, e->b, 0, NULL, 0);
      sim_link_recheck(s, e->a);
      return true;
    case EV_FLAP:
      if (!s->faults || !l->flapping || l->flap_gen != e->c) return true;
      l->flap_down = !l->flap_down;
      s->tot.flaps++;
      sim_trace(s, 'F', e->a, l->flap_down, 0, NULL, 0);
      sim_link_recheck(s, e->a);
      sim_heap_push(s, s->now + sim_rng_range(&s->rng, l->flap_range.lo, l->flap_range.hi), EV_FLAP, e->a, 0, e->c,
                    NULL, 0);
      return true;
    default: return sim_fail(s, SIM_EXIT_FAIL, "unknown network event %u", e->kind);
  }
}
