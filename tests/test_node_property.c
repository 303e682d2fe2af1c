/* vs_node under a hostile network and hostile peers.
 *
 * 1. Convergence property (G2, G4, G5, G6): for many seeds, 4-6 nodes on a
 *    random connected topology exchange frames through per-link queues with
 *    random latency while a chaos phase drops, duplicates and reorders
 *    frames, flaps links and restarts nodes, and clients write on random
 *    nodes. Then the network heals and runs until quiet; every node must
 *    hold the same state, the same version vector, every acknowledged write
 *    exactly once, a drained outbox, and must never have refused an honest
 *    frame as forged or malformed.
 *    VS_NODE_SEEDS=N sets the number of seeds (default 100), VS_NODE_SEED=S
 *    runs only seed S (a failure prints the line that replays it),
 *    VS_NODE_SEED_BASE=B starts the sweep at B, VS_NODE_HARSH=1 triples the
 *    loss and reordering and makes the chaos longer and flappier.
 * 2. Security table at the node level: a fake peer that knows the mesh key
 *    drives the wire.h API by hand against a real vs_node; each bad frame is
 *    refused, counted in the right counter, changes neither state nor WAL,
 *    and the node keeps syncing with its legitimate peer.
 * 3. A handshake flood fills every peer slot; the slots come back at the
 *    handshake deadline and a real peer then connects and syncs.
 * 4. Issue 14: a flood of runs from thousands of fresh origins (refused past
 *    the origin quota; accepted with the quota raised, after which the store
 *    still opens and a vector of more than one message travels in parts);
 *    peers that acknowledge nothing, or answer with empty or falling
 *    vectors, get at most the in-flight window per backed-off resend.
 *
 * One seeded PRNG (splitmix64) drives each run, including the nodes' random
 * source; time is virtual. Built twice: test_node_property_prepared delivers
 * every frame through the receive pipeline instead of vs_node_on_frame
 * (tests/prepared.h), and must pass the same assertions. */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "prepared.h" /* vt_node_on_frame: on_frame, or the receive pipeline (VT_PREPARED) */
#include "testutil.h"
#include "vixsync/vixsync.h"
#include "apply.h"
#include "vixsync/node.h"
#include "wire.h"

#define T0_MS 1700000000000ull
#define PROGRAM (VT_PREPARED ? "./test_node_property_prepared" : "./test_node_property") /* replay lines */

/* ---- splitmix64 (vt_sm64, vt_sm_fill): the only source of randomness ---- */

static uint64_t sm_below(uint64_t *s, uint64_t n) { return n == 0 ? 0 : vt_sm64(s) % n; }

static bool sm_chance(uint64_t *s, uint32_t permille) { return sm_below(s, 1000) < permille; }

/* ---- small shared helpers ---- */

typedef struct idlist {
  vs_op_id *v;
  size_t n, cap;
} idlist;

static void idlist_add(idlist *l, const vs_op_id *id) {
  if (l->n == l->cap) {
    size_t cap = l->cap == 0 ? 64 : l->cap * 2;
    vs_op_id *v = realloc(l->v, sizeof *v * cap);
    assert_non_null(v);
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = *id;
}

static void idlist_free(idlist *l) {
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int id_cmp(const void *a, const void *b) { return memcmp(a, b, VS_OP_ID_BYTES); }

/* Sorts the list; returns the number of ids that appear more than once. */
static size_t idlist_dups(idlist *l) {
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, id_cmp);
  size_t dups = 0;
  for (size_t i = 1; i < l->n; i++) dups += memcmp(&l->v[i - 1], &l->v[i], VS_OP_ID_BYTES) == 0 ? 1u : 0u;
  return dups;
}

typedef struct vv_buf {
  char text[4096];
  size_t len;
  uint64_t seq_sum;
} vv_buf;

static vs_err vv_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_buf *b = ctx;
  int w = snprintf(b->text + b->len, sizeof b->text - b->len, "%02x%02x%02x%02x:%" PRIu64 ";", origin[0], origin[1],
                   origin[2], origin[3], seq);
  if (w > 0 && (size_t)w < sizeof b->text - b->len) b->len += (size_t)w;
  b->seq_sum += seq;
  return VS_OK;
}

static vs_err vv_text(vs_store *store, vv_buf *out) {
  memset(out, 0, sizeof *out);
  return vs_vv_each(store, vv_cb, out);
}

static vs_err wal_ids_cb(const vs_wal_record *rec, void *ctx) {
  idlist_add(ctx, &rec->op.id);
  return VS_OK;
}

#define STATS_FIELDS(X)                                                                                      \
  X(frames_in) X(frames_out) X(bytes_in) X(bytes_out) X(handshakes_done) X(handshakes_timeout) X(rejected_auth) \
  X(rejected_replay) X(rejected_malformed) X(rejected_state) X(rejected_unknown_peer) X(runs_applied)          \
  X(ops_applied) X(ops_duplicate) X(runs_gap) X(runs_forged) X(runs_fork) X(ops_sent) X(runs_sent) X(resends) \
  X(ops_deferred_future) X(rejected_version) X(cookies_sent) X(rejected_vv_future) X(own_ops_restored) \
  X(rejected_origin_quota) X(rejected_vv_regress) X(fork_verdicts) X(fork_evidence_bad) X(runs_void) \
  X(wants_sent) X(wants_served) X(rejected_want_quota) X(fork_verdicts_deferred)

static void stats_add(vs_node_stats *acc, const vs_node_stats *s) {
#define ADD_(f) acc->f += s->f;
  STATS_FIELDS(ADD_)
#undef ADD_
}

/* =====================================================================
 * 1. The simulated network
 * ===================================================================== */

#define SIM_NODES_MAX 6u
#define SIM_KEYS 8u
#define SIM_HANDLE_STRIDE 16u /* handle = generation * 16 + node index */
#define SIM_SAME_TIME_MAX 2000u
#define SIM_ITERS_MAX 4000000ull
#define SIM_HEAL_MS_MAX (900ull * 1000ull) /* virtual: a healthy mesh is quiet far sooner */
#define SIM_CHECK_EVERY_MS 250u

typedef struct flight {
  uint8_t *bytes;
  size_t len;
  uint64_t at_ms;
  uint64_t order; /* ties keep sending order */
} flight;

typedef struct fq {
  flight *f;
  uint32_t n, cap;
  uint64_t last_at_ms; /* FIFO floor for frames that are not reordered */
} fq;

typedef struct slink {
  bool exists, up;
  uint32_t gen;        /* connection generation: frames of a dead connection never arrive */
  uint64_t up_at_ms;   /* when down: reconnect then (UINT64_MAX: waits for a node) */
  uint64_t down_at_ms; /* when up in chaos: the next flap */
  fq q[2];             /* q[0]: low -> high index, q[1]: high -> low */
} slink;

struct sim;

typedef struct snode {
  struct sim *sim;
  char dir[256];
  vs_identity id;
  vs_node *node; /* NULL while down */
  uint64_t wake_ms;
  bool dirty;
  uint64_t reopen_at_ms;
  vs_node_stats past; /* counters of closed lifetimes */
  idlist applied;     /* every on_apply call, across lifetimes */
  bool idem_have;
  char idem_key[32], idem_kind[8], idem_target[8], idem_payload[32];
  vs_op_id idem_id;
} snode;

typedef struct sim_totals {
  uint64_t seeds, writes, idem_retries, dropped, duplicated, reordered, flaps, restarts, closes, stale, heal_ms;
  vs_node_stats st;
  uint64_t end_ms;
  uint8_t final_hash[VS_HASH_BYTES];
} sim_totals;

typedef struct sim {
  uint64_t seed, rng;
  uint32_t n;
  snode nodes[SIM_NODES_MAX];
  slink links[SIM_NODES_MAX][SIM_NODES_MAX]; /* [lo][hi] */
  uint64_t now_ms, order;
  bool chaos;
  uint32_t drop_pm, dup_pm, reorder_pm;
  uint64_t flap_min_ms, flap_span_ms;
  uint64_t *write_at;
  uint32_t writes, writes_done;
  uint64_t restart_at[3];
  uint32_t restarts, restarts_done;
  idlist acked;
  sim_totals tot;
  char why[1024];
} sim;

#define SIM_FAIL(s, ...)                                      \
  do {                                                        \
    snprintf((s)->why, sizeof (s)->why, __VA_ARGS__);         \
    return false;                                             \
  } while (0)

static slink *sim_link(sim *s, uint32_t i, uint32_t j) { return i < j ? &s->links[i][j] : &s->links[j][i]; }

static fq *sim_q(sim *s, uint32_t from, uint32_t to) { return &sim_link(s, from, to)->q[from < to ? 0 : 1]; }

static uint32_t sim_handle(sim *s, uint32_t self, uint32_t other) {
  return sim_link(s, self, other)->gen * SIM_HANDLE_STRIDE + other;
}

static void fq_clear(fq *q) {
  for (uint32_t k = 0; k < q->n; k++) free(q->f[k].bytes);
  q->n = 0;
  q->last_at_ms = 0;
}

static void fq_push(sim *s, fq *q, const uint8_t *bytes, size_t len, uint64_t at_ms) {
  if (q->n == q->cap) {
    uint32_t cap = q->cap == 0 ? 16 : q->cap * 2;
    flight *f = realloc(q->f, sizeof *f * cap);
    assert_non_null(f);
    q->f = f;
    q->cap = cap;
  }
  uint8_t *copy = malloc(len > 0 ? len : 1);
  assert_non_null(copy);
  memcpy(copy, bytes, len);
  q->f[q->n++] = (flight){copy, len, at_ms, s->order++};
}

static void on_apply_cb(void *ctx, const vs_op *op) {
  snode *sn = ctx;
  idlist_add(&sn->applied, &op->id);
}

static bool sim_open_node(sim *s, uint32_t i) {
  snode *sn = &s->nodes[i];
  uint8_t mesh[VS_MESH_KEY_BYTES];
  memset(mesh, 0x5a, sizeof mesh);
  vs_node_cfg cfg = vt_node_cfg(sn->dir, &sn->id, mesh, &s->rng);
  cfg.on_apply = on_apply_cb;
  cfg.on_apply_ctx = sn;
  vs_err err = vs_node_open(&cfg, &sn->node);
  if (err != VS_OK) SIM_FAIL(s, "node %u: vs_node_open: %s", i, vs_err_name(err));
  sn->dirty = true;
  sn->wake_ms = s->now_ms;
  sn->reopen_at_ms = UINT64_MAX;
  return true;
}

/* The connection i-j ends: both sides are told (the side that closed it
 * already forgot it), and its frames in flight die with it. */
static bool sim_link_down(sim *s, uint32_t i, uint32_t j, uint64_t up_at_ms) {
  slink *l = sim_link(s, i, j);
  if (l->up) {
    uint32_t ends[2] = {i, j};
    for (int k = 0; k < 2; k++) {
      snode *sn = &s->nodes[ends[k]];
      if (sn->node == NULL) continue;
      vs_err err = vs_node_peer_down(sn->node, sim_handle(s, ends[k], ends[1 - k]), s->now_ms);
      if (err != VS_OK && err != VS_ERR_NOTFOUND) SIM_FAIL(s, "peer_down: %s", vs_err_name(err));
      sn->dirty = true;
    }
  }
  l->up = false;
  l->up_at_ms = up_at_ms;
  l->down_at_ms = UINT64_MAX;
  fq_clear(&l->q[0]);
  fq_clear(&l->q[1]);
  return true;
}

static bool sim_link_up(sim *s, uint32_t i, uint32_t j) {
  slink *l = sim_link(s, i, j);
  assert_false(l->up);
  l->gen++;
  l->up = true;
  l->up_at_ms = UINT64_MAX;
  l->down_at_ms = s->chaos ? s->now_ms + s->flap_min_ms + sm_below(&s->rng, s->flap_span_ms) : UINT64_MAX;
  uint32_t dialler = sm_chance(&s->rng, 500) ? i : j, other = dialler == i ? j : i;
  vs_err err = vs_node_peer_up(s->nodes[dialler].node, sim_handle(s, dialler, other), true, s->now_ms);
  if (err == VS_OK) err = vs_node_peer_up(s->nodes[other].node, sim_handle(s, other, dialler), false, s->now_ms);
  if (err != VS_OK) SIM_FAIL(s, "peer_up %u-%u: %s", i, j, vs_err_name(err));
  s->nodes[i].dirty = s->nodes[j].dirty = true;
  return true;
}

/* A crash-free restart: close (all links of the node go down), reopen later
 * from the same directory with the same identity. */
static bool sim_restart(sim *s, uint32_t i) {
  snode *sn = &s->nodes[i];
  for (uint32_t j = 0; j < s->n; j++) {
    if (j == i || !sim_link(s, i, j)->exists) continue;
    slink *l = sim_link(s, i, j);
    if (l->up && !sim_link_down(s, i, j, UINT64_MAX)) return false;
  }
  vs_node_stats st;
  vs_node_stats_get(sn->node, &st);
  stats_add(&sn->past, &st);
  vs_node_close(sn->node);
  sn->node = NULL;
  sn->reopen_at_ms = s->now_ms + sm_below(&s->rng, 3000);
  s->tot.restarts++;
  return true;
}

static bool sim_reopen(sim *s, uint32_t i) {
  if (!sim_open_node(s, i)) return false;
  for (uint32_t j = 0; j < s->n; j++) {
    if (j == i || !sim_link(s, i, j)->exists) continue;
    slink *l = sim_link(s, i, j);
    if (!l->up && l->up_at_ms == UINT64_MAX && s->nodes[j].node != NULL)
      l->up_at_ms = s->now_ms + 1 + sm_below(&s->rng, 300);
  }
  return true;
}

static const char *const sim_kinds[3] = {"put", "del", "incr"};

static bool sim_write(sim *s) {
  uint32_t i = (uint32_t)sm_below(&s->rng, s->n);
  for (uint32_t k = 0; k < s->n && s->nodes[i].node == NULL; k++) i = (i + 1) % s->n;
  snode *sn = &s->nodes[i];
  if (sn->node == NULL) SIM_FAIL(s, "no node is up for a write");
  char kind[8], target[8], payload[32], key[32];
  bool retry = sn->idem_have && sm_chance(&s->rng, 60);
  bool with_key = !retry && sm_chance(&s->rng, 100);
  if (retry) {
    /* A client that timed out writes again with the same key: same op. */
    memcpy(kind, sn->idem_kind, sizeof kind);
    memcpy(target, sn->idem_target, sizeof target);
    memcpy(payload, sn->idem_payload, sizeof payload);
    memcpy(key, sn->idem_key, sizeof key);
  } else {
    snprintf(kind, sizeof kind, "%s", sim_kinds[sm_below(&s->rng, 3)]);
    snprintf(target, sizeof target, "k%u", (unsigned)sm_below(&s->rng, SIM_KEYS));
    if (strcmp(kind, "incr") == 0)
      snprintf(payload, sizeof payload, "%d", (int)sm_below(&s->rng, 21) - 10);
    else
      snprintf(payload, sizeof payload, sm_chance(&s->rng, 500) ? "%u" : "v%u", (unsigned)sm_below(&s->rng, 1000));
    if (strcmp(kind, "del") == 0) payload[0] = '\0';
    snprintf(key, sizeof key, "idem-%u-%u", i, s->writes_done);
  }
  vs_write_req req = {kind, (const uint8_t *)target, (uint32_t)strlen(target), (const uint8_t *)payload,
                      (uint32_t)strlen(payload), NULL, 0};
  if (retry || with_key) {
    req.idem_key = (const uint8_t *)key;
    req.idem_key_bytes = (uint32_t)strlen(key);
  }
  vs_write_result res;
  vs_err err = vs_node_write(sn->node, &req, s->now_ms, &res);
  if (err != VS_OK) SIM_FAIL(s, "node %u: write %s %s: %s", i, kind, target, vs_err_name(err));
  if (retry) {
    if (!res.duplicate || !vs_op_id_equal(&res.op_id, &sn->idem_id))
      SIM_FAIL(s, "node %u: a retried idempotent write was not the first op", i);
    s->tot.idem_retries++;
  } else {
    if (res.duplicate) SIM_FAIL(s, "node %u: a fresh write came back as a duplicate", i);
    idlist_add(&s->acked, &res.op_id);
    s->tot.writes++;
  }
  if (with_key) {
    sn->idem_have = true;
    memcpy(sn->idem_kind, kind, sizeof kind);
    memcpy(sn->idem_target, target, sizeof target);
    memcpy(sn->idem_payload, payload, sizeof payload);
    memcpy(sn->idem_key, key, sizeof key);
    sn->idem_id = res.op_id;
  }
  sn->dirty = true;
  return true;
}

static uint32_t sim_open_count(const sim *s) {
  uint32_t c = 0;
  for (uint32_t i = 0; i < s->n; i++) c += s->nodes[i].node != NULL ? 1u : 0u;
  return c;
}

/* Everything scheduled at or before now: writes, restarts, reopens, flaps. */
static bool sim_actions(sim *s) {
  while (s->writes_done < s->writes && s->write_at[s->writes_done] <= s->now_ms) {
    if (!sim_write(s)) return false;
    s->writes_done++;
  }
  for (; s->restarts_done < s->restarts && s->restart_at[s->restarts_done] <= s->now_ms; s->restarts_done++) {
    if (sim_open_count(s) < 2) continue;
    uint32_t i = (uint32_t)sm_below(&s->rng, s->n);
    while (s->nodes[i].node == NULL) i = (i + 1) % s->n;
    if (!sim_restart(s, i)) return false;
  }
  for (uint32_t i = 0; i < s->n; i++)
    if (s->nodes[i].node == NULL && s->nodes[i].reopen_at_ms <= s->now_ms && !sim_reopen(s, i)) return false;
  for (uint32_t i = 0; i < s->n; i++) {
    for (uint32_t j = i + 1; j < s->n; j++) {
      slink *l = &s->links[i][j];
      if (!l->exists) continue;
      if (l->up && l->down_at_ms <= s->now_ms) {
        s->tot.flaps++;
        if (!sim_link_down(s, i, j, s->now_ms + 50 + sm_below(&s->rng, 2000))) return false;
      } else if (!l->up && l->up_at_ms <= s->now_ms) {
        if (s->nodes[i].node == NULL || s->nodes[j].node == NULL) l->up_at_ms = UINT64_MAX;
        else if (!sim_link_up(s, i, j)) return false;
      }
    }
  }
  return true;
}

