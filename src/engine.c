/* SyncEngine: workers, results, leases, probe; time only through tick(now). */
#define _POSIX_C_SOURCE 200809L
#include "vixsync/engine.h"

#include <stdlib.h>

#include "cfg.h"
#include "internal.h"
#include "wal_int.h"
#include "outbox_step.h"

#define BUSY_BACKOFF_MS 50u
#define RESULTS_INITIAL 256u
#define QUORUM_SLOTS 4096u /* a power of two; holds up to half as many op ids */

typedef struct worker_op {
  vs_op_id id; /* first: the sort key */
  uint32_t attempt;
  uint64_t lsn;
} worker_op;

/* A SyncWorker: one batch in flight. Its op ids are kept sorted so that a
 * result finds its batch in O(log n). */
typedef struct worker {
  bool busy;
  uint64_t batch_id;
  uint64_t lease_until_ms;
  uint32_t count;
  uint32_t answered;
  worker_op *ops;  /* batch_ops_max, sorted by id */
  uint8_t *marks;  /* 1 once answered */
} worker;

typedef struct pending_result {
  vs_result r;
  char reason[VS_OUTBOX_REASON_BYTES_MAX + 1];
} pending_result;

/* DONE acks per op for ack_quorum > 1: op id -> bitset of peers, open
 * addressing with linear probing. Bounded: when half full it is cleared
 * (before a new id is added), which only means some acks must be heard
 * again (peers re-ack what they hold).
 * The start slot is a hash of the whole id (quorum_hash): the ids of one
 * origin share their first bytes (the origin tag), so a slot taken from
 * those bytes made every op of an origin probe from the same place, O(n)
 * per DONE. */
typedef struct quorum_slot {
  vs_op_id id;
  uint64_t peers;
  bool used;
} quorum_slot;

struct vs_engine {
  vs_engine_cfg cfg;
  vs_outbox *outbox;
  vs_probe probe;
  vs_transport transport;
  bool started;
  uint64_t next_batch_id;
  vs_engine_stats stats;
  worker workers[VS_ENGINE_WORKERS_MAX];
  pending_result *results;
  uint32_t result_count, result_cap;
  quorum_slot *quorum;
  uint32_t quorum_cap, quorum_used;
  /* scratch, sized once */
  vs_outbox_entry *claimed;
  vs_send_op *send_ops;
  vs_op_id *release_ids;
  vs_op_id held_done; /* the last held_through fully applied */
  bool held_known;
  bool held_more; /* the last range stopped at the cap: more to complete */
  vs_outbox_result *oresults;
  vs_outbox_verdict *verdicts;
  uint32_t oresult_cap;
};

/* The first layout of vs_engine_cfg (cfg.h): a caller's cfg_bytes is at least this. */
#define ENGINE_CFG_BYTES_V1 VS_CFG_BYTES_THROUGH(vs_engine_cfg, offline_recheck_ms)

static vs_engine_cfg engine_cfg_defaults(void) {
  vs_engine_cfg cfg = {.cfg_bytes = (uint32_t)sizeof cfg,
                       .workers = 1,
                       .batch_ops_max = 1000,
                       .batch_bytes_max = 1024u * 1024u,
                       .lease_ms = 30000,
                       .retry = VS_RETRY_POLICY_DEFAULT_INIT,
                       .ack_quorum = 1,
                       .offline_recheck_ms = 1000};
  return cfg;
}

void vs_engine_cfg_default_sized(vs_engine_cfg *cfg, size_t cfg_bytes) {
  vs_engine_cfg def = engine_cfg_defaults();
  vs_cfg_default_out(cfg, cfg_bytes, &def, sizeof def);
}

static int id_cmp(const void *a, const void *b) { return memcmp(a, b, VS_OP_ID_BYTES); }

