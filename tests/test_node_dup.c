/* One session per pair of nodes (issue 18; node_dup.c, docs/protocol.md).
 *
 * Three vix-node in a full mesh, each told the other two as --peer, held
 * two sessions per pair (each side dialled) and pushed every op on both:
 * 40,000 ops sent for 10,000 written to two peers. Here nodes of the mesh
 * harness (mh_init: directories, identities, writes) are joined by this
 * file's own little network, which allows several connections between one
 * pair: connection c is handle CONN_BASE + c on both of its ends, frames
 * pass in order, straight from vs_node_poll to vs_node_on_frame; a CLOSE
 * takes the connection down at the other end (vs_node_peer_down). Each end
 * gives the node the other's "address" (its node index), as vix-node gives
 * IP and port. Time is virtual.
 */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "fixture.h"
#include "mesh_harness.h"
#include "prepared.h"
#include "vixsync/node.h"

#define CONN_BASE 100u
#define CONNS_MAX 64u

typedef struct conn {
  uint32_t end[2];   /* node of each end; end[0] dialled */
  uint32_t addr[2];  /* the address end k's node is given for the other end */
  bool up[2];        /* end k's node knows it (a half-open one: only one end) */
  bool mute[2];      /* end k ignores the node's CLOSE (a hostile driver that dials on) */
} conn;

typedef struct net {
  mh_mesh m;
  conn c[CONNS_MAX];
  uint32_t n;
  /* The last CLOSE each node asked for, and why (vs_node_close_reason). */
  vs_node_close_why why[MH_NODES_MAX];
  uint32_t kept[MH_NODES_MAX], closed[MH_NODES_MAX];
  uint32_t ready_max[MH_NODES_MAX]; /* the most READY sessions seen at once */
} net;

static uint32_t handle_of(uint32_t c) { return CONN_BASE + c; }

/* Connection c's end at node `node` (its ends are two nodes). */
static int end_at(const conn *c, uint32_t node) { return c->end[0] == node ? 0 : 1; }

static void addr_bytes(uint32_t a, uint8_t out[4]) {
  for (int k = 0; k < 4; k++) out[k] = (uint8_t)(a >> (8 * k));
}

/* Node `from` dials node `to`, addressed as `from_addr` at `to` (its
 * address: normally its index). Returns the connection. */
static uint32_t dial_as(net *t, uint32_t from, uint32_t to, uint32_t from_addr) {
  assert_true(t->n < CONNS_MAX);
  uint32_t ci = t->n++;
  conn *c = &t->c[ci];
  memset(c, 0, sizeof *c);
  c->end[0] = from;
  c->end[1] = to;
  c->addr[0] = to;
  c->addr[1] = from_addr;
  for (int k = 0; k < 2; k++) {
    uint8_t a[4];
    addr_bytes(c->addr[k], a);
    assert_err(vs_node_peer_up_addr(t->m.nodes[c->end[k]], handle_of(ci), k == 0, a, sizeof a, t->m.now_ms), VS_OK);
    c->up[k] = true;
  }
  return ci;
}

static uint32_t dial(net *t, uint32_t from, uint32_t to) { return dial_as(t, from, to, from); }

static void conn_end(net *t, uint32_t ci, int k) {
  conn *c = &t->c[ci];
  if (!c->up[k]) return;
  c->up[k] = false;
  if (t->m.nodes[c->end[k]] != NULL)
    assert_err(vs_node_peer_down(t->m.nodes[c->end[k]], handle_of(ci), t->m.now_ms), VS_OK);
}

