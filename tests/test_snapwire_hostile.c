/* Hostile peers and snapshots over a session (src/node_snap.c; wire.h,
 * BEHIND .. SNAPACK; docs/protocol.md "Snapshots over a session").
 *
 * A managed mesh of real vs_nodes (tests/mesh_harness.h): nodes 0, 1, 2
 * are members, write, acknowledge and compact; node 3 joins afterwards and
 * is a fresh device (its store holds only its own admission). Then node 2
 * is taken over: a fake peer with its identity and mesh key (a compromised
 * member) drives wire.h by hand against node 0 (a compacted member: the
 * sending side) or node 3 (the fresh device: the receiving side). It lies
 * about being behind, floods requests, never acknowledges, sends chunks
 * unrequested, out of order, too large, tampered, truncated, of another
 * mesh, or stops half way. Each is refused or bounded and counted, nothing
 * is installed, and a node behind a horizon gets BEHIND, never a partial
 * stream. Time is virtual. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "fixture.h"
#include "internal.h"
#include "mesh_harness.h"
/* Invites that expire soon: a member's ops compact only once no other
 * admission can take its invite (compact_final.h). */
#define MN_INVITE_MS 2000ull
#include "member_nodes.h"
#include "snap_buf.h"
#include "wire.h"
#include "vixsync/snapshot.h"

#define FAKE 9u /* the fake peer's handle on its target */
#define CAP_MAX 64u
#define RUNS_MAX 256u
#define SNAP_MAX_TEST (512u * 1024u) /* node 3's snap_bytes_max */

typedef struct fake {
  vs_identity id;
  uint8_t mesh[VS_MESH_KEY_BYTES];
  uint32_t target; /* the node it talks to */
  vs_hs hs;
  vs_session sess;
  uint8_t cap[CAP_MAX][VS_HS_FRAME_BYTES_MAX];
  size_t cap_len[CAP_MAX];
  uint32_t cap_n, cap_read;
  bool closed, ready;
  /* What the target sent it, once ready. */
  uint64_t behinds, snapreqs, declines, chunks, chunk_bytes, snapacks, ops_msgs, acks_msgs;
  uint64_t last_req_id, last_ack;
  vs_behind_entry behind[8];
  uint32_t behind_n;
  /* Runs received: origin and first seq. */
  uint8_t run_origin[RUNS_MAX][VS_ORIGIN_BYTES];
  uint64_t run_first[RUNS_MAX];
  uint32_t runs;
  /* The snapshot bytes streamed to it. */
  vt_snap_buf got;
} fake;

static vs_err seen_run(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                       const vs_op *ops, uint32_t count, void *ctx) {
  (void)sig;
  (void)count;
  fake *f = ctx;
  if (f->runs < RUNS_MAX) {
    memcpy(f->run_origin[f->runs], origin, VS_ORIGIN_BYTES);
    f->run_first[f->runs++] = ops[0].seq;
  }
  return VS_OK;
}

static void seen_msg(fake *f, const uint8_t *msg, size_t len) {
  if (len == 0) return;
  if (msg[0] == VS_MSG_BEHIND) {
    f->behinds++;
    assert_err(vs_msg_behind_decode(msg, len, f->behind, 8, &f->behind_n), VS_OK);
  } else if (msg[0] == VS_MSG_SNAPREQ) {
    f->snapreqs++;
    assert_err(vs_msg_snapreq_decode(msg, len, &f->last_req_id), VS_OK);
  } else if (msg[0] == VS_MSG_SNAPCHUNK) {
    vs_snapchunk c;
    assert_err(vs_msg_snapchunk_decode(msg, len, &c), VS_OK);
    if (c.total == 0) {
      f->declines++;
      return;
    }
    f->chunks++;
    f->chunk_bytes += c.len;
    assert_int_equal(c.offset, f->got.len); /* in order */
    assert_err(vt_snap_write(&f->got, c.bytes, c.len), VS_OK);
  } else if (msg[0] == VS_MSG_SNAPACK) {
    uint64_t id = 0;
    f->snapacks++;
    assert_err(vs_msg_snapack_decode(msg, len, &id, &f->last_ack), VS_OK);
  } else if (msg[0] == VS_MSG_ACKS) {
    f->acks_msgs++;
  } else if (msg[0] == VS_MSG_OPS) {
    f->ops_msgs++;
    assert_err(vs_msg_ops_decode(msg, len, seen_run, f), VS_OK);
  }
}

static bool capture(mh_mesh *m, uint32_t from, const vs_node_out *out) {
  fake *f = m->ctx;
  if (from != f->target || out->peer != FAKE) return false;
  if (out->kind == VS_NODE_OUT_CLOSE) {
    f->closed = true;
    f->ready = false;
    return true;
  }
  if (f->ready) {
    uint8_t *msg = malloc(out->bytes_len);
    size_t len = 0;
    assert_non_null(msg);
    if (vs_session_open(&f->sess, out->bytes, out->bytes_len, msg, out->bytes_len, &len) == VS_OK)
      seen_msg(f, msg, len);
    free(msg);
    return true;
  }
  if (out->bytes_len <= VS_HS_FRAME_BYTES_MAX && f->cap_n < CAP_MAX) {
    memcpy(f->cap[f->cap_n], out->bytes, out->bytes_len);
    f->cap_len[f->cap_n++] = out->bytes_len;
  }
  return true;
}

static size_t take(fake *f, uint8_t *out) {
  assert_true(f->cap_read < f->cap_n);
  size_t len = f->cap_len[f->cap_read];
  memcpy(out, f->cap[f->cap_read++], len);
  return len;
}

/* The fake (node 2's identity and key) dials `target` and completes the
 * handshake as initiator. A session already up is taken down first. */
