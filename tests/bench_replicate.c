/* bench_replicate: replication throughput between two in-process nodes, next
 * to the two limits of what the receiver does, measured in the same run.
 *
 *   bench_replicate [N]      (default 100000)
 *
 * Per durability mode (VS_DURABILITY_NOSYNC, then VS_DURABILITY_SYNC; both
 * nodes and the raw baseline in that mode), each figure a median of 5 runs
 * on fresh stores; the four measurements take turns going first.
 *   a. apply: node A writes N operations (vs_write_batch on vs_node_store(A)
 *      as A's identity, batches of 1,000, so the runs are signed; untimed;
 *      A is then reopened, untimed, so that its version vector, loaded at
 *      open, holds them: vs_write_batch on the store does not refresh the
 *      node's in-memory vector). Then A and B connect (vs_node_peer_up on
 *      both sides) and frames are passed in memory, in order per direction,
 *      in virtual time, as tests/test_node.c does, until B's version vector
 *      holds A's N operations -> N / elapsed = ops applied per second at the
 *      receiver. Each node runs on its own thread (as on two devices; the
 *      frames pass through a locked queue per direction), so the clock
 *      covers both sides working at once: the handshake; A's anti-entropy
 *      (WAL reads, OPS encoding, seal) and its engine's outbox bookkeeping
 *      (entries completed by B's acknowledged version vectors; the mesh
 *      claims nothing);
 *      B's open, decode, verification and apply, and its acknowledgements.
 *      B receives through the receive pipeline of node.h, as a driver with
 *      a spare core would: a third thread opens, decodes, hashes and
 *      verifies frame k+1 (vs_rx_prepare) while B's thread applies frame k
 *      (vs_node_on_prepared). On a 2-core machine the three threads share
 *      two cores, the memory bus and caches: the CPU time of each thread
 *      per op is printed, and so is the same replication with B on one
 *      thread (every frame through vs_node_on_frame), for comparison.
 *      "receiver-side" is N / the time spent inside B's calls alone
 *      (vs_node_on_prepared and vs_node_poll of B), for information.
 *   b. raw lmdb same puts: the mdb_puts of B's receive path (src/apply.c
 *      run_apply_txn, src/wal.c vs_wal_append_txn, src/state.c
 *      vs_state_apply_txn for a put on a new target), in the same named
 *      databases, with the same keys, value sizes, bytes and put flags, one
 *      transaction per run with exactly the runs of a (read from A's store:
 *      where its signatures are), same environment flags and durability:
 *        per op:  wal[lsn u64be] = record (MDB_APPEND | MDB_RESERVE, filled
 *                 in place), opid[op id] = lsn, hash (MDB_NOOVERWRITE),
 *                 heads[origin] = seq, hlc, hash, state[t + target] = record
 *                 (MDB_RESERVE, filled in place); no incrs (puts only);
 *        per run: sigs[id of the last op] = signature, meta state_hash,
 *                 meta hlc.
 *      The receive path's reads (chain head, last LSN, meta HLC and state
 *      hash per run; per op the state record lookup and the incrs cursor of
 *      the re-count) and its CPU work (hashes, CRC, encoding) are left out,
 *      as in bench_write: they are part of what the comparison prices.
 *   c. crypto alone: for the same N operations, the AEAD seal and open of
 *      every OPS frame A sent B in a (the same sizes, recorded on the wire;
 *      vs_session_seal / vs_session_open on sessions from one handshake done
 *      untimed), one BLAKE2b op hash per op (vs_op_hash_encoded over its
 *      encoding) and one ed25519 verification per run (vs_chain_verify of the
 *      run's real signature).
 * `ratio apply` = apply / min(b, c) in nosync mode (the target is >= 0.5);
 * `ratio apply sync` the same in sync mode. For information: the ratios
 * against each limit, the receiver-side ratio, and the ratios against the
 * serial sum of the limits, 1 / (1/b + 1/c): one thread does both works one
 * after the other, so apply cannot pass that figure while it does at least
 * the work of both, whereas min(b, c) prices only the larger of the two.
 * op = 16-byte target (distinct per op) + 100-byte payload, kind "put".
 *
 * Before timing, a layout probe replicates a few runs, then writes the same
 * runs with the baseline, and compares every named database of the two
 * receivers (entries, first and last key and value sizes) and meta's keys:
 * when the receive path starts writing something else, the benchmark stops
 * and asks for raw_op() / raw_run_end() to be updated.
 *
 * Temporary directories go under $TMPDIR, or the current directory when it
 * is unset (run it from a directory on the disk you want to measure).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "testutil.h"
#include "vixsync/vixsync.h"
#include "apply.h" /* internal: signatures of runs */
#include "wire.h"  /* internal: sessions and frames */
#include "vixsync/node.h"

#define BENCH_REPS 5
#define BENCH_BATCH 1000u
#define BENCH_TARGET_BYTES 16u
#define BENCH_PAYLOAD_BYTES 100u
#define BENCH_MAP_BYTES (4ull * 1024ull * 1024ull * 1024ull)
#define BENCH_OPS_MAX 10000000ull
#define BENCH_NAME "bench_replicate"

#include "bench_util.h"
#include "bench_ops.h"
#include "bench_shape.h"

#define BENCH_PROBE_OPS 12000u /* over 2 MiB of ops: several runs */
#define BENCH_T0_MS 1700000000000ull /* virtual time of the writes */
#define BENCH_STEPS_MAX 100000000ull
#define BENCH_DBS 16 /* as src/store.c */
/* An OPS message (wire v7) holds at least its type and run count, one run
 * header (origin, op count, signature, first seq, prev, hlc) and one op
 * of this bench (a kind byte and a 1-byte kind, the target and payload
 * lengths, the payload); a VV message of the two origins here is shorter
 * (its header and entries at their longest), so a frame at least this long
 * is OPS. */
#define OPS_MSG_MIN_BYTES \
  (2u + VS_ORIGIN_BYTES + 1u + VS_SIGNATURE_BYTES + 1u + VS_HASH_BYTES + 8u + 2u + 2u + BENCH_PAYLOAD_BYTES)
_Static_assert(VS_MSG_VV_HEADER_BYTES + 2u * VS_VV_ENTRY_BYTES_MAX < OPS_MSG_MIN_BYTES,
               "a two-origin VV is told from an OPS message by its length");


/* splitmix64, for payload bytes and the nodes' "random" source. */
static void rnd(void *ctx, uint8_t *buf, size_t bytes) {
  uint64_t *s = ctx;
  for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)mix((*s)++);
}

/* ---- identities ---- */

static vs_identity id_a, id_b;
static uint8_t mesh_key[VS_MESH_KEY_BYTES];

static void identities_init(void) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, 0x11, sizeof seed);
  CHECK_VS(vs_identity_from_seed(seed, &id_a));
  memset(seed, 0x22, sizeof seed);
  CHECK_VS(vs_identity_from_seed(seed, &id_b));
  memset(mesh_key, 0x5a, sizeof mesh_key);
}

/* ---- what the receiver gets: measured from A's store and the wire ---- */

