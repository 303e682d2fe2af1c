/* Vectors as deltas (wire v6, issue 18; docs/protocol.md, "Vectors as
 * deltas"): a node tells a peer what changed since the generation it last
 * sent it (wire v7), naming origins the peer already holds by their first
 * bytes; a delta past what the receiver holds is answered with VS_VV_GAP,
 * and a peer that lies about generations, digests or origins gets a whole
 * vector asked of it, a bounded copy, or its session closed, never a wrong
 * view. Time is virtual. */
#define _XOPEN_SOURCE 700

#include "node_bench.h"

/* The next VV part node 0 sent the fake, with its entries (up to max) and
 * the size of its frame (frame_bytes may be NULL). */
static bool take_vv_sized(bench *t, fake *f, vs_vv_part *part, vs_vv_entry *e, uint32_t max, uint32_t *count,
                          size_t *frame_bytes) {
  bool close = false, got = false;
  size_t len = 0, msg_len = 0;
  uint8_t *buf = malloc(VS_FRAME_BYTES_MAX), *msg = malloc(VS_FRAME_BYTES_MAX);
  assert_non_null(buf);
  assert_non_null(msg);
  while (!got && cap_take(t, 0, f->handle, &close, buf, VS_FRAME_BYTES_MAX, &len)) {
    assert_false(close);
    assert_err(vs_session_open(&f->sess, buf, len, msg, VS_FRAME_BYTES_MAX, &msg_len), VS_OK);
    if (msg[0] != VS_MSG_VV) continue;
    assert_err(vs_msg_vv_decode(msg, msg_len, part, e, max, count), VS_OK);
    if (frame_bytes != NULL) *frame_bytes = len;
    got = true;
  }
  free(buf);
  free(msg);
  return got;
}

static bool take_vv(bench *t, fake *f, vs_vv_part *part, vs_vv_entry *e, uint32_t max, uint32_t *count) {
  return take_vv_sized(t, f, part, e, max, count, NULL);
}

/* The last VV part node 0 sent the fake (all captures consumed). */
static bool last_vv(bench *t, fake *f, vs_vv_part *part, vs_vv_entry *e, uint32_t max, uint32_t *count) {
  bool any = false;
  vs_vv_part p;
  memset(&p, 0, sizeof p);
  uint32_t c = 0;
  while (take_vv(t, f, &p, e, max, &c)) {
    *part = p;
    *count = c;
    any = true;
  }
  return any;
}

/* The fake sends node 0 a VV of `count` entries with the given header. */
static void fake_vv(bench *t, fake *f, const vs_vv_part *part, const vs_vv_entry *e, uint32_t count) {
  size_t cap = VS_MSG_VV_HEADER_BYTES + (size_t)count * VS_VV_ENTRY_BYTES_MAX;
  uint8_t *msg = malloc(cap), *frame = malloc(cap + VS_DATA_OVERHEAD_BYTES);
  assert_non_null(msg);
  assert_non_null(frame);
  size_t len = 0;
  assert_err(vs_msg_vv_encode(part, e, count, msg, cap, &len), VS_OK);
  size_t flen = fake_seal(f, msg, len, frame, cap + VS_DATA_OVERHEAD_BYTES);
  assert_err(vt_node_on_frame(t->h.nodes[0], f->handle, frame, flen, t->h.now_ms), VS_OK);
  free(msg);
  free(frame);
}

static uint64_t sum_of(const vs_vv_entry *e, uint32_t count) {
  uint64_t s = 0;
  for (uint32_t i = 0; i < count; i++) s += vs_vv_sum_entry(e[i].origin, e[i].seq, e[i].head);
  return s;
}

static vs_node_stats stats_of(vs_node *node) {
  vs_node_stats st;
  vs_node_stats_get(node, &st);
  return st;
}

static uint64_t stat_resyncs(vs_node *node) { return stats_of(node).vv_resyncs; }

/* Entry `e` (as decoded) names `origin` by its first bytes: a short id. */
static void expect_short(const vs_vv_entry *e, const uint8_t origin[VS_ORIGIN_BYTES]) {
  assert_true(e->short_id);
  assert_memory_equal(e->origin, origin, VS_VV_SHORT_BYTES);
  for (unsigned b = VS_VV_SHORT_BYTES; b < VS_ORIGIN_BYTES; b++) assert_int_equal(e->origin[b], 0);
}

/* A whole vector of `total` entries as vector `number`, in as many parts
 * as it takes, with the digest `sum` (right or not). */
