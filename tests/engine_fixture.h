/* tests/engine_fixture.h: the fixture and helpers of the engine tests
 * (test_engine.c, test_engine_volume.c): a store, an outbox, an engine over
 * the scripted transport of mem_transport.h, in virtual time from T0_MS.
 * Include it after defining _XOPEN_SOURCE 700 (fork, pipe, mkdtemp, nftw). */
#ifndef VIXSYNC_ENGINE_FIXTURE_H
#define VIXSYNC_ENGINE_FIXTURE_H


#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
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

#include <sodium.h>

#include "fixture.h"
#include "testutil.h"
#include "vixsync/engine.h"
#include "vixsync/testing/mem_transport.h"
#include "vixsync/op.h"
#include "vixsync/outbox.h"
#include "vixsync/probe.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "vixsync/write.h"

#define MIB (1024ull * 1024ull)
#define T0_MS 1700000000000ull /* the virtual epoch: never read from a clock */
#define NEVER UINT64_MAX
/* A child that waits longer than this on its parent is stuck: SIGALRM ends it. */
#define CHILD_TIMEOUT_S 120u
#define RECEIVER_REJECT_REASON "rejected by the receiver (scripted)"

/* Jitter-free, so delays are exact: 100, 200, 400, 800, 1000, 1000, ... */
static const vs_retry_policy SMALL_POLICY = {100u, 2000u, 1000u, 8u, 0u};

typedef struct fixture {
  char dir[512];
  vs_store *store;
  vs_outbox *ob;
  vs_engine *e;
  vs_mem_transport *mt;
  uint8_t origin[VS_ORIGIN_BYTES];
  vs_op_id *ids; /* every op written, ids[seq - 1] */
  uint32_t n, cap;
  /* a forked helper, reaped by teardown if a test failed before it did */
  pid_t child;
  int to_child, from_child;
} fixture;

/* ---- fixture ------------------------------------------------------------- */

/* Only the directory: tests that fork open the store after the fork. */
static inline int setup_dir(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  vt_tmpdir(f->dir, sizeof f->dir, "engine");
  vt_origin(f->origin, 7);
  f->child = -1;
  f->to_child = -1;
  f->from_child = -1;
  *state = f;
  return 0;
}

static inline void open_all(fixture *f, vs_durability durability) {
  vs_store_cfg cfg = vt_store_cfg(0); /* the 1 GiB default map */
  cfg.durability = durability;
  assert_err(vs_store_open(f->dir, &cfg, &f->store), VS_OK);
  assert_err(vs_outbox_open(f->store, NULL, &f->ob), VS_OK);
}

static inline int setup(void **state) {
  if (setup_dir(state) != 0) return -1;
  fixture *f = *state;
  if (vt_store_open(f->dir, 0, &f->store) != VS_OK || vs_outbox_open(f->store, NULL, &f->ob) != VS_OK) {
    vt_store_teardown(f->dir, f->store);
    free(f);
    return -1;
  }
  return 0;
}

