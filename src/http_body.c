#define _POSIX_C_SOURCE 200809L /* snprintf */
/* The batch body (JSON or binary) and its Idempotency-Key: pure functions
 * of the batch's operations (http_body.h). */
#include "http_body.h"

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "json_text.h"

static const char IDEM_DOMAIN[] = "vixsync/http-idempotency/v2";

/* ---- the buffer ---- */

bool vs_http_buf_reserve(vs_http_buf *g, size_t extra) {
  if (g->oom) return false;
  if (extra <= g->cap - g->len) return true;
  size_t cap = g->cap == 0 ? 4096 : g->cap;
  while (cap - g->len < extra) { /* bounded: cap doubles, at most once per bit of size_t */
    if (cap > SIZE_MAX / 2) {
      g->oom = true;
      return false;
    }
    cap *= 2;
  }
  uint8_t *p = realloc(g->p, cap);
  if (p == NULL) {
    g->oom = true;
    return false;
  }
  g->p = p;
  g->cap = cap;
  assert(g->cap - g->len >= extra);
  return true;
}

void vs_http_buf_put(vs_http_buf *g, const void *bytes, size_t n) {
  if (n > 0 && vs_http_buf_reserve(g, n)) {
    memcpy(g->p + g->len, bytes, n);
    g->len += n;
  }
}

void vs_http_buf_str(vs_http_buf *g, const char *s) { vs_http_buf_put(g, s, strlen(s)); }

void vs_http_buf_free(vs_http_buf *g) {
  free(g->p);
  memset(g, 0, sizeof *g);
}

static void buf_u64(vs_http_buf *g, uint64_t v) {
  char text[24];
  int n = snprintf(text, sizeof text, "%llu", (unsigned long long)v);
  assert(n > 0 && (size_t)n < sizeof text);
  vs_http_buf_put(g, text, (size_t)n);
}

static void buf_hex(vs_http_buf *g, const uint8_t *bin, size_t n) {
  if (!vs_http_buf_reserve(g, 2 * n + 1)) return;
  sodium_bin2hex((char *)g->p + g->len, 2 * n + 1, bin, n);
  g->len += 2 * n;
}

static void buf_b64(vs_http_buf *g, const uint8_t *bin, size_t n) {
  size_t enc = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  if (!vs_http_buf_reserve(g, enc)) return;
  sodium_bin2base64((char *)g->p + g->len, enc, bin, n, sodium_base64_VARIANT_ORIGINAL);
  g->len += enc - 1; /* without the NUL */
}

/* ---- JSON text (the escaping rule is json_text.h's, shared with vix-node) ---- */

static void buf_json_string(vs_http_buf *g, const uint8_t *s, size_t n) {
  vs_http_buf_put(g, "\"", 1);
  size_t run = 0; /* bytes copied as they are, in runs */
  for (size_t i = 0; i < n; i++) {
    char esc[VS_JSON_ESCAPE_BYTES_MAX];
    size_t esc_bytes = vs_json_escape_byte(s[i], esc);
    if (esc_bytes == 0) continue;
    vs_http_buf_put(g, s + run, i - run);
    run = i + 1;
    vs_http_buf_put(g, esc, esc_bytes);
  }
  vs_http_buf_put(g, s + run, n - run);
  vs_http_buf_put(g, "\"", 1);
}

/* "name":"text" when the bytes are UTF-8, else "name_b64":"base64". */
static void buf_json_bytes(vs_http_buf *g, const char *name, const uint8_t *s, size_t n) {
  bool text = vs_utf8_valid(s, n);
  vs_http_buf_put(g, ",\"", 2);
  vs_http_buf_str(g, name);
  vs_http_buf_str(g, text ? "\":" : "_b64\":");
  if (text) {
    buf_json_string(g, s, n);
  } else {
    vs_http_buf_put(g, "\"", 1);
    buf_b64(g, s, n);
    vs_http_buf_put(g, "\"", 1);
  }
}

/* ---- the body ---- */

