/* tests/wire_ops_fixture.h: OPS messages (wire v7) for test_wire_ops.c:
 * chains of encoded ops, the compact form written out by hand from the
 * layout in src/wire_msg.c (not by the codec: the writer is checked against
 * these bytes, and they forge what the writer refuses), and a callback that
 * checks what the decoder hands on against the chains.
 *
 * Apart from wire_fixture.h on purpose: the OPS helpers there pin the v6
 * layout (a length-prefixed encoding per op, targets pointing into the
 * input), and the OPS tests need no handshake, identity or mesh key. */
#ifndef VIXSYNC_WIRE_OPS_FIXTURE_H
#define VIXSYNC_WIRE_OPS_FIXTURE_H

#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "apply.h"
#include "wire.h"

/* Wire v6 sizes, the bound a v7 message is held to once rebuilt: the type
 * and a u32 run count; per run origin, u32 op count and sig; per op a u32
 * length before its encoding. */
#define V6_MSG_HEADER_BYTES 5u
#define V6_RUN_HEADER_BYTES 100u
#define V6_OP_SLOT_BYTES 4u

static uint8_t OA[32], OB[32], OC[32];

static inline void fill(uint8_t *p, size_t n, uint8_t salt) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7u + salt);
}

static inline int ops_group_setup(void **state) {
  (void)state;
  vt_origin(OA, 0xa1);
  vt_origin(OB, 0xb2);
  vt_origin(OC, 0xc3);
  return 0;
}

/* LEB128 and zigzag written out here from their definitions, not taken
 * from src/internal.h or wire_msg.c. */
static inline size_t var_bytes(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80u; v >>= 7) n++;
  return n;
}
/* zigzag of the signed difference d (two's complement): 0, -1, 1, -2 ..
 * map to 0, 1, 2, 3 .. */
static inline uint64_t zz(uint64_t d) { return (d >> 63) != 0 ? ~(d << 1) : d << 1; }

/* ------------------------------------------------------------------------ */
/* Chains of encoded ops                                                    */
/* ------------------------------------------------------------------------ */

/* `count` encoded ops of `origin` from seq `first`, each linked to the one
 * before by prev (unless pushed with a prev of its own). Heap memory:
 * chain_free. op[k] is enc[k] decoded (its target and payload point into
 * enc[k]). */
typedef struct chain {
  uint8_t origin[32];
  uint8_t sig[64];
  uint64_t first;
  uint32_t count, cap;
  uint8_t **enc;
  const uint8_t **ptr; /* enc, as the writer takes it */
  uint32_t *enc_bytes;
  vs_op *op;
} chain;

static inline void chain_init(chain *c, const uint8_t origin[32], uint64_t first, uint32_t cap, uint8_t salt) {
  memset(c, 0, sizeof *c);
  memcpy(c->origin, origin, 32);
  fill(c->sig, 64, salt);
  c->first = first;
  c->cap = cap;
  c->enc = calloc(cap, sizeof *c->enc);
  c->ptr = calloc(cap, sizeof *c->ptr);
  c->enc_bytes = calloc(cap, sizeof *c->enc_bytes);
  c->op = calloc(cap, sizeof *c->op);
  assert_true(c->enc != NULL && c->ptr != NULL && c->enc_bytes != NULL && c->op != NULL);
}

static inline void chain_free(chain *c) {
  for (uint32_t k = 0; k < c->count; k++) free(c->enc[k]);
  free(c->enc);
  free(c->ptr);
  free(c->enc_bytes);
  free(c->op);
  memset(c, 0, sizeof *c);
}

/* Append the next op. `prev` NULL: the hash of the last op (for the first
 * op: 32 zero bytes at seq 1, else 32 bytes from the sig's salt, a chain
 * that starts after ops this test never made). */
