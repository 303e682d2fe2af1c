/* tests/test_fork.c: fork evidence under attack (issue 14 item 5), at the
 * store level: a hand-built equivocating origin E whose signing points the
 * attacker chooses (three branches, a fork below an op only the evidence
 * vouches for, runs too large to prove, a verdict lowered one seq at a
 * time, mutated evidence), and a refold that must equal a store that never
 * held the void ops. Written as an adversarial review; each finding is
 * fixed and pinned here. */
#include "testutil.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <time.h>
#include <cmocka.h>

#include "fixture.h"
#include "apply.h"
#include "vixsync/identity.h"
#include "vixsync/op.h"
#include "vixsync/state.h"
#include "vixsync/store.h"
#include "vixsync/wal.h"
#include "wire.h"
#include "vixsync/write.h"

#define T0_MS 1700000000000ull
#define MIB (1024ull * 1024ull)
#define CH_MAX 4096u

typedef struct st {
  char dir[512];
  vs_store *store;
} st;

static void st_open(st *s, const char *tag, uint64_t map) {
  memset(s, 0, sizeof *s);
  vt_tmpdir(s->dir, sizeof s->dir, tag);
  assert_err(vt_store_open(s->dir, map, &s->store), VS_OK);
}
static void st_close(st *s) {
  vs_store_close(s->store);
  vt_rmrf(s->dir);
}

static void ident(vs_identity *id, uint8_t salt) {
  uint8_t seed[VS_SEED_BYTES];
  for (unsigned i = 0; i < VS_SEED_BYTES; i++) seed[i] = (uint8_t)(salt * 31u + i);
  assert_err(vs_identity_from_seed(seed, id), VS_OK);
}

/* One branch of E's chain: ops[i].seq == i + 1. */
typedef struct chain {
  uint32_t n;
  vs_op ops[CH_MAX];
  uint8_t hashes[CH_MAX][VS_HASH_BYTES];
  uint8_t *bufs[CH_MAX];
} chain;

static chain *chain_new(void) {
  chain *c = calloc(1, sizeof *c);
  assert_non_null(c);
  return c;
}
static void chain_free(chain *c) {
  for (uint32_t i = 0; i < c->n; i++) free(c->bufs[i]);
  free(c);
}
/* Append op seq n+1: kind/target/payload (payload_bytes of `fill` when payload NULL). */
static void chain_add(chain *c, const vs_identity *id, const char *kind, const char *target, const char *payload,
                      uint32_t fill_bytes, uint8_t fill, uint64_t hlc) {
  assert_true(c->n < CH_MAX);
  uint32_t tb = (uint32_t)strlen(target);
  uint32_t pb = payload != NULL ? (uint32_t)strlen(payload) : fill_bytes;
  uint8_t *buf = malloc(tb + pb + 1);
  assert_non_null(buf);
  memcpy(buf, target, tb);
  if (payload != NULL) memcpy(buf + tb, payload, pb);
  else memset(buf + tb, fill, pb);
  uint8_t zero[VS_HASH_BYTES] = {0};
  const uint8_t *prev = c->n == 0 ? zero : c->hashes[c->n - 1];
  vs_op *op = &c->ops[c->n];
  assert_err(vs_op_init(op, id->pk, c->n + 1, hlc, prev, kind, buf, tb, buf + tb, pb), VS_OK);
  assert_err(vs_op_hash(op, c->hashes[c->n]), VS_OK);
  c->bufs[c->n] = buf;
  c->n++;
}
/* Copy the first k ops of `src` (same ops, fresh buffers). */
static void chain_prefix(chain *c, const chain *src, uint32_t k) {
  for (uint32_t i = 0; i < k; i++) {
    const vs_op *o = &src->ops[i];
    uint8_t *buf = malloc(o->target_bytes + o->payload_bytes + 1);
    assert_non_null(buf);
    memcpy(buf, o->target, o->target_bytes);
    memcpy(buf + o->target_bytes, o->payload, o->payload_bytes);
    c->ops[i] = *o;
    c->ops[i].target = buf;
    c->ops[i].payload = buf + o->target_bytes;
    memcpy(c->hashes[i], src->hashes[i], VS_HASH_BYTES);
    c->bufs[i] = buf;
  }
  c->n = k;
}
static void sign_at(const chain *c, const vs_identity *id, uint64_t seq, uint8_t sig[VS_SIGNATURE_BYTES]) {
  vs_chain_sign(id, seq, c->hashes[seq - 1], sig);
}
/* Apply ops [first..last] (seqs) of c with sig. */
static vs_err apply_seqs(vs_store *s, const chain *c, uint64_t first, uint64_t last, const uint8_t *sig,
                         vs_apply_result *res) {
  vs_apply_result r;
  if (res == NULL) res = &r;
  memset(res, 0, sizeof *res);
  return vs_apply_run(s, &c->ops[first - 1], (uint32_t)(last - first + 1), sig, T0_MS + 1000000,
                      VS_MAX_DRIFT_MS_DEFAULT, res);
}
static void hash_of(vs_store *s, uint8_t h[VS_HASH_BYTES]) { assert_err(vs_state_hash(s, h), VS_OK); }
static uint64_t void_from(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t v = 0;
  assert_err(vs_apply_void_from(s, origin, &v), VS_OK);
  return v;
}
static uint64_t head_of(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t h = 0;
  assert_err(vs_wal_head(s, origin, &h, NULL, NULL), VS_OK);
  return h;
}
/* Relay src's verdict on origin to dst (what a FORK message does). */
static vs_err relay_verdict(vs_store *src, vs_store *dst, const uint8_t origin[VS_ORIGIN_BYTES], vs_fork_result *fr) {
  uint8_t *buf = malloc(VS_MSG_BYTES_MAX);
  assert_non_null(buf);
  size_t len = 0;
  vs_err err = vs_apply_fork_evidence(src, origin, buf, VS_MSG_BYTES_MAX, &len);
  if (err == VS_OK) err = vs_apply_fork(dst, buf, len, fr);
  free(buf);
  return err;
}

