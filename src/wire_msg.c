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

/* Read a varint (vs_varint_take) or return its error. */
#define VARINT_OR_RETURN(in, in_bytes, pos, out)                 \
  do {                                                           \
    vs_err varint_err_ = vs_varint_take(in, in_bytes, pos, out); \
    if (varint_err_ != VS_OK) return varint_err_;                \
  } while (0)

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
  VARINT_OR_RETURN(in, in_bytes, pos, &v);
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
  for (unsigned i = 0; i < 6; i++) VARINT_OR_RETURN(in, in_bytes, &pos, &vars[i]);
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
  VARINT_OR_RETURN(in, in_bytes, &pos, &count);
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

/* ---- OPS messages (wire v7) ----
 * [2][varint runs][runs x run]
 * run = [origin 32][varint ops][sig 64][varint first seq][prev 32][hlc u64]
 *       [ops x op]: what every op of the run shares or can be derived from
 *       is said once (origin; seq = first + i; prev = the hash of op i-1;
 *       the first op's prev and hlc are the run's);
 * op  = [u8 k][kind: k bytes; k 0: the previous op's kind][hlc: ops past
 *       the first, varint zigzag(hlc - previous hlc)][varint target
 *       length][target][varint payload length][payload].
 * The receiver rebuilds each op's encoding (op.h), byte for byte the one
 * its origin signed, and hands those on as wire v6 did. What they take,
 * counted as v6 laid them out (LEGACY_*), is bounded by VS_MSG_BYTES_MAX,
 * so a message never decodes to more than a v6 message could. */

#define LEGACY_RUN_HEADER_BYTES RUN_HEADER_BYTES /* origin, u32 ops, sig */
#define OPS_RUN_FIXED_BYTES (VS_ORIGIN_BYTES + VS_SIGNATURE_BYTES + VS_HASH_BYTES + 8u)
#define OP_WIRE_MIN_BYTES 3u /* k, target length, payload length */

static uint64_t zigzag(uint64_t d) { return (d << 1) ^ (uint64_t)(-(int64_t)(d >> 63)); }
static uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (uint64_t)(-(int64_t)(z & 1u)); }

vs_err vs_ops_writer_init(vs_ops_writer *w, uint8_t *out, size_t out_max) {
  if (w == NULL || out == NULL) return VS_ERR_INVAL;
  if (out_max < MSG_HEADER_BYTES) return VS_ERR_BUFSIZE;
  w->out = out;
  w->out_max = out_max;
  w->used = MSG_HEADER_BYTES;
  w->wire = 0;
  w->runs = 0;
  return VS_OK;
}

/* The cheap checks of an encoded op (no decode): a v1 op of `origin` with
 * seq `want_seq` (0: any valid seq) and a plausible length. */
static bool op_enc_plausible(const uint8_t *enc, uint32_t enc_bytes, const uint8_t origin[VS_ORIGIN_BYTES],
                             uint64_t want_seq) {
  if (enc == NULL || enc_bytes < OP_MIN_BYTES || enc_bytes > VS_OP_ENCODED_BYTES_MAX) return false;
  if (enc[0] != VS_OP_VERSION || enc[1] != 0 || memcmp(enc + 2, origin, VS_ORIGIN_BYTES) != 0) return false;
  uint64_t seq = vs_get_u64le(enc + 34);
  if (seq == 0 || seq > VS_OP_SEQ_MAX) return false;
  return want_seq == 0 || seq == want_seq;
}

/* The parts of an encoding (op.h) the compact form carries; false if its
 * lengths do not add up (the writer's input is the store's). */
typedef struct op_parts {
  uint64_t hlc;
  const uint8_t *kind, *target, *payload;
  uint32_t kind_bytes, target_bytes, payload_bytes;
} op_parts;

static bool op_split(const uint8_t *enc, uint32_t enc_bytes, op_parts *o) {
  o->hlc = vs_get_u64le(enc + 42);
  o->kind_bytes = enc[82];
  size_t pos = VS_OP_HEADER_BYTES + o->kind_bytes;
  if (o->kind_bytes == 0 || o->kind_bytes > VS_OP_KIND_BYTES_MAX || enc_bytes < pos + 8u) return false;
  o->kind = enc + VS_OP_HEADER_BYTES;
  if (vs_op_kind_check((const char *)o->kind, o->kind_bytes) != VS_OK) return false;
  o->target_bytes = vs_get_u32le(enc + pos);
  if (o->target_bytes > VS_OP_TARGET_BYTES_MAX || enc_bytes - pos - 8u < o->target_bytes) return false;
  o->target = enc + pos + 4;
  pos += 4u + o->target_bytes;
  o->payload_bytes = vs_get_u32le(enc + pos);
  o->payload = enc + pos + 4;
  return o->payload_bytes <= VS_OP_PAYLOAD_BYTES_MAX && enc_bytes - pos - 4u == o->payload_bytes;
}