static inline void chain_push_prev(chain *c, uint64_t hlc, const uint8_t *prev, const char *kind, const void *target,
                                   uint32_t target_bytes, const void *payload, uint32_t payload_bytes) {
  assert_true(c->count < c->cap);
  uint32_t k = c->count;
  uint8_t link[32] = {0};
  if (prev != NULL) memcpy(link, prev, 32);
  else if (k > 0) vs_op_hash_encoded(c->enc[k - 1], c->enc_bytes[k - 1], link);
  else if (c->first > 1) fill(link, 32, (uint8_t)(c->sig[0] + 0x40u));
  vs_op op;
  assert_err(vs_op_init(&op, c->origin, c->first + k, hlc, link, kind, target, target_bytes, payload, payload_bytes),
             VS_OK);
  size_t n = vs_op_encoded_bytes(&op), got = 0;
  c->enc[k] = malloc(n);
  assert_non_null(c->enc[k]);
  assert_err(vs_op_encode(&op, c->enc[k], n, &got), VS_OK);
  assert_int_equal(got, n);
  c->enc_bytes[k] = (uint32_t)n;
  c->ptr[k] = c->enc[k];
  assert_err(vs_op_decode(c->enc[k], n, &c->op[k]), VS_OK);
  c->count++;
}

static inline void chain_push(chain *c, uint64_t hlc, const char *kind, const void *target, uint32_t target_bytes,
                              const void *payload, uint32_t payload_bytes) {
  chain_push_prev(c, hlc, NULL, kind, target, target_bytes, payload, payload_bytes);
}

/* The usual chain: kinds put, put, incr, put, put, incr .. (runs of equal
 * kinds and changes), targets "t<salt>.<k>", payloads of 0..23 bytes (empty
 * every third), hlc 1000 + 3k. */
static inline void make_chain(chain *c, const uint8_t origin[32], uint64_t first, uint32_t count, uint8_t salt) {
  chain_init(c, origin, first, count, salt);
  for (uint32_t k = 0; k < count; k++) {
    char target[24];
    uint8_t payload[24];
    int t = snprintf(target, sizeof target, "t%u.%u", (unsigned)salt, (unsigned)k);
    fill(payload, sizeof payload, (uint8_t)(salt + k));
    chain_push(c, 1000u + 3u * k, k % 3 == 2 ? "incr" : "put", target, (uint32_t)t, payload,
               k % 3 == 0 ? 0u : (uint32_t)(sizeof payload - k % 24u));
  }
}

/* What ops from..from+count-1 of c take as wire v6 laid them out (the
 * writer's `used` and the decoder's bound), run header included. */
static inline uint64_t v6_run_bytes(const chain *c, uint32_t from, uint32_t count) {
  uint64_t n = V6_RUN_HEADER_BYTES;
  for (uint32_t k = from; k < from + count; k++) n += V6_OP_SLOT_BYTES + c->enc_bytes[k];
  return n;
}

/* ------------------------------------------------------------------------ */
/* Raw OPS bytes (wire v7), assembled without the writer's checks           */
/* ------------------------------------------------------------------------ */

/* Varint forms a raw message can be given at its `bad_at`-th varint
 * (0-based, counted from the run count), to forge what no encoder writes. */
enum {
  VAR_SHORTEST = 0,
  VAR_PADDED,   /* the same value, one byte longer (a trailing 0x00 group) */
  VAR_PAST_64,  /* ten bytes whose value needs 65 bits */
  VAR_ELEVEN,   /* eleven bytes (0x80 x 10, 0x00) */
};

typedef struct raw {
  uint8_t *b;
  size_t n, cap;
  uint32_t vars;   /* varints written so far */
  uint32_t bad_at; /* which varint gets bad_form (UINT32_MAX: none) */
  int bad_form;
} raw;

static inline void raw_init(raw *r, size_t cap) {
  memset(r, 0, sizeof *r);
  r->b = malloc(cap);
  assert_non_null(r->b);
  r->cap = cap;
  r->bad_at = UINT32_MAX;
}
static inline void raw_free(raw *r) {
  free(r->b);
  r->b = NULL;
}
static inline void raw_put(raw *r, const void *p, size_t n) {
  assert_true(n <= r->cap - r->n);
  if (n > 0) memcpy(r->b + r->n, p, n);
  r->n += n;
}
static inline void raw_u8(raw *r, uint8_t v) { raw_put(r, &v, 1); }
static inline void raw_u64(raw *r, uint64_t v) {
  uint8_t b[8];
  vt_put_u64le(b, v);
  raw_put(r, b, 8);
}
/* LEB128, the shortest form: 7 bits a byte, low first, 0x80 = more. */
static inline void raw_var_form(raw *r, uint64_t v, int form) {
  if (form == VAR_PAST_64) {
    for (int i = 0; i < 9; i++) raw_u8(r, 0xff);
    raw_u8(r, 0x02); /* bit 64 */
    return;
  }
  if (form == VAR_ELEVEN) {
    for (int i = 0; i < 10; i++) raw_u8(r, 0x80);
    raw_u8(r, 0x00);
    return;
  }
  while (v >= 0x80u) {
    raw_u8(r, (uint8_t)(v | 0x80u));
    v >>= 7;
  }
  if (form == VAR_PADDED) {
    raw_u8(r, (uint8_t)(v | 0x80u));
    raw_u8(r, 0x00);
  } else {
    raw_u8(r, (uint8_t)v);
  }
}
static inline void raw_var(raw *r, uint64_t v) {
  raw_var_form(r, v, r->vars == r->bad_at ? r->bad_form : VAR_SHORTEST);
  r->vars++;
}