static uint64_t sim_next_action(const sim *s) {
  uint64_t t = UINT64_MAX;
  if (s->writes_done < s->writes) t = s->write_at[s->writes_done];
  if (s->restarts_done < s->restarts && s->restart_at[s->restarts_done] < t) t = s->restart_at[s->restarts_done];
  for (uint32_t i = 0; i < s->n; i++) {
    if (s->nodes[i].node == NULL && s->nodes[i].reopen_at_ms < t) t = s->nodes[i].reopen_at_ms;
    for (uint32_t j = i + 1; j < s->n; j++) {
      const slink *l = &s->links[i][j];
      if (!l->exists) continue;
      uint64_t a = l->up ? l->down_at_ms : l->up_at_ms;
      if (a < t) t = a;
    }
  }
  return t;
}

/* A frame leaves `from` for `to`: latency, and in chaos the faults. */
static void sim_send(sim *s, uint32_t from, uint32_t to, const uint8_t *bytes, size_t len) {
  fq *q = sim_q(s, from, to);
  if (s->chaos && sm_chance(&s->rng, s->drop_pm)) {
    s->tot.dropped++;
    return;
  }
  uint64_t at = s->now_ms + 1 + sm_below(&s->rng, 20);
  if (s->chaos && sm_chance(&s->rng, s->reorder_pm)) {
    at += 5 + sm_below(&s->rng, 120); /* held back: later frames overtake it */
    s->tot.reordered++;
  } else {
    if (at < q->last_at_ms) at = q->last_at_ms;
    q->last_at_ms = at;
  }
  fq_push(s, q, bytes, len, at);
  if (s->chaos && sm_chance(&s->rng, s->dup_pm)) {
    fq_push(s, q, bytes, len, at + sm_below(&s->rng, 60));
    s->tot.duplicated++;
  }
}

static uint64_t sim_next_frame(const sim *s) {
  uint64_t t = UINT64_MAX;
  for (uint32_t i = 0; i < s->n; i++)
    for (uint32_t j = i + 1; j < s->n; j++)
      for (int d = 0; d < 2; d++)
        for (uint32_t k = 0; k < s->links[i][j].q[d].n; k++)
          if (s->links[i][j].q[d].f[k].at_ms < t) t = s->links[i][j].q[d].f[k].at_ms;
  return t;
}

/* Deliver every frame due by now, in (time, sending order). */
static bool sim_deliver(sim *s) {
  for (uint32_t round = 0; round < 1000000u; round++) {
    fq *best = NULL;
    uint32_t best_k = 0, from = 0, to = 0;
    for (uint32_t i = 0; i < s->n; i++) {
      for (uint32_t j = i + 1; j < s->n; j++) {
        for (int d = 0; d < 2; d++) {
          fq *q = &s->links[i][j].q[d];
          for (uint32_t k = 0; k < q->n; k++) {
            const flight *f = &q->f[k];
            if (f->at_ms > s->now_ms) continue;
            if (best == NULL || f->at_ms < best->f[best_k].at_ms ||
                (f->at_ms == best->f[best_k].at_ms && f->order < best->f[best_k].order)) {
              best = q;
              best_k = k;
              from = d == 0 ? i : j;
              to = d == 0 ? j : i;
            }
          }
        }
      }
    }
    if (best == NULL) return true;
    flight f = best->f[best_k];
    best->f[best_k] = best->f[--best->n];
    snode *dst = &s->nodes[to];
    assert_non_null(dst->node); /* queues die with their link */
    (void)vt_node_on_frame(dst->node, sim_handle(s, to, from), f.bytes, f.len, s->now_ms);
    dst->dirty = true;
    free(f.bytes);
  }
  SIM_FAIL(s, "delivery did not end");
}

static bool sim_poll_node(sim *s, uint32_t i) {
  snode *sn = &s->nodes[i];
  for (uint32_t k = 0; k < 1000000u; k++) {
    vs_node_out out;
    uint64_t wake = UINT64_MAX;
    vs_err err = vs_node_poll(sn->node, s->now_ms, &out, &wake);
    if (err != VS_OK) SIM_FAIL(s, "node %u: poll: %s", i, vs_err_name(err));
    if (out.kind == VS_NODE_OUT_NONE) {
      sn->wake_ms = wake;
      sn->dirty = false;
      return true;
    }
    uint32_t j = out.peer % SIM_HANDLE_STRIDE, gen = out.peer / SIM_HANDLE_STRIDE;
    if (j >= s->n || j == i) SIM_FAIL(s, "node %u: output for unknown handle %u", i, out.peer);
    slink *l = sim_link(s, i, j);
    if (!l->up || l->gen != gen) { /* the node speaks of a connection it was told is gone */
      s->tot.stale++;
      continue;
    }
    if (out.kind == VS_NODE_OUT_CLOSE) {
      s->tot.closes++;
      uint64_t redial = s->now_ms + 10 + sm_below(&s->rng, s->chaos ? 1000 : 100);
      if (!sim_link_down(s, i, j, redial)) return false;
      continue;
    }
    if (out.kind != VS_NODE_OUT_SEND || out.bytes == NULL || out.bytes_len == 0 ||
        out.bytes_len > VS_FRAME_BYTES_MAX)
      SIM_FAIL(s, "node %u: bad output kind %d len %zu", i, (int)out.kind, out.bytes_len);
    sim_send(s, i, j, out.bytes, out.bytes_len);
  }
  SIM_FAIL(s, "node %u: poll never returned NONE", i);
}

static bool sim_poll_all(sim *s) {
  for (uint32_t i = 0; i < s->n; i++) {
    snode *sn = &s->nodes[i];
    if (sn->node != NULL && (sn->dirty || sn->wake_ms <= s->now_ms) && !sim_poll_node(s, i)) return false;
  }
  return true;
}

static bool sim_outbox(sim *s, uint32_t i, vs_outbox_counts *c) {
  vs_outbox *ob;
  vs_err err = vs_outbox_open(vs_node_store(s->nodes[i].node), NULL, &ob);
  if (err == VS_OK) err = vs_outbox_counts_get(ob, c);
  vs_outbox_close(ob);
  if (err != VS_OK) SIM_FAIL(s, "node %u: outbox: %s", i, vs_err_name(err));
  return true;
}

/* Converged and drained? *quiet false with `why` filled when not. */
static bool sim_quiet(sim *s, bool *quiet) {
  *quiet = false;
  uint8_t h0[VS_HASH_BYTES];
  vv_buf v0;
  for (uint32_t i = 0; i < s->n; i++) {
    if (s->nodes[i].node == NULL) {
      snprintf(s->why, sizeof s->why, "node %u is down", i);
      return true;
    }
    uint8_t h[VS_HASH_BYTES];
    vv_buf v;
    vs_store *st = vs_node_store(s->nodes[i].node);
    vs_err err = vs_state_hash(st, i == 0 ? h0 : h);
    if (err == VS_OK) err = vv_text(st, i == 0 ? &v0 : &v);
    if (err != VS_OK) SIM_FAIL(s, "node %u: state read: %s", i, vs_err_name(err));
    if (i > 0 && memcmp(h, h0, VS_HASH_BYTES) != 0) {
      snprintf(s->why, sizeof s->why, "state hash of node %u differs from node 0", i);
      return true;
    }
    if (i > 0 && strcmp(v.text, v0.text) != 0) {
      snprintf(s->why, sizeof s->why, "version vectors differ: node 0 %.400s / node %u %.400s", v0.text, i, v.text);
      return true;
    }
    vs_outbox_counts c;
    if (!sim_outbox(s, i, &c)) return false;
    if (c.pending + c.inflight + c.failed != 0) {
      snprintf(s->why, sizeof s->why, "node %u outbox not drained: pending %" PRIu64 " inflight %" PRIu64
               " failed %" PRIu64 " done %" PRIu64, i, c.pending, c.inflight, c.failed, c.done);
      return true;
    }
  }
  *quiet = true;
  return true;
}

/* Run the event loop until end_ms, or (until_quiet) until converged. */
static bool sim_loop(sim *s, uint64_t end_ms, bool until_quiet) {
  uint32_t same = 0;
  uint64_t next_check = s->now_ms;
  for (uint64_t iter = 0; iter < SIM_ITERS_MAX; iter++) {
    if (!sim_actions(s) || !sim_deliver(s) || !sim_poll_all(s)) return false;
    if (until_quiet && s->now_ms >= next_check) {
      bool quiet;
      if (!sim_quiet(s, &quiet)) return false;
      if (quiet) return true;
      next_check = s->now_ms + SIM_CHECK_EVERY_MS;
    }
    uint64_t next = sim_next_frame(s), a = sim_next_action(s);
    if (a < next) next = a;
    for (uint32_t i = 0; i < s->n; i++)
      if (s->nodes[i].node != NULL && s->nodes[i].wake_ms < next) next = s->nodes[i].wake_ms;
    if (until_quiet && next_check < next) next = next_check;
    if (next >= end_ms) {
      if (!until_quiet) {
        s->now_ms = end_ms;
        return true;
      }
      char why[sizeof s->why];
      memcpy(why, s->why, sizeof why);
      SIM_FAIL(s, "not quiet %" PRIu64 " ms after healing: %.900s", (uint64_t)SIM_HEAL_MS_MAX, why);
    }
    if (next <= s->now_ms) {
      /* Somebody wants work now again: fine a few times, a busy loop if forever. */
      if (++same > SIM_SAME_TIME_MAX) SIM_FAIL(s, "livelock at t=%" PRIu64 ": wake never moves on", (uint64_t)(s->now_ms - T0_MS));
      continue;
    }
    same = 0;
    s->now_ms = next;
  }
  SIM_FAIL(s, "event loop bound reached");
}

static bool sim_setup(sim *s, uint64_t seed) {
  s->seed = seed;
  s->rng = seed;
  s->now_ms = T0_MS;
  s->n = 4 + (uint32_t)sm_below(&s->rng, 3);
  for (uint32_t i = 0; i < s->n; i++) {
    snode *sn = &s->nodes[i];
    sn->sim = s;
    vt_tmpdir(sn->dir, sizeof sn->dir, "nprop");
    uint8_t idseed[VS_SEED_BYTES];
    vt_sm_fill(&s->rng, idseed, sizeof idseed);
    if (vs_identity_from_seed(idseed, &sn->id) != VS_OK) SIM_FAIL(s, "identity");
    if (!sim_open_node(s, i)) return false;
  }
  /* A random spanning tree, then extra edges: connected, degree ~2-4. */
  for (uint32_t k = 1; k < s->n; k++) sim_link(s, k, (uint32_t)sm_below(&s->rng, k))->exists = true;
  for (uint32_t i = 0; i < s->n; i++)
    for (uint32_t j = i + 1; j < s->n; j++)
      if (sm_chance(&s->rng, 350)) s->links[i][j].exists = true;
  /* A fault mix per seed. */
  s->drop_pm = 50 + (uint32_t)sm_below(&s->rng, 101);
  s->dup_pm = (uint32_t)sm_below(&s->rng, 81);
  s->reorder_pm = (uint32_t)sm_below(&s->rng, 101);
  s->flap_min_ms = 1000 + sm_below(&s->rng, 2000);
  s->flap_span_ms = 2000 + sm_below(&s->rng, 8000);
  uint64_t chaos_ms = 6000 + sm_below(&s->rng, 14000);
  if (getenv("VS_NODE_HARSH") != NULL) { /* opt-in: ~30% loss, long flappy chaos */
    s->drop_pm *= 3;
    s->dup_pm *= 2;
    s->reorder_pm *= 3;
    s->flap_min_ms /= 4;
    s->flap_span_ms /= 2;
    chaos_ms *= 3;
  }
  s->writes = 50 + (uint32_t)sm_below(&s->rng, 151);
  s->write_at = calloc(s->writes, sizeof *s->write_at);
  assert_non_null(s->write_at);
  for (uint32_t k = 0; k < s->writes; k++) s->write_at[k] = T0_MS + 1 + sm_below(&s->rng, chaos_ms - 1);
  for (uint32_t k = 1; k < s->writes; k++) /* insertion sort: a few hundred entries */
    for (uint32_t m = k; m > 0 && s->write_at[m - 1] > s->write_at[m]; m--) {
      uint64_t t = s->write_at[m];
      s->write_at[m] = s->write_at[m - 1];
      s->write_at[m - 1] = t;
    }
  s->restarts = (uint32_t)sm_below(&s->rng, 4);
  for (uint32_t k = 0; k < s->restarts; k++) s->restart_at[k] = T0_MS + (k + 1) * chaos_ms / (s->restarts + 1);
  s->chaos = true;
  for (uint32_t i = 0; i < s->n; i++)
    for (uint32_t j = i + 1; j < s->n; j++)
      if (s->links[i][j].exists) s->links[i][j].up_at_ms = T0_MS + sm_below(&s->rng, 200);
  return true;
}

/* After quiet: the invariants of the run. */
static bool sim_check(sim *s) {
  vs_node_stats st0;
  for (uint32_t i = 0; i < s->n; i++) {
    snode *sn = &s->nodes[i];
    vs_store *store = vs_node_store(sn->node);
    for (size_t k = 0; k < s->acked.n; k++) {
      uint64_t lsn;
      vs_err err = vs_wal_find(store, &s->acked.v[k], &lsn);
      char hex[VS_OP_ID_HEX_BYTES];
      vs_op_id_to_hex(&s->acked.v[k], hex);
      if (err != VS_OK) SIM_FAIL(s, "node %u lacks acknowledged write %s: %s", i, hex, vs_err_name(err));
    }
    idlist wal = {0};
    vs_err err = vs_wal_replay(store, 1, wal_ids_cb, &wal);
    size_t dups = err == VS_OK ? idlist_dups(&wal) : 0;
    size_t wal_n = wal.n;
    idlist_free(&wal);
    if (err != VS_OK) SIM_FAIL(s, "node %u: WAL replay: %s", i, vs_err_name(err));
    if (dups != 0) SIM_FAIL(s, "node %u: %zu operations stored twice", i, dups);
    if (wal_n != s->acked.n)
      SIM_FAIL(s, "node %u holds %zu ops, %zu writes were acknowledged", i, wal_n, s->acked.n);
    vv_buf v;
    if (vv_text(store, &v) != VS_OK || v.seq_sum != wal_n)
      SIM_FAIL(s, "node %u: version vector sums to %" PRIu64 ", WAL has %zu", i, v.seq_sum, wal_n);
    dups = idlist_dups(&sn->applied);
    if (dups != 0) SIM_FAIL(s, "node %u: on_apply called twice for %zu operations", i, dups);
    if (sn->applied.n != wal_n) SIM_FAIL(s, "node %u: on_apply called %zu times for %zu ops", i, sn->applied.n, wal_n);
    vs_node_stats now;
    vs_node_stats_get(sn->node, &now);
    st0 = sn->past;
    stats_add(&st0, &now);
    if (st0.rejected_auth != 0 || st0.runs_forged != 0 || st0.runs_fork != 0 || st0.rejected_malformed != 0 ||
        st0.rejected_vv_regress != 0 || st0.rejected_origin_quota != 0)
      SIM_FAIL(s, "node %u refused honest frames: auth %" PRIu64 " malformed %" PRIu64 " forged %" PRIu64
               " fork %" PRIu64 " vv regress %" PRIu64 " origin quota %" PRIu64, i, st0.rejected_auth,
               st0.rejected_malformed, st0.runs_forged, st0.runs_fork, st0.rejected_vv_regress,
               st0.rejected_origin_quota);
    stats_add(&s->tot.st, &st0);
  }
  s->tot.end_ms = s->now_ms;
  return vs_state_hash(vs_node_store(s->nodes[0].node), s->tot.final_hash) == VS_OK;
}

static void sim_free(sim *s) {
  for (uint32_t i = 0; i < s->n; i++) {
    vs_node_close(s->nodes[i].node);
    vt_rmrf(s->nodes[i].dir);
    vs_identity_wipe(&s->nodes[i].id);
    idlist_free(&s->nodes[i].applied);
  }
  for (uint32_t i = 0; i < SIM_NODES_MAX; i++)
    for (uint32_t j = 0; j < SIM_NODES_MAX; j++)
      for (int d = 0; d < 2; d++) {
        fq_clear(&s->links[i][j].q[d]);
        free(s->links[i][j].q[d].f);
      }
  free(s->write_at);
  idlist_free(&s->acked);
}

static bool sim_run(sim *s, uint64_t seed) {
  if (!sim_setup(s, seed)) return false;
  uint64_t chaos_end = s->write_at[s->writes - 1] + 1 + sm_below(&s->rng, 2000);
  if (!sim_loop(s, chaos_end, false)) return false;
  /* Heal: every node up, every link up, no faults from now on. */
  s->chaos = false;
  for (uint32_t i = 0; i < s->n; i++)
    if (s->nodes[i].node == NULL && !sim_reopen(s, i)) return false;
  for (uint32_t i = 0; i < s->n; i++)
    for (uint32_t j = i + 1; j < s->n; j++) {
      slink *l = &s->links[i][j];
      l->down_at_ms = UINT64_MAX;
      if (l->exists && !l->up && !sim_link_up(s, i, j)) return false;
    }
  uint64_t heal_start = s->now_ms;
  if (!sim_loop(s, s->now_ms + SIM_HEAL_MS_MAX, true)) return false;
  s->tot.heal_ms += s->now_ms - heal_start;
  /* Quiet must stay quiet: run on a little and look again. */
  if (!sim_loop(s, s->now_ms + 5000, false)) return false;
  bool quiet;
  if (!sim_quiet(s, &quiet)) return false;
  if (!quiet) {
    char why[sizeof s->why];
    memcpy(why, s->why, sizeof why);
    SIM_FAIL(s, "quiet, then not: %.900s", why);
  }
  return sim_check(s);
}

static uint64_t env_u64(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  if (v == NULL || v[0] == '\0') return dflt;
  char *end = NULL;
  unsigned long long x = strtoull(v, &end, 0);
  return end != NULL && *end == '\0' ? (uint64_t)x : dflt;
}

