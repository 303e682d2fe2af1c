/* Hostile peers and ACKS (src/node_acks.c, docs/protocol.md
 * "Acknowledgements"). A managed mesh of three real vs_nodes (tests/
 * mesh_harness.h) converges; then node 2 is taken over: a fake peer with
 * its identity and mesh key (a compromised member) drives wire.h by hand
 * against node 0. Every bad ack is dropped and counted, nothing unverified
 * is stored, the cut does not move, and the session goes on, except for a
 * malformed message, which closes it. Time is virtual. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "acks.h"
#include "fixture.h"
#include "internal.h"
#include "mesh_harness.h"
#include "member_nodes.h"
#include "mgate.h"
#include "prepared.h"
#include "wire.h"

#define FAKE 9u /* the fake peer's handle on node 0 */
#define CAP_MAX 64u

typedef struct fake {
  vs_identity id;
  uint8_t mesh[VS_MESH_KEY_BYTES];
  vs_hs hs;
  vs_session sess;
  /* What node 0 sent the fake: handshake frames are kept, the rest dropped. */
  uint8_t cap[CAP_MAX][VS_HS_FRAME_BYTES_MAX];
  size_t cap_len[CAP_MAX];
  uint32_t cap_n, cap_read;
  bool closed;
  /* Once ready: node 0's messages are opened and its ACKS counted. */
  bool ready;
  uint64_t acks_seen, acks_own; /* acks received; of them, the fake's own */
} fake;

static vs_err seen_ack(const vs_ack_view *a, void *ctx) {
  fake *f = ctx;
  f->acks_seen++;
  if (memcmp(a->author, f->id.pk, VS_ORIGIN_BYTES) == 0) f->acks_own++;
  return VS_OK;
}

static bool capture(mh_mesh *m, uint32_t from, const vs_node_out *out) {
  fake *f = m->ctx;
  if (from != 0 || out->peer != FAKE) return false;
  if (out->kind == VS_NODE_OUT_CLOSE) {
    f->closed = true;
    return true;
  }
  if (f->ready) {
    uint8_t *msg = malloc(out->bytes_len);
    size_t len = 0;
    assert_non_null(msg);
    if (vs_session_open(&f->sess, out->bytes, out->bytes_len, msg, out->bytes_len, &len) == VS_OK && len > 0 &&
        msg[0] == VS_MSG_ACKS)
      assert_err(vs_msg_acks_decode(msg, len, seen_ack, f), VS_OK);
    free(msg);
    return true;
  }
  if (out->bytes_len <= VS_HS_FRAME_BYTES_MAX && f->cap_n < CAP_MAX) {
    memcpy(f->cap[f->cap_n], out->bytes, out->bytes_len);
    f->cap_len[f->cap_n++] = out->bytes_len;
  }
  return true;
}

/* The next handshake frame node 0 sent the fake. */
static size_t take(fake *f, uint8_t *out) {
  assert_true(f->cap_read < f->cap_n);
  size_t len = f->cap_len[f->cap_read];
  memcpy(out, f->cap[f->cap_read++], len);
  return len;
}

/* The fake (node 2's identity and key) dials node 0 and completes the
 * handshake as initiator. */
static void fake_dial(mh_mesh *m, fake *f) {
  f->cap_n = f->cap_read = 0;
  f->closed = false;
  f->ready = false;
  assert_err(vs_node_peer_up(m->nodes[0], FAKE, false, m->now_ms), VS_OK);
  uint8_t eph[32], frame[VS_HS_FRAME_BYTES_MAX], out[VS_HS_FRAME_BYTES_MAX];
  vt_sm_fill(&m->rng, eph, sizeof eph);
  size_t len = 0, got;
  bool done = false;
  assert_err(vs_hs_start_initiator(&f->hs, &f->id, f->mesh, eph, out, sizeof out, &len), VS_OK);
  assert_err(mh_deliver(m, 0, FAKE, out, len), VS_OK);
  mh_pump(m);
  got = take(f, frame); /* COOKIE */
  assert_err(vs_hs_on_frame(&f->hs, frame, got, out, sizeof out, &len, &done, &f->sess), VS_OK);
  assert_err(mh_deliver(m, 0, FAKE, out, len), VS_OK); /* HELLO2 */
  mh_pump(m);
  got = take(f, frame); /* REPLY */
  assert_err(vs_hs_on_frame(&f->hs, frame, got, out, sizeof out, &len, &done, &f->sess), VS_OK);
  assert_true(done);
  f->ready = true;
  assert_err(mh_deliver(m, 0, FAKE, out, len), VS_OK); /* AUTH */
  mh_pump(m);
  assert_false(f->closed); /* a member: no probation, no close */
}

