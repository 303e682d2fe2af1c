/* The receive pipeline of node.h (vs_node_rx_key, vs_rx_prepare,
 * vs_node_on_prepared) where it can differ from vs_node_on_frame: frames
 * prepared without a key, with a key of an earlier session of the same
 * handle, with another peer's key; preps replayed and applied out of order;
 * and a twin run, one world through vs_node_on_frame and one through the
 * pipeline, which must agree on every result, every counter and the stores.
 * (test_node_prepared and test_node_property_prepared run the other node
 * tests through the pipeline, see tests/prepared.h.)
 *
 * The in-memory mesh of tests/mesh_harness.h, as in test_node.c: node i
 * knows node j as handle j. DATA frames of chosen links can be held back
 * instead of delivered (the harness's intercept hook), so a test can
 * deliver them later, out of order, twice or with a stale key; the deliver
 * hook picks the path and records deliveries for the twin test. */
#define _XOPEN_SOURCE 700

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

#include <sodium.h>

#include "fixture.h"
#include "mesh_harness.h"
#include "prepared.h"
#include "testutil.h"
#include "vixsync/vixsync.h"
#include "vixsync/node.h"
#include "wire.h"

#define NODES_MAX 3u
#define HELD_MAX 512u

/* Every counter of vs_node_stats, for field-by-field comparison. The size
 * check below fails the build when a field is added and not listed here. */
#define STATS_FIELDS(X)                                                                                      \
  X(frames_in) X(frames_out) X(bytes_in) X(bytes_out) X(handshakes_done) X(handshakes_timeout) X(rejected_auth) \
  X(rejected_replay) X(rejected_malformed) X(rejected_state) X(rejected_unknown_peer) X(runs_applied)          \
  X(ops_applied) X(ops_duplicate) X(runs_gap) X(runs_forged) X(runs_fork) X(ops_sent) X(runs_sent) X(resends) \
  X(rejected_version) X(version_seen) X(cookies_sent) X(rejected_vv_future) X(own_ops_restored) \
  X(ops_deferred_future) \
  X(rejected_origin_quota) X(rejected_vv_regress) X(fork_verdicts) X(fork_evidence_bad) X(runs_void) \
  X(wants_sent) X(wants_served) X(rejected_want_quota) X(fork_verdicts_deferred) X(rejected_not_member)    \
  X(rejected_revoked) X(rejected_denied) X(mesh_epoch) X(key_epoch) X(rekeys_issued)     \
  X(handshakes_stale_key) X(rejected_stale_key) X(stable_ops) X(stable_behind) X(acks_made) X(acks_sent)   \
  X(acks_received) X(acks_unusable) X(acks_retold) X(rejected_ack_quota) X(compact_steps) X(ops_compacted) X(horizon_breaches) X(members_suspended) X(runs_below_floor) \
  X(snap_behind_sent) X(snap_behind_received) X(snap_behind_false) X(snap_behind_stuck) X(snap_requests_sent) \
  X(snap_requests_refused) X(snap_served) X(snap_declined) X(snap_chunks_sent) X(snap_bytes_sent)           \
  X(snap_chunks_received) X(snap_bytes_received) X(snap_rejected) X(snap_installs) X(snap_install_failed)    \
  X(snap_timeouts) X(snap_rebases) X(sessions_closed_malformed) X(floor_splits) X(floor_notices) X(floor_notices_received) X(gc_pinned) X(origin_resends) X(late_returns) X(late_rebases) X(acks_forgets) X(sessions_duplicate) \
  X(bytes_sent_ops) X(bytes_sent_vv) X(bytes_sent_acks) X(bytes_sent_other) X(op_bytes_applied) X(payload_bytes_applied) X(vv_sent) X(vv_sent_whole) X(vv_resyncs) X(prunes) X(grafts) X(tree_moves) X(vv_gaps)
#define COUNT_(f) +1
_Static_assert(sizeof(vs_node_stats) == (0 STATS_FIELDS(COUNT_)) * sizeof(uint64_t),
               "vs_node_stats: list every field in STATS_FIELDS");
#undef COUNT_

