/* The store: one LMDB environment per directory, opened once per process. */
#define _DEFAULT_SOURCE /* flock */
#define _POSIX_C_SOURCE 200809L
#include "vixsync/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "internal.h"
#include "sinks.h"
#include "state_int.h" /* format 7: vs_state_rehash_txn */

/* The format version in meta["vixsync"] (u32le). Every other value is
 * VS_ERR_VERSION (vs_store_format names it), but for the upgrade below.
 *   2: state records keep their digest (state.c)
 *   3: op ids are 24 bytes (op.h, op-id v2): the op-id and signature index
 *      keys, the idempotency index values and outbox entries hold them
 *   4: fork verdicts keep their evidence (fork.c)
 *   5: the `mesh` database: a record per mesh.* op held (mstore.h); the
 *      `members` and `inert` databases and meta "mesh_id" of a managed mesh (mgate.h)
 *   6: compaction and acknowledgements (issue 17): the `hstate`, `hincrs`
 *      and `horizon` databases (compact.h) and `acks` (acks.h); a format-5
 *      store is upgraded when it opens (the databases created, empty)
 *   7: a tombstone adds nothing to the state hash (state.c; its digest is
 *      zero); an older store's digests and hashes are rewritten when it
 *      opens (vs_state_rehash_txn), in the upgrade's transaction */
#define STORE_FORMAT VS_STORE_FORMAT
#define STORE_DBS 24
static const char STORE_MAGIC[] = "vixsync";

/* LMDB forbids opening one environment twice in a process (its locks are
 * per process and would be released by the second close). The stores open in
 * this process, by (device, inode) of the directory, are kept here so that a
 * second open is refused instead of corrupting the first. */
typedef struct open_entry {
  dev_t dev;
  ino_t ino;
  struct open_entry *next;
} open_entry;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static open_entry *open_list;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A child of fork() inherits the list but none of the environments: LMDB
 * handles must not cross fork, so the child starts with no store open and may
 * open any directory (its entries are dropped, not freed: cheap and safe). */
static void atfork_prepare(void) { pthread_mutex_lock(&open_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&open_lock); }
static void atfork_child(void) {
  open_list = NULL;
  pthread_mutex_unlock(&open_lock);
}
static void atfork_register(void) { (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

static bool registry_add(dev_t dev, ino_t ino) {
  bool ok = true;
  pthread_once(&atfork_once, atfork_register);
  pthread_mutex_lock(&open_lock);
  for (open_entry *e = open_list; e != NULL; e = e->next) {
    if (e->dev == dev && e->ino == ino) ok = false;
  }
  if (ok) {
    open_entry *e = malloc(sizeof *e);
    if (e == NULL) {
      ok = false;
    } else {
      e->dev = dev;
      e->ino = ino;
      e->next = open_list;
      open_list = e;
    }
  }
  pthread_mutex_unlock(&open_lock);
  return ok;
}

static void registry_remove(dev_t dev, ino_t ino) {
  pthread_mutex_lock(&open_lock);
  for (open_entry **pp = &open_list; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->dev == dev && (*pp)->ino == ino) {
      open_entry *e = *pp;
      *pp = e->next;
      free(e);
      break;
    }
  }
  pthread_mutex_unlock(&open_lock);
}

/* The first layout of vs_store_cfg (cfg.h): a caller's cfg_bytes is at least this. */
#define STORE_CFG_BYTES_V1 VS_CFG_BYTES_THROUGH(vs_store_cfg, create)

static vs_store_cfg store_cfg_defaults(void) {
  vs_store_cfg cfg = {.cfg_bytes = (uint32_t)sizeof cfg,
                      .durability = VS_DURABILITY_SYNC,
                      .map_bytes = VS_STORE_MAP_BYTES_DEFAULT,
                      .create = true};
  return cfg;
}

void vs_store_cfg_default_sized(vs_store_cfg *cfg, size_t cfg_bytes) {
  vs_store_cfg def = store_cfg_defaults();
  vs_cfg_default_out(cfg, cfg_bytes, &def, sizeof def);
}

typedef struct dbi_spec {
  const char *name;
  size_t offset;
} dbi_spec;

static const dbi_spec DBIS[] = {
    {"meta", offsetof(vs_store, dbi_meta)},         {"wal", offsetof(vs_store, dbi_wal)},
    {"opid", offsetof(vs_store, dbi_opid)},         {"idem", offsetof(vs_store, dbi_idem)},
    {"heads", offsetof(vs_store, dbi_heads)},       {"outbox", offsetof(vs_store, dbi_outbox)},
    {"obx_ready", offsetof(vs_store, dbi_obx_ready)}, {"obx_lease", offsetof(vs_store, dbi_obx_lease)},
    {"obx_state", offsetof(vs_store, dbi_obx_state)}, {"state", offsetof(vs_store, dbi_state)},
    {"incrs", offsetof(vs_store, dbi_incrs)},         {"sigs", offsetof(vs_store, dbi_sigs)},
    {"forks", offsetof(vs_store, dbi_forks)},         {"mesh", offsetof(vs_store, dbi_mesh)},
    {"members", offsetof(vs_store, dbi_members)},     {"inert", offsetof(vs_store, dbi_inert)},
    /* format 6: an older store gets them (empty) when it opens */
    {"hstate", offsetof(vs_store, dbi_hstate)},       {"hincrs", offsetof(vs_store, dbi_hincrs)},
    {"horizon", offsetof(vs_store, dbi_horizon)},
    {"acks", offsetof(vs_store, dbi_acks)},
};
#define DBI_COUNT (sizeof DBIS / sizeof DBIS[0])
_Static_assert(DBI_COUNT <= STORE_DBS, "room for every named database");

static MDB_dbi *dbi_slot(vs_store *store, size_t i) { return (MDB_dbi *)((char *)store + DBIS[i].offset); }

/* Read the magic and format of an existing store: VS_ERR_FOREIGN when it
 * is not ours. */
static vs_err read_format(MDB_txn *txn, MDB_dbi meta, uint32_t *format_out) {
  MDB_val k = {sizeof STORE_MAGIC - 1, (void *)STORE_MAGIC}, v;
  int rc = mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_ERR_FOREIGN;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 4) return VS_ERR_FOREIGN;
  *format_out = vs_get_u32le(v.mv_data);
  return VS_OK;
}