/* Seal and deliver one message from the fake. */
static vs_err fake_send(mh_mesh *m, fake *f, const uint8_t *msg, size_t len) {
  size_t cap = len + VS_DATA_OVERHEAD_BYTES, out = 0;
  uint8_t *frame = malloc(cap);
  assert_non_null(frame);
  assert_err(vs_session_seal(&f->sess, msg, len, frame, cap, &out), VS_OK);
  vs_err err = mh_deliver(m, 0, FAKE, frame, out);
  free(frame);
  mh_pump(m);
  return err;
}

/* ---- acks made by hand ---- */

typedef struct ack {
  uint8_t author[VS_ORIGIN_BYTES];
  uint64_t hlc, key_hlc;
  uint8_t sig[VS_SIGNATURE_BYTES];
  vs_ack_entry e[8];
  uint32_t n;
} ack;

/* Node 0's vector (the common one once converged). */
static uint32_t vector_of_0(mh_mesh *m, vs_ack_entry *e) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < 3; i++) {
    uint64_t seq = mn_head(m, 0, i);
    if (seq == 0) continue;
    memcpy(e[n].origin, m->ids[i].pk, VS_ORIGIN_BYTES);
    e[n++].seq = seq;
  }
  /* origins in order */
  for (uint32_t i = 1; i < n; i++)
    for (uint32_t j = i; j > 0 && memcmp(e[j - 1].origin, e[j].origin, VS_ORIGIN_BYTES) > 0; j--) {
      vs_ack_entry t = e[j];
      e[j] = e[j - 1];
      e[j - 1] = t;
    }
  return n;
}

/* A keyframe of `id` over `e` at `hlc`, signed over node 0's hashes. */
static void sign_keyframe(mh_mesh *m, const vs_identity *id, uint64_t hlc, const vs_ack_entry *e, uint32_t n, ack *a) {
  memset(a, 0, sizeof *a);
  memcpy(a->author, id->pk, VS_ORIGIN_BYTES);
  a->hlc = a->key_hlc = hlc;
  memcpy(a->e, e, sizeof *e * n);
  a->n = n;
  MDB_txn *txn;
  uint8_t mesh_id[VS_HASH_BYTES], msg[VS_ACK_SIGNED_BYTES];
  assert_err(vs_txn_begin(mn_store(m, 0), false, &txn), VS_OK);
  assert_err(vs_mesh_id_get_txn(txn, mn_store(m, 0), mesh_id), VS_OK);
  assert_err(vs_acks_signed_txn(txn, mn_store(m, 0), mesh_id, id->pk, hlc, e, n, msg), VS_OK);
  mdb_txn_abort(txn);
  assert_int_equal(crypto_sign_detached(a->sig, NULL, msg, sizeof msg, id->sk), 0);
}

static size_t acks_msg(const ack *a, uint32_t count, uint8_t *out, size_t max) {
  vs_acks_writer w;
  size_t len = 0;
  assert_err(vs_acks_writer_init(&w, out, max), VS_OK);
  for (uint32_t i = 0; i < count; i++)
    assert_err(vs_acks_writer_add(&w, a[i].author, a[i].hlc, a[i].key_hlc, a[i].sig, a[i].e, a[i].n), VS_OK);
  assert_err(vs_acks_writer_finish(&w, &len), VS_OK);
  return len;
}

