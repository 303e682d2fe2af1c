/* The membership reducer (member.h): folds a set of mesh.* facts into the
 * member view. Pure: no store, no clock, no random source.
 *
 * How it works, in four passes over the facts sorted by (origin, seq):
 *  1. sort a copy, drop duplicates, refuse a fork (two different facts at
 *     one (origin, seq)); find the genesis;
 *  2. per invite, the winning admit: the smallest (hlc, device pk) of the
 *     admits (seq 1) naming it whose invite_pk, mesh id and expiry match.
 *     This does not depend on any revoke, so neither does the admission
 *     tree it spans: the "potential" tree (breadth first from the genesis,
 *     an edge per winning admit of an invite by an admin). A revoke can
 *     only prune it: a device is either a member through the same invite
 *     (same inviter, depth, seniority) or not at all. So seniority is
 *     computed once, on the potential tree;
 *  3. revokes in seniority order of their author (depth, admitting invite
 *     (hlc, inviter pk), pk; then the revoke's (hlc, seq)), each taken
 *     iff the checks of member.h hold with it and every revoke taken
 *     before. The member set under a set of cuts is one pass over the tree
 *     in breadth-first order (a parent before its children): a node is a
 *     member iff its parent is and its invite seq is <= the parent's cut.
 *     Cuts only fall as revokes are taken, so a revoke whose author or
 *     target already fails is skipped without that pass, and a revoke that
 *     does not lower its target's cut changes nothing and is taken as is;
 *  4. the view: the members of the final tree, sorted by pk, and the digest
 *     of their explicit encoding.
 *
 * Worst-case cost, F facts (<= VS_MESH_FACTS_MAX), M tree nodes (<=
 * VS_MESH_MEMBERS_MAX), R revokes (<= F): sorting O(F log F); admissions
 * O(F log F) (a binary search per admit); the tree O(F + M); revokes
 * O(R log M) for the checks plus O(M) per revoke that lowers a cut, so
 * O(R * M) = 16384 * 1024 node steps at the bounds; the view O(M log M).
 * Scratch: a copy of the facts plus O(F + M) indexes (about 4 MiB at the
 * bounds). tests/test_member.c (test_limits) builds that worst case,
 * 14,337 revokes each lowering a cut among 1,024 admins, and prints its
 * time: 110-155 ms in a Debug build, 54-94 ms in a clang Release build
 * (2026-12, the shared 2-core dev box; the spread is its load). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "internal.h"
#include "member.h"

#define NONE UINT32_MAX     /* no index */
#define CUT_NONE UINT64_MAX /* not revoked */
/* Duplicates are allowed, but the copy must be bounded: a caller passes a
 * set, possibly with each op twice (two sources). */
#define INPUT_MAX (2u * VS_MESH_FACTS_MAX)

_Static_assert(VS_MESH_FACTS_MAX <= INPUT_MAX && INPUT_MAX < NONE, "fact indexes fit a u32 with NONE spare");
_Static_assert(VS_MESH_MEMBERS_MAX < NONE, "node indexes fit a u32");

typedef struct node {
  uint32_t admit;  /* fact index of its admit (the create for the genesis) */
  uint32_t invite; /* fact index of the invite that admitted it, NONE for the genesis */
  uint32_t parent; /* node index, NONE for the genesis */
  uint32_t depth;
  uint8_t role;
} node;

typedef struct red {
  const uint8_t *mesh_id;
  vs_mesh_fact *f; /* sorted, distinct */
  uint32_t n;
  node *nodes; /* the potential tree, breadth-first order */
  uint32_t node_count;
  uint32_t *by_pk; /* node indexes sorted by pk */
  uint32_t *winner; /* per fact: for an invite, the winning admit's fact index, or NONE */
  /* the greedy state, per node */
  uint64_t *cut;
  uint32_t *cut_by;     /* the revoke fact that set the cut */
  uint64_t *taken_max;  /* highest seq of a taken revoke it authored, 0: none */
  bool *targeted;       /* a taken revoke names it */
  bool *mem;            /* member under the taken revokes */
  uint64_t *cut_try;    /* scratch for a tentative revoke */
  bool *mem_try;
} red;

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

