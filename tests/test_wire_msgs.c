/* Pins include/vixsync/wire.h: the VV, OPS, WANT and FORK messages (the
 * handshake is in test_wire.c). Hostile input is always fed as an
 * exact-size heap copy, so ASan catches any read past its end. */

#include "wire_fixture.h"

/* The codec bounds a run by its own constant (wire.h, so that wire needs no
 * header of apply); apply takes no other run than the wire carries. */
_Static_assert(VS_WIRE_RUN_OPS_MAX == VS_APPLY_RUN_OPS_MAX, "one limit on a run's ops, on the wire and in apply");

static void test_vv_round_trip(void **state) {
  (void)state;
  vs_vv_entry e[5], d[5];
  vv_entries(e, 5);
  e[4].seq = VS_OP_SEQ_MAX;
  uint8_t buf[VVH + 5 * VVE];
  size_t n = 0;
  uint32_t count = 0;
  vs_vv_part part = {0x0102030405060708ull, 2, 3, 0x1122334455667788ull, 0x99aabbccddeeff00ull,
                     0x2000000000000001ull, 0x1000000000000002ull, 0x3000000000000003ull, 0x4000000000000004ull,
                     VS_VV_WANT, 7, 0x5000000000000005ull, 0x6000000000000006ull}, got;
  assert_err(vs_msg_vv_encode(&part, e, 5, buf, sizeof buf, &n), VS_OK);
  assert_int_equal(n, VVH + 5 * VVE);
  assert_int_equal(buf[0], VS_MSG_VV);
  assert_int_equal(vt_get_u64le(buf + 1), part.vector);
  assert_int_equal(vt_get_u32le(buf + 9), 2);
  assert_int_equal(vt_get_u32le(buf + 13), 3);
  assert_int_equal(vt_get_u64le(buf + 17), part.forks);
  assert_int_equal(vt_get_u64le(buf + 25), part.acks);
  assert_int_equal(vt_get_u64le(buf + 33), part.gen);
  assert_int_equal(vt_get_u64le(buf + 41), part.base);
  assert_int_equal(vt_get_u64le(buf + 49), part.held);
  assert_int_equal(vt_get_u64le(buf + 57), part.sum);
  assert_int_equal(buf[65], part.flags);
  assert_int_equal(buf[66], part.dist);
  assert_int_equal(vt_get_u64le(buf + 67), part.root);
  assert_int_equal(vt_get_u64le(buf + 75), part.parent);
  assert_int_equal(vt_get_u32le(buf + 83), 5);
  assert_memory_equal(buf + VVH, e[0].origin, 32);
  uint8_t *copy = vt_dup_exact(buf, n);
  assert_err(vs_msg_vv_decode(copy, n, &got, d, 5, &count), VS_OK);
  free(copy);
  assert_int_equal(count, 5);
  assert_int_equal(got.vector, part.vector);
  assert_int_equal(got.part, 2);
  assert_int_equal(got.parts, 3);
  assert_int_equal(got.forks, part.forks);
  assert_int_equal(got.acks, part.acks);
  assert_int_equal(got.gen, part.gen);
  assert_int_equal(got.base, part.base);
  assert_int_equal(got.held, part.held);
  assert_int_equal(got.sum, part.sum);
  assert_int_equal(got.flags, part.flags);
  assert_int_equal(got.dist, part.dist);
  assert_int_equal(got.root, part.root);
  assert_int_equal(got.parent, part.parent);
  for (int k = 0; k < 5; k++) {
    assert_memory_equal(d[k].origin, e[k].origin, 32);
    assert_int_equal(d[k].seq, e[k].seq);
    assert_memory_equal(d[k].head, e[k].head, VS_VV_HEAD_BYTES);
  }
  /* The empty vector (a new node): one empty part. */
  assert_err(vs_msg_vv_encode(&ONE_PART, NULL, 0, buf, sizeof buf, &n), VS_OK);
  assert_int_equal(n, VVH);
  assert_err(vv_decode_exact(buf, n, NULL, 0, &count), VS_OK);
  assert_int_equal(count, 0);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 5, buf, VVH + 4 * VVE + (VVE - 1), &n), VS_ERR_BUFSIZE);
}

