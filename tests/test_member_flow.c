/* The membership slice end to end, without a store: real ops made as the
 * CLI will make them (vs_op_init, the payload encoders, the invite token,
 * vs_mesh_admit_sign), read back with vs_mesh_fact_from_op and folded by
 * vs_mesh_reduce. test_member_op.c pins the codecs and test_member.c the
 * reducer's rules on hand-built facts; this file pins that the two halves
 * agree on real ops: the mesh id is the genesis op's hash, an admission made
 * from a token is a member, a token's admission moved to another device or
 * mesh is refused before the reducer sees it, and a revoke's cut decides
 * which of the device's ops stay valid. */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "member.h"
#include "vixsync/identity.h"
#include "vixsync/op.h"

/* One device's chain, as the write path would extend it. */
typedef struct chain {
  vs_identity id;
  uint64_t seq;
  uint8_t prev[VS_HASH_BYTES];
} chain;

static void chain_init(chain *c, uint8_t seed_byte) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, seed_byte, sizeof seed);
  assert_int_equal(vs_identity_from_seed(seed, &c->id), VS_OK);
  c->seq = 0;
  memset(c->prev, 0, sizeof c->prev);
}

/* Append an op of `kind` with `payload` at `hlc`; its fact (or the error
 * vs_mesh_fact_from_op gives) and hash. */
static vs_err chain_op(chain *c, uint64_t hlc, const char *kind, const uint8_t *payload, uint32_t payload_bytes,
                       vs_mesh_fact *fact_out, uint8_t hash_out[VS_HASH_BYTES]) {
  vs_op op;
  c->seq++;
  assert_int_equal(vs_op_init(&op, c->id.pk, c->seq, hlc, c->prev, kind, (const uint8_t *)VS_MESH_TARGET,
                              (uint32_t)strlen(VS_MESH_TARGET), payload, payload_bytes),
                   VS_OK);
  uint8_t hash[VS_HASH_BYTES];
  assert_int_equal(vs_op_hash(&op, hash), VS_OK);
  memcpy(c->prev, hash, sizeof hash);
  if (hash_out != NULL) memcpy(hash_out, hash, sizeof hash);
  return vs_mesh_fact_from_op(&op, hash, fact_out);
}

/* A data op: not a fact. */
static void chain_data(chain *c, uint64_t hlc) {
  vs_op op;
  c->seq++;
  assert_int_equal(vs_op_init(&op, c->id.pk, c->seq, hlc, c->prev, "put", (const uint8_t *)"k", 1,
                              (const uint8_t *)"v", 1),
                   VS_OK);
  uint8_t hash[VS_HASH_BYTES];
  assert_int_equal(vs_op_hash(&op, hash), VS_OK);
  memcpy(c->prev, hash, sizeof hash);
  vs_mesh_fact f;
  assert_int_equal(vs_mesh_fact_from_op(&op, hash, &f), VS_ERR_NOTFOUND);
}

typedef struct mesh {
  chain admin;
  uint8_t mesh_id[VS_HASH_BYTES];
  uint8_t mesh_key[VS_MESH_KEY_BYTES];
  vs_mesh_fact facts[16];
  uint32_t n;
} mesh;

static void mesh_create(mesh *m) {
  memset(m, 0, sizeof *m);
  chain_init(&m->admin, 0x11);
  memset(m->mesh_key, 0x5a, sizeof m->mesh_key);
  uint8_t p[VS_MESH_CREATE_BYTES];
  vs_mesh_create_encode(p);
  assert_int_equal(chain_op(&m->admin, vs_hlc_make(1000, 0), VS_MESH_KIND_CREATE, p, sizeof p, &m->facts[m->n],
                            m->mesh_id),
                   VS_OK);
  m->n++;
}

