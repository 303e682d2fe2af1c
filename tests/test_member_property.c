/* Property test of the membership reducer (src/member_reduce.c), label
 * property: 1,000 random sets of mesh.* facts from a seeded PRNG, an honest
 * admin tree plus adversarial moves (concurrent, mutual and self revokes,
 * revokes of the last admin, double-used, expired and mismatched invites,
 * writers and revoked devices inviting and revoking, duplicates). For each:
 *  - the verdict (digest and members) is the same for random permutations
 *    of the facts and with duplicates added; on 100 small sets, for every
 *    permutation;
 *  - invariants hold (an unrevoked admin whenever the genesis is present;
 *    every member's inviter a member, an admin, valid at the invite seq;
 *    depth = inviter's + 1; the genesis author alone at depth 0; every
 *    revoked member's revoker an admin member valid at the revoke's seq);
 *  - a naive re-implementation of the rules (fixpoint admissions, greedy
 *    revokes re-checking everything from scratch) gives the same members,
 *    and the same epoch and winner (rekeys by anyone, at the next epochs or
 *    jumping to 2^32-1: only admins' count, with no gap).
 * Usage: test_member_property [seed [sets]]; the seed is printed, and a
 * failure names the set's index: rerun with that seed to reproduce. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

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

#include "member.h"
#include "member_facts.h"

#define SETS_DEFAULT 1000u
#define SMALL_SETS 100u
#define TAGS_MAX 40u

static uint64_t g_seed = 0x5eed16u;
static uint32_t g_sets = SETS_DEFAULT;
static vs_mesh_view g_v1, g_v2;

static uint64_t rnd(uint64_t *s, uint64_t n) { return vt_sm64(s) % n; }

/* ---- the generator ---- */

typedef struct gen {
  mf_set *s;
  uint64_t rng;
  uint32_t tags;             /* devices 1..tags-1 exist */
  uint64_t next_seq[TAGS_MAX];
  uint8_t role[TAGS_MAX];    /* the role it was invited with (0: none) */
} gen;

static uint32_t pick_dev(gen *g) { return 1 + (uint32_t)rnd(&g->rng, g->tags - 1); }
static uint32_t pick_admin(gen *g) {
  for (int tries = 0; tries < 8; tries++) {
    uint32_t d = pick_dev(g);
    if (g->role[d] == VS_MESH_ADMIN) return d;
  }
  return 1;
}
static uint64_t hlc(gen *g) { return 1 + rnd(&g->rng, 60); }

/* `inviter` invites a new device, which admits (maybe late or with the wrong key). */
static void g_join(gen *g, uint32_t inviter, int twist) {
  if (g->tags >= TAGS_MAX || g->s->n + 2 > MF_FACTS_MAX) return;
  uint32_t dev = g->tags++;
  uint8_t role = (uint8_t)(1 + rnd(&g->rng, 3));
  if (rnd(&g->rng, 2) == 0) role = VS_MESH_ADMIN;
  uint64_t ih = hlc(g), ah = ih + rnd(&g->rng, 10);
  uint64_t expires = twist == 1 ? ah - rnd(&g->rng, 2) : MF_FOREVER; /* expired, or just in time */
  uint64_t seq = g->next_seq[inviter]++;
  mf_invite(g->s, inviter, seq, ih, dev, role, expires);
  mf_admit_at(g->s, dev, 1, ah, inviter, seq, twist == 2 ? dev + 1 : dev);
  g->role[dev] = role;
  g->next_seq[dev] = 2;
}

static void g_revoke(gen *g, uint32_t author, uint32_t target) {
  if (g->s->n + 1 > MF_FACTS_MAX) return;
  uint64_t cut = rnd(&g->rng, g->next_seq[target] + 2);
  uint64_t h = hlc(g);
  mf_revoke(g->s, author, g->next_seq[author]++, h, target, cut);
}

