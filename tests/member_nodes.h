/* tests/member_nodes.h: managed meshes of real vs_nodes on the in-memory
 * mesh (mesh_harness.h), for test_node_member.c, test_node_rekey.c and the
 * tests that compact (test_node_compact.c, test_compact_final.c,
 * test_join_window.c, ...). Include after mesh_harness.h. */
#ifndef VIXSYNC_MEMBER_NODES_H
#define VIXSYNC_MEMBER_NODES_H

#include <string.h>

#include "mesh_harness.h"
#include "vixsync/mesh.h"
#include "vixsync/node.h"
#include "vixsync/snapshot.h"
#include "vixsync/state.h"
#include "vixsync/wal.h"

#define MN_DAY_MS (24ull * 3600ull * 1000ull)
#ifndef MN_INVITE_MS /* how long mn_join's invites last (a test that compacts waits them out) */
#define MN_INVITE_MS MN_DAY_MS
#endif

static inline vs_store *mn_store(mh_mesh *m, uint32_t i) { return vs_node_store(m->nodes[i]); }

static inline vs_node_stats mn_stats(mh_mesh *m, uint32_t i) {
  vs_node_stats s;
  vs_node_stats_get(m->nodes[i], &s);
  return s;
}

/* Node `dev` joins with an invite of node `admin` (role). The token
 * carries the newest key `admin` holds, which `dev` keeps as its base key
 * (as vix-node keeps it in mesh.key): when it differs, dev reopens on it. */
static inline void mn_join(mh_mesh *m, uint32_t admin, uint32_t dev, uint8_t role) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, (int)(0x40 + dev), sizeof seed);
  vs_mesh_invite_req req = {role, m->now_ms + MN_INVITE_MS, seed, m->keys[admin], NULL, 0};
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t n = 0;
  assert_err(vs_mesh_invite(mn_store(m, admin), &req, m->now_ms, tok, sizeof tok, &n), VS_OK);
  vs_mesh_joined j;
  assert_err(vs_mesh_join(mn_store(m, dev), tok, n, m->now_ms, &j), VS_OK);
  if (memcmp(j.mesh_key, m->keys[dev], VS_MESH_KEY_BYTES) != 0) {
    memcpy(m->keys[dev], j.mesh_key, VS_MESH_KEY_BYTES);
    mh_restart(m, dev);
  }
  memset(tok, 0, sizeof tok);
}

/* `n` nodes: node 0 creates the mesh, nodes 1..joined-1 join with 0's
 * invites in the roles given (NULL: writers); the rest stay fresh. No
 * link is up. `configure` (may be NULL) applies to every node. */
static inline void mn_mesh(mh_mesh *m, uint32_t n, uint32_t joined, const uint8_t *roles, const char *tag,
                           uint8_t id_base, uint64_t seed, mh_configure_fn configure) {
  mh_init(m, n, tag, id_base, seed);
  if (configure != NULL) {
    m->configure = configure;
    for (uint32_t i = 0; i < n; i++) mh_restart(m, i);
  }
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(mn_store(m, 0), m->now_ms, mesh_id), VS_OK);
  for (uint32_t i = 1; i < joined; i++) mn_join(m, 0, i, roles != NULL ? roles[i] : VS_MESH_WRITER);
}

#define MN_COMPACT_EVERY_MS 5000u /* how often mn_compacting's nodes compact */

/* A node config's compaction knobs: compact every `every_ms` (0: never on
 * a timer), never on an op count; `inflight_bytes` (0: keep the default)
 * bounds what one peer has in flight. */
static inline void mn_compact_cfg(vs_node_cfg *cfg, uint64_t every_ms, uint64_t inflight_bytes) {
  cfg->compact_every_ms = every_ms;
  cfg->compact_after_ops = 0;
  if (inflight_bytes != 0) cfg->inflight_bytes_max = inflight_bytes;
}

/* The configure hook (mn_mesh's `configure`) of tests that compact: every
 * node compacts every MN_COMPACT_EVERY_MS. */
static inline void mn_compacting(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  (void)i;
  mn_compact_cfg(cfg, MN_COMPACT_EVERY_MS, 0);
}

/* The set-up of tests that compact: mn_mesh of `n` nodes, all compacting
 * (mn_compacting), nodes 0..joined-1 members (writers); `id_base` is the
 * seed too. Each member but 0 dials node 0; nothing runs yet. */
static inline void mn_compacting_star(mh_mesh *m, uint32_t n, uint32_t joined, const char *tag, uint8_t id_base) {
  mn_mesh(m, n, joined, NULL, tag, id_base, id_base, mn_compacting);
  for (uint32_t i = 1; i < joined; i++) mh_connect(m, i, 0);
}

static inline vs_err mn_seen_cb(const vs_state_entry *e, void *ctx) {
  (void)e;
  *(bool *)ctx = true;
  return VS_OK;
}

/* Node i's state holds `target`. */
static inline bool mn_has(mh_mesh *m, uint32_t i, const char *target) {
  bool seen = false;
  vs_err err = vs_state_get(mn_store(m, i), (const uint8_t *)target, (uint32_t)strlen(target), false, mn_seen_cb, &seen);
  assert_true(err == VS_OK || err == VS_ERR_NOTFOUND);
  return seen;
}

/* Node i's head seq of node `origin`'s chain. */
static inline uint64_t mn_head(mh_mesh *m, uint32_t i, uint32_t origin) {
  uint64_t seq = 0;
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_wal_head(mn_store(m, i), m->ids[origin].pk, &seq, h, NULL), VS_OK);
  return seq;
}

static inline vs_err mn_count_orphan_cb(void *ctx, const vs_orphan *o) {
  (void)o;
  (*(uint64_t *)ctx)++;
  return VS_OK;
}

/* The orphan records (vs_orphans_list) node i holds. */
static inline uint64_t mn_orphans(mh_mesh *m, uint32_t i) {
  uint64_t n = 0;
  assert_err(vs_orphans_list(mn_store(m, i), mn_count_orphan_cb, &n), VS_OK);
  return n;
}

/* An intercept (m->intercept = mn_drop_link, m->ctx = a mn_drop) that
 * loses everything node `from` sends node `to` while `dropping`. */
typedef struct mn_drop {
  uint32_t from, to;
  bool dropping;
  uint64_t dropped;
} mn_drop;

static inline bool mn_drop_link(mh_mesh *m, uint32_t from, const vs_node_out *out) {
  mn_drop *d = m->ctx;
  if (!d->dropping || from != d->from || out->peer != d->to || out->kind != VS_NODE_OUT_SEND) return false;
  d->dropped++;
  return true;
}

#endif
