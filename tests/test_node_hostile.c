/* vs_node against hostile peers (split from test_node_property.c, its
 * section 2): a fake peer that knows the mesh key drives the wire.h API by
 * hand against a real vs_node; each bad frame is refused, counted in the
 * right counter, changes neither state nor WAL, and the node keeps syncing
 * with its legitimate peer. Forks and their evidence, restored copies,
 * vectors beyond our own head, a handshake flood, the ack quorum.
 * Built twice: the _prepared copy delivers every frame through the receive
 * pipeline instead of vs_node_on_frame (tests/prepared.h), and must pass
 * the same assertions. Time is virtual. */
#define _XOPEN_SOURCE 700

#include "node_bench.h"

/* A hand-driven responder `r` answers the node's HELLO (already taken into
 * `hello`): COOKIE to the node, whose HELLO2 it answers with REPLY into
 * reply_out. Returns the REPLY's length. */
static size_t fake_respond(bench *t, uint32_t i, fake *r, const uint8_t *hello, size_t hello_len, uint8_t *reply_out,
                           size_t reply_max) {
  static const uint8_t SECRET[VS_COOKIE_SECRET_BYTES] = {9};
  uint8_t eph[32], cookie[VS_COOKIE_FRAME_BYTES], hello2[VS_HELLO2_BYTES];
  size_t len = 0;
  bool close = false, done = false;
  vt_sm_fill(&t->h.rng, eph, sizeof eph);
  assert_err(vs_hs_start_responder(&r->hs, &r->id, r->mesh, eph), VS_OK);
  assert_err(vs_hs_responder_cookie(&r->hs, SECRET, NULL, NULL, 0), VS_OK);
  assert_err(vs_hs_on_frame(&r->hs, hello, hello_len, cookie, sizeof cookie, &len, &done, &r->sess), VS_OK);
  assert_err(vt_node_on_frame(t->h.nodes[i], r->handle, cookie, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, i, r->handle, &close, hello2, sizeof hello2, &len));
  assert_false(close);
  assert_int_equal(len, VS_HELLO2_BYTES);
  assert_err(vs_hs_on_frame(&r->hs, hello2, len, reply_out, reply_max, &len, &done, &r->sess), VS_OK);
  assert_false(done);
  return len;
}

static void test_node_rejects_other_mesh(void **state) {
  (void)state;
  bench *t = bench_new(3);
  memset(t->h.keys[2], 0x33, VS_MESH_KEY_BYTES);
  vs_node_close(t->h.nodes[2]);
  bench_open(t, 2);
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "secret", "42");
  bench_run(t, 1000);
  snap a0, c0;
  snap_take(t->h.nodes[0], &a0);
  snap_take(t->h.nodes[2], &c0);
  /* C dials A: A refuses HELLO's MAC, answers nothing, closes. */
  bench_connect(t, 2, 0);
  bench_pump(t);
  assert_false(t->h.link[0][2]);
  assert_int_equal(t->sent_to[0][2], 0);
  expect_refused(t->h.nodes[0], &a0, "rejected_auth", 1, "other mesh dials");
  /* A dials C: C refuses A's HELLO; A sent only that HELLO. */
  snap_take(t->h.nodes[0], &a0);
  bench_connect(t, 0, 2);
  bench_run(t, 6000);
  assert_false(t->h.link[0][2]);
  assert_int_equal(t->sent_to[0][2], 1);
  expect_refused(t->h.nodes[2], &c0, "rejected_auth", 1, "other mesh is dialled");
  snap c1;
  snap_take(t->h.nodes[2], &c1);
  uint8_t zero[VS_HASH_BYTES] = {0};
  assert_memory_equal(c1.hash, zero, VS_HASH_BYTES);
  assert_int_equal(c1.lsn, 0);
  assert_int_equal(c1.st.handshakes_done, 0);
  vs_node_stats sa;
  vs_node_stats_get(t->h.nodes[0], &sa);
  assert_int_equal(sa.handshakes_done, 1); /* only B */
  expect_legit_sync(t, "other-mesh");
  bench_free(t);
}

static void test_node_rejects_forged_and_replayed_data(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  chain c;
  chain_init(&c, &f.id);
  encop op;
  chain_op(&c, f.id.pk, "put", "fake", "1", &op);
  uint8_t sig[VS_SIGNATURE_BYTES], msg[2048], frame[4096], bad[4096];
  sign_last(&f.id, &op, sig);
  size_t mlen = ops_msg(f.id.pk, sig, &op, 1, msg, sizeof msg);
  size_t flen = fake_seal(&f, msg, mlen, frame, sizeof frame);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  /* A flipped ciphertext byte, anywhere after the header: forged. */
  for (size_t k = 10; k < flen; k += 7) {
    memcpy(bad, frame, flen);
    bad[k] ^= 0x01;
    assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, bad, flen, t->h.now_ms), VS_ERR_AUTH);
  }
  expect_refused(t->h.nodes[0], &s0, "rejected_auth", (flen - 10 + 6) / 7, "flipped ciphertext");
  /* The forgeries did not move the replay window: the real frame passes. */
  snap_take(t->h.nodes[0], &s0);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);
  expect_only(t->h.nodes[0], &s0, "none", 0, "genuine frame");
  snap s1;
  snap_take(t->h.nodes[0], &s1);
  assert_int_equal(s1.lsn, s0.lsn + 1);
  assert_int_equal(s1.st.ops_applied, s0.st.ops_applied + 1);
  /* The exact bytes again: a replay, nothing applied twice. */
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_ERR_REPLAY);
  expect_refused(t->h.nodes[0], &s1, "rejected_replay", 1, "replayed DATA");
  /* A replayed frame with a forged body is still a replay (window first). */
  memcpy(bad, frame, flen);
  bad[flen - 1] ^= 0x80;
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, bad, flen, t->h.now_ms), VS_ERR_REPLAY);
  expect_refused(t->h.nodes[0], &s1, "rejected_replay", 2, "replayed forged DATA");
  expect_legit_sync(t, "forged-data");
  bench_free(t);
}