/* A second device admits with an existing invite (a leaked token). */
static void g_double_use(gen *g) {
  if (g->tags >= TAGS_MAX || g->s->n + 1 > MF_FACTS_MAX) return;
  uint32_t n = g->s->n;
  for (uint32_t tries = 0; tries < 8; tries++) {
    const vs_mesh_fact *f = &g->s->f[rnd(&g->rng, n)];
    if (f->kind != VS_MESH_ADMIT) continue;
    uint32_t dev = g->tags++;
    uint32_t key = (uint32_t)f->u.admit.invite_pk[0] << 8 | f->u.admit.invite_pk[1];
    uint32_t inviter = (uint32_t)f->u.admit.inviter[0] << 8 | f->u.admit.inviter[1];
    uint64_t h = f->hlc + rnd(&g->rng, 3) - 1; /* before, tied with or after the first */
    mf_admit_at(g->s, dev, 1, h, inviter, f->u.admit.invite_seq, key);
    g->role[dev] = 0;
    g->next_seq[dev] = 2;
    return;
  }
}

static void generate(gen *g, mf_set *s, uint64_t seed, uint32_t honest, uint32_t moves) {
  memset(g, 0, sizeof *g);
  memset(s, 0, sizeof *s);
  g->s = s;
  g->rng = seed;
  mf_genesis(s, 1, hlc(g));
  g->tags = 2;
  g->next_seq[1] = 2;
  g->role[1] = VS_MESH_ADMIN;
  for (uint32_t i = 0; i < honest; i++) g_join(g, pick_admin(g), 0);
  /* Every draw is its own statement: the order in which a call's
   * arguments are evaluated is unspecified, and a seed must give the same
   * sets with every compiler. */
  for (uint32_t i = 0; i < moves; i++) {
    uint32_t a, b;
    switch (rnd(&g->rng, 10)) {
      case 0: /* a revoke by an admin */
        a = pick_admin(g);
        b = pick_dev(g);
        g_revoke(g, a, b);
        break;
      case 1: /* a mutual revoke */
        a = pick_admin(g);
        b = pick_admin(g);
        g_revoke(g, a, b);
        g_revoke(g, b, a);
        break;
      case 2: /* the genesis author, by itself or another */
        a = rnd(&g->rng, 2) ? 1 : pick_admin(g);
        g_revoke(g, a, 1);
        break;
      case 3:
        g_double_use(g);
        break;
      case 4: /* an expired or mismatched admission */
        a = pick_admin(g);
        g_join(g, a, 1 + (int)rnd(&g->rng, 2));
        break;
      case 5: /* anyone (writer, reader, revoked) invites */
        g_join(g, pick_dev(g), 0);
        break;
      case 6: /* anyone revokes */
        a = pick_dev(g);
        b = pick_dev(g);
        g_revoke(g, a, b);
        break;
      case 7: /* concurrent revokes of one device */
        b = pick_dev(g);
        a = pick_admin(g);
        g_revoke(g, a, b);
        a = pick_admin(g);
        g_revoke(g, a, b);
        break;
      case 9: /* an admin or anyone rekeys: the next epochs, or a jump */
        a = rnd(&g->rng, 2) ? pick_admin(g) : pick_dev(g);
        b = rnd(&g->rng, 8) == 0 ? UINT32_MAX - (uint32_t)rnd(&g->rng, 2) : 1 + (uint32_t)rnd(&g->rng, 4);
        mf_rekey(g->s, a, g->next_seq[a]++, hlc(g), b, (uint8_t)rnd(&g->rng, 256));
        break;
      default: /* a self revoke */
        a = pick_admin(g);
        g_revoke(g, a, a);
        break;
    }
  }
}

/* ---- the invariants ---- */

static void check_invariants(const vs_mesh_view *v, uint64_t set) {
  if (!v->has_genesis) {
    assert_int_equal(v->count, 0);
    return;
  }
  uint32_t roots = 0, admins_left = 0;
  for (uint32_t i = 0; i < v->count; i++) {
    const vs_mesh_member *m = &v->members[i];
    if (i > 0) assert_true(memcmp(v->members[i - 1].pk, m->pk, VS_ORIGIN_BYTES) < 0);
    if (m->role == VS_MESH_ADMIN && !m->revoked) admins_left++;
    if (m->revoked) {
      const vs_mesh_member *r = vs_mesh_find(v, m->revoked_by);
      if (r == NULL || r->role != VS_MESH_ADMIN || (r->revoked && r->cut_seq < m->revoke_seq))
        fail_msg("set %" PRIu64 ": revoker of a member is not an admin valid at its seq", set);
    }
    if (m->depth == 0) {
      roots++;
      uint8_t zero[VS_ORIGIN_BYTES] = {0};
      assert_memory_equal(m->inviter, zero, VS_ORIGIN_BYTES);
      assert_int_equal(m->role, VS_MESH_ADMIN);
      continue;
    }
    const vs_mesh_member *p = vs_mesh_find(v, m->inviter);
    if (p == NULL || p->role != VS_MESH_ADMIN || p->depth + 1 != m->depth ||
        (p->revoked && p->cut_seq < m->invite_seq))
      fail_msg("set %" PRIu64 ": a member's inviter is not an admin member valid at the invite", set);
  }
  if (roots != 1 || admins_left == 0) fail_msg("set %" PRIu64 ": %u roots, %u unrevoked admins", set, roots, admins_left);
}