static void fake_whole_parts(bench *t, fake *f, uint64_t number, const vs_vv_entry *e, uint32_t total, uint64_t gen,
                             uint64_t held, uint64_t sum) {
  uint32_t parts = (total - 1) / VS_WIRE_VV_MAX + 1;
  for (uint32_t k = 0; k < parts; k++) {
    uint32_t first = k * VS_WIRE_VV_MAX, count = total - first > VS_WIRE_VV_MAX ? VS_WIRE_VV_MAX : total - first;
    vs_vv_part p = {number, k, parts, 0, 0, gen, 0, held, sum, 0, 0, 0, 0};
    fake_vv(t, f, &p, e + first, count);
  }
}

/* Node 0's whole vector as the fake saw it first, and node 0's entry of
 * its own origin (the fake claims to hold exactly that). */
typedef struct seen {
  vs_vv_part part;
  vs_vv_entry e[8];
  uint32_t n;
} seen;

static void first_vv(bench *t, fake *f, seen *s) {
  /* The fake's own (empty) vector, generation 1: node 0 answers, whole
   * (the fake told no generation of node 0's yet). */
  vs_vv_part p = {2, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}; /* after fake_dial's vector 1 */
  fake_vv(t, f, &p, NULL, 0);
  bench_run(t, 1100); /* news for the fake waits vv_interval_ms (1 s) */
  assert_true(last_vv(t, f, &s->part, s->e, 8, &s->n));
  assert_true(s->n >= 1);
}

/* An honest fake: the whole vector `e` as generation `gen`, holding node
 * 0's generation `held`. */
static void fake_whole(bench *t, fake *f, uint64_t *vector, const vs_vv_entry *e, uint32_t n, uint64_t gen,
                       uint64_t held) {
  vs_vv_part p = {++*vector, 0, 1, 0, 0, gen, 0, held, sum_of(e, n), 0, 0, 0, 0};
  fake_vv(t, f, &p, e, n);
}

/* Once the fake says it holds node 0's vector, node 0 tells it only what
 * changes: one write, one entry, named by its first bytes (the fake holds
 * it); an idle session, nothing but a small digest every VV_IDLE_FACTOR
 * intervals. */
static void test_deltas_carry_what_changed(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "k", "0");
  first_vv(t, &f, &s);
  assert_int_equal(s.part.base, 0); /* whole: the fake told no generation yet */
  assert_int_equal(s.n, 2);         /* nodes 0 and 1 */
  for (uint32_t k = 0; k < s.n; k++) assert_false(s.e[k].short_id);
  assert_true(s.part.gen >= 1);
  assert_int_equal(s.part.sum, sum_of(s.e, s.n));
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 1, s.part.gen); /* it holds what node 0 holds */
  caps_clear(t);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "k", "1");
  bench_run(t, 1100); /* the run goes at once; the vector with the next news */
  vs_vv_part p;
  memset(&p, 0, sizeof p);
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &p, e, 8, &n));
  assert_int_equal(p.base, s.part.gen);
  assert_true(p.gen > p.base);
  assert_int_equal(n, 1); /* only node 0's own entry moved */
  expect_short(&e[0], t->h.ids[0].pk);
  assert_int_equal(p.held, 1); /* and it holds the fake's generation 1 */
  /* The fake confirms; ten idle minutes cost a digest per idle period. */
  vs_vv_entry mine[8];
  memcpy(mine, s.e, sizeof mine);
  uint32_t moved = 0;
  for (uint32_t k = 0; k < s.n; k++)
    if (memcmp(mine[k].origin, t->h.ids[0].pk, VS_ORIGIN_BYTES) == 0) {
      mine[k].seq = e[0].seq;
      memcpy(mine[k].head, e[0].head, VS_VV_HEAD_BYTES);
      moved++;
    }
  assert_int_equal(moved, 1);
  assert_int_equal(p.sum, sum_of(mine, s.n)); /* the short entry resolved in the fake's copy gives node 0's digest */
  fake_whole(t, &f, &vector, mine, s.n, 1, p.gen);
  caps_clear(t);
  vs_node_stats a, b;
  vs_node_stats_get(t->h.nodes[0], &a);
  bench_run(t, 600000);
  vs_node_stats_get(t->h.nodes[0], &b);
  uint32_t vvs = 0;
  size_t frame = 0, frame_max = 0, frames = 0;
  while (take_vv_sized(t, &f, &p, e, 8, &n, &frame)) {
    assert_int_equal(n, 0); /* no entries: nothing changed */
    assert_int_equal(p.base, p.gen);
    frames += frame;
    frame_max = frame > frame_max ? frame : frame_max;
    vvs++;
  }
  /* 600 s / (20 x 1 s); node 1 is a second peer of node 0, whose acks of
   * the fake's chain... node 0 holds none of the fake's: nothing moves. */
  assert_true(vvs >= 25 && vvs <= 31);
  /* Wire v7: an idle digest is the type, flags and opt bytes, six small
   * varints (two bytes at most here), dist, at most five digests and a
   * count of 0, sealed: well under the largest header. */
  const size_t idle_max = 3u + 6u * 2u + 1u + 5u * 8u + 1u + VS_DATA_OVERHEAD_BYTES;
  assert_true(frame_max <= idle_max);
  assert_true(idle_max < VS_MSG_VV_HEADER_BYTES + VS_DATA_OVERHEAD_BYTES);
  /* Node 0's VV bytes to both its peers (the fake and node 1, each about
   * as many digests). */
  assert_true(b.bytes_sent_vv - a.bytes_sent_vv <= 2u * 31u * idle_max);
  assert_true(b.bytes_sent_vv - a.bytes_sent_vv >= frames);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 0);
  assert_int_equal(b.vv_gaps, 0);
  bench_free(t);
}

