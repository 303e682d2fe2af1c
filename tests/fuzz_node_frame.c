/* Fuzz target: vs_node_on_frame with hostile bytes (G6), and the receive
 * pipeline against it.
 *
 * The first input byte picks where the bytes land:
 *   even: raw frames on a fresh connection, before any handshake (version,
 *         type, handshake parsing, MAC checks);
 *   odd:  inside an authenticated session: a fake peer that knows the mesh
 *         key completes a real handshake, then seals the rest of the input as
 *         the plaintext of DATA frames, so the fuzzer reaches the VV, OPS,
 *         FORK and WANT decoders, the assembly of VV parts (several parts
 *         per vector, in and out of order, stale and falling vectors), the
 *         origin quota, the apply path, fork evidence and the fork search.
 * The rest is split into frames by a u16 little-endian length prefix, at
 * most FRAMES_MAX per input. The clock stands still within an input (frames
 * at now 6000, polls at 5000), so a peer's WANT quota (240 a minute) never
 * refills there: FRAMES_MAX lets one input pass it.
 *
 * The corpus (tests/fuzz/corpus) is wire v3: frame version byte 3, VV
 * entries with their 8 head bytes. tests/fuzz/migrate_v3.py migrated the
 * v2 corpus (raw-version2 stays a v2 frame: the refusal of a v2 peer), and
 * tests/fuzz/make_seeds_v3.py wrote seeds for what v3 added, inside a
 * session: WANTs for the node's own origin (answered: wants_served), for
 * origins it does not hold, refused by the decoder, and 250 in one session
 * (rejected_want_quota); FORKs well formed but unsigned, for its own origin
 * and a new one, truncated, with trailing bytes or bad framing (each
 * fork_evidence_bad, the session closed); a VV whose entry for the node's
 * own origin has its seq and another head (a fork search: wants_sent), with
 * the answers an honest peer gives (the node's own ops, held, so unsigned
 * is fine) and one forged; and a VV with the right head (no search). Those
 * seeds depend on setup_once: the node's identity (seed 0x01...), the fake's
 * (0x02...) and the three writes, from which the script derives the node's
 * chain and heads.
 *
 * Whatever the input, the node must not crash, and nothing forged may be
 * taken (the fuzzer cannot sign runs or fork evidence), which is checked
 * after every input: the state is unchanged, no op was applied and no fork
 * verdict was taken (a verdict on an origin the node holds nothing of would
 * leave the state as it was).
 *
 * Two identical nodes (same identity, mesh key, random source, writes, times)
 * get every frame: node 0 through vs_node_on_frame, node 1 through the
 * receive pipeline (vs_rx_prepare + vs_node_on_prepared, tests/prepared.h),
 * which node.h says has exactly the same effect. Any difference in a return
 * value, a counter or a frame the nodes send back aborts: a divergence is a
 * crash to the fuzzer. (Both see the same handshakes, so the fake's session
 * keys are the same with both and one sealed frame serves both.)
 *
 * Built two ways: with clang -fsanitize=fuzzer (VS_FUZZ=ON) for libFuzzer,
 * and with tests/fuzz_driver.c, which replays the corpus in CI. */
#define _XOPEN_SOURCE 700

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prepared.h"
#include "testutil.h"
#include "vixsync/vixsync.h"
#include "wire.h" /* internal: sessions and frames */
#include "vixsync/node.h"

#include <sodium.h>

#define FRAMES_MAX 256u /* per input: more WANTs than a peer may send in a minute (240) */
#define PATHS 2 /* node 0: vs_node_on_frame; node 1: the pipeline */

static vs_node *g_node[PATHS];
static vs_identity g_fake;
static uint8_t g_mesh[VS_MESH_KEY_BYTES];
static uint8_t g_hash0[VS_HASH_BYTES];
static uint32_t g_handle;
static uint64_t g_rng[PATHS] = {7, 7};
static char g_dir[PATHS][256];

