/* tests/test_outbox_purge.c: pins the resumable purge of include/vixsync/outbox.h
 * (vs_outbox_purge_done, vs_outbox_purge_sink): each call looks at no more
 * than its max entries, resumes where the last stopped (meta "obxpurge"),
 * never walks the same entries twice, and still finds every entry that turns
 * DONE below its mark, by every move there is to DONE. Counts stay exact
 * (a recount through vs_outbox_get after every step). */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "outbox_fixture.h"
#include "outbox_int.h"

/* One purge step of sink `sink`, checked against its bound. */
static vs_outbox_purge_stats purge(fixture *f, uint32_t sink, uint64_t max, uint64_t keep) {
  vs_outbox_purge_stats st;
  memset(&st, 0xff, sizeof st);
  assert_err(vs_outbox_purge_sink(f->store, sink, max, keep, &st), VS_OK);
  assert_true(st.visited <= max);
  assert_true(st.purged <= st.visited);
  return st;
}

static uint64_t mark_of(fixture *f, uint32_t sink) {
  MDB_txn *txn;
  uint64_t mark = 0;
  assert_err(vs_txn_begin(f->store, false, &txn), VS_OK);
  assert_err(vs_obx_purge_mark_get(txn, f->store, sink, &mark), VS_OK);
  mdb_txn_abort(txn);
  return mark;
}

/* DONE index keys of `sink` in the store (obx_state[(sink, 2, lsn)]). */
static uint64_t done_keys(fixture *f, uint32_t sink) {
  MDB_txn *txn;
  MDB_cursor *cur;
  assert_err(vs_txn_begin(f->store, false, &txn), VS_OK);
  assert_int_equal(mdb_cursor_open(txn, f->store->dbi_obx_state, &cur), MDB_SUCCESS);
  uint8_t prefix[5];
  vs_put_u32be(prefix, sink);
  prefix[4] = VS_OUTBOX_DONE;
  MDB_val k = {sizeof prefix, prefix}, v;
  uint64_t n = 0;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && n < 1000000;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 13 || memcmp(k.mv_data, prefix, sizeof prefix) != 0) break;
    n++;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return n;
}

/* A long prefix of PENDING entries before the DONE ones: each call looks at
 * max entries at most and goes on from where the last one stopped, so all
 * calls together look at each entry once; a call with nothing left to look
 * at costs nothing (no commit). */
static void test_purge_resumes_past_a_pending_prefix(void **state) {
  fixture *f = *state;
  enum { N = 3000, PREFIX = 2000, MAX = 500 };
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_batch_of_1(f, N, T0_MS);
  for (uint64_t seq = PREFIX + 1; seq <= N; seq++) {
    vs_op_id id = held_id(1, seq);
    assert_err(vs_outbox_complete(f->ob, &id, T0_MS), VS_OK); /* a late DONE: PENDING -> DONE */
  }
  assert_counts(f->ob, PREFIX, 0, N - PREFIX, 0);
  uint64_t visited = 0, purged = 0;
  for (uint32_t call = 0; call < 100; call++) {
    vs_outbox_purge_stats st = purge(f, 0, MAX, 0);
    visited += st.visited;
    purged += st.purged;
    if (call < PREFIX / MAX) assert_int_equal(st.purged, 0); /* still in the prefix */
    if (!st.more) break;
    assert_int_equal(st.visited, MAX);
  }
  assert_int_equal(purged, N - PREFIX);
  assert_int_equal(visited, N); /* every entry once */
  assert_int_equal(mark_of(f, 0), N + 1);
  assert_counts(f->ob, PREFIX, 0, 0, 0);
  /* Nothing DONE left: no walk, no commit. */
  size_t before = last_txnid(f);
  vs_outbox_purge_stats st = purge(f, 0, MAX, 0);
  assert_int_equal(st.visited, 0);
  assert_false(st.more);
  assert_int_equal(last_txnid(f), before);
  /* One entry of the prefix is delivered: the next call finds it through its
   * DONE key, without walking the prefix again. */
  vs_op_id id = held_id(1, 1234);
  assert_err(vs_outbox_complete(f->ob, &id, T0_MS), VS_OK);
  assert_int_equal(done_keys(f, 0), 1);
  st = purge(f, 0, MAX, 0);
  assert_int_equal(st.purged, 1);
  assert_int_equal(st.visited, 1);
  assert_int_equal(done_keys(f, 0), 0);
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob, &id, &e), VS_ERR_NOTFOUND);
  assert_counts(f->ob, PREFIX - 1, 0, 0, 0);
}

