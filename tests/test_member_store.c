/* Membership slice 2a: the store keeps the membership facts (src/mstore.h,
 * docs/storage.md "Membership records"). Real mesh.* ops, built as
 * test_member_flow.c builds them (payload encoders, vs_mesh_admit_sign),
 * are applied as signed runs through vs_apply_run, as a peer's runs are.
 * Pinned: each mesh.* op held has its record, data ops none, and
 * vs_mesh_view_get folds them into the view the reducer gives (genesis,
 * invites, an admit from another device's chain, a revoke); a run with one
 * malformed mesh.* op (bad payload, an admit whose invite signature does
 * not verify, a mesh op at a wrong seq) is refused whole with the
 * decoder's error and changes nothing (state hash, heads, WAL, records); a
 * fork verdict that voids an origin's ops drops their records and the view
 * follows. Built again as fault_member_store in the fault build: every
 * LMDB write or commit and every allocation of an apply with mesh ops
 * failed in turn leaves the store as it was.
 *
 * Since the membership gate (src/mgate.h) only a managed store records
 * facts: every store here is a managed observer (mesh_manage: the mesh id
 * in its meta, tests/mesh_ops.h), and its member records
 * (vs_mesh_members) must say what the view says. The fault walks also walk
 * a revoke that voids held ops. */
#include "mesh_ops.h"
#ifdef VS_FAULT_INJECTION
#include "fault.h"
#endif

#define NOW_MS MESH_NOW_MS
#define DRIFT_MS MESH_DRIFT_MS
#define CH_OPS MESH_CH_OPS

static uint64_t records(vs_store *s) {
  MDB_txn *txn;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  uint64_t n = 0;
  assert_err(vs_mesh_records_count_txn(txn, s, &n), VS_OK);
  mdb_txn_abort(txn);
  return n;
}

static vs_mesh_view *view_of(vs_store *s, const uint8_t mesh_id[VS_HASH_BYTES]) {
  vs_mesh_view *v = malloc(sizeof *v);
  assert_non_null(v);
  assert_err(vs_mesh_view_get(s, mesh_id, v), VS_OK);
  return v;
}

/* The view the reducer gives for these chains' facts, built without a store. */
static void view_direct(const uint8_t mesh_id[VS_HASH_BYTES], chain *const *chains, uint32_t n_chains,
                        vs_mesh_view *out) {
  vs_mesh_fact *facts = calloc(CH_OPS * 4u, sizeof *facts);
  assert_non_null(facts);
  uint32_t n = 0;
  for (uint32_t c = 0; c < n_chains; c++)
    for (uint32_t i = 0; i < chains[c]->seq; i++) {
      vs_err err = vs_mesh_fact_from_op(&chains[c]->ops[i], chains[c]->hashes[i], &facts[n]);
      if (err == VS_OK) n++;
      else assert_err(err, VS_ERR_NOTFOUND);
    }
  assert_err(vs_mesh_reduce(mesh_id, facts, n, out), VS_OK);
  free(facts);
}

/* The gate's member records (vs_mesh_members) say what the view folded
 * from the records says. */
static void members_match_view(vs_store *s, const vs_mesh_view *v) {
  vs_mesh_member_info *m = calloc(VS_MESH_MEMBERS_MAX, sizeof *m);
  assert_non_null(m);
  uint32_t count = 0;
  assert_err(vs_mesh_members(s, m, VS_MESH_MEMBERS_MAX, &count), VS_OK);
  assert_int_equal(count, v->count);
  for (uint32_t i = 0; i < count; i++) {
    const vs_mesh_member *w = vs_mesh_find(v, m[i].pk);
    assert_non_null(w);
    assert_int_equal(m[i].role, w->role);
    assert_int_equal(m[i].depth, w->depth);
    assert_int_equal(m[i].revoked, w->revoked);
    assert_int_equal(m[i].cut_seq, w->revoked ? w->cut_seq : 0);
  }
  free(m);
}

static uint64_t head_seq(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t seq = 0;
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_wal_head(s, origin, &seq, h, NULL), VS_OK);
  return seq;
}

/* ------------------------------------------------------------------------ */

