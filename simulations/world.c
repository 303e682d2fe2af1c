#define _POSIX_C_SOURCE 200809L
/* vix-sim: the nodes and the run.
 *
 * Time. Virtual time is in milliseconds from 0. Node i reads its own clock:
 * T0 + skew_i + v + v * drift_i / 1e6 (both may change during the run:
 * "skew" events make the clock jump, forwards or backwards). A node's wake
 * time is in its own clock and is turned back into virtual time here.
 *
 * Driving. Events at one instant are handled in (time, insertion) order;
 * every node they touched is then polled (vs_node_poll until NONE), in node
 * order. A node that wants to run again at the same instant gets up to
 * SIM_SAME_TIME_ROUNDS more rounds, then waits 1 ms (counted: busy_waits).
 *
 * Crash. The simulator is single-threaded and never holds a node's
 * transaction open between calls, so the crash point is vs_node_close:
 * sessions, queues and every byte of the node's memory are gone, the LMDB
 * environment is closed without a sync (MDB_NOSYNC: what a killed process
 * leaves behind), and the node reopens from its directory alone. A crash in
 * the middle of a commit is the business of tests/test_crash_torture.c.
 *
 * Phases: chaos (faults on) until every client op and scheduled event has
 * happened and chaos-tail more; heal (partitions, cuts, flaps and isolation
 * end, crashed nodes restart, frames are no longer lost, duplicated or held
 * back); quiesce until converged; settle (still converged settle_ms later);
 * then the checks of check.c. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sched.h"
#include "sim.h"

#ifdef VS_FAULT_INJECTION
#include "fault.h"
#endif

bool sim_fail(sim *s, int exit_code, const char *fmt, ...) {
  if (s->failed) return false;
  s->failed = true;
  s->exit_code = exit_code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->why, sizeof s->why, fmt, ap);
  va_end(ap);
  return false;
}

/* One event into the trace: fixed-width little-endian fields, then the
 * bytes (no struct is hashed, so padding never enters it). */
void sim_trace(sim *s, uint8_t type, uint64_t a, uint64_t b, uint64_t c, const uint8_t *bytes, size_t len) {
  uint8_t rec[1 + 5 * 8];
  uint64_t f[5] = {s->now, a, b, c, len};
  rec[0] = type;
  for (int k = 0; k < 5; k++)
    for (int i = 0; i < 8; i++) rec[1 + 8 * k + i] = (uint8_t)(f[k] >> (8 * i));
  crypto_generichash_update(&s->trace, rec, sizeof rec);
  if (len > 0) crypto_generichash_update(&s->trace, bytes, len);
}

/* ---- clocks ---- */

uint64_t sim_local_ms(const sim_node *n, uint64_t v) {
  int64_t d = (int64_t)v * n->drift_ppm / (int64_t)SIM_PPM; /* v < 2^40, |drift| <= 1e5: no overflow */
  int64_t t = (int64_t)SIM_T0_MS + n->skew_ms + (int64_t)v + d;
  return t < 0 ? 0 : (uint64_t)t;
}

/* The first virtual instant >= now at which the node's clock reads >= local.
 * The clock is non-decreasing in v (|drift| < 1e6 ppm): bisect-like steps
 * forwards, then back while the instant before still qualifies. */
static uint64_t virt_of_local(const sim_node *n, uint64_t local, uint64_t now) {
  if (local <= sim_local_ms(n, now)) return now;
  if (local >= (1ull << 62)) return UINT64_MAX; /* nothing real is that far */
  uint64_t v = now;
  for (int k = 0; k < 128; k++) {
    uint64_t l = sim_local_ms(n, v);
    if (l >= local) break;
    uint64_t gap = local - l;
    v += gap > 2 ? gap - gap / 16 : 1; /* drift <= 10%: never overshoots by much */
  }
  for (int k = 0; k < 128 && v > now && sim_local_ms(n, v - 1) >= local; k++) v--;
  return v;
}

/* ---- nodes ---- */

bool sim_twin(const sim *s, uint32_t i) { return s->cfg->equivocate && i < SIM_TWINS; }

uint32_t sim_ref_node(const sim *s) { return s->cfg->equivocate ? SIM_HONEST_REF : s->cfg->managed ? s->mref : 0; }

void sim_mark_dirty(sim *s, uint32_t i) {
  assert(i < s->n);
  sim_node *n = &s->nodes[i];
  if (n->dirty) return;
  assert(s->dirty_n < s->n); /* each node is listed at most once */
  n->dirty = true;
  s->dirty[s->dirty_n++] = i; /* at most n entries: one per node */
}