/* The part header: vector >= 1, part < parts <= VS_WIRE_VV_PARTS_MAX, and an
 * empty part only in a vector of one part; both sides refuse the rest. */
static void test_vv_part_header_checked(void **state) {
  (void)state;
  vs_vv_entry e[2];
  vv_entries(e, 2);
  uint8_t buf[VVH + 2 * VVE];
  size_t n = 0;
  uint32_t count = 0;
  /* The last two: a delta from a generation past its own, an unknown flag (wire v6). */
  static const vs_vv_part bad[] = {
      {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
      {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, VS_WIRE_VV_PARTS_MAX + 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
      {1, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 1, 0, 0, 4, 5, 0, 0, 0, 0, 0, 0},
      {1, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    assert_err(vs_msg_vv_encode(&bad[k], e, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
    assert_err(vs_msg_vv_encode(&ONE_PART, e, 2, buf, sizeof buf, &n), VS_OK);
    vt_put_u64le(buf + 1, bad[k].vector);
    vt_put_u32le(buf + 9, bad[k].part);
    vt_put_u32le(buf + 13, bad[k].parts);
    vt_put_u64le(buf + 33, bad[k].gen);
    vt_put_u64le(buf + 41, bad[k].base);
    buf[65] = bad[k].flags;
    assert_err(vv_decode_exact(buf, n, e, 2, &count), VS_ERR_MALFORMED);
  }
  vs_vv_part last = {7, VS_WIRE_VV_PARTS_MAX - 1, VS_WIRE_VV_PARTS_MAX, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&last, e, 2, buf, sizeof buf, &n), VS_OK);
  assert_err(vv_decode_exact(buf, n, e, 2, &count), VS_OK);
  vs_vv_part empty_of_two = {1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_err(vs_msg_vv_encode(&empty_of_two, NULL, 0, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_vv_encode(&ONE_PART, NULL, 0, buf, sizeof buf, &n), VS_OK);
  vt_put_u32le(buf + 13, 2);
  assert_err(vv_decode_exact(buf, n, NULL, 0, &count), VS_ERR_MALFORMED);
  assert_err(vs_msg_vv_encode(NULL, e, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
}

static void test_vv_unsorted_duplicate_or_bad_seq_rejected(void **state) {
  (void)state;
  vs_vv_entry e[3], d[3];
  uint8_t buf[VVH + 3 * VVE];
  size_t n = 0;
  uint32_t count = 0;
  vv_entries(e, 3);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 3, buf, sizeof buf, &n), VS_OK);
  /* Decode side: forge the bytes. */
  uint8_t bad[sizeof buf];
  memcpy(bad, buf, n);
  memcpy(bad + VVH + VVE, buf + VVH + (2 * VVE), VVE); /* entries 0, 2, 2: duplicate */
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  memcpy(bad, buf, n);
  memcpy(bad + VVH, buf + VVH + VVE, VVE); /* 1, 1, 2 */
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  memcpy(bad, buf, n);
  memcpy(bad + VVH, buf + VVH + (2 * VVE), VVE);
  memcpy(bad + VVH + (2 * VVE), buf + VVH, VVE); /* 2, 1, 0 */
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  memcpy(bad, buf, n);
  vt_put_u64le(bad + VVH + VVE + 32, 0);
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  vt_put_u64le(bad + VVH + VVE + 32, VS_OP_SEQ_MAX + 1);
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  /* Encode side: the same mistakes are the caller's. */
  vs_vv_entry u[3] = {e[0], e[2], e[1]};
  assert_err(vs_msg_vv_encode(&ONE_PART, u, 3, buf, sizeof buf, &n), VS_ERR_INVAL);
  vs_vv_entry dup[2] = {e[1], e[1]};
  assert_err(vs_msg_vv_encode(&ONE_PART, dup, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
  vs_vv_entry z = e[0];
  z.seq = 0;
  assert_err(vs_msg_vv_encode(&ONE_PART, &z, 1, buf, sizeof buf, &n), VS_ERR_INVAL);
  /* In a delta (wire v6), seq 0 says the origin went: both sides take it. */
  assert_err(vs_msg_vv_encode(&ONE_DELTA, &z, 1, buf, sizeof buf, &n), VS_OK);
  vs_vv_part got;
  uint8_t *copy = vt_dup_exact(buf, n);
  assert_err(vs_msg_vv_decode(copy, n, &got, d, 3, &count), VS_OK);
  free(copy);
  assert_int_equal(count, 1);
  assert_int_equal(d[0].seq, 0);
  assert_int_equal(got.base, 8);
  vt_put_u64le(buf + 41, 0); /* the same entry in a whole vector */
  assert_err(vv_decode_exact(buf, n, d, 3, &count), VS_ERR_MALFORMED);
}

static void test_vv_counts_past_limits_are_too_large(void **state) {
  (void)state;
  uint32_t count = 0;
  vs_vv_entry d[4];
  uint8_t hdr[VVH] = {VS_MSG_VV};
  vt_put_u64le(hdr + 1, 1);
  vt_put_u32le(hdr + 13, 1);
  vt_put_u32le(hdr + VVH - 4, VS_WIRE_VV_MAX + 1);
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TOO_LARGE);
  vt_put_u32le(hdr + VVH - 4, UINT32_MAX);
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TOO_LARGE);
  vt_put_u32le(hdr + VVH - 4, 5); /* past the caller's room */
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TOO_LARGE);
  vt_put_u32le(hdr + VVH - 4, 4);
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TRUNCATED);

  /* The largest part round-trips; one more entry cannot be encoded (it goes
   * in the next part). */
  vs_vv_entry *e = malloc((VS_WIRE_VV_MAX + 1) * sizeof *e), *out = malloc(VS_WIRE_VV_MAX * sizeof *out);
  size_t cap = VVH + (VS_WIRE_VV_MAX + 1) * (size_t)VVE, n = 0;
  uint8_t *buf = malloc(cap);
  assert_non_null(e);
  assert_non_null(out);
  assert_non_null(buf);
  vv_entries(e, VS_WIRE_VV_MAX + 1);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, VS_WIRE_VV_MAX + 1, buf, cap, &n), VS_ERR_INVAL);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, VS_WIRE_VV_MAX, buf, cap, &n), VS_OK);
  assert_err(vv_decode_exact(buf, n, out, VS_WIRE_VV_MAX, &count), VS_OK);
  assert_int_equal(count, VS_WIRE_VV_MAX);
  assert_int_equal(out[VS_WIRE_VV_MAX - 1].seq, e[VS_WIRE_VV_MAX - 1].seq);
  free(e);
  free(out);
  free(buf);
}

