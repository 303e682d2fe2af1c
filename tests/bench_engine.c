/* bench_engine: what the sync engine costs next to writing, same disk, same run.
 *
 *   bench_engine [N]      (default 100000)
 *
 * Per durability mode (VS_DURABILITY_SYNC, then VS_DURABILITY_NOSYNC), each
 * figure a median of 3 runs on fresh stores (baseline and engine alternate
 * which goes first):
 *   a. write: vs_write_batch of N operations in batches of 1,000 -> ops/s;
 *   b. engine drain: in another fresh store, the same N operations written
 *      (timed apart), then an engine (1 worker, batches of up to 1,000)
 *      ticked in virtual time (now += 1 per tick) over a null transport that
 *      acknowledges at once, until the outbox counts show N DONE -> ops/s
 *      from written to DONE. Claims and completions are as durable as the
 *      store's mode: in sync mode every tick's step commits with fsync;
 *   c. pipeline: N / (write time + drain time) of run b, i.e. 1 / (1/w + 1/d):
 *      for information only (it is below the write rate by construction, so
 *      it gets no ratio against the 0.5 target);
 *   d. range completion, the mesh's way: in a fresh store whose default sink
 *      is claim-indexed, then in one whose default sink is ranges-only
 *      (vs_outbox_cfg.ranges_only, as a node opens it), the same N ops
 *      written (timed: the write rate into each layout), then completed by
 *      ranges of RANGE_OPS ops (vs_outbox_step_held, one transaction per
 *      range, as a peer's acknowledgement of each 1 MiB frame would) until
 *      N are DONE -> entries/s for each layout, and their ratio.
 * op = 16-byte target + 64-byte payload, kind "put", no idempotency key.
 * `ratio engine` = engine drain ops/s / write ops/s (sync): 0.5 means the
 * engine doubles the cost of writing.
 *
 * The null transport records each batch's op ids at send; its poll emits
 * DONE for all of them at once, and next_wake_ms is `now` while it holds
 * any. So each tick polls the previous batch's 1,000 acks and, in the same
 * transaction, applies them and claims the next 1,000: one commit per batch,
 * as the write side has one commit per batch.
 *
 * Temporary directories go under $TMPDIR, or the current directory when it
 * is unset (run it from a directory on the disk you want to measure).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "vixsync/vixsync.h"
#include "outbox_step.h" /* internal: vs_outbox_step_held */

#define BENCH_REPS 3
#define BENCH_BATCH 1000u
#define BENCH_TARGET_BYTES 16u
#define BENCH_PAYLOAD_BYTES 64u
#define BENCH_MAP_BYTES (4ull * 1024ull * 1024ull * 1024ull)
#define BENCH_OPS_MAX 10000000ull
#define BENCH_NAME "bench_engine"

#include "bench_util.h"
#include "bench_ops.h"

/* A fresh store in a fresh directory (`tag`-`mode`-XXXXXX) under the bench base. */
static vs_store *fresh_store(char *dir, size_t dir_bytes, const char *tag, vs_durability d) {
  char tag_mode[64];
  snprintf(tag_mode, sizeof tag_mode, "%s-%s", tag, mode_name(d));
  fresh_dir(dir, dir_bytes, tag_mode);
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = d;
  cfg.map_bytes = BENCH_MAP_BYTES;
  vs_store *store = NULL;
  CHECK_VS(vs_store_open(dir, &cfg, &store));
  return store;
}

/* Write ops [0, n) in batches of BENCH_BATCH; returns the seconds taken.
 * Building the requests is counted, as in bench_write (it is tiny). */
static double write_all(vs_store *store, uint64_t n) {
  double t0 = now_s();
  write_batches(store, bench_origin(), n, 0); /* 0: each batch at the wall clock */
  return now_s() - t0;
}

/* ---- the null transport: every op of a batch is DONE at once ---- */

typedef struct null_transport {
  vs_op_id *ids;
  uint32_t count, cap;
  uint64_t sends, ops;
} null_transport;

static vs_err null_send(void *ctx, const vs_send_batch *batch, uint64_t now_ms) {
  (void)now_ms;
  null_transport *t = ctx;
  if (t->count + batch->op_count > t->cap) {
    uint32_t cap = t->cap == 0 ? BENCH_BATCH : t->cap;
    while (cap < t->count + batch->op_count) cap *= 2;
    vs_op_id *ids = realloc(t->ids, sizeof *ids * cap);
    if (ids == NULL) return VS_ERR_NOMEM;
    t->ids = ids;
    t->cap = cap;
  }
  for (uint32_t i = 0; i < batch->op_count; i++) t->ids[t->count++] = batch->ops[i].op_id;
  t->sends++;
  t->ops += batch->op_count;
  return VS_OK;
}

static vs_err null_poll(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx) {
  (void)now_ms;
  null_transport *t = ctx;
  enum { CHUNK = 1024 };
  vs_result r[CHUNK];
  uint32_t i = 0;
  while (i < t->count) {
    uint32_t k = 0;
    for (; k < CHUNK && i < t->count; k++, i++)
      r[k] = (vs_result){.kind = VS_RESULT_DONE, .op_id = t->ids[i], .peer = 0, .retry_after_ms = 0,
                         .reason = NULL};
    vs_err err = emit(emit_ctx, r, k);
    if (err != VS_OK) {
      t->count = 0;
      return err;
    }
  }
  t->count = 0;
  return VS_OK;
}