static void test_mstore_records_and_view(void **state) {
  (void)state;
  node n;
  node_open(&n, "mstore-view", 1);
  chain a, b, c;
  chain_init(&a, 0x11);
  chain_init(&b, 0x22);
  chain_init(&c, 0x33);
  chain_create(&a, 1);
  const uint8_t *mesh_id = a.hashes[0];
  mesh_manage(n.store, mesh_id);
  /* Nothing yet: the view of an unknown mesh is empty. */
  vs_mesh_view *v = view_of(n.store, mesh_id);
  assert_false(v->has_genesis);
  assert_int_equal(v->count, 0);
  free(v);

  uint64_t inv_b = chain_invite(&a, 2, VS_MESH_WRITER, 0x71);
  uint64_t inv_c = chain_invite(&a, 3, VS_MESH_ADMIN, 0x72);
  assert_err(apply_seqs(n.store, &a, 1, 3, NULL), VS_OK);
  assert_int_equal(records(n.store), 3);
  v = view_of(n.store, mesh_id);
  assert_true(v->has_genesis);
  assert_int_equal(v->count, 1);
  free(v);

  /* B's and C's admissions come in their own chains. */
  chain_admit(&b, 10, mesh_id, &a, inv_b, 0x71, NULL);
  chain_data(&b, 11);
  chain_admit(&c, 12, mesh_id, &a, inv_c, 0x72, NULL);
  assert_err(apply_seqs(n.store, &b, 1, 2, NULL), VS_OK);
  assert_err(apply_seqs(n.store, &c, 1, 1, NULL), VS_OK);
  assert_int_equal(records(n.store), 5); /* B's data op has none */
  v = view_of(n.store, mesh_id);
  assert_int_equal(v->count, 3);
  const vs_mesh_member *mb = vs_mesh_find(v, b.id.pk), *mc = vs_mesh_find(v, c.id.pk), *ma = vs_mesh_find(v, a.id.pk);
  assert_non_null(ma);
  assert_non_null(mb);
  assert_non_null(mc);
  assert_int_equal(ma->depth, 0);
  assert_int_equal(mb->role, VS_MESH_WRITER);
  assert_int_equal(mb->depth, 1);
  assert_int_equal(mb->invite_seq, inv_b);
  assert_int_equal(mc->role, VS_MESH_ADMIN);
  assert_true(vs_mesh_op_valid(v, b.id.pk, 2, true));
  /* The same view as the reducer's over the same ops. */
  vs_mesh_view *d = malloc(sizeof *d);
  assert_non_null(d);
  chain *all[] = {&a, &b, &c};
  view_direct(mesh_id, all, 3, d);
  assert_memory_equal(v->digest, d->digest, VS_HASH_BYTES);
  members_match_view(n.store, v);
  free(v);

  /* A held run again: nothing new recorded. */
  vs_apply_result res;
  assert_err(apply_seqs(n.store, &a, 1, 3, &res), VS_OK);
  assert_int_equal(res.duplicates, 3);
  assert_int_equal(records(n.store), 5);

  /* A revokes B from seq 2 on (its admission stays valid). */
  chain_revoke(&a, 20, &b, 1);
  assert_err(apply_seqs(n.store, &a, 4, 4, NULL), VS_OK);
  assert_int_equal(records(n.store), 6);
  v = view_of(n.store, mesh_id);
  mb = vs_mesh_find(v, b.id.pk);
  assert_non_null(mb);
  assert_true(mb->revoked);
  assert_int_equal(mb->cut_seq, 1);
  assert_memory_equal(mb->revoked_by, a.id.pk, VS_ORIGIN_BYTES);
  assert_false(vs_mesh_active(v, b.id.pk));
  assert_false(vs_mesh_op_valid(v, b.id.pk, 2, true));
  assert_true(vs_mesh_active(v, c.id.pk));
  view_direct(mesh_id, all, 3, d);
  assert_memory_equal(v->digest, d->digest, VS_HASH_BYTES);
  members_match_view(n.store, v);
  /* The gate voided B's data op past its cut (held before the revoke). */
  assert_int_equal(head_seq(n.store, b.id.pk), 1);
  assert_err(apply_seqs(n.store, &b, 2, 2, NULL), VS_ERR_REVOKED);
  free(d);
  free(v);
  /* Another mesh's id: none of these facts is its genesis. */
  uint8_t other[VS_HASH_BYTES];
  memset(other, 0x99, sizeof other);
  v = view_of(n.store, other);
  assert_false(v->has_genesis);
  assert_int_equal(v->count, 0);
  free(v);
  node_close(&n);
}

