/* tests/test_apply.c: pins include/vixsync/apply.h (and the signing half of
 * write.h / store.h that it relies on).
 *
 * A small "sender" helper reads one origin's operations from a source store
 * (vs_wal_replay, buffers copied) and cuts them into runs that end at signed
 * operations (vs_apply_next_signed + vs_apply_sig_get), as a peer would.
 *
 * Cases: local commits are signed (last op of each commit, at least every
 * VS_SIGN_INTERVAL_BYTES inside a big batch; other origins and stores
 * without identity are not); two nodes exchange runs and converge; a relay
 * A -> B -> C converges using B's stored signatures; duplicates and
 * overlapping runs; every documented rejection changes nothing and leaves
 * the store usable; forks are refused and recorded; an op whose HLC is
 * beyond the receiver's clock plus the drift waits (the pin attack: hlc
 * 2^64-1; a device a day ahead) and applies once the clock catches up.
 * The fork cases are test_apply_fork.c.
 */

#include "apply_nodes.h"

/* ------------------------------------------------------------------------ */
/* Nodes                                                                    */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* The sender: one origin's operations, copied out of the WAL                */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Observing a store                                                         */
/* ------------------------------------------------------------------------ */

static uint64_t vv_get(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES]) {
  vvbuf v;
  memset(&v, 0, sizeof v);
  assert_err(vs_vv_each(store, vv_cb, &v), VS_OK);
  for (uint32_t i = 0; i < v.count; i++)
    if (memcmp(v.origins[i], origin, VS_ORIGIN_BYTES) == 0) return v.seqs[i];
  return 0;
}

typedef struct valbuf {
  uint8_t bytes[64];
  uint32_t len;
} valbuf;

static vs_err value_cb(const vs_state_entry *e, void *ctx) {
  valbuf *v = ctx;
  if (e->value_bytes > sizeof v->bytes) return VS_ERR_LIMIT;
  memcpy(v->bytes, e->value, e->value_bytes);
  v->len = e->value_bytes;
  return VS_OK;
}

/* The live value of `target` is `want` (NULL: absent). */
static void assert_value(vs_store *s, const char *target, const char *want) {
  valbuf v;
  memset(&v, 0, sizeof v);
  vs_err err = vs_state_get(s, (const uint8_t *)target, (uint32_t)strlen(target), false, value_cb, &v);
  if (want == NULL) {
    assert_err(err, VS_ERR_NOTFOUND);
    return;
  }
  assert_err(err, VS_OK);
  assert_int_equal(v.len, strlen(want));
  assert_memory_equal(v.bytes, want, v.len);
}

/* ------------------------------------------------------------------------ */
/* 1. Signing of local writes                                                */
/* ------------------------------------------------------------------------ */

/* The op at `seq` of `l` carries a signature that verifies. */
static void assert_signed(vs_store *s, const oplist *l, uint64_t seq) {
  uint8_t sig[VS_SIGNATURE_BYTES];
  assert_true(seq >= 1 && seq <= l->count);
  assert_err(vs_apply_sig_get(s, &l->ops[seq - 1].id, sig), VS_OK);
  assert_true(vs_chain_verify(l->origin, seq, l->hashes[seq - 1], sig));
  uint64_t next = 0;
  assert_err(vs_apply_next_signed(s, l->origin, seq, &next), VS_OK);
  assert_int_equal(next, seq);
}

static void test_apply_local_commits_are_signed(void **state) {
  (void)state;
  node a;
  node_open(&a, "apply-sign", 1);
  uint64_t commit_last[8];
  uint32_t commits = 0;
  commit_last[commits++] = wr(&a, "put", "x", "1", T0_MS).seq;
  commit_last[commits++] = wr(&a, "incr", "y", "5", T0_MS + 1).seq;
  vs_write_req batch[4] = {req_of("put", "p", "a"), req_of("del", "x", NULL), req_of("incr", "y", "-2"),
                           req_of("app.note", "n", "hello")};
  vs_write_result res[4];
  assert_err(vs_write_batch(a.store, a.id.pk, batch, 4, T0_MS + 2, res), VS_OK);
  commit_last[commits++] = res[3].seq;
  commit_last[commits++] = wr(&a, "put", "z", "9", T0_MS + 3).seq;

  oplist *l = collect(a.store, a.id.pk);
  assert_int_equal(l->count, 7);
  for (uint32_t i = 0; i < commits; i++) assert_signed(a.store, l, commit_last[i]);
  /* The next signed op at or after seq 3 ends the batch (3..6). */
  uint64_t next = 0;
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 3, &next), VS_OK);
  assert_int_equal(next, 6);
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 8, &next), VS_ERR_NOTFOUND);
  /* A signature covers the op's own chain head only. */
  uint8_t sig[VS_SIGNATURE_BYTES];
  assert_err(vs_apply_sig_get(a.store, &l->ops[6].id, sig), VS_OK);
  assert_false(vs_chain_verify(a.id.pk, 6, l->hashes[6], sig));
  assert_false(vs_chain_verify(a.id.pk, 7, l->hashes[5], sig));
  oplist_free(l);
  node_close(&a);
}

