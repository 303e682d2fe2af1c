/* Fixtures shared by the cmocka tests (tests/test_*.c): a store in a fresh
 * temporary directory, bytes from hex and exact-size copies, reaping a
 * forked child, and the nodes of the in-memory network tests. Include after
 * cmocka.h (the helpers assert with it). */
#ifndef VIXSYNC_FIXTURE_H
#define VIXSYNC_FIXTURE_H

#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "vixsync/identity.h"
#include "vixsync/node.h"
#include "vixsync/outbox.h"
#include "vixsync/store.h"

/* ---- a store in a fresh temporary directory ---- */

/* The store configuration of the tests: created when absent, no fsync
 * (speed; durability is pinned where it is the subject), a map of
 * `map_bytes` (0: the library's default). */
static inline vs_store_cfg vt_store_cfg(uint64_t map_bytes) {
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_NOSYNC;
  cfg.map_bytes = map_bytes;
  cfg.create = true;
  return cfg;
}

/* Open (creating) the store in `dir` with vt_store_cfg(map_bytes). */
static inline vs_err vt_store_open(const char *dir, uint64_t map_bytes, vs_store **store_out) {
  vs_store_cfg cfg = vt_store_cfg(map_bytes);
  return vs_store_open(dir, &cfg, store_out);
}

/* Make a fresh temporary directory in `dir` (see vt_tmpdir) and open a
 * store there with vt_store_open. Returns 0, or -1 with the directory
 * removed again: what a cmocka setup returns. */
static inline int vt_store_setup(char *dir, size_t dir_bytes, const char *tag, uint64_t map_bytes,
                                 vs_store **store_out) {
  vt_tmpdir(dir, dir_bytes, tag);
  if (vt_store_open(dir, map_bytes, store_out) != VS_OK) {
    vt_rmrf(dir);
    return -1;
  }
  return 0;
}

/* Close `store` (NULL: none is open) and remove its directory. */
static inline void vt_store_teardown(const char *dir, vs_store *store) {
  vs_store_close(store);
  vt_rmrf(dir);
}

/* The whole fixture of tests that need a store and nothing else. */
typedef struct vt_fixture {
  char dir[512];
  vs_store *store; /* NULL while none is open */
} vt_fixture;

/* cmocka setup: a vt_fixture with a fresh temporary directory (`tag`), no
 * store open. */
static inline int vt_fixture_new(void **state, const char *tag) {
  vt_fixture *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  vt_tmpdir(f->dir, sizeof f->dir, tag);
  *state = f;
  return 0;
}

/* cmocka teardown of a vt_fixture: closes its store, removes its directory. */
static inline int vt_fixture_free(void **state) {
  vt_fixture *f = *state;
  vt_store_teardown(f->dir, f->store);
  free(f);
  *state = NULL;
  return 0;
}

/* cmocka setup: vt_fixture_new, then the store opened with vt_store_open. */
static inline int vt_fixture_open(void **state, const char *tag, uint64_t map_bytes) {
  if (vt_fixture_new(state, tag) != 0) return -1;
  vt_fixture *f = *state;
  if (vt_store_open(f->dir, map_bytes, &f->store) != VS_OK) {
    vt_fixture_free(state);
    return -1;
  }
  return 0;
}

/* ---- bytes ---- */

