/* The membership gate of a managed mesh (src/mgate.h, docs/membership.md
 * "The gate"), driven through the public calls (vixsync/mesh.h) and runs
 * applied as a peer's are (vs_apply_run): who may write, what a revoke
 * voids, what a non-member or a hostile member can make a store keep. */
#include "apply_nodes.h"

#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "vixsync/mesh.h"

#define NOW (T0_MS + 1000000ull)
#define DAY_MS (24ull * 3600ull * 1000ull)

static const uint8_t MESH_KEY[VS_MESH_KEY_BYTES] = {7, 7, 7};

static void invite_token(node *admin, uint8_t role, uint8_t seed_byte, uint64_t now, char *tok, size_t *tok_chars) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, seed_byte, sizeof seed);
  vs_mesh_invite_req req = {role, now + DAY_MS, seed, MESH_KEY, NULL, 0};
  assert_err(vs_mesh_invite(admin->store, &req, now, tok, VS_MESH_TOKEN_LINE_MAX + 1, tok_chars), VS_OK);
}

/* `dev` joins with a fresh invite of `admin`. */
static void join(node *admin, node *dev, uint8_t role, uint8_t seed_byte, uint64_t now) {
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t n = 0;
  invite_token(admin, role, seed_byte, now, tok, &n);
  vs_mesh_joined j;
  assert_err(vs_mesh_join(dev->store, tok, n, now + 1, &j), VS_OK);
  assert_memory_equal(j.mesh_key, MESH_KEY, VS_MESH_KEY_BYTES);
  assert_memory_equal(j.inviter, admin->id.pk, VS_ORIGIN_BYTES);
}

/* Every run of `origin` src holds, applied to dst: the first error other
 * than VS_OK (VS_OK when all applied). */
static vs_err send_origin(node *src, node *dst, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now) {
  oplist *l = collect(src->store, origin);
  run runs[RUNS_MAX];
  uint32_t n = cut_runs(src->store, l, runs, RUNS_MAX);
  vs_err err = VS_OK;
  for (uint32_t i = 0; i < n && err == VS_OK; i++) {
    vs_apply_result res;
    err = apply_run(dst, l, &runs[i], now, &res);
  }
  oplist_free(l);
  return err;
}

static uint64_t head_of(node *n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t seq = 0;
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_wal_head(n->store, origin, &seq, h, NULL), VS_OK);
  return seq;
}

static uint32_t member_count(node *n) {
  uint32_t count = 0;
  assert_err(vs_mesh_members(n->store, NULL, 0, &count), VS_OK);
  return count;
}

static void put(node *n, const char *target, const char *value, uint64_t now, vs_err want) {
  vs_write_req r = req_of("put", target, value);
  vs_write_result res;
  assert_err(vs_write(n->store, n->id.pk, &r, now, &res), want);
}

static vs_err seen_cb(const vs_state_entry *e, void *ctx) {
  (void)e;
  *(bool *)ctx = true;
  return VS_OK;
}

static bool has_value(node *n, const char *target) {
  bool seen = false;
  vs_err err = vs_state_get(n->store, (const uint8_t *)target, (uint32_t)strlen(target), false, seen_cb, &seen);
  assert_true(err == VS_OK || err == VS_ERR_NOTFOUND);
  return seen;
}

/* A creates, B joins; their chains meet both ways: two members on both,
 * B's data on A. A non-member's runs store nothing. */