/* The admin invites (role, expiry) and prints a token line. */
static void mesh_invite(mesh *m, uint8_t role, uint64_t hlc, uint64_t expires_hlc, uint8_t secret_byte, char *line,
                        size_t line_max) {
  vs_mesh_token t;
  memset(&t, 0, sizeof t);
  memset(t.invite_seed, secret_byte, sizeof t.invite_seed);
  vs_identity inv;
  assert_int_equal(vs_identity_from_seed(t.invite_seed, &inv), VS_OK);
  vs_mesh_invite_pl in = {.role = role, .expires_hlc = expires_hlc};
  memcpy(in.invite_pk, inv.pk, sizeof in.invite_pk);
  uint8_t p[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&in, p);
  assert_int_equal(chain_op(&m->admin, hlc, VS_MESH_KIND_INVITE, p, sizeof p, &m->facts[m->n], NULL), VS_OK);
  m->n++;
  memcpy(t.mesh_id, m->mesh_id, sizeof t.mesh_id);
  memcpy(t.inviter, m->admin.id.pk, sizeof t.inviter);
  t.invite_seq = m->admin.seq;
  memcpy(t.mesh_key, m->mesh_key, sizeof t.mesh_key);
  t.addr_count = 1;
  strcpy(t.addrs[0], "127.0.0.1:7400");
  size_t chars = 0;
  assert_int_equal(vs_mesh_token_encode(&t, line, line_max, &chars), VS_OK);
  assert_int_equal(strlen(line), chars);
}

/* A new device joins with the token: its chain opens with the admission.
 * `as` (may be NULL): sign the admission for this key instead (a token's
 * admission moved to another device). */
static vs_err device_join(chain *dev, uint8_t seed_byte, const char *line, uint64_t hlc, const uint8_t *as,
                          vs_mesh_fact *fact_out) {
  vs_mesh_token t;
  assert_int_equal(vs_mesh_token_decode(line, strlen(line), &t), VS_OK);
  chain_init(dev, seed_byte);
  vs_identity inv;
  assert_int_equal(vs_identity_from_seed(t.invite_seed, &inv), VS_OK);
  vs_mesh_admit_pl a;
  memcpy(a.mesh_id, t.mesh_id, sizeof a.mesh_id);
  memcpy(a.inviter, t.inviter, sizeof a.inviter);
  a.invite_seq = t.invite_seq;
  memcpy(a.invite_pk, inv.pk, sizeof a.invite_pk);
  assert_int_equal(vs_mesh_admit_sign(&a, &inv, as != NULL ? as : dev->id.pk), VS_OK);
  uint8_t p[VS_MESH_ADMIT_BYTES];
  vs_mesh_admit_encode(&a, p);
  return chain_op(dev, hlc, VS_MESH_KIND_ADMIT, p, sizeof p, fact_out, NULL);
}

static vs_mesh_view *reduce(const mesh *m) {
  vs_mesh_view *v = malloc(sizeof *v);
  assert_non_null(v);
  assert_int_equal(vs_mesh_reduce(m->mesh_id, m->facts, m->n, v), VS_OK);
  return v;
}

static void test_member_flow_genesis_invite_join(void **state) {
  (void)state;
  mesh m;
  mesh_create(&m);
  char line[VS_MESH_TOKEN_CHARS_MAX + 1];
  mesh_invite(&m, VS_MESH_WRITER, vs_hlc_make(2000, 0), vs_hlc_make(2000 + 86400000, 0), 0x77, line, sizeof line);
  chain dev;
  assert_int_equal(device_join(&dev, 0x22, line, vs_hlc_make(5000, 0), NULL, &m.facts[m.n]), VS_OK);
  m.n++;
  chain_data(&dev, vs_hlc_make(6000, 0)); /* its seq 2 */

  vs_mesh_view *v = reduce(&m);
  assert_true(v->has_genesis);
  assert_int_equal(v->count, 2);
  const vs_mesh_member *a = vs_mesh_find(v, m.admin.id.pk), *d = vs_mesh_find(v, dev.id.pk);
  assert_non_null(a);
  assert_non_null(d);
  assert_int_equal(a->role, VS_MESH_ADMIN);
  assert_int_equal(a->depth, 0);
  assert_int_equal(d->role, VS_MESH_WRITER);
  assert_int_equal(d->depth, 1);
  assert_memory_equal(d->inviter, m.admin.id.pk, VS_ORIGIN_BYTES);
  assert_int_equal(d->invite_seq, 2);
  assert_true(vs_mesh_active(v, dev.id.pk));
  assert_true(vs_mesh_op_valid(v, dev.id.pk, 2, true));
  /* A device nobody admitted writes nothing. */
  chain stranger;
  chain_init(&stranger, 0x33);
  assert_false(vs_mesh_op_valid(v, stranger.id.pk, 1, true));
  assert_false(vs_mesh_active(v, stranger.id.pk));

  /* The same set in reverse order: the same view. */
  mesh r = m;
  for (uint32_t i = 0; i < m.n; i++) r.facts[i] = m.facts[m.n - 1 - i];
  vs_mesh_view *w = reduce(&r);
  assert_memory_equal(v->digest, w->digest, VS_HASH_BYTES);
  free(w);
  free(v);
}