/* ------------------------------------------------------------------------ */
/* A second, lower fork, below an op only the first verdict vouches for.     */
/* ------------------------------------------------------------------------ */
/* E equivocates twice. A: 1..6 signed only at 6. B: A's 1..3, then 4'..6'
 * signed at 6' (fork at 4). C: A's 1, then 2''..3'' signed at 3'' (fork at
 * 2). X holds A then sees B: verdict void_from 4, head 3 with the zero
 * signature. Y holds C and takes X's evidence (nothing to void: head 3 <
 * 4). Then the runs either can send the other (any start, to its next
 * signed op, as add_run/WANT answers do): X's 1..3 ends on the zero
 * signature, and goes on with the evidence's proof (which links to X's 3),
 * so the fork at 2 is proven and both end on one verdict and one state. */
static void test_fork_lower_fork_below_a_vouched_head(void **state) {
  (void)state;
  vs_identity e;
  ident(&e, 7);
  chain *a = chain_new(), *b = chain_new(), *c = chain_new();
  for (uint32_t i = 1; i <= 6; i++) {
    char t[8];
    snprintf(t, sizeof t, "k%u", i);
    chain_add(a, &e, "put", t, "A", 0, 0, T0_MS + i);
  }
  chain_prefix(b, a, 3);
  for (uint32_t i = 4; i <= 6; i++) chain_add(b, &e, "put", "kb", "B", 0, 0, T0_MS + i);
  chain_prefix(c, a, 1);
  for (uint32_t i = 2; i <= 3; i++) chain_add(c, &e, "put", "kc", "C", 0, 0, T0_MS + i);
  uint8_t sa6[64], sb6[64], sc3[64];
  sign_at(a, &e, 6, sa6);
  sign_at(b, &e, 6, sb6);
  sign_at(c, &e, 3, sc3);

  st x, y;
  st_open(&x, "rv-f1x", 64 * MIB);
  st_open(&y, "rv-f1y", 64 * MIB);
  vs_apply_result r;
  assert_err(apply_seqs(x.store, a, 1, 6, sa6, &r), VS_OK);
  assert_err(apply_seqs(x.store, b, 1, 6, sb6, &r), VS_ERR_FORK);
  assert_true(r.verdict);
  assert_int_equal(void_from(x.store, e.pk), 4);
  assert_int_equal(head_of(x.store, e.pk), 3);
  assert_err(apply_seqs(y.store, c, 1, 3, sc3, &r), VS_OK);
  vs_fork_result fr;
  assert_err(relay_verdict(x.store, y.store, e.pk, &fr), VS_OK);
  assert_true(fr.verdict);
  assert_int_equal(head_of(y.store, e.pk), 3);

  /* What X can send: any start s, up to its next signed op (3: zero sig). */
  uint64_t end = 0;
  assert_err(vs_apply_next_signed(x.store, e.pk, 1, &end), VS_OK);
  assert_int_equal(end, 3);
  uint8_t xs[64];
  assert_err(vs_apply_sig_get(x.store, &a->ops[2].id, xs), VS_OK);
  for (uint64_t s = 1; s <= 3; s++) {
    vs_err err = apply_seqs(y.store, a, s, 3, xs, &r);
    print_message("X->Y run %llu..3 (zero sig): %s verdict=%d suspect=%llu\n", (unsigned long long)s,
                  vs_strerror(err), r.verdict, (unsigned long long)r.suspect_seq);
  }
  /* What Y can send: any start s, to 3'' (signed). */
  for (uint64_t s = 1; s <= 3; s++) {
    vs_err err = apply_seqs(x.store, c, s, 3, sc3, &r);
    print_message("Y->X run %llu..3'' (signed): %s verdict=%d suspect=%llu\n", (unsigned long long)s,
                  vs_strerror(err), r.verdict, (unsigned long long)r.suspect_seq);
  }
  uint8_t hx[VS_HASH_BYTES], hy[VS_HASH_BYTES];
  hash_of(x.store, hx);
  hash_of(y.store, hy);
  print_message("void_from X=%llu Y=%llu\n", (unsigned long long)void_from(x.store, e.pk),
                (unsigned long long)void_from(y.store, e.pk));
  /* The design: every node reaches the same verdict (here: void from 2,
   * proven by C vs A/B) and equal states. */
  assert_int_equal(void_from(x.store, e.pk), void_from(y.store, e.pk));
  assert_memory_equal(hx, hy, VS_HASH_BYTES);
  st_close(&x);
  st_close(&y);
  chain_free(a);
  chain_free(b);
  chain_free(c);
}