static int fact_cmp(const void *a, const void *b) {
  const vs_mesh_fact *x = a, *y = b;
  int c = memcmp(x->origin, y->origin, VS_ORIGIN_BYTES);
  return c != 0 ? c : cmp_u64(x->seq, y->seq);
}

/* Field by field: a struct's padding and a union's unused bytes are not
 * part of a fact. */
static bool fact_equal(const vs_mesh_fact *x, const vs_mesh_fact *y) {
  if (memcmp(x->origin, y->origin, VS_ORIGIN_BYTES) != 0 || x->seq != y->seq || x->hlc != y->hlc ||
      memcmp(x->hash, y->hash, VS_HASH_BYTES) != 0 || x->kind != y->kind)
    return false;
  switch (x->kind) {
    case VS_MESH_INVITE: {
      const vs_mesh_invite_pl *a = &x->u.invite, *b = &y->u.invite;
      return memcmp(a->invite_pk, b->invite_pk, VS_ORIGIN_BYTES) == 0 && a->role == b->role &&
             a->expires_hlc == b->expires_hlc;
    }
    case VS_MESH_ADMIT: {
      const vs_mesh_admit_pl *a = &x->u.admit, *b = &y->u.admit;
      return memcmp(a->mesh_id, b->mesh_id, VS_HASH_BYTES) == 0 &&
             memcmp(a->inviter, b->inviter, VS_ORIGIN_BYTES) == 0 && a->invite_seq == b->invite_seq &&
             memcmp(a->invite_pk, b->invite_pk, VS_ORIGIN_BYTES) == 0 &&
             memcmp(a->invite_sig, b->invite_sig, VS_SIGNATURE_BYTES) == 0;
    }
    case VS_MESH_REVOKE: {
      const vs_mesh_revoke_pl *a = &x->u.revoke, *b = &y->u.revoke;
      return memcmp(a->device_pk, b->device_pk, VS_ORIGIN_BYTES) == 0 && a->cut_seq == b->cut_seq &&
             memcmp(a->cut_hash, b->cut_hash, VS_HASH_BYTES) == 0 &&
             memcmp(a->cut_sig, b->cut_sig, VS_SIGNATURE_BYTES) == 0;
    }
    default:
      return true; /* create and rekey: the hash says the rest */
  }
}

/* Copy, sort, dedupe, refuse forks. */
static vs_err load(red *r, const vs_mesh_fact *facts, uint32_t count) {
  if (count == 0) return VS_OK;
  r->f = malloc((size_t)count * sizeof *r->f);
  if (r->f == NULL) return VS_ERR_NOMEM;
  memcpy(r->f, facts, (size_t)count * sizeof *r->f);
  qsort(r->f, count, sizeof *r->f, fact_cmp);
  uint32_t n = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (n > 0 && fact_cmp(&r->f[n - 1], &r->f[i]) == 0) {
      if (!fact_equal(&r->f[n - 1], &r->f[i])) return VS_ERR_INVAL; /* a fork */
      continue;
    }
    if (n != i) r->f[n] = r->f[i];
    n++;
  }
  r->n = n;
  return n > VS_MESH_FACTS_MAX ? VS_ERR_LIMIT : VS_OK;
}