static void test_apply_big_batch_signed_every_interval(void **state) {
  (void)state;
  node a;
  node_open(&a, "apply-bigsign", 2);
  enum { N = 150 };
  static uint8_t payload[1024];
  memset(payload, 'v', sizeof payload);
  char targets[N][16];
  vs_write_req reqs[N];
  for (unsigned i = 0; i < N; i++) {
    snprintf(targets[i], sizeof targets[i], "big%03u", i);
    reqs[i] = req_of("put", targets[i], NULL);
    reqs[i].payload = payload;
    reqs[i].payload_bytes = sizeof payload;
  }
  wr(&a, "put", "before", "0", T0_MS); /* seq 1, its own commit */
  assert_err(vs_write_batch(a.store, a.id.pk, reqs, N, T0_MS + 1, NULL), VS_OK);

  oplist *l = collect(a.store, a.id.pk);
  assert_int_equal(l->count, N + 1);
  uint64_t total = 0;
  for (uint32_t i = 1; i <= N; i++) total += vs_op_encoded_bytes(&l->ops[i]);
  assert_true(total > 2u * VS_SIGN_INTERVAL_BYTES); /* room for two intermediate signatures */

  /* Walk the batch's runs: every signature verifies; the bytes before a
   * run's signed op stay under the interval; the commit ends signed. */
  uint64_t seq = 2, signed_in_batch = 0;
  while (seq <= N + 1u) {
    uint64_t end = 0;
    assert_err(vs_apply_next_signed(a.store, a.id.pk, seq, &end), VS_OK);
    assert_signed(a.store, l, end);
    uint64_t unsigned_bytes = 0;
    for (uint64_t s = seq; s < end; s++) unsigned_bytes += vs_op_encoded_bytes(&l->ops[s - 1]);
    assert_true(unsigned_bytes < VS_SIGN_INTERVAL_BYTES);
    signed_in_batch++;
    seq = end + 1;
  }
  assert_int_equal(seq, N + 2u);
  assert_true(signed_in_batch >= 3); /* at least two intermediate + the commit's last */
  /* A receiver takes the batch as the runs cut at those signatures. */
  node b;
  node_open(&b, "apply-bigrecv", 5);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 2), N + 1);
  assert_converged(a.store, b.store);
  node_close(&b);
  oplist_free(l);
  node_close(&a);
}

static void test_apply_other_origins_not_signed(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-nosign", 3);
  node_open_ex(&b, "apply-noid", 4, false);
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 0x5a);

  /* a has an identity, but writes as another origin: not signed. */
  vs_write_req r = req_of("put", "k", "v");
  assert_err(vs_write(a.store, other, &r, T0_MS, NULL), VS_OK);
  vs_write_req two[2] = {req_of("put", "k2", "v"), req_of("incr", "c", "1")};
  assert_err(vs_write_batch(a.store, other, two, 2, T0_MS, NULL), VS_OK);
  oplist *l = collect(a.store, other);
  assert_int_equal(l->count, 3);
  uint64_t next = 0;
  uint8_t sig[VS_SIGNATURE_BYTES];
  assert_err(vs_apply_next_signed(a.store, other, 1, &next), VS_ERR_NOTFOUND);
  for (uint32_t i = 0; i < l->count; i++) assert_err(vs_apply_sig_get(a.store, &l->ops[i].id, sig), VS_ERR_NOTFOUND);
  oplist_free(l);
  /* Its own origin still is. */
  assert_int_equal(wr(&a, "put", "own", "1", T0_MS).seq, 1);
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 1, &next), VS_OK);
  assert_int_equal(next, 1);

  /* b has no identity: its own key's writes are not signed either. */
  wr(&b, "put", "k", "v", T0_MS);
  assert_err(vs_apply_next_signed(b.store, b.id.pk, 1, &next), VS_ERR_NOTFOUND);
  /* Installed, then removed again: only the write in between is signed. */
  assert_err(vs_store_set_identity(b.store, &b.id), VS_OK);
  wr(&b, "put", "k", "w", T0_MS);
  assert_err(vs_store_set_identity(b.store, NULL), VS_OK);
  wr(&b, "put", "k", "x", T0_MS);
  l = collect(b.store, b.id.pk);
  assert_int_equal(l->count, 3);
  assert_err(vs_apply_sig_get(b.store, &l->ops[0].id, sig), VS_ERR_NOTFOUND);
  assert_signed(b.store, l, 2);
  assert_err(vs_apply_sig_get(b.store, &l->ops[2].id, sig), VS_ERR_NOTFOUND);
  assert_err(vs_apply_next_signed(b.store, b.id.pk, 3, &next), VS_ERR_NOTFOUND);
  oplist_free(l);
  assert_err(vs_store_set_identity(NULL, &b.id), VS_ERR_INVAL);
  node_close(&a);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* 2. Two nodes converge                                                     */
/* ------------------------------------------------------------------------ */

/* A's history: puts, incrs, dels, other kinds, singles and batches. */
static void write_history_a(node *a, uint64_t t) {
  wr(a, "put", "k1", "one", t);
  wr(a, "incr", "ctr", "5", t + 1);
  vs_write_req b1[3] = {req_of("put", "k2", "two"), req_of("incr", "ctr", "-2"), req_of("del", "k1", NULL)};
  assert_err(vs_write_batch(a->store, a->id.pk, b1, 3, t + 2, NULL), VS_OK);
  wr(a, "app.event", "ev", "opaque", t + 3);
  vs_write_req b2[2] = {req_of("put", "shared", "from-a"), req_of("incr", "gone", "7")};
  assert_err(vs_write_batch(a->store, a->id.pk, b2, 2, t + 4, NULL), VS_OK);
  wr(a, "del", "gone", NULL, t + 5);
}