typedef struct shape {
  uint64_t n;
  uint8_t *enc;         /* the N encodings, back to back */
  size_t *enc_off;      /* offset of op i's encoding */
  uint32_t *enc_len;
  vs_op_id *ids;
  uint8_t (*hash)[VS_HASH_BYTES];
  uint64_t *hlc;
  uint32_t runs;
  uint64_t *run_end;    /* seq of the run's last (signed) op */
  uint8_t (*sig)[VS_SIGNATURE_BYTES];
  uint32_t frames;      /* OPS frames A sent B */
  size_t *frame_len;
  uint32_t frames_cap;
  bool have_frames;
} shape;

typedef struct gather_ctx {
  shape *s;
  size_t used, cap;
  uint64_t i;
} gather_ctx;

static vs_err gather_cb(const vs_wal_record *rec, void *ctx) {
  gather_ctx *g = ctx;
  shape *s = g->s;
  if (g->i >= s->n) return VS_ERR_CORRUPT;
  size_t bytes = vs_op_encoded_bytes(&rec->op);
  if (g->used + bytes > g->cap) {
    size_t cap = g->cap * 2 + bytes;
    uint8_t *p = realloc(s->enc, cap);
    if (p == NULL) return VS_ERR_NOMEM;
    s->enc = p;
    g->cap = cap;
  }
  size_t out = 0;
  vs_err err = vs_op_encode(&rec->op, s->enc + g->used, bytes, &out);
  if (err != VS_OK) return err;
  if (rec->op.seq != g->i + 1) return VS_ERR_CORRUPT;
  s->enc_off[g->i] = g->used;
  s->enc_len[g->i] = (uint32_t)out;
  s->ids[g->i] = rec->op.id;
  memcpy(s->hash[g->i], rec->op_hash, VS_HASH_BYTES);
  s->hlc[g->i] = rec->op.hlc;
  g->used += out;
  g->i++;
  return VS_OK;
}

/* Every op of A's store (it holds only its own). */
static void shape_gather(shape *s, vs_store *a, uint64_t n) {
  s->n = n;
  s->enc_off = malloc(sizeof *s->enc_off * n);
  s->enc_len = malloc(sizeof *s->enc_len * n);
  s->ids = malloc(sizeof *s->ids * n);
  s->hash = malloc(sizeof *s->hash * n);
  s->hlc = malloc(sizeof *s->hlc * n);
  if (s->enc_off == NULL || s->enc_len == NULL || s->ids == NULL || s->hash == NULL || s->hlc == NULL)
    die("malloc", "shape");
  gather_ctx g = {s, 0, 0, 0};
  CHECK_VS(vs_wal_replay(a, 1, gather_cb, &g));
  if (g.i != n) die("shape", "A's WAL does not hold exactly N ops");
}

/* The runs A sent: B holds a signature exactly at the last op of every run
 * it applied, so from seq 1 each run ends at B's next signed op. */
static void shape_runs(shape *s, vs_store *b) {
  uint32_t cap = 0;
  s->runs = 0;
  for (uint64_t seq = 1; seq <= s->n;) {
    uint64_t end = 0;
    CHECK_VS(vs_apply_next_signed(b, id_a.pk, seq, &end));
    if (end > s->n) die("shape", "a run ends past N");
    if (s->runs == cap) {
      cap = cap == 0 ? 256 : cap * 2;
      s->run_end = realloc(s->run_end, sizeof *s->run_end * cap);
      s->sig = realloc(s->sig, sizeof *s->sig * cap);
      if (s->run_end == NULL || s->sig == NULL) die("malloc", "runs");
    }
    s->run_end[s->runs] = end;
    CHECK_VS(vs_apply_sig_get(b, &s->ids[end - 1], s->sig[s->runs]));
    s->runs++;
    seq = end + 1;
  }
}

static void shape_free(shape *s) {
  free(s->enc);
  free(s->enc_off);
  free(s->enc_len);
  free(s->ids);
  free(s->hash);
  free(s->hlc);
  free(s->run_end);
  free(s->sig);
  free(s->frame_len);
  memset(s, 0, sizeof *s);
}

static void frame_record(shape *s, size_t len) {
  if (s->frames == s->frames_cap) {
    s->frames_cap = s->frames_cap == 0 ? 64 : s->frames_cap * 2;
    s->frame_len = realloc(s->frame_len, sizeof *s->frame_len * s->frames_cap);
    if (s->frame_len == NULL) die("malloc", "frames");
  }
  s->frame_len[s->frames++] = len;
}

/* The frames recorded are exactly A's OPS frames (their bytes are the
 * ones A counted as OPS), and they carried the N ops once each (A sent N,
 * B received no duplicate). Anything else means a resend or a stray frame. */
static bool frames_exact(const shape *s, const vs_node_stats *a, const vs_node_stats *b) {
  uint64_t got = 0;
  for (uint32_t f = 0; f < s->frames; f++) got += s->frame_len[f];
  return got == a->bytes_sent_ops && a->ops_sent == s->n && b->ops_duplicate == 0;
}

/* ---- a. replication between two nodes ---- */

static vs_node *node_open(const char *dir, const vs_identity *id, vs_durability d, uint64_t *rng) {
  vs_node_cfg cfg;
  vs_node_cfg_default(&cfg);
  cfg.dir = dir;
  cfg.durability = d;
  cfg.map_bytes = BENCH_MAP_BYTES;
  cfg.identity = *id;
  memcpy(cfg.mesh_key, mesh_key, VS_MESH_KEY_BYTES);
  cfg.random = rnd;
  cfg.random_ctx = rng;
  vs_node *node = NULL;
  CHECK_VS(vs_node_open(&cfg, &node));
  return node;
}

/* A's N ops, in batches of BENCH_BATCH, as A's identity (signed runs). */
static void write_all(vs_node *a, uint64_t n) { write_batches(vs_node_store(a), id_a.pk, n, BENCH_T0_MS); }

typedef struct repl_run {
  double secs;       /* connect to B holding all N */
  double b_secs;     /* inside B's calls */
  double worker_secs; /* inside vs_rx_prepare, on B's pipeline thread */
  double cpu_a, cpu_b, cpu_w; /* CPU time of A's, B's and B's pipeline thread (connect to the end) */
  uint64_t frames_ab, frames_ba, runs_applied;
  uint64_t a_done_held, a_ops_claimed; /* A's engine: entries completed unclaimed / claimed and sent */
} repl_run;

/* ---- two nodes, each on its own thread, as on two devices ---- */

/* Frames in flight towards one node: a growable FIFO under a mutex. */
typedef struct mailbox {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint8_t **bytes;
  size_t *len;
  uint32_t head, count, cap;
} mailbox;

static void mailbox_init(mailbox *m) {
  memset(m, 0, sizeof *m);
  if (pthread_mutex_init(&m->mu, NULL) != 0 || pthread_cond_init(&m->cv, NULL) != 0) die("pthread", "mailbox");
}