static vs_err send_acks(mh_mesh *m, fake *f, const ack *a, uint32_t count) {
  static uint8_t buf[64 * 1024];
  return fake_send(m, f, buf, acks_msg(a, count, buf, sizeof buf));
}

/* Node 0's record of `pk`: its hlc (0: none). */
static uint64_t held_hlc(mh_mesh *m, const uint8_t pk[VS_ORIGIN_BYTES]) {
  MDB_txn *txn;
  uint64_t hlc = 0;
  assert_err(vs_txn_begin(mn_store(m, 0), false, &txn), VS_OK);
  assert_err(vs_acks_hlc_txn(txn, mn_store(m, 0), pk, &hlc, NULL), VS_OK);
  mdb_txn_abort(txn);
  return hlc;
}

static vs_acks_cut_info cut_info(mh_mesh *m) {
  vs_acks_cut_info info;
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(m, 0), false, &txn), VS_OK);
  assert_err(vs_acks_cut_txn(txn, mn_store(m, 0), 0, NULL, NULL, &info), VS_OK);
  mdb_txn_abort(txn);
  return info;
}

/* Three members converge (every ack held everywhere), then node 2 is
 * replaced by the fake, connected to node 0. */
static void setup(mh_mesh *m, fake *f, const char *tag) {
  mn_mesh(m, 3, 3, NULL, tag, 0xd1, 31, NULL);
  mh_connect(m, 0, 1);
  mh_connect(m, 0, 2);
  mh_connect(m, 1, 2);
  mh_write(m, 1, "put", "k", "v");
  mh_run_for(m, 20000);
  vs_acks_cut_info info = cut_info(m);
  assert_int_equal(info.with_ack, 3);
  assert_true(info.stable_ops > 0);
  mh_disconnect(m, 2, 0);
  mh_disconnect(m, 2, 1);
  mh_close(m, 2);
  memset(f, 0, sizeof *f);
  f->id = m->ids[2];
  memcpy(f->mesh, m->keys[2], VS_MESH_KEY_BYTES);
  m->ctx = f;
  m->intercept = capture;
  fake_dial(m, f);
}

#define EXPECT_DELTA(before, field, d) assert_int_equal(mn_stats(&m, 0).field - (before).field, (d))

/* A valid ack is stored; the same again, or an older one, is a duplicate:
 * no signature checked, nothing counted, nothing changed. */
static void test_valid_then_replayed(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "ackh-replay");
  vs_ack_entry e[8];
  uint32_t n = vector_of_0(&m, e);
  uint64_t h0 = held_hlc(&m, f.id.pk);
  assert_true(h0 > 0);
  ack a[2];
  sign_keyframe(&m, &f.id, h0 + 1000, e, n, &a[0]);
  vs_node_stats s0 = mn_stats(&m, 0);
  assert_err(send_acks(&m, &f, a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_received, 1);
  assert_int_equal(held_hlc(&m, f.id.pk), h0 + 1000);
  s0 = mn_stats(&m, 0);
  assert_err(send_acks(&m, &f, a, 1), VS_OK); /* replayed */
  sign_keyframe(&m, &f.id, h0 + 500, e, n, &a[1]); /* older */
  assert_err(send_acks(&m, &f, &a[1], 1), VS_OK);
  EXPECT_DELTA(s0, acks_received, 0);
  EXPECT_DELTA(s0, acks_unusable, 0);
  EXPECT_DELTA(s0, rejected_ack_quota, 0);
  assert_int_equal(held_hlc(&m, f.id.pk), h0 + 1000);
  assert_false(f.closed);
  mh_free(&m);
}

/* Forged signature; an author that is no member; a delta against a
 * keyframe node 0 does not hold; an ack claiming ops node 0 does not hold:
 * each dropped and counted, nothing stored, the cut unchanged, the session
 * up (a valid ack after them is taken). */