/* Poll node i until it has nothing now; true when it had anything. */
static bool drain(net *t, uint32_t i) {
  bool any = false;
  for (uint32_t k = 0; k < 100000; k++) {
    vs_node_out out;
    uint64_t wake = UINT64_MAX;
    assert_err(vs_node_poll(t->m.nodes[i], t->m.now_ms, &out, &wake), VS_OK);
    if (out.kind == VS_NODE_OUT_NONE) {
      t->m.wake[i] = wake;
      return any;
    }
    any = true;
    assert_true(out.peer >= CONN_BASE && out.peer < CONN_BASE + t->n);
    uint32_t ci = out.peer - CONN_BASE;
    conn *c = &t->c[ci];
    int me = end_at(c, i);
    if (out.kind == VS_NODE_OUT_CLOSE) {
      t->why[i] = vs_node_close_reason(t->m.nodes[i], &t->kept[i]);
      t->closed[i] = out.peer;
      c->up[me] = false; /* the node forgot it */
      if (!c->mute[me]) conn_end(t, ci, 1 - me);
      continue;
    }
    if (!c->up[1 - me] || !c->up[me]) continue; /* lost with the connection */
    (void)vt_node_on_frame(t->m.nodes[c->end[1 - me]], out.peer, out.bytes, out.bytes_len, t->m.now_ms);
  }
  fail_msg("node %u never quiet", i);
  return any;
}

static void note_ready(net *t) {
  for (uint32_t i = 0; i < t->m.n; i++) {
    if (t->m.nodes[i] == NULL) continue;
    uint32_t r = vs_node_peers_ready(t->m.nodes[i]);
    if (r > t->ready_max[i]) t->ready_max[i] = r;
  }
}

static void pump(net *t) {
  for (uint32_t round = 0; round < 10000; round++) {
    bool any = false;
    for (uint32_t i = 0; i < t->m.n; i++)
      if (t->m.nodes[i] != NULL) any = drain(t, i) || any;
    if (!any) { /* quiet: every node swept its sessions at its last poll */
      note_ready(t);
      return;
    }
  }
  fail_msg("the network never went quiet");
}

/* Advance `ms` of virtual time, waking nodes when they ask. */
static void run_for(net *t, uint64_t ms) {
  uint64_t end = t->m.now_ms + ms;
  pump(t);
  for (uint32_t step = 0; step < 100000 && t->m.now_ms < end; step++) {
    uint64_t next = end;
    for (uint32_t i = 0; i < t->m.n; i++)
      if (t->m.nodes[i] != NULL && t->m.wake[i] > t->m.now_ms && t->m.wake[i] < next) next = t->m.wake[i];
    t->m.now_ms = next;
    pump(t);
  }
}

static vs_node_stats stats(net *t, uint32_t i) {
  vs_node_stats s;
  vs_node_stats_get(t->m.nodes[i], &s);
  return s;
}

static bool live(const net *t, uint32_t ci) { return t->c[ci].up[0] && t->c[ci].up[1]; }

static void write_n(net *t, uint32_t i, uint32_t count, const char *tag) {
  for (uint32_t k = 0; k < count; k++) {
    char target[32];
    snprintf(target, sizeof target, "%s-%u", tag, k);
    mh_write(&t->m, i, "kv", target, "v");
  }
}

static net *net_new(uint32_t n, const char *tag, uint8_t id_base) {
  net *t = calloc(1, sizeof *t);
  assert_non_null(t);
  mh_init(&t->m, n, tag, id_base, 0x1dull + id_base);
  return t;
}

static void net_free(net *t) {
  mh_free(&t->m);
  free(t);
}

/* Nodes 0 and 1 dial each other at the same instant, in either order and
 * with either identity the lower: after the handshakes each holds exactly
 * one READY session, the same connection at both ends (the one the lower
 * key dialled), one close counted (by the loser's initiator, which knows
 * its dial is covered), and a batch of writes crosses once. */