static void test_vv_truncated_trailing_and_type(void **state) {
  (void)state;
  vs_vv_entry e[3], d[3];
  vv_entries(e, 3);
  uint8_t buf[VVH + 3 * VVE + 1];
  size_t n = 0;
  uint32_t count = 0;
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 3, buf, sizeof buf, &n), VS_OK);
  for (size_t k = 0; k < n; k++) assert_err(vv_decode_exact(buf, k, d, 3, &count), VS_ERR_TRUNCATED);
  buf[n] = 0;
  assert_err(vv_decode_exact(buf, n + 1, d, 3, &count), VS_ERR_TRAILING);
  static const uint8_t types[] = {0, VS_MSG_OPS, 3, 0xff};
  for (size_t t = 0; t < sizeof types; t++) {
    buf[0] = types[t];
    assert_err(vv_decode_exact(buf, n, d, 3, &count), VS_ERR_MALFORMED);
  }
}

static void test_ops_round_trip_several_runs(void **state) {
  (void)state;
  chain a, b, a2;
  make_chain(&a, ID_A.pk, 1, 5, 1);
  make_chain(&b, ID_B.pk, 40, 1, 2);
  make_chain(&a2, ID_A.pk, 6, 3, 3); /* a second run of the same origin */
  chain *runs[3] = {&a, &b, &a2};
  uint8_t buf[4096];
  size_t n = 0;
  write_runs(runs, 3, buf, sizeof buf, &n);
  assert_int_equal(buf[0], VS_MSG_OPS);
  assert_int_equal(buf[1], 3);
  seen s = {.expect = {&a, &b, &a2}};
  assert_err(ops_decode_exact(buf, n, &s), VS_OK);
  assert_int_equal(s.calls, 3);

  /* The writer's bytes are exactly the layout of wire.h. */
  raw r;
  raw_head(&r, 3);
  for (int k = 0; k < 3; k++) {
    raw_run(&r, runs[k]->origin, runs[k]->sig, runs[k]->count);
    for (uint32_t i = 0; i < runs[k]->count; i++) raw_op(&r, runs[k]->enc[i], runs[k]->enc_bytes[i]);
  }
  assert_int_equal(r.n, n);
  assert_memory_equal(r.b, buf, n);
}

