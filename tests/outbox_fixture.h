/* tests/outbox_fixture.h: the store fixture, writers and entry helpers of
 * the outbox tests (test_outbox.c, test_outbox_held.c). Include it after
 * defining _XOPEN_SOURCE 700 (mkdtemp, nftw). */
#ifndef VIXSYNC_OUTBOX_FIXTURE_H
#define VIXSYNC_OUTBOX_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "internal.h"
#include "outbox_step.h" /* internal: the step API */
#include "fixture.h"
#include "testutil.h"
#include "vixsync/outbox.h"
#include "vixsync/retry.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "vixsync/write.h"

#define MIB (1024ull * 1024ull)
#define MAP_BYTES (16ull * MIB)
#define T0_MS 1700000000000ull
#define LEASE_MS 1000u
#define OPS_MAX 64u

/* Jitter-free, so delays are exact: 100, 200, 400, 800, 1000, 1000, ... */
static const vs_retry_policy SMALL_POLICY = {100u, 2000u, 1000u, 8u, 0u};

typedef struct fixture {
  char dir[512];
  vs_store *store;
  vs_outbox *ob;   /* sink "default" */
  vs_outbox *ob2;  /* a second sink, when a test needs one */
  vs_op_id ids[OPS_MAX]; /* every op written, in LSN order */
  uint32_t n;
} fixture;

static inline int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL || vt_store_setup(f->dir, sizeof f->dir, "outbox", MAP_BYTES, &f->store) != 0) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static inline int teardown(void **state) {
  fixture *f = *state;
  vs_outbox_close(f->ob);
  vs_outbox_close(f->ob2);
  vt_store_teardown(f->dir, f->store);
  free(f);
  return 0;
}

static inline vs_outbox *open_sink(fixture *f, const char *sink, const vs_retry_policy *policy) {
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  cfg.sink = sink;
  if (policy != NULL) cfg.retry = *policy;
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_OK);
  assert_non_null(ob);
  return ob;
}

/* Write n ops of origin vt_origin(salt) at now_ms; they are enqueued for
 * every registered sink. */
static inline void write_ops_as(fixture *f, uint8_t salt, uint32_t n, uint64_t now_ms) {
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, salt);
  assert_true(f->n + n <= OPS_MAX);
  for (uint32_t i = 0; i < n; i++) {
    char payload[32];
    int len = snprintf(payload, sizeof payload, "op-%u", f->n + 1);
    vs_write_req req = {.kind = "put", .target = (const uint8_t *)"k", .target_bytes = 1,
                        .payload = (const uint8_t *)payload, .payload_bytes = (uint32_t)len};
    vs_write_result r;
    assert_err(vs_write(f->store, origin, &req, now_ms, &r), VS_OK);
    assert_int_equal(r.lsn, f->n + 1);
    f->ids[f->n++] = r.op_id;
  }
}

/* Write n ops (up to 4,096) of origin 1 at now_ms in one vs_write_batch;
 * f->ids is not filled (held_id derives them). */
static inline void write_batch_of_1(fixture *f, uint32_t n, uint64_t now_ms) {
  static vs_write_req reqs[4096];
  assert_true(n <= 4096);
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 1);
  for (uint32_t i = 0; i < n; i++) {
    vs_write_req r = {.kind = "put", .target = (const uint8_t *)"k", .target_bytes = 1,
                      .payload = (const uint8_t *)"v", .payload_bytes = 1};
    reqs[i] = r;
  }
  assert_err(vs_write_batch(f->store, origin, reqs, n, now_ms, NULL), VS_OK);
}

/* Write n ops of origin 1 at now_ms. */
static void write_ops(fixture *f, uint32_t n, uint64_t now_ms) { write_ops_as(f, 1, n, now_ms); }

static inline vs_outbox_entry get(vs_outbox *ob, const vs_op_id *id) {
  vs_outbox_entry e;
  memset(&e, 0, sizeof e);
  assert_err(vs_outbox_get(ob, id, &e), VS_OK);
  assert_true(vs_op_id_equal(&e.op_id, id));
  return e;
}