static void mailbox_free(mailbox *m) {
  for (uint32_t i = 0; i < m->count; i++) free(m->bytes[(m->head + i) % m->cap]);
  free(m->bytes);
  free(m->len);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
}

/* Queue `item` (owned by the mailbox from now on; freed with free()). */
static void mailbox_put_owned(mailbox *m, uint8_t *item, size_t len) {
  pthread_mutex_lock(&m->mu);
  if (m->count == m->cap) { /* grow, keeping FIFO order */
    uint32_t cap = m->cap == 0 ? 64 : m->cap * 2;
    uint8_t **nb = malloc(sizeof *nb * cap);
    size_t *nl = malloc(sizeof *nl * cap);
    if (nb == NULL || nl == NULL) die("malloc", "mailbox");
    for (uint32_t i = 0; i < m->count; i++) {
      nb[i] = m->bytes[(m->head + i) % m->cap];
      nl[i] = m->len[(m->head + i) % m->cap];
    }
    free(m->bytes);
    free(m->len);
    m->bytes = nb;
    m->len = nl;
    m->head = 0;
    m->cap = cap;
  }
  uint32_t at = (m->head + m->count) % m->cap;
  m->bytes[at] = item;
  m->len[at] = len;
  m->count++;
  pthread_cond_signal(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

static void mailbox_put(mailbox *m, const uint8_t *bytes, size_t len) {
  uint8_t *copy = malloc(len);
  if (copy == NULL) die("malloc", "frame");
  memcpy(copy, bytes, len);
  mailbox_put_owned(m, copy, len);
}

/* Take the oldest frame, waiting up to wait_ms for one. NULL: none. */
static uint8_t *mailbox_take(mailbox *m, uint64_t wait_ms, size_t *len_out) {
  pthread_mutex_lock(&m->mu);
  if (m->count == 0 && wait_ms > 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + wait_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&m->cv, &m->mu, &ts);
  }
  uint8_t *b = NULL;
  if (m->count > 0) {
    b = m->bytes[m->head];
    *len_out = m->len[m->head];
    m->head = (m->head + 1) % m->cap;
    m->count--;
  }
  pthread_mutex_unlock(&m->mu);
  return b;
}

/* B's receive pipeline (node.h): a worker thread opens, decodes, hashes
 * and verifies frame k+1 (vs_rx_prepare) while B's thread applies frame k
 * (vs_node_on_prepared). The key is published by B's thread once the
 * handshake is done; frames before that go through unprepared. */
typedef struct prepped {
  vs_rx_prep *prep;
  uint8_t *bytes; /* the frame prep was made from */
} prepped;

typedef struct pipeline {
  mailbox *in;        /* frames from A */
  mailbox out;        /* prepped items towards B's thread */
  pthread_mutex_t mu; /* guards key, have_key */
  vs_rx_key key;
  bool have_key;
  atomic_bool *done;
  double busy, cpu;
  const char *fail;
} pipeline;

static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *pipeline_main(void *arg) {
  pipeline *pl = arg;
  vs_rx_key key;
  while (!atomic_load(pl->done)) {
    size_t len = 0;
    uint8_t *f = mailbox_take(pl->in, 5, &len);
    if (f == NULL) continue;
    double c0 = now_s();
    pthread_mutex_lock(&pl->mu);
    bool have = pl->have_key;
    if (have) key = pl->key;
    pthread_mutex_unlock(&pl->mu);
    prepped *item = malloc(sizeof *item);
    if (item == NULL) die("malloc", "prepped");
    item->bytes = f;
    vs_err err = vs_rx_prepare(have ? &key : NULL, f, len, &item->prep);
    pl->busy += now_s() - c0;
    if (err != VS_OK) {
      pl->fail = vs_strerror(err);
      free(f);
      free(item);
      atomic_store(pl->done, true);
      break;
    }
    mailbox_put_owned(&pl->out, (uint8_t *)item, len);
  }
  sodium_memzero(&key, sizeof key);
  pl->cpu = thread_cpu_s();
  pthread_mutex_lock(&pl->out.mu);
  pthread_cond_signal(&pl->out.cv);
  pthread_mutex_unlock(&pl->out.mu);
  return NULL;
}

typedef struct side {
  vs_node *node;
  uint32_t peer;        /* the handle of the other node */
  mailbox *in, *out;
  bool is_b;
  uint64_t n;
  shape *s;             /* A records its OPS frame sizes when s is being measured */
  bool record;
  atomic_bool *done;
  double t0, t_end, busy;
  uint64_t frames_out;
  pipeline *pl;         /* B's receive pipeline, or NULL: every frame through vs_node_on_frame */
  double cpu;           /* the thread's CPU time */
  const char *fail;
} side;

static uint64_t side_now(const side *sd) {
  double e = now_s() - sd->t0;
  return BENCH_T0_MS + 1 + (uint64_t)(e * 1000.0);
}

static void *side_main(void *arg) {
  side *sd = arg;
  /* Bounded: each round moves frames or waits; B ends it when it holds N,
   * and a stuck run stops after BENCH_STEPS_MAX rounds. */
  for (uint64_t round = 0; !atomic_load(sd->done); round++) {
    if (round >= BENCH_STEPS_MAX) {
      sd->fail = "too many rounds";
      break;
    }
    uint64_t now = side_now(sd), wake = UINT64_MAX;
    bool any = false;
    double c0 = now_s();
    for (;;) {
      vs_node_out out;
      vs_err err = vs_node_poll(sd->node, now, &out, &wake);
      if (err != VS_OK) {
        sd->fail = vs_strerror(err);
        break;
      }
      if (out.kind == VS_NODE_OUT_NONE) break;
      if (out.kind == VS_NODE_OUT_CLOSE) {
        sd->fail = "a node closed the connection";
        break;
      }
      any = true;
      sd->frames_out++;
      uint8_t type = 0;
      if (sd->record && vs_frame_type(out.bytes, out.bytes_len, &type) == VS_OK && type == VS_FRAME_DATA &&
          out.bytes_len >= VS_DATA_OVERHEAD_BYTES + OPS_MSG_MIN_BYTES)
        frame_record(sd->s, out.bytes_len);
      mailbox_put(sd->out, out.bytes, out.bytes_len);
    }
    sd->busy += now_s() - c0;
    if (sd->fail != NULL) break;
    /* One frame from the other node, else wait a little; then poll again
     * at once, so acknowledgements leave as soon as a frame is applied. */
    uint64_t wait = any ? 0 : (wake > now ? (wake - now < 5 ? wake - now : 5) : 0);
    {
      size_t len = 0;
      uint8_t *f = mailbox_take(sd->pl != NULL ? &sd->pl->out : sd->in, wait, &len);
      if (f == NULL) continue;
      double c1 = now_s();
      vs_err err;
      if (sd->pl != NULL) {
        prepped *item = (prepped *)(void *)f;
        err = vs_node_on_prepared(sd->node, sd->peer, item->prep, side_now(sd));
        vs_rx_prep_free(item->prep);
        free(item->bytes);
        if (!sd->pl->have_key) { /* read here only: B's thread is the only writer */
          vs_rx_key k;
          if (vs_node_rx_key(sd->node, sd->peer, &k) == VS_OK) {
            pthread_mutex_lock(&sd->pl->mu);
            sd->pl->key = k;
            sd->pl->have_key = true;
            pthread_mutex_unlock(&sd->pl->mu);
          }
          sodium_memzero(&k, sizeof k);
        }
      } else {
        err = vs_node_on_frame(sd->node, sd->peer, f, len, side_now(sd));
      }
      sd->busy += now_s() - c1;
      free(f);
      if (err != VS_OK) {
        sd->fail = vs_strerror(err);
        break;
      }
      if (sd->is_b) {
        vs_node_stats st;
        vs_node_stats_get(sd->node, &st);
        if (st.ops_applied >= sd->n) {
          sd->t_end = now_s();
          atomic_store(sd->done, true);
        }
      }
    }
  }
  if (sd->fail != NULL) atomic_store(sd->done, true);
  sd->cpu = thread_cpu_s();
  /* Wake the other side if it waits. */
  pthread_mutex_lock(&sd->out->mu);
  pthread_cond_signal(&sd->out->cv);
  pthread_mutex_unlock(&sd->out->mu);
  return NULL;
}

/* One replication in mode d. With `s` not yet measured, fills it from A's
 * store, the wire and B's store. With `b_dir_out`, B's directory is kept
 * (for the layout probe) and returned there. */
static repl_run replicate_once(uint64_t n, vs_durability d, bool pipelined, shape *s, char *b_dir_out,
                               size_t b_dir_bytes) {
  char dir_a[4200], dir_b[4200];
  fresh_dir(dir_a, sizeof dir_a, "node-a");
  fresh_dir(dir_b, sizeof dir_b, "node-b");
  uint64_t rng = 42;
  vs_node *nodes[2];
  nodes[0] = node_open(dir_a, &id_a, d, &rng);
  write_all(nodes[0], n);
  /* vs_write_batch on the store leaves the node's in-memory version vector
   * as it was; reopening loads it from the store. */
  vs_node_close(nodes[0]);
  nodes[0] = node_open(dir_a, &id_a, d, &rng);
  bool record = s->enc_off == NULL;
  if (record) shape_gather(s, vs_node_store(nodes[0]), n);
  if (s->n != n) die("replicate", "shape of another N");
  if (record) s->frames = 0;
  nodes[1] = node_open(dir_b, &id_b, d, &rng);

  /* Node i reaches node j through handle j, as in tests/test_node.c. */
  mailbox box[2]; /* box[i]: frames towards node i */
  mailbox_init(&box[0]);
  mailbox_init(&box[1]);
  atomic_bool done;
  atomic_init(&done, false);
  repl_run r;
  memset(&r, 0, sizeof r);
  double t0 = now_s();
  side sides[2];
  for (uint32_t i = 0; i < 2; i++)
    sides[i] = (side){.node = nodes[i], .peer = 1 - i, .in = &box[i], .out = &box[1 - i], .is_b = i == 1, .n = n,
                      .s = s, .record = record && i == 0, .done = &done, .t0 = t0};
  pipeline pl;
  memset(&pl, 0, sizeof pl);
  pl.in = &box[1];
  pl.done = &done;
  mailbox_init(&pl.out);
  if (pthread_mutex_init(&pl.mu, NULL) != 0) die("pthread", "pipeline");
  if (pipelined) sides[1].pl = &pl;
  CHECK_VS(vs_node_peer_up(nodes[0], 1, true, BENCH_T0_MS + 1));
  CHECK_VS(vs_node_peer_up(nodes[1], 0, false, BENCH_T0_MS + 1));
  pthread_t th[3];
  for (uint32_t i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, side_main, &sides[i]) != 0) die("pthread_create", "side");
  if (pipelined && pthread_create(&th[2], NULL, pipeline_main, &pl) != 0) die("pthread_create", "pipeline");
  for (uint32_t i = 0; i < 2; i++) pthread_join(th[i], NULL);
  if (pipelined) pthread_join(th[2], NULL);
  for (uint32_t i = 0; i < 2; i++)
    if (sides[i].fail != NULL) die(i == 0 ? "replicate (A)" : "replicate (B)", sides[i].fail);
  if (pl.fail != NULL) die("replicate (B's pipeline)", pl.fail);
  for (size_t len = 0;;) { /* prepared frames B did not need */
    prepped *item = (prepped *)(void *)mailbox_take(&pl.out, 0, &len);
    if (item == NULL) break;
    vs_rx_prep_free(item->prep);
    free(item->bytes);
    free(item);
  }
  mailbox_free(&pl.out);
  sodium_memzero(&pl.key, sizeof pl.key);
  pthread_mutex_destroy(&pl.mu);
  r.secs = sides[1].t_end - t0;
  r.b_secs = sides[1].busy;
  r.worker_secs = pl.busy;
  r.cpu_a = sides[0].cpu;
  r.cpu_b = sides[1].cpu;
  r.cpu_w = pl.cpu;
  r.frames_ab = sides[0].frames_out;
  r.frames_ba = sides[1].frames_out;
  mailbox_free(&box[0]);
  mailbox_free(&box[1]);
  uint64_t seq = 0;
  CHECK_VS(vs_wal_head(vs_node_store(nodes[1]), id_a.pk, &seq, NULL, NULL));
  if (seq != n) die("replicate", "B's chain head for A is not at N");
  if (record) shape_runs(s, vs_node_store(nodes[1]));

  /* Untimed checks: everything arrived once, authentic, and converged. */
  vs_node_stats sa, sb;
  vs_node_stats_get(nodes[0], &sa);
  vs_node_stats_get(nodes[1], &sb);
  r.runs_applied = sb.runs_applied;
  vs_engine_stats es;
  memset(&es, 0, sizeof es);
  if (vs_node_engine(nodes[0]) != NULL) vs_engine_stats_get(vs_node_engine(nodes[0]), &es);
  r.a_done_held = es.done_held;
  r.a_ops_claimed = es.ops_sent;
  if (sb.ops_applied != n || sb.runs_forged + sb.runs_fork + sb.runs_gap != 0 ||
      sa.rejected_auth + sa.rejected_malformed + sa.rejected_replay + sa.rejected_state != 0 ||
      sb.rejected_auth + sb.rejected_malformed + sb.rejected_replay + sb.rejected_state != 0)
    die("replicate", "B did not apply exactly N ops cleanly");
  if (sb.runs_applied != s->runs) die("replicate", "B applied another number of runs than A's store holds");
  uint8_t ha[VS_HASH_BYTES], hb[VS_HASH_BYTES];
  CHECK_VS(vs_state_hash(vs_node_store(nodes[0]), ha));
  CHECK_VS(vs_state_hash(vs_node_store(nodes[1]), hb));
  if (memcmp(ha, hb, VS_HASH_BYTES) != 0) die("replicate", "state hashes differ");
  if (record) {
    if (!frames_exact(s, &sa, &sb)) die("replicate", "the OPS frames do not carry exactly the N ops once (resends?)");
    s->have_frames = true;
  } else if (s->have_frames && sa.ops_sent != n) {
    fprintf(stderr, "bench_replicate: note: A sent %" PRIu64 " ops for %" PRIu64 " (resends)\n", sa.ops_sent, n);
  }
  vs_node_close(nodes[0]);
  vs_node_close(nodes[1]);
  vt_rmrf(dir_a);
  if (b_dir_out != NULL) snprintf(b_dir_out, b_dir_bytes, "%s", dir_b);
  else vt_rmrf(dir_b);
  return r;
}