/* The oldest format this build opens: its stores lack the databases of the
 * formats since, which vs_store_open adds (empty) in one write transaction. */
#define STORE_FORMAT_UPGRADES_FROM 5u

/* A store of format STORE_FORMAT_UPGRADES_FROM .. STORE_FORMAT - 1: every
 * database opened with MDB_CREATE (the missing ones are new and empty: the
 * formats since only added databases) and the format written, in one
 * transaction, so an interrupted upgrade leaves the old store. */
static vs_err upgrade(vs_store *store) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  for (size_t i = 0; i < DBI_COUNT && err == VS_OK; i++)
    err = vs_mdb_err(mdb_dbi_open(txn, DBIS[i].name, MDB_CREATE, dbi_slot(store, i)));
  uint32_t format = 0;
  if (err == VS_OK) err = read_format(txn, store->dbi_meta, &format);
  if (err == VS_OK && (format < STORE_FORMAT_UPGRADES_FROM || format >= STORE_FORMAT)) err = VS_ERR_VERSION;
  if (err == VS_OK && format < 7u) err = vs_state_rehash_txn(txn, store);
  uint8_t fmt[4];
  vs_put_u32le(fmt, STORE_FORMAT);
  MDB_val k = {sizeof STORE_MAGIC - 1, (void *)STORE_MAGIC}, v = {sizeof fmt, fmt};
  if (err == VS_OK) err = vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
  if (err != VS_OK) {
    mdb_txn_abort(txn);
    return err;
  }
  return vs_txn_commit(txn);
}

/* Open the named databases of an existing store in a read transaction (an
 * older format that this build upgrades: in a write transaction). */
