/* Pins src/member_reduce.c: the membership reducer, one named scenario per
 * rule of member.h with its expected verdict, the limits, and a worst-case
 * timing (printed, not asserted). Devices are tags (A = 1, B = 2, ...);
 * tests/member_facts.h builds their facts. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "member.h"
#include "member_facts.h"

enum { A = 1, B, C, D, E, F };

static mf_set g_set;
static vs_mesh_view g_view;

static const vs_mesh_member *who(uint32_t tag) {
  uint8_t pk[VS_ORIGIN_BYTES];
  mf_pk(pk, tag);
  return vs_mesh_find(&g_view, pk);
}
static bool active(uint32_t tag) {
  uint8_t pk[VS_ORIGIN_BYTES];
  mf_pk(pk, tag);
  return vs_mesh_active(&g_view, pk);
}
static bool valid(uint32_t tag, uint64_t seq, bool data) {
  uint8_t pk[VS_ORIGIN_BYTES];
  mf_pk(pk, tag);
  return vs_mesh_op_valid(&g_view, pk, seq, data);
}
static void reduce_ok(void) { assert_err(vs_mesh_reduce(g_set.mesh_id, g_set.f, g_set.n, &g_view), VS_OK); }
static mf_set *fresh(void) {
  memset(&g_set, 0, sizeof g_set);
  mf_genesis(&g_set, A, 5);
  return &g_set;
}

static void test_genesis_only(void **state) {
  (void)state;
  fresh();
  reduce_ok();
  assert_true(g_view.has_genesis);
  assert_int_equal(g_view.count, 1);
  const vs_mesh_member *a = who(A);
  assert_non_null(a);
  assert_int_equal(a->role, VS_MESH_ADMIN);
  assert_int_equal(a->depth, 0);
  assert_int_equal(a->admit_hlc, 5);
  assert_false(a->revoked);
  assert_true(active(A));
  assert_true(valid(A, 1, false));
  assert_true(valid(A, 99, true));
  assert_false(valid(B, 2, true));
  /* without the genesis: nothing, and a different digest */
  uint8_t d1[VS_HASH_BYTES];
  memcpy(d1, g_view.digest, sizeof d1);
  assert_err(vs_mesh_reduce(g_set.mesh_id, g_set.f, 0, &g_view), VS_OK);
  assert_false(g_view.has_genesis);
  assert_int_equal(g_view.count, 0);
  assert_false(active(A));
  assert_memory_not_equal(d1, g_view.digest, VS_HASH_BYTES);
}

static void test_other_create_ignored(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_add(s, B, 1, 3, VS_MESH_CREATE); /* an earlier create of another mesh */
  mf_add(s, C, 2, 3, VS_MESH_CREATE); /* a create not at seq 1 */
  reduce_ok();
  assert_int_equal(g_view.count, 1);
  assert_null(who(B));
  assert_null(who(C));
  /* the genesis of B's mesh is B's, not A's */
  uint8_t other[VS_HASH_BYTES];
  memcpy(other, s->f[1].hash, sizeof other);
  assert_err(vs_mesh_reduce(other, s->f, s->n, &g_view), VS_OK);
  assert_int_equal(g_view.count, 1);
  assert_non_null(who(B));
  assert_null(who(A));
}

static void test_invite_admit(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_WRITER);
  mf_join(s, A, 3, C, VS_MESH_ADMIN);
  mf_join(s, C, 2, D, VS_MESH_READER);
  reduce_ok();
  assert_int_equal(g_view.count, 4);
  const vs_mesh_member *b = who(B), *d = who(D);
  assert_non_null(b);
  assert_int_equal(b->role, VS_MESH_WRITER);
  assert_int_equal(b->depth, 1);
  assert_int_equal(b->invite_seq, 2);
  assert_int_equal(b->invite_hlc, 20);
  assert_int_equal(b->admit_hlc, 21);
  uint8_t pka[VS_ORIGIN_BYTES], pkc[VS_ORIGIN_BYTES];
  mf_pk(pka, A);
  mf_pk(pkc, C);
  assert_memory_equal(b->inviter, pka, VS_ORIGIN_BYTES);
  assert_non_null(d);
  assert_int_equal(d->depth, 2);
  assert_memory_equal(d->inviter, pkc, VS_ORIGIN_BYTES);
  assert_true(valid(B, 7, true));
  for (uint32_t i = 1; i < g_view.count; i++) /* sorted by pk */
    assert_true(memcmp(g_view.members[i - 1].pk, g_view.members[i].pk, VS_ORIGIN_BYTES) < 0);
}

