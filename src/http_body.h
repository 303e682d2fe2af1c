/* http_body.h: what the HTTP transport sends, built without libcurl.
 *
 * A growable byte buffer (the body, the response kept, the reasons), the
 * batch body in either format and, in http_transport.h, the
 * Idempotency-Key. Pure functions of their inputs: unit-tested on bytes
 * (tests/test_http_body.c). Part of libvixsync-http, not of libvixsync. */
#ifndef VS_HTTP_BODY_H
#define VS_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/http_transport.h"

/* A growable byte buffer. A failed allocation sticks: append freely, check
 * `oom` once at the end. Zero-initialise; free with vs_http_buf_free. */
typedef struct vs_http_buf {
  uint8_t *p;
  size_t len, cap;
  bool oom;
} vs_http_buf;

/* Room for `extra` more bytes; false (and oom set) without memory. */
bool vs_http_buf_reserve(vs_http_buf *g, size_t extra);
void vs_http_buf_put(vs_http_buf *g, const void *bytes, size_t n);
void vs_http_buf_str(vs_http_buf *g, const char *s);
void vs_http_buf_free(vs_http_buf *g);

/* Append the body of a batch of `n` (>= 1) ops, `order` in ascending id
 * order, in `format` (the layouts are in http_transport.h). `key` is the
 * batch's Idempotency-Key (vs_http_idempotency_key), named in the JSON body.
 * Check out->oom after. */
void vs_http_body_build(vs_http_format format, const vs_send_op *const *order, uint32_t n, const char *key,
                        vs_http_buf *out);

#endif
