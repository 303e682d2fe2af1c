/* The membership gate (src/mgate.h, docs/membership.md) under attack:
 * real signed mesh.* ops built by hand (tests/mesh_ops.h) are applied as a
 * peer's runs to managed observer stores (vs_apply_run), and each attack
 * must leave the attacked store as it was (last LSN, state hash, heads,
 * vs_mesh_members) while honest writes still take; arrival orders of one
 * set of ops must end in one verdict on every store (heads, state hash,
 * members). A test named for a defect it found is skipped in the default
 * run (cmocka skip()) until the library is fixed: see its comment. */
#define MESH_CH_OPS 1100u
#include "mesh_ops.h"

#define NOW MESH_NOW_MS
#define MV_MAX 32u
#define FLOOD_IDS 2000u
#define FREEZE_ADMINS 15u /* the admins one hostile admin admits to fill the mesh */

/* ---- what a store shows ---- */

typedef struct world {
  uint64_t lsn, records;
  uint8_t state[VS_HASH_BYTES];
  uint32_t count;
  vs_mesh_member_info m[MV_MAX];
} world;

static void world_take(vs_store *s, world *w) {
  memset(w, 0, sizeof *w);
  w->lsn = last_lsn(s);
  w->records = mesh_records(s);
  state_hash(s, w->state);
  assert_err(vs_mesh_members(s, w->m, MV_MAX, &w->count), VS_OK);
  assert_true(w->count <= MV_MAX);
}

/* The same members (pk, role, depth, inviter, revoked, cut, revoker, head)
 * and the same state hash. */
static void world_same(const world *a, const world *b) {
  assert_memory_equal(a->state, b->state, VS_HASH_BYTES);
  assert_int_equal(a->count, b->count);
  for (uint32_t i = 0; i < a->count; i++) {
    const vs_mesh_member_info *x = &a->m[i], *y = &b->m[i];
    assert_memory_equal(x->pk, y->pk, VS_ORIGIN_BYTES);
    assert_int_equal(x->role, y->role);
    assert_int_equal(x->depth, y->depth);
    assert_memory_equal(x->admitted_by, y->admitted_by, VS_ORIGIN_BYTES);
    assert_int_equal(x->admitted_hlc, y->admitted_hlc);
    assert_int_equal(x->revoked, y->revoked);
    assert_int_equal(x->cut_seq, y->cut_seq);
    assert_memory_equal(x->revoked_by, y->revoked_by, VS_ORIGIN_BYTES);
    assert_int_equal(x->head_seq, y->head_seq);
    assert_int_equal(x->head_hlc, y->head_hlc);
  }
}

/* Nothing changed at all: that, and the WAL and the records. */
static void world_unchanged(vs_store *s, const world *before) {
  world now;
  world_take(s, &now);
  world_same(before, &now);
  assert_int_equal(now.lsn, before->lsn);
  assert_int_equal(now.records, before->records);
}

static void stores_agree(vs_store *a, vs_store *b) {
  world x, y;
  world_take(a, &x);
  world_take(b, &y);
  world_same(&x, &y);
}

static const vs_mesh_member_info *member_pk(const world *w, const uint8_t pk[VS_ORIGIN_BYTES]) {
  for (uint32_t i = 0; i < w->count; i++)
    if (memcmp(w->m[i].pk, pk, VS_ORIGIN_BYTES) == 0) return &w->m[i];
  return NULL;
}

static const vs_mesh_member_info *member(const world *w, const chain *c) { return member_pk(w, c->id.pk); }

static uint64_t head_of(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t seq = 0;
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_wal_head(s, origin, &seq, h, NULL), VS_OK);
  return seq;
}

static vs_err seen_cb(const vs_state_entry *e, void *ctx) {
  (void)e;
  *(bool *)ctx = true;
  return VS_OK;
}

static bool has_value(vs_store *s, const char *target) {
  bool seen = false;
  vs_err err = vs_state_get(s, (const uint8_t *)target, (uint32_t)strlen(target), false, seen_cb, &seen);
  assert_true(err == VS_OK || err == VS_ERR_NOTFOUND);
  return seen;
}

/* A managed observer of g's mesh (g: its genesis chain). */
static void observer(node *n, const char *tag, uint8_t salt, const chain *g) {
  node_open(n, tag, salt);
  mesh_manage(n->store, g->hashes[0]);
}

/* An honest write still takes: c's next data op, applied alone. */
static void honest_write(vs_store *s, chain *c, uint64_t ms, const char *target) {
  uint64_t lsn = last_lsn(s);
  uint64_t seq = chain_put(c, ms, target, "honest");
  assert_err(apply_seqs(s, c, seq, seq, NULL), VS_OK);
  assert_int_equal(last_lsn(s), lsn + 1);
  assert_int_equal(head_of(s, c->id.pk), seq);
  assert_true(has_value(s, target));
}

/* ------------------------------------------------------------------------ */

/* 1. 2,000 fresh identities each send one signed run: data ops, a forged
 *    admit (a real invite, a bad invite signature), an admit naming an
 *    invite that is not there, an admit naming a data op or a non-member
 *    as its invite, an admit signed by the invite key for another mesh, a
 *    genesis of another mesh. None is stored. */
static void test_hostile_origin_flood(void **state) {
  (void)state;
  node s;
  chain *g = chain_new(0x11), *w = chain_new(0x22), *x = chain_new(0x23);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  uint64_t g_data = chain_data(g, 3);
  observer(&s, "hostile-flood", 1, g);
  assert_err(apply_seqs(s.store, g, 1, g->seq, NULL), VS_OK);
  chain_admit(w, 10, mesh_id, g, inv, 0x71, NULL);
  chain_put(w, 11, "w", "1");
  assert_err(apply_seqs(s.store, w, 1, 2, NULL), VS_OK);
  world before;
  world_take(s.store, &before);
  assert_int_equal(before.count, 2);
  uint32_t refused[7] = {0};
  for (uint32_t i = 0; i < FLOOD_IDS; i++) {
    uint8_t seed[VS_SEED_BYTES];
    memset(seed, 0xa5, sizeof seed);
    seed[0] = (uint8_t)i;
    seed[1] = (uint8_t)(i >> 8);
    chain_init_seed(x, seed);
    uint8_t p[VS_MESH_ADMIT_BYTES];
    vs_err want = VS_ERR_NOT_MEMBER;
    uint32_t kind = i % 7u;
    switch (kind) {
      case 0: /* data ops */
        chain_put(x, 20, "flood", "x");
        chain_data(x, 21);
        break;
      case 1: /* the real invite, its signature broken */
        admit_payload(p, mesh_id, g->id.pk, inv, 0x71, x->id.pk, NULL);
        p[VS_MESH_ADMIT_BYTES - 1] ^= 0x01;
        chain_add(x, 20, VS_MESH_KIND_ADMIT, VS_MESH_TARGET, p, sizeof p);
        chain_put(x, 21, "flood", "x");
        want = VS_ERR_AUTH;
        break;
      case 2: /* a signed admit naming an invite that is not held */
        chain_admit_hlc(x, hlc_at(20), mesh_id, g->id.pk, 9, 0x71, NULL);
        chain_put(x, 21, "flood", "x");
        break;
      case 3: /* naming G's data op as its invite */
        chain_admit_hlc(x, hlc_at(20), mesh_id, g->id.pk, g_data, 0x71, NULL);
        break;
      case 4: /* naming a non-member (itself) as its inviter */
        chain_admit_hlc(x, hlc_at(20), mesh_id, x->id.pk, 2, 0x71, NULL);
        chain_put(x, 21, "flood", "x");
        break;
      case 5: { /* the real invite, its key's signature, another mesh's id */
        uint8_t other[VS_HASH_BYTES];
        memcpy(other, mesh_id, sizeof other);
        other[0] ^= 0x01;
        chain_admit_hlc(x, hlc_at(20), other, g->id.pk, inv, 0x71, NULL);
        chain_put(x, 21, "flood", "x");
        break;
      }
      default: /* the genesis of another mesh */
        chain_create(x, 20);
        chain_put(x, 21, "flood", "x");
        break;
    }
    assert_err(apply_seqs(s.store, x, 1, x->seq, NULL), want);
    /* the same first op through vs_wal_append (an import): the same gate */
    if (i < 70) assert_err(vs_wal_append(s.store, &x->ops[0], NOW, NULL), want);
    assert_int_equal(head_of(s.store, x->id.pk), 0);
    refused[kind]++;
  }
  for (uint32_t k = 0; k < 7; k++) assert_true(refused[k] >= FLOOD_IDS / 7u);
  world_unchanged(s.store, &before);
  assert_false(has_value(s.store, "flood"));
  honest_write(s.store, g, 30, "g-after");
  honest_write(s.store, w, 31, "w-after");
  chain_free(g);
  chain_free(w);
  chain_free(x);
  node_close(&s);
}

/* What a run with inert ops (8adc28d) may change: the WAL grows by its
 * ops, nothing else (no fact record, the same members and state). */
