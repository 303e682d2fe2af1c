/* Wire protocol v7 (see wire.h), the messages carried inside DATA frames:
 * VV (version vectors, in parts), OPS (signed runs: a writer and a
 * decoder), FORK (fork evidence), WANT, ACKS (member acknowledgements),
 * BEHIND, SNAPREQ, SNAPCHUNK and SNAPACK (snapshots over a session). Frames,
 * the handshake and the sessions that seal these messages are in
 * wire_session.c.
 *
 * Everything here parses bytes from peers that may be hostile (G6): every
 * length is checked before it is used, and loops are bounded by counts that
 * were checked against the input first. */
#include "wire.h"

#include <sodium.h>
#include <stdlib.h>

#include "internal.h"

_Static_assert(VS_WIRE_VV_MAX <= UINT32_MAX && VS_WIRE_RUNS_MAX <= UINT32_MAX && VS_WIRE_VV_PARTS_MAX <= UINT32_MAX,
               "counts are u32 on the wire");
_Static_assert(VS_MSG_VV_HEADER_BYTES + (size_t)VS_WIRE_VV_MAX * VS_VV_ENTRY_BYTES_MAX <= VS_MSG_BYTES_MAX,
               "a full VV part fits one message");

#define MSG_HEADER_BYTES (1u + 4u)                 /* type, u32 count */
#define RUN_HEADER_BYTES (VS_ORIGIN_BYTES + 4u + VS_SIGNATURE_BYTES)
/* The smallest valid op encoding (1-byte kind, empty target and payload)
 * and its length prefix: no run can hold more ops than this many fit. */
#define OP_MIN_BYTES (VS_OP_HEADER_BYTES + 1u + 4u + 4u)
#define OP_SLOT_MIN_BYTES (4u + OP_MIN_BYTES)
_Static_assert(VS_OP_ENCODED_BYTES_MAX <= UINT32_MAX, "op lengths are u32 on the wire");

/* ---- VV messages (wire v7) ----
 * [1][flags u8][opt u8][varint vector, part, parts, gen, base, held][dist u8]
 * [forks u64][acks u64][sum u64][root u64][parent u64] (each only when its
 * opt bit 1 << i says so; a digest sent is never 0) [varint n][n entries],
 * entry = [varint seq * 2 + short][origin 32, or its first 8 bytes: short]
 * [head 8, unless seq is 0]. */

#define VV_OPT_FIELDS 5u

static bool vv_part_ok(const vs_vv_part *part, uint32_t count) {
  if (part->vector == 0 || part->parts == 0 || part->parts > VS_WIRE_VV_PARTS_MAX || part->part >= part->parts)
    return false;
  if (part->base > part->gen) return false; /* a delta is from an older generation (or its own: empty) */
  if ((part->flags & ~(VS_VV_WANT | VS_VV_GAP)) != 0) return false;
  return count > 0 || part->parts == 1; /* only an empty vector (or delta) has an empty part */
}

/* Order: strictly increasing origins; where either is short, by the bytes
 * both carry (equal allowed: the receiver resolves and checks again). */
static bool vv_order_ok(const vs_vv_entry *prev, const vs_vv_entry *e) {
  if (prev == NULL) return true;
  if (prev->short_id || e->short_id) return memcmp(prev->origin, e->origin, VS_VV_SHORT_BYTES) <= 0;
  return memcmp(prev->origin, e->origin, VS_ORIGIN_BYTES) < 0;
}

/* seq 0 and short origins only in a delta (the origin is no longer held /
 * the receiver holds it in its copy). */
static bool vv_entry_ok(const vs_vv_entry *e, const vs_vv_entry *prev, bool delta) {
  if ((e->seq == 0 && !delta) || e->seq > VS_OP_SEQ_MAX || (e->short_id && !delta)) return false;
  return vv_order_ok(prev, e);
}

uint64_t vs_vv_sum_entry(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t head[VS_VV_HEAD_BYTES]) {
  /* SipHash-2-4 under a fixed key: fast, and a check against drift only. */
  static const uint8_t key[crypto_shorthash_KEYBYTES + 1] = "vixsync/vvsum/1"; /* 16 bytes and a NUL */
  uint8_t in[VS_ORIGIN_BYTES + 8 + VS_VV_HEAD_BYTES], out[crypto_shorthash_BYTES];
  memcpy(in, origin, VS_ORIGIN_BYTES);
  vs_put_u64le(in + VS_ORIGIN_BYTES, seq);
  memcpy(in + VS_ORIGIN_BYTES + 8, head, VS_VV_HEAD_BYTES);
  crypto_shorthash(out, in, sizeof in, key);
  return vs_get_u64le(out);
}

static size_t vv_entry_bytes(const vs_vv_entry *e) {
  return vs_varint_bytes(e->seq * 2u + (e->short_id ? 1u : 0u)) + (e->short_id ? VS_VV_SHORT_BYTES : VS_ORIGIN_BYTES) +
         (e->seq != 0 ? VS_VV_HEAD_BYTES : 0u);
}

vs_err vs_msg_vv_encode(const vs_vv_part *part, const vs_vv_entry *entries, uint32_t count, uint8_t *out,
                        size_t out_max, size_t *out_bytes) {
  if (part == NULL || (entries == NULL && count != 0) || out == NULL || out_bytes == NULL) return VS_ERR_INVAL;
  if (count > VS_WIRE_VV_MAX || !vv_part_ok(part, count)) return VS_ERR_INVAL;
  size_t n = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (!vv_entry_ok(&entries[i], i > 0 ? &entries[i - 1] : NULL, part->base != 0)) return VS_ERR_INVAL;
    n += vv_entry_bytes(&entries[i]);
  }
  const uint64_t opt[VV_OPT_FIELDS] = {part->forks, part->acks, part->sum, part->root, part->parent};
  uint8_t head[VS_MSG_VV_HEADER_BYTES];
  size_t h = 0;
  head[h++] = VS_MSG_VV;
  head[h++] = part->flags;
  size_t opt_at = h++;
  head[opt_at] = 0;
  const uint64_t vars[6] = {part->vector, part->part, part->parts, part->gen, part->base, part->held};
  for (unsigned i = 0; i < 6; i++) h += vs_varint_put(head + h, vars[i]);
  head[h++] = part->dist;
  for (unsigned i = 0; i < VV_OPT_FIELDS; i++) {
    if (opt[i] == 0) continue;
    head[opt_at] |= (uint8_t)(1u << i);
    vs_put_u64le(head + h, opt[i]);
    h += 8;
  }
  h += vs_varint_put(head + h, count);
  assert(h <= sizeof head);
  if (out_max < h || out_max - h < n) return VS_ERR_BUFSIZE;
  memcpy(out, head, h);
  uint8_t *p = out + h;
  for (uint32_t i = 0; i < count; i++) {
    const vs_vv_entry *e = &entries[i];
    p += vs_varint_put(p, e->seq * 2u + (e->short_id ? 1u : 0u));
    size_t id = e->short_id ? VS_VV_SHORT_BYTES : VS_ORIGIN_BYTES;
    memcpy(p, e->origin, id);
    p += id;
    if (e->seq != 0) {
      memcpy(p, e->head, VS_VV_HEAD_BYTES);
      p += VS_VV_HEAD_BYTES;
    }
  }
  assert((size_t)(p - out) == h + n);
  *out_bytes = h + n;
  return VS_OK;
}