static vs_err open_existing(vs_store *store) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  assert(DBIS[0].offset == offsetof(vs_store, dbi_meta));
  bool old = false;
  for (size_t i = 0; i < DBI_COUNT && err == VS_OK && !old; i++) {
    int rc = mdb_dbi_open(txn, DBIS[i].name, 0, dbi_slot(store, i));
    if (rc == MDB_NOTFOUND) err = VS_ERR_NOTFOUND;
    else if (rc == MDB_INCOMPATIBLE) err = VS_ERR_FOREIGN;
    else err = vs_mdb_err(rc);
    /* The format first (meta is DBIS[0]): a store of another format may
     * lack or name differently the databases that follow. */
    if (err == VS_OK && i == 0) {
      uint32_t format = 0;
      err = read_format(txn, store->dbi_meta, &format);
      old = err == VS_OK && format >= STORE_FORMAT_UPGRADES_FROM && format < STORE_FORMAT;
      if (err == VS_OK && !old && format != STORE_FORMAT) err = VS_ERR_VERSION;
    }
  }
  if (err != VS_OK || old) {
    mdb_txn_abort(txn);
    return err == VS_OK ? upgrade(store) : err;
  }
  return vs_txn_commit(txn); /* a read-only commit keeps the dbi handles */
}

/* Create every database of a new store in one write transaction. An
 * environment whose main database holds anything else is foreign. */
static vs_err create_new(vs_store *store) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  MDB_stat st;
  MDB_dbi main_dbi;
  int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
  if (rc == MDB_SUCCESS) rc = mdb_stat(txn, main_dbi, &st);
  err = vs_mdb_err(rc);
  if (err == VS_OK && st.ms_entries != 0) {
    /* Another process may have created it between our two looks. */
    mdb_txn_abort(txn);
    err = open_existing(store);
    return err == VS_ERR_NOTFOUND ? VS_ERR_FOREIGN : err;
  }
  for (size_t i = 0; i < DBI_COUNT && err == VS_OK; i++) {
    err = vs_mdb_err(mdb_dbi_open(txn, DBIS[i].name, MDB_CREATE, dbi_slot(store, i)));
  }
  uint8_t fmt[4];
  vs_put_u32le(fmt, STORE_FORMAT);
  MDB_val k = {sizeof STORE_MAGIC - 1, (void *)STORE_MAGIC}, v = {sizeof fmt, fmt};
  if (err == VS_OK) err = vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
  if (err == VS_OK) err = vs_sinks_init(txn, store);
  if (err != VS_OK) {
    mdb_txn_abort(txn);
    return err;
  }
  return vs_txn_commit(txn);
}

/* A store without our databases: foreign if its main database holds
 * anything, else simply not there. */
static vs_err empty_or_foreign(vs_store *store) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_dbi main_dbi;
  MDB_stat st;
  int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
  if (rc == MDB_SUCCESS) rc = mdb_stat(txn, main_dbi, &st);
  mdb_txn_abort(txn);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  return st.ms_entries != 0 ? VS_ERR_FOREIGN : VS_ERR_NO_STORE;
}

static vs_err env_open(vs_store *store, const char *dir, const vs_store_cfg *cfg) {
  int rc = mdb_env_create(&store->env);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  uint64_t map_bytes = cfg->map_bytes ? cfg->map_bytes : VS_STORE_MAP_BYTES_DEFAULT;
  unsigned flags = MDB_NOTLS; /* a read txn may be opened and ended on any thread */
  /* Never MDB_WRITEMAP: a full disk would then surface as SIGBUS on a page
   * of the sparse file instead of an error from the commit (VS_ERR_FULL). */
  if (cfg->durability == VS_DURABILITY_NOSYNC) flags |= MDB_NOSYNC;
  rc = mdb_env_set_maxdbs(store->env, STORE_DBS);
  if (rc == MDB_SUCCESS) rc = mdb_env_set_mapsize(store->env, (size_t)map_bytes);
  if (rc == MDB_SUCCESS) rc = mdb_env_open(store->env, dir, flags, 0600);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  /* Clear reader slots left by processes that died (kill -9) so they do not
   * pin old pages forever. */
  int dead = 0;
  rc = mdb_reader_check(store->env, &dead);
  return vs_mdb_err(rc);
}