static void test_admit_of_writer_invite_void(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_WRITER);
  mf_join(s, B, 2, C, VS_MESH_ADMIN); /* a writer cannot invite */
  reduce_ok();
  assert_int_equal(g_view.count, 2);
  assert_null(who(C));
  assert_false(valid(C, 1, false));
}

static void test_expired_invite(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_invite(s, A, 2, 20, B, VS_MESH_WRITER, 100);
  mf_admit(s, B, 101, A, 2); /* one past the expiry */
  mf_invite(s, A, 3, 30, C, VS_MESH_WRITER, 100);
  mf_admit(s, C, 100, A, 3); /* at the expiry: still good */
  reduce_ok();
  assert_null(who(B));
  assert_non_null(who(C));
}

static void test_double_used_invite(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_invite(s, A, 2, 20, B, VS_MESH_WRITER, MF_FOREVER);
  mf_admit_at(s, C, 1, 50, A, 2, B); /* the token leaked: C uses it too */
  mf_admit_at(s, B, 1, 40, A, 2, B);
  /* a tie on hlc: the smaller pk wins */
  mf_invite(s, A, 3, 30, D, VS_MESH_WRITER, MF_FOREVER);
  mf_admit_at(s, E, 1, 60, A, 3, D);
  mf_admit_at(s, D, 1, 60, A, 3, D);
  reduce_ok();
  assert_int_equal(g_view.count, 3);
  assert_non_null(who(B));
  assert_null(who(C));
  assert_false(valid(C, 1, false));
  assert_false(valid(C, 2, true));
  assert_non_null(who(D));
  assert_null(who(E));
  assert_false(valid(E, 5, true));
  /* an expired earlier admit does not block a later good one */
  s = fresh();
  mf_invite(s, A, 2, 20, B, VS_MESH_WRITER, 100);
  mf_admit_at(s, C, 1, 200, A, 2, B);
  mf_admit_at(s, B, 1, 90, A, 2, B);
  reduce_ok();
  assert_non_null(who(B));
  assert_null(who(C));
}

static void test_admit_not_seq1(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_invite(s, A, 2, 20, B, VS_MESH_WRITER, MF_FOREVER);
  mf_admit_at(s, B, 2, 21, A, 2, B);
  reduce_ok();
  assert_int_equal(g_view.count, 1);
  assert_null(who(B));
}

static void test_invite_pk_mismatch(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_invite(s, A, 2, 20, B, VS_MESH_WRITER, MF_FOREVER);
  mf_admit_at(s, B, 1, 21, A, 2, C); /* a key that is not the invite's */
  mf_admit(s, D, 31, A, 3);          /* an invite that does not exist */
  mf_admit(s, E, 41, A, 1);          /* "invite" naming the create */
  mf_invite(s, A, 5, 50, F, VS_MESH_WRITER, MF_FOREVER);
  mf_admit(s, F, 51, A, 5);
  s->f[s->n - 1].u.admit.mesh_id[0] ^= 1; /* an admit for another mesh */
  reduce_ok();
  assert_int_equal(g_view.count, 1);
}