/* Fail, naming the first counter that differs. */
static void stats_expect_equal(const vs_node_stats *a, const vs_node_stats *b, const char *what) {
#define CMP_(f)                                                                                            \
  if (a->f != b->f) fail_msg("%s: %s differs: %" PRIu64 " vs %" PRIu64, what, #f, a->f, b->f);
  STATS_FIELDS(CMP_)
#undef CMP_
  /* All fields are uint64_t (checked above): no padding, memcmp is exact. */
  assert_memory_equal(a, b, sizeof *a);
}

typedef enum path { PATH_FRAME = 0, PATH_PREPARED = 1 } path;

typedef struct held {
  uint32_t from, to;
  uint8_t *bytes;
  size_t len;
} held;

/* One delivery, as the twin test compares them. */
typedef struct rec {
  uint32_t to, from;
  size_t len;
  uint8_t digest[16]; /* of the frame's bytes */
  vs_err err;
  vs_node_stats st;   /* the receiver's counters after it */
} rec;

typedef struct mesh {
  mh_mesh h;                     /* the nodes, links and virtual time */
  path via;                      /* how the mesh delivers */
  bool hold[NODES_MAX][NODES_MAX]; /* DATA frames i -> j are held, not delivered */
  held held[HELD_MAX];
  uint32_t nheld;
  bool record; /* keep every delivery in recs (the twin test) */
  rec *recs;
  size_t nrecs, recs_cap;
} mesh;

static vs_err mesh_deliver_key(mesh *m, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len,
                               const vs_rx_key *key);
static bool is_data(const uint8_t *bytes, size_t len);

/* The harness's deliver hook: along m->via, recorded when recording. */
static vs_err mesh_deliver_hook(mh_mesh *h, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len) {
  return mesh_deliver_key(h->ctx, to, from, bytes, len, NULL);
}

/* The harness's intercept hook: DATA frames of held links that are up are
 * kept; everything else goes on. */
static bool mesh_hold_hook(mh_mesh *h, uint32_t from, const vs_node_out *out) {
  mesh *m = h->ctx;
  uint32_t to = out->peer;
  if (out->kind != VS_NODE_OUT_SEND || to >= h->n || !h->link[from][to]) return false;
  const uint8_t *bytes = out->bytes;
  size_t len = out->bytes_len;
  if (!m->hold[from][to] || !is_data(bytes, len)) return false;
  assert_true(m->nheld < HELD_MAX);
  held *f = &m->held[m->nheld++];
  f->from = from;
  f->to = to;
  f->len = len;
  f->bytes = vt_dup_exact(bytes, len);
  return true;
}

static void mesh_init(mesh *m, uint32_t n, path via) {
  assert_true(n <= NODES_MAX);
  memset(m, 0, sizeof *m);
  mh_init(&m->h, n, "npipe", 0x20, 1234);
  m->via = via;
  m->h.deliver = mesh_deliver_hook;
  m->h.intercept = mesh_hold_hook;
  m->h.ctx = m;
}

static void held_clear(mesh *m) {
  for (uint32_t k = 0; k < m->nheld; k++) free(m->held[k].bytes);
  m->nheld = 0;
}

static void mesh_free(mesh *m) {
  mh_free(&m->h);
  held_clear(m);
  free(m->recs);
}

/* Deliver one frame to node `to` from handle `from`: through vs_node_on_frame
 * (PATH_FRAME), or the pipeline with `key` (NULL: the receiver's current key
 * for `from`, as a driver would take it). Records it when recording. */
static vs_err mesh_deliver_key(mesh *m, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len,
                               const vs_rx_key *key) {
  vs_node *node = m->h.nodes[to];
  vs_err err;
  if (m->via == PATH_FRAME) {
    err = vs_node_on_frame(node, from, bytes, len, m->h.now_ms);
  } else if (key == NULL) {
    err = vt_node_on_frame(node, from, bytes, len, m->h.now_ms);
  } else {
    vs_rx_prep *prep = NULL;
    assert_err(vs_rx_prepare(key, bytes, len, &prep), VS_OK);
    err = vs_node_on_prepared(node, from, prep, m->h.now_ms);
    vs_rx_prep_free(prep);
  }
  if (m->record) {
    if (m->nrecs == m->recs_cap) {
      size_t cap = m->recs_cap == 0 ? 1024 : m->recs_cap * 2;
      rec *r = realloc(m->recs, sizeof *r * cap);
      assert_non_null(r);
      m->recs = r;
      m->recs_cap = cap;
    }
    rec *r = &m->recs[m->nrecs++];
    memset(r, 0, sizeof *r);
    r->to = to;
    r->from = from;
    r->len = len;
    crypto_generichash(r->digest, sizeof r->digest, bytes, len, NULL, 0);
    r->err = err;
    vs_node_stats_get(node, &r->st);
  }
  return err;
}

static vs_err mesh_deliver(mesh *m, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len) {
  return mesh_deliver_key(m, to, from, bytes, len, NULL);
}

static bool is_data(const uint8_t *bytes, size_t len) {
  uint8_t type = 0;
  return vs_frame_type(bytes, len, &type) == VS_OK && type == VS_FRAME_DATA;
}

static uint64_t frame_counter(const held *h) {
  assert_true(h->len >= VS_DATA_OVERHEAD_BYTES);
  return vt_get_u64le(h->bytes + 2);
}

/* ---- what a node holds ---- */

typedef struct snap {
  uint8_t hash[VS_HASH_BYTES];
  uint64_t lsn;
  vs_node_stats st;
} snap;

static void snap_take(vs_node *node, snap *s) {
  assert_err(vs_state_hash(vs_node_store(node), s->hash), VS_OK);
  assert_err(vs_wal_last_lsn(vs_node_store(node), &s->lsn), VS_OK);
  vs_node_stats_get(node, &s->st);
}

/* The store did not change (a refused frame changes only counters). */
static void expect_same_store(vs_node *node, const snap *before, const char *what) {
  snap now;
  snap_take(node, &now);
  if (memcmp(now.hash, before->hash, VS_HASH_BYTES) != 0 || now.lsn != before->lsn)
    fail_msg("%s: the store changed", what);
}

static void expect_converged(mesh *m, uint32_t a, uint32_t b) {
  mh_expect_converged(&m->h, a, b);
  uint8_t hash[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  mh_state_hash(&m->h, a, hash);
  assert_memory_not_equal(hash, zero, VS_HASH_BYTES); /* something was synced */
}

/* `after` minus `before`, counter by counter. */
static vs_node_stats stats_delta(const vs_node_stats *after, const vs_node_stats *before) {
  vs_node_stats d;
#define SUB_(f) d.f = after->f - before->f;
  STATS_FIELDS(SUB_)
#undef SUB_
  return d;
}

/* A frame the node must refuse: hand it to on_prepared with `key`, then to
 * vs_node_on_frame. Both must give the same refusal, count it the same way
 * (a refused frame changes nothing else, so the second call sees the same
 * node) and leave the store as it was. Returns the refusal. */
static vs_err expect_refused_as_on_frame(mesh *m, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len,
                                         const vs_rx_key *key, const char *what) {
  vs_node *node = m->h.nodes[to];
  snap s0, s1, s2;
  snap_take(node, &s0);
  vs_rx_prep *prep = NULL;
  assert_err(vs_rx_prepare(key, bytes, len, &prep), VS_OK);
  vs_err via_prep = vs_node_on_prepared(node, from, prep, m->h.now_ms);
  vs_rx_prep_free(prep);
  snap_take(node, &s1);
  vs_err via_frame = vs_node_on_frame(node, from, bytes, len, m->h.now_ms);
  snap_take(node, &s2);
  if (via_prep != via_frame)
    fail_msg("%s: on_prepared %s, on_frame %s", what, vs_err_name(via_prep), vs_err_name(via_frame));
  if (via_prep == VS_OK) fail_msg("%s: accepted", what);
  vs_node_stats d1 = stats_delta(&s1.st, &s0.st), d2 = stats_delta(&s2.st, &s1.st);
  stats_expect_equal(&d1, &d2, what);
  expect_same_store(node, &s0, what);
  return via_prep;
}

/* ---- 1. no key: the frame goes to vs_node_on_frame ---- */

static void test_pipeline_without_key_falls_back(void **state) {
  (void)state;
  mesh m;
  mesh_init(&m, 2, PATH_PREPARED); /* the handshake too: no key yet, so NULL */
  mh_connect(&m.h, 0, 1);
  m.hold[0][1] = true;
  mh_write(&m.h, 0, "put", "a", "1");
  mh_write(&m.h, 0, "incr", "n", "2");
  mh_write(&m.h, 0, "put", "b", "3");
  mh_pump(&m.h);
  assert_int_equal(vs_node_peers_ready(m.h.nodes[1]), 1);
  assert_true(m.nheld >= 2);
  snap s0;
  snap_take(m.h.nodes[1], &s0);
  for (uint32_t k = 0; k < m.nheld; k++) {
    vs_rx_prep *prep = NULL;
    assert_err(vs_rx_prepare(NULL, m.held[k].bytes, m.held[k].len, &prep), VS_OK);
    assert_err(vs_node_on_prepared(m.h.nodes[1], 0, prep, m.h.now_ms), VS_OK);
    vs_rx_prep_free(prep);
  }
  snap s1;
  snap_take(m.h.nodes[1], &s1);
  vs_node_stats d = stats_delta(&s1.st, &s0.st);
  assert_int_equal(d.frames_in, m.nheld);
  assert_int_equal(d.ops_applied, 3);
  assert_int_equal(s1.lsn, 3);
  assert_int_equal(d.rejected_auth + d.rejected_replay + d.rejected_malformed + d.rejected_state, 0);
  /* Without a key the window still applies: the first frame again is a replay. */
  snap_take(m.h.nodes[1], &s0);
  assert_int_equal(expect_refused_as_on_frame(&m, 1, 0, m.held[0].bytes, m.held[0].len, NULL, "replay, no key"),
                   VS_ERR_REPLAY);
  snap_take(m.h.nodes[1], &s1);
  assert_int_equal(s1.st.rejected_replay - s0.st.rejected_replay, 2); /* one per path */
  /* A NULL prep or node is refused, and counts nothing. */
  assert_err(vs_node_on_prepared(m.h.nodes[1], 0, NULL, m.h.now_ms), VS_ERR_INVAL);
  assert_err(vs_rx_prepare(NULL, m.held[0].bytes, m.held[0].len, NULL), VS_ERR_INVAL);
  assert_err(vs_rx_prepare(NULL, NULL, 5, &(vs_rx_prep *){NULL}), VS_ERR_INVAL);
  vs_node_stats st;
  vs_node_stats_get(m.h.nodes[1], &st);
  stats_expect_equal(&st, &s1.st, "invalid arguments");
  m.hold[0][1] = false;
  held_clear(&m);
  mh_run_for(&m.h, 3000);
  expect_converged(&m, 0, 1);
  mesh_free(&m);
}

/* vs_node_rx_key: NOTFOUND without the peer, STATE before the handshake,
 * and a new session number after a reconnect on the same handle. */
static void test_pipeline_rx_key_states(void **state) {
  (void)state;
  mesh m;
  mesh_init(&m, 2, PATH_PREPARED);
  vs_rx_key k;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &k), VS_ERR_NOTFOUND);
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, NULL), VS_ERR_INVAL);
  assert_err(vs_node_rx_key(NULL, 0, &k), VS_ERR_INVAL);
  mh_connect(&m.h, 0, 1);
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &k), VS_ERR_STATE);
  assert_err(vs_node_rx_key(m.h.nodes[0], 1, &k), VS_ERR_STATE);
  mh_run_for(&m.h, 100);
  vs_rx_key a, b;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &a), VS_OK);
  assert_int_equal(a.peer, 0);
  assert_err(vs_node_rx_key(m.h.nodes[0], 1, &b), VS_OK);
  assert_int_equal(b.peer, 1);
  mh_disconnect(&m.h, 0, 1);
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &k), VS_ERR_NOTFOUND);
  mh_connect(&m.h, 0, 1);
  mh_run_for(&m.h, 100);
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &k), VS_OK);
  assert_int_equal(k.peer, a.peer);
  assert_true(k.session != a.session);
  assert_memory_not_equal(k.key, a.key, sizeof k.key); /* fresh ephemeral keys per connection */
  sodium_memzero(&a, sizeof a);
  sodium_memzero(&b, sizeof b);
  sodium_memzero(&k, sizeof k);
  mesh_free(&m);
}