/* A refused run: the error, and the store exactly as before. */
static void assert_refused(node *n, const chain *c, uint64_t from, uint64_t to, vs_err want) {
  snap before;
  snap_take(n->store, c->id.pk, &before);
  uint64_t recs = records(n->store);
  assert_err(apply_seqs(n->store, c, from, to, NULL), want);
  snap_check(n->store, c->id.pk, &before);
  assert_int_equal(records(n->store), recs);
  free(before.dump);
}

static void test_mstore_malformed_run_refused(void **state) {
  (void)state;
  node n;
  node_open(&n, "mstore-bad", 2);
  chain a;
  chain_init(&a, 0x11);
  chain_create(&a, 1);
  const uint8_t *mesh_id = a.hashes[0];
  mesh_manage(n.store, mesh_id);
  assert_err(apply_seqs(n.store, &a, 1, 1, NULL), VS_OK);

  /* A data op, then an invite whose payload is one byte short: the whole
   * run is refused, the data op with it. */
  chain bad;
  chain_copy(&bad, &a);
  chain_data(&bad, 2);
  uint8_t p[VS_MESH_INVITE_BYTES];
  memset(p, 0, sizeof p);
  p[0] = VS_MESH_PAYLOAD_VERSION;
  chain_add(&bad, 3, VS_MESH_KIND_INVITE, VS_MESH_TARGET, p, VS_MESH_INVITE_BYTES - 1);
  assert_refused(&n, &bad, 2, 3, VS_ERR_TRUNCATED);
  /* A mesh.* op at a wrong seq: a create at seq 2. */
  chain_copy(&bad, &a);
  chain_create(&bad, 2);
  assert_refused(&n, &bad, 2, 2, VS_ERR_MALFORMED);
  /* A mesh.* op with another target. */
  chain_copy(&bad, &a);
  p[0] = VS_MESH_PAYLOAD_VERSION;
  chain_add(&bad, 2, VS_MESH_KIND_INVITE, "x", p, sizeof p);
  assert_refused(&n, &bad, 2, 2, VS_ERR_MALFORMED);
  /* A mesh.* kind this build does not read. */
  chain_copy(&bad, &a);
  chain_add(&bad, 2, "mesh.future", VS_MESH_TARGET, p, 1);
  assert_refused(&n, &bad, 2, 2, VS_ERR_VERSION);

  uint64_t inv = chain_invite(&a, 2, VS_MESH_WRITER, 0x71);
  assert_err(apply_seqs(n.store, &a, 2, 2, NULL), VS_OK);
  /* An admit whose invite signature was made for another device. */
  chain thief, honest;
  chain_init(&thief, 0x44);
  chain_init(&honest, 0x45);
  chain_admit(&thief, 10, mesh_id, &a, inv, 0x71, honest.id.pk);
  assert_refused(&n, &thief, 1, 1, VS_ERR_AUTH);
  /* An invite at seq 1 (a managed chain opens with a create or an admit). */
  chain_invite(&honest, 11, VS_MESH_WRITER, 0x73);
  assert_refused(&n, &honest, 1, 1, VS_ERR_MALFORMED);
  assert_int_equal(records(n.store), 2);

  /* The store is usable: the honest admission goes in. */
  chain good;
  chain_init(&good, 0x46);
  chain_admit(&good, 12, mesh_id, &a, inv, 0x71, NULL);
  assert_err(apply_seqs(n.store, &good, 1, 1, NULL), VS_OK);
  assert_int_equal(records(n.store), 3);
  vs_mesh_view *v = view_of(n.store, mesh_id);
  assert_int_equal(v->count, 2);
  assert_non_null(vs_mesh_find(v, good.id.pk));
  free(v);
  node_close(&n);
}

/* A's invite at seq 2 is voided by a fork verdict (another branch holds a
 * data op there): its record goes, and with it B's admission. */
