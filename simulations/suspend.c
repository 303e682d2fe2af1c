#define _POSIX_C_SOURCE 200809L
/* vix-sim: members away past suspend_after (issue 17; docs/simulator.md,
 * "A member away past suspend_after").
 *
 * A member cut off (isolate N, a crash, a partition) for longer than
 * --suspend-after leaves the others' stable cut (vs_acks_suspended_txn):
 * they compact past what it holds. When it returns it is BEHIND, fetches a
 * peer's snapshot over the session and rebases onto it (vs_snapshot_rebase,
 * driven by its node like every other step: src/node_snap.c); its unsent
 * own ops from the first at or below the snapshot's gc_floor are orphans,
 * surfaced once through the store's orphan callback and never sent.
 *
 * What is checked here:
 *   - every orphan callback names an acknowledged write of its node (same
 *     id, hlc, kind, target and payload), and no write is surfaced twice
 *     (across polls, crashes and restarts: orphans_twice);
 *   - at each rebase (stats.snap_rebases moved during a poll) the orphans
 *     surfaced in that poll are exactly the ones the oracle expects from
 *     the sim's own record of the node's writes: its acknowledged writes
 *     above the snapshot's anchor of its chain (the node's own horizon after
 *     the rebase), from the first whose HLC is at or below the gc_floor it
 *     adopted, to its head; none when no such write exists;
 *   - compact.c's ground-truth check (no horizon past what a member holds)
 *     skips exactly the members the compacting node's cut leaves out
 *     (sim_susp_exempt: the library's own rule, vs_acks_suspended_txn);
 *     one left out while neither it nor that node was isolated or down and
 *     no partition was on within suspend_after is counted (susp_present:
 *     a stalled session looks silent too), not failed;
 *   - after quiesce: each node's orphan records (vs_orphans_list) are
 *     exactly the writes surfaced for it, and no node holds an orphaned op
 *     (it was never sent). check.c exempts exactly the surfaced writes from
 *     G2 (lost by design); a write lost without being surfaced fails G2.
 * The returning node must converge as every node must (G5: state hash and
 * version vector). After a rebase its apply accounting (G4) starts again
 * from what its store holds: the snapshot's state came without callbacks. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "acks.h"
#include "chain.h"
#include "internal.h"
#include "sim.h"
#include "state_int.h"
#include "wal_int.h"

typedef struct susp {
  uint32_t *fresh; /* ack indices surfaced since the last watch */
  size_t fresh_n, fresh_cap;
  uint32_t fresh_node;
  uint64_t *away_v; /* per node: 1 + the last virtual ms a poll saw it isolated or down (0: never) */
  uint64_t part_v;  /* 1 + the last virtual ms a poll saw a partition on (0: never) */
} susp;

static susp *state_of(sim *s) {
  if (s->susp == NULL) s->susp = calloc(1, sizeof(susp));
  return s->susp;
}

void sim_susp_free(sim *s) {
  susp *u = s->susp;
  if (u == NULL) return;
  free(u->fresh);
  free(u->away_v);
  free(u);
  s->susp = NULL;
}

static uint8_t kind_of(const vs_op *op) {
  if (strcmp(op->kind, "put") == 0) return 0;
  if (strcmp(op->kind, "del") == 0) return 1;
  if (strcmp(op->kind, "incr") == 0) return 2;
  return 3;
}

/* The acknowledged write of node i that `op` is (id, hlc, digest); SIZE_MAX: none. */
static size_t ack_find(const sim *s, uint32_t i, const vs_op *op) {
  uint8_t digest[16];
  sim_op_digest(kind_of(op), op->target, op->target_bytes, op->payload, op->payload_bytes, digest);
  for (size_t k = 0; k < s->acked_n; k++) { /* bounded: the acks */
    const sim_ack *a = &s->acked[k];
    if (a->node == i && vs_op_id_equal(&a->id, &op->id) && a->hlc == op->hlc && memcmp(a->digest, digest, 16) == 0) return k;
  }
  return SIZE_MAX;
}