/* A node on a third branch takes a verdict: C = A's 1, then 2''..5''
 * signed only at 5''. Y holds C, takes the verdict "void from 4" (proved by
 * A vs B, whose common prev is A's op 3). Y's head goes back to 3''; no
 * zero signature there (hash(3'') is not the evidence's prev: it would be
 * refused everywhere), but the verdict keeps Y's signature of its void
 * 4''..5'' (the stash), so the fork at 2 is proven on Y when X's 1..3
 * arrives, and every node ends on it. */
static void test_fork_third_branch_keeps_its_signature(void **state) {
  (void)state;
  vs_identity e;
  ident(&e, 12);
  chain *a = chain_new(), *b = chain_new(), *c = chain_new();
  for (uint32_t i = 1; i <= 6; i++) chain_add(a, &e, "put", "k", "A", 0, 0, T0_MS + i);
  chain_prefix(b, a, 3);
  for (uint32_t i = 4; i <= 6; i++) chain_add(b, &e, "put", "kb", "B", 0, 0, T0_MS + i);
  chain_prefix(c, a, 1);
  for (uint32_t i = 2; i <= 5; i++) chain_add(c, &e, "put", "kc", "C", 0, 0, T0_MS + i);
  uint8_t sa6[64], sb6[64], sc5[64];
  sign_at(a, &e, 6, sa6);
  sign_at(b, &e, 6, sb6);
  sign_at(c, &e, 5, sc5);
  st x, y, z;
  st_open(&x, "rv-f1bx", 64 * MIB);
  st_open(&y, "rv-f1by", 64 * MIB);
  st_open(&z, "rv-f1bz", 64 * MIB);
  vs_apply_result r;
  assert_err(apply_seqs(x.store, a, 1, 6, sa6, &r), VS_OK);
  assert_err(apply_seqs(x.store, b, 1, 6, sb6, &r), VS_ERR_FORK);
  assert_true(r.verdict);
  assert_err(apply_seqs(y.store, c, 1, 5, sc5, &r), VS_OK);
  vs_fork_result fr;
  assert_err(relay_verdict(x.store, y.store, e.pk, &fr), VS_OK);
  assert_true(fr.refolded);
  assert_err(relay_verdict(x.store, z.store, e.pk, &fr), VS_OK);
  uint8_t hh[VS_HASH_BYTES];
  uint64_t hs = 0;
  assert_err(vs_wal_head(y.store, e.pk, &hs, hh, NULL), VS_OK);
  assert_int_equal(hs, 3);
  assert_memory_equal(hh, c->hashes[2], VS_HASH_BYTES); /* C's 3'' */
  /* Nothing vouches for 3'': no zero signature there (it would be refused
   * everywhere), and 1..3'' is not relayed... */
  uint8_t ysig[64];
  assert_err(vs_apply_sig_get(y.store, &c->ops[2].id, ysig), VS_ERR_NOTFOUND);
  /* ...but Y kept its signature of 4''..5'' (the stash), so X's 1..3 (its
   * zero signature, vouched for by the evidence) proves the fork at 2 on Y. */
  uint8_t xs[64];
  assert_err(vs_apply_sig_get(x.store, &a->ops[2].id, xs), VS_OK);
  assert_err(apply_seqs(y.store, a, 1, 3, xs, &r), VS_ERR_FORK);
  assert_true(r.verdict);
  assert_int_equal(void_from(y.store, e.pk), 2);
  assert_err(relay_verdict(y.store, x.store, e.pk, &fr), VS_OK);
  assert_true(fr.verdict && fr.refolded);
  assert_err(relay_verdict(y.store, z.store, e.pk, &fr), VS_OK);
  uint8_t hx[VS_HASH_BYTES], hy[VS_HASH_BYTES], hz[VS_HASH_BYTES];
  hash_of(x.store, hx);
  hash_of(y.store, hy);
  hash_of(z.store, hz);
  assert_int_equal(void_from(x.store, e.pk), 2);
  assert_int_equal(void_from(z.store, e.pk), 2);
  assert_memory_equal(hx, hy, VS_HASH_BYTES);
  /* Z held nothing of E: the verdict alone; op 1 (below the fork, vouched
   * for by the new evidence) reaches it from Y or X like any run. */
  assert_memory_not_equal(hz, hx, VS_HASH_BYTES);
  st_close(&x);
  st_close(&y);
  st_close(&z);
  chain_free(a);
  chain_free(b);
  chain_free(c);
}