/* The VV parts node 0 sent the fake since the last look that carry
 * VS_VV_GAP; `held` is the held of the last of them. */
static uint32_t gap_vvs(bench *t, fake *f, uint64_t *held) {
  vs_vv_part p;
  memset(&p, 0, sizeof p);
  vs_vv_entry e[8];
  uint32_t n = 0, gaps = 0;
  while (take_vv(t, f, &p, e, 8, &n)) {
    if ((p.flags & VS_VV_GAP) == 0) continue;
    gaps++;
    *held = p.held;
  }
  return gaps;
}

/* An entry of the fake's at [0, b1, 0 .., b20 at 20, ..] (sorted before
 * every real origin), seq `seq`. */
static vs_vv_entry foreign(uint8_t b1, uint8_t b20, uint64_t seq) {
  vs_vv_entry e;
  memset(&e, 0, sizeof e);
  e.origin[1] = b1;
  e.origin[20] = b20; /* past the first 8 bytes: two of these may share a short id */
  e.seq = seq;
  return e;
}

/* A delta from a generation past what node 0 holds of the fake's vector
 * (one before it was lost): nothing refused, nothing stored; its entries
 * are taken (they are the fake's values now) but not its generation, nor
 * checked against its digest; node 0 asks at once, with VS_VV_GAP and
 * held = the generation it holds, counted once however often the delta
 * comes before it asked; the delta from there is taken. */
static void test_delta_past_held_generation_asks_gap(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  for (uint32_t k = 0; k < s.n; k++) assert_true(s.e[k].origin[0] != 0 || s.e[k].origin[1] > 0x02);
  /* Generation 5: F1, then the real ones. Generation 6 (lost): F2 came.
   * Generation 9: F1 moved. */
  vs_vv_entry v5[10], v9[10];
  v5[0] = foreign(0x01, 0, 3);
  memcpy(v5 + 1, s.e, s.n * sizeof *s.e);
  v9[0] = foreign(0x01, 0, 9);
  v9[1] = foreign(0x02, 0, 1);
  memcpy(v9 + 2, s.e, s.n * sizeof *s.e);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, v5, 1 + s.n, 5, s.part.gen);
  bench_run(t, 1100);
  caps_clear(t);
  vs_node_stats st0 = stats_of(t->h.nodes[0]);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  /* 9 from 7, with the digest of the fake's whole vector at 9 (which
   * holds F2: checked, it would not match node 0's copy). */
  vs_vv_part p = {++vector, 0, 1, 0, 0, 9, 7, s.part.gen, sum_of(v9, 2 + s.n), 0, 0, 0, 0};
  fake_vv(t, &f, &p, v9, 1);
  assert_int_equal(stats_of(t->h.nodes[0]).vv_gaps, st0.vv_gaps + 1);
  p.vector = ++vector; /* again, before node 0 said anything */
  fake_vv(t, &f, &p, v9, 1);
  assert_int_equal(stats_of(t->h.nodes[0]).vv_gaps, st0.vv_gaps + 1);
  bench_pump(t); /* at once: no time passes */
  uint64_t held = 0;
  assert_int_equal(gap_vvs(t, &f, &held), 1);
  assert_int_equal(held, 5); /* "send again from 5" */
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs); /* a gap, not a whole vector */
  expect_refused(t->h.nodes[0], &s0, "none", 0, "a delta past the generation held");
  /* F1 at 9 was taken: an empty delta from 5 whose digest counts F1 at 9
   * (and no F2) matches node 0's copy; node 0 now holds 10. */
  vs_vv_entry probe[10];
  probe[0] = v9[0];
  memcpy(probe + 1, s.e, s.n * sizeof *s.e);
  p = (vs_vv_part){++vector, 0, 1, 0, 0, 10, 5, s.part.gen, sum_of(probe, 1 + s.n), 0, 0, 0, 0};
  fake_vv(t, &f, &p, NULL, 0);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs);
  caps_clear(t);
  bench_run(t, 1100);
  vs_vv_part got;
  memset(&got, 0, sizeof got);
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 10);
  assert_int_equal(got.flags & VS_VV_GAP, 0);
  /* The fake sends again from 5, all that changed since (F1, F2): taken,
   * its digest checked and right. */
  p = (vs_vv_part){++vector, 0, 1, 0, 0, 11, 5, s.part.gen, sum_of(v9, 2 + s.n), 0, 0, 0, 0};
  fake_vv(t, &f, &p, v9, 2);
  caps_clear(t);
  bench_run(t, 1100);
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 11);
  assert_int_equal(got.flags & VS_VV_GAP, 0);
  vs_node_stats st1 = stats_of(t->h.nodes[0]);
  assert_int_equal(st1.vv_resyncs, st0.vv_resyncs);
  assert_int_equal(st1.vv_gaps, st0.vv_gaps + 1);
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  expect_legit_sync(t, "vv-delta-gap");
  bench_free(t);
}

