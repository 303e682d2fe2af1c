/* tests/node_bench.h: the helpers the vs_node tests share
 * (test_node_property.c, test_node_hostile.c, test_node_attacks.c):
 * splitmix64 draws, a bench of real nodes with fake peers that drive wire.h
 * by hand, and builders of operations and messages. Include it after
 * defining _XOPEN_SOURCE 700. Each file is built twice; the _prepared copy
 * delivers every frame through the receive pipeline (tests/prepared.h). */
#ifndef VIXSYNC_NODE_BENCH_H
#define VIXSYNC_NODE_BENCH_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "mesh_harness.h"
#include "prepared.h" /* vt_node_on_frame: on_frame, or the receive pipeline (VT_PREPARED) */
#include "testutil.h"
#include "vixsync/vixsync.h"
#include "apply.h"
#include "vixsync/node.h"
#include "wire.h"

#define T0_MS 1700000000000ull
#define PROGRAM (VT_PREPARED ? "./test_node_property_prepared" : "./test_node_property") /* replay lines */

/* ---- splitmix64 (vt_sm64, vt_sm_fill): the only source of randomness ---- */

static inline uint64_t sm_below(uint64_t *s, uint64_t n) { return n == 0 ? 0 : vt_sm64(s) % n; }

typedef struct vv_buf {
  char text[4096];
  size_t len;
  uint64_t seq_sum;
} vv_buf;

static inline vs_err vv_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_buf *b = ctx;
  int w = snprintf(b->text + b->len, sizeof b->text - b->len, "%02x%02x%02x%02x:%" PRIu64 ";", origin[0], origin[1],
                   origin[2], origin[3], seq);
  if (w > 0 && (size_t)w < sizeof b->text - b->len) b->len += (size_t)w;
  b->seq_sum += seq;
  return VS_OK;
}

static inline vs_err vv_text(vs_store *store, vv_buf *out) {
  memset(out, 0, sizeof *out);
  return vs_vv_each(store, vv_cb, out);
}

typedef struct flight {
  uint8_t *bytes;
  size_t len;
  uint64_t at_ms;
  uint64_t order; /* ties keep sending order */
} flight;

/* =====================================================================
 * 2. Hostile peers: a small bench of real nodes and fake peers
 * ===================================================================== */

#define BENCH_NODES 3u
#define FAKE_HANDLE 100u /* handles from here on are fake peers driven by the test */
#define CAPS_MAX 4096u

typedef struct cap {
  uint32_t node, handle;
  bool close;
  uint8_t *bytes;
  size_t len;
} cap;

typedef struct bench {
  mh_mesh h; /* the real nodes, links and virtual time (tests/mesh_harness.h) */
  cap caps[CAPS_MAX]; /* frames and closes the nodes sent to fake handles */
  uint32_t ncaps;
  uint64_t sent_to[BENCH_NODES][BENCH_NODES]; /* SEND frames i -> j */
  uint32_t ack_quorum[BENCH_NODES];           /* 0: the default */
  uint32_t origin_quota[BENCH_NODES];         /* 0: the default */
  uint64_t inflight_max[BENCH_NODES];         /* 0: the default */
} bench;

/* The harness's configure hook: the bench's per-node settings. */
static inline void bench_configure(mh_mesh *h, uint32_t i, vs_node_cfg *cfg) {
  const bench *t = h->ctx;
  if (t->ack_quorum[i] != 0) cfg->ack_quorum = t->ack_quorum[i];
  if (t->origin_quota[i] != 0) cfg->origin_quota_per_min = t->origin_quota[i];
  if (t->inflight_max[i] != 0) cfg->inflight_bytes_max = t->inflight_max[i];
}

/* (Re)open node i (closed) with the bench's settings. */
static inline void bench_open(bench *t, uint32_t i) { mh_open(&t->h, i, 0); }

/* The harness's intercept hook: what the nodes send to fake handles is
 * captured; SEND frames between real nodes are counted (even on a link
 * that is down) and go on. */