/* ---- b. raw LMDB: the receive path's puts ---- */

/* Value sizes of what the receive path puts, measured on a real receiver by
 * layout_probe() before anything is timed. */
typedef struct put_sizes {
  size_t wal_val, opid_val, head_val, state_key, state_val, sig_val, hlc_val, state_hash_val;
} put_sizes;
static put_sizes sz;
#define RAW_VAL_MAX 2048u
#define STATE_FIXED_BYTES 140u /* src/state.c REC_FIXED_BYTES, checked by the probe */

static const char *const STORE_DB_NAMES[] = {"meta",      "wal",       "opid",  "idem",  "heads",
                                             "outbox",    "obx_ready", "obx_lease", "obx_state",
                                             "state",     "incrs",     "sigs",  "forks"};
#define STORE_DB_COUNT (sizeof STORE_DB_NAMES / sizeof STORE_DB_NAMES[0])

typedef struct raw_env {
  char dir[4200];
  MDB_env *env;
  MDB_dbi meta, wal, opid, heads, state, sigs;
} raw_env;

/* The same environment setup as src/store.c: 16 named databases allowed,
 * the same named databases, MDB_NOTLS, MDB_NOSYNC in nosync mode. */
static void raw_open(raw_env *r, vs_durability d) {
  fresh_dir(r->dir, sizeof r->dir, d == VS_DURABILITY_SYNC ? "raw-sync" : "raw-nosync");
  CHECK_MDB(mdb_env_create(&r->env));
  CHECK_MDB(mdb_env_set_maxdbs(r->env, BENCH_DBS));
  CHECK_MDB(mdb_env_set_mapsize(r->env, (size_t)BENCH_MAP_BYTES));
  unsigned flags = MDB_NOTLS | (d == VS_DURABILITY_NOSYNC ? MDB_NOSYNC : 0u); /* as src/store.c */
  CHECK_MDB(mdb_env_open(r->env, r->dir, flags, 0600));
  MDB_txn *txn;
  CHECK_MDB(mdb_txn_begin(r->env, NULL, 0, &txn));
  for (size_t i = 0; i < STORE_DB_COUNT; i++) {
    MDB_dbi dbi;
    CHECK_MDB(mdb_dbi_open(txn, STORE_DB_NAMES[i], MDB_CREATE, &dbi));
    if (strcmp(STORE_DB_NAMES[i], "meta") == 0) r->meta = dbi;
    else if (strcmp(STORE_DB_NAMES[i], "wal") == 0) r->wal = dbi;
    else if (strcmp(STORE_DB_NAMES[i], "opid") == 0) r->opid = dbi;
    else if (strcmp(STORE_DB_NAMES[i], "heads") == 0) r->heads = dbi;
    else if (strcmp(STORE_DB_NAMES[i], "state") == 0) r->state = dbi;
    else if (strcmp(STORE_DB_NAMES[i], "sigs") == 0) r->sigs = dbi;
  }
  CHECK_MDB(mdb_txn_commit(txn));
}

