/* Pins include/vixsync/wire.h: the VV, OPS, WANT and FORK messages (the
 * handshake is in test_wire.c). Hostile input is always fed as an
 * exact-size heap copy, so ASan catches any read past its end. */

#include "wire_fixture.h"

/* The codec bounds a run by its own constant (wire.h, so that wire needs no
 * header of apply); apply takes no other run than the wire carries. */
_Static_assert(VS_WIRE_RUN_OPS_MAX == VS_APPLY_RUN_OPS_MAX, "one limit on a run's ops, on the wire and in apply");

/* ---- VV messages (wire v7) ----
 * Every test checks the encoder's bytes against the layout spelled out by
 * hand (wire_fixture.h, vvr_*) and feeds hostile bytes as an exact-size
 * heap copy. */

/* Every header field set: varints at their largest (vector, gen, held
 * near 2^64), part and parts at two bytes, all five digests. */
static vs_vv_part vv_rich_part(uint64_t base) {
  vs_vv_part p = {UINT64_MAX, VS_WIRE_VV_PARTS_MAX - 2u, VS_WIRE_VV_PARTS_MAX - 1u, 0x1122334455667788ull,
                  0x99aabbccddeeff00ull, UINT64_MAX, base, UINT64_MAX - 1u, 0x3000000000000003ull,
                  VS_VV_WANT | VS_VV_GAP, 255, 0x5000000000000005ull, 0x6000000000000006ull};
  return p;
}

static void vv_part_equal(const vs_vv_part *got, const vs_vv_part *want) {
  assert_int_equal(got->vector, want->vector);
  assert_int_equal(got->part, want->part);
  assert_int_equal(got->parts, want->parts);
  assert_int_equal(got->forks, want->forks);
  assert_int_equal(got->acks, want->acks);
  assert_int_equal(got->gen, want->gen);
  assert_int_equal(got->base, want->base);
  assert_int_equal(got->held, want->held);
  assert_int_equal(got->sum, want->sum);
  assert_int_equal(got->flags, want->flags);
  assert_int_equal(got->dist, want->dist);
  assert_int_equal(got->root, want->root);
  assert_int_equal(got->parent, want->parent);
}

/* A decoded entry: a short origin comes back as its first bytes then
 * zeros; no head travels for seq 0; gen and born never travel. */
static void vv_entry_equal(const vs_vv_entry *got, const vs_vv_entry *want) {
  size_t id = want->short_id ? VS_VV_SHORT_BYTES : VS_ORIGIN_BYTES;
  assert_memory_equal(got->origin, want->origin, id);
  for (size_t b = id; b < VS_ORIGIN_BYTES; b++) assert_int_equal(got->origin[b], 0);
  assert_int_equal(got->short_id, want->short_id);
  assert_int_equal(got->seq, want->seq);
  static const uint8_t zero[VS_VV_HEAD_BYTES] = {0};
  assert_memory_equal(got->head, want->seq != 0 ? want->head : zero, VS_VV_HEAD_BYTES);
  assert_int_equal(got->gen, 0);
  assert_int_equal(got->born, 0);
}

/* Encode into buf (exactly the room the layout says it takes), check the
 * bytes against the layout written out by hand, check that one byte less
 * is VS_ERR_BUFSIZE, decode an exact copy and check all of it came back.
 * Returns the message's size. */
static size_t vv_round_trip(const vs_vv_part *part, const vs_vv_entry *e, uint32_t count, uint8_t *buf) {
  vvraw r;
  vvr_msg(&r, part, e, count);
  size_t n = 0;
  assert_err(vs_msg_vv_encode(part, e, count, buf, r.n, &n), VS_OK);
  assert_int_equal(n, r.n);
  assert_memory_equal(buf, r.b, n);
  uint8_t *less = malloc(n - 1); /* exact: ASan sees a write past it */
  assert_non_null(less);
  size_t n2 = 0;
  assert_err(vs_msg_vv_encode(part, e, count, less, n - 1, &n2), VS_ERR_BUFSIZE);
  free(less);
  vs_vv_part got;
  memset(&got, 0, sizeof got);
  vs_vv_entry d[8];
  memset(d, 0xa5, sizeof d); /* what the decoder leaves unset shows */
  uint32_t got_count = 0;
  assert_true(count <= 8);
  assert_err(vv_decode_exact_part(buf, n, &got, d, 8, &got_count), VS_OK);
  assert_int_equal(got_count, count);
  vv_part_equal(&got, part);
  for (uint32_t k = 0; k < count; k++) vv_entry_equal(&d[k], &e[k]);
  return n;
}

/* Decoding `r` fails with `want`, and leaves what it was given untouched. */
static void vv_refused(const vvraw *r, uint32_t max, vs_err want) {
  vs_vv_part part, part0;
  memset(&part, 0, sizeof part);
  memset(&part0, 0, sizeof part0);
  vs_vv_entry d[4], d0[4];
  memset(&part, 0xa5, sizeof part);
  memset(d, 0xa5, sizeof d);
  part0 = part;
  memcpy(d0, d, sizeof d);
  uint32_t count = 77;
  assert_true(max <= 4);
  uint8_t *copy = vt_dup_exact(r->b, r->n);
  assert_err(vs_msg_vv_decode(copy, r->n, &part, d, max, &count), want);
  free(copy);
  assert_memory_equal(&part, &part0, sizeof part);
  assert_memory_equal(d, d0, sizeof d);
  assert_int_equal(count, 77);
}

static void vv_taken(const vvraw *r, uint32_t want_count) {
  uint32_t count = 0;
  vs_vv_entry d[4];
  assert_err(vv_decode_exact(r->b, r->n, d, 4, &count), VS_OK);
  assert_int_equal(count, want_count);
}

/* Every header field, whole and as a delta, near 2^64 where it is a
 * varint; entries up to VS_OP_SEQ_MAX; the empty vector. */