/* Read one entry at in[*pos] into e (all of it set). */
static vs_err vv_take_entry(const uint8_t *in, size_t in_bytes, size_t *pos, vs_vv_entry *e) {
  uint64_t v = 0;
  if (!vs_varint_get(in, in_bytes, pos, &v)) return in_bytes - *pos < VS_VARINT_MAX ? VS_ERR_TRUNCATED : VS_ERR_MALFORMED;
  memset(e, 0, sizeof *e);
  e->short_id = (v & 1u) != 0;
  e->seq = v >> 1;
  size_t id = e->short_id ? VS_VV_SHORT_BYTES : VS_ORIGIN_BYTES;
  size_t need = id + (e->seq != 0 ? VS_VV_HEAD_BYTES : 0u);
  if (in_bytes - *pos < need) return VS_ERR_TRUNCATED;
  memcpy(e->origin, in + *pos, id);
  if (e->seq != 0) memcpy(e->head, in + *pos + id, VS_VV_HEAD_BYTES);
  *pos += need;
  return VS_OK;
}

vs_err vs_msg_vv_decode(const uint8_t *in, size_t in_bytes, vs_vv_part *part_out, vs_vv_entry *entries_out,
                        uint32_t max, uint32_t *count_out) {
  if ((in == NULL && in_bytes != 0) || part_out == NULL || (entries_out == NULL && max != 0) || count_out == NULL)
    return VS_ERR_INVAL;
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_VV) return VS_ERR_MALFORMED;
  if (in_bytes < 3) return VS_ERR_TRUNCATED;
  vs_vv_part part;
  memset(&part, 0, sizeof part);
  part.flags = in[1];
  uint8_t opt = in[2];
  if ((opt >> VV_OPT_FIELDS) != 0) return VS_ERR_MALFORMED;
  size_t pos = 3;
  uint64_t vars[6];
  for (unsigned i = 0; i < 6; i++)
    if (!vs_varint_get(in, in_bytes, &pos, &vars[i])) return in_bytes - pos < VS_VARINT_MAX ? VS_ERR_TRUNCATED : VS_ERR_MALFORMED;
  if (vars[1] > UINT32_MAX || vars[2] > UINT32_MAX) return VS_ERR_MALFORMED;
  part.vector = vars[0];
  part.part = (uint32_t)vars[1];
  part.parts = (uint32_t)vars[2];
  part.gen = vars[3];
  part.base = vars[4];
  part.held = vars[5];
  if (in_bytes - pos < 1) return VS_ERR_TRUNCATED;
  part.dist = in[pos++];
  uint64_t optv[VV_OPT_FIELDS] = {0};
  for (unsigned i = 0; i < VV_OPT_FIELDS; i++) {
    if ((opt & (1u << i)) == 0) continue;
    if (in_bytes - pos < 8) return VS_ERR_TRUNCATED;
    optv[i] = vs_get_u64le(in + pos);
    pos += 8;
    if (optv[i] == 0) return VS_ERR_MALFORMED; /* one value, one form */
  }
  part.forks = optv[0];
  part.acks = optv[1];
  part.sum = optv[2];
  part.root = optv[3];
  part.parent = optv[4];
  uint64_t count = 0;
  if (!vs_varint_get(in, in_bytes, &pos, &count)) return in_bytes - pos < VS_VARINT_MAX ? VS_ERR_TRUNCATED : VS_ERR_MALFORMED;
  if (count > VS_WIRE_VV_MAX || count > max) return VS_ERR_TOO_LARGE;
  if (count * VS_VV_ENTRY_BYTES_MIN > in_bytes - pos) return VS_ERR_TRUNCATED;
  if (!vv_part_ok(&part, (uint32_t)count)) return VS_ERR_MALFORMED;
  /* Validate everything before anything is kept: decode into a scratch
   * entry and the previous one, then again into entries_out. */
  vs_vv_entry cur, prev;
  size_t body = pos;
  for (uint32_t i = 0; i < count; i++) {
    vs_err err = vv_take_entry(in, in_bytes, &pos, &cur);
    if (err != VS_OK) return err;
    if (!vv_entry_ok(&cur, i > 0 ? &prev : NULL, part.base != 0)) return VS_ERR_MALFORMED;
    prev = cur;
  }
  if (pos != in_bytes) return VS_ERR_TRAILING;
  pos = body;
  for (uint32_t i = 0; i < count; i++) {
    vs_err err = vv_take_entry(in, in_bytes, &pos, &entries_out[i]);
    assert(err == VS_OK);
    (void)err;
  }
  *part_out = part;
  *count_out = (uint32_t)count;
  return VS_OK;
}

/* ---- OPS messages: writer ---- */

vs_err vs_ops_writer_init(vs_ops_writer *w, uint8_t *out, size_t out_max) {
  if (w == NULL || out == NULL) return VS_ERR_INVAL;
  if (out_max < MSG_HEADER_BYTES) return VS_ERR_BUFSIZE;
  w->out = out;
  w->out_max = out_max;
  w->used = MSG_HEADER_BYTES;
  w->runs = 0;
  out[0] = VS_MSG_OPS;
  vs_put_u32le(out + 1, 0);
  return VS_OK;
}

/* The cheap checks of an encoded op (no decode): a v1 op of `origin` with
 * seq `want_seq` (0: any valid seq) and a plausible length. */
static bool op_enc_plausible(const uint8_t *enc, uint32_t enc_bytes, const uint8_t origin[VS_ORIGIN_BYTES],
                             uint64_t want_seq) {
  if (enc == NULL || enc_bytes < OP_MIN_BYTES || enc_bytes > VS_OP_ENCODED_BYTES_MAX) return false;
  if (enc[0] != VS_OP_VERSION || memcmp(enc + 2, origin, VS_ORIGIN_BYTES) != 0) return false;
  uint64_t seq = vs_get_u64le(enc + 34);
  if (seq == 0 || seq > VS_OP_SEQ_MAX) return false;
  return want_seq == 0 || seq == want_seq;
}

