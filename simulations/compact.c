#define _POSIX_C_SOURCE 200809L
/* vix-sim: compaction in managed runs (issue 17; docs/storage.md,
 * "Compaction" and "Snapshots").
 *
 * With --managed (and --compact not off) every node compacts its log below
 * the stable cut (vs_node_cfg.compact_every_ms / compact_after_ops). The
 * checks this adds:
 *   - ground truth at compaction (sim_compact_watch, after every poll that
 *     took a compaction step): every origin's horizon on that node is at
 *     most the real chain head of every member the simulator admitted and
 *     did not revoke and that is up, that the node counted when that
 *     horizon last moved and still counts: the cut said they all hold
 *     those ops, and the simulator can look;
 *   - after settle (sim_compact_check): per origin, horizon <= stable cut
 *     <= head on every honest node (the cut from the store alone, acks.h);
 *   - the counts of check.c (G2, G4, the version vector) take the ops a
 *     node holds only in its base state (sim_base_ops) as held; the state
 *     is compared with the never-compacting oracle (check.c);
 *   - a late device is seeded from its inviter's snapshot
 *     (sim_seed_snapshot): the state hashes then converge like the rest.
 * The horizons are read through the library's internal chain.h (the
 * simulator links the static library; nothing here is public API). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "acks.h"
#include "chain.h"
#include "internal.h"
#include "node_int.h"
#include "sim.h"
#include "state_int.h"
#include "vixsync/snapshot.h"

static bool first_of_pk(const sim *s, uint32_t j) {
  for (uint32_t k = 0; k < j; k++)
    if (memcmp(s->nodes[k].id.pk, s->nodes[j].id.pk, VS_ORIGIN_BYTES) == 0) return false;
  return true;
}

static bool horizons_of(sim *s, vs_store *st, uint32_t i, uint64_t *hz) {
  MDB_txn *txn = NULL;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
    return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction for its horizons", i);
  vs_err err = VS_OK;
  for (uint32_t j = 0; err == VS_OK && j < s->n; j++) {
    vs_horizon h;
    err = vs_horizon_get(txn, st, s->nodes[j].id.pk, &h);
    hz[j] = err == VS_OK ? h.seq : 0;
  }
  mdb_txn_abort(txn);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: horizon: %s", i, vs_err_name(err));
  return true;
}

bool sim_horizons(sim *s, uint32_t i, uint64_t *hz) { return horizons_of(s, vs_node_store(s->nodes[i].node), i, hz); }

void sim_breaches_note(sim *s, char *why, size_t why_bytes) {
  size_t len = strlen(why);
  for (uint32_t i = 0; i < s->n && len + 1 < why_bytes; i++) {
    if (s->nodes[i].node == NULL || !sim_counted(s, i)) continue;
    vs_store *st = vs_node_store(s->nodes[i].node);
    MDB_txn *txn = NULL;
    uint64_t count = 0;
    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) continue;
    vs_err err = vs_horizon_breaches_get_txn(txn, st, &count);
    mdb_txn_abort(txn);
    if (err != VS_OK || count == 0) continue;
    int w = snprintf(why + len, why_bytes - len, "%s node %u %" PRIu64, strstr(why, "; horizon breaches") ? "," :
                     "; horizon breaches (a verdict reached below a horizon: docs/storage.md, Known limits of compaction):", i, count);
    if (w < 0 || (size_t)w >= why_bytes - len) break;
    len += (size_t)w;
  }
}

bool sim_twin_stranded(sim *s, uint32_t i, uint32_t ref, bool *out) {
  *out = false;
  if (!s->cfg->equivocate || !s->cfg->managed || !sim_twin(s, i)) return true;
  if (s->stranded[i]) {
    *out = true;
    return true;
  }
  sim_node *n = &s->nodes[i];
  if (n->node == NULL || s->nodes[ref].node == NULL) return true;
  vs_store *st = vs_node_store(n->node);
  uint64_t void_from = 0;
  vs_err err = vs_store_fork_get(st, n->id.pk, &void_from);
  if (err != VS_OK && err != VS_ERR_NOTFOUND) return sim_fail(s, SIM_EXIT_STORE, "node %u: fork verdict: %s", i, vs_err_name(err));
  vs_node_stats st_now;
  vs_node_stats_get(n->node, &st_now);
  if (void_from == 0 || st_now.snap_behind_stuck == 0) return true;
  uint64_t *hz = calloc(s->n, sizeof *hz);
  if (hz == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  bool ok = sim_horizons(s, ref, hz);
  for (uint32_t j = 0; ok && j < s->n && !*out; j++) {
    if (hz[j] == 0 || !first_of_pk(s, j)) continue;
    uint64_t head = 0;
    uint8_t hash[VS_HASH_BYTES];
    err = vs_wal_head(st, s->nodes[j].id.pk, &head, hash, NULL);
    if (err != VS_OK) ok = sim_fail(s, SIM_EXIT_STORE, "node %u: head: %s", i, vs_err_name(err));
    else if (head < hz[j]) {
      *out = true;
      s->stranded[i] = true;
      snprintf(s->stranded_why[i], sizeof s->stranded_why[i],
               "holds node %u's chain to seq %" PRIu64 ", node %u compacted it to %" PRIu64, j, head, ref, hz[j]);
    }
  }
  free(hz);
  return ok;
}

/* ---- the ops held only in the base state ---- */