static void test_node_rejects_data_before_handshake(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint8_t frame[256], vv[VS_MSG_VV_HEADER_BYTES];
  size_t vlen = 0;
  assert_err(vs_msg_vv_encode(&(vs_vv_part){1, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  size_t flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  /* As responder: the connection waits for HELLO. */
  const uint32_t h = FAKE_HANDLE + 1;
  assert_err(vs_node_peer_up(t->h.nodes[0], h, false, t->h.now_ms), VS_OK);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  vs_err err = vt_node_on_frame(t->h.nodes[0], h, frame, flen, t->h.now_ms);
  assert_true(err == VS_ERR_STATE);
  expect_refused(t->h.nodes[0], &s0, "rejected_state", 1, "DATA before HELLO");
  /* As initiator: the connection waits for REPLY. */
  const uint32_t h2 = FAKE_HANDLE + 2;
  assert_err(vs_node_peer_up(t->h.nodes[0], h2, true, t->h.now_ms), VS_OK);
  bench_pump(t);
  snap_take(t->h.nodes[0], &s0);
  assert_err(vt_node_on_frame(t->h.nodes[0], h2, frame, flen, t->h.now_ms), VS_ERR_STATE);
  expect_refused(t->h.nodes[0], &s0, "rejected_state", 1, "DATA before REPLY");
  /* A HELLO on an established session is not expected there either. */
  snap_take(t->h.nodes[0], &s0);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, f.hello, sizeof f.hello, t->h.now_ms), VS_ERR_STATE);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, f.auth, sizeof f.auth, t->h.now_ms), VS_ERR_STATE);
  expect_refused(t->h.nodes[0], &s0, "rejected_state", 2, "handshake frames after the handshake");
  /* A frame for a connection the node never heard of. */
  snap_take(t->h.nodes[0], &s0);
  assert_err(vt_node_on_frame(t->h.nodes[0], 9999, frame, flen, t->h.now_ms), VS_ERR_NOTFOUND);
  expect_refused(t->h.nodes[0], &s0, "rejected_unknown_peer", 1, "unknown connection");
  expect_legit_sync(t, "data-before-handshake");
  bench_free(t);
}

/* Every prefix of `frame` is refused, counted, changes nothing. */
static void feed_prefixes(bench *t, uint32_t handle, const uint8_t *frame, size_t len, const char *what) {
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  uint8_t *copy = malloc(len + 1);
  assert_non_null(copy);
  uint64_t rejected = 0;
  for (size_t k = 0; k < len; k++) {
    memcpy(copy, frame, k); /* its own allocation: ASan sees any read past k */
    uint8_t *exact = malloc(k > 0 ? k : 1);
    assert_non_null(exact);
    memcpy(exact, frame, k);
    vs_err err = vt_node_on_frame(t->h.nodes[0], handle, exact, k, t->h.now_ms);
    free(exact);
    if (err == VS_OK) fail_msg("%s: a %zu-byte prefix of %zu was accepted", what, k, len);
    rejected++;
  }
  /* And one trailing byte too many. */
  memcpy(copy, frame, len);
  copy[len] = 0;
  if (vt_node_on_frame(t->h.nodes[0], handle, copy, len + 1, t->h.now_ms) == VS_OK)
    fail_msg("%s: trailing byte accepted", what);
  rejected++;
  free(copy);
  vs_node_stats now;
  vs_node_stats_get(t->h.nodes[0], &now);
  uint64_t got = (now.rejected_malformed - s0.st.rejected_malformed) + (now.rejected_auth - s0.st.rejected_auth);
  if (got != rejected) fail_msg("%s: %" PRIu64 " refusals counted for %" PRIu64 " frames", what, got, rejected);
  snap_same_store(t->h.nodes[0], &s0);
}

static void test_node_rejects_truncated_frames(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  /* DATA: every prefix of a valid OPS frame, then the frame itself passes. */
  chain c;
  chain_init(&c, &f.id);
  encop op;
  chain_op(&c, f.id.pk, "put", "t", "v", &op);
  uint8_t sig[VS_SIGNATURE_BYTES], msg[2048], frame[4096];
  sign_last(&f.id, &op, sig);
  size_t flen = fake_seal(&f, msg, ops_msg(f.id.pk, sig, &op, 1, msg, sizeof msg), frame, sizeof frame);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  feed_prefixes(t, f.handle, frame, flen, "DATA");
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  /* Short of header + counter + tag: malformed; longer (and one byte too
   * long): the tag fails. */
  assert_int_equal(st.rejected_malformed - s0.st.rejected_malformed, VS_DATA_OVERHEAD_BYTES);
  assert_int_equal(st.rejected_auth - s0.st.rejected_auth, flen - VS_DATA_OVERHEAD_BYTES + 1);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);

  /* HELLO: prefixes on a fresh responder connection, then the real one. */
  fake g;
  fake_init(&g, FAKE_HANDLE + 10, 0x78);
  assert_err(vs_node_peer_up(t->h.nodes[0], g.handle, false, t->h.now_ms), VS_OK);
  uint8_t eph[32], reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
  vt_sm_fill(&t->h.rng, eph, sizeof eph);
  size_t len = 0;
  bool close = false, done = false;
  assert_err(vs_hs_start_initiator(&g.hs, &g.id, g.mesh, eph, g.hello, sizeof g.hello, &len), VS_OK);
  feed_prefixes(t, g.handle, g.hello, len, "HELLO");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, g.handle, true) + caps_count(t, 0, g.handle, false), 0);
  assert_err(vt_node_on_frame(t->h.nodes[0], g.handle, g.hello, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, g.cookie, sizeof g.cookie, &len));
  assert_false(close);
  /* HELLO2: prefixes, then the real one. */
  assert_err(vs_hs_on_frame(&g.hs, g.cookie, len, g.hello2, sizeof g.hello2, &len, &done, &g.sess), VS_OK);
  feed_prefixes(t, g.handle, g.hello2, len, "HELLO2");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, g.handle, true) + caps_count(t, 0, g.handle, false), 0);
  assert_err(vt_node_on_frame(t->h.nodes[0], g.handle, g.hello2, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, reply, sizeof reply, &len));
  assert_false(close);
  /* AUTH: prefixes, then the real one completes the handshake. */
  assert_err(vs_hs_on_frame(&g.hs, reply, len, auth, sizeof auth, &len, &done, &g.sess), VS_OK);
  feed_prefixes(t, g.handle, auth, len, "AUTH");
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_err(vt_node_on_frame(t->h.nodes[0], g.handle, auth, len, t->h.now_ms), VS_OK);
  vs_node_stats st2;
  vs_node_stats_get(t->h.nodes[0], &st2);
  assert_int_equal(st2.handshakes_done, st.handshakes_done + 1);

  /* REPLY: the node dials a fake responder; prefixes, then the real one. */
  fake r;
  fake_init(&r, FAKE_HANDLE + 11, 0x79);
  assert_err(vs_node_peer_up(t->h.nodes[0], r.handle, true, t->h.now_ms), VS_OK);
  bench_pump(t);
  uint8_t hello[VS_HELLO_BYTES];
  assert_true(cap_take(t, 0, r.handle, &close, hello, sizeof hello, &len));
  len = fake_respond(t, 0, &r, hello, len, reply, sizeof reply);
  feed_prefixes(t, r.handle, reply, len, "REPLY");
  assert_err(vt_node_on_frame(t->h.nodes[0], r.handle, reply, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, r.handle, &close, auth, sizeof auth, &len));
  assert_false(close);
  assert_err(vs_hs_on_frame(&r.hs, auth, len, NULL, 0, &len, &done, &r.sess), VS_OK);
  assert_true(done);
  caps_clear(t);
  expect_legit_sync(t, "truncated");
  bench_free(t);
}