vs_err vs_ops_writer_add_run(vs_ops_writer *w, const uint8_t origin[VS_ORIGIN_BYTES],
                             const uint8_t sig[VS_SIGNATURE_BYTES], const uint8_t *const *op_enc,
                             const uint32_t *op_enc_bytes, uint32_t op_count) {
  if (w == NULL || w->out == NULL || origin == NULL || sig == NULL || op_enc == NULL || op_enc_bytes == NULL)
    return VS_ERR_INVAL;
  if (op_count == 0 || op_count > VS_WIRE_RUN_OPS_MAX) return VS_ERR_INVAL;
  if (w->runs >= VS_WIRE_RUNS_MAX) return VS_ERR_LIMIT;
  assert(w->used >= MSG_HEADER_BYTES && w->used <= w->out_max);
  /* u64: 65536 ops of up to ~66 KiB overflow a 32-bit size_t. */
  uint64_t need = RUN_HEADER_BYTES;
  uint64_t first_seq = 0;
  for (uint32_t i = 0; i < op_count; i++) {
    uint64_t want_seq = i == 0 ? 0 : first_seq + i;
    if (!op_enc_plausible(op_enc[i], op_enc_bytes[i], origin, want_seq)) return VS_ERR_INVAL;
    if (i == 0) first_seq = vs_get_u64le(op_enc[0] + 34);
    need += 4u + (uint64_t)op_enc_bytes[i];
  }
  /* The message must also fit one DATA frame, whatever the buffer. */
  size_t cap = w->out_max < VS_MSG_BYTES_MAX ? w->out_max : VS_MSG_BYTES_MAX;
  if (need > cap - w->used) return VS_ERR_BUFSIZE;
  uint8_t *p = w->out + w->used;
  memcpy(p, origin, VS_ORIGIN_BYTES);
  vs_put_u32le(p + VS_ORIGIN_BYTES, op_count);
  memcpy(p + VS_ORIGIN_BYTES + 4, sig, VS_SIGNATURE_BYTES);
  p += RUN_HEADER_BYTES;
  for (uint32_t i = 0; i < op_count; i++) {
    vs_put_u32le(p, op_enc_bytes[i]);
    memcpy(p + 4, op_enc[i], op_enc_bytes[i]);
    p += 4u + op_enc_bytes[i];
  }
  assert((uint64_t)(p - (w->out + w->used)) == need);
  w->used += (size_t)need;
  w->runs++;
  vs_put_u32le(w->out + 1, w->runs);
  return VS_OK;
}

size_t vs_ops_writer_room(const vs_ops_writer *w) {
  if (w == NULL || w->out == NULL) return 0;
  size_t cap = w->out_max < VS_MSG_BYTES_MAX ? w->out_max : VS_MSG_BYTES_MAX;
  return cap - w->used > RUN_HEADER_BYTES ? cap - w->used - RUN_HEADER_BYTES : 0;
}

vs_err vs_ops_writer_finish(vs_ops_writer *w, size_t *out_bytes) {
  if (w == NULL || w->out == NULL || out_bytes == NULL || w->runs == 0) return VS_ERR_INVAL;
  assert(w->runs <= VS_WIRE_RUNS_MAX && w->used <= w->out_max);
  vs_put_u32le(w->out + 1, w->runs);
  *out_bytes = w->used;
  return VS_OK;
}

/* ---- OPS messages: decoder ---- */

typedef struct run_view {
  const uint8_t *origin;
  const uint8_t *sig;
  uint32_t op_count;
} run_view;

/* Read a run header at *pos and check its op count against the input left. */
static vs_err take_run(const uint8_t *in, size_t in_bytes, size_t *pos, run_view *run) {
  if (in_bytes - *pos < RUN_HEADER_BYTES) return VS_ERR_TRUNCATED;
  run->origin = in + *pos;
  run->op_count = vs_get_u32le(in + *pos + VS_ORIGIN_BYTES);
  run->sig = in + *pos + VS_ORIGIN_BYTES + 4;
  *pos += RUN_HEADER_BYTES;
  if (run->op_count == 0) return VS_ERR_MALFORMED;
  if (run->op_count > VS_WIRE_RUN_OPS_MAX) return VS_ERR_TOO_LARGE;
  if ((uint64_t)run->op_count * OP_SLOT_MIN_BYTES > in_bytes - *pos) return VS_ERR_TRUNCATED;
  return VS_OK;
}

/* Decode the op at *pos ([u32 len][encoding]) into op_out. */
static vs_err take_op(const uint8_t *in, size_t in_bytes, size_t *pos, vs_op *op_out) {
  if (in_bytes - *pos < 4) return VS_ERR_TRUNCATED;
  uint32_t len = vs_get_u32le(in + *pos);
  *pos += 4;
  if (len > VS_OP_ENCODED_BYTES_MAX) return VS_ERR_TOO_LARGE;
  if (in_bytes - *pos < len) return VS_ERR_TRUNCATED;
  vs_err err = vs_op_decode(in + *pos, len, op_out);
  *pos += len;
  return err;
}

/* The message header: type, size, run count. */
static vs_err ops_header(const uint8_t *in, size_t in_bytes, uint32_t *runs_out) {
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_OPS) return VS_ERR_MALFORMED;
  if (in_bytes < MSG_HEADER_BYTES) return VS_ERR_TRUNCATED;
  if (in_bytes > VS_MSG_BYTES_MAX) return VS_ERR_TOO_LARGE;
  uint32_t runs = vs_get_u32le(in + 1);
  if (runs == 0) return VS_ERR_MALFORMED;
  if (runs > VS_WIRE_RUNS_MAX) return VS_ERR_TOO_LARGE;
  *runs_out = runs;
  return VS_OK;
}

/* Sizing, before anything is decoded: the op counts of the run headers
 * reachable through the length prefixes, stopping where the structure
 * breaks. ops_walk fails there or earlier, so it never needs more slots.
 * Every counted op takes OP_SLOT_MIN_BYTES of input (take_run checks the
 * count against what is left, and shorter ops stop the count): the result
 * is at most in_bytes / OP_SLOT_MIN_BYTES. */
static uint64_t ops_slots(const uint8_t *in, size_t in_bytes, uint32_t runs) {
  size_t pos = MSG_HEADER_BYTES;
  uint64_t slots = 0;
  for (uint32_t r = 0; r < runs; r++) {
    run_view run;
    if (take_run(in, in_bytes, &pos, &run) != VS_OK) break;
    slots += run.op_count;
    for (uint32_t i = 0; i < run.op_count; i++) {
      if (in_bytes - pos < 4) return slots;
      uint32_t len = vs_get_u32le(in + pos);
      if (len < OP_MIN_BYTES || len > in_bytes - pos - 4) return slots;
      pos += 4u + len;
    }
  }
  return slots;
}