/* The fact at (origin, seq), or NONE. */
static uint32_t fact_find(const red *r, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  uint32_t lo = 0, hi = r->n;
  while (lo < hi) { /* at most 32 rounds */
    uint32_t mid = lo + (hi - lo) / 2;
    int c = memcmp(r->f[mid].origin, origin, VS_ORIGIN_BYTES);
    if (c == 0) c = cmp_u64(r->f[mid].seq, seq);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NONE;
}

/* The first fact of `origin` (its lowest seq), or r->n. */
static uint32_t origin_first(const red *r, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint32_t lo = 0, hi = r->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (memcmp(r->f[mid].origin, origin, VS_ORIGIN_BYTES) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Per invite, the admit that wins it (pass 2). */
static void pick_winners(red *r) {
  for (uint32_t i = 0; i < r->n; i++) r->winner[i] = NONE;
  for (uint32_t i = 0; i < r->n; i++) {
    const vs_mesh_fact *a = &r->f[i];
    if (a->kind != VS_MESH_ADMIT || a->seq != 1) continue;
    if (memcmp(a->u.admit.mesh_id, r->mesh_id, VS_HASH_BYTES) != 0) continue;
    uint32_t inv = fact_find(r, a->u.admit.inviter, a->u.admit.invite_seq);
    if (inv == NONE || r->f[inv].kind != VS_MESH_INVITE) continue;
    const vs_mesh_invite_pl *in = &r->f[inv].u.invite;
    if (memcmp(in->invite_pk, a->u.admit.invite_pk, VS_ORIGIN_BYTES) != 0) continue;
    if (a->hlc > in->expires_hlc) continue;
    uint32_t w = r->winner[inv];
    if (w != NONE) {
      const vs_mesh_fact *b = &r->f[w];
      int c = cmp_u64(a->hlc, b->hlc);
      if (c == 0) c = memcmp(a->origin, b->origin, VS_ORIGIN_BYTES);
      if (c >= 0) continue;
    }
    r->winner[inv] = i;
  }
}

/* The potential tree, breadth first from the genesis fact `g` (pass 2). */
static vs_err build_tree(red *r, uint32_t g) {
  r->nodes[0] = (node){.admit = g, .invite = NONE, .parent = NONE, .depth = 0, .role = VS_MESH_ADMIN};
  r->node_count = 1;
  for (uint32_t q = 0; q < r->node_count; q++) { /* each node is queued once: <= M rounds */
    const node *p = &r->nodes[q];
    if (p->role != VS_MESH_ADMIN) continue;
    const uint8_t *pk = r->f[p->admit].origin;
    for (uint32_t i = origin_first(r, pk); i < r->n && memcmp(r->f[i].origin, pk, VS_ORIGIN_BYTES) == 0; i++) {
      if (r->f[i].kind != VS_MESH_INVITE || r->winner[i] == NONE) continue;
      if (r->node_count == VS_MESH_MEMBERS_MAX) return VS_ERR_LIMIT;
      assert(r->f[r->winner[i]].kind == VS_MESH_ADMIT && r->f[r->winner[i]].seq == 1);
      /* a device has one seq 1, so one admit, which wins at most one invite:
       * no device is queued twice */
      r->nodes[r->node_count++] = (node){.admit = r->winner[i], .invite = i, .parent = q,
                                         .depth = p->depth + 1, .role = r->f[i].u.invite.role};
    }
  }
  return VS_OK;
}

static const uint8_t *node_pk(const red *r, uint32_t k) { return r->f[r->nodes[k].admit].origin; }

/* qsort has no context argument: the reducer is not re-entrant through
 * these two, so they sort (pk, index) and (key, index) records instead. */
typedef struct pk_rec {
  uint8_t pk[VS_ORIGIN_BYTES];
  uint32_t k;
} pk_rec;
static int pk_rec_cmp(const void *a, const void *b) {
  return memcmp(((const pk_rec *)a)->pk, ((const pk_rec *)b)->pk, VS_ORIGIN_BYTES);
}

/* Node index of pk, or NONE. */
static uint32_t node_find(const red *r, const uint8_t pk[VS_ORIGIN_BYTES]) {
  uint32_t lo = 0, hi = r->node_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = memcmp(node_pk(r, r->by_pk[mid]), pk, VS_ORIGIN_BYTES);
    if (c == 0) return r->by_pk[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NONE;
}

/* A revoke in greedy order: its author's seniority, then (hlc, seq). */
typedef struct rv_rec {
  uint32_t depth;
  uint64_t inv_hlc;
  uint8_t inviter[VS_ORIGIN_BYTES];
  uint8_t pk[VS_ORIGIN_BYTES];
  uint64_t hlc, seq;
  uint32_t fact, author;
} rv_rec;
static int rv_rec_cmp(const void *a, const void *b) {
  const rv_rec *x = a, *y = b;
  int c = cmp_u64(x->depth, y->depth);
  if (c == 0) c = cmp_u64(x->inv_hlc, y->inv_hlc);
  if (c == 0) c = memcmp(x->inviter, y->inviter, VS_ORIGIN_BYTES);
  if (c == 0) c = memcmp(x->pk, y->pk, VS_ORIGIN_BYTES);
  if (c == 0) c = cmp_u64(x->hlc, y->hlc);
  if (c == 0) c = cmp_u64(x->seq, y->seq);
  return c;
}

/* Members under `cut`, one pass in breadth-first order. */
static void members_under(const red *r, const uint64_t *cut, bool *mem) {
  mem[0] = true;
  for (uint32_t k = 1; k < r->node_count; k++) {
    const node *d = &r->nodes[k];
    assert(d->parent < k);
    mem[k] = mem[d->parent] && r->f[d->invite].seq <= cut[d->parent];
  }
}

/* Whether the tentative state (cut_try, mem_try) keeps every taken revoke
 * valid and an unrevoked admin. */
static bool tentative_sound(const red *r) {
  bool admin_left = false;
  for (uint32_t k = 0; k < r->node_count; k++) {
    if (r->taken_max[k] != 0 && (!r->mem_try[k] || r->taken_max[k] > r->cut_try[k])) return false;
    if (r->targeted[k] && !r->mem_try[k]) return false;
    if (r->mem_try[k] && r->nodes[k].role == VS_MESH_ADMIN && r->cut_try[k] == CUT_NONE) admin_left = true;
  }
  return admin_left;
}

/* Pass 3: one revoke `rv` by node `a`. */
static void take_revoke(red *r, const rv_rec *rv) {
  const vs_mesh_fact *fr = &r->f[rv->fact];
  uint32_t a = rv->author;
  uint32_t t = node_find(r, fr->u.revoke.device_pk);
  uint64_t cut = fr->u.revoke.cut_seq;
  if (VS_FAULT(VS_FAULT_REVOKE_LAST_ADMIN) && t != NONE && cut < r->cut[t]) { /* fault: taken unchecked */
    r->cut[t] = cut;
    r->cut_by[t] = rv->fact;
    members_under(r, r->cut, r->mem);
    return;
  }
  /* Cuts only fall: what fails now fails with this revoke too. */
  if (t == NONE || !r->mem[a] || fr->seq > r->cut[a] || !r->mem[t]) return;
  if (cut < r->cut[t]) {
    memcpy(r->cut_try, r->cut, (size_t)r->node_count * sizeof *r->cut);
    r->cut_try[t] = cut;
    members_under(r, r->cut_try, r->mem_try);
    /* with it: its author still valid at its seq, its target a member */
    if (!r->mem_try[a] || fr->seq > r->cut_try[a] || !r->mem_try[t]) return;
    if (!tentative_sound(r)) return;
    r->cut[t] = cut;
    r->cut_by[t] = rv->fact;
    memcpy(r->mem, r->mem_try, (size_t)r->node_count * sizeof *r->mem);
  }
  assert(r->mem[0] && r->mem[a] && r->mem[t] && fr->seq <= r->cut[a]);
  /* else: the target is already cut as low; nothing changes, it is taken */
  if (fr->seq > r->taken_max[a]) r->taken_max[a] = fr->seq;
  r->targeted[t] = true;
}

static vs_err revokes(red *r) {
  for (uint32_t k = 0; k < r->node_count; k++) {
    r->cut[k] = CUT_NONE;
    r->cut_by[k] = NONE;
    r->taken_max[k] = 0;
    r->targeted[k] = false;
  }
  members_under(r, r->cut, r->mem);
  uint32_t nrv = 0;
  for (uint32_t i = 0; i < r->n; i++) nrv += r->f[i].kind == VS_MESH_REVOKE;
  if (nrv == 0) return VS_OK;
  rv_rec *rv = malloc((size_t)nrv * sizeof *rv);
  if (rv == NULL) return VS_ERR_NOMEM;
  uint32_t m = 0;
  for (uint32_t i = 0; i < r->n; i++) {
    if (r->f[i].kind != VS_MESH_REVOKE) continue;
    uint32_t a = node_find(r, r->f[i].origin);
    if (a == NONE || r->nodes[a].role != VS_MESH_ADMIN) continue; /* never effective */
    rv_rec *x = &rv[m++];
    memset(x, 0, sizeof *x);
    const node *d = &r->nodes[a];
    x->depth = d->depth;
    if (d->invite != NONE) {
      x->inv_hlc = r->f[d->invite].hlc;
      memcpy(x->inviter, r->f[d->invite].origin, VS_ORIGIN_BYTES);
    }
    memcpy(x->pk, r->f[i].origin, VS_ORIGIN_BYTES);
    x->hlc = r->f[i].hlc;
    x->seq = r->f[i].seq;
    x->fact = i;
    x->author = a;
  }
  qsort(rv, m, sizeof *rv, rv_rec_cmp);
  for (uint32_t j = 0; j < m; j++) take_revoke(r, &rv[j]);
  free(rv);
  return VS_OK;
}

/* Pass 4: the view and its digest. */
static void fill_member(const red *r, uint32_t k, vs_mesh_member *m) {
  const node *d = &r->nodes[k];
  const vs_mesh_fact *adm = &r->f[d->admit];
  memcpy(m->pk, adm->origin, VS_ORIGIN_BYTES);
  m->role = d->role;
  m->depth = d->depth;
  m->admit_hlc = adm->hlc;
  if (d->invite != NONE) {
    memcpy(m->inviter, r->f[d->invite].origin, VS_ORIGIN_BYTES);
    m->invite_seq = r->f[d->invite].seq;
    m->invite_hlc = r->f[d->invite].hlc;
  }
  if (r->cut[k] != CUT_NONE) {
    assert(r->cut_by[k] < r->n && r->f[r->cut_by[k]].kind == VS_MESH_REVOKE);
    const vs_mesh_fact *rv = &r->f[r->cut_by[k]];
    m->revoked = true;
    m->cut_seq = r->cut[k];
    memcpy(m->revoked_by, rv->origin, VS_ORIGIN_BYTES);
    m->revoke_seq = rv->seq;
  }
}

/* A rekey whose author is an admin member valid at its seq (under the
 * taken revokes). */
static bool rekey_valid(const red *r, const vs_mesh_fact *f) {
  if (f->kind != VS_MESH_REKEY) return false;
  uint32_t k = node_find(r, f->origin);
  if (k == NONE || !r->mem[k] || r->nodes[k].role != VS_MESH_ADMIN) return false;
  return r->cut[k] == CUT_NONE || f->seq <= r->cut[k];
}

/* The epoch: the greatest the valid rekeys reach without a gap
 * (vs_mesh_epoch_reached), then of its rekeys the smallest op hash.
 * Bounded by the facts (two passes); `epochs` is scratch for r->n. */
static void pick_epoch(const red *r, uint32_t *epochs, vs_mesh_view *v) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < r->n; i++)
    if (rekey_valid(r, &r->f[i])) epochs[n++] = r->f[i].u.rekey.epoch;
  uint32_t reached = vs_mesh_epoch_reached(epochs, n);
  uint32_t best = NONE;
  for (uint32_t i = 0; i < r->n && reached > 0; i++) {
    const vs_mesh_fact *f = &r->f[i];
    if (!rekey_valid(r, f) || f->u.rekey.epoch != reached) continue;
    if (best != NONE && memcmp(f->hash, r->f[best].hash, VS_HASH_BYTES) >= 0) continue;
    best = i;
  }
  if (best == NONE) return;
  const vs_mesh_fact *b = &r->f[best];
  v->epoch = b->u.rekey.epoch;
  memcpy(v->epoch_origin, b->origin, VS_ORIGIN_BYTES);
  v->epoch_seq = b->seq;
  memcpy(v->epoch_hash, b->hash, VS_HASH_BYTES);
}

#define MEMBER_WIRE_BYTES (32u + 1u + 4u + 32u + 8u + 8u + 8u + 1u + 8u + 32u + 8u)

/* "vixsync mesh view v1" || mesh_id || has_genesis u8 || count u32le ||
 * per member (pk order): pk, role u8, depth u32le, inviter, invite_seq,
 * invite_hlc, admit_hlc (u64le), revoked u8, cut_seq u64le, revoked_by,
 * revoke_seq u64le. */
static void digest(vs_mesh_view *v) {
  static const char tag[] = "vixsync mesh view v1";
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)tag, sizeof tag - 1);
  uint8_t head[VS_HASH_BYTES + 1 + 4];
  memcpy(head, v->mesh_id, VS_HASH_BYTES);
  head[VS_HASH_BYTES] = v->has_genesis ? 1 : 0;
  vs_put_u32le(head + VS_HASH_BYTES + 1, v->count);
  crypto_generichash_update(&st, head, sizeof head);
  for (uint32_t i = 0; i < v->count; i++) {
    const vs_mesh_member *m = &v->members[i];
    uint8_t b[MEMBER_WIRE_BYTES], *p = b;
    memcpy(p, m->pk, 32), p += 32;
    *p++ = m->role;
    vs_put_u32le(p, m->depth), p += 4;
    memcpy(p, m->inviter, 32), p += 32;
    vs_put_u64le(p, m->invite_seq), p += 8;
    vs_put_u64le(p, m->invite_hlc), p += 8;
    vs_put_u64le(p, m->admit_hlc), p += 8;
    *p++ = m->revoked ? 1 : 0;
    vs_put_u64le(p, m->cut_seq), p += 8;
    memcpy(p, m->revoked_by, 32), p += 32;
    vs_put_u64le(p, m->revoke_seq), p += 8;
    assert(p == b + sizeof b);
    crypto_generichash_update(&st, b, sizeof b);
  }
  if (v->epoch > 0) { /* views without a rekey keep the digest they had */
    uint8_t e[4 + VS_ORIGIN_BYTES + 8 + VS_HASH_BYTES];
    vs_put_u32le(e, v->epoch);
    memcpy(e + 4, v->epoch_origin, VS_ORIGIN_BYTES);
    vs_put_u64le(e + 4 + VS_ORIGIN_BYTES, v->epoch_seq);
    memcpy(e + 4 + VS_ORIGIN_BYTES + 8, v->epoch_hash, VS_HASH_BYTES);
    crypto_generichash_update(&st, e, sizeof e);
  }
  int rc = crypto_generichash_final(&st, v->digest, VS_HASH_BYTES);
  assert(rc == 0);
  (void)rc;
}