static void fake_dial(mh_mesh *m, fake *f, uint32_t target) {
  if (f->ready || f->cap_n > 0) (void)vs_node_peer_down(m->nodes[f->target], FAKE, m->now_ms);
  f->target = target;
  f->cap_n = f->cap_read = 0;
  f->closed = false;
  f->ready = false;
  assert_err(vs_node_peer_up(m->nodes[target], FAKE, false, m->now_ms), VS_OK);
  uint8_t eph[32], frame[VS_HS_FRAME_BYTES_MAX], out[VS_HS_FRAME_BYTES_MAX];
  vt_sm_fill(&m->rng, eph, sizeof eph);
  size_t len = 0, got;
  bool done = false;
  assert_err(vs_hs_start_initiator(&f->hs, &f->id, f->mesh, eph, out, sizeof out, &len), VS_OK);
  assert_err(mh_deliver(m, target, FAKE, out, len), VS_OK);
  mh_pump(m);
  got = take(f, frame); /* COOKIE */
  assert_err(vs_hs_on_frame(&f->hs, frame, got, out, sizeof out, &len, &done, &f->sess), VS_OK);
  assert_err(mh_deliver(m, target, FAKE, out, len), VS_OK); /* HELLO2 */
  mh_pump(m);
  got = take(f, frame); /* REPLY */
  assert_err(vs_hs_on_frame(&f->hs, frame, got, out, sizeof out, &len, &done, &f->sess), VS_OK);
  assert_true(done);
  f->ready = true;
  assert_err(mh_deliver(m, target, FAKE, out, len), VS_OK); /* AUTH */
  mh_pump(m);
  assert_false(f->closed);
}

/* Seal and deliver one message from the fake. */
static vs_err fake_send(mh_mesh *m, fake *f, const uint8_t *msg, size_t len) {
  size_t cap = len + VS_DATA_OVERHEAD_BYTES, out = 0;
  uint8_t *frame = malloc(cap);
  assert_non_null(frame);
  assert_err(vs_session_seal(&f->sess, msg, len, frame, cap, &out), VS_OK);
  vs_err err = mh_deliver(m, f->target, FAKE, frame, out);
  free(frame);
  mh_pump(m);
  return err;
}

static vs_err send_behind(mh_mesh *m, fake *f, const vs_behind_entry *e, uint32_t n) {
  uint8_t buf[VS_MSG_BEHIND_HEADER_BYTES + 8 * VS_BEHIND_ENTRY_BYTES];
  size_t len = 0;
  assert_err(vs_msg_behind_encode(e, n, buf, sizeof buf, &len), VS_OK);
  return fake_send(m, f, buf, len);
}

static vs_err send_snapreq(mh_mesh *m, fake *f, uint64_t id) {
  uint8_t buf[VS_MSG_SNAPREQ_BYTES];
  size_t len = 0;
  assert_err(vs_msg_snapreq_encode(id, buf, sizeof buf, &len), VS_OK);
  return fake_send(m, f, buf, len);
}

static vs_err send_chunk(mh_mesh *m, fake *f, uint64_t id, uint64_t total, uint64_t offset, const uint8_t *bytes,
                         size_t n) {
  uint8_t *buf = malloc(VS_MSG_SNAPCHUNK_HEADER_BYTES + n);
  assert_non_null(buf);
  vs_snapchunk c = {id, total, offset, bytes, n};
  size_t len = 0;
  assert_err(vs_msg_snapchunk_encode(&c, buf, VS_MSG_SNAPCHUNK_HEADER_BYTES + n, &len), VS_OK);
  vs_err err = fake_send(m, f, buf, len);
  free(buf);
  return err;
}

/* A whole snapshot in chunks of 1000 bytes (several chunks even for a small one). */
static void send_snapshot(mh_mesh *m, fake *f, uint64_t id, const uint8_t *p, size_t len) {
  for (size_t at = 0; at < len; at += 1000) {
    size_t part = len - at < 1000 ? len - at : 1000;
    assert_err(send_chunk(m, f, id, len, at, p + at, part), VS_OK);
  }
}

/* An empty vector from the fake: it holds nothing (below every horizon). */
static vs_err send_empty_vv(mh_mesh *m, fake *f, uint64_t number) {
  uint8_t buf[VS_MSG_VV_HEADER_BYTES];
  size_t len = 0;
  vs_vv_part part = {number, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&part, NULL, 0, buf, sizeof buf, &len), VS_OK);
  return fake_send(m, f, buf, len);
}

static void compacting(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  cfg->compact_every_ms = i < 3 ? 5000 : 0;
  cfg->compact_after_ops = 0;
  if (i == 3) cfg->snap_bytes_max = SNAP_MAX_TEST;
  if (i == 3) cfg->snap_timeout_ms = 10000; /* a stall ends before the fake's probation there (30 s) */
}

static uint64_t horizon(mh_mesh *m, uint32_t i, uint32_t origin) {
  MDB_txn *txn;
  vs_horizon h;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  assert_err(vs_horizon_get(txn, mn_store(m, i), m->ids[origin].pk, &h), VS_OK);
  mdb_txn_abort(txn);
  return h.seq;
}

/* Node 0's horizon of `origin` as a BEHIND entry. */
static vs_behind_entry horizon_entry(mh_mesh *m, uint32_t origin) {
  MDB_txn *txn;
  vs_horizon h;
  assert_err(vs_txn_begin(mn_store(m, 0), false, &txn), VS_OK);
  assert_err(vs_horizon_get(txn, mn_store(m, 0), m->ids[origin].pk, &h), VS_OK);
  mdb_txn_abort(txn);
  vs_behind_entry e;
  memcpy(e.origin, m->ids[origin].pk, VS_ORIGIN_BYTES);
  e.seq = h.seq;
  memcpy(e.hash, h.hash, sizeof e.hash);
  return e;
}