static void test_node_converges_under_chaos(void **state) {
  (void)state;
  uint64_t count = env_u64("VS_NODE_SEEDS", 100);
  uint64_t base = env_u64("VS_NODE_SEED_BASE", 1);
  bool one = getenv("VS_NODE_SEED") != NULL;
  if (one) {
    base = env_u64("VS_NODE_SEED", 1);
    count = 1;
  }
  sim_totals tot;
  memset(&tot, 0, sizeof tot);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (uint64_t k = 0; k < count; k++) {
    uint64_t seed = base + k;
    sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    bool ok = sim_run(s, seed);
    sim_totals t = s->tot;
    char why[sizeof s->why];
    memcpy(why, s->why, sizeof why);
    uint32_t n = s->n, writes = s->writes;
    sim_free(s);
    free(s);
    if (!ok)
      fail_msg("seed %" PRIu64 " (%u nodes, %u writes) failed: %s\n  replay: %sVS_NODE_SEED=%" PRIu64 " %s",
               seed, n, writes, why, getenv("VS_NODE_HARSH") != NULL ? "VS_NODE_HARSH=1 " : "", seed, PROGRAM);
    tot.seeds++;
#define TOT_(f) tot.f += t.f;
    TOT_(writes) TOT_(idem_retries) TOT_(dropped) TOT_(duplicated) TOT_(reordered) TOT_(flaps) TOT_(restarts)
    TOT_(closes) TOT_(stale) TOT_(heal_ms)
#undef TOT_
    stats_add(&tot.st, &t.st);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  print_message("convergence: %" PRIu64 " seeds from %" PRIu64 " in %.1f s; %" PRIu64 " writes, %" PRIu64
                " idempotent retries; faults: %" PRIu64 " dropped, %" PRIu64 " duplicated, %" PRIu64
                " reordered, %" PRIu64 " flaps, %" PRIu64 " restarts, %" PRIu64 " closes; mean heal %.1f s\n",
                tot.seeds, base, secs, tot.writes, tot.idem_retries, tot.dropped, tot.duplicated, tot.reordered,
                tot.flaps, tot.restarts, tot.closes, tot.seeds ? (double)tot.heal_ms / 1000.0 / (double)tot.seeds : 0.0);
  print_message("  node counters: handshakes %" PRIu64 " (timeouts %" PRIu64 "), replays %" PRIu64 ", state %" PRIu64
                ", unknown peer %" PRIu64 ", gaps %" PRIu64 ", ops applied %" PRIu64 " (dup %" PRIu64
                "), resends %" PRIu64 ", stale outputs %" PRIu64 "\n",
                tot.st.handshakes_done, tot.st.handshakes_timeout, tot.st.rejected_replay, tot.st.rejected_state,
                tot.st.rejected_unknown_peer, tot.st.runs_gap, tot.st.ops_applied, tot.st.ops_duplicate,
                tot.st.resends, tot.stale);
  /* The sweep must have exercised what it claims to (unless one seed was asked for). */
  if (!one && count >= 20) {
    assert_true(tot.dropped > 0 && tot.duplicated > 0 && tot.reordered > 0 && tot.flaps > 0 && tot.restarts > 0);
    assert_true(tot.idem_retries > 0 && tot.st.handshakes_timeout > 0 && tot.st.rejected_replay > 0);
  }
}

/* G3: a run is a pure function of its seed: the same seed twice gives the
 * same faults, the same traffic counters, the same end time and state. */
static void test_node_sim_is_deterministic(void **state) {
  (void)state;
  sim_totals runs[2];
  for (int k = 0; k < 2; k++) {
    sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    bool ok = sim_run(s, 4242);
    runs[k] = s->tot;
    char why[sizeof s->why];
    memcpy(why, s->why, sizeof why);
    sim_free(s);
    free(s);
    if (!ok) fail_msg("seed 4242 failed: %s\n  replay: VS_NODE_SEED=4242 %s", why, PROGRAM);
  }
  assert_memory_equal(runs[0].final_hash, runs[1].final_hash, VS_HASH_BYTES);
  assert_int_equal(runs[0].end_ms, runs[1].end_ms);
  assert_memory_equal(&runs[0].st, &runs[1].st, sizeof runs[0].st);
  assert_int_equal(runs[0].dropped, runs[1].dropped);
  assert_int_equal(runs[0].duplicated, runs[1].duplicated);
  assert_int_equal(runs[0].reordered, runs[1].reordered);
  assert_int_equal(runs[0].restarts, runs[1].restarts);
}

/* =====================================================================
 * 2. Hostile peers: a small bench of real nodes and fake peers
 * ===================================================================== */

#define BENCH_NODES 3u
#define FAKE_HANDLE 100u /* handles from here on are fake peers driven by the test */
#define CAPS_MAX 4096u

typedef struct cap {
  uint32_t node, handle;
  bool close;
  uint8_t *bytes;
  size_t len;
} cap;

typedef struct bench {
  char dirs[BENCH_NODES][256];
  vs_identity ids[BENCH_NODES];
  vs_node *nodes[BENCH_NODES];
  uint8_t mesh[BENCH_NODES][VS_MESH_KEY_BYTES];
  uint64_t wake[BENCH_NODES];
  bool link[BENCH_NODES][BENCH_NODES];
  uint32_t n;
  uint64_t now_ms, rng;
  cap caps[CAPS_MAX]; /* frames and closes the nodes sent to fake handles */
  uint32_t ncaps;
  uint64_t sent_to[BENCH_NODES][BENCH_NODES]; /* SEND frames i -> j */
  uint32_t ack_quorum[BENCH_NODES];           /* 0: the default */
  uint32_t origin_quota[BENCH_NODES];         /* 0: the default */
  uint64_t inflight_max[BENCH_NODES];         /* 0: the default */
} bench;

static void bench_open(bench *t, uint32_t i) {
  vs_node_cfg cfg = vt_node_cfg(t->dirs[i], &t->ids[i], t->mesh[i], &t->rng);
  if (t->ack_quorum[i] != 0) cfg.ack_quorum = t->ack_quorum[i];
  if (t->origin_quota[i] != 0) cfg.origin_quota_per_min = t->origin_quota[i];
  if (t->inflight_max[i] != 0) cfg.inflight_bytes_max = t->inflight_max[i];
  assert_err(vs_node_open(&cfg, &t->nodes[i]), VS_OK);
}

static bench *bench_new(uint32_t n) {
  bench *t = calloc(1, sizeof *t);
  assert_non_null(t);
  t->n = n;
  t->now_ms = T0_MS;
  t->rng = 7;
  for (uint32_t i = 0; i < n; i++) {
    vt_tmpdir(t->dirs[i], sizeof t->dirs[i], "nsec");
    vt_identity_from_byte((uint8_t)(0x40 + i), &t->ids[i]);
    memset(t->mesh[i], 0x5a, VS_MESH_KEY_BYTES);
    bench_open(t, i);
  }
  return t;
}

static void caps_clear(bench *t) {
  for (uint32_t k = 0; k < t->ncaps; k++) free(t->caps[k].bytes);
  t->ncaps = 0;
}

static void bench_free(bench *t) {
  for (uint32_t i = 0; i < t->n; i++) {
    vs_node_close(t->nodes[i]);
    vt_rmrf(t->dirs[i]);
  }
  caps_clear(t);
  free(t);
}

static void bench_connect(bench *t, uint32_t i, uint32_t j) {
  vt_nodes_up(t->nodes, i, j, t->now_ms);
  t->link[i][j] = t->link[j][i] = true;
}

static void bench_disconnect(bench *t, uint32_t i, uint32_t j) {
  if (!t->link[i][j]) return;
  vt_nodes_down(t->nodes, i, j, t->now_ms);
  t->link[i][j] = t->link[j][i] = false;
}

/* Poll every node until none has anything to send at this instant; frames
 * between real nodes arrive at once and in order; the rest is captured. */
static void bench_pump(bench *t) {
  for (uint32_t round = 0; round < 10000; round++) {
    bool any = false;
    for (uint32_t i = 0; i < t->n; i++) {
      for (uint32_t k = 0; k < 100000; k++) {
        vs_node_out out;
        uint64_t w = UINT64_MAX;
        assert_err(vs_node_poll(t->nodes[i], t->now_ms, &out, &w), VS_OK);
        if (out.kind == VS_NODE_OUT_NONE) {
          t->wake[i] = w;
          break;
        }
        any = true;
        uint32_t h = out.peer;
        if (h >= FAKE_HANDLE) {
          assert_true(t->ncaps < CAPS_MAX);
          cap *c = &t->caps[t->ncaps++];
          c->node = i;
          c->handle = h;
          c->close = out.kind == VS_NODE_OUT_CLOSE;
          c->bytes = NULL;
          c->len = out.bytes_len;
          if (!c->close) {
            c->bytes = malloc(out.bytes_len);
            assert_non_null(c->bytes);
            memcpy(c->bytes, out.bytes, out.bytes_len);
          }
          continue;
        }
        assert_true(h < t->n);
        if (out.kind == VS_NODE_OUT_CLOSE) {
          bench_disconnect(t, i, h);
          continue;
        }
        t->sent_to[i][h]++;
        if (t->link[i][h]) (void)vt_node_on_frame(t->nodes[h], i, out.bytes, out.bytes_len, t->now_ms);
      }
    }
    if (!any) return;
  }
  fail_msg("bench_pump: never quiet");
}

/* Advance virtual time by ms, waking nodes when they ask. */
static void bench_run(bench *t, uint64_t ms) {
  uint64_t end = t->now_ms + ms;
  for (uint32_t step = 0; step < 100000; step++) {
    bench_pump(t);
    uint64_t wake = UINT64_MAX;
    for (uint32_t i = 0; i < t->n; i++) wake = t->wake[i] < wake ? t->wake[i] : wake;
    if (wake >= end) break;
    t->now_ms = wake > t->now_ms ? wake : t->now_ms + 1;
  }
  t->now_ms = end;
  bench_pump(t);
}

/* Take the first captured frame the node sent to `handle` (false if none). */
static bool cap_take(bench *t, uint32_t node, uint32_t handle, bool *close, uint8_t *buf, size_t max, size_t *len) {
  for (uint32_t k = 0; k < t->ncaps; k++) {
    cap *c = &t->caps[k];
    if (c->node != node || c->handle != handle) continue;
    *close = c->close;
    *len = 0;
    if (!c->close) {
      assert_true(c->len <= max);
      memcpy(buf, c->bytes, c->len);
      *len = c->len;
    }
    free(c->bytes);
    memmove(c, c + 1, sizeof *c * (t->ncaps - k - 1));
    t->ncaps--;
    return true;
  }
  return false;
}

static uint32_t caps_count(const bench *t, uint32_t node, uint32_t handle, bool close) {
  uint32_t c = 0;
  for (uint32_t k = 0; k < t->ncaps; k++)
    c += t->caps[k].node == node && t->caps[k].handle == handle && t->caps[k].close == close ? 1u : 0u;
  return c;
}

/* ---- snapshots: what a refused frame must not change ---- */

typedef struct snap {
  uint8_t hash[VS_HASH_BYTES];
  uint64_t lsn, forks;
  vv_buf vv;
  vs_node_stats st;
} snap;

static void snap_take(vs_node *node, snap *s) {
  vs_store *st = vs_node_store(node);
  assert_err(vs_state_hash(st, s->hash), VS_OK);
  assert_err(vs_wal_last_lsn(st, &s->lsn), VS_OK);
  assert_err(vs_apply_forks(st, NULL, 0, &s->forks), VS_OK);
  assert_err(vv_text(st, &s->vv), VS_OK);
  vs_node_stats_get(node, &s->st);
}

static void snap_same_store(vs_node *node, const snap *before) {
  snap now;
  snap_take(node, &now);
  assert_memory_equal(now.hash, before->hash, VS_HASH_BYTES);
  assert_int_equal(now.lsn, before->lsn);
  assert_int_equal(now.forks, before->forks);
  assert_string_equal(now.vv.text, before->vv.text);
}

#define REJECT_FIELDS(X)                                                                                        \
  X(rejected_auth) X(rejected_replay) X(rejected_malformed) X(rejected_state) X(rejected_unknown_peer) X(runs_gap) \
  X(runs_forged) X(runs_fork) X(rejected_origin_quota) X(rejected_vv_regress) X(fork_evidence_bad) X(runs_void) \
  X(rejected_want_quota)

/* Exactly `field` grew by `delta` among the refusal counters. */
static void expect_only(vs_node *node, const snap *before, const char *field, uint64_t delta, const char *what) {
  vs_node_stats now;
  vs_node_stats_get(node, &now);
#define CHK_(f)                                                                                      \
  {                                                                                                  \
    uint64_t want = strcmp(#f, field) == 0 ? delta : 0, got = now.f - before->st.f;                  \
    if (got != want) fail_msg("%s: %s grew by %" PRIu64 ", want %" PRIu64, what, #f, got, want);     \
  }
  REJECT_FIELDS(CHK_)
#undef CHK_
}

/* Refused, counted where it belongs, nothing stored changed. */
static void expect_refused(vs_node *node, const snap *before, const char *field, uint64_t delta, const char *what) {
  expect_only(node, before, field, delta, what);
  snap_same_store(node, before);
}

/* ---- a fake peer that knows the mesh key, driving wire.h by hand ---- */

typedef struct fake {
  uint32_t handle;
  vs_identity id;
  uint8_t mesh[VS_MESH_KEY_BYTES];
  vs_hs hs;
  vs_session sess;
  uint8_t hello[VS_HELLO_BYTES], cookie[VS_COOKIE_FRAME_BYTES], hello2[VS_HELLO2_BYTES];
  uint8_t reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
} fake;

static void fake_init(fake *f, uint32_t handle, uint8_t id_byte) {
  memset(f, 0, sizeof *f);
  f->handle = handle;
  vt_identity_from_byte(id_byte, &f->id);
  memset(f->mesh, 0x5a, VS_MESH_KEY_BYTES);
}

/* The fake dials node `i` and completes the handshake as initiator. */
static void fake_dial(bench *t, fake *f, uint32_t i) {
  vs_node *node = t->nodes[i];
  assert_err(vs_node_peer_up(node, f->handle, false, t->now_ms), VS_OK);
  uint8_t eph[32];
  vt_sm_fill(&t->rng, eph, sizeof eph);
  size_t len = 0;
  assert_err(vs_hs_start_initiator(&f->hs, &f->id, f->mesh, eph, f->hello, sizeof f->hello, &len), VS_OK);
  assert_err(vt_node_on_frame(node, f->handle, f->hello, len, t->now_ms), VS_OK);
  bench_pump(t);
  bool close = false, done = false;
  /* The cookie round: COOKIE back, HELLO2 echoes it. */
  assert_true(cap_take(t, i, f->handle, &close, f->cookie, sizeof f->cookie, &len));
  assert_false(close);
  assert_int_equal(len, VS_COOKIE_FRAME_BYTES);
  assert_err(vs_hs_on_frame(&f->hs, f->cookie, len, f->hello2, sizeof f->hello2, &len, &done, &f->sess), VS_OK);
  assert_false(done);
  assert_int_equal(len, VS_HELLO2_BYTES);
  assert_err(vt_node_on_frame(node, f->handle, f->hello2, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, i, f->handle, &close, f->reply, sizeof f->reply, &len));
  assert_false(close);
  assert_int_equal(len, VS_REPLY_BYTES);
  assert_err(vs_hs_on_frame(&f->hs, f->reply, len, f->auth, sizeof f->auth, &len, &done, &f->sess), VS_OK);
  assert_true(done);
  assert_memory_equal(f->sess.peer_id, t->ids[i].pk, VS_ORIGIN_BYTES);
  assert_err(vt_node_on_frame(node, f->handle, f->auth, len, t->now_ms), VS_OK);
  bench_pump(t);
  /* The node greets a ready peer with its version vector. */
  uint8_t buf[8192], msg[8192];
  size_t msg_len = 0;
  assert_true(cap_take(t, i, f->handle, &close, buf, sizeof buf, &len));
  assert_false(close);
  assert_err(vs_session_open(&f->sess, buf, len, msg, sizeof msg, &msg_len), VS_OK);
  assert_int_equal(msg[0], VS_MSG_VV);
}

/* A hand-driven responder `r` answers the node's HELLO (already taken into
 * `hello`): COOKIE to the node, whose HELLO2 it answers with REPLY into
 * reply_out. Returns the REPLY's length. */
static size_t fake_respond(bench *t, uint32_t i, fake *r, const uint8_t *hello, size_t hello_len, uint8_t *reply_out,
                           size_t reply_max) {
  static const uint8_t SECRET[VS_COOKIE_SECRET_BYTES] = {9};
  uint8_t eph[32], cookie[VS_COOKIE_FRAME_BYTES], hello2[VS_HELLO2_BYTES];
  size_t len = 0;
  bool close = false, done = false;
  vt_sm_fill(&t->rng, eph, sizeof eph);
  assert_err(vs_hs_start_responder(&r->hs, &r->id, r->mesh, eph), VS_OK);
  assert_err(vs_hs_responder_cookie(&r->hs, SECRET, NULL, NULL, 0), VS_OK);
  assert_err(vs_hs_on_frame(&r->hs, hello, hello_len, cookie, sizeof cookie, &len, &done, &r->sess), VS_OK);
  assert_err(vt_node_on_frame(t->nodes[i], r->handle, cookie, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, i, r->handle, &close, hello2, sizeof hello2, &len));
  assert_false(close);
  assert_int_equal(len, VS_HELLO2_BYTES);
  assert_err(vs_hs_on_frame(&r->hs, hello2, len, reply_out, reply_max, &len, &done, &r->sess), VS_OK);
  assert_false(done);
  return len;
}

/* Seal `msg` with the fake's session into frame_out. */
static size_t fake_seal(fake *f, const uint8_t *msg, size_t len, uint8_t *frame_out, size_t max) {
  size_t out = 0;
  assert_err(vs_session_seal(&f->sess, msg, len, frame_out, max, &out), VS_OK);
  return out;
}

/* ---- building operations and OPS messages as an origin ---- */

typedef struct chain {
  vs_identity id;
  uint64_t seq, hlc;
  uint8_t head[VS_HASH_BYTES];
} chain;

typedef struct encop {
  uint8_t enc[512];
  uint32_t len;
  uint8_t hash[VS_HASH_BYTES];
  uint64_t seq;
} encop;

static void chain_init(chain *c, const vs_identity *id) {
  memset(c, 0, sizeof *c);
  c->id = *id;
  c->hlc = vs_hlc_make(T0_MS, 0);
}

/* The next op of the chain (origin = `origin`, normally the chain's own). */
static void chain_op(chain *c, const uint8_t origin[VS_ORIGIN_BYTES], const char *kind, const char *target,
                     const char *payload, encop *out) {
  vs_op op;
  c->seq++;
  c->hlc++;
  assert_err(vs_op_init(&op, origin, c->seq, c->hlc, c->head, kind, (const uint8_t *)target,
                        (uint32_t)strlen(target), (const uint8_t *)payload, (uint32_t)strlen(payload)),
             VS_OK);
  size_t len = 0;
  assert_err(vs_op_encode(&op, out->enc, sizeof out->enc, &len), VS_OK);
  out->len = (uint32_t)len;
  out->seq = c->seq;
  vs_op_hash_encoded(out->enc, len, out->hash);
  memcpy(c->head, out->hash, VS_HASH_BYTES);
}

/* One OPS message with one run of ops[0..count), signed by `signer` over the
 * last op (as seq, hash). */
static size_t ops_msg(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                      const encop *ops, uint32_t count, uint8_t *out, size_t max) {
  const uint8_t *encs[16];
  uint32_t lens[16];
  assert_true(count <= 16);
  for (uint32_t k = 0; k < count; k++) {
    encs[k] = ops[k].enc;
    lens[k] = ops[k].len;
  }
  vs_ops_writer w;
  size_t len = 0;
  assert_err(vs_ops_writer_init(&w, out, max), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, origin, sig, encs, lens, count), VS_OK);
  assert_err(vs_ops_writer_finish(&w, &len), VS_OK);
  return len;
}

static void sign_last(const vs_identity *signer, const encop *last, uint8_t sig[VS_SIGNATURE_BYTES]) {
  vs_chain_sign(signer, last->seq, last->hash, sig);
}

/* A and B (nodes 0 and 1) still sync: a write on each reaches the other. */
static void expect_legit_sync(bench *t, const char *tag) {
  char target[32];
  snprintf(target, sizeof target, "legit-%s", tag);
  vt_node_write_kv(t->nodes[1], t->now_ms, "put", target, "from-b");
  vt_node_write_kv(t->nodes[0], t->now_ms, "incr", "legit-counter", "1");
  bench_run(t, 3000);
  snap a, b;
  snap_take(t->nodes[0], &a);
  snap_take(t->nodes[1], &b);
  if (memcmp(a.hash, b.hash, VS_HASH_BYTES) != 0 || strcmp(a.vv.text, b.vv.text) != 0)
    fail_msg("after %s: A and B no longer converge (A %s / B %s)", tag, a.vv.text, b.vv.text);
}

static bench *bench_secure(fake *f) {
  bench *t = bench_new(2);
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "a", "1");
  vt_node_write_kv(t->nodes[1], t->now_ms, "put", "b", "2");
  bench_run(t, 2000);
  fake_init(f, FAKE_HANDLE, 0x77);
  fake_dial(t, f, 0);
  caps_clear(t);
  return t;
}

static void test_node_rejects_other_mesh(void **state) {
  (void)state;
  bench *t = bench_new(3);
  memset(t->mesh[2], 0x33, VS_MESH_KEY_BYTES);
  vs_node_close(t->nodes[2]);
  bench_open(t, 2);
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "secret", "42");
  bench_run(t, 1000);
  snap a0, c0;
  snap_take(t->nodes[0], &a0);
  snap_take(t->nodes[2], &c0);
  /* C dials A: A refuses HELLO's MAC, answers nothing, closes. */
  bench_connect(t, 2, 0);
  bench_pump(t);
  assert_false(t->link[0][2]);
  assert_int_equal(t->sent_to[0][2], 0);
  expect_refused(t->nodes[0], &a0, "rejected_auth", 1, "other mesh dials");
  /* A dials C: C refuses A's HELLO; A sent only that HELLO. */
  snap_take(t->nodes[0], &a0);
  bench_connect(t, 0, 2);
  bench_run(t, 6000);
  assert_false(t->link[0][2]);
  assert_int_equal(t->sent_to[0][2], 1);
  expect_refused(t->nodes[2], &c0, "rejected_auth", 1, "other mesh is dialled");
  snap c1;
  snap_take(t->nodes[2], &c1);
  uint8_t zero[VS_HASH_BYTES] = {0};
  assert_memory_equal(c1.hash, zero, VS_HASH_BYTES);
  assert_int_equal(c1.lsn, 0);
  assert_int_equal(c1.st.handshakes_done, 0);
  vs_node_stats sa;
  vs_node_stats_get(t->nodes[0], &sa);
  assert_int_equal(sa.handshakes_done, 1); /* only B */
  expect_legit_sync(t, "other-mesh");
  bench_free(t);
}