/* Every move to DONE, made below the mark, is found by the next purge: a
 * late DONE of PENDING and of FAILED, a completed claim, a retry then a
 * completion, a lease that ended then a completion, a requeue after a
 * restart then a completion, retry-failed then a completion, and a held
 * range. Entries that turned DONE at or above the mark cost no key. */
static void test_purge_finds_every_move_to_done_below_the_mark(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 12, T0_MS);
  /* The walk passes all twelve PENDING entries: the mark is past them. */
  vs_outbox_purge_stats st = purge(f, 0, 100, 0);
  assert_int_equal(st.visited, 0); /* nothing DONE: not even a walk */
  assert_err(vs_outbox_complete(f->ob, &f->ids[11], T0_MS), VS_OK);
  st = purge(f, 0, 100, 0);
  assert_int_equal(st.purged, 1);
  assert_int_equal(st.visited, 12);
  assert_int_equal(mark_of(f, 0), 13);
  uint64_t t = T0_MS + 1;
  /* 0: late DONE of a PENDING entry. */
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], t), VS_OK);
  /* 1: claimed, then completed. */
  claim(f->ob, &f->ids[1], t);
  assert_err(vs_outbox_complete(f->ob, &f->ids[1], t), VS_OK);
  /* 2: claimed, a retryable failure, claimed again, completed. */
  claim(f->ob, &f->ids[2], t);
  fail_retry(f->ob, &f->ids[2], t);
  claim(f->ob, &f->ids[2], t + 10000);
  assert_err(vs_outbox_complete(f->ob, &f->ids[2], t + 10000), VS_OK);
  /* 3: claimed, failed for good, then a late DONE. */
  claim(f->ob, &f->ids[3], t);
  assert_err(vs_outbox_fail(f->ob, &f->ids[3], t, false, "no", 0, NULL), VS_OK);
  assert_err(vs_outbox_complete(f->ob, &f->ids[3], t), VS_OK);
  /* 4: failed for good, retry-failed, then completed. */
  claim(f->ob, &f->ids[4], t);
  assert_err(vs_outbox_fail(f->ob, &f->ids[4], t, false, "no", 0, NULL), VS_OK);
  uint64_t n = 0;
  assert_err(vs_outbox_retry_failed(f->ob, t, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_err(vs_outbox_complete(f->ob, &f->ids[4], t), VS_OK);
  /* 5: claimed, its lease ends (a step past it), then completed. */
  claim(f->ob, &f->ids[5], t);
  uint32_t claimed = 0;
  assert_err(vs_outbox_step(f->ob, t + LEASE_MS + 1, NULL, 0, NULL, NULL, &claimed), VS_OK);
  assert_int_equal(get(f->ob, &f->ids[5]).state, VS_OUTBOX_PENDING);
  assert_err(vs_outbox_complete(f->ob, &f->ids[5], t + LEASE_MS + 2), VS_OK);
  /* 6: claimed, requeued after a restart, then completed. */
  claim(f->ob, &f->ids[6], t);
  assert_err(vs_store_lock_owner(f->store), VS_OK);
  assert_err(vs_outbox_requeue_inflight(f->ob, t, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_err(vs_outbox_complete(f->ob, &f->ids[6], t), VS_OK);
  /* 7, 8: a held range (they are at the front of the ready index once 0..6
   * left it; 9 and 10 are above its seq and wait). */
  assert_int_equal(step_held(f->ob, t + 20000, 1, 9, VS_OUTBOX_CLAIM_MAX), 2);
  assert_counts(f->ob, 2, 0, 9, 0);
  check_counts(f, f->ob);
  assert_int_equal(done_keys(f, 0), 9);
  /* One call takes the nine through their keys, looking at nothing else. */
  st = purge(f, 0, 100, 0);
  assert_int_equal(st.purged, 9);
  assert_int_equal(st.visited, 9);
  assert_false(st.more);
  assert_int_equal(done_keys(f, 0), 0);
  assert_counts(f->ob, 2, 0, 0, 0);
  check_counts(f, f->ob);
  for (uint32_t i = 0; i < 9; i++) {
    vs_outbox_entry e;
    assert_err(vs_outbox_get(f->ob, &f->ids[i], &e), VS_ERR_NOTFOUND);
  }
  /* Above the mark: DONE costs no key; the walk takes it. */
  write_ops(f, 1, t);
  assert_err(vs_outbox_complete(f->ob, &f->ids[12], t), VS_OK);
  assert_int_equal(done_keys(f, 0), 0);
  st = purge(f, 0, 100, 0);
  assert_int_equal(st.purged, 1);
  assert_int_equal(st.visited, 1);
  assert_int_equal(mark_of(f, 0), 14);
}

/* The DONE keys count against max too: a call never looks at more. */
static void test_purge_done_keys_are_bounded_by_max(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 10, T0_MS);
  assert_err(vs_outbox_complete(f->ob, &f->ids[9], T0_MS), VS_OK);
  purge(f, 0, 100, 0); /* the mark passes all ten */
  for (uint32_t i = 0; i < 9; i++) assert_err(vs_outbox_complete(f->ob, &f->ids[i], T0_MS), VS_OK);
  assert_int_equal(done_keys(f, 0), 9);
  uint64_t total = 0;
  for (uint32_t call = 0; call < 5; call++) {
    vs_outbox_purge_stats st = purge(f, 0, 2, 0);
    total += st.purged;
    assert_int_equal(st.visited, st.purged); /* only keys: no walk */
    assert_int_equal(st.more, total < 9);
  }
  assert_int_equal(total, 9);
  assert_int_equal(done_keys(f, 0), 0);
  check_counts(f, f->ob);
}

/* keep_done: the youngest DONE entries stay; a step stops at that count. */
static void test_purge_keeps_the_youngest_done(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  write_ops(f, 20, T0_MS);
  for (uint32_t i = 0; i < 20; i++) assert_err(vs_outbox_complete(f->ob, &f->ids[i], T0_MS), VS_OK);
  vs_outbox_purge_stats st = purge(f, 0, 100, 5);
  assert_int_equal(st.purged, 15);
  assert_false(st.more);
  assert_counts(f->ob, 0, 0, 5, 0);
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob, &f->ids[14], &e), VS_ERR_NOTFOUND);
  assert_int_equal(get(f->ob, &f->ids[15]).state, VS_OUTBOX_DONE);
  assert_int_equal(mark_of(f, 0), 16); /* stopped on the first one kept */
  st = purge(f, 0, 100, 5); /* at the count already: nothing */
  assert_int_equal(st.visited, 0);
  st = purge(f, 0, 100, 0);
  assert_int_equal(st.purged, 5);
  check_counts(f, f->ob);
}