vs_err sim_susp_on_orphan(void *ctx, const vs_orphan *o) {
  sim_node *n = ctx;
  sim *s = n->sim;
  susp *u = state_of(s);
  s->tot.orphans_surfaced++;
  sim_trace(s, 'U', n->idx, o->seq, o->hlc, o->op, o->op_bytes);
  vs_op op;
  if (u == NULL) {
    sim_fail(s, SIM_EXIT_STORE, "out of memory");
    return VS_OK;
  }
  if (vs_op_decode(o->op, o->op_bytes, &op) != VS_OK || memcmp(op.origin, n->id.pk, VS_ORIGIN_BYTES) != 0 || op.seq != o->seq) {
    sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u surfaced orphan %" PRIu64 " (seq %" PRIu64 ") that is not an op of its own chain",
             n->idx, o->id, o->seq);
    return VS_OK;
  }
  size_t k = ack_find(s, n->idx, &op);
  if (k == SIZE_MAX) {
    sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u surfaced its op at seq %" PRIu64 " (hlc %" PRIu64 ") as an orphan: no client write of it "
             "was acknowledged as that op", n->idx, o->seq, o->hlc);
    return VS_OK;
  }
  sim_ack *a = &s->acked[k];
  if (a->orphaned > 0) {
    s->tot.orphans_twice++;
    sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u surfaced its write at seq %" PRIu64 " (hlc %" PRIu64 ") a second time", n->idx, o->seq,
             o->hlc);
  }
  if (a->orphaned < UINT8_MAX) a->orphaned++;
  if (u->fresh_n > 0 && u->fresh_node != n->idx) {
    sim_fail(s, SIM_EXIT_FAIL, "orphans: nodes %u and %u surfaced orphans in one poll", u->fresh_node, n->idx);
    return VS_OK;
  }
  if (u->fresh_n == u->fresh_cap) {
    size_t cap = u->fresh_cap == 0 ? 64 : u->fresh_cap * 2;
    uint32_t *v = realloc(u->fresh, sizeof *v * cap);
    if (v == NULL) {
      sim_fail(s, SIM_EXIT_STORE, "out of memory");
      return VS_OK;
    }
    u->fresh = v;
    u->fresh_cap = cap;
  }
  u->fresh[u->fresh_n++] = (uint32_t)k;
  u->fresh_node = n->idx;
  return VS_OK;
}

/* Count and id-hash sum of every record of the log. */
typedef struct log_sum {
  uint64_t n, sum;
} log_sum;

static vs_err log_sum_cb(const vs_wal_record *rec, void *ctx) {
  log_sum *l = ctx;
  l->n++;
  l->sum += sim_id_hash64(&rec->op.id);
  return VS_OK;
}

/* The store's gc_floor. */
static bool gc_floor_of(sim *s, uint32_t i, uint64_t *out) {
  vs_store *st = vs_node_store(s->nodes[i].node);
  MDB_txn *txn = NULL;
  *out = 0;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction", i);
  vs_err err = vs_state_gc_floor_get_txn(txn, st, out);
  mdb_txn_abort(txn);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: gc_floor: %s", i, vs_err_name(err));
  return true;
}

/* The rebase node i just took: the orphans surfaced in this poll are
 * exactly its acknowledged writes above the anchor, from the first at or
 * below the gc_floor on (writes orphaned by an earlier rebase are no longer
 * its chain's: their seqs were written again); a too-late replica's
 * (`late`: back after hearing no member for about twice suspend_after), from
 * the first no other node holds, if that comes first (src/node_snap.c). */
