/* Rekey in the node (src/node_member.c, src/mgate_keys.c; docs/membership.md
 * "Rekey"): real vs_nodes on the in-memory mesh (tests/mesh_harness.h).
 * A revoke makes an admin's node rotate the mesh key; the others open
 * their boxes and handshake on it; the revoked device holds no key of the
 * new epoch and is refused on any key; a device that was offline comes
 * back on its old key (an active member), as initiator or as responder,
 * and gets the new one; past the grace an older key admits no device that
 * is not a member yet; concurrent revokes by two admins end in one epoch
 * that excludes both. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "fixture.h"
#include "mesh_harness.h"
#include "member_nodes.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "write_int.h"
#include "vixsync/mesh.h"
#include "vixsync/node.h"
#include "vixsync/state.h"

#define GRACE_MS 60000u

static vs_store *st(mh_mesh *m, uint32_t i) { return mn_store(m, i); }
static vs_node_stats stats(mh_mesh *m, uint32_t i) { return mn_stats(m, i); }
static void join(mh_mesh *m, uint32_t admin, uint32_t dev, uint8_t role) { mn_join(m, admin, dev, role); }
static bool has(mh_mesh *m, uint32_t i, const char *target) { return mn_has(m, i, target); }

static void short_grace(mh_mesh *m, uint32_t i, vs_node_cfg *cfg) {
  (void)m;
  (void)i;
  cfg->rekey_grace_ms = GRACE_MS;
}

static vs_mesh_key_info key_of(mh_mesh *m, uint32_t i) {
  vs_mesh_key_info k;
  assert_err(vs_mesh_key(st(m, i), m->keys[i], &k), VS_OK);
  return k;
}

static bool same_key(mh_mesh *m, uint32_t a, uint32_t b) {
  vs_mesh_key_info x = key_of(m, a), y = key_of(m, b);
  return memcmp(x.key, y.key, VS_MESH_KEY_BYTES) == 0;
}

/* 0 (admin) creates; 1, 2 and 3 join; all connected through 0 and 1.
 * Nodes past 3 (n > 4) are left alone. */
static void four_of(mh_mesh *m, uint32_t n, const char *tag, uint8_t id_base) {
  mn_mesh(m, n, 4, NULL, tag, id_base, id_base, short_grace);
  mh_connect(m, 1, 0);
  mh_connect(m, 2, 0);
  mh_connect(m, 3, 0);
  mh_connect(m, 2, 1);
  mh_connect(m, 3, 1);
  mh_write(m, 2, "put", "before", "x");
  mh_run(m, 4000);
  assert_true(has(m, 0, "before") && has(m, 1, "before") && has(m, 3, "before"));
  assert_int_equal(key_of(m, 0).epoch, 0);
}

static void four(mh_mesh *m, const char *tag, uint8_t id_base) { four_of(m, 4, tag, id_base); }

/* Node i goes offline: its links drop, it closes (its store stays). */
static void offline(mh_mesh *m, uint32_t i) {
  for (uint32_t j = 0; j < m->n; j++) mh_disconnect(m, i, j);
  mh_close(m, i);
}

/* Drop every link and dial again: fresh handshakes. */
static void redial(mh_mesh *m, const uint32_t (*pairs)[2], uint32_t n) {
  for (uint32_t i = 0; i < m->n; i++)
    for (uint32_t j = 0; j < m->n; j++) mh_disconnect(m, i, j);
  for (uint32_t k = 0; k < n; k++) mh_connect(m, pairs[k][0], pairs[k][1]);
}

/* A revoke: 0's node rotates the key at once; 1 and 3 open their boxes and
 * sync on the new key; 2 holds no key of epoch 1 and is refused. */