/* fake_dial without the fake's first vector: node 0 holds none of it. */
static void fake_dial_silent(bench *t, fake *f) {
  vs_node *node = t->h.nodes[0];
  assert_err(vs_node_peer_up(node, f->handle, false, t->h.now_ms), VS_OK);
  uint8_t eph[32];
  vt_sm_fill(&t->h.rng, eph, sizeof eph);
  size_t len = 0;
  bool close = false, done = false;
  assert_err(vs_hs_start_initiator(&f->hs, &f->id, f->mesh, eph, f->hello, sizeof f->hello, &len), VS_OK);
  assert_err(vt_node_on_frame(node, f->handle, f->hello, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, f->handle, &close, f->cookie, sizeof f->cookie, &len));
  assert_err(vs_hs_on_frame(&f->hs, f->cookie, len, f->hello2, sizeof f->hello2, &len, &done, &f->sess), VS_OK);
  assert_err(vt_node_on_frame(node, f->handle, f->hello2, len, t->h.now_ms), VS_OK);
  bench_pump(t);
  assert_true(cap_take(t, 0, f->handle, &close, f->reply, sizeof f->reply, &len));
  assert_err(vs_hs_on_frame(&f->hs, f->reply, len, f->auth, sizeof f->auth, &len, &done, &f->sess), VS_OK);
  assert_true(done);
  assert_err(vt_node_on_frame(node, f->handle, f->auth, len, t->h.now_ms), VS_OK);
  bench_pump(t);
}

/* A delta when node 0 holds no vector of the fake at all (a lie, or its
 * own was lost to a reset): nothing is taken, the whole is asked for
 * (held 0, vv_resyncs), once; the whole vector that follows is taken. */
static void test_delta_before_any_vector_asks_whole(void **state) {
  (void)state;
  bench *t = bench_new(2);
  bench_connect(t, 0, 1);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "a", "1");
  vt_node_write_kv(t->h.nodes[1], t->h.now_ms, "put", "b", "2");
  bench_run(t, 2000);
  fake f;
  fake_init(&f, FAKE_HANDLE, 0x77);
  fake_dial_silent(t, &f);
  vs_vv_part greet, got;
  memset(&greet, 0, sizeof greet);
  memset(&got, 0, sizeof got);
  vs_vv_entry mine[8], e[8];
  uint32_t mine_n = 0, n = 0;
  assert_true(last_vv(t, &f, &greet, mine, 8, &mine_n)); /* node 0's greeting: whole */
  assert_int_equal(greet.base, 0);
  assert_int_equal(mine_n, 2);
  vs_node_stats st0 = stats_of(t->h.nodes[0]);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  /* Its one entry claims node 0's chain far past its head: taken, the
   * session would close after the claim grace. */
  vs_vv_entry claim;
  memset(&claim, 0, sizeof claim);
  memcpy(claim.origin, t->h.ids[0].pk, VS_ORIGIN_BYTES);
  claim.seq = 1000;
  vs_vv_part p = {1, 0, 1, 0, 0, 9, 7, greet.gen, 0, 0, 0, 0, 0};
  fake_vv(t, &f, &p, &claim, 1);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs + 1);
  p.vector = 2;
  fake_vv(t, &f, &p, &claim, 1);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs + 1); /* asked once */
  assert_int_equal(stats_of(t->h.nodes[0]).vv_gaps, 0); /* no gap: there is nothing to build on */
  /* Its greeting said held 0 ("send me your whole vector"); all it says
   * since says so still, never a gap. */
  assert_int_equal(greet.held, 0);
  bench_run(t, 12000); /* past the claim grace (5 s handshake + 2 x 2 s resend) */
  while (take_vv(t, &f, &got, e, 8, &n)) {
    assert_int_equal(got.held, 0);
    assert_int_equal(got.flags & VS_VV_GAP, 0);
  }
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  assert_int_equal(stats_of(t->h.nodes[0]).rejected_vv_future, st0.rejected_vv_future);
  expect_refused(t->h.nodes[0], &s0, "none", 0, "a delta before any vector");
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, mine, mine_n, 10, greet.gen);
  caps_clear(t);
  bench_run(t, 1100);
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 10);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs + 1);
  expect_legit_sync(t, "vv-delta-no-vector");
  caps_clear(t);
  bench_free(t);
}

