/* Member acknowledgements and the stable cut (src/acks.h, src/node_acks.c;
 * docs/protocol.md "Acknowledgements"): real vs_nodes of a managed mesh on
 * the in-memory mesh (tests/mesh_harness.h). Three members converge and
 * every node's cut is the common vector; a member that stops acking holds
 * the cut; deltas follow the first keyframe; an ack lost in transit is
 * repaired by the re-tell. Time is virtual; nothing here depends on how
 * fast the machine is. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "acks.h"
#include "fixture.h"
#include "internal.h"
#include "mesh_harness.h"
#include "member_nodes.h"

/* ---- reading a node's cut ---- */

typedef struct cut_check {
  uint32_t origins;
  uint32_t below; /* origins whose cut is below the head */
  uint64_t head_sum, cut_sum;
} cut_check;

static vs_err cut_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx) {
  (void)origin;
  cut_check *c = ctx;
  assert_true(cut <= head);
  c->origins++;
  c->below += cut < head ? 1u : 0u;
  c->head_sum += head;
  c->cut_sum += cut;
  return VS_OK;
}

static cut_check node_cut(mh_mesh *m, uint32_t i, vs_acks_cut_info *info) {
  cut_check c;
  memset(&c, 0, sizeof c);
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  assert_err(vs_acks_cut_txn(txn, mn_store(m, i), 0, cut_cb, &c, info), VS_OK);
  mdb_txn_abort(txn);
  return c;
}

/* The cut of `origin` (node index) on node i. */
typedef struct one_cut {
  const uint8_t *origin;
  uint64_t cut;
} one_cut;

static vs_err one_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t cut, uint64_t head, void *ctx) {
  (void)head;
  one_cut *o = ctx;
  if (memcmp(origin, o->origin, VS_ORIGIN_BYTES) == 0) o->cut = cut;
  return VS_OK;
}

static uint64_t cut_of(mh_mesh *m, uint32_t i, uint32_t origin) {
  one_cut o = {m->ids[origin].pk, 0};
  vs_acks_cut_info info;
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  assert_err(vs_acks_cut_txn(txn, mn_store(m, i), 0, one_cb, &o, &info), VS_OK);
  mdb_txn_abort(txn);
  return o.cut;
}

/* Node i's stored record of author `a` (node index). */
static bool rec_of(mh_mesh *m, uint32_t i, uint32_t a, vs_ack_rec *out) {
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(m, i), false, &txn), VS_OK);
  vs_err err = vs_acks_get_txn(txn, mn_store(m, i), m->ids[a].pk, out);
  mdb_txn_abort(txn);
  assert_true(err == VS_OK || err == VS_ERR_NOTFOUND);
  return err == VS_OK;
}

static void three(mh_mesh *m, const char *tag) {
  mn_mesh(m, 3, 3, NULL, tag, 0xa1, 17, NULL);
  mh_connect(m, 0, 1);
  mh_connect(m, 0, 2);
  mh_connect(m, 1, 2);
}

/* Every node's cut is its whole vector, and the vectors agree. */
static void expect_all_stable(mh_mesh *m, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    vs_acks_cut_info info;
    cut_check c = node_cut(m, i, &info);
    assert_int_equal(info.members, count);
    assert_int_equal(info.with_ack, count);
    assert_true(info.oldest_hlc > 0); /* an HLC: its wall part is node time */
    assert_true(vs_hlc_wall_ms(info.oldest_hlc) > 0 && vs_hlc_wall_ms(info.oldest_hlc) <= m->now_ms);
    assert_int_equal(c.origins, count);
    assert_int_equal(c.below, 0);
    assert_int_equal(c.cut_sum, c.head_sum);
    assert_int_equal(info.stable_ops, c.cut_sum);
    assert_int_equal(info.behind, 0);
    vs_node_stats s = mn_stats(m, i);
    assert_int_equal(s.stable_ops, c.cut_sum);
    assert_int_equal(s.stable_behind, 0);
    if (i > 0) mh_expect_converged(m, 0, i);
  }
}

