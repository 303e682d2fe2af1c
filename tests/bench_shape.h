/* The layout probe of the raw-LMDB baselines (bench_write, bench_replicate):
 * the shape of every named database of an environment (entries, first and
 * last key and value sizes), compared between a store the library wrote and
 * the baseline's environment, so that a benchmark stops instead of timing a
 * stale baseline when the library starts writing something else.
 * Include after <lmdb.h> and bench_util.h (die, CHECK_MDB). */
#ifndef VIXSYNC_BENCH_SHAPE_H
#define VIXSYNC_BENCH_SHAPE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lmdb.h>

#include "bench_util.h"

#define SHAPE_DBS_MAX 32
#define SHAPE_NAME_BYTES 64
#define SHAPE_META_KEYS_MAX 4

typedef struct dbi_shape {
  char name[SHAPE_NAME_BYTES];
  size_t entries;
  size_t first_key, first_val, last_key, last_val; /* sizes in bytes */
} dbi_shape;

/* A key of the main store's "meta" database whose value size is wanted. */
typedef struct meta_key {
  const void *bytes;
  size_t len;
} meta_key;

typedef struct env_shape {
  dbi_shape dbs[SHAPE_DBS_MAX];
  size_t count;
  size_t meta_vals[SHAPE_META_KEYS_MAX]; /* value sizes of the asked meta keys, 0 = absent */
} env_shape;

/* The baselines' mdb_put: fails the benchmark on any error. */
static inline void raw_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kb, const void *v, size_t vb,
                           unsigned flags) {
  MDB_val key = {kb, (void *)k}, val = {vb, (void *)v};
  CHECK_MDB(mdb_put(txn, dbi, &key, &val, flags));
}

static inline dbi_shape shape_of(MDB_txn *txn, const char *name) {
  dbi_shape s;
  memset(&s, 0, sizeof s);
  snprintf(s.name, sizeof s.name, "%s", name);
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn, name, 0, &dbi);
  if (rc == MDB_NOTFOUND) return s;
  CHECK_MDB(rc);
  MDB_stat st;
  CHECK_MDB(mdb_stat(txn, dbi, &st));
  s.entries = st.ms_entries;
  if (s.entries == 0) return s;
  MDB_cursor *cur;
  CHECK_MDB(mdb_cursor_open(txn, dbi, &cur));
  MDB_val k, v;
  CHECK_MDB(mdb_cursor_get(cur, &k, &v, MDB_FIRST));
  s.first_key = k.mv_size;
  s.first_val = v.mv_size;
  CHECK_MDB(mdb_cursor_get(cur, &k, &v, MDB_LAST));
  s.last_key = k.mv_size;
  s.last_val = v.mv_size;
  mdb_cursor_close(cur);
  return s;
}

/* The size of meta's value at `key`, 0 when it is absent. */
static inline size_t meta_val(MDB_txn *txn, const void *key, size_t key_bytes) {
  MDB_dbi dbi;
  CHECK_MDB(mdb_dbi_open(txn, "meta", 0, &dbi));
  MDB_val k = {key_bytes, (void *)key}, v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return 0;
  CHECK_MDB(rc);
  return v.mv_size;
}

/* Every named database of the environment in `dir` (the main database's
 * keys are their names), and the value sizes of meta's keys[0..key_count)
 * in e->meta_vals. */
static inline void shape_env(const char *dir, const meta_key *keys, size_t key_count, env_shape *e) {
  if (key_count > SHAPE_META_KEYS_MAX) die("layout check", "too many meta keys");
  memset(e, 0, sizeof *e);
  MDB_env *env;
  CHECK_MDB(mdb_env_create(&env));
  CHECK_MDB(mdb_env_set_maxdbs(env, SHAPE_DBS_MAX));
  CHECK_MDB(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600));
  MDB_txn *txn;
  CHECK_MDB(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  MDB_dbi main_dbi;
  CHECK_MDB(mdb_dbi_open(txn, NULL, 0, &main_dbi));
  MDB_cursor *cur;
  CHECK_MDB(mdb_cursor_open(txn, main_dbi, &cur));
  char names[SHAPE_DBS_MAX][SHAPE_NAME_BYTES];
  MDB_val k, v;
  int rc;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (e->count == SHAPE_DBS_MAX || k.mv_size >= SHAPE_NAME_BYTES) die("layout check", "too many databases");
    memcpy(names[e->count], k.mv_data, k.mv_size);
    names[e->count][k.mv_size] = '\0';
    e->count++;
  }
  if (rc != MDB_NOTFOUND) CHECK_MDB(rc);
  mdb_cursor_close(cur);
  for (size_t i = 0; i < e->count; i++) e->dbs[i] = shape_of(txn, names[i]);
  for (size_t i = 0; i < key_count; i++) e->meta_vals[i] = meta_val(txn, keys[i].bytes, keys[i].len);
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

/* The named database's shape; all zero (but the name) when it is absent. */
static inline dbi_shape shape_find(const env_shape *e, const char *name) {
  for (size_t i = 0; i < e->count; i++)
    if (strcmp(e->dbs[i].name, name) == 0) return e->dbs[i];
  dbi_shape none;
  memset(&none, 0, sizeof none);
  snprintf(none.name, sizeof none.name, "%s", name);
  return none;
}

/* a (the library's side, called `ours` in the message) and b (the
 * baseline's) have the same shape; says how they differ when not. */
static inline bool same_shape(const char *ours, dbi_shape a, dbi_shape b) {
  bool ok = a.entries == b.entries && a.first_key == b.first_key && a.first_val == b.first_val &&
            a.last_key == b.last_key && a.last_val == b.last_val;
  if (!ok)
    fprintf(stderr, "layout check: %s differs: %s %zu entries, key %zu/%zu B, value %zu/%zu B; "
            "baseline %zu entries, key %zu/%zu B, value %zu/%zu B\n", a.name, ours, a.entries, a.first_key,
            a.last_key, a.first_val, a.last_val, b.entries, b.first_key, b.last_key, b.first_val, b.last_val);
  return ok;
}

/* Every named database but meta (it also holds what store creation wrote)
 * has the same shape on both sides, including those only one side has. */
static inline bool shapes_match(const char *ours_name, const env_shape *ours, const env_shape *base) {
  bool ok = true;
  for (size_t i = 0; i < ours->count; i++) {
    if (strcmp(ours->dbs[i].name, "meta") == 0) continue;
    ok &= same_shape(ours_name, ours->dbs[i], shape_find(base, ours->dbs[i].name));
  }
  for (size_t i = 0; i < base->count; i++) {
    if (strcmp(base->dbs[i].name, "meta") == 0) continue;
    ok &= same_shape(ours_name, shape_find(ours, base->dbs[i].name), base->dbs[i]);
  }
  return ok;
}

/* The one size every key (`key`) or value of the named database has; stops
 * the benchmark with `why` when it is empty, the sizes differ or one is over
 * `max_bytes`. */
static inline size_t probe_size(const env_shape *e, const char *name, bool key, size_t max_bytes, const char *why) {
  dbi_shape s = shape_find(e, name);
  size_t first = key ? s.first_key : s.first_val, last = key ? s.last_key : s.last_val;
  if (s.entries == 0 || first != last || first > max_bytes) {
    fprintf(stderr, "layout check: %s: %zu entries, %s %zu/%zu B\n", name, s.entries, key ? "keys" : "values",
            first, last);
    die("layout check", why);
  }
  return first;
}

#endif
