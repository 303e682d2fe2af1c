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
 * 2-4. The security table at the node level, the handshake flood and issue
 *    14's floods are in test_node_hostile.c and test_node_attacks.c (unit
 *    tests, seconds each, where this file runs tens of seconds).
 *
 * One seeded PRNG (splitmix64) drives each run, including the nodes' random
 * source; time is virtual. Built twice: test_node_property_prepared delivers
 * every frame through the receive pipeline instead of vs_node_on_frame
 * (tests/prepared.h), and must pass the same assertions. */
#define _XOPEN_SOURCE 700

#include "node_bench.h"

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_sim_is_deterministic),
      cmocka_unit_test(test_node_converges_under_chaos),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