static inline bool bench_capture(mh_mesh *h, uint32_t i, const vs_node_out *out) {
  bench *t = h->ctx;
  uint32_t hd = out->peer;
  if (hd >= FAKE_HANDLE) {
    assert_true(t->ncaps < CAPS_MAX);
    cap *c = &t->caps[t->ncaps++];
    c->node = i;
    c->handle = hd;
    c->close = out->kind == VS_NODE_OUT_CLOSE;
    c->bytes = NULL;
    c->len = out->bytes_len;
    if (!c->close) {
      c->bytes = malloc(out->bytes_len);
      assert_non_null(c->bytes);
      memcpy(c->bytes, out->bytes, out->bytes_len);
    }
    return true;
  }
  if (out->kind == VS_NODE_OUT_SEND && hd < h->n) t->sent_to[i][hd]++;
  return false;
}

static inline bench *bench_new(uint32_t n) {
  assert_true(n <= BENCH_NODES);
  bench *t = calloc(1, sizeof *t);
  assert_non_null(t);
  mh_init(&t->h, n, "nsec", 0x40, 7); /* the settings are all defaults yet */
  t->h.configure = bench_configure;
  t->h.intercept = bench_capture;
  t->h.ctx = t;
  return t;
}

static inline void caps_clear(bench *t) {
  for (uint32_t k = 0; k < t->ncaps; k++) free(t->caps[k].bytes);
  t->ncaps = 0;
}

static inline void bench_free(bench *t) {
  mh_free(&t->h);
  caps_clear(t);
  free(t);
}

static inline void bench_connect(bench *t, uint32_t i, uint32_t j) { mh_connect(&t->h, i, j); }

static inline void bench_disconnect(bench *t, uint32_t i, uint32_t j) { mh_disconnect(&t->h, i, j); }

/* Poll every node until none has anything to send at this instant; frames
 * between real nodes arrive at once and in order; the rest is captured. */
static inline void bench_pump(bench *t) { mh_pump(&t->h); }

/* Advance virtual time by ms, waking nodes when they ask. */
static inline void bench_run(bench *t, uint64_t ms) { mh_run_for(&t->h, ms); }

/* Take the first captured frame the node sent to `handle` (false if none). */
static inline bool cap_take(bench *t, uint32_t node, uint32_t handle, bool *close, uint8_t *buf, size_t max, size_t *len) {
  for (uint32_t k = 0; k < t->ncaps; k++) {
    cap *c = &t->caps[k];
    if (c->node != node || c->handle != handle) continue;
    *close = c->close;
    *len = 0;
    if (!c->close) {
      assert_true(c->len <= max);
      memcpy(buf, c->bytes, c->len);
      *len = c->len;
    }
    free(c->bytes);
    memmove(c, c + 1, sizeof *c * (t->ncaps - k - 1));
    t->ncaps--;
    return true;
  }
  return false;
}

static inline uint32_t caps_count(const bench *t, uint32_t node, uint32_t handle, bool close) {
  uint32_t c = 0;
  for (uint32_t k = 0; k < t->ncaps; k++)
    c += t->caps[k].node == node && t->caps[k].handle == handle && t->caps[k].close == close ? 1u : 0u;
  return c;
}

/* ---- snapshots: what a refused frame must not change ---- */

typedef struct snap {
  uint8_t hash[VS_HASH_BYTES];
  uint64_t lsn, forks;
  vv_buf vv;
  vs_node_stats st;
} snap;

static inline void snap_take(vs_node *node, snap *s) {
  vs_store *st = vs_node_store(node);
  assert_err(vs_state_hash(st, s->hash), VS_OK);
  assert_err(vs_wal_last_lsn(st, &s->lsn), VS_OK);
  assert_err(vs_apply_forks(st, NULL, 0, &s->forks), VS_OK);
  assert_err(vv_text(st, &s->vv), VS_OK);
  vs_node_stats_get(node, &s->st);
}