/* Validate the whole message, run by run and op by op, so the first error in
 * message order is the one returned. With `ops`, every op is decoded into
 * it, in message order (`slots` entries, from ops_slots); without, into a
 * scratch op that is dropped. `max_run_ops_out` sizes the fallback's array. */
static vs_err ops_walk(const uint8_t *in, size_t in_bytes, uint32_t runs, vs_op *ops, uint64_t slots,
                       uint32_t *max_run_ops_out) {
  size_t pos = MSG_HEADER_BYTES;
  uint32_t max_run_ops = 0;
  uint64_t k = 0;
  vs_op scratch;
  for (uint32_t r = 0; r < runs; r++) {
    run_view run;
    vs_err err = take_run(in, in_bytes, &pos, &run);
    if (err != VS_OK) return err;
    uint64_t first_seq = 0;
    for (uint32_t i = 0; i < run.op_count; i++, k++) {
      /* ops_slots counted this run; checked, not only asserted, because a
       * Release build compiles asserts out and ops[k] must never overrun. */
      assert(ops == NULL || k < slots);
      if (ops != NULL && k >= slots) return VS_ERR_MALFORMED;
      vs_op *op = ops != NULL ? &ops[k] : &scratch;
      err = take_op(in, in_bytes, &pos, op);
      if (err != VS_OK) return err;
      if (memcmp(op->origin, run.origin, VS_ORIGIN_BYTES) != 0) return VS_ERR_MALFORMED;
      if (i == 0) first_seq = op->seq;
      else if (op->seq != first_seq + i) return VS_ERR_MALFORMED;
    }
    if (run.op_count > max_run_ops) max_run_ops = run.op_count;
  }
  if (pos != in_bytes) return VS_ERR_TRAILING;
  assert(ops == NULL || k == slots); /* a valid message has exactly the counted ops */
  *max_run_ops_out = max_run_ops;
  return VS_OK;
}

/* Room for one run's op encodings (pointers into the message). */
typedef struct enc_arrays {
  const uint8_t **enc;
  uint32_t *len;
} enc_arrays;

static vs_err enc_arrays_alloc(enc_arrays *e, uint32_t count) {
  e->enc = malloc((size_t)count * sizeof *e->enc);
  e->len = malloc((size_t)count * sizeof *e->len);
  return e->enc != NULL && e->len != NULL ? VS_OK : VS_ERR_NOMEM;
}

static void enc_arrays_free(enc_arrays *e) {
  free(e->enc);
  free(e->len);
}

/* When the message-sized array cannot be had: validate with nothing kept,
 * then decode each run again into one array for the longest run. An invalid
 * message still gets its own error, never VS_ERR_NOMEM. */
static vs_err ops_decode_per_run(const uint8_t *in, size_t in_bytes, uint32_t runs, vs_ops_run_enc_fn fn, void *ctx) {
  uint32_t max_run_ops = 0;
  vs_err err = ops_walk(in, in_bytes, runs, NULL, 0, &max_run_ops);
  if (err != VS_OK) return err;
  assert(max_run_ops >= 1 && (uint64_t)max_run_ops * OP_SLOT_MIN_BYTES <= in_bytes);
  vs_op *ops = malloc((size_t)max_run_ops * sizeof *ops);
  enc_arrays e;
  err = enc_arrays_alloc(&e, max_run_ops);
  if (ops == NULL) err = VS_ERR_NOMEM;
  size_t pos = MSG_HEADER_BYTES;
  for (uint32_t r = 0; r < runs && err == VS_OK; r++) {
    run_view run;
    err = take_run(in, in_bytes, &pos, &run);
    assert(err == VS_OK); /* the walk read the same bytes */
    if (err != VS_OK) break; /* run is not filled in then (asserts off in Release) */
    assert(run.op_count <= max_run_ops);
    for (uint32_t i = 0; i < run.op_count && err == VS_OK; i++) {
      e.enc[i] = in + pos + 4;
      e.len[i] = vs_get_u32le(in + pos);
      err = take_op(in, in_bytes, &pos, &ops[i]);
    }
    assert(err == VS_OK);
    if (err == VS_OK) err = fn(run.origin, run.sig, ops, e.enc, e.len, run.op_count, ctx);
  }
  free(ops);
  enc_arrays_free(&e);
  return err;
}

vs_err vs_msg_ops_decode_enc(const uint8_t *in, size_t in_bytes, vs_ops_run_enc_fn fn, void *ctx) {
  if ((in == NULL && in_bytes != 0) || fn == NULL) return VS_ERR_INVAL;
  uint32_t runs = 0;
  vs_err err = ops_header(in, in_bytes, &runs);
  if (err != VS_OK) return err;
  /* Each op is decoded once, into an array for the whole message (a second
   * decode cost ~400 instructions per op, callgrind, tests/bench_replicate.c).
   * No run is handed to fn before the last op of the message decoded. */
  uint64_t slots = ops_slots(in, in_bytes, runs);
  assert(slots * OP_SLOT_MIN_BYTES <= in_bytes);
  vs_op *ops = slots > 0 ? malloc((size_t)slots * sizeof *ops) : NULL;
  if (ops == NULL) return ops_decode_per_run(in, in_bytes, runs, fn, ctx);
  uint32_t max_run_ops = 0;
  err = ops_walk(in, in_bytes, runs, ops, slots, &max_run_ops);
  enc_arrays e = {NULL, NULL};
  if (err == VS_OK) err = enc_arrays_alloc(&e, max_run_ops);
  if (err == VS_ERR_NOMEM) {
    free(ops);
    enc_arrays_free(&e);
    return ops_decode_per_run(in, in_bytes, runs, fn, ctx);
  }
  size_t pos = MSG_HEADER_BYTES;
  uint64_t k = 0;
  for (uint32_t r = 0; r < runs && err == VS_OK; r++) {
    run_view run;
    err = take_run(in, in_bytes, &pos, &run);
    assert(err == VS_OK); /* the walk read the same bytes */
    if (err != VS_OK) break; /* run is not filled in then (asserts off in Release) */
    assert(k + run.op_count <= slots);
    for (uint32_t i = 0; i < run.op_count; i++) { /* lengths checked by the walk */
      e.len[i] = vs_get_u32le(in + pos);
      e.enc[i] = in + pos + 4;
      pos += 4u + e.len[i];
    }
    if (err == VS_OK) err = fn(run.origin, run.sig, ops + k, e.enc, e.len, run.op_count, ctx);
    k += run.op_count;
  }
  free(ops);
  enc_arrays_free(&e);
  return err;
}