static void test_gate_create_join_and_outsider(void **state) {
  (void)state;
  node a, b, c;
  node_open(&a, "gate-a", 1);
  node_open(&b, "gate-b", 2);
  node_open(&c, "gate-c", 3);
  uint8_t mesh_id[VS_MESH_ID_BYTES], got[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_id(a.store, got), VS_ERR_NOTFOUND);
  assert_err(vs_mesh_create(a.store, NOW, mesh_id), VS_OK);
  assert_err(vs_mesh_create(a.store, NOW, mesh_id), VS_ERR_EXISTS);
  assert_err(vs_mesh_id(a.store, got), VS_OK);
  assert_memory_equal(got, mesh_id, VS_MESH_ID_BYTES);
  assert_int_equal(member_count(&a), 1);
  join(&a, &b, VS_MESH_WRITER, 0x51, NOW + 10);
  put(&b, "b1", "x", NOW + 20, VS_OK); /* before its admission reached it: it writes */
  /* B's chain before A's reaches A: A holds the invite, B is admitted. */
  assert_err(send_origin(&b, &a, b.id.pk, NOW + 30), VS_OK);
  assert_int_equal(head_of(&a, b.id.pk), 2);
  assert_true(has_value(&a, "b1"));
  assert_int_equal(member_count(&a), 2);
  /* B lacks A's chain: B's gate admits the genesis author, then the invite. */
  assert_int_equal(member_count(&b), 0);
  assert_err(send_origin(&a, &b, a.id.pk, NOW + 40), VS_OK);
  assert_int_equal(member_count(&b), 2);
  vs_mesh_member_info m[4];
  uint32_t count = 0;
  assert_err(vs_mesh_members(b.store, m, 4, &count), VS_OK);
  assert_int_equal(count, 2);
  for (uint32_t i = 0; i < count; i++) {
    bool is_a = memcmp(m[i].pk, a.id.pk, VS_ORIGIN_BYTES) == 0;
    assert_int_equal(m[i].role, is_a ? VS_MESH_ADMIN : VS_MESH_WRITER);
    assert_int_equal(m[i].depth, is_a ? 0 : 1);
    assert_false(m[i].revoked);
  }
  /* C holds the mesh key but was never admitted: its runs are refused
   * whole, nothing of them stored. */
  put(&c, "c1", "x", NOW + 50, VS_OK);
  uint64_t lsn_before = last_lsn(a.store);
  assert_err(send_origin(&c, &a, c.id.pk, NOW + 60), VS_ERR_NOT_MEMBER);
  assert_int_equal(head_of(&a, c.id.pk), 0);
  assert_int_equal(last_lsn(a.store), lsn_before);
  assert_false(has_value(&a, "c1"));
  node_close(&a);
  node_close(&b);
  node_close(&c);
}

/* A revoke cuts: ops up to the cut stay, later ones are refused, and ones
 * already held past the cut are voided where the revoke arrives. */