static inline int teardown(void **state) {
  fixture *f = *state;
  vs_engine_free(f->e);
  vs_outbox_close(f->ob);
  vs_store_close(f->store);
  vs_mem_transport_free(f->mt);
  if (f->to_child >= 0) close(f->to_child);
  if (f->from_child >= 0) close(f->from_child);
  if (f->child > 0) {
    kill(f->child, SIGKILL);
    (void)waitpid(f->child, NULL, 0);
  }
  vt_rmrf(f->dir);
  free(f->ids);
  free(f);
  return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* The payload of operation `seq` (1-based): checked again at every send. */
static inline int payload_of(uint64_t seq, char *buf, size_t buf_bytes) {
  return snprintf(buf, buf_bytes, "payload-%llu", (unsigned long long)seq);
}
static inline int target_of(uint64_t seq, char *buf, size_t buf_bytes) {
  return snprintf(buf, buf_bytes, "t%llu", (unsigned long long)(seq % 97u));
}

static inline void remember(fixture *f, const vs_op_id *id, uint64_t seq) {
  assert_int_equal(seq, f->n + 1);
  if (f->n == f->cap) {
    uint32_t cap = f->cap == 0 ? 64 : f->cap * 2;
    vs_op_id *grown = realloc(f->ids, sizeof *grown * cap);
    assert_non_null(grown);
    f->ids = grown;
    f->cap = cap;
  }
  f->ids[f->n++] = *id;
}

/* Write `count` ops at now_ms in one group commit; returns the first index. */
static inline uint32_t write_ops(fixture *f, uint32_t count, uint64_t now_ms) {
  enum { CHUNK = 1000 };
  static char payloads[CHUNK][32], targets[CHUNK][16];
  static vs_write_req reqs[CHUNK];
  static vs_write_result results[CHUNK];
  uint32_t first = f->n;
  for (uint32_t done = 0; done < count;) {
    uint32_t k = count - done < CHUNK ? count - done : CHUNK;
    for (uint32_t i = 0; i < k; i++) {
      uint64_t seq = (uint64_t)f->n + i + 1;
      int pl = payload_of(seq, payloads[i], sizeof payloads[i]);
      int tl = target_of(seq, targets[i], sizeof targets[i]);
      vs_write_req r = {.kind = "put", .target = (const uint8_t *)targets[i], .target_bytes = (uint32_t)tl,
                        .payload = (const uint8_t *)payloads[i], .payload_bytes = (uint32_t)pl};
      reqs[i] = r;
    }
    assert_err(vs_write_batch(f->store, f->origin, reqs, k, now_ms, results), VS_OK);
    for (uint32_t i = 0; i < k; i++) remember(f, &results[i].op_id, results[i].seq);
    done += k;
  }
  return first;
}

static inline vs_outbox_entry entry_of(fixture *f, uint32_t index) {
  vs_outbox_entry e;
  memset(&e, 0, sizeof e);
  assert_true(index < f->n);
  assert_err(vs_outbox_get(f->ob, &f->ids[index], &e), VS_OK);
  return e;
}

static inline vs_outbox_counts counts_of(fixture *f) {
  vs_outbox_counts c;
  memset(&c, 0xff, sizeof c);
  assert_err(vs_outbox_counts_get(f->ob, &c), VS_OK);
  return c;
}

static inline vs_engine_stats stats_of(fixture *f) {
  vs_engine_stats s;
  memset(&s, 0xff, sizeof s);
  vs_engine_stats_get(f->e, &s);
  return s;
}

static inline vs_mem_stats mem_stats_of(fixture *f) {
  vs_mem_stats s;
  memset(&s, 0xff, sizeof s);
  vs_mem_transport_stats(f->mt, &s);
  return s;
}

static inline vs_mem_script quiet_script(uint64_t latency_ms, uint64_t seed) {
  vs_mem_script s;
  memset(&s, 0, sizeof s);
  s.latency_ms = latency_ms;
  s.seed = seed;
  return s;
}

static inline vs_engine_cfg small_cfg(uint32_t workers, uint32_t batch_ops_max, uint64_t lease_ms) {
  vs_engine_cfg cfg;
  vs_engine_cfg_default(&cfg);
  cfg.workers = workers;
  cfg.batch_ops_max = batch_ops_max;
  cfg.lease_ms = lease_ms;
  cfg.retry = SMALL_POLICY;
  return cfg;
}

/* A mem transport with `script` and an engine over it, in the fixture. */
static inline void make_engine(fixture *f, const vs_engine_cfg *cfg, const vs_probe *probe, const vs_mem_script *script) {
  if (f->mt == NULL) assert_err(vs_mem_transport_new(script, &f->mt), VS_OK);
  vs_transport tr = vs_mem_transport_iface(f->mt);
  vs_probe always = vs_probe_always();
  assert_err(vs_engine_new(cfg, f->ob, probe != NULL ? probe : &always, &tr, &f->e), VS_OK);
  assert_non_null(f->e);
}

static inline uint64_t tick(fixture *f, uint64_t now_ms) {
  uint64_t wake = 0;
  assert_err(vs_engine_tick(f->e, now_ms, &wake), VS_OK);
  /* A wake at or before now would make a driver spin without progress. */
  if (wake != NEVER && wake <= now_ms)
    fail_msg("tick(%llu) asked to wake at %llu", (unsigned long long)(now_ms - T0_MS),
             (unsigned long long)(wake - T0_MS));
  return wake;
}

/* The driver loop: tick(now) -> wake; now = wake, until nothing is
 * scheduled. Fails past `ticks_max` ticks or past `until_ms`. */
static inline uint64_t drive(fixture *f, uint64_t *now_ms, uint64_t ticks_max, uint64_t until_ms) {
  for (uint64_t n = 1; n <= ticks_max; n++) {
    uint64_t wake = tick(f, *now_ms);
    if (wake == NEVER) return n;
    if (wake > until_ms)
      fail_msg("still busy at %llu ms, next wake %llu ms", (unsigned long long)(*now_ms - T0_MS),
               (unsigned long long)(wake - T0_MS));
    *now_ms = wake;
  }
  fail_msg("not quiescent after %llu ticks", (unsigned long long)ticks_max);
  return 0;
}

static inline void push(fixture *f, vs_result_kind kind, const vs_op_id *id, uint32_t peer) {
  vs_result r;
  memset(&r, 0, sizeof r);
  r.kind = kind;
  r.op_id = *id;
  r.peer = peer;
  r.reason = kind == VS_RESULT_DONE ? NULL : "pushed by the test";
  assert_err(vs_engine_on_results(f->e, &r, 1), VS_OK);
}

/* An id that no write of this test derives. */
static inline vs_op_id foreign_id(uint8_t salt) {
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, (uint8_t)(0x80u | salt));
  vs_op_id id;
  vs_op_id_derive(origin, 1, &id);
  return id;
}

static inline int write_all(int fd, const void *buf, size_t bytes) {
  const uint8_t *p = buf;
  while (bytes > 0) {
    ssize_t n = write(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    bytes -= (size_t)n;
  }
  return 0;
}

static inline int read_all(int fd, void *buf, size_t bytes) {
  uint8_t *p = buf;
  while (bytes > 0) {
    ssize_t n = read(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    bytes -= (size_t)n;
  }
  return 0;
}

static inline int wait_child(fixture *f) {
  int code = vt_wait_child(f->child);
  f->child = -1; /* reaped: teardown must not kill or wait for it */
  return code;
}

/* Create the store and close it again, so that a child forked now can open
 * it while the parent holds nothing open across the fork. */
static inline void create_store_closed(fixture *f) {
  vs_store *s = NULL;
  assert_err(vt_store_open(f->dir, 0, &s), VS_OK);
  vs_store_close(s);
}

#endif /* VIXSYNC_ENGINE_FIXTURE_H */