static void rnd(void *ctx, uint8_t *buf, size_t bytes) {
  uint64_t *s = ctx;
  for (size_t i = 0; i < bytes; i++) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    buf[i] = (uint8_t)(z ^ (z >> 29));
  }
}

static void diverged(const char *what) {
  fprintf(stderr, "fuzz_node_frame: on_frame and the pipeline diverge: %s\n", what);
  abort();
}

static void cleanup(void) {
  for (int k = 0; k < PATHS; k++) {
    vs_node_close(g_node[k]);
    vt_rmrf(g_dir[k]);
  }
}

static void setup_once(void) {
  if (g_node[0] != NULL) return;
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 2, sizeof seed);
  if (vs_identity_from_seed(seed, &g_fake) != VS_OK) abort();
  memset(g_mesh, 0x42, sizeof g_mesh);
  for (int k = 0; k < PATHS; k++) {
    vt_tmpdir(g_dir[k], sizeof g_dir[k], "fuzz");
    vs_node_cfg cfg;
    vs_node_cfg_default(&cfg);
    cfg.dir = g_dir[k];
    cfg.durability = VS_DURABILITY_NOSYNC;
    cfg.map_bytes = 64ull << 20;
    memset(seed, 1, sizeof seed);
    if (vs_identity_from_seed(seed, &cfg.identity) != VS_OK) abort();
    memcpy(cfg.mesh_key, g_mesh, sizeof g_mesh);
    cfg.random = rnd;
    cfg.random_ctx = &g_rng[k];
    if (vs_node_open(&cfg, &g_node[k]) != VS_OK) abort();
    /* Something to protect: a few writes of its own. */
    for (int i = 0; i < 3; i++) {
      vs_write_req req = {"put", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL, 0};
      if (vs_node_write(g_node[k], &req, 1000 + (uint64_t)i, NULL) != VS_OK) abort();
    }
  }
  uint8_t h1[VS_HASH_BYTES];
  if (vs_state_hash(vs_node_store(g_node[0]), g_hash0) != VS_OK ||
      vs_state_hash(vs_node_store(g_node[1]), h1) != VS_OK)
    abort();
  if (memcmp(g_hash0, h1, sizeof h1) != 0) abort(); /* the twins must start equal */
  atexit(cleanup);
}

static void stats_same(const char *what) {
  vs_node_stats a, b;
  vs_node_stats_get(g_node[0], &a);
  vs_node_stats_get(g_node[1], &b);
  if (memcmp(&a, &b, sizeof a) != 0) diverged(what); /* all uint64_t: no padding */
}

/* One frame to both nodes, each by its path; results and counters must agree. */
static vs_err deliver(uint32_t handle, const uint8_t *bytes, size_t len, uint64_t now_ms) {
  vs_err r0 = vs_node_on_frame(g_node[0], handle, bytes, len, now_ms);
  vs_err prepare_err = VS_OK;
  vs_err r1 = vt_deliver_prepared(g_node[1], handle, bytes, len, now_ms, &prepare_err);
  if (prepare_err != VS_OK) abort(); /* only NOMEM or a NULL: neither happens here */
  if (r0 != r1) {
    char what[96];
    snprintf(what, sizeof what, "%zu-byte frame: on_frame %s, pipeline %s", len, vs_err_name(r0), vs_err_name(r1));
    diverged(what);
  }
  stats_same("counters after a frame");
  return r0;
}

/* Drain both nodes' output, which must be the same; return the first frame
 * sent to `handle`. */
static size_t take_frame(uint32_t handle, uint8_t *buf, size_t max) {
  size_t got = 0;
  for (int i = 0; i < 1000; i++) {
    vs_node_out out[PATHS];
    uint64_t wake[PATHS];
    for (int k = 0; k < PATHS; k++)
      if (vs_node_poll(g_node[k], 5000, &out[k], &wake[k]) != VS_OK) abort();
    if (out[0].kind != out[1].kind || out[0].peer != out[1].peer || out[0].bytes_len != out[1].bytes_len ||
        (out[0].bytes_len > 0 && memcmp(out[0].bytes, out[1].bytes, out[0].bytes_len) != 0) || wake[0] != wake[1])
      diverged("output");
    if (out[0].kind == VS_NODE_OUT_NONE) break;
    if (out[0].kind == VS_NODE_OUT_SEND && out[0].peer == handle && got == 0 && out[0].bytes_len <= max) {
      memcpy(buf, out[0].bytes, out[0].bytes_len);
      got = out[0].bytes_len;
    }
  }
  return got;
}