static vs_err cfg_check(const vs_engine_cfg *cfg) {
  if (cfg->workers == 0 || cfg->workers > VS_ENGINE_WORKERS_MAX) return VS_ERR_INVAL;
  if (cfg->batch_ops_max == 0 || cfg->batch_ops_max > VS_ENGINE_BATCH_OPS_MAX) return VS_ERR_INVAL;
  if (cfg->batch_bytes_max == 0 || cfg->lease_ms == 0 || cfg->offline_recheck_ms == 0) return VS_ERR_INVAL;
  if (cfg->ack_quorum == 0 || cfg->ack_quorum > VS_PEERS_MAX) return VS_ERR_INVAL;
  return vs_retry_policy_check(&cfg->retry);
}

void vs_engine_free(vs_engine *e) {
  if (e == NULL) return;
  for (uint32_t i = 0; i < VS_ENGINE_WORKERS_MAX; i++) {
    free(e->workers[i].ops);
    free(e->workers[i].marks);
  }
  free(e->results);
  free(e->quorum);
  free(e->claimed);
  free(e->send_ops);
  free(e->release_ids);
  free(e->oresults);
  free(e->verdicts);
  free(e);
}

vs_err vs_engine_new(const vs_engine_cfg *cfg, vs_outbox *outbox, const vs_probe *probe,
                     const vs_transport *transport, vs_engine **engine_out) {
  if (engine_out == NULL || outbox == NULL || probe == NULL || probe->online == NULL || transport == NULL ||
      (transport->held_only ? transport->held_through == NULL : transport->send == NULL))
    return VS_ERR_INVAL;
  *engine_out = NULL;
  vs_engine_cfg c = engine_cfg_defaults();
  if (cfg != NULL && vs_cfg_load(cfg, &c, sizeof c, ENGINE_CFG_BYTES_V1) != VS_OK) return VS_ERR_INVAL;
  cfg = &c;
  if (cfg_check(cfg) != VS_OK) return VS_ERR_INVAL;
  vs_err err = vs_store_lock_owner(vs_outbox_store(outbox));
  if (err != VS_OK) return err;
  err = vs_outbox_set_policy(outbox, &cfg->retry);
  if (err != VS_OK) return err;
  vs_engine *e = calloc(1, sizeof *e);
  if (e == NULL) return VS_ERR_NOMEM;
  e->cfg = *cfg;
  e->outbox = outbox;
  e->probe = *probe;
  e->transport = *transport;
  e->next_batch_id = 1;
  uint32_t n = cfg->batch_ops_max;
  bool ok = true;
  for (uint32_t i = 0; i < cfg->workers; i++) {
    e->workers[i].ops = malloc(sizeof(worker_op) * n);
    e->workers[i].marks = malloc(n);
    ok = ok && e->workers[i].ops != NULL && e->workers[i].marks != NULL;
  }
  e->claimed = malloc(sizeof(vs_outbox_entry) * n);
  e->send_ops = malloc(sizeof(vs_send_op) * n);
  e->release_ids = malloc(sizeof(vs_op_id) * n);
  if (!ok || e->claimed == NULL || e->send_ops == NULL || e->release_ids == NULL) {
    vs_engine_free(e);
    return VS_ERR_NOMEM;
  }
  *engine_out = e;
  return VS_OK;
}

/* ---- results ---- */

