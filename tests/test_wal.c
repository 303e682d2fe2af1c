/* tests/test_wal.c: pins include/vixsync/wal.h.
 *
 * LSNs are gapless from 1 and replay in order (from the start or a middle
 * LSN); a handler error stops the replay and comes back; find and head; the
 * chain rules of vs_wal_append (CHAIN, EXISTS, FORK: nothing changes); the
 * record layout of the header comment; and corrupted records (a flipped byte,
 * a missing LSN, a record that does not decode, a wrong LSN field) are
 * reported as VS_ERR_CORRUPT. Corruption needs raw LMDB access: the store is
 * closed, its environment edited with mdb_* directly, then reopened.
 * The internal WAL reader (vs_wal_reader, src/internal.h) reads what
 * vs_wal_op_encoded_txn reads, stepping or seeking, with the same errors.
 */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lmdb.h>

#include "fixture.h"
#include "apply.h" /* vs_wal_append */
#include "internal.h"
#include "wal_int.h"
#include "testutil.h"
#include "vixsync/op.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "vixsync/write.h"

#define MIB (1024ull * 1024ull)
#define MAP_BYTES (16ull * MIB)
#define REPLAY_MAX 256u
#define T0_MS 1700000000000ull

typedef vt_fixture fixture; /* a store in a fresh directory */

static int setup(void **state) { return vt_fixture_open(state, "wal", MAP_BYTES); }
static int teardown(void **state) { return vt_fixture_free(state); }

static void reopen(fixture *f) {
  vs_store_close(f->store);
  f->store = NULL;
  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
}

/* ---- writing -------------------------------------------------------------- */

static uint32_t payload_of(uint64_t i, uint8_t *buf, size_t buf_bytes) {
  int n = snprintf((char *)buf, buf_bytes, "payload-%llu", (unsigned long long)i);
  assert_true(n > 0 && (size_t)n < buf_bytes);
  return (uint32_t)n;
}

/* Write n ops of `origin` through vs_write: op i (from 1) has payload
 * "payload-<i>" and is written at T0_MS + i. */
static void write_n(vs_store *store, uint8_t salt, uint32_t n, vs_write_result *results) {
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, salt);
  for (uint32_t i = 1; i <= n; i++) {
    uint8_t payload[32];
    vs_write_req req = {.kind = "put", .target = (const uint8_t *)"key", .target_bytes = 3};
    req.payload = payload;
    req.payload_bytes = payload_of(i, payload, sizeof payload);
    vs_write_result r;
    assert_err(vs_write(store, origin, &req, T0_MS + i, &r), VS_OK);
    if (results != NULL) results[i - 1] = r;
  }
}

/* ---- replay collection ---------------------------------------------------- */

typedef struct seen {
  uint64_t lsn, seq, hlc, stored_at_ms;
  vs_op_id id;
  uint8_t origin[VS_ORIGIN_BYTES];
  uint8_t prev[VS_HASH_BYTES];
  uint8_t hash[VS_HASH_BYTES];
  uint8_t computed_hash[VS_HASH_BYTES]; /* vs_op_hash of the decoded op */
  char payload[64];
} seen;

typedef struct collector {
  seen recs[REPLAY_MAX];
  uint32_t n;
  uint32_t stop_at; /* return stop_err when the stop_at-th record (1-based) is seen; 0 = never */
  vs_err stop_err;
} collector;

static vs_err collect(const vs_wal_record *rec, void *ctx) {
  collector *c = ctx;
  if (c->n >= REPLAY_MAX) return VS_ERR_LIMIT;
  seen *s = &c->recs[c->n++];
  memset(s, 0, sizeof *s);
  s->lsn = rec->lsn;
  s->seq = rec->op.seq;
  s->hlc = rec->op.hlc;
  s->stored_at_ms = rec->stored_at_ms;
  s->id = rec->op.id;
  memcpy(s->origin, rec->op.origin, VS_ORIGIN_BYTES);
  memcpy(s->prev, rec->op.prev, VS_HASH_BYTES);
  memcpy(s->hash, rec->op_hash, VS_HASH_BYTES);
  if (vs_op_hash(&rec->op, s->computed_hash) != VS_OK) return VS_ERR_MALFORMED;
  size_t pb = rec->op.payload_bytes < sizeof s->payload - 1 ? rec->op.payload_bytes
                                                             : sizeof s->payload - 1;
  if (pb > 0) memcpy(s->payload, rec->op.payload, pb);
  if (c->stop_at != 0 && c->n == c->stop_at) return c->stop_err;
  return VS_OK;
}

static uint64_t last_lsn(vs_store *store) {
  uint64_t lsn = UINT64_MAX;
  assert_err(vs_wal_last_lsn(store, &lsn), VS_OK);
  return lsn;
}

/* ---- raw LMDB access ------------------------------------------------------ */

typedef struct raw {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi wal;
} raw;

static void raw_open(const char *dir, raw *r) {
  assert_int_equal(mdb_env_create(&r->env), 0);
  assert_int_equal(mdb_env_set_maxdbs(r->env, 64), 0);
  assert_int_equal(mdb_env_set_mapsize(r->env, MAP_BYTES), 0);
  assert_int_equal(mdb_env_open(r->env, dir, 0, 0644), 0);
  assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
  assert_int_equal(mdb_dbi_open(r->txn, "wal", 0, &r->wal), 0);
}

