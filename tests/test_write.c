/* tests/test_write.c: pins include/vixsync/write.h.
 *
 * seq, LSN and HLC grow with every write and prev chains each op to the
 * previous one's hash; idempotency keys (duplicate, conflict, lookup);
 * batches are all or nothing; bad requests change nothing (a "mesh." kind,
 * reserved for membership ops, among them); a full map
 * (VS_ERR_FULL) changes nothing, leaves the store usable and is cured by
 * purging or by a bigger map; two processes writing one origin at once get
 * a gapless chain.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: fork, pipe, mkdtemp, nftw */

#include <errno.h>
#include <time.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "testutil.h"
#include "vixsync/op.h"
#include "vixsync/outbox.h"
#include "vixsync/state.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "vixsync/write.h"
#include "outbox_step.h" /* internal: vs_outbox_complete */

#define MIB (1024ull * 1024ull)
#define T0_MS 1700000000000ull
#define CHILD_TIMEOUT_S 60u
/* Bounds the fill loops: 1 MiB cannot hold this many 1 KiB operations. */
#define FILL_WRITES_MAX 5000u

typedef struct fixture {
  char dir[512];
  vs_store *store;
  vs_outbox *ob;
  uint8_t origin[VS_ORIGIN_BYTES];
} fixture;

static int setup_map(void **state, uint64_t map_bytes) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  vt_tmpdir(f->dir, sizeof f->dir, "write");
  vt_origin(f->origin, 1);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  if (vt_store_open(f->dir, map_bytes, &f->store) != VS_OK || vs_outbox_open(f->store, &ocfg, &f->ob) != VS_OK) {
    vt_store_teardown(f->dir, f->store);
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_map(state, 16 * MIB); }
static int setup_small(void **state) { return setup_map(state, MIB); }

static int teardown(void **state) {
  fixture *f = *state;
  vs_outbox_close(f->ob);
  vt_store_teardown(f->dir, f->store);
  free(f);
  return 0;
}

static vs_write_req req_make(const char *kind, const char *target, const char *payload) {
  vs_write_req r = {.kind = kind,
                    .target = (const uint8_t *)target,
                    .target_bytes = (uint32_t)strlen(target),
                    .payload = (const uint8_t *)payload,
                    .payload_bytes = (uint32_t)strlen(payload)};
  return r;
}

static vs_write_req req_keyed(const char *kind, const char *target, const char *payload,
                              const char *key) {
  vs_write_req r = req_make(kind, target, payload);
  r.idem_key = (const uint8_t *)key;
  r.idem_key_bytes = (uint32_t)strlen(key);
  return r;
}

/* What a write may change, to show that a failed one changed nothing. */
typedef struct snap {
  uint64_t last_lsn, head_seq, head_hlc;
  uint8_t head_hash[VS_HASH_BYTES];
  uint8_t state_hash[VS_HASH_BYTES];
  vs_outbox_counts counts;
} snap;

static snap take(fixture *f) {
  snap s;
  memset(&s, 0, sizeof s);
  assert_err(vs_wal_last_lsn(f->store, &s.last_lsn), VS_OK);
  assert_err(vs_wal_head(f->store, f->origin, &s.head_seq, s.head_hash, &s.head_hlc), VS_OK);
  assert_err(vs_outbox_counts_get(f->ob, &s.counts), VS_OK);
  assert_err(vs_state_hash(f->store, s.state_hash), VS_OK);
  return s;
}

static void assert_snap_equal(const snap *a, const snap *b) {
  assert_int_equal(a->last_lsn, b->last_lsn);
  assert_int_equal(a->head_seq, b->head_seq);
  assert_int_equal(a->head_hlc, b->head_hlc);
  assert_memory_equal(a->head_hash, b->head_hash, VS_HASH_BYTES);
  assert_memory_equal(a->state_hash, b->state_hash, VS_HASH_BYTES);
  assert_int_equal(a->counts.pending, b->counts.pending);
  assert_int_equal(a->counts.inflight, b->counts.inflight);
  assert_int_equal(a->counts.done, b->counts.done);
  assert_int_equal(a->counts.failed, b->counts.failed);
}

static vs_write_result write_ok(fixture *f, const vs_write_req *req, uint64_t now_ms) {
  vs_write_result r;
  memset(&r, 0xee, sizeof r);
  assert_err(vs_write(f->store, f->origin, req, now_ms, &r), VS_OK);
  return r;
}

/* ---- replay checks ------------------------------------------------------------ */

typedef struct chain_check {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint8_t prev_hash[VS_HASH_BYTES]; /* vs_op_hash of this origin's previous op */
  uint64_t seq;                     /* of that op */
  uint64_t records;
  uint64_t bad; /* 0, or the LSN of the first record that broke the chain */
} chain_check;

/* Every op of `origin` extends its chain: seq + 1 and prev = hash(previous). */
static vs_err check_chain(const vs_wal_record *rec, void *ctx) {
  chain_check *c = ctx;
  c->records++;
  if (memcmp(rec->op.origin, c->origin, VS_ORIGIN_BYTES) != 0) return VS_OK;
  uint8_t hash[VS_HASH_BYTES];
  if (vs_op_hash(&rec->op, hash) != VS_OK) return VS_ERR_MALFORMED;
  if (c->bad == 0 && (rec->op.seq != c->seq + 1 ||
                      memcmp(rec->op.prev, c->prev_hash, VS_HASH_BYTES) != 0 ||
                      memcmp(rec->op_hash, hash, VS_HASH_BYTES) != 0))
    c->bad = rec->lsn;
  memcpy(c->prev_hash, hash, VS_HASH_BYTES);
  c->seq = rec->op.seq;
  return VS_OK;
}