/* ---- the ACKS codec (wire.h) and the record helpers (acks.h) ---- */

static vs_err count_cb(const vs_ack_view *a, void *ctx) {
  vs_ack_entry e;
  if (a->count > 0) vs_ack_entry_at(a, a->count - 1, &e);
  (*(uint32_t *)ctx)++;
  return VS_OK;
}

static void test_acks_codec(void **state) {
  (void)state;
  uint8_t author[VS_ORIGIN_BYTES], sig[VS_SIGNATURE_BYTES], buf[2048];
  memset(author, 7, sizeof author);
  memset(sig, 9, sizeof sig);
  vs_ack_entry e[3];
  memset(e, 0, sizeof e);
  for (int i = 0; i < 3; i++) {
    e[i].origin[0] = (uint8_t)(i + 1);
    e[i].seq = (uint64_t)(10 * (i + 1));
  }
  vs_acks_writer w;
  size_t len = 0;
  assert_err(vs_acks_writer_init(&w, buf, sizeof buf), VS_OK);
  assert_err(vs_acks_writer_finish(&w, &len), VS_ERR_INVAL); /* no ack */
  assert_err(vs_acks_writer_add(&w, author, 5, 5, sig, e, 3), VS_OK);   /* a keyframe */
  e[1].seq = 0;                                                          /* a delta may drop an origin */
  assert_err(vs_acks_writer_add(&w, author, 5, 6, sig, e, 3), VS_ERR_INVAL); /* key_hlc > hlc */
  assert_err(vs_acks_writer_add(&w, author, 6, 6, sig, e, 3), VS_ERR_INVAL); /* seq 0 in a keyframe */
  assert_err(vs_acks_writer_add(&w, author, 6, 5, sig, e, 3), VS_OK);
  vs_ack_entry swapped[2] = {e[2], e[0]};
  assert_err(vs_acks_writer_add(&w, author, 7, 5, sig, swapped, 2), VS_ERR_INVAL); /* unsorted */
  assert_err(vs_acks_writer_finish(&w, &len), VS_OK);
  assert_int_equal(len, VS_MSG_ACKS_HEADER_BYTES + 2 * VS_ACK_HEADER_BYTES + 6 * VS_ACK_ENTRY_BYTES);
  uint32_t seen = 0;
  assert_err(vs_msg_acks_decode(buf, len, count_cb, &seen), VS_OK);
  assert_int_equal(seen, 2);
  /* Truncated, trailing, a wrong type: nothing called. */
  seen = 0;
  assert_err(vs_msg_acks_decode(buf, len - 1, count_cb, &seen), VS_ERR_TRUNCATED);
  uint8_t more[2048 + 1];
  memcpy(more, buf, len);
  more[len] = 0;
  assert_err(vs_msg_acks_decode(more, len + 1, count_cb, &seen), VS_ERR_TRAILING);
  more[0] = VS_MSG_VV;
  assert_err(vs_msg_acks_decode(more, len, count_cb, &seen), VS_ERR_MALFORMED);
  assert_int_equal(seen, 0);
  /* A full message refuses the next ack and stays valid. */
  uint8_t small[VS_MSG_ACKS_HEADER_BYTES + VS_ACK_HEADER_BYTES + 3 * VS_ACK_ENTRY_BYTES];
  assert_err(vs_acks_writer_init(&w, small, sizeof small), VS_OK);
  e[1].seq = 20;
  assert_err(vs_acks_writer_add(&w, author, 5, 5, sig, e, 3), VS_OK);
  assert_err(vs_acks_writer_add(&w, author, 6, 6, sig, e, 1), VS_ERR_BUFSIZE);
  assert_err(vs_acks_writer_finish(&w, &len), VS_OK);
  assert_err(vs_msg_acks_decode(small, len, count_cb, &seen), VS_OK);
  assert_int_equal(seen, 1);
}

/* A delta is what differs from the keyframe; the keyframe with the delta
 * applied is the full vector again. */