/* A ranges-only sink (the mesh) is walked below its range mark only: the
 * entries from there wait for their range and cost the walk nothing. */
static void test_purge_ranges_only_stops_at_the_range_mark(void **state) {
  fixture *f = *state;
  f->ob = open_ranges(f, true);
  write_ops(f, 10, T0_MS);
  assert_int_equal(held_step(f->ob, T0_MS + 1, 1, 6, VS_OUTBOX_CLAIM_MAX).completed, 6);
  vs_outbox_purge_stats st = purge(f, 0, 100, 0);
  assert_int_equal(st.purged, 6);
  assert_int_equal(st.visited, 6);
  assert_false(st.more);
  assert_int_equal(mark_of(f, 0), 7);
  assert_counts(f->ob, 4, 0, 0, 0);
  assert_int_equal(held_step(f->ob, T0_MS + 2, 1, 10, VS_OUTBOX_CLAIM_MAX).completed, 4);
  st = purge(f, 0, 100, 0);
  assert_int_equal(st.purged, 4);
  assert_int_equal(st.visited, 4);
  assert_int_equal(done_keys(f, 0), 0);
  check_counts(f, f->ob);
}

/* A claimed sink whose walk passed PENDING entries, made ranges-only: the
 * range walk completes them below the purge mark, and they get their keys. */