static bool rebase_oracle(sim *s, uint32_t i, const susp *u, bool late) {
  uint64_t *hz = calloc(s->n, sizeof *hz), floor = 0;
  bool ok = hz != NULL ? sim_horizons(s, i, hz) && gc_floor_of(s, i, &floor) : sim_fail(s, SIM_EXIT_STORE, "out of memory");
  uint64_t anchor = ok ? hz[i] : 0;
  free(hz);
  if (!ok) return false;
  uint64_t held = anchor; /* of node i's chain, what the others hold */
  for (uint32_t j = 0; late && j < s->n; j++) {
    if (j == i || s->nodes[j].node == NULL) continue;
    uint64_t h = 0;
    vs_err err = vs_wal_head(vs_node_store(s->nodes[j].node), s->nodes[i].id.pk, &h, NULL, NULL);
    if (err != VS_OK && err != VS_ERR_NOTFOUND) return sim_fail(s, SIM_EXIT_STORE, "node %u: chain head: %s", j, vs_err_name(err));
    if (err == VS_OK && h > held) held = h;
  }
  size_t fresh = u != NULL && u->fresh_node == i ? u->fresh_n : 0;
  uint64_t from = UINT64_MAX; /* the first orphaned seq the oracle expects */
  for (size_t k = 0; k < s->acked_n; k++) {
    const sim_ack *a = &s->acked[k];
    uint64_t seq = vs_op_id_seq(&a->id);
    bool now = false; /* surfaced in this poll */
    for (size_t f = 0; f < fresh && !now; f++) now = u->fresh[f] == k;
    if (a->node != i || (a->orphaned > 0 && !now) || seq <= anchor) continue;
    if (floor > 0 && a->hlc <= floor && seq < from) from = seq;
    if (late && seq > held && seq < from) from = seq;
  }
  size_t want = 0;
  for (size_t k = 0; k < s->acked_n; k++) {
    const sim_ack *a = &s->acked[k];
    bool now = false;
    for (size_t f = 0; f < fresh && !now; f++) now = u->fresh[f] == k;
    if (a->node != i || (a->orphaned > 0 && !now) || vs_op_id_seq(&a->id) < from) continue;
    want++;
    if (!now)
      return sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u rebased (anchor of its chain %" PRIu64 ", gc_floor %" PRIu64 ") and did not "
                      "surface its acknowledged write at seq %" PRIu64 " (hlc %" PRIu64 "): the oracle expects every write from seq %" PRIu64
                      " on to be orphaned", i, anchor, floor, vs_op_id_seq(&a->id), a->hlc, from);
  }
  if (want != fresh)
    return sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u rebased (anchor of its chain %" PRIu64 ", gc_floor %" PRIu64 ") and surfaced %zu "
                    "orphans; the oracle expects %zu (from seq %" PRIu64 ")", i, anchor, floor, fresh, want, from);
  if (s->verbose_out != NULL)
    fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u rebased onto a peer's snapshot (anchor of its chain %" PRIu64
            ", gc_floor at %" PRId64 " ms of virtual time): %zu orphans\n", s->now, i, anchor,
            (int64_t)vs_hlc_wall_ms(floor) - (int64_t)SIM_T0_MS, fresh);
  return true;
}

/* After a rebase: what the store holds now counts as applied (the
 * snapshot's state and the ops it put in the log came without callbacks;
 * orphaned own ops left). check.c adds the node's own membership ops to
 * the applied side itself: taken out here. */
