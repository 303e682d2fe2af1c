/* vs_node under floods and the attacks reviews found (split from
 * test_node_property.c, its section 4 and after): runs from thousands of
 * fresh origins (refused past the origin quota; accepted with the quota
 * raised, after which the store still opens and a vector of more than one
 * message travels in parts); peers that acknowledge nothing, or answer with
 * empty or falling vectors, get at most the in-flight window per backed-off
 * resend; the findings of the review of the hardening work (cookie secret
 * rotation, claim deadlines, ...); fork evidence under attack.
 * Built twice: the _prepared copy delivers every frame through the receive
 * pipeline instead of vs_node_on_frame (tests/prepared.h), and must pass
 * the same assertions. Time is virtual. */
#define _XOPEN_SOURCE 700

#include "node_bench.h"

/* =====================================================================
 * 4. Issue 14: origin floods, vectors in parts, peers that ack nothing
 * ===================================================================== */

#define FLOOD_ORIGINS 5000u /* past VS_WIRE_VV_MAX: a vector of two parts */

/* Runs of origins first..first+total-1 (one op each, fresh identities). */
static void flood_range(bench *t, fake *f, uint32_t first, uint32_t total) {
  uint8_t *msg = malloc(VS_MSG_BYTES_MAX), *frame = malloc(VS_FRAME_BYTES_MAX);
  assert_non_null(msg);
  assert_non_null(frame);
  uint32_t next = first;
  while (next < first + total) {
    uint32_t left = first + total - next, runs = left < 500 ? left : 500;
    size_t mlen = flood_msg(&next, runs, msg, VS_MSG_BYTES_MAX);
    size_t flen = fake_seal(f, msg, mlen, frame, VS_FRAME_BYTES_MAX);
    assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_OK);
  }
  free(msg);
  free(frame);
}

static uint64_t vv_count(vs_node *node) {
  vv_buf b;
  assert_err(vv_text(vs_node_store(node), &b), VS_OK);
  uint64_t n = 0;
  for (size_t i = 0; i < b.len; i++) n += b.text[i] == ';' ? 1u : 0u;
  return n; /* vv_text truncates past 4 KiB of text: only for small vectors */
}

static vs_err count_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  (void)origin;
  (void)seq;
  (*(uint64_t *)ctx)++;
  return VS_OK;
}

static uint64_t origins_held(vs_node *node) {
  uint64_t n = 0;
  assert_err(vs_vv_each(vs_node_store(node), count_cb, &n), VS_OK);
  return n;
}

/* Default quota: 64 new origins, the rest refused before anything of them
 * is stored, and counted; a minute later 64 more get in. */
static void test_node_origin_flood_is_refused_past_the_quota(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint64_t held0 = origins_held(t->h.nodes[0]);
  assert_int_equal(vv_count(t->h.nodes[0]), held0);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  flood(t, &f, FLOOD_ORIGINS);
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.rejected_origin_quota - s0.st.rejected_origin_quota, FLOOD_ORIGINS - 64);
  assert_int_equal(st.runs_applied - s0.st.runs_applied, 64);
  assert_int_equal(origins_held(t->h.nodes[0]), held0 + 64);
  /* Refused runs stored nothing: the WAL grew by exactly the 64 accepted. */
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(vs_node_store(t->h.nodes[0]), &lsn), VS_OK);
  assert_int_equal(lsn, s0.lsn + 64);
  /* The same flood again: the 64 held are duplicates, no token left. */
  t->h.now_ms += 1000; /* about one token */
  flood(t, &f, FLOOD_ORIGINS);
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_true(origins_held(t->h.nodes[0]) <= held0 + 64 + 2);
  /* A minute refills the bucket: 64 more, no more. */
  t->h.now_ms += 60000;
  uint64_t before = origins_held(t->h.nodes[0]);
  flood(t, &f, FLOOD_ORIGINS);
  assert_int_equal(origins_held(t->h.nodes[0]), before + 64);
  /* The honest peer still syncs both ways; the origins node 0 took in
   * reach it under its own quota of node 0 (64 a minute): minutes. */
  bench_run(t, 4u * 60u * 1000u);
  assert_int_equal(origins_held(t->h.nodes[1]), origins_held(t->h.nodes[0]));
  expect_legit_sync(t, "origin-flood");
  bench_free(t);
}