static void test_mstore_fork_verdict_drops_records(void **state) {
  (void)state;
  node n;
  node_open(&n, "mstore-fork", 3);
  chain a, fork_a, b;
  chain_init(&a, 0x11);
  chain_init(&b, 0x22);
  chain_create(&a, 1);
  const uint8_t *mesh_id = a.hashes[0];
  mesh_manage(n.store, mesh_id);
  chain_copy(&fork_a, &a);
  uint64_t inv = chain_invite(&a, 2, VS_MESH_WRITER, 0x71);
  chain_invite(&a, 3, VS_MESH_READER, 0x72);
  assert_err(apply_seqs(n.store, &a, 1, 3, NULL), VS_OK);
  chain_admit(&b, 10, mesh_id, &a, inv, 0x71, NULL);
  assert_err(apply_seqs(n.store, &b, 1, 1, NULL), VS_OK);
  assert_int_equal(records(n.store), 4);
  vs_mesh_view *v = view_of(n.store, mesh_id);
  assert_int_equal(v->count, 2);
  free(v);

  chain_data(&fork_a, 2);
  vs_apply_result res;
  assert_err(apply_seqs(n.store, &fork_a, 2, 2, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  assert_int_equal(res.fork_seq, 2);
  assert_int_equal(records(n.store), 2); /* A's create and B's admit */
  v = view_of(n.store, mesh_id);
  assert_true(v->has_genesis);
  assert_int_equal(v->count, 1);
  assert_null(vs_mesh_find(v, b.id.pk));
  assert_non_null(vs_mesh_find(v, a.id.pk));
  free(v);
  /* The void ops do not come back, their records neither. */
  assert_err(apply_seqs(n.store, &a, 2, 3, NULL), VS_ERR_FORKED);
  assert_int_equal(records(n.store), 2);
  node_close(&n);
}

/* The same verdict voids A's invite of B, so B is no member any more: the
 * verdict refolds the member records in its transaction (fork.c, since
 * efe8b4a; found by this test before it): vs_mesh_members drops B, B's
 * held data op is void and B's chain is refused from then on. */
static void test_mstore_fork_verdict_refreshes_members(void **state) {
  (void)state;
  node n;
  node_open(&n, "mstore-fork-members", 3);
  chain a, fork_a, b;
  chain_init(&a, 0x11);
  chain_init(&b, 0x22);
  chain_create(&a, 1);
  const uint8_t *mesh_id = a.hashes[0];
  mesh_manage(n.store, mesh_id);
  chain_copy(&fork_a, &a);
  uint64_t inv = chain_invite(&a, 2, VS_MESH_WRITER, 0x71);
  assert_err(apply_seqs(n.store, &a, 1, 2, NULL), VS_OK);
  chain_admit(&b, 10, mesh_id, &a, inv, 0x71, NULL);
  chain_put(&b, 11, "b2", "1");
  assert_err(apply_seqs(n.store, &b, 1, 2, NULL), VS_OK);
  chain_data(&fork_a, 2);
  vs_apply_result res;
  assert_err(apply_seqs(n.store, &fork_a, 2, 2, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  vs_mesh_view *v = view_of(n.store, mesh_id);
  assert_int_equal(v->count, 1);
  members_match_view(n.store, v);
  free(v);
  assert_int_equal(head_seq(n.store, b.id.pk), 0);
  chain_put(&b, 12, "b3", "1");
  assert_err(apply_seqs(n.store, &b, 1, 3, NULL), VS_ERR_NOT_MEMBER);
  assert_int_equal(head_seq(n.store, b.id.pk), 0);
  node_close(&n);
}

/* vs_wal_append (a single op, no signature) records as apply does and
 * refuses what apply refuses. */
static void test_mstore_wal_append_records(void **state) {
  (void)state;
  node n;
  node_open(&n, "mstore-append", 4);
  chain a;
  chain_init(&a, 0x11);
  chain_create(&a, 1);
  mesh_manage(n.store, a.hashes[0]);
  assert_err(vs_wal_append(n.store, &a.ops[0], NOW_MS, NULL), VS_OK);
  assert_int_equal(records(n.store), 1);
  chain bad;
  chain_copy(&bad, &a);
  chain_create(&bad, 2);
  assert_err(vs_wal_append(n.store, &bad.ops[1], NOW_MS, NULL), VS_ERR_MALFORMED);
  chain_data(&a, 2);
  assert_err(vs_wal_append(n.store, &a.ops[1], NOW_MS, NULL), VS_OK);
  assert_int_equal(records(n.store), 1);
  assert_int_equal(last_lsn(n.store), 2);
  vs_mesh_view *v = view_of(n.store, a.hashes[0]);
  assert_true(v->has_genesis);
  assert_int_equal(v->count, 1);
  /* A record that does not match its op is a damaged store: CORRUPT (a
   * data op's, a wrong hash, a WAL record that is not there). */
  struct {
    uint64_t seq, lsn;
    const uint8_t *hash;
  } recs[] = {{2, 2, a.hashes[1]}, {1, 1, a.hashes[1]}, {3, 99, a.hashes[0]}};
  for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
    MDB_txn *txn;
    assert_err(vs_txn_begin(n.store, true, &txn), VS_OK);
    assert_err(vs_mesh_record_put_txn(txn, n.store, a.id.pk, recs[i].seq, recs[i].hash, recs[i].lsn), VS_OK);
    assert_err(vs_txn_commit(txn), VS_OK);
    vs_mesh_view *w = malloc(sizeof *w);
    assert_non_null(w);
    memset(w, 0xab, sizeof *w);
    assert_err(vs_mesh_view_get(n.store, a.hashes[0], w), VS_ERR_CORRUPT);
    assert_true(w->count == 0 && !w->has_genesis); /* zeroed on error */
    free(w);
    /* put the good record back, or drop the stray one */
    assert_err(vs_txn_begin(n.store, true, &txn), VS_OK);
    if (recs[i].seq == 1) assert_err(vs_mesh_record_put_txn(txn, n.store, a.id.pk, 1, a.hashes[0], 1), VS_OK);
    else assert_err(vs_mesh_records_drop_txn(txn, n.store, a.id.pk, recs[i].seq), VS_OK);
    assert_err(vs_txn_commit(txn), VS_OK);
    vs_mesh_view *u = view_of(n.store, a.hashes[0]);
    assert_memory_equal(u->digest, v->digest, VS_HASH_BYTES);
    free(u);
  }
  free(v);
  node_close(&n);
}

/* The store holds at most VS_MESH_NONREVOKE_FACTS_MAX records of facts
 * other than revokes: an invite past it stays in its chain without effect
 * (no record, 8adc28d); data ops still go in, a revoke still finds room
 * (up to VS_MESH_FACTS_MAX), and the view is read at the bound.
 * Since the gate one author writes at most VS_MESH_AUTHOR_FACTS_MAX
 * invites and revokes, so the bound takes 12 admins: G and 11 it invites,
 * all writing invites. */
#define BIG_ADMINS 11u

typedef struct big_chain {
  vs_identity id;
  uint32_t n, cap;
  vs_op *ops;
  uint8_t (*hashes)[VS_HASH_BYTES];
  uint8_t (*pay)[VS_MESH_ADMIT_BYTES];
} big_chain;

static void big_open(big_chain *c, uint8_t seed_byte, uint32_t cap) {
  memset(c, 0, sizeof *c);
  mesh_key_of(seed_byte, &c->id);
  c->cap = cap;
  c->ops = calloc(cap, sizeof *c->ops);
  c->hashes = calloc(cap, sizeof *c->hashes);
  c->pay = calloc(cap, sizeof *c->pay);
  assert_true(c->ops != NULL && c->hashes != NULL && c->pay != NULL);
}

static void big_close(big_chain *c) {
  free(c->ops);
  free(c->hashes);
  free(c->pay);
  vs_identity_wipe(&c->id);
}

static void big_add(big_chain *c, const char *kind, const uint8_t *payload, uint32_t payload_bytes) {
  static const uint8_t zero[VS_HASH_BYTES];
  assert_true(c->n < c->cap && payload_bytes <= VS_MESH_ADMIT_BYTES);
  uint32_t i = c->n++;
  memcpy(c->pay[i], payload, payload_bytes);
  const char *target = strcmp(kind, "put") == 0 ? "k" : VS_MESH_TARGET;
  assert_err(vs_op_init(&c->ops[i], c->id.pk, i + 1u, hlc_at(1 + i), i == 0 ? zero : c->hashes[i - 1], kind,
                        (const uint8_t *)target, (uint32_t)strlen(target), c->pay[i], payload_bytes),
             VS_OK);
  assert_err(vs_op_hash(&c->ops[i], c->hashes[i]), VS_OK);
}

/* An invite of `role` for invite_pk (made from i when key is NULL: never used). */
static void big_invite(big_chain *c, uint32_t i, uint8_t role, const uint8_t *key) {
  vs_mesh_invite_pl in = {.role = role, .expires_hlc = hlc_at(10000000)};
  memset(in.invite_pk, 0x42, VS_ORIGIN_BYTES);
  in.invite_pk[0] = (uint8_t)i;
  in.invite_pk[1] = (uint8_t)(i >> 8);
  if (key != NULL) memcpy(in.invite_pk, key, VS_ORIGIN_BYTES);
  uint8_t p[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&in, p);
  big_add(c, VS_MESH_KIND_INVITE, p, sizeof p);
}

static vs_err big_apply(vs_store *s, const big_chain *c, uint32_t from, uint32_t to) {
  uint8_t sig[VS_SIGNATURE_BYTES];
  vs_chain_sign(&c->id, to, c->hashes[to - 1], sig);
  vs_apply_result r;
  return vs_apply_run(s, &c->ops[from - 1], to - from + 1u, sig, NOW_MS, DRIFT_MS, &r);
}

/* Apply c's ops 1..to in runs of at most 1024. */
static void big_apply_all(vs_store *s, const big_chain *c, uint32_t to) {
  for (uint32_t from = 1; from <= to; from += 1024u) {
    uint32_t end = from + 1023u < to ? from + 1023u : to;
    assert_err(big_apply(s, c, from, end), VS_OK);
  }
}

static void test_mstore_facts_bounded(void **state) {
  (void)state;
  node n;
  node_open(&n, "mstore-limit", 6);
  const uint32_t quota = VS_MESH_AUTHOR_FACTS_MAX;
  big_chain g;
  big_chain *adm = calloc(BIG_ADMINS, sizeof *adm);
  assert_non_null(adm);
  big_open(&g, 0x11, quota + 1u);
  uint8_t p[VS_MESH_ADMIT_BYTES];
  vs_mesh_create_encode(p);
  big_add(&g, VS_MESH_KIND_CREATE, p, VS_MESH_CREATE_BYTES);
  const uint8_t *mesh_id = g.hashes[0];
  mesh_manage(n.store, mesh_id);
  /* G: an admin invite for each of the 15, then invites to its quota */
  for (uint32_t j = 0; j < BIG_ADMINS; j++) {
    vs_identity key;
    mesh_key_of((uint8_t)(0x80u + j), &key);
    big_invite(&g, j, VS_MESH_ADMIN, key.pk);
    vs_identity_wipe(&key);
  }
  while (g.n < quota) big_invite(&g, g.n, VS_MESH_WRITER, NULL); /* room for one revoke */
  big_apply_all(n.store, &g, g.n);
  /* records so far: G's create and quota invites; then each admin's admit
   * and invites; the last admin fills the store to the bound */
  uint64_t held = 1u + (quota - 1u) + BIG_ADMINS;
  const uint32_t last_invites = (uint32_t)(VS_MESH_NONREVOKE_FACTS_MAX - held - (BIG_ADMINS - 1u) * quota);
  assert_true(last_invites > 0 && last_invites < quota);
  for (uint32_t j = 0; j < BIG_ADMINS; j++) {
    big_chain *a = &adm[j];
    big_open(a, (uint8_t)(0x20u + j), quota + 3u);
    admit_payload(p, mesh_id, g.id.pk, 2u + j, (uint8_t)(0x80u + j), a->id.pk, NULL);
    big_add(a, VS_MESH_KIND_ADMIT, p, VS_MESH_ADMIT_BYTES);
    uint32_t invites = j + 1u < BIG_ADMINS ? quota : last_invites;
    for (uint32_t i = 0; i < invites; i++) big_invite(a, 0x1000u * (j + 1u) + i, VS_MESH_WRITER, NULL);
    big_apply_all(n.store, a, a->n);
  }
  assert_int_equal(records(n.store), VS_MESH_NONREVOKE_FACTS_MAX);
  /* The last admin's data op and one fact more in one run: both kept, the
   * data op in the state, the invite without effect (no record: inert). */
  big_chain *last = &adm[BIG_ADMINS - 1u];
  big_add(last, "put", (const uint8_t *)"v", 1);
  big_invite(last, 0xffff, VS_MESH_WRITER, NULL);
  uint64_t lsn = last_lsn(n.store);
  assert_err(big_apply(n.store, last, last->n - 1u, last->n), VS_OK);
  assert_int_equal(last_lsn(n.store), lsn + 2u);
  assert_int_equal(records(n.store), VS_MESH_NONREVOKE_FACTS_MAX);
  /* A revoke still takes: G puts the last admin out with cut 1. */
  vs_mesh_revoke_pl rv;
  memset(&rv, 0, sizeof rv);
  memcpy(rv.device_pk, last->id.pk, VS_ORIGIN_BYTES);
  rv.cut_seq = 1;
  memcpy(rv.cut_hash, last->hashes[0], VS_HASH_BYTES);
  vs_chain_sign(&last->id, 1, rv.cut_hash, rv.cut_sig); /* the target's own signature at the cut */
  vs_mesh_revoke_encode(&rv, p);
  big_add(&g, VS_MESH_KIND_REVOKE, p, VS_MESH_REVOKE_BYTES);
  assert_err(big_apply(n.store, &g, g.n, g.n), VS_OK);
  assert_int_equal(records(n.store), VS_MESH_NONREVOKE_FACTS_MAX + 1u);
  vs_mesh_view *v = view_of(n.store, mesh_id);
  assert_true(v->has_genesis);
  assert_int_equal(v->count, 1u + BIG_ADMINS);
  assert_true(vs_mesh_find(v, last->id.pk)->revoked);
  members_match_view(n.store, v);
  free(v);
  for (uint32_t j = 0; j < BIG_ADMINS; j++) big_close(&adm[j]);
  free(adm);
  big_close(&g);
  node_close(&n);
}

#ifdef VS_FAULT_INJECTION
/* The walked step: A's run 2..4 (two invites around a data op) applied;
 * or a fork verdict voiding A from seq 2, taken by apply; or A's revoke of
 * B with cut 1, which voids B's held data ops 2..3 (the gate's refold). */
typedef enum walk_mode { WALK_APPLY, WALK_FORK, WALK_REVOKE } walk_mode;

static const char *const WALK_NAMES[] = {"apply", "fork verdict", "revoke voiding held ops"};

typedef struct walk_fx {
  node n;
  chain a, fork_a, b;
  walk_mode mode;
} walk_fx;

static void walk_open(walk_fx *w, walk_mode mode) {
  node_open(&w->n, "mstore-fault", 5);
  w->mode = mode;
  chain_init(&w->a, 0x11);
  chain_init(&w->b, 0x22);
  chain_create(&w->a, 1);
  mesh_manage(w->n.store, w->a.hashes[0]);
  chain_copy(&w->fork_a, &w->a);
  chain_data(&w->fork_a, 2);
  uint64_t inv = chain_invite(&w->a, 2, VS_MESH_WRITER, 0x71);
  if (mode == WALK_REVOKE) {
    assert_err(apply_seqs(w->n.store, &w->a, 1, 2, NULL), VS_OK);
    chain_admit(&w->b, 10, w->a.hashes[0], &w->a, inv, 0x71, NULL);
    chain_put(&w->b, 11, "b2", "1");
    chain_put(&w->b, 12, "b3", "1");
    assert_err(apply_seqs(w->n.store, &w->b, 1, 3, NULL), VS_OK);
    chain_revoke(&w->a, 20, &w->b, 1);
    return;
  }
  chain_data(&w->a, 3);
  chain_invite(&w->a, 4, VS_MESH_ADMIN, 0x72);
  assert_err(apply_seqs(w->n.store, &w->a, 1, mode == WALK_FORK ? 4 : 1, NULL), VS_OK);
}

static vs_err walk_step(walk_fx *w) {
  if (w->mode == WALK_APPLY) return apply_seqs(w->n.store, &w->a, 2, 4, NULL);
  if (w->mode == WALK_REVOKE) return apply_seqs(w->n.store, &w->a, 3, 3, NULL);
  vs_apply_result res;
  memset(&res, 0, sizeof res);
  vs_err err = apply_seqs(w->n.store, &w->fork_a, 2, 2, &res);
  if (err == VS_ERR_FORK && res.verdict) return VS_OK;
  return err == VS_OK || err == VS_ERR_FORK ? VS_ERR_CORRUPT : err; /* no verdict: not the step's effect */
}

/* The member records as vs_mesh_members gives them (zeroed, comparable). */
static vs_mesh_member_info *members_of(vs_store *s, uint32_t *count) {
  vs_mesh_member_info *m = calloc(8, sizeof *m);
  assert_non_null(m);
  assert_err(vs_mesh_members(s, m, 8, count), VS_OK);
  assert_true(*count <= 8);
  return m;
}

/* Every LMDB write and commit, then every allocation, of the step failed in
 * turn: the store is as before (WAL, heads, state, forks, records, view,
 * member records), and the step then goes through. */
static void walk(bool alloc, walk_mode mode) {
  uint64_t steps = 0;
  walk_fx *w = malloc(sizeof *w);
  assert_non_null(w);
  for (uint64_t nth = 1; nth <= 10000; nth++) {
    walk_open(w, mode);
    const uint8_t *mesh_id = w->a.hashes[0];
    /* the origin whose ops the step changes or voids */
    const uint8_t *origin = mode == WALK_REVOKE ? w->b.id.pk : w->a.id.pk;
    snap before;
    snap_take(w->n.store, origin, &before);
    uint64_t recs = records(w->n.store);
    vs_mesh_view *v0 = view_of(w->n.store, mesh_id);
    uint32_t m0_count = 0;
    vs_mesh_member_info *m0 = members_of(w->n.store, &m0_count);
    if (alloc) vs_fault_fail_nth_alloc(nth);
    else vs_fault_fail_nth(nth);
    vs_err err = walk_step(w);
    bool fired = alloc ? vs_fault_alloc_nth_fired() : vs_fault_nth_fired();
    vs_fault_fail_nth(0);
    vs_fault_fail_nth_alloc(0);
    if (fired) {
      assert_true(err != VS_OK);
      if (alloc) assert_err(err, VS_ERR_NOMEM);
      snap_check(w->n.store, origin, &before);
      assert_int_equal(records(w->n.store), recs);
      vs_mesh_view *v1 = view_of(w->n.store, mesh_id);
      assert_memory_equal(v0->digest, v1->digest, VS_HASH_BYTES);
      free(v1);
      uint32_t m1_count = 0;
      vs_mesh_member_info *m1 = members_of(w->n.store, &m1_count);
      assert_int_equal(m1_count, m0_count);
      assert_memory_equal(m0, m1, 8 * sizeof *m0);
      free(m1);
      err = walk_step(w);
    }
    assert_err(err, VS_OK);
    assert_int_equal(records(w->n.store), mode == WALK_APPLY ? 3 : mode == WALK_FORK ? 1 : 4);
    if (mode == WALK_REVOKE) {
      assert_int_equal(head_seq(w->n.store, w->b.id.pk), 1);
      uint32_t mc = 0;
      vs_mesh_member_info *m = members_of(w->n.store, &mc);
      assert_int_equal(mc, 2);
      for (uint32_t i = 0; i < mc; i++)
        if (memcmp(m[i].pk, w->b.id.pk, VS_ORIGIN_BYTES) == 0) assert_true(m[i].revoked && m[i].cut_seq == 1);
      free(m);
    }
    free(m0);
    free(v0);
    free(before.dump);
    node_close(&w->n);
    if (!fired) break;
    steps = nth;
  }
  free(w);
  print_message("mesh %s: %llu %s, each failed once\n", WALK_NAMES[mode], (unsigned long long)steps,
                alloc ? "allocations" : "LMDB writes and commits");
  assert_true(steps > 0 && steps < 10000);
}

static void test_mstore_fault_walk_lmdb(void **state) {
  (void)state;
  walk(false, WALK_APPLY);
  walk(false, WALK_FORK);
  walk(false, WALK_REVOKE);
}

static void test_mstore_fault_walk_alloc(void **state) {
  (void)state;
  walk(true, WALK_APPLY);
  walk(true, WALK_FORK);
  walk(true, WALK_REVOKE);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mstore_records_and_view),
      cmocka_unit_test(test_mstore_malformed_run_refused),
      cmocka_unit_test(test_mstore_fork_verdict_drops_records),
      cmocka_unit_test(test_mstore_fork_verdict_refreshes_members),
      cmocka_unit_test(test_mstore_wal_append_records),
      cmocka_unit_test(test_mstore_facts_bounded),
#ifdef VS_FAULT_INJECTION
      cmocka_unit_test(test_mstore_fault_walk_lmdb),
      cmocka_unit_test(test_mstore_fault_walk_alloc),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
