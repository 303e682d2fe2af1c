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
 *     did not revoke and that is up: the cut said they all hold those ops,
 *     and the simulator can look;
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
#include "sim.h"
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

/* ---- ground truth at every compaction step ---- */

bool sim_compact_watch(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (!sim_cfg_compacts(s->cfg) || n->node == NULL) return true;
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
  vs_store *sti = vs_node_store(n->node);
  MDB_txn *txn = NULL;
  if (ok && mdb_txn_begin(sti->env, NULL, MDB_RDONLY, &txn) != 0) ok = sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction", i);
  for (uint32_t k = 0; ok && k < s->n; k++) {
    vs_err err = vs_acks_member_txn(txn, sti, s->nodes[k].id.pk, &view[k]);
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
    if (err != VS_OK) ok = sim_fail(s, SIM_EXIT_STORE, "node %u: member: %s", i, vs_err_name(err));
  }
  if (txn != NULL) mdb_txn_abort(txn);
  for (uint32_t j = 0; ok && j < s->n; j++) {
    if (hz[j] == 0 || !first_of_pk(s, j)) continue;
    for (uint32_t k = 0; ok && k < s->n; k++) {
      const sim_node *m = &s->nodes[k];
      if (k == i || m->node == NULL || m->ms != MS_MEMBER || !view[k]) continue;
      uint64_t head = 0;
      vs_err err = vs_wal_head(vs_node_store(m->node), s->nodes[j].id.pk, &head, NULL, NULL);
      if (err == VS_ERR_NOTFOUND) err = VS_OK;
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

/* ---- horizon <= stable cut <= head, after settle ---- */

typedef struct cut_ctx {
  sim *s;
  MDB_txn *txn;
  vs_store *st;
  uint32_t node;
  uint64_t compacted; /* sum of horizons */
  bool bad;
  uint32_t bad_node;
  uint64_t bad_h, bad_cut, bad_head;
} cut_ctx;

static vs_err cut_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx) {
  cut_ctx *c = ctx;
  vs_horizon h;
  vs_err err = vs_horizon_get(c->txn, c->st, origin, &h);
  if (err != VS_OK) return err;
  uint64_t vv = 0;
  uint32_t j = sim_node_of(c->s, origin);
  if ((h.seq > cut || cut > head) && !c->bad) {
    c->bad = true; /* named after the walk, with the cut's info */
    c->bad_node = j;
    c->bad_h = h.seq;
    c->bad_cut = cut;
    c->bad_head = head;
  }
  (void)vv;
  c->compacted += h.seq;
  return VS_OK;
}

bool sim_compact_check(sim *s, uint32_t i) {
  vs_store *st = vs_node_store(s->nodes[i].node);
  MDB_txn *txn = NULL;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
    return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction for its cut", i);
  cut_ctx c = {s, txn, st, i, 0, false, 0, 0, 0, 0};
  vs_acks_cut_info info;
  memset(&info, 0, sizeof info);
  vs_err err = vs_acks_cut_txn(txn, st, 0, cut_cb, &c, &info);
  /* The active members whose ack it lacks, for the message. */
  char lack[128] = "";
  size_t ln = 0;
  for (uint32_t k = 0; c.bad && err == VS_OK && k < s->n && ln + 12 < sizeof lack; k++) {
    bool active = false;
    uint64_t hlc = 0;
    if (vs_acks_member_txn(txn, st, s->nodes[k].id.pk, &active) != VS_OK || !active) continue;
    if (vs_acks_hlc_txn(txn, st, s->nodes[k].id.pk, &hlc, NULL) != VS_OK || hlc == 0)
      ln += (size_t)snprintf(lack + ln, sizeof lack - ln, " %u", k);
  }
  mdb_txn_abort(txn);
  if (s->failed) return false;
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: the stable cut: %s", i, vs_err_name(err));
  vs_node_stats ns;
  sim_node_stats_total(&s->nodes[i], &ns);
  if (c.bad)
    return sim_fail(s, SIM_EXIT_FAIL,
                    "compaction: node %u%s, origin of node %u: horizon %" PRIu64 ", stable cut %" PRIu64 ", head %" PRIu64
                    " (want horizon <= cut <= head; it holds acks of %u of %u active members; none of node(s)%s; acks received %" PRIu64
                    ", unusable %" PRIu64 ")",
                    i, s->nodes[i].seeded ? " (seeded from a snapshot)" : "", c.bad_node, c.bad_h, c.bad_cut, c.bad_head,
                    info.with_ack, info.members, lack, ns.acks_received, ns.acks_unusable);
  s->compacted_total += c.compacted;
  return true;
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

static vs_err install(sim *s, uint32_t t, sbuf *b) {
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

bool sim_seed_snapshot(sim *s, uint32_t a, uint32_t t) {
  sim_node *n = &s->nodes[t];
  if (s->nodes[a].node == NULL || n->node == NULL) return sim_fail(s, SIM_EXIT_FAIL, "seed node %u from node %u: one is down", t, a);
  sbuf b = {NULL, 0, 0, 0};
  vs_snapshot_info info;
  vs_err err = vs_snapshot_make(vs_node_store(s->nodes[a].node), sb_write, &b, &info);
  if (err != VS_OK) {
    free(b.p);
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_snapshot_make: %s", a, vs_err_name(err));
  }
  if (info.origins == 0) {
    /* Nothing compacted at a yet: its snapshot holds only the (empty) base
     * state and no membership op, and installing it is refused
     * (VS_ERR_NOT_MEMBER, 2026-12). The device syncs by replay instead:
     * a is a member that knows the invite, so it compacts nothing until
     * the device has acknowledged. */
    free(b.p);
    s->tot.seed_skipped++;
    sim_trace(s, 'Z', a, t, 0, NULL, 0);
    return true;
  }
  vs_outbox_close(n->ob);
  n->ob = NULL;
  vs_node_close(n->node);
  n->node = NULL;
  err = VS_ERR_AUTH;
  size_t flip = tamper_at(&b);
  if (s->cfg->tamper_snapshot && flip < b.n) {
    /* One bit of the last entry's hlc flipped: every
     * changed byte must be refused, nothing installed (snapshot.h). */
    uint8_t was = b.p[flip];
    b.p[flip] = (uint8_t)(was ^ 0x40);
    err = install(s, t, &b);
    b.p[flip] = was;
    sim_trace(s, 'z', a, t, (uint64_t)(int64_t)err, NULL, 0);
    if (err == VS_OK) s->tot.tamper_installed++;
    else s->tot.tamper_refused++;
    if (err == VS_OK && s->verbose_out != NULL)
      fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u installed a tampered snapshot of node %u\n", s->now, t, a);
  }
  /* The genuine one (unless the tampered copy went in: the checks must
   * then find what it changed). */
  if (err != VS_OK) err = install(s, t, &b);
  sim_trace(s, 'Z', a, t, (uint64_t)(int64_t)err, info.state_hash, sizeof info.state_hash);
  free(b.p);
  if (err != VS_OK) {
    uint64_t *hz = calloc(s->n, sizeof *hz), sum = 0;
    if (hz != NULL && sim_horizons(s, a, hz))
      for (uint32_t j = 0; j < s->n; j++) sum += hz[j];
    free(hz);
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_snapshot_install of node %u's snapshot (%" PRIu64 " bytes, %u origins, %" PRIu64
                    " membership ops; node %u's horizons sum to %" PRIu64 "): %s",
                    t, a, info.bytes, info.origins, info.mesh_ops, a, sum, vs_err_name(err));
  }
  s->tot.seeded++;
  n->seeded = true;
  if (s->verbose_out != NULL)
    fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u seeded from node %u's snapshot (%" PRIu64 " bytes, %" PRIu64 " entries)\n",
            s->now, t, a, info.bytes, info.entries);
  if (!sim_node_open(s, t)) return false;
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
