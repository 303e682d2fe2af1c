#define _POSIX_C_SOURCE 200809L
/* The node's compaction (node_int.h): in a managed mesh, the log below the
 * stable cut (the members' acknowledgements, node_acks.c) is compacted
 * every cfg.compact_every_ms, or once cfg.compact_after_ops ops were
 * stored, one bounded step per poll while there is more (vs_store_compact:
 * one write transaction of about VS_NODE_COMPACT_STEP_OPS ops). */
#include "node_int.h"

#include <stdio.h>

/* Ops the store took since it opened: received, and own writes (the own
 * head: one per write). */
static uint64_t ops_stored(const vs_node *n) {
  return n->stats.ops_applied + nd_vv_get(&n->mine, n->cfg.identity.pk);
}

static bool enabled(const vs_node *n) { return n->mesh_managed && n->cfg.compact_every_ms > 0; }

static bool due(const vs_node *n, uint64_t now_ms) {
  if (!enabled(n)) return false;
  if (now_ms >= n->compact_next_ms) return true;
  return n->cfg.compact_after_ops > 0 && ops_stored(n) - n->compact_ops_mark >= n->cfg.compact_after_ops;
}

vs_err nd_compact_tick(vs_node *n, uint64_t now_ms) {
  if (!due(n, now_ms)) return VS_OK;
  vs_compact_info info;
  vs_err err = vs_store_compact(n->store, VS_NODE_COMPACT_STEP_OPS, &info);
  if (err != VS_OK) return err;
  if (info.horizon_breaches > n->stats.horizon_breaches && n->cfg.log != NULL) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "event=horizon_breach count=%llu: a verdict (fork, revocation cut or lost admission) voids ops this "
             "store folded below a horizon; its state now differs from stores that did not compact them "
             "(docs/storage.md, \"Membership finality\")",
             (unsigned long long)info.horizon_breaches);
    n->cfg.log(n->cfg.log_ctx, VS_LOG_ERROR, msg);
  }
  n->stats.horizon_breaches = info.horizon_breaches;
  n->stats.gc_pinned = info.gc_pinned;
  if (info.ops_folded > 0) {
    n->stats.compact_steps++;
    n->stats.ops_compacted += info.ops_folded;
  }
  /* More: the next poll goes on (each step is one bounded transaction);
   * else the next round after the interval or the next batch of ops. */
  n->compact_next_ms = info.more ? now_ms : vs_add_sat_u64(now_ms, n->cfg.compact_every_ms);
  n->compact_ops_mark = ops_stored(n);
  return VS_OK;
}

uint64_t nd_compact_wake(const vs_node *n, uint64_t now_ms) {
  if (!enabled(n)) return UINT64_MAX;
  return n->compact_next_ms > now_ms ? n->compact_next_ms : now_ms;
}