/* The quota is per identity, and identities cost nothing to a holder of the
 * mesh key (the review's bypass: handshake as a fresh identity, spend its
 * bucket, repeat). A node-wide bucket of 4x the per-peer quota bounds the
 * sum: eight fresh identities of 100 new origins each get 256 in, not 512. */
static void test_node_origin_quota_bounds_fresh_identities_together(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  uint64_t held0 = origins_held(t->h.nodes[0]);
  vs_node_stats s0, st;
  vs_node_stats_get(t->h.nodes[0], &s0);
  fake g[8];
  for (uint32_t k = 0; k < 8; k++) { /* all dial first: their greetings are small vectors */
    fake_init(&g[k], FAKE_HANDLE + 40 + k, (uint8_t)(0x90 + k));
    fake_dial(t, &g[k], 0);
    caps_clear(t);
  }
  for (uint32_t k = 0; k < 8; k++) flood_range(t, &g[k], 10000 + 100 * k, 100);
  caps_clear(t);
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(origins_held(t->h.nodes[0]), held0 + 4 * 64);
  assert_int_equal(st.rejected_origin_quota - s0.rejected_origin_quota, 800 - 4 * 64);
  /* A minute refills the node-wide bucket too: one more peer's worth from
   * the last identity, whose own bucket is full again. */
  t->h.now_ms += 60000;
  flood_range(t, &g[7], 20000, 100);
  caps_clear(t);
  assert_int_equal(origins_held(t->h.nodes[0]), held0 + 4 * 64 + 64);
  bench_free(t);
}

/* ---- findings of the review of the hardening work ---- */

/* Rotation is lazy: after a quiet spell the old secret must not live on as
 * the previous one. A HELLO2 captured at t0, replayed from the same address
 * three periods later, is refused (it got a REPLY when the stale secret was
 * kept as the previous one). */
static void test_node_cookie_secret_dies_after_a_quiet_spell(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* f's HELLO2 carries a cookie of this node's current secret */
  t->h.now_ms += 3u * VS_NODE_COOKIE_ROTATE_MS;
  const uint32_t h = FAKE_HANDLE + 70;
  assert_err(vs_node_peer_up(t->h.nodes[0], h, false, t->h.now_ms), VS_OK); /* same (empty) address */
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  assert_err(vt_node_on_frame(t->h.nodes[0], h, f.hello2, sizeof f.hello2, t->h.now_ms), VS_ERR_AUTH);
  expect_refused(t->h.nodes[0], &s0, "rejected_auth", 1, "stale HELLO2");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, h, false), 0); /* no REPLY */
  caps_clear(t);
  bench_free(t);
}

/* The cookie round costs a round trip: a HELLO that arrives late in its
 * HELLO period earns one more period for its HELLO2. */
static void test_node_cookie_round_gets_one_more_hello_period(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vs_node_cfg d;
  vs_node_cfg_default(&d);
  fake g;
  fake_init(&g, FAKE_HANDLE + 71, 0x61);
  assert_err(vs_node_peer_up(t->h.nodes[0], g.handle, false, t->h.now_ms), VS_OK);
  t->h.now_ms += d.hello_timeout_ms - 100;
  uint8_t eph[32];
  size_t len = 0;
  bool close = false, done = false;
  vt_sm_fill(&t->h.rng, eph, sizeof eph);
  assert_err(vs_hs_start_initiator(&g.hs, &g.id, g.mesh, eph, g.hello, sizeof g.hello, &len), VS_OK);
  assert_err(vt_node_on_frame(t->h.nodes[0], g.handle, g.hello, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, g.cookie, sizeof g.cookie, &len));
  assert_false(close);
  t->h.now_ms += d.hello_timeout_ms - 100; /* past the first period, within the second */
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, g.handle, true), 0);
  assert_err(vs_hs_on_frame(&g.hs, g.cookie, len, g.hello2, sizeof g.hello2, &len, &done, &g.sess), VS_OK);
  assert_err(vt_node_on_frame(t->h.nodes[0], g.handle, g.hello2, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, g.handle, &close, g.reply, sizeof g.reply, &len));
  assert_false(close);
  assert_int_equal(len, VS_REPLY_BYTES);
  vs_hs_wipe(&g.hs);
  caps_clear(t);
  bench_free(t);
}

/* A peer that claims our own ops beyond our head cannot stay forever by
 * trickling ops of its own origin: only our own ops renew its deadline. */