static size_t op_wire_bytes(const op_parts *o, const op_parts *prev) {
  bool same = prev != NULL && prev->kind_bytes == o->kind_bytes && memcmp(prev->kind, o->kind, o->kind_bytes) == 0;
  return 1u + (same ? 0u : o->kind_bytes) + (prev != NULL ? vs_varint_bytes(zigzag(o->hlc - prev->hlc)) : 0u) +
         vs_varint_bytes(o->target_bytes) + o->target_bytes + vs_varint_bytes(o->payload_bytes) + o->payload_bytes;
}

static uint8_t *op_wire_put(uint8_t *p, const op_parts *o, const op_parts *prev) {
  bool same = prev != NULL && prev->kind_bytes == o->kind_bytes && memcmp(prev->kind, o->kind, o->kind_bytes) == 0;
  *p++ = same ? 0u : (uint8_t)o->kind_bytes;
  if (!same) {
    memcpy(p, o->kind, o->kind_bytes);
    p += o->kind_bytes;
  }
  if (prev != NULL) p += vs_varint_put(p, zigzag(o->hlc - prev->hlc));
  p += vs_varint_put(p, o->target_bytes);
  if (o->target_bytes > 0) memcpy(p, o->target, o->target_bytes);
  p += o->target_bytes;
  p += vs_varint_put(p, o->payload_bytes);
  if (o->payload_bytes > 0) memcpy(p, o->payload, o->payload_bytes);
  return p + o->payload_bytes;
}

vs_err vs_ops_writer_add_run(vs_ops_writer *w, const uint8_t origin[VS_ORIGIN_BYTES],
                             const uint8_t sig[VS_SIGNATURE_BYTES], const uint8_t *const *op_enc,
                             const uint32_t *op_enc_bytes, uint32_t op_count) {
  if (w == NULL || w->out == NULL || origin == NULL || sig == NULL || op_enc == NULL || op_enc_bytes == NULL)
    return VS_ERR_INVAL;
  if (op_count == 0 || op_count > VS_WIRE_RUN_OPS_MAX) return VS_ERR_INVAL;
  if (w->runs >= VS_WIRE_RUNS_MAX) return VS_ERR_LIMIT;
  assert(w->used >= MSG_HEADER_BYTES && w->used <= w->out_max);
  /* u64: 65536 ops of up to ~66 KiB overflow a 32-bit size_t. `need` is
   * the run as v6 laid it out (the bound), `wire` as it goes. */
  uint64_t need = LEGACY_RUN_HEADER_BYTES, first_seq = 0;
  uint64_t wire = VS_VARINT_MAX + OPS_RUN_FIXED_BYTES + VS_VARINT_MAX;
  op_parts prev, cur;
  for (uint32_t i = 0; i < op_count; i++) {
    uint64_t want_seq = i == 0 ? 0 : first_seq + i;
    if (!op_enc_plausible(op_enc[i], op_enc_bytes[i], origin, want_seq) || !op_split(op_enc[i], op_enc_bytes[i], &cur))
      return VS_ERR_INVAL;
    if (i == 0) first_seq = vs_get_u64le(op_enc[0] + 34);
    need += 4u + (uint64_t)op_enc_bytes[i];
    wire += op_wire_bytes(&cur, i > 0 ? &prev : NULL);
    prev = cur;
  }
  /* The message must also fit one DATA frame, whatever the buffer. */
  size_t cap = w->out_max < VS_MSG_BYTES_MAX ? w->out_max : VS_MSG_BYTES_MAX;
  if (need > cap - w->used) return VS_ERR_BUFSIZE;
  /* The wire form is never longer than v6's (the bound above): it fits. */
  assert(VS_VARINT_MAX + w->wire + wire <= w->used + need);
  (void)wire; /* the bound is checked above; the estimate only asserts it */
  uint8_t *p = w->out + VS_VARINT_MAX + w->wire; /* the run count goes in front at finish */
  memcpy(p, origin, VS_ORIGIN_BYTES);
  p += VS_ORIGIN_BYTES;
  p += vs_varint_put(p, op_count);
  memcpy(p, sig, VS_SIGNATURE_BYTES);
  p += VS_SIGNATURE_BYTES;
  p += vs_varint_put(p, first_seq);
  memcpy(p, op_enc[0] + 50, VS_HASH_BYTES); /* the first op's prev */
  p += VS_HASH_BYTES;
  memcpy(p, op_enc[0] + 42, 8); /* its hlc, u64le as in the encoding */
  p += 8;
  for (uint32_t i = 0; i < op_count; i++) {
    (void)op_split(op_enc[i], op_enc_bytes[i], &cur); /* checked above */
    p = op_wire_put(p, &cur, i > 0 ? &prev : NULL);
    prev = cur;
  }
  w->wire = (size_t)(p - (w->out + VS_VARINT_MAX));
  w->used += (size_t)need;
  w->runs++;
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
  /* The runs were written VS_VARINT_MAX bytes in: the type and count go
   * right before them, and the message moves to the front. */
  uint8_t head[1 + VS_VARINT_MAX];
  head[0] = VS_MSG_OPS;
  size_t h = 1 + vs_varint_put(head + 1, w->runs);
  memmove(w->out + h, w->out + VS_VARINT_MAX, w->wire);
  memcpy(w->out, head, h);
  *out_bytes = h + w->wire;
  return VS_OK;
}