static void test_bad_acks_dropped_session_goes_on(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "ackh-bad");
  vs_ack_entry e[8];
  uint32_t n = vector_of_0(&m, e);
  const vs_identity *one = &m.ids[1];
  uint64_t h1 = held_hlc(&m, one->pk), h2 = held_hlc(&m, f.id.pk);
  vs_acks_cut_info c0 = cut_info(&m);
  vs_node_stats s0 = mn_stats(&m, 0);
  ack a;
  /* 1. A forged signature (node 1's ack, one bit flipped). */
  sign_keyframe(&m, one, h1 + 100, e, n, &a);
  a.sig[5] ^= 1;
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 1);
  /* ... or signed by another key (the fake's own, under node 1's name). */
  sign_keyframe(&m, &f.id, h1 + 101, e, n, &a);
  memcpy(a.author, one->pk, VS_ORIGIN_BYTES);
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 2);
  /* 2. An author that is no member, signing its own ack correctly. */
  vs_identity stranger;
  vt_identity_from_byte(0x99, &stranger);
  sign_keyframe(&m, &stranger, 1000, e, n, &a);
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 3);
  assert_int_equal(held_hlc(&m, stranger.pk), 0);
  /* 3. A delta against a keyframe node 0 does not hold (validly signed
   *    over what the full vector would be). */
  sign_keyframe(&m, &f.id, h2 + 100, e, n, &a);
  a.key_hlc = h2 + 50;
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 4);
  /* 4. Ops node 0 does not hold: node 1's seq past its head there. */
  sign_keyframe(&m, &f.id, h2 + 200, e, n, &a);
  for (uint32_t i = 0; i < a.n; i++)
    if (memcmp(a.e[i].origin, one->pk, VS_ORIGIN_BYTES) == 0) a.e[i].seq += 5;
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 5);
  /* ... and a keyframe that leaves an origin out is a different vector. */
  sign_keyframe(&m, &f.id, h2 + 300, e, n, &a);
  a.n--;
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 6);
  /* Nothing stored, the cut unchanged, the session up. */
  EXPECT_DELTA(s0, acks_received, 0);
  EXPECT_DELTA(s0, rejected_malformed, 0);
  assert_int_equal(held_hlc(&m, one->pk), h1);
  assert_int_equal(held_hlc(&m, f.id.pk), h2);
  vs_acks_cut_info c1 = cut_info(&m);
  assert_int_equal(c1.stable_ops, c0.stable_ops);
  assert_int_equal(c1.oldest_hlc, c0.oldest_hlc);
  assert_false(f.closed);
  sign_keyframe(&m, &f.id, h2 + 400, e, n, &a);
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_received, 1);
  mh_free(&m);
}

/* A revoked author's ack is dropped; its old record stays as it was (it
 * holds the compaction cut until the revocation is settled:
 * compact_final.h); the acks cut counts the active members only. */
static void test_revoked_author(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "ackh-revoked");
  vs_ack_entry e[8];
  uint32_t n = vector_of_0(&m, e);
  const vs_identity *one = &m.ids[1];
  uint64_t h1 = held_hlc(&m, one->pk);
  assert_true(h1 > 0);
  ack a;
  sign_keyframe(&m, one, h1 + 100, e, n, &a); /* signed while 1 is a member */
  mh_disconnect(&m, 0, 1);
  uint64_t cut = 0;
  assert_err(vs_mesh_revoke(mn_store(&m, 0), one->pk, m.now_ms, &cut), VS_OK);
  mh_run_for(&m, 2000);
  vs_node_stats s0 = mn_stats(&m, 0);
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 1);
  EXPECT_DELTA(s0, acks_received, 0);
  assert_int_equal(held_hlc(&m, one->pk), h1); /* its old record stays, not replaced */
  vs_acks_cut_info info = cut_info(&m);
  assert_int_equal(info.members, 2);
  assert_false(f.closed);
  mh_free(&m);
}

/* A flood of forged acks: checks stop at the identity's quota (twice the
 * acks of every active member at ack_interval_ms, plus a burst, per minute
 * of node time), the rest are dropped unchecked and counted. */