static void write_history_b(node *b, uint64_t t) {
  wr(b, "put", "shared", "from-b", t);
  wr(b, "incr", "ctr", "10", t + 1);
  vs_write_req bb[2] = {req_of("put", "b-only", "x"), req_of("del", "k2", NULL)};
  assert_err(vs_write_batch(b->store, b->id.pk, bb, 2, t + 2, NULL), VS_OK);
}

static void test_apply_two_nodes_converge(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-a", 10);
  node_open(&b, "apply-b", 11);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  vs_outbox *bob;
  assert_err(vs_outbox_open(b.store, &ocfg, &bob), VS_OK);

  write_history_a(&a, T0_MS);
  oplist *la = collect(a.store, a.id.pk);
  assert_int_equal(la->count, 9);
  run runs[RUNS_MAX];
  uint32_t nruns = cut_runs(a.store, la, runs, RUNS_MAX);
  assert_int_equal(nruns, 6); /* one per commit */
  uint64_t expect_head = 0;
  for (uint32_t i = 0; i < nruns; i++) {
    vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
    uint64_t lsn_before = last_lsn(b.store);
    assert_err(apply_run(&b, la, &runs[i], T0_MS + 100, &res), VS_OK);
    expect_head += runs[i].count;
    assert_int_equal(res.applied, runs[i].count);
    assert_int_equal(res.duplicates, 0);
    assert_int_equal(res.head_seq, expect_head);
    assert_int_equal(last_lsn(b.store), lsn_before + runs[i].count);
  }
  assert_converged(a.store, b.store);
  assert_int_equal(vv_get(b.store, a.id.pk), 9);

  /* B's WAL holds A's ops, byte for byte (same hashes), and B kept the
   * signatures it received at the run ends. */
  oplist *lb = collect(b.store, a.id.pk);
  assert_int_equal(lb->count, la->count);
  for (uint32_t i = 0; i < la->count; i++) {
    assert_memory_equal(lb->hashes[i], la->hashes[i], VS_HASH_BYTES);
    assert_true(vs_op_id_equal(&lb->ops[i].id, &la->ops[i].id));
    assert_int_equal(lb->ops[i].hlc, la->ops[i].hlc);
  }
  for (uint32_t i = 0; i < nruns; i++) assert_signed(b.store, lb, runs[i].first + runs[i].count);
  oplist_free(lb);

  /* Received ops create no outbox entry: the outbox pushes own writes. */
  vs_outbox_counts c;
  assert_err(vs_outbox_counts_get(bob, &c), VS_OK);
  assert_int_equal(c.pending + c.inflight + c.done + c.failed, 0);

  /* B writes (after A, its HLC advanced); A applies B's runs: both agree. */
  write_history_b(&b, T0_MS + 200);
  assert_err(vs_outbox_counts_get(bob, &c), VS_OK);
  assert_int_equal(c.pending, 4);
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 300), 4);
  assert_converged(a.store, b.store);
  assert_int_equal(vv_get(a.store, b.id.pk), 4);
  assert_int_equal(vv_get(a.store, a.id.pk), 9);
  assert_int_equal(last_lsn(a.store), 13);
  assert_int_equal(last_lsn(b.store), 13);

  /* Values as the data model says: B's later put of "shared" wins, the
   * counter sums both origins' incrs, deletes leave the targets absent. */
  assert_value(a.store, "shared", "from-b");
  assert_value(a.store, "ctr", "13");
  assert_value(a.store, "b-only", "x");
  assert_value(a.store, "k1", NULL);
  assert_value(a.store, "k2", NULL);
  assert_value(a.store, "gone", NULL);
  oplist_free(la);
  vs_outbox_close(bob);
  node_close(&a);
  node_close(&b);
}

/* Concurrent histories (neither saw the other), exchanged in both orders. */
static void test_apply_concurrent_writes_converge(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-ca", 12);
  node_open(&b, "apply-cb", 13);
  write_history_a(&a, T0_MS);
  write_history_b(&b, T0_MS + 1); /* interleaved HLCs: both sides win somewhere */
  wr(&a, "put", "late", "a", T0_MS + 50);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 60), 10);
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 60), 4);
  assert_converged(a.store, b.store);
  /* A second full exchange changes nothing (G4). */
  uint64_t la = last_lsn(a.store), lb = last_lsn(b.store);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 70), 0);
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 70), 0);
  assert_int_equal(sync_origin(&a, &b, b.id.pk, T0_MS + 70), 0);
  assert_int_equal(sync_origin(&b, &a, a.id.pk, T0_MS + 70), 0);
  assert_int_equal(last_lsn(a.store), la);
  assert_int_equal(last_lsn(b.store), lb);
  assert_converged(a.store, b.store);
  node_close(&a);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* 3. Relay                                                                  */
/* ------------------------------------------------------------------------ */