void vs_http_idempotency_key(const vs_op_id *ids, uint32_t count, char key_out[VS_HTTP_IDEM_KEY_BYTES]) {
  assert(ids != NULL && count > 0);
  uint8_t len[4], digest[16];
  crypto_generichash_state st;
  vs_hash_init(&st, sizeof digest);
  crypto_generichash_update(&st, (const uint8_t *)IDEM_DOMAIN, sizeof IDEM_DOMAIN - 1);
  vs_put_u32le(len, count);
  crypto_generichash_update(&st, len, sizeof len);
  for (uint32_t i = 0; i < count; i++) {
    assert(i == 0 || memcmp(ids[i - 1].bytes, ids[i].bytes, VS_OP_ID_BYTES) < 0);
    crypto_generichash_update(&st, ids[i].bytes, VS_OP_ID_BYTES);
  }
  crypto_generichash_final(&st, digest, sizeof digest);
  memcpy(key_out, VS_HTTP_IDEM_KEY_PREFIX, 4);
  sodium_bin2hex(key_out + 4, VS_HTTP_IDEM_KEY_BYTES - 4, digest, sizeof digest);
}

static void json_op(vs_http_buf *g, const vs_send_op *so, bool first) {
  vs_op op;
  char hex[VS_OP_ID_HEX_BYTES];
  vs_op_id_to_hex(&so->op_id, hex);
  vs_http_buf_str(g, first ? "{\"id\":\"" : ",{\"id\":\"");
  vs_http_buf_str(g, hex);
  vs_http_buf_str(g, "\"");
  if (vs_op_decode(so->encoded, so->encoded_bytes, &op) != VS_OK) {
    /* Never from a healthy store (the WAL checked it): send the bytes and
     * let the server decide. */
    vs_http_buf_str(g, ",\"encoded_b64\":\"");
    buf_b64(g, so->encoded, so->encoded_bytes);
    vs_http_buf_str(g, "\"}");
    return;
  }
  vs_http_buf_str(g, ",\"origin\":\"");
  buf_hex(g, op.origin, VS_ORIGIN_BYTES);
  vs_http_buf_str(g, "\",\"seq\":");
  buf_u64(g, op.seq);
  vs_http_buf_str(g, ",\"hlc\":");
  buf_u64(g, op.hlc);
  vs_http_buf_str(g, ",\"kind\":");
  buf_json_string(g, (const uint8_t *)op.kind, op.kind_bytes);
  buf_json_bytes(g, "target", op.target, op.target_bytes);
  buf_json_bytes(g, "value", op.payload, op.payload_bytes);
  vs_http_buf_str(g, "}");
}

void vs_http_body_build(vs_http_format format, const vs_send_op *const *order, uint32_t n, const char *key,
                        vs_http_buf *out) {
  assert(order != NULL && n > 0 && key != NULL && out != NULL);
  if (format == VS_HTTP_FORMAT_BINARY) {
    uint8_t head[8] = {VS_HTTP_BATCH_VERSION, 0, 0, 0, 0, 0, 0, 0};
    vs_put_u32le(head + 4, n);
    vs_http_buf_put(out, head, sizeof head);
    for (uint32_t i = 0; i < n; i++) {
      uint8_t len[4];
      assert(i == 0 || memcmp(order[i - 1]->op_id.bytes, order[i]->op_id.bytes, VS_OP_ID_BYTES) < 0);
      vs_put_u32le(len, order[i]->encoded_bytes);
      vs_http_buf_put(out, order[i]->op_id.bytes, VS_OP_ID_BYTES);
      vs_http_buf_put(out, len, sizeof len);
      vs_http_buf_put(out, order[i]->encoded, order[i]->encoded_bytes);
    }
    return;
  }
  assert(format == VS_HTTP_FORMAT_JSON);
  vs_http_buf_str(out, "{\"version\":");
  buf_u64(out, VS_HTTP_BATCH_VERSION);
  vs_http_buf_str(out, ",\"idempotency_key\":\"");
  vs_http_buf_str(out, key);
  vs_http_buf_str(out, "\",\"ops\":[");
  for (uint32_t i = 0; i < n; i++) json_op(out, order[i], i == 0);
  vs_http_buf_str(out, "]}");
}