static void test_acks_diff_and_merge(void **state) {
  (void)state;
  vs_ack_entry key[3], full[3], d[4], back[4];
  memset(key, 0, sizeof key);
  memset(full, 0, sizeof full);
  for (int i = 0; i < 3; i++) key[i].origin[0] = (uint8_t)(1 + i); /* origins 1, 2, 3 */
  key[0].seq = 5, key[1].seq = 6, key[2].seq = 7;
  full[0] = key[0];               /* 1 unchanged */
  full[1] = key[2];               /* 2 gone */
  full[1].seq = 9;                /* 3 moved */
  full[2].origin[0] = 4;          /* 4 new */
  full[2].seq = 1;
  uint32_t dn = 0, bn = 0;
  assert_err(vs_acks_diff(key, 3, full, 3, d, 4, &dn), VS_OK);
  assert_int_equal(dn, 3);
  assert_int_equal(d[0].origin[0], 2);
  assert_int_equal(d[0].seq, 0);
  assert_int_equal(d[1].seq, 9);
  assert_int_equal(d[2].origin[0], 4);
  assert_err(vs_acks_diff(key, 3, full, 3, d, 2, &dn), VS_ERR_LIMIT);
  assert_err(vs_acks_merge(key, 3, d, 3, back, 4, &bn), VS_OK);
  assert_int_equal(bn, 3);
  for (uint32_t i = 0; i < bn; i++) {
    assert_memory_equal(back[i].origin, full[i].origin, VS_ORIGIN_BYTES);
    assert_int_equal(back[i].seq, full[i].seq);
  }
  assert_err(vs_acks_merge(key, 3, d, 3, back, 2, &bn), VS_ERR_LIMIT);
  /* The digest tag depends on author and hlc. */
  uint8_t a[VS_ORIGIN_BYTES] = {1}, b[VS_ORIGIN_BYTES] = {2};
  assert_true(vs_acks_tag(a, 1) != vs_acks_tag(a, 2));
  assert_true(vs_acks_tag(a, 1) != vs_acks_tag(b, 1));
  assert_true(vs_acks_tag(a, 1) == vs_acks_tag(a, 1));
}

/* ---- tests ---- */

static void test_three_members_cut_is_the_common_vector(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "acks-three");
  /* Before any ack, nothing is stable. */
  vs_acks_cut_info info;
  cut_check c = node_cut(&m, 0, &info);
  assert_int_equal(c.cut_sum, 0);
  for (uint32_t r = 0; r < 5; r++) {
    mh_write(&m, r % 3, "put", r == 0 ? "a" : r == 1 ? "b" : "c", "v");
    mh_run_for(&m, 700);
  }
  mh_run_for(&m, 20000);
  expect_all_stable(&m, 3);
  for (uint32_t i = 0; i < 3; i++) {
    vs_node_stats s = mn_stats(&m, i);
    assert_true(s.acks_made >= 1);
    assert_true(s.acks_received >= 2); /* the other two's, at least */
    assert_int_equal(s.acks_unusable, 0);
    assert_int_equal(s.rejected_ack_quota, 0);
    assert_true(s.stable_ops >= 5);
  }
  mh_free(&m);
}

/* Node 2 goes away: 0 and 1 write on; what 2 never acked is not stable. */
static void test_member_that_stops_acking_holds_the_cut(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "acks-hold");
  mh_write(&m, 0, "put", "x", "1");
  mh_run_for(&m, 20000);
  expect_all_stable(&m, 3);
  uint64_t held0 = mn_head(&m, 0, 0), held1 = mn_head(&m, 0, 1);
  mh_disconnect(&m, 2, 0);
  mh_disconnect(&m, 2, 1);
  mh_close(&m, 2);
  for (int k = 0; k < 4; k++) {
    mh_write(&m, 0, "put", "y", "2");
    mh_write(&m, 1, "put", "z", "3");
    mh_run_for(&m, 1500);
  }
  mh_run_for(&m, 20000);
  for (uint32_t i = 0; i < 2; i++) {
    assert_true(mn_head(&m, i, 0) > held0);
    assert_int_equal(cut_of(&m, i, 0), held0);
    assert_int_equal(cut_of(&m, i, 1), held1);
    vs_node_stats s = mn_stats(&m, i);
    assert_int_equal(s.stable_behind, (mn_head(&m, i, 0) - held0) + (mn_head(&m, i, 1) - held1));
  }
  /* 2 comes back: it catches up, acks, and the cut moves up. */
  mh_open(&m, 2, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 2, 1);
  mh_run_for(&m, 30000);
  expect_all_stable(&m, 3);
  mh_free(&m);
}