static void test_flood_bounded_by_quota(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "ackh-flood");
  vs_ack_entry e[8];
  uint32_t n = vector_of_0(&m, e);
  uint64_t h1 = held_hlc(&m, m.ids[1].pk);
  enum { PER_MSG = 50, MSGS = 12 };
  static ack a[PER_MSG];
  vs_node_stats s0 = mn_stats(&m, 0);
  for (uint32_t k = 0; k < MSGS; k++) {
    for (uint32_t i = 0; i < PER_MSG; i++) {
      sign_keyframe(&m, &m.ids[1], h1 + 1 + k * PER_MSG + i, e, n, &a[i]);
      a[i].sig[0] ^= 0x80; /* forged */
    }
    assert_err(send_acks(&m, &f, a, PER_MSG), VS_OK);
  }
  vs_node_stats s1 = mn_stats(&m, 0);
  uint64_t checked = s1.acks_unusable - s0.acks_unusable, refused = s1.rejected_ack_quota - s0.rejected_ack_quota;
  uint64_t cap = 2u * (60000u / 1000u + 1u) * 3u + 64u; /* three active members at 1 s, plus the burst */
  assert_int_equal(checked + refused, PER_MSG * MSGS);
  assert_true(checked <= cap);
  assert_true(refused >= PER_MSG * MSGS - cap);
  assert_int_equal(s1.acks_received, s0.acks_received);
  assert_int_equal(held_hlc(&m, m.ids[1].pk), h1);
  assert_false(f.closed);
  mh_free(&m);
}

/* Unsorted entries, a seq 0 in a keyframe, key_hlc past hlc, too many
 * entries, trailing bytes, no ack at all: malformed, the session closes,
 * nothing stored. */
static void test_malformed_closes(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "ackh-malformed");
  vs_ack_entry e[8];
  uint32_t n = vector_of_0(&m, e);
  assert_true(n >= 2);
  uint64_t h2 = held_hlc(&m, f.id.pk);
  ack a;
  sign_keyframe(&m, &f.id, h2 + 10, e, n, &a);
  uint8_t buf[4096];
  size_t len = acks_msg(&a, 1, buf, sizeof buf);
  const size_t entries = VS_MSG_ACKS_HEADER_BYTES + VS_ACK_HEADER_BYTES;
  for (int kind = 0; kind < 6; kind++) {
    uint8_t bad[4096 + 8];
    size_t blen = len;
    memcpy(bad, buf, len);
    switch (kind) {
      case 0: /* the first two origins swapped */
        memcpy(bad + entries, buf + entries + VS_ACK_ENTRY_BYTES, VS_ORIGIN_BYTES);
        memcpy(bad + entries + VS_ACK_ENTRY_BYTES, buf + entries, VS_ORIGIN_BYTES);
        break;
      case 1: vt_put_u64le(bad + entries + VS_ORIGIN_BYTES, 0); break;                 /* seq 0 in a keyframe */
      case 2: vt_put_u64le(bad + VS_MSG_ACKS_HEADER_BYTES + 40, h2 + 11); break;        /* key_hlc > hlc */
      case 3: vt_put_u32le(bad + entries - 4, VS_WIRE_VV_MAX + 1); break;               /* oversize */
      case 4: bad[blen++] = 0; break;                                                   /* trailing */
      default: vt_put_u32le(bad + 1, 0); blen = VS_MSG_ACKS_HEADER_BYTES; break;        /* no ack */
    }
    vs_node_stats s0 = mn_stats(&m, 0);
    vs_err err = fake_send(&m, &f, bad, blen);
    assert_true(err != VS_OK);
    EXPECT_DELTA(s0, rejected_malformed, 1);
    EXPECT_DELTA(s0, acks_received, 0);
    assert_true(f.closed);
    assert_int_equal(held_hlc(&m, f.id.pk), h2);
    (void)vs_node_peer_down(m.nodes[0], FAKE, m.now_ms);
    fake_dial(&m, &f);
  }
  mh_free(&m);
}

/* The fake's version vector: node 0's (node 2 held everything), with
 * node 0's heads. */
