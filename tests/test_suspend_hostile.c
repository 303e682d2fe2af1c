/* Members who stop acking, against a writer that chooses its HLCs (src/acks.c,
 * vs_acks_suspended_txn): silence is judged by when this store stored the
 * op a member lacks, not by that op's HLC. Otherwise a member (or a device
 * with a wrong clock) writing one op backdated past suspend_after, then one
 * at the present, would make every member that has not received them yet
 * look silent at once, and be compacted past. Store level, no clock. */
#include "apply_nodes.h"

#include "acks.h"
#include "internal.h"

#define DAY_MS (24ull * 3600u * 1000u)
#define BOUND_MS (30u * DAY_MS)
#define NOW (T0_MS + 100u * DAY_MS)

static bool suspended(vs_store *s, uint64_t heard_hlc) {
  MDB_txn *txn;
  uint64_t now_hlc = 0;
  bool out = true;
  uint8_t member[VS_ORIGIN_BYTES];
  memset(member, 0x42, sizeof member); /* lacks everything: an empty vector */
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  assert_err(vs_meta_hlc_get(txn, s, &now_hlc), VS_OK);
  assert_err(vs_acks_suspended_txn(txn, s, member, heard_hlc, NULL, 0, now_hlc, BOUND_MS, &out), VS_OK);
  mdb_txn_abort(txn);
  return out;
}

/* A writer's op backdated 40 days, stored here now, then one at the
 * present (the store's HLC moves): a member last heard 31 days ago that
 * lacks the backdated op is not suspended: it had no time to get it. */
static void test_backdated_op_suspends_nobody(void **state) {
  (void)state;
  node w, s;
  node_open(&w, "susph-w", 51);
  node_open(&s, "susph-s", 52);
  wr(&w, "put", "old", "x", NOW - 40u * DAY_MS); /* a fresh store takes the writer's clock */
  wr(&w, "put", "now", "y", NOW);
  sync_origin(&w, &s, w.id.pk, NOW); /* stored here now */
  uint64_t heard = vs_hlc_make(NOW - 31u * DAY_MS, 0);
  assert_false(suspended(s.store, heard));
  /* The same lack, held here for 35 days: silent. */
  node s2;
  node_open(&s2, "susph-s2", 53);
  node w2;
  node_open(&w2, "susph-w2", 54);
  wr(&w2, "put", "old", "x", NOW - 40u * DAY_MS);
  sync_origin(&w2, &s2, w2.id.pk, NOW - 35u * DAY_MS);
  wr(&s2, "put", "mine", "z", NOW); /* the store's HLC: now */
  assert_true(suspended(s2.store, heard));
  /* ... unless it was heard from within the bound, or the bound is off. */
  assert_false(suspended(s2.store, vs_hlc_make(NOW - 10u * DAY_MS, 0)));
  MDB_txn *txn;
  bool out = true;
  uint8_t member[VS_ORIGIN_BYTES];
  memset(member, 0x42, sizeof member);
  assert_err(vs_txn_begin(s2.store, false, &txn), VS_OK);
  assert_err(vs_acks_suspended_txn(txn, s2.store, member, heard, NULL, 0, vs_hlc_make(NOW, 0), 0, &out), VS_OK);
  assert_false(out);
  /* The store's own identity: never. */
  assert_err(vs_acks_suspended_txn(txn, s2.store, s2.id.pk, heard, NULL, 0, vs_hlc_make(NOW, 0), BOUND_MS, &out), VS_OK);
  assert_false(out);
  mdb_txn_abort(txn);
  node_close(&w);
  node_close(&s);
  node_close(&w2);
  node_close(&s2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backdated_op_suspends_nobody),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