static inline void snap_same_store(vs_node *node, const snap *before) {
  snap now;
  snap_take(node, &now);
  assert_memory_equal(now.hash, before->hash, VS_HASH_BYTES);
  assert_int_equal(now.lsn, before->lsn);
  assert_int_equal(now.forks, before->forks);
  assert_string_equal(now.vv.text, before->vv.text);
}

#define REJECT_FIELDS(X)                                                                                        \
  X(rejected_auth) X(rejected_replay) X(rejected_malformed) X(rejected_state) X(rejected_unknown_peer) X(runs_gap) \
  X(runs_forged) X(runs_fork) X(rejected_origin_quota) X(rejected_vv_regress) X(fork_evidence_bad) X(runs_void) \
  X(rejected_want_quota)

/* Exactly `field` grew by `delta` among the refusal counters. */
static inline void expect_only(vs_node *node, const snap *before, const char *field, uint64_t delta, const char *what) {
  vs_node_stats now;
  vs_node_stats_get(node, &now);
#define CHK_(f)                                                                                      \
  {                                                                                                  \
    uint64_t want = strcmp(#f, field) == 0 ? delta : 0, got = now.f - before->st.f;                  \
    if (got != want) fail_msg("%s: %s grew by %" PRIu64 ", want %" PRIu64, what, #f, got, want);     \
  }
  REJECT_FIELDS(CHK_)
#undef CHK_
}

/* Refused, counted where it belongs, nothing stored changed. */
static inline void expect_refused(vs_node *node, const snap *before, const char *field, uint64_t delta, const char *what) {
  expect_only(node, before, field, delta, what);
  snap_same_store(node, before);
}

/* ---- a fake peer that knows the mesh key, driving wire.h by hand ---- */

typedef struct fake {
  uint32_t handle;
  vs_identity id;
  uint8_t mesh[VS_MESH_KEY_BYTES];
  vs_hs hs;
  vs_session sess;
  uint8_t hello[VS_HELLO_BYTES], cookie[VS_COOKIE_FRAME_BYTES], hello2[VS_HELLO2_BYTES];
  uint8_t reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
} fake;

static inline void fake_init(fake *f, uint32_t handle, uint8_t id_byte) {
  memset(f, 0, sizeof *f);
  f->handle = handle;
  vt_identity_from_byte(id_byte, &f->id);
  memset(f->mesh, 0x5a, VS_MESH_KEY_BYTES);
}

/* The fake dials node `i` and completes the handshake as initiator. */
static inline void fake_dial(bench *t, fake *f, uint32_t i) {
  vs_node *node = t->h.nodes[i];
  assert_err(vs_node_peer_up(node, f->handle, false, t->h.now_ms), VS_OK);
  uint8_t eph[32];
  vt_sm_fill(&t->h.rng, eph, sizeof eph);
  size_t len = 0;
  assert_err(vs_hs_start_initiator(&f->hs, &f->id, f->mesh, eph, f->hello, sizeof f->hello, &len), VS_OK);
  assert_err(vt_node_on_frame(node, f->handle, f->hello, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  bool close = false, done = false;
  /* The cookie round: COOKIE back, HELLO2 echoes it. */
  assert_true(cap_take(t, i, f->handle, &close, f->cookie, sizeof f->cookie, &len));
  assert_false(close);
  assert_int_equal(len, VS_COOKIE_FRAME_BYTES);
  assert_err(vs_hs_on_frame(&f->hs, f->cookie, len, f->hello2, sizeof f->hello2, &len, &done, &f->sess), VS_OK);
  assert_false(done);
  assert_int_equal(len, VS_HELLO2_BYTES);
  assert_err(vt_node_on_frame(node, f->handle, f->hello2, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, i, f->handle, &close, f->reply, sizeof f->reply, &len));
  assert_false(close);
  assert_int_equal(len, VS_REPLY_BYTES);
  assert_err(vs_hs_on_frame(&f->hs, f->reply, len, f->auth, sizeof f->auth, &len, &done, &f->sess), VS_OK);
  assert_true(done);
  assert_memory_equal(f->sess.peer_id, t->h.ids[i].pk, VS_ORIGIN_BYTES);
  assert_err(vt_node_on_frame(node, f->handle, f->auth, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  /* The node greets a ready peer with its version vector. */
  uint8_t buf[8192], msg[8192];
  size_t msg_len = 0;
  assert_true(cap_take(t, i, f->handle, &close, buf, sizeof buf, &len));
  assert_false(close);
  assert_err(vs_session_open(&f->sess, buf, len, msg, sizeof msg, &msg_len), VS_OK);
  assert_int_equal(msg[0], VS_MSG_VV);
  /* The fake's own first vector, as every node sends one: empty, asking
   * for runs (wire v6: a node pushes nothing to a peer whose vector has
   * not come, and runs go only along the spanning tree unless asked). */
  vs_vv_part part = {1, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&part, NULL, 0, msg, sizeof msg, &msg_len), VS_OK);
  assert_err(vs_session_seal(&f->sess, msg, msg_len, buf, sizeof buf, &len), VS_OK);
  assert_err(vt_node_on_frame(node, f->handle, buf, len, t->h.now_ms), VS_OK);
}

/* Seal `msg` with the fake's session into frame_out. */
static inline size_t fake_seal(fake *f, const uint8_t *msg, size_t len, uint8_t *frame_out, size_t max) {
  size_t out = 0;
  assert_err(vs_session_seal(&f->sess, msg, len, frame_out, max, &out), VS_OK);
  return out;
}

/* ---- building operations and OPS messages as an origin ---- */

typedef struct chain {
  vs_identity id;
  uint64_t seq, hlc;
  uint8_t head[VS_HASH_BYTES];
} chain;

typedef struct encop {
  uint8_t enc[512];
  uint32_t len;
  uint8_t hash[VS_HASH_BYTES];
  uint64_t seq;
} encop;

static inline void chain_init(chain *c, const vs_identity *id) {
  memset(c, 0, sizeof *c);
  c->id = *id;
  c->hlc = vs_hlc_make(T0_MS, 0);
}

/* The next op of the chain (origin = `origin`, normally the chain's own). */
static inline void chain_op(chain *c, const uint8_t origin[VS_ORIGIN_BYTES], const char *kind, const char *target,
                            const char *payload, encop *out) {
  vs_op op;
  c->seq++;
  c->hlc++;
  assert_err(vs_op_init(&op, origin, c->seq, c->hlc, c->head, kind, (const uint8_t *)target,
                        (uint32_t)strlen(target), (const uint8_t *)payload, (uint32_t)strlen(payload)),
             VS_OK);
  size_t len = 0;
  assert_err(vs_op_encode(&op, out->enc, sizeof out->enc, &len), VS_OK);
  out->len = (uint32_t)len;
  out->seq = c->seq;
  vs_op_hash_encoded(out->enc, len, out->hash);
  memcpy(c->head, out->hash, VS_HASH_BYTES);
}

/* One OPS message with one run of ops[0..count), signed by `signer` over the
 * last op (as seq, hash). */
static inline size_t ops_msg(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                             const encop *ops, uint32_t count, uint8_t *out, size_t max) {
  const uint8_t *encs[16];
  uint32_t lens[16];
  assert_true(count <= 16);
  for (uint32_t k = 0; k < count; k++) {
    encs[k] = ops[k].enc;
    lens[k] = ops[k].len;
  }
  vs_ops_writer w;
  size_t len = 0;
  assert_err(vs_ops_writer_init(&w, out, max), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, origin, sig, encs, lens, count), VS_OK);
  assert_err(vs_ops_writer_finish(&w, &len), VS_OK);
  return len;
}

static inline void sign_last(const vs_identity *signer, const encop *last, uint8_t sig[VS_SIGNATURE_BYTES]) {
  vs_chain_sign(signer, last->seq, last->hash, sig);
}

/* A and B (nodes 0 and 1) still sync: a write on each reaches the other. */
static inline void expect_legit_sync(bench *t, const char *tag) {
  char target[32];
  snprintf(target, sizeof target, "legit-%s", tag);
  vt_node_write_kv(t->h.nodes[1], t->h.now_ms, "put", target, "from-b");
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "incr", "legit-counter", "1");
  bench_run(t, 3000);
  snap a, b;
  snap_take(t->h.nodes[0], &a);
  snap_take(t->h.nodes[1], &b);
  if (memcmp(a.hash, b.hash, VS_HASH_BYTES) != 0 || strcmp(a.vv.text, b.vv.text) != 0)
    fail_msg("after %s: A and B no longer converge (A %s / B %s)", tag, a.vv.text, b.vv.text);
}

static inline bench *bench_secure(fake *f) {
  bench *t = bench_new(2);
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "a", "1");
  vt_node_write_kv(t->h.nodes[1], t->h.now_ms, "put", "b", "2");
  bench_run(t, 2000);
  fake_init(f, FAKE_HANDLE, 0x77);
  fake_dial(t, f, 0);
  caps_clear(t);
  return t;
}

/* Send one run as the fake; returns what the node said. */
static inline vs_err fake_send_run(bench *t, fake *f, const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t *sig,
                                   const encop *ops, uint32_t count) {
  uint8_t msg[8192], frame[8192];
  size_t mlen = ops_msg(origin, sig, ops, count, msg, sizeof msg);
  size_t flen = fake_seal(f, msg, mlen, frame, sizeof frame);
  return vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms);
}

typedef struct grab {
  const uint8_t *origin;
  uint64_t lo;
  encop *out;
} grab;

static inline vs_err grab_cb(const vs_wal_record *rec, void *ctx) {
  grab *g = ctx;
  if (memcmp(rec->op.origin, g->origin, VS_ORIGIN_BYTES) != 0) return VS_OK;
  if (rec->op.seq < g->lo || rec->op.seq > g->lo + 1) return VS_OK;
  encop *e = &g->out[rec->op.seq - g->lo];
  size_t len = 0;
  vs_err err = vs_op_encode(&rec->op, e->enc, sizeof e->enc, &len);
  e->len = (uint32_t)len;
  e->seq = rec->op.seq;
  memcpy(e->hash, rec->op_hash, VS_HASH_BYTES);
  return err;
}

/* The last two ops of `origin` in `store` and the signature at the last. */
static inline void grab_ops(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], encop out[2],
                            uint8_t sig[VS_SIGNATURE_BYTES]) {
  uint64_t last = 0;
  assert_err(vs_wal_head(store, origin, &last, NULL, NULL), VS_OK);
  assert_true(last >= 2);
  vs_op_id id;
  vs_op_id_derive(origin, last, &id);
  assert_err(vs_apply_sig_get(store, &id, sig), VS_OK);
  memset(out, 0, 2 * sizeof *out);
  grab g = {origin, last - 1, out};
  assert_err(vs_wal_replay(store, 1, grab_cb, &g), VS_OK);
  assert_int_equal(out[0].seq, last - 1);
  assert_int_equal(out[1].seq, last);
}