static inline vs_outbox_counts counts(vs_outbox *ob) {
  vs_outbox_counts c;
  memset(&c, 0xff, sizeof c);
  assert_err(vs_outbox_counts_get(ob, &c), VS_OK);
  return c;
}

/* The O(1) counts equal a recount of every op's entry through vs_outbox_get. */
static inline void check_counts(fixture *f, vs_outbox *ob) {
  vs_outbox_counts want = {0, 0, 0, 0};
  for (uint32_t i = 0; i < f->n; i++) {
    vs_outbox_entry e;
    vs_err err = vs_outbox_get(ob, &f->ids[i], &e);
    if (err == VS_ERR_NOTFOUND) continue;
    assert_err(err, VS_OK);
    switch (e.state) {
      case VS_OUTBOX_PENDING: want.pending++; break;
      case VS_OUTBOX_INFLIGHT: want.inflight++; break;
      case VS_OUTBOX_DONE: want.done++; break;
      case VS_OUTBOX_FAILED: want.failed++; break;
      default: fail_msg("bad state %d", (int)e.state);
    }
  }
  vs_outbox_counts got = counts(ob);
  assert_int_equal(got.pending, want.pending);
  assert_int_equal(got.inflight, want.inflight);
  assert_int_equal(got.done, want.done);
  assert_int_equal(got.failed, want.failed);
}

static inline void assert_counts(vs_outbox *ob, uint64_t pending, uint64_t inflight, uint64_t done,
                                 uint64_t failed) {
  vs_outbox_counts c = counts(ob);
  assert_int_equal(c.pending, pending);
  assert_int_equal(c.inflight, inflight);
  assert_int_equal(c.done, done);
  assert_int_equal(c.failed, failed);
}

static inline void assert_entry_equal(const vs_outbox_entry *a, const vs_outbox_entry *b) {
  assert_true(vs_op_id_equal(&a->op_id, &b->op_id));
  assert_int_equal(a->lsn, b->lsn);
  assert_int_equal(a->state, b->state);
  assert_int_equal(a->attempts, b->attempts);
  assert_int_equal(a->next_attempt_at_ms, b->next_attempt_at_ms);
  assert_int_equal(a->lease_until_ms, b->lease_until_ms);
  assert_int_equal(a->created_at_ms, b->created_at_ms);
  assert_int_equal(a->updated_at_ms, b->updated_at_ms);
  assert_int_equal(a->op_bytes, b->op_bytes);
  assert_string_equal(a->reason, b->reason);
}

static inline vs_outbox_entry claim(vs_outbox *ob, const vs_op_id *id, uint64_t now_ms) {
  vs_outbox_entry e;
  memset(&e, 0, sizeof e);
  assert_err(vs_outbox_claim(ob, id, now_ms, LEASE_MS, &e), VS_OK);
  assert_int_equal(e.state, VS_OUTBOX_INFLIGHT);
  assert_int_equal(e.lease_until_ms, now_ms + LEASE_MS);
  return e;
}

static inline vs_outbox_entry fail_retry(vs_outbox *ob, const vs_op_id *id, uint64_t now_ms) {
  vs_outbox_entry e;
  memset(&e, 0, sizeof e);
  assert_err(vs_outbox_fail(ob, id, now_ms, true, "timeout", 0, &e), VS_OK);
  return e;
}

static inline uint32_t claim_ready(vs_outbox *ob, uint64_t now_ms, uint32_t max,
                                   vs_outbox_entry *out) {
  uint32_t count = UINT32_MAX;
  assert_err(vs_outbox_claim_ready(ob, now_ms, LEASE_MS, max, out, &count), VS_OK);
  assert_true(count <= max);
  for (uint32_t i = 0; i < count; i++) {
    assert_int_equal(out[i].state, VS_OUTBOX_INFLIGHT);
    assert_int_equal(out[i].lease_until_ms, now_ms + LEASE_MS);
  }
  return count;
}