static void test_revoke_with_cut(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_WRITER);
  mf_revoke(s, A, 3, 90, B, 4);
  reduce_ok();
  const vs_mesh_member *b = who(B);
  assert_non_null(b);
  assert_true(b->revoked);
  assert_int_equal(b->cut_seq, 4);
  assert_int_equal(b->revoke_seq, 3);
  uint8_t pka[VS_ORIGIN_BYTES];
  mf_pk(pka, A);
  assert_memory_equal(b->revoked_by, pka, VS_ORIGIN_BYTES);
  assert_false(active(B));
  assert_true(valid(B, 4, true));
  assert_false(valid(B, 5, true));
  assert_true(valid(B, 1, false));
  /* a second revoke with a lower cut wins; a higher one changes nothing */
  mf_revoke(s, A, 4, 95, B, 2);
  mf_revoke(s, A, 5, 99, B, 9);
  reduce_ok();
  assert_int_equal(who(B)->cut_seq, 2);
  assert_int_equal(who(B)->revoke_seq, 4);
  assert_false(valid(B, 3, true));
  /* cut 0: nothing of B's stays but its admit */
  mf_revoke(s, A, 6, 99, B, 0);
  reduce_ok();
  assert_int_equal(who(B)->cut_seq, 0);
  assert_true(valid(B, 1, false));
  assert_false(valid(B, 2, false));
}

static void test_revoke_by_non_admin(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_WRITER);
  mf_join(s, A, 3, C, VS_MESH_WRITER);
  mf_revoke(s, B, 2, 90, C, 0);
  mf_revoke(s, F, 2, 90, C, 0); /* not a member at all */
  reduce_ok();
  assert_true(active(C));
  assert_true(active(B));
}

static void test_revoke_past_own_cut(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_join(s, A, 3, C, VS_MESH_WRITER);
  mf_join(s, A, 4, D, VS_MESH_WRITER);
  mf_revoke(s, A, 5, 90, B, 2);
  mf_revoke(s, B, 2, 60, C, 1); /* at the cut: stands */
  mf_revoke(s, B, 3, 70, D, 1); /* past the cut: nothing */
  reduce_ok();
  assert_true(who(B)->revoked);
  assert_true(who(C)->revoked);
  assert_true(active(D));
}

static void test_mutual_revoke_senior_wins(void **state) {
  (void)state;
  /* A (depth 0) and B (depth 1) revoke each other, each cut holding the
   * other's revoke: taking both would leave no admin; A is senior. */
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_revoke(s, A, 3, 90, B, 5);
  mf_revoke(s, B, 2, 80, A, 5);
  reduce_ok();
  assert_true(active(A));
  assert_true(who(B)->revoked);
  /* between B and C (both depth 1), the earlier invite is senior; cuts
   * before the other's revoke (the usual race) */
  s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_join(s, A, 3, C, VS_MESH_ADMIN);
  mf_revoke(s, C, 2, 70, B, 1);
  mf_revoke(s, B, 2, 80, C, 1);
  reduce_ok();
  assert_true(active(B));
  assert_true(who(C)->revoked);
  assert_true(active(A));
  /* with a third admin left, both high-cut mutual revokes stand */
  s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_join(s, A, 3, C, VS_MESH_ADMIN);
  mf_revoke(s, C, 2, 70, B, 5);
  mf_revoke(s, B, 2, 80, C, 5);
  reduce_ok();
  assert_true(who(B)->revoked);
  assert_true(who(C)->revoked);
  assert_true(active(A));
}

static void test_three_way_revoke_cycle(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_join(s, A, 3, C, VS_MESH_ADMIN);
  mf_join(s, A, 4, D, VS_MESH_ADMIN);
  mf_revoke(s, B, 2, 90, C, 1);
  mf_revoke(s, C, 2, 90, D, 1);
  mf_revoke(s, D, 2, 90, B, 1);
  reduce_ok();
  /* B is senior: B's revoke of C stands, C's is past C's cut, D's would
   * void B's taken revoke */
  assert_true(active(B));
  assert_true(who(C)->revoked);
  assert_true(active(D));
  assert_int_equal(g_view.count, 4);
}

static void test_revoke_of_last_admin_refused(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_WRITER);
  mf_revoke(s, A, 3, 90, A, 9); /* A is the only admin */
  reduce_ok();
  assert_true(active(A));
  /* with another admin, a self-revoke stands */
  mf_join(s, A, 4, C, VS_MESH_ADMIN);
  reduce_ok();
  assert_true(who(A)->revoked);
  assert_true(active(C));
  /* and C's revoke of the then last admin does not */
  mf_revoke(s, C, 2, 95, C, 5);
  reduce_ok();
  assert_true(active(C));
}

