/* Crash torture for compaction and snapshot install (issue 17): kill -9 a
 * process in the middle of compacting a store, or of installing a snapshot,
 * hundreds of times at seeded random instants, and prove that the store
 * opens every time in the old state or the new one, never in between.
 *
 * Compaction: the store holds N signed ops of one origin over a few targets
 * (puts, dels, incrs). A child compacts it in small budget steps (one
 * durable transaction each) until everything is folded; the parent kills it
 * after a random delay, then checks: the state hash is the one before any
 * compaction; a refold (base state + the ops above the horizon) gives it
 * again; the ops above the horizon are all held, gapless up to the head;
 * the horizon's anchor is signed and hashes as the op the chain had there.
 * Once a child finishes, the store is put back from a pristine copy.
 *
 * Install: a child installs a snapshot into a fresh store; the parent kills
 * it at a random instant and checks the store is either untouched (no
 * state, no vector) or whole (the snapshot's state hash, the anchors as
 * heads), then installs it itself when untouched: it must work.
 *
 * Timing decides only when a kill lands, never whether a check passes. The
 * seed is printed; VS_TORTURE_SEED and VS_TORTURE_KILLS override them. */
#define _XOPEN_SOURCE 700

#include "apply_nodes.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "compact.h"
#include "internal.h"
#include "state_int.h"
#include "vixsync/snapshot.h"
#include "crash_util.h"

#define TC_SEED_DEFAULT 0x5eedc0ac7c0ffee1ull
#define TC_KILLS_DEFAULT 200u
#define TC_OPS 6000u
#define TC_BUDGET 40u
#define TC_DELAY_US_MAX 60000u

static vs_store *open_dir(const char *dir) {
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_SYNC;
  cfg.map_bytes = 256ull << 20;
  cfg.create = true;
  vs_store *s = NULL;
  assert_err(vs_store_open(dir, &cfg, &s), VS_OK);
  return s;
}

typedef struct fx {
  node a;                          /* the source: a's own chain */
  char dir[600], pristine[700];    /* the store being compacted, and its copy before */
  char fresh[600];                 /* where snapshots are installed */
  uint8_t hash[VS_HASH_BYTES];     /* its state hash */
  uint8_t hashes[TC_OPS + 1][VS_HASH_BYTES]; /* the chain's op hashes, by seq */
  uint64_t head;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  node_open(&f->a, "crashc-a", 21);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.ranges_only = true; /* as the node's mesh sink: compaction is not held back by it */
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(f->a.store, &ocfg, &ob), VS_OK);
  vs_outbox_close(ob);
  vs_write_req reqs[100];
  char targets[100][16], values[100][16];
  for (uint32_t done = 0; done < TC_OPS; done += 100) {
    for (uint32_t i = 0; i < 100; i++) {
      uint32_t k = done + i;
      snprintf(targets[i], sizeof targets[i], "t%u", k % 400);
      snprintf(values[i], sizeof values[i], "%u", k % 5);
      reqs[i] = req_of(k % 5 == 1 ? "del" : k % 5 == 2 ? "incr" : "put", targets[i], k % 5 == 1 ? NULL : values[i]);
    }
    assert_err(vs_write_batch(f->a.store, f->a.id.pk, reqs, 100, T0_MS + done, NULL), VS_OK);
  }
  assert_err(vs_wal_head(f->a.store, f->a.id.pk, &f->head, NULL, NULL), VS_OK);
  assert_int_equal(f->head, TC_OPS);
  MDB_txn *txn;
  assert_err(vs_txn_begin(f->a.store, false, &txn), VS_OK);
  for (uint64_t seq = 1; seq <= f->head; seq++)
    assert_err(vs_op_hash_at_txn(txn, f->a.store, f->a.id.pk, seq, f->hashes[seq]), VS_OK);
  mdb_txn_abort(txn);
  state_hash(f->a.store, f->hash);
  vs_store_close(f->a.store); /* its file is the pristine copy */
  f->a.store = NULL;
  snprintf(f->dir, sizeof f->dir, "%s", f->a.dir);
  snprintf(f->pristine, sizeof f->pristine, "%s/pristine.mdb", f->a.dir);
  char data[700];
  snprintf(data, sizeof data, "%s/data.mdb", f->dir);
  crash_copy_file(data, f->pristine);
  vt_tmpdir(f->fresh, sizeof f->fresh, "crashc-fresh");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  if (f->a.store == NULL) f->a.store = open_dir(f->dir);
  node_close(&f->a);
  vt_rmrf(f->fresh);
  free(f);
  return 0;
}