vs_err vs_store_open(const char *dir, const vs_store_cfg *cfg, vs_store **store_out) {
  if (dir == NULL || store_out == NULL) return VS_ERR_INVAL;
  *store_out = NULL;
  vs_store_cfg c = store_cfg_defaults();
  if (cfg != NULL && vs_cfg_load(cfg, &c, sizeof c, STORE_CFG_BYTES_V1) != VS_OK) return VS_ERR_INVAL;
  cfg = &c;
  if (cfg->durability != VS_DURABILITY_SYNC && cfg->durability != VS_DURABILITY_NOSYNC) return VS_ERR_INVAL;
  if (cfg->map_bytes != 0 && (cfg->map_bytes < VS_STORE_MAP_BYTES_MIN || cfg->map_bytes > SIZE_MAX))
    return VS_ERR_INVAL;
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return VS_ERR_NO_STORE;
  size_t dir_len = strlen(dir);
  char *data_path = malloc(dir_len + sizeof "/data.mdb");
  if (data_path == NULL) return VS_ERR_NOMEM;
  memcpy(data_path, dir, dir_len);
  memcpy(data_path + dir_len, "/data.mdb", sizeof "/data.mdb");
  struct stat data_st;
  bool exists = stat(data_path, &data_st) == 0 && data_st.st_size > 0;
  free(data_path);
  if (!exists && !cfg->create) return VS_ERR_NO_STORE;

  vs_store *store = calloc(1, sizeof *store);
  if (store == NULL) return VS_ERR_NOMEM;
  store->owner_fd = -1;
  store->suspend_after_ms = VS_SUSPEND_AFTER_MS_DEFAULT;
  store->durability = cfg->durability;
  store->dev = st.st_dev;
  store->ino = st.st_ino;
  store->dir = strdup(dir);
  if (store->dir == NULL) {
    free(store);
    return VS_ERR_NOMEM;
  }
  if (!registry_add(st.st_dev, st.st_ino)) {
    free(store->dir);
    free(store);
    return VS_ERR_BUSY;
  }
  vs_err err = env_open(store, dir, cfg);
  if (err == VS_OK) {
    err = open_existing(store);
    if (err == VS_ERR_NOTFOUND) err = cfg->create ? create_new(store) : empty_or_foreign(store);
  }
  if (err != VS_OK) {
    vs_store_close(store);
    return err;
  }
  *store_out = store;
  return VS_OK;
}

vs_err vs_store_format(const char *dir, uint32_t *format_out) {
  if (dir == NULL || format_out == NULL) return VS_ERR_INVAL;
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return VS_ERR_NO_STORE;
  /* LMDB allows one environment per files and process (see registry_add). */
  if (!registry_add(st.st_dev, st.st_ino)) return VS_ERR_BUSY;
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi meta;
  int rc = mdb_env_create(&env);
  if (rc == MDB_SUCCESS) rc = mdb_env_set_maxdbs(env, STORE_DBS);
  if (rc == MDB_SUCCESS) rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600);
  vs_err err = rc == ENOENT ? VS_ERR_NO_STORE : vs_mdb_err(rc);
  if (err == VS_OK) err = vs_mdb_err(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  if (err == VS_OK) {
    rc = mdb_dbi_open(txn, DBIS[0].name, 0, &meta);
    err = rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE ? VS_ERR_FOREIGN : vs_mdb_err(rc);
  }
  if (err == VS_OK) err = read_format(txn, meta, format_out);
  if (txn != NULL) mdb_txn_abort(txn);
  if (env != NULL) mdb_env_close(env);
  registry_remove(st.st_dev, st.st_ino);
  return err;
}

void vs_store_close(vs_store *store) {
  if (store == NULL) return;
  if (store->env != NULL) mdb_env_close(store->env);
  if (store->owner_fd >= 0) close(store->owner_fd); /* releases the flock */
  registry_remove(store->dev, store->ino);
  vs_identity_wipe(&store->identity);
  free(store->dir);
  free(store);
}

vs_err vs_store_set_map_bytes(vs_store *store, uint64_t map_bytes) {
  if (store == NULL || map_bytes < VS_STORE_MAP_BYTES_MIN || map_bytes > SIZE_MAX) return VS_ERR_INVAL;
  return vs_mdb_err(mdb_env_set_mapsize(store->env, (size_t)map_bytes));
}

vs_err vs_store_sync(vs_store *store) {
  if (store == NULL) return VS_ERR_INVAL;
  return vs_mdb_err(mdb_env_sync(store->env, 1));
}