/* Short ids in the fake's deltas are resolved in node 0's copy of its
 * vector: one that names one origin there is taken as that origin; one
 * that names two (ambiguous) or none (the copy is complete) makes node 0
 * ask for the whole vector (held 0, vv_resyncs), take nothing of the
 * delta, and keep the session. */
static void test_short_ids_resolved_in_copy(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  for (uint32_t k = 0; k < s.n; k++) assert_true(s.e[k].origin[0] != 0 || s.e[k].origin[1] > 0x03);
  /* A1, A2: one short id; B: its own. Then the real ones. */
  vs_vv_entry all[12];
  all[0] = foreign(0x01, 1, 4);
  all[1] = foreign(0x01, 2, 4);
  all[2] = foreign(0x02, 0, 7);
  all[2].origin[31] = 9; /* not its first bytes and zeros (that only a whole id names) */
  memcpy(all + 3, s.e, s.n * sizeof *s.e);
  uint32_t total = 3 + s.n;
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, all, total, 5, s.part.gen);
  caps_clear(t);
  vs_node_stats st0 = stats_of(t->h.nodes[0]);
  /* B moves, by its short id, with the digest of the vector it makes:
   * resolved to B, taken (held 6), the digest matches (no resync). */
  all[2].seq = 8;
  vs_vv_entry b = all[2];
  b.short_id = true;
  vs_vv_part p = {++vector, 0, 1, 0, 0, 6, 5, s.part.gen, sum_of(all, total), 0, 0, 0, 0};
  fake_vv(t, &f, &p, &b, 1);
  bench_run(t, 1100);
  vs_vv_part got;
  memset(&got, 0, sizeof got);
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 6);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs);
  /* A1 or A2? Ambiguous: the whole is asked for. */
  vs_vv_entry a = all[0];
  a.short_id = true;
  a.seq = 5;
  p = (vs_vv_part){++vector, 0, 1, 0, 0, 7, 6, s.part.gen, 0, 0, 0, 0, 0};
  fake_vv(t, &f, &p, &a, 1);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs + 1);
  caps_clear(t);
  bench_pump(t);
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 0);
  fake_whole(t, &f, &vector, all, total, 8, s.part.gen);
  bench_run(t, 1100);
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 8);
  /* A short id that names nothing in the (complete) copy, after an entry
   * that claims node 0's chain far past its head: nothing of it is taken
   * (taken, the claim would close the session after its grace). */
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  vs_vv_entry two[2];
  memset(two, 0, sizeof two);
  memcpy(two[0].origin, t->h.ids[0].pk, VS_ORIGIN_BYTES);
  two[0].seq = 1000;
  memset(two[1].origin, 0xff, VS_VV_SHORT_BYTES);
  two[1].short_id = true;
  two[1].seq = 1;
  p = (vs_vv_part){++vector, 0, 1, 0, 0, 9, 8, s.part.gen, 0, 0, 0, 0, 0};
  fake_vv(t, &f, &p, two, 2);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st0.vv_resyncs + 2);
  caps_clear(t);
  bench_pump(t);
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 0);
  bench_run(t, 12000); /* past the claim grace */
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  assert_int_equal(stats_of(t->h.nodes[0]).rejected_vv_future, st0.rejected_vv_future);
  expect_refused(t->h.nodes[0], &s0, "none", 0, "a short id that names nothing");
  assert_int_equal(stats_of(t->h.nodes[0]).vv_gaps, st0.vv_gaps);
  fake_whole(t, &f, &vector, all, total, 10, s.part.gen);
  expect_legit_sync(t, "vv-short-unknown");
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  /* The same short id in a delta past what node 0 holds (from 12; it holds
   * 10 or later): the lost delta may have brought that origin, so it is
   * left out, no resync; a gap is asked for, from what node 0 holds. */
  vs_node_stats st1 = stats_of(t->h.nodes[0]);
  caps_clear(t);
  p = (vs_vv_part){++vector, 0, 1, 0, 0, 13, 12, s.part.gen, 0, 0, 0, 0, 0};
  fake_vv(t, &f, &p, &two[1], 1);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), st1.vv_resyncs);
  assert_int_equal(stats_of(t->h.nodes[0]).vv_gaps, st1.vv_gaps + 1);
  bench_pump(t);
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_true((got.flags & VS_VV_GAP) != 0);
  assert_true(got.held >= 10 && got.held < 12);
  bench_free(t);
}

