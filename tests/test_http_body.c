/* tests/test_http_body.c: pins src/http_body.h, the batch body in both
 * formats, on bytes (no server, no libcurl). */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "http_body.h"
#include "internal.h"

typedef struct one_op {
  vs_op op;
  uint8_t encoded[512];
  vs_send_op send;
} one_op;

static void make_op(one_op *o, uint64_t seq, const char *target, size_t target_bytes, const char *value,
                    size_t value_bytes) {
  memset(o, 0, sizeof *o);
  vt_origin(o->op.origin, 0x11);
  o->op.seq = seq;
  o->op.hlc = 1000 + seq;
  o->op.kind_bytes = 3;
  memcpy(o->op.kind, "put", 4);
  o->op.target = (const uint8_t *)target;
  o->op.target_bytes = (uint32_t)target_bytes;
  o->op.payload = (const uint8_t *)value;
  o->op.payload_bytes = (uint32_t)value_bytes;
  size_t n = 0;
  assert_err(vs_op_encode(&o->op, o->encoded, sizeof o->encoded, &n), VS_OK);
  memset(o->send.op_id.bytes, (int)seq, VS_OP_ID_BYTES); /* any ascending ids */
  o->send.attempt = 1;
  o->send.encoded = o->encoded;
  o->send.encoded_bytes = (uint32_t)n;
}

static char *json_body(one_op *ops, uint32_t n, vs_http_buf *out) {
  const vs_send_op *order[4];
  vs_op_id ids[4];
  assert_true(n <= 4);
  for (uint32_t i = 0; i < n; i++) {
    order[i] = &ops[i].send;
    ids[i] = ops[i].send.op_id;
  }
  char key[VS_HTTP_IDEM_KEY_BYTES];
  vs_http_idempotency_key(ids, n, key);
  vs_http_body_build(VS_HTTP_FORMAT_JSON, order, n, key, out);
  vs_http_buf_put(out, "", 1); /* NUL: read it as a string */
  assert_false(out->oom);
  return (char *)out->p;
}

/* The body escapes as vix-node does (json_text.h): DEL too. */
static void test_http_body_json_escapes_del_and_controls(void **state) {
  (void)state;
  one_op o;
  make_op(&o, 1, "k\x7f", 2, "a\"b\\c\nd\x01", 8);
  vs_http_buf b = {0};
  const char *s = json_body(&o, 1, &b);
  assert_non_null(strstr(s, "\"target\":\"k\\u007f\""));
  assert_non_null(strstr(s, "\"value\":\"a\\\"b\\\\c\\nd\\u0001\""));
  assert_null(memchr(s, 0x7f, strlen(s)));
  vs_http_buf_free(&b);
}

static void test_http_body_json_layout_and_b64_for_bytes(void **state) {
  (void)state;
  one_op ops[2];
  make_op(&ops[0], 1, "user:1", 6, "Ada", 3);
  make_op(&ops[1], 2, "\xff\xfe", 2, "x", 1);
  vs_http_buf b = {0};
  const char *s = json_body(ops, 2, &b);
  assert_true(strncmp(s, "{\"version\":2,\"idempotency_key\":\"vx2-", 36) == 0);
  char hex[VS_OP_ID_HEX_BYTES];
  vs_op_id_to_hex(&ops[0].send.op_id, hex);
  char want[256];
  snprintf(want, sizeof want, "\"ops\":[{\"id\":\"%s\",\"origin\":\"", hex);
  assert_non_null(strstr(s, want));
  assert_non_null(strstr(s, "\"seq\":1,\"hlc\":1001,\"kind\":\"put\",\"target\":\"user:1\",\"value\":\"Ada\"}"));
  assert_non_null(strstr(s, "\"target_b64\":\"//4=\",\"value\":\"x\"}]}"));
  vs_http_buf_free(&b);
}

static void test_http_body_binary_layout(void **state) {
  (void)state;
  one_op ops[2];
  make_op(&ops[0], 1, "a", 1, "b", 1);
  make_op(&ops[1], 2, "c", 1, "d", 1);
  const vs_send_op *order[2] = {&ops[0].send, &ops[1].send};
  vs_http_buf b = {0};
  vs_http_body_build(VS_HTTP_FORMAT_BINARY, order, 2, "unused", &b);
  assert_false(b.oom);
  assert_int_equal(b.len, 8 + 2 * (VS_OP_ID_BYTES + 4) + ops[0].send.encoded_bytes + ops[1].send.encoded_bytes);
  assert_int_equal(b.p[0], VS_HTTP_BATCH_VERSION);
  assert_int_equal(b.p[1] | b.p[2] | b.p[3], 0);
  assert_int_equal(vs_get_u32le(b.p + 4), 2);
  const uint8_t *p = b.p + 8;
  assert_memory_equal(p, ops[0].send.op_id.bytes, VS_OP_ID_BYTES);
  assert_int_equal(vs_get_u32le(p + VS_OP_ID_BYTES), ops[0].send.encoded_bytes);
  assert_memory_equal(p + VS_OP_ID_BYTES + 4, ops[0].encoded, ops[0].send.encoded_bytes);
  vs_http_buf_free(&b);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_body_json_escapes_del_and_controls),
      cmocka_unit_test(test_http_body_json_layout_and_b64_for_bytes),
      cmocka_unit_test(test_http_body_binary_layout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
