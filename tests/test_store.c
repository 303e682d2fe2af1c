/* tests/test_store.c: pins include/vixsync/store.h.
 *
 * Open, create and close; the errors for a directory without a store, a
 * missing directory and a foreign LMDB environment; one open per process
 * (VS_ERR_BUSY, also through another spelling of the path); a store of
 * another format version (VS_ERR_VERSION, vs_store_format); the owner lock
 * between processes (each child opens the store itself, never across fork);
 * usage and map size.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: fork, pipe, mkdtemp, nftw */

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lmdb.h>

#include "fixture.h"
#include "internal.h" /* the store's env and meta database: test_store_space_counts_free_pages */
#include "testutil.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "vixsync/write.h"

#define MIB (1024ull * 1024ull)
/* A child that waits longer than this on its parent is stuck: SIGALRM ends it. */
#define CHILD_TIMEOUT_S 20u

typedef vt_fixture fixture; /* a fresh directory; the tests open the store */

static int setup(void **state) { return vt_fixture_new(state, "store"); }
static int teardown(void **state) { return vt_fixture_free(state); }

static vs_err open_dir(const char *dir, bool create, uint64_t map_bytes, vs_store **out) {
  vs_store_cfg cfg = vt_store_cfg(map_bytes);
  cfg.create = create;
  return vs_store_open(dir, &cfg, out);
}

static bool dir_is_empty(const char *dir) {
  char cmd_path[600];
  /* A store that failed to open must not leave its files behind. */
  static const char *names[] = {"data.mdb", "lock.mdb", "owner.lock"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(cmd_path, sizeof cmd_path, "%s/%s", dir, names[i]);
    struct stat st;
    if (stat(cmd_path, &st) == 0) return false;
  }
  return true;
}

/* No cmocka assert inside: forked children use it too. */
static vs_err try_write(vs_store *store, uint32_t payload_bytes, uint64_t now_ms) {
  static uint8_t payload[VS_OP_PAYLOAD_BYTES_MAX];
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 1);
  memset(payload, 'p', payload_bytes);
  vs_write_req req = {.kind = "put", .target = (const uint8_t *)"k", .target_bytes = 1,
                      .payload = payload, .payload_bytes = payload_bytes};
  return vs_write(store, origin, &req, now_ms, NULL);
}

static void write_one(vs_store *store, uint32_t payload_bytes, uint64_t now_ms) {
  assert_err(try_write(store, payload_bytes, now_ms), VS_OK);
}

/* ---- open / create / close ------------------------------------------------ */

static void test_store_cfg_default_is_sync_create(void **state) {
  (void)state;
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  assert_int_equal(cfg.durability, VS_DURABILITY_SYNC);
  assert_true(cfg.create);
  assert_true(cfg.map_bytes == 0 || cfg.map_bytes == VS_STORE_MAP_BYTES_DEFAULT);
}

/* A cfg carries the size its caller was compiled with (cfg.h): defaults
 * fill no more than that, and vs_store_open refuses a cfg that did not come
 * from vs_store_cfg_default or is larger than the library's struct. */
static void test_store_cfg_bytes_is_checked(void **state) {
  fixture *f = *state;
  union {
    vs_store_cfg cfg;
    uint8_t bytes[sizeof(vs_store_cfg)];
  } u;
  const size_t short_bytes = offsetof(vs_store_cfg, map_bytes);
  memset(u.bytes, 0xa5, sizeof u.bytes);
  vs_store_cfg_default_sized(&u.cfg, short_bytes);
  assert_int_equal(u.cfg.cfg_bytes, short_bytes);
  assert_int_equal(u.cfg.durability, VS_DURABILITY_SYNC);
  for (size_t i = short_bytes; i < sizeof u.bytes; i++) assert_int_equal(u.bytes[i], 0xa5);

  vs_store_cfg cfg = vt_store_cfg(0);
  assert_int_equal(cfg.cfg_bytes, sizeof cfg);
  cfg.cfg_bytes = 0; /* not from vs_store_cfg_default */
  assert_err(vs_store_open(f->dir, &cfg, &f->store), VS_ERR_INVAL);
  cfg.cfg_bytes = (uint32_t)sizeof cfg + 8u; /* a newer caller than this library */
  assert_err(vs_store_open(f->dir, &cfg, &f->store), VS_ERR_INVAL);
  cfg.cfg_bytes = (uint32_t)short_bytes; /* older than the first layout */
  assert_err(vs_store_open(f->dir, &cfg, &f->store), VS_ERR_INVAL);
  assert_null(f->store);
  cfg.cfg_bytes = (uint32_t)sizeof cfg;
  assert_err(vs_store_open(f->dir, &cfg, &f->store), VS_OK);
}

