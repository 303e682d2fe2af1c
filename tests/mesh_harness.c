/* tests/mesh_harness.c: see mesh_harness.h. */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "mesh_harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "prepared.h" /* vt_node_on_frame: on_frame, or the receive pipeline (VT_PREPARED) */
#include "testutil.h"

/* Bounds that only a livelocked mesh reaches. */
#define MH_OUTS_PER_POLL_MAX 100000u
#define MH_PUMP_ROUNDS_MAX 10000u
#define MH_RUN_STEPS_MAX 100000u

void mh_init(mh_mesh *m, uint32_t n, const char *tag, uint8_t id_base, uint64_t seed) {
  assert_true(n >= 1 && n <= MH_NODES_MAX);
  memset(m, 0, sizeof *m);
  m->n = n;
  m->now_ms = MH_T0_MS;
  m->rng = seed;
  m->net_rng = seed ^ 0x6e6574776f726bull; /* "network": apart from the nodes' draws */
  for (uint32_t i = 0; i < n; i++) {
    vt_tmpdir(m->dirs[i], sizeof m->dirs[i], tag);
    vt_identity_from_byte((uint8_t)(id_base + i), &m->ids[i]);
    memset(m->keys[i], 0x5a, VS_MESH_KEY_BYTES);
    mh_open(m, i, 0);
  }
}

static void late_clear(mh_mesh *m) {
  for (uint32_t i = 0; i < MH_NODES_MAX; i++) {
    for (uint32_t j = 0; j < MH_NODES_MAX; j++) {
      free(m->late[i][j].bytes);
      m->late[i][j].bytes = NULL;
    }
  }
}

void mh_free(mh_mesh *m) {
  for (uint32_t i = 0; i < m->n; i++) {
    vs_node_close(m->nodes[i]);
    m->nodes[i] = NULL;
    vt_rmrf(m->dirs[i]);
    vs_identity_wipe(&m->ids[i]);
  }
  late_clear(m);
}

void mh_open(mh_mesh *m, uint32_t i, uint32_t ack_quorum) {
  assert_true(i < m->n);
  vs_node_cfg cfg = vt_node_cfg(m->dirs[i], &m->ids[i], m->keys[i], &m->rng);
  if (ack_quorum != 0) cfg.ack_quorum = ack_quorum;
  if (m->configure != NULL) m->configure(m, i, &cfg);
  assert_err(vs_node_open(&cfg, &m->nodes[i]), VS_OK);
}

void mh_close(mh_mesh *m, uint32_t i) {
  assert_true(i < m->n);
  vs_node_close(m->nodes[i]);
  m->nodes[i] = NULL;
}

void mh_restart(mh_mesh *m, uint32_t i) {
  mh_close(m, i);
  mh_open(m, i, 0);
}

void mh_connect(mh_mesh *m, uint32_t i, uint32_t j) {
  vt_nodes_up(m->nodes, i, j, m->now_ms);
  m->link[i][j] = m->link[j][i] = true;
}

void mh_disconnect(mh_mesh *m, uint32_t i, uint32_t j) {
  if (!m->link[i][j]) return;
  vt_nodes_down(m->nodes, i, j, m->now_ms);
  m->link[i][j] = m->link[j][i] = false;
  free(m->late[i][j].bytes); /* frames of a dead connection never arrive */
  free(m->late[j][i].bytes);
  m->late[i][j].bytes = m->late[j][i].bytes = NULL;
}

vs_err mh_deliver(mh_mesh *m, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len) {
  m->delivered++;
  if (m->deliver != NULL) return m->deliver(m, to, from, bytes, len);
  return vt_node_on_frame(m->nodes[to], from, bytes, len, m->now_ms);
}

static bool net_chance(mh_mesh *m, uint32_t permille) {
  return permille > 0 && vt_sm64(&m->net_rng) % 1000u < permille;
}

/* A frame from i to j on an up link: the network's faults, then delivery.
 * A reordered frame waits for the link's next frame and arrives after it. */
static void pass_on(mh_mesh *m, uint32_t i, uint32_t j, const uint8_t *bytes, size_t len) {
  if (net_chance(m, m->drop_permille)) {
    m->dropped++;
    return;
  }
  mh_late *late = &m->late[i][j];
  if (late->bytes == NULL && net_chance(m, m->reorder_permille)) {
    late->bytes = vt_dup_exact(bytes, len);
    late->len = len;
    m->reordered++;
    return;
  }
  (void)mh_deliver(m, j, i, bytes, len);
  if (late->bytes != NULL && m->link[i][j]) {
    uint8_t *b = late->bytes;
    late->bytes = NULL;
    (void)mh_deliver(m, j, i, b, late->len);
    free(b);
  }
}

/* Frames still held for reordering when nothing else moves arrive now:
 * reordering delays a frame, it never loses one. */