static void test_apply_relay_through_b(void **state) {
  (void)state;
  node a, b, c;
  node_open(&a, "apply-ra", 20);
  node_open(&b, "apply-rb", 21);
  node_open(&c, "apply-rc", 22);
  write_history_a(&a, T0_MS);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 10), 9);
  write_history_b(&b, T0_MS + 20);
  /* C only ever hears from B: B's own ops first, then A's, forwarded with
   * the signatures B stored when it received them. */
  assert_int_equal(sync_origin(&b, &c, b.id.pk, T0_MS + 30), 4);
  assert_int_equal(sync_origin(&b, &c, a.id.pk, T0_MS + 30), 9);
  /* A gets B's ops directly. */
  assert_int_equal(sync_origin(&b, &a, b.id.pk, T0_MS + 30), 4);
  assert_converged(a.store, b.store);
  assert_converged(b.store, c.store);
  assert_converged(a.store, c.store);

  /* More writes by A reach C through B only, in several commits. */
  wr(&a, "put", "k1", "again", T0_MS + 40);
  vs_write_req r[2] = {req_of("incr", "ctr", "100"), req_of("put", "x", "y")};
  assert_err(vs_write_batch(a.store, a.id.pk, r, 2, T0_MS + 41, NULL), VS_OK);
  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS + 50), 3);
  assert_int_equal(sync_origin(&b, &c, a.id.pk, T0_MS + 50), 3);
  assert_converged(a.store, c.store);
  assert_converged(b.store, c.store);
  /* C relays back to A: nothing new there. */
  assert_int_equal(sync_origin(&c, &a, a.id.pk, T0_MS + 60), 0);
  assert_int_equal(sync_origin(&c, &a, b.id.pk, T0_MS + 60), 0);
  node_close(&a);
  node_close(&b);
  node_close(&c);
}

/* ------------------------------------------------------------------------ */
/* 4. Duplicates and overlaps                                                */
/* ------------------------------------------------------------------------ */

static void test_apply_duplicates_change_nothing(void **state) {
  (void)state;
  node a, b;
  node_open(&a, "apply-da", 30);
  node_open(&b, "apply-db", 31);
  write_three_commits(&a, T0_MS);
  oplist *l = collect(a.store, a.id.pk);
  run runs[RUNS_MAX];
  assert_int_equal(cut_runs(a.store, l, runs, RUNS_MAX), 3);
  assert_int_equal(runs[0].count, 3);
  assert_int_equal(runs[1].count, 2);

  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 3);
  snap s;
  snap_take(b.store, a.id.pk, &s);
  /* The same run again: all duplicates, nothing written. */
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], T0_MS + 5, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 3);
  assert_int_equal(res.head_seq, 3);
  snap_check(b.store, a.id.pk, &s);
  free(s.dump);

  /* An overlapping run [2..5] (a sender that cut differently, signature at
   * 5): only 4 and 5 are new. */
  run over = runs[1];
  over.first = 1;
  over.count = 4;
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &over, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 2);
  assert_int_equal(res.duplicates, 2);
  assert_int_equal(res.head_seq, 5);
  assert_int_equal(last_lsn(b.store), 5);
  /* The whole chain [1..6] at once: only 6 is new. */
  run all = runs[2];
  all.first = 0;
  all.count = 6;
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &all, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_int_equal(res.duplicates, 5);
  assert_int_equal(res.head_seq, 6);
  assert_converged(a.store, b.store);
  /* A run entirely below the head is all duplicates. */
  snap_take(b.store, a.id.pk, &s);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[1], T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 2);
  assert_int_equal(res.head_seq, 6);
  snap_check(b.store, a.id.pk, &s);
  free(s.dump);
  /* The origin's own ops coming back to it are duplicates as well. */
  uint64_t lsn_a = last_lsn(a.store);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&a, l, &all, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 6);
  assert_int_equal(last_lsn(a.store), lsn_a);
  oplist_free(l);
  node_close(&a);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* 5. Rejections                                                             */
/* ------------------------------------------------------------------------ */

#define SCRATCH_OPS 8u

/* A private copy of a run whose bytes a test may tamper with. */
typedef struct scratch {
  vs_op ops[SCRATCH_OPS];
  uint8_t bufs[SCRATCH_OPS][256];
  uint32_t count;
  uint8_t sig[VS_SIGNATURE_BYTES];
} scratch;

static void scratch_from(scratch *s, const oplist *l, const run *r) {
  assert_true(r->count <= SCRATCH_OPS);
  memset(s, 0, sizeof *s);
  for (uint32_t i = 0; i < r->count; i++) {
    const vs_op *src = &l->ops[r->first + i];
    assert_true((size_t)src->target_bytes + src->payload_bytes <= sizeof s->bufs[i]);
    s->ops[i] = *src;
    memcpy(s->bufs[i], src->target, src->target_bytes);
    memcpy(s->bufs[i] + src->target_bytes, src->payload, src->payload_bytes);
    s->ops[i].target = s->bufs[i];
    s->ops[i].payload = s->bufs[i] + src->target_bytes;
  }
  s->count = r->count;
  memcpy(s->sig, r->sig, VS_SIGNATURE_BYTES);
}

static vs_err scratch_apply(node *dst, const scratch *s) {
  vs_apply_result res;
  return vs_apply_run(dst->store, s->ops, s->count, s->sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res);
}

/* Writable payload byte of a scratch op (the copy owns it). */
static uint8_t *payload_at(scratch *s, uint32_t i) {
  assert_true(s->ops[i].payload_bytes > 0);
  return s->bufs[i] + s->ops[i].target_bytes;
}

/* After a refusal: nothing changed, and the store still takes valid runs
 * (the rest of A's chain) and local writes. */
static void assert_refused_then_usable(reject_fx *f) {
  snap_check(f->b.store, f->a.id.pk, &f->s);
  for (uint32_t i = 1; i < f->nruns; i++) {
    vs_apply_result res;
    assert_err(apply_run(&f->b, f->la, &f->runs[i], T0_MS, &res), VS_OK);
    assert_int_equal(res.applied, f->runs[i].count);
  }
  assert_int_equal(vv_get(f->b.store, f->a.id.pk), f->la->count);
  wr(&f->b, "put", "after", "ok", T0_MS + 10);
  assert_int_equal(sync_origin(&f->b, &f->a, f->b.id.pk, T0_MS + 20), 3);
  assert_converged(f->a.store, f->b.store);
}