/* Nodes 0..2 write, acknowledge and compact; node 3 joins with node 0's
 * invite (fresh: no link); node 2 is closed and replaced by the fake. */
static void setup(mh_mesh *m, fake *f, const char *tag) {
  mn_mesh(m, 4, 3, NULL, tag, 0xe1, 41, compacting);
  mh_connect(m, 0, 1);
  mh_connect(m, 0, 2);
  mh_connect(m, 1, 2);
  mh_run_for(m, 2500); /* past the invites' expiry: the writes move the clocks past it */
  char t[16], v[80];
  for (uint32_t k = 0; k < 120; k++) {
    snprintf(t, sizeof t, "t%u", k % 60);
    snprintf(v, sizeof v, "value %u of a target, long enough to make the snapshot several chunks", k);
    mh_write(m, k % 3, "put", t, v);
    if (k % 16 == 15) mh_run_for(m, 10);
  }
  mh_run_for(m, 30000);
  for (uint32_t o = 0; o < 3; o++) assert_true(horizon(m, 0, o) > 0);
  mn_join(m, 0, 3, VS_MESH_WRITER);
  mh_run_for(m, 100);
  mh_disconnect(m, 2, 0);
  mh_disconnect(m, 2, 1);
  mh_close(m, 2);
  memset(f, 0, sizeof *f);
  f->id = m->ids[2];
  memcpy(f->mesh, m->keys[2], VS_MESH_KEY_BYTES);
  m->ctx = f;
  m->intercept = capture;
}

static void teardown(mh_mesh *m, fake *f) {
  free(f->got.p);
  mh_free(m);
}

#define DELTA(before, i, field) (mn_stats(&m, (i)).field - (before).field)

/* The store's own view of itself, to see that nothing changed. */
typedef struct look {
  uint8_t hash[VS_HASH_BYTES];
  uint64_t head0;
} look;

static look look_at(mh_mesh *m, uint32_t i) {
  look l;
  mh_state_hash(m, i, l.hash);
  l.head0 = mn_head(m, i, 0);
  return l;
}

static void expect_unchanged(mh_mesh *m, uint32_t i, const look *before) {
  look now = look_at(m, i);
  assert_memory_equal(now.hash, before->hash, VS_HASH_BYTES);
  assert_int_equal(now.head0, before->head0);
}

/* ---- the sending side: node 0 (compacted) ---- */

/* A peer below our horizon gets BEHIND and not one run of the compacted
 * chains (not even their membership prefix: never a partial stream). It
 * is served one snapshot, in order, within the window; requests while it
 * is in flight are counted and not answered; a peer that never
 * acknowledges loses it after snap_timeout_ms (the buffer freed: a new
 * request is served again once the rate allows). */
static void test_behind_never_partial_flood_bounded(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-send");
  fake_dial(&m, &f, 0);
  /* Not told BEHIND yet: a request is declined. */
  vs_node_stats s0 = mn_stats(&m, 0);
  assert_err(send_snapreq(&m, &f, 7), VS_OK);
  assert_int_equal(f.declines, 1);
  assert_int_equal(DELTA(s0, 0, snap_requests_refused), 1);
  assert_int_equal(DELTA(s0, 0, snap_served), 0);
  /* It claims to hold nothing: BEHIND for every compacted origin, no run of them. */
  assert_err(send_empty_vv(&m, &f, 1), VS_OK);
  mh_run_for(&m, 50);
  assert_true(f.behinds >= 1);
  assert_true(mn_stats(&m, 0).snap_behind_sent >= 1);
  assert_int_equal(f.behind_n, 3);
  for (uint32_t k = 0; k < f.runs; k++)
    for (uint32_t o = 0; o < 3; o++)
      assert_false(memcmp(f.run_origin[k], m.ids[o].pk, VS_ORIGIN_BYTES) == 0 && f.run_first[k] <= horizon(&m, 0, o));
  for (uint32_t k = 0; k < f.behind_n; k++) {
    bool named = false;
    for (uint32_t o = 0; o < 3; o++)
      named = named || (memcmp(f.behind[k].origin, m.ids[o].pk, VS_ORIGIN_BYTES) == 0 &&
                        f.behind[k].seq == horizon(&m, 0, o));
    assert_true(named);
  }
  /* One request served; a flood of others while it is in flight: counted,
   * unanswered, nothing more made. */
  s0 = mn_stats(&m, 0);
  assert_err(send_snapreq(&m, &f, 8), VS_OK);
  assert_int_equal(DELTA(s0, 0, snap_served), 1);
  assert_true(f.chunks >= 1);
  uint64_t declines = f.declines, chunks = f.chunks;
  for (uint64_t id = 9; id < 109; id++) assert_err(send_snapreq(&m, &f, id), VS_OK);
  assert_int_equal(DELTA(s0, 0, snap_served), 1);
  assert_int_equal(DELTA(s0, 0, snap_requests_refused), 100);
  assert_int_equal(f.declines, declines);
  assert_int_equal(f.chunks, chunks); /* nothing resent: the window waits for an acknowledgement */
  /* The fake never acknowledges: after the timeout the transfer is gone. */
  mh_run_for(&m, 31000);
  assert_int_equal(DELTA(s0, 0, snap_timeouts), 1);
  if (f.closed) fake_dial(&m, &f, 0); /* (node 0 keeps the session: it is a member) */
  /* An acknowledgement of a transfer that is over, or of bytes never sent: ignored, counted. */
  uint8_t ack[VS_MSG_SNAPACK_BYTES];
  size_t len = 0;
  assert_err(vs_msg_snapack_encode(8, 1u << 30, ack, sizeof ack, &len), VS_OK);
  vs_node_stats s1 = mn_stats(&m, 0);
  assert_err(fake_send(&m, &f, ack, len), VS_OK);
  assert_int_equal(DELTA(s1, 0, snap_rejected), 1);
  mh_free(&m);
  free(f.got.p);
}