static void test_member_flow_token_cannot_be_moved(void **state) {
  (void)state;
  mesh m;
  mesh_create(&m);
  char line[VS_MESH_TOKEN_CHARS_MAX + 1];
  mesh_invite(&m, VS_MESH_WRITER, vs_hlc_make(2000, 0), vs_hlc_make(999999, 0), 0x77, line, sizeof line);
  /* A thief signs the admission for the honest device's key but puts it in
   * its own chain: the op's origin is not the signed device. */
  chain honest, thief;
  chain_init(&honest, 0x44);
  vs_mesh_fact f;
  assert_int_equal(device_join(&thief, 0x55, line, vs_hlc_make(3000, 0), honest.id.pk, &f), VS_ERR_AUTH);

  /* A token of another mesh: the admission names the other mesh's id and is
   * no member here. */
  mesh other;
  mesh_create(&other);
  other.admin.seq = 0;
  chain_init(&other.admin, 0x12);
  other.n = 0;
  uint8_t p[VS_MESH_CREATE_BYTES];
  vs_mesh_create_encode(p);
  assert_int_equal(chain_op(&other.admin, vs_hlc_make(1000, 0), VS_MESH_KIND_CREATE, p, sizeof p,
                            &other.facts[other.n], other.mesh_id),
                   VS_OK);
  other.n++;
  char other_line[VS_MESH_TOKEN_CHARS_MAX + 1];
  mesh_invite(&other, VS_MESH_WRITER, vs_hlc_make(2000, 0), vs_hlc_make(999999, 0), 0x78, other_line,
              sizeof other_line);
  chain dev;
  assert_int_equal(device_join(&dev, 0x66, other_line, vs_hlc_make(3000, 0), NULL, &m.facts[m.n]), VS_OK);
  m.n++;
  vs_mesh_view *v = reduce(&m);
  assert_null(vs_mesh_find(v, dev.id.pk));
  assert_int_equal(v->count, 1);
  free(v);
}

static void test_member_flow_expired_and_double_used(void **state) {
  (void)state;
  mesh m;
  mesh_create(&m);
  char line[VS_MESH_TOKEN_CHARS_MAX + 1];
  mesh_invite(&m, VS_MESH_READER, vs_hlc_make(2000, 0), vs_hlc_make(10000, 0), 0x77, line, sizeof line);
  chain late, first, second;
  /* Judged by the admit's HLC: one past the expiry is void. */
  assert_int_equal(device_join(&late, 0x21, line, vs_hlc_make(10001, 0), NULL, &m.facts[m.n]), VS_OK);
  m.n++;
  assert_int_equal(device_join(&first, 0x22, line, vs_hlc_make(4000, 0), NULL, &m.facts[m.n]), VS_OK);
  m.n++;
  assert_int_equal(device_join(&second, 0x23, line, vs_hlc_make(4001, 0), NULL, &m.facts[m.n]), VS_OK);
  m.n++;
  vs_mesh_view *v = reduce(&m);
  assert_null(vs_mesh_find(v, late.id.pk));
  assert_null(vs_mesh_find(v, second.id.pk)); /* the invite admits one device: the smaller (hlc, pk) */
  const vs_mesh_member *f = vs_mesh_find(v, first.id.pk);
  assert_non_null(f);
  assert_int_equal(f->role, VS_MESH_READER);
  assert_true(vs_mesh_op_valid(v, first.id.pk, 1, false)); /* its admission */
  assert_false(vs_mesh_op_valid(v, first.id.pk, 2, true)); /* a reader's data op */
  free(v);
}

