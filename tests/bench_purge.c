/* bench_purge: what purging delivered outbox entries costs, and the
 * resumable purge against the one it replaced, same run, same disk.
 *
 *   bench_purge [prefix] [done]      (defaults 100000 and 20000)
 *
 * a. Cost per entry: a sink of `done` DONE entries, purged by calls of
 *    4,096 (vs_outbox_purge_done), nosync: microseconds per entry, new and
 *    old.
 * b. Repeated calls, as the daemon makes them: a sink whose first `prefix`
 *    entries are PENDING (a stuck endpoint, never delivered), then rounds
 *    of 100 new writes delivered (DONE) and one purge call of up to 4,096,
 *    until `done` entries were delivered and every DONE one is gone. The
 *    old purge (a copy of it below, as at c56408b) walked from LSN 0 at each
 *    call, so each call paid for the whole prefix; the new one resumes from
 *    its mark. Only the purge calls are timed. Printed: calls, entries
 *    looked at, seconds, and `ratio repeated purge old vs new`.
 * c. How long one step holds the write lock, as the daemon makes them: a
 *    step of 4,096 DONE entries on a sync store (the daemon's durability),
 *    commit and fsync included: milliseconds.
 * Each figure is the median of 3 runs, each on fresh stores.
 *
 * Temporary directories go under $TMPDIR, or the current directory when it
 * is unset.
 */
#define _XOPEN_SOURCE 700

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox_int.h" /* internal: the old purge below works on the layout */
#include "testutil.h"
#include "vixsync/vixsync.h"

#define BENCH_NAME "bench_purge"
#define BENCH_REPS 3
#define BENCH_OPS_MAX 10000000u
#define BENCH_BATCH 1000u
#define BENCH_TARGET_BYTES 16u
#define BENCH_PAYLOAD_BYTES 64u
#include "bench_util.h"
#include "bench_ops.h"

#define STEP_MAX 4096u   /* entries per call */
#define ROUND_OPS 100u   /* b: writes delivered between two calls */
#define MAP_BYTES (4ull << 30)

/* ---- the purge as it was (c56408b): a walk from LSN 0 at every call ---- */

#define OLD_PASS 1024u
static vs_err old_purge_done(vs_outbox *outbox, uint64_t max_entries, uint64_t *count_out, uint64_t *visited_out) {
  vs_obx_txn t;
  vs_err err = vs_obx_begin(outbox, &t);
  if (err != VS_OK) return err;
  uint64_t purged = 0, from = 0, lsns[OLD_PASS], done_at_start = t.counts.done;
  bool more = true;
  while (err == VS_OK && more && purged < max_entries && purged < done_at_start) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t.txn, outbox->store->dbi_outbox, &cur);
    if (rc != MDB_SUCCESS) {
      err = vs_mdb_err(rc);
      break;
    }
    uint8_t key[ENTRY_KEY_BYTES];
    vs_obx_entry_key(key, outbox->sink, from);
    MDB_val k = {sizeof key, key}, v;
    uint64_t want = max_entries - purged < OLD_PASS ? max_entries - purged : OLD_PASS;
    uint32_t listed = 0;
    more = false;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (k.mv_size != ENTRY_KEY_BYTES || vs_get_u32be(k.mv_data) != outbox->sink) break;
      const uint8_t *e = v.mv_data;
      uint64_t lsn = vs_get_u64be((const uint8_t *)k.mv_data + 4);
      (*visited_out)++;
      if (e[1] == VS_OUTBOX_DONE) {
        if (listed == want) {
          more = true;
          break;
        }
        lsns[listed++] = lsn;
      }
      from = lsn + 1;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
    for (uint32_t i = 0; i < listed && err == VS_OK; i++) {
      uint8_t ikey[13];
      vs_put_u32be(ikey, outbox->sink);
      ikey[4] = VS_OUTBOX_DONE;
      vs_put_u64be(ikey + 5, lsns[i]);
      MDB_val ik = {sizeof ikey, ikey}, ek = {sizeof key, key};
      vs_obx_entry_key(key, outbox->sink, lsns[i]);
      rc = mdb_del(t.txn, outbox->store->dbi_obx_state, &ik, NULL);
      if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) rc = mdb_del(t.txn, outbox->store->dbi_outbox, &ek, NULL);
      err = vs_mdb_err(rc);
      if (err == VS_OK) {
        t.dirty = true;
        t.counts.done--;
        t.removed++;
        purged++;
      }
    }
    if (listed > 0 && err == VS_OK) from = lsns[listed - 1] + 1;
  }
  err = vs_obx_finish(outbox, &t, err);
  if (count_out != NULL) *count_out = err == VS_OK ? purged : 0;
  return err;
}