static void test_purge_range_walk_below_the_mark(void **state) {
  fixture *f = *state;
  f->ob = open_ranges(f, false);
  write_ops(f, 6, T0_MS);
  assert_err(vs_outbox_complete(f->ob, &f->ids[5], T0_MS), VS_OK);
  assert_int_equal(purge(f, 0, 100, 0).purged, 1);
  assert_int_equal(mark_of(f, 0), 7);
  vs_outbox_close(f->ob);
  f->ob = open_ranges(f, true); /* the range mark: lsn 1 */
  assert_int_equal(held_step(f->ob, T0_MS + 1, 1, 5, VS_OUTBOX_CLAIM_MAX).completed, 5);
  assert_int_equal(done_keys(f, 0), 5);
  vs_outbox_purge_stats st = purge(f, 0, 100, 0);
  assert_int_equal(st.purged, 5);
  assert_int_equal(st.visited, 5);
  assert_counts(f->ob, 0, 0, 0, 0);
  check_counts(f, f->ob);
}

/* A backfill that has not finished: the walk stays below what it reached,
 * so no entry it may still look at is purged (it would be enqueued again);
 * once it finished, everything goes, and a backfill never brings it back. */
static void test_purge_waits_for_the_backfill(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  f->ob2 = open_sink(f, "http", &SMALL_POLICY);
  write_ops(f, 5, T0_MS); /* enqueued for both sinks */
  for (uint32_t i = 0; i < 5; i++) assert_err(vs_outbox_complete(f->ob2, &f->ids[i], T0_MS), VS_OK);
  /* As an interrupted scan leaves it: LSN 3 reached of 5. */
  MDB_txn *txn;
  assert_err(vs_txn_begin(f->store, true, &txn), VS_OK);
  uint8_t key[12], val[17];
  memcpy(key, "sinkfill", 8);
  vs_put_u32be(key + 8, 1);
  val[0] = 1;
  vs_put_u64le(val + 1, 3);
  vs_put_u64le(val + 9, 5);
  MDB_val k = {sizeof key, key}, v = {sizeof val, val};
  assert_int_equal(mdb_put(txn, f->store->dbi_meta, &k, &v, 0), MDB_SUCCESS);
  assert_err(vs_txn_commit(txn), VS_OK);
  vs_outbox_purge_stats st = purge(f, 1, 100, 0);
  assert_int_equal(st.purged, 3);
  assert_int_equal(mark_of(f, 1), 4);
  assert_counts(f->ob2, 0, 0, 2, 0);
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 1);
  uint64_t enqueued = 99;
  assert_err(vs_outbox_backfill(f->ob2, origin, T0_MS, &enqueued), VS_OK);
  assert_int_equal(enqueued, 0); /* 4 and 5 have their entries */
  st = purge(f, 1, 100, 0);
  assert_int_equal(st.purged, 2);
  assert_err(vs_outbox_backfill(f->ob2, origin, T0_MS, &enqueued), VS_OK);
  assert_int_equal(enqueued, 0);
  assert_counts(f->ob2, 0, 0, 0, 0);
  assert_counts(f->ob, 5, 0, 0, 0); /* the other sink untouched */
  check_counts(f, f->ob);
}

static void test_purge_sink_arguments(void **state) {
  fixture *f = *state;
  vs_outbox_purge_stats st;
  assert_err(vs_outbox_purge_sink(NULL, 0, 10, 0, &st), VS_ERR_INVAL);
  assert_err(vs_outbox_purge_sink(f->store, 0, 10, 0, NULL), VS_ERR_INVAL);
  assert_err(vs_outbox_purge_sink(f->store, 7, 10, 0, &st), VS_ERR_NOTFOUND);
  assert_err(vs_outbox_purge_done(NULL, 10, NULL), VS_ERR_INVAL);
  write_ops(f, 2, T0_MS);
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  assert_err(vs_outbox_complete(f->ob, &f->ids[0], T0_MS), VS_OK);
  st = purge(f, 0, 0, 0); /* max 0: nothing looked at, more to do */
  assert_int_equal(st.visited, 0);
  assert_true(st.more);
  assert_counts(f->ob, 1, 0, 1, 0);
}

