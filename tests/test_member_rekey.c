/* mesh.rekey (src/member_rekey.c, member.h): the payload's layout, boxes
 * that only their recipient opens, and the reducer's epoch (the greatest
 * epoch valid admins' rekeys reach without a gap, ties to the smallest op
 * hash). */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "member.h"
#include "member_facts.h"

enum { A = 1, B, C, D };

static vs_identity ident(uint8_t salt) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, salt, sizeof seed);
  vs_identity id;
  assert_err(vs_identity_from_seed(seed, &id), VS_OK);
  return id;
}

static const uint8_t MESH[VS_HASH_BYTES] = {0x11, 0x22};
static const uint8_t KEY[VS_MESH_KEY_BYTES] = {0xab, 0xcd, 0xef};
static const uint8_t EPH[VS_SEED_BYTES] = {0x99};

/* Three recipients open the epoch's key; a fourth device does not. */
static void test_rekey_boxes_open_for_recipients_only(void **state) {
  (void)state;
  vs_identity ids[4] = {ident(1), ident(2), ident(3), ident(4)};
  uint8_t pks[3][VS_ORIGIN_BYTES];
  for (int i = 0; i < 3; i++) memcpy(pks[i], ids[2 - i].pk, VS_ORIGIN_BYTES); /* any order */
  uint8_t buf[VS_MESH_REKEY_BYTES_MAX];
  size_t n = 0;
  assert_err(vs_mesh_rekey_make(MESH, 7, KEY, EPH, (const uint8_t (*)[VS_ORIGIN_BYTES])pks, 3, buf, sizeof buf, &n),
             VS_OK);
  assert_int_equal(n, VS_MESH_REKEY_HEADER_BYTES + 3 * VS_MESH_REKEY_BOX_BYTES);
  vs_mesh_rekey_pl pl;
  assert_err(vs_mesh_rekey_decode(buf, n, &pl), VS_OK);
  assert_int_equal(pl.epoch, 7);
  assert_int_equal(pl.count, 3);
  for (int i = 0; i < 3; i++) {
    uint8_t key[VS_MESH_KEY_BYTES];
    assert_err(vs_mesh_rekey_open(buf, n, MESH, &ids[i], key), VS_OK);
    assert_memory_equal(key, KEY, sizeof key);
    assert_true(vs_mesh_rekey_names(buf, n, ids[i].pk));
  }
  uint8_t key[VS_MESH_KEY_BYTES] = {0};
  assert_err(vs_mesh_rekey_open(buf, n, MESH, &ids[3], key), VS_ERR_NOTFOUND);
  assert_false(vs_mesh_rekey_names(buf, n, ids[3].pk));
  /* Another mesh's nonce: the box does not open (AUTH, nothing written). */
  const uint8_t other[VS_HASH_BYTES] = {0x12};
  assert_err(vs_mesh_rekey_open(buf, n, other, &ids[0], key), VS_ERR_AUTH);
  /* A flipped bit in a box, or in the ephemeral key: AUTH. */
  for (size_t at = 5; at < n; at += 13) {
    uint8_t copy[VS_MESH_REKEY_BYTES_MAX];
    memcpy(copy, buf, n);
    copy[at] ^= 0x01;
    vs_err e0 = vs_mesh_rekey_open(copy, n, MESH, &ids[0], key);
    vs_err e1 = vs_mesh_rekey_open(copy, n, MESH, &ids[1], key);
    vs_err e2 = vs_mesh_rekey_open(copy, n, MESH, &ids[2], key);
    /* Each flip changes the epoch, the epk, a hint or a box: at least one
     * recipient can no longer open it, and none gets a different key. */
    assert_true(e0 != VS_OK || e1 != VS_OK || e2 != VS_OK);
    if (e0 == VS_OK || e1 == VS_OK || e2 == VS_OK) assert_memory_equal(key, KEY, sizeof key);
  }
  /* Deterministic for its inputs. */
  uint8_t again[VS_MESH_REKEY_BYTES_MAX];
  size_t n2 = 0;
  assert_err(vs_mesh_rekey_make(MESH, 7, KEY, EPH, (const uint8_t (*)[VS_ORIGIN_BYTES])pks, 3, again, sizeof again, &n2),
             VS_OK);
  assert_int_equal(n2, n);
  assert_memory_equal(again, buf, n);
}