/* ---- OPS messages: decoder ---- */

typedef struct run_view {
  const uint8_t *origin, *sig, *prev;
  uint32_t op_count;
  uint64_t first_seq, hlc;
} run_view;

/* Read a run header at *pos and check its op count against the input left. */
static vs_err take_run(const uint8_t *in, size_t in_bytes, size_t *pos, run_view *run) {
  if (in_bytes - *pos < VS_ORIGIN_BYTES) return VS_ERR_TRUNCATED;
  run->origin = in + *pos;
  *pos += VS_ORIGIN_BYTES;
  uint64_t count = 0, first = 0;
  VARINT_OR_RETURN(in, in_bytes, pos, &count);
  if (count == 0) return VS_ERR_MALFORMED;
  if (count > VS_WIRE_RUN_OPS_MAX) return VS_ERR_TOO_LARGE;
  run->op_count = (uint32_t)count;
  if (in_bytes - *pos < VS_SIGNATURE_BYTES) return VS_ERR_TRUNCATED;
  run->sig = in + *pos;
  *pos += VS_SIGNATURE_BYTES;
  VARINT_OR_RETURN(in, in_bytes, pos, &first);
  if (first == 0 || first > VS_OP_SEQ_MAX || count - 1u > VS_OP_SEQ_MAX - first) return VS_ERR_MALFORMED;
  run->first_seq = first;
  if (in_bytes - *pos < VS_HASH_BYTES + 8u) return VS_ERR_TRUNCATED;
  run->prev = in + *pos;
  run->hlc = vs_get_u64le(in + *pos + VS_HASH_BYTES);
  *pos += VS_HASH_BYTES + 8u;
  if (count * OP_WIRE_MIN_BYTES > in_bytes - *pos) return VS_ERR_TRUNCATED;
  return VS_OK;
}

/* A varint length (at most `limit`: VS_ERR_TOO_LARGE past it) and the
 * bytes it announces. */
static vs_err take_block(const uint8_t *in, size_t in_bytes, size_t *pos, uint32_t limit, const uint8_t **data_out,
                         uint32_t *len_out) {
  uint64_t v = 0;
  VARINT_OR_RETURN(in, in_bytes, pos, &v);
  if (v > limit) return VS_ERR_TOO_LARGE;
  if (in_bytes - *pos < v) return VS_ERR_TRUNCATED;
  *data_out = in + *pos;
  *len_out = (uint32_t)v;
  *pos += v;
  return VS_OK;
}

