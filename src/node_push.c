#define _POSIX_C_SOURCE 200809L
/* The node's sending side (node_int.h): anti-entropy in signed runs, the
 * mesh as the engine's transport (acknowledgement quorum), and the marker
 * of a restored copy. */
#include "node_int.h"
#include "member.h"
#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */

#include <stdlib.h>

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

/* Add to the writer the longest run of `origin` from `from` (at most to
 * `last`) that ends at an op the store holds a signature for and fits the
 * message. Runs are cut only at signed ops but may pass several: the last
 * signature covers the run through its chain links, so the receiver
 * verifies one signature per run. Reads the origin's ops with the chain
 * module's run reader (vs_chain_runs_*: no search per op). *end_out: the
 * run's last seq. VS_ERR_NOTFOUND: no signed op in from..last (unsigned
 * ops stay local); VS_ERR_BUFSIZE / VS_ERR_LIMIT: the first signed run
 * does not fit this message. */
vs_err nd_add_run(vs_node *n, MDB_txn *txn, vs_wal_reader *wr, vs_ops_writer *w,
                      const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint64_t last, uint64_t *end_out) {
  if (w->runs >= VS_WIRE_RUNS_MAX) return VS_ERR_LIMIT;
  size_t room = vs_ops_writer_room(w);
  if (room > VS_RUN_BYTES_MAX) room = VS_RUN_BYTES_MAX; /* what a receiver takes in one run */
  vs_chain_runs rr;
  vs_err err = vs_chain_runs_open(txn, n->store, origin, from, last, &rr);
  uint64_t end = 0;
  const uint8_t *end_sig = NULL;
  size_t used = 0;
  uint32_t count = 0;
  /* Bounded: each step takes the next op of the origin; stops at `last`,
   * at VS_APPLY_RUN_OPS_MAX ops or when the message is full. */
  for (uint64_t seq = from; err == VS_OK && seq <= last && count < VS_APPLY_RUN_OPS_MAX; seq++) {
    vs_chain_op op;
    err = vs_chain_runs_next(&rr, &op); /* VS_ERR_CORRUPT: the version vector says the store holds it */
    if (err == VS_OK) err = run_scratch(n, count + 1);
    if (err != VS_OK) break;
    err = vs_wal_reader_op(wr, op.lsn, &n->run_enc[count], &n->run_lens[count]);
    if (err != VS_OK) break;
    used += 4u + n->run_lens[count];
    if (used > room) break;
    count++;
    if (op.sig == NULL) continue;
    end = seq;
    end_sig = op.sig;
    /* A membership op ends its run: the receiver then holds its signature,
     * so it can be proven alone once the ops around it are compacted
     * (compact.h) and carried in a snapshot. The kind sits at a fixed place
     * of the encoding (op.h: byte 82 its length, then its bytes). */
    const uint8_t *e = n->run_enc[count - 1];
    uint32_t elen = n->run_lens[count - 1];
    if (elen > 83u + sizeof VS_MESH_KIND_PREFIX - 1 && e[82] >= sizeof VS_MESH_KIND_PREFIX - 1 &&
        memcmp(e + 83, VS_MESH_KIND_PREFIX, sizeof VS_MESH_KIND_PREFIX - 1) == 0)
      break;
    err = vs_chain_runs_past_sig(&rr);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK; /* no later signed op up to `last`: the run ends here */
      break;
    }
  }
  if (err == VS_OK && end_sig == NULL) err = VS_ERR_BUFSIZE;
  if (err == VS_OK)
    err = vs_ops_writer_add_run(w, origin, end_sig, n->run_enc, n->run_lens, (uint32_t)(end - from + 1));
  if (err == VS_OK) *end_out = end;
  vs_chain_runs_close(&rr);
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
  bool own_found = false, pushes = nd_tree_pushes(n, p);
  uint32_t known_at = 0, sent_at = 0, has_at = 0;
  int own_i = nd_vv_find(&n->mine, p->sess.peer_id, &own_found);
  for (uint32_t k = 0; k <= n->mine.n && !full && err == VS_OK; k++) {
    uint32_t i = k - 1;
    if (k == 0 && !own_found) continue;
    if (k == 0) i = (uint32_t)own_i;
    else if (own_found && i == (uint32_t)own_i) continue;
    const vs_vv_entry *mine = &n->mine.e[i];
    /* A too-late replica holds its own ops back until it rebases (node_snap.c). */
    if (n->late && memcmp(mine->origin, n->cfg.identity.pk, VS_ORIGIN_BYTES) == 0) continue;
    /* The peer's entries: the rest of the walk goes in origin order, so
     * cursors find them (O(origins) a scan, not O(origins log origins):
     * at 1,000 origins the binary searches were a third of vix-sim's time). */
    uint64_t known, sent, has;
    if (k == 0) {
      known = nd_vv_get(&p->known, mine->origin);
      sent = nd_vv_get(&p->sent, mine->origin);
      has = nd_vv_get(&p->has, mine->origin);
    } else {
      known = nd_vv_seek(&p->known, &known_at, mine->origin);
      sent = nd_vv_seek(&p->sent, &sent_at, mine->origin);
      has = nd_vv_seek(&p->has, &has_at, mine->origin);
    }
    if (sent < has) sent = has; /* it sent us those: it holds them, whatever its last vector said */
    uint64_t from = (known > sent ? known : sent) + 1;
    /* Below our horizon: it lacks compacted ops, which no run carries. It
     * gets nothing of this origin, and a BEHIND (node_snap.c). */
    if (from <= mine->seq && !VS_FAULT(VS_FAULT_PARTIAL_STREAM) && nd_snap_behind(n, p, txn, mine->origin, now_ms, &err))
      continue;
    /* No edge of the tree (node_tree.c): it has new runs from elsewhere,
     * and asks (a graft) when it lacks, its own chain too (a restored
     * copy grafts within graft_wait_ms, well inside its claim grace). A
     * BEHIND above goes on every link: no run could bring what it lacks. */
    if (!pushes) continue;
#ifdef VS_FAULT_INJECTION
    if (from <= mine->seq && VS_FAULT(VS_FAULT_PARTIAL_STREAM)) { /* fault: what the log holds above it, no BEHIND */
      vs_horizon h;
      if (vs_horizon_get(txn, n->store, mine->origin, &h) == VS_OK && from <= h.seq) from = h.seq + 1;
    }
#endif
    /* A managed mesh: of an origin the peer holds nothing of, one op (its
     * admission) until its vector shows it. A device that knows no member
     * yet refuses the runs of members whose admission it lacks ("not yet a
     * member"); whole chains of those held the window until the resend and
     * came first again in it, so the origins after them, the one whose
     * BEHIND would have brought the device a snapshot included, were never
     * reached: a new device stalled for good behind an uncompacted chain
     * (a member admitted less than its invite's lifetime ago) larger than
     * the window (tests/bench_join.py; test_join_window). */
    uint64_t to = mine->seq;
    if (n->mesh_managed && known == 0 && to > 1 && !VS_FAULT(VS_FAULT_PARTIAL_STREAM)) to = 1;
    while (from <= to && err == VS_OK) { /* bounded: from grows each round */
      uint64_t end = 0;
      size_t used_before = w.wire; /* its bytes on the wire are its credit */
      err = nd_add_run(n, txn, &wr, &w, mine->origin, from, to, &end);
      if (err == VS_ERR_NOTFOUND || err == VS_ERR_BEHIND_HORIZON) {
        /* Unsigned ops (a store used without identity) stay local; ops
         * compacted here cannot be sent: never a partial stream. */
        err = VS_OK;
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
      err = nd_flight_add(p, mine->origin, end, w.wire - used_before, now_ms);
      if (err == VS_OK) err = nd_vv_set(&p->sent, mine->origin, end, NULL);
      used_before = w.wire;
      from = end + 1;
    }
  }
  vs_wal_reader_close(&wr);
  mdb_txn_abort(txn);
  size_t len = 0;
  if (err == VS_OK && runs > 0) err = vs_ops_writer_finish(&w, &len);
  if (err == VS_OK && runs > 0) err = nd_send_msg(n, p, n->msg, len);
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

vs_err nd_anti_entropy(vs_node *n, peer *p, uint64_t now_ms) {
  if (p->sent.n > 0 && now_ms >= vs_add_sat_u64(p->sent_at_ms, nd_resend_wait_ms(n, p))) {
    /* Unacknowledged for too long: forget what was sent, send again, and
     * wait twice as long before the next resend unless the peer makes
     * progress meanwhile: a peer that acknowledges nothing gets the window
     * once per backed-off resend, not once per resend_ms (issue 14). */
    bool ahead = false;
    uint32_t at = 0;
    for (uint32_t i = 0; i < p->sent.n && !ahead; i++) /* bounded: sent.n, both sorted */
      ahead = p->sent.e[i].seq > nd_vv_seek(&p->known, &at, p->sent.e[i].origin);
    if (ahead) n->stats.resends++;
    if (ahead && p->resend_level < RESEND_LEVEL_MAX) p->resend_level++;
    nd_vv_free(&p->sent);
    nd_flight_clear(p);
  }
  nd_flight_unstick(n, p, now_ms); /* an origin it refused, while it takes the others */
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
uint32_t nd_ack_id_for(vs_node *n, const uint8_t pk[VS_ORIGIN_BYTES], uint64_t now_ms) {
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
 * entries a quorum holds (nd_mesh_held). */
void nd_mesh_acked(vs_node *n, uint32_t ack_id, uint64_t held) {
  /* Nothing is delivered beyond what we hold ourselves: a vector claiming
   * more (a liar, or our own later ops held by a peer while we are a
   * restored copy) completes at most our head. */
  uint64_t head = nd_vv_get(&n->mine, n->cfg.identity.pk);
  if (held > head) held = head;
  if (held > n->ack_held[ack_id]) n->ack_held[ack_id] = held;
}

/* The own seq that ack_quorum distinct peer identities all hold: the
 * quorum-th highest of what each holds. Every own op up to it is delivered,
 * so the engine completes those entries (the mesh is a held_only transport:
 * nothing is claimed, anti-entropy does the sending). */
bool nd_mesh_held(void *ctx, vs_op_id *id_out) {
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

bool nd_mesh_online(void *ctx, uint64_t now_ms) {
  (void)now_ms;
  return vs_node_peers_ready(ctx) > 0;
}

uint64_t nd_mesh_next_check(void *ctx, uint64_t now_ms) {
  (void)ctx;
  (void)now_ms;
  return UINT64_MAX; /* a peer coming up is an event: the driver polls then */
}

/* ---- a restored copy: own ops that come back from peers ---- */

/* How long a peer may claim our own ops beyond our head without backing
 * them (each applied run of it extends it), and how long the marker stays
 * once no ready peer claims beyond our head. */
uint64_t nd_claim_grace_ms(const vs_node *n) { return vs_add_sat_u64(n->cfg.handshake_timeout_ms, 2 * n->cfg.resend_ms); }

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
vs_err nd_restore_update(vs_node *n, uint64_t now_ms) {
  uint64_t head = nd_vv_get(&n->mine, n->cfg.identity.pk), want = 0;
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
      now_ms - n->restore_quiet_since_ms >= nd_claim_grace_ms(n))
    to = 0;
  return to == n->restore_to ? VS_OK : restore_put(n, to);
}