/* ---- the naive oracle: the rules of member.h, re-checked from scratch ---- */

typedef struct om {
  uint8_t pk[VS_ORIGIN_BYTES];
  uint8_t role;
  uint32_t depth;
  uint32_t invite; /* fact index, UINT32_MAX for the genesis */
} om;

typedef struct ocut {
  uint8_t pk[VS_ORIGIN_BYTES];
  uint64_t cut;
  uint32_t by; /* revoke fact index */
} ocut;

static int o_find(const om *ms, uint32_t n, const uint8_t *pk) {
  for (uint32_t i = 0; i < n; i++)
    if (memcmp(ms[i].pk, pk, VS_ORIGIN_BYTES) == 0) return (int)i;
  return -1;
}
static uint64_t o_cut(const ocut *cs, uint32_t n, const uint8_t *pk) {
  for (uint32_t i = 0; i < n; i++)
    if (memcmp(cs[i].pk, pk, VS_ORIGIN_BYTES) == 0) return cs[i].cut;
  return UINT64_MAX;
}

static bool admit_matches(const mf_set *s, uint32_t i, uint32_t *inv_out) {
  const vs_mesh_fact *a = &s->f[i];
  if (a->kind != VS_MESH_ADMIT || a->seq != 1 || memcmp(a->u.admit.mesh_id, s->mesh_id, VS_HASH_BYTES) != 0)
    return false;
  for (uint32_t j = 0; j < s->n; j++) {
    const vs_mesh_fact *in = &s->f[j];
    if (in->kind == VS_MESH_INVITE && in->seq == a->u.admit.invite_seq &&
        memcmp(in->origin, a->u.admit.inviter, VS_ORIGIN_BYTES) == 0 &&
        memcmp(in->u.invite.invite_pk, a->u.admit.invite_pk, VS_ORIGIN_BYTES) == 0 && a->hlc <= in->u.invite.expires_hlc) {
      *inv_out = j;
      return true;
    }
  }
  return false;
}

/* Members under the cuts: a fixpoint, one admission at a time. */
static uint32_t o_members(const mf_set *s, const ocut *cs, uint32_t ncs, om *ms) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->n; i++)
    if (s->f[i].kind == VS_MESH_CREATE && s->f[i].seq == 1 && memcmp(s->f[i].hash, s->mesh_id, VS_HASH_BYTES) == 0) {
      memcpy(ms[0].pk, s->f[i].origin, VS_ORIGIN_BYTES);
      ms[0].role = VS_MESH_ADMIN, ms[0].depth = 0, ms[0].invite = UINT32_MAX;
      n = 1;
    }
  if (n == 0) return 0;
  for (uint32_t round = 0; round <= s->n; round++) {
    bool changed = false;
    for (uint32_t i = 0; i < s->n; i++) {
      uint32_t inv;
      if (!admit_matches(s, i, &inv) || o_find(ms, n, s->f[i].origin) >= 0) continue;
      const vs_mesh_fact *in = &s->f[inv];
      int p = o_find(ms, n, in->origin);
      if (p < 0 || ms[p].role != VS_MESH_ADMIN || in->seq > o_cut(cs, ncs, in->origin)) continue;
      bool smallest = true;
      for (uint32_t k = 0; k < s->n; k++) {
        uint32_t inv2;
        if (k == i || !admit_matches(s, k, &inv2) || inv2 != inv) continue;
        if (s->f[k].hlc < s->f[i].hlc ||
            (s->f[k].hlc == s->f[i].hlc && memcmp(s->f[k].origin, s->f[i].origin, VS_ORIGIN_BYTES) < 0))
          smallest = false;
      }
      if (!smallest) continue;
      memcpy(ms[n].pk, s->f[i].origin, VS_ORIGIN_BYTES);
      ms[n].role = in->u.invite.role, ms[n].depth = ms[p].depth + 1, ms[n].invite = inv;
      n++;
      changed = true;
    }
    if (!changed) break;
  }
  return n;
}