typedef struct base_ctx {
  sim *s;
  const uint64_t *hz;
  uint64_t below_n, below_sum; /* log records at or below their origin's horizon: membership ops */
  bool data_below;             /* a data op below its horizon is still in the log */
  uint64_t bad_seq;
  uint32_t bad_node;
} base_ctx;

static vs_err base_cb(const vs_wal_record *rec, void *ctx) {
  base_ctx *b = ctx;
  uint32_t j = sim_node_of(b->s, rec->op.origin);
  if (j == UINT32_MAX || rec->op.seq > b->hz[j]) return VS_OK;
  if (strncmp(rec->op.kind, "mesh.", 5) != 0 && !b->data_below) {
    b->data_below = true;
    b->bad_seq = rec->op.seq;
    b->bad_node = j;
  }
  b->below_n++;
  b->below_sum += sim_id_hash64(&rec->op.id);
  return VS_OK;
}

bool sim_base_ops(sim *s, vs_store *st, uint32_t i, uint64_t *n_out, uint64_t *sum_out) {
  *n_out = 0;
  *sum_out = 0;
  uint64_t *hz = calloc(s->n, sizeof *hz);
  if (hz == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  bool ok = horizons_of(s, st, i, hz);
  uint64_t n = 0, sum = 0;
  for (uint32_t j = 0; ok && j < s->n; j++) {
    if (!first_of_pk(s, j)) continue;
    for (uint64_t q = 1; q <= hz[j]; q++) { /* bounded: the horizon is at most the origin's head */
      vs_op_id id;
      vs_op_id_derive(s->nodes[j].id.pk, q, &id);
      sum += sim_id_hash64(&id);
    }
    n += hz[j];
  }
  base_ctx b = {s, hz, 0, 0, false, 0, 0};
  if (ok && n > 0) {
    vs_err err = vs_wal_replay(st, 1, base_cb, &b);
    if (err != VS_OK) ok = sim_fail(s, SIM_EXIT_FAIL, "node %u: WAL replay: %s", i, vs_err_name(err));
  }
  if (ok && b.data_below)
    ok = sim_fail(s, SIM_EXIT_FAIL, "compaction: node %u's log still holds data op %" PRIu64 " of node %u, at or below its horizon %" PRIu64,
                  i, b.bad_seq, b.bad_node, hz[b.bad_node]);
  free(hz);
  *n_out = n - b.below_n;
  *sum_out = sum - b.below_sum;
  return ok;
}

/* The members node i's store lists as active (view[k] for sim node k). */
static bool view_of(sim *s, uint32_t i, bool *view) {
  vs_store *st = vs_node_store(s->nodes[i].node);
  MDB_txn *txn = NULL;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction", i);
  bool ok = true;
  for (uint32_t k = 0; ok && k < s->n; k++) {
    vs_err err = vs_acks_member_txn(txn, st, s->nodes[k].id.pk, &view[k]);
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
    if (err != VS_OK) ok = sim_fail(s, SIM_EXIT_STORE, "node %u: member: %s", i, vs_err_name(err));
  }
  mdb_txn_abort(txn);
  return ok;
}

/* Node i's horizons were just set (a compaction step, a snapshot's
 * install): they answer to the members of `view` from now on. */
static bool hz_from_set(sim *s, uint32_t i, const bool *view) {
  sim_node *n = &s->nodes[i];
  if (n->hz_from == NULL) n->hz_from = calloc(s->n, sizeof *n->hz_from);
  if (n->hz_from == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  memcpy(n->hz_from, view, sizeof *view * s->n);
  return true;
}

/* ---- behind_horizon: never a partial stream, always a BEHIND ---- */

/* A peer whose vector is below our horizon of an origin lacks ops that no
 * run can carry any more (docs/protocol.md, "Snapshots over a session"):
 * it must get nothing of that origin (a run above the horizon would be a
 * partial stream, refused for its gap over and over) and a BEHIND (so it
 * fetches a snapshot, or knows it must re-bootstrap). After every poll of
 * node i, for each ready session (the node's own peer table, node_int.h):
 *   (a) no partial stream: if what it sent of origin j this session moved
 *       during the poll, the peer's vector as node i knows it (after the
 *       poll: it only grows) reaches node i's horizon of j as it stood
 *       before the poll (horizons only grow): the send was to a peer known
 *       to hold everything below the horizon;
 *   (b) BEHIND told: a peer whose store (read by the simulator, not as
 *       node i believes) holds less of an origin than node i's horizon,
 *       over a ready session in which node i has its vector, must receive
 *       a BEHIND (its snap_behind_received moves) within BH_TELL_MS, or
 *       stop being behind (a snapshot installed). BEHIND repeats every
 *       2 x resend_ms while the peer stays behind; BH_TELL_MS allows ten
 *       of them, so frame loss alone cannot trip it. A peer on probation
 *       is sent nothing by design (node_member.c) and is left out. */
#define BH_TELL_MS 40000u

typedef struct vv_ctx {
  sim *s;
  uint64_t *v; /* per sim node index */
} vv_ctx;

static vs_err vv_into(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_ctx *c = ctx;
  uint32_t j = sim_node_of(c->s, origin);
  if (j != UINT32_MAX) c->v[j] = seq;
  return VS_OK;
}

static bool bh_alloc(sim *s, sim_node *n) {
  if (n->bh_sent != NULL) return true;
  n->bh_sent = calloc((size_t)VS_NODE_PEERS_MAX * s->n, sizeof *n->bh_sent);
  n->bh_handle = calloc(VS_NODE_PEERS_MAX, sizeof *n->bh_handle);
  n->bh_hz = calloc(s->n, sizeof *n->bh_hz);
  n->bh_since = calloc(s->n, sizeof *n->bh_since);
  n->bh_recv = calloc(s->n, sizeof *n->bh_recv);
  if (n->bh_sent != NULL && n->bh_handle != NULL && n->bh_hz != NULL && n->bh_since != NULL && n->bh_recv != NULL) return true;
  return sim_fail(s, SIM_EXIT_STORE, "out of memory");
}

static bool behind_watch(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (!bh_alloc(s, n)) return false;
  uint64_t *hz = calloc(s->n, sizeof *hz), *rv = calloc(s->n, sizeof *rv);
  bool *seen = calloc(s->n, sizeof *seen);
  bool ok = hz != NULL && rv != NULL && seen != NULL ? sim_horizons(s, i, hz) : sim_fail(s, SIM_EXIT_STORE, "out of memory");
  uint64_t hz_any = 0;
  for (uint32_t j = 0; ok && j < s->n; j++) hz_any |= hz[j] | n->bh_hz[j];
  const vs_node *nd = n->node;
  for (uint32_t slot = 0; ok && hz_any != 0 && slot < VS_NODE_PEERS_MAX; slot++) {
    const peer *p = &nd->peers[slot];
    uint64_t *prev = n->bh_sent + (size_t)slot * s->n;
    if (p->st != PEER_READY || p->handle != n->bh_handle[slot]) { /* another session: nothing sent in it yet */
      memset(prev, 0, sizeof *prev * s->n);
      n->bh_handle[slot] = p->st == PEER_READY ? p->handle : 0;
    }
    if (p->st != PEER_READY) continue;
    uint32_t r = sim_node_of(s, p->sess.peer_id);
    for (uint32_t j = 0; ok && j < s->n; j++) {
      if (!first_of_pk(s, j)) continue;
      uint64_t sent = nd_vv_get(&p->sent, s->nodes[j].id.pk), known = nd_vv_get(&p->known, s->nodes[j].id.pk);
      if (sent > prev[j] && known < n->bh_hz[j])
        ok = sim_fail(s, SIM_EXIT_FAIL,
                      "behind_horizon: at t=%" PRIu64 " ms node %u sent node %u ops of node %u's chain up to seq %" PRIu64
                      " (a partial stream), but node %u's vector as node %u knows it holds only seq %" PRIu64
                      ", below node %u's horizon %" PRIu64 ": it must get nothing of that chain and a BEHIND",
                      s->now, i, r, j, sent, r, i, known, i, n->bh_hz[j]);
      prev[j] = sent;
    }
    /* (b): the peer's store itself, once node i has its vector; not a peer
     * on probation (a device whose admission node i has not seen yet, one
     * on an older key past the grace), which by design is sent nothing. */
    if (!ok || r == UINT32_MAX || r == i || sim_twin(s, r) || p->known_vector == 0 || p->probation || s->nodes[r].node == NULL)
      continue;
    memset(rv, 0, sizeof *rv * s->n);
    vv_ctx vc = {s, rv};
    vs_err err = vs_vv_each(vs_node_store(s->nodes[r].node), vv_into, &vc);
    if (err != VS_OK) {
      ok = sim_fail(s, SIM_EXIT_STORE, "node %u: version vector: %s", r, vs_err_name(err));
      break;
    }
    uint32_t behind_j = UINT32_MAX;
    for (uint32_t j = 0; j < s->n && behind_j == UINT32_MAX; j++)
      if (first_of_pk(s, j) && rv[j] < hz[j]) behind_j = j;
    if (behind_j == UINT32_MAX) continue;
    seen[r] = true;
    vs_node_stats rs;
    sim_node_stats_total(&s->nodes[r], &rs);
    vs_node_stats is;
    sim_node_stats_total(n, &is);
    if (n->bh_since[r] == 0 || rs.snap_behind_received != n->bh_recv[r]) { /* newly behind, or told since */
      n->bh_since[r] = s->now > 0 ? s->now : 1;
      n->bh_recv[r] = rs.snap_behind_received;
    } else if (s->now - n->bh_since[r] > BH_TELL_MS) {
      ok = sim_fail(s, SIM_EXIT_FAIL,
                    "behind_horizon: node %u has held node %u's chain only up to seq %" PRIu64 ", below node %u's horizon %" PRIu64
                    ", over a ready session since t=%" PRIu64 " ms and was told no BEHIND in %u ms (node %u sent %" PRIu64
                    " BEHIND messages in all)",
                    r, behind_j, rv[behind_j], i, hz[behind_j], n->bh_since[r], BH_TELL_MS, i, is.snap_behind_sent);
    }
  }
  for (uint32_t r = 0; ok && r < s->n; r++)
    if (!seen[r]) n->bh_since[r] = 0;
  if (ok) memcpy(n->bh_hz, hz, sizeof *hz * s->n);
  free(hz);
  free(rv);
  free(seen);
  return ok;
}

/* A snapshot installed over a session (--join-net): what no callback ran
 * for. Everything the node held before came through a callback (its
 * client writes, runs it applied) or is one of its own membership ops
 * (counted at the check), and a snapshot drops nothing it held (an install
 * needs a store holding only its own ops; a rebase, one whose anchors cover
 * every other chain it holds). So what it holds now, less what the
 * callbacks counted, is what the snapshot brought: its base state and the
 * membership ops it put in the log. Own membership ops are left out here
 * as check.c adds them. */
typedef struct held_ctx {
  const sim *s;
  uint32_t node;
  uint64_t n, sum;
} held_ctx;

static vs_err held_cb(const vs_wal_record *rec, void *ctx) {
  held_ctx *h = ctx;
  if (memcmp(rec->op.origin, h->s->nodes[h->node].id.pk, VS_ORIGIN_BYTES) == 0 && strncmp(rec->op.kind, "mesh.", 5) == 0)
    return VS_OK;
  h->n++;
  h->sum += sim_id_hash64(&rec->op.id);
  return VS_OK;
}

bool sim_snap_watch(sim *s, uint32_t t) {
  sim_node *n = &s->nodes[t];
  if (n->node == NULL) return true;
  vs_node_stats st;
  sim_node_stats_total(n, &st);
  if (st.snap_installs == n->snap_installs_seen) return true;
  bool rebase = st.snap_rebases != n->snap_rebases_seen;
  n->snap_installs_seen = st.snap_installs;
  n->snap_rebases_seen = st.snap_rebases;
  if (rebase) return true; /* a store that held data: suspend.c accounts for it */
  s->tot.seeded++;
  n->seeded = true;
  if (s->verbose_out != NULL)
    fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u installed a snapshot received over a session%s\n", s->now, t,
            st.snap_rebases > 0 ? " (a rebase)" : "");
  bool *view = calloc(s->n, sizeof *view);
  bool ok = view != NULL ? view_of(s, t, view) && hz_from_set(s, t, view) : sim_fail(s, SIM_EXIT_STORE, "out of memory");
  free(view);
  vs_store *store = vs_node_store(n->node);
  uint64_t base_n = 0, base_sum = 0;
  if (ok) ok = sim_base_ops(s, store, t, &base_n, &base_sum);
  held_ctx h = {s, t, 0, 0};
  vs_err err = ok ? vs_wal_replay(store, 1, held_cb, &h) : VS_OK;
  if (ok && err != VS_OK) ok = sim_fail(s, SIM_EXIT_FAIL, "node %u: WAL replay: %s", t, vs_err_name(err));
  n->seed_n = base_n + h.n - n->applied;
  n->seed_sum = base_sum + h.sum - n->applied_sum;
  return ok;
}

/* ---- ground truth at every compaction step ---- */

bool sim_compact_watch(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (!sim_cfg_compacts(s->cfg) || n->node == NULL) return true;
  if (!behind_watch(s, i) || (s->cfg->managed && !sim_snap_watch(s, i))) return false;
  vs_node_stats st;
  vs_node_stats_get(n->node, &st);
  if (st.compact_steps == n->compact_seen) return true;
  n->compact_seen = st.compact_steps;
  sim_trace(s, 'C', i, st.compact_steps, st.ops_compacted, NULL, 0);
  uint64_t *hz = calloc(s->n, sizeof *hz);
  bool *view = calloc(s->n, sizeof *view);
  bool ok = hz != NULL && view != NULL ? sim_horizons(s, i, hz) : sim_fail(s, SIM_EXIT_STORE, "out of memory");
  /* The members node i knows as active: the cut it compacted below covers
   * them (a device admitted where i has not heard of it yet is not in it:
   * the members that have keep those ops until it acknowledges). */
  if (ok) ok = view_of(s, i, view);
  /* A member i's cut leaves out (silent past suspend_after) may hold less,
   * and its ack does not bound these horizons: suspend.c. */
  for (uint32_t k = 0; ok && k < s->n; k++) {
    bool suspended = false;
    if (view[k] && s->nodes[k].node != NULL && s->nodes[k].ms == MS_MEMBER) ok = sim_susp_exempt(s, i, k, &suspended);
    if (suspended) view[k] = false;
  }
  if (ok) ok = hz_from_set(s, i, view);
  /* Per origin, the members its horizon answers to are those counted when
   * it last moved (horizons only grow), and still counted now: a member
   * node i hears of only after that step (its admission arriving after its
   * invite expired in i's view) was in no cut that moved it, and is behind
   * that horizon by the library's model: it rebases onto a snapshot like a
   * new device (docs/simulator.md, "Compaction"; docs/storage.md, "Known
   * limits of compaction"). The horizons that move at this step answer to
   * the whole view, as before. */
  if (ok && n->hz_seen == NULL) {
    n->hz_seen = calloc(s->n, sizeof *n->hz_seen);
    n->hz_bound = calloc((size_t)s->n * s->n, sizeof *n->hz_bound);
    if (n->hz_seen == NULL || n->hz_bound == NULL) ok = sim_fail(s, SIM_EXIT_STORE, "out of memory");
  }
  for (uint32_t j = 0; ok && j < s->n; j++) {
    bool *bound = n->hz_bound + (size_t)j * s->n;
    if (hz[j] != n->hz_seen[j]) {
      memcpy(bound, view, sizeof *view * s->n);
      n->hz_seen[j] = hz[j];
    }
    if (hz[j] == 0 || !first_of_pk(s, j)) continue;
    for (uint32_t k = 0; ok && k < s->n; k++) {
      const sim_node *m = &s->nodes[k];
      if (k == i || m->node == NULL || m->ms != MS_MEMBER || !view[k] || !bound[k]) continue;
      uint64_t head = 0;
      vs_err err = vs_wal_head(vs_node_store(m->node), s->nodes[j].id.pk, &head, NULL, NULL);
      if (err == VS_ERR_NOTFOUND) err = VS_OK;
      if (err == VS_OK && sim_twin(s, k)) {
        /* --equivocate: one identity, two devices, one ack record: what it
         * acknowledged, one of them holds (the cut cannot tell them apart,
         * and the clone is void from the fork on: DESIGN.md). */
        const sim_node *o = &s->nodes[k ^ 1u];
        uint64_t other = 0;
        if (o->node == NULL) continue; /* the other device is down: it may be the one that acknowledged */
        err = vs_wal_head(vs_node_store(o->node), s->nodes[j].id.pk, &other, NULL, NULL);
        if (err == VS_ERR_NOTFOUND) err = VS_OK;
        if (other > head) head = other;
      }
      if (err != VS_OK) ok = sim_fail(s, SIM_EXIT_STORE, "node %u: chain head: %s", k, vs_err_name(err));
      else if (head < hz[j])
        ok = sim_fail(s, SIM_EXIT_FAIL,
                      "compaction above the truth: at t=%" PRIu64 " ms node %u compacted node %u's chain up to seq %" PRIu64
                      ", but member node %u holds it only up to seq %" PRIu64,
                      s->now, i, j, hz[j], k, head);
    }
  }
  free(hz);
  free(view);
  return ok;
}

/* ---- after settle: horizon <= what its members acked; cut <= head ---- */

/* The check is not `horizon <= stable cut`: a member admitted after a
 * compaction has acknowledged nothing when it arrives, and its missing ack
 * drops every node's cut to 0 under horizons that were right when they
 * moved (docs/simulator.md, "Compaction"). Per origin, a node's horizon is
 * at most the seq of that origin in the acked vector the node stores of
 * each member its horizons answer to (hz_from: active in its view at its
 * last compaction step, or at its snapshot's install) that is still an
 * active member there; and the stable cut (vs_acks_cut_txn) is at most the
 * head. Stored acks only grow, so for a compacting node this holds from the
 * step on (what the step relied on stays stored); for a seeded device it
 * says that it came to store every member's ack of its snapshot's horizons
 * (the acks it could not check before, tests/test_acks_snapshot.c). */

typedef struct cut_ctx {
  sim *s;
  uint64_t compacted; /* sum of horizons */
  bool bad;
  uint32_t bad_node;
  uint64_t bad_cut, bad_head;
} cut_ctx;

static vs_err cut_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx) {
  cut_ctx *c = ctx;
  if (cut > head && !c->bad) {
    c->bad = true;
    c->bad_node = sim_node_of(c->s, origin);
    c->bad_cut = cut;
    c->bad_head = head;
  }
  return VS_OK;
}