static bool late_flush(mh_mesh *m) {
  bool any = false;
  for (uint32_t i = 0; i < m->n; i++) {
    for (uint32_t j = 0; j < m->n; j++) {
      mh_late *late = &m->late[i][j];
      if (late->bytes == NULL) continue;
      uint8_t *b = late->bytes;
      late->bytes = NULL;
      if (m->link[i][j]) (void)mh_deliver(m, j, i, b, late->len);
      free(b);
      any = true;
    }
  }
  return any;
}

bool mh_round(mh_mesh *m) {
  bool any = false;
  for (uint32_t i = 0; i < m->n; i++) {
    if (m->nodes[i] == NULL) { /* closed (mh_close): asks for nothing */
      m->wake[i] = UINT64_MAX;
      continue;
    }
    for (uint32_t k = 0; k < MH_OUTS_PER_POLL_MAX; k++) {
      vs_node_out out;
      uint64_t w = UINT64_MAX;
      assert_err(vs_node_poll(m->nodes[i], m->now_ms, &out, &w), VS_OK);
      if (out.kind == VS_NODE_OUT_NONE) {
        m->wake[i] = w;
        break;
      }
      any = true;
      if (m->intercept != NULL && m->intercept(m, i, &out)) continue;
      uint32_t j = out.peer;
      assert_true(j < m->n);
      if (out.kind == VS_NODE_OUT_CLOSE) {
        mh_disconnect(m, i, j);
        continue;
      }
      if (!m->link[i][j]) continue;
      pass_on(m, i, j, out.bytes, out.bytes_len);
    }
  }
  if (!any) any = late_flush(m);
  return any;
}

void mh_pump(mh_mesh *m) {
  for (uint32_t round = 0; round < MH_PUMP_ROUNDS_MAX; round++) {
    if (!mh_round(m)) return;
  }
  fail_msg("mh_pump: never quiet");
}

static uint64_t min_wake(const mh_mesh *m) {
  uint64_t wake = UINT64_MAX;
  for (uint32_t i = 0; i < m->n; i++) wake = m->wake[i] < wake ? m->wake[i] : wake;
  return wake;
}

uint64_t mh_run(mh_mesh *m, uint32_t steps) {
  uint64_t delivered = m->delivered;
  for (uint32_t step = 0; step < steps; step++) {
    if (mh_round(m)) continue;
    uint64_t wake = min_wake(m);
    if (wake == UINT64_MAX) break;
    m->now_ms = wake > m->now_ms ? wake : m->now_ms + 1;
  }
  return m->delivered - delivered;
}

void mh_run_for(mh_mesh *m, uint64_t ms) {
  uint64_t end = m->now_ms + ms;
  for (uint32_t step = 0; step < MH_RUN_STEPS_MAX; step++) {
    mh_pump(m);
    uint64_t wake = min_wake(m);
    if (wake >= end) break;
    m->now_ms = wake > m->now_ms ? wake : m->now_ms + 1;
    if (m->now_ms >= end) break; /* a wake left in the past steps 1 ms: time never goes back */
  }
  m->now_ms = end;
  mh_pump(m);
}

void mh_write(mh_mesh *m, uint32_t i, const char *kind, const char *target, const char *value) {
  vt_node_write_kv(m->nodes[i], m->now_ms, kind, target, value);
}

void mh_state_hash(mh_mesh *m, uint32_t i, uint8_t out[VS_HASH_BYTES]) {
  assert_err(vs_state_hash(vs_node_store(m->nodes[i]), out), VS_OK);
}

typedef struct vv_text {
  char text[8192];
  size_t len;
} vv_text;

static vs_err vv_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_text *b = ctx;
  int w = snprintf(b->text + b->len, sizeof b->text - b->len, "%02x%02x:%" PRIu64 ";", origin[0], origin[1], seq);
  if (w > 0) b->len += (size_t)w;
  return VS_OK;
}

void mh_expect_converged(mh_mesh *m, uint32_t a, uint32_t b) {
  uint8_t ha[VS_HASH_BYTES], hb[VS_HASH_BYTES];
  mh_state_hash(m, a, ha);
  mh_state_hash(m, b, hb);
  assert_memory_equal(ha, hb, VS_HASH_BYTES);
  vv_text va = {{0}, 0}, vb = {{0}, 0};
  assert_err(vs_vv_each(vs_node_store(m->nodes[a]), vv_cb, &va), VS_OK);
  assert_err(vs_vv_each(vs_node_store(m->nodes[b]), vv_cb, &vb), VS_OK);
  assert_string_equal(va.text, vb.text);
}

void mh_outbox_counts(mh_mesh *m, uint32_t i, vs_outbox_counts *counts_out) {
  vt_node_outbox_counts(m->nodes[i], counts_out);
}