/* A snapshot served whole, acknowledged chunk by chunk, is the maker's
 * snapshot: it installs into a fresh store. The same identity asking again
 * at once is declined (the rate per identity). */
static void test_served_snapshot_installs(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-serve");
  fake_dial(&m, &f, 0);
  assert_err(send_empty_vv(&m, &f, 1), VS_OK);
  mh_run_for(&m, 50);
  assert_true(f.behinds >= 1);
  vs_node_stats s0 = mn_stats(&m, 0);
  assert_err(send_snapreq(&m, &f, 1), VS_OK);
  uint8_t ack[VS_MSG_SNAPACK_BYTES];
  size_t len = 0;
  for (uint32_t round = 0; round < 64 && f.got.len > 0; round++) { /* bounded: the snapshot's chunks */
    uint64_t had = f.got.len;
    assert_err(vs_msg_snapack_encode(1, had, ack, sizeof ack, &len), VS_OK);
    assert_err(fake_send(&m, &f, ack, len), VS_OK);
    mh_run_for(&m, 10);
    if (f.got.len == had) break;
  }
  assert_int_equal(DELTA(s0, 0, snap_bytes_sent), f.got.len);
  assert_int_equal(DELTA(s0, 0, snap_timeouts), 0);
  /* Node 3 (fresh) takes it by hand: it is a valid snapshot. */
  mh_close(&m, 3);
  vs_store *st = NULL;
  assert_err(vt_store_open(m.dirs[3], 64ull << 20, &st), VS_OK);
  assert_err(vs_store_set_identity(st, &m.ids[3]), VS_OK);
  f.got.at = 0;
  assert_err(vs_snapshot_install(st, vt_snap_read, &f.got, m.now_ms, NULL), VS_OK);
  vs_store_close(st);
  mh_open(&m, 3, 0);
  /* Asking again at once: declined (one per identity per interval). */
  uint64_t declines = f.declines;
  assert_err(send_snapreq(&m, &f, 2), VS_OK);
  assert_int_equal(f.declines, declines + 1);
  teardown(&m, &f);
}

/* ---- the receiving side ---- */

/* BEHIND that lies (we hold every origin named up to the horizon named):
 * ignored, counted, nothing requested. BEHIND to a store that holds other
 * origins' ops (node 0: not fresh): counted, logged, the rebase seam told,
 * nothing requested, however often it comes. */
static void test_behind_lies_and_stuck(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-lies");
  /* A snapshot of node 1 that node 0 will have outgrown: node 1 writes on. */
  vt_snap_buf stale;
  memset(&stale, 0, sizeof stale);
  assert_err(vs_snapshot_make(mn_store(&m, 1), vt_snap_write, &stale, NULL), VS_OK);
  for (uint32_t k = 0; k < 8; k++) mh_write(&m, 1, "put", "later", k % 2 ? "x" : "y");
  mh_run_for(&m, 2000);
  fake_dial(&m, &f, 0);
  look before = look_at(&m, 0);
  vs_node_stats s0 = mn_stats(&m, 0);
  vs_behind_entry e = horizon_entry(&m, 1); /* node 0 holds node 1's chain past its own horizon */
  assert_err(send_behind(&m, &f, &e, 1), VS_OK);
  assert_int_equal(DELTA(s0, 0, snap_behind_received), 1);
  assert_int_equal(DELTA(s0, 0, snap_behind_false), 1);
  assert_int_equal(f.snapreqs, 0);
  /* True in its numbers (a horizon past our head) but node 0 holds data:
   * one request per session, for a rebase; a snapshot that anchors a
   * chain below what node 0 holds (an old one, validly signed) would roll
   * it back: refused, nothing changed. */
  e.seq = mn_head(&m, 0, 1) + 1000;
  for (uint32_t k = 0; k < 20; k++) assert_err(send_behind(&m, &f, &e, 1), VS_OK);
  assert_int_equal(DELTA(s0, 0, snap_behind_stuck), 20);
  assert_int_equal(DELTA(s0, 0, snap_requests_sent), 1);
  assert_int_equal(f.snapreqs, 1);
  send_snapshot(&m, &f, f.last_req_id, stale.p, stale.len);
  free(stale.p);
  assert_int_equal(DELTA(s0, 0, snap_install_failed), 1);
  assert_int_equal(DELTA(s0, 0, snap_rebases), 0);
  assert_int_equal(DELTA(s0, 0, snap_installs), 0);
  expect_unchanged(&m, 0, &before);
  /* A malformed BEHIND (origins out of order) is refused as such. */
  uint8_t bad[VS_MSG_BEHIND_HEADER_BYTES + 2 * VS_BEHIND_ENTRY_BYTES];
  vs_behind_entry two[2] = {horizon_entry(&m, 0), horizon_entry(&m, 1)};
  size_t len = 0;
  if (memcmp(two[0].origin, two[1].origin, VS_ORIGIN_BYTES) > 0) {
    vs_behind_entry t = two[0];
    two[0] = two[1];
    two[1] = t;
  }
  assert_err(vs_msg_behind_encode(two, 2, bad, sizeof bad, &len), VS_OK);
  memcpy(bad + VS_MSG_BEHIND_HEADER_BYTES, two[1].origin, VS_ORIGIN_BYTES); /* first origin = second: no order */
  assert_err(fake_send(&m, &f, bad, len), VS_ERR_MALFORMED);
  teardown(&m, &f);
}