static void test_node_rejects_bad_frame_headers(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  const uint32_t hs_handle = FAKE_HANDLE + 20; /* a connection still in its handshake */
  assert_err(vs_node_peer_up(t->h.nodes[0], hs_handle, false, t->h.now_ms), VS_OK);
  uint8_t vv[VS_MSG_VV_HEADER_BYTES], frame[256];
  size_t vlen = 0;
  assert_err(vs_msg_vv_encode(&(vs_vv_part){1, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  size_t flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  const uint32_t handles[2] = {f.handle, hs_handle};
  for (int k = 0; k < 2; k++) {
    uint32_t h = handles[k];
    snap s0;
    snap_take(t->h.nodes[0], &s0);
    /* Oversized: past VS_FRAME_BYTES_MAX, refused before any parsing. */
    size_t big_len = VS_FRAME_BYTES_MAX + 1;
    uint8_t *big = calloc(1, big_len);
    assert_non_null(big);
    big[0] = VS_WIRE_VERSION;
    big[1] = VS_FRAME_DATA;
    assert_err(vt_node_on_frame(t->h.nodes[0], h, big, big_len, t->h.now_ms), VS_ERR_TOO_LARGE);
    free(big);
    expect_refused(t->h.nodes[0], &s0, "rejected_malformed", 1, "oversized");
    /* Unknown versions. */
    uint8_t bad[256];
    memcpy(bad, frame, flen);
    bad[0] = VS_WIRE_VERSION + 1;
    assert_err(vt_node_on_frame(t->h.nodes[0], h, bad, flen, t->h.now_ms), VS_ERR_VERSION);
    bad[0] = 0;
    assert_err(vt_node_on_frame(t->h.nodes[0], h, bad, flen, t->h.now_ms), VS_ERR_VERSION);
    vs_node_stats vst;
    vs_node_stats_get(t->h.nodes[0], &vst);
    assert_int_equal(vst.version_seen, 0);
    bad[0] = 1; /* a v1 peer: refused, and its version is named */
    assert_err(vt_node_on_frame(t->h.nodes[0], h, bad, flen, t->h.now_ms), VS_ERR_VERSION);
    vs_node_stats_get(t->h.nodes[0], &vst);
    assert_int_equal(vst.version_seen, 1);
    assert_int_equal(vst.rejected_version - s0.st.rejected_version, 3);
    expect_refused(t->h.nodes[0], &s0, "rejected_malformed", 4, "unknown version");
    /* Unknown frame types. */
    memcpy(bad, frame, flen);
    bad[1] = 7;
    assert_err(vt_node_on_frame(t->h.nodes[0], h, bad, flen, t->h.now_ms), VS_ERR_MALFORMED);
    bad[1] = 0;
    assert_err(vt_node_on_frame(t->h.nodes[0], h, bad, flen, t->h.now_ms), VS_ERR_MALFORMED);
    bad[1] = 0xff;
    assert_err(vt_node_on_frame(t->h.nodes[0], h, bad, 2, t->h.now_ms), VS_ERR_MALFORMED);
    expect_refused(t->h.nodes[0], &s0, "rejected_malformed", 7, "unknown frame type");
  }
  /* None of it moved the session's window: the real frame passes. */
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);
  expect_legit_sync(t, "bad-headers");
  bench_free(t);
}

/* A message sealed with the session key that does not decode: refused,
 * counted, and the session ends (sessions_closed_malformed): nothing more
 * is read from it (its next frame finds no connection). The peer dials
 * again and gets a fresh session. */
static void bad_message(bench *t, fake *f, const uint8_t *msg, size_t len, vs_err want) {
  uint8_t frame[8192];
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  vs_node_stats st0;
  vs_node_stats_get(t->h.nodes[0], &st0);
  size_t flen = fake_seal(f, msg, len, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), want);
  expect_refused(t->h.nodes[0], &s0, "rejected_malformed", 1, "a message that does not decode");
  vs_node_stats st1;
  vs_node_stats_get(t->h.nodes[0], &st1);
  assert_int_equal(st1.sessions_closed_malformed, st0.sessions_closed_malformed + 1);
  flen = fake_seal(f, msg, len, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_ERR_NOTFOUND);
  bench_pump(t);
  caps_clear(t); /* the node's CLOSE of that connection */
  fake_init(f, FAKE_HANDLE, 0x77);
  fake_dial(t, f, 0);
  caps_clear(t);
}

static void test_node_rejects_bad_messages_in_session(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint8_t msg[4096];
  /* Unknown message types (5 is ACKS since wire v4, 6-9 the snapshot
   * messages since v5). */
  const uint8_t types[4] = {0, 10, 0x7f, 0xff};
  for (int k = 0; k < 4; k++) {
    memset(msg, 0, 64);
    msg[0] = types[k];
    bad_message(t, &f, msg, 37, VS_ERR_MALFORMED);
  }
  /* A VV whose origins are out of order; an OPS with no run; a VV cut
   * short; a VV with a byte left over. */
  vs_vv_entry e[2];
  memset(e, 0, sizeof e);
  e[0].origin[0] = 2;
  e[1].origin[0] = 1;
  e[0].seq = e[1].seq = 1;
  /* Wire v7 by hand: type, flags, no digests, vector 1, part 0 of 1, gen,
   * base and held 0, dist 0, two entries of [seq * 2][origin][head]. */
  const uint8_t head[11] = {VS_MSG_VV, 0, 0, 1, 0, 1, 0, 0, 0, 0, 2};
  const size_t eb = 1 + VS_ORIGIN_BYTES + VS_VV_HEAD_BYTES;
  memcpy(msg, head, sizeof head);
  memset(msg + sizeof head, 0, 2 * eb + 1);
  for (int k = 0; k < 2; k++) {
    msg[sizeof head + k * eb] = (uint8_t)(e[k].seq * 2);
    memcpy(msg + sizeof head + k * eb + 1, e[k].origin, VS_ORIGIN_BYTES);
  }
  bad_message(t, &f, msg, sizeof head + 2 * eb, VS_ERR_MALFORMED);
  e[0].origin[0] = 1;
  e[1].origin[0] = 2;
  for (int k = 0; k < 2; k++) memcpy(msg + sizeof head + k * eb + 1, e[k].origin, VS_ORIGIN_BYTES);
  bad_message(t, &f, msg, sizeof head + 2 * eb - 1, VS_ERR_TRUNCATED);
  bad_message(t, &f, msg, sizeof head + 2 * eb + 1, VS_ERR_TRAILING);
  msg[0] = VS_MSG_OPS;
  vt_put_u32le(msg + 1, 0);
  bad_message(t, &f, msg, 5, VS_ERR_MALFORMED);
  expect_legit_sync(t, "bad-messages");
  bench_free(t);
}

/* A refused run arrives in a valid frame: the frame is not refused, the
 * run is; the contract leaves the return value open, so both are allowed
 * but must agree with the counters. */
static void run_refused(bench *t, fake *f, const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t *sig,
                        const encop *ops, uint32_t count, const char *field, const char *what) {
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  vs_err err = fake_send_run(t, f, origin, sig, ops, count);
  if (err != VS_OK && err != VS_ERR_CHAIN && err != VS_ERR_MALFORMED && err != VS_ERR_FORK && err != VS_ERR_AUTH)
    fail_msg("%s: unexpected %s", what, vs_err_name(err));
  expect_only(t->h.nodes[0], &s0, field, 1, what);
  if (strcmp(field, "runs_fork") != 0) snap_same_store(t->h.nodes[0], &s0);
}

static void test_node_rejects_bad_runs(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  chain c;
  chain_init(&c, &f.id);
  encop ops[4];
  for (int k = 0; k < 3; k++) chain_op(&c, f.id.pk, "incr", "fake-n", "1", &ops[k]);
  uint8_t sig[VS_SIGNATURE_BYTES];

  /* A gap: seq 3 (or 2..3) while the node holds nothing of this origin. */
  sign_last(&f.id, &ops[2], sig);
  run_refused(t, &f, f.id.pk, sig, &ops[2], 1, "runs_gap", "seq gap");
  run_refused(t, &f, f.id.pk, sig, &ops[1], 2, "runs_gap", "seq gap of one");
  /* A forged signature: one bit, or the right shape by another key. */
  uint8_t bad[VS_SIGNATURE_BYTES];
  memcpy(bad, sig, sizeof bad);
  bad[5] ^= 0x10;
  run_refused(t, &f, f.id.pk, bad, ops, 3, "runs_forged", "flipped signature");
  vs_chain_sign(&t->h.ids[1], ops[2].seq, ops[2].hash, bad);
  run_refused(t, &f, f.id.pk, bad, ops, 3, "runs_forged", "signed by another key");
  /* The genuine run is applied, and relayed to B. */
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  assert_err(fake_send_run(t, &f, f.id.pk, sig, ops, 3), VS_OK);
  expect_only(t->h.nodes[0], &s0, "none", 0, "genuine run");
  snap s1;
  snap_take(t->h.nodes[0], &s1);
  assert_int_equal(s1.lsn, s0.lsn + 3);

  /* An op claiming another origin (B's), signed by the fake, at B's next seq. */
  uint64_t b_seq = 0, b_hlc = 0;
  uint8_t b_head[VS_HASH_BYTES];
  assert_err(vs_wal_head(vs_node_store(t->h.nodes[0]), t->h.ids[1].pk, &b_seq, b_head, &b_hlc), VS_OK);
  assert_true(b_seq >= 1);
  chain cb;
  chain_init(&cb, &f.id);
  cb.seq = b_seq;
  cb.hlc = b_hlc;
  memcpy(cb.head, b_head, sizeof b_head);
  encop claim;
  chain_op(&cb, t->h.ids[1].pk, "put", "b", "stolen", &claim);
  sign_last(&f.id, &claim, sig); /* the fake's key, over B's chain */
  run_refused(t, &f, t->h.ids[1].pk, sig, &claim, 1, "runs_forged", "op claiming another origin");

  /* An op claiming B's origin at a seq the node holds: still a forgery
   * (unsigned by B), never evidence of a fork by B. */
  chain_init(&cb, &f.id);
  chain_op(&cb, t->h.ids[1].pk, "put", "b", "stolen", &claim);
  sign_last(&f.id, &claim, sig);
  run_refused(t, &f, t->h.ids[1].pk, sig, &claim, 1, "runs_forged", "claimed origin at a held seq");

  /* A genuine signed run of B with an earlier op swapped: the signature
   * verifies over the last op, but the swapped one is not covered by it
   * (its successor does not link to it): forged, not a fork of B. */
  vt_node_write_kv(t->h.nodes[1], t->h.now_ms, "put", "b2", "x");
  vt_node_write_kv(t->h.nodes[1], t->h.now_ms, "put", "b3", "y");
  bench_run(t, 2000);
  encop real[2];
  uint8_t bsig[VS_SIGNATURE_BYTES];
  grab_ops(vs_node_store(t->h.nodes[1]), t->h.ids[1].pk, real, bsig);
  snap_take(t->h.nodes[0], &s0);
  assert_err(fake_send_run(t, &f, t->h.ids[1].pk, bsig, real, 2), VS_OK); /* the honest relay: duplicates */
  expect_refused(t->h.nodes[0], &s0, "none", 0, "honest relay of held ops");
  encop swapped[2];
  memcpy(swapped, real, sizeof real);
  {
    vs_op op;
    assert_err(vs_op_decode(real[0].enc, real[0].len, &op), VS_OK);
    op.payload = (const uint8_t *)"evil";
    op.payload_bytes = 4;
    size_t len = 0;
    assert_err(vs_op_encode(&op, swapped[0].enc, sizeof swapped[0].enc, &len), VS_OK);
    swapped[0].len = (uint32_t)len;
    vs_op_hash_encoded(swapped[0].enc, len, swapped[0].hash);
  }
  run_refused(t, &f, t->h.ids[1].pk, bsig, swapped, 2, "runs_forged", "swapped op under a genuine signature");
  expect_legit_sync(t, "bad-runs");
  bench_free(t);
}

/* A fork reaches a node: the run that proves it (a copied identity's other
 * seq 1) makes node 0 void the origin from seq 1 on, refold its state to
 * what it was before, and tell node 1, which does the same. Either branch
 * is refused afterwards as void; honest writes still sync. */
static void test_node_fork_voids_the_origin_everywhere(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  /* Two writers with one identity (a copied data directory). */
  vs_identity twin;
  vt_identity_from_byte(0x91, &twin);
  chain c1, c2;
  chain_init(&c1, &twin);
  chain_init(&c2, &twin);
  encop o1, o2;
  chain_op(&c1, twin.pk, "put", "fk", "first", &o1);
  chain_op(&c2, twin.pk, "put", "fk", "second", &o2);
  uint8_t s1[VS_SIGNATURE_BYTES], s2[VS_SIGNATURE_BYTES];
  sign_last(&twin, &o1, s1);
  sign_last(&twin, &o2, s2);
  bench_run(t, 1000);
  snap s0, b0;
  snap_take(t->h.nodes[0], &s0);
  snap_take(t->h.nodes[1], &b0);
  assert_memory_equal(s0.hash, b0.hash, VS_HASH_BYTES);
  assert_err(fake_send_run(t, &f, twin.pk, s1, &o1, 1), VS_OK);
  bench_run(t, 1000);
  snap a1, b1;
  snap_take(t->h.nodes[0], &a1);
  snap_take(t->h.nodes[1], &b1);
  assert_int_equal(a1.lsn, s0.lsn + 1);
  assert_memory_equal(a1.hash, b1.hash, VS_HASH_BYTES); /* node 1 has "first" too */
  (void)fake_send_run(t, &f, twin.pk, s2, &o2, 1);
  snap a2;
  snap_take(t->h.nodes[0], &a2);
  assert_int_equal(a2.st.runs_fork, a1.st.runs_fork + 1);
  assert_int_equal(a2.st.fork_verdicts, a1.st.fork_verdicts + 1);
  assert_memory_equal(a2.hash, s0.hash, VS_HASH_BYTES); /* refolded: as before "first" */
  assert_int_equal(a2.forks, 1);
  vs_fork fk;
  uint64_t nf = 0;
  assert_err(vs_apply_forks(vs_node_store(t->h.nodes[0]), &fk, 1, &nf), VS_OK);
  assert_int_equal(nf, 1);
  assert_memory_equal(fk.origin, twin.pk, VS_ORIGIN_BYTES);
  assert_int_equal(fk.seq, 1);
  /* Node 1 held "first" and never saw "second": the evidence travels. */
  bench_run(t, 2000);
  snap b2;
  snap_take(t->h.nodes[1], &b2);
  assert_int_equal(b2.forks, 1);
  assert_int_equal(b2.st.fork_verdicts, b1.st.fork_verdicts + 1);
  assert_memory_equal(b2.hash, s0.hash, VS_HASH_BYTES);
  /* Either branch again: void, counted, nothing changes. */
  snap a3;
  snap_take(t->h.nodes[0], &a3);
  (void)fake_send_run(t, &f, twin.pk, s1, &o1, 1);
  (void)fake_send_run(t, &f, twin.pk, s2, &o2, 1);
  expect_refused(t->h.nodes[0], &a3, "runs_void", 2, "void runs");
  expect_legit_sync(t, "fork");
  vs_identity_wipe(&twin);
  bench_free(t);
}

/* A member forges fork evidence against an honest origin (node 1's): two
 * "branches" it signed itself. Node 0 checks it, voids nothing, counts it
 * and closes the session (VS_ERR_AUTH: the proofs do not verify under
 * node 1's key); an honest FORK for nothing new is ignored. */
static void test_node_forged_fork_evidence_closes_the_session(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  chain c1, c2;
  chain_init(&c1, &f.id); /* signed by the fake, claimed as node 1's */
  chain_init(&c2, &f.id);
  encop o1, o2;
  chain_op(&c1, t->h.ids[1].pk, "put", "b", "lie-1", &o1);
  chain_op(&c2, t->h.ids[1].pk, "put", "b", "lie-2", &o2);
  uint8_t s1[VS_SIGNATURE_BYTES], s2[VS_SIGNATURE_BYTES];
  sign_last(&f.id, &o1, s1);
  sign_last(&f.id, &o2, s2);
  const uint8_t *e1[1] = {o1.enc}, *e2[1] = {o2.enc};
  uint32_t l1[1] = {o1.len}, l2[1] = {o2.len};
  vs_fork_proof pr[2] = {{s1, 1, e1, l1, NULL}, {s2, 1, e2, l2, NULL}};
  uint8_t msg[2048], frame[4096];
  size_t mlen = 0;
  assert_err(vs_msg_fork_encode(t->h.ids[1].pk, 1, pr, msg, sizeof msg, &mlen), VS_OK);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  size_t flen = fake_seal(&f, msg, mlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_ERR_AUTH);
  expect_refused(t->h.nodes[0], &s0, "fork_evidence_bad", 1, "forged evidence");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, f.handle, true), 1);
  expect_legit_sync(t, "forged-fork");
  bench_free(t);
}