/* Cuts of the taken revokes: the lowest per target, the first taken on a tie. */
static uint32_t o_cuts(const mf_set *s, const uint32_t *taken, uint32_t nt, ocut *cs) {
  uint32_t n = 0;
  for (uint32_t t = 0; t < nt; t++) {
    const vs_mesh_fact *r = &s->f[taken[t]];
    uint32_t i = 0;
    while (i < n && memcmp(cs[i].pk, r->u.revoke.device_pk, VS_ORIGIN_BYTES) != 0) i++;
    if (i == n) {
      memcpy(cs[n].pk, r->u.revoke.device_pk, VS_ORIGIN_BYTES);
      cs[n].cut = r->u.revoke.cut_seq, cs[n].by = taken[t];
      n++;
    } else if (r->u.revoke.cut_seq < cs[i].cut) {
      cs[i].cut = r->u.revoke.cut_seq, cs[i].by = taken[t];
    }
  }
  return n;
}

static bool o_sound(const mf_set *s, const uint32_t *taken, uint32_t nt, om *ms, ocut *cs, uint32_t *nm, uint32_t *nc) {
  *nc = o_cuts(s, taken, nt, cs);
  *nm = o_members(s, cs, *nc, ms);
  for (uint32_t t = 0; t < nt; t++) {
    const vs_mesh_fact *r = &s->f[taken[t]];
    int a = o_find(ms, *nm, r->origin);
    if (a < 0 || ms[a].role != VS_MESH_ADMIN || r->seq > o_cut(cs, *nc, r->origin)) return false;
    if (o_find(ms, *nm, r->u.revoke.device_pk) < 0) return false;
  }
  for (uint32_t i = 0; i < *nm; i++)
    if (ms[i].role == VS_MESH_ADMIN && o_cut(cs, *nc, ms[i].pk) == UINT64_MAX) return true;
  return false;
}

/* Seniority order of two revokes (facts x, y) by authors ax, ay. */
static int o_senior_cmp(const mf_set *s, const om *ax, const om *ay, uint32_t x, uint32_t y) {
  if (ax->depth != ay->depth) return ax->depth < ay->depth ? -1 : 1;
  uint64_t hx = ax->invite == UINT32_MAX ? 0 : s->f[ax->invite].hlc;
  uint64_t hy = ay->invite == UINT32_MAX ? 0 : s->f[ay->invite].hlc;
  if (hx != hy) return hx < hy ? -1 : 1;
  static const uint8_t zero[VS_ORIGIN_BYTES];
  int c = memcmp(ax->invite == UINT32_MAX ? zero : s->f[ax->invite].origin,
                 ay->invite == UINT32_MAX ? zero : s->f[ay->invite].origin, VS_ORIGIN_BYTES);
  if (c == 0) c = memcmp(ax->pk, ay->pk, VS_ORIGIN_BYTES);
  if (c != 0) return c;
  if (s->f[x].hlc != s->f[y].hlc) return s->f[x].hlc < s->f[y].hlc ? -1 : 1;
  return s->f[x].seq < s->f[y].seq ? -1 : s->f[x].seq > s->f[y].seq;
}

