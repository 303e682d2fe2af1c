/* The in-memory scripted transport and its deduplicating receiver. */
#define _POSIX_C_SOURCE 200809L
#include "vixsync/testing/mem_transport.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAP_INITIAL 1024u
#define QUEUE_INITIAL 1024u

/* What the receiver knows of one op id. */
typedef struct op_slot {
  vs_op_id id;
  bool used;
  bool stored;   /* the receiver holds it */
  bool reject;   /* scripted: always FAILED */
  uint32_t applied;   /* times accepted as new: must stay <= 1 */
  uint32_t fail_left; /* scripted: RETRY this many more times */
} op_slot;

typedef struct queued {
  uint64_t due_ms;
  vs_result r;
} queued;

struct vs_mem_transport {
  vs_mem_script script;
  uint64_t rng;
  op_slot *map;
  uint32_t map_cap, map_used;
  queued *queue;
  uint64_t q_head, q_tail, q_cap;
  vs_mem_on_send hook;
  void *hook_ctx;
  vs_mem_stats stats;
  uint64_t unknown_seq;
};

/* splitmix64: the transport's own deterministic generator. */
static uint64_t rng_next(vs_mem_transport *t) {
  uint64_t z = (t->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static bool chance(vs_mem_transport *t, uint32_t permille) {
  if (permille == 0) return false;
  return rng_next(t) % 1000u < permille;
}

static vs_err script_check(const vs_mem_script *s) {
  if (s == NULL) return VS_ERR_INVAL;
  uint32_t rates[] = {s->drop_batch_permille, s->drop_ack_permille, s->retry_permille, s->fail_permille,
                      s->duplicate_ack_permille, s->unknown_ack_permille, s->busy_permille};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
    if (rates[i] > 1000u) return VS_ERR_INVAL;
  }
  return s->peer < VS_PEERS_MAX ? VS_OK : VS_ERR_INVAL;
}

/* ---- the op map ---- */

static op_slot *map_find(const vs_mem_transport *t, const vs_op_id *id) {
  uint32_t mask = t->map_cap - 1, i = vs_get_u32le(id->bytes) & mask;
  for (uint32_t probes = 0; probes < t->map_cap; probes++, i = (i + 1) & mask) {
    op_slot *s = &t->map[i];
    if (!s->used) return NULL;
    if (vs_op_id_equal(&s->id, id)) return s;
  }
  return NULL;
}

static vs_err map_grow(vs_mem_transport *t) {
  uint32_t old_cap = t->map_cap;
  op_slot *old = t->map;
  if (old_cap > UINT32_MAX / 4) return VS_ERR_NOMEM;
  op_slot *grown = calloc(old_cap * 2, sizeof *grown);
  if (grown == NULL) return VS_ERR_NOMEM;
  t->map = grown;
  t->map_cap = old_cap * 2;
  uint32_t mask = t->map_cap - 1;
  for (uint32_t j = 0; j < old_cap; j++) {
    if (!old[j].used) continue;
    uint32_t i = vs_get_u32le(old[j].id.bytes) & mask;
    while (t->map[i].used) i = (i + 1) & mask; /* ends: the table is at most half full */
    t->map[i] = old[j];
  }
  free(old);
  return VS_OK;
}

static vs_err map_get(vs_mem_transport *t, const vs_op_id *id, op_slot **slot_out) {
  op_slot *s = map_find(t, id);
  if (s != NULL) {
    *slot_out = s;
    return VS_OK;
  }
  if ((t->map_used + 1) * 2 > t->map_cap) {
    vs_err err = map_grow(t);
    if (err != VS_OK) return err;
  }
  uint32_t mask = t->map_cap - 1, i = vs_get_u32le(id->bytes) & mask;
  while (t->map[i].used) i = (i + 1) & mask;
  s = &t->map[i];
  memset(s, 0, sizeof *s);
  s->used = true;
  s->id = *id;
  t->map_used++;
  *slot_out = s;
  return VS_OK;
}

/* ---- the result queue, ordered by due time ----
 * With one latency due times never decrease and every insert is an append.
 * vs_mem_transport_set_script may lower the latency, though: then a result
 * is inserted before the later ones still queued, or it would wait behind
 * them past its due time (and next_wake_ms, which reads the head, would
 * hide it). Equal due times keep their send order. That insert moves at
 * most the results queued after it: O(queued), only after a latency drop. */

static vs_err enqueue(vs_mem_transport *t, uint64_t due_ms, const vs_result *r) {
  if (t->q_tail == t->q_cap) {
    if (t->q_head > 0) { /* slide down before growing */
      memmove(t->queue, t->queue + t->q_head, sizeof *t->queue * (t->q_tail - t->q_head));
      t->q_tail -= t->q_head;
      t->q_head = 0;
    }
    if (t->q_tail == t->q_cap) {
      uint64_t cap = t->q_cap == 0 ? QUEUE_INITIAL : t->q_cap * 2;
      queued *q = realloc(t->queue, sizeof *q * cap);
      if (q == NULL) return VS_ERR_NOMEM;
      t->queue = q;
      t->q_cap = cap;
    }
  }
  uint64_t at = t->q_tail;
  while (at > t->q_head && t->queue[at - 1].due_ms > due_ms) at--; /* bounded by the queue */
  if (at < t->q_tail) memmove(t->queue + at + 1, t->queue + at, sizeof *t->queue * (t->q_tail - at));
  t->queue[at].due_ms = due_ms;
  t->queue[at].r = *r;
  t->q_tail++;
  return VS_OK;
}

/* ---- the receiver ---- */

/* What the receiver answers for one op: it stores it (once) or declines. */
static vs_err receive_op(vs_mem_transport *t, const vs_send_op *op, vs_result *r) {
  op_slot *s;
  vs_err err = map_get(t, &op->op_id, &s);
  if (err != VS_OK) return err;
  memset(r, 0, sizeof *r);
  r->op_id = op->op_id;
  r->peer = t->script.peer;
  r->attempt = op->attempt;
  if (s->reject || chance(t, t->script.fail_permille)) {
    r->kind = VS_RESULT_FAILED;
    r->reason = "rejected by the receiver (scripted)";
    t->stats.results_failed++;
  } else if (s->fail_left > 0 || chance(t, t->script.retry_permille)) {
    if (s->fail_left > 0) s->fail_left--;
    r->kind = VS_RESULT_RETRY;
    r->reason = "receiver unavailable (scripted)";
    r->retry_after_ms = t->script.retry_after_ms;
    t->stats.results_retry++;
  } else {
    if (!s->stored) {
      s->stored = true;
      s->applied++;
      t->stats.ops_stored++;
    } else {
      t->stats.ops_redelivered++; /* deduplicated: applied stays 1 */
    }
    r->kind = VS_RESULT_DONE;
    t->stats.results_done++;
  }
  return VS_OK;
}

static vs_err mem_send(void *ctx, const vs_send_batch *batch, uint64_t now_ms) {
  vs_mem_transport *t = ctx;
  if (t->hook != NULL) t->hook(t->hook_ctx, batch, now_ms);
  t->stats.sends++;
  if (chance(t, t->script.busy_permille)) {
    t->stats.busy++;
    return VS_ERR_BUSY;
  }
  if (chance(t, t->script.drop_batch_permille)) {
    t->stats.batches_dropped++;
    return VS_OK; /* lost on the way: the sender only sees its lease end */
  }
  bool drop_acks = chance(t, t->script.drop_ack_permille);
  if (drop_acks) t->stats.acks_dropped++;
  uint64_t due = vs_add_sat_u64(now_ms, t->script.latency_ms);
  for (uint32_t i = 0; i < batch->op_count; i++) {
    vs_result r;
    t->stats.ops_offered++;
    vs_err err = receive_op(t, &batch->ops[i], &r);
    if (err != VS_OK) return err;
    if (drop_acks) continue;
    err = enqueue(t, due, &r);
    if (err == VS_OK && r.kind == VS_RESULT_DONE && chance(t, t->script.duplicate_ack_permille)) {
      t->stats.results_duplicate++;
      err = enqueue(t, due, &r);
    }
    if (err != VS_OK) return err;
  }
  if (!drop_acks && chance(t, t->script.unknown_ack_permille)) {
    vs_result r;
    memset(&r, 0, sizeof r);
    r.kind = VS_RESULT_DONE;
    r.peer = t->script.peer;
    vs_put_u64le(r.op_id.bytes, 0x5EEDull);
    vs_put_u64le(r.op_id.bytes + 8, ++t->unknown_seq); /* an id no writer derives in practice */
    t->stats.results_unknown++;
    return enqueue(t, due, &r);
  }
  return VS_OK;
}

static vs_err mem_poll(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx) {
  vs_mem_transport *t = ctx;
  uint64_t start = t->q_head, end = start;
  while (end < t->q_tail && t->queue[end].due_ms <= now_ms) end++;
  /* Hand them over in runs: emit copies what it keeps. */
  for (uint64_t i = start; i < end; i++) {
    vs_err err = emit(emit_ctx, &t->queue[i].r, 1);
    if (err != VS_OK) {
      t->q_head = i + 1; /* a refused result is a lost reply */
      return err;
    }
  }
  t->q_head = end;
  if (t->q_head == t->q_tail) t->q_head = t->q_tail = 0;
  return VS_OK;
}

static uint64_t mem_next_wake(void *ctx, uint64_t now_ms) {
  (void)now_ms;
  const vs_mem_transport *t = ctx;
  return t->q_head < t->q_tail ? t->queue[t->q_head].due_ms : UINT64_MAX;
}

/* ---- public ---- */

vs_err vs_mem_transport_new(const vs_mem_script *script, vs_mem_transport **t_out) {
  if (t_out == NULL || script_check(script) != VS_OK) return VS_ERR_INVAL;
  vs_mem_transport *t = calloc(1, sizeof *t);
  if (t == NULL) return VS_ERR_NOMEM;
  t->script = *script;
  t->rng = script->seed;
  t->map_cap = MAP_INITIAL;
  t->map = calloc(t->map_cap, sizeof *t->map);
  if (t->map == NULL) {
    free(t);
    return VS_ERR_NOMEM;
  }
  *t_out = t;
  return VS_OK;
}

void vs_mem_transport_free(vs_mem_transport *t) {
  if (t == NULL) return;
  free(t->map);
  free(t->queue);
  free(t);
}

vs_transport vs_mem_transport_iface(vs_mem_transport *t) {
  vs_transport tr = {t, mem_send, mem_poll, mem_next_wake, false, NULL, false};
  return tr;
}

vs_err vs_mem_transport_fail_times(vs_mem_transport *t, const vs_op_id *id, uint32_t times) {
  if (t == NULL || id == NULL) return VS_ERR_INVAL;
  op_slot *s;
  vs_err err = map_get(t, id, &s);
  if (err == VS_OK) s->fail_left = times;
  return err;
}

vs_err vs_mem_transport_reject(vs_mem_transport *t, const vs_op_id *id) {
  if (t == NULL || id == NULL) return VS_ERR_INVAL;
  op_slot *s;
  vs_err err = map_get(t, id, &s);
  if (err == VS_OK) s->reject = true;
  return err;
}

vs_err vs_mem_transport_set_script(vs_mem_transport *t, const vs_mem_script *script) {
  if (t == NULL || script_check(script) != VS_OK) return VS_ERR_INVAL;
  uint64_t rng = t->rng;
  t->script = *script;
  t->rng = rng;
  return VS_OK;
}

void vs_mem_transport_on_send(vs_mem_transport *t, vs_mem_on_send hook, void *ctx) {
  t->hook = hook;
  t->hook_ctx = ctx;
}

bool vs_mem_transport_holds(const vs_mem_transport *t, const vs_op_id *id) {
  const op_slot *s = map_find(t, id);
  return s != NULL && s->stored;
}

uint32_t vs_mem_transport_applied(const vs_mem_transport *t, const vs_op_id *id) {
  const op_slot *s = map_find(t, id);
  return s != NULL ? s->applied : 0;
}

void vs_mem_transport_stats(const vs_mem_transport *t, vs_mem_stats *stats_out) { *stats_out = t->stats; }

uint64_t vs_mem_transport_queued(const vs_mem_transport *t) { return t->q_tail - t->q_head; }

vs_err vs_mem_transport_each_stored(const vs_mem_transport *t, vs_err (*fn)(void *ctx, const vs_op_id *id),
                                    void *ctx) {
  if (t == NULL || fn == NULL) return VS_ERR_INVAL;
  for (uint32_t i = 0; i < t->map_cap; i++) {
    if (!t->map[i].used || !t->map[i].stored) continue;
    vs_err err = fn(ctx, &t->map[i].id);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}