static chain_check run_chain_check(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES]) {
  chain_check c;
  memset(&c, 0, sizeof c); /* prev of seq 1 is all zero */
  memcpy(c.origin, origin, VS_ORIGIN_BYTES);
  assert_err(vs_wal_replay(store, 1, check_chain, &c), VS_OK);
  assert_int_equal(c.bad, 0);
  return c;
}

/* ---- seq, lsn, hlc, prev ---------------------------------------------------------- */

static void test_write_returns_increasing_seq_lsn_hlc(void **state) {
  fixture *f = *state;
  vs_write_req req = req_make("put", "x", "1");
  /* Same millisecond twice, the clock going back, then forward. */
  static const uint64_t now_ms[] = {T0_MS, T0_MS, T0_MS, T0_MS - 5000, T0_MS + 1, T0_MS + 900};
  uint64_t last_hlc = 0;
  for (uint32_t i = 0; i < sizeof now_ms / sizeof now_ms[0]; i++) {
    vs_write_result r = write_ok(f, &req, now_ms[i]);
    assert_int_equal(r.seq, i + 1);
    assert_int_equal(r.lsn, i + 1);
    assert_false(r.duplicate);
    uint64_t wall = now_ms[i] << 16;
    uint64_t want = wall > last_hlc + 1 ? wall : last_hlc + 1;
    assert_int_equal(r.hlc, want);
    assert_int_equal(r.hlc, vs_hlc_next(last_hlc, now_ms[i]));
    assert_true(r.hlc > last_hlc);
    last_hlc = r.hlc;
  }
  assert_int_equal(vs_hlc_wall_ms(last_hlc), T0_MS + 900);
}

static void test_write_id_is_derived_from_origin_and_seq(void **state) {
  fixture *f = *state;
  vs_write_req req = req_make("put", "x", "1");
  for (uint64_t seq = 1; seq <= 3; seq++) {
    vs_write_result r = write_ok(f, &req, T0_MS);
    vs_op_id want;
    vs_op_id_derive(f->origin, seq, &want);
    assert_true(vs_op_id_equal(&r.op_id, &want));
    uint64_t lsn = 0;
    assert_err(vs_wal_find(f->store, &r.op_id, &lsn), VS_OK);
    assert_int_equal(lsn, r.lsn);
  }
}

static void test_write_prev_chains_to_previous_hash(void **state) {
  fixture *f = *state;
  for (uint32_t i = 0; i < 20; i++) {
    char payload[16];
    snprintf(payload, sizeof payload, "%u", i); /* an incr's delta is a decimal */
    vs_write_req req = req_make(i % 2 ? "incr" : "put", "counter", payload);
    write_ok(f, &req, T0_MS + i);
  }
  chain_check c = run_chain_check(f->store, f->origin);
  assert_int_equal(c.records, 20);
  assert_int_equal(c.seq, 20);
  snap s = take(f);
  assert_int_equal(s.head_seq, 20);
  assert_memory_equal(s.head_hash, c.prev_hash, VS_HASH_BYTES);
}

static void test_write_origins_have_independent_chains(void **state) {
  fixture *f = *state;
  uint8_t other[VS_ORIGIN_BYTES];
  vt_origin(other, 2);
  vs_write_req req = req_make("put", "x", "1");
  for (uint32_t i = 0; i < 5; i++) {
    vs_write_result a = write_ok(f, &req, T0_MS + i);
    vs_write_result b;
    assert_err(vs_write(f->store, other, &req, T0_MS + i, &b), VS_OK);
    assert_int_equal(a.seq, i + 1);
    assert_int_equal(b.seq, i + 1);
    assert_int_equal(a.lsn, 2 * i + 1);
    assert_int_equal(b.lsn, 2 * i + 2);
  }
  chain_check c1 = run_chain_check(f->store, f->origin);
  chain_check c2 = run_chain_check(f->store, other);
  assert_int_equal(c1.seq, 5);
  assert_int_equal(c2.seq, 5);
}

static void test_write_result_may_be_null(void **state) {
  fixture *f = *state;
  vs_write_req req = req_make("put", "x", "1");
  assert_err(vs_write(f->store, f->origin, &req, T0_MS, NULL), VS_OK);
  assert_err(vs_write_batch(f->store, f->origin, &req, 1, T0_MS, NULL), VS_OK);
  snap s = take(f);
  assert_int_equal(s.last_lsn, 2);
}

static void test_write_empty_target_and_payload(void **state) {
  fixture *f = *state;
  vs_write_req req = {.kind = "del"};
  vs_write_result r = write_ok(f, &req, T0_MS);
  assert_int_equal(r.seq, 1);
  run_chain_check(f->store, f->origin);
}

static void test_write_enqueues_for_the_outbox(void **state) {
  fixture *f = *state;
  vs_write_req req = req_make("put", "x", "1");
  vs_write_result r = write_ok(f, &req, T0_MS + 3);
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob, &r.op_id, &e), VS_OK);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  assert_int_equal(e.lsn, r.lsn);
  assert_int_equal(e.next_attempt_at_ms, T0_MS + 3);
  snap s = take(f);
  assert_int_equal(s.counts.pending, 1);
}

/* ---- idempotency keys ---------------------------------------------------------- */

static void test_write_idem_same_args_is_duplicate(void **state) {
  fixture *f = *state;
  vs_write_req req = req_keyed("incr", "visits", "1", "request-42");
  vs_write_result first = write_ok(f, &req, T0_MS);
  assert_false(first.duplicate);
  vs_write_req other = req_make("put", "y", "2");
  write_ok(f, &other, T0_MS + 1);
  snap before = take(f);

  /* The same arguments from other buffers, later. */
  char kind[] = "incr", target[] = "visits", payload[] = "1", key[] = "request-42";
  vs_write_req again = req_keyed(kind, target, payload, key);
  vs_write_result r = write_ok(f, &again, T0_MS + 5000);
  assert_true(r.duplicate);
  assert_true(vs_op_id_equal(&r.op_id, &first.op_id));
  assert_int_equal(r.lsn, first.lsn);
  assert_int_equal(r.seq, first.seq);
  assert_int_equal(r.hlc, first.hlc);
  snap after = take(f);
  assert_snap_equal(&before, &after);
  /* And once more: still the first. */
  r = write_ok(f, &again, T0_MS + 6000);
  assert_true(r.duplicate);
  assert_true(vs_op_id_equal(&r.op_id, &first.op_id));
  after = take(f);
  assert_snap_equal(&before, &after);
}

