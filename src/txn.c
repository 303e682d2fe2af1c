#define _DEFAULT_SOURCE /* EDQUOT, as store.c had it */
#define _POSIX_C_SOURCE 200809L
/* The base every module opens its transactions with (internal.h). Apart
 * from the store module (store.c), which opens the environment and calls
 * the sink registry: so a module that opens a transaction depends on this
 * one only, not on the store's open path (issue 15: no module cycle). */
#include <errno.h>

#include "internal.h"

vs_err vs_mdb_err(int rc) {
  switch (rc) {
    case MDB_SUCCESS: return VS_OK;
    case MDB_NOTFOUND: return VS_ERR_NOTFOUND;
    case MDB_KEYEXIST: return VS_ERR_EXISTS;
    case MDB_MAP_FULL:
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
      return VS_ERR_FULL;
    case MDB_TXN_FULL:
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
      return VS_ERR_LIMIT;
    case ENOMEM: return VS_ERR_NOMEM;
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return VS_ERR_FOREIGN;
    default: return VS_ERR_STORE;
  }
}

vs_err vs_txn_begin(vs_store *store, bool write, MDB_txn **txn_out) {
  assert(store != NULL && txn_out != NULL);
  /* Bounded: another process may grow the map again between our two tries,
   * but not forever. */
  for (int tries = 0; tries < 4; tries++) {
    int rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, txn_out);
    if (rc != MDB_MAP_RESIZED) return vs_mdb_err(rc);
    rc = mdb_env_set_mapsize(store->env, 0); /* adopt the size on disk */
    if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  }
  return VS_ERR_STORE;
}

vs_err vs_txn_commit(MDB_txn *txn) {
  assert(txn != NULL);
  return vs_mdb_err(mdb_txn_commit(txn));
}

/* Here, not in store.c: a read of the struct, which the outbox asks before
 * admin calls (the store module calls the outbox's sink registry). */
bool vs_store_is_owner(const vs_store *store) { return store != NULL && store->owner_fd >= 0; }