/* ---- 2. a key taken before a reconnect on the same handle ---- */

static void test_pipeline_stale_key_after_reconnect(void **state) {
  (void)state;
  mesh m;
  mesh_init(&m, 2, PATH_PREPARED);
  mh_connect(&m.h, 0, 1);
  for (int k = 0; k < 4; k++) { /* some traffic: the old session's counters move on */
    char v[8];
    snprintf(v, sizeof v, "%d", k);
    mh_write(&m.h, 0, "put", "old", v);
    mh_run_for(&m.h, 500);
  }
  vs_rx_key old_key;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &old_key), VS_OK);
  /* Frames of the old session that B never got. */
  m.hold[0][1] = true;
  mh_write(&m.h, 0, "put", "late", "1");
  mh_pump(&m.h);
  assert_true(m.nheld >= 1);
  uint32_t nold = m.nheld;
  held old[HELD_MAX];
  memcpy(old, m.held, sizeof *old * nold);
  m.nheld = 0; /* `old` owns those bytes now */
  assert_true(frame_counter(&old[0]) > 0);
  /* The same handle again, a new handshake; A's DATA frames held. */
  mh_disconnect(&m.h, 0, 1);
  mh_connect(&m.h, 0, 1);
  mh_pump(&m.h);
  assert_int_equal(vs_node_peers_ready(m.h.nodes[1]), 1);
  assert_true(m.nheld >= 1);
  vs_rx_key new_key;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &new_key), VS_OK);
  assert_true(new_key.session != old_key.session);
  assert_int_equal(new_key.peer, old_key.peer);

  /* The old session's frames, opened with the old key: the key is stale, so
   * on_frame decides, with the new session's key: forged (the new window is
   * empty, so no counter of theirs can be a replay there). */
  snap s0;
  snap_take(m.h.nodes[1], &s0);
  for (uint32_t k = 0; k < nold; k++) {
    assert_int_equal(expect_refused_as_on_frame(&m, 1, 0, old[k].bytes, old[k].len, &old_key, "old frame, old key"),
                     VS_ERR_AUTH);
    /* With the new key it does not even open: the same refusal. */
    assert_int_equal(expect_refused_as_on_frame(&m, 1, 0, old[k].bytes, old[k].len, &new_key, "old frame, new key"),
                     VS_ERR_AUTH);
  }
  snap s1;
  snap_take(m.h.nodes[1], &s1);
  assert_int_equal(s1.st.rejected_auth - s0.st.rejected_auth, 4 * nold);
  assert_int_equal(s1.st.rejected_replay - s0.st.rejected_replay, 0);
  expect_same_store(m.h.nodes[1], &s0, "old frames");

  /* The new session's first frame prepared with the old key: the old key
   * does not open it, on_frame does, with the right key: accepted. Then the
   * rest, with the new key. */
  assert_err(mesh_deliver_key(&m, 1, 0, m.held[0].bytes, m.held[0].len, &old_key), VS_OK);
  for (uint32_t k = 1; k < m.nheld; k++)
    assert_err(mesh_deliver_key(&m, 1, 0, m.held[k].bytes, m.held[k].len, &new_key), VS_OK);
  snap s2;
  snap_take(m.h.nodes[1], &s2);
  assert_int_equal(s2.st.frames_in - s1.st.frames_in, m.nheld);
  assert_int_equal(s2.st.rejected_auth + s2.st.rejected_replay, s1.st.rejected_auth + s1.st.rejected_replay);
  /* The write that travelled in the lost old frames arrives anyway. */
  m.hold[0][1] = false;
  held_clear(&m);
  mh_run_for(&m.h, 5000);
  expect_converged(&m, 0, 1);
  snap s3;
  snap_take(m.h.nodes[1], &s3);
  assert_int_equal(s3.lsn, 5);
  assert_int_equal(s3.st.runs_forged + s3.st.rejected_malformed, 0);
  for (uint32_t k = 0; k < nold; k++) free(old[k].bytes);
  sodium_memzero(&old_key, sizeof old_key);
  sodium_memzero(&new_key, sizeof new_key);
  mesh_free(&m);
}