static void raw_commit(raw *r) {
  assert_int_equal(mdb_txn_commit(r->txn), 0);
  mdb_env_close(r->env);
}

static void key_be(uint64_t lsn, uint8_t key[8]) {
  for (int i = 0; i < 8; i++) key[i] = (uint8_t)(lsn >> (56 - 8 * i));
}

/* Copy the record stored under `lsn` into buf; returns its size. */
static size_t raw_get(raw *r, uint64_t lsn, uint8_t *buf, size_t buf_bytes) {
  uint8_t key[8];
  key_be(lsn, key);
  MDB_val k = {8, key}, v;
  assert_int_equal(mdb_get(r->txn, r->wal, &k, &v), 0);
  assert_true(v.mv_size <= buf_bytes);
  memcpy(buf, v.mv_data, v.mv_size);
  return v.mv_size;
}

static void raw_put(raw *r, uint64_t lsn, const uint8_t *buf, size_t buf_bytes) {
  uint8_t key[8];
  key_be(lsn, key);
  MDB_val k = {8, key}, v = {buf_bytes, (void *)buf};
  assert_int_equal(mdb_put(r->txn, r->wal, &k, &v, 0), 0);
}

static void raw_del(raw *r, uint64_t lsn) {
  uint8_t key[8];
  key_be(lsn, key);
  MDB_val k = {8, key};
  assert_int_equal(mdb_del(r->txn, r->wal, &k, NULL), 0);
}

/* CRC-32C (Castagnoli, reflected 0x82F63B78), bit by bit: slow and obviously
 * right, independent of src/. crc32c(a || b) = crc32c_update(crc32c(a), b). */
static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/* "crc32c of every byte of the record except these four" (bytes 4..7). */
static uint32_t record_crc(const uint8_t *rec, size_t rec_bytes) {
  uint32_t crc = crc32c_update(0, rec, 4);
  return crc32c_update(crc, rec + 8, rec_bytes - 8);
}

static void write_five_and_close(fixture *f) {
  write_n(f->store, 1, 5, NULL);
  vs_store_close(f->store);
  f->store = NULL;
}

/* Replay from 1 after corrupting record 3: CORRUPT, and the handler saw
 * records 1 and 2 only. */
static void assert_replay_stops_corrupt_at_3(vs_store *store) {
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(store, 1, collect, c), VS_ERR_CORRUPT);
  assert_true(c->n <= 2);
  for (uint32_t i = 0; i < c->n; i++) assert_int_equal(c->recs[i].lsn, i + 1);
  free(c);
}

/* ---- empty log, order, gaplessness ---------------------------------------- */

static void test_wal_empty_log(void **state) {
  fixture *f = *state;
  assert_int_equal(last_lsn(f->store), 0);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 0);
  free(c);
  uint8_t origin[VS_ORIGIN_BYTES], hash[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  vt_origin(origin, 1);
  uint64_t seq = 99, hlc = 99;
  memset(hash, 0xaa, sizeof hash);
  assert_err(vs_wal_head(f->store, origin, &seq, hash, &hlc), VS_OK);
  assert_int_equal(seq, 0);
  assert_memory_equal(hash, zero, VS_HASH_BYTES);
  assert_int_equal(hlc, 0);
}

static void test_wal_writes_get_gapless_lsns_from_1(void **state) {
  fixture *f = *state;
  enum { N = 50 };
  vs_write_result res[N];
  write_n(f->store, 1, N, res);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(res[i].lsn, i + 1);
    assert_int_equal(res[i].seq, i + 1);
  }
  assert_int_equal(last_lsn(f->store), N);

  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, N);
  for (uint32_t i = 0; i < N; i++) {
    char want[32];
    snprintf(want, sizeof want, "payload-%u", i + 1);
    assert_int_equal(c->recs[i].lsn, i + 1);
    assert_int_equal(c->recs[i].seq, i + 1);
    assert_int_equal(c->recs[i].stored_at_ms, T0_MS + i + 1);
    assert_true(vs_op_id_equal(&c->recs[i].id, &res[i].op_id));
    assert_string_equal(c->recs[i].payload, want);
  }
  free(c);
}

static void test_wal_replay_from_middle_lsn(void **state) {
  fixture *f = *state;
  enum { N = 40, FROM = 17 };
  write_n(f->store, 1, N, NULL);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, FROM, collect, c), VS_OK);
  assert_int_equal(c->n, N - FROM + 1);
  for (uint32_t i = 0; i < c->n; i++) {
    assert_int_equal(c->recs[i].lsn, FROM + i);
    assert_int_equal(c->recs[i].seq, FROM + i);
  }
  free(c);
}

static void test_wal_replay_from_0_sees_everything(void **state) {
  fixture *f = *state;
  write_n(f->store, 1, 5, NULL);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 0, collect, c), VS_OK);
  assert_int_equal(c->n, 5);
  assert_int_equal(c->recs[0].lsn, 1);
  free(c);
}

static void test_wal_replay_past_end_sees_nothing(void **state) {
  fixture *f = *state;
  write_n(f->store, 1, 5, NULL);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 6, collect, c), VS_OK);
  assert_int_equal(c->n, 0);
  assert_err(vs_wal_replay(f->store, UINT64_MAX, collect, c), VS_OK);
  assert_int_equal(c->n, 0);
  free(c);
}