static void test_rekey_after_revoke(void **state) {
  (void)state;
  mh_mesh m;
  four(&m, "rk-revoke", 0x31);
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 0).rekeys_issued, 1);
  for (uint32_t i = 0; i < 4; i++) {
    if (i == 2) continue;
    assert_int_equal(stats(&m, i).mesh_epoch, 1);
    assert_int_equal(stats(&m, i).key_epoch, 1);
    vs_mesh_key_info k = key_of(&m, i);
    assert_int_equal(k.epoch, 1);
    assert_int_equal(k.key_epoch, 1);
    assert_false(k.rekey_due);
  }
  assert_true(same_key(&m, 0, 1) && same_key(&m, 0, 3));
  /* The revoked device holds the epoch's rekey op (it was a member when it
   * was written, or it relays) or not: either way it cannot open it. */
  assert_false(same_key(&m, 0, 2));
  assert_int_equal(key_of(&m, 2).key_epoch, 0);
  /* Fresh handshakes: all on the new key, none stale; 2 is refused. */
  uint64_t stale = stats(&m, 1).handshakes_stale_key, revoked = stats(&m, 1).rejected_revoked;
  const uint32_t pairs[][2] = {{1, 0}, {3, 0}, {3, 1}, {2, 1}};
  redial(&m, pairs, 4);
  mh_write(&m, 3, "put", "on-new-key", "y");
  mh_write(&m, 2, "put", "from-revoked", "z");
  mh_run(&m, 4000);
  assert_true(has(&m, 0, "on-new-key") && has(&m, 1, "on-new-key"));
  assert_false(has(&m, 1, "from-revoked"));
  assert_int_equal(stats(&m, 1).handshakes_stale_key, stale + 1); /* 2's, on the only key it holds */
  assert_true(stats(&m, 1).rejected_revoked > revoked);
  assert_int_equal(vs_node_peers_ready(m.nodes[2]), 0);
  mh_free(&m);
}

/* 3 is offline through the revoke and rekey and past the grace: it dials 1
 * on its old key, 1 takes it (an active member), 3 gets the rekey and
 * holds the new key; its next handshake is on the new key. */
static void test_rekey_offline_initiator_catches_up(void **state) {
  (void)state;
  mh_mesh m;
  four(&m, "rk-offline-i", 0x41);
  offline(&m, 3);
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 1).key_epoch, 1);
  mh_run_for(&m, 2u * GRACE_MS);
  mh_open(&m, 3, 0);
  assert_int_equal(key_of(&m, 3).key_epoch, 0);
  uint64_t stale = stats(&m, 1).handshakes_stale_key;
  mh_connect(&m, 3, 1);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 1).handshakes_stale_key, stale + 1);
  assert_int_equal(stats(&m, 1).rejected_stale_key, 0);
  assert_int_equal(stats(&m, 3).key_epoch, 1);
  assert_true(same_key(&m, 3, 1));
  /* Its next handshake is on the new key. */
  mh_disconnect(&m, 3, 1);
  mh_connect(&m, 3, 1);
  mh_write(&m, 3, "put", "back", "w");
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 1).handshakes_stale_key, stale + 1);
  assert_true(has(&m, 1, "back"));
  mh_free(&m);
}

/* 3 is offline through the rekey and only listens: 1 dials it on the new
 * key, which 3 cannot check (a stranger's HELLO: closed, nothing sent);
 * 1's next dial there tries the older key. */
static void test_rekey_offline_responder_catches_up(void **state) {
  (void)state;
  mh_mesh m;
  four(&m, "rk-offline-r", 0x51);
  offline(&m, 3);
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 4000);
  mh_run_for(&m, 2u * GRACE_MS);
  mh_open(&m, 3, 0);
  uint64_t done = stats(&m, 1).handshakes_done;
  mh_connect(&m, 1, 3);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 1).handshakes_done, done); /* 3 closed at the HELLO */
  assert_int_equal(vs_node_peers_ready(m.nodes[3]), 0);
  assert_int_equal(stats(&m, 3).rejected_auth, 1);
  mh_disconnect(&m, 1, 3);
  mh_connect(&m, 1, 3);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 3).key_epoch, 1);
  assert_true(stats(&m, 1).handshakes_stale_key >= 1);
  assert_true(same_key(&m, 3, 0));
  mh_free(&m);
}