/* ---- 3. a prep made with peer X's key, handed over for peer Y ---- */

static void test_pipeline_key_of_another_peer(void **state) {
  (void)state;
  mesh m;
  mesh_init(&m, 3, PATH_PREPARED);
  mh_connect(&m.h, 0, 1);
  mh_connect(&m.h, 2, 1);
  mh_write(&m.h, 0, "put", "x", "from-a");
  mh_write(&m.h, 2, "put", "y", "from-c");
  mh_run_for(&m.h, 3000);
  m.hold[0][1] = m.hold[2][1] = true;
  mh_write(&m.h, 0, "put", "x2", "a");
  mh_write(&m.h, 2, "put", "y2", "c");
  mh_pump(&m.h);
  const held *fa = NULL, *fc = NULL;
  for (uint32_t k = 0; k < m.nheld; k++) {
    if (m.held[k].from == 0 && fa == NULL) fa = &m.held[k];
    if (m.held[k].from == 2 && fc == NULL) fc = &m.held[k];
  }
  assert_non_null(fa);
  assert_non_null(fc);
  vs_rx_key ka, kc;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &ka), VS_OK);
  assert_err(vs_node_rx_key(m.h.nodes[1], 2, &kc), VS_OK);
  assert_memory_not_equal(ka.key, kc.key, sizeof ka.key);
  /* A's frame, opened with A's key, handed over as C's: C's session decides
   * (forged under C's key, or a replay of a counter C used). */
  vs_err err = expect_refused_as_on_frame(&m, 1, 2, fa->bytes, fa->len, &ka, "A's frame as C's, A's key");
  assert_true(err == VS_ERR_AUTH || err == VS_ERR_REPLAY);
  /* ... and as a connection B does not know. */
  assert_int_equal(expect_refused_as_on_frame(&m, 1, 7, fa->bytes, fa->len, &ka, "A's frame, unknown handle"),
                   VS_ERR_NOTFOUND);
  /* C's frame prepared with A's key (it does not open) goes to C: accepted. */
  snap s0;
  snap_take(m.h.nodes[1], &s0);
  assert_err(mesh_deliver_key(&m, 1, 2, fc->bytes, fc->len, &ka), VS_OK);
  snap s1;
  snap_take(m.h.nodes[1], &s1);
  assert_int_equal(s1.st.frames_in, s0.st.frames_in + 1);
  assert_int_equal(s1.st.rejected_auth + s1.st.rejected_replay, s0.st.rejected_auth + s0.st.rejected_replay);
  /* The refusals did not move A's window: A's frame, rightly, passes. */
  assert_err(mesh_deliver_key(&m, 1, 0, fa->bytes, fa->len, &ka), VS_OK);
  for (uint32_t k = 0; k < m.nheld; k++) { /* the rest, in order per link */
    held *h = &m.held[k];
    if (h != fa && h != fc) assert_err(mesh_deliver(&m, 1, h->from, h->bytes, h->len), VS_OK);
  }
  m.hold[0][1] = m.hold[2][1] = false;
  held_clear(&m);
  mh_run_for(&m.h, 5000);
  expect_converged(&m, 0, 1);
  expect_converged(&m, 1, 2);
  sodium_memzero(&ka, sizeof ka);
  sodium_memzero(&kc, sizeof kc);
  mesh_free(&m);
}