static void test_wal_replay_stops_at_first_handler_error(void **state) {
  fixture *f = *state;
  write_n(f->store, 1, 10, NULL);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->stop_at = 4;
  c->stop_err = VS_ERR_LIMIT;
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_ERR_LIMIT);
  assert_int_equal(c->n, 4); /* called for 1..4, not after the error */
  assert_int_equal(c->recs[3].lsn, 4);
  /* Another error value comes back just the same. */
  memset(c, 0, sizeof *c);
  c->stop_at = 1;
  c->stop_err = VS_ERR_NOTFOUND;
  assert_err(vs_wal_replay(f->store, 7, collect, c), VS_ERR_NOTFOUND);
  assert_int_equal(c->n, 1);
  assert_int_equal(c->recs[0].lsn, 7);
  free(c);
}

static void test_wal_record_hash_is_op_hash(void **state) {
  fixture *f = *state;
  write_n(f->store, 1, 5, NULL);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 5);
  for (uint32_t i = 0; i < c->n; i++)
    assert_memory_equal(c->recs[i].hash, c->recs[i].computed_hash, VS_HASH_BYTES);
  free(c);
}

static void test_wal_survives_reopen(void **state) {
  fixture *f = *state;
  write_n(f->store, 1, 8, NULL);
  reopen(f);
  assert_int_equal(last_lsn(f->store), 8);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 8);
  free(c);
}

/* ---- find and head --------------------------------------------------------- */

static void test_wal_find_returns_lsn(void **state) {
  fixture *f = *state;
  enum { N = 12 };
  vs_write_result res[N];
  write_n(f->store, 1, N, res);
  for (uint32_t i = 0; i < N; i++) {
    uint64_t lsn = 0;
    assert_err(vs_wal_find(f->store, &res[i].op_id, &lsn), VS_OK);
    assert_int_equal(lsn, i + 1);
  }
}

static void test_wal_find_unknown_is_notfound(void **state) {
  fixture *f = *state;
  write_n(f->store, 1, 3, NULL);
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, 1);
  vs_op_id id;
  vs_op_id_derive(origin, 4, &id); /* the next one: not written */
  uint64_t lsn = 0;
  assert_err(vs_wal_find(f->store, &id, &lsn), VS_ERR_NOTFOUND);
  vt_origin(origin, 2);
  vs_op_id_derive(origin, 1, &id); /* another origin */
  assert_err(vs_wal_find(f->store, &id, &lsn), VS_ERR_NOTFOUND);
}

static void test_wal_head_tracks_each_origin(void **state) {
  fixture *f = *state;
  vs_write_result a[3], b[2];
  write_n(f->store, 1, 3, a);
  write_n(f->store, 2, 2, b);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 5);

  uint8_t origin[VS_ORIGIN_BYTES], hash[VS_HASH_BYTES];
  uint64_t seq = 0, hlc = 0;
  vt_origin(origin, 1);
  assert_err(vs_wal_head(f->store, origin, &seq, hash, &hlc), VS_OK);
  assert_int_equal(seq, 3);
  assert_int_equal(hlc, a[2].hlc);
  assert_memory_equal(hash, c->recs[2].hash, VS_HASH_BYTES); /* lsn 3 */

  vt_origin(origin, 2);
  assert_err(vs_wal_head(f->store, origin, &seq, hash, &hlc), VS_OK);
  assert_int_equal(seq, 2);
  assert_int_equal(hlc, b[1].hlc);
  assert_memory_equal(hash, c->recs[4].hash, VS_HASH_BYTES); /* lsn 5 */
  /* The second origin's chain starts at seq 1 with a zero prev. */
  uint8_t zero[VS_HASH_BYTES] = {0};
  assert_int_equal(c->recs[3].seq, 1);
  assert_memory_equal(c->recs[3].prev, zero, VS_HASH_BYTES);
  free(c);
}

/* ---- vs_wal_append: chain rules -------------------------------------------- */

#define PEER_SALT 7u

typedef struct peer_op {
  vs_op op;
  uint8_t hash[VS_HASH_BYTES];
  char payload[32];
} peer_op;

/* Build op `seq` of the peer origin with `prev`, hlc and payload text. */
static void peer_make(peer_op *p, uint64_t seq, const uint8_t prev[VS_HASH_BYTES],
                      uint64_t hlc, const char *payload) {
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, PEER_SALT);
  snprintf(p->payload, sizeof p->payload, "%s", payload);
  assert_err(vs_op_init(&p->op, origin, seq, hlc, prev, "put", (const uint8_t *)"t", 1,
                        (const uint8_t *)p->payload, (uint32_t)strlen(p->payload)),
             VS_OK);
  assert_err(vs_op_hash(&p->op, p->hash), VS_OK);
}

/* Ops 1..n of the peer, properly chained. */
static void peer_chain(peer_op *ops, uint32_t n) {
  uint8_t prev[VS_HASH_BYTES] = {0};
  for (uint32_t i = 0; i < n; i++) {
    char payload[32];
    snprintf(payload, sizeof payload, "peer-%u", i + 1);
    peer_make(&ops[i], i + 1, prev, vs_hlc_make(T0_MS + i, 0), payload);
    memcpy(prev, ops[i].hash, VS_HASH_BYTES);
  }
}

typedef struct wal_state {
  uint64_t last_lsn, head_seq, head_hlc;
  uint8_t head_hash[VS_HASH_BYTES];
} wal_state;

static wal_state peer_state(vs_store *store) {
  wal_state s;
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, PEER_SALT);
  s.last_lsn = last_lsn(store);
  assert_err(vs_wal_head(store, origin, &s.head_seq, s.head_hash, &s.head_hlc), VS_OK);
  return s;
}