/* The seq of origin `pk` in member k's acked vector as node i stores it
 * (0: no ack, or the origin is not in it). full: VS_WIRE_VV_MAX entries. */
static vs_err acked_seq(MDB_txn *txn, vs_store *st, const uint8_t member[VS_ORIGIN_BYTES], vs_ack_entry *full, uint32_t *full_n,
                        bool *have) {
  vs_ack_rec rec;
  *full_n = 0;
  *have = false;
  vs_err err = vs_acks_get_txn(txn, st, member, &rec);
  if (err == VS_ERR_NOTFOUND) return VS_OK;
  if (err == VS_OK) err = vs_acks_merge(rec.key, rec.key_n, rec.delta, rec.delta_n, full, VS_WIRE_VV_MAX, full_n);
  vs_ack_rec_free(&rec);
  *have = err == VS_OK;
  return err;
}

static uint64_t seq_in(const vs_ack_entry *e, uint32_t n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  for (uint32_t k = 0; k < n; k++) /* bounded: n */
    if (memcmp(e[k].origin, origin, VS_ORIGIN_BYTES) == 0) return e[k].seq;
  return 0;
}

bool sim_compact_check(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  vs_store *st = vs_node_store(n->node);
  uint64_t *hz = calloc(s->n, sizeof *hz);
  bool *view = calloc(s->n, sizeof *view);
  vs_ack_entry *full = malloc(sizeof *full * VS_WIRE_VV_MAX);
  bool ok = hz != NULL && view != NULL && full != NULL ? sim_horizons(s, i, hz) && view_of(s, i, view)
                                                        : sim_fail(s, SIM_EXIT_STORE, "out of memory");
  MDB_txn *txn = NULL;
  if (ok && mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
    ok = sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction for its cut", i);
  cut_ctx c = {s, 0, false, 0, 0, 0};
  vs_acks_cut_info info;
  memset(&info, 0, sizeof info);
  vs_err err = ok ? vs_acks_cut_txn(txn, st, 0, cut_cb, &c, &info) : VS_OK;
  if (ok && err != VS_OK) ok = sim_fail(s, SIM_EXIT_STORE, "node %u: the stable cut: %s", i, vs_err_name(err));
  if (ok && c.bad)
    ok = sim_fail(s, SIM_EXIT_FAIL, "compaction: node %u, origin of node %u: stable cut %" PRIu64 " above the head %" PRIu64, i,
                  c.bad_node, c.bad_cut, c.bad_head);
  uint64_t hz_sum = 0;
  for (uint32_t j = 0; ok && j < s->n; j++) hz_sum += first_of_pk(s, j) ? hz[j] : 0;
  if (ok && hz_sum > 0 && n->hz_from == NULL)
    ok = sim_fail(s, SIM_EXIT_FAIL, "compaction: node %u holds horizons (sum %" PRIu64 ") the simulator never saw set", i, hz_sum);
  for (uint32_t k = 0; ok && hz_sum > 0 && k < s->n; k++) {
    /* The twins (--equivocate): one identity, two devices, one ack record
     * that either device's newer ack replaces, so it can go down. */
    if (!n->hz_from[k] || !view[k] || !first_of_pk(s, k) || sim_twin(s, k)) continue;
    uint32_t full_n = 0;
    bool have = false;
    err = acked_seq(txn, st, s->nodes[k].id.pk, full, &full_n, &have);
    if (err != VS_OK) {
      ok = sim_fail(s, SIM_EXIT_STORE, "node %u: the ack of node %u: %s", i, k, vs_err_name(err));
      break;
    }
    for (uint32_t j = 0; ok && j < s->n; j++) {
      if (hz[j] == 0 || !first_of_pk(s, j)) continue;
      uint64_t acked = seq_in(full, full_n, s->nodes[j].id.pk);
      if (acked >= hz[j]) continue;
      vs_node_stats ns, ks;
      sim_node_stats_total(n, &ns);
      sim_node_stats_total(&s->nodes[k], &ks);
      ok = sim_fail(s, SIM_EXIT_FAIL,
                    "compaction: node %u%s, origin of node %u: horizon %" PRIu64 " above member node %u's ack of it, %" PRIu64
                    "%s (node %u's horizons answer to node %u: a member when they were last set; it holds acks of %u of %u active "
                    "members; acks received %" PRIu64 ", unusable %" PRIu64 "; node %u made %" PRIu64 " acks, sent %" PRIu64 ")",
                    i, n->seeded ? " (seeded from a snapshot)" : "", j, hz[j], k, acked, have ? "" : " (no ack of it stored)", i, k,
                    info.with_ack, info.members, ns.acks_received, ns.acks_unusable, k, ks.acks_made, ks.acks_sent);
    }
  }
  if (txn != NULL) mdb_txn_abort(txn);
  free(hz);
  free(view);
  free(full);
  if (ok) s->compacted_total += hz_sum;
  return ok;
}

/* ---- a late device seeded by a snapshot ---- */

typedef struct sbuf {
  uint8_t *p;
  size_t n, cap, at;
} sbuf;

static vs_err sb_write(void *ctx, const uint8_t *bytes, size_t len) {
  sbuf *b = ctx;
  if (len > SIZE_MAX / 2 - b->n) return VS_ERR_NOMEM;
  if (b->n + len > b->cap) {
    size_t cap = b->cap == 0 ? 65536 : b->cap;
    while (cap < b->n + len) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) return VS_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, bytes, len);
  b->n += len;
  return VS_OK;
}