/* ------------------------------------------------------------------------ */
/* A fork whose two branches would not fit one message.                      */
/* ------------------------------------------------------------------------ */
/* E signs each branch once, at its end: A = 9 puts of 60 KiB (one run of
 * ~540 KiB, a valid OPS message on its own), B the same seqs with other
 * bytes. Evidence would need both: more than one message, so the fork could
 * never be judged and X and Y would split for good (issue 14 item 5's
 * symptom). A run may weigh at most VS_RUN_BYTES_MAX (half a message):
 * both are refused by every node, so nobody holds either. */
static void test_fork_runs_too_large_to_prove_are_refused(void **state) {
  (void)state;
  vs_identity e;
  ident(&e, 8);
  chain *a = chain_new(), *b = chain_new();
  for (uint32_t i = 1; i <= 9; i++) {
    chain_add(a, &e, "put", "big", NULL, 60 * 1024, 'a', T0_MS + i);
    chain_add(b, &e, "put", "big", NULL, 60 * 1024, 'b', T0_MS + i);
  }
  size_t run_bytes = 0;
  for (uint32_t i = 0; i < 9; i++) run_bytes += 4 + vs_op_encoded_bytes(&a->ops[i]);
  print_message("one branch: %zu bytes (message max %u)\n", run_bytes, VS_MSG_BYTES_MAX);
  assert_true(run_bytes + 200 < VS_MSG_BYTES_MAX);
  uint8_t sa[64], sb[64];
  sign_at(a, &e, 9, sa);
  sign_at(b, &e, 9, sb);
  st x, y;
  st_open(&x, "rv-f2x", 64 * MIB);
  st_open(&y, "rv-f2y", 64 * MIB);
  assert_true(run_bytes > VS_RUN_BYTES_MAX);
  vs_apply_result r;
  assert_err(apply_seqs(x.store, a, 1, 9, sa, &r), VS_ERR_INVAL);
  assert_err(apply_seqs(y.store, b, 1, 9, sb, &r), VS_ERR_INVAL);
  assert_int_equal(head_of(x.store, e.pk), 0);
  assert_int_equal(head_of(y.store, e.pk), 0);
  /* Cut in two runs, each under the limit, the branches are provable. */
  uint8_t sa5[64], sb5[64];
  sign_at(a, &e, 5, sa5);
  sign_at(b, &e, 5, sb5);
  assert_err(apply_seqs(x.store, a, 1, 5, sa5, &r), VS_OK);
  assert_err(apply_seqs(y.store, b, 1, 5, sb5, &r), VS_OK);
  assert_err(apply_seqs(x.store, b, 1, 5, sb5, &r), VS_ERR_FORK);
  assert_true(r.verdict);
  vs_fork_result fr;
  assert_err(relay_verdict(x.store, y.store, e.pk, &fr), VS_OK);
  uint8_t hx[VS_HASH_BYTES], hy[VS_HASH_BYTES];
  hash_of(x.store, hx);
  hash_of(y.store, hy);
  assert_memory_equal(hx, hy, VS_HASH_BYTES);
  st_close(&x);
  st_close(&y);
  chain_free(a);
  chain_free(b);
}

