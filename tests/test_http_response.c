/* tests/test_http_response.c: pins src/http_response.h, the mapping table
 * of http_transport.h from an ended request to per-op results, without a
 * server or libcurl (test_http_transport.c runs the same table end to end
 * against the reference receiver). */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http_response.h"
#include "internal.h"

#define OPS 3u

typedef struct mapped {
  vs_http_req_op ops[OPS];
  vs_result results[OPS];
  vs_http_buf reasons;
  vs_http_stats stats;
  vs_http_health health;
} mapped;

/* Map `reply` for three ops with ids 01.., 02.., 03.. (attempts 4, 5, 6). */
static void map(mapped *m, const vs_http_reply *reply) {
  memset(m, 0, sizeof *m);
  for (uint32_t i = 0; i < OPS; i++) {
    memset(m->ops[i].id.bytes, (int)(i + 1), VS_OP_ID_BYTES);
    m->ops[i].attempt = 4 + i;
  }
  assert_true(vs_http_map_batch(reply, m->ops, OPS, 7, m->results, &m->reasons, &m->stats, &m->health));
  for (uint32_t i = 0; i < OPS; i++) {
    assert_memory_equal(m->results[i].op_id.bytes, m->ops[i].id.bytes, VS_OP_ID_BYTES);
    assert_int_equal(m->results[i].attempt, 4 + i);
    assert_int_equal(m->results[i].peer, 7);
  }
}

static vs_http_reply answered(long status, const char *body) {
  vs_http_reply r;
  memset(&r, 0, sizeof r);
  r.end = VS_HTTP_END_ANSWERED;
  r.status = status;
  r.body = (const uint8_t *)body;
  r.body_bytes = body != NULL ? strlen(body) : 0;
  return r;
}

static void assert_all(const mapped *m, vs_result_kind kind, const char *reason) {
  for (uint32_t i = 0; i < OPS; i++) {
    assert_int_equal(m->results[i].kind, kind);
    if (reason == NULL) assert_null(m->results[i].reason);
    else assert_string_equal(m->results[i].reason, reason);
  }
}

static void test_http_response_2xx_is_done(void **state) {
  (void)state;
  mapped m;
  vs_http_reply r = answered(204, NULL);
  map(&m, &r);
  assert_all(&m, VS_RESULT_DONE, NULL);
  assert_int_equal(m.health, VS_HTTP_HEALTH_ONLINE);
  assert_int_equal(m.stats.responses_2xx, 1);
  assert_int_equal(m.stats.results_done, OPS);
  assert_int_equal(m.stats.per_op_lists, 0);
  vs_http_buf_free(&m.reasons);
  r = answered(200, "{\"ok\": true, \"results\": \"not a list\"}");
  map(&m, &r);
  assert_all(&m, VS_RESULT_DONE, NULL);
  vs_http_buf_free(&m.reasons);
}

static void test_http_response_per_op_list(void **state) {
  (void)state;
  char body[1024], id1[VS_OP_ID_HEX_BYTES], id2[VS_OP_ID_HEX_BYTES];
  vs_op_id a, b;
  memset(a.bytes, 1, VS_OP_ID_BYTES);
  memset(b.bytes, 2, VS_OP_ID_BYTES);
  vs_op_id_to_hex(&a, id1);
  vs_op_id_to_hex(&b, id2);
  snprintf(body, sizeof body,
           "{\"n\": [1, {\"x\": \"]\"}], \"results\": [{\"id\": \"%s\", \"status\": \"done\"},"
           " {\"id\": \"%s\", \"status\": \"failed\", \"reason\": \"bad \\u00e9 amount\", \"extra\": [1]},"
           " {\"id\": \"%s\", \"status\": \"retry\"}, {\"id\": \"ffff\", \"status\": \"done\"}]}",
           id1, id2, id2);
  mapped m;
  vs_http_reply r = answered(200, body);
  map(&m, &r);
  assert_int_equal(m.results[0].kind, VS_RESULT_DONE);
  assert_null(m.results[0].reason);
  assert_int_equal(m.results[1].kind, VS_RESULT_FAILED); /* the first verdict counts */
  assert_string_equal(m.results[1].reason, "HTTP 200, rejected by the server: bad ? amount");
  assert_int_equal(m.results[2].kind, VS_RESULT_RETRY); /* left out: not confirmed */
  assert_string_equal(m.results[2].reason, "HTTP 200: not in the server's per-op results");
  assert_int_equal(m.stats.per_op_lists, 1);
  assert_int_equal(m.stats.results_done + m.stats.results_failed + m.stats.results_retry, OPS);
  vs_http_buf_free(&m.reasons);

  snprintf(body, sizeof body, "{\"results\": [{\"id\": \"%s\", \"status\": \"retry\", \"retry_after_ms\": 250}, {", id1);
  r = answered(207, body);
  map(&m, &r);
  assert_int_equal(m.results[0].kind, VS_RESULT_RETRY);
  assert_int_equal(m.results[0].retry_after_ms, 250);
  assert_string_equal(m.results[0].reason, "HTTP 207, retry: no reason given");
  assert_string_equal(m.results[1].reason, "HTTP 207: malformed per-op results");
  assert_int_equal(m.results[2].kind, VS_RESULT_RETRY);
  vs_http_buf_free(&m.reasons);
}