static inline uint64_t next_due(vs_outbox *ob) {
  uint64_t due = 0;
  assert_err(vs_outbox_next_due(ob, &due), VS_OK);
  return due;
}

/* The id of the store's last committed write transaction. */
static inline size_t last_txnid(const fixture *f) {
  MDB_envinfo info;
  assert_int_equal(mdb_env_info(f->store->env, &info), MDB_SUCCESS);
  return info.me_last_txnid;
}

/* ---- step_held: deliveries known as a range --------------------------------------------------- */

/* The id of op `seq` of origin vt_origin(salt): what a held range names. */
static inline vs_op_id held_id(uint8_t salt, uint64_t seq) {
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, salt);
  vs_op_id id;
  vs_op_id_derive(origin, seq, &id);
  return id;
}

/* vs_outbox_step_held with a range only (no results, no claims): how many
 * entries it completed. */
static inline uint32_t step_held(vs_outbox *ob, uint64_t now_ms, uint8_t salt, uint64_t seq, uint32_t max) {
  vs_outbox_held h = {held_id(salt, seq), max, UINT32_MAX, true};
  assert_err(vs_outbox_step_held(ob, now_ms, &h, NULL, 0, NULL, NULL, NULL), VS_OK);
  assert_true(h.completed <= max);
  return h.completed;
}

/* An entry the held range completed: DONE without spending an attempt. */
static inline void assert_done_held(vs_outbox *ob, const vs_op_id *id, uint32_t attempts, uint64_t now_ms) {
  vs_outbox_entry e = get(ob, id);
  assert_int_equal(e.state, VS_OUTBOX_DONE);
  assert_int_equal(e.attempts, attempts);
  assert_int_equal(e.lease_until_ms, 0);
  assert_int_equal(e.updated_at_ms, now_ms);
}

static inline void assert_pending(vs_outbox *ob, const vs_op_id *id, uint32_t attempts) {
  vs_outbox_entry e = get(ob, id);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.attempts, attempts);
}

/* What the range completed is committed: a reopened store has it. */
/* ---- ranges-only sinks (the mesh) ---------------------------------------------------------- */

static inline vs_outbox *open_ranges(fixture *f, bool ranges_only) {
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  cfg.ranges_only = ranges_only;
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(f->store, &cfg, &ob), VS_OK);
  return ob;
}

/* vs_outbox_step_held with a range only, returning the whole held struct. */
static inline vs_outbox_held held_step(vs_outbox *ob, uint64_t now_ms, uint8_t salt, uint64_t seq, uint32_t max) {
  vs_outbox_held h = {held_id(salt, seq), max, UINT32_MAX, true};
  assert_err(vs_outbox_step_held(ob, now_ms, &h, NULL, 0, NULL, NULL, NULL), VS_OK);
  assert_true(h.completed <= max);
  return h;
}

/* ---- backfill: a sink opened after the writes ------------------------------------------ */

/* A sink as vix-node push opens one: vs_outbox_open (registering the sink if
 * new), then vs_outbox_backfill for this origin's writes made before it
 * existed; on an error nothing stays open. */
static inline vs_err open_backfilled(vs_store *store, const vs_outbox_cfg *cfg, const uint8_t origin[VS_ORIGIN_BYTES],
                                     uint64_t now_ms, vs_outbox **ob_out, uint64_t *enqueued_out) {
  vs_err err = vs_outbox_open(store, cfg, ob_out);
  if (err != VS_OK) return err;
  err = vs_outbox_backfill(*ob_out, origin, now_ms, enqueued_out);
  if (err != VS_OK) {
    vs_outbox_close(*ob_out);
    *ob_out = NULL;
  }
  return err;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif /* VIXSYNC_OUTBOX_FIXTURE_H */