static void raw_close(raw_env *r, bool keep) {
  mdb_env_close(r->env);
  if (!keep) vt_rmrf(r->dir);
}

/* What the receive path puts for op i (record lsn), a put on a new target.
 * Mirrors, in order, wal.c vs_wal_append_cur (wal, opid, through one cursor
 * each for the run, as apply.c does; the head once per run) and state.c
 * vs_state_apply_txn -> record_put (state). */
static void raw_op(raw_env *r, MDB_txn *txn, MDB_cursor *wc, MDB_cursor *oc, const shape *s, uint64_t i, uint64_t lsn,
                   uint64_t now) {
  const uint8_t *enc = s->enc + s->enc_off[i];
  uint32_t enc_len = s->enc_len[i];
  uint8_t key[8];
  vt_put_u64be(key, lsn);
  MDB_val k = {sizeof key, key}, v = {sz.wal_val, NULL};
  CHECK_MDB(mdb_cursor_put(wc, &k, &v, MDB_APPEND | MDB_RESERVE));
  uint8_t *rec = v.mv_data;
  memset(rec, 0, VS_WAL_RECORD_HEADER_BYTES);
  rec[0] = VS_WAL_RECORD_VERSION;
  rec[1] = 1;
  vt_put_u64le(rec + 8, lsn);
  vt_put_u64le(rec + 16, now);
  memcpy(rec + VS_WAL_RECORD_HEADER_BYTES, enc, enc_len);

  uint8_t val[RAW_VAL_MAX];
  memset(val, 0, sz.opid_val);
  vt_put_u64le(val, lsn);
  memcpy(val + 8, s->hash[i], VS_HASH_BYTES);
  MDB_val ik = {VS_OP_ID_BYTES, (void *)s->ids[i].bytes}, iv = {sz.opid_val, val};
  CHECK_MDB(mdb_cursor_put(oc, &ik, &iv, MDB_NOOVERWRITE));

  /* The target and payload where vs_op_encode puts them. */
  uint32_t kind_bytes = enc[VS_OP_HEADER_BYTES - 1];
  const uint8_t *tp = enc + VS_OP_HEADER_BYTES + kind_bytes;
  uint32_t target_bytes = vt_get_u32le(tp);
  const uint8_t *target = tp + 4;
  uint32_t payload_bytes = vt_get_u32le(target + target_bytes);
  const uint8_t *payload = target + target_bytes + 4;
  uint8_t skey[1 + BENCH_TARGET_BYTES];
  skey[0] = 't';
  memcpy(skey + 1, target, BENCH_TARGET_BYTES);
  MDB_val sk = {sz.state_key, skey}, sv = {sz.state_val, NULL};
  CHECK_MDB(mdb_put(txn, r->state, &sk, &sv, MDB_NOOVERWRITE | MDB_RESERVE));
  uint8_t *p = sv.mv_data;
  memset(p, 0, STATE_FIXED_BYTES);
  p[0] = 1;
  p[1] = 1;
  vt_put_u32le(p + 4, target_bytes);
  vt_put_u64le(p + 8, s->hlc[i]);
  memcpy(p + 16, id_a.pk, VS_ORIGIN_BYTES);
  vt_put_u64le(p + 48, s->hlc[i]);
  memcpy(p + 56, id_a.pk, VS_ORIGIN_BYTES);
  vt_put_u32le(p + 104, payload_bytes);
  memcpy(p + 108, s->hash[i], VS_HASH_BYTES); /* the entry's digest: the op's hash */
  memcpy(p + STATE_FIXED_BYTES, target, target_bytes);
  memcpy(p + STATE_FIXED_BYTES + target_bytes, payload, payload_bytes);
}