static vs_err sb_read(void *ctx, uint8_t *buf, size_t len) {
  sbuf *b = ctx;
  if (len > b->n - b->at) return VS_ERR_TRUNCATED;
  memcpy(buf, b->p + b->at, len);
  b->at += len;
  return VS_OK;
}

/* A digest of every byte of a store's base state (the state at its
 * horizons): each entry (target, kind, hlc, origin, value, lone digest)
 * and incr row, in the export's order. Not the state hash: that covers
 * the ops' digests, not the values (a value changed in transit keeps it). */
static vs_err bd_entry(void *ctx, const vs_state_export_entry *e) {
  crypto_generichash_state *h = ctx;
  uint8_t fixed[4 + 1 + 8 + 4 + 1];
  vs_put_u32le(fixed, e->target_bytes);
  fixed[4] = e->base_kind;
  vs_put_u64le(fixed + 5, e->base_hlc);
  vs_put_u32le(fixed + 13, e->value_bytes);
  fixed[17] = e->lone ? 1 : 0;
  crypto_generichash_update(h, (const uint8_t *)"E", 1);
  crypto_generichash_update(h, fixed, sizeof fixed);
  crypto_generichash_update(h, e->target, e->target_bytes);
  if (e->base_origin != NULL) crypto_generichash_update(h, e->base_origin, VS_ORIGIN_BYTES);
  if (e->value_bytes > 0) crypto_generichash_update(h, e->value, e->value_bytes);
  crypto_generichash_update(h, e->lone_digest, VS_HASH_BYTES);
  return VS_OK;
}