static void assert_state_equal(const wal_state *a, const wal_state *b) {
  assert_int_equal(a->last_lsn, b->last_lsn);
  assert_int_equal(a->head_seq, b->head_seq);
  assert_int_equal(a->head_hlc, b->head_hlc);
  assert_memory_equal(a->head_hash, b->head_hash, VS_HASH_BYTES);
}

static void test_wal_append_first_op_of_origin(void **state) {
  fixture *f = *state;
  peer_op ops[1];
  peer_chain(ops, 1);
  uint64_t lsn = 0;
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS + 100, &lsn), VS_OK);
  assert_int_equal(lsn, 1);
  wal_state s = peer_state(f->store);
  assert_int_equal(s.last_lsn, 1);
  assert_int_equal(s.head_seq, 1);
  assert_int_equal(s.head_hlc, ops[0].op.hlc);
  assert_memory_equal(s.head_hash, ops[0].hash, VS_HASH_BYTES);
  uint64_t found = 0;
  assert_err(vs_wal_find(f->store, &ops[0].op.id, &found), VS_OK);
  assert_int_equal(found, 1);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 1);
  assert_int_equal(c->recs[0].stored_at_ms, T0_MS + 100);
  assert_memory_equal(c->recs[0].hash, ops[0].hash, VS_HASH_BYTES);
  assert_string_equal(c->recs[0].payload, "peer-1");
  free(c);
}

static void test_wal_append_lsn_out_may_be_null(void **state) {
  fixture *f = *state;
  peer_op ops[1];
  peer_chain(ops, 1);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  assert_int_equal(last_lsn(f->store), 1);
}

static void test_wal_append_extends_chain(void **state) {
  fixture *f = *state;
  enum { N = 6 };
  peer_op ops[N];
  peer_chain(ops, N);
  for (uint32_t i = 0; i < N; i++) {
    uint64_t lsn = 0;
    assert_err(vs_wal_append(f->store, &ops[i].op, T0_MS, &lsn), VS_OK);
    assert_int_equal(lsn, i + 1);
  }
  wal_state s = peer_state(f->store);
  assert_int_equal(s.head_seq, N);
  assert_memory_equal(s.head_hash, ops[N - 1].hash, VS_HASH_BYTES);
}

static void test_wal_append_seq_gap_is_chain_error(void **state) {
  fixture *f = *state;
  peer_op ops[3];
  peer_chain(ops, 3);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  wal_state before = peer_state(f->store);
  assert_err(vs_wal_append(f->store, &ops[2].op, T0_MS, NULL), VS_ERR_CHAIN); /* seq 3 after 1 */
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
  uint64_t lsn = 0;
  assert_err(vs_wal_find(f->store, &ops[2].op.id, &lsn), VS_ERR_NOTFOUND);
}

static void test_wal_append_first_op_not_seq_1_is_chain_error(void **state) {
  fixture *f = *state;
  peer_op ops[2];
  peer_chain(ops, 2);
  wal_state before = peer_state(f->store);
  assert_err(vs_wal_append(f->store, &ops[1].op, T0_MS, NULL), VS_ERR_CHAIN);
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
  assert_int_equal(after.last_lsn, 0);
}

static void test_wal_append_wrong_prev_is_chain_error(void **state) {
  fixture *f = *state;
  peer_op ops[2];
  peer_chain(ops, 2);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  uint8_t bad_prev[VS_HASH_BYTES];
  memcpy(bad_prev, ops[0].hash, VS_HASH_BYTES);
  bad_prev[VS_HASH_BYTES - 1] ^= 0x01;
  peer_op bad;
  peer_make(&bad, 2, bad_prev, vs_hlc_make(T0_MS + 1, 0), "peer-2");
  wal_state before = peer_state(f->store);
  assert_err(vs_wal_append(f->store, &bad.op, T0_MS, NULL), VS_ERR_CHAIN);
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
  /* The right one still goes in afterwards. */
  assert_err(vs_wal_append(f->store, &ops[1].op, T0_MS, NULL), VS_OK);
}

static void test_wal_append_seq_1_with_nonzero_prev_is_chain_error(void **state) {
  fixture *f = *state;
  uint8_t prev[VS_HASH_BYTES] = {0};
  prev[0] = 1;
  peer_op bad;
  peer_make(&bad, 1, prev, vs_hlc_make(T0_MS, 0), "peer-1");
  assert_err(vs_wal_append(f->store, &bad.op, T0_MS, NULL), VS_ERR_CHAIN);
  assert_int_equal(last_lsn(f->store), 0);
}

static void test_wal_append_same_op_again_is_exists(void **state) {
  fixture *f = *state;
  peer_op ops[1];
  peer_chain(ops, 1);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  wal_state before = peer_state(f->store);
  uint64_t lsn = 0;
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS + 5, &lsn), VS_ERR_EXISTS);
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
  assert_int_equal(after.last_lsn, 1);
  /* The stored record is the first one, with its first stored_at. */
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 1);
  assert_int_equal(c->recs[0].stored_at_ms, T0_MS);
  free(c);
}

static void test_wal_append_older_op_again_is_exists(void **state) {
  fixture *f = *state;
  peer_op ops[3];
  peer_chain(ops, 3);
  for (uint32_t i = 0; i < 3; i++)
    assert_err(vs_wal_append(f->store, &ops[i].op, T0_MS, NULL), VS_OK);
  wal_state before = peer_state(f->store);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_ERR_EXISTS);
  assert_err(vs_wal_append(f->store, &ops[1].op, T0_MS, NULL), VS_ERR_EXISTS);
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
}