/* What apply.c run_apply_txn puts once per run: the chain head, the
 * signature at the run's last op, the state hash and the node HLC (meta). */
static void raw_run_end(raw_env *r, MDB_txn *txn, const shape *s, uint32_t run, uint64_t last) {
  uint8_t val[RAW_VAL_MAX];
  /* The origin's chain head, once per run as apply.c does. */
  memset(val, 0, sz.head_val);
  val[0] = 1;
  vt_put_u64le(val + 1, last + 1);
  vt_put_u64le(val + 9, s->hlc[last]);
  memcpy(val + 17, s->hash[last], VS_HASH_BYTES);
  raw_put(txn, r->heads, id_a.pk, VS_ORIGIN_BYTES, val, sz.head_val, 0);
  raw_put(txn, r->sigs, s->ids[last].bytes, VS_OP_ID_BYTES, s->sig[run], sz.sig_val, 0);
  memset(val, 0, sz.state_hash_val);
  memcpy(val, s->hash[last], VS_HASH_BYTES < sz.state_hash_val ? VS_HASH_BYTES : sz.state_hash_val);
  raw_put(txn, r->meta, "state_hash", 10, val, sz.state_hash_val, 0);
  memset(val, 0, sz.hlc_val);
  vt_put_u64le(val, s->hlc[last]);
  raw_put(txn, r->meta, "hlc", 3, val, sz.hlc_val, 0);
}

/* The first `runs` runs of s, one transaction each. Returns seconds. */
static double raw_fill(raw_env *r, const shape *s, uint32_t runs) {
  uint64_t i = 0, lsn = 0;
  double t0 = now_s();
  for (uint32_t run = 0; run < runs; run++) {
    MDB_txn *txn;
    CHECK_MDB(mdb_txn_begin(r->env, NULL, 0, &txn));
    MDB_cursor *wc, *oc;
    CHECK_MDB(mdb_cursor_open(txn, r->wal, &wc));
    CHECK_MDB(mdb_cursor_open(txn, r->opid, &oc));
    for (; i < s->run_end[run]; i++) raw_op(r, txn, wc, oc, s, i, ++lsn, BENCH_T0_MS + 1);
    mdb_cursor_close(wc);
    mdb_cursor_close(oc);
    raw_run_end(r, txn, s, run, i - 1);
    CHECK_MDB(mdb_txn_commit(txn));
  }
  return now_s() - t0;
}

static double raw_once(const shape *s, vs_durability d) {
  raw_env r;
  raw_open(&r, d);
  double secs = raw_fill(&r, s, s->runs);
  raw_close(&r, false);
  return (double)s->n / secs;
}

/* ---- c. the crypto work alone ---- */

static void handshake(vs_session *sa, vs_session *sb) {
  vs_hs hi, hr;
  uint8_t seed_i[32], seed_r[32], f1[VS_HS_FRAME_BYTES_MAX], f2[VS_HS_FRAME_BYTES_MAX];
  memset(seed_i, 0x31, sizeof seed_i);
  memset(seed_r, 0x32, sizeof seed_r);
  size_t l1 = 0, l2 = 0;
  bool done_i = false, done_r = false;
  CHECK_VS(vs_hs_start_initiator(&hi, &id_a, mesh_key, seed_i, f1, sizeof f1, &l1));
  CHECK_VS(vs_hs_start_responder(&hr, &id_b, mesh_key, seed_r));
  /* The responder answers a HELLO with a cookie first (issue 14): the
   * secret and address are the bench's, fixed, as the node's would be. */
  uint8_t cookie_secret[VS_COOKIE_SECRET_BYTES];
  memset(cookie_secret, 0x33, sizeof cookie_secret);
  CHECK_VS(vs_hs_responder_cookie(&hr, cookie_secret, NULL, (const uint8_t *)"bench", 5));
  CHECK_VS(vs_hs_on_frame(&hr, f1, l1, f2, sizeof f2, &l2, &done_r, sb));   /* HELLO -> COOKIE */
  CHECK_VS(vs_hs_on_frame(&hi, f2, l2, f1, sizeof f1, &l1, &done_i, sa));   /* COOKIE -> HELLO2 */
  CHECK_VS(vs_hs_on_frame(&hr, f1, l1, f2, sizeof f2, &l2, &done_r, sb));   /* HELLO2 -> REPLY */
  CHECK_VS(vs_hs_on_frame(&hi, f2, l2, f1, sizeof f1, &l1, &done_i, sa));   /* REPLY -> AUTH */
  CHECK_VS(vs_hs_on_frame(&hr, f1, l1, f2, sizeof f2, &l2, &done_r, sb));   /* AUTH */
  if (!done_i || !done_r) die("handshake", "not finished after HELLO, COOKIE, HELLO2, REPLY, AUTH");
  vs_hs_wipe(&hi);
  vs_hs_wipe(&hr);
}

static double crypto_once(const shape *s) {
  if (!s->have_frames) die("crypto", "no frame sizes recorded");
  vs_session sa, sb;
  handshake(&sa, &sb);
  uint8_t *msg = malloc(VS_MSG_BYTES_MAX), *frame = malloc(VS_FRAME_BYTES_MAX), *plain = malloc(VS_FRAME_BYTES_MAX);
  if (msg == NULL || frame == NULL || plain == NULL) die("malloc", "crypto");
  /* Plaintext: op encodings (the bytes do not change the cost). */
  size_t total = s->enc_off[s->n - 1] + s->enc_len[s->n - 1];
  for (size_t i = 0; i < VS_MSG_BYTES_MAX; i++) msg[i] = s->enc[i % total];
  bool ok = true;
  double t0 = now_s();
  for (uint32_t f = 0; f < s->frames; f++) {
    size_t out = 0, got = 0, len = s->frame_len[f] - VS_DATA_OVERHEAD_BYTES;
    CHECK_VS(vs_session_seal(&sa, msg, len, frame, VS_FRAME_BYTES_MAX, &out));
    CHECK_VS(vs_session_open(&sb, frame, out, plain, VS_FRAME_BYTES_MAX, &got));
    ok = ok && got == len;
  }
  for (uint64_t i = 0; i < s->n; i++) {
    uint8_t h[VS_HASH_BYTES];
    vs_op_hash_encoded(s->enc + s->enc_off[i], s->enc_len[i], h);
    ok = ok && memcmp(h, s->hash[i], VS_HASH_BYTES) == 0;
  }
  for (uint32_t run = 0; run < s->runs; run++) {
    uint64_t end = s->run_end[run];
    ok = ok && vs_chain_verify(id_a.pk, end, s->hash[end - 1], s->sig[run]);
  }
  double secs = now_s() - t0;
  if (!ok) die("crypto", "a frame, hash or signature did not check");
  memset(&sa, 0, sizeof sa); /* session keys of a benchmark: no secret worth a guaranteed wipe */
  memset(&sb, 0, sizeof sb);
  free(msg);
  free(frame);
  free(plain);
  return (double)s->n / secs;
}