static void test_node_rejects_forged_and_replayed_data(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  chain c;
  chain_init(&c, &f.id);
  encop op;
  chain_op(&c, f.id.pk, "put", "fake", "1", &op);
  uint8_t sig[VS_SIGNATURE_BYTES], msg[2048], frame[4096], bad[4096];
  sign_last(&f.id, &op, sig);
  size_t mlen = ops_msg(f.id.pk, sig, &op, 1, msg, sizeof msg);
  size_t flen = fake_seal(&f, msg, mlen, frame, sizeof frame);
  snap s0;
  snap_take(t->nodes[0], &s0);
  /* A flipped ciphertext byte, anywhere after the header: forged. */
  for (size_t k = 10; k < flen; k += 7) {
    memcpy(bad, frame, flen);
    bad[k] ^= 0x01;
    assert_err(vt_node_on_frame(t->nodes[0], f.handle, bad, flen, t->now_ms), VS_ERR_AUTH);
  }
  expect_refused(t->nodes[0], &s0, "rejected_auth", (flen - 10 + 6) / 7, "flipped ciphertext");
  /* The forgeries did not move the replay window: the real frame passes. */
  snap_take(t->nodes[0], &s0);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);
  expect_only(t->nodes[0], &s0, "none", 0, "genuine frame");
  snap s1;
  snap_take(t->nodes[0], &s1);
  assert_int_equal(s1.lsn, s0.lsn + 1);
  assert_int_equal(s1.st.ops_applied, s0.st.ops_applied + 1);
  /* The exact bytes again: a replay, nothing applied twice. */
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_ERR_REPLAY);
  expect_refused(t->nodes[0], &s1, "rejected_replay", 1, "replayed DATA");
  /* A replayed frame with a forged body is still a replay (window first). */
  memcpy(bad, frame, flen);
  bad[flen - 1] ^= 0x80;
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, bad, flen, t->now_ms), VS_ERR_REPLAY);
  expect_refused(t->nodes[0], &s1, "rejected_replay", 2, "replayed forged DATA");
  expect_legit_sync(t, "forged-data");
  bench_free(t);
}

static void test_node_rejects_data_before_handshake(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint8_t frame[256], vv[VS_MSG_VV_HEADER_BYTES];
  size_t vlen = 0;
  assert_err(vs_msg_vv_encode(&(vs_vv_part){1, 0, 1, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  size_t flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  /* As responder: the connection waits for HELLO. */
  const uint32_t h = FAKE_HANDLE + 1;
  assert_err(vs_node_peer_up(t->nodes[0], h, false, t->now_ms), VS_OK);
  snap s0;
  snap_take(t->nodes[0], &s0);
  vs_err err = vt_node_on_frame(t->nodes[0], h, frame, flen, t->now_ms);
  assert_true(err == VS_ERR_STATE);
  expect_refused(t->nodes[0], &s0, "rejected_state", 1, "DATA before HELLO");
  /* As initiator: the connection waits for REPLY. */
  const uint32_t h2 = FAKE_HANDLE + 2;
  assert_err(vs_node_peer_up(t->nodes[0], h2, true, t->now_ms), VS_OK);
  bench_pump(t);
  snap_take(t->nodes[0], &s0);
  assert_err(vt_node_on_frame(t->nodes[0], h2, frame, flen, t->now_ms), VS_ERR_STATE);
  expect_refused(t->nodes[0], &s0, "rejected_state", 1, "DATA before REPLY");
  /* A HELLO on an established session is not expected there either. */
  snap_take(t->nodes[0], &s0);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, f.hello, sizeof f.hello, t->now_ms), VS_ERR_STATE);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, f.auth, sizeof f.auth, t->now_ms), VS_ERR_STATE);
  expect_refused(t->nodes[0], &s0, "rejected_state", 2, "handshake frames after the handshake");
  /* A frame for a connection the node never heard of. */
  snap_take(t->nodes[0], &s0);
  assert_err(vt_node_on_frame(t->nodes[0], 9999, frame, flen, t->now_ms), VS_ERR_NOTFOUND);
  expect_refused(t->nodes[0], &s0, "rejected_unknown_peer", 1, "unknown connection");
  expect_legit_sync(t, "data-before-handshake");
  bench_free(t);
}

/* Every prefix of `frame` is refused, counted, changes nothing. */
static void feed_prefixes(bench *t, uint32_t handle, const uint8_t *frame, size_t len, const char *what) {
  snap s0;
  snap_take(t->nodes[0], &s0);
  uint8_t *copy = malloc(len + 1);
  assert_non_null(copy);
  uint64_t rejected = 0;
  for (size_t k = 0; k < len; k++) {
    memcpy(copy, frame, k); /* its own allocation: ASan sees any read past k */
    uint8_t *exact = malloc(k > 0 ? k : 1);
    assert_non_null(exact);
    memcpy(exact, frame, k);
    vs_err err = vt_node_on_frame(t->nodes[0], handle, exact, k, t->now_ms);
    free(exact);
    if (err == VS_OK) fail_msg("%s: a %zu-byte prefix of %zu was accepted", what, k, len);
    rejected++;
  }
  /* And one trailing byte too many. */
  memcpy(copy, frame, len);
  copy[len] = 0;
  if (vt_node_on_frame(t->nodes[0], handle, copy, len + 1, t->now_ms) == VS_OK)
    fail_msg("%s: trailing byte accepted", what);
  rejected++;
  free(copy);
  vs_node_stats now;
  vs_node_stats_get(t->nodes[0], &now);
  uint64_t got = (now.rejected_malformed - s0.st.rejected_malformed) + (now.rejected_auth - s0.st.rejected_auth);
  if (got != rejected) fail_msg("%s: %" PRIu64 " refusals counted for %" PRIu64 " frames", what, got, rejected);
  snap_same_store(t->nodes[0], &s0);
}

static void test_node_rejects_truncated_frames(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  /* DATA: every prefix of a valid OPS frame, then the frame itself passes. */
  chain c;
  chain_init(&c, &f.id);
  encop op;
  chain_op(&c, f.id.pk, "put", "t", "v", &op);
  uint8_t sig[VS_SIGNATURE_BYTES], msg[2048], frame[4096];
  sign_last(&f.id, &op, sig);
  size_t flen = fake_seal(&f, msg, ops_msg(f.id.pk, sig, &op, 1, msg, sizeof msg), frame, sizeof frame);
  snap s0;
  snap_take(t->nodes[0], &s0);
  feed_prefixes(t, f.handle, frame, flen, "DATA");
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  /* Short of header + counter + tag: malformed; longer (and one byte too
   * long): the tag fails. */
  assert_int_equal(st.rejected_malformed - s0.st.rejected_malformed, VS_DATA_OVERHEAD_BYTES);
  assert_int_equal(st.rejected_auth - s0.st.rejected_auth, flen - VS_DATA_OVERHEAD_BYTES + 1);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);

  /* HELLO: prefixes on a fresh responder connection, then the real one. */
  fake g;
  fake_init(&g, FAKE_HANDLE + 10, 0x78);
  assert_err(vs_node_peer_up(t->nodes[0], g.handle, false, t->now_ms), VS_OK);
  uint8_t eph[32], reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
  vt_sm_fill(&t->rng, eph, sizeof eph);
  size_t len = 0;
  bool close = false, done = false;
  assert_err(vs_hs_start_initiator(&g.hs, &g.id, g.mesh, eph, g.hello, sizeof g.hello, &len), VS_OK);
  feed_prefixes(t, g.handle, g.hello, len, "HELLO");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, g.handle, true) + caps_count(t, 0, g.handle, false), 0);
  assert_err(vt_node_on_frame(t->nodes[0], g.handle, g.hello, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, g.cookie, sizeof g.cookie, &len));
  assert_false(close);
  /* HELLO2: prefixes, then the real one. */
  assert_err(vs_hs_on_frame(&g.hs, g.cookie, len, g.hello2, sizeof g.hello2, &len, &done, &g.sess), VS_OK);
  feed_prefixes(t, g.handle, g.hello2, len, "HELLO2");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, g.handle, true) + caps_count(t, 0, g.handle, false), 0);
  assert_err(vt_node_on_frame(t->nodes[0], g.handle, g.hello2, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, reply, sizeof reply, &len));
  assert_false(close);
  /* AUTH: prefixes, then the real one completes the handshake. */
  assert_err(vs_hs_on_frame(&g.hs, reply, len, auth, sizeof auth, &len, &done, &g.sess), VS_OK);
  feed_prefixes(t, g.handle, auth, len, "AUTH");
  vs_node_stats_get(t->nodes[0], &st);
  assert_err(vt_node_on_frame(t->nodes[0], g.handle, auth, len, t->now_ms), VS_OK);
  vs_node_stats st2;
  vs_node_stats_get(t->nodes[0], &st2);
  assert_int_equal(st2.handshakes_done, st.handshakes_done + 1);

  /* REPLY: the node dials a fake responder; prefixes, then the real one. */
  fake r;
  fake_init(&r, FAKE_HANDLE + 11, 0x79);
  assert_err(vs_node_peer_up(t->nodes[0], r.handle, true, t->now_ms), VS_OK);
  bench_pump(t);
  uint8_t hello[VS_HELLO_BYTES];
  assert_true(cap_take(t, 0, r.handle, &close, hello, sizeof hello, &len));
  len = fake_respond(t, 0, &r, hello, len, reply, sizeof reply);
  feed_prefixes(t, r.handle, reply, len, "REPLY");
  assert_err(vt_node_on_frame(t->nodes[0], r.handle, reply, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, r.handle, &close, auth, sizeof auth, &len));
  assert_false(close);
  assert_err(vs_hs_on_frame(&r.hs, auth, len, NULL, 0, &len, &done, &r.sess), VS_OK);
  assert_true(done);
  caps_clear(t);
  expect_legit_sync(t, "truncated");
  bench_free(t);
}

static void test_node_rejects_bad_frame_headers(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  const uint32_t hs_handle = FAKE_HANDLE + 20; /* a connection still in its handshake */
  assert_err(vs_node_peer_up(t->nodes[0], hs_handle, false, t->now_ms), VS_OK);
  uint8_t vv[VS_MSG_VV_HEADER_BYTES], frame[256];
  size_t vlen = 0;
  assert_err(vs_msg_vv_encode(&(vs_vv_part){1, 0, 1, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  size_t flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  const uint32_t handles[2] = {f.handle, hs_handle};
  for (int k = 0; k < 2; k++) {
    uint32_t h = handles[k];
    snap s0;
    snap_take(t->nodes[0], &s0);
    /* Oversized: past VS_FRAME_BYTES_MAX, refused before any parsing. */
    size_t big_len = VS_FRAME_BYTES_MAX + 1;
    uint8_t *big = calloc(1, big_len);
    assert_non_null(big);
    big[0] = VS_WIRE_VERSION;
    big[1] = VS_FRAME_DATA;
    assert_err(vt_node_on_frame(t->nodes[0], h, big, big_len, t->now_ms), VS_ERR_TOO_LARGE);
    free(big);
    expect_refused(t->nodes[0], &s0, "rejected_malformed", 1, "oversized");
    /* Unknown versions. */
    uint8_t bad[256];
    memcpy(bad, frame, flen);
    bad[0] = VS_WIRE_VERSION + 1;
    assert_err(vt_node_on_frame(t->nodes[0], h, bad, flen, t->now_ms), VS_ERR_VERSION);
    bad[0] = 0;
    assert_err(vt_node_on_frame(t->nodes[0], h, bad, flen, t->now_ms), VS_ERR_VERSION);
    vs_node_stats vst;
    vs_node_stats_get(t->nodes[0], &vst);
    assert_int_equal(vst.version_seen, 0);
    bad[0] = 1; /* a v1 peer: refused, and its version is named */
    assert_err(vt_node_on_frame(t->nodes[0], h, bad, flen, t->now_ms), VS_ERR_VERSION);
    vs_node_stats_get(t->nodes[0], &vst);
    assert_int_equal(vst.version_seen, 1);
    assert_int_equal(vst.rejected_version - s0.st.rejected_version, 3);
    expect_refused(t->nodes[0], &s0, "rejected_malformed", 4, "unknown version");
    /* Unknown frame types. */
    memcpy(bad, frame, flen);
    bad[1] = 7;
    assert_err(vt_node_on_frame(t->nodes[0], h, bad, flen, t->now_ms), VS_ERR_MALFORMED);
    bad[1] = 0;
    assert_err(vt_node_on_frame(t->nodes[0], h, bad, flen, t->now_ms), VS_ERR_MALFORMED);
    bad[1] = 0xff;
    assert_err(vt_node_on_frame(t->nodes[0], h, bad, 2, t->now_ms), VS_ERR_MALFORMED);
    expect_refused(t->nodes[0], &s0, "rejected_malformed", 7, "unknown frame type");
  }
  /* None of it moved the session's window: the real frame passes. */
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);
  expect_legit_sync(t, "bad-headers");
  bench_free(t);
}

static void test_node_rejects_bad_messages_in_session(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint8_t msg[4096], frame[8192];
  snap s0;
  snap_take(t->nodes[0], &s0);
  /* Unknown message types, an empty message. */
  const uint8_t types[4] = {0, 5, 0x7f, 0xff};
  for (int k = 0; k < 4; k++) {
    memset(msg, 0, 64);
    msg[0] = types[k];
    size_t flen = fake_seal(&f, msg, 37, frame, sizeof frame);
    assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_ERR_MALFORMED);
  }
  size_t flen = fake_seal(&f, msg, 0, frame, sizeof frame);
  assert_true(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms) != VS_OK);
  expect_refused(t->nodes[0], &s0, "rejected_malformed", 5, "unknown message type");
  /* A VV whose origins are out of order; an OPS with no run. */
  snap_take(t->nodes[0], &s0);
  vs_vv_entry e[2];
  memset(e, 0, sizeof e);
  e[0].origin[0] = 2;
  e[1].origin[0] = 1;
  e[0].seq = e[1].seq = 1;
  msg[0] = VS_MSG_VV;
  vt_put_u64le(msg + 1, 1);
  vt_put_u32le(msg + 9, 0);
  vt_put_u32le(msg + 13, 1);
  vt_put_u64le(msg + 17, 0);
  vt_put_u32le(msg + 25, 2);
  for (int k = 0; k < 2; k++) {
    memcpy(msg + VS_MSG_VV_HEADER_BYTES + k * 48, e[k].origin, VS_ORIGIN_BYTES);
    vt_put_u64le(msg + VS_MSG_VV_HEADER_BYTES + k * 48 + 32, e[k].seq);
  }
  flen = fake_seal(&f, msg, VS_MSG_VV_HEADER_BYTES + 96, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_ERR_MALFORMED);
  msg[0] = VS_MSG_OPS;
  vt_put_u32le(msg + 1, 0);
  flen = fake_seal(&f, msg, 5, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_ERR_MALFORMED);
  expect_refused(t->nodes[0], &s0, "rejected_malformed", 2, "bad VV / empty OPS");
  expect_legit_sync(t, "bad-messages");
  bench_free(t);
}

