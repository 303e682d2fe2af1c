/* tests/compact_util.h: what the compaction tests read of a store
 * (test_compact.c, test_node_compact.c, test_compact_final.c). Include
 * after cmocka.h and testutil.h. */
#ifndef VIXSYNC_COMPACT_UTIL_H
#define VIXSYNC_COMPACT_UTIL_H

#include "chain.h"
#include "internal.h"

/* WAL records the store holds. */
static inline uint64_t vt_wal_records(vs_store *s) {
  MDB_txn *txn;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  MDB_stat st;
  assert_int_equal(mdb_stat(txn, s->dbi_wal, &st), 0);
  mdb_txn_abort(txn);
  return st.ms_entries;
}

/* `origin`'s horizon record in the store (all zero: none). */
static inline vs_horizon vt_horizon_of(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  MDB_txn *txn;
  vs_horizon h;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  assert_err(vs_horizon_get(txn, s, origin, &h), VS_OK);
  mdb_txn_abort(txn);
  return h;
}

#endif