static void test_ops_run_with_foreign_origin_or_gap_is_malformed(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 4, 4);
  make_chain(&b, ID_B.pk, 3, 1, 5);
  seen s = {.expect = {&a}};
  raw r;
  /* Op 3 of A's run is B's op. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 3);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, b.enc[0], b.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* A gap: seqs 1, 2, 4. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 3);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[3], a.enc_bytes[3]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* Backwards and repeated seqs. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* A run header naming B over A's ops. */
  raw_head(&r, 1);
  raw_run(&r, b.origin, a.sig, 1);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  assert_int_equal(s.calls, 0);
  /* A valid first run does not get its callback when a later one is bad. */
  raw_head(&r, 2);
  raw_run(&r, a.origin, a.sig, 1);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[3], a.enc_bytes[3]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  assert_int_equal(s.calls, 0);
}

static void test_ops_zero_runs_or_zero_ops_is_malformed(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 1, 6);
  seen s = {.expect = {&a}};
  raw r;
  raw_head(&r, 0);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 0);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  raw_head(&r, 2);
  raw_run(&r, a.origin, a.sig, 1);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_run(&r, a.origin, a.sig, 0);
  uint8_t pad[96] = {0};
  raw_put(&r, pad, sizeof pad); /* so the run count alone does not look truncated */
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  assert_int_equal(s.calls, 0);
}

static void test_ops_counts_that_cannot_fit_are_refused_early(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 2, 7);
  seen s = {.expect = {&a}};
  raw r;
  /* Run counts: past the limit, or more than the bytes could hold. */
  raw_head(&r, VS_WIRE_RUNS_MAX + 1);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  raw_head(&r, UINT32_MAX);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  raw_head(&r, 2);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  /* Op counts: past VS_APPLY_RUN_OPS_MAX; within it but far past what the
   * message holds (refused before any array is sized by it). */
  static const uint32_t counts[] = {VS_APPLY_RUN_OPS_MAX + 1, UINT32_MAX};
  for (size_t k = 0; k < 2; k++) {
    raw_head(&r, 1);
    raw_run(&r, a.origin, a.sig, counts[k]);
    raw_op(&r, a.enc[0], a.enc_bytes[0]);
    assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  }
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, VS_APPLY_RUN_OPS_MAX);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 3);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  /* An op length past the op limit, and a length past the input. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 1);
  raw_u32(&r, VS_OP_ENCODED_BYTES_MAX + 1);
  raw_put(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 1);
  raw_u32(&r, a.enc_bytes[0] + 1);
  raw_put(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  /* A message past one DATA frame's plaintext. */
  uint8_t *big = calloc(1, VS_MSG_BYTES_MAX + 1);
  assert_non_null(big);
  big[0] = VS_MSG_OPS;
  big[1] = 1;
  assert_err(ops_decode_exact(big, VS_MSG_BYTES_MAX + 1, &s), VS_ERR_TOO_LARGE);
  free(big);
  assert_int_equal(s.calls, 0);
}

static void test_ops_bad_op_inside_is_rejected(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 2, 8);
  seen s = {.expect = {&a}};
  raw r;
  uint8_t op[ENC_MAX];
  memcpy(op, a.enc[1], a.enc_bytes[1]);
  op[0] = 2; /* a future op version */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, op, a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_VERSION);
  memcpy(op, a.enc[1], a.enc_bytes[1]);
  op[83] = ' '; /* a kind byte outside 0x21..0x7e */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, op, a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* An op whose own length fields disagree with its slot. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1] - 1);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  assert_int_equal(s.calls, 0);
}