/* ------------------------------------------------------------------------ */
/* One equivocating member lowers its verdict one seq at a time.             */
/* ------------------------------------------------------------------------ */
/* X holds FILL ops of an honest origin H and K signed single-op runs of E.
 * E then sends, for s = K down to 1, a different signed op at s (same prev):
 * each is an exact split, so each lowers the verdict by one, in its own
 * write transaction, with a refold of the WHOLE WAL (all FILL + K records).
 * All K runs fit in one OPS message (~K x 150 bytes, VS_WIRE_RUNS_MAX 4096).
 * Cost grows as K x WAL; the test prints it (the node bounds how often it
 * pays it). */
static void test_fork_verdict_lowered_seq_by_seq(void **state) {
  (void)state;
  enum { FILL = 4000, K = 16 };
  vs_identity h, e;
  ident(&h, 9);
  ident(&e, 10);
  st x;
  st_open(&x, "rv-f3x", 1024 * MIB);
  assert_err(vs_store_set_identity(x.store, &h), VS_OK);
  static vs_write_req reqs[1000];
  static char tg[1000][16];
  for (uint32_t b = 0; b < FILL / 1000; b++) {
    for (uint32_t i = 0; i < 1000; i++) {
      snprintf(tg[i], sizeof tg[i], "t%u", (b * 1000 + i) % 5000);
      memset(&reqs[i], 0, sizeof reqs[i]);
      reqs[i].kind = "put";
      reqs[i].target = (const uint8_t *)tg[i];
      reqs[i].target_bytes = (uint32_t)strlen(tg[i]);
      reqs[i].payload = (const uint8_t *)"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
      reqs[i].payload_bytes = 64;
    }
    assert_err(vs_write_batch(x.store, h.pk, reqs, 1000, T0_MS + b, NULL), VS_OK);
  }
  chain *a = chain_new();
  for (uint32_t i = 1; i <= K; i++) chain_add(a, &e, "put", "e", "v", 0, 0, T0_MS + i);
  uint8_t sig[64];
  for (uint32_t i = 1; i <= K; i++) {
    sign_at(a, &e, i, sig);
    assert_err(apply_seqs(x.store, a, i, i, sig, NULL), VS_OK);
  }
  /* The alternative ops: alt[s] has prev = a's op s-1. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint32_t verdicts = 0;
  for (uint32_t s = K; s >= 1; s--) {
    chain *alt = chain_new();
    chain_prefix(alt, a, s - 1);
    chain_add(alt, &e, "put", "e", "w", 0, 0, T0_MS + s);
    sign_at(alt, &e, s, sig);
    vs_apply_result r;
    assert_err(apply_seqs(x.store, alt, s, s, sig, &r), VS_ERR_FORK);
    if (r.verdict) verdicts++;
    chain_free(alt);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  print_message("%u verdict lowerings (one OPS message worth), WAL %u records: %.2f s (%.1f ms each)\n", verdicts,
                FILL + K, secs, 1000.0 * secs / K);
  assert_int_equal(verdicts, K);
  assert_int_equal(void_from(x.store, e.pk), 1);
  /* The cost (one refold of the whole log per lowering) is why vs_node
   * takes at most VS_NODE_VERDICTS_PER_MIN verdicts a minute
   * (test_node_verdict_lowerings_are_rate_limited); timing decides nothing
   * here. */
  (void)secs;
  chain_free(a);
  st_close(&x);
}