/* ---- 4. replays and reordering of prepared frames ---- */

static void test_pipeline_replay_and_reorder(void **state) {
  (void)state;
  mesh m;
  mesh_init(&m, 2, PATH_PREPARED);
  mh_connect(&m.h, 0, 1);
  mh_run_for(&m.h, 1000);
  m.hold[0][1] = true;
  for (int k = 0; k < 4 && m.nheld < 2; k++) {
    mh_write(&m.h, 0, "incr", "n", "1");
    mh_pump(&m.h);
  }
  assert_true(m.nheld >= 2);
  const held *f0 = &m.held[0], *f1 = &m.held[1];
  assert_int_equal(frame_counter(f1), frame_counter(f0) + 1);
  vs_rx_key key;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &key), VS_OK);
  vs_rx_prep *p0 = NULL, *p1 = NULL;
  assert_err(vs_rx_prepare(&key, f0->bytes, f0->len, &p0), VS_OK);
  assert_err(vs_rx_prepare(&key, f1->bytes, f1->len, &p1), VS_OK);
  /* Counter k+1 first, then k: both inside the window, both accepted. */
  snap s0;
  snap_take(m.h.nodes[1], &s0);
  assert_err(vs_node_on_prepared(m.h.nodes[1], 0, p1, m.h.now_ms), VS_OK);
  assert_err(vs_node_on_prepared(m.h.nodes[1], 0, p0, m.h.now_ms), VS_OK);
  snap s1;
  snap_take(m.h.nodes[1], &s1);
  assert_int_equal(s1.st.frames_in - s0.st.frames_in, 2);
  assert_int_equal(s1.st.rejected_replay, s0.st.rejected_replay);
  /* The same prep again: a replay, counted, nothing else changes. */
  for (int r = 0; r < 2; r++) {
    const vs_rx_prep *p = r == 0 ? p1 : p0;
    snap a;
    snap_take(m.h.nodes[1], &a);
    assert_err(vs_node_on_prepared(m.h.nodes[1], 0, p, m.h.now_ms), VS_ERR_REPLAY);
    snap b;
    snap_take(m.h.nodes[1], &b);
    vs_node_stats d = stats_delta(&b.st, &a.st);
    assert_int_equal(d.rejected_replay, 1);
    assert_int_equal(d.frames_in, 1);
    assert_int_equal(d.rejected_auth + d.rejected_malformed + d.runs_applied + d.ops_applied + d.runs_gap, 0);
    expect_same_store(m.h.nodes[1], &a, "replayed prep");
    /* And on_frame agrees about the bytes. */
    assert_int_equal(expect_refused_as_on_frame(&m, 1, 0, r == 0 ? f1->bytes : f0->bytes,
                                                r == 0 ? f1->len : f0->len, &key, "replayed frame"),
                     VS_ERR_REPLAY);
  }
  vs_rx_prep_free(p0);
  vs_rx_prep_free(p1);
  for (uint32_t k = 2; k < m.nheld; k++) assert_err(mesh_deliver(&m, 1, 0, m.held[k].bytes, m.held[k].len), VS_OK);
  held_clear(&m);

  /* The window's edge, with every frame prepared before any is applied (a
   * deep pipeline): the newest first; 64 back is outside, 63 back inside. */
  for (int k = 0; k < 200 && m.nheld < VS_REPLAY_WINDOW + 8; k++) {
    char t[16];
    snprintf(t, sizeof t, "w%d", k);
    mh_write(&m.h, 0, "put", t, "v");
    mh_pump(&m.h);
  }
  uint32_t n = m.nheld;
  assert_true(n >= VS_REPLAY_WINDOW + 2);
  vs_rx_prep **preps = calloc(n, sizeof *preps);
  assert_non_null(preps);
  for (uint32_t k = 0; k < n; k++) {
    if (k > 0) assert_int_equal(frame_counter(&m.held[k]), frame_counter(&m.held[k - 1]) + 1);
    assert_err(vs_rx_prepare(&key, m.held[k].bytes, m.held[k].len, &preps[k]), VS_OK);
  }
  uint32_t last = n - 1;
  assert_err(vs_node_on_prepared(m.h.nodes[1], 0, preps[last], m.h.now_ms), VS_OK);
  snap_take(m.h.nodes[1], &s0);
  assert_err(vs_node_on_prepared(m.h.nodes[1], 0, preps[last - VS_REPLAY_WINDOW], m.h.now_ms), VS_ERR_REPLAY);
  expect_same_store(m.h.nodes[1], &s0, "older than the window");
  assert_err(vs_node_on_prepared(m.h.nodes[1], 0, preps[last - VS_REPLAY_WINDOW + 1], m.h.now_ms), VS_OK);
  for (uint32_t k = last - 1; k > last - VS_REPLAY_WINDOW + 1; k--)
    assert_err(vs_node_on_prepared(m.h.nodes[1], 0, preps[k], m.h.now_ms), VS_OK);
  for (uint32_t k = 0; k <= last; k++) /* everything again: all replays now */
    assert_err(vs_node_on_prepared(m.h.nodes[1], 0, preps[k], m.h.now_ms), VS_ERR_REPLAY);
  snap_take(m.h.nodes[1], &s1);
  assert_int_equal(s1.st.rejected_replay - s0.st.rejected_replay, 1 + n);
  for (uint32_t k = 0; k < n; k++) vs_rx_prep_free(preps[k]);
  free(preps);
  /* The ops of the frames refused as too old are fetched again. */
  m.hold[0][1] = false;
  held_clear(&m);
  mh_run_for(&m.h, 10000);
  expect_converged(&m, 0, 1);
  sodium_memzero(&key, sizeof key);
  mesh_free(&m);
}