/* An invite written before the rekey carries the old key. Past the grace,
 * a device that joins with it (offline since it joined, say) is on
 * probation on the old key: sent nothing of ours, it presents its own
 * admission, which makes it a member, and syncs (and gets the new key). An
 * outsider with the old key and no admission learns nothing (an empty
 * vector) and is closed at the end of its probation (rejected_stale_key).
 * An invite written after the rekey carries the new key. */
static void test_rekey_old_token_past_grace(void **state) {
  (void)state;
  mh_mesh m;
  mn_mesh(&m, 6, 3, NULL, "rk-token", 0x61, 0x61, short_grace);
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 0x43, sizeof seed);
  vs_mesh_invite_req req = {VS_MESH_WRITER, m.now_ms + MN_DAY_MS, seed, m.keys[0], NULL, 0};
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t tok_n = 0;
  assert_err(vs_mesh_invite(st(&m, 0), &req, m.now_ms, tok, sizeof tok, &tok_n), VS_OK);
  vs_mesh_joined j;
  assert_err(vs_mesh_join(st(&m, 3), tok, tok_n, m.now_ms, &j), VS_OK); /* 3 joins, then is away */
  assert_memory_equal(j.mesh_key, m.keys[0], VS_MESH_KEY_BYTES);         /* the epoch-0 key */
  mh_connect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  mh_run(&m, 4000);
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 1).key_epoch, 1);
  mh_run_for(&m, 2u * GRACE_MS);
  /* The outsider: a store of its own, the old key, no admission. */
  mh_connect(&m, 5, 1);
  mh_run(&m, 200);
  assert_int_equal(mn_head(&m, 5, 0), 0);
  assert_int_equal(mn_head(&m, 5, 1), 0);
  mh_run_for(&m, 40000); /* past its probation */
  assert_int_equal(stats(&m, 1).rejected_stale_key, 1);
  assert_int_equal(vs_node_peers_ready(m.nodes[5]), 0);
  assert_int_equal(mn_head(&m, 5, 0), 0);
  /* 3 comes back: its admission takes on the old key. */
  mh_write(&m, 3, "put", "old-token", "u");
  mh_connect(&m, 3, 1);
  mh_run(&m, 6000);
  assert_true(has(&m, 1, "old-token"));
  /* A member without a box of epoch 1: 0 boxes it in epoch 2. */
  assert_int_equal(stats(&m, 0).mesh_epoch, 2);
  assert_int_equal(stats(&m, 3).key_epoch, 2);
  assert_true(same_key(&m, 3, 1) && same_key(&m, 3, 0));
  assert_int_equal(stats(&m, 1).rejected_stale_key, 1);
  /* A token of now carries epoch 2's key: 4 joins on it. */
  join(&m, 0, 4, VS_MESH_WRITER);
  assert_true(same_key(&m, 4, 1));
  mh_connect(&m, 4, 1);
  mh_write(&m, 4, "put", "new-device", "v");
  mh_run(&m, 6000);
  assert_true(has(&m, 1, "new-device"));
  assert_int_equal(stats(&m, 1).rejected_stale_key, 1);
  mh_free(&m);
}

/* Two admins revoke one member each while apart: each rotates the key
 * without the other's revoke. Together, the winner of epoch 1 still holds a
 * box of one revoked device, so a new epoch follows; the last excludes both. */
