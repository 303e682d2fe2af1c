/* Acks reaching a device seeded from a snapshot (src/node_acks.c;
 * docs/protocol.md "Acknowledgements", docs/storage.md "Snapshots"). An
 * author's deltas are against its keyframe, and with few origins the
 * keyframe is its first ack (the delta never grows past the keyframe
 * rule's 16 entries): it names seqs the mesh compacted long ago. A device
 * seeded from a snapshot holds nothing below its horizons, so it can check
 * no such keyframe, and so no delta either: it never stored an ack of the
 * members, its cut stayed 0 under its horizons (vix-sim's `horizon <= cut`
 * check, 2026-12). A keyframe that cannot be checked for lack of ops is now
 * held for the message's next ack of its author: a delta against it whose
 * full vector (that keyframe merged with the delta) verifies is stored with
 * it. Also the hostile side: a keyframe whose entries were changed in
 * transit, and a delta against a keyframe never sent, are not stored.
 * Real vs_nodes on the in-memory mesh; time is virtual. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acks.h"
#include "chain.h"
#include "fixture.h"
#include "internal.h"
#include "mesh_harness.h"
/* Invites that expire soon: a member's ops compact only once no other
 * admission can take its invite (compact_final.h). */
#define MN_INVITE_MS 2000ull
#include "member_nodes.h"
#include "node_int.h"
#include "snap_buf.h"
#include "vixsync/snapshot.h"
#include "wire.h"

static void writes(mh_mesh *m, uint32_t nodes, uint32_t count, uint32_t round) {
  char t[32], v[32];
  for (uint32_t k = 0; k < count; k++) {
    snprintf(t, sizeof t, "t%u", k % 11);
    snprintf(v, sizeof v, "r%u-%u", round, k);
    mh_write(m, k % nodes, "put", t, v);
    if (k % 16 == 15) mh_run_for(m, 10);
  }
}

/* Per origin held on node i: horizon <= cut; the cut's info. */
typedef struct hz_check {
  mh_mesh *m;
  MDB_txn *txn;
  vs_store *st;
  uint32_t below; /* origins whose horizon is above the cut */
  uint64_t hz_sum;
} hz_check;

static vs_err hz_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx) {
  hz_check *c = ctx;
  vs_horizon h;
  vs_err err = vs_horizon_get(c->txn, c->st, origin, &h);
  if (err != VS_OK) return err;
  assert_true(cut <= head);
  c->below += h.seq > cut ? 1u : 0u;
  c->hz_sum += h.seq;
  return VS_OK;
}

static hz_check check_cut(mh_mesh *m, uint32_t i, vs_acks_cut_info *info) {
  hz_check c = {m, NULL, mn_store(m, i), 0, 0};
  assert_err(vs_txn_begin(c.st, false, &c.txn), VS_OK);
  assert_err(vs_acks_cut_txn(c.txn, c.st, 0, hz_cb, &c, info), VS_OK);
  mdb_txn_abort(c.txn);
  c.txn = NULL;
  return c;
}

static uint64_t horizon(mh_mesh *m, uint32_t i, uint32_t origin) {
  MDB_txn *txn;
  vs_horizon h;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  assert_err(vs_horizon_get(txn, mn_store(m, i), m->ids[origin].pk, &h), VS_OK);
  mdb_txn_abort(txn);
  return h.seq;
}

/* Node i's stored record of author a: its keyframe's entry for `origin`. */
static bool key_seq(mh_mesh *m, uint32_t i, uint32_t a, uint32_t origin, uint64_t *seq_out, bool *delta_out) {
  MDB_txn *txn;
  vs_ack_rec rec;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  vs_err err = vs_acks_get_txn(txn, mn_store(m, i), m->ids[a].pk, &rec);
  mdb_txn_abort(txn);
  assert_true(err == VS_OK || err == VS_ERR_NOTFOUND);
  if (err != VS_OK) return false;
  *seq_out = 0;
  for (uint32_t k = 0; k < rec.key_n; k++)
    if (memcmp(rec.key[k].origin, m->ids[origin].pk, VS_ORIGIN_BYTES) == 0) *seq_out = rec.key[k].seq;
  *delta_out = rec.hlc != rec.key_hlc;
  vs_ack_rec_free(&rec);
  return true;
}

/* Three compacting members; node 3 joins and is seeded from node 0's
 * snapshot (as vix-node restore does), then node 4 joins (a new member
 * makes every vector move: new acks of everyone). */