static void assert_conflict_changes_nothing(fixture *f, const vs_write_req *second) {
  vs_write_req req = req_keyed("put", "x", "hello", "k1");
  vs_write_result first = write_ok(f, &req, T0_MS);
  snap before = take(f);
  vs_write_result r;
  assert_err(vs_write(f->store, f->origin, second, T0_MS + 1, &r), VS_ERR_CONFLICT);
  snap after = take(f);
  assert_snap_equal(&before, &after);
  /* The key still names the first operation, and still accepts its args. */
  vs_op_id id;
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"k1", 2, &id), VS_OK);
  assert_true(vs_op_id_equal(&id, &first.op_id));
  r = write_ok(f, &req, T0_MS + 2);
  assert_true(r.duplicate);
}

static void test_write_idem_other_kind_conflicts(void **state) {
  vs_write_req second = req_keyed("del", "x", "hello", "k1");
  assert_conflict_changes_nothing(*state, &second);
}

static void test_write_idem_other_target_conflicts(void **state) {
  vs_write_req second = req_keyed("put", "y", "hello", "k1");
  assert_conflict_changes_nothing(*state, &second);
}

static void test_write_idem_other_payload_conflicts(void **state) {
  vs_write_req second = req_keyed("put", "x", "hellp", "k1");
  assert_conflict_changes_nothing(*state, &second);
}

/* Lengths are part of the arguments: moving a byte from target to payload
 * is a different write. */
static void test_write_idem_shifted_bytes_conflict(void **state) {
  vs_write_req second = req_keyed("put", "xh", "ello", "k1");
  assert_conflict_changes_nothing(*state, &second);
}

static void test_write_idem_lookup(void **state) {
  fixture *f = *state;
  vs_write_req req = req_keyed("put", "x", "1", "abc");
  vs_write_result r = write_ok(f, &req, T0_MS);
  vs_op_id id;
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"abc", 3, &id), VS_OK);
  assert_true(vs_op_id_equal(&id, &r.op_id));
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"abd", 3, &id), VS_ERR_NOTFOUND);
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"ab", 2, &id), VS_ERR_NOTFOUND);
  /* A write without a key registers none. */
  vs_write_req plain = req_make("put", "x", "1");
  write_ok(f, &plain, T0_MS);
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"abc", 3, &id), VS_OK);
  assert_true(vs_op_id_equal(&id, &r.op_id));
}

static void test_write_idem_survives_reopen(void **state) {
  fixture *f = *state;
  vs_write_req req = req_keyed("put", "x", "1", "durable-key");
  vs_write_result first = write_ok(f, &req, T0_MS);
  vs_outbox_close(f->ob);
  f->ob = NULL;
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vt_store_open(f->dir, 16 * MIB, &f->store), VS_OK);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  assert_err(vs_outbox_open(f->store, &ocfg, &f->ob), VS_OK);
  vs_write_result r = write_ok(f, &req, T0_MS + 1);
  assert_true(r.duplicate);
  assert_true(vs_op_id_equal(&r.op_id, &first.op_id));
  snap s = take(f);
  assert_int_equal(s.last_lsn, 1);
}

static void test_write_idem_key_bad_length_is_rejected(void **state) {
  fixture *f = *state;
  static uint8_t key[VS_IDEM_KEY_BYTES_MAX + 1];
  memset(key, 'k', sizeof key);
  snap before = take(f);
  vs_write_req req = req_make("put", "x", "1");
  req.idem_key = key;
  req.idem_key_bytes = 0;
  vs_err err = vs_write(f->store, f->origin, &req, T0_MS, NULL);
  assert_true(err == VS_ERR_INVAL || err == VS_ERR_MALFORMED || err == VS_ERR_TOO_LARGE);
  req.idem_key_bytes = VS_IDEM_KEY_BYTES_MAX + 1;
  err = vs_write(f->store, f->origin, &req, T0_MS, NULL);
  assert_true(err == VS_ERR_INVAL || err == VS_ERR_MALFORMED || err == VS_ERR_TOO_LARGE);
  snap after = take(f);
  assert_snap_equal(&before, &after);
  /* The longest key is fine. */
  req.idem_key_bytes = VS_IDEM_KEY_BYTES_MAX;
  vs_write_result r = write_ok(f, &req, T0_MS);
  vs_op_id id;
  assert_err(vs_write_idem_lookup(f->store, key, VS_IDEM_KEY_BYTES_MAX, &id), VS_OK);
  assert_true(vs_op_id_equal(&id, &r.op_id));
}

/* ---- batches ---------------------------------------------------------------------- */