static void test_wal_append_same_seq_other_payload_is_fork(void **state) {
  fixture *f = *state;
  peer_op ops[1];
  peer_chain(ops, 1);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  uint8_t zero[VS_HASH_BYTES] = {0};
  peer_op other;
  peer_make(&other, 1, zero, ops[0].op.hlc, "something else");
  wal_state before = peer_state(f->store);
  assert_err(vs_wal_append(f->store, &other.op, T0_MS, NULL), VS_ERR_FORK);
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
  /* The first one stays. */
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 1);
  assert_string_equal(c->recs[0].payload, "peer-1");
  assert_memory_equal(c->recs[0].hash, ops[0].hash, VS_HASH_BYTES);
  free(c);
}

static void test_wal_append_same_seq_other_hlc_is_fork(void **state) {
  fixture *f = *state;
  peer_op ops[1];
  peer_chain(ops, 1);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  uint8_t zero[VS_HASH_BYTES] = {0};
  peer_op other;
  peer_make(&other, 1, zero, ops[0].op.hlc + 1, "peer-1");
  wal_state before = peer_state(f->store);
  assert_err(vs_wal_append(f->store, &other.op, T0_MS, NULL), VS_ERR_FORK);
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
}

static void test_wal_append_fork_of_older_seq(void **state) {
  fixture *f = *state;
  peer_op ops[2];
  peer_chain(ops, 2);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  assert_err(vs_wal_append(f->store, &ops[1].op, T0_MS, NULL), VS_OK);
  uint8_t zero[VS_HASH_BYTES] = {0};
  peer_op other;
  peer_make(&other, 1, zero, ops[0].op.hlc, "forked");
  wal_state before = peer_state(f->store);
  assert_err(vs_wal_append(f->store, &other.op, T0_MS, NULL), VS_ERR_FORK);
  wal_state after = peer_state(f->store);
  assert_state_equal(&before, &after);
}

static void test_wal_append_invalid_op_changes_nothing(void **state) {
  fixture *f = *state;
  peer_op ops[1];
  peer_chain(ops, 1);
  vs_op bad = ops[0].op;
  memcpy(bad.kind, "bad kind", 9); /* a space is outside 0x21..0x7e */
  bad.kind_bytes = 8;
  assert_err(vs_wal_append(f->store, &bad, T0_MS, NULL), VS_ERR_MALFORMED);
  assert_int_equal(last_lsn(f->store), 0);
  wal_state s = peer_state(f->store);
  assert_int_equal(s.head_seq, 0);
}

/* vs_write reads the chain head inside its transaction, so a local write
 * for an origin whose ops arrived whole continues that chain. */
static void test_wal_write_extends_appended_chain(void **state) {
  fixture *f = *state;
  peer_op ops[2];
  peer_chain(ops, 2);
  assert_err(vs_wal_append(f->store, &ops[0].op, T0_MS, NULL), VS_OK);
  assert_err(vs_wal_append(f->store, &ops[1].op, T0_MS, NULL), VS_OK);
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, PEER_SALT);
  vs_write_req req = {.kind = "put", .target = (const uint8_t *)"t", .target_bytes = 1,
                      .payload = (const uint8_t *)"x", .payload_bytes = 1};
  vs_write_result r;
  /* A wall clock behind the stored hlc: the hlc still grows. */
  assert_err(vs_write(f->store, origin, &req, T0_MS - 1000, &r), VS_OK);
  assert_int_equal(r.seq, 3);
  assert_int_equal(r.lsn, 3);
  assert_int_equal(r.hlc, ops[1].op.hlc + 1);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 3, collect, c), VS_OK);
  assert_int_equal(c->n, 1);
  assert_memory_equal(c->recs[0].prev, ops[1].hash, VS_HASH_BYTES);
  free(c);
}

/* ---- the record layout ------------------------------------------------------ */

static void test_wal_record_layout_matches_header(void **state) {
  fixture *f = *state;
  vs_write_result res[2];
  write_n(f->store, 1, 2, res);
  vs_store_close(f->store);
  f->store = NULL;

  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  for (uint64_t lsn = 1; lsn <= 2; lsn++) {
    size_t n = raw_get(&r, lsn, buf, sizeof buf);
    assert_true(n > VS_WAL_RECORD_HEADER_BYTES);
    assert_int_equal(buf[0], VS_WAL_RECORD_VERSION);
    assert_int_equal(buf[1], 1); /* type: operation */
    assert_int_equal(buf[2], 0);
    assert_int_equal(buf[3], 0);
    assert_int_equal(vt_get_u32le(buf + 4), record_crc(buf, n));
    assert_int_equal(vt_get_u64le(buf + 8), lsn);
    assert_int_equal(vt_get_u64le(buf + 16), T0_MS + lsn);

    vs_op op;
    assert_err(vs_op_decode(buf + VS_WAL_RECORD_HEADER_BYTES, n - VS_WAL_RECORD_HEADER_BYTES, &op),
               VS_OK);
    assert_int_equal(op.seq, lsn);
    assert_true(vs_op_id_equal(&op.id, &res[lsn - 1].op_id));
    assert_int_equal(op.hlc, res[lsn - 1].hlc);
    assert_string_equal(op.kind, "put");
    char want[32];
    snprintf(want, sizeof want, "payload-%llu", (unsigned long long)lsn);
    assert_int_equal(op.payload_bytes, strlen(want));
    assert_memory_equal(op.payload, want, op.payload_bytes);
    assert_int_equal(vs_op_encoded_bytes(&op), n - VS_WAL_RECORD_HEADER_BYTES);
  }
  raw_commit(&r);
  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
}