vs_err vs_engine_on_results(vs_engine *e, const vs_result *results, uint32_t count) {
  if (e == NULL || (results == NULL && count > 0)) return VS_ERR_INVAL;
  /* Check the whole call before buffering any of it: a bad result changes
   * nothing. A peer index past VS_PEERS_MAX would otherwise fold onto
   * another peer's bit (peer % 64) and count twice toward ack_quorum. */
  for (uint32_t i = 0; i < count; i++) {
    vs_result_kind k = results[i].kind;
    if (results[i].peer >= VS_PEERS_MAX || (k != VS_RESULT_DONE && k != VS_RESULT_RETRY && k != VS_RESULT_FAILED)) {
      e->stats.results_invalid += count;
      return VS_ERR_INVAL;
    }
  }
  for (uint32_t i = 0; i < count; i++) {
    if (e->result_count == e->result_cap) {
      uint32_t cap = e->result_cap == 0 ? RESULTS_INITIAL : e->result_cap * 2;
      if (e->result_cap >= VS_ENGINE_RESULTS_MAX) cap = e->result_cap;
      pending_result *grown = cap > e->result_cap ? realloc(e->results, sizeof *grown * cap) : NULL;
      if (grown == NULL) {
        /* The cap is an in-memory bound, not the store's map: LIMIT, not
         * FULL (which tells the operator to grow the store). */
        e->stats.results_dropped += count - i;
        return cap > e->result_cap ? VS_ERR_NOMEM : VS_ERR_LIMIT;
      }
      e->results = grown;
      e->result_cap = cap;
    }
    pending_result *p = &e->results[e->result_count++];
    p->r = results[i];
    p->reason[0] = '\0';
    if (results[i].reason != NULL) snprintf(p->reason, sizeof p->reason, "%s", results[i].reason);
    p->r.reason = NULL; /* pointed at p->reason when applied: the array may move */
  }
  return VS_OK;
}

static vs_err emit_cb(void *ctx, const vs_result *results, uint32_t count) {
  return vs_engine_on_results(ctx, results, count);
}

/* Note that the attempt a worker sent was answered, freeing the worker when
 * its whole batch is. An answer to an older attempt frees nothing. Returns
 * the LSN of the op when a batch holds it (a hint for the outbox), else 0. */
static uint64_t mark_answered(vs_engine *e, const vs_result *r) {
  for (uint32_t w = 0; w < e->cfg.workers; w++) {
    worker *wk = &e->workers[w];
    if (!wk->busy) continue;
    worker_op *hit = bsearch(&r->op_id, wk->ops, wk->count, sizeof *wk->ops, id_cmp);
    if (hit == NULL) continue;
    if (r->attempt != 0 && r->attempt != hit->attempt) return hit->lsn;
    size_t i = (size_t)(hit - wk->ops);
    if (!wk->marks[i]) {
      wk->marks[i] = 1;
      if (++wk->answered == wk->count) wk->busy = false;
    }
    return hit->lsn;
  }
  return 0;
}

/* The quorum table's start slot for `id`: FNV-1a over every byte of the id
 * (tag and seq), then murmur3's 64-bit finalizer, so consecutive seqs of one
 * origin land far apart. Deterministic: no seed, no address (G3). */