static void test_write_batch_writes_all_in_order(void **state) {
  fixture *f = *state;
  enum { N = 50 };
  static char payloads[N][16];
  vs_write_req reqs[N];
  for (uint32_t i = 0; i < N; i++) {
    snprintf(payloads[i], sizeof payloads[i], "b%u", i);
    reqs[i] = req_make("put", "x", payloads[i]);
  }
  vs_write_result res[N];
  assert_err(vs_write_batch(f->store, f->origin, reqs, N, T0_MS, res), VS_OK);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(res[i].seq, i + 1);
    assert_int_equal(res[i].lsn, i + 1);
    assert_false(res[i].duplicate);
    if (i > 0) assert_true(res[i].hlc > res[i - 1].hlc);
  }
  snap s = take(f);
  assert_int_equal(s.last_lsn, N);
  assert_int_equal(s.head_seq, N);
  assert_int_equal(s.counts.pending, N);
  chain_check c = run_chain_check(f->store, f->origin);
  assert_int_equal(c.records, N);
  /* A batch after a batch continues the chain. */
  assert_err(vs_write_batch(f->store, f->origin, reqs, 3, T0_MS, res), VS_OK);
  assert_int_equal(res[0].seq, N + 1);
  run_chain_check(f->store, f->origin);
}

static void test_write_batch_bad_request_in_middle_writes_nothing(void **state) {
  fixture *f = *state;
  static uint8_t big[VS_OP_PAYLOAD_BYTES_MAX + 1];
  vs_write_req seed = req_make("put", "x", "0");
  write_ok(f, &seed, T0_MS);
  snap before = take(f);
  vs_write_req reqs[5] = {
      req_keyed("put", "a", "1", "batch-key-1"), req_make("put", "b", "2"),
      req_make("put", "c", "3"), req_make("put", "d", "4"), req_keyed("put", "e", "5", "batch-key-5"),
  };
  reqs[2].payload = big;
  reqs[2].payload_bytes = sizeof big; /* 65537 */
  assert_err(vs_write_batch(f->store, f->origin, reqs, 5, T0_MS + 1, NULL), VS_ERR_TOO_LARGE);
  snap after = take(f);
  assert_snap_equal(&before, &after);
  vs_op_id id;
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"batch-key-1", 11, &id),
             VS_ERR_NOTFOUND);
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"batch-key-5", 11, &id),
             VS_ERR_NOTFOUND);
  /* Fixed, the same batch goes through whole. */
  reqs[2].payload_bytes = VS_OP_PAYLOAD_BYTES_MAX;
  vs_write_result res[5];
  assert_err(vs_write_batch(f->store, f->origin, reqs, 5, T0_MS + 2, res), VS_OK);
  assert_int_equal(res[0].seq, 2);
  assert_int_equal(res[4].seq, 6);
  assert_false(res[0].duplicate); /* the key was not left behind by the failed batch */
  run_chain_check(f->store, f->origin);
}

static void test_write_batch_conflict_in_middle_writes_nothing(void **state) {
  fixture *f = *state;
  vs_write_req seed = req_keyed("put", "x", "0", "K");
  write_ok(f, &seed, T0_MS);
  snap before = take(f);
  vs_write_req reqs[3] = {req_make("put", "a", "1"), req_keyed("put", "x", "other", "K"),
                          req_make("put", "b", "2")};
  assert_err(vs_write_batch(f->store, f->origin, reqs, 3, T0_MS + 1, NULL), VS_ERR_CONFLICT);
  snap after = take(f);
  assert_snap_equal(&before, &after);
}

static void test_write_batch_repeated_key_is_duplicate(void **state) {
  fixture *f = *state;
  vs_write_req reqs[4] = {req_keyed("incr", "n", "1", "K"), req_make("put", "a", "1"),
                          req_keyed("incr", "n", "1", "K"), req_keyed("incr", "n", "1", "L")};
  vs_write_result res[4];
  assert_err(vs_write_batch(f->store, f->origin, reqs, 4, T0_MS, res), VS_OK);
  assert_false(res[0].duplicate);
  assert_false(res[1].duplicate);
  assert_true(res[2].duplicate);
  assert_false(res[3].duplicate);
  assert_true(vs_op_id_equal(&res[2].op_id, &res[0].op_id));
  assert_int_equal(res[2].lsn, res[0].lsn);
  assert_int_equal(res[2].seq, res[0].seq);
  assert_int_equal(res[3].seq, 3); /* the repeat took no seq */
  snap s = take(f);
  assert_int_equal(s.last_lsn, 3);
  assert_int_equal(s.counts.pending, 3);
  run_chain_check(f->store, f->origin);
}

static void test_write_batch_repeated_key_other_args_conflicts(void **state) {
  fixture *f = *state;
  snap before = take(f);
  vs_write_req reqs[3] = {req_keyed("incr", "n", "1", "K"), req_make("put", "a", "1"),
                          req_keyed("incr", "n", "2", "K")};
  assert_err(vs_write_batch(f->store, f->origin, reqs, 3, T0_MS, NULL), VS_ERR_CONFLICT);
  snap after = take(f);
  assert_snap_equal(&before, &after);
  vs_op_id id;
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"K", 1, &id), VS_ERR_NOTFOUND);
}

static void test_write_batch_key_written_before_is_duplicate(void **state) {
  fixture *f = *state;
  vs_write_req seed = req_keyed("put", "x", "0", "K");
  vs_write_result first = write_ok(f, &seed, T0_MS);
  vs_write_req reqs[2] = {req_make("put", "a", "1"), req_keyed("put", "x", "0", "K")};
  vs_write_result res[2];
  assert_err(vs_write_batch(f->store, f->origin, reqs, 2, T0_MS + 1, res), VS_OK);
  assert_false(res[0].duplicate);
  assert_true(res[1].duplicate);
  assert_true(vs_op_id_equal(&res[1].op_id, &first.op_id));
  snap s = take(f);
  assert_int_equal(s.last_lsn, 2);
}

/* ---- validation ----------------------------------------------------------------------- */

static void assert_rejected(fixture *f, const vs_write_req *req, vs_err want) {
  vs_write_req seed = req_make("put", "x", "0");
  write_ok(f, &seed, T0_MS);
  snap before = take(f);
  vs_write_result r;
  assert_err(vs_write(f->store, f->origin, req, T0_MS + 1, &r), want);
  assert_err(vs_write_batch(f->store, f->origin, req, 1, T0_MS + 1, &r), want);
  snap after = take(f);
  assert_snap_equal(&before, &after);
}