/* Send one run as the fake; returns what the node said. */
static vs_err fake_send_run(bench *t, fake *f, const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t *sig,
                            const encop *ops, uint32_t count) {
  uint8_t msg[8192], frame[8192];
  size_t mlen = ops_msg(origin, sig, ops, count, msg, sizeof msg);
  size_t flen = fake_seal(f, msg, mlen, frame, sizeof frame);
  return vt_node_on_frame(t->nodes[0], f->handle, frame, flen, t->now_ms);
}

/* A refused run arrives in a valid frame: the frame is not refused, the
 * run is; the contract leaves the return value open, so both are allowed
 * but must agree with the counters. */
static void run_refused(bench *t, fake *f, const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t *sig,
                        const encop *ops, uint32_t count, const char *field, const char *what) {
  snap s0;
  snap_take(t->nodes[0], &s0);
  vs_err err = fake_send_run(t, f, origin, sig, ops, count);
  if (err != VS_OK && err != VS_ERR_CHAIN && err != VS_ERR_MALFORMED && err != VS_ERR_FORK && err != VS_ERR_AUTH)
    fail_msg("%s: unexpected %s", what, vs_err_name(err));
  expect_only(t->nodes[0], &s0, field, 1, what);
  if (strcmp(field, "runs_fork") != 0) snap_same_store(t->nodes[0], &s0);
}

typedef struct grab {
  const uint8_t *origin;
  uint64_t lo;
  encop *out;
} grab;

static vs_err grab_cb(const vs_wal_record *rec, void *ctx) {
  grab *g = ctx;
  if (memcmp(rec->op.origin, g->origin, VS_ORIGIN_BYTES) != 0) return VS_OK;
  if (rec->op.seq < g->lo || rec->op.seq > g->lo + 1) return VS_OK;
  encop *e = &g->out[rec->op.seq - g->lo];
  size_t len = 0;
  vs_err err = vs_op_encode(&rec->op, e->enc, sizeof e->enc, &len);
  e->len = (uint32_t)len;
  e->seq = rec->op.seq;
  memcpy(e->hash, rec->op_hash, VS_HASH_BYTES);
  return err;
}

/* The last two ops of `origin` in `store` and the signature at the last. */
static void grab_ops(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], encop out[2],
                     uint8_t sig[VS_SIGNATURE_BYTES]) {
  uint64_t last = 0;
  assert_err(vs_wal_head(store, origin, &last, NULL, NULL), VS_OK);
  assert_true(last >= 2);
  vs_op_id id;
  vs_op_id_derive(origin, last, &id);
  assert_err(vs_apply_sig_get(store, &id, sig), VS_OK);
  memset(out, 0, 2 * sizeof *out);
  grab g = {origin, last - 1, out};
  assert_err(vs_wal_replay(store, 1, grab_cb, &g), VS_OK);
  assert_int_equal(out[0].seq, last - 1);
  assert_int_equal(out[1].seq, last);
}

static void test_node_rejects_bad_runs(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  chain c;
  chain_init(&c, &f.id);
  encop ops[4];
  for (int k = 0; k < 3; k++) chain_op(&c, f.id.pk, "incr", "fake-n", "1", &ops[k]);
  uint8_t sig[VS_SIGNATURE_BYTES];

  /* A gap: seq 3 (or 2..3) while the node holds nothing of this origin. */
  sign_last(&f.id, &ops[2], sig);
  run_refused(t, &f, f.id.pk, sig, &ops[2], 1, "runs_gap", "seq gap");
  run_refused(t, &f, f.id.pk, sig, &ops[1], 2, "runs_gap", "seq gap of one");
  /* A forged signature: one bit, or the right shape by another key. */
  uint8_t bad[VS_SIGNATURE_BYTES];
  memcpy(bad, sig, sizeof bad);
  bad[5] ^= 0x10;
  run_refused(t, &f, f.id.pk, bad, ops, 3, "runs_forged", "flipped signature");
  vs_chain_sign(&t->ids[1], ops[2].seq, ops[2].hash, bad);
  run_refused(t, &f, f.id.pk, bad, ops, 3, "runs_forged", "signed by another key");
  /* The genuine run is applied, and relayed to B. */
  snap s0;
  snap_take(t->nodes[0], &s0);
  assert_err(fake_send_run(t, &f, f.id.pk, sig, ops, 3), VS_OK);
  expect_only(t->nodes[0], &s0, "none", 0, "genuine run");
  snap s1;
  snap_take(t->nodes[0], &s1);
  assert_int_equal(s1.lsn, s0.lsn + 3);

  /* An op claiming another origin (B's), signed by the fake, at B's next seq. */
  uint64_t b_seq = 0, b_hlc = 0;
  uint8_t b_head[VS_HASH_BYTES];
  assert_err(vs_wal_head(vs_node_store(t->nodes[0]), t->ids[1].pk, &b_seq, b_head, &b_hlc), VS_OK);
  assert_true(b_seq >= 1);
  chain cb;
  chain_init(&cb, &f.id);
  cb.seq = b_seq;
  cb.hlc = b_hlc;
  memcpy(cb.head, b_head, sizeof b_head);
  encop claim;
  chain_op(&cb, t->ids[1].pk, "put", "b", "stolen", &claim);
  sign_last(&f.id, &claim, sig); /* the fake's key, over B's chain */
  run_refused(t, &f, t->ids[1].pk, sig, &claim, 1, "runs_forged", "op claiming another origin");

  /* An op claiming B's origin at a seq the node holds: still a forgery
   * (unsigned by B), never evidence of a fork by B. */
  chain_init(&cb, &f.id);
  chain_op(&cb, t->ids[1].pk, "put", "b", "stolen", &claim);
  sign_last(&f.id, &claim, sig);
  run_refused(t, &f, t->ids[1].pk, sig, &claim, 1, "runs_forged", "claimed origin at a held seq");

  /* A genuine signed run of B with an earlier op swapped: the signature
   * verifies over the last op, but the swapped one is not covered by it
   * (its successor does not link to it): forged, not a fork of B. */
  vt_node_write_kv(t->nodes[1], t->now_ms, "put", "b2", "x");
  vt_node_write_kv(t->nodes[1], t->now_ms, "put", "b3", "y");
  bench_run(t, 2000);
  encop real[2];
  uint8_t bsig[VS_SIGNATURE_BYTES];
  grab_ops(vs_node_store(t->nodes[1]), t->ids[1].pk, real, bsig);
  snap_take(t->nodes[0], &s0);
  assert_err(fake_send_run(t, &f, t->ids[1].pk, bsig, real, 2), VS_OK); /* the honest relay: duplicates */
  expect_refused(t->nodes[0], &s0, "none", 0, "honest relay of held ops");
  encop swapped[2];
  memcpy(swapped, real, sizeof real);
  {
    vs_op op;
    assert_err(vs_op_decode(real[0].enc, real[0].len, &op), VS_OK);
    op.payload = (const uint8_t *)"evil";
    op.payload_bytes = 4;
    size_t len = 0;
    assert_err(vs_op_encode(&op, swapped[0].enc, sizeof swapped[0].enc, &len), VS_OK);
    swapped[0].len = (uint32_t)len;
    vs_op_hash_encoded(swapped[0].enc, len, swapped[0].hash);
  }
  run_refused(t, &f, t->ids[1].pk, bsig, swapped, 2, "runs_forged", "swapped op under a genuine signature");
  expect_legit_sync(t, "bad-runs");
  bench_free(t);
}

/* A fork reaches a node: the run that proves it (a copied identity's other
 * seq 1) makes node 0 void the origin from seq 1 on, refold its state to
 * what it was before, and tell node 1, which does the same. Either branch
 * is refused afterwards as void; honest writes still sync. */
static void test_node_fork_voids_the_origin_everywhere(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  /* Two writers with one identity (a copied data directory). */
  vs_identity twin;
  vt_identity_from_byte(0x91, &twin);
  chain c1, c2;
  chain_init(&c1, &twin);
  chain_init(&c2, &twin);
  encop o1, o2;
  chain_op(&c1, twin.pk, "put", "fk", "first", &o1);
  chain_op(&c2, twin.pk, "put", "fk", "second", &o2);
  uint8_t s1[VS_SIGNATURE_BYTES], s2[VS_SIGNATURE_BYTES];
  sign_last(&twin, &o1, s1);
  sign_last(&twin, &o2, s2);
  bench_run(t, 1000);
  snap s0, b0;
  snap_take(t->nodes[0], &s0);
  snap_take(t->nodes[1], &b0);
  assert_memory_equal(s0.hash, b0.hash, VS_HASH_BYTES);
  assert_err(fake_send_run(t, &f, twin.pk, s1, &o1, 1), VS_OK);
  bench_run(t, 1000);
  snap a1, b1;
  snap_take(t->nodes[0], &a1);
  snap_take(t->nodes[1], &b1);
  assert_int_equal(a1.lsn, s0.lsn + 1);
  assert_memory_equal(a1.hash, b1.hash, VS_HASH_BYTES); /* node 1 has "first" too */
  (void)fake_send_run(t, &f, twin.pk, s2, &o2, 1);
  snap a2;
  snap_take(t->nodes[0], &a2);
  assert_int_equal(a2.st.runs_fork, a1.st.runs_fork + 1);
  assert_int_equal(a2.st.fork_verdicts, a1.st.fork_verdicts + 1);
  assert_memory_equal(a2.hash, s0.hash, VS_HASH_BYTES); /* refolded: as before "first" */
  assert_int_equal(a2.forks, 1);
  vs_fork fk;
  uint64_t nf = 0;
  assert_err(vs_apply_forks(vs_node_store(t->nodes[0]), &fk, 1, &nf), VS_OK);
  assert_int_equal(nf, 1);
  assert_memory_equal(fk.origin, twin.pk, VS_ORIGIN_BYTES);
  assert_int_equal(fk.seq, 1);
  /* Node 1 held "first" and never saw "second": the evidence travels. */
  bench_run(t, 2000);
  snap b2;
  snap_take(t->nodes[1], &b2);
  assert_int_equal(b2.forks, 1);
  assert_int_equal(b2.st.fork_verdicts, b1.st.fork_verdicts + 1);
  assert_memory_equal(b2.hash, s0.hash, VS_HASH_BYTES);
  /* Either branch again: void, counted, nothing changes. */
  snap a3;
  snap_take(t->nodes[0], &a3);
  (void)fake_send_run(t, &f, twin.pk, s1, &o1, 1);
  (void)fake_send_run(t, &f, twin.pk, s2, &o2, 1);
  expect_refused(t->nodes[0], &a3, "runs_void", 2, "void runs");
  expect_legit_sync(t, "fork");
  vs_identity_wipe(&twin);
  bench_free(t);
}

/* A member forges fork evidence against an honest origin (node 1's): two
 * "branches" it signed itself. Node 0 checks it, voids nothing, counts it
 * and closes the session (VS_ERR_AUTH: the proofs do not verify under
 * node 1's key); an honest FORK for nothing new is ignored. */
static void test_node_forged_fork_evidence_closes_the_session(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  chain c1, c2;
  chain_init(&c1, &f.id); /* signed by the fake, claimed as node 1's */
  chain_init(&c2, &f.id);
  encop o1, o2;
  chain_op(&c1, t->ids[1].pk, "put", "b", "lie-1", &o1);
  chain_op(&c2, t->ids[1].pk, "put", "b", "lie-2", &o2);
  uint8_t s1[VS_SIGNATURE_BYTES], s2[VS_SIGNATURE_BYTES];
  sign_last(&f.id, &o1, s1);
  sign_last(&f.id, &o2, s2);
  const uint8_t *e1[1] = {o1.enc}, *e2[1] = {o2.enc};
  uint32_t l1[1] = {o1.len}, l2[1] = {o2.len};
  vs_fork_proof pr[2] = {{s1, 1, e1, l1, NULL}, {s2, 1, e2, l2, NULL}};
  uint8_t msg[2048], frame[4096];
  size_t mlen = 0;
  assert_err(vs_msg_fork_encode(t->ids[1].pk, 1, pr, msg, sizeof msg, &mlen), VS_OK);
  snap s0;
  snap_take(t->nodes[0], &s0);
  size_t flen = fake_seal(&f, msg, mlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_ERR_AUTH);
  expect_refused(t->nodes[0], &s0, "fork_evidence_bad", 1, "forged evidence");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, f.handle, true), 1);
  expect_legit_sync(t, "forged-fork");
  bench_free(t);
}

/* One equivocating member lowers its verdict one seq at a time, each a
 * refold of the state (review of issue 14): a node takes at most
 * VS_NODE_VERDICTS_PER_MIN verdicts a minute and defers the rest (counted);
 * as the runs come again, it still reaches the lowest, seq 1. */
static void test_node_verdict_lowerings_are_rate_limited(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  vs_identity twin;
  vt_identity_from_byte(0x95, &twin);
  enum { K = 12 };
  chain c, before[K];
  chain_init(&c, &twin);
  encop ops[K], alt[K];
  uint8_t sig[VS_SIGNATURE_BYTES], asig[K][VS_SIGNATURE_BYTES];
  for (uint32_t k = 0; k < K; k++) {
    before[k] = c;
    chain_op(&c, twin.pk, "put", "v", "x", &ops[k]);
  }
  sign_last(&twin, &ops[K - 1], sig);
  snap pre;
  snap_take(t->nodes[0], &pre);
  assert_err(fake_send_run(t, &f, twin.pk, sig, ops, K), VS_OK);
  for (uint32_t k = 0; k < K; k++) { /* another op at seq k + 1, on the same prev */
    chain b = before[k];
    chain_op(&b, twin.pk, "put", "v", "y", &alt[k]);
    sign_last(&twin, &alt[k], asig[k]);
  }
  snap s0;
  snap_take(t->nodes[0], &s0);
  for (uint32_t round = 0; round < 3; round++) {
    for (uint32_t k = K; k-- > 0;) (void)fake_send_run(t, &f, twin.pk, asig[k], &alt[k], 1);
    if (round == 0) {
      snap s1;
      snap_take(t->nodes[0], &s1);
      assert_int_equal(s1.st.fork_verdicts - s0.st.fork_verdicts, VS_NODE_VERDICTS_PER_MIN);
      assert_int_equal(s1.st.fork_verdicts_deferred - s0.st.fork_verdicts_deferred, K - VS_NODE_VERDICTS_PER_MIN);
    }
    bench_run(t, 60000);
  }
  uint64_t vf = 0;
  assert_err(vs_apply_void_from(vs_node_store(t->nodes[0]), twin.pk, &vf), VS_OK);
  assert_int_equal(vf, 1);
  assert_err(vs_apply_void_from(vs_node_store(t->nodes[1]), twin.pk, &vf), VS_OK);
  assert_int_equal(vf, 1);
  snap a, b;
  snap_take(t->nodes[0], &a);
  snap_take(t->nodes[1], &b);
  assert_memory_equal(a.hash, pre.hash, VS_HASH_BYTES); /* nothing of the twin counts */
  assert_memory_equal(b.hash, a.hash, VS_HASH_BYTES);
  vs_identity_wipe(&twin);
  bench_free(t);
}

/* Apply a twin's run straight to node i's store (before it opens again). */
static void store_run(bench *t, uint32_t i, const encop *ops, uint32_t count, const uint8_t *sig) {
  vs_op op[16];
  assert_true(count <= 16);
  for (uint32_t k = 0; k < count; k++) assert_err(vs_op_decode(ops[k].enc, ops[k].len, &op[k]), VS_OK);
  vs_apply_result r;
  assert_err(vs_apply_run(vs_node_store(t->nodes[i]), op, count, sig, t->now_ms, VS_MAX_DRIFT_MS_DEFAULT, &r), VS_OK);
  assert_int_equal(r.applied, count);
}

/* Two nodes hold different branches of one twin that part deep inside:
 * X's branches are as long (equal seqs, different heads in the vectors),
 * Y's are not (the longer one's next run does not link). Neither run
 * ever shows the split point by itself: the nodes find it by asking each
 * other (WANT, bisection), take the same verdicts and converge. */
static void test_node_fork_found_by_bisection(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vs_identity tw[2];
  vt_identity_from_byte(0x93, &tw[0]);
  vt_identity_from_byte(0x94, &tw[1]);
  const uint32_t len[2][2] = {{12, 12}, {14, 9}}; /* ops per branch, per twin */
  for (uint32_t x = 0; x < 2; x++) {
    chain c;
    chain_init(&c, &tw[x]);
    encop pre[5];
    uint8_t sig[VS_SIGNATURE_BYTES];
    for (uint32_t k = 0; k < 5; k++) chain_op(&c, tw[x].pk, "put", "p", k % 2 ? "1" : "2", &pre[k]);
    sign_last(&tw[x], &pre[4], sig);
    for (uint32_t i = 0; i < 2; i++) store_run(t, i, pre, 5, sig);
    for (uint32_t i = 0; i < 2; i++) { /* branch i on node i, from seq 6, one signed run per op */
      chain b = c;
      for (uint32_t k = 5; k < len[x][i]; k++) {
        encop o;
        char val[16];
        snprintf(val, sizeof val, "n%u-%u", i, k);
        chain_op(&b, tw[x].pk, "put", k % 3 ? "q" : "r", val, &o);
        sign_last(&tw[x], &o, sig);
        store_run(t, i, &o, 1, sig);
      }
    }
  }
  for (uint32_t i = 0; i < 2; i++) { /* the nodes read their vectors at open */
    vs_node_close(t->nodes[i]);
    bench_open(t, i);
  }
  bench_connect(t, 0, 1);
  bench_run(t, 60000);
  snap a, b;
  snap_take(t->nodes[0], &a);
  snap_take(t->nodes[1], &b);
  assert_int_equal(a.forks, 2);
  assert_int_equal(b.forks, 2);
  for (uint32_t x = 0; x < 2; x++) {
    uint64_t va = 0, vb = 0;
    assert_err(vs_apply_void_from(vs_node_store(t->nodes[0]), tw[x].pk, &va), VS_OK);
    assert_err(vs_apply_void_from(vs_node_store(t->nodes[1]), tw[x].pk, &vb), VS_OK);
    assert_int_equal(va, 6);
    assert_int_equal(vb, 6);
  }
  assert_memory_equal(a.hash, b.hash, VS_HASH_BYTES);
  assert_string_equal(a.vv.text, b.vv.text);
  assert_true(a.st.wants_sent + b.st.wants_sent > 0);
  assert_true(a.st.wants_served + b.st.wants_served > 0);
  assert_int_equal(a.st.rejected_vv_regress + b.st.rejected_vv_regress, 0);
  assert_int_equal(a.st.fork_evidence_bad + b.st.fork_evidence_bad, 0);
  vs_identity_wipe(&tw[0]);
  vs_identity_wipe(&tw[1]);
  bench_free(t);
}