typedef struct plain_fn {
  vs_ops_run_fn fn;
  void *ctx;
} plain_fn;

static vs_err drop_enc(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES], const vs_op *ops,
                       const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t op_count, void *ctx) {
  (void)enc;
  (void)enc_bytes;
  const plain_fn *p = ctx;
  return p->fn(origin, sig, ops, op_count, p->ctx);
}

vs_err vs_msg_ops_decode(const uint8_t *in, size_t in_bytes, vs_ops_run_fn fn, void *ctx) {
  if (fn == NULL) return VS_ERR_INVAL;
  plain_fn p = {fn, ctx};
  return vs_msg_ops_decode_enc(in, in_bytes, drop_enc, &p);
}

/* ---- FORK and WANT messages ---- */

#define PROOF_HEADER_BYTES (VS_SIGNATURE_BYTES + 4u)

vs_err vs_msg_fork_encode(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const vs_fork_proof proofs[2],
                          uint8_t *out, size_t out_max, size_t *out_bytes) {
  if (origin == NULL || proofs == NULL || out == NULL || out_bytes == NULL) return VS_ERR_INVAL;
  if (seq == 0 || seq > VS_OP_SEQ_MAX) return VS_ERR_INVAL;
  uint64_t need = VS_MSG_FORK_HEADER_BYTES;
  for (unsigned k = 0; k < 2; k++) {
    const vs_fork_proof *pr = &proofs[k];
    if (pr->sig == NULL || pr->enc == NULL || pr->enc_bytes == NULL || pr->count == 0 ||
        pr->count > VS_WIRE_RUN_OPS_MAX)
      return VS_ERR_INVAL;
    need += PROOF_HEADER_BYTES;
    for (uint32_t i = 0; i < pr->count; i++) { /* bounded: count <= VS_WIRE_RUN_OPS_MAX */
      if (!op_enc_plausible(pr->enc[i], pr->enc_bytes[i], origin, seq + i)) return VS_ERR_INVAL;
      need += 4u + (uint64_t)pr->enc_bytes[i];
    }
  }
  if (need > VS_MSG_BYTES_MAX) return VS_ERR_TOO_LARGE;
  if (need > out_max) return VS_ERR_BUFSIZE;
  uint8_t *p = out;
  *p++ = VS_MSG_FORK;
  memcpy(p, origin, VS_ORIGIN_BYTES);
  p += VS_ORIGIN_BYTES;
  vs_put_u64le(p, seq);
  p += 8;
  for (unsigned k = 0; k < 2; k++) {
    memcpy(p, proofs[k].sig, VS_SIGNATURE_BYTES);
    vs_put_u32le(p + VS_SIGNATURE_BYTES, proofs[k].count);
    p += PROOF_HEADER_BYTES;
    for (uint32_t i = 0; i < proofs[k].count; i++) {
      vs_put_u32le(p, proofs[k].enc_bytes[i]);
      memcpy(p + 4, proofs[k].enc[i], proofs[k].enc_bytes[i]);
      p += 4u + proofs[k].enc_bytes[i];
    }
  }
  assert((uint64_t)(p - out) == need);
  *out_bytes = (size_t)need;
  return VS_OK;
}

void vs_fork_msg_free(vs_fork_msg *m) {
  if (m == NULL) return;
  free(m->mem);
  m->mem = NULL;
}

/* Walk one proof's framing at *pos (lengths only). */
static vs_err fork_proof_frame(const uint8_t *in, size_t in_bytes, size_t *pos, uint32_t *count_out) {
  if (in_bytes - *pos < PROOF_HEADER_BYTES) return VS_ERR_TRUNCATED;
  uint32_t count = vs_get_u32le(in + *pos + VS_SIGNATURE_BYTES);
  *pos += PROOF_HEADER_BYTES;
  if (count == 0) return VS_ERR_MALFORMED;
  if (count > VS_WIRE_RUN_OPS_MAX) return VS_ERR_TOO_LARGE;
  if ((uint64_t)count * OP_SLOT_MIN_BYTES > in_bytes - *pos) return VS_ERR_TRUNCATED;
  for (uint32_t i = 0; i < count; i++) { /* bounded: count, and each step consumes >= 4 bytes */
    if (in_bytes - *pos < 4) return VS_ERR_TRUNCATED;
    uint32_t len = vs_get_u32le(in + *pos);
    *pos += 4;
    if (len > VS_OP_ENCODED_BYTES_MAX) return VS_ERR_TOO_LARGE;
    if (in_bytes - *pos < len) return VS_ERR_TRUNCATED;
    *pos += len;
  }
  *count_out = count;
  return VS_OK;
}

vs_err vs_msg_fork_decode(const uint8_t *in, size_t in_bytes, vs_fork_msg *out) {
  if ((in == NULL && in_bytes != 0) || out == NULL) return VS_ERR_INVAL;
  memset(out, 0, sizeof *out);
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_FORK) return VS_ERR_MALFORMED;
  if (in_bytes > VS_MSG_BYTES_MAX) return VS_ERR_TOO_LARGE;
  if (in_bytes < VS_MSG_FORK_HEADER_BYTES) return VS_ERR_TRUNCATED;
  uint64_t seq = vs_get_u64le(in + 1 + VS_ORIGIN_BYTES);
  if (seq == 0 || seq > VS_OP_SEQ_MAX) return VS_ERR_MALFORMED;
  /* Framing first, then one allocation for both proofs. */
  size_t pos = VS_MSG_FORK_HEADER_BYTES, start[2];
  uint32_t count[2] = {0, 0};
  for (unsigned k = 0; k < 2; k++) {
    start[k] = pos;
    vs_err err = fork_proof_frame(in, in_bytes, &pos, &count[k]);
    if (err != VS_OK) return err;
  }
  if (pos != in_bytes) return VS_ERR_TRAILING;
  size_t total = (size_t)count[0] + count[1];
  size_t bytes = total * (sizeof(vs_op) + sizeof(const uint8_t *) + sizeof(uint32_t));
  uint8_t *mem = malloc(bytes);
  if (mem == NULL) return VS_ERR_NOMEM;
  vs_op *ops = (vs_op *)(void *)mem;
  const uint8_t **enc = (const uint8_t **)(void *)(mem + total * sizeof(vs_op));
  uint32_t *lens = (uint32_t *)(void *)(mem + total * (sizeof(vs_op) + sizeof(const uint8_t *)));
  memcpy(out->origin, in + 1, VS_ORIGIN_BYTES);
  out->seq = seq;
  size_t k0 = 0;
  vs_err err = VS_OK;
  for (unsigned k = 0; k < 2 && err == VS_OK; k++) {
    pos = start[k];
    vs_fork_proof *pr = &out->proof[k];
    pr->sig = in + pos;
    pr->count = count[k];
    pr->ops = ops + k0;
    pr->enc = enc + k0;
    pr->enc_bytes = lens + k0;
    pos += PROOF_HEADER_BYTES;
    for (uint32_t i = 0; i < count[k] && err == VS_OK; i++) {
      lens[k0 + i] = vs_get_u32le(in + pos);
      enc[k0 + i] = in + pos + 4;
      err = take_op(in, in_bytes, &pos, &ops[k0 + i]);
      if (err == VS_OK && (memcmp(ops[k0 + i].origin, out->origin, VS_ORIGIN_BYTES) != 0 || ops[k0 + i].seq != seq + i))
        err = VS_ERR_MALFORMED;
    }
    k0 += count[k];
  }
  if (err != VS_OK) {
    free(mem);
    memset(out, 0, sizeof *out);
    return err;
  }
  out->mem = mem;
  return VS_OK;
}

