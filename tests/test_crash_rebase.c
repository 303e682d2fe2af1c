/* Crash torture for vs_snapshot_rebase (issue 17; docs/storage.md,
 * "Re-bootstrap and orphans"): kill -9 a process in the middle of
 * re-bootstrapping a store that holds data, hundreds of times at seeded
 * random instants, and prove that the store opens every time either as it
 * was (state hash, own head, last LSN, no orphan) or rebased (the state,
 * head and orphans of a rebase that ran to its end), never in between.
 *
 * The store `a` holds its own chain of 8 ops (1..5 the mesh holds, 6..8
 * held back by a restore mark at 7: orphans to be) and 600 ops of another
 * origin; the snapshot comes from `c`, which holds a's 1..5 and that
 * origin's 1,000 ops. Once a child finishes, the store is put back from a
 * pristine copy. Timing decides only when a kill lands, never whether a
 * check passes. The seed is printed; VS_TORTURE_SEED and VS_TORTURE_KILLS
 * override it. */
#define _XOPEN_SOURCE 700

#include "apply_nodes.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "internal.h"
#include "orphans.h"
#include "vixsync/snapshot.h"
#include "snap_buf.h"
#include "crash_util.h"

#define TR_SEED_DEFAULT 0x5eedc0ac7eba5e11ull
#define TR_KILLS_DEFAULT 200u
#define TR_OTHER_OPS 1000u /* apply_nodes.h collects at most OPS_MAX */
#define TR_NOW (T0_MS + 100000000ull)

static vs_store *open_dir(const char *dir, const vs_identity *id) {
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_SYNC;
  cfg.map_bytes = 256ull << 20;
  cfg.create = true;
  vs_store *s = NULL;
  assert_err(vs_store_open(dir, &cfg, &s), VS_OK);
  assert_err(vs_store_set_identity(s, id), VS_OK);
  return s;
}

/* What a store looks like: before and after. */
typedef struct look {
  uint8_t hash[VS_HASH_BYTES];
  uint64_t head, lsn, orphans;
} look;

static look look_at(vs_store *s, const uint8_t *self) {
  look l;
  memset(&l, 0, sizeof l);
  state_hash(s, l.hash);
  assert_err(vs_wal_head(s, self, &l.head, NULL, NULL), VS_OK);
  l.lsn = last_lsn(s);
  MDB_txn *txn;
  uint64_t bytes = 0;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  assert_err(vs_orphans_usage_txn(txn, s, &l.orphans, &bytes), VS_OK);
  mdb_txn_abort(txn);
  return l;
}

static bool same(const look *x, const look *y) {
  return memcmp(x->hash, y->hash, VS_HASH_BYTES) == 0 && x->head == y->head && x->lsn == y->lsn &&
         x->orphans == y->orphans;
}

static vt_snap_buf g_snap;

static void rebase_child(const char *dir, const vs_identity *id) {
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_SYNC;
  cfg.map_bytes = 256ull << 20;
  vs_store *s = NULL;
  if (vs_store_open(dir, &cfg, &s) != VS_OK || vs_store_set_identity(s, id) != VS_OK) _exit(2);
  vt_snap_buf b = g_snap;
  b.at = 0;
  vs_err err = vs_snapshot_rebase(s, vt_snap_read, &b, TR_NOW, NULL);
  vs_store_close(s);
  _exit(err == VS_OK ? 0 : 3);
}

static void write_many(node *n, uint32_t count, uint64_t t) {
  vs_write_req reqs[100];
  char targets[100][16], values[100][16];
  for (uint32_t done = 0; done < count; done += 100) {
    for (uint32_t i = 0; i < 100; i++) {
      uint32_t k = done + i;
      snprintf(targets[i], sizeof targets[i], "o%u", k % 300);
      snprintf(values[i], sizeof values[i], "%u", k % 7);
      reqs[i] = req_of(k % 5 == 2 ? "incr" : "put", targets[i], values[i]);
    }
    assert_err(vs_write_batch(n->store, n->id.pk, reqs, 100, t + done, NULL), VS_OK);
  }
}