/* One equivocating member lowers its verdict one seq at a time, each a
 * refold of the state (review of issue 14): a node takes at most
 * VS_NODE_VERDICTS_PER_MIN verdicts a minute and defers the rest (counted);
 * as the runs come again, it still reaches the lowest, seq 1. */
static void test_node_verdict_lowerings_are_rate_limited(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  vs_identity twin;
  vt_identity_from_byte(0x95, &twin);
  enum { K = 12 };
  chain c, before[K];
  chain_init(&c, &twin);
  encop ops[K], alt[K];
  uint8_t sig[VS_SIGNATURE_BYTES], asig[K][VS_SIGNATURE_BYTES];
  for (uint32_t k = 0; k < K; k++) {
    before[k] = c;
    chain_op(&c, twin.pk, "put", "v", "x", &ops[k]);
  }
  sign_last(&twin, &ops[K - 1], sig);
  snap pre;
  snap_take(t->h.nodes[0], &pre);
  assert_err(fake_send_run(t, &f, twin.pk, sig, ops, K), VS_OK);
  for (uint32_t k = 0; k < K; k++) { /* another op at seq k + 1, on the same prev */
    chain b = before[k];
    chain_op(&b, twin.pk, "put", "v", "y", &alt[k]);
    sign_last(&twin, &alt[k], asig[k]);
  }
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  for (uint32_t round = 0; round < 3; round++) {
    for (uint32_t k = K; k-- > 0;) (void)fake_send_run(t, &f, twin.pk, asig[k], &alt[k], 1);
    if (round == 0) {
      snap s1;
      snap_take(t->h.nodes[0], &s1);
      assert_int_equal(s1.st.fork_verdicts - s0.st.fork_verdicts, VS_NODE_VERDICTS_PER_MIN);
      assert_int_equal(s1.st.fork_verdicts_deferred - s0.st.fork_verdicts_deferred, K - VS_NODE_VERDICTS_PER_MIN);
    }
    bench_run(t, 60000);
  }
  uint64_t vf = 0;
  assert_err(vs_apply_void_from(vs_node_store(t->h.nodes[0]), twin.pk, &vf), VS_OK);
  assert_int_equal(vf, 1);
  assert_err(vs_apply_void_from(vs_node_store(t->h.nodes[1]), twin.pk, &vf), VS_OK);
  assert_int_equal(vf, 1);
  snap a, b;
  snap_take(t->h.nodes[0], &a);
  snap_take(t->h.nodes[1], &b);
  assert_memory_equal(a.hash, pre.hash, VS_HASH_BYTES); /* nothing of the twin counts */
  assert_memory_equal(b.hash, a.hash, VS_HASH_BYTES);
  vs_identity_wipe(&twin);
  bench_free(t);
}