vs_err vs_msg_want_encode(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint8_t *out, size_t out_max,
                          size_t *out_bytes) {
  if (origin == NULL || out == NULL || out_bytes == NULL || from == 0 || from > VS_OP_SEQ_MAX) return VS_ERR_INVAL;
  if (out_max < VS_MSG_WANT_BYTES) return VS_ERR_BUFSIZE;
  out[0] = VS_MSG_WANT;
  memcpy(out + 1, origin, VS_ORIGIN_BYTES);
  vs_put_u64le(out + 1 + VS_ORIGIN_BYTES, from);
  *out_bytes = VS_MSG_WANT_BYTES;
  return VS_OK;
}

vs_err vs_msg_want_decode(const uint8_t *in, size_t in_bytes, uint8_t origin_out[VS_ORIGIN_BYTES], uint64_t *from_out) {
  if ((in == NULL && in_bytes != 0) || origin_out == NULL || from_out == NULL) return VS_ERR_INVAL;
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_WANT) return VS_ERR_MALFORMED;
  if (in_bytes < VS_MSG_WANT_BYTES) return VS_ERR_TRUNCATED;
  if (in_bytes > VS_MSG_WANT_BYTES) return VS_ERR_TRAILING;
  uint64_t from = vs_get_u64le(in + 1 + VS_ORIGIN_BYTES);
  if (from == 0 || from > VS_OP_SEQ_MAX) return VS_ERR_MALFORMED;
  memcpy(origin_out, in + 1, VS_ORIGIN_BYTES);
  *from_out = from;
  return VS_OK;
}

/* ---- ACKS messages ---- */

_Static_assert(VS_MSG_ACKS_HEADER_BYTES + VS_ACK_HEADER_BYTES + (size_t)VS_WIRE_VV_MAX * VS_ACK_ENTRY_BYTES <=
                   VS_MSG_BYTES_MAX,
               "a full ack fits one message");

/* An ack's entries are well formed: strictly increasing origins, seqs in
 * range (>= 1 in a keyframe). */
static bool ack_entries_ok(const uint8_t *p, uint32_t count, bool keyframe) {
  for (uint32_t i = 0; i < count; i++) { /* bounded: count <= VS_WIRE_VV_MAX */
    const uint8_t *e = p + (size_t)i * VS_ACK_ENTRY_BYTES;
    uint64_t seq = vs_get_u64le(e + VS_ORIGIN_BYTES);
    if (seq > VS_OP_SEQ_MAX || (keyframe && seq == 0)) return false;
    if (i > 0 && memcmp(e - VS_ACK_ENTRY_BYTES, e, VS_ORIGIN_BYTES) >= 0) return false;
  }
  return true;
}

void vs_ack_entry_at(const vs_ack_view *v, uint32_t i, vs_ack_entry *out) {
  assert(i < v->count);
  const uint8_t *e = v->entries + (size_t)i * VS_ACK_ENTRY_BYTES;
  memcpy(out->origin, e, VS_ORIGIN_BYTES);
  out->seq = vs_get_u64le(e + VS_ORIGIN_BYTES);
}

vs_err vs_acks_writer_init(vs_acks_writer *w, uint8_t *out, size_t out_max) {
  if (w == NULL || out == NULL) return VS_ERR_INVAL;
  if (out_max < VS_MSG_ACKS_HEADER_BYTES) return VS_ERR_BUFSIZE;
  w->out = out;
  w->out_max = out_max;
  w->used = VS_MSG_ACKS_HEADER_BYTES;
  w->acks = 0;
  out[0] = VS_MSG_ACKS;
  vs_put_u32le(out + 1, 0);
  return VS_OK;
}

vs_err vs_acks_writer_add(vs_acks_writer *w, const uint8_t author[VS_ORIGIN_BYTES], uint64_t hlc, uint64_t key_hlc,
                          const uint8_t sig[VS_SIGNATURE_BYTES], const vs_ack_entry *entries, uint32_t count) {
  if (w == NULL || w->out == NULL || author == NULL || sig == NULL || (entries == NULL && count > 0))
    return VS_ERR_INVAL;
  if (count > VS_WIRE_VV_MAX || key_hlc > hlc || w->acks == UINT32_MAX) return VS_ERR_INVAL;
  for (uint32_t i = 0; i < count; i++) {
    if (entries[i].seq > VS_OP_SEQ_MAX || (key_hlc == hlc && entries[i].seq == 0)) return VS_ERR_INVAL;
    if (i > 0 && memcmp(entries[i - 1].origin, entries[i].origin, VS_ORIGIN_BYTES) >= 0) return VS_ERR_INVAL;
  }
  size_t need = VS_ACK_HEADER_BYTES + (size_t)count * VS_ACK_ENTRY_BYTES;
  size_t cap = w->out_max < VS_MSG_BYTES_MAX ? w->out_max : VS_MSG_BYTES_MAX;
  assert(w->used <= cap);
  if (need > cap - w->used) return VS_ERR_BUFSIZE;
  uint8_t *p = w->out + w->used;
  memcpy(p, author, VS_ORIGIN_BYTES);
  vs_put_u64le(p + 32, hlc);
  vs_put_u64le(p + 40, key_hlc);
  memcpy(p + 48, sig, VS_SIGNATURE_BYTES);
  vs_put_u32le(p + 48 + VS_SIGNATURE_BYTES, count);
  p += VS_ACK_HEADER_BYTES;
  for (uint32_t i = 0; i < count; i++, p += VS_ACK_ENTRY_BYTES) {
    memcpy(p, entries[i].origin, VS_ORIGIN_BYTES);
    vs_put_u64le(p + VS_ORIGIN_BYTES, entries[i].seq);
  }
  w->used += need;
  w->acks++;
  vs_put_u32le(w->out + 1, w->acks);
  return VS_OK;
}