static void test_write_kind_empty_is_malformed(void **state) {
  vs_write_req req = req_make("", "x", "1");
  assert_rejected(*state, &req, VS_ERR_MALFORMED);
}

static void test_write_kind_with_space_is_malformed(void **state) {
  vs_write_req req = req_make("pu t", "x", "1");
  assert_rejected(*state, &req, VS_ERR_MALFORMED);
}

static void test_write_kind_with_control_byte_is_malformed(void **state) {
  vs_write_req req = req_make("put\x7f", "x", "1");
  assert_rejected(*state, &req, VS_ERR_MALFORMED);
}

static void test_write_kind_too_long_is_malformed(void **state) {
  char kind[VS_OP_KIND_BYTES_MAX + 2];
  memset(kind, 'k', sizeof kind - 1);
  kind[sizeof kind - 1] = '\0'; /* 65 bytes */
  vs_write_req req = req_make(kind, "x", "1");
  assert_rejected(*state, &req, VS_ERR_MALFORMED);
}

static void test_write_target_too_large_is_too_large(void **state) {
  static uint8_t target[VS_OP_TARGET_BYTES_MAX + 1];
  vs_write_req req = req_make("put", "x", "1");
  req.target = target;
  req.target_bytes = sizeof target; /* 1025 */
  assert_rejected(*state, &req, VS_ERR_TOO_LARGE);
}

static void test_write_payload_too_large_is_too_large(void **state) {
  static uint8_t payload[VS_OP_PAYLOAD_BYTES_MAX + 1];
  vs_write_req req = req_make("put", "x", "1");
  req.payload = payload;
  req.payload_bytes = sizeof payload; /* 65537 */
  assert_rejected(*state, &req, VS_ERR_TOO_LARGE);
}

static void test_write_null_buffer_with_length_is_inval(void **state) {
  vs_write_req req = req_make("put", "x", "1");
  req.payload = NULL;
  assert_rejected(*state, &req, VS_ERR_INVAL);
}

static void test_write_null_kind_is_inval(void **state) {
  vs_write_req req = req_make("put", "x", "1");
  req.kind = NULL;
  assert_rejected(*state, &req, VS_ERR_INVAL);
}

/* Membership ops (src/member.h) are the node's to write: every kind that
 * starts with "mesh." is refused, whatever its payload, and nothing else. */
static void test_write_mesh_kind_is_inval(void **state) {
  static const char *const reserved[] = {"mesh.create", "mesh.invite", "mesh.admit", "mesh.revoke",
                                         "mesh.rekey",  "mesh.",       "mesh.put",   "mesh.x.y"};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
    vs_write_req req = req_make(reserved[i], "mesh", "\x01\x03");
    assert_rejected(*state, &req, VS_ERR_INVAL);
    req = req_keyed(reserved[i], "x", "1", "mesh-key");
    assert_rejected(*state, &req, VS_ERR_INVAL);
  }
  fixture *f = *state;
  vs_op_id id;
  assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"mesh-key", 8, &id), VS_ERR_NOTFOUND);
  /* Only the exact prefix is reserved: these are data kinds. */
  static const char *const data[] = {"mesh", "meshx", "mesh_invite", "Mesh.invite", "xmesh.invite", "put.mesh."};
  for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
    vs_write_req req = req_make(data[i], "mesh", "1");
    vs_write_result r = write_ok(f, &req, T0_MS + 10 + i);
    assert_false(r.duplicate);
  }
}

static void test_write_batch_mesh_kind_writes_nothing(void **state) {
  fixture *f = *state;
  vs_write_req seed = req_make("put", "x", "0");
  write_ok(f, &seed, T0_MS);
  snap before = take(f);
  vs_write_req reqs[5] = {
      req_keyed("put", "a", "1", "batch-key-1"), req_make("incr", "n", "2"), req_make("put", "c", "3"),
      req_make("del", "x", ""), req_keyed("put", "e", "5", "batch-key-5"),
  };
  /* One reserved kind anywhere (first, middle, last) fails the whole batch. */
  for (size_t at = 0; at < 5; at += 2) {
    vs_write_req saved = reqs[at];
    reqs[at] = req_make("mesh.invite", "mesh", "\x01\x03");
    vs_write_result res[5];
    assert_err(vs_write_batch(f->store, f->origin, reqs, 5, T0_MS + 1, res), VS_ERR_INVAL);
    snap after = take(f);
    assert_snap_equal(&before, &after);
    vs_op_id id;
    assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"batch-key-1", 11, &id), VS_ERR_NOTFOUND);
    assert_err(vs_write_idem_lookup(f->store, (const uint8_t *)"batch-key-5", 11, &id), VS_ERR_NOTFOUND);
    reqs[at] = saved;
  }
  /* Without it, the same batch goes through whole. */
  vs_write_result res[5];
  assert_err(vs_write_batch(f->store, f->origin, reqs, 5, T0_MS + 2, res), VS_OK);
  assert_int_equal(res[0].seq, 2);
  assert_int_equal(res[4].seq, 6);
  assert_false(res[0].duplicate);
  run_chain_check(f->store, f->origin);
}

static void test_write_limits_exactly_fit(void **state) {
  fixture *f = *state;
  static uint8_t target[VS_OP_TARGET_BYTES_MAX], payload[VS_OP_PAYLOAD_BYTES_MAX];
  char kind[VS_OP_KIND_BYTES_MAX + 1];
  memset(kind, '~', VS_OP_KIND_BYTES_MAX);
  kind[VS_OP_KIND_BYTES_MAX] = '\0';
  memset(target, 't', sizeof target);
  memset(payload, 'p', sizeof payload);
  vs_write_req req = {.kind = kind, .target = target, .target_bytes = sizeof target,
                      .payload = payload, .payload_bytes = sizeof payload};
  vs_write_result r = write_ok(f, &req, T0_MS);
  assert_int_equal(r.seq, 1);
  run_chain_check(f->store, f->origin);
}