/* ---- stores ---- */

typedef struct bench_store {
  char dir[4096];
  vs_store *store;
  vs_outbox *ob;
} bench_store;

/* A claimed sink ("default") with `prefix` PENDING entries, then `done`
 * DONE ones (completed by results, 1,000 per step). */
static void make_store_d(bench_store *b, uint64_t prefix, uint64_t done, vs_durability d) {
  fresh_dir(b->dir, sizeof b->dir, "purge");
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = d;
  cfg.map_bytes = MAP_BYTES;
  CHECK_VS(vs_store_open(b->dir, &cfg, &b->store));
  CHECK_VS(vs_outbox_open(b->store, NULL, &b->ob));
  write_batches(b->store, bench_origin(), prefix + done, 0);
  static vs_outbox_result results[BENCH_BATCH];
  for (uint64_t seq = prefix + 1; seq <= prefix + done;) {
    uint32_t n = 0;
    for (; n < BENCH_BATCH && seq <= prefix + done; n++, seq++) {
      memset(&results[n], 0, sizeof results[n]);
      vs_op_id_derive(bench_origin(), seq, &results[n].op_id);
      results[n].kind = VS_RESULT_DONE;
      results[n].lsn = seq; /* one origin wrote them all: lsn = seq */
    }
    CHECK_VS(vs_outbox_step(b->ob, wall_ms(), results, n, NULL, NULL, NULL));
  }
  vs_outbox_counts c;
  CHECK_VS(vs_outbox_counts_get(b->ob, &c));
  if (c.pending != prefix || c.done != done) die("make_store", "counts are not what was written");
}

static void make_store(bench_store *b, uint64_t prefix, uint64_t done) {
  make_store_d(b, prefix, done, VS_DURABILITY_NOSYNC);
}

static void close_store(bench_store *b) {
  vs_outbox_close(b->ob);
  vs_store_close(b->store);
  vt_rmrf(b->dir);
}

/* Purge every DONE entry by calls of `per_call`: old or new. Seconds; the
 * entries looked at and the calls made in *visited / *calls. */
static double purge_all(bench_store *b, bool old, uint64_t per_call, uint64_t done, uint64_t *visited,
                        uint64_t *calls) {
  uint64_t total = 0;
  *visited = 0;
  *calls = 0;
  double t0 = now_s();
  for (uint64_t guard = 0; total < done && guard < 10000000u; guard++) {
    uint64_t n = 0;
    if (old) {
      CHECK_VS(old_purge_done(b->ob, per_call, &n, visited));
    } else {
      vs_outbox_purge_stats st;
      CHECK_VS(vs_outbox_purge_sink(b->store, 0, per_call, 0, &st));
      n = st.purged;
      *visited += st.visited;
    }
    total += n;
    (*calls)++;
  }
  double s = now_s() - t0;
  if (total != done) die("purge_all", "not every DONE entry went");
  vs_outbox_counts c;
  CHECK_VS(vs_outbox_counts_get(b->ob, &c));
  if (c.done != 0) die("purge_all", "DONE entries left");
  return s;
}

/* b: after `prefix` PENDING entries, rounds of ROUND_OPS writes delivered
 * then one purge call, until `done` were delivered; then calls until no
 * DONE entry is left. Seconds spent in purge calls. */