static uint32_t quorum_hash(const vs_op_id *id) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t i = 0; i < VS_OP_ID_BYTES; i++) h = (h ^ id->bytes[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return (uint32_t)h;
}

/* The slot holding `id`, or the empty slot where it goes; NULL only if the
 * table were full, which quorum_reached never lets happen. */
static quorum_slot *quorum_find(vs_engine *e, const vs_op_id *id) {
  assert(e->quorum_cap > 0 && (e->quorum_cap & (e->quorum_cap - 1)) == 0); /* the mask needs a power of two */
  uint32_t mask = e->quorum_cap - 1, i = quorum_hash(id) & mask;
  for (uint32_t probes = 0; probes < e->quorum_cap; probes++, i = (i + 1) & mask) {
    e->stats.quorum_probes++;
    quorum_slot *s = &e->quorum[i];
    if (!s->used || vs_op_id_equal(&s->id, id)) return s;
  }
  return NULL;
}

/* Count a DONE from `peer` (< VS_PEERS_MAX, checked by on_results); true
 * once ack_quorum distinct peers hold it. */
static bool quorum_reached(vs_engine *e, const vs_op_id *id, uint32_t peer) {
  assert(peer < VS_PEERS_MAX);
  if (e->cfg.ack_quorum <= 1) return true;
  if (e->quorum == NULL) {
    e->quorum = calloc(QUORUM_SLOTS, sizeof *e->quorum);
    if (e->quorum == NULL) return false; /* the ack is heard again later */
    e->quorum_cap = QUORUM_SLOTS;
    e->quorum_used = 0;
  }
  quorum_slot *s = quorum_find(e, id);
  /* Cleared only before a NEW id would make it more than half full, never
   * before a lookup that finds its id (that lost the ack just counted), so
   * probes stay short and an empty slot always ends them. */
  if (s == NULL || (!s->used && e->quorum_used * 2 >= e->quorum_cap)) {
    memset(e->quorum, 0, sizeof *e->quorum * e->quorum_cap);
    e->quorum_used = 0;
    s = quorum_find(e, id);
  }
  assert(s != NULL); /* the table is empty now */
  if (s == NULL) return false;
  if (!s->used) {
    s->used = true;
    s->id = *id;
    s->peers = 0;
    e->quorum_used++;
  }
  s->peers |= 1ull << peer;
  return vs_popcount64(s->peers) >= e->cfg.ack_quorum;
}

/* Turn buffered transport results into outbox results (quorum applied). */
static vs_err collect_results(vs_engine *e, uint32_t *n_out, uint64_t *waiting_out) {
  if (e->result_count > e->oresult_cap) {
    vs_outbox_result *r = realloc(e->oresults, sizeof *r * e->result_count);
    if (r != NULL) e->oresults = r;
    vs_outbox_verdict *v = realloc(e->verdicts, sizeof *v * e->result_count);
    if (v != NULL) e->verdicts = v;
    if (r == NULL || v == NULL) return VS_ERR_NOMEM;
    e->oresult_cap = e->result_count;
  }
  uint32_t n = 0;
  for (uint32_t i = 0; i < e->result_count; i++) {
    pending_result *p = &e->results[i];
    uint64_t lsn = mark_answered(e, &p->r);
    if (p->r.kind == VS_RESULT_DONE && !quorum_reached(e, &p->r.op_id, p->r.peer)) {
      (*waiting_out)++; /* counted once the step commits */
      continue;
    }
    vs_outbox_result *o = &e->oresults[n++];
    o->op_id = p->r.op_id;
    o->kind = p->r.kind;
    o->attempt = p->r.attempt;
    o->retry_after_ms = p->r.retry_after_ms;
    o->reason = p->reason;
    o->lsn = lsn;
  }
  *n_out = n;
  return VS_OK;
}

static void count_verdicts(vs_engine *e, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    switch (e->verdicts[i]) {
      case VS_VERDICT_APPLIED:
        if (e->oresults[i].kind == VS_RESULT_DONE) e->stats.results_done++;
        else if (e->oresults[i].kind == VS_RESULT_RETRY) e->stats.results_retry++;
        else e->stats.results_failed++;
        break;
      case VS_VERDICT_LATE: e->stats.results_late++; break;
      case VS_VERDICT_DUPLICATE: e->stats.results_duplicate++; break;
      case VS_VERDICT_STALE: e->stats.results_stale++; break;
      case VS_VERDICT_UNKNOWN: e->stats.results_unknown++; break;
    }
  }
}

/* ---- sending ---- */

/* Hand the `n` claimed entries to the transport as one batch on worker `wk`.
 * The ops are read from the WAL in a read transaction: they were committed
 * before they could be claimed, so nothing uncommitted can leave (G1). */