/* Random moves and purges (a fixed seed): after each, the counts equal a
 * recount, each purge looks at no more than its max, DONE entries are the
 * only ones that go, and the last purge leaves none. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void test_purge_random_moves_keep_counts_exact(void **state) {
  fixture *f = *state;
  f->ob = open_sink(f, NULL, &SMALL_POLICY);
  assert_err(vs_store_lock_owner(f->store), VS_OK);
  uint64_t s = 0x9e3779b97f4a7c15ull, t = T0_MS;
  bool gone[OPS_MAX] = {false};
  uint64_t purged = 0, keys_taken = 0; /* the run must exercise both paths */
  for (uint32_t round = 0; round < 400; round++) {
    t += 10;
    uint32_t pick = (uint32_t)(rng_next(&s) % 9);
    if (pick == 0 && f->n < OPS_MAX) {
      write_ops(f, 1, t);
      continue;
    }
    if (f->n == 0) continue;
    uint32_t i = (uint32_t)(rng_next(&s) % f->n);
    vs_outbox_entry e;
    vs_err err = vs_outbox_get(f->ob, &f->ids[i], &e);
    if (err == VS_ERR_NOTFOUND) {
      assert_true(gone[i]);
      continue;
    }
    assert_err(err, VS_OK);
    assert_false(gone[i]);
    uint64_t n = 0;
    switch (pick) {
      case 1: /* a result: DONE from any state but DONE */
        if (e.state != VS_OUTBOX_DONE) assert_err(vs_outbox_complete(f->ob, &f->ids[i], t), VS_OK);
        break;
      case 2:
        if (e.state == VS_OUTBOX_PENDING && e.next_attempt_at_ms <= t)
          assert_err(vs_outbox_claim(f->ob, &f->ids[i], t, LEASE_MS, &e), VS_OK);
        break;
      case 3:
        if (e.state == VS_OUTBOX_INFLIGHT)
          assert_err(vs_outbox_fail(f->ob, &f->ids[i], t, (rng_next(&s) & 1) != 0, "x", 0, NULL), VS_OK);
        break;
      case 4: assert_err(vs_outbox_retry_failed(f->ob, t, &n), VS_OK); break;
      case 5: assert_err(vs_outbox_requeue_inflight(f->ob, t, &n), VS_OK); break;
      case 6: {
        uint32_t claimed = 0;
        assert_err(vs_outbox_step(f->ob, t + LEASE_MS + 1, NULL, 0, NULL, NULL, &claimed), VS_OK);
        break;
      }
      default: { /* a purge: remember what was DONE, check what went */
        bool was_done[OPS_MAX];
        for (uint32_t j = 0; j < f->n; j++) {
          vs_outbox_entry ej;
          was_done[j] = vs_outbox_get(f->ob, &f->ids[j], &ej) == VS_OK && ej.state == VS_OUTBOX_DONE;
        }
        uint64_t max = rng_next(&s) % 8, keys = done_keys(f, 0);
        vs_outbox_purge_stats st = purge(f, 0, max, 0);
        keys_taken += keys - done_keys(f, 0);
        purged += st.purged;
        uint64_t went = 0;
        for (uint32_t j = 0; j < f->n; j++) {
          vs_outbox_entry ej;
          bool here = vs_outbox_get(f->ob, &f->ids[j], &ej) == VS_OK;
          if (!here && !gone[j]) {
            assert_true(was_done[j]); /* only DONE entries go */
            gone[j] = true;
            went++;
          }
        }
        assert_int_equal(went, st.purged);
      }
    }
    check_counts(f, f->ob);
  }
  /* Everything DONE goes; the rest stays. */
  for (uint32_t call = 0; call < 100; call++) {
    if (!purge(f, 0, 8, 0).more) break;
  }
  vs_outbox_counts c = counts(f->ob);
  assert_int_equal(c.done, 0);
  assert_true(keys_taken > 0 && purged > keys_taken);
  assert_int_equal(done_keys(f, 0), 0);
  check_counts(f, f->ob);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_purge_resumes_past_a_pending_prefix),
      T(test_purge_finds_every_move_to_done_below_the_mark),
      T(test_purge_done_keys_are_bounded_by_max),
      T(test_purge_keeps_the_youngest_done),
      T(test_purge_ranges_only_stops_at_the_range_mark),
      T(test_purge_range_walk_below_the_mark),
      T(test_purge_waits_for_the_backfill),
      T(test_purge_sink_arguments),
      T(test_purge_random_moves_keep_counts_exact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