static void test_store_create_then_reopen_without_create(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  assert_non_null(f->store);
  assert_string_equal(vs_store_dir(f->store), f->dir);
  assert_false(vs_store_is_owner(f->store));
  write_one(f->store, 10, 1000);
  vs_store_close(f->store);
  f->store = NULL;

  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(f->store, &lsn), VS_OK);
  assert_int_equal(lsn, 1); /* what was written before the close is there */
}

static void test_store_open_with_sync_durability(void **state) {
  fixture *f = *state;
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.map_bytes = 4 * MIB;
  assert_err(vs_store_open(f->dir, &cfg, &f->store), VS_OK);
  write_one(f->store, 10, 1000);
  assert_err(vs_store_sync(f->store), VS_OK);
}

static void test_store_sync_in_nosync_mode(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 4 * MIB, &f->store), VS_OK);
  write_one(f->store, 10, 1000);
  assert_err(vs_store_sync(f->store), VS_OK);
}

static void test_store_open_null_dir_is_inval(void **state) {
  (void)state;
  vs_store *store = NULL;
  vs_store_cfg cfg = vt_store_cfg(0);
  assert_err(vs_store_open(NULL, &cfg, &store), VS_ERR_INVAL);
  assert_null(store);
}

static void test_store_open_map_below_min_is_inval(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, VS_STORE_MAP_BYTES_MIN - 1, &f->store), VS_ERR_INVAL);
  assert_null(f->store);
}

static void test_store_empty_dir_without_create_is_no_store(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_ERR_NO_STORE);
  assert_null(f->store);
  assert_true(dir_is_empty(f->dir));
  /* Nothing half-made was left behind: the answer stays the same. */
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_ERR_NO_STORE);
  assert_null(f->store);
}

static void test_store_missing_dir_is_no_store(void **state) {
  fixture *f = *state;
  char missing[600];
  snprintf(missing, sizeof missing, "%s/does-not-exist", f->dir);
  assert_err(open_dir(missing, false, 0, &f->store), VS_ERR_NO_STORE);
  assert_null(f->store);
  /* create makes the store, not the directory. */
  assert_err(open_dir(missing, true, 0, &f->store), VS_ERR_NO_STORE);
  assert_null(f->store);
  struct stat st;
  assert_int_not_equal(stat(missing, &st), 0);
}

/* ---- a foreign LMDB environment ------------------------------------------ */

static void make_foreign_env(const char *dir) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_mapsize(env, MIB), 0);
  assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
  MDB_val k = {5, (void *)"hello"}, v = {5, (void *)"world"};
  assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/* The unnamed DB of the foreign env still holds exactly "hello" -> "world":
 * opening it as a store wrote nothing into it (named DBs would be keys there). */
static void assert_foreign_env_untouched(const char *dir) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_cursor *cur = NULL;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
  assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
  MDB_val k, v;
  int keys = 0;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && keys < 100;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    keys++;
    assert_int_equal(k.mv_size, 5);
    assert_memory_equal(k.mv_data, "hello", 5);
    assert_int_equal(v.mv_size, 5);
    assert_memory_equal(v.mv_data, "world", 5);
  }
  assert_int_equal(keys, 1);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

static void test_store_foreign_lmdb_env_is_foreign(void **state) {
  fixture *f = *state;
  make_foreign_env(f->dir);
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_ERR_FOREIGN);
  assert_null(f->store);
  assert_foreign_env_untouched(f->dir);
}

static void test_store_foreign_lmdb_env_is_foreign_even_with_create(void **state) {
  fixture *f = *state;
  make_foreign_env(f->dir);
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_ERR_FOREIGN);
  assert_null(f->store);
  assert_foreign_env_untouched(f->dir);
}