/* ---- a full map ------------------------------------------------------------------------- */

#define FILL_PAYLOAD_BYTES 1024u

static vs_err write_filler(fixture *f, uint32_t i, uint64_t now_ms, vs_write_result *r) {
  static uint8_t payload[FILL_PAYLOAD_BYTES];
  memset(payload, (int)('a' + i % 26), sizeof payload);
  memcpy(payload, &i, sizeof i);
  vs_write_req req = {.kind = "put", .target = (const uint8_t *)"fill", .target_bytes = 4,
                      .payload = payload, .payload_bytes = sizeof payload};
  return vs_write(f->store, f->origin, &req, now_ms, r);
}

/* Write 1 KiB operations into the 1 MiB store until VS_ERR_FULL; the failed
 * write changed nothing. Returns how many were written. */
static uint32_t fill_until_full(fixture *f) {
  uint32_t written = 0;
  for (uint32_t i = 0; i < FILL_WRITES_MAX; i++) {
    snap before = take(f);
    vs_err err = write_filler(f, i, T0_MS + i, NULL);
    if (err == VS_ERR_FULL) {
      snap after = take(f);
      assert_snap_equal(&before, &after);
      assert_int_equal(after.last_lsn, written);
      return written;
    }
    assert_err(err, VS_OK);
    written++;
  }
  fail_msg("no VS_ERR_FULL after %u writes into %llu bytes", FILL_WRITES_MAX,
           (unsigned long long)MIB);
  return 0;
}

typedef struct count_ctx {
  uint64_t records;
} count_ctx;

static vs_err count_records(const vs_wal_record *rec, void *ctx) {
  (void)rec;
  ((count_ctx *)ctx)->records++;
  return VS_OK;
}

/* After VS_ERR_FULL the store still reads. */
static void assert_readable(fixture *f, uint32_t written) {
  count_ctx c = {0};
  assert_err(vs_wal_replay(f->store, 1, count_records, &c), VS_OK);
  assert_int_equal(c.records, written);
  vs_op_id id;
  vs_op_id_derive(f->origin, written, &id);
  uint64_t lsn = 0;
  assert_err(vs_wal_find(f->store, &id, &lsn), VS_OK);
  assert_int_equal(lsn, written);
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob, &id, &e), VS_OK);
  assert_int_equal(e.state, VS_OUTBOX_PENDING);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_true(used <= map);
}

/* Writes after the cure land and extend the chain. */
static void assert_writes_again(fixture *f, uint32_t written, uint32_t more) {
  for (uint32_t i = 0; i < more; i++) {
    vs_write_result r;
    assert_err(write_filler(f, written + i, T0_MS + written + i, &r), VS_OK);
    assert_int_equal(r.seq, written + i + 1);
  }
  run_chain_check(f->store, f->origin);
}

static void test_write_map_full_changes_nothing(void **state) {
  fixture *f = *state;
  uint32_t written = fill_until_full(f);
  assert_true(written > 100); /* 1 MiB holds some hundreds of 1 KiB ops */
  assert_readable(f, written);
  /* Failing again is still harmless. */
  snap before = take(f);
  assert_err(write_filler(f, written, T0_MS + written, NULL), VS_ERR_FULL);
  static vs_write_req reqs[8];
  static uint8_t payload[FILL_PAYLOAD_BYTES];
  for (uint32_t i = 0; i < 8; i++) {
    reqs[i] = (vs_write_req){.kind = "put", .target = (const uint8_t *)"b", .target_bytes = 1,
                             .payload = payload, .payload_bytes = sizeof payload};
  }
  assert_err(vs_write_batch(f->store, f->origin, reqs, 8, T0_MS, NULL), VS_ERR_FULL);
  snap after = take(f);
  assert_snap_equal(&before, &after);
  run_chain_check(f->store, f->origin);
  /* A tiny write may or may not fit: either way it is all or nothing. */
  vs_write_req tiny = req_make("put", "t", "1");
  vs_err err = vs_write(f->store, f->origin, &tiny, T0_MS, NULL);
  assert_true(err == VS_OK || err == VS_ERR_FULL);
  after = take(f);
  assert_int_equal(after.last_lsn, before.last_lsn + (err == VS_OK ? 1 : 0));
}

static void test_write_batch_map_full_writes_nothing(void **state) {
  fixture *f = *state;
  enum { N = 1500 }; /* 1.5 MiB of payload cannot fit in a 1 MiB map */
  static vs_write_req reqs[N];
  static uint8_t payload[FILL_PAYLOAD_BYTES];
  for (uint32_t i = 0; i < N; i++) {
    reqs[i] = (vs_write_req){.kind = "put", .target = (const uint8_t *)"b", .target_bytes = 1,
                             .payload = payload, .payload_bytes = sizeof payload};
  }
  snap before = take(f);
  assert_err(vs_write_batch(f->store, f->origin, reqs, N, T0_MS, NULL), VS_ERR_FULL);
  snap after = take(f);
  assert_snap_equal(&before, &after);
  assert_int_equal(after.last_lsn, 0);
  /* A batch that fits still goes in. */
  assert_err(vs_write_batch(f->store, f->origin, reqs, 100, T0_MS, NULL), VS_OK);
  after = take(f);
  assert_int_equal(after.last_lsn, 100);
}