/* ---- corruption --------------------------------------------------------------- */

static void test_wal_replay_detects_flipped_payload_byte(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  size_t n = raw_get(&r, 3, buf, sizeof buf);
  buf[n - 1] ^= 0x20; /* the last byte of the payload: "payload-3" -> "payload-\x13" */
  raw_put(&r, 3, buf, n);
  raw_commit(&r);

  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  assert_replay_stops_corrupt_at_3(f->store);
  /* Records after the bad one are still readable on their own. */
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 4, collect, c), VS_OK);
  assert_int_equal(c->n, 2);
  assert_int_equal(c->recs[0].lsn, 4);
  free(c);
}

static void test_wal_replay_detects_flipped_header_byte(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  size_t n = raw_get(&r, 3, buf, sizeof buf);
  buf[16] ^= 0x01; /* stored_at_ms: covered by the checksum too */
  raw_put(&r, 3, buf, n);
  raw_commit(&r);

  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  assert_replay_stops_corrupt_at_3(f->store);
}

static void test_wal_replay_detects_flipped_crc(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  size_t n = raw_get(&r, 3, buf, sizeof buf);
  buf[5] ^= 0x80;
  raw_put(&r, 3, buf, n);
  raw_commit(&r);

  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  assert_replay_stops_corrupt_at_3(f->store);
}

static void test_wal_replay_detects_truncated_record(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  (void)raw_get(&r, 3, buf, sizeof buf);
  raw_put(&r, 3, buf, 10); /* shorter than the record header */
  raw_commit(&r);

  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  assert_replay_stops_corrupt_at_3(f->store);
}

/* A missing LSN is a gap that compaction leaves (store format 6: the ops
 * folded below a horizon leave the WAL): replay steps over it, in order. */
static void test_wal_replay_steps_over_gaps(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  raw r;
  raw_open(f->dir, &r);
  raw_del(&r, 3);
  raw_commit(&r);

  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  collector *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_err(vs_wal_replay(f->store, 1, collect, c), VS_OK);
  assert_int_equal(c->n, 4);
  static const uint64_t want[] = {1, 2, 4, 5};
  for (uint32_t i = 0; i < c->n; i++) assert_int_equal(c->recs[i].lsn, want[i]);
  c->n = 0;
  assert_err(vs_wal_replay(f->store, 3, collect, c), VS_OK); /* from the gap: the next record on */
  assert_int_equal(c->n, 2);
  assert_int_equal(c->recs[0].lsn, 4);
  free(c);
}

/* A record whose checksum is right but whose operation does not decode
 * (unknown op version) is corrupt as well. */
static void test_wal_replay_detects_undecodable_record_with_valid_crc(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  size_t n = raw_get(&r, 3, buf, sizeof buf);
  assert_int_equal(vt_get_u32le(buf + 4), record_crc(buf, n)); /* our CRC agrees first */
  buf[VS_WAL_RECORD_HEADER_BYTES] = 99; /* op version */
  vt_put_u32le(buf + 4, record_crc(buf, n));
  raw_put(&r, 3, buf, n);
  raw_commit(&r);

  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  assert_replay_stops_corrupt_at_3(f->store);
}

/* A record whose LSN field disagrees with its key (checksum recomputed) fails
 * the ordering check. */
static void test_wal_replay_detects_lsn_field_mismatch(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  size_t n = raw_get(&r, 3, buf, sizeof buf);
  assert_int_equal(vt_get_u32le(buf + 4), record_crc(buf, n));
  vt_put_u64le(buf + 8, 7);
  vt_put_u32le(buf + 4, record_crc(buf, n));
  raw_put(&r, 3, buf, n);
  raw_commit(&r);

  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);
  assert_replay_stops_corrupt_at_3(f->store);
}

/* ---- the WAL reader (src/internal.h) -------------------------------------------- */

/* A read transaction with a reader on it. */
typedef struct wal_rd {
  MDB_txn *txn;
  vs_wal_reader r;
} wal_rd;

static void rd_open(vs_store *store, wal_rd *rd) {
  assert_err(vs_txn_begin(store, false, &rd->txn), VS_OK);
  assert_err(vs_wal_reader_open(rd->txn, store, &rd->r), VS_OK);
}

static void rd_close(wal_rd *rd) {
  vs_wal_reader_close(&rd->r);
  assert_null(rd->r.cur);
  vs_wal_reader_close(&rd->r); /* twice is harmless */
  mdb_txn_abort(rd->txn);
}

/* Read `lsn` through the reader and through vs_wal_op_encoded_txn in the
 * same transaction: the same code, and when VS_OK the same bytes, which
 * decode to op `lsn` of write_n (one origin: seq == lsn). */