static void fake_vv(mh_mesh *m, fake *f, uint64_t number) {
  vs_vv_entry e[3];
  memset(e, 0, sizeof e);
  uint32_t n = 0;
  vs_ack_entry a[8];
  uint32_t an = vector_of_0(m, a);
  for (uint32_t i = 0; i < an; i++, n++) {
    memcpy(e[n].origin, a[i].origin, VS_ORIGIN_BYTES);
    e[n].seq = a[i].seq;
    uint8_t h[VS_HASH_BYTES];
    uint64_t seq = 0;
    assert_err(vs_wal_head(mn_store(m, 0), a[i].origin, &seq, h, NULL), VS_OK);
    memcpy(e[n].head, h, VS_VV_HEAD_BYTES);
  }
  vs_vv_part part = {number, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
  uint8_t msg[1024];
  size_t len = 0;
  assert_err(vs_msg_vv_encode(&part, e, n, msg, sizeof msg, &len), VS_OK);
  assert_err(fake_send(m, f, msg, len), VS_OK);
}

/* Node 0 relays the other members' acks to the fake, never the fake's own
 * (it is their author), and only once the fake's vector says it holds the
 * ops they name (it could check none before: it would drop them). */
static void test_relay_skips_the_author(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "ackh-relay");
  mh_run_for(&m, 3000);
  assert_int_equal(f.acks_seen, 0); /* no vector from it yet */
  fake_vv(&m, &f, 1);
  mh_run_for(&m, 3000);
  assert_true(f.acks_seen >= 2); /* node 0's and node 1's */
  assert_int_equal(f.acks_own, 0);
  assert_false(f.closed);
  mh_free(&m);
}

/* A device that is no member (on probation, presenting nothing) holds the
 * mesh key: it is told no ack, and its own flood of acks (authors of its
 * choosing) stores nothing. */
static void test_probation_told_nothing(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  setup(&m, &f, "ackh-probation");
  (void)vs_node_peer_down(m.nodes[0], FAKE, m.now_ms);
  vs_identity stranger;
  vt_identity_from_byte(0x55, &stranger);
  memset(&f, 0, sizeof f);
  f.id = stranger;
  memcpy(f.mesh, m.keys[2], VS_MESH_KEY_BYTES);
  fake_dial(&m, &f);
  mh_run_for(&m, 200); /* well within its probation */
  assert_false(f.closed);
  assert_int_equal(f.acks_seen, 0);
  vs_ack_entry e[8];
  uint32_t n = vector_of_0(&m, e);
  ack a;
  sign_keyframe(&m, &m.ids[1], held_hlc(&m, m.ids[1].pk) + 10, e, n, &a);
  a.sig[1] ^= 2;
  vs_node_stats s0 = mn_stats(&m, 0);
  assert_err(send_acks(&m, &f, &a, 1), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 1);
  EXPECT_DELTA(s0, acks_received, 0);
  mh_free(&m);
}

/* An open mesh makes no acks: a well-formed ACKS is ignored and counted,
 * nothing stored, the session up. */
static void test_open_mesh_ignores_acks(void **state) {
  (void)state;
  mh_mesh m;
  fake f;
  mh_init(&m, 2, "ackh-open", 0xe1, 41);
  mh_connect(&m, 0, 1);
  mh_write(&m, 1, "put", "k", "v");
  mh_run_for(&m, 5000);
  memset(&f, 0, sizeof f);
  vt_identity_from_byte(0x77, &f.id);
  memcpy(f.mesh, m.keys[0], VS_MESH_KEY_BYTES);
  m.ctx = &f;
  m.intercept = capture;
  fake_dial(&m, &f);
  ack a[2];
  memset(a, 0, sizeof a);
  for (int i = 0; i < 2; i++) {
    memcpy(a[i].author, m.ids[1].pk, VS_ORIGIN_BYTES);
    a[i].hlc = a[i].key_hlc = 100u + (uint64_t)i;
    memcpy(a[i].e[0].origin, m.ids[1].pk, VS_ORIGIN_BYTES);
    a[i].e[0].seq = 1;
    a[i].n = 1;
  }
  vs_node_stats s0 = mn_stats(&m, 0);
  assert_err(send_acks(&m, &f, a, 2), VS_OK);
  EXPECT_DELTA(s0, acks_unusable, 2);
  EXPECT_DELTA(s0, acks_received, 0);
  EXPECT_DELTA(s0, rejected_ack_quota, 0);
  assert_int_equal(held_hlc(&m, m.ids[1].pk), 0);
  mh_run_for(&m, 3000);
  assert_int_equal(f.acks_seen, 0); /* and sends none */
  assert_false(f.closed);
  mh_free(&m);
}