/* ---- 5. twins: one world through on_frame, one through the pipeline ---- */

/* A digest of everything the store shows: the state with tombstones, the
 * WAL (ids and times) and the version vector. */
static vs_err dump_entry(const vs_state_entry *e, void *ctx) {
  crypto_generichash_state *h = ctx;
  uint8_t fixed[4 + 4 + 8 + 8];
  vt_put_u32le(fixed, e->target_bytes);
  vt_put_u32le(fixed + 4, (uint32_t)e->kind);
  vt_put_u64le(fixed + 8, (uint64_t)e->counter);
  vt_put_u64le(fixed + 16, e->hlc);
  crypto_generichash_update(h, fixed, sizeof fixed);
  crypto_generichash_update(h, e->target, e->target_bytes);
  crypto_generichash_update(h, e->origin, VS_ORIGIN_BYTES);
  uint8_t vlen[4];
  vt_put_u32le(vlen, e->value_bytes);
  crypto_generichash_update(h, vlen, sizeof vlen);
  if (e->value_bytes > 0) crypto_generichash_update(h, e->value, e->value_bytes);
  return VS_OK;
}

static vs_err dump_wal(const vs_wal_record *r, void *ctx) {
  crypto_generichash_state *h = ctx;
  uint8_t fixed[16];
  vt_put_u64le(fixed, r->lsn);
  vt_put_u64le(fixed + 8, r->stored_at_ms);
  crypto_generichash_update(h, fixed, sizeof fixed);
  crypto_generichash_update(h, r->op.id.bytes, VS_OP_ID_BYTES);
  return VS_OK;
}

static vs_err dump_vv(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  crypto_generichash_state *h = ctx;
  uint8_t s[8];
  vt_put_u64le(s, seq);
  crypto_generichash_update(h, origin, VS_ORIGIN_BYTES);
  crypto_generichash_update(h, s, sizeof s);
  return VS_OK;
}

static void dump_digest(vs_node *node, uint8_t out[32]) {
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, 32);
  vs_store *st = vs_node_store(node);
  assert_err(vs_state_dump(st, true, dump_entry, &h), VS_OK);
  assert_err(vs_wal_replay(st, 1, dump_wal, &h), VS_OK);
  assert_err(vs_vv_each(st, dump_vv, &h), VS_OK);
  crypto_generichash_final(&h, out, 32);
}

/* Deliver an exact-size heap copy of bytes[0, len), so ASan sees any read
 * past its end, with byte `flip_at` (if < len) xor 0x04. */
static void deliver_exact(mesh *m, uint32_t from, const uint8_t *bytes, size_t len, size_t flip_at) {
  uint8_t *b = vt_dup_exact(bytes, len);
  if (flip_at < len) b[flip_at] ^= 0x04;
  (void)mesh_deliver(m, 1, from, b, len);
  free(b);
}

/* Bad frames of every kind, built from `f`, delivered to node 1 as from 0. */
static void hostile_variants(mesh *m, const held *f) {
  const size_t at[5] = {0, 1, 2, 10, f->len - 1}; /* version, type, counter, ciphertext, tag */
  for (int k = 0; k < 5; k++) deliver_exact(m, 0, f->bytes, f->len, at[k]);
  deliver_exact(m, 0, f->bytes, f->len / 2, SIZE_MAX);
  deliver_exact(m, 0, f->bytes, VS_DATA_OVERHEAD_BYTES, SIZE_MAX);
  deliver_exact(m, 0, f->bytes, VS_DATA_OVERHEAD_BYTES + 1, SIZE_MAX);
  uint8_t *longer = malloc(f->len + 1); /* one trailing byte */
  assert_non_null(longer);
  memcpy(longer, f->bytes, f->len);
  longer[f->len] = 0;
  deliver_exact(m, 0, longer, f->len + 1, SIZE_MAX);
  free(longer);
  deliver_exact(m, 9, f->bytes, f->len, SIZE_MAX); /* a connection node 1 does not know */
  deliver_exact(m, 0, f->bytes, f->len, SIZE_MAX); /* the frame itself (first time: accepted) */
  deliver_exact(m, 0, f->bytes, f->len, SIZE_MAX); /* again: a replay */
}