static void test_rekey_concurrent_revokes(void **state) {
  (void)state;
  mh_mesh m;
  const uint8_t roles[] = {VS_MESH_ADMIN, VS_MESH_ADMIN, VS_MESH_WRITER, VS_MESH_WRITER};
  mn_mesh(&m, 4, 4, roles, "rk-race", 0x71, 0x71, short_grace);
  mh_connect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 3, 1);
  mh_run(&m, 4000);
  mh_disconnect(&m, 1, 0); /* apart: {0, 2} and {1, 3} */
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[3].pk, m.now_ms, NULL), VS_OK);
  assert_err(vs_mesh_revoke(st(&m, 1), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 0).rekeys_issued, 1);
  assert_int_equal(stats(&m, 1).rekeys_issued, 1);
  assert_int_equal(stats(&m, 0).mesh_epoch, 1);
  /* Each side's epoch 1 has another key: 1's first dial is closed at the
   * HELLO, the next one tries epoch 0's key, which both still hold. */
  for (uint32_t tries = 0; tries < 3 && !m.link[1][0]; tries++) {
    mh_connect(&m, 1, 0);
    mh_run(&m, 8000);
  }
  vs_mesh_key_info k0 = key_of(&m, 0), k1 = key_of(&m, 1);
  assert_true(k0.epoch >= 2);
  assert_int_equal(k0.epoch, k1.epoch);
  assert_int_equal(k0.key_epoch, k0.epoch);
  assert_int_equal(k1.key_epoch, k1.epoch);
  assert_memory_equal(k0.key, k1.key, VS_MESH_KEY_BYTES);
  assert_false(k0.rekey_due);
  assert_false(same_key(&m, 0, 2));
  assert_false(same_key(&m, 0, 3));
  assert_true(key_of(&m, 2).key_epoch < k0.epoch);
  assert_true(key_of(&m, 3).key_epoch < k0.epoch);
  /* At most one more rekey each: the race settles. */
  assert_true(stats(&m, 0).rekeys_issued + stats(&m, 1).rekeys_issued <= 4);
  mh_free(&m);
}

/* A device that joins after a rekey holds the key its token carried but
 * no box: the admin's node boxes it in a new epoch, after a delay that
 * batches joins (its token may have carried an older key: an invite
 * written concurrently with the rekey). Revoked in turn, it cannot open
 * the epoch that follows. */
static void test_rekey_reboxes_late_joiner(void **state) {
  (void)state;
  mh_mesh m;
  four_of(&m, 5, "rk-late", 0x81);
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 4000);
  assert_int_equal(stats(&m, 0).mesh_epoch, 1);
  join(&m, 0, 4, VS_MESH_WRITER);
  assert_int_equal(key_of(&m, 4).key_epoch, 0); /* its token's key: epoch 1's, but no box */
  assert_true(same_key(&m, 4, 0));
  mh_connect(&m, 4, 0);
  mh_connect(&m, 4, 1);
  mh_write(&m, 4, "put", "late", "l");
  mh_run(&m, 6000);
  assert_true(has(&m, 1, "late"));
  assert_int_equal(stats(&m, 0).rekeys_issued, 2);
  assert_int_equal(stats(&m, 4).mesh_epoch, 2);
  assert_int_equal(stats(&m, 4).key_epoch, 2);
  assert_true(same_key(&m, 4, 1));
  assert_false(key_of(&m, 0).rekey_due);
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[4].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 6000);
  assert_int_equal(stats(&m, 0).rekeys_issued, 3);
  assert_int_equal(stats(&m, 1).key_epoch, 3);
  assert_int_equal(stats(&m, 3).key_epoch, 3);
  assert_false(same_key(&m, 4, 0));
  assert_true(key_of(&m, 4).key_epoch < 3);
  mh_free(&m);
}

/* A hostile admin writes a rekey that boxes the revoked device too (made
 * by hand: its own node would not). Every honest node takes it as the
 * epoch's winner, sees a revoked device named in it and an admin's node
 * answers with the next epoch: the revoked device holds no key of the
 * last one. */