/* Node 0's VV parts to the fake over `ms` of virtual time while the fake
 * sends, every `every_ms`, an empty delta flagged VS_VV_GAP (from the
 * generation it holds, `gen`, holding node 0's `held`). */
static uint32_t gap_flood(bench *t, fake *f, uint64_t *vector, uint64_t gen, uint64_t held, uint64_t sum, uint64_t ms,
                          uint64_t every_ms) {
  vs_vv_part got;
  memset(&got, 0, sizeof got);
  vs_vv_entry e[8];
  uint32_t n = 0, vvs = 0;
  caps_clear(t);
  for (uint64_t at = 0; at < ms; at += every_ms) { /* bounded: ms / every_ms */
    vs_vv_part p = {++*vector, 0, 1, 0, 0, gen, gen, held, sum, VS_VV_GAP, 0, 0, 0};
    fake_vv(t, f, &p, NULL, 0);
    bench_run(t, every_ms);
    while (take_vv(t, f, &got, e, 8, &n)) vvs++;
  }
  return vvs;
}

/* A peer flagging VS_VV_GAP on every VV (asking node 0 to send its
 * vector again from what it holds) gets at most one VV per vv_interval
 * (1 s), and never more than it sends itself. */
static void test_gap_flood_answered_at_pace(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 2, s.part.gen);
  bench_run(t, 1100);
  vs_node_stats st0 = stats_of(t->h.nodes[0]);
  /* Ten a second for 60 s: one VV a second at most. */
  uint32_t fast = gap_flood(t, &f, &vector, 2, s.part.gen, sum_of(s.e, s.n), 60000, 100);
  print_message("  gap flood: 600 in 60 s, %u VVs back\n", fast);
  assert_true(fast <= 60 + 2);
  assert_true(fast >= 30); /* it does answer: each its own VV from what the fake holds */
  /* One every 5 s for 60 s: no more than that (no idle digest is due
   * between them either). */
  uint32_t slow = gap_flood(t, &f, &vector, 2, s.part.gen, sum_of(s.e, s.n), 60000, 5000);
  print_message("  gap flood: 12 in 60 s, %u VVs back\n", slow);
  assert_true(slow <= 12 + 1);
  assert_true(slow >= 10);
  vs_node_stats st1 = stats_of(t->h.nodes[0]);
  assert_int_equal(st1.vv_resyncs, st0.vv_resyncs);
  assert_int_equal(st1.vv_sent_whole, st0.vv_sent_whole); /* from what it holds: deltas, never the whole */
  assert_int_equal(caps_count(t, 0, f.handle, true), 0);
  expect_legit_sync(t, "vv-gap-flood");
  bench_free(t);
}

/* Entries of node 0's VVs to the fake since the last look: whether
 * `origin` was named, and how (short or whole). */
static void named(bench *t, fake *f, const uint8_t origin[VS_ORIGIN_BYTES], uint32_t *whole, uint32_t *shorts,
                  vs_vv_part *last) {
  vs_vv_entry e[8];
  uint32_t n = 0;
  *whole = *shorts = 0;
  while (take_vv(t, f, last, e, 8, &n)) {
    assert_true(last->base != 0); /* deltas */
    for (uint32_t k = 0; k < n; k++) {
      if (e[k].short_id && memcmp(e[k].origin, origin, VS_VV_SHORT_BYTES) == 0) {
        expect_short(&e[k], origin);
        (*shorts)++;
      } else if (!e[k].short_id && memcmp(e[k].origin, origin, VS_ORIGIN_BYTES) == 0) {
        (*whole)++;
      }
    }
  }
}

/* Once the fake has confirmed a generation, node 0's deltas name the
 * origins it told it by their first bytes, and an origin new since then
 * in full; told once, that origin goes short too. */
