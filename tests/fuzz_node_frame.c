/* Fuzz target: vs_node_on_frame with hostile bytes (G6).
 *
 * The first input byte picks where the bytes land:
 *   even: raw frames on a fresh connection, before any handshake (version,
 *         type, handshake parsing, MAC checks);
 *   odd:  inside an authenticated session: a fake peer that knows the mesh
 *         key completes a real handshake, then seals the rest of the input as
 *         the plaintext of DATA frames, so the fuzzer reaches the VV and OPS
 *         decoders and the apply path.
 * The rest is split into frames by a u16 little-endian length prefix.
 * Whatever the input, the node must not crash, and its state must not change
 * (the fuzzer cannot sign runs), which is checked after every input.
 *
 * Built two ways: with clang -fsanitize=fuzzer (VS_FUZZ=ON) for libFuzzer,
 * and with tests/fuzz_driver.c, which replays the corpus in CI. */
#define _XOPEN_SOURCE 700

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vixsync/vixsync.h"
#include "vixsync/node.h"

#include <sodium.h>

#define FRAMES_MAX 64u

static vs_node *g_node;
static vs_identity g_fake;
static uint8_t g_mesh[VS_MESH_KEY_BYTES];
static uint8_t g_hash0[VS_HASH_BYTES];
static uint32_t g_handle;
static uint64_t g_rng = 7;
static char g_dir[256];

static void rnd(void *ctx, uint8_t *buf, size_t bytes) {
  uint64_t *s = ctx;
  for (size_t i = 0; i < bytes; i++) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    buf[i] = (uint8_t)(z ^ (z >> 29));
  }
}

static void cleanup(void) {
  vs_node_close(g_node);
  vt_rmrf(g_dir);
}

static void setup_once(void) {
  if (g_node != NULL) return;
  vt_tmpdir(g_dir, sizeof g_dir, "fuzz");
  vs_node_cfg cfg = vs_node_cfg_default();
  cfg.dir = g_dir;
  cfg.durability = VS_DURABILITY_NOSYNC;
  cfg.map_bytes = 64ull << 20;
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 1, sizeof seed);
  if (vs_identity_from_seed(seed, &cfg.identity) != VS_OK) abort();
  memset(seed, 2, sizeof seed);
  if (vs_identity_from_seed(seed, &g_fake) != VS_OK) abort();
  memset(g_mesh, 0x42, sizeof g_mesh);
  memcpy(cfg.mesh_key, g_mesh, sizeof g_mesh);
  cfg.random = rnd;
  cfg.random_ctx = &g_rng;
  if (vs_node_open(&cfg, &g_node) != VS_OK) abort();
  /* Something to protect: a few writes of its own. */
  for (int i = 0; i < 3; i++) {
    vs_write_req req = {"put", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL, 0};
    if (vs_node_write(g_node, &req, 1000 + (uint64_t)i, NULL) != VS_OK) abort();
  }
  if (vs_state_hash(vs_node_store(g_node), g_hash0) != VS_OK) abort();
  atexit(cleanup);
}

/* Drain the node's output; return the first frame sent to `handle`. */
static size_t take_frame(uint32_t handle, uint8_t *buf, size_t max) {
  size_t got = 0;
  for (int i = 0; i < 1000; i++) {
    vs_node_out out;
    uint64_t wake;
    if (vs_node_poll(g_node, 5000, &out, &wake) != VS_OK) abort();
    if (out.kind == VS_NODE_OUT_NONE) break;
    if (out.kind == VS_NODE_OUT_SEND && out.peer == handle && got == 0 && out.bytes_len <= max) {
      memcpy(buf, out.bytes, out.bytes_len);
      got = out.bytes_len;
    }
  }
  return got;
}

/* Complete a real handshake as a fake mesh member; fills `session`. */
static int handshake(uint32_t handle, vs_session *session) {
  vs_hs hs;
  uint8_t seed[32], hello[VS_HELLO_BYTES], reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
  memset(seed, (int)(handle & 0xff), sizeof seed);
  size_t len = 0, out_len = 0;
  bool done = false;
  if (vs_node_peer_up(g_node, handle, false, 5000) != VS_OK) return -1;
  if (vs_hs_start_initiator(&hs, &g_fake, g_mesh, seed, hello, sizeof hello, &len) != VS_OK) return -1;
  (void)vs_node_on_frame(g_node, handle, hello, len, 5000);
  len = take_frame(handle, reply, sizeof reply);
  int rc = -1;
  if (len > 0 && vs_hs_on_frame(&hs, reply, len, auth, sizeof auth, &out_len, &done, session) == VS_OK && done) {
    (void)vs_node_on_frame(g_node, handle, auth, out_len, 5000);
    rc = 0;
  }
  vs_hs_wipe(&hs);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup_once();
  if (size < 1) return 0;
  bool in_session = (data[0] & 1u) != 0;
  uint32_t handle = ++g_handle;
  vs_session session;
  memset(&session, 0, sizeof session);
  if (in_session) {
    if (handshake(handle, &session) != 0) abort(); /* an honest handshake must succeed */
  } else if (vs_node_peer_up(g_node, handle, false, 5000) != VS_OK) {
    abort();
  }
  size_t pos = 1;
  uint8_t *sealed = malloc(VS_FRAME_BYTES_MAX);
  if (sealed == NULL) abort();
  for (uint32_t f = 0; f < FRAMES_MAX && pos + 2 <= size; f++) {
    size_t len = (size_t)data[pos] | ((size_t)data[pos + 1] << 8);
    pos += 2;
    if (len > size - pos) len = size - pos;
    const uint8_t *frame = data + pos;
    pos += len;
    if (in_session) {
      size_t out_len = 0;
      if (vs_session_seal(&session, frame, len, sealed, VS_FRAME_BYTES_MAX, &out_len) != VS_OK) continue;
      (void)vs_node_on_frame(g_node, handle, sealed, out_len, 6000);
    } else {
      (void)vs_node_on_frame(g_node, handle, frame, len, 6000);
    }
    uint8_t sink[64];
    (void)take_frame(handle, sink, sizeof sink);
  }
  free(sealed);
  (void)vs_node_peer_down(g_node, handle, 7000);
  sodium_memzero(&session, sizeof session);
  /* Nothing forged may have changed the state. */
  uint8_t h[VS_HASH_BYTES];
  if (vs_state_hash(vs_node_store(g_node), h) != VS_OK || memcmp(h, g_hash0, sizeof h) != 0) abort();
  return 0;
}