static void on_apply(void *ctx, const vs_op *op) {
  sim_node *n = ctx;
  sim *s = n->sim;
  n->applied++;
  n->applied_sum += sim_id_hash64(&op->id);
  if (s->cfg->managed && !n->cb_oom) {
    if (n->cb_n == n->cb_cap) {
      size_t cap = n->cb_cap == 0 ? 1024 : n->cb_cap * 2;
      sim_cb *v = realloc(n->cb, sizeof *v * cap);
      n->cb_oom = v == NULL; /* G4 names it (check.c) */
      if (v != NULL) {
        n->cb = v;
        n->cb_cap = cap;
      }
    }
    if (n->cb_n < n->cb_cap) n->cb[n->cb_n++] = (sim_cb){sim_id_hash64(&op->id), op->seq, sim_node_of(s, op->origin)};
  }
  n->last_apply_v = s->now;
  s->last_apply_v = s->now;
  s->tot.applications++;
}

bool sim_node_open(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  vs_node_cfg cfg;
  vs_node_cfg_default(&cfg);
  cfg.dir = n->dir;
  cfg.durability = VS_DURABILITY_NOSYNC;
  cfg.map_bytes = (uint64_t)s->cfg->map_mib << 20;
  cfg.identity = n->id;
  memcpy(cfg.mesh_key, n->base_key, VS_MESH_KEY_BYTES);
  cfg.rekey_grace_ms = s->cfg->rekey_grace_ms;
  cfg.suspend_after_ms = s->cfg->suspend_after_ms; /* the library's default unless --suspend-after */
  if (sim_cfg_compacts(s->cfg)) {
    cfg.compact_every_ms = SIM_COMPACT_EVERY_MS;
    cfg.compact_after_ops = SIM_COMPACT_AFTER_OPS;
  } else {
    cfg.compact_every_ms = 0; /* the node's default compacts (every 60 s): --compact off means off */
  }
  cfg.random = sim_rng_fill;
  cfg.random_ctx = &s->rng;
  cfg.on_apply = on_apply;
  cfg.on_apply_ctx = n;
  cfg.sig_cache = s->sig_cache; /* NULL with --sig-cache 0 */
  /* Every node is an origin: a node may learn all of them from one peer at
   * once (a new or restarted node), so the default quota of a daemon (64 a
   * minute) would only slow a large open mesh down; --origin-quota 0 sizes
   * it from the node count. */
  uint32_t quota = s->cfg->origin_quota;
  if (quota == 0) quota = s->cfg->nodes > 32 ? 2 * s->cfg->nodes : 64;
  cfg.origin_quota_per_min = quota;
  vs_err err = vs_node_open(&cfg, &n->node);
  sodium_memzero(&cfg.identity, sizeof cfg.identity);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: vs_node_open(%s): %s", i, n->dir, vs_err_name(err));
  /* The node's own sink as the node opens it (src/node.c, open_engine):
   * ranges-only, never FAILED. Opened with the defaults, it turned back
   * into a claimed sink at every restart, and a rebase could not tell an
   * own op a peer holds from one none does (docs/storage.md). */
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.retry.max_attempts = 0;
  ocfg.ranges_only = true;
  err = vs_outbox_open(vs_node_store(n->node), &ocfg, &n->ob);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: vs_outbox_open: %s", i, vs_err_name(err));
  n->wake_v = UINT64_MAX;
  n->wake_token++;
  n->rekeys_seen = 0;
  n->compact_seen = 0;
  n->rebases_seen = 0;
  n->late_seen = 0;
  if (s->cfg->managed) (void)vs_store_set_orphan_fn(vs_node_store(n->node), sim_susp_on_orphan, n); /* suspend.c */
  sim_mark_dirty(s, i);
  return true;
}

/* Every counter of x added into acc; the gauges (a level, not a count)
 * take x's: a closed lifetime's are stale, sim_node_stats_total takes the
 * live node's. vs_node_stats is u64 fields only (tests/test_node_pipeline.c
 * asserts it), so this follows every field the library adds. */
static void stats_add(vs_node_stats *acc, const vs_node_stats *x) {
  _Static_assert(sizeof(vs_node_stats) % sizeof(uint64_t) == 0, "vs_node_stats: u64 fields only");
  enum { N = sizeof(vs_node_stats) / sizeof(uint64_t) };
  uint64_t a[N], b[N];
  memcpy(a, acc, sizeof a);
  memcpy(b, x, sizeof b);
  for (size_t i = 0; i < N; i++) a[i] += b[i];
  memcpy(acc, a, sizeof a);
  acc->mesh_epoch = x->mesh_epoch;
  acc->key_epoch = x->key_epoch;
  acc->stable_ops = x->stable_ops;
  acc->stable_behind = x->stable_behind;
  acc->horizon_breaches = x->horizon_breaches;
  acc->members_suspended = x->members_suspended;
  acc->gc_pinned = x->gc_pinned;
  acc->version_seen = x->version_seen;
}

void sim_stats_sum(const sim *s, vs_node_stats *out) {
  memset(out, 0, sizeof *out);
  for (uint32_t i = 0; i < s->n && s->nodes != NULL; i++) { /* bounded: the nodes */
    vs_node_stats st;
    sim_node_stats_total(&s->nodes[i], &st);
    stats_add(out, &st);
  }
}