static bool rebaseline(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  vs_store *st = vs_node_store(n->node);
  uint64_t base_n = 0, base_sum = 0;
  log_sum l = {0, 0};
  if (!sim_base_ops(s, st, i, &base_n, &base_sum)) return false;
  vs_err err = vs_wal_replay(st, 1, log_sum_cb, &l);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: WAL replay: %s", i, vs_err_name(err));
  uint64_t own_n = 0, own_sum = 0;
  for (size_t k = 0; k < s->sysops_n; k++) {
    if (s->sysops[k].node != i) continue;
    vs_op_id id;
    vs_op_id_derive(n->id.pk, s->sysops[k].seq, &id);
    own_n++;
    own_sum += sim_id_hash64(&id);
  }
  /* Its horizons are the snapshot's now: they answer to the members its
   * view holds after the rebase (as a seeded device's at its install). */
  if (n->hz_from == NULL) n->hz_from = calloc(s->n, sizeof *n->hz_from);
  if (n->hz_from == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  MDB_txn *txn = NULL;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction", i);
  for (uint32_t k = 0; k < s->n && err == VS_OK; k++) {
    err = vs_acks_member_txn(txn, st, s->nodes[k].id.pk, &n->hz_from[k]);
    if (err == VS_ERR_NOTFOUND) {
      n->hz_from[k] = false;
      err = VS_OK;
    }
  }
  mdb_txn_abort(txn);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: member: %s", i, vs_err_name(err));
  n->applied = 0;
  n->applied_sum = 0;
  n->seed_n = base_n + l.n - own_n;
  n->seed_sum = base_sum + l.sum - own_sum;
  n->seeded = true; /* its log no longer holds what its state was folded from */
  return true;
}

bool sim_susp_watch(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (n->node == NULL) return true;
  if (s->cfg->suspend_after_ms != 0) { /* who was away, and when (sim_susp_exempt) */
    susp *w = state_of(s);
    if (w != NULL && w->away_v == NULL) w->away_v = calloc(s->n, sizeof *w->away_v);
    if (w == NULL || w->away_v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
    for (uint32_t k = 0; k < s->n; k++) /* bounded: the nodes */
      if (s->nodes[k].isolated || s->nodes[k].node == NULL) w->away_v[k] = s->now + 1;
    if (s->part_group != NULL) w->part_v = s->now + 1;
  }
  vs_node_stats st;
  vs_node_stats_get(n->node, &st);
  if (st.members_suspended > s->tot.susp_max) s->tot.susp_max = st.members_suspended;
  susp *u = s->susp;
  size_t fresh = u != NULL && u->fresh_node == i ? u->fresh_n : 0;
  if (st.snap_rebases == n->rebases_seen) {
    if (fresh > 0) return sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u surfaced %zu orphans without a rebase", i, fresh);
    return true;
  }
  s->tot.rebases += st.snap_rebases - n->rebases_seen;
  n->rebases_seen = st.snap_rebases;
  bool late = st.late_rebases != n->late_seen;
  n->late_seen = st.late_rebases;
  s->tot.late_rebases += late;
  sim_trace(s, 'B', i, st.snap_rebases, fresh, NULL, 0);
  bool ok = rebase_oracle(s, i, u, late) && rebaseline(s, i);
  if (fresh > 0) n->idem_have = false; /* an orphaned keyed write's key was released: no retry of it */
  if (u != NULL) u->fresh_n = 0;
  return ok;
}

/* Was node k away (isolated, down) or a partition on within [from, now],
 * as the polls saw it (sim_susp_watch)? */
static bool away_within(const sim *s, uint32_t k, uint64_t from) {
  const susp *u = s->susp;
  if (s->nodes[k].isolated || s->nodes[k].node == NULL || s->part_group != NULL) return true;
  return u != NULL && u->away_v != NULL && ((u->away_v[k] > 0 && u->away_v[k] - 1 >= from) || (u->part_v > 0 && u->part_v - 1 >= from));
}

bool sim_susp_exempt(sim *s, uint32_t i, uint32_t k, bool *out) {
  *out = false;
  if (s->cfg->suspend_after_ms == 0 || i == k) return true;
  vs_store *st = vs_node_store(s->nodes[i].node);
  MDB_txn *txn = NULL;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction", i);
  vs_ack_rec rec;
  memset(&rec, 0, sizeof rec);
  vs_ack_entry *full = malloc(sizeof *full * VS_WIRE_VV_MAX);
  uint32_t full_n = 0;
  uint64_t now_hlc = 0;
  vs_err err = full == NULL ? VS_ERR_NOMEM : vs_acks_get_txn(txn, st, s->nodes[k].id.pk, &rec);
  bool have = err == VS_OK;
  if (err == VS_ERR_NOTFOUND) err = VS_OK; /* no ack of it: never suspended */
  if (err == VS_OK && have) err = vs_acks_merge(rec.key, rec.key_n, rec.delta, rec.delta_n, full, VS_WIRE_VV_MAX, &full_n);
  if (err == VS_OK && have) err = vs_meta_hlc_get(txn, st, &now_hlc);
  if (err == VS_OK && have)
    err = vs_acks_suspended_txn(txn, st, s->nodes[k].id.pk, rec.hlc, full, full_n, now_hlc, s->cfg->suspend_after_ms, out);
  vs_ack_rec_free(&rec);
  mdb_txn_abort(txn);
  free(full);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: is member node %u suspended: %s", i, k, vs_err_name(err));
  if (!*out) return true;
  s->tot.susp_exempt++;
  /* Not a failure: a member whose ops stop flowing while its links are up
   * (a stalled session) is silent to the library's rule too. Counted, and
   * shown with --verbose. */
  uint64_t from = s->now > s->cfg->suspend_after_ms ? s->now - s->cfg->suspend_after_ms : 0;
  if (!away_within(s, k, from) && !away_within(s, i, from)) {
    s->tot.susp_present++;
    if (s->verbose_out != NULL)
      fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u leaves member node %u out of its cut (silent past suspend_after), "
              "though neither was isolated or down and no partition was on\n", s->now, i, k);
  }
  return true;
}

/* ---- after quiesce ---- */

typedef struct held_ctx {
  sim *s;
  uint32_t i;
  uint64_t n;
} held_ctx;

static vs_err held_cb(void *ctx, const vs_orphan *o) {
  held_ctx *h = ctx;
  vs_op op;
  h->n++;
  if (vs_op_decode(o->op, o->op_bytes, &op) != VS_OK) return VS_ERR_CORRUPT;
  size_t k = ack_find(h->s, h->i, &op);
  if (k == SIZE_MAX || h->s->acked[k].orphaned == 0) {
    sim_fail(h->s, SIM_EXIT_FAIL, "orphans: node %u holds an orphan (seq %" PRIu64 ", hlc %" PRIu64 ") that was never surfaced", h->i,
             o->seq, o->hlc);
    return VS_ERR_STATE;
  }
  return VS_OK;
}

/* Does node j hold acknowledged write a (its id with its hlc and digest)? */
static bool holds(sim *s, uint32_t j, const sim_ack *a, bool *out) {
  vs_store *st = vs_node_store(s->nodes[j].node);
  MDB_txn *txn = NULL;
  *out = false;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction", j);
  uint64_t lsn = 0;
  const uint8_t *enc = NULL;
  uint32_t enc_bytes = 0;
  vs_op op;
  vs_err err = vs_opid_get(txn, st, &a->id, &lsn, NULL);
  if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, st, lsn, &enc, &enc_bytes);
  if (err == VS_OK) err = vs_op_decode(enc, enc_bytes, &op);
  if (err == VS_OK) {
    uint8_t digest[16];
    sim_op_digest(kind_of(&op), op.target, op.target_bytes, op.payload, op.payload_bytes, digest);
    *out = op.hlc == a->hlc && memcmp(digest, a->digest, 16) == 0;
  }
  mdb_txn_abort(txn);
  if (err == VS_ERR_NOTFOUND) err = VS_OK;
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: op lookup: %s", j, vs_err_name(err));
  return true;
}

