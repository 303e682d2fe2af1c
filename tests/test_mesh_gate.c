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
   * dropped: the revoke vouches for op 2) to a newcomer who holds A's. */
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
  /* The last admin cannot be revoked, nor revoke itself. */
  assert_err(vs_mesh_revoke(a.store, a.id.pk, NOW + 180, NULL), VS_ERR_DENIED);
  node_close(&a);
  node_close(&b);
  node_close(&w);
  node_close(&n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gate_create_join_and_outsider),
      cmocka_unit_test(test_gate_revoke_cut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