/* The compacting child: steps until all is folded, then exits 0. */
static void compact_child(const fx *f) {
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_SYNC;
  cfg.map_bytes = 256ull << 20;
  vs_store *s = NULL;
  if (vs_store_open(f->dir, &cfg, &s) != VS_OK) _exit(2);
  vs_cut_entry cut;
  memcpy(cut.origin, f->a.id.pk, VS_ORIGIN_BYTES);
  cut.seq = f->head;
  for (uint32_t round = 0; round < TC_OPS; round++) { /* bounded: each step folds >= 1 op while more */
    vs_compact_result res;
    memset(&res, 0, sizeof res);
    if (vs_compact_to(s, &cut, 1, TC_BUDGET, &res) != VS_OK) _exit(3);
    if (!res.more) break;
  }
  vs_store_close(s);
  _exit(0);
}

/* Old or new, never between: the invariants of a store after a kill. */
static uint64_t check_compacted(fx *f, vs_store *s) {
  uint8_t h[VS_HASH_BYTES];
  state_hash(s, h);
  assert_memory_equal(h, f->hash, VS_HASH_BYTES);
  MDB_txn *txn;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  vs_horizon hz;
  assert_err(vs_horizon_get(txn, s, f->a.id.pk, &hz), VS_OK);
  vs_head head;
  assert_err(vs_head_get(txn, s, f->a.id.pk, &head), VS_OK);
  assert_int_equal(head.seq, f->head);
  assert_true(hz.seq <= head.seq);
  if (hz.seq > 0) {
    assert_true(hz.has_sig);
    assert_memory_equal(hz.hash, f->hashes[hz.seq], VS_HASH_BYTES);
    assert_true(vs_chain_verify(f->a.id.pk, hz.seq, hz.hash, hz.sig));
  }
  for (uint64_t seq = hz.seq + 1; seq <= head.seq; seq++) { /* every op above it held */
    uint8_t held[VS_HASH_BYTES];
    vs_op_id id;
    vs_op_id_derive(f->a.id.pk, seq, &id);
    assert_err(vs_opid_get(txn, s, &id, NULL, held), VS_OK);
    assert_memory_equal(held, f->hashes[seq], VS_HASH_BYTES);
  }
  mdb_txn_abort(txn);
  /* A refold from the base gives the same state. */
  assert_err(vs_txn_begin(s, true, &txn), VS_OK);
  assert_err(vs_state_rebuild_txn(txn, s), VS_OK);
  assert_err(vs_state_hash_get_txn(txn, s, h), VS_OK);
  mdb_txn_abort(txn);
  assert_memory_equal(h, f->hash, VS_HASH_BYTES);
  return hz.seq;
}

static pid_t spawn(void (*fn)(const fx *), const fx *f) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) fn(f);
  return pid;
}

static void test_crash_during_compaction(void **state) {
  fx *f = *state;
  uint64_t rng = crash_env_u64("VS_TORTURE_SEED", TC_SEED_DEFAULT) | 1u;
  uint64_t kills = crash_env_u64("VS_TORTURE_KILLS", TC_KILLS_DEFAULT), killed = 0, finished = 0, partial = 0;
  printf("compaction torture: seed 0x%llx, %llu kills\n", (unsigned long long)rng, (unsigned long long)kills);
  char data[700];
  snprintf(data, sizeof data, "%s/data.mdb", f->dir);
  for (uint64_t round = 0; killed < kills && round < kills * 4; round++) {
    pid_t pid = spawn(compact_child, f);
    if (crash_kill_after(pid, crash_rand(&rng) % (TC_DELAY_US_MAX + 1))) finished++;
    else killed++;
    vs_store *s = open_dir(f->dir);
    uint64_t h = check_compacted(f, s);
    if (h > 0 && h < f->head) partial++;
    vs_store_close(s);
    if (h == f->head) crash_copy_file(f->pristine, data); /* all folded: start again */
  }
  printf("compaction torture: %llu kills (%llu left a partial horizon), %llu runs finished\n",
         (unsigned long long)killed, (unsigned long long)partial, (unsigned long long)finished);
  assert_true(killed >= kills);
  assert_true(partial > 0); /* the kills did land in the middle */
}