static void test_http_response_retry_statuses(void **state) {
  (void)state;
  static const long retry[] = {408, 425, 429, 500, 503, 599};
  for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++) {
    mapped m;
    vs_http_reply r = answered(retry[i], "down\r\nfor\tmaintenance\x01   ");
    r.retry_after_ms = 5000;
    map(&m, &r);
    char want[64];
    snprintf(want, sizeof want, "HTTP %ld: down  for maintenance?", retry[i]);
    assert_all(&m, VS_RESULT_RETRY, want);
    for (uint32_t k = 0; k < OPS; k++) assert_int_equal(m.results[k].retry_after_ms, 5000);
    assert_int_equal(m.stats.responses_retry, 1);
    vs_http_buf_free(&m.reasons);
  }
  mapped m;
  vs_http_reply r = answered(600, "odd");
  map(&m, &r);
  assert_all(&m, VS_RESULT_RETRY, "HTTP 600 (unexpected status): odd");
  vs_http_buf_free(&m.reasons);
}

static void test_http_response_4xx_3xx_failed(void **state) {
  (void)state;
  mapped m;
  vs_http_reply r = answered(422, "amount must be a number");
  r.retry_after_ms = 5000; /* ignored: FAILED waits for no one */
  map(&m, &r);
  assert_all(&m, VS_RESULT_FAILED, "HTTP 422: amount must be a number");
  for (uint32_t k = 0; k < OPS; k++) assert_int_equal(m.results[k].retry_after_ms, 0);
  assert_int_equal(m.stats.responses_failed, 1);
  assert_int_equal(m.stats.results_failed, OPS);
  vs_http_buf_free(&m.reasons);
  char long_body[400];
  memset(long_body, 'x', sizeof long_body - 1);
  long_body[sizeof long_body - 1] = '\0';
  r = answered(302, long_body);
  map(&m, &r);
  char want[VS_HTTP_REASON_BODY_BYTES + 64];
  snprintf(want, sizeof want, "HTTP 302 (redirects are not followed): %.*s", (int)VS_HTTP_REASON_BODY_BYTES, long_body);
  assert_all(&m, VS_RESULT_FAILED, want);
  vs_http_buf_free(&m.reasons);
}

static void test_http_response_libcurl_failures(void **state) {
  (void)state;
  vs_http_reply r;
  memset(&r, 0, sizeof r);
  mapped m;
  r.end = VS_HTTP_END_CONNECTION;
  r.error = "Failed to connect";
  r.error_code = 7;
  map(&m, &r);
  assert_all(&m, VS_RESULT_RETRY, "connection: Failed to connect (curl 7)");
  assert_int_equal(m.health, VS_HTTP_HEALTH_OFFLINE);
  assert_int_equal(m.stats.transport_errors, 1);
  vs_http_buf_free(&m.reasons);
  r.end = VS_HTTP_END_TLS;
  r.error = "SSL certificate problem";
  r.error_code = 60;
  map(&m, &r);
  assert_all(&m, VS_RESULT_FAILED, "TLS: SSL certificate problem (curl 60)");
  assert_int_equal(m.health, VS_HTTP_HEALTH_SAME);
  assert_int_equal(m.stats.tls_failures, 1);
  assert_int_equal(m.stats.transport_errors, 0);
  vs_http_buf_free(&m.reasons);
  r.end = VS_HTTP_END_REQUEST;
  r.error = "URL using bad/illegal format";
  r.error_code = 3;
  map(&m, &r);
  assert_all(&m, VS_RESULT_FAILED, "request: URL using bad/illegal format (curl 3)");
  assert_int_equal(m.health, VS_HTTP_HEALTH_SAME);
  vs_http_buf_free(&m.reasons);
}

static int64_t fake_date(const char *text) { return strcmp(text, "Wed, 21 Oct 2015 07:28:00 GMT") == 0 ? 1445412480 : -1; }

static void test_http_response_retry_after(void **state) {
  (void)state;
  uint64_t now_ms = 1445412480000u - 30000u;
  assert_int_equal(vs_http_retry_after_ms(NULL, now_ms, fake_date), 0);
  assert_int_equal(vs_http_retry_after_ms("5", now_ms, fake_date), 5000);
  assert_int_equal(vs_http_retry_after_ms(" \t7", now_ms, fake_date), 7000);
  assert_int_equal(vs_http_retry_after_ms("99999999999999999999999", now_ms, fake_date), VS_RETRY_DELAY_MS_LIMIT);
  assert_int_equal(vs_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now_ms, fake_date), 30000);
  assert_int_equal(vs_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now_ms + 60000, fake_date), 0);
  assert_int_equal(vs_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 0, fake_date), VS_RETRY_DELAY_MS_LIMIT);
  assert_int_equal(vs_http_retry_after_ms("soon", now_ms, fake_date), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_response_2xx_is_done),
      cmocka_unit_test(test_http_response_per_op_list),
      cmocka_unit_test(test_http_response_retry_statuses),
      cmocka_unit_test(test_http_response_4xx_3xx_failed),
      cmocka_unit_test(test_http_response_libcurl_failures),
      cmocka_unit_test(test_http_response_retry_after),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