/* Complete a real handshake as a fake mesh member; fills `session`. */
static int handshake(uint32_t handle, vs_session *session) {
  vs_hs hs;
  uint8_t seed[32], hello[VS_HELLO_BYTES], cookie[VS_COOKIE_FRAME_BYTES], hello2[VS_HELLO2_BYTES];
  uint8_t reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
  memset(seed, (int)(handle & 0xff), sizeof seed);
  size_t len = 0, out_len = 0;
  bool done = false;
  for (int k = 0; k < PATHS; k++)
    if (vs_node_peer_up(g_node[k], handle, false, 5000) != VS_OK) return -1;
  if (vs_hs_start_initiator(&hs, &g_fake, g_mesh, seed, hello, sizeof hello, &len) != VS_OK) return -1;
  (void)deliver(handle, hello, len, 5000);
  /* The cookie round: COOKIE back, HELLO2 echoes it, then REPLY. */
  len = take_frame(handle, cookie, sizeof cookie);
  int rc = -1;
  if (len == 0 || vs_hs_on_frame(&hs, cookie, len, hello2, sizeof hello2, &out_len, &done, session) != VS_OK || done) {
    vs_hs_wipe(&hs);
    return -1;
  }
  (void)deliver(handle, hello2, out_len, 5000);
  len = take_frame(handle, reply, sizeof reply);
  if (len > 0 && vs_hs_on_frame(&hs, reply, len, auth, sizeof auth, &out_len, &done, session) == VS_OK && done) {
    (void)deliver(handle, auth, out_len, 5000);
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
  } else {
    for (int k = 0; k < PATHS; k++)
      if (vs_node_peer_up(g_node[k], handle, false, 5000) != VS_OK) abort();
  }
  size_t pos = 1;
  /* A frame's length is a u16: its DATA frame fits here (no 1 MiB malloc
   * per input, which under ASan is an mmap and a munmap). */
  static uint8_t sealed[0xffffu + VS_DATA_OVERHEAD_BYTES];
  for (uint32_t f = 0; f < FRAMES_MAX && pos + 2 <= size; f++) {
    size_t len = (size_t)data[pos] | ((size_t)data[pos + 1] << 8);
    pos += 2;
    if (len > size - pos) len = size - pos;
    const uint8_t *frame = data + pos;
    pos += len;
    if (in_session) {
      size_t out_len = 0;
      if (vs_session_seal(&session, frame, len, sealed, sizeof sealed, &out_len) != VS_OK) continue;
      (void)deliver(handle, sealed, out_len, 6000);
    } else {
      (void)deliver(handle, frame, len, 6000);
    }
    uint8_t sink[64];
    (void)take_frame(handle, sink, sizeof sink);
  }
  for (int k = 0; k < PATHS; k++) (void)vs_node_peer_down(g_node[k], handle, 7000);
  sodium_memzero(&session, sizeof session);
  stats_same("counters after the input");
  /* Nothing forged may have changed the state, on either path, nor been
   * taken: no op (a held run replayed counts runs_applied, not ops_applied)
   * and no fork verdict. */
  for (int k = 0; k < PATHS; k++) {
    uint8_t h[VS_HASH_BYTES];
    if (vs_state_hash(vs_node_store(g_node[k]), h) != VS_OK || memcmp(h, g_hash0, sizeof h) != 0) abort();
    vs_node_stats st;
    vs_node_stats_get(g_node[k], &st);
    if (st.ops_applied != 0 || st.fork_verdicts != 0) abort();
  }
  return 0;
}