void sim_node_stats_total(const sim_node *n, vs_node_stats *out) {
  *out = n->past;
  if (n->node != NULL) {
    vs_node_stats now;
    vs_node_stats_get(n->node, &now);
    stats_add(out, &now); /* the gauges: the live node's */
  }
}

bool sim_node_crash(sim *s, uint32_t i, uint64_t down_ms) {
  sim_node *n = &s->nodes[i];
  if (n->node == NULL) return true;
  for (uint32_t k = 0; k < n->nlinks; k++)
    if (s->links[n->links[k]].up && !sim_link_down(s, n->links[k], (int)i, false)) return false;
  vs_node_stats st;
  vs_node_stats_get(n->node, &st);
  stats_add(&n->past, &st);
  vs_outbox_close(n->ob);
  n->ob = NULL;
  vs_node_close(n->node);
  n->node = NULL;
  n->wake_token++;
  n->wake_v = UINT64_MAX;
  n->crashes++;
  s->tot.crashes++;
  sim_trace(s, 'C', i, down_ms, 0, NULL, 0);
  sim_iv_open(s, 'c', i);
  if (down_ms > 0) sim_heap_push(s, s->now + down_ms, EV_RESTART, i, 0, 0, NULL, 0);
  return true;
}

bool sim_node_restart(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (n->node != NULL || n->ms == MS_SPARE) return true; /* a spare starts at its membership event only */
  if (!sim_node_open(s, i)) return false;
  /* G1, seen from outside: whatever of this node's chain a peer holds was
   * committed here before it was sent, so the crash cannot have lost it.
   * Not for a twin: its peers may hold the other twin's longer branch. */
  uint64_t own = 0;
  vs_err err = vs_wal_head(vs_node_store(n->node), n->id.pk, &own, NULL, NULL);
  for (uint32_t j = 0; j < s->n && err == VS_OK && !sim_twin(s, i); j++) {
    uint64_t held = 0;
    if (j == i || s->nodes[j].node == NULL) continue;
    err = vs_wal_head(vs_node_store(s->nodes[j].node), n->id.pk, &held, NULL, NULL);
    if (err == VS_OK && held > own)
      return sim_fail(s, SIM_EXIT_FAIL, "G1: node %u holds op %" PRIu64 " of node %u, whose own store came back from its "
                      "crash with %" PRIu64 " ops", j, held, i, own);
  }
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: chain head: %s", i, vs_err_name(err));
  s->tot.restarts++;
  sim_trace(s, 'R', i, 0, 0, NULL, 0);
  sim_iv_close(s, 'c', i);
  for (uint32_t k = 0; k < n->nlinks; k++) {
    const sim_link *l = &s->links[n->links[k]];
    if (s->nodes[l->a].node != NULL && s->nodes[l->b].node != NULL) sim_link_dial_soon(s, n->links[k]);
  }
  return true;
}

/* The first polling instant at or after v. */
static uint64_t tick_ceil(const sim *s, uint64_t v) {
  uint64_t t = s->cfg->tick_ms;
  return t <= 1 || v % t == 0 ? v : v + (t - v % t);
}

static void schedule_wake(sim *s, uint32_t i, uint64_t wake_local) {
  sim_node *n = &s->nodes[i];
  if (wake_local == UINT64_MAX) return;
  uint64_t v = virt_of_local(n, wake_local, s->now);
  if (v == UINT64_MAX) return;
  assert(v >= s->now && (v == s->now || sim_local_ms(n, v) >= wake_local));
  v = tick_ceil(s, v);
  if (v <= s->now) { /* again at this instant: the next polling round */
    sim_mark_dirty(s, i);
    return;
  }
  if (v >= n->wake_v) return; /* an earlier wake is pending; it reschedules */
  n->wake_v = v;
  n->wake_token++;
  sim_heap_push(s, v, EV_WAKE, i, 0, n->wake_token, NULL, 0);
}