static void test_member_flow_revoke_cut(void **state) {
  (void)state;
  mesh m;
  mesh_create(&m);
  char line[VS_MESH_TOKEN_CHARS_MAX + 1];
  mesh_invite(&m, VS_MESH_WRITER, vs_hlc_make(2000, 0), vs_hlc_make(999999, 0), 0x77, line, sizeof line);
  chain dev;
  assert_int_equal(device_join(&dev, 0x22, line, vs_hlc_make(3000, 0), NULL, &m.facts[m.n]), VS_OK);
  m.n++;
  uint8_t cut_hash[VS_HASH_BYTES] = {0};
  for (int i = 0; i < 3; i++) chain_data(&dev, vs_hlc_make(4000 + (uint64_t)i, 0)); /* seqs 2..4 */
  memcpy(cut_hash, dev.prev, sizeof cut_hash);                                       /* the admin holds 1..4 */
  chain_data(&dev, vs_hlc_make(5000, 0));                                            /* seq 5: after the cut */

  vs_mesh_revoke_pl rv = {.cut_seq = 4};
  memcpy(rv.device_pk, dev.id.pk, sizeof rv.device_pk);
  memcpy(rv.cut_hash, cut_hash, sizeof rv.cut_hash);
  vs_chain_sign(&dev.id, 4, rv.cut_hash, rv.cut_sig);
  uint8_t p[VS_MESH_REVOKE_BYTES];
  vs_mesh_revoke_encode(&rv, p);
  assert_int_equal(chain_op(&m.admin, vs_hlc_make(6000, 0), VS_MESH_KIND_REVOKE, p, sizeof p, &m.facts[m.n], NULL),
                   VS_OK);
  m.n++;
  vs_mesh_view *v = reduce(&m);
  const vs_mesh_member *d = vs_mesh_find(v, dev.id.pk);
  assert_non_null(d);
  assert_true(d->revoked);
  assert_int_equal(d->cut_seq, 4);
  assert_memory_equal(d->revoked_by, m.admin.id.pk, VS_ORIGIN_BYTES);
  assert_false(vs_mesh_active(v, dev.id.pk));
  for (uint64_t s = 1; s <= 4; s++) assert_true(vs_mesh_op_valid(v, dev.id.pk, s, s > 1));
  assert_false(vs_mesh_op_valid(v, dev.id.pk, 5, true));
  /* The last admin cannot be revoked, not even by itself. */
  memcpy(rv.device_pk, m.admin.id.pk, sizeof rv.device_pk);
  rv.cut_seq = m.admin.seq;
  memcpy(rv.cut_hash, m.admin.prev, sizeof rv.cut_hash);
  vs_chain_sign(&m.admin.id, rv.cut_seq, rv.cut_hash, rv.cut_sig);
  vs_mesh_revoke_encode(&rv, p);
  assert_int_equal(chain_op(&m.admin, vs_hlc_make(7000, 0), VS_MESH_KIND_REVOKE, p, sizeof p, &m.facts[m.n], NULL),
                   VS_OK);
  m.n++;
  vs_mesh_view *w = reduce(&m);
  assert_true(vs_mesh_active(w, m.admin.id.pk));
  assert_memory_equal(v->members, w->members, sizeof(vs_mesh_member) * v->count); /* nothing else moved */
  free(w);
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_member_flow_genesis_invite_join),
      cmocka_unit_test(test_member_flow_token_cannot_be_moved),
      cmocka_unit_test(test_member_flow_expired_and_double_used),
      cmocka_unit_test(test_member_flow_revoke_cut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