/* ------------------------------------------------------------------------ */
/* The public query: vs_store_fork_get (vixsync/store.h).                    */
/* ------------------------------------------------------------------------ */
/* Before any evidence an origin is NOTFOUND; once a run proves E signed two
 * ops at seq 3, vs_store_fork_get says 3, as the internal read does, and
 * other origins stay NOTFOUND. */
static void test_fork_public_query(void **state) {
  (void)state;
  vs_identity e, other;
  ident(&e, 11);
  ident(&other, 12);
  st x;
  st_open(&x, "rv-fq", 16 * MIB);
  uint64_t from = 77;
  assert_err(vs_store_fork_get(x.store, e.pk, &from), VS_ERR_NOTFOUND);
  assert_int_equal(from, 77); /* untouched without a verdict */
  assert_err(vs_store_fork_get(NULL, e.pk, &from), VS_ERR_INVAL);
  assert_err(vs_store_fork_get(x.store, NULL, &from), VS_ERR_INVAL);
  assert_err(vs_store_fork_get(x.store, e.pk, NULL), VS_ERR_INVAL);

  chain *a = chain_new(), *b = chain_new();
  for (uint32_t i = 1; i <= 3; i++) chain_add(a, &e, "put", "e", "v", 0, 0, T0_MS + i);
  chain_prefix(b, a, 2);
  chain_add(b, &e, "put", "e", "w", 0, 0, T0_MS + 3);
  uint8_t sig[64];
  sign_at(a, &e, 3, sig);
  assert_err(apply_seqs(x.store, a, 1, 3, sig, NULL), VS_OK);
  assert_err(vs_store_fork_get(x.store, e.pk, &from), VS_ERR_NOTFOUND);
  sign_at(b, &e, 3, sig);
  vs_apply_result r;
  assert_err(apply_seqs(x.store, b, 3, 3, sig, &r), VS_ERR_FORK);
  assert_true(r.verdict);
  assert_err(vs_store_fork_get(x.store, e.pk, &from), VS_OK);
  assert_int_equal(from, 3);
  assert_int_equal(from, void_from(x.store, e.pk));
  assert_err(vs_store_fork_get(x.store, other.pk, &from), VS_ERR_NOTFOUND);
  /* The head is back at seq 2, so either branch's seq 3 links to it: the
   * WAL's own append path refuses it as void too, changing nothing. */
  uint64_t last = 0;
  assert_err(vs_wal_last_lsn(x.store, &last), VS_OK);
  assert_err(vs_wal_append(x.store, &b->ops[2], T0_MS + 9, NULL), VS_ERR_FORKED);
  assert_err(vs_wal_append(x.store, &a->ops[2], T0_MS + 9, NULL), VS_ERR_FORKED);
  uint64_t after = 0;
  assert_err(vs_wal_last_lsn(x.store, &after), VS_OK);
  assert_int_equal(after, last);
  chain_free(a);
  chain_free(b);
  st_close(&x);
}