vs_err vs_store_lock_owner(vs_store *store) {
  if (store == NULL) return VS_ERR_INVAL;
  if (store->owner_fd >= 0) return VS_OK;
  size_t dir_len = strlen(store->dir);
  char *path = malloc(dir_len + sizeof "/owner.lock");
  if (path == NULL) return VS_ERR_NOMEM;
  memcpy(path, store->dir, dir_len);
  memcpy(path + dir_len, "/owner.lock", sizeof "/owner.lock");
  int fd = -1;
  for (int tries = 0; tries < 8 && fd < 0; tries++) { /* bounded EINTR retry */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EINTR) break;
  }
  int open_errno = errno;
  free(path);
  if (fd < 0) return vs_mdb_err(open_errno);
  /* flock, not fcntl locks: it belongs to this open file, so closing another
   * descriptor of the same file elsewhere in the process does not drop it,
   * and the kernel releases it when the process dies. */
  int rc = -1, e = 0;
  for (int tries = 0; tries < 8 && rc != 0; tries++) {
    rc = flock(fd, LOCK_EX | LOCK_NB);
    e = errno;
    if (rc != 0 && e != EINTR) break;
  }
  if (rc != 0) {
    close(fd);
    return e == EWOULDBLOCK ? VS_ERR_BUSY : vs_mdb_err(e);
  }
  store->owner_fd = fd;
  return VS_OK;
}

const char *vs_store_dir(const vs_store *store) { return store != NULL ? store->dir : NULL; }

/* Pages on LMDB's free list: each record of the free database (dbi 0)
 * is a list of page numbers whose first word is its length (LMDB's IDL,
 * as mdb_stat -f counts them). Bounded by the list's records. */
static vs_err free_pages(MDB_txn *txn, uint64_t *pages_out) {
  *pages_out = 0;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, 0, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) { /* bounded: the list's records */
    size_t n = 0;
    if (v.mv_size < sizeof n) {
      rc = MDB_CORRUPTED;
      break;
    }
    memcpy(&n, v.mv_data, sizeof n);
    if (n > (v.mv_size - sizeof n) / sizeof n) { /* more pages than the record holds */
      rc = MDB_CORRUPTED;
      break;
    }
    *pages_out += n;
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? VS_OK : vs_mdb_err(rc);
}

vs_err vs_store_space_get(vs_store *store, vs_store_space *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (store == NULL || out == NULL) return VS_ERR_INVAL;
  MDB_envinfo info;
  MDB_stat st;
  int rc = mdb_env_info(store->env, &info);
  if (rc == MDB_SUCCESS) rc = mdb_env_stat(store->env, &st);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  uint64_t free_n = 0;
  err = free_pages(txn, &free_n);
  mdb_txn_abort(txn);
  if (err != VS_OK) return err;
  uint64_t pages = (uint64_t)info.me_last_pgno + 1u;
  if (free_n > pages) return VS_ERR_CORRUPT;
  mdb_filehandle_t fd;
  struct stat fst;
  if (mdb_env_get_fd(store->env, &fd) != MDB_SUCCESS || fstat(fd, &fst) != 0) return VS_ERR_STORE;
  out->high_water_bytes = pages * st.ms_psize;
  out->free_bytes = free_n * st.ms_psize;
  out->used_bytes = out->high_water_bytes - out->free_bytes;
  out->file_bytes = (uint64_t)fst.st_size;
  out->map_bytes = info.me_mapsize;
  return VS_OK;
}

vs_err vs_store_usage(vs_store *store, uint64_t *used_bytes_out, uint64_t *map_bytes_out) {
  if (store == NULL) return VS_ERR_INVAL;
  vs_store_space sp;
  vs_err err = vs_store_space_get(store, &sp);
  if (err != VS_OK) return err;
  if (used_bytes_out != NULL) *used_bytes_out = sp.used_bytes;
  if (map_bytes_out != NULL) *map_bytes_out = sp.map_bytes;
  return VS_OK;
}

vs_err vs_store_set_suspend_after(vs_store *store, uint64_t suspend_after_ms) {
  if (store == NULL) return VS_ERR_INVAL;
  store->suspend_after_ms = suspend_after_ms;
  return VS_OK;
}

vs_err vs_store_set_identity(vs_store *store, const vs_identity *identity) {
  if (store == NULL) return VS_ERR_INVAL;
  if (identity == NULL) {
    vs_identity_wipe(&store->identity);
    store->has_identity = false;
    return VS_OK;
  }
  store->identity = *identity;
  store->has_identity = true;
  return VS_OK;
}