/* ---- install ---- */

static uint8_t *snap_bytes;
static size_t snap_len;
static uint8_t snap_hash[VS_HASH_BYTES];

typedef struct rd {
  size_t at;
} rd;

static vs_err snap_read(void *ctx, uint8_t *out, size_t len) {
  rd *r = ctx;
  if (len > snap_len - r->at) return VS_ERR_TRUNCATED;
  memcpy(out, snap_bytes + r->at, len);
  r->at += len;
  return VS_OK;
}

static vs_err snap_write(void *ctx, const uint8_t *b, size_t len) {
  (void)ctx;
  uint8_t *g = realloc(snap_bytes, snap_len + len);
  if (g == NULL) return VS_ERR_NOMEM;
  snap_bytes = g;
  memcpy(snap_bytes + snap_len, b, len);
  snap_len += len;
  return VS_OK;
}

static void install_child(const fx *f) {
  vs_store *s = NULL;
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_SYNC;
  cfg.map_bytes = 256ull << 20;
  cfg.create = true;
  if (vs_store_open(f->fresh, &cfg, &s) != VS_OK) _exit(2);
  rd r = {0};
  vs_err err = vs_snapshot_install(s, snap_read, &r, T0_MS + 100000000ull, NULL);
  vs_store_close(s);
  _exit(err == VS_OK ? 0 : 3);
}

static void test_crash_during_install(void **state) {
  fx *f = *state;
  f->a.store = open_dir(f->dir);
  assert_err(vs_store_set_identity(f->a.store, &f->a.id), VS_OK);
  vs_snapshot_info info;
  assert_err(vs_snapshot_make(f->a.store, snap_write, NULL, &info), VS_OK);
  memcpy(snap_hash, info.state_hash, VS_HASH_BYTES);
  uint64_t rng = crash_env_u64("VS_TORTURE_SEED", TC_SEED_DEFAULT) ^ 0x1234u;
  uint64_t kills = crash_env_u64("VS_TORTURE_KILLS", TC_KILLS_DEFAULT), killed = 0, whole = 0, untouched = 0;
  printf("install torture: %zu-byte snapshot, %llu kills\n", snap_len, (unsigned long long)kills);
  uint8_t zero[VS_HASH_BYTES] = {0};
  /* The install takes a few ms: the delay spans it and the store's open
   * (fitted as the kills go: crash_span_adapt). */
  uint64_t span = 30000u;
  for (uint64_t round = 0; killed < kills && round < kills * 4; round++) {
    vt_rmrf(f->fresh);
    assert_int_equal(mkdir(f->fresh, 0700), 0);
    pid_t pid = spawn(install_child, f);
    bool done = crash_kill_after(pid, crash_rand(&rng) % span);
    crash_span_adapt(&span, done);
    if (!done) killed++;
    vs_store *s = open_dir(f->fresh);
    uint8_t h[VS_HASH_BYTES];
    state_hash(s, h);
    uint64_t seq = 0;
    assert_err(vs_wal_head(s, f->a.id.pk, &seq, NULL, NULL), VS_OK);
    if (memcmp(h, zero, VS_HASH_BYTES) == 0) {
      assert_int_equal(seq, 0); /* untouched: nothing of it */
      rd r = {0};
      assert_err(vs_snapshot_install(s, snap_read, &r, T0_MS + 100000000ull, NULL), VS_OK); /* and it installs after the crash */
      state_hash(s, h);
      untouched++;
    } else {
      whole++;
    }
    assert_memory_equal(h, snap_hash, VS_HASH_BYTES);
    assert_err(vs_wal_head(s, f->a.id.pk, &seq, NULL, NULL), VS_OK);
    assert_int_equal(seq, f->head);
    vs_store_close(s);
  }
  printf("install torture: %llu kills: %llu left the store untouched, %llu whole\n", (unsigned long long)killed,
         (unsigned long long)untouched, (unsigned long long)whole);
  assert_true(killed >= kills);
  free(snap_bytes);
  snap_bytes = NULL;
  snap_len = 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_crash_during_compaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_during_install, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