static vs_err bd_incr(void *ctx, uint64_t hlc, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, int64_t delta) {
  crypto_generichash_state *h = ctx;
  uint8_t rec[1 + 8 + 8 + 8];
  rec[0] = 'I';
  vs_put_u64le(rec + 1, hlc);
  vs_put_u64le(rec + 9, seq);
  vs_put_u64le(rec + 17, (uint64_t)delta);
  crypto_generichash_update(h, rec, sizeof rec);
  crypto_generichash_update(h, origin, VS_ORIGIN_BYTES);
  return VS_OK;
}

static vs_err base_hash(vs_store *st, uint8_t out[VS_HASH_BYTES]) {
  MDB_txn *txn = NULL;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) return VS_ERR_STORE;
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, VS_HASH_BYTES);
  vs_err err = vs_state_export_txn(txn, st, true, bd_entry, bd_incr, &h);
  mdb_txn_abort(txn);
  crypto_generichash_final(&h, out, VS_HASH_BYTES);
  return err;
}

/* Install b into node t's store (its node closed); on success *got gets
 * the base state's hash the store then holds (what the install folded
 * from the entries, src/snapshot.c). */
static vs_err install(sim *s, uint32_t t, sbuf *b, uint8_t got[VS_HASH_BYTES]) {
  sim_node *n = &s->nodes[t];
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_NOSYNC;
  cfg.map_bytes = (uint64_t)s->cfg->map_mib << 20;
  cfg.create = false;
  vs_store *st = NULL;
  vs_err err = vs_store_open(n->dir, &cfg, &st);
  if (err == VS_OK) err = vs_store_set_identity(st, &n->id);
  b->at = 0;
  if (err == VS_OK) err = vs_snapshot_install(st, sb_read, b, sim_local_ms(n, s->now), NULL);
  if (err == VS_OK) err = base_hash(st, got);
  vs_store_close(st);
  return err;
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Where the last state entry's hlc's top byte is: the least written key.
 * Raised there, the entry wins over every later write of its key (a byte
 * flipped in a value is soon covered by one). From the layout in src/snapshot.c's header; b->n: none.
 * Header (its bytes at offset 12, chunks at 156), chunk hashes, then per
 * chunk [u32 bytes][u32 index][u32 items] and items [u8 type][u32 len]
 * [body]; ENTRY (1) body: u32 target bytes, target, u8 kind, u64 hlc,
 * origin 32, u32 value bytes, value. */
static size_t tamper_at(const sbuf *b) {
  if (b->n < 192) return b->n;
  uint32_t chunks = le32(b->p + 156);
  size_t at = (size_t)le32(b->p + 12) + (size_t)chunks * 32u, found = b->n;
  for (uint32_t c = 0; c < chunks && at + 12 <= b->n; c++) {
    size_t end = at + 4 + le32(b->p + at);
    uint32_t items = le32(b->p + at + 8);
    size_t p = at + 12;
    for (uint32_t i = 0; i < items && p + 5 <= end && end <= b->n; i++) {
      size_t len = le32(b->p + p + 1), body = p + 5;
      if (b->p[p] == 1 && body + 4 <= end) {
        size_t hlc = body + 4 + le32(b->p + body) + 1, vlen = hlc + 8 + 32;
        /* A value's first byte: only the chunk hashes tell (an HLC pushed
         * past the clock is refused on its own: VS_ERR_FUTURE). */
        if (vlen + 4 < end && le32(b->p + vlen) > 0) found = vlen + 4;
      }
      p = body + len;
    }
    at = end;
  }
  return found;
}

typedef struct others_ctx {
  const uint8_t *own;
  uint64_t n, sum;
} others_ctx;

static vs_err others_cb(const vs_wal_record *rec, void *ctx) {
  others_ctx *o = ctx;
  if (memcmp(rec->op.origin, o->own, VS_ORIGIN_BYTES) == 0) return VS_OK;
  o->n++;
  o->sum += sim_id_hash64(&rec->op.id);
  return VS_OK;
}

/* Node k's snapshot into b (b->n 0: none to use). A managed snapshot that
 * cannot show its signer as a member is passed over: the signer's
 * admission is not at or below its anchors yet (nothing compacted, or not
 * that far: docs/simulator.md, "Compaction", item 2); vs_snapshot_make
 * refuses it (VS_ERR_NOT_MEMBER) once the library checks that itself,
 * and today it comes out with no origin at all or is refused at install. */
static bool snap_of(sim *s, uint32_t k, sbuf *b, vs_snapshot_info *info) {
  b->n = b->at = 0;
  vs_err err = vs_snapshot_make(vs_node_store(s->nodes[k].node), sb_write, b, info);
  if (err == VS_ERR_NOT_MEMBER || (err == VS_OK && info->origins == 0)) {
    b->n = 0;
    s->tot.seed_passed++;
    sim_trace(s, 'Z', k, err == VS_OK ? 0 : 1, 0, NULL, 0);
    return true;
  }
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_snapshot_make: %s", k, vs_err_name(err));
  return true;
}

bool sim_seed_snapshot(sim *s, uint32_t a, uint32_t t) {
  sim_node *n = &s->nodes[t];
  if (s->nodes[a].node == NULL || n->node == NULL) return sim_fail(s, SIM_EXIT_FAIL, "seed node %u from node %u: one is down", t, a);
  vs_outbox_close(n->ob);
  n->ob = NULL;
  vs_node_close(n->node);
  n->node = NULL;
  /* The inviter's snapshot first, then every other member's that is up,
   * as a user would (vix-node snapshot on another device): the first that
   * installs seeds the device. */
  sbuf b = {NULL, 0, 0, 0};
  vs_snapshot_info info;
  memset(&info, 0, sizeof info);
  vs_err err = VS_ERR_NOT_MEMBER;
  bool ok = true, tampered = false;
  uint32_t maker = a;
  uint8_t want[VS_HASH_BYTES], got[VS_HASH_BYTES];
  memset(got, 0, sizeof got);
  for (uint32_t c = 0; ok && err == VS_ERR_NOT_MEMBER && c < s->n; c++) { /* bounded: s->n makers */
    uint32_t k = c == 0 ? a : (c <= a ? c - 1 : c);
    if (c > 0 && (k == a || k == t || s->nodes[k].node == NULL || s->nodes[k].ms != MS_MEMBER)) continue;
    ok = snap_of(s, k, &b, &info);
    if (!ok || b.n == 0) continue;
    maker = k;
    /* The truth: the maker's base state, as it holds it now (the snapshot's
     * instant: nothing ran in between). */
    vs_err herr = base_hash(vs_node_store(s->nodes[k].node), want);
    if (herr != VS_OK) ok = sim_fail(s, SIM_EXIT_STORE, "node %u: its base state's hash: %s", k, vs_err_name(herr));
    if (!ok) break;
    size_t flip = tamper_at(&b);
    if (s->cfg->tamper_snapshot && !tampered && flip < b.n) {
      /* One bit of the last entry's value flipped: every changed byte
       * must be refused, nothing installed (snapshot.h). */
      tampered = true;
      uint8_t was = b.p[flip];
      b.p[flip] = (uint8_t)(was ^ 0x40);
      err = install(s, t, &b, got);
      b.p[flip] = was;
      sim_trace(s, 'z', k, t, (uint64_t)(int64_t)err, NULL, 0);
      if (err == VS_OK) s->tot.tamper_installed++;
      else s->tot.tamper_refused++;
      if (err == VS_OK && s->verbose_out != NULL)
        fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u installed a tampered snapshot of node %u\n", s->now, t, k);
      if (err == VS_OK) break; /* the checks must then find what it changed */
    }
    err = install(s, t, &b, got); /* the genuine one */
    sim_trace(s, 'Z', k, t, (uint64_t)(int64_t)err, info.state_hash, sizeof info.state_hash);
    if (err == VS_ERR_NOT_MEMBER) s->tot.seed_passed++;
  }
  free(b.p);
  if (!ok) return false;
  if (err == VS_ERR_NOT_MEMBER) {
    /* No member's snapshot installs: the device syncs by replay (the
     * members that know of it compact nothing it has not acknowledged; if
     * the mesh compacted before, convergence fails and says so). */
    s->tot.seed_skipped++;
    return sim_node_open(s, t);
  }
  if (err != VS_OK) {
    uint64_t *hz = calloc(s->n, sizeof *hz), sum = 0;
    if (hz != NULL && sim_horizons(s, maker, hz))
      for (uint32_t j = 0; j < s->n; j++) sum += hz[j];
    free(hz);
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_snapshot_install of node %u's snapshot (%" PRIu64 " bytes, %u origins, %" PRIu64
                    " membership ops; node %u's horizons sum to %" PRIu64 "): %s",
                    t, maker, info.bytes, info.origins, info.mesh_ops, maker, sum, vs_err_name(err));
  }
  /* Ground truth at install: the device holds its maker's base state. A
   * copy changed on the way that the install let in differs here, even
   * when later writes cover the changed entry in the live state. */
  if (memcmp(want, got, VS_HASH_BYTES) != 0)
    return sim_fail(s, SIM_EXIT_FAIL, "snapshot: node %u's base state after installing node %u's snapshot is not node %u's (hash %02x%02x%02x%02x, want %02x%02x%02x%02x)",
                    t, maker, maker, got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3]);
  s->tot.seeded++;
  n->seeded = true;
  if (s->verbose_out != NULL)
    fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u seeded from node %u's snapshot (%" PRIu64 " bytes, %" PRIu64 " entries)\n",
            s->now, t, maker, info.bytes, info.entries);
  if (!sim_node_open(s, t)) return false;
  bool *view = calloc(s->n, sizeof *view);
  bool vok = view != NULL ? view_of(s, t, view) && hz_from_set(s, t, view) : sim_fail(s, SIM_EXIT_STORE, "out of memory");
  free(view);
  if (!vok) return false;
  /* What no callback ran for: the base state, and the other origins' ops
   * the snapshot put in the log (membership ops). */
  vs_store *st = vs_node_store(n->node);
  if (!sim_base_ops(s, st, t, &n->seed_n, &n->seed_sum)) return false;
  others_ctx o = {n->id.pk, 0, 0};
  err = vs_wal_replay(st, 1, others_cb, &o);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: WAL replay: %s", t, vs_err_name(err));
  n->seed_n += o.n;
  n->seed_sum += o.sum;
  return true;
}