/* ---- the format version ---------------------------------------------------- */

/* meta["vixsync"] = format u32le, as store.c records it, written with LMDB
 * directly: a store of another format, as an older or newer build left it. */
static void raw_set_format(const char *dir, uint32_t format) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi meta;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  uint8_t buf[4] = {(uint8_t)format, (uint8_t)(format >> 8), (uint8_t)(format >> 16), (uint8_t)(format >> 24)};
  MDB_val k = {7, (void *)"vixsync"}, v = {sizeof buf, buf};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/* What the store's files hold, page for page (nothing may be written). */
static void *read_data_file(const char *dir, size_t *bytes_out) {
  char path[600];
  snprintf(path, sizeof path, "%s/data.mdb", dir);
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  assert_int_equal(fseek(fp, 0, SEEK_END), 0);
  long n = ftell(fp);
  assert_true(n > 0);
  rewind(fp);
  void *p = malloc((size_t)n);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
  *bytes_out = (size_t)n;
  return p;
}

/* A store of another format (2: 16-byte op ids, before op-id v2; or a
 * future one) is refused with VS_ERR_VERSION, with or without create, and
 * left as it was; vs_store_format names the format it holds, so the error
 * can say "store format 2, this build reads 3". */
static void test_store_other_format_is_a_version_error(void **state) {
  fixture *f = *state;
  assert_int_equal(VS_STORE_FORMAT, 7);
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  write_one(f->store, 10, 1000);
  uint32_t found = 0;
  assert_err(vs_store_format(f->dir, &found), VS_ERR_BUSY); /* open here: one env per process */
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vs_store_format(f->dir, &found), VS_OK);
  assert_int_equal(found, VS_STORE_FORMAT);
  static const uint32_t others[] = {1u, 2u, 3u, 4u, VS_STORE_FORMAT + 1u, UINT32_MAX}; /* 5 upgrades: below */
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    raw_set_format(f->dir, others[i]);
    size_t before_bytes = 0, after_bytes = 0;
    void *before = read_data_file(f->dir, &before_bytes);
    assert_err(open_dir(f->dir, false, 0, &f->store), VS_ERR_VERSION);
    assert_null(f->store);
    assert_err(open_dir(f->dir, true, 0, &f->store), VS_ERR_VERSION);
    assert_null(f->store);
    found = 0;
    assert_err(vs_store_format(f->dir, &found), VS_OK);
    assert_int_equal(found, others[i]);
    void *after = read_data_file(f->dir, &after_bytes);
    assert_int_equal(before_bytes, after_bytes);
    assert_memory_equal(before, after, before_bytes);
    free(before);
    free(after);
  }
  /* Back at this build's format, the store opens with its op. */
  raw_set_format(f->dir, VS_STORE_FORMAT);
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(f->store, &lsn), VS_OK);
  assert_int_equal(lsn, 1);
}

/* Delete the named databases format 6 added: what a format-5 store holds. */
static void raw_drop_format6(const char *dir) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  static const char *const added[] = {"hstate", "hincrs", "horizon", "acks"};
  for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(txn, added[i], 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
  }
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/* A format-5 store (no compaction databases) opens: it is upgraded to 6 in
 * one transaction, its ops and state intact; a read-only look first (the
 * format) changes nothing. */
static void test_store_format5_upgrades(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  write_one(f->store, 10, 1000);
  uint8_t hash_before[VS_HASH_BYTES], hash_after[VS_HASH_BYTES];
  assert_err(vs_state_hash(f->store, hash_before), VS_OK);
  vs_store_close(f->store);
  f->store = NULL;
  raw_drop_format6(f->dir);
  raw_set_format(f->dir, 5);
  uint32_t found = 0;
  assert_err(vs_store_format(f->dir, &found), VS_OK);
  assert_int_equal(found, 5);
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(f->store, &lsn), VS_OK);
  assert_int_equal(lsn, 1);
  assert_err(vs_state_hash(f->store, hash_after), VS_OK);
  assert_memory_equal(hash_before, hash_after, VS_HASH_BYTES);
  write_one(f->store, 11, 1001); /* writes go on */
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vs_store_format(f->dir, &found), VS_OK);
  assert_int_equal(found, VS_STORE_FORMAT);
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
}