static void test_dup_cross_dial_keeps_one(void **state) {
  (void)state;
  for (uint32_t variant = 0; variant < 4; variant++) {
    net *t = net_new(2, "dupx", (uint8_t)(0x31 + 2 * (variant / 2)));
    bool first_0 = variant % 2 == 0;
    uint32_t c01 = 0, c10 = 0;
    if (first_0) {
      c01 = dial(t, 0, 1);
      c10 = dial(t, 1, 0);
    } else {
      c10 = dial(t, 1, 0);
      c01 = dial(t, 0, 1);
    }
    run_for(t, 3000);
    assert_int_equal(vs_node_peers_ready(t->m.nodes[0]), 1);
    assert_int_equal(vs_node_peers_ready(t->m.nodes[1]), 1);
    int lower = memcmp(t->m.ids[0].pk, t->m.ids[1].pk, VS_ORIGIN_BYTES) < 0 ? 0 : 1;
    uint32_t keep = lower == 0 ? c01 : c10, lose = lower == 0 ? c10 : c01;
    assert_true(live(t, keep));
    assert_false(live(t, lose));
    uint32_t closer = t->c[lose].end[0]; /* the loser's initiator */
    assert_int_equal(t->why[closer], VS_NODE_CLOSE_DUPLICATE);
    assert_int_equal(t->closed[closer], handle_of(lose));
    assert_int_equal(t->kept[closer], handle_of(keep));
    assert_int_equal(stats(t, 0).sessions_duplicate + stats(t, 1).sessions_duplicate, 1);
    write_n(t, 0, 300, "a");
    run_for(t, 3000);
    mh_expect_converged(&t->m, 0, 1);
    assert_int_equal(stats(t, 0).ops_sent, 300); /* once, not once per session */
    assert_int_equal(stats(t, 1).ops_duplicate, 0);
    assert_int_equal(stats(t, 1).ops_applied, 300);
    assert_int_equal(stats(t, 0).sessions_duplicate + stats(t, 1).sessions_duplicate, 1); /* no churn */
    net_free(t);
  }
}

/* Node 1 restarts while node 0 still holds its old connection (half open:
 * nothing tells node 0); node 1 dials again. The old session is silent, so
 * node 0 keeps the new one and closes the old, whoever's key is lower, and
 * node 1's writes flow on the new one. */
static void test_dup_stale_session_gives_way(void **state) {
  (void)state;
  for (uint32_t variant = 0; variant < 2; variant++) {
    net *t = net_new(2, "dups", (uint8_t)(0x41 + 2 * variant));
    uint32_t old = dial(t, 0, 1);
    run_for(t, 2000);
    assert_int_equal(vs_node_peers_ready(t->m.nodes[0]), 1);
    mh_close(&t->m, 1); /* gone, unnoticed by node 0 */
    t->c[old].up[1] = false;
    run_for(t, 1000);
    mh_open(&t->m, 1, 0);
    uint32_t fresh = dial(t, 1, 0);
    write_n(t, 1, 100, "r");
    run_for(t, 30000); /* the stale one hears nothing past 23 vv intervals (an idle session's vector every 20) */
    assert_true(live(t, fresh));
    assert_false(t->c[old].up[0]); /* node 0 closed the stale one */
    assert_int_equal(vs_node_peers_ready(t->m.nodes[0]), 1);
    assert_int_equal(stats(t, 0).sessions_duplicate, 1);
    assert_int_equal(t->why[0], VS_NODE_CLOSE_DUPLICATE);
    assert_int_equal(t->kept[0], handle_of(fresh));
    mh_expect_converged(&t->m, 0, 1);
    net_free(t);
  }
}

/* A key holder (node 2) that dials node 0 again and again under one
 * identity from one address and never closes what node 0 does not want:
 * node 0 holds at most two sessions of it at once (the one kept and one
 * silenced), counts every close, and node 1's honest session carries on:
 * its writes arrive, and node 2's too. */