static void test_crash_during_rebase(void **state) {
  (void)state;
  node a, b, c;
  node_open(&a, "crashr-a", 41);
  node_open(&b, "crashr-b", 42);
  node_open(&c, "crashr-c", 43);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.ranges_only = true; /* the node's mesh sink */
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(a.store, &ocfg, &ob), VS_OK);
  vs_outbox_close(ob);
  for (unsigned i = 0; i < 5; i++) wr(&a, i % 2 ? "incr" : "put", "mine", "1", T0_MS + i);
  sync_origin(&a, &c, a.id.pk, T0_MS + 10);
  for (unsigned i = 0; i < 3; i++) wr(&a, "put", "later", "x", T0_MS + 20 + i);
  write_many(&b, TR_OTHER_OPS, T0_MS + 100);
  sync_origin(&b, &c, b.id.pk, T0_MS + 10000);
  /* a holds b's first 600 ops (whole runs of 100: each batch is signed). */
  {
    oplist *l = collect(b.store, b.id.pk);
    run runs[RUNS_MAX];
    uint32_t n = cut_runs(b.store, l, runs, RUNS_MAX);
    for (uint32_t i = 0; i < n && runs[i].first + runs[i].count <= 600u; i++) {
      vs_apply_result res;
      assert_err(apply_run(&a, l, &runs[i], T0_MS + 10000, &res), VS_OK);
    }
    oplist_free(l);
  }
  MDB_txn *txn;
  assert_err(vs_txn_begin(a.store, true, &txn), VS_OK);
  assert_err(vs_meta_restore_put(txn, a.store, 7), VS_OK); /* the mesh holds our 6..7: 6..8 orphans */
  assert_err(vs_txn_commit(txn), VS_OK);
  memset(&g_snap, 0, sizeof g_snap);
  assert_err(vs_snapshot_make(c.store, vt_snap_write, &g_snap, NULL), VS_OK);
  look before = look_at(a.store, a.id.pk);
  assert_int_equal(before.head, 8);
  vs_store_close(a.store);
  a.store = NULL;
  char data[600], pristine[600], done_dir[600];
  snprintf(data, sizeof data, "%s/data.mdb", a.dir);
  snprintf(pristine, sizeof pristine, "%s/pristine.mdb", a.dir);
  crash_copy_file(data, pristine);
  /* A rebase to its end, on a copy: what "after" looks like, and how long. */
  vt_tmpdir(done_dir, sizeof done_dir, "crashr-done");
  char done_data[700];
  snprintf(done_data, sizeof done_data, "%s/data.mdb", done_dir);
  crash_copy_file(pristine, done_data);
  vs_store *s = open_dir(done_dir, &a.id);
  vt_snap_buf rb = g_snap;
  rb.at = 0;
  vs_rebase_info info;
  uint64_t t0 = crash_mono_us();
  assert_err(vs_snapshot_rebase(s, vt_snap_read, &rb, TR_NOW, &info), VS_OK);
  uint64_t took = crash_mono_us() - t0;
  assert_int_equal(info.orphaned, 3);
  assert_int_equal(info.own_head_after, 5);
  look after = look_at(s, a.id.pk);
  vs_store_close(s);
  vt_rmrf(done_dir);
  assert_false(same(&before, &after));
  uint64_t rng = crash_env_u64("VS_TORTURE_SEED", TR_SEED_DEFAULT) | 1u;
  uint64_t kills = crash_env_u64("VS_TORTURE_KILLS", TR_KILLS_DEFAULT), killed = 0, finished = 0, old = 0, rebased = 0;
  /* The delays span the child's open and the whole rebase. */
  uint64_t span = 2u * took + 20000u;
  printf("rebase torture: seed 0x%llx, %llu kills, %zu-byte snapshot, one rebase %llu us\n", (unsigned long long)rng,
         (unsigned long long)kills, g_snap.len, (unsigned long long)took);
  for (uint64_t round = 0; killed < kills && round < kills * 4; round++) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) rebase_child(a.dir, &a.id);
    bool done = crash_kill_after(pid, crash_rand(&rng) % span);
    crash_span_adapt(&span, done);
    if (done) finished++;
    else killed++;
    s = open_dir(a.dir, &a.id);
    look now = look_at(s, a.id.pk);
    vs_store_close(s);
    if (same(&now, &before)) {
      old++;
    } else {
      assert_true(same(&now, &after));
      rebased++;
      crash_copy_file(pristine, data); /* start again */
    }
  }
  printf("rebase torture: %llu kills, %llu runs finished; stores found as before %llu, rebased %llu\n",
         (unsigned long long)killed, (unsigned long long)finished, (unsigned long long)old,
         (unsigned long long)rebased);
  assert_true(killed >= kills);
  assert_true(old > 0 && rebased > 0); /* the kills landed on both sides of the commit */
  free(g_snap.p);
  a.store = open_dir(a.dir, &a.id);
  node_close(&a);
  node_close(&b);
  node_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crash_during_rebase),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