static void oracle_check(const mf_set *s, const vs_mesh_view *v, uint64_t set) {
  static om pot[MF_FACTS_MAX], ms[MF_FACTS_MAX];
  static ocut cs[MF_FACTS_MAX];
  static uint32_t order[MF_FACTS_MAX], taken[MF_FACTS_MAX], trial[MF_FACTS_MAX];
  uint32_t np = o_members(s, NULL, 0, pot), nr = 0, nt = 0, nm, nc;
  for (uint32_t i = 0; i < s->n; i++) {
    if (s->f[i].kind != VS_MESH_REVOKE) continue;
    int a = o_find(pot, np, s->f[i].origin);
    if (a < 0 || pot[a].role != VS_MESH_ADMIN) continue;
    uint32_t j = nr++; /* insertion sort by seniority */
    while (j > 0 && o_senior_cmp(s, &pot[o_find(pot, np, s->f[order[j - 1]].origin)], &pot[a], order[j - 1], i) > 0) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
  for (uint32_t k = 0; k < nr; k++) {
    memcpy(trial, taken, nt * sizeof *taken);
    trial[nt] = order[k];
    if (o_sound(s, trial, nt + 1, ms, cs, &nm, &nc)) taken[nt++] = order[k];
  }
  nc = o_cuts(s, taken, nt, cs);
  nm = o_members(s, cs, nc, ms);
  if (nm != v->count) fail_msg("set %" PRIu64 ": oracle %u members, reducer %u", set, nm, v->count);
  for (uint32_t i = 0; i < nm; i++) {
    const vs_mesh_member *m = vs_mesh_find(v, ms[i].pk);
    if (m == NULL || m->role != ms[i].role || m->depth != ms[i].depth)
      fail_msg("set %" PRIu64 ": oracle member %u differs", set, i);
    uint64_t cut = o_cut(cs, nc, ms[i].pk);
    if (m->revoked != (cut != UINT64_MAX) || (m->revoked && m->cut_seq != cut))
      fail_msg("set %" PRIu64 ": oracle cut of member %u differs", set, i);
    for (uint32_t c = 0; c < nc && m->revoked; c++)
      if (memcmp(cs[c].pk, m->pk, VS_ORIGIN_BYTES) == 0 &&
          (memcmp(s->f[cs[c].by].origin, m->revoked_by, VS_ORIGIN_BYTES) != 0 || s->f[cs[c].by].seq != m->revoke_seq))
        fail_msg("set %" PRIu64 ": oracle revoker of member %u differs", set, i);
  }
}

/* The epoch, naively: the rekeys whose author is an admin of the view not
 * past its cut; the greatest epoch reached from 1 with no gap (tried one
 * by one); of its rekeys the smallest hash. */
static void oracle_epoch(const mf_set *s, const vs_mesh_view *v, uint64_t set) {
  uint32_t reached = 0, best = UINT32_MAX;
  for (bool grew = true; grew;) {
    grew = false;
    for (uint32_t i = 0; i < s->n && !grew; i++) {
      const vs_mesh_fact *f = &s->f[i];
      if (f->kind != VS_MESH_REKEY || f->u.rekey.epoch != reached + 1u) continue;
      const vs_mesh_member *a = vs_mesh_find(v, f->origin);
      if (a == NULL || a->role != VS_MESH_ADMIN || (a->revoked && f->seq > a->cut_seq)) continue;
      reached++;
      grew = true;
    }
  }
  for (uint32_t i = 0; i < s->n && reached > 0; i++) {
    const vs_mesh_fact *f = &s->f[i];
    if (f->kind != VS_MESH_REKEY || f->u.rekey.epoch != reached) continue;
    const vs_mesh_member *a = vs_mesh_find(v, f->origin);
    if (a == NULL || a->role != VS_MESH_ADMIN || (a->revoked && f->seq > a->cut_seq)) continue;
    if (best == UINT32_MAX || memcmp(f->hash, s->f[best].hash, VS_HASH_BYTES) < 0) best = i;
  }
  if (v->epoch != reached) fail_msg("set %" PRIu64 ": oracle epoch %u, reducer %u", set, reached, v->epoch);
  if (reached > 0 && memcmp(v->epoch_hash, s->f[best].hash, VS_HASH_BYTES) != 0)
    fail_msg("set %" PRIu64 ": oracle epoch winner differs", set);
}

/* ---- order independence ---- */

static void shuffle(vs_mesh_fact *f, uint32_t n, uint64_t *rng) {
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = (uint32_t)rnd(rng, i);
    vs_mesh_fact t = f[i - 1];
    f[i - 1] = f[j];
    f[j] = t;
  }
}

static void reduce_same(const mf_set *s, const vs_mesh_fact *f, uint32_t n, uint64_t set, const char *what) {
  assert_err(vs_mesh_reduce(s->mesh_id, f, n, &g_v2), VS_OK);
  if (!mf_view_equal(&g_v1, &g_v2)) fail_msg("set %" PRIu64 ": verdict differs (%s)", set, what);
}