static vs_err alloc_scratch(red *r) {
  size_t n = r->n, m = VS_MESH_MEMBERS_MAX;
  r->winner = malloc(n * sizeof *r->winner);
  r->nodes = malloc(m * sizeof *r->nodes);
  r->by_pk = malloc(m * sizeof *r->by_pk);
  r->cut = malloc(m * sizeof *r->cut);
  r->cut_by = malloc(m * sizeof *r->cut_by);
  r->taken_max = malloc(m * sizeof *r->taken_max);
  r->targeted = malloc(m * sizeof *r->targeted);
  r->mem = malloc(m * sizeof *r->mem);
  r->cut_try = malloc(m * sizeof *r->cut_try);
  r->mem_try = malloc(m * sizeof *r->mem_try);
  if (r->winner == NULL || r->nodes == NULL || r->by_pk == NULL || r->cut == NULL || r->cut_by == NULL ||
      r->taken_max == NULL || r->targeted == NULL || r->mem == NULL || r->cut_try == NULL || r->mem_try == NULL)
    return VS_ERR_NOMEM;
  return VS_OK;
}

static void free_scratch(red *r) {
  free(r->f);
  free(r->winner);
  free(r->nodes);
  free(r->by_pk);
  free(r->cut);
  free(r->cut_by);
  free(r->taken_max);
  free(r->targeted);
  free(r->mem);
  free(r->cut_try);
  free(r->mem_try);
}