/* One op of node 0's chain at `seq` after `prev`, signed by node 0's key
 * (a second device of its identity), encoded into `enc`. */
static void own_op(mh_mesh *m, uint64_t seq, const uint8_t prev[VS_HASH_BYTES], uint64_t hlc, const char *value,
                   uint8_t *enc, uint32_t *len, uint8_t sig[VS_SIGNATURE_BYTES]) {
  vs_op op;
  assert_err(vs_op_init(&op, m->ids[0].pk, seq, hlc, prev, "put", (const uint8_t *)"twin", 4, (const uint8_t *)value,
                        (uint32_t)strlen(value)),
             VS_OK);
  size_t n = 0;
  assert_err(vs_op_encode(&op, enc, 512, &n), VS_OK);
  *len = (uint32_t)n;
  uint8_t hash[VS_HASH_BYTES];
  vs_op_hash_encoded(enc, n, hash);
  vs_chain_sign(&m->ids[0], seq, hash, sig);
}

/* A store whose own identity is forked (two devices wrote two branches:
 * it holds the verdict) and that the mesh compacted past (a BEHIND naming
 * a horizon past what it holds): it can never rebase (VS_ERR_FORKED), so
 * it asks for no snapshot, however often it is told; counted as stuck.
 * (vix-sim --managed --equivocate seeds 228, 263, 385: the stranded twin
 * fetched snapshots only to refuse them.) */
static void test_behind_forked_identity_asks_nothing(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-forked");
  fake_dial(&m, &f, 0);
  uint64_t h = 0, hlc = 0;
  uint8_t prev[VS_HASH_BYTES];
  assert_err(vs_wal_head(mn_store(&m, 0), m.ids[0].pk, &h, prev, &hlc), VS_OK);
  uint8_t e1[512], e2[512], s1[VS_SIGNATURE_BYTES], s2[VS_SIGNATURE_BYTES];
  uint32_t l1 = 0, l2 = 0;
  own_op(&m, h + 1, prev, hlc + 1, "one", e1, &l1, s1);
  own_op(&m, h + 1, prev, hlc + 1, "two", e2, &l2, s2);
  const uint8_t *p1[1] = {e1}, *p2[1] = {e2};
  vs_fork_proof pr[2] = {{s1, 1, p1, &l1, NULL}, {s2, 1, p2, &l2, NULL}};
  uint8_t msg[2048];
  size_t mlen = 0;
  assert_err(vs_msg_fork_encode(m.ids[0].pk, h + 1, pr, msg, sizeof msg, &mlen), VS_OK);
  assert_err(fake_send(&m, &f, msg, mlen), VS_OK);
  uint64_t void_from = 0;
  assert_err(vs_store_fork_get(mn_store(&m, 0), m.ids[0].pk, &void_from), VS_OK);
  assert_int_equal(void_from, h + 1);
  vs_node_stats s0 = mn_stats(&m, 0);
  vs_behind_entry e = horizon_entry(&m, 1);
  e.seq = mn_head(&m, 0, 1) + 1000;
  for (uint32_t k = 0; k < 5; k++) assert_err(send_behind(&m, &f, &e, 1), VS_OK);
  assert_int_equal(DELTA(s0, 0, snap_behind_received), 5);
  assert_int_equal(DELTA(s0, 0, snap_behind_stuck), 5);
  assert_int_equal(DELTA(s0, 0, snap_requests_sent), 0);
  assert_int_equal(f.snapreqs, 0);
  teardown(&m, &f);
}

/* A fresh store told it is behind on its own chain (the mesh holds more
 * of it: a restored copy) asks for a snapshot to rebase onto (its own ops
 * the mesh holds differently become orphans: test_rebase.c). */
static void test_behind_on_own_chain_asks_nothing(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-own");
  fake_dial(&m, &f, 3);
  vs_node_stats s0 = mn_stats(&m, 3);
  vs_behind_entry e[2] = {horizon_entry(&m, 0), horizon_entry(&m, 0)};
  memcpy(e[1].origin, m.ids[3].pk, VS_ORIGIN_BYTES);
  e[1].seq = mn_head(&m, 3, 3) + 5;
  if (memcmp(e[0].origin, e[1].origin, VS_ORIGIN_BYTES) > 0) {
    vs_behind_entry t = e[0];
    e[0] = e[1];
    e[1] = t;
  }
  assert_err(send_behind(&m, &f, e, 2), VS_OK);
  assert_err(send_behind(&m, &f, e, 2), VS_OK);
  assert_int_equal(DELTA(s0, 3, snap_behind_stuck), 2);
  assert_int_equal(DELTA(s0, 3, snap_requests_sent), 1); /* one per session */
  assert_int_equal(f.snapreqs, 1);
  teardown(&m, &f);
}

/* The fake tells fresh node 3 BEHIND (true) and gets a request; returns
 * its id. */
static uint64_t get_request(mh_mesh *m, fake *f) {
  uint64_t reqs = f->snapreqs;
  vs_behind_entry e = horizon_entry(m, 0);
  assert_err(send_behind(m, f, &e, 1), VS_OK);
  assert_int_equal(f->snapreqs, reqs + 1);
  return f->last_req_id;
}

/* A new session after the retry wait: the node asks again. */
static void next_session(mh_mesh *m, fake *f) {
  mh_run_for(m, VS_NODE_SNAP_RETRY_MS + 100);
  fake_dial(m, f, 3);
}

static void make_snapshot(mh_mesh *m, uint32_t i, vt_snap_buf *b, vs_snapshot_info *info) {
  memset(b, 0, sizeof *b);
  assert_err(vs_snapshot_make(mn_store(m, i), vt_snap_write, b, info), VS_OK);
  assert_true(b->len > 3000);
}