static void test_gate_revoke_cut(void **state) {
  (void)state;
  node a, b, w;
  node_open(&a, "cut-a", 1);
  node_open(&b, "cut-b", 2);
  node_open(&w, "cut-w", 4); /* a witness: a third member */
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(a.store, NOW, mesh_id), VS_OK);
  join(&a, &b, VS_MESH_WRITER, 0x51, NOW + 10);
  join(&a, &w, VS_MESH_WRITER, 0x52, NOW + 11);
  assert_err(send_origin(&a, &w, a.id.pk, NOW + 20), VS_OK);
  put(&b, "b-before", "x", NOW + 30, VS_OK);
  assert_err(send_origin(&b, &a, b.id.pk, NOW + 40), VS_OK); /* A holds B's 1..2 */
  put(&b, "b-after", "y", NOW + 50, VS_OK);
  assert_err(send_origin(&b, &w, b.id.pk, NOW + 60), VS_OK); /* W holds B's 1..3 */
  assert_true(has_value(&w, "b-after"));
  uint64_t cut = 99;
  assert_err(vs_mesh_revoke(a.store, b.id.pk, NOW + 70, &cut), VS_OK);
  assert_int_equal(cut, 2);
  assert_err(vs_mesh_revoke(a.store, b.id.pk, NOW + 71, &cut), VS_ERR_EXISTS);
  /* B's op 3 reaches A after the revoke: refused, past the cut. */
  assert_err(send_origin(&b, &a, b.id.pk, NOW + 80), VS_ERR_REVOKED);
  assert_int_equal(head_of(&a, b.id.pk), 2);
  assert_false(has_value(&a, "b-after"));
  assert_true(has_value(&a, "b-before"));
  /* The revoke reaches W, which held op 3: voided there, the state refolded. */
  assert_err(send_origin(&a, &w, a.id.pk, NOW + 90), VS_OK);
  assert_int_equal(head_of(&w, b.id.pk), 2);
  assert_false(has_value(&w, "b-after"));
  assert_true(has_value(&w, "b-before"));
  vs_mesh_member_info m[4];
  uint32_t count = 0;
  assert_err(vs_mesh_members(w.store, m, 4, &count), VS_OK);
  assert_int_equal(count, 3);
  for (uint32_t i = 0; i < count; i++) {
    bool is_b = memcmp(m[i].pk, b.id.pk, VS_ORIGIN_BYTES) == 0;
    assert_int_equal(m[i].revoked, is_b);
    if (is_b) assert_int_equal(m[i].cut_seq, 2);
  }
  /* W relays B's chain up to the cut (its last op's signature was on op 3,
   * dropped: the revoke carries B's own signature of op 2) to a newcomer who holds A's. */
  node n;
  node_open(&n, "cut-n", 5);
  join(&a, &n, VS_MESH_READER, 0x53, NOW + 100);
  assert_err(send_origin(&a, &n, a.id.pk, NOW + 110), VS_OK);
  assert_err(send_origin(&w, &n, b.id.pk, NOW + 120), VS_OK);
  assert_int_equal(head_of(&n, b.id.pk), 2);
  assert_true(has_value(&n, "b-before"));
  /* B itself writes on, refused by its own store once it holds the revoke. */
  assert_err(send_origin(&a, &b, a.id.pk, NOW + 130), VS_OK);
  put(&b, "b-late", "z", NOW + 140, VS_ERR_REVOKED);
  /* The reader writes nothing; the writer invites nobody. */
  assert_err(send_origin(&n, &a, n.id.pk, NOW + 150), VS_OK);
  assert_err(send_origin(&a, &n, a.id.pk, NOW + 151), VS_OK);
  put(&n, "n1", "x", NOW + 160, VS_ERR_DENIED);
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t tn = 0;
  uint8_t seed[VS_SEED_BYTES] = {9};
  vs_mesh_invite_req req = {VS_MESH_WRITER, NOW + DAY_MS, seed, MESH_KEY, NULL, 0};
  assert_err(vs_mesh_invite(w.store, &req, NOW + 170, tok, sizeof tok, &tn), VS_ERR_DENIED);
  assert_err(vs_mesh_revoke(w.store, a.id.pk, NOW + 171, NULL), VS_ERR_DENIED);
  /* A device that is no member: NOTFOUND, nothing written. */
  uint64_t head_a = head_of(&a, a.id.pk);
  node x;
  node_open(&x, "cut-x", 9);
  assert_err(vs_mesh_revoke(a.store, x.id.pk, NOW + 175, NULL), VS_ERR_NOTFOUND);
  assert_int_equal(head_of(&a, a.id.pk), head_a);
  node_close(&x);
  /* The last admin cannot be revoked, nor revoke itself. */
  assert_err(vs_mesh_revoke(a.store, a.id.pk, NOW + 180, NULL), VS_ERR_DENIED);
  node_close(&a);
  node_close(&b);
  node_close(&w);
  node_close(&n);
}

/* Five fresh nodes all[0..4] (tmp dirs "<tag>-g", "-a", "-b", "-o1",
 * "-o2"; identity salts 1 to 5): g creates the mesh and invites (invite
 * seed bytes seed_byte to seed_byte + 3) a, then b as admins (a, invited
 * first, is the senior), then two writers; g's, a's and b's chains reach
 * every other node. */