static void world_inert(vs_store *s, const world *before, uint64_t ops) {
  world now;
  world_take(s, &now);
  assert_int_equal(now.lsn, before->lsn + ops);
  assert_int_equal(now.records, before->records);
  assert_memory_equal(now.state, before->state, VS_HASH_BYTES);
  assert_int_equal(now.count, before->count);
  for (uint32_t i = 0; i < now.count; i++) {
    assert_memory_equal(now.m[i].pk, before->m[i].pk, VS_ORIGIN_BYTES);
    assert_int_equal(now.m[i].role, before->m[i].role);
    assert_int_equal(now.m[i].revoked, before->m[i].revoked);
    assert_int_equal(now.m[i].cut_seq, before->m[i].cut_seq);
  }
}

/* 2. A member's fresh identities are not members: a writer's invite and
 *    revoke stay in its chain without effect (inert, 8adc28d: no fact
 *    record), and admits naming that invite or its data op admit nobody. */
static void test_hostile_member_fresh_ids(void **state) {
  (void)state;
  node s;
  chain *g = chain_new(0x11), *w = chain_new(0x22), *x = chain_new(0x23);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  observer(&s, "hostile-fresh", 1, g);
  assert_err(apply_seqs(s.store, g, 1, g->seq, NULL), VS_OK);
  chain_admit(w, 10, mesh_id, g, inv, 0x71, NULL);
  uint64_t w_data = chain_put(w, 11, "w", "1");
  assert_err(apply_seqs(s.store, w, 1, 2, NULL), VS_OK);
  world before;
  world_take(s.store, &before);
  /* The writer signs an invite for a key of its own: kept, inert. */
  uint64_t w_inv = chain_invite(w, 12, VS_MESH_ADMIN, 0x81);
  assert_err(apply_seqs(s.store, w, w_inv, w_inv, NULL), VS_OK);
  world_inert(s.store, &before, 1);
  /* and a revoke of the genesis author: inert too */
  uint64_t w_rev = chain_revoke(w, 13, g, 1);
  assert_err(apply_seqs(s.store, w, w_rev, w_rev, NULL), VS_OK);
  world_inert(s.store, &before, 2);
  world_take(s.store, &before);
  /* Its fresh keys admit themselves with what it signed: nobody gets in. */
  for (uint32_t i = 0; i < 64; i++) {
    uint8_t seed[VS_SEED_BYTES];
    memset(seed, 0x5a, sizeof seed);
    seed[0] = (uint8_t)i;
    chain_init_seed(x, seed);
    chain_admit_hlc(x, hlc_at(20), mesh_id, w->id.pk, i % 2 ? w_inv : w_data, 0x81, NULL);
    chain_put(x, 21, "fresh", "x");
    assert_err(apply_seqs(s.store, x, 1, x->seq, NULL), VS_ERR_NOT_MEMBER);
    assert_int_equal(head_of(s.store, x->id.pk), 0);
  }
  world_unchanged(s.store, &before);
  honest_write(s.store, w, 30, "w-after");
  honest_write(s.store, g, 31, "g-after");
  chain_free(g);
  chain_free(w);
  chain_free(x);
  node_close(&s);
}

/* 2b. The run that opens a new member's chain (its admit, then more) is
 *     judged with the role the admit gives: a writer's or reader's invite
 *     or revoke riding behind its admit is kept without effect, and an
 *     admin's invites past VS_MESH_AUTHOR_FACTS_MAX get no fact record,
 *     as one run later. */
static void test_hostile_opening_run_smuggles_facts(void **state) {
  (void)state;
  node s;
  chain *g = chain_new(0x11), *v = chain_new(0x31), *r = chain_new(0x32), *n = chain_new(0x33);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv_w = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  uint64_t inv_r = chain_invite(g, 3, VS_MESH_READER, 0x72);
  uint64_t inv_a = chain_invite(g, 4, VS_MESH_ADMIN, 0x73);
  observer(&s, "hostile-smuggle", 1, g);
  assert_err(apply_seqs(s.store, g, 1, g->seq, NULL), VS_OK);
  uint64_t recs = mesh_records(s.store);
  /* a writer: admit, invite (of a key the test holds) */
  chain_admit(v, 10, mesh_id, g, inv_w, 0x71, NULL);
  uint64_t v_inv = chain_invite(v, 11, VS_MESH_ADMIN, 0x91);
  assert_err(apply_seqs(s.store, v, 1, 2, NULL), VS_OK);
  assert_int_equal(mesh_records(s.store), recs + 1u); /* the admit only */
  /* a reader: admit, revoke of G */
  chain_admit(r, 12, mesh_id, g, inv_r, 0x72, NULL);
  chain_revoke(r, 13, g, 1);
  assert_err(apply_seqs(s.store, r, 1, 2, NULL), VS_OK);
  assert_int_equal(mesh_records(s.store), recs + 2u);
  world w;
  world_take(s.store, &w);
  assert_false(member(&w, g)->revoked);
  /* the writer's invite admits nobody */
  chain *x = chain_new(0x34);
  chain_admit(x, 14, mesh_id, v, v_inv, 0x91, NULL);
  assert_err(apply_seqs(s.store, x, 1, 1, NULL), VS_ERR_NOT_MEMBER);
  chain_free(x);
  /* an admin: admit, then one invite more than its quota */
  chain_admit(n, 14, mesh_id, g, inv_a, 0x73, NULL);
  for (uint32_t i = 0; i <= VS_MESH_AUTHOR_FACTS_MAX; i++) chain_invite(n, 15, VS_MESH_WRITER, (uint8_t)i);
  assert_int_equal(n->seq, VS_MESH_AUTHOR_FACTS_MAX + 2u);
  assert_err(apply_seqs(s.store, n, 1, n->seq, NULL), VS_OK);
  assert_int_equal(mesh_records(s.store), recs + 3u + VS_MESH_AUTHOR_FACTS_MAX);
  world_take(s.store, &w);
  assert_int_equal(w.count, 4);
  assert_int_equal(head_of(s.store, n->id.pk), n->seq);
  /* the same ops on a store that gets them one run at a time: the same */
  node s2;
  observer(&s2, "hostile-smuggle2", 2, g);
  assert_err(apply_seqs(s2.store, g, 1, g->seq, NULL), VS_OK);
  chain *all[3] = {v, r, n};
  for (int i = 0; i < 3; i++)
    for (uint64_t q = 1; q <= all[i]->seq; q++) assert_err(apply_seqs(s2.store, all[i], q, q, NULL), VS_OK);
  assert_int_equal(mesh_records(s2.store), mesh_records(s.store));
  stores_agree(s.store, s2.store);
  chain_free(g);
  chain_free(v);
  chain_free(r);
  chain_free(n);
  node_close(&s);
  node_close(&s2);
}

/* 3. A double-used invite: of two admits naming one invite the smallest
 *    (hlc, device pk) wins on every store in either order of arrival; the
 *    loser's ops are void where it came first. */
static void double_use(const uint8_t *mesh_id, chain *g, uint64_t inv, uint8_t key, uint64_t hlc_x, uint64_t hlc_y,
                       chain *x, chain *y, node *s1, node *s2, const char *tx, const char *ty) {
  chain_admit_hlc(x, hlc_x, mesh_id, g->id.pk, inv, key, NULL);
  chain_put(x, 101, tx, "1");
  chain_admit_hlc(y, hlc_y, mesh_id, g->id.pk, inv, key, NULL);
  chain_put(y, 102, ty, "1");
  bool x_wins = hlc_x < hlc_y || (hlc_x == hlc_y && memcmp(x->id.pk, y->id.pk, VS_ORIGIN_BYTES) < 0);
  chain *win = x_wins ? x : y, *lose = x_wins ? y : x;
  /* s1: x then y; s2: y then x */
  assert_err(apply_seqs(s1->store, x, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s1->store, y, 1, 2, NULL), x_wins ? VS_ERR_NOT_MEMBER : VS_OK);
  assert_err(apply_seqs(s2->store, y, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s2->store, x, 1, 2, NULL), x_wins ? VS_OK : VS_ERR_NOT_MEMBER);
  node *both[2] = {s1, s2};
  for (int i = 0; i < 2; i++) {
    vs_store *s = both[i]->store;
    assert_int_equal(head_of(s, lose->id.pk), 0);
    assert_int_equal(head_of(s, win->id.pk), 2);
    assert_true(has_value(s, win == x ? tx : ty));
    assert_false(has_value(s, lose == x ? tx : ty));
    world w;
    world_take(s, &w);
    assert_non_null(member(&w, win));
    assert_null(member(&w, lose));
    /* the loser's run again: refused, nothing stored */
    assert_err(apply_seqs(s, lose, 1, 2, NULL), VS_ERR_NOT_MEMBER);
    world_unchanged(s, &w);
  }
  stores_agree(s1->store, s2->store);
}

