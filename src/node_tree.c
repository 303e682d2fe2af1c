/* The spanning tree new runs travel along (issue 18; docs/protocol.md,
 * "The spanning tree"). Until wire v6 every node pushed every new op to
 * every ready peer: each op crossed every link, in a full mesh of 20 nodes
 * 18.5 duplicate deliveries per useful one.
 *
 * Every VV says where its sender stands: the root it sees (the lowest
 * identity it hears of), its hops to it, its parent toward it. A node
 * takes the best place its ready peers offer: the lowest root, then the
 * fewest hops, then the lowest parent id; none better than itself, it is a
 * root. Its parent and the peers that name it as their parent are its tree
 * edges: new runs are pushed on those at once, as before. On every other
 * link a node sends only vectors (deltas, batched: what it has), and when a
 * peer's vector shows ops we lack for longer than the tree should take
 * (graft_wait_ms), we ask that peer to push to us too (VS_VV_WANT: a
 * graft); a duplicate from a link that is no tree edge clears the ask. So
 * a partition, a crash or a flapping link costs at most that wait before
 * runs flow around it, and the tree reforms from the vectors as sessions
 * come and go. In a connected, quiet mesh every op crosses each tree edge
 * once (N - 1 copies) and nothing else carries runs.
 *
 * Loops: a node never takes as parent a peer that names it as parent; a
 * longer loop (a root gone, its old subtree counting up) ends when the hops
 * reach TREE_DIST_MAX, a place no node takes, which a VV round per hop
 * reaches quickly; meanwhile grafts carry runs as on any other link.
 * Nothing here changes what converges, only which link carries it: every
 * session still exchanges vectors, and a graft is one VV away. */
#include "node_int.h"

/* A node's id in the tree: the first 8 bytes of its public key (LE); 0 is
 * "none" (a key whose prefix is 0 counts as 1: at worst a tie, decided by
 * the next rule). */
uint64_t nd_tree_id(const uint8_t pk[VS_ORIGIN_BYTES]) {
  uint64_t id = vs_get_u64le(pk);
  return id == 0 ? 1 : id;
}

/* Whether `p` is an edge of our tree: our parent, or a peer whose parent
 * we are. */
static bool tree_edge(const vs_node *n, const peer *p) {
  if (!p->adv_set) return false;
  uint64_t id = nd_tree_id(p->sess.peer_id);
  return (n->tree_parent != 0 && id == n->tree_parent) || p->adv_parent == nd_tree_id(n->cfg.identity.pk);
}

/* Whether we push new runs to `p` at once: a tree edge, or a peer that
 * asked (a graft). Nothing before its first vector (a new session: a round
 * trip; pushing at once made every new session a second copy of what the
 * tree brings, at mesh start 0.8 duplicates per useful application). */
bool nd_tree_pushes(const vs_node *n, const peer *p) { return p->adv_set && (p->peer_wants || tree_edge(n, p)); }

/* Whether `p` pushes new runs to us at once (the same rule from its side). */
bool nd_tree_listens(const vs_node *n, const peer *p) { return !p->adv_set || p->want_me || tree_edge(n, p); }

/* Whether p's place is one a node can hold: its root is no higher than its
 * own id (the lowest it heard of, itself included); a root is itself, with
 * no parent; any other has a parent and hops. A place that is not is not
 * taken (a key holder can still claim the lowest root there is, and then
 * pass nothing on: grafts carry the runs around it, docs/protocol.md). */
static bool place_ok(const peer *p, uint64_t id) {
  if (p->adv_root == 0 || p->adv_root > id) return false;
  if (p->adv_dist == 0) return p->adv_root == id && p->adv_parent == 0;
  return p->adv_parent != 0 && p->adv_parent != id;
}

/* Our place from the ready peers' vectors: O(peers), every poll round. A
 * change goes to every peer at once (it moves tree edges). (Not rate
 * limited: a peer whose claims flap costs each node a wave of vectors per
 * flip; limiting worse moves slowed the tree's forming in a new mesh and
 * moved scenario outcomes: left for later, docs/protocol.md.) */