static bool poll_node(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (n->node == NULL) return true;
  uint64_t local = sim_local_ms(n, s->now);
  s->tot.polls++;
  /* Bounded: a node emits at most its queued frames (4096 per peer) plus
   * what one maintenance round produces before it says NONE. */
  for (uint32_t k = 0; k < 1000000u; k++) {
    vs_node_out out;
    uint64_t wake = UINT64_MAX;
    vs_err err = vs_node_poll(n->node, local, &out, &wake);
    if (err == VS_ERR_FULL || err == VS_ERR_STORE || err == VS_ERR_NOMEM)
      return sim_fail(s, SIM_EXIT_STORE, "node %u: poll: %s (raise --map-mib?)", i, vs_err_name(err));
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: poll: %s", i, vs_err_name(err));
    if (out.kind == VS_NODE_OUT_NONE) {
      schedule_wake(s, i, wake);
      return !s->cfg->managed || (sim_mesh_node_rekeys(s, i) && sim_compact_watch(s, i) && sim_susp_watch(s, i));
    }
    int li = sim_link_find_conn(s, i, out.peer);
    if (li < 0) { /* a connection the node was told is gone */
      s->tot.stale_outputs++;
      sim_trace(s, 'o', i, out.peer, out.kind, NULL, 0);
      continue;
    }
    if (out.kind == VS_NODE_OUT_CLOSE) {
      s->tot.closes++;
      sim_trace(s, 'O', i, out.peer, 0, NULL, 0);
      if (!sim_link_down(s, (uint32_t)li, (int)i, true)) return false;
      continue;
    }
    if (out.kind != VS_NODE_OUT_SEND || out.bytes == NULL || out.bytes_len == 0 || out.bytes_len > VS_FRAME_BYTES_MAX)
      return sim_fail(s, SIM_EXIT_FAIL, "node %u: bad output (kind %d, %zu bytes)", i, (int)out.kind, out.bytes_len);
    sim_net_send(s, i, (uint32_t)li, out.peer, out.bytes, out.bytes_len);
    if (s->failed) return false;
  }
  return sim_fail(s, SIM_EXIT_FAIL, "node %u: poll never returned NONE", i);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static bool poll_dirty(sim *s, uint32_t *scratch) {
  for (uint32_t round = 0; round < SIM_SAME_TIME_ROUNDS && s->dirty_n > 0; round++) {
    uint32_t cnt = s->dirty_n;
    memcpy(scratch, s->dirty, sizeof *scratch * cnt);
    s->dirty_n = 0;
    qsort(scratch, cnt, sizeof *scratch, cmp_u32); /* node order, whatever marked them */
    for (uint32_t k = 0; k < cnt; k++) s->nodes[scratch[k]].dirty = false;
    for (uint32_t k = 0; k < cnt; k++)
      if (!poll_node(s, scratch[k])) return false;
  }
  for (uint32_t k = 0; k < s->dirty_n; k++) { /* still busy: at the next polling instant */
    sim_node *n = &s->nodes[s->dirty[k]];
    n->dirty = false;
    s->tot.busy_waits++;
    n->wake_v = tick_ceil(s, s->now + 1);
    n->wake_token++;
    sim_heap_push(s, n->wake_v, EV_WAKE, s->dirty[k], 0, n->wake_token, NULL, 0);
  }
  s->dirty_n = 0;
  return true;
}

/* ---- scheduled events ---- */

static void maybe_end_chaos(sim *s) {
  if (s->phase != PH_CHAOS || s->heal_scheduled) return;
  if (s->ops_issued < s->cfg->ops || s->sched_fired < s->cfg->sched_n || s->chaos_pending > 0) return;
  s->heal_scheduled = true;
  sim_heap_push(s, s->now + s->cfg->tail_after_ms, EV_HEAL, 0, 0, 0, NULL, 0);
}

static int find_link(const sim *s, int64_t a, int64_t b) {
  const sim_node *n = &s->nodes[a];
  for (uint32_t k = 0; k < n->nlinks; k++) {
    const sim_link *l = &s->links[n->links[k]];
    if ((l->a == a && l->b == b) || (l->a == b && l->b == a)) return (int)n->links[k];
  }
  return -1;
}

static void set_isolated(sim *s, uint32_t i, bool on) {
  sim_node *n = &s->nodes[i];
  if (n->isolated == on) return;
  n->isolated = on;
  if (on) {
    s->tot.isolations++;
    sim_iv_open(s, 'i', i);
  } else {
    sim_iv_close(s, 'i', i);
  }
  for (uint32_t k = 0; k < n->nlinks; k++) sim_link_recheck(s, n->links[k]);
}

static bool sched_links(sim *s, const sim_sched_op *op) {
  if (op->a == SCH_ALL) {
    for (uint32_t li = 0; li < s->nlinks; li++) {
      if (op->kind == SCH_FLAP) sim_link_flap(s, li, op->range, s->now);
      else sim_link_unflap(s, li);
    }
    return true;
  }
  int li = find_link(s, op->a, op->b);
  if (li < 0) return sim_fail(s, SIM_EXIT_USAGE, "no link %" PRId64 "-%" PRId64 " in this topology", op->a, op->b);
  sim_link *l = &s->links[li];
  switch (op->kind) {
    case SCH_FLAP: sim_link_flap(s, (uint32_t)li, op->range, s->now); break;
    case SCH_UNFLAP: sim_link_unflap(s, (uint32_t)li); break;
    default: {
      uint8_t bits = op->one_way ? (uint8_t)(op->a == l->a ? 1u : 2u) : 3u;
      if (op->kind == SCH_CUT) l->asym_cut |= bits;
      else l->asym_cut &= (uint8_t)~bits;
      l->asym_ep[0] = l->asym_ep[1] = 0; /* random episodes no longer own these bits */
      sim_link_recheck(s, (uint32_t)li);
    }
  }
  return true;
}

static bool sched_fire(sim *s, uint32_t idx, bool *deferred) {
  const sim_sched *sc = &s->cfg->sched[idx];
  sim_sched_op op;
  char err[160];
  if (!sim_sched_parse(sc->text, s->n, &op, err, sizeof err)) return sim_fail(s, SIM_EXIT_USAGE, "event \"%s\": %s", sc->text, err);
  sim_trace(s, 'E', idx, op.kind, 0, NULL, 0);
  uint32_t node = op.node == SCH_RANDOM ? (uint32_t)sim_rng_below(&s->rng, s->n) : (uint32_t)op.node;
  sim_node *n = &s->nodes[node];
  switch (op.kind) {
    case SCH_PARTITION: {
      uint16_t *g = malloc(sizeof *g * s->n);
      uint32_t count;
      if (g == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
      if (!sim_groups_parse(op.groups, s->n, g, &count, err, sizeof err)) {
        free(g);
        return sim_fail(s, SIM_EXIT_USAGE, "event \"%s\": %s", sc->text, err);
      }
      s->part_episode = 0;
      sim_partition_set(s, g);
      return true;
    }
    case SCH_PARTITION_RANDOM: {
      uint16_t *g = sim_random_split(s);
      if (g == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
      s->part_episode = 0;
      sim_partition_set(s, g);
      return true;
    }
    case SCH_UNPARTITION: sim_partition_set(s, NULL); return true;
    case SCH_CRASH: return sim_node_crash(s, node, op.down_ms);
    case SCH_RESTART: return sim_node_restart(s, node);
    case SCH_ISOLATE: set_isolated(s, node, true); return true;
    case SCH_REJOIN: set_isolated(s, node, false); return true;
    case SCH_CUT:
    case SCH_UNCUT:
    case SCH_FLAP:
    case SCH_UNFLAP: return sched_links(s, &op);
    case SCH_SKEW:
      n->skew_ms = op.value;
      sim_mark_dirty(s, node);
      return true;
    case SCH_DRIFT: {
      /* Re-base the offset so the clock changes rate here, without a jump. */
      int64_t v = (int64_t)s->now;
      n->skew_ms += v * n->drift_ppm / (int64_t)SIM_PPM - v * op.value / (int64_t)SIM_PPM;
      n->drift_ppm = (int32_t)op.value;
      sim_mark_dirty(s, node);
      return true;
    }
    case SCH_REVOKE:
    case SCH_INVITE_JOIN:
    case SCH_EXPIRED_JOIN:
    case SCH_DOUBLE_JOIN:
    case SCH_OUTSIDER: return sim_mesh_event(s, &op, deferred);
    case SCH_ROLLING:
      for (uint32_t i = 0; i < s->n; i++) {
        s->chaos_pending++;
        uint64_t down = op.range.hi > UINT32_MAX ? UINT32_MAX : op.range.hi;
        sim_heap_push(s, s->now + (uint64_t)i * op.range.lo, EV_CRASH, i, 1, (uint32_t)down, NULL, 0);
      }
      return true;
  }
  return true;
}

/* ---- phases ---- */

static bool heal(sim *s) {
  s->phase = PH_QUIESCE;
  s->faults = false;
  s->heal_at = s->now;
  s->rekeys_at_heal = s->tot.rekeys;
  sim_trace(s, 'H', 0, 0, 0, NULL, 0);
  if (s->verbose_out != NULL)
    fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: heal (%" PRIu64 " ops issued)\n", s->now, s->ops_issued);
  if (s->part_group != NULL) sim_partition_set(s, NULL);
  for (uint32_t i = 0; i < s->n; i++) set_isolated(s, i, false);
  for (uint32_t li = 0; li < s->nlinks; li++) {
    sim_link *l = &s->links[li];
    l->asym_cut = 0;
    l->flapping = false;
    l->flap_gen++;
    l->flap_down = false;
    l->redial_fail = 0;
    l->dialing = false; /* pending dials with long backoff are stale now */
    l->dial_gen++;
  }
  for (uint32_t i = 0; i < s->n; i++)
    if (s->nodes[i].node == NULL && !sim_node_restart(s, i)) return false; /* not a spare never started */
  if (s->cfg->managed && !sim_mesh_heal_links(s)) return false;
  for (uint32_t li = 0; li < s->nlinks; li++) {
    sim_link_recheck(s, li);
    sim_link_dial_soon(s, li);
  }
  sim_heap_push(s, s->now + s->cfg->check_every_ms, EV_CHECK, 0, 0, 0, NULL, 0);
  return true;
}

static bool check_event(sim *s) {
  bool quiet = false;
  char why[512] = "";
  if (!sim_quiet(s, &quiet, why, sizeof why)) return false;
  sim_trace(s, 'K', quiet, 0, 0, NULL, 0);
  if (s->phase == PH_QUIESCE) {
    if (quiet) {
      s->converged_at = s->now;
      s->settle_bytes0 = s->tot.bytes_sent; /* the steady state's traffic is measured from here */
      s->phase = PH_SETTLE;
      if (s->verbose_out != NULL) fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: converged\n", s->now);
      sim_heap_push(s, s->now + s->cfg->settle_ms, EV_CHECK, 0, 0, 0, NULL, 0);
      return true;
    }
    if (s->now - s->heal_at >= s->cfg->quiesce_max_ms)
      return sim_fail(s, SIM_EXIT_FAIL, "not converged %" PRIu64 " ms after healing: %s", s->now - s->heal_at, why);
    sim_heap_push(s, s->now + s->cfg->check_every_ms, EV_CHECK, 0, 0, 0, NULL, 0);
    return true;
  }
  if (!quiet)
    return sim_fail(s, SIM_EXIT_FAIL, "converged at t=%" PRIu64 " ms, no longer at t=%" PRIu64 " ms: %s", s->converged_at,
                    s->now, why);
  s->phase = PH_DONE;
  s->settle_bytes = s->tot.bytes_sent - s->settle_bytes0;
  return true;
}

static void sample(sim *s) {
  if (s->samples_n == s->samples_cap) { /* full: keep every other sample, halve the rate */
    size_t keep = 0;
    for (size_t k = 0; k < s->samples_n; k += 2, keep++) {
      s->sample_t[keep] = s->sample_t[k];
      memmove(&s->samples[keep * 2 * s->n], &s->samples[k * 2 * s->n], sizeof *s->samples * 2 * s->n);
    }
    s->samples_n = keep;
    s->sample_every *= 2;
  }
  uint32_t *row = &s->samples[s->samples_n * 2 * s->n];
  for (uint32_t i = 0; i < s->n; i++) {
    const sim_node *n = &s->nodes[i];
    row[i] = (uint32_t)(n->applied > UINT32_MAX ? UINT32_MAX : n->applied);
    vs_outbox_counts c = {0, 0, 0, 0};
    if (n->ob == NULL || vs_outbox_counts_get(n->ob, &c) != VS_OK) row[s->n + i] = UINT32_MAX; /* down */
    else row[s->n + i] = (uint32_t)(c.pending + c.inflight);
  }
  s->sample_t[s->samples_n++] = s->now;
  if (s->phase != PH_DONE) sim_heap_push(s, s->now + s->sample_every, EV_SAMPLE, 0, 0, 0, NULL, 0);
}

static bool handle(sim *s, const sim_ev *e) {
  s->tot.events++;
  switch (e->kind) {
    case EV_WAKE: {
      sim_node *n = &s->nodes[e->a];
      if (e->c != n->wake_token || n->node == NULL) return true; /* superseded */
      n->wake_v = UINT64_MAX;
      s->tot.wakes++;
      sim_mark_dirty(s, e->a);
      return true;
    }
    case EV_CLIENT_OP: {
      if (s->phase != PH_CHAOS) return true;
      bool ok = sim_client_op(s);
      maybe_end_chaos(s);
      return ok;
    }
    case EV_CRASH: {
      if (e->b == 1) s->chaos_pending--;
      bool ok = !s->faults || sim_node_crash(s, e->a, e->c);
      maybe_end_chaos(s);
      return ok;
    }
    case EV_RESTART: return sim_node_restart(s, e->a);
    case EV_SCHED: {
      bool deferred = false;
      bool ok = s->phase != PH_CHAOS || sched_fire(s, e->a, &deferred);
      if (deferred && e->c < SIM_MESH_DEFER_MAX) { /* its admin cannot yet: again in 100 ms */
        sim_heap_push(s, s->now + 100, EV_SCHED, e->a, 0, e->c + 1, NULL, 0);
      } else {
        if (deferred) { /* given up: the spare never starts, the device stays a member */
          s->tot.mesh_dropped++;
          sim_trace(s, 'X', e->a, 0, 0, NULL, 0);
        }
        s->sched_fired++;
      }
      maybe_end_chaos(s);
      return ok;
    }
    case EV_HEAL: return heal(s);
    case EV_CHECK: return check_event(s);
    case EV_SAMPLE: sample(s); return true;
    case EV_TICK:
      if (s->tick_at == e->t) s->tick_at = 0;
      return true;
    case EV_DIAL:
      if (e->c != s->links[e->a].dial_gen) return true;
      return sim_net_event(s, e);
    default: return sim_net_event(s, e);
  }
}

/* ---- setup and the run ---- */

static bool make_dirs(sim *s) {
  const char *base = s->cfg->dir_base;
  if (base == NULL || base[0] == '\0') base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  int w = snprintf(s->root, sizeof s->root, "%s/vix-sim-XXXXXX", base);
  if (w < 0 || (size_t)w >= sizeof s->root - 16 || mkdtemp(s->root) == NULL) {
    int e = errno;
    s->root[0] = '\0';
    return sim_fail(s, SIM_EXIT_STORE, "cannot make a temporary directory under %s: %s", base, strerror(e));
  }
  for (uint32_t i = 0; i < s->n; i++) {
    int len = snprintf(s->nodes[i].dir, sizeof s->nodes[i].dir, "%.480s/n%04u", s->root, i);
    if (len < 0 || (size_t)len >= sizeof s->nodes[i].dir) return sim_fail(s, SIM_EXIT_STORE, "directory name too long");
    if (mkdir(s->nodes[i].dir, 0700) != 0)
      return sim_fail(s, SIM_EXIT_STORE, "mkdir %s: %s", s->nodes[i].dir, strerror(errno));
  }
  return true;
}

static bool setup(sim *s) {
  const sim_cfg *c = s->cfg;
  s->nodes = calloc(s->n, sizeof *s->nodes);
  s->dirty = malloc(sizeof *s->dirty * s->n);
  if (s->nodes == NULL || s->dirty == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory for %u nodes", s->n);
  if (!make_dirs(s)) return false;
  if (c->sig_cache > 0) {
    s->sig_cache = vs_sig_cache_new(c->sig_cache);
    if (s->sig_cache == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory for a signature cache of %u entries", c->sig_cache);
  }
  sim_rng_fill(&s->rng, s->mesh_key, sizeof s->mesh_key);
  for (uint32_t i = 0; i < s->n; i++) {
    sim_node *n = &s->nodes[i];
    n->idx = i;
    n->sim = s;
    n->wake_v = UINT64_MAX;
    memcpy(n->base_key, s->mesh_key, VS_MESH_KEY_BYTES);
    uint8_t seed[VS_SEED_BYTES];
    sim_rng_fill(&s->rng, seed, sizeof seed);
    vs_err err = vs_identity_from_seed(seed, &n->id);
    sodium_memzero(seed, sizeof seed);
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "identity: %s", vs_err_name(err));
    n->skew_ms = c->skew_ms > 0 ? (int64_t)sim_rng_below(&s->rng, 2 * c->skew_ms + 1) - (int64_t)c->skew_ms : 0;
    n->drift_ppm = c->drift_ppm > 0 ? (int32_t)sim_rng_below(&s->rng, 2ull * c->drift_ppm + 1) - (int32_t)c->drift_ppm : 0;
    sim_trace(s, 'n', i, (uint64_t)n->skew_ms, (uint64_t)(int64_t)n->drift_ppm, n->id.pk, VS_ORIGIN_BYTES);
  }
  if (c->equivocate) {
    /* A copied data directory, made before either device wrote: node 1 signs
     * as node 0. Drawn as usual first, so the PRNG sequence (skews, drifts,
     * everything after) is the same as without --equivocate. */
    assert(s->n > SIM_HONEST_REF);
    vs_identity_wipe(&s->nodes[1].id);
    s->nodes[1].id = s->nodes[0].id;
    sim_trace(s, 'T', 0, 1, 0, s->nodes[1].id.pk, VS_ORIGIN_BYTES);
  }
  for (uint32_t i = 0; i < s->n; i++) {
    if (c->managed && i >= s->n - c->spare) {
      s->nodes[i].ms = MS_SPARE; /* a device that does not exist yet */
      continue;
    }
    if (c->managed && c->equivocate && i == 1) continue; /* node 0's clone, made by sim_mesh_setup */
    if (!sim_node_open(s, i)) return false;
  }
  if (c->managed && !sim_mesh_setup(s)) return false;
  if (!sim_net_build(s) || !sim_workload_init(s)) return false;
  uint64_t chaos_ms = c->ops * c->op_gap_ms, last_sched = 0;
  for (uint32_t k = 0; k < c->sched_n; k++) {
    if (c->sched[k].at_ms > last_sched) last_sched = c->sched[k].at_ms;
    sim_heap_push(s, c->sched[k].at_ms, EV_SCHED, k, 0, 0, NULL, 0);
  }
  if (last_sched > chaos_ms) chaos_ms = last_sched;
  sim_net_schedule_faults(s, chaos_ms);
  if (s->sampling) {
    s->samples_cap = 512;
    s->samples = malloc(sizeof *s->samples * s->samples_cap * 2 * s->n);
    s->sample_t = malloc(sizeof *s->sample_t * s->samples_cap);
    if (s->samples == NULL || s->sample_t == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory for the report");
    s->sample_every = chaos_ms / 256 > 10 ? chaos_ms / 256 : 10;
    sim_heap_push(s, 0, EV_SAMPLE, 0, 0, 0, NULL, 0);
  }
  s->faults = true;
  maybe_end_chaos(s);
  return !s->failed;
}

static double wall_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int sim_run(const sim_cfg *cfg, sim *s) {
  memset(s, 0, sizeof *s);
  s->cfg = cfg;
  s->n = cfg->nodes;
  s->sampling = cfg->report != NULL;
  s->verbose_out = cfg->verbose ? stderr : NULL;
  s->bug_mask = sim_bug_mask(cfg->bug);
#ifdef VS_FAULT_INJECTION
  vs_fault_set(s->bug_mask);
#endif
  sim_rng_seed(&s->rng, cfg->seed);
  crypto_generichash_init(&s->trace, NULL, 0, sizeof s->trace_hash);
  {
    /* The run's identity (every option that shapes it) opens the trace. */
    char cmd[8192];
    sim_cfg_command(cfg, "vix-sim", cmd, sizeof cmd);
    sim_trace(s, 'I', cfg->seed, cfg->nodes, cfg->ops, (const uint8_t *)cmd, strlen(cmd));
  }
  uint32_t *scratch = NULL;
  if (setup(s)) {
    scratch = malloc(sizeof *scratch * s->n);
    if (scratch == NULL) sim_fail(s, SIM_EXIT_STORE, "out of memory");
  }
  sim_ev e;
  uint64_t next_progress = 0;
  struct timespec t_start;
  clock_gettime(CLOCK_MONOTONIC, &t_start);
  while (!s->failed && s->phase != PH_DONE) {
    if (s->heap.n == 0) {
      sim_fail(s, SIM_EXIT_FAIL, "nothing left to happen at t=%" PRIu64 " ms", s->now);
      break;
    }
    assert(s->heap.v[0].t >= s->now); /* everything is scheduled at or after now */
    s->now = s->heap.v[0].t;
    if (s->verbose_out != NULL && s->now >= next_progress) {
      fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " s (wall %.0f s): %" PRIu64 " ops, %" PRIu64 " applications, %" PRIu64 " frames\n",
              s->now / 1000, wall_since(&t_start), s->ops_issued, s->tot.applications, s->tot.frames_sent);
      next_progress = s->now + 1000;
    }
    /* Every event of this instant (including those it schedules for it). */
    while (!s->failed && s->heap.n > 0 && s->heap.v[0].t == s->now && sim_heap_pop(&s->heap, &e)) {
      handle(s, &e);
      free(e.bytes);
    }
    if (s->failed || s->dirty_n == 0) continue;
    if (s->now == tick_ceil(s, s->now)) {
      poll_dirty(s, scratch);
    } else if (s->tick_at != tick_ceil(s, s->now)) { /* poll at the next round of the event loop */
      s->tick_at = tick_ceil(s, s->now);
      sim_heap_push(s, s->tick_at, EV_TICK, 0, 0, 0, NULL, 0);
    }
  }
  free(scratch);
  if (s->sampling && s->samples != NULL && s->samples_n > 0) sample(s); /* the end of the run */
  if (!s->failed) sim_check(s);
  else if (s->cfg->equivocate) (void)sim_twin_fork(s); /* for the summary */
  uint32_t ref = sim_ref_node(s);
  if (s->failed && s->final_state_hash_ok == false && s->n > ref && s->nodes != NULL && s->nodes[ref].node != NULL)
    (void)vs_state_hash(vs_node_store(s->nodes[ref].node), s->final_state_hash);
  sim_trace(s, 'Z', s->failed, s->tot.applications, 0, s->final_state_hash, VS_HASH_BYTES);
  crypto_generichash_final(&s->trace, s->trace_hash, sizeof s->trace_hash);
#ifdef VS_FAULT_INJECTION
  vs_fault_set(0);
#endif
  return s->exit_code;
}

/* rm -r of a node directory: LMDB leaves plain files in it, one level. */
static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *de;
    char path[1024];
    for (int guard = 0; guard < 10000 && (de = readdir(d)) != NULL; guard++) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
      (void)unlink(path);
    }
    closedir(d);
  }
  (void)rmdir(dir);
}

void sim_free(sim *s) {
  sim_mesh_free(s);
  sim_susp_free(s);
  for (uint32_t i = 0; s->nodes != NULL && i < s->n; i++) {
    sim_node *n = &s->nodes[i];
    vs_outbox_close(n->ob);
    vs_node_close(n->node);
    vs_identity_wipe(&n->id);
    sodium_memzero(n->base_key, sizeof n->base_key);
    free(n->links);
    free(n->hz_from);
    free(n->hz_seen), free(n->hz_bound);
    free(n->cb);
    free(n->bh_sent), free(n->bh_hz), free(n->bh_since), free(n->bh_recv), free(n->bh_handle);
    if (!s->cfg->keep && n->dir[0] != '\0') rm_dir(n->dir);
  }
  if (s->root[0] != '\0' && !s->cfg->keep) (void)rmdir(s->root);
  vs_sig_cache_free(s->sig_cache); /* after every node using it is closed */
  s->sig_cache = NULL;
  free(s->nodes);
  free(s->links);
  free(s->dirty);
  free(s->part_group);
  free(s->samples);
  free(s->sample_t);
  free(s->iv);
  sim_heap_free(&s->heap);
  sim_workload_free(s);
  s->nodes = NULL;
  s->links = NULL;
}