/* What a format-6 store held for a tombstone: its del's hash as the
 * record's digest, XORed into the state hash. Put `mark` there (the
 * record of target "k", in `dbname`) and into the hash kept in `hash_key`. */
static void raw_mark_tombstone(const char *dir, const char *dbname, const char *hash_key, const uint8_t mark[32]) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi db, meta;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, dbname, 0, &db), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  MDB_val k = {2, (void *)"tk"}, v; /* state key: 't' then the target */
  assert_int_equal(mdb_get(txn, db, &k, &v), 0);
  assert_true(v.mv_size >= 140);
  uint8_t rec[512];
  assert_true(v.mv_size <= sizeof rec);
  memcpy(rec, v.mv_data, v.mv_size);
  assert_int_equal(rec[1], 2); /* a del */
  for (unsigned i = 0; i < 32; i++) assert_int_equal(rec[108 + i], 0); /* this build zeroes it */
  memcpy(rec + 108, mark, 32);
  MDB_val nv = {v.mv_size, rec};
  assert_int_equal(mdb_put(txn, db, &k, &nv, 0), 0);
  MDB_val hk = {strlen(hash_key), (void *)hash_key}, hv;
  uint8_t h[32] = {0};
  int rc = mdb_get(txn, meta, &hk, &hv);
  if (rc == 0) memcpy(h, hv.mv_data, 32);
  for (unsigned i = 0; i < 32; i++) h[i] ^= mark[i];
  MDB_val nh = {32, h};
  assert_int_equal(mdb_put(txn, meta, &hk, &nh, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/* A format-6 store: a tombstone's digest was its del's hash, in the state
 * hash. Opening it rewrites both (format 7: a tombstone adds nothing), in
 * the upgrade's transaction: the hash is then the one of the state without
 * the tombstone, as a store that never held it has. */
static void test_store_format6_tombstones_rehashed(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  uint8_t origin[VS_ORIGIN_BYTES], hash_want[VS_HASH_BYTES], hash_after[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  vt_origin(origin, 1);
  vs_write_req del = {.kind = "del", .target = (const uint8_t *)"k", .target_bytes = 1};
  assert_err(vs_write(f->store, origin, &del, 1000, NULL), VS_OK);
  assert_err(vs_state_hash(f->store, hash_want), VS_OK);
  assert_memory_equal(hash_want, zero, VS_HASH_BYTES); /* the tombstone alone: nothing shows */
  vs_store_close(f->store);
  f->store = NULL;
  uint8_t mark[32];
  memset(mark, 0x5a, sizeof mark);
  raw_mark_tombstone(f->dir, "state", "state_hash", mark);
  raw_set_format(f->dir, 6);
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  assert_err(vs_state_hash(f->store, hash_after), VS_OK);
  assert_memory_equal(hash_after, hash_want, VS_HASH_BYTES);
  vs_store_close(f->store);
  f->store = NULL;
  uint32_t found = 0;
  assert_err(vs_store_format(f->dir, &found), VS_OK);
  assert_int_equal(found, VS_STORE_FORMAT);
  /* The record itself was rewritten: marking it again finds it zero. */
  raw_mark_tombstone(f->dir, "state", "state_hash", mark);
}

static void test_store_format_of_no_store_or_foreign(void **state) {
  fixture *f = *state;
  uint32_t found = 7;
  assert_err(vs_store_format(f->dir, &found), VS_ERR_NO_STORE); /* empty directory */
  assert_true(dir_is_empty(f->dir));
  char missing[600];
  snprintf(missing, sizeof missing, "%s/does-not-exist", f->dir);
  assert_err(vs_store_format(missing, &found), VS_ERR_NO_STORE);
  assert_err(vs_store_format(NULL, &found), VS_ERR_INVAL);
  assert_err(vs_store_format(f->dir, NULL), VS_ERR_INVAL);
  make_foreign_env(f->dir);
  assert_err(vs_store_format(f->dir, &found), VS_ERR_FOREIGN);
  assert_int_equal(found, 7);
  assert_foreign_env_untouched(f->dir);
}

/* ---- one open per process ------------------------------------------------- */

static void test_store_open_twice_in_process_is_busy(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  vs_store *second = NULL;
  assert_err(open_dir(f->dir, true, 0, &second), VS_ERR_BUSY);
  assert_null(second);
  assert_err(open_dir(f->dir, false, 0, &second), VS_ERR_BUSY);
  assert_null(second);
  /* The first one is unharmed. */
  write_one(f->store, 10, 1000);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  /* Once closed, the directory can be opened again. */
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(f->store, &lsn), VS_OK);
  assert_int_equal(lsn, 1);
}

static void test_store_open_twice_via_other_path_is_busy(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  /* The same files under another spelling are still the same environment. */
  char other[600];
  snprintf(other, sizeof other, "%s/.", f->dir);
  vs_store *second = NULL;
  assert_err(open_dir(other, false, 0, &second), VS_ERR_BUSY);
  assert_null(second);
  snprintf(other, sizeof other, "%s/", f->dir);
  assert_err(open_dir(other, false, 0, &second), VS_ERR_BUSY);
  assert_null(second);
  write_one(f->store, 10, 1000);
}

/* ---- processes ------------------------------------------------------------ */

static void put_byte(int fd, char c) {
  ssize_t n;
  do n = write(fd, &c, 1);
  while (n < 0 && errno == EINTR);
}

/* Returns the byte, or -1 at EOF (the other side is gone). */
static int get_byte(int fd) {
  char c;
  ssize_t n;
  do n = read(fd, &c, 1);
  while (n < 0 && errno == EINTR);
  return n == 1 ? (unsigned char)c : -1;
}

/* Child of test_store_owner_lock_excludes_other_process. Opens the store
 * itself (never the parent's), reports through its exit code. */
static void owner_child(const char *dir, int from_parent, int to_parent) {
  alarm(CHILD_TIMEOUT_S);
  if (get_byte(from_parent) != 'L') _exit(10); /* parent holds the lock now */
  vs_store *store = NULL;
  if (open_dir(dir, false, 0, &store) != VS_OK) _exit(11);
  if (vs_store_lock_owner(store) != VS_ERR_BUSY) _exit(12);
  if (vs_store_is_owner(store)) _exit(13);
  put_byte(to_parent, 'B');
  if (get_byte(from_parent) != 'C') _exit(14); /* parent closed its store */
  if (vs_store_lock_owner(store) != VS_OK) _exit(15);
  if (!vs_store_is_owner(store)) _exit(16);
  vs_store_close(store);
  _exit(0);
}

static void test_store_owner_lock_excludes_other_process(void **state) {
  fixture *f = *state;
  /* Create the store, then fork before anything is open: the child must
   * not inherit an open environment or the lock's file descriptor. */
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  vs_store_close(f->store);
  f->store = NULL;

  int down[2], up[2];
  assert_int_equal(pipe(down), 0);
  assert_int_equal(pipe(up), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(down[1]);
    close(up[0]);
    owner_child(f->dir, down[0], up[1]);
  }
  close(down[0]);
  close(up[1]);

  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  assert_false(vs_store_is_owner(f->store));
  assert_err(vs_store_lock_owner(f->store), VS_OK);
  assert_true(vs_store_is_owner(f->store));
  assert_err(vs_store_lock_owner(f->store), VS_OK); /* already held by this store */
  assert_true(vs_store_is_owner(f->store));
  put_byte(down[1], 'L');
  int ack = get_byte(up[0]);
  vs_store_close(f->store); /* releases the lock */
  f->store = NULL;
  put_byte(down[1], 'C');
  close(down[1]);
  close(up[0]);
  int code = vt_wait_child(pid);
  assert_int_equal(ack, 'B');
  assert_int_equal(code, 0);

  /* The child released it by closing. */
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  assert_err(vs_store_lock_owner(f->store), VS_OK);
}

static void test_store_owner_lock_released_by_process_death(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  vs_store_close(f->store);
  f->store = NULL;

  int up[2], down[2];
  assert_int_equal(pipe(up), 0);
  assert_int_equal(pipe(down), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(up[0]);
    close(down[1]);
    alarm(CHILD_TIMEOUT_S);
    vs_store *store = NULL;
    if (open_dir(f->dir, false, 0, &store) != VS_OK) _exit(11);
    if (vs_store_lock_owner(store) != VS_OK) _exit(12);
    put_byte(up[1], 'L');
    (void)get_byte(down[0]); /* block until killed; never closes the store */
    _exit(13);
  }
  close(up[1]);
  close(down[0]);
  int locked = get_byte(up[0]);
  assert_err(open_dir(f->dir, false, 0, &f->store), VS_OK);
  vs_err while_alive = vs_store_lock_owner(f->store);
  kill(pid, SIGKILL);
  int code = vt_wait_child(pid);
  close(up[0]);
  close(down[1]);
  assert_int_equal(locked, 'L');
  assert_int_equal(code, 1000 + SIGKILL);
  assert_err(while_alive, VS_ERR_BUSY);
  assert_false(vs_store_is_owner(f->store));
  assert_err(vs_store_lock_owner(f->store), VS_OK);
  assert_true(vs_store_is_owner(f->store));
}

static void test_store_owner_lock_released_by_close(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  assert_err(vs_store_lock_owner(f->store), VS_OK);
  vs_store_close(f->store);
  f->store = NULL;

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(CHILD_TIMEOUT_S);
    vs_store *store = NULL;
    if (open_dir(f->dir, false, 0, &store) != VS_OK) _exit(11);
    if (vs_store_lock_owner(store) != VS_OK) _exit(12);
    vs_store_close(store);
    _exit(0);
  }
  assert_int_equal(vt_wait_child(pid), 0);
}

/* "Never carry an open store across fork(): open it again in the child."
 * So a child may open the directory while its parent has it open: the
 * one-open-per-process rule is about this process, not the parent. */
static void test_store_child_opens_while_parent_holds_store(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  write_one(f->store, 10, 1000);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(CHILD_TIMEOUT_S);
    vs_store *store = NULL;
    if (open_dir(f->dir, false, 0, &store) != VS_OK) _exit(11);
    uint64_t lsn = 0;
    if (vs_wal_last_lsn(store, &lsn) != VS_OK || lsn != 1) _exit(12);
    if (try_write(store, 10, 2000) != VS_OK) _exit(13);
    vs_store_close(store);
    _exit(0);
  }
  assert_int_equal(vt_wait_child(pid), 0);
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(f->store, &lsn), VS_OK);
  assert_int_equal(lsn, 2); /* the child's write is visible to the parent */
  write_one(f->store, 10, 3000);
}