static void test_ops_every_truncation_rejected(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 2, 9);
  make_chain(&b, ID_B.pk, 1, 1, 10);
  chain *runs[2] = {&a, &b};
  uint8_t buf[2048];
  size_t n = 0;
  write_runs(runs, 2, buf, sizeof buf - 1, &n);
  seen s = {.expect = {&a, &b}};
  for (size_t k = 0; k < n; k++) {
    assert_err(ops_decode_exact(buf, k, &s), VS_ERR_TRUNCATED);
    assert_int_equal(s.calls, 0);
  }
  buf[n] = 0;
  assert_err(ops_decode_exact(buf, n + 1, &s), VS_ERR_TRAILING);
  assert_int_equal(s.calls, 0);
  assert_err(ops_decode_exact(buf, n, &s), VS_OK);
  assert_int_equal(s.calls, 2);
}

static void test_ops_unknown_message_type_is_malformed(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 1, 11);
  chain *runs[1] = {&a};
  uint8_t buf[512];
  size_t n = 0;
  write_runs(runs, 1, buf, sizeof buf, &n);
  seen s = {.expect = {&a}};
  static const uint8_t types[] = {0, VS_MSG_VV, 3, 0x7f, 0xff};
  for (size_t t = 0; t < sizeof types; t++) {
    buf[0] = types[t];
    assert_err(ops_decode_exact(buf, n, &s), VS_ERR_MALFORMED);
    assert_err(ops_decode_exact(buf, 1, &s), VS_ERR_MALFORMED);
  }
  assert_err(ops_decode_exact(buf, 0, &s), VS_ERR_TRUNCATED);
  assert_err(vs_msg_ops_decode(buf, n, NULL, NULL), VS_ERR_INVAL);
}

static void test_ops_callback_error_stops_the_walk(void **state) {
  (void)state;
  chain a, b, c;
  make_chain(&a, ID_A.pk, 1, 1, 12);
  make_chain(&b, ID_B.pk, 1, 2, 13);
  make_chain(&c, ID_C.pk, 1, 3, 14);
  chain *runs[3] = {&a, &b, &c};
  uint8_t buf[2048];
  size_t n = 0;
  write_runs(runs, 3, buf, sizeof buf, &n);
  seen s = {.expect = {&a, &b, &c}, .fail_on_call = 2};
  assert_err(ops_decode_exact(buf, n, &s), VS_ERR_CHAIN);
  assert_int_equal(s.calls, 2);
}

static void test_ops_writer_bufsize_leaves_message_valid(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 3, 15);
  make_chain(&b, ID_B.pk, 1, 4, 16);
  size_t a_bytes = 100, n = 0;
  for (uint32_t k = 0; k < a.count; k++) a_bytes += 4 + a.enc_bytes[k];
  uint8_t buf[1024];
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, 4), VS_ERR_BUFSIZE);
  assert_err(vs_ops_writer_init(&w, buf, 5 + a_bytes + 50), VS_OK);
  assert_err(vs_ops_writer_finish(&w, &n), VS_ERR_INVAL); /* no run yet */
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, a.count), VS_OK);
  assert_int_equal(w.used, 5 + a_bytes);
  uint8_t snapshot[1024];
  memcpy(snapshot, buf, w.used);
  assert_err(vs_ops_writer_add_run(&w, b.origin, b.sig, b.ptr, b.enc_bytes, b.count), VS_ERR_BUFSIZE);
  assert_int_equal(w.used, 5 + a_bytes);
  assert_memory_equal(snapshot, buf, w.used);
  assert_err(vs_ops_writer_finish(&w, &n), VS_OK);
  assert_int_equal(n, 5 + a_bytes);
  seen s = {.expect = {&a}};
  assert_err(ops_decode_exact(buf, n, &s), VS_OK);
  assert_int_equal(s.calls, 1);
  /* A run that exactly fits. */
  assert_err(vs_ops_writer_init(&w, buf, 5 + a_bytes), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, a.count), VS_OK);
  assert_err(vs_ops_writer_finish(&w, &n), VS_OK);
  assert_int_equal(n, 5 + a_bytes);
}