static void two_admins_mesh(node *all[5], const char *tag, uint8_t seed_byte) {
  static const char *const suffix[5] = {"g", "a", "b", "o1", "o2"};
  for (uint8_t i = 0; i < 5; i++) {
    char name[64];
    int len = snprintf(name, sizeof name, "%s-%s", tag, suffix[i]);
    assert_true(len > 0 && (size_t)len < sizeof name);
    node_open(all[i], name, (uint8_t)(i + 1));
  }
  node *g = all[0], *a = all[1], *b = all[2];
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(g->store, NOW, mesh_id), VS_OK);
  for (uint8_t i = 1; i < 5; i++)
    join(g, all[i], i <= 2 ? VS_MESH_ADMIN : VS_MESH_WRITER, (uint8_t)(seed_byte + i - 1), NOW + 10u * i);
  for (int i = 1; i < 5; i++) assert_err(send_origin(g, all[i], g->id.pk, NOW + 50), VS_OK);
  for (int i = 0; i < 5; i++) {
    if (all[i] != a) assert_err(send_origin(a, all[i], a->id.pk, NOW + 60), VS_OK);
    if (all[i] != b) assert_err(send_origin(b, all[i], b->id.pk, NOW + 60), VS_OK);
  }
}

/* A mutual revoke between two admins, partitioned (docs/membership.md's
 * example): observers that take the two revokes in either order end with
 * the same verdict (the senior's revoke wins). The junior's revoke lies
 * past its own cut where the senior's came first: it is kept apart (an
 * orphan record) so that the reducer sees it (review p1). */
static void test_gate_mutual_revoke_converges(void **state) {
  (void)state;
  node g, a, b, o1, o2;
  node *all[] = {&g, &a, &b, &o1, &o2};
  two_admins_mesh(all, "mut", 0x41);
  assert_err(vs_mesh_revoke(a.store, b.id.pk, NOW + 100, NULL), VS_OK);
  assert_err(vs_mesh_revoke(b.store, a.id.pk, NOW + 100, NULL), VS_OK);
  (void)send_origin(&a, &o1, a.id.pk, NOW + 200);
  (void)send_origin(&b, &o1, b.id.pk, NOW + 200); /* past B's cut at o1: kept apart */
  (void)send_origin(&b, &o2, b.id.pk, NOW + 200);
  (void)send_origin(&a, &o2, a.id.pk, NOW + 200); /* lifts A's cut at o2 */
  (void)send_origin(&a, &o2, a.id.pk, NOW + 300); /* anti-entropy offers A's chain again */
  node *obs[] = {&o1, &o2};
  for (int k = 0; k < 2; k++) {
    vs_mesh_member_info m[8];
    uint32_t count = 0;
    assert_err(vs_mesh_members(obs[k]->store, m, 8, &count), VS_OK);
    assert_int_equal(count, 4); /* G, A, B and itself: the observers' chains never met */
    for (uint32_t i = 0; i < count; i++) {
      bool is_b = memcmp(m[i].pk, b.id.pk, VS_ORIGIN_BYTES) == 0;
      assert_int_equal(m[i].revoked, is_b);
    }
  }
  assert_int_equal(head_of(&o1, a.id.pk), head_of(&o2, a.id.pk));
  assert_int_equal(head_of(&o1, b.id.pk), head_of(&o2, b.id.pk));
  uint8_t h1[VS_HASH_BYTES], h2[VS_HASH_BYTES];
  state_hash(o1.store, h1);
  state_hash(o2.store, h2);
  assert_memory_equal(h1, h2, VS_HASH_BYTES);
  for (int i = 0; i < 5; i++) node_close(all[i]);
}

typedef struct ids {
  vs_op_id id[64];
  uint32_t n;
  bool over;
} ids;

static vs_err ids_cb(const vs_wal_record *rec, void *ctx) {
  ids *l = ctx;
  if (l->n == 64) l->over = true;
  else l->id[l->n++] = rec->op.id;
  return VS_OK;
}