/* ---- usage and map size --------------------------------------------------- */

static void test_store_usage_reports_map_and_growth(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 8 * MIB, &f->store), VS_OK);
  uint64_t used0 = 0, map0 = 0;
  assert_err(vs_store_usage(f->store, &used0, &map0), VS_OK);
  assert_int_equal(map0, 8 * MIB);
  assert_true(used0 > 0);
  assert_true(used0 <= map0);
  for (uint32_t i = 0; i < 200; i++) write_one(f->store, 1024, 1000 + i);
  uint64_t used1 = 0, map1 = 0;
  assert_err(vs_store_usage(f->store, &used1, &map1), VS_OK);
  assert_int_equal(map1, 8 * MIB);
  /* 200 KiB of payload cannot fit in fewer pages than before. */
  assert_true(used1 >= used0 + 200u * 1024u);
  assert_true(used1 <= map1);
}

/* vs_store_space_get: pages freed (LMDB's free list) are not in use; the
 * high-water mark never falls. Keys put straight into the meta database
 * and deleted make the free pages. */
static void test_store_space_counts_free_pages(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 8 * MIB, &f->store), VS_OK);
  vs_store_space sp0, sp1, sp2;
  assert_err(vs_store_space_get(f->store, &sp0), VS_OK);
  assert_true(sp0.used_bytes + sp0.free_bytes == sp0.high_water_bytes);
  assert_int_equal(sp0.map_bytes, 8 * MIB);
  assert_true(sp0.file_bytes > 0);
  static uint8_t value[512];
  memset(value, 0x5c, sizeof value);
  MDB_txn *txn;
  assert_int_equal(mdb_txn_begin(f->store->env, NULL, 0, &txn), MDB_SUCCESS);
  for (uint32_t i = 0; i < 2000; i++) {
    char key[32];
    int n = snprintf(key, sizeof key, "space-test-%05u", i);
    MDB_val k = {(size_t)n, key}, v = {sizeof value, value};
    assert_int_equal(mdb_put(txn, f->store->dbi_meta, &k, &v, 0), MDB_SUCCESS);
  }
  assert_int_equal(mdb_txn_commit(txn), MDB_SUCCESS);
  assert_err(vs_store_space_get(f->store, &sp1), VS_OK);
  assert_true(sp1.used_bytes >= sp0.used_bytes + 2000u * 512u);
  assert_int_equal(mdb_txn_begin(f->store->env, NULL, 0, &txn), MDB_SUCCESS);
  for (uint32_t i = 0; i < 2000; i++) {
    char key[32];
    int n = snprintf(key, sizeof key, "space-test-%05u", i);
    MDB_val k = {(size_t)n, key};
    assert_int_equal(mdb_del(txn, f->store->dbi_meta, &k, NULL), MDB_SUCCESS);
  }
  assert_int_equal(mdb_txn_commit(txn), MDB_SUCCESS);
  assert_err(vs_store_space_get(f->store, &sp2), VS_OK);
  assert_true(sp2.high_water_bytes >= sp1.high_water_bytes); /* never falls */
  assert_true(sp2.used_bytes + 2000u * 512u <= sp1.used_bytes); /* the pages are free again */
  assert_true(sp2.free_bytes >= 2000u * 512u);
  assert_true(sp2.used_bytes + sp2.free_bytes == sp2.high_water_bytes);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_int_equal(used, sp2.used_bytes);
  assert_err(vs_store_space_get(NULL, &sp2), VS_ERR_INVAL);
  assert_err(vs_store_space_get(f->store, NULL), VS_ERR_INVAL);
}