static void test_rekey_make_refuses(void **state) {
  (void)state;
  vs_identity a = ident(1);
  uint8_t pks[2][VS_ORIGIN_BYTES];
  memcpy(pks[0], a.pk, 32);
  memcpy(pks[1], a.pk, 32);
  uint8_t buf[VS_MESH_REKEY_BYTES_MAX];
  size_t n = 0;
  const uint8_t (*p)[VS_ORIGIN_BYTES] = (const uint8_t (*)[VS_ORIGIN_BYTES])pks;
  assert_err(vs_mesh_rekey_make(MESH, 1, KEY, EPH, p, 2, buf, sizeof buf, &n), VS_ERR_INVAL); /* duplicate */
  assert_err(vs_mesh_rekey_make(MESH, 0, KEY, EPH, p, 1, buf, sizeof buf, &n), VS_ERR_INVAL); /* epoch 0 */
  assert_err(vs_mesh_rekey_make(MESH, 1, KEY, EPH, p, 0, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_mesh_rekey_make(MESH, 1, KEY, EPH, p, 1, buf, VS_MESH_REKEY_HEADER_BYTES, &n), VS_ERR_BUFSIZE);
  /* the largest mesh fits one op */
  uint8_t (*many)[VS_ORIGIN_BYTES] = malloc((size_t)VS_MESH_MEMBERS_MAX * VS_ORIGIN_BYTES);
  assert_non_null(many);
  for (uint32_t i = 0; i < VS_MESH_MEMBERS_MAX; i++) {
    uint8_t seed[VS_SEED_BYTES] = {0};
    vt_put_u32le(seed, i + 1);
    vs_identity id;
    assert_err(vs_identity_from_seed(seed, &id), VS_OK);
    memcpy(many[i], id.pk, VS_ORIGIN_BYTES);
  }
  uint8_t *big = malloc(VS_MESH_REKEY_BYTES_MAX);
  assert_non_null(big);
  assert_err(vs_mesh_rekey_make(MESH, 3, KEY, EPH, (const uint8_t (*)[VS_ORIGIN_BYTES])many, VS_MESH_MEMBERS_MAX, big,
                                VS_MESH_REKEY_BYTES_MAX, &n),
             VS_OK);
  assert_int_equal(n, VS_MESH_REKEY_BYTES_MAX);
  assert_true(n <= VS_OP_PAYLOAD_BYTES_MAX);
  vs_mesh_rekey_pl pl;
  assert_err(vs_mesh_rekey_decode(big, n, &pl), VS_OK);
  assert_int_equal(pl.count, VS_MESH_MEMBERS_MAX);
  free(big);
  free(many);
}

/* Strict decoding: version first, then lengths, then fields. */
static void test_rekey_decode_strict(void **state) {
  (void)state;
  vs_identity a = ident(1), b = ident(2);
  uint8_t pks[2][VS_ORIGIN_BYTES];
  memcpy(pks[0], a.pk, 32);
  memcpy(pks[1], b.pk, 32);
  uint8_t buf[VS_MESH_REKEY_BYTES_MAX];
  size_t n = 0;
  assert_err(vs_mesh_rekey_make(MESH, 2, KEY, EPH, (const uint8_t (*)[VS_ORIGIN_BYTES])pks, 2, buf, sizeof buf, &n),
             VS_OK);
  vs_mesh_rekey_pl pl;
  memset(&pl, 0x6b, sizeof pl);
  vs_mesh_rekey_pl before = pl;
  assert_err(vs_mesh_rekey_decode(buf, 0, &pl), VS_ERR_TRUNCATED);
  assert_err(vs_mesh_rekey_decode(buf, n - 1, &pl), VS_ERR_TRUNCATED);
  uint8_t longer[VS_MESH_REKEY_BYTES_MAX + 1];
  memcpy(longer, buf, n);
  longer[n] = 0;
  assert_err(vs_mesh_rekey_decode(longer, n + 1, &pl), VS_ERR_TRAILING);
  uint8_t c[VS_MESH_REKEY_BYTES_MAX];
  memcpy(c, buf, n);
  c[0] = 2;
  assert_err(vs_mesh_rekey_decode(c, 3, &pl), VS_ERR_VERSION); /* whatever its length */
  memcpy(c, buf, n);
  memset(c + 1, 0, 4); /* epoch 0 */
  assert_err(vs_mesh_rekey_decode(c, n, &pl), VS_ERR_MALFORMED);
  memcpy(c, buf, n);
  c[37] = 0, c[38] = 0; /* count 0 */
  assert_err(vs_mesh_rekey_decode(c, VS_MESH_REKEY_HEADER_BYTES, &pl), VS_ERR_MALFORMED);
  memcpy(c, buf, n);
  c[37] = 0x01, c[38] = 0x04; /* 1025 */
  assert_err(vs_mesh_rekey_decode(c, n, &pl), VS_ERR_MALFORMED);
  /* hints out of order */
  memcpy(c, buf, n);
  uint8_t tmp[VS_MESH_REKEY_BOX_BYTES];
  memcpy(tmp, c + 39, sizeof tmp);
  memcpy(c + 39, c + 39 + 56, sizeof tmp);
  memcpy(c + 39 + 56, tmp, sizeof tmp);
  if (memcmp(c + 39, c + 39 + 56, 8) != 0) assert_err(vs_mesh_rekey_decode(c, n, &pl), VS_ERR_MALFORMED);
  assert_memory_equal(&pl, &before, sizeof pl);
}

/* The epoch: greatest valid rekey; ties by the smallest hash; a writer's or
 * one past its author's cut does nothing. */
static void test_rekey_epoch_in_view(void **state) {
  (void)state;
  static mf_set s;
  static vs_mesh_view v, w;
  memset(&s, 0, sizeof s);
  mf_genesis(&s, A, 5);
  mf_join(&s, A, 2, B, VS_MESH_ADMIN);
  mf_join(&s, A, 3, C, VS_MESH_WRITER);
  assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &v), VS_OK);
  assert_int_equal(v.epoch, 0);
  uint8_t digest0[VS_HASH_BYTES];
  memcpy(digest0, v.digest, sizeof digest0);
  mf_rekey(&s, C, 2, 100, 9, 1); /* a writer's: nothing */
  assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &v), VS_OK);
  assert_int_equal(v.epoch, 0);
  assert_memory_equal(v.digest, digest0, sizeof digest0); /* no epoch: the digest it had */
  mf_rekey(&s, A, 4, 110, 1, 1);
  assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &v), VS_OK);
  assert_int_equal(v.epoch, 1);
  assert_int_equal(v.epoch_seq, 4);
  /* B and A both rekey to 2 (concurrently): the smaller hash wins everywhere. */
  mf_rekey(&s, B, 2, 120, 2, 3);
  mf_rekey(&s, A, 5, 121, 2, 4);
  assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &v), VS_OK);
  assert_int_equal(v.epoch, 2);
  const vs_mesh_fact *fa = &s.f[s.n - 1], *fb = &s.f[s.n - 2];
  const vs_mesh_fact *win = memcmp(fa->hash, fb->hash, VS_HASH_BYTES) < 0 ? fa : fb;
  assert_memory_equal(v.epoch_hash, win->hash, VS_HASH_BYTES);
  assert_memory_equal(v.epoch_origin, win->origin, VS_ORIGIN_BYTES);
  /* any order: the same view */
  mf_set r = s;
  for (uint32_t i = 0; i < r.n / 2; i++) {
    vs_mesh_fact t = r.f[i];
    r.f[i] = r.f[r.n - 1 - i];
    r.f[r.n - 1 - i] = t;
  }
  assert_err(vs_mesh_reduce(r.mesh_id, r.f, r.n, &w), VS_OK);
  assert_true(mf_view_equal(&v, &w));
  /* A revokes B with a cut below B's rekey: B's rekey stops counting. */
  mf_revoke(&s, A, 6, 130, B, 1);
  mf_rekey(&s, B, 3, 140, 50, 5); /* past its cut */
  assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &v), VS_OK);
  assert_int_equal(v.epoch, 2);
  assert_memory_equal(v.epoch_origin, fa->origin, VS_ORIGIN_BYTES); /* A's epoch-2 rekey now */
}