/* After the first keyframe, a small change is a delta: the stored record
 * of node 0's ack is a delta of a few entries on every node, and the
 * relayed delta verified there (same hlc everywhere). */
static void test_deltas_follow_the_keyframe(void **state) {
  (void)state;
  mh_mesh m;
  three(&m, "acks-delta");
  mh_run_for(&m, 10000);
  vs_ack_rec first;
  assert_true(rec_of(&m, 0, 0, &first));
  uint64_t key = first.key_hlc;
  vs_ack_rec_free(&first);
  for (int k = 0; k < 3; k++) {
    mh_write(&m, 0, "put", "d", "x");
    mh_run_for(&m, 3000);
  }
  mh_run_for(&m, 10000);
  vs_ack_rec own;
  assert_true(rec_of(&m, 0, 0, &own));
  assert_int_equal(own.key_hlc, key); /* no new keyframe */
  assert_true(own.hlc > own.key_hlc);
  assert_true(own.delta_n >= 1 && own.delta_n <= 3);
  for (uint32_t i = 1; i < 3; i++) {
    vs_ack_rec r;
    assert_true(rec_of(&m, i, 0, &r));
    assert_int_equal(r.hlc, own.hlc);
    assert_int_equal(r.key_hlc, own.key_hlc);
    assert_int_equal(r.delta_n, own.delta_n);
    vs_ack_rec_free(&r);
  }
  vs_ack_rec_free(&own);
  vs_node_stats s = mn_stats(&m, 0);
  assert_true(s.acks_made >= 4);
  expect_all_stable(&m, 3);
  mh_free(&m);
}

/* ---- a lost ack, repaired by the re-tell ---- */

/* 1 - 0 - 2 in a line: 1 hears of 2's acks only through 0. 2 writes; once
 * 1 holds the write, everything 0 sends 1 is lost for a while: 2's ack of
 * it (and 0's), relayed then, reach 1 only when 0 tells it everything
 * again, because their digests stay different. (The write itself must
 * reach 1 first: an ack naming an op 1 lacks is held back, not lost, and
 * a run 1 lost is sent again on its own.) */
static void test_lost_ack_repaired_by_retell(void **state) {
  (void)state;
  mh_mesh m;
  mn_mesh(&m, 3, 3, NULL, "acks-retell", 0xb1, 23, NULL);
  mn_drop d = {0, 1, false, 0}; /* everything node 0 sends node 1 is lost while dropping */
  m.ctx = &d;
  m.intercept = mn_drop_link;
  mh_connect(&m, 0, 1);
  mh_connect(&m, 0, 2);
  mh_run_for(&m, 15000);
  expect_all_stable(&m, 3);
  uint64_t before = mn_head(&m, 1, 2);
  mh_write(&m, 2, "put", "late", "x");
  for (uint32_t i = 0; i < 1000 && mn_head(&m, 1, 2) == before; i++) mh_run_for(&m, 1); /* bounded: 1 s */
  assert_true(mn_head(&m, 1, 2) > before);
  d.dropping = true;
  mh_run_for(&m, 3000);
  d.dropping = false;
  assert_true(d.dropped > 0);
  vs_ack_rec at0, at2;
  assert_true(rec_of(&m, 2, 2, &at2));
  assert_true(rec_of(&m, 0, 2, &at0));
  assert_int_equal(at0.hlc, at2.hlc); /* 0 holds 2's last ack; 1 does not yet */
  vs_ack_rec_free(&at0);
  vs_ack_rec at1;
  assert_true(rec_of(&m, 1, 2, &at1));
  assert_true(at1.hlc < at2.hlc);
  vs_ack_rec_free(&at1);
  mh_run_for(&m, 60000);
  assert_true(rec_of(&m, 1, 2, &at1));
  assert_int_equal(at1.hlc, at2.hlc);
  vs_ack_rec_free(&at1);
  vs_ack_rec_free(&at2);
  assert_true(mn_stats(&m, 0).acks_retold >= 1);
  expect_all_stable(&m, 3);
  mh_free(&m);
}

