#define _POSIX_C_SOURCE 200809L
/* A compacting copy of the store (vixsync/store.h, vs_store_copy_compact):
 * LMDB's own (mdb_env_copy2 with MDB_CP_COMPACT), made durable. */
#include "vixsync/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* fsync the file or directory at `path`. */
static vs_err sync_path(const char *path, int flags) {
  int fd = -1;
  for (int tries = 0; tries < 8 && fd < 0; tries++) { /* bounded EINTR retry */
    fd = open(path, flags | O_CLOEXEC);
    if (fd < 0 && errno != EINTR) break;
  }
  if (fd < 0) return vs_mdb_err(errno);
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  return rc == 0 ? VS_OK : vs_mdb_err(e);
}

vs_err vs_store_copy_compact(vs_store *store, const char *dest_dir) {
  if (store == NULL || dest_dir == NULL || dest_dir[0] == '\0') return VS_ERR_INVAL;
  size_t len = strlen(dest_dir);
  char *file = malloc(len + sizeof "/data.mdb");
  if (file == NULL) return VS_ERR_NOMEM;
  memcpy(file, dest_dir, len);
  memcpy(file + len, "/data.mdb", sizeof "/data.mdb");
  vs_err err = VS_OK;
  if (access(file, F_OK) == 0) err = VS_ERR_EXISTS; /* never over a store */
  /* One read transaction inside: a consistent copy, writers not blocked;
   * free pages left out and the B-trees renumbered. LMDB creates the file
   * exclusively (EEXIST if it appeared meanwhile). */
  int rc = err == VS_OK ? mdb_env_copy2(store->env, dest_dir, MDB_CP_COMPACT) : MDB_SUCCESS;
  if (err == VS_OK && rc == EEXIST) err = VS_ERR_EXISTS;
  else if (err == VS_OK && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  if (err == VS_OK) err = sync_path(file, O_RDONLY);
  if (err == VS_OK) err = sync_path(dest_dir, O_RDONLY | O_DIRECTORY);
  free(file);
  return err;
}