/* Nodes sorted by pk into r->by_pk. */
static vs_err index_by_pk(red *r) {
  pk_rec *recs = malloc((size_t)r->node_count * sizeof *recs);
  if (recs == NULL) return VS_ERR_NOMEM;
  for (uint32_t k = 0; k < r->node_count; k++) {
    memcpy(recs[k].pk, node_pk(r, k), VS_ORIGIN_BYTES);
    recs[k].k = k;
  }
  qsort(recs, r->node_count, sizeof *recs, pk_rec_cmp);
  for (uint32_t k = 0; k < r->node_count; k++) {
    /* one node per device: the genesis has no admit, a device one seq 1 */
    assert(k == 0 || memcmp(recs[k - 1].pk, recs[k].pk, VS_ORIGIN_BYTES) < 0);
    r->by_pk[k] = recs[k].k;
  }
  free(recs);
  return VS_OK;
}

static vs_err reduce(red *r, const vs_mesh_fact *facts, uint32_t count, vs_mesh_view *v) {
  vs_err err = load(r, facts, count);
  if (err != VS_OK) return err;
  uint32_t g = NONE;
  for (uint32_t i = 0; i < r->n && g == NONE; i++)
    if (r->f[i].kind == VS_MESH_CREATE && r->f[i].seq == 1 && memcmp(r->f[i].hash, r->mesh_id, VS_HASH_BYTES) == 0)
      g = i;
  if (g == NONE) return VS_OK; /* no genesis: no members */
  v->has_genesis = true;
  if ((err = alloc_scratch(r)) != VS_OK) return err;
  pick_winners(r);
  if ((err = build_tree(r, g)) != VS_OK) return err;
  if ((err = index_by_pk(r)) != VS_OK) return err;
  if ((err = revokes(r)) != VS_OK) return err;
  for (uint32_t j = 0; j < r->node_count; j++) { /* pk order */
    uint32_t k = r->by_pk[j];
    if (r->mem[k]) fill_member(r, k, &v->members[v->count++]);
  }
  uint32_t *epochs = malloc((size_t)(r->n > 0 ? r->n : 1) * sizeof *epochs);
  if (epochs == NULL) return VS_ERR_NOMEM;
  pick_epoch(r, epochs, v);
  free(epochs);
  return VS_OK;
}