/* Chunks unrequested, of another id, out of order, past snap_bytes_max,
 * changing their total; a snapshot tampered with, truncated, of another
 * mesh; a transfer that stops half way: each refused or dropped, counted,
 * nothing installed; one request at a time; then a good one installs and
 * node 3 holds the maker's state. */
static void test_bad_chunks_refused_then_good_installs(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-recv");
  vt_snap_buf snap;
  vs_snapshot_info info;
  make_snapshot(&m, 1, &snap, &info);
  look before = look_at(&m, 3);
  fake_dial(&m, &f, 3);
  vs_node_stats s0 = mn_stats(&m, 3);
  /* Unrequested. */
  assert_err(send_chunk(&m, &f, 1, snap.len, 0, snap.p, 1000), VS_OK);
  assert_int_equal(DELTA(s0, 3, snap_rejected), 1);
  /* Requested; a second BEHIND while it is in flight asks nothing more. */
  uint64_t id = get_request(&m, &f);
  vs_behind_entry e = horizon_entry(&m, 1);
  assert_err(send_behind(&m, &f, &e, 1), VS_OK);
  assert_int_equal(f.snapreqs, 1);
  /* Another id: ignored, the transfer stands. */
  assert_err(send_chunk(&m, &f, id + 1, snap.len, 0, snap.p, 1000), VS_OK);
  assert_int_equal(DELTA(s0, 3, snap_rejected), 2);
  /* Out of order: the transfer is dropped. */
  assert_err(send_chunk(&m, &f, id, snap.len, 0, snap.p, 1000), VS_OK);
  assert_int_equal(f.last_ack, 1000);
  assert_err(send_chunk(&m, &f, id, snap.len, 2000, snap.p + 2000, 1000), VS_OK);
  assert_int_equal(DELTA(s0, 3, snap_rejected), 3);
  assert_err(send_chunk(&m, &f, id, snap.len, 1000, snap.p + 1000, 1000), VS_OK); /* too late: gone */
  assert_int_equal(DELTA(s0, 3, snap_rejected), 4);
  /* That peer is not asked again in this session. */
  e = horizon_entry(&m, 0);
  assert_err(send_behind(&m, &f, &e, 1), VS_OK);
  assert_int_equal(f.snapreqs, 1);
  /* Past snap_bytes_max. */
  next_session(&m, &f);
  id = get_request(&m, &f);
  uint8_t some[1000] = {0};
  assert_err(send_chunk(&m, &f, id, SNAP_MAX_TEST + 1u, 0, some, sizeof some), VS_OK);
  assert_int_equal(DELTA(s0, 3, snap_rejected), 5);
  assert_int_equal(DELTA(s0, 3, snap_bytes_received), 1000); /* the first chunk of the out-of-order one */
  /* Its total changes half way. */
  next_session(&m, &f);
  id = get_request(&m, &f);
  assert_err(send_chunk(&m, &f, id, snap.len, 0, snap.p, 1000), VS_OK);
  assert_err(send_chunk(&m, &f, id, snap.len + 1, 1000, snap.p + 1000, 1000), VS_OK);
  assert_int_equal(DELTA(s0, 3, snap_rejected), 6);
  /* Tampered: one byte in the middle flipped. */
  next_session(&m, &f);
  id = get_request(&m, &f);
  snap.p[snap.len / 2] ^= 0x40;
  send_snapshot(&m, &f, id, snap.p, snap.len);
  snap.p[snap.len / 2] ^= 0x40;
  assert_int_equal(DELTA(s0, 3, snap_install_failed), 1);
  assert_int_equal(DELTA(s0, 3, snap_installs), 0);
  expect_unchanged(&m, 3, &before);
  /* Truncated: the stream ends (and says it ends) before the snapshot. */
  next_session(&m, &f);
  id = get_request(&m, &f);
  send_snapshot(&m, &f, id, snap.p, snap.len - 100);
  assert_int_equal(DELTA(s0, 3, snap_install_failed), 2);
  expect_unchanged(&m, 3, &before);
  /* Of another mesh. */
  {
    mh_mesh other;
    mn_mesh(&other, 1, 1, NULL, "swh-other", 0xf1, 5, compacting);
    /* (Its genesis compacted: a snapshot carries the maker's admission.) */
    mh_write(&other, 0, "put", "o", "1");
    mh_run_for(&other, 20000);
    vt_snap_buf o;
    memset(&o, 0, sizeof o);
    assert_err(vs_snapshot_make(mn_store(&other, 0), vt_snap_write, &o, NULL), VS_OK);
    next_session(&m, &f);
    id = get_request(&m, &f);
    send_snapshot(&m, &f, id, o.p, o.len);
    free(o.p);
    mh_free(&other);
  }
  assert_int_equal(DELTA(s0, 3, snap_install_failed), 3);
  expect_unchanged(&m, 3, &before);
  /* Stalls half way: after snap_timeout_ms the buffer is gone (a late
   * chunk is not taken), counted. */
  next_session(&m, &f);
  id = get_request(&m, &f);
  assert_err(send_chunk(&m, &f, id, snap.len, 0, snap.p, 1000), VS_OK);
  vs_node_stats s1 = mn_stats(&m, 3);
  mh_run_for(&m, 10000 + 100);
  assert_int_equal(DELTA(s1, 3, snap_timeouts), 1);
  assert_false(f.closed);
  assert_err(send_chunk(&m, &f, id, snap.len, 1000, snap.p + 1000, 1000), VS_OK);
  assert_int_equal(DELTA(s1, 3, snap_rejected), 1);
  expect_unchanged(&m, 3, &before);
  assert_int_equal(DELTA(s0, 3, snap_installs), 0);
  /* Declined: not asked again in the session, counted. */
  next_session(&m, &f);
  id = get_request(&m, &f);
  assert_err(send_chunk(&m, &f, id, 0, 0, NULL, 0), VS_OK);
  assert_int_equal(DELTA(s0, 3, snap_declined), 1);
  /* At last the real thing, from a new session: installed, node 3 holds
   * the maker's state and its anchors. */
  next_session(&m, &f);
  id = get_request(&m, &f);
  send_snapshot(&m, &f, id, snap.p, snap.len);
  assert_int_equal(DELTA(s0, 3, snap_installs), 1);
  assert_int_equal(f.last_ack, snap.len);
  uint8_t h3[VS_HASH_BYTES];
  mh_state_hash(&m, 3, h3);
  assert_memory_equal(info.state_hash, h3, VS_HASH_BYTES);
  assert_true(mn_has(&m, 3, "t1"));
  assert_int_equal(mn_head(&m, 3, 0), horizon(&m, 1, 0));
  /* Installed: a BEHIND now (we hold the horizon it names) is false. */
  vs_node_stats s2 = mn_stats(&m, 3);
  vs_behind_entry e1 = horizon_entry(&m, 1);
  e1.seq = mn_head(&m, 3, 1);
  assert_true(e1.seq > 0);
  assert_err(send_behind(&m, &f, &e1, 1), VS_OK);
  assert_int_equal(DELTA(s2, 3, snap_behind_false), 1);
  assert_int_equal(DELTA(s2, 3, snap_requests_sent), 0);
  free(snap.p);
  teardown(&m, &f);
}