static void test_cascade(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_join(s, B, 2, C, VS_MESH_ADMIN);
  mf_join(s, C, 2, D, VS_MESH_WRITER);
  mf_join(s, A, 3, E, VS_MESH_WRITER);
  mf_revoke(s, A, 4, 90, B, 1); /* below B's invite of C */
  reduce_ok();
  assert_int_equal(g_view.count, 3);
  assert_true(who(B)->revoked);
  assert_null(who(C));
  assert_null(who(D));
  assert_false(valid(D, 2, true));
  assert_true(active(E));
  /* a cut at the invite keeps the subtree */
  s->f[s->n - 1].u.revoke.cut_seq = 2;
  reduce_ok();
  assert_int_equal(g_view.count, 5);
  assert_true(active(C));
  assert_true(active(D));
}

static void test_revoked_invites_after_cut(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_join(s, B, 2, C, VS_MESH_WRITER); /* before the cut */
  mf_join(s, B, 3, D, VS_MESH_WRITER); /* after the cut */
  mf_revoke(s, A, 3, 25, B, 2);
  mf_join(s, B, 4, E, VS_MESH_ADMIN); /* after the revoke, too */
  mf_revoke(s, B, 5, 99, C, 0);       /* a revoke after the cut */
  reduce_ok();
  assert_true(active(C));
  assert_null(who(D));
  assert_null(who(E));
  assert_int_equal(g_view.count, 3);
}

static void test_reader(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_READER);
  reduce_ok();
  assert_true(active(B));
  assert_true(valid(B, 1, false));
  assert_false(valid(B, 2, true));
  assert_false(valid(B, 1, true));
  assert_true(valid(B, 2, false));
  assert_false(valid(B, 0, false));
}

static void test_fork_and_duplicates(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_WRITER);
  uint8_t d1[VS_HASH_BYTES];
  reduce_ok();
  memcpy(d1, g_view.digest, sizeof d1);
  s->f[s->n] = s->f[1]; /* a duplicate */
  s->n++;
  reduce_ok();
  assert_memory_equal(d1, g_view.digest, VS_HASH_BYTES);
  mf_revoke(s, A, 2, 77, B, 0); /* a second, different op at (A, 2): a fork */
  assert_err(vs_mesh_reduce(s->mesh_id, s->f, s->n, &g_view), VS_ERR_INVAL);
  assert_int_equal(g_view.count, 0);
  assert_err(vs_mesh_reduce(NULL, s->f, s->n, &g_view), VS_ERR_INVAL);
  assert_err(vs_mesh_reduce(s->mesh_id, NULL, 1, &g_view), VS_ERR_INVAL);
  assert_err(vs_mesh_reduce(s->mesh_id, s->f, 1, NULL), VS_ERR_INVAL);
  assert_null(vs_mesh_find(NULL, s->f[0].origin));
}

static uint8_t *put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> (8 * i));
  return p;
}

/* The digest is the encoding member.h spells out, re-encoded here by hand
 * from the header (not from the reducer), and pinned: nodes of different
 * builds compare digests. */