static void test_delta_names_told_origins_short(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 1, s.part.gen);
  bench_run(t, 1100);
  caps_clear(t);
  /* A new origin (the fake's own chain, which node 0 takes) and a write
   * of node 0's own. */
  chain c;
  chain_init(&c, &f.id);
  fake_send_chain(t, &f, &c, 1);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "k", "v");
  bench_run(t, 1100);
  vs_vv_part last;
  memset(&last, 0, sizeof last);
  uint32_t whole = 0, shorts = 0;
  named(t, &f, f.id.pk, &whole, &shorts, &last);
  assert_int_equal(whole, 1);
  assert_int_equal(shorts, 0);
  uint64_t told = last.gen;
  /* Node 0's own origin, which the fake held: short. Node 1's: unchanged,
   * not named. */
  caps_clear(t);
  vt_node_write_kv(t->h.nodes[0], t->h.now_ms, "put", "k", "w");
  bench_run(t, 1100);
  named(t, &f, t->h.ids[0].pk, &whole, &shorts, &last);
  assert_int_equal(whole, 0);
  assert_int_equal(shorts, 1);
  /* The fake's origin, told in full before: short from then on. */
  caps_clear(t);
  fake_send_chain(t, &f, &c, 1);
  bench_run(t, 1100);
  named(t, &f, f.id.pk, &whole, &shorts, &last);
  assert_int_equal(whole, 0);
  assert_int_equal(shorts, 1);
  assert_true(last.gen > told);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 0);
  expect_legit_sync(t, "vv-short-told");
  bench_free(t);
}

/* A digest that is not that of what node 0 made of the fake's vector
 * (drift): the whole vector is asked for. A right one: nothing. */
static void test_digest_mismatch_asks_whole(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 3, s.part.gen);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 0);
  /* A delta that changes nothing, with a digest of another vector. */
  vs_vv_part p = {++vector, 0, 1, 0, 0, 4, 3, s.part.gen, sum_of(s.e, s.n) + 1, 0, 0, 0, 0};
  fake_vv(t, &f, &p, NULL, 0);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  caps_clear(t);
  bench_pump(t);
  vs_vv_part got;
  memset(&got, 0, sizeof got);
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.held, 0);
  fake_whole(t, &f, &vector, s.e, s.n, 5, s.part.gen); /* right digest: taken */
  p = (vs_vv_part){++vector, 0, 1, 0, 0, 6, 5, s.part.gen, sum_of(s.e, s.n), 0, 0, 0, 0};
  fake_vv(t, &f, &p, NULL, 0);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  expect_legit_sync(t, "vv-digest");
  bench_free(t);
}

/* Origins node 0 does not hold are kept of a peer's vector (so its digest
 * is checked) up to VV_FOREIGN_MAX (4,096): a wrong digest over 100 of
 * them is found; past the bound the copy is partial, its digest is not
 * checked, and the peer cannot make node 0 keep more. */
static void test_foreign_origins_bounded(void **state) {
  (void)state;
  enum { FEW = 100, MANY = 5000 };
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  vs_vv_entry *e = calloc(MANY + 8, sizeof *e);
  assert_non_null(e);
  /* Sorted origins 0x00.. (below every real one, whose first byte is
   * random: kept sorted by putting the real entries after a 0x00 prefix). */
  for (uint32_t i = 0; i < MANY; i++) {
    e[i].origin[0] = 0;
    e[i].origin[1] = (uint8_t)(i >> 8);
    e[i].origin[2] = (uint8_t)i;
    e[i].seq = 1;
  }
  for (uint32_t k = 0; k < s.n; k++) assert_true(s.e[k].origin[0] != 0 || s.e[k].origin[1] >= 0x20);
  uint64_t vector = 2;
  /* FEW foreign ones and a wrong digest: found. */
  vs_vv_entry *few = calloc(FEW + 8, sizeof *few);
  assert_non_null(few);
  memcpy(few, e, FEW * sizeof *e);
  memcpy(few + FEW, s.e, s.n * sizeof *s.e);
  vs_vv_part p = {++vector, 0, 1, 0, 0, 2, 0, s.part.gen, sum_of(few, FEW + s.n) ^ 1u, 0, 0, 0, 0};
  fake_vv(t, &f, &p, few, FEW + s.n);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1);
  /* MANY foreign ones and a wrong digest: partial, not checked. */
  memcpy(e + MANY, s.e, s.n * sizeof *s.e);
  uint32_t total = MANY + s.n;
  fake_whole_parts(t, &f, ++vector, e, total, 3, s.part.gen, sum_of(e, total) ^ 1u);
  assert_int_equal(stat_resyncs(t->h.nodes[0]), 1); /* the whole vector cleared the ask; no new one */
  expect_legit_sync(t, "vv-foreign");
  free(few);
  free(e);
  bench_free(t);
}

/* A delta that drops node 0's own entry (seq 0) is a fall like any other:
 * its old entry stands for a claim grace, then, no verdict having come,
 * the session closes. */