bool sim_susp_check(sim *s) {
  s->tot.orphans_lost = 0;
  for (size_t k = 0; k < s->acked_n; k++) s->tot.orphans_lost += s->acked[k].orphaned > 0;
  for (uint32_t i = 0; i < s->n; i++) {
    if (!sim_counted(s, i)) continue;
    uint64_t surfaced = 0;
    for (size_t k = 0; k < s->acked_n; k++) surfaced += s->acked[k].node == i && s->acked[k].orphaned > 0;
    held_ctx h = {s, i, 0};
    vs_err err = vs_orphans_list(vs_node_store(s->nodes[i].node), held_cb, &h);
    if (s->failed) return false;
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: orphans: %s", i, vs_err_name(err));
    if (h.n != surfaced)
      return sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u holds %" PRIu64 " orphans, %" PRIu64 " were surfaced", i, h.n, surfaced);
  }
  for (size_t k = 0; k < s->acked_n; k++) {
    const sim_ack *a = &s->acked[k];
    if (a->orphaned == 0) continue;
    for (uint32_t j = 0; j < s->n; j++) {
      bool held = false;
      if (!sim_counted(s, j)) continue;
      if (!holds(s, j, a, &held)) return false;
      if (held)
        return sim_fail(s, SIM_EXIT_FAIL, "orphans: node %u holds node %u's orphaned write at seq %" PRIu64 " (hlc %" PRIu64 "): an "
                        "orphan is never sent", j, a->node, vs_op_id_seq(&a->id), a->hlc);
    }
  }
  return true;
}