/* How many records of n's log hold one op id that another record holds. */
static uint32_t log_dups(node *n) {
  ids l;
  memset(&l, 0, sizeof l);
  assert_err(vs_wal_replay(n->store, 1, ids_cb, &l), VS_OK);
  assert_false(l.over);
  uint32_t dups = 0;
  for (uint32_t i = 0; i < l.n; i++)
    for (uint32_t j = i + 1; j < l.n; j++) dups += memcmp(l.id[i].bytes, l.id[j].bytes, VS_OP_ID_BYTES) == 0;
  return dups;
}

/* A cut lifted again (vix-sim, mutual-revoke swarm seed 10: "G4: node 4
 * stores operation ... twice"). o takes A's data ops and an invite past
 * the cut that B's revoke then gives A; A, senior, revokes B, which lifts
 * that cut, and A's ops come back to o. Each is stored once (the void
 * deleted the data ops' records; the invite's record, kept for the
 * reducer, goes when the op is taken again), and o ends as t, which never
 * saw the cut. */
static void test_gate_lifted_cut_stores_once(void **state) {
  (void)state;
  node g, a, b, o, t;
  node *all[] = {&g, &a, &b, &o, &t};
  two_admins_mesh(all, "lift", 0x51);
  uint64_t a_joined = head_of(&o, a.id.pk);
  assert_err(vs_mesh_revoke(b.store, a.id.pk, NOW + 100, NULL), VS_OK); /* cuts A at its admission */
  put(&a, "lift/x1", "1", NOW + 110, VS_OK);
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t tok_n = 0;
  invite_token(&a, VS_MESH_WRITER, 0x55, NOW + 111, tok, &tok_n); /* a membership op past the cut */
  put(&a, "lift/x2", "2", NOW + 112, VS_OK);
  assert_err(send_origin(&a, &o, a.id.pk, NOW + 113), VS_OK); /* o holds them, then the cut comes */
  assert_int_equal(head_of(&o, a.id.pk), a_joined + 3);
  assert_err(send_origin(&b, &o, b.id.pk, NOW + 114), VS_OK);
  assert_true(head_of(&o, a.id.pk) <= a_joined); /* void past the cut (B's revoke cuts at or below it) */
  assert_false(has_value(&o, "lift/x1"));
  assert_err(vs_mesh_revoke(a.store, b.id.pk, NOW + 120, NULL), VS_OK); /* the senior's revoke lifts it */
  /* A's chain past the cut as one run (the revoke signs it): it links to
   * what o holds, so its revoke is kept for the reducer (mgate.c,
   * run_links) and lifts the cut; then anti-entropy sends the chain again. */
  uint64_t cut = head_of(&o, a.id.pk);
  oplist *l = collect(a.store, a.id.pk);
  run r;
  r.first = (uint32_t)cut;
  r.count = (uint32_t)(l->count - cut);
  assert_err(vs_apply_sig_get(a.store, &l->ops[l->count - 1].id, r.sig), VS_OK);
  vs_apply_result res;
  (void)apply_run(&o, l, &r, NOW + 200, &res);
  oplist_free(l);
  assert_err(send_origin(&a, &o, a.id.pk, NOW + 300), VS_OK);
  assert_err(send_origin(&a, &t, a.id.pk, NOW + 300), VS_OK);
  (void)send_origin(&b, &t, b.id.pk, NOW + 300);
  assert_int_equal(head_of(&o, a.id.pk), head_of(&a, a.id.pk));
  assert_true(has_value(&o, "lift/x1"));
  assert_true(has_value(&o, "lift/x2"));
  assert_int_equal(log_dups(&o), 0);
  assert_int_equal(log_dups(&t), 0);
  uint8_t ho[VS_HASH_BYTES], ht[VS_HASH_BYTES];
  state_hash(o.store, ho);
  state_hash(t.store, ht);
  assert_memory_equal(ho, ht, VS_HASH_BYTES);
  for (int i = 0; i < 5; i++) node_close(all[i]);
}

/* A reader that wrote before its admission reached it: its run [admit,
 * data] admits it and keeps the data op without effect (review p7); a
 * writer's invite stays in its chain without effect (review p3). Every
 * node keeps the same chain and the same state. */