static uint64_t null_next_wake(void *ctx, uint64_t now_ms) {
  const null_transport *t = ctx;
  return t->count > 0 ? now_ms : UINT64_MAX;
}

/* ---- one engine run ---- */

typedef struct engine_run {
  double write_s, drain_s;
  uint64_t ticks, batches;
} engine_run;

static engine_run engine_once(uint64_t n, vs_durability d) {
  char dir[4300];
  vs_store *store = fresh_store(dir, sizeof dir, "engine", d);
  engine_run out;
  out.write_s = write_all(store, n);

  vs_outbox *outbox = NULL;
  CHECK_VS(vs_outbox_open(store, NULL, &outbox));
  null_transport nt = {NULL, 0, 0, 0, 0};
  vs_transport tr = {&nt, null_send, null_poll, null_next_wake, false, NULL, false};
  vs_probe probe = vs_probe_always();
  vs_engine_cfg cfg;
  vs_engine_cfg_default(&cfg);
  cfg.workers = 1;
  cfg.batch_ops_max = BENCH_BATCH;
  vs_engine *engine = NULL;
  CHECK_VS(vs_engine_new(&cfg, outbox, &probe, &tr, &engine));

  /* Virtual time starts after the writes' wall clock (their entries are
   * ready at the time they were written) and moves 1 ms per tick. */
  uint64_t now = wall_ms() + 1;
  uint64_t ticks = 0, tick_cap = n + 1000;
  vs_outbox_counts c = {0, 0, 0, 0};
  double t0 = now_s();
  for (;;) {
    uint64_t wake = UINT64_MAX;
    CHECK_VS(vs_engine_tick(engine, now, &wake));
    ticks++;
    CHECK_VS(vs_outbox_counts_get(outbox, &c));
    if (c.done >= n) break;
    if (ticks > tick_cap) die("engine", "not drained after N+1000 ticks");
    now++;
  }
  out.drain_s = now_s() - t0;

  vs_engine_stats st;
  vs_engine_stats_get(engine, &st);
  if (c.done != n || c.pending != 0 || c.inflight != 0 || c.failed != 0 || st.results_done != n ||
      st.ops_sent != n || nt.ops != n)
    die("engine", "counts after the drain are not N DONE and nothing else");
  out.ticks = ticks;
  out.batches = st.batches_sent;
  vs_engine_free(engine);
  vs_outbox_close(outbox);
  vs_store_close(store);
  free(nt.ids);
  vt_rmrf(dir);
  return out;
}

static double write_once(uint64_t n, vs_durability d) {
  char dir[4300];
  vs_store *store = fresh_store(dir, sizeof dir, "write", d);
  double secs = write_all(store, n);
  vs_store_close(store);
  vt_rmrf(dir);
  return (double)n / secs;
}

/* ---- d. range completion ---- */

#define RANGE_OPS 4545u /* about one 1 MiB frame of 210-byte ops, as in bench_replicate */

typedef struct range_run {
  double write_s, complete_s;
} range_run;

static range_run range_once(uint64_t n, vs_durability d, bool ranges_only) {
  char dir[4300];
  vs_store *store = fresh_store(dir, sizeof dir, ranges_only ? "ranges" : "indexed", d);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.ranges_only = ranges_only;
  vs_outbox *outbox = NULL;
  CHECK_VS(vs_outbox_open(store, &ocfg, &outbox)); /* before the writes: they enqueue in its layout */
  range_run r;
  r.write_s = write_all(store, n);
  uint64_t now = wall_ms() + 1;
  double t0 = now_s();
  uint64_t done = 0;
  /* Bounded: each range covers RANGE_OPS more seqs, up to n. */
  for (uint64_t upto = 0; upto < n;) {
    upto = n - upto > RANGE_OPS ? upto + RANGE_OPS : n;
    vs_outbox_held h;
    memset(&h, 0, sizeof h);
    vs_op_id_derive(bench_origin(), upto, &h.through);
    h.max = VS_OUTBOX_CLAIM_MAX;
    CHECK_VS(vs_outbox_step_held(outbox, now++, &h, NULL, 0, NULL, NULL, NULL));
    done += h.completed;
  }
  r.complete_s = now_s() - t0;
  vs_outbox_counts c;
  CHECK_VS(vs_outbox_counts_get(outbox, &c));
  if (done != n || c.done != n || c.pending != 0 || c.inflight != 0)
    die("range completion", "the ranges did not complete exactly the N entries");
  vs_outbox_close(outbox);
  vs_store_close(store);
  vt_rmrf(dir);
  return r;
}

/* ---- driver ---- */

typedef struct mode_result {
  double write, drain, pipeline, engine_write;
  uint64_t ticks, batches;
  double range_indexed, range_ranges, write_indexed, write_ranges; /* d */
} mode_result;