/* Two nodes hold different branches of one twin that part deep inside:
 * X's branches are as long (equal seqs, different heads in the vectors),
 * Y's are not (the longer one's next run does not link). Neither run
 * ever shows the split point by itself: the nodes find it by asking each
 * other (WANT, bisection), take the same verdicts and converge. */
static void test_node_fork_found_by_bisection(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vs_identity tw[2];
  vt_identity_from_byte(0x93, &tw[0]);
  vt_identity_from_byte(0x94, &tw[1]);
  const uint32_t len[2][2] = {{12, 12}, {14, 9}}; /* ops per branch, per twin */
  for (uint32_t x = 0; x < 2; x++) {
    chain c;
    chain_init(&c, &tw[x]);
    encop pre[5];
    uint8_t sig[VS_SIGNATURE_BYTES];
    for (uint32_t k = 0; k < 5; k++) chain_op(&c, tw[x].pk, "put", "p", k % 2 ? "1" : "2", &pre[k]);
    sign_last(&tw[x], &pre[4], sig);
    for (uint32_t i = 0; i < 2; i++) store_run(t, i, pre, 5, sig);
    for (uint32_t i = 0; i < 2; i++) { /* branch i on node i, from seq 6, one signed run per op */
      chain b = c;
      for (uint32_t k = 5; k < len[x][i]; k++) {
        encop o;
        char val[16];
        snprintf(val, sizeof val, "n%u-%u", i, k);
        chain_op(&b, tw[x].pk, "put", k % 3 ? "q" : "r", val, &o);
        sign_last(&tw[x], &o, sig);
        store_run(t, i, &o, 1, sig);
      }
    }
  }
  for (uint32_t i = 0; i < 2; i++) { /* the nodes read their vectors at open */
    vs_node_close(t->h.nodes[i]);
    bench_open(t, i);
  }
  bench_connect(t, 0, 1);
  bench_run(t, 60000);
  snap a, b;
  snap_take(t->h.nodes[0], &a);
  snap_take(t->h.nodes[1], &b);
  assert_int_equal(a.forks, 2);
  assert_int_equal(b.forks, 2);
  for (uint32_t x = 0; x < 2; x++) {
    uint64_t va = 0, vb = 0;
    assert_err(vs_apply_void_from(vs_node_store(t->h.nodes[0]), tw[x].pk, &va), VS_OK);
    assert_err(vs_apply_void_from(vs_node_store(t->h.nodes[1]), tw[x].pk, &vb), VS_OK);
    assert_int_equal(va, 6);
    assert_int_equal(vb, 6);
  }
  assert_memory_equal(a.hash, b.hash, VS_HASH_BYTES);
  assert_string_equal(a.vv.text, b.vv.text);
  assert_true(a.st.wants_sent + b.st.wants_sent > 0);
  assert_true(a.st.wants_served + b.st.wants_served > 0);
  assert_int_equal(a.st.rejected_vv_regress + b.st.rejected_vv_regress, 0);
  assert_int_equal(a.st.fork_evidence_bad + b.st.fork_evidence_bad, 0);
  vs_identity_wipe(&tw[0]);
  vs_identity_wipe(&tw[1]);
  bench_free(t);
}