#ifdef VS_FAULT_INJECTION
#include "fault.h"

/* The fault build only (fault_acks): the Nth LMDB write or commit, then
 * the Nth allocation, of receiving one valid ACKS fails, for N = 1, 2, ...
 * until the receipt makes fewer calls: the frame is refused with an error,
 * nothing is stored, and the same ack sent again is stored. */
static void fault_walk(bool alloc) {
  mh_mesh m;
  fake f;
  setup(&m, &f, alloc ? "ackh-fault-alloc" : "ackh-fault-lmdb");
  vs_ack_entry e[8];
  uint32_t n = vector_of_0(&m, e);
  uint64_t h = held_hlc(&m, f.id.pk), steps = 0;
  static uint8_t msg[4096], frame[4096 + VS_DATA_OVERHEAD_BYTES];
  for (uint64_t nth = 1; nth <= 1000; nth++) {
    ack a;
    sign_keyframe(&m, &f.id, h + nth, e, n, &a);
    size_t len = acks_msg(&a, 1, msg, sizeof msg), flen = 0;
    vs_node_stats s0 = mn_stats(&m, 0);
    assert_err(vs_session_seal(&f.sess, msg, len, frame, sizeof frame, &flen), VS_OK);
    if (alloc) vs_fault_fail_nth_alloc(nth);
    else vs_fault_fail_nth(nth);
    vs_err err = mh_deliver(&m, 0, FAKE, frame, flen);
    bool fired = alloc ? vs_fault_alloc_nth_fired() : vs_fault_nth_fired();
    vs_fault_fail_nth(0);
    vs_fault_fail_nth_alloc(0);
    mh_pump(&m);
    if (fired) {
      assert_true(err != VS_OK);
      if (alloc) assert_err(err, VS_ERR_NOMEM);
      assert_int_equal(held_hlc(&m, f.id.pk), h + nth - 1);
      EXPECT_DELTA(s0, acks_received, 0);
      assert_false(f.closed);
      assert_err(vs_session_seal(&f.sess, msg, len, frame, sizeof frame, &flen), VS_OK);
      err = mh_deliver(&m, 0, FAKE, frame, flen);
      mh_pump(&m);
    }
    assert_err(err, VS_OK);
    assert_int_equal(held_hlc(&m, f.id.pk), h + nth);
    EXPECT_DELTA(s0, acks_received, 1);
    if (!fired) break;
    steps = nth;
  }
  assert_true(steps >= 1);
  print_message("ACKS receipt: %llu %s, each failed once\n", (unsigned long long)steps,
                alloc ? "allocations" : "LMDB writes and commits");
  mh_free(&m);
}

static void test_fault_walk_lmdb(void **state) {
  (void)state;
  fault_walk(false);
}

static void test_fault_walk_alloc(void **state) {
  (void)state;
  fault_walk(true);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_then_replayed),
      cmocka_unit_test(test_bad_acks_dropped_session_goes_on),
      cmocka_unit_test(test_revoked_author),
      cmocka_unit_test(test_flood_bounded_by_quota),
      cmocka_unit_test(test_malformed_closes),
      cmocka_unit_test(test_relay_skips_the_author),
      cmocka_unit_test(test_probation_told_nothing),
      cmocka_unit_test(test_open_mesh_ignores_acks),
#ifdef VS_FAULT_INJECTION
      cmocka_unit_test(test_fault_walk_lmdb),
      cmocka_unit_test(test_fault_walk_alloc),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