/* The whole scenario, on one world. Every delivery is recorded. */
static void twin_scenario(mesh *m) {
  m->record = true;
  mh_write(&m->h, 0, "put", "colour", "blue");
  mh_write(&m->h, 1, "incr", "visits", "2");
  mh_connect(&m->h, 0, 1);
  mh_run_for(&m->h, 2000);
  /* Hostile frames around A's next frames; A's frames delivered backwards. */
  m->hold[0][1] = true;
  for (int k = 0; k < 6; k++) {
    char v[8];
    snprintf(v, sizeof v, "%d", k);
    mh_write(&m->h, 0, k % 2 ? "incr" : "put", k % 2 ? "visits" : "colour", v);
    mh_pump(&m->h);
  }
  assert_true(m->nheld >= 2);
  for (uint32_t k = m->nheld; k-- > 0;) hostile_variants(m, &m->held[k]);
  held_clear(m);
  uint8_t *big = calloc(1, VS_FRAME_BYTES_MAX + 1);
  assert_non_null(big);
  big[0] = VS_WIRE_VERSION;
  big[1] = VS_FRAME_DATA;
  (void)mesh_deliver(m, 1, 0, big, VS_FRAME_BYTES_MAX + 1);
  free(big);
  /* A reconnect on the same handle; the old session's last frames arrive
   * after it, in the pipeline world opened with the old session's key. */
  vs_rx_key old_key;
  assert_err(vs_node_rx_key(m->h.nodes[1], 0, &old_key), VS_OK);
  mh_write(&m->h, 0, "del", "colour", "");
  mh_pump(&m->h);
  uint32_t nold = m->nheld;
  assert_true(nold >= 1);
  mh_disconnect(&m->h, 0, 1);
  mh_connect(&m->h, 1, 0); /* B dials this time */
  mh_pump(&m->h);
  for (uint32_t k = 0; k < nold; k++)
    (void)mesh_deliver_key(m, 1, 0, m->held[k].bytes, m->held[k].len, &old_key);
  for (uint32_t k = nold; k < m->nheld; k++) /* the new session's, the first with the old key */
    (void)mesh_deliver_key(m, 1, 0, m->held[k].bytes, m->held[k].len, k == nold ? &old_key : NULL);
  for (uint32_t k = 0; k < m->nheld; k++) (void)mesh_deliver(m, 1, 0, m->held[k].bytes, m->held[k].len);
  sodium_memzero(&old_key, sizeof old_key);
  m->hold[0][1] = false;
  held_clear(m);
  mh_write(&m->h, 1, "put", "last", "b");
  mh_run_for(&m->h, 8000);
}

static void test_pipeline_twin_matches_on_frame(void **state) {
  (void)state;
  mesh w[2];
  mesh_init(&w[0], 2, PATH_FRAME);
  mesh_init(&w[1], 2, PATH_PREPARED);
  twin_scenario(&w[0]);
  twin_scenario(&w[1]);
  /* Every delivery: the same frame, the same result, the same counters. */
  assert_true(w[0].nrecs > 100);
  assert_int_equal(w[0].nrecs, w[1].nrecs);
  uint64_t refused = 0, accepted = 0;
  for (size_t k = 0; k < w[0].nrecs; k++) {
    const rec *a = &w[0].recs[k], *b = &w[1].recs[k];
    if (a->to != b->to || a->from != b->from || a->len != b->len || memcmp(a->digest, b->digest, 16) != 0)
      fail_msg("delivery %zu: not the same frame (the worlds diverged earlier)", k);
    if (a->err != b->err)
      fail_msg("delivery %zu (%zu bytes to node %u from %u): on_frame %s, pipeline %s", k, a->len, a->to, a->from,
               vs_err_name(a->err), vs_err_name(b->err));
    char what[64];
    snprintf(what, sizeof what, "delivery %zu counters", k);
    stats_expect_equal(&a->st, &b->st, what);
    if (a->err == VS_OK) accepted++;
    else refused++;
  }
  /* The scenario did what it claims: every kind of refusal happened. */
  vs_node_stats st;
  vs_node_stats_get(w[0].h.nodes[1], &st);
  assert_true(st.rejected_auth > 0 && st.rejected_replay > 0 && st.rejected_malformed > 0 &&
              st.rejected_unknown_peer > 0 && st.handshakes_done == 2);
  assert_true(accepted > 0 && refused > 0);
  print_message("twins: %zu deliveries (%" PRIu64 " accepted, %" PRIu64 " refused) agree\n", w[0].nrecs, accepted,
                refused);
  /* The end: equal counters, equal stores, on both nodes; and converged. */
  for (uint32_t i = 0; i < 2; i++) {
    vs_node_stats a, b;
    vs_node_stats_get(w[0].h.nodes[i], &a);
    vs_node_stats_get(w[1].h.nodes[i], &b);
    stats_expect_equal(&a, &b, i == 0 ? "node 0 at the end" : "node 1 at the end");
    snap sa, sb;
    snap_take(w[0].h.nodes[i], &sa);
    snap_take(w[1].h.nodes[i], &sb);
    assert_memory_equal(sa.hash, sb.hash, VS_HASH_BYTES);
    assert_int_equal(sa.lsn, sb.lsn);
    uint8_t da[32], db[32];
    dump_digest(w[0].h.nodes[i], da);
    dump_digest(w[1].h.nodes[i], db);
    assert_memory_equal(da, db, sizeof da);
    vs_outbox_counts ca, cb;
    vt_node_outbox_counts(w[0].h.nodes[i], &ca);
    vt_node_outbox_counts(w[1].h.nodes[i], &cb);
    assert_memory_equal(&ca, &cb, sizeof ca);
  }
  expect_converged(&w[0], 0, 1);
  expect_converged(&w[1], 0, 1);
  mesh_free(&w[0]);
  mesh_free(&w[1]);
}