/* ---- a keyframe missing: asked for again ---- */

/* 1 - 0 - 2 in a line. Node 1 loses node 2's ack record (as a keyframe
 * lost on the way, or a rebase, leaves it) while 2 keeps writing: 2's new
 * acks reach 1 as deltas against a keyframe it does not hold, which it
 * cannot check. Its next vector asks 0 to tell it every ack again
 * (ACKS_DIGEST_FORGET), so it stores 2's ack while the writes go on; before,
 * only the re-tell of two digests at rest repaired it, after the writes. */
static void test_missing_keyframe_asked_again(void **state) {
  (void)state;
  mh_mesh m;
  mn_mesh(&m, 3, 3, NULL, "acks-forget", 0xb5, 27, NULL);
  mh_connect(&m, 0, 1);
  mh_connect(&m, 0, 2);
  mh_run_for(&m, 15000);
  expect_all_stable(&m, 3);
  MDB_txn *txn;
  assert_err(vs_txn_begin(mn_store(&m, 1), true, &txn), VS_OK);
  assert_err(vs_acks_del_txn(txn, mn_store(&m, 1), m.ids[2].pk), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  vs_ack_rec r;
  assert_false(rec_of(&m, 1, 2, &r));
  uint64_t retold = mn_stats(&m, 0).acks_retold;
  for (uint32_t k = 0; k < 40; k++) { /* 2 writes every 250 ms for 10 s: the digests never rest */
    char v[16];
    snprintf(v, sizeof v, "%u", k);
    mh_write(&m, 2, "put", "busy", v);
    mh_run_for(&m, 250);
  }
  assert_true(rec_of(&m, 1, 2, &r)); /* while 2 writes on */
  vs_ack_rec_free(&r);
  assert_true(mn_stats(&m, 1).acks_forgets >= 1); /* it asked */
  assert_true(mn_stats(&m, 0).acks_retold > retold);
  mh_run_for(&m, 5000);
  expect_all_stable(&m, 3);
  mh_free(&m);
}

/* An open mesh makes no acks and has no cut. */
static void test_open_mesh_no_acks(void **state) {
  (void)state;
  mh_mesh m;
  mh_init(&m, 2, "acks-open", 0xc1, 5);
  mh_connect(&m, 0, 1);
  mh_write(&m, 0, "put", "o", "1");
  mh_run_for(&m, 10000);
  mh_expect_converged(&m, 0, 1);
  vs_acks_cut_info info;
  cut_check c = node_cut(&m, 0, &info);
  assert_int_equal(c.origins, 1);
  assert_int_equal(c.cut_sum, 0);
  assert_int_equal(info.members, 0);
  vs_node_stats s = mn_stats(&m, 0);
  assert_int_equal(s.acks_made, 0);
  assert_int_equal(s.acks_sent, 0);
  assert_int_equal(s.stable_ops, 0);
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acks_codec),
      cmocka_unit_test(test_acks_diff_and_merge),
      cmocka_unit_test(test_three_members_cut_is_the_common_vector),
      cmocka_unit_test(test_member_that_stops_acking_holds_the_cut),
      cmocka_unit_test(test_deltas_follow_the_keyframe),
      cmocka_unit_test(test_lost_ack_repaired_by_retell),
      cmocka_unit_test(test_missing_keyframe_asked_again),
      cmocka_unit_test(test_open_mesh_no_acks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