static void test_node_rejects_replayed_transcript(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* f's HELLO and AUTH of a completed handshake */
  vs_node_stats st0;
  /* Replayed on a new connection from another address: HELLO passes (it
   * only proves the mesh key) and gets a COOKIE: no REPLY, so no identity
   * and no X25519 or signature spent; the captured HELLO2 carries a cookie
   * of the first connection's address and is refused; the node closes.
   * (Before the cookie round, the replayed HELLO got a REPLY.) */
  const uint32_t h = FAKE_HANDLE + 30;
  static const uint8_t ATTACKER[6] = {192, 0, 2, 66, 0x30, 0x39};
  assert_err(vs_node_peer_up_addr(t->h.nodes[0], h, false, ATTACKER, sizeof ATTACKER, t->h.now_ms), VS_OK);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  vs_node_stats_get(t->h.nodes[0], &st0);
  assert_err(vt_node_on_frame(t->h.nodes[0], h, f.hello, sizeof f.hello, t->h.now_ms), VS_OK);
  bench_pump(t);
  {
    uint8_t got[VS_HS_FRAME_BYTES_MAX];
    size_t got_len = 0;
    bool got_close = true;
    assert_true(cap_take(t, 0, h, &got_close, got, sizeof got, &got_len));
    assert_false(got_close);
    assert_int_equal(got_len, VS_COOKIE_FRAME_BYTES);
    assert_int_equal(got[1], VS_FRAME_COOKIE);
    assert_int_equal(caps_count(t, 0, h, false), 0); /* nothing else: no REPLY */
  }
  vs_node_stats st_c;
  vs_node_stats_get(t->h.nodes[0], &st_c);
  assert_int_equal(st_c.cookies_sent, st0.cookies_sent + 1);
  assert_err(vt_node_on_frame(t->h.nodes[0], h, f.auth, sizeof f.auth, t->h.now_ms), VS_ERR_STATE);
  expect_refused(t->h.nodes[0], &s0, "rejected_state", 1, "replayed AUTH before HELLO2");
  snap_take(t->h.nodes[0], &s0);
  assert_err(vt_node_on_frame(t->h.nodes[0], h, f.hello2, sizeof f.hello2, t->h.now_ms), VS_ERR_AUTH);
  expect_refused(t->h.nodes[0], &s0, "rejected_auth", 1, "replayed HELLO2");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, h, true), 1);
  vs_node_stats st1;
  vs_node_stats_get(t->h.nodes[0], &st1);
  assert_int_equal(st1.handshakes_done, st0.handshakes_done);
  assert_int_equal(vs_node_peers_ready(t->h.nodes[0]), 2); /* B and f */

  /* A REPLY captured from one connection, replayed to the node's next dial. */
  fake r;
  fake_init(&r, FAKE_HANDLE + 31, 0x7a);
  assert_err(vs_node_peer_up(t->h.nodes[0], r.handle, true, t->h.now_ms), VS_OK);
  bench_pump(t);
  uint8_t hello[VS_HELLO_BYTES], reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES];
  size_t len = 0;
  bool close = false;
  assert_true(cap_take(t, 0, r.handle, &close, hello, sizeof hello, &len));
  len = fake_respond(t, 0, &r, hello, len, reply, sizeof reply);
  assert_err(vt_node_on_frame(t->h.nodes[0], r.handle, reply, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, r.handle, &close, auth, sizeof auth, &len));
  const uint32_t h2 = FAKE_HANDLE + 32;
  assert_err(vs_node_peer_up(t->h.nodes[0], h2, true, t->h.now_ms), VS_OK);
  bench_pump(t);
  snap_take(t->h.nodes[0], &s0);
  vs_node_stats_get(t->h.nodes[0], &st0);
  assert_err(vt_node_on_frame(t->h.nodes[0], h2, reply, sizeof reply, t->h.now_ms), VS_ERR_AUTH);
  expect_refused(t->h.nodes[0], &s0, "rejected_auth", 1, "replayed REPLY");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, h2, true), 1);
  assert_int_equal(caps_count(t, 0, h2, false), 1); /* its HELLO, and no AUTH */
  vs_node_stats_get(t->h.nodes[0], &st1);
  assert_int_equal(st1.handshakes_done, st0.handshakes_done);
  caps_clear(t);
  expect_legit_sync(t, "replayed-transcript");
  bench_free(t);
}

/* A vector claiming our own seq is 2^48-1 (the review's attack: it marked
 * the outbox done past our head, then froze completion until a restart).
 * Now nothing is delivered beyond our head, the claim must be backed by our
 * signed ops, and the liar's session is closed; later writes complete. */