static void test_apply_rejects_forged_signature(void **state) {
  reject_fx *f = *state;
  for (unsigned byte = 0; byte < VS_SIGNATURE_BYTES; byte += 21) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[1]);
    s.sig[byte] ^= 0x01;
    assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  memset(s.sig, 0, sizeof s.sig);
  /* All zero: the mark of a run vouched for by fork evidence (apply.h,
   * FORKS), which this store does not hold: refused, nothing stored. */
  assert_err(scratch_apply(&f->b, &s), VS_ERR_FORKED);
  snap_check(f->b.store, f->a.id.pk, &f->s);
  /* The signature of another op of the same origin does not fit either. */
  scratch_from(&s, f->la, &f->runs[1]);
  memcpy(s.sig, f->runs[0].sig, VS_SIGNATURE_BYTES);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_signature_by_other_identity(void **state) {
  reject_fx *f = *state;
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  /* B signs A's real chain head at 6: a valid signature, by the wrong key. */
  vs_chain_sign(&f->b.id, 6, f->la->hashes[5], s.sig);
  assert_true(vs_chain_verify(f->b.id.pk, 6, f->la->hashes[5], s.sig));
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_tampered_last_payload(void **state) {
  reject_fx *f = *state;
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  payload_at(&s, 2)[0] ^= 0x20; /* incr "40" -> "\x140": its hash changed */
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  /* A single-op run tampered likewise. */
  scratch_from(&s, f->la, &f->runs[2]);
  payload_at(&s, 0)[0] ^= 0x01;
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  /* Its kind or target likewise (part of the hash). */
  scratch_from(&s, f->la, &f->runs[1]);
  s.ops[2].kind[0] = 'j';
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  scratch_from(&s, f->la, &f->runs[1]);
  s.ops[2].hlc++;
  assert_err(scratch_apply(&f->b, &s), VS_ERR_AUTH);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_tampered_middle_payload(void **state) {
  reject_fx *f = *state;
  for (uint32_t i = 0; i < 2; i++) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[1]);
    payload_at(&s, i)[0] ^= 0x01;
    /* The signature (over op 6) still verifies; op i+1's prev no longer
     * links to the tampered op, so the signature does not cover the run. */
    assert_err(scratch_apply(&f->b, &s), VS_ERR_MALFORMED);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  /* A tampered hlc in the middle breaks the link the same way. */
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  s.ops[1].hlc ^= 1;
  assert_err(scratch_apply(&f->b, &s), VS_ERR_MALFORMED);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_tampered_prev(void **state) {
  reject_fx *f = *state;
  /* prev of the first op (it no longer links to B's head) and of a middle
   * op (it no longer links to the op before). */
  for (uint32_t i = 0; i < 2; i++) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[1]);
    s.ops[i].prev[7] ^= 0x80;
    /* Either way the run's own links break (op 0's hash covers its prev),
     * so the signature does not cover it: forged. A one-op run whose prev
     * misses the held head is a chain error (below). */
    assert_err(scratch_apply(&f->b, &s), VS_ERR_MALFORMED);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  /* The origin itself signs a head whose prev does not link: the signature
   * is genuine, the chain is not. */
  scratch s;
  scratch_from(&s, f->la, &f->runs[1]);
  s.count = 1;
  memset(s.ops[0].prev, 0xab, VS_HASH_BYTES);
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_op_hash(&s.ops[0], h), VS_OK);
  vs_chain_sign(&f->a.id, 4, h, s.sig);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_CHAIN);
  /* And a genuine signed seq 1 with a non-zero prev on a node without A. */
  node c;
  node_open(&c, "apply-xc", 42);
  scratch_from(&s, f->la, &f->runs[0]);
  s.count = 1;
  s.ops[0].prev[0] = 1;
  assert_err(vs_op_hash(&s.ops[0], h), VS_OK);
  vs_chain_sign(&f->a.id, 1, h, s.sig);
  assert_err(scratch_apply(&c, &s), VS_ERR_CHAIN);
  assert_int_equal(last_lsn(c.store), 0);
  assert_int_equal(vv_get(c.store, f->a.id.pk), 0);
  node_close(&c);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_gap(void **state) {
  reject_fx *f = *state;
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  /* Head is 3: runs starting at 7 and at 8 are ahead of the chain. */
  assert_err(apply_run(&f->b, f->la, &f->runs[2], T0_MS, &res), VS_ERR_CHAIN);
  assert_err(apply_run(&f->b, f->la, &f->runs[3], T0_MS, &res), VS_ERR_CHAIN);
  /* A run [5..6] (head + 2), with the genuine signature at 6. */
  run r = f->runs[1];
  r.first = 4;
  r.count = 2;
  assert_err(apply_run(&f->b, f->la, &r, T0_MS, &res), VS_ERR_CHAIN);
  /* Even the origin's own signature cannot skip a seq: op 5 linked
   * straight to op 3 (the held head), genuinely signed. */
  scratch s;
  scratch_from(&s, f->la, &r);
  s.count = 1;
  memcpy(s.ops[0].prev, f->la->hashes[2], VS_HASH_BYTES);
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_op_hash(&s.ops[0], h), VS_OK);
  vs_chain_sign(&f->a.id, 5, h, s.sig);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_CHAIN);
  snap_check(f->b.store, f->a.id.pk, &f->s);
  /* An origin the node never heard of must start at seq 1. */
  node c;
  node_open(&c, "apply-xg", 43);
  assert_err(apply_run(&c, f->la, &f->runs[1], T0_MS, &res), VS_ERR_CHAIN);
  assert_int_equal(last_lsn(c.store), 0);
  node_close(&c);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_bad_shape(void **state) {
  reject_fx *f = *state;
  scratch s;
  /* Mixed origins: A's 4, 5 then an op of B's origin (seq 6, its own id). */
  scratch_from(&s, f->la, &f->runs[1]);
  memcpy(s.ops[2].origin, f->b.id.pk, VS_ORIGIN_BYTES);
  vs_op_id_derive(s.ops[2].origin, s.ops[2].seq, &s.ops[2].id);
  assert_err(scratch_apply(&f->b, &s), VS_ERR_INVAL);
  /* Two genuine ops of two origins with consecutive seqs: A's 1, B's 2
   * (with B's genuine signature at its op 2). */
  run rb = {0, 2, {0}};
  assert_err(vs_apply_sig_get(f->b.store, &f->lb->ops[1].id, rb.sig), VS_OK);
  vs_op mixed[2] = {f->la->ops[0], f->lb->ops[1]};
  assert_err(vs_apply_run(f->b.store, mixed, 2, rb.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  /* Non-consecutive seqs: [4, 6] and [4, 4] and descending [5, 4]. */
  vs_op gap[2] = {f->la->ops[3], f->la->ops[5]};
  assert_err(vs_apply_run(f->b.store, gap, 2, f->runs[1].sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  vs_op same[2] = {f->la->ops[3], f->la->ops[3]};
  assert_err(vs_apply_run(f->b.store, same, 2, f->runs[1].sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  vs_op desc[2] = {f->la->ops[4], f->la->ops[3]};
  assert_err(vs_apply_run(f->b.store, desc, 2, f->runs[1].sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, NULL), VS_ERR_INVAL);
  /* An id that is not the one of (origin, seq): a flipped bit, another
   * op's id, the last op's id. */
  for (uint32_t i = 0; i < 3; i++) {
    scratch_from(&s, f->la, &f->runs[1]);
    if (i == 0) s.ops[0].id.bytes[VS_OP_ID_BYTES - 1] ^= 1;
    if (i == 1) s.ops[1].id = f->la->ops[0].id;
    if (i == 2) s.ops[2].id.bytes[0] ^= 0x40;
    assert_err(scratch_apply(&f->b, &s), VS_ERR_INVAL);
    snap_check(f->b.store, f->a.id.pk, &f->s);
  }
  /* count 0, past the limit, NULL arguments. */
  scratch_from(&s, f->la, &f->runs[1]);
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(f->b.store, s.ops, 0, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_err(vs_apply_run(f->b.store, s.ops, VS_APPLY_RUN_OPS_MAX + 1u, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res),
             VS_ERR_INVAL);
  assert_err(vs_apply_run(NULL, s.ops, 3, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_err(vs_apply_run(f->b.store, NULL, 3, s.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_err(vs_apply_run(f->b.store, s.ops, 3, NULL, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_INVAL);
  assert_refused_then_usable(f);
}

static void test_apply_rejects_op_claiming_other_origin(void **state) {
  reject_fx *f = *state;
  /* A's run relabelled as B's origin (ids re-derived, so the shape is fine)
   * but still carrying A's signature: B's key never signed it. Sent to a
   * node C that holds nothing of B, at B's seqs 1..3 and at A's 4..6. */
  node c;
  node_open(&c, "apply-xo", 44);
  for (uint32_t r = 0; r < 2; r++) {
    scratch s;
    scratch_from(&s, f->la, &f->runs[r]);
    for (uint32_t i = 0; i < s.count; i++) {
      memcpy(s.ops[i].origin, f->b.id.pk, VS_ORIGIN_BYTES);
      vs_op_id_derive(s.ops[i].origin, s.ops[i].seq, &s.ops[i].id);
    }
    if (r == 1) { /* and a prev chain that links, to leave only the key */
      for (uint32_t i = 1; i < s.count; i++) assert_err(vs_op_hash(&s.ops[i - 1], s.ops[i].prev), VS_OK);
    }
    /* r 0: the relabelled ops' links break (MALFORMED); r 1: only the
     * key is wrong, the signature does not verify (AUTH). */
    vs_err want = r == 0 ? VS_ERR_MALFORMED : VS_ERR_AUTH;
    assert_err(scratch_apply(&c, &s), want);
    assert_err(scratch_apply(&f->b, &s), want);
  }
  assert_int_equal(last_lsn(c.store), 0);
  node_close(&c);
  assert_refused_then_usable(f);
  assert_int_equal(vv_get(f->b.store, f->b.id.pk), 3);
}

/* ------------------------------------------------------------------------ */
/* 6. HLC drift                                                              */
/* ------------------------------------------------------------------------ */

#define DAY_MS (24ull * 3600ull * 1000ull)
#define HLC_WALL_MAX_MS 0xffffffffffffull /* the HLC's 48-bit wall clock, at its end */

/* One signed op of `id`, built by hand (a hostile origin need not use
 * vs_write): kind put, hlc as given, linked to `prev`. `sig` signs its
 * chain head. */
typedef struct crafted {
  vs_op op;
  uint8_t hash[VS_HASH_BYTES];
  uint8_t sig[VS_SIGNATURE_BYTES];
} crafted;

static void craft(const vs_identity *id, uint64_t seq, const uint8_t prev[VS_HASH_BYTES], uint64_t hlc,
                  const char *target, const char *value, crafted *out) {
  assert_err(vs_op_init(&out->op, id->pk, seq, hlc, prev, "put", (const uint8_t *)target, (uint32_t)strlen(target),
                        (const uint8_t *)value, (uint32_t)strlen(value)),
             VS_OK);
  assert_err(vs_op_hash(&out->op, out->hash), VS_OK);
  vs_chain_sign(id, seq, out->hash, out->sig);
}

/* The pin attack of issue 14: a signed op with hlc 2^64-1 must not be
 * applied (it would be the greatest (hlc, origin) of its target forever, so
 * every later honest put or del would return an op id and never show). It
 * waits, with its origin's chain behind it, stores nothing, and the
 * receiver's honest writes take effect. It applies once the clock is there. */
static void test_apply_pin_attack_max_hlc_waits(void **state) {
  (void)state;
  node m, b;
  node_open(&m, "apply-pm", 80); /* the attacker: only its identity is used */
  node_open(&b, "apply-pb", 81);
  wr(&b, "put", "k", "b0", T0_MS);
  const uint8_t zero[VS_HASH_BYTES] = {0};
  crafted c1, c2;
  craft(&m.id, 1, zero, UINT64_MAX, "k", "pinned", &c1);
  craft(&m.id, 2, c1.hash, vs_hlc_make(T0_MS, 0), "k2", "honest-later", &c2);
  const vs_op both[2] = {c1.op, c2.op};

  snap before;
  snap_take(b.store, m.id.pk, &before);
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(b.store, &c1.op, 1, c1.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_FUTURE);
  assert_int_equal(res.applied, 0);
  assert_int_equal(res.duplicates, 0);
  assert_int_equal(res.deferred, 1);
  assert_int_equal(res.head_seq, 0);
  assert_int_equal(res.ahead_ms, HLC_WALL_MAX_MS - T0_MS);
  snap_check(b.store, m.id.pk, &before); /* nothing stored, the chain does not advance */
  /* Its chain waits behind it: the run through seq 2 waits as a whole, and
   * seq 2 alone is a gap. */
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(b.store, both, 2, c2.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_FUTURE);
  assert_int_equal(res.deferred, 2);
  assert_int_equal(res.applied, 0);
  assert_err(vs_apply_run(b.store, &c2.op, 1, c2.sig, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_CHAIN);
  /* Validity comes first: a forged far-future run is forged, not deferred. */
  uint8_t bad[VS_SIGNATURE_BYTES];
  memcpy(bad, c1.sig, sizeof bad);
  bad[5] ^= 1u;
  assert_err(vs_apply_run(b.store, &c1.op, 1, bad, T0_MS, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_AUTH);
  snap_check(b.store, m.id.pk, &before);
  free(before.dump);
  assert_int_equal(vv_get(b.store, m.id.pk), 0);

  /* Honest puts and dels on the key take effect, with honest timestamps. */
  vs_write_result w = wr(&b, "put", "k", "b1", T0_MS + 1);
  assert_value(b.store, "k", "b1");
  assert_true(w.hlc <= vs_hlc_make(T0_MS + 1, 0) + HLC_SLACK);
  wr(&b, "del", "k", NULL, T0_MS + 2);
  assert_value(b.store, "k", NULL);
  wr(&b, "put", "k", "b2", T0_MS + 3);
  assert_value(b.store, "k", "b2");

  /* A clock one ms short of the op's wall time minus the drift: still waits.
   * At it: the run applies (both ops). */
  const uint64_t due_ms = HLC_WALL_MAX_MS - VS_MAX_DRIFT_MS_DEFAULT;
  assert_err(vs_apply_run(b.store, both, 2, c2.sig, due_ms - 1, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_ERR_FUTURE);
  assert_int_equal(res.ahead_ms, VS_MAX_DRIFT_MS_DEFAULT + 1);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(vs_apply_run(b.store, both, 2, c2.sig, due_ms, VS_MAX_DRIFT_MS_DEFAULT, &res), VS_OK);
  assert_int_equal(res.applied, 2);
  assert_int_equal(res.deferred, 0);
  assert_int_equal(vv_get(b.store, m.id.pk), 2);
  assert_value(b.store, "k2", "honest-later");
  node_close(&m);
  node_close(&b);
}

/* A device whose clock runs a day ahead: its write waits on a receiver
 * whose clock is right (so it does not silently win every race there), the
 * receiver's own writes take effect meanwhile, and once the receiver's clock
 * is within the drift of it, it applies, moves the receiver's HLC to at
 * least its HLC, and the receiver's next write wins over it everywhere. */
static void test_apply_day_ahead_waits_then_orders(void **state) {
  (void)state;
  node s, b;
  node_open(&s, "apply-das", 82);
  node_open(&b, "apply-dab", 83);
  wr(&b, "put", "k", "b0", T0_MS);
  assert_int_equal(sync_origin(&b, &s, b.id.pk, T0_MS + DAY_MS), 1);
  wr(&s, "put", "k", "ahead", T0_MS + DAY_MS);
  assert_value(s.store, "k", "ahead");
  oplist *l = collect(s.store, s.id.pk);
  run runs[RUNS_MAX];
  assert_int_equal(cut_runs(s.store, l, runs, RUNS_MAX), 1);
  assert_int_equal(l->ops[0].hlc, vs_hlc_make(T0_MS + DAY_MS, 0));

  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], T0_MS, &res), VS_ERR_FUTURE);
  assert_int_equal(res.deferred, 1);
  assert_int_equal(res.ahead_ms, DAY_MS);
  assert_value(b.store, "k", "b0");
  assert_int_equal(vv_get(b.store, s.id.pk), 0);
  vs_write_result w = wr(&b, "put", "k", "b1", T0_MS + 10);
  assert_value(b.store, "k", "b1");
  assert_true(w.hlc < l->ops[0].hlc); /* B's HLC was not dragged a day ahead */

  /* B's clock catches up to within the drift: it applies. */
  const uint64_t due_ms = T0_MS + DAY_MS - VS_MAX_DRIFT_MS_DEFAULT;
  assert_err(apply_run(&b, l, &runs[0], due_ms - 1, &res), VS_ERR_FUTURE);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, true, 99, true};
  assert_err(apply_run(&b, l, &runs[0], due_ms, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_value(b.store, "k", "ahead");
  /* Every applied op moves the HLC: B's next write, though B's wall clock is
   * an hour behind the op's, is ordered after it and wins everywhere. */
  w = wr(&b, "put", "k", "b2", due_ms);
  assert_true(w.hlc > l->ops[0].hlc);
  assert_true(w.hlc <= l->ops[0].hlc + HLC_SLACK);
  assert_value(b.store, "k", "b2");
  assert_int_equal(sync_origin(&b, &s, b.id.pk, T0_MS + DAY_MS), 2);
  assert_converged(s.store, b.store);
  assert_value(s.store, "k", "b2");
  oplist_free(l);
  node_close(&s);
  node_close(&b);
}

static void test_apply_hlc_within_drift_advances(void **state) {
  (void)state;
  /* A peer ten minutes ahead (within the hour): the receiver's next write
   * is ordered after what it received (HLC causality). */
  const uint64_t ahead_ms = T0_MS + 10ull * 60ull * 1000ull;
  node s, b;
  node_open(&s, "apply-ds", 63);
  node_open(&b, "apply-db2", 64);
  wr(&s, "put", "k", "peer", ahead_ms);
  assert_int_equal(sync_origin(&s, &b, s.id.pk, T0_MS), 1);
  oplist *l = collect(s.store, s.id.pk);
  vs_write_result w = wr(&b, "put", "k", "mine", T0_MS);
  assert_true(w.hlc > l->ops[0].hlc);
  assert_true(w.hlc <= l->ops[0].hlc + HLC_SLACK);
  /* So B's put wins everywhere, though B's wall clock is behind. */
  assert_int_equal(sync_origin(&b, &s, b.id.pk, T0_MS), 1);
  assert_converged(s.store, b.store);
  assert_value(s.store, "k", "mine");
  oplist_free(l);
  node_close(&s);
  node_close(&b);
}

/* ------------------------------------------------------------------------ */
/* Look-ups                                                                  */
/* ------------------------------------------------------------------------ */

static void test_apply_lookups_bad_args(void **state) {
  (void)state;
  node a;
  node_open(&a, "apply-la", 70);
  vs_write_result w = wr(&a, "put", "k", "v", T0_MS);
  uint8_t sig[VS_SIGNATURE_BYTES];
  uint64_t seq = 0;
  assert_err(vs_apply_sig_get(NULL, &w.op_id, sig), VS_ERR_INVAL);
  assert_err(vs_apply_sig_get(a.store, NULL, sig), VS_ERR_INVAL);
  assert_err(vs_apply_sig_get(a.store, &w.op_id, NULL), VS_ERR_INVAL);
  assert_err(vs_apply_next_signed(NULL, a.id.pk, 1, &seq), VS_ERR_INVAL);
  assert_err(vs_apply_next_signed(a.store, NULL, 1, &seq), VS_ERR_INVAL);
  assert_err(vs_apply_next_signed(a.store, a.id.pk, 1, NULL), VS_ERR_INVAL);
  /* An unknown origin has nothing signed, even when its ids sort next to
   * a known one's. */
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 9);
  assert_err(vs_apply_next_signed(a.store, other, 1, &seq), VS_ERR_NOTFOUND);
  vs_op_id missing;
  vs_op_id_derive(a.id.pk, 2, &missing);
  assert_err(vs_apply_sig_get(a.store, &missing, sig), VS_ERR_NOTFOUND);
  node_close(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_local_commits_are_signed),
      cmocka_unit_test(test_apply_big_batch_signed_every_interval),
      cmocka_unit_test(test_apply_other_origins_not_signed),
      cmocka_unit_test(test_apply_two_nodes_converge),
      cmocka_unit_test(test_apply_concurrent_writes_converge),
      cmocka_unit_test(test_apply_relay_through_b),
      cmocka_unit_test(test_apply_duplicates_change_nothing),
      cmocka_unit_test_setup_teardown(test_apply_rejects_forged_signature, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_signature_by_other_identity, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_tampered_last_payload, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_tampered_middle_payload, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_tampered_prev, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_gap, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_bad_shape, reject_setup, reject_teardown),
      cmocka_unit_test_setup_teardown(test_apply_rejects_op_claiming_other_origin, reject_setup, reject_teardown),
      cmocka_unit_test(test_apply_pin_attack_max_hlc_waits),
      cmocka_unit_test(test_apply_day_ahead_waits_then_orders),
      cmocka_unit_test(test_apply_hlc_within_drift_advances),
      cmocka_unit_test(test_apply_lookups_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