/* The whole path between real nodes: node 3 joins after the compaction,
 * connects to node 0 and converges over the network; its log holds far
 * fewer records than the history, and it received about the snapshot's
 * bytes. */
static void test_late_device_over_the_network(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-e2e");
  mh_connect(&m, 3, 0);
  mh_run_for(&m, 40000);
  mh_expect_converged(&m, 0, 3);
  vs_node_stats s3 = mn_stats(&m, 3), s0 = mn_stats(&m, 0);
  assert_int_equal(s3.snap_installs, 1);
  assert_int_equal(s3.snap_requests_sent, 1);
  assert_int_equal(s0.snap_served, 1);
  assert_int_equal(s3.snap_bytes_received, s0.snap_bytes_sent);
  assert_int_equal(s3.runs_gap, 0);
  teardown(&m, &f);
}

/* ---- acks: "tell me everything again" ---- */

/* A VV from the fake claiming node 0's whole vector (so node 0 relays it
 * every ack: none names an op it lacks), its acks digest `acks`. */
static vs_err send_full_vv(mh_mesh *m, fake *f, uint64_t number, uint64_t acks) {
  vs_vv_entry e[4];
  memset(e, 0, sizeof e); /* short_id, gen, born: a whole vector names every origin in full */
  uint32_t n = 0;
  for (uint32_t o = 0; o < 4; o++) {
    uint64_t seq = 0;
    uint8_t hash[VS_HASH_BYTES];
    vs_err err = vs_wal_head(mn_store(m, 0), m->ids[o].pk, &seq, hash, NULL);
    if (err == VS_ERR_NOTFOUND || seq == 0) continue;
    assert_err(err, VS_OK);
    memcpy(e[n].origin, m->ids[o].pk, VS_ORIGIN_BYTES);
    e[n].seq = seq;
    memcpy(e[n].head, hash, VS_VV_HEAD_BYTES);
    n++;
  }
  for (uint32_t i = 1; i < n; i++) /* sorted by origin (insertion sort: n <= 4) */
    for (uint32_t j = i; j > 0 && memcmp(e[j - 1].origin, e[j].origin, VS_ORIGIN_BYTES) > 0; j--) {
      vs_vv_entry t = e[j];
      e[j] = e[j - 1];
      e[j - 1] = t;
    }
  uint8_t buf[VS_MSG_VV_HEADER_BYTES + 4 * VS_VV_ENTRY_BYTES_MAX];
  size_t len = 0;
  vs_vv_part part = {number, 0, 1, 0, acks, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&part, e, n, buf, sizeof buf, &len), VS_OK);
  return fake_send(m, f, buf, len);
}

/* A member whose every vector says "I hold none of the acks you told me"
 * (the digest 2^64-1, which a node sends after it installed or rebased
 * onto a snapshot, or when a delta came against a keyframe it lacks) gets
 * every ack again at most once per resend_ms: 20 s of a vector every
 * 100 ms cost node 0 at most 11 re-tells, and an ACKS message each. */
static void test_forget_digest_rate_bounded(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-forget");
  fake_dial(&m, &f, 0);
  assert_err(send_full_vv(&m, &f, 1, 0), VS_OK);
  mh_run_for(&m, 3000);
  vs_node_stats s0 = mn_stats(&m, 0);
  uint64_t msgs = f.acks_msgs;
  for (uint64_t k = 0; k < 200; k++) {
    assert_err(send_full_vv(&m, &f, k + 2, UINT64_MAX), VS_OK);
    mh_run_for(&m, 100);
  }
  assert_false(f.closed);
  vs_node_cfg d;
  vs_node_cfg_default(&d);
  uint64_t retold = DELTA(s0, 0, acks_retold), allowed = 20000 / d.resend_ms + 1;
  print_message("  %" PRIu64 " re-tells (at most %" PRIu64 "), %" PRIu64 " ACKS messages\n", retold, allowed,
                f.acks_msgs - msgs);
  assert_true(retold >= allowed - 2); /* it did tell it again, each time it could */
  assert_true(retold <= allowed);
  assert_true(f.acks_msgs - msgs >= retold - 1); /* every ack, in one message each time */
  assert_true(f.acks_msgs - msgs <= retold + 1);
  teardown(&m, &f);
}