static void test_digest_encoding(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_WRITER);
  mf_join(s, A, 3, C, VS_MESH_ADMIN);
  mf_revoke(s, A, 4, 90, B, 4);
  reduce_ok();
  assert_int_equal(g_view.count, 3);
  static const char tag[] = "vixsync mesh view v1";
  uint8_t buf[512], *p = buf;
  memcpy(p, tag, sizeof tag - 1), p += sizeof tag - 1;
  memcpy(p, s->mesh_id, 32), p += 32;
  *p++ = 1;
  *p++ = 3, *p++ = 0, *p++ = 0, *p++ = 0;
  /* pk order is tag order: A, B, C */
  struct {
    uint32_t tag, depth, inviter;
    uint8_t role, revoked;
    uint64_t invite_seq, invite_hlc, admit_hlc, cut_seq, revoke_seq;
    uint32_t revoked_by;
  } want[3] = {
      {A, 0, 0, VS_MESH_ADMIN, 0, 0, 0, 5, 0, 0, 0},
      {B, 1, A, VS_MESH_WRITER, 1, 2, 20, 21, 4, 4, A},
      {C, 1, A, VS_MESH_ADMIN, 0, 3, 30, 31, 0, 0, 0},
  };
  for (int i = 0; i < 3; i++) {
    mf_pk(p, want[i].tag), p += 32;
    *p++ = want[i].role;
    *p++ = (uint8_t)want[i].depth, *p++ = 0, *p++ = 0, *p++ = 0;
    if (want[i].inviter != 0) mf_pk(p, want[i].inviter);
    else memset(p, 0, 32);
    p += 32;
    p = put_u64(p, want[i].invite_seq);
    p = put_u64(p, want[i].invite_hlc);
    p = put_u64(p, want[i].admit_hlc);
    *p++ = want[i].revoked;
    p = put_u64(p, want[i].cut_seq);
    if (want[i].revoked_by != 0) mf_pk(p, want[i].revoked_by);
    else memset(p, 0, 32);
    p += 32;
    p = put_u64(p, want[i].revoke_seq);
  }
  assert_true((size_t)(p - buf) <= sizeof buf);
  uint8_t d[VS_HASH_BYTES];
  crypto_generichash(d, sizeof d, buf, (size_t)(p - buf), NULL, 0);
  assert_memory_equal(d, g_view.digest, VS_HASH_BYTES);
  char hex[2 * VS_HASH_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, g_view.digest, VS_HASH_BYTES);
  assert_string_equal(hex, "f6dbeb91aef3c4f332e0bea91891c4c07ecef758b94fa2efdd197d86768db06b");
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The worst case the cost comment names: VS_MESH_MEMBERS_MAX admins and the
 * rest of VS_MESH_FACTS_MAX revokes, each lowering a cut (a full pass over
 * the tree). Then one fact and one member too many. */
static void test_limits(void **state) {
  (void)state;
  uint32_t cap = 2 * VS_MESH_FACTS_MAX + 1;
  vs_mesh_fact *f = calloc(cap, sizeof *f);
  mf_set *s = calloc(1, sizeof *s);
  assert_non_null(f);
  assert_non_null(s);
  uint32_t n = 0;
  uint32_t members = VS_MESH_MEMBERS_MAX;
  mf_genesis(s, A, 5);
  f[n++] = s->f[0];
  for (uint32_t i = 1; i < members; i++) {
    s->n = 0;
    mf_invite(s, A, 1 + i, 10 * i, 100 + i, VS_MESH_ADMIN, MF_FOREVER);
    mf_admit(s, 100 + i, 10 * i + 1, A, 1 + i);
    f[n++] = s->f[0];
    f[n++] = s->f[1];
  }
  uint64_t seq = members + 1;
  uint64_t cut = UINT64_MAX - 1;
  while (n < VS_MESH_FACTS_MAX) {
    s->n = 0;
    mf_revoke(s, A, seq, 100000 + seq, 100 + 1 + (uint32_t)(seq % (members - 1)), cut--);
    seq++;
    f[n++] = s->f[0];
  }
  uint64_t t0 = now_ns();
  assert_err(vs_mesh_reduce(s->mesh_id, f, n, &g_view), VS_OK);
  uint64_t t1 = now_ns();
  assert_int_equal(g_view.count, members);
  assert_true(active(A));
  printf("worst case: %u facts, %u members, %u revokes: %.1f ms\n", n, members, n - 2 * members + 1,
         (double)(t1 - t0) / 1e6);
  /* every fact twice (two sources) is still the set; one more is too many */
  static vs_mesh_view once;
  once = g_view;
  memcpy(f + n, f, n * sizeof *f);
  assert_err(vs_mesh_reduce(s->mesh_id, f, 2 * n, &g_view), VS_OK);
  assert_true(mf_view_equal(&once, &g_view));
  f[2 * n] = f[0];
  assert_err(vs_mesh_reduce(s->mesh_id, f, 2 * n + 1, &g_view), VS_ERR_LIMIT);
  /* one fact too many */
  s->n = 0;
  mf_revoke(s, A, seq, 100000 + seq, 101, 1);
  f[n] = s->f[0];
  assert_err(vs_mesh_reduce(s->mesh_id, f, n + 1, &g_view), VS_ERR_LIMIT);
  assert_int_equal(g_view.count, 0);
  /* one member too many */
  n = 1 + 2 * (members - 1);
  s->n = 0;
  mf_invite(s, A, 1 + members, 10 * members, 100 + members, VS_MESH_WRITER, MF_FOREVER);
  mf_admit(s, 100 + members, 10 * members + 1, A, 1 + members);
  f[n] = s->f[0];
  f[n + 1] = s->f[1];
  assert_err(vs_mesh_reduce(s->mesh_id, f, n, &g_view), VS_OK);
  assert_int_equal(g_view.count, members);
  assert_err(vs_mesh_reduce(s->mesh_id, f, n + 2, &g_view), VS_ERR_LIMIT);
  free(f);
  free(s);
}