static vs_err send_batch(vs_engine *e, worker *wk, uint32_t n, uint64_t now_ms, bool *busy_out) {
  *busy_out = false;
  vs_store *store = vs_outbox_store(e->outbox);
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  vs_send_batch b = {e->next_batch_id++, 0, n, 0, e->send_ops};
  vs_wal_reader wr = {NULL, 0};
  if (!e->transport.ids_only) err = vs_wal_reader_open(txn, store, &wr);
  for (uint32_t i = 0; i < n && err == VS_OK; i++) {
    vs_send_op *so = &e->send_ops[i];
    so->op_id = e->claimed[i].op_id;
    so->lsn = e->claimed[i].lsn;
    so->attempt = e->claimed[i].attempts;
    so->encoded = NULL;
    so->encoded_bytes = e->claimed[i].op_bytes;
    if (!e->transport.ids_only) err = vs_wal_reader_op(&wr, so->lsn, &so->encoded, &so->encoded_bytes);
    if (err != VS_OK) break;
    b.bytes += so->encoded_bytes;
    if (so->attempt > b.attempt_max) b.attempt_max = so->attempt;
  }
  vs_err sent = err == VS_OK ? e->transport.send(e->transport.ctx, &b, now_ms) : err;
  vs_wal_reader_close(&wr);
  mdb_txn_abort(txn);
  for (uint32_t i = 0; i < n; i++) {
    wk->ops[i].id = e->claimed[i].op_id;
    wk->ops[i].attempt = e->claimed[i].attempts;
    wk->ops[i].lsn = e->claimed[i].lsn;
  }
  if (sent == VS_ERR_BUSY || err != VS_OK) {
    /* Nothing left: give the claims back without spending the attempt. A
     * WAL read error is the store's, reported after the entries are safe. */
    if (sent == VS_ERR_BUSY) {
      *busy_out = true;
      e->stats.busy++;
    }
    for (uint32_t i = 0; i < n; i++) e->release_ids[i] = e->claimed[i].op_id;
    vs_err rel = vs_outbox_release(e->outbox, e->release_ids, n, now_ms);
    return err != VS_OK ? err : rel;
  }
  /* Accepted, or lost on the way (another transport error): either way
   * results may come, and if none do the lease ends and they are retried. */
  qsort(wk->ops, n, sizeof *wk->ops, id_cmp);
  memset(wk->marks, 0, n);
  wk->busy = true;
  wk->batch_id = b.batch_id;
  wk->count = n;
  wk->answered = 0;
  wk->lease_until_ms = vs_add_sat_u64(now_ms, e->cfg.lease_ms);
  e->stats.batches_sent++;
  e->stats.ops_sent += n;
  e->stats.bytes_sent += b.bytes;
  return VS_OK;
}