static void test_node_rejects_replayed_transcript(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* f's HELLO and AUTH of a completed handshake */
  vs_node_stats st0;
  /* Replayed on a new connection from another address: HELLO passes (it
   * only proves the mesh key) and gets a COOKIE: no REPLY, so no identity
   * and no X25519 or signature spent; the captured HELLO2 carries a cookie
   * of the first connection's address and is refused; the node closes.
   * (Before the cookie round, the replayed HELLO got a REPLY.) */
  const uint32_t h = FAKE_HANDLE + 30;
  static const uint8_t ATTACKER[6] = {192, 0, 2, 66, 0x30, 0x39};
  assert_err(vs_node_peer_up_addr(t->nodes[0], h, false, ATTACKER, sizeof ATTACKER, t->now_ms), VS_OK);
  snap s0;
  snap_take(t->nodes[0], &s0);
  vs_node_stats_get(t->nodes[0], &st0);
  assert_err(vt_node_on_frame(t->nodes[0], h, f.hello, sizeof f.hello, t->now_ms), VS_OK);
  bench_pump(t);
  {
    uint8_t got[VS_HS_FRAME_BYTES_MAX];
    size_t got_len = 0;
    bool got_close = true;
    assert_true(cap_take(t, 0, h, &got_close, got, sizeof got, &got_len));
    assert_false(got_close);
    assert_int_equal(got_len, VS_COOKIE_FRAME_BYTES);
    assert_int_equal(got[1], VS_FRAME_COOKIE);
    assert_int_equal(caps_count(t, 0, h, false), 0); /* nothing else: no REPLY */
  }
  vs_node_stats st_c;
  vs_node_stats_get(t->nodes[0], &st_c);
  assert_int_equal(st_c.cookies_sent, st0.cookies_sent + 1);
  assert_err(vt_node_on_frame(t->nodes[0], h, f.auth, sizeof f.auth, t->now_ms), VS_ERR_STATE);
  expect_refused(t->nodes[0], &s0, "rejected_state", 1, "replayed AUTH before HELLO2");
  snap_take(t->nodes[0], &s0);
  assert_err(vt_node_on_frame(t->nodes[0], h, f.hello2, sizeof f.hello2, t->now_ms), VS_ERR_AUTH);
  expect_refused(t->nodes[0], &s0, "rejected_auth", 1, "replayed HELLO2");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, h, true), 1);
  vs_node_stats st1;
  vs_node_stats_get(t->nodes[0], &st1);
  assert_int_equal(st1.handshakes_done, st0.handshakes_done);
  assert_int_equal(vs_node_peers_ready(t->nodes[0]), 2); /* B and f */

  /* A REPLY captured from one connection, replayed to the node's next dial. */
  fake r;
  fake_init(&r, FAKE_HANDLE + 31, 0x7a);
  assert_err(vs_node_peer_up(t->nodes[0], r.handle, true, t->now_ms), VS_OK);
  bench_pump(t);
  uint8_t hello[VS_HELLO_BYTES], reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
  size_t len = 0;
  bool close = false;
  assert_true(cap_take(t, 0, r.handle, &close, hello, sizeof hello, &len));
  len = fake_respond(t, 0, &r, hello, len, reply, sizeof reply);
  assert_err(vt_node_on_frame(t->nodes[0], r.handle, reply, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, r.handle, &close, auth, sizeof auth, &len));
  const uint32_t h2 = FAKE_HANDLE + 32;
  assert_err(vs_node_peer_up(t->nodes[0], h2, true, t->now_ms), VS_OK);
  bench_pump(t);
  snap_take(t->nodes[0], &s0);
  vs_node_stats_get(t->nodes[0], &st0);
  assert_err(vt_node_on_frame(t->nodes[0], h2, reply, sizeof reply, t->now_ms), VS_ERR_AUTH);
  expect_refused(t->nodes[0], &s0, "rejected_auth", 1, "replayed REPLY");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, h2, true), 1);
  assert_int_equal(caps_count(t, 0, h2, false), 1); /* its HELLO, and no AUTH */
  vs_node_stats_get(t->nodes[0], &st1);
  assert_int_equal(st1.handshakes_done, st0.handshakes_done);
  caps_clear(t);
  expect_legit_sync(t, "replayed-transcript");
  bench_free(t);
}

/* ---- vectors that claim our own ops beyond our head (issue 14, item 6) ---- */

/* The fake tells node 0 its vector: one entry, `origin` at `seq`. */
static void fake_send_vv1(bench *t, fake *f, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  vs_vv_entry e;
  memcpy(e.origin, origin, VS_ORIGIN_BYTES);
  e.seq = seq;
  uint8_t msg[128], frame[256];
  size_t len = 0;
  static uint64_t vector = 1000; /* each vector a fake sends has a higher number */
  vs_vv_part part = {++vector, 0, 1, 0};
  assert_err(vs_msg_vv_encode(&part, &e, 1, msg, sizeof msg, &len), VS_OK);
  size_t flen = fake_seal(f, msg, len, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f->handle, frame, flen, t->now_ms), VS_OK);
}

/* The fake sends node 0 a run of `c`'s next ops (the chain's identity
 * signs), `count` of them. */
static void fake_send_chain(bench *t, fake *f, chain *c, uint32_t count) {
  encop ops[8];
  assert_true(count <= 8);
  for (uint32_t k = 0; k < count; k++) chain_op(c, c->id.pk, "put", "restored", "v", &ops[k]);
  uint8_t sig[VS_SIGNATURE_BYTES], msg[8192], frame[8192 + VS_DATA_OVERHEAD_BYTES];
  sign_last(&c->id, &ops[count - 1], sig);
  size_t len = ops_msg(c->id.pk, sig, ops, count, msg, sizeof msg);
  size_t flen = fake_seal(f, msg, len, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f->handle, frame, flen, t->now_ms), VS_OK);
}

static uint64_t restoring(bench *t) {
  uint64_t to = 99;
  assert_err(vs_write_restoring(vs_node_store(t->nodes[0]), &to), VS_OK);
  return to;
}

/* A vector claiming our own seq is 2^48-1 (the review's attack: it marked
 * the outbox done past our head, then froze completion until a restart).
 * Now nothing is delivered beyond our head, the claim must be backed by our
 * signed ops, and the liar's session is closed; later writes complete. */
static void test_node_vector_beyond_own_head_is_refused(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  bench_disconnect(t, 0, 1);
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "before-lie", "1");
  fake_send_vv1(t, &f, t->ids[0].pk, VS_OP_SEQ_MAX);
  bench_pump(t);
  assert_int_equal(restoring(t), 0); /* a bare claim blocks no write */
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "during-lie", "1");
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 0);
  /* Unbacked past the deadline: closed and counted. */
  bench_run(t, 30000);
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 1);
  bool close = false;
  uint8_t buf[8192];
  size_t len = 0;
  bool closed = false;
  while (cap_take(t, 0, f.handle, &close, buf, sizeof buf, &len)) closed = closed || close;
  assert_true(closed);
  assert_int_equal(restoring(t), 0);
  /* Completion is not frozen: B comes back, later writes reach DONE. */
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "after-lie", "1");
  bench_run(t, 5000);
  vs_outbox_counts c;
  vt_node_outbox_counts(t->nodes[0], &c);
  assert_int_equal(c.pending, 0);
  assert_int_equal(c.inflight, 0);
  assert_int_equal(c.done, 4); /* a, before-lie, during-lie, after-lie */
  expect_legit_sync(t, "vv-future");
  bench_free(t);
}

/* A restored copy of node 0 (its store lacks seqs its other self signed):
 * a peer holding them claims them and sends them back; until node 0 holds
 * what is claimed, local writes fail (no seq is ever signed twice); then it
 * writes on from the real head. A claim the peer does not back closes its
 * session; the marker then clears once a ready peer has claimed nothing
 * beyond our head for a while. */
static void test_node_restored_copy_takes_its_ops_back(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* node 0 wrote seq 1 */
  bench_disconnect(t, 0, 1);
  chain other; /* the other self: same identity, ops 2.. */
  chain_init(&other, &t->ids[0]);
  uint64_t hlc = 0;
  assert_err(vs_wal_head(vs_node_store(t->nodes[0]), t->ids[0].pk, &other.seq, other.head, &hlc), VS_OK);
  assert_int_equal(other.seq, 1);
  other.hlc = hlc;
  fake_send_vv1(t, &f, t->ids[0].pk, 7);
  bench_pump(t);
  assert_int_equal(restoring(t), 0);
  fake_send_chain(t, &f, &other, 2); /* 2..3: proof that we are a restored copy */
  bench_pump(t);
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.own_ops_restored, 2);
  assert_int_equal(restoring(t), 7);
  vs_write_req req = {"put", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL, 0};
  vs_write_result res;
  assert_err(vs_node_write(t->nodes[0], &req, t->now_ms, &res), VS_ERR_RESTORING);
  assert_err(vs_write(vs_node_store(t->nodes[0]), t->ids[0].pk, &req, t->now_ms, &res), VS_ERR_RESTORING);
  fake_send_chain(t, &f, &other, 2); /* 4..5 */
  bench_pump(t);
  assert_int_equal(restoring(t), 7);
  assert_err(vs_node_write(t->nodes[0], &req, t->now_ms, &res), VS_ERR_RESTORING);
  /* 6..7 never come: the claim is not backed in time, the session closes. */
  bench_run(t, 30000);
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 1);
  assert_int_equal(restoring(t), 7); /* no ready peer has said otherwise yet */
  assert_err(vs_node_write(t->nodes[0], &req, t->now_ms, &res), VS_ERR_RESTORING);
  bench_connect(t, 0, 1); /* B holds nothing of ours past 5 */
  bench_run(t, 30000);
  assert_int_equal(restoring(t), 0);
  assert_err(vs_node_write(t->nodes[0], &req, t->now_ms, &res), VS_OK);
  assert_int_equal(res.seq, 6); /* on from the real head */
  expect_legit_sync(t, "restored");
  bench_free(t);
}

/* The honest case end to end in the bench: node 0's own chain went to 6,
 * a copy of its store from seq 2 comes back; B holds 1..6 and gives them
 * back; the next write is seq 7 and the two converge. */
static void test_node_restored_copy_catches_up_from_peer(void **state) {
  (void)state;
  bench *t = bench_new(2);
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "x", "1");
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "x", "2");
  bench_run(t, 2000);
  /* The backup: a copy of node 0's directory now. */
  char backup[256], cmd[700];
  vt_tmpdir(backup, sizeof backup, "nsec-bak");
  bench_disconnect(t, 0, 1);
  vs_node_close(t->nodes[0]);
  snprintf(cmd, sizeof cmd, "cp -a '%s/.' '%s/'", t->dirs[0], backup);
  assert_int_equal(system(cmd), 0);
  bench_open(t, 0);
  bench_connect(t, 0, 1);
  for (int k = 3; k <= 6; k++) {
    char v[8];
    snprintf(v, sizeof v, "%d", k);
    vt_node_write_kv(t->nodes[0], t->now_ms, "put", "x", v);
  }
  bench_run(t, 2000);
  /* Node 0 is lost; its backup comes back in its place. */
  bench_disconnect(t, 0, 1);
  vs_node_close(t->nodes[0]);
  vt_rmrf(t->dirs[0]);
  snprintf(t->dirs[0], sizeof t->dirs[0], "%s", backup);
  bench_open(t, 0);
  uint64_t seq = 0;
  assert_err(vs_wal_head(vs_node_store(t->nodes[0]), t->ids[0].pk, &seq, NULL, NULL), VS_OK);
  assert_int_equal(seq, 2);
  bench_connect(t, 0, 1);
  bench_run(t, 5000);
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.own_ops_restored, 4);
  assert_int_equal(st.rejected_vv_future, 0);
  assert_int_equal(restoring(t), 0);
  vs_write_result res;
  vs_write_req req = {"put", (const uint8_t *)"x", 1, (const uint8_t *)"7", 1, NULL, 0};
  assert_err(vs_node_write(t->nodes[0], &req, t->now_ms, &res), VS_OK);
  assert_int_equal(res.seq, 7);
  expect_legit_sync(t, "backup");
  bench_free(t);
}

/* How many CLOSE outputs were captured. */
static uint32_t caps_count_closes(const bench *t) {
  uint32_t closes = 0;
  for (uint32_t k = 0; k < t->ncaps; k++) closes += t->caps[k].close ? 1u : 0u;
  return closes;
}

/* 64 connections that never finish (silent, garbage, or stuck after HELLO)
 * hold every slot; those without a valid HELLO are closed at the HELLO
 * deadline (1 s), the rest at the handshake deadline (5 s); a real peer
 * gets in. */
static void test_node_handshake_flood_times_out(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "flood", "a");
  vt_node_write_kv(t->nodes[1], t->now_ms, "put", "flood-b", "b");
  uint64_t rng = 99;
  uint32_t opened = 0, no_hello = 0;
  for (uint32_t k = 0; k < VS_NODE_PEERS_MAX + 8; k++) {
    uint32_t h = 1000 + k;
    vs_err err = vs_node_peer_up(t->nodes[0], h, false, t->now_ms);
    if (err == VS_ERR_LIMIT) break;
    assert_err(err, VS_OK);
    opened++;
    if (k % 3 != 2 || k % 6 == 2) no_hello++; /* a HELLO alone proves no key: it gets a COOKIE only */
    if (k % 3 == 1) { /* garbage that is not a handshake step: refused, slot kept */
      uint8_t junk[96];
      vt_sm_fill(&rng, junk, sizeof junk);
      junk[0] = VS_WIRE_VERSION;
      junk[1] = (uint8_t)(VS_FRAME_REPLY + sm_below(&rng, 3)); /* REPLY, AUTH or DATA to a responder */
      assert_true(vt_node_on_frame(t->nodes[0], h, junk, 2 + sm_below(&rng, sizeof junk - 2), t->now_ms) != VS_OK);
    } else if (k % 3 == 2) { /* a valid HELLO (and, every other time, HELLO2), then silence */
      fake g;
      fake_init(&g, h, 0x60);
      uint8_t eph[32];
      size_t len = 0;
      vt_sm_fill(&rng, eph, sizeof eph);
      assert_err(vs_hs_start_initiator(&g.hs, &g.id, g.mesh, eph, g.hello, sizeof g.hello, &len), VS_OK);
      assert_err(vt_node_on_frame(t->nodes[0], h, g.hello, len, t->now_ms), VS_OK);
      if (k % 6 == 5) {
        bool close = false, done = false;
        bench_pump(t);
        assert_true(cap_take(t, 0, h, &close, g.cookie, sizeof g.cookie, &len));
        assert_err(vs_hs_on_frame(&g.hs, g.cookie, len, g.hello2, sizeof g.hello2, &len, &done, &g.sess), VS_OK);
        assert_err(vt_node_on_frame(t->nodes[0], h, g.hello2, len, t->now_ms), VS_OK);
      }
      vs_hs_wipe(&g.hs);
    }
  }
  assert_int_equal(opened, VS_NODE_PEERS_MAX);
  bench_pump(t);
  caps_clear(t);
  /* Locked out until the HELLO deadline. */
  assert_err(vs_node_peer_up(t->nodes[0], 1, false, t->now_ms), VS_ERR_LIMIT);
  vs_node_cfg d;
  vs_node_cfg_default(&d);
  assert_true(d.hello_timeout_ms <= 1000 && d.hello_timeout_ms < d.handshake_timeout_ms);
  assert_true(t->wake[0] <= t->now_ms + d.hello_timeout_ms);
  bench_run(t, d.hello_timeout_ms - 1);
  assert_err(vs_node_peer_up(t->nodes[0], 1, false, t->now_ms), VS_ERR_LIMIT);
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, 0);
  assert_int_equal(t->ncaps, 0);
  /* At the HELLO deadline: every connection without a valid HELLO2. */
  bench_run(t, 1);
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, no_hello);
  assert_int_equal(caps_count_closes(t), no_hello);
  caps_clear(t);
  /* Those that sent a valid HELLO2 keep the whole handshake deadline. */
  bench_run(t, d.handshake_timeout_ms - d.hello_timeout_ms - 1);
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, no_hello);
  assert_int_equal(t->ncaps, 0);
  bench_run(t, 1);
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, VS_NODE_PEERS_MAX);
  uint32_t closes = 0;
  for (uint32_t k = 0; k < t->ncaps; k++) closes += t->caps[k].close ? 1u : 0u;
  assert_int_equal(closes, VS_NODE_PEERS_MAX - no_hello);
  caps_clear(t);
  /* A real peer now connects and syncs. */
  bench_connect(t, 1, 0);
  bench_run(t, 3000);
  snap a, b;
  snap_take(t->nodes[0], &a);
  snap_take(t->nodes[1], &b);
  assert_memory_equal(a.hash, b.hash, VS_HASH_BYTES);
  assert_string_equal(a.vv.text, b.vv.text);
  assert_int_equal(vs_node_peers_ready(t->nodes[0]), 1);
  /* And the flood can come back: the slots are reusable. */
  for (uint32_t k = 0; k < VS_NODE_PEERS_MAX - 1; k++)
    assert_err(vs_node_peer_up(t->nodes[0], 5000 + k, false, t->now_ms), VS_OK);
  assert_err(vs_node_peer_up(t->nodes[0], 6000, false, t->now_ms), VS_ERR_LIMIT);
  bench_free(t);
}

/* node.h: an entry is DONE once ack_quorum DISTINCT peers hold it. One peer
 * that reconnects (into another connection slot) is still one peer. */