vs_err vs_acks_writer_finish(vs_acks_writer *w, size_t *out_bytes) {
  if (w == NULL || w->out == NULL || out_bytes == NULL || w->acks == 0) return VS_ERR_INVAL;
  *out_bytes = w->used;
  return VS_OK;
}

/* Read the ack at *pos into v (its entries unchecked). */
static vs_err take_ack(const uint8_t *in, size_t in_bytes, size_t *pos, vs_ack_view *v) {
  if (in_bytes - *pos < VS_ACK_HEADER_BYTES) return VS_ERR_TRUNCATED;
  const uint8_t *p = in + *pos;
  v->author = p;
  v->hlc = vs_get_u64le(p + 32);
  v->key_hlc = vs_get_u64le(p + 40);
  v->sig = p + 48;
  v->count = vs_get_u32le(p + 48 + VS_SIGNATURE_BYTES);
  *pos += VS_ACK_HEADER_BYTES;
  if (v->count > VS_WIRE_VV_MAX) return VS_ERR_TOO_LARGE;
  size_t body = (size_t)v->count * VS_ACK_ENTRY_BYTES;
  if (in_bytes - *pos < body) return VS_ERR_TRUNCATED;
  v->entries = in + *pos;
  *pos += body;
  if (v->key_hlc > v->hlc) return VS_ERR_MALFORMED;
  return ack_entries_ok(v->entries, v->count, v->key_hlc == v->hlc) ? VS_OK : VS_ERR_MALFORMED;
}

vs_err vs_msg_acks_decode(const uint8_t *in, size_t in_bytes, vs_ack_fn fn, void *ctx) {
  if ((in == NULL && in_bytes != 0) || fn == NULL) return VS_ERR_INVAL;
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_ACKS) return VS_ERR_MALFORMED;
  if (in_bytes > VS_MSG_BYTES_MAX) return VS_ERR_TOO_LARGE;
  if (in_bytes < VS_MSG_ACKS_HEADER_BYTES) return VS_ERR_TRUNCATED;
  uint32_t n = vs_get_u32le(in + 1);
  if (n == 0) return VS_ERR_MALFORMED;
  if ((uint64_t)n * VS_ACK_HEADER_BYTES > in_bytes - VS_MSG_ACKS_HEADER_BYTES) return VS_ERR_TRUNCATED;
  /* Validate everything before calling anything. */
  size_t pos = VS_MSG_ACKS_HEADER_BYTES;
  vs_ack_view v;
  for (uint32_t i = 0; i < n; i++) { /* bounded: n * header <= in_bytes */
    vs_err err = take_ack(in, in_bytes, &pos, &v);
    if (err != VS_OK) return err;
  }
  if (pos != in_bytes) return VS_ERR_TRAILING;
  pos = VS_MSG_ACKS_HEADER_BYTES;
  for (uint32_t i = 0; i < n; i++) {
    vs_err err = take_ack(in, in_bytes, &pos, &v);
    assert(err == VS_OK);
    err = fn(&v, ctx);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}

/* ---- BEHIND, SNAPREQ, SNAPCHUNK, SNAPACK (wire v5: snapshots over a session) ---- */

_Static_assert(VS_MSG_BEHIND_HEADER_BYTES + (size_t)VS_WIRE_BEHIND_MAX * VS_BEHIND_ENTRY_BYTES <= VS_MSG_BYTES_MAX,
               "a full BEHIND fits one message");
_Static_assert(VS_MSG_SNAPCHUNK_HEADER_BYTES + (size_t)VS_WIRE_SNAP_CHUNK_BYTES <= VS_MSG_BYTES_MAX,
               "a full SNAPCHUNK fits one message");

/* Entries strictly increasing by origin, seqs in range. */
static bool behind_ok(const vs_behind_entry *e, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) { /* bounded: count <= VS_WIRE_BEHIND_MAX */
    if (e[i].seq == 0 || e[i].seq > VS_OP_SEQ_MAX) return false;
    if (i > 0 && memcmp(e[i - 1].origin, e[i].origin, VS_ORIGIN_BYTES) >= 0) return false;
  }
  return true;
}

vs_err vs_msg_behind_encode(const vs_behind_entry *entries, uint32_t count, uint8_t *out, size_t out_max,
                            size_t *out_bytes) {
  if (entries == NULL || out == NULL || out_bytes == NULL || count == 0 || count > VS_WIRE_BEHIND_MAX ||
      !behind_ok(entries, count))
    return VS_ERR_INVAL;
  size_t len = VS_MSG_BEHIND_HEADER_BYTES + (size_t)count * VS_BEHIND_ENTRY_BYTES;
  if (out_max < len) return VS_ERR_BUFSIZE;
  out[0] = VS_MSG_BEHIND;
  vs_put_u32le(out + 1, count);
  uint8_t *p = out + VS_MSG_BEHIND_HEADER_BYTES;
  for (uint32_t i = 0; i < count; i++, p += VS_BEHIND_ENTRY_BYTES) {
    memcpy(p, entries[i].origin, VS_ORIGIN_BYTES);
    vs_put_u64le(p + VS_ORIGIN_BYTES, entries[i].seq);
    memcpy(p + VS_ORIGIN_BYTES + 8u, entries[i].hash, 32u);
  }
  *out_bytes = len;
  return VS_OK;
}