/* Apply a twin's run straight to node i's store (before it opens again). */
static inline void store_run(bench *t, uint32_t i, const encop *ops, uint32_t count, const uint8_t *sig) {
  vs_op op[16];
  assert_true(count <= 16);
  for (uint32_t k = 0; k < count; k++) assert_err(vs_op_decode(ops[k].enc, ops[k].len, &op[k]), VS_OK);
  vs_apply_result r;
  assert_err(vs_apply_run(vs_node_store(t->h.nodes[i]), op, count, sig, t->h.now_ms, VS_MAX_DRIFT_MS_DEFAULT, &r), VS_OK);
  assert_int_equal(r.applied, count);
}

/* ---- vectors that claim our own ops beyond our head (issue 14, item 6) ---- */

/* The fake tells node 0 its vector: one entry, `origin` at `seq`. */
static inline void fake_send_vv1(bench *t, fake *f, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  vs_vv_entry e;
  memset(&e, 0, sizeof e); /* the head too (zero: whatever op is at seq) */
  memcpy(e.origin, origin, VS_ORIGIN_BYTES);
  e.seq = seq;
  uint8_t msg[256], frame[512];
  size_t len = 0;
  static uint64_t vector = 1000; /* each vector a fake sends has a higher number */
  vs_vv_part part = {++vector, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&part, &e, 1, msg, sizeof msg, &len), VS_OK);
  size_t flen = fake_seal(f, msg, len, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_OK);
}