static void test_gate_inert_ops(void **state) {
  (void)state;
  node g, r, w, o;
  node_open(&g, "inert-g", 1);
  node_open(&r, "inert-r", 2);
  node_open(&w, "inert-w", 3);
  node_open(&o, "inert-o", 4);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(g.store, NOW, mesh_id), VS_OK);
  join(&g, &r, VS_MESH_READER, 0x31, NOW + 10);
  join(&g, &w, VS_MESH_WRITER, 0x32, NOW + 11);
  join(&g, &o, VS_MESH_WRITER, 0x33, NOW + 12);
  put(&r, "from-reader", "x", NOW + 20, VS_OK); /* its role is not known to it yet */
  assert_err(send_origin(&r, &g, r.id.pk, NOW + 30), VS_OK);
  assert_int_equal(head_of(&g, r.id.pk), 2);
  assert_false(has_value(&g, "from-reader"));
  assert_err(send_origin(&g, &o, g.id.pk, NOW + 40), VS_OK);
  assert_err(send_origin(&r, &o, r.id.pk, NOW + 41), VS_OK);
  assert_false(has_value(&o, "from-reader"));
  /* The reader learns its role: its own write stops counting there too. */
  assert_err(send_origin(&g, &r, g.id.pk, NOW + 50), VS_OK);
  assert_false(has_value(&r, "from-reader"));
  /* A writer's invite (written by hand: the API refuses it) is held, no fact. */
  assert_err(send_origin(&g, &w, g.id.pk, NOW + 60), VS_OK);
  assert_err(send_origin(&w, &g, w.id.pk, NOW + 61), VS_OK);
  uint32_t members_before = member_count(&g);
  uint8_t seed[VS_SEED_BYTES] = {5};
  vs_identity inv;
  assert_err(vs_identity_from_seed(seed, &inv), VS_OK);
  vs_mesh_invite_pl in = {.role = VS_MESH_ADMIN, .expires_hlc = UINT64_MAX};
  memcpy(in.invite_pk, inv.pk, VS_ORIGIN_BYTES);
  uint8_t pl[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&in, pl);
  vs_op op;
  uint64_t seq = head_of(&w, w.id.pk);
  vs_op_id id;
  vs_op_id_derive(w.id.pk, seq, &id);
  uint8_t prev[VS_HASH_BYTES], h[VS_HASH_BYTES];
  assert_err(vs_wal_head(w.store, w.id.pk, &seq, prev, NULL), VS_OK);
  assert_err(vs_op_init(&op, w.id.pk, seq + 1, vs_hlc_make(NOW + 70, 0), prev, VS_MESH_KIND_INVITE,
                        (const uint8_t *)VS_MESH_TARGET, 4, pl, sizeof pl),
             VS_OK);
  assert_err(vs_op_hash(&op, h), VS_OK);
  uint8_t sig[VS_SIGNATURE_BYTES];
  vs_chain_sign(&w.id, op.seq, h, sig);
  vs_apply_result res;
  assert_err(vs_apply_run(g.store, &op, 1, sig, NOW + 80, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_OK);
  assert_int_equal(head_of(&g, w.id.pk), seq + 1);
  assert_int_equal(member_count(&g), members_before);
  vs_mesh_fact f;
  MDB_txn *txn;
  assert_err(vs_txn_begin(g.store, false, &txn), VS_OK);
  assert_err(vs_mesh_fact_get_txn(txn, g.store, w.id.pk, seq + 1, &f), VS_ERR_NOTFOUND);
  mdb_txn_abort(txn);
  node_close(&g);
  node_close(&r);
  node_close(&w);
  node_close(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gate_create_join_and_outsider),
      cmocka_unit_test(test_gate_revoke_cut),
      cmocka_unit_test(test_gate_mutual_revoke_converges),
      cmocka_unit_test(test_gate_lifted_cut_stores_once),
      cmocka_unit_test(test_gate_inert_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