static void test_delta_fall_is_policed(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t vector = 2;
  fake_whole(t, &f, &vector, s.e, s.n, 2, s.part.gen);
  vs_vv_entry gone = s.e[0];
  gone.seq = 0;
  vs_vv_part p = {++vector, 0, 1, 0, 0, 3, 2, s.part.gen, 0, 0, 0, 0, 0};
  fake_vv(t, &f, &p, &gone, 1);
  caps_clear(t);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  bench_run(t, 30000);
  expect_refused(t->h.nodes[0], &s0, "rejected_vv_regress", 1, "a delta that drops an entry");
  assert_int_equal(caps_count(t, 0, f.handle, true), 1);
  expect_legit_sync(t, "vv-delta-fall");
  bench_free(t);
}

/* A whole vector past the foreign bound (node 0 keeps at most its origins
 * + 1 + 4,096 entries of the fake's) leaves foreign entries out: no fall,
 * the session stays (a review of session 15 closed an honest session so:
 * a vector that gained an origin sorted first pushed one out). */
static void test_partial_whole_vector_is_no_fall(void **state) {
  (void)state;
  enum { MANY = 4099 };
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  vs_vv_entry *e = calloc(MANY + 1 + 8, sizeof *e);
  assert_non_null(e);
  for (uint32_t i = 0; i <= MANY; i++) { /* sorted below the real origins */
    e[i].origin[0] = 0;
    e[i].origin[1] = (uint8_t)(i >> 8);
    e[i].origin[2] = (uint8_t)i;
    e[i].seq = 1;
  }
  for (uint32_t k = 0; k < s.n; k++) assert_true(s.e[k].origin[0] != 0 || s.e[k].origin[1] >= 0x20);
  uint64_t vector = 2;
  /* Origins 1..MANY, then the real ones; then 0..MANY: one more, sorted
   * first, pushes the last foreign one out of the copy. */
  for (uint32_t round = 0; round < 2; round++) {
    vs_vv_entry *from = e + (round == 0 ? 1 : 0);
    uint32_t foreign = round == 0 ? MANY : MANY + 1, total = foreign + s.n;
    vs_vv_entry *all = calloc(total, sizeof *all);
    assert_non_null(all);
    memcpy(all, from, foreign * sizeof *all);
    memcpy(all + foreign, s.e, s.n * sizeof *s.e);
    fake_whole_parts(t, &f, ++vector, all, total, 2 + round, s.part.gen, sum_of(all, total));
    free(all);
  }
  caps_clear(t);
  snap s0;
  snap_take(t->h.nodes[0], &s0);
  bench_run(t, 30000);
  expect_refused(t->h.nodes[0], &s0, "none", 0, "a whole vector that left foreign entries out");
  assert_int_equal(caps_count(t, 0, f.handle, true), 0); /* the session stays */
  expect_legit_sync(t, "vv-partial-whole");
  free(e);
  bench_free(t);
}

/* A place in the tree no node can hold (the fake a root whose id is not
 * its own) is not taken: node 0 keeps its root. */
static void test_impossible_tree_place_not_taken(void **state) {
  (void)state;
  fake f;
  bench *t = bench_secure(&f);
  seen s;
  first_vv(t, &f, &s);
  uint64_t root = s.part.root;
  assert_true(root > 1);
  vs_vv_part p = {3, 0, 1, 0, 0, 2, 0, s.part.gen, sum_of(s.e, s.n), 0, 0, 1, 0}; /* "I am root 1" */
  fake_vv(t, &f, &p, s.e, s.n);
  caps_clear(t);
  bench_run(t, 3000);
  vs_vv_part got;
  memset(&got, 0, sizeof got);
  vs_vv_entry e[8];
  uint32_t n = 0;
  assert_true(last_vv(t, &f, &got, e, 8, &n));
  assert_int_equal(got.root, root);
  p = (vs_vv_part){4, 0, 1, 0, 0, 3, 0, s.part.gen, sum_of(s.e, s.n), 0, 1, 1, 0}; /* hops but no parent */
  fake_vv(t, &f, &p, s.e, s.n);
  caps_clear(t);
  bench_run(t, 3000);
  if (last_vv(t, &f, &got, e, 8, &n)) assert_int_equal(got.root, root);
  expect_legit_sync(t, "tree-impossible-place");
  bench_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deltas_carry_what_changed),
      cmocka_unit_test(test_delta_past_held_generation_asks_gap),
      cmocka_unit_test(test_delta_before_any_vector_asks_whole),
      cmocka_unit_test(test_short_ids_resolved_in_copy),
      cmocka_unit_test(test_gap_flood_answered_at_pace),
      cmocka_unit_test(test_delta_names_told_origins_short),
      cmocka_unit_test(test_digest_mismatch_asks_whole),
      cmocka_unit_test(test_foreign_origins_bounded),
      cmocka_unit_test(test_delta_fall_is_policed),
      cmocka_unit_test(test_partial_whole_vector_is_no_fall),
      cmocka_unit_test(test_impossible_tree_place_not_taken),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
