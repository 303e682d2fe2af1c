/* tests/test_engine_volume.c: pins include/vixsync/engine.h under volume:
 * 100,000 ops through a lossy transport all end DONE or FAILED, the receiver
 * holding each DONE op once and nothing never written. Minutes, not
 * seconds: ctest label "property" (the rest is test_engine.c, "unit").
 * Time is virtual: T0_MS plus what the script adds.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: fork, pipe, mkdtemp, nftw */

#include "engine_fixture.h"

/* ---- lossy volume -------------------------------------------------------- */

#define VOLUME_OPS 100000u

typedef struct stored_check {
  fixture *f;
  uint64_t held, never_written;
} stored_check;

static vs_err stored_cb(void *ctx, const vs_op_id *id) {
  stored_check *c = ctx;
  uint64_t lsn = 0;
  c->held++;
  vs_err err = vs_wal_find(c->f->store, id, &lsn);
  if (err == VS_ERR_NOTFOUND || (err == VS_OK && (lsn == 0 || lsn > c->f->n || !vs_op_id_equal(&c->f->ids[lsn - 1], id))))
    c->never_written++;
  else if (err != VS_OK)
    return err;
  return VS_OK;
}

/* max_attempts 0 (unlimited), as the node's push policy: then FAILED means
 * only a permanent rejection by the receiver, never "gave up after 8 lost
 * answers", so DONE + FAILED is exactly what the receiver decided, and an op
 * that is merely unlucky (30% of answers lost) still ends DONE. */
static void test_engine_lossy_volume_100k(void **state) {
  fixture *f = *state;
  write_ops(f, VOLUME_OPS, T0_MS);
  vs_mem_script script = quiet_script(20, 0x1055ull);
  script.drop_batch_permille = 150;
  script.drop_ack_permille = 180; /* 0.15 + 0.85 * 0.18 = 30.3% of batches lose their answers */
  script.fail_permille = 50;
  script.retry_permille = 10; /* and a few transient refusals */
  script.duplicate_ack_permille = 20;
  script.unknown_ack_permille = 100;
  vs_engine_cfg cfg;
  vs_engine_cfg_default(&cfg);
  cfg.workers = 4;
  cfg.batch_ops_max = 1000;
  cfg.lease_ms = 2000;
  cfg.retry.max_attempts = 0;
  make_engine(f, &cfg, NULL, &script);
  uint64_t now = T0_MS;
  uint64_t ticks = drive(f, &now, 5000000, T0_MS + 24ull * 3600 * 1000);

  vs_outbox_counts c = counts_of(f);
  vs_engine_stats st = stats_of(f);
  vs_mem_stats ms = mem_stats_of(f);
  printf("lossy volume: %u ops, %llu ticks, %llu batches, %llu ops sent (%llu resends), DONE %llu, FAILED %llu,\n"
         "  results done %llu retry %llu failed %llu late %llu duplicate %llu stale %llu unknown %llu,\n"
         "  leases expired %llu, batches dropped %llu, acks dropped %llu, virtual time %.1f s\n",
         VOLUME_OPS, (unsigned long long)ticks, (unsigned long long)st.batches_sent, (unsigned long long)st.ops_sent,
         (unsigned long long)(st.ops_sent - VOLUME_OPS), (unsigned long long)c.done, (unsigned long long)c.failed,
         (unsigned long long)st.results_done, (unsigned long long)st.results_retry,
         (unsigned long long)st.results_failed, (unsigned long long)st.results_late,
         (unsigned long long)st.results_duplicate, (unsigned long long)st.results_stale,
         (unsigned long long)st.results_unknown, (unsigned long long)st.leases_expired,
         (unsigned long long)ms.batches_dropped, (unsigned long long)ms.acks_dropped, (double)(now - T0_MS) / 1000.0);

  assert_int_equal(c.pending, 0);
  assert_int_equal(c.inflight, 0);
  assert_int_equal(c.done + c.failed, VOLUME_OPS);
  assert_int_equal(vs_mem_transport_queued(f->mt), 0);
  assert_true(c.failed > VOLUME_OPS / 40 && c.failed < VOLUME_OPS / 10); /* ~5% of first deliveries, and a bit */
  assert_true(st.leases_expired > 0 && st.results_unknown > 0 && st.results_duplicate > 0);
  assert_int_equal(st.results_unknown, ms.results_unknown); /* every unknown ack reached the engine, ignored */
  assert_int_equal(st.results_dropped, 0);

  uint64_t failed_held = 0, done_seen = 0, failed_seen = 0;
  for (uint32_t i = 0; i < f->n; i++) {
    vs_outbox_entry e = entry_of(f, i);
    uint32_t applied = vs_mem_transport_applied(f->mt, &f->ids[i]);
    assert_true(applied <= 1); /* G4: never applied twice */
    if (e.state == VS_OUTBOX_DONE) {
      done_seen++;
      if (applied != 1) fail_msg("op %u DONE but applied %u times", i + 1, applied);
    } else {
      assert_int_equal(e.state, VS_OUTBOX_FAILED);
      failed_seen++;
      /* Only the receiver fails an op here (no attempt limit). */
      assert_string_equal(e.reason, RECEIVER_REJECT_REASON);
      if (applied == 1) {
        /* Held yet FAILED: an earlier delivery stored it but its DONE was
         * lost (dropped ack), then a later delivery was rejected (the 5%
         * are drawn per delivery). So it took at least two attempts. */
        failed_held++;
        if (e.attempts < 2) fail_msg("op %u FAILED and held after %u attempt(s)", i + 1, e.attempts);
      }
    }
  }
  assert_int_equal(done_seen, c.done);
  assert_int_equal(failed_seen, c.failed);
  stored_check sc = {f, 0, 0};
  assert_err(vs_mem_transport_each_stored(f->mt, stored_cb, &sc), VS_OK);
  assert_int_equal(sc.never_written, 0);
  assert_int_equal(sc.held, c.done + failed_held);
  assert_int_equal(sc.held, ms.ops_stored);
  printf("  receiver holds %llu ops: every DONE once, plus %llu FAILED ones whose earlier DONE was lost\n",
         (unsigned long long)sc.held, (unsigned long long)failed_held);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_engine_lossy_volume_100k),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