static void test_node_vector_beyond_own_head_is_refused(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  bench_disconnect(t, 0, 1);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "before-lie", "1");
  fake_send_vv1(t, &f, t->h.ids[0].pk, VS_OP_SEQ_MAX);
  bench_pump(t);
  assert_int_equal(restoring(t), 0); /* a bare claim blocks no write */
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "during-lie", "1");
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 0);
  /* Unbacked past the deadline: closed and counted. */
  bench_run(t, 30000);
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 1);
  bool close = false;
  uint8_t buf[8192];
  size_t len = 0;
  bool closed = false;
  while (cap_take(t, 0, f.handle, &close, buf, sizeof buf, &len)) closed = closed || close;
  assert_true(closed);
  assert_int_equal(restoring(t), 0);
  /* Completion is not frozen: B comes back, later writes reach DONE. */
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "after-lie", "1");
  bench_run(t, 5000);
  vs_outbox_counts c;
  vt_node_outbox_counts(t->h.nodes[0], &c);
  assert_int_equal(c.pending, 0);
  assert_int_equal(c.inflight, 0);
  assert_int_equal(c.done, 4); /* a, before-lie, during-lie, after-lie */
  expect_legit_sync(t, "vv-future");
  bench_free(t);
}

/* A restored copy of node 0 (its store lacks seqs its other self signed):
 * a peer holding them claims them and sends them back; until node 0 holds
 * what is claimed, local writes fail (no seq is ever signed twice); then it
 * writes on from the real head. A claim the peer does not back closes its
 * session; the marker then clears once a ready peer has claimed nothing
 * beyond our head for a while. */
static void test_node_restored_copy_takes_its_ops_back(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* node 0 wrote seq 1 */
  bench_disconnect(t, 0, 1);
  chain other; /* the other self: same identity, ops 2.. */
  chain_init(&other, &t->h.ids[0]);
  uint64_t hlc = 0;
  assert_err(vs_wal_head(vs_node_store(t->h.nodes[0]), t->h.ids[0].pk, &other.seq, other.head, &hlc), VS_OK);
  assert_int_equal(other.seq, 1);
  other.hlc = hlc;
  fake_send_vv1(t, &f, t->h.ids[0].pk, 7);
  bench_pump(t);
  assert_int_equal(restoring(t), 0);
  fake_send_chain(t, &f, &other, 2); /* 2..3: proof that we are a restored copy */
  bench_pump(t);
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.own_ops_restored, 2);
  assert_int_equal(restoring(t), 7);
  vs_write_req req = {"put", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL, 0};
  vs_write_result res;
  assert_err(vs_node_write(t->h.nodes[0], &req, t->h.now_ms, &res), VS_ERR_RESTORING);
  assert_err(vs_write(vs_node_store(t->h.nodes[0]), t->h.ids[0].pk, &req, t->h.now_ms, &res), VS_ERR_RESTORING);
  fake_send_chain(t, &f, &other, 2); /* 4..5 */
  bench_pump(t);
  assert_int_equal(restoring(t), 7);
  assert_err(vs_node_write(t->h.nodes[0], &req, t->h.now_ms, &res), VS_ERR_RESTORING);
  /* 6..7 never come: the claim is not backed in time, the session closes. */
  bench_run(t, 30000);
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 1);
  assert_int_equal(restoring(t), 7); /* no ready peer has said otherwise yet */
  assert_err(vs_node_write(t->h.nodes[0], &req, t->h.now_ms, &res), VS_ERR_RESTORING);
  bench_connect(t, 0, 1); /* B holds nothing of ours past 5 */
  bench_run(t, 30000);
  assert_int_equal(restoring(t), 0);
  assert_err(vs_node_write(t->h.nodes[0], &req, t->h.now_ms, &res), VS_OK);
  assert_int_equal(res.seq, 6); /* on from the real head */
  expect_legit_sync(t, "restored");
  bench_free(t);
}

/* The honest case end to end in the bench: node 0's own chain went to 6,
 * a copy of its store from seq 2 comes back; B holds 1..6 and gives them
 * back; the next write is seq 7 and the two converge. */
static void test_node_restored_copy_catches_up_from_peer(void **state) {
  (void)state;
  bench *t = bench_new(2);
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "x", "1");
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "x", "2");
  bench_run(t, 2000);
  /* The backup: a copy of node 0's directory now. */
  char backup[256], cmd[700];
  vt_tmpdir(backup, sizeof backup, "nsec-bak");
  bench_disconnect(t, 0, 1);
  vs_node_close(t->h.nodes[0]);
  snprintf(cmd, sizeof cmd, "cp -a '%s/.' '%s/'", t->h.dirs[0], backup);
  assert_int_equal(system(cmd), 0);
  bench_open(t, 0);
  bench_connect(t, 0, 1);
  for (int k = 3; k <= 6; k++) {
    char v[8];
    snprintf(v, sizeof v, "%d", k);
    vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "x", v);
  }
  bench_run(t, 2000);
  /* Node 0 is lost; its backup comes back in its place. */
  bench_disconnect(t, 0, 1);
  vs_node_close(t->h.nodes[0]);
  vt_rmrf(t->h.dirs[0]);
  snprintf(t->h.dirs[0], sizeof t->h.dirs[0], "%s", backup);
  bench_open(t, 0);
  uint64_t seq = 0;
  assert_err(vs_wal_head(vs_node_store(t->h.nodes[0]), t->h.ids[0].pk, &seq, NULL, NULL), VS_OK);
  assert_int_equal(seq, 2);
  bench_connect(t, 0, 1);
  bench_run(t, 5000);
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.own_ops_restored, 4);
  assert_int_equal(st.rejected_vv_future, 0);
  assert_int_equal(restoring(t), 0);
  vs_write_result res;
  vs_write_req req = {"put", (const uint8_t *)"x", 1, (const uint8_t *)"7", 1, NULL, 0};
  assert_err(vs_node_write(t->h.nodes[0], &req, t->h.now_ms, &res), VS_OK);
  assert_int_equal(res.seq, 7);
  expect_legit_sync(t, "backup");
  bench_free(t);
}

/* How many CLOSE outputs were captured. */
static uint32_t caps_count_closes(const bench *t) {
  uint32_t closes = 0;
  for (uint32_t k = 0; k < t->ncaps; k++) closes += t->caps[k].close ? 1u : 0u;
  return closes;
}

/* 64 connections that never finish (silent, garbage, or stuck after HELLO)
 * hold every slot; those without a valid HELLO are closed at the HELLO
 * deadline (1 s), the rest at the handshake deadline (5 s); a real peer
 * gets in. */