static void test_random_sets(void **state) {
  (void)state;
  static mf_set s;
  static gen g;
  static vs_mesh_fact perm[2 * MF_FACTS_MAX];
  uint64_t rng = g_seed, members = 0, revoked = 0, facts = 0, epochs = 0;
  printf("seed %#" PRIx64 ", %u sets\n", g_seed, g_sets);
  for (uint32_t k = 0; k < g_sets; k++) {
    uint64_t set_seed = vt_sm64(&rng);
    uint32_t honest = 1 + (uint32_t)rnd(&rng, 8);
    uint32_t moves = (uint32_t)rnd(&rng, 12);
    generate(&g, &s, set_seed, honest, moves);
    if (rnd(&rng, 50) == 0) s.mesh_id[0] ^= 1; /* sometimes without the genesis */
    assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &g_v1), VS_OK);
    check_invariants(&g_v1, k);
    oracle_check(&s, &g_v1, k);
    oracle_epoch(&s, &g_v1, k);
    members += g_v1.count;
    facts += s.n;
    epochs += g_v1.epoch > 0;
    for (uint32_t i = 0; i < g_v1.count; i++) revoked += g_v1.members[i].revoked;
    for (int p = 0; p < 4; p++) {
      memcpy(perm, s.f, s.n * sizeof *perm);
      shuffle(perm, s.n, &rng);
      reduce_same(&s, perm, s.n, k, "permuted");
    }
    uint32_t n = s.n;
    memcpy(perm, s.f, n * sizeof *perm);
    for (uint32_t d = 1 + (uint32_t)rnd(&rng, s.n); d > 0; d--) {
      uint64_t i = rnd(&rng, s.n);
      perm[n++] = s.f[i];
    }
    shuffle(perm, n, &rng);
    reduce_same(&s, perm, n, k, "duplicates");
  }
  printf("%u sets: %" PRIu64 " facts, %" PRIu64 " members, %" PRIu64 " revoked, %" PRIu64 " with an epoch\n", g_sets,
         facts, members, revoked, epochs);
  assert_true(g_sets < 100 || epochs > 0); /* the epoch oracle is not vacuous */
}

/* Every permutation of small sets (Heap's algorithm, iterative). */
static void test_every_permutation_of_small_sets(void **state) {
  (void)state;
  static mf_set s;
  static gen g;
  static vs_mesh_fact perm[MF_FACTS_MAX];
  uint64_t rng = g_seed ^ 0xa11u, perms = 0;
  for (uint32_t k = 0; k < SMALL_SETS; k++) {
    uint64_t set_seed = vt_sm64(&rng);
    uint32_t honest = 1 + (uint32_t)rnd(&rng, 2);
    uint32_t moves = 1 + (uint32_t)rnd(&rng, 2);
    generate(&g, &s, set_seed, honest, moves);
    if (s.n > 7) s.n = 7; /* a prefix: still a set of facts */
    assert_err(vs_mesh_reduce(s.mesh_id, s.f, s.n, &g_v1), VS_OK);
    check_invariants(&g_v1, k);
    oracle_check(&s, &g_v1, k);
    oracle_epoch(&s, &g_v1, k);
    uint32_t n = s.n, c[MF_FACTS_MAX] = {0};
    memcpy(perm, s.f, n * sizeof *perm);
    for (uint32_t i = 1; i < n;) {
      if (c[i] < i) {
        uint32_t j = i % 2 == 0 ? 0 : c[i];
        vs_mesh_fact t = perm[j];
        perm[j] = perm[i];
        perm[i] = t;
        reduce_same(&s, perm, n, k, "every permutation");
        perms++;
        c[i]++;
        i = 1;
      } else {
        c[i] = 0;
        i++;
      }
    }
  }
  printf("%u small sets: %" PRIu64 " permutations\n", SMALL_SETS, perms);
}

int main(int argc, char **argv) {
  if (argc > 1) g_seed = strtoull(argv[1], NULL, 0);
  if (argc > 2) g_sets = (uint32_t)strtoul(argv[2], NULL, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_sets),
      cmocka_unit_test(test_every_permutation_of_small_sets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