/* ------------------------------------------------------------------------ */
/* Held: refold equals the state of a node that never held the void ops.     */
/* ------------------------------------------------------------------------ */
typedef struct dump {
  uint8_t b[1 << 20];
  size_t n;
} dump;
static vs_err dump_cb(const vs_state_entry *en, void *ctx) {
  dump *d = ctx;
  size_t need = 4 + en->target_bytes + 4 + 4 + en->value_bytes + 8 + 32 + 8;
  if (d->n + need > sizeof d->b) return VS_ERR_LIMIT;
  memcpy(d->b + d->n, &en->target_bytes, 4), d->n += 4;
  memcpy(d->b + d->n, en->target, en->target_bytes), d->n += en->target_bytes;
  uint32_t k = (uint32_t)en->kind;
  memcpy(d->b + d->n, &k, 4), d->n += 4;
  memcpy(d->b + d->n, &en->value_bytes, 4), d->n += 4;
  if (en->value_bytes) memcpy(d->b + d->n, en->value, en->value_bytes), d->n += en->value_bytes;
  int64_t ctr = en->kind == VS_STATE_COUNTER ? en->counter : 0;
  memcpy(d->b + d->n, &ctr, 8), d->n += 8;
  memcpy(d->b + d->n, en->origin, 32), d->n += 32;
  memcpy(d->b + d->n, &en->hlc, 8), d->n += 8;
  return VS_OK;
}

static void test_fork_refold_equals_never_held(void **state) {
  (void)state;
  static const char *kinds[] = {"put", "del", "incr", "incr", "put", "note"};
  for (uint32_t round = 0; round < 20; round++) {
    vs_identity h, e;
    ident(&h, (uint8_t)(20 + round));
    ident(&e, (uint8_t)(60 + round));
    chain *ch = chain_new(), *ce = chain_new(), *ce2 = chain_new();
    uint32_t rnd = 12345u + round * 7919u;
#define RND() (rnd = rnd * 1103515245u + 12345u, (rnd >> 8))
    for (uint32_t i = 0; i < 40; i++) {
      char t[4] = {'t', (char)('0' + RND() % 4), 0, 0};
      const char *k = kinds[RND() % 6];
      char pl[8];
      snprintf(pl, sizeof pl, "%d", (int)(RND() % 9) - 3);
      chain_add(ch, &h, k, t, strcmp(k, "del") == 0 ? "" : pl, 0, 0, T0_MS + RND() % 50);
      t[1] = (char)('0' + RND() % 4);
      k = kinds[RND() % 6];
      snprintf(pl, sizeof pl, "%d", (int)(RND() % 9) - 3);
      chain_add(ce, &e, k, t, strcmp(k, "del") == 0 ? "" : pl, 0, 0, T0_MS + RND() % 50);
    }
    uint32_t d = 1 + RND() % 40;
    chain_prefix(ce2, ce, d - 1);
    chain_add(ce2, &e, "put", "t0", "other", 0, 0, T0_MS + 99);
    uint8_t sh[64], se[64], se2[64], sd[64];
    sign_at(ch, &h, 40, sh);
    sign_at(ce, &e, 40, se);
    sign_at(ce2, &e, d, se2);
    st x, z;
    st_open(&x, "rv-dx", 64 * MIB);
    st_open(&z, "rv-dz", 64 * MIB);
    /* X: interleaved, everything, then the fork. */
    assert_err(apply_seqs(x.store, ce, 1, 20, (sign_at(ce, &e, 20, sd), sd), NULL), VS_OK);
    assert_err(apply_seqs(x.store, ch, 1, 40, sh, NULL), VS_OK);
    assert_err(apply_seqs(x.store, ce, 21, 40, se, NULL), VS_OK);
    vs_apply_result r;
    assert_err(apply_seqs(x.store, ce2, d, d, se2, &r), VS_ERR_FORK);
    assert_true(r.verdict);
    /* Z: evidence first, then H, then only E's ops below d. */
    vs_fork_result fr;
    assert_err(relay_verdict(x.store, z.store, e.pk, &fr), VS_OK);
    assert_err(apply_seqs(z.store, ch, 1, 40, sh, NULL), VS_OK);
    if (d > 1) {
      uint8_t s2[64];
      sign_at(ce, &e, d - 1, s2);
      assert_err(apply_seqs(z.store, ce, 1, d - 1, s2, NULL), VS_OK);
    }
    uint8_t hx[32], hz[32];
    hash_of(x.store, hx);
    hash_of(z.store, hz);
    static dump dx, dz;
    dx.n = dz.n = 0;
    assert_err(vs_state_dump(x.store, true, dump_cb, &dx), VS_OK);
    assert_err(vs_state_dump(z.store, true, dump_cb, &dz), VS_OK);
    assert_memory_equal(hx, hz, 32);
    assert_int_equal(dx.n, dz.n);
    assert_memory_equal(dx.b, dz.b, dx.n);
    st_close(&x);
    st_close(&z);
    chain_free(ch);
    chain_free(ce);
    chain_free(ce2);
  }
}