static void test_hostile_double_used_invite(void **state) {
  (void)state;
  node s1, s2;
  chain *g = chain_new(0x11), *x = chain_new(0x41), *y = chain_new(0x42), *p = chain_new(0x43), *q = chain_new(0x44);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  uint64_t inv2 = chain_invite(g, 3, VS_MESH_ADMIN, 0x72);
  observer(&s1, "hostile-dbl1", 1, g);
  observer(&s2, "hostile-dbl2", 2, g);
  assert_err(apply_seqs(s1.store, g, 1, g->seq, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, g, 1, g->seq, NULL), VS_OK);
  /* the later arrival on s1 has the smaller hlc */
  double_use(mesh_id, g, inv, 0x71, hlc_at(100), hlc_at(50), x, y, &s1, &s2, "x", "y");
  /* one hlc: the smaller pk wins */
  double_use(mesh_id, g, inv2, 0x72, hlc_at(60), hlc_at(60), p, q, &s1, &s2, "p", "q");
  world w;
  world_take(s1.store, &w);
  assert_int_equal(w.count, 3);
  honest_write(s1.store, g, 200, "g-after");
  chain_free(g);
  chain_free(x);
  chain_free(y);
  chain_free(p);
  chain_free(q);
  node_close(&s1);
  node_close(&s2);
}

/* 4. An expired invite admits nobody (admit hlc > expires_hlc); at the
 *    expiry exactly it still does. */
static void test_hostile_expired_invite(void **state) {
  (void)state;
  node s;
  chain *g = chain_new(0x11), *x = chain_new(0x41), *y = chain_new(0x42);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite_exp(g, 2, VS_MESH_WRITER, 0x71, hlc_at(100));
  observer(&s, "hostile-expired", 1, g);
  assert_err(apply_seqs(s.store, g, 1, g->seq, NULL), VS_OK);
  world before;
  world_take(s.store, &before);
  chain_admit_hlc(x, hlc_at(100) + 1u, mesh_id, g->id.pk, inv, 0x71, NULL);
  chain_put(x, 120, "x", "1");
  assert_err(apply_seqs(s.store, x, 1, 2, NULL), VS_ERR_NOT_MEMBER);
  world_unchanged(s.store, &before);
  assert_int_equal(head_of(s.store, x->id.pk), 0);
  chain_admit_hlc(y, hlc_at(100), mesh_id, g->id.pk, inv, 0x71, NULL);
  chain_put(y, 120, "y", "1");
  assert_err(apply_seqs(s.store, y, 1, 2, NULL), VS_OK);
  assert_true(has_value(s.store, "y"));
  /* signed by another key than the one invited: nobody either */
  chain *z = chain_new(0x43);
  chain_admit_hlc(z, hlc_at(50), mesh_id, g->id.pk, inv, 0x75, NULL);
  assert_err(apply_seqs(s.store, z, 1, 1, NULL), VS_ERR_NOT_MEMBER);
  assert_int_equal(head_of(s.store, z->id.pk), 0);
  chain_free(z);
  /* the expired admit does not take the invite from the one in time */
  assert_err(apply_seqs(s.store, x, 1, 2, NULL), VS_ERR_NOT_MEMBER);
  world w;
  world_take(s.store, &w);
  assert_int_equal(w.count, 2);
  assert_non_null(member(&w, y));
  chain_free(g);
  chain_free(x);
  chain_free(y);
  node_close(&s);
}

/* 5. A hostile admin writes invites up to VS_MESH_AUTHOR_FACTS_MAX: its
 *    next one is without effect (inert) on every store however its runs
 *    came;
 *    another admin still revokes it, and later ones are REVOKED. Its
 *    invites past the cut keep their records (efe8b4a): no room is given
 *    back (see test_hostile_mesh_facts_freeze). */
static void test_hostile_invite_flood(void **state) {
  (void)state;
  node s1, s2, s3;
  chain *g = chain_new(0x11), *a = chain_new(0x22);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite(g, 2, VS_MESH_ADMIN, 0x72);
  chain_admit(a, 10, mesh_id, g, inv, 0x72, NULL);
  for (uint32_t i = 0; i < VS_MESH_AUTHOR_FACTS_MAX; i++) chain_invite(a, 11, VS_MESH_WRITER, (uint8_t)i);
  const uint64_t full = a->seq; /* 1 + VS_MESH_AUTHOR_FACTS_MAX */
  uint64_t extra = chain_invite(a, 12, VS_MESH_WRITER, 0xee);
  observer(&s1, "hostile-iflood1", 1, g);
  observer(&s2, "hostile-iflood2", 2, g);
  observer(&s3, "hostile-iflood3", 3, g);
  assert_err(apply_seqs(s1.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, g, 1, 2, NULL), VS_OK);
  /* s1 in runs of 256, s2 in one run */
  for (uint64_t from = 1; from <= full; from += 256u) {
    uint64_t to = from + 255u < full ? from + 255u : full;
    assert_err(apply_seqs(s1.store, a, from, to, NULL), VS_OK);
  }
  assert_err(apply_seqs(s2.store, a, 1, full, NULL), VS_OK);
  node *two[2] = {&s1, &s2};
  for (int i = 0; i < 2; i++) {
    world before;
    world_take(two[i]->store, &before);
    assert_int_equal(before.records, 3u + VS_MESH_AUTHOR_FACTS_MAX);
    /* past its quota: kept in its chain without effect (8adc28d) */
    assert_err(apply_seqs(two[i]->store, a, extra, extra, NULL), VS_OK);
    world_inert(two[i]->store, &before, 1);
    assert_err(apply_seqs(two[i]->store, a, full - 10u, extra, NULL), VS_OK);
    world_inert(two[i]->store, &before, 1);
  }
  stores_agree(s1.store, s2.store);
  /* G revokes A with a cut in the middle of its invites. */
  const uint64_t cut = 513;
  uint64_t rev = chain_revoke(g, 20, a, cut);
  assert_err(apply_seqs(s1.store, g, rev, rev, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, g, rev, rev, NULL), VS_OK);
  /* s3: the revoke before any op of A */
  assert_err(apply_seqs(s3.store, g, 1, rev, NULL), VS_OK);
  assert_err(apply_seqs(s3.store, a, 1, full, NULL), VS_OK);
  node *all[3] = {&s1, &s2, &s3};
  for (int i = 0; i < 3; i++) {
    vs_store *s = all[i]->store;
    assert_int_equal(head_of(s, a->id.pk), cut);
    world w;
    world_take(s, &w);
    const vs_mesh_member_info *ma = member(&w, a);
    assert_non_null(ma);
    assert_true(ma->revoked);
    assert_int_equal(ma->cut_seq, cut);
    /* and its record counts them all */
    MDB_txn *txn;
    vs_mesh_rec rec;
    assert_err(vs_txn_begin(s, false, &txn), VS_OK);
    assert_err(vs_mesh_rec_get_txn(txn, s, a->id.pk, &rec), VS_OK);
    mdb_txn_abort(txn);
    /* s1, s2 held A's invites past the cut when the revoke came: a cut
     * keeps their records (8adc28d); s3 got A's chain after the revoke and
     * kept it up to the cut only (see test_hostile_cut_records_order) */
    assert_int_equal(rec.facts, i < 2 ? VS_MESH_AUTHOR_FACTS_MAX : cut - 1u);
    assert_int_equal(mesh_records(s), i < 2 ? 3u + full : 3u + cut);
    assert_err(apply_seqs(s, a, extra, extra, NULL), VS_ERR_REVOKED);
    assert_err(apply_seqs(s, a, cut + 1u, full, NULL), VS_ERR_REVOKED);
    world_unchanged(s, &w);
  }
  stores_agree(s1.store, s2.store);
  stores_agree(s1.store, s3.store);
  /* The other admin still invites. */
  uint64_t g_inv = chain_invite(g, 30, VS_MESH_WRITER, 0x99);
  for (int i = 0; i < 3; i++) assert_err(apply_seqs(all[i]->store, g, g_inv, g_inv, NULL), VS_OK);
  chain_free(g);
  chain_free(a);
  node_close(&s1);
  node_close(&s2);
  node_close(&s3);
}

/* 5d. DEFECT (junk revokes fill the mesh): revokes are held back only by
 *     VS_MESH_FACTS_MAX, the room kept for them (efe8b4a) is shared, and
 *     a revoke of a key that is no member is stored (it does nothing). H
 *     admits 15 admin keys of its own, and H and they write revokes of
 *     made-up keys until the store holds VS_MESH_FACTS_MAX records: then
 *     G's revoke of H gets no record (inert since 8adc28d, LIMIT before),
 *     and H and its admins can never be put out (docs/membership.md names
 *     it: "four hostile admins fill the revokes' room").
 *     A revoke whose target is no member could be refused (DENIED) or not
 *     counted, or the revokes' room kept per revoker. Skipped in the
 *     default run (VS_RUN_DEFECTS=1 runs it). */