static void test_ops_writer_rejects_bad_runs(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 4, 17);
  make_chain(&b, ID_B.pk, 1, 1, 18);
  uint8_t buf[2048];
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, sizeof buf), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 0), VS_ERR_INVAL);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, VS_APPLY_RUN_OPS_MAX + 1), VS_ERR_INVAL);
  assert_err(vs_ops_writer_add_run(&w, b.origin, a.sig, a.ptr, a.enc_bytes, a.count), VS_ERR_INVAL);
  const uint8_t *gap[2] = {a.ptr[0], a.ptr[2]};
  uint32_t gap_bytes[2] = {a.enc_bytes[0], a.enc_bytes[2]};
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, gap, gap_bytes, 2), VS_ERR_INVAL);
  const uint8_t *mixed[2] = {a.ptr[0], b.ptr[0]};
  uint32_t mixed_bytes[2] = {a.enc_bytes[0], b.enc_bytes[0]};
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, mixed, mixed_bytes, 2), VS_ERR_INVAL);
  uint32_t short_bytes[1] = {10};
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, short_bytes, 1), VS_ERR_INVAL);
  assert_err(vs_ops_writer_add_run(&w, a.origin, NULL, a.ptr, a.enc_bytes, 1), VS_ERR_INVAL);
  assert_int_equal(w.used, 5);
  assert_int_equal(w.runs, 0);
}

static void test_ops_writer_limits_runs(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 1, 19);
  size_t cap = 5 + (size_t)(VS_WIRE_RUNS_MAX + 1) * (100 + 4 + a.enc_bytes[0]), n = 0;
  assert_true(cap <= VS_MSG_BYTES_MAX);
  uint8_t *buf = malloc(cap);
  assert_non_null(buf);
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, cap), VS_OK);
  for (uint32_t r = 0; r < VS_WIRE_RUNS_MAX; r++)
    assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 1), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 1), VS_ERR_LIMIT);
  assert_err(vs_ops_writer_finish(&w, &n), VS_OK);
  /* The decoder takes what the writer made at its limit. */
  seen s = {0};
  for (int k = 0; k < 8; k++) s.expect[k] = &a;
  s.fail_on_call = 8; /* stop early: the point is that validation passed */
  assert_err(ops_decode_exact(buf, n, &s), VS_ERR_CHAIN);
  assert_int_equal(s.calls, 8);
  /* And the writer never grows a message past one DATA frame. */
  uint8_t *huge = malloc(VS_MSG_BYTES_MAX + 4096);
  assert_non_null(huge);
  assert_err(vs_ops_writer_init(&w, huge, VS_MSG_BYTES_MAX + 4096), VS_OK);
  w.used = VS_MSG_BYTES_MAX - 50; /* as if earlier runs filled it */
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 1), VS_ERR_BUFSIZE);
  free(huge);
  free(buf);
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
      cmocka_unit_test(test_ops_round_trip_several_runs),
      cmocka_unit_test(test_ops_run_with_foreign_origin_or_gap_is_malformed),
      cmocka_unit_test(test_ops_zero_runs_or_zero_ops_is_malformed),
      cmocka_unit_test(test_ops_counts_that_cannot_fit_are_refused_early),
      cmocka_unit_test(test_ops_bad_op_inside_is_rejected),
      cmocka_unit_test(test_ops_every_truncation_rejected),
      cmocka_unit_test(test_ops_unknown_message_type_is_malformed),
      cmocka_unit_test(test_ops_callback_error_stops_the_walk),
      cmocka_unit_test(test_ops_writer_bufsize_leaves_message_valid),
      cmocka_unit_test(test_ops_writer_rejects_bad_runs),
      cmocka_unit_test(test_ops_writer_limits_runs),
      cmocka_unit_test(test_messages_single_byte_mutations_are_safe),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