static worker *idle_worker(vs_engine *e) {
  for (uint32_t w = 0; w < e->cfg.workers; w++) {
    if (!e->workers[w].busy) return &e->workers[w];
  }
  return NULL;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* When the engine next needs a tick. */
static vs_err next_wake(vs_engine *e, uint64_t now_ms, bool online, bool busy, uint64_t *wake_out) {
  uint64_t wake = UINT64_MAX;
  for (uint32_t w = 0; w < e->cfg.workers; w++) {
    if (e->workers[w].busy) wake = min_u64(wake, e->workers[w].lease_until_ms);
  }
  if (e->transport.next_wake_ms != NULL) wake = min_u64(wake, e->transport.next_wake_ms(e->transport.ctx, now_ms));
  if (e->held_more) wake = now_ms; /* a range completed up to the cap: the rest next tick */
  if (e->transport.held_only) { /* nothing is ever due: ranges come with events */
    *wake_out = wake;
    return VS_OK;
  }
  if (!online) {
    uint64_t check = e->probe.next_check_ms != NULL ? e->probe.next_check_ms(e->probe.ctx, now_ms)
                                                    : vs_add_sat_u64(now_ms, e->cfg.offline_recheck_ms);
    *wake_out = min_u64(wake, check);
    return VS_OK;
  }
  if (busy) wake = min_u64(wake, vs_add_sat_u64(now_ms, BUSY_BACKOFF_MS));
  else if (idle_worker(e) != NULL) {
    uint64_t due;
    vs_err err = vs_outbox_next_due(e->outbox, &due);
    if (err != VS_OK) return err;
    wake = min_u64(wake, due);
  }
  *wake_out = wake;
  return VS_OK;
}

vs_err vs_engine_tick(vs_engine *e, uint64_t now_ms, uint64_t *wake_ms_out) {
  if (e == NULL) return VS_ERR_INVAL;
  e->stats.ticks++;
  vs_err err;
  if (!e->started) {
    uint64_t requeued = 0;
    err = vs_outbox_requeue_inflight(e->outbox, now_ms, &requeued);
    if (err != VS_OK) return err;
    e->stats.requeued_on_start = requeued;
    e->started = true;
  }
  if (e->transport.poll != NULL) {
    uint64_t dropped = e->stats.results_dropped;
    err = e->transport.poll(e->transport.ctx, now_ms, emit_cb, e);
    /* Our own buffer refusing results (LIMIT, or NOMEM growing it) is a
     * lost reply, already counted: the tick goes on. */
    bool ours = e->stats.results_dropped != dropped && (err == VS_ERR_LIMIT || err == VS_ERR_NOMEM);
    if (err != VS_OK && !ours) return err;
  }
  uint32_t n_results = 0;
  uint64_t quorum_waiting = 0;
  err = collect_results(e, &n_results, &quorum_waiting);
  if (err != VS_OK) return err;
  for (uint32_t w = 0; w < e->cfg.workers; w++) {
    worker *wk = &e->workers[w];
    if (wk->busy && now_ms >= wk->lease_until_ms) {
      wk->busy = false; /* its entries come back through the store's lease expiry */
      e->stats.leases_expired++;
    }
  }
  /* Deliveries the transport knows as a range, when the range grew. */
  vs_outbox_held held, *hp = NULL;
  if (e->transport.held_through != NULL && e->transport.held_through(e->transport.ctx, &held.through) &&
      (!e->held_known || !vs_op_id_same_origin(&held.through, &e->held_done) ||
       vs_op_id_seq(&held.through) > vs_op_id_seq(&e->held_done))) {
    held.max = VS_OUTBOX_CLAIM_MAX;
    hp = &held;
  }
  bool online = e->probe.online(e->probe.ctx, now_ms);
  if (!online) e->stats.offline_ticks++;
  bool busy = false;
  /* The first step applies the results and claims for one idle worker in the
   * same transaction: one commit per round trip. Bounded by the workers. */
  for (uint32_t round = 0; round <= e->cfg.workers; round++) {
    worker *wk = online && !busy && !e->transport.held_only ? idle_worker(e) : NULL;
    if (wk == NULL && round > 0) break;
    vs_outbox_claim_req req = {e->cfg.lease_ms, e->cfg.batch_ops_max, e->cfg.batch_bytes_max, e->claimed};
    uint32_t claimed = 0;
    err = vs_outbox_step_held(e->outbox, now_ms, round == 0 ? hp : NULL, round == 0 ? e->oresults : NULL,
                              round == 0 ? n_results : 0, round == 0 ? e->verdicts : NULL, wk != NULL ? &req : NULL,
                              &claimed);
    if (err != VS_OK) return err; /* results stay buffered for the next tick */
    if (round == 0 && hp != NULL) {
      e->stats.done_held += hp->completed;
      /* Stopped short of the range's end only at the cap: ask again then. */
      e->held_more = hp->more;
      if (!e->held_more) {
        e->held_done = hp->through;
        e->held_known = true;
      }
    }
    if (round == 0) {
      count_verdicts(e, n_results);
      e->stats.results_quorum_wait += quorum_waiting;
      e->result_count = 0;
    }
    if (claimed == 0) break;
    err = send_batch(e, wk, claimed, now_ms, &busy);
    if (err != VS_OK) return err;
  }
  if (wake_ms_out == NULL) return VS_OK;
  return next_wake(e, now_ms, online, busy, wake_ms_out);
}

void vs_engine_stats_get(const vs_engine *e, vs_engine_stats *stats_out) { *stats_out = e->stats; }

uint32_t vs_engine_inflight_batches(const vs_engine *e) {
  uint32_t n = 0;
  for (uint32_t w = 0; w < e->cfg.workers; w++) n += e->workers[w].busy ? 1u : 0u;
  return n;
}