/* ---- the baseline's faithfulness, checked on real receivers ---- */

/* What receiving adds to meta once per run. */
enum { META_HLC, META_STATE_HASH, META_KEYS };
static const meta_key RUN_META_KEYS[META_KEYS] = {[META_HLC] = {"hlc", 3}, [META_STATE_HASH] = {"state_hash", 10}};

/* Print meta's keys in `dir` that `dir0` lacks (printable bytes as is). */
static void meta_added_keys(const char *dir, const char *dir0) {
  MDB_env *env, *env0;
  CHECK_MDB(mdb_env_create(&env));
  CHECK_MDB(mdb_env_create(&env0));
  CHECK_MDB(mdb_env_set_maxdbs(env, SHAPE_DBS_MAX));
  CHECK_MDB(mdb_env_set_maxdbs(env0, SHAPE_DBS_MAX));
  CHECK_MDB(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600));
  CHECK_MDB(mdb_env_open(env0, dir0, MDB_RDONLY | MDB_NOTLS, 0600));
  MDB_txn *txn, *txn0;
  CHECK_MDB(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  CHECK_MDB(mdb_txn_begin(env0, NULL, MDB_RDONLY, &txn0));
  MDB_dbi dbi, dbi0;
  CHECK_MDB(mdb_dbi_open(txn, "meta", 0, &dbi));
  CHECK_MDB(mdb_dbi_open(txn0, "meta", 0, &dbi0));
  MDB_cursor *cur;
  CHECK_MDB(mdb_cursor_open(txn, dbi, &cur));
  MDB_val k, v, v0;
  int rc;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (mdb_get(txn0, dbi0, &k, &v0) == MDB_SUCCESS) continue;
    fprintf(stderr, "layout check: meta key added by receiving: \"");
    for (size_t i = 0; i < k.mv_size; i++) {
      uint8_t c = ((const uint8_t *)k.mv_data)[i];
      if (c >= 0x20 && c < 0x7f) fputc(c, stderr);
      else fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\" (%zu B value)\n", v.mv_size);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  mdb_txn_abort(txn0);
  mdb_env_close(env);
  mdb_env_close(env0);
}

static size_t probe_recv(const env_shape *e, const char *name, bool key) {
  return probe_size(e, name, key, RAW_VAL_MAX,
                    "the receive path no longer writes what the baseline mirrors; update raw_op()");
}

/* Before timing anything: replicate a few runs between two nodes, take the
 * sizes of what B's receive path put, write the same runs with the
 * baseline, and compare every named database and meta's keys. */
static void layout_probe(void) {
  uint64_t n = BENCH_PROBE_OPS;
  shape s;
  memset(&s, 0, sizeof s);
  char b_dir[4200], empty_dir[4200];
  replicate_once(n, VS_DURABILITY_NOSYNC, true, &s, b_dir, sizeof b_dir);
  if (s.runs < 2) die("layout check", "the probe should hold several runs");
  /* What a node's store holds before it receives anything: opened and
   * polled once (its engine's first tick writes the outbox counts). */
  fresh_dir(empty_dir, sizeof empty_dir, "probe-empty");
  uint64_t rng = 7, wake = 0;
  vs_node *empty = node_open(empty_dir, &id_b, VS_DURABILITY_NOSYNC, &rng);
  vs_node_out out;
  CHECK_VS(vs_node_poll(empty, BENCH_T0_MS + 1, &out, &wake));
  vs_node_close(empty);

  env_shape *e0 = malloc(sizeof *e0), *ours = malloc(sizeof *ours), *base = malloc(sizeof *base);
  if (e0 == NULL || ours == NULL || base == NULL) die("malloc", "probe");
  shape_env(empty_dir, RUN_META_KEYS, META_KEYS, e0);
  shape_env(b_dir, RUN_META_KEYS, META_KEYS, ours);
  sz.wal_val = probe_recv(ours, "wal", false);
  sz.opid_val = probe_recv(ours, "opid", false);
  sz.head_val = probe_recv(ours, "heads", false);
  sz.state_key = probe_recv(ours, "state", true);
  sz.state_val = probe_recv(ours, "state", false);
  sz.sig_val = probe_recv(ours, "sigs", false);
  sz.hlc_val = ours->meta_vals[META_HLC];
  sz.state_hash_val = ours->meta_vals[META_STATE_HASH];
  if (sz.wal_val != VS_WAL_RECORD_HEADER_BYTES + s.enc_len[0] || sz.state_key != 1u + BENCH_TARGET_BYTES ||
      sz.state_val != STATE_FIXED_BYTES + BENCH_TARGET_BYTES + BENCH_PAYLOAD_BYTES || sz.opid_val < 8 + VS_HASH_BYTES ||
      sz.head_val < 17 + VS_HASH_BYTES || sz.hlc_val < 8 || sz.hlc_val > RAW_VAL_MAX || sz.state_hash_val == 0 ||
      sz.state_hash_val > RAW_VAL_MAX)
    die("layout check", "a record of the receive path changed size; update raw_op() / raw_run_end()");

  raw_env r;
  raw_open(&r, VS_DURABILITY_NOSYNC);
  raw_fill(&r, &s, s.runs);
  raw_close(&r, true);
  shape_env(r.dir, RUN_META_KEYS, META_KEYS, base);
  bool ok = shapes_match("receiver", ours, base);
  /* meta also holds what store creation wrote (magic, format, sinks): count
   * only what receiving added. */
  size_t meta_added = shape_find(ours, "meta").entries - shape_find(e0, "meta").entries;
  if (meta_added != shape_find(base, "meta").entries || base->meta_vals[META_HLC] != sz.hlc_val ||
      base->meta_vals[META_STATE_HASH] != sz.state_hash_val) {
    fprintf(stderr, "layout check: receiving adds %zu meta keys, the baseline %zu\n", meta_added,
            shape_find(base, "meta").entries);
    meta_added_keys(b_dir, empty_dir);
    ok = false;
  }
  vt_rmrf(empty_dir);
  vt_rmrf(b_dir);
  vt_rmrf(r.dir);
  if (!ok) die("layout check", "the baseline no longer does what the receive path does; update raw_op()");
  printf("layout check: baseline puts = receive path's, per op: wal 8+%zu B, opid 16+%zu B, "
         "state %zu+%zu B; per run: heads 32+%zu B, sigs 16+%zu B, meta hlc 3+%zu B, state_hash 10+%zu B\n",
         sz.wal_val, sz.opid_val, sz.state_key, sz.state_val, sz.head_val, sz.sig_val, sz.hlc_val,
         sz.state_hash_val);
  free(e0);
  free(ours);
  free(base);
  shape_free(&s);
}

/* ---- driver ---- */

typedef struct mode_result {
  double apply, recv, raw, crypto, serial, worker;
  double cpu_a, cpu_b, cpu_w, serial_cpu_a, serial_cpu_b; /* us of CPU per op, per thread */
} mode_result;