static void test_node_claim_deadline_renewed_only_by_own_ops(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  bench_disconnect(t, 0, 1);
  chain mine; /* the liar's own origin */
  chain_init(&mine, &f.id);
  fake_send_vv1(t, &f, t->h.ids[0].pk, VS_OP_SEQ_MAX);
  bool closed = false;
  for (int k = 0; k < 12 && !closed; k++) { /* a run of its own every 2 s for 24 s */
    fake_send_chain(t, &f, &mine, 1);
    bench_run(t, 2000);
    bool close = false;
    uint8_t buf[8192];
    size_t len = 0;
    while (cap_take(t, 0, f.handle, &close, buf, sizeof buf, &len)) closed = closed || close;
  }
  assert_true(closed);
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.rejected_vv_future, 1);
  assert_int_equal(restoring(t), 0);
  bench_free(t);
}

/* Decode one captured VV part (sealed by node `i` for the fake). */
static bool fake_take_vv(bench *t, fake *f, uint32_t i, vs_vv_part *part, uint32_t *count) {
  bool close = false;
  size_t len = 0, msg_len = 0;
  uint8_t *buf = malloc(VS_FRAME_BYTES_MAX), *msg = malloc(VS_FRAME_BYTES_MAX);
  vs_vv_entry *e = malloc(sizeof *e * VS_WIRE_VV_MAX);
  assert_non_null(buf);
  assert_non_null(msg);
  assert_non_null(e);
  bool got = false;
  while (!got && cap_take(t, i, f->handle, &close, buf, VS_FRAME_BYTES_MAX, &len)) {
    assert_false(close);
    assert_err(vs_session_open(&f->sess, buf, len, msg, VS_FRAME_BYTES_MAX, &msg_len), VS_OK);
    if (msg[0] != VS_MSG_VV) continue;
    assert_err(vs_msg_vv_decode(msg, msg_len, part, e, VS_WIRE_VV_MAX, count), VS_OK);
    got = true;
  }
  free(buf);
  free(msg);
  free(e);
  return got;
}

/* Quota raised so the store accepts all 5,000 origins: the store opens
 * again (before issue 14 a store past 4,096 origins failed every open with
 * VS_ERR_LIMIT), its vector travels in two parts, and a peer converges. */
static void test_node_thousands_of_origins_reopen_and_converge(void **state) {
  (void)state;
  fake f;
  bench *t = bench_new(2);
  for (uint32_t i = 0; i < 2; i++) {
    t->origin_quota[i] = 100000;
    vs_node_close(t->h.nodes[i]);
    bench_open(t, i);
  }
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "a", "1");
  fake_init(&f, FAKE_HANDLE, 0x77);
  fake_dial(t, &f, 0);
  caps_clear(t);
  flood(t, &f, FLOOD_ORIGINS);
  vs_node_stats st;
  vs_node_stats_get(t->h.nodes[0], &st);
  assert_int_equal(st.rejected_origin_quota, 0);
  assert_int_equal(origins_held(t->h.nodes[0]), FLOOD_ORIGINS + 1);
  /* Its acknowledgement to the fake is one vector in two parts. */
  caps_clear(t);
  bench_pump(t);
  vs_vv_part part;
  uint32_t count = 0, total = 0;
  assert_true(fake_take_vv(t, &f, 0, &part, &count));
  assert_int_equal(part.part, 0);
  assert_int_equal(part.parts, 2);
  total += count;
  uint64_t vector = part.vector;
  assert_true(fake_take_vv(t, &f, 0, &part, &count));
  assert_int_equal(part.part, 1);
  assert_int_equal(part.vector, vector);
  total += count;
  assert_int_equal(total, FLOOD_ORIGINS + 1);
  caps_clear(t);
  /* Restart: the store opens (it failed with VS_ERR_LIMIT before). */
  (void)vs_node_peer_down(t->h.nodes[0], f.handle, t->h.now_ms);
  vs_node_close(t->h.nodes[0]);
  bench_open(t, 0);
  assert_int_equal(origins_held(t->h.nodes[0]), FLOOD_ORIGINS + 1);
  /* An honest peer gets all of it and both vectors, of two parts each,
   * settle: equal vectors, and then nothing but periodic vectors flows. */
  bench_connect(t, 0, 1);
  bench_run(t, 20000);
  assert_int_equal(origins_held(t->h.nodes[1]), FLOOD_ORIGINS + 1);
  uint8_t h0[VS_HASH_BYTES], h1[VS_HASH_BYTES];
  assert_err(vs_state_hash(vs_node_store(t->h.nodes[0]), h0), VS_OK);
  assert_err(vs_state_hash(vs_node_store(t->h.nodes[1]), h1), VS_OK);
  assert_memory_equal(h0, h1, VS_HASH_BYTES);
  vs_node_stats a0, a1;
  vs_node_stats_get(t->h.nodes[0], &a0);
  bench_run(t, 60000);
  vs_node_stats_get(t->h.nodes[0], &a1);
  assert_int_equal(a1.runs_sent, a0.runs_sent); /* acknowledged in parts: nothing resent */
  assert_int_equal(a1.resends, a0.resends);
  expect_legit_sync(t, "after-flood");
  bench_free(t);
}