vs_err vs_mesh_reduce(const uint8_t mesh_id[VS_HASH_BYTES], const vs_mesh_fact *facts, uint32_t count,
                      vs_mesh_view *view_out) {
  if (mesh_id == NULL || view_out == NULL || (facts == NULL && count > 0)) return VS_ERR_INVAL;
  if (count > INPUT_MAX) return VS_ERR_LIMIT;
  memset(view_out, 0, sizeof *view_out);
  memcpy(view_out->mesh_id, mesh_id, VS_HASH_BYTES);
  red r;
  memset(&r, 0, sizeof r);
  r.mesh_id = mesh_id;
  vs_err err = reduce(&r, facts, count, view_out);
  free_scratch(&r);
  if (err != VS_OK) {
    memset(view_out, 0, sizeof *view_out);
    return err;
  }
  assert(view_out->count <= VS_MESH_MEMBERS_MAX);
  digest(view_out);
  return VS_OK;
}

const vs_mesh_member *vs_mesh_find(const vs_mesh_view *view, const uint8_t pk[VS_ORIGIN_BYTES]) {
  if (view == NULL || pk == NULL || view->count > VS_MESH_MEMBERS_MAX) return NULL;
  uint32_t lo = 0, hi = view->count;
  while (lo < hi) { /* at most 11 rounds */
    uint32_t mid = lo + (hi - lo) / 2;
    int c = memcmp(view->members[mid].pk, pk, VS_ORIGIN_BYTES);
    if (c == 0) return &view->members[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

bool vs_mesh_op_valid(const vs_mesh_view *view, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, bool data) {
  const vs_mesh_member *m = vs_mesh_find(view, origin);
  if (m == NULL || seq == 0) return false;
  if (data && m->role == VS_MESH_READER) return false;
  if (!data && seq == 1) return true; /* its own admit (the genesis: its create) */
  return !m->revoked || seq <= m->cut_seq;
}

bool vs_mesh_active(const vs_mesh_view *view, const uint8_t pk[VS_ORIGIN_BYTES]) {
  const vs_mesh_member *m = vs_mesh_find(view, pk);
  return m != NULL && !m->revoked;
}
