/* tests/test_apply_fork.c: pins include/vixsync/apply.h on forks: two
 * signed runs of one origin that disagree are refused and recorded, with
 * the evidence checked. The sender and the nodes are those of
 * test_apply.c (tests/apply_nodes.h). */

#include "apply_nodes.h"

/* ------------------------------------------------------------------------ */
/* Forks                                                                     */
/* ------------------------------------------------------------------------ */

/* The two hashes of a verdict, in the order vs_apply_forks gives them. */
static void expect_verdict(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *h1,
                           const uint8_t *h2) {
  vs_fork fk[2];
  uint64_t n = 0;
  memset(fk, 0, sizeof fk);
  assert_err(vs_apply_forks(s, fk, 2, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_memory_equal(fk[0].origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(fk[0].seq, seq);
  bool lo1 = memcmp(h1, h2, VS_HASH_BYTES) < 0;
  assert_memory_equal(fk[0].held_hash, lo1 ? h1 : h2, VS_HASH_BYTES);
  assert_memory_equal(fk[0].refused_hash, lo1 ? h2 : h1, VS_HASH_BYTES);
  uint64_t vf = 0;
  assert_err(vs_apply_void_from(s, origin, &vf), VS_OK);
  assert_int_equal(vf, seq);
}

/* The FORK message behind a store's verdict on `origin` (malloc'd). */
static uint8_t *evidence_of(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES], size_t *len) {
  uint8_t *buf = malloc(VS_MSG_BYTES_MAX);
  assert_non_null(buf);
  assert_err(vs_apply_fork_evidence(s, origin, buf, VS_MSG_BYTES_MAX, len), VS_OK);
  return buf;
}

/* A copied identity signs a different seq 1: the run that shows it is
 * refused and proves the fork (exact: seq 1), so the verdict voids the
 * origin from seq 1 on: B drops A's six ops, state and head. Forged or
 * empty evidence changes nothing; the evidence relayed makes A, A2 and a
 * new node reach the same verdict and state, and refuse the origin's ops
 * and writes from then on. */
static void test_apply_fork_refused_and_recorded(void **state) {
  (void)state;
  node a, a2, b, c;
  node_open(&a, "apply-fa", 50);
  node_open(&a2, "apply-fa2", 50); /* same seed: a copied identity */
  node_open(&b, "apply-fb", 51);
  node_open(&c, "apply-fc", 52);
  assert_memory_equal(a.id.pk, a2.id.pk, VS_ORIGIN_BYTES);
  write_three_commits(&a, T0_MS);
  vs_write_req other[3] = {req_of("put", "a", "forked"), req_of("put", "z", "zz"), req_of("put", "c", "3")};
  assert_err(vs_write_batch(a2.store, a2.id.pk, other, 3, T0_MS + 5, NULL), VS_OK);
  wr(&b, "put", "mine", "m", T0_MS + 1); /* B's own op survives the verdict */
  uint8_t b_only[VS_HASH_BYTES];
  state_hash(b.store, b_only);

  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS), 6);
  snap s;
  snap_take(b.store, a.id.pk, &s);
  assert_int_equal(s.forks, 0);

  oplist *l2 = collect(a2.store, a2.id.pk);
  oplist *la = collect(a.store, a.id.pk);
  run r2[RUNS_MAX], ra[RUNS_MAX];
  assert_int_equal(cut_runs(a2.store, l2, r2, RUNS_MAX), 1);
  assert_int_equal(cut_runs(a.store, la, ra, RUNS_MAX), 3);
  assert_int_equal(r2[0].count, 3);
  vs_apply_result res = {99, 99, 99, 99, 99, 99, true, 99, true};
  /* An unauthenticated fork is no evidence: a forged signature on the
   * conflicting run is AUTH and changes nothing. */
  run forged = r2[0];
  forged.sig[5] ^= 0x10;
  assert_err(apply_run(&b, l2, &forged, T0_MS, &res), VS_ERR_AUTH);
  snap_check(b.store, a.id.pk, &s);
  free(s.dump);
  memset(&res, 0, sizeof res);
  assert_err(apply_run(&b, l2, &r2[0], T0_MS, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  assert_int_equal(res.fork_seq, 1);
  /* Void from seq 1: nothing of A's origin is held; B's own op is. */
  expect_verdict(b.store, a.id.pk, 1, la->hashes[0], l2->hashes[0]);
  uint64_t head = 99;
  assert_err(vs_wal_head(b.store, a.id.pk, &head, NULL, NULL), VS_OK);
  assert_int_equal(head, 0);
  uint8_t h[VS_HASH_BYTES];
  state_hash(b.store, h);
  assert_memory_equal(h, b_only, VS_HASH_BYTES);
  /* Either branch is refused from now on; writing as that origin too. */
  assert_err(apply_run(&b, la, &ra[0], T0_MS, &res), VS_ERR_FORKED);
  assert_err(apply_run(&b, l2, &r2[0], T0_MS, &res), VS_ERR_FORKED);
  vs_write_req w1 = req_of("put", "x", "y");
  assert_err(vs_write(b.store, a.id.pk, &w1, T0_MS + 20, NULL), VS_ERR_FORKED);

  /* Evidence checks: forged (AUTH), the same branch twice, truncated
   * (MALFORMED): nothing changes on C. */
  size_t ev_len = 0;
  uint8_t *ev = evidence_of(b.store, a.id.pk, &ev_len);
  uint8_t *bad = malloc(ev_len);
  assert_non_null(bad);
  vs_fork_result fr;
  memcpy(bad, ev, ev_len);
  bad[1 + VS_ORIGIN_BYTES + 8 + 3] ^= 1; /* the first proof's signature */
  assert_err(vs_apply_fork(c.store, bad, ev_len, &fr), VS_ERR_AUTH);
  assert_err(vs_apply_fork(c.store, ev, ev_len - 1, &fr), VS_ERR_MALFORMED);
  vs_fork_msg m;
  assert_err(vs_msg_fork_decode(ev, ev_len, &m), VS_OK);
  vs_fork_proof twice[2] = {m.proof[0], m.proof[0]};
  size_t tw_len = 0;
  uint8_t *tw = malloc(VS_MSG_BYTES_MAX);
  assert_non_null(tw);
  assert_err(vs_msg_fork_encode(m.origin, m.seq, twice, tw, VS_MSG_BYTES_MAX, &tw_len), VS_OK);
  assert_err(vs_apply_fork(c.store, tw, tw_len, &fr), VS_ERR_MALFORMED);
  vs_fork_msg_free(&m);
  uint64_t nf = 9;
  assert_err(vs_apply_forks(c.store, NULL, 0, &nf), VS_OK);
  assert_int_equal(nf, 0);
  /* The real evidence: C takes the verdict, then refuses A's runs. */
  assert_err(vs_apply_fork(c.store, ev, ev_len, &fr), VS_OK);
  assert_true(fr.verdict);
  assert_false(fr.refolded);
  assert_err(apply_run(&c, la, &ra[0], T0_MS, &res), VS_ERR_FORKED);
  /* Again: nothing new. */
  assert_err(vs_apply_fork(c.store, ev, ev_len, &fr), VS_OK);
  assert_false(fr.verdict);
  /* A and A2 reach the same verdict: their own writes are void too, and
   * their identity writes no more. */
  assert_err(vs_apply_fork(a.store, ev, ev_len, &fr), VS_OK);
  assert_true(fr.verdict && fr.refolded);
  assert_err(vs_apply_fork(a2.store, ev, ev_len, &fr), VS_OK);
  uint8_t ha[VS_HASH_BYTES], ha2[VS_HASH_BYTES], hc[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  state_hash(a.store, ha);
  state_hash(a2.store, ha2);
  state_hash(c.store, hc);
  assert_memory_equal(ha, zero, VS_HASH_BYTES);
  assert_memory_equal(ha2, zero, VS_HASH_BYTES);
  assert_memory_equal(hc, zero, VS_HASH_BYTES);
  assert_err(vs_write(a.store, a.id.pk, &w1, T0_MS + 20, NULL), VS_ERR_FORKED);
  expect_verdict(a2.store, a.id.pk, 1, la->hashes[0], l2->hashes[0]);
  wr(&b, "put", "mine2", "m", T0_MS + 21); /* B's own writes work */
  free(tw);
  free(bad);
  free(ev);
  oplist_free(la);
  oplist_free(l2);
  node_close(&a);
  node_close(&a2);
  node_close(&b);
  node_close(&c);
}

/* A restored backup: A2 holds A's first commit, then writes different ops
 * at seqs A already used. An overlapping run from A2 forks at seq 4 after
 * two matching duplicates: exact, so B voids A's ops from 4 on and ends
 * with the state of [1..3], like a node that only ever held [1..3] and got
 * the evidence. */
static void test_apply_fork_after_shared_prefix(void **state) {
  (void)state;
  node a, a2, b, b2;
  node_open(&a, "apply-pa", 52);
  node_open(&a2, "apply-pa2", 52);
  node_open(&b, "apply-pb", 53);
  node_open(&b2, "apply-pb2", 54);
  write_three_commits(&a, T0_MS); /* [1..3], [4..5], [6] */
  oplist *la = collect(a.store, a.id.pk);
  run ra[RUNS_MAX];
  assert_int_equal(cut_runs(a.store, la, ra, RUNS_MAX), 3);
  vs_apply_result res;
  assert_err(apply_run(&a2, la, &ra[0], T0_MS, &res), VS_OK); /* the backup */
  assert_err(apply_run(&b2, la, &ra[0], T0_MS, &res), VS_OK); /* B2 holds [1..3] only */
  vs_write_req other[2] = {req_of("put", "a", "restored"), req_of("put", "q", "r")};
  assert_err(vs_write_batch(a2.store, a2.id.pk, other, 2, T0_MS + 9, NULL), VS_OK);
  oplist *l2 = collect(a2.store, a2.id.pk);
  assert_int_equal(l2->count, 5);
  assert_memory_equal(l2->hashes[2], la->hashes[2], VS_HASH_BYTES);

  assert_int_equal(sync_origin(&a, &b, a.id.pk, T0_MS), 6);
  run over = {1, 4, {0}}; /* [2..5], signed by A2 at 5 */
  assert_err(vs_apply_sig_get(a2.store, &l2->ops[4].id, over.sig), VS_OK);
  res = (vs_apply_result){99, 99, 99, 99, 99, 99, false, 99, false};
  assert_err(apply_run(&b, l2, &over, T0_MS, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  assert_int_equal(res.fork_seq, 4);
  expect_verdict(b.store, a.id.pk, 4, la->hashes[3], l2->hashes[3]);
  uint64_t head = 0;
  uint8_t hh[VS_HASH_BYTES];
  assert_err(vs_wal_head(b.store, a.id.pk, &head, hh, NULL), VS_OK);
  assert_int_equal(head, 3);
  assert_memory_equal(hh, la->hashes[2], VS_HASH_BYTES);
  /* B2 gets the evidence: nothing of its own to void, same state as B. */
  size_t ev_len = 0;
  uint8_t *ev = evidence_of(b.store, a.id.pk, &ev_len);
  vs_fork_result fr;
  assert_err(vs_apply_fork(b2.store, ev, ev_len, &fr), VS_OK);
  assert_true(fr.verdict);
  assert_false(fr.refolded);
  assert_converged(b.store, b2.store);
  /* Every later run of either branch is refused; [1..3] again is a duplicate. */
  assert_err(apply_run(&b, la, &ra[1], T0_MS, &res), VS_ERR_FORKED);
  assert_err(apply_run(&b, la, &ra[2], T0_MS, &res), VS_ERR_FORKED);
  run r2 = {3, 2, {0}};
  memcpy(r2.sig, over.sig, VS_SIGNATURE_BYTES);
  assert_err(apply_run(&b, l2, &r2, T0_MS, &res), VS_ERR_FORKED);
  assert_err(apply_run(&b, la, &ra[0], T0_MS, &res), VS_OK);
  assert_int_equal(res.duplicates, 3);
  /* A's run [2..5] crosses the fork: its part below (2..3) is vouched for
   * by the evidence, so it is a duplicate, not an error. */
  run cross = {1, 4, {0}};
  assert_err(vs_apply_sig_get(a.store, &la->ops[4].id, cross.sig), VS_OK);
  assert_err(apply_run(&b, la, &cross, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  free(ev);
  oplist_free(la);
  oplist_free(l2);
  node_close(&a);
  node_close(&a2);
  node_close(&b);
  node_close(&b2);
}

/* Branches that part inside one signed run: A and A2 (one identity) each
 * commit [1..3] with the same op 1 and a different op 2; only seq 3 is
 * signed. B holds A's; A2's run is exact at seq 2: void from 2, head back
 * to 1, whose only signature was past the fork: the evidence vouches for
 * it (a zero signature), so B can still relay op 1 to a node that has the
 * evidence, and that node ends with B's state. Without the evidence the
 * run is refused as void (it waits for the evidence). */
static void test_apply_fork_inside_a_run_keeps_the_prefix_relayable(void **state) {
  (void)state;
  node a, a2, b, c, d;
  node_open(&a, "apply-ia", 55);
  node_open(&a2, "apply-ia2", 55);
  node_open(&b, "apply-ib", 56);
  node_open(&c, "apply-ic", 57);
  node_open(&d, "apply-id", 58);
  vs_write_req wa[3] = {req_of("put", "k", "1"), req_of("put", "m", "A"), req_of("put", "n", "3")};
  vs_write_req wb[3] = {req_of("put", "k", "1"), req_of("put", "m", "B"), req_of("put", "n", "3")};
  assert_err(vs_write_batch(a.store, a.id.pk, wa, 3, T0_MS, NULL), VS_OK);
  assert_err(vs_write_batch(a2.store, a2.id.pk, wb, 3, T0_MS, NULL), VS_OK);
  oplist *la = collect(a.store, a.id.pk), *l2 = collect(a2.store, a2.id.pk);
  assert_memory_equal(la->hashes[0], l2->hashes[0], VS_HASH_BYTES); /* the same op 1 */
  run ra[RUNS_MAX], r2[RUNS_MAX];
  assert_int_equal(cut_runs(a.store, la, ra, RUNS_MAX), 1);
  assert_int_equal(cut_runs(a2.store, l2, r2, RUNS_MAX), 1);
  vs_apply_result res;
  assert_err(apply_run(&b, la, &ra[0], T0_MS, &res), VS_OK);
  memset(&res, 0, sizeof res);
  assert_err(apply_run(&b, l2, &r2[0], T0_MS, &res), VS_ERR_FORK);
  assert_true(res.verdict);
  assert_int_equal(res.fork_seq, 2);
  uint64_t signed_at = 0;
  assert_err(vs_apply_next_signed(b.store, a.id.pk, 1, &signed_at), VS_OK);
  assert_int_equal(signed_at, 1);
  uint8_t zsig[VS_SIGNATURE_BYTES], zero_sig[VS_SIGNATURE_BYTES] = {0};
  assert_err(vs_apply_sig_get(b.store, &la->ops[0].id, zsig), VS_OK);
  assert_memory_equal(zsig, zero_sig, VS_SIGNATURE_BYTES);
  run one = {0, 1, {0}};
  /* D has no evidence: the run waits for it (refused, nothing stored). */
  assert_err(apply_run(&d, la, &one, T0_MS, &res), VS_ERR_FORKED);
  size_t ev_len = 0;
  uint8_t *ev = evidence_of(b.store, a.id.pk, &ev_len);
  vs_fork_result fr;
  assert_err(vs_apply_fork(c.store, ev, ev_len, &fr), VS_OK);
  assert_err(apply_run(&c, la, &one, T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_converged(b.store, c.store);
  /* The full runs of either branch now give C only what is below the fork. */
  assert_err(apply_run(&c, la, &ra[0], T0_MS, &res), VS_OK);
  assert_int_equal(res.applied, 0);
  assert_err(apply_run(&c, l2, &r2[0], T0_MS, &res), VS_OK);
  assert_converged(b.store, c.store);
  free(ev);
  oplist_free(la);
  oplist_free(l2);
  node_close(&a);
  node_close(&a2);
  node_close(&b);
  node_close(&c);
  node_close(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_fork_refused_and_recorded),
      cmocka_unit_test(test_apply_fork_after_shared_prefix),
      cmocka_unit_test(test_apply_fork_inside_a_run_keeps_the_prefix_relayable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