static void test_node_quorum_counts_distinct_peers(void **state) {
  (void)state;
  bench *t = bench_new(3);
  t->ack_quorum[0] = 2;
  vs_node_close(t->nodes[0]);
  bench_open(t, 0);
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "q", "1");
  bench_connect(t, 0, 1);
  bench_run(t, 30000);
  vs_outbox_counts c;
  vt_node_outbox_counts(t->nodes[0], &c);
  assert_int_equal(c.done, 0);
  /* B comes back while its old slot is taken by a half-open connection. */
  bench_disconnect(t, 0, 1);
  assert_err(vs_node_peer_up(t->nodes[0], FAKE_HANDLE, false, t->now_ms), VS_OK);
  bench_connect(t, 0, 1);
  bench_run(t, 30000);
  vt_node_outbox_counts(t->nodes[0], &c);
  assert_int_equal(c.done, 0);
  caps_clear(t);
  /* A second peer: now two distinct peers hold it. */
  bench_connect(t, 2, 0);
  bench_run(t, 60000);
  vt_node_outbox_counts(t->nodes[0], &c);
  assert_int_equal(c.done, 1);
  assert_int_equal(c.pending + c.inflight + c.failed, 0);
  caps_clear(t);
  bench_free(t);
}

/* =====================================================================
 * 4. Issue 14: origin floods, vectors in parts, peers that ack nothing
 * ===================================================================== */

#define FLOOD_ORIGINS 5000u /* past VS_WIRE_VV_MAX: a vector of two parts */

/* One OPS message per call: runs of one op each, from fresh identities
 * (seeds from *next on), signed. Returns the message length. */
static size_t flood_msg(uint32_t *next, uint32_t runs, uint8_t *out, size_t max) {
  vs_ops_writer w;
  size_t len = 0;
  assert_err(vs_ops_writer_init(&w, out, max), VS_OK);
  for (uint32_t r = 0; r < runs; r++) {
    uint8_t seed[VS_SEED_BYTES] = {0};
    uint32_t k = (*next)++;
    memcpy(seed, &k, sizeof k);
    seed[31] = 0xf1;
    vs_identity id;
    assert_err(vs_identity_from_seed(seed, &id), VS_OK);
    chain c;
    chain_init(&c, &id);
    encop op;
    chain_op(&c, id.pk, "put", "flood", "x", &op);
    uint8_t sig[VS_SIGNATURE_BYTES];
    sign_last(&id, &op, sig);
    const uint8_t *enc = op.enc;
    assert_err(vs_ops_writer_add_run(&w, id.pk, sig, &enc, &op.len, 1), VS_OK);
  }
  assert_err(vs_ops_writer_finish(&w, &len), VS_OK);
  return len;
}

/* The fake pushes `total` runs of fresh origins to node 0, 500 a message. */
static void flood(bench *t, fake *f, uint32_t total) {
  uint8_t *msg = malloc(VS_MSG_BYTES_MAX), *frame = malloc(VS_FRAME_BYTES_MAX);
  assert_non_null(msg);
  assert_non_null(frame);
  uint32_t next = 0;
  while (next < total) {
    uint32_t runs = total - next < 500 ? total - next : 500;
    size_t mlen = flood_msg(&next, runs, msg, VS_MSG_BYTES_MAX);
    size_t flen = fake_seal(f, msg, mlen, frame, VS_FRAME_BYTES_MAX);
    assert_err(vt_node_on_frame(t->nodes[0], f->handle, frame, flen, t->now_ms), VS_OK);
  }
  free(msg);
  free(frame);
}

/* Runs of origins first..first+total-1 (one op each, fresh identities). */
static void flood_range(bench *t, fake *f, uint32_t first, uint32_t total) {
  uint8_t *msg = malloc(VS_MSG_BYTES_MAX), *frame = malloc(VS_FRAME_BYTES_MAX);
  assert_non_null(msg);
  assert_non_null(frame);
  uint32_t next = first;
  while (next < first + total) {
    uint32_t left = first + total - next, runs = left < 500 ? left : 500;
    size_t mlen = flood_msg(&next, runs, msg, VS_MSG_BYTES_MAX);
    size_t flen = fake_seal(f, msg, mlen, frame, VS_FRAME_BYTES_MAX);
    assert_err(vt_node_on_frame(t->nodes[0], f->handle, frame, flen, t->now_ms), VS_OK);
  }
  free(msg);
  free(frame);
}

static uint64_t vv_count(vs_node *node) {
  vv_buf b;
  assert_err(vv_text(vs_node_store(node), &b), VS_OK);
  uint64_t n = 0;
  for (size_t i = 0; i < b.len; i++) n += b.text[i] == ';' ? 1u : 0u;
  return n; /* vv_text truncates past 4 KiB of text: only for small vectors */
}

static vs_err count_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  (void)origin;
  (void)seq;
  (*(uint64_t *)ctx)++;
  return VS_OK;
}

static uint64_t origins_held(vs_node *node) {
  uint64_t n = 0;
  assert_err(vs_vv_each(vs_node_store(node), count_cb, &n), VS_OK);
  return n;
}

/* Default quota: 64 new origins, the rest refused before anything of them
 * is stored, and counted; a minute later 64 more get in. */
static void test_node_origin_flood_is_refused_past_the_quota(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint64_t held0 = origins_held(t->nodes[0]);
  assert_int_equal(vv_count(t->nodes[0]), held0);
  snap s0;
  snap_take(t->nodes[0], &s0);
  flood(t, &f, FLOOD_ORIGINS);
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.rejected_origin_quota - s0.st.rejected_origin_quota, FLOOD_ORIGINS - 64);
  assert_int_equal(st.runs_applied - s0.st.runs_applied, 64);
  assert_int_equal(origins_held(t->nodes[0]), held0 + 64);
  /* Refused runs stored nothing: the WAL grew by exactly the 64 accepted. */
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(vs_node_store(t->nodes[0]), &lsn), VS_OK);
  assert_int_equal(lsn, s0.lsn + 64);
  /* The same flood again: the 64 held are duplicates, no token left. */
  t->now_ms += 1000; /* about one token */
  flood(t, &f, FLOOD_ORIGINS);
  vs_node_stats_get(t->nodes[0], &st);
  assert_true(origins_held(t->nodes[0]) <= held0 + 64 + 2);
  /* A minute refills the bucket: 64 more, no more. */
  t->now_ms += 60000;
  uint64_t before = origins_held(t->nodes[0]);
  flood(t, &f, FLOOD_ORIGINS);
  assert_int_equal(origins_held(t->nodes[0]), before + 64);
  /* The honest peer still syncs both ways; the origins node 0 took in
   * reach it under its own quota of node 0 (64 a minute): minutes. */
  bench_run(t, 4u * 60u * 1000u);
  assert_int_equal(origins_held(t->nodes[1]), origins_held(t->nodes[0]));
  expect_legit_sync(t, "origin-flood");
  bench_free(t);
}

/* The quota is per identity, and identities cost nothing to a holder of the
 * mesh key (the review's bypass: handshake as a fresh identity, spend its
 * bucket, repeat). A node-wide bucket of 4x the per-peer quota bounds the
 * sum: eight fresh identities of 100 new origins each get 256 in, not 512. */
static void test_node_origin_quota_bounds_fresh_identities_together(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint64_t held0 = origins_held(t->nodes[0]);
  vs_node_stats s0, st;
  vs_node_stats_get(t->nodes[0], &s0);
  fake g[8];
  for (uint32_t k = 0; k < 8; k++) { /* all dial first: their greetings are small vectors */
    fake_init(&g[k], FAKE_HANDLE + 40 + k, (uint8_t)(0x90 + k));
    fake_dial(t, &g[k], 0);
    caps_clear(t);
  }
  for (uint32_t k = 0; k < 8; k++) flood_range(t, &g[k], 10000 + 100 * k, 100);
  caps_clear(t);
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(origins_held(t->nodes[0]), held0 + 4 * 64);
  assert_int_equal(st.rejected_origin_quota - s0.rejected_origin_quota, 800 - 4 * 64);
  /* A minute refills the node-wide bucket too: one more peer's worth from
   * the last identity, whose own bucket is full again. */
  t->now_ms += 60000;
  flood_range(t, &g[7], 20000, 100);
  caps_clear(t);
  assert_int_equal(origins_held(t->nodes[0]), held0 + 4 * 64 + 64);
  bench_free(t);
}

/* ---- findings of the review of the hardening work ---- */

/* Rotation is lazy: after a quiet spell the old secret must not live on as
 * the previous one. A HELLO2 captured at t0, replayed from the same address
 * three periods later, is refused (it got a REPLY when the stale secret was
 * kept as the previous one). */
static void test_node_cookie_secret_dies_after_a_quiet_spell(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* f's HELLO2 carries a cookie of this node's current secret */
  t->now_ms += 3u * VS_NODE_COOKIE_ROTATE_MS;
  const uint32_t h = FAKE_HANDLE + 70;
  assert_err(vs_node_peer_up(t->nodes[0], h, false, t->now_ms), VS_OK); /* same (empty) address */
  snap s0;
  snap_take(t->nodes[0], &s0);
  assert_err(vt_node_on_frame(t->nodes[0], h, f.hello2, sizeof f.hello2, t->now_ms), VS_ERR_AUTH);
  expect_refused(t->nodes[0], &s0, "rejected_auth", 1, "stale HELLO2");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, h, false), 0); /* no REPLY */
  caps_clear(t);
  bench_free(t);
}

/* The cookie round costs a round trip: a HELLO that arrives late in its
 * HELLO period earns one more period for its HELLO2. */
static void test_node_cookie_round_gets_one_more_hello_period(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vs_node_cfg d;
  vs_node_cfg_default(&d);
  fake g;
  fake_init(&g, FAKE_HANDLE + 71, 0x61);
  assert_err(vs_node_peer_up(t->nodes[0], g.handle, false, t->now_ms), VS_OK);
  t->now_ms += d.hello_timeout_ms - 100;
  uint8_t eph[32];
  size_t len = 0;
  bool close = false, done = false;
  vt_sm_fill(&t->rng, eph, sizeof eph);
  assert_err(vs_hs_start_initiator(&g.hs, &g.id, g.mesh, eph, g.hello, sizeof g.hello, &len), VS_OK);
  assert_err(vt_node_on_frame(t->nodes[0], g.handle, g.hello, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, g.cookie, sizeof g.cookie, &len));
  assert_false(close);
  t->now_ms += d.hello_timeout_ms - 100; /* past the first period, within the second */
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, g.handle, true), 0);
  assert_err(vs_hs_on_frame(&g.hs, g.cookie, len, g.hello2, sizeof g.hello2, &len, &done, &g.sess), VS_OK);
  assert_err(vt_node_on_frame(t->nodes[0], g.handle, g.hello2, len, t->now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, g.reply, sizeof g.reply, &len));
  assert_false(close);
  assert_int_equal(len, VS_REPLY_BYTES);
  vs_hs_wipe(&g.hs);
  caps_clear(t);
  bench_free(t);
}

/* A peer that claims our own ops beyond our head cannot stay forever by
 * trickling ops of its own origin: only our own ops renew its deadline. */
static void test_node_claim_deadline_renewed_only_by_own_ops(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  bench_disconnect(t, 0, 1);
  chain mine; /* the liar's own origin */
  chain_init(&mine, &f.id);
  fake_send_vv1(t, &f, t->ids[0].pk, VS_OP_SEQ_MAX);
  bool closed = false;
  for (int k = 0; k < 12 && !closed; k++) { /* a run of its own every 2 s for 24 s */
    fake_send_chain(t, &f, &mine, 1);
    bench_run(t, 2000);
    bool close = false;
    uint8_t buf[8192];
    size_t len = 0;
    while (cap_take(t, 0, f.handle, &close, buf, sizeof buf, &len)) closed = closed || close;
  }
  assert_true(closed);
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 1);
  assert_int_equal(restoring(t), 0);
  bench_free(t);
}

/* Decode one captured VV part (sealed by node `i` for the fake). */
static bool fake_take_vv(bench *t, fake *f, uint32_t i, vs_vv_part *part, uint32_t *count) {
  bool close = false;
  size_t len = 0, msg_len = 0;
  uint8_t *buf = malloc(VS_FRAME_BYTES_MAX), *msg = malloc(VS_FRAME_BYTES_MAX);
  vs_vv_entry *e = malloc(sizeof *e * VS_WIRE_VV_MAX);
  assert_non_null(buf);
  assert_non_null(msg);
  assert_non_null(e);
  bool got = false;
  while (!got && cap_take(t, i, f->handle, &close, buf, VS_FRAME_BYTES_MAX, &len)) {
    assert_false(close);
    assert_err(vs_session_open(&f->sess, buf, len, msg, VS_FRAME_BYTES_MAX, &msg_len), VS_OK);
    if (msg[0] != VS_MSG_VV) continue;
    assert_err(vs_msg_vv_decode(msg, msg_len, part, e, VS_WIRE_VV_MAX, count), VS_OK);
    got = true;
  }
  free(buf);
  free(msg);
  free(e);
  return got;
}

/* Quota raised so the store accepts all 5,000 origins: the store opens
 * again (before issue 14 a store past 4,096 origins failed every open with
 * VS_ERR_LIMIT), its vector travels in two parts, and a peer converges. */
static void test_node_thousands_of_origins_reopen_and_converge(void **state) {
  (void)state;
  fake f;
  bench *t = bench_new(2);
  for (uint32_t i = 0; i < 2; i++) {
    t->origin_quota[i] = 100000;
    vs_node_close(t->nodes[i]);
    bench_open(t, i);
  }
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "a", "1");
  fake_init(&f, FAKE_HANDLE, 0x77);
  fake_dial(t, &f, 0);
  caps_clear(t);
  flood(t, &f, FLOOD_ORIGINS);
  vs_node_stats st;
  vs_node_stats_get(t->nodes[0], &st);
  assert_int_equal(st.rejected_origin_quota, 0);
  assert_int_equal(origins_held(t->nodes[0]), FLOOD_ORIGINS + 1);
  /* Its acknowledgement to the fake is one vector in two parts. */
  caps_clear(t);
  bench_pump(t);
  vs_vv_part part;
  uint32_t count = 0, total = 0;
  assert_true(fake_take_vv(t, &f, 0, &part, &count));
  assert_int_equal(part.part, 0);
  assert_int_equal(part.parts, 2);
  total += count;
  uint64_t vector = part.vector;
  assert_true(fake_take_vv(t, &f, 0, &part, &count));
  assert_int_equal(part.part, 1);
  assert_int_equal(part.vector, vector);
  total += count;
  assert_int_equal(total, FLOOD_ORIGINS + 1);
  caps_clear(t);
  /* Restart: the store opens (it failed with VS_ERR_LIMIT before). */
  (void)vs_node_peer_down(t->nodes[0], f.handle, t->now_ms);
  vs_node_close(t->nodes[0]);
  bench_open(t, 0);
  assert_int_equal(origins_held(t->nodes[0]), FLOOD_ORIGINS + 1);
  /* An honest peer gets all of it and both vectors, of two parts each,
   * settle: equal vectors, and then nothing but periodic vectors flows. */
  bench_connect(t, 0, 1);
  bench_run(t, 20000);
  assert_int_equal(origins_held(t->nodes[1]), FLOOD_ORIGINS + 1);
  uint8_t h0[VS_HASH_BYTES], h1[VS_HASH_BYTES];
  assert_err(vs_state_hash(vs_node_store(t->nodes[0]), h0), VS_OK);
  assert_err(vs_state_hash(vs_node_store(t->nodes[1]), h1), VS_OK);
  assert_memory_equal(h0, h1, VS_HASH_BYTES);
  vs_node_stats a0, a1;
  vs_node_stats_get(t->nodes[0], &a0);
  bench_run(t, 60000);
  vs_node_stats_get(t->nodes[0], &a1);
  assert_int_equal(a1.runs_sent, a0.runs_sent); /* acknowledged in parts: nothing resent */
  assert_int_equal(a1.resends, a0.resends);
  expect_legit_sync(t, "after-flood");
  bench_free(t);
}

/* The fake after its handshake: every frame node 0 sends it is counted; in
 * `answer` mode each batch of frames is answered with an empty vector (a
 * new vector number each time), else it stays silent. Runs `ms` of virtual
 * time. Returns the bytes node 0 sent it. */