static mode_result bench_mode(uint64_t n, vs_durability d) {
  double w[BENCH_REPS], dr[BENCH_REPS], pl[BENCH_REPS], ew[BENCH_REPS];
  double ri[BENCH_REPS], rr[BENCH_REPS], wi[BENCH_REPS], wr[BENCH_REPS];
  engine_run last = {0, 0, 0, 0};
  for (int rep = 0; rep < BENCH_REPS; rep++) {
    if (rep % 2 == 0) {
      w[rep] = write_once(n, d);
      last = engine_once(n, d);
    } else {
      last = engine_once(n, d);
      w[rep] = write_once(n, d);
    }
    dr[rep] = (double)n / last.drain_s;
    ew[rep] = (double)n / last.write_s;
    pl[rep] = (double)n / (last.write_s + last.drain_s);
    /* Each layout goes first every other repetition. */
    range_run a = range_once(n, d, rep % 2 != 0), b = range_once(n, d, rep % 2 == 0);
    range_run ind = rep % 2 == 0 ? a : b, rng = rep % 2 == 0 ? b : a;
    ri[rep] = (double)n / ind.complete_s;
    rr[rep] = (double)n / rng.complete_s;
    wi[rep] = (double)n / ind.write_s;
    wr[rep] = (double)n / rng.write_s;
    printf("  run %d %s: write %.0f, engine drain %.0f, engine-run write %.0f, pipeline %.0f ops/s; range "
           "completion %.0f (claim-indexed) / %.0f (ranges-only) entries/s, writes into them %.0f / %.0f ops/s\n",
           rep + 1, mode_name(d), w[rep], dr[rep], ew[rep], pl[rep], ri[rep], rr[rep], wi[rep], wr[rep]);
    fflush(stdout);
  }
  mode_result r = {median3(w),  median3(dr), median3(pl), median3(ew), last.ticks,
                   last.batches, median3(ri), median3(rr), median3(wi), median3(wr)};
  return r;
}

int main(int argc, char **argv) {
  if (argc > 2) die("usage", "bench_engine [N]");
  uint64_t n = argc > 1 ? parse_ops(argv[1], "N") : 100000u;
  bench_base_init("vixsync-bench-engine");
  describe_base();
  printf("op: %u-byte target + %u-byte payload, kind \"put\"; N = %" PRIu64 "; batches of %u; medians of %d runs\n",
         BENCH_TARGET_BYTES, BENCH_PAYLOAD_BYTES, n, BENCH_BATCH, BENCH_REPS);
  printf("engine: 1 worker, batch_ops_max %u, null transport (DONE at once), virtual clock +1 ms per tick\n",
         BENCH_BATCH);
  fflush(stdout);

  mode_result s = bench_mode(n, VS_DURABILITY_SYNC);
  printf("sync write batch %u: %.0f ops/s\n", BENCH_BATCH, s.write);
  printf("sync engine drain: %.0f ops/s\n", s.drain);
  printf("sync pipeline write+drain: %.0f ops/s\n", s.pipeline);
  printf("sync engine ticks: %" PRIu64 " ticks\n", s.ticks);
  printf("sync engine batches: %" PRIu64 " batches\n", s.batches);
  fflush(stdout);
  mode_result ns = bench_mode(n, VS_DURABILITY_NOSYNC);
  printf("nosync write batch %u: %.0f ops/s\n", BENCH_BATCH, ns.write);
  printf("nosync engine drain: %.0f ops/s\n", ns.drain);
  printf("nosync pipeline write+drain: %.0f ops/s\n", ns.pipeline);
  printf("nosync engine ticks: %" PRIu64 " ticks\n", ns.ticks);
  printf("nosync engine batches: %" PRIu64 " batches\n", ns.batches);
  const mode_result *m[2] = {&s, &ns};
  for (int i = 0; i < 2; i++) {
    const char *name = mode_name(i == 0 ? VS_DURABILITY_SYNC : VS_DURABILITY_NOSYNC);
    printf("%s range completion, claim-indexed sink: %.0f entries/s\n", name, m[i]->range_indexed);
    printf("%s range completion, ranges-only sink: %.0f entries/s\n", name, m[i]->range_ranges);
    printf("%s write batch %u, claim-indexed sink: %.0f ops/s\n", name, BENCH_BATCH, m[i]->write_indexed);
    printf("%s write batch %u, ranges-only sink: %.0f ops/s\n", name, BENCH_BATCH, m[i]->write_ranges);
  }
  printf("ratio engine: %.3f\n", s.drain / s.write);
  printf("ratio engine nosync: %.3f\n", ns.drain / ns.write);
  printf("ratio range completion ranges-only vs claim-indexed: %.3f\n", s.range_ranges / s.range_indexed);
  printf("ratio range completion ranges-only vs claim-indexed nosync: %.3f\n", ns.range_ranges / ns.range_indexed);
  printf("ratio write ranges-only vs claim-indexed nosync: %.3f\n", ns.write_ranges / ns.write_indexed);
  vt_rmrf(bench_base);
  return 0;
}