/* `hex` (exactly 2 * out_bytes hex digits) as bytes. */
static inline void vt_hex_to_bytes(const char *hex, uint8_t *out, size_t out_bytes) {
  assert_int_equal(strlen(hex), 2 * out_bytes);
  for (size_t i = 0; i < out_bytes; i++) {
    unsigned v = 0;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
}

/* A heap copy of exactly `n` bytes, so ASan flags any read past the end.
 * The caller frees it. */
static inline uint8_t *vt_dup_exact(const uint8_t *src, size_t n) {
  uint8_t *p = malloc(n == 0 ? 1 : n);
  assert_non_null(p);
  if (n > 0) memcpy(p, src, n);
  return p;
}

/* ---- processes ---- */

/* Reap the child `pid`: its exit code, or 1000 + the signal that ended it. */
static inline int vt_wait_child(pid_t pid) {
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  assert_int_equal(r, pid);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/* ---- nodes of the in-memory network tests (test_node, test_node_property) ---- */

/* A test node's configuration: no fsync, a 64 MiB map, randomness from
 * vt_sm_fill over `*rng` (seeded by the test, so a run replays). */
static inline vs_node_cfg vt_node_cfg(const char *dir, const vs_identity *identity,
                                      const uint8_t mesh_key[VS_MESH_KEY_BYTES], uint64_t *rng) {
  vs_node_cfg cfg;
  vs_node_cfg_default(&cfg);
  cfg.dir = dir;
  cfg.durability = VS_DURABILITY_NOSYNC;
  cfg.map_bytes = 64ull << 20;
  cfg.identity = *identity;
  memcpy(cfg.mesh_key, mesh_key, VS_MESH_KEY_BYTES);
  cfg.random = vt_sm_fill;
  cfg.random_ctx = rng;
  return cfg;
}

/* Open a node with vt_node_cfg and `ack_quorum` (0: the default) into
 * `*node_out`; fails the test if it does not open. */
static inline void vt_node_open(const char *dir, const vs_identity *identity,
                                const uint8_t mesh_key[VS_MESH_KEY_BYTES], uint32_t ack_quorum, uint64_t *rng,
                                vs_node **node_out) {
  vs_node_cfg cfg = vt_node_cfg(dir, identity, mesh_key, rng);
  if (ack_quorum != 0) cfg.ack_quorum = ack_quorum;
  assert_err(vs_node_open(&cfg, node_out), VS_OK);
}

/* The identity whose seed is `seed_byte` repeated. */
static inline void vt_identity_from_byte(uint8_t seed_byte, vs_identity *identity_out) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, seed_byte, sizeof seed);
  assert_err(vs_identity_from_seed(seed, identity_out), VS_OK);
}

/* Write `kind` `target` = `value` (text, no idempotency key) on `node`. */
static inline void vt_node_write_kv(vs_node *node, uint64_t now_ms, const char *kind, const char *target,
                                    const char *value) {
  vs_write_req req = {kind, (const uint8_t *)target, (uint32_t)strlen(target), (const uint8_t *)value,
                      (uint32_t)strlen(value), NULL, 0};
  assert_err(vs_node_write(node, &req, now_ms, NULL), VS_OK);
}

/* The outbox counts of `node`'s store (its default sink). */
static inline void vt_node_outbox_counts(vs_node *node, vs_outbox_counts *counts_out) {
  vs_outbox *ob;
  assert_err(vs_outbox_open(vs_node_store(node), NULL, &ob), VS_OK);
  assert_err(vs_outbox_counts_get(ob, counts_out), VS_OK);
  vs_outbox_close(ob);
}

/* The connection between nodes[i] and nodes[j] comes up: i dialled and
 * knows j as handle j, j accepted and knows i as handle i. */
static inline void vt_nodes_up(vs_node *const nodes[], uint32_t i, uint32_t j, uint64_t now_ms) {
  assert_err(vs_node_peer_up(nodes[i], j, true, now_ms), VS_OK);
  assert_err(vs_node_peer_up(nodes[j], i, false, now_ms), VS_OK);
}

/* The connection between nodes[i] and nodes[j] is gone, on both sides (a
 * side that closed it has forgotten it already: errors are ignored). */
static inline void vt_nodes_down(vs_node *const nodes[], uint32_t i, uint32_t j, uint64_t now_ms) {
  (void)vs_node_peer_down(nodes[i], j, now_ms);
  (void)vs_node_peer_down(nodes[j], i, now_ms);
}

#endif