static void test_rekey_hostile_admin_boxes_revoked(void **state) {
  (void)state;
  mh_mesh m;
  const uint8_t roles[] = {VS_MESH_ADMIN, VS_MESH_ADMIN, VS_MESH_WRITER, VS_MESH_WRITER};
  mn_mesh(&m, 4, 4, roles, "rk-hostile", 0x91, 0x91, short_grace);
  mh_connect(&m, 1, 0);
  mh_connect(&m, 2, 0);
  mh_connect(&m, 3, 0);
  mh_run(&m, 4000);
  assert_err(vs_mesh_revoke(st(&m, 0), m.ids[2].pk, m.now_ms, NULL), VS_OK);
  mh_run(&m, 4000);
  vs_mesh_key_info before = key_of(&m, 0);
  assert_true(before.epoch >= 1 && !before.rekey_due);
  /* 1 boxes a key it chose for everyone, 2 included, at the next epoch. */
  uint8_t mesh_id[VS_MESH_ID_BYTES], key[VS_MESH_KEY_BYTES], eph[32], pks[4][VS_ORIGIN_BYTES];
  assert_err(vs_mesh_id(st(&m, 1), mesh_id), VS_OK);
  memset(key, 0xee, sizeof key);
  memset(eph, 0xef, sizeof eph);
  for (uint32_t i = 0; i < 4; i++) memcpy(pks[i], m.ids[i].pk, VS_ORIGIN_BYTES);
  static uint8_t payload[VS_MESH_REKEY_BYTES_MAX];
  size_t bytes = 0;
  assert_err(vs_mesh_rekey_make(mesh_id, before.epoch + 1u, key, eph, (const uint8_t(*)[VS_ORIGIN_BYTES])pks, 4, payload,
                                sizeof payload, &bytes),
             VS_OK);
  write_ctx *c = NULL;
  vs_write_result res;
  uint8_t hash[VS_HASH_BYTES];
  assert_err(vs_write_sys_begin(st(&m, 1), m.now_ms, &c), VS_OK);
  assert_err(vs_write_sys_op(c, VS_MESH_KIND_REKEY, payload, (uint32_t)bytes, &res, hash), VS_OK);
  /* Its own store records it as vs_mesh_rekey would (mesh_api.c). */
  bool refolded = false;
  assert_err(vs_mesh_record_put_txn(vs_write_sys_txn(c), st(&m, 1), m.ids[1].pk, res.seq, hash, res.lsn), VS_OK);
  assert_err(vs_mesh_refresh_txn(vs_write_sys_txn(c), st(&m, 1), mesh_id, &refolded), VS_OK);
  assert_err(vs_write_sys_commit(c), VS_OK);
  uint64_t issued = mn_stats(&m, 0).rekeys_issued + mn_stats(&m, 1).rekeys_issued;
  mh_run(&m, 6000);
  vs_mesh_key_info after = key_of(&m, 0);
  assert_true(after.epoch >= before.epoch + 2u); /* the hostile epoch, then the answer */
  assert_false(after.rekey_due);
  assert_true(mn_stats(&m, 0).rekeys_issued + mn_stats(&m, 1).rekeys_issued > issued);
  assert_true(same_key(&m, 0, 3) && same_key(&m, 0, 1));
  assert_true(memcmp(after.key, key, VS_MESH_KEY_BYTES) != 0);
  /* 2 holds the hostile epoch's key (it was boxed), not the last one. */
  assert_false(same_key(&m, 0, 2));
  mh_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rekey_after_revoke),
      cmocka_unit_test(test_rekey_offline_initiator_catches_up),
      cmocka_unit_test(test_rekey_offline_responder_catches_up),
      cmocka_unit_test(test_rekey_old_token_past_grace),
      cmocka_unit_test(test_rekey_concurrent_revokes),
      cmocka_unit_test(test_rekey_reboxes_late_joiner),
      cmocka_unit_test(test_rekey_hostile_admin_boxes_revoked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