static void rd_expect(vs_store *store, wal_rd *rd, uint64_t lsn, vs_err want) {
  const uint8_t *enc = NULL, *ref = NULL;
  uint32_t enc_bytes = 0, ref_bytes = 0;
  vs_err got = vs_wal_reader_op(&rd->r, lsn, &enc, &enc_bytes);
  if (got != want)
    fail_msg("reader at lsn %llu: got %s, want %s", (unsigned long long)lsn, vs_err_name(got), vs_err_name(want));
  assert_err(vs_wal_op_encoded_txn(rd->txn, store, lsn, &ref, &ref_bytes), want);
  if (want != VS_OK) return;
  assert_non_null(enc);
  assert_int_equal(enc_bytes, ref_bytes);
  assert_memory_equal(enc, ref, enc_bytes);
  vs_op op;
  assert_err(vs_op_decode(enc, enc_bytes, &op), VS_OK);
  assert_int_equal(op.seq, lsn);
  uint8_t payload[32];
  uint32_t pb = payload_of(lsn, payload, sizeof payload);
  assert_int_equal(op.payload_bytes, pb);
  assert_memory_equal(op.payload, payload, pb);
}

static void test_wal_reader_reads_in_order_and_by_seeks(void **state) {
  fixture *f = *state;
  wal_rd rd;
  rd_open(f->store, &rd); /* an empty log */
  rd_expect(f->store, &rd, 1, VS_ERR_NOTFOUND);
  rd_expect(f->store, &rd, 0, VS_ERR_NOTFOUND);
  rd_close(&rd);

  write_n(f->store, 1, 10, NULL);
  rd_open(f->store, &rd);
  for (uint64_t lsn = 1; lsn <= 10; lsn++) rd_expect(f->store, &rd, lsn, VS_OK); /* steps */
  rd_expect(f->store, &rd, 11, VS_ERR_NOTFOUND); /* a step past the end */
  rd_expect(f->store, &rd, 10, VS_OK);           /* and it still reads */
  /* Out of order, backwards, the same LSN twice, steps after seeks. */
  static const uint64_t order[] = {7, 3, 4, 5, 10, 1, 1, 2, 9, 8, 6, 7};
  for (uint32_t i = 0; i < sizeof order / sizeof order[0]; i++) rd_expect(f->store, &rd, order[i], VS_OK);
  rd_expect(f->store, &rd, 12, VS_ERR_NOTFOUND); /* a seek past the end */
  rd_expect(f->store, &rd, UINT64_MAX, VS_ERR_NOTFOUND);
  rd_expect(f->store, &rd, 0, VS_ERR_NOTFOUND);
  rd_expect(f->store, &rd, 4, VS_OK);
  rd_expect(f->store, &rd, 5, VS_OK);
  rd_close(&rd);
}

/* A missing LSN: NOTFOUND whether the reader steps onto the gap or seeks
 * it, and the next read works. */
static void test_wal_reader_missing_lsn_is_notfound(void **state) {
  fixture *f = *state;
  write_five_and_close(f);
  raw r;
  raw_open(f->dir, &r);
  raw_del(&r, 3);
  raw_commit(&r);
  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);

  wal_rd rd;
  rd_open(f->store, &rd);
  rd_expect(f->store, &rd, 1, VS_OK);
  rd_expect(f->store, &rd, 2, VS_OK);
  rd_expect(f->store, &rd, 3, VS_ERR_NOTFOUND); /* a step: the next record is 4 */
  rd_expect(f->store, &rd, 4, VS_OK);
  rd_expect(f->store, &rd, 5, VS_OK);
  rd_expect(f->store, &rd, 3, VS_ERR_NOTFOUND); /* a seek */
  rd_expect(f->store, &rd, 2, VS_OK);
  rd_expect(f->store, &rd, 3, VS_ERR_NOTFOUND);
  rd_expect(f->store, &rd, 5, VS_OK); /* a seek after a failed step */
  rd_expect(f->store, &rd, 6, VS_ERR_NOTFOUND);
  rd_expect(f->store, &rd, 1, VS_OK);
  rd_close(&rd);
}

/* A flipped payload byte (2), an LSN field that disagrees with its key
 * under a right checksum (4), a record shorter than its header (6): CORRUPT
 * stepping or seeking, and the records around them still read. */
static void test_wal_reader_detects_corrupt_records(void **state) {
  fixture *f = *state;
  write_n(f->store, 1, 7, NULL);
  vs_store_close(f->store);
  f->store = NULL;
  static uint8_t buf[VS_WAL_RECORD_HEADER_BYTES + VS_OP_ENCODED_BYTES_MAX];
  raw r;
  raw_open(f->dir, &r);
  size_t n = raw_get(&r, 2, buf, sizeof buf);
  buf[n - 1] ^= 0x20;
  raw_put(&r, 2, buf, n);
  n = raw_get(&r, 4, buf, sizeof buf);
  assert_int_equal(vt_get_u32le(buf + 4), record_crc(buf, n));
  vt_put_u64le(buf + 8, 5);
  vt_put_u32le(buf + 4, record_crc(buf, n));
  raw_put(&r, 4, buf, n);
  (void)raw_get(&r, 6, buf, sizeof buf);
  raw_put(&r, 6, buf, 10);
  raw_commit(&r);
  assert_err(vt_store_open(f->dir, MAP_BYTES, &f->store), VS_OK);

  wal_rd rd;
  rd_open(f->store, &rd);
  for (uint64_t lsn = 1; lsn <= 7; lsn++) rd_expect(f->store, &rd, lsn, lsn % 2 == 0 ? VS_ERR_CORRUPT : VS_OK);
  static const uint64_t order[] = {6, 7, 2, 3, 4, 5, 1};
  for (uint32_t i = 0; i < sizeof order / sizeof order[0]; i++)
    rd_expect(f->store, &rd, order[i], order[i] % 2 == 0 ? VS_ERR_CORRUPT : VS_OK);
  rd_close(&rd);
}

