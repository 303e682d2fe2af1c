/* Crash torture: kill -9 a writer at seeded random instants, hundreds of
 * times, and prove that no acknowledged write is ever lost (G2) and that
 * every idempotency key takes effect exactly once (G4).
 *
 * A child process opens the store itself (an LMDB environment never crosses
 * fork) and writes key k<N>, N = 1, 2, ... with vs_write in sync mode; after
 * each VS_OK it sends (N, op id, duplicate) to the parent through a pipe.
 * Some children also hold the owner lock and claim outbox entries, so kills
 * leave INFLIGHT entries behind. The parent kills the child with SIGKILL after
 * a random delay or a random number of acks, reopens the store and checks:
 *
 *   - the WAL replays gapless from LSN 1, one record per key, keys 1..count
 *     with count = acked or acked + 1 (the one write that may have committed
 *     without its ack reaching us);
 *   - every acknowledged op id has its record (vs_wal_find), its outbox entry
 *     on the default sink, and its key maps to it (vs_write_idem_lookup);
 *   - no op id appears twice; the chain head matches the last record;
 *   - the owner's vs_outbox_requeue_inflight leaves nothing INFLIGHT and the
 *     per-state counts add up to the number of operations.
 *
 * The next child first repeats the first unacknowledged key with the same
 * arguments: if its predecessor had committed it, vs_write must answer
 * duplicate = true with the committed op's id, otherwise write it anew.
 *
 * Timing decides only when a kill lands, never whether a check passes: every
 * check is an invariant that holds after a kill at any instant. The seed is
 * printed; VS_TORTURE_SEED and VS_TORTURE_KILLS override the defaults.
 */
#define _XOPEN_SOURCE 700

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "vixsync/vixsync.h"
#include "outbox_step.h" /* internal: claim_ready, complete */

#define TT_SEED_DEFAULT 0x7a11c0ffee5eed01ull
#define TT_KILLS_DEFAULT 240u
#define TT_KILLS_MAX 100000u
/* A child writes at most this many keys, then waits for its kill. */
#define TT_CHILD_WRITES_MAX 4000u
#define TT_KILL_DELAY_US_MAX 20000u
#define TT_ACKS_WAIT_MAX 40u
#define TT_POLL_MS 20000
#define TT_MAP_BYTES (64ull * 1024ull * 1024ull)
#define TT_PAYLOAD_BYTES 40u
#define TT_TARGETS 7u
#define TT_LEASE_MS (3600ull * 1000ull)
#define TT_CLAIM_BATCH 8u
#define TT_ORIGIN_SALT 0x5a

/* Ack record on the pipe: n u64le, op id, duplicate u8, padding. A fixed
 * size below PIPE_BUF, so each write(2) is atomic and a kill never leaves a
 * torn record. */
#define TT_ACK_BYTES 40u
_Static_assert(TT_ACK_BYTES <= 512, "pipe writes up to PIPE_BUF are atomic");
_Static_assert(8u + VS_OP_ID_BYTES + 1u <= TT_ACK_BYTES, "n, op id and duplicate fit a record");

/* Child exit codes; the child names the failing call on stderr. */
enum { TT_CHILD_OPEN = 10, TT_CHILD_OUTBOX = 11, TT_CHILD_LOCK = 12, TT_CHILD_WRITE = 13,
       TT_CHILD_PIPE = 14, TT_CHILD_CLAIM = 15, TT_CHILD_COMPLETE = 16 };

/* ---- seeded PRNG (splitmix64): the test's only source of randomness ---- */