/* A prep made with a key of node B's previous instance (closed, reopened
 * from the same directory), handed to the new instance for the same handle. */
static void test_stale_key_across_restart(void **state) {
  (void)state;
  mesh m;
  mesh_init(&m, 2, PATH_PREPARED);
  mh_connect(&m.h, 0, 1);
  mh_write(&m.h, 0, "put", "a", "1");
  mh_run_for(&m.h, 2000);
  vs_rx_key k1;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &k1), VS_OK);
  m.hold[0][1] = true;
  mh_write(&m.h, 0, "put", "b", "2");
  mh_pump(&m.h);
  assert_true(m.nheld >= 1);
  held f = m.held[0];
  for (uint32_t i = 1; i < m.nheld; i++) free(m.held[i].bytes); /* the run and, since wire v6, a vector: one will do */
  m.nheld = 0;
  /* B restarts in-process; A reconnects on the same handle. */
  mh_disconnect(&m.h, 0, 1);
  mh_restart(&m.h, 1);
  mh_connect(&m.h, 0, 1);
  mh_pump(&m.h);
  vs_rx_key k2;
  assert_err(vs_node_rx_key(m.h.nodes[1], 0, &k2), VS_OK);
  vs_err via_frame = vs_node_on_frame(m.h.nodes[1], 0, f.bytes, f.len, m.h.now_ms); /* refused: changes nothing */
  snap s0;
  snap_take(m.h.nodes[1], &s0);
  vs_rx_prep *prep = NULL;
  assert_err(vs_rx_prepare(&k1, f.bytes, f.len, &prep), VS_OK);
  vs_err via_prep = vs_node_on_prepared(m.h.nodes[1], 0, prep, m.h.now_ms);
  vs_rx_prep_free(prep);
  snap s1;
  snap_take(m.h.nodes[1], &s1);
  free(f.bytes);
  /* Session numbers start again in a new instance: only the key tells. */
  assert_int_equal(k2.session, k1.session);
  assert_err(via_frame, VS_ERR_AUTH);
  assert_err(via_prep, via_frame);
  assert_int_equal(s1.lsn, s0.lsn);
  sodium_memzero(&k1, sizeof k1);
  sodium_memzero(&k2, sizeof k2);
  mesh_free(&m);
}

/* Two nodes in one process: B1's key handed to B2 for the same handle. */
static void test_key_of_another_node(void **state) {
  (void)state;
  mesh w1, w2;
  mesh_init(&w1, 2, PATH_PREPARED);
  mesh_init(&w2, 2, PATH_PREPARED);
  w2.h.rng = 999; /* other ephemeral keys */
  mh_connect(&w1.h, 0, 1);
  mh_connect(&w2.h, 0, 1);
  mh_run_for(&w1.h, 1000);
  mh_run_for(&w2.h, 1000);
  w1.hold[0][1] = true;
  mh_write(&w1.h, 0, "put", "only-in-w1", "x");
  mh_pump(&w1.h);
  assert_true(w1.nheld >= 1);
  vs_rx_key k;
  assert_err(vs_node_rx_key(w1.h.nodes[1], 0, &k), VS_OK);
  vs_rx_key k2;
  assert_err(vs_node_rx_key(w2.h.nodes[1], 0, &k2), VS_OK);
  vs_err via_frame = vs_node_on_frame(w2.h.nodes[1], 0, w1.held[0].bytes, w1.held[0].len, w2.h.now_ms);
  snap s0, s1;
  snap_take(w2.h.nodes[1], &s0);
  vs_rx_prep *prep = NULL;
  assert_err(vs_rx_prepare(&k, w1.held[0].bytes, w1.held[0].len, &prep), VS_OK);
  vs_err via_prep = vs_node_on_prepared(w2.h.nodes[1], 0, prep, w2.h.now_ms);
  vs_rx_prep_free(prep);
  snap_take(w2.h.nodes[1], &s1);
  assert_int_equal(k2.session, k.session);
  assert_err(via_frame, VS_ERR_AUTH);
  assert_err(via_prep, via_frame);
  assert_int_equal(s1.lsn, s0.lsn);
  sodium_memzero(&k, sizeof k);
  sodium_memzero(&k2, sizeof k2);
  mesh_free(&w1);
  mesh_free(&w2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pipeline_without_key_falls_back),
      cmocka_unit_test(test_pipeline_rx_key_states),
      cmocka_unit_test(test_pipeline_stale_key_after_reconnect),
      cmocka_unit_test(test_pipeline_key_of_another_peer),
      cmocka_unit_test(test_pipeline_replay_and_reorder),
      cmocka_unit_test(test_pipeline_twin_matches_on_frame),
      cmocka_unit_test(test_stale_key_across_restart),
      cmocka_unit_test(test_key_of_another_node),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