static void seeded_world(mh_mesh *m, const char *tag) {
  mn_mesh(m, 4, 3, NULL, tag, 0x51, 0x51, mn_compacting);
  mh_connect(m, 1, 0);
  mh_connect(m, 2, 0);
  mh_connect(m, 2, 1);
  /* Rounds some seconds apart: acks all along, the first one each
   * member's keyframe for good (three origins: deltas stay small). */
  for (uint32_t r = 0; r < 6; r++) {
    writes(m, 3, 40, r);
    mh_run_for(m, 4000);
  }
  mh_run_for(m, 30000);
  for (uint32_t o = 0; o < 3; o++) assert_true(horizon(m, 0, o) > 0);
  mn_join(m, 0, 3, VS_MESH_WRITER);
  mh_run_for(m, 100);
  vt_snap_buf snap = {NULL, 0, 0, 0};
  vs_snapshot_info info;
  assert_err(vs_snapshot_make(mn_store(m, 0), vt_snap_write, &snap, &info), VS_OK);
  assert_int_equal(info.origins, 3);
  mh_close(m, 3);
  vs_store *s = NULL;
  assert_err(vt_store_open(m->dirs[3], 64ull << 20, &s), VS_OK);
  assert_err(vs_store_set_identity(s, &m->ids[3]), VS_OK);
  assert_err(vs_snapshot_install(s, vt_snap_read, &snap, m->now_ms, NULL), VS_OK);
  vs_store_close(s);
  free(snap.p);
  mh_open(m, 3, 0);
}

static void test_seeded_device_stores_every_members_ack(void **state) {
  (void)state;
  mh_mesh m;
  seeded_world(&m, "as-seeded");
  /* The members' keyframes name seqs below node 3's horizons: the case. */
  uint64_t ks = 0;
  bool delta = false;
  assert_true(key_seq(&m, 0, 1, 1, &ks, &delta));
  assert_true(delta);
  assert_true(ks < horizon(&m, 3, 1));
  mh_connect(&m, 3, 0);
  mh_connect(&m, 3, 2);
  mh_run_for(&m, 20000);
  writes(&m, 4, 80, 1); /* node 3 writes too */
  mh_run_for(&m, 40000);
  mh_expect_converged(&m, 0, 3);
  vs_acks_cut_info info;
  hz_check c = check_cut(&m, 3, &info);
  assert_int_equal(info.members, 4);
  assert_int_equal(info.with_ack, 4); /* was 1: its own */
  assert_int_equal(c.below, 0);      /* was 3: cut 0 under every horizon */
  assert_true(c.hz_sum > 0);
  vs_node_stats s = mn_stats(&m, 3);
  assert_true(s.acks_received >= 3);
  /* Node 3 holds node 1's record with the old keyframe (below its
   * horizon) and a delta: what verified is the merged vector. */
  assert_true(key_seq(&m, 3, 1, 1, &ks, &delta));
  assert_true(delta);
  assert_true(ks < horizon(&m, 3, 1));
  /* Its acks reach the members in turn: their cut covers its writes, and
   * compaction goes on for its chain too. */
  mh_run_for(&m, 20000);
  for (uint32_t i = 0; i < 4; i++) {
    hz_check ci = check_cut(&m, i, &info);
    assert_int_equal(info.with_ack, 4);
    assert_int_equal(ci.below, 0);
  }
  assert_true(horizon(&m, 0, 3) > 0);
  assert_true(horizon(&m, 3, 3) > 0);
  mh_free(&m);
}

/* ---- hostile: what a peer with the mesh key can send the seeded device ---- */

typedef struct acks_out {
  vs_ack_entry e[2][VS_WIRE_VV_MAX];
  uint32_t n[2];
  uint64_t hlc[2], key_hlc[2];
  uint8_t sig[2][VS_SIGNATURE_BYTES];
  uint32_t count;
} acks_out;

/* Node 0's stored record of node 1: its keyframe and its delta. */
static void record_of(mh_mesh *m, uint32_t i, uint32_t a, acks_out *o) {
  MDB_txn *txn;
  vs_ack_rec rec;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  assert_err(vs_acks_get_txn(txn, mn_store(m, i), m->ids[a].pk, &rec), VS_OK);
  mdb_txn_abort(txn);
  assert_true(rec.hlc != rec.key_hlc && rec.key_n <= VS_WIRE_VV_MAX && rec.delta_n <= VS_WIRE_VV_MAX);
  memcpy(o->e[0], rec.key, sizeof *rec.key * rec.key_n);
  o->n[0] = rec.key_n;
  o->hlc[0] = o->key_hlc[0] = rec.key_hlc;
  memcpy(o->sig[0], rec.key_sig, VS_SIGNATURE_BYTES);
  memcpy(o->e[1], rec.delta, sizeof *rec.delta * rec.delta_n);
  o->n[1] = rec.delta_n;
  o->hlc[1] = rec.hlc;
  o->key_hlc[1] = rec.key_hlc;
  memcpy(o->sig[1], rec.sig, VS_SIGNATURE_BYTES);
  vs_ack_rec_free(&rec);
}