/* Issue 14, item 9: op-id v1 kept 80 bits of the origin's hash, so two
 * origins an attacker picks share a tag after ~2^40 key generations and the
 * second one's ops were refused as already held. Forge such a pair (b's id
 * takes a's first 10 bytes, as a v1 tag collision would make it) and put
 * both into the op-id index through the WAL's internal append: both are
 * held, each found with its own LSN and hash, because ids now carry 128
 * bits of tag and differ in bytes 10..15. */
static void test_wal_opid_index_tells_apart_ids_equal_in_80_bits(void **state) {
  fixture *f = *state;
  uint8_t oa[VS_ORIGIN_BYTES], ob[VS_ORIGIN_BYTES];
  vt_origin(oa, 0x61);
  vt_origin(ob, 0x62);
  vs_op a, b;
  assert_err(vs_op_init(&a, oa, 1, 10, NULL, "put", (const uint8_t *)"k", 1, (const uint8_t *)"a", 1), VS_OK);
  assert_err(vs_op_init(&b, ob, 1, 10, NULL, "put", (const uint8_t *)"k", 1, (const uint8_t *)"b", 1), VS_OK);
  memcpy(b.id.bytes, a.id.bytes, 10); /* the v1 tag: 80 bits */

  MDB_txn *txn = NULL;
  uint8_t ha[VS_HASH_BYTES], hb[VS_HASH_BYTES];
  assert_err(vs_txn_begin(f->store, true, &txn), VS_OK);
  assert_err(vs_wal_append_txn(txn, f->store, &a, NULL, 1, T0_MS, NULL, true, ha), VS_OK);
  assert_err(vs_wal_append_txn(txn, f->store, &b, NULL, 2, T0_MS, NULL, true, hb), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);

  uint64_t lsn = 0;
  assert_err(vs_wal_find(f->store, &a.id, &lsn), VS_OK);
  assert_int_equal(lsn, 1);
  assert_err(vs_wal_find(f->store, &b.id, &lsn), VS_OK);
  assert_int_equal(lsn, 2);
  uint8_t got[VS_HASH_BYTES];
  assert_err(vs_txn_begin(f->store, false, &txn), VS_OK);
  assert_err(vs_opid_get(txn, f->store, &a.id, &lsn, got), VS_OK);
  assert_memory_equal(got, ha, VS_HASH_BYTES);
  assert_err(vs_opid_get(txn, f->store, &b.id, &lsn, got), VS_OK);
  assert_memory_equal(got, hb, VS_HASH_BYTES);
  assert_int_not_equal(memcmp(ha, hb, VS_HASH_BYTES), 0);
  /* Bytes 10..15 take part in the key: a third id that differs from a only
   * there is not held. */
  vs_op_id c = a.id;
  c.bytes[12] ^= 0x40;
  assert_err(vs_opid_get(txn, f->store, &c, NULL, NULL), VS_ERR_NOTFOUND);
  mdb_txn_abort(txn);
  assert_false(vs_op_id_equal(&a.id, &b.id));
  assert_false(vs_op_id_same_origin(&a.id, &b.id));
  assert_int_equal(vs_op_id_seq(&b.id), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_wal_empty_log),
      T(test_wal_writes_get_gapless_lsns_from_1),
      T(test_wal_replay_from_middle_lsn),
      T(test_wal_replay_from_0_sees_everything),
      T(test_wal_replay_past_end_sees_nothing),
      T(test_wal_replay_stops_at_first_handler_error),
      T(test_wal_record_hash_is_op_hash),
      T(test_wal_survives_reopen),
      T(test_wal_find_returns_lsn),
      T(test_wal_find_unknown_is_notfound),
      T(test_wal_opid_index_tells_apart_ids_equal_in_80_bits),
      T(test_wal_head_tracks_each_origin),
      T(test_wal_append_first_op_of_origin),
      T(test_wal_append_lsn_out_may_be_null),
      T(test_wal_append_extends_chain),
      T(test_wal_append_seq_gap_is_chain_error),
      T(test_wal_append_first_op_not_seq_1_is_chain_error),
      T(test_wal_append_wrong_prev_is_chain_error),
      T(test_wal_append_seq_1_with_nonzero_prev_is_chain_error),
      T(test_wal_append_same_op_again_is_exists),
      T(test_wal_append_older_op_again_is_exists),
      T(test_wal_append_same_seq_other_payload_is_fork),
      T(test_wal_append_same_seq_other_hlc_is_fork),
      T(test_wal_append_fork_of_older_seq),
      T(test_wal_append_invalid_op_changes_nothing),
      T(test_wal_write_extends_appended_chain),
      T(test_wal_record_layout_matches_header),
      T(test_wal_replay_detects_flipped_payload_byte),
      T(test_wal_replay_detects_flipped_header_byte),
      T(test_wal_replay_detects_flipped_crc),
      T(test_wal_replay_detects_truncated_record),
      T(test_wal_replay_steps_over_gaps),
      T(test_wal_replay_detects_undecodable_record_with_valid_crc),
      T(test_wal_replay_detects_lsn_field_mismatch),
      T(test_wal_reader_reads_in_order_and_by_seeks),
      T(test_wal_reader_missing_lsn_is_notfound),
      T(test_wal_reader_detects_corrupt_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