static void test_dup_hostile_redials_bounded(void **state) {
  (void)state;
  net *t = net_new(3, "duph", 0x51);
  uint32_t honest = dial(t, 1, 0);
  run_for(t, 2000);
  uint32_t dials = 0;
  for (uint32_t k = 0; k < 40; k++) {
    uint32_t ci = dial(t, 2, 0);
    t->c[ci].mute[0] = true; /* node 2's driver ignores its node's CLOSEs: the connection stays at node 0 */
    dials++;
    if (k % 4 == 0) write_n(t, 1, 25, "h");
    if (k % 8 == 0) {
      char tag[16];
      snprintf(tag, sizeof tag, "x%u", k);
      write_n(t, 2, 5, tag);
    }
    run_for(t, 300);
    assert_true(vs_node_peers_ready(t->m.nodes[0]) <= 3); /* node 1, and two of node 2's at most */
  }
  run_for(t, 15000);
  assert_true(t->ready_max[0] <= 3);
  assert_true(live(t, honest));
  vs_node_stats s0 = stats(t, 0);
  assert_true(s0.sessions_duplicate >= dials - 1 && s0.sessions_duplicate <= dials);
  assert_int_equal(vs_node_peers_ready(t->m.nodes[0]), 2);
  mh_expect_converged(&t->m, 0, 1);
  /* node 1's 250 writes and node 2's 25 */
  assert_true(s0.ops_applied >= 250 + 25);
  net_free(t);
}

/* A clone of node 1 (its identity, another device at another address)
 * dials node 0: not a duplicate (two devices sharing an identity must both
 * be heard, or a fork could hide), so node 1's session is left alone. */
static void test_dup_clone_elsewhere_is_kept(void **state) {
  (void)state;
  net *t = net_new(3, "dupc", 0x61);
  t->m.ids[2] = t->m.ids[1];
  mh_close(&t->m, 2);
  mh_open(&t->m, 2, 0);
  uint32_t a = dial(t, 1, 0), b = dial(t, 2, 0);
  run_for(t, 12000);
  assert_true(live(t, a));
  assert_true(live(t, b));
  assert_int_equal(stats(t, 0).sessions_duplicate, 0);
  net_free(t);
}

/* Both ends of a connection at one node (a dial of its own address): it is
 * closed at both ends, counted twice, reason SELF, never READY again. It
 * would count the node toward its own ack quorum. */
static void test_dup_self_dial_closed(void **state) {
  (void)state;
  net *t = net_new(1, "dupself", 0x71);
  vs_node *node = t->m.nodes[0];
  uint8_t a[4];
  addr_bytes(0, a);
  /* Two handles for one connection: 200 dials, 201 answers. */
  assert_err(vs_node_peer_up_addr(node, 200, true, a, sizeof a, t->m.now_ms), VS_OK);
  assert_err(vs_node_peer_up_addr(node, 201, false, a, sizeof a, t->m.now_ms), VS_OK);
  uint32_t closes = 0, self = 0;
  bool open200 = true, open201 = true;
  for (uint32_t k = 0; k < 200 && (open200 || open201); k++) {
    vs_node_out out;
    uint64_t wake = 0;
    assert_err(vs_node_poll(node, t->m.now_ms, &out, &wake), VS_OK);
    if (out.kind == VS_NODE_OUT_NONE) {
      t->m.now_ms += 10;
      continue;
    }
    if (out.kind == VS_NODE_OUT_CLOSE) {
      closes++;
      self += vs_node_close_reason(node, NULL) == VS_NODE_CLOSE_SELF ? 1u : 0u;
      if (out.peer == 200) open200 = false;
      if (out.peer == 201) open201 = false;
      continue;
    }
    uint32_t to = out.peer == 200 ? 201 : 200;
    if ((to == 200 && open200) || (to == 201 && open201))
      (void)vs_node_on_frame(node, to, out.bytes, out.bytes_len, t->m.now_ms);
  }
  assert_int_equal(closes, 2);
  assert_int_equal(self, 2);
  vs_node_stats s;
  vs_node_stats_get(node, &s);
  assert_int_equal(s.sessions_duplicate, 2);
  assert_int_equal(s.handshakes_done, 2);
  assert_int_equal(vs_node_peers_ready(node), 0);
  net_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dup_cross_dial_keeps_one),
      cmocka_unit_test(test_dup_stale_session_gives_way),
      cmocka_unit_test(test_dup_hostile_redials_bounded),
      cmocka_unit_test(test_dup_clone_elsewhere_is_kept),
      cmocka_unit_test(test_dup_self_dial_closed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