/* Read op i of a run at *pos into o (kind, hlc carried on from prev). */
static vs_err take_op(const uint8_t *in, size_t in_bytes, size_t *pos, uint32_t i, const op_parts *prev, op_parts *o) {
  if (in_bytes - *pos < 1) return VS_ERR_TRUNCATED;
  uint8_t k = in[(*pos)++];
  if (k == 0) {
    if (i == 0) return VS_ERR_MALFORMED; /* no previous kind */
    o->kind = prev->kind;
    o->kind_bytes = prev->kind_bytes;
  } else {
    if (k > VS_OP_KIND_BYTES_MAX) return VS_ERR_MALFORMED;
    if (in_bytes - *pos < k) return VS_ERR_TRUNCATED;
    vs_err err = vs_op_kind_check((const char *)(in + *pos), k);
    if (err != VS_OK) return err;
    o->kind = in + *pos;
    o->kind_bytes = k;
    *pos += k;
  }
  uint64_t v = 0;
  if (i > 0) {
    VARINT_OR_RETURN(in, in_bytes, pos, &v);
    o->hlc = prev->hlc + unzigzag(v);
  }
  vs_err err = take_block(in, in_bytes, pos, VS_OP_TARGET_BYTES_MAX, &o->target, &o->target_bytes);
  if (err != VS_OK) return err;
  return take_block(in, in_bytes, pos, VS_OP_PAYLOAD_BYTES_MAX, &o->payload, &o->payload_bytes);
}

static uint32_t op_full_bytes(const op_parts *o) {
  return VS_OP_HEADER_BYTES + o->kind_bytes + 4u + o->target_bytes + 4u + o->payload_bytes;
}

/* The message header: type, run count. */
static vs_err ops_header(const uint8_t *in, size_t in_bytes, size_t *pos, uint32_t *runs_out) {
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MSG_OPS) return VS_ERR_MALFORMED;
  if (in_bytes > VS_MSG_BYTES_MAX) return VS_ERR_TOO_LARGE;
  *pos = 1;
  uint64_t runs = 0;
  VARINT_OR_RETURN(in, in_bytes, pos, &runs);
  if (runs == 0) return VS_ERR_MALFORMED;
  if (runs > VS_WIRE_RUNS_MAX) return VS_ERR_TOO_LARGE;
  *runs_out = (uint32_t)runs;
  return VS_OK;
}

/* Validate the whole message, run by run and op by op, so the first error
 * in message order is the one returned; count its ops and the bytes their
 * encodings take rebuilt. */
static vs_err ops_walk(const uint8_t *in, size_t in_bytes, size_t pos, uint32_t runs, uint64_t *ops_out,
                       uint64_t *full_out) {
  uint64_t ops = 0, legacy = MSG_HEADER_BYTES, full = 0;
  for (uint32_t r = 0; r < runs; r++) {
    run_view run;
    vs_err err = take_run(in, in_bytes, &pos, &run);
    if (err != VS_OK) return err;
    legacy += LEGACY_RUN_HEADER_BYTES;
    op_parts prev, cur;
    for (uint32_t i = 0; i < run.op_count; i++) { /* bounded: op_count, checked against the input */
      if (i == 0) cur.hlc = run.hlc;
      err = take_op(in, in_bytes, &pos, i, i > 0 ? &prev : NULL, &cur);
      if (err != VS_OK) return err;
      uint32_t f = op_full_bytes(&cur);
      full += f;
      legacy += 4u + f;
      prev = cur;
    }
    /* Rebuilt, never more than a v6 message could hold. */
    if (legacy > VS_MSG_BYTES_MAX) return VS_ERR_TOO_LARGE;
    ops += run.op_count;
  }
  if (pos != in_bytes) return VS_ERR_TRAILING;
  *ops_out = ops;
  *full_out = full;
  return VS_OK;
}

/* Rebuild op `o` (seq, prev) of `run` at p: its encoding (op.h). */
static uint8_t *op_rebuild(uint8_t *p, const run_view *run, uint64_t seq, const uint8_t prev[VS_HASH_BYTES],
                           const op_parts *o) {
  p[0] = VS_OP_VERSION;
  p[1] = 0;
  memcpy(p + 2, run->origin, VS_ORIGIN_BYTES);
  vs_put_u64le(p + 34, seq);
  vs_put_u64le(p + 42, o->hlc);
  memcpy(p + 50, prev, VS_HASH_BYTES);
  p[82] = (uint8_t)o->kind_bytes;
  p += VS_OP_HEADER_BYTES;
  memcpy(p, o->kind, o->kind_bytes);
  p += o->kind_bytes;
  vs_put_u32le(p, o->target_bytes);
  if (o->target_bytes > 0) memcpy(p + 4, o->target, o->target_bytes);
  p += 4u + o->target_bytes;
  vs_put_u32le(p, o->payload_bytes);
  if (o->payload_bytes > 0) memcpy(p + 4, o->payload, o->payload_bytes);
  return p + 4u + o->payload_bytes;
}