/* Held: mutated evidence never crashes and never voids anything else. */
static void test_fork_mutated_evidence_voids_nothing(void **state) {
  (void)state;
  vs_identity e;
  ident(&e, 11);
  chain *a = chain_new(), *b = chain_new();
  for (uint32_t i = 1; i <= 4; i++) chain_add(a, &e, "put", "k", "A", 0, 0, T0_MS + i);
  chain_prefix(b, a, 2);
  for (uint32_t i = 3; i <= 5; i++) chain_add(b, &e, "incr", "k", "1", 0, 0, T0_MS + i);
  uint8_t sa[64], sb[64];
  sign_at(a, &e, 4, sa);
  sign_at(b, &e, 5, sb);
  st x, z;
  st_open(&x, "rv-fzx", 64 * MIB);
  st_open(&z, "rv-fzz", 64 * MIB);
  assert_err(apply_seqs(x.store, a, 1, 4, sa, NULL), VS_OK);
  vs_apply_result r;
  assert_err(apply_seqs(x.store, b, 1, 5, sb, &r), VS_ERR_FORK);
  assert_true(r.verdict);
  uint8_t *ev = malloc(VS_MSG_BYTES_MAX), *m = malloc(VS_MSG_BYTES_MAX);
  size_t len = 0;
  assert_err(vs_apply_fork_evidence(x.store, e.pk, ev, VS_MSG_BYTES_MAX, &len), VS_OK);
  uint64_t rng = 99;
  uint32_t accepted = 0;
  for (uint32_t it = 0; it < 20000; it++) {
    memcpy(m, ev, len);
    size_t ml = len;
    uint32_t nmut = 1 + (uint32_t)(vt_sm64(&rng) % 3);
    for (uint32_t k = 0; k < nmut; k++) {
      uint64_t r2 = vt_sm64(&rng);
      switch (r2 % 4) {
        case 0: m[(r2 >> 8) % ml] ^= (uint8_t)(1u << ((r2 >> 40) % 8)); break;
        case 1: ml = 1 + (r2 >> 8) % ml; break;
        case 2: { size_t at = (r2 >> 8) % (ml > 4 ? ml - 4 : 1); uint32_t v = (uint32_t)(r2 >> 32); memcpy(m + at, &v, 4); } break;
        default: m[(r2 >> 8) % ml] = (uint8_t)(r2 >> 48); break;
      }
    }
    vs_fork_msg fm;
    vs_err de = vs_msg_fork_decode(m, ml, &fm);
    vs_fork_msg_free(&fm);
    (void)de;
    vs_fork_result fr;
    memset(&fr, 0, sizeof fr);
    vs_err err = vs_apply_fork(z.store, m, ml, &fr);
    if (err == VS_OK && fr.verdict) {
      accepted++;
      print_message("accepted: len %zu (orig %zu)\n", ml, len);
      for (size_t q = 0; q < ml && q < len; q++)
        if (m[q] != ev[q]) print_message("  byte %zu: %02x -> %02x\n", q, ev[q], m[q]);
      assert_memory_equal(fr.origin, e.pk, 32);
      assert_int_equal(fr.seq, 3);
    }
  }
  print_message("mutations accepted as verdicts: %u\n", accepted);
  free(ev);
  free(m);
  st_close(&x);
  st_close(&z);
  chain_free(a);
  chain_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fork_lower_fork_below_a_vouched_head),
      cmocka_unit_test(test_fork_third_branch_keeps_its_signature),
      cmocka_unit_test(test_fork_runs_too_large_to_prove_are_refused),
      cmocka_unit_test(test_fork_refold_equals_never_held),
      cmocka_unit_test(test_fork_verdict_lowered_seq_by_seq),
      cmocka_unit_test(test_fork_mutated_evidence_voids_nothing),
      cmocka_unit_test(test_fork_public_query),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