/* Cure (a): deliver and purge the outbox. Only the outbox entries go: the WAL
 * keeps every operation (purge_done: "The WAL keeps the operations"), so the
 * space won back is the entries' share of the map (about 60 bytes and an
 * index key per op), small next to 1 KiB records: measured, ~570 ops fill
 * 1 MiB and the purge frees room for ~50 more. LMDB reuses the freed pages,
 * so asking for 10 more is safe. Completing in a full map must work too:
 * each transition frees as many pages as it copies. A store that keeps
 * growing needs cure (b). */
static void test_write_map_full_purge_done_writes_again(void **state) {
  fixture *f = *state;
  uint32_t written = fill_until_full(f);
  for (uint32_t i = 1; i <= written; i++) {
    vs_op_id id;
    vs_op_id_derive(f->origin, i, &id);
    assert_err(vs_outbox_complete(f->ob, &id, T0_MS + FILL_WRITES_MAX), VS_OK);
  }
  uint64_t purged = 0;
  assert_err(vs_outbox_purge_done(f->ob, written, &purged), VS_OK);
  assert_int_equal(purged, written);
  snap s = take(f);
  assert_int_equal(s.counts.done, 0);
  assert_int_equal(s.counts.pending, 0);
  assert_writes_again(f, written, 10);
  snap after = take(f);
  assert_int_equal(after.last_lsn, written + 10);
  assert_int_equal(after.counts.pending, 10);
}

/* Cure (b): a bigger map, by reopening. */
static void test_write_map_full_reopen_larger_map_writes_again(void **state) {
  fixture *f = *state;
  uint32_t written = fill_until_full(f);
  vs_outbox_close(f->ob);
  f->ob = NULL;
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vt_store_open(f->dir, 4 * MIB, &f->store), VS_OK);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  assert_err(vs_outbox_open(f->store, &ocfg, &f->ob), VS_OK);
  assert_readable(f, written);
  assert_writes_again(f, written, written); /* as much again */
  snap s = take(f);
  assert_int_equal(s.last_lsn, 2 * written);
  assert_int_equal(s.counts.pending, 2 * written);
}

/* Cure (b'): a bigger map on the open store. */
static void test_write_map_full_set_map_bytes_writes_again(void **state) {
  fixture *f = *state;
  uint32_t written = fill_until_full(f);
  assert_err(vs_store_set_map_bytes(f->store, 4 * MIB), VS_OK);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_int_equal(map, 4 * MIB);
  assert_writes_again(f, written, written);
  snap s = take(f);
  assert_int_equal(s.last_lsn, 2 * written);
}

/* ---- processes ------------------------------------------------------------------------- */

#define PROC_WRITES 200u
#define PROC_BATCH 10u

/* A writer process: opens the store itself, waits for the start signal, then
 * writes PROC_WRITES ops with payload "w<who>-<i>", one per call or in
 * batches. Reports through its exit code; no cmocka asserts in a child. */
static void writer_child(const char *dir, const uint8_t origin[VS_ORIGIN_BYTES], int who,
                         bool batched, int start_fd) {
  alarm(CHILD_TIMEOUT_S);
  vs_store *store = NULL;
  if (vt_store_open(dir, 16 * MIB, &store) != VS_OK) _exit(11);
  char c;
  if (read(start_fd, &c, 1) != 0) _exit(12); /* EOF: everyone starts together */
  static char payloads[PROC_WRITES][16];
  static vs_write_req reqs[PROC_WRITES];
  static vs_write_result res[PROC_WRITES];
  for (uint32_t i = 0; i < PROC_WRITES; i++) {
    int n = snprintf(payloads[i], sizeof payloads[i], "w%d-%u", who, i);
    reqs[i] = (vs_write_req){.kind = "put", .target = (const uint8_t *)"t", .target_bytes = 1,
                             .payload = (const uint8_t *)payloads[i], .payload_bytes = (uint32_t)n};
  }
  uint32_t step = batched ? PROC_BATCH : 1u;
  struct timespec pause = {0, 100000}; /* 0.1 ms: lets the other writer take LMDB's lock */
  for (uint32_t i = 0; i < PROC_WRITES; i += step) {
    if (vs_write_batch(store, origin, &reqs[i], step, T0_MS + i, &res[i]) != VS_OK) _exit(13);
    /* After the first write, wait for the other's: both are then writing at
     * once, for sure, and their writes interleave. */
    for (uint32_t spins = 0; i == 0; spins++) {
      uint64_t lsn = 0;
      if (vs_wal_last_lsn(store, &lsn) != VS_OK) _exit(16);
      if (lsn >= 2u * step) break;
      if (spins == 100000u) _exit(17);
      nanosleep(&pause, NULL);
    }
    nanosleep(&pause, NULL);
  }
  for (uint32_t i = 1; i < PROC_WRITES; i++) {
    if (res[i].seq <= res[i - 1].seq || res[i].lsn <= res[i - 1].lsn) _exit(14);
    if (res[i].hlc <= res[i - 1].hlc) _exit(15);
  }
  vs_store_close(store);
  _exit(0);
}

typedef struct proc_check {
  uint64_t records;
  uint64_t bad_lsn; /* first record that broke an expectation */
  int last_who;
  uint64_t switches; /* records written by another process than the one before */
  uint8_t seen[2][PROC_WRITES];
} proc_check;

static vs_err check_proc_record(const vs_wal_record *rec, void *ctx) {
  proc_check *c = ctx;
  c->records++;
  int who = -1;
  unsigned i = 0;
  char text[32] = {0};
  if (rec->op.payload_bytes < sizeof text) memcpy(text, rec->op.payload, rec->op.payload_bytes);
  if (sscanf(text, "w%d-%u", &who, &i) != 2 || who < 0 || who > 1 || i >= PROC_WRITES ||
      rec->op.seq != rec->lsn) {
    if (c->bad_lsn == 0) c->bad_lsn = rec->lsn;
    return VS_OK;
  }
  c->seen[who][i]++;
  if (c->records > 1 && who != c->last_who) c->switches++;
  c->last_who = who;
  return VS_OK;
}