/* An ACKS message of the given acks (of author a), as from node `from`:
 * straight into node `to`'s receive path for its peer `from` (the session
 * is the one node `from` opened; what it carries is the test's). */
static void send_acks(mh_mesh *m, uint32_t from, uint32_t to, uint32_t a, const acks_out *o, bool keyframe, bool delta) {
  static uint8_t buf[VS_MSG_BYTES_MAX];
  vs_acks_writer w;
  assert_err(vs_acks_writer_init(&w, buf, sizeof buf), VS_OK);
  if (keyframe) assert_err(vs_acks_writer_add(&w, m->ids[a].pk, o->hlc[0], o->key_hlc[0], o->sig[0], o->e[0], o->n[0]), VS_OK);
  if (delta) assert_err(vs_acks_writer_add(&w, m->ids[a].pk, o->hlc[1], o->key_hlc[1], o->sig[1], o->e[1], o->n[1]), VS_OK);
  size_t len = 0;
  assert_err(vs_acks_writer_finish(&w, &len), VS_OK);
  peer *p = nd_peer_find(m->nodes[to], from);
  assert_non_null(p);
  assert_int_equal(p->st, PEER_READY);
  assert_err(nd_on_acks(m->nodes[to], p, buf, len, m->now_ms), VS_OK);
}

static bool holds_ack(mh_mesh *m, uint32_t i, uint32_t a) {
  uint64_t ks;
  bool d;
  return key_seq(m, i, a, a, &ks, &d);
}

static void test_seeded_device_refuses_bent_keyframes(void **state) {
  (void)state;
  mh_mesh m;
  seeded_world(&m, "as-hostile");
  acks_out o;
  /* Node 3 talks to node 2, whose relays reach it; then its record of
   * node 1 is deleted (node 2 remembers having told it: no relay of it
   * comes again, and the test sends nothing but by hand, without running
   * the mesh). */
  mh_connect(&m, 3, 2);
  mh_run_for(&m, 2000);
  assert_true(holds_ack(&m, 3, 1)); /* the fix: it verified through its delta */
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(&m, 3), true, &txn), VS_OK);
  assert_err(vs_acks_del_txn(txn, mn_store(&m, 3), m.ids[1].pk), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  assert_false(holds_ack(&m, 3, 1));
  record_of(&m, 0, 1, &o);
  /* 1. A delta alone, against a keyframe never sent: not stored. */
  send_acks(&m, 2, 3, 1, &o, false, true);
  assert_false(holds_ack(&m, 3, 1));
  /* 2. The keyframe alone: it cannot be checked here (it names compacted
   * ops): not stored, nothing held past the message. */
  send_acks(&m, 2, 3, 1, &o, true, false);
  assert_false(holds_ack(&m, 3, 1));
  send_acks(&m, 2, 3, 1, &o, false, true);
  assert_false(holds_ack(&m, 3, 1));
  /* 3. A keyframe with an entry added that the delta does not override
   * (an origin past every real one, to keep the order): the merged vector
   * is not what node 1 signed. */
  acks_out bent = o;
  assert_true(bent.n[0] < VS_WIRE_VV_MAX);
  memset(bent.e[0][bent.n[0]].origin, 0xff, VS_ORIGIN_BYTES);
  bent.e[0][bent.n[0]++].seq = 1;
  send_acks(&m, 2, 3, 1, &bent, true, true);
  assert_false(holds_ack(&m, 3, 1));
  /* 4. The delta's signature changed: not stored. */
  bent = o;
  bent.sig[1][7] ^= 1;
  vs_node_stats s4 = mn_stats(&m, 3);
  send_acks(&m, 2, 3, 1, &bent, true, true);
  assert_false(holds_ack(&m, 3, 1));
  vs_node_stats s0 = mn_stats(&m, 3);
  assert_int_equal(s0.acks_unusable, s4.acks_unusable + 2); /* the keyframe and the delta */
  /* 5. The genuine pair, in one message: stored (the merged vector is node 1's). */
  send_acks(&m, 2, 3, 1, &o, true, true);
  assert_true(holds_ack(&m, 3, 1));
  vs_node_stats s1 = mn_stats(&m, 3);
  assert_int_equal(s1.acks_received, s0.acks_received + 1);
  assert_int_equal(s1.acks_unusable, s0.acks_unusable); /* the keyframe held back was used */
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seeded_device_stores_every_members_ack),
      cmocka_unit_test(test_seeded_device_refuses_bent_keyframes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