vs_err vs_msg_behind_decode(const uint8_t *in, size_t in_bytes, vs_behind_entry *entries_out, uint32_t max,
                            uint32_t *count_out) {
  if ((in == NULL && in_bytes != 0) || entries_out == NULL || count_out == NULL) return VS_ERR_INVAL;
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_BEHIND) return VS_ERR_MALFORMED;
  if (in_bytes < VS_MSG_BEHIND_HEADER_BYTES) return VS_ERR_TRUNCATED;
  uint32_t count = vs_get_u32le(in + 1);
  if (count == 0) return VS_ERR_MALFORMED;
  if (count > VS_WIRE_BEHIND_MAX || count > max) return VS_ERR_TOO_LARGE;
  size_t len = VS_MSG_BEHIND_HEADER_BYTES + (size_t)count * VS_BEHIND_ENTRY_BYTES;
  if (in_bytes < len) return VS_ERR_TRUNCATED;
  if (in_bytes > len) return VS_ERR_TRAILING;
  const uint8_t *p = in + VS_MSG_BEHIND_HEADER_BYTES;
  /* Checked in place before anything is written out. */
  for (uint32_t i = 0; i < count; i++) { /* bounded: count <= VS_WIRE_BEHIND_MAX */
    const uint8_t *e = p + (size_t)i * VS_BEHIND_ENTRY_BYTES;
    uint64_t seq = vs_get_u64le(e + VS_ORIGIN_BYTES);
    if (seq == 0 || seq > VS_OP_SEQ_MAX) return VS_ERR_MALFORMED;
    if (i > 0 && memcmp(e - VS_BEHIND_ENTRY_BYTES, e, VS_ORIGIN_BYTES) >= 0) return VS_ERR_MALFORMED;
  }
  for (uint32_t i = 0; i < count; i++, p += VS_BEHIND_ENTRY_BYTES) {
    memcpy(entries_out[i].origin, p, VS_ORIGIN_BYTES);
    entries_out[i].seq = vs_get_u64le(p + VS_ORIGIN_BYTES);
    memcpy(entries_out[i].hash, p + VS_ORIGIN_BYTES + 8u, 32u);
  }
  *count_out = count;
  return VS_OK;
}

vs_err vs_msg_snapreq_encode(uint64_t id, uint8_t *out, size_t out_max, size_t *out_bytes) {
  if (out == NULL || out_bytes == NULL || id == 0) return VS_ERR_INVAL;
  if (out_max < VS_MSG_SNAPREQ_BYTES) return VS_ERR_BUFSIZE;
  out[0] = VS_MSG_SNAPREQ;
  vs_put_u64le(out + 1, id);
  *out_bytes = VS_MSG_SNAPREQ_BYTES;
  return VS_OK;
}

vs_err vs_msg_snapreq_decode(const uint8_t *in, size_t in_bytes, uint64_t *id_out) {
  if ((in == NULL && in_bytes != 0) || id_out == NULL) return VS_ERR_INVAL;
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_SNAPREQ) return VS_ERR_MALFORMED;
  if (in_bytes < VS_MSG_SNAPREQ_BYTES) return VS_ERR_TRUNCATED;
  if (in_bytes > VS_MSG_SNAPREQ_BYTES) return VS_ERR_TRAILING;
  uint64_t id = vs_get_u64le(in + 1);
  if (id == 0) return VS_ERR_MALFORMED;
  *id_out = id;
  return VS_OK;
}

/* A chunk's numbers hold together (both directions check the same). */
static bool snapchunk_ok(uint64_t id, uint64_t total, uint64_t offset, size_t len) {
  if (id == 0 || total > VS_WIRE_SNAP_TOTAL_MAX || len > VS_WIRE_SNAP_CHUNK_BYTES) return false;
  if (total == 0) return offset == 0 && len == 0; /* a decline */
  return len > 0 && offset < total && len <= total - offset;
}

vs_err vs_msg_snapchunk_encode(const vs_snapchunk *c, uint8_t *out, size_t out_max, size_t *out_bytes) {
  if (c == NULL || out == NULL || out_bytes == NULL || (c->bytes == NULL && c->len > 0) ||
      !snapchunk_ok(c->id, c->total, c->offset, c->len))
    return VS_ERR_INVAL;
  if (out_max < VS_MSG_SNAPCHUNK_HEADER_BYTES || out_max - VS_MSG_SNAPCHUNK_HEADER_BYTES < c->len)
    return VS_ERR_BUFSIZE;
  out[0] = VS_MSG_SNAPCHUNK;
  vs_put_u64le(out + 1, c->id);
  vs_put_u64le(out + 9, c->total);
  vs_put_u64le(out + 17, c->offset);
  if (c->len > 0) memcpy(out + VS_MSG_SNAPCHUNK_HEADER_BYTES, c->bytes, c->len);
  *out_bytes = VS_MSG_SNAPCHUNK_HEADER_BYTES + c->len;
  return VS_OK;
}

vs_err vs_msg_snapchunk_decode(const uint8_t *in, size_t in_bytes, vs_snapchunk *out) {
  if ((in == NULL && in_bytes != 0) || out == NULL) return VS_ERR_INVAL;
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_SNAPCHUNK) return VS_ERR_MALFORMED;
  if (in_bytes < VS_MSG_SNAPCHUNK_HEADER_BYTES) return VS_ERR_TRUNCATED;
  size_t len = in_bytes - VS_MSG_SNAPCHUNK_HEADER_BYTES;
  if (len > VS_WIRE_SNAP_CHUNK_BYTES) return VS_ERR_TOO_LARGE;
  uint64_t id = vs_get_u64le(in + 1), total = vs_get_u64le(in + 9), offset = vs_get_u64le(in + 17);
  if (!snapchunk_ok(id, total, offset, len)) return VS_ERR_MALFORMED;
  out->id = id;
  out->total = total;
  out->offset = offset;
  out->bytes = in + VS_MSG_SNAPCHUNK_HEADER_BYTES;
  out->len = len;
  return VS_OK;
}

vs_err vs_msg_snapack_encode(uint64_t id, uint64_t received, uint8_t *out, size_t out_max, size_t *out_bytes) {
  if (out == NULL || out_bytes == NULL || id == 0 || received > VS_WIRE_SNAP_TOTAL_MAX) return VS_ERR_INVAL;
  if (out_max < VS_MSG_SNAPACK_BYTES) return VS_ERR_BUFSIZE;
  out[0] = VS_MSG_SNAPACK;
  vs_put_u64le(out + 1, id);
  vs_put_u64le(out + 9, received);
  *out_bytes = VS_MSG_SNAPACK_BYTES;
  return VS_OK;
}

vs_err vs_msg_snapack_decode(const uint8_t *in, size_t in_bytes, uint64_t *id_out, uint64_t *received_out) {
  if ((in == NULL && in_bytes != 0) || id_out == NULL || received_out == NULL) return VS_ERR_INVAL;
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_SNAPACK) return VS_ERR_MALFORMED;
  if (in_bytes < VS_MSG_SNAPACK_BYTES) return VS_ERR_TRUNCATED;
  if (in_bytes > VS_MSG_SNAPACK_BYTES) return VS_ERR_TRAILING;
  uint64_t id = vs_get_u64le(in + 1), received = vs_get_u64le(in + 9);
  if (id == 0 || received > VS_WIRE_SNAP_TOTAL_MAX) return VS_ERR_MALFORMED;
  *id_out = id;
  *received_out = received;
  return VS_OK;
}