void nd_tree_update(vs_node *n) {
  uint64_t self = nd_tree_id(n->cfg.identity.pk);
  uint64_t root = self, parent = 0;
  uint32_t dist = 0;
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) { /* bounded: the slots */
    const peer *p = &n->peers[s];
    if (p->st != PEER_READY || !p->adv_set || p->probation) continue;
    uint64_t id = nd_tree_id(p->sess.peer_id);
    if (!place_ok(p, id)) continue;
    if (p->adv_parent == self || p->adv_dist + 1u >= TREE_DIST_MAX) continue; /* our child, or too far */
    uint32_t d = p->adv_dist + 1u;
    bool better = p->adv_root < root || (p->adv_root == root && root != self && (d < dist || (d == dist && id < parent)));
    if (!better) continue;
    root = p->adv_root;
    dist = d;
    parent = id;
  }
  if (root == n->tree_root && parent == n->tree_parent && dist == n->tree_dist) return;
  n->tree_root = root;
  n->tree_parent = parent;
  n->tree_dist = (uint8_t)dist;
  n->stats.tree_moves++;
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++)
    if (n->peers[s].st == PEER_READY) n->peers[s].vv_due = true;
}

/* How long a link that pushes us nothing may show what we lack before we
 * graft it: the tree should have brought it by then (vectors on such links
 * batch up for vv_interval_ms; this runs from when one came). */
static uint64_t graft_wait_ms(const vs_node *n) { return n->cfg.vv_interval_ms / 2u + 1u; }

/* An entry of p's vector that we lack: the lack timer starts with it (a
 * sample of what it showed then; later lacks wait for the next timer). */
void nd_tree_lack(peer *p, const vs_vv_entry *e, uint64_t now_ms) {
  uint64_t at = now_ms > 0 ? now_ms : 1; /* 0: nothing watched */
  if (p->lack_since_ms != 0 && p->lack_since_ms != at) return;
  p->lack_since_ms = at;
  if (p->lack_n < TREE_LACK_MAX) p->lack[p->lack_n++] = *e;
}

/* Start the lack timer with what p's vector holds that we lack (O(its
 * vector): only when a lack timer ends and the tree brought its sample). */
static void lack_scan(const vs_node *n, peer *p, uint64_t now_ms) {
  p->lack_since_ms = 0;
  p->lack_n = 0;
  uint32_t at = 0;
  for (uint32_t i = 0; i < p->known.n && p->lack_n < TREE_LACK_MAX; i++) /* bounded: known.n, both sorted */
    if (p->known.e[i].seq > nd_vv_seek(&n->mine, &at, p->known.e[i].origin)) nd_tree_lack(p, &p->known.e[i], now_ms);
}

/* Whether an entry of the sample is still beyond what we hold. */
static bool still_lacks(const vs_node *n, const peer *p) {
  for (uint32_t i = 0; i < p->lack_n; i++) /* bounded: TREE_LACK_MAX */
    if (p->lack[i].seq > nd_vv_get(&n->mine, p->lack[i].origin)) return true;
  return false;
}

/* A run from `p` was applied: `applied` ops new, `duplicates` held already.
 * Wholly duplicate from a link we grafted: the tree carries it again, so
 * the ask ends (not moments after the graft: its catch-up overlaps the
 * tree's, and would end it before it caught us up). */
void nd_tree_on_run(vs_node *n, peer *p, uint32_t applied, uint32_t duplicates, uint64_t now_ms) {
  if (applied > 0 || duplicates == 0 || !p->want_me || tree_edge(n, p)) return;
  if (now_ms < vs_add_sat_u64(p->graft_ms, 4u * graft_wait_ms(n))) return;
  p->want_me = false;
  p->lack_since_ms = 0;
  p->lack_n = 0;
  p->vv_due = true; /* say so now: every run it pushes meanwhile is a duplicate */
  n->stats.prunes++;
}

/* A link that pushes us nothing, whose vector has shown what we lack for
 * graft_wait_ms: the tree did not bring it (an edge of it broke, or it is
 * reforming): graft. */
void nd_tree_tick(vs_node *n, peer *p, uint64_t now_ms) {
  if (nd_tree_listens(n, p)) { /* it pushes to us (a tree edge, or a graft) */
    p->lazy_link = false;
    p->lack_since_ms = 0;
    p->lack_n = 0;
    return;
  }
  if (!p->lazy_link) { /* it just stopped pushing to us: what does it hold that we lack? */
    p->lazy_link = true;
    lack_scan(n, p, now_ms);
  }
  if (p->lack_since_ms == 0 || now_ms < vs_add_sat_u64(p->lack_since_ms, graft_wait_ms(n))) return;
  if (!still_lacks(n, p)) { /* the tree brought it: watch what it shows now */
    lack_scan(n, p, now_ms);
    return;
  }
  p->lack_since_ms = 0;
  p->lack_n = 0;
  p->want_me = true;
  p->graft_ms = now_ms;
  p->vv_due = true;
  n->stats.grafts++;
}

uint64_t nd_tree_wake(const vs_node *n, const peer *p) {
  if (p->lack_since_ms == 0) return UINT64_MAX;
  return vs_add_sat_u64(p->lack_since_ms, graft_wait_ms(n));
}