static void test_store_usage_default_map_size(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 0, &f->store), VS_OK);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_int_equal(map, VS_STORE_MAP_BYTES_DEFAULT);
}

static void test_store_set_map_bytes_grows_map(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, MIB, &f->store), VS_OK);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_int_equal(map, MIB);
  assert_err(vs_store_set_map_bytes(f->store, 4 * MIB), VS_OK);
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_int_equal(map, 4 * MIB);
  /* More than the old map could hold now fits. */
  for (uint32_t i = 0; i < 1000; i++) write_one(f->store, 1024, 1000 + i);
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_true(used > MIB);
  assert_int_equal(map, 4 * MIB);
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(open_dir(f->dir, false, 4 * MIB, &f->store), VS_OK);
  uint64_t lsn = 0;
  assert_err(vs_wal_last_lsn(f->store, &lsn), VS_OK);
  assert_int_equal(lsn, 1000);
}

static void test_store_set_map_bytes_below_min_is_inval(void **state) {
  fixture *f = *state;
  assert_err(open_dir(f->dir, true, 2 * MIB, &f->store), VS_OK);
  assert_err(vs_store_set_map_bytes(f->store, VS_STORE_MAP_BYTES_MIN - 1), VS_ERR_INVAL);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_int_equal(map, 2 * MIB); /* unchanged */
  write_one(f->store, 10, 1000);
}

int main(void) {
  /* A child that died early must not take the parent down with SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_cfg_default_is_sync_create),
      cmocka_unit_test_setup_teardown(test_store_cfg_bytes_is_checked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_create_then_reopen_without_create, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_open_with_sync_durability, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_sync_in_nosync_mode, setup, teardown),
      cmocka_unit_test(test_store_open_null_dir_is_inval),
      cmocka_unit_test_setup_teardown(test_store_open_map_below_min_is_inval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_empty_dir_without_create_is_no_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_missing_dir_is_no_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_foreign_lmdb_env_is_foreign, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_foreign_lmdb_env_is_foreign_even_with_create, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_other_format_is_a_version_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_format_of_no_store_or_foreign, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_open_twice_in_process_is_busy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_open_twice_via_other_path_is_busy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_owner_lock_excludes_other_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_owner_lock_released_by_process_death, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_owner_lock_released_by_close, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_child_opens_while_parent_holds_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_format5_upgrades, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_format6_tombstones_rehashed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_usage_reports_map_and_growth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_space_counts_free_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_usage_default_map_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_set_map_bytes_grows_map, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_set_map_bytes_below_min_is_inval, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