static vs_err ops_decode(const uint8_t *in, size_t in_bytes, vs_ops_run_enc_fn fn, void *ctx, uint8_t **keep) {
  if ((in == NULL && in_bytes != 0) || fn == NULL) return VS_ERR_INVAL;
  uint32_t runs = 0;
  size_t pos = 0;
  vs_err err = ops_header(in, in_bytes, &pos, &runs);
  if (err != VS_OK) return err;
  uint64_t slots = 0, full = 0;
  err = ops_walk(in, in_bytes, pos, runs, &slots, &full);
  if (err != VS_OK) return err;
  /* Valid: every op is rebuilt and decoded once, into arrays for the whole
   * message (at most what a v6 message of VS_MSG_BYTES_MAX held), before
   * any run is handed to fn. */
  assert(slots >= 1 && full <= VS_MSG_BYTES_MAX);
  vs_op *ops = malloc((size_t)slots * sizeof *ops);
  uint8_t *buf = malloc((size_t)full);
  const uint8_t **enc = malloc((size_t)slots * sizeof *enc);
  uint32_t *len = malloc((size_t)slots * sizeof *len);
  run_view *rv = malloc((size_t)runs * sizeof *rv);
  if (ops == NULL || buf == NULL || enc == NULL || len == NULL || rv == NULL) err = VS_ERR_NOMEM;
  uint8_t *at = buf;
  uint64_t k = 0;
  for (uint32_t r = 0; r < runs && err == VS_OK; r++) {
    run_view *run = &rv[r];
    err = take_run(in, in_bytes, &pos, run);
    assert(err == VS_OK); /* the walk read the same bytes */
    op_parts prev, cur;
    for (uint32_t i = 0; i < run->op_count && err == VS_OK; i++, k++) {
      if (i == 0) cur.hlc = run->hlc;
      err = take_op(in, in_bytes, &pos, i, i > 0 ? &prev : NULL, &cur);
      if (err != VS_OK) break;
      uint8_t link[VS_HASH_BYTES];
      if (i > 0) vs_op_hash_encoded(enc[k - 1], len[k - 1], link); /* prev: the hash of op i-1 */
      enc[k] = at;
      at = op_rebuild(at, run, run->first_seq + i, i == 0 ? run->prev : link, &cur);
      len[k] = (uint32_t)(at - enc[k]);
      err = vs_op_decode(enc[k], len[k], &ops[k]);
      prev = cur;
    }
  }
  assert(err != VS_OK || (k == slots && (uint64_t)(at - buf) == full));
  k = 0;
  for (uint32_t r = 0; r < runs && err == VS_OK; r++) {
    err = fn(rv[r].origin, rv[r].sig, ops + k, enc + k, len + k, rv[r].op_count, ctx);
    k += rv[r].op_count;
  }
  free(rv);
  free(ops);
  free(enc);
  free(len);
  if (keep != NULL && err == VS_OK) *keep = buf;
  else free(buf);
  return err;
}

vs_err vs_msg_ops_decode_enc(const uint8_t *in, size_t in_bytes, vs_ops_run_enc_fn fn, void *ctx) {
  return ops_decode(in, in_bytes, fn, ctx, NULL);
}

vs_err vs_msg_ops_decode_keep(const uint8_t *in, size_t in_bytes, vs_ops_run_enc_fn fn, void *ctx, uint8_t **buf_out) {
  if (buf_out == NULL) return VS_ERR_INVAL;
  *buf_out = NULL;
  return ops_decode(in, in_bytes, fn, ctx, buf_out);
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

/* Decode the op at *pos ([u32 len][encoding], as FORK proofs carry them)
 * into op_out. */
static vs_err take_whole_op(const uint8_t *in, size_t in_bytes, size_t *pos, vs_op *op_out) {
  if (in_bytes - *pos < 4) return VS_ERR_TRUNCATED;
  uint32_t len = vs_get_u32le(in + *pos);
  *pos += 4;
  if (len > VS_OP_ENCODED_BYTES_MAX) return VS_ERR_TOO_LARGE;
  if (in_bytes - *pos < len) return VS_ERR_TRUNCATED;
  vs_err err = vs_op_decode(in + *pos, len, op_out);
  *pos += len;
  return err;
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
      err = take_whole_op(in, in_bytes, &pos, &ops[k0 + i]);
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