static void test_hostile_junk_revokes_freeze(void **state) {
  (void)state;
  if (getenv("VS_RUN_DEFECTS") == NULL) skip(); /* DEFECT: see the comment above */
  node s;
  chain *g = chain_new(0x11), *h = chain_new(0x22);
  chain *sub[FREEZE_ADMINS];
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv_h = chain_invite(g, 2, VS_MESH_ADMIN, 0x72);
  observer(&s, "hostile-junk", 1, g);
  assert_err(apply_seqs(s.store, g, 1, g->seq, NULL), VS_OK);
  chain_admit(h, 10, mesh_id, g, inv_h, 0x72, NULL);
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) chain_invite(h, 11, VS_MESH_ADMIN, (uint8_t)(0x80u + j));
  uint8_t junk[VS_ORIGIN_BYTES];
  memset(junk, 0x6b, sizeof junk);
  uint32_t made = 0;
  while (h->seq < 1u + VS_MESH_AUTHOR_FACTS_MAX) {
    junk[0] = (uint8_t)made;
    junk[1] = (uint8_t)(made >> 8);
    made++;
    chain_revoke_pk(h, 12, junk);
  }
  assert_err(apply_seqs(s.store, h, 1, h->seq, NULL), VS_OK);
  /* H's admins are admitted first (admits are facts that stop at
   * VS_MESH_NONREVOKE_FACTS_MAX), then they write their revokes */
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) {
    sub[j] = chain_new((uint8_t)(0xa0u + j));
    chain_admit(sub[j], 20, mesh_id, h, 2u + j, (uint8_t)(0x80u + j), NULL);
    assert_err(apply_seqs(s.store, sub[j], 1, 1, NULL), VS_OK);
  }
  uint64_t held = mesh_records(s.store);
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) {
    uint64_t room = VS_MESH_FACTS_MAX - held;
    uint64_t n = room < VS_MESH_AUTHOR_FACTS_MAX ? room : VS_MESH_AUTHOR_FACTS_MAX;
    if (n == 0) break;
    for (uint64_t i = 0; i < n; i++) {
      junk[0] = (uint8_t)made;
      junk[1] = (uint8_t)(made >> 8);
      made++;
      chain_revoke_pk(sub[j], 21, junk);
    }
    held += n;
    assert_err(apply_seqs(s.store, sub[j], 2, sub[j]->seq, NULL), VS_OK);
  }
  assert_int_equal(mesh_records(s.store), VS_MESH_FACTS_MAX);
  /* G puts H out: its revoke must take. */
  uint64_t rev = chain_revoke(g, 30, h, 1);
  assert_err(apply_seqs(s.store, g, rev, rev, NULL), VS_OK);
  world w;
  world_take(s.store, &w);
  assert_true(member(&w, h)->revoked); /* today: not revoked, the revoke is inert */
  chain_free(g);
  chain_free(h);
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) chain_free(sub[j]);
  node_close(&s);
}

/* 5e. DEFECT (what a cut leaves counted depends on arrival order): a
 *     store that held A's invites past its cut when the revoke came keeps
 *     their fact records (8adc28d: the reducer ignores them, a more senior
 *     revoke may lift the cut), one that got the revoke first keeps A's
 *     chain up to the cut only. So the two hold different record counts
 *     (the mesh's room) and different counts of A's facts (its quota):
 *     near a bound one store records an invite the other keeps inert, and
 *     the member sets part; were A's cut lifted, its next facts would be
 *     recorded on one and inert on the other. Skipped in the default run
 *     (VS_RUN_DEFECTS=1 runs it). */
static void test_hostile_cut_records_order(void **state) {
  (void)state;
  if (getenv("VS_RUN_DEFECTS") == NULL) skip(); /* DEFECT: see the comment above */
  node s1, s2;
  chain *g = chain_new(0x11), *a = chain_new(0x22);
  chain_create(g, 1);
  uint64_t inv = chain_invite(g, 2, VS_MESH_ADMIN, 0x72);
  chain_admit(a, 10, g->hashes[0], g, inv, 0x72, NULL);
  for (uint32_t i = 0; i < 8; i++) chain_invite(a, 11, VS_MESH_WRITER, (uint8_t)i);
  uint64_t rev = chain_revoke(g, 20, a, 3);
  observer(&s1, "hostile-cutrec1", 1, g);
  observer(&s2, "hostile-cutrec2", 2, g);
  assert_err(apply_seqs(s1.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s1.store, a, 1, a->seq, NULL), VS_OK);
  assert_err(apply_seqs(s1.store, g, rev, rev, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, g, 1, rev, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, a, 1, a->seq, NULL), VS_OK);
  stores_agree(s1.store, s2.store);
  assert_int_equal(mesh_records(s1.store), mesh_records(s2.store)); /* today: 12 and 6 */
  chain_free(g);
  chain_free(a);
  node_close(&s1);
  node_close(&s2);
}

/* Relay `origin`'s chain from src to dst by src's stored signatures (a
 * zero one where a revoke vouches), as anti-entropy does. */
static vs_err relay(vs_store *src, vs_store *dst, const uint8_t origin[VS_ORIGIN_BYTES]) {
  oplist *l = collect(src, origin);
  vs_err err = VS_OK;
  uint64_t seq = 1;
  while (seq <= l->count && err == VS_OK) { /* bounded: each round moves seq past a run */
    uint64_t end = 0;
    err = vs_apply_next_signed(src, origin, seq, &end);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK;
      break;
    }
    assert_err(err, VS_OK);
    assert_true(end >= seq && end <= l->count);
    uint8_t sig[VS_SIGNATURE_BYTES];
    assert_err(vs_apply_sig_get(src, &l->ops[end - 1].id, sig), VS_OK);
    vs_apply_result res;
    err = vs_apply_run(dst, &l->ops[seq - 1], (uint32_t)(end - seq + 1), sig, MESH_NOW_MS, MESH_DRIFT_MS, &res);
    seq = end + 1;
  }
  oplist_free(l);
  return err;
}

/* 6. A revoke before or after the target's ops past the cut, on three
 *    stores: one verdict (heads, state hash, members); the held part up to
 *    the cut relays on. */