/* A member claims node 0's newest write, which it never received: with the
 * right seq but not the op's hash (it cannot know it), the claim does not
 * mark the write delivered (the mesh sink's DONE, which a rebase would
 * then refuse to orphan: VS_ERR_HELD, and which tells the application the
 * write reached a peer); naming the op by its hash, it does. */
static void test_claim_of_unsent_op_not_credited(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-claim");
  mh_disconnect(&m, 0, 1);
  fake_dial(&m, &f, 0);
  mh_write(&m, 0, "put", "unsent", "x");
  mh_run_for(&m, 100);
  uint64_t seq = 0;
  uint8_t hash[VS_HASH_BYTES];
  assert_err(vs_wal_head(mn_store(&m, 0), m.ids[0].pk, &seq, hash, NULL), VS_OK);
  vs_outbox_counts c0;
  mh_outbox_counts(&m, 0, &c0);
  assert_true(c0.pending >= 1);
  vs_vv_entry e;
  memset(&e, 0, sizeof e); /* a whole vector: no short id */
  memcpy(e.origin, m.ids[0].pk, VS_ORIGIN_BYTES);
  e.seq = seq;
  memcpy(e.head, hash, VS_VV_HEAD_BYTES);
  e.head[0] ^= 0x5a; /* a guess */
  uint8_t buf[VS_MSG_VV_HEADER_BYTES + VS_VV_ENTRY_BYTES_MAX];
  size_t len = 0;
  vs_vv_part part = {1, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&part, &e, 1, buf, sizeof buf, &len), VS_OK);
  assert_err(fake_send(&m, &f, buf, len), VS_OK);
  mh_run_for(&m, 5000);
  vs_outbox_counts c1;
  mh_outbox_counts(&m, 0, &c1);
  assert_int_equal(c1.done, c0.done);
  assert_int_equal(c1.pending + c1.inflight, c0.pending + c0.inflight);
  e.head[0] ^= 0x5a; /* the op's hash: it holds it */
  part.vector = 2;
  assert_err(vs_msg_vv_encode(&part, &e, 1, buf, sizeof buf, &len), VS_OK);
  assert_err(fake_send(&m, &f, buf, len), VS_OK);
  mh_run_for(&m, 5000);
  mh_outbox_counts(&m, 0, &c1);
  assert_true(c1.done > c0.done);
  teardown(&m, &f);
}

/* ---- a too-late replica's held-back writes ---- */

static void late_bound(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  compacting(m, i, cfg);
  cfg->suspend_after_ms = 10000;
}

/* Node 0, out of touch for 40 s with a bound of 10 s and writes no peer
 * holds, is a too-late replica when the fake (a member) connects: it holds
 * its own ops back, and a WANT for them gets nothing (a member that took
 * them that way would hold two signed ops at each seq once the rebase
 * writes those seqs again: a fork of node 0's identity). Other chains are
 * served as before. */
static void test_late_replica_serves_no_want_of_its_chain(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "swh-late");
  uint64_t held = mn_head(&m, 1, 0);
  mh_disconnect(&m, 0, 1);
  m.configure = late_bound;
  mh_restart(&m, 0);
  for (uint32_t k = 0; k < 8; k++) {
    char v[16];
    snprintf(v, sizeof v, "%u", k);
    mh_write(&m, 0, "put", "offline", v);
    mh_run_for(&m, 5000);
  }
  uint64_t head = mn_head(&m, 0, 0);
  assert_true(head >= held + 8);
  fake_dial(&m, &f, 0);
  mh_run_for(&m, 100);
  assert_int_equal(mn_stats(&m, 0).late_returns, 1);
  uint32_t runs = f.runs;
  uint8_t buf[VS_MSG_WANT_BYTES];
  size_t len = 0;
  assert_err(vs_msg_want_encode(m.ids[0].pk, held + 1, buf, sizeof buf, &len), VS_OK);
  assert_err(fake_send(&m, &f, buf, len), VS_OK);
  mh_run_for(&m, 1000);
  for (uint32_t k = runs; k < f.runs; k++) /* no run of node 0's held-back ops */
    assert_false(memcmp(f.run_origin[k], m.ids[0].pk, VS_ORIGIN_BYTES) == 0 && f.run_first[k] > held);
  uint64_t h1 = mn_head(&m, 1, 1);
  assert_true(h1 > 0);
  assert_err(vs_msg_want_encode(m.ids[1].pk, 1, buf, sizeof buf, &len), VS_OK); /* another chain: served */
  assert_err(fake_send(&m, &f, buf, len), VS_OK);
  mh_run_for(&m, 1000);
  bool served = false;
  for (uint32_t k = runs; k < f.runs; k++) served = served || memcmp(f.run_origin[k], m.ids[1].pk, VS_ORIGIN_BYTES) == 0;
  assert_true(served || f.behinds > 0); /* below node 0's horizon it is a BEHIND, never a partial stream */
  assert_int_equal(mn_head(&m, 0, 0), head);
  teardown(&m, &f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_behind_never_partial_flood_bounded),
      cmocka_unit_test(test_served_snapshot_installs),
      cmocka_unit_test(test_behind_lies_and_stuck),
      cmocka_unit_test(test_behind_forked_identity_asks_nothing),
      cmocka_unit_test(test_behind_on_own_chain_asks_nothing),
      cmocka_unit_test(test_bad_chunks_refused_then_good_installs),
      cmocka_unit_test(test_late_device_over_the_network),
      cmocka_unit_test(test_forget_digest_rate_bounded),
      cmocka_unit_test(test_claim_of_unsent_op_not_credited),
      cmocka_unit_test(test_late_replica_serves_no_want_of_its_chain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