/* The fake sends node 0 a run of `c`'s next ops (the chain's identity
 * signs), `count` of them. */
static inline void fake_send_chain(bench *t, fake *f, chain *c, uint32_t count) {
  encop ops[8];
  assert_true(count <= 8);
  for (uint32_t k = 0; k < count; k++) chain_op(c, c->id.pk, "put", "restored", "v", &ops[k]);
  uint8_t sig[VS_SIGNATURE_BYTES], msg[8192], frame[8192 + VS_DATA_OVERHEAD_BYTES];
  sign_last(&c->id, &ops[count - 1], sig);
  size_t len = ops_msg(c->id.pk, sig, ops, count, msg, sizeof msg);
  size_t flen = fake_seal(f, msg, len, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_OK);
}

static inline uint64_t restoring(bench *t) {
  uint64_t to = 99;
  assert_err(vs_write_restoring(vs_node_store(t->h.nodes[0]), &to), VS_OK);
  return to;
}

/* One OPS message per call: runs of one op each, from fresh identities
 * (seeds from *next on), signed. Returns the message length. */
static inline size_t flood_msg(uint32_t *next, uint32_t runs, uint8_t *out, size_t max) {
  vs_ops_writer w;
  size_t len = 0;
  assert_err(vs_ops_writer_init(&w, out, max), VS_OK);
  for (uint32_t r = 0; r < runs; r++) {
    uint8_t seed[VS_SEED_BYTES] = {0};
    uint32_t k = (*next)++;
    memcpy(seed, &k, sizeof k);
    seed[31] = 0xf1;
    vs_identity id;
    assert_err(vs_identity_from_seed(seed, &id), VS_OK);
    chain c;
    chain_init(&c, &id);
    encop op;
    chain_op(&c, id.pk, "put", "flood", "x", &op);
    uint8_t sig[VS_SIGNATURE_BYTES];
    sign_last(&id, &op, sig);
    const uint8_t *enc = op.enc;
    assert_err(vs_ops_writer_add_run(&w, id.pk, sig, &enc, &op.len, 1), VS_OK);
  }
  assert_err(vs_ops_writer_finish(&w, &len), VS_OK);
  return len;
}

/* The fake pushes `total` runs of fresh origins to node 0, 500 a message. */
static inline void flood(bench *t, fake *f, uint32_t total) {
  uint8_t *msg = malloc(VS_MSG_BYTES_MAX), *frame = malloc(VS_FRAME_BYTES_MAX);
  assert_non_null(msg);
  assert_non_null(frame);
  uint32_t next = 0;
  while (next < total) {
    uint32_t runs = total - next < 500 ? total - next : 500;
    size_t mlen = flood_msg(&next, runs, msg, VS_MSG_BYTES_MAX);
    size_t flen = fake_seal(f, msg, mlen, frame, VS_FRAME_BYTES_MAX);
    assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_OK);
  }
  free(msg);
  free(frame);
}

#endif /* VIXSYNC_NODE_BENCH_H */
