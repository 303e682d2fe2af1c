/* The public fork query (vixsync/store.h: vs_store_fork_get): an
 * application's view of fork.c's verdict table, read in one read
 * transaction. Apart from fork.c so that the installed call needs none of
 * the verdict-taking machinery's headers; it is of module `fork` (it reads
 * fork.c's table through vs_fork_get_txn) and calls only store.c, as
 * fork.c does. */
#include "vixsync/store.h"

#include "internal.h"
#include "fork.h"

vs_err vs_store_fork_get(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t *void_from_out) {
  if (store == NULL || origin == NULL || void_from_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  uint64_t from = 0;
  err = vs_fork_get_txn(txn, store, origin, &from, NULL);
  mdb_txn_abort(txn);
  if (err != VS_OK) return err;
  if (from == 0) return VS_ERR_NOTFOUND; /* vs_fork_get_txn's "no verdict" */
  *void_from_out = from;
  return VS_OK;
}