#ifdef VS_FAULT_INJECTION
#include "fault.h"

/* Every allocation of a reduction with revokes and a cascade fails in turn
 * (the fault build only): VS_ERR_NOMEM and a zeroed view, then the same
 * verdict once allocations succeed again. */
static void test_every_allocation_fails(void **state) {
  (void)state;
  mf_set *s = fresh();
  mf_join(s, A, 2, B, VS_MESH_ADMIN);
  mf_join(s, B, 2, C, VS_MESH_WRITER);
  mf_join(s, A, 3, D, VS_MESH_ADMIN);
  mf_revoke(s, A, 4, 90, B, 1);
  mf_revoke(s, D, 2, 95, A, 3);
  static vs_mesh_view want;
  assert_err(vs_mesh_reduce(s->mesh_id, s->f, s->n, &want), VS_OK);
  assert_int_equal(want.count, 3);
  uint64_t n = 1;
  for (; n < 100; n++) {
    vs_fault_fail_nth_alloc(n);
    vs_err err = vs_mesh_reduce(s->mesh_id, s->f, s->n, &g_view);
    if (!vs_fault_alloc_nth_fired()) {
      assert_err(err, VS_OK);
      break;
    }
    assert_err(err, VS_ERR_NOMEM);
    assert_int_equal(g_view.count, 0);
    assert_false(g_view.has_genesis);
  }
  vs_fault_fail_nth_alloc(0);
  assert_true(n > 3 && n < 100);
  assert_err(vs_mesh_reduce(s->mesh_id, s->f, s->n, &g_view), VS_OK);
  assert_true(mf_view_equal(&want, &g_view));
  printf("%u allocations, each failed in turn\n", (unsigned)(n - 1));
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_genesis_only),
      cmocka_unit_test(test_other_create_ignored),
      cmocka_unit_test(test_invite_admit),
      cmocka_unit_test(test_admit_of_writer_invite_void),
      cmocka_unit_test(test_expired_invite),
      cmocka_unit_test(test_double_used_invite),
      cmocka_unit_test(test_admit_not_seq1),
      cmocka_unit_test(test_invite_pk_mismatch),
      cmocka_unit_test(test_revoke_with_cut),
      cmocka_unit_test(test_revoke_by_non_admin),
      cmocka_unit_test(test_revoke_past_own_cut),
      cmocka_unit_test(test_mutual_revoke_senior_wins),
      cmocka_unit_test(test_three_way_revoke_cycle),
      cmocka_unit_test(test_revoke_of_last_admin_refused),
      cmocka_unit_test(test_cascade),
      cmocka_unit_test(test_revoked_invites_after_cut),
      cmocka_unit_test(test_reader),
      cmocka_unit_test(test_fork_and_duplicates),
      cmocka_unit_test(test_digest_encoding),
      cmocka_unit_test(test_limits),
#ifdef VS_FAULT_INJECTION
      cmocka_unit_test(test_every_allocation_fails),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