static void test_vv_round_trip(void **state) {
  (void)state;
  vs_vv_entry e[5];
  vv_entries(e, 5);
  e[4].seq = VS_OP_SEQ_MAX;
  uint8_t buf[VVH + 5 * VVE];
  vs_vv_part part = vv_rich_part(0);
  size_t n = vv_round_trip(&part, e, 5, buf);
  /* [1][flags][opt: all five digests][vector: 2^64-1 in ten bytes][part 4094] */
  assert_int_equal(buf[0], VS_MSG_VV);
  assert_int_equal(buf[1], VS_VV_WANT | VS_VV_GAP);
  assert_int_equal(buf[2], 0x1f);
  for (size_t k = 3; k < 12; k++) assert_int_equal(buf[k], 0xff);
  assert_int_equal(buf[12], 0x01);
  assert_int_equal(buf[13], 0xfe);
  assert_int_equal(buf[14], 0x1f);
  /* Header: 3, vector 10, part 2, parts 2, gen 10, base 1, held 10, dist
   * 1, digests 40, count 1. Entries: seq 1 (varint 2), 1001 and 2001 and
   * 3001 (two bytes), VS_OP_SEQ_MAX (2^49 - 2: seven bytes). */
  size_t header = 3u + 10u + 2u + 2u + 10u + 1u + 10u + 1u + 40u + 1u;
  assert_true(header <= VVH);
  assert_int_equal(n, header + (1 + 40) + 3 * (2 + 40) + (7 + 40));
  assert_memory_equal(buf + header + 1, e[0].origin, VS_ORIGIN_BYTES);
  /* The same as a delta from the generation before 2^64 - 1. */
  part = vv_rich_part(UINT64_MAX - 1u);
  assert_int_equal(vv_round_trip(&part, e, 5, buf), n + 9);
  /* The empty vector (a new node): one empty part, eleven bytes. */
  static const uint8_t empty[] = {VS_MSG_VV, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
  assert_int_equal(vv_round_trip(&ONE_PART, NULL, 0, buf), sizeof empty);
  assert_memory_equal(buf, empty, sizeof empty);
}

/* A digest of 0 ("none") is not on the wire: its opt bit is clear and the
 * message 8 bytes shorter; it decodes as 0. */
static void test_vv_zero_digests_not_on_wire(void **state) {
  (void)state;
  vs_vv_entry e[2];
  vv_entries(e, 2);
  uint8_t buf[VVH + 2 * VVE];
  vs_vv_part all = vv_rich_part(0);
  size_t full = vv_round_trip(&all, e, 2, buf);
  assert_int_equal(buf[2], 0x1f);
  for (unsigned i = 0; i < 5; i++) {
    vs_vv_part p = all;
    uint64_t *field[5] = {&p.forks, &p.acks, &p.sum, &p.root, &p.parent};
    *field[i] = 0;
    assert_int_equal(vv_round_trip(&p, e, 2, buf), full - 8);
    assert_int_equal(buf[2], 0x1f & ~(1u << i));
  }
  vs_vv_part none = all;
  none.forks = none.acks = none.sum = none.root = none.parent = 0;
  assert_int_equal(vv_round_trip(&none, e, 2, buf), full - 40);
  assert_int_equal(buf[2], 0);
}

/* In a delta, an origin may go by its first VS_VV_SHORT_BYTES bytes, and
 * seq 0 (gone) carries no head: a short entry of seq 0 is the smallest. */
static void test_vv_delta_short_ids_round_trip(void **state) {
  (void)state;
  vs_vv_entry e[6];
  vv_entries(e, 6); /* origin[31] = 0x5a: a short id must come back as zeros there */
  e[0].short_id = true;
  e[1].short_id = true;
  e[1].seq = 0;
  e[2].seq = 0;
  e[3].short_id = true;
  e[3].seq = VS_OP_SEQ_MAX;
  e[4].seq = VS_OP_SEQ_MAX;
  vs_vv_part delta = {7, 0, 1, 0, 0, 20, 19, 3, 0, 0, 0, 0, 0};
  uint8_t buf[VVH + 6 * VVE];
  size_t n = vv_round_trip(&delta, e, 6, buf);
  static const uint8_t header[] = {VS_MSG_VV, 0, 0, 7, 0, 1, 20, 19, 3, 0, 6};
  assert_memory_equal(buf, header, sizeof header);
  size_t at = sizeof header;
  assert_int_equal(buf[at], 1 * 2 + 1); /* seq 1, short */
  assert_memory_equal(buf + at + 1, e[0].origin, VS_VV_SHORT_BYTES);
  assert_memory_equal(buf + at + 1 + VS_VV_SHORT_BYTES, e[0].head, VS_VV_HEAD_BYTES);
  at += 1 + VS_VV_SHORT_BYTES + VS_VV_HEAD_BYTES;
  assert_int_equal(buf[at], 0 * 2 + 1); /* seq 0, short: no head */
  assert_int_equal(vv_entry_wire_bytes(&e[1]), VS_VV_ENTRY_BYTES_MIN);
  at += VS_VV_ENTRY_BYTES_MIN;
  assert_int_equal(buf[at], 0); /* seq 0, whole origin: no head */
  at += 1 + VS_ORIGIN_BYTES;
  assert_int_equal(n, at + (7 + 8 + 8) + (7 + 32 + 8) + (2 + 32 + 8));
  assert_true(VS_VV_ENTRY_BYTES_MAX >= 7 + 32 + 8);
}

/* A whole vector (base 0) names every origin in full, each at seq >= 1:
 * the encoder refuses the rest (VS_ERR_INVAL), the decoder too
 * (VS_ERR_MALFORMED); a delta takes both. */
static void test_vv_short_ids_and_seq_zero_only_in_deltas(void **state) {
  (void)state;
  vs_vv_entry e[2];
  uint8_t buf[VVH + 2 * VVE];
  size_t n = 0;
  vvraw r;
  for (int k = 0; k < 2; k++) {
    vv_entries(e, 2);
    if (k == 0) e[1].short_id = true;
    else e[1].seq = 0;
    assert_err(vs_msg_vv_encode(&ONE_PART, e, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
    vvr_msg(&r, &ONE_PART, e, 2);
    vv_refused(&r, 2, VS_ERR_MALFORMED);
    (void)vv_round_trip(&ONE_DELTA, e, 2, buf);
    vvr_msg(&r, &ONE_DELTA, e, 2);
    vv_taken(&r, 2);
  }
}

/* Whole origins strictly increasing, on all 32 bytes; seqs up to
 * VS_OP_SEQ_MAX. Both sides refuse the rest, in a whole vector and in a
 * delta alike. */
static void test_vv_unsorted_duplicate_or_bad_seq_rejected(void **state) {
  (void)state;
  vs_vv_entry e[3];
  vv_entries(e, 3);
  uint8_t buf[VVH + 3 * VVE];
  size_t n = 0;
  vvraw r;
  const vs_vv_entry bad[][3] = {{e[0], e[2], e[2]}, {e[1], e[1], e[2]}, {e[2], e[1], e[0]}, {e[0], e[2], e[1]}};
  const vs_vv_part *parts[2] = {&ONE_PART, &ONE_DELTA};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    for (int p = 0; p < 2; p++) {
      assert_err(vs_msg_vv_encode(parts[p], bad[k], 3, buf, sizeof buf, &n), VS_ERR_INVAL);
      vvr_msg(&r, parts[p], bad[k], 3);
      vv_refused(&r, 3, VS_ERR_MALFORMED);
    }
  /* Origins that differ only in their last byte: order by all of it. */
  vs_vv_entry tail[2] = {e[0], e[0]};
  tail[1].origin[31]++;
  (void)vv_round_trip(&ONE_PART, tail, 2, buf);
  vs_vv_entry swapped[2] = {tail[1], tail[0]};
  assert_err(vs_msg_vv_encode(&ONE_PART, swapped, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
  vvr_msg(&r, &ONE_PART, swapped, 2);
  vv_refused(&r, 2, VS_ERR_MALFORMED);
  /* A seq past VS_OP_SEQ_MAX, whole or short, in a delta too. */
  for (int s = 0; s < 2; s++)
    for (int p = 0; p < 2; p++) {
      vv_entries(e, 3);
      e[1].seq = VS_OP_SEQ_MAX + 1u;
      e[1].short_id = s == 1 && p == 1;
      assert_err(vs_msg_vv_encode(parts[p], e, 3, buf, sizeof buf, &n), VS_ERR_INVAL);
      vvr_msg(&r, parts[p], e, 3);
      vv_refused(&r, 3, VS_ERR_MALFORMED);
      e[1].seq = VS_OP_SEQ_MAX; /* the last one that is a seq */
      (void)vv_round_trip(parts[p], e, 3, buf);
    }
}

/* Where either of two neighbours is short, they are ordered by the bytes
 * both carry: equal is allowed (the receiver resolves the short one in its
 * copy of the sender's vector and orders again), falling is not. */
static void test_vv_short_ids_ordered_by_first_bytes(void **state) {
  (void)state;
  vs_vv_entry e[3];
  vv_entries(e, 3);
  vs_vv_entry a = e[1], b = e[1], c = e[2]; /* a, b: one first 8 bytes; c after them */
  a.origin[20] = 1;
  b.origin[20] = 2;
  uint8_t buf[VVH + 2 * VVE];
  size_t n = 0;
  vvraw r;
  typedef struct pair {
    vs_vv_entry x, y;
    bool x_short, y_short, ok;
  } pair;
  const pair pairs[] = {
      {a, b, true, false, true},   {b, a, false, true, true},   {a, a, true, true, true},  {b, a, true, true, true},
      {a, c, false, true, true},   {a, c, true, true, true},    {c, a, true, false, false}, {c, a, false, true, false},
      {c, a, true, true, false},   {b, a, false, false, false}, {a, a, false, false, false},
  };
  for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
    vs_vv_entry two[2] = {pairs[k].x, pairs[k].y};
    two[0].short_id = pairs[k].x_short;
    two[1].short_id = pairs[k].y_short;
    vvr_msg(&r, &ONE_DELTA, two, 2);
    if (pairs[k].ok) {
      (void)vv_round_trip(&ONE_DELTA, two, 2, buf);
    } else {
      assert_err(vs_msg_vv_encode(&ONE_DELTA, two, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
      vv_refused(&r, 2, VS_ERR_MALFORMED);
    }
  }
}

/* Build `base` with the varint of `len` bytes at `at` replaced by `rep`. */
static void vv_splice(const vvraw *base, size_t at, size_t len, const uint8_t *rep, size_t rep_len, vvraw *out) {
  out->n = 0;
  vvr_put(out, base->b, at);
  vvr_put(out, rep, rep_len);
  vvr_put(out, base->b + at + len, base->n - at - len);
}

/* One value, one form: a varint in a longer form than its value needs, or
 * past 64 bits, is malformed wherever it is; so are part and parts past
 * 32 bits. */
static void test_vv_varints_one_form(void **state) {
  (void)state;
  vs_vv_entry e[1];
  vv_entries(e, 1);
  const vs_vv_part part = {1, 0, 1, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0};
  vvraw ok, r;
  vvr_msg(&ok, &part, e, 1);
  vv_taken(&ok, 1);
  /* Offsets: vector 3, part 4, parts 5, gen 6, base 7, held 8, (dist 9),
   * count 10, the entry's seq * 2 at 11: each one byte. */
  static const size_t varints[] = {3, 4, 5, 6, 7, 8, 10, 11};
  for (size_t k = 0; k < sizeof varints / sizeof varints[0]; k++) {
    size_t at = varints[k];
    assert_true(ok.b[at] < 0x80);
    const uint8_t longer[2] = {(uint8_t)(ok.b[at] | 0x80u), 0x00}; /* the same value in two bytes */
    vv_splice(&ok, at, 1, longer, 2, &r);
    vv_refused(&r, 1, VS_ERR_MALFORMED);
    const uint8_t longest[10] = {(uint8_t)(ok.b[at] | 0x80u), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    vv_splice(&ok, at, 1, longest, 10, &r);
    vv_refused(&r, 1, VS_ERR_MALFORMED);
    static const uint8_t past64[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}; /* bit 64 */
    vv_splice(&ok, at, 1, past64, 10, &r);
    vv_refused(&r, 1, VS_ERR_MALFORMED);
    static const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    vv_splice(&ok, at, 1, eleven, 11, &r);
    vv_refused(&r, 1, VS_ERR_MALFORMED);
  }
  /* The vector number 0 for 0x80 0x00: not 0 either (vector 0 is refused
   * apart, test_vv_part_header_checked) but refused as a form. */
  /* 2^64 - 1 and 2^63 in ten bytes are varints: taken. */
  static const uint8_t max64[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  static const uint8_t top[10] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  vv_splice(&ok, 3, 1, max64, 10, &r);
  vv_taken(&r, 1);
  vv_splice(&ok, 3, 1, top, 10, &r);
  vv_taken(&r, 1);
  /* part and parts are u32 values: 2^32 is malformed, not cut to 0. */
  static const uint8_t two32[5] = {0x80, 0x80, 0x80, 0x80, 0x10};
  vv_splice(&ok, 4, 1, two32, 5, &r);
  vv_refused(&r, 1, VS_ERR_MALFORMED);
  static const uint8_t two32_1[5] = {0x81, 0x80, 0x80, 0x80, 0x10};
  vv_splice(&ok, 5, 1, two32_1, 5, &r);
  vv_refused(&r, 1, VS_ERR_MALFORMED);
  /* At the very end (the count of an empty vector, 0x80 0x00 for 0). The
   * decoder reads this as cut short today: it must at least refuse it. */
  vvr_msg(&ok, &ONE_PART, NULL, 0);
  static const uint8_t zero2[2] = {0x80, 0x00};
  vv_splice(&ok, ok.n - 1, 1, zero2, 2, &r);
  uint32_t count = 0;
  vs_err err = vv_decode_exact(r.b, r.n, NULL, 0, &count);
  assert_true(err == VS_ERR_MALFORMED || err == VS_ERR_TRUNCATED);
}

/* An opt bit says a digest follows, never 0 (0 is said by the bit being
 * clear); bits past the five digests, and flags other than VS_VV_WANT and
 * VS_VV_GAP, are unknown: malformed (VS_ERR_INVAL to the encoder). */
static void test_vv_opt_and_flag_bits_checked(void **state) {
  (void)state;
  vs_vv_entry e[1];
  vv_entries(e, 1);
  vvraw ok, r;
  vvr_msg(&ok, &ONE_PART, e, 1); /* digests go at 10, after dist */
  static const uint8_t zero8[8] = {0}, some8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (unsigned i = 0; i < 8; i++) {
    vv_splice(&ok, 10, 0, zero8, 8, &r);
    r.b[2] = (uint8_t)(1u << i);
    vv_refused(&r, 1, VS_ERR_MALFORMED); /* 0 behind a bit, or an unknown bit */
    vv_splice(&ok, 10, 0, some8, 8, &r);
    r.b[2] = (uint8_t)(1u << i);
    if (i < 5) {
      vs_vv_part got;
      memset(&got, 0, sizeof got);
      vs_vv_entry d[1];
      uint32_t count = 0;
      assert_err(vv_decode_exact_part(r.b, r.n, &got, d, 1, &count), VS_OK);
      const uint64_t field[5] = {got.forks, got.acks, got.sum, got.root, got.parent};
      for (unsigned j = 0; j < 5; j++) assert_int_equal(field[j], j == i ? 0x0807060504030201ull : 0u);
    } else {
      vv_refused(&r, 1, VS_ERR_MALFORMED);
    }
  }
  /* A bit with its digest missing (an empty vector: one byte, its count,
   * follows dist): cut short. */
  vvr_msg(&r, &ONE_PART, NULL, 0);
  r.b[2] = 1;
  vv_refused(&r, 1, VS_ERR_TRUNCATED);
  uint8_t buf[VVH + VVE];
  size_t n = 0;
  for (unsigned bit = 0; bit < 8; bit++) {
    vs_vv_part p = ONE_PART;
    p.flags = (uint8_t)(1u << bit);
    vvr_msg(&r, &p, e, 1);
    if (p.flags == VS_VV_WANT || p.flags == VS_VV_GAP) {
      (void)vv_round_trip(&p, e, 1, buf);
      continue;
    }
    assert_err(vs_msg_vv_encode(&p, e, 1, buf, sizeof buf, &n), VS_ERR_INVAL);
    vv_refused(&r, 1, VS_ERR_MALFORMED);
  }
}

/* The part header: vector >= 1, part < parts <= VS_WIRE_VV_PARTS_MAX,
 * base <= gen, known flags, and an empty part only in a vector of one
 * part; both sides refuse the rest. */
static void test_vv_part_header_checked(void **state) {
  (void)state;
  vs_vv_entry e[2];
  vv_entries(e, 2);
  uint8_t buf[VVH + 2 * VVE];
  size_t n = 0;
  vvraw r;
  static const vs_vv_part bad[] = {
      {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
      {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, VS_WIRE_VV_PARTS_MAX + 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
      {1, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 1, 0, 0, 4, 5, 0, 0, 0, 0, 0, 0},
      {1, 0, 1, 0, 0, UINT64_MAX - 1u, UINT64_MAX, 0, 0, 0, 0, 0, 0}, {1, 0, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    assert_err(vs_msg_vv_encode(&bad[k], e, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
    vvr_msg(&r, &bad[k], e, 2);
    vv_refused(&r, 2, VS_ERR_MALFORMED);
  }
  vs_vv_part last = {7, VS_WIRE_VV_PARTS_MAX - 1, VS_WIRE_VV_PARTS_MAX, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  (void)vv_round_trip(&last, e, 2, buf);
  vs_vv_part empty_delta = {1, 0, 1, 0, 0, 5, 5, 0, 0, 0, 0, 0, 0}; /* nothing changed: base = gen */
  (void)vv_round_trip(&empty_delta, NULL, 0, buf);
  vs_vv_part empty_of_two = {1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&empty_of_two, NULL, 0, buf, sizeof buf, &n), VS_ERR_INVAL);
  vvr_msg(&r, &empty_of_two, NULL, 0);
  vv_refused(&r, 2, VS_ERR_MALFORMED);
  assert_err(vs_msg_vv_encode(NULL, e, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_vv_encode(&ONE_PART, NULL, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
}

/* A count past VS_WIRE_VV_MAX or the caller's room is VS_ERR_TOO_LARGE,
 * before any entry is read; the largest part round-trips. */
static void test_vv_counts_past_limits_are_too_large(void **state) {
  (void)state;
  vvraw r;
  static const uint64_t too_many[] = {VS_WIRE_VV_MAX + 1u, 1ull << 32, UINT64_MAX, 5};
  for (size_t k = 0; k < sizeof too_many / sizeof too_many[0]; k++) {
    vvr_header(&r, &ONE_PART, too_many[k]);
    vv_refused(&r, 4, VS_ERR_TOO_LARGE); /* room for 4 */
  }
  vvr_header(&r, &ONE_PART, 4);
  vv_refused(&r, 4, VS_ERR_TRUNCATED); /* within the room, but no entries */

  /* The largest part, every entry at its largest (seq VS_OP_SEQ_MAX);
   * one entry more cannot be encoded (it goes in the next part). */
  vs_vv_entry *e = malloc((VS_WIRE_VV_MAX + 1) * sizeof *e), *out = malloc(VS_WIRE_VV_MAX * sizeof *out);
  size_t cap = VVH + (VS_WIRE_VV_MAX + 1) * (size_t)VVE, n = 0;
  uint8_t *buf = malloc(cap);
  assert_non_null(e);
  assert_non_null(out);
  assert_non_null(buf);
  vv_entries(e, VS_WIRE_VV_MAX + 1);
  for (uint32_t k = 0; k <= VS_WIRE_VV_MAX; k++) e[k].seq = VS_OP_SEQ_MAX;
  assert_err(vs_msg_vv_encode(&ONE_PART, e, VS_WIRE_VV_MAX + 1, buf, cap, &n), VS_ERR_INVAL);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, VS_WIRE_VV_MAX, buf, cap, &n), VS_OK);
  assert_int_equal(n, 10u + 2u + (size_t)VS_WIRE_VV_MAX * (7u + 32u + 8u)); /* the count takes two bytes */
  assert_true(n <= VS_MSG_BYTES_MAX);
  uint32_t count = 0;
  assert_err(vv_decode_exact(buf, n, out, VS_WIRE_VV_MAX, &count), VS_OK);
  assert_int_equal(count, VS_WIRE_VV_MAX);
  for (uint32_t k = 0; k < VS_WIRE_VV_MAX; k++) {
    assert_memory_equal(out[k].origin, e[k].origin, VS_ORIGIN_BYTES);
    assert_int_equal(out[k].seq, VS_OP_SEQ_MAX);
  }
  assert_err(vv_decode_exact(buf, n, out, VS_WIRE_VV_MAX - 1, &count), VS_ERR_TOO_LARGE);
  free(e);
  free(out);
  free(buf);
}

/* Every cut is VS_ERR_TRUNCATED (in a ten-byte varint too), a byte more
 * VS_ERR_TRAILING, another type VS_ERR_MALFORMED. */
static void test_vv_truncated_trailing_and_type(void **state) {
  (void)state;
  vs_vv_entry e[4], d[4];
  vv_entries(e, 4);
  e[3].seq = VS_OP_SEQ_MAX;
  vs_vv_entry s[4];
  memcpy(s, e, sizeof s);
  s[0].short_id = true;
  s[1].seq = 0;
  s[2].short_id = true;
  s[2].seq = 0;
  const vs_vv_part whole = vv_rich_part(0), delta = vv_rich_part(9);
  const vs_vv_part *parts[2] = {&whole, &delta};
  const vs_vv_entry *entries[2] = {e, s};
  for (int m = 0; m < 2; m++) {
    uint8_t buf[VVH + 4 * VVE + 1];
    size_t n = vv_round_trip(parts[m], entries[m], 4, buf);
    uint32_t count = 0;
    for (size_t k = 0; k < n; k++) assert_err(vv_decode_exact(buf, k, d, 4, &count), VS_ERR_TRUNCATED);
    uint8_t *more = malloc(n + 1); /* the message and a byte left over */
    assert_non_null(more);
    memcpy(more, buf, n);
    more[n] = 0;
    assert_err(vv_decode_exact(more, n + 1, d, 4, &count), VS_ERR_TRAILING);
    more[n] = 0xff;
    assert_err(vv_decode_exact(more, n + 1, d, 4, &count), VS_ERR_TRAILING);
    free(more);
    static const uint8_t types[] = {0, VS_MSG_OPS, 3, 0xff};
    for (size_t t = 0; t < sizeof types; t++) {
      buf[0] = types[t];
      assert_err(vv_decode_exact(buf, n, d, 4, &count), VS_ERR_MALFORMED);
    }
  }
}

/* Any byte of a delta flipped: refused, or taken as a message the encoder
 * writes byte for byte the same (one value, one form: nothing the decoder
 * takes has a second encoding). */
static void test_vv_single_byte_mutations_one_form(void **state) {
  (void)state;
  vs_vv_entry e[4], d[4];
  vv_entries(e, 4);
  e[0].short_id = true;
  e[1].seq = 0;
  e[2].short_id = true;
  e[2].seq = 300;
  vs_vv_part part = {300, 1, 2, 0x77, 0, 1000, 990, 129, 0x55, VS_VV_GAP, 3, 0, 0x99};
  uint8_t msg[VVH + 4 * VVE], again[VVH + 4 * VVE];
  size_t n = vv_round_trip(&part, e, 4, msg);
  static const uint8_t flips[] = {0x01, 0x02, 0x80, 0xff};
  uint32_t taken = 0, refused = 0;
  for (size_t f = 0; f < sizeof flips; f++)
    for (size_t at = 0; at < n; at++) {
      uint8_t *m = vt_dup_exact(msg, n);
      m[at] ^= flips[f];
      vs_vv_part got;
      memset(&got, 0, sizeof got);
      uint32_t count = 0;
      vs_err err = vs_msg_vv_decode(m, n, &got, d, 4, &count);
      if (err == VS_OK) {
        size_t n2 = 0;
        assert_err(vs_msg_vv_encode(&got, d, count, again, sizeof again, &n2), VS_OK);
        assert_int_equal(n2, n);
        assert_memory_equal(again, m, n);
        taken++;
      } else {
        refused++;
      }
      free(m);
    }
  assert_true(taken > 0 && refused > 0);
}

static void test_messages_single_byte_mutations_are_safe(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 3, 20);
  make_chain(&b, ID_B.pk, 7, 2, 21);
  chain *runs[2] = {&a, &b};
  uint8_t ops_msg[2048], vv_msg[VVH + 3 * VVE];
  size_t ops_bytes = 0, vv_bytes = 0;
  write_runs(runs, 2, ops_msg, sizeof ops_msg, &ops_bytes);
  vs_vv_entry e[3], d[3];
  vv_entries(e, 3);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 3, vv_msg, sizeof vv_msg, &vv_bytes), VS_OK);
  static const uint8_t flips[] = {0x01, 0x80, 0xff};
  for (size_t f = 0; f < sizeof flips; f++) {
    for (size_t at = 0; at < ops_bytes; at++) {
      uint8_t *m = vt_dup_exact(ops_msg, ops_bytes);
      m[at] ^= flips[f];
      uint32_t calls = 0;
      vs_err err = vs_msg_ops_decode(m, ops_bytes, count_runs, &calls);
      assert_true(err == VS_OK ? calls == 2 : calls == 0);
      free(m);
    }
    for (size_t at = 0; at < vv_bytes; at++) {
      uint8_t *m = vt_dup_exact(vv_msg, vv_bytes);
      m[at] ^= flips[f];
      uint32_t count = 0;
      vs_vv_part part;
      memset(&part, 0, sizeof part);
      vs_err err = vs_msg_vv_decode(m, vv_bytes, &part, d, 3, &count);
      if (err == VS_OK) assert_int_equal(count, 3);
      free(m);
    }
  }
}

/* WANT: round trip, and every malformation refused. */
static void test_want_round_trip_and_malformed(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES], got[VS_ORIGIN_BYTES], buf[VS_MSG_WANT_BYTES + 1];
  memset(origin, 0xab, sizeof origin);
  size_t n = 0;
  uint64_t from = 0;
  assert_err(vs_msg_want_encode(origin, 0, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_want_encode(origin, VS_OP_SEQ_MAX + 1, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_want_encode(origin, 7, buf, VS_MSG_WANT_BYTES - 1, &n), VS_ERR_BUFSIZE);
  assert_err(vs_msg_want_encode(origin, 7, buf, sizeof buf, &n), VS_OK);
  assert_int_equal(n, VS_MSG_WANT_BYTES);
  assert_err(vs_msg_want_decode(buf, n, got, &from), VS_OK);
  assert_memory_equal(got, origin, VS_ORIGIN_BYTES);
  assert_int_equal(from, 7);
  assert_err(vs_msg_want_decode(buf, n - 1, got, &from), VS_ERR_TRUNCATED);
  assert_err(vs_msg_want_decode(buf, n + 1, got, &from), VS_ERR_TRAILING);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 0);
  assert_err(vs_msg_want_decode(buf, n, got, &from), VS_ERR_MALFORMED);
  buf[0] = VS_MSG_OPS;
  assert_err(vs_msg_want_decode(buf, n, got, &from), VS_ERR_MALFORMED);
}

/* BEHIND, SNAPREQ, SNAPCHUNK, SNAPACK (wire v5): round trips, and every
 * malformation refused with nothing written out. */
static void test_snapshot_msgs_round_trip_and_malformed(void **state) {
  (void)state;
  vs_behind_entry e[3], got[3];
  memset(e, 0, sizeof e);
  for (int i = 0; i < 3; i++) {
    memset(e[i].origin, 0x10 + i, VS_ORIGIN_BYTES);
    e[i].seq = 100u + (uint64_t)i;
    memset(e[i].hash, 0xa0 + i, sizeof e[i].hash);
  }
  uint8_t buf[VS_MSG_BEHIND_HEADER_BYTES + 3 * VS_BEHIND_ENTRY_BYTES + 1];
  size_t n = 0;
  uint32_t count = 0;
  assert_err(vs_msg_behind_encode(e, 0, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_behind_encode(e, VS_WIRE_BEHIND_MAX + 1, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_behind_encode(e, 3, buf, sizeof buf - 2, &n), VS_ERR_BUFSIZE);
  vs_behind_entry swap[2] = {e[1], e[0]};
  assert_err(vs_msg_behind_encode(swap, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_behind_encode(e, 3, buf, sizeof buf, &n), VS_OK);
  assert_int_equal(n, VS_MSG_BEHIND_HEADER_BYTES + 3 * VS_BEHIND_ENTRY_BYTES);
  assert_err(vs_msg_behind_decode(buf, n, got, 3, &count), VS_OK);
  assert_int_equal(count, 3);
  assert_memory_equal(got, e, sizeof e);
  assert_err(vs_msg_behind_decode(buf, n, got, 2, &count), VS_ERR_TOO_LARGE);
  assert_err(vs_msg_behind_decode(buf, n - 1, got, 3, &count), VS_ERR_TRUNCATED);
  assert_err(vs_msg_behind_decode(buf, n + 1, got, 3, &count), VS_ERR_TRAILING);
  assert_err(vs_msg_behind_decode(buf, 3, got, 3, &count), VS_ERR_TRUNCATED);
  memset(got, 0x77, sizeof got);
  vt_put_u64le(buf + VS_MSG_BEHIND_HEADER_BYTES + VS_BEHIND_ENTRY_BYTES + VS_ORIGIN_BYTES, 0); /* seq 0 */
  assert_err(vs_msg_behind_decode(buf, n, got, 3, &count), VS_ERR_MALFORMED);
  assert_int_equal(got[0].seq, 0x7777777777777777ull); /* untouched */
  assert_err(vs_msg_behind_encode(e, 3, buf, sizeof buf, &n), VS_OK);
  memcpy(buf + VS_MSG_BEHIND_HEADER_BYTES + 2 * VS_BEHIND_ENTRY_BYTES, e[0].origin, VS_ORIGIN_BYTES); /* order */
  assert_err(vs_msg_behind_decode(buf, n, got, 3, &count), VS_ERR_MALFORMED);
  vt_put_u32le(buf + 1, 0);
  assert_err(vs_msg_behind_decode(buf, VS_MSG_BEHIND_HEADER_BYTES, got, 3, &count), VS_ERR_MALFORMED);
  buf[0] = VS_MSG_WANT;
  assert_err(vs_msg_behind_decode(buf, n, got, 3, &count), VS_ERR_MALFORMED);

  uint8_t r[VS_MSG_SNAPREQ_BYTES + 1];
  uint64_t id = 0, rec = 0;
  assert_err(vs_msg_snapreq_encode(0, r, sizeof r, &n), VS_ERR_INVAL);
  assert_err(vs_msg_snapreq_encode(5, r, VS_MSG_SNAPREQ_BYTES - 1, &n), VS_ERR_BUFSIZE);
  assert_err(vs_msg_snapreq_encode(5, r, sizeof r, &n), VS_OK);
  assert_err(vs_msg_snapreq_decode(r, n, &id), VS_OK);
  assert_int_equal(id, 5);
  assert_err(vs_msg_snapreq_decode(r, n - 1, &id), VS_ERR_TRUNCATED);
  assert_err(vs_msg_snapreq_decode(r, n + 1, &id), VS_ERR_TRAILING);
  vt_put_u64le(r + 1, 0);
  assert_err(vs_msg_snapreq_decode(r, n, &id), VS_ERR_MALFORMED);

  uint8_t a[VS_MSG_SNAPACK_BYTES + 1];
  assert_err(vs_msg_snapack_encode(0, 1, a, sizeof a, &n), VS_ERR_INVAL);
  assert_err(vs_msg_snapack_encode(1, VS_WIRE_SNAP_TOTAL_MAX + 1, a, sizeof a, &n), VS_ERR_INVAL);
  assert_err(vs_msg_snapack_encode(3, 4096, a, sizeof a, &n), VS_OK);
  assert_err(vs_msg_snapack_decode(a, n, &id, &rec), VS_OK);
  assert_int_equal(id, 3);
  assert_int_equal(rec, 4096);
  assert_err(vs_msg_snapack_decode(a, n + 1, &id, &rec), VS_ERR_TRAILING);
  vt_put_u64le(a + 9, VS_WIRE_SNAP_TOTAL_MAX + 1);
  assert_err(vs_msg_snapack_decode(a, n, &id, &rec), VS_ERR_MALFORMED);

  static uint8_t c[VS_MSG_SNAPCHUNK_HEADER_BYTES + VS_WIRE_SNAP_CHUNK_BYTES + 1];
  static uint8_t data[VS_WIRE_SNAP_CHUNK_BYTES + 1];
  memset(data, 0x5c, sizeof data);
  vs_snapchunk in = {9, 1000, 200, data, 800}, out;
  assert_err(vs_msg_snapchunk_encode(&in, c, sizeof c, &n), VS_OK);
  assert_err(vs_msg_snapchunk_decode(c, n, &out), VS_OK);
  assert_int_equal(out.id, 9);
  assert_int_equal(out.total, 1000);
  assert_int_equal(out.offset, 200);
  assert_int_equal(out.len, 800);
  assert_memory_equal(out.bytes, data, 800);
  assert_err(vs_msg_snapchunk_decode(c, n - 1, &out), VS_OK); /* a shorter chunk is a chunk */
  assert_err(vs_msg_snapchunk_decode(c, n + 1, &out), VS_ERR_MALFORMED); /* past its total */
  assert_err(vs_msg_snapchunk_decode(c, VS_MSG_SNAPCHUNK_HEADER_BYTES, &out), VS_ERR_MALFORMED); /* no bytes */
  assert_err(vs_msg_snapchunk_decode(c, VS_MSG_SNAPCHUNK_HEADER_BYTES - 1, &out), VS_ERR_TRUNCATED);
  vs_snapchunk bad[] = {{0, 1000, 0, data, 10},   {1, 1000, 995, data, 10}, {1, 10, 10, data, 1},
                        {1, 0, 0, data, 1},       {1, 0, 5, NULL, 0},       {1, 5, 0, NULL, 0},
                        {1, VS_WIRE_SNAP_TOTAL_MAX + 1, 0, data, 1}, {1, (uint64_t)-1, (uint64_t)-2, data, 10},
                        {1, VS_WIRE_SNAP_CHUNK_BYTES + 1, 0, data, VS_WIRE_SNAP_CHUNK_BYTES + 1}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_err(vs_msg_snapchunk_encode(&bad[i], c, sizeof c, &n), VS_ERR_INVAL);
    /* The same numbers written by hand are refused by the decoder. */
    c[0] = VS_MSG_SNAPCHUNK;
    vt_put_u64le(c + 1, bad[i].id);
    vt_put_u64le(c + 9, bad[i].total);
    vt_put_u64le(c + 17, bad[i].offset);
    size_t len = VS_MSG_SNAPCHUNK_HEADER_BYTES + bad[i].len;
    vs_err err = vs_msg_snapchunk_decode(c, len, &out);
    assert_true(err == VS_ERR_MALFORMED || err == VS_ERR_TOO_LARGE);
  }
  vs_snapchunk decline = {4, 0, 0, NULL, 0};
  assert_err(vs_msg_snapchunk_encode(&decline, c, sizeof c, &n), VS_OK);
  assert_int_equal(n, VS_MSG_SNAPCHUNK_HEADER_BYTES);
  assert_err(vs_msg_snapchunk_decode(c, n, &out), VS_OK);
  assert_int_equal(out.total, 0);
  assert_int_equal(out.len, 0);
  vs_snapchunk full = {4, VS_WIRE_SNAP_CHUNK_BYTES, 0, data, VS_WIRE_SNAP_CHUNK_BYTES};
  assert_err(vs_msg_snapchunk_encode(&full, c, VS_MSG_SNAPCHUNK_HEADER_BYTES + VS_WIRE_SNAP_CHUNK_BYTES - 1, &n),
             VS_ERR_BUFSIZE);
  assert_err(vs_msg_snapchunk_encode(&full, c, sizeof c, &n), VS_OK);
  assert_err(vs_msg_snapchunk_decode(c, n, &out), VS_OK);
}

/* FORK: two proofs round-trip; the codec checks shape (ops of the origin
 * at the proof's seqs), never signatures (apply.h does). */
static void test_fork_msg_round_trip_and_malformed(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES], other[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES] = {0}, sig[VS_SIGNATURE_BYTES];
  memset(origin, 0x11, sizeof origin);
  memset(other, 0x22, sizeof other);
  memset(sig, 0x33, sizeof sig);
  uint8_t enc[3][256];
  uint32_t len[3];
  const char *vals[3] = {"a", "b", "c"};
  for (int k = 0; k < 3; k++) { /* seq 5 (twice, different values) and 6 */
    vs_op op;
    size_t w = 0;
    assert_err(vs_op_init(&op, origin, k == 2 ? 6 : 5, 100, prev, "put",
                          (const uint8_t *)"t", 1, (const uint8_t *)vals[k], 1),
               VS_OK);
    assert_err(vs_op_encode(&op, enc[k], sizeof enc[k], &w), VS_OK);
    len[k] = (uint32_t)w;
  }
  const uint8_t *pa[2] = {enc[0], enc[2]}, *pb[1] = {enc[1]};
  uint32_t la[2] = {len[0], len[2]}, lb[1] = {len[1]};
  vs_fork_proof pr[2] = {{sig, 2, pa, la, NULL}, {sig, 1, pb, lb, NULL}};
  uint8_t *buf = malloc(4096);
  assert_non_null(buf);
  size_t n = 0;
  assert_err(vs_msg_fork_encode(origin, 5, pr, buf, 4096, &n), VS_OK);
  vs_fork_msg m;
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_OK);
  assert_memory_equal(m.origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(m.seq, 5);
  assert_int_equal(m.proof[0].count, 2);
  assert_int_equal(m.proof[1].count, 1);
  assert_int_equal(m.proof[0].ops[1].seq, 6);
  assert_memory_equal(m.proof[1].enc[0], enc[1], len[1]);
  vs_fork_msg_free(&m);
  /* Shape errors, each leaving nothing to free. */
  assert_err(vs_msg_fork_decode(buf, n - 1, &m), VS_ERR_TRUNCATED);
  assert_null(m.mem);
  assert_err(vs_msg_fork_decode(buf, VS_MSG_FORK_HEADER_BYTES, &m), VS_ERR_TRUNCATED);
  uint8_t *longer = malloc(n + 1);
  assert_non_null(longer);
  memcpy(longer, buf, n);
  longer[n] = 0;
  assert_err(vs_msg_fork_decode(longer, n + 1, &m), VS_ERR_TRAILING);
  free(longer);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 6); /* ops no longer at the proof's seqs */
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 0);
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 5);
  vt_put_u32le(buf + VS_MSG_FORK_HEADER_BYTES + VS_SIGNATURE_BYTES, 0); /* an empty proof */
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  vt_put_u32le(buf + VS_MSG_FORK_HEADER_BYTES + VS_SIGNATURE_BYTES, 0xffffffffu);
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_TOO_LARGE);
  buf[0] = VS_MSG_OPS;
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  /* The encoder refuses ops of another origin or seq. */
  assert_err(vs_msg_fork_encode(other, 5, pr, buf, 4096, &n), VS_ERR_INVAL);
  assert_err(vs_msg_fork_encode(origin, 4, pr, buf, 4096, &n), VS_ERR_INVAL);
  assert_err(vs_msg_fork_encode(origin, 5, pr, buf, 40, &n), VS_ERR_BUFSIZE);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vv_round_trip),
      cmocka_unit_test(test_want_round_trip_and_malformed),
      cmocka_unit_test(test_snapshot_msgs_round_trip_and_malformed),
      cmocka_unit_test(test_fork_msg_round_trip_and_malformed),
      cmocka_unit_test(test_vv_part_header_checked),
      cmocka_unit_test(test_vv_unsorted_duplicate_or_bad_seq_rejected),
      cmocka_unit_test(test_vv_counts_past_limits_are_too_large),
      cmocka_unit_test(test_vv_truncated_trailing_and_type),
      cmocka_unit_test(test_vv_zero_digests_not_on_wire),
      cmocka_unit_test(test_vv_delta_short_ids_round_trip),
      cmocka_unit_test(test_vv_short_ids_and_seq_zero_only_in_deltas),
      cmocka_unit_test(test_vv_short_ids_ordered_by_first_bytes),
      cmocka_unit_test(test_vv_varints_one_form),
      cmocka_unit_test(test_vv_opt_and_flag_bits_checked),
      cmocka_unit_test(test_vv_single_byte_mutations_one_form),
      cmocka_unit_test(test_messages_single_byte_mutations_are_safe),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