/* [2][varint runs] */
static inline void raw_head(raw *r, uint64_t runs) {
  r->n = 0;
  r->vars = 0;
  raw_u8(r, VS_MSG_OPS);
  raw_var(r, runs);
}
/* [origin 32][varint ops][sig 64][varint first seq][prev 32][hlc u64] */
static inline void raw_run(raw *r, const uint8_t origin[32], uint64_t count, const uint8_t sig[64], uint64_t first,
                           const uint8_t prev[32], uint64_t hlc) {
  raw_put(r, origin, 32);
  raw_var(r, count);
  raw_put(r, sig, 64);
  raw_var(r, first);
  raw_put(r, prev, 32);
  raw_u64(r, hlc);
}
/* [u8 k][kind, k bytes][varint zigzag(hlc delta): not on a run's first op]
 * [varint target len][target][varint payload len][payload]. `kind` is
 * written only when k != 0 (k = 0: the previous op's kind). */
static inline void raw_op(raw *r, uint8_t k, const char *kind, bool first_of_run, uint64_t hlc_delta,
                          const void *target, uint32_t target_bytes, const void *payload, uint32_t payload_bytes) {
  raw_u8(r, k);
  if (k != 0) raw_put(r, kind, k);
  if (!first_of_run) raw_var(r, zz(hlc_delta));
  raw_var(r, target_bytes);
  raw_put(r, target, target_bytes);
  raw_var(r, payload_bytes);
  raw_put(r, payload, payload_bytes);
}
/* Ops from..from+count-1 of c as the ops of one run, compressed as wire v7
 * says (the first op's seq, prev and hlc go in the run header): k = 0
 * where the kind is the previous op's within the run. */