static void describe_shape(const shape *s) {
  uint32_t mn = UINT32_MAX, mx = 0;
  uint64_t prev = 0, bytes = 0;
  for (uint32_t r = 0; r < s->runs; r++) {
    uint32_t len = (uint32_t)(s->run_end[r] - prev);
    prev = s->run_end[r];
    if (len < mn) mn = len;
    if (len > mx) mx = len;
  }
  for (uint32_t f = 0; f < s->frames; f++) bytes += s->frame_len[f];
  printf("shape: %" PRIu64 " ops of %" PRIu32 " B encoded in %" PRIu32 " signed runs (%" PRIu32 "..%" PRIu32
         " ops per run), %" PRIu32 " OPS frames A->B (%.0f KiB average)\n",
         s->n, s->enc_len[0], s->runs, mn, mx, s->frames, s->frames > 0 ? (double)bytes / s->frames / 1024.0 : 0.0);
}

/* a (pipelined receiver), a with B on one thread, b and c BENCH_REPS times
 * each, in another order every repetition; the first replication (in the
 * first mode) measures the shape. */
static mode_result bench_mode(uint64_t n, vs_durability d, shape *s) {
  static const int order[BENCH_REPS][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {2, 3, 0, 1}, {0, 2, 3, 1}};
  double v[11][BENCH_REPS];
  for (int rep = 0; rep < BENCH_REPS; rep++) {
    for (int k = 0; k < 4; k++) {
      switch (order[rep][k]) {
        case 0: {
          bool first = s->enc_off == NULL;
          repl_run r = replicate_once(n, d, true, s, NULL, 0);
          if (first) describe_shape(s);
          if (rep == 0)
            printf("  sender's outbox (%s, when B held all): %" PRIu64 " entries completed unclaimed by B's version "
                   "vector, %" PRIu64 " claimed and sent by the engine\n",
                   mode_name(d), r.a_done_held, r.a_ops_claimed);
          v[0][rep] = (double)n / r.secs;
          v[1][rep] = (double)n / r.b_secs;
          v[5][rep] = 100.0 * r.worker_secs / r.secs;
          v[6][rep] = 1e6 * r.cpu_a / (double)n;
          v[7][rep] = 1e6 * r.cpu_b / (double)n;
          v[8][rep] = 1e6 * r.cpu_w / (double)n;
          break;
        }
        case 1: v[2][rep] = raw_once(s, d); break;
        case 2: v[3][rep] = crypto_once(s); break;
        default: {
          repl_run r = replicate_once(n, d, false, s, NULL, 0);
          v[4][rep] = (double)n / r.secs;
          v[9][rep] = 1e6 * r.cpu_a / (double)n;
          v[10][rep] = 1e6 * r.cpu_b / (double)n;
          break;
        }
      }
    }
    printf("  run %d %s: apply %.0f (receiver-side %.0f, %.0f%% of the time in B's thread, %.0f%% in its pipeline "
           "thread; CPU per op: A %.2f, B %.2f, pipeline %.2f us), B on one thread %.0f (CPU per op: A %.2f, B %.2f "
           "us), raw lmdb %.0f, crypto %.0f ops/s\n",
           rep + 1, mode_name(d), v[0][rep], v[1][rep], 100.0 * v[0][rep] / v[1][rep], v[5][rep], v[6][rep], v[7][rep],
           v[8][rep], v[4][rep], v[9][rep], v[10][rep], v[2][rep], v[3][rep]);
    fflush(stdout);
  }
  mode_result m = {median3(v[0]), median3(v[1]), median3(v[2]), median3(v[3]), median3(v[4]), median3(v[5]),
                   median3(v[6]), median3(v[7]), median3(v[8]), median3(v[9]), median3(v[10])};
  return m;
}

static void print_mode(vs_durability d, const mode_result *m) {
  const char *name = mode_name(d);
  printf("%s apply: %.0f ops/s\n", name, m->apply);
  printf("%s apply receiver-side: %.0f ops/s\n", name, m->recv);
  printf("%s apply one-thread receiver: %.0f ops/s\n", name, m->serial);
  printf("%s cpu per op sender: %.2f us\n", name, m->cpu_a);
  printf("%s cpu per op receiver thread: %.2f us\n", name, m->cpu_b);
  printf("%s cpu per op receiver pipeline thread: %.2f us\n", name, m->cpu_w);
  printf("%s cpu per op one-thread receiver: %.2f us\n", name, m->serial_cpu_b);
  printf("%s raw lmdb same puts: %.0f ops/s\n", name, m->raw);
  printf("%s crypto alone: %.0f ops/s\n", name, m->crypto);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc > 2) die("usage", "bench_replicate [N]");
  uint64_t n = argc > 1 ? parse_ops(argv[1], "N") : 100000u;
  bench_base_init("vixsync-bench-replicate");
  describe_base();
  printf("op: %u-byte target + %u-byte payload, kind \"put\"; N = %" PRIu64 "; written in batches of %u; "
         "medians of %d runs\n",
         BENCH_TARGET_BYTES, BENCH_PAYLOAD_BYTES, n, BENCH_BATCH, BENCH_REPS);
  printf("replication: two nodes, each on its own thread (as on two devices), frames passed in memory; timed from connect to B's "
         "version vector holding all N\n");
  identities_init();
  layout_probe();
  fflush(stdout);

  shape s;
  memset(&s, 0, sizeof s);
  mode_result ns = bench_mode(n, VS_DURABILITY_NOSYNC, &s);
  print_mode(VS_DURABILITY_NOSYNC, &ns);
  mode_result sy = bench_mode(n, VS_DURABILITY_SYNC, &s);
  print_mode(VS_DURABILITY_SYNC, &sy);
  double lim_ns = ns.raw < ns.crypto ? ns.raw : ns.crypto;
  double lim_sy = sy.raw < sy.crypto ? sy.raw : sy.crypto;
  printf("raw lmdb same puts: %.0f ops/s\n", ns.raw);
  printf("crypto alone: %.0f ops/s\n", ns.crypto);
  printf("ratio apply: %.3f\n", ns.apply / lim_ns);
  printf("ratio apply sync: %.3f\n", sy.apply / lim_sy);
  printf("ratio apply vs raw lmdb: %.3f\n", ns.apply / ns.raw);
  printf("ratio apply vs crypto: %.3f\n", ns.apply / ns.crypto);
  printf("ratio apply receiver-side: %.3f\n", ns.recv / lim_ns);
  printf("ratio apply one-thread receiver: %.3f\n", ns.serial / lim_ns);
  printf("ratio apply pipelined vs one-thread receiver: %.3f\n", ns.apply / ns.serial);
  /* Both limits' work is on the one thread's path, one after the other:
   * with nothing else done, apply would reach 1 / (1/raw + 1/crypto). */
  printf("ratio apply vs serial limits: %.3f\n", ns.apply * (1.0 / ns.raw + 1.0 / ns.crypto));
  printf("ratio apply sync vs serial limits: %.3f\n", sy.apply * (1.0 / sy.raw + 1.0 / sy.crypto));
  shape_free(&s);
  vt_rmrf(bench_base);
  return 0;
}