/* The fake after its handshake: every frame node 0 sends it is counted; in
 * `answer` mode each batch of frames is answered with an empty vector (a
 * new vector number each time), else it stays silent. Runs `ms` of virtual
 * time. Returns the bytes node 0 sent it. */
static uint64_t fake_sink(bench *t, fake *f, uint64_t ms, bool answer, uint64_t *vector, bool *closed) {
  uint64_t end = t->h.now_ms + ms, bytes = 0;
  uint8_t vv[VS_MSG_VV_HEADER_BYTES], frame[256];
  for (uint32_t step = 0; step < 1000000; step++) {
    bench_pump(t);
    uint32_t frames = 0;
    for (uint32_t k = 0; k < t->ncaps; k++) {
      if (t->caps[k].handle != f->handle) continue;
      if (t->caps[k].close) *closed = true;
      bytes += t->caps[k].len;
      frames++;
    }
    caps_clear(t);
    if (answer && frames > 0 && !*closed) {
      size_t vlen = 0;
      vs_vv_part part = {++*vector, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
      assert_err(vs_msg_vv_encode(&part, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
      size_t flen = fake_seal(f, vv, vlen, frame, sizeof frame);
      assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_OK);
      continue; /* answered at this instant: pump again */
    }
    uint64_t wake = t->h.wake[0];
    if (wake >= end) break;
    t->h.now_ms = wake > t->h.now_ms ? wake : t->h.now_ms + 1;
  }
  t->h.now_ms = end;
  return bytes;
}

/* The resends the backoff allows within `ms` of the first push: waits of
 * resend_ms, 2x, 4x ... capped at resend_max_ms. */
static uint64_t resends_allowed(const vs_node_cfg *d, uint64_t ms) {
  uint64_t at = 0, wait = d->resend_ms, n = 0;
  for (; n < 100000; n++) {
    at += wait;
    if (at > ms) break;
    wait = wait * 2 < d->resend_max_ms ? wait * 2 : d->resend_max_ms;
  }
  return n;
}

/* 4 MiB of our own ops, a 256 KiB window and peers that, for ten minutes of
 * virtual time, acknowledge nothing or answer every frame with an empty
 * vector: each gets at most (window + one message) per backed-off resend.
 * Before issue 14 the empty answers reset the window and such a peer
 * pulled the whole store every resend_ms. */
static void test_node_peer_acking_nothing_gets_window_per_backoff(void **state) {
  (void)state;
  for (int answer = 0; answer < 2; answer++) {
    bench *t = bench_new(1);
    t->inflight_max[0] = 256u * 1024u;
    vs_node_close(t->h.nodes[0]);
    bench_open(t, 0);
    static uint8_t value[1024];
    memset(value, 'v', sizeof value);
    vs_write_req *reqs = calloc(4096, sizeof *reqs);
    assert_non_null(reqs);
    char (*keys)[16] = calloc(4096, 16);
    assert_non_null(keys);
    for (uint32_t k = 0; k < 4096; k++) {
      snprintf(keys[k], 16, "k%u", k);
      reqs[k] = (vs_write_req){"put", (const uint8_t *)keys[k], (uint32_t)strlen(keys[k]), value, sizeof value,
                               NULL, 0};
    }
    assert_err(vs_node_write_batch(t->h.nodes[0], reqs, 4096, t->h.now_ms, NULL), VS_OK);
    free(reqs);
    free(keys);
    fake f;
    fake_init(&f, FAKE_HANDLE, 0x77);
    fake_dial(t, &f, 0);
    uint64_t vector = 0;
    bool closed = false;
    if (!answer) { /* one empty vector, then silence */
      uint8_t vv[VS_MSG_VV_HEADER_BYTES], frame[256];
      size_t vlen = 0;
      vs_vv_part part = {++vector, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
      assert_err(vs_msg_vv_encode(&part, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
      size_t flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
      assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);
    }
    const uint64_t ms = 10u * 60u * 1000u;
    uint64_t bytes = fake_sink(t, &f, ms, answer != 0, &vector, &closed);
    assert_false(closed);
    vs_node_cfg d;
    vs_node_cfg_default(&d);
    uint64_t allowed = resends_allowed(&d, ms);
    vs_node_stats st;
    vs_node_stats_get(t->h.nodes[0], &st);
    uint64_t window = t->inflight_max[0] + VS_FRAME_BYTES_MAX;
    /* Vectors: one a second at most, each well under 64 bytes here. */
    uint64_t vv_bytes = (ms / 1000 + 1 + vector) * 64u;
    print_message("  %s: %" PRIu64 " bytes in %" PRIu64 " s, %" PRIu64 " resends (backoff allows %" PRIu64
                  ", bound %" PRIu64 " bytes)\n",
                  answer ? "empty-vector answers" : "silent", bytes, ms / 1000, st.resends, allowed,
                  window * (1 + allowed) + vv_bytes);
    assert_true(st.resends <= allowed);
    assert_true(bytes <= window * (1 + allowed) + vv_bytes);
    assert_true(bytes >= t->inflight_max[0]); /* it did get the window */
    bench_free(t);
  }
}

/* A vector that falls within a session closes it (rejected_vv_regress); an
 * older vector arriving late (reordered) is ignored, not a fall; a part out
 * of order is dropped without harm. */
static void test_node_vector_going_backwards_closes_the_session(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  for (int k = 0; k < 5; k++) vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "x", "1");
  bench_run(t, 100);
  caps_clear(t);
  uint64_t own = 0;
  assert_err(vs_wal_head(vs_node_store(t->h.nodes[0]), t->h.ids[0].pk, &own, NULL, NULL), VS_OK);
  assert_true(own >= 5);
  vs_vv_entry e = {{0}, own, {0}, 0, 0, false};
  memcpy(e.origin, t->h.ids[0].pk, VS_ORIGIN_BYTES);
  uint8_t vv[VS_MSG_VV_HEADER_BYTES + 48], frame[256];
  size_t vlen = 0, flen = 0;
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  /* Vector 3 holds all of node 0's ops; vector 2 (empty) arrives late. */
  assert_err(vs_msg_vv_encode(&(vs_vv_part){3, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0}, &e, 1, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);
  assert_err(vs_msg_vv_encode(&(vs_vv_part){2, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);
  /* Part 1 of a vector whose part 0 never came: dropped, no harm. */
  assert_err(vs_msg_vv_encode(&(vs_vv_part){5, 1, 2, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0}, &e, 1, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);
  expect_only(t->h.nodes[0], &s0, "none", 0, "late vector, lone part");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  /* Vector 6, empty: node 0's entry fell from `own` to 0. A fork verdict
   * node 0 has not had yet could explain it: the old entry stands for a
   * claim grace, then, no verdict having come, the session closes. */
  assert_err(vs_msg_vv_encode(&(vs_vv_part){6, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0}, NULL, 0, vv, sizeof vv, &vlen), VS_OK);
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_OK);
  expect_only(t->h.nodes[0], &s0, "none", 0, "falling vector, within the grace");
  bench_pump(t);
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  bench_run(t, 30000);
  expect_refused(t->h.nodes[0], &s0, "rejected_vv_regress", 1, "falling vector");
  assert_int_equal(caps_count(t, 0, f.handle, true), 1);
  /* Closed: its frames are for an unknown connection now. */
  flen = fake_seal(&f, vv, vlen, frame, sizeof frame);
  assert_err(vt_node_on_frame(t->h.nodes[0], f.handle, frame, flen, t->h.now_ms), VS_ERR_NOTFOUND);
  expect_legit_sync(t, "vv-regress");
  bench_free(t);
}

/* ---- fork evidence under attack (an adversarial review of issue 14 item 5) ---- */

/* Twelve verdicts, each leaving an op only its evidence vouches for (the
 * zero signature): a new session gets every verdict before any run, so the
 * honest peer never counts one as forged, and ends on the same verdicts
 * and state (at VS_NODE_VERDICTS_PER_MIN). */
static void test_node_vouched_runs_follow_their_evidence(void **state) {
  (void)state;
  enum { TWINS = 12 };
  bench *t = bench_new(2);
  vs_store *s0 = vs_node_store(t->h.nodes[0]);
  for (uint32_t k = 0; k < TWINS; k++) {
    vs_identity tw;
    vt_identity_from_byte((uint8_t)(0xA0 + k), &tw);
    chain a;
    chain_init(&a, &tw);
    encop o1, o2a, o2b;
    chain_op(&a, tw.pk, "put", "z", "1", &o1);
    chain b = a;
    chain_op(&a, tw.pk, "put", "z", "A", &o2a);
    chain_op(&b, tw.pk, "put", "z", "B", &o2b);
    uint8_t sa[VS_SIGNATURE_BYTES], sb[VS_SIGNATURE_BYTES];
    sign_last(&tw, &o2a, sa); /* signed only at 2: op 1 gets the zero signature */
    sign_last(&tw, &o2b, sb);
    encop run_a[2] = {o1, o2a};
    store_run(t, 0, run_a, 2, sa);
    vs_op op;
    assert_err(vs_op_decode(o2b.enc, o2b.len, &op), VS_OK);
    vs_apply_result r;
    assert_err(vs_apply_run(s0, &op, 1, sb, t->h.now_ms, VS_MAX_DRIFT_MS_DEFAULT, &r), VS_ERR_FORK);
    assert_true(r.verdict);
    vs_identity_wipe(&tw);
  }
  vs_node_close(t->h.nodes[0]);
  bench_open(t, 0);
  bench_connect(t, 0, 1);
  bench_run(t, 150000); /* 12 verdicts at VS_NODE_VERDICTS_PER_MIN */
  snap a, b;
  snap_take(t->h.nodes[0], &a);
  snap_take(t->h.nodes[1], &b);
  print_message("node1: forks=%llu runs_forged=%llu runs_void=%llu rejected_vv_regress=%llu\n",
                (unsigned long long)b.forks, (unsigned long long)b.st.runs_forged,
                (unsigned long long)b.st.runs_void, (unsigned long long)b.st.rejected_vv_regress);
  assert_int_equal(b.forks, TWINS);
  assert_memory_equal(a.hash, b.hash, VS_HASH_BYTES);
  /* An honest peer's frames are never rejected as forged (DESIGN.md, simulator checks). */
  assert_int_equal(b.st.runs_forged, 0);
  bench_free(t);
}

/* Bytes node frames sent to `handle` so far (captured), then forgotten. */
static uint64_t drain_bytes(bench *t, uint32_t handle) {
  uint64_t sum = 0;
  for (uint32_t k = 0; k < t->ncaps; k++)
    if (t->caps[k].handle == handle && !t->caps[k].close) sum += t->caps[k].len;
  caps_clear(t);
  return sum;
}

/* A member that acknowledges nothing asks with a WANT every 250 ms (the
 * quota): answers take in-flight credit like pushed runs, so in a minute it
 * gets no more than the window beyond what it gets without asking. */
static void test_node_want_answers_take_inflight_credit(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  static uint8_t big[60 * 1024];
  memset(big, 'x', sizeof big);
  for (uint32_t i = 0; i < 24; i++) { /* ~1.4 MiB of node 0's own ops, each commit signed */
    vs_write_req req = {"put", (const uint8_t *)"big", 3, big, sizeof big, NULL, 0};
    assert_err(vs_node_write(t->h.nodes[0], &req, t->h.now_ms, NULL), VS_OK);
  }
  bench_run(t, 2000);
  (void)drain_bytes(t, f.handle);
  /* Baseline: one minute, the fake acknowledges nothing and asks nothing. */
  uint64_t base = 0;
  for (uint32_t s = 0; s < 240; s++) {
    bench_run(t, 250);
    base += drain_bytes(t, f.handle);
  }
  /* The same minute with one WANT every 250 ms (the quota: 240/min). */
  vs_node_stats st0, st1;
  vs_node_stats_get(t->h.nodes[0], &st0);
  uint64_t with = 0;
  for (uint32_t s = 0; s < 240; s++) {
    uint8_t m[VS_MSG_WANT_BYTES], frame[256];
    size_t len = 0;
    assert_err(vs_msg_want_encode(t->h.ids[0].pk, 1, m, sizeof m, &len), VS_OK);
    size_t fl = fake_seal(&f, m, len, frame, sizeof frame);
    (void)vt_node_on_frame(t->h.nodes[0], f.handle, frame, fl, t->h.now_ms);
    bench_run(t, 250);
    with += drain_bytes(t, f.handle);
  }
  vs_node_stats_get(t->h.nodes[0], &st1);
  print_message("bytes to a silent peer in 60 s: %llu without WANTs, %llu with 240 WANTs (%llu served); window %u\n",
                (unsigned long long)base, (unsigned long long)with,
                (unsigned long long)(st1.wants_served - st0.wants_served), 4u * 1024u * 1024u);
  /* Issue 14 item 4: a peer gets at most the in-flight window plus backed-off resends. */
  assert_true(with <= base + 4ull * 1024 * 1024);
  bench_free(t);
}

/* A node whose own identity is voided: its writes are refused
 * (VS_ERR_FORKED) and the outbox entries of its void writes are FAILED
 * with the reason, not PENDING forever. */
static void test_node_own_identity_voided_fails_its_outbox(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f); /* node 0 wrote seq 1 ("a") */
  bench_disconnect(t, 0, 1); /* seq 2 is written offline: never acknowledged */
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "a2", "x");
  bench_run(t, 2000);
  uint64_t head = 0, hlc = 0;
  uint8_t hh[VS_HASH_BYTES];
  assert_err(vs_wal_head(vs_node_store(t->h.nodes[0]), t->h.ids[0].pk, &head, hh, &hlc), VS_OK);
  assert_int_equal(head, 2);
  /* A copy of node 0's data directory at seq 1 wrote another seq 2. */
  vs_op_id id1;
  vs_op_id_derive(t->h.ids[0].pk, 1, &id1);
  chain c;
  chain_init(&c, &t->h.ids[0]);
  c.seq = 1;
  c.hlc = hlc;
  {
    /* prev of our seq 2 = hash of seq 1: take it from the WAL */
    encop two[2];
    uint8_t sig[VS_SIGNATURE_BYTES];
    grab_ops(vs_node_store(t->h.nodes[0]), t->h.ids[0].pk, two, sig);
    memcpy(c.head, two[0].hash, VS_HASH_BYTES);
  }
  encop alt;
  chain_op(&c, t->h.ids[0].pk, "put", "a2", "copy", &alt);
  uint8_t sig[VS_SIGNATURE_BYTES];
  sign_last(&t->h.ids[0], &alt, sig);
  (void)fake_send_run(t, &f, t->h.ids[0].pk, sig, &alt, 1);
  uint64_t vf = 0;
  assert_err(vs_apply_void_from(vs_node_store(t->h.nodes[0]), t->h.ids[0].pk, &vf), VS_OK);
  assert_int_equal(vf, 2);
  vs_write_req w = {"put", (const uint8_t *)"after", 5, (const uint8_t *)"v", 1, NULL, 0};
  assert_err(vs_node_write(t->h.nodes[0], &w, t->h.now_ms, NULL), VS_ERR_FORKED);
  bench_connect(t, 0, 1);
  bench_run(t, 10 * 60000);
  vs_outbox_counts oc;
  vt_node_outbox_counts(t->h.nodes[0], &oc);
  print_message("own void: outbox pending=%llu inflight=%llu done=%llu failed=%llu\n", (unsigned long long)oc.pending,
                (unsigned long long)oc.inflight, (unsigned long long)oc.done, (unsigned long long)oc.failed);
  assert_int_equal(oc.pending + oc.inflight, 0);
  assert_int_equal(oc.failed, 1); /* the void write */
  bench_free(t);
}

/* Apply a hand-built run straight to a store, expecting `want`. */
static void apply_enc(vs_store *st, const encop *ops, uint32_t count, const uint8_t *sig, uint64_t now, vs_err want) {
  vs_op op[16];
  for (uint32_t k = 0; k < count; k++) assert_err(vs_op_decode(ops[k].enc, ops[k].len, &op[k]), VS_OK);
  vs_apply_result r;
  assert_err(vs_apply_run(st, op, count, sig, now, VS_MAX_DRIFT_MS_DEFAULT, &r), want);
}

/* Three branches of one origin: X voids from 4 (its head rests on the
 * zero signature), Y holds a branch parting at 2; they find and prove the
 * fork at 2 and end on one verdict and one state. */
static void test_node_lower_fork_found_below_a_vouched_head(void **state) {
  (void)state;
  bench *t = bench_new(2);
  vs_identity e;
  vt_identity_from_byte(0xC3, &e);
  chain a;
  chain_init(&a, &e);
  encop oa[6], ob[3], oc[2];
  chain_op(&a, e.pk, "put", "k", "1", &oa[0]);
  chain after1 = a;
  chain_op(&a, e.pk, "put", "k", "2", &oa[1]);
  chain_op(&a, e.pk, "put", "k", "3", &oa[2]);
  chain after3 = a;
  for (int k = 3; k < 6; k++) chain_op(&a, e.pk, "put", "k", "A", &oa[k]);
  for (int k = 0; k < 3; k++) chain_op(&after3, e.pk, "put", "k", "B", &ob[k]);
  for (int k = 0; k < 2; k++) chain_op(&after1, e.pk, "put", "k", "C", &oc[k]);
  uint8_t sa[64], sb[64], sc[64];
  sign_last(&e, &oa[5], sa);
  sign_last(&e, &ob[2], sb);
  sign_last(&e, &oc[1], sc);
  vs_store *x = vs_node_store(t->h.nodes[0]), *y = vs_node_store(t->h.nodes[1]);
  apply_enc(x, oa, 6, sa, t->h.now_ms, VS_OK);
  encop brun[6] = {oa[0], oa[1], oa[2], ob[0], ob[1], ob[2]};
  apply_enc(x, brun, 6, sb, t->h.now_ms, VS_ERR_FORK); /* verdict: void from 4 */
  encop crun[3] = {oa[0], oc[0], oc[1]};
  apply_enc(y, crun, 3, sc, t->h.now_ms, VS_OK); /* Y holds branch C: 1, 2'', 3'' */
  for (uint32_t i = 0; i < 2; i++) {
    vs_node_close(t->h.nodes[i]);
    bench_open(t, i);
  }
  bench_connect(t, 0, 1);
  bench_run(t, 5 * 60000);
  snap sx, sy;
  snap_take(t->h.nodes[0], &sx);
  snap_take(t->h.nodes[1], &sy);
  uint64_t vx = 0, vy = 0;
  assert_err(vs_apply_void_from(vs_node_store(t->h.nodes[0]), e.pk, &vx), VS_OK);
  assert_err(vs_apply_void_from(vs_node_store(t->h.nodes[1]), e.pk, &vy), VS_OK);
  print_message("after 5 min: void_from X=%llu Y=%llu, wants_sent %llu+%llu, runs_forged %llu+%llu, vv %s / %s\n",
                (unsigned long long)vx, (unsigned long long)vy, (unsigned long long)sx.st.wants_sent,
                (unsigned long long)sy.st.wants_sent, (unsigned long long)sx.st.runs_forged,
                (unsigned long long)sy.st.runs_forged, sx.vv.text, sy.vv.text);
  assert_int_equal(vx, vy);
  assert_memory_equal(sx.hash, sy.hash, VS_HASH_BYTES);
  vs_identity_wipe(&e);
  bench_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_vouched_runs_follow_their_evidence),
      cmocka_unit_test(test_node_want_answers_take_inflight_credit),
      cmocka_unit_test(test_node_own_identity_voided_fails_its_outbox),
      cmocka_unit_test(test_node_lower_fork_found_below_a_vouched_head),
      cmocka_unit_test(test_node_origin_flood_is_refused_past_the_quota),
      cmocka_unit_test(test_node_origin_quota_bounds_fresh_identities_together),
      cmocka_unit_test(test_node_cookie_secret_dies_after_a_quiet_spell),
      cmocka_unit_test(test_node_cookie_round_gets_one_more_hello_period),
      cmocka_unit_test(test_node_claim_deadline_renewed_only_by_own_ops),
      cmocka_unit_test(test_node_thousands_of_origins_reopen_and_converge),
      cmocka_unit_test(test_node_peer_acking_nothing_gets_window_per_backoff),
      cmocka_unit_test(test_node_vector_going_backwards_closes_the_session),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