static void run_two_writers(fixture *f, bool batched) {
  /* The parent holds its store open while the children open their own. */
  int start[2];
  assert_int_equal(pipe(start), 0);
  pid_t pids[2];
  for (int who = 0; who < 2; who++) {
    pids[who] = fork();
    assert_true(pids[who] >= 0);
    if (pids[who] == 0) {
      close(start[1]);
      writer_child(f->dir, f->origin, who, batched, start[0]);
    }
  }
  close(start[0]);
  close(start[1]); /* EOF on the pipe: go */
  int codes[2];
  for (int who = 0; who < 2; who++) codes[who] = vt_wait_child(pids[who]);
  assert_int_equal(codes[0], 0);
  assert_int_equal(codes[1], 0);

  proc_check *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, check_proc_record, c), VS_OK);
  assert_int_equal(c->bad_lsn, 0);
  assert_int_equal(c->records, 2 * PROC_WRITES); /* all landed: seqs 1..N, no gap */
  assert_true(c->switches >= 1); /* they did write at the same time */
  for (int who = 0; who < 2; who++)
    for (uint32_t i = 0; i < PROC_WRITES; i++) assert_int_equal(c->seen[who][i], 1); /* no dups */
  free(c);
  chain_check cc = run_chain_check(f->store, f->origin);
  assert_int_equal(cc.seq, 2 * PROC_WRITES);
  snap s = take(f);
  assert_int_equal(s.head_seq, 2 * PROC_WRITES);
  assert_int_equal(s.last_lsn, 2 * PROC_WRITES);
  assert_int_equal(s.counts.pending, 2 * PROC_WRITES);
  /* The parent's own handle writes on top. */
  vs_write_req req = req_make("put", "x", "after");
  vs_write_result r = write_ok(f, &req, T0_MS);
  assert_int_equal(r.seq, 2 * PROC_WRITES + 1);
}

static void test_write_two_processes_same_origin_gapless(void **state) {
  run_two_writers(*state, false);
}

static void test_write_two_processes_batches_same_origin_gapless(void **state) {
  run_two_writers(*state, true);
}

/* Another process grows the map (MDB_MAP_RESIZED for us): our next write
 * adopts the new size instead of failing. */
static void test_write_after_other_process_grew_map(void **state) {
  fixture *f = *state;
  uint32_t written = fill_until_full(f);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(CHILD_TIMEOUT_S);
    vs_store *store = NULL;
    if (vt_store_open(f->dir, 4 * MIB, &store) != VS_OK) _exit(11);
    for (uint32_t i = 0; i < written; i++) {
      static uint8_t payload[FILL_PAYLOAD_BYTES];
      vs_write_req req = {.kind = "put", .target = (const uint8_t *)"c", .target_bytes = 1,
                          .payload = payload, .payload_bytes = sizeof payload};
      if (vs_write(store, f->origin, &req, T0_MS, NULL) != VS_OK) _exit(12);
    }
    vs_store_close(store);
    _exit(0);
  }
  assert_int_equal(vt_wait_child(pid), 0);
  assert_readable(f, 2 * written);
  vs_write_result r;
  assert_err(write_filler(f, 0, T0_MS, &r), VS_OK);
  assert_int_equal(r.seq, 2 * written + 1);
  uint64_t used = 0, map = 0;
  assert_err(vs_store_usage(f->store, &used, &map), VS_OK);
  assert_true(map >= 4 * MIB);
  assert_true(used > MIB);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_SMALL(fn) cmocka_unit_test_setup_teardown(fn, setup_small, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_write_returns_increasing_seq_lsn_hlc),
      T(test_write_id_is_derived_from_origin_and_seq),
      T(test_write_prev_chains_to_previous_hash),
      T(test_write_origins_have_independent_chains),
      T(test_write_result_may_be_null),
      T(test_write_empty_target_and_payload),
      T(test_write_enqueues_for_the_outbox),
      T(test_write_idem_same_args_is_duplicate),
      T(test_write_idem_other_kind_conflicts),
      T(test_write_idem_other_target_conflicts),
      T(test_write_idem_other_payload_conflicts),
      T(test_write_idem_shifted_bytes_conflict),
      T(test_write_idem_lookup),
      T(test_write_idem_survives_reopen),
      T(test_write_idem_key_bad_length_is_rejected),
      T(test_write_batch_writes_all_in_order),
      T(test_write_batch_bad_request_in_middle_writes_nothing),
      T(test_write_batch_conflict_in_middle_writes_nothing),
      T(test_write_batch_repeated_key_is_duplicate),
      T(test_write_batch_repeated_key_other_args_conflicts),
      T(test_write_batch_key_written_before_is_duplicate),
      T(test_write_kind_empty_is_malformed),
      T(test_write_kind_with_space_is_malformed),
      T(test_write_kind_with_control_byte_is_malformed),
      T(test_write_kind_too_long_is_malformed),
      T(test_write_target_too_large_is_too_large),
      T(test_write_payload_too_large_is_too_large),
      T(test_write_null_buffer_with_length_is_inval),
      T(test_write_null_kind_is_inval),
      T(test_write_mesh_kind_is_inval),
      T(test_write_batch_mesh_kind_writes_nothing),
      T(test_write_limits_exactly_fit),
      T_SMALL(test_write_map_full_changes_nothing),
      T_SMALL(test_write_batch_map_full_writes_nothing),
      T_SMALL(test_write_map_full_purge_done_writes_again),
      T_SMALL(test_write_map_full_reopen_larger_map_writes_again),
      T_SMALL(test_write_map_full_set_map_bytes_writes_again),
      T(test_write_two_processes_same_origin_gapless),
      T(test_write_two_processes_batches_same_origin_gapless),
      T_SMALL(test_write_after_other_process_grew_map),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