static uint64_t tt_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Also used in the child, so a plain assert (a cmocka failure would longjmp
 * into the parent's copy of the test). */
static uint64_t tt_rand_below(uint64_t *state, uint64_t bound) {
  assert(bound > 0);
  return tt_rand(state) % bound;
}

static uint64_t tt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void tt_sleep_us(uint64_t us) {
  struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void tt_put_u64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t tt_get_u64le(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* ---- the write of key N: its arguments are a pure function of N ---- */

typedef struct tt_req_buf {
  char key[24];
  uint8_t target[8];
  uint8_t payload[TT_PAYLOAD_BYTES];
  vs_write_req req;
} tt_req_buf;

static uint8_t tt_filler(uint64_t n, uint32_t i) { return (uint8_t)((n * 131u + i * 7u) ^ 0xa5u); }

/* So a repeat carries the same (kind, target, payload) and the WAL can be
 * mapped back to keys: the payload starts with N as u64le. */
static void tt_req_for(uint64_t n, tt_req_buf *b) {
  int len = snprintf(b->key, sizeof b->key, "k%" PRIu64, n);
  assert(len > 0 && (size_t)len < sizeof b->key);
  b->target[0] = 't';
  b->target[1] = (uint8_t)('0' + n % TT_TARGETS);
  tt_put_u64le(b->payload, n);
  for (uint32_t i = 8; i < TT_PAYLOAD_BYTES; i++) b->payload[i] = tt_filler(n, i);
  b->req = (vs_write_req){.kind = "put",
                          .target = b->target,
                          .target_bytes = 2,
                          .payload = b->payload,
                          .payload_bytes = TT_PAYLOAD_BYTES,
                          .idem_key = (const uint8_t *)b->key,
                          .idem_key_bytes = (uint32_t)len};
}

static vs_store_cfg tt_store_cfg(bool create) {
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_SYNC;
  cfg.map_bytes = TT_MAP_BYTES;
  cfg.create = create;
  return cfg;
}

/* ---- the child: writes until killed. Never returns. ---- */

static void tt_child_die(int code, const char *what, vs_err err) {
  fprintf(stderr, "torture child %d: %s: %s\n", (int)getpid(), what, vs_err_name(err));
  _exit(code);
}

static void tt_child_send(int fd, uint64_t n, const vs_write_result *res) {
  uint8_t rec[TT_ACK_BYTES] = {0};
  tt_put_u64le(rec, n);
  memcpy(rec + 8, res->op_id.bytes, VS_OP_ID_BYTES);
  rec[8 + VS_OP_ID_BYTES] = res->duplicate ? 1u : 0u;
  ssize_t w;
  do {
    w = write(fd, rec, sizeof rec);
  } while (w < 0 && errno == EINTR);
  if (w != (ssize_t)sizeof rec) tt_child_die(TT_CHILD_PIPE, "ack write", VS_OK);
}

/* Claim a few ready entries (INFLIGHT at kill time) and sometimes complete
 * one, so every outbox state is in play when the kill lands. */
static void tt_child_claim(vs_outbox *ob, uint64_t *rng) {
  vs_outbox_entry entries[TT_CLAIM_BATCH];
  uint32_t count = 0;
  uint32_t want = 1u + (uint32_t)tt_rand_below(rng, TT_CLAIM_BATCH);
  vs_err err = vs_outbox_claim_ready(ob, tt_now_ms(), TT_LEASE_MS, want, entries, &count);
  if (err != VS_OK) tt_child_die(TT_CHILD_CLAIM, "vs_outbox_claim_ready", err);
  if (count > want) tt_child_die(TT_CHILD_CLAIM, "claimed more than asked", VS_OK);
  if (count > 0 && tt_rand_below(rng, 3) == 0) {
    err = vs_outbox_complete(ob, &entries[0].op_id, tt_now_ms());
    if (err != VS_OK) tt_child_die(TT_CHILD_COMPLETE, "vs_outbox_complete", err);
  }
}

static void tt_child_main(const char *dir, const uint8_t *origin, uint64_t first_n, uint64_t seed,
                          int fd) {
  uint64_t rng = seed;
  vs_store_cfg cfg = tt_store_cfg(false);
  vs_store *store = NULL;
  vs_err err = vs_store_open(dir, &cfg, &store);
  if (err != VS_OK) tt_child_die(TT_CHILD_OPEN, "vs_store_open", err);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  vs_outbox *ob = NULL;
  err = vs_outbox_open(store, &ocfg, &ob);
  if (err != VS_OK) tt_child_die(TT_CHILD_OUTBOX, "vs_outbox_open", err);
  /* Half the children act as the engine's owner and claim entries. */
  bool claimer = tt_rand_below(&rng, 2) == 0;
  if (claimer) {
    err = vs_store_lock_owner(store);
    if (err != VS_OK) tt_child_die(TT_CHILD_LOCK, "vs_store_lock_owner", err);
  }
  for (uint64_t i = 0; i < TT_CHILD_WRITES_MAX; i++) {
    tt_req_buf b;
    tt_req_for(first_n + i, &b);
    vs_write_result res;
    memset(&res, 0, sizeof res);
    err = vs_write(store, origin, &b.req, tt_now_ms(), &res);
    if (err != VS_OK) tt_child_die(TT_CHILD_WRITE, "vs_write", err);
    tt_child_send(fd, first_n + i, &res);
    if (claimer && tt_rand_below(&rng, 3) == 0) tt_child_claim(ob, &rng);
  }
  /* Out of work: wait for the kill (bounded: the parent kills long before). */
  for (int i = 0; i < 600; i++) tt_sleep_us(100000);
  _exit(0);
}

/* ---- the parent's model of what must be in the store ---- */

typedef struct tt_ctx {
  char dir[512];
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seed;
  uint32_t kill_index;
  uint64_t cap;             /* keys the arrays can hold */
  uint64_t acked;           /* keys 1..acked are acknowledged */
  vs_op_id *acked_id;       /* [n] the id the writer was given for key n */
  /* After the last check: whether key acked+1 had committed without an ack,
   * and as which op. The next child's repeat must agree. */
  bool pending_committed;
  vs_op_id pending_id;
  bool first_ack_of_child;
  /* Filled by a replay. */
  uint64_t records;
  uint64_t *lsn_by_n;       /* [n] LSN of key n's record, 0 = none */
  vs_op_id *id_by_n;        /* [n] op id of key n's record */
  uint8_t last_hash[VS_HASH_BYTES];
  char fail[256];           /* first failure seen inside a replay handler */
  /* Figures. */
  uint64_t kills;
  uint64_t duplicates;      /* repeats answered duplicate = true */
  uint64_t inflight_kills;  /* kills that left INFLIGHT entries */
  uint64_t inflight_requeued;
  uint64_t delay_kills, ack_kills;
  pid_t child;              /* the live writer, 0 if none (for the teardown) */
  bool passed;
} tt_ctx;

static int tt_cmp_id(const void *a, const void *b) {
  return memcmp(((const vs_op_id *)a)->bytes, ((const vs_op_id *)b)->bytes, VS_OP_ID_BYTES);
}

static vs_err tt_replay_fail(tt_ctx *c, const vs_wal_record *r, const char *what) {
  if (c->fail[0] == '\0')
    snprintf(c->fail, sizeof c->fail, "record lsn %" PRIu64 ": %s", r->lsn, what);
  return VS_ERR_INVAL;
}

/* One record: check it is key N's write, exactly as the writer asked, and
 * that N has no other record. */
static vs_err tt_replay_record(const vs_wal_record *r, void *ctx) {
  tt_ctx *c = ctx;
  if (r->lsn != c->records + 1) return tt_replay_fail(c, r, "LSN gap");
  c->records = r->lsn;
  /* Only writes of ours: a record beyond acked + 1 is a write nobody made. */
  if (r->lsn > c->acked + 1) return tt_replay_fail(c, r, "more records than writes");
  if (r->op.seq != r->lsn) return tt_replay_fail(c, r, "single origin: seq must equal LSN");
  if (memcmp(r->op.origin, c->origin, VS_ORIGIN_BYTES) != 0) return tt_replay_fail(c, r, "origin");
  if (r->op.payload_bytes != TT_PAYLOAD_BYTES) return tt_replay_fail(c, r, "payload size");
  uint64_t n = tt_get_u64le(r->op.payload);
  if (n == 0 || n > c->acked + 1) return tt_replay_fail(c, r, "key out of range");
  if (c->lsn_by_n[n] != 0) return tt_replay_fail(c, r, "key written twice");
  tt_req_buf b;
  tt_req_for(n, &b);
  if (strcmp(r->op.kind, "put") != 0 || r->op.target_bytes != b.req.target_bytes ||
      memcmp(r->op.target, b.target, b.req.target_bytes) != 0 ||
      memcmp(r->op.payload, b.payload, TT_PAYLOAD_BYTES) != 0)
    return tt_replay_fail(c, r, "arguments differ from the write");
  c->lsn_by_n[n] = r->lsn;
  c->id_by_n[n] = r->op.id;
  memcpy(c->last_hash, r->op_hash, VS_HASH_BYTES);
  return VS_OK;
}

/* Replay the whole WAL into lsn_by_n/id_by_n and check its shape. */
static void tt_check_wal(tt_ctx *c, vs_store *store) {
  memset(c->lsn_by_n, 0, (size_t)(c->acked + 2) * sizeof c->lsn_by_n[0]);
  c->records = 0;
  c->fail[0] = '\0';
  vs_err err = vs_wal_replay(store, 1, tt_replay_record, c);
  if (c->fail[0] != '\0') fail_msg("kill %u: %s", c->kill_index, c->fail);
  assert_int_equal(err, VS_OK);
  /* Keys are written one after another, so what committed is 1..acked or
   * 1..acked+1; distinct keys in range and this count make it contiguous. */
  if (c->records != c->acked && c->records != c->acked + 1)
    fail_msg("kill %u: %" PRIu64 " records for %" PRIu64 " acknowledged writes", c->kill_index,
             c->records, c->acked);
  for (uint64_t n = 1; n <= c->records; n++)
    if (c->lsn_by_n[n] == 0) fail_msg("kill %u: key k%" PRIu64 " missing", c->kill_index, n);
  uint64_t last = UINT64_MAX;
  assert_int_equal(vs_wal_last_lsn(store, &last), VS_OK);
  assert_true(last == c->records);
  uint64_t head_seq = UINT64_MAX, head_hlc = 0;
  uint8_t head_hash[VS_HASH_BYTES];
  assert_int_equal(vs_wal_head(store, c->origin, &head_seq, head_hash, &head_hlc), VS_OK);
  assert_true(head_seq == c->records);
  if (c->records > 0) assert_memory_equal(head_hash, c->last_hash, VS_HASH_BYTES);
  /* No op id twice (ids are derived from (origin, seq); a reused seq would
   * show up here). */
  vs_op_id *ids = malloc((size_t)(c->records + 1) * sizeof *ids);
  assert_non_null(ids);
  for (uint64_t n = 1; n <= c->records; n++) ids[n - 1] = c->id_by_n[n];
  qsort(ids, (size_t)c->records, sizeof *ids, tt_cmp_id);
  for (uint64_t i = 1; i < c->records; i++)
    if (vs_op_id_equal(&ids[i - 1], &ids[i])) fail_msg("kill %u: op id twice in the WAL", c->kill_index);
  free(ids);
}

/* Every record is reachable through each index written in its transaction. */
static void tt_check_indexes(tt_ctx *c, vs_store *store, vs_outbox *ob) {
  for (uint64_t n = 1; n <= c->records; n++) {
    if (n <= c->acked && !vs_op_id_equal(&c->acked_id[n], &c->id_by_n[n]))
      fail_msg("kill %u: acknowledged op of k%" PRIu64 " is not the one in the WAL", c->kill_index, n);
    uint64_t lsn = 0;
    vs_err err = vs_wal_find(store, &c->id_by_n[n], &lsn);
    if (err != VS_OK || lsn != c->lsn_by_n[n])
      fail_msg("kill %u: vs_wal_find(k%" PRIu64 "): %s, lsn %" PRIu64 " != %" PRIu64, c->kill_index,
               n, vs_err_name(err), lsn, c->lsn_by_n[n]);
    vs_outbox_entry e;
    err = vs_outbox_get(ob, &c->id_by_n[n], &e);
    if (err != VS_OK || e.lsn != lsn || !vs_op_id_equal(&e.op_id, &c->id_by_n[n]))
      fail_msg("kill %u: outbox entry of k%" PRIu64 ": %s", c->kill_index, n, vs_err_name(err));
    tt_req_buf b;
    tt_req_for(n, &b);
    vs_op_id idem;
    err = vs_write_idem_lookup(store, b.req.idem_key, b.req.idem_key_bytes, &idem);
    if (err != VS_OK || !vs_op_id_equal(&idem, &c->id_by_n[n]))
      fail_msg("kill %u: idempotency key k%" PRIu64 ": %s", c->kill_index, n, vs_err_name(err));
  }
  /* The first key not in the WAL must not be in the key index either. */
  tt_req_buf b;
  tt_req_for(c->records + 1, &b);
  vs_op_id idem;
  vs_err err = vs_write_idem_lookup(store, b.req.idem_key, b.req.idem_key_bytes, &idem);
  if (err != VS_ERR_NOTFOUND)
    fail_msg("kill %u: key k%" PRIu64 " indexed without its record: %s", c->kill_index,
             c->records + 1, vs_err_name(err));
}

/* As the engine's owner on start: nothing stays INFLIGHT, counts add up. */
static void tt_check_outbox(tt_ctx *c, vs_store *store, vs_outbox *ob) {
  vs_outbox_counts before, after;
  assert_int_equal(vs_outbox_counts_get(ob, &before), VS_OK);
  assert_true(before.pending + before.inflight + before.done + before.failed == c->records);
  errno = 0;
  vs_err err = vs_store_lock_owner(store);
  if (err != VS_OK)
    fail_msg("kill %u: vs_store_lock_owner: %s (errno: %s)", c->kill_index, vs_err_name(err), strerror(errno));
  uint64_t requeued = UINT64_MAX;
  assert_int_equal(vs_outbox_requeue_inflight(ob, tt_now_ms(), &requeued), VS_OK);
  assert_true(requeued == before.inflight);
  assert_int_equal(vs_outbox_counts_get(ob, &after), VS_OK);
  if (after.inflight != 0)
    fail_msg("kill %u: %" PRIu64 " entries still INFLIGHT after requeue", c->kill_index, after.inflight);
  assert_true(after.pending + after.done + after.failed == c->records);
  assert_true(after.done == before.done);
  if (before.inflight > 0) c->inflight_kills++;
  c->inflight_requeued += requeued;
}

/* Reopen after a kill (never creating: a lost store must not pass as an
 * empty one) and check everything; note the fate of key acked + 1. */
static void tt_verify(tt_ctx *c) {
  vs_store_cfg cfg = tt_store_cfg(false);
  vs_store *store = NULL;
  vs_err err = vs_store_open(c->dir, &cfg, &store);
  if (err != VS_OK) fail_msg("kill %u: reopen: %s", c->kill_index, vs_err_name(err));
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  vs_outbox *ob = NULL;
  assert_int_equal(vs_outbox_open(store, &ocfg, &ob), VS_OK);
  tt_check_wal(c, store);
  tt_check_indexes(c, store, ob);
  tt_check_outbox(c, store, ob);
  c->pending_committed = c->records == c->acked + 1;
  if (c->pending_committed) c->pending_id = c->id_by_n[c->acked + 1];
  vs_outbox_close(ob);
  vs_store_close(store);
}

/* An ack must be for the next key; the first ack of a child is its repeat,
 * which must agree with what the last check found committed. */
static void tt_take_ack(tt_ctx *c, const uint8_t rec[TT_ACK_BYTES]) {
  uint64_t n = tt_get_u64le(rec);
  vs_op_id id;
  memcpy(id.bytes, rec + 8, VS_OP_ID_BYTES);
  bool dup = rec[8 + VS_OP_ID_BYTES] != 0;
  if (n != c->acked + 1) fail_msg("kill %u: ack for k%" PRIu64 ", expected k%" PRIu64, c->kill_index, n, c->acked + 1);
  if (n > c->cap) fail_msg("more keys than the arrays hold (%" PRIu64 ")", c->cap);
  if (c->first_ack_of_child) {
    if (dup != c->pending_committed)
      fail_msg("kill %u: repeat of k%" PRIu64 ": duplicate=%d but committed=%d", c->kill_index, n,
               (int)dup, (int)c->pending_committed);
    if (dup && !vs_op_id_equal(&id, &c->pending_id))
      fail_msg("kill %u: repeat of k%" PRIu64 " returned another op id", c->kill_index, n);
    if (dup) c->duplicates++;
  } else if (dup) {
    fail_msg("kill %u: fresh key k%" PRIu64 " answered as a duplicate", c->kill_index, n);
  }
  c->first_ack_of_child = false;
  c->acked_id[n] = id;
  c->acked = n;
}

static void tt_read_exact(int fd, uint8_t *buf, size_t bytes, bool *eof) {
  size_t got = 0;
  *eof = false;
  while (got < bytes) {
    ssize_t r = read(fd, buf + got, bytes - got);
    if (r < 0 && errno == EINTR) continue;
    assert_true(r >= 0);
    if (r == 0) {
      /* Records are written whole (atomic pipe writes): EOF between them only. */
      assert_true(got == 0);
      *eof = true;
      return;
    }
    got += (size_t)r;
  }
}

/* Wait for `acks` acknowledgements (bounded by TT_POLL_MS per ack). */
static void tt_wait_acks(tt_ctx *c, int fd, pid_t pid, uint64_t acks) {
  uint64_t got = 0;
  while (got < acks) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, TT_POLL_MS);
    if (r == 0) {
      kill(pid, SIGKILL);
      fail_msg("kill %u: child wrote nothing for %d ms", c->kill_index, TT_POLL_MS);
    }
    if (r < 0 && errno == EINTR) continue;
    assert_true(r == 1);
    got++;
    uint8_t rec[TT_ACK_BYTES];
    bool eof = false;
    tt_read_exact(fd, rec, sizeof rec, &eof);
    if (eof) return; /* it died: waitpid tells why */
    tt_take_ack(c, rec);
  }
}

/* Fork a writer starting at key acked + 1, kill it at a random moment,
 * collect every ack it managed to send. */
static void tt_round(tt_ctx *c, uint64_t *rng) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  uint64_t child_seed = tt_rand(rng);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    tt_child_main(c->dir, c->origin, c->acked + 1, child_seed, fds[1]);
  }
  c->child = pid;
  close(fds[1]);
  c->first_ack_of_child = true;
  if (tt_rand_below(rng, 2) == 0) {
    /* From fork: may land in vs_store_open, a write, a claim or between. */
    tt_sleep_us(tt_rand_below(rng, TT_KILL_DELAY_US_MAX + 1));
    c->delay_kills++;
  } else {
    tt_wait_acks(c, fds[0], pid, tt_rand_below(rng, TT_ACKS_WAIT_MAX + 1));
    tt_sleep_us(tt_rand_below(rng, 2000));
    c->ack_kills++;
  }
  assert_int_equal(kill(pid, SIGKILL), 0);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) assert_true(errno == EINTR);
  c->child = 0;
  for (uint32_t i = 0; i <= TT_CHILD_WRITES_MAX; i++) {
    uint8_t rec[TT_ACK_BYTES];
    bool eof = false;
    tt_read_exact(fds[0], rec, sizeof rec, &eof);
    if (eof) break;
    tt_take_ack(c, rec);
  }
  close(fds[0]);
  if (WIFEXITED(status))
    fail_msg("kill %u: child exited with %d before the kill (see stderr)", c->kill_index,
             WEXITSTATUS(status));
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  c->kills++;
}