static uint64_t fake_sink(bench *t, fake *f, uint64_t ms, bool answer, uint64_t *vector, bool *closed) {
  uint64_t end = t->now_ms + ms, bytes = 0;
  uint8_t vv[VS_MSG_VV_HEADER_BYTES], frame[256];
  for (uint32_t step = 0; step < 1000000; step++) {
    bench_pump(t);
    uint32_t frames = 0;
    for (uint32_t k = 0; k < t->ncaps; k++) {
      if (t->caps[k].handle != f->handle) continue;
      if (t->caps[k].close) *closed = true;
      bytes += t->caps[k].len;
      frames++;
    }
    caps_clear(t);
    if (answer && frames > 0 && !*closed) {
      size_t vlen = 0;
      vs_vv_part part = {++*vector, 0, 1, 0};
      assert_err(vs_msg_vv_encode(&part, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
      size_t flen = fake_seal(f, vv, vlen, frame, sizeof frame);
      assert_err(vt_node_on_frame(t->nodes[0], f->handle, frame, flen, t->now_ms), VS_OK);
      continue; /* answered at this instant: pump again */
    }
    uint64_t wake = t->wake[0];
    if (wake >= end) break;
    t->now_ms = wake > t->now_ms ? wake : t->now_ms + 1;
  }
  t->now_ms = end;
  return bytes;
}

/* The resends the backoff allows within `ms` of the first push: waits of
 * resend_ms, 2x, 4x ... capped at resend_max_ms. */
static uint64_t resends_allowed(const vs_node_cfg *d, uint64_t ms) {
  uint64_t at = 0, wait = d->resend_ms, n = 0;
  for (; n < 100000; n++) {
    at += wait;
    if (at > ms) break;
    wait = wait * 2 < d->resend_max_ms ? wait * 2 : d->resend_max_ms;
  }
  return n;
}

/* 4 MiB of our own ops, a 256 KiB window and peers that, for ten minutes of
 * virtual time, acknowledge nothing or answer every frame with an empty
 * vector: each gets at most (window + one message) per backed-off resend.
 * Before issue 14 the empty answers reset the window and such a peer
 * pulled the whole store every resend_ms. */
static void test_node_peer_acking_nothing_gets_window_per_backoff(void **state) {
  (void)state;
  for (int answer = 0; answer < 2; answer++) {
    bench *t = bench_new(1);
    t->inflight_max[0] = 256u * 1024u;
    vs_node_close(t->nodes[0]);
    bench_open(t, 0);
    static uint8_t value[1024];
    memset(value, 'v', sizeof value);
    vs_write_req *reqs = calloc(4096, sizeof *reqs);
    assert_non_null(reqs);
    char (*keys)[16] = calloc(4096, 16);
    assert_non_null(keys);
    for (uint32_t k = 0; k < 4096; k++) {
      snprintf(keys[k], 16, "k%u", k);
      reqs[k] = (vs_write_req){"put", (const uint8_t *)keys[k], (uint32_t)strlen(keys[k]), value, sizeof value,
                               NULL, 0};
    }
    assert_err(vs_node_write_batch(t->nodes[0], reqs, 4096, t->now_ms, NULL), VS_OK);
    free(reqs);
    free(keys);
    fake f;
    fake_init(&f, FAKE_HANDLE, 0x77);
    fake_dial(t, &f, 0);
    uint64_t vector = 0;
    bool closed = false;
    if (!answer) { /* one empty vector, then silence */
      uint8_t vv[VS_MSG_VV_HEADER_BYTES], frame[256];
      size_t vlen = 0;
      vs_vv_part part = {++vector, 0, 1, 0};
      assert_err(vs_msg_vv_encode(&part, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
      size_t flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
      assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);
    }
    const uint64_t ms = 10u * 60u * 1000u;
    uint64_t bytes = fake_sink(t, &f, ms, answer != 0, &vector, &closed);
    assert_false(closed);
    vs_node_cfg d;
    vs_node_cfg_default(&d);
    uint64_t allowed = resends_allowed(&d, ms);
    vs_node_stats st;
    vs_node_stats_get(t->nodes[0], &st);
    uint64_t window = t->inflight_max[0] + VS_FRAME_BYTES_MAX;
    /* Vectors: one a second at most, each well under 64 bytes here. */
    uint64_t vv_bytes = (ms / 1000 + 1 + vector) * 64u;
    print_message("  %s: %" PRIu64 " bytes in %" PRIu64 " s, %" PRIu64 " resends (backoff allows %" PRIu64
                  ", bound %" PRIu64 " bytes)\n",
                  answer ? "empty-vector answers" : "silent", bytes, ms / 1000, st.resends, allowed,
                  window * (1 + allowed) + vv_bytes);
    assert_true(st.resends <= allowed);
    assert_true(bytes <= window * (1 + allowed) + vv_bytes);
    assert_true(bytes >= t->inflight_max[0]); /* it did get the window */
    bench_free(t);
  }
}

/* A vector that falls within a session closes it (rejected_vv_regress); an
 * older vector arriving late (reordered) is ignored, not a fall; a part out
 * of order is dropped without harm. */
static void test_node_vector_going_backwards_closes_the_session(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  for (int k = 0; k < 5; k++) vt_node_write_kv(t->nodes[0], t->now_ms, "put", "x", "1");
  bench_run(t, 100);
  caps_clear(t);
  uint64_t own = 0;
  assert_err(vs_wal_head(vs_node_store(t->nodes[0]), t->ids[0].pk, &own, NULL, NULL), VS_OK);
  assert_true(own >= 5);
  vs_vv_entry e = {{0}, own, {0}};
  memcpy(e.origin, t->ids[0].pk, VS_ORIGIN_BYTES);
  uint8_t vv[VS_MSG_VV_HEADER_BYTES + 48], frame[256];
  size_t vlen = 0, flen = 0;
  snap s0;
  snap_take(t->nodes[0], &s0);
  /* Vector 3 holds all of node 0's ops; vector 2 (empty) arrives late. */
  assert_err(vs_msg_vv_encode(&(vs_vv_part){3, 0, 1, 0}, &e, 1, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);
  assert_err(vs_msg_vv_encode(&(vs_vv_part){2, 0, 1, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);
  /* Part 1 of a vector whose part 0 never came: dropped, no harm. */
  assert_err(vs_msg_vv_encode(&(vs_vv_part){5, 1, 2, 0}, &e, 1, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);
  expect_only(t->nodes[0], &s0, "none", 0, "late vector, lone part");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  /* Vector 6, empty: node 0's entry fell from `own` to 0. A fork verdict
   * node 0 has not had yet could explain it: the old entry stands for a
   * claim grace, then, no verdict having come, the session closes. */
  assert_err(vs_msg_vv_encode(&(vs_vv_part){6, 0, 1, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_OK);
  expect_only(t->nodes[0], &s0, "none", 0, "falling vector, within the grace");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  bench_run(t, 30000);
  expect_refused(t->nodes[0], &s0, "rejected_vv_regress", 1, "falling vector");
  assert_int_equal(caps_count(t, 0, f.handle, true), 1);
  /* Closed: its frames are for an unknown connection now. */
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->nodes[0], f.handle, frame, flen, t->now_ms), VS_ERR_NOTFOUND);
  expect_legit_sync(t, "vv-regress");
  bench_free(t);
}

/* ---- fork evidence under attack (an adversarial review of issue 14 item 5) ---- */

/* Twelve verdicts, each leaving an op only its evidence vouches for (the
 * zero signature): a new session gets every verdict before any run, so the
 * honest peer never counts one as forged, and ends on the same verdicts
 * and state (at VS_NODE_VERDICTS_PER_MIN). */
static void test_node_vouched_runs_follow_their_evidence(void **state) {
  (void)state;
  enum { TWINS = 12 };
  bench *t = bench_new(2);
  vs_store *s0 = vs_node_store(t->nodes[0]);
  for (uint32_t k = 0; k < TWINS; k++) {
    vs_identity tw;
    vt_identity_from_byte((uint8_t)(0xA0 + k), &tw);
    chain a;
    chain_init(&a, &tw);
    encop o1, o2a, o2b;
    chain_op(&a, tw.pk, "put", "z", "1", &o1);
    chain b = a;
    chain_op(&a, tw.pk, "put", "z", "A", &o2a);
    chain_op(&b, tw.pk, "put", "z", "B", &o2b);
    uint8_t sa[VS_SIGNATURE_BYTES], sb[VS_SIGNATURE_BYTES];
    sign_last(&tw, &o2a, sa); /* signed only at 2: op 1 gets the zero signature */
    sign_last(&tw, &o2b, sb);
    encop run_a[2] = {o1, o2a};
    store_run(t, 0, run_a, 2, sa);
    vs_op op;
    assert_err(vs_op_decode(o2b.enc, o2b.len, &op), VS_OK);
    vs_apply_result r;
    assert_err(vs_apply_run(s0, &op, 1, sb, t->now_ms, VS_MAX_DRIFT_MS_DEFAULT, &r), VS_ERR_FORK);
    assert_true(r.verdict);
    vs_identity_wipe(&tw);
  }
  vs_node_close(t->nodes[0]);
  bench_open(t, 0);
  bench_connect(t, 0, 1);
  bench_run(t, 150000); /* 12 verdicts at VS_NODE_VERDICTS_PER_MIN */
  snap a, b;
  snap_take(t->nodes[0], &a);
  snap_take(t->nodes[1], &b);
  print_message("node1: forks=%llu runs_forged=%llu runs_void=%llu rejected_vv_regress=%llu\n",
                (unsigned long long)b.forks, (unsigned long long)b.st.runs_forged,
                (unsigned long long)b.st.runs_void, (unsigned long long)b.st.rejected_vv_regress);
  assert_int_equal(b.forks, TWINS);
  assert_memory_equal(a.hash, b.hash, VS_HASH_BYTES);
  /* An honest peer's frames are never rejected as forged (DESIGN.md, simulator checks). */
  assert_int_equal(b.st.runs_forged, 0);
  bench_free(t);
}

/* Bytes node frames sent to `handle` so far (captured), then forgotten. */
static uint64_t drain_bytes(bench *t, uint32_t handle) {
  uint64_t sum = 0;
  for (uint32_t k = 0; k < t->ncaps; k++)
    if (t->caps[k].handle == handle && !t->caps[k].close) sum += t->caps[k].len;
  caps_clear(t);
  return sum;
}

/* A member that acknowledges nothing asks with a WANT every 250 ms (the
 * quota): answers take in-flight credit like pushed runs, so in a minute it
 * gets no more than the window beyond what it gets without asking. */
static void test_node_want_answers_take_inflight_credit(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  static uint8_t big[60 * 1024];
  memset(big, 'x', sizeof big);
  for (uint32_t i = 0; i < 24; i++) { /* ~1.4 MiB of node 0's own ops, each commit signed */
    vs_write_req req = {"put", (const uint8_t *)"big", 3, big, sizeof big, NULL, 0};
    assert_err(vs_node_write(t->nodes[0], &req, t->now_ms, NULL), VS_OK);
  }
  bench_run(t, 2000);
  (void)drain_bytes(t, f.handle);
  /* Baseline: one minute, the fake acknowledges nothing and asks nothing. */
  uint64_t base = 0;
  for (uint32_t s = 0; s < 240; s++) {
    bench_run(t, 250);
    base += drain_bytes(t, f.handle);
  }
  /* The same minute with one WANT every 250 ms (the quota: 240/min). */
  vs_node_stats st0, st1;
  vs_node_stats_get(t->nodes[0], &st0);
  uint64_t with = 0;
  for (uint32_t s = 0; s < 240; s++) {
    uint8_t m[VS_MSG_WANT_BYTES], frame[256];
    size_t len = 0;
    assert_err(vs_msg_want_encode(t->ids[0].pk, 1, m, sizeof m, &len), VS_OK);
    size_t fl = fake_seal(&f, m, len, frame, sizeof frame);
    (void)vt_node_on_frame(t->nodes[0], f.handle, frame, fl, t->now_ms);
    bench_run(t, 250);
    with += drain_bytes(t, f.handle);
  }
  vs_node_stats_get(t->nodes[0], &st1);
  print_message("bytes to a silent peer in 60 s: %llu without WANTs, %llu with 240 WANTs (%llu served); window %u\n",
                (unsigned long long)base, (unsigned long long)with,
                (unsigned long long)(st1.wants_served - st0.wants_served), 4u * 1024u * 1024u);
  /* Issue 14 item 4: a peer gets at most the in-flight window plus backed-off resends. */
  assert_true(with <= base + 4ull * 1024 * 1024);
  bench_free(t);
}

/* A node whose own identity is voided: its writes are refused
 * (VS_ERR_FORKED) and the outbox entries of its void writes are FAILED
 * with the reason, not PENDING forever. */
static void test_node_own_identity_voided_fails_its_outbox(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* node 0 wrote seq 1 ("a") */
  bench_disconnect(t, 0, 1); /* seq 2 is written offline: never acknowledged */
  vt_node_write_kv(t->nodes[0], t->now_ms, "put", "a2", "x");
  bench_run(t, 2000);
  uint64_t head = 0, hlc = 0;
  uint8_t hh[VS_HASH_BYTES];
  assert_err(vs_wal_head(vs_node_store(t->nodes[0]), t->ids[0].pk, &head, hh, &hlc), VS_OK);
  assert_int_equal(head, 2);
  /* A copy of node 0's data directory at seq 1 wrote another seq 2. */
  vs_op_id id1;
  vs_op_id_derive(t->ids[0].pk, 1, &id1);
  chain c;
  chain_init(&c, &t->ids[0]);
  c.seq = 1;
  c.hlc = hlc;
  {
    /* prev of our seq 2 = hash of seq 1: take it from the WAL */
    encop two[2];
    uint8_t sig[VS_SIGNATURE_BYTES];
    grab_ops(vs_node_store(t->nodes[0]), t->ids[0].pk, two, sig);
    memcpy(c.head, two[0].hash, VS_HASH_BYTES);
  }
  encop alt;
  chain_op(&c, t->ids[0].pk, "put", "a2", "copy", &alt);
  uint8_t sig[VS_SIGNATURE_BYTES];
  sign_last(&t->ids[0], &alt, sig);
  (void)fake_send_run(t, &f, t->ids[0].pk, sig, &alt, 1);
  uint64_t vf = 0;
  assert_err(vs_apply_void_from(vs_node_store(t->nodes[0]), t->ids[0].pk, &vf), VS_OK);
  assert_int_equal(vf, 2);
  vs_write_req w = {"put", (const uint8_t *)"after", 5, (const uint8_t *)"v", 1, NULL, 0};
  assert_err(vs_node_write(t->nodes[0], &w, t->now_ms, NULL), VS_ERR_FORKED);
  bench_connect(t, 0, 1);
  bench_run(t, 10 * 60000);
  vs_outbox_counts oc;
  vt_node_outbox_counts(t->nodes[0], &oc);
  print_message("own void: outbox pending=%llu inflight=%llu done=%llu failed=%llu\n", (unsigned long long)oc.pending,
                (unsigned long long)oc.inflight, (unsigned long long)oc.done, (unsigned long long)oc.failed);
  assert_int_equal(oc.pending + oc.inflight, 0);
  assert_int_equal(oc.failed, 1); /* the void write */
  bench_free(t);
}

/* Apply a hand-built run straight to a store, expecting `want`. */
static void apply_enc(vs_store *st, const encop *ops, uint32_t count, const uint8_t *sig, uint64_t now, vs_err want) {
  vs_op op[16];
  for (uint32_t k = 0; k < count; k++) assert_err(vs_op_decode(ops[k].enc, ops[k].len, &op[k]), VS_OK);
  vs_apply_result r;
  assert_err(vs_apply_run(st, op, count, sig, now, VS_MAX_DRIFT_MS_DEFAULT, &r), want);
}

/* Three branches of one origin: X voids from 4 (its head rests on the
 * zero signature), Y holds a branch parting at 2; they find and prove the
 * fork at 2 and end on one verdict and one state. */
static void test_node_lower_fork_found_below_a_vouched_head(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vs_identity e;
  vt_identity_from_byte(0xC3, &e);
  chain a;
  chain_init(&a, &e);
  encop oa[6], ob[3], oc[2];
  chain_op(&a, e.pk, "put", "k", "1", &oa[0]);
  chain after1 = a;
  chain_op(&a, e.pk, "put", "k", "2", &oa[1]);
  chain_op(&a, e.pk, "put", "k", "3", &oa[2]);
  chain after3 = a;
  for (int k = 3; k < 6; k++) chain_op(&a, e.pk, "put", "k", "A", &oa[k]);
  for (int k = 0; k < 3; k++) chain_op(&after3, e.pk, "put", "k", "B", &ob[k]);
  for (int k = 0; k < 2; k++) chain_op(&after1, e.pk, "put", "k", "C", &oc[k]);
  uint8_t sa[64], sb[64], sc[64];
  sign_last(&e, &oa[5], sa);
  sign_last(&e, &ob[2], sb);
  sign_last(&e, &oc[1], sc);
  vs_store *x = vs_node_store(t->nodes[0]), *y = vs_node_store(t->nodes[1]);
  apply_enc(x, oa, 6, sa, t->now_ms, VS_OK);
  encop brun[6] = {oa[0], oa[1], oa[2], ob[0], ob[1], ob[2]};
  apply_enc(x, brun, 6, sb, t->now_ms, VS_ERR_FORK); /* verdict: void from 4 */
  encop crun[3] = {oa[0], oc[0], oc[1]};
  apply_enc(y, crun, 3, sc, t->now_ms, VS_OK); /* Y holds branch C: 1, 2'', 3'' */
  for (uint32_t i = 0; i < 2; i++) {
    vs_node_close(t->nodes[i]);
    bench_open(t, i);
  }
  bench_connect(t, 0, 1);
  bench_run(t, 5 * 60000);
  snap sx, sy;
  snap_take(t->nodes[0], &sx);
  snap_take(t->nodes[1], &sy);
  uint64_t vx = 0, vy = 0;
  assert_err(vs_apply_void_from(vs_node_store(t->nodes[0]), e.pk, &vx), VS_OK);
  assert_err(vs_apply_void_from(vs_node_store(t->nodes[1]), e.pk, &vy), VS_OK);
  print_message("after 5 min: void_from X=%llu Y=%llu, wants_sent %llu+%llu, runs_forged %llu+%llu, vv %s / %s\n",
                (unsigned long long)vx, (unsigned long long)vy, (unsigned long long)sx.st.wants_sent,
                (unsigned long long)sy.st.wants_sent, (unsigned long long)sx.st.runs_forged,
                (unsigned long long)sy.st.runs_forged, sx.vv.text, sy.vv.text);
  assert_int_equal(vx, vy);
  assert_memory_equal(sx.hash, sy.hash, VS_HASH_BYTES);
  vs_identity_wipe(&e);
  bench_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_rejects_other_mesh),
      cmocka_unit_test(test_node_rejects_forged_and_replayed_data),
      cmocka_unit_test(test_node_rejects_data_before_handshake),
      cmocka_unit_test(test_node_rejects_truncated_frames),
      cmocka_unit_test(test_node_rejects_bad_frame_headers),
      cmocka_unit_test(test_node_rejects_bad_messages_in_session),
      cmocka_unit_test(test_node_rejects_bad_runs),
      cmocka_unit_test(test_node_fork_voids_the_origin_everywhere),
      cmocka_unit_test(test_node_forged_fork_evidence_closes_the_session),
      cmocka_unit_test(test_node_fork_found_by_bisection),
      cmocka_unit_test(test_node_verdict_lowerings_are_rate_limited),
      cmocka_unit_test(test_node_vouched_runs_follow_their_evidence),
      cmocka_unit_test(test_node_want_answers_take_inflight_credit),
      cmocka_unit_test(test_node_own_identity_voided_fails_its_outbox),
      cmocka_unit_test(test_node_lower_fork_found_below_a_vouched_head),
      cmocka_unit_test(test_node_rejects_replayed_transcript),
      cmocka_unit_test(test_node_vector_beyond_own_head_is_refused),
      cmocka_unit_test(test_node_restored_copy_takes_its_ops_back),
      cmocka_unit_test(test_node_restored_copy_catches_up_from_peer),
      cmocka_unit_test(test_node_handshake_flood_times_out),
      cmocka_unit_test(test_node_quorum_counts_distinct_peers),
      cmocka_unit_test(test_node_origin_flood_is_refused_past_the_quota),
      cmocka_unit_test(test_node_origin_quota_bounds_fresh_identities_together),
      cmocka_unit_test(test_node_cookie_secret_dies_after_a_quiet_spell),
      cmocka_unit_test(test_node_cookie_round_gets_one_more_hello_period),
      cmocka_unit_test(test_node_claim_deadline_renewed_only_by_own_ops),
      cmocka_unit_test(test_node_thousands_of_origins_reopen_and_converge),
      cmocka_unit_test(test_node_peer_acking_nothing_gets_window_per_backoff),
      cmocka_unit_test(test_node_vector_going_backwards_closes_the_session),
      cmocka_unit_test(test_node_sim_is_deterministic),
      cmocka_unit_test(test_node_converges_under_chaos),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