/* A rekey cannot skip epochs: an admin's jump to 2^32-1 (which would end
 * rotation for good) counts for nothing; the next honest epoch does. */
static void test_rekey_epoch_no_gap(void **state) {
  (void)state;
  const uint32_t a[] = {1, 2, 2, 4}, b[] = {2, 3}, c[] = {3, 1, 2, UINT32_MAX}, d[] = {UINT32_MAX};
  assert_int_equal(vs_mesh_epoch_reached(a, 4), 2);
  assert_int_equal(vs_mesh_epoch_reached(b, 2), 0);
  assert_int_equal(vs_mesh_epoch_reached(c, 4), 3);
  assert_int_equal(vs_mesh_epoch_reached(d, 1), 0);
  assert_int_equal(vs_mesh_epoch_reached(NULL, 0), 0);
  static mf_set s;
  static vs_mesh_view v;
  memset(&s, 0, sizeof s);
  mf_genesis(&s, A, 5);
  mf_join(&s, A, 2, B, VS_MESH_ADMIN);
  mf_rekey(&s, A, 4, 110, 1, 1);
  mf_rekey(&s, B, 2, 120, UINT32_MAX, 2); /* a hostile admin's jump */
  assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &v), VS_OK);
  assert_int_equal(v.epoch, 1);
  assert_int_equal(v.epoch_seq, 4);
  mf_rekey(&s, A, 5, 130, 2, 3);
  assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &v), VS_OK);
  assert_int_equal(v.epoch, 2);
  assert_int_equal(v.epoch_seq, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rekey_boxes_open_for_recipients_only),
      cmocka_unit_test(test_rekey_make_refuses),
      cmocka_unit_test(test_rekey_decode_strict),
      cmocka_unit_test(test_rekey_epoch_in_view),
      cmocka_unit_test(test_rekey_epoch_no_gap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