static uint64_t tt_env_u64(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  if (v == NULL || v[0] == '\0') return dflt;
  return strtoull(v, NULL, 0);
}

/* The last key may have committed unacknowledged: write it once more here
 * (same arguments), so every key 1..acked took effect. */
static void tt_finish_last_key(tt_ctx *c) {
  vs_store_cfg cfg = tt_store_cfg(false);
  vs_store *store = NULL;
  assert_int_equal(vs_store_open(c->dir, &cfg, &store), VS_OK);
  tt_req_buf b;
  tt_req_for(c->acked + 1, &b);
  vs_write_result res;
  assert_int_equal(vs_write(store, c->origin, &b.req, tt_now_ms(), &res), VS_OK);
  vs_store_close(store);
  uint8_t rec[TT_ACK_BYTES] = {0};
  tt_put_u64le(rec, c->acked + 1);
  memcpy(rec + 8, res.op_id.bytes, VS_OP_ID_BYTES);
  rec[8 + VS_OP_ID_BYTES] = res.duplicate ? 1u : 0u;
  c->first_ack_of_child = true;
  tt_take_ack(c, rec);
}

static void test_crash_torture_acked_writes_survive_kill9(void **state) {
  tt_ctx *c = *state;
  c->seed = tt_env_u64("VS_TORTURE_SEED", TT_SEED_DEFAULT);
  uint64_t kills = tt_env_u64("VS_TORTURE_KILLS", TT_KILLS_DEFAULT);
  assert_true(kills >= 1 && kills <= TT_KILLS_MAX);
  uint64_t rng = c->seed;
  vt_tmpdir(c->dir, sizeof c->dir, "torture");
  printf("crash torture: seed 0x%016" PRIx64 ", %" PRIu64 " kills (VS_TORTURE_SEED, VS_TORTURE_KILLS), %s\n",
         c->seed, kills, c->dir);
  vt_origin(c->origin, TT_ORIGIN_SALT);
  c->cap = kills * TT_CHILD_WRITES_MAX + 2;
  c->acked_id = calloc((size_t)c->cap + 2, sizeof *c->acked_id);
  c->id_by_n = calloc((size_t)c->cap + 2, sizeof *c->id_by_n);
  c->lsn_by_n = calloc((size_t)c->cap + 2, sizeof *c->lsn_by_n);
  assert_true(c->acked_id != NULL && c->id_by_n != NULL && c->lsn_by_n != NULL);

  /* Create the store up front, so a child's kill never lands in creation
   * and every reopen can insist that the store exists. */
  vs_store_cfg cfg = tt_store_cfg(true);
  vs_store *store = NULL;
  assert_int_equal(vs_store_open(c->dir, &cfg, &store), VS_OK);
  vs_store_close(store);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (uint64_t k = 0; k < kills; k++) {
    c->kill_index = (uint32_t)k;
    tt_round(c, &rng);
    tt_verify(c);
  }
  /* Exactly once: finish the last key, then every key 1..acked has one
   * record, its key maps to it, and nothing else was written. */
  tt_finish_last_key(c);
  c->kill_index = (uint32_t)kills;
  tt_verify(c);
  if (c->records != c->acked) fail_msg("final: %" PRIu64 " records, %" PRIu64 " keys", c->records, c->acked);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

  printf("crash torture: kills %" PRIu64 " (%" PRIu64 " after a delay, %" PRIu64 " after acks)\n",
         c->kills, c->delay_kills, c->ack_kills);
  printf("crash torture: acknowledged ops %" PRIu64 ", keys k1..k%" PRIu64 " each exactly once\n",
         c->acked, c->acked);
  printf("crash torture: repeats that found their write committed (duplicate=true): %" PRIu64 "\n",
         c->duplicates);
  printf("crash torture: kills leaving INFLIGHT entries %" PRIu64 ", entries requeued %" PRIu64 "\n",
         c->inflight_kills, c->inflight_requeued);
  printf("crash torture: lost = 0 (%.1f s)\n", secs);
  assert_true(c->kills == kills);
  c->passed = true;
}

static int tt_setup(void **state) {
  tt_ctx *c = calloc(1, sizeof *c);
  if (c == NULL) return -1;
  *state = c;
  return 0;
}

/* Runs after a failure too: a writer left alive would hold ctest's output
 * pipe open; the store of a failed run is kept for a post-mortem. */
static int tt_teardown(void **state) {
  tt_ctx *c = *state;
  if (c->child > 0) {
    kill(c->child, SIGKILL);
    while (waitpid(c->child, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  if (c->dir[0] != '\0') {
    if (c->passed) vt_rmrf(c->dir);
    else fprintf(stderr, "crash torture: store kept for inspection in %s\n", c->dir);
  }
  free(c->acked_id);
  free(c->id_by_n);
  free(c->lsn_by_n);
  free(c);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_crash_torture_acked_writes_survive_kill9, tt_setup, tt_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