static inline void raw_chain_ops(raw *r, const chain *c, uint32_t from, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    const vs_op *op = &c->op[from + i];
    bool same = i > 0 && strcmp(op[-1].kind, op->kind) == 0;
    raw_op(r, same ? 0u : op->kind_bytes, op->kind, i == 0, i > 0 ? op->hlc - op[-1].hlc : 0u, op->target,
           op->target_bytes, op->payload, op->payload_bytes);
  }
}
/* The run header too: first seq and prev forged when not NULL. */
static inline void raw_chain_run_hdr(raw *r, const chain *c, uint32_t from, uint32_t count, const uint8_t *prev0,
                                     const uint64_t *first) {
  const vs_op *o = &c->op[from];
  raw_run(r, c->origin, count, c->sig, first != NULL ? *first : o->seq, prev0 != NULL ? prev0 : o->prev, o->hlc);
  raw_chain_ops(r, c, from, count);
}
static inline void raw_chain_run_prev(raw *r, const chain *c, uint32_t from, uint32_t count, const uint8_t *prev0) {
  raw_chain_run_hdr(r, c, from, count, prev0, NULL);
}
static inline void raw_chain_run(raw *r, const chain *c, uint32_t from, uint32_t count) {
  raw_chain_run_hdr(r, c, from, count, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */
/* ------------------------------------------------------------------------ */

#define WANT_MAX 8u

/* A run the decoder should hand on: ops from..from+count-1 of c; prev0 not
 * NULL: the run's prev was forged to it (then its ops are c's but for prev,
 * and each op's prev is the hash of the one rebuilt before it). */
typedef struct want_run {
  const chain *c;
  uint32_t from, count;
  const uint8_t *prev0;
} want_run;

/* What the decoder's callback saw. */
typedef struct seen {
  want_run want[WANT_MAX]; /* call i checks want[min(i, wants - 1)] */
  uint32_t wants;
  uint32_t calls;
  uint32_t fail_on_call; /* 1-based; 0 = never */
  const uint8_t *in;     /* the input, which nothing handed on points into */
  size_t in_bytes;
} seen;

static inline seen seen_of(const want_run *runs, uint32_t count) {
  seen s;
  memset(&s, 0, sizeof s);
  assert_true(count >= 1 && count <= WANT_MAX);
  memcpy(s.want, runs, count * sizeof *runs);
  s.wants = count;
  return s;
}

static inline bool points_into(const uint8_t *p, size_t n, const uint8_t *base, size_t base_bytes) {
  return (uintptr_t)p >= (uintptr_t)base && (uintptr_t)p + n <= (uintptr_t)base + base_bytes;
}

/* Op i of a run, rebuilt and decoded, against what it should be. */
static inline void check_op(const seen *s, const want_run *want, const uint8_t origin[32], const vs_op *op,
                            const uint8_t *enc, uint32_t enc_bytes, const uint8_t *prev_enc, uint32_t prev_enc_bytes,
                            uint32_t i) {
  const vs_op *ref = &want->c->op[want->from + i];
  assert_int_equal(op->seq, ref->seq);
  assert_int_equal(op->hlc, ref->hlc);
  assert_string_equal(op->kind, ref->kind);
  assert_memory_equal(op->origin, origin, 32);
  vs_op_id id;
  vs_op_id_derive(origin, op->seq, &id);
  assert_true(vs_op_id_equal(&id, &op->id));
  /* prev: the run's for its first op, else the hash of the op before. */
  uint8_t link[32];
  if (i == 0) memcpy(link, want->prev0 != NULL ? want->prev0 : ref->prev, 32);
  else vs_op_hash_encoded(prev_enc, prev_enc_bytes, link);
  assert_memory_equal(op->prev, link, 32);
  /* Target and payload: the op's own bytes, in the rebuilt encoding, not
   * in the input; readable now. */
  assert_int_equal(op->target_bytes, ref->target_bytes);
  assert_int_equal(op->payload_bytes, ref->payload_bytes);
  if (op->target_bytes > 0) {
    assert_memory_equal(op->target, ref->target, op->target_bytes);
    assert_false(points_into(op->target, op->target_bytes, s->in, s->in_bytes));
    if (enc != NULL) assert_true(points_into(op->target, op->target_bytes, enc, enc_bytes));
  }
  if (op->payload_bytes > 0) {
    assert_memory_equal(op->payload, ref->payload, op->payload_bytes);
    assert_false(points_into(op->payload, op->payload_bytes, s->in, s->in_bytes));
    if (enc != NULL) assert_true(points_into(op->payload, op->payload_bytes, enc, enc_bytes));
  }
  /* The op encodes back to the bytes handed on (and, unforged, to the ones
   * its origin made). */
  uint8_t *again = malloc(VS_OP_ENCODED_BYTES_MAX);
  assert_non_null(again);
  size_t n = 0;
  assert_err(vs_op_encode(op, again, VS_OP_ENCODED_BYTES_MAX, &n), VS_OK);
  if (enc != NULL) {
    assert_int_equal(n, enc_bytes);
    assert_memory_equal(again, enc, n);
    assert_false(points_into(enc, enc_bytes, s->in, s->in_bytes));
  }
  if (want->prev0 == NULL) {
    assert_int_equal(n, want->c->enc_bytes[want->from + i]);
    assert_memory_equal(again, want->c->enc[want->from + i], n);
  }
  free(again);
}

static inline const want_run *seen_next(seen *s) {
  assert_true(s->wants > 0);
  const want_run *want = &s->want[s->calls < s->wants ? s->calls : s->wants - 1];
  s->calls++;
  return want;
}

static inline vs_err record_enc(const uint8_t origin[32], const uint8_t sig[64], const vs_op *ops,
                                const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t op_count, void *ctx) {
  seen *s = ctx;
  const want_run *want = seen_next(s);
  if (s->fail_on_call == s->calls) return VS_ERR_CHAIN;
  assert_memory_equal(origin, want->c->origin, 32);
  assert_memory_equal(sig, want->c->sig, 64);
  assert_int_equal(op_count, want->count);
  for (uint32_t i = 0; i < op_count; i++)
    check_op(s, want, origin, &ops[i], enc[i], enc_bytes[i], i > 0 ? enc[i - 1] : NULL, i > 0 ? enc_bytes[i - 1] : 0,
             i);
  return VS_OK;
}

/* The plain callback (no encodings): each op's prev is checked against the
 * hash of the op before it, encoded again. */
static inline vs_err record_plain(const uint8_t origin[32], const uint8_t sig[64], const vs_op *ops, uint32_t op_count,
                                  void *ctx) {
  seen *s = ctx;
  const want_run *want = seen_next(s);
  if (s->fail_on_call == s->calls) return VS_ERR_CHAIN;
  assert_memory_equal(origin, want->c->origin, 32);
  assert_memory_equal(sig, want->c->sig, 64);
  assert_int_equal(op_count, want->count);
  uint8_t *prev_enc = malloc(VS_OP_ENCODED_BYTES_MAX);
  assert_non_null(prev_enc);
  size_t prev_n = 0;
  for (uint32_t i = 0; i < op_count; i++) {
    check_op(s, want, origin, &ops[i], NULL, 0, prev_enc, (uint32_t)prev_n, i);
    assert_err(vs_op_encode(&ops[i], prev_enc, VS_OP_ENCODED_BYTES_MAX, &prev_n), VS_OK);
  }
  free(prev_enc);
  return VS_OK;
}

/* Decode an exact-size heap copy of in[0, n) (so ASan catches a read past
 * its end) with vs_msg_ops_decode_enc, or (plain) vs_msg_ops_decode. */
static inline vs_err ops_decode_copy(const uint8_t *in, size_t n, seen *s, bool plain) {
  uint8_t *copy = vt_dup_exact(in, n);
  s->calls = 0;
  s->in = copy;
  s->in_bytes = n;
  vs_err err = plain ? vs_msg_ops_decode(copy, n, record_plain, s) : vs_msg_ops_decode_enc(copy, n, record_enc, s);
  free(copy);
  return err;
}
static inline vs_err ops_decode_exact(const uint8_t *in, size_t n, seen *s) { return ops_decode_copy(in, n, s, false); }
static inline vs_err ops_decode_plain_exact(const uint8_t *in, size_t n, seen *s) { return ops_decode_copy(in, n, s, true); }

static inline vs_err count_enc(const uint8_t origin[32], const uint8_t sig[64], const vs_op *ops,
                               const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t op_count, void *ctx) {
  (void)origin;
  (void)sig;
  (void)ops;
  (void)enc;
  (void)enc_bytes;
  (void)op_count;
  (*(uint32_t *)ctx)++;
  return VS_OK;
}

/* An invalid message: `want` from all three entry points, no callback, and
 * no buffer kept. */
static inline void check_refused(const uint8_t *in, size_t n, vs_err want) {
  uint8_t *copy = vt_dup_exact(in, n);
  uint32_t calls = 0;
  assert_err(vs_msg_ops_decode_enc(copy, n, count_enc, &calls), want);
  uint8_t *kept = (uint8_t *)&calls; /* set to NULL on any error */
  assert_err(vs_msg_ops_decode_keep(copy, n, count_enc, &calls, &kept), want);
  assert_null(kept);
  seen s = {.wants = 1};
  s.in = copy;
  s.in_bytes = n;
  assert_err(vs_msg_ops_decode(copy, n, record_plain, &s), want);
  assert_int_equal(calls, 0);
  assert_int_equal(s.calls, 0);
  free(copy);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

static inline vs_err add_run(vs_ops_writer *w, const want_run *run) {
  return vs_ops_writer_add_run(w, run->c->origin, run->c->sig, run->c->ptr + run->from, run->c->enc_bytes + run->from,
                               run->count);
}

/* Write `count` runs with the writer into buf (buf_max bytes), all of which
 * must fit. */
static inline void write_runs(const want_run *runs, uint32_t count, uint8_t *buf, size_t buf_max, size_t *n) {
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, buf_max), VS_OK);
  for (uint32_t r = 0; r < count; r++) assert_err(add_run(&w, &runs[r]), VS_OK);
  assert_err(vs_ops_writer_finish(&w, n), VS_OK);
}

/* The same runs written by hand (raw_chain_run). */
static inline void raw_runs(raw *r, const want_run *runs, uint32_t count) {
  raw_head(r, count);
  for (uint32_t k = 0; k < count; k++) raw_chain_run_prev(r, runs[k].c, runs[k].from, runs[k].count, runs[k].prev0);
}

#endif /* VIXSYNC_WIRE_OPS_FIXTURE_H */