static void test_hostile_revoke_orders(void **state) {
  (void)state;
  node p, q, r, t;
  chain *g = chain_new(0x11), *b = chain_new(0x22);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  chain_admit(b, 10, mesh_id, g, inv, 0x71, NULL);
  chain_put(b, 11, "b2", "1");
  chain_put(b, 12, "b3", "1");
  chain_put(b, 13, "b4", "1");
  chain_put(b, 14, "b5", "1");
  uint64_t rev = chain_revoke(g, 20, b, 3);
  observer(&p, "hostile-ord-p", 1, g);
  observer(&q, "hostile-ord-q", 2, g);
  observer(&r, "hostile-ord-r", 3, g);
  observer(&t, "hostile-ord-t", 4, g);
  /* p: the revoke last (voids 4..5) */
  assert_err(apply_seqs(p.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(p.store, b, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(p.store, b, 4, 5, NULL), VS_OK);
  assert_err(apply_seqs(p.store, g, rev, rev, NULL), VS_OK);
  /* q: the revoke first, then B's whole chain as one run */
  assert_err(apply_seqs(q.store, g, 1, rev, NULL), VS_OK);
  assert_err(apply_seqs(q.store, b, 1, 5, NULL), VS_OK);
  /* r: the revoke between */
  assert_err(apply_seqs(r.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(r.store, b, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(r.store, g, rev, rev, NULL), VS_OK);
  assert_err(apply_seqs(r.store, b, 4, 5, NULL), VS_ERR_REVOKED);
  node *all[3] = {&p, &q, &r};
  for (int i = 0; i < 3; i++) {
    vs_store *s = all[i]->store;
    assert_int_equal(head_of(s, b->id.pk), 3);
    assert_true(has_value(s, "b3"));
    assert_false(has_value(s, "b4"));
    assert_false(has_value(s, "b5"));
    world w;
    world_take(s, &w);
    assert_int_equal(w.count, 2);
    const vs_mesh_member_info *mb = member(&w, b);
    assert_non_null(mb);
    assert_true(mb->revoked);
    assert_int_equal(mb->cut_seq, 3);
  }
  stores_agree(p.store, q.store);
  stores_agree(p.store, r.store);
  /* p's B (signed at 3 by B) relays on to a store holding the revoke. */
  assert_err(apply_seqs(t.store, g, 1, rev, NULL), VS_OK);
  assert_err(relay(p.store, t.store, b->id.pk), VS_OK);
  assert_int_equal(head_of(t.store, b->id.pk), 3);
  stores_agree(p.store, t.store);
  honest_write(p.store, g, 40, "g-after");
  chain_free(g);
  chain_free(b);
  node_close(&p);
  node_close(&q);
  node_close(&r);
  node_close(&t);
}

/* 6b. DEFECT (a chain a revoke cut in its opening run does not relay): q
 *     took B's opening run 1..5 (signed at 5 only) after the revoke with
 *     cut 3, kept 1..3 and gave op 3 the zero signature (the revoke
 *     vouches for it). Relayed from q, B's 1..3 comes with that zero
 *     signature to t, which holds the revoke but not B's admission: the
 *     revoke is not effective there (its target is no member), so
 *     vs_mesh_cut_txn gives no void point, nothing vouches, and the run is
 *     VS_ERR_FORKED. B's admit is in that very run, so t can never take it
 *     from q: where q's is the only copy (B wrote 1..5 in one commit and
 *     went away), B's valid ops 1..3 never spread and the stores diverge.
 *     The cut of a held revoke naming a non-member would have to count as
 *     a void point for the run that opens its chain (then the refold
 *     decides). Skipped in the default run until it does. */
static void test_hostile_revoke_vouched_relay(void **state) {
  (void)state;
  /* fixed: the revoke carries the device's own signature at the cut */
  node q, t;
  chain *g = chain_new(0x11), *b = chain_new(0x22);
  chain_create(g, 1);
  uint64_t inv = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  chain_admit(b, 10, g->hashes[0], g, inv, 0x71, NULL);
  chain_put(b, 11, "b2", "1");
  chain_put(b, 12, "b3", "1");
  chain_put(b, 13, "b4", "1");
  chain_put(b, 14, "b5", "1");
  uint64_t rev = chain_revoke(g, 20, b, 3);
  observer(&q, "hostile-vrel-q", 1, g);
  observer(&t, "hostile-vrel-t", 2, g);
  assert_err(apply_seqs(q.store, g, 1, rev, NULL), VS_OK);
  assert_err(apply_seqs(q.store, b, 1, 5, NULL), VS_OK);
  assert_int_equal(head_of(q.store, b->id.pk), 3);
  assert_err(apply_seqs(t.store, g, 1, rev, NULL), VS_OK);
  assert_err(relay(q.store, t.store, b->id.pk), VS_OK);
  assert_int_equal(head_of(t.store, b->id.pk), 3);
  stores_agree(q.store, t.store);
  chain_free(g);
  chain_free(b);
  node_close(&q);
  node_close(&t);
}

/* 7. Cascade: G invites admin B, B invites C; G revokes B with a cut below
 *    B's invite of C: C is no member and its ops are void, in every order. */
static void test_hostile_cascade(void **state) {
  (void)state;
  node s1, s2, s3;
  chain *g = chain_new(0x11), *b = chain_new(0x22), *c = chain_new(0x33);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv_b = chain_invite(g, 2, VS_MESH_ADMIN, 0x72);
  chain_admit(b, 10, mesh_id, g, inv_b, 0x72, NULL);
  chain_put(b, 11, "b2", "1");
  uint64_t inv_c = chain_invite(b, 12, VS_MESH_WRITER, 0x73);
  chain_put(b, 13, "b4", "1");
  chain_admit(c, 20, mesh_id, b, inv_c, 0x73, NULL);
  chain_put(c, 21, "c2", "1");
  uint64_t rev = chain_revoke(g, 30, b, 2);
  observer(&s1, "hostile-casc1", 1, g);
  observer(&s2, "hostile-casc2", 2, g);
  observer(&s3, "hostile-casc3", 3, g);
  /* s1: everything, then the revoke */
  assert_err(apply_seqs(s1.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s1.store, b, 1, 4, NULL), VS_OK);
  assert_err(apply_seqs(s1.store, c, 1, 2, NULL), VS_OK);
  assert_true(has_value(s1.store, "c2"));
  assert_err(apply_seqs(s1.store, g, rev, rev, NULL), VS_OK);
  /* s2: the revoke first */
  assert_err(apply_seqs(s2.store, g, 1, rev, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, b, 1, 4, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, c, 1, 2, NULL), VS_ERR_NOT_MEMBER);
  /* s3: the revoke between B's ops */
  assert_err(apply_seqs(s3.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s3.store, b, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s3.store, g, rev, rev, NULL), VS_OK);
  assert_err(apply_seqs(s3.store, b, 3, 4, NULL), VS_ERR_REVOKED);
  assert_err(apply_seqs(s3.store, c, 1, 2, NULL), VS_ERR_NOT_MEMBER);
  node *all[3] = {&s1, &s2, &s3};
  for (int i = 0; i < 3; i++) {
    vs_store *s = all[i]->store;
    assert_int_equal(head_of(s, b->id.pk), 2);
    assert_int_equal(head_of(s, c->id.pk), 0);
    assert_false(has_value(s, "c2"));
    assert_false(has_value(s, "b4"));
    assert_true(has_value(s, "b2"));
    world w;
    world_take(s, &w);
    assert_int_equal(w.count, 2);
    assert_null(member(&w, c));
    assert_true(member(&w, b)->revoked);
  }
  stores_agree(s1.store, s2.store);
  stores_agree(s1.store, s3.store);
  chain_free(g);
  chain_free(b);
  chain_free(c);
  node_close(&s1);
  node_close(&s2);
  node_close(&s3);
}

/* 8. The mutual revoke of docs/membership.md: G invites admins A (hlc 10)
 *    and B (hlc 20); A revokes B with cut 3 at A's seq 6, B revokes A with
 *    cut 5 at B's seq 4. Every replica: A and G active, B revoked at 3. */
typedef struct mutual {
  chain *g, *a, *b;
  uint64_t a_rev, b_rev;
} mutual;

static void mutual_build(mutual *m) {
  m->g = chain_new(0x11);
  m->a = chain_new(0x22);
  m->b = chain_new(0x33);
  chain_create(m->g, 1);
  const uint8_t *mesh_id = m->g->hashes[0];
  uint64_t inv_a = chain_invite(m->g, 10, VS_MESH_ADMIN, 0x72);
  uint64_t inv_b = chain_invite(m->g, 20, VS_MESH_ADMIN, 0x73);
  chain_admit(m->a, 30, mesh_id, m->g, inv_a, 0x72, NULL);
  chain_put(m->a, 31, "a2", "1");
  chain_put(m->a, 32, "a3", "1");
  chain_put(m->a, 33, "a4", "1");
  chain_put(m->a, 34, "a5", "1");
  chain_admit(m->b, 40, mesh_id, m->g, inv_b, 0x73, NULL);
  chain_put(m->b, 41, "b2", "1");
  chain_put(m->b, 42, "b3", "1");
  m->a_rev = chain_revoke(m->a, 50, m->b, 3);
  m->b_rev = chain_revoke(m->b, 51, m->a, 5);
  assert_int_equal(m->a_rev, 6);
  assert_int_equal(m->b_rev, 4);
}

static void mutual_free(mutual *m) {
  chain_free(m->g);
  chain_free(m->a);
  chain_free(m->b);
}

static void mutual_verdict(vs_store *s, const mutual *m) {
  assert_int_equal(head_of(s, m->a->id.pk), 6);
  assert_int_equal(head_of(s, m->b->id.pk), 3);
  assert_true(has_value(s, "a5"));
  assert_true(has_value(s, "b3"));
  world w;
  world_take(s, &w);
  assert_int_equal(w.count, 3);
  assert_false(member(&w, m->a)->revoked);
  assert_false(member(&w, m->g)->revoked);
  assert_true(member(&w, m->b)->revoked);
  assert_int_equal(member(&w, m->b)->cut_seq, 3);
}

static void test_hostile_mutual_revoke(void **state) {
  (void)state;
  mutual m;
  mutual_build(&m);
  node x, z, w;
  observer(&x, "hostile-mut-x", 1, m.g);
  observer(&z, "hostile-mut-z", 2, m.g);
  observer(&w, "hostile-mut-w", 3, m.g);
  /* x: A's revoke, then B's (past B's new cut) */
  assert_err(apply_seqs(x.store, m.g, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(x.store, m.a, 1, 5, NULL), VS_OK);
  assert_err(apply_seqs(x.store, m.b, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(x.store, m.a, 6, 6, NULL), VS_OK);
  assert_err(apply_seqs(x.store, m.b, 4, 4, NULL), VS_ERR_REVOKED);
  /* z: A's chain whole, then B's whole (cut to 1..3) */
  assert_err(apply_seqs(z.store, m.g, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(z.store, m.a, 1, 6, NULL), VS_OK);
  assert_err(apply_seqs(z.store, m.b, 1, 4, NULL), VS_OK);
  /* w: B's chain whole while A is no member yet, then A's (offered three
   * times, as anti-entropy does) */
  assert_err(apply_seqs(w.store, m.g, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(w.store, m.b, 1, 4, NULL), VS_OK);
  assert_err(apply_seqs(w.store, m.a, 1, 6, NULL), VS_OK);
  /* there A came in cut at 5 by B's revoke (the admit is folded first)
   * and its own revoke past that cut was dropped: A's chain offered again
   * (anti-entropy) keeps it as an orphan, the refold lifts A's cut, and
   * one more offer takes A's op 6 */
  for (int round = 0; round < 2; round++) (void)apply_seqs(w.store, m.a, 1, 6, NULL);
  mutual_verdict(x.store, &m);
  mutual_verdict(z.store, &m);
  mutual_verdict(w.store, &m);
  stores_agree(x.store, z.store);
  stores_agree(x.store, w.store);
  node_close(&x);
  node_close(&z);
  node_close(&w);
  mutual_free(&m);
}

/* 8b. The same mutual revoke where B's revoke of A arrives first: the
 *     store holds A revoked at 5, so A's revoke at seq 6 is past A's cut
 *     and refused (VS_ERR_REVOKED), but kept as an orphan record
 *     (af8447d; this test found the divergence before it): the refold
 *     takes it first by seniority, B is cut at 3 (its revoke at 4 voided)
 *     and A's cut is lifted, so A's op 6, offered again, is taken. The
 *     verdict of every other order. */
static void test_hostile_mutual_revoke_junior_first(void **state) {
  (void)state;
  mutual m;
  mutual_build(&m);
  node y, x;
  observer(&y, "hostile-mut-y", 1, m.g);
  observer(&x, "hostile-mut-y2", 2, m.g);
  assert_err(apply_seqs(y.store, m.g, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(y.store, m.a, 1, 5, NULL), VS_OK);
  assert_err(apply_seqs(y.store, m.b, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(y.store, m.b, 4, 4, NULL), VS_OK); /* B's revoke: A cut at 5 for now */
  world w;
  world_take(y.store, &w);
  assert_true(member(&w, m.a)->revoked);
  assert_err(apply_seqs(y.store, m.a, 6, 6, NULL), VS_ERR_REVOKED); /* kept as an orphan */
  world_take(y.store, &w);
  assert_false(member(&w, m.a)->revoked);
  assert_true(member(&w, m.b)->revoked);
  assert_int_equal(head_of(y.store, m.b->id.pk), 3);
  /* offered again (anti-entropy): now taken */
  assert_err(apply_seqs(y.store, m.a, 1, 6, NULL), VS_OK);
  mutual_verdict(y.store, &m);
  /* and the same as a store that got A's revoke first */
  assert_err(apply_seqs(x.store, m.g, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(x.store, m.a, 1, 6, NULL), VS_OK);
  assert_err(apply_seqs(x.store, m.b, 1, 4, NULL), VS_OK);
  stores_agree(x.store, y.store);
  node_close(&y);
  node_close(&x);
  mutual_free(&m);
}

/* 9. Replay: the same admit run and the same revoke run applied again
 *    change nothing. */
static void test_hostile_replay(void **state) {
  (void)state;
  node s;
  chain *g = chain_new(0x11), *x = chain_new(0x41);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  observer(&s, "hostile-replay", 1, g);
  assert_err(apply_seqs(s.store, g, 1, 2, NULL), VS_OK);
  chain_admit(x, 10, mesh_id, g, inv, 0x71, NULL);
  chain_put(x, 11, "x2", "1");
  assert_err(apply_seqs(s.store, x, 1, 2, NULL), VS_OK);
  world w;
  world_take(s.store, &w);
  vs_apply_result res;
  assert_err(apply_seqs(s.store, x, 1, 2, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 2);
  world_unchanged(s.store, &w);
  uint64_t rev = chain_revoke(g, 20, x, 1);
  assert_err(apply_seqs(s.store, g, rev, rev, NULL), VS_OK);
  assert_false(has_value(s.store, "x2"));
  world_take(s.store, &w);
  for (int i = 0; i < 2; i++) {
    assert_err(apply_seqs(s.store, g, rev, rev, &res), VS_OK);
    assert_int_equal(res.applied, 0);
    assert_err(apply_seqs(s.store, g, 1, rev, &res), VS_OK);
    assert_int_equal(res.applied, 0);
    /* the admit alone again: held, vouched by the revoke */
    assert_err(apply_seqs(s.store, x, 1, 1, &res), VS_OK);
    assert_int_equal(res.applied, 0);
    world_unchanged(s.store, &w);
  }
  assert_int_equal(member(&w, x)->cut_seq, 1);
  /* an admit naming the revoke as its invite admits nobody */
  chain *y = chain_new(0x42);
  chain_admit(y, 30, mesh_id, g, rev, 0x71, NULL);
  assert_err(apply_seqs(s.store, y, 1, 1, NULL), VS_ERR_NOT_MEMBER);
  world_unchanged(s.store, &w);
  chain_free(y);
  chain_free(g);
  chain_free(x);
  node_close(&s);
}

/* 9b. Replay of a revoked admin's revoke past its cut (an orphan,
 *     af8447d): kept once, ineffective (its author's cut stands: G is
 *     senior), and the same run again changes nothing. */
static void test_hostile_orphan_replay(void **state) {
  (void)state;
  node s;
  chain *g = chain_new(0x11), *a = chain_new(0x22), *b = chain_new(0x33);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv_a = chain_invite(g, 2, VS_MESH_ADMIN, 0x72);
  uint64_t inv_b = chain_invite(g, 3, VS_MESH_WRITER, 0x73);
  chain_admit(a, 10, mesh_id, g, inv_a, 0x72, NULL);
  chain_admit(b, 11, mesh_id, g, inv_b, 0x73, NULL);
  uint64_t g_rev = chain_revoke(g, 20, a, 1);
  uint64_t a_rev = chain_revoke(a, 21, b, 1); /* past A's cut */
  observer(&s, "hostile-orphan", 1, g);
  assert_err(apply_seqs(s.store, g, 1, g_rev, NULL), VS_OK);
  assert_err(apply_seqs(s.store, a, 1, 1, NULL), VS_OK);
  assert_err(apply_seqs(s.store, b, 1, 1, NULL), VS_OK);
  uint64_t recs = mesh_records(s.store);
  /* the run straddles A's cut: the part up to it is taken (held), the
   * revoke past it kept apart */
  vs_apply_result res;
  assert_err(apply_seqs(s.store, a, 1, a_rev, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.head_seq, 1);
  world w;
  world_take(s.store, &w);
  assert_int_equal(w.records, recs + 1u); /* the orphan */
  assert_false(member(&w, b)->revoked);
  assert_true(member(&w, a)->revoked);
  assert_int_equal(head_of(s.store, a->id.pk), 1);
  for (int i = 0; i < 3; i++) {
    assert_err(apply_seqs(s.store, a, 1, a_rev, NULL), VS_OK);
    assert_err(apply_seqs(s.store, a, a_rev, a_rev, NULL), VS_ERR_REVOKED);
    world_unchanged(s.store, &w);
  }
  honest_write(s.store, b, 30, "b-after");
  chain_free(g);
  chain_free(a);
  chain_free(b);
  node_close(&s);
}

/* 9c. DEFECT (a revoked admin equivocates past its cut, af8447d): B
 *     (junior) cut A at 5; A signs two ops at seq 6, a revoke of B and a
 *     revoke of C. S1 gets the first: kept as an orphan, it is effective
 *     (A is senior), B is cut at 3 and A's cut lifted, so A's op 6 enters
 *     S1's chain. S2 gets the second: kept as an orphan, ineffective, A
 *     stays cut at 5. Then anti-entropy, twice around: S1's A 1..6 reaches
 *     S2 truncated at A's cut there, and its op 6 is "held already" as an
 *     orphan (vs_mesh_orphans_txn checks (origin, seq) only, not the
 *     hash), so no fork is proven; S2 relays no orphan. S1 ends with A
 *     active and B revoked, S2 with A revoked and B active, for good. An
 *     orphan whose (origin, seq) holds another hash is fork evidence (the
 *     verdict voids A from 6 on both), and orphans must relay. Skipped in
 *     the default run (VS_RUN_DEFECTS=1 runs it). */
static void test_hostile_orphan_equivocation(void **state) {
  (void)state;
  if (getenv("VS_RUN_DEFECTS") == NULL) skip(); /* DEFECT: see the comment above */
  node s1, s2;
  chain *g = chain_new(0x11), *a1 = chain_new(0x22), *a2 = chain_new(0x22), *b = chain_new(0x33),
        *c = chain_new(0x44);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv_a = chain_invite(g, 10, VS_MESH_ADMIN, 0x72);
  uint64_t inv_b = chain_invite(g, 20, VS_MESH_ADMIN, 0x73);
  uint64_t inv_c = chain_invite(g, 25, VS_MESH_WRITER, 0x74);
  chain_admit(a1, 30, mesh_id, g, inv_a, 0x72, NULL);
  for (uint64_t ms = 31; ms <= 34; ms++) chain_data(a1, ms);
  chain_admit(b, 40, mesh_id, g, inv_b, 0x73, NULL);
  chain_data(b, 41);
  chain_data(b, 42);
  chain_admit(c, 45, mesh_id, g, inv_c, 0x74, NULL);
  uint64_t b_rev = chain_revoke(b, 50, a1, 5);
  chain_copy(a2, a1);
  uint64_t r1 = chain_revoke(a1, 51, b, 3);
  uint64_t r2 = chain_revoke(a2, 51, c, 1);
  assert_int_equal(r1, 6);
  assert_int_equal(r2, 6);
  observer(&s1, "hostile-equiv1", 1, g);
  observer(&s2, "hostile-equiv2", 2, g);
  node *both[2] = {&s1, &s2};
  for (int i = 0; i < 2; i++) {
    vs_store *s = both[i]->store;
    assert_err(apply_seqs(s, g, 1, g->seq, NULL), VS_OK);
    assert_err(apply_seqs(s, a1, 1, 5, NULL), VS_OK);
    assert_err(apply_seqs(s, b, 1, b_rev, NULL), VS_OK);
    assert_err(apply_seqs(s, c, 1, 1, NULL), VS_OK);
  }
  /* each gets one of A's seq-6 ops (past its cut: kept as an orphan) */
  assert_err(apply_seqs(s1.store, a1, 1, r1, NULL), VS_OK); /* held part; the revoke apart */
  assert_err(apply_seqs(s2.store, a2, 1, r2, NULL), VS_OK);
  /* anti-entropy, twice around: what each holds of A, and the branches again */
  for (int round = 0; round < 2; round++) {
    (void)relay(s1.store, s2.store, a1->id.pk);
    (void)relay(s2.store, s1.store, a1->id.pk);
    (void)apply_seqs(s1.store, a1, 1, r1, NULL);
    (void)apply_seqs(s2.store, a2, 1, r2, NULL);
  }
  world w1, w2;
  world_take(s1.store, &w1);
  world_take(s2.store, &w2);
  assert_int_equal(member(&w1, a1)->revoked, member(&w2, a1)->revoked); /* today: S1 active, S2 revoked */
  assert_int_equal(member(&w1, b)->revoked, member(&w2, b)->revoked);
  stores_agree(s1.store, s2.store);
  chain_free(g);
  chain_free(a1);
  chain_free(a2);
  chain_free(b);
  chain_free(c);
  node_close(&s1);
  node_close(&s2);
}

/* 10. A revoked device's run straddling its cut: the part up to the cut
 *     is taken when the revoke vouches for it (its cut hash is the run's
 *     op there), nothing past; a branch the revoke does not vouch for
 *     takes nothing. */
static void test_hostile_straddle(void **state) {
  (void)state;
  node s, s2;
  chain *g = chain_new(0x11), *b = chain_new(0x22), *bf = chain_new(0x22);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv = chain_invite(g, 2, VS_MESH_WRITER, 0x71);
  chain_admit(b, 10, mesh_id, g, inv, 0x71, NULL);
  chain_put(b, 11, "b2", "1");
  chain_copy(bf, b);
  chain_put(b, 12, "b3", "1");
  chain_put(b, 13, "b4", "1");
  chain_put(b, 14, "b5", "1");
  chain_put(b, 15, "b6", "1");
  /* bf: another branch from seq 3 */
  chain_put(bf, 12, "b3", "1");
  chain_put(bf, 13, "bf4", "1");
  chain_put(bf, 14, "bf5", "1");
  uint64_t rev = chain_revoke(g, 20, b, 4);
  observer(&s, "hostile-straddle", 1, g);
  observer(&s2, "hostile-straddle2", 2, g);
  assert_err(apply_seqs(s.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s.store, b, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s.store, g, rev, rev, NULL), VS_OK);
  /* b's 3..6 signed at 6: 3..4 taken */
  vs_apply_result res;
  uint64_t lsn = last_lsn(s.store);
  assert_err(apply_seqs(s.store, b, 3, 6, &res), VS_OK);
  assert_int_equal(res.applied, 2);
  assert_int_equal(last_lsn(s.store), lsn + 2);
  assert_int_equal(head_of(s.store, b->id.pk), 4);
  assert_true(has_value(s.store, "b4"));
  assert_false(has_value(s.store, "b5"));
  world w;
  world_take(s.store, &w);
  /* past the cut alone; again; the other branch */
  assert_err(apply_seqs(s.store, b, 5, 6, NULL), VS_ERR_REVOKED);
  assert_err(apply_seqs(s.store, b, 3, 6, NULL), VS_OK);
  assert_err(apply_seqs(s.store, bf, 4, 5, NULL), VS_ERR_REVOKED);
  assert_err(apply_seqs(s.store, bf, 3, 5, NULL), VS_ERR_REVOKED);
  world_unchanged(s.store, &w);
  assert_false(has_value(s.store, "bf4"));
  /* s2 held all of b before the revoke: the same end */
  assert_err(apply_seqs(s2.store, g, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, b, 1, 6, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, g, rev, rev, NULL), VS_OK);
  stores_agree(s.store, s2.store);
  honest_write(s.store, g, 30, "g-after");
  chain_free(g);
  chain_free(b);
  chain_free(bf);
  node_close(&s);
  node_close(&s2);
}

/* 11. A revoke undone: A's revoke of B (at A's seq 4) is effective until
 *     G's revoke of A with cut 3 arrives, which puts it past A's cut (rule
 *     1): B is active again. Where B's ops past A's cut were voided they
 *     come back when B's chain is offered again; a store that got G's
 *     revoke first never cut B. Same heads, state and members. */
static void test_hostile_revoke_undone(void **state) {
  (void)state;
  node s1, s2;
  chain *g = chain_new(0x11), *a = chain_new(0x22), *b = chain_new(0x33);
  chain_create(g, 1);
  const uint8_t *mesh_id = g->hashes[0];
  uint64_t inv_a = chain_invite(g, 2, VS_MESH_ADMIN, 0x72);
  uint64_t inv_b = chain_invite(g, 3, VS_MESH_WRITER, 0x73);
  chain_admit(a, 10, mesh_id, g, inv_a, 0x72, NULL);
  chain_put(a, 11, "a2", "1");
  chain_put(a, 12, "a3", "1");
  chain_admit(b, 20, mesh_id, g, inv_b, 0x73, NULL);
  chain_put(b, 21, "b2", "1");
  chain_put(b, 22, "b3", "1");
  chain_put(b, 23, "b4", "1");
  uint64_t a_rev = chain_revoke(a, 30, b, 2);
  uint64_t g_rev = chain_revoke(g, 40, a, 3);
  observer(&s1, "hostile-undo1", 1, g);
  observer(&s2, "hostile-undo2", 2, g);
  /* s1: A's revoke takes, then G's undoes it */
  assert_err(apply_seqs(s1.store, g, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(s1.store, a, 1, 3, NULL), VS_OK);
  assert_err(apply_seqs(s1.store, b, 1, 4, NULL), VS_OK);
  assert_err(apply_seqs(s1.store, a, a_rev, a_rev, NULL), VS_OK);
  assert_int_equal(head_of(s1.store, b->id.pk), 2);
  assert_false(has_value(s1.store, "b4"));
  assert_err(apply_seqs(s1.store, g, g_rev, g_rev, NULL), VS_OK);
  world w;
  world_take(s1.store, &w);
  assert_false(member(&w, b)->revoked);
  assert_true(member(&w, a)->revoked);
  assert_int_equal(head_of(s1.store, a->id.pk), 3);
  /* B's chain offered again: its ops past the undone cut come back */
  assert_err(apply_seqs(s1.store, b, 1, 4, NULL), VS_OK);
  assert_int_equal(head_of(s1.store, b->id.pk), 4);
  assert_true(has_value(s1.store, "b4"));
  /* s2: G's revoke first */
  assert_err(apply_seqs(s2.store, g, 1, g_rev, NULL), VS_OK);
  assert_err(apply_seqs(s2.store, a, 1, a_rev, NULL), VS_OK); /* cut to 1..3 */
  assert_err(apply_seqs(s2.store, b, 1, 4, NULL), VS_OK);
  assert_int_equal(head_of(s2.store, a->id.pk), 3);
  stores_agree(s1.store, s2.store);
  chain_free(g);
  chain_free(a);
  chain_free(b);
  node_close(&s1);
  node_close(&s2);
}

/* 5b. One hostile admin fills the mesh: the per-author quota does not
 *     bound the mesh's facts, since an admin admits as many admins as it
 *     likes. H invites 15 admin keys of its own, and H and they write
 *     invites until the store holds VS_MESH_NONREVOKE_FACTS_MAX records;
 *     then no invite, admit or rekey takes, but revokes keep their room
 *     (efe8b4a): G's revoke of H takes and, through the cascade, puts out
 *     every admin H admitted. */
typedef struct freeze {
  node s;
  chain *g, *h;
  chain *sub[FREEZE_ADMINS];
} freeze;

static void freeze_fill(freeze *f, const char *tag) {
  f->g = chain_new(0x11);
  f->h = chain_new(0x22);
  chain_create(f->g, 1);
  const uint8_t *mesh_id = f->g->hashes[0];
  uint64_t inv_h = chain_invite(f->g, 2, VS_MESH_ADMIN, 0x72);
  observer(&f->s, tag, 1, f->g);
  assert_err(apply_seqs(f->s.store, f->g, 1, f->g->seq, NULL), VS_OK);
  chain_admit(f->h, 10, mesh_id, f->g, inv_h, 0x72, NULL);
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) chain_invite(f->h, 11, VS_MESH_ADMIN, (uint8_t)(0x80u + j));
  while (f->h->seq < 1u + VS_MESH_AUTHOR_FACTS_MAX) chain_invite(f->h, 12, VS_MESH_WRITER, (uint8_t)f->h->seq);
  assert_err(apply_seqs(f->s.store, f->h, 1, f->h->seq, NULL), VS_OK);
  uint64_t held = mesh_records(f->s.store);
  const uint64_t bound = VS_MESH_NONREVOKE_FACTS_MAX;
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) {
    f->sub[j] = chain_new((uint8_t)(0xa0u + j));
    chain_admit(f->sub[j], 20, mesh_id, f->h, 2u + j, (uint8_t)(0x80u + j), NULL);
    held++;
    /* as many invites as fit, leaving room for the admits still to come */
    uint64_t room = bound - held - (FREEZE_ADMINS - 1u - j);
    uint64_t n = room < VS_MESH_AUTHOR_FACTS_MAX ? room : VS_MESH_AUTHOR_FACTS_MAX;
    for (uint64_t i = 0; i < n; i++) chain_invite(f->sub[j], 21, VS_MESH_WRITER, (uint8_t)i);
    held += n;
    assert_err(apply_seqs(f->s.store, f->sub[j], 1, f->sub[j]->seq, NULL), VS_OK);
  }
  assert_int_equal(mesh_records(f->s.store), bound);
  /* Full: the next invite, of anyone, is without effect (no record). */
  uint64_t more = chain_invite(f->g, 22, VS_MESH_WRITER, 0x99);
  assert_err(apply_seqs(f->s.store, f->g, more, more, NULL), VS_OK);
  assert_int_equal(mesh_records(f->s.store), bound);
  /* G puts H out: its revoke takes, and H's admins go with it. */
  uint64_t rev = chain_revoke(f->g, 30, f->h, 1);
  assert_err(apply_seqs(f->s.store, f->g, rev, rev, NULL), VS_OK);
  world w;
  world_take(f->s.store, &w);
  assert_int_equal(w.count, 2);
  assert_true(member(&w, f->h)->revoked);
  assert_int_equal(head_of(f->s.store, f->h->id.pk), 1);
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) assert_int_equal(head_of(f->s.store, f->sub[j]->id.pk), 0);
}

static void freeze_free(freeze *f) {
  chain_free(f->g);
  chain_free(f->h);
  for (uint32_t j = 0; j < FREEZE_ADMINS; j++) chain_free(f->sub[j]);
  node_close(&f->s);
}

static void test_hostile_mesh_facts_flood(void **state) {
  (void)state;
  freeze *f = calloc(1, sizeof *f);
  assert_non_null(f);
  freeze_fill(f, "hostile-mflood");
  freeze_free(f);
  free(f);
}

/* 5c. DEFECT (the mesh stays full after the flooder is out): a cut and a
 *     lost admission keep the records of the facts past them (efe8b4a:
 *     the reducer ignores them, a more senior revoke may lift the cut), so
 *     after G revoked H with cut 1, and H's 15 admins lost their admission
 *     through the cascade, the store still holds
 *     VS_MESH_NONREVOKE_FACTS_MAX records: nobody can ever be invited
 *     again, by G or anyone. One hostile admin ends the mesh's growth for
 *     good (docs/membership.md says revoking gives the room back). The
 *     facts no member's valid op states would have to stop counting
 *     (e.g. count facts the view holds valid, not records). Skipped in the
 *     default run (VS_RUN_DEFECTS=1 runs it). */
static void test_hostile_mesh_facts_freeze(void **state) {
  (void)state;
  if (getenv("VS_RUN_DEFECTS") == NULL) skip(); /* DEFECT: see the comment above */
  freeze *f = calloc(1, sizeof *f);
  assert_non_null(f);
  freeze_fill(f, "hostile-freeze");
  uint64_t inv = chain_invite(f->g, 40, VS_MESH_WRITER, 0x98);
  assert_err(apply_seqs(f->s.store, f->g, inv, inv, NULL), VS_OK);
  chain *x = chain_new(0x45);
  chain_admit(x, 41, f->g->hashes[0], f->g, inv, 0x98, NULL);
  assert_err(apply_seqs(f->s.store, x, 1, 1, NULL), VS_OK); /* today: NOT_MEMBER (the invite is inert) */
  chain_free(x);
  freeze_free(f);
  free(f);
}

/* 3b. A double-used token on the devices' own stores (vs_mesh_join): D1
 *     joins and writes; D2 joins with the same token at an earlier hlc.
 *     Once D1's store holds the invite and D2's admit, D1 is no member on
 *     its own store either: its chain and data are void, its next write is
 *     NOT_MEMBER, and its member view is everyone's (its own chain stays
 *     on its own store: never rolled back there). */
/* G, and D1 and D2 joined with one token (D2 at an earlier hlc); D1 wrote
 * "d1", learnt G's chain (admitted on its own store), then D2's admit. */
static void own_double_use(node *g, node *d1, node *d2, uint64_t t) {
  static const uint8_t mesh_key[VS_MESH_KEY_BYTES] = {7, 7, 7};
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(g->store, t, mesh_id), VS_OK);
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 0x51, sizeof seed);
  vs_mesh_invite_req req = {VS_MESH_WRITER, t + 3600000ull, seed, mesh_key, NULL, 0};
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t tn = 0;
  assert_err(vs_mesh_invite(g->store, &req, t + 10, tok, sizeof tok, &tn), VS_OK);
  sodium_memzero(seed, sizeof seed);
  vs_mesh_joined j;
  assert_err(vs_mesh_join(d1->store, tok, tn, t + 100, &j), VS_OK);
  assert_err(vs_mesh_join(d2->store, tok, tn, t + 50, &j), VS_OK);
  sodium_memzero(tok, sizeof tok);
  sodium_memzero(&j, sizeof j);
  vs_write_req r = req_of("put", "d1", "x");
  vs_write_result res;
  assert_err(vs_write(d1->store, d1->id.pk, &r, t + 110, &res), VS_OK);
  /* D1 learns the invite: admitted on its own store */
  assert_err(relay(g->store, d1->store, g->id.pk), VS_OK);
  world w;
  world_take(d1->store, &w);
  assert_int_equal(w.count, 2);
  assert_non_null(member_pk(&w, d1->id.pk));
  assert_true(has_value(d1->store, "d1"));
  /* D2's earlier admit arrives: D1 is out */
  assert_err(relay(d2->store, d1->store, d2->id.pk), VS_OK);
}

static void test_hostile_double_use_own_device(void **state) {
  (void)state;
  const uint64_t t = T0_MS + 500000ull;
  node g, d1, d2;
  node_open(&g, "hostile-own-g", 1);
  node_open(&d1, "hostile-own-d1", 2);
  node_open(&d2, "hostile-own-d2", 3);
  own_double_use(&g, &d1, &d2, t);
  /* Its own store keeps its own chain (efe8b4a: never rolled back, a seq
   * voided here would be signed anew), so its own void data stays in its
   * own state; it is no member there. */
  assert_int_equal(head_of(d1.store, d1.id.pk), 2);
  /* G sees the same: D2 a member, D1's chain refused */
  assert_err(relay(d2.store, g.store, d2.id.pk), VS_OK);
  assert_err(relay(d1.store, g.store, d1.id.pk), VS_ERR_NOT_MEMBER);
  assert_int_equal(head_of(g.store, d1.id.pk), 0);
  assert_false(has_value(g.store, "d1"));
  world w, wg;
  world_take(g.store, &wg);
  world_take(d1.store, &w);
  assert_null(member_pk(&w, d1.id.pk));
  assert_null(member_pk(&wg, d1.id.pk));
  assert_non_null(member_pk(&w, d2.id.pk));
  assert_non_null(member_pk(&wg, d2.id.pk));
  assert_int_equal(w.count, wg.count);
  node_close(&g);
  node_close(&d1);
  node_close(&d2);
}

/* 3c. A device whose admission is lost writes no more: D1's own store
 *     keeps D1's chain when D2's admit wins the invite (a cut or a lost
 *     admission never rolls back our own chain), and vs_write (write.c)
 *     tells a device still waiting for its admission (invite not held)
 *     from one the fold did not admit (invite held): NOT_MEMBER. */
static void test_hostile_lost_admission_still_writes(void **state) {
  (void)state;
  const uint64_t t = T0_MS + 500000ull;
  node g, d1, d2;
  node_open(&g, "hostile-lost-g", 1);
  node_open(&d1, "hostile-lost-d1", 2);
  node_open(&d2, "hostile-lost-d2", 3);
  own_double_use(&g, &d1, &d2, t);
  vs_write_req r = req_of("put", "d1-late", "x");
  vs_write_result res;
  assert_err(vs_write(d1.store, d1.id.pk, &r, t + 120, &res), VS_ERR_NOT_MEMBER);
  node_close(&g);
  node_close(&d1);
  node_close(&d2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hostile_origin_flood),
      cmocka_unit_test(test_hostile_member_fresh_ids),
      cmocka_unit_test(test_hostile_opening_run_smuggles_facts),
      cmocka_unit_test(test_hostile_double_used_invite),
      cmocka_unit_test(test_hostile_double_use_own_device),
      cmocka_unit_test(test_hostile_lost_admission_still_writes),
      cmocka_unit_test(test_hostile_expired_invite),
      cmocka_unit_test(test_hostile_invite_flood),
      cmocka_unit_test(test_hostile_mesh_facts_flood),
      cmocka_unit_test(test_hostile_mesh_facts_freeze),
      cmocka_unit_test(test_hostile_junk_revokes_freeze),
      cmocka_unit_test(test_hostile_cut_records_order),
      cmocka_unit_test(test_hostile_revoke_orders),
      cmocka_unit_test(test_hostile_revoke_vouched_relay),
      cmocka_unit_test(test_hostile_cascade),
      cmocka_unit_test(test_hostile_mutual_revoke),
      cmocka_unit_test(test_hostile_mutual_revoke_junior_first),
      cmocka_unit_test(test_hostile_replay),
      cmocka_unit_test(test_hostile_orphan_replay),
      cmocka_unit_test(test_hostile_orphan_equivocation),
      cmocka_unit_test(test_hostile_straddle),
      cmocka_unit_test(test_hostile_revoke_undone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