static double purge_rounds(bench_store *b, bool old, uint64_t prefix, uint64_t done, uint64_t *visited,
                           uint64_t *calls) {
  static vs_outbox_result results[ROUND_OPS];
  double spent = 0;
  uint64_t total = 0, seq = prefix;
  *visited = 0;
  *calls = 0;
  for (uint64_t guard = 0; total < done && guard < 10000000u; guard++) {
    if (seq < prefix + done) {
      uint32_t n = (uint32_t)(prefix + done - seq < ROUND_OPS ? prefix + done - seq : ROUND_OPS);
      write_batches(b->store, bench_origin(), n, 0);
      for (uint32_t j = 0; j < n; j++) {
        memset(&results[j], 0, sizeof results[j]);
        vs_op_id_derive(bench_origin(), ++seq, &results[j].op_id);
        results[j].kind = VS_RESULT_DONE;
        results[j].lsn = seq; /* one origin wrote them all: lsn = seq */
      }
      CHECK_VS(vs_outbox_step(b->ob, wall_ms(), results, n, NULL, NULL, NULL));
    }
    uint64_t purged = 0;
    double t0 = now_s();
    if (old) {
      CHECK_VS(old_purge_done(b->ob, STEP_MAX, &purged, visited));
    } else {
      vs_outbox_purge_stats st;
      CHECK_VS(vs_outbox_purge_sink(b->store, 0, STEP_MAX, 0, &st));
      purged = st.purged;
      *visited += st.visited;
    }
    spent += now_s() - t0;
    total += purged;
    (*calls)++;
  }
  if (total != done) die("purge_rounds", "not every DONE entry went");
  return spent;
}

int main(int argc, char **argv) {
  uint64_t prefix = argc > 1 ? parse_ops(argv[1], "prefix") : 100000u;
  uint64_t done = argc > 2 ? parse_ops(argv[2], "done") : 20000u;
  bench_base_init("bench_purge");
  describe_base();
  printf("%" PRIu64 " DONE entries; a PENDING prefix of %" PRIu64 " in b; nosync; medians of %d\n", done, prefix,
         BENCH_REPS);
  double a_new[BENCH_REPS], a_old[BENCH_REPS], b_new[BENCH_REPS], b_old[BENCH_REPS];
  uint64_t v_new = 0, v_old = 0, c_new = 0, c_old = 0, v, c;
  for (int r = 0; r < BENCH_REPS; r++) {
    bench_store s;
    bool old_first = (r & 1) != 0; /* alternate which goes first */
    for (int k = 0; k < 2; k++) {
      bool old = (k == 0) == old_first;
      make_store(&s, 0, done); /* a: DONE entries only */
      (old ? a_old : a_new)[r] = purge_all(&s, old, STEP_MAX, done, &v, &c);
      close_store(&s);
      make_store(&s, prefix, 0); /* b: deliveries behind a PENDING prefix */
      (old ? b_old : b_new)[r] = purge_rounds(&s, old, prefix, done, old ? &v_old : &v_new, old ? &c_old : &c_new);
      close_store(&s);
    }
  }
  double c_step[BENCH_REPS];
  for (int r = 0; r < BENCH_REPS; r++) {
    bench_store s;
    make_store_d(&s, 0, STEP_MAX, VS_DURABILITY_SYNC);
    double t0 = now_s();
    vs_outbox_purge_stats st;
    CHECK_VS(vs_outbox_purge_sink(s.store, 0, STEP_MAX, 0, &st));
    c_step[r] = now_s() - t0;
    if (st.purged != STEP_MAX) die("step", "not a full step");
    close_store(&s);
  }
  double an = median3(a_new), ao = median3(a_old), bn = median3(b_new), bo = median3(b_old);
  printf("a. purge cost per DONE entry (calls of %u): new %.3f us, old %.3f us\n", STEP_MAX, an * 1e6 / (double)done,
         ao * 1e6 / (double)done);
  printf("b. %u writes delivered then one purge call (of up to %u), until %" PRIu64 " are gone, behind %" PRIu64
         " PENDING:\n",
         ROUND_OPS, STEP_MAX, done, prefix);
  printf("   new: %" PRIu64 " calls, %" PRIu64 " entries looked at, %.4f s in purge (%.1f us a call)\n", c_new, v_new,
         bn, bn * 1e6 / (double)c_new);
  printf("   old: %" PRIu64 " calls, %" PRIu64 " entries looked at, %.4f s in purge (%.1f us a call)\n", c_old, v_old,
         bo, bo * 1e6 / (double)c_old);
  printf("c. one step of %u DONE entries, sync store (the write lock held): %.2f ms\n", STEP_MAX,
         median3(c_step) * 1e3);
  printf("ratio purge per entry new vs old: %.3f\n", ao / an);
  printf("ratio repeated purge old vs new: %.1f\n", bo / bn);
  vt_rmrf(bench_base);
  return 0;
}