static void test_node_handshake_flood_times_out(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "flood", "a");
  vt_node_write_kv(t->h.nodes[1], t->h.now_ms, "put", "flood-b", "b");
  uint64_t rng = 99;
  uint32_t opened = 0, no_hello = 0;
  for (uint32_t k = 0; k < VS_NODE_PEERS_MAX + 8; k++) {
    uint32_t h = 1000 + k;
    vs_err err = vs_node_peer_up(t->h.nodes[0], h, false, t->h.now_ms);
    if (err == VS_ERR_LIMIT) break;
    assert_err(err, VS_OK);
    opened++;
    if (k % 3 != 2 || k % 6 == 2) no_hello++; /* a HELLO alone proves no key: it gets a COOKIE only */
    if (k % 3 == 1) { /* garbage that is not a handshake step: refused, slot kept */
      uint8_t junk[96];
      vt_sm_fill(&rng, junk, sizeof junk);
      junk[0] = VS_WIRE_VERSION;
      junk[1] = (uint8_t)(VS_FRAME_REPLY + sm_below(&rng, 3)); /* REPLY, AUTH or DATA to a responder */
      assert_true(vt_node_on_frame(t->h.nodes[0], h, junk, 2 + sm_below(&rng, sizeof junk - 2), t->h.now_ms) != VS_OK);
    } else if (k % 3 == 2) { /* a valid HELLO (and, every other time, HELLO2), then silence */
      fake g;
      fake_init(&g, h, 0x60);
      uint8_t eph[32];
      size_t len = 0;
      vt_sm_fill(&rng, eph, sizeof eph);
      assert_err(vs_hs_start_initiator(&g.hs, &g.id, g.mesh, eph, g.hello, sizeof g.hello, &len), VS_OK);
      assert_err(vt_node_on_frame(t->h.nodes[0], h, g.hello, len, t->h.now_ms), VS_OK);
      if (k % 6 == 5) {
        bool close = false, done = false;
        bench_pump(t);
        assert_true(cap_take(t, 0, h, &close, g.cookie, sizeof g.cookie, &len));
        assert_err(vs_hs_on_frame(&g.hs, g.cookie, len, g.hello2, sizeof g.hello2, &len, &done, &g.sess), VS_OK);
        assert_err(vt_node_on_frame(t->h.nodes[0], h, g.hello2, len, t->h.now_ms), VS_OK);
      }
      vs_hs_wipe(&g.hs);
    }
  }
  assert_int_equal(opened, VS_NODE_PEERS_MAX);
  bench_pump(t);
  caps_clear(t);
  /* Locked out until the HELLO deadline. */
  assert_err(vs_node_peer_up(t->h.nodes[0], 1, false, t->h.now_ms), VS_ERR_LIMIT);
  vs_node_cfg d;
  vs_node_cfg_default(&d);
  assert_true(d.hello_timeout_ms <= 1000 && d.hello_timeout_ms < d.handshake_timeout_ms);
  assert_true(t->h.wake[0] <= t->h.now_ms + d.hello_timeout_ms);
  bench_run(t, d.hello_timeout_ms - 1);
  assert_err(vs_node_peer_up(t->h.nodes[0], 1, false, t->h.now_ms), VS_ERR_LIMIT);
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, 0);
  assert_int_equal(t->ncaps, 0);
  /* At the HELLO deadline: every connection without a valid HELLO2. */
  bench_run(t, 1);
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, no_hello);
  assert_int_equal(caps_count_closes(t), no_hello);
  caps_clear(t);
  /* Those that sent a valid HELLO2 keep the whole handshake deadline. */
  bench_run(t, d.handshake_timeout_ms - d.hello_timeout_ms - 1);
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, no_hello);
  assert_int_equal(t->ncaps, 0);
  bench_run(t, 1);
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.handshakes_timeout, VS_NODE_PEERS_MAX);
  uint32_t closes = 0;
  for (uint32_t k = 0; k < t->ncaps; k++) closes += t->caps[k].close ? 1u : 0u;
  assert_int_equal(closes, VS_NODE_PEERS_MAX - no_hello);
  caps_clear(t);
  /* A real peer now connects and syncs. */
  bench_connect(t, 1, 0);
  bench_run(t, 3000);
  snap a, b;
  snap_take(t->h.nodes[0], &a);
  snap_take(t->h.nodes[1], &b);
  assert_memory_equal(a.hash, b.hash, VS_HASH_BYTES);
  assert_string_equal(a.vv.text, b.vv.text);
  assert_int_equal(vs_node_peers_ready(t->h.nodes[0]), 1);
  /* And the flood can come back: the slots are reusable. */
  for (uint32_t k = 0; k < VS_NODE_PEERS_MAX - 1; k++)
    assert_err(vs_node_peer_up(t->h.nodes[0], 5000 + k, false, t->h.now_ms), VS_OK);
  assert_err(vs_node_peer_up(t->h.nodes[0], 6000, false, t->h.now_ms), VS_ERR_LIMIT);
  bench_free(t);
}

/* node.h: an entry is DONE once ack_quorum DISTINCT peers hold it. One peer
 * that reconnects (into another connection slot) is still one peer. */
static void test_node_quorum_counts_distinct_peers(void **state) {
  (void)state;
  bench *t = bench_new(3);
  t->ack_quorum[0] = 2;
  vs_node_close(t->h.nodes[0]);
  bench_open(t, 0);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "q", "1");
  bench_connect(t, 0, 1);
  bench_run(t, 30000);
  vs_outbox_counts c;
  vt_node_outbox_counts(t->h.nodes[0], &c);
  assert_int_equal(c.done, 0);
  /* B comes back while its old slot is taken by a half-open connection. */
  bench_disconnect(t, 0, 1);
  assert_err(vs_node_peer_up(t->h.nodes[0], FAKE_HANDLE, false, t->h.now_ms), VS_OK);
  bench_connect(t, 0, 1);
  bench_run(t, 30000);
  vt_node_outbox_counts(t->h.nodes[0], &c);
  assert_int_equal(c.done, 0);
  caps_clear(t);
  /* A second peer: now two distinct peers hold it. */
  bench_connect(t, 2, 0);
  bench_run(t, 60000);
  vt_node_outbox_counts(t->h.nodes[0], &c);
  assert_int_equal(c.done, 1);
  assert_int_equal(c.pending + c.inflight + c.failed, 0);
  caps_clear(t);
  bench_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_rejects_other_mesh),
      cmocka_unit_test(test_node_rejects_forged_and_replayed_data),
      cmocka_unit_test(test_node_rejects_data_before_handshake),
      cmocka_unit_test(test_node_rejects_truncated_frames),
      cmocka_unit_test(test_node_rejects_bad_frame_headers),
      cmocka_unit_test(test_node_rejects_bad_messages_in_session),
      cmocka_unit_test(test_node_rejects_bad_runs),
      cmocka_unit_test(test_node_fork_voids_the_origin_everywhere),
      cmocka_unit_test(test_node_forged_fork_evidence_closes_the_session),
      cmocka_unit_test(test_node_fork_found_by_bisection),
      cmocka_unit_test(test_node_verdict_lowerings_are_rate_limited),
      cmocka_unit_test(test_node_rejects_replayed_transcript),
      cmocka_unit_test(test_node_vector_beyond_own_head_is_refused),
      cmocka_unit_test(test_node_restored_copy_takes_its_ops_back),
      cmocka_unit_test(test_node_restored_copy_catches_up_from_peer),
      cmocka_unit_test(test_node_handshake_flood_times_out),
      cmocka_unit_test(test_node_quorum_counts_distinct_peers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
