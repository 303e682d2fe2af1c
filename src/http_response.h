/* http_response.h: how an ended HTTP request becomes per-op results.
 *
 * Pure: no libcurl, no clock, no socket. The transport (http_transport.c)
 * describes how a request ended (a vs_http_reply: the status and the body
 * kept, or the class of the libcurl failure) and this module applies the
 * mapping table of http_transport.h, so every row of it is unit-tested
 * without a server (tests/test_http_response.c). Part of libvixsync-http. */
#ifndef VS_HTTP_RESPONSE_H
#define VS_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stdint.h>

#include "http_body.h"
#include "vixsync/http_transport.h"

/* How a request ended. */
typedef enum vs_http_end {
  VS_HTTP_END_ANSWERED = 0, /* an HTTP status arrived (any status) */
  VS_HTTP_END_TLS = 1,      /* a certificate problem: FAILED, retrying cannot help */
  VS_HTTP_END_REQUEST = 2,  /* libcurl cannot make this request at all (bad URL, protocol): FAILED */
  VS_HTTP_END_CONNECTION = 3, /* refused, unreachable, unresolvable, reset, timeout: RETRY */
} vs_http_end;

typedef struct vs_http_reply {
  vs_http_end end;
  long status;              /* VS_HTTP_END_ANSWERED: the HTTP status */
  const uint8_t *body;      /* the response bytes kept (may be NULL with 0 bytes) */
  size_t body_bytes;
  uint64_t retry_after_ms;  /* from Retry-After (vs_http_retry_after_ms); 0 if none */
  const char *error;        /* otherwise: libcurl's message (quoted in the reason) */
  int error_code;           /* and its CURLcode */
} vs_http_reply;

/* An op of a batch: its id and the attempt the results echo. */
typedef struct vs_http_req_op {
  vs_op_id id; /* first: the sort key */
  uint32_t attempt;
} vs_http_req_op;

/* What the reply says about the endpoint's health (the probe's verdict). */
typedef enum vs_http_health {
  VS_HTTP_HEALTH_SAME = 0,    /* no news (TLS and request failures) */
  VS_HTTP_HEALTH_ONLINE = 1,  /* it answered */
  VS_HTTP_HEALTH_OFFLINE = 2, /* the connection failed */
} vs_http_health;

/* Parses an HTTP date to seconds since the epoch, -1 when it is not one
 * (the transport passes libcurl's curl_getdate, which reads no clock). */
typedef int64_t vs_http_date_fn(const char *text);

/* A Retry-After header value in ms: delta seconds, or an HTTP date against
 * now_ms (a past date is 0); capped at VS_RETRY_DELAY_MS_LIMIT; 0 when it
 * is neither. `value` may be NULL (no header). */
uint64_t vs_http_retry_after_ms(const char *value, uint64_t now_ms, vs_http_date_fn *parse_date);

/* Map `reply` to one result per op of the batch (`ops`, `op_count` >= 1, in
 * ascending id order), naming `peer`. Reasons go to `reasons` (appended to)
 * and results_out[i].reason points into it, so `reasons` must not change
 * while the results are read. Adds to the counters in `stats` and says what
 * the reply tells of the endpoint's health.
 * @return false without memory (the results are then unusable: the entries'
 * lease brings them back). */
bool vs_http_map_batch(const vs_http_reply *reply, const vs_http_req_op *ops, uint32_t op_count, uint32_t peer,
                       vs_result *results_out, vs_http_buf *reasons, vs_http_stats *stats,
                       vs_http_health *health_out);

#endif
